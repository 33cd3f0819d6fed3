"""Stress signals: pure maths from liquidation windows (and prices) to "leverage stress".

Pure module: standard library only (no Faust, Kafka, websocket or Prometheus imports), so every
formula can be unit-tested on hand-computed numbers. The formulas, parameters, defaults and edge
cases are documented in ``docs/signals.md``; keep both in step.

Conventions shared by every signal:

* Amounts are USD notionals (``LiquidationEvent.notional_usd`` summed, as in
  ``liqstress.windows.Agg.usd``). A side is the POSITION liquidated: ``"long"`` or ``"short"``.
* Time series are ordered oldest first, newest last (``series[-1]`` is the latest hour).
* Invalid amounts (NaN, +/-inf, negative, ``None``) never raise inside a signal: where a value is
  a current amount it counts as 0; where it is one point of a history it is dropped as missing
  (each function's docstring says which).
* Undefined ratios (0/0) are ``None``, never NaN. Every result has ``to_dict()`` returning plain
  JSON types; non-finite floats (the only one possible is ``SpikeResult.multiple = inf``) become
  ``null`` there.
* Results are frozen dataclasses; ``CascadeDetector`` is the only stateful object.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple

from ..labels import SIDES, Side

Label = Literal["calm", "staged", "capitulation"]
LABELS: tuple[Label, Label, Label] = ("calm", "staged", "capitulation")

# Defaults, also the documented values in docs/signals.md.
SPIKE_FACTOR = 3.0
SPIKE_MIN_USD = 1_000_000.0
SPIKE_LOOKBACK_HOURS = 24

CASCADE_MIN_VENUES = 2
CASCADE_VENUE_SHARE = 0.1  # venue_min_usd defaults to this share of threshold_usd
CASCADE_END_RATIO = 0.5

DELEVERAGING_HOURS = 24
DELEVERAGING_SPIKE_FACTOR = 3.0
DELEVERAGING_DOMINANCE_SHARE = 0.5
DELEVERAGING_MIN_STAGES = 2

CLUSTER_BUCKET_PCT = 0.25
NEAR_EXTREME_PCT = 1.0
TOP_LEVELS = 5

DIVERGENCE_LIQ_SLOPE_MIN = 0.05
DIVERGENCE_RANGE_SLOPE_MIN = 0.03
DIVERGENCE_MIN_POINTS = 6


# --------------------------------------------------------------------------------------------
# helpers


def _finite_nonneg(x: Any) -> float | None:
    """``x`` as a float when it is a finite number >= 0, else None (bools are not numbers)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    if not math.isfinite(v) or v < 0:
        return None
    return v


def _amount(x: Any) -> float:
    """A current amount: invalid values count as 0."""
    v = _finite_nonneg(x)
    return 0.0 if v is None else v


def _finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return v if math.isfinite(v) else None


def _jsonable(x: Any) -> Any:
    """Plain JSON types: non-finite floats -> None, tuples/sets -> lists, keys -> str."""
    if isinstance(x, bool) or x is None or isinstance(x, str | int):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        items = sorted(x) if isinstance(x, set | frozenset) else x
        return [_jsonable(v) for v in items]
    if hasattr(x, "to_dict"):
        return x.to_dict()
    raise TypeError(f"not JSON-able: {type(x).__name__}")


