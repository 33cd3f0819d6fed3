"""Binance COIN-M: parser on the documented payload (contracts -> USD via contractSize, USD-M
orders on the dstream feed ignored, unknown listings unpriced), exchangeInfo metadata, and the
collector against the simulator."""

from __future__ import annotations

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims import binance as usdm_sim
from liqstress.streams.sims.binance_coinm import (
    DOC_FRAME,
    ERROR_REPLY,
    LIST_SUBSCRIPTIONS_REPLY,
    BinanceCoinmSim,
    exchange_info_body,
    force_order,
    symbol_info,
)
from liqstress.streams.venues import binance_coinm as coinm
from liqstress.streams.venues.base import Instrument, Metadata

from .venue_harness import EXCHANGE_INFO_BAD_BODIES, VenueHarness, reason_of

T0 = 1_789_670_000_000
EXCHANGE_INFO = coinm.rest_urls({})[0]
HARNESS = VenueHarness(coinm)
parse_out, parse = HARNESS.out, HARNESS.events


def loaded_meta(body: str | None = None) -> Metadata:
    meta = Metadata()
    coinm.load_rest(meta, EXCHANGE_INFO, body or exchange_info_body())
    return meta


def test_doc_payload_sell_is_long_and_contracts_are_usd() -> None:
    meta = loaded_meta(exchange_info_body([symbol_info("BTCUSD_200925", 100, "CURRENT_QUARTER",
                                                       1601020800000)]))
    (ev,) = parse(DOC_FRAME, meta)
    assert ev.side == "long"  # forced SELL closes a long
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "binance-coinm", "BTCUSD_200925", "BTC", "USD", "inverse")
    assert ev.notional_usd == pytest.approx(100.0)  # z=1 contract x 100 USD, not 1 x 9496.5
    assert ev.qty == pytest.approx(100.0 / 9496.5)  # coins = notional / ap
    assert ev.price == pytest.approx(9496.5)  # ap (what filled), not p
    assert ev.ts == pytest.approx(1591154240.949)  # o.T, not E
    assert ev.sampled is True


def test_doc_payload_without_contract_size_is_unpriced() -> None:
    out = parse_out(DOC_FRAME)
    (ev,) = out.events
    assert ev.notional_usd is None and ev.qty is None
    assert out.unpriced == 1
    assert (ev.base, ev.quote, ev.market, ev.side) == ("BTC", "USD", "inverse", "long")


def test_buy_is_short_and_alt_contracts_are_ten_usd() -> None:
    (ev,) = parse(force_order("ETHUSD_PERP", "BUY", "25", "2500", T0), loaded_meta())
    assert ev.side == "short"
    assert ev.notional_usd == pytest.approx(250.0)  # 25 x 10 USD
    assert ev.qty == pytest.approx(0.1)
    assert ev.ts == pytest.approx(T0 / 1000)


def test_btc_delivery_contract_is_one_hundred_usd() -> None:
    (ev,) = parse(force_order("BTCUSD_261225", "SELL", "30", "61000", T0), loaded_meta())
    assert (ev.side, ev.base, ev.market) == ("long", "BTC", "inverse")
    assert ev.notional_usd == pytest.approx(3000.0)


def test_notional_uses_filled_contracts_and_average_price() -> None:
    (ev,) = parse(force_order("BTCUSD_PERP", "SELL", "50", "60000", T0, avg="60500",
                              filled="20"), loaded_meta())
    assert ev.notional_usd == pytest.approx(2000.0)  # z=20 x 100, not q=50
    assert ev.price == pytest.approx(60500) and ev.qty == pytest.approx(2000 / 60500)


def test_falls_back_to_q_when_nothing_filled() -> None:
    (ev,) = parse(force_order("BTCUSD_PERP", "SELL", "7", "60000", T0, avg="0", filled="0"),
                  loaded_meta())
    assert ev.notional_usd == pytest.approx(700.0) and ev.price == pytest.approx(60000)


@pytest.mark.parametrize("frame", [
    orjson.dumps(usdm_sim.DOC_FRAME).decode(),  # the USD-M doc sample, as fstream sends it
    usdm_sim.force_order("ETHUSDT", "BUY", "2", "3000", T0),
    usdm_sim.force_order("BTCUSDC", "SELL", "0.1", "60000", T0),
    usdm_sim.force_order("BTCUSDT_261225", "SELL", "0.1", "60000", T0),  # USD-M delivery
])
def test_usdm_orders_on_dstream_are_ignored_not_counted(frame: str) -> None:
    out = parse_out(frame, loaded_meta())
    assert out.kind == "info" and not out.events and out.unpriced == 0
    # Through the session: no event, no dead letter (normal traffic, not an error).
    session = VenueSession(coinm.VENUE)
    res = session.process(RawFrame(coinm.ID, coinm.WS_URL, 1.0, frame))
    assert res.kind == "info" and res.events == [] and res.deadletter is None


def test_new_coinm_listing_without_metadata_is_unpriced_not_dropped() -> None:
    out = parse_out(force_order("NEWUSD_PERP", "BUY", "3", "1.5", T0), loaded_meta())
    (ev,) = out.events
    assert (ev.symbol, ev.base, ev.quote, ev.side) == ("NEWUSD_PERP", "NEW", "USD", "short")
    assert ev.notional_usd is None and out.unpriced == 1
    (fut,) = parse(force_order("NEWUSD_270326", "SELL", "3", "1.5", T0))
    assert fut.base == "NEW" and fut.notional_usd is None


