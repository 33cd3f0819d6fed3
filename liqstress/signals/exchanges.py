"""Exchange concentration (docs/signals.md section 3): venue shares, top-2 share and HHI of a
window's notional."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .common import ToDict, amount

__all__ = ["Concentration", "concentration"]


@dataclass(frozen=True, slots=True)
class Concentration(ToDict):
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
    amounts = {ex: amount(v) for ex, v in usd_by_exchange.items()}
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
