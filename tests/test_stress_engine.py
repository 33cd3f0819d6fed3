"""The stress engine on window snapshots: cascade start/end events, spike against the hourly
baseline, staged vs capitulation, and the gauges the worker exports from it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from agents.app import export_stress
from liqstress.event import make_event
from liqstress.metrics import Metrics
from liqstress.stress import StressEngine, StressSettings
from liqstress.windows import WindowStore

NOW = 1_800_000_000.0
SCHEMA = json.loads((Path(__file__).parent.parent / "liqstress" / "schemas" /
                     "stress.schema.json").read_text())


def add(store: WindowStore, age: float, exchange: str, side: str, usd: float, i: int = 0) -> None:
    ts = NOW - age
    store.add(make_event(exchange=exchange, symbol=f"BTCUSDT{i}", base="BTC", quote="USDT",
                         market="linear", side=side, price=100.0, qty=usd / 100.0,
                         notional_usd=usd, ts=ts, recv_ts=ts, sampled=False), NOW)


def evaluate(engine: StressEngine, store: WindowStore, now: float = NOW):  # noqa: ANN201
    return engine.evaluate(store.snapshot(now), store.hourly_totals(now))


def test_calm_day_then_a_two_venue_long_cascade() -> None:
    store = WindowStore()
    for h in range(1, 25):  # a calm day: 1M per hour, balanced
        add(store, h * 3600 + 600, "binance", "long", 500_000.0, h)
        add(store, h * 3600 + 700, "okx", "short", 500_000.0, h)
    engine = StressEngine(StressSettings(cascade_threshold_usd=5_000_000.0))
    calm = evaluate(engine, store)
    assert calm.events == [] and not calm.cascades["long"].active
    assert calm.deleveraging.label == "calm"
    calm_index = calm.index.value

    # Now 8M + 4M of longs on two venues within the last minute.
    add(store, 20, "binance", "long", 8_000_000.0, 100)
    add(store, 25, "hyperliquid", "long", 4_000_000.0, 101)
    hot = evaluate(engine, store, NOW + 1)
    assert [e["type"] for e in hot.events] == ["cascade_start"]
    start = hot.events[0]
    assert start["direction"] == "long" and start["venues"] == ["binance", "hyperliquid"]
    assert hot.imbalance["1h"].long_share == pytest.approx(12_000_000 / 12_000_000)
    assert hot.spike["long"].flag and hot.spike["long"].multiple == pytest.approx(12e6 / 0.5e6)
    assert not hot.spike["short"].flag
    assert hot.concentration["1h"].top2_share == pytest.approx(1.0)
    assert hot.index.value > calm_index and 0 <= hot.index.value <= 100

    # Two quiet minutes later the cascade ends (hysteresis: held for one window).
    quiet = [evaluate(engine, store, NOW + 1 + 60 * k) for k in (1, 2, 3)]
    kinds = [e["type"] for r in quiet for e in r.events]
    assert kinds.count("cascade_end") == 1 and "cascade_start" not in kinds

    metrics = Metrics.create()
    export_stress(metrics, hot)
    get = metrics.registry.get_sample_value
    assert get("liqstress_cascade_active", {"side": "long"}) == 1
    assert get("liqstress_cascades_total", {"side": "long"}) == 1
    assert get("liqstress_spike_active", {"side": "long"}) == 1
    assert get("liqstress_long_share_ratio", {"window": "1h"}) == pytest.approx(1.0)
    assert get("liqstress_stress_index") == pytest.approx(hot.index.value)
    assert get("liqstress_deleveraging_state", {"state": hot.deleveraging.label}) == 1
    export_stress(metrics, quiet[-1])
    assert get("liqstress_cascade_active", {"side": "long"}) == 0


def test_one_dominant_hour_is_capitulation_and_waves_are_staged() -> None:
    one = WindowStore()
    for h in range(1, 24):
        add(one, h * 3600 + 600, "binance", "long", 1_000_000.0, h)
    add(one, 600, "binance", "long", 60_000_000.0, 99)
    assert evaluate(StressEngine(), one).deleveraging.label == "capitulation"

    waves = WindowStore()
    for h in range(1, 24):
        add(waves, h * 3600 + 600, "binance", "long", 1_000_000.0, h)
    for h in (0, 6, 12):  # three separated waves, none dominating
        add(waves, h * 3600 + 600, "binance", "long", 20_000_000.0, 200 + h)
    assert evaluate(StressEngine(), waves).deleveraging.label == "staged"


def test_snapshot_and_event_records_validate_against_the_schema() -> None:
    from agents.app import WorkerState
    from liqstress.config import WorkerSettings

    state = WorkerState(settings=WorkerSettings(broker="x:1", clock="event"),
                        metrics=Metrics.create())
    for i, (ex, usd) in enumerate((("binance", 8e6), ("okx", 4e6), ("bybit", 1e5))):
        ts = NOW - 10 - i
        state.apply(make_event(exchange=ex, symbol="BTCUSDT", base="BTC", quote="USDT",
                               market="linear", side="long", price=1.0, qty=usd,
                               notional_usd=usd, ts=ts, recv_ts=NOW, sampled=False))
    state.refresh()
    msgs = state.stress_messages()
    assert [m["type"] for m in msgs] == ["cascade_start", "snapshot"]
    for m in msgs:
        jsonschema.validate(json.loads(json.dumps(m)), SCHEMA)
    broken = {**msgs[-1], "signals": {**msgs[-1]["signals"], "index": {"value": 140,
                                                                        "components": {}, "level": "x"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
