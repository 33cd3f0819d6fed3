"""Publishing to Kafka. The collector hands over frames, events and dead letters; the sink
keeps them, in order, until the broker has acknowledged them, and resends them after the
broker (or its topics) came back. docs/delivery.md describes the guarantees."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections import deque
from dataclasses import dataclass
from typing import IO, Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.conn import CloseReason
from aiokafka.errors import (
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from liqstress.config import Topics
from liqstress.coverage import SourceCoverage
from liqstress.event import LiquidationEvent, event_json
from liqstress.infra.kafka_security import client_kwargs
from liqstress.infra.metrics import Metrics
from liqstress.infra.topic_admin import TopicAdminError, ensure_topics
from liqstress.open_interest import OpenInterest
from liqstress.prices import PriceTick
from liqstress.recording import RawFrame
from liqstress.topics import Retention, topic_specs

log = logging.getLogger(__name__)

MiB = 1024 * 1024
#: Room for the batch and record headers aiokafka adds around a record.
_RECORD_OVERHEAD = 1024

#: Errors that condemn one record, not the connection: resending it can never succeed, and
#: retrying would block every record queued behind it.
_RECORD_ERRORS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTopicError)


class Sink(Protocol):
    async def raw(self, frame: RawFrame) -> None: ...
    #: ``backfill``: the event was read from the venue's history on start (the warm start);
    #: its wire form says so (``"backfill": true``), its id is the live one.
    async def event(self, ev: LiquidationEvent, backfill: bool = False) -> None: ...
    async def price(self, tick: PriceTick) -> None: ...
    async def open_interest(self, rec: OpenInterest) -> None: ...
    async def deadletter(self, record: dict[str, Any]) -> None: ...
    #: What the venue's windows cover (liqstress.coverage), every 15 s and on each change.
    async def coverage(self, rec: SourceCoverage) -> None: ...


class RecordingSink:
    """``liqstress record``: every frame and REST body as a recording line, nothing else.

    ``records_all_frames`` tells the collector to hand over every frame whatever its raw
    policy: a recording must hold everything needed to replay the session."""

    records_all_frames = True

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.lines = 0

    async def raw(self, frame: RawFrame) -> None:
        self.fh.write(frame.to_json() + b"\n")
        self.fh.flush()
        self.lines += 1

    async def event(self, ev: LiquidationEvent, backfill: bool = False) -> None:
        return None

    async def price(self, tick: PriceTick) -> None:
        return None

    async def open_interest(self, rec: OpenInterest) -> None:
        return None

    async def deadletter(self, record: dict[str, Any]) -> None:
        return None

    async def coverage(self, rec: SourceCoverage) -> None:
        # Derived from the session, not a frame: a replay derives it from the recording.
        return None


@dataclass(slots=True)
class _Record:
    seq: int
    topic: str
    key: bytes
    value: bytes

    @property
    def size(self) -> int:
        return len(self.key) + len(self.value)


class _Abandoned(Exception):
    """The producer's connection broke while a batch was in flight."""


