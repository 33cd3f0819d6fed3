"""One exchange ($exchange, single-select): its windows, sides over time, shares and feed."""

from __future__ import annotations

from panels import (
    EXCHANGE,
    SIDE_COLORS,
    Q,
    Row,
    Settings,
    bargauge,
    by_name,
    increase_bars,
    sel,
    timeseries,
)

from rows.feed import latest
from rows.flow import INCREASE_INTERVAL
from rows.overview import USD
from rows.windows import window_stats


def row(cfg: Settings) -> Row:
    return Row(
        "$exchange: 1h / 4h / 12h / 24h",
        *window_stats("$exchange", USD, EXCHANGE),
        increase_bars(
            "$exchange: long vs short USD per interval",
            "USD liquidated on $exchange per bar interval ($__interval, at least "
            f"{INCREASE_INTERVAL}; the legend sum is the total over the time range), longs and "
            "shorts stacked.",
            [Q("sum by (side) (increase("
               f"{sel('liqstress_liquidated_usd_total', EXCHANGE)}[$__interval]))", "{{side}}")],
            unit="currencyUSD", interval=INCREASE_INTERVAL, w=12, h=8, overrides=SIDE_COLORS),
        timeseries("$exchange: long share by window",
                   "Long share of the USD liquidated on $exchange per rolling window (absent "
                   "when nothing was liquidated there).",
                   [Q("max by (window) "
                      f"({sel('liqstress_exchange_long_share_ratio', EXCHANGE)})",
                      "{{window}}")],
                   unit="percentunit", min_=0, max_=1, fill=0, w=6, h=8,
                   overrides=[by_name("1h", custom__lineWidth=3)]),
        bargauge("$exchange: share of all liquidations",
                 "$exchange's share of the USD liquidated on every exchange, both sides, per "
                 "signal window.",
                 [Q(f"max by (window) ({sel('liqstress_exchange_share_ratio', EXCHANGE)})",
                    "{{window}}")], unit="percentunit", max_=1, w=6, h=8),
        latest("Latest liquidations on $exchange",
               "The newest 100 liquidations on $exchange, newest first (worker API, GET "
               "/api/v1/liquidations?exchange=).",
               "/api/v1/liquidations?limit=100&exchange=${exchange}", w=24, h=10),
    )
