"""The worker's read-only JSON API, served next to /metrics on the same port (docs/api.md):
single events and tables Prometheus is the wrong store for.

- ``GET /api/v1/liquidations?limit=&exchange=&coin=&side=``: latest liquidations, newest first.
- ``GET /api/v1/largest?window=24h&limit=20``: largest single liquidations of a window.
- ``GET /api/v1/windows?top=20``: totals per window x exchange x side and per coin.
- ``GET /api/v1/levels?coin=BTC&hours=4&slot=300``: liquidated USD per 0.25 % price level
  per time slot (the heatmap), with the coin's price series and local low/high.

Every worker answers with the global view: it reads every partition's partials as a broadcast
(agents/app.py) and merges them with its own partitions, exactly as the aggregator does.

Threads: the HTTP server runs on its own threads; the state belongs to the event loop. Answers
come from an immutable :class:`ApiSnapshot` built on the loop (at the end of every refresh
while someone reads the API, or on a request that finds it stale, by handing the build to the
loop and waiting for it). The heatmap is computed per request, also on the loop. Without a
running loop (replay, tests), nothing changes the state any more and the build runs in place.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs

import orjson
from prometheus_client import make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from liqstress.coverage import coverage_dict
from liqstress.feed import (
    COIN,
    EXCHANGE,
    LARGEST_WINDOWS,
    RECENT_SIZE,
    SIDE,
    TOP_K,
    Entry,
    PartitionFeed,
    merge_largest,
    merge_recent,
)
from liqstress.labels import SIDES
from liqstress.partials import HEAT_HORIZON, HEAT_SLOT
from liqstress.prices import LiquidationLevels
from liqstress.windows import WINDOWS, Agg

from .state import WorkerState

#: A request keeps the snapshot rebuilt at every refresh for this long.
ACTIVE_FOR = 300.0
#: Longest a request waits for the loop to build an answer.
LOOP_TIMEOUT = 10.0
DEFAULT_TOP_COINS = 20
T = TypeVar("T")
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class BadRequest(ValueError):
    """A query parameter that cannot be used (HTTP 400)."""


class NotFound(LookupError):
    """No such route (HTTP 404)."""


class Unavailable(RuntimeError):
    """The loop did not answer in time (HTTP 503)."""


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def _event(e: Entry) -> dict[str, Any]:
    return {"exchange": e[1], "symbol": e[2], "coin": e[3], "side": e[4], "price": e[5],
            "qty": e[6], "usd": e[7], "ts": e[8], "time": _iso(e[8]), "id": e[0]}


@dataclass(frozen=True)
class ApiSnapshot:
    """What the API answers from; built on the loop, never changed afterwards."""

    built_at: float  # time.monotonic()
    now: float  # the window clock
    meta: dict[str, Any]
    #: every partition's recent ring, merged, newest first
    recent: tuple[Entry, ...]
    #: window -> (the TOP_K largest, largest first; exact?)
    largest: dict[str, tuple[tuple[Entry, ...], bool]]
    #: window -> scope -> name -> side -> Agg (all coins)
    windows: dict[str, dict[str, dict[str, dict[str, Agg]]]]
    #: coins by 24 h USD, largest first
    coin_rank: tuple[str, ...]
    allowlist: tuple[str, ...]
    #: per window, what each venue covers (``coverage_dict``); None before any collector
    #: reported
    coverage: dict[str, Any] | None = None


def build_snapshot(state: WorkerState) -> ApiSnapshot:
    """On the loop: the global view from the last refresh's sources (see the module doc)."""
    aggregator = state.aggregating and state.aggregator_ready
    stale = time.monotonic() - state.view_at > 2 * state.settings.refresh_interval + 1.0
    if state.view_snapshot is None or stale:
        for _ in state.global_view_steps():
            pass
    now = state.view_snapshot.now if state.view_snapshot is not None else state.now()
    sources = list(state.view_sources)
    feeds: list[PartitionFeed] = [s.feed for s in sources if s.feed is not None]
    recent = tuple(merge_recent(feeds))
    largest = {w: (tuple(got), exact) for w, secs in LARGEST_WINDOWS.items()
               for got, exact in [merge_largest(feeds, now, secs, TOP_K)]}
    windows: dict[str, Any] = {}
    if state.view_snapshot is not None:
        windows = state.view_snapshot.windows
    coin_24h = {name: sum(a.usd for a in sides.values())
                for name, sides in windows.get("24h", {}).get("coin", {}).items()}
    rank = tuple(sorted(coin_24h, key=lambda c: (-coin_24h[c], c)))
    # The roll-up's dicts are fresh per refresh and never changed afterwards: copied anyway
    # (shallow, Aggs included) so no later code path can reach into the snapshot.
    frozen = {w: {scope: {name: {s: Agg(a.usd, a.count, a.largest_usd, a.unpriced)
                                 for s, a in sides.items()}
                          for name, sides in names.items()}
                  for scope, names in scopes.items()}
              for w, scopes in windows.items()}
    covered = sorted(s.partition for s in sources)
    meta = {"ts": now, "time": _iso(now) if now > 0 else None, "worker": state.worker_id,
            "aggregator": aggregator, "ready": state.is_ready(),
            "partitions": covered, "partitions_expected": state.settings.partitions,
            "events": sum(s.events for s in sources)}
    # Every worker reads every collector's coverage record: any worker can answer this. The
    # aggregator computed it at this very refresh (its view is its last snapshot).
    windows_cov = (state.last_coverage if aggregator and not stale and state.last_coverage
                   else state.coverage.windows(now, WINDOWS))
    coverage = coverage_dict(windows_cov, list(WINDOWS))
    return ApiSnapshot(time.monotonic(), now, meta, recent, largest, frozen, rank,
                       tuple(state.settings.coins), coverage)


