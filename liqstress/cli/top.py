"""``liqstress top``: a live terminal view of a worker for people without Grafana.

It polls the process's HTTP port, the same one Prometheus scrapes: the JSON API
(``/api/v1/windows``, ``/api/v1/liquidations``; docs/api.md) for totals and single events, and
``/metrics`` for the stress index, its components, worker state and source health
(docs/observability.md). Nothing is written anywhere; any number of views can watch a worker.

Two halves, kept apart so the screen can be tested without a network:

* fetching: :func:`fetch` turns one poll into a :class:`Poll` (plain data: the API's answers,
  the parsed metric samples, what failed);
* formatting: :func:`render` and the ``*_table``/``*_panel`` functions turn a :class:`Poll`
  into rich renderables for a given terminal size; the ``fmt_*`` helpers format numbers.

A process without the API (``liqstress collect``: 404 under ``/api/``) still shows what its
``/metrics`` has (source health; window totals from the worker gauges when a worker exports
them). An unreachable URL is one status line in the view while it retries; ``--once`` prints
one frame and exits, 2 with one line on stderr when the URL cannot be read.

Colours follow the report and the dashboards: long (longs liquidated) red, short green.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import math
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from liqstress.cli.output import compact_usd, usd
from liqstress.config import env
from liqstress.signals import COMPONENTS, DEFAULT_LEVELS

DEFAULT_URL = "http://127.0.0.1:9464"
#: The windows a trader reads; the API also has 1m/5m/15m.
WINDOWS = ("1h", "4h", "12h", "24h")
#: Windows of the exchange table when the terminal is too narrow for all four.
NARROW_WINDOWS = ("1h", "24h")
TOP_COINS = 10
#: Latest liquidations fetched per poll (the view shows as many as fit).
LATEST_LIMIT = 40
HTTP_TIMEOUT = 5.0

LONG_STYLE = "red"
SHORT_STYLE = "green"
SIDE_STYLE = {"long": LONG_STYLE, "short": SHORT_STYLE}
LEVEL_STYLE = {"low": "green", "elevated": "yellow", "high": "dark_orange",
               "extreme": "bold red"}
MISSING = "–"

#: Samples of one metric: (labels, value) pairs.
Samples = list[tuple[dict[str, str], float]]


# ---- data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Poll:
    """What one poll of a process got; every field may be missing."""

    url: str
    #: wall-clock time of the poll (epoch seconds)
    at: float
    #: sample name -> samples, from /metrics; empty when /metrics could not be read
    metrics: Mapping[str, Samples] = field(default_factory=dict)
    #: the API's header fields (ts, time, worker, aggregator, ready, partitions, ...)
    meta: Mapping[str, Any] | None = None
    #: /api/v1/windows ``rows``; None without the API
    rows: Sequence[Mapping[str, Any]] | None = None
    #: /api/v1/liquidations ``liquidations``, newest first; None without the API
    latest: Sequence[Mapping[str, Any]] | None = None
    #: why the API gave nothing (404 of a collector-only process, an error), else None
    api_note: str | None = None
    #: the process could not be read at all: one line, shown as the status
    error: str | None = None
    #: wall-clock time of the last poll that reached the process (shown when ``error`` is set)
    last_ok: float | None = None


def parse_metrics(text: str) -> dict[str, Samples]:
    """Prometheus text exposition -> sample name -> [(labels, value)]."""
    out: dict[str, Samples] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def metric(m: Mapping[str, Samples], name: str, **labels: str) -> float | None:
    """The first sample of ``name`` whose labels include ``labels``; NaN reads as None."""
    for lbls, value in m.get(name, ()):
        if all(lbls.get(k) == v for k, v in labels.items()):
            return None if math.isnan(value) else value
    return None


def by_label(m: Mapping[str, Samples], name: str, label: str) -> dict[str, float]:
    """``name``'s samples keyed by one label (later samples of the same value win)."""
    return {lbls[label]: v for lbls, v in m.get(name, ()) if label in lbls}


