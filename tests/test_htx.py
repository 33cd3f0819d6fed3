"""HTX USDT-M: parser on the live capture (order side -> position, trade_turnover as the USD
notional, never volume x price), the verbatim ping echo, gzip frames through the session, and the
collector against the simulator (server-driven heartbeat, reconnect, dead letters)."""

from __future__ import annotations

import asyncio
import gzip

import orjson
import pytest
import websockets

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.htx import (
    LIVE_ACK,
    LIVE_FRAME,
    LIVE_PING,
    WS_PATH,
    HtxSim,
    ack,
    gz,
    liquidation,
)
from liqstress.streams.venues import htx
from liqstress.streams.venues.base import Metadata

from .venue_harness import IMPATIENT, VenueHarness, reason_of

T0 = 1_789_670_000_000
HARNESS = VenueHarness(htx)
parse = HARNESS.events


def test_live_capture_buy_is_short_and_turnover_is_the_notional() -> None:
    (ev,) = parse(LIVE_FRAME)
    assert ev.side == "short"  # direction is the ORDER side: a forced buy closes a short
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "htx", "ETH-USDT", "ETH", "USDT", "linear")
    assert ev.notional_usd == pytest.approx(12231.3)  # trade_turnover, already USDT
    assert ev.qty == pytest.approx(5)  # amount (base), not volume (contracts)
    assert ev.price == pytest.approx(2446.26)
    assert ev.ts == pytest.approx(1789670297.212)  # created_at, not the push ts
    assert ev.sampled is False


def test_volume_times_price_would_be_100x_wrong() -> None:
    (ev,) = parse(LIVE_FRAME)
    contracts_times_price = 500 * 2446.26
    assert contracts_times_price == pytest.approx(100 * ev.notional_usd)
    assert ev.notional_usd != pytest.approx(contracts_times_price)
    # amount x price reconciles exactly with trade_turnover on this record.
    assert ev.qty * ev.price == pytest.approx(ev.notional_usd)


def test_sell_is_long_liquidation() -> None:
    (ev,) = parse(liquidation("BTC-USDT", ("sell", 250, 60000.0, 0.25, T0, 15000.0)))
    assert ev.side == "long"
    assert ev.notional_usd == pytest.approx(15000) and ev.qty == pytest.approx(0.25)
    assert ev.ts == pytest.approx(T0 / 1000)


def test_usdt_margined_future_is_linear() -> None:
    (ev,) = parse(liquidation("BTC-USDT-260925", ("buy", 30, 61000.0, 0.03, T0, 1830.0),
                              business_type="futures"))
    assert (ev.symbol, ev.base, ev.quote, ev.market, ev.side) == (
        "BTC-USDT-260925", "BTC", "USDT", "linear", "short")
    assert ev.notional_usd == pytest.approx(1830)


def test_missing_turnover_falls_back_to_amount_times_price_never_volume() -> None:
    frame = orjson.loads(LIVE_FRAME)
    del frame["data"][0]["trade_turnover"]
    (ev,) = parse(frame)
    assert ev.notional_usd == pytest.approx(5 * 2446.26)
    del frame["data"][0]["amount"]
    out = htx.parse(orjson.dumps(frame).decode(), htx.WS_URL, 1.0, Metadata())
    (unpriced,) = out.events
    assert unpriced.qty is None and unpriced.notional_usd is None and out.unpriced == 1


def test_several_entries_give_several_events_with_distinct_ids() -> None:
    evs = parse(liquidation("SOL-USDT", ("sell", 10, 150.0, 10.0, T0, 1500.0),
                            ("buy", 4, 151.0, 4.0, T0 + 10, 604.0),
                            ("sell", 10, 150.0, 10.0, T0 + 20, 1500.0)))
    assert [e.side for e in evs] == ["long", "short", "long"]
    assert [e.notional_usd for e in evs] == pytest.approx([1500, 604, 1500])
    assert len({e.id for e in evs}) == 3
    # The same liquidation seen again (a reconnect) keeps its id.
    again = parse(liquidation("SOL-USDT", ("sell", 10, 150.0, 10.0, T0, 1500.0)))
    assert again[0].id == evs[0].id


def test_server_ping_is_echoed_verbatim_and_counts_as_liveness() -> None:
    out = htx.parse(LIVE_PING, htx.WS_URL, 1.0, Metadata())
    assert out.kind == "pong" and out.events == ()
    assert out.reply == '{"op":"pong","ts":"1789676355591"}'  # still a quoted string
    numeric = htx.parse('{"op":"ping","ts":1789676355591}', htx.WS_URL, 1.0, Metadata())
    assert numeric.reply == '{"op":"pong","ts":1789676355591}'  # still a number
    spaced = htx.parse('{ "op" : "ping", "ts" : "0017" }', htx.WS_URL, 1.0, Metadata())
    assert spaced.reply == '{"op":"pong","ts":"0017"}'  # the exact token, leading zeros too
    bare = htx.parse('{"ping":1492420473027}', htx.WS_URL, 1.0, Metadata())
    assert (bare.kind, bare.reply) == ("pong", '{"pong":1492420473027}')


