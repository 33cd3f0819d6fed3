"""Gate futures: parser on the documented and live (#132) payloads (sign of size -> side,
contracts × quanto_multiplier -> USD, array and bare-object results, time fields), contract
metadata, and the collector against the simulator."""

from __future__ import annotations

import time
from types import SimpleNamespace

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.gate import (
    DOC_ACK,
    DOC_ERROR,
    DOC_FRAME,
    ISSUE_FRAMES,
    WS_PATH,
    GateSim,
    contracts_body,
    item,
    liquidations,
    pong,
)
from liqstress.streams.venues import gate
from liqstress.streams.venues.base import Instrument, Metadata

from .venue_harness import PINGS, VenueHarness, reason_of

T0 = 1_789_670_000_000
HARNESS = VenueHarness(gate)
parse_out, parse = HARNESS.out, HARNESS.events


def loaded_meta() -> Metadata:
    meta = Metadata()
    gate.load_rest(meta, gate.rest_urls({})[0], contracts_body())
    return meta


def test_doc_payload_array_negative_size_is_short_in_contracts() -> None:
    evs = parse(DOC_FRAME, loaded_meta())
    assert [e.side for e in evs] == ["short", "short"]  # negative size: a short position
    first = evs[0]
    assert (first.exchange, first.symbol, first.base, first.quote, first.market) == (
        "gate", "BTC_USDT", "BTC", "USDT", "linear")
    assert first.qty == pytest.approx(124.5 * 0.0001)  # contracts x quanto_multiplier
    assert first.notional_usd == pytest.approx(124.5 * 0.0001 * 215.1)
    assert first.price == pytest.approx(215.1)
    assert first.ts == pytest.approx(1541486601.123)  # the item's time (ms), not the push time
    assert evs[1].ts == pytest.approx(1541486601.456)
    assert evs[1].notional_usd == pytest.approx(10.5 * 0.0001 * 215.2)
    assert all(e.sampled for e in evs)
    assert evs[0].id != evs[1].id


def test_positive_size_is_a_long_position() -> None:
    assert gate.POSITIVE_SIZE_IS_LONG is True  # the decided rule (REST liq_orders semantics)
    (ev,) = parse(liquidations(item("ETH_USDT", 300, "3000", T0)), loaded_meta())
    assert ev.side == "long"
    assert ev.qty == pytest.approx(3.0)  # 300 contracts x 0.01 ETH
    assert ev.notional_usd == pytest.approx(9000)
    (short,) = parse(liquidations(item("ETH_USDT", -300, "3000", T0)), loaded_meta())
    assert short.side == "short" and short.notional_usd == pytest.approx(9000)


def test_live_bare_object_frames_from_issue_132() -> None:
    outs = [parse_out(f) for f in ISSUE_FRAMES]
    evs = [e for o in outs for e in o.events]
    assert [(e.symbol, e.side) for e in evs] == [
        ("HEI_USDT", "short"), ("HEI_USDT", "short"), ("LAB_USDT", "short")]
    assert [e.ts for e in evs] == pytest.approx([1786327033.531, 1786327035.701, 1786327040.872])
    # No multiplier for these contracts: never |size| x price, which reads contracts as coins.
    assert all(e.qty is None and e.notional_usd is None for e in evs)
    assert [o.unpriced for o in outs] == [1, 1, 1]
    assert (evs[0].base, evs[0].quote, evs[0].price) == ("HEI", "USDT", pytest.approx(0.13827))


def test_bare_object_and_array_give_the_same_event() -> None:
    it = item("BTC_USDT", "-2500", "61000", T0)
    (a,) = parse(liquidations(it), loaded_meta())
    (b,) = parse(liquidations(it, bare=True), loaded_meta())
    assert a == b
    assert a.notional_usd == pytest.approx(2500 * 0.0001 * 61000)


def test_batched_array_of_several_contracts() -> None:
    frame = liquidations(item("BTC_USDT", 1000, "60000", T0), item("BTC_USDT", -200, "60010", T0 + 3),
                         item("SOL_USDT", "12.5", "150", T0 + 7), item("NEW_USDT", 40, "2", T0 + 9))
    out = parse_out(frame, loaded_meta())
    assert [(e.symbol, e.side) for e in out.events] == [
        ("BTC_USDT", "long"), ("BTC_USDT", "short"), ("SOL_USDT", "long"), ("NEW_USDT", "long")]
    assert [e.notional_usd for e in out.events[:3]] == pytest.approx([6000, 1200.2, 1875])
    assert out.events[3].notional_usd is None and out.unpriced == 1


