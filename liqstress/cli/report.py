"""``liqstress report FILE --out report.html``: a self-contained HTML report of a recording.

The recording goes through the same parse path as ``normalize`` (:func:`process_recording`);
everything else is the pure core: :class:`WindowStore` + :class:`StressEngine` evaluated every
15 minutes of the recording's time span (the signals over time), :class:`LiquidationLevels`
(USD per 0.25 % price level) and :class:`PriceStore` (the price line of the heatmaps).

Two halves: :func:`compute` turns a recording into a :class:`ReportData` (plain numbers, what
the tests check), :func:`render` turns that into one HTML page. Charts are inline SVG written
here (one function per chart, shared helpers for axes, bars, heat cells and legends): no
JavaScript, no external fonts, images or styles, so the page opens offline, and a
Content-Security-Policy forbids the browser to fetch anything at all. Every bar, cell and point
has a ``<title>`` (its tooltip) and ``data-*`` attributes with the exact numbers.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from liqstress.config import ConfigError
from liqstress.event import DEFAULT_MAX_NOTIONAL_USD, LiquidationEvent
from liqstress.labels import DEFAULT_COIN_ALLOWLIST, SIDES
from liqstress.oi_history import OIHistory
from liqstress.open_interest import OpenInterest
from liqstress.prices import LiquidationLevels, PriceStore, PriceTick
from liqstress.signals import COMPONENTS, DEFAULT_LEVELS, DEFAULT_WEIGHTS
from liqstress.stress import StressEngine, StressSettings
from liqstress.windows import WindowStore, coin_scale, rollup

from .output import compact_usd
from .pipeline import process_recording

HOUR = 3600
#: The signals are evaluated at every multiple of this within the span, and at its end.
SIGNAL_STEP = 900
TOP_COINS = 15
#: Coins that get a price-level heatmap: the largest by USD liquidated.
HEATMAP_COINS = 3
#: At most this many rows per heatmap: more 0.25 % levels are merged in groups.
HEATMAP_MAX_ROWS = 48
LARGEST = 10

LONG_COLOR = "#d9434b"
SHORT_COLOR = "#1f9e6e"
SIDE_COLOR = {"long": LONG_COLOR, "short": SHORT_COLOR}
SIDE_NAME = {"long": "longs liquidated", "short": "shorts liquidated"}
INK = "#1d2330"
MUTED = "#667085"
GRID = "#e4e7ec"
LEVEL_COLOR = {"low": "#eef6ee", "elevated": "#fdf6dc", "high": "#fde7d2", "extreme": "#fbd9d9"}
DELEVERAGING_COLOR = {"calm": "#cfd6df", "staged": "#f0a33a", "capitulation": "#8e1b1b"}
INDEX_COLOR = "#3b3f8f"
#: Heatmap ramp, light to dark (USD per cell, square-root scale).
HEAT_STOPS = ("#fff4d6", "#fdc372", "#f0793c", "#c2374f", "#6b1f6e", "#2d0f47")


# ---- the numbers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Liquidation:
    ts: float
    exchange: str
    symbol: str
    side: str
    price: float
    usd: float


@dataclass
class SignalPoint:
    ts: float
    index: float
    level: str
    coverage: float
    components: dict[str, float | None]
    long_share: float | None
    spike: dict[str, float | None]
    deleveraging: str
    cascade: list[str]


@dataclass
class Heatmap:
    coin: str
    bucket_pct: float
    #: rows bottom (cheapest) first: (low, high) price bounds
    rows: list[tuple[float, float]]
    #: (row, hour column) -> [long USD, short USD]; only cells with USD
    cells: dict[tuple[int, int], list[float]]
    #: the coin's price at each signal step where one was known: (ts, price)
    prices: list[tuple[float, float]]
    levels_per_row: int = 1


@dataclass
class ReportData:
    source: str
    start: float
    end: float
    #: hour starts (UTC), oldest first
    hours: list[float]
    #: side -> USD per hour
    hourly: dict[str, list[float]]
    #: exchange -> side -> USD, largest total first
    by_exchange: dict[str, dict[str, float]]
    #: (coin, long USD, short USD): the TOP_COINS largest, then "other" if any is left
    by_coin: list[tuple[str, float, float]]
    largest: list[Liquidation]
    heatmaps: list[Heatmap]
    signals: list[SignalPoint]
    counts: dict[str, int]
    deadletter_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> dict[str, float]:
        return {side: sum(self.hourly[side]) for side in SIDES}


def hour_of(ts: float) -> float:
    return math.floor(ts / HOUR) * HOUR


def compute(path: str | Path, max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD) -> ReportData:
    """Everything the report shows, from the recording at ``path``."""
    lines = 0

    def on_progress(lineno: int) -> None:
        nonlocal lines
        lines = lineno

    with open(path, "rb") as fh:
        proc = process_recording(fh, lambda _n, _m: None, on_progress=on_progress,
                                 max_notional_usd=max_notional_usd)
    seen: set[str] = set()
    events: list[LiquidationEvent] = []
    for ev in sorted(proc.events, key=lambda e: e.ts):
        if ev.id not in seen:  # counted once, as the windows count it
            seen.add(ev.id)
            events.append(ev)
    ticks = sorted(proc.prices, key=lambda t: t.ts)
    stamps = [e.ts for e in events] + [t.ts for t in ticks]
    end = max([proc.last_recv_ts or 0.0, *stamps]) if stamps or proc.last_recv_ts else 0.0
    start = min(stamps) if stamps else end
    first, last = hour_of(start), max(hour_of(start), math.ceil(end / HOUR) * HOUR - HOUR)
    hours = [first + HOUR * i for i in range(int((last - first) // HOUR) + 1)]

    hourly = {side: [0.0] * len(hours) for side in SIDES}
    by_exchange: dict[str, dict[str, float]] = {}
    by_coin: dict[str, dict[str, float]] = {}
    priced = [e for e in events if e.notional_usd is not None]
    for ev in priced:
        usd = float(ev.notional_usd)  # type: ignore[arg-type]
        hourly[ev.side][int((hour_of(ev.ts) - first) // HOUR)] += usd
        by_exchange.setdefault(ev.exchange, dict.fromkeys(SIDES, 0.0))[ev.side] += usd
        coin = coin_scale(ev.base)[0]
        by_coin.setdefault(coin, dict.fromkeys(SIDES, 0.0))[ev.side] += usd
    coins_ranked = sorted(by_coin, key=lambda c: (-sum(by_coin[c].values()), c))
    largest = [Liquidation(e.ts, e.exchange, e.symbol, e.side, e.price, float(e.notional_usd))
               for e in sorted(priced, key=lambda e: -float(e.notional_usd))[:LARGEST]]  # type: ignore[arg-type]

    heat_coins = coins_ranked[:HEATMAP_COINS]
    oi = sorted(proc.open_interest, key=lambda r: r.ts)
    signals, price_lines = _signals_over_time(events, ticks, start, end, heat_coins, oi)
    counts = {"lines": lines, "events": len(events), "duplicates": len(proc.events) - len(events),
              "unpriced": len(events) - len(priced), "price_ticks": len(ticks),
              "deadletters": len(proc.deadletters), "snapshot_dropped": proc.snapshot_dropped,
              "exchanges": len(by_exchange), "coins": len(by_coin)}
    return ReportData(
        source=str(path), start=start, end=end, hours=hours, hourly=hourly,
        by_exchange={ex: by_exchange[ex] for ex in
                     sorted(by_exchange, key=lambda x: (-sum(by_exchange[x].values()), x))},
        by_coin=_top_coins(by_coin, coins_ranked),
        largest=largest,
        heatmaps=[_heatmap(coin, priced, hours, end, price_lines.get(coin, []))
                  for coin in heat_coins],
        signals=signals, counts=counts,
        deadletter_reasons=dict(Counter(str(d.get("reason", "?")) for d in proc.deadletters)))


def _top_coins(by_coin: dict[str, dict[str, float]],
               ranked: list[str]) -> list[tuple[str, float, float]]:
    out = [(c, by_coin[c]["long"], by_coin[c]["short"]) for c in ranked[:TOP_COINS]]
    rest = ranked[TOP_COINS:]
    if rest:
        out.append((f"other ({len(rest)})", sum(by_coin[c]["long"] for c in rest),
                    sum(by_coin[c]["short"] for c in rest)))
    return out


def signal_steps(start: float, end: float, step: float = SIGNAL_STEP) -> list[float]:
    """Every multiple of ``step`` after ``start`` and before ``end``, then ``end``."""
    out: list[float] = []
    t = math.floor(start / step) * step + step
    while t < end:
        out.append(t)
        t += step
    return [*out, end]


def _signals_over_time(events: Sequence[LiquidationEvent], ticks: Sequence[PriceTick],
                       start: float, end: float, price_coins: Iterable[str],
                       oi: Sequence[OpenInterest] = (),
                       ) -> tuple[list[SignalPoint], dict[str, list[tuple[float, float]]]]:
    """The worker's evaluation replayed: events, price ticks and open-interest records (each
    sorted by time) enter a WindowStore, LiquidationLevels, PriceStore and OIHistory up to each
    step, then the StressEngine reads them at that step, as a worker on the event clock would."""
    store, levels, prices, history = WindowStore(), LiquidationLevels(), PriceStore(), OIHistory()
    k = 0
    engine = StressEngine(StressSettings())
    coins = tuple(DEFAULT_COIN_ALLOWLIST)
    price_lines: dict[str, list[tuple[float, float]]] = {c: [] for c in price_coins}
    out: list[SignalPoint] = []
    i = j = 0
    if not events and not ticks:
        return out, price_lines
    for t in signal_steps(start, end):
        while j < len(ticks) and ticks[j].ts <= t:
            prices.add(ticks[j])
            j += 1
        while k < len(oi) and oi[k].ts <= t:
            history.apply(oi[k])
            k += 1
        while i < len(events) and events[i].ts <= t:
            ev = events[i]
            i += 1
            if store.add(ev, t):
                coin, units = coin_scale(ev.base)
                levels.add(coin, ev.price / units, ev.side, ev.notional_usd, ev.ts, t)
        store.prune(t)
        levels.prune(t)
        prices.prune(t)
        roll = rollup([store.table], t, coins)
        history.prune(t)
        res = engine.evaluate(roll.snapshot(store.events, store.exchanges), roll.hourly,
                              prices=prices, levels=levels, coin_hourly=roll.coin_hourly,
                              coins=coins, oi=history)
        out.append(SignalPoint(
            ts=t, index=res.index.value, level=res.index.level, coverage=res.index.coverage,
            components=dict(res.index.components),
            long_share=res.imbalance["1h"].long_share,
            spike={side: res.spike[side].multiple for side in SIDES},
            deleveraging=res.deleveraging.label,
            cascade=[side for side in SIDES if res.cascades[side].active]))
        for coin, line in price_lines.items():
            p = prices.price_at(coin, t)
            if p is not None:
                line.append((t, p))
    return out, price_lines


def _heatmap(coin: str, priced: Sequence[LiquidationEvent], hours: list[float], end: float,
             price_line: list[tuple[float, float]]) -> Heatmap:
    """USD per 0.25 % price level and hour: one LiquidationLevels spanning the recording,
    read back an hour at a time."""
    first = hours[0]
    levels = LiquidationLevels(horizon=end - first + 2 * HOUR)
    for ev in priced:
        c, units = coin_scale(ev.base)
        if c == coin:
            levels.add(coin, ev.price / units, ev.side, ev.notional_usd, ev.ts, end)
    g = 1.0 + levels.bucket_pct / 100.0
    per_hour: list[dict[int, list[float]]] = []
    for h in hours:
        acc: dict[int, list[float]] = {}
        levels.accumulate(coin, h + HOUR - 1, HOUR, acc)
        per_hour.append(acc)
    ks = {k for acc in per_hour for k in acc}
    ks |= {math.floor(math.log(p) / math.log(g)) for _, p in price_line}
    if not ks:
        return Heatmap(coin, levels.bucket_pct, [], {}, price_line)
    k0, k1 = min(ks), max(ks)
    group = max(1, math.ceil((k1 - k0 + 1) / HEATMAP_MAX_ROWS))
    n_rows = (k1 - k0) // group + 1
    rows = [(g ** (k0 + r * group), g ** (k0 + (r + 1) * group)) for r in range(n_rows)]
    cells: dict[tuple[int, int], list[float]] = {}
    for col, acc in enumerate(per_hour):
        for k, (lu, su) in acc.items():
            cell = cells.setdefault(((k - k0) // group, col), [0.0, 0.0])
            cell[0] += lu
            cell[1] += su
    return Heatmap(coin, levels.bucket_pct, rows, cells, price_line, levels_per_row=group)


# ---- formatting for people -----------------------------------------------------------------
def fmt_usd(v: float, axis: bool = False) -> str:
    """$3.50M, $36.0M, $230M, $12.3k, $950; ``axis``: without trailing zeros ($50M, $2.5M)."""
    text = compact_usd(v, big_decimals=0).replace(",", "")  # "$1234B" keeps the chart narrow
    if axis and "." in text:
        number, unit = text.rstrip("kMB"), text[len(text.rstrip("kMB")):]
        text = number.rstrip("0").rstrip(".") + unit
    return f"${text}"


def fmt_price(p: float) -> str:
    if p >= 1000:
        return f"{p:,.0f}"
    if p >= 1:
        return f"{p:,.{max(0, 3 - int(math.log10(p)))}f}"
    return f"{p:.{3 - math.floor(math.log10(p))}f}"


def fmt_time(ts: float, fmt: str = "%Y-%m-%d %H:%M UTC") -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(fmt)


def fmt_duration(seconds: float) -> str:
    h, m = divmod(round(seconds / 60), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def fmt_share(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def fmt_multiple(x: float | None) -> str:
    if x is None:
        return "n/a"
    return "∞ (no baseline)" if math.isinf(x) else f"{x:,.1f}×"


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


# ---- SVG helpers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """Linear map of the domain [d0, d1] onto the range [r0, r1]."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, v: float) -> float:
        if self.d1 == self.d0:
            return self.r0
        return self.r0 + (v - self.d0) * (self.r1 - self.r0) / (self.d1 - self.d0)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 × a power of ten apart)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    count = math.ceil((hi - first) / step - 1e-9)
    return [first + i * step for i in range(count + 1)]


