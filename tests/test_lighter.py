"""Lighter: the parser on real captured frames (tardis-node, ai-rates, hftbacktest, nautilus_trader:
see streams/sims/lighter.py), the long/short rule from the taker's position with its
``is_maker_ask`` cross-check, ``usd_amount`` as the notional, exact 64-bit ids, the subscribe
replay kept out as history, the windowed subscribe chain, and the collector against the
simulator (caps, refresh, pings, refusals)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.lighter import (
    AI_RATES_ETH_QUOTED,
    AI_RATES_LONG,
    AI_RATES_SHORT,
    CONNECTED,
    ERROR_ALREADY_SUBSCRIBED,
    ERROR_UNKNOWN_MARKET,
    HFT_LIQUIDATION_CRV,
    HFT_REPLAY_CRV,
    HFT_TRADE_CRV,
    MARKETS,
    NAUTILUS_DETAILS,
    PONG,
    TARDIS_LIQUIDATION,
    TARDIS_NO_LIQUIDATION_KEY,
    TARDIS_SUBSCRIBED,
    TARDIS_UPDATE,
    UNSUBSCRIBED,
    LighterSim,
    ack_frame,
    details_body,
    liquidation,
    long_liquidation,
    ordinary_trade,
    short_liquidation,
    trade_frame,
)
from liqstress.streams.venues import kit, lighter
from liqstress.streams.venues.base import Instrument, Metadata

from .venue_harness import PINGS, VenueHarness, reason_of

T = 1_789_670_000_000
DETAILS_URL = lighter.rest_urls(lighter.VENUE.default_urls)[0]


def loaded_meta(markets: dict[int, str] = MARKETS) -> Metadata:
    meta = Metadata()
    lighter.load_rest(meta, DETAILS_URL, details_body(markets))
    return meta


HARNESS = VenueHarness(lighter, meta=loaded_meta)
parse = HARNESS.out
events = HARNESS.events


def frame(market: int, *entries: dict[str, Any] | str, kind: str = "update/trade") -> str:
    return trade_frame(market, *entries, kind=kind)


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- real captures ------------------------------------------------------------------------

def test_tardis_capture_subscribe_ack_replays_a_short_as_history() -> None:
    out = parse(TARDIS_SUBSCRIBED)
    assert (out.kind, out.snapshot) == ("ack", True)  # the ack, and its events are history
    (ev,) = out.events  # the two ordinary prints in ``trades`` are not liquidations
    assert ev.side == "short"  # taker_position_size_before -0.01664, is_maker_ask true
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "lighter", "BTC", "BTC", "USDC", "linear")
    assert ev.notional_usd == pytest.approx(1258.030592)  # usd_amount
    assert ev.notional_usd == pytest.approx(0.01664 * 75602.8, abs=1e-6)  # = size x price
    assert (ev.qty, ev.price) == (pytest.approx(0.01664), pytest.approx(75602.8))
    assert ev.ts == pytest.approx(1776687656.653) and ev.sampled is False


def test_tardis_capture_updates_without_liquidations() -> None:
    assert parse(TARDIS_UPDATE).kind == "data" and parse(TARDIS_UPDATE).events == ()
    # The venue sometimes leaves ``liquidation_trades`` out: no liquidation, not an error.
    assert parse(TARDIS_NO_LIQUIDATION_KEY).events == ()
    assert parse(HFT_TRADE_CRV).kind == "data" and parse(HFT_TRADE_CRV).events == ()


def test_tardis_liquidation_delivered_live_is_counted_once_by_trade_id() -> None:
    (ev,) = events(frame(1, TARDIS_LIQUIDATION))
    assert (ev.side, ev.notional_usd) == ("short", pytest.approx(1258.030592))
    (again,) = events(frame(1, TARDIS_LIQUIDATION))  # a re-delivery, another nonce
    assert again.id == ev.id
    (replayed,) = parse(TARDIS_SUBSCRIBED).events
    assert replayed.id == ev.id  # the subscribe replay of it too


def test_ai_rates_captures_one_long_one_short() -> None:
    (long_,) = events(frame(5, AI_RATES_LONG))
    assert (long_.symbol, long_.side) == ("WIF", "long")  # +1172.0 before, the taker sold
    assert long_.notional_usd == pytest.approx(282.299640)
    assert (long_.qty, long_.price) == (pytest.approx(1172.0), pytest.approx(0.24087))
    assert long_.ts == pytest.approx(1790221085.387)
    (short,) = events(frame(3, AI_RATES_SHORT))
    assert (short.symbol, short.side) == ("DOGE", "short")  # -3349 before, the taker bought
    assert short.notional_usd == pytest.approx(318.720981)
    assert long_.id != short.id


def test_ai_rates_quoted_eth_capture_is_a_short() -> None:
    entry = {**AI_RATES_ETH_QUOTED, "trade_id": 31795317999}  # the quote elided the id
    (ev,) = events(frame(0, entry))
    assert (ev.symbol, ev.side, ev.notional_usd) == ("ETH", "short", pytest.approx(106.535236))


def test_hftbacktest_capture_replay_holds_a_long() -> None:
    out = parse(HFT_REPLAY_CRV)
    assert (out.kind, out.snapshot) == ("ack", True)
    (ev,) = out.events
    assert (ev.symbol, ev.side) == ("CRV", "long")  # +8432.2 before, is_maker_ask false
    assert ev.notional_usd == pytest.approx(1646.263967)
    (live,) = events(frame(36, HFT_LIQUIDATION_CRV))
    assert live.id == ev.id and live.side == "long"


def test_session_drops_the_subscribe_replay_and_keeps_updates() -> None:
    session = VenueSession(lighter.VENUE)
    assert session.process(RawFrame("lighter", DETAILS_URL, 1.0, details_body())).kind == "info"
    ack = session.process(RawFrame("lighter", lighter.WS_URL, T / 1000, HFT_REPLAY_CRV))
    assert (ack.kind, ack.events, ack.snapshot_dropped) == ("ack", [], 1)
    # An update right after it, dated before the ack's receipt (block time lags): live, kept.
    live = session.process(RawFrame("lighter", lighter.WS_URL, T / 1000 + 0.1, frame(
        36, long_liquidation(36, "10", "0.2", T - 500))))
    assert len(live.events) == 1 and live.snapshot_dropped == 0


# ---- side and units -----------------------------------------------------------------------

@pytest.mark.parametrize("before,maker_ask,expected", [
    ("5.5", False, "long"),
    ("-5.5", True, "short"),
    ("5.5", None, "long"),  # is_maker_ask absent: the position alone
    ("-5.5", None, "short"),
    (None, False, "long"),  # position absent: the taker sold
    (None, True, "short"),  # the taker bought
    (None, None, "missing_field"),
    ("0", False, "bad_side"),
    ("-0.0", True, "bad_side"),
    ("long", False, "bad_number"),
    (5.5, False, "bad_number"),
    ("5.5", "false", "bad_side"),
    ("5.5", 0, "bad_side"),
])
def test_side_from_the_takers_position_checked_against_the_trade(
        before: str | None, maker_ask: bool | None, expected: str) -> None:
    entry = liquidation(0, "5.5", "2000", "11000.0", T, taker_before=None, is_maker_ask=None)
    if before is not None:
        entry["taker_position_size_before"] = before
    if maker_ask is not None:
        entry["is_maker_ask"] = maker_ask
    text = frame(0, entry)
    if expected in ("long", "short"):
        (ev,) = events(text)
        assert ev.side == expected
    else:
        assert reason_of(parse, text) == expected


def test_notional_is_usd_amount_not_size_times_price() -> None:
    entry = liquidation(1, "0.5", "60000", "29876.5", T, taker_before="0.5", is_maker_ask=False)
    (ev,) = events(frame(1, entry))
    assert ev.notional_usd == pytest.approx(29876.5) and ev.qty == pytest.approx(0.5)


def test_only_liquidation_entries_of_liquidation_trades_count() -> None:
    text = frame(1, long_liquidation(1, "1", "60000", T),
                 liquidation(1, "1", "60000", "60000", T, taker_before="-1", is_maker_ask=True,
                             kind="deleverage"),
                 liquidation(1, "1", "60000", "60000", T, taker_before="1", is_maker_ask=False,
                             kind="market-settlement"),
                 liquidation(1, "1", "60000", "60000", T, taker_before="1", is_maker_ask=False,
                             kind="trade"))
    assert [e.side for e in events(text)] == ["long"]
    # A liquidation-typed print in ``trades`` is not read: the venue keeps them apart.
    stray = trade_frame(1, trades=(short_liquidation(1, "1", "60000", T),))
    assert events(stray) == []
    assert events(trade_frame(1, trades=(ordinary_trade(1, "1", "60000", T),))) == []


@pytest.mark.parametrize(("before", "maker_ask"), [("5.5", True), ("-5.5", False)])
def test_a_side_conflict_dead_letters_that_fill_and_keeps_the_others(
        before: str, maker_ask: bool) -> None:
    conflict = liquidation(1, "1", "60000", "60000", T, taker_before=before,
                           is_maker_ask=maker_ask)
    good = long_liquidation(1, "2", "60000", T)
    text = frame(1, good, conflict)
    out = VenueSession(lighter.VENUE).process(RawFrame("lighter", lighter.WS_URL, T / 1000, text))
    alone_good = VenueSession(lighter.VENUE).process(
        RawFrame("lighter", lighter.WS_URL, T / 1000, frame(1, good)))
    assert [e.id for e in out.events] == [e.id for e in alone_good.events] and out.events
    assert out.deadletter is not None and out.deadletter["reason"] == "side_conflict"
    assert out.deadletter["frame"] == text  # the raw frame, conflicting fill included
    assert f"is_maker_ask={maker_ask!r}" in out.deadletter["detail"]
    assert "1 of 2 events refused" in out.deadletter["detail"]
    # A frame of nothing but the conflict: no event, the same dead letter.
    alone = VenueSession(lighter.VENUE).process(
        RawFrame("lighter", lighter.WS_URL, T / 1000, frame(1, conflict)))
    assert alone.events == [] and alone.deadletter is not None
    assert alone.deadletter["reason"] == "side_conflict"


def test_market_missing_from_metadata_is_counted_unpriced() -> None:
    out = parse(frame(99, long_liquidation(99, "3", "10", T)))
    (ev,) = out.events
    assert (ev.symbol, ev.base, ev.side, ev.qty, ev.notional_usd) == ("99", "99", "long", 3.0, None)
    assert out.unpriced == 1
    session = VenueSession(lighter.VENUE)
    got = session.process(RawFrame("lighter", lighter.WS_URL, T / 1000,
                                   frame(99, long_liquidation(99, "3", "10", T))))
    assert len(got.events) == 1 and got.unpriced == 1


def test_implausible_values_are_refused_by_the_session() -> None:
    session = VenueSession(lighter.VENUE)
    session.process(RawFrame("lighter", DETAILS_URL, 1.0, details_body()))

    def reason(entry: dict[str, Any]) -> str | None:
        out = session.process(RawFrame("lighter", lighter.WS_URL, T / 1000, frame(1, entry)))
        return out.deadletter["reason"] if out.deadletter else None

    huge = liquidation(1, "1", "60000", "9e12", T, taker_before="1", is_maker_ask=False)
    assert reason(huge) == "implausible_notional"
    seconds = liquidation(1, "1", "60000", "60000", T // 1000, taker_before="1",
                          is_maker_ask=False)  # seconds read as milliseconds: 1970
    assert reason(seconds) == "implausible_time"
    assert reason(long_liquidation(1, "1", "60000", T)) is None


# ---- ids ----------------------------------------------------------------------------------

def test_64_bit_market_and_trade_ids_stay_exact() -> None:
    big = 2**53 + 1  # a float would read it as 2**53
    assert float(big) == 2**53
    meta = loaded_meta({4095: "ETH", 40000: "FUTURE", big: "WIDE"})
    assert list(meta.instruments) == ["4095", "40000", str(big)]
    assert orjson.loads(lighter.subscribe_message(str(big))) == {
        "type": "subscribe", "channel": f"trade/{big}"}
    entry = long_liquidation(big, "1", "5", T, trade_id=2**63 - 1)
    (ev,) = events(frame(big, entry), meta)
    assert (ev.symbol, ev.notional_usd) == ("WIDE", pytest.approx(5.0))
    assert ev.id == kit.event(exchange="lighter", symbol="WIDE", base="WIDE", quote="USDC",
                              market="linear", side="long", price=5.0, qty=1.0,
                              notional_usd=5.0, ts=T / 1000, recv_ts=1.0, sampled=False,
                              venue_id=str(2**63 - 1)).id
    # The neighbour of the big id is another market: never rounded onto it.
    (other,) = events(frame(2**53, long_liquidation(2**53, "1", "5", T)), meta)
    assert (other.symbol, other.notional_usd) == (str(2**53), None)


def test_nautilus_widened_ids_body() -> None:
    # nautilus_trader http_order_book_details_widened_ids.json (testnet rows 4095/4098, their
    # synthetic 40000/50000): perps kept, spot left out.
    body = orjson.dumps({"code": 200, "order_book_details": [
        {"symbol": "ETH", "market_id": 4095, "market_type": "perp", "status": "active"},
        {"symbol": "FUTURE", "market_id": 40000, "market_type": "perp", "status": "active"}],
        "spot_order_book_details": [
        {"symbol": "ETH/USDC", "market_id": 4098, "market_type": "spot", "status": "active"},
        {"symbol": "FUTURE/USDC", "market_id": 50000, "market_type": "spot",
         "status": "active"}]}).decode()
    meta = Metadata()
    lighter.load_rest(meta, DETAILS_URL, body)
    assert {k: v.symbol for k, v in meta.instruments.items()} == {"4095": "ETH",
                                                                  "40000": "FUTURE"}


# ---- metadata and subscriptions -----------------------------------------------------------

def test_metadata_from_the_real_order_book_details() -> None:
    assert DETAILS_URL == "https://mainnet.zklighter.elliot.ai/api/v1/orderBookDetails"
    meta = Metadata()
    lighter.load_rest(meta, DETAILS_URL, NAUTILUS_DETAILS)
    assert meta.instruments == {"0": Instrument("ETH", "ETH", "USDC", "linear")}


def test_metadata_keeps_active_perps_only_and_its_order_on_refresh() -> None:
    meta = loaded_meta()
    assert list(meta.instruments) == ["0", "1", "3", "5", "36"]  # PIPPIN inactive, spot out
    # A refresh listing a new market FIRST still appends it: positions never shift.
    lighter.load_rest(meta, DETAILS_URL, details_body({7: "NEW", **MARKETS}))
    assert list(meta.instruments) == ["0", "1", "3", "5", "36", "7"]


@pytest.mark.parametrize("body,reason", [
    ("<html>", "malformed_json"),
    ("[]", "unexpected_shape"),
    ('{"code":200}', "unexpected_shape"),
    ('{"code":200,"order_book_details":[]}', "unexpected_shape"),
    ('{"code":200,"order_book_details":[{"symbol":"X","market_id":1.0}]}', "unexpected_shape"),
    ('{"code":200,"order_book_details":[{"symbol":"X","market_id":true}]}', "unexpected_shape"),
    ('{"code":200,"order_book_details":[{"symbol":"","market_id":1}]}', "unexpected_shape"),
    ('{"code":20001,"message":"invalid param"}', "rest_error"),
])
def test_bad_metadata_bodies(body: str, reason: str) -> None:
    assert reason_of(lighter.load_rest, Metadata(), DETAILS_URL, body) == reason


def test_connection_sends_one_window_and_each_ack_releases_the_next() -> None:
    meta = loaded_meta({i: f"C{i}" for i in range(45)})
    (conn,) = lighter.connections(meta, lighter.VENUE.default_urls)
    assert conn.url == "wss://mainnet.zklighter.elliot.ai/stream"
    assert [orjson.loads(m) for m in conn.subscribe] == [
        {"type": "subscribe", "channel": f"trade/{i}"} for i in range(lighter.WINDOW)]
    assert conn.topics == tuple(str(i) for i in range(45)) and conn.expected_acks == 45
    assert parse(ack_frame(0), meta).reply == lighter.subscribe_message("20")
    assert parse(ack_frame(24), meta).reply == lighter.subscribe_message("44")
    assert parse(ack_frame(25), meta).reply is None  # the end of the list
    assert parse(ack_frame(99), meta).reply is None  # not ours
    assert lighter.connections(Metadata(), {}) == []  # nothing to subscribe yet
    assert lighter.VENUE.subscribe_for is not None
    assert lighter.VENUE.subscribe_for(["7"]) == ['{"type":"subscribe","channel":"trade/7"}']
    assert lighter.VENUE.ping_message(1) == '{"type":"ping"}'


def test_ack_with_unreadable_history_is_still_an_ack() -> None:
    broken = liquidation(1, "x", "1", "1", T, taker_before="1", is_maker_ask=False)
    out = parse(ack_frame(1, broken, long_liquidation(1, "1", "60000", T), {"type": "liquidation"}))
    assert out.kind == "ack" and [e.side for e in out.events] == ["long"]
    assert parse('{"channel":"trade:1","liquidation_trades":{},"type":"subscribed/trade"}').kind \
        == "ack"


# ---- control frames and bad input ---------------------------------------------------------

def test_control_frames() -> None:
    assert parse(CONNECTED).kind == "info"
    assert parse(PONG).kind == "pong"
    assert parse(UNSUBSCRIBED).kind == "info"
    assert parse(ERROR_ALREADY_SUBSCRIBED).kind == "info"  # a duplicate, harmless
    assert reason_of(parse, ERROR_UNKNOWN_MARKET) == "subscribe_error"
    assert reason_of(parse, '{"error":{"code":30009,"message":"Too Many Requests"}}') == \
        "subscribe_error"
    assert reason_of(parse, '{"type":"error","code":30012,"channel":"trade:0",'
                            '"message":"failed to subscribe"}') == "subscribe_error"
    assert reason_of(parse, '{"error":{"code":50000,"message":"internal"}}') == "venue_error"
    assert reason_of(parse, '{"error":"boom"}') == "venue_error"


def _entry(**changes: Any) -> str:
    entry = long_liquidation(1, "1", "60000", T, trade_id=123)
    for key, val in changes.items():
        if val is ...:
            del entry[key]
        else:
            entry[key] = val
    return frame(1, entry)


@pytest.mark.parametrize("text,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"type":"what"}', "unexpected_shape"),
    ('{"type":"update/trade","liquidation_trades":[]}', "unexpected_channel"),
    ('{"type":"update/trade","channel":"trade:abc"}', "unexpected_channel"),
    ('{"type":"update/trade","channel":"trade:01"}', "unexpected_channel"),
    ('{"type":"update/trade","channel":"trade:9223372036854775808"}', "unexpected_channel"),
    ('{"type":"subscribed/trade","channel":"order_book:1"}', "unexpected_channel"),
    ('{"type":"update/order_book","channel":"order_book:0"}', "unexpected_channel"),
    ('{"type":"update/trade","channel":"trade:1","liquidation_trades":{}}', "unexpected_shape"),
    ('{"type":"update/trade","channel":"trade:1","liquidation_trades":[1]}', "unexpected_shape"),
    (_entry(market_id=2), "unexpected_shape"),
    (_entry(market_id="1"), "unexpected_shape"),
    (_entry(size="0"), "bad_number"),
    (_entry(size=1.0), "bad_number"),
    (_entry(size=...), "missing_field"),
    (_entry(price="-60000"), "bad_number"),
    (_entry(price="NaN"), "bad_number"),
    (_entry(usd_amount="-1"), "bad_number"),
    (_entry(usd_amount=" 60000"), "bad_number"),
    (_entry(timestamp="1789670000000"), "bad_timestamp"),
    (_entry(timestamp=1.5), "bad_timestamp"),
    (_entry(trade_id=..., trade_id_str=...), "missing_field"),
    (_entry(trade_id=-1), "bad_id"),
    (_entry(trade_id=True), "bad_id"),
    (_entry(trade_id=2**63), "bad_id"),
    (_entry(trade_id_str="124"), "bad_id"),
    (_entry(trade_id=..., trade_id_str="00123"), "bad_id"),
])
def test_bad_frames_raise_with_reason(text: str, reason: str) -> None:
    assert reason_of(parse, text) == reason


def test_trade_id_str_alone_is_the_id() -> None:
    (ev,) = events(_entry(trade_id=...))
    assert ev.id == events(_entry())[0].id


# ---- the collector against the simulator ---------------------------------------------------

async def test_collector_against_simulator() -> None:
    sim = LighterSim()
    sim.rest_fail = 1
    async with HARNESS.collector(sim) as rig:
        assert len(sim.rest_hits) == 2  # the 503 retried
        assert list(rig.col.session.meta.instruments) == ["0", "1", "3", "5", "36"]
        assert sorted(sim.subscribed) == sorted(MARKETS)
        # Every ack replayed a liquidation: history, dropped and counted, never published.
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total") == 5)
        await sim.push(frame(1, long_liquidation(1, "0.5", "60000", now_ms())))
        await sim.push(frame(3, short_liquidation(3, "1000", "0.1", now_ms()),
                             ordinary_trade(3, "1", "0.1", now_ms())))
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=1)
        await rig.pinged('{"type":"ping"}')
        assert rig.up() == 1
        # Server-side disconnect: reconnect, resubscribe every market, the replay dropped again.
        await rig.reconnected(also=lambda: len(sim.subscribed) == 10)
        await sim.wait_for(lambda: rig.count("liqstress_snapshot_dropped_total") == 10)
        await sim.push(frame(36, HFT_LIQUIDATION_CRV))  # a real CRV long, re-delivered live
        await sim.wait_for(lambda: len(rig.sink.events) == 3)
    assert rig.outcome("symbol", "side", "notional_usd") == [
        ("BTC", "long", pytest.approx(30000)),
        ("DOGE", "short", pytest.approx(100)),
        ("CRV", "long", pytest.approx(1646.263967))]
    rig.assert_recovered()


#: Time shrunk 60x: a venue "minute" of 1 s, and the pace scaled with it.
FAST_MINUTE = 1.0


async def test_subscribes_never_exceed_the_venues_in_flight_cap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lighter, "SEND_RATE", lighter.SEND_RATE * 60 / FAST_MINUTE)
    markets = {i: f"M{i}" for i in range(120)}
    sim = LighterSim(markets)
    sim.ack_delay = 0.02
    sim.rate_window = FAST_MINUTE
    sim.max_inflight = lighter.WINDOW  # tighter than the venue: the window alone must hold
    async with HARNESS.collector(sim) as rig:
        assert sorted(sim.subscribed) == sorted(markets)
        assert rig.up() == 1
    assert sim.rate_limited == 0 and sim.inflight_peak == lighter.WINDOW
    assert sim.per_minute_peak <= lighter.MAX_PER_MINUTE


@pytest.mark.parametrize("paced", [True, False])
async def test_subscribes_stay_within_the_per_minute_budget_for_any_number_of_markets(
        monkeypatch: pytest.MonkeyPatch, paced: bool) -> None:
    """400 markets, twice the venue's 200 messages a minute (a minute shrunk to 1 s, the pace
    with it): paced, every subscribe is accepted and no "minute" sees more than 200 of our
    messages; unpaced (the ack chain alone), the venue refuses some."""
    monkeypatch.setattr(lighter, "SEND_RATE", lighter.SEND_RATE * 60 / FAST_MINUTE
                        if paced else 0.0)
    markets = {i: f"M{i}" for i in range(400)}
    sim = LighterSim(markets)
    sim.ack_delay = 0.005
    sim.rate_window = FAST_MINUTE
    sim.replay_on_subscribe = False
    async with HARNESS.collector(sim, subscribed=False) as rig:
        if paced:
            await sim.wait_for(lambda: len(sim.subscribed) == 400, timeout=20)
            await sim.wait_for(lambda: rig.up() == 1)
        else:
            await sim.wait_for(lambda: sim.rate_limited > 0, timeout=20)
    if paced:
        assert sim.rate_limited == 0
        # Subscribes and our pings (the harness pings often) together, as the venue counts.
        assert sim.per_minute_peak <= lighter.MAX_PER_MINUTE
        assert sim.inflight_peak <= lighter.WINDOW
    else:
        assert sim.per_minute_peak > lighter.MAX_PER_MINUTE


async def test_a_burst_of_every_subscribe_would_be_refused() -> None:
    """Why the window: the same 120 markets subscribed at once exceed the cap of 50."""
    markets = {i: f"M{i}" for i in range(120)}

    def burst(meta: Metadata, urls: dict[str, str]) -> list[kit.Connection]:
        ids = lighter.markets(meta)
        return [kit.Connection(name="trades", url=urls["ws"],
                               subscribe=lighter.subscribe_messages(ids), topics=tuple(ids))]

    sim = LighterSim(markets)
    sim.ack_delay = 0.02
    harness = VenueHarness(lighter)
    harness.venue = replace(lighter.VENUE, connections=burst)
    async with harness.collector(sim, subscribed=False) as rig:
        await sim.wait_for(lambda: sim.rate_limited >= 40)
        await asyncio.sleep(0.2)
        assert not rig.col.subscribed.is_set()
    assert {d["reason"] for d in rig.sink.deadletters} == {"subscribe_error"}


async def test_a_new_listing_is_subscribed_on_the_live_connection() -> None:
    sim = LighterSim()
    async with HARNESS.collector(sim, metadata_refresh=0.2) as rig:
        sim.list_market(7, "NEW")
        await sim.wait_for(lambda: 7 in sim.subscribed)
        await sim.push(frame(7, short_liquidation(7, "10", "2.5", now_ms())))
        await rig.published(events=1, deadletters=0)
        assert sim.connections == 1 and rig.up() == 1
        assert sim.rate_limited == 0
    assert rig.outcome("symbol", "side", "notional_usd") == [("NEW", "short", pytest.approx(25))]


async def test_pings_keep_the_connection_open_past_the_idle_close() -> None:
    sim = LighterSim()
    sim.idle_timeout = 0.6
    async with HARNESS.collector(sim, PINGS) as rig:
        await asyncio.sleep(1.5)
        assert sim.idle_closes == 0 and sim.connections == 1 and rig.up() == 1


async def test_without_pings_the_venue_closes_and_the_collector_reconnects() -> None:
    sim = LighterSim()
    sim.idle_timeout = 0.3
    timing = {"ping_interval": 30.0, "pong_timeout": 10.0, "backoff_initial": 0.05,
              "backoff_cap": 0.1}
    async with HARNESS.collector(sim, timing) as rig:
        await sim.wait_for(lambda: sim.idle_closes >= 1 and sim.connections >= 2)
        await sim.wait_for(lambda: rig.up() == 1)
    assert rig.col.reconnects >= 1


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(LighterSim())


async def test_refused_subscribe_is_reported() -> None:
    rig = await HARNESS.check_subscribe_refused(LighterSim(),
                                                refused=lambda n: n >= len(MARKETS))
    assert all("30005" in d["detail"] for d in rig.sink.deadletters)
