"""Every venue fixture (tests/fixtures/<venue>.jsonl), replayed together through the parse path,
the embedded broker and the Faust worker, gives each exchange exactly the window totals in its
``<venue>.expected.json`` at the recordings' common end time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liqstress.cli.pipeline import replay

from .helpers import registry_samples, sample_sum

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = sorted(FIXTURES.glob("*.expected.json"))


def test_every_fixture_has_expectations() -> None:
    recordings = {p.name[: -len(".jsonl")] for p in FIXTURES.glob("*.jsonl")}
    assert recordings == {p.name[: -len(".expected.json")] for p in EXPECTED}
    assert {"binance", "bybit", "okx"} <= recordings


@pytest.mark.timeout(240)
async def test_all_fixtures_replay_to_their_expected_windows(tmp_path: Path) -> None:
    combined = tmp_path / "all.jsonl"
    combined.write_bytes(b"".join(
        (FIXTURES / (p.name[: -len(".expected.json")] + ".jsonl")).read_bytes() for p in EXPECTED))
    expectations = [json.loads(p.read_text()) for p in EXPECTED]
    result = await replay(str(combined), quiet=True)
    summary = result.summary()
    assert summary["events"] == sum(e["events"] for e in expectations)
    assert summary["deadletter"] == sum(e["deadletter"] for e in expectations)
    for exp in expectations:
        ex = exp["exchange"]
        got = {w: summary["windows"][w].get(ex, {"long": 0.0, "short": 0.0})
               for w in exp["windows"]}
        for w, sides in exp["windows"].items():
            for side, usd in sides.items():
                assert got[w][side] == pytest.approx(usd, rel=1e-9, abs=1e-6), (ex, w, side)
    per_exchange_events = {e["exchange"]: e["events"] for e in expectations}
    samples = registry_samples(result.state.metrics.registry)
    counted = {ex: sample_sum(samples, "liqstress_liquidations_total", exchange=ex)
               for ex in per_exchange_events}
    assert counted == per_exchange_events
