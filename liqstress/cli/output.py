"""What ``liqstress replay`` shows people: the progress line on stderr and the result table.

* :class:`Progress` draws one progress line per phase (parse, publish, worker). On a terminal
  it is redrawn in place; while it is drawn, log records written to the same stream clear it
  first and redraw it after (:class:`_LogSafeStream` wraps the logging handlers that write
  there), so a warning never lands in the middle of the bar. Not on a terminal it writes
  whole lines only (each phase at 0 % and 100 %).
* :func:`window_stats` adds per-exchange and total counts and the largest single liquidation
  to the replay summary (``ReplayResult.summary``); :func:`format_table` renders it rounded
  for people (USD to the dollar with thousands separators, ratios to 3 decimals, the index to
  1 decimal). ``--json`` prints the summary itself: exact numbers.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import IO, Any

from liqstress.event import LiquidationEvent
from liqstress.labels import SIDES
from liqstress.windows import WINDOWS, Snapshot

#: Erase from the cursor to the end of the line (ANSI, every terminal liqstress runs on).
CLEAR_EOL = "\x1b[K"
BAR_WIDTH = 25


class Progress:
    """Progress of one replay on ``stream`` (default: stderr at construction time)."""

    def __init__(self, total_bytes: int, stream: IO[str] | None = None,
                 tty: bool | None = None) -> None:
        self.total = max(total_bytes, 1)
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.tty = _isatty(self.stream) if tty is None else tty
        self.lock = threading.RLock()
        #: the partial line on screen now ("" when none is drawn)
        self.line = ""
        self._last: tuple[str, int] | None = None
        self._wrapped: list[tuple[logging.StreamHandler[Any], _LogSafeStream]] = []

    def update(self, done_bytes: int, label: str) -> None:
        pct = max(0, min(100, int(done_bytes * 100 / self.total)))
        if self._last == (label, pct):
            return
        first = self._last is None or self._last[0] != label
        self._last = (label, pct)
        with self.lock:
            if self.tty:
                filled = pct * BAR_WIDTH // 100
                text = f"{label:<10} [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {pct:3d}%"
                if pct == 100:
                    self._write(f"\r{text}{CLEAR_EOL}\n")
                    self.line = ""
                    self._unwrap_handlers()
                else:
                    self._wrap_handlers()
                    self._write(f"\r{text}{CLEAR_EOL}")
                    self.line = text
            elif pct == 100 or (first and pct == 0):
                self._write(f"{label}: {pct}%\n")

    def close(self) -> None:
        """End a line left drawn (a replay that failed midway) and unwrap the handlers."""
        with self.lock:
            if self.line:
                self._write("\n")
                self.line = ""
            self._unwrap_handlers()

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    # -- log records while a line is drawn -----------------------------------------------------
    def _wrap_handlers(self) -> None:
        if self._wrapped:
            return
        for handler in _stream_handlers():
            if handler.stream is self.stream:
                proxy = _LogSafeStream(self, self.stream)
                handler.setStream(proxy)  # type: ignore[arg-type]
                self._wrapped.append((handler, proxy))

    def _unwrap_handlers(self) -> None:
        for handler, proxy in self._wrapped:
            if handler.stream is proxy:
                handler.setStream(self.stream)
        self._wrapped = []


class _LogSafeStream:
    """A logging handler's stream while a progress line is drawn: a record clears the line
    first and redraws it after its newline, all under the progress lock (records may come
    from other threads)."""

    def __init__(self, progress: Progress, inner: IO[str]) -> None:
        self.progress = progress
        self.inner = inner
        self._midline = False  # a record written in pieces: the line is cleared already

    def write(self, text: str) -> int:
        p = self.progress
        with p.lock:
            if p.line and not self._midline:
                self.inner.write("\r" + CLEAR_EOL)
            n = self.inner.write(text)
            self._midline = bool(text) and not text.endswith("\n")
            if p.line and not self._midline:
                self.inner.write(p.line)
            self.inner.flush()
            return n

    def flush(self) -> None:
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _isatty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in list(logging.Logger.manager.loggerDict.values())
                if isinstance(lg, logging.Logger)]
    out: list[logging.StreamHandler[Any]] = []
    for lg in loggers:
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and h not in out:
                out.append(h)
    return out


# ---- the summary's per-exchange numbers -------------------------------------------------------
def _largest_event(events: Iterable[LiquidationEvent], exchange: str | None, side: str,
                   usd: float, now: float, window_s: float) -> LiquidationEvent | None:
    """The replayed event the worker's ``largest_usd`` came from: same venue (any when None),
    side and notional, inside the window (minute buckets: up to 60 s longer)."""
    best: LiquidationEvent | None = None
    for ev in events:
        if (ev.side == side and ev.notional_usd == usd
                and (exchange is None or ev.exchange == exchange)
                and now - window_s - 60 < ev.ts <= now + 1e-6
                and (best is None or ev.ts > best.ts)):
            best = ev
    return best


def window_stats(snap: Snapshot, events: list[LiquidationEvent]
                 ) -> tuple[dict[str, dict[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    """``(exchanges, totals)`` for ``ReplayResult.summary``: per window and exchange (and over
    all exchanges) long/short/total USD, counts and the largest single liquidation
    ``{"usd", "side", "symbol", "exchange"}`` (None when the window has none; symbol None when
    the event cannot be found among ``events``). Exact numbers, from the worker's windows."""
    by_ex: dict[str, dict[str, dict[str, Any]]] = {}
    totals: dict[str, dict[str, Any]] = {}
    # Events by (exchange, side, notional) would be faster; a replay has few windows to look up.
    for w, scopes in snap.windows.items():
        window_s = float(WINDOWS.get(w, 0))
        rows: dict[str, dict[str, Any]] = {}
        for ex in sorted(scopes["exchange"]):
            rows[ex] = _row(scopes["exchange"][ex], snap.now, window_s, events, ex)
        by_ex[w] = rows
        total_aggs = {s: snap.total(w, s) for s in SIDES}
        totals[w] = _row(total_aggs, snap.now, window_s, events, None, scopes["exchange"])
    return by_ex, totals


