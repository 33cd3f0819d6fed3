"""Leverage: open interest and funding (docs/signals.md section 10), market-wide and per coin.
Values come from the aggregator worker only (the others do not export them); every panel is
empty until a first open-interest record has been read."""

from __future__ import annotations

from panels import Q, Row, Settings, bargauge, by_regexp, sel, stat, state_panel, timeseries


def row(cfg: Settings) -> Row:
    return Row(
        "Leverage: open interest and funding",
        stat("Open interest",
             "Open interest in USD now, every venue with an open-interest poll and every coin "
             "(instruments polled within 15 minutes). Market-wide: the exchange filter does "
             "not apply.",
             [Q(f"max({sel('liqstress_open_interest_usd')})", "open interest")],
             unit="currencyUSD", decimals=2, graph=True, text_mode="value", justify="center",
             w=4, h=8),
        timeseries("Open interest change",
                   "Change of open interest over 1h, 4h and 24h, counted over the instruments "
                   "present at both ends (a venue whose poll failed does not read as a drop). "
                   "Up: positions opened; down: closed or liquidated.",
                   [Q(f"max by (window) ({sel('liqstress_open_interest_change_ratio')})",
                      "{{window}}")],
                   unit="percentunit", fill=0, w=10, h=8,
                   overrides=[by_regexp("24h", custom__lineWidth=3)]),
        bargauge("Open interest by venue",
                 "Each venue's share of the open interest figure: which venues it covers.",
                 [Q("max by (exchange) "
                    f"({sel('liqstress_open_interest_exchange_share_ratio')})", "{{exchange}}")],
                 unit="percentunit", max_=1, w=10, h=8),
        timeseries("Funding per 8 h (OI-weighted)",
                   "Funding rate per 8 hours weighted by open interest, market-wide and per "
                   "allowlisted coin. Positive: longs pay shorts (longs crowded). "
                   "LiqStressCrowdedLongs fires at >= 0.03 % with open interest growing.",
                   [Q(f"max({sel('liqstress_funding_rate_8h_ratio')})", "market"),
                    Q(f"max by (coin) ({sel('liqstress_coin_funding_rate_8h_ratio')})",
                      "{{coin}}")],
                   unit="percentunit", fill=0,
                   steps=(("transparent", None), ("orange", 0.0003)), threshold_style="line",
                   w=8, h=8, overrides=[by_regexp("market", custom__lineWidth=3)]),
        timeseries("Leverage build-up",
                   "Build-up score 0-1: open interest up over 24 h while the 24 h price range "
                   "stays flat (docs/signals.md). Flagged at 0.5 (line; "
                   "LiqStressLeverageBuildup).",
                   [Q(f"max({sel('liqstress_leverage_buildup_ratio')})", "market"),
                    Q(f"max by (coin) ({sel('liqstress_coin_leverage_buildup_ratio')})",
                      "{{coin}}")],
                   unit="percentunit", min_=0, max_=1, fill=0,
                   steps=(("transparent", None), ("orange", 0.5)), threshold_style="line",
                   w=8, h=8, overrides=[by_regexp("market", custom__lineWidth=3)]),
        timeseries("Liquidation intensity",
                   "USD liquidated in the window over the open interest at its start: how much "
                   "of the open leverage was force-closed.",
                   [Q(f"max by (window) ({sel('liqstress_liquidation_intensity_ratio')})",
                      "{{window}}")],
                   unit="percentunit", fill=0, soft_min=0, w=8, h=8),
        state_panel(
            "Deleveraging by open interest (24h)",
            "Hourly open-interest changes of the last 24 h: none, staged (several separate "
            "drops; LiqStressOpenInterestStaged) or capitulation (one drop holds 2/3 of "
            "the decline; LiqStressOpenInterestCapitulation).",
            "liqstress_oi_deleveraging_state",
            [("none", "none", "green"), ("staged", "staged", "orange"),
             ("capitulation", "capitulation", "red")],
            w=12, h=4),
        state_panel(
            "Crowding",
            "OI-weighted funding with open interest growing: long_crowded (funding >= "
            "+0.03 % per 8 h), short_crowded (<= -0.03 %) or none.",
            "liqstress_crowding_state",
            [("none", "none", "green"), ("short_crowded", "short crowded", "blue"),
             ("long_crowded", "long crowded", "red")],
            w=12, h=4),
    )
