"""Stress signals: pure maths from liquidation windows (and prices) to "leverage stress".

One module per signal family, one section of ``docs/signals.md`` each (formulas, parameters,
defaults and edge cases are documented there; keep both in step):

====================  =====================================================================
module                family (docs/signals.md section)
====================  =====================================================================
``longshort``         1. long/short imbalance: ``imbalance``, ``long_share``, ``venue_usd``
``spikes``            2. spike against the median of previous hours: ``spike``
``exchanges``         3. exchange concentration (shares, top-2, HHI): ``concentration``
``cascades``          4. multi-venue cascades with start/end events: ``CascadeDetector``
``deleveraging``      5. staged vs capitulation: ``classify_deleveraging``
``clusters``          6. price clusters near local lows/highs: ``price_clusters``,
                      ``near_extreme_share``
``trends``            7. divergence (liquidations up, range down): ``divergence``, ``range_pct``
``market``            8. breadth (share of coins down): ``breadth``
``index``             9. composite stress index: ``stress_index``, ``StressConfig``
``common``            shared helpers (number validation, JSON-safe ``to_dict``); not re-exported
====================  =====================================================================

Every public name is re-exported here, so ``from liqstress import signals as sg;
sg.imbalance(...)`` and ``from liqstress.signals import CascadeDetector`` work whatever module
holds the name. No module is named like a function (``sg.imbalance`` is always the function).

Pure package: standard library and ``liqstress.labels`` only (no Faust, Kafka, websocket or
Prometheus imports), so every formula can be unit-tested on hand-computed numbers
(``tests/test_signals.py``; ``tests/test_signals_package.py`` checks purity and re-exports).

Conventions shared by every signal:

* Amounts are USD notionals (``LiquidationEvent.notional_usd`` summed, as in
  ``liqstress.windows.Agg.usd``). A side is the POSITION liquidated: ``"long"`` or ``"short"``.
* Time series are ordered oldest first, newest last (``series[-1]`` is the latest hour).
* Invalid amounts (NaN, +/-inf, negative, ``None``) never raise inside a signal: where a value is
  a current amount it counts as 0; where it is one point of a history it is dropped as missing
  (each function's docstring says which).
* Undefined ratios (0/0) are ``None``, never NaN. Every result has ``to_dict()`` returning plain
  JSON types; non-finite floats (the only one possible is ``SpikeResult.multiple = inf``) become
  ``null`` there.
* Results are frozen dataclasses; ``CascadeDetector`` is the only stateful object.
"""

from __future__ import annotations

from . import (
    cascades,
    clusters,
    deleveraging,
    exchanges,
    index,
    leverage,
    longshort,
    market,
    spikes,
    trends,
)
from .cascades import (
    CASCADE_END_RATIO,
    CASCADE_MIN_VENUES,
    CASCADE_VENUE_SHARE,
    CascadeDetector,
    CascadeEvent,
    CascadeState,
)
from .clusters import (
    CLUSTER_BUCKET_PCT,
    NEAR_EXTREME_PCT,
    TOP_LEVELS,
    Liquidation,
    NearExtreme,
    PriceLevel,
    bucket_bounds,
    bucket_index,
    near_extreme_share,
    price_clusters,
    top_levels,
)
from .deleveraging import (
    DELEVERAGING_DOMINANCE_SHARE,
    DELEVERAGING_HOURS,
    DELEVERAGING_MIN_STAGES,
    DELEVERAGING_SPIKE_FACTOR,
    LABELS,
    Deleveraging,
    Label,
    classify_deleveraging,
)
from .exchanges import Concentration, concentration
from .index import (
    COMPONENT_SPECS,
    COMPONENTS,
    DEFAULT_CONFIG,
    DEFAULT_LEVELS,
    DEFAULT_RAMPS,
    DEFAULT_WEIGHTS,
    ComponentSpec,
    StressConfig,
    StressIndex,
    StressInputs,
    ramp,
    stress_components,
    stress_index,
    stress_level,
)
from .leverage import (
    BUILDUP_FLAG,
    BUILDUP_OI_RAMP,
    BUILDUP_RANGE_RAMP_PCT,
    CROWDING_FUNDING_8H,
    CROWDING_LABELS,
    CROWDING_MIN_OI_GROWTH,
    CROWDING_RAMP,
    DEFAULT_LEVERAGE_CONFIG,
    INTENSITY_RAMP,
    INTENSITY_WINDOW,
    LEVERAGE_COMPONENTS,
    LEVERAGE_WINDOWS,
    OI_DELEVERAGING_DOMINANCE_SHARE,
    OI_DELEVERAGING_DROP,
    OI_DELEVERAGING_HOURS,
    OI_DELEVERAGING_LABELS,
    OI_DELEVERAGING_MIN_CHANGES,
    OI_DELEVERAGING_MIN_DECLINE,
    OI_DELEVERAGING_MIN_STAGES,
    OI_DELEVERAGING_SCORES,
    Buildup,
    CoinLeverage,
    Crowding,
    CrowdingLabel,
    Intensity,
    LeverageConfig,
    LeverageSignals,
    OIChange,
    OIDeleveraging,
    OIDeleveragingLabel,
    OIHistoryView,
    classify_oi_deleveraging,
    crowding,
    index_components,
    leverage_buildup,
    leverage_signals,
    liquidation_intensity,
    oi_change,
    weighted_range_pct,
)
from .longshort import Imbalance, imbalance, imbalance_by_window, long_share, venue_usd
from .market import Breadth, breadth
from .spikes import SPIKE_FACTOR, SPIKE_LOOKBACK_HOURS, SPIKE_MIN_USD, SpikeResult, spike
from .trends import (
    DIVERGENCE_LIQ_SLOPE_MIN,
    DIVERGENCE_MIN_POINTS,
    DIVERGENCE_RANGE_SLOPE_MIN,
    Divergence,
    divergence,
    normalised_slope,
    range_pct,
)

