"""``liqstress report``: the numbers on the page against an independent computation from the
normalized events, a page that needs no network, and a real headless Debian chromium that
renders it (the DOM has the charts' bars and cells; the screenshot shows them in colour).

Chromium must be installed (Debian package ``chromium``): the browser test fails, never skips.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest

from liqstress.cli import main
from liqstress.cli.pipeline import process_recording
from liqstress.cli.report import (
    HEATMAP_COINS,
    LONG_COLOR,
    SHORT_COLOR,
    TOP_COINS,
    ReportData,
    _top_coins,
    build_report,
    fmt_usd,
    signal_steps,
    write_report,
)
from liqstress.event import LiquidationEvent
from liqstress.streams.scenario import write_seed
from liqstress.windows import coin_scale

ROOT = Path(__file__).resolve().parents[1]
END = 1_789_670_000.0  # tests/test_scenario.py's END


# ---- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "seed.jsonl"
    write_seed(path, END)
    return path


@pytest.fixture(scope="module")
def events(seed: Path) -> list[LiquidationEvent]:
    """The normalized events, as ``liqstress normalize`` prints them."""
    with seed.open("rb") as fh:
        out = process_recording(io.BytesIO(fh.read()), lambda n, m: None).events
    assert len({e.id for e in out}) == len(out)  # no duplicates: plain sums below
    return out


@pytest.fixture(scope="module")
def report(seed: Path) -> tuple[ReportData, str, Path]:
    out = seed.with_name("report.html")
    data = write_report(seed, out)
    return data, out.read_text(encoding="utf-8"), out


class Elements(HTMLParser):
    """Every start tag as (enclosing svg id, tag, attributes), plus the page's text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.items: list[tuple[str | None, str, dict[str, str]]] = []
        self.svg: str | None = None
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "svg":
            self.svg = a.get("id")
        self.items.append((self.svg, tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.svg = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def find(self, svg: str, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for s, t, a in self.items
                if s == svg and t == tag and cls in a.get("class", "").split()]


def usd(ev: LiquidationEvent) -> float:
    assert ev.notional_usd is not None
    return ev.notional_usd


def coin(ev: LiquidationEvent) -> str:
    return coin_scale(ev.base)[0]


# ---- the numbers ---------------------------------------------------------------------------
def test_hourly_bars_are_the_sums_of_event_usd_per_hour_and_side(
        events: list[LiquidationEvent], report: tuple[ReportData, str, Path]) -> None:
    data, page, _ = report
    expected: dict[tuple[int, str], float] = defaultdict(float)
    for ev in events:
        expected[(math.floor(ev.ts / 3600) * 3600, ev.side)] += usd(ev)
    bars = Elements(page).find("hourly", "rect", "bar")
    got = {(int(b["data-hour"]), b["data-side"]): float(b["data-usd"]) for b in bars}
    assert len(bars) == len(got) == len(expected)  # one bar per hour and side with USD
    assert got == pytest.approx(dict(expected), rel=1e-9)
    # The hours run from the first event's hour to the recording's end, gaps included.
    assert data.hours[0] == min(h for h, _ in expected)
    assert data.hours[-1] == math.floor(END / 3600) * 3600
    assert data.hours == [data.hours[0] + 3600 * i for i in range(len(data.hours))]
    # The scenario's final hour (docs/scenario.md): $230M of longs, $3.5M of shorts.
    last_hour = [e for e in events if e.ts > END - 3600]
    assert sum(usd(e) for e in last_hour if e.side == "long") == pytest.approx(230e6, rel=1e-4)


def test_exchange_and_coin_totals(events: list[LiquidationEvent],
                                  report: tuple[ReportData, str, Path]) -> None:
    data, page, _ = report
    html = Elements(page)
    by_ex: dict[tuple[str, str], float] = defaultdict(float)
    by_coin: dict[tuple[str, str], float] = defaultdict(float)
    for ev in events:
        by_ex[(ev.exchange, ev.side)] += usd(ev)
        by_coin[(coin(ev), ev.side)] += usd(ev)
    for svg, expected in (("by-exchange", by_ex), ("by-coin", by_coin)):
        bars = html.find(svg, "rect", "bar")
        got = {(b["data-name"], b["data-side"]): float(b["data-usd"]) for b in bars}
        assert got == pytest.approx(dict(expected), rel=1e-9), svg
        totals = defaultdict(float)
        for (name, _), v in expected.items():
            totals[name] += v
        names = list(dict.fromkeys(b["data-name"] for b in bars))
        assert names == sorted(totals, key=lambda n: -totals[n]), f"{svg}: largest first"
    assert list(data.by_exchange)[:2] == ["binance", "hyperliquid"]  # over the whole day
    assert data.total["long"] + data.total["short"] == pytest.approx(
        sum(usd(e) for e in events), rel=1e-12)


def test_top_coins_then_other() -> None:
    by_coin = {f"C{i:02d}": {"long": float(100 - i), "short": 1.0} for i in range(20)}
    ranked = sorted(by_coin, key=lambda c: -sum(by_coin[c].values()))
    rows = _top_coins(by_coin, ranked)
    assert len(rows) == TOP_COINS + 1
    assert [r[0] for r in rows[:TOP_COINS]] == ranked[:TOP_COINS]
    assert rows[-1] == ("other (5)", sum(100.0 - i for i in range(15, 20)), 5.0)


def test_heatmap_cells_are_the_coin_usd_per_price_level_and_hour(
        events: list[LiquidationEvent], report: tuple[ReportData, str, Path]) -> None:
    data, page, _ = report
    html = Elements(page)
    totals: dict[str, float] = defaultdict(float)
    for ev in events:
        totals[coin(ev)] += usd(ev)
    heat_coins = sorted(totals, key=lambda c: -totals[c])[:HEATMAP_COINS]
    assert [hm.coin for hm in data.heatmaps] == heat_coins == ["BTC", "ETH", "SOL"]
    for hm in data.heatmaps:
        expected: dict[tuple[int, int], float] = defaultdict(float)
        for ev in events:
            if coin(ev) != hm.coin:
                continue
            price = ev.price / coin_scale(ev.base)[1]
            rows = [r for r, (lo, hi) in enumerate(hm.rows) if lo <= price < hi]
            assert len(rows) == 1, (hm.coin, price)
            expected[(rows[0], math.floor(ev.ts / 3600) * 3600)] += usd(ev)
        cells = html.find(f"heatmap-{hm.coin}", "rect", "heat-cell")
        assert len(cells) == len(expected) == len(hm.cells)
        lows = [lo for lo, _ in hm.rows]
        got = {(min(range(len(lows)), key=lambda r, c=c: abs(lows[r] - float(c["data-low"]))),
                int(c["data-hour"])): float(c["data-usd"]) for c in cells}
        assert got == pytest.approx(dict(expected), rel=1e-9), hm.coin
        # 0.25 % levels; the price line from the recorded mark prices, one point per step.
        assert hm.levels_per_row == 1 and hm.rows[0][1] / hm.rows[0][0] == pytest.approx(1.0025)
        assert len(hm.prices) > 90
        assert html.find(f"heatmap-{hm.coin}", "path", "price-line")


def test_header_counts_and_largest_liquidations(
        events: list[LiquidationEvent], report: tuple[ReportData, str, Path]) -> None:
    data, page, _ = report
    assert data.counts["events"] == len(events) == 5733
    assert data.counts["deadletters"] == 0 and data.counts["price_ticks"] == 15100
    assert data.counts["lines"] == 9375  # 8,771 venue frames + 604 open-interest polls
    top = sorted(events, key=lambda e: -usd(e))[:10]
    assert [(x.exchange, x.symbol, x.side, x.usd) for x in data.largest] == \
        [(e.exchange, e.symbol, e.side, usd(e)) for e in top]
    table = page[page.index('<table id="largest"'):page.index("</table>")]
    assert table.count("<tr>") == 11  # the head and ten rows
    assert fmt_usd(usd(top[0])) in table and top[0].symbol in table
    assert "2026-09-16 17:" in page and "2026-09-17 18:33 UTC" in page  # the time span


def test_signals_over_time_end_at_the_scenario_readings(
        report: tuple[ReportData, str, Path]) -> None:
    data, page, _ = report
    steps = signal_steps(data.start, data.end)
    assert [p.ts for p in data.signals] == steps and steps[-1] == END
    assert all(b - a <= 900 for a, b in zip(steps, steps[1:], strict=False))
    last = data.signals[-1]
    # docs/scenario.md, "Expected signal readings" (pipeline, with prices).
    assert last.index == pytest.approx(86.96, abs=0.01) and last.level == "extreme"
    assert last.deleveraging == "staged" and last.cascade == ["long"]
    assert last.long_share == pytest.approx(0.985, abs=1e-3)
    assert last.spike["long"] == pytest.approx(103.6, abs=0.1)
    assert len(Elements(page).find("stress", "circle", "pt")) == len(steps)
    assert len(Elements(page).find("components", "path", "component-line")) >= 10


def test_the_page_needs_no_network(report: tuple[ReportData, str, Path]) -> None:
    _, page, _ = report
    html = Elements(page)
    refs = [(t, k, v) for _, t, a in html.items for k, v in a.items()
            if k in ("src", "href", "xlink:href", "action", "poster", "data")]
    assert refs == []  # nothing is loaded or linked at all
    for bad in ("<script", "<img", "<link", "<iframe", "@import", "url(", "@font-face"):
        assert bad not in page.lower(), bad
    # "http" only as the SVG namespace name (an identifier, never fetched).
    assert set(re.findall(r"https?://[^\s\"'<>]*", page)) == {"http://www.w3.org/2000/svg"}
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # Accessible: every chart is a labelled image with a title and a description.
    svgs = [a for _, t, a in html.items if t == "svg"]
    assert len(svgs) >= 9
    for a in svgs:
        assert a["role"] == "img" and a["aria-labelledby"] == f"{a['id']}-title {a['id']}-desc"
        assert f'<title id="{a["id"]}-title">' in page and f'<desc id="{a["id"]}-desc">' in page


def test_empty_and_broken_recordings_still_render(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert "no timestamped frames" in build_report(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'not json\n{"exchange": "nope", "source": "wss://x", "recv_ts": '
                    b'1789670000, "frame": "{}"}\n')
    page = build_report(bad)
    assert "dead letters: bad_recording_line 1, unknown_exchange 1" in page
    assert "No priced liquidations" in page


# ---- the command ---------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liqstress", "report", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_command_writes_the_report(seed: Path, tmp_path: Path,
                                   report: tuple[ReportData, str, Path]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(seed), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == report[1]  # deterministic


@pytest.mark.parametrize(("what", "needle"), [
    ("missing", "no such recording"),
    ("no-dir", "no such directory"),
    ("is-dir", "is a directory"),
])
def test_command_errors_are_one_line_and_exit_2(seed: Path, tmp_path: Path, what: str,
                                                needle: str) -> None:
    args = {"missing": (str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "r.html")),
            "no-dir": (str(seed), "--out", str(tmp_path / "no" / "r.html")),
            "is-dir": (str(seed), "--out", str(tmp_path))}[what]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("liqstress: error:"), proc.stderr
    assert needle in lines[0] and "Traceback" not in proc.stderr


# ---- a real browser ------------------------------------------------------------------------
def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("chromium")
    assert exe, "Debian chromium is needed for this test: apt-get install -y chromium"
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", f"--user-data-dir={profile}", *args],
        capture_output=True, timeout=90, check=True)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, RGB rows) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, head = 8, b"", b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            head = body
        elif kind == b"IDAT":
            idat += body
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head)
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(h):
        i = y * (stride + 1)
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        if f == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif f == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + (left + prev[x]) // 2) & 255
        elif f == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], prev[x - bpp] if x >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        rows.append(bytes(line) if bpp == 3 else bytes(
            v for k, v in enumerate(line) if k % 4 != 3))
    return w, h, rows


