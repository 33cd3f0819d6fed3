"""The Faust worker: consumes ``liquidations`` and ``prices``, keeps rolling windows and price
history, exports metrics and publishes window snapshots to ``liquidation.windows`` and stress
signals to ``stress.signals``.

State is an in-memory :class:`~liqstress.windows.WindowStore` rebuilt at start from the
``liquidations`` topic (see agents/rebuild.py for why not a Faust changelog table). Every window
op is a commutative sum/max over deduplicated ids, so rebuilt history and re-delivered
uncommitted records can overlap freely: after ``kill -9`` and restart the totals are exact.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
import orjson

from liqstress.config import WorkerSettings
from liqstress.event import EventError, LiquidationEvent, event_from_json
from liqstress.metrics import SIDES, Metrics
from liqstress.prices import LiquidationLevels, PriceError, PriceStore, PriceTick, tick_from_json
from liqstress.stress import SIGNAL_WINDOWS, StressEngine, StressResult
from liqstress.windows import WINDOWS, Snapshot, WindowStore, coin_scale

from .rebuild import ensure_topics, read_topic

log = logging.getLogger(__name__)


@dataclass
class TopicProgress:
    """Where the worker is in one source topic (liquidations or prices)."""

    #: Highest offset applied per partition (rebuild or live).
    offsets: dict[int, int] = field(default_factory=dict)
    #: End of what the start-up rebuild read, per partition: the agent re-delivers part of it.
    rebuilt_until: dict[int, int] = field(default_factory=dict)
    #: Invalid records the rebuild met: the agent still owes them a dead letter.
    invalid: set[tuple[int, int]] = field(default_factory=set)

    def advance(self, partition: int, offset: int) -> bool:
        """Record ``offset`` as applied; True when the start-up rebuild already read it."""
        if offset > self.offsets.get(partition, -1):
            self.offsets[partition] = offset
        return offset <= self.rebuilt_until.get(partition, -1)

    def already_applied(self, partition: int, offset: int) -> bool:
        """A record the rebuild applied (a fresh or lagging consumer group re-reads history):
        the agent skips it without decoding, unless it still owes it a dead letter."""
        return (offset <= self.rebuilt_until.get(partition, -1)
                and (partition, offset) not in self.invalid)


T = TypeVar("T")


@dataclass
class WorkerState:
    settings: WorkerSettings
    metrics: Metrics
    store: WindowStore = field(default_factory=WindowStore)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    events_in: TopicProgress = field(default_factory=TopicProgress)
    prices_in: TopicProgress = field(default_factory=TopicProgress)
    invalid: int = 0
    #: Pins the window clock (replay: the recording's last timestamp).
    fixed_now: float | None = None
    last_snapshot: Snapshot | None = None
    snapshots_published: int = 0
    stress: StressEngine = field(default_factory=StressEngine)
    last_stress: StressResult | None = None
    #: State changes (cascade start/end, ...) evaluated but not yet handed out for publishing.
    pending_changes: list[dict[str, Any]] = field(default_factory=list)
    prices: PriceStore = field(default_factory=PriceStore)
    levels: LiquidationLevels | None = None

    def __post_init__(self) -> None:
        if self.levels is None:
            self.levels = LiquidationLevels(horizon=self.stress.settings.cluster_window)

    @property
    def offsets(self) -> dict[int, int]:
        """Highest offset applied per partition of the liquidations topic."""
        return self.events_in.offsets

    @property
    def price_offsets(self) -> dict[int, int]:
        return self.prices_in.offsets

    def now(self) -> float:
        if self.fixed_now is not None:
            return self.fixed_now
        if self.settings.clock == "event":
            return max(self.store.max_recv_ts, self.prices.max_recv_ts)
        return time.time()

    def apply(self, ev: LiquidationEvent) -> bool:
        now = self.now() if self.settings.clock == "wall" or self.fixed_now is not None \
            else max(self.now(), ev.recv_ts)
        if not self.store.add(ev, now):
            self.metrics.duplicates.labels(ev.exchange).inc()
            return False
        self.metrics.liquidations.labels(ev.exchange, ev.side).inc()
        if ev.notional_usd is not None:
            self.metrics.liquidated_usd.labels(ev.exchange, ev.side).inc(ev.notional_usd)
        assert self.levels is not None
        coin, units = coin_scale(ev.base)
        # Only after the id dedupe above: a re-delivered event must not add its USD twice.
        self.levels.add(coin, ev.price / units, ev.side, ev.notional_usd, ev.ts, now)
        return True

    def apply_tick(self, tick: PriceTick) -> bool:
        if not self.prices.add(tick):
            return False
        self.metrics.prices.labels(tick.exchange).inc()
        return True

    def _decode(self, progress: TopicProgress, partition: int, offset: int,
                value: bytes | None, decode: Callable[[bytes], T],
                errors: type[Exception], what: str) -> T | None:
        seen_before = progress.advance(partition, offset)
        try:
            return decode(value or b"")
        except errors as exc:
            if not seen_before:  # counted once: the agent re-delivers what the rebuild read
                self.invalid += 1
                progress.invalid.add((partition, offset))
                log.warning("invalid %s at partition %d offset %d: %s", what, partition, offset,
                            exc)
            return None

    def apply_price_record(self, partition: int, offset: int,
                           value: bytes | None) -> PriceTick | None:
        tick = self._decode(self.prices_in, partition, offset, value, tick_from_json,
                            PriceError, "price")
        if tick is not None:
            self.apply_tick(tick)
        return tick

    def apply_record(self, partition: int, offset: int, value: bytes | None) -> LiquidationEvent | None:
        ev = self._decode(self.events_in, partition, offset, value, event_from_json,
                          EventError, "event")
        if ev is not None:
            self.apply(ev)
        return ev

    def refresh(self) -> Snapshot:
        """Recompute every window, set the gauges, and return the snapshot to publish."""
        now = self.now()
        self.store.prune(now)
        snap = self.store.snapshot(now)
        m = self.metrics
        coins = set(self.settings.coins)
        for w in WINDOWS:
            for ex, sides in snap.windows[w]["exchange"].items():
                for side in SIDES:
                    agg = sides[side]
                    m.window_liquidated_usd.labels(ex, side, w).set(agg.usd)
                    m.window_liquidations.labels(ex, side, w).set(agg.count)
                    m.window_largest_usd.labels(ex, side, w).set(agg.largest_usd)
            for coin in coins:
                sides = snap.windows[w]["coin"].get(coin)
                for side in SIDES:
                    m.coin_window_liquidated_usd.labels(coin, side, w).set(
                        sides[side].usd if sides else 0.0)
        assert self.levels is not None
        self.prices.prune(now)
        self.levels.prune(now)
        coin_list = tuple(self.settings.coins)
        self.last_stress = self.stress.evaluate(
            snap, self.store.hourly_totals(snap.now), prices=self.prices, levels=self.levels,
            coin_hourly=self.store.hourly_totals_by_coin(snap.now, coin_list), coins=coin_list)
        export_stress(m, self.last_stress)
        # Queued, not just kept on last_stress: a second refresh before the publisher runs
        # (replay's final one racing the timer) must not drop a cascade start.
        self.pending_changes.extend(self.last_stress.events)
        export_prices(m, self, now)
        m.window_refresh_ts.set(time.time())
        self.last_snapshot = snap
        return snap

    def stress_messages(self) -> list[dict[str, Any]]:
        """The ``stress.signals`` records to publish: every state change not handed out yet,
        then the snapshot of the last refresh."""
        res = self.last_stress
        if res is None:
            return []
        out = [{"v": 1, **ev} for ev in self.pending_changes]
        self.pending_changes.clear()
        out.append({"v": 1, "type": "snapshot", "ts": res.ts, "published_at": time.time(),
                    "signals": res.to_dict()})
        return out

    def snapshot_message(self, snap: Snapshot) -> dict[str, Any]:
        return {
            "v": 1,
            "ts": snap.now,
            "clock": "fixed" if self.fixed_now is not None else self.settings.clock,
            "published_at": time.time(),
            "events": snap.events,
            "duplicates": self.store.duplicates,
            "invalid": self.invalid,
            "offsets": {str(p): o for p, o in sorted(self.offsets.items())},
            "windows": snap.to_dict(),
        }


def _set_or_remove(gauge: Any, labels: tuple[str, ...], value: float | None) -> None:
    if value is None:
        try:
            gauge.remove(*labels)
        except KeyError:
            pass
    elif labels:
        gauge.labels(*labels).set(value)
    else:
        gauge.set(value)


def export_prices(m: Metrics, state: WorkerState, now: float) -> None:
    """Price gauges for allowlisted coins, and the price-based signals."""
    res = state.last_stress
    lookback = state.stress.settings.local_extreme_hours * 3600.0
    current = state.prices.breadth_inputs(now)
    m.price_coins.set(len(current))
    for coin in state.settings.coins:
        _set_or_remove(m.coin_price, (coin,), state.prices.price_at(coin, now))
        ext = state.prices.extremes(coin, now, lookback)
        _set_or_remove(m.coin_local_low, (coin,), ext[0] if ext else None)
        _set_or_remove(m.coin_local_high, (coin,), ext[1] if ext else None)
        info = (res.clusters.get("coins", {}).get(coin) if res and res.clusters else None) or {}
        _set_or_remove(m.coin_near_extreme, (coin, "long"), info.get("long_share_near_low"))
        _set_or_remove(m.coin_near_extreme, (coin, "short"), info.get("short_share_near_high"))
        div = res.divergence.get(coin) if res else None
        _set_or_remove(m.divergence_active, (coin,), None if div is None else float(div.flag))
        _set_or_remove(m.divergence_liq_trend, (coin,), div.liq_slope if div else None)
        _set_or_remove(m.divergence_range_trend, (coin,), div.range_slope if div else None)
    near = res.near_extreme if res else None
    _set_or_remove(m.near_extreme, ("long",), near.long_share_near_low if near else None)
    _set_or_remove(m.near_extreme, ("short",), near.short_share_near_high if near else None)
    b = res.breadth if res else None
    _set_or_remove(m.breadth_down, ("1h",), b.down_1h_share if b else None)
    _set_or_remove(m.breadth_down, ("24h",), b.down_24h_share if b else None)
    _set_or_remove(m.breadth_coins, ("1h",), float(b.coins_1h) if b else None)
    _set_or_remove(m.breadth_coins, ("24h",), float(b.coins_24h) if b else None)


def export_stress(m: Metrics, res: StressResult) -> None:
    for w in SIGNAL_WINDOWS:
        imb, conc = res.imbalance[w], res.concentration[w]
        _set_or_remove(m.long_share, (w,), imb.long_share)
        for ex, share in imb.per_exchange.items():
            _set_or_remove(m.exchange_long_share, (ex, w), share)
        for ex, share in conc.shares.items():
            m.exchange_share.labels(ex, w).set(share)
        _set_or_remove(m.top2_share, (w,), conc.top2_share)
        _set_or_remove(m.hhi, (w,), conc.hhi)
    for side in SIDES:
        sp = res.spike[side]
        _set_or_remove(m.spike_multiple, (side,), sp.multiple)
        m.spike_active.labels(side).set(1 if sp.flag else 0)
        cs = res.cascades[side]
        m.cascade_active.labels(side).set(1 if cs.active else 0)
        m.cascade_size_usd.labels(side).set(cs.size_usd)
    for ev in res.events:
        if ev["type"] == "cascade_start":
            m.cascades.labels(ev["direction"]).inc()
    d = res.deleveraging
    m.deleveraging_largest_hour_share.set(d.largest_hour_share or 0.0)
    m.deleveraging_spike_hours.set(d.distinct_spike_hours)
    for state in ("calm", "staged", "capitulation"):
        m.deleveraging_state.labels(state).set(1 if d.label == state else 0)
    m.stress_index.set(res.index.value)
    for comp, val in res.index.components.items():
        _set_or_remove(m.stress_component, (comp,), val)


def create_app(settings: WorkerSettings, metrics: Metrics,
               tasks: list[Callable[[WorkerState], Awaitable[None]]] | None = None,
               state: WorkerState | None = None) -> tuple[faust.App, WorkerState]:
    settings.validate()
    state = state or WorkerState(settings=settings, metrics=metrics)
    metrics.init_coins(settings.coins)
    class WorkerApp(faust.App):
        async def on_first_start(self) -> None:
            # Before the consumer joins its group: every source topic must exist by then.
            await ensure_topics(settings.broker, [settings.topics.events, settings.topics.prices],
                                settings.partitions)
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
        datadir=settings.datadir or f"/tmp/liqstress-{settings.app_id}",
    )
    events_topic = app.topic(settings.topics.events, value_serializer="raw", key_serializer="raw")
    windows_topic = app.topic(settings.topics.windows, value_serializer="raw", key_serializer="raw")
    deadletter_topic = app.topic(settings.topics.deadletter, value_serializer="raw",
                                 key_serializer="raw")
    signals_topic = app.topic(settings.topics.signals, value_serializer="raw",
                              key_serializer="raw")
    prices_topic = app.topic(settings.topics.prices, value_serializer="raw", key_serializer="raw")

    #: (topic, progress, apply) of each source topic, in rebuild order.
    sources = ((settings.topics.prices, state.prices_in, state.apply_price_record),
               (settings.topics.events, state.events_in, state.apply_record))

    async def rebuild() -> None:
        started = time.monotonic()

        before = state.store.events
        ticks_before = state.prices.ticks
        # Prices first: the clusters judge liquidations against the local low/high.
        for topic, progress, apply_record in sources:
            ends = await read_topic(settings.broker, topic,
                                    lambda msg, f=apply_record: f(msg.partition, msg.offset,
                                                                  msg.value))
            progress.rebuilt_until = {p: end - 1 for p, end in ends.items()}
        n = state.store.events - before
        metrics.worker_rebuilt_events.set(n)
        log.info("rebuilt %d events from %s and %d prices from %s in %.2fs", n,
                 settings.topics.events, state.prices.ticks - ticks_before,
                 settings.topics.prices, time.monotonic() - started)
        state.refresh()
        state.ready.set()
        metrics.worker_ready.set(1)

    def consumer(topic: str, progress: TopicProgress,
                 apply_record: Callable[[int, int, bytes | None], Any],
                 reason: str) -> Callable[[Any], Awaitable[None]]:
        async def consume(stream: Any) -> None:
            await state.ready.wait()
            async for event in stream.events():
                msg = event.message
                if progress.already_applied(msg.partition, msg.offset):
                    continue
                if apply_record(msg.partition, msg.offset, event.value) is None:
                    await deadletter_topic.send(key=b"worker", value=orjson.dumps({
                        "exchange": "", "source": f"kafka:{topic}", "recv_ts": time.time(),
                        "reason": reason,
                        "detail": f"partition {msg.partition} offset {msg.offset}",
                        "frame": (event.value or b"").decode("utf-8", "replace")}))
        return consume

    app.agent(prices_topic, name="apply-prices")(
        consumer(settings.topics.prices, state.prices_in, state.apply_price_record,
                 "invalid_price"))
    app.agent(events_topic, name="count-liquidations")(
        consumer(settings.topics.events, state.events_in, state.apply_record, "invalid_event"))

    @app.task
    async def start_rebuild() -> None:
        await rebuild()

    @app.timer(settings.refresh_interval)
    async def refresh_windows() -> None:
        if not state.ready.is_set():
            return
        snap = state.refresh()
        await windows_topic.send(key=b"snapshot", value=orjson.dumps(state.snapshot_message(snap)))
        for msg in state.stress_messages():
            await signals_topic.send(key=msg["type"].encode(), value=orjson.dumps(msg))
        state.snapshots_published += 1

    for task in tasks or []:
        def make(t: Callable[[WorkerState], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
            async def run_task() -> None:
                await t(state)
            run_task.__name__ = getattr(t, "__name__", "task")
            return run_task
        app.task(make(task))

    return app, state
