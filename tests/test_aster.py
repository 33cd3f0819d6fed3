"""Aster: the parser on the one real captured frame and on the doc example (labelled as such),
the side and USD rules, exchangeInfo metadata (USD stablecoin quotes priced, anything else
unpriced), control frames, hostile input, and the collector against the simulator."""

from __future__ import annotations

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.collector import Collector
from liqstress.streams.session import COMPILED, VenueSession
from liqstress.streams.sims.aster import (
    CAPTURED_FRAME,
    DOC_ERROR,
    DOC_FRAME,
    DOC_LIST_SUBSCRIPTIONS_REPLY,
    DOC_SUBSCRIBE_ACK,
    AsterSim,
    exchange_info_body,
    force_order,
    symbol_info,
)
from liqstress.streams.sims.base import MemorySink
from liqstress.streams.venues import aster, binance
from liqstress.streams.venues.base import STALL_BUDGET, Instrument, Metadata

from .venue_harness import EXCHANGE_INFO_BAD_BODIES, VenueHarness, reason_of

T0 = 1_789_670_000_000
EXCHANGE_INFO = aster.rest_urls({})[0]


def loaded_meta(body: str | None = None) -> Metadata:
    meta = Metadata()
    aster.load_rest(meta, EXCHANGE_INFO, body or exchange_info_body())
    return meta


HARNESS = VenueHarness(aster, meta=loaded_meta)
parse_out, parse = HARNESS.out, HARNESS.events


# ---- the real capture -------------------------------------------------------------------------

def test_captured_frame_sell_is_a_long_worth_z_times_ap() -> None:
    """belyjelli/ai-rates apps/collector-go/internal/stream/liquidations_test.go @ 727d489
    (asterLiqSell): captured live from Aster's !forceOrder@arr, not written from the docs."""
    out = parse_out(CAPTURED_FRAME)
    (ev,) = out.events
    assert out.kind == "data" and out.unpriced == 0
    # A forced SELL that filled above its limit (ap 0.0044461 > p 0.0040681): a long closed
    # into the bids.
    assert ev.side == "long"
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "aster", "PAIRUSDT", "PAIR", "USDT", "linear")
    assert ev.qty == 28448.0  # z, base units (l=12417 is only the last fill)
    assert ev.price == 0.0044461  # ap, what filled; not the limit p
    assert ev.notional_usd == pytest.approx(28448 * 0.0044461)  # 126.48 USD, not q x p
    assert ev.notional_usd != pytest.approx(28448 * 0.0040681)
    assert ev.ts == pytest.approx(1789672621.550)  # o.T, not E (39 ms later)
    assert ev.sampled is True


def test_captured_frame_reads_as_binance_would_but_for_the_venue() -> None:
    """Aster mirrors Binance: the same frame through Binance's parser gives the same event
    but for the venue (and hence the id)."""
    (ours,) = parse(CAPTURED_FRAME)
    (theirs,) = binance.parse(CAPTURED_FRAME, binance.WS_URL, HARNESS.recv_ts,
                              Metadata()).events
    assert ours.id != theirs.id and theirs.exchange == "binance"
    for field in ("symbol", "base", "quote", "market", "side", "price", "qty", "notional_usd",
                  "ts", "sampled"):
        assert getattr(ours, field) == getattr(theirs, field), field


# ---- doc examples -------------------------------------------------------------------------------

def test_doc_example_sell_is_long() -> None:
    """DOC EXAMPLE (asterdex/api-docs V3, All Market Liquidation Order Streams), not a capture."""
    (ev,) = parse(DOC_FRAME)
    assert ev.side == "long"
    assert (ev.symbol, ev.base, ev.quote) == ("BTCUSDT", "BTC", "USDT")
    assert ev.qty == pytest.approx(0.014) and ev.price == pytest.approx(9910)
    assert ev.notional_usd == pytest.approx(0.014 * 9910)
    assert ev.ts == pytest.approx(1568014460.893)


def test_buy_is_short() -> None:
    (ev,) = parse(force_order("ETHUSDT", "BUY", "2", "3000", T0))
    assert ev.side == "short"
    assert ev.notional_usd == pytest.approx(6000.0)
    assert ev.ts == pytest.approx(T0 / 1000)


def test_notional_is_filled_times_average_else_order_times_limit() -> None:
    (filled,) = parse(force_order("ETHUSDT", "SELL", "5", "3000", T0, avg="3010", filled="2"))
    assert filled.notional_usd == pytest.approx(2 * 3010) and filled.qty == pytest.approx(2)
    (unfilled,) = parse(force_order("ETHUSDT", "SELL", "5", "3000", T0, avg="0", filled="0"))
    assert unfilled.notional_usd == pytest.approx(5 * 3000) and unfilled.price == 3000


def test_usd1_listing_is_priced_in_usd() -> None:
    (ev,) = parse(force_order("XAUUSD1", "BUY", "0.2", "2500", T0))
    assert (ev.side, ev.base, ev.quote) == ("short", "XAU", "USD1")
    assert ev.notional_usd == pytest.approx(500.0)


