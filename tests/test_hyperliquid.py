"""Hyperliquid: the backstop-only trades heuristic (side rule pinned on the vault's own fill),
node fills (only the liquidated user's fill counts), both line shapes, metadata over POST, the
allMids price connection, the collector against the simulator, and a node fills directory
appended to while it runs."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson
import pytest

from liqstress.infra.metrics import Metrics
from liqstress.recording import RawFrame
from liqstress.streams.collector import Collector
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.base import MemorySink, running
from liqstress.streams.sims.hyperliquid import (
    ADL_BLOCK,
    ALL_MIDS_ACK,
    DOC_ALL_MIDS,
    LIVE_ACK,
    LIVE_ERROR,
    LIVE_TRADES,
    MAKER,
    MAKER_MARKET_FILL,
    META_COINS,
    OTHER,
    PONG,
    PRICES_PATH,
    TRADER,
    VAULT,
    VAULT4,
    VAULT_BACKSTOP_FILL,
    HyperliquidSim,
    all_mids,
    block_line,
    fill,
    meta_body,
    node_line,
    trade,
    trades,
)
from liqstress.streams.venues import hyperliquid as hl
from liqstress.streams.venues.base import Instrument, Metadata, Parsed

from .venue_harness import VenueHarness, reason_of

T = 1_789_670_000_000
NODE_SOURCE = "file:///home/hl/hl/data/node_fills_by_block/hourly"


HARNESS = VenueHarness(hl)


def parse(text: str, source: str = hl.WS_URL, meta: Metadata | None = None) -> list:
    return HARNESS.events(text, meta, source)


def kind(text: str) -> str:
    return hl.parse(text, hl.WS_URL, 1.0, Metadata()).kind


# ---- (a) trades + liquidator vault ---------------------------------------------------------

def test_vault_buying_is_a_liquidated_long() -> None:
    (ev,) = parse(trades(trade("BTC", "A", "60000", "0.5", T, VAULT, TRADER, tid=42)))
    assert ev.side == "long"  # the long was sold INTO the vault: the vault is the buyer
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "hyperliquid", "BTC", "BTC", "USDC", "linear")
    assert ev.qty == pytest.approx(0.5) and ev.price == pytest.approx(60000)
    assert ev.notional_usd == pytest.approx(30000)  # sz base coin x px
    assert ev.ts == pytest.approx(T / 1000)
    assert ev.sampled is True  # backstop only: a floor


def test_vault_selling_is_a_liquidated_short() -> None:
    (ev,) = parse(trades(trade("ETH", "B", "3000", "2", T, TRADER, VAULT4)))
    assert ev.side == "short" and ev.notional_usd == pytest.approx(6000)


def test_side_rule_matches_the_vaults_own_backstop_fill() -> None:
    # In the vault's own userFills a backstop reads side "B" (vault bought) with
    # dir "Liquidated Cross Long": the same liquidation on the public tape has the vault as
    # users[0] (buyer), and must come out long.
    f = VAULT_BACKSTOP_FILL
    assert (f["side"], f["dir"]) == ("B", "Liquidated Cross Long")
    tape = trade(f["coin"], "B", f["px"], f["sz"], f["time"], VAULT, f["liquidation"]["liquidatedUser"])
    (ev,) = parse(trades(tape))
    assert ev.side == "long" and ev.notional_usd == pytest.approx(67.5499 * 28.33)


@pytest.mark.parametrize("vault", sorted(hl.LIQUIDATORS))
def test_every_liquidator_vault_counts_case_insensitively(vault: str) -> None:
    (ev,) = parse(trades(trade("SOL", "A", "150", "10", T, vault.upper().replace("0X", "0x"),
                               TRADER)))
    assert ev.side == "long"


def test_ordinary_trades_are_not_liquidations() -> None:
    assert parse(LIVE_TRADES) == []  # live captures: no vault among the users
    assert parse(trades(trade("BTC", "A", "1", "1", T, VAULT, VAULT4))) == []  # vault to vault
    assert parse('{"channel":"trades","data":[]}') == []


def test_one_event_per_vault_trade_and_ids_are_native() -> None:
    evs = parse(trades(trade("BTC", "A", "60000", "1", T, VAULT, TRADER, tid=1),
                       trade("BTC", "A", "59990", "1", T, MAKER, OTHER, tid=2),
                       trade("BTC", "A", "59980", "1", T, VAULT, TRADER, tid=3)))
    assert [e.price for e in evs] == [60000, 59980]
    assert len({e.id for e in evs}) == 2
    again = parse(trades(trade("BTC", "A", "60000", "1", T, VAULT, TRADER, tid=1)))
    assert again[0].id == evs[0].id  # the same trade after a reconnect dedupes


def test_same_backstop_via_trades_and_node_fills_has_one_id() -> None:
    (ws,) = parse(trades(trade("BTC", "A", "60000", "1", T, VAULT, TRADER, tid=7)))
    (node,) = parse(node_line(TRADER, fill("BTC", "60000", "1", "A", T, "Liquidated Cross Long",
                                           7, TRADER, "backstop")), NODE_SOURCE)
    assert ws.id == node.id and ws.side == node.side == "long"
    assert (ws.sampled, node.sampled) == (True, False)


def test_control_frames() -> None:
    assert kind(hl.CONNECTED) == "info"
    assert kind(LIVE_ACK) == "ack"
    assert kind(PONG) == "pong"
    assert kind('{"channel":"subscriptionResponse","data":{"method":"unsubscribe",'
                '"subscription":{"type":"trades","coin":"BTC"}}}') == "info"
    assert reason_of(kind, LIVE_ERROR) == "subscribe_error"
    assert reason_of(kind, '{"channel":"error","data":"Too many messages"}') == "venue_error"


def test_hip3_coin_is_counted_unpriced_and_spot_is_refused() -> None:
    (ev,) = parse(trades(trade("xyz:XYZ100", "A", "25000", "0.1", T, VAULT, TRADER)))
    assert (ev.symbol, ev.base, ev.qty, ev.notional_usd) == ("xyz:XYZ100", "XYZ100", 0.1, None)
    spot = trades(trade("@107", "A", "1", "1", T, VAULT, TRADER))
    assert reason_of(parse, spot) == "unsupported_instrument"


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("42", "unexpected_shape"),
    ('{"type":"trades"}', "unexpected_shape"),
    ('{"channel":"l2Book","data":{}}', "unexpected_channel"),
    ('{"channel":"trades","data":{}}', "unexpected_shape"),
    ('{"channel":"trades","data":[1]}', "unexpected_shape"),
    ('{"channel":"trades","data":[{"coin":"BTC","px":"1","sz":"1","time":1}]}', "missing_field"),
    ('{"channel":"trades","data":[{"coin":"BTC","px":"1","sz":"1","time":1,"users":["a"]}]}',
     "missing_field"),
    (trades(trade("BTC", "A", "x", "1", T, VAULT, TRADER)), "bad_number"),
    (trades(trade("BTC", "A", "0", "1", T, VAULT, TRADER)), "bad_number"),
    (trades({**trade("BTC", "A", "1", "1", T, VAULT, TRADER), "coin": ""}), "missing_field"),
])
def test_bad_ws_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(hl.parse, frame, hl.WS_URL, 1.0, Metadata()) == reason


# ---- (b) node fills ------------------------------------------------------------------------

@pytest.mark.parametrize("dir_,order_side,side", [
    ("Liquidated Cross Long", "A", "long"),
    ("Liquidated Isolated Long", "A", "long"),
    ("Liquidated Cross Short", "B", "short"),
    ("Liquidated Isolated Short", "B", "short"),
    ("Close Long", "A", "long"),
    ("Close Short", "B", "short"),
    ("Auto-Deleveraging", "A", "long"),  # no position named: the order side closes it
    ("Auto-Deleveraging", "B", "short"),
    ("Long > Short", "A", "long"),
])
def test_node_fill_side_rule(dir_: str, order_side: str, side: str) -> None:
    (ev,) = parse(node_line(TRADER, fill("ETH", "3000", "2", order_side, T, dir_, 9, TRADER)),
                  NODE_SOURCE)
    assert ev.side == side
    assert ev.notional_usd == pytest.approx(6000) and ev.qty == pytest.approx(2)
    assert ev.ts == pytest.approx(T / 1000) and ev.sampled is False


def test_block_counts_only_the_liquidated_users_own_fill() -> None:
    line = block_line(
        800_000_001, T,
        (TRADER, fill("SOL", "150", "100", "A", T, "Liquidated Cross Long", 11, TRADER)),
        (MAKER, fill("SOL", "150", "60", "B", T, "Open Long", 11, TRADER)),  # makers absorbing
        (OTHER, fill("SOL", "150", "40", "B", T, "Close Short", 12, TRADER)),
        (VAULT, fill("SOL", "150", "5", "B", T, "Liquidated Cross Long", 13, TRADER, "backstop")),
        (MAKER, fill("BTC", "60000", "1", "B", T, "Open Long", 14)),  # no liquidation at all
    )
    (ev,) = parse(line, NODE_SOURCE)
    assert (ev.symbol, ev.side, ev.notional_usd) == ("SOL", "long", 15000.0)


def test_counterparty_fills_never_count() -> None:
    assert parse(node_line(MAKER, MAKER_MARKET_FILL), NODE_SOURCE) == []  # names another user
    assert parse(node_line(VAULT, VAULT_BACKSTOP_FILL), NODE_SOURCE) == []  # the vault's side
    # The 2025-10-10 archive line: a trader deleveraged against the vault is not liquidated.
    assert parse(ADL_BLOCK, NODE_SOURCE) == []
    # ... nor is the vault's own side of it (its inherited position was counted at backstop).
    vault_adl = fill("AVAX", "22.075", "28.53", "A", T, "Auto-Deleveraging", 1, VAULT, "backstop")
    assert parse(node_line(VAULT, vault_adl), NODE_SOURCE) == []


def test_node_fill_user_match_is_case_insensitive_and_hip3_unpriced() -> None:
    f = dict(MAKER_MARKET_FILL, liquidation={"liquidatedUser": OTHER.upper().replace("0X", "0x"),
                                             "markPx": "116.84", "method": "market"},
             side="B", dir="Close Short")
    (ev,) = parse(node_line(OTHER, f), NODE_SOURCE)
    assert (ev.symbol, ev.base, ev.side, ev.qty, ev.notional_usd) == (
        "xyz:CRWV", "CRWV", "short", 2.47, None)
    out = VenueSession(hl.VENUE).process(RawFrame("hyperliquid", NODE_SOURCE, 1786628573.0,
                                                  node_line(OTHER, f)))
    assert len(out.events) == 1 and out.unpriced == 1  # counted, never priced by a guess


@pytest.mark.parametrize("line,reason", [
    ("{broken", "malformed_json"),
    ('{"block_number":1}', "unexpected_shape"),
    ('{"events":{}}', "unexpected_shape"),
    ('{"events":[["0xabc"]]}', "unexpected_shape"),
    ('["0xabc", 1]', "unexpected_shape"),
    (node_line(TRADER, {**fill("BTC", "1", "1", "A", T, "Close Long", 1), "liquidation": True}),
     "unexpected_shape"),
    (node_line(TRADER, fill("BTC", "1", "1", "X", T, "Settlement", 1, TRADER)), "bad_side"),
    (node_line(TRADER, fill("BTC", "1", "-1", "A", T, "Close Long", 1, TRADER)), "bad_number"),
    (node_line(TRADER, {k: v for k, v in fill("BTC", "1", "1", "A", T, "Close Long", 1,
                                               TRADER).items() if k != "time"}), "missing_field"),
    (node_line(TRADER, fill("PURR/USDC", "1", "1", "A", T, "Sell", 1, TRADER)),
     "unsupported_instrument"),
])
def test_bad_node_lines_raise_with_reason(line: str, reason: str) -> None:
    assert reason_of(hl.parse, line, NODE_SOURCE, 1.0, Metadata()) == reason


# ---- metadata, connections -----------------------------------------------------------------

def test_meta_over_post_skips_delisted() -> None:
    (url,) = hl.rest_urls(hl.VENUE.default_urls)
    assert url == 'https://api.hyperliquid.xyz/info#{"type":"meta"}'
    meta = Metadata()
    hl.load_rest(meta, url, meta_body())
    assert sorted(meta.instruments) == sorted(META_COINS)
    assert meta.get("kPEPE") == Instrument("kPEPE", "kPEPE", "USDC", "linear")
    for body, reason in (("<html>", "malformed_json"), ('{"universe":[]}', "unexpected_shape"),
                         ("[]", "unexpected_shape")):
        assert reason_of(hl.load_rest, Metadata(), url, body) == reason


def test_connections_per_source() -> None:
    meta = Metadata()
    hl.load_rest(meta, "x", meta_body())
    ws, mids = hl.connections(meta, dict(hl.VENUE.default_urls))
    assert ws.url == "wss://api.hyperliquid.xyz/ws" and list(ws.topics) == sorted(META_COINS)
    assert (ws.name, ws.kind) == ("trades", "liquidations")
    assert [orjson.loads(m) for m in ws.subscribe] == [
        {"method": "subscribe", "subscription": {"type": "trades", "coin": c}}
        for c in sorted(META_COINS)]
    assert mids.name == "allmids"
    # No coins: no trades connection (it would look healthy and stay silent); prices still run.
    assert [c.name for c in hl.connections(Metadata(), dict(hl.VENUE.default_urls))] == [
        "allmids"]
    urls = {**hl.VENUE.default_urls, "node_fills": "file:///data/node_fills_by_block/hourly",
            "prices": "off"}
    (node,) = hl.connections(meta, urls)
    assert (node.name, node.url, tuple(node.subscribe)) == (
        "node_fills", "file:///data/node_fills_by_block/hourly", ())
    assert hl.rest_urls(urls) == []  # node mode needs no metadata
    assert hl.connections(meta, {"node_fills": "/data/x"})[0].url == "file:///data/x"
    with pytest.raises(ValueError):
        hl.connections(meta, {"node_fills": "https://example.com/fills"})
    assert orjson.loads(hl.VENUE.ping_message(1)) == {"method": "ping"}
    assert hl.VENUE.sampled is True and hl.VENUE.drop_before_subscribe is True


# ---- prices: allMids -------------------------------------------------------------------------

RECV = 1_800_000_000.5


def parse_mids(text: str, recv_ts: float = RECV) -> Parsed:
    return hl.parse(text, hl.prices_url(hl.VENUE.default_urls) or "", recv_ts, Metadata())


def test_doc_all_mids_frame_becomes_mid_ticks_dated_at_receipt() -> None:
    parsed = parse_mids(DOC_ALL_MIDS)
    assert parsed.kind == "data" and parsed.events == ()
    ticks = {t.symbol: t for t in parsed.prices}
    # Spot pairs (@107 by index, PURR/USDC by name) are skipped: perps only.
    assert sorted(ticks) == ["BTC", "ETH", "SOL", "kPEPE"]
    btc = ticks["BTC"]
    assert (btc.exchange, btc.coin, btc.price, btc.kind) == ("hyperliquid", "BTC", 97000.5, "mid")
    # allMids carries no time: the tick is dated at its receipt.
    assert all(t.ts == t.recv_ts == RECV for t in parsed.prices)


def test_kpepe_mid_is_per_1000_coins_and_comes_out_per_pepe() -> None:
    (tick,) = parse_mids(all_mids({"kPEPE": "0.012345", "@1": "2"})).prices
    assert (tick.symbol, tick.coin) == ("kPEPE", "PEPE")
    assert tick.price == pytest.approx(0.000012345)
    (kava,) = parse_mids(all_mids({"KAVA": "0.5"})).prices  # only a lowercase k is a multiplier
    assert (kava.coin, kava.price) == ("KAVA", 0.5)


def test_builder_dex_and_spot_keys_are_skipped() -> None:
    parsed = parse_mids(all_mids({"xyz:XYZ100": "25000", "@107": "38.9", "PURR/USDC": "0.18"}))
    assert (parsed.kind, parsed.prices) == ("info", ())
    assert parse_mids(all_mids({})).kind == "info"


def test_bad_mids_are_skipped_but_a_frame_of_only_bad_mids_dead_letters() -> None:
    parsed = parse_mids(all_mids({"BTC": "NaN", "ETH": "-1", "SOL": "x", "DOGE": None,
                                  "HYPE": True, "XRP": 0, "SUI": "3.5", "@5": "bad"}))
    assert [(t.symbol, t.price) for t in parsed.prices] == [("SUI", 3.5)]
    for mids in ({"BTC": "0"}, {"BTC": "abc", "@107": "38.9"}, {"ETH": "inf"}, {"SOL": ""}):
        assert reason_of(parse_mids, all_mids(mids)) == "bad_price", mids


@pytest.mark.parametrize("frame", [
    '{"channel":"allMids","data":[]}',
    '{"channel":"allMids","data":{"mids":[]}}',
    '{"channel":"allMids","data":{}}',
    '{"channel":"allMids"}',
])
def test_all_mids_of_the_wrong_shape(frame: str) -> None:
    assert reason_of(parse_mids, frame) == "unexpected_shape"


def test_all_mids_control_frames() -> None:
    assert kind(ALL_MIDS_ACK) == "ack"
    # The error a rejected allMids subscribe gets.
    refused = ('{"channel":"error","data":"Error parsing JSON into valid websocket request: '
               '{\\"method\\":\\"subscribe\\",\\"subscription\\":{\\"type\\":\\"allMids\\"}}"}')
    assert reason_of(kind, refused) == "subscribe_error"


def test_prices_connection_on_the_ws_endpoint_with_a_source_of_its_own() -> None:
    meta = Metadata()
    hl.load_rest(meta, "x", meta_body())
    conns = {c.name: c for c in hl.connections(meta, dict(hl.VENUE.default_urls))}
    mids = conns["allmids"]
    assert (mids.kind, mids.min_interval) == ("prices", hl.PRICE_INTERVAL)
    assert [orjson.loads(m) for m in mids.subscribe] == [
        {"method": "subscribe", "subscription": {"type": "allMids"}}]
    assert mids.expected_acks is None and tuple(mids.topics) == ()  # one ack, no refresh topics
    # The same endpoint, its port spelled out: one server, two recording sources.
    assert mids.url == "wss://api.hyperliquid.xyz:443/ws" != conns["trades"].url
    # It follows a `ws` override (testnet, proxy) unless `prices` names its own URL.
    assert hl.prices_url({"ws": "wss://api.hyperliquid-testnet.xyz/ws"}) == \
        "wss://api.hyperliquid-testnet.xyz:443/ws"
    assert hl.prices_url({"ws": "ws://127.0.0.1:8080/ws"}) == "ws://127.0.0.1:8080/ws"
    assert hl.prices_url({"prices": "wss://proxy.example/hl"}) == "wss://proxy.example/hl"
    # `off` turns it off, whichever liquidation source runs.
    assert [c.name for c in hl.connections(meta, {"prices": "off"})] == ["trades"]
    node = {c.name: c.url for c in hl.connections(meta, {"node_fills": "/data/x"})}
    assert node == {"node_fills": "file:///data/x",
                    "allmids": "wss://api.hyperliquid.xyz:443/ws"}
    assert [c.name for c in hl.connections(meta, {"node_fills": "/data/x", "prices": "off"})] \
        == ["node_fills"]


def test_all_mids_ack_never_moves_the_trades_history_cut_off() -> None:
    t0 = 1_789_000_000  # seconds: every time here must be after 2017 to be plausible
    urls = dict(hl.VENUE.default_urls)
    trades_src, mids_src = hl.WS_URL, hl.prices_url(urls) or ""
    session = VenueSession(hl.VENUE)
    session.process(RawFrame("hyperliquid", trades_src, t0 + 100.0, LIVE_ACK))
    session.reset_connection(mids_src)  # the allMids connection (re)connects ...
    session.process(RawFrame("hyperliquid", mids_src, t0 + 200.0, ALL_MIDS_ACK))  # ... and is acked
    out = session.process(RawFrame("hyperliquid", trades_src, t0 + 201.0, trades(
        trade("BTC", "A", "60000", "1", t0 * 1000 + 150_000, VAULT, TRADER))))
    assert len(out.events) == 1 and out.snapshot_dropped == 0  # dated after the TRADES ack
    old = session.process(RawFrame("hyperliquid", trades_src, t0 + 202.0, trades(
        trade("BTC", "A", "60000", "1", t0 * 1000 + 99_000, VAULT, TRADER))))
    assert (old.events, old.snapshot_dropped) == ([], 1)
    out = session.process(RawFrame("hyperliquid", mids_src, t0 + 203.0, DOC_ALL_MIDS))
    assert len(out.prices) == 4 and out.events == []


# ---- collector against the simulator ----------------------------------------------------------

async def test_collector_against_simulator() -> None:
    sim = HyperliquidSim()
    sim.rest_fail = 1  # the first POST answers 503: retried
    sim.idle_timeout = 0.8  # our pings keep the connection open
    async with HARNESS.collector(sim) as rig:
        assert sim.rest_hits == ['POST /info {"type":"meta"}'] * 2
        assert sorted(sim.subscribed) == sorted(META_COINS)  # delisted MATIC left out
        # The trades pushed right after each subscribe are history: dropped.
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total")
                           >= len(META_COINS))
        now = int(time.time() * 1000) + 1000  # dated after the last ack, never dropped
        await sim.push(trades(trade("BTC", "A", "60000", "0.5", now, VAULT, TRADER),
                              trade("BTC", "B", "60001", "3", now, MAKER, OTHER)))
        await sim.push(trades(trade("ETH", "B", "3000", "2", now + 1, TRADER, VAULT4)))
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=1)
        await rig.pinged('{"method":"ping"}', pongs=2)
        await asyncio.sleep(1.0)  # longer than the idle timeout: pings keep it alive
        assert sim.idle_closes == 0 and sim.connections == 2  # trades + allMids
        assert rig.count("liqstress_source_up") == 1
        # Server-side disconnect: reconnect and resubscribe every coin (and allMids).
        await rig.reconnected(connections=4, clients=2,
                              also=lambda: len(sim.subscribed) == 2 * len(META_COINS)
                              and sim.all_mids_subscribes == 2)
        await asyncio.wait_for(rig.col.subscribed.wait(), 5)
        await sim.wait_for(lambda: rig.count("liqstress_source_up") == 1)
        later = int(time.time() * 1000) + 500
        await sim.push(trades(trade("SOL", "A", "150", "10", later, VAULT, TRADER)))
        await sim.wait_for(lambda: len(rig.sink.events) == 3)
    got = [(e.symbol, e.side, round(e.notional_usd, 6), e.sampled) for e in rig.sink.events]
    assert got == [("BTC", "long", 30000.0, True), ("ETH", "short", 6000.0, True),
                   ("SOL", "long", 1500.0, True)]
    rig.assert_recovered()
    assert any(r.source.endswith('/info#{"type":"meta"}') for r in rig.sink.raws)


async def test_failed_subscribe_is_dead_lettered_and_never_up() -> None:
    await HARNESS.check_subscribe_refused(HyperliquidSim(), lambda n: n >= len(META_COINS))


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(HyperliquidSim(), reconnects=2,
                                         back=lambda rig: rig.col.reconnects >= 2)


async def test_server_closes_an_idle_connection_and_we_reconnect() -> None:
    sim = HyperliquidSim()
    sim.idle_timeout = 0.3
    # Pings rarer than the venue's idle limit: the server hangs up, the collector returns.
    async with HARNESS.collector(sim, {}, subscribed=False, ping_interval=5.0,
                                 pong_timeout=10.0, backoff_initial=0.05,
                                 backoff_cap=0.1) as rig:
        await sim.wait_for(lambda: sim.idle_closes >= 1 and sim.connections >= 3, timeout=5)
    assert rig.col.reconnects >= 1


async def test_collector_publishes_throttled_mids_and_keeps_pongs() -> None:
    sim = HyperliquidSim()
    sim.idle_timeout = 0.8
    async with HARNESS.collector(sim, {}, price_interval=0.5, ping_interval=0.1,
                                 pong_timeout=0.5, backoff_initial=0.05, backoff_cap=0.2,
                                 raw_policy="all") as rig:
        assert sim.all_mids_subscribes == 1  # acked: the source is up with both connections
        assert rig.count("liqstress_source_up") == 1
        assert sim.messages(PRICES_PATH) == [
            '{"method":"subscribe","subscription":{"type":"allMids"}}']
        # Ten frames within ~0.1 s: only the first is kept and published.
        for i in range(10):
            await sim.push(all_mids({"BTC": str(60000 + i), "kPEPE": "0.0125", "@107": "38.9"}))
        await sim.wait_for(lambda: rig.frames("throttled") >= 9)
        # Mids every 50 ms for longer than the pong timeout: pongs on the price connection
        # are parsed before throttling, so it is never declared dead.
        for _ in range(24):
            await sim.push(all_mids({"BTC": "61000"}))
            await asyncio.sleep(0.05)
        await sim.wait_for(lambda: '{"method":"ping"}' in sim.messages(PRICES_PATH))
        assert rig.col.reconnects == 0 and sim.connections == 2 and sim.idle_closes == 0
        assert rig.count("liqstress_source_up") == 1
        # A liquidation on the trades connection alongside: prices never delay or drop it.
        now = int(time.time() * 1000) + 1000
        await sim.push(trades(trade("BTC", "A", "60000", "0.5", now, VAULT, TRADER)))
        await sim.wait_for(lambda: len(rig.sink.events) == 1)
    sink = rig.sink
    # Only kept frames become raw records, each under the allMids connection's own source.
    kept = [r for r in sink.raws if str(r.data).startswith('{"channel":"allMids"')]
    assert all(r.source.endswith(PRICES_PATH) for r in kept)
    # 34 frames in ~1.3 s: the first, then one per 0.5 s (spot @107 skipped throughout).
    assert 3 <= len(kept) <= 6
    assert [(t.coin, t.price, t.kind) for t in sink.prices] == [
        ("BTC", 60000.0, "mid"), ("PEPE", pytest.approx(0.0000125), "mid"),
        *[("BTC", 61000.0, "mid")] * (len(kept) - 1)]
    assert all(t.exchange == "hyperliquid" and t.ts == t.recv_ts for t in sink.prices)
    assert sorted({t.recv_ts for t in sink.prices}) == [r.recv_ts for r in kept]
    assert rig.count("liqstress_source_prices_total") == len(sink.prices)
    assert rig.count("liqstress_source_last_price_timestamp_seconds") > 0
    assert rig.frames("pong") >= 2
    assert [(e.symbol, e.side) for e in sink.events] == [("BTC", "long")]


# ---- the node fills source, live ---------------------------------------------------------------

async def _until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.02)


async def test_node_fills_appended_while_the_collector_runs(tmp_path: Path) -> None:
    day = tmp_path / "hourly" / "20260917"
    day.mkdir(parents=True)
    hour18 = day / "18"
    old = T - 3_600_000
    # Already in the file at start: history, never published.
    hour18.write_text(block_line(1, old, (TRADER, fill("BTC", "60000", "9", "A", old,
                                                       "Liquidated Cross Long", 1, TRADER))) + "\n")
    metrics = Metrics.create()
    sink = MemorySink()
    col = Collector(hl.VENUE, sink, metrics,
                    urls={"node_fills": f"file://{tmp_path}", "prices": "off"})
    col.file_poll_interval = 0.05
    async with running(col):
        await asyncio.wait_for(col.subscribed.wait(), 5)
        assert metrics.registry.get_sample_value("liqstress_source_up",
                                                 {"exchange": "hyperliquid"}) == 1
        now = int(time.time() * 1000) + 1000  # block times after the collector started
        liq_long = block_line(
            2, now,
            (TRADER, fill("SOL", "150", "100", "A", now, "Liquidated Cross Long", 101, TRADER)),
            (MAKER, fill("SOL", "150", "100", "B", now, "Open Long", 101, TRADER)))
        liq_short = node_line(OTHER, fill("ETH", "3000", "2", "B", now + 1, "Close Short", 102,
                                          OTHER))
        with hour18.open("a") as fh:
            fh.write(liq_long + "\n" + liq_short[:40])  # the second line is still being written
        await _until(lambda: len(sink.events) == 1)
        await asyncio.sleep(0.2)
        assert len(sink.events) == 1 and not sink.deadletters  # partial line waits
        with hour18.open("a") as fh:
            fh.write(liq_short[40:] + "\n")
            fh.write(node_line(MAKER, fill("ETH", "3000", "1", "B", now + 2, "Open Long", 103))
                     + "\n")  # an ordinary fill
            fh.write('["0xabc", {"coin": "BTC"\n')  # a malformed line
        await _until(lambda: len(sink.events) == 2 and len(sink.deadletters) == 1)
        # The hour rotates: the node starts a new file.
        hour19 = day / "19"
        hour19.write_text(node_line(TRADER, fill("BTC", "100000", "0.02", "B", now + 3,
                                                 "Liquidated Isolated Short", 104, TRADER)) + "\n")
        future = time.time() + 5
        os.utime(hour19, (future, future))
        await _until(lambda: len(sink.events) == 3)
        await asyncio.sleep(0.2)
    got = [(e.symbol, e.side, e.qty, e.notional_usd, e.ts, e.sampled) for e in sink.events]
    assert got == [("SOL", "long", 100.0, 15000.0, now / 1000, False),
                   ("ETH", "short", 2.0, 6000.0, (now + 1) / 1000, False),
                   ("BTC", "short", 0.02, 2000.0, (now + 3) / 1000, False)]
    assert [d["reason"] for d in sink.deadletters] == ["malformed_json"]
    assert all(r.source == f"file://{tmp_path}" for r in sink.raws)


def test_coverage_metric_follows_the_configured_source(tmp_path) -> None:
    from liqstress.infra.metrics import Metrics as _M
    from liqstress.streams.collector import Collector as _C
    from liqstress.streams.sims.base import MemorySink as _S

    backstop = _C(hl.VENUE, _S(), _M.create())
    node = _C(hl.VENUE, _S(), _M.create(), urls={"node_fills": f"file://{tmp_path}"})
    assert (backstop.sampled, node.sampled) == (True, False)
