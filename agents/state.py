"""The worker's state, with no Faust in it: the partitions this worker owns, the prices it
reads (every worker reads every price partition), and, on the one worker elected aggregator,
the merged view of every partition and the stress signals computed from it.

Ownership follows the consumer group (agents/app.py calls ``assign``/``revoke``). A revoked
partition is parked, not dropped at once: when the very next assignment hands it back (a
rebalance that moved nothing, or the group re-forming after a broker restart), nobody else can
have consumed it meanwhile, so its state is reused as is and events re-delivered from the
committed offset count once (ids). Otherwise it is rebuilt from the topic.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from liqstress.config import WorkerSettings
from liqstress.coverage import (
    CoverageError,
    CoverageStore,
    SourceCoverage,
    WindowCoverage,
    coverage_dict,
    coverage_from_json,
)
from liqstress.event import EventError, LiquidationEvent, read_event
from liqstress.feed import PartitionFeed
from liqstress.infra.metrics import Metrics
from liqstress.oi_history import OIHistory
from liqstress.open_interest import OIError, OpenInterest, oi_from_json
from liqstress.partials import Merger, PartialError, PartitionStore, decode_partial
from liqstress.prices import (
    LiquidationLevels,
    MergedLevels,
    PriceError,
    PriceStore,
    PriceTick,
    tick_from_json,
)
from liqstress.stress import StressEngine, StressResult
from liqstress.windows import WINDOWS, BucketTable, Rollup, Snapshot, coin_scale, rollup_steps

log = logging.getLogger(__name__)


@dataclass
class StoreTotals:
    """Counts over the partitions a state reads (what replay and tests inspect)."""

    events: int
    duplicates: int
    buckets: int

    def bucket_count(self) -> int:
        return self.buckets


@dataclass
class _Source:
    """One partition's state as the aggregator reads it: a local store or a remote view."""

    partition: int
    table: BucketTable
    levels: Any
    events: int
    duplicates: int
    invalid: int
    offset: int
    #: The partition's single events and price-level heatmap (liqstress/feed.py, partials).
    feed: PartitionFeed | None = None
    heat: LiquidationLevels | None = None