def rows_from_metrics(m: Mapping[str, Samples]) -> list[dict[str, Any]]:
    """/api/v1/windows-shaped rows from the worker's window gauges, for a process that has
    /metrics but no API: exchanges and allowlisted coins (no ``other``)."""
    acc: dict[tuple[str, str, str, str], float] = {}
    for lbls, v in m.get("liqstress_window_liquidated_usd", ()):
        w, ex, side = lbls.get("window"), lbls.get("exchange"), lbls.get("side")
        if w and ex and side and not math.isnan(v):
            acc[(w, "exchange", ex, side)] = acc.get((w, "exchange", ex, side), 0.0) + v
            acc[(w, "total", "all", side)] = acc.get((w, "total", "all", side), 0.0) + v
    for lbls, v in m.get("liqstress_coin_window_liquidated_usd", ()):
        w, coin, side = lbls.get("window"), lbls.get("coin"), lbls.get("side")
        if w and coin and side and not math.isnan(v):
            acc[(w, "coin", coin, side)] = acc.get((w, "coin", coin, side), 0.0) + v
    return [{"window": w, "scope": scope, "name": name, "side": side, "usd": usd}
            for (w, scope, name, side), usd in acc.items()]


# ---- pure extraction ---------------------------------------------------------------------------
Totals = dict[str, dict[str, float]]  # window -> side -> usd


def totals(rows: Iterable[Mapping[str, Any]], scope: str) -> dict[str, Totals]:
    """name -> window -> side -> USD for the rows of one ``scope`` (``total``, ``exchange``,
    ``coin``)."""
    out: dict[str, Totals] = {}
    for r in rows:
        if r.get("scope") != scope:
            continue
        usd = r.get("usd")
        side = out.setdefault(str(r["name"]), {}).setdefault(str(r["window"]), {})
        side[str(r["side"])] = side.get(str(r["side"]), 0.0) + (float(usd) if usd else 0.0)
    return out


def window_usd(t: Totals, window: str, side: str | None = None) -> float:
    sides = t.get(window, {})
    return sides.get(side, 0.0) if side else sum(sides.values())


def ranked(by_name: Mapping[str, Totals], windows: Sequence[str] = ("1h", "24h")) -> list[str]:
    """Names by total USD of ``windows[0]`` descending, ties by the next windows, then by
    name; names with nothing in any of ``windows`` left out."""
    names = [n for n in by_name if any(window_usd(by_name[n], w) > 0 for w in windows)]
    return sorted(names, key=lambda n: (*(-window_usd(by_name[n], w) for w in windows), n))


def stress_level(value: float) -> str:
    """The index's level name (docs/signals.md: ≥ 75 extreme, ≥ 50 high, ≥ 25 elevated)."""
    for lo, name in DEFAULT_LEVELS:
        if value >= lo:
            return name
    return DEFAULT_LEVELS[-1][1]


def ratio_style(x: float | None) -> str:
    """Colour of a 0-1 reading: green, yellow, orange, red at 0.25/0.5/0.75."""
    if x is None:
        return "dim"
    if x >= 0.75:
        return "red"
    if x >= 0.5:
        return "dark_orange"
    if x >= 0.25:
        return "yellow"
    return "green"


# ---- number formatting -------------------------------------------------------------------------
def fmt_usd(x: float | None) -> str:
    """USD, compact: ``0``, ``950``, ``12.4k``, ``3.50M``, ``230.0M``, ``1.23B``; two decimals
    below 10 of the unit, one above; ``–`` when unknown."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    return compact_usd(x)


def fmt_dollars(x: float | None) -> str:
    """A single liquidation's USD, to the dollar: ``208,045``; ``–`` when unpriced."""
    return usd(x, missing=MISSING)


def fmt_share(x: float | None) -> str:
    """A 0-1 share as a whole percentage: ``98%``; ``–`` when undefined."""
    if x is None or math.isnan(x):
        return MISSING
    return f"{x * 100:.0f}%"


def long_share(long: float, short: float) -> float | None:
    total = long + short
    return long / total if total > 0 else None


