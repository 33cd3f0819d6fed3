"""Rolling liquidation windows: one bucket write per event, rolled up on read.

Pure module (no Faust/Kafka). Each event lands in one 5-second bucket (kept 15 minutes, used
for the 1m/5m/15m windows) and one 1-minute bucket (kept 24 hours, used for 1h..24h), per
(exchange, side) and per (coin, side). A window of size W at time ``now`` is the last W/g
buckets of its granularity g, the current partial bucket included: it spans between W-g and W
seconds, so the resolution is 5 s for short windows and 60 s for long ones. Faust hopping
tables would instead write every event into every overlapping window (1,740 writes per event
for 1h+4h+24h at one-minute steps).

Event time decides the bucket: a liquidation that arrives late is counted in the minute it
happened, not "now". Event ids seen before count once.
"""

from __future__ import annotations

import functools
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .event import LiquidationEvent
from .labels import SIDES

WINDOWS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400,
                           "12h": 43200, "24h": 86400}
FINE_SECONDS = 5
COARSE_SECONDS = 60
FINE_MAX_WINDOW = 900
HORIZON = max(WINDOWS.values())
#: Minute buckets are kept one hour longer than the longest window: the spike baseline needs
#: the 24 hourly totals BEFORE the current hour.
HISTORY = HORIZON + 3600