def test_metadata_from_exchange_info() -> None:
    meta = loaded_meta(exchange_info_body([
        *[symbol_info(s, c) for s, c in (("BTCUSD_PERP", 100), ("ETHUSD_PERP", 10))],
        symbol_info("ZEROUSD_PERP", 0),  # no usable contract size
        symbol_info("ODDUSD_PERP", 10, margin="USDT"),  # not coin-margined
        symbol_info("BTCUSDT_PERP", 100, quote="USDT"),  # not quoted in USD
        {"symbol": "BROKEN"},
    ]))
    assert meta.get("BTCUSD_PERP") == Instrument("BTCUSD_PERP", "BTC", "USD", "inverse", 100.0)
    assert meta.get("ETHUSD_PERP") == Instrument("ETHUSD_PERP", "ETH", "USD", "inverse", 10.0)
    assert sorted(meta.instruments) == ["BTCUSD_PERP", "ETHUSD_PERP"]
    # Left out, a COIN-M-named symbol is still COIN-M, just unpriced.
    (ev,) = parse(force_order("ODDUSD_PERP", "SELL", "1", "5", T0), meta)
    assert ev.notional_usd is None


@pytest.mark.parametrize("body,reason", EXCHANGE_INFO_BAD_BODIES)
def test_bad_rest_bodies(body: str, reason: str) -> None:
    assert reason_of(coinm.load_rest, Metadata(), EXCHANGE_INFO, body) == reason


def test_control_frames_and_ping() -> None:
    assert parse_out(LIST_SUBSCRIPTIONS_REPLY).kind == "pong"
    assert reason_of(parse_out, ERROR_REPLY) == "venue_error"
    assert orjson.loads(coinm.VENUE.ping_message(7)) == {"method": "LIST_SUBSCRIPTIONS", "id": 7}


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1,2]", "unexpected_shape"),
    ('{"e":"aggTrade"}', "unexpected_shape"),
    ('{"e":"forceOrder"}', "unexpected_shape"),
    ('{"e":"forceOrder","o":{"S":"SELL"}}', "missing_field"),
    ('{"e":"forceOrder","o":{"s":"BTCUSD_PERP","S":"HOLD","q":"1","p":"1","T":1}}', "bad_side"),
    ('{"e":"forceOrder","o":{"s":"BTCUSD_PERP","S":"SELL","q":"x","p":"1","T":1}}', "bad_number"),
    ('{"e":"forceOrder","o":{"s":"BTCUSD_PERP","S":"SELL","q":"1","p":"0","T":1}}', "bad_number"),
    ('{"e":"forceOrder","o":{"s":"BTCUSD_PERP","S":"SELL","q":"1","p":"5"}}', "missing_field"),
    ('{"e":"forceOrder","o":{"s":"BTCUSD_PERP","S":"SELL","q":"1","p":"5","T":0}}', "invalid_event"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(coinm.parse, frame, coinm.WS_URL, 1.0, loaded_meta()) == reason


def test_event_id_is_stable_and_distinct_from_usdm() -> None:
    meta = loaded_meta()
    (a,) = parse(force_order("BTCUSD_PERP", "SELL", "5", "60000", T0), meta)
    (b,) = parse(force_order("BTCUSD_PERP", "SELL", "5", "60000", T0), meta)
    (c,) = parse(force_order("BTCUSD_PERP", "SELL", "6", "60000", T0), meta)
    assert a.id == b.id != c.id


def test_default_urls() -> None:
    (conn,) = coinm.connections(Metadata(), coinm.VENUE.default_urls)
    assert conn.url == "wss://dstream.binance.com/ws/!forceOrder@arr" and not conn.subscribe
    assert coinm.rest_urls(coinm.VENUE.default_urls) == [
        "https://dapi.binance.com/dapi/v1/exchangeInfo"]
    assert coinm.VENUE.sampled is True and coinm.VENUE.id == "binance-coinm"


async def test_collector_against_simulator() -> None:
    sim = BinanceCoinmSim()
    sim.rest_fail = 1
    async with HARNESS.collector(sim) as rig:
        assert sim.rest_hits == ["/dapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"]  # 503, retry
        assert sorted(rig.col.session.meta.instruments) == [
            "BTCUSD_261225", "BTCUSD_PERP", "ETHUSD_PERP", "SOLUSD_PERP"]
        # The exchangeInfo body is one "info" frame; the ignored USD-M order is the next.
        assert rig.frames("info") == 1
        await sim.push(force_order("BTCUSD_PERP", "SELL", "12", "60000", T0))
        # The same USD-M liquidation fstream also delivers: ignored here.
        await sim.push(usdm_sim.force_order("BTCUSDT", "SELL", "0.5", "60000", T0))
        await sim.push("{malformed")
        await rig.published(events=1, deadletters=1, also=lambda: rig.frames("info") == 2)
        await rig.pinged("LIST_SUBSCRIPTIONS", exact=False)
        assert rig.count("liqstress_source_up") == 1
        # Server-side disconnect: reconnect (the stream is in the URL, nothing to resend).
        await rig.reconnected()
        await sim.push(force_order("ETHUSD_PERP", "BUY", "40", "2500", T0 + 1000))
        await sim.push(force_order("NEWUSD_PERP", "SELL", "3", "2", T0 + 2000))
        await sim.wait_for(lambda: len(rig.sink.events) == 3)
    assert rig.outcome("symbol", "side", "notional_usd") == [
        ("BTCUSD_PERP", "long", pytest.approx(1200.0)),
        ("ETHUSD_PERP", "short", pytest.approx(400.0)),
        ("NEWUSD_PERP", "long", None)]
    assert rig.count("liqstress_unpriced_total") == 1
    rig.assert_recovered()
    assert rig.count("liqstress_deadletter_total", reason="malformed_json") == 1
    assert any(r.data == "{malformed" for r in rig.sink.raws)


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(BinanceCoinmSim())
