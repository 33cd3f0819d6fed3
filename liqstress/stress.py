"""Turns window snapshots into stress signals: the glue between liqstress/windows.py and the
formulas in liqstress/signals.py. Pure (no Faust/Kafka/Prometheus): the worker calls
:meth:`StressEngine.evaluate` on every refresh and publishes what it returns.

Price-based signals (clusters near local lows, range divergence, breadth) need the prices feed
and are not computed yet; the index renormalises its weights over the inputs present.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import signals as sg
from .windows import SIDES, Snapshot

#: Windows whose imbalance and concentration are published.
SIGNAL_WINDOWS = ("5m", "1h", "4h", "24h")


@dataclass(frozen=True)
class StressSettings:
    #: Cascade: this much USD of one side within 1 minute across >= min_venues venues.
    cascade_threshold_usd: float = 5_000_000.0
    cascade_min_venues: int = 2
    spike_factor: float = sg.SPIKE_FACTOR
    spike_min_usd: float = sg.SPIKE_MIN_USD
    #: Hours below this total are not "spike hours" in the staged/capitulation call.
    deleveraging_min_hour_usd: float = 1_000_000.0
    #: Window feeding the index's skew, size and concentration components.
    index_window: str = "1h"
    config: sg.StressConfig = field(default_factory=lambda: sg.DEFAULT_CONFIG)


@dataclass
class StressResult:
    ts: float
    imbalance: dict[str, sg.Imbalance]
    concentration: dict[str, sg.Concentration]
    spike: dict[str, sg.SpikeResult]
    cascades: dict[str, sg.CascadeState]
    deleveraging: sg.Deleveraging
    index: sg.StressIndex
    #: State changes since the previous evaluation (cascade start/end, deleveraging label).
    events: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "imbalance": {w: v.to_dict() for w, v in self.imbalance.items()},
            "concentration": {w: v.to_dict() for w, v in self.concentration.items()},
            "spike": {s: v.to_dict() for s, v in self.spike.items()},
            "cascade": {s: v.to_dict() for s, v in self.cascades.items()},
            "deleveraging": self.deleveraging.to_dict(),
            "index": self.index.to_dict(),
        }


class StressEngine:
    def __init__(self, settings: StressSettings | None = None) -> None:
        self.settings = settings or StressSettings()
        s = self.settings
        self.cascade = sg.CascadeDetector(s.cascade_threshold_usd, 60.0,
                                          min_venues=s.cascade_min_venues)
        self._last_label: str | None = None

    def evaluate(self, snap: Snapshot, hourly: dict[str, list[float]]) -> StressResult:
        """``hourly``: per side, the last 25 hourly totals oldest first, the current hour last
        (``WindowStore.hourly_totals``)."""
        s = self.settings
        by_window = snap.usd_by_exchange()
        imbalance = {w: sg.imbalance(by_window[w]) for w in SIGNAL_WINDOWS}
        concentration = {w: sg.concentration(sg.venue_usd(by_window[w])) for w in SIGNAL_WINDOWS}
        spike = {side: sg.spike(hourly[side][-1], hourly[side][:-1], factor=s.spike_factor,
                                min_usd=s.spike_min_usd) for side in SIDES}
        events: list[dict[str, Any]] = []
        for side in SIDES:
            for ev in self.cascade.update(snap.now, sg.venue_usd(by_window["1m"], side), side):
                events.append({"type": f"cascade_{ev.kind}", **ev.to_dict()})
        both = [lng + sht for lng, sht in zip(hourly["long"], hourly["short"], strict=True)]
        delev = sg.classify_deleveraging(both[-24:], min_hour_usd=s.deleveraging_min_hour_usd)
        if delev.label != self._last_label:
            if self._last_label is not None:
                events.append({"type": "deleveraging_change", "ts": snap.now,
                               "from": self._last_label, "to": delev.label})
            self._last_label = delev.label
        # The index follows the larger side's spike: stress from shorts counts too.
        main = max(SIDES, key=lambda side: hourly[side][-1])
        inputs = sg.StressInputs.from_signals(
            imbalance=imbalance[s.index_window], spike=spike[main],
            concentration=concentration[s.index_window],
            cascade_active=self.cascade.active(), deleveraging=delev)
        index = sg.stress_index(inputs, s.config)
        return StressResult(ts=snap.now, imbalance=imbalance, concentration=concentration,
                            spike=spike, cascades=self.cascade.states(), deleveraging=delev,
                            index=index, events=events)
