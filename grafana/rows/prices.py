"""Price signals: prices, local ranges, breadth and divergence (the mark-price feed)."""

from __future__ import annotations

from panels import (
    COIN,
    DASHED,
    EXCHANGE,
    SIDE_COLORS,
    UNSET,
    Q,
    Row,
    Settings,
    Stack,
    by_name,
    by_regexp,
    fixed,
    range_map,
    repeat,
    sel,
    stat,
    state_timeline,
    table,
    timeseries,
    value_map,
)


def _per_coin(metric: str, *matchers: str) -> str:
    return f"max by (coin) ({sel(metric, *matchers, COIN)})"


def row(cfg: Settings) -> Row:
    price, low, high = (_per_coin(f"liqstress_coin_{m}_usd")
                        for m in ("price", "local_low", "local_high"))
    share = {"unit": "percentunit", "decimals": 0}
    near = {**share, "custom__cellOptions": {"type": "color-text"},
            "thresholds": {"mode": "absolute",
                           "steps": [{"color": "text", "value": None},
                                     {"color": "red", "value": 0.6}]}}
    usd = {"unit": "currencyUSD", "decimals": UNSET}
    return Row(
        "Price signals",
        timeseries("Liquidations near local extremes (1h)",
                   "long: share of the last hour's long liquidation USD (coins with prices) "
                   "within 1% of the coin's 4 h local low; short: share of short USD within 1% of "
                   "the local high. Absent when undefined (no USD on that side, or no prices). "
                   "LiqStressLongsNearLocalLow / LiqStressShortsNearLocalHigh fire at >= 60% "
                   "(line) with >= 20M USD of that side in the hour.",
                   [Q(f"max by (side) ({sel('liqstress_near_extreme_ratio')})", "{{side}}")],
                   unit="percentunit", min_=0, max_=1, fill=0,
                   steps=(("transparent", None), ("red", 0.6)), threshold_style="line",
                   soft_min=0, overrides=SIDE_COLORS, w=8, h=8),
        timeseries("Breadth: share of coins down",
                   "Share of the coins with a price whose price is lower than 1 h / 24 h ago, and "
                   "how many coins were counted (right axis). LiqStressBreadthWeak (1h) and "
                   "LiqStressBreadthWeak24h fire at >= 80% (line) with at least 5 coins counted.",
                   [Q(f"max by (window) ({sel('liqstress_breadth_down_ratio')})",
                      "down vs {{window}} ago"),
                    Q(f"max by (window) ({sel('liqstress_breadth_coins')})",
                      "coins counted ({{window}})")],
                   unit="percentunit", min_=0, fill=0,
                   steps=(("transparent", None), ("red", 0.8)), threshold_style="line",
                   soft_min=0, soft_max=1, w=8, h=8,
                   overrides=[by_regexp("^coins counted.*", custom__axisPlacement="right",
                                        unit="none", min=0,
                                        custom__thresholdsStyle={"mode": "off"},
                                        custom__lineStyle=DASHED)]),
        Stack(
            stat("Price feed age",
                 "Age of the last price frame the collector kept, per venue with a price feed "
                 "(Binance keeps one mark-price frame per 10 s). \"no price yet\": none since "
                 "the collector started. LiqStressPricesStale fires above 120 s while the source "
                 "is connected.",
                 [Q("time() - max by (exchange) "
                    f"({sel('liqstress_source_last_price_timestamp_seconds', EXCHANGE)})",
                    "{{exchange}}")],
                 unit="s", steps=(("green", None), ("orange", 60), ("red", 120)),
                 mappings=[range_map(1e8, 1e12, "no price yet", "red")], background=True,
                 w=8, h=4),
            timeseries("Price ticks applied and coins priced",
                       "Price ticks the worker applied per second, per venue, and the coins with "
                       "a current price (a tick within 15 minutes; right axis).",
                       [Q("sum by (exchange) (rate("
                          f"{sel('liqstress_prices_total', EXCHANGE)}[$__rate_interval]))",
                          "{{exchange}} ticks/s"),
                        Q(f"max({sel('liqstress_price_coins')})", "coins priced")],
                       unit="short", fill=0, soft_min=0, legend="list", calcs=None, w=8, h=4,
                       overrides=[by_regexp("^coins priced$", custom__axisPlacement="right",
                                            unit="none", min=0,
                                            custom__thresholdsStyle={"mode": "off"})]),
        ),
        state_timeline("Range divergence per coin",
                       "1 while the coin's hourly liquidations trend up as its hourly price "
                       "range shrinks (12 hourly points; docs/signals.md section 7). "
                       "LiqStressRangeDivergence fires after 30 minutes.",
                       [Q(_per_coin("liqstress_divergence_active"), "{{coin}}")],
                       mappings=[value_map(("0", "no", "green"), ("1", "divergence", "orange"))],
                       show_value="never", w=12, h=8),
        table("Per coin: price signals",
              "Allowlisted coins: current price, local low/high over the 4 h lookback, share of "
              "the last hour's long (short) USD within 1% of the low (high), and the divergence "
              "trends (slope over the mean, per hour). Empty cells: not defined (no prices or no "
              "liquidations).",
              [Q(price), Q(low), Q(high),
               Q(_per_coin("liqstress_coin_near_extreme_ratio", 'side="long"')),
               Q(_per_coin("liqstress_coin_near_extreme_ratio", 'side="short"')),
               Q(_per_coin("liqstress_divergence_liquidation_trend")),
               Q(_per_coin("liqstress_divergence_range_trend"))],
              columns={"coin": "Coin", "Value #A": "Price", "Value #B": "4 h low",
                       "Value #C": "4 h high", "Value #D": "Longs near low",
                       "Value #E": "Shorts near high", "Value #F": "Liquidation trend /h",
                       "Value #G": "Range trend /h"},
              overrides=[by_name("Price", **usd), by_name("4 h low", **usd),
                         by_name("4 h high", **usd), by_name("Longs near low", **near),
                         by_name("Shorts near high", **near),
                         by_name("Liquidation trend /h", **share),
                         by_name("Range trend /h", **share)],
              sort_by=("Coin", False), w=12, h=8),
        timeseries("Position in the 4 h range",
                   "Where each coin's price sits between its 4 h local low (0) and local high "
                   "(1). Near 0, long liquidations count as near the low (within 1% of it); near "
                   "1, shorts near the high.",
                   [Q(f"(\n  {price}\n  - {low}\n)\n/ (\n  {high}\n  - {low}\n  > 0\n)",
                      "{{coin}}")],
                   unit="percentunit", min_=0, max_=1, fill=0, soft_min=0, w=24, h=7),
        repeat(timeseries(
            "Price and 4 h local range: $coin",
            "Current price with the local low and high over the 4 h lookback (band). One panel "
            "per selected coin.",
            [Q(f"max({sel('liqstress_coin_price_usd', COIN)})", "price"),
             Q(f"max({sel('liqstress_coin_local_low_usd', COIN)})", "local low (4 h)"),
             Q(f"max({sel('liqstress_coin_local_high_usd', COIN)})", "local high (4 h)")],
            unit="currencyUSD", fill=0, color=fixed("blue"), legend="list", calcs=None,
            w=8, h=8,
            overrides=[by_name("local low (4 h)", custom__lineStyle=DASHED,
                               color={"mode": "fixed", "fixedColor": "red"}),
                       by_name("local high (4 h)", custom__lineStyle=DASHED,
                               color={"mode": "fixed", "fixedColor": "green"},
                               custom__fillBelowTo="local low (4 h)", custom__fillOpacity=10)]),
            "coin", max_per_row=3),
    )
