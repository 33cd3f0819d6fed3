"""Binance USD-M: parser on the documented payload, and the collector against the simulator."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.binance import (
    DOC_FRAME,
    DOC_MARK_PRICE_ITEM,
    MARK_PRICE_PATH,
    BinanceSim,
    force_order,
    mark_prices,
)
from liqstress.streams.venues import binance
from liqstress.streams.venues.base import Metadata, Parsed

from .venue_harness import IMPATIENT, VenueHarness, reason_of

HARNESS = VenueHarness(binance, 1_700_000_000.0)
parse = HARNESS.events


def test_doc_payload_sell_is_long_liquidation() -> None:
    (ev,) = parse(DOC_FRAME)
    assert ev.side == "long"  # forced SELL closes a long
    assert ev.exchange == "binance" and ev.symbol == "BTCUSDT"
    assert (ev.base, ev.quote, ev.market) == ("BTC", "USDT", "linear")
    assert ev.qty == pytest.approx(0.014)
    assert ev.price == pytest.approx(9910)
    assert ev.notional_usd == pytest.approx(0.014 * 9910)
    assert ev.ts == pytest.approx(1568014460.893)  # o.T, not E
    assert ev.sampled is True


def test_buy_order_is_short_liquidation() -> None:
    (ev,) = parse(force_order("ETHUSDT", "BUY", "2", "3000", 1_700_000_000_000))
    assert ev.side == "short"
    assert ev.notional_usd == pytest.approx(6000)


def test_notional_uses_filled_times_average_price() -> None:
    frame = orjson.loads(force_order("SOLUSDT", "SELL", "10", "100", 1_700_000_000_000,
                                     avg="101", filled="4"))
    (ev,) = parse(frame)
    assert ev.notional_usd == pytest.approx(4 * 101)
    assert ev.qty == pytest.approx(4)


def test_falls_back_to_q_times_p_when_nothing_filled() -> None:
    frame = orjson.loads(force_order("SOLUSDT", "SELL", "10", "100", 1_700_000_000_000,
                                     avg="0", filled="0"))
    (ev,) = parse(frame)
    assert ev.notional_usd == pytest.approx(1000)


def test_list_subscriptions_reply_is_a_pong() -> None:
    out = binance.parse('{"result":["!forceOrder@arr"],"id":3}', binance.WS_URL, 1.0, Metadata())
    assert out.kind == "pong" and not out.events


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ('{"e":"aggTrade"}', "unexpected_shape"),
    ('{"e":"forceOrder","o":{"s":"BTCUSDT","S":"HOLD","q":"1","p":"1","T":1}}', "bad_side"),
    ('{"e":"forceOrder","o":{"s":"BTCUSDT","S":"SELL","q":"x","p":"1","T":1}}', "bad_number"),
    ('[1,2]', "unexpected_shape"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(binance.parse, frame, binance.WS_URL, 1.0, Metadata()) == reason


def test_session_dead_letters_instead_of_raising() -> None:
    session = VenueSession(binance.VENUE)
    out = session.process(RawFrame("binance", binance.WS_URL, 5.0, "{oops"))
    assert out.deadletter is not None
    assert out.deadletter["reason"] == "malformed_json"
    assert out.deadletter["frame"] == "{oops" and out.deadletter["recv_ts"] == 5.0


def test_event_id_is_stable_for_the_same_liquidation() -> None:
    (a,) = parse(DOC_FRAME)
    (b,) = parse(DOC_FRAME)
    assert a.id == b.id
    (c,) = parse(force_order("BTCUSDT", "SELL", "0.015", "9910", 1568014460893))
    assert c.id != a.id


def test_default_url_is_the_market_route() -> None:
    assert binance.VENUE.connections(Metadata(), binance.VENUE.default_urls)[0].url == \
        "wss://fstream.binance.com/market/ws/!forceOrder@arr"


async def test_collector_against_simulator_pings_reconnects_and_dead_letters() -> None:
    async with HARNESS.collector(BinanceSim()) as rig:
        sim = rig.sim
        await sim.push(force_order("BTCUSDT", "SELL", "1", "50000", 1_700_000_000_000))
        await sim.push("{malformed")
        await rig.published(events=1, deadletters=1)
        # App-level liveness: LIST_SUBSCRIPTIONS is sent and answered.
        await rig.pinged("LIST_SUBSCRIPTIONS", exact=False)
        assert rig.value("liqstress_source_up") == 1
        # Server-side disconnect: the collector reconnects and keeps receiving.
        await rig.reconnected(connections=4, clients=2)
        await sim.push(force_order("ETHUSDT", "BUY", "2", "3000", 1_700_000_001_000))
        await sim.wait_for(lambda: len(rig.sink.events) == 2)
    assert [e.side for e in rig.sink.events] == ["long", "short"]
    rig.assert_recovered()
    assert rig.value("liqstress_deadletter_total", reason="malformed_json") == 1
    # Every frame, good or bad, is kept raw.
    assert any(r.data == "{malformed" for r in rig.sink.raws)


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    sim = BinanceSim()
    sim.answer_pings = False
    async with HARNESS.collector(sim, IMPATIENT, subscribed=False) as rig:
        await sim.wait_for(lambda: rig.col.reconnects >= 1, timeout=10)
    assert rig.col.reconnects >= 1
    assert rig.up() == 0


# ---- mark prices (!markPrice@arr@1s) ------------------------------------------------------

def parse_prices(text: str, recv_ts: float = 1_562_305_381.0) -> Parsed:
    return binance.parse(text, binance.PRICES_URL, recv_ts, Metadata())


def test_doc_mark_price_array_becomes_a_tick() -> None:
    parsed = parse_prices(orjson.dumps([DOC_MARK_PRICE_ITEM]).decode())
    assert parsed.kind == "data" and parsed.events == ()
    (tick,) = parsed.prices
    assert (tick.exchange, tick.symbol, tick.coin, tick.kind) == ("binance", "BTCUSDT", "BTC", "mark")
    assert tick.price == 11185.87786614  # p, the mark price (not i, the index)
    assert tick.ts == 1562305380.0 and tick.recv_ts == 1_562_305_381.0


def test_mark_prices_keep_usdt_perpetuals_and_scale_multiplier_symbols() -> None:
    text = mark_prices({"BTCUSDT": "97000.5", "BTCUSDC": "97001", "BTCUSDT_261225": "98000",
                        "1000PEPEUSDT": "0.0125", "ETHUSDT": "3100"}, 1_700_000_000_000)
    ticks = {t.symbol: t for t in parse_prices(text).prices}
    assert sorted(ticks) == ["1000PEPEUSDT", "BTCUSDT", "ETHUSDT"]
    # 1000PEPEUSDT quotes 1000 PEPE: the tick is per ONE coin, comparable across venues.
    assert ticks["1000PEPEUSDT"].coin == "PEPE"
    assert ticks["1000PEPEUSDT"].price == pytest.approx(0.0000125)


def test_bad_mark_price_items_are_skipped_but_an_unusable_frame_dead_letters() -> None:
    ok = parse_prices(orjson.dumps([{**DOC_MARK_PRICE_ITEM, "p": "NaN"},
                                    {**DOC_MARK_PRICE_ITEM, "s": "ETHUSDT", "p": "3000"}]).decode())
    assert [t.symbol for t in ok.prices] == ["ETHUSDT"]
    assert reason_of(parse_prices,
                     orjson.dumps([{**DOC_MARK_PRICE_ITEM, "p": "-1"}]).decode()) == "bad_price"
    assert parse_prices("[]").kind == "info"


def test_prices_connection_is_on_the_market_route_and_can_be_turned_off() -> None:
    conns = {c.name: c for c in binance.connections(Metadata(), binance.VENUE.default_urls)}
    assert conns["markprice"].url == "wss://fstream.binance.com/market/ws/!markPrice@arr@1s"
    assert conns["markprice"].kind == "prices"
    assert conns["markprice"].min_interval == binance.PRICE_INTERVAL
    assert [c.name for c in binance.connections(Metadata(), {"prices": "off"})] == ["usdm"]


async def test_collector_publishes_throttled_mark_prices_and_keeps_pongs() -> None:
    async with HARNESS.collector(BinanceSim(), {}, price_interval=0.5,
                                 ping_interval=0.1, pong_timeout=2.0, backoff_initial=0.05,
                                 backoff_cap=0.2, raw_policy="all") as rig:
        sim = rig.sim
        # Ten frames within ~0.1 s: only the first is kept and published.
        for i in range(10):
            await sim.push(mark_prices({"BTCUSDT": str(60000 + i), "ETHUSDT": "3000"},
                                       1_700_000_000_000 + i), MARK_PRICE_PATH)
        await sim.wait_for(lambda: rig.frames("throttled") >= 9)
        await asyncio.sleep(0.6)
        await sim.push(mark_prices({"BTCUSDT": "61000"}, 1_700_000_001_000), MARK_PRICE_PATH)
        await sim.wait_for(lambda: len(rig.sink.prices) == 3)
        # Pongs on the price connection are parsed before throttling: never dropped.
        await sim.wait_for(lambda: any("LIST_SUBSCRIPTIONS" in m
                                       for m in sim.messages(MARK_PRICE_PATH)))
        await asyncio.sleep(0.3)
        assert rig.up() == 1
    assert [(t.coin, t.price) for t in rig.sink.prices] == [("BTC", 60000.0), ("ETH", 3000.0),
                                                            ("BTC", 61000.0)]
    assert rig.col.reconnects == 0
    assert rig.value("liqstress_source_prices_total") == 3
    assert rig.value("liqstress_source_last_price_timestamp_seconds") > 0
    # Only kept frames become raw records: a recording replays exactly what was published.
    price_raws = [r for r in rig.sink.raws if r.source.endswith(MARK_PRICE_PATH)
                  and str(r.data).startswith("[")]
    assert len(price_raws) == 2