def fmt_price(p: float | None) -> str:
    """A venue price: ``87,210.5``, ``121.40``, ``2.0605``, ``0.0112``."""
    if p is None or math.isnan(p):
        return MISSING
    a = abs(p)
    if a >= 1000:
        return f"{p:,.1f}"
    if a >= 100:
        return f"{p:.2f}"
    if a >= 1:
        return f"{p:.4f}"
    if a == 0:
        return "0"
    return f"{p:.4g}"


def fmt_age(seconds: float | None) -> str:
    """An age: ``4s``, ``2m05s``, ``3h02m``, ``2d03h``; ``never`` for None."""
    if seconds is None or math.isnan(seconds):
        return "never"
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def fmt_clock(ts: float | None) -> str:
    """Epoch seconds as ``HH:MM:SS`` UTC."""
    if ts is None or not math.isfinite(ts) or ts <= 0:
        return MISSING
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%H:%M:%S")


def bar(x: float | None, width: int = 8) -> Text:
    """A 0-1 value as a small bar, coloured by :func:`ratio_style`."""
    if x is None:
        return Text("·" * width, style="dim")
    x = min(max(x, 0.0), 1.0)
    full = round(x * width)
    return Text("█" * full, style=ratio_style(x)) + Text("░" * (width - full), style="dim")


def side_text(side: str) -> Text:
    return Text(side, style=SIDE_STYLE.get(side, ""))


def usd_text(x: float, side: str | None = None) -> Text:
    """A USD amount, coloured by side when there is something to colour (0 is dim)."""
    if not x:
        return Text(fmt_usd(x), style="dim")
    return Text(fmt_usd(x), style=SIDE_STYLE.get(side or "", ""))


def share_text(x: float | None) -> Text:
    """The long share: red when longs dominate (≥ 75 %), green when shorts do (≤ 25 %)."""
    style = "dim" if x is None else LONG_STYLE if x >= 0.75 else SHORT_STYLE if x <= 0.25 else ""
    return Text(fmt_share(x), style=style)


# ---- renderables -------------------------------------------------------------------------------
def _table(title: str, **kw: Any) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                 show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold dim",
                 **kw)


def header(poll: Poll) -> Text:
    """The top line: where, when, the worker and its state."""
    meta = poll.meta or {}
    t = Text()
    t.append("liqstress top", style="bold")
    t.append(f"  {poll.url}  ", style="dim")
    t.append(f"{fmt_clock(poll.at)} UTC")
    m = poll.metrics
    ready = meta.get("ready") if meta else None
    if ready is None and metric(m, "liqstress_worker_ready") is not None:
        ready = metric(m, "liqstress_worker_ready") == 1
    agg = meta.get("aggregator") if meta else None
    if agg is None and metric(m, "liqstress_aggregator_active") is not None:
        agg = metric(m, "liqstress_aggregator_active") == 1
    if meta.get("worker"):
        t.append("  worker ", style="dim")
        t.append(str(meta["worker"]), style="bold")
    if agg is not None:
        t.append("  aggregator ", style="dim")
        t.append("yes" if agg else "no", style="green" if agg else "yellow")
    if ready is not None:
        t.append("  ready ", style="dim")
        t.append("yes" if ready else "no", style="green" if ready else "yellow")
    if meta.get("partitions") is not None:
        t.append("  partitions ", style="dim")
        t.append(f"{len(meta['partitions'])}/{meta.get('partitions_expected', '?')}")
    if meta.get("events") is not None:
        t.append("  events ", style="dim")
        t.append(f"{meta['events']:,}")
    if meta.get("ts"):
        t.append("  window clock ", style="dim")
        t.append(fmt_clock(float(meta["ts"])))
    return t


