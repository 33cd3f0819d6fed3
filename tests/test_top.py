"""`liqstress top`: the formatting functions (numbers, colours, ordering, layout at two terminal
sizes), fetching from a fake process (a collector without the API, an unreachable URL), and
end to end: the seed recording replayed and served, the view running in a real tmux session,
its captured screen checked against the worker's own API."""

from __future__ import annotations

import http.server
import io
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from rich.console import Console

from liqstress.cli import build_parser, top
from liqstress.infra.broker import free_port

from .helpers import ROOT

NOW = 1_767_268_800.0  # 2026-01-01T12:00:00Z


# ---- helpers -------------------------------------------------------------------------------------
def plain(renderable: Any, width: int = 160) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def styled(renderable: Any, width: int = 160) -> list[tuple[str, str]]:
    """(text, style) of every segment, to check colours."""
    console = Console(width=width, file=io.StringIO(), color_system="truecolor",
                      legacy_windows=False)
    return [(seg.text, str(seg.style or "")) for seg in console.render(renderable)
            if seg.text.strip()]


def style_of(renderable: Any, text: str, width: int = 160) -> str:
    for t, s in styled(renderable, width):
        if t.strip() == text:
            return s
    raise AssertionError(f"{text!r} not rendered: {styled(renderable, width)}")


def rows_of(data: dict[tuple[str, str, str], dict[str, float]]) -> list[dict[str, Any]]:
    """{(window, scope, name): {side: usd}} -> API rows, the total scope summed from the
    exchanges, as the API does."""
    out: list[dict[str, Any]] = []
    total: dict[tuple[str, str], float] = {}
    for (w, scope, name), sides in data.items():
        for side, usd in sides.items():
            out.append({"window": w, "scope": scope, "name": name, "side": side, "usd": usd,
                        "count": 1, "largest_usd": usd, "unpriced": 0})
            if scope == "exchange":
                total[(w, side)] = total.get((w, side), 0.0) + usd
    for (w, side), usd in total.items():
        out.append({"window": w, "scope": "total", "name": "all", "side": side, "usd": usd,
                    "count": 1, "largest_usd": usd, "unpriced": 0})
    return out


def exposition(lines: list[str]) -> str:
    return "\n".join(lines) + "\n"


STRESS_METRICS = exposition([
    "# TYPE liqstress_stress_index gauge",
    "liqstress_stress_index 90.00000000000001",
    "# TYPE liqstress_stress_component_ratio gauge",
    'liqstress_stress_component_ratio{component="skew"} 1.0',
    'liqstress_stress_component_ratio{component="spike"} 0.6',
    'liqstress_stress_component_ratio{component="deleveraging"} 0.5',
    'liqstress_stress_component_ratio{component="concentration"} 0.0',
    "# TYPE liqstress_deleveraging_state gauge",
    'liqstress_deleveraging_state{state="calm"} 0.0',
    'liqstress_deleveraging_state{state="staged"} 1.0',
    "# TYPE liqstress_cascade_active gauge",
    'liqstress_cascade_active{side="long"} 1.0',
    'liqstress_cascade_active{side="short"} 0.0',
    "# TYPE liqstress_worker_ready gauge",
    "liqstress_worker_ready 1.0",
    "# TYPE liqstress_window_refresh_timestamp_seconds gauge",
    f"liqstress_window_refresh_timestamp_seconds {NOW - 1}",
])

