"""Long/short imbalance (docs/signals.md section 1): which side's positions are liquidated.

``long_share = long / (long + short)`` overall and per venue, from one window of
``Snapshot.usd_by_exchange()``; ``venue_usd`` reduces that shape to ``{exchange: usd}``, the
input of ``exchanges.concentration`` and ``cascades.CascadeDetector``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..labels import SIDES, Side
from .common import ToDict, amount

__all__ = ["Imbalance", "imbalance", "imbalance_by_window", "long_share", "venue_usd"]


def long_share(long_usd: float, short_usd: float) -> float | None:
    """Long share of liquidated notional: ``long / (long + short)``, in [0, 1].

    None when both are 0 (no liquidations: no imbalance to speak of). Invalid amounts (negative,
    NaN, inf) count as 0.
    """
    lo, sh = amount(long_usd), amount(short_usd)
    total = lo + sh
    if total <= 0:
        return None
    return min(1.0, max(0.0, lo / total))


@dataclass(frozen=True, slots=True)
class Imbalance(ToDict):
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
        lo, sh = amount(sides.get("long", 0.0)), amount(sides.get("short", 0.0))
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
    return {ex: sum(amount(sides.get(s, 0.0)) for s in wanted) for ex, sides in by_exchange.items()}
