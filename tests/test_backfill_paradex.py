"""The warm start of Paradex: ``/v1/trades`` per market with a ``start_at``/``end_at`` window,
1000 prints a page, then the venue's ``next`` cursor. History rows are read by the poll's parser
(the same ids, sides and USD as polled), the pages are walked to the window start, and a
collector against the simulator reads them with a 429 retried and a liquidation both polled and
read back counted once.

Evidence of the rows: the real LIQUIDATION print of belyjelli/ai-rates
``apps/collector-go/internal/adapters/paradex/liquidations.go`` @ b441e14 ("Captured
2026-09-24"), and the same row with the simplified ``"id":"1"`` of that commit's
``liquidations_test.go`` (``REAL_ROW_TEXT`` and ``TEST_PAGE_ROWS`` of the simulator). The
request parameters, the page cap and the cursor are the docs' ("Trade tape",
docs.paradex.trade/api/prod/trades/trades)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.paradex import (
    MARKETS,
    REAL_ROW_TEXT,
    TEST_PAGE_ROWS,
    ParadexSim,
    markets_body,
    page,
    trade,
)
from liqstress.streams.venues import paradex
from liqstress.streams.venues.base import HISTORY_PREFIX, POLL_PREFIX, Metadata

from .test_backfill import FAST, HOUR
from .venue_harness import LIVELY, VenueHarness, reason_of

MARKETS_URL = "https://api.prod.paradex.trade/v1/markets"
REST = "https://api.prod.paradex.trade/v1/trades"
BTC = "BTC-USD-PERP"
#: Just after the real print: the session's plausibility checks see a fresh event.
REAL_RECV = 1_790_173_873.0
DAY_MS = 24 * HOUR
#: Quick polls (0.3 s rounds, up to 50 requests/s, a request may take 1 s) and the warm start.
QUICK = {**LIVELY, "poll_period": 0.3, "poll_rate": 50.0, "pong_timeout": 1.0}


def loaded_meta() -> Metadata:
    meta = Metadata()
    paradex.load_rest(meta, MARKETS_URL, markets_body(MARKETS))
    return meta


HARNESS = VenueHarness(paradex, recv_ts=REAL_RECV, meta=loaded_meta,
                       source=f"{POLL_PREFIX}{REST}?market={BTC}")


def source(market: str = BTC) -> str:
    return HISTORY_PREFIX + paradex.history_request({}, market, None, None, None)


def history(body: str, meta: Metadata | None = None) -> list[Any]:
    return list(paradex.parse_history(body, source(), REAL_RECV,
                                      loaded_meta() if meta is None else meta).events)


# ---- rows: the poll's ids, sides and USD ---------------------------------------------------------

def test_history_rows_get_the_poll_event_ids_sides_and_usd() -> None:
    """ai-rates' page (the real SELL print with its test id, a BUY liquidation, and prints of
    other types): read back, the same events as polled; SELL (the taker) closed a long, BUY a
    short; size in base times the USD price."""
    body = page(TEST_PAGE_ROWS, "next-token")
    polled = HARNESS.events(body)
    hist = history(body)
    assert hist == polled and len(hist) == 2
    long_, short = hist
    assert (long_.side, long_.qty, long_.price) == ("long", pytest.approx(0.00649),
                                                     pytest.approx(83894.04692005321))
    assert long_.notional_usd == pytest.approx(544.47236451, rel=1e-9)
    assert long_.ts == pytest.approx(1790173872.009)
    assert (short.side, short.notional_usd, short.quote) == ("short", pytest.approx(840.0), "USD")
    # Through the session, each on its own source: one id per liquidation, both ways.
    for compiled in (True, False):
        session = VenueSession(paradex.VENUE, compiled=compiled)
        session.process(RawFrame("paradex", MARKETS_URL, REAL_RECV, markets_body(MARKETS)))
        live = session.process(RawFrame("paradex", HARNESS.source, REAL_RECV, body))
        back = session.process(RawFrame("paradex", source(), REAL_RECV, body))
        assert [e.id for e in back.events] == [e.id for e in live.events] == [
            e.id for e in polled]
        assert back.deadletter is None and back.unpriced == 0
    # The capture as printed (no id): the content hash, the same both ways.
    text = '{"next":null,"prev":null,"results":[' + REAL_ROW_TEXT + "]}"
    (ev,) = history(text)
    assert ev.id == HARNESS.events(text)[0].id and ev.side == "long"
    assert source() == "history+https://api.prod.paradex.trade/v1/trades?market=BTC-USD-PERP"


LIQ = trade("q", BTC, "SELL", "1", "60000", 1_790_173_000_000)


@pytest.mark.parametrize(("text", "reason"), [
    ('{"error":"VALIDATION_ERROR","message":"invalid market"}', "rest_error"),
    ("<html>502</html>", "malformed_json"),
    ('{"next":null,"results":{}}', "unexpected_shape"),
    ('{"next":7,"results":[]}', "unexpected_shape"),  # no cursor: the walk cannot go on
    (page([{**LIQ, "side": "HOLD"}], "n"), "bad_side"),
    (page([{**LIQ, "size": "0"}], "n"), "bad_number"),
    (page([{**LIQ, "created_at": "1790173000000"}], "n"), "bad_timestamp"),
    (page([{"id": "f", "market": BTC}], "n"), "missing_field"),  # no trade_type
])
def test_a_page_the_parser_refuses_ends_the_walk_with_the_same_reason(text: str,
                                                                       reason: str) -> None:
    """The dead letter and the walk agree: a market whose page is refused is given up (the
    warm start fails) rather than read as a window without liquidations."""
    assert reason_of(paradex.parse_history, text, source(), REAL_RECV, loaded_meta()) == reason
    assert reason_of(paradex.history_next_page, text, 0) == reason


# ---- requests and pages -----------------------------------------------------------------------

def test_history_requests_and_the_cursor_walk() -> None:
    urls = {"rest": "http://sim"}
    req = paradex.history_request
    assert req(urls, BTC, None, None, None) == "http://sim/v1/trades?market=BTC-USD-PERP"
    # The identity is the poll's: one market, one stable source under each prefix.
    assert req({}, BTC, None, None, None) == paradex.poll_request(REST, BTC, None, None)
    assert req(urls, BTC, 1_790_000_000_000, 1_790_086_400_000, None) == (
        "http://sim/v1/trades?market=BTC-USD-PERP&page_size=1000&start_at=1790000000000"
        "&end_at=1790086400000")
    assert parse_qs(urlsplit(req(urls, BTC, 1, 2, "a+b/=")).query) == {
        "market": [BTC], "page_size": ["1000"], "cursor": ["a+b/="]}
    start = 1_790_000_000_000
    rows = [trade(str(k), BTC, "BUY", "1", "1", start + 10_000 - k, "FILL") for k in range(10)]
    nxt = paradex.history_next_page
    assert nxt(page(rows, "c2"), start) == "c2"  # every row in the window: on
    assert nxt(page(rows, "c2"), start + 9_992) is None  # the oldest row is before it: read
    assert nxt(page(rows, None), 0) is None  # the venue's end
    assert nxt(page(rows, ""), 0) is None
    assert nxt(page([], "c2"), 0) is None  # an empty page ends it whatever next says
    # A short page does not (the poll's rule): only next does, so a cap below 1000 loses nothing.
    assert len(rows) < paradex.PAGE_SIZE and nxt(page(rows, "c2"), 0) == "c2"
    # A row whose time cannot be read leaves the decision to the others (parse refuses it if
    # it is a liquidation).
    assert nxt(page([{**rows[0], "created_at": None}, rows[1]], "c3"), start) == "c3"


def test_pace_fits_the_ip_budget_shared_with_the_poll() -> None:
    spec = paradex.VENUE
    assert spec.poll is not None and spec.history is paradex.HISTORY
    # The markets the poll reads (the option of the listing is neither).
    (conn,) = paradex.connections(loaded_meta(), {})
    assert paradex.history_topics(loaded_meta()) == list(conn.topics) == [
        "BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"]
    # 1500 requests/minute per IP documented: the poll and the warm start together a third.
    assert spec.history.max_rate <= spec.poll.max_rate
    assert (spec.history.max_rate + spec.poll.max_rate) * 60 <= 1500 / 3
    assert spec.history.depth >= 86_400


# ---- the collector against the simulator ------------------------------------------------------

def tape(now_ms: int) -> dict[str, list[dict[str, Any]]]:
    """BTC: 2300 prints 37 s apart from 90 s ago back (every 50th a LIQUIDATION, SELL and BUY
    in turn; the others fills) and 2 liquidations 25 h old; ETH: 3 liquidations and 2 RPI
    prints; SOL: nothing."""
    btc = [trade(f"b{k}", BTC, "SELL" if (k // 50) % 2 else "BUY", f"0.{k + 1:04d}",
                 str(60000 + k), now_ms - 90_000 - 37_000 * k,
                 "LIQUIDATION" if k % 50 == 0 else "FILL") for k in range(2300)]
    btc += [trade(f"old{k}", BTC, "SELL", "1", "50000", now_ms - 25 * HOUR - k) for k in range(2)]
    eth = [trade(f"e{k}", "ETH-USD-PERP", "BUY" if k % 2 else "SELL", "2", "3000",
                 now_ms - 3_600_000 * (k + 1), "LIQUIDATION" if k < 3 else "RPI")
           for k in range(5)]
    return {BTC: btc, "ETH-USD-PERP": eth}


def poll_id(row: dict[str, Any]) -> str:
    """The event id the POLL's parser gives ``row``."""
    (ev,) = HARNESS.events(page([row]))
    return ev.id


