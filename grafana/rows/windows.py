"""The trader's grid: long / short / total for 1h, 4h, 12h and 24h side by side (Coinglass-like),
for all exchanges, one exchange or one coin."""

from __future__ import annotations

from panels import EXCHANGE, Q, Row, Settings, by_name, color_fixed, sel, stat

from rows.overview import LONG, SHORT, USD

GRID_WINDOWS = ("1h", "4h", "12h", "24h")
COIN_USD = "liqstress_coin_window_liquidated_usd"
SIDE_STAT_COLORS = (by_name("long", color=color_fixed("red")),
                    by_name("short", color=color_fixed("green")),
                    by_name("total", color=color_fixed("blue")))


def window_stats(what: str, metric: str, *matchers: str, w: int = 6, h: int = 5) -> list:
    """One stat per window of GRID_WINDOWS with three values: long, short and total USD."""
    out = []
    for win in GRID_WINDOWS:
        ms = (*matchers, f'window="{win}"')
        out.append(stat(
            f"{what}: last {win}",
            f"USD notional liquidated in the rolling {win} ending now ({what}): long positions "
            "(red), short positions (green) and both. From the worker's window gauges, summed "
            "over the workers. Sampled feeds (see Source health) make these floors.",
            [Q(f"sum({sel(metric, *ms, LONG)})", "long"),
             Q(f"sum({sel(metric, *ms, SHORT)})", "short"),
             Q(f"sum({sel(metric, *ms)})", "total")],
            unit="currencyUSD", text_mode="value_and_name", orientation="vertical",
            justify="center", overrides=SIDE_STAT_COLORS, w=w, h=h))
    return out


def row(cfg: Settings) -> Row:
    return Row("Liquidations: 1h / 4h / 12h / 24h",
               *window_stats("selected exchanges", USD, EXCHANGE))
