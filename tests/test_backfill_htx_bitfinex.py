"""The warm start of HTX (v5 ``/v5/market/liquidation_orders`` per USDT-M swap, 2 h windows)
and Bitfinex (``/v2/liquidations/hist``, market-wide, 3 requests a minute): history rows get the
ids the live parsers give the same liquidation, the requests and cursors walk the window, and a
collector's warm start against each simulator pages, retries a 429 and counts an overlap with
live once.

Samples: the v5 row is the ccxt ``htx.py`` doc comment, the Bitfinex rows are the ccxt
``bitfinex.py`` doc comment and ccxt PR #20989's sample run ("doc/ccxt samples": quoted by ccxt,
not captured by us); the HTX live frame is the ai-rates capture the live tests use."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from liqstress.event import event_id
from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims import bitfinex as bf_sim
from liqstress.streams.sims import htx as htx_sim
from liqstress.streams.sims.bitfinex import BitfinexSim
from liqstress.streams.sims.htx import HtxSim
from liqstress.streams.venues import bitfinex as bf
from liqstress.streams.venues import htx
from liqstress.streams.venues.base import HISTORY_PREFIX, FrameError, Metadata

from .venue_harness import VenueHarness, reason_of, rejected_of

HOUR = 3_600_000
RECV = 1_800_000_000.0
#: Collector settings of the warm start under test: fast, with a short request timeout.
FAST: dict[str, Any] = {"backfill": True, "backfill_rate": 100.0, "backfill_timeout": 3.0,
                        "metadata_refresh": 0}


def live_ids(venue: Any, source: str, frame: str | bytes) -> set[str]:
    """The ids the LIVE path gives a frame: through the session, compiled and pure Python
    (HTX has a compiled parser), which must agree."""
    out = set()
    for compiled in (True, False):
        session = VenueSession(venue, compiled=compiled)
        result = session.process(RawFrame(venue.id, source, RECV, frame))
        assert result.deadletter is None, result.deadletter
        out.add(tuple(e.id for e in result.events))
    (ids,) = out
    return set(ids)


# ---- HTX -----------------------------------------------------------------------------------------

HTX = VenueHarness(htx, recv_ts=RECV)
HTX_SOURCE = HISTORY_PREFIX + htx.history_request({}, "BTC-USDT", None, None, None)


def htx_hist(*rows: dict[str, Any]) -> list[Any]:
    return list(htx.parse_history(htx_sim.history_body(list(rows)), HTX_SOURCE, RECV,
                                  Metadata()).events)


def htx_live(contract: str, direction: str, volume: float, price: float, t_ms: int,
             amount: float, turnover: float) -> bytes:
    """The live push of the same liquidation, gzip as HTX sends it."""
    return htx_sim.gz(htx_sim.liquidation(contract, (direction, volume, price, amount, t_ms,
                                                     turnover)))


def test_htx_history_rows_get_the_live_event_ids() -> None:
    # The ccxt v5 sample (a SHORT: position_side short, closed by a buy) and the live push of
    # the same liquidation: the push's price is the bankruptcy price, its volume a number.
    (short,) = htx_hist(htx_sim.CCXT_V5_ROW)
    live = htx_live("BTC-USDT", "buy", 2, 62978.5, 1781849094165, 0.002, 125.957)
    assert live_ids(htx.VENUE, htx.WS_URL, live) == {short.id}
    assert (short.side, short.symbol, short.base, short.quote, short.market) == (
        "short", "BTC-USDT", "BTC", "USDT", "linear")
    assert short.notional_usd == 125.957  # trade_turnover, USDT counted 1:1 as USD
    assert short.qty == 0.002  # turnover / bankruptcy price: 2 contracts of 0.001 BTC
    assert short.price == 62978.5 and short.ts == 1781849094.165
    # A LONG (position_side long, closed by a sell), on the live capture's numbers: the qty
    # derived from the turnover is the push's base amount exactly.
    row = htx_sim.history_row(7, "ETH-USDT", "long", "500", "2446.26", 1789670297212,
                              "12231.3")
    (long,) = htx_hist(row)
    live = htx_live("ETH-USDT", "sell", 500, 2446.26, 1789670297212, 5, 12231.3)
    assert live_ids(htx.VENUE, htx.WS_URL, live) == {long.id}
    assert (long.side, long.qty, long.notional_usd) == ("long", 5.0, 12231.3)
    # Each hashed field matters: another side, volume, price or millisecond is another id.
    for other in ({**row, "position_side": "short", "side": "buy"}, {**row, "volume": "501"},
                  {**row, "bankrupt_price": "2446.27"},
                  {**row, "liquidation_time": "1789670297213"}):
        assert htx_hist(other)[0].id != long.id
    # The session routes the history source to the history parser, compiled path or not.
    body = htx_sim.history_body([row])
    for compiled in (True, False):
        out = VenueSession(htx.VENUE, compiled=compiled).process(
            RawFrame("htx", HTX_SOURCE, RECV, body))
        assert [e.id for e in out.events] == [long.id] and out.deadletter is None
    # A fractional volume hashes as the push's JSON number does.
    (frac,) = htx_hist({**row, "volume": "2.5"})
    assert live_ids(htx.VENUE, htx.WS_URL, htx_live(
        "ETH-USDT", "sell", 2.5, 2446.26, 1789670297212, 5, 12231.3)) == {frac.id}


def test_htx_history_bad_rows_and_refusals_are_dead_letters() -> None:
    row = htx_sim.CCXT_V5_ROW
    for bad, reason in (
            ({**row, "side": "sell"}, "bad_side"),  # a sell never closes a short
            ({**row, "position_side": "both"}, "bad_side"),
            ({k: v for k, v in row.items() if k != "volume"}, "missing_field"),
            ({**row, "bankrupt_price": "0"}, "bad_number"),
            ({**row, "liquidation_time": "1.7e12"}, "bad_timestamp")):
        assert reason_of(htx.parse_history, htx_sim.history_body([bad]), HTX_SOURCE, RECV,
                         Metadata()) == reason
    # A refusal in an HTTP 200 (code not 200): a rest_error dead letter, never a crash, and
    # no next page (the collector then gives the contract up).
    refused = '{"code":1032,"message":"The number of access exceeded the limit","ts":1}'
    session = VenueSession(htx.VENUE)
    out = session.process_history(RawFrame("htx", HTX_SOURCE, RECV, refused))
    assert out.deadletter is not None and out.deadletter["reason"] == "rest_error"
    assert "1032" in out.deadletter["detail"] and out.events == []
    assert reason_of(htx.history_next_page, refused, 0, 1, None) == "rest_error"
    # Without trade_turnover the row is unpriced (counted), not guessed from v5's amount.
    unpriced = htx.parse_history(htx_sim.history_body([{**row, "trade_turnover": None}]),
                                 HTX_SOURCE, RECV, Metadata())
    assert unpriced.unpriced == 1 and unpriced.events[0].notional_usd is None


def test_htx_history_requests_and_pages() -> None:
    urls = {"rest": "http://sim"}
    start, end = 1_789_600_000_000, 1_789_600_000_000 + 5 * HOUR
    assert htx.history_request(urls, "BTC-USDT", None, None, None) == \
        "http://sim/v5/market/liquidation_orders?contract_code=BTC-USDT"
    # The newest 2 h window first, then back by id inside it.
    assert htx.history_request(urls, "BTC-USDT", start, end, None) == (
        f"http://sim/v5/market/liquidation_orders?contract_code=BTC-USDT"
        f"&start_time={end - 2 * HOUR}&end_time={end}&limit=100&direct=prev")
    assert htx.history_request(urls, "BTC-USDT", start, end, f"{end - 4 * HOUR}/42").endswith(
        f"&start_time={start}&end_time={end - 4 * HOUR}&limit=100&direct=prev&from=42")

    def page(n: int, newest: int) -> str:
        return htx_sim.history_body([htx_sim.history_row(1000 + k, "BTC-USDT", "long", "1", "1",
                                                         newest - k * 1000, "1")
                                     for k in range(n)])
    full = page(100, end - 1000)
    assert htx.history_next_page(full, start, end, None) == f"{end}/1099"  # the oldest row
    assert htx.history_next_page(full, start, end, f"{end}/1200") == f"{end}/1099"
    # A short page ends the window: the next one is 2 h older, the last one ends the walk.
    assert htx.history_next_page(page(3, end), start, end, None) == str(end - 2 * HOUR)
    assert htx.history_next_page(page(0, end), start, end, str(end - 2 * HOUR)) == \
        str(end - 4 * HOUR)
    assert htx.history_next_page(page(0, end), start, end, str(end - 4 * HOUR)) is None
    # A full page that does not move (``from`` ignored) or reaches before its window ends
    # the window rather than looping.
    assert htx.history_next_page(full, start, end, f"{end}/1099") == str(end - 2 * HOUR)
    old = page(100, end - 2 * HOUR + 10_000)
    assert htx.history_next_page(old, start, end, None) == str(end - 2 * HOUR)
    # The topics: every USDT-M swap of the funding listing.
    body = htx_sim.funding_body({"ETH-USDT": "0.0001", "BTC-USDT": "0.0001", "bad code": "0"})
    assert htx.history_listing_topics(body) == ["BTC-USDT", "ETH-USDT"]
    assert htx.history_listing(urls) == "http://sim/linear-swap-api/v1/swap_batch_funding_rate"
    assert reason_of(htx.history_listing_topics,
                     '{"status":"error","err_code":1,"err_msg":"x","ts":1}') == "rest_error"


def htx_rows(now_ms: int) -> dict[str, list[dict[str, Any]]]:
    """BTC-USDT: 250 liquidations 10 s apart from 30 min ago (3 pages of one window), 20 spread
    over the day (long and short in turn) and 2 that are 25 h old; ETH-USDT: 3. Ids grow with
    time, as HTX's do (``from`` pages back to smaller ones)."""
    btc = [htx_sim.history_row(12_000 - k, "BTC-USDT", "long" if k % 2 else "short",
                               str(k % 7 + 1), f"{60000 + k}.5", now_ms - 1_800_000 - 10_000 * k,
                               f"{(k % 7 + 1) * (60000 + k + 0.5) / 1000:.4f}")
           for k in range(250)]
    btc += [htx_sim.history_row(9_000 - k, "BTC-USDT", "short" if k % 2 else "long", "3",
                                "59000", now_ms - 3 * HOUR - 3_900_000 * k, "177")
            for k in range(20)]
    btc += [htx_sim.history_row(100 - k, "BTC-USDT", "long", "1", "50000",
                                now_ms - 25 * HOUR - k * 1000, "50") for k in range(2)]
    eth = [htx_sim.history_row(40_000 - k, "ETH-USDT", "short", "500", "2446.26",
                               now_ms - 5 * HOUR * (k + 1), "12231.3") for k in range(3)]
    return {"BTC-USDT": btc, "ETH-USDT": eth}


