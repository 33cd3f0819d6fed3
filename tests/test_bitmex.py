"""BitMEX: parser on the documented/captured payloads (order side, contracts -> USD per instrument
type, receipt time, orderID dedupe), the partial snapshot, update/delete ignored, control frames,
instrument metadata, and the collector against the simulator."""

from __future__ import annotations

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.bitmex import (
    DOC_INSERT_TRX,
    DOC_INSERT_XBTUSD,
    DOC_PARTIAL,
    INSTRUMENTS,
    RATE_LIMITED,
    SUBSCRIBE_ACK,
    SUBSCRIBE_ERROR,
    SUPPORT_ORDER,
    WELCOME,
    BitmexSim,
    instruments_body,
    order,
    partial,
    table,
)
from liqstress.streams.venues import bitmex
from liqstress.streams.venues.base import Instrument, Metadata

from .venue_harness import PINGS, VenueHarness, reason_of

RECV = 1_789_670_000.25
INSTRUMENT_URL = bitmex.rest_urls({})[0]


def loaded_meta() -> Metadata:
    meta = Metadata()
    bitmex.load_rest(meta, INSTRUMENT_URL, instruments_body())
    return meta


HARNESS = VenueHarness(bitmex, RECV, meta=loaded_meta)
parse_out, parse = HARNESS.out, HARNESS.events


def inst_row(symbol: str) -> dict:
    return next(i for i in INSTRUMENTS if i["symbol"] == symbol)


def test_captured_xbtusd_sell_is_long_and_contracts_are_usd() -> None:
    (ev,) = parse(DOC_INSERT_XBTUSD)
    assert ev.side == "long"  # a Sell liquidation order closes a long ("Long Liquidation")
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "bitmex", "XBTUSD", "BTC", "USD", "inverse")
    assert ev.notional_usd == pytest.approx(876800.0)  # 1 USD per contract, no price involved
    assert ev.qty == pytest.approx(876800.0 / 90927.1)
    assert ev.price == pytest.approx(90927.1)
    assert ev.ts == RECV and ev.recv_ts == RECV  # no timestamp in the payload
    assert ev.sampled is False


def test_captured_trx_future_buy_is_short_and_unpriced() -> None:
    out = parse_out(DOC_INSERT_TRX)
    (ev,) = out.events
    assert ev.side == "short"
    assert (ev.symbol, ev.base, ev.quote) == ("TRXZ19", "TRX", "")  # delisted, not in metadata
    assert ev.qty is None and ev.notional_usd is None and out.unpriced == 1
    assert ev.price == pytest.approx(2.17e-06)


def test_inverse_future_is_usd_per_contract() -> None:
    (ev,) = parse(table("insert", order("XBTZ26", "Buy", 25000, 62000.0)))
    assert (ev.side, ev.market, ev.base) == ("short", "inverse", "BTC")
    assert ev.notional_usd == pytest.approx(25000.0) and ev.qty == pytest.approx(25000 / 62000)


@pytest.mark.parametrize("symbol,contracts,price,qty", [
    ("XBTUSDT", 250_000, 60000.0, 0.25),  # 1e-6 XBT per contract
    ("ETHUSDT", 3_000_000, 2500.0, 30.0),  # 1e-5 ETH per contract
    ("LTCUSDT", 10_000, 70.0, 1.0),  # 1e-4 LTC per contract
])
def test_linear_contracts_are_base_fractions(symbol: str, contracts: int, price: float,
                                             qty: float) -> None:
    (ev,) = parse(table("insert", order(symbol, "Sell", contracts, price)))
    assert (ev.side, ev.market, ev.quote) == ("long", "linear", "USDT")
    assert ev.qty == pytest.approx(qty)
    assert ev.notional_usd == pytest.approx(qty * price)  # never contracts x price


@pytest.mark.parametrize("symbol,market", [
    ("ETHUSD", "linear"),  # quanto: USD needs the XBT price too
    ("XBTEUR", "inverse"),  # EUR, not USD
    ("XBTUSD-XBTU26", "linear"),  # calendar spread
])
def test_units_that_cannot_be_pinned_stay_unpriced(symbol: str, market: str) -> None:
    out = parse_out(table("insert", order(symbol, "Sell", 100, 3000.0)))
    (ev,) = out.events
    assert ev.notional_usd is None and ev.qty is None and out.unpriced == 1
    assert ev.market == market and ev.side == "long"