class _ToDict:
    """``to_dict()`` for the result dataclasses: every field, JSON-safe."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def ramp(x: float | None, lo: float, hi: float) -> float | None:
    """The saturating map used by the stress index: ``clamp((x - lo) / (hi - lo), 0, 1)``.

    0 at or below ``lo``, 1 at or above ``hi``, linear between. ``+inf`` -> 1, ``-inf`` -> 0,
    ``None``/NaN -> None (the component is missing). Requires ``hi > lo``.
    """
    if hi <= lo:
        raise ValueError(f"ramp needs hi > lo, got lo={lo} hi={hi}")
    if x is None or isinstance(x, bool) or not isinstance(x, int | float) or math.isnan(x):
        return None
    if x <= lo:
        return 0.0
    if x >= hi:
        return 1.0
    return (x - lo) / (hi - lo)


# --------------------------------------------------------------------------------------------
# 1. long/short imbalance


def long_share(long_usd: float, short_usd: float) -> float | None:
    """Long share of liquidated notional: ``long / (long + short)``, in [0, 1].

    None when both are 0 (no liquidations: no imbalance to speak of). Invalid amounts (negative,
    NaN, inf) count as 0.
    """
    lo, sh = _amount(long_usd), _amount(short_usd)
    total = lo + sh
    if total <= 0:
        return None
    return min(1.0, max(0.0, lo / total))


@dataclass(frozen=True, slots=True)
class Imbalance(_ToDict):
    """Long/short split of one window, overall (all venues) and per venue."""

    long_usd: float
    short_usd: float
    #: long_usd / (long_usd + short_usd); None when both are 0
    long_share: float | None
    #: exchange -> that venue's long share (None when the venue liquidated nothing)
    per_exchange: dict[str, float | None]

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    @property
    def skew(self) -> float | None:
        """``|long_share - 0.5| * 2``: 0 balanced, 1 one-sided."""
        return None if self.long_share is None else abs(self.long_share - 0.5) * 2


def imbalance(by_exchange: Mapping[str, Mapping[str, float]]) -> Imbalance:
    """Imbalance of one window from ``{exchange: {"long": usd, "short": usd}}``.

    That is one window of ``Snapshot.usd_by_exchange()`` (``snap.usd_by_exchange()["1h"]``); the
    coin scope has the same shape (``{coin: {"long": .., "short": ..}}``) and works too. A missing
    side counts as 0. overall share = Σ long / (Σ long + Σ short).
    """
    total_long = total_short = 0.0
    per: dict[str, float | None] = {}
    for ex, sides in by_exchange.items():
        lo, sh = _amount(sides.get("long", 0.0)), _amount(sides.get("short", 0.0))
        total_long += lo
        total_short += sh
        per[ex] = long_share(lo, sh)
    return Imbalance(long_usd=total_long, short_usd=total_short,
                     long_share=long_share(total_long, total_short), per_exchange=per)


def imbalance_by_window(
        usd_by_window: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, Imbalance]:
    """``imbalance`` for every window of ``Snapshot.usd_by_exchange()``
    (``{window: {exchange: {side: usd}}}``)."""
    return {w: imbalance(by_ex) for w, by_ex in usd_by_window.items()}


def venue_usd(by_exchange: Mapping[str, Mapping[str, float]],
              side: Side | None = None) -> dict[str, float]:
    """``{exchange: {"long": usd, "short": usd}}`` -> ``{exchange: usd}`` for one side, or both
    sides summed when ``side`` is None (the input of ``concentration`` and of
    ``CascadeDetector.update``)."""
    if side is not None and side not in SIDES:
        raise ValueError(f"side must be long|short|None, got {side!r}")
    wanted = SIDES if side is None else (side,)
    return {ex: sum(_amount(sides.get(s, 0.0)) for s in wanted) for ex, sides in by_exchange.items()}


# --------------------------------------------------------------------------------------------
# 2. spike


@dataclass(frozen=True, slots=True)
class SpikeResult(_ToDict):
    """A window's notional against the median of previous hourly totals."""

    #: current / baseline; 0.0 when current is 0; +inf when baseline is 0 < current (null in
    #: JSON); None when there is no baseline
    multiple: float | None
    #: median of the valid previous hourly totals (at most ``lookback``); None with no history
    baseline: float | None
    #: multiple >= factor and current >= min_usd
    flag: bool
    current_usd: float = 0.0
    #: how many hours the baseline is the median of
    baseline_hours: int = 0


def spike(current_usd: float, previous_hourly_totals: Sequence[float | None],
          factor: float = SPIKE_FACTOR, min_usd: float = SPIKE_MIN_USD,
          lookback: int = SPIKE_LOOKBACK_HOURS) -> SpikeResult:
    """Spike of ``current_usd`` (e.g. the 1 h window, both sides or one) against a trailing
    baseline.

    ``baseline = median(previous_hourly_totals[-lookback:])`` (oldest first; invalid points --
    None, NaN, inf, negative -- are dropped as missing hours; fewer than ``lookback`` hours: the
    median of those there are). ``multiple = current / baseline``; with ``baseline == 0``:
    ``multiple = 0`` if ``current == 0`` else ``+inf``. ``flag = multiple >= factor and
    current >= min_usd``. No valid history: ``multiple = baseline = None`` and no flag. An invalid
    ``current_usd`` counts as 0. The previous hours must not include the current window.
    """
    if lookback < 1:
        raise ValueError("lookback must be >= 1")
    cur = _amount(current_usd)
    recent = list(previous_hourly_totals)[-lookback:]
    history = [v for v in (_finite_nonneg(h) for h in recent) if v is not None]
    if not history:
        return SpikeResult(multiple=None, baseline=None, flag=False, current_usd=cur,
                           baseline_hours=0)
    baseline = float(statistics.median(history))
    if cur == 0:
        multiple = 0.0
    elif baseline > 0:
        multiple = cur / baseline
    else:
        multiple = math.inf
    flag = multiple >= factor and cur >= min_usd
    return SpikeResult(multiple=multiple, baseline=baseline, flag=flag, current_usd=cur,
                       baseline_hours=len(history))


# --------------------------------------------------------------------------------------------
# 3. concentration


@dataclass(frozen=True, slots=True)
class Concentration(_ToDict):
    """How concentrated a window's notional is across venues."""

    total_usd: float
    #: exchange -> usd / total (sums to 1 when total > 0; empty when total is 0)
    shares: dict[str, float]
    #: (exchange, share) by share descending, ties by name; every venue with usd > 0
    top: list[tuple[str, float]]
    #: share of the two largest venues (the only one's share with one venue); None when total 0
    top2_share: float | None
    #: Herfindahl-Hirschman index Σ share², in [1/n, 1]; None when total is 0
    hhi: float | None
    #: venues with usd > 0
    venues: int


def concentration(usd_by_exchange: Mapping[str, float]) -> Concentration:
    """Venue shares, top-2 share and HHI of ``{exchange: usd}`` (e.g. ``venue_usd(...)``).

    ``share_i = usd_i / Σ usd``; ``top2_share`` = sum of the two largest shares;
    ``hhi = Σ share_i²`` -- 1/n for n equal venues, 1 for a single venue. Venues with 0 USD (or
    an invalid amount, counted as 0) get no share. Total 0: empty shares, ``None`` top2/HHI.
    """
    amounts = {ex: _amount(v) for ex, v in usd_by_exchange.items()}
    positive = {ex: v for ex, v in amounts.items() if v > 0}
    total = sum(positive.values())
    if total <= 0:
        return Concentration(total_usd=0.0, shares={}, top=[], top2_share=None, hhi=None,
                             venues=0)
    shares = {ex: v / total for ex, v in positive.items()}
    top = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))
    hhi = sum(s * s for s in shares.values())
    return Concentration(total_usd=total, shares=shares, top=top,
                         top2_share=sum(s for _, s in top[:2]), hhi=hhi, venues=len(shares))