@pytest.mark.parametrize("fields,expected", [
    ({"time": T0 + 5, "time_ms": T0 + 7}, (T0 + 7) / 1000),   # time_ms preferred
    ({"time": T0 + 5}, (T0 + 5) / 1000),                       # time in ms (current doc)
    ({"time": 1_789_670_000}, 1_789_670_000.0),                # time in seconds (older doc)
    ({}, (T0 + 900) / 1000),                                   # the frame's time_ms as fallback
])
def test_event_time(fields: dict, expected: float) -> None:
    it = {"contract": "BTC_USDT", "size": 10, "price": "60000", **fields}
    frame = {"time": (T0 + 900) // 1000, "time_ms": T0 + 900, "channel": gate.CHANNEL,
             "event": "update", "result": [it]}
    (ev,) = parse(frame, loaded_meta())
    assert ev.ts == pytest.approx(expected)


def test_contract_metadata() -> None:
    meta = loaded_meta()
    assert meta.get("BTC_USDT") == Instrument("BTC_USDT", "BTC", "USDT", "linear", 0.0001)
    assert meta.get("DOGE_USDT").contract_value == 10.0  # type: ignore[union-attr]
    odd = Metadata()
    gate.load_rest(odd, gate.rest_urls({})[0], orjson.dumps([
        {"name": "A_USDT", "type": "direct", "quanto_multiplier": "0"},
        {"name": "B_USDT", "type": "direct"},
        {"name": "C_USDT", "type": "inverse", "quanto_multiplier": "1"},
        {"name": "D_USDT", "quanto_multiplier": "0.5"},
        {"name": "NOUNDERSCORE", "type": "direct", "quanto_multiplier": "1"},
        "junk",
    ]).decode())
    assert sorted(odd.instruments) == ["D_USDT"]


@pytest.mark.parametrize("body,reason", [
    ('{"label":"TOO_MANY_REQUESTS","message":"Request Rate limit Exceeded"}', "rest_error"),
    ('{"contracts":[]}', "unexpected_shape"),
    ("<html>", "malformed_json"),
])
def test_rest_errors(body: str, reason: str) -> None:
    assert reason_of(gate.load_rest, Metadata(), gate.rest_urls({})[0], body) == reason


def test_control_frames() -> None:
    assert parse_out(pong()).kind == "pong"
    assert parse_out(DOC_ACK).kind == "ack"
    brief_ack = {"channel": "futures.public_liquidates", "event": "subscribe",
                 "result": {"status": "success"}}
    assert parse_out(brief_ack).kind == "ack"
    assert parse_out({**DOC_ACK, "event": "unsubscribe"}).kind == "info"
    for bad in (DOC_ERROR, {**DOC_ACK, "result": {"status": "failed"}},
                {**DOC_ACK, "channel": "futures.trades"},
                {"time": 1, "channel": "", "event": "error", "error": {"code": 1, "message": "x"}}):
        assert reason_of(parse_out, bad) == "subscribe_error"


