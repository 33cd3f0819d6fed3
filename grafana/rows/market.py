"""The market at a glance: exchanges by window with the long share, coins ranked, long vs short
per interval; every exchange and coin links to its own dashboard."""

from __future__ import annotations

from panels import (
    EXCHANGE,
    SIDE_COLORS,
    WINDOW,
    Q,
    Row,
    Settings,
    bargauge,
    by_name,
    drill,
    increase_bars,
    sel,
    table,
)

from rows.flow import INCREASE_INTERVAL
from rows.overview import LONG, USD
from rows.windows import COIN_USD, GRID_WINDOWS

EXCHANGE_UID, COIN_UID = "liqstress-exchange", "liqstress-coin"


def exchange_table() -> object:
    queries, columns = [], {"exchange": "Exchange"}
    usd_cell = {"unit": "currencyUSD", "custom__cellOptions": {"type": "gauge", "mode": "basic"}}
    share_cell = {"unit": "percentunit", "decimals": 0, "min": 0, "max": 1,
                  "custom__cellOptions": {"type": "color-text"},
                  "thresholds": {"mode": "absolute", "steps": [
                      {"color": "green", "value": None}, {"color": "text", "value": 0.35},
                      {"color": "red", "value": 0.65}]}}
    overrides = [by_name("Exchange", links=[drill(
        EXCHANGE_UID, "Exchange dashboard: ${__value.raw}", exchange="${__value.raw}")])]
    for i, win in enumerate(GRID_WINDOWS):
        w = f'window="{win}"'
        total = f"sum by (exchange) ({sel(USD, EXCHANGE, w)})"
        long_ = f"sum by (exchange) ({sel(USD, EXCHANGE, LONG, w)})"
        queries += [Q(total), Q(f"{long_}\n/ ({total} > 0)")]
        a, b = chr(ord("A") + 2 * i), chr(ord("A") + 2 * i + 1)
        columns[f"Value #{a}"] = f"{win} USD"
        columns[f"Value #{b}"] = f"{win} long share"
        overrides += [by_name(f"{win} USD", **usd_cell), by_name(f"{win} long share", **share_cell)]
    return table(
        "Exchanges: 1h / 4h / 12h / 24h",
        "USD liquidated per exchange in each rolling window (both sides) and the long share of "
        "it (red above 65%: mostly longs wiped out; green below 35%). Empty share: nothing "
        "liquidated in that window. Click an exchange for its dashboard.",
        queries, columns=columns, overrides=overrides, sort_by=("24h USD", True),
        footer_sum=[f"{w} USD" for w in GRID_WINDOWS], w=14, h=9)


def row(cfg: Settings) -> Row:
    return Row(
        "Exchanges and coins",
        exchange_table(),
        bargauge("Coins ranked by liquidated USD ($window)",
                 "USD liquidated per coin in $window across all exchanges, largest first: the "
                 "top coins by 24 h USD (LIQSTRESS_TOP_COINS, default 20) and the allowlist by "
                 "name, every other coin summed as \"other\" (so the bars add up to the total). "
                 "Click a coin for its dashboard.",
                 [Q(f"sort_desc(sum by (coin) ({sel(COIN_USD, WINDOW)}))", "{{coin}}")],
                 unit="currencyUSD", w=10, h=9,
                 links=[drill(COIN_UID, "Coin dashboard: ${__field.labels.coin}",
                              coin="${__field.labels.coin}")]),
        increase_bars(
            "Long vs short liquidated USD per interval",
            "USD liquidated per bar interval ($__interval, at least "
            f"{INCREASE_INTERVAL}: bars do not overlap, so the legend sum is the total over the "
            "time range), longs and shorts stacked, over the selected exchanges. From the "
            "worker's counters; unpriced events add 0.",
            [Q("sum by (side) (increase("
               f"{sel('liqstress_liquidated_usd_total', EXCHANGE)}[$__interval]))", "{{side}}")],
            unit="currencyUSD", interval=INCREASE_INTERVAL, w=24, h=8,
            overrides=SIDE_COLORS),
    )
