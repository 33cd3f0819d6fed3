"""Breadth (docs/signals.md section 8): the share of tracked coins whose price is down over 1 h
and over 24 h."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .common import ToDict, finite_nonneg

__all__ = ["Breadth", "breadth"]


@dataclass(frozen=True, slots=True)
class Breadth(ToDict):
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
        now = finite_nonneg(triple[0]) if len(triple) > 0 else None
        if not now:
            continue
        coins += 1
        for j in (1, 2):
            ago = finite_nonneg(triple[j]) if len(triple) > j else None
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