def test_a_settling_listing_is_still_priced() -> None:
    (ev,) = parse(force_order("TONUSDT", "SELL", "100", "2.5", T0))
    assert ev.notional_usd == pytest.approx(250.0)


# ---- metadata ------------------------------------------------------------------------------------

def test_unlisted_symbol_is_counted_unpriced_never_guessed() -> None:
    for meta in (loaded_meta(), Metadata()):  # a new listing, and before any metadata
        out = parse_out(force_order("NEWUSDT", "SELL", "10", "2", T0), meta)
        (ev,) = out.events
        assert (ev.symbol, ev.base, ev.quote, ev.side) == ("NEWUSDT", "NEW", "USDT", "long")
        assert ev.qty is None and ev.notional_usd is None and ev.price == 2.0
        assert out.unpriced == 1
    # Through the session, as the collector runs it: an event, counted unpriced.
    session = VenueSession(aster.VENUE)
    res = session.process(RawFrame(aster.ID, aster.WS_URL, 1.8e9,
                                   force_order("NEWUSDT", "SELL", "10", "2", T0)))
    assert len(res.events) == 1 and res.unpriced == 1 and res.deadletter is None


def test_unlisted_symbol_without_a_usd_quote_is_a_dead_letter() -> None:
    frame = force_order("ABCBTC", "SELL", "1", "2", T0)
    assert reason_of(parse_out, frame) == "unknown_symbol"


def test_metadata_from_exchange_info() -> None:
    meta = loaded_meta(exchange_info_body([
        symbol_info("BTCUSDT", "BTC"),
        symbol_info("ETHUSDC", "ETH", "USDC"),
        symbol_info("XAUUSD1", "XAU", "USD1"),
        symbol_info("MBLUSDT", "MBL", status="PENDING_TRADING", contract_type=""),
        symbol_info("ETHBTC", "ETH", "BTC"),  # not quoted in USD
        symbol_info("SOLUSDT", "SOL", margin="SOL"),  # coin-margined: contracts, not coins
        {"symbol": "BROKEN"},
        "not an object",
    ]))
    assert meta.get("XAUUSD1") == Instrument("XAUUSD1", "XAU", "USD1", "linear", 1.0)
    assert sorted(meta.instruments) == ["BTCUSDT", "ETHUSDC", "MBLUSDT", "XAUUSD1"]
    # Left out: a coin-margined listing is counted, unpriced; a non-USD one cannot be named.
    out = parse_out(force_order("SOLUSDT", "SELL", "3", "150", T0), meta)
    assert out.unpriced == 1 and out.events[0].notional_usd is None
    assert reason_of(parse_out, force_order("ETHBTC", "SELL", "1", "0.05", T0), meta) == \
        "unknown_symbol"


@pytest.mark.parametrize("body,reason", EXCHANGE_INFO_BAD_BODIES)
def test_bad_rest_bodies(body: str, reason: str) -> None:
    assert reason_of(aster.load_rest, Metadata(), EXCHANGE_INFO, body) == reason


# ---- control frames and liveness -------------------------------------------------------------------

def test_subscribe_request_and_its_ack() -> None:
    (conn,) = aster.connections(Metadata(), aster.VENUE.default_urls)
    assert conn.url == "wss://fstream.asterdex.com/ws"
    assert [orjson.loads(m) for m in conn.subscribe] == [
        {"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": aster.SUBSCRIBE_ID}]
    assert parse_out({"result": None, "id": aster.SUBSCRIBE_ID}).kind == "ack"


def test_list_subscriptions_replies_are_pongs() -> None:
    assert orjson.loads(aster.VENUE.ping_message(7)) == {"method": "LIST_SUBSCRIPTIONS", "id": 7}
    assert parse_out({"result": ["!forceOrder@arr"], "id": 7}).kind == "pong"
    # Doc examples: a listing, and a null result to an id that is not our subscribe.
    assert parse_out(DOC_LIST_SUBSCRIPTIONS_REPLY).kind == "pong"
    assert parse_out(DOC_SUBSCRIBE_ACK).kind == "pong"


def test_refusals_are_subscribe_errors_only_for_the_subscribe() -> None:
    wire = {"error": {"code": 2, "msg": "Invalid request: too many parameters"},
            "id": aster.SUBSCRIBE_ID}
    assert reason_of(parse_out, wire) == "subscribe_error"
    assert reason_of(parse_out, {**DOC_ERROR, "id": aster.SUBSCRIBE_ID}) == "subscribe_error"
    assert reason_of(parse_out, {**wire, "id": 3}) == "venue_error"
    assert reason_of(parse_out, DOC_ERROR) == "venue_error"  # the docs' shape has no id