@dataclass
class WorkerState:
    settings: WorkerSettings
    metrics: Metrics
    worker_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    #: liquidations partition -> its state, for the partitions this worker owns
    parts: dict[int, PartitionStore] = field(default_factory=dict)
    #: revoked partitions: (state, generation of the revoke)
    parked: dict[int, tuple[PartitionStore, int]] = field(default_factory=dict)
    generation: int = 0
    #: False from a revoke until the next assignment (a rebalance in progress).
    assigned: bool = True
    merger: Merger = field(default_factory=Merger)
    #: Standalone use (tests, the benchmark) aggregates; the app clears it until this worker
    #: owns the partials partition.
    aggregating: bool = True
    #: The aggregator has read the recent partials: its windows are complete.
    aggregator_ready: bool = True
    prices: PriceStore = field(default_factory=PriceStore)
    price_offsets: dict[int, int] = field(default_factory=dict)
    price_counts: dict[str, int] = field(default_factory=dict)
    invalid_prices: int = 0
    #: Open interest and funding per instrument (every worker reads every OI partition).
    oi: OIHistory = field(default_factory=OIHistory)
    oi_offsets: dict[int, int] = field(default_factory=dict)
    oi_counts: dict[str, int] = field(default_factory=dict)
    invalid_oi: int = 0
    #: What each venue's windows cover (the collectors' records, read as a broadcast), and
    #: per window as of the last refresh (the aggregator's).
    coverage: CoverageStore = field(default_factory=CoverageStore)
    invalid_coverage: int = 0
    last_coverage: dict[str, WindowCoverage] = field(default_factory=dict)
    #: Dead-letter reason of the last record apply_record refused.
    last_invalid_reason: str = "invalid_event"
    stress: StressEngine = field(default_factory=StressEngine)
    broker_up: bool = True
    _broker_views: dict[str, bool] = field(default_factory=dict)
    #: Pins the window clock (replay: the recording's last timestamp).
    fixed_now: float | None = None
    #: The newest receipt time applied (events, prices, partials): the "event" clock, kept
    #: as a running maximum because it is read for every event applied.
    event_clock: float = 0.0
    #: This worker's own partitions rolled up (its share of every window).
    local: Rollup | None = None
    last_snapshot: Snapshot | None = None
    last_stress: StressResult | None = None
    last_sources: list[_Source] = field(default_factory=list)
    #: State changes (cascade start/end, ...) evaluated but not yet handed out for publishing.
    pending_changes: list[dict[str, Any]] = field(default_factory=list)
    cascades_started: dict[str, int] = field(default_factory=lambda: {"long": 0, "short": 0})
    snapshots_published: int = 0
    #: Refreshes started, and the newest that took effect (``_refresh_steps``).
    _refresh_started: int = 0
    _refresh_done: int = 0
    refreshed_at: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    #: Something exported changed since the exporter's last snapshot (agents/exporter.py).
    metrics_dirty: bool = True
    #: Set by the exporter: called with ``urgent`` when something exported changes.
    on_metrics_change: Callable[[bool], None] = field(default=lambda urgent: None, repr=False)
    #: Set by the JSON API (agents/api.py): True while someone reads it. A worker that is not
    #: the aggregator then also rolls up every partition's windows at refresh (from the
    #: partials it reads as a broadcast), so any worker answers with the global view.
    api_active: Callable[[], bool] = field(default=lambda: False, repr=False)
    #: Set by the JSON API: called on the loop at the end of every refresh.
    on_refresh: Callable[[], None] = field(default=lambda: None, repr=False)
    #: The global windows and every partition's source, as of the last refresh that computed
    #: them (the aggregator's own, or a non-aggregator's roll-up for the API).
    view_snapshot: Snapshot | None = None
    view_sources: list[_Source] = field(default_factory=list)
    #: time.monotonic() when view_snapshot was computed.
    view_at: float = 0.0

    # ---- ownership ----------------------------------------------------------------------
    def part(self, partition: int) -> PartitionStore:
        ps = self.parts.get(partition)
        if ps is None:
            ps = self.parts[partition] = PartitionStore(
                partition, level_horizon=self.stress.settings.cluster_window)
            ps.new_epoch()
            ps.mark_ready()  # standalone: nothing to rebuild
        return ps

    def assign(self, partition: int) -> tuple[PartitionStore, bool]:
        """Take ``partition``; returns its state and whether it must be rebuilt."""
        parked = self.parked.pop(partition, None)
        if parked is not None and parked[1] == self.generation - 1:
            ps = parked[0]
            ps.new_epoch()
            ps.mark_ready()
            self.parts[partition] = ps
            self.metrics_changed()
            return ps, False
        ps = parked[0] if parked is not None else PartitionStore(
            partition, level_horizon=self.stress.settings.cluster_window)
        ps.new_epoch()
        self.parts[partition] = ps
        self.metrics_changed()
        return ps, True

    def revoke(self, partition: int) -> None:
        self.assigned = False
        ps = self.parts.pop(partition, None)
        if ps is not None:
            self.parked[partition] = (ps, self.generation)
        self.metrics_changed()

    def forget_parked(self) -> None:
        """Parked states older than the last rebalance can never be reused as they are."""
        for p in [p for p, (_, g) in self.parked.items() if g < self.generation - 1]:
            del self.parked[p]

    def is_ready(self) -> bool:
        """Broker there, partitions assigned since the last revoke (not mid-rebalance, where
        the window gauges cover nothing), and every owned partition rebuilt."""
        return self.broker_up and self.ready.is_set() and self.assigned and all(
            ps.ready for ps in self.parts.values())

    def set_broker_up(self, up: bool, source: str = "supervisor") -> None:
        """Whether the broker is there, as the embedded broker's supervisor or the worker's
        own probe sees it: healthy only while neither says it is down."""
        self._broker_views[source] = up
        now_up = all(self._broker_views.values())
        if now_up != self.broker_up:
            log.warning("broker %s", "back" if now_up else "down: health gauges at 0")
            self.broker_up = now_up
            self.metrics_changed(urgent=True)

    def metrics_changed(self, urgent: bool = False) -> None:
        """Something exported changed: the exporter's snapshot is rebuilt now when
        ``urgent`` (health, the end of a refresh), else soon (counters; coalesced)."""
        if urgent or not self.metrics_dirty:
            self.metrics_dirty = True
            self.on_metrics_change(urgent)

    # ---- input ----------------------------------------------------------------------------
    def now(self) -> float:
        if self.fixed_now is not None:
            return self.fixed_now
        if self.settings.clock == "event":
            return self.event_clock
        return time.time()

    def _clock_for(self, ev: LiquidationEvent) -> float:
        if self.settings.clock == "wall" or self.fixed_now is not None:
            return self.now()
        return max(self.now(), ev.recv_ts)

    def _advance_clock(self, recv_ts: float) -> None:
        if recv_ts > self.event_clock:
            self.event_clock = recv_ts

    def apply(self, ev: LiquidationEvent, partition: int = 0) -> bool:
        ps = self.part(partition)
        coin, units = coin_scale(ev.base)
        applied = ps.apply(ev, self._clock_for(ev), coin, ev.price / units)
        if not self.metrics_dirty:
            self.metrics_changed()  # counted, or counted as a duplicate
        if not applied:
            return False
        self._advance_clock(ev.recv_ts)
        return True

    def apply_record(self, partition: int, offset: int,
                     value: bytes | None) -> LiquidationEvent | None:
        """Decode and apply one record of the liquidations topic; None when invalid."""
        ps = self.part(partition)
        ps.advance(offset)
        if not self.metrics_dirty:
            self.metrics_changed()
        try:
            ev = read_event(value or b"", self.settings.max_notional_usd)
        except EventError as exc:
            # Anyone with write access to the topic could have produced it: refused events
            # are dead-lettered by the caller under the same reason the collectors use.
            self.last_invalid_reason = exc.reason
            if ps.note_invalid(offset):
                log.warning("invalid event at partition %d offset %d: %s", partition, offset,
                            exc)
            return None
        coin, units = coin_scale(ev.base)
        if ps.apply(ev, self._clock_for(ev), coin, ev.price / units):
            self._advance_clock(ev.recv_ts)
        return ev

    def apply_tick(self, tick: PriceTick) -> bool:
        if not self.prices.add(tick):
            return False
        self._advance_clock(tick.recv_ts)
        self.price_counts[tick.exchange] = self.price_counts.get(tick.exchange, 0) + 1
        if not self.metrics_dirty:
            self.metrics_changed()
        return True

    def apply_price_record(self, partition: int, offset: int,
                           value: bytes | None) -> PriceTick | None:
        if offset > self.price_offsets.get(partition, -1):
            self.price_offsets[partition] = offset
        try:
            tick = tick_from_json(value or b"")
        except PriceError as exc:
            self.invalid_prices += 1
            self.metrics_changed()
            log.warning("invalid price at partition %d offset %d: %s", partition, offset, exc)
            return None
        self.apply_tick(tick)
        return tick

    def apply_oi(self, rec: OpenInterest) -> bool:
        if not self.oi.apply(rec):
            return False
        self._advance_clock(rec.recv_ts)
        self.oi_counts[rec.exchange] = self.oi_counts.get(rec.exchange, 0) + 1
        if not self.metrics_dirty:
            self.metrics_changed()
        return True

    def apply_oi_record(self, partition: int, offset: int,
                        value: bytes | None) -> OpenInterest | None:
        if offset > self.oi_offsets.get(partition, -1):
            self.oi_offsets[partition] = offset
        try:
            rec = oi_from_json(value or b"")
        except OIError as exc:
            self.invalid_oi += 1
            self.metrics_changed()
            log.warning("invalid open-interest record at partition %d offset %d: %s",
                        partition, offset, exc)
            return None
        self.apply_oi(rec)
        return rec

    def apply_coverage_record(self, partition: int, offset: int,
                              value: bytes | None) -> SourceCoverage | None:
        try:
            rec = coverage_from_json(value or b"")
        except CoverageError as exc:
            self.invalid_coverage += 1
            self.metrics_changed()
            log.warning("invalid coverage record at partition %d offset %d: %s", partition,
                        offset, exc)
            return None
        self.coverage.apply(rec)
        return rec

    def apply_partial(self, value: bytes | None) -> bool:
        try:
            msg = decode_partial(value)
        except PartialError as exc:
            log.warning("invalid partial ignored: %s", exc)
            return False
        if msg["p"] in self.parts and msg.get("worker") == self.worker_id:
            return False  # our own partition: the local state is fresher
        if not self.merger.apply(msg):
            return False
        self._advance_clock(msg["max_recv_ts"])
        return True

    # ---- views used by replay and tests ---------------------------------------------------
    @property
    def offsets(self) -> dict[int, int]:
        """Highest offset applied per owned partition of the liquidations topic."""
        return {p: ps.offset for p, ps in sorted(self.parts.items())}

    @property
    def invalid(self) -> int:
        return (sum(ps.invalid for ps in self.parts.values()) + self.invalid_prices
                + self.invalid_oi)

    @property
    def store(self) -> StoreTotals:
        return StoreTotals(events=sum(ps.store.events for ps in self.parts.values()),
                           duplicates=sum(ps.store.duplicates for ps in self.parts.values()),
                           buckets=sum(ps.store.bucket_count() for ps in self.parts.values()))

    # ---- refresh --------------------------------------------------------------------------
    def _sources(self) -> list[_Source]:
        """Every partition the aggregator knows: this worker's ready ones from memory, the
        others from their partials (a partition still rebuilding here reads its former
        owner's last partials when there are any)."""
        out: list[_Source] = []
        for p in sorted(set(self.parts) | set(self.merger.views)):
            ps = self.parts.get(p)
            view = self.merger.views.get(p)
            if ps is not None and (ps.ready or view is None):
                out.append(_Source(p, ps.store.table, ps.levels, ps.store.events,
                                   ps.store.duplicates, ps.invalid, ps.offset, ps.feed,
                                   ps.heat))
            elif view is not None:
                out.append(_Source(p, view.table, view.levels, view.events, view.duplicates,
                                   view.invalid, view.offset, view.feed, view.heat))
        return out

    def refresh_steps(self) -> Iterator[None]:
        """Recompute this worker's share of the windows and, on the aggregator, the global
        windows and the stress signals; yields between chunks of work so the event loop can
        keep applying records (``refresh_async``). The exporter's snapshot is rebuilt at the
        end, from the finished result."""
        yield from self._refresh_steps()
        self.metrics_changed(urgent=True)
        self.on_refresh()

    def _refresh_steps(self) -> Iterator[None]:
        # A refresh that yields (the timer's) can be overtaken by one that does not (replay's
        # final one, after the last records): whichever started later wins, so a result
        # computed before those records never replaces one computed after them.
        self._refresh_started += 1
        ticket = self._refresh_started
        now = self.now()
        coins = tuple(self.settings.coins)
        for ps in list(self.parts.values()):
            yield from ps.prune_steps(now)
        local = Rollup.empty(now, coins)
        ready = [ps for ps in self.parts.values() if ps.ready]
        for ps in ready:
            yield from rollup_steps(ps.store.table, local)
        if ticket < self._refresh_done:
            return
        self._refresh_done = ticket
        self.local = local
        self.refreshed_at = time.time()
        if not (self.aggregating and self.aggregator_ready):
            if self.api_active():
                yield from self.global_view_steps(now)
            return
        yield from self._prune_views(now)
        self.prices.prune(now)
        self.oi.prune(now)
        sources = self._sources()
        if len(sources) == len(ready) and all(s.partition in self.parts for s in sources):
            merged = local  # one worker owns everything: the same sums
        else:
            merged = Rollup.empty(now, coins)
            for src in sources:
                yield from rollup_steps(src.table, merged)
        yield
        exchanges = set(self.metrics.known_exchanges)
        for src in sources:
            exchanges |= src.table.exchanges
        snap = merged.snapshot(sum(s.events for s in sources), sorted(exchanges))
        for src in sources:
            src.levels.prune(now)
        if ticket < self._refresh_done:
            return
        self._refresh_done = ticket
        self.coverage.prune(now)
        self.last_coverage = self.coverage.windows(now, WINDOWS)
        self.record_stress(self.stress.evaluate(
            snap, merged.hourly, prices=self.prices,
            levels=MergedLevels([s.levels for s in sources]), coin_hourly=merged.coin_hourly,
            coins=coins, oi=self.oi))
        self.last_snapshot = snap
        self.last_sources = sources
        self.view_snapshot = snap
        self.view_sources = sources
        self.view_at = time.monotonic()

    def _prune_views(self, now: float) -> Iterator[None]:
        for view in list(self.merger.views.values()):
            yield from view.table.prune_steps(now)
            view.levels.prune(now)
            view.heat.prune(now)
            view.feed.prune(now)

    def global_view_steps(self, now: float | None = None) -> Iterator[None]:
        """On a worker that is not the aggregator: every partition's windows rolled up, its
        own partitions from memory and the others from the partials it reads (the same
        sources and sums the aggregator uses), into ``view_snapshot``/``view_sources``."""
        now = self.now() if now is None else now
        yield from self._prune_views(now)
        self.prices.prune(now)
        self.oi.prune(now)
        sources = self._sources()
        merged = Rollup.empty(now, tuple(self.settings.coins))
        for src in sources:
            yield from rollup_steps(src.table, merged)
        exchanges = set(self.metrics.known_exchanges)
        for src in sources:
            exchanges |= src.table.exchanges
        self.view_snapshot = merged.snapshot(sum(s.events for s in sources), sorted(exchanges))
        self.view_sources = sources
        self.view_at = time.monotonic()

    def record_stress(self, res: StressResult) -> None:
        for ev in res.events:
            if ev["type"] == "cascade_start":
                self.cascades_started[ev["direction"]] += 1
        self.last_stress = res
        self.metrics_changed()
        # Queued, not just kept on last_stress: a second refresh before the publisher runs
        # (replay's final one racing the timer) must not drop a cascade start.
        self.pending_changes.extend(res.events)

    # ---- what the aggregator publishes (agents/publishing.py sends it) --------------------
    def windows_message(self, snap: Snapshot) -> dict[str, Any]:
        sources = self.last_sources
        return {
            "v": 1,
            "ts": snap.now,
            "clock": "fixed" if self.fixed_now is not None else self.settings.clock,
            "published_at": time.time(),
            "events": snap.events,
            "duplicates": sum(s.duplicates for s in sources),
            "invalid": sum(s.invalid for s in sources) + self.invalid_prices + self.invalid_oi,
            "offsets": {str(s.partition): s.offset for s in sources},
            "windows": snap.to_dict(),
            **self._coverage_key(),
        }

    def _coverage_key(self) -> dict[str, Any]:
        """``coverage``: per window, which venues cover it whole and how much of it was read
        back from history or is missing (an optional key of schema v1: absent until a
        collector has reported)."""
        cov = coverage_dict(self.last_coverage, list(WINDOWS))
        return {} if cov is None else {"coverage": cov}

    def stress_messages(self) -> list[dict[str, Any]]:
        """Every state change not handed out yet, then the snapshot of the last refresh."""
        res = self.last_stress
        if res is None:
            return []
        out = [{"v": 1, **ev} for ev in self.pending_changes]
        self.pending_changes.clear()
        out.append({"v": 1, "type": "snapshot", "ts": res.ts, "published_at": time.time(),
                    "aggregator": self.worker_id, "signals": res.to_dict(),
                    **self._coverage_key()})
        return out

    def refresh(self) -> Snapshot | None:
        for _ in self.refresh_steps():
            pass
        return self.last_snapshot

    async def refresh_async(self) -> Snapshot | None:
        for _ in self.refresh_steps():
            await asyncio.sleep(0)
        return self.last_snapshot
