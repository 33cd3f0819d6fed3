"""Kraken Futures: liquidation trades in the ``trade`` feed (taker side -> liquidated position),
PF_ base vs PI_ USD units from REST instruments, the trade_snapshot replay (never counted), the
heartbeat feed as the pong, and the collector against the simulator (incl. new listings)."""

from __future__ import annotations

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.kraken_futures import (
    DOC_ERROR,
    DOC_HEARTBEAT,
    DOC_HEARTBEAT_SUBSCRIBED,
    DOC_TRADE,
    INFO,
    PRODUCTS,
    WS_PATH,
    KrakenFuturesSim,
    _inst,
    history,
    instruments_body,
    snapshot,
    trade,
    trade_msg,
)
from liqstress.streams.venues import kraken_futures as kf
from liqstress.streams.venues.base import Instrument, Metadata

from .venue_harness import VenueHarness, reason_of

T0 = 1_789_670_000_000


def loaded_meta() -> Metadata:
    meta = Metadata()
    kf.load_rest(meta, kf.rest_urls({})[0], instruments_body())
    return meta


HARNESS = VenueHarness(kf, meta=loaded_meta)
parse_text, parse = HARNESS.out, HARNESS.events


def test_doc_fill_is_not_a_liquidation() -> None:
    out = parse_text(orjson.dumps(DOC_TRADE).decode())
    assert out.kind == "info" and out.events == ()


def test_doc_trade_as_liquidation_taker_sell_is_long() -> None:
    (ev,) = parse({**DOC_TRADE, "type": "liquidation"})
    # side is the TAKER side; the taker is taken to be the liquidated account (unverified):
    # a liquidated taker that SELLS was long.
    assert ev.side == "long"
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "kraken-futures", "PF_XBTUSD", "BTC", "USD", "linear")
    assert ev.qty == pytest.approx(440)  # PF_: qty is base units
    assert ev.notional_usd == pytest.approx(440 * 34893)
    assert ev.price == pytest.approx(34893)
    assert ev.ts == pytest.approx(1612269657.781)
    assert ev.sampled is False


def test_side_rule_is_pinned() -> None:
    assert kf.LIQUIDATED_IS_TAKER is True
    (sell,) = parse(trade("PF_ETHUSD", "sell", 2, 3000, T0, "u1"))
    (buy,) = parse(trade("PF_ETHUSD", "buy", 2, 3000, T0, "u2"))
    assert (sell.side, buy.side) == ("long", "short")


def test_inverse_qty_is_usd() -> None:
    (ev,) = parse(trade("PI_XBTUSD", "buy", 25000, 50000, T0, "u3"))
    assert (ev.market, ev.base, ev.quote, ev.side) == ("inverse", "BTC", "USD", "short")
    assert ev.notional_usd == pytest.approx(25000)  # never qty x price
    assert ev.qty == pytest.approx(0.5)
    assert ev.ts == pytest.approx(T0 / 1000)
    (fut,) = parse(trade("FI_XBTUSD_261225", "sell", 1000, 62500, T0, "u4"))
    assert (fut.market, fut.side, fut.notional_usd) == ("inverse", "long", pytest.approx(1000))


def test_linear_perp_and_fixed_maturity() -> None:
    (sol,) = parse(trade("PF_SOLUSD", "buy", 40, 150, T0, "u5"))
    assert (sol.base, sol.market, sol.side) == ("SOL", "linear", "short")
    assert sol.notional_usd == pytest.approx(6000) and sol.qty == pytest.approx(40)
    (ff,) = parse(trade("FF_XBTUSD_261225", "sell", 0.1, 61000, T0, "u6"))
    assert (ff.base, ff.market, ff.notional_usd) == ("BTC", "linear", pytest.approx(6100))


