"""grafana/build.py: the committed dashboards are what the code generates, --check catches
drift, settings come from pyproject.toml, and the computed layout is a valid grid."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "grafana" / "build.py"
DASHBOARDS = ROOT / "grafana" / "dashboards"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BUILD), *args], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("liqstress_grafana_build", BUILD)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboards_are_up_to_date() -> None:
    proc = _run("--check")
    assert proc.returncode == 0, f"run python grafana/build.py\n{proc.stdout}{proc.stderr}"
    assert proc.stdout == ""


def test_check_fails_on_an_edited_copy(tmp_path: Path) -> None:
    out = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS, out)
    assert _run("--check", "--out", str(out)).returncode == 0
    path = out / "liqstress-overview.json"
    dash = json.loads(path.read_text())
    dash["panels"][1]["title"] = "edited in the UI"
    path.write_text(json.dumps(dash, indent=2, sort_keys=True) + "\n")
    proc = _run("--check", "--out", str(out))
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and "liqstress-overview.json" in lines[0] and "differs" in lines[0]


def test_check_fails_on_a_missing_file_and_write_fixes_it(tmp_path: Path) -> None:
    out = tmp_path / "dashboards"
    proc = _run("--check", "--out", str(out))
    assert proc.returncode == 1 and "missing" in proc.stdout
    assert _run("--out", str(out)).returncode == 0
    assert _run("--check", "--out", str(out)).returncode == 0
    assert (out / "liqstress-overview.json").read_bytes() == \
        (DASHBOARDS / "liqstress-overview.json").read_bytes()


def test_output_is_deterministic() -> None:
    build = _build_module()
    first, second = build.generate(), build.generate()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n") and not text.endswith("\n\n")


def test_settings_come_from_pyproject(tmp_path: Path) -> None:
    """A fork changes the repository URL and the job names in pyproject.toml only."""
    build = _build_module()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\n[project.urls]\nRepository = "https://example.org/fork/liq/"\n'
        '[tool.liqstress.prometheus]\ncollector-job = "c"\nworker-job = "w"\n')
    dash = json.loads(build.generate(pyproject)["liqstress-overview.json"])
    base = "https://example.org/fork/liq/blob/main/docs/runbook.md"
    assert [link["url"] for link in dash["links"] if link["title"] == "Runbook"] == [base]
    health = build.generate(pyproject)["liqstress-health.json"]
    assert base + "#${__data.fields.alertname}" in health
    for text in build.generate(pyproject).values():
        job = next(v for v in json.loads(text)["templating"]["list"] if v["name"] == "job")
        assert job["query"] == 'label_values(up{job=~"c|w"}, job)' and job["allValue"] == "c|w"

    # Without the table the shipped prometheus.yml's job names apply.
    pyproject.write_text('[project]\nname = "x"\n')
    cfg = build.settings(pyproject)
    assert cfg.jobs == ("liqstress-collector", "liqstress-worker")
    assert cfg.runbook_url == "https://github.com/liqstress/liqstress/blob/main/docs/runbook.md"


# dashboard -> rows (one module per row in grafana/rows/)
ROWS = {"liqstress-overview": 6, "liqstress-exchange": 3, "liqstress-coin": 3,
        "liqstress-stress": 3, "liqstress-health": 4}


def test_layout_is_a_valid_grid() -> None:
    assert {p.stem for p in DASHBOARDS.glob("*.json")} == set(ROWS)
    for uid, want_rows in ROWS.items():
        dash = json.loads((DASHBOARDS / f"{uid}.json").read_text())
        panels = dash["panels"]
        ids = [p["id"] for p in panels]
        assert len(set(ids)) == len(ids), uid
        cells: set[tuple[int, int]] = set()
        rows = 0
        for p in panels:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (uid, p["title"])
            if p["type"] == "row":
                rows += 1
                assert g == {"h": 1, "w": 24, "x": 0, "y": g["y"]} and not p["collapsed"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    assert (x, y) not in cells, f"{uid}: {p['title']!r} overlaps at {(x, y)}"
                    cells.add((x, y))
        assert rows == want_rows, uid
        # Reading order: panels follow their row and never sit above it.
        ys = [p["gridPos"]["y"] for p in panels if p["type"] == "row"]
        assert ys == sorted(ys), uid


def test_every_existing_panel_kept() -> None:
    """The panels of the former single dashboard all live on in one of the five."""
    every = [p["title"] for path in DASHBOARDS.glob("*.json")
             for p in json.loads(path.read_text())["panels"]]
    titles = set(every)
    # Two panels had this title: the overview stat and the per-exchange time series.
    assert every.count("Largest single liquidation ($window)") == 2
    kept = {"Long liquidated ($window)", "Short liquidated ($window)", "Long share ($window)",
            "Largest single liquidation ($window)", "Liquidations ($window)",
            "Long vs short liquidated USD per exchange", "Rolling $window totals per exchange",
            "All exchanges: 1h totals vs spike thresholds",
            "USD liquidated per exchange and side ($window)",
            "Window detail per exchange and side ($window)",
            "Coins, all exchanges ($window)",
            "Stress index", "Stress index over time", "Stress components",
            "Long share by window", "Spike multiple per side", "Cascades: active and size",
            "Exchange shares (1h)", "Concentration (1h): top-2 share and HHI",
            "Deleveraging state (24h)", "Largest hour's share and spike waves (24h)",
            "Liquidations near local extremes (1h)", "Breadth: share of coins down",
            "Price feed age", "Price ticks applied and coins priced",
            "Range divergence per coin", "Per coin: price signals", "Position in the 4 h range",
            "Price and 4 h local range: $coin", "Connected", "Time since last frame",
            "Time since last liquidation", "Feed completeness", "Reconnects",
            "Dead-lettered frames", "Unpriced events", "Frames received per second by kind",
            "Events: published, counted, dropped", "Worker ready", "Window refresh age",
            "Events rebuilt at last start", "Firing liqstress alerts"}
    assert kept <= titles, sorted(kept - titles)
