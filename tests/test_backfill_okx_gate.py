"""The warm start for OKX (``/api/v5/public/liquidation-orders`` per instFamily: a sample of
the last day, paged back with ``after``, rate refusals as code 50011 in an HTTP 200) and Gate
(``/api/v4/futures/usdt/liq_orders``: the last hour of every contract in one call): history
rows get the live event ids, the requests and pages are the venues', and a collector against
each simulator reads the window once, retries the refusals and counts an overlap with the
live feed once. See tests/test_backfill.py for the venue-independent behaviour."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims import gate as gate_sim
from liqstress.streams.sims import okx as okx_sim
from liqstress.streams.venues import gate, okx
from liqstress.streams.venues.base import HISTORY_PREFIX, FrameError, Metadata

from .test_backfill import FAST
from .venue_harness import VenueHarness

OKX = VenueHarness(okx)
GATE = VenueHarness(gate)
T0 = 1_789_670_000_000
HOUR = 3_600_000


def okx_meta() -> Metadata:
    meta = Metadata()
    for url in okx.rest_urls({}):
        okx.load_rest(meta, url, okx_sim.instruments_body(url.rsplit("=", 1)[1]))
    return meta


def gate_meta() -> Metadata:
    meta = Metadata()
    gate.load_rest(meta, gate.rest_urls({})[0], gate_sim.contracts_body())
    return meta


def okx_body(*entries: dict[str, Any]) -> str:
    return orjson.dumps({"code": "0", "msg": "", "data": list(entries)}).decode()


def session_ids(venue: Any, frame: RawFrame, compiled: bool) -> list[str]:
    session = VenueSession(venue, compiled=compiled)
    assert (session.accel is not None) == compiled  # the compiled path really runs
    _load(session.meta, venue.id)
    return [e.id for e in session.process(frame).events]


def _load(meta: Metadata, venue_id: str) -> None:
    fresh = okx_meta() if venue_id == "okx" else gate_meta()
    meta.instruments.update(fresh.instruments)


# ---- OKX -----------------------------------------------------------------------------------------

def test_okx_history_rows_get_the_live_event_ids() -> None:
    """Hedge mode (posSide) and net mode (side inverted), linear and inverse contracts, an
    instrument without metadata: the same events, ids included, from the live channel and from
    a history page, by the Python and the compiled live paths alike."""
    d = okx_sim.detail
    entries = [
        okx_sim.entry("BTC-USDT-SWAP", d("long", "sell", "3", "60000", T0),
                      d("short", "buy", "2", "61000", T0 + 1)),
        okx_sim.entry("ETH-USDT-SWAP", d("net", "sell", "10", "3000", T0 + 2),
                      d("net", "buy", "4", "3100", T0 + 3)),
        okx_sim.entry("BTC-USD-SWAP", d("short", "buy", "5", "60500", T0 + 4)),
        okx_sim.entry("XYZ-USDT-SWAP", d("long", "sell", "7", "1.5", T0 + 5)),
    ]
    meta = okx_meta()
    live = OKX.events(okx_sim.liquidations(*entries), meta)
    source = HISTORY_PREFIX + okx.history_request({}, "SWAP:BTC-USDT", None, None, None)
    out = okx.parse_history(okx_body(*entries), source, OKX.recv_ts, meta)
    assert list(out.events) == live and out.unpriced == 1
    assert [(e.side, e.notional_usd) for e in live] == [
        ("long", pytest.approx(3 * 0.01 * 60000)),    # posSide long (sold): 1800 USD
        ("short", pytest.approx(2 * 0.01 * 61000)),   # posSide short (bought): 1220 USD
        ("long", pytest.approx(10 * 0.1 * 3000)),     # net, side sell: a long, 3000 USD
        ("short", pytest.approx(4 * 0.1 * 3100)),     # net, side buy: a short, 1240 USD
        ("short", pytest.approx(5 * 100.0)),          # inverse: sz x ctVal USD, no price
        ("long", None),                               # no ctVal: unpriced, never sz x bkPx
    ]
    assert source == ("history+https://www.okx.com/api/v5/public/liquidation-orders"
                      "?instType=SWAP&instFamily=BTC-USDT&state=filled")
    frame = RawFrame("okx", okx.WS_URL, OKX.recv_ts, okx_sim.liquidations(*entries))
    ids = [e.id for e in live]
    assert session_ids(okx.VENUE, frame, compiled=True) == ids
    assert session_ids(okx.VENUE, frame, compiled=False) == ids
    hist = VenueSession(okx.VENUE).process_history(
        RawFrame("okx", source, OKX.recv_ts, okx_body(*entries)))
    # Ids never depend on the metadata: this session has none, so every event is unpriced.
    assert [e.id for e in hist.events] == ids and hist.unpriced == 6


def test_okx_history_requests_pages_and_refusals() -> None:
    assert okx.history_topics(okx_meta()) == [
        "FUTURES:BTC-USD", "SWAP:BTC-USD", "SWAP:BTC-USDT", "SWAP:ETH-USDT"]
    urls = {"rest": "http://sim"}
    base = "http://sim/api/v5/public/liquidation-orders?instType=FUTURES&instFamily=BTC-USD"
    assert okx.history_request(urls, "FUTURES:BTC-USD", 1, 2, None) == \
        f"{base}&state=filled&limit=100"
    assert okx.history_request(urls, "FUTURES:BTC-USD", 1, 2, "123") == \
        f"{base}&state=filled&limit=100&after=123"
    # Newest first, details out of order: the cursor is just past the oldest millisecond.
    stamps = [T0 - k * 1000 for k in range(100)]
    stamps[3], stamps[99] = stamps[99], stamps[3]
    full = okx_body(okx_sim.entry("BTC-USDT-SWAP", *[
        okx_sim.detail("long", "sell", "1", "60000", t) for t in stamps]))
    assert okx.history_next_page(full, 0) == str(T0 - 99_000 + 1)
    assert okx.history_next_page(full, T0 - 50_000) is None  # the window is read
    short = okx_body(okx_sim.entry("BTC-USDT-SWAP", *[
        okx_sim.detail("long", "sell", "1", "60000", t) for t in stamps[:99]]))
    assert okx.history_next_page(short, 0) is None  # a short page is the last
    same_ms = okx_body(okx_sim.entry("BTC-USDT-SWAP", *[
        okx_sim.detail("long", "sell", str(k + 1), "60000", T0) for k in range(100)]))
    assert okx.history_next_page(same_ms, 0) == str(T0)  # moves past it, never loops
    # 50011 (in an HTTP 200) is a refusal to retry; any other code is an error body.
    assert okx.history_throttled(okx_sim.RATE_LIMITED)
    assert not okx.history_throttled(full)
    assert not okx.history_throttled("{oops")
    assert not okx.history_throttled("[]")
    error = '{"code":"51000","msg":"Parameter instFamily error","data":[]}'
    assert not okx.history_throttled(error)
    with pytest.raises(FrameError) as exc:
        okx.history_next_page(error, 0)
    assert exc.value.reason == "rest_error"
    out = VenueSession(okx.VENUE).process_history(RawFrame("okx", "history+x", 1.0, error))
    assert out.deadletter is not None and out.deadletter["reason"] == "rest_error"
    odd = okx_body({"instId": "BTC-USDT-SWAP", "instType": "SWAP", "details": [
        {"posSide": "long", "sz": "1", "bkPx": "60000"}]})  # no ts
    out = VenueSession(okx.VENUE).process_history(RawFrame("okx", "history+x", 1.0, odd))
    assert out.deadletter is not None and out.deadletter["reason"] == "missing_field"


def okx_history(now_ms: int) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """SWAP BTC-USDT: 250 details 5 min apart from 90 s ago back (sides alternating) and 3
    that are 25 h old; SWAP ETH-USDT: 2 in net mode; SWAP BTC-USD: 1 inverse; FUTURES BTC-USD:
    1 on the December future. Event times keep 90 s or more from the 24 h boundary."""
    d = okx_sim.detail
    btc = [d("long" if k % 2 else "short", "sell" if k % 2 else "buy", str(k % 7 + 1),
             str(60000 + k), now_ms - 90_000 - 300_000 * k) for k in range(250)]
    btc += [d("long", "sell", "9", "50000", now_ms - 25 * HOUR - k * 1000) for k in range(3)]
    return {
        ("SWAP", "BTC-USDT"): [okx_sim.entry("BTC-USDT-SWAP", *btc)],
        ("SWAP", "ETH-USDT"): [okx_sim.entry("ETH-USDT-SWAP",
                                             d("net", "sell", "10", "3000", now_ms - HOUR),
                                             d("net", "buy", "4", "3100", now_ms - 2 * HOUR))],
        ("SWAP", "BTC-USD"): [okx_sim.entry("BTC-USD-SWAP",
                                            d("short", "buy", "5", "60500", now_ms - 3 * HOUR))],
        ("FUTURES", "BTC-USD"): [okx_sim.entry(
            "BTC-USD-261225", d("long", "sell", "2", "59000", now_ms - 4 * HOUR))],
    }


def okx_expected(history: dict[tuple[str, str], list[dict[str, Any]]],
                 since_ms: int) -> dict[str, float]:
    """Event id -> USD of every history detail at or after ``since_ms``, by the live parser."""
    out = {}
    meta = okx_meta()
    for entries in history.values():
        for e in OKX.events(okx_sim.liquidations(*entries), meta):
            if e.ts * 1000 >= since_ms:
                out[e.id] = e.notional_usd
    return out


async def test_okx_warm_start_pages_back_retries_50011_and_counts_an_overlap_once() -> None:
    now_ms = int(time.time() * 1000)
    sim = okx_sim.OkxSim()
    sim.liquidation_history = okx_history(now_ms)
    sim.history_page = 100
    sim.history_429, sim.retry_after = 1, "0.1"  # the first request: HTTP 429
    sim.history_refusals = 1  # the second: code 50011 in an HTTP 200
    sim.history_slow, sim.slow_seconds = 1, 2.5  # the third: no answer within the timeout
    async with OKX.collector(sim, **{**FAST, "backfill_timeout": 2.0}) as rig:
        # Live is subscribed while the warm start waits on its first family: a liquidation
        # after the subscribe ack (older ones are the replay OKX sends), which the history of
        # a family read later shows too.
        assert rig.col.backfill_state == "running"
        # A second ahead: the ack's receipt time (float) is the cut-off, and this millisecond
        # could still be the ack's.
        overlap = okx_sim.detail("long", "sell", "6", "3050", int(time.time() * 1000) + 1000)
        sim.liquidation_history[("SWAP", "ETH-USDT")][0]["details"].append(overlap)
        await sim.push(okx_sim.liquidations(okx_sim.entry("ETH-USDT-SWAP", overlap)))
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=20)
    expected = okx_expected(sim.liquidation_history, now_ms - 24 * HOUR)
    assert len(expected) == 250 + 2 + 1 + 1 + 1  # BTC, ETH, the overlap, BTC-USD, FUTURES
    events = rig.sink.events
    live = [e for e in events if not any(e is b for b in rig.sink.backfilled)]
    assert len(live) == 1 and live[0].id in expected  # one id for both copies
    in_window = {e.id: e.notional_usd for e in events if e.ts * 1000 >= now_ms - 24 * HOUR}
    assert in_window == pytest.approx(expected)
    assert sum(in_window.values()) == pytest.approx(sum(expected.values()))
    # Pages never repeat an event: the row re-read at a page boundary is dropped by id.
    backfilled = [e.id for e in rig.sink.backfilled]
    assert len(backfilled) == len(set(backfilled)) == len(expected) + 3  # + the 25 h old ones
    # BTC-USDT: 253 details, 100 a page, each page back from just past the oldest one.
    btc = [after for kind, fam, after in sim.history_requests if (kind, fam) == (
        "SWAP", "BTC-USDT")]
    assert btc[0] is None and len(btc) == 3 and int(btc[1]) > int(btc[2])
    assert [(k, f) for k, f, _ in sim.history_requests[:4]] == [("FUTURES", "BTC-USD")] * 4
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 2
    assert rig.count("liqstress_backfill_requests_total", outcome="timeout") == 1
    assert rig.count("liqstress_backfill_requests_total", outcome="ok") == \
        len(sim.history_requests) - 3
    assert rig.count("liqstress_backfill_events_total") == len(backfilled)
    assert rig.value("liqstress_backfill_state", state="done") == 1
    assert rig.sink.deadletters == []  # the 50011 body was never parsed as a page
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now_ms / 1000 - 86_400, abs=10)
    # OKX publishes about 70 min late: the coverage record's history span ends that much
    # before the warm start, so the windows report the last 70 min before it missing.
    rec = rig.col.coverage.record(time.time())
    assert rec.backfilled is not None
    assert rec.backfilled[1] - rec.backfilled[0] == pytest.approx(86_400 - 4200)
    assert rec.backfilled[1] == pytest.approx(now_ms / 1000 - 4200, abs=10)


async def test_okx_refusing_with_50011_fails_the_warm_start_not_the_feed() -> None:
    sim = okx_sim.OkxSim()
    sim.liquidation_history = okx_history(int(time.time() * 1000))
    sim.history_refusals = 10_000
    async with OKX.collector(sim, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state == "failed", timeout=20)
        assert rig.up() == 1
    # Every family tried 4 times, each a rate-limited answer, none parsed.
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 16
    assert rig.count("liqstress_backfill_requests_total", outcome="ok") == 0
    assert rig.sink.backfilled == [] and rig.sink.deadletters == []
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        time.time(), abs=30)


# ---- Gate ----------------------------------------------------------------------------------------

def test_gate_history_rows_get_the_live_event_ids() -> None:
    """A WS item (ms time, its own ``price``) and the REST row of the same liquidation (the
    second, ``fill_price``/``order_price``) share contract, second and |size|: the same id.
    Long and short by the sign of size, USD = |size| x quanto_multiplier x price."""
    s = T0 // 1000
    items = [gate_sim.item("BTC_USDT", 8000, "60010.5", T0 + 437),
             gate_sim.item("ETH_USDT", -250, "3000", T0 + 999),
             gate_sim.item("XYZ_USDT", -7, "1.5", T0 + 20)]
    rows = [gate_sim.liq_order("BTC_USDT", 8000, "60000", s, order_price="60210"),
            gate_sim.liq_order("ETH_USDT", -250, "2999.5", s),
            gate_sim.liq_order("XYZ_USDT", -7, "1.5", s)]
    meta = gate_meta()
    live = GATE.events(gate_sim.liquidations(*items), meta)
    source = HISTORY_PREFIX + gate.history_request({}, "usdt", None, None, None)
    out = gate.parse_history(orjson.dumps(rows).decode(), source, GATE.recv_ts, meta)
    hist = list(out.events)
    assert [e.id for e in hist] == [e.id for e in live]
    assert source == "history+https://api.gateio.ws/api/v4/futures/usdt/liq_orders"
    assert [(e.side, e.notional_usd, e.ts) for e in live] == [
        ("long", pytest.approx(8000 * 0.0001 * 60010.5), T0 / 1000 + 0.437),
        ("short", pytest.approx(250 * 0.01 * 3000), T0 / 1000 + 0.999),
        ("short", None, T0 / 1000 + 0.02)]
    assert [(e.side, e.notional_usd, e.ts) for e in hist] == [
        ("long", pytest.approx(8000 * 0.0001 * 60000), s),  # fill_price, not order_price
        ("short", pytest.approx(250 * 0.01 * 2999.5), s),
        ("short", None, s)]
    assert out.unpriced == 1
    # The next second, another size or another contract is another liquidation.
    others = [gate_sim.liq_order("BTC_USDT", 8000, "60000", s + 1),
              gate_sim.liq_order("BTC_USDT", 8001, "60000", s),
              gate_sim.liq_order("SOL_USDT", 8000, "60000", s)]
    ids = {e.id for e in gate.parse_history(orjson.dumps(others).decode(), source, 1.0,
                                            meta).events}
    assert len(ids) == 3 and not ids & {e.id for e in live}


def test_gate_repeats_within_a_second_keep_apart_on_both_paths() -> None:
    """Two liquidations of one contract, one second and one |size| (a cascade in one batch):
    the second gets ``|2``, live and in the history, and the compiled live path agrees."""
    s = T0 // 1000
    items = [gate_sim.item("BTC_USDT", -100, "59990", T0 + 100),
             gate_sim.item("BTC_USDT", -100, "59980", T0 + 700),
             gate_sim.item("BTC_USDT", -100, "59970", T0 + 1100)]  # the next second
    rows = [gate_sim.liq_order("BTC_USDT", -100, "59990", s),
            gate_sim.liq_order("BTC_USDT", -100, "59980", s),
            gate_sim.liq_order("BTC_USDT", -100, "59970", s + 1)]
    meta = gate_meta()
    live = GATE.events(gate_sim.liquidations(*items), meta)
    assert len({e.id for e in live}) == 3
    hist = gate.parse_history(orjson.dumps(rows).decode(), "history+x", 1.0, meta).events
    assert sorted(e.id for e in hist) == sorted(e.id for e in live)
    assert gate.liquidation_key(s + 0.7, -100.0, {("BTC_USDT", f"{s}|100.0"): 1},
                                "BTC_USDT") == f"{s}|100.0|2"
    frame = RawFrame("gate", gate.WS_URL, GATE.recv_ts, gate_sim.liquidations(*items))
    ids = [e.id for e in live]
    assert session_ids(gate.VENUE, frame, compiled=True) == ids
    assert session_ids(gate.VENUE, frame, compiled=False) == ids


def test_gate_history_request_and_bad_bodies() -> None:
    assert gate.history_topics(gate_meta()) == ["usdt"]
    assert gate.history_request({"rest": "http://sim"}, "usdt", 1, 2, None) == \
        "http://sim/api/v4/futures/usdt/liq_orders?limit=1000"
    assert gate.VENUE.history is not None and gate.VENUE.history.depth == 3600
    body = orjson.dumps([gate_sim.liq_order("BTC_USDT", 1, "60000", T0 // 1000)]).decode()
    assert gate.history_next_page(body, 0) is None  # one page: there is no cursor
    refusal = gate_sim.TOO_MANY
    with pytest.raises(FrameError) as exc:
        gate.history_next_page(refusal, 0)
    assert exc.value.reason == "rest_error"
    for text, reason in (
            (refusal, "rest_error"),
            ("{oops", "malformed_json"),
            (orjson.dumps([{**gate_sim.liq_order("BTC_USDT", 0, "1", 1)}]).decode(), "bad_side"),
            (orjson.dumps([{**gate_sim.liq_order("BTC_USDT", 1, "0", 1), "order_price": "0"}]
                          ).decode(), "bad_number"),
            (orjson.dumps([{**gate_sim.liq_order("BTC_USDT", 1, "1", 1), "time": "1"}]
                          ).decode(), "bad_timestamp")):
        out = VenueSession(gate.VENUE).process_history(RawFrame("gate", "history+x", 1.0, text))
        assert out.deadletter is not None and out.deadletter["reason"] == reason, text
    # No fill as taker (fill_price 0): the order's price.
    unfilled = orjson.dumps([{**gate_sim.liq_order("BTC_USDT", 10, "0", T0 // 1000),
                              "order_price": "61000"}]).decode()
    (ev,) = gate.parse_history(unfilled, "history+x", 1.0, gate_meta()).events
    assert ev.price == 61000 and ev.notional_usd == pytest.approx(10 * 0.0001 * 61000)


async def test_gate_warm_start_reads_the_last_hour_once_and_counts_an_overlap_once() -> None:
    now = int(time.time())
    sim = gate_sim.GateSim()
    # 30 liquidations 2 min apart from 100 s ago back (58 min), sides alternating, and one
    # 70 min old: Gate's answer is about the last hour.
    sim.liq_orders = [gate_sim.liq_order(("BTC_USDT", "ETH_USDT", "SOL_USDT")[k % 3],
                                         (k + 1) * (1 if k % 2 else -1), str(100 + k),
                                         now - 100 - 120 * k) for k in range(30)]
    sim.liq_orders.append(gate_sim.liq_order("DOGE_USDT", 5000, "0.2", now - 70 * 60))
    sim.history_429, sim.retry_after = 1, "0.1"
    overlap = sim.liq_orders[1]  # ETH_USDT, a long, also seen live (with its millisecond)
    meta = gate_meta()
    expected = {e.id: e.notional_usd for e in gate.parse_history(
        orjson.dumps(sim.liq_orders).decode(), "history+x", 1.0, meta).events}
    async with GATE.collector(sim, **FAST) as rig:
        await sim.push(gate_sim.liquidations(gate_sim.item(
            overlap["contract"], overlap["size"], "100.5", overlap["time"] * 1000 + 250)))
        await sim.wait_for(lambda: rig.col.backfill_state == "done" and len(
            rig.sink.events) == 32, timeout=20)
    live = [e for e in rig.sink.events if not any(e is b for b in rig.sink.backfilled)]
    assert len(live) == 1 and live[0].id in expected  # one id for both copies
    assert (live[0].side, live[0].symbol) == ("long", "ETH_USDT")
    backfilled = {e.id: e.notional_usd for e in rig.sink.backfilled}
    assert backfilled == pytest.approx(expected) and len(rig.sink.backfilled) == 31
    # The last hour exactly; the 70 min old row is published but outside it.
    hour = {e.id for e in rig.sink.events if e.ts >= now - 3600}
    assert len(hour) == 30
    assert sum(expected[i] for i in hour) == pytest.approx(
        sum(abs(r["size"]) * {"BTC_USDT": 0.0001, "ETH_USDT": 0.01, "SOL_USDT": 1.0}[
            r["contract"]] * float(r["fill_price"]) for r in sim.liq_orders[:30]))
    # One page: the 429, then the request that answered, without a window or cursor.
    assert sim.history_requests == [{"limit": "1000"}] * 2
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.count("liqstress_backfill_requests_total", outcome="ok") == 1
    assert rig.count("liqstress_backfill_events_total") == 31
    assert rig.value("liqstress_backfill_state", state="done") == 1
    # Covered from one hour back, not 24: the 4 h and 24 h windows fill from the start.
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now - 3600, abs=10)