def htx_as_live(row: dict[str, Any]) -> bytes:
    volume = int(row["volume"])
    price, turnover = float(row["bankrupt_price"]), float(row["trade_turnover"])
    return htx_live(row["contract_code"], row["side"], volume, price,
                    int(row["liquidation_time"]), turnover / price, turnover)


async def test_htx_warm_start_paginates_retries_and_counts_an_overlap_once() -> None:
    now_ms = int(time.time() * 1000)
    sim = HtxSim()
    sim.liquidation_history = htx_rows(now_ms)
    sim.history_429, sim.retry_after = 1, "0.1"  # the first page: 429
    rows = [r for rs in sim.liquidation_history.values() for r in rs]
    in_window = [r for r in rows if int(r["liquidation_time"]) >= now_ms - 24 * HOUR]
    expected = {next(iter(live_ids(htx.VENUE, htx.WS_URL, htx_as_live(r)))): r
                for r in in_window}
    assert len(expected) == len(in_window) == 250 + 20 + 3
    async with HTX.collector(sim, **FAST) as rig:
        overlap = sim.liquidation_history["BTC-USDT"][3]  # a history row, also seen live
        await sim.push(htx_sim.liquidation("BTC-USDT", (
            overlap["side"], int(overlap["volume"]), float(overlap["bankrupt_price"]),
            float(overlap["trade_turnover"]) / float(overlap["bankrupt_price"]),
            int(overlap["liquidation_time"]), float(overlap["trade_turnover"]))))
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=20)
        await sim.wait_for(lambda: len(rig.sink.events) > len(rig.sink.backfilled))
    backfilled = [e.id for e in rig.sink.backfilled]
    # Every liquidation of the window once (pages repeat their ``from`` row: dropped by id),
    # nothing older, and the live one under the id of its history row.
    assert len(backfilled) == len(set(backfilled)) and set(backfilled) == set(expected)
    live = [e for e in rig.sink.events if not any(e is b for b in rig.sink.backfilled)]
    assert [e.id for e in live] == list(live_ids(htx.VENUE, htx.WS_URL, htx_as_live(overlap)))
    assert expected[live[0].id] is overlap
    # Exact totals per side over the distinct ids (what the worker's windows count).
    distinct = {e.id: e for e in rig.sink.events}
    for side in ("long", "short"):
        want = sum(float(r["trade_turnover"]) for r in expected.values()
                   if r["position_side"] == side)
        assert sum(e.notional_usd for e in distinct.values() if e.side == side) == \
            pytest.approx(want, rel=1e-12)
    # After the listing, per contract 12 windows newest first, the busy one paged back by id
    # (250 rows: 3 pages, each from the oldest id of the one before); the first page was
    # refused (429) and asked again.
    btc = [(s, e, f) for c, s, e, f in sim.history_requests if c == "BTC-USDT"]
    assert btc[0] == btc[1] and len(btc) == 1 + 12 + 2
    btc = btc[1:]
    assert all(e - s <= 2 * HOUR for s, e, _ in btc)
    assert [e for s, e, f in btc if f is None] == sorted(
        {e for _, e, _ in btc}, reverse=True)  # windows newest first, each once from its top
    assert [f for _, _, f in btc if f is not None] == ["11901", "11802"]
    assert min(s for s, _, _ in btc) == pytest.approx(now_ms - 24 * HOUR, abs=10_000)
    assert len([r for r in sim.history_requests if r[0] == "ETH-USDT"]) == 12
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.count("liqstress_backfill_requests_total", outcome="ok") == 1 + 14 + 12
    assert rig.count("liqstress_backfill_events_total") == len(expected)
    assert rig.value("liqstress_backfill_state", state="done") == 1
    assert rig.sink.deadletters == []