_FINE = [(name, size // FINE_SECONDS) for name, size in WINDOWS.items() if size <= FINE_MAX_WINDOW]
_COARSE = [(name, size // COARSE_SECONDS) for name, size in WINDOWS.items() if size > FINE_MAX_WINDOW]

# Venues scale tiny-priced coins by a power of ten in the symbol (1000PEPE, 10000SATS).
_MULTIPLIER_PREFIX = re.compile(r"^(1000000|100000|10000|1000|100|10|1M)(?=[A-Z]{2,})")


@functools.lru_cache(maxsize=8192)
def coin_scale(base: str) -> tuple[str, float]:
    """``(coin, units)``: how many coins one unit of ``base`` stands for. ``1000PEPE`` and
    ``kPEPE`` are (PEPE, 1000), ``1MBABYDOGE`` (BABYDOGE, 1e6), ``BTC`` (BTC, 1). A price per
    ``base`` divided by ``units`` is a price per coin, comparable across venues."""
    if base.startswith("k") and len(base) > 1 and base[1:].isupper():
        return base[1:], 1000.0
    b = base.upper()
    m = _MULTIPLIER_PREFIX.match(b)
    if not m:
        return b, 1.0
    prefix = m.group(1)
    return b[len(prefix):] or b, 1_000_000.0 if prefix == "1M" else float(prefix)


def coin_of(base: str) -> str:
    """The coin a base asset stands for: ``1000PEPE`` and ``kPEPE`` both trade PEPE, while
    ``KAVA`` stays KAVA (only a lowercase ``k`` marks the thousand multiplier)."""
    return coin_scale(base)[0]


@dataclass(slots=True)
class Agg:
    usd: float = 0.0
    count: int = 0
    largest_usd: float = 0.0
    unpriced: int = 0

    def add(self, usd: float | None) -> None:
        self.count += 1
        if usd is None:
            self.unpriced += 1
            return
        self.usd += usd
        if usd > self.largest_usd:
            self.largest_usd = usd

    def merge(self, other: Agg) -> None:
        self.usd += other.usd
        self.count += other.count
        self.unpriced += other.unpriced
        if other.largest_usd > self.largest_usd:
            self.largest_usd = other.largest_usd

    def to_dict(self) -> dict[str, Any]:
        return {"usd": self.usd, "count": self.count, "largest_usd": self.largest_usd,
                "unpriced": self.unpriced}


Key = tuple[str, str, str]  # (scope "exchange"|"coin", name, side)


@dataclass
class Snapshot:
    now: float
    #: window -> scope -> name -> side -> Agg
    windows: dict[str, dict[str, dict[str, dict[str, Agg]]]]
    events: int

    def total(self, window: str, side: str) -> Agg:
        out = Agg()
        for sides in self.windows[window]["exchange"].values():
            if side in sides:
                out.merge(sides[side])
        return out

    def usd_by_exchange(self) -> dict[str, dict[str, dict[str, float]]]:
        """The ``replay --json`` shape: window -> exchange -> side -> USD."""
        return {w: {ex: {s: sides[s].usd for s in SIDES if s in sides}
                    for ex, sides in scopes["exchange"].items()}
                for w, scopes in self.windows.items()}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for w, scopes in self.windows.items():
            out[w] = {
                scope: {name: {s: a.to_dict() for s, a in sides.items()}
                        for name, sides in names.items()}
                for scope, names in scopes.items()
            }
            out[w]["total"] = {s: self.total(w, s).to_dict() for s in SIDES}
        return out


#: A bucket row as partials carry it: granularity (0 fine, 1 coarse), scope, name, side,
#: bucket index, then the Agg fields usd, count, largest_usd, unpriced.
Row = tuple[int, str, str, str, int, float, int, float, int]
_GRANS = ((FINE_SECONDS, _FINE), (COARSE_SECONDS, _COARSE))


class BucketTable:
    """Fine and coarse buckets per (scope, name, side) key. Values are absolute, so a copy
    elsewhere (the aggregator's view of a partition) is kept exact by replacing the rows that
    changed (``rows(dirty_only=True)`` / ``set_rows``)."""

    def __init__(self, track_dirty: bool = False) -> None:
        #: [fine, coarse]: key -> bucket index -> Agg
        self.grans: tuple[dict[Key, dict[int, Agg]], dict[Key, dict[int, Agg]]] = ({}, {})
        #: [fine, coarse]: bucket index -> keys with a bucket there, so pruning touches only
        #: the buckets that expire instead of scanning every bucket.
        self.index: tuple[dict[int, set[Key]], dict[int, set[Key]]] = ({}, {})
        self.exchanges: set[str] = set()
        self.track_dirty = track_dirty
        self.dirty: set[tuple[int, Key, int]] = set()

    def add(self, keys: tuple[Key, ...], ts: float, usd: float | None,
            now: float | None = None) -> None:
        """Count ``usd`` at ``ts`` under each key. Given ``now``, an event already older than
        every fine window skips the fine buckets (a rebuild's history: half the writes)."""
        # The hottest loop of a rebuild: Agg.add inlined, one lookup per level.
        fine = math.floor(ts / FINE_SECONDS)
        coarse = math.floor(ts / COARSE_SECONDS)
        levels = ((self.grans[1], self.index[1], coarse),) \
            if now is not None and ts < now - FINE_MAX_WINDOW - FINE_SECONDS \
            else ((self.grans[0], self.index[0], fine), (self.grans[1], self.index[1], coarse))
        for table, index, idx in levels:
            for key in keys:
                b = table.get(key)
                if b is None:
                    b = table[key] = {}
                agg = b.get(idx)
                if agg is None:
                    agg = b[idx] = Agg()
                    at = index.get(idx)
                    if at is None:
                        at = index[idx] = set()
                    at.add(key)
                agg.count += 1
                if usd is None:
                    agg.unpriced += 1
                else:
                    agg.usd += usd
                    if usd > agg.largest_usd:
                        agg.largest_usd = usd
        if self.track_dirty:
            dirty = self.dirty
            for key in keys:
                dirty.add((0, key, fine))
                dirty.add((1, key, coarse))

    def prune(self, now: float) -> None:
        """Forget buckets no window can reach any more."""
        for _ in self.prune_steps(now):
            pass

    def prune_steps(self, now: float, step: int = 4096) -> Iterator[None]:
        """``prune``, yielding every ``step`` buckets removed."""
        lows = (math.floor(now / FINE_SECONDS) - FINE_MAX_WINDOW // FINE_SECONDS,
                math.floor(now / COARSE_SECONDS) - HISTORY // COARSE_SECONDS)
        done = 0
        for table, index, lo in zip(self.grans, self.index, lows, strict=True):
            for idx in [i for i in index if i < lo]:
                for key in index.pop(idx):
                    b = table.get(key)
                    if b is None:
                        continue
                    b.pop(idx, None)
                    if not b:
                        del table[key]
                    done += 1
                    if done >= step:
                        done = 0
                        yield
        # ``dirty`` may still name pruned buckets: ``rows`` skips what no longer exists.

    def rows(self, dirty_only: bool = False) -> list[Row]:
        """The buckets as rows: all of them, or those changed since the last call with
        ``dirty_only`` (which clears the change set)."""
        out: list[Row] = []
        if dirty_only:
            for g, key, idx in self.dirty:
                agg = self.grans[g].get(key, {}).get(idx)
                if agg is not None:
                    out.append((g, *key, idx, agg.usd, agg.count, agg.largest_usd, agg.unpriced))
            self.dirty = set()
            return out
        for g, table in enumerate(self.grans):
            for key, b in table.items():
                for idx, agg in b.items():
                    out.append((g, *key, idx, agg.usd, agg.count, agg.largest_usd, agg.unpriced))
        return out

    def set_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for g, scope, name, side, idx, usd, count, largest, unpriced in rows:
            key = (scope, name, side)
            self.grans[g].setdefault(key, {})[idx] = Agg(
                usd=usd, count=count, largest_usd=largest, unpriced=unpriced)
            self.index[g].setdefault(idx, set()).add(key)
            if scope == "exchange":
                self.exchanges.add(name)

    def bucket_count(self) -> int:
        return sum(len(b) for t in self.grans for b in t.values())


@dataclass
class Rollup:
    """Windows and hourly totals of one or more bucket tables at ``now``."""

    now: float
    #: window -> scope -> name -> side -> Agg
    windows: dict[str, dict[str, dict[str, dict[str, Agg]]]]
    #: side -> USD per hour over all exchanges, oldest first, the current hour last
    hourly: dict[str, list[float]]
    #: coin -> USD per hour (both sides), for the coins asked for
    coin_hourly: dict[str, list[float]]

    @classmethod
    def empty(cls, now: float, coins: Iterable[str] = (), hours: int = 25) -> Rollup:
        return cls(now=now, windows={w: {"exchange": {}, "coin": {}} for w in WINDOWS},
                   hourly={side: [0.0] * hours for side in SIDES},
                   coin_hourly={c: [0.0] * hours for c in coins})

    def merge(self, other: Rollup) -> None:
        for w, scopes in other.windows.items():
            for scope, names in scopes.items():
                mine = self.windows[w][scope]
                for name, sides in names.items():
                    target = mine.get(name)
                    if target is None:
                        target = mine[name] = {s: Agg() for s in SIDES}
                    for side, agg in sides.items():
                        target[side].merge(agg)
        for series, theirs in ((self.hourly, other.hourly), (self.coin_hourly, other.coin_hourly)):
            for k, vals in theirs.items():
                mine_vals = series.get(k)
                if mine_vals is None:
                    series[k] = list(vals)
                    continue
                for i, v in enumerate(vals):
                    mine_vals[i] += v

    def snapshot(self, events: int, exchanges: Iterable[str] = ()) -> Snapshot:
        for ex in exchanges:
            for w in WINDOWS:
                self.windows[w]["exchange"].setdefault(ex, {s: Agg() for s in SIDES})
        return Snapshot(now=self.now, windows=self.windows, events=events)


def rollup_steps(table: BucketTable, out: Rollup, step: int = 2048) -> Iterator[None]:
    """Add ``table``'s windows and hourly totals at ``out.now`` into ``out``, yielding every
    ``step`` buckets so an event loop can run in between (the caller decides how to wait)."""
    now = out.now
    hours = len(out.hourly[SIDES[0]])
    per_hour = 3600 // COARSE_SECONDS
    done = 0
    for g, (gran, spec) in enumerate(_GRANS):
        cur = math.floor(now / gran)
        coarse = g == 1
        for key, b in list(table.grans[g].items()):
            scope, name, side = key
            targets = []
            for w, _ in spec:
                names = out.windows[w][scope]
                sides = names.get(name)
                if sides is None:
                    sides = names[name] = {s: Agg() for s in SIDES}
                targets.append(sides[side])
            hourly = None
            if coarse:
                hourly = out.hourly[side] if scope == "exchange" else out.coin_hourly.get(name)
            for idx, agg in list(b.items()):
                age = cur - idx
                if age < 0:
                    continue  # dated after `now` (venue clock ahead): counted once it arrives
                for (_, n), target in zip(spec, targets, strict=True):
                    if age < n:
                        target.merge(agg)
                if hourly is not None:
                    k = age // per_hour
                    if k < hours:
                        hourly[hours - 1 - k] += agg.usd
            done += len(b)
            if done >= step:
                done = 0
                yield


def rollup(tables: Iterable[BucketTable], now: float, coins: Iterable[str] = ()) -> Rollup:
    out = Rollup.empty(now, coins)
    for t in tables:
        for _ in rollup_steps(t, out):
            pass
    return out


class WindowStore:
    """Deduplicated events into a :class:`BucketTable`: what one worker keeps per partition."""

    def __init__(self, old_id_memory: int = 100_000, track_dirty: bool = False) -> None:
        self.table = BucketTable(track_dirty=track_dirty)
        #: Seen ids per coarse bucket, dropped with the bucket when it leaves the horizon.
        self._ids: dict[int, set[str]] = {}
        #: Ids of events already older than the horizon when they arrived (bounded).
        self._old_ids: OrderedDict[str, None] = OrderedDict()
        self._old_id_memory = old_id_memory
        self.events = 0
        self.duplicates = 0
        self.max_recv_ts = 0.0
        self.max_event_ts = 0.0

    @property
    def exchanges(self) -> set[str]:
        return self.table.exchanges

    def seen(self, ev: LiquidationEvent) -> bool:
        ids = self._ids.get(math.floor(ev.ts / COARSE_SECONDS))
        return (ids is not None and ev.id in ids) or ev.id in self._old_ids

    def add(self, ev: LiquidationEvent, now: float) -> bool:
        """Count ``ev`` once. Returns False for a duplicate id. Events older than the 24 h
        horizon are counted (for totals) but fall in no window."""
        coarse = math.floor(ev.ts / COARSE_SECONDS)
        if self.seen(ev):
            self.duplicates += 1
            return False
        if ev.recv_ts > self.max_recv_ts:
            self.max_recv_ts = ev.recv_ts
        if ev.ts > self.max_event_ts:
            self.max_event_ts = ev.ts
        self.events += 1
        self.table.exchanges.add(ev.exchange)
        if ev.ts <= now - HISTORY - COARSE_SECONDS:
            self._remember_old(ev.id)
            return True
        self._ids.setdefault(coarse, set()).add(ev.id)
        self.table.add((("exchange", ev.exchange, ev.side), ("coin", coin_of(ev.base), ev.side)),
                       ev.ts, ev.notional_usd, now)
        return True

    def _remember_old(self, event_id: str) -> None:
        self._old_ids[event_id] = None
        if len(self._old_ids) > self._old_id_memory:
            self._old_ids.popitem(last=False)

    def prune(self, now: float) -> None:
        """Forget buckets no window can reach any more (and their ids)."""
        for _ in self.prune_steps(now):
            pass

    def prune_steps(self, now: float) -> Iterator[None]:
        yield from self.table.prune_steps(now)
        coarse_min = math.floor(now / COARSE_SECONDS) - HISTORY // COARSE_SECONDS
        for idx in [i for i in self._ids if i < coarse_min]:
            # Keep remembering them (bounded): a re-delivered copy must still count once.
            for event_id in self._ids.pop(idx):
                self._remember_old(event_id)

    def snapshot(self, now: float) -> Snapshot:
        return rollup([self.table], now).snapshot(self.events, self.exchanges)

    def hourly_totals(self, now: float, hours: int = 25) -> dict[str, list[float]]:
        """USD per side over all exchanges for each of the last ``hours`` hours, oldest first;
        the last entry is the current hour as the 1h window sees it (same minute buckets)."""
        out = Rollup.empty(now, (), hours)
        for _ in rollup_steps(self.table, out):
            pass
        return out.hourly

    def hourly_totals_by_coin(self, now: float, coins: Iterable[str],
                              hours: int = 25) -> dict[str, list[float]]:
        """As ``hourly_totals`` but per coin, both sides summed."""
        out = Rollup.empty(now, coins, hours)
        for _ in rollup_steps(self.table, out):
            pass
        return out.coin_hourly

    def bucket_count(self) -> int:
        return self.table.bucket_count()


def rebuild(store: WindowStore, events: Iterable[LiquidationEvent], now: float) -> int:
    """Apply a history of events (e.g. read back from Kafka); returns how many were new."""
    return sum(1 for ev in events if store.add(ev, now))