SOURCE_METRICS = exposition([
    "# TYPE liqstress_source_up gauge",
    'liqstress_source_up{exchange="binance"} 1.0',
    'liqstress_source_up{exchange="okx"} 0.0',
    'liqstress_source_up{exchange="hyperliquid"} 1.0',
    "# TYPE liqstress_source_last_message_timestamp_seconds gauge",
    f'liqstress_source_last_message_timestamp_seconds{{exchange="binance"}} {NOW - 3}',
    f'liqstress_source_last_message_timestamp_seconds{{exchange="okx"}} {NOW - 125}',
    'liqstress_source_last_message_timestamp_seconds{exchange="hyperliquid"} 0.0',
    "# TYPE liqstress_source_last_liquidation_timestamp_seconds gauge",
    f'liqstress_source_last_liquidation_timestamp_seconds{{exchange="binance"}} {NOW - 7300}',
    "# TYPE liqstress_source_sampled gauge",
    'liqstress_source_sampled{exchange="binance"} 1.0',
    "# TYPE liqstress_source_reconnects counter",
    'liqstress_source_reconnects_total{exchange="okx"} 4.0',
    "# TYPE liqstress_sink_up gauge",
    "liqstress_sink_up 1.0",
    "# TYPE liqstress_window_liquidated_usd gauge",
    'liqstress_window_liquidated_usd{exchange="binance",side="long",window="1h"} 2000000.0',
    'liqstress_window_liquidated_usd{exchange="okx",side="long",window="1h"} 500000.0',
    'liqstress_window_liquidated_usd{exchange="okx",side="short",window="1h"} 250000.0',
])

ROWS = rows_of({
    ("1h", "exchange", "binance"): {"long": 36_000_445.0, "short": 799_944.0},
    ("1h", "exchange", "hyperliquid"): {"long": 58_999_937.0, "short": 500_079.0},
    ("1h", "exchange", "okx"): {"long": 0.0, "short": 0.0},
    ("1h", "exchange", "bybit"): {"long": 0.0, "short": 0.0},
    ("24h", "exchange", "binance"): {"long": 98_200_000.0, "short": 21_800_000.0},
    ("24h", "exchange", "hyperliquid"): {"long": 96_300_000.0, "short": 13_100_000.0},
    ("24h", "exchange", "okx"): {"long": 0.0, "short": 12_400.0},
    ("24h", "exchange", "bybit"): {"long": 0.0, "short": 0.0},
    ("1h", "coin", "ETH"): {"long": 70_400_000.0, "short": 900_000.0},
    ("1h", "coin", "BTC"): {"long": 94_500_000.0, "short": 1_500_000.0},
    ("1h", "coin", "BNB"): {"long": 0.0, "short": 0.0},
    ("1h", "coin", "other"): {"long": 1_000.0, "short": 0.0},
    ("24h", "coin", "ETH"): {"long": 173_600_000.0, "short": 0.0},
    ("24h", "coin", "BTC"): {"long": 236_500_000.0, "short": 0.0},
    ("24h", "coin", "BNB"): {"long": 0.0, "short": 0.0},
    ("24h", "coin", "other"): {"long": 1_000.0, "short": 0.0},
})

LATEST = [
    {"exchange": "binance", "symbol": "1000PEPEUSDT", "coin": "PEPE", "side": "short",
     "price": 0.0112, "qty": 2_500_000.0, "usd": 28_000.0, "ts": NOW - 60, "id": "a"},
    {"exchange": "hyperliquid", "symbol": "SOL", "coin": "SOL", "side": "long", "price": 121.4,
     "qty": 900.0, "usd": 109_260.0, "ts": NOW - 120, "id": "b"},
    {"exchange": "okx", "symbol": "BTC-USD-SWAP", "coin": "BTC", "side": "long",
     "price": 87_210.5, "qty": 1.0, "usd": None, "ts": NOW - 180, "id": "c"},
]


def full_poll(**kw: Any) -> top.Poll:
    base = dict(url="http://127.0.0.1:9464", at=NOW,
                metrics=top.parse_metrics(STRESS_METRICS + SOURCE_METRICS),
                meta={"ts": NOW, "worker": "afedaf7e", "aggregator": True, "ready": True,
                      "partitions": [0, 1, 2, 3], "partitions_expected": 4, "events": 5733},
                rows=ROWS, latest=LATEST, last_ok=NOW)
    base.update(kw)
    return top.Poll(**base)