async def test_htx_contract_refused_in_a_200_fails_the_warm_start_not_the_feed() -> None:
    now_ms = int(time.time() * 1000)
    sim = HtxSim()
    sim.liquidation_history = htx_rows(now_ms)
    sim.refuse_history = {"BTC-USDT"}
    async with HTX.collector(sim, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state == "failed", timeout=20)
        assert rig.up() == 1
    assert [d["reason"] for d in rig.sink.deadletters] == ["rest_error"]
    assert {e.symbol for e in rig.sink.backfilled} == {"ETH-USDT"}  # the other one is read
    assert len([r for r in sim.history_requests if r[0] == "BTC-USDT"]) == 1  # not retried
    assert rig.value("liqstress_backfill_state", state="failed") == 1



async def test_htx_unreadable_contract_listing_fails_the_warm_start_cleanly() -> None:
    sim = HtxSim()
    sim.oi_bodies[htx_sim.FUNDING_PATH] = '{"status":"error","err_code":1,"err_msg":"x","ts":1}'
    async with HTX.collector(sim, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state == "failed", timeout=20)
        assert rig.up() == 1
    assert sim.history_requests == [] and rig.sink.deadletters == []
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        time.time(), abs=30)  # complete from the process start only


# ---- Bitfinex ------------------------------------------------------------------------------------

