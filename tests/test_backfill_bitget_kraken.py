"""The warm start of Bitget (v3 ``/api/v3/market/liquidations``, a cursor walk per category)
and Kraken Futures (v3 ``/derivatives/api/v3/history``, every trade of a product, 100 a page
back by ``lastTime``): history rows get the live event ids, sides and USD as live, the pages
are walked to the window start, and a collector against each simulator reads them with a 429
retried and an overlap with a live frame counted once.

Evidence of the rows: no captured body of either endpoint with a liquidation in it was found.
Bitget rows are doc examples (the field list of tiagosiebler/bitget-api
``src/types/response/v3/public.ts``, values ours). Kraken's ``CCXT_SAMPLE`` is the response
sample of ccxt ``ts/src/krakenfutures.ts`` (commit 008b956e8fe16b8d282355c487bbc6b8a91c9eaf,
``fetchTrades`` with ``publicGetHistory``), a ``fill``; every liquidation row here is a doc
example (the support article's fields plus ccxt's ``uid``)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.bitget import BitgetSim, entry, envelope, liquidations
from liqstress.streams.sims.kraken_futures import (
    PRODUCTS,
    KrakenFuturesSim,
    history_row,
    instruments_body,
    row_of,
    trade,
    trade_msg,
)
from liqstress.streams.venues import bitget
from liqstress.streams.venues import kraken_futures as kf
from liqstress.streams.venues.base import HISTORY_PREFIX, Metadata

from .test_backfill import FAST, HOUR
from .venue_harness import VenueHarness, reason_of

T0 = 1_789_670_000_000
DAY_MS = 24 * HOUR

# ---- Bitget -------------------------------------------------------------------------------------

BITGET = VenueHarness(bitget)


def bitget_source(inst_type: str) -> str:
    return HISTORY_PREFIX + bitget.history_request({}, inst_type, None, None, None)


def test_bitget_history_rows_get_the_live_event_ids() -> None:
    """A history row is a live entry: position side (buy long, sell short), amount in quote
    = the USD notional, and the content-hash id of the same liquidation."""
    usdt = [entry("BTCUSDT", "buy", "150000", "60000", T0),
            entry("ETHUSDT", "sell", "3000.5", "3001.25", T0 - 1500)]
    coin = [entry("BTCUSD", "sell", "20000", "59990.5", T0 - 7000)]
    for inst_type, rows in (("usdt-futures", usdt), ("coin-futures", coin)):
        live = BITGET.events(liquidations(*rows, inst_type=inst_type))
        body = envelope({"list": rows, "cursor": "1234"})
        hist = list(bitget.parse_history(body, bitget_source(inst_type), BITGET.recv_ts,
                                         Metadata()).events)
        assert hist == live and len(hist) == len(rows)
        for compiled in (True, False):  # the session routes history to the history parser
            session = VenueSession(bitget.VENUE, compiled=compiled)
            out = session.process_history(RawFrame("bitget", bitget_source(inst_type),
                                                   BITGET.recv_ts, body))
            assert [e.id for e in out.events] == [e.id for e in live]
    btc, eth = bitget.parse_history(envelope({"list": usdt}), bitget_source("usdt-futures"),
                                    BITGET.recv_ts, Metadata()).events
    assert (btc.side, btc.notional_usd, btc.qty, btc.market) == ("long", 150000.0, 2.5, "linear")
    assert (eth.side, eth.notional_usd, eth.quote) == ("short", 3000.5, "USDT")
    assert eth.qty == pytest.approx(3000.5 / 3001.25)
    (inv,) = bitget.parse_history(envelope({"list": coin}), bitget_source("coin-futures"),
                                  BITGET.recv_ts, Metadata()).events
    assert (inv.side, inv.notional_usd, inv.market, inv.quote) == ("short", 20000.0, "inverse",
                                                                   "USD")
    assert bitget_source("usdc-futures") == (
        "history+https://api.bitget.com/api/v3/market/liquidations?category=USDC-FUTURES")


def test_bitget_history_refusals_and_bad_rows_are_dead_letters() -> None:
    src = bitget_source("usdt-futures")
    refused = envelope(None, "40034", "Parameter verification failed")
    assert reason_of(bitget.parse_history, refused, src, 1.0, Metadata()) == "rest_error"
    assert reason_of(bitget.history_next_page, refused, 0) == "rest_error"
    no_ts = {k: v for k, v in entry("BTCUSDT", "buy", "1", "1", T0).items() if k != "ts"}
    # No envelope time to fall back on: a row without its own is refused, never guessed.
    assert reason_of(bitget.parse_history, envelope({"list": [no_ts]}), src, 1.0,
                     Metadata()) == "missing_field"
    assert reason_of(bitget.parse_history, envelope({"list": [entry("BTCUSDT", "both", "1",
                                                                     "1", T0)]}),
                     src, 1.0, Metadata()) == "bad_side"
    assert reason_of(bitget.parse_history, envelope({"list": {}}), src, 1.0,
                     Metadata()) == "unexpected_shape"
    assert reason_of(bitget.parse_history, envelope({"list": []}),
                     "history+https://x/api/v3/market/liquidations?category=SPOT", 1.0,
                     Metadata()) == "unexpected_source"


def test_bitget_history_requests_and_pages() -> None:
    urls = {"rest": "http://sim"}
    assert bitget.history_request(urls, "coin-futures", 1, 2, None) == \
        "http://sim/api/v3/market/liquidations?category=COIN-FUTURES&limit=100"
    assert bitget.history_request(urls, "usdt-futures", 1, 2, "a/b+c=") == (
        "http://sim/api/v3/market/liquidations?category=USDT-FUTURES&limit=100"
        "&cursor=a%2Fb%2Bc%3D")
    rows = [entry("BTCUSDT", "buy", "1", "1", T0 - k * 1000) for k in range(10)]
    body = envelope({"list": rows, "cursor": "987"})
    assert bitget.history_next_page(body, T0 - 9000) == "987"  # the oldest row is in the window
    assert bitget.history_next_page(body, T0 - 8999) is None  # a row before it: window read
    # A short page is not the last (the cap is unknown); an empty one, or no cursor, is.
    assert bitget.history_next_page(envelope({"list": rows[:2], "cursor": 55}), 0) == "55"
    assert bitget.history_next_page(envelope({"list": [], "cursor": "987"}), 0) is None
    assert bitget.history_next_page(envelope({"list": None, "cursor": ""}), 0) is None
    assert bitget.history_next_page(envelope({"list": rows, "cursor": ""}), 0) is None


def bitget_rows(now_ms: int) -> dict[str, list[dict[str, Any]]]:
    """USDT-FUTURES: 25 liquidations 2 min apart from 90 s ago back, buy/sell in turn, plus 2
    rows 25 h old; COIN-FUTURES: 3; USDC-FUTURES: none."""
    usdt = [entry("BTCUSDT" if k % 3 else "ETHUSDT", "sell" if k % 2 else "buy",
                  str(1000 + 10 * k), str(60000 + k), now_ms - 90_000 - 120_000 * k)
            for k in range(25)]
    usdt += [entry("BTCUSDT", "buy", "777", "50000", now_ms - 25 * HOUR - k * 1000)
             for k in range(2)]
    coin = [entry("BTCUSD", "buy", str(500 * (k + 1)), "59000", now_ms - 3_600_000 * (k + 1))
            for k in range(3)]
    return {"USDT-FUTURES": usdt, "COIN-FUTURES": coin, "USDC-FUTURES": []}


def bitget_live_ids(rows: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """Event id (from the LIVE parser) -> USD of every history row."""
    inst = {"USDT-FUTURES": "usdt-futures", "COIN-FUTURES": "coin-futures"}
    return {e.id: e.notional_usd for category, entries in rows.items() for r in entries
            for e in BITGET.events(liquidations(r, inst_type=inst[category]))}


async def test_bitget_warm_start_walks_the_cursor_and_counts_an_overlap_once() -> None:
    now_ms = int(time.time() * 1000)
    sim = BitgetSim()
    sim.liquidation_history = bitget_rows(now_ms)
    sim.history_page = 10
    sim.history_429, sim.retry_after = 1, "0.1"
    expected = bitget_live_ids(sim.liquidation_history)
    assert len(expected) == 30
    overlap = sim.liquidation_history["USDT-FUTURES"][0]  # newest in the history, also live
    fresh = entry("SOLUSDT", "sell", "4200", "150", now_ms)
    async with BITGET.collector(sim, **FAST) as rig:
        await sim.push(liquidations(overlap, fresh))
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=20)
        await rig.published(events=30 + 2, deadletters=0)
    backfilled = [e.id for e in rig.sink.backfilled]
    assert sorted(backfilled) == sorted(expected)  # every row once: pages never repeat one
    live = [e for e in rig.sink.events if not any(e is b for b in rig.sink.backfilled)]
    assert len(live) == 2 and live[0].id in expected  # the overlap: published twice, one id
    # What the worker's windows hold (one per id): the 24 h rows and the fresh one, exact.
    once = {e.id: e for e in rig.sink.events}
    in_window = [e for e in once.values() if e.ts * 1000 >= now_ms - DAY_MS]
    assert len(in_window) == 28 + 1
    assert sum(e.notional_usd for e in in_window) == pytest.approx(
        sum(1000 + 10 * k for k in range(25)) + 500 + 1000 + 1500 + 4200)
    assert {e.side for e in in_window} == {"long", "short"}
    # USDT: the 429, then 3 pages (the last reaches past the window start); COIN: a page and
    # the empty one after it; USDC: one empty page.
    assert sim.history_requests == [
        ("USDT-FUTURES", None), ("USDT-FUTURES", None), ("USDT-FUTURES", "c10"),
        ("USDT-FUTURES", "c20"), ("COIN-FUTURES", None), ("COIN-FUTURES", "c3"),
        ("USDC-FUTURES", None)]
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.count("liqstress_backfill_requests_total", outcome="ok") == 6
    assert rig.count("liqstress_backfill_events_total") == 30
    assert rig.value("liqstress_backfill_state", state="done") == 1
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now_ms / 1000 - 86_400, abs=10)


async def test_bitget_refusal_in_a_200_body_is_a_dead_letter_and_fails_the_warm_start() -> None:
    now_ms = int(time.time() * 1000)
    sim = BitgetSim()
    sim.liquidation_history = bitget_rows(now_ms)
    sim.history_refuse = 1  # the first category's first page: code 40034
    async with BITGET.collector(sim, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state == "failed", timeout=20)
        assert rig.up() == 1  # live is unaffected
    assert [d["reason"] for d in rig.sink.deadletters] == ["rest_error"]
    assert "40034" in rig.sink.deadletters[0]["detail"]
    # USDT-FUTURES given up; COIN-FUTURES still read (3 rows), USDC-FUTURES too.
    assert [c for c, _ in sim.history_requests] == ["USDT-FUTURES", "COIN-FUTURES",
                                                    "COIN-FUTURES", "USDC-FUTURES"]
    assert len(rig.sink.backfilled) == 3
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now_ms / 1000, abs=10)  # complete from the process start only


# ---- Kraken Futures -------------------------------------------------------------------------------

def loaded_meta() -> Metadata:
    meta = Metadata()
    kf.load_rest(meta, kf.rest_urls({})[0], instruments_body())
    return meta


KRAKEN = VenueHarness(kf, meta=loaded_meta)

#: The response sample of ccxt ts/src/krakenfutures.ts (commit 008b956e…, fetchTrades with
#: publicGetHistory).
CCXT_SAMPLE = {"result": "success", "history": [
    {"time": "2022-03-18T04:55:37.692Z", "trade_id": 100, "price": 0.7921, "size": 1068,
     "side": "sell", "type": "fill", "uid": "6c5da0b0-f1a8-483f-921f-466eb0388265"}],
    "serverTime": "2022-03-18T06:39:18.056Z"}


def kraken_source(product: str) -> str:
    return HISTORY_PREFIX + kf.history_request({}, product, None, None, None)


def kraken_body(*rows: dict[str, Any]) -> str:
    return orjson.dumps({"result": "success", "history": list(rows),
                         "serverTime": "2026-09-17T15:33:20.000Z"}).decode()


def kraken_history(product: str, body: str) -> list[Any]:
    return list(kf.parse_history(body, kraken_source(product), KRAKEN.recv_ts,
                                 loaded_meta()).events)


def test_kraken_history_rows_get_the_live_event_ids() -> None:
    """The same trade live and in the history: same uid, so the same id; the taker side and
    the contract units as live (PF_ base, PI_ USD)."""
    pf = trade_msg("PF_XBTUSD", "sell", 0.25, 60000.5, T0 + 123, "pf-uid-1")
    pi = trade_msg("PI_XBTUSD", "buy", 15000, 60010.0, T0 - 999, "pi-uid-1")
    fill = trade_msg("PF_XBTUSD", "buy", 1, 60000, T0 - 5, "pf-fill", typ="fill")
    for msg in (pf, pi):
        live = KRAKEN.events(msg)
        body = kraken_body(row_of(msg), row_of(fill))
        assert kraken_history(msg["product_id"], body) == live and len(live) == 1
        session = VenueSession(kf.VENUE)
        session.meta = loaded_meta()
        out = session.process_history(RawFrame("kraken-futures", kraken_source(msg["product_id"]),
                                               KRAKEN.recv_ts, body))
        assert [e.id for e in out.events] == [live[0].id]
    (long_,) = kraken_history("PF_XBTUSD", kraken_body(row_of(pf)))
    assert (long_.side, long_.qty, long_.notional_usd, long_.ts) == (
        "long", 0.25, pytest.approx(0.25 * 60000.5), (T0 + 123) / 1000)
    (short,) = kraken_history("PI_XBTUSD", kraken_body(row_of(pi)))
    assert (short.side, short.notional_usd, short.market) == ("short", 15000.0, "inverse")
    assert short.qty == pytest.approx(15000 / 60010.0)
    # ccxt's sample: a fill, no event; the same row typed liquidation is one, its uid the id.
    assert kf.parse_history(orjson.dumps(CCXT_SAMPLE).decode(), kraken_source("PF_XRPUSD"),
                            1.0, Metadata()).kind == "info"
    liq = {**CCXT_SAMPLE, "history": [{**CCXT_SAMPLE["history"][0], "type": "liquidation"}]}
    (ev,) = kf.parse_history(orjson.dumps(liq).decode(), kraken_source("PF_XRPUSD"), 1.0,
                             Metadata()).events
    uid = CCXT_SAMPLE["history"][0]["uid"]
    assert ev.id == KRAKEN.events(trade_msg("PF_XRPUSD", "buy", 1, 1, 1, uid))[0].id
    assert (ev.side, ev.ts, ev.notional_usd) == ("long", 1647579337.692, None)  # no metadata
    assert kraken_source("PF_XBTUSD") == \
        "history+https://futures.kraken.com/derivatives/api/v3/history?symbol=PF_XBTUSD"


def test_kraken_history_without_the_flag_or_refused_is_a_dead_letter() -> None:
    src = kraken_source("PF_XBTUSD")
    untyped = {k: v for k, v in history_row("u", "buy", 1, 1, T0).items() if k != "type"}
    # The flag is unverified: a page without it must not read as "no liquidations".
    for call, args in ((kf.parse_history, (src, 1.0, Metadata())), (kf.history_next_page, (0,))):
        assert reason_of(call, kraken_body(untyped), *args) == "missing_field"
        assert reason_of(call, '{"result":"error","error":"apiLimitExceeded"}',
                         *args) == "rest_error"
    no_uid = {k: v for k, v in history_row("u", "buy", 1, 1, T0).items() if k != "uid"}
    assert reason_of(kf.parse_history, kraken_body(no_uid), src, 1.0, Metadata()) == \
        "missing_field"
    bad_time = {**history_row("u", "buy", 1, 1, T0), "time": "2026-09-17 15:33:20"}
    assert reason_of(kf.parse_history, kraken_body(bad_time), src, 1.0, Metadata()) == \
        "bad_timestamp"


def test_kraken_history_requests_and_pages() -> None:
    urls = {"rest": "http://sim"}
    assert kf.history_request(urls, "PI_XBTUSD", 1, 2, None) == \
        "http://sim/derivatives/api/v3/history?symbol=PI_XBTUSD"
    assert kf.history_request(urls, "PI_XBTUSD", 1, 2, "2026-09-17T15:33:20.005Z") == \
        "http://sim/derivatives/api/v3/history?symbol=PI_XBTUSD&lastTime=2026-09-17T15:33:20.005Z"
    rows = [history_row(f"u{k}", "buy", 1, 1, T0 - k * 1000, "fill") for k in range(100)]
    oldest = T0 - 99_000
    assert kf.history_next_page(kraken_body(*rows), oldest) == kf._iso(oldest)  # full: go on
    assert kf._iso(oldest) == "2026-09-17T18:31:41.000Z"
    assert kf.history_next_page(kraken_body(*rows), oldest + 1) is None  # window read
    assert kf.history_next_page(kraken_body(*rows[:99]), 0) is None  # short: the venue's end
    same_ms = [history_row(f"s{k}", "buy", 1, 1, T0 + 7, "fill") for k in range(100)]
    assert kf.history_next_page(kraken_body(*same_ms), 0) == kf._iso(T0 + 6)  # moves past it


def kraken_trades(now_ms: int) -> dict[str, list[dict[str, Any]]]:
    """As live ``trade_msg``s: PF_XBTUSD 230 trades 2 min apart from 90 s ago back (every 5th
    a liquidation, sell/buy in turn) and 2 liquidations 25 h old; PI_XBTUSD 3 liquidations."""
    pf = [trade_msg("PF_XBTUSD", "sell" if k % 2 else "buy", 0.1 + k / 1000, 60000.0 + k,
                    now_ms - 90_000 - 120_000 * k, f"pf-{k}",
                    "liquidation" if k % 5 == 0 else "fill", seq=k) for k in range(230)]
    pf += [trade_msg("PF_XBTUSD", "sell", 1, 50000.0, now_ms - 25 * HOUR - k * 1000,
                     f"pf-old-{k}") for k in range(2)]
    pi = [trade_msg("PI_XBTUSD", "buy", 1000.0 * (k + 1), 59000.0, now_ms - 3_600_000 * (k + 1),
                    f"pi-{k}") for k in range(3)]
    return {"PF_XBTUSD": pf, "PI_XBTUSD": pi}


async def test_kraken_warm_start_pages_back_and_counts_an_overlap_once() -> None:
    now_ms = int(time.time() * 1000)
    trades = kraken_trades(now_ms)
    sim = KrakenFuturesSim()
    sim.send_snapshots = False
    sim.trade_history = {p: [row_of(t) for t in ts] for p, ts in trades.items()}
    sim.history_429, sim.retry_after = 1, "0.1"
    expected = {e.id: e.notional_usd for ts in trades.values() for t in ts
                if t["type"] == "liquidation" for e in KRAKEN.events(t)}
    assert len(expected) == 46 + 2 + 3
    overlap = trades["PF_XBTUSD"][5]  # a liquidation 11.5 min old, also live
    assert overlap["type"] == "liquidation"
    async with KRAKEN.collector(sim, **FAST) as rig:
        await sim.push(orjson.dumps(overlap).decode())
        await sim.push(trade("PF_XBTUSD", "sell", 0.5, 61000.0, now_ms, "live-1"))
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=20)
        await rig.published(events=51 + 2, deadletters=0)
    backfilled = [e.id for e in rig.sink.backfilled]
    # Every liquidation once: the row a page boundary repeats is dropped by id.
    assert sorted(backfilled) == sorted(expected)
    live = [e for e in rig.sink.events if not any(e is b for b in rig.sink.backfilled)]
    assert len(live) == 2 and live[0].id in expected  # the overlap: published twice, one id
    once = {e.id: e for e in rig.sink.events}
    in_window = [e for e in once.values() if e.ts * 1000 >= now_ms - DAY_MS]
    assert len(in_window) == 46 + 3 + 1
    want = sum(usd for i, usd in expected.items() if once[i].ts * 1000 >= now_ms - DAY_MS)
    assert want == pytest.approx(sum((0.1 + k / 1000) * (60000.0 + k) for k in range(0, 230, 5))
                                 + 1000 + 2000 + 3000)
    assert sum(e.notional_usd for e in in_window) == pytest.approx(want + 0.5 * 61000.0)
    # PF_XBTUSD: back by lastTime (inclusive: each page from the oldest row of the one
    # before) until a short page; every other product: one short page.
    # The first product's first request: the 429, then again.
    assert sim.history_requests[:2] == [(PRODUCTS[0], None)] * 2
    pf = [last for p, last in sim.history_requests if p == "PF_XBTUSD"]
    rows = sim.trade_history["PF_XBTUSD"]
    assert pf == [None, rows[99]["time"], rows[198]["time"]]
    assert [p for p, _ in sim.history_requests[1:] if p != "PF_XBTUSD"] == [
        p for p in PRODUCTS if p != "PF_XBTUSD"]
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.count("liqstress_backfill_requests_total", outcome="ok") == \
        len(sim.history_requests) - 1
    assert rig.count("liqstress_backfill_events_total") == 51
    assert rig.value("liqstress_backfill_state", state="done") == 1
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now_ms / 1000 - 86_400, abs=10)