def test_unknown_symbols_are_unpriced_with_labels_from_the_name() -> None:
    evs = parse(table("insert", order("SOLUSDT", "Buy", 10, 150.0),
                      order("XBTH27", "Sell", 100, 70000.0),
                      order("ETHUSDTZ26", "Sell", 100, 3000.0)))
    assert [(e.base, e.quote, e.market, e.notional_usd) for e in evs] == [
        ("SOL", "USDT", "linear", None), ("BTC", "", "inverse", None),
        ("ETH", "USDT", "linear", None)]


def test_metadata_from_instrument_active() -> None:
    meta = loaded_meta()
    assert meta.get("XBTUSD") == Instrument("XBTUSD", "BTC", "USD", "inverse", 1.0)
    assert meta.get("XBTUSDT") == Instrument("XBTUSDT", "BTC", "USDT", "linear", 1e-6)
    assert meta.get("ETHUSDT").contract_value == pytest.approx(1e-5)  # type: ignore[union-attr]
    assert meta.get("LTCUSDT").contract_value == pytest.approx(1e-4)  # type: ignore[union-attr]
    # Known but unpriceable: labelled from the metadata, contract value 0 (unknown).
    assert meta.get("ETHUSD") == Instrument("ETHUSD", "ETH", "USD", "linear", 0.0)
    assert meta.get("XBTEUR").contract_value == 0.0  # type: ignore[union-attr]
    assert meta.get("XBTUSD-XBTU26").contract_value == 0.0  # type: ignore[union-attr]


def test_contract_value_rules() -> None:
    cv = bitmex.contract_value
    lin = inst_row("XBTUSDT")
    assert cv(lin) == pytest.approx(1e-6)
    # Only one derivation available: it is used.
    assert cv({**lin, "underlyingToPositionMultiplier": None}) == pytest.approx(1e-6)
    assert cv({**lin, "multiplier": None}) == pytest.approx(1e-6)
    # The two derivations disagree, or neither is available: unpriced rather than a pick.
    assert cv({**lin, "multiplier": 10}) == 0.0
    assert cv({**lin, "underlyingToPositionMultiplier": None, "quoteToSettleMultiplier": None}) == 0.0
    assert cv({**lin, "quoteCurrency": "XBT"}) == 0.0
    assert cv({**lin, "positionCurrency": "USD"}) == 0.0
    assert cv({**lin, "typ": "IFXXXP"}) == 0.0  # spot
    assert cv({**lin, "isQuanto": None}) == 0.0
    inv = inst_row("XBTUSD")
    assert cv(inv) == 1.0
    assert cv({**inv, "underlyingToSettleMultiplier": None}) == 0.0
    assert cv({**inv, "multiplier": -1_000_000_000, "underlyingToSettleMultiplier": -1_000_000_000}) == 1.0
    assert cv({**inv, "multiplier": "x"}) == 0.0


@pytest.mark.parametrize("body,reason", [
    ('{"error":{"message":"Rate limit exceeded","name":"RateLimitError"}}', "rest_error"),
    ('{"symbol":"XBTUSD"}', "unexpected_shape"),
    ("<html>", "malformed_json"),
])
def test_bad_rest_bodies(body: str, reason: str) -> None:
    assert reason_of(bitmex.load_rest, Metadata(), INSTRUMENT_URL, body) == reason


def test_rest_skips_rows_without_names() -> None:
    meta = Metadata()
    bitmex.load_rest(meta, INSTRUMENT_URL, orjson.dumps(
        [1, {"symbol": "A"}, {**inst_row("XBTUSD"), "underlying": None}, inst_row("ETHUSDT")]
    ).decode())
    assert list(meta.instruments) == ["ETHUSDT"]