BFX = VenueHarness(bf, recv_ts=RECV)
BFX_SOURCE = HISTORY_PREFIX + bf.history_request({}, bf.KEY, None, None, None)


def bfx_hist(*rows: list[Any]) -> Any:
    return bf.parse_history(bf_sim.hist_body(list(rows)), BFX_SOURCE, RECV, Metadata())


def bfx_live(*rows: list[Any]) -> set[str]:
    return live_ids(bf.VENUE, bf.WS_URL, bf_sim.frame(bf_sim.FIRST_CHAN_ID, *rows))


def as_trigger(row: list[Any], price: float | None) -> list[Any]:
    return [*row[:8], 0, row[9], row[10], price]


def test_bitfinex_history_rows_get_the_live_event_ids() -> None:
    # ccxt PR #20989: a LONG's trigger without a price, two match rows at 42735: one event,
    # priced at the matches, under the POS_ID id the live trigger gets.
    trigger, *matches = sorted(bf_sim.CCXT_PR_ROWS, key=lambda r: r[2])
    (long,) = bfx_hist(*bf_sim.CCXT_PR_ROWS).events
    assert bfx_live(as_trigger(trigger, 42735)) == {long.id}
    assert (long.side, long.symbol, long.base, long.quote, long.market) == (
        "long", "tBTCF0:USTF0", "BTC", "USDT", "linear")
    assert long.price == 42735 and long.qty == 0.0392  # the trigger's whole position
    assert long.notional_usd == pytest.approx(0.0392 * 42735)  # USDt counted as USD
    assert long.ts == bf_sim.CCXT_PR_T0 / 1000  # the trigger's MTS
    # The live parser has no price for that trigger (its matches come in other frames): a
    # dead letter there, an event here, one id either way.
    assert rejected_of(bf.parse, bf_sim.frame(1, trigger), bf.WS_URL, RECV, Metadata()) == [
        "no_liquidation_price"]
    # ccxt's doc-comment row is a match of a SHORT (AMOUNT -8): alone it is no event (the
    # trigger counts); with its trigger it is the price.
    (avax,) = bf_sim.CCXT_HIST_BODY[0]
    assert bf.parse_history(orjson.dumps(bf_sim.CCXT_HIST_BODY).decode(), BFX_SOURCE, RECV,
                            Metadata()).events == ()
    (short,) = bfx_hist(avax, as_trigger(avax, None)).events
    assert bfx_live(as_trigger(avax, 33.255)) == {short.id}
    assert (short.side, short.price, short.qty, short.notional_usd) == (
        "short", 33.255, 8.0, 8 * 33.255)
    # A trigger with its own price keeps it (never BASE_PRICE, never the matches'): the live
    # event exactly.
    priced = as_trigger(trigger, 42700.5)
    assert list(bfx_hist(priced, *matches).events) == BFX.events(bf_sim.frame(1, priced))
    # Matches of different prices: their mean weighted by amount.
    (mixed,) = bfx_hist(trigger, [*matches[0][:11], 42000], [*matches[1][:11], 43000]).events
    a, b = abs(matches[0][5]), abs(matches[1][5])
    assert mixed.price == pytest.approx((a * 42000 + b * 43000) / (a + b), rel=1e-11)
    # As live: margin pairs count, EURt-margined perps are unpriced.
    margin = bf_sim.row(5, bf_sim.CCXT_PR_T0, "tBTCUSD", -0.5, 42000.0)
    eur = bf_sim.row(6, bf_sim.CCXT_PR_T0, "tBTCF0:EUTF0", 0.5, 39000.0)
    out = bfx_hist(margin, eur)
    assert [(e.market, e.side, e.notional_usd) for e in out.events] == [
        ("spot", "short", 21000.0), ("linear", "long", None)]
    assert out.unpriced == 1
    assert bfx_live(margin, eur) == {e.id for e in out.events}


