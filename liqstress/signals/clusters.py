"""Clusters near local lows/highs (docs/signals.md section 6): liquidated notional by geometric
price bucket per coin, and the share of longs liquidated near the local low / shorts near the
local high. ``bucket_index`` is also how ``liqstress.prices.LiquidationLevels`` stores prices."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ..labels import SIDES
from .common import ToDict, finite_nonneg, jsonable

__all__ = ["CLUSTER_BUCKET_PCT", "NEAR_EXTREME_PCT", "TOP_LEVELS", "Liquidation", "NearExtreme",
           "PriceLevel", "bucket_bounds", "bucket_index", "near_extreme_share", "price_clusters",
           "top_levels"]

CLUSTER_BUCKET_PCT = 0.25
NEAR_EXTREME_PCT = 1.0
TOP_LEVELS = 5


@dataclass(frozen=True, slots=True)
class PriceLevel(ToDict):
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
        d = ToDict.to_dict(self)
        d["total_usd"] = jsonable(self.total_usd)
        return d


Liquidation = tuple[float, str, float | None]  # (price, side, usd)


def _valid_liqs(liquidations: Iterable[Sequence[Any]]) -> Iterable[tuple[float, str, float]]:
    for item in liquidations:
        price, side, usd = item[0], item[1], item[2]
        p, u = finite_nonneg(price), finite_nonneg(usd)
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
        return {"long_share_near_low": jsonable(self.long_share_near_low),
                "short_share_near_high": jsonable(self.short_share_near_high)}


def near_extreme_share(liquidations: Iterable[Sequence[Any]], local_low: float | None,
                       local_high: float | None,
                       within_pct: float = NEAR_EXTREME_PCT) -> NearExtreme:
    """Share of long USD liquidated at ``price <= local_low × (1 + within_pct/100)`` and of
    short USD at ``price >= local_high × (1 - within_pct/100)``, for one coin.

    ``local_low``/``local_high`` are the rolling extremes of the coin's price over the same
    period (from the prices topic). Prices beyond the extreme count as near it. A share is None
    when there is no USD on that side or its extreme is missing/invalid. Invalid items skipped.
    """
    low, high = finite_nonneg(local_low), finite_nonneg(local_high)
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