def rgb(color: str) -> bytes:
    return bytes(int(color[k:k + 2], 16) for k in (1, 3, 5))


def color_runs(rows: list[bytes], color: bytes) -> tuple[int, int, int]:
    """(pixels of ``color``, longest horizontal run, longest vertical run) in RGB rows."""
    total = horiz = vert = 0
    above: dict[int, int] = {}
    for row in rows:
        here: dict[int, int] = {}
        run, last = 0, -2
        i = row.find(color)
        while i >= 0:
            if i % 3 == 0:
                x = i // 3
                total += 1
                run = run + 1 if x == last + 1 else 1
                last = x
                horiz = max(horiz, run)
                here[x] = above.get(x, 0) + 1
                vert = max(vert, here[x])
            i = row.find(color, i + 1)
        above = here
    return total, horiz, vert


def test_headless_chromium_renders_the_charts(report: tuple[ReportData, str, Path],
                                              tmp_path: Path) -> None:
    data, _, path = report
    url = path.resolve().as_uri()
    # The DOM as the browser built it: the SVG charts with every bar, cell and point.
    dom = Elements(chromium("--dump-dom", url, profile=tmp_path / "p1").stdout.decode())
    bars = sum(1 for side in ("long", "short") for v in data.hourly[side] if v > 0)
    assert len(dom.find("hourly", "rect", "bar")) == bars
    assert len(dom.find("by-exchange", "rect", "bar")) == 2 * len(data.by_exchange)
    for hm in data.heatmaps:
        assert len(dom.find(f"heatmap-{hm.coin}", "rect", "heat-cell")) == len(hm.cells)
    assert len(dom.find("stress", "circle", "pt")) == len(data.signals)

    shot = tmp_path / "report.png"
    chromium(f"--screenshot={shot}", "--window-size=1400,2400", url, profile=tmp_path / "p2")
    w, h, rows = decode_png(shot.read_bytes())
    assert (w, h) == (1400, 2400)
    background = {rows[5][:3], b"\xff\xff\xff"}
    ink = sum(1 for row in rows[::4] for x in range(0, w, 4) if row[3 * x:3 * x + 3]
              not in background)
    assert ink > 0.05 * (w // 4) * (h // 4), "the screenshot is (nearly) blank"
    # Hourly chart: the final hour's long bar is a tall column of the long colour; the
    # exchange chart's bars are long rows of it; shorts show in both.
    n_long, long_h, long_v = color_runs(rows, rgb(LONG_COLOR))
    n_short, short_h, _ = color_runs(rows, rgb(SHORT_COLOR))
    assert n_long > 40_000 and long_v > 150 and long_h > 150, (n_long, long_h, long_v)
    assert n_short > 5_000 and short_h > 30, (n_short, short_h)
    # The first heatmap (BTC) starts within the screenshot: its cells' colours show.
    btc = data.heatmaps[0].coin
    fills = {rgb(m) for m in re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"[^>]*class="heat-cell"',
                                        report[1].split(f'id="heatmap-{btc}"')[1])}
    heat = sum(color_runs(rows, c)[0] for c in fills)
    assert heat > 10_000, heat