def test_bitfinex_trigger_without_any_price_dead_letters_only_itself() -> None:
    lone = bf_sim.row(77, bf_sim.CCXT_PR_T0 - 60_000, "tETHF0:USTF0", -2.0, None)
    body = bf_sim.hist_body([*bf_sim.CCXT_PR_ROWS, lone])
    parsed = bf.parse_history(body, BFX_SOURCE, RECV, Metadata())
    assert [r for r, _ in parsed.rejected] == ["no_liquidation_price"]
    assert "POS_ID=77" in parsed.rejected[0][1]
    # Through the session: the other position's event is published, the page dead-lettered.
    out = VenueSession(bf.VENUE).process_history(RawFrame("bitfinex", BFX_SOURCE, RECV, body))
    assert [e.id for e in out.events] == [e.id for e in bfx_hist(*bf_sim.CCXT_PR_ROWS).events]
    assert out.deadletter is not None and out.deadletter["reason"] == "no_liquidation_price"
    # A malformed row is the whole page's dead letter, as for the other venues.
    assert reason_of(bf.parse_history, '[[["pos",1]]]', BFX_SOURCE, RECV, Metadata()) == \
        "missing_field"
    assert reason_of(bf.parse_history, orjson.dumps(bf_sim.RATE_LIMITED).decode(), BFX_SOURCE,
                     RECV, Metadata()) == "rest_error"


