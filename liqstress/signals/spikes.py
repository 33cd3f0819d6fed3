"""Spike (docs/signals.md section 2): a window's notional against the median of the previous
hourly totals."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from .common import ToDict, amount, finite_nonneg

__all__ = ["SPIKE_FACTOR", "SPIKE_LOOKBACK_HOURS", "SPIKE_MIN_USD", "SpikeResult", "spike"]

# Defaults, also the documented values in docs/signals.md.
SPIKE_FACTOR = 3.0
SPIKE_MIN_USD = 1_000_000.0
SPIKE_LOOKBACK_HOURS = 24


@dataclass(frozen=True, slots=True)
class SpikeResult(ToDict):
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
    cur = amount(current_usd)
    recent = list(previous_hourly_totals)[-lookback:]
    history = [v for v in (finite_nonneg(h) for h in recent) if v is not None]
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