def test_partial_is_a_snapshot_never_counted() -> None:
    empty = parse_out(DOC_PARTIAL)
    assert empty.snapshot and not empty.events
    resting = parse_out(partial(SUPPORT_ORDER, order("XBTUSDT", "Buy", 1000, 60000.0)))
    assert resting.snapshot and len(resting.events) == 2
    session = VenueSession(bitmex.VENUE)
    session.process(RawFrame("bitmex", INSTRUMENT_URL, RECV - 10, instruments_body()))
    out = session.process(RawFrame("bitmex", bitmex.WS_URL, RECV, partial(SUPPORT_ORDER)))
    assert out.events == [] and out.snapshot_dropped == 1 and out.deadletter is None


@pytest.mark.parametrize("action", ["update", "delete"])
def test_update_and_delete_are_not_counted(action: str) -> None:
    row = ({"orderID": SUPPORT_ORDER["orderID"], "symbol": "XBTUSD", "leavesQty": 10000}
           if action == "update" else {"orderID": SUPPORT_ORDER["orderID"], "symbol": "XBTUSD"})
    out = parse_out(table(action, row))
    assert out.kind == "info" and not out.events


def test_order_id_is_the_dedupe_key() -> None:
    a = order("XBTUSD", "Sell", 1000, 60000.0, order_id="aaaaaaaa-0000-0000-0000-000000000001")
    (ev1,) = parse(table("insert", a))
    (ev2,) = bitmex.parse(table("insert", a), bitmex.WS_URL, RECV + 30, loaded_meta()).events
    (snap,) = parse_out(partial(a)).events
    assert ev1.id == ev2.id == snap.id  # the same order after a reconnect: one liquidation
    (other,) = parse(table("insert", {**a, "orderID": "aaaaaaaa-0000-0000-0000-000000000002"}))
    assert other.id != ev1.id


def test_several_orders_in_one_insert() -> None:
    out = parse_out(table("insert", order("XBTUSD", "Sell", 500, 60000.0),
                          order("ETHUSD", "Buy", 10, 3000.0), order("XBTUSDT", "Buy", 2000, 60000.0)))
    assert [(e.symbol, e.side) for e in out.events] == [
        ("XBTUSD", "long"), ("ETHUSD", "short"), ("XBTUSDT", "short")]
    assert [e.notional_usd for e in out.events] == [pytest.approx(500), None, pytest.approx(120)]
    assert out.unpriced == 1


def test_control_frames() -> None:
    assert parse_out("pong").kind == "pong"
    assert parse_out(WELCOME).kind == "info"
    assert parse_out(SUBSCRIBE_ACK).kind == "ack"
    assert parse_out({"success": True, "unsubscribe": "liquidation",
                      "request": {"op": "unsubscribe", "args": ["liquidation"]}}).kind == "info"
    for frame, reason in ((SUBSCRIBE_ERROR, "subscribe_error"), (RATE_LIMITED, "venue_error"),
                          ({"success": False, "subscribe": "liquidation"}, "subscribe_error")):
        assert reason_of(parse_out, frame) == reason


@pytest.mark.parametrize("frame,reason", [
    ("{not json", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"foo":1}', "unexpected_shape"),
    ('{"table":"trade","action":"insert","data":[]}', "unexpected_channel"),
    ('{"table":"liquidation","action":"upsert","data":[]}', "unexpected_action"),
    ('{"table":"liquidation","action":"insert"}', "unexpected_shape"),
    ('{"table":"liquidation","action":"insert","data":[1]}', "unexpected_shape"),
    ('{"table":"liquidation","action":"insert","data":[{"symbol":"XBTUSD","side":"Sell",'
     '"price":1,"leavesQty":1}]}', "missing_field"),
    ('{"table":"liquidation","action":"insert","data":[{"orderID":"x","side":"Sell",'
     '"price":1,"leavesQty":1}]}', "missing_field"),
    ('{"table":"liquidation","action":"insert","data":[{"orderID":"x","symbol":"XBTUSD",'
     '"side":"Hold","price":1,"leavesQty":1}]}', "bad_side"),
    ('{"table":"liquidation","action":"insert","data":[{"orderID":"x","symbol":"XBTUSD",'
     '"side":"Sell","price":0,"leavesQty":1}]}', "bad_number"),
    ('{"table":"liquidation","action":"insert","data":[{"orderID":"x","symbol":"XBTUSD",'
     '"side":"Sell","price":5,"leavesQty":-1}]}', "bad_number"),
    ('{"table":"liquidation","action":"insert","data":[{"orderID":"x","symbol":"XBTUSD",'
     '"side":"Sell","price":5}]}', "missing_field"),
    ('{"table":"liquidation","action":"insert","data":[{"orderID":"x","symbol":".BXBT",'
     '"side":"Sell","price":5,"leavesQty":1}]}', "unknown_symbol"),
    ('{"table":"liquidation","action":"insert","data":[{"orderID":"x","symbol":"XBTUSD-XBTZ27",'
     '"side":"Sell","price":5,"leavesQty":1}]}', "unknown_symbol"),
])
def test_bad_frames_raise_with_reason(frame: str, reason: str) -> None:
    assert reason_of(bitmex.parse, frame, bitmex.WS_URL, RECV, loaded_meta()) == reason