def status(poll: Poll, interval: float | None = None) -> Text:
    """One line: what is wrong (unreachable, no API) or that all is well."""
    if poll.error:
        t = Text(f"✖ {poll.error}", style="bold red")
        tail = []
        if interval:
            tail.append(f"retrying every {interval:g}s")
        if poll.last_ok is not None:
            tail.append(f"data below from {fmt_clock(poll.last_ok)} UTC")
        if tail:
            t.append(f" ({'; '.join(tail)})", style="red")
        return t
    if poll.api_note:
        return Text(f"● {poll.api_note}", style="yellow")
    refreshed = metric(poll.metrics, "liqstress_window_refresh_timestamp_seconds")
    t = Text("● ok", style="green")
    if refreshed:
        t.append(f"  windows refreshed {fmt_age(poll.at - refreshed)} ago", style="dim")
    if interval:
        t.append(f"  polling every {interval:g}s · Ctrl-C quits", style="dim")
    return t


def stress_panel(m: Mapping[str, Samples], columns: int = 2, bar_width: int = 8) -> RenderableType:
    """The stress index with its level colour, and every component as a small bar."""
    value = metric(m, "liqstress_stress_index")
    title = Text("Stress index", style="bold")
    if value is None:
        return Group(title, Text("not exported here (no worker, or not the aggregator)",
                                 style="dim"))
    level = stress_level(value)
    head = Text.assemble(title, "  ", (f"{value:.1f}", LEVEL_STYLE[level]), " ",
                         (level, LEVEL_STYLE[level]))
    delev = [lbls.get("state") for lbls, v in m.get("liqstress_deleveraging_state", ())
             if v == 1]
    cascades = [lbls.get("side", "") for lbls, v in m.get("liqstress_cascade_active", ())
                if v == 1]
    if delev:
        head.append("  deleveraging ", style="dim")
        head.append(str(delev[0]))
    if cascades:
        head.append("  cascade ", style="dim")
        for i, side in enumerate(cascades):
            head.append((", " if i else "") + side, style=SIDE_STYLE.get(side, ""))
    comps = by_label(m, "liqstress_stress_component_ratio", "component")
    names = list(COMPONENTS) + [c for c in comps if c not in COMPONENTS]
    grid = Table.grid(padding=(0, 1))
    for c in range(columns):
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(no_wrap=True)
        # two more spaces between groups than inside one
        grid.add_column(no_wrap=True, min_width=4 if c == columns - 1 else 6)
    per_col = math.ceil(len(names) / columns)
    for i in range(per_col):
        cells: list[RenderableType] = []
        for c in range(columns):
            j = c * per_col + i
            if j < len(names):
                v = comps.get(names[j])
                v = None if v is None or math.isnan(v) else v
                cells += [names[j], bar(v, bar_width),
                          Text(MISSING if v is None else f"{v:.2f}", style=ratio_style(v))]
            else:
                cells += ["", "", ""]
        grid.add_row(*cells)
    return Group(head, grid)


def coverage_counts(m: Mapping[str, Samples]) -> dict[str, tuple[int, int]]:
    """Per window: (venues covering all of it, venues reporting), from the worker's
    liqstress_window_coverage_missing_ratio (docs/warm-start.md, Coverage)."""
    out: dict[str, tuple[int, int]] = {}
    for lbls, value in m.get("liqstress_window_coverage_missing_ratio", ()):
        w = lbls.get("window")
        if w is None:
            continue
        whole, seen = out.get(w, (0, 0))
        out[w] = (whole + (value == 0), seen + 1)
    return out


def windows_table(rows: Sequence[Mapping[str, Any]], windows: Sequence[str] = WINDOWS,
                  coverage: Mapping[str, tuple[int, int]] | None = None) -> Table:
    """Window totals, all exchanges: long, short, total, long share, and (with ``coverage``)
    how many venues the window holds whole: a total over part of a window is short."""
    tot = totals(rows, "total").get("all", {})
    t = _table("Totals")
    t.add_column("window")
    for name in ("long", "short", "total", "long %"):
        t.add_column(name, justify="right")
    if coverage:
        t.add_column("venues", justify="right")
    for w in windows:
        lo, sh = window_usd(tot, w, "long"), window_usd(tot, w, "short")
        cells: list[RenderableType] = [w, usd_text(lo, "long"), usd_text(sh, "short"),
                                       Text(fmt_usd(lo + sh)), share_text(long_share(lo, sh))]
        if coverage:
            whole, seen = coverage.get(w, (0, 0))
            cells.append(Text(f"{whole}/{seen}", style="" if whole == seen else "yellow"))
        t.add_row(*cells)
    return t


