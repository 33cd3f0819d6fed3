"""Bitget UTA: parser on the sample payload (position side, amount in QUOTE -> notional),
every instType, snapshot frames, and the collector against the simulator."""

from __future__ import annotations

import time

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.bitget import (
    DOC_ACK,
    DOC_ERROR,
    SAMPLE_FRAME,
    WS_PATH,
    BitgetSim,
    entry,
    liquidations,
    stale_snapshot,
)
from liqstress.streams.venues import bitget
from liqstress.streams.venues.base import Metadata

from .venue_harness import PINGS, VenueHarness, reason_of

T0 = 1_789_670_000_000
HARNESS = VenueHarness(bitget)
parse_out, parse = HARNESS.out, HARNESS.events


def test_sample_payload_buy_is_long_and_amount_is_the_quote_notional() -> None:
    (ev,) = parse(SAMPLE_FRAME)
    assert ev.side == "long"  # side is the POSITION side: buy = a long was liquidated
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "bitget", "BTCUSDT", "BTC", "USDT", "linear")
    # The unit decision, pinned: amount is QUOTE. 150000 USDT at 60000 is 2.5 BTC, a plausible
    # liquidation; read as base it would be 150000 BTC x 60000 = $9e9 in one event.
    assert ev.notional_usd == pytest.approx(150_000)
    assert ev.qty == pytest.approx(2.5)
    assert ev.notional_usd != pytest.approx(150_000 * 60_000)
    assert ev.price == pytest.approx(60_000)
    assert ev.ts == pytest.approx(1_791_500_000.0)
    assert ev.sampled is True


@pytest.mark.parametrize("side,expected", [("buy", "long"), ("sell", "short"),
                                           ("Buy", "long"), ("SELL", "short")])
def test_side_is_the_position_side(side: str, expected: str) -> None:
    (ev,) = parse(liquidations(entry("ETHUSDT", side, "9000", "3000", T0)))
    assert ev.side == expected
    assert ev.notional_usd == pytest.approx(9000) and ev.qty == pytest.approx(3.0)


def test_coin_futures_are_inverse_and_amount_is_usd() -> None:
    (ev,) = parse(liquidations(entry("BTCUSD", "sell", "25000", "62500", T0),
                               inst_type="coin-futures"))
    assert (ev.base, ev.quote, ev.market, ev.side) == ("BTC", "USD", "inverse", "short")
    assert ev.notional_usd == pytest.approx(25_000)
    assert ev.qty == pytest.approx(0.4)
    (dated,) = parse(liquidations(entry("ETHUSDZ26", "buy", "1000", "2500", T0),
                                  inst_type="coin-futures"))
    assert (dated.base, dated.quote, dated.market) == ("ETH", "USD", "inverse")


def test_usdc_futures_symbols() -> None:
    evs = parse(liquidations(entry("BTCPERP", "buy", "6000", "60000", T0),
                             entry("ETHUSDC", "sell", "3000", "3000", T0 + 4),
                             inst_type="usdc-futures"))
    assert [(e.base, e.quote, e.market, e.side) for e in evs] == [
        ("BTC", "USDC", "linear", "long"), ("ETH", "USDC", "linear", "short")]
    assert [e.notional_usd for e in evs] == pytest.approx([6000, 3000])


def test_several_entries_and_time_fallback() -> None:
    frame = {"action": "update", "arg": {"instType": "USDT-FUTURES", "topic": "liquidation"},
             "data": [entry("BTCUSDT", "buy", "120000", "60000", T0),
                      {"symbol": "SOLUSDT", "side": "sell", "price": "150", "amount": "1500"}],
             "ts": T0 + 300}
    out = parse_out(frame)
    assert [(e.symbol, e.side) for e in out.events] == [("BTCUSDT", "long"), ("SOLUSDT", "short")]
    assert [e.ts for e in out.events] == pytest.approx([T0 / 1000, (T0 + 300) / 1000])
    assert [e.qty for e in out.events] == pytest.approx([2.0, 10.0])
    assert out.unpriced == 0 and not out.snapshot


def test_snapshot_action_is_history_not_new_liquidations() -> None:
    out = parse_out(stale_snapshot())
    assert out.snapshot is True and len(out.events) == 2
    session = VenueSession(bitget.VENUE)
    assert session.process(RawFrame("bitget", bitget.WS_URL, 1.0,
                                    orjson.dumps(DOC_ACK).decode())).kind == "ack"
    dropped = session.process(RawFrame("bitget", bitget.WS_URL, 1.1, stale_snapshot()))
    assert dropped.events == [] and dropped.snapshot_dropped == 2
    kept = session.process(RawFrame("bitget", bitget.WS_URL, T0 / 1000 + 1, liquidations(
        entry("BTCUSDT", "sell", "60000", "60000", T0))))
    assert [e.side for e in kept.events] == ["short"] and kept.snapshot_dropped == 0


