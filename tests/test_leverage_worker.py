"""Open interest in the worker: records read from the topic feed the OI history, the
aggregator's stress snapshot gains the leverage signals (valid against the stress schema), the
index gains its leverage components, and /metrics shows them; without any record nothing of it
appears (absent, never 0). A bad record is counted and refused."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from liqstress.agents import exporter
from liqstress.open_interest import make_oi

from .test_exporter_snapshot import T0, liq, make_state, scrape, series, tick, value

SCHEMA = json.loads((Path(__file__).parent.parent / "liqstress" / "schemas" /
                     "stress.schema.json").read_text())
H = 3600.0


def oi(state, exchange: str, coin: str, usd: float, t: float, funding: float | None = 0.0005,
       partition: int = 0, offset: int = 0) -> None:
    rec = make_oi(exchange=exchange, symbol=f"{coin}USDT", base=coin, market="linear",
                  oi_coins=usd / 100.0, oi_usd=usd, price=100.0, funding_rate=funding,
                  funding_interval_hours=8.0 if funding is not None else None, ts=t, recv_ts=t)
    assert state.apply_oi_record(partition, offset, rec.to_json()) == rec


def test_no_open_interest_no_leverage_series() -> None:
    state = make_state()
    exporter.register(state)
    liq(state, "binance", "BTC", "long", 2e6, T0 - 60)
    state.refresh()
    assert state.last_stress is not None and state.last_stress.leverage is None
    assert state.last_stress.to_dict()["leverage"] is None
    assert state.last_stress.index.components["buildup"] is None
    samples = scrape(state)
    assert not series(samples, "liqstress_open_interest_usd")
    assert not series(samples, "liqstress_oi_deleveraging_state")


def test_records_become_leverage_signals_metrics_and_a_valid_snapshot() -> None:
    state = make_state(coins=("BTC", "ETH"))
    exporter.register(state)
    # A day of BTC open interest rising 30 % on two venues while the price stays flat (0.5 %
    # range), funding 0.05 % per 8 h: build-up and long crowding.
    for i in range(25):
        t = T0 - (24 - i) * H
        oi(state, "binance", "BTC", 1e9 * (1 + 0.3 * i / 24), t, offset=2 * i)
        oi(state, "bybit", "BTC", 5e8 * (1 + 0.3 * i / 24), t, offset=2 * i + 1)
        tick(state, "BTC", 100.0 + (0.5 if i % 2 else 0.0), t)
    liq(state, "binance", "BTC", "long", 3e6, T0 - 60)
    state.refresh()
    res = state.last_stress
    assert res is not None and res.leverage is not None
    btc = res.leverage.coins["BTC"]
    assert btc.oi_usd == pytest.approx(1.5e9 * 1.3)
    assert btc.coverage == {"binance": pytest.approx(2 / 3), "bybit": pytest.approx(1 / 3)}
    assert btc.changes["24h"].change_ratio == pytest.approx(0.3)
    assert btc.buildup.flag and btc.crowding.label == "long_crowded"
    assert btc.crowding.funding_8h == pytest.approx(0.0005)
    # intensity: 3 M liquidated in the last hour over the OI an hour ago
    assert btc.intensity["1h"].ratio == pytest.approx(3e6 / (1.5e9 * (1 + 0.3 * 23 / 24)))
    assert res.leverage.coins["ETH"].oi_usd is None  # no venue reported ETH
    comps = res.index.components
    assert comps["buildup"] == pytest.approx(res.leverage.market.buildup.score)
    assert comps["crowding"] == 1.0  # |0.05 %| per 8 h is the top of its ramp
    assert comps["oi_deleveraging"] == 0.0 and comps["intensity"] is not None
    for msg in state.stress_messages():
        Draft202012Validator(SCHEMA).validate(orjson.loads(orjson.dumps(msg)))
    samples = scrape(state)
    assert value(samples, "liqstress_open_interest_usd") == pytest.approx(1.95e9)
    assert value(samples, "liqstress_coin_open_interest_usd", coin="BTC") == pytest.approx(1.95e9)
    assert not series(samples, "liqstress_coin_open_interest_usd", coin="ETH")
    assert value(samples, "liqstress_open_interest_change_ratio", window="24h") == \
        pytest.approx(0.3)
    assert value(samples, "liqstress_leverage_buildup_active") == 1.0
    assert value(samples, "liqstress_crowding_state", state="long_crowded") == 1.0
    assert value(samples, "liqstress_crowding_state", state="none") == 0.0
    assert value(samples, "liqstress_oi_deleveraging_state", state="none") == 1.0
    assert value(samples, "liqstress_open_interest_exchange_share_ratio", exchange="bybit") == \
        pytest.approx(1 / 3)
    assert value(samples, "liqstress_open_interest_records_total", exchange="binance") == 25


def test_staged_deleveraging_by_open_interest() -> None:
    state = make_state(coins=("BTC",))
    # flat, then three separate hourly drops of 4 % with flat hours between them
    level = 2e9
    for i in range(25):
        if i in (12, 16, 20):
            level *= 0.96
        oi(state, "okx", "BTC", level, T0 - (24 - i) * H, funding=None, offset=i)
    state.refresh()
    lev = state.last_stress.leverage
    assert lev.market.deleveraging.label == "staged" and lev.market.deleveraging.stages == 3
    assert lev.market.crowding.funding_8h is None and lev.market.crowding.label == "none"


def test_a_foreign_record_is_refused_and_counted() -> None:
    state = make_state()
    assert state.apply_oi_record(0, 7, b'{"v": 1, "exchange": "x"}') is None
    assert state.apply_oi_record(0, 8, b"not json") is None
    assert state.invalid_oi == 2 and state.oi_offsets == {0: 8}
    assert state.oi.series_count() == 0


def test_liquidation_map_in_the_snapshot_and_on_metrics() -> None:
    """Open interest rising at 100 (BTC, two venues) with the price then at 101: the worker's
    map places the rise's longs below the price (docs/signals.md section 11), publishes them
    in the snapshot (schema-valid) and as metrics, and keeps the same map object until a new
    slot or a new record (it is rebuilt from the histories, never per refresh)."""
    state = make_state(coins=("BTC", "ETH"))
    exporter.register(state)
    for i in range(13):  # every 5 minutes for an hour: +10 % at the start, flat after
        t = T0 - 3600 + 300 * i
        usd = 1e9 if i == 0 else 1.1e9
        oi(state, "binance", "BTC", usd, t, offset=i)
        tick(state, "BTC", 100.0 if i < 12 else 101.0, t)
    liq(state, "binance", "BTC", "long", 1e6, T0 - 60)
    state.refresh()
    res = state.last_stress
    assert set(res.liquidation_map) == {"BTC"}  # ETH has neither open interest nor a price
    btc = res.liquidation_map["BTC"]
    assert btc["price_now"] == pytest.approx(101.0)
    longs, shorts = btc["long"], btc["short"]
    # +1e8 USD opened at 100: the 25x share (0.25) sits at 96.5, the 50x share at 98.5
    assert longs["added_usd"] == pytest.approx(1e8)
    assert longs["within_pct"]["5"] == pytest.approx(1e8 * (0.25 + 0.10 + 0.05))
    assert longs["top"][0]["usd"] == pytest.approx(1e8 * 0.35)  # 10x at 90.5
    assert all(lv["price"] < 101.0 for lv in longs["top"])
    assert all(lv["price"] > 101.0 for lv in shorts["top"])  # the 100x short (100.5) is below
    for msg in state.stress_messages():
        Draft202012Validator(SCHEMA).validate(orjson.loads(orjson.dumps(msg)))
    samples = scrape(state)
    assert value(samples, "liqstress_liquidation_map_usd", coin="BTC", side="long",
                 band="5pct") == pytest.approx(longs["within_pct"]["5"])
    assert value(samples, "liqstress_liquidation_map_top_level_price_usd", coin="BTC",
                 side="long") == pytest.approx(longs["top"][0]["price"])
    assert not series(samples, "liqstress_liquidation_map_usd", coin="ETH")
    cached = state.stress._maps["BTC"][1]
    state.refresh()
    assert state.stress._maps["BTC"][1] is cached
    oi(state, "bybit", "BTC", 5e8, T0 + 1, offset=99)
    state.refresh()
    assert state.stress._maps["BTC"][1] is not cached
