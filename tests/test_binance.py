"""Binance USD-M: parser on the documented payload, and the collector against the simulator."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from liqstress.metrics import Metrics
from liqstress.recording import RawFrame
from streams.collector import Collector
from streams.session import VenueSession
from streams.venues import binance
from streams.venues.base import FrameError, Metadata

from .sims.base import MemorySink, running
from .sims.binance import DOC_FRAME, BinanceSim, force_order


def parse(frame: object) -> list:
    text = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
    return list(binance.parse(text, binance.WS_URL, 1_700_000_000.0, Metadata()).events)


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
    with pytest.raises(FrameError) as err:
        binance.parse(frame, binance.WS_URL, 1.0, Metadata())
    assert err.value.reason == reason


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
    metrics = Metrics.create()
    sink = MemorySink()
    async with BinanceSim() as sim:
        col = Collector(binance.VENUE, sink, metrics, urls={"ws": sim.ws_url()},
                        ping_interval=0.2, pong_timeout=1.0, backoff_initial=0.05,
                        backoff_cap=0.2)
        async with running(col):
            await asyncio.wait_for(col.subscribed.wait(), 5)
            await sim.push(force_order("BTCUSDT", "SELL", "1", "50000", 1_700_000_000_000))
            await sim.push("{malformed")
            await sim.wait_for(lambda: len(sink.events) == 1 and len(sink.deadletters) == 1)
            # App-level liveness: LIST_SUBSCRIPTIONS is sent and answered.
            await sim.wait_for(lambda: any("LIST_SUBSCRIPTIONS" in m for m in sim.messages()))
            await sim.wait_for(lambda: metrics.registry.get_sample_value(
                "liqstress_source_frames_total", {"exchange": "binance", "kind": "pong"}) or 0 > 0)
            assert metrics.registry.get_sample_value("liqstress_source_up", {"exchange": "binance"}) == 1
            # Server-side disconnect: the collector reconnects and keeps receiving.
            await sim.disconnect_all()
            await sim.wait_for(lambda: sim.connections >= 2 and len(sim.clients) == 1)
            await sim.push(force_order("ETHUSDT", "BUY", "2", "3000", 1_700_000_001_000))
            await sim.wait_for(lambda: len(sink.events) == 2)
    assert [e.side for e in sink.events] == ["long", "short"]
    assert sink.deadletters[0]["reason"] == "malformed_json"
    assert metrics.registry.get_sample_value(
        "liqstress_source_reconnects_total", {"exchange": "binance"}) >= 1
    assert metrics.registry.get_sample_value(
        "liqstress_deadletter_total", {"exchange": "binance", "reason": "malformed_json"}) == 1
    # Every frame, good or bad, is kept raw.
    assert any(r.data == "{malformed" for r in sink.raws)


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    metrics = Metrics.create()
    sink = MemorySink()
    async with BinanceSim() as sim:
        sim.answer_pings = False
        col = Collector(binance.VENUE, sink, metrics, urls={"ws": sim.ws_url()},
                        ping_interval=0.1, pong_timeout=0.4, backoff_initial=0.05,
                        backoff_cap=0.1)
        async with running(col):
            await sim.wait_for(lambda: sim.connections >= 2, timeout=10)
    assert col.reconnects >= 1
    assert metrics.registry.get_sample_value("liqstress_source_up", {"exchange": "binance"}) == 0