def exchanges_table(rows: Sequence[Mapping[str, Any]], windows: Sequence[str] = WINDOWS,
                    limit: int | None = None) -> Table:
    """Per exchange and window: long, short and long share; largest 1h first."""
    ex = totals(rows, "exchange")
    t = _table("By exchange" + ("" if len(windows) == len(WINDOWS) else
                                f" ({', '.join(windows)})"))
    t.add_column("exchange", no_wrap=True)
    for w in windows:
        t.add_column(f"{w} long", justify="right", no_wrap=True)
        t.add_column("short", justify="right", no_wrap=True)
        t.add_column("L%", justify="right", no_wrap=True)
    names = ranked(ex, (windows[0], windows[-1]))
    for name in names[:limit]:
        cells: list[RenderableType] = [name]
        for w in windows:
            lo, sh = window_usd(ex[name], w, "long"), window_usd(ex[name], w, "short")
            cells += [usd_text(lo, "long"), usd_text(sh, "short"), share_text(long_share(lo, sh))]
        t.add_row(*cells)
    if not names:
        t.add_row(Text("nothing liquidated yet", style="dim"))
    elif limit is not None and len(names) > limit:
        t.add_row(Text(f"+{len(names) - limit} more", style="dim"))
    return t


def coins_table(rows: Sequence[Mapping[str, Any]], top: int = TOP_COINS,
                windows: Sequence[str] = WINDOWS) -> Table:
    """The ``top`` coins by 1h (then 24h) USD: 1h long/short, then totals of the longer
    windows; ``other`` (every coin the API does not name) last."""
    coins = totals(rows, "coin")
    other = coins.pop("other", None)
    t = _table(f"By coin (top {top})")
    t.add_column("coin", no_wrap=True)
    first = windows[0]
    t.add_column(f"{first} long", justify="right")
    t.add_column(f"{first} short", justify="right")
    t.add_column("L%", justify="right")
    for w in windows[1:]:
        t.add_column(w, justify="right")
    names = ranked(coins, (first, windows[-1]))[:top]
    shown = [(n, coins[n]) for n in names]
    if other is not None and any(window_usd(other, w) > 0 for w in windows):
        shown.append(("other", other))
    for name, tt in shown:
        lo, sh = window_usd(tt, first, "long"), window_usd(tt, first, "short")
        t.add_row(Text(name, style="dim" if name == "other" else ""),
                  usd_text(lo, "long"), usd_text(sh, "short"), share_text(long_share(lo, sh)),
                  *(Text(fmt_usd(window_usd(tt, w))) for w in windows[1:]))
    if not shown:
        t.add_row(Text("nothing liquidated yet", style="dim"))
    return t


def latest_table(liqs: Sequence[Mapping[str, Any]], limit: int) -> Table:
    """The newest liquidations: time (UTC), exchange, symbol, side, price, USD."""
    t = _table("Latest liquidations")
    t.add_column("time", no_wrap=True)
    t.add_column("exchange", no_wrap=True)
    t.add_column("symbol", no_wrap=True, overflow="ellipsis", max_width=16)
    t.add_column("side", no_wrap=True)
    t.add_column("price", justify="right", no_wrap=True)
    t.add_column("USD", justify="right", no_wrap=True)
    for e in liqs[:max(limit, 0)]:
        side = str(e.get("side", ""))
        t.add_row(fmt_clock(e.get("ts")), str(e.get("exchange", "")), str(e.get("symbol", "")),
                  side_text(side), fmt_price(e.get("price")),
                  Text(fmt_dollars(e.get("usd")), style=SIDE_STYLE.get(side, "")))
    if not liqs:
        t.add_row(Text("none yet", style="dim"))
    return t


