"""Composite stress index (docs/signals.md section 9): the signal families mapped to [0, 1],
weighted and renormalised over the components present, 0-100.

Every component is one row of ``COMPONENT_SPECS`` (name, default weight, default ramp, how its
raw value is read from ``StressInputs``); ``DEFAULT_WEIGHTS``, ``DEFAULT_RAMPS`` and
``COMPONENTS`` are derived from it. A new component is a new ``StressInputs`` field (plus its
``from_signals`` argument) and a new row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clusters import NearExtreme
from .common import ToDict
from .deleveraging import Deleveraging, Label
from .exchanges import Concentration
from .longshort import Imbalance
from .market import Breadth
from .spikes import SpikeResult
from .trends import Divergence

__all__ = ["COMPONENTS", "COMPONENT_SPECS", "ComponentSpec", "DEFAULT_CONFIG", "DEFAULT_LEVELS",
           "DEFAULT_RAMPS", "DEFAULT_WEIGHTS", "StressConfig", "StressIndex", "StressInputs",
           "ramp", "stress_components", "stress_index", "stress_level"]


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


@dataclass(frozen=True, slots=True)
class StressInputs(ToDict):
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
    #: Leverage (open interest and funding), already in [0, 1]: ``leverage.index_components``
    leverage_buildup: float | None = None
    crowding: float | None = None
    oi_deleveraging: float | None = None
    intensity: float | None = None

    @classmethod
    def from_signals(cls, *, imbalance: Imbalance | None = None, spike: SpikeResult | None = None,
                     concentration: Concentration | None = None,
                     cascade_active: bool | None = None,
                     deleveraging: Deleveraging | None = None,
                     near_extreme: NearExtreme | None = None,
                     divergence: Divergence | None = None,
                     breadth: Breadth | None = None,
                     leverage: Mapping[str, float | None] | None = None) -> StressInputs:
        """Inputs from the signal results (any may be None). ``liquidations_usd`` is
        ``imbalance.total_usd`` (None when there is no imbalance result). ``leverage``: the
        components of ``leverage.index_components`` (None without open interest)."""
        lev = leverage or {}
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
            leverage_buildup=lev.get("buildup"),
            crowding=lev.get("crowding"),
            oi_deleveraging=lev.get("oi_deleveraging"),
            intensity=lev.get("intensity"),
        )


@dataclass(frozen=True, slots=True)
class StressIndex(ToDict):
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



def _skew(i: StressInputs, cfg: StressConfig) -> float | None:
    ls = _num(i.long_share)
    return None if ls is None else abs(min(1.0, max(0.0, ls)) - 0.5) * 2


def _deleveraging(i: StressInputs, cfg: StressConfig) -> float | None:
    if i.deleveraging is None:
        return None
    if i.deleveraging == "capitulation":
        return cfg.capitulation_score
    if i.deleveraging == "staged":
        return cfg.staged_score
    if i.deleveraging == "calm":
        return 0.0
    raise ValueError(f"unknown deleveraging label {i.deleveraging!r}")


def _clusters(i: StressInputs, cfg: StressConfig) -> float | None:
    near = [v for v in (_num(i.near_low_share), _num(i.near_high_share)) if v is not None]
    return max(near) if near else None


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    """One component of the index."""

    name: str
    #: default weight (``StressConfig.weights`` overrides it)
    weight: float
    #: default ``(lo, hi)`` of the ramp mapping the raw value to [0, 1]; None when ``read``
    #: already returns the component's value in [0, 1] (a flag or a label score)
    ramp: tuple[float, float] | None
    #: ``(inputs, cfg)`` -> raw value; None when the input is missing
    read: Callable[[StressInputs, StressConfig], float | None]


#: The components, in publishing order. Default weights sum to 1 (they need not: they are
#: normalised over the components present).
COMPONENT_SPECS: tuple[ComponentSpec, ...] = (
    # |long_share - 0.5| × 2
    ComponentSpec("skew", 0.20, (0.2, 0.9), _skew),
    # spike multiple
    ComponentSpec("spike", 0.20, (1.0, 6.0), lambda i, cfg: _num(i.spike_multiple)),
    # USD liquidated in the window (both sides)
    ComponentSpec("size", 0.10, (10_000_000.0, 200_000_000.0),
                  lambda i, cfg: _num(i.liquidations_usd)),
    # HHI
    ComponentSpec("concentration", 0.05, (0.2, 0.6), lambda i, cfg: _num(i.hhi)),
    ComponentSpec("cascade", 0.15, None, lambda i, cfg: _flag(i.cascade_active)),
    # calm 0, staged cfg.staged_score, capitulation cfg.capitulation_score
    ComponentSpec("deleveraging", 0.10, None, _deleveraging),
    # max(long share near low, short share near high)
    ComponentSpec("clusters", 0.05, (0.2, 0.7), _clusters),
    ComponentSpec("divergence", 0.05, None, lambda i, cfg: _flag(i.divergence)),
    # share of coins down over 1 h / 24 h
    ComponentSpec("breadth_1h", 0.05, (0.5, 1.0), lambda i, cfg: _num(i.breadth_down_1h)),
    ComponentSpec("breadth_24h", 0.05, (0.5, 1.0), lambda i, cfg: _num(i.breadth_down_24h)),
    # Leverage (docs/signals.md section 10), each already in [0, 1]; absent without open
    # interest, so an installation without OI polls keeps the index it had.
    ComponentSpec("buildup", 0.05, None, lambda i, cfg: _num(i.leverage_buildup)),
    ComponentSpec("crowding", 0.05, None, lambda i, cfg: _num(i.crowding)),
    ComponentSpec("oi_deleveraging", 0.05, None, lambda i, cfg: _num(i.oi_deleveraging)),
    ComponentSpec("intensity", 0.05, None, lambda i, cfg: _num(i.intensity)),
)

#: component -> weight (normalised over the components present; need not sum to 1)
DEFAULT_WEIGHTS: dict[str, float] = {c.name: c.weight for c in COMPONENT_SPECS}

#: component -> (lo, hi) of its ramp (continuous components only)
DEFAULT_RAMPS: dict[str, tuple[float, float]] = {
    c.name: c.ramp for c in COMPONENT_SPECS if c.ramp is not None}

DEFAULT_LEVELS: tuple[tuple[float, str], ...] = ((75.0, "extreme"), (50.0, "high"),
                                                 (25.0, "elevated"), (0.0, "low"))

COMPONENTS: tuple[str, ...] = tuple(DEFAULT_WEIGHTS)


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
        bad_ramp = set(self.ramps) - set(DEFAULT_RAMPS)
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


def stress_components(inputs: StressInputs,
                      cfg: StressConfig = DEFAULT_CONFIG) -> dict[str, float | None]:
    """Each component in [0, 1] (None when missing); formulas in docs/signals.md."""
    r = cfg.ramps
    out: dict[str, float | None] = {}
    for c in COMPONENT_SPECS:
        raw = c.read(inputs, cfg)
        out[c.name] = raw if c.ramp is None else ramp(raw, *r[c.name])
    return out


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