def test_contract_size_scales_and_non_usd_quote_is_unpriced() -> None:
    meta = Metadata()
    meta.instruments["PF_XBTUSD"] = Instrument("PF_XBTUSD", "BTC", "USD", "linear", 0.001)
    meta.instruments["PI_XBTUSD"] = Instrument("PI_XBTUSD", "BTC", "USD", "inverse", 10.0)
    meta.instruments["PF_XBTEUR"] = Instrument("PF_XBTEUR", "BTC", "EUR", "linear", 1.0)
    (lin,) = parse(trade("PF_XBTUSD", "sell", 500, 60000, T0, "a"), meta)
    assert lin.qty == pytest.approx(0.5) and lin.notional_usd == pytest.approx(30000)
    (inv,) = parse(trade("PI_XBTUSD", "sell", 500, 50000, T0, "b"), meta)
    assert inv.notional_usd == pytest.approx(5000) and inv.qty == pytest.approx(0.1)
    out = parse_text(trade("PF_XBTEUR", "sell", 1, 55000, T0, "c"), meta)
    assert out.events[0].notional_usd is None and out.unpriced == 1
    assert out.events[0].qty == pytest.approx(1)  # base units are known, USD is not


def test_unknown_product_is_unpriced_never_guessed() -> None:
    out = parse_text(trade("PF_NEWUSD", "sell", 1000, 2, T0, "u7"))
    (ev,) = out.events
    assert (ev.base, ev.quote, ev.market, ev.side) == ("NEW", "USD", "linear", "long")
    assert ev.qty is None and ev.notional_usd is None and out.unpriced == 1
    (inv,) = parse(trade("PI_NEWUSD", "buy", 1000, 2, T0, "u8"))
    assert inv.market == "inverse" and inv.notional_usd is None


def test_other_trade_types_are_info() -> None:
    for typ in ("fill", "block", "termination"):
        out = parse_text(trade("PF_XBTUSD", "sell", 1, 60000, T0, "x", typ))
        assert out.kind == "info" and out.events == ()


def test_uid_is_the_dedupe_id() -> None:
    (a,) = parse(trade("PF_XBTUSD", "sell", 1, 60000, T0, "same-uid"))
    (b,) = parse(trade("PF_XBTUSD", "sell", 1, 60000, T0, "same-uid"))
    (c,) = parse(trade("PF_XBTUSD", "sell", 1, 60000, T0, "other-uid"))
    assert a.id == b.id != c.id


def test_trade_snapshot_is_history() -> None:
    out = parse_text(history("PF_XBTUSD"))
    assert out.snapshot is True and len(out.events) == 1  # one old liquidation in it
    fills_only = parse_text(snapshot("PF_XBTUSD", trade_msg("PF_XBTUSD", "buy", 1, 1, T0, "f",
                                                              "fill")))
    assert fills_only.snapshot is True and fills_only.kind == "info"
    session = VenueSession(kf.VENUE)
    session.process(RawFrame(kf.ID, kf.rest_urls({})[0], 1.0, instruments_body()))
    dropped = session.process(RawFrame(kf.ID, kf.WS_URL, 2.0, history("PF_XBTUSD")))
    assert dropped.events == [] and dropped.snapshot_dropped == 1
    live = session.process(RawFrame(kf.ID, kf.WS_URL, T0 / 1000 + 1, trade("PF_XBTUSD", "sell", 1, 60000,
                                                                 T0, "live")))
    assert len(live.events) == 1 and live.snapshot_dropped == 0