# --------------------------------------------------------------------------------------------
# 4. cascade


@dataclass(frozen=True, slots=True)
class CascadeEvent(_ToDict):
    """A cascade state change for one direction: ``kind`` is "start" or "end"."""

    kind: Literal["start", "end"]
    direction: Side
    #: the ``now`` of the update that produced the event
    ts: float
    started_at: float
    #: None for "start"
    ended_at: float | None
    #: venues that reached venue_min_usd at some update of the episode, sorted
    venues: tuple[str, ...]
    #: estimated USD liquidated in the episode so far (see CascadeDetector)
    size_usd: float
    #: largest window total seen in the episode
    peak_usd: float
    #: the window total at this update
    window_usd: float

    @property
    def duration_s(self) -> float:
        return self.ts - self.started_at


@dataclass(frozen=True, slots=True)
class CascadeState(_ToDict):
    """The current state of one direction (for periodic snapshots and gauges)."""

    direction: Side
    active: bool
    started_at: float | None
    venues: tuple[str, ...]
    size_usd: float
    peak_usd: float
    window_usd: float
    #: since when the episode has been below the sustain condition (None: sustained/inactive)
    quiet_since: float | None


@dataclass
class _Episode:
    active: bool = False
    started_at: float | None = None
    venues: set[str] = field(default_factory=set)
    size_usd: float = 0.0
    peak_usd: float = 0.0
    window_usd: float = 0.0
    quiet_since: float | None = None
    last_ts: float | None = None


