"""The stress engine on window snapshots: cascade start/end events, spike against the hourly
baseline, staged vs capitulation, and the gauges the worker exports from it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from liqstress.agents import exporter
from liqstress.agents.state import WorkerState
from liqstress.config import WorkerSettings
from liqstress.event import make_event
from liqstress.infra.metrics import Metrics
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
    state = WorkerState(settings=WorkerSettings(broker="x:1"), metrics=metrics)
    exporter.register(state)
    state.record_stress(hot)
    get = metrics.registry.get_sample_value
    assert get("liqstress_cascade_active", {"side": "long"}) == 1
    assert get("liqstress_cascades_total", {"side": "long"}) == 1
    assert get("liqstress_spike_active", {"side": "long"}) == 1
    assert get("liqstress_long_share_ratio", {"window": "1h"}) == pytest.approx(1.0)
    assert get("liqstress_stress_index") == pytest.approx(hot.index.value)
    assert get("liqstress_deleveraging_state", {"state": hot.deleveraging.label}) == 1
    state.record_stress(quiet[-1])
    assert get("liqstress_cascade_active", {"side": "long"}) == 0


def test_a_new_aggregator_continues_the_published_cascade_and_label() -> None:
    """Failover: the engine of a new aggregator restored from the last stress.signals
    snapshot neither starts the running cascade again nor re-announces the label; it ends
    the cascade when the volume goes, with the original start time."""
    store = WindowStore()
    for h in range(1, 25):
        add(store, h * 3600 + 600, "binance", "long", 500_000.0, h)
    add(store, 20, "binance", "long", 8_000_000.0, 100)
    add(store, 25, "okx", "long", 4_000_000.0, 101)
    old = StressEngine()
    hot = evaluate(old, store, NOW + 1)
    assert [e["type"] for e in hot.events] == ["cascade_start"]
    published = json.loads(json.dumps(hot.to_dict()))

    new = StressEngine()
    new.restore(published, hot.ts)
    again = evaluate(new, store, NOW + 2)
    assert again.events == [] and again.cascades["long"].active
    assert again.cascades["long"].started_at == hot.cascades["long"].started_at
    later = [evaluate(new, store, NOW + 2 + 60 * k) for k in (1, 2, 3)]
    ends = [e for r in later for e in r.events if e["type"] == "cascade_end"]
    assert len(ends) == 1 and ends[0]["started_at"] == hot.cascades["long"].started_at
    # Without the restore, the same input would announce a second cascade.
    fresh = evaluate(StressEngine(), store, NOW + 2)
    assert [e["type"] for e in fresh.events] == ["cascade_start"]


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
    from liqstress.agents.app import WorkerState
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


# ---- price-based signals -----------------------------------------------------------------

def _worker_with(prices: list[tuple[str, float, float]],
                 liqs: list[tuple[str, str, float, float, float]]):  # noqa: ANN202
    """A WorkerState (event clock) fed ticks (coin, price, age) and liquidations
    (coin, side, price, usd, age), as the Faust agents would."""
    from liqstress.agents.app import WorkerState
    from liqstress.config import WorkerSettings
    from liqstress.prices import make_tick

    state = WorkerState(settings=WorkerSettings(broker="x:1", clock="event",
                                                coins=("BTC", "ETH")),
                        metrics=Metrics.create())
    exporter.register(state)
    for coin, price, age in prices:
        state.apply_tick(make_tick(exchange="binance", symbol=f"{coin}USDT", base=coin,
                                   price=price, ts=NOW - age, recv_ts=NOW - age))
    for i, (coin, side, price, usd, age) in enumerate(liqs):
        state.apply(make_event(exchange="okx" if i % 2 else "binance", symbol=f"{coin}USDT",
                               base=coin, quote="USDT", market="linear", side=side,
                               price=price, qty=usd / price, notional_usd=usd, ts=NOW - age,
                               recv_ts=NOW - age, sampled=False))
    state.fixed_now = NOW
    state.refresh()
    return state


def test_without_prices_the_price_signals_are_absent_and_the_index_renormalises() -> None:
    state = _worker_with([], [("BTC", "long", 100.0, 1e6, 60)])
    res = state.last_stress
    assert res is not None
    # Levels are still published; nothing can be "near" a low that is unknown.
    btc = res.clusters["coins"]["BTC"]
    assert btc["local_low"] is None and btc["long_share_near_low"] is None
    assert btc["top_levels"][0]["long_usd"] == 1e6
    assert res.clusters["long_share_near_low"] is None
    assert res.near_extreme is None and res.breadth is None
    assert res.divergence == {}
    comps = res.index.components
    assert all(comps[c] is None for c in ("clusters", "divergence", "breadth_1h", "breadth_24h"))
    assert res.index.coverage < 1
    jsonschema.validate(json.loads(json.dumps(state.stress_messages()[-1])), SCHEMA)
    reg = state.metrics.registry
    assert reg.get_sample_value("liqstress_near_extreme_ratio", {"side": "long"}) is None
    assert reg.get_sample_value("liqstress_breadth_down_ratio", {"window": "1h"}) is None


def test_longs_at_the_local_low_shorts_mid_range_breadth_and_gauges() -> None:
    # 230 minutes of prices (inside the 4 h lookback): BTC falls 110 -> 100, ETH rises 50 -> 60.
    prices = []
    for m in range(0, 231):
        age = (230 - m) * 60
        prices.append(("BTC", 110.0 - 10.0 * m / 230, age))
        prices.append(("ETH", 50.0 + 10.0 * m / 230, age))
    liqs = [("BTC", "long", 100.5, 3e6, 120), ("BTC", "long", 108.0, 1e6, 300),
            ("BTC", "short", 105.0, 1e6, 200), ("ETH", "short", 59.9, 2e6, 100)]
    state = _worker_with(prices, liqs)
    res = state.last_stress
    assert res is not None and res.near_extreme is not None
    btc = res.clusters["coins"]["BTC"]
    assert (btc["local_low"], btc["local_high"]) == (100.0, 110.0)
    assert btc["long_share_near_low"] == pytest.approx(0.75)  # 3M of 4M within 1% of 100
    assert btc["short_share_near_high"] == 0.0  # 105 is mid-range
    assert res.clusters["coins"]["ETH"]["short_share_near_high"] == 1.0
    # Market-wide: USD-weighted over both coins.
    assert res.near_extreme.long_share_near_low == pytest.approx(0.75)
    assert res.near_extreme.short_share_near_high == pytest.approx(2e6 / 3e6)
    assert btc["top_levels"][0]["long_usd"] == 3e6
    assert res.breadth is not None
    assert (res.breadth.down_1h, res.breadth.coins_1h) == (1, 2)  # BTC down, ETH up
    assert res.breadth.down_24h_share is None  # no price 24 h ago yet
    assert res.index.components["clusters"] is not None
    assert res.index.components["breadth_1h"] == pytest.approx(0.0)  # 0.5 is the ramp's start
    jsonschema.validate(json.loads(json.dumps(state.stress_messages()[-1])), SCHEMA)
    reg = state.metrics.registry
    assert reg.get_sample_value("liqstress_near_extreme_ratio", {"side": "long"}) == \
        pytest.approx(0.75)
    assert reg.get_sample_value("liqstress_coin_near_extreme_ratio",
                                {"coin": "ETH", "side": "short"}) == 1.0
    assert reg.get_sample_value("liqstress_coin_local_low_usd", {"coin": "BTC"}) == 100.0
    assert reg.get_sample_value("liqstress_coin_price_usd", {"coin": "ETH"}) == 60.0
    assert reg.get_sample_value("liqstress_breadth_down_ratio", {"window": "1h"}) == 0.5
    assert reg.get_sample_value("liqstress_breadth_coins", {"window": "1h"}) == 2
    assert reg.get_sample_value("liqstress_price_coins") == 2
    assert reg.get_sample_value("liqstress_prices_total", {"exchange": "binance"}) == 462


def test_divergence_flags_rising_liquidations_in_a_shrinking_range() -> None:
    prices, liqs = [], []
    for h in range(12):  # hour h before now: range (h+1)% wide, liquidations falling with h
        for m in range(0, 60, 5):
            age = h * 3600 + m * 60 + 30
            prices.append(("BTC", 100.0 * (1 + (h + 1) / 100 * (m % 10 == 0)), age))
        liqs.append(("BTC", "long", 100.0, 1e6 * (12 - h), h * 3600 + 1800))
    res = _worker_with(prices, liqs).last_stress
    assert res is not None
    div = res.divergence["BTC"]
    assert div.points == 12 and div.flag
    assert div.liq_slope > 0 and div.range_slope < 0
    assert res.index.components["divergence"] == 1.0
    assert "ETH" not in res.divergence  # no prices: not judged


def test_a_second_refresh_before_publishing_does_not_drop_a_state_change() -> None:
    """Replay's final refresh can run while the timer is between its refresh and its publish:
    the cascade start must still be handed out, once."""
    from liqstress.agents.app import WorkerState
    from liqstress.config import WorkerSettings

    state = WorkerState(settings=WorkerSettings(broker="x:1", clock="event"),
                        metrics=Metrics.create())
    for i, (ex, usd) in enumerate((("binance", 8e6), ("okx", 4e6))):
        state.apply(make_event(exchange=ex, symbol="BTCUSDT", base="BTC", quote="USDT",
                               market="linear", side="long", price=1.0, qty=usd,
                               notional_usd=usd, ts=NOW - 10 - i, recv_ts=NOW, sampled=False))
    state.refresh()
    state.refresh()  # no new change: the detector is already active
    assert [m["type"] for m in state.stress_messages()] == ["cascade_start", "snapshot"]
    assert [m["type"] for m in state.stress_messages()] == ["snapshot"]