def test_control_frames() -> None:
    def kind(msg: dict) -> str:
        return parse_text(orjson.dumps(msg).decode()).kind
    assert kind(INFO) == "info"
    assert kind({"event": "subscribed", "feed": "trade", "product_ids": ["PF_XBTUSD"]}) == "ack"
    assert kind(DOC_HEARTBEAT_SUBSCRIBED) == "pong"
    assert kind(DOC_HEARTBEAT) == "pong"
    assert kind({"event": "unsubscribed", "feed": "trade", "product_ids": ["PF_XBTUSD"]}) == "info"
    for msg, reason in ((DOC_ERROR, "venue_error"),
                        ({"event": "alert", "message": "Bad websocket message"}, "venue_error"),
                        ({"event": "subscribed_failed", "feed": "trade",
                          "product_ids": ["PF_NOPE"]}, "subscribe_error")):
        assert reason_of(kind, msg) == reason


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"feed":"ticker","product_id":"PF_XBTUSD"}', "unexpected_channel"),
    ('{"foo":1}', "unexpected_channel"),
    ('{"feed":"trade_snapshot","product_id":"PF_XBTUSD"}', "unexpected_shape"),
    ('{"feed":"trade_snapshot","product_id":"PF_XBTUSD","trades":[1]}', "unexpected_shape"),
    (trade("PF_XBTUSD", "hold", 1, 60000, T0, "u"), "bad_side"),
    (trade("PF_XBTUSD", "sell", 0, 60000, T0, "u"), "bad_number"),
    (trade("PF_XBTUSD", "sell", 1, -5, T0, "u"), "bad_number"),
    (orjson.dumps({**trade_msg("PF_XBTUSD", "sell", 1, 60000, T0, "u"), "qty": "x"}).decode(),
     "bad_number"),
    (orjson.dumps({k: v for k, v in trade_msg("PF_XBTUSD", "sell", 1, 60000, T0, "u").items()
                   if k != "time"}).decode(), "missing_field"),
    (orjson.dumps({k: v for k, v in trade_msg("PF_XBTUSD", "sell", 1, 60000, T0, "u").items()
                   if k != "uid"}).decode(), "missing_field"),
    (orjson.dumps({k: v for k, v in trade_msg("PF_XBTUSD", "sell", 1, 60000, T0, "u").items()
                   if k != "product_id"}).decode(), "missing_field"),
    (trade("XX_WHAT", "sell", 1, 60000, T0, "u"), "unknown_symbol"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(parse_text, frame) == reason


def test_metadata_from_instruments() -> None:
    meta = loaded_meta()
    assert sorted(meta.instruments) == PRODUCTS == [
        "FF_XBTUSD_261225", "FI_XBTUSD_261225", "PF_ETHUSD", "PF_SOLUSD", "PF_XBTUSD",
        "PI_ETHUSD", "PI_XBTUSD"]
    assert meta.get("PF_XBTUSD") == Instrument("PF_XBTUSD", "BTC", "USD", "linear", 1.0)
    assert meta.get("PI_XBTUSD") == Instrument("PI_XBTUSD", "BTC", "USD", "inverse", 1.0)
    assert meta.get("PF_ETHUSD") == Instrument("PF_ETHUSD", "ETH", "USD", "linear", 1.0)
    odd = Metadata()
    kf.load_rest(odd, kf.rest_urls({})[0], instruments_body([
        _inst("FV_XBTUSD_261225", "futures_vanilla"),  # units undocumented: skipped
        _inst("PF_BADUSD", "futures_inverse"),  # type at odds with the prefix: skipped
        _inst("PF_ZEROUSD", "flexible_futures", contract_size=0),
        _inst("PF_HALFUSD", "flexible_futures", contract_size=0.5),
        {"symbol": "PF_NOTYPEUSD", "tradeable": True},
    ]))
    assert sorted(odd.instruments) == ["PF_HALFUSD", "PF_NOTYPEUSD"]
    assert odd.get("PF_HALFUSD").contract_value == 0.5  # type: ignore[union-attr]


def test_rest_error_is_a_frame_error() -> None:
    for body, reason in (('{"result":"error","error":"apiLimitExceeded"}', "rest_error"),
                         ("<html>", "malformed_json"), ('{"result":"success"}', "unexpected_shape")):
        assert reason_of(kf.load_rest, Metadata(), kf.rest_urls({})[0], body) == reason


def test_subscribe_and_ping_messages() -> None:
    meta = Metadata()
    products = [f"PF_C{i}USD" for i in range(250)]
    for p in products:
        meta.instruments[p] = Instrument(p, p[3:-3], "USD", "linear")
    (conn,) = kf.connections(meta, kf.VENUE.default_urls)
    assert conn.url == "wss://futures.kraken.com/ws/v1"
    msgs = [orjson.loads(m) for m in conn.subscribe]
    assert len(msgs) == 3 and all(m["event"] == "subscribe" and m["feed"] == "trade" for m in msgs)
    assert all(len(m["product_ids"]) <= kf.SUBSCRIBE_CHUNK for m in msgs)
    assert sorted(p for m in msgs for p in m["product_ids"]) == sorted(products)
    assert sorted(conn.topics) == sorted(products)
    assert kf.VENUE.subscribe_for is not None
    assert [orjson.loads(m) for m in kf.VENUE.subscribe_for(["PF_NEWUSD"])] == [
        {"event": "subscribe", "feed": "trade", "product_ids": ["PF_NEWUSD"]}]
    assert orjson.loads(kf.VENUE.ping_message(1)) == {"event": "subscribe", "feed": "heartbeat"}
    assert kf.VENUE.ping_interval < 60 and kf.VENUE.metadata_refresh > 0
    assert kf.rest_urls({}) == ["https://futures.kraken.com/derivatives/api/v3/instruments"]
    assert kf.connections(Metadata(), {}) == []


async def test_collector_against_simulator() -> None:
    sim = KrakenFuturesSim()
    sim.rest_fail = 1
    async with HARNESS.collector(sim) as rig:
        assert len(sim.rest_hits) == 2  # the 503 was retried
        assert sim.subscribed == [PRODUCTS]
        # Each product's trade_snapshot carries an old liquidation: dropped, not counted.
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total") == len(PRODUCTS))
        # Our heartbeat subscribe is answered and the beats are pongs.
        await sim.wait_for(lambda: sim.heartbeat_subscribes >= 1 and rig.frames("pong") >= 3)
        assert rig.count("liqstress_source_up") == 1
        await sim.push(trade("PF_XBTUSD", "sell", 0.5, 60000, T0, "live-1"))
        await sim.push(trade("PI_ETHUSD", "buy", 9000, 3000, T0 + 1, "live-2"))
        await sim.push(trade("PF_XBTUSD", "buy", 3, 60000, T0 + 2, "fill-1", "fill"))
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=1)
        # Server-side disconnect: reconnect, resubscribe, the new snapshot is dropped too.
        await rig.reconnected(also=lambda: len(sim.subscribed) == 2)
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total")
                           == 2 * len(PRODUCTS))
        await sim.push(trade("FF_XBTUSD_261225", "buy", 0.2, 61000, T0 + 3, "live-3"))
        await sim.wait_for(lambda: len(rig.sink.events) == 3)
    assert rig.outcome("symbol", "side", "market", "notional_usd") == [
        ("PF_XBTUSD", "long", "linear", pytest.approx(30000)),
        ("PI_ETHUSD", "short", "inverse", pytest.approx(9000)),
        ("FF_XBTUSD_261225", "short", "linear", pytest.approx(12200))]
    rig.assert_recovered()


