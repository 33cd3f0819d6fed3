"""The warm start (issue 14 item 2): on start a collector reads up to 24 h of a venue's public
liquidation history in the background, paginated, paced, retrying a 429 and a timeout, and
publishes it with ``backfill: true`` under the live event ids, so an event seen by both counts
once; durable mode reads only the gap since the last stop; ``record`` keeps the history bodies
and ``replay`` of a recorded warm start gives the same windows.

Run against the dYdX simulator's ``/v4/trades/perpetualMarket/{ticker}`` (pages of 100 rows
here, newest first, as the indexer serves them)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from liqstress.cli.pipeline import process_recording
from liqstress.coverage import window_coverage
from liqstress.infra.broker import free_port
from liqstress.recording import RawFrame
from liqstress.streams.collector import Collector
from liqstress.streams.publisher import RecordingSink
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.base import running
from liqstress.streams.sims.deribit import DeribitSim
from liqstress.streams.sims.deribit import trade as deribit_trade
from liqstress.streams.sims.deribit import trades as deribit_trades
from liqstress.streams.sims.dydx import DydxSim, channel_data, market, trade
from liqstress.streams.venues import deribit, dydx
from liqstress.streams.venues.base import HISTORY_PREFIX, Metadata
from liqstress.windows import WINDOWS

from .helpers import ROOT, eventually, liqstress_cmd, sample, scrape, spawn, stop_process
from .test_metrics_live import _metrics_text, promtool_check_metrics
from .venue_harness import LIVELY, VenueHarness

HARNESS = VenueHarness(dydx)
MARKETS = [market("BTC-USD", 0), market("ETH-USD", 1)]
HOUR = 3_600_000
#: Collector settings of the warm start under test: fast, with a short request timeout.
FAST = {"backfill": True, "backfill_rate": 50.0, "backfill_timeout": 1.0,
        "metadata_refresh": 0}


def history_rows(now_ms: int) -> dict[str, list[dict[str, Any]]]:
    """BTC-USD: 250 trades 4 min apart from 90 s ago back (every 5th LIQUIDATED, the others
    LIMIT fills) and 3 liquidations 25 h old; ETH-USD: 5 trades, 2 LIQUIDATED. Event times
    keep 90 s or more from every window boundary."""
    btc = [trade(f"b{k}", "SELL" if k % 2 else "BUY", "0.1", str(60000 + k),
                 now_ms - 90_000 - 240_000 * k, kind="LIQUIDATED" if k % 5 == 0 else "LIMIT")
           for k in range(250)]
    btc += [trade(f"old{k}", "SELL", "1", "50000", now_ms - 25 * HOUR - k * 1000)
            for k in range(3)]
    eth = [trade(f"e{k}", "BUY", "2", "3000", now_ms - 600_000 * (k + 1),
                 kind="LIQUIDATED" if k in (1, 3) else "LIMIT") for k in range(5)]
    return {"BTC-USD": btc, "ETH-USD": eth}


def liquidations(rows: dict[str, list[dict[str, Any]]], since_ms: int) -> dict[str, float]:
    """Trade id -> notional of the LIQUIDATED rows at or after ``since_ms``."""
    out = {}
    for trades in rows.values():
        for t in trades:
            if t["type"] == "LIQUIDATED" and dydx._timestamp(t) * 1000 >= since_ms:
                out[t["id"]] = float(t["size"]) * float(t["price"])
    return out


def sim_with_history(now_ms: int) -> DydxSim:
    sim = DydxSim(markets=MARKETS)
    sim.trade_history = history_rows(now_ms)
    sim.history_page = 100
    return sim


def test_history_rows_get_the_live_event_ids() -> None:
    """The history parser reads a trade as the live channel does: same event, same id."""
    t = trade("064e89330000000200000002", "SELL", "0.0004", "75974", 1_789_670_000_000)
    live = HARNESS.events(channel_data("BTC-USD", t))
    source = HISTORY_PREFIX + dydx.history_request({}, "BTC-USD", None, None, None)
    body = orjson.dumps({"trades": [t, trade("x", "BUY", "1", "1", 1_789_670_000_000,
                                             kind="LIMIT")]}).decode()
    hist = list(dydx.parse_history(body, source, HARNESS.recv_ts, Metadata()).events)
    assert hist == live and len(live) == 1
    assert source == "history+https://indexer.dydx.trade/v4/trades/perpetualMarket/BTC-USD"
    # The session routes a history source to the history parser, the compiled path or not.
    for compiled in (True, False):
        session = VenueSession(dydx.VENUE, compiled=compiled)
        out = session.process_history(RawFrame("dydx", source, HARNESS.recv_ts, body))
        assert [e.id for e in out.events] == [live[0].id]
        again = session.process_history(RawFrame("dydx", source, HARNESS.recv_ts, body))
        assert again.events == [] and again.snapshot_dropped == 1  # a page boundary repeated


def test_history_pages_and_requests() -> None:
    urls = {"rest": "http://sim"}
    assert dydx.history_request(urls, "ETH-USD", 1, 2, None) == \
        "http://sim/v4/trades/perpetualMarket/ETH-USD?limit=1000"
    assert dydx.history_request(urls, "ETH-USD", 1, 2, "123") == \
        "http://sim/v4/trades/perpetualMarket/ETH-USD?limit=1000&createdBeforeOrAtHeight=123"
    rows = [trade(f"t{k}", "BUY", "1", "1", 1_789_670_000_000 - k * 1000) for k in range(100)]
    body = orjson.dumps({"trades": rows}).decode()
    assert dydx.history_next_page(body, 0) == rows[-1]["createdAtHeight"]  # full: go on
    assert dydx.history_next_page(body, 1_789_670_000_000 - 50_000) is None  # window read
    short = orjson.dumps({"trades": rows[:99]}).decode()
    assert dydx.history_next_page(short, 0) is None  # a short page is the last
    with pytest.raises(dydx.kit.FrameError):
        dydx.history_next_page('{"errors":[{"msg":"rate limited"}]}', 0)


async def test_warm_start_paginates_retries_and_counts_an_overlap_once(
        caplog: pytest.LogCaptureFixture) -> None:
    now_ms = int(time.time() * 1000)
    sim = sim_with_history(now_ms)
    sim.history_429, sim.retry_after = 1, "0.1"  # the first request: 429
    sim.history_slow, sim.slow_seconds = 1, 6.0  # the second: no answer within the timeout
    expected = liquidations(sim.trade_history, now_ms - 24 * HOUR)
    assert len(expected) == 52
    caplog.set_level(logging.WARNING)
    # A 3 s timeout: the warm start is still running when live is subscribed, even on a
    # loaded machine.
    async with HARNESS.collector(sim, **{**FAST, "backfill_timeout": 3.0}) as rig:
        # Live is subscribed while the warm start still waits on its slow request.
        assert rig.col.backfill_state == "running"
        assert rig.value("liqstress_backfill_state", state="running") == 1
        overlap = sim.trade_history["BTC-USD"][0]  # newest history liquidation, also live
        fresh = trade("live1", "SELL", "0.2", "61000", now_ms)
        await sim.push_trades("BTC-USD", overlap, fresh)
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=20)
    events = rig.sink.events
    in_window = {e.id: e for e in events if e.ts * 1000 >= now_ms - 24 * HOUR}
    ids = {dydx.kit.event(exchange="dydx", symbol=s, base=s[:3], quote="USD", market="linear",
                          side="long", price=1.0, qty=1.0, notional_usd=1.0, ts=1.0,
                          recv_ts=1.0, sampled=False, venue_id=i).id: i
           for s, trades in sim.trade_history.items() for i in [t["id"] for t in trades]}
    ids[next(e.id for e in events if e.symbol == "BTC-USD" and e.price == 61000)] = "live1"
    # Exact: every liquidation of the window once, plus the live one; nothing else.
    assert sorted(ids[i] for i in in_window) == sorted([*expected, "live1"])
    assert sum(e.notional_usd for e in in_window.values()) == pytest.approx(
        sum(expected.values()) + 0.2 * 61000)
    # The overlap was published twice (live and backfill) under ONE id: the worker counts it
    # once (test_replay_of_a_recorded_warm_start_gives_the_same_windows); pages never repeat
    # an event (their boundary rows are dropped by id).
    backfilled = [e.id for e in rig.sink.backfilled]
    assert len(backfilled) == len(set(backfilled)) == 55  # 52 + the 3 rows 25 h old
    assert len(events) == 55 + 2
    # Paged (BTC-USD: 253 rows, 100 a page, each page from the height of the last one), one
    # 429 and one timeout retried.
    btc = [h for t, h in sim.history_requests if t == "BTC-USD"]
    assert btc[0] is None and len(btc) >= 5 and len(set(btc[2:])) == len(btc[2:])
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.count("liqstress_backfill_requests_total", outcome="timeout") == 1
    assert rig.count("liqstress_backfill_requests_total", outcome="ok") == \
        len(sim.history_requests) - 2
    assert rig.count("liqstress_backfill_events_total") == 55
    assert rig.value("liqstress_backfill_state", state="done") == 1
    assert rig.value("liqstress_backfill_state", state="running") == 0
    covered = rig.value("liqstress_source_covered_since_timestamp_seconds")
    assert covered == pytest.approx(now_ms / 1000 - 86_400, abs=10)
    # One warning line per failed request, no traceback.
    warnings = [r for r in caplog.records if "warm start" in r.getMessage()]
    assert len(warnings) == 2 and all(r.exc_info is None for r in warnings)
    assert "HTTP 429" in warnings[0].getMessage() and "no answer" in warnings[1].getMessage()


@pytest.mark.parametrize("newest_first", [True, False])
async def test_a_walk_cut_at_its_page_cap_covers_back_to_its_oldest_liquidation_read(
        newest_first: bool) -> None:
    """BTC-USD's 253 rows at 100 a page, cut at 2 pages. Newest first (dYdX), the 200 newest
    rows were read: the warm start is done and the venue's windows are complete back to the
    oldest liquidation among them, not 24 h. Declared oldest first, the same cut would miss
    the newest rows: the topic fails."""
    now_ms = int(time.time() * 1000)
    sim = sim_with_history(now_ms)
    harness = VenueHarness(dydx)
    harness.venue = replace(dydx.VENUE, history=replace(
        dydx.HISTORY, max_pages=2, newest_first=newest_first))
    async with harness.collector(sim, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state in ("done", "failed"), timeout=20)
    btc = sorted(e.ts for e in rig.sink.backfilled if e.symbol == "BTC-USD")
    assert [h for t, h in sim.history_requests if t == "BTC-USD"][2:] == []  # 2 pages only
    if not newest_first:
        assert rig.col.backfill_state == "failed"
        assert rig.value("liqstress_source_covered_since_timestamp_seconds") == \
            rig.col.started_at
        return
    assert rig.col.backfill_state == "done"
    # The rows 90 s to ~13 h old (200 of them, every 5th a liquidation): complete back to the
    # oldest of those liquidations.
    assert btc[0] == pytest.approx((now_ms - 90_000 - 240_000 * 195) / 1000)
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == btc[0]
    rec = rig.col.coverage.record(time.time())
    assert rec.backfilled is not None and rec.backfilled[0] == btc[0]
    cov = window_coverage([rec], time.time(), WINDOWS)
    assert cov["12h"].complete == ["dydx"] and cov["24h"].incomplete == ["dydx"]


async def test_a_venue_that_keeps_refusing_fails_the_warm_start_not_the_feed(
        caplog: pytest.LogCaptureFixture) -> None:
    now_ms = int(time.time() * 1000)
    sim = sim_with_history(now_ms)
    sim.history_429, sim.retry_after = 10_000, "0"
    caplog.set_level(logging.WARNING)
    async with HARNESS.collector(sim, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state == "failed", timeout=20)
        assert rig.up() == 1  # live is unaffected
        await sim.push_trades("ETH-USD", trade("live", "BUY", "1", "3000", now_ms))
        await rig.published(events=1, deadletters=0)
    assert rig.value("liqstress_backfill_state", state="failed") == 1
    # Both markets tried 4 times each, then given up.
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 8
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        now_ms / 1000, abs=10)  # complete from the process start only
    assert rig.sink.backfilled == []
    assert all(r.exc_info is None for r in caplog.records)


async def test_no_backfill_is_off_and_reads_nothing() -> None:
    sim = sim_with_history(int(time.time() * 1000))
    async with HARNESS.collector(sim, metadata_refresh=0) as rig:  # the harness: off
        await sim.push_trades("ETH-USD", trade("live", "BUY", "1", "3000",
                                                int(time.time() * 1000)))
        await rig.published(events=1, deadletters=0)
    assert sim.history_requests == []
    assert rig.value("liqstress_backfill_state", state="off") == 1
    assert rig.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        time.time(), abs=30)


async def test_durable_mode_reads_only_the_gap_since_the_last_stop(tmp_path: Path) -> None:
    now_ms = int(time.time() * 1000)
    state = tmp_path / "warm-start"
    sim = sim_with_history(now_ms)
    async with HARNESS.collector(sim, state_dir=state, **FAST) as rig:
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=20)
    first = len(sim.history_requests)
    assert first == 4  # BTC-USD: 3 pages; ETH-USD: 1
    saved = orjson.loads((state / "dydx.json").read_bytes())
    newest = max(e.ts for e in rig.sink.events)
    assert saved["newest_ts"] == newest
    assert saved["covered_since"] == pytest.approx(now_ms / 1000 - 86_400, abs=10)
    # Restart: only the rows since the newest one published (minus a minute) are asked for:
    # the first page of each market holds them.
    sim2 = sim_with_history(now_ms)
    sim2.trade_history["BTC-USD"].append(trade("after", "BUY", "1", "60000", now_ms + 1000))
    async with HARNESS.collector(sim2, state_dir=state, **FAST) as rig2:
        await sim2.wait_for(lambda: rig2.col.backfill_state == "done", timeout=20)
        # The state moves on with what this run published.
        assert rig2.col.newest_event_ts == pytest.approx(now_ms / 1000 + 1)
    assert sorted(sim2.history_requests) == [("BTC-USD", None), ("ETH-USD", None)]
    # Republished rows of the first page keep their ids (the worker counts them once).
    assert {e.id for e in rig2.sink.backfilled} <= {e.id for e in rig.sink.events} | {
        e.id for e in rig2.sink.backfilled if e.price == 60000 and e.qty == 1}
    assert rig2.value("liqstress_source_covered_since_timestamp_seconds") == pytest.approx(
        time.time() - 86_400, abs=30)


class _TeeSink(RecordingSink):
    """``liqstress record``'s sink that also keeps what the collector published."""

    def __init__(self, fh: Any) -> None:
        super().__init__(fh)
        self.published: list[tuple[str, bool]] = []

    async def event(self, ev: Any, backfill: bool = False) -> None:
        self.published.append((ev.id, backfill))


