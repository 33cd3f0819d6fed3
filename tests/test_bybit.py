"""Bybit v5: parser on the documented payloads, chunked subscribe, paginated metadata, and the
collector against the simulator."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from liqstress.streams.sims.bybit import (
    CURSOR,
    DOC_FRAME,
    INVERSE,
    INVERSE_PATH,
    LINEAR_PAGES,
    LINEAR_PATH,
    LIVE_BUY,
    LIVE_SELL,
    BybitSim,
    instruments_body,
    liquidation,
)
from liqstress.streams.venues import bybit
from liqstress.streams.venues.base import Instrument, Metadata

from .venue_harness import VenueHarness, reason_of

HARNESS = VenueHarness(bybit, source=bybit.WS_LINEAR)
INVERSE_URL = bybit.WS_INVERSE


def loaded_meta() -> Metadata:
    meta = Metadata()
    base = "https://api.bybit.com/v5/market/instruments-info"
    bybit.load_rest(meta, f"{base}?category=linear&limit=1000",
                    instruments_body("linear", LINEAR_PAGES[0] + LINEAR_PAGES[1]))
    bybit.load_rest(meta, f"{base}?category=inverse&limit=1000", instruments_body("inverse", INVERSE))
    return meta


def parse(frame: object, source: str = bybit.WS_LINEAR, meta: Metadata | None = None) -> list:
    return HARNESS.events(frame, meta, source)


def test_doc_payload_sell_is_short_liquidation() -> None:
    (ev,) = parse(DOC_FRAME)
    assert ev.side == "short"  # S is the POSITION side: Sell = a short was liquidated
    assert ev.exchange == "bybit" and ev.symbol == "ROSEUSDT"
    assert (ev.base, ev.quote, ev.market) == ("ROSE", "USDT", "linear")
    assert ev.qty == pytest.approx(20000)
    assert ev.price == pytest.approx(0.04499)
    assert ev.notional_usd == pytest.approx(20000 * 0.04499)
    assert ev.ts == pytest.approx(1739502302.929)  # T, not the push ts
    assert ev.sampled is False


def test_live_captures_buy_is_long() -> None:
    (buy,) = parse(LIVE_BUY)
    (sell,) = parse(LIVE_SELL)
    assert buy.side == "long" and sell.side == "short"
    assert buy.notional_usd == pytest.approx(19.7 * 2.585)
    assert sell.base == "MARSCOIN" and sell.ts == pytest.approx(1789670278.053)


def test_inverse_v_is_usd() -> None:
    meta = loaded_meta()
    (ev,) = parse(liquidation("BTCUSD", ("Sell", "25000", "50000", 1_789_670_000_000)),
                  INVERSE_URL, meta)
    assert (ev.market, ev.base, ev.quote, ev.side) == ("inverse", "BTC", "USD", "short")
    assert ev.notional_usd == pytest.approx(25000)  # never v * p
    assert ev.qty == pytest.approx(0.5)


def test_inverse_future_from_metadata_even_without_split_symbol() -> None:
    (ev,) = parse(liquidation("BTCUSDH26", ("Buy", "1000", "62500", 1_789_670_000_000)),
                  INVERSE_URL, loaded_meta())
    assert (ev.market, ev.base, ev.quote, ev.side) == ("inverse", "BTC", "USD", "long")
    assert ev.notional_usd == pytest.approx(1000) and ev.qty == pytest.approx(0.016)


def test_usdc_perp_from_metadata() -> None:
    (ev,) = parse(liquidation("BTCPERP", ("Buy", "0.2", "60000", 1_789_670_000_000)),
                  meta=loaded_meta())
    assert (ev.base, ev.quote, ev.market) == ("BTC", "USDC", "linear")
    assert ev.notional_usd == pytest.approx(12000)


def test_unknown_symbol_market_comes_from_the_connection() -> None:
    frame = liquidation("XYZUSD", ("Buy", "500", "2", 1_789_670_000_000))
    (inv,) = parse(frame, "ws://127.0.0.1:9/v5/public/inverse")
    assert (inv.market, inv.base, inv.quote) == ("inverse", "XYZ", "USD")
    assert inv.notional_usd == pytest.approx(500) and inv.qty == pytest.approx(250)
    (lin,) = parse(liquidation("XYZUSDT", ("Buy", "500", "2", 1_789_670_000_000)))
    assert lin.market == "linear" and lin.notional_usd == pytest.approx(1000)
    assert reason_of(parse, frame, "wss://elsewhere.example/stream") == "unknown_symbol"


def test_multi_entry_data_gives_one_event_each() -> None:
    evs = parse(liquidation("ETHUSDT", ("Buy", "1.5", "3000", 1_789_670_000_000),
                            ("Sell", "2", "3010", 1_789_670_000_100),
                            ("Buy", "1.5", "3000", 1_789_670_000_200)))
    assert [e.side for e in evs] == ["long", "short", "long"]
    assert [e.notional_usd for e in evs] == pytest.approx([4500, 6020, 4500])
    assert len({e.id for e in evs}) == 3


def test_control_frames() -> None:
    def kind(msg: dict) -> str:
        return bybit.parse(orjson.dumps(msg).decode(), bybit.WS_LINEAR, 1.0, Metadata()).kind
    assert kind({"success": True, "ret_msg": "pong", "conn_id": "c", "op": "ping"}) == "pong"
    assert kind({"req_id": "x", "op": "pong", "args": ["1675418560633"], "conn_id": "c"}) == "pong"
    assert kind({"success": True, "ret_msg": "", "conn_id": "c", "req_id": "1",
                 "op": "subscribe"}) == "ack"
    assert reason_of(kind, {"success": False, "ret_msg": "error:handler not found",
                            "conn_id": "c", "req_id": "1", "op": "subscribe"}) == "subscribe_error"


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"type":"snapshot"}', "unexpected_shape"),
    ('{"topic":"tickers.BTCUSDT","data":{}}', "unexpected_channel"),
    ('{"topic":"allLiquidation.BTCUSDT","data":{}}', "unexpected_shape"),
    ('{"topic":"allLiquidation.BTCUSDT","data":[{"T":1,"s":"BTCUSDT","S":"Hold","v":"1","p":"1"}]}',
     "bad_side"),
    ('{"topic":"allLiquidation.BTCUSDT","data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"x","p":"1"}]}',
     "bad_number"),
    ('{"topic":"allLiquidation.BTCUSDT","data":[{"T":1,"s":"BTCUSDT","S":"Buy","p":"1"}]}',
     "missing_field"),
    ('{"topic":"allLiquidation.BTCUSDT","data":[{"T":1,"s":"BTCUSDT","S":"Buy","v":"1","p":"0"}]}',
     "bad_number"),
    ('{"topic":"allLiquidation.FOO","data":[{"T":1,"s":"FOO","S":"Buy","v":"1","p":"1"}]}',
     "unknown_symbol"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(bybit.parse, frame, bybit.WS_LINEAR, 1.0, Metadata()) == reason


def test_metadata_keeps_trading_symbols_with_market() -> None:
    meta = loaded_meta()
    assert sorted(meta.instruments) == ["BTCPERP", "BTCUSD", "BTCUSDH26", "BTCUSDT", "ETHUSDT"]
    assert meta.get("BTCUSDT") == Instrument("BTCUSDT", "BTC", "USDT", "linear")
    assert meta.get("BTCUSD").market == "inverse"  # type: ignore[union-attr]


def test_rest_error_is_a_frame_error() -> None:
    assert reason_of(bybit.load_rest, Metadata(), "https://api.bybit.com/x?category=linear",
                     '{"retCode":10006,"retMsg":"Too many visits!","result":{}}') == "rest_error"


def test_pagination_follows_next_page_cursor() -> None:
    url = bybit.rest_urls({})[0]
    assert url == "https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000"
    nxt = bybit.rest_next(url, instruments_body("linear", LINEAR_PAGES[0], CURSOR))
    assert nxt is not None
    q = parse_qs(urlsplit(nxt).query)
    assert q == {"category": ["linear"], "limit": ["1000"], "cursor": [CURSOR]}
    # A later page replaces the cursor rather than appending a second one.
    again = bybit.rest_next(nxt, instruments_body("linear", [], "page3"))
    assert parse_qs(urlsplit(again or "").query)["cursor"] == ["page3"]
    assert bybit.rest_next(nxt, instruments_body("linear", LINEAR_PAGES[1])) is None
    assert bybit.rest_next(url, "<html>busy</html>") is None


def test_subscribe_is_chunked_and_covers_every_symbol_once() -> None:
    meta = Metadata()
    linear = [f"COIN{i}USDT" for i in range(805)] + ["1000000MOGUSDT", "10000000AIDOGEUSDT"]
    for s in linear:
        meta.instruments[s] = Instrument(s, s[:-4], "USDT", "linear")
    meta.instruments["BTCUSD"] = Instrument("BTCUSD", "BTC", "USD", "inverse")
    conns = {c.name: c for c in bybit.connections(meta, bybit.VENUE.default_urls)}
    assert conns["linear"].url == bybit.WS_LINEAR and conns["inverse"].url == bybit.WS_INVERSE
    msgs = [orjson.loads(m) for m in conns["linear"].subscribe]
    assert len(msgs) == -(-len(linear) // bybit.SUBSCRIBE_CHUNK) == 5
    args = [a for m in msgs for a in m["args"]]
    assert sorted(args) == sorted(f"allLiquidation.{s}" for s in linear)
    assert len(args) == len(set(args))
    for raw, m in zip(conns["linear"].subscribe, msgs, strict=True):
        assert m["op"] == "subscribe" and isinstance(m["req_id"], str)
        assert len(m["args"]) <= bybit.SUBSCRIBE_CHUNK
        assert len(raw) <= bybit.SUBSCRIBE_MAX_CHARS < 21_000
    assert len({m["req_id"] for m in msgs}) == len(msgs)
    assert [orjson.loads(m)["args"] for m in conns["inverse"].subscribe] == [["allLiquidation.BTCUSD"]]


def test_subscribe_chunks_on_chars_for_long_symbols() -> None:
    symbols = [f"{'X' * 60}{i}USDT" for i in range(200)]
    msgs = bybit.subscribe_messages(symbols)
    assert len(msgs) > 1
    assert all(len(m) <= bybit.SUBSCRIBE_MAX_CHARS for m in msgs)
    assert sum(len(orjson.loads(m)["args"]) for m in msgs) == 200


def test_no_connection_without_symbols() -> None:
    meta = Metadata()
    meta.instruments["BTCUSDT"] = Instrument("BTCUSDT", "BTC", "USDT", "linear")
    assert [c.name for c in bybit.connections(meta, {})] == ["linear"]


def test_ping_message() -> None:
    assert orjson.loads(bybit.VENUE.ping_message(1)) == {"op": "ping"}
    assert bybit.VENUE.ping_interval == 20.0


async def test_collector_against_simulator() -> None:
    sim = BybitSim()
    sim.rest_fail = 1  # first REST call answers 503: retried
    async with HARNESS.collector(sim) as rig:
        # Metadata: 503 retried, linear paginated (2 pages), inverse.
        assert len(sim.rest_hits) == 4
        assert sum("cursor=" in h for h in sim.rest_hits) == 1
        assert sorted(rig.col.session.meta.instruments) == [
            "BTCPERP", "BTCUSD", "BTCUSDH26", "BTCUSDT", "ETHUSDT"]
        await sim.wait_for(lambda: len(sim.subscribed[INVERSE_PATH]) == 2)
        assert sorted(sim.subscribed[LINEAR_PATH]) == [
            "allLiquidation.BTCPERP", "allLiquidation.BTCUSDT", "allLiquidation.ETHUSDT"]
        assert sorted(sim.subscribed[INVERSE_PATH]) == [
            "allLiquidation.BTCUSD", "allLiquidation.BTCUSDH26"]
        await sim.push(liquidation("BTCUSDT", ("Buy", "0.5", "60000", 1_789_670_000_000),
                                   ("Sell", "1", "60010", 1_789_670_000_100)), LINEAR_PATH)
        await sim.push(liquidation("BTCUSD", ("Buy", "30000", "60000", 1_789_670_000_200)),
                       INVERSE_PATH)
        await sim.push("{malformed", LINEAR_PATH)
        await rig.published(events=3, deadletters=1)
        # Pings are sent on both connections and answered.
        await rig.pinged('{"op":"ping"}', LINEAR_PATH)
        await rig.pinged('{"op":"ping"}', INVERSE_PATH, pongs=2)
        assert rig.up() == 1
        # Server-side disconnect: reconnect and resubscribe every symbol.
        await rig.reconnected(connections=4, clients=2,
                              also=lambda: len(sim.subscribed[LINEAR_PATH]) == 6
                              and len(sim.subscribed[INVERSE_PATH]) == 4)
        await sim.push(liquidation("ETHUSDT", ("Sell", "2", "3000", 1_789_670_001_000)),
                       LINEAR_PATH)
        await sim.wait_for(lambda: len(rig.sink.events) == 4)
    by_symbol = [(e.symbol, e.side, e.market, round(e.notional_usd, 6)) for e in rig.sink.events]
    assert by_symbol == [("BTCUSDT", "long", "linear", 30000.0),
                         ("BTCUSDT", "short", "linear", 60010.0),
                         ("BTCUSD", "long", "inverse", 30000.0),
                         ("ETHUSDT", "short", "linear", 6000.0)]
    rig.assert_recovered(2)
    assert any(r.source.startswith("http://") and "cursor=" in r.source for r in rig.sink.raws)


async def test_failed_subscribe_is_dead_lettered_and_never_up() -> None:
    await HARNESS.check_subscribe_refused(BybitSim(), lambda n: n >= 2)


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    # Down while still running (not only after cancel), then reconnected.
    await HARNESS.check_unanswered_pings(BybitSim(), connections=4, reconnects=2)


async def test_rejected_subscribe_is_retried_on_a_new_connection() -> None:
    sim = BybitSim()
    sim.fail_subscribe = True
    async with HARNESS.collector(sim, {}, subscribed=False, ping_interval=0.2,
                                 pong_timeout=1.0, backoff_initial=0.05, backoff_cap=0.1,
                                 subscribe_timeout=0.5) as rig:
        await sim.wait_for(lambda: sim.connections >= 4)  # 2 connections, each retried
        sim.fail_subscribe = False  # the venue recovers: the next attempt succeeds
        await asyncio.wait_for(rig.col.subscribed.wait(), 10)
        assert rig.up() == 1