def sources_table(m: Mapping[str, Samples], now: float, limit: int | None = None
                  ) -> RenderableType:
    """Per venue: up/down, age of the last frame and of the last liquidation, reconnects."""
    up = by_label(m, "liqstress_source_up", "exchange")
    title = "Source health"
    if not up:
        note = ("no collectors in this process (a worker or a replay): source health is on "
                "the collectors' /metrics")
        return Group(Text(title, style="bold"), Text(note, style="dim"))
    last = by_label(m, "liqstress_source_last_message_timestamp_seconds", "exchange")
    last_liq = by_label(m, "liqstress_source_last_liquidation_timestamp_seconds", "exchange")
    sampled = by_label(m, "liqstress_source_sampled", "exchange")
    reconnects = by_label(m, "liqstress_source_reconnects_total", "exchange")
    n_up = sum(1 for v in up.values() if v == 1)
    legend = "; * sampled feed" if any(sampled.get(ex) == 1 for ex in up) else ""
    t = _table(f"{title} ({n_up}/{len(up)} up{legend})")
    t.add_column("exchange", no_wrap=True)
    t.add_column("state", no_wrap=True)
    # two-line headers: the table shares a row with the exchanges on a 160-column terminal
    t.add_column("last\nframe", justify="right", no_wrap=True)
    t.add_column("last\nliq", justify="right", no_wrap=True)
    t.add_column("re-\nconn", justify="right", no_wrap=True)
    # Down first: that is what someone looking at this section wants to see.
    names = sorted(up, key=lambda e: (up[e] == 1, e))
    for ex in names[:limit]:
        is_up = up[ex] == 1
        lm, ll = last.get(ex), last_liq.get(ex)
        name = Text(ex)
        if sampled.get(ex) == 1:
            name.append("*", style="dim")
        t.add_row(name, Text("up", style="green") if is_up else Text("DOWN", style="bold red"),
                  fmt_age(now - lm if lm else None), fmt_age(now - ll if ll else None),
                  f"{reconnects.get(ex, 0):.0f}")
    if limit is not None and len(names) > limit:
        t.add_row(Text(f"+{len(names) - limit} more", style="dim"))
    return t


def _pipeline_line(m: Mapping[str, Samples]) -> Text | None:
    """Kafka sink and embedded broker state, when this process has them."""
    parts = []
    sink = metric(m, "liqstress_sink_up")
    if sink is not None:  # NaN (read as None) in a process without a sink
        parts.append(("kafka sink", sink == 1))
    # The broker gauges of a process without a supervised embedded broker (replay) read 0;
    # the supervisor sets the recycle threshold when it starts.
    broker = metric(m, "liqstress_broker_up")
    if broker is not None and (metric(m, "liqstress_broker_recycle_threshold_bytes") or 0) > 0:
        parts.append(("embedded broker", broker == 1))
    if not parts:
        return None
    t = Text()
    for i, (label, ok) in enumerate(parts):
        t.append(("  " if i else "") + label + " ", style="dim")
        t.append("up" if ok else "DOWN", style="green" if ok else "bold red")
    return t


def _side_by_side(parts: Sequence[RenderableType], width: int, gap: int = 4,
                  min_last: int = 30) -> RenderableType | None:
    """``parts`` in one row: each but the last at its natural width, the last gets the rest;
    None when the rest would be under ``min_last`` columns."""
    if len(parts) < 2:
        return Group(*parts)
    widths = [_width(p, width) for p in parts[:-1]]
    rest = width - sum(widths) - gap * (len(parts) - 1)
    if rest < min(min_last, _width(parts[-1], width)):
        return None
    grid = Table.grid(padding=(0, gap, 0, 0))
    for w in widths:
        grid.add_column(vertical="top", width=w, no_wrap=True)
    grid.add_column(vertical="top", width=rest)
    grid.add_row(*parts)
    return grid


def _console(width: int) -> Console:
    return Console(width=width, file=_Null(), color_system=None, legacy_windows=False)


def _width(r: RenderableType, width: int) -> int:
    console = _console(width)
    return Measurement.get(console, console.options.update(width=width), r).maximum


