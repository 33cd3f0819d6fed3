"""dYdX v4: parser on the documented and live trades (LIQUIDATED only, taker side -> position,
size x price), the subscribe snapshot never counted, markets spread over connections by
clobPairId under the 32-per-connection limit, and the collector against the simulator."""

from __future__ import annotations

import orjson
import pytest
import websockets

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.dydx import (
    CONNECTED,
    DOC_FRAME,
    LIVE_BUY,
    LIVE_SELL,
    MARKETS,
    DydxSim,
    batch_data,
    channel_data,
    error,
    history,
    market,
    markets_body,
    subscribed,
    trade,
)
from liqstress.streams.venues import dydx
from liqstress.streams.venues.base import Metadata

from .venue_harness import VenueHarness, reason_of

T0 = 1_789_670_000_000
REST_URL = "https://indexer.dydx.trade/v4/perpetualMarkets"
HARNESS = VenueHarness(dydx)


def parse(frame: object, kind: str | None = None) -> list:
    out = HARNESS.out(frame)
    if kind is not None:
        assert out.kind == kind
    return list(out.events)


def loaded_meta(markets: list | None = None) -> Metadata:
    meta = Metadata()
    dydx.load_rest(meta, REST_URL, markets_body(MARKETS if markets is None else markets))
    return meta


def test_doc_payload_buy_is_short_liquidation() -> None:
    (ev,) = parse(DOC_FRAME, "data")
    assert ev.side == "short"  # taker = liquidation order: a forced BUY closes a short
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "dydx", "BTC-USD", "BTC", "USD", "linear")
    assert ev.qty == pytest.approx(0.000100431)  # base units
    assert ev.notional_usd == pytest.approx(0.000100431 * 27839)
    assert ev.ts == pytest.approx(1680568159.353)  # createdAt 2023-04-04T00:29:19.353Z
    assert ev.sampled is False


def test_live_sell_is_long_liquidation() -> None:
    (sell,) = parse(channel_data("BTC-USD", LIVE_SELL))
    assert sell.side == "long"
    assert sell.notional_usd == pytest.approx(0.0004 * 75974)
    assert sell.ts == pytest.approx(1789652387.542)  # 2026-09-17T13:39:47.542Z
    (buy,) = parse(channel_data("SOL-USD", LIVE_BUY))
    assert (buy.side, buy.base, buy.notional_usd) == ("short", "SOL", pytest.approx(499.6))


def test_only_liquidated_trades_count_deleveraged_is_kept_apart() -> None:
    adl = trade("a1", "SELL", "3", "60000", T0, kind="DELEVERAGED")
    limit = trade("l1", "BUY", "1", "60000", T0, kind="LIMIT")
    mkt = trade("m1", "SELL", "1", "60000", T0, kind="MARKET")
    assert parse(channel_data("BTC-USD", adl, limit, mkt), "info") == []
    liq = trade("q1", "SELL", "0.5", "60000", T0)
    (ev,) = parse(channel_data("BTC-USD", limit, adl, liq, mkt), "data")
    assert (ev.side, ev.notional_usd) == ("long", pytest.approx(30000))
    # A trade type added later is not a liquidation either.
    assert parse(channel_data("BTC-USD", trade("x", "SELL", "1", "1", T0, kind="TWAP")), "info") == []


def test_batched_trades() -> None:
    evs = parse(batch_data("ETH-USD", [trade("e1", "SELL", "2", "3000", T0)],
                           [trade("e2", "BUY", "1", "3010", T0 + 5, kind="LIMIT"),
                            trade("e3", "BUY", "1.5", "3020", T0 + 9)]), "data")
    assert [(e.side, e.notional_usd) for e in evs] == [
        ("long", pytest.approx(6000)), ("short", pytest.approx(4530))]
    assert [e.ts for e in evs] == pytest.approx([T0 / 1000, (T0 + 9) / 1000])