async def test_metadata_refresh_subscribes_new_listings() -> None:
    async with HARNESS.collector(KrakenFuturesSim(), metadata_refresh=0.3) as rig:
        sim = rig.sim
        sim.instruments = [*sim.instruments,
                           _inst("PF_NEWUSD", "flexible_futures", base="NEW", quote="USD")]
        await sim.wait_for(lambda: ["PF_NEWUSD"] in sim.subscribed)
        assert sim.subscribed[0] == PRODUCTS
        await sim.push(trade("PF_NEWUSD", "sell", 1000, 2.5, T0, "new-1"))
        await sim.wait_for(lambda: len(rig.sink.events) == 1)
        assert sim.connections == 1  # subscribed on the live connection
    (ev,) = rig.sink.events
    assert (ev.symbol, ev.side, ev.notional_usd) == ("PF_NEWUSD", "long", pytest.approx(2500))


async def test_failed_subscribe_is_dead_lettered_and_never_up() -> None:
    await HARNESS.check_subscribe_refused(KrakenFuturesSim(), settle=0.2)


async def test_missing_heartbeats_mark_source_down_and_reconnect() -> None:
    # Heartbeat subscribes unanswered, no beats.
    sim = KrakenFuturesSim()
    await HARNESS.check_unanswered_pings(sim)
    assert sim.heartbeat_subscribes >= 1
    assert WS_PATH in {p for p, _ in sim.received}