def _height(r: RenderableType, width: int) -> int:
    console = _console(width)
    return len(console.render_lines(r, console.options.update(width=width), pad=False))


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def render(poll: Poll, width: int = 160, height: int = 50,
           interval: float | None = None) -> RenderableType:
    """One frame of the view for a ``width`` x ``height`` terminal.

    Sections in order of importance: header and status, totals and the stress index,
    exchanges, latest liquidations, coins, source health. Two sections share a row where they
    fit (totals | stress, exchanges | sources, coins | latest on a wide terminal); otherwise
    they stack and the bottom is cropped. Below 130 columns the exchange table shows 1h and
    24h only. The latest liquidations fill the height that is left."""
    m = poll.metrics
    rows = poll.rows or []
    has_windows = bool(rows)
    blank = Text("")
    out: list[RenderableType] = [header(poll), status(poll, interval), blank]
    if poll.error and not m and poll.rows is None:
        return Group(*out, Text("nothing read yet: is `liqstress run` (or a worker) up? --url "
                                "is the port of its /metrics", style="dim"))
    ex_windows = WINDOWS if width >= 130 else NARROW_WINDOWS
    pipeline = _pipeline_line(m)
    sources: RenderableType = sources_table(m, poll.at)
    if pipeline is not None:
        sources = Group(sources, pipeline)

    def stacked(*parts: RenderableType) -> list[RenderableType]:
        return [x for p in parts for x in (p, blank)]

    def row(parts: list[RenderableType], min_last: int = 30) -> list[RenderableType]:
        got = _side_by_side(parts, width, min_last=min_last)
        return [got, blank] if got is not None else stacked(*parts)

    wide_stress = stress_panel(m, columns=2, bar_width=10 if width >= 150 else 5)
    if has_windows:
        cov = coverage_counts(m)
        got = _side_by_side([windows_table(rows, coverage=cov), wide_stress], width,
                            min_last=45)
        if got is None:
            out += stacked(stress_panel(m, columns=3 if width >= 80 else 2, bar_width=5),
                           windows_table(rows, coverage=cov))
        else:
            out += [got, blank]
    else:
        out += stacked(wide_stress)

    if not has_windows:
        if poll.latest is not None:
            out += stacked(latest_table(poll.latest,
                                        max(height - _height(Group(*out), width) - 4, 3)))
        return Group(*out, sources)
    exchanges = exchanges_table(rows, ex_windows)
    side = _side_by_side([exchanges, sources], width, min_last=40)
    coins = coins_table(rows, windows=ex_windows)
    if side is not None:
        out += [side, blank]
    else:
        out += stacked(exchanges)
    if poll.latest is not None:
        room = max(height - _height(Group(*out), width) - 4, 3)
        latest = latest_table(poll.latest, room)
        both = _side_by_side([coins, latest], width, min_last=_width(latest, width))
        if both is not None:
            out += [both, blank]
        else:
            out += stacked(latest, coins)
    else:
        out += stacked(coins)
    if side is None:
        out.append(sources)
    return Group(*out)


# ---- fetching ----------------------------------------------------------------------------------
class Unreachable(Exception):
    """The process could not be read (connection refused, timeout, not HTTP, 5xx on /metrics)."""


def normalize_url(url: str) -> str:
    """``host:port``, ``http://host:port/`` or ``.../metrics`` -> ``http://host:port``."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    url = url.rstrip("/")
    if url.endswith("/metrics"):
        url = url[: -len("/metrics")]
    return url


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    """(status, body); HTTP error statuses are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read() if exc.fp is not None else b""
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        raise Unreachable(f"cannot reach {url}: {str(text).lower()}") from None
    except (TimeoutError, OSError) as exc:
        text = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise Unreachable(f"cannot reach {url}: {text}") from None
    except http.client.HTTPException as exc:  # something that does not speak HTTP
        raise Unreachable(f"{url}: not an HTTP answer ({type(exc).__name__})") from None


