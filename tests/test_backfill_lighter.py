"""The warm start of Lighter: ``/api/v1/trades`` per market, ``type=liquidation``, newest first,
100 a page back by ``next_cursor``. History rows are read by the live parser's entry reader (the
same ``trade_id``, so the same event id; the same taker-position side; ``usd_amount``), the pages
are walked to the window start, and a collector against the simulator reads them with a 429
retried and an overlap with a live frame counted once.

Evidence of the rows: no REST page with a liquidation was found. ``NAUTILUS_REST_TRADE`` is
the mainnet REST capture of nautilus_trader (an ordinary print) and has the keys of a channel
entry; the liquidation rows are the real channel captures (tardis-node, ai-rates) placed in a
REST page, which is the assumption these tests pin: the same schema on both."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.lighter import (
    AI_RATES_LONG,
    MARKETS,
    NAUTILUS_REST_TRADE,
    TARDIS_LIQUIDATION,
    LighterSim,
    details_body,
    long_liquidation,
    ordinary_trade,
    short_liquidation,
    trade_frame,
)
from liqstress.streams.venues import lighter
from liqstress.streams.venues.base import HISTORY_PREFIX, Metadata

from .test_backfill import FAST, HOUR
from .venue_harness import VenueHarness, reason_of

DETAILS_URL = lighter.rest_urls(lighter.VENUE.default_urls)[0]
DAY_MS = 24 * HOUR


def loaded_meta() -> Metadata:
    meta = Metadata()
    lighter.load_rest(meta, DETAILS_URL, details_body(MARKETS))
    return meta


HARNESS = VenueHarness(lighter, meta=loaded_meta)


def source(market: str) -> str:
    return HISTORY_PREFIX + lighter.history_request({}, market, None, None, None)


def body(*rows: dict[str, Any] | str, cursor: str | None = "c1") -> str:
    """A ``trades`` page; a row given as text (a capture) is embedded as it is."""
    items = ",".join(r if isinstance(r, str) else orjson.dumps(r).decode() for r in rows)
    return (f'{{"code":200,"next_cursor":{orjson.dumps(cursor).decode()},'
            f'"trades":[{items}]}}')


def live_ids(market: int, *entries: dict[str, Any] | str) -> list[str]:
    return [e.id for e in HARNESS.events(trade_frame(market, *entries))]


# ---- rows: the live ids, sides and USD ---------------------------------------------------------

def test_history_rows_get_the_live_event_ids_sides_and_usd() -> None:
    # The REST capture has every field the channel's entries carry (and the parser reads).
    assert set(orjson.loads(NAUTILUS_REST_TRADE)) <= set(orjson.loads(TARDIS_LIQUIDATION))
    page = body(NAUTILUS_REST_TRADE, TARDIS_LIQUIDATION)
    hist = lighter.parse_history(page, source("1"), HARNESS.recv_ts, loaded_meta())
    (short,) = hist.events  # the ordinary print is no liquidation
    assert [short.id] == live_ids(1, TARDIS_LIQUIDATION)
    assert (short.symbol, short.side, short.notional_usd, short.qty) == (
        "BTC", "short", pytest.approx(1258.030592), pytest.approx(0.01664))
    assert short.ts == pytest.approx(1776687656.653)
    (long_,) = lighter.parse_history(body(AI_RATES_LONG), source("5"), HARNESS.recv_ts,
                                     loaded_meta()).events
    assert [long_.id] == live_ids(5, AI_RATES_LONG)
    assert (long_.symbol, long_.side, long_.notional_usd) == ("WIF", "long",
                                                              pytest.approx(282.299640))
    # Through the session (the collector's and a replay's path): the same ids.
    session = VenueSession(lighter.VENUE)
    session.process(RawFrame("lighter", DETAILS_URL, HARNESS.recv_ts, details_body(MARKETS)))
    out = session.process(RawFrame("lighter", source("1"), HARNESS.recv_ts, page))
    assert [e.id for e in out.events] == [short.id] and out.deadletter is None
    assert source("1") == \
        "history+https://mainnet.zklighter.elliot.ai/api/v1/trades?market_id=1"
    # A market missing from the metadata: named by its id, unpriced (as live).
    (unlisted,) = lighter.parse_history(body(long_liquidation(77, "1", "2", 1_790_000_000_000)),
                                        source("77"), HARNESS.recv_ts, loaded_meta()).events
    assert (unlisted.symbol, unlisted.notional_usd) == ("77", None)


@pytest.mark.parametrize(("text", "reason"), [
    ('{"code":20001,"message":"invalid param"}', "rest_error"),
    ('{"code":200,"trades":{}}', "unexpected_shape"),
    ('{"code":200,"next_cursor":5,"trades":[]}', "unexpected_shape"),
    (body({**orjson.loads(TARDIS_LIQUIDATION), "is_maker_ask": False}), "side_conflict"),
    (body({**orjson.loads(TARDIS_LIQUIDATION), "usd_amount": "x"}), "bad_number"),
    (body({k: v for k, v in orjson.loads(TARDIS_LIQUIDATION).items() if k != "type"}),
     "missing_field"),  # no type: not read as "no liquidation"
])
def test_a_page_the_parser_refuses_ends_the_walk_with_the_same_reason(text: str,
                                                                       reason: str) -> None:
    assert reason_of(lighter.parse_history, text, source("1"), 1.0, loaded_meta()) == reason
    assert reason_of(lighter.history_next_page, text, 0) == reason


def test_the_market_comes_from_the_source() -> None:
    assert reason_of(lighter.parse_history, body(), "history+https://x/api/v1/trades", 1.0,
                     Metadata()) == "unexpected_source"
    # A row of another market than the one asked for is refused, as on the channel.
    assert reason_of(lighter.parse_history, body(TARDIS_LIQUIDATION), source("3"), 1.0,
                     loaded_meta()) == "unexpected_shape"


# ---- requests and pages -----------------------------------------------------------------------

def test_history_requests_and_the_cursor_walk() -> None:
    urls = {"rest": "http://sim"}
    req = lighter.history_request
    assert req(urls, "36", None, None, None) == "http://sim/api/v1/trades?market_id=36"
    assert req(urls, "36", 1, 2, None) == (
        "http://sim/api/v1/trades?market_id=36&sort_by=timestamp&sort_dir=desc"
        "&type=liquidation&limit=100")
    assert req(urls, "36", 1, 2, "a/b+c=").endswith("&limit=100&cursor=a%2Fb%2Bc%3D")
    t0 = 1_790_000_000_000
    rows = [long_liquidation(1, "1", "1", t0 - k * 1000) for k in range(5)]
    nxt = lighter.history_next_page
    assert nxt(body(*rows, cursor="c5"), t0 - 4000) == "c5"  # all in the window: on
    assert nxt(body(*rows, cursor="c5"), t0 - 3999) is None  # one before it: read
    assert nxt(body(*rows, cursor=None), 0) is None
    assert nxt(body(cursor="c5"), 0) is None  # an empty page is the end
    assert nxt('{"code":200,"next_cursor":"c5","trades":null}', 0) is None
    # Ordinary prints (the type filter ignored) are walked past, never read as events.
    assert nxt(body(ordinary_trade(1, "1", "1", t0), cursor="c9"), 0) == "c9"


def test_pace_fits_the_ip_budget() -> None:
    spec = lighter.VENUE.history
    assert spec is lighter.HISTORY
    # 60 requests a minute per IP; trades weigh 600 of 24,000: 40 a minute at most.
    assert spec.max_rate * 60 <= min(60, 24_000 / 600) * 0.75
    assert lighter.history_topics(loaded_meta()) == ["0", "1", "3", "5", "36"]


# ---- the collector against the simulator ------------------------------------------------------

def trade_history(now_ms: int) -> dict[int, list[dict[str, Any]]]:
    """BTC (1): 230 liquidations 6 min apart from 90 s ago back, long and short in turn, plus
    300 ordinary prints and 2 liquidations 25 h old; DOGE (3): 3 liquidations; the others none."""
    btc = [(long_liquidation if k % 2 else short_liquidation)(
        1, f"0.{k + 1:03d}", str(60000 + k), now_ms - 90_000 - 360_000 * k) for k in range(230)]
    btc += [ordinary_trade(1, "0.1", "60000", now_ms - 7_000 * k) for k in range(300)]
    btc += [long_liquidation(1, "1", "50000", now_ms - 25 * HOUR - k) for k in range(2)]
    doge = [short_liquidation(3, "1000", "0.2", now_ms - 3_600_000 * (k + 1)) for k in range(3)]
    return {1: btc, 3: doge}


async def test_warm_start_walks_the_cursor_and_counts_an_overlap_once() -> None:
    now_ms = int(time.time() * 1000)
    sim = LighterSim()
    sim.replay_on_subscribe = False
    sim.trade_history = trade_history(now_ms)
    sim.history_429, sim.retry_after = 1, "0.1"
    liqs = [r for rows in sim.trade_history.values() for r in rows if r["type"] == "liquidation"]
    # The 25 h old rows share BTC's last page: read too (the windows leave them out by time).
    expected = {i: r for r in liqs for i in live_ids(r["market_id"], r)}
    assert len(expected) == 230 + 2 + 3
    overlap = sim.trade_history[1][3]  # 18 min old, also live
    fresh = long_liquidation(5, "100", "0.25", now_ms)
    async with HARNESS.collector(sim, **FAST) as rig:
        await sim.push(trade_frame(1, overlap))
        await sim.push(trade_frame(5, fresh))
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=15)
        await rig.published(events=235 + 2, deadletters=0)
        await sim.wait_for(lambda: any(r.backfill_state == "done"
                                       for r in rig.sink.coverage_records))
    backfilled = [e.id for e in rig.sink.backfilled]
    assert sorted(backfilled) == sorted(expected)  # every row once
    live = [e for e in rig.sink.events if not any(e is b for b in rig.sink.backfilled)]
    assert [e.id for e in live] == live_ids(1, overlap) + live_ids(5, fresh)
    # What the worker's windows hold (one per id, the last 24 h): exact, the overlap once.
    once = {e.id: e for e in rig.sink.events if e.ts * 1000 >= now_ms - DAY_MS}
    assert len(once) == 230 + 3 + 1
    assert sum(e.notional_usd for e in once.values()) == pytest.approx(
        sum(float(r["usd_amount"]) for r in expected.values()
            if r["timestamp"] >= now_ms - DAY_MS) + 25.0)
    assert sum(1 for e in once.values() if e.side == "long") == 115 + 1
    # Market 0 first (the 429, then again); BTC: 3 pages of 100, the third reaching past the
    # window start; DOGE: a page and the empty one after it; the others one empty page.
    assert sim.history_requests[:2] == [("0", None), ("0", None)]
    assert [c for m, c in sim.history_requests if m == "1"] == [None, "c100", "c200"]
    assert [c for m, c in sim.history_requests if m == "3"] == [None, "c3"]
    assert [m for m, _ in sim.history_requests[2:] if m not in ("1", "3")] == ["5", "36"]
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.count("liqstress_backfill_events_total") == 235
    assert rig.value("liqstress_backfill_state", state="done") == 1
    done = next(r for r in rig.sink.coverage_records if r.backfill_state == "done")
    assert done.backfilled is not None
    assert done.backfilled[1] - done.backfilled[0] == pytest.approx(86_400, abs=1e-6)
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now_ms / 1000 - 86_400, abs=10)
