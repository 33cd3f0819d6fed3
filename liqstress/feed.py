"""The liquidation feed: single events, for the trader's views (latest liquidations, largest
liquidations of 1h/4h/12h/24h). Pure module (no Faust/Kafka/HTTP).

Per ``liquidations`` partition a :class:`PartitionFeed` keeps

- a **recent ring**: the newest ``RECENT_SIZE`` events by (ts, id), deduplicated by id;
- per **hour** (``floor(ts / 3600)``, the last ``TOP_HOURS`` hours) the events that can still
  be among the ``TOP_K`` largest of *some* window ``ts >= t``: an event is dropped only once
  ``TOP_K`` events of the same hour are both larger (USD, then id) and not older. Those
  ``TOP_K`` are inside every window that contains the event, so it can never be in a window's
  top ``TOP_K`` again. That is what makes the largest of a window that starts mid-hour exact
  (a plain per-hour top-K is not: the hour's largest may lie before the window start). The
  kept set is ``TOP_K`` per hour at least (the hour's largest) and ``SKYLINE_CAP`` at most:
  past the cap the smallest are dropped and the hour is marked ``clipped``; only a window
  starting inside a clipped hour may then miss an event, and :meth:`PartitionFeed.largest`
  says so (``exact`` False). Hours wholly inside a window are always exact.

Entries are immutable tuples (:data:`Entry`); the wire form is a JSON list of the same fields.
A copy elsewhere (the aggregator's or another worker's view of a partition) stays exact by
adding the entries the owner added: everything kept is a deterministic function of the set of
entries added (plus ``now`` for the 25-hour pruning), and adding an entry twice is a no-op.
The merge of several partitions is a union deduplicated by id (:func:`merge_recent`,
:func:`merge_largest`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .event import LiquidationEvent

#: Events kept in the recent ring, per partition.
RECENT_SIZE = 500
#: Largest events answerable per window (the API's ``limit`` maximum).
TOP_K = 50
#: Hours of largest-event candidates kept, counted back from the newest event: a 24 h window
#: overlaps 25 hour buckets, plus one for venue clocks a little ahead of the window clock.
TOP_HOURS = 26
HOUR = 3600
#: Candidates kept per hour at most (see the module doc). In random order an hour of n events
#: keeps about TOP_K * (1 + ln(n / TOP_K)): 400 stays exact up to ~50,000 events per hour and
#: partition, and bounds a full partial's feed at ~10,900 entries.
SKYLINE_CAP = 8 * TOP_K
#: The windows of the largest liquidations, seconds.
LARGEST_WINDOWS: dict[str, int] = {"1h": 3600, "4h": 14400, "12h": 43200, "24h": 86400}

#: (id, exchange, symbol, coin, side, price, qty or None, usd or None, ts). Both may be None:
#: some venues give a size without the contract metadata to convert it, never a guess.
Entry = tuple[str, str, str, str, str, float, float | None, float | None, float]
ID, EXCHANGE, SYMBOL, COIN, SIDE, PRICE, QTY, USD, TS = range(9)
FIELDS = ("id", "exchange", "symbol", "coin", "side", "price", "qty", "usd", "ts")


class FeedError(ValueError):
    """A feed entry that cannot be used."""


def make_entry(ev: LiquidationEvent, coin: str) -> Entry:
    return (ev.id, ev.exchange, ev.symbol, coin, ev.side, float(ev.price),
            None if ev.qty is None else float(ev.qty),
            None if ev.notional_usd is None else float(ev.notional_usd), float(ev.ts))


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def check_entry(row: Any) -> Entry:
    """A wire entry (JSON list) as an :data:`Entry`; FeedError when malformed."""
    if not isinstance(row, list | tuple) or len(row) != len(FIELDS):
        raise FeedError("a feed entry is a list of 9 fields")
    if not all(isinstance(row[i], str) for i in (ID, EXCHANGE, SYMBOL, COIN, SIDE)):
        raise FeedError("feed entry: id, exchange, symbol, coin and side must be strings")
    if not all(_num(row[i]) for i in (PRICE, TS)) or \
            not all(row[i] is None or _num(row[i]) for i in (QTY, USD)):
        raise FeedError("feed entry: price, qty, usd and ts must be finite numbers")
    return (row[0], row[1], row[2], row[3], row[4], float(row[5]),
            None if row[6] is None else float(row[6]),
            None if row[7] is None else float(row[7]), float(row[8]))


def to_dict(e: Entry) -> dict[str, Any]:
    return dict(zip(FIELDS, e, strict=True))


def _key(e: Entry) -> tuple[float, str]:
    """Largest first: USD, then id (a total order, so every copy picks the same events)."""
    return (e[USD] or 0.0, e[ID])


def _recent_key(e: Entry) -> tuple[float, str]:
    return (e[TS], e[ID])


def skyline(entries: Iterable[Entry], k: int = TOP_K,
            cap: int = SKYLINE_CAP) -> tuple[list[Entry], bool]:
    """The entries not beaten by ``k`` others that are larger and not older, at most ``cap``
    of them (the largest); returns (kept, clipped)."""
    seen: list[tuple[float, str]] = []  # min-heap of the k largest keys among newer entries
    kept: list[Entry] = []
    for e in sorted(entries, key=lambda e: (e[TS], _key(e)), reverse=True):
        key = _key(e)
        if len(seen) < k:
            heapq.heappush(seen, key)
            kept.append(e)
        elif key > seen[0]:
            heapq.heapreplace(seen, key)
            kept.append(e)
    if len(kept) > cap:
        kept.sort(key=_key, reverse=True)
        return kept[:cap], True
    return kept, False


class _Hour:
    __slots__ = ("entries", "ids", "compacted", "clipped")

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.ids: set[str] = set()
        self.compacted = 0
        self.clipped = False

    def add(self, e: Entry, k: int, cap: int) -> bool:
        if e[ID] in self.ids:
            return False
        self.entries.append(e)
        self.ids.add(e[ID])
        # Lazily: candidates beaten meanwhile are harmless extras until the next compaction.
        if len(self.entries) > 2 * max(self.compacted, k):
            self.compact(k, cap)
        return True

    def compact(self, k: int, cap: int) -> None:
        kept, clipped = skyline(self.entries, k, cap)
        self.clipped = self.clipped or clipped
        self.entries = kept
        self.compacted = len(kept)
        # Ids of dropped entries stay remembered: they can never be kept again.


class PartitionFeed:
    """One partition's recent ring and largest-event candidates (see the module doc)."""

    def __init__(self, recent_size: int = RECENT_SIZE, k: int = TOP_K,
                 cap: int = SKYLINE_CAP, hours: int = TOP_HOURS,
                 track_dirty: bool = False) -> None:
        self.recent_size = recent_size
        self.k = k
        self.cap = cap
        self.hours = hours
        self._recent: dict[str, Entry] = {}
        self._ring: list[tuple[float, str]] = []  # min-heap of (ts, id) of the ring
        self._tops: dict[int, _Hour] = {}
        self.track_dirty = track_dirty
        #: Entries added since the last ``rows(dirty_only=True)``.
        self.dirty: list[Entry] = []
        self.max_ts = 0.0

    def add_event(self, ev: LiquidationEvent, coin: str) -> bool:
        return self.add(make_entry(ev, coin))

    def add(self, e: Entry) -> bool:
        """Add one entry; False when it changed nothing (seen, too old for the ring and
        no largest-event candidate)."""
        new = self._add_recent(e)
        hour = math.floor(e[TS] / HOUR)
        if e[USD] is not None and hour >= self._oldest_hour():
            h = self._tops.get(hour)
            if h is None:
                h = self._tops[hour] = _Hour()
            new = h.add(e, self.k, self.cap) or new
        if new:
            if e[TS] > self.max_ts:
                self.max_ts = e[TS]
            if self.track_dirty:
                self.dirty.append(e)
        return new

    def _oldest_hour(self) -> int:
        return math.floor(self.max_ts / HOUR) - self.hours + 1 if self.max_ts else -(2 ** 62)

    def _add_recent(self, e: Entry) -> bool:
        if e[ID] in self._recent:
            return False
        rk = _recent_key(e)
        if len(self._ring) < self.recent_size:
            heapq.heappush(self._ring, rk)
        elif rk > self._ring[0]:
            _, gone = heapq.heapreplace(self._ring, rk)
            del self._recent[gone]
        else:
            return False
        self._recent[e[ID]] = e
        return True

    def add_rows(self, rows: Iterable[Any]) -> None:
        """Add wire entries (a partial's ``feed``); malformed ones raise FeedError."""
        for row in rows:
            self.add(check_entry(row))

    def prune(self, now: float) -> None:
        """Forget hours no 24 h window ending at ``now`` can reach (``now`` is the window
        clock; the recent ring keeps its newest entries whatever their age)."""
        lo = math.floor((now - max(LARGEST_WINDOWS.values())) / HOUR)
        lo = min(lo, self._oldest_hour())
        for hour in [h for h in self._tops if h < lo]:
            del self._tops[hour]

    # ---- reads ------------------------------------------------------------------------------
    def recent(self) -> list[Entry]:
        """The ring, newest first."""
        return sorted(self._recent.values(), key=_recent_key, reverse=True)

    def candidates(self, since: float) -> tuple[list[Entry], bool]:
        """Largest-event candidates with ``ts >= since``, and whether they are exact (the
        hour holding ``since`` was never clipped)."""
        first = math.floor(since / HOUR)
        out: list[Entry] = []
        exact = True
        for hour, h in self._tops.items():
            if hour < first:
                continue
            if hour == first and h.clipped:
                exact = False
            out.extend(e for e in h.entries if e[TS] >= since)
        if first < self._oldest_hour():
            exact = False  # the window starts before the hours kept
        return out, exact

    def largest(self, now: float, window: float, limit: int = TOP_K) -> tuple[list[Entry], bool]:
        got, exact = self.candidates(now - window)
        got.sort(key=_key, reverse=True)
        return got[:limit], exact and limit <= self.k

    def entries(self) -> list[Entry]:
        """Everything held (ring and candidates), each once: a full's content."""
        out = dict(self._recent)
        for h in self._tops.values():
            for e in h.entries:
                out.setdefault(e[ID], e)
        return list(out.values())

    def compact(self) -> None:
        """Drop the candidates beaten meanwhile (``add`` does it lazily)."""
        for h in self._tops.values():
            if len(h.entries) > h.compacted:
                h.compact(self.k, self.cap)

    def rows(self, dirty_only: bool = False) -> list[Entry]:
        """All entries (compacted first), or those added since the last ``dirty_only`` call
        (which clears it)."""
        if dirty_only:
            out, self.dirty = self.dirty, []
            return out
        self.compact()
        return self.entries()

    def __len__(self) -> int:
        return len(self.entries())


# ---- merging several partitions ---------------------------------------------------------------
def merge_recent(feeds: Sequence[PartitionFeed],
                 keep: Callable[[Entry], bool] | None = None,
                 limit: int | None = None) -> list[Entry]:
    """The union of the partitions' rings, deduplicated by id, newest first."""
    out: dict[str, Entry] = {}
    for f in feeds:
        for e in f._recent.values():  # noqa: SLF001 - same module
            if keep is None or keep(e):
                out.setdefault(e[ID], e)
    got = sorted(out.values(), key=_recent_key, reverse=True)
    return got if limit is None else got[:limit]


def merge_largest(feeds: Sequence[PartitionFeed], now: float, window: float,
                  limit: int = TOP_K) -> tuple[list[Entry], bool]:
    """The ``limit`` largest liquidations with ``ts >= now - window`` over every partition
    (deduplicated by id), largest first, and whether the answer is exact."""
    out: dict[str, Entry] = {}
    exact = True
    for f in feeds:
        got, ok = f.largest(now, window, limit)
        exact = exact and ok
        for e in got:
            out.setdefault(e[ID], e)
    merged = sorted(out.values(), key=_key, reverse=True)
    return merged[:limit], exact
