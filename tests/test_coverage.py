"""Coverage a trader can read (issue 14 item 3): per window, which venues cover it whole (live or
read back by the warm start), how much of it was read back and how much is missing, from the
collectors' records on the ``coverage`` topic to the worker's ``liquidation.windows`` and
``stress.signals`` messages and its /metrics."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from liqstress.agents import exporter
from liqstress.agents.state import WorkerState
from liqstress.config import WorkerSettings
from liqstress.coverage import (
    MAX_GAPS,
    STALE_AFTER,
    CoverageError,
    CoverageStore,
    CoverageTracker,
    SourceCoverage,
    coverage_from_json,
    window_coverage,
)
from liqstress.infra.broker import EmbeddedBroker, free_port
from liqstress.infra.metrics import Metrics
from liqstress.streams.collector import Collector
from liqstress.streams.sims.base import MemorySink
from liqstress.streams.sims.bybit import BybitSim
from liqstress.streams.venues import bybit, dydx
from liqstress.windows import WINDOWS

from .helpers import (
    eventually,
    liqstress_cmd,
    read_topic,
    sample,
    schema,
    scrape,
    spawn,
    stop_process,
)
from .test_backfill import FAST, sim_with_history
from .venue_harness import VenueHarness

T0 = 1_789_600_000.0
DAY = 86_400.0
BYBIT = VenueHarness(bybit, source=bybit.WS_LINEAR)


def tracker_with_outages() -> CoverageTracker:
    """Started at T0, up 2 s later, down for 30 s at T0 + 100."""
    tr = CoverageTracker("okx", T0)
    assert tr.set_up(True, T0 + 2)
    assert not tr.set_up(True, T0 + 3)  # no change
    assert tr.set_up(False, T0 + 100)
    assert tr.set_up(True, T0 + 130)
    return tr


def test_missing_time_is_before_the_start_and_while_down() -> None:
    rec = tracker_with_outages().record(T0 + 200)
    assert rec.gaps == ((T0, T0 + 2), (T0 + 100, T0 + 130)) and not rec.down
    cov = window_coverage([rec], T0 + 200, WINDOWS)
    assert cov["1m"].venues["okx"].missing_s == 0 and cov["1m"].complete == ["okx"]
    # 5 min: 100 s before the process started, 2 s connecting, 30 s down.
    assert cov["5m"].venues["okx"].missing_s == pytest.approx(132)
    assert cov["5m"].incomplete == ["okx"] and cov["5m"].complete == []
    assert cov["24h"].missing_ratio == pytest.approx((DAY - 168) / DAY)
    assert cov["24h"].backfilled_ratio == 0


def test_the_warm_start_covers_what_lies_before_the_start_not_the_outages_after() -> None:
    tr = tracker_with_outages()
    tr.backfilled, tr.backfill_state = (T0 - DAY + 60, T0 + 1), "done"
    now = T0 + 200
    cov = window_coverage([tr.record(now)], now, WINDOWS)
    okx = cov["24h"].venues["okx"]
    # Read back: from the window's start to T0 + 1 (the first second was not live yet).
    assert okx.backfilled_s == pytest.approx(DAY - 200 + 1)
    # Missing: the second of connecting the history did not reach, and the outage.
    assert okx.missing_s == pytest.approx(1 + 30)
    assert cov["1m"].venues["okx"].backfilled_s == 0


def test_a_silent_collector_counts_as_missing_and_a_down_feed_at_once() -> None:
    """Never healthy while stopped: a record that stops coming is missing time after
    STALE_AFTER; a record saying "down" is missing time from its gap's start."""
    tr = CoverageTracker("bybit", T0)
    tr.set_up(True, T0)
    rec = tr.record(T0 + 600)
    later = T0 + 600 + STALE_AFTER + 120
    cov = window_coverage([rec], later, WINDOWS)
    assert cov["1m"].venues["bybit"].missing_s == pytest.approx(60)
    assert cov["5m"].venues["bybit"].missing_s == pytest.approx(120)
    tr.set_up(False, T0 + 700)
    down = tr.record(T0 + 710)
    assert down.down and down.gaps[-1] == (T0 + 700, T0 + 710)
    cov = window_coverage([down], T0 + 720, WINDOWS)
    assert cov["1m"].venues["bybit"].missing_s == pytest.approx(20)