def test_bitfinex_history_requests_and_pages() -> None:
    urls = {"rest": "http://sim"}
    assert bf.history_request(urls, bf.KEY, None, None, None) == \
        "http://sim/v2/liquidations/hist"
    assert bf.history_request(urls, bf.KEY, 100, 900, None) == \
        "http://sim/v2/liquidations/hist?start=100&end=900&limit=500&sort=-1"
    assert bf.history_request(urls, bf.KEY, 100, 900, "850").endswith("end=850&limit=500&sort=-1")
    assert bf.history_topics(Metadata()) == ["liq:global"]
    t0 = 1_789_600_000_000

    def page(n: int, step: int) -> str:
        return bf_sim.hist_body([bf_sim.row(k, t0 - k * step, "tBTCF0:USTF0", 1.0, 60000.0)
                                 for k in range(n)])
    oldest = t0 - 499 * 100
    # Back from the oldest row, re-reading the 5 s above it (a trigger cut off at the page
    # boundary finds its match rows again); a page within 5 s from its oldest millisecond;
    # a page all in one millisecond past it.
    assert bf.history_next_page(page(500, 100), 0) == str(oldest + bf.MATCH_SPREAD_MS)
    assert bf.history_next_page(page(500, 10), 0) == str(t0 - 4990)
    assert bf.history_next_page(page(500, 0), 0) == str(t0 - 1)
    assert bf.history_next_page(page(499, 100), 0) is None  # a short page is the last
    assert bf.history_next_page(page(500, 100), oldest + 1) is None  # the window is read
    assert bf.history_next_page("[]", 0) is None
    assert reason_of(bf.history_next_page, '{"error":"ERR_RATE_LIMIT"}', 0) == "rest_error"


def bfx_rows(now_ms: int) -> list[list[Any]]:
    """700 positions over the last 23 h (a trigger without a price and one or two match rows
    each, as the REST history has them: 1,634 rows, 4 pages of 500), long and short in turn,
    and 3 positions 25 h old."""
    out = []
    for k in range(700):
        t, amount = now_ms - 120_000 - 118_000 * k, (0.5 + k % 5) * (1 if k % 2 else -1)
        price = 60000.0 + k
        out.append(bf_sim.row(1000 + k, t, "tBTCF0:USTF0", amount, None))
        out.append(bf_sim.row(1000 + k, t + 3, "tBTCF0:USTF0", amount / 2, price, is_match=1))
        if k % 3 == 0:
            out.append(bf_sim.row(1000 + k, t + 7, "tBTCF0:USTF0", amount / 2, price,
                                  is_match=1))
    out += [bf_sim.row(9000 + k, now_ms - 25 * HOUR - k, "tETHF0:USTF0", 1.0, 3000.0)
            for k in range(3)]
    return out