def _api(base: str, path: str, timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """(answer, note): the answer of one API route, or why there is none."""
    try:
        code, body = _get(base + path, timeout)
    except Unreachable as exc:  # /metrics answered, the API did not (a stuck loop, a drop)
        return None, str(exc)
    if code == 200:
        try:
            return orjson.loads(body), None
        except orjson.JSONDecodeError:
            return None, f"{path}: not JSON"
    if code == 404:
        return None, ("no worker API here (404: a collector-only process?): showing what "
                      "/metrics has")
    try:
        err = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        err = None
    return None, f"API {path.split('?')[0]}: HTTP {code}{f': {err}' if err else ''}"


def fetch(url: str, latest: int = LATEST_LIMIT, timeout: float = HTTP_TIMEOUT,
          clock: Any = time.time) -> Poll:
    """One poll of the process at ``url``: /metrics, then the API's windows and latest
    liquidations. Raises :class:`Unreachable` when /metrics cannot be read."""
    base = normalize_url(url)
    at = clock()
    code, body = _get(base + "/metrics", timeout)
    if code != 200:
        raise Unreachable(f"{base}/metrics answered HTTP {code}")
    try:
        m = parse_metrics(body.decode("utf-8", "replace"))
    except Exception as exc:  # not a Prometheus exposition: some other server on that port
        raise Unreachable(f"{base}/metrics is not Prometheus text: {exc}") from None
    windows, note = _api(base, f"/api/v1/windows?top={TOP_COINS}", timeout)
    liqs = None
    if windows is not None:
        got, note = _api(base, f"/api/v1/liquidations?limit={latest}", timeout)
        liqs = got.get("liquidations") if got else None
    rows = windows.get("rows") if windows else None
    meta = {k: v for k, v in windows.items() if k not in ("rows", "windows", "coins")} \
        if windows else None
    if rows is None and note is not None:
        rows = rows_from_metrics(m) or None
    return Poll(url=base, at=at, metrics=m, meta=meta, rows=rows, latest=liqs, api_note=note,
                last_ok=at)


def poll_once(url: str, previous: Poll | None = None, clock: Any = time.time) -> Poll:
    """:func:`fetch`, or the previous data marked with the error when the URL is unreachable."""
    try:
        return fetch(url, clock=clock)
    except Unreachable as exc:
        base = normalize_url(url)
        if previous is None:
            return Poll(url=base, at=clock(), error=str(exc))
        return replace(previous, at=clock(), error=str(exc))


# ---- command -----------------------------------------------------------------------------------
def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number, got {text!r} (flag or LIQSTRESS_TOP_INTERVAL)") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"must be > 0, got {text!r} (flag or LIQSTRESS_TOP_INTERVAL)")
    return value


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``top`` sub-command on ``sub`` (build_parser's sub-parsers)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "top", help="live terminal view of a worker: window totals, exchanges, coins, latest "
        "liquidations, stress index, source health (reads its /metrics port)")
    p.add_argument("--url", default=env("TOP_URL", DEFAULT_URL),
                   help=f"the process's /metrics port (default {DEFAULT_URL}) "
                        "[env LIQSTRESS_TOP_URL]")
    p.add_argument("--interval", type=_positive, default=env("TOP_INTERVAL", "2"),
                   help="seconds between polls (default 2) [env LIQSTRESS_TOP_INTERVAL]")
    p.add_argument("--once", action="store_true",
                   help="print one frame to stdout and exit (no alternate screen); exit 2 "
                        "when the URL cannot be read")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "warning"),
                   choices=["debug", "info", "warning", "error"])
    return p


def cmd_top(args: argparse.Namespace) -> int:
    url = normalize_url(args.url)
    if args.once:
        try:
            poll = fetch(url)
        except Unreachable as exc:
            print(f"liqstress: error: {exc}", file=sys.stderr)
            return 2
        size = shutil.get_terminal_size((120, 50))
        console = Console(width=size.columns)
        console.print(render(poll, size.columns, size.lines))
        return 0
    console = Console()
    poll: Poll | None = None
    try:
        with Live(console=console, screen=True, auto_refresh=False,
                  redirect_stdout=False, redirect_stderr=False) as live:
            while True:
                poll = poll_once(url, poll)
                size = console.size
                live.update(render(poll, size.width, size.height, args.interval), refresh=True)
                time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0