#: The signal families in docs/signals.md order (section number -> module).
FAMILIES = {1: longshort, 2: spikes, 3: exchanges, 4: cascades, 5: deleveraging, 6: clusters,
            7: trends, 8: market, 9: index,
            10: leverage}

#: Every public name of the family modules (tests/test_signals_package.py checks it is complete).
__all__ = [
    "Breadth", "CASCADE_END_RATIO", "CASCADE_MIN_VENUES", "CASCADE_VENUE_SHARE",
    "CLUSTER_BUCKET_PCT", "COMPONENTS", "COMPONENT_SPECS", "CascadeDetector", "CascadeEvent",
    "CascadeState", "ComponentSpec", "Concentration", "DEFAULT_CONFIG", "DEFAULT_LEVELS",
    "DEFAULT_RAMPS", "DEFAULT_WEIGHTS", "DELEVERAGING_DOMINANCE_SHARE", "DELEVERAGING_HOURS",
    "DELEVERAGING_MIN_STAGES", "DELEVERAGING_SPIKE_FACTOR", "DIVERGENCE_LIQ_SLOPE_MIN",
    "DIVERGENCE_MIN_POINTS", "DIVERGENCE_RANGE_SLOPE_MIN", "Deleveraging", "Divergence",
    "Imbalance", "LABELS", "Label", "Liquidation", "NEAR_EXTREME_PCT", "NearExtreme", "PriceLevel",
    "SPIKE_FACTOR", "SPIKE_LOOKBACK_HOURS", "SPIKE_MIN_USD", "SpikeResult", "StressConfig",
    "StressIndex", "StressInputs", "TOP_LEVELS", "breadth", "bucket_bounds", "bucket_index",
    "classify_deleveraging", "concentration", "divergence", "imbalance", "imbalance_by_window",
    "long_share", "near_extreme_share", "normalised_slope", "price_clusters", "ramp", "range_pct",
    "spike", "stress_components", "stress_index", "stress_level", "top_levels", "venue_usd",
    # 10. leverage
    "BUILDUP_FLAG", "BUILDUP_OI_RAMP", "BUILDUP_RANGE_RAMP_PCT", "Buildup", "CROWDING_FUNDING_8H",
    "CROWDING_LABELS", "CROWDING_MIN_OI_GROWTH", "CROWDING_RAMP", "CoinLeverage", "Crowding",
    "CrowdingLabel", "DEFAULT_LEVERAGE_CONFIG", "INTENSITY_RAMP", "INTENSITY_WINDOW", "Intensity",
    "LEVERAGE_COMPONENTS", "LEVERAGE_WINDOWS", "LeverageConfig", "LeverageSignals", "OIChange",
    "OIDeleveraging", "OIDeleveragingLabel", "OIHistoryView", "OI_DELEVERAGING_DOMINANCE_SHARE",
    "OI_DELEVERAGING_DROP", "OI_DELEVERAGING_HOURS", "OI_DELEVERAGING_LABELS",
    "OI_DELEVERAGING_MIN_CHANGES", "OI_DELEVERAGING_MIN_DECLINE", "OI_DELEVERAGING_MIN_STAGES",
    "OI_DELEVERAGING_SCORES", "classify_oi_deleveraging", "crowding", "index_components",
    "leverage_buildup", "leverage_signals", "liquidation_intensity", "oi_change",
    "weighted_range_pct",
]