def test_venue_trade_id_is_the_dedupe_key() -> None:
    (a,) = parse(channel_data("BTC-USD", trade("same-id", "SELL", "1", "60000", T0)))
    (b,) = parse(channel_data("BTC-USD", trade("same-id", "SELL", "1", "60000", T0)))
    (c,) = parse(channel_data("BTC-USD", trade("other-id", "SELL", "1", "60000", T0)))
    assert a.id == b.id != c.id


def test_subscribed_is_the_ack_and_a_snapshot_never_counted() -> None:
    out = dydx.parse(subscribed("BTC-USD", history("BTC-USD")), dydx.WS_URL, 1.0, Metadata())
    assert out.kind == "ack" and out.snapshot is True
    assert [e.side for e in out.events] == ["long", "short"]  # the two old LIQUIDATED rows
    session = VenueSession(dydx.VENUE)
    got = session.process(RawFrame("dydx", dydx.WS_URL, 2.0, subscribed("BTC-USD", history("BTC-USD"))))
    assert got.kind == "ack" and got.events == [] and got.snapshot_dropped == 2
    # A malformed old trade in the history must not cost the ack.
    broken = subscribed("BTC-USD", [{"id": "x", "type": "LIQUIDATED", "side": "??"}, LIVE_SELL])
    out = dydx.parse(broken, dydx.WS_URL, 1.0, Metadata())
    assert out.kind == "ack" and len(out.events) == 1
    empty = dydx.parse('{"type":"subscribed","channel":"v4_trades","id":"BTC-USD","contents":{}}',
                       dydx.WS_URL, 1.0, Metadata())
    assert empty.kind == "ack" and empty.events == ()


def test_control_frames() -> None:
    def kind(frame: object) -> str:
        text = frame if isinstance(frame, str) else orjson.dumps(frame).decode()
        return dydx.parse(text, dydx.WS_URL, 1.0, Metadata()).kind

    assert kind(CONNECTED) == "info"
    assert kind({"type": "unsubscribed", "connection_id": "c", "message_id": 9,
                 "channel": "v4_trades", "id": "liqstress-heartbeat-3"}) == "pong"
    assert kind({"type": "unsubscribed", "connection_id": "c", "message_id": 9,
                 "channel": "v4_trades", "id": "BTC-USD"}) == "info"
    assert kind({"type": "pong", "connection_id": "c", "message_id": 2, "id": 1}) == "pong"


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"type":"feed"}', "unexpected_shape"),
    (error("Per-connection subscription limit reached for v4_trades (limit=32)."), "subscribe_error"),
    (error("Internal error, could not fetch data for subscription: v4_trades.", 3, "v4_trades",
           "BTC-USD"), "subscribe_error"),
    (error("Invalid message: could not parse"), "venue_error"),
    ('{"type":"channel_data","channel":"v4_orderbook","id":"BTC-USD","contents":{}}',
     "unexpected_channel"),
    ('{"type":"channel_data","channel":"v4_trades","contents":{"trades":[]}}', "missing_field"),
    ('{"type":"channel_data","channel":"v4_trades","id":"BTC-USD","contents":{}}', "unexpected_shape"),
    ('{"type":"channel_batch_data","channel":"v4_trades","id":"BTC-USD","contents":{}}',
     "unexpected_shape"),
    (channel_data("BTC-USD", {"id": "x", "side": "SELL", "size": "1", "price": "1"}), "missing_field"),
    (channel_data("BTC-USD", trade("x", "HOLD", "1", "1", T0)), "bad_side"),
    (channel_data("BTC-USD", trade("x", "SELL", "one", "1", T0)), "bad_number"),
    (channel_data("BTC-USD", trade("x", "SELL", "1", "0", T0)), "bad_number"),
    (channel_data("BTC-USD", {**trade("x", "SELL", "1", "1", T0), "createdAt": "yesterday"}),
     "bad_timestamp"),
    (channel_data("BTC-USD", {**trade("x", "SELL", "1", "1", T0), "createdAt": None}),
     "missing_field"),
    (channel_data("BTCUSD", trade("x", "SELL", "1", "1", T0)), "unknown_symbol"),
    (channel_data("BTC-USD", 7), "unexpected_shape"),  # type: ignore[arg-type]
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(dydx.parse, frame, dydx.WS_URL, 1.0, Metadata()) == reason


