"""Prices: mark-price ticks, a compact per-coin price history, and liquidation price levels.

Pure module (no Faust/Kafka/websocket). The collectors turn venue mark-price frames into
:class:`PriceTick` records on the ``prices`` topic (key: coin; schema
``liqstress/schemas/price.schema.json``); the worker keeps them in a :class:`PriceStore` for
local lows/highs, hourly ranges and breadth, and keeps liquidation prices in
:class:`LiquidationLevels` for the clusters. Both are commutative and idempotent (max/min, and
"newest tick wins" for the close), so a rebuild that re-reads ticks already applied changes
nothing.

Prices are per ONE coin: venues that quote ``1000PEPE`` or ``kPEPE`` get their price divided by
the multiplier (``liqstress.windows.coin_scale``), so levels from different venues line up.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from .signals.clusters import CLUSTER_BUCKET_PCT, bucket_index
from .signals.trends import range_pct
from .windows import coin_scale
from .wire import json_record

SCHEMA_VERSION = 1
#: One price slot (high, low, close) per coin, exchange and 5 minutes.
SLOT_SECONDS = 300
#: Slots kept: 25 hours plus one slot, enough for a 24 h-ago price and 24 hourly ranges.
PRICE_HISTORY = 25 * 3600 + SLOT_SECONDS
N_SLOTS = PRICE_HISTORY // SLOT_SECONDS
#: A coin whose newest tick is older than this has no "current" price.
STALE_SECONDS = 900.0
#: Which venue's price a coin uses when several report it; others fill in coins it lacks.
PRICE_PRIORITY: tuple[str, ...] = ("binance", "hyperliquid")
KINDS = ("mark", "mid")


class PriceError(ValueError):
    """A price record that cannot be used."""


@dataclass(frozen=True, slots=True)
class PriceTick:
    v: int
    exchange: str
    symbol: str
    coin: str
    #: USD per ONE coin (venue multipliers such as 1000PEPE divided out)
    price: float
    #: venue time of the price, epoch seconds
    ts: float
    recv_ts: float
    #: "mark" (venue mark price) or "mid" (mid of the book, where a venue has no mark stream)
    kind: str

    @property
    def key(self) -> str:
        return self.coin

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))


def _check(price: float, ts: float, recv_ts: float, kind: str) -> None:
    for name, val in (("price", price), ("ts", ts), ("recv_ts", recv_ts)):
        if isinstance(val, bool) or not isinstance(val, int | float) or not math.isfinite(val) \
                or val <= 0:
            raise PriceError(f"{name} must be a positive finite number, got {val!r}")
    if kind not in KINDS:
        raise PriceError(f"kind must be one of {KINDS}, got {kind!r}")


def make_tick(*, exchange: str, symbol: str, base: str, price: float, ts: float,
              recv_ts: float, kind: str = "mark") -> PriceTick:
    """``price`` is per unit of the venue's ``base`` (e.g. per 1000 PEPE for 1000PEPEUSDT)."""
    _check(price, ts, recv_ts, kind)
    coin, units = coin_scale(base)
    return PriceTick(v=SCHEMA_VERSION, exchange=exchange, symbol=symbol, coin=coin,
                     price=float(price) / units, ts=float(ts), recv_ts=float(recv_ts), kind=kind)


_FIELDS = ("v", "exchange", "symbol", "coin", "price", "ts", "recv_ts", "kind")


def tick_from_json(data: bytes | str | dict[str, Any]) -> PriceTick:
    """Decode and check a wire tick; raises PriceError with a reason on anything off."""
    obj = json_record(data, _FIELDS, SCHEMA_VERSION, PriceError, "price")
    for name in ("exchange", "symbol", "coin"):
        if not isinstance(obj[name], str) or not obj[name]:
            raise PriceError(f"{name} must be a non-empty string")
    _check(obj["price"], obj["ts"], obj["recv_ts"], obj["kind"])
    return PriceTick(**{f: obj[f] for f in _FIELDS})


