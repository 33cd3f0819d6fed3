"""``liqstress demo`` against a real Prometheus: every panel of every dashboard has data.

The demo runs as a subprocess (sixteen venue simulators, the real collectors, the embedded
broker and the worker, the seed scenario's past sent to Kafka). A real Prometheus scrapes it
every second under the worker's scrape job with every prometheus/rules/*.yml loaded (group
intervals and ``for:`` durations shortened to the test's second), and every panel query of
every dashboard runs the way Grafana sends it (tests/test_dashboard_live.py's machinery),
the source-health panels included: unlike a replay, the demo has live collectors.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from liqstress.infra.broker import free_port
from liqstress.streams.venues import all_venue_ids

from .helpers import Prometheus, stop_process
from .test_dashboard_live import PANELS, _dashboards, _rule_files, _run_dashboards, _scraped

# Panels that may have nothing to show yet, and why: a fact about the data and the clock.
# The demo plays a malformed frame every 20 s, but a dead-letter counter is born with its first
# dead letter, and increase() over the panel's 1m-aligned steps needs a sample before it: a run
# of ~20 s can end before the first such step. Every other panel must have data.
MAY_BE_EMPTY: dict[tuple[str, str], str] = {
    ("liqstress-health", "Dead-lettered frames"): "first dead letter after the last 1m step",
    ("liqstress-exchange", "Dead-lettered frames"): "first dead letter after the last 1m step",
}
# (Unpriced events has data: the collectors create liqstress_unpriced_total at 0 per venue, so
# its increase() is a row of zeros; dead letters are labelled by reason and have no series until
# the first one.)


def _fast_rules(tmp: Path) -> list[str]:
    """The rule files at the 1 s interval, every alert's ``for:`` shortened to 1 s."""
    files = _rule_files(tmp)
    for name in files:
        path = Path(name)
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" in rule and "for" in rule:
                    rule["for"] = "1s"
        path.write_text(yaml.safe_dump(doc))
    return files


def _metrics_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.mark.timeout(150)
async def test_demo_every_panel_of_every_dashboard_has_data(tmp_path: Path) -> None:
    worker_job, dashes = _dashboards(MAY_BE_EMPTY)
    port = free_port()
    log = open(tmp_path / "demo.log", "wb")  # noqa: SIM115
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("LIQSTRESS_BROKER", None)
    demo = await asyncio.to_thread(
        subprocess.Popen,
        [sys.executable, "-m", "liqstress", "demo", "--metrics-port", str(port),
         "--refresh-interval", "1", "--tick", "1", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 45
        while not (_metrics_up(port)
                   and b"playing live" in (tmp_path / "demo.log").read_bytes()):
            assert demo.poll() is None, (tmp_path / "demo.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
            await asyncio.sleep(0.2)
        with Prometheus([f"127.0.0.1:{port}"], tmp_path, _fast_rules(tmp_path),
                        job=worker_job) as prom:
            deadline = time.monotonic() + 60
            while True:
                ready, recorded = await _scraped(prom, worker_job)
                live = await asyncio.to_thread(
                    prom.instant, f"count(liqstress_source_up == 1) == {len(all_venue_ids())}")
                firing = await asyncio.to_thread(prom.instant, 'ALERTS{alertstate="firing"}')
                if ready and recorded and live and firing:
                    break
                assert demo.poll() is None, (tmp_path / "demo.log").read_text()
                assert time.monotonic() < deadline, ("no scrapes, rules, sources or alerts",
                                                     bool(ready), bool(recorded), bool(live),
                                                     bool(firing))
                await asyncio.sleep(0.5)
            reports, variables = await _run_dashboards(prom, port, dashes, worker_job)
            # The malformed frames the demo plays are dead-lettered by the real collectors.
            text = await asyncio.to_thread(_scrape, port)
            assert 'liqstress_deadletter_total{exchange="' in text
            # The seed states its coverage: its eleven venues hold the whole day, the five
            # venues only the simulators play live fill from the demo's start.
            whole = await asyncio.to_thread(
                prom.instant, 'count(liqstress_window_coverage_missing_ratio{window="24h"} == 0)')
            assert [float(r["value"][1]) for r in whole] == [11.0], whole
    finally:
        stop_process(demo, timeout=15)
        log.close()
    assert demo.returncode == 0, (tmp_path / "demo.log").read_text()[-3000:]
    # Every venue, the seed's eleven and the ones the simulators add live, is listed.
    assert sorted(variables["liqstress-overview"]["exchange"]) == sorted(all_venue_ids()), \
        variables
    empty = sorted((uid, t) for uid, report in reports.items()
                   for t, counts in report if not any(counts))
    assert set(empty) <= set(MAY_BE_EMPTY), sorted(set(empty) - set(MAY_BE_EMPTY))
    assert {uid: len(r) for uid, r in reports.items()} == PANELS


# ---- --history-out: the backfill the spike alert's 24 h baseline needs --------------------------

@pytest.mark.timeout(120)
def test_history_backfills_with_promtool_and_holds_the_seed_hour(tmp_path: Path) -> None:
    """The OpenMetrics history (a coarse 5-minute step here, 15 s by default) is accepted by
    `promtool tsdb create-blocks-from openmetrics`; a Prometheus on those blocks reads the seed's
    final hour ($230M of longs, docs/scenario.md) at its end, and the documented
    `create-blocks-from rules` backfills the spike alert's baseline recording rule."""
    import shutil

    from liqstress.cli.demo import history_openmetrics, seed_history
    from liqstress.streams.scenario import VENUES

    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install the 'prometheus' package"
    end = float(int(time.time()) // 60 * 60 - 120)
    step = 300.0
    processing = seed_history(end)
    text = history_openmetrics(processing.events, end, step, "liqstress-worker", "demo:9464",
                               list(VENUES))
    source = tmp_path / "history.om"
    source.write_text(text)
    data = tmp_path / "data"
    proc = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source),
                           str(data)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with Prometheus([], tmp_path, scrape_interval="15s", data=data) as prom:
        (row,) = prom.instant('sum(liqstress_window_liquidated_usd{window="1h",side="long"})', end)
        assert float(row["value"][1]) == pytest.approx(230e6, rel=0.02)
        rules = [r for r in _rule_files(tmp_path) if r.endswith("liqstress.yml")]
        out = tmp_path / "rules-blocks"
        proc = subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "rules", f"--start={int(end - 3 * 3600)}",
             f"--end={int(end)}", f"--url=http://127.0.0.1:{prom.port}",
             f"--output-dir={out}", "--eval-interval=300s", *rules],
            capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert any(out.iterdir()), "no blocks written"


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()