def _row(aggs: Mapping[str, Any], now: float, window_s: float, events: list[LiquidationEvent],
         exchange: str | None, per_ex: Mapping[str, Mapping[str, Any]] | None = None
         ) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for s in SIDES:
        a = aggs.get(s)
        row[f"{s}_usd"] = a.usd if a is not None else 0.0
        row[f"{s}_count"] = a.count if a is not None else 0
    row["total_usd"] = sum(row[f"{s}_usd"] for s in SIDES)
    row["count"] = sum(row[f"{s}_count"] for s in SIDES)
    row["unpriced"] = sum(aggs[s].unpriced for s in SIDES if s in aggs)
    side = max(SIDES, key=lambda s: aggs[s].largest_usd if s in aggs else 0.0)
    usd = aggs[side].largest_usd if side in aggs else 0.0
    if usd <= 0:
        row["largest"] = None
        return row
    ev = _largest_event(events, exchange, side, usd, now, window_s)
    venue = exchange
    if venue is None and per_ex is not None:
        # The venue whose own largest this is (the event says which when it was found).
        venue = ev.exchange if ev is not None else next(
            (ex for ex, sides in sorted(per_ex.items())
             if side in sides and sides[side].largest_usd == usd), None)
    row["largest"] = {"usd": usd, "side": side, "symbol": ev.symbol if ev is not None else None,
                      "exchange": venue}
    return row


