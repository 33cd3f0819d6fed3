"""The websocket runner: connect, subscribe, ping, reconnect. Venue knowledge stays in the
venue spec and parsing in :class:`~streams.session.VenueSession`; this module only moves
frames and keeps the health metrics honest."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import websockets
from websockets.exceptions import WebSocketException

from liqstress.metrics import Metrics
from liqstress.recording import RawFrame

from .publisher import Sink
from .session import Outcome, VenueSession
from .venues.base import Connection, VenueSpec

log = logging.getLogger(__name__)


_RNG = random.Random()


class PongTimeout(Exception):
    pass


@dataclass
class Backoff:
    """Exponential backoff with full jitter; reset once a connection has been subscribed."""

    initial: float = 1.0
    cap: float = 60.0
    attempt: int = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.initial * (2 ** self.attempt))
        self.attempt += 1
        return _RNG.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class ConnState:
    up: bool = False
    acks: int = 0
    awaiting_pong_since: float | None = None
    ping_seq: int = 0


class Collector:
    def __init__(self, venue: VenueSpec, sink: Sink, metrics: Metrics | None = None, *,
                 urls: dict[str, str] | None = None, ping_interval: float | None = None,
                 pong_timeout: float | None = None, backoff_initial: float = 1.0,
                 backoff_cap: float = 60.0, rest_timeout: float = 20.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.venue = venue
        self.sink = sink
        self.metrics = metrics
        self.urls = {**venue.default_urls, **(urls or {})}
        self.ping_interval = ping_interval or venue.ping_interval
        self.pong_timeout = pong_timeout or venue.pong_timeout
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.rest_timeout = rest_timeout
        self.clock = clock
        self.session = VenueSession(venue)
        self.states: dict[str, ConnState] = {}
        self.events_published = 0
        self.reconnects = 0
        self.subscribed = asyncio.Event()

    # ---- REST metadata -------------------------------------------------------------------
    async def load_metadata(self) -> None:
        """Fetch every REST listing the venue needs, retrying with backoff until all loaded:
        without contract values the venue's notionals would be unpriceable or wrong."""
        urls = list(self.venue.rest_urls(self.urls))
        if not urls:
            return
        backoff = Backoff(self.backoff_initial, self.backoff_cap)
        timeout = aiohttp.ClientTimeout(total=self.rest_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            for first_url in urls:
                url: str | None = first_url
                while url:
                    try:
                        async with http.get(url) as resp:
                            body = await resp.text()
                            if resp.status != 200:
                                raise aiohttp.ClientResponseError(
                                    resp.request_info, (), status=resp.status, message=body[:200])
                    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                        delay = backoff.next_delay()
                        log.warning("%s: REST %s failed (%s); retry in %.1fs", self.venue.id,
                                    url, exc, delay)
                        await asyncio.sleep(delay)
                        continue
                    frame = RawFrame(self.venue.id, url, self.clock(), body)
                    out = await self._handle(frame)
                    if out.deadletter is not None:
                        # A 200 carrying a venue error (Bybit retCode, OKX code) is as useless
                        # as a 503: retry rather than run with empty metadata.
                        delay = backoff.next_delay()
                        log.warning("%s: REST %s unusable (%s); retry in %.1fs", self.venue.id,
                                    url, out.deadletter["reason"], delay)
                        await asyncio.sleep(delay)
                        continue
                    backoff.reset()
                    url = self.venue.rest_next(url, body)

    # ---- websocket ------------------------------------------------------------------------
    async def run(self) -> None:
        if self.metrics:
            self.metrics.init_sources({self.venue.id: self.venue.sampled})
        await self.load_metadata()
        conns = self.venue.connections(self.session.meta, self.urls)
        tasks = [asyncio.create_task(self._run_connection(c), name=f"{self.venue.id}:{c.name}")
                 for c in conns]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._set_up(None)

    async def _run_connection(self, conn: Connection) -> None:
        backoff = Backoff(self.backoff_initial, self.backoff_cap)
        state = self.states.setdefault(f"{conn.name}|{conn.url}", ConnState())
        first = True
        while True:
            if not first:
                self.reconnects += 1
                if self.metrics:
                    self.metrics.source_reconnects.labels(self.venue.id).inc()
            first = False
            try:
                await self._connect_once(conn, state, backoff)
                log.warning("%s/%s: server closed the connection", self.venue.id, conn.name)
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, TimeoutError, PongTimeout) as exc:
                log.warning("%s/%s: connection lost: %s", self.venue.id, conn.name,
                            exc or type(exc).__name__)
            state.up = False
            self._set_up(state)
            delay = backoff.next_delay()
            await asyncio.sleep(delay)

    async def _connect_once(self, conn: Connection, state: ConnState, backoff: Backoff) -> None:
        # Protocol pings stay on (the library answers the server's), but liveness is judged
        # by the venue-level ping below, which the venue must answer.
        async with websockets.connect(conn.url, open_timeout=15, ping_interval=20,
                                      ping_timeout=20, close_timeout=2,
                                      max_size=2 ** 24) as ws:
            self.session.reset_connection(conn.url)
            state.awaiting_pong_since = None
            state.acks = 0
            for msg in conn.subscribe:
                await ws.send(msg)
            if not conn.subscribe:
                self.session.mark_subscribed(conn.url, self.clock())
                self._mark_up(state, backoff)
            pinger = asyncio.create_task(self._pinger(ws, state))
            try:
                async for data in ws:
                    frame = RawFrame(self.venue.id, conn.url, self.clock(), data)
                    out = await self._handle(frame)
                    if out.kind == "pong":
                        state.awaiting_pong_since = None
                    if out.kind == "ack":
                        state.acks += 1
                        # Up only once every subscribe message (one per chunk) is acknowledged.
                        if not state.up and state.acks >= len(conn.subscribe):
                            self._mark_up(state, backoff)
                    if out.reply is not None:
                        await ws.send(out.reply)
                    if pinger.done():
                        pinger.result()
            finally:
                pinger.cancel()
                await asyncio.gather(pinger, return_exceptions=True)
            if pinger.done() and not pinger.cancelled() and pinger.exception():
                raise pinger.exception()  # type: ignore[misc]

    async def _pinger(self, ws: websockets.ClientConnection, state: ConnState) -> None:
        tick = min(1.0, self.ping_interval / 4, self.pong_timeout / 4)
        last_ping = self.clock()
        while True:
            await asyncio.sleep(tick)
            now = self.clock()
            if state.awaiting_pong_since is not None and now - state.awaiting_pong_since > self.pong_timeout:
                await ws.close(code=4000, reason="pong timeout")
                raise PongTimeout(f"no reply to ping within {self.pong_timeout:.0f}s")
            if now - last_ping >= self.ping_interval:
                state.ping_seq += 1
                await ws.send(self.venue.ping_message(state.ping_seq))
                if state.awaiting_pong_since is None:
                    state.awaiting_pong_since = now
                last_ping = now

    def _mark_up(self, state: ConnState, backoff: Backoff) -> None:
        state.up = True
        backoff.reset()
        self._set_up(state)
        if all(s.up for s in self.states.values()):
            self.subscribed.set()

    def _set_up(self, state: ConnState | None) -> None:
        if not self.metrics:
            return
        up = bool(self.states) and state is not None and all(s.up for s in self.states.values())
        self.metrics.source_up.labels(self.venue.id).set(1 if up else 0)

    async def _handle(self, frame: RawFrame) -> Outcome:
        out = self.session.process(frame)
        await self.sink.raw(frame)
        m = self.metrics
        ex = self.venue.id
        if m:
            m.source_frames.labels(ex, out.kind).inc()
            if not frame.is_rest:
                m.source_last_message_ts.labels(ex).set(frame.recv_ts)
        if out.deadletter is not None:
            await self.sink.deadletter(out.deadletter)
            if m:
                m.deadletter.labels(ex, out.deadletter["reason"]).inc()
            log.info("%s: dead letter (%s): %s", ex, out.deadletter["reason"],
                     out.deadletter["detail"])
        for ev in out.events:
            await self.sink.event(ev)
        self.events_published += len(out.events)
        if m:
            if out.events:
                m.source_events.labels(ex).inc(len(out.events))
                m.source_last_liquidation_ts.labels(ex).set(frame.recv_ts)
            if out.unpriced:
                m.unpriced.labels(ex).inc(out.unpriced)
            if out.snapshot_dropped:
                m.snapshot_dropped.labels(ex).inc(out.snapshot_dropped)
        return out
