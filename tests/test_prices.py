"""liqstress/prices.py: ticks, the price history (local extremes, hourly ranges, breadth inputs)
and liquidation levels. Pure: no broker."""

from __future__ import annotations

import json
import math
from importlib import resources

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from liqstress import signals as sg
from liqstress.prices import (
    N_SLOTS,
    PRICE_HISTORY,
    SLOT_SECONDS,
    LiquidationLevels,
    PriceError,
    PriceStore,
    PriceTick,
    make_tick,
    tick_from_json,
)

SCHEMA = json.loads(resources.files("liqstress").joinpath("schemas/price.schema.json")
                    .read_text())
T0 = 1_789_660_800.0  # a slot boundary (divisible by 300 and 3600)


def tick(coin: str, price: float, ts: float, exchange: str = "binance") -> PriceTick:
    return make_tick(exchange=exchange, symbol=f"{coin}USDT", base=coin, price=price, ts=ts,
                     recv_ts=ts + 0.1)


def test_tick_round_trips_and_matches_schema() -> None:
    t = make_tick(exchange="binance", symbol="1000PEPEUSDT", base="1000PEPE", price=0.0125,
                  ts=T0, recv_ts=T0 + 1)
    assert (t.coin, t.price, t.key) == ("PEPE", pytest.approx(0.0000125), "PEPE")
    Draft202012Validator(SCHEMA).validate(orjson.loads(t.to_json()))
    assert tick_from_json(t.to_json()) == t
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("mutate, reason", [
    ({"price": 0}, "price must be"), ({"price": "1"}, "price must be"),
    ({"price": float("nan")}, "price must be"), ({"ts": -1}, "ts must be"),
    ({"kind": "last"}, "kind must be"), ({"v": 2}, "unsupported schema version"),
    ({"coin": ""}, "coin must be"),
])
def test_bad_ticks_are_rejected_with_a_reason(mutate: dict, reason: str) -> None:
    obj = orjson.loads(tick("BTC", 60000, T0).to_json()) | mutate
    with pytest.raises(PriceError, match=reason):
        tick_from_json(orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY))
    with pytest.raises(PriceError, match="missing fields"):
        tick_from_json(b'{"v": 1}')
    with pytest.raises(PriceError, match="not JSON"):
        tick_from_json(b"{")


def test_make_tick_rejects_non_positive_prices() -> None:
    with pytest.raises(PriceError):
        tick("BTC", 0.0, T0)
    with pytest.raises(PriceError):
        tick("BTC", math.inf, T0)


def test_extremes_ranges_and_price_at() -> None:
    store = PriceStore()
    # 5 hours of one tick per minute: hour h has low 100-h and high 110-h.
    for m in range(300):
        h = m // 60
        price = (100 - h) if m % 60 == 10 else (110 - h) if m % 60 == 40 else 105 - h
        store.add(tick("BTC", price, T0 + 60 * m))
    now = T0 + 300 * 60 - 1
    assert store.extremes("BTC", now, 3600) == (96.0, 106.0)
    assert store.extremes("BTC", now, 4 * 3600) == (96.0, 109.0)
    assert store.extremes("ETH", now, 3600) is None
    ranges = store.hourly_ranges("BTC", now, 6)
    assert ranges[0] is None  # before the data
    for h, r in zip(range(5), ranges[1:], strict=True):
        assert r == pytest.approx(sg.range_pct(110 - h, 100 - h))
    assert store.price_at("BTC", now) == 101.0  # the last close
    # One hour back: the slot holding that instant, its close.
    assert store.price_at("BTC", now - 3600) == 102.0
    # Nothing within the staleness tolerance: no price.
    assert store.price_at("BTC", now + 3600) is None


def test_newest_tick_wins_the_close_whatever_the_arrival_order() -> None:
    a, b = PriceStore(), PriceStore()
    ticks = [tick("BTC", 100.0 + i, T0 + i) for i in range(10)]
    for t in ticks:
        a.add(t)
    for t in reversed(ticks):
        b.add(t)
    for t in ticks[:5]:  # re-applied (rebuild overlap): idempotent
        b.add(t)
    for s in (a, b):
        assert s.price_at("BTC", T0 + 20) == 109.0
        assert s.extremes("BTC", T0 + 20, 300) == (100.0, 109.0)


