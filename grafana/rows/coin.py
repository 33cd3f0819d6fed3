"""One coin ($coin, single-select): liquidated USD by price level over time (the heatmap) with
the price and its local low/high, the levels table and feed from the worker's JSON API, its
windows, and its price signals from Prometheus."""

from __future__ import annotations

from panels import (
    DASHED,
    SIDE_COLORS,
    ApiQ,
    Col,
    Q,
    Row,
    Settings,
    api_table,
    by_name,
    by_regexp,
    color_fixed,
    fixed,
    level_heatmap,
    sel,
    stat,
    timeseries,
)

from rows.feed import latest
from rows.windows import COIN_USD, window_stats

COIN_IS = 'coin="$coin"'
ONE_HOUR = 'window="1h"'
LEVELS = "/api/v1/levels?coin=${coin}&hours=${hours}"


def _coin(metric: str, *matchers: str) -> str:
    return f"max({sel(metric, COIN_IS, *matchers)})"


def levels_row(cfg: Settings) -> Row:
    usd = {"unit": "currencyUSD"}
    return Row(
        "$coin: liquidations by price level (worker API)",
        stat("$coin price and local range",
             "The coin's current price (from the venue in price_source) and its local low and "
             "high over the stress engine's lookback (local_extreme_hours, 4 h by default): "
             "GET /api/v1/levels. Empty for a coin no venue prices.",
             [ApiQ(LEVELS, "", (Col("price", "price", "number"),
                                Col("local_low", "local low", "number"),
                                Col("local_high", "local high", "number")))],
             unit="currencyUSD", color=fixed("blue"), text_mode="value_and_name",
             orientation="vertical", justify="center", w=4, h=8,
             overrides=[by_name("local low", color=color_fixed("red")),
                        by_name("local high", color=color_fixed("green"))]),
        timeseries("$coin price and local low/high",
                   "Close, high and low per 5-minute price slot over the last $hours h (worker "
                   "API, /api/v1/levels prices), with the local low and high the stress engine "
                   "uses (Prometheus; allowlisted coins only). Read it against the heatmap "
                   "below: the same time axis.",
                   [ApiQ(LEVELS, "prices", (Col("time", "time", "timestamp"),
                                            Col("close", "close", "number"),
                                            Col("high", "high", "number"),
                                            Col("low", "low", "number"))),
                    Q(_coin("liqstress_coin_local_low_usd"), "local low"),
                    Q(_coin("liqstress_coin_local_high_usd"), "local high")],
                   unit="currencyUSD", fill=0, color=fixed("blue"), legend="list", calcs=None,
                   w=20, h=8,
                   overrides=[by_regexp("^(high|low)$", custom__lineStyle=DASHED,
                                        color=color_fixed("text"), custom__lineWidth=1),
                              by_name("local low", color=color_fixed("red"),
                                      custom__lineWidth=2),
                              by_name("local high", color=color_fixed("green"),
                                      custom__lineWidth=2)]),
        level_heatmap("$coin: liquidated USD by price level",
                      "USD liquidated per 0.25 % price level (y) and 5-minute slot (x) over the "
                      "last $hours h, both sides, all exchanges (GET /api/v1/levels cells): "
                      "where the liquidations sat. Brighter is more USD; empty cells are "
                      "left out.",
                      ApiQ(LEVELS, "cells", (Col("time", "time", "timestamp"),
                                             Col("price", "price", "number"),
                                             Col("usd", "usd", "number"))),
                      time="time", level="price", value="usd", w=24, h=12),
        timeseries("$coin: estimated liquidation map (model), USD within 1/2/5 % of price",
                   "A MODEL, not observed liquidations (docs/signals.md section 11): open "
                   "positions placed at their liquidation prices from open-interest increases "
                   "at the prices where they happened, a documented leverage mix and a 0.5 % "
                   "maintenance margin; removed on open-interest decreases and when the price "
                   "crosses them. Per side, the USD whose liquidation price lies within 1, 2 "
                   "and 5 % of the current price: longs below it, shorts above "
                   "(liqstress_liquidation_map_usd). Read it against the heatmap above: "
                   "where liquidations happened.",
                   [Q(f"max by (side, band) ({sel('liqstress_liquidation_map_usd', COIN_IS)})",
                      "{{side}} within {{band}}")],
                   unit="currencyUSD", fill=0, w=16, h=8,
                   overrides=[by_regexp("^long", color=color_fixed("red")),
                              by_regexp("^short", color=color_fixed("green"))]),
        stat("$coin: largest estimated levels (model)",
             "The estimated liquidation map's largest level still below the price (longs) "
             "and above it (shorts): its price and its USD "
             "(liqstress_liquidation_map_top_level_price_usd, _top_level_usd).",
             [Q(_coin("liqstress_liquidation_map_top_level_price_usd", 'side="long"'),
                "long level"),
              Q(_coin("liqstress_liquidation_map_top_level_usd", 'side="long"'), "long USD"),
              Q(_coin("liqstress_liquidation_map_top_level_price_usd", 'side="short"'),
                "short level"),
              Q(_coin("liqstress_liquidation_map_top_level_usd", 'side="short"'),
                "short USD")],
             unit="currencyUSD", color=fixed("blue"), text_mode="value_and_name",
             orientation="horizontal", justify="center", w=8, h=8,
             overrides=[by_regexp("^long", color=color_fixed("red")),
                        by_regexp("^short", color=color_fixed("green"))]),
        api_table("$coin: price levels",
                  "Every (slot, price level) cell of the heatmap with USD liquidated, long and "
                  "short, largest first: price_low to price_high is the level's range.",
                  ApiQ(LEVELS, "cells", (Col("time", "Slot", "timestamp"),
                                         Col("price_low", "From", "number"),
                                         Col("price_high", "To", "number"),
                                         Col("long_usd", "Long USD", "number"),
                                         Col("short_usd", "Short USD", "number"),
                                         Col("usd", "USD", "number"))),
                  overrides=[by_name("Long USD", **usd, color=color_fixed("red"),
                                     custom__cellOptions={"type": "color-text"}),
                             by_name("Short USD", **usd, color=color_fixed("green"),
                                     custom__cellOptions={"type": "color-text"}),
                             by_name("USD", **usd, custom__cellOptions={"type": "gauge",
                                                                        "mode": "basic"}),
                             by_name("Slot", unit="dateTimeAsIsoNoDateIfToday")],
                  sort_by=("USD", True), w=12, h=10),
        latest("Latest liquidations: $coin",
               "The newest 100 liquidations of $coin on every exchange, newest first (GET "
               "/api/v1/liquidations?coin=).", "/api/v1/liquidations?limit=100&coin=${coin}",
               w=12, h=10),
    )


