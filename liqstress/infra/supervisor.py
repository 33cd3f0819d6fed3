"""The supervised embedded broker: Tansu process + on-disk journal + refill + recycle.

Tansu's memory storage has no retention and no delete, and loses everything when it stops, so
liqstress carries the history itself (docs/storage.md):

- the **journaler** tails the topics worth keeping (group-less consumer, every partition) and
  appends them to the journal under ``<data-dir>/journal``;
- a fresh broker is **refilled** from the journal (records within each topic's retention, same
  topic, partition, key and timestamp) at start, after it died, and on a planned **recycle**
  when its resident memory passes ``recycle_bytes``: that is what keeps its memory bounded.

The supervisor checks the process every ``check_interval``: a dead broker sets
``liqstress_broker_up`` to 0 at once and calls the "down" callbacks (the sink's ``mark_down``,
the worker's ``set_broker_up(False)``), then restarts it on the same port with backoff; after
``max_failures`` failed restarts in a row ``failed`` is set with a one-line ``error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from liqstress.config import ConfigError, Topics
from liqstress.topics import Retention, TopicSpec, topic_specs

from .broker import EmbeddedBroker
from .journal import DEFAULT_MAX_BYTES, Journal
from .metrics import Metrics
from .topic_admin import ensure_topics

log = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_RECYCLE_BYTES = 768 * MiB
#: Roles journaled, i.e. carried across broker restarts. Windows and partials are not: the
#: worker republishes them on every refresh from state it rebuilds from events and prices.
JOURNALED_ROLES = ("events", "prices", "signals", "raw", "deadletter")

Callback = Callable[[], Any]


#: Metrics fields only the supervisor sets; unlabelled, so they would export 0 elsewhere.
BROKER_METRICS = ("broker_up", "broker_rss", "broker_memory_cap", "broker_recycle_threshold",
                  "broker_restarts", "broker_refill_records", "broker_refill_seconds",
                  "journal_bytes", "journal_max_bytes", "journal_oldest_ts", "journal_records",
                  "journal_dropped_bytes")


def unregister(metrics: Metrics, fields: tuple[str, ...]) -> None:
    """Take metrics a process never sets off its /metrics: an unlabelled gauge stuck at 0
    (``liqstress_broker_up`` of a process with no embedded broker) would read as "down"."""
    for name in fields:
        collector = getattr(metrics, name, None)
        if collector is not None:
            try:
                metrics.registry.unregister(collector)
            except KeyError:  # not registered (twice, or another registry)
                pass


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "liqstress"


def memory_cap(recycle_bytes: int) -> int:
    """The documented ceiling: the broker is recycled at ``recycle_bytes``, checked every
    second, so it can pass the threshold by what it receives in a second plus the recycle
    itself; 25 % (at least 64 MiB) of headroom covers that by a wide margin."""
    return recycle_bytes + max(64 * MiB, recycle_bytes // 4)


async def bounded(aw: Awaitable[Any], timeout: float) -> bool:
    """Await ``aw`` for at most ``timeout`` seconds; True if it finished. Unlike
    ``asyncio.wait_for`` it does not wait for the cancellation to complete on timeout:
    aiokafka's ``stop()`` can sit on a dead connection and swallow the cancel."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait([task], timeout=timeout)
    if task in done:
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s failed: %r", task, task.exception())
        return True
    task.cancel()
    return False


def journaled_specs(topics: Topics, partitions: int,
                    retention: Retention | None) -> list[TopicSpec]:
    return [s for s in topic_specs(topics, partitions, retention) if s.role in JOURNALED_ROLES]


# ---- refill ----------------------------------------------------------------------------------
@dataclass
class RefillResult:
    records: int = 0
    seconds: float = 0.0
    #: (topic, partition) → offset after the last refilled record: where the journaler starts.
    ends: dict[tuple[str, int], int] = field(default_factory=dict)