def test_spec() -> None:
    spec = aster.VENUE
    assert (spec.id, spec.sampled, spec.experimental) == ("aster", True, False)
    assert spec.rest_urls(spec.default_urls) == ["https://fapi.asterdex.com/fapi/v1/exchangeInfo"]
    assert spec.url_kinds() == {"ws": "ws", "rest": "rest"}
    bounds = Collector(spec, MemorySink()).stall_bounds()
    assert bounds["app"] is not None and bounds["app"] <= STALL_BUDGET
    assert spec.parse_oi is None  # Aster documents no open-interest endpoint
    assert aster.ID not in COMPILED  # the Python path, always


# ---- hostile input -------------------------------------------------------------------------------

def _order(**o: object) -> str:
    base = orjson.loads(force_order("BTCUSDT", "SELL", "0.5", "60000", T0))
    base["o"].update(o)
    return orjson.dumps(base).decode()


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1,2]", "unexpected_shape"),  # no mark-price connection on Aster
    ('{"e":"aggTrade","E":1,"s":"BTCUSDT"}', "unexpected_shape"),
    ('{"e":"forceOrder"}', "unexpected_shape"),
    ('{"e":"forceOrder","o":{"S":"SELL"}}', "missing_field"),
    (_order(S="HOLD"), "bad_side"),
    (_order(S=1), "bad_side"),
    (_order(z="0", q="x"), "bad_number"),
    (_order(z="0", ap="0", p="-5"), "bad_number"),
    (_order(z="0", ap="0", q="-1"), "bad_number"),
    (_order(z="NaN", ap="0"), "bad_number"),
    (_order(z=" 5"), "bad_number"),
    (_order(T=1.5), "bad_timestamp"),
    (_order(T="1789670000000"), "bad_timestamp"),
    (_order(T=0), "invalid_event"),
    (_order(s=""), "missing_field"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(parse_out, frame) == reason


@pytest.mark.parametrize("frame,reason", [
    (_order(z="1e9", ap="1e6"), "implausible_notional"),  # 1e15 USD in one order
    (_order(T=T0 + 10 * 86_400_000), "implausible_time"),  # ten days ahead of receipt
])
def test_absurd_events_are_dead_letters_in_the_session(frame: str, reason: str) -> None:
    session = VenueSession(aster.VENUE)
    session.process(RawFrame(aster.ID, EXCHANGE_INFO, 1.0, exchange_info_body()))
    res = session.process(RawFrame(aster.ID, aster.WS_URL, T0 / 1000 + 1, frame))
    assert res.events == [] and res.deadletter is not None
    assert res.deadletter["reason"] == reason


def test_event_id_is_stable_and_distinct_per_liquidation() -> None:
    (a,) = parse(CAPTURED_FRAME)
    (b,) = parse(CAPTURED_FRAME)
    (c,) = parse(CAPTURED_FRAME.replace('"z":"28448"', '"z":"28447"'))
    assert a.id == b.id != c.id


# ---- the collector against the simulator ----------------------------------------------------------

async def test_collector_against_simulator() -> None:
    sim = AsterSim()
    sim.rest_fail = 1
    async with HARNESS.collector(sim) as rig:
        # exchangeInfo: refused once (503), retried; then SUBSCRIBE, acked: up.
        assert sim.rest_hits == ["/fapi/v1/exchangeInfo", "/fapi/v1/exchangeInfo"]
        assert "PAIRUSDT" in rig.col.session.meta.instruments
        assert [orjson.loads(m)["method"] for m in sim.messages()][:1] == ["SUBSCRIBE"]
        assert rig.up() == 1 and rig.frames("ack") == 1
        await sim.push(CAPTURED_FRAME)
        await sim.push(force_order("ETHUSDT", "BUY", "2", "3000", T0))
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=1)
        await rig.pinged("LIST_SUBSCRIPTIONS", exact=False)
        # Server-side disconnect: reconnect and subscribe again.
        await rig.reconnected(also=lambda: rig.frames("ack") == 2)
        await sim.push(force_order("NEWUSDT", "SELL", "10", "2", T0 + 1000))
        await sim.push(force_order("XAUUSD1", "SELL", "0.2", "2500", T0 + 2000))
        await sim.wait_for(lambda: len(rig.sink.events) == 4)
    assert rig.outcome("symbol", "side", "notional_usd") == [
        ("PAIRUSDT", "long", pytest.approx(28448 * 0.0044461)),
        ("ETHUSDT", "short", pytest.approx(6000.0)),
        ("NEWUSDT", "long", None),
        ("XAUUSD1", "long", pytest.approx(500.0))]
    assert sum(orjson.loads(m)["method"] == "SUBSCRIBE" for m in sim.messages()) == 2
    assert rig.count("liqstress_unpriced_total") == 1
    rig.assert_recovered()
    assert any(r.data == CAPTURED_FRAME for r in rig.sink.raws)


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    rig = await HARNESS.check_unanswered_pings(AsterSim())
    assert sum('"SUBSCRIBE"' in m for m in rig.sim.messages()) >= 2  # subscribed again


async def test_refused_subscribe_is_reported() -> None:
    rig = await HARNESS.check_subscribe_refused(AsterSim(), settle=0.3)
    assert rig.count("liqstress_deadletter_total", reason="subscribe_error") >= 1