def test_metadata_keeps_active_markets_with_clob_pair_ids() -> None:
    meta = loaded_meta()
    assert len(meta.instruments) == 40 and "LUNA-USD" not in meta.instruments
    btc = meta.get("BTC-USD")
    assert isinstance(btc, dydx.DydxInstrument)
    assert (btc.base, btc.quote, btc.market, btc.clob_pair_id) == ("BTC", "USD", "linear", 0)
    # A refresh replaces the listing: a market that stopped trading leaves.
    dydx.load_rest(meta, REST_URL, markets_body([market("BTC-USD", 0),
                                                  market("ETH-USD", 1, status="CANCEL_ONLY")]))
    assert list(meta.instruments) == ["BTC-USD"]
    # Tickers with dashes inside the base keep everything before the last dash.
    odd = loaded_meta([market("WIF,RAYDIUM,EKPQ-USD", 90)])
    assert odd.get("WIF,RAYDIUM,EKPQ-USD").base == "WIF,RAYDIUM,EKPQ"  # type: ignore[union-attr]


@pytest.mark.parametrize("body,reason", [
    ("<html>", "malformed_json"),
    ('{"errors":[{"msg":"Too many requests"}]}', "rest_error"),
    ('{"markets":[]}', "unexpected_shape"),
    (markets_body([market("LUNA-USD", 41, status="FINAL_SETTLEMENT")]), "no_active_markets"),
])
def test_unusable_rest_bodies(body: str, reason: str) -> None:
    meta = loaded_meta()
    assert reason_of(dydx.load_rest, meta, REST_URL, body) == reason
    assert len(meta.instruments) == 40  # the previous listing stays


def test_connections_split_by_clob_pair_id_under_the_limit() -> None:
    assert dydx.rest_urls({}) == [REST_URL]
    conns = dydx.connections(loaded_meta(), dydx.VENUE.default_urls)
    assert [c.name for c in conns] == ["trades-0", "trades-1"]
    assert all(c.url == "wss://indexer.dydx.trade/v4/ws" for c in conns)
    assert [len(c.topics) for c in conns] == [32, 8]
    assert all(len(c.subscribe) <= dydx.MARKETS_PER_CONNECTION for c in conns)
    msgs = [orjson.loads(m) for c in conns for m in c.subscribe]
    assert all(m["type"] == "subscribe" and m["channel"] == "v4_trades" for m in msgs)
    assert sorted(m["id"] for m in msgs) == sorted(loaded_meta().instruments)
    assert [orjson.loads(m)["id"] for m in conns[0].subscribe] == list(conns[0].topics)
    # A new listing joins the group of its clobPairId; no existing market moves.
    grown = loaded_meta([*MARKETS, market("AAA-USD", 40), market("ZZZ-USD", 70)])
    fresh = {c.name: c for c in dydx.connections(grown, {})}
    assert fresh["trades-0"].topics == conns[0].topics
    assert set(fresh["trades-1"].topics) - set(conns[1].topics) == {"AAA-USD"}
    assert fresh["trades-2"].topics == ("ZZZ-USD",)
    assert dydx.VENUE.subscribe_for is not None
    assert [orjson.loads(m) for m in dydx.VENUE.subscribe_for(["AAA-USD"])] == [
        {"type": "subscribe", "channel": "v4_trades", "id": "AAA-USD"}]


def test_heartbeat_message() -> None:
    assert orjson.loads(dydx.VENUE.ping_message(4)) == {
        "type": "unsubscribe", "channel": "v4_trades", "id": "liqstress-heartbeat-4"}
    assert dydx.VENUE.ping_interval < 30 and not dydx.VENUE.sampled


