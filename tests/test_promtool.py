"""Prometheus config, rules and rule unit tests, checked with promtool.

promtool must be installed (Debian package ``prometheus``): these tests fail, never skip,
when it is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROM_DIR = ROOT / "prometheus"
RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM_DIR / "tests").glob("*.yml"))
RUNBOOK = ROOT / "docs" / "runbook.md"
# prometheus/build.py links every alert to <[project.urls] Repository>/blob/main/docs/runbook.md#<alert>.
RUNBOOK_URL = (
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"].rstrip("/")
    + "/blob/main/docs/runbook.md#"
)
SEVERITIES = {"critical", "warning", "info"}


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool not found on PATH: install the 'prometheus' package (apt-get install prometheus)"
    return path


def _run_promtool(*args: str) -> None:
    proc = subprocess.run(
        [_promtool(), *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, (
        f"promtool {' '.join(args)} exited {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


def _rules() -> list[dict]:
    rules = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def _alerts() -> list[dict]:
    return [r for r in _rules() if "alert" in r]


def _unit_tests() -> list[dict]:
    tests = []
    for path in TEST_FILES:
        tests.extend(yaml.safe_load(path.read_text())["tests"])
    return tests


def test_files_exist() -> None:
    assert (PROM_DIR / "prometheus.yml").is_file()
    assert RULE_FILES, "no prometheus/rules/*.yml"
    assert TEST_FILES, "no prometheus/tests/*.yml"


def test_promtool_check_config() -> None:
    # Also checks every rule file the config loads.
    _run_promtool("check", "config", "prometheus/prometheus.yml")


def test_promtool_check_rules() -> None:
    _run_promtool("check", "rules", *(str(p.relative_to(ROOT)) for p in RULE_FILES))


def test_promtool_test_rules() -> None:
    _run_promtool("test", "rules", *(str(p.relative_to(ROOT)) for p in TEST_FILES))


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for case in _unit_tests():
        for art in case.get("alert_rule_test") or []:
            (firing if art.get("exp_alerts") else silent).add(art["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names, "no alerts found"
    assert not names - firing, f"alerts without a test that expects them to fire: {sorted(names - firing)}"
    assert not names - silent, f"alerts without a test that expects silence: {sorted(names - silent)}"
    unknown = (firing | silent) - names
    assert not unknown, f"tests reference alerts that do not exist: {sorted(unknown)}"


def test_every_recording_rule_has_an_expr_test() -> None:
    tested = " ".join(
        t["expr"] for case in _unit_tests() for t in case.get("promql_expr_test") or []
    )
    records = [r["record"] for r in _rules() if "record" in r]
    assert records
    # Whole names only: side_window:x:sum is not tested by a test of job_exchange_side_window:x:sum.
    untested = [
        r for r in records if not re.search(rf"(?<![\w:]){re.escape(r)}(?![\w:])", tested)
    ]
    assert not untested, f"recording rules without a promql_expr_test: {untested}"


def test_recording_rule_names() -> None:
    for rule in _rules():
        if "record" in rule:
            assert re.fullmatch(r"[a-z_]+:liqstress_[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule["record"]


def test_alert_style() -> None:
    runbook = RUNBOOK.read_text() if RUNBOOK.is_file() else ""
    headings = {m.group(1).strip() for m in re.finditer(r"^#+\s+(.+)$", runbook, re.M)}
    seen: set[str] = set()
    for alert in _alerts():
        name = alert["alert"]
        assert name not in seen, f"duplicate alert {name}"
        seen.add(name)
        assert re.fullmatch(r"LiqStress(?:[A-Z][a-z0-9]+)+", name), f"{name}: not CamelCase LiqStress*"
        assert alert.get("for"), f"{name}: missing for:"
        assert alert.get("labels", {}).get("severity") in SEVERITIES, f"{name}: bad severity"
        ann = alert.get("annotations", {})
        summary = ann.get("summary", "")
        assert summary[:1].isupper() and summary.endswith("."), f"{name}: summary style"
        assert "{{" not in summary, f"{name}: summary must be static"
        assert "{{" in ann.get("description", ""), f"{name}: description must be templated"
        assert ann.get("runbook_url") == RUNBOOK_URL + name.lower(), f"{name}: runbook_url"
        assert name in headings, f"{name}: no heading in docs/runbook.md"
        # The dashboard's alert table links to #<AlertName> as Grafana has it (a data link
        # cannot lower-case): the exact-case anchor must exist next to GitHub's lower-case one.
        assert f'<a id="{name}"></a>' in runbook, f"{name}: no exact-case anchor in the runbook"
