"""Deribit: liquidation flags inside trade prints (T / M / MT side logic), inverse USD vs linear
base units, JSON-RPC control frames (set_heartbeat, subscribe, test_request -> public/test), and
the collector against the simulator."""

from __future__ import annotations

import orjson
import pytest

from liqstress.streams.sims.deribit import (
    DOC_ERROR,
    DOC_FRAME,
    DOC_LIQUIDATION,
    HEARTBEAT,
    TEST_REQUEST,
    WS_PATH,
    DeribitSim,
    response,
    trade,
    trades,
)
from liqstress.streams.venues import deribit
from liqstress.streams.venues.base import Metadata

from .venue_harness import VenueHarness, reason_of

T0 = 1_789_670_000_000
BTC = "trades.future.BTC.100ms"
USDC = "trades.future.USDC.100ms"


HARNESS = VenueHarness(deribit)
parse_text, parse = HARNESS.out, HARNESS.events


def test_doc_trade_without_liquidation_is_ignored() -> None:
    out = parse_text(orjson.dumps(DOC_FRAME).decode())
    assert out.kind == "info" and out.events == ()


def test_doc_trade_flagged_maker_liquidated() -> None:
    (ev,) = parse(DOC_LIQUIDATION)
    # M: the maker was liquidated; the taker sold, so the maker BOUGHT: a short was closed.
    assert ev.side == "short"
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "deribit", "BTC-25SEP20", "BTC", "USD", "inverse")
    assert ev.notional_usd == pytest.approx(8940)  # inverse future: amount is USD
    assert ev.qty == pytest.approx(8940 / 8947)
    assert ev.price == pytest.approx(8947)
    assert ev.ts == pytest.approx(1590484255.886)
    assert ev.sampled is False


@pytest.mark.parametrize("flag,direction,expected", [
    ("T", "sell", ["long"]),  # the liquidated taker sold: a long was closed
    ("T", "buy", ["short"]),
    ("M", "buy", ["long"]),  # the taker bought from a liquidated long (maker sold)
    ("M", "sell", ["short"]),
    ("MT", "sell", ["long", "short"]),
    ("MT", "buy", ["short", "long"]),
])
def test_side_rule(flag: str, direction: str, expected: list[str]) -> None:
    evs = parse(trades(BTC, trade("BTC-PERPETUAL", direction, 1000, 60000, T0, "9", flag)))
    assert [e.side for e in evs] == expected


def test_mt_gives_two_events_with_distinct_ids_and_full_amount_each() -> None:
    long_, short = parse(trades(BTC, trade("BTC-PERPETUAL", "sell", 20000, 50000, T0, "77", "MT")))
    assert (long_.side, short.side) == ("long", "short")
    assert long_.id != short.id
    assert long_.notional_usd == short.notional_usd == pytest.approx(20000)
    # Ids come from trade_id (+ side): the same print seen again dedupes to the same ids.
    again = parse(trades(BTC, trade("BTC-PERPETUAL", "sell", 20000, 50000, T0, "77", "MT")))
    assert [e.id for e in again] == [long_.id, short.id]
    other = parse(trades(BTC, trade("BTC-PERPETUAL", "sell", 20000, 50000, T0, "78", "MT")))
    assert not {e.id for e in other} & {long_.id, short.id}


def test_inverse_perpetual_amount_is_usd() -> None:
    (ev,) = parse(trades(BTC, trade("BTC-PERPETUAL", "sell", 150000, 60000, T0, "1", "T")))
    assert (ev.market, ev.base, ev.quote, ev.side) == ("inverse", "BTC", "USD", "long")
    assert ev.notional_usd == pytest.approx(150000)  # never amount x price
    assert ev.qty == pytest.approx(2.5)
    assert ev.ts == pytest.approx(T0 / 1000)
    (eth,) = parse(trades("trades.future.ETH.100ms",
                          trade("ETH-27DEC26", "buy", 3000, 3000, T0, "2", "T")))
    assert (eth.market, eth.base, eth.side) == ("inverse", "ETH", "short")
    assert eth.notional_usd == pytest.approx(3000) and eth.qty == pytest.approx(1)