def test_many_outages_stay_bounded_and_are_never_reported_covered() -> None:
    n = 3 * MAX_GAPS
    tr = CoverageTracker("htx", T0)
    for k in range(n):
        tr.set_up(True, T0 + 10 * k + 1)
        tr.set_up(False, T0 + 10 * k + 5)
    end = T0 + 10 * n + 9
    tr.set_up(True, end)
    rec = tr.record(end + 1)
    assert len(rec.gaps) <= MAX_GAPS
    down_s = 1 + 6 * (n - 1) + (end - (T0 + 10 * (n - 1) + 5))
    span = int(end + 1 - T0)
    missing = window_coverage([rec], end + 1, {"w": span})["w"].venues["htx"].missing_s
    # Merging the oldest spans reports the covered seconds between them as missing too.
    assert down_s <= missing <= span


def test_wire_round_trip_schema_and_bad_records() -> None:
    tr = tracker_with_outages()
    tr.backfilled, tr.backfill_state, tr.sampled = (T0 - 3600, T0), "done", True
    rec = tr.record(T0 + 200)
    obj = orjson.loads(rec.to_json())
    jsonschema.validate(obj, schema("coverage"))
    assert coverage_from_json(rec.to_json()) == rec
    bad: list[tuple[dict[str, Any], str]] = [
        ({**obj, "v": 2}, "unsupported schema version"),
        ({**obj, "exchange": ""}, "exchange"),
        ({**obj, "ts": "soon"}, "ts must be an epoch time"),
        ({**obj, "gaps": [[T0 + 5, T0]]}, "ends before it starts"),
        ({**obj, "gaps": [[T0, T0 + 1]] * (MAX_GAPS + 1)}, "at most"),
        ({**obj, "backfill_state": "maybe"}, "backfill_state"),
        ({**obj, "live_since": T0 + 10 * DAY}, "after the record's time"),
        ({k: v for k, v in obj.items() if k != "gaps"}, "missing fields: gaps"),
    ]
    for record, why in bad:
        with pytest.raises(CoverageError, match=why):
            coverage_from_json(orjson.dumps(record))
    # The window block is one definition in three schemas: keep them equal.
    defs = [schema(n)["$defs"]["window_coverage"] for n in ("coverage", "windows", "stress")]
    assert defs[0] == defs[1] == defs[2]


def test_the_store_keeps_the_newest_record_per_collector_and_forgets_a_day_old_one() -> None:
    store = CoverageStore()
    tracker = CoverageTracker("okx", T0)
    new, old = (tracker.record(T0 + k) for k in (20, 10))
    assert store.apply(new) and not store.apply(old)
    assert store.records == {("okx", tracker.collector): new}
    store.prune(T0 + 20 + 25 * 3600 + 1)
    assert store.records == {}


def test_a_venue_covers_the_union_of_its_collectors() -> None:
    """A restart: the first run covered four hours and stopped (its last record says down),
    the second started 60 s later. A standby: a second collector up all along fills that
    minute. Each collector's newest record is kept; the venue covers their union."""
    store = CoverageStore()
    first = CoverageTracker("bybit", T0)
    first.set_up(True, T0)
    first.set_up(False, T0 + 4 * 3600)
    store.apply(first.record(T0 + 4 * 3600))
    second = CoverageTracker("bybit", T0 + 4 * 3600 + 60)
    second.set_up(True, T0 + 4 * 3600 + 60)
    now = T0 + 5 * 3600 + 120
    store.apply(second.record(now))
    assert len(store.records) == 2
    cov = store.windows(now, WINDOWS)
    assert cov["1h"].complete == ["bybit"]
    assert cov["4h"].venues["bybit"].missing_s == pytest.approx(60)  # the restart's minute
    assert cov["12h"].venues["bybit"].missing_s == pytest.approx(12 * 3600 - 5 * 3600 - 60)
    standby = CoverageTracker("bybit", T0 + 3600)
    standby.set_up(True, T0 + 3600)
    store.apply(standby.record(now))
    assert store.windows(now, WINDOWS)["4h"].complete == ["bybit"]


def worker_state() -> tuple[WorkerState, Metrics]:
    metrics = Metrics.create()
    state = WorkerState(settings=WorkerSettings(broker="x:1", clock="event"), metrics=metrics)
    exporter.register(state)
    return state, metrics