class CascadeDetector:
    """Same-direction liquidations on several venues at once, with start/end events.

    One detector tracks BOTH directions independently: call ``update(now, per_venue_usd,
    direction)`` once per direction per tick, where ``per_venue_usd`` is ``{exchange: usd}`` of
    that direction over the last ``window_seconds`` (e.g. ``venue_usd(snap_by_ex["1m"], "long")``
    with ``window_seconds=60``). Let T = ``threshold_usd``, V = ``venue_min_usd`` (default
    ``0.1 × T``), r = ``end_ratio``, S = Σ per_venue_usd:

    * **start** (inactive): ``S >= T`` and at least ``min_venues`` venues have ``usd >= V``.
    * **sustained** (active): ``S >= r·T`` and at least ``min_venues`` venues have
      ``usd >= r·V``. Hysteresis: ending needs the weaker condition to fail.
    * **end**: not sustained at every update for ``hold_seconds`` (default ``window_seconds``),
      measured from the first update that was not sustained; a sustained update resets it.
    * **size_usd**: S at the start (the whole triggering window), then ``+ S × min(dt, W) / W``
      per update (dt = time since the previous update, W = ``window_seconds``): the trailing
      window's rate integrated over time. Exact when updates come every W seconds, an estimate
      in between; it never double counts overlapping windows.

    Events alternate start, end, start, ... per direction; at most one per update. A ``now``
    earlier than the previous update adds nothing to the size (dt clamps to 0).
    """

    def __init__(self, threshold_usd: float, window_seconds: float,
                 min_venues: int = CASCADE_MIN_VENUES, *, venue_min_usd: float | None = None,
                 end_ratio: float = CASCADE_END_RATIO,
                 hold_seconds: float | None = None) -> None:
        if not (math.isfinite(threshold_usd) and threshold_usd > 0):
            raise ValueError("threshold_usd must be > 0")
        if not (math.isfinite(window_seconds) and window_seconds > 0):
            raise ValueError("window_seconds must be > 0")
        if min_venues < 1:
            raise ValueError("min_venues must be >= 1")
        if not 0 < end_ratio <= 1:
            raise ValueError("end_ratio must be in (0, 1]")
        self.threshold_usd = float(threshold_usd)
        self.window_seconds = float(window_seconds)
        self.min_venues = int(min_venues)
        self.venue_min_usd = (CASCADE_VENUE_SHARE * self.threshold_usd if venue_min_usd is None
                              else float(venue_min_usd))
        if not (math.isfinite(self.venue_min_usd) and self.venue_min_usd >= 0):
            raise ValueError("venue_min_usd must be >= 0")
        self.end_ratio = float(end_ratio)
        self.hold_seconds = self.window_seconds if hold_seconds is None else float(hold_seconds)
        if not (math.isfinite(self.hold_seconds) and self.hold_seconds >= 0):
            raise ValueError("hold_seconds must be >= 0")
        self._ep: dict[str, _Episode] = {s: _Episode() for s in SIDES}

    @staticmethod
    def _check(direction: str) -> None:
        if direction not in SIDES:
            raise ValueError(f"direction must be long|short, got {direction!r}")

    def _event(self, kind: Literal["start", "end"], direction: Side, now: float,
               ep: _Episode) -> CascadeEvent:
        assert ep.started_at is not None
        return CascadeEvent(kind=kind, direction=direction, ts=now, started_at=ep.started_at,
                            ended_at=now if kind == "end" else None,
                            venues=tuple(sorted(ep.venues)), size_usd=ep.size_usd,
                            peak_usd=ep.peak_usd, window_usd=ep.window_usd)

    def update(self, now: float, per_venue_usd: Mapping[str, float],
               direction: Side) -> list[CascadeEvent]:
        """Feed one direction's per-venue USD over the last window; returns the state changes
        (empty, ``[start]`` or ``[end]``). Invalid amounts count as 0."""
        self._check(direction)
        ep = self._ep[direction]
        amounts = {ex: _amount(v) for ex, v in per_venue_usd.items()}
        total = sum(amounts.values())
        strong = {ex for ex, v in amounts.items() if v >= self.venue_min_usd and v > 0}
        if not ep.active:
            ep.last_ts = now if ep.last_ts is None else max(ep.last_ts, now)
            ep.window_usd = total
            if total >= self.threshold_usd and len(strong) >= self.min_venues:
                ep.active = True
                ep.started_at = now
                ep.venues = set(strong)
                ep.size_usd = total
                ep.peak_usd = total
                ep.quiet_since = None
                return [self._event("start", direction, now, ep)]
            return []
        last = ep.last_ts if ep.last_ts is not None else now
        dt = min(max(now - last, 0.0), self.window_seconds)
        ep.size_usd += total * dt / self.window_seconds
        ep.last_ts = max(last, now)
        ep.window_usd = total
        ep.peak_usd = max(ep.peak_usd, total)
        ep.venues |= strong
        weak_min = self.venue_min_usd * self.end_ratio
        alive = sum(1 for v in amounts.values() if v >= weak_min and v > 0)
        if total >= self.threshold_usd * self.end_ratio and alive >= self.min_venues:
            ep.quiet_since = None
            return []
        if ep.quiet_since is None:
            ep.quiet_since = now
        if now - ep.quiet_since >= self.hold_seconds:
            event = self._event("end", direction, now, ep)
            self._ep[direction] = _Episode(last_ts=ep.last_ts, window_usd=total)
            return [event]
        return []

    def active(self, direction: Side | None = None) -> bool:
        """Is a cascade on in ``direction`` (either direction when None)?"""
        if direction is None:
            return any(ep.active for ep in self._ep.values())
        self._check(direction)
        return self._ep[direction].active

    def size_usd(self, direction: Side) -> float:
        """Estimated USD of the active episode in ``direction`` (0 when inactive)."""
        self._check(direction)
        ep = self._ep[direction]
        return ep.size_usd if ep.active else 0.0

    def state(self, direction: Side) -> CascadeState:
        self._check(direction)
        ep = self._ep[direction]
        return CascadeState(direction=direction, active=ep.active, started_at=ep.started_at,
                            venues=tuple(sorted(ep.venues)),
                            size_usd=ep.size_usd if ep.active else 0.0,
                            peak_usd=ep.peak_usd if ep.active else 0.0,
                            window_usd=ep.window_usd, quiet_since=ep.quiet_since)

    def states(self) -> dict[str, CascadeState]:
        return {s: self.state(s) for s in SIDES}

    def restore(self, states: Mapping[str, Mapping[str, Any]], ts: float) -> None:
        """Continue from published states (``CascadeState.to_dict()`` per direction, as of
        ``ts``): a new aggregator takes over an episode instead of starting a second one."""
        for side in SIDES:
            st = states.get(side)
            if not st:
                continue
            active = bool(st.get("active"))
            self._ep[side] = _Episode(
                active=active, started_at=_finite(st.get("started_at")) if active else None,
                venues=set(st.get("venues") or ()) if active else set(),
                size_usd=_amount(st.get("size_usd")), peak_usd=_amount(st.get("peak_usd")),
                window_usd=_amount(st.get("window_usd")),
                quiet_since=_finite(st.get("quiet_since")), last_ts=ts)


# --------------------------------------------------------------------------------------------
# 5. staged vs capitulation


@dataclass(frozen=True, slots=True)
class Deleveraging(_ToDict):
    """How the last 24 h of liquidations are spread over the hours."""

    #: separated spike episodes: maximal runs of consecutive spike hours
    distinct_spike_hours: int
    #: largest hour / total; None when the total is 0
    largest_hour_share: float | None
    label: Label
    #: hours above the spike threshold (runs not merged)
    spike_hours: int = 0
    total_usd: float = 0.0
    median_usd: float = 0.0
    #: position of the largest hour in the (last ``hours``) input, 0 = oldest; None when total 0
    largest_hour_index: int | None = None


def _runs(mask: Sequence[bool]) -> int:
    return sum(1 for i, m in enumerate(mask) if m and (i == 0 or not mask[i - 1]))