async def test_bitfinex_warm_start_pages_retries_and_counts_an_overlap_once(
        tmp_path: Path) -> None:
    """The overlap Bitfinex can have: a liquidation published live (after the subscribe: the
    one replayed on subscribe is dropped) is in the history the next start reads (durable
    mode re-reads a minute before the newest event): one id for both."""
    now_ms = int(time.time() * 1000)
    sim = BitfinexSim()
    sim.liquidation_history = bfx_rows(now_ms)
    sim.history_429, sim.retry_after = 1, "0.1"
    expected = {1000 + k: (60000.0 + k) * (0.5 + k % 5) for k in range(700)}
    state = tmp_path / "warm-start"
    async with BFX.collector(sim, state_dir=state, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=20)
        live_t = int(time.time() * 1000) + 50
        fresh = [bf_sim.row(5000, live_t, "tBTCF0:USTF0", 0.25, 61000.0),
                 bf_sim.row(5000, live_t + 4, "tBTCF0:USTF0", 0.25, 61000.0, is_match=1)]
        await sim.push_rows(*fresh)
        await sim.wait_for(lambda: len(rig.sink.events) == len(rig.sink.backfilled) + 1)
    backfilled = [e.id for e in rig.sink.backfilled]
    assert len(backfilled) == len(set(backfilled)) == 700  # page overlaps dropped by id
    ids = {e.id: e for e in rig.sink.backfilled}
    # POS_ID ids, as live: every position of the window, none of the 25 h old ones.
    assert set(ids) == {event_id("bitfinex", "tBTCF0:USTF0", 0.0, "", 0.0, None, str(p))
                        for p in expected}
    assert sum(e.notional_usd for e in ids.values()) == pytest.approx(sum(expected.values()))
    assert sum(e.notional_usd for e in ids.values() if e.side == "long") == pytest.approx(
        sum(v for p, v in expected.items() if (p - 1000) % 2))
    # Paged back by ``end`` (each under the one before), one 429 retried.
    ends = [e for _, e in sim.history_requests]
    assert len(ends) == 1 + 4 and ends[0] == ends[1] and ends[1:] == sorted(ends[1:],
                                                                          reverse=True)
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.count("liqstress_backfill_events_total") == 700
    assert rig.value("liqstress_backfill_state", state="done") == 1
    assert rig.sink.deadletters == []
    (live,) = [e for e in rig.sink.events if not any(e is b for b in rig.sink.backfilled)]
    # The next start: the venue's history now holds the live one (its trigger without a
    # price, as REST has it); only the gap is read, and it comes back under the same id.
    # (Later than the live one's time: it was dated just after its subscribe.)
    await asyncio.sleep(max(0.0, live_t / 1000 - time.time()) + 0.05)
    sim2 = BitfinexSim()
    sim2.liquidation_history = [*bfx_rows(now_ms), as_trigger(fresh[0], None), fresh[1]]
    async with BFX.collector(sim2, state_dir=state, **FAST) as rig2:
        await sim2.wait_for(lambda: rig2.col.backfill_state == "done", timeout=20)
    assert [(e.id, e.notional_usd) for e in rig2.sink.backfilled] == [
        (live.id, live.notional_usd)]
    (start, _), = sim2.history_requests
    assert start == pytest.approx(live_t - 60_000, abs=5)
    # Over both runs, each liquidation once: 700 from the history and the live one.
    distinct = {e.id for e in [*rig.sink.events, *rig2.sink.events]}
    assert len(distinct) == 701


def test_specs_declare_the_warm_start() -> None:
    for venue, rate in ((htx.VENUE, 5.0), (bf.VENUE, 0.045)):
        assert venue.history is not None and venue.history.max_rate == rate
        assert venue.history.rule.startswith("24 h:")
    hist = bf.VENUE.history
    assert hist is not None and 1 / hist.max_rate >= 20  # 3 a minute, with a margin
    assert bf.VENUE.default_urls["rest"] == "https://api-pub.bitfinex.com"
    with pytest.raises(FrameError):
        htx.history_listing_topics('{"status":"ok","data":[],"ts":1}')