def test_control_frames() -> None:
    def kind(text: str) -> str:
        return htx.parse(text, htx.WS_URL, 1.0, Metadata()).kind

    assert kind(LIVE_ACK) == "ack"
    assert kind(ack(htx.SUB_CID, htx.TOPIC, T0)) == "ack"
    # Our heartbeat subscribe, refused as a repeat: proof of life, not an error.
    assert kind(ack("liqstress-hb-7", htx.HEARTBEAT_TOPIC, T0,
                    {"err-code": 2014, "err-msg": "Repeated subscription"})) == "pong"
    assert kind('{"op":"close"}') == "info"
    assert kind('{"op":"unsub","cid":"x","topic":"public.*.liquidation_orders","ts":1,"err-code":0}') == "info"


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"topic":"public.BTC-USDT.liquidation_orders"}', "unexpected_shape"),
    (ack(htx.SUB_CID, htx.TOPIC, T0, {"err-code": 2011, "err-msg": "invalid topic"}), "subscribe_error"),
    ('{"op":"error","ts":1,"err-code":2002,"err-msg":"invalid op"}', "venue_error"),
    ('{"op":"pong","ts":"1","err-code":2011,"err-msg":"invalid pong"}', "venue_error"),
    ('{"op":"ping"}', "missing_field"),
    ('{"op":"ping","ts":{"a":1}}', "bad_ping"),
    ('{"op":"notify","topic":"public.BTC-USDT.contract_info","data":[]}', "unexpected_channel"),
    ('{"op":"notify","topic":"public.BTC-USDT.liquidation_orders","data":{}}', "unexpected_shape"),
    ('{"op":"notify","topic":"public.BTC-USDT.liquidation_orders","data":[1]}', "unexpected_shape"),
    ('{"op":"notify","topic":"public.BTC-USDT.liquidation_orders","data":[{"direction":"sell"}]}',
     "missing_field"),
    (liquidation("BTC-USDT", ("hold", 1, 60000.0, 0.001, T0, 60.0)), "bad_side"),
    (liquidation("BTC-USDT", ("sell", 1, 0.0, 0.001, T0, 60.0)), "bad_number"),
    (liquidation("BTC-USDT", ("sell", 1, 60000.0, -1.0, T0, 60.0)), "bad_number"),
    (LIVE_FRAME.replace('"offset":"close"', '"offset":"open"'), "unexpected_offset"),
    (LIVE_FRAME.replace('"created_at":1789670297212', '"created_at":"soon"'), "bad_timestamp"),
    (LIVE_FRAME.replace("ETH-USDT", "ETH"), "unknown_symbol"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(htx.parse, frame, htx.WS_URL, 1.0, Metadata()) == reason


def test_session_inflates_gzip_frames() -> None:
    session = VenueSession(htx.VENUE)
    out = session.process(RawFrame("htx", htx.WS_URL, 1789670298.0, gz(LIVE_FRAME)))
    assert out.kind == "data" and [e.side for e in out.events] == ["short"]
    ping = session.process(RawFrame("htx", htx.WS_URL, 1.0, gz(LIVE_PING)))
    assert (ping.kind, ping.reply) == ("pong", '{"op":"pong","ts":"1789676355591"}')
    bad = session.process(RawFrame("htx", htx.WS_URL, 1.0, b"\x1f\x8b\x08not really gzip"))
    assert bad.deadletter is not None and bad.deadletter["reason"] == "bad_gzip"
    raw = session.process(RawFrame("htx", htx.WS_URL, 1.0, b"plain bytes, no gzip"))
    assert raw.deadletter is not None and raw.deadletter["reason"] == "bad_gzip"


def test_subscribe_and_heartbeat_messages() -> None:
    (conn,) = htx.connections(Metadata(), htx.VENUE.default_urls)
    assert conn.url == "wss://api.hbdm.com/linear-swap-notification"
    assert [orjson.loads(m) for m in conn.subscribe] == [
        {"op": "sub", "cid": "liqstress-liq", "topic": "public.*.liquidation_orders"}]
    assert orjson.loads(htx.VENUE.ping_message(3)) == {
        "op": "sub", "cid": "liqstress-hb-3", "topic": "public.BTC-USDT.liquidation_orders"}
    assert htx.VENUE.gzip and not htx.VENUE.sampled
    # HTX pings every ~5 s: our pong timer must tolerate several seconds between server pings.
    assert htx.VENUE.pong_timeout > 10


async def test_collector_against_simulator() -> None:
    sim = HtxSim(ping_every=0.05, max_missed=5)
    async with HARNESS.collector(sim, raw_policy="all") as rig:
        assert orjson.loads(sim.messages(WS_PATH)[0]) == {
            "op": "sub", "cid": "liqstress-liq", "topic": "public.*.liquidation_orders"}
        await sim.push(LIVE_FRAME)
        await sim.push(liquidation("BTC-USDT", ("sell", 100, 60000.0, 0.1, T0, 6000.0)))
        await sim.push("{malformed")  # gzipped, but not JSON
        await sim.push(b"not gzip at all")
        await rig.published(events=2, deadletters=2)
        # Many server pings, each answered with its own ts echoed byte for byte: never "Bye".
        await sim.wait_for(lambda: len(sim.pongs) >= 20)
        assert sim.bad_pongs == 0 and sim.byes == 0 and sim.connections == 1
        for pong in sim.pongs:
            assert pong.startswith('{"op":"pong","ts":"') and orjson.loads(pong)["op"] == "pong"
        sent = set(sim.pings_sent)
        assert all(pong[len('{"op":"pong","ts":'):-1] in sent for pong in sim.pongs)
        # Our heartbeat subscribe went out and its 2014 reply counted as a pong too.
        def heartbeats() -> list[dict]:
            texts = [gzip.decompress(r.data) for r in rig.sink.raws if r.data[:2] == b"\x1f\x8b"]
            return [orjson.loads(t) for t in texts if b"liqstress-hb-" in t]
        await sim.wait_for(lambda: len(heartbeats()) > 0)
        hb = heartbeats()
        assert hb[0]["err-code"] == 2014
        assert rig.frames("pong") >= len(sim.pongs) + len(hb)
        assert rig.up() == 1
        # Server-side disconnect: reconnect and subscribe again.
        await rig.reconnected(also=lambda: sum(
            '"cid":"liqstress-liq"' in m for m in sim.messages()) == 2)
        await sim.wait_for(lambda: rig.up() == 1, timeout=5)
        await sim.push(liquidation("ETH-USDT", ("buy", 300, 3000.0, 3.0, T0 + 1, 9000.0)))
        await sim.wait_for(lambda: len(rig.sink.events) == 3)
    assert rig.outcome("symbol", "side", "notional_usd") == [
        ("ETH-USDT", "short", pytest.approx(12231.3)),
        ("BTC-USDT", "long", pytest.approx(6000)),
        ("ETH-USDT", "short", pytest.approx(9000))]
    assert sorted(d["reason"] for d in rig.sink.deadletters) == ["bad_gzip", "malformed_json"]
    assert rig.value("liqstress_source_reconnects_total") >= 1


async def test_simulator_disconnects_a_client_that_does_not_answer_pings() -> None:
    async with HtxSim(ping_every=0.05, max_missed=5) as sim:
        async with websockets.connect(sim.ws_url()) as ws:
            await ws.send(orjson.dumps({"op": "sub", "cid": "c", "topic": htx.TOPIC}).decode())
            frames = []
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    frames.append(await asyncio.wait_for(ws.recv(), 5))
            assert ws.close_reason == "Bye"
    texts = [gzip.decompress(f).decode() for f in frames]
    assert all(isinstance(f, bytes) for f in frames)  # every frame gzip binary
    assert orjson.loads(texts[0])["err-code"] == 0
    assert sum('"op":"ping"' in t for t in texts) == 5
    assert texts[-1] == '{"op":"close"}'
    assert sim.byes == 1


async def test_server_ping_reply_must_echo_the_exact_ts() -> None:
    async with HtxSim(ping_every=0.05, max_missed=50) as sim:
        async with websockets.connect(sim.ws_url()) as ws:
            await sim.wait_for(lambda: len(sim.pings_sent) >= 1)
            token = sim.pings_sent[0]
            number = token.strip('"')
            await ws.send(f'{{"op":"pong","ts":{number}}}')  # re-typed as a number: refused
            await sim.wait_for(lambda: sim.bad_pongs == 1)
            await ws.send(f'{{"op":"pong","ts":{token}}}')  # verbatim: accepted
            await sim.wait_for(lambda: len(sim.pongs) == 2)
            assert sim.bad_pongs == 1


async def test_failed_subscribe_is_dead_lettered_and_never_up() -> None:
    await HARNESS.check_subscribe_refused(HtxSim(ping_every=0.05), settle=0.3)


async def test_silent_server_marks_source_down_and_reconnects() -> None:
    sim = HtxSim(ping_every=0.05)
    sim.send_pings = False  # no server heartbeats ...
    # ... and our heartbeat subscribe goes unanswered
    await HARNESS.check_unanswered_pings(sim)


async def test_server_pings_alone_keep_a_quiet_connection_alive() -> None:
    sim = HtxSim(ping_every=0.05)
    sim.answer_pings = False  # only the server's own pings prove liveness
    async with HARNESS.collector(sim, IMPATIENT) as rig:
        await asyncio.sleep(1.5)  # many pong timeouts' worth, no liquidation at all
        assert sim.connections == 1 and rig.col.reconnects == 0 and rig.up() == 1