class KafkaSink:
    """Queues records and sends them in order, at least once.

    Records stay in memory until acknowledged, bounded by ``max_backlog_records`` and
    ``max_backlog_bytes`` (the oldest are dropped, and counted, beyond). When the broker
    connection breaks or a send fails for a broker-side reason, the producer is closed, the
    topics are created again if the broker lost them (the embedded broker keeps them in
    memory only), and the unacknowledged records are resent in order. Acknowledgements that
    arrive after the connection broke are not trusted: a restarted in-memory broker
    acknowledges records for topics it no longer has and keeps nothing."""

    def __init__(self, bootstrap: str, topics: Topics, max_backlog: int | None = None,
                 retry_delay: float = 1.0, *, max_backlog_records: int = 1_000_000,
                 max_backlog_bytes: int = 256 * MiB, metrics: Metrics | None = None,
                 partitions: int = 4, retention: Retention | None = None,
                 create_topics: bool = True, retry_cap: float = 10.0,
                 log_interval: float = 30.0, batch_records: int = 5000,
                 request_timeout: float = 15.0, max_request_bytes: int = 8 * MiB) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        # ``max_backlog`` is the old name of ``max_backlog_records``.
        self.max_backlog_records = max_backlog if max_backlog is not None else max_backlog_records
        self.max_backlog_bytes = max_backlog_bytes
        self.retry_delay = retry_delay
        self.retry_cap = max(retry_cap, retry_delay)
        self.log_interval = log_interval
        self.batch_records = batch_records
        self.request_timeout = request_timeout
        self.max_request_bytes = max_request_bytes
        self.metrics = metrics
        self.create_topics = create_topics
        self.specs = topic_specs(topics, partitions, retention)
        self._pending: deque[_Record] = deque()
        self._pending_bytes = 0
        #: The coverage record of each venue still waiting, if any (``coverage``).
        self._coverage_pending: dict[tuple[str, str], _Record] = {}
        self._seq = 0  # records accepted so far
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._paused = False
        #: While paused, records up to this sequence number may still drain (see ``pause``).
        self._pause_limit = 0
        self._producer: AIOKafkaProducer | None = None
        self._connecting: AIOKafkaProducer | None = None
        #: Set when the producer's connection broke (or the supervisor said the broker is
        #: going): the next send first reconnects and re-creates the topics.
        self._suspect = asyncio.Event()
        self._inflight: list[asyncio.Future[Any]] = []
        self._trusted: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._up: bool | None = None
        self._last_warning = float("-inf")
        self._dropped_since_log = 0
        self.sent = 0
        self.dropped = 0
        self.reconnects = 0
        #: (topic, partition) → offset of the last acknowledged record.
        self.last_offsets: dict[tuple[str, int], int] = {}
        if metrics is not None:
            metrics.sink_up.set(0)
            for spec in self.specs:
                metrics.publish_sent.labels(spec.name)
                metrics.publish_dropped.labels(spec.name)
        self._update_gauges()

    @property
    def max_backlog(self) -> int:
        return self.max_backlog_records

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kafka-sink")

    async def stop(self, flush_timeout: float = 10.0) -> int:
        """Wait up to ``flush_timeout`` for the backlog to be acknowledged, then close.
        Returns the number of records left unsent (0 when everything was acknowledged)."""
        if self._task is not None and not self._task.done():
            try:
                await asyncio.wait_for(self.flush(), flush_timeout)
            except TimeoutError:
                pass
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._close_producer(abandon=True)
        # Coverage records are state, not data: the next run states its own.
        unsent = sum(1 for r in self._pending if r.topic != self.topics.coverage)
        if unsent:
            log.error("kafka sink stopped with %d records unsent (%s, broker %s)", unsent,
                      _human_bytes(self._pending_bytes), self.bootstrap)
        for _, fut in self._waiters:
            if not fut.done():
                fut.cancel()
        return unsent

    def pause(self) -> None:
        """Hold every record accepted from now on (the broker is being recycled). Records
        accepted before still drain, but only over the current, healthy connection: never
        to a broker that went away meanwhile (``mark_down`` or a broken connection stops
        them too), so nothing reaches a restarted broker before ``resume``."""
        if not self._paused:
            self._paused = True
            self._pause_limit = self._seq

    def resume(self) -> None:
        self._paused = False
        self._wakeup.set()

    def mark_down(self) -> None:
        """The broker is known to be going away: report it now, and reconnect (re-creating
        topics) before the next send instead of trusting the current connection."""
        self._mark_suspect()
        self._set_up(False)

    @property
    def backlog(self) -> int:
        return len(self._pending)

    @property
    def backlog_bytes(self) -> int:
        return self._pending_bytes

    @property
    def up(self) -> bool:
        return bool(self._up)

    async def flush(self) -> None:
        """Wait until the backlog is empty (including records added meanwhile)."""
        while self._pending:
            await self.wait_idle()

    async def wait_idle(self) -> None:
        """Return once every record accepted so far is acknowledged (or was dropped)."""
        if not self._pending:
            return
        target = self._pending[-1].seq
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, fut))
        await fut

    # ---- accepting records ----------------------------------------------------------------
    def _put(self, topic: str, key: str, value: bytes) -> None:
        self._seq += 1
        rec = _Record(self._seq, topic, key.encode(), value)
        if rec.size + _RECORD_OVERHEAD > self.max_request_bytes:
            # It could never be sent, and would block every record behind it.
            log.error("dropping a %s record of %s: larger than max_request_bytes (%s)", topic,
                      _human_bytes(rec.size), _human_bytes(self.max_request_bytes))
            self.dropped += 1
            if self.metrics is not None:
                self.metrics.publish_dropped.labels(topic).inc()
            return
        self._pending.append(rec)
        self._pending_bytes += rec.size
        while self._pending and (len(self._pending) > self.max_backlog_records
                                 or self._pending_bytes > self.max_backlog_bytes):
            # Losing the oldest record beats growing without bound while the broker is down.
            self._drop_oldest()
        self._update_gauges()
        self._resolve_waiters()
        self._wakeup.set()

    def _drop_oldest(self) -> None:
        rec = self._pending.popleft()
        self._pending_bytes -= rec.size
        self.dropped += 1
        self._dropped_since_log += 1
        if self.metrics is not None:
            self.metrics.publish_dropped.labels(rec.topic).inc()
        self._warn_rate_limited()

    async def raw(self, frame: RawFrame) -> None:
        self._put(self.topics.raw, frame.exchange, frame.to_json())

    async def event(self, ev: LiquidationEvent, backfill: bool = False) -> None:
        self._put(self.topics.events, ev.key, event_json(ev, backfill) if backfill
                  else ev.to_json())

    async def price(self, tick: PriceTick) -> None:
        self._put(self.topics.prices, tick.key, tick.to_json())

    async def open_interest(self, rec: OpenInterest) -> None:
        self._put(self.topics.open_interest, rec.key, rec.to_json())

    async def deadletter(self, record: dict[str, Any]) -> None:
        self._put(self.topics.deadletter, str(record.get("exchange", "")), orjson.dumps(record))

    async def coverage(self, rec: SourceCoverage) -> None:
        """Only the newest matters: one still waiting (the broker down) is replaced in place,
        so a long outage queues one coverage record per venue, not one every 15 s."""
        # Per collector: a restarted collector's restatement of its last run is another
        # collector's record, never replaced by this run's.
        key, value = (rec.exchange, rec.collector), rec.to_json()
        old = self._coverage_pending.get(key)
        if old is not None and self._pending and old.seq >= self._pending[0].seq:
            self._pending_bytes += len(value) - len(old.value)
            old.value = value
            return
        self._put(self.topics.coverage, rec.key, value)
        if self._pending and self._pending[-1].topic == self.topics.coverage:
            self._coverage_pending[key] = self._pending[-1]

    # ---- bookkeeping ----------------------------------------------------------------------
    def _update_gauges(self) -> None:
        if self.metrics is not None:
            self.metrics.publish_backlog_records.set(len(self._pending))
            self.metrics.publish_backlog_bytes.set(self._pending_bytes)

    def _resolve_waiters(self) -> None:
        if not self._waiters:
            return
        head = self._pending[0].seq if self._pending else self._seq + 1
        keep = []
        for target, fut in self._waiters:
            if head > target:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((target, fut))
        self._waiters = keep

    def _set_up(self, up: bool) -> None:
        if up != self._up:
            if up and self._up is False:
                log.warning("broker %s accepts records again; %d waiting", self.bootstrap,
                            len(self._pending))
            self._up = up
        if self.metrics is not None:
            self.metrics.sink_up.set(1 if up else 0)

    def _warn_rate_limited(self, reason: str | None = None) -> None:
        """At most one line per ``log_interval``: an outage must not flood the log."""
        now = time.monotonic()
        if now - self._last_warning < self.log_interval:
            return
        self._last_warning = now
        dropped = (f", {self._dropped_since_log} oldest dropped (backlog full)"
                   if self._dropped_since_log else "")
        log.warning("broker %s not accepting records%s: %d records (%s) waiting%s",
                    self.bootstrap, f" ({reason})" if reason else "", len(self._pending),
                    _human_bytes(self._pending_bytes), dropped)
        self._dropped_since_log = 0

    def _mark_suspect(self) -> None:
        if self._suspect.is_set():
            return
        # Acknowledgements already received came from the broker we were talking to; later
        # ones may come from a restarted broker that lost the topic, so they do not count.
        self._trusted = _leading_successes(self._inflight)
        self._suspect.set()
        self._wakeup.set()

    def _on_connection_closed(self, producer: AIOKafkaProducer,
                              reason: CloseReason | None) -> None:
        if producer is not self._producer and producer is not self._connecting:
            return  # an abandoned producer's connections closing late
        if reason in (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT):
            self._mark_suspect()
            self._set_up(False)
        elif reason == CloseReason.IDLE_DROP:
            # A broker restarted while we held no connection would go unnoticed: check the
            # topics again before the next send (nothing is in flight on an idle connection).
            self._mark_suspect()

    # ---- sending --------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.retry_delay
        while True:
            try:
                while not self._has_work():
                    self._wakeup.clear()
                    await self._wakeup.wait()
                if self._producer is None or self._suspect.is_set():
                    if not await self._connect():
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self.retry_cap)
                        continue
                if self._pending:
                    if not await self._send_batch():
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self.retry_cap)
                        continue
                delay = self.retry_delay
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the sender die silently: records would pile up
                log.exception("kafka sink: unexpected error; retrying")
                self._mark_suspect()
                self._set_up(False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_cap)

    def _has_work(self) -> bool:
        if self._paused:
            return (self._producer is not None and not self._suspect.is_set()
                    and bool(self._pending) and self._pending[0].seq <= self._pause_limit)
        # Reconnect even with nothing to send, so sink_up follows the broker while idle.
        return bool(self._pending) or self._producer is None or self._suspect.is_set()

    async def _connect(self) -> bool:
        await self._close_producer(abandon=True)
        self._suspect.clear()
        self._trusted = None
        if not await _reachable(self.bootstrap, min(5.0, self.request_timeout)):
            # Probing the port first keeps aiokafka from logging an error per attempt.
            self._set_up(False)
            self._warn_rate_limited("connection refused")
            return False
        # gzip: the broker stores batches as sent; a burst of events or one price frame's
        # ticks compresses several times (the embedded broker's memory is the budget).
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", linger_ms=5, compression_type="gzip",
            request_timeout_ms=int(self.request_timeout * 1000),
            max_request_size=self.max_request_bytes, **client_kwargs())
        # No idempotence: Tansu rejects aiokafka's InitProducerId. Duplicates from resends
        # are harmless because the worker dedupes by event id.
        _watch_connections(producer, self._on_connection_closed)
        self._connecting = producer
        try:
            await asyncio.wait_for(producer.start(), self.request_timeout)
            if self.create_topics:
                # After the producer connected: a broker restart after this point breaks
                # the producer's connection, which marks it suspect again.
                try:
                    await ensure_topics(self.bootstrap, self.specs,
                                        timeout=self.request_timeout)
                except TopicAdminError as exc:
                    # The broker answered but refused (ACLs, policy): send anyway, it may
                    # auto-create; a missing topic then fails the send, which retries here.
                    self._warn_rate_limited(str(exc))
        except (KafkaError, OSError, TimeoutError) as exc:
            self._connecting = None
            await _abandon(producer)
            self._set_up(False)
            self._warn_rate_limited(f"{type(exc).__name__}: {exc}")
            return False
        except asyncio.CancelledError:  # stop() while connecting: leave no producer behind
            self._connecting = None
            await _abandon(producer)
            raise
        self._connecting = None
        if self._suspect.is_set():  # the broker went away while we were connecting
            await _abandon(producer)
            return False
        self._producer = producer
        if self.reconnects or self._up is False:
            log.info("kafka sink connected to %s", self.bootstrap)
        self.reconnects += 1
        self._set_up(True)
        return True

    async def _close_producer(self, abandon: bool) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            if abandon:
                await _abandon(producer)
            else:
                await producer.stop()

    async def _send_batch(self) -> bool:
        """Send up to ``batch_records`` from the head of the backlog. False on a failure that
        calls for a backoff."""
        producer = self._producer
        assert producer is not None
        limit = self._pause_limit if self._paused else self._seq
        batch: list[_Record] = []
        for rec in self._pending:
            if len(batch) >= self.batch_records or rec.seq > limit:
                break
            batch.append(rec)
        if not batch:
            return True
        self._inflight = []
        self._trusted = None
        suspect = asyncio.create_task(self._suspect.wait())
        results_task: asyncio.Future[list[Any]] | None = None
        try:
            for rec in batch:
                if self._suspect.is_set():
                    raise _Abandoned
                self._inflight.append(await producer.send(rec.topic, value=rec.value,
                                                          key=rec.key))
            results_task = asyncio.gather(*self._inflight, return_exceptions=True)
            await asyncio.wait([results_task, suspect], return_when=asyncio.FIRST_COMPLETED)
            if self._suspect.is_set():
                results_task.cancel()
                raise _Abandoned
            results = results_task.result()
        except _Abandoned:
            done = self._trusted or 0
            self._ack(batch[:done], [f.result() for f in self._inflight[:done]], up=False)
            await self._close_producer(abandon=True)
            self._warn_rate_limited("connection to the broker broke")
            return False
        except _RECORD_ERRORS as exc:
            # Raised by send() itself (too large for max_request_size): records before it are
            # queued in the producer but not awaited; they are resent, harmless duplicates.
            idx = len(self._inflight)
            self._discard(batch[idx], exc)
            await self._close_producer(abandon=True)
            return True
        except (KafkaError, OSError, TimeoutError) as exc:
            self._mark_suspect()
            self._set_up(False)
            await self._close_producer(abandon=True)
            self._warn_rate_limited(f"{type(exc).__name__}: {exc}")
            return False
        finally:
            suspect.cancel()
            for fut in [*self._inflight, *([results_task] if results_task else [])]:
                fut.add_done_callback(_consume)
            self._inflight = []
        done = _leading_count(results)
        self._ack(batch[:done], results[:done])
        if done == len(batch):
            return True
        err = results[done]
        if isinstance(err, _RECORD_ERRORS):
            self._discard(batch[done], err)
            return True
        # The broker or its topics are gone (connection, unknown topic, not leader, timeout):
        # reconnect, re-create the topics, resend from the first unacknowledged record.
        self._mark_suspect()
        self._set_up(False)
        await self._close_producer(abandon=True)
        self._warn_rate_limited(f"{type(err).__name__}: {err}")
        return False

    def _ack(self, recs: list[_Record], results: list[Any], up: bool = True) -> None:
        if not recs:
            return
        for res in results:
            self.last_offsets[(res.topic, res.partition)] = res.offset
        last = recs[-1].seq
        per_topic: Tally[str] = Tally()
        # Records dropped from the backlog while in flight are already gone from the head.
        while self._pending and self._pending[0].seq <= last:
            rec = self._pending.popleft()
            self._pending_bytes -= rec.size
            per_topic[rec.topic] += 1
        n = sum(per_topic.values())
        self.sent += n
        if self.metrics is not None:
            for topic, count in per_topic.items():
                self.metrics.publish_sent.labels(topic).inc(count)
        if up:
            self._set_up(True)
        self._update_gauges()
        self._resolve_waiters()

    def _discard(self, rec: _Record, exc: BaseException) -> None:
        log.error("dropping a record for %s that the broker can never accept (%s bytes): %s",
                  rec.topic, rec.size, exc)
        try:
            self._pending.remove(rec)
        except ValueError:  # already dropped from a full backlog
            return
        self._pending_bytes -= rec.size
        self.dropped += 1
        if self.metrics is not None:
            self.metrics.publish_dropped.labels(rec.topic).inc()
        self._update_gauges()
        self._resolve_waiters()


