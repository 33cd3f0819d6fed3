"""Bad configuration is one line on stderr and exit code 2, never a traceback: a real
``liqstress`` process each time, because the traceback and exit code are what a user sees."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def liqstress(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
              **kw: object) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIQSTRESS_")}
    return subprocess.run([sys.executable, "-m", "liqstress", *args], cwd=ROOT,
                          env={**clean, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, **kw)  # type: ignore[call-overload]


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("liqstress: error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


@pytest.mark.parametrize(("var", "value", "command"), [
    ("PARTITIONS", "abc", "run"),
    ("PARTITIONS", "0", "worker"),
    ("REFRESH_INTERVAL", "fast", "run"),
    ("SESSION_TIMEOUT", "-3", "worker"),
    ("BROKER_PORT", "nine", "broker"),
    ("JOURNAL_MAX_BYTES", "1GB", "run"),
    ("DURATION", "soon", "record"),
])
def test_bad_environment_variable_is_named(var: str, value: str, command: str,
                                           tmp_path: Path) -> None:
    extra = ["--out", str(tmp_path / "r.jsonl")] if command == "record" else []
    proc = liqstress(command, *extra, env={f"LIQSTRESS_{var}": value})
    assert_one_line_error(proc, f"LIQSTRESS_{var}", repr(value))


def test_bad_flag_is_one_line() -> None:
    proc = liqstress("run", "--log-level", "loud")
    assert_one_line_error(proc, "--log-level", "loud")
    assert "usage:" not in proc.stderr


def test_metrics_port_in_use() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = liqstress("collect", "--broker", "127.0.0.1:1", "--metrics-host", "127.0.0.1",
                         "--metrics-port", str(port))
    assert_one_line_error(proc, f"127.0.0.1:{port}", "in use", "--metrics-port")


def test_normalize_into_a_closed_pipe(tmp_path: Path) -> None:
    """`liqstress normalize rec.jsonl | head -1`: the reader leaves after one line."""
    big = tmp_path / "big.jsonl"
    lines = (FIXTURES / "okx.jsonl").read_bytes()
    big.write_bytes(lines * 200)
    proc = subprocess.Popen([sys.executable, "-m", "liqstress", "normalize", str(big)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("{")
    proc.stdout.close()
    err = proc.stderr.read()
    rc = proc.wait(timeout=120)
    result = subprocess.CompletedProcess(proc.args, rc, "", err)
    assert_one_line_error(result, "broken pipe")


def test_record_with_every_venue_unreachable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again below: nothing listens there
    out = tmp_path / "rec.jsonl"
    proc = liqstress("record", "--out", str(out), "--duration", "2", "--exchanges", "binance",
                     "--venue-urls", f"binance.ws=ws://127.0.0.1:{dead}/a,"
                                     f"binance.prices=ws://127.0.0.1:{dead}/b")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "recorded 0 lines" in proc.stderr and "binance 0 lines" in proc.stderr
    assert "liqstress: error: nothing was recorded" in proc.stderr