def classify_deleveraging(hourly_totals_24h: Sequence[float | None],
                          spike_factor: float = DELEVERAGING_SPIKE_FACTOR,
                          dominance_share: float = DELEVERAGING_DOMINANCE_SHARE,
                          min_stages: int = DELEVERAGING_MIN_STAGES, *,
                          min_hour_usd: float = 0.0, min_total_usd: float = 0.0,
                          hours: int = DELEVERAGING_HOURS) -> Deleveraging:
    """Staged deleveraging vs a single capitulation over the last ``hours`` hourly totals.

    Oldest first; only the last ``hours`` are used; invalid hours count as 0 (they keep their
    position, so runs stay honest). With m = median of the hours, total = Σ:

    * spike hour: ``v > spike_factor × m`` and ``v > 0`` and ``v >= min_hour_usd``;
    * ``distinct_spike_hours``: number of maximal runs of consecutive spike hours;
    * ``largest_hour_share = max / total``.

    label: ``calm`` when total is 0, below ``min_total_usd`` or there are no spike hours;
    else ``capitulation`` when ``largest_hour_share > dominance_share``; else ``staged`` when
    ``distinct_spike_hours >= min_stages``; else ``calm``.
    """
    if hours < 1:
        raise ValueError("hours must be >= 1")
    vals = [_amount(v) for v in list(hourly_totals_24h)[-hours:]]
    total = sum(vals)
    if not vals or total <= 0:
        return Deleveraging(distinct_spike_hours=0, largest_hour_share=None, label="calm",
                            spike_hours=0, total_usd=0.0, median_usd=0.0)
    med = float(statistics.median(vals))
    cut = spike_factor * med
    mask = [v > cut and v > 0 and v >= min_hour_usd for v in vals]
    largest = max(vals)
    idx = vals.index(largest)
    share = largest / total
    episodes = _runs(mask)
    label: Label
    if total < min_total_usd or not any(mask):
        label = "calm"
    elif share > dominance_share:
        label = "capitulation"
    elif episodes >= min_stages:
        label = "staged"
    else:
        label = "calm"
    return Deleveraging(distinct_spike_hours=episodes, largest_hour_share=share, label=label,
                        spike_hours=sum(mask), total_usd=total, median_usd=med,
                        largest_hour_index=idx)


# --------------------------------------------------------------------------------------------
# 6. price clusters near local lows/highs


@dataclass(frozen=True, slots=True)
class PriceLevel(_ToDict):
    """Liquidated notional in one price bucket ``[low, high)``."""

    #: bucket midpoint (low + high) / 2
    price: float
    low: float
    high: float
    long_usd: float
    short_usd: float

    @property
    def total_usd(self) -> float:
        return self.long_usd + self.short_usd

    def to_dict(self) -> dict[str, Any]:
        d = _ToDict.to_dict(self)
        d["total_usd"] = _jsonable(self.total_usd)
        return d


Liquidation = tuple[float, str, float | None]  # (price, side, usd)


def _valid_liqs(liquidations: Iterable[Sequence[Any]]) -> Iterable[tuple[float, str, float]]:
    for item in liquidations:
        price, side, usd = item[0], item[1], item[2]
        p, u = _finite_nonneg(price), _finite_nonneg(usd)
        if p is None or p <= 0 or u is None or side not in SIDES:
            continue
        yield p, side, u


def bucket_index(price: float, bucket_pct: float = CLUSTER_BUCKET_PCT) -> int:
    """``k`` of the geometric bucket ``[g^k, g^(k+1))`` holding ``price``, with
    ``g = 1 + bucket_pct/100`` and ``k = floor(ln price / ln g)`` (see ``bucket_bounds``)."""
    if not bucket_pct > 0:
        raise ValueError("bucket_pct must be > 0")
    g = 1.0 + bucket_pct / 100.0
    k = math.floor(math.log(price) / math.log(g))
    # float rounding at a boundary: keep g^k <= price < g^(k+1)
    if price < g ** k:
        k -= 1
    elif price >= g ** (k + 1):
        k += 1
    return k


def bucket_bounds(price: float, bucket_pct: float = CLUSTER_BUCKET_PCT) -> tuple[float, float]:
    """The geometric bucket holding ``price``: ``[g^k, g^(k+1))`` with ``g = 1 + bucket_pct/100``
    and ``k = bucket_index(price)``. Each bucket is ``bucket_pct`` % wide and a price always
    lands in the same bucket, whatever else is in the data (stable levels across snapshots)."""
    k = bucket_index(price, bucket_pct)
    g = 1.0 + bucket_pct / 100.0
    return g ** k, g ** (k + 1)


def price_clusters(liquidations: Iterable[Sequence[Any]],
                   bucket_pct: float = CLUSTER_BUCKET_PCT) -> list[PriceLevel]:
    """Notional by price bucket for one coin: ``[(price, side, usd), ...]`` -> levels by price
    ascending, each with long and short USD. Buckets as in ``bucket_bounds``. Items with an
    invalid price (<= 0, NaN), side or usd (None = unpriced, negative, NaN) are skipped."""
    acc: dict[tuple[float, float], list[float]] = {}
    for p, side, u in _valid_liqs(liquidations):
        key = bucket_bounds(p, bucket_pct)
        cell = acc.setdefault(key, [0.0, 0.0])
        cell[0 if side == "long" else 1] += u
    return [PriceLevel(price=(lo + hi) / 2, low=lo, high=hi, long_usd=lu, short_usd=su)
            for (lo, hi), (lu, su) in sorted(acc.items())]


def top_levels(levels: Iterable[PriceLevel], n: int = TOP_LEVELS,
               by: Literal["total", "long", "short"] = "total") -> list[PriceLevel]:
    """The ``n`` levels with the most USD (``by`` total, long or short), largest first, ties by
    price ascending; levels with 0 USD on that measure are left out."""
    key = {"total": lambda lv: lv.total_usd, "long": lambda lv: lv.long_usd,
           "short": lambda lv: lv.short_usd}[by]
    ranked = sorted((lv for lv in levels if key(lv) > 0), key=lambda lv: (-key(lv), lv.price))
    return ranked[:max(0, n)]


