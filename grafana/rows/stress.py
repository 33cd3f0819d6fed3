"""Stress signals: the composite index and its inputs (liqstress.signals)."""

from __future__ import annotations

from panels import (
    EXCHANGE,
    SIDE_COLORS,
    Q,
    Row,
    Settings,
    Stack,
    bargauge,
    by_name,
    by_regexp,
    fixed,
    sel,
    stat,
    state_panel,
    timeseries,
)

STRESS = "job:liqstress_stress_index:max"
ONE_HOUR = 'window="1h"'



def row(cfg: Settings) -> Row:
    right_flag = {"custom__axisPlacement": "right", "unit": "none", "min": 0, "max": 1,
                  "custom__drawStyle": "bars"}
    return Row(
        "Stress signals",
        stat("Stress index",
             "Composite leverage-stress index 0-100 (docs/signals.md): >= 25 elevated, >= 50 "
             "high (LiqStressStressIndexElevated), >= 75 extreme (LiqStressStressIndexHigh). "
             "Market-wide: the exchange filter does not apply.",
             [Q(f"max({sel(STRESS)})", "stress index")], unit="none", decimals=0, min_=0,
             max_=100, steps=(("green", None), ("yellow", 25), ("orange", 50), ("red", 75)),
             background=True, graph=True, text_mode="value", justify="center", w=4, h=8),
        timeseries("Stress index over time",
                   "The composite index with the alert thresholds (50 warning, 75 critical).",
                   [Q(f"max({sel(STRESS)})", "stress index")], unit="none", min_=0, max_=100,
                   fill=20, color=fixed("purple"),
                   steps=(("transparent", None), ("rgba(255, 152, 48, 0.15)", 50),
                          ("rgba(242, 73, 92, 0.2)", 75)),
                   threshold_style="line+area", soft_min=0, w=12, h=8),
        bargauge("Stress components",
                 "Each component of the index mapped to 0-1 before weighting (weights in "
                 "docs/signals.md). Components without input are absent and left out of the "
                 "index.",
                 [Q(f"max by (component) ({sel('liqstress_stress_component_ratio')})",
                    "{{component}}")], unit="percentunit", max_=1, w=8, h=8),
        timeseries("Long share by window",
                   "Long share of the USD liquidated across all exchanges, per rolling window "
                   "(absent when nothing was liquidated). LiqStressLongSkew / LiqStressShortSkew "
                   "fire on the 1h share >= 90% / <= 10% with at least 10M USD in the hour "
                   "(lines).",
                   [Q(f"max by (window) ({sel('liqstress_long_share_ratio')})", "{{window}}")],
                   unit="percentunit", min_=0, max_=1, fill=0,
                   steps=(("transparent", None), ("green", 0.1), ("red", 0.9)),
                   threshold_style="line", soft_min=0, w=8, h=8,
                   overrides=[by_name("1h", custom__lineWidth=3)]),
        timeseries("Spike multiple per side",
                   "Last hour's USD liquidated (all exchanges) over the median of the 24 hourly "
                   "totals before it; absent without history. The worker flags a spike at >= 3x "
                   "(line) above its USD floor (LiqStressLiquidationSpikeSignal).",
                   [Q(f"max by (side) ({sel('liqstress_spike_multiple')})", "{{side}}"),
                    Q(f"max by (side) ({sel('liqstress_spike_active')})", "{{side}} spike flag")],
                   unit="suffix:x", fill=0, steps=(("transparent", None), ("red", 3)),
                   threshold_style="line", soft_min=0, w=8, h=8,
                   overrides=[*SIDE_COLORS,
                              by_regexp(".*flag", **right_flag, custom__fillOpacity=20,
                                        custom__thresholdsStyle={"mode": "off"})]),
        timeseries("Cascades: active and size",
                   "Cross-venue cascade per side: estimated USD liquidated in the current (or "
                   "last) cascade, and the active flag (bars, right axis). LiqStressCascade fires "
                   "after 1m active.",
                   [Q(f"max by (side) ({sel('liqstress_cascade_size_usd')})",
                      "{{side}} cascade size"),
                    Q(f"max by (side) ({sel('liqstress_cascade_active')})", "{{side}} active")],
                   unit="currencyUSD", soft_min=0, w=8, h=8,
                   overrides=[*SIDE_COLORS,
                              by_regexp(".*active", **right_flag, custom__fillOpacity=30)]),
        bargauge("Exchange shares (1h)",
                 "Each exchange's share of the USD liquidated in the last hour, both sides (all "
                 "exchanges are in the denominator; the exchange filter only selects the bars "
                 "shown).",
                 [Q("sort_desc(max by (exchange) "
                    f"({sel('liqstress_exchange_share_ratio', EXCHANGE, ONE_HOUR)}))",
                    "{{exchange}}")], unit="percentunit", max_=1, w=8, h=8),
        timeseries("Concentration (1h): top-2 share and HHI",
                   "Share of the two largest exchanges and the Herfindahl-Hirschman index (1/n "
                   "for n equal venues, 1 for one venue) over the last hour. "
                   "LiqStressExchangeConcentration fires above a top-2 share of 80% (line) with "
                   "at least 10M USD in the hour.",
                   [Q(f"max({sel('liqstress_top2_share_ratio', ONE_HOUR)})", "top-2 share"),
                    Q(f"max({sel('liqstress_concentration_hhi_ratio', ONE_HOUR)})", "HHI")],
                   unit="percentunit", min_=0, max_=1, fill=0,
                   steps=(("transparent", None), ("orange", 0.8)), threshold_style="line",
                   soft_min=0, w=8, h=8,
                   overrides=[by_regexp("^HHI$", custom__axisPlacement="right", unit="none",
                                        min=0, max=1, decimals=2)]),
        Stack(
            state_panel(
                "Deleveraging state (24h)",
                "Classification of the last 24 h of liquidations: calm, staged (>= 2 spike "
                "waves; LiqStressStagedDeleveraging) or capitulation (largest hour > 50%; "
                "LiqStressCapitulation).",
                "liqstress_deleveraging_state",
                [("calm", "calm", "green"), ("staged", "staged", "orange"),
                 ("capitulation", "capitulation", "red")],
                w=8, h=4),
            timeseries(
                "Largest hour's share and spike waves (24h)",
                "Largest hour's share of the last 24 h of USD liquidated (> 50% with a spike "
                "hour is a capitulation, line) and the number of distinct spike waves (right "
                "axis).",
                [Q(f"max({sel('liqstress_deleveraging_largest_hour_share_ratio')})",
                   "largest hour share"),
                 Q(f"max({sel('liqstress_deleveraging_spike_waves')})", "spike waves")],
                unit="percentunit", min_=0, fill=0, steps=(("transparent", None), ("red", 0.5)),
                threshold_style="line", soft_min=0, soft_max=1, legend="list", calcs=(),
                tooltip_sort="none", w=8, h=4,
                overrides=[by_regexp("^spike waves$", custom__axisPlacement="right",
                                     custom__axisSoftMax=3, unit="none", min=0, decimals=0,
                                     custom__drawStyle="bars")]),
        ),
    )