def _attrs(**kw: object) -> str:
    """``key="value"`` pairs; ``data_x`` becomes ``data-x``, ``cls`` ``class``; None skipped."""
    out = []
    for k, v in kw.items():
        if v is None:
            continue
        name = "class" if k == "cls" else k.replace("_", "-")
        if isinstance(v, float):
            v = f"{v:.2f}".rstrip("0").rstrip(".") if name in _GEOMETRY else repr(v)
        out.append(f'{name}="{esc(v)}"')
    return " ".join(out)


_GEOMETRY = {"x", "y", "width", "height", "x1", "x2", "y1", "y2", "cx", "cy", "r"}


class Svg:
    """An accessible inline SVG: ``role="img"`` labelled by its ``<title>`` and ``<desc>``."""

    def __init__(self, ident: str, width: int, height: int, title: str, desc: str) -> None:
        self.ident, self.width, self.height = ident, width, height
        self.title, self.desc = title, desc
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def rect(self, x: float, y: float, w: float, h: float, fill: str, tip: str | None = None,
             **kw: object) -> None:
        body = f"<title>{esc(tip)}</title>" if tip else ""
        self.add(f"<rect {_attrs(x=x, y=y, width=max(w, 0.0), height=max(h, 0.0), fill=fill, **kw)}>"
                 f"{body}</rect>")

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = GRID,
             **kw: object) -> None:
        self.add(f"<line {_attrs(x1=x1, y1=y1, x2=x2, y2=y2, stroke=stroke, **kw)}/>")

    def text(self, x: float, y: float, text: str, anchor: str = "start", **kw: object) -> None:
        self.add(f"<text {_attrs(x=x, y=y, text_anchor=anchor, **kw)}>{esc(text)}</text>")

    def path(self, points: Sequence[tuple[float, float]], stroke: str, width: float = 2,
             **kw: object) -> None:
        if len(points) < 2:
            return
        d = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.add(f'<path d="{d}" {_attrs(fill="none", stroke=stroke, stroke_width=width, **kw)}/>')

    def dot(self, x: float, y: float, fill: str, tip: str, **kw: object) -> None:
        self.add(f"<circle {_attrs(cx=x, cy=y, r=3.0, fill=fill, **kw)}>"
                 f"<title>{esc(tip)}</title></circle>")

    def render(self) -> str:
        t, d = f"{self.ident}-title", f"{self.ident}-desc"
        return (f'<svg id="{self.ident}" class="chart" viewBox="0 0 {self.width} {self.height}" '
                f'width="{self.width}" height="{self.height}" role="img" '
                f'aria-labelledby="{t} {d}" xmlns="http://www.w3.org/2000/svg">'
                f'<title id="{t}">{esc(self.title)}</title><desc id="{d}">{esc(self.desc)}</desc>'
                + "".join(self.parts) + "</svg>")