def test_linear_usdc_perpetual_amount_is_base() -> None:
    (ev,) = parse(trades(USDC, trade("BTC_USDC-PERPETUAL", "sell", 0.5, 60000, T0, "3", "T")))
    assert (ev.symbol, ev.market, ev.base, ev.quote, ev.side) == (
        "BTC_USDC-PERPETUAL", "linear", "BTC", "USDC", "long")
    assert ev.qty == pytest.approx(0.5)
    assert ev.notional_usd == pytest.approx(30000)
    (sol,) = parse(trades(USDC, trade("SOL_USDC-PERPETUAL", "buy", 40, 150, T0, "4", "M")))
    assert (sol.base, sol.side, sol.notional_usd) == ("SOL", "long", pytest.approx(6000))
    (fut,) = parse(trades(USDC, trade("ETH_USDC-27DEC26", "sell", 2, 3000, T0, "5", "T")))
    assert fut.market == "linear" and fut.notional_usd == pytest.approx(6000)


def test_linear_non_usd_quote_is_unpriced() -> None:
    out = parse_text(trades("trades.future.EURR.100ms",
                            trade("BTC_EURR-PERPETUAL", "sell", 1, 55000, T0, "6", "T")))
    (ev,) = out.events
    assert ev.qty == pytest.approx(1) and ev.notional_usd is None and out.unpriced == 1


def test_mixed_batch_counts_only_liquidations() -> None:
    out = parse_text(trades(BTC,
                            trade("BTC-PERPETUAL", "buy", 10, 60000, T0, "10"),
                            trade("BTC-PERPETUAL", "sell", 5000, 59990, T0 + 1, "11", "T"),
                            trade("BTC-PERPETUAL", "buy", 100, 60000, T0 + 2, "12"),
                            trade("BTC-27DEC26", "buy", 2000, 61000, T0 + 3, "13", "M")))
    assert out.kind == "data"
    assert [(e.symbol, e.side, e.notional_usd) for e in out.events] == [
        ("BTC-PERPETUAL", "long", pytest.approx(5000)), ("BTC-27DEC26", "long", pytest.approx(2000))]
    assert parse_text(trades(BTC, trade("BTC-PERPETUAL", "buy", 10, 1, T0, "14"))).kind == "info"


def test_control_frames() -> None:
    def kind(frame: object) -> str:
        return parse_text(frame).kind
    assert kind(response(deribit.SET_HEARTBEAT_ID, "ok")) == "ack"
    assert kind(response(deribit.SUBSCRIBE_ID, list(deribit.CHANNELS))) == "ack"
    assert kind(response(deribit.SUBSCRIBE_ID, [BTC])) == "ack"  # partial: what was accepted
    assert kind(response(1001, {"version": "1.2.26"})) == "pong"
    assert kind(response(deribit.TEST_REPLY_ID, {"version": "1.2.26"})) == "pong"
    assert kind(HEARTBEAT) == "info"
    ping = parse_text(orjson.dumps(TEST_REQUEST).decode())
    assert ping.kind == "ping"
    assert orjson.loads(ping.reply or "") == {"jsonrpc": "2.0", "id": deribit.TEST_REPLY_ID,
                                              "method": "public/test", "params": {}}
    for bad, reason in ((DOC_ERROR, "subscribe_error"),
                        (response(deribit.SUBSCRIBE_ID, []), "subscribe_error"),
                        ({**DOC_ERROR, "id": 1005}, "venue_error"),
                        ({k: v for k, v in DOC_ERROR.items() if k != "id"}, "venue_error")):
        assert reason_of(kind, bad) == reason