class _Series:
    """A ring of N_SLOTS slots: (high, low, close, close_ts) per 5-minute slot. Arrays keep
    ~12 kB per coin and venue where dicts of lists would take ten times that."""

    __slots__ = ("ids", "vals", "newest")

    def __init__(self) -> None:
        self.ids = array("q", [-1]) * N_SLOTS
        self.vals = array("d", [0.0]) * (4 * N_SLOTS)
        self.newest = -1

    def add(self, slot: int, price: float, ts: float) -> None:
        i = slot % N_SLOTS
        j = 4 * i
        cur = self.ids[i]
        v = self.vals
        if cur != slot:
            if cur > slot:
                return  # older than the ring reaches
            self.ids[i] = slot
            v[j] = v[j + 1] = v[j + 2] = price
            v[j + 3] = ts
        else:
            if price > v[j]:
                v[j] = price
            if price < v[j + 1]:
                v[j + 1] = price
            if ts >= v[j + 3]:
                v[j + 2] = price
                v[j + 3] = ts
        if slot > self.newest:
            self.newest = slot

    def span(self, first: int, last: int) -> tuple[float, float] | None:
        """(low, high) over slots ``first..last`` inclusive; None without a tick there."""
        lo, hi = math.inf, -math.inf
        for slot in range(first, last + 1):
            got = self.get(slot)
            if got is not None:
                hi = max(hi, got[0])
                lo = min(lo, got[1])
        return (lo, hi) if hi >= lo else None

    def get(self, slot: int) -> tuple[float, float, float, float] | None:
        i = slot % N_SLOTS
        if self.ids[i] != slot:
            return None
        j = 4 * i
        v = self.vals
        return v[j], v[j + 1], v[j + 2], v[j + 3]


