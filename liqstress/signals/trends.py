"""Divergence (docs/signals.md section 7): hourly liquidations rising while the hourly price
range shrinks, as unit-free trends (least-squares slope / mean). ``range_pct`` is the unit of
the range series (``liqstress.prices.PriceStore.hourly_ranges``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .common import ToDict, finite_nonneg

__all__ = ["DIVERGENCE_LIQ_SLOPE_MIN", "DIVERGENCE_MIN_POINTS", "DIVERGENCE_RANGE_SLOPE_MIN",
           "Divergence", "divergence", "normalised_slope", "range_pct"]

DIVERGENCE_LIQ_SLOPE_MIN = 0.05
DIVERGENCE_RANGE_SLOPE_MIN = 0.03
DIVERGENCE_MIN_POINTS = 6


def range_pct(high: float, low: float) -> float | None:
    """An hour's price range in percent of its low: ``(high - low) / low × 100`` (the unit of
    ``divergence``'s range series). None for an invalid low/high."""
    h, lo = finite_nonneg(high), finite_nonneg(low)
    if h is None or lo is None or lo <= 0 or h < lo:
        return None
    return (h - lo) / lo * 100.0


@dataclass(frozen=True, slots=True)
class Divergence(ToDict):
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
    pts = [(float(i), v) for i, v in enumerate(finite_nonneg(y) for y in ys) if v is not None]
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
        fx, fy = finite_nonneg(x), finite_nonneg(y)
        ok = fx is not None and fy is not None
        liq.append(fx if ok else None)
        rng.append(fy if ok else None)
    points = sum(1 for v in liq if v is not None)
    ls, rs = normalised_slope(liq), normalised_slope(rng)
    flag = (points >= min_points and ls is not None and rs is not None
            and ls >= liq_slope_min and rs <= -range_slope_min)
    return Divergence(liq_slope=ls, range_slope=rs, flag=flag, points=points)