class NearExtreme(NamedTuple):
    """``(long_share_near_low, short_share_near_high)``; each None when undefined."""

    long_share_near_low: float | None
    short_share_near_high: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"long_share_near_low": _jsonable(self.long_share_near_low),
                "short_share_near_high": _jsonable(self.short_share_near_high)}


def near_extreme_share(liquidations: Iterable[Sequence[Any]], local_low: float | None,
                       local_high: float | None,
                       within_pct: float = NEAR_EXTREME_PCT) -> NearExtreme:
    """Share of long USD liquidated at ``price <= local_low × (1 + within_pct/100)`` and of
    short USD at ``price >= local_high × (1 - within_pct/100)``, for one coin.

    ``local_low``/``local_high`` are the rolling extremes of the coin's price over the same
    period (from the prices topic). Prices beyond the extreme count as near it. A share is None
    when there is no USD on that side or its extreme is missing/invalid. Invalid items skipped.
    """
    low, high = _finite_nonneg(local_low), _finite_nonneg(local_high)
    low_cut = low * (1 + within_pct / 100.0) if low else None
    high_cut = high * (1 - within_pct / 100.0) if high else None
    long_all = short_all = long_near = short_near = 0.0
    for p, side, u in _valid_liqs(liquidations):
        if side == "long":
            long_all += u
            if low_cut is not None and p <= low_cut:
                long_near += u
        else:
            short_all += u
            if high_cut is not None and p >= high_cut:
                short_near += u
    return NearExtreme(
        long_share_near_low=long_near / long_all if low_cut is not None and long_all > 0 else None,
        short_share_near_high=(short_near / short_all
                               if high_cut is not None and short_all > 0 else None))


def range_pct(high: float, low: float) -> float | None:
    """An hour's price range in percent of its low: ``(high - low) / low × 100`` (the unit of
    ``divergence``'s range series). None for an invalid low/high."""
    h, lo = _finite_nonneg(high), _finite_nonneg(low)
    if h is None or lo is None or lo <= 0 or h < lo:
        return None
    return (h - lo) / lo * 100.0


# --------------------------------------------------------------------------------------------
# 7. divergence


@dataclass(frozen=True, slots=True)
class Divergence(_ToDict):
    """Trend of hourly liquidations against the trend of the hourly price range (one coin)."""

    #: least-squares slope / mean, per hour; None when undefined
    liq_slope: float | None
    range_slope: float | None
    #: liq_slope >= liq_slope_min and range_slope <= -range_slope_min, with >= min_points
    flag: bool
    points: int = 0


def normalised_slope(ys: Sequence[float | None]) -> float | None:
    """Least-squares slope of ``ys`` against the hour index 0..n-1 divided by the mean of the
    valid points: the fractional change per hour, unit-free. Invalid points (None, NaN, inf,
    negative) are dropped, keeping the others' hour index. None with fewer than 2 valid points
    or a mean of 0."""
    pts = [(float(i), v) for i, v in enumerate(_finite_nonneg(y) for y in ys) if v is not None]
    if len(pts) < 2:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    if my <= 0:
        return None
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    return sxy / sxx / my


def divergence(hourly_liq_usd: Sequence[float | None], hourly_range_pct: Sequence[float | None],
               liq_slope_min: float = DIVERGENCE_LIQ_SLOPE_MIN,
               range_slope_min: float = DIVERGENCE_RANGE_SLOPE_MIN,
               min_points: int = DIVERGENCE_MIN_POINTS) -> Divergence:
    """Liquidations rising while the price range shrinks.

    Both series are aligned on their most recent ``n = min(len)`` hours; an hour invalid in
    either series is dropped from both. ``liq_slope``/``range_slope`` = ``normalised_slope`` of
    each (slope / mean, per hour). ``flag = points >= min_points and liq_slope >= liq_slope_min
    and range_slope <= -range_slope_min``.
    """
    n = min(len(hourly_liq_usd), len(hourly_range_pct))
    a = list(hourly_liq_usd)[len(hourly_liq_usd) - n:]
    b = list(hourly_range_pct)[len(hourly_range_pct) - n:]
    liq: list[float | None] = []
    rng: list[float | None] = []
    for x, y in zip(a, b, strict=True):
        fx, fy = _finite_nonneg(x), _finite_nonneg(y)
        ok = fx is not None and fy is not None
        liq.append(fx if ok else None)
        rng.append(fy if ok else None)
    points = sum(1 for v in liq if v is not None)
    ls, rs = normalised_slope(liq), normalised_slope(rng)
    flag = (points >= min_points and ls is not None and rs is not None
            and ls >= liq_slope_min and rs <= -range_slope_min)
    return Divergence(liq_slope=ls, range_slope=rs, flag=flag, points=points)


# --------------------------------------------------------------------------------------------
# 8. breadth


@dataclass(frozen=True, slots=True)
class Breadth(_ToDict):
    """Share of tracked coins whose price is down over 1 h and over 24 h."""

    #: down_1h / coins_1h; None when no coin has a valid 1 h reference
    down_1h_share: float | None
    down_24h_share: float | None
    #: coins with a valid current price
    coins: int
    down_1h: int = 0
    down_24h: int = 0
    coins_1h: int = 0
    coins_24h: int = 0


