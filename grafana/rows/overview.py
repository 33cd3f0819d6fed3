"""Overview: the selected window's totals at a glance."""

from __future__ import annotations

from panels import EXCHANGE, WINDOW, Q, Row, Settings, fixed, sel, stat

USD = "job_exchange_side_window:liqstress_window_liquidated_usd:sum"
COUNT = "job_exchange_side_window:liqstress_window_liquidations:sum"
LARGEST = "job_exchange_side_window:liqstress_window_largest_liquidation_usd:max"
LONG, SHORT = 'side="long"', 'side="short"'


def row(cfg: Settings) -> Row:
    long_usd = f"sum({sel(USD, EXCHANGE, LONG, WINDOW)})"
    return Row(
        "Overview ($window rolling window)",
        stat("Long liquidated ($window)",
             "USD notional of long positions liquidated in the rolling window ending now, summed "
             "over the selected exchanges. Sampled feeds (see Source health) make this a floor.",
             [Q(long_usd, "long")], unit="currencyUSD", color=fixed("red"), w=5, h=4),
        stat("Short liquidated ($window)",
             "USD notional of short positions liquidated in the rolling window ending now, summed "
             "over the selected exchanges.",
             [Q(f"sum({sel(USD, EXCHANGE, SHORT, WINDOW)})", "short")],
             unit="currencyUSD", color=fixed("green"), w=5, h=4),
        stat("Long share ($window)",
             "Long USD / (long + short) USD in the window. Above 50% means mostly longs were "
             "wiped out (price falling). Empty when nothing was liquidated.",
             [Q(f"{long_usd} / (sum({sel(USD, EXCHANGE, WINDOW)}) > 0)", "long share")],
             unit="percentunit", steps=(("green", None), ("text", 0.35), ("red", 0.65)),
             min_=0, max_=1, w=5, h=4),
        stat("Largest single liquidation ($window)",
             "Largest single liquidation in the window across the selected exchanges and both "
             "sides.",
             [Q(f"max({sel(LARGEST, EXCHANGE, WINDOW)})", "largest")],
             unit="currencyUSD", color=fixed("orange"), w=5, h=4),
        stat("Liquidations ($window)",
             "Number of liquidation events in the window (after deduplication).",
             [Q(f"sum({sel(COUNT, EXCHANGE, WINDOW)})", "count")],
             unit="short", color=fixed("blue"), w=4, h=4),
    )