def test_defaults() -> None:
    (conn,) = bitmex.connections(Metadata(), bitmex.VENUE.default_urls)
    assert conn.url == "wss://www.bitmex.com/realtime?subscribe=liquidation"
    assert not conn.subscribe  # subscribed by the URL
    assert bitmex.rest_urls(bitmex.VENUE.default_urls) == [
        "https://www.bitmex.com/api/v1/instrument/active"]
    assert bitmex.VENUE.ping_message(3) == "ping" and bitmex.VENUE.ping_interval <= 5
    assert bitmex.VENUE.sampled is False


async def test_collector_against_simulator() -> None:
    sim = BitmexSim()
    sim.rest_fail = 1
    async with HARNESS.collector(sim) as rig:
        assert sim.rest_hits == ["/api/v1/instrument/active"] * 2  # 503, then retried
        assert "XBTUSDT" in rig.col.session.meta.instruments
        # Welcome (info), subscription confirmed (ack), resting order in the partial dropped.
        await sim.wait_for(lambda: rig.frames("ack") == 1
                           and rig.count("liqstress_snapshot_dropped_total") == 1)
        long_xbt = order("XBTUSD", "Sell", 20000, 60000.0)
        await sim.push(table("insert", long_xbt, order("ETHUSD", "Buy", 50, 3000.0)))
        await sim.push(table("update", {**long_xbt, "leavesQty": 5000}))
        await sim.push(table("delete", {"orderID": long_xbt["orderID"], "symbol": "XBTUSD"}))
        await sim.push("{malformed")
        await rig.published(events=2, deadletters=1)
        await rig.pinged("ping")
        assert rig.count("liqstress_source_up") == 1
        # Server-side disconnect: reconnect, subscribed again by the URL, the same resting
        # order in the new partial is dropped again.
        await rig.reconnected(also=lambda: rig.frames("ack") == 2
                              and rig.count("liqstress_snapshot_dropped_total") == 2)
        await sim.push(table("insert", order("XBTUSDT", "Buy", 500_000, 60000.0)))
        await sim.wait_for(lambda: len(rig.sink.events) == 3)
    assert rig.outcome("symbol", "side", "notional_usd") == [
        ("XBTUSD", "long", pytest.approx(20000.0)),
        ("ETHUSD", "short", None),
        ("XBTUSDT", "short", pytest.approx(30000.0))]
    assert all(e.ts == e.recv_ts for e in rig.sink.events)
    assert rig.count("liqstress_unpriced_total") == 1
    assert rig.frames("info") >= 5  # REST, welcomes, update, delete
    rig.assert_recovered()
    assert all(path == "/realtime?subscribe=liquidation" for path, _ in sim.received)


async def test_subscribe_error_is_dead_lettered() -> None:
    # Subscribed in the URL, but never confirmed: the source must not look healthy.
    rig = await HARNESS.check_subscribe_refused(BitmexSim(), lambda n: n == 1, timing=PINGS)
    assert "Unknown table: liquidation" in rig.sink.deadletters[0]["detail"]


async def test_unanswered_pings_mark_source_down_and_reconnect() -> None:
    await HARNESS.check_unanswered_pings(BitmexSim())