@dataclass(frozen=True)
class Frame:
    """The plot area of a chart inside its SVG."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


def y_axis(svg: Svg, frame: Frame, scale: Scale, ticks: Iterable[float],
           fmt: Callable[[float], str], grid: bool = True) -> None:
    """Gridlines and labels on the left of ``frame``."""
    for v in ticks:
        y = scale(v)
        if grid:
            svg.line(frame.left, y, frame.right, y, cls="grid")
        svg.text(frame.left - 6, y + 4, fmt(v), anchor="end", cls="tick")


def time_axis(svg: Svg, frame: Frame, scale: Scale, start: float, end: float,
              labels: bool = True) -> None:
    """Hour ticks below ``frame``, spaced so labels do not collide; dates under midnight and
    under the first label."""
    px_per_hour = frame.width / max((end - start) / HOUR, 1e-9)
    every = next((n for n in (1, 2, 3, 4, 6, 12, 24, 48, 168) if n * px_per_hour >= 56), 336)
    t = math.ceil(start / (every * HOUR)) * every * HOUR
    svg.line(frame.left, frame.bottom, frame.right, frame.bottom, stroke=MUTED)
    first = True
    while t <= end:
        x = scale(t)
        svg.line(x, frame.bottom, x, frame.bottom + 4, stroke=MUTED)
        if labels:
            svg.text(x, frame.bottom + 16, fmt_time(t, "%H:%M"), anchor="middle", cls="tick")
            if first or fmt_time(t, "%H") == "00":
                svg.text(x, frame.bottom + 29, fmt_time(t, "%b %d"), anchor="middle", cls="tick")
        first = False
        t += every * HOUR


def legend(svg: Svg, items: Sequence[tuple[str, str]], x: float, y: float) -> None:
    """Colour swatches with their names in one row from (x, y)."""
    for color, name in items:
        svg.rect(x, y - 9, 12, 12, color, cls="swatch")
        svg.text(x + 17, y + 1, name, cls="legend")
        x += 30 + 6.6 * len(name)


def heat_color(frac: float) -> str:
    """The HEAT_STOPS ramp at ``frac`` in [0, 1]."""
    frac = min(1.0, max(0.0, frac)) * (len(HEAT_STOPS) - 1)
    i = min(int(frac), len(HEAT_STOPS) - 2)
    a, b = (tuple(int(c[k:k + 2], 16) for k in (1, 3, 5)) for c in HEAT_STOPS[i:i + 2])
    f = frac - i
    return "#" + "".join(f"{round(p + (q - p) * f):02x}" for p, q in zip(a, b, strict=True))


def _heat_frac(usd: float, peak: float) -> float:
    """Where ``usd`` sits on the ramp: square-root scale, the lightest stop left for the
    background so the smallest cell still shows."""
    return 0.12 + 0.88 * math.sqrt(usd / peak) if peak > 0 else 0.0


def stacked_columns(svg: Svg, frame: Frame, scale: Scale, x: float, w: float,
                    values: dict[str, float], tip: str, **data: object) -> None:
    """One stacked column (long at the bottom, short above) at ``x`` of width ``w``."""
    y = frame.bottom
    for side in SIDES:
        v = values[side]
        if v <= 0:
            continue
        top = y - (frame.bottom - scale(v))
        svg.rect(x, top, w, y - top, SIDE_COLOR[side], f"{tip} · {SIDE_NAME[side]} {fmt_usd(v)}",
                 cls=f"bar {side}", data_side=side, data_usd=v, **data)
        y = top


def stacked_rows(svg: Svg, frame: Frame, scale: Scale, y: float, h: float,
                 values: dict[str, float], tip: str, **data: object) -> None:
    """One stacked horizontal bar (long from the left, short after it) at ``y``."""
    x = frame.left
    for side in SIDES:
        v = values[side]
        if v <= 0:
            continue
        w = scale(v) - frame.left
        svg.rect(x, y, w, h, SIDE_COLOR[side], f"{tip} · {SIDE_NAME[side]} {fmt_usd(v)}",
                 cls=f"bar {side}", data_side=side, data_usd=v, **data)
        x += w


def series_path(svg: Svg, xs: Scale, ys: Scale, points: Sequence[tuple[float, float | None]],
                stroke: str, width: float = 2, **kw: object) -> None:
    """A line through the points, broken where a value is None."""
    run: list[tuple[float, float]] = []
    for t, v in [*points, (math.nan, None)]:
        if v is None:
            svg.path(run, stroke, width, **kw)
            run = []
        else:
            run.append((xs(t), ys(v)))


def _time_scale(data: ReportData, frame: Frame) -> Scale:
    return Scale(data.hours[0], data.hours[-1] + HOUR, frame.left, frame.right)


# ---- the charts ----------------------------------------------------------------------------
WIDE = 1160
#: Left margin of the full-width time charts: their hours line up one under the other.
LEFT = 92
HALF = 570


def chart_hourly(data: ReportData) -> str:
    svg = Svg("hourly", WIDE, 330, "Liquidated USD per hour, longs and shorts",
              f"Stacked bars per UTC hour from {fmt_time(data.hours[0])}: "
              f"{fmt_usd(data.total['long'])} of longs and {fmt_usd(data.total['short'])} of "
              f"shorts liquidated in all.")
    frame = Frame(LEFT, 34, WIDE - 16, 290)
    top = max([lng + sht for lng, sht in zip(data.hourly["long"], data.hourly["short"],
                                             strict=True)] + [1.0])
    ticks = nice_ticks(0, top)
    ys = Scale(0, ticks[-1], frame.bottom, frame.top)
    y_axis(svg, frame, ys, ticks, lambda v: fmt_usd(v, axis=True))
    xs = _time_scale(data, frame)
    col = frame.width / len(data.hours)
    pad = min(col * 0.15, 6)
    for i, h in enumerate(data.hours):
        values = {side: data.hourly[side][i] for side in SIDES}
        stacked_columns(svg, frame, ys, xs(h) + pad, col - 2 * pad, values,
                        f"{fmt_time(h)}", data_hour=int(h))
    time_axis(svg, frame, xs, data.hours[0], data.hours[-1] + HOUR)
    legend(svg, [(LONG_COLOR, "longs liquidated"), (SHORT_COLOR, "shorts liquidated")],
           frame.left, 16)
    return svg.render()


def _ranked_bars(ident: str, title: str, desc: str,
                 rows: Sequence[tuple[str, float, float]]) -> str:
    """Horizontal stacked long/short bars, one row per name (exchange or coin)."""
    row_h = 24
    frame = Frame(96, 30, HALF - 80, 30 + row_h * max(len(rows), 1))
    svg = Svg(ident, HALF, int(frame.bottom) + 34, title, desc)
    top = max([lng + sht for _, lng, sht in rows] + [1.0])
    ticks = nice_ticks(0, top, 4)
    xs = Scale(0, ticks[-1], frame.left, frame.right)
    for v in ticks:
        svg.line(xs(v), frame.top, xs(v), frame.bottom, cls="grid")
        svg.text(xs(v), frame.bottom + 16, fmt_usd(v, axis=True), anchor="middle", cls="tick")
    for i, (name, lng, sht) in enumerate(rows):
        y = frame.top + i * row_h
        svg.text(frame.left - 8, y + row_h / 2 + 4, name, anchor="end", cls="label")
        stacked_rows(svg, frame, xs, y + 4, row_h - 8, {"long": lng, "short": sht}, name,
                     data_name=name)
        svg.text(xs(lng + sht) + 6, y + row_h / 2 + 4, fmt_usd(lng + sht), cls="value")
    legend(svg, [(LONG_COLOR, "longs"), (SHORT_COLOR, "shorts")], frame.left, 16)
    return svg.render()


def chart_by_exchange(data: ReportData) -> str:
    rows = [(ex, s["long"], s["short"]) for ex, s in data.by_exchange.items()]
    lead = ", ".join(f"{ex} {fmt_usd(lng + sht)}" for ex, lng, sht in rows[:3])
    return _ranked_bars("by-exchange", "Liquidated USD by exchange",
                        f"{len(rows)} exchanges, largest first: {lead}.", rows)


def chart_by_coin(data: ReportData) -> str:
    lead = ", ".join(f"{c} {fmt_usd(lng + sht)}" for c, lng, sht in data.by_coin[:3])
    return _ranked_bars("by-coin", f"Liquidated USD by coin (top {TOP_COINS})",
                        f"{data.counts['coins']} coins, largest first: {lead}.", data.by_coin)


def chart_heatmap(data: ReportData, hm: Heatmap) -> str:
    cell_h = min(14.0, max(5.0, 330 / max(len(hm.rows), 1)))
    frame = Frame(LEFT, 34, WIDE - 16, 34 + cell_h * len(hm.rows))
    width = f"{hm.bucket_pct * hm.levels_per_row:g} %"
    svg = Svg(f"heatmap-{hm.coin}", WIDE, int(frame.bottom) + 40,
              f"{hm.coin}: liquidated USD by price level ({width}) and hour",
              f"Each cell is the USD of {hm.coin} liquidations (both sides) at one {width} price "
              f"level in one UTC hour, darker for more; the line is {hm.coin}'s price."
              if hm.prices else f"Each cell is the USD of {hm.coin} liquidations (both sides) "
              f"at one {width} price level in one UTC hour, darker for more.")
    xs = _time_scale(data, frame)
    col = frame.width / len(data.hours)
    lo, hi = (hm.rows[0][0], hm.rows[-1][1]) if hm.rows else (1.0, 2.0)
    ys = Scale(math.log(lo), math.log(hi), frame.bottom, frame.top)
    svg.rect(frame.left, frame.top, frame.width, frame.height, "#fafbfc", cls="plot")
    label_every = max(1, math.ceil(22 / cell_h))
    for r, (p0, p1) in enumerate(hm.rows):
        if r % label_every == 0:
            svg.text(frame.left - 6, ys(math.log(p0)) - cell_h / 2 + 4,
                     fmt_price(math.sqrt(p0 * p1)), anchor="end", cls="tick")
    peak = max((lu + su for lu, su in hm.cells.values()), default=1.0)
    for (r, c), (lu, su) in sorted(hm.cells.items()):
        p0, p1 = hm.rows[r]
        total = lu + su
        svg.rect(frame.left + c * col, ys(math.log(p1)), col, cell_h,
                 heat_color(_heat_frac(total, peak)),
                 f"{hm.coin} {fmt_price(p0)}–{fmt_price(p1)}, {fmt_time(data.hours[c])}: "
                 f"{fmt_usd(total)} (longs {fmt_usd(lu)}, shorts {fmt_usd(su)})",
                 cls="heat-cell", data_hour=int(data.hours[c]), data_low=p0, data_usd=total,
                 data_long=lu, data_short=su)
    if hm.prices:
        line = [(xs(t), ys(math.log(p))) for t, p in hm.prices]
        svg.path(line, "#fff", 3.5, cls="price-halo", stroke_opacity=0.8)
        svg.path(line, INK, 1.3, cls="price-line")
    time_axis(svg, frame, xs, data.hours[0], data.hours[-1] + HOUR)
    items = [(heat_color(_heat_frac(v, peak)), fmt_usd(v)) for v in (peak / 64, peak / 16, peak / 4)]
    items += [(heat_color(1.0), f"{fmt_usd(peak)} per cell")]
    legend(svg, [*items, *([(INK, f"{hm.coin} price")] if hm.prices else [])], frame.left, 16)
    return svg.render()


def chart_stress(data: ReportData) -> str:
    """The stress index with its level bands, then strips for deleveraging and cascades."""
    pts = data.signals
    last = pts[-1]
    svg = Svg("stress", WIDE, 360, "Stress index over time (0–100)",
              f"The composite stress index every {SIGNAL_STEP // 60} minutes; at the end "
              f"{last.index:.1f} ({last.level}), deleveraging {last.deleveraging}.")
    frame = Frame(LEFT, 34, WIDE - 16, 250)
    xs = _time_scale(data, frame)
    ys = Scale(0, 100, frame.bottom, frame.top)
    bounds = [lo for lo, _ in DEFAULT_LEVELS]
    for (lo, name), hi in zip(DEFAULT_LEVELS, [100.0, *bounds[:-1]], strict=True):
        svg.rect(frame.left, ys(hi), frame.width, ys(lo) - ys(hi), LEVEL_COLOR[name],
                 f"{name}: {lo:g}–{hi:g}", cls="band")
        svg.text(frame.left + 6, ys(hi) + 14, name, cls="band-label")
    y_axis(svg, frame, ys, [0, 25, 50, 75, 100], lambda v: f"{v:g}")
    series_path(svg, xs, ys, [(p.ts, p.index) for p in pts], INDEX_COLOR, 2.2, cls="index-line")
    for p in pts:
        svg.dot(xs(p.ts), ys(p.index), INDEX_COLOR,
                f"{fmt_time(p.ts)}: index {p.index:.1f} ({p.level}), coverage "
                f"{p.coverage:.0%}, deleveraging {p.deleveraging}"
                + (f", cascade {' and '.join(p.cascade)}" if p.cascade else ""),
                cls="pt", data_ts=p.ts, data_index=p.index)
    # One strip cell per step, from the previous step (the first: a step back).
    strips = (("deleveraging", 268, lambda p: (DELEVERAGING_COLOR[p.deleveraging],
                                                 f"deleveraging {p.deleveraging}")),
              ("cascade", 290, lambda p: ((LONG_COLOR if "long" in p.cascade else SHORT_COLOR),
                                          f"cascade of {' and '.join(p.cascade)}")
               if p.cascade else None))
    for name, y, style in strips:
        svg.text(frame.left - 6, y + 12, name, anchor="end", cls="tick")
        svg.rect(frame.left, y, frame.width, 16, "#f2f4f7", cls="strip-bg")
        for k, p in enumerate(pts):
            got = style(p)
            if got is None:
                continue
            t0 = pts[k - 1].ts if k else max(p.ts - SIGNAL_STEP, data.hours[0])
            svg.rect(xs(t0), y, xs(p.ts) - xs(t0), 16, got[0],
                     f"{fmt_time(t0, '%H:%M')}–{fmt_time(p.ts)}: {got[1]}", cls=f"strip {name}")
    time_axis(svg, Frame(frame.left, frame.top, frame.right, 312), xs, data.hours[0],
              data.hours[-1] + HOUR)
    legend(svg, [(INDEX_COLOR, "stress index"),
                 *[(c, f"deleveraging: {n}") for n, c in DELEVERAGING_COLOR.items()],
                 (LONG_COLOR, "long cascade"), (SHORT_COLOR, "short cascade")], frame.left, 16)
    return svg.render()


def chart_long_share(data: ReportData) -> str:
    pts = data.signals
    svg = Svg("long-share", HALF, 250, "Long share of the last hour's liquidations",
              f"Longs / (longs + shorts) over the trailing hour; at the end "
              f"{fmt_share(pts[-1].long_share)}. 50 % is balanced.")
    frame = Frame(52, 30, HALF - 14, 200)
    xs = _time_scale(data, frame)
    ys = Scale(0, 1, frame.bottom, frame.top)
    y_axis(svg, frame, ys, [0, 0.25, 0.5, 0.75, 1.0], lambda v: f"{v:.0%}")
    svg.line(frame.left, ys(0.5), frame.right, ys(0.5), stroke=MUTED, stroke_dasharray="4 3")
    series_path(svg, xs, ys, [(p.ts, p.long_share) for p in pts], LONG_COLOR, 2,
                cls="long-share-line")
    time_axis(svg, frame, xs, data.hours[0], data.hours[-1] + HOUR)
    legend(svg, [(LONG_COLOR, "long share, 1 h")], frame.left, 16)
    return svg.render()


def chart_spike(data: ReportData) -> str:
    """Spike multiples per side on a log axis; +inf (no baseline) is drawn at the top."""
    pts = data.signals
    factor = StressSettings().spike_factor
    finite = [v for p in pts for v in p.spike.values() if v is not None and math.isfinite(v)]
    top = 10 ** math.ceil(math.log10(max([factor * 3, *finite])))
    svg = Svg("spike", HALF, 250, "Spike multiple: this hour against the median hour",
              f"The current hour's USD over the median of the previous 24 hours, per side "
              f"(log scale); {factor:g}× and at least {fmt_usd(StressSettings().spike_min_usd)} "
              f"flags a spike; ticks along the top mark a zero baseline (∞). At the end: "
              f"longs {fmt_multiple(pts[-1].spike['long'])}, shorts "
              f"{fmt_multiple(pts[-1].spike['short'])}.")
    frame = Frame(52, 40, HALF - 14, 200)
    xs = _time_scale(data, frame)
    floor = 0.1
    ys = Scale(math.log10(floor), math.log10(top), frame.bottom, frame.top)
    decades = [10.0 ** e for e in range(-1, round(math.log10(top)) + 1)]
    y_axis(svg, frame, _LogScale(ys), decades,
           lambda v: f"{v:g}×")
    svg.line(frame.left, ys(math.log10(factor)), frame.right, ys(math.log10(factor)),
             stroke=MUTED, stroke_dasharray="4 3")
    for k, side in enumerate(SIDES):
        values = [p.spike[side] for p in pts]
        series_path(svg, xs, ys, [(p.ts, None if v is None or math.isinf(v)
                                   else math.log10(min(top, max(floor, v))))
                                  for p, v in zip(pts, values, strict=True)],
                    SIDE_COLOR[side], 2, cls=f"spike-line {side}")
        for p, v in zip(pts, values, strict=True):
            if v is not None and math.isinf(v):  # a zero baseline: no multiple to draw
                svg.rect(xs(p.ts) - 1.5, frame.top - 8 + 4 * k, 3, 4, SIDE_COLOR[side],
                         f"{fmt_time(p.ts)}: {side}s over a zero baseline (∞)", cls="inf")
    time_axis(svg, frame, xs, data.hours[0], data.hours[-1] + HOUR)
    legend(svg, [(LONG_COLOR, "longs"), (SHORT_COLOR, "shorts"), (MUTED, f"{factor:g}× flag")],
           frame.left, 16)
    return svg.render()


class _LogScale:
    """A Scale over log10 values called with plain values (for axis ticks)."""

    def __init__(self, inner: Scale) -> None:
        self.inner = inner

    def __call__(self, v: float) -> float:
        return self.inner(math.log10(v))


def chart_components(data: ReportData) -> str:
    """Small multiples: each index component in [0, 1] over time, with its weight."""
    per_row, panel_w, panel_h = 5, WIDE // 5, 112
    n_rows = math.ceil(len(COMPONENTS) / per_row)
    svg = Svg("components", WIDE, n_rows * panel_h + 8, "Stress index components over time",
              "Each component of the index in [0, 1] (missing where its input is not "
              "available, e.g. price signals without price frames); w is its weight.")
    for i, name in enumerate(COMPONENTS):
        x0 = (i % per_row) * panel_w
        y0 = (i // per_row) * panel_h
        frame = Frame(x0 + 30, y0 + 24, x0 + panel_w - 12, y0 + panel_h - 22)
        svg.text(x0 + 30, y0 + 14, f"{name} (w {DEFAULT_WEIGHTS[name]:.2f})", cls="label")
        svg.rect(frame.left, frame.top, frame.width, frame.height, "#f7f8fa", cls="plot")
        xs = _time_scale(data, frame)
        ys = Scale(0, 1, frame.bottom, frame.top)
        y_axis(svg, frame, ys, [0, 1], lambda v: f"{v:g}")
        series_path(svg, xs, ys, [(p.ts, p.components.get(name)) for p in data.signals],
                    INDEX_COLOR, 1.6, cls="component-line", data_component=name)
        time_axis(svg, frame, xs, data.hours[0], data.hours[-1] + HOUR, labels=False)
        last = data.signals[-1].components.get(name)
        svg.text(frame.right, y0 + 14, "n/a" if last is None else f"{last:.2f}",
                 anchor="end", cls="value")
    return svg.render()


# ---- the page ------------------------------------------------------------------------------
STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1d2330; background: #f4f5f7; margin: 0; }
main { max-width: 1200px; margin: 0 auto; padding: 20px; }
h1 { font-size: 24px; margin: 4px 0 2px; }
h2 { font-size: 17px; margin: 0 0 4px; }
p.note, p.sub { color: #667085; margin: 0 0 10px; }
section, header { background: #fff; border: 1px solid #e4e7ec; border-radius: 8px;
                  padding: 14px 18px; margin-bottom: 16px; }
.row { display: flex; gap: 16px; align-items: flex-start; }
.row > section { flex: 1; min-width: 0; }
.cards { display: grid; grid-template-columns: repeat(6, 1fr); gap: 10px; margin: 12px 0; }
.card { border: 1px solid #e4e7ec; border-radius: 6px; padding: 8px 10px; }
.card b { display: block; font-size: 18px; }
.card span { color: #667085; font-size: 12px; }
.card .long { color: #d9434b; } .card .short { color: #1f9e6e; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 6px 0; }
th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eef0f3; }
td.num, th.num { text-align: right; }
svg.chart { display: block; max-width: 100%; height: auto; font-family: inherit; }
svg .grid { stroke: #e4e7ec; }
svg .tick { font-size: 11px; fill: #667085; }
svg .label, svg .legend { font-size: 12px; fill: #1d2330; }
svg .value { font-size: 11px; fill: #1d2330; }
svg .band-label { font-size: 11px; fill: #98a2b3; }
svg .bar, svg .heat-cell, svg .strip { shape-rendering: crispEdges; }
.side-long { color: #d9434b; } .side-short { color: #1f9e6e; }
footer { color: #667085; font-size: 12px; text-align: center; padding: 8px; }
"""