# ---- numbers -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("usd", "text"), [
    (None, "–"), (float("nan"), "–"), (0, "0"), (950, "950"), (999.4, "999"),
    (999.6, "1.00k"), (12_400, "12.4k"), (99_951, "100.0k"), (999_960, "1.00M"),
    (3_500_015.7, "3.50M"), (9_996_000, "10.0M"), (230_000_258.96, "230.0M"),
    (1_234_000_000, "1.23B"), (-5e6, "-5.00M"),
])
def test_fmt_usd(usd: float | None, text: str) -> None:
    assert top.fmt_usd(usd) == text


def test_other_formats() -> None:
    assert top.fmt_dollars(208_044.564) == "208,045"
    assert top.fmt_dollars(None) == "–"
    assert [top.fmt_price(p) for p in (87_210.5, 121.4, 2.0605, 0.0112, 0.0, None)] == \
        ["87,210.5", "121.40", "2.0605", "0.0112", "0", "–"]
    assert [top.fmt_share(x) for x in (0.985, 0.5, 0.0, None)] == ["98%", "50%", "0%", "–"]
    assert top.long_share(3.0, 1.0) == 0.75 and top.long_share(0.0, 0.0) is None
    assert [top.fmt_age(s) for s in (None, -2, 4.9, 125, 3 * 3600 + 125, 2 * 86400 + 3 * 3600)] \
        == ["never", "0s", "4s", "2m05s", "3h02m", "2d03h"]
    assert top.fmt_clock(NOW + 3723.9) == "13:02:03"
    assert top.fmt_clock(0) == "–"
    assert top.normalize_url("127.0.0.1:9464") == "http://127.0.0.1:9464"
    assert top.normalize_url("http://w:9464/metrics/") == "http://w:9464"


def test_stress_levels_and_colours() -> None:
    assert [top.stress_level(v) for v in (90.0, 75.0, 74.9, 50.0, 25.0, 24.9, 0.0)] == \
        ["extreme", "extreme", "high", "high", "elevated", "low", "low"]
    assert [top.ratio_style(x) for x in (None, 0.0, 0.25, 0.5, 0.75, 1.0)] == \
        ["dim", "green", "yellow", "dark_orange", "red", "red"]
    assert top.bar(0.5, 8).plain == "████░░░░"
    assert top.bar(None, 4).plain == "····"
    assert top.bar(7.0, 4).plain == "████"  # clamped


def test_sides_are_red_long_green_short() -> None:
    assert top.side_text("long").style == "red"
    assert top.side_text("short").style == "green"
    assert top.usd_text(3e6, "long").style == "red"
    assert top.usd_text(3e6, "short").style == "green"
    assert top.usd_text(0.0, "long").style == "dim"
    assert top.share_text(0.99).style == "red"   # longs dominate
    assert top.share_text(0.10).style == "green"  # shorts dominate
    assert top.share_text(0.5).style == ""
    assert top.share_text(None).plain == "–"


# ---- sections --------------------------------------------------------------------------------------
def test_windows_table_totals() -> None:
    text = plain(top.windows_table(ROWS))
    line = next(ln for ln in text.splitlines() if ln.startswith("1h "))
    assert line.split() == ["1h", "95.0M", "1.30M", "96.3M", "99%"]
    line = next(ln for ln in text.splitlines() if ln.startswith("4h "))
    assert line.split() == ["4h", "0", "0", "0", "–"]
    table = top.windows_table(ROWS)
    assert style_of(table, "95.0M") == "red"
    assert style_of(table, "1.30M") == "green"