class Api:
    """The JSON API of one worker state."""

    def __init__(self, state: WorkerState, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.state = state
        self.loop = loop
        self.owner = threading.get_ident()
        self.snapshot: ApiSnapshot | None = None
        self.last_request = -math.inf
        state.api_active = self.active
        state.on_refresh = self._on_refresh

    # ---- on the loop ------------------------------------------------------------------------
    def active(self) -> bool:
        return time.monotonic() - self.last_request < ACTIVE_FOR

    def _on_refresh(self) -> None:
        if self.active():
            self.rebuild()

    def rebuild(self) -> ApiSnapshot:
        snap = self.snapshot = build_snapshot(self.state)
        return snap

    # ---- on the HTTP threads ----------------------------------------------------------------
    def on_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` where the state lives and return its (immutable) result."""
        loop = self.loop
        if loop is None or not loop.is_running() or threading.get_ident() == self.owner:
            return fn()
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the waiting thread
                fut.set_exception(exc)
        loop.call_soon_threadsafe(run)
        try:
            return fut.result(LOOP_TIMEOUT)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise Unavailable(f"the worker's event loop did not answer within "
                              f"{LOOP_TIMEOUT:.0f}s") from None

    def current(self) -> ApiSnapshot:
        self.last_request = time.monotonic()
        snap = self.snapshot
        max_age = 2 * self.state.settings.refresh_interval + 1.0
        if snap is None or time.monotonic() - snap.built_at > max_age:
            snap = self.on_loop(self.rebuild)
        return snap

    # ---- routes ------------------------------------------------------------------------------
    def liquidations(self, q: dict[str, str]) -> dict[str, Any]:
        limit = _int(q, "limit", 100, 1, RECENT_SIZE)
        exchange, coin = q.get("exchange") or None, (q.get("coin") or "").upper() or None
        side = _side(q)
        snap = self.current()
        out = []
        for e in snap.recent:
            if (exchange is None or e[EXCHANGE] == exchange) and \
                    (coin is None or e[COIN] == coin) and (side is None or e[SIDE] == side):
                out.append(_event(e))
                if len(out) >= limit:
                    break
        return {**snap.meta, "count": len(out), "liquidations": out}

    def largest(self, q: dict[str, str]) -> dict[str, Any]:
        window = q.get("window") or "24h"
        if window not in LARGEST_WINDOWS:
            raise BadRequest(f"window must be one of {', '.join(LARGEST_WINDOWS)}")
        limit = _int(q, "limit", 20, 1, TOP_K)
        snap = self.current()
        got, exact = snap.largest[window]
        rows = [{"rank": i + 1, **_event(e)} for i, e in enumerate(got[:limit])]
        return {**snap.meta, "window": window, "exact": exact, "count": len(rows),
                "liquidations": rows}

    def windows(self, q: dict[str, str]) -> dict[str, Any]:
        top = _int(q, "top", DEFAULT_TOP_COINS, 0, 1000)
        snap = self.current()
        shown = list(snap.coin_rank[:top])
        shown += [c for c in snap.allowlist if c not in shown]
        keep = set(shown)
        rows: list[dict[str, Any]] = []
        for w in WINDOWS:
            scopes = snap.windows.get(w, {})
            total = {s: Agg() for s in SIDES}
            for sides in scopes.get("exchange", {}).values():
                for s, a in sides.items():
                    total[s].merge(a)
            rows += _rows(w, "total", "all", total)
            for ex, sides in sorted(scopes.get("exchange", {}).items()):
                rows += _rows(w, "exchange", ex, sides)
            coins = scopes.get("coin", {})
            other = {s: Agg() for s in SIDES}
            for name in shown:
                rows += _rows(w, "coin", name, coins.get(name, {}))
            for name, sides in coins.items():
                if name not in keep:
                    for s, a in sides.items():
                        other[s].merge(a)
            rows += _rows(w, "coin", "other", other)
        return {**snap.meta, "windows": list(WINDOWS), "coins": shown, "rows": rows,
                "coverage": snap.coverage}

    def levels(self, q: dict[str, str]) -> dict[str, Any]:
        coin = (q.get("coin") or "").upper()
        if not coin:
            raise BadRequest("coin is required (e.g. coin=BTC)")
        hours = _float(q, "hours", 4.0, HEAT_SLOT / 3600, HEAT_HORIZON / 3600)
        slot = _int(q, "slot", HEAT_SLOT, HEAT_SLOT, 3600)
        if slot % HEAT_SLOT:
            raise BadRequest(f"slot must be a multiple of {HEAT_SLOT} seconds")
        self.last_request = time.monotonic()
        return self.on_loop(lambda: build_levels(self.state, coin, hours, slot))

    def route(self, path: str, q: dict[str, str]) -> dict[str, Any]:
        handler = {"/api/v1/liquidations": self.liquidations, "/api/v1/largest": self.largest,
                   "/api/v1/windows": self.windows, "/api/v1/levels": self.levels}.get(path)
        if handler is None:
            raise NotFound(path)
        return handler(q)


def _rows(window: str, scope: str, name: str, sides: dict[str, Agg]) -> list[dict[str, Any]]:
    out = []
    for s in SIDES:
        a = sides.get(s) or Agg()
        out.append({"window": window, "scope": scope, "name": name, "side": s, "usd": a.usd,
                    "count": a.count, "largest_usd": a.largest_usd, "unpriced": a.unpriced})
    return out


def build_levels(state: WorkerState, coin: str, hours: float, slot: int) -> dict[str, Any]:
    """On the loop: the coin's heatmap (every partition) and price series."""
    now = state.now()
    window = hours * 3600.0
    acc: dict[int, dict[int, list[float]]] = {}
    heats: list[LiquidationLevels] = []
    for src in state._sources():  # noqa: SLF001 - the same sources the aggregator merges
        if src.heat is not None:
            heats.append(src.heat)
            src.heat.accumulate_slots(coin, now, window, acc)
    fmt = heats[0] if heats else LiquidationLevels(slot_seconds=HEAT_SLOT)
    per = slot // HEAT_SLOT
    cells: dict[tuple[int, int], list[float]] = {}
    for s, buckets in acc.items():
        t = (s // per) * per
        for k, (lu, su) in buckets.items():
            c = cells.setdefault((t, k), [0.0, 0.0])
            c[0] += lu
            c[1] += su
    rows = []
    for (t, k), (lu, su) in sorted(cells.items()):
        lo, hi = fmt.bucket_bounds(k)
        ts = float(t * HEAT_SLOT)
        rows.append({"ts": ts, "time": _iso(ts), "price": fmt.mid(k), "price_low": lo,
                     "price_high": hi, "long_usd": lu, "short_usd": su, "usd": lu + su})
    lookback = state.stress.settings.local_extreme_hours * 3600.0
    ext = state.prices.extremes(coin, now, lookback)
    prices = [{"ts": ts, "time": _iso(ts), "high": h, "low": lo, "close": c}
              for ts, h, lo, c in state.prices.slots(coin, now, window)]
    return {"ts": now, "time": _iso(now) if now > 0 else None, "worker": state.worker_id,
            "coin": coin, "hours": hours, "slot_s": slot, "bucket_pct": fmt.bucket_pct,
            "price": state.prices.price_at(coin, now),
            "local_low": ext[0] if ext else None, "local_high": ext[1] if ext else None,
            "local_extreme_hours": state.stress.settings.local_extreme_hours,
            "price_source": state.prices.source(coin), "cells": rows, "prices": prices}


def _int(q: dict[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        val = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not lo <= val <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}, got {val}")
    return val


def _float(q: dict[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    try:
        val = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number, got {raw!r}") from None
    if not (math.isfinite(val) and lo <= val <= hi):
        raise BadRequest(f"{name} must be between {lo:g} and {hi:g}, got {raw}")
    return val


def _side(q: dict[str, str]) -> str | None:
    side = q.get("side") or None
    if side is not None and side not in SIDES:
        raise BadRequest(f"side must be one of {', '.join(SIDES)}")
    return side


# ---- serving ---------------------------------------------------------------------------------
#: metrics registry -> the API of the worker exporting on it (a collector-only process has none)
_APIS: weakref.WeakKeyDictionary[CollectorRegistry, Api] = weakref.WeakKeyDictionary()


def register(state: WorkerState) -> Api:
    """Serve ``state`` on its metrics registry's server; call it on the loop's thread."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    api = Api(state, loop)
    _APIS[state.metrics.registry] = api
    return api


def api_for(registry: CollectorRegistry) -> Api | None:
    return _APIS.get(registry)


def _json(start_response: Callable[..., Any], status: str, body: dict[str, Any],
          head: bool = False) -> list[bytes]:
    data = orjson.dumps(body)
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data))), ("Cache-Control", "no-store")])
    return [] if head else [data]


def make_app(registry: CollectorRegistry) -> WSGIApp:
    """One WSGI app for the /metrics port: ``/api/v1/*`` answered here (the worker registered
    on ``registry``, looked up per request since the worker starts after the server), every
    other path by prometheus_client's own app, as before."""
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if not path.startswith("/api/"):
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed",
                         {"error": "read-only API: GET only"})
        head = method == "HEAD"
        api = api_for(registry)
        if api is None:
            return _json(start_response, "404 Not Found",
                         {"error": "no worker in this process: the API is served by "
                                   "`liqstress worker` and `liqstress run`"}, head)
        q = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", ""),
                                           keep_blank_values=True).items()}
        try:
            return _json(start_response, "200 OK", api.route(path.rstrip("/"), q), head)
        except BadRequest as exc:
            return _json(start_response, "400 Bad Request", {"error": str(exc)}, head)
        except NotFound:
            return _json(start_response, "404 Not Found",
                         {"error": f"no route {path}", "routes": [
                             "/api/v1/liquidations", "/api/v1/largest", "/api/v1/windows",
                             "/api/v1/levels"]}, head)
        except Unavailable as exc:
            return _json(start_response, "503 Service Unavailable", {"error": str(exc)}, head)

    return app