def _section(title: str, note: str, body: str, ident: str) -> str:
    return (f'<section aria-labelledby="{ident}-h"><h2 id="{ident}-h">{esc(title)}</h2>'
            f'<p class="note">{esc(note)}</p>{body}</section>')


def _header(data: ReportData) -> str:
    c = data.counts
    total = data.total
    cards = [
        (fmt_usd(total["long"]), "longs liquidated", "long"),
        (fmt_usd(total["short"]), "shorts liquidated", "short"),
        (f"{c['events']:,}", f"events ({c['unpriced']:,} unpriced, {c['duplicates']:,} "
                             f"duplicates)", ""),
        (f"{c['exchanges']} / {c['coins']}", "exchanges / coins", ""),
        (f"{c['price_ticks']:,}", "price ticks", ""),
        (f"{c['deadletters']:,}", "dead letters", ""),
    ]
    span = (f"{fmt_time(data.start)} → {fmt_time(data.end)} "
            f"({fmt_duration(data.end - data.start)})" if data.end else "no timestamped frames")
    card_html = "".join(f'<div class="card"><b class="{cls}">{esc(v)}</b><span>{esc(k)}</span>'
                        f'</div>' for v, k, cls in cards)
    reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(data.deadletter_reasons.items(),
                                                        key=lambda kv: -kv[1]))
    rows = "".join(
        f"<tr><td>{esc(fmt_time(x.ts, '%Y-%m-%d %H:%M:%S'))}</td><td>{esc(x.exchange)}</td>"
        f"<td>{esc(x.symbol)}</td><td class=\"side-{x.side}\">{esc(x.side)}</td>"
        f"<td class=\"num\">{esc(fmt_price(x.price))}</td>"
        f"<td class=\"num\">{esc(fmt_usd(x.usd))}</td></tr>" for x in data.largest)
    table = (f"<table id=\"largest\"><caption>Largest single liquidations</caption><thead><tr>"
             f"<th scope=\"col\">time (UTC)</th><th scope=\"col\">exchange</th>"
             f"<th scope=\"col\">symbol</th><th scope=\"col\">side</th>"
             f"<th scope=\"col\" class=\"num\">price</th>"
             f"<th scope=\"col\" class=\"num\">USD</th></tr></thead><tbody>{rows}</tbody>"
             f"</table>") if data.largest else "<p>No priced liquidations in this recording.</p>"
    return (f"<header><h1>Liquidation report</h1>"
            f"<p class=\"sub\">{esc(Path(data.source).name)} · {esc(span)} · "
            f"{c['lines']:,} recording lines, {c['snapshot_dropped']:,} snapshot events dropped"
            f"{' · dead letters: ' + esc(reasons) if reasons else ''}</p>"
            f"<div class=\"cards\">{card_html}</div>{table}</header>")


