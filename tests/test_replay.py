"""`liqstress replay`: the venue fixtures, driven through the parse path, the embedded broker
and the Faust worker, give exact window totals at the recording's last timestamp, on stdout
(--json) and on /metrics (--serve)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liqstress.infra.broker import free_port

from .helpers import ROOT, sample, sample_sum, scrape

FIXTURES = ROOT / "tests" / "fixtures"

Z = {"long": 0.0, "short": 0.0}
EXPECTED = {
    "1m": {"binance": Z, "bybit": Z, "okx": {"long": 0.0, "short": 3000.0}},
    "5m": {"binance": Z, "bybit": Z, "okx": {"long": 0.0, "short": 8000.0}},
    "15m": {"binance": Z, "bybit": {"long": 6100.0, "short": 0.0},
            "okx": {"long": 0.0, "short": 8000.0}},
    "1h": {"binance": {"long": 30000.0, "short": 0.0}, "bybit": {"long": 6100.0, "short": 0.0},
           "okx": {"long": 18000.0, "short": 8000.0}},
}
for _w in ("4h", "12h", "24h"):
    EXPECTED[_w] = {"binance": {"long": 30000.0, "short": 6000.0},
                    "bybit": {"long": 6100.0, "short": 25000.0},
                    "okx": {"long": 18000.0, "short": 8000.0}}


def combined(tmp_path: Path) -> Path:
    out = tmp_path / "all.jsonl"
    out.write_bytes(b"".join((FIXTURES / f"{v}.jsonl").read_bytes() for v in ("binance", "bybit", "okx")))
    return out


@pytest.mark.timeout(180)
def test_replay_json_and_serve_give_exact_windows(tmp_path: Path) -> None:
    rec = combined(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "liqstress", "replay", str(rec), "--json", "--serve",
         "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith(b"}"):
                break
        summary = json.loads(b"".join(lines))
        assert summary["events"] == 9  # incl. the 2019 doc frame and the unpriced OKX one
        assert summary["deadletter"] == 1
        assert summary["windows"] == EXPECTED
        metrics = None
        for _ in range(50):
            try:
                metrics = scrape(port)
                break
            except OSError:
                time.sleep(0.1)
        assert metrics is not None
        for w, exchanges in EXPECTED.items():
            for ex, sides in exchanges.items():
                for side, usd in sides.items():
                    got = sample(metrics, "liqstress_window_liquidated_usd", exchange=ex,
                                 side=side, window=w)
                    assert got == usd, (w, ex, side, got, usd)
        assert sample(metrics, "liqstress_window_largest_liquidation_usd", exchange="bybit",
                      side="short", window="24h") == 25000.0
        assert sample(metrics, "liqstress_deadletter_total", exchange="binance",
                      reason="malformed_json") == 1.0
        assert sample_sum(metrics, "liqstress_liquidations_total", exchange="okx", side="long") == 2.0
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert b"line 4: malformed_json" in err  # the bad frame is reported with its line number


@pytest.mark.timeout(120)
async def test_replay_twice_the_same_frames_counts_once(tmp_path: Path) -> None:
    """Duplicated frames (a collector resending after reconnect) count once."""
    from liqstress.cli.pipeline import replay

    rec = tmp_path / "dup.jsonl"
    okx = (FIXTURES / "okx.jsonl").read_bytes()
    rec.write_bytes(okx + okx)
    result = await replay(str(rec), quiet=True)
    summary = result.summary()
    assert summary["events"] == 4
    assert summary["windows"]["1h"]["okx"] == {"long": 18000.0, "short": 8000.0}
    assert result.state.store.duplicates == 4