def test_control_frames() -> None:
    assert parse_out("pong").kind == "pong"
    assert parse_out(DOC_ACK).kind == "ack"
    assert parse_out({"event": "unsubscribe", "arg": DOC_ACK["arg"]}).kind == "info"
    assert reason_of(parse_out, DOC_ERROR) == "subscribe_error"


def test_subscribe_and_ping_messages() -> None:
    (conn,) = bitget.connections(Metadata(), bitget.VENUE.default_urls)
    assert conn.url == "wss://ws.bitget.com/v3/ws/public"
    assert [orjson.loads(m) for m in conn.subscribe] == [
        {"op": "subscribe", "args": [{"instType": t, "topic": "liquidation"}]}
        for t in ("usdt-futures", "coin-futures", "usdc-futures")]
    assert bitget.VENUE.ping_message(1) == "ping" and bitget.VENUE.ping_interval <= 30
    assert bitget.rest_urls({}) == [] and bitget.VENUE.sampled is True


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"arg":{"instType":"usdt-futures","topic":"liquidation"}}', "unexpected_shape"),
    ('{"arg":{"instType":"usdt-futures","topic":"ticker"},"data":[]}', "unexpected_channel"),
    ('{"arg":{"instType":"spot","topic":"liquidation"},"data":[]}', "unsupported_instrument"),
    ('{"arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[1]}', "unexpected_shape"),
    ('{"arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[{"side":"buy"}]}',
     "missing_field"),
    (liquidations(entry("BTCUSDT", "long", "1", "1", T0)), None),
    (liquidations(entry("BTCUSDT", "hold", "1", "1", T0)), "bad_side"),
    (liquidations(entry("BTCUSDT", "buy", "x", "1", T0)), "bad_number"),
    (liquidations(entry("BTCUSDT", "buy", "-5", "1", T0)), "bad_number"),
    (liquidations(entry("BTCUSDT", "buy", "5", "0", T0)), "bad_number"),
    (liquidations(entry("BTCEUR", "buy", "5", "1", T0)), "unknown_symbol"),
    (liquidations(entry("BTCUSDT", "buy", "5", "1", T0), inst_type="coin-futures"),
     "unknown_symbol"),
    (liquidations(entry("BTCUSDT", "buy", "5", "1", T0), inst_type="usdc-futures"),
     "unknown_symbol"),
    ('{"arg":{"instType":"usdt-futures","topic":"liquidation"},"data":[{"symbol":"BTCUSDT",'
     '"side":"buy","price":"1","amount":"1"}]}', "missing_field"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str | None) -> None:
    if reason is None:  # "long" is accepted as a position side too
        assert parse(frame)[0].side == "long"
        return
    assert reason_of(bitget.parse, frame, bitget.WS_URL, 1.0, Metadata()) == reason


def _now_ms() -> int:
    return int(time.time() * 1000)


async def test_collector_against_simulator() -> None:
    sim = BitgetSim()
    sim.send_snapshot = True
    async with HARNESS.collector(sim) as rig:
        assert [a["instType"] for a in sim.subscribed] == [
            "usdt-futures", "coin-futures", "usdc-futures"]
        # A snapshot after each ack is history: dropped, never published.
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total") == 6)
        await sim.push(liquidations(entry("BTCUSDT", "buy", "120000", "60000", _now_ms())))
        await sim.push(liquidations(entry("BTCUSD", "sell", "5000", "60000", _now_ms()),
                                    inst_type="coin-futures"))
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=1)
        await rig.pinged("ping", WS_PATH)
        assert rig.up() == 1
        # Server-side disconnect (Bitget also cuts every connection at 24 h): reconnect,
        # resubscribe all three instTypes, drop the replayed snapshots again.
        await rig.reconnected(also=lambda: len(sim.subscribed) == 6)
        await sim.wait_for(lambda: rig.value("liqstress_snapshot_dropped_total") == 12)
        await sim.push(liquidations(entry("ETHPERP", "sell", "3000", "3000", _now_ms()),
                                    inst_type="usdc-futures"))
        await sim.wait_for(lambda: len(rig.sink.events) == 3)
    assert rig.outcome("symbol", "market", "side", "notional_usd") == [
        ("BTCUSDT", "linear", "long", pytest.approx(120000)),
        ("BTCUSD", "inverse", "short", pytest.approx(5000)),
        ("ETHPERP", "linear", "short", pytest.approx(3000))]
    rig.assert_recovered()


async def test_subscribe_errors_are_dead_letters_and_the_source_stays_down() -> None:
    await HARNESS.check_subscribe_refused(BitgetSim(), lambda n: n == 3, settle=0.3,
                                          timing=PINGS)


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(BitgetSim())