def test_windows_table_says_how_many_venues_cover_each_window() -> None:
    m = top.parse_metrics("\n".join(
        f'liqstress_window_coverage_missing_ratio{{exchange="{ex}",window="{w}"}} {v}'
        for ex, per in (("binance", {"1h": 0, "24h": 0.75}), ("dydx", {"1h": 0, "24h": 0}))
        for w, v in per.items()) + "\n")
    cov = top.coverage_counts(m)
    assert cov == {"1h": (2, 2), "24h": (1, 2)}
    table = top.windows_table(ROWS, coverage=cov)
    text = plain(table)
    assert next(ln for ln in text.splitlines() if ln.startswith("1h ")).split()[-1] == "2/2"
    assert next(ln for ln in text.splitlines() if ln.startswith("24h ")).split()[-1] == "1/2"
    assert style_of(table, "1/2") == "yellow" and style_of(table, "2/2") == ""
    assert "venues" not in plain(top.windows_table(ROWS))  # no worker coverage, no column


def test_exchanges_ordered_by_1h_then_24h_zero_rows_dropped() -> None:
    text = plain(top.exchanges_table(ROWS))
    names = [ln.split()[0] for ln in text.splitlines()[3:] if ln.strip()]
    # hyperliquid 59.5M > binance 36.8M in 1h; okx only has 24h shorts; bybit has nothing
    assert names == ["hyperliquid", "binance", "okx"]
    hl = next(ln for ln in text.splitlines() if ln.startswith("hyperliquid"))
    assert hl.split() == ["hyperliquid", "59.0M", "500.1k", "99%", "0", "0", "–", "0", "0",
                          "–", "96.3M", "13.1M", "88%"]
    narrow = plain(top.exchanges_table(ROWS, top.NARROW_WINDOWS))
    assert "By exchange (1h, 24h)" in narrow
    assert "12h long" not in narrow and "24h long" in narrow
    limited = plain(top.exchanges_table(ROWS, limit=2))
    assert "+1 more" in limited


def test_coins_top_n_and_other_last() -> None:
    text = plain(top.coins_table(ROWS, top=1))
    names = [ln.split()[0] for ln in text.splitlines()[3:] if ln.strip()]
    assert names == ["BTC", "other"]
    text = plain(top.coins_table(ROWS))
    names = [ln.split()[0] for ln in text.splitlines()[3:] if ln.strip()]
    assert names == ["BTC", "ETH", "other"]  # BNB: nothing liquidated
    btc = next(ln for ln in text.splitlines() if ln.startswith("BTC"))
    assert btc.split() == ["BTC", "94.5M", "1.50M", "98%", "0", "0", "236.5M"]


def test_latest_rows() -> None:
    table = top.latest_table(LATEST, 2)
    text = plain(table)
    lines = [ln.split() for ln in text.splitlines()[3:] if ln.strip()]
    assert lines == [["11:59:00", "binance", "1000PEPEUSDT", "short", "0.0112", "28,000"],
                     ["11:58:00", "hyperliquid", "SOL", "long", "121.40", "109,260"]]
    assert style_of(table, "short") == "green"
    assert style_of(table, "28,000") == "green"
    assert style_of(table, "109,260") == "red"
    unpriced = plain(top.latest_table(LATEST, 3)).splitlines()[-1]
    assert unpriced.split()[-1] == "–"
    assert "none yet" in plain(top.latest_table([], 5))


def test_stress_panel() -> None:
    m = top.parse_metrics(STRESS_METRICS)
    panel = top.stress_panel(m)
    text = plain(panel)
    assert "Stress index  90.0 extreme" in text
    assert "deleveraging staged" in text and "cascade long" in text
    assert style_of(panel, "90.0") == "bold red"
    assert style_of(panel, "0.60") == "dark_orange"
    # every component listed, in the index's order; the ones not exported as missing
    for name in top.COMPONENTS:
        assert name in text
    assert "skew          ████████ 1.00" in text
    breadth = next(ln for ln in text.splitlines() if "breadth_24h" in ln)
    assert breadth.rstrip().endswith("breadth_24h     ········ –")  # padded to oi_deleveraging
    absent = plain(top.stress_panel({}))
    assert "not exported here" in absent