def test_subscribe_is_stamped_when_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    (conn,) = gate.connections(Metadata(), gate.VENUE.default_urls)
    assert conn.url == "wss://fx-ws.gateio.ws/v4/ws/usdt" and len(conn.subscribe) == 1
    clock = SimpleNamespace(time=lambda: 1_789_670_000.7)
    monkeypatch.setattr(gate, "time", clock)
    assert [orjson.loads(m) for m in conn.subscribe] == [{
        "time": 1_789_670_000, "channel": "futures.public_liquidates", "event": "subscribe",
        "payload": ["!all"]}]
    clock.time = lambda: 1_789_680_000.0  # a reconnect hours later: a fresh time, same list
    assert orjson.loads(conn.subscribe[0])["time"] == 1_789_680_000
    assert orjson.loads(list(conn.subscribe)[0])["time"] == 1_789_680_000
    assert orjson.loads(gate.VENUE.ping_message(3)) == {"time": 1_789_680_000,
                                                       "channel": "futures.ping"}
    with pytest.raises(IndexError):
        conn.subscribe[1]
    assert gate.rest_urls({"rest": "http://x/"}) == ["http://x/api/v4/futures/usdt/contracts"]


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"channel":"futures.public_liquidates","event":"all","result":[]}', "unexpected_shape"),
    ('{"channel":"futures.trades","event":"update","result":[]}', "unexpected_channel"),
    ('{"channel":"futures.public_liquidates","event":"update","result":"x"}', "unexpected_shape"),
    ('{"channel":"futures.public_liquidates","event":"update","result":[1]}', "unexpected_shape"),
    ('{"channel":"futures.public_liquidates","event":"update","result":{"size":1,"price":"1","time":1}}',
     "missing_field"),
    (liquidations(item("BTC_USDT", 0, "60000", T0)), "bad_side"),
    (liquidations(item("BTC_USDT", "x", "60000", T0)), "bad_number"),
    (liquidations(item("BTC_USDT", 5, "0", T0)), "bad_number"),
    (liquidations(item("BTC_USDT", 5, "-1", T0)), "bad_number"),
    (liquidations(item("BTCUSDT", 5, "60000", T0)), "unknown_symbol"),
    ('{"channel":"futures.public_liquidates","event":"update","result":{"contract":"BTC_USDT",'
     '"size":1,"price":"1"}}', "missing_field"),
    ('{"channel":"futures.public_liquidates","event":"update","result":{"contract":"BTC_USDT",'
     '"size":1,"price":"1","time":-5}}', "bad_timestamp"),
    ('{"channel":"futures.public_liquidates","event":"update","error":{"code":3,"message":"x"}}',
     "venue_error"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(gate.parse, frame, gate.WS_URL, 1.0, loaded_meta()) == reason


def test_session_counts_unpriced_and_nothing_is_a_snapshot() -> None:
    session = VenueSession(gate.VENUE)
    url = gate.rest_urls({})[0]
    assert session.process(RawFrame("gate", url, 1.0, contracts_body())).kind == "info"
    assert url in session.meta.loaded
    assert session.process(RawFrame("gate", gate.WS_URL, 2.0, orjson.dumps(DOC_ACK).decode())).kind == "ack"
    out = session.process(RawFrame("gate", gate.WS_URL, T0 / 1000 + 1, liquidations(
        item("BTC_USDT", -100, "60000", T0), item("ZZZ_USDT", 5, "1", T0))))
    assert len(out.events) == 2 and out.snapshot_dropped == 0 and out.unpriced == 1


def _now_ms() -> int:
    return int(time.time() * 1000)


async def test_collector_against_simulator() -> None:
    sim = GateSim()
    sim.rest_fail = 1
    async with HARNESS.collector(sim) as rig:
        assert sim.rest_hits == ["/api/v4/futures/usdt/contracts"] * 2  # 503 retried
        assert rig.col.session.meta.get("ETH_USDT").contract_value == 0.01  # type: ignore[union-attr]
        (sub,) = sim.subscribes
        assert (sub["channel"], sub["event"], sub["payload"]) == (
            "futures.public_liquidates", "subscribe", ["!all"])
        assert abs(sub["time"] - time.time()) < 5
        await sim.push(liquidations(item("BTC_USDT", 5000, "60000", _now_ms()),
                                    item("ETH_USDT", -100, "3000", _now_ms())))
        await sim.push(liquidations(item("SOL_USDT", 20, "150", _now_ms()), bare=True))
        await sim.push("{malformed")
        await rig.published(events=3, deadletters=1)
        await rig.pinged('"futures.ping"', WS_PATH, exact=False)
        assert rig.up() == 1
        # Server-side disconnect: reconnect and resubscribe with a freshly stamped message.
        await rig.reconnected(also=lambda: len(sim.subscribes) == 2)
        await sim.wait_for(lambda: rig.up() == 1)
        assert sim.subscribes[1]["time"] >= sub["time"]
        await sim.push(liquidations(item("DOGE_USDT", -1000, "0.2", _now_ms()),
                                    item("NEW_USDT", 10, "3", _now_ms())))
        await sim.wait_for(lambda: len(rig.sink.events) == 5)
    assert rig.outcome("symbol", "side", "notional_usd") == [
        ("BTC_USDT", "long", pytest.approx(30000)),
        ("ETH_USDT", "short", pytest.approx(3000)),
        ("SOL_USDT", "long", pytest.approx(3000)),
        ("DOGE_USDT", "short", pytest.approx(2000)),
        ("NEW_USDT", "long", None)]
    assert rig.value("liqstress_unpriced_total") == 1
    rig.assert_recovered()


async def test_subscribe_error_is_a_dead_letter_and_the_source_stays_down() -> None:
    await HARNESS.check_subscribe_refused(GateSim(), lambda n: n == 1, settle=0.3,
                                          timing=PINGS)


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(GateSim())