def render(data: ReportData) -> str:
    """The report page for ``data``."""
    parts = [_header(data)]
    parts.append(_section("Liquidations per hour",
                          "USD liquidated per UTC hour; a long is a long position force-closed "
                          "(price fell), a short one force-closed as price rose.",
                          chart_hourly(data), "s-hourly"))
    parts.append('<div class="row">'
                 + _section("By exchange", "Total over the recording.",
                            chart_by_exchange(data), "s-exchange")
                 + _section("By coin", f"Top {TOP_COINS} coins; the rest summed as other.",
                            chart_by_coin(data), "s-coin") + "</div>")
    for hm in data.heatmaps:
        parts.append(_section(
            f"{hm.coin}: where it was liquidated",
            f"USD per {hm.bucket_pct * hm.levels_per_row:g} % price level and hour, both sides"
            + (f", with {hm.coin}'s price" if hm.prices else " (no price frames recorded)")
            + ". Hover a cell for the long/short split.",
            chart_heatmap(data, hm), f"s-heat-{hm.coin}"))
    if data.signals:
        parts.append(_section(
            "Stress over time",
            f"The stress engine evaluated every {SIGNAL_STEP // 60} minutes on the windows as "
            f"they stood then (docs/signals.md); the first 24 hours of a recording have a "
            f"shorter history for the spike baseline and deleveraging.",
            chart_stress(data), "s-stress"))
        parts.append('<div class="row">'
                     + _section("Long share", "Trailing 1 h window.", chart_long_share(data),
                                "s-long-share")
                     + _section("Spike multiple", "Current hour vs the median hour; top ticks: none before.",
                                chart_spike(data), "s-spike") + "</div>")
        parts.append(_section("Index components", "Each in [0, 1], the index is their "
                              "weighted mean over those present.", chart_components(data),
                              "s-components"))
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Liquidation report: {esc(Path(data.source).name)}</title>"
            f"<style>{STYLE}</style></head><body><main>{''.join(parts)}"
            f"<footer>liqstress report · generated from {esc(Path(data.source).name)} · all "
            f"times UTC · self-contained, no network needed</footer></main></body></html>\n")


def build_report(path: str | Path,
                 max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD) -> str:
    """The HTML report of the recording at ``path``."""
    if not Path(path).is_file():
        raise ConfigError(f"no such recording: {path}")
    return render(compute(path, max_notional_usd))


def write_report(path: str | Path, out: str | Path,
                 max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD) -> ReportData:
    """Write the report of ``path`` to ``out``; ConfigError (one line) when either is unusable."""
    if not Path(path).is_file():
        raise ConfigError(f"no such recording: {path}")
    target = Path(out)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise ConfigError(f"--out {out}: is a directory")
    if not parent.is_dir():
        raise ConfigError(f"--out {out}: no such directory {parent}")
    if not os.access(parent, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"--out {out}: not writable")
    data = compute(path, max_notional_usd)
    try:
        target.write_text(render(data), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write: {exc.strerror or exc}") from None
    return data


def cmd_report(args: argparse.Namespace) -> int:
    data = write_report(args.file, args.out, args.max_notional_usd)
    print(f"liqstress: report of {data.counts['events']:,} events over "
          f"{len(data.hours)} hour{'s' if len(data.hours) != 1 else ''} written to {args.out}",
          file=sys.stderr)
    return 0
