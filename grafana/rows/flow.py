"""Flow: USD liquidated over time, per exchange and side, and the spike-alert inputs."""

from __future__ import annotations

from panels import (
    DASHED,
    EXCHANGE,
    WINDOW,
    Q,
    Row,
    Settings,
    by_regexp,
    color_fixed,
    increase_bars,
    sel,
    timeseries,
)

from rows.overview import USD

INCREASE_INTERVAL = "1m"


def row(cfg: Settings) -> Row:
    return Row(
        "Flow",
        increase_bars(
            "Long vs short liquidated USD per exchange",
            "USD liquidated per exchange in each bar's interval ($__interval, at least "
            f"{INCREASE_INTERVAL}: bars do not overlap, so the legend sum is the total over the "
            "time range), from the worker's counters. Longs above the axis, shorts mirrored "
            "below (negative-Y). Unpriced events add 0.",
            [Q("sum by (exchange, side) (increase("
               f"{sel('liqstress_liquidated_usd_total', EXCHANGE)}[$__interval]))",
               "{{exchange}} {{side}}")],
            unit="currencyUSD", interval=INCREASE_INTERVAL, w=24, h=9,
            overrides=[by_regexp(".* short$", custom__transform="negative-Y")]),
        timeseries(
            "Rolling $window totals per exchange",
            "The worker's rolling-window gauges over time (USD liquidated in the $window ending "
            "at each point).",
            [Q(f"sum by (exchange, side) ({sel(USD, EXCHANGE, WINDOW)})", "{{exchange}} {{side}}")],
            unit="currencyUSD", w=12, h=8),
        timeseries(
            "All exchanges: 1h totals vs spike thresholds",
            "Inputs of LiqStressLongLiquidationSpike / LiqStressShortLiquidationSpike: the "
            "all-exchange 1h total (ignores the exchange and job filters: these are the alert's "
            "own recorded series) fires when above both the 50M USD floor (red line) and 3x its "
            "average over the 24h ending 1h ago.",
            [Q('side_window:liqstress_window_liquidated_usd:sum{window="1h"}', "{{side}} 1h total"),
             Q("3 * side_window:liqstress_window_liquidated_usd:sum_avg24h_offset1h",
               "{{side}} 3x trailing 24h baseline")],
            unit="currencyUSD", steps=(("transparent", None), ("red", 50e6)),
            threshold_style="line", soft_min=0, w=12, h=8,
            overrides=[by_regexp(".*baseline.*", custom__lineStyle=DASHED),
                       by_regexp(".*long.*", color=color_fixed("red")),
                       by_regexp(".*short.*", color=color_fixed("green"))]),
    )