async def test_collector_against_simulator() -> None:
    sim = DydxSim(heartbeat_every=0.1, heartbeat_timeout=1.0)
    sim.rest_fail = 1
    async with HARNESS.collector(sim, metadata_refresh=0.3) as rig:
        assert sim.rest_hits[:2] == ["/v4/perpetualMarkets"] * 2  # 503, then retried
        # 40 ACTIVE markets over two connections, none above the indexer's 32.
        assert sorted(len(s) for s in sim.subscriptions()) == [8, 32]
        assert sorted(sim.subscribed) == sorted(m["ticker"] for m in MARKETS[:40])
        # Each subscribe snapshot held two old liquidations: dropped, never published.
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total") == 80)
        assert rig.sink.events == []
        await sim.push_trades("BTC-USD", trade("t1", "SELL", "0.5", "60000", T0),
                              trade("t2", "BUY", "1", "60010", T0 + 1, kind="LIMIT"))
        await sim.push_trades("M35-USD", trade("t3", "BUY", "100", "2", T0 + 2),
                              trade("t4", "SELL", "7", "2", T0 + 3, kind="DELEVERAGED"))
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=2)
        # Protocol pings from the server answered by the library; app heartbeats answered.
        await sim.wait_for(lambda: sim.protocol_pongs >= 4)
        await rig.pinged('"liqstress-heartbeat-', pongs=2, exact=False)
        assert sim.heartbeat_closes == 0
        assert rig.count("liqstress_source_up") == 1
        # New listings: AAA-USD (clobPairId 40) is subscribed on the live second connection,
        # ZZZ-USD (70) opens a third one.
        sim.markets += [market("AAA-USD", 40), market("ZZZ-USD", 70)]
        await sim.wait_for(lambda: "AAA-USD" in sim.subscribed and "ZZZ-USD" in sim.subscribed)
        assert sim.connections == 3
        assert sorted(len(s) for s in sim.subscriptions()) == [1, 9, 32]
        await sim.push_trades("AAA-USD", trade("t5", "SELL", "1", "10", T0 + 4))
        await sim.wait_for(lambda: len(rig.sink.events) == 3)
        # Server-side disconnect: every connection reconnects and resubscribes.
        before = len(sim.subscribed)
        await rig.reconnected(connections=0, clients=3,
                              also=lambda: len(sim.subscribed) == before + 42)
        assert sorted(len(s) for s in sim.subscriptions()) == [1, 9, 32]
        await sim.push_trades("ZZZ-USD", trade("t6", "BUY", "3", "5", T0 + 5))
        await sim.wait_for(lambda: len(rig.sink.events) == 4)
    assert rig.outcome("symbol", "side", "notional_usd") == [
        ("BTC-USD", "long", pytest.approx(30000)),
        ("M35-USD", "short", pytest.approx(200)),
        ("AAA-USD", "long", pytest.approx(10)),
        ("ZZZ-USD", "short", pytest.approx(15))]
    assert {d["reason"] for d in rig.sink.deadletters} == {"malformed_json"}
    assert rig.count("liqstress_source_reconnects_total") >= 3


async def test_failed_subscribe_is_dead_lettered_and_never_up() -> None:
    await HARNESS.check_subscribe_refused(DydxSim(markets=MARKETS[:3]), lambda n: n >= 3,
                                          settle=0.3, metadata_refresh=0)


async def test_unanswered_heartbeats_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(DydxSim(markets=MARKETS[:3]), metadata_refresh=0)


async def test_simulator_enforces_the_per_connection_limit_and_heartbeat() -> None:
    async with DydxSim(heartbeat_every=0.05, heartbeat_timeout=0.2) as sim:
        async with websockets.connect(sim.ws_url(), ping_interval=None) as ws:
            assert orjson.loads(await ws.recv())["type"] == "connected"
            for m in MARKETS[:33]:
                await ws.send(orjson.dumps({"type": "subscribe", "channel": "v4_trades",
                                            "id": m["ticker"]}).decode())
            replies = [orjson.loads(await ws.recv()) for _ in range(33)]
            assert [r["type"] for r in replies] == ["subscribed"] * 32 + ["error"]
            assert "limit=32" in replies[-1]["message"]
        # A client whose library never answers protocol pings is dropped.
        async with websockets.connect(sim.ws_url(), ping_interval=None, close_timeout=0.2) as ws:
            ws.transport.pause_reading()  # never sees the ping, so never answers it
            await sim.wait_for(lambda: sim.heartbeat_closes >= 1, timeout=5)