@pytest.mark.timeout(240)
async def test_replay_of_a_recorded_warm_start_gives_the_same_windows(tmp_path: Path) -> None:
    """A warm start with an overlap, recorded as ``record`` does; ``normalize`` gives what
    the collector published (backfill flags included), and ``replay`` (embedded broker and
    the real worker) gives windows where the overlap counts once: the exact totals."""
    now_ms = int(time.time() * 1000)
    sim = sim_with_history(now_ms)
    sim.history_429, sim.retry_after = 1, "0.1"
    rec = tmp_path / "warm.jsonl"
    overlap = sim.trade_history["ETH-USD"][1]
    with rec.open("wb") as fh:
        sink = _TeeSink(fh)
        async with sim:
            col = Collector(dydx.VENUE, sink, None, urls=sim.urls(), oi_interval=0, **LIVELY,
                            **FAST)
            async with running(col):
                await sim.wait_for(lambda: col.up and col.backfill_state == "done", timeout=20)
                await sim.push_trades("ETH-USD", overlap)
                await sim.wait_for(lambda: len(sink.published) == 56)
    lines = [orjson.loads(x) for x in rec.read_bytes().splitlines()]
    assert sum(1 for x in lines if x["source"].startswith(HISTORY_PREFIX)) == 4  # every page
    replayed = process_recording(rec.open("rb"), lambda n, e: None)
    assert [(e.id, i in replayed.backfill_at) for i, e in enumerate(replayed.events)] == \
        sink.published
    # The windows at the recording's last receipt time, through the worker.
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "liqstress", "replay", str(rec), "--json"],
        capture_output=True, cwd=ROOT, timeout=200)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    summary = json.loads(out.stdout)
    last = max(x["recv_ts"] for x in lines)
    rows = sim.trade_history
    for window, secs in (("1h", 3600), ("4h", 14_400), ("12h", 43_200), ("24h", 86_400)):
        want = {"long": 0.0, "short": 0.0}
        for t in [*rows["BTC-USD"], *rows["ETH-USD"]]:
            if t["type"] == "LIQUIDATED" and dydx._timestamp(t) >= last - secs:
                want["long" if t["side"] == "SELL" else "short"] += \
                    float(t["size"]) * float(t["price"])
        got = summary["windows"][window]["dydx"]
        assert got == pytest.approx(want), window


