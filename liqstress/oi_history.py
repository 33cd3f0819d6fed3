"""Open-interest history: the newest record per venue instrument and a 25-hour ring of 5-minute
OI slots, read by the leverage signals (``liqstress/signals/leverage.py``, docs/signals.md
section 10).

Pure module (no Faust/Kafka/websocket). Every worker reads the whole ``open_interest`` topic (a
broadcast, like prices) into one :class:`OIHistory`. Its state is a function of the SET of
records applied: for each instrument the newest record wins (a total order on the record's
fields breaks ties), and each slot of the ring keeps the last ``oi_usd`` seen in it (largest
``(ts, oi_usd)``). So applying records twice, or in any order, gives the same answers: a
rebuild that re-reads records already applied changes nothing.

Reads sum instruments. An instrument's value at time ``t`` is the ``oi_usd`` of its newest
slot at or before ``t`` (5-minute resolution: the slot holding ``t`` counts), carried forward
for at most ``stale_seconds`` (900 s: a venue whose poll failed for 15 minutes drops out rather
than freezing its figure). Changes over time are best read with :meth:`OIHistory.paired` or
``hourly(..., linked=True)``, which compare only the instruments present at both times, so a
venue dropping out is not read as open interest closing.

Memory: per instrument one ``array('q')`` of slot ids and three ``array('d')`` (ts, oi_usd,
oi_coins) of :data:`N_SLOTS` entries, ~9.6 kB; funding and price are kept from the newest record only.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from math import fsum

from .open_interest import OpenInterest

__all__ = ["N_SLOTS", "OI_HISTORY", "SLOT_SECONDS", "STALE_SECONDS", "OIHistory"]

#: One OI slot per instrument and 5 minutes.
SLOT_SECONDS = 300
#: Slots kept: 25 hours plus one slot, enough for a 24 h-ago figure and 24 hourly changes.
OI_HISTORY = 25 * 3600 + SLOT_SECONDS
N_SLOTS = OI_HISTORY // SLOT_SECONDS
#: An instrument's figure is carried forward this long (a few polls), then it drops out.
STALE_SECONDS = 900.0

_Key = tuple[str, str]


def _nz(x: float | None) -> float:
    return -math.inf if x is None else x


def _nz_nan(x: float) -> float:
    return -math.inf if math.isnan(x) else x


def _rank(rec: OpenInterest) -> tuple[float, float, float, float, float, float, str, str]:
    """Total order on records of one instrument: the greatest is "the newest"."""
    return (rec.ts, rec.recv_ts, _nz(rec.oi_usd), _nz(rec.funding_8h), _nz(rec.price),
            _nz(rec.oi_coins), rec.market, rec.coin)


class _Ring:
    """N_SLOTS slots of (slot id, ts, oi_usd, oi_coins), indexed by ``slot % N_SLOTS``
    (``oi_coins`` NaN where the record had none)."""

    __slots__ = ("coins", "ids", "ts", "usd")

    def __init__(self) -> None:
        self.ids = array("q", [-1]) * N_SLOTS
        self.ts = array("d", [0.0]) * N_SLOTS
        self.usd = array("d", [0.0]) * N_SLOTS
        self.coins = array("d", [math.nan]) * N_SLOTS

    def put(self, slot: int, ts: float, usd: float, coins: float = math.nan) -> bool:
        """Keep the largest ``(slot, ts, usd, coins)`` per index; True when it changed."""
        i = slot % N_SLOTS
        cur = self.ids[i]
        if cur > slot or (cur == slot and (ts, usd, _nz_nan(coins)) <= (
                self.ts[i], self.usd[i], _nz_nan(self.coins[i]))):
            return False
        self.ids[i] = slot
        self.ts[i] = ts
        self.usd[i] = usd
        self.coins[i] = coins
        return True

    def index_at(self, t: float, stale: float) -> int | None:
        """Index of the newest slot at or before ``t`` if its ts is within ``stale`` seconds
        before ``t``; None otherwise."""
        slot = math.floor(t / SLOT_SECONDS)
        for back in range(int(stale // SLOT_SECONDS) + 2):
            s = slot - back
            i = s % N_SLOTS
            if self.ids[i] == s:
                return i if t - self.ts[i] <= stale else None
        return None

    def at(self, t: float, stale: float) -> tuple[float, float] | None:
        """``(ts, usd)`` of the newest slot at or before ``t`` if its ts is within ``stale``
        seconds before ``t``; None otherwise."""
        i = self.index_at(t, stale)
        return None if i is None else (self.ts[i], self.usd[i])


class _Instrument:
    __slots__ = ("newest", "ring")

    def __init__(self, rec: OpenInterest) -> None:
        self.newest = rec
        self.ring = _Ring()


class OIHistory:
    """Per (exchange, symbol): the newest :class:`OpenInterest` and a ring of 5-minute
    ``oi_usd`` slots over 25 h. Filters: ``coin`` (None = all coins), ``exchange`` (None = all
    venues). Times are epoch seconds."""

    def __init__(self, stale_seconds: float = STALE_SECONDS) -> None:
        if not stale_seconds > 0:
            raise ValueError("stale_seconds must be > 0")
        self.stale_seconds = float(stale_seconds)
        self._inst: dict[_Key, _Instrument] = {}
        self._by_coin: dict[str, set[_Key]] = {}
        #: records that changed the state / that did not (duplicates, older than held)
        self.applied = 0
        self.ignored = 0
        #: newest record time seen (the default ``at`` of the reads)
        self.max_ts = 0.0

    # -- writing -----------------------------------------------------------------------------

    def apply(self, rec: OpenInterest) -> bool:
        """Apply one record. False (nothing changed) when the instrument already holds this
        record or a newer one for the record's slot and as its newest record. An older record
        may still fill an empty older slot. Records without ``oi_usd`` update the newest record
        (funding, price) but no slot."""
        key = (rec.exchange, rec.symbol)
        inst = self._inst.get(key)
        changed = False
        if inst is None:
            inst = self._inst[key] = _Instrument(rec)
            self._by_coin.setdefault(rec.coin, set()).add(key)
            changed = True
        elif _rank(rec) > _rank(inst.newest):
            if rec.coin != inst.newest.coin:
                self._unindex(key, inst.newest.coin)
                self._by_coin.setdefault(rec.coin, set()).add(key)
            inst.newest = rec
            changed = True
        if rec.oi_usd is not None:
            changed |= inst.ring.put(math.floor(rec.ts / SLOT_SECONDS), rec.ts, rec.oi_usd,
                                     math.nan if rec.oi_coins is None else rec.oi_coins)
        if rec.ts > self.max_ts:
            self.max_ts = rec.ts
        if changed:
            self.applied += 1
        else:
            self.ignored += 1
        return changed

    def apply_all(self, recs: Iterable[OpenInterest]) -> int:
        """Apply records; returns how many changed the state."""
        return sum(self.apply(r) for r in recs)

    def _unindex(self, key: _Key, coin: str) -> None:
        keys = self._by_coin.get(coin)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_coin[coin]

    def prune(self, now: float) -> int:
        """Forget instruments whose newest record is older than the history (25 h) before
        ``now`` (delisted or renamed contracts); returns how many were dropped."""
        cut = now - OI_HISTORY
        gone = [k for k, inst in self._inst.items() if inst.newest.ts < cut]
        for key in gone:
            self._unindex(key, self._inst.pop(key).newest.coin)
        return len(gone)

    # -- reading -----------------------------------------------------------------------------

    def coins(self) -> list[str]:
        return sorted(self._by_coin)

    def exchanges(self) -> list[str]:
        return sorted({ex for ex, _ in self._inst})

    def series_count(self) -> int:
        """Instruments held (one ring each)."""
        return len(self._inst)

    def latest(self, exchange: str, symbol: str) -> OpenInterest | None:
        """The newest record of one instrument."""
        inst = self._inst.get((exchange, symbol))
        return inst.newest if inst is not None else None

    def _keys(self, coin: str | None, exchange: str | None) -> list[_Key]:
        keys: Iterable[_Key] = self._inst if coin is None else self._by_coin.get(coin, ())
        # Sorted: every sum over instruments then runs in one order whatever order the records
        # came in, so re-applying them in another order gives the same floats.
        return sorted(k for k in keys if exchange is None or k[0] == exchange)

    def _values(self, keys: Iterable[_Key], at: float) -> dict[_Key, float]:
        """Each instrument's USD open interest at ``at`` (fresh ones only)."""
        out = {}
        for key in keys:
            got = self._inst[key].ring.at(at, self.stale_seconds)
            if got is not None:
                out[key] = got[1]
        return out

    def oi_usd(self, coin: str | None = None, exchange: str | None = None,
               at: float | None = None) -> float | None:
        """Σ ``oi_usd`` over the instruments (of ``coin``, on ``exchange``) as of ``at``
        (default: the newest record time), each carried forward from its newest slot at or
        before ``at`` for at most ``stale_seconds``; None when no instrument has a value."""
        t = self.max_ts if at is None else at
        vals = self._values(self._keys(coin, exchange), t)
        return fsum(vals.values()) if vals else None

    def oi_coins(self, coin: str, at: float | None = None) -> float | None:
        """Σ open interest in coins of ``coin``'s instruments as of ``at``, read like
        :meth:`oi_usd`: the count of contracts without a price in it (the estimated
        liquidation map reads changes of it, so a price move is never read as positions
        opened or closed). None when an instrument with a fresh value has no coin figure, or
        none has a value."""
        t = self.max_ts if at is None else at
        out = []
        for key in self._keys(coin, None):
            ring = self._inst[key].ring
            i = ring.index_at(t, self.stale_seconds)
            if i is not None:
                if math.isnan(ring.coins[i]):
                    return None
                out.append(ring.coins[i])
        return fsum(out) if out else None

    def paired(self, coin: str | None = None, *, then: float, now: float,
               exchange: str | None = None) -> tuple[float, float, int]:
        """``(usd then, usd now, instruments)`` summed over the instruments that have a value
        at BOTH times: a like-for-like change, blind to venues appearing or dropping out.
        ``(0.0, 0.0, 0)`` when no instrument has both."""
        keys = self._keys(coin, exchange)
        a = self._values(keys, then)
        b = self._values(a, now)
        return fsum(a[k] for k in b), fsum(b.values()), len(b)

    def hourly(self, coin: str | None = None, *, now: float, hours: int = 24,
               linked: bool = False) -> list[float | None]:
        """OI USD at the end of each of the last ``hours`` hours, oldest first: the values at
        ``now - (hours - 1 - k) × 3600`` for k = 0..hours-1 (the last is ``now``); None where
        no instrument has a value.

        ``linked=True`` chains like-for-like changes instead: the first available point is the
        sum then, and each next point is the previous one × (Σ now / Σ then over the
        instruments present at both hours); where no instrument spans the two hours the chain
        restarts from that hour's sum. Ratios between neighbours are then free of venues
        appearing or dropping out (what the OI deleveraging classification reads)."""
        if hours < 1:
            raise ValueError("hours must be >= 1")
        keys = self._keys(coin, None)
        snaps = [self._values(keys, now - (hours - 1 - k) * 3600.0) for k in range(hours)]
        if not linked:
            return [fsum(s.values()) if s else None for s in snaps]
        out: list[float | None] = []
        prev: dict[_Key, float] = {}
        level: float | None = None
        for snap in snaps:
            common = [k for k in snap if k in prev]
            base = fsum(prev[k] for k in common)
            if level is not None and base > 0:
                level = level * fsum(snap[k] for k in common) / base
            else:
                level = fsum(snap.values()) if snap else None
            out.append(level)
            prev = snap
        return out

    def funding_8h(self, coin: str | None = None, *, now: float) -> float | None:
        """OI-weighted mean 8-hour funding: ``Σ f_i × oi_i / Σ oi_i`` over the instruments
        whose newest record is fresh at ``now`` (within ``stale_seconds``), has a funding rate,
        and whose USD open interest at ``now`` is > 0. None when there is none. Funding is held
        from the newest record only: ``now`` is the present."""
        num = den = 0.0
        for key in self._keys(coin, None):
            inst = self._inst[key]
            f = inst.newest.funding_8h
            if f is None or now - inst.newest.ts > self.stale_seconds:
                continue
            got = inst.ring.at(now, self.stale_seconds)
            if got is None or not got[1] > 0:
                continue
            num += f * got[1]
            den += got[1]
        return num / den if den > 0 else None

    def coverage(self, coin: str | None = None, *, now: float) -> dict[str, float]:
        """``{exchange: share}`` of the OI USD sum at ``now`` (which venues the figure covers);
        shares sum to 1; ``{}`` when the sum is 0 or nothing is fresh."""
        parts: dict[str, list[float]] = {}
        for (ex, _), usd in self._values(self._keys(coin, None), now).items():
            parts.setdefault(ex, []).append(usd)
        by_ex = {ex: fsum(vals) for ex, vals in parts.items()}
        total = fsum(by_ex.values())
        if not total > 0:
            return {}
        return {ex: usd / total for ex, usd in sorted(by_ex.items())}
