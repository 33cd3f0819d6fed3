"""Smoke test of bench/liqmap_validation.py on the SYNTHETIC seed scenario (~1-2 s).

The model does NOT beat the evenly placed baseline on the seed (docs/signals.md section 11:
the seed draws its liquidation prices around each hour's price level, not from positions), so
"beats the baseline" is a strict xfail: it fails loudly, asking for the docs to be updated,
the day the seed or the model changes that.
"""

from __future__ import annotations

import json

import pytest

from bench.liqmap_validation import format_report, main, validate


@pytest.fixture(scope="module")
def seed_result() -> dict:
    return validate()


def test_validation_runs_on_the_seed(seed_result: dict) -> None:
    r = seed_result
    assert r["errors"] == 0
    assert r["recording"].startswith("SYNTHETIC seed")
    # 25 h 10 min of data: boundaries from 6 h after the first record to the last full hour
    assert r["boundaries"] == 19
    assert r["maps"] == 19 * 5  # BTC ETH SOL XRP DOGE
    assert set(r["coins"]) == {"BTC", "ETH", "SOL", "XRP", "DOGE"}
    for part in [*r["coins"].values(), *r["sides"].values(), r["overall"]]:
        assert part["realised_usd"] > 0
        assert 0 <= part["model_usd"] <= part["realised_usd"] * (1 + 1e-9)
        assert 0 <= part["baseline_usd"] <= part["realised_usd"] * (1 + 1e-9)
        assert 0 <= part["model_share"] <= 1 and 0 <= part["baseline_share"] <= 1
    o = r["overall"]
    assert o["realised_usd"] == pytest.approx(sum(c["realised_usd"] for c in r["coins"].values()))
    # the seed liquidates within ~1 % of the price: buckets at the price catch most of it
    assert o["baseline_share"] > 0.5
    text = format_report(r)
    assert "overall" in text and "baseline" in text


@pytest.mark.xfail(strict=True, reason="measured: the map does not beat the baseline on the "
                                       "synthetic seed (ratio ~0.01, docs/signals.md §11)")
def test_model_beats_the_baseline_on_the_seed(seed_result: dict) -> None:
    assert seed_result["overall"]["ratio"] > 1


def test_check_flag_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--json", "--check", "--start-hours", "22"])  # 3 boundaries: quick
    out = json.loads(capsys.readouterr().out)
    assert out["boundaries"] == 3
    assert rc == (0 if out["overall"]["ratio"] > 1 else 1)
