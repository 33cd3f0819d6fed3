"""Partitioned window state: what one worker keeps per ``liquidations`` partition, the partial
messages it publishes about it, and the aggregator's merge of every partition's partials.

Pure (no Faust/Kafka). Every value is a sum or a maximum over deduplicated event ids, and
events are keyed ``exchange:symbol`` so a duplicate always lands on the same partition: the
global windows are exactly the sum of the per-partition ones.

Partials carry absolute bucket values, never increments, so re-reading one is harmless. Each
ownership of a partition is an *epoch* (a fresh id and its start time): a new owner first
publishes a **full** (every bucket, in chunks), then **deltas** (the buckets changed since its
last message), and a full again every ``full_interval`` so a newly elected aggregator converges
from a short read of the partials topic. The aggregator applies a delta only on top of the full
of the same epoch, and a full only if it is newer than what it holds (a later epoch start, or a
later sequence number of the same epoch): a stale former owner's late message changes nothing.

Partials also carry the partition's **feed** (single events: the recent ring and the largest
candidates, ``liqstress/feed.py``) and its **heatmap** (liquidated USD per 0.25 % price level
and 5-minute slot over 24 h, a :class:`LiquidationLevels` with ``slot_seconds=300``), under the
optional keys ``feed`` and ``heat``: a partial without them (an older worker's) still decodes
and simply adds no events. Heat cells are absolute values like the buckets. Feed entries are
immutable events: a full carries every entry held (at most ``RECENT_SIZE`` plus
``SKYLINE_CAP`` per hour, a few thousand rows, chunked like the buckets), a delta the entries
added since the previous message. Adding is idempotent and what a feed keeps is a function of
the set of entries added, so a copy fed the same full and deltas holds the same feed, and a
re-read changes nothing. (Sending the whole bounded feed in every delta would be simpler but is
up to ~1 MB per partition per refresh; the added entries are a handful.)
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .event import LiquidationEvent
from .feed import FeedError, PartitionFeed, check_entry
from .prices import LiquidationLevels
from .windows import BucketTable, Rollup, WindowStore, rollup_steps
from .wire import json_record

SCHEMA_VERSION = 1
#: Bucket and level rows per partial message: keeps every message well under Kafka's 1 MB.
ROWS_PER_MESSAGE = 4000
#: The heatmap: 5-minute slots over 24 hours (plus a slot), per coin and 0.25 % price level.
HEAT_SLOT = 300
HEAT_HORIZON = 86400.0


def new_heat(track_dirty: bool = False) -> LiquidationLevels:
    return LiquidationLevels(horizon=HEAT_HORIZON, slot_seconds=HEAT_SLOT,
                             track_dirty=track_dirty)


class PartialError(ValueError):
    """A partial message that cannot be used."""


@dataclass
class PartitionStore:
    """The state of one ``liquidations`` partition owned by this worker."""

    partition: int
    level_horizon: float = 3600.0
    store: WindowStore = field(default_factory=lambda: WindowStore(track_dirty=True))
    levels: LiquidationLevels = field(init=False)
    #: Single events (recent ring, largest candidates) and the 24 h price-level heatmap.
    feed: PartitionFeed = field(default_factory=lambda: PartitionFeed(track_dirty=True))
    heat: LiquidationLevels = field(default_factory=lambda: new_heat(track_dirty=True))
    #: (exchange, side) -> [events, USD]: the partition's monotonic counters.
    counts: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    duplicates_by_exchange: dict[str, int] = field(default_factory=dict)
    invalid: int = 0
    #: Offsets of invalid records already counted (a rebuild and the agent both read them).
    invalid_offsets: set[int] = field(default_factory=set)
    dead_lettered: set[int] = field(default_factory=set)
    #: Highest offset applied, and the end of what this ownership's rebuild read.
    offset: int = -1
    rebuilt_until: int = -1
    rebuilt_events: int = 0
    ready: bool = False
    epoch: str = ""
    epoch_ts: float = 0.0
    seq: int = 0
    #: Wall-clock (monotonic) time of the last full published; the worker sets it.
    last_full: float = -math.inf

    def __post_init__(self) -> None:
        self.levels = LiquidationLevels(horizon=self.level_horizon, track_dirty=True)

    def new_epoch(self, now: float | None = None) -> None:
        """A new ownership (assignment): the next partial is a full, the rebuild starts over."""
        self.epoch = uuid.uuid4().hex[:12]
        self.epoch_ts = time.time() if now is None else now
        self.seq = 0
        self.last_full = -math.inf
        self.ready = False
        self.rebuilt_until = -1
        # The first partial of an epoch is a full: no need to track changes until then.
        self._track(False)

    def _track(self, on: bool) -> None:
        for part in (self.store.table, self.levels, self.heat, self.feed):
            part.track_dirty = on
            part.dirty.clear()

    def mark_ready(self) -> None:
        """Rebuilt (or reused): live changes are tracked from here for the deltas."""
        self.ready = True
        self._track(True)

    def apply(self, ev: LiquidationEvent, now: float, coin: str, price_per_coin: float) -> bool:
        if not self.store.add(ev, now):
            self.duplicates_by_exchange[ev.exchange] = \
                self.duplicates_by_exchange.get(ev.exchange, 0) + 1
            return False
        c = self.counts.get((ev.exchange, ev.side))
        if c is None:
            c = self.counts[(ev.exchange, ev.side)] = [0, 0.0]
        c[0] += 1
        if ev.notional_usd is not None:
            c[1] += ev.notional_usd
        # Only after the id dedupe above: a re-delivered event must not add its USD twice.
        self.levels.add(coin, price_per_coin, ev.side, ev.notional_usd, ev.ts, now)
        self.heat.add(coin, price_per_coin, ev.side, ev.notional_usd, ev.ts, now)
        self.feed.add_event(ev, coin)
        return True

    def advance(self, offset: int) -> None:
        if offset > self.offset:
            self.offset = offset

    def note_invalid(self, offset: int) -> bool:
        """Count an invalid record once; True the first time."""
        if offset in self.invalid_offsets:
            return False
        self.invalid_offsets.add(offset)
        self.invalid += 1
        return True

    def prune(self, now: float) -> None:
        for _ in self.prune_steps(now):
            pass

    def prune_steps(self, now: float) -> Iterator[None]:
        yield from self.store.prune_steps(now)
        self.levels.prune(now)
        self.heat.prune(now)
        self.feed.prune(now)

    def messages(self, now: float, worker: str, full: bool) -> list[bytes]:
        """The partial messages to publish: a full (all buckets) or a delta (changed ones);
        an empty list for a delta with nothing changed."""
        if full:
            buckets: list[Any] = self.store.table.rows()
            levels: list[Any] = self.levels.rows()
            heat: list[Any] = self.heat.rows()
            feed: list[Any] = self.feed.rows()
            self.store.table.dirty.clear()
            self.levels.dirty.clear()
            self.heat.dirty.clear()
            self.feed.dirty.clear()
        else:
            buckets = self.store.table.rows(dirty_only=True)
            levels = self.levels.rows(dirty_only=True)
            heat = self.heat.rows(dirty_only=True)
            feed = self.feed.rows(dirty_only=True)
            if not buckets and not levels and not heat and not feed:
                return []
        rows = [("b", r) for r in buckets] + [("l", r) for r in levels] + \
            [("h", r) for r in heat] + [("f", r) for r in feed]
        n = max(1, math.ceil(len(rows) / ROWS_PER_MESSAGE))
        out = []
        if full:
            self.seq += 1  # the chunks of one full share a sequence number
        for i in range(n):
            if not full:
                self.seq += 1  # each delta message stands alone
            part = rows[i * ROWS_PER_MESSAGE:(i + 1) * ROWS_PER_MESSAGE]
            out.append(orjson.dumps({
                "v": SCHEMA_VERSION, "p": self.partition, "epoch": self.epoch,
                "epoch_ts": self.epoch_ts, "seq": self.seq, "full": full, "now": now,
                "offset": self.offset, "events": self.store.events,
                "duplicates": self.store.duplicates, "invalid": self.invalid,
                "max_recv_ts": self.store.max_recv_ts, "worker": worker,
                "chunk": i if full else 0, "chunks": n if full else 1,
                "buckets": [r for k, r in part if k == "b"],
                "levels": [r for k, r in part if k == "l"],
                "heat": [r for k, r in part if k == "h"],
                "feed": [r for k, r in part if k == "f"]}))
        return out


_REQUIRED = ("v", "p", "epoch", "epoch_ts", "seq", "full", "chunk", "chunks", "buckets",
             "levels", "events", "duplicates", "invalid", "max_recv_ts", "offset")


def decode_partial(value: bytes | None) -> dict[str, Any]:
    msg = json_record(value, _REQUIRED, SCHEMA_VERSION, PartialError, "partial")
    if not (isinstance(msg["p"], int) and isinstance(msg["seq"], int)
            and isinstance(msg["chunk"], int) and isinstance(msg["chunks"], int)
            and 0 <= msg["chunk"] < msg["chunks"]):
        raise PartialError("bad partition, sequence or chunk numbers")
    # Optional (older partials have neither): checked here so a bad one is refused whole.
    heat, feed = msg.setdefault("heat", []), msg.setdefault("feed", [])
    if not isinstance(heat, list) or not all(isinstance(r, list) and len(r) == 5 for r in heat):
        raise PartialError("heat must be a list of 5-field rows")
    if not isinstance(feed, list):
        raise PartialError("feed must be a list of entries")
    try:
        msg["feed"] = [check_entry(r) for r in feed]
    except FeedError as exc:
        raise PartialError(str(exc)) from None
    return msg


@dataclass
class PartitionView:
    """The aggregator's copy of one partition, built from its partials."""

    partition: int
    epoch: str
    epoch_ts: float
    seq: int
    table: BucketTable = field(default_factory=BucketTable)
    levels: LiquidationLevels = field(default_factory=LiquidationLevels)
    heat: LiquidationLevels = field(default_factory=new_heat)
    feed: PartitionFeed = field(default_factory=PartitionFeed)
    events: int = 0
    duplicates: int = 0
    invalid: int = 0
    max_recv_ts: float = 0.0
    offset: int = -1

    def update(self, msg: dict[str, Any]) -> None:
        self.table.set_rows(msg["buckets"])
        self.levels.set_rows(msg["levels"])
        self.heat.set_rows(msg.get("heat", ()))
        for e in msg.get("feed", ()):
            self.feed.add(e)
        self.seq = msg["seq"]
        self.events = msg["events"]
        self.duplicates = msg["duplicates"]
        self.invalid = msg["invalid"]
        self.max_recv_ts = max(self.max_recv_ts, msg["max_recv_ts"])
        self.offset = msg["offset"]