async def refill(bootstrap: str, journal: Journal, specs: list[TopicSpec],
                 now: float | None = None, batch_bytes: int = 1 * MiB,
                 max_outstanding: int = 32, attempts: int = 5) -> RefillResult:
    """Produce the journal's records within retention into the broker, topic by topic, in
    journal order (per partition the order the broker had them). Whole batches per partition
    (``send_batch``), not one send per record: that is what makes it fast.

    A failed batch is sent again (up to ``attempts`` times): Tansu's memory storage fails one
    of two produce requests that race for the same partition offset (UnknownError), which
    happens when the worker publishes to a journaled topic (signals) during the refill."""
    started = time.monotonic()
    out = RefillResult()
    # gzip: the broker keeps batches as sent, and journal batches of similar JSON records
    # shrink ~10x, which is what keeps the refilled broker far under its memory cap.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0,
                                max_batch_size=batch_bytes, max_request_size=batch_bytes * 2,
                                request_timeout_ms=30000, compression_type="gzip")
    await producer.start()
    Rows = list[tuple[int | None, bytes | None, bytes | None]]
    #: Sent, not yet acknowledged: (topic, partition, rows, future).
    outstanding: list[tuple[str, int, Rows, asyncio.Future[Any]]] = []

    def build(rows: Rows) -> Any:
        b = producer.create_batch()
        for ts, key, value in rows:
            b.append(timestamp=ts, key=key, value=value)
        return b

    async def settle(item: tuple[str, int, Rows, asyncio.Future[Any]]) -> None:
        topic, p, rows, fut = item
        for attempt in range(1, attempts + 1):
            try:
                meta = await fut
                break
            except KafkaError as exc:
                if attempt == attempts:
                    raise
                log.warning("refill of %s[%d] (%d records) failed (%s); sending it again",
                            topic, p, len(rows), exc)
                await asyncio.sleep(0.1 * attempt)
                fut = await producer.send_batch(build(rows), topic, partition=p)
        # The batch's base offset + its size: exact even if another producer slipped records
        # in between (ListOffsets(latest) under-reports on Tansu, so it is not asked).
        end = meta.offset + len(rows)
        if end > out.ends.get((topic, p), 0):
            out.ends[(topic, p)] = end

    async def ship(topic: str, p: int, batch: Any, rows: Rows) -> None:
        outstanding.append((topic, p, rows, await producer.send_batch(batch, topic, partition=p)))
        while len(outstanding) > max_outstanding:
            await settle(outstanding.pop(0))

    try:
        for spec in specs:
            batches: dict[int, tuple[Any, Rows]] = {}
            for rec in journal.replay(spec.name, now=now):
                # A partition count lowered since the records were journaled: keep them.
                p = rec.partition % spec.partitions
                row = (rec.timestamp_ms if rec.timestamp_ms >= 0 else None, rec.key, rec.value)
                entry = batches.get(p)
                if entry is None:
                    entry = batches[p] = (producer.create_batch(), [])
                if entry[0].append(timestamp=row[0], key=row[1], value=row[2]) is None:
                    await ship(spec.name, p, *batches.pop(p))
                    entry = batches[p] = (producer.create_batch(), [])
                    if entry[0].append(timestamp=row[0], key=row[1], value=row[2]) is None:
                        log.error("journal record of %d bytes on %s does not fit a batch; "
                                  "skipped", len(rec.value or b""), spec.name)
                        del batches[p]
                        continue
                entry[1].append(row)
                out.records += 1
            for p in list(batches):
                await ship(spec.name, p, *batches.pop(p))
        while outstanding:
            await settle(outstanding.pop(0))
    finally:
        await producer.stop()
    out.seconds = time.monotonic() - started
    return out


