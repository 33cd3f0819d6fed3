"""The Faust worker, as thin wiring: any number of ``liqstress worker`` processes with one app
id share the ``liquidations`` partitions through the consumer group.

- Each worker keeps state only for the partitions assigned to it (agents/state.py): rebuilt
  from the topic by a task when assigned (the rebalance never waits for it), parked on revoke.
- Every refresh it publishes its partitions' partials (liqstress/partials.py) to the
  single-partition partials topic. Whoever owns that partition is the aggregator: it merges
  every partition, computes the stress signals, publishes ``liquidation.windows`` and
  ``stress.signals`` (agents/publishing.py) and exports the global gauges; on takeover it
  reads the recent partials and continues the cascade state of the last published snapshot.
- Prices are read by every worker (a broadcast read outside the group), so a new aggregator
  has them at once. So are the partials: every worker keeps every partition's view, and its
  read-only JSON API (agents/api.py, on the /metrics port) answers with the global view.

Everything is a commutative sum or maximum over deduplicated ids, so rebuilds, re-deliveries
and overlapping reads can never count an event twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from liqstress.config import WorkerSettings
from liqstress.infra import kafka_security
from liqstress.infra.metrics import Metrics
from liqstress.infra.topic_admin import ensure_topics
from liqstress.topics import topic_specs

from . import api, exporter
from .publishing import publish
from .rebuild import (
    FETCH_WAIT_MS,
    TopicTail,
    _consumer,
    _partitions,
    _seek_since,
    commit_history_if_new,
    read_topic,
)
from .state import WorkerState

log = logging.getLogger(__name__)

#: A published stress snapshot older than this is history, not a state to continue.
RESTORE_MAX_AGE = 900.0


class _ShortFetchThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust hard-codes a 1.5 s fetch wait, and Tansu holds every fetch that long even
        # when records are there: that was ~0.4 s of every event's delay.
        consumer._fetch_max_wait_ms = FETCH_WAIT_MS  # noqa: SLF001
        return consumer


class _ShortFetchConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ShortFetchThread(self, loop=self.loop, beacon=self.beacon)


def _deadletter(topic: str, partition: int, offset: int, value: bytes | None,
                reason: str) -> bytes:
    return orjson.dumps({"exchange": "", "source": f"kafka:{topic}", "recv_ts": time.time(),
                         "reason": reason, "detail": f"partition {partition} offset {offset}",
                         "frame": (value or b"").decode("utf-8", "replace")})


def create_app(settings: WorkerSettings, metrics: Metrics,
               tasks: list[Callable[[WorkerState], Awaitable[None]]] | None = None,
               state: WorkerState | None = None) -> tuple[faust.App, WorkerState]:
    settings.validate()
    state = state or WorkerState(settings=settings, metrics=metrics)
    state.aggregating = False
    state.aggregator_ready = False
    metrics.init_coins(settings.coins)
    exporter.register(state)
    api.register(state)
    topics = settings.topics
    specs = topic_specs(topics, settings.partitions, settings.retention)

    class WorkerApp(faust.App):
        async def on_first_start(self) -> None:
            # Before the consumer joins its group: every source topic must exist by then
            # (Faust's assignor leaves partitions of a missing topic unassigned), with its
            # partitions and retention.
            await ensure_topics(settings.broker, specs)
            committed = await commit_history_if_new(settings.broker, settings.app_id,
                                                    topics.events)
            if committed:
                log.info("new consumer group: history up to %s is read by the rebuild only",
                         committed)
            await super().on_first_start()

    app = WorkerApp(
        settings.app_id,
        broker=f"kafka://{settings.broker}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
        consumer_auto_offset_reset="earliest",
        processing_guarantee="at_least_once",  # Tansu has no idempotent/transactional producer
        # Partials, window snapshots and signals repeat the same keys every refresh: gzip
        # shrinks them ~15x in the broker (measured on Tansu's memory storage).
        producer_compression_type="gzip",
        datadir=settings.datadir or f"/tmp/liqstress-{settings.app_id}",
        broker_credentials=kafka_security.current().faust_credentials(),
    )
    app.transport.Consumer = _ShortFetchConsumer

    def raw_topic(name: str, partitions: int | None = None) -> Any:
        return app.topic(name, value_serializer="raw", key_serializer="raw",
                         partitions=partitions)

    events_topic = raw_topic(topics.events)
    partials_topic = raw_topic(topics.partials, partitions=1)
    windows_topic = raw_topic(topics.windows)
    signals_topic = raw_topic(topics.signals)
    deadletter_topic = raw_topic(topics.deadletter)

    rebuilds: dict[int, asyncio.Task[None]] = {}
    takeover: dict[str, asyncio.Task[None]] = {}
    background: set[asyncio.Task[Any]] = set()
    #: Partials that arrived while a new aggregator was still reading the recent ones.
    queued: list[bytes] = []
    #: Dead letters of broadcast reads (prices, open interest), sent on the next refresh.
    broadcast_deadletters: list[bytes] = []
    started_at = time.time()

    async def retrying(make: Callable[[], Awaitable[None]], what: str) -> None:
        """A rebuild or takeover read that fails (the broker went away mid-read) is tried
        again, with backoff, until it succeeds or its partition is revoked (cancelled)."""
        delay = 1.0
        while True:
            try:
                await make()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s failed (%s); retrying in %.0fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def spawn(coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        background.add(task)
        task.add_done_callback(background.discard)
        return task

    async def rebuild(partition: int) -> None:
        ps = state.parts[partition]
        started = time.monotonic()
        before = ps.store.events
        ends = await read_topic(settings.broker, topics.events,
                                lambda msg: state.apply_record(msg.partition, msg.offset,
                                                               msg.value),
                                partitions=[partition])
        ps.rebuilt_until = ends.get(partition, 0) - 1
        ps.rebuilt_events = ps.store.events - before
        ps.mark_ready()
        state.metrics_changed(urgent=True)
        log.info("partition %d: rebuilt %d events in %.2fs", partition, ps.rebuilt_events,
                 time.monotonic() - started)

    async def become_aggregator() -> None:
        started = time.monotonic()
        since = time.time() - 2 * settings.full_interval - 10
        await read_topic(settings.broker, topics.partials,
                         lambda msg: state.apply_partial(msg.value), since=since)
        last: dict[str, Any] = {}

        def keep_snapshot(msg: Any) -> None:
            with contextlib.suppress(orjson.JSONDecodeError):
                obj = orjson.loads(msg.value or b"")
                if isinstance(obj, dict) and obj.get("type") == "snapshot":
                    last["msg"] = obj
        await read_topic(settings.broker, topics.signals, keep_snapshot,
                         since=time.time() - RESTORE_MAX_AGE)
        snap = last.get("msg")
        if snap and isinstance(snap.get("signals"), dict) \
                and time.time() - float(snap.get("published_at") or 0) < RESTORE_MAX_AGE:
            state.stress.restore(snap["signals"], float(snap.get("ts") or time.time()))
        for value in queued:
            state.apply_partial(value)
        queued.clear()
        state.aggregator_ready = True
        state.metrics_changed(urgent=True)
        log.info("aggregator: active after %.2fs (%d partitions from partials)",
                 time.monotonic() - started, len(state.merger.views))

    @app.on_partitions_revoked.connect
    async def on_revoked(_app: Any, revoked: set[TP], **_: Any) -> None:
        for tp in revoked:
            if tp.topic == topics.events:
                task = rebuilds.pop(tp.partition, None)
                if task is not None:
                    task.cancel()
                state.revoke(tp.partition)
            elif tp.topic == topics.partials:
                task = takeover.pop("task", None)
                if task is not None:
                    task.cancel()
                state.aggregating = False
                state.aggregator_ready = False
                queued.clear()
        state.metrics_changed(urgent=True)

    @app.on_partitions_assigned.connect
    async def on_assigned(_app: Any, assigned: set[TP], **_: Any) -> None:
        state.generation += 1
        for tp in sorted(assigned):
            if tp.topic == topics.events:
                ps, needs_rebuild = state.assign(tp.partition)
                if needs_rebuild:
                    rebuilds[tp.partition] = spawn(
                        retrying(lambda p=tp.partition: rebuild(p), f"rebuild of {tp}"),
                        f"rebuild-{tp.partition}")
            elif tp.topic == topics.partials and not state.aggregating:
                state.aggregating = True
                state.aggregator_ready = False
                takeover["task"] = spawn(retrying(become_aggregator, "aggregator takeover"),
                                         "become-aggregator")
        state.forget_parked()
        state.assigned = True
        state.ready.set()
        state.metrics_changed(urgent=True)
        log.info("assigned partitions %s%s", sorted(p for p in state.parts),
                 " + aggregator" if state.aggregating else "")

    @app.agent(events_topic, name="count-liquidations")
    async def count(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            ps = state.parts.get(msg.partition)
            while ps is not None and not ps.ready:
                # Its rebuild reads the partition now; afterwards the offsets it covered are
                # skipped below instead of being counted as duplicates.
                await asyncio.sleep(0.05)
                ps = state.parts.get(msg.partition)
            if ps is None:
                continue  # revoked while buffered: the new owner reads it
            if ps.ready and msg.offset <= ps.rebuilt_until \
                    and msg.offset not in ps.invalid_offsets:
                continue  # the rebuild applied it (a lagging group re-reads history)
            if state.apply_record(msg.partition, msg.offset, event.value) is None \
                    and msg.offset not in ps.dead_lettered:
                ps.dead_lettered.add(msg.offset)
                await deadletter_topic.send(key=b"worker", value=_deadletter(
                    topics.events, msg.partition, msg.offset, event.value,
                    state.last_invalid_reason))

    @app.agent(partials_topic, name="aggregate")
    async def aggregate(stream: Any) -> None:
        async for value in stream:
            if not state.aggregating:
                continue
            if not state.aggregator_ready:
                queued.append(value)
                continue
            state.apply_partial(value)

    def on_price(msg: Any) -> None:
        if state.apply_price_record(msg.partition, msg.offset, msg.value) is None \
                and msg.timestamp / 1000.0 >= started_at \
                and msg.partition % settings.partitions in state.parts:
            # Every worker reads every price: one dead letter comes from the owner of the
            # matching liquidations partition, for records newer than this process (older
            # ones were dead-lettered by the worker that was running then).
            broadcast_deadletters.append(_deadletter(topics.prices, msg.partition, msg.offset,
                                                 msg.value, "invalid_price"))

    @app.task
    async def read_prices() -> None:
        await TopicTail(settings.broker, topics.prices, on_price).run()

    def on_open_interest(msg: Any) -> None:
        if state.apply_oi_record(msg.partition, msg.offset, msg.value) is None \
                and msg.timestamp / 1000.0 >= started_at \
                and msg.partition % settings.partitions in state.parts:
            # As for prices: one dead letter, from the owner of the matching partition.
            broadcast_deadletters.append(_deadletter(topics.open_interest, msg.partition,
                                                 msg.offset, msg.value, "invalid_open_interest"))

    @app.task
    async def read_open_interest() -> None:
        await TopicTail(settings.broker, topics.open_interest, on_open_interest).run()

    def on_coverage(msg: Any) -> None:
        if state.apply_coverage_record(msg.partition, msg.offset, msg.value) is None \
                and msg.timestamp / 1000.0 >= started_at and state.aggregating:
            # One dead letter, from the aggregator (every worker reads every record).
            broadcast_deadletters.append(_deadletter(topics.coverage, msg.partition,
                                                 msg.offset, msg.value, "invalid_coverage"))

    @app.task
    async def read_coverage() -> None:
        await TopicTail(settings.broker, topics.coverage, on_coverage).run()

    @app.task
    async def read_partials() -> None:
        """Every worker follows the partials topic outside the group (a broadcast read, like
        prices), from the last two full intervals, so its merger holds every partition and
        the JSON API answers with the global view on any worker. Applying a partial twice (the
        aggregator's agent reads the same records) changes nothing: stale ones are ignored."""
        while True:
            consumer = _consumer(settings.broker)
            try:
                await consumer.start()
                parts: list[int] = []
                while not parts:
                    parts = await _partitions(consumer, topics.partials)
                    if not parts:
                        await asyncio.sleep(1.0)
                tps = [TopicPartition(topics.partials, p) for p in parts]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                await _seek_since(consumer, tps,
                                  time.time() - 2 * settings.full_interval - 10)
                while True:
                    batch = await consumer.getmany(timeout_ms=1000, max_records=2000)
                    for msgs in batch.values():
                        for msg in msgs:
                            state.apply_partial(msg.value)
                        await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker gone or restarting: start over (idempotent)
                log.warning("reading %s failed (%s); retrying", topics.partials, exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    def resync_on_failure(fut: asyncio.Future[Any], ps: Any) -> None:
        # A lost delta would leave the aggregator's copy stale until the buckets change
        # again (Tansu fails one of two concurrent writes to a partition): send a full.
        if fut.cancelled() or fut.exception() is not None:
            ps.last_full = -math.inf
            log.warning("partial of partition %d not delivered (%s); a full follows",
                        ps.partition, "cancelled" if fut.cancelled() else fut.exception())

    @app.task
    async def probe_broker() -> None:
        # aiokafka retries a lost broker silently for ever: without this probe a worker
        # whose broker died would keep reporting itself ready.
        failures = 0
        hosts = [h.rpartition(":") for h in settings.broker.split(",")]
        while True:
            ok = False
            for host, _, port in hosts:
                try:
                    _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)),
                                                       2.0)
                    writer.close()
                    ok = True
                    break
                except (OSError, TimeoutError):
                    continue
            failures = 0 if ok else failures + 1
            if ok or failures >= 2:
                state.set_broker_up(ok, source="probe")
            await asyncio.sleep(1.0)

    @app.timer(settings.refresh_interval)
    async def refresh() -> None:
        if not state.ready.is_set():
            return
        await state.refresh_async()
        wall = time.monotonic()
        now = state.now()
        for p, ps in list(state.parts.items()):
            if not ps.ready:
                continue
            full = wall - ps.last_full >= settings.full_interval
            if full:
                ps.last_full = wall
            for value in ps.messages(now, state.worker_id, full):
                fut = await partials_topic.send(key=str(p).encode(), value=value)
                fut.add_done_callback(lambda f, ps=ps: resync_on_failure(f, ps))
        while broadcast_deadletters:
            await deadletter_topic.send(key=b"worker", value=broadcast_deadletters.pop(0))
        if state.aggregating and state.aggregator_ready:
            await publish(state, lambda k, v: windows_topic.send(key=k, value=v),
                          lambda k, v: signals_topic.send(key=k, value=v))

    for task in tasks or []:
        def make(t: Callable[[WorkerState], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
            async def run_task() -> None:
                await t(state)
            run_task.__name__ = getattr(t, "__name__", "task")
            return run_task
        app.task(make(task))

    return app, state
