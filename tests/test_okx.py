"""OKX v5: parser on the documented payload (contracts -> USD via ctVal, net mode, inverse,
unknown instruments unpriced), the stale batch after subscribe, and the collector against the
simulator."""

from __future__ import annotations

import time

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.okx import (
    DOC_ACK,
    DOC_ERROR,
    DOC_FRAME,
    STALE_BATCH,
    WS_PATH,
    OkxSim,
    detail,
    entry,
    instruments_body,
    liquidations,
)
from liqstress.streams.venues import okx
from liqstress.streams.venues.base import Instrument, Metadata

from .venue_harness import VenueHarness, reason_of

T0 = 1_789_670_000_000
HARNESS = VenueHarness(okx)
parse = HARNESS.events


def loaded_meta() -> Metadata:
    meta = Metadata()
    for url in okx.rest_urls({}):
        okx.load_rest(meta, url, instruments_body(url.rsplit("=", 1)[1]))
    return meta


def test_doc_payload_short_position_with_contract_value() -> None:
    meta = Metadata()
    meta.instruments["IOST-USDT-SWAP"] = Instrument("IOST-USDT-SWAP", "IOST", "USDT", "linear",
                                                    contract_value=1000.0)
    (ev,) = parse(DOC_FRAME, meta)
    assert ev.side == "short"  # posSide short (closed by a buy)
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "okx", "IOST-USDT-SWAP", "IOST", "USDT", "linear")
    assert ev.qty == pytest.approx(13 * 1000)  # contracts x ctVal, not sz
    assert ev.notional_usd == pytest.approx(13 * 1000 * 0.007831)
    assert ev.price == pytest.approx(0.007831)
    assert ev.ts == pytest.approx(1692266434.010)
    assert ev.sampled is True


def test_unknown_instrument_is_unpriced_never_sz_times_price() -> None:
    out = okx.parse(orjson.dumps(DOC_FRAME).decode(), okx.WS_URL, 1.0, Metadata())
    (ev,) = out.events
    assert ev.qty is None and ev.notional_usd is None
    assert out.unpriced == 1
    assert (ev.base, ev.quote, ev.market, ev.side) == ("IOST", "USDT", "linear", "short")


def test_unknown_coin_margined_instrument_is_inverse_and_unpriced() -> None:
    (ev,) = parse(liquidations(entry("DOGE-USD-SWAP", detail("long", "sell", "7", "0.1", T0))))
    assert (ev.base, ev.quote, ev.market) == ("DOGE", "USD", "inverse")
    assert ev.notional_usd is None


def test_linear_swap_notional_uses_ct_val() -> None:
    meta = loaded_meta()
    (btc,) = parse(liquidations(entry("BTC-USDT-SWAP", detail("long", "sell", "250", "60000", T0))),
                   meta)
    assert btc.side == "long"
    assert btc.qty == pytest.approx(2.5)  # 250 contracts x 0.01 BTC
    assert btc.notional_usd == pytest.approx(150_000)
    (eth,) = parse(liquidations(entry("ETH-USDT-SWAP", detail("short", "buy", "30", "3000", T0))),
                   meta)
    assert eth.side == "short" and eth.notional_usd == pytest.approx(30 * 0.1 * 3000)


def test_inverse_swap_and_future_are_usd() -> None:
    meta = loaded_meta()
    (swap,) = parse(liquidations(entry("BTC-USD-SWAP", detail("short", "buy", "40", "50000", T0))),
                    meta)
    assert (swap.market, swap.base, swap.quote) == ("inverse", "BTC", "USD")
    assert swap.notional_usd == pytest.approx(4000)  # 40 x 100 USD, no price
    assert swap.qty == pytest.approx(0.08)
    (fut,) = parse(liquidations(entry("BTC-USD-261225", detail("long", "sell", "3", "60000", T0)),
                                inst_type="FUTURES"), meta)
    assert fut.market == "inverse" and fut.notional_usd == pytest.approx(300)


@pytest.mark.parametrize("pos,order,expected", [
    ("long", "sell", "long"), ("short", "buy", "short"),
    ("net", "sell", "long"), ("net", "buy", "short"), ("", "sell", "long"),
])
def test_side_rule(pos: str, order: str, expected: str) -> None:
    (ev,) = parse(liquidations(entry("BTC-USDT-SWAP", detail(pos, order, "1", "60000", T0))),
                  loaded_meta())
    assert ev.side == expected