def test_sources_down_first_with_ages() -> None:
    m = top.parse_metrics(SOURCE_METRICS)
    table = top.sources_table(m, NOW)
    text = plain(table)
    assert "Source health (2/3 up; * sampled feed)" in text
    lines = [ln.split() for ln in text.splitlines()[4:] if ln.strip()]
    assert lines == [["okx", "DOWN", "2m05s", "never", "4"],
                     ["binance*", "up", "3s", "2h01m", "0"],
                     ["hyperliquid", "up", "never", "never", "0"]]
    assert style_of(table, "DOWN") == "bold red"
    assert style_of(table, "up") == "green"
    assert "no collectors in this process" in plain(top.sources_table({}, NOW))


def test_status_lines() -> None:
    assert plain(top.status(full_poll(), 2)).startswith("● ok  windows refreshed 1s ago")
    err = full_poll(error="cannot reach http://x/metrics: connection refused", at=NOW + 30)
    line = plain(top.status(err, 2)).strip()
    assert line == ("✖ cannot reach http://x/metrics: connection refused (retrying every 2s; "
                    "data below from 12:00:00 UTC)")
    assert style_of(top.status(err, 2), line.split(" (")[0]) == "bold red"
    note = full_poll(api_note="no worker API here (404 ...)")
    assert plain(top.status(note)).startswith("● no worker API here")


def test_rows_from_metrics() -> None:
    rows = top.rows_from_metrics(top.parse_metrics(SOURCE_METRICS))
    tot = top.totals(rows, "total")["all"]
    assert tot["1h"] == {"long": 2_500_000.0, "short": 250_000.0}
    assert top.totals(rows, "exchange")["okx"]["1h"]["short"] == 250_000.0


@pytest.mark.parametrize(("width", "height"), [(160, 50), (100, 30)])
def test_render_fits_the_terminal(width: int, height: int) -> None:
    text = plain(top.render(full_poll(), width, height, interval=2), width)
    lines = text.splitlines()
    print("\n".join(lines))
    assert all(len(ln) <= width for ln in lines)
    head = "\n".join(lines[:height])
    # what matters most is on the first screen at either size
    for want in ("worker afedaf7e", "90.0 extreme", "95.0M", "hyperliquid", "binance",
                 "Latest liquidations", "1000PEPEUSDT"):
        assert want in head, want
    if width >= 150:
        assert len(lines) <= height
        for want in ("By coin (top 10)", "Source health (2/3 up", "12h long", "kafka sink up"):
            assert want in head, want
    else:
        assert "By exchange (1h, 24h)" in head


def test_render_unreachable_without_data() -> None:
    poll = top.Poll(url="http://127.0.0.1:1", at=NOW, error="cannot reach x: connection refused")
    text = plain(top.render(poll, 100, 30, interval=2))
    assert text.splitlines()[1].startswith("✖ cannot reach x: connection refused")
    assert "nothing read yet" in text
    assert "Stress index" not in text


def test_render_keeps_old_data_when_unreachable() -> None:
    calls = iter([full_poll(), top.Unreachable("cannot reach x: timed out")])

    def fake_fetch(url: str, **_: Any) -> top.Poll:
        got = next(calls)
        if isinstance(got, Exception):
            raise got
        return got

    mp = pytest.MonkeyPatch()
    mp.setattr(top, "fetch", fake_fetch)
    try:
        first = top.poll_once("http://x", clock=lambda: NOW)
        second = top.poll_once("http://x", first, clock=lambda: NOW + 10)
    finally:
        mp.undo()
    assert second.error == "cannot reach x: timed out" and second.rows == ROWS
    text = plain(top.render(second, 160, 50, interval=2))
    assert "data below from 12:00:00 UTC" in text and "95.0M" in text


def test_parser_registered() -> None:
    args = build_parser().parse_args(["top", "--url", "w:9464", "--interval", "0.5", "--once"])
    assert (args.command, args.url, args.interval, args.once) == ("top", "w:9464", 0.5, True)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["top", "--interval", "0"])


