"""Staged vs capitulation (docs/signals.md section 5): how the last 24 h of liquidations are
spread over the hours."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .common import ToDict, amount

__all__ = ["DELEVERAGING_DOMINANCE_SHARE", "DELEVERAGING_HOURS", "DELEVERAGING_MIN_STAGES",
           "DELEVERAGING_SPIKE_FACTOR", "LABELS", "Deleveraging", "Label",
           "classify_deleveraging"]

Label = Literal["calm", "staged", "capitulation"]
LABELS: tuple[Label, Label, Label] = ("calm", "staged", "capitulation")

DELEVERAGING_HOURS = 24
DELEVERAGING_SPIKE_FACTOR = 3.0
DELEVERAGING_DOMINANCE_SHARE = 0.5
DELEVERAGING_MIN_STAGES = 2


@dataclass(frozen=True, slots=True)
class Deleveraging(ToDict):
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
    vals = [amount(v) for v in list(hourly_totals_24h)[-hours:]]
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