def liquidation_usd(rows: list[dict[str, Any]], since_ms: int) -> float:
    return sum(float(r["size"]) * float(r["price"]) for r in rows
               if r["trade_type"] == "LIQUIDATION" and r["created_at"] >= since_ms)


async def test_warm_start_walks_the_cursor_and_counts_a_polled_liquidation_once() -> None:
    now_ms = int(time.time() * 1000)
    sim = ParadexSim()
    for rows in tape(now_ms).values():
        sim.add(*rows)
    sim.history_429, sim.retry_after = 1, "0.5"
    async with HARNESS.collector(sim, QUICK, **FAST) as rig:
        # The poll's first request starts its cursor; a liquidation printed at that very
        # millisecond is new to the poll and inside the warm start's window (which ends when
        # the warm start begins, after the poll's cursor was set).
        await sim.wait_for(lambda: any("end_at" not in q for q in sim.requests_for(BTC)))
        t_poll = int(next(q for q in sim.requests_for(BTC) if "end_at" not in q)["start_at"])
        overlap = trade("ov", BTC, "SELL", "0.2", "61000", t_poll)
        fresh = trade("fr", "ETH-USD-PERP", "BUY", "1.5", "3001", t_poll + 500)
        sim.add(overlap, fresh)
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=15)
        await rig.published(events=46 + 3 + 1 + 2, deadletters=0)
        await sim.wait_for(lambda: any(r.backfill_state == "done"
                                       for r in rig.sink.coverage_records))
    windows = [q for q in sim.trade_requests if "end_at" in q]
    assert windows and all(int(q["end_at"]) >= t_poll for q in windows)
    # The 429 (BTC's first page, asked again), BTC's 2301 rows in 3 pages by the cursor, then
    # one page for ETH and one for SOL.
    assert [m for m, _ in sim.history_requests] == [BTC] * 4 + ["ETH-USD-PERP", "SOL-USD-PERP"]
    assert [c is None for _, c in sim.history_requests] == [True, True, False, False, True, True]
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.count("liqstress_backfill_requests_total", outcome="ok") == 5
    assert rig.count("liqstress_backfill_events_total") == 46 + 3 + 1
    assert rig.value("liqstress_backfill_state", state="done") == 1
    # Every liquidation read back once (pages never repeat one), the overlap among them.
    rows = tape(now_ms)
    expected = {poll_id(r) for rows_ in rows.values() for r in rows_
                if r["trade_type"] == "LIQUIDATION" and r["created_at"] >= now_ms - DAY_MS}
    expected.add(poll_id(overlap))
    backfilled = [e.id for e in rig.sink.backfilled]
    assert len(backfilled) == len(expected) == 50 and set(backfilled) == expected
    polled = [e for e in rig.sink.events if not any(e is b for b in rig.sink.backfilled)]
    assert sorted(e.id for e in polled) == sorted([poll_id(overlap), poll_id(fresh)])
    # What the worker's windows hold (one per id): exact, the overlap once.
    once = {e.id: e for e in rig.sink.events}
    assert len(once) == 51
    assert all(e.ts * 1000 >= now_ms - DAY_MS for e in once.values())
    every = [r for rows_ in rows.values() for r in rows_] + [overlap, fresh]
    assert sum(e.notional_usd for e in once.values()) == pytest.approx(
        liquidation_usd(every, now_ms - DAY_MS))
    assert sum(e.notional_usd for e in once.values() if e.side == "long") == pytest.approx(
        liquidation_usd([r for r in every if r["side"] == "SELL"], now_ms - DAY_MS))
    # History bodies with events were recorded under their market's stable source.
    assert f"{HISTORY_PREFIX}{sim.http_base}/v1/trades?market={BTC}" in {
        r.source for r in rig.sink.raws}
    # Coverage: the 24 h read back, and the windows complete from its start.
    done = next(r for r in rig.sink.coverage_records if r.backfill_state == "done")
    assert done.backfilled is not None
    assert done.backfilled[1] - done.backfilled[0] == pytest.approx(86_400, abs=1e-6)
    assert done.backfilled[1] == pytest.approx(now_ms / 1000, abs=10)
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now_ms / 1000 - 86_400, abs=10)