# ---- a fake process: a collector (no API) ----------------------------------------------------------
@pytest.fixture
def collector() -> Iterator[str]:
    body = SOURCE_METRICS.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/api/"):
                data = b'{"error": "no worker in this process"}'
                self.send_response(404)
            else:
                data = body
                self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_collector_without_api(collector: str) -> None:
    poll = top.fetch(collector)
    assert poll.meta is None and poll.latest is None and poll.error is None
    assert poll.api_note is not None and "404" in poll.api_note
    assert poll.rows is not None  # the window gauges it does export
    text = plain(top.render(poll, 160, 50))
    assert "● no worker API here (404" in text
    assert "Source health (2/3 up" in text
    assert "2.50M" in text  # 1h long from liqstress_window_liquidated_usd


def run_top(*args: str, width: int = 160, height: int = 50) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(width), "LINES": str(height)}
    return subprocess.run([sys.executable, "-m", "liqstress", "top", *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_once_collector_and_unreachable(collector: str) -> None:
    got = run_top("--url", collector, "--once")
    assert got.returncode == 0, got.stderr
    assert "Source health (2/3 up" in got.stdout and "DOWN" in got.stdout
    assert "\x1b" not in got.stdout  # plain: no colours, no alternate screen
    port = free_port()
    got = run_top("--url", f"127.0.0.1:{port}", "--once")
    assert got.returncode == 2
    assert got.stdout == ""
    assert got.stderr.splitlines() == [
        f"liqstress: error: cannot reach http://127.0.0.1:{port}/metrics: connection refused"]


# ---- end to end: seed replay served, the view in tmux ---------------------------------------------
def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return orjson.loads(resp.read())


@pytest.fixture(scope="module")
def served_seed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from liqstress.streams.scenario import write_seed

    tmp = tmp_path_factory.mktemp("top")
    rec = tmp / "seed.jsonl"
    write_seed(rec, float(int(time.time()) // 60 * 60))
    port = free_port()
    log = (tmp / "replay.err").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "liqstress", "replay", str(rec), "--serve",
         "--metrics-port", str(port), "--metrics-host", "127.0.0.1", "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, (tmp / "replay.err").read_text()[-2000:]
            try:
                get_json(url + "/api/v1/windows")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


class Tmux:
    """A tmux server of its own (-L), so nothing of the user's is touched."""

    def __init__(self) -> None:
        self.sock = f"liqstress-top-{os.getpid()}-{time.monotonic_ns()}"

    def __call__(self, *args: str) -> str:
        # os.environ, explicitly: readline (imported under pytest) puts COLUMNS=80 and LINES=24
        # into the C-level environment a child would inherit, and they win over the pane size.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        return subprocess.run(["tmux", "-L", self.sock, *args], check=True, capture_output=True,
                              text=True, timeout=10, env=env).stdout

    def capture(self, session: str) -> str:
        return self("capture-pane", "-p", "-t", session)

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], capture_output=True, timeout=10)


def wait_screen(tmux: Tmux, session: str, want: list[str], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.capture(session)
        if all(w in screen for w in want):
            return screen
        time.sleep(0.3)
    raise AssertionError(f"screen never showed {want}:\n{screen}")


def expected_from_api(url: str) -> dict[str, Any]:
    """What the screen must show, computed from the worker's API (not from top's code)."""
    rows = get_json(url + "/api/v1/windows")["rows"]
    one_h: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["window"] == "1h" and r["scope"] == "exchange":
            one_h.setdefault(r["name"], {})[r["side"]] = r["usd"]
    long_1h = sum(s["long"] for s in one_h.values())
    short_1h = sum(s["short"] for s in one_h.values())
    ranked = sorted(one_h, key=lambda e: -(one_h[e]["long"] + one_h[e]["short"]))
    newest = get_json(url + "/api/v1/liquidations?limit=1")["liquidations"][0]

    def millions(x: float) -> str:
        return f"{x / 1e6:.2f}M" if x < 9.995e6 else f"{x / 1e6:.1f}M"

    return {"long_1h": millions(long_1h), "short_1h": millions(short_1h),
            "total_1h": millions(long_1h + short_1h), "ranked": ranked, "newest": newest}


@pytest.mark.timeout(150)
def test_top_in_tmux_against_served_seed(served_seed: str) -> None:
    assert shutil.which("tmux"), "tmux not found: install the 'tmux' package"
    url = served_seed
    exp = expected_from_api(url)
    # the seed story: $230M of longs, $3.5M of shorts in the final hour
    assert (exp["long_1h"], exp["short_1h"]) == ("230.0M", "3.50M")
    newest = exp["newest"]
    newest_cells = [time.strftime("%H:%M:%S", time.gmtime(newest["ts"])), newest["exchange"],
                    newest["symbol"], newest["side"]]
    tmux = Tmux()
    cmd = f"{sys.executable} -m liqstress top --url {url} --interval 1"
    try:
        tmux("new-session", "-d", "-s", "wide", "-x", "160", "-y", "50", "-c", str(ROOT), cmd)
        screen = wait_screen(tmux, "wide", ["By coin", exp["long_1h"], "87.0"])
        print(f"\n---- 160x50 ----\n{screen}")
        lines = screen.splitlines()
        assert lines[0].startswith(f"liqstress top  {url}")
        assert "aggregator yes  ready yes  partitions 4/4" in lines[0]
        assert lines[1].startswith("● ok")
        totals_1h = next(ln for ln in lines if ln.startswith("1h "))
        assert totals_1h.split()[:5] == ["1h", exp["long_1h"], exp["short_1h"],
                                         exp["total_1h"], "99%"]
        assert "Stress index  87.0 extreme" in screen
        for comp in ("skew", "spike", "cascade", "breadth_24h"):
            assert comp in screen
        # the exchanges in the API's 1h order: the seed's two largest first
        assert exp["ranked"][:2] == ["hyperliquid", "binance"]
        ex_lines = [ln.split()[0] for ln in lines if ln.split()
                    and ln.split()[0] in exp["ranked"]]
        assert ex_lines[:len(exp["ranked"])] == exp["ranked"]
        latest = [ln for ln in lines if "Latest liquidations" in ln]
        assert latest
        row = next(ln for ln in lines if all(c in ln for c in newest_cells))
        assert top.fmt_dollars(newest["usd"]) in row
        assert "Source health" in screen and "no collectors in this process" in screen
        assert "By coin (top 10)" in screen and "BTC" in screen
        assert all(len(ln) <= 160 for ln in lines)

        tmux("new-session", "-d", "-s", "narrow", "-x", "100", "-y", "30", "-c", str(ROOT), cmd)
        small = wait_screen(tmux, "narrow", ["87.0", exp["long_1h"], "hyperliquid"])
        print(f"\n---- 100x30 ----\n{small}")
        lines = small.splitlines()
        assert len(lines) <= 30 and all(len(ln) <= 100 for ln in lines)
        assert "Stress index  87.0 extreme" in small
        assert next(ln for ln in lines if ln.startswith("1h ")).split()[1] == exp["long_1h"]
        assert "By exchange (1h, 24h)" in small
        assert "Latest liquidations" in small
    finally:
        tmux.kill()

    got = run_top("--url", url, "--once", width=160, height=50)
    assert got.returncode == 0, got.stderr
    out = got.stdout
    assert "\x1b" not in out  # no alternate screen, no colours when not a terminal
    assert "Stress index  87.0 extreme" in out
    assert next(ln for ln in out.splitlines() if ln.startswith("1h ")).split()[1] == \
        exp["long_1h"]
    assert all(c in out for c in newest_cells)