class Merger:
    """Latest state of every partition, from the partials topic (see the module doc)."""

    def __init__(self, level_horizon: float = 3600.0) -> None:
        self.level_horizon = level_horizon
        self.views: dict[int, PartitionView] = {}
        #: (partition, epoch, seq) -> chunks of a full still being collected
        self._chunks: dict[tuple[int, str, int], dict[int, dict[str, Any]]] = {}
        self.applied = 0
        self.ignored = 0

    def _newer_full(self, msg: dict[str, Any]) -> bool:
        cur = self.views.get(msg["p"])
        if cur is None:
            return True
        if msg["epoch"] == cur.epoch:
            return bool(msg["seq"] > cur.seq)
        return bool(msg["epoch_ts"] >= cur.epoch_ts)

    def apply(self, msg: dict[str, Any]) -> bool:
        """Apply one decoded partial; False when it was stale or incomplete (ignored)."""
        p = msg["p"]
        if msg["full"]:
            if not self._newer_full(msg):
                self.ignored += 1
                return False
            key = (p, msg["epoch"], msg["seq"])
            got = self._chunks.setdefault(key, {})
            got[msg["chunk"]] = msg
            if len(got) < msg["chunks"]:
                return True
            del self._chunks[key]
            # Other partly collected fulls of this partition are older: forget them.
            for k in [k for k in self._chunks if k[0] == p]:
                del self._chunks[k]
            view = PartitionView(p, msg["epoch"], msg["epoch_ts"], msg["seq"],
                                 levels=LiquidationLevels(horizon=self.level_horizon))
            for i in range(msg["chunks"]):
                view.update(got[i])
            self.views[p] = view
            self.applied += 1
            return True
        cur = self.views.get(p)
        if cur is None or cur.epoch != msg["epoch"] or msg["seq"] <= cur.seq:
            self.ignored += 1
            return False
        cur.update(msg)
        self.applied += 1
        return True

    def prune(self, now: float) -> None:
        for v in self.views.values():
            v.table.prune(now)
            v.levels.prune(now)
            v.heat.prune(now)
            v.feed.prune(now)


def rollup_parts(tables: Iterable[BucketTable], now: float, coins: Sequence[str],
                 step: int = 4096) -> Iterable[Rollup | None]:
    """Roll up several tables into one :class:`Rollup`, yielding None between chunks (so
    an event loop can run) and the result last."""
    out = Rollup.empty(now, coins)
    for t in tables:
        for _ in rollup_steps(t, out, step):
            yield None
    yield out