# ---- Deribit: every futures trade per currency, oldest first, liquidation-flagged ones ----------

DERIBIT = VenueHarness(deribit)


def deribit_rows(now_ms: int) -> dict[str, list[dict[str, Any]]]:
    """BTC: 250 BTC-PERPETUAL trades 4 min apart, every 5th flagged (T, M and MT in turn);
    ETH: 3 trades, one flagged; USDC: one flagged SOL_USDC-PERPETUAL trade; USDT: none."""
    btc = [deribit_trade("BTC-PERPETUAL", "sell" if k % 2 else "buy", 1000.0 + k,
                         60000.0 + k, now_ms - 90_000 - 240_000 * k, f"BTC-{k}",
                         liquidation=("T", "M", "MT")[k // 5 % 3] if k % 5 == 0 else None,
                         seq=k) for k in range(250)]
    eth = [deribit_trade("ETH-PERPETUAL", "buy", 500.0, 3000.0, now_ms - 3_600_000 * (k + 1),
                         f"ETH-{k}", liquidation="T" if k == 1 else None, seq=k)
           for k in range(3)]
    usdc = [deribit_trade("SOL_USDC-PERPETUAL", "sell", 10.0, 150.0, now_ms - 7_200_000,
                          "SOL_USDC-1", liquidation="T")]
    return {"BTC": btc, "ETH": eth, "USDC": usdc, "USDT": []}


def live_ids(rows: dict[str, list[dict[str, Any]]]) -> list[str]:
    """The event ids the LIVE parser gives the flagged trades."""
    return [e.id for currency, trades in rows.items() for t in trades if "liquidation" in t
            for e in DERIBIT.events(deribit_trades(f"trades.future.{currency}.100ms", t))]


def test_deribit_history_rows_get_the_live_event_ids() -> None:
    rows = deribit_rows(1_789_670_000_000)
    body = orjson.dumps({"jsonrpc": "2.0", "result": {"trades": rows["BTC"][:20],
                                                      "has_more": True}}).decode()
    source = HISTORY_PREFIX + deribit.history_request({}, "BTC", None, None, None)
    hist = deribit.parse_history(body, source, DERIBIT.recv_ts, Metadata()).events
    live = [e for t in rows["BTC"][:20] if "liquidation" in t
            for e in DERIBIT.events(deribit_trades("trades.future.BTC.100ms", t))]
    assert list(hist) == live and len(live) == 5  # k = 0, 5, 10 (MT: two), 15
    # Forward from the last row's millisecond; the last page says has_more false.
    assert deribit.history_next_page(body, 0) == str(rows["BTC"][19]["timestamp"])
    assert deribit.history_next_page(body.replace("true", "false"), 0) is None
    assert deribit.history_request({"rest": "http://sim"}, "ETH", 5, 9, "7") == (
        "http://sim/api/v2/public/get_last_trades_by_currency_and_time?currency=ETH&kind=future"
        "&start_timestamp=7&end_timestamp=9&count=1000&sorting=asc")


async def test_deribit_warm_start_pages_forward_and_counts_an_overlap_once() -> None:
    now_ms = int(time.time() * 1000)
    sim = DeribitSim()
    sim.trade_history = deribit_rows(now_ms)
    sim.history_page = 100
    sim.history_429, sim.retry_after = 1, "0.1"
    expected = live_ids(sim.trade_history)
    assert len(expected) == 50 + 16 + 1 + 1  # BTC 50 flagged (16 of them MT), ETH, USDC
    async with DERIBIT.collector(sim, **FAST) as rig:
        overlap = sim.trade_history["BTC"][5]  # flagged, also seen live
        await sim.push(deribit_trades("trades.future.BTC.100ms", overlap))
        await sim.wait_for(lambda: rig.col.backfill_state == "done", timeout=20)
    backfilled = [e.id for e in rig.sink.backfilled]
    assert sorted(backfilled) == sorted(expected)  # every one once, pages never repeat one
    live = [e for e in rig.sink.events if not any(e is b for b in rig.sink.backfilled)]
    assert len(live) == 1 and live[0].id in expected  # published twice, under one id
    assert {e.id for e in rig.sink.events} == set(expected)
    btc = [start for currency, start in sim.history_requests if currency == "BTC"]
    assert len(btc) == 4 and btc[0] == btc[1]  # the 429, then 3 pages forward
    assert btc == sorted(btc)
    assert rig.count("liqstress_backfill_requests_total", outcome="rate_limited") == 1
    assert rig.value("liqstress_backfill_state", state="done") == 1


# ---- liqstress run: collector, embedded broker and the real worker ------------------------------

def _window_totals(port: int) -> dict[str, float]:
    """``<window>/<side>`` -> dYdX's USD in the worker's windows."""
    samples = scrape(port)
    return {f"{w}/{side}": sample(samples, "liqstress_window_liquidated_usd", exchange="dydx",
                                  side=side, window=w) or 0.0
            for w in ("1h", "4h", "24h") for side in ("long", "short")}


def _expected_windows(rows: dict[str, list[dict[str, Any]]], extra: list[dict[str, Any]],
                      now: float) -> dict[str, float]:
    out = {f"{w}/{side}": 0.0 for w in ("1h", "4h", "24h") for side in ("long", "short")}
    for w, secs in (("1h", 3600), ("4h", 14_400), ("24h", 86_400)):
        for t in [*rows["BTC-USD"], *rows["ETH-USD"], *extra]:
            if t["type"] == "LIQUIDATED" and dydx._timestamp(t) >= now - secs:
                side = "long" if t["side"] == "SELL" else "short"
                out[f"{w}/{side}"] += float(t["size"]) * float(t["price"])
    return out


@pytest.mark.timeout(300)
async def test_run_counts_backfill_and_live_once_and_restarts_on_the_gap(tmp_path: Path) -> None:
    """``liqstress run`` against the dYdX simulator: the warm start and a live frame of the same
    liquidation give exact windows in the real worker, /metrics stays promtool-clean, and a
    restart on the same --data-dir reads only the first page of each market (the journal
    refills the rest) with the windows still exact."""
    now_ms = int(time.time() * 1000)
    sim = sim_with_history(now_ms)
    sim.history_429, sim.retry_after = 1, "0.1"
    overlap = sim.trade_history["BTC-USD"][5]  # a liquidation 21.5 min old, live too
    fresh = trade("live1", "SELL", "0.2", "61000", now_ms)
    want = _expected_windows(sim.trade_history, [fresh], now_ms / 1000)
    data = tmp_path / "data"
    async with sim:
        urls = f"dydx.ws={sim.ws_url()},dydx.rest={sim.http_base}"

        def start(log: Path) -> tuple[subprocess.Popen[bytes], int]:
            port = free_port()
            return spawn(liqstress_cmd(
                "run", "--exchanges", "dydx", "--venue-urls", urls, "--data-dir", str(data),
                "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
                "--refresh-interval", "0.5", "--oi-interval", "0"), log), port

        proc, port = start(tmp_path / "run1.log")
        try:
            await eventually(lambda: len(sim.subscribed) >= 2, 60, what="live subscriptions")
            await sim.push_trades("BTC-USD", overlap, fresh)

            def settled() -> bool:
                s = scrape(port)
                return (sample(s, "liqstress_backfill_state", exchange="dydx",
                               state="done") == 1
                        and _window_totals(port) == pytest.approx(want))
            await eventually(settled, 120, 0.5, what="exact windows after the warm start")
            samples = scrape(port)
            assert sample(samples, "liqstress_backfill_requests_total", exchange="dydx",
                          outcome="rate_limited") == 1
            assert sample(samples, "liqstress_backfill_events_total", exchange="dydx") == 55

            def covered() -> bool:
                # The collector's record went through the coverage topic to the worker: the
                # warm start read back the day before the start, so no window misses any of
                # dYdX, and most of the 24 h window came from its history.
                s = scrape(port)
                return (all(sample(s, "liqstress_window_coverage_missing_ratio",
                                   exchange="dydx", window=w) == 0 for w in WINDOWS)
                        and (sample(s, "liqstress_window_coverage_backfilled_ratio",
                                    exchange="dydx", window="24h") or 0) > 0.99)
            await eventually(covered, 30, 0.5, what="dYdX covering every window")
            samples = scrape(port)
            text = await asyncio.to_thread(_metrics_text, port)
            lint = await asyncio.to_thread(promtool_check_metrics, text)
            assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
        finally:
            rc = stop_process(proc, signal.SIGINT)
        assert rc == 0, (tmp_path / "run1.log").read_text()[-3000:]
        assert (data / "warm-start" / "dydx.json").is_file()
        first = len(sim.history_requests)
        proc, port = start(tmp_path / "run2.log")
        try:
            def again() -> bool:
                s = scrape(port)
                return (sample(s, "liqstress_backfill_state", exchange="dydx",
                               state="done") == 1
                        and _window_totals(port) == pytest.approx(want))
            await eventually(again, 120, 0.5, what="exact windows after the restart")
        finally:
            rc = stop_process(proc, signal.SIGINT)
        assert rc == 0, (tmp_path / "run2.log").read_text()[-3000:]
    assert sorted(sim.history_requests[first:]) == [("BTC-USD", None), ("ETH-USD", None)]