def test_several_entries_and_details_give_several_events() -> None:
    frame = liquidations(
        entry("BTC-USDT-SWAP", detail("long", "sell", "100", "60000", T0),
              detail("net", "buy", "50", "60100", T0 + 5)),
        entry("ETH-USDT-SWAP", detail("net", "sell", "10", "3000", T0 + 9)),
        entry("NEW-USDT-SWAP", detail("short", "buy", "10", "2", T0 + 12)))
    out = okx.parse(frame, okx.WS_URL, 1.0, loaded_meta())
    assert [(e.symbol, e.side) for e in out.events] == [
        ("BTC-USDT-SWAP", "long"), ("BTC-USDT-SWAP", "short"), ("ETH-USDT-SWAP", "long"),
        ("NEW-USDT-SWAP", "short")]
    assert [e.notional_usd for e in out.events[:3]] == pytest.approx([60000, 30050, 3000])
    assert [e.ts for e in out.events] == pytest.approx(
        [T0 / 1000, (T0 + 5) / 1000, (T0 + 9) / 1000, (T0 + 12) / 1000])
    assert out.unpriced == 1 and out.events[3].notional_usd is None


def test_metadata_from_instruments() -> None:
    meta = loaded_meta()
    assert meta.get("BTC-USDT-SWAP") == Instrument("BTC-USDT-SWAP", "BTC", "USDT", "linear", 0.01)
    assert meta.get("BTC-USD-SWAP") == Instrument("BTC-USD-SWAP", "BTC", "USD", "inverse", 100.0)
    assert meta.get("BTC-USD-261225").market == "inverse"  # type: ignore[union-attr]
    # ctMult multiplies; a contract in a currency that is neither base nor USD stays unpriced.
    odd = Metadata()
    okx.load_rest(odd, okx.rest_urls({})[0], orjson.dumps({"code": "0", "msg": "", "data": [
        {"instType": "SWAP", "instId": "A-USDT-SWAP", "uly": "A-USDT", "ctVal": "10",
         "ctMult": "2", "ctValCcy": "A", "ctType": "linear", "baseCcy": "", "quoteCcy": ""},
        {"instType": "SWAP", "instId": "B-USDT-SWAP", "uly": "B-USDT", "ctVal": "10",
         "ctMult": "1", "ctValCcy": "WEIRD", "ctType": "linear"},
        {"instType": "SWAP", "instId": "C-USDT-SWAP", "uly": "C-USDT", "ctVal": "",
         "ctMult": "1", "ctValCcy": "C", "ctType": "linear"},
    ]}).decode())
    assert odd.get("A-USDT-SWAP").contract_value == 20.0  # type: ignore[union-attr]
    assert odd.get("B-USDT-SWAP") is None and odd.get("C-USDT-SWAP") is None


def test_rest_error_is_a_frame_error() -> None:
    assert reason_of(okx.load_rest, Metadata(), okx.rest_urls({})[0],
                     '{"code":"50011","msg":"Too Many Requests","data":[]}') == "rest_error"


def test_control_frames() -> None:
    assert okx.parse("pong", okx.WS_URL, 1.0, Metadata()).kind == "pong"
    assert okx.parse(orjson.dumps(DOC_ACK).decode(), okx.WS_URL, 1.0, Metadata()).kind == "ack"
    notice = '{"event":"notice","code":"64008","msg":"The connection will soon be closed","connId":"a"}'
    assert okx.parse(notice, okx.WS_URL, 1.0, Metadata()).kind == "info"
    assert reason_of(okx.parse, orjson.dumps(DOC_ERROR).decode(), okx.WS_URL, 1.0,
                     Metadata()) == "subscribe_error"


def test_subscribe_and_ping_messages() -> None:
    (conn,) = okx.connections(Metadata(), okx.VENUE.default_urls)
    assert conn.url == "wss://ws.okx.com:8443/ws/v5/public"
    assert [orjson.loads(m) for m in conn.subscribe] == [{"op": "subscribe", "args": [
        {"channel": "liquidation-orders", "instType": "SWAP"},
        {"channel": "liquidation-orders", "instType": "FUTURES"}]}]
    assert okx.VENUE.ping_message(1) == "ping"
    assert okx.VENUE.ping_interval < 30 and okx.VENUE.drop_before_subscribe


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"arg":{"channel":"liquidation-orders"}}', "unexpected_shape"),
    ('{"arg":{"channel":"tickers"},"data":[]}', "unexpected_channel"),
    ('{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"instId":"X-USDT-SWAP"}]}',
     "unexpected_shape"),
    ('{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[]}]}',
     "missing_field"),
    ('{"arg":{"channel":"liquidation-orders","instType":"OPTION"},"data":[{"instId":"BTC-USD-261225-1-C",'
     '"instType":"OPTION","details":[]}]}', "unsupported_instrument"),
    (liquidations(entry("BTC-USDT-SWAP", detail("long", "hold", "1", "1", T0))), None),
    (liquidations(entry("BTC-USDT-SWAP", detail("net", "hold", "1", "1", T0))), "bad_side"),
    (liquidations(entry("BTC-USDT-SWAP", detail("flat", "sell", "1", "1", T0))), "bad_side"),
    (liquidations(entry("BTC-USDT-SWAP", detail("long", "sell", "x", "1", T0))), "bad_number"),
    (liquidations(entry("BTC-USDT-SWAP", detail("long", "sell", "1", "0", T0))), "bad_number"),
    (liquidations(entry("BTC-USDT-SWAP", detail("long", "sell", "-1", "5", T0))), "bad_number"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str | None) -> None:
    if reason is None:  # posSide long wins; the order side is not consulted
        assert parse(frame)[0].side == "long"
        return
    assert reason_of(okx.parse, frame, okx.WS_URL, 1.0, Metadata()) == reason