class PriceStore:
    """Per (coin, exchange) price history at 5-minute resolution over 25 hours.

    Reads pick one exchange per coin (``priority`` first, then by name), so a coin's series
    never mixes two venues' marks. Resolution: a "price 1 h ago" is the close of the 5-minute
    slot holding that instant; a local low over 4 h spans 3 h 55 min to 4 h.
    """

    def __init__(self, priority: Sequence[str] = PRICE_PRIORITY,
                 stale_seconds: float = STALE_SECONDS) -> None:
        self.priority = tuple(priority)
        self.stale_seconds = stale_seconds
        self._series: dict[tuple[str, str], _Series] = {}
        self._exchanges: dict[str, set[str]] = {}
        self.ticks = 0
        self.ignored = 0
        self.max_ts = 0.0
        self.max_recv_ts = 0.0

    def add(self, tick: PriceTick) -> bool:
        """Apply a tick; False (ignored) when it is older than the history reaches."""
        if tick.ts < self.max_ts - PRICE_HISTORY:
            self.ignored += 1
            return False
        key = (tick.coin, tick.exchange)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series()
            self._exchanges.setdefault(tick.coin, set()).add(tick.exchange)
        series.add(math.floor(tick.ts / SLOT_SECONDS), tick.price, tick.ts)
        self.ticks += 1
        if tick.ts > self.max_ts:
            self.max_ts = tick.ts
        if tick.recv_ts > self.max_recv_ts:
            self.max_recv_ts = tick.recv_ts
        return True

    def coins(self) -> list[str]:
        return sorted(self._exchanges)

    def source(self, coin: str) -> str | None:
        exchanges = self._exchanges.get(coin)
        if not exchanges:
            return None
        rank = {ex: i for i, ex in enumerate(self.priority)}
        return min(exchanges, key=lambda ex: (rank.get(ex, len(rank)), ex))

    def _series_of(self, coin: str) -> _Series | None:
        ex = self.source(coin)
        return self._series.get((coin, ex)) if ex is not None else None

    def price_at(self, coin: str, ts: float, tolerance: float | None = None) -> float | None:
        """Close of the newest slot at or before ``ts`` that holds a tick no older than
        ``tolerance`` (default ``stale_seconds``) before ``ts``; None if there is none."""
        s = self._series_of(coin)
        if s is None:
            return None
        tol = self.stale_seconds if tolerance is None else tolerance
        slot = math.floor(ts / SLOT_SECONDS)
        for back in range(int(tol // SLOT_SECONDS) + 2):
            got = s.get(slot - back)
            if got is not None:
                return got[2] if ts - got[3] <= tol else None
        return None

    def extremes(self, coin: str, now: float, lookback: float) -> tuple[float, float] | None:
        """(low, high) over the slots of the last ``lookback`` seconds, the current one
        included; None without data."""
        s = self._series_of(coin)
        if s is None:
            return None
        cur = math.floor(now / SLOT_SECONDS)
        return s.span(cur - max(1, math.ceil(lookback / SLOT_SECONDS)) + 1, cur)

    def hourly_ranges(self, coin: str, now: float, hours: int) -> list[float | None]:
        """``range_pct`` of each of the last ``hours`` hours (trailing 60-minute blocks ending
        now, as ``WindowStore.hourly_totals``), oldest first; None for an hour without ticks."""
        s = self._series_of(coin)
        out: list[float | None] = [None] * hours
        if s is None:
            return out
        per_hour = 3600 // SLOT_SECONDS
        cur = math.floor(now / SLOT_SECONDS)
        for k in range(hours):
            got = s.span(cur - (k + 1) * per_hour + 1, cur - k * per_hour)
            if got is not None:
                out[hours - 1 - k] = range_pct(got[1], got[0])
        return out

    def slots(self, coin: str, now: float, lookback: float) -> list[tuple[float, float, float,
                                                                          float]]:
        """``[(slot start ts, high, low, close), ...]`` of the coin's chosen venue over the
        last ``lookback`` seconds, oldest first, slots without a tick left out."""
        s = self._series_of(coin)
        if s is None:
            return []
        cur = math.floor(now / SLOT_SECONDS)
        first = cur - max(1, math.ceil(lookback / SLOT_SECONDS)) + 1
        out = []
        for slot in range(max(first, cur - N_SLOTS + 1), cur + 1):
            got = s.get(slot)
            if got is not None:
                out.append((float(slot * SLOT_SECONDS), got[0], got[1], got[2]))
        return out

    def breadth_inputs(self, now: float) -> dict[str, tuple[float | None, float | None,
                                                               float | None]]:
        """``{coin: (price now, 1 h ago, 24 h ago)}`` for coins with a current price."""
        out: dict[str, tuple[float | None, float | None, float | None]] = {}
        for coin in self._exchanges:
            p = self.price_at(coin, now)
            if p is None:
                continue
            out[coin] = (p, self.price_at(coin, now - 3600), self.price_at(coin, now - 86400))
        return out

    def prune(self, now: float) -> None:
        """Forget series with no tick inside the history (delisted coins)."""
        oldest = math.floor(now / SLOT_SECONDS) - N_SLOTS
        for key in [k for k, s in self._series.items() if s.newest < oldest]:
            del self._series[key]
            exchanges = self._exchanges[key[0]]
            exchanges.discard(key[1])
            if not exchanges:
                del self._exchanges[key[0]]

    def series_count(self) -> int:
        return len(self._series)


class LiquidationLevels:
    """Per coin and minute, liquidated USD by price bucket and side, for the last ``horizon``
    seconds: what the clusters near local lows/highs are computed from.

    Prices are kept as their bucket (``signals.clusters.bucket_bounds``, ``bucket_pct`` wide),
    so a level reads back as the bucket's midpoint: within ``bucket_pct``/2 of the real price.
    """

    def __init__(self, bucket_pct: float = CLUSTER_BUCKET_PCT, horizon: float = 3600.0,
                 track_dirty: bool = False, slot_seconds: int = 60) -> None:
        if not bucket_pct > 0:
            raise ValueError("bucket_pct must be > 0")
        if not slot_seconds > 0:
            raise ValueError("slot_seconds must be > 0")
        self.bucket_pct = bucket_pct
        self.horizon = horizon
        #: Time resolution: one cell per coin, slot and price bucket ("minute" below reads
        #: "slot" when this is not 60; the heatmap store uses 5-minute slots over 24 h).
        self.slot_seconds = slot_seconds
        self._g = 1.0 + bucket_pct / 100.0
        #: coin -> minute -> bucket index -> [long USD, short USD]
        self._data: dict[str, dict[int, dict[int, list[float]]]] = {}
        self._mids: dict[int, float] = {}
        self.track_dirty = track_dirty
        self.dirty: set[tuple[str, int, int]] = set()

    def add(self, coin: str, price: float, side: str, usd: float | None, ts: float,
            now: float) -> bool:
        """``price`` per ONE coin. Unpriced (usd None) and out-of-horizon events are skipped."""
        if usd is None or not (price > 0 and math.isfinite(price)) or usd < 0 \
                or ts <= now - self.horizon - self.slot_seconds:
            return False
        k = bucket_index(price, self.bucket_pct)
        minute = math.floor(ts / self.slot_seconds)
        cell = self._data.setdefault(coin, {}).setdefault(minute, {}).setdefault(k, [0.0, 0.0])
        cell[0 if side == "long" else 1] += usd
        if self.track_dirty:
            self.dirty.add((coin, minute, k))
        return True

    def rows(self, dirty_only: bool = False) -> list[tuple[str, int, int, float, float]]:
        """Cells as ``(coin, minute, bucket, long USD, short USD)`` rows: all, or those changed
        since the last ``dirty_only`` call (which clears the change set)."""
        if dirty_only:
            out = []
            for coin, minute, k in self.dirty:
                cell = self._data.get(coin, {}).get(minute, {}).get(k)
                if cell is not None:
                    out.append((coin, minute, k, cell[0], cell[1]))
            self.dirty = set()
            return out
        return [(coin, minute, k, cell[0], cell[1])
                for coin, minutes in self._data.items()
                for minute, buckets in minutes.items() for k, cell in buckets.items()]

    def set_rows(self, rows: Iterable[Sequence[Any]]) -> None:
        for coin, minute, k, long_usd, short_usd in rows:
            self._data.setdefault(coin, {}).setdefault(minute, {})[k] = [long_usd, short_usd]

    def _mid(self, k: int) -> float:
        mid = self._mids.get(k)
        if mid is None:
            mid = self._mids[k] = (self._g ** k + self._g ** (k + 1)) / 2
        return mid

    def liquidations(self, coin: str, now: float,
                     window: float | None = None) -> list[tuple[float, str, float]]:
        """``[(bucket mid price, side, usd), ...]`` over the last ``window`` seconds (default:
        the horizon), the shape ``price_clusters``/``near_extreme_share`` take
        (``liqstress/signals/clusters.py``)."""
        acc: dict[int, list[float]] = {}
        self.accumulate(coin, now, window, acc)
        return self.to_levels(acc)

    def accumulate(self, coin: str, now: float, window: float | None,
                   acc: dict[int, list[float]]) -> None:
        """Add ``coin``'s cells of the last ``window`` seconds into ``acc`` (bucket -> [long,
        short]); several stores (one per partition) add into one ``acc``."""
        minutes = self._data.get(coin)
        if not minutes:
            return
        w = self.horizon if window is None else window
        cur = math.floor(now / self.slot_seconds)
        n = max(1, math.ceil(w / self.slot_seconds))
        for minute, buckets in minutes.items():
            if cur - n < minute <= cur:
                for k, (lu, su) in buckets.items():
                    cell = acc.setdefault(k, [0.0, 0.0])
                    cell[0] += lu
                    cell[1] += su

    def accumulate_slots(self, coin: str, now: float, window: float,
                         acc: dict[int, dict[int, list[float]]]) -> None:
        """As ``accumulate`` but keeping the time dimension: slot -> bucket -> [long, short]
        over the slots of the last ``window`` seconds (the heatmap)."""
        slots = self._data.get(coin)
        if not slots:
            return
        cur = math.floor(now / self.slot_seconds)
        n = max(1, math.ceil(window / self.slot_seconds))
        for slot, buckets in slots.items():
            if cur - n < slot <= cur:
                into = acc.setdefault(slot, {})
                for k, (lu, su) in buckets.items():
                    cell = into.setdefault(k, [0.0, 0.0])
                    cell[0] += lu
                    cell[1] += su

    def bucket_bounds(self, k: int) -> tuple[float, float]:
        """Price range ``[low, high)`` of bucket ``k``."""
        return self._g ** k, self._g ** (k + 1)

    def mid(self, k: int) -> float:
        return self._mid(k)

    def to_levels(self, acc: dict[int, list[float]]) -> list[tuple[float, str, float]]:
        out: list[tuple[float, str, float]] = []
        for k in sorted(acc):
            lu, su = acc[k]
            mid = self._mid(k)
            if lu > 0:
                out.append((mid, "long", lu))
            if su > 0:
                out.append((mid, "short", su))
        return out

    def coins(self) -> list[str]:
        return sorted(self._data)

    def prune(self, now: float) -> None:
        lo = math.floor((now - self.horizon) / self.slot_seconds) - 1
        for coin in list(self._data):
            minutes = self._data[coin]
            for m in [m for m in minutes if m < lo]:
                del minutes[m]
            if not minutes:
                del self._data[coin]


class MergedLevels:
    """Several :class:`LiquidationLevels` (one per partition) read as one, with the read
    interface the stress engine uses."""

    def __init__(self, parts: Sequence[LiquidationLevels], bucket_pct: float = CLUSTER_BUCKET_PCT) -> None:
        self.parts = parts
        self.bucket_pct = parts[0].bucket_pct if parts else bucket_pct
        self._fmt = parts[0] if parts else LiquidationLevels(bucket_pct)

    def coins(self) -> list[str]:
        return sorted({c for p in self.parts for c in p.coins()})

    def liquidations(self, coin: str, now: float,
                     window: float | None = None) -> list[tuple[float, str, float]]:
        acc: dict[int, list[float]] = {}
        for p in self.parts:
            p.accumulate(coin, now, window, acc)
        return self._fmt.to_levels(acc)


def apply_ticks(store: PriceStore, ticks: Iterable[PriceTick]) -> int:
    return sum(1 for t in ticks if store.add(t))
