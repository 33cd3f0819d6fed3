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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .event import LiquidationEvent

WINDOWS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400,
                           "12h": 43200, "24h": 86400}
FINE_SECONDS = 5
COARSE_SECONDS = 60
FINE_MAX_WINDOW = 900
HORIZON = max(WINDOWS.values())
#: Minute buckets are kept one hour longer than the longest window: the spike baseline needs
#: the 24 hourly totals BEFORE the current hour.
HISTORY = HORIZON + 3600
SIDES = ("long", "short")

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


class WindowStore:
    def __init__(self, old_id_memory: int = 100_000) -> None:
        self._fine: dict[Key, dict[int, Agg]] = {}
        self._coarse: dict[Key, dict[int, Agg]] = {}
        #: Seen ids per coarse bucket, dropped with the bucket when it leaves the horizon.
        self._ids: dict[int, set[str]] = {}
        #: Ids of events already older than the horizon when they arrived (bounded).
        self._old_ids: OrderedDict[str, None] = OrderedDict()
        self._old_id_memory = old_id_memory
        self.events = 0
        self.duplicates = 0
        self.max_recv_ts = 0.0
        self.max_event_ts = 0.0
        self.exchanges: set[str] = set()

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
        self.exchanges.add(ev.exchange)
        if ev.ts <= now - HISTORY - COARSE_SECONDS:
            self._remember_old(ev.id)
            return True
        self._ids.setdefault(coarse, set()).add(ev.id)
        fine = math.floor(ev.ts / FINE_SECONDS)
        coin = coin_of(ev.base)
        for key in (("exchange", ev.exchange, ev.side), ("coin", coin, ev.side)):
            self._coarse.setdefault(key, {}).setdefault(coarse, Agg()).add(ev.notional_usd)
            self._fine.setdefault(key, {}).setdefault(fine, Agg()).add(ev.notional_usd)
        return True

    def _remember_old(self, event_id: str) -> None:
        self._old_ids[event_id] = None
        if len(self._old_ids) > self._old_id_memory:
            self._old_ids.popitem(last=False)

    def prune(self, now: float) -> None:
        """Forget buckets no window can reach any more (and their ids)."""
        fine_min = math.floor(now / FINE_SECONDS) - FINE_MAX_WINDOW // FINE_SECONDS
        coarse_min = math.floor(now / COARSE_SECONDS) - HISTORY // COARSE_SECONDS
        for buckets, lo in ((self._fine, fine_min), (self._coarse, coarse_min)):
            for key in list(buckets):
                b = buckets[key]
                for idx in [i for i in b if i < lo]:
                    del b[idx]
                if not b:
                    del buckets[key]
        for idx in [i for i in self._ids if i < coarse_min]:
            # Keep remembering them (bounded): a re-delivered copy must still count once.
            for event_id in self._ids.pop(idx):
                self._remember_old(event_id)

    def snapshot(self, now: float) -> Snapshot:
        windows: dict[str, dict[str, dict[str, dict[str, Agg]]]] = {
            w: {"exchange": {}, "coin": {}} for w in WINDOWS}
        for ex in self.exchanges:
            for w in WINDOWS:
                windows[w]["exchange"][ex] = {s: Agg() for s in SIDES}
        for buckets, gran, spec in ((self._fine, FINE_SECONDS, _FINE),
                                    (self._coarse, COARSE_SECONDS, _COARSE)):
            cur = math.floor(now / gran)
            for (scope, name, side), b in buckets.items():
                targets = []
                for w, _ in spec:
                    names = windows[w][scope]
                    sides = names.get(name)
                    if sides is None:
                        sides = names[name] = {s: Agg() for s in SIDES}
                    targets.append(sides[side])
                for idx, agg in b.items():
                    age = cur - idx
                    if age < 0:
                        continue  # dated after `now` (venue clock ahead): counted once it arrives
                    for (_, n), target in zip(spec, targets, strict=True):
                        if age < n:
                            target.merge(agg)
        return Snapshot(now=now, windows=windows, events=self.events)

    def _hourly(self, now: float, hours: int, out: dict[str, list[float]],
                series_of: Callable[[Key], list[float] | None]) -> dict[str, list[float]]:
        """Add each minute bucket's USD to the hour it falls in (0 = the current hour, last),
        in the series ``series_of(key)`` picks (None: skip the key)."""
        cur = math.floor(now / COARSE_SECONDS)
        per_hour = 3600 // COARSE_SECONDS
        for key, b in self._coarse.items():
            series = series_of(key)
            if series is None:
                continue
            for idx, agg in b.items():
                k = (cur - idx) // per_hour
                if 0 <= k < hours:
                    series[hours - 1 - k] += agg.usd
        return out

    def hourly_totals(self, now: float, hours: int = 25) -> dict[str, list[float]]:
        """USD per side over all exchanges for each of the last ``hours`` hours, oldest first;
        the last entry is the current hour as the 1h window sees it (same minute buckets)."""
        out = {side: [0.0] * hours for side in SIDES}
        return self._hourly(now, hours, out,
                            lambda key: out[key[2]] if key[0] == "exchange" else None)

    def hourly_totals_by_coin(self, now: float, coins: Iterable[str],
                              hours: int = 25) -> dict[str, list[float]]:
        """As ``hourly_totals`` but per coin, both sides summed."""
        out = {coin: [0.0] * hours for coin in coins}
        return self._hourly(now, hours, out,
                            lambda key: out.get(key[1]) if key[0] == "coin" else None)

    def bucket_count(self) -> int:
        return sum(len(b) for b in self._fine.values()) + sum(len(b) for b in self._coarse.values())


def rebuild(store: WindowStore, events: Iterable[LiquidationEvent], now: float) -> int:
    """Apply a history of events (e.g. read back from Kafka); returns how many were new."""
    return sum(1 for ev in events if store.add(ev, now))