def breadth(prices: Mapping[str, Sequence[float | None]],
            min_move_pct: float = 0.0) -> Breadth:
    """``{coin: (price_now, price_1h_ago, price_24h_ago)}`` -> share of coins down.

    A coin is down over a horizon when ``(now / ago - 1) × 100 < -min_move_pct`` (default:
    strictly lower). A coin counts for a horizon only when both prices are valid (> 0, finite);
    ``share = down / counted``, None when nothing counted.
    """
    coins = down1 = down24 = n1 = n24 = 0
    for triple in prices.values():
        now = _finite_nonneg(triple[0]) if len(triple) > 0 else None
        if not now:
            continue
        coins += 1
        for j in (1, 2):
            ago = _finite_nonneg(triple[j]) if len(triple) > j else None
            if not ago:
                continue
            down = (now / ago - 1.0) * 100.0 < -min_move_pct
            if j == 1:
                n1 += 1
                down1 += down
            else:
                n24 += 1
                down24 += down
    return Breadth(down_1h_share=down1 / n1 if n1 else None,
                   down_24h_share=down24 / n24 if n24 else None, coins=coins,
                   down_1h=down1, down_24h=down24, coins_1h=n1, coins_24h=n24)


# --------------------------------------------------------------------------------------------
# 9. composite stress index

#: component -> weight (normalised over the components present; need not sum to 1)
DEFAULT_WEIGHTS: dict[str, float] = {
    "skew": 0.20,
    "spike": 0.20,
    "size": 0.10,
    "concentration": 0.05,
    "cascade": 0.15,
    "deleveraging": 0.10,
    "clusters": 0.05,
    "divergence": 0.05,
    "breadth_1h": 0.05,
    "breadth_24h": 0.05,
}

#: component -> (lo, hi) of its ramp (continuous components only)
DEFAULT_RAMPS: dict[str, tuple[float, float]] = {
    "skew": (0.2, 0.9),  # |long_share - 0.5| × 2
    "spike": (1.0, 6.0),  # spike multiple
    "size": (10_000_000.0, 200_000_000.0),  # USD liquidated in the window (both sides)
    "concentration": (0.2, 0.6),  # HHI
    "clusters": (0.2, 0.7),  # max(long share near low, short share near high)
    "breadth_1h": (0.5, 1.0),  # share of coins down over 1 h
    "breadth_24h": (0.5, 1.0),  # share of coins down over 24 h
}

DEFAULT_LEVELS: tuple[tuple[float, str], ...] = ((75.0, "extreme"), (50.0, "high"),
                                                 (25.0, "elevated"), (0.0, "low"))

COMPONENTS: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)
_BINARY = ("cascade", "divergence")


