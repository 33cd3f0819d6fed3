"""Paradex: the parser on the real captured LIQUIDATION print (taker side -> position, size x
price in USD), the other trade types skipped, bad pages dead-lettered with stable reasons, the
markets listing, the poll requests and their cursor, and the real collector polling the REST
simulator (events published once across overlapping polls, pagination, a 429 honoured, a stuck
or failing API taking the source down and back, a new listing polled)."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.paradex import (
    MARKETS,
    OTHER_TYPES,
    REAL_ROW,
    REAL_ROW_TEXT,
    TEST_PAGE_ROWS,
    ParadexSim,
    market,
    markets_body,
    page,
    trade,
)
from liqstress.streams.venues import paradex
from liqstress.streams.venues.base import POLL_PREFIX, Metadata

from .venue_harness import LIVELY, VenueHarness, reason_of

MARKETS_URL = "https://api.prod.paradex.trade/v1/markets"
BTC_SOURCE = f"{paradex.WS_URL}?market=BTC-USD-PERP"
#: Just after the real print: the session's plausibility checks see a fresh event.
REAL_RECV = 1_790_173_873.0


def loaded_meta(markets: list | None = None) -> Metadata:
    meta = Metadata()
    paradex.load_rest(meta, MARKETS_URL, markets_body(MARKETS if markets is None else markets))
    return meta


HARNESS = VenueHarness(paradex, recv_ts=REAL_RECV, meta=loaded_meta, source=BTC_SOURCE)


def body(*rows: object, next_: str | None = None) -> str:
    return page(list(rows), next_)  # type: ignore[arg-type]


# ---- the real capture ------------------------------------------------------------------------

def test_real_sell_liquidation_is_a_long_worth_size_times_price() -> None:
    """ai-rates' captured print, verbatim inside a trade page: SELL = the taker, the forced
    close of a LONG; 0.00649 BTC at 83894.04692005321 USD."""
    text = '{"next":null,"prev":null,"results":[' + REAL_ROW_TEXT + "]}"
    out = HARNESS.out(text)
    assert out.kind == "data"
    (ev,) = out.events
    assert ev.side == "long"
    assert (ev.exchange, ev.symbol, ev.base, ev.quote, ev.market) == (
        "paradex", "BTC-USD-PERP", "BTC", "USD", "linear")
    assert ev.qty == pytest.approx(0.00649)  # base units
    assert ev.price == pytest.approx(83894.04692005321)
    assert ev.notional_usd == pytest.approx(0.00649 * 83894.04692005321)  # ~544.47 USD
    assert ev.notional_usd == pytest.approx(544.47236451, rel=1e-9)
    assert ev.ts == pytest.approx(1790173872.009)  # created_at, ms
    assert ev.recv_ts == REAL_RECV and ev.sampled is False


def test_the_real_test_page_two_liquidations_both_directions() -> None:
    """The page of ai-rates' liquidations_test.go: the real SELL print, a BUY liquidation (a
    short), and RPI, FILL and UNWIND_TRANSFER prints that are not liquidations."""
    evs = HARNESS.events(page(TEST_PAGE_ROWS))
    assert [(e.side, e.qty, e.notional_usd) for e in evs] == [
        ("long", pytest.approx(0.00649), pytest.approx(0.00649 * 83894.04692005321)),
        ("short", pytest.approx(0.01), pytest.approx(840.0))]
    assert [e.ts for e in evs] == pytest.approx([1790173872.009, 1790173900.0])
    assert evs[0].id != evs[1].id


def test_side_is_the_taker_order_side() -> None:
    sell = trade("s", "ETH-USD-PERP", "SELL", "2", "3000", 1_790_173_000_000)
    buy = trade("b", "ETH-USD-PERP", "BUY", "2", "3000", 1_790_173_000_000)
    assert [e.side for e in HARNESS.events(body(sell, buy))] == ["long", "short"]


def test_real_row_without_metadata_is_unpriced_not_guessed() -> None:
    (ev,) = HARNESS.events(body(REAL_ROW), meta=Metadata())
    assert ev.notional_usd is None and ev.qty == pytest.approx(0.00649)
    assert (ev.base, ev.quote) == ("BTC", "USD")  # from the symbol, for the labels only
    # Through the session it is counted as unpriced.
    out = VenueSession(paradex.VENUE).process(RawFrame("paradex", BTC_SOURCE, REAL_RECV,
                                                       body(REAL_ROW)))
    assert out.unpriced == 1 and len(out.events) == 1


def test_a_market_not_quoted_in_usd_is_unpriced() -> None:
    meta = loaded_meta([*MARKETS, market("XAU-EUR-PERP", quote="EUR")])
    row = trade("x", "XAU-EUR-PERP", "BUY", "1", "2300", 1_790_173_000_000)
    (ev,) = HARNESS.events(body(row), meta=meta)
    assert (ev.quote, ev.notional_usd, ev.side) == ("EUR", None, "short")


# ---- what is not a liquidation -----------------------------------------------------------------

@pytest.mark.parametrize("kind", [*OTHER_TYPES, "TWAP", "liquidation_fill"])
def test_other_trade_types_are_skipped(kind: str) -> None:
    row = trade("t", "BTC-USD-PERP", "SELL", "1", "60000", 1_790_173_000_000, kind)
    out = HARNESS.out(body(row, row))
    assert out.kind == "info" and out.events == ()


def test_other_types_are_not_read_beyond_their_type() -> None:
    """Only a LIQUIDATION row must be readable: a fill with odd fields costs nothing."""
    odd_fill = {"id": "f", "market": "BTC-USD-PERP", "trade_type": "FILL", "size": None}
    (ev,) = HARNESS.events(body(odd_fill, REAL_ROW))
    assert ev.side == "long"
    assert HARNESS.out(body()).kind == "info"  # an empty page: a quiet market is healthy


def test_trade_id_is_the_dedupe_key() -> None:
    a = trade("1790173872009201703989430001", "BTC-USD-PERP", "SELL", "1", "60000",
              1_790_173_000_000)
    (x,) = HARNESS.events(body(a))
    (y,) = HARNESS.events(body({**a, "price": "60001"}))  # same id: the same print
    (z,) = HARNESS.events(body({**a, "id": "other"}))
    (w,) = HARNESS.events(body({**a, "id": 1790173872009201703989430001 % 10**18}))
    assert x.id == y.id != z.id and w.id not in (x.id, z.id)
    # Without an id (as the capture was printed) the content hash is the key.
    (p,) = HARNESS.events(body(REAL_ROW))
    (q,) = HARNESS.events(body(dict(REAL_ROW)))
    assert p.id == q.id


# ---- bad pages ---------------------------------------------------------------------------------

LIQ = trade("q", "BTC-USD-PERP", "SELL", "1", "60000", 1_790_173_000_000)


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "malformed_json"),
    ("<html>502 Bad Gateway</html>", "malformed_json"),
    ("[1]", "unexpected_shape"),
    ('{"results":{}}', "unexpected_shape"),
    ('{"next":null}', "unexpected_shape"),
    ('{"error":"VALIDATION_ERROR","message":"invalid market"}', "rest_error"),
    (body(7), "unexpected_shape"),
    (body({"id": "x", "market": "BTC-USD-PERP"}), "missing_field"),
    (body({**LIQ, "trade_type": 5}), "missing_field"),
    (body({**LIQ, "side": "HOLD"}), "bad_side"),
    (body({**LIQ, "side": None}), "missing_field"),
    (body({**LIQ, "size": "abc"}), "bad_number"),
    (body({**LIQ, "size": 1}), "bad_number"),  # a JSON number where the API sends a string
    (body({**LIQ, "size": "0"}), "bad_number"),
    (body({**LIQ, "price": "-60000"}), "bad_number"),
    (body({**LIQ, "price": "1e400"}), "bad_number"),
    (body({**LIQ, "price": "NaN"}), "bad_number"),
    (body({**LIQ, "created_at": "1790173000000"}), "bad_timestamp"),
    (body({**LIQ, "created_at": 1790173000000.5}), "bad_timestamp"),
    (body({**LIQ, "created_at": True}), "bad_timestamp"),
    (body({k: v for k, v in LIQ.items() if k != "created_at"}), "missing_field"),
    (body({**LIQ, "market": ""}), "missing_field"),
    (body({**LIQ, "market": "BTCUSD"}), "unknown_symbol"),
    (body({**LIQ, "id": ""}), "missing_field"),
    (body({**LIQ, "id": ["1"]}), "missing_field"),
])
def test_bad_pages_raise_with_a_reason(text: str, reason: str) -> None:
    assert reason_of(paradex.parse, text, BTC_SOURCE, REAL_RECV, loaded_meta()) == reason


def test_absurd_values_are_dead_lettered_by_the_session() -> None:
    session = VenueSession(paradex.VENUE)
    session.process(RawFrame("paradex", MARKETS_URL, REAL_RECV, markets_body(MARKETS)))
    huge = trade("h", "BTC-USD-PERP", "SELL", "1000000", "84000", 1_790_173_000_000)
    seconds = trade("s", "BTC-USD-PERP", "SELL", "1", "84000", 1_790_173_000)  # s read as ms
    future = trade("f", "BTC-USD-PERP", "SELL", "1", "84000", 1_790_173_000_000 + 3 * 86_400_000)
    for row, reason in ((huge, "implausible_notional"), (seconds, "implausible_time"),
                        (future, "implausible_time")):
        out = session.process(RawFrame("paradex", BTC_SOURCE, REAL_RECV, body(row)))
        assert out.events == [] and out.deadletter is not None
        assert out.deadletter["reason"] == reason


# ---- markets, requests, cursor ------------------------------------------------------------------

def test_markets_keep_perps_only_and_a_refresh_replaces_them() -> None:
    meta = loaded_meta()
    assert sorted(meta.instruments) == ["BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"]
    btc = meta.get("BTC-USD-PERP")
    assert btc is not None and (btc.base, btc.quote, btc.market) == ("BTC", "USD", "linear")
    paradex.load_rest(meta, MARKETS_URL, markets_body([market("ETH-USD-PERP"),
                                                       {"symbol": 5, "asset_kind": "PERP"}]))
    assert list(meta.instruments) == ["ETH-USD-PERP"]


@pytest.mark.parametrize(("text", "reason"), [
    ("<html>", "malformed_json"),
    ('{"error":"INTERNAL_ERROR","message":"try again"}', "rest_error"),
    ('{"results":{}}', "unexpected_shape"),
    (markets_body([market("BTC-USD-96000-C", asset_kind="PERP_OPTION")]), "no_active_markets"),
])
def test_unusable_markets_bodies_keep_the_previous_listing(text: str, reason: str) -> None:
    meta = loaded_meta()
    assert reason_of(paradex.load_rest, meta, MARKETS_URL, text) == reason
    assert len(meta.instruments) == 3


def test_one_polled_connection_over_every_perp() -> None:
    assert paradex.rest_urls({}) == [MARKETS_URL]
    (conn,) = paradex.connections(loaded_meta(), paradex.VENUE.default_urls)
    assert (conn.name, conn.url, conn.poll) == (
        "trades", "https://api.prod.paradex.trade/v1/trades", 60.0)
    assert conn.topics == ("BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP")
    assert conn.subscribe == ()
    assert paradex.connections(Metadata(), {}) == []  # nothing listed: nothing to poll
    (sim,) = paradex.connections(loaded_meta(), {"rest": "http://127.0.0.1:9"})
    assert sim.url == "http://127.0.0.1:9/v1/trades"


def test_requests_and_their_stable_source() -> None:
    url = "https://api.prod.paradex.trade/v1/trades"
    req = paradex.poll_request
    assert req(url, "BTC-USD-PERP", None, None) == f"{url}?market=BTC-USD-PERP"
    assert POLL_PREFIX + req(url, "BTC-USD-PERP", None, None) == BTC_SOURCE
    assert req(url, "BTC-USD-PERP", 1790173872009, None) == (
        f"{url}?market=BTC-USD-PERP&page_size=1000&start_at=1790173872009")
    assert parse_qs(urlsplit(req(url, "BTC-USD-PERP", 5, "a+b/=")).query) == {
        "market": ["BTC-USD-PERP"], "page_size": ["1000"], "cursor": ["a+b/="]}


def test_progress_reads_the_newest_row_and_follows_only_full_pages() -> None:
    rows = [trade(str(i), "BTC-USD-PERP", "BUY", "1", "1", 1_790_000_000_000 + i, "FILL")
            for i in range(paradex.PAGE_SIZE)]
    assert paradex.poll_progress(page(rows, "next-token")) == (
        1_790_000_000_000 + paradex.PAGE_SIZE - 1, "next-token")
    assert paradex.poll_progress(page(rows[:10], "next-token")) == (
        1_790_000_000_009, None)  # a short page is the last, whatever next says
    assert paradex.poll_progress(page([])) == (None, None)
    # Rows whose time cannot be read do not move the cursor (parse decides what they mean).
    assert paradex.poll_progress(page([{"created_at": "x"}, 7, {"created_at": 5}])) == (5, None)
    assert reason_of(paradex.poll_progress, "{}") == "unexpected_shape"


def test_rates_and_liveness_fit_the_documented_limits_and_the_stall_budget() -> None:
    spec = paradex.VENUE
    assert spec.poll is not None
    # 1500 requests/minute per IP documented: we use a fifth of it at most.
    assert spec.poll.max_rate * 60 <= 1500 / 5
    # 100 markets: every one each minute, well under the cap.
    assert paradex.POLL_PERIOD / 100 >= 1 / spec.poll.max_rate
    assert spec.ping_interval + spec.pong_timeout + 1.0 <= 30
    assert spec.poll.overlap < paradex.POLL_PERIOD and spec.sampled is False


# ---- overlap, through the session ---------------------------------------------------------------

def test_rows_read_again_by_the_next_poll_count_once() -> None:
    session = VenueSession(paradex.VENUE)
    session.process(RawFrame("paradex", MARKETS_URL, REAL_RECV, markets_body(MARKETS)))
    first = session.process(RawFrame("paradex", BTC_SOURCE, REAL_RECV, page(TEST_PAGE_ROWS)))
    assert len(first.events) == 2
    again = session.process(RawFrame("paradex", BTC_SOURCE, REAL_RECV + 60,
                                     page(TEST_PAGE_ROWS)))
    assert again.events == [] and again.snapshot_dropped == 2 and again.kind == "data"
    newer = trade("9", "BTC-USD-PERP", "BUY", "0.1", "84500", 1_790_173_950_000)
    third = session.process(RawFrame("paradex", BTC_SOURCE, REAL_RECV + 120,
                                     page([newer, *TEST_PAGE_ROWS])))
    assert [e.side for e in third.events] == ["short"] and third.snapshot_dropped == 2


# ---- the collector against the simulator ------------------------------------------------------------

#: Quick polls: 0.3 s rounds, requests up to 50/s, a request may take 1 s.
QUICK = {**LIVELY, "poll_period": 0.3, "poll_rate": 50.0, "pong_timeout": 1.0}


def now_ms() -> int:
    return int(time.time() * 1000)


async def test_collector_polls_every_perp_and_publishes_liquidations_once() -> None:
    sim = ParadexSim()
    async with HARNESS.collector(sim, QUICK, metadata_refresh=0) as rig:
        assert rig.up() == 1
        polled = {q["market"] for q in sim.trade_requests}
        assert polled <= {"BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP"}  # no option
        t = now_ms()
        sim.add(trade("b1", "BTC-USD-PERP", "SELL", "0.5", "60000", t),
                trade("b2", "BTC-USD-PERP", "BUY", "2", "60010", t + 1, "FILL"),
                trade("e1", "ETH-USD-PERP", "BUY", "4", "3000", t + 2),
                trade("e2", "ETH-USD-PERP", "SELL", "4", "3000", t + 3, "RPI"))
        await rig.published(events=2, deadletters=0)
        # Several more rounds re-read the same prints (inside the overlap): still two events.
        n = len(sim.trade_requests)
        await sim.wait_for(lambda: len(sim.trade_requests) >= n + 9)
        assert len(rig.sink.events) == 2
        assert rig.count("liqstress_snapshot_dropped_total") >= 2
        # The cursor never goes below where the market started; requests ask from it.
        btc = sim.requests_for("BTC-USD-PERP")
        assert all(q["page_size"] == "1000" for q in btc)
        assert int(btc[-1]["start_at"]) >= int(btc[0]["start_at"])
        assert rig.up() == 1 and rig.count("liqstress_source_reconnects_total") == 0
    assert sorted(rig.outcome("symbol", "side", "notional_usd")) == [
        ("BTC-USD-PERP", "long", pytest.approx(30000)),
        ("ETH-USD-PERP", "short", pytest.approx(12000))]
    # Every body was recorded under its market's stable source, without start_at.
    sources = {r.source for r in rig.sink.raws if not r.is_rest}
    assert sources <= {f"{POLL_PREFIX}{sim.http_base}/v1/trades?market={m}"
                       for m in ("BTC-USD-PERP", "ETH-USD-PERP", "SOL-USD-PERP")}
    assert all("start_at" not in s for s in sources)


async def test_the_first_poll_starts_now_history_is_not_new() -> None:
    sim = ParadexSim()
    t = now_ms()
    sim.add(trade("old", "BTC-USD-PERP", "SELL", "1", "60000", t - 3_600_000))
    async with HARNESS.collector(sim, QUICK, metadata_refresh=0) as rig:
        first = sim.requests_for("BTC-USD-PERP")[0]
        assert int(first["start_at"]) >= t
        await sim.wait_for(lambda: len(sim.requests_for("BTC-USD-PERP")) >= 3)
    assert rig.sink.events == []


async def test_a_backlog_beyond_one_page_is_paged_with_the_cursor() -> None:
    sim = ParadexSim(markets=[market("BTC-USD-PERP")])
    async with HARNESS.collector(sim, QUICK, metadata_refresh=0) as rig:
        t = now_ms()
        fills = [trade(f"f{i:04d}", "BTC-USD-PERP", "BUY", "1", "60000", t + i, "FILL")
                 for i in range(1500)]
        # The liquidation is the OLDEST print: only the second page has it.
        sim.add(trade("liq", "BTC-USD-PERP", "SELL", "1", "60000", t), *fills)
        await rig.published(events=1, deadletters=0)
    assert any("cursor" in q for q in sim.trade_requests)
    (ev,) = rig.sink.events
    assert (ev.side, ev.notional_usd) == ("long", 60000.0)


async def test_a_429_holds_the_requests_for_retry_after_and_recovers() -> None:
    sim = ParadexSim(markets=[market("BTC-USD-PERP")])
    async with HARNESS.collector(sim, QUICK, metadata_refresh=0) as rig:
        n = len(sim.trade_requests)
        sim.retry_after = "0.8"
        sim.rate_limited = 1
        await sim.wait_for(lambda: len(sim.trade_requests) >= n + 2)
        # The request after the 429 waited for Retry-After (0.3 s rounds otherwise).
        assert sim.trade_times[n + 1] - sim.trade_times[n] >= 0.75
        t = now_ms()
        sim.add(trade("l1", "BTC-USD-PERP", "BUY", "1", "60000", t))
        await rig.published(events=1, deadletters=0)
        # One refusal is no outage: the source stayed up.
        assert rig.up() == 1 and rig.count("liqstress_source_reconnects_total") == 0


async def test_a_stuck_api_takes_the_source_down_and_it_comes_back() -> None:
    sim = ParadexSim(markets=[market("BTC-USD-PERP")])
    async with HARNESS.collector(sim, QUICK, metadata_refresh=0) as rig:
        sim.stalled = True
        began = time.monotonic()
        await sim.wait_for(lambda: rig.up() == 0, timeout=5)
        # Within the stall bound: the next request (0.3 s) + the 1 s request timeout + ticks.
        assert time.monotonic() - began <= rig.col.stall_bounds()["app"] + 0.5  # type: ignore[operator]
        assert "no answer" in rig.col.down_reason()
        sim.release()
        await sim.wait_for(lambda: rig.up() == 1, timeout=5)
        t = now_ms()
        sim.add(trade("after", "BTC-USD-PERP", "SELL", "1", "100", t))
        await rig.published(events=1, deadletters=0)
    assert rig.count("liqstress_source_reconnects_total") == 1 and rig.col.reconnects == 1


async def test_a_failing_api_takes_the_source_down_and_it_comes_back() -> None:
    sim = ParadexSim(markets=[market("BTC-USD-PERP")])
    async with HARNESS.collector(sim, QUICK, metadata_refresh=0) as rig:
        sim.rest_fail = 10_000  # every request answered 503
        await sim.wait_for(lambda: rig.up() == 0, timeout=5)
        assert rig.col.down_reason() == "HTTP 503"
        sim.rest_fail = 0
        await sim.wait_for(lambda: rig.up() == 1, timeout=5)
    assert rig.col.reconnects == 1 and rig.sink.deadletters == []


async def test_a_new_market_listed_by_a_refresh_is_polled() -> None:
    sim = ParadexSim()
    async with HARNESS.collector(sim, QUICK, metadata_refresh=0.3) as rig:
        assert not sim.requests_for("DOGE-USD-PERP")
        sim.markets.append(market("DOGE-USD-PERP"))
        await sim.wait_for(lambda: len(sim.requests_for("DOGE-USD-PERP")) >= 2)
        sim.add(trade("d1", "DOGE-USD-PERP", "SELL", "1000", "0.2", now_ms()))
        await rig.published(events=1, deadletters=0)
        # A market no longer listed is no longer polled.
        sim.markets = [m for m in sim.markets if m["symbol"] != "SOL-USD-PERP"]
        await asyncio.sleep(0.8)  # a refresh, and a round after it
        n = len(sim.requests_for("SOL-USD-PERP"))
        await sim.wait_for(lambda: len(sim.requests_for("DOGE-USD-PERP")) >= 6)
        assert len(sim.requests_for("SOL-USD-PERP")) == n
    (ev,) = rig.sink.events
    assert (ev.symbol, ev.base, ev.side, ev.notional_usd) == (
        "DOGE-USD-PERP", "DOGE", "long", pytest.approx(200.0))


async def test_a_bad_liquidation_print_is_a_dead_letter_and_the_poll_goes_on() -> None:
    sim = ParadexSim(markets=[market("BTC-USD-PERP"), market("ETH-USD-PERP")])
    async with HARNESS.collector(sim, QUICK, metadata_refresh=0) as rig:
        t = now_ms()
        sim.add({**trade("bad", "BTC-USD-PERP", "HOLD", "1", "1", t)})
        await sim.wait_for(lambda: len(rig.sink.deadletters) >= 1)
        sim.add(trade("ok", "ETH-USD-PERP", "SELL", "1", "3000", t + 5))
        await sim.wait_for(lambda: len(rig.sink.events) == 1)
        assert rig.up() == 1  # a page that is a page was answered, even with a bad row
    assert {d["reason"] for d in rig.sink.deadletters} == {"bad_side"}
    assert rig.sink.deadletters[0]["source"].endswith("?market=BTC-USD-PERP")


async def test_simulator_pages_newest_first_with_an_opaque_cursor() -> None:
    import aiohttp

    async with ParadexSim(markets=[market("BTC-USD-PERP")]) as sim:
        sim.add(*[trade(str(i), "BTC-USD-PERP", "BUY", "1", "1", 1000 + i, "FILL")
                  for i in range(5)])
        async with aiohttp.ClientSession() as http:
            base = f"{sim.http_base}/v1/trades"
            async with http.get(base, params={"market": "BTC-USD-PERP", "page_size": "2",
                                              "start_at": "1001"}) as resp:
                first = orjson.loads(await resp.read())
            assert [r["id"] for r in first["results"]] == ["4", "3"] and first["prev"] is None
            async with http.get(base, params={"cursor": first["next"], "page_size": "2"}) as resp:
                second = orjson.loads(await resp.read())
            assert [r["id"] for r in second["results"]] == ["2", "1"] and second["next"] is None
            async with http.get(base, params={"market": "BTC-USD-PERP",
                                              "page_size": "1001"}) as resp:
                assert resp.status == 400
            async with http.get(base, params={"market": "NOPE-USD-PERP"}) as resp:
                assert resp.status == 400
            sim.rate_limited = 1
            async with http.get(base, params={"market": "BTC-USD-PERP"}) as resp:
                assert resp.status == 429 and resp.headers["Retry-After"] == "1"