def test_subscribe_and_ping_messages() -> None:
    (conn,) = deribit.connections(Metadata(), deribit.VENUE.default_urls)
    assert conn.url == "wss://www.deribit.com/ws/api/v2"
    hb, sub = (orjson.loads(m) for m in conn.subscribe)
    assert hb == {"jsonrpc": "2.0", "id": 1, "method": "public/set_heartbeat",
                  "params": {"interval": deribit.HEARTBEAT_INTERVAL}}
    assert deribit.HEARTBEAT_INTERVAL >= 10  # Deribit's minimum
    assert sub["method"] == "public/subscribe"
    assert sub["params"]["channels"] == [
        "trades.future.BTC.100ms", "trades.future.ETH.100ms", "trades.future.USDC.100ms",
        "trades.future.USDT.100ms"]
    assert orjson.loads(deribit.VENUE.ping_message(4)) == {
        "jsonrpc": "2.0", "id": 1004, "method": "public/test", "params": {}}
    assert deribit.VENUE.rest_urls({}) == [] and deribit.VENUE.sampled is False


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"jsonrpc":"2.0"}', "unexpected_shape"),
    ('{"jsonrpc":"2.0","method":"subscription"}', "unexpected_shape"),
    ('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms","data":{}}}',
     "unexpected_channel"),
    ('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms","data":{}}}',
     "unexpected_shape"),
    ('{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.future.BTC.100ms","data":[1]}}',
     "unexpected_shape"),
    ('{"jsonrpc":"2.0","method":"private/whatever","params":{}}', "unexpected_shape"),
    (trades(BTC, trade("BTC-PERPETUAL", "sell", 10, 60000, T0, "1", "X")), "bad_side"),
    (trades(BTC, trade("BTC-PERPETUAL", "hold", 10, 60000, T0, "1", "T")), "bad_side"),
    (trades(BTC, trade("BTC-PERPETUAL", "sell", 0, 60000, T0, "1", "T")), "bad_number"),
    (trades(BTC, trade("BTC-PERPETUAL", "sell", 10, 0, T0, "1", "T")), "bad_number"),
    (trades(BTC, {**trade("BTC-PERPETUAL", "sell", 10, 60000, T0, "1", "T"), "amount": "x"}),
     "bad_number"),
    (trades(BTC, {k: v for k, v in trade("BTC-PERPETUAL", "sell", 10, 60000, T0, "1", "T").items()
                  if k != "timestamp"}), "missing_field"),
    (trades(BTC, {k: v for k, v in trade("BTC-PERPETUAL", "sell", 10, 60000, T0, "1", "T").items()
                  if k != "trade_id"}), "missing_field"),
    (trades(BTC, {k: v for k, v in trade("BTC-PERPETUAL", "sell", 10, 60000, T0, "1", "T").items()
                  if k != "instrument_name"}), "missing_field"),
    (trades("trades.option.BTC.100ms", trade("BTC-27DEC26-60000-C", "sell", 1, 0.05, T0, "1", "T")),
     "unsupported_instrument"),
    (trades(BTC, trade("BTC-FS-27DEC26_PERP", "sell", 10, 60000, T0, "1", "T")),
     "unsupported_instrument"),
    (trades(BTC, trade("_USDC-PERPETUAL", "sell", 10, 60000, T0, "1", "T")),
     "unsupported_instrument"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(parse_text, frame) == reason


async def test_collector_against_simulator() -> None:
    async with HARNESS.collector(DeribitSim()) as rig:
        sim = rig.sim
        assert sim.heartbeat_intervals == [deribit.HEARTBEAT_INTERVAL]
        assert sim.subscribed == [list(deribit.CHANNELS)]
        assert rig.up() == 1
        # The server's test_request is answered with public/test.
        await sim.send_test_request()
        await sim.wait_for(lambda: deribit.TEST_REPLY in sim.messages(WS_PATH))
        assert rig.frames("ping") == 1
        # Our own app ping (public/test) is answered: the pong.
        await sim.wait_for(lambda: rig.frames("pong") >= 2)
        await sim.push(trades(BTC,
                              trade("BTC-PERPETUAL", "sell", 30000, 60000, T0, "101", "T"),
                              trade("BTC-PERPETUAL", "buy", 10, 60000, T0, "102")))
        await sim.push(trades(USDC, trade("ETH_USDC-PERPETUAL", "sell", 2, 3000, T0, "103", "MT")))
        await sim.push("{malformed")
        await rig.published(events=3, deadletters=1)
        # Server-side disconnect: reconnect, heartbeat and subscribe again.
        await rig.reconnected(also=lambda: len(sim.subscribed) == 2
                              and len(sim.heartbeat_intervals) == 2)
        await sim.wait_for(lambda: rig.up() == 1)
        await sim.push(trades(BTC, trade("BTC-PERPETUAL", "buy", 7000, 61000, T0 + 5, "104", "M")))
        await sim.wait_for(lambda: len(rig.sink.events) == 4)
    assert rig.outcome("symbol", "side", "market", "notional_usd") == [
        ("BTC-PERPETUAL", "long", "inverse", pytest.approx(30000)),
        ("ETH_USDC-PERPETUAL", "long", "linear", pytest.approx(6000)),
        ("ETH_USDC-PERPETUAL", "short", "linear", pytest.approx(6000)),
        ("BTC-PERPETUAL", "long", "inverse", pytest.approx(7000))]
    rig.assert_recovered()


async def test_periodic_test_requests_keep_the_connection() -> None:
    """Deribit closes a connection whose test_request goes unanswered; ours are answered, so
    the connection lives through many of them."""
    sim = DeribitSim()
    sim.test_request_every = 0.1
    sim.test_request_grace = 0.5
    async with HARNESS.collector(sim) as rig:
        await sim.wait_for(lambda: sim.test_replies >= 10, timeout=10)
        assert sim.connections == 1 and rig.up() == 1


async def test_failed_subscribe_is_dead_lettered_and_never_up() -> None:
    await HARNESS.check_subscribe_refused(DeribitSim(), settle=0.2)


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(DeribitSim())