# ---- the table --------------------------------------------------------------------------------
def usd(x: float | None, missing: str = "-") -> str:
    """USD for people: whole dollars with thousands separators (``missing`` when unknown)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    if math.isinf(x):
        return "inf"
    return f"{x:,.0f}"


def compact_usd(x: float, big_decimals: int = 1) -> str:
    """USD in k/M/B for tables and charts: ``950``, ``12.4k``, ``3.50M``, ``36.0M``; from 100 of
    a unit ``big_decimals`` decimals (``230.0M`` or ``230M``). What would round up to 1000 of a
    unit is shown as 1.00 of the next one."""
    a = abs(x)
    sign = "-" if x < 0 else ""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div * 0.9995:
            v = a / div
            decimals = 2 if v < 9.995 else 1 if v < 99.95 else big_decimals
            return f"{sign}{v:,.{decimals}f}{unit}"
    return f"{sign}{a:,.0f}"


#: How each signal of the summary is shown: decimals (and a suffix).
SIGNAL_FORMATS: dict[str, tuple[int, str]] = {
    "stress_index": (1, ""), "long_share_1h": (3, ""), "long_spike_multiple": (1, "x"),
    "top2_share_1h": (3, ""), "long_share_near_low": (3, ""), "breadth_down_1h": (2, ""),
}


def signal_value(key: str, val: Any) -> str:
    if val is None:
        return "-"
    if isinstance(val, list):
        return ", ".join(str(v) for v in val) or "-"
    if isinstance(val, bool) or not isinstance(val, int | float):
        return str(val)
    if math.isinf(val):
        return "inf" if val > 0 else "-inf"
    if math.isnan(val):
        return "-"
    decimals, suffix = SIGNAL_FORMATS.get(key, (3, ""))
    return f"{val:,.{decimals}f}{suffix}"


def _largest(info: Mapping[str, Any] | None, with_exchange: bool) -> str:
    if not info:
        return "-"
    parts = [usd(info.get("usd"))]
    if info.get("symbol"):
        parts.append(str(info["symbol"]))
    if info.get("side"):
        parts.append(str(info["side"]))
    if with_exchange and info.get("exchange"):
        parts.append(f"@{info['exchange']}")
    return " ".join(parts)


HEADER = (f"{'window':<6} {'exchange':<16} {'long USD':>15} {'short USD':>15} {'total USD':>15} "
          f"{'count':>7}  largest (USD symbol side)")


def format_table(summary: Mapping[str, Any]) -> str:
    """The replay summary as a table: per window, one row per exchange and a TOTAL row."""
    lines = [HEADER]
    stats: Mapping[str, Any] = summary.get("exchanges") or {}
    totals: Mapping[str, Any] = summary.get("totals") or {}
    for w, exchanges in summary["windows"].items():
        w_stats = stats.get(w) or {}
        sum_long = sum_short = 0.0
        sum_count: int | None = 0
        for ex in sorted(exchanges):
            sides = exchanges[ex]
            long_usd, short_usd = sides.get("long", 0.0), sides.get("short", 0.0)
            sum_long += long_usd
            sum_short += short_usd
            st = w_stats.get(ex)
            count = st.get("count") if st else None
            sum_count = None if count is None or sum_count is None else sum_count + count
            lines.append(_table_row(w, ex, long_usd, short_usd, count,
                                    _largest(st.get("largest") if st else None, False)))
        tot = totals.get(w)
        if tot:
            lines.append(_table_row(w, "TOTAL", tot["long_usd"], tot["short_usd"],
                                    tot.get("count"), _largest(tot.get("largest"), True)))
        else:
            lines.append(_table_row(w, "TOTAL", sum_long, sum_short, sum_count, "-"))
    lines.append(f"events: {summary['events']}  prices: {summary.get('prices', 0)}  "
                 f"deadletter: {summary['deadletter']}")
    for key, val in (summary.get("signals") or {}).items():
        lines.append(f"{key:<22} {signal_value(key, val)}")
    return "\n".join(lines)


def _table_row(window: str, name: str, long_usd: float, short_usd: float, count: int | None,
               largest: str) -> str:
    return (f"{window:<6} {name:<16} {usd(long_usd):>15} {usd(short_usd):>15} "
            f"{usd(long_usd + short_usd):>15} {f'{count:,}' if count is not None else '-':>7}  "
            f"{largest}").rstrip()