def windows_row(cfg: Settings) -> Row:
    return Row(
        "$coin: 1h / 4h / 12h / 24h",
        *window_stats("$coin", COIN_USD, COIN_IS),
        timeseries("$coin: USD liquidated in the rolling hour",
                   "The coin's rolling 1 h USD per side over time (liqstress_coin_window_"
                   "liquidated_usd: the allowlist and the top coins by 24 h USD).",
                   [Q(f"sum by (side) ({sel(COIN_USD, COIN_IS, ONE_HOUR)})",
                      "{{side}}")], unit="currencyUSD", w=24, h=7, overrides=SIDE_COLORS),
    )


def signals_row(cfg: Settings) -> Row:
    price, low, high = (_coin(f"liqstress_coin_{m}_usd") for m in ("price", "local_low",
                                                                   "local_high"))
    return Row(
        "$coin: price signals",
        stat("$coin: position in the local range",
             "Where the price sits between its local low (0) and high (1). Near 0, long "
             "liquidations count as near the low.",
             [Q(f"({price} - {low})\n/ ({high} - {low} > 0)", "position")],
             unit="percentunit", min_=0, max_=1, decimals=0,
             steps=(("red", None), ("text", 0.1), ("green", 0.9)), w=6, h=7),
        timeseries("$coin: liquidations near local extremes",
                   "long: share of the last hour's long USD of this coin within 1% of its local "
                   "low; short: shorts within 1% of the local high (absent when undefined).",
                   [Q(f"max by (side) ({sel('liqstress_coin_near_extreme_ratio', COIN_IS)})",
                      "{{side}}")], unit="percentunit", min_=0, max_=1, fill=0,
                   steps=(("transparent", None), ("red", 0.6)), threshold_style="line",
                   overrides=SIDE_COLORS, w=9, h=7),
        timeseries("$coin: range divergence",
                   "Trend of hourly liquidations and of the hourly price range (slope over the "
                   "mean, per hour) and the divergence flag (liquidations up while the range "
                   "shrinks; right axis).",
                   [Q(_coin("liqstress_divergence_liquidation_trend"), "liquidation trend"),
                    Q(_coin("liqstress_divergence_range_trend"), "range trend"),
                    Q(_coin("liqstress_divergence_active"), "divergence")],
                   unit="percentunit", fill=0, w=9, h=7,
                   overrides=[by_name("divergence", custom__axisPlacement="right", unit="none",
                                      min=0, max=1, custom__drawStyle="bars",
                                      custom__fillOpacity=30)]),
    )