def test_the_worker_publishes_coverage_in_windows_and_signals_and_on_metrics() -> None:
    state, metrics = worker_state()
    live = CoverageTracker("bybit", T0 - 2 * 3600)
    live.set_up(True, T0 - 2 * 3600)
    warm = tracker_with_outages()
    warm.backfilled, warm.backfill_state = (T0 - DAY, T0), "done"
    now = T0 + 200
    for rec in (live.record(now), warm.record(now)):
        assert state.apply_coverage_record(0, 0, rec.to_json()) is not None
    assert state.apply_coverage_record(0, 1, b'{"v": 1}') is None
    assert state.invalid_coverage == 1
    state.fixed_now = now
    state.refresh()
    snap = state.last_snapshot
    assert snap is not None
    windows_msg = state.windows_message(snap)
    jsonschema.validate(windows_msg, schema("windows"))
    cov = windows_msg["coverage"]
    assert cov["1m"]["complete"] == ["bybit", "okx"] and cov["1m"]["incomplete"] == []
    # okx: 2 s connecting after its history ends, then 30 s down; bybit: started 2 h ago.
    assert cov["1h"]["complete"] == ["bybit"] and cov["1h"]["incomplete"] == ["okx"]
    assert cov["4h"]["complete"] == [] and cov["4h"]["incomplete"] == ["bybit", "okx"]
    assert cov["4h"]["exchanges"]["bybit"]["missing_s"] == pytest.approx(2 * 3600 - 200)
    assert cov["24h"]["exchanges"]["okx"]["missing_s"] == pytest.approx(32)
    assert 0 < cov["24h"]["backfilled_ratio"] < 0.5
    stress_msg = state.stress_messages()[-1]
    jsonschema.validate(stress_msg, schema("stress"))
    assert stress_msg["coverage"] == cov
    get = metrics.registry.get_sample_value
    assert get("liqstress_window_coverage_missing_ratio",
               {"exchange": "bybit", "window": "4h"}) == pytest.approx((7200 - 200) / 14_400)
    assert get("liqstress_window_coverage_missing_ratio",
               {"exchange": "okx", "window": "1m"}) == 0
    assert get("liqstress_window_coverage_backfilled_ratio",
               {"exchange": "okx", "window": "24h"}) == pytest.approx((DAY - 200) / DAY)
    assert get("liqstress_invalid_records_total", {"topic": "coverage"}) == 1


def test_no_collector_no_coverage_key() -> None:
    state, _ = worker_state()
    state.fixed_now = T0
    state.refresh()
    assert state.last_snapshot is not None
    assert "coverage" not in state.windows_message(state.last_snapshot)


async def test_a_collector_reports_its_coverage_through_the_warm_start_and_a_stop() -> None:
    """The dYdX collector with its warm start: a record at once (down, connecting), then up,
    then the history span once the warm start is done, then down at the stop; the worker's
    view of the last record covers every window whole."""
    now_ms = int(time.time() * 1000)
    sim = sim_with_history(now_ms)
    sink = MemorySink()
    async with sim:
        col = Collector(dydx.VENUE, sink, urls={"ws": sim.ws_url(), "rest": sim.http_base},
                        **FAST)
        task = asyncio.create_task(col.run())
        try:
            for _ in range(400):
                if col.backfill_state == "done" and col.up:
                    break
                await asyncio.sleep(0.025)
            assert col.backfill_state == "done" and col.up
            await asyncio.sleep(0.05)
            recs: list[SourceCoverage] = list(sink.coverage_records)
            assert recs[0].down and recs[0].backfill_state in ("pending", "running")
            done = recs[-1]
            assert done.backfill_state == "done" and not done.down
            assert done.backfilled is not None
            assert done.backfilled[0] == pytest.approx(done.backfilled[1] - DAY, abs=1e-6)
            cov = window_coverage([done], time.time(), WINDOWS)
            assert all(c.complete == ["dydx"] for c in cov.values()), cov
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    last = sink.coverage_records[-1]
    assert last.down and last.backfill_state == "done"
    stopped = window_coverage([last], last.ts + 30, WINDOWS)["1m"]
    assert stopped.venues["dydx"].missing_s == pytest.approx(30, abs=0.5)


