"""The benchmark runs end to end on a tiny input and counts exactly (no timing assertions)."""

from __future__ import annotations

from bench.pipeline_bench import format_report, run_bench, synthetic_events

N = 300


def test_synthetic_events_shape() -> None:
    data = synthetic_events(N)
    ids = [ev.id for ev in data.events]
    assert len(data.payloads) == N
    assert len(set(ids)) == data.unique == N - data.duplicates
    assert data.duplicates == 3
    assert any(ev.notional_usd is None for ev in data.events)


async def test_bench_counts_exactly() -> None:
    r = await run_bench(N, partitions=2, rounds=2, store_repeat=1)
    unique, dups = r["unique_events"], r["duplicate_records"]
    assert unique + dups == N and dups > 0

    assert r["baseline"]["records"] == N

    assert len(r["baseline"]["runs"]) == 2
    assert all(run["records"] == N for run in r["baseline"]["runs"])

    for live in r["pipeline_live"]["runs"]:  # a fresh worker per round
        assert live["events"] == unique
        assert live["duplicates"] == dups
        assert live["invalid"] == 0
        assert live["records"] == N
        assert live["offsets_caught_up"]

    # Unmodified worker: the rebuild applies the backlog; the agent skips the re-delivered
    # history without decoding it.
    startup = r["pipeline_startup"]
    assert startup["events"] == unique
    assert startup["duplicates"] == dups
    assert startup["rebuild_records"] == N
    assert startup["agent_records"] == 0
    assert startup["offsets_caught_up"]

    assert r["store"]["events"] == unique
    assert r["store"]["duplicates"] == dups
    assert r["store"]["buckets"] > 0
    assert "ratio pipeline/baseline" in format_report(r)


def test_prices_bench_runs_on_a_small_universe() -> None:
    from bench.prices_bench import format_report as price_report
    from bench.prices_bench import run as run_prices

    r = run_prices(coins=12)
    assert r["series"] == 24  # 12 coins x 2 venues
    # Same slots in both stores: the array rings cost a fixed ~12 KiB per series.
    assert 10_000 < r["memory"]["bytes_per_series"] < 16_000
    for part in ("memory", "ingest", "evaluate", "parse"):
        assert r[part]["ratio"] > 0
    assert "coins: 12" in price_report(r)
