"""Soak test: `liqstress run` (embedded broker) fed by six venue simulators for a long time.

    .venv/bin/python bench/soak.py --rate 100 --duration 1800 --venues 6 \\
        --disconnect-every 120 [--retention events=5m,...] [--out report.json]

The simulators (liqstress.streams.sims) send ``--rate`` liquidation frames per second in total, one
liquidation per frame, round-robin over the venues that are connected. Every
``--disconnect-every`` seconds one venue (in turn) closes its connections; its frames pause
until the collector is back (``liqstress_source_up`` 1 again, with the reconnect counted),
and the time from the close to that moment is one reconnect time. Every ``--sample-every``
seconds the script reads /proc for the liqstress process and for its broker child (Tansu,
found by parent pid; a recycled broker is a new pid): resident memory, open file descriptors,
threads, CPU. At the end it waits for the worker's 24 h window gauges
(sum of ``liqstress_window_liquidated_usd`` and ``liqstress_window_liquidations`` over
``window="24h"``) to equal what the simulators delivered, then stops liqstress with SIGINT.

Every frame carries a distinct timestamp and whole-dollar notional, so the sums are exact in
floating point and no event is a duplicate of another: "exact" means equal, not "close".
Reported: RSS slope (MB/hour, least squares) over the first and the last third of the run for
liqstress and the broker, fds, threads, CPU, reconnect times (p50/max) and whether the totals
are exact. See bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from the repository
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import websockets  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from liqstress.streams.sims import binance, bitget, bybit, deribit, gate, okx  # noqa: E402
from liqstress.streams.sims.base import VenueSim  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_MB = 1024 * 1024


# ---- venues ------------------------------------------------------------------------------------

@dataclass
class Venue:
    """One simulated venue: where liqstress connects, and how one liquidation frame looks.

    ``frame(seq, t_ms)`` returns (frame text, whole-dollar USD notional the collector will
    compute for it). Every venue below prices its event without rounding: base qty 1 times an
    integer price, or a USD amount given directly (inverse contracts, Bitget's quote amount)."""

    name: str
    sim: VenueSim
    urls: Callable[[VenueSim], dict[str, str]]
    path: str
    frame: Callable[[int, int], tuple[str, int]]
    #: Connections the collector keeps to this simulator (some venues use two).
    connections: int = 1
    sent: int = 0
    usd: int = 0
    last_ms: int = 0
    paused: bool = False

    def venue_urls(self) -> str:
        return ",".join(f"{self.name}.{k}={v}" for k, v in self.urls(self.sim).items())

    def next_ms(self) -> int:
        # Strictly increasing: the worker dedupes on (symbol, ms time, side, price, qty).
        self.last_ms = max(int(time.time() * 1000), self.last_ms + 1)
        return self.last_ms


def _price(seq: int) -> int:
    return 1000 + seq % 997


def _binance(seq: int, t_ms: int) -> tuple[str, int]:
    p = _price(seq)
    return binance.force_order("BTCUSDT", "SELL" if seq % 2 else "BUY", "1", str(p), t_ms), p


def _bybit(seq: int, t_ms: int) -> tuple[str, int]:
    p = _price(seq)
    return bybit.liquidation("BTCUSDT", ("Buy" if seq % 2 else "Sell", "1", str(p), t_ms)), p


def _okx(seq: int, t_ms: int) -> tuple[str, int]:
    # BTC-USD-SWAP: inverse, 100 USD per contract, so the notional is sz * 100 exactly.
    sz = 1 + seq % 50
    side = ("long", "sell") if seq % 2 else ("short", "buy")
    return okx.liquidations(okx.entry("BTC-USD-SWAP", okx.detail(*side, str(sz), "60000", t_ms))), sz * 100


def _gate(seq: int, t_ms: int) -> tuple[str, int]:
    # SOL_USDT: quanto multiplier 1, so |size| n is n SOL at the frame's price. Gate's id is
    # (contract, second, |size|) (gate.liquidation_key): |size| moves with seq so that two
    # liquidations of one second stay two.
    p, n = _price(seq), 1 + seq % 997
    return gate.liquidations(gate.item("SOL_USDT", n if seq % 2 else -n, str(p), t_ms)), p * n


def _bitget(seq: int, t_ms: int) -> tuple[str, int]:
    usd = 100 * _price(seq)  # amount is the quote (USDT) notional
    side = "buy" if seq % 2 else "sell"
    return bitget.liquidations(bitget.entry("BTCUSDT", side, str(usd), "60000", t_ms)), usd


def _deribit(seq: int, t_ms: int) -> tuple[str, int]:
    usd = 10 * _price(seq)  # BTC-PERPETUAL is inverse: amount is USD
    trade = deribit.trade("BTC-PERPETUAL", "sell" if seq % 2 else "buy", usd, 60000, t_ms,
                          trade_id=f"soak-{seq}", liquidation="T")
    return deribit.trades("trades.future.BTC.100ms", trade), usd


def make_venues() -> list[Venue]:
    """The six venues whose simulators take one liquidation per frame at any rate."""
    return [
        Venue("binance", binance.BinanceSim(),
              lambda s: {"ws": s.ws_url(), "prices": s.ws_url(binance.MARK_PRICE_PATH)},
              binance.BinanceSim.ws_paths[0], _binance, connections=2),
        Venue("bybit", bybit.BybitSim(),
              lambda s: {"ws_linear": s.ws_url(bybit.LINEAR_PATH),
                         "ws_inverse": s.ws_url(bybit.INVERSE_PATH), "rest": s.http_base},
              bybit.LINEAR_PATH, _bybit, connections=2),
        Venue("okx", okx.OkxSim(), lambda s: {"ws": s.ws_url(), "rest": s.http_base},
              okx.WS_PATH, _okx),
        Venue("gate", gate.GateSim(), lambda s: {"ws": s.ws_url(), "rest": s.http_base},
              gate.WS_PATH, _gate),
        Venue("bitget", bitget.BitgetSim(), lambda s: {"ws": s.ws_url()}, bitget.WS_PATH, _bitget),
        Venue("deribit", deribit.DeribitSim(), lambda s: {"ws": s.ws_url()}, deribit.WS_PATH,
              _deribit),
    ]


async def _deliver(venue: Venue, frame: str) -> bool:
    """Send to the venue's liquidation connection; True when a connected client took it."""
    ok = False
    for ws in list(venue.sim.clients):
        if ws.request.path != venue.path:
            continue
        try:
            await ws.send(frame)
            ok = True
        except websockets.ConnectionClosed:
            pass
    return ok


# ---- /proc and /metrics ------------------------------------------------------------------------

def proc_stats(pid: int) -> dict[str, float] | None:
    """RSS (MB), fds, threads and CPU seconds of ``pid`` from /proc; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = {k: v.split() for k, _, v in (ln.partition(":") for ln in status.splitlines())}
    # Fields after the parenthesised command name (which may contain spaces).
    rest = stat[stat.rindex(")") + 2:].split()
    return {"rss_mb": int(fields["VmRSS"][0]) / 1024, "fds": fds,
            "threads": int(fields["Threads"][0]),
            "cpu_s": (int(rest[11]) + int(rest[12])) / CLK_TCK}


def broker_pids(parent: int) -> list[int]:
    """Children of ``parent`` that are the Tansu broker (by name or by its command line)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[1]) != parent:
                continue
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, ValueError, PermissionError):
            continue
        if Path(cmd[0].decode(errors="replace")).name.startswith("tansu") or b"--storage-engine" in cmd:
            out.append(int(entry))
    return sorted(out)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def metric(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def window_totals(samples: dict[Any, float], window: str = "24h") -> tuple[float, float]:
    """(USD, count) summed over every exchange and side of one window."""
    usd = count = 0.0
    for (name, labels), value in samples.items():
        if dict(labels).get("window") != window:
            continue
        if name == "liqstress_window_liquidated_usd":
            usd += value
        elif name == "liqstress_window_liquidations":
            count += value
    return usd, count


# ---- report ------------------------------------------------------------------------------------

def slope_mb_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB/hour."""
    if len(points) < 2:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var * 3600


def trailing_max(points: list[tuple[float, float]], window: float) -> list[tuple[float, float]]:
    """Each point's value replaced by the highest value of the ``window`` seconds up to it:
    the peak envelope. A recycled broker's memory is a sawtooth whose raw slope over a short
    span depends on where the span cuts the teeth; the envelope is flat once the peaks stop
    rising, and equals the raw series while memory only grows."""
    out = []
    for i, (t, _) in enumerate(points):
        out.append((t, max(v for tt, v in points[: i + 1] if tt >= t - window)))
    return out


def _thirds(points: list[tuple[float, float]], duration: float) -> tuple[list, list]:
    first = [p for p in points if p[0] <= duration / 3]
    last = [p for p in points if p[0] >= duration * 2 / 3]
    return first, last


def process_summary(samples: list[dict[str, Any]], key: str, duration: float) -> dict[str, Any]:
    rows = [(s["t"], s[key]) for s in samples if s.get(key)]
    if not rows:
        return {"found": False}
    rss = [(t, r["rss_mb"]) for t, r in rows]
    first, last = _thirds(rss, duration)
    peak_first, peak_last = _thirds(trailing_max(rss, duration / 3), duration)
    # CPU: per pid (a recycled broker starts again from 0), summed over the run.
    cpu_s = 0.0
    prev: dict[int, float] = {}
    for _, r in rows:
        cpu_s += max(0.0, r["cpu_s"] - prev.get(r["pid"], r["cpu_s"]))
        prev[r["pid"]] = r["cpu_s"]
    span = rows[-1][0] - rows[0][0]
    return {
        "found": True,
        "pids": sorted({r["pid"] for _, r in rows}),
        "rss_mb_start": round(rss[0][1], 1), "rss_mb_end": round(rss[-1][1], 1),
        "rss_mb_max": round(max(v for _, v in rss), 1),
        "rss_slope_first_mb_h": _round(slope_mb_per_hour(first)),
        "rss_slope_last_mb_h": _round(slope_mb_per_hour(last)),
        "rss_peak_slope_first_mb_h": _round(slope_mb_per_hour(peak_first)),
        "rss_peak_slope_last_mb_h": _round(slope_mb_per_hour(peak_last)),
        "fds_start": rows[0][1]["fds"], "fds_end": rows[-1][1]["fds"],
        "fds_max": max(r["fds"] for _, r in rows),
        "threads_start": rows[0][1]["threads"], "threads_end": rows[-1][1]["threads"],
        "threads_max": max(r["threads"] for _, r in rows),
        "cpu_pct_avg": round(100 * cpu_s / span, 1) if span > 0 else None,
    }


def _round(v: float | None, nd: int = 1) -> float | None:
    return None if v is None else round(v, nd)


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                      enumerate(zip(r, widths, strict=True))).rstrip() for r in rows]


def format_report(r: dict[str, Any]) -> str:
    lines = [f"soak: {r['duration_s']:.0f} s at {r['rate']:g} frames/s over {len(r['venues'])} "
             f"venues ({', '.join(r['venues'])}): {r['frames_sent']} frames sent, "
             f"{r['disconnects']} disconnects",
             f"liqstress run options: {' '.join(r['options']) or '-'}", ""]
    rows = [["process", "RSS MB start/end/max", "RSS slope MB/h 1st/last third",
             "peak slope 1st/last", "fds s/e/max", "threads s/e/max", "CPU %"]]
    for label in ("liqstress", "broker"):
        p = r[label]
        if not p.get("found"):
            rows.append([label, "not found", "", "", "", "", ""])
            continue
        rows.append([
            label + (f" ({len(p['pids'])} pids)" if len(p["pids"]) > 1 else ""),
            f"{p['rss_mb_start']}/{p['rss_mb_end']}/{p['rss_mb_max']}",
            f"{p['rss_slope_first_mb_h']} / {p['rss_slope_last_mb_h']}",
            f"{p['rss_peak_slope_first_mb_h']} / {p['rss_peak_slope_last_mb_h']}",
            f"{p['fds_start']}/{p['fds_end']}/{p['fds_max']}",
            f"{p['threads_start']}/{p['threads_end']}/{p['threads_max']}",
            f"{p['cpu_pct_avg']}"])
    lines += _table(rows)
    rc = r["reconnect"]
    t = r["totals"]
    lines += ["",
              f"reconnect after a venue closes: {rc['measured']}/{r['disconnects']} measured, "
              f"p50 {rc['p50_s']} s, max {rc['max_s']} s "
              f"(liqstress_source_reconnects_total: {rc['counted_total']:.0f})",
              f"24h totals: sent {t['sent_count']} events / {t['sent_usd']:,} USD; metrics "
              f"{t['metrics_count']:.0f} / {t['metrics_usd']:,.0f} USD: exact "
              + (f"yes (after {t['settle_s']} s)" if t["exact"] else "NO"),
              f"liqstress exit code {r['exit_code']}"]
    return "\n".join(lines)


# ---- the run -----------------------------------------------------------------------------------

@dataclass
class SoakOptions:
    rate: float = 100.0
    duration: float = 1800.0
    venues: int = 6
    disconnect_every: float = 120.0
    retention: str | None = None
    broker_recycle_bytes: int | None = None
    broker_recycle_interval: float | None = None
    sample_every: float = 5.0
    settle_timeout: float = 60.0
    startup_timeout: float = 120.0
    workdir: str | None = None
    extra_args: list[str] = field(default_factory=list)


def cli_options() -> set[str]:
    """Options `liqstress run` accepts (so the soak runs against older and newer CLIs)."""
    out = subprocess.run([sys.executable, "-m", "liqstress", "run", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    return set(re.findall(r"(--[a-z][a-z0-9-]+)", out.stdout))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Soak:
    def __init__(self, opts: SoakOptions, log: Callable[[str], None] | None = None) -> None:
        self.o = opts
        self.say = log or (lambda msg: print(f"soak: {msg}", file=sys.stderr, flush=True))
        self.venues = make_venues()[: max(1, min(opts.venues, 6))]
        self.samples: list[dict[str, Any]] = []
        self.reconnect_s: list[float | None] = []
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.options: list[str] = []
        self.frames = 0
        self.logpath: Path | None = None

    # -- liqstress ------------------------------------------------------------------------------
    def _command(self, workdir: Path) -> list[str]:
        have = cli_options()
        args = [sys.executable, "-m", "liqstress", "run",
                "--exchanges", ",".join(v.name for v in self.venues),
                "--venue-urls", ",".join(v.venue_urls() for v in self.venues),
                "--metrics-port", str(self.port), "--metrics-host", "127.0.0.1",
                "--refresh-interval", "1"]
        wanted: list[tuple[str, str | None]] = [("--data-dir", str(workdir / "data"))]
        if self.o.retention:
            wanted.append(("--retention", self.o.retention))
        if self.o.broker_recycle_bytes:
            wanted.append(("--broker-recycle-bytes", str(self.o.broker_recycle_bytes)))
        if self.o.broker_recycle_interval is not None:
            wanted.append(("--broker-recycle-interval", f"{self.o.broker_recycle_interval:g}"))
        for flag, value in wanted:
            if flag in have:
                self.options += [flag, value or ""]
            elif flag != "--data-dir":
                self.say(f"`liqstress run` has no {flag}; running without it")
        return args + self.options + self.o.extra_args

    def _spawn(self, workdir: Path) -> Path:
        logpath = self.logpath = workdir / "liqstress.log"
        cmd = self._command(workdir)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(logpath, "wb") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env=env)
        self.say(f"liqstress pid {self.proc.pid}, metrics :{self.port}, log {logpath}")
        return logpath

    def _stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def _scrape(self) -> dict[Any, float]:
        return scrape(self.port)

    async def _poll(self, check: Callable[[dict[Any, float]], bool], timeout: float,
                    interval: float = 0.1) -> float | None:
        """Seconds until ``check(scrape)`` holds, or None after ``timeout``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"liqstress exited with {self.proc.returncode}")
            try:
                if check(await asyncio.to_thread(self._scrape)):
                    return time.monotonic() - start
            except OSError:
                pass  # not listening yet
            await asyncio.sleep(interval)
        return None

    # -- loops ----------------------------------------------------------------------------------
    async def _send_loop(self, stop: asyncio.Event) -> None:
        start = time.monotonic()
        seq = 0
        turn = 0
        while not stop.is_set():
            due = int((time.monotonic() - start) * self.o.rate)
            while seq < due:
                active = [v for v in self.venues if not v.paused]
                if not active:
                    break
                venue = active[turn % len(active)]
                turn += 1
                frame, usd = venue.frame(seq, venue.next_ms())
                seq += 1
                if await _deliver(venue, frame):
                    venue.sent += 1
                    venue.usd += usd
                    self.frames += 1
            await asyncio.sleep(0.02)

    async def _sample_loop(self, stop: asyncio.Event, t0: float) -> None:
        assert self.proc is not None
        while not stop.is_set():
            sample: dict[str, Any] = {"t": time.monotonic() - t0}
            me = proc_stats(self.proc.pid)
            if me is not None:
                sample["liqstress"] = {**me, "pid": self.proc.pid}
            brokers = [(pid, proc_stats(pid)) for pid in broker_pids(self.proc.pid)]
            brokers = [(pid, s) for pid, s in brokers if s is not None]
            if brokers:
                # During a recycle two brokers can overlap: their memory adds up.
                newest = max(pid for pid, _ in brokers)
                sample["broker"] = {
                    "pid": newest,
                    "rss_mb": sum(s["rss_mb"] for _, s in brokers),
                    "fds": sum(int(s["fds"]) for _, s in brokers),
                    "threads": sum(int(s["threads"]) for _, s in brokers),
                    "cpu_s": dict(brokers)[newest]["cpu_s"],
                }
            self.samples.append(sample)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.o.sample_every)

    async def _disconnect_loop(self, stop: asyncio.Event) -> None:
        if self.o.disconnect_every <= 0:
            await stop.wait()  # ending early would end the run: _run waits for any task
            return
        turn = 0
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.o.disconnect_every)
            if stop.is_set():
                return
            venue = self.venues[turn % len(self.venues)]
            turn += 1
            before = metric(await asyncio.to_thread(self._scrape),
                            "liqstress_source_reconnects_total", exchange=venue.name) or 0
            venue.paused = True
            await venue.sim.disconnect_all()
            took = await self._poll(
                lambda s, v=venue, b=before:
                    (metric(s, "liqstress_source_reconnects_total", exchange=v.name) or 0) > b
                    and metric(s, "liqstress_source_up", exchange=v.name) == 1
                    and len(v.sim.clients) >= v.connections,
                timeout=max(60.0, self.o.disconnect_every))
            self.reconnect_s.append(None if took is None else round(took, 3))
            self.say(f"{venue.name} disconnected; back after "
                     f"{'never' if took is None else f'{took:.2f} s'}")
            venue.paused = False

    # -- main -----------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        with contextlib.ExitStack() as stack:
            if self.o.workdir:
                workdir = Path(self.o.workdir)
                workdir.mkdir(parents=True, exist_ok=True)
            else:
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
            for v in self.venues:
                await v.sim.start()
            try:
                report = await self._run(workdir)
            except Exception as exc:
                raise RuntimeError(f"{exc}\n--- liqstress log (tail) ---\n{self._log_tail()}") from exc
            finally:
                exit_code = self._stop()
                self.say(f"liqstress exited with {exit_code}")
                for v in self.venues:
                    await v.sim.stop()
            report["exit_code"] = exit_code
            if not report["totals"]["exact"] or exit_code != 0:
                report["log_tail"] = self._log_tail()
            return report

    def _log_tail(self, chars: int = 4000) -> str:
        try:
            return self.logpath.read_text(errors="replace")[-chars:] if self.logpath else ""
        except OSError:
            return ""

    async def _run(self, workdir: Path) -> dict[str, Any]:
        logpath = self._spawn(workdir)
        names = [v.name for v in self.venues]
        ready = await self._poll(
            lambda s: all(metric(s, "liqstress_source_up", exchange=n) == 1 for n in names)
            and metric(s, "liqstress_worker_ready") == 1
            and all(len(v.sim.clients) >= v.connections for v in self.venues),
            self.o.startup_timeout, interval=0.5)
        if ready is None:
            raise RuntimeError(f"liqstress did not come up within {self.o.startup_timeout:.0f}s "
                               f"(sources connected and worker ready)")
        self.say(f"up after {ready:.1f} s; soaking {self.o.duration:.0f} s at {self.o.rate}/s")
        stop = asyncio.Event()
        t0 = time.monotonic()
        tasks = [asyncio.create_task(self._send_loop(stop)),
                 asyncio.create_task(self._sample_loop(stop, t0)),
                 asyncio.create_task(self._disconnect_loop(stop))]
        try:
            done, _ = await asyncio.wait([*tasks, asyncio.create_task(asyncio.sleep(self.o.duration))],
                                         return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t in tasks and t.exception():
                    raise t.exception()  # type: ignore[misc]
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        duration = time.monotonic() - t0
        sent_usd = sum(v.usd for v in self.venues)
        sent_count = sum(v.sent for v in self.venues)
        last: dict[str, tuple[float, float]] = {}

        def totals_match(s: dict[Any, float]) -> bool:
            last["v"] = window_totals(s)
            return last["v"] == (float(sent_usd), float(sent_count))

        settle = await self._poll(totals_match, self.o.settle_timeout, interval=0.5)
        got_usd, got_count = last.get("v", (0.0, 0.0))
        final = await asyncio.to_thread(self._scrape)
        measured = [r for r in self.reconnect_s if r is not None]
        report = {
            "rate": self.o.rate, "duration_s": round(duration, 1), "venues": names,
            "options": self.options, "frames_sent": self.frames,
            "disconnects": len(self.reconnect_s), "samples": len(self.samples),
            "liqstress": process_summary(self.samples, "liqstress", duration),
            "broker": process_summary(self.samples, "broker", duration),
            "reconnect": {
                "measured": len(measured),
                "times_s": self.reconnect_s,
                "p50_s": round(statistics.median(measured), 3) if measured else None,
                "max_s": max(measured) if measured else None,
                "counted_total": sum(metric(final, "liqstress_source_reconnects_total",
                                            exchange=n) or 0 for n in names),
            },
            "totals": {
                "sent_count": sent_count, "sent_usd": sent_usd,
                "metrics_count": got_count, "metrics_usd": got_usd,
                "exact": settle is not None and sent_count > 0,  # 0 == 0 proves nothing
                "settle_s": None if settle is None else round(settle, 1),
                "per_venue": {v.name: {"sent": v.sent, "usd": v.usd} for v in self.venues},
            },
            "raw_samples": self.samples,
            "log": str(logpath),
        }
        return report


async def run_soak(opts: SoakOptions, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    return await Soak(opts, log).run()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=100.0, help="frames per second, all venues")
    p.add_argument("--duration", type=float, default=1800.0, help="seconds of soak")
    p.add_argument("--venues", type=int, default=6, help="1-6 simulated venues")
    p.add_argument("--disconnect-every", type=float, default=120.0,
                   help="close one venue's connection every N seconds (0 = never)")
    p.add_argument("--retention", default=None,
                   help="passed to `liqstress run --retention` (e.g. events=5m,prices=5m)")
    p.add_argument("--broker-recycle-bytes", type=int, default=None,
                   help="passed to `liqstress run` when it has the option")
    p.add_argument("--broker-recycle-interval", type=float, default=None,
                   help="passed to `liqstress run` when it has the option (seconds)")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--settle-timeout", type=float, default=60.0,
                   help="seconds to wait for the 24h totals after the last frame")
    p.add_argument("--workdir", default=None, help="keep the data dir and log here")
    p.add_argument("--out", default=None, help="write the report (with every sample) as JSON")
    args = p.parse_args(argv)
    opts = SoakOptions(rate=args.rate, duration=args.duration, venues=args.venues,
                       disconnect_every=args.disconnect_every, retention=args.retention,
                       broker_recycle_bytes=args.broker_recycle_bytes,
                       broker_recycle_interval=args.broker_recycle_interval,
                       sample_every=args.sample_every, settle_timeout=args.settle_timeout,
                       workdir=args.workdir)
    report = asyncio.run(run_soak(opts))
    print(format_report(report))
    if args.out:
        Path(args.out).write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return 0 if report["totals"]["exact"] else 1


if __name__ == "__main__":
    sys.exit(main())