# ---- journaler -------------------------------------------------------------------------------
class Journaler:
    """Tails the journaled topics from given offsets and appends what it reads."""

    def __init__(self, bootstrap: str, journal: Journal, specs: list[TopicSpec],
                 metrics: Metrics | None = None) -> None:
        self.bootstrap = bootstrap
        self.journal = journal
        self.specs = specs
        self.metrics = metrics
        #: (topic, partition) → next offset to read.
        self.positions: dict[tuple[str, int], int] = {}
        self.polls = 0
        self.empty_polls = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self, start_at: dict[tuple[str, int], int]) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=200, max_partition_fetch_bytes=4 * MiB,
                                    request_timeout_ms=10000)
        await consumer.start()
        try:
            await consumer.topics()  # fresh metadata: the topics were created just now
            tps: list[TopicPartition] = []
            for spec in self.specs:
                parts = consumer.partitions_for_topic(spec.name) or set(range(spec.partitions))
                tps += [TopicPartition(spec.name, p) for p in sorted(parts)]
            consumer.assign(tps)
            for tp in tps:
                pos = start_at.get((tp.topic, tp.partition), 0)
                consumer.seek(tp, pos)
                self.positions[(tp.topic, tp.partition)] = pos
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._run(), name="journaler")

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=10000)
            for tp, msgs in batches.items():
                if not msgs:
                    continue
                n = self.journal.append_many(
                    tp.topic, ((m.partition, m.key, m.value, m.timestamp) for m in msgs))
                self.positions[(tp.topic, tp.partition)] = msgs[-1].offset + 1
                if self.metrics is not None:
                    self.metrics.journal_records.labels(tp.topic).inc(n)
            # Within a poll (<= ~0.5 s) of the broker acknowledging: what a crash may lose.
            self.journal.flush()
            self.polls += 1
            if not any(batches.values()):
                self.empty_polls += 1

    async def wait_caught_up(self, targets: dict[tuple[str, int], int], timeout: float) -> bool:
        """Wait until every (topic, partition) in ``targets`` (last acknowledged offsets) is
        journaled, then for one empty poll (records of other producers, e.g. the worker's
        signals, up to now). False on timeout."""
        deadline = time.monotonic() + timeout
        while any(self.positions.get(tp, 0) <= off for tp, off in targets.items()):
            if time.monotonic() > deadline or self._task is None or self._task.done():
                return False
            await asyncio.sleep(0.02)
        mark = self.empty_polls
        while self.empty_polls == mark:
            if time.monotonic() > deadline or self._task is None or self._task.done():
                return False
            await asyncio.sleep(0.02)
        return True

    async def stop(self, timeout: float = 2.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await bounded(task, timeout / 2)
        consumer, self._consumer = self._consumer, None
        if consumer is not None and not await bounded(consumer.stop(), timeout / 2):
            log.warning("journaler consumer did not close within %.1fs", timeout / 2)
        self.journal.flush()


# ---- the supervisor --------------------------------------------------------------------------
class DataDirLocked(ConfigError):
    pass


class BrokerSupervisor:
    """Owns the embedded broker process, the journal and the journaler."""

    def __init__(self, topics: Topics, *, port: int | None = None,
                 data_dir: str | Path | None = None, partitions: int = 4,
                 retention: Retention | None = None, metrics: Metrics | None = None,
                 recycle_bytes: int = DEFAULT_RECYCLE_BYTES, recycle_min_interval: float = 60.0,
                 journal_max_bytes: int = DEFAULT_MAX_BYTES, check_interval: float = 1.0,
                 max_failures: int = 5, backoff: float = 0.5, backoff_cap: float = 8.0,
                 prune_interval: float = 60.0) -> None:
        self.topics = topics
        self.broker = EmbeddedBroker(port=port)
        self.partitions = partitions
        self.retention = retention or Retention()
        self.metrics = metrics
        self.recycle_bytes = recycle_bytes
        self.recycle_min_interval = recycle_min_interval
        self.check_interval = check_interval
        self.max_failures = max_failures
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.prune_interval = prune_interval
        self.specs = topic_specs(topics, partitions, self.retention)
        self.journaled = journaled_specs(topics, partitions, self.retention)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.journal: Journal | None = None
        self._lock: IO[str] | None = None
        if self.data_dir is not None:
            self.journal = Journal(self._locked_dir(self.data_dir / "journal"),
                                   retention_ms={s.name: s.retention_ms for s in self.journaled},
                                   max_bytes=journal_max_bytes)
        self.journaler: Journaler | None = None
        self.sink: Any = None
        self._down: list[Callback] = []
        self._up: list[Callback] = []
        self.failed = asyncio.Event()
        self.error: str | None = None
        self.up = False
        self.restarts: dict[str, int] = {"crash": 0, "recycle": 0}
        self.last_refill: RefillResult | None = None
        self._last_recycle = time.monotonic()
        self._last_prune = float("-inf")
        self._offsets_at_up: dict[tuple[str, int], int] = {}
        self._task: asyncio.Task[None] | None = None
        if metrics is not None:
            metrics.broker_up.set(0)
            metrics.broker_recycle_threshold.set(recycle_bytes)
            metrics.broker_memory_cap.set(memory_cap(recycle_bytes))
            for reason in ("crash", "recycle"):
                metrics.broker_restarts.labels(reason)
            metrics.journal_max_bytes.set(journal_max_bytes if self.journal else 0)
            for s in self.journaled:
                metrics.journal_records.labels(s.name)
                metrics.journal_dropped_bytes.labels(s.name)

    def _locked_dir(self, path: Path) -> Path:
        """One process per journal: two writers would interleave segments and refill twice."""
        path.mkdir(parents=True, exist_ok=True)
        fh = open(path / ".lock", "a+")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip()
            fh.close()
            raise DataDirLocked(f"data dir {path.parent} is in use by another liqstress "
                                f"process{f' (pid {holder})' if holder else ''}; pass another "
                                f"--data-dir") from None
        fh.truncate(0)
        fh.write(str(os.getpid()))
        fh.flush()
        self._lock = fh
        return path

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def on_down(self, cb: Callback) -> None:
        self._down.append(cb)

    def on_up(self, cb: Callback) -> None:
        self._up.append(cb)

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the broker, create the topics, refill, start journaling and watching."""
        await self._bring_up()
        self._set_up(True, notify=False)
        self._task = asyncio.create_task(self._watch(), name="broker-supervisor")

    async def stop_watching(self) -> None:
        """No more restarts or recycles (liqstress is stopping)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await bounded(task, 1.0)
        if self.up and self.sink is not None and hasattr(self.sink, "resume"):
            self.sink.resume()  # a recycle cut short must not leave the sink unable to flush

    async def stop(self, timeout: float = 5.0) -> None:
        await self.stop_watching()
        if self.journaler is not None:
            await self.journaler.stop(timeout=min(2.0, timeout))
            self.journaler = None
        if self.journal is not None:
            with contextlib.suppress(OSError):
                self.journal.sync()
            self.journal.close()
        await self.broker.astop(timeout=min(3.0, timeout))
        self._set_up(False, notify=False)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ---- internals ---------------------------------------------------------------------------
    async def _bring_up(self) -> None:
        await self.broker.astart()
        try:
            await ensure_topics(self.bootstrap, self.specs)
            start_at: dict[tuple[str, int], int] = {}
            if self.journal is not None:
                res = await refill(self.bootstrap, self.journal, self.journaled)
                self.last_refill = res
                start_at = res.ends
                if res.records:
                    log.info("refilled the broker with %d records from %s in %.2fs",
                             res.records, self.journal.root, res.seconds)
                if self.metrics is not None:
                    self.metrics.broker_refill_records.set(res.records)
                    self.metrics.broker_refill_seconds.set(res.seconds)
                self.journaler = Journaler(self.bootstrap, self.journal, self.journaled,
                                           self.metrics)
                await self.journaler.start(start_at)
            self._update_rss()
            self._prune()
        except BaseException:
            if self.journaler is not None:
                await self.journaler.stop()
                self.journaler = None
            await self.broker.astop()
            raise

    def _set_up(self, up: bool, notify: bool = True) -> None:
        self.up = up
        if up:
            self._offsets_at_up = dict(getattr(self.sink, "last_offsets", None) or {})
        if self.metrics is not None:
            self.metrics.broker_up.set(1 if up else 0)
        if not notify:
            return
        for cb in self._up if up else self._down:
            try:
                res = cb()
                if asyncio.iscoroutine(res):
                    asyncio.ensure_future(res)
            except Exception:
                log.exception("broker %s callback failed", "up" if up else "down")

    def _update_rss(self) -> int | None:
        rss = self.broker.rss_bytes()
        if self.metrics is not None and rss is not None:
            self.metrics.broker_rss.set(rss)
        return rss

    def _prune(self) -> None:
        if self.journal is None:
            return
        self._last_prune = time.monotonic()
        for d in self.journal.prune():
            if d.reason == "cap" and self.metrics is not None:
                self.metrics.journal_dropped_bytes.labels(d.topic).inc(d.bytes)
        if self.metrics is not None:
            self.metrics.journal_bytes.set(self.journal.bytes_total)
            oldest = self.journal.oldest_timestamp_ms()
            self.metrics.journal_oldest_ts.set((oldest or 0) / 1000)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                if not await self._check():
                    return
            except asyncio.CancelledError:
                raise
            except Exception:  # the watch must outlive any one failure, or nobody restarts
                log.exception("embedded broker supervisor: unexpected error; carrying on")

    async def _check(self) -> bool:
        """One look at the broker; False once the supervisor gave up."""
        if not self.broker.alive:
            code = self.broker.proc.returncode if self.broker.proc else None
            log.error("embedded broker died (exit code %s); restarting it on %s", code,
                      self.bootstrap)
            return await self._restart("crash")
        rss = self._update_rss()
        if self.journal is not None and self.metrics is not None:
            self.metrics.journal_bytes.set(self.journal.bytes_total)
        if time.monotonic() - self._last_prune >= self.prune_interval:
            self._prune()
        # Without a journal a recycle would come back empty: ephemeral brokers only grow.
        if (self.journal is not None and rss is not None and rss > self.recycle_bytes
                and time.monotonic() - self._last_recycle >= self.recycle_min_interval):
            log.info("embedded broker uses %d MiB (> %d MiB): recycling it", rss // MiB,
                     self.recycle_bytes // MiB)
            return await self._restart("recycle")
        return True

    async def _quiesce(self) -> None:
        """Before a planned stop: hold the local sink and let the journal catch up with what
        the broker acknowledged, so the refill carries everything."""
        sink = self.sink
        targets: dict[tuple[str, int], int] = {}
        if sink is not None:
            if hasattr(sink, "pause"):
                sink.pause()
            # A sink that is not connected sends nothing while paused: nothing of its
            # backlog was acknowledged, it is all resent after ``resume``.
            if hasattr(sink, "wait_idle") and getattr(sink, "up", True):
                if not await bounded(sink.wait_idle(), 5.0):
                    log.warning("the sink did not drain within 5s before the recycle; its "
                                "unacknowledged records are resent afterwards")
            names = {s.name for s in self.journaled}
            # Only offsets acknowledged by this broker: older ones may be past its end (the
            # refill leaves out what is beyond retention, so offsets can restart lower).
            targets = {tp: off for tp, off in getattr(sink, "last_offsets", {}).items()
                       if tp[0] in names and self._offsets_at_up.get(tp) != off}
        if self.journaler is not None:
            if not await self.journaler.wait_caught_up(targets, 10.0):
                log.warning("journal did not catch up with the broker within 10s before the "
                            "recycle; the newest records may be missing from the refill")

    async def _restart(self, reason: str) -> bool:
        planned = reason == "recycle"
        started = time.monotonic()
        if planned:
            await self._quiesce()
        elif self.sink is not None and hasattr(self.sink, "pause"):
            # Nothing of the sink's may reach the fresh broker before the refill: it would
            # land at offsets the journaler resumes after (and never be journaled).
            self.sink.pause()
        quiesced = time.monotonic()
        self._set_up(False)
        if self.journaler is not None:
            await self.journaler.stop(timeout=1.0)
            self.journaler = None
        # Memory storage: nothing to save, everything is journaled; Tansu's graceful stop
        # waits for its clients, so do not give it long.
        await self.broker.astop(timeout=0.3)
        stopped = time.monotonic()
        self._last_recycle = time.monotonic()
        delay = self.backoff
        failures = 0
        last_error = ""
        while True:
            try:
                await self._bring_up()
                break
            except Exception as exc:  # broker, topic creation or refill: retried alike
                failures += 1
                last_error = f"{type(exc).__name__}: {exc}"
                log.error("embedded broker restart %d/%d failed: %s", failures,
                          self.max_failures, last_error)
                if failures >= self.max_failures:
                    self.error = (f"embedded broker could not be restarted after "
                                  f"{failures} attempts: {last_error}")
                    self.failed.set()
                    return False
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_cap)
        self.restarts[reason] += 1
        if self.metrics is not None:
            self.metrics.broker_restarts.labels(reason).inc()
        self._last_recycle = time.monotonic()
        rss = self._update_rss()
        if planned and rss is not None and rss > 0.9 * self.recycle_bytes:
            log.warning("the refilled broker already uses %d MiB, near the recycle threshold "
                        "of %d MiB: raise --broker-recycle-bytes or shorten --retention",
                        rss // MiB, self.recycle_bytes // MiB)
        self._set_up(True)
        if self.sink is not None and hasattr(self.sink, "resume"):
            self.sink.resume()
        refilled = self.last_refill.records if self.last_refill else 0
        log.warning("embedded broker back on %s after %s in %.1fs (quiesce %.1fs, stop %.1fs, "
                    "start and refill of %d records %.1fs)", self.bootstrap, reason,
                    time.monotonic() - started, quiesced - started, stopped - quiesced,
                    refilled, time.monotonic() - stopped)
        return True


async def wait_failed_or(supervisor: BrokerSupervisor | None,
                         other: Awaitable[Any]) -> str | None:
    """Run ``other`` until it ends or the supervisor gives up; the error line in that case."""
    task = asyncio.ensure_future(other)
    if supervisor is None:
        await task
        return None
    failed = asyncio.ensure_future(supervisor.failed.wait())
    try:
        done, _ = await asyncio.wait([task, failed], return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
            return None
        return supervisor.error or "embedded broker failed"
    finally:
        for t in (task, failed):
            if not t.done():
                t.cancel()
        await asyncio.gather(task, failed, return_exceptions=True)
