"""The soak benchmark (bench/soak.py) on a short run: six venue simulators at 100 frames/s into
`liqstress run` with its supervised embedded broker, one venue disconnected every 20 s, the
broker recycled at a low memory threshold. The 24 h totals must equal what was sent, and the
broker's memory must stop growing once recycling starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.soak import (
    SoakOptions,
    broker_pids,
    format_report,
    proc_stats,
    run_soak,
    slope_mb_per_hour,
    trailing_max,
    window_totals,
)

MiB = 1024 * 1024


def test_slopes_and_peak_envelope() -> None:
    line = [(t, 10 + t / 60) for t in range(0, 600, 5)]  # 1 MB per minute
    assert slope_mb_per_hour(line) == pytest.approx(60)
    assert slope_mb_per_hour(line[:1]) is None
    # A sawtooth between 20 and 26 MB with a 24 s period: its raw slope over a 30 s span
    # depends on the phase, its peak envelope over 30 s is flat.
    saw = [(float(t), 20 + (t % 24) * 0.25) for t in range(0, 120, 2)]
    tail = [p for p in trailing_max(saw, 30) if p[0] >= 60]
    assert {v for _, v in tail} == {25.5}
    assert slope_mb_per_hour(tail) == 0
    assert trailing_max(line, 30) == line  # growth only: the envelope is the series


def test_proc_stats_and_window_totals() -> None:
    me = proc_stats(os.getpid())
    assert me is not None and me["rss_mb"] > 10 and me["fds"] > 2 and me["threads"] >= 1
    assert proc_stats(2 ** 22 + 12345) is None
    assert broker_pids(os.getpid()) == []
    samples = {
        ("liqstress_window_liquidated_usd", (("exchange", "a"), ("side", "long"), ("window", "24h"))): 5.0,
        ("liqstress_window_liquidated_usd", (("exchange", "b"), ("side", "short"), ("window", "24h"))): 7.0,
        ("liqstress_window_liquidated_usd", (("exchange", "a"), ("side", "long"), ("window", "1h"))): 99.0,
        ("liqstress_window_liquidations", (("exchange", "a"), ("side", "long"), ("window", "24h"))): 2.0,
        ("liqstress_coin_window_liquidated_usd", (("coin", "BTC"), ("side", "long"), ("window", "24h"))): 5.0,
    }
    assert window_totals(samples) == (12.0, 2.0)


@pytest.mark.timeout(240)
async def test_short_soak_totals_exact_and_broker_memory_plateaus(tmp_path: Path) -> None:
    opts = SoakOptions(
        rate=100, duration=90, venues=6, disconnect_every=20, sample_every=2,
        # The journaled topics keep 30 s, so a recycled broker is refilled to about 20 MiB;
        # at 25 MiB the broker (about 18 MiB empty, +0.3 MiB/s at this rate) is first
        # recycled after ~25 s, then every ~22 s: shorter than a third of the run, so the
        # peak envelope (trailing max over a third) of the last third is flat.
        retention="events=30s,prices=30s,raw=30s,deadletter=30s,signals=30s",
        broker_recycle_bytes=25 * MiB, broker_recycle_interval=5,
        settle_timeout=30, startup_timeout=60, workdir=str(tmp_path))
    r = await run_soak(opts, log=lambda msg: print(f"soak: {msg}"))
    print(format_report(r))
    t = r["totals"]
    assert t["exact"], (f"24h totals {t['metrics_count']} / {t['metrics_usd']} != sent "
                        f"{t['sent_count']} / {t['sent_usd']}\n{r.get('log_tail', '')}")
    assert t["sent_count"] >= 0.9 * 100 * 90  # the rate held, pauses included
    assert all(v["sent"] > 0 for v in t["per_venue"].values())
    assert r["exit_code"] == 0, r.get("log_tail")

    assert r["disconnects"] == 4 and r["reconnect"]["measured"] == 4, r["reconnect"]
    assert 0 < r["reconnect"]["max_s"] < 15
    assert r["reconnect"]["counted_total"] >= 4

    assert {"--retention", "--broker-recycle-bytes", "--data-dir"} <= set(r["options"])
    broker = r["broker"]
    assert broker["found"] and len(broker["pids"]) >= 2, "the broker was never recycled"
    assert r["liqstress"]["found"]
    # Memory grows while nothing is recycled, then its peaks stop rising: the slope of the
    # peak envelope over the last third is under 10 % of the first third's.
    assert broker["rss_peak_slope_first_mb_h"] > 100, broker
    assert broker["rss_peak_slope_last_mb_h"] < 0.1 * broker["rss_peak_slope_first_mb_h"], broker
    assert broker["rss_mb_max"] < 25 + 64  # memory_cap: threshold + 64 MiB headroom