def _consume(fut: asyncio.Future[Any]) -> None:
    """Mark an abandoned send's outcome as seen (asyncio warns about unread exceptions)."""
    if not fut.cancelled():
        fut.exception()


def _leading_count(results: list[Any]) -> int:
    n = 0
    for res in results:
        if isinstance(res, BaseException):
            break
        n += 1
    return n


def _leading_successes(futs: list[asyncio.Future[Any]]) -> int:
    n = 0
    for fut in futs:
        if not fut.done() or fut.cancelled() or fut.exception() is not None:
            break
        n += 1
    return n


def _watch_connections(producer: AIOKafkaProducer, callback: Any) -> None:
    """Call ``callback(reason)`` whenever one of the producer's broker connections closes.

    aiokafka retries a failed produce on its own, on a new connection: to a restarted
    in-memory broker that no longer has the topic, which acknowledges and discards. Learning
    about the broken connection is the only way to stop trusting the producer in time.
    (aiokafka's client passes ``self._on_connection_closed`` to every connection it opens,
    so an instance attribute set before ``start()`` sees them all.)"""
    client = producer.client
    original = client._on_connection_closed

    def on_closed(conn: Any, reason: CloseReason | None) -> None:
        callback(producer, reason)
        original(conn, reason)

    client._on_connection_closed = on_closed


async def _abandon(producer: AIOKafkaProducer) -> None:
    """Close a producer without waiting for its queued batches: they are resent by us, and
    ``stop()`` would otherwise retry them for up to the request timeout."""
    acc = getattr(producer, "_message_accumulator", None)
    if acc is not None:
        batches = [b for bs in acc._batches.values() for b in bs] + list(acc._pending_batches)
        acc.fail_all(KafkaError("producer abandoned after a broker failure"))
        for batch in batches:
            for fut in (batch.future, getattr(batch, "_drain_waiter", None)):
                if fut is not None:
                    fut.add_done_callback(_consume)
    sender = getattr(producer, "_sender", None)
    task = getattr(sender, "sender_task", None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    try:
        await asyncio.wait_for(producer.stop(), 5.0)
    except (KafkaError, OSError, TimeoutError):
        pass


async def _reachable(bootstrap: str, timeout: float) -> bool:
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(host.strip("[]") or "localhost", int(port)), timeout)
        except (OSError, TimeoutError, ValueError):
            continue
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        return True
    return False


def _human_bytes(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.1f} KiB"
