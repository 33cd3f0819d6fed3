"""Estimated liquidation map (docs/signals.md section 11): per coin, the USD of open positions
that would be liquidated at each price level below (longs) and above (shorts) the current
price, estimated from open-interest increases at the prices where they happened.

Pure module (standard library and liqstress core only). The input is one coin's market-wide
open interest over time, as ``(ts, oi_usd, price, low, high)`` points (``low``/``high``: the
price's range since the previous point); :func:`build_map` replays them through a
:class:`MapBuilder` and returns a read-only :class:`CoinMap`.

The model, per step (one point after the previous one):

1. positions older than ``MapConfig.horizon`` seconds are dropped (``expired``);
2. every long level at or above the step's low and every short level at or below its high is
   removed (``crossed``: the price went through it, so those positions were liquidated or
   closed);
3. ``ΔOI`` is the change of open interest since the last valid step, price-neutral by default
   (``oi_usd − oi_prev × price / price_prev``: the change in coins, valued at the step's
   price, so a price move alone is not read as positions opened or closed);
4. ``ΔOI > 0`` adds ``ΔOI`` USD of longs AND ``ΔOI`` USD of shorts (open interest counts one
   side of the book; every contract has a long and a short) at the step's price, split over
   the leverage mix, each share at its liquidation price::

       long  liquidation price = P × (1 − 1/L + mm)
       short liquidation price = P × (1 + 1/L − mm)

   ``ΔOI < 0`` removes ``|ΔOI|`` USD from each side, proportionally from every level of that
   side (``closed``: positions closed, no way to know which), never more than the side holds.

Steps whose ``oi_usd`` or ``price`` is missing (None, NaN, negative) skip 3-4 but still apply
1-2 with whatever of ``low``/``high``/``price`` they have; the reference point stays the last
valid one, so the next valid step takes the whole change across the gap (the chain is not
broken). The first valid point only sets the reference: open interest that exists before the
data starts has no known entry price and is not placed.

Conservation, per side: ``total = added − closed − crossed − expired``, never negative.
USD in the map is the entry notional (not revalued when the price moves). Levels are reported
in the clusters' geometric 0.25 % buckets (``signals.clusters.bucket_index``) so the panels
line up; exact liquidation prices are kept internally for the crossing test.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from .prices import SLOT_SECONDS
from .signals.clusters import CLUSTER_BUCKET_PCT, bucket_index
from .signals.common import jsonable

__all__ = ["DEFAULT_LEVERAGE_MIX", "DEFAULT_MAP_CONFIG", "MAP_HORIZON", "MAP_TOP_LEVELS",
           "MAP_WITHIN_PCTS", "MAINTENANCE_MARGIN", "CoinMap", "Level", "MapBuilder",
           "MapConfig", "Point", "Side", "build_map", "liquidation_price", "map_points"]

Side = Literal["long", "short"]
SIDES: tuple[Side, ...] = ("long", "short")
#: ``(ts, oi_usd, price, low, high[, oi_coins])``; any but ``ts`` may be None.
Point = tuple[float, float | None, float | None, float | None, float | None, float | None]
#: ``(bucket low price, bucket high price, usd)``
Level = tuple[float, float, float]

#: Leverage -> share of new open interest opened at it. A documented guess, not a measurement:
#: most retail perp positions sit at 5-25x, a thin tail at 50-100x (the venues' caps).
DEFAULT_LEVERAGE_MIX: tuple[tuple[float, float], ...] = (
    (5.0, 0.25), (10.0, 0.35), (25.0, 0.25), (50.0, 0.10), (100.0, 0.05))
#: Maintenance margin rate (0.5 %: the first tier of BTC/ETH perps on the large venues).
MAINTENANCE_MARGIN = 0.005
#: Positions kept this long (the open-interest and price histories hold 25 h).
MAP_HORIZON = 25 * 3600.0
#: Levels ``CoinMap.to_dict`` lists per side.
MAP_TOP_LEVELS = 10
#: Bands ``CoinMap.to_dict`` sums, in percent of the current price.
MAP_WITHIN_PCTS: tuple[float, ...] = (1.0, 2.0, 5.0)


@dataclass(frozen=True, slots=True)
class MapConfig:
    """Model parameters. ``leverage_mix``: ``((leverage, share), ...)``, shares summing to 1;
    ``maintenance_margin``: a fraction (0.005 = 0.5 %), below ``1/L`` for every leverage;
    ``bucket_pct``: width of the reported price buckets (the clusters' grid); ``horizon``:
    seconds a position is kept; ``price_neutral``: measure ΔOI in coins (see the module doc)
    rather than as the raw USD difference."""

    leverage_mix: tuple[tuple[float, float], ...] = DEFAULT_LEVERAGE_MIX
    maintenance_margin: float = MAINTENANCE_MARGIN
    bucket_pct: float = CLUSTER_BUCKET_PCT
    horizon: float = MAP_HORIZON
    price_neutral: bool = True

    def __post_init__(self) -> None:
        if not self.leverage_mix:
            raise ValueError("leverage_mix must not be empty")
        mm = self.maintenance_margin
        if not (math.isfinite(mm) and 0 <= mm < 1):
            raise ValueError(f"maintenance_margin must be in [0, 1), got {mm!r}")
        for lev, share in self.leverage_mix:
            if not (math.isfinite(lev) and lev >= 1):
                raise ValueError(f"leverage must be >= 1, got {lev!r}")
            if not 1.0 / lev > mm:
                raise ValueError(f"leverage {lev:g}x with maintenance margin {mm:g} has its "
                                 "liquidation price at or beyond the entry price")
            if not (math.isfinite(share) and share >= 0):
                raise ValueError(f"share must be >= 0, got {share!r}")
        if abs(math.fsum(s for _, s in self.leverage_mix) - 1.0) > 1e-9:
            raise ValueError("leverage_mix shares must sum to 1")
        if not self.bucket_pct > 0:
            raise ValueError("bucket_pct must be > 0")
        if not self.horizon > 0:
            raise ValueError("horizon must be > 0")


DEFAULT_MAP_CONFIG = MapConfig()


def liquidation_price(entry: float, leverage: float, side: Side,
                      maintenance_margin: float = MAINTENANCE_MARGIN) -> float:
    """``entry × (1 − 1/L + mm)`` for a long, ``entry × (1 + 1/L − mm)`` for a short
    (isolated margin, no fees or funding)."""
    if side == "long":
        return entry * (1.0 - 1.0 / leverage + maintenance_margin)
    if side == "short":
        return entry * (1.0 + 1.0 / leverage - maintenance_margin)
    raise ValueError(f"side must be long or short, got {side!r}")


def _num(x: Any, positive: bool) -> float | None:
    """A finite float (> 0 when ``positive``, else >= 0), or None."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        return None
    return v


class _Entry:
    __slots__ = ("alive", "level", "raw", "ts")

    def __init__(self, level: float, raw: float, ts: float) -> None:
        self.level = level
        self.raw = raw
        self.ts = ts
        self.alive = True


class _Book:
    """One side's positions: entries at exact liquidation prices, a heap for the crossing
    test (the long heap pops the highest level first, the short heap the lowest), a queue in
    time order for the horizon, and a lazy common scale for proportional removals (O(1))."""

    __slots__ = ("alive", "heap", "long", "queue", "raw_total", "scale", "seq")

    def __init__(self, long: bool) -> None:
        self.long = long
        self.heap: list[tuple[float, int, _Entry]] = []
        self.queue: deque[_Entry] = deque()
        self.scale = 1.0
        self.raw_total = 0.0
        self.alive = 0
        self.seq = 0

    def total(self) -> float:
        return max(0.0, self.raw_total * self.scale) if self.alive else 0.0

    def add(self, level: float, usd: float, ts: float) -> None:
        e = _Entry(level, usd / self.scale, ts)
        self.seq += 1
        heapq.heappush(self.heap, (-level if self.long else level, self.seq, e))
        self.queue.append(e)
        self.raw_total += e.raw
        self.alive += 1

    def _kill(self, e: _Entry) -> float:
        e.alive = False
        self.alive -= 1
        self.raw_total -= e.raw
        usd = e.raw * self.scale
        if not self.alive:
            self._reset()
        return usd

    def _reset(self) -> None:
        self.heap.clear()
        self.queue.clear()
        self.scale = 1.0
        self.raw_total = 0.0
        self.alive = 0

    def expire(self, before: float) -> float:
        out = 0.0
        q = self.queue
        while q and q[0].ts < before:
            e = q.popleft()
            if e.alive:
                out += self._kill(e)
        self._compact()
        return out

    def cross(self, price: float) -> float:
        """Remove long levels >= price / short levels <= price; the USD removed."""
        out = 0.0
        h = self.heap
        while h and (-h[0][0] >= price if self.long else h[0][0] <= price):
            e = heapq.heappop(h)[2]
            if e.alive:
                out += self._kill(e)
        return out

    def reduce(self, usd: float) -> float:
        """Remove ``usd`` proportionally from every level (at most the total); the USD
        removed."""
        total = self.total()
        if not (usd > 0 and total > 0):
            return 0.0
        if usd >= total * (1.0 - 1e-12):
            self._reset()
            return total
        self.scale *= 1.0 - usd / total
        if self.scale < 1e-9:  # renormalise before the floats get tiny
            live = [e for e in self.queue if e.alive]
            for e in live:
                e.raw *= self.scale
            self.raw_total = math.fsum(e.raw for e in live)
            self.scale = 1.0
        return usd

    def _compact(self) -> None:
        """Drop dead entries from the heap when they outnumber the live ones."""
        if len(self.heap) > 2 * self.alive + 64:
            self.heap = [x for x in self.heap if x[2].alive]
            heapq.heapify(self.heap)

    def buckets(self, bucket_pct: float) -> dict[int, float]:
        out: dict[int, float] = {}
        for e in self.queue:
            if e.alive:
                usd = e.raw * self.scale
                if usd > 0:
                    k = bucket_index(e.level, bucket_pct)
                    out[k] = out.get(k, 0.0) + usd
        return out


@dataclass(frozen=True, slots=True)
class CoinMap:
    """One coin's estimated liquidation map: read-only levels per side and the accounting.

    ``price``/``ts``: the last valid point (None before any). Levels are
    ``(bucket low, bucket high, usd)``; a level counts in a price band when its bucket
    midpoint does. Accounting per side: ``added``, ``closed`` (OI decreases), ``crossed``
    (price went through), ``expired`` (older than the horizon); ``total = added − closed −
    crossed − expired`` up to float rounding."""

    ts: float | None
    price: float | None
    bucket_pct: float
    long_levels: tuple[Level, ...] = ()
    short_levels: tuple[Level, ...] = ()
    added: Mapping[str, float] = field(default_factory=lambda: {"long": 0.0, "short": 0.0})
    closed: Mapping[str, float] = field(default_factory=lambda: {"long": 0.0, "short": 0.0})
    crossed: Mapping[str, float] = field(default_factory=lambda: {"long": 0.0, "short": 0.0})
    expired: Mapping[str, float] = field(default_factory=lambda: {"long": 0.0, "short": 0.0})
    steps: int = 0
    skipped: int = 0

    def levels(self, side: Side) -> list[Level]:
        """Levels of ``side`` by price ascending, USD > 0 only."""
        if side == "long":
            return list(self.long_levels)
        if side == "short":
            return list(self.short_levels)
        raise ValueError(f"side must be long or short, got {side!r}")

    def top(self, side: Side, n: int = MAP_TOP_LEVELS, price: float | None = None) -> list[Level]:
        """The ``n`` levels of ``side`` with the most USD, largest first (ties: nearer the
        price first, then by price). With ``price`` (a price newer than the map's), only the
        levels still on their side of it: longs whose bucket midpoint is at or below it,
        shorts at or above it (the others have been reached since)."""
        ref = (self.price or 0.0) if price is None else price
        levels = self.levels(side)
        if price is not None:
            levels = [lv for lv in levels
                      if ((lv[0] + lv[1]) / 2 <= price if side == "long"
                          else (lv[0] + lv[1]) / 2 >= price)]
        ranked = sorted(levels, key=lambda lv: (-lv[2], abs((lv[0] + lv[1]) / 2 - ref), lv[0]))
        return ranked[:max(0, n)]

    def usd_within(self, side: Side, price: float, pct: float) -> float:
        """USD of the ``side`` levels whose bucket midpoint lies within ``pct`` % of
        ``price``: below it (``price × (1 − pct/100) ≤ mid ≤ price``) for longs, above it
        (``price ≤ mid ≤ price × (1 + pct/100)``) for shorts."""
        lo, hi = ((price * (1 - pct / 100.0), price) if side == "long"
                  else (price, price * (1 + pct / 100.0)))
        return math.fsum(usd for a, b, usd in self.levels(side) if lo <= (a + b) / 2 <= hi)

    def total(self, side: Side) -> float:
        return math.fsum(usd for _, _, usd in self.levels(side))

    def to_dict(self, n: int = MAP_TOP_LEVELS, within: Sequence[float] = MAP_WITHIN_PCTS,
                price: float | None = None) -> dict[str, Any]:
        """JSON-ready: per side the total, the top ``n`` levels and the USD within each
        ``within`` % of the price (None without one); plus the accounting. ``price``: a price
        newer than the map's last point (the worker's current price), which the top levels
        and the bands are read against (``price_now``); default the map's own."""
        ref = self.price if price is None else price
        out: dict[str, Any] = {"ts": self.ts, "price": self.price, "price_now": ref,
                               "bucket_pct": self.bucket_pct, "steps": self.steps,
                               "skipped": self.skipped}
        for side in SIDES:
            out[side] = {
                "total_usd": self.total(side),
                "top": [{"low": a, "high": b, "price": (a + b) / 2, "usd": usd}
                        for a, b, usd in self.top(side, n, price)],
                "within_pct": {f"{p:g}": (None if ref is None
                                          else self.usd_within(side, ref, p))
                               for p in within},
                "added_usd": self.added[side], "closed_usd": self.closed[side],
                "crossed_usd": self.crossed[side], "expired_usd": self.expired[side],
            }
        return jsonable(out)


class MapBuilder:
    """Incremental :func:`build_map`: feed points with :meth:`step` in time order, read a
    :class:`CoinMap` with :meth:`snapshot` at any time."""

    def __init__(self, config: MapConfig = DEFAULT_MAP_CONFIG) -> None:
        self.config = config
        self._books = {"long": _Book(long=True), "short": _Book(long=False)}
        #: (oi_usd, price, oi_coins) of the last valid step
        self._ref: tuple[float, float, float | None] | None = None
        self._ts: float | None = None
        self._valid_ts: float | None = None
        self.added = {"long": 0.0, "short": 0.0}
        self.closed = {"long": 0.0, "short": 0.0}
        self.crossed = {"long": 0.0, "short": 0.0}
        self.expired = {"long": 0.0, "short": 0.0}
        self.steps = 0
        self.skipped = 0

    def step(self, ts: float, oi_usd: float | None, price: float | None,
             low: float | None = None, high: float | None = None,
             oi_coins: float | None = None) -> None:
        """Apply one point. ``oi_coins``: the same open interest in coins, when known; with it
        (at this step and the reference step) the price-neutral ΔOI is the change in coins
        valued at ``price`` exactly, whatever price ``oi_usd`` was valued at. Raises
        ValueError when ``ts`` is not a finite time at or after the previous point's."""
        t = float(ts)
        if not math.isfinite(t) or (self._ts is not None and t < self._ts):
            raise ValueError(f"points must be in time order, got {ts!r} after {self._ts!r}")
        self._ts = t
        self.steps += 1
        oi, px = _num(oi_usd, positive=False), _num(price, positive=True)
        lo_in, hi_in = _num(low, positive=True), _num(high, positive=True)
        longs, shorts = self._books["long"], self._books["short"]
        cut = t - self.config.horizon
        self.expired["long"] += longs.expire(cut)
        self.expired["short"] += shorts.expire(cut)
        lows = [x for x in (lo_in, px) if x is not None]
        highs = [x for x in (hi_in, px) if x is not None]
        if lows:
            self.crossed["long"] += longs.cross(min(lows))
        if highs:
            self.crossed["short"] += shorts.cross(max(highs))
        if oi is None or px is None:
            self.skipped += 1
            return
        coins = _num(oi_coins, positive=False)
        ref, self._ref, self._valid_ts = self._ref, (oi, px, coins), t
        if ref is None:
            return
        ref_oi, ref_px, ref_coins = ref
        entry = px
        if not self.config.price_neutral:
            delta = oi - ref_oi
        elif coins is not None and ref_coins is not None:
            if coins > 0 and oi > 0:
                entry = oi / coins
            delta = (coins - ref_coins) * entry
        else:
            delta = oi - ref_oi * px / ref_px
        if delta > 0:
            mm = self.config.maintenance_margin
            for side, book in self._books.items():
                for lev, share in self.config.leverage_mix:
                    if share > 0:
                        book.add(liquidation_price(entry, lev, side, mm), delta * share, t)  # type: ignore[arg-type]
                self.added[side] += delta
        elif delta < 0:
            for side, book in self._books.items():
                self.closed[side] += book.reduce(-delta)

    def total(self, side: Side) -> float:
        return self._books[side].total()

    def snapshot(self) -> CoinMap:
        bp = self.config.bucket_pct
        g = 1.0 + bp / 100.0
        levels = {}
        for side, book in self._books.items():
            levels[side] = tuple((g ** k, g ** (k + 1), usd)
                                 for k, usd in sorted(book.buckets(bp).items()))
        return CoinMap(ts=self._valid_ts, price=None if self._ref is None else self._ref[1],
                       bucket_pct=bp, long_levels=levels["long"],
                       short_levels=levels["short"], added=dict(self.added),
                       closed=dict(self.closed), crossed=dict(self.crossed),
                       expired=dict(self.expired), steps=self.steps, skipped=self.skipped)


class OIAt(Protocol):
    """What :func:`map_points` reads of an open-interest history
    (``liqstress.oi_history.OIHistory``)."""

    def oi_usd(self, coin: str | None = None, exchange: str | None = None,
               at: float | None = None) -> float | None: ...

    def oi_coins(self, coin: str, at: float | None = None) -> float | None: ...


class PriceSlots(Protocol):
    """What :func:`map_points` reads of a price history (``liqstress.prices.PriceStore``)."""

    def slots(self, coin: str, now: float, lookback: float) -> list[tuple[float, float, float,
                                                                          float]]: ...


def map_points(oi: OIAt, prices: PriceSlots, coin: str, t: float,
               horizon: float = MAP_HORIZON) -> list[Point]:
    """The map's input for ``coin`` as of ``t``: one point per 5-minute slot that ENDED
    before ``t`` over ``horizon`` seconds, ``(slot start, oi_usd at the slot start, close,
    low, high, oi_coins at the slot start)``; a slot without a price tick gives a point without price (skipped by the
    model, the chain kept). Only data of finished slots, so the map changes once a slot."""
    by_slot = {s: (hi, lo, close) for s, hi, lo, close in prices.slots(coin, t - 1e-3, horizon)}
    last = math.floor(t / SLOT_SECONDS) - 1
    first = last - int(horizon // SLOT_SECONDS) + 1
    out: list[Point] = []
    for slot in range(first, last + 1):
        s = float(slot * SLOT_SECONDS)
        hi, lo, close = by_slot.get(s, (None, None, None))
        out.append((s, oi.oi_usd(coin, at=s), close, lo, hi, oi.oi_coins(coin, at=s)))
    return out


def build_map(points: Iterable[Sequence[Any]],
              config: MapConfig = DEFAULT_MAP_CONFIG) -> CoinMap:
    """The map of ONE coin from time-ordered ``(ts, oi_usd, price, low, high)`` points
    (market-wide OI of the coin, its price at ``ts``, the price's low/high since the previous
    point; ``low``/``high`` may be None: the price alone is used then). See the module doc."""
    b = MapBuilder(config)
    for p in points:
        ts, oi, px = p[0], p[1], p[2]
        low = p[3] if len(p) > 3 else None
        high = p[4] if len(p) > 4 else None
        coins = p[5] if len(p) > 5 else None
        b.step(ts, oi, px, low, high, coins)
    return b.snapshot()
