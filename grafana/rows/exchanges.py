"""Per exchange and coin: the selected window broken down by exchange, side and coin."""

from __future__ import annotations

from panels import EXCHANGE, WINDOW, Q, Row, Settings, bargauge, by_name, sel, table, timeseries

from rows.overview import COUNT, LARGEST, USD


def row(cfg: Settings) -> Row:
    usd = f"sum by (exchange, side) ({sel(USD, EXCHANGE, WINDOW)})"
    largest = f"max by (exchange, side) ({sel(LARGEST, EXCHANGE, WINDOW)})"
    return Row(
        "Per exchange and coin ($window)",
        bargauge("USD liquidated per exchange and side ($window)",
                 "Rolling-window USD per exchange and side.",
                 [Q(usd, "{{exchange}} {{side}}")], unit="currencyUSD", w=8, h=9),
        table("Window detail per exchange and side ($window)",
              "USD, event count and largest single liquidation in the window.",
              [Q(usd), Q(f"sum by (exchange, side) ({sel(COUNT, EXCHANGE, WINDOW)})"), Q(largest)],
              columns={"exchange": "Exchange", "side": "Side", "Value #A": "USD liquidated",
                       "Value #B": "Liquidations", "Value #C": "Largest (USD)"},
              overrides=[by_name("USD liquidated", unit="currencyUSD",
                                 custom__cellOptions={"type": "gauge", "mode": "basic"}),
                         by_name("Liquidations", unit="short"),
                         by_name("Largest (USD)", unit="currencyUSD")],
              sort_by=("USD liquidated", True), footer_sum=["USD liquidated", "Liquidations"],
              w=16, h=9),
        timeseries("Largest single liquidation ($window)",
                   "Largest single liquidation in the rolling window ending at each point.",
                   [Q(largest, "{{exchange}} {{side}}")], unit="currencyUSD", w=12, h=8),
        bargauge("Coins, all exchanges ($window)",
                 "USD liquidated per allowlisted coin, summed across all exchanges (this metric "
                 "has no exchange label, so the exchange filter does not apply).",
                 [Q(f"sum by (coin, side) ({sel('liqstress_coin_window_liquidated_usd', WINDOW)})",
                    "{{coin}} {{side}}")],
                 unit="currencyUSD", w=12, h=8),
    )
