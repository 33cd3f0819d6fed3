"""A live ``liqstress run`` (venue simulator -> collector -> embedded broker -> worker) serves
a /metrics that ``promtool check metrics`` accepts without a single lint message, with the
collector's table, the worker's snapshot and the process and Python runtime metrics."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from liqstress.streams.sims.binance import MARK_PRICE_PATH, BinanceSim, force_order, mark_prices

from .helpers import eventually, liqstress_cmd, spawn, stop_process


def _metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def promtool_check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found on PATH: install the 'prometheus' package"
    return subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.timeout(180)
async def test_live_metrics_pass_promtool_and_carry_runtime_metrics(tmp_path: Path) -> None:
    from liqstress.infra.broker import free_port

    async with BinanceSim() as bn:
        urls = f"binance.ws={bn.ws_url()},binance.prices={bn.ws_url(MARK_PRICE_PATH)}"
        port = free_port()
        log = tmp_path / "run.log"
        proc = spawn(liqstress_cmd("run", "--exchanges", "binance", "--venue-urls", urls,
                                   "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
                                   "--refresh-interval", "0.5"), log,
                     env={"LIQSTRESS_COINS": "BTC,ETH"})
        try:
            await eventually(lambda: len(bn.clients) == 2, 60, what="collector to connect")
            await asyncio.sleep(0.5)
            now_ms = int(time.time() * 1000)
            await bn.push(mark_prices({"BTCUSDT": "60100.5", "ETHUSDT": "3001.25"}, now_ms),
                          MARK_PRICE_PATH)
            await bn.push(force_order("BTCUSDT", "SELL", "0.5", "60000", now_ms))
            await bn.push(force_order("ETHUSDT", "BUY", "2", "3000", now_ms + 1))
            await bn.push("{broken")  # a dead letter: a labelled counter series

            def complete() -> str | None:
                text = _metrics_text(port)
                fams = _families(text)
                liqs = fams.get("liqstress_liquidations_total", {})
                ready = fams.get("liqstress_worker_ready", {}).get(())
                done = (ready == 1 and sum(liqs.values()) >= 2
                        and "liqstress_stress_index" in fams
                        and "liqstress_coin_price_usd" in fams
                        and "liqstress_deadletter_total" in fams)
                return text if done else None
            text = await eventually(complete, 90, 0.5,
                                    what="a ready worker exporting counts, prices and signals")
        finally:
            rc = stop_process(proc, signal.SIGINT)
    assert rc == 0, log.read_text()[-3000:]

    result = promtool_check_metrics(text)
    print(f"promtool check metrics: exit {result.returncode}\n{result.stdout}{result.stderr}")
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        f"promtool check metrics exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")

    fams = _families(text)
    process = {n for n in fams if n.startswith("process_")}
    python = {n for n in fams if n.startswith("python_")}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes",
            "process_start_time_seconds", "process_open_fds"} <= process
    assert {"python_info", "python_gc_collections_total"} <= python
    # One /metrics for the collector's table and the worker's snapshot, each family once.
    names = [f.name for f in text_string_to_metric_families(text)]
    assert len(names) == len(set(names))
    assert fams["liqstress_source_up"] == {(("exchange", "binance"),): 1.0}
    assert fams["liqstress_worker_ready"] == {(): 1.0}