def test_priority_picks_one_venue_per_coin_and_fills_gaps() -> None:
    store = PriceStore()
    store.add(tick("BTC", 100.0, T0, exchange="hyperliquid"))
    store.add(tick("BTC", 90.0, T0, exchange="binance"))
    store.add(tick("HYPE", 30.0, T0, exchange="hyperliquid"))
    assert store.source("BTC") == "binance"
    assert store.price_at("BTC", T0 + 1) == 90.0
    assert store.price_at("HYPE", T0 + 1) == 30.0
    assert store.coins() == ["BTC", "HYPE"]


def test_breadth_inputs_and_pruning() -> None:
    store = PriceStore()
    for m in range(0, 25 * 60 + 1, 5):
        t = T0 + 60 * m
        store.add(tick("UP", 100.0 + m, t))
        store.add(tick("DOWN", 2000.0 - m, t))
    store.add(tick("STALE", 5.0, T0))
    now = T0 + 25 * 3600
    inputs = store.breadth_inputs(now)
    assert set(inputs) == {"UP", "DOWN"}
    b = sg.breadth(inputs)
    assert (b.down_1h_share, b.down_24h_share, b.coins) == (0.5, 0.5, 2)
    store.prune(now + PRICE_HISTORY)
    assert store.coins() == ["DOWN", "UP"]
    store.prune(now + PRICE_HISTORY + 2 * SLOT_SECONDS)
    assert store.coins() == [] and store.series_count() == 0


def test_ticks_older_than_the_history_are_ignored() -> None:
    store = PriceStore()
    store.add(tick("BTC", 100.0, T0 + PRICE_HISTORY + 10 * SLOT_SECONDS))
    assert not store.add(tick("BTC", 1.0, T0))
    assert store.ignored == 1
    assert N_SLOTS * SLOT_SECONDS == PRICE_HISTORY


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(1.0, 1e5), st.floats(0, 24 * 3600)), min_size=1,
                max_size=60))
def test_extremes_bound_every_tick_in_the_lookback(points: list[tuple[float, float]]) -> None:
    store = PriceStore()
    for price, dt in points:
        store.add(tick("X", price, T0 + dt))
    now = T0 + 24 * 3600
    got = store.extremes("X", now, 25 * 3600)
    assert got == (min(p for p, _ in points), max(p for p, _ in points))


def test_levels_bucket_prices_and_feed_the_cluster_maths() -> None:
    lv = LiquidationLevels(bucket_pct=0.25, horizon=3600)
    now = T0 + 3600
    assert lv.add("BTC", 60_000.0, "long", 1_000_000.0, now - 100, now)
    assert lv.add("BTC", 60_010.0, "long", 500_000.0, now - 50, now)
    assert lv.add("BTC", 62_000.0, "short", 200_000.0, now - 10, now)
    assert not lv.add("BTC", 60_000.0, "long", None, now - 10, now)  # unpriced
    assert not lv.add("BTC", 60_000.0, "long", 5.0, now - 4000, now)  # outside the horizon
    liqs = lv.liquidations("BTC", now)
    assert sum(u for _, s, u in liqs if s == "long") == 1_500_000.0
    levels = sg.price_clusters(liqs, 0.25)
    # Same buckets as the raw prices: the midpoint lands back in its own bucket.
    raw = sg.price_clusters([(60_000.0, "long", 1e6), (60_010.0, "long", 5e5),
                             (62_000.0, "short", 2e5)], 0.25)
    assert [(x.low, x.long_usd, x.short_usd) for x in levels] == \
        [(x.low, x.long_usd, x.short_usd) for x in raw]
    for price, _, _ in liqs:
        assert abs(price / 60_000.0 - 1) < 0.003 or abs(price / 62_000.0 - 1) < 0.003
    near = sg.near_extreme_share(liqs, 59_800.0, 62_100.0, 1.0)
    assert near.long_share_near_low == 1.0 and near.short_share_near_high == 1.0
    # A shorter window only sees the newest minute buckets (now is on a minute boundary, so
    # 120 s reaches the minute before it: the events at now-50 and now-10, not now-100).
    assert [(s, u) for _, s, u in lv.liquidations("BTC", now, 120)] == [("long", 500_000.0),
                                                                        ("short", 200_000.0)]
    lv.prune(now + 7200)
    assert lv.coins() == []