def test_session_drops_the_stale_batch_after_subscribe() -> None:
    session = VenueSession(okx.VENUE)
    for url in okx.rest_urls({}):
        session.process(RawFrame("okx", url, 1.0, instruments_body(url.rsplit("=", 1)[1])))
    ack_at = T0 / 1000
    assert session.process(RawFrame("okx", okx.WS_URL, ack_at, orjson.dumps(DOC_ACK).decode())).kind == "ack"
    stale = session.process(RawFrame("okx", okx.WS_URL, ack_at + 0.05, STALE_BATCH))
    assert stale.events == [] and stale.snapshot_dropped == 3
    mixed = liquidations(entry("BTC-USDT-SWAP", detail("long", "sell", "1", "60000", T0 - 1),
                               detail("short", "buy", "2", "60000", T0 + 200)))
    out = session.process(RawFrame("okx", okx.WS_URL, ack_at + 0.3, mixed))
    assert [e.side for e in out.events] == ["short"] and out.snapshot_dropped == 1
    # A new connection: the cut-off moves to the new ack, so the same replay is dropped again.
    session.reset_connection(okx.WS_URL)
    session.process(RawFrame("okx", okx.WS_URL, ack_at + 60, orjson.dumps(DOC_ACK).decode()))
    again = session.process(RawFrame("okx", okx.WS_URL, ack_at + 60.1, mixed))
    assert again.events == [] and again.snapshot_dropped == 2


def _now_ms() -> int:
    return int(time.time() * 1000) + 1


async def test_collector_against_simulator() -> None:
    sim = OkxSim()
    sim.rest_fail = 1
    async with HARNESS.collector(sim) as rig:
        assert len(sim.rest_hits) == 3  # 503 retried, then SWAP and FUTURES
        assert sorted(rig.col.session.meta.instruments) == [
            "BTC-USD-261225", "BTC-USD-SWAP", "BTC-USDT-SWAP", "ETH-USDT-SWAP"]
        assert [orjson.loads(m) for m in sim.messages() if m != "ping"][0]["args"][1] == {
            "channel": "liquidation-orders", "instType": "FUTURES"}
        # The stale batch right after the ack is dropped, not published.
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total") == 3)
        await sim.push(liquidations(
            entry("BTC-USDT-SWAP", detail("long", "sell", "100", "60000", _now_ms())),
            entry("BTC-USD-SWAP", detail("net", "buy", "10", "60000", _now_ms()))))
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=1)
        await rig.pinged("ping", WS_PATH)
        assert rig.up() == 1
        # Server-side disconnect: reconnect, resubscribe, the replay is dropped again.
        await rig.reconnected(also=lambda: sum(
            '"op":"subscribe"' in m for m in sim.messages()) == 2)
        await sim.wait_for(lambda: rig.value("liqstress_snapshot_dropped_total") == 6)
        await sim.push(liquidations(
            entry("ETH-USDT-SWAP", detail("short", "buy", "20", "3000", _now_ms())),
            entry("NEW-USDT-SWAP", detail("long", "sell", "20", "3", _now_ms()))))
        await sim.wait_for(lambda: len(rig.sink.events) == 4)
    assert rig.outcome("symbol", "side", "notional_usd") == [
        ("BTC-USDT-SWAP", "long", pytest.approx(60000)),
        ("BTC-USD-SWAP", "short", pytest.approx(1000)),
        ("ETH-USDT-SWAP", "short", pytest.approx(6000)),
        ("NEW-USDT-SWAP", "long", None)]
    assert rig.value("liqstress_unpriced_total") == 1
    rig.assert_recovered()


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(OkxSim())