@pytest.mark.timeout(240)
async def test_collect_with_a_data_dir_reads_only_the_gap_and_reports_coverage(
        tmp_path: Path, broker: EmbeddedBroker) -> None:
    """``liqstress collect --data-dir`` against an external broker: the second start reads only
    the first page of each market (the broker kept the rest), and the coverage topic, read by
    an independent client, holds both runs' records: the history span once the warm start was
    done, and ``down`` at each clean stop."""
    now_ms = int(time.time() * 1000)
    sim = sim_with_history(now_ms)
    data = tmp_path / "data"
    runs: list[float] = []
    async with sim:
        urls = f"dydx.ws={sim.ws_url()},dydx.rest={sim.http_base}"
        for n in (1, 2):
            port = free_port()
            log = tmp_path / f"collect{n}.log"
            runs.append(time.time())
            proc = spawn(liqstress_cmd(
                "collect", "--broker", broker.bootstrap, "--exchanges", "dydx",
                "--venue-urls", urls, "--data-dir", str(data), "--metrics-port", str(port),
                "--metrics-host", "127.0.0.1", "--oi-interval", "0"), log)
            try:
                await eventually(lambda port=port: sample(
                    scrape(port), "liqstress_backfill_state", exchange="dydx",
                    state="done") == 1, 90, 0.5, what=f"warm start {n} done")
            finally:
                rc = stop_process(proc, signal.SIGINT)
            assert rc == 0, log.read_text()[-3000:]
            if n == 1:
                assert (data / "warm-start" / "dydx.json").is_file()
                first = len(sim.history_requests)
    assert first > 2
    assert sorted(sim.history_requests[first:]) == [("BTC-USD", None), ("ETH-USD", None)]
    recs = [coverage_from_json(v) for v in await asyncio.to_thread(
        read_topic, broker.bootstrap, "coverage", 6)]
    for start in runs:
        run = [r for r in recs if r.live_since >= start and r.live_since - start < 30]
        assert run, (start, recs)
        done = [r for r in run if r.backfill_state == "done"]
        assert done and done[0].backfilled is not None
        assert done[0].backfilled[1] - done[0].backfilled[0] == pytest.approx(DAY, abs=1e-3)
        assert run[-1].down  # the clean stop, at once


def test_the_coverage_benchmark_runs_and_both_ways_agree(capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    from bench.coverage_bench import main
    assert main(["--venues", "3", "--events", "300", "--json"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert out["venues"] == 3 and out["coverage_ms"] > 0 and out["refresh_ms"] > 0
    assert out["spans_ratio"] > 0 and out["refresh_ratio"] > 0


async def test_a_durable_restart_states_the_last_runs_coverage_again(tmp_path: Path) -> None:
    """A venue without public history (Bybit) in durable mode: its windows hold the last
    run's hours (the journal or Kafka kept them), so the restarted collector states the last
    run's final record again, whatever the coverage topic kept. The venue then covers both
    runs, less the restart's seconds."""
    state = tmp_path / "warm-start"
    async with BYBIT.collector(BybitSim(), state_dir=state) as rig:
        await asyncio.sleep(1.5)  # the first run's hours, in seconds
    first = rig.col.coverage
    assert first is not None
    saved = orjson.loads((state / "bybit.json").read_bytes())
    assert "newest_ts" not in saved  # no warm start to resume for Bybit
    last = coverage_from_json(saved["coverage"])
    assert last.collector == first.collector and last.down  # stated at the stop
    await asyncio.sleep(1.2)  # stopped: that time is missing whatever is stated
    async with BYBIT.collector(BybitSim(), state_dir=state) as rig2:
        await asyncio.sleep(0.3)
        again = [r for r in rig2.sink.coverage_records if r.collector == first.collector]
        assert again == [last]
        now = time.time()
        current = rig2.col.coverage.record(now)
    both = window_coverage([last, current], now, {"w": now - first.live_since})["w"]
    alone = window_coverage([current], now, {"w": now - first.live_since})["w"]
    restart = current.live_since - last.gaps[-1][0]
    assert both.venues["bybit"].missing_s < restart + 1.0
    assert both.venues["bybit"].missing_s > 1.0  # the restart is reported, not covered
    # Without the restated record the first run's 1.5 s would be missing too.
    assert alone.venues["bybit"].missing_s > both.venues["bybit"].missing_s + 1.2
