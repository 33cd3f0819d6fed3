"""What `liqstress replay` shows people (liqstress/cli/output.py): per window and exchange the
long, short and total USD, the count and the largest single liquidation, a TOTAL row, numbers
rounded for people (``--json`` keeps them exact); and a progress line on a terminal that log
records do not break."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from liqstress.cli import pipeline
from liqstress.cli.output import Progress, format_table, signal_value, usd
from liqstress.cli.pipeline import replay

from .helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
PROGRESS_LINE = re.compile(r"^(parse|publish|worker)\s+\[[#-]{25}\]\s+\d{1,3}%$")
LOG_FORMAT = "LOG %(levelname)s %(name)s: %(message)s"


def combined(tmp_path: Path) -> Path:
    """The binance + bybit + okx venue fixtures: 9 events, one dead letter (test_replay.py)."""
    out = tmp_path / "all.jsonl"
    out.write_bytes(b"".join((FIXTURES / f"{v}.jsonl").read_bytes()
                             for v in ("binance", "bybit", "okx")))
    return out


def screen(raw: str) -> list[str]:
    """The lines a terminal shows for ``raw``: ``\\r`` returns to column 0, ``ESC[K`` erases
    to the end of the line, other characters overwrite."""
    lines: list[str] = []
    cur: list[str] = []
    col = 0
    i = 0
    while i < len(raw):
        ch = raw[i]
        if raw.startswith("\x1b[K", i):
            del cur[col:]
            i += 3
            continue
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(cur))
            cur, col = [], 0
        else:
            if col < len(cur):
                cur[col] = ch
            else:
                cur.append(ch)
            col += 1
        i += 1
    if cur:
        lines.append("".join(cur))
    return lines


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


# ---- the table ----------------------------------------------------------------------------------
SUMMARY: dict[str, Any] = {
    "windows": {"1h": {"binance": {"long": 36_000_444.987654, "short": 799_944.4},
                       "okx": {"long": 0.0, "short": 8000.0}}},
    "events": 5733, "prices": 15100, "deadletter": 0,
    "exchanges": {"1h": {
        "binance": {"long_usd": 36_000_444.987654, "short_usd": 799_944.4, "count": 1280,
                    "largest": {"usd": 1_287_435.25, "side": "long", "symbol": "XRPUSDT",
                                "exchange": "binance"}},
        "okx": {"long_usd": 0.0, "short_usd": 8000.0, "count": 1,
                "largest": {"usd": 8000.0, "side": "short", "symbol": None,
                            "exchange": "okx"}}}},
    "totals": {"1h": {"long_usd": 36_000_444.987654, "short_usd": 807_944.4, "count": 1281,
                      "largest": {"usd": 1_287_435.25, "side": "long", "symbol": "XRPUSDT",
                                  "exchange": "binance"}}},
    "signals": {"stress_index": 90.00000000000001, "level": "extreme",
                "long_share_1h": 0.9850107066381156, "long_spike_multiple": 103.60558,
                "top2_share_1h": 0.41199, "deleveraging": "staged",
                "long_share_near_low": 1.0, "breadth_down_1h": None, "divergence_coins": []},
}


def test_table_has_counts_largest_and_a_totals_row() -> None:
    lines = format_table(SUMMARY).splitlines()
    assert lines[0].split()[:7] == ["window", "exchange", "long", "USD", "short", "USD", "total"]
    assert lines[1].split() == ["1h", "binance", "36,000,445", "799,944", "36,800,389", "1,280",
                                "1,287,435", "XRPUSDT", "long"]
    assert lines[2].split() == ["1h", "okx", "0", "8,000", "8,000", "1", "8,000", "short"]
    assert lines[3].split() == ["1h", "TOTAL", "36,000,445", "807,944", "36,808,389", "1,281",
                                "1,287,435", "XRPUSDT", "long", "@binance"]
    assert "events: 5733  prices: 15100  deadletter: 0" in lines
    shown = {ln.split()[0]: ln.split(maxsplit=1)[1] for ln in lines[5:]}
    assert shown == {"stress_index": "90.0", "level": "extreme", "long_share_1h": "0.985",
                     "long_spike_multiple": "103.6x", "top2_share_1h": "0.412",
                     "deleveraging": "staged", "long_share_near_low": "1.000",
                     "breadth_down_1h": "-", "divergence_coins": "-"}
    # Columns line up: every row as wide as the header up to the largest column.
    width = lines[0].index("largest")
    assert all(ln[width - 2:width] == "  " for ln in lines[1:4])


def test_table_of_a_summary_without_the_new_keys_still_totals() -> None:
    """An older summary (windows only): the TOTAL row sums the exchanges, counts unknown."""
    old = {k: v for k, v in SUMMARY.items() if k not in ("exchanges", "totals")}
    lines = format_table(old).splitlines()
    assert lines[1].split() == ["1h", "binance", "36,000,445", "799,944", "36,800,389", "-", "-"]
    assert lines[3].split() == ["1h", "TOTAL", "36,000,445", "807,944", "36,808,389", "-", "-"]


@pytest.mark.parametrize(("key", "val", "shown"), [
    ("stress_index", 90.00000000000001, "90.0"), ("stress_index", 87.46, "87.5"),
    ("long_share_1h", 0.98501, "0.985"), ("breadth_down_1h", 1.0, "1.00"),
    ("long_spike_multiple", float("inf"), "inf"), ("long_spike_multiple", None, "-"),
    ("divergence_coins", ["BTC", "ETH"], "BTC, ETH"), ("level", "high", "high"),
    ("something_new", 0.123456, "0.123"),
])
def test_signals_are_rounded_for_people(key: str, val: Any, shown: str) -> None:
    assert signal_value(key, val) == shown


def test_usd_for_people() -> None:
    assert usd(230_000_259.4) == "230,000,259"
    assert usd(0.4) == "0" and usd(None) == "-" and usd(float("inf")) == "inf"


# ---- progress and log lines -----------------------------------------------------------------------
@pytest.fixture
def tty_log() -> Any:
    """A fake terminal as stderr with a logging handler writing to it (as basicConfig does)."""
    term = FakeTTY()
    handler = logging.StreamHandler(term)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.WARNING)
    try:
        yield term, handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def test_log_records_clear_and_redraw_the_progress_line(tty_log: Any) -> None:
    term, handler = tty_log
    log = logging.getLogger("liqstress.test_output")
    p = Progress(1000, stream=term)
    assert p.tty
    p.update(400, "parse")
    assert handler.stream is not term  # wrapped while a line is drawn
    log.warning("broker slow: %d ms", 1500)
    p.update(700, "parse")
    t = threading.Thread(target=log.warning, args=("from a thread",))
    t.start()
    t.join()
    p.update(1000, "parse")
    assert handler.stream is term  # unwrapped once the line is finished
    log.warning("after the bar")
    p.update(0, "publish")
    p.update(1000, "publish")
    lines = screen(term.getvalue())
    assert lines == [
        "LOG WARNING liqstress.test_output: broker slow: 1500 ms",
        "LOG WARNING liqstress.test_output: from a thread",
        "parse      [#########################] 100%",
        "LOG WARNING liqstress.test_output: after the bar",
        "publish    [#########################] 100%",
    ]
    # Before it was finished, the bar was back on screen right after each record.
    raw = term.getvalue()
    after = raw.split("broker slow: 1500 ms\n", 1)[1]
    assert after.startswith("parse      [##########---------------]  40%")


def test_progress_off_a_terminal_writes_whole_lines() -> None:
    out = io.StringIO()
    p = Progress(100, stream=out)
    for done in (0, 10, 50, 100):
        p.update(done, "parse")
    p.update(30, "worker")
    p.update(100, "worker")
    assert out.getvalue() == "parse: 0%\nparse: 100%\nworker: 100%\n"


def test_close_ends_a_line_left_drawn(tty_log: Any) -> None:
    term, handler = tty_log
    p = Progress(10, stream=term)
    p.update(3, "parse")
    p.close()
    assert handler.stream is term
    assert term.getvalue().endswith("\n")


def at_line_10(monkeypatch: pytest.MonkeyPatch, act: Any) -> None:
    """Run ``act`` while the replay's parse bar is drawn (after recording line 10)."""
    real = pipeline.process_recording

    def wrapped(fh: Any, on_error: Any, keep_frames: bool = False, on_progress: Any = None,
                **kw: Any) -> Any:
        def progress(lineno: int) -> None:
            if on_progress:
                on_progress(lineno)
            if lineno == 10:
                act()
        return real(fh, on_error, keep_frames=keep_frames, on_progress=progress, **kw)

    monkeypatch.setattr(pipeline, "process_recording", wrapped)


@pytest.mark.timeout(180)
async def test_replay_with_a_warning_mid_progress(tmp_path: Path, tty_log: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A real replay (embedded broker, Faust worker) with stderr a terminal and a warning
    logged while the parse bar is drawn: the screen shows whole lines only."""
    term, _ = tty_log
    monkeypatch.setattr(sys, "stderr", term)
    at_line_10(monkeypatch, lambda: logging.getLogger("liqstress.test_output").warning(
        "mid-progress warning"))
    rec = combined(tmp_path)
    result = await replay(str(rec))
    raw = term.getvalue()
    assert "\r" in raw  # the bar was drawn in place
    lines = screen(raw)
    assert "LOG WARNING liqstress.test_output: mid-progress warning" in lines
    for line in lines:
        assert PROGRESS_LINE.match(line) or line.startswith("LOG ") \
            or line.startswith("line "), repr(line)  # "line N: reason" (the dead letter)
    assert any(ln.startswith("parse ") and ln.endswith("100%") for ln in lines)

    summary = result.summary()
    # --json: the same keys as before, plus exact counts and largest liquidations.
    assert {"windows", "events", "prices", "deadletter", "signals"} <= set(summary)
    back = json.loads(orjson.dumps(summary))
    assert back["windows"]["1h"]["okx"] == {"long": 18000.0, "short": 8000.0}
    okx = back["exchanges"]["1h"]["okx"]
    assert (okx["long_usd"], okx["short_usd"], okx["total_usd"]) == (18000.0, 8000.0, 26000.0)
    tot = back["totals"]["1h"]
    assert tot["long_usd"] == 30000.0 + 6100.0 + 18000.0 and tot["short_usd"] == 8000.0
    assert tot["count"] == sum(r["count"] for r in back["exchanges"]["1h"].values())
    assert tot["largest"]["usd"] == max(r["largest"]["usd"]
                                        for r in back["exchanges"]["1h"].values() if r["largest"])
    for w, rows in back["exchanges"].items():
        for ex, row in rows.items():
            sides = back["windows"][w][ex]
            assert row["long_usd"] == sides["long"] and row["short_usd"] == sides["short"]
            if row["largest"] is not None:
                assert row["largest"]["symbol"] and row["largest"]["side"] in ("long", "short")
                assert row["largest"]["exchange"] == ex
    table = format_table(summary)
    assert sum(1 for ln in table.splitlines() if ln.split()[1:2] == ["TOTAL"]) == 7


@pytest.mark.timeout(180)
def test_cli_replay_on_a_terminal(tmp_path: Path) -> None:
    """`liqstress replay FILE` with stdout and stderr on a pseudo-terminal: the table with
    TOTAL rows, counts and largest liquidations, and whole progress and log lines."""
    import pty

    rec = combined(tmp_path)
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.Popen([sys.executable, "-m", "liqstress", "replay", str(rec)],
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, cwd=ROOT,
                            env=env, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    lines = [ln.rstrip() for ln in screen(b"".join(chunks).decode().replace("\r\n", "\n"))]
    rows = [ln.split() for ln in lines if ln.split()[:1] in (["1h"], ["24h"])]
    assert ["1h", "okx", "18,000", "8,000", "26,000"] == next(r[:5] for r in rows
                                                           if r[1] == "okx")
    total_1h = next(r for r in rows if r[:2] == ["1h", "TOTAL"])
    assert total_1h[2:5] == ["54,100", "8,000", "62,100"]
    assert total_1h[-2] in ("long", "short") and total_1h[-1].startswith("@")
    assert any(ln.startswith("stress_index") for ln in lines)
    header = lines.index(next(ln for ln in lines if ln.startswith("window ")))
    for ln in lines[:header]:
        # Before the table: progress, log and "line N:" dead-letter lines, each whole.
        assert (PROGRESS_LINE.match(ln) or re.match(r"^\d{4}-\d\d-\d\d ", ln)
                or ln.startswith("line ") or not ln), repr(ln)


async def test_a_replay_failing_midway_leaves_no_bar_drawn(tmp_path: Path, tty_log: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The parse fails halfway through the recording: the error propagates, the half-drawn bar
    line is ended and the logging handlers are unwrapped again."""
    term, handler = tty_log
    monkeypatch.setattr(sys, "stderr", term)

    def fail() -> None:
        raise OSError("disk went away")
    at_line_10(monkeypatch, fail)
    with pytest.raises(OSError, match="disk went away"):
        await replay(str(combined(tmp_path)))
    raw = term.getvalue()
    assert "\r" in raw and raw.endswith("\n")  # the bar was drawn, then its line ended
    assert handler.stream is term