@dataclass(frozen=True)
class StressConfig:
    """Weights and thresholds of the composite stress index (see docs/signals.md).

    Change with ``dataclasses.replace(DEFAULT_CONFIG, weights={...})``; a partial ``weights`` or
    ``ramps`` mapping is merged over the defaults. A weight of 0 turns a component off.
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    ramps: Mapping[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_RAMPS))
    #: deleveraging component value of each label
    staged_score: float = 0.5
    capitulation_score: float = 1.0
    #: (min value, level name), highest first; the first with value >= min wins
    levels: tuple[tuple[float, str], ...] = DEFAULT_LEVELS

    def __post_init__(self) -> None:
        unknown = (set(self.weights) | set(self.ramps)) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"unknown stress components: {sorted(unknown)}")
        bad_ramp = set(self.ramps) & set(_BINARY + ("deleveraging",))
        if bad_ramp:
            raise ValueError(f"components without a ramp: {sorted(bad_ramp)}")
        weights = {**DEFAULT_WEIGHTS, **self.weights}
        ramps = {**DEFAULT_RAMPS, **self.ramps}
        for name, w in weights.items():
            if not (math.isfinite(w) and w >= 0):
                raise ValueError(f"weight of {name} must be finite and >= 0, got {w}")
        if sum(weights.values()) <= 0:
            raise ValueError("at least one weight must be > 0")
        for name, (lo, hi) in ramps.items():
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"ramp of {name} needs finite lo < hi, got {(lo, hi)}")
        for name, s in (("staged_score", self.staged_score),
                        ("capitulation_score", self.capitulation_score)):
            if not 0 <= s <= 1:
                raise ValueError(f"{name} must be in [0, 1]")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "ramps", ramps)

    def to_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights),
                "ramps": {k: list(v) for k, v in self.ramps.items()},
                "staged_score": self.staged_score,
                "capitulation_score": self.capitulation_score,
                "levels": [list(lv) for lv in self.levels]}


DEFAULT_CONFIG = StressConfig()


@dataclass(frozen=True, slots=True)
class StressInputs(_ToDict):
    """Market-wide inputs of the index; None = not available (excluded, weights renormalised).

    Per-coin signals (clusters, divergence) are reduced by the caller, e.g. the max over tracked
    coins or BTC's value.
    """

    #: long share of the window's notional (imbalance.long_share)
    long_share: float | None = None
    #: SpikeResult.multiple (inf allowed)
    spike_multiple: float | None = None
    #: USD liquidated in the window, both sides
    liquidations_usd: float | None = None
    #: Concentration.hhi
    hhi: float | None = None
    #: any cascade active (CascadeDetector.active())
    cascade_active: bool | None = None
    #: Deleveraging.label
    deleveraging: Label | None = None
    #: NearExtreme.long_share_near_low / short_share_near_high
    near_low_share: float | None = None
    near_high_share: float | None = None
    #: Divergence.flag
    divergence: bool | None = None
    #: Breadth.down_1h_share / down_24h_share
    breadth_down_1h: float | None = None
    breadth_down_24h: float | None = None

    @classmethod
    def from_signals(cls, *, imbalance: Imbalance | None = None, spike: SpikeResult | None = None,
                     concentration: Concentration | None = None,
                     cascade_active: bool | None = None,
                     deleveraging: Deleveraging | None = None,
                     near_extreme: NearExtreme | None = None,
                     divergence: Divergence | None = None,
                     breadth: Breadth | None = None) -> StressInputs:
        """Inputs from the signal results (any may be None). ``liquidations_usd`` is
        ``imbalance.total_usd`` (None when there is no imbalance result)."""
        return cls(
            long_share=imbalance.long_share if imbalance else None,
            spike_multiple=spike.multiple if spike else None,
            liquidations_usd=imbalance.total_usd if imbalance else None,
            hhi=concentration.hhi if concentration else None,
            cascade_active=cascade_active,
            deleveraging=deleveraging.label if deleveraging else None,
            near_low_share=near_extreme.long_share_near_low if near_extreme else None,
            near_high_share=near_extreme.short_share_near_high if near_extreme else None,
            divergence=divergence.flag if divergence else None,
            breadth_down_1h=breadth.down_1h_share if breadth else None,
            breadth_down_24h=breadth.down_24h_share if breadth else None,
        )


@dataclass(frozen=True, slots=True)
class StressIndex(_ToDict):
    """The composite stress index."""

    #: 100 × Σ w_i c_i / Σ w_i over present components, in [0, 100]; 0 when none is present
    value: float
    #: component -> value in [0, 1], None when its input is missing
    components: dict[str, float | None]
    #: component -> points it adds to ``value`` (w_i c_i / Σ w × 100), None when missing
    contributions: dict[str, float | None] = field(default_factory=dict)
    #: Σ weights present / Σ all weights, in [0, 1]
    coverage: float = 0.0
    level: str = "low"


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool) or not isinstance(x, int | float) or math.isnan(x):
        return None
    return float(x)


def _flag(x: Any) -> float | None:
    return None if x is None else (1.0 if x else 0.0)


def stress_components(inputs: StressInputs,
                      cfg: StressConfig = DEFAULT_CONFIG) -> dict[str, float | None]:
    """Each component in [0, 1] (None when missing); formulas in docs/signals.md."""
    r = cfg.ramps
    ls = _num(inputs.long_share)
    skew = None if ls is None else abs(min(1.0, max(0.0, ls)) - 0.5) * 2
    near = [v for v in (_num(inputs.near_low_share), _num(inputs.near_high_share))
            if v is not None]
    if inputs.deleveraging is None:
        delev = None
    elif inputs.deleveraging == "capitulation":
        delev = cfg.capitulation_score
    elif inputs.deleveraging == "staged":
        delev = cfg.staged_score
    elif inputs.deleveraging == "calm":
        delev = 0.0
    else:
        raise ValueError(f"unknown deleveraging label {inputs.deleveraging!r}")
    return {
        "skew": ramp(skew, *r["skew"]),
        "spike": ramp(_num(inputs.spike_multiple), *r["spike"]),
        "size": ramp(_num(inputs.liquidations_usd), *r["size"]),
        "concentration": ramp(_num(inputs.hhi), *r["concentration"]),
        "cascade": _flag(inputs.cascade_active),
        "deleveraging": delev,
        "clusters": ramp(max(near), *r["clusters"]) if near else None,
        "divergence": _flag(inputs.divergence),
        "breadth_1h": ramp(_num(inputs.breadth_down_1h), *r["breadth_1h"]),
        "breadth_24h": ramp(_num(inputs.breadth_down_24h), *r["breadth_24h"]),
    }


def stress_level(value: float, cfg: StressConfig = DEFAULT_CONFIG) -> str:
    for lo, name in cfg.levels:
        if value >= lo:
            return name
    return cfg.levels[-1][1] if cfg.levels else "low"


def stress_index(inputs: StressInputs, cfg: StressConfig = DEFAULT_CONFIG) -> StressIndex:
    """``value = 100 × Σ_i w_i c_i / Σ_i w_i`` over the components ``c_i`` that are present
    (input not None) with ``w_i > 0``; clamped to [0, 100]; 0 with coverage 0 when none is."""
    comps = stress_components(inputs, cfg)
    w_all = sum(cfg.weights.values())
    present = {k: c for k, c in comps.items() if c is not None and cfg.weights[k] > 0}
    w_sum = sum(cfg.weights[k] for k in present)
    contributions: dict[str, float | None] = {k: None for k in comps}
    if w_sum <= 0:
        return StressIndex(value=0.0, components=comps, contributions=contributions,
                           coverage=0.0, level=stress_level(0.0, cfg))
    for k, c in present.items():
        contributions[k] = 100.0 * cfg.weights[k] * c / w_sum
    for k, c in comps.items():
        if c is not None and cfg.weights[k] == 0:
            contributions[k] = 0.0
    value = min(100.0, max(0.0, 100.0 * sum(cfg.weights[k] * c for k, c in present.items())
                           / w_sum))
    return StressIndex(value=value, components=comps, contributions=contributions,
                       coverage=min(1.0, w_sum / w_all), level=stress_level(value, cfg))