async def test_a_refused_page_fails_the_warm_start_and_the_other_markets_are_read() -> None:
    now_ms = int(time.time() * 1000)
    sim = ParadexSim()
    sol = trade("s1", "SOL-USD-PERP", "SELL", "10", "150", now_ms - 120_000)
    sim.add(trade("e-bad", "ETH-USD-PERP", "HOLD", "1", "3000", now_ms - 60_000), sol)
    async with HARNESS.collector(sim, QUICK, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state == "failed", timeout=15)
        await rig.published(events=1, deadletters=1)
        assert rig.up() == 1  # the poll is unaffected
    assert [d["reason"] for d in rig.sink.deadletters] == ["bad_side"]
    assert [m for m, _ in sim.history_requests] == [BTC, "ETH-USD-PERP", "SOL-USD-PERP"]
    (ev,) = rig.sink.backfilled
    assert (ev.id, ev.side, ev.notional_usd) == (poll_id(sol), "long", pytest.approx(1500.0))
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now_ms / 1000, abs=10)  # complete from the process start only
    assert all(r.backfilled is None for r in rig.sink.coverage_records)


def test_recorded_history_body_replays_through_the_history_parser() -> None:
    """A recording routes ``history+`` frames to ``parse_history``: the events come back with
    the poll's ids."""
    body = orjson.dumps({"next": None, "prev": None, "results": TEST_PAGE_ROWS}).decode()
    session = VenueSession(paradex.VENUE)
    session.process(RawFrame("paradex", MARKETS_URL, REAL_RECV, markets_body(MARKETS)))
    out = session.process(RawFrame("paradex", source(), REAL_RECV, body))
    assert [e.id for e in out.events] == [e.id for e in HARNESS.events(body)]
    # The same body again from the same source (a page boundary repeated): dropped by id.
    again = session.process(RawFrame("paradex", source(), REAL_RECV, body))
    assert again.events == [] and again.snapshot_dropped == 2
