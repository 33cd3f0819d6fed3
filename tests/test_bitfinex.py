"""Bitfinex: the ``status``/``liq:global`` feed. Real frames (tardis-node, bitfinex-api-go) pin
the side rule (sign of AMOUNT = position), the price (index 11, never BASE_PRICE) and one event
per position (the IS_MATCH=0 trigger; match rows are info); the collector runs against the
simulator (chanId routing, pings vs heartbeats, refused subscribe, the 20051 restart)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.bitfinex import (
    APIGO_INFO,
    APIGO_SNAPSHOT,
    APIGO_UPDATE,
    DOC_ACK,
    DOC_PING,
    DOC_PONG,
    DOC_ROW,
    FIRST_CHAN_ID,
    INFO_MAINTENANCE_END,
    INFO_MAINTENANCE_START,
    INFO_RESTART,
    SUBSCRIBE_FAILED,
    TARDIS_ACK,
    TARDIS_BTC_TRIGGER,
    TARDIS_ETH_MATCH,
    TARDIS_ETH_TRIGGER,
    TARDIS_HB,
    UNKNOWN_EVENT,
    BitfinexSim,
    frame,
    heartbeat,
    row,
    update,
)
from liqstress.streams.venues import bitfinex as bf
from liqstress.streams.venues.base import Metadata

from .venue_harness import VenueHarness, as_text, reason_of, rejected_of

HARNESS = VenueHarness(bf)
parse_text, parse = HARNESS.out, HARNESS.events
T0 = 1_789_670_000_000
CHAN = 91684


def as_trigger(captured: list[Any], price: float | None = None) -> list[Any]:
    """A captured row turned into a trigger (IS_MATCH 0), optionally with another index 11."""
    out = [*captured]
    out[8] = 0
    if price is not None:
        out[11] = price
    return out


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- real captures -------------------------------------------------------------------------

def test_captured_btc_trigger_is_a_long_priced_at_its_liquidation_price() -> None:
    (ev,) = parse(TARDIS_BTC_TRIGGER)
    assert ev.side == "long"  # AMOUNT +0.00268657
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "bitfinex", "tBTCF0:USTF0", "BTC", "USDT", "linear")
    assert ev.price == 9080.0  # index 11; BASE_PRICE (the 9135.97 entry) is never the price
    assert ev.qty == pytest.approx(0.00268657)
    assert ev.notional_usd == pytest.approx(0.00268657 * 9080)  # 24.39 USD
    assert ev.ts == pytest.approx(1593522802.742)
    assert ev.sampled is False


def test_the_recorders_suffixes_are_ignored() -> None:
    """Fields appended to a frame (the ``seq, ts`` of the conf flags, tardis's storage
    suffix) change nothing: the tardis capture verbatim, with and without them."""
    wire = TARDIS_BTC_TRIGGER[:2]
    assert parse(wire) == parse(TARDIS_BTC_TRIGGER) == parse(
        [*TARDIS_BTC_TRIGGER, "liquidations", "global"])


def test_captured_eth_position_trigger_and_match_never_count_twice() -> None:
    # The match row (a partial execution at 235.52) arrived first: info, not an event.
    out = parse_text(TARDIS_ETH_MATCH)
    assert out.kind == "info" and out.events == ()
    # The trigger carries the whole position but no liquidation price, and BASE_PRICE is the
    # entry: it cannot be priced, so it is a dead letter, never an event priced at the entry.
    out = parse_text(TARDIS_ETH_TRIGGER)
    assert out.events == () and rejected_of(parse_text, TARDIS_ETH_TRIGGER) == [
        "no_liquidation_price"]
    # Beside a priced position in one frame: that one still counts.
    priced = as_trigger(TARDIS_ETH_TRIGGER[1][0], price=235.52)
    both = parse_text([TARDIS_ETH_TRIGGER[0], [TARDIS_ETH_TRIGGER[1][0], priced]])
    assert [e.price for e in both.events] == [235.52]
    assert [r for r, _ in both.rejected] == ["no_liquidation_price"]


def test_one_event_per_position_is_the_trigger() -> None:
    """The captured ETH position with a liquidation price on its trigger (as the captured BTC
    trigger has): the trigger is the one event, for the whole -8.6007, whatever order the rows
    arrive in; the match row adds nothing."""
    trigger = [TARDIS_ETH_TRIGGER[0], [as_trigger(TARDIS_ETH_TRIGGER[1][0], price=235.52)]]
    events = [e for f in (TARDIS_ETH_MATCH, trigger) for e in parse(f)]
    (ev,) = events
    assert (ev.side, ev.qty, ev.price) == ("short", pytest.approx(8.6007), 235.52)
    assert ev.notional_usd == pytest.approx(8.6007 * 235.52)
    assert ev.ts == pytest.approx(1594036710.534)  # the trigger's time, not the match's
    # Both rows in one frame: still one event.
    (both,) = parse([907, [TARDIS_ETH_MATCH[1][0], trigger[1][0]]])
    assert both == ev


def test_apigo_frames_both_shapes_are_match_rows() -> None:
    for captured in (APIGO_SNAPSHOT, APIGO_UPDATE):
        out = parse_text(captured)
        assert out.kind == "info" and out.events == ()
    # As triggers, the list and the one-row shape give the same long event.
    (listed,) = parse([APIGO_SNAPSHOT[0], [as_trigger(APIGO_SNAPSHOT[1][0])]])
    (single,) = parse([APIGO_UPDATE[0], as_trigger(APIGO_UPDATE[1])])
    assert listed == single
    assert (listed.side, listed.price, listed.qty) == ("long", 34281.0, pytest.approx(0.12173))
    assert listed.notional_usd == pytest.approx(0.12173 * 34281)


def test_doc_example_margin_row() -> None:
    """ws-public-status example (doc, no capture): a match row of a short on a margin pair."""
    out = parse_text([CHAN, [DOC_ROW]])
    assert out.kind == "info" and out.events == ()
    (ev,) = parse([CHAN, [as_trigger(DOC_ROW)]])
    assert (ev.symbol, ev.base, ev.quote, ev.market, ev.side) == (
        "tBSVUSD", "BSV", "USD", "spot", "short")
    assert ev.notional_usd == pytest.approx(2.62932 * 112.27)
    assert ev.ts == pytest.approx(1574697680.8282002)  # the fractional ms as printed


def test_the_sign_of_amount_is_the_position_in_every_real_row() -> None:
    """Evidence for the side rule: in every priced real (and doc) row, a positive AMOUNT was
    liquidated BELOW its entry (a long), a negative one ABOVE it (a short)."""
    rows = [TARDIS_BTC_TRIGGER[1][0], TARDIS_ETH_MATCH[1][0], APIGO_UPDATE[1], DOC_ROW]
    for r in rows:
        amount, entry, price = r[5], r[6], r[11]
        assert (amount > 0) == (price < entry), r
        (ev,) = parse([CHAN, [as_trigger(r)]])
        assert ev.side == ("long" if amount > 0 else "short")


# ---- rules ---------------------------------------------------------------------------------

def test_long_and_short_with_usd_notional() -> None:
    (long_,) = parse(frame(CHAN, row(1, T0, "tBTCF0:USTF0", 0.5, 60000.0)))
    (short,) = parse(frame(CHAN, row(2, T0, "tETHF0:USTF0", -3.0, 3000.0)))
    assert (long_.side, long_.qty, long_.notional_usd) == ("long", 0.5, 30000.0)
    assert (short.side, short.qty, short.notional_usd) == ("short", 3.0, 9000.0)
    assert long_.ts == short.ts == pytest.approx(T0 / 1000)


def test_base_price_is_never_used() -> None:
    a = parse(frame(CHAN, row(3, T0, "tBTCF0:USTF0", 1.0, 60000.0, base_price=70000.0)))
    b = parse(frame(CHAN, row(3, T0, "tBTCF0:USTF0", 1.0, 60000.0, base_price=1.0)))
    assert a == b and a[0].notional_usd == 60000.0 and a[0].price == 60000.0


@pytest.mark.parametrize(("symbol", "base", "quote", "market", "priced"), [
    ("tBTCF0:USTF0", "BTC", "USDT", "linear", True),
    ("tBTCDOMF0:USTF0", "BTCDOM", "USDT", "linear", True),
    ("tEURF0:USTF0", "EUR", "USDT", "linear", True),
    ("tBTCF0:EUTF0", "BTC", "EURT", "linear", False),  # EURt-margined: no EUR rate here
    ("tBTCUSD", "BTC", "USD", "spot", True),
    ("tBTCUST", "BTC", "USDT", "spot", True),
    ("tDOGE:USD", "DOGE", "USD", "spot", True),
    ("tETHBTC", "ETH", "BTC", "spot", False),
    ("tBTCEUR", "BTC", "EUR", "spot", False),
    ("tBTCUDC", "BTC", "USDC", "spot", False),  # issue 14 values USD and USDt quotes only
])
def test_symbols_and_usd_valuation(symbol: str, base: str, quote: str, market: str,
                                   priced: bool) -> None:
    out = parse_text(frame(CHAN, row(4, T0, symbol, -2.0, 50.0)))
    (ev,) = out.events
    assert (ev.base, ev.quote, ev.market, ev.qty, ev.price) == (base, quote, market, 2.0, 50.0)
    assert ev.notional_usd == (100.0 if priced else None)
    assert out.unpriced == (0 if priced else 1)


@pytest.mark.parametrize("symbol", ["fUSD", "BTCUSD", "t", "tBTCUSDT", "tbtcusd", "tBTC:",
                                    "tBTCF0:USD", "tBTC:USTF0", "tF0:USTF0", "tBTC-USD"])
def test_unknown_symbols(symbol: str) -> None:
    assert reason_of(parse, frame(CHAN, row(5, T0, symbol, 1.0, 10.0))) == "unknown_symbol"


def test_pos_id_is_the_dedupe_id() -> None:
    (a,) = parse(frame(CHAN, row(77, T0, "tBTCF0:USTF0", 1.0, 60000.0)))
    (b,) = parse(update(FIRST_CHAN_ID + 5, row(77, T0, "tBTCF0:USTF0", 1.0, 60000.0)))
    (c,) = parse(frame(CHAN, row(78, T0, "tBTCF0:USTF0", 1.0, 60000.0)))
    assert a.id == b.id != c.id


def test_control_frames() -> None:
    def kind(msg: Any) -> str:
        return parse_text(msg).kind
    assert kind(APIGO_INFO) == "info"
    assert kind({**APIGO_INFO, "platform": {"status": 0}}) == "info"  # maintenance
    for info in (INFO_MAINTENANCE_START, INFO_MAINTENANCE_END):
        assert kind(info) == "info"
    assert kind(INFO_RESTART) == "reconnect"  # 20051: "please reconnect"
    assert kind(DOC_ACK) == kind(TARDIS_ACK) == "ack"
    assert kind(DOC_PONG) == "pong"
    assert kind(TARDIS_HB) == kind(heartbeat(CHAN)) == "info"  # a heartbeat is no pong
    assert kind({"event": "unsubscribed", "status": "OK", "chanId": CHAN}) == "info"
    assert kind({"event": "conf", "status": "OK", "flags": 98304}) == "info"
    assert kind(frame(CHAN)) == "info"  # nothing to report
    for msg, reason in (
            (SUBSCRIBE_FAILED, "subscribe_error"),
            ({"event": "error", "msg": "Reached limit of open channels", "code": 10305},
             "subscribe_error"),
            (UNKNOWN_EVENT, "venue_error"),
            ({**APIGO_INFO, "version": 3}, "venue_error"),
            ({**DOC_ACK, "key": "deriv:tBTCF0:USTF0"}, "unexpected_channel"),
            ({**DOC_ACK, "channel": "trades"}, "unexpected_channel"),
            ({"chanId": CHAN}, "unexpected_shape")):
        assert reason_of(kind, msg) == reason


def test_subscribe_ping_and_spec() -> None:
    (conn,) = bf.connections(Metadata(), bf.VENUE.default_urls)
    assert conn.url == "wss://api-pub.bitfinex.com/ws/2"
    assert [orjson.loads(m) for m in conn.subscribe] == [
        {"event": "subscribe", "channel": "status", "key": "liq:global"}]
    assert orjson.loads(bf.VENUE.ping_message(7)) == {**DOC_PING, "cid": 7}
    spec = bf.VENUE
    assert spec.ping_interval + spec.pong_timeout <= 25
    assert spec.drop_before_subscribe and not spec.sampled and spec.rest_urls({}) == []
    assert bf.connections(Metadata(), {"ws": "ws://127.0.0.1:1/ws/2"})[0].url.endswith("/ws/2")


ROW = row(9, T0, "tBTCF0:USTF0", 1.0, 60000.0)


def _with(index: int, value: Any) -> str:
    out = [*ROW]
    out[index] = value
    return frame(CHAN, out)


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "malformed_json"),
    ("[]", "unexpected_shape"),
    ('"hb"', "unexpected_shape"),
    ("[91684]", "unexpected_shape"),
    ('["91684",[]]', "unexpected_shape"),
    ("[true,[]]", "unexpected_shape"),
    ("[-1,[]]", "unexpected_shape"),
    (frame(0, ROW), "unexpected_channel"),  # the account channel
    ('[91684,"te"]', "unexpected_shape"),
    ('[91684,{"a":1}]', "unexpected_shape"),
    ("[91684,[1,2]]", "unexpected_shape"),
    (frame(CHAN, ["liq", *ROW[1:]]), "unexpected_shape"),
    (frame(CHAN, ROW[:11]), "missing_field"),
    (_with(1, None), "missing_field"),
    (_with(1, "145511476"), "missing_field"),
    (_with(4, None), "missing_field"),
    (_with(5, "0.5"), "bad_number"),
    (_with(5, True), "bad_number"),
    (_with(5, 0), "bad_number"),
    (_with(2, "1789670000000"), "bad_timestamp"),
    (_with(2, -5), "bad_timestamp"),
    (_with(2, None), "bad_timestamp"),
    (_with(8, 2), "unexpected_shape"),
    (_with(8, None), "unexpected_shape"),
    (_with(11, 0), "bad_number"),
    (_with(11, -60000.0), "bad_number"),
    (_with(11, "60000"), "bad_number"),
])
def test_bad_frames_raise_with_reason(text: str, reason: str) -> None:
    assert reason_of(parse_text, text) == reason


def _session_frame(session: VenueSession, recv_ts: float, msg: Any) -> Any:
    return session.process(RawFrame(bf.ID, bf.WS_URL, recv_ts, as_text(msg)))


def test_absurd_values_are_refused_by_the_session() -> None:
    session = VenueSession(bf.VENUE)
    recv = T0 / 1000 + 1
    huge = _session_frame(session, recv, frame(CHAN, row(10, T0, "tBTCF0:USTF0", 1e9, 6e4)))
    assert huge.events == [] and huge.deadletter["reason"] == "implausible_notional"
    # Seconds read as milliseconds would date it 1970.
    old = _session_frame(session, recv, frame(CHAN, row(11, T0 // 1000, "tBTCUSD", 1.0, 6e4)))
    assert old.events == [] and old.deadletter["reason"] == "implausible_time"


def test_the_replay_after_a_subscribe_is_history() -> None:
    session = VenueSession(bf.VENUE)
    ack_ts = T0 / 1000
    assert _session_frame(session, ack_ts, DOC_ACK).kind == "ack"
    replay = _session_frame(session, ack_ts + 0.1, TARDIS_BTC_TRIGGER)  # dated 2020
    assert replay.events == [] and replay.snapshot_dropped == 1 and replay.deadletter is None
    live = _session_frame(session, ack_ts + 2,
                          frame(CHAN, row(12, T0 + 1000, "tBTCF0:USTF0", 0.2, 6e4)))
    assert len(live.events) == 1 and live.snapshot_dropped == 0


# ---- the collector against the simulator -------------------------------------------------

async def test_collector_against_simulator() -> None:
    sim = BitfinexSim()
    async with HARNESS.collector(sim) as rig:
        assert [orjson.loads(m) for m in sim.messages()][:1] == [
            {"event": "subscribe", "channel": "status", "key": "liq:global"}]
        assert sim.acked == [FIRST_CHAN_ID]
        # The replay of the latest liquidation after the subscribe: dropped, not counted.
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total") == 1)
        # Our pings are answered; the heartbeats flow too, as info.
        await rig.pinged('"event":"ping"', exact=False, pongs=2)
        await sim.wait_for(lambda: rig.frames("info") >= 3)
        t = now_ms()
        await sim.push_rows(row(501, t, "tBTCF0:USTF0", 0.5, 60000.0))
        await sim.push_rows(row(501, t + 30, "tBTCF0:USTF0", 0.5, 59990.0, is_match=1))
        await sim.push_rows(row(502, t + 1, "tETHF0:USTF0", -2.0, 3000.0), single=True)
        await sim.push_rows(row(503, t + 2, "tETHF0:USTF0", -1.0, None))  # no price
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=2)
        # A server-side drop: reconnect, a new chanId on the new subscribe, data under it.
        await rig.reconnected(also=lambda: len(sim.acked) == 2)
        assert sim.acked == [FIRST_CHAN_ID, FIRST_CHAN_ID + 1]
        await sim.wait_for(lambda: rig.up() == 1)
        # Dated after the new ack for sure: one in the ack's own millisecond would be history.
        await sim.push_rows(row(504, now_ms() + 50, "tBTCUSD", 0.1, 60000.0))
        await rig.published(events=3, deadletters=2)
    assert rig.outcome("symbol", "side", "market", "notional_usd") == [
        ("tBTCF0:USTF0", "long", "linear", 30000.0),
        ("tETHF0:USTF0", "short", "linear", 6000.0),
        ("tBTCUSD", "long", "spot", pytest.approx(6000.0))]
    assert [d["reason"] for d in rig.sink.deadletters] == ["no_liquidation_price",
                                                           "malformed_json"]
    assert rig.count("liqstress_snapshot_dropped_total") == 2  # one replay per subscribe
    assert rig.count("liqstress_source_reconnects_total") >= 1
    # Routing: every data frame kept raw carries the chanId of the ack before it.
    chan_id = None
    routed = 0
    for raw in rig.sink.raws:
        if raw.data == "{malformed":
            continue
        msg = orjson.loads(raw.data)
        if isinstance(msg, dict) and msg.get("event") == "subscribed":
            chan_id = msg["chanId"]
        elif isinstance(msg, list):
            assert msg[0] == chan_id
            routed += 1
    assert routed == 4  # the three events' frames and the no_liquidation_price one


async def test_restart_info_reconnects_at_once_without_waiting_for_the_close() -> None:
    """20051 alone (the server has not closed yet): the collector reconnects, resubscribes
    and counts one reconnect; the old connection is closed by us."""
    sim = BitfinexSim()
    async with HARNESS.collector(sim) as rig:
        await sim.announce_restart(close=False)
        await sim.wait_for(lambda: sim.connections >= 2 and len(sim.acked) == 2
                           and rig.up() == 1)
        assert rig.count("liqstress_source_reconnects_total") == 1
        assert rig.frames("reconnect") == 1
        await sim.push_rows(row(602, now_ms(), "tBTCF0:USTF0", 0.5, 60000.0))
        await rig.published(events=1, deadletters=0)
    assert rig.sink.events[0].side == "long"


async def test_restart_info_then_close_reconnects() -> None:
    sim = BitfinexSim()
    async with HARNESS.collector(sim) as rig:
        await sim.announce_restart()
        await sim.wait_for(lambda: sim.connections >= 2 and len(sim.acked) == 2
                           and rig.up() == 1)
        await sim.push_rows(row(601, now_ms(), "tBTCF0:USTF0", -0.5, 60000.0))
        await rig.published(events=1, deadletters=0)
    assert rig.sink.events[0].side == "short"


async def test_unanswered_pings_take_the_source_down_despite_heartbeats() -> None:
    sim = BitfinexSim()
    rig = await HARNESS.check_unanswered_pings(sim)
    assert sim.pings >= 1
    assert rig.frames("info") >= 1  # heartbeats kept arriving: they are not liveness
    assert rig.frames("pong") == 0


async def test_refused_subscribe_is_reported() -> None:
    await HARNESS.check_subscribe_refused(BitfinexSim(), settle=0.2)
