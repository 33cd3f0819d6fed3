"""Shared machinery for venue simulators: a websocket server plus an HTTP server on loopback.

A venue simulator subclasses :class:`VenueSim` and implements ``on_message`` (subscribe acks,
ping replies) and, if the venue needs REST, ``rest_routes``; per-connection work such as server
heartbeats runs under ``background``, and ``run_demo`` serves it standalone. Tests point a
collector at ``urls()``, push documented frames with ``push``, break connections with
``disconnect_all`` and turn ``answer_pings`` / ``fail_subscribe`` off and on.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import orjson
import websockets
from aiohttp import web


class VenueSim:
    #: Path the websocket is served on; the collector URL is ``ws_url(path)``.
    ws_paths: tuple[str, ...] = ("/",)
    #: GET paths of the venue's open-interest/funding listings, answered from ``oi_bodies``
    #: (keyed by path and query, e.g. ``/v5/market/tickers?category=linear``, or by path
    #: alone): tests replace a body between polls to move open interest.
    oi_paths: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.clients: set[Any] = set()
        self.received: list[tuple[str, str]] = []  # (path, message)
        self.connections = 0
        self.answer_pings = True
        #: Refuse every subscribe (each simulator in its venue's error shape).
        self.fail_subscribe = False
        self.gzip = False
        self._ws_server: Any = None
        self._runner: web.AppRunner | None = None
        self.ws_port = 0
        self.http_port = 0
        self.rest_hits: list[str] = []
        self.rest_fail = 0  # answer this many REST requests with 503 first
        self.connected = asyncio.Event()
        self.oi_bodies: dict[str, str] = {}
        #: Per-connection background work (server heartbeats, watchdogs): cancelled on stop.
        self._tasks: set[asyncio.Task[None]] = set()
        #: Venues that close a connection without client messages (``watch_idle``): after this
        #: many seconds of silence, counted in ``idle_closes``.
        self.idle_timeout = 60.0
        self.idle_closes = 0
        self._last_seen: dict[Any, float] = {}
        #: History endpoints (the warm start): answer this many requests with 429
        #: (``Retry-After``: ``retry_after``) first, then hold this many for ``slow_seconds``
        #: before answering (a timeout on the collector's side); ``history_requests`` logs each
        #: request's path and query, answered or not.
        self.history_429 = 0
        self.retry_after = "1"
        self.history_slow = 0
        self.slow_seconds = 5.0
        self.history_requests: list[Any] = []
        #: Answer this many history requests with the venue's refusal in an HTTP 200 (OKX's
        #: ``50011``), after the 429s: for venues whose handler passes a ``refusal`` body.
        self.history_refusals = 0

    # ---- lifecycle ------------------------------------------------------------------------
    async def start(self) -> VenueSim:
        self._ws_server = await websockets.serve(self._handler, "127.0.0.1", 0)
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        self._runner = web.AppRunner(self.http_app())
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ws_server:
            self._ws_server.close()
            await self._ws_server.wait_closed()
        if self._runner:
            await self._runner.cleanup()

    def seen(self, ws: Any) -> None:
        """The client on ``ws`` sent something (resets its idle clock)."""
        self._last_seen[ws] = time.monotonic()

    def watch_idle(self, ws: Any, reason: str) -> None:
        """Close ``ws`` with 1000 ``reason`` once it has sent nothing for ``idle_timeout``
        seconds (call ``seen`` on each client message), as venues that require client traffic
        do."""
        self.seen(ws)
        self.background(self._idle_watchdog(ws, reason))

    async def _idle_watchdog(self, ws: Any, reason: str) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while ws in self.clients:
                await asyncio.sleep(min(0.05, self.idle_timeout / 4))
                if time.monotonic() - self._last_seen.get(ws, time.monotonic()) > self.idle_timeout:
                    self.idle_closes += 1
                    await ws.close(code=1000, reason=reason)
                    return

    async def __aenter__(self) -> VenueSim:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def ws_url(self, path: str | None = None) -> str:
        return f"ws://127.0.0.1:{self.ws_port}{path or self.ws_paths[0]}"

    @property
    def http_base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def urls(self) -> dict[str, str]:
        """Venue URL overrides pointing a collector here: the websocket, and REST when the
        simulator serves any."""
        serves_rest = bool(self.rest_routes()) or bool(self.oi_paths)
        return {"ws": self.ws_url(), "rest": self.http_base} if serves_rest else {
            "ws": self.ws_url()}

    def background(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` (a heartbeat, a watchdog) until it returns or the simulator stops."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- venue hooks ---------------------------------------------------------------------
    def rest_routes(self) -> dict[str, Any]:
        """GET routes: path -> ``async (request) -> body``."""
        return {}

    def http_app(self) -> web.Application:
        """The HTTP side: ``rest_routes`` as GETs (override for other methods)."""
        app = web.Application()
        routes = {**{path: self.oi_body for path in self.oi_paths}, **self.rest_routes()}
        for path, handler in routes.items():
            app.router.add_get(path, self._rest_wrapper(handler))
        return app

    async def oi_body(self, request: web.Request) -> str:
        """The body of an open-interest listing: by path and query, else by path."""
        for key in (str(request.rel_url), request.path):
            if key in self.oi_bodies:
                return self.oi_bodies[key]
        raise web.HTTPNotFound(text=f"no open-interest body for {request.rel_url}")

    async def history_faults(self, error_body: str = "{}",
                             refusal: str | None = None) -> str | None:
        """The faults a history handler serves on demand (see ``history_429``), before its
        body. Returns ``refusal`` when the handler must answer with it instead (HTTP 200; see
        ``history_refusals``), else None."""
        if self.history_429 > 0:
            self.history_429 -= 1
            raise web.HTTPTooManyRequests(headers={"Retry-After": self.retry_after},
                                          text=error_body, content_type="application/json")
        if refusal is not None and self.history_refusals > 0:
            self.history_refusals -= 1
            return refusal
        if self.history_slow > 0:
            self.history_slow -= 1
            await asyncio.sleep(self.slow_seconds)

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        """Answer a client message (subscribe ack, pong)."""

    async def on_connect(self, ws: Any, path: str) -> None:
        """Greeting frames some venues send on connect."""

    async def subscribe_request(self, ws: Any, msg: str) -> dict[str, Any] | None:
        """For venues that speak plain-text ``ping`` -> ``pong`` (answered unless
        ``answer_pings`` is off) and JSON ``{"op": "subscribe", "args": ...}``: the subscribe
        request ``msg`` carries, or None when it is a ping or anything else."""
        if msg == "ping":
            if self.answer_pings:
                await ws.send("pong")
            return None
        req = orjson.loads(msg)
        return req if req.get("op") == "subscribe" else None

    # ---- test controls -------------------------------------------------------------------
    async def push(self, frame: str | bytes, path: str | None = None) -> None:
        data: str | bytes = frame
        if self.gzip and isinstance(frame, str):
            data = gzip.compress(frame.encode())
        for ws in list(self.clients):
            if path is None or ws.request.path == path:
                try:
                    await ws.send(data)
                except websockets.ConnectionClosed:
                    pass

    async def disconnect_all(self) -> None:
        for ws in list(self.clients):
            await ws.close(code=1001, reason="going away")

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate():
                await asyncio.sleep(0.02)
        await asyncio.wait_for(loop(), timeout)

    def messages(self, path: str | None = None) -> list[str]:
        return [m for p, m in self.received if path is None or p == path]

    # ---- internals ----------------------------------------------------------------------
    async def _handler(self, ws: Any) -> None:
        path = ws.request.path
        self.clients.add(ws)
        self.connections += 1
        self.connected.set()
        try:
            await self.on_connect(ws, path)
            async for msg in ws:
                text = msg if isinstance(msg, str) else msg.decode()
                self.received.append((path, text))
                await self.on_message(ws, path, text)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.clients.discard(ws)

    def _rest_wrapper(self, handler: Any) -> Any:
        async def wrapped(request: web.Request) -> web.Response:
            self.rest_hits.append(str(request.rel_url))
            if self.rest_fail > 0:
                self.rest_fail -= 1
                return web.Response(status=503, text="busy")
            body = await handler(request)
            return web.Response(text=body, content_type="application/json")
        return wrapped


class MemorySink:
    """Collects what a collector publishes, in place of Kafka, for collector unit tests."""

    def __init__(self) -> None:
        self.raws: list[Any] = []
        self.events: list[Any] = []
        self.deadletters: list[dict[str, Any]] = []
        self.prices: list[Any] = []
        self.oi_records: list[Any] = []
        #: The events published as backfill (also in ``events``), in order.
        self.backfilled: list[Any] = []
        self.coverage_records: list[Any] = []

    async def raw(self, frame: Any) -> None:
        self.raws.append(frame)

    async def event(self, ev: Any, backfill: bool = False) -> None:
        self.events.append(ev)
        if backfill:
            self.backfilled.append(ev)

    async def open_interest(self, rec: Any) -> None:
        self.oi_records.append(rec)

    async def price(self, tick: Any) -> None:
        self.prices.append(tick)

    async def deadletter(self, record: dict[str, Any]) -> None:
        self.deadletters.append(record)

    async def coverage(self, rec: Any) -> None:
        self.coverage_records.append(rec)


@contextlib.asynccontextmanager
async def running(collector: Any) -> AsyncIterator[asyncio.Task[None]]:
    """Run a collector in the background for the duration of the block."""
    task = asyncio.create_task(collector.run())
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def run_demo(make_sim: Callable[[], VenueSim],
             tick: Callable[[Any, int, int], Awaitable[None]]) -> None:  # pragma: no cover
    """The manual demo of ``python -m liqstress.streams.sims.<venue>``: serve a simulator on loopback, print
    where, and call ``tick(sim, i, now_ms)`` every second (i = 1, 2, ...) to push frames."""
    async def main() -> None:
        async with make_sim() as sim:
            print("ws:", *(sim.ws_url(p) for p in sim.ws_paths), "rest:", sim.http_base)
            i = 0
            while True:
                await asyncio.sleep(1)
                i += 1
                await tick(sim, i, int(time.time() * 1000))

    asyncio.run(main())
