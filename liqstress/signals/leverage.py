"""Leverage itself (docs/signals.md section 10): open interest and funding. OI change over
1h/4h/24h, leverage build-up (OI up while the price range stays flat), deleveraging read from
hourly OI (staged vs capitulation), liquidation intensity (liquidated USD / OI) and crowding
(OI-weighted funding with OI growing), per coin and market-wide, plus their stress-index
components.

Pure: the open-interest state is read through :class:`OIHistoryView`, the methods of
``liqstress.oi_history.OIHistory`` this module uses (a structural type, so this package keeps
importing the standard library only). Ratios are fractions (0.05 = 5 %); price ranges are in
percent (``range_pct``), funding is a fraction per 8 hours (0.0001 = 0.01 %).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .common import ToDict, amount, finite, finite_nonneg
from .index import ramp

__all__ = [
    "BUILDUP_FLAG", "BUILDUP_OI_RAMP", "BUILDUP_RANGE_RAMP_PCT", "Buildup", "CROWDING_FUNDING_8H",
    "CROWDING_LABELS", "CROWDING_MIN_OI_GROWTH", "CROWDING_RAMP", "CoinLeverage", "Crowding",
    "CrowdingLabel", "DEFAULT_LEVERAGE_CONFIG", "INTENSITY_RAMP", "INTENSITY_WINDOW", "Intensity",
    "LEVERAGE_COMPONENTS", "LEVERAGE_WINDOWS", "LeverageConfig", "LeverageSignals",
    "OIChange", "OIDeleveraging", "OIDeleveragingLabel", "OIHistoryView",
    "OI_DELEVERAGING_DOMINANCE_SHARE", "OI_DELEVERAGING_DROP", "OI_DELEVERAGING_HOURS",
    "OI_DELEVERAGING_LABELS", "OI_DELEVERAGING_MIN_CHANGES", "OI_DELEVERAGING_MIN_DECLINE",
    "OI_DELEVERAGING_MIN_STAGES", "OI_DELEVERAGING_SCORES", "classify_oi_deleveraging",
    "crowding", "index_components", "leverage_buildup", "leverage_signals",
    "liquidation_intensity", "oi_change", "weighted_range_pct",
]

#: Windows of the OI change and the liquidation intensity: name -> seconds (names as in
#: ``liqstress.windows.WINDOWS``).
LEVERAGE_WINDOWS: dict[str, float] = {"1h": 3600.0, "4h": 14400.0, "24h": 86400.0}

#: Build-up: ramp of the 24 h OI change ratio (fractions) ...
BUILDUP_OI_RAMP = (0.05, 0.20)
#: ... times (1 - ramp of the 24 h price range in percent)
#: (a 24 h range of a crypto perp under 5 % is a quiet day; 15 % is a trending or crashing one)
BUILDUP_RANGE_RAMP_PCT = (5.0, 15.0)
#: Build-up score that flags.
BUILDUP_FLAG = 0.5

#: OI deleveraging: hourly changes read, a drop hour falls by at least this fraction, ...
OI_DELEVERAGING_HOURS = 24
OI_DELEVERAGING_DROP = 0.02
#: ... the largest peak-to-trough fall must reach this fraction, ...
OI_DELEVERAGING_MIN_DECLINE = 0.05
#: ... one stage holding at least this share of it is a capitulation, ...
OI_DELEVERAGING_DOMINANCE_SHARE = 2.0 / 3.0
#: ... at least this many separate stages is staged.
OI_DELEVERAGING_MIN_STAGES = 2
#: Fewer valid hourly changes than this: a ``none`` label is "not known" for the index.
OI_DELEVERAGING_MIN_CHANGES = 6

#: Crowding: |8 h funding| at or above this (0.03 % per 8 h) with OI growing over 24 h.
CROWDING_FUNDING_8H = 0.0003
#: "OI growing": the 24 h change ratio must be above this.
CROWDING_MIN_OI_GROWTH = 0.0

#: Index ramps: |8 h funding| (0.01 % is the usual neutral rate; 0.05 % is hot) ...
CROWDING_RAMP = (0.0001, 0.0005)
#: ... and liquidated USD over OI in ``INTENSITY_WINDOW`` (0.05 % .. 1 % of OI in an hour).
INTENSITY_RAMP = (0.0005, 0.01)
INTENSITY_WINDOW = "1h"

OIDeleveragingLabel = Literal["none", "staged", "capitulation"]
OI_DELEVERAGING_LABELS: tuple[OIDeleveragingLabel, ...] = ("none", "staged", "capitulation")
#: Index component value of each OI deleveraging label (as ``StressConfig``'s label scores).
OI_DELEVERAGING_SCORES: dict[str, float] = {"none": 0.0, "staged": 0.5, "capitulation": 1.0}

CrowdingLabel = Literal["none", "long_crowded", "short_crowded"]
CROWDING_LABELS: tuple[CrowdingLabel, ...] = ("none", "long_crowded", "short_crowded")

#: Keys of ``index_components``.
LEVERAGE_COMPONENTS = ("buildup", "crowding", "oi_deleveraging", "intensity")


class OIHistoryView(Protocol):
    """What the leverage signals read from ``liqstress.oi_history.OIHistory``."""

    def oi_usd(self, coin: str | None = None, exchange: str | None = None,
               at: float | None = None) -> float | None: ...

    def paired(self, coin: str | None = None, *, then: float, now: float,
               exchange: str | None = None) -> tuple[float, float, int]: ...

    def hourly(self, coin: str | None = None, *, now: float, hours: int = 24,
               linked: bool = False) -> list[float | None]: ...

    def funding_8h(self, coin: str | None = None, *, now: float) -> float | None: ...

    def coverage(self, coin: str | None = None, *, now: float) -> dict[str, float]: ...


# -- OI change ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OIChange(ToDict):
    """OI USD now against ``seconds`` ago, over the instruments present at both times."""

    window: str
    seconds: float
    usd_now: float | None
    usd_then: float | None
    #: usd_now - usd_then
    change_usd: float | None
    #: change_usd / usd_then; None when usd_then is missing or 0
    change_ratio: float | None
    #: instruments compared
    instruments: int = 0


def oi_change(usd_then: float | None, usd_now: float | None, *, window: str = "",
              seconds: float = 0.0, instruments: int = 0) -> OIChange:
    """``change_usd = now - then``, ``change_ratio = change_usd / then``. An invalid or
    missing figure makes both None; ``then = 0`` makes the ratio None."""
    a, b = finite_nonneg(usd_then), finite_nonneg(usd_now)
    if a is None or b is None:
        return OIChange(window, seconds, b, a, None, None, instruments)
    return OIChange(window, seconds, b, a, b - a, (b - a) / a if a > 0 else None, instruments)


# -- build-up -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Buildup(ToDict):
    """Leverage building up: OI rising while the price range stays flat."""

    #: ramp(oi_change, oi ramp) × (1 − ramp(range, range ramp)) in [0, 1]; None when an input is
    score: float | None
    #: score >= flag_at
    flag: bool
    oi_change_ratio: float | None
    price_range_pct: float | None


def leverage_buildup(oi_change_ratio: float | None, price_range_pct: float | None, *,
                     oi_ramp: tuple[float, float] = BUILDUP_OI_RAMP,
                     range_ramp: tuple[float, float] = BUILDUP_RANGE_RAMP_PCT,
                     flag_at: float = BUILDUP_FLAG) -> Buildup:
    """``score = ramp(oi_change_ratio, 0.05, 0.20) × (1 − ramp(price_range_pct, 5, 15))``.

    OI up 20 % or more in a flat market (range ≤ 3 %) scores 1; OI up 5 % or less, or a range
    of 10 % or more, scores 0. An OI change of ``-inf``..``+inf`` is allowed (ramp saturates);
    NaN or None in either input gives ``score = None``, ``flag = False``; a negative or
    non-finite range is invalid (None)."""
    oi = None if oi_change_ratio is None or isinstance(oi_change_ratio, bool) \
        or not isinstance(oi_change_ratio, int | float) or math.isnan(oi_change_ratio) \
        else float(oi_change_ratio)
    rng = finite_nonneg(price_range_pct)
    a = ramp(oi, *oi_ramp)
    b = ramp(rng, *range_ramp)
    score = None if a is None or b is None else a * (1.0 - b)
    return Buildup(score=score, flag=score is not None and score >= flag_at,
                   oi_change_ratio=oi, price_range_pct=rng)


def weighted_range_pct(ranges: Mapping[str, float | None],
                       weights: Mapping[str, float | None]) -> float | None:
    """OI-weighted price range: ``Σ_c w_c × range_c / Σ_c w_c`` over the coins with a valid
    range and a weight > 0 (w = the coin's OI USD). None when no coin has both."""
    num = den = 0.0
    for coin, r in ranges.items():
        rv, w = finite_nonneg(r), finite_nonneg(weights.get(coin))
        if rv is None or not w:
            continue
        num += w * rv
        den += w
    return num / den if den > 0 else None


# -- deleveraging read from OI --------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OIDeleveraging(ToDict):
    """How OI fell over the last hours: several separate drops or one dominant one."""

    label: OIDeleveragingLabel
    #: separate stages: maximal runs of consecutive drop hours
    stages: int
    #: largest stage's fall / largest peak-to-trough fall, in [0, 1]; None without a decline
    largest_stage_share: float | None
    #: largest peak-to-trough fall as a fraction of the peak, in [0, 1]
    total_decline: float
    #: hours whose change is <= -drop
    drop_hours: int = 0
    #: valid hourly changes read (both neighbours present and > 0)
    changes: int = 0
    #: fall of the largest stage (fraction of the OI before it)
    largest_stage_decline: float = 0.0
    #: position of the largest stage's last hour among the changes (0 = oldest); None if none
    largest_stage_index: int | None = None


def classify_oi_deleveraging(hourly_oi_usd: Sequence[float | None],
                             drop: float = OI_DELEVERAGING_DROP,
                             min_decline: float = OI_DELEVERAGING_MIN_DECLINE,
                             dominance_share: float = OI_DELEVERAGING_DOMINANCE_SHARE,
                             min_stages: int = OI_DELEVERAGING_MIN_STAGES, *,
                             hours: int = OI_DELEVERAGING_HOURS) -> OIDeleveraging:
    """Staged vs capitulation read from hourly OI levels (the mirror of
    ``classify_deleveraging``, which reads hourly liquidations).

    Input: OI USD at the end of each hour, oldest first; the last ``hours + 1`` levels give
    ``hours`` changes ``r_k = L_k / L_{k-1} − 1`` (undefined when either level is missing,
    invalid or 0: that hour is no drop and ends a run). With those:

    * drop hour: ``r_k <= −drop``; a stage is a maximal run of consecutive drop hours, its
      decline ``1 − Π (1 + r_k)`` over the run;
    * ``total_decline``: the largest peak-to-trough fall of the valid levels,
      ``max_{i<j} (L_i − L_j) / L_i`` (a stage's decline never exceeds it);
    * ``largest_stage_share = largest stage decline / total_decline``.

    label: ``none`` when ``total_decline < min_decline`` or there is no stage; else
    ``capitulation`` when ``largest_stage_share >= dominance_share``; else ``staged`` when
    ``stages >= min_stages``; else ``none`` (a slow bleed without one clear drop).
    """
    if hours < 1:
        raise ValueError("hours must be >= 1")
    levels = [finite_nonneg(v) for v in list(hourly_oi_usd)[-(hours + 1):]]
    changes: list[float | None] = []
    for prev, cur in zip(levels, levels[1:], strict=False):
        changes.append(cur / prev - 1.0 if prev and cur is not None and cur > 0 else None)
    mask = [r is not None and r <= -drop for r in changes]
    stage_declines: list[tuple[float, int]] = []
    run = 1.0
    for k, r in enumerate(changes):
        if mask[k]:
            assert r is not None
            run *= 1.0 + r
            if k + 1 == len(changes) or not mask[k + 1]:
                stage_declines.append((1.0 - run, k))
                run = 1.0
    peak = 0.0
    total = 0.0
    for v in levels:
        if v is None or v <= 0:
            continue
        peak = max(peak, v)
        total = max(total, (peak - v) / peak)
    largest, idx = max(stage_declines, default=(0.0, None))
    share = min(1.0, largest / total) if total > 0 else None
    label: OIDeleveragingLabel
    if total < min_decline or not stage_declines or share is None:
        label = "none"
    elif share >= dominance_share:
        label = "capitulation"
    elif len(stage_declines) >= min_stages:
        label = "staged"
    else:
        label = "none"
    return OIDeleveraging(label=label, stages=len(stage_declines), largest_stage_share=share,
                          total_decline=total, drop_hours=sum(mask),
                          changes=sum(1 for r in changes if r is not None),
                          largest_stage_decline=largest, largest_stage_index=idx)


# -- liquidation intensity ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Intensity(ToDict):
    """Liquidated USD in a window over the OI USD at the window's start."""

    window: str
    seconds: float
    liquidated_usd: float
    #: OI USD at the window's start; None when unknown
    oi_usd_start: float | None
    #: liquidated_usd / oi_usd_start; None without OI (or OI 0)
    ratio: float | None


def liquidation_intensity(liquidated_usd: float | None, oi_usd_start: float | None, *,
                          window: str = "", seconds: float = 0.0) -> Intensity:
    """``ratio = liquidated_usd / oi_usd_start``: the fraction of the open positions forced
    out. An invalid liquidated amount counts as 0; missing, invalid or zero OI gives None."""
    liq = amount(liquidated_usd)
    oi = finite_nonneg(oi_usd_start)
    return Intensity(window, seconds, liq, oi, liq / oi if oi else None)


# -- crowding -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Crowding(ToDict):
    """One side paying to hold its positions while positions grow."""

    #: OI-weighted 8 h funding (fraction); None when no instrument has funding
    funding_8h: float | None
    oi_change_ratio: float | None
    label: CrowdingLabel


def crowding(funding_8h: float | None, oi_change_ratio: float | None,
             threshold: float = CROWDING_FUNDING_8H,
             min_oi_growth: float = CROWDING_MIN_OI_GROWTH) -> Crowding:
    """``long_crowded`` when ``funding_8h >= threshold`` and ``oi_change_ratio >
    min_oi_growth`` (longs pay more and more of them); ``short_crowded`` when ``funding_8h <=
    −threshold`` with the same OI growth; else ``none`` (also when either input is missing)."""
    f, g = finite(funding_8h), finite(oi_change_ratio)
    label: CrowdingLabel = "none"
    if f is not None and g is not None and g > min_oi_growth:
        if f >= threshold:
            label = "long_crowded"
        elif f <= -threshold:
            label = "short_crowded"
    return Crowding(funding_8h=f, oi_change_ratio=g, label=label)


# -- composed -------------------------------------------------------------------------------

@dataclass(frozen=True)
class LeverageConfig:
    """Thresholds of the leverage signals (defaults: the module constants)."""

    windows: Mapping[str, float] = field(default_factory=lambda: dict(LEVERAGE_WINDOWS))
    buildup_oi_ramp: tuple[float, float] = BUILDUP_OI_RAMP
    buildup_range_ramp_pct: tuple[float, float] = BUILDUP_RANGE_RAMP_PCT
    buildup_flag: float = BUILDUP_FLAG
    deleveraging_hours: int = OI_DELEVERAGING_HOURS
    deleveraging_drop: float = OI_DELEVERAGING_DROP
    deleveraging_min_decline: float = OI_DELEVERAGING_MIN_DECLINE
    deleveraging_dominance_share: float = OI_DELEVERAGING_DOMINANCE_SHARE
    deleveraging_min_stages: int = OI_DELEVERAGING_MIN_STAGES
    deleveraging_min_changes: int = OI_DELEVERAGING_MIN_CHANGES
    crowding_funding_8h: float = CROWDING_FUNDING_8H
    crowding_min_oi_growth: float = CROWDING_MIN_OI_GROWTH
    crowding_ramp: tuple[float, float] = CROWDING_RAMP
    intensity_ramp: tuple[float, float] = INTENSITY_RAMP
    intensity_window: str = INTENSITY_WINDOW

    def __post_init__(self) -> None:
        if "24h" not in self.windows:
            raise ValueError("windows must include '24h' (build-up and crowding read it)")
        if self.intensity_window not in self.windows:
            raise ValueError(f"intensity_window {self.intensity_window!r} is not in windows")
        for name in ("buildup_oi_ramp", "buildup_range_ramp_pct", "crowding_ramp",
                     "intensity_ramp"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"{name} needs finite lo < hi, got {(lo, hi)}")
        if self.deleveraging_hours < 1:
            raise ValueError("deleveraging_hours must be >= 1")


DEFAULT_LEVERAGE_CONFIG = LeverageConfig()


@dataclass(frozen=True, slots=True)
class CoinLeverage(ToDict):
    """The leverage signals of one coin, or market-wide (``coin`` None)."""

    coin: str | None
    #: OI USD now (all fresh instruments); None without any
    oi_usd: float | None
    #: exchange -> share of oi_usd
    coverage: dict[str, float]
    #: window name -> change
    changes: dict[str, OIChange]
    #: the 24 h price range in percent (market-wide: OI-weighted over the coins)
    price_range_24h_pct: float | None
    buildup: Buildup
    deleveraging: OIDeleveraging
    #: window name -> intensity
    intensity: dict[str, Intensity]
    crowding: Crowding


@dataclass(frozen=True, slots=True)
class LeverageSignals(ToDict):
    ts: float
    market: CoinLeverage
    coins: dict[str, CoinLeverage]


def _coin_leverage(history: OIHistoryView, coin: str | None, now: float,
                   range_24h: float | None, liquidated_usd: Callable[[str | None, float], float],
                   cfg: LeverageConfig) -> CoinLeverage:
    changes: dict[str, OIChange] = {}
    intensity: dict[str, Intensity] = {}
    for name, seconds in cfg.windows.items():
        then, cur, n = history.paired(coin, then=now - seconds, now=now)
        changes[name] = (oi_change(then, cur, window=name, seconds=seconds, instruments=n)
                         if n else OIChange(name, seconds, None, None, None, None, 0))
        intensity[name] = liquidation_intensity(
            liquidated_usd(coin, seconds), history.oi_usd(coin, at=now - seconds),
            window=name, seconds=seconds)
    growth = changes["24h"].change_ratio
    hourly = history.hourly(coin, now=now, hours=cfg.deleveraging_hours + 1, linked=True)
    return CoinLeverage(
        coin=coin, oi_usd=history.oi_usd(coin, at=now),
        coverage=history.coverage(coin, now=now), changes=changes,
        price_range_24h_pct=finite_nonneg(range_24h),
        buildup=leverage_buildup(growth, range_24h, oi_ramp=cfg.buildup_oi_ramp,
                                 range_ramp=cfg.buildup_range_ramp_pct,
                                 flag_at=cfg.buildup_flag),
        deleveraging=classify_oi_deleveraging(
            hourly, cfg.deleveraging_drop, cfg.deleveraging_min_decline,
            cfg.deleveraging_dominance_share, cfg.deleveraging_min_stages,
            hours=cfg.deleveraging_hours),
        intensity=intensity,
        crowding=crowding(history.funding_8h(coin, now=now), growth,
                          cfg.crowding_funding_8h, cfg.crowding_min_oi_growth))


def leverage_signals(history: OIHistoryView, *, now: float,
                     price_range_pct: Callable[[str, float], float | None],
                     liquidated_usd: Callable[[str | None, float], float],
                     coins: Sequence[str],
                     config: LeverageConfig = DEFAULT_LEVERAGE_CONFIG) -> LeverageSignals:
    """Every leverage signal for ``coins`` and market-wide (all coins of the history).

    ``price_range_pct(coin, seconds)``: the coin's price range over the last ``seconds`` in
    percent (``range_pct`` of its high and low), None without prices.
    ``liquidated_usd(coin, seconds)``: USD liquidated (both sides) over the last ``seconds``;
    ``coin`` None = all coins. The market-wide price range is ``weighted_range_pct`` of the
    ``coins``' 24 h ranges weighted by their OI USD now."""
    ranges = {c: price_range_pct(c, 86400.0) for c in coins}
    per_coin = {c: _coin_leverage(history, c, now, ranges[c], liquidated_usd, config)
                for c in coins}
    market_range = weighted_range_pct(ranges, {c: r.oi_usd for c, r in per_coin.items()})
    market = _coin_leverage(history, None, now, market_range, liquidated_usd, config)
    return LeverageSignals(ts=now, market=market, coins=per_coin)


def index_components(result: LeverageSignals | CoinLeverage,
                     config: LeverageConfig = DEFAULT_LEVERAGE_CONFIG) -> dict[str, float | None]:
    """The market-wide (or one coin's) leverage signals as stress-index components in [0, 1],
    None when not covered:

    * ``buildup``: the build-up score;
    * ``crowding``: ``ramp(|funding_8h|, 0.0001, 0.0005)``;
    * ``oi_deleveraging``: none 0, staged 0.5, capitulation 1; None when the label is
      ``none`` from fewer than ``deleveraging_min_changes`` valid hourly changes;
    * ``intensity``: ``ramp(liquidated / OI over intensity_window, 0.0005, 0.01)``.
    """
    r = result.market if isinstance(result, LeverageSignals) else result
    f = r.crowding.funding_8h
    dl = r.deleveraging
    known = dl.label != "none" or dl.changes >= config.deleveraging_min_changes
    inten = r.intensity.get(config.intensity_window)
    return {
        "buildup": r.buildup.score,
        "crowding": None if f is None else ramp(abs(f), *config.crowding_ramp),
        "oi_deleveraging": OI_DELEVERAGING_SCORES[dl.label] if known else None,
        "intensity": None if inten is None else ramp(inten.ratio, *config.intensity_ramp),
    }
