"""The websocket runner: connect, subscribe, ping, reconnect. Venue knowledge stays in the
venue spec and parsing in :class:`~streams.session.VenueSession`; this module only moves
frames and keeps the health metrics honest.

Two other kinds of source run beside websockets, chosen by the connection's URL: a file
(``file://``, followed like ``tail -F``) and a polled REST resource (http/https with
``Connection.poll`` > 0, see ``Collector._run_poll``). Both hand every line or body to the
same ``_handle`` as a websocket frame, so raw topic, dead letters, metrics and plausibility
checks do not depend on where a frame came from."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from liqstress.config import ConfigError
from liqstress.coverage import (
    REPORT_INTERVAL,
    STATES,
    CoverageError,
    CoverageTracker,
    SourceCoverage,
    coverage_from_json,
)
from liqstress.event import DEFAULT_MAX_NOTIONAL_USD
from liqstress.infra.metrics import Metrics
from liqstress.recording import RawFrame

from .publisher import Sink
from .session import Outcome, VenueSession, deadletter_record
from .venues.base import (
    HISTORY_PREFIX,
    POLL_PREFIX,
    Connection,
    FrameError,
    HistorySpec,
    PollSpec,
    VenueSpec,
)

log = logging.getLogger(__name__)


_RNG = random.Random()

#: What the collector publishes to the raw topic (docs/delivery.md):
#: ``liquidations``: frames that produced a liquidation event or a dead letter, subscribe
#: acks (the history cut-off a re-parse needs) and REST metadata bodies (the contract metadata
#: a re-parse needs), but not the open-interest listings polled every minute;
#: ``all``: every frame kept; ``off``: nothing.
RAW_POLICIES = ("liquidations", "all", "off")
#: Seconds between open-interest and funding polls (issue: at most 60 s).
DEFAULT_OI_INTERVAL = 60.0
#: Seconds of history the warm start reads at most (the longest window is 24 h).
BACKFILL_DEPTH = 86_400.0
#: The warm start's states (``liqstress_backfill_state``, and a coverage record's
#: ``backfill_state``): waiting for metadata, reading, every topic read, some history
#: unreadable (warnings say which), or no warm start (the venue has no public history, or
#: ``--no-backfill``).
BACKFILL_STATES = STATES
#: Tries of one history page (429s, timeouts, 5xx, network errors) before its topic is given
#: up: the warm start is a convenience, it must not hammer a venue that refuses.
BACKFILL_ATTEMPTS = 4
#: Seconds read again before the newest event of the last run (``state_dir``): rows a venue
#: shows a little late are still read; their ids make them count once.
BACKFILL_OVERLAP = 60.0
#: Seconds between two saves of the warm-start state (and one at stop).
STATE_SAVE_INTERVAL = 30.0


def keeps_raw(policy: str, out: Outcome) -> bool:
    """Whether a processed frame goes to the raw topic under ``policy``."""
    if policy == "all":
        return True
    if policy == "off":
        return False
    if out.open_interest or out.skipped:
        # An OI listing is polled every minute and can be hundreds of KB: its records are on
        # the open_interest topic; the body itself is kept under ``all`` (and by ``record``).
        return out.deadletter is not None
    return (bool(out.events) or out.deadletter is not None or out.frame.is_rest
            or out.kind == "ack")


class FileFollower:
    """``tail -F`` for a file, or for the newest file under a directory (rotated hourly files,
    as a node writes them). Returns complete lines only; a partial last line waits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current: Path | None = None
        self.offset = 0
        self.buffer = b""
        self.started = False

    def _newest(self) -> Path | None:
        if self.path.is_file():
            return self.path
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path} does not exist")
        files = [p for p in self.path.rglob("*") if p.is_file()]
        return max(files, key=lambda p: (p.stat().st_mtime, str(p))) if files else None

    def poll(self) -> list[str]:
        newest = self._newest()
        lines: list[str] = []
        if newest is None:
            self.started = True
            return lines
        if newest != self.current:
            if self.current is not None and self.current.exists():
                lines += self._read(self.current)  # the rest of the file we were on
            first = not self.started
            self.current, self.buffer = newest, b""
            # Only on the very first poll is existing content history; a file that appears
            # later (rotation) is read from its start.
            self.offset = newest.stat().st_size if first else 0
        self.started = True
        lines += self._read(self.current)
        return lines

    def _read(self, path: Path) -> list[str]:
        size = path.stat().st_size
        if size < self.offset:  # truncated: start over
            self.offset, self.buffer = 0, b""
        if size == self.offset:
            return []
        with path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read(size - self.offset)
        self.offset = size
        self.buffer += data
        *complete, self.buffer = self.buffer.split(b"\n")
        return [c.decode("utf-8", "replace") for c in complete if c.strip()]


class PongTimeout(Exception):
    pass


class VenueReconnect(Exception):
    """The venue said it is about to drop the connection (a ``reconnect`` frame)."""


class BodyTooLarge(Exception):
    """A REST body over the collector's ``max_rest_bytes``: never read whole."""


#: Close code a websocket library sends when a message exceeds its ``max_size``.
MESSAGE_TOO_BIG = 1009


def describe(exc: BaseException) -> str:
    """A short reason for a failed or lost connection, for logs and the status summary."""
    text = str(exc)
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in text:
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror or text})"
    if isinstance(exc, TimeoutError):
        return text or "timed out"
    if isinstance(exc, InvalidStatus):
        return f"HTTP {exc.response.status_code} on the websocket handshake"
    if isinstance(exc, ConnectionClosed):
        sent, rcvd = exc.sent, exc.rcvd
        if sent is not None and sent.code == 1011 and "keepalive" in sent.reason:
            return "no pong to a websocket ping (keepalive timeout)"
        if sent is not None and sent.code == MESSAGE_TOO_BIG:
            return f"frame too large ({sent.reason})"
        if rcvd is not None:
            return f"closed by the server with {rcvd.code}{f' {rcvd.reason}' if rcvd.reason else ''}"
        return "connection dropped without a close frame"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return text or type(exc).__name__


def read_limit_error(limit: int) -> str:
    return f"body over the {limit}-byte limit (max_rest_bytes)"


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> str:
    """The body of ``resp`` as text, read in chunks and refused (``BodyTooLarge``) as soon as
    it passes ``limit`` bytes (after any content decoding): never more than ``limit`` plus one
    chunk in memory, whatever the server sends or announces."""
    if resp.content_length is not None and resp.content_length > limit:
        raise BodyTooLarge(f"{read_limit_error(limit)}: Content-Length {resp.content_length}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(read_limit_error(limit))
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode(resp.charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know: JSON is UTF-8 anyway
        return b"".join(chunks).decode("utf-8", "replace")


#: Consecutive failed polls (refused, 5xx, 429, unusable body) that take a polled source down;
#: a request left unanswered past the timeout takes it down at once.
POLL_FAILURES = 3


class Pacer:
    """Spaces the requests of a polled source: each one starts ``gap`` seconds after the one
    before at the earliest, later while a backoff holds. Monotonic time: a clock step must not
    burst requests."""

    def __init__(self) -> None:
        self.next_at = 0.0

    async def turn(self, gap: float) -> None:
        delay = self.next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.next_at = time.monotonic() + gap

    def hold(self, delay: float) -> None:
        self.next_at = max(self.next_at, time.monotonic() + delay)


class TokenBucket:
    """At most ``burst`` at once and ``rate`` a second after: in any window of T seconds no
    more than ``burst + rate * T`` pass (a per-minute message budget). Monotonic time."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self.tokens = float(self.burst)
        self.at = time.monotonic()

    async def take(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


def retry_after(value: str | None) -> float | None:
    """Seconds of a ``Retry-After`` header given in seconds; None for none or an HTTP date
    (the backoff then decides)."""
    try:
        secs = float(value) if value is not None else None
    except ValueError:
        return None
    return secs if secs is not None and 0 <= secs < float("inf") else None


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
    expected_acks: int = 0
    awaiting_pong_since: float | None = None
    ping_seq: int = 0
    ws: Any = None
    #: Receipt time of the last price frame kept (``Connection.min_interval``).
    last_kept: float = float("-inf")
    #: Why the connection is not up (the last failure), for warnings and the status summary.
    error: str | None = None
    #: Why the pinger is closing the connection (the close ends the read loop first).
    closing: PongTimeout | None = None
    #: Polled sources: failed polls in a row, the cursor (epoch ms) per topic, and whether the
    #: source was up before (coming back after a failure is counted as a reconnect).
    failures: int = 0
    cursors: dict[str, int] = field(default_factory=dict)
    was_up: bool = False
    #: Paced connections (``Connection.send_interval``): our messages wait here for the
    #: sender task, in order; None while there is no connection or it is not paced.
    outbox: asyncio.Queue[str] | None = None

    async def send(self, msg: str) -> None:
        if self.outbox is not None:
            self.outbox.put_nowait(msg)
        else:
            await self.ws.send(msg)


class Collector:
    def __init__(self, venue: VenueSpec, sink: Sink, metrics: Metrics | None = None, *,
                 urls: dict[str, str] | None = None, ping_interval: float | None = None,
                 pong_timeout: float | None = None, backoff_initial: float = 1.0,
                 backoff_cap: float = 60.0, rest_timeout: float = 20.0,
                 metadata_refresh: float | None = None, subscribe_timeout: float = 30.0,
                 price_interval: float | None = None, clock: Callable[[], float] = time.time,
                 raw_policy: str = "liquidations", max_frame_bytes: int | None = None,
                 max_rest_bytes: int | None = None, ws_ping_interval: float | None = None,
                 ws_ping_timeout: float | None = None,
                 max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD,
                 oi_interval: float = DEFAULT_OI_INTERVAL, poll_period: float | None = None,
                 poll_rate: float | None = None, backfill: bool = False,
                 backfill_depth: float = BACKFILL_DEPTH, backfill_rate: float | None = None,
                 backfill_timeout: float | None = None,
                 state_dir: Path | None = None) -> None:
        if raw_policy not in RAW_POLICIES:
            raise ConfigError(f"raw policy must be one of {', '.join(RAW_POLICIES)}; "
                              f"got {raw_policy!r}")
        if not max_notional_usd > 0:
            raise ConfigError(f"max notional must be > 0 USD, got {max_notional_usd!r}")
        self.venue = venue
        self.sink = sink
        # A recording (``liqstress record``) must hold every frame to be replayable, whatever
        # the policy: the sink says so, and the policy only governs what reaches Kafka.
        self.raw_policy = "all" if getattr(sink, "records_all_frames", False) else raw_policy
        self.metrics = metrics
        self.urls = {**venue.default_urls, **(urls or {})}
        self.ping_interval = ping_interval or venue.ping_interval
        self.pong_timeout = pong_timeout or venue.pong_timeout
        self.ws_ping_interval = ws_ping_interval or venue.ws_ping_interval
        self.ws_ping_timeout = ws_ping_timeout or venue.ws_ping_timeout
        #: Websocket ``max_size``: a bigger message closes the connection with 1009.
        self.max_frame_bytes = max_frame_bytes or venue.max_frame_bytes
        self.max_rest_bytes = max_rest_bytes or venue.max_rest_bytes
        #: Seconds a close handshake may take before the socket is dropped.
        self.close_timeout = 2.0
        self.backoff_initial = backoff_initial
        self.backoff_cap = backoff_cap
        self.rest_timeout = rest_timeout
        self.metadata_refresh = (venue.metadata_refresh if metadata_refresh is None
                                 else metadata_refresh)
        self.subscribe_timeout = subscribe_timeout
        #: Overrides each price connection's ``min_interval`` (tests, or denser prices).
        self.price_interval = price_interval
        self.clock = clock
        self.conns: dict[str, Connection] = {}
        self.file_poll_interval = 0.2
        #: Coverage of the source actually configured (Hyperliquid: vault trades vs node fills).
        self.sampled = (venue.sampled_for(self.urls) if venue.sampled_for is not None
                        else venue.sampled)
        self.session = VenueSession(venue, max_notional_usd=max_notional_usd)
        self.states: dict[str, ConnState] = {}
        self.events_published = 0
        self.reconnects = 0
        self.subscribed = asyncio.Event()
        #: Why the venue has no connection yet (REST metadata failing), for the status summary.
        self.metadata_error: str | None = None
        #: Seconds between open-interest polls; 0 = no polls.
        self.oi_interval = oi_interval
        #: Why the last OI poll failed (None once one succeeds).
        self.oi_error: str | None = None
        #: Polled sources: overrides of each connection's ``poll`` period and of the venue's
        #: ``PollSpec.max_rate`` (tests, or a faster poll where the venue allows it).
        self.poll_period = poll_period
        self.poll_rate = poll_rate
        #: The warm start (``_backfill``): on (the CLI's default; off for a bare Collector,
        #: whose tests count REST requests), how far back, and overrides of the venue's
        #: request rate and of the timeout of one request (tests).
        self.backfill = backfill and venue.history is not None and backfill_depth > 0
        self.backfill_depth = min(backfill_depth, venue.history.depth) if venue.history else 0.0
        self.backfill_rate = backfill_rate
        self.backfill_timeout = backfill_timeout or rest_timeout
        self.backfill_state = "pending" if self.backfill else "off"
        #: Durable mode: the warm start's state per venue lives here (``state_path``), so the
        #: next start reads only the gap since this one stopped.
        self.state_dir = state_dir
        #: Event time of the newest event published (live or history); process start (set
        #: in ``run``) = earliest time from which the windows are complete.
        self.newest_event_ts: float | None = None
        self.started_at: float | None = None
        self.covered_since: float | None = None
        #: Where the last run's windows were complete from (read from ``state_dir``).
        self._prev_covered_since: float | None = None
        #: What the windows cover (live spans, the warm start's span), published on the
        #: coverage topic (``_coverage_loop``) every ``REPORT_INTERVAL`` and on each change.
        self.coverage: CoverageTracker | None = None
        #: Durable mode: the last run's final coverage record (``state_dir``), stated again at
        #: start: its hours are in the topics (journal or Kafka), whatever the coverage
        #: topic's retention kept of it.
        self._prev_coverage: SourceCoverage | None = None
        self._coverage_changed = asyncio.Event()

    # ---- health -------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        """Every connection subscribed and answering (what ``liqstress_source_up`` reports)."""
        return bool(self.states) and all(s.up for s in self.states.values())

    def down_reason(self) -> str:
        """Why the venue is not up, in a few words ("connection refused"); "" when up."""
        if self.up:
            return ""
        if not self.states:
            return self.metadata_error or "loading metadata"
        down = {name: s.error or "connecting" for name, s in self.states.items() if not s.up}
        reasons = sorted(set(down.values()))
        if len(self.states) == 1 or (len(reasons) == 1 and len(down) == len(self.states)):
            return "; ".join(reasons)
        return "; ".join(f"{name}: {why}" for name, why in sorted(down.items()))

    def stall_bounds(self) -> dict[str, float | None]:
        """Worst-case seconds from the moment a venue goes silent to the moment this collector
        has closed the connection and reconnects: ``app`` via its app-level ping (None without
        one; the check tick can delay both the ping and the timeout check), ``protocol`` via
        websocket pings (the library's keepalive: a ping ``ws_ping_interval`` after the last
        pong, the connection failed when its pong is ``ws_ping_timeout`` late). Both include
        the close handshake; ``liqstress_source_up`` drops to 0 before it."""
        if self.venue.poll is not None:
            # A polled source: its request is the ping and the answer the pong. The next
            # request starts within ``ping_interval`` (the longest gap between two), and the
            # watchdog sees it unanswered ``pong_timeout`` later (plus its tick, twice). A dead
            # path and a stuck venue look the same from here: one bound for both, no socket to
            # close.
            bound = self.ping_interval + self.pong_timeout + 2 * self._tick()
            return {"app": bound, "protocol": bound}
        app = None
        if self.ping_interval > 0:
            app = self.ping_interval + self.pong_timeout + 2 * self._tick() + self.close_timeout
        return {"app": app,
                "protocol": self.ws_ping_interval + self.ws_ping_timeout + self.close_timeout}

    def _tick(self) -> float:
        """How often the pinger wakes to ping and check deadlines."""
        periods = [p / 4 for p in (self.ping_interval, self.pong_timeout) if p > 0]
        return min(0.5, *periods)

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
                        body = await self._get(http, url)
                    except BodyTooLarge as exc:
                        # Never parsed, never recorded: a dead letter says what was refused.
                        await self._deadletter(RawFrame(self.venue.id, url, self.clock(), ""),
                                               "too_large", str(exc))
                        delay = backoff.next_delay()
                        self.metadata_error = f"REST body too large ({exc})"
                        log.warning(f"{self.venue.id}: REST %s refused: %s; retry in %.1f s",
                                    url, exc, delay)
                        await asyncio.sleep(delay)
                        continue
                    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                        delay = backoff.next_delay()
                        self.metadata_error = f"REST failing ({describe(exc)})"
                        log.warning(f"{self.venue.id}: REST %s failed (%s); retry in %.1f s",
                                    url, describe(exc), delay)
                        await asyncio.sleep(delay)
                        continue
                    frame = RawFrame(self.venue.id, url, self.clock(), body)
                    out = await self._handle(frame)
                    if out.deadletter is not None:
                        # A 200 carrying a venue error (Bybit retCode, OKX code) is as useless
                        # as a 503: retry rather than run with empty metadata.
                        delay = backoff.next_delay()
                        self.metadata_error = f"REST unusable ({out.deadletter['reason']})"
                        log.warning(f"{self.venue.id}: REST %s unusable (%s); retry in %.1f s",
                                    url, out.deadletter["reason"], delay)
                        await asyncio.sleep(delay)
                        continue
                    backoff.reset()
                    url = self.venue.rest_next(url, body)
        self.metadata_error = None

    async def _get(self, http: aiohttp.ClientSession, url: str, limit: int | None = None) -> str:
        """One REST request's body (``BodyTooLarge`` above ``limit``, by default
        ``max_rest_bytes``; a non-200 is a ``ClientResponseError`` with the response headers).
        A ``#`` fragment carries a POST body (Hyperliquid's /info): it is never sent as part of
        the URL, and it keeps the request identifiable in a recording's ``source``."""
        target, _, post_body = url.partition("#")
        request = (http.post(target, data=post_body, headers={"Content-Type": "application/json"})
                   if post_body else http.get(url))
        async with request as resp:
            body = await read_body(resp, self.max_rest_bytes if limit is None else limit)
            if resp.status != 200:
                raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status,
                                                  message=body[:200], headers=resp.headers)
        return body

    # ---- open interest and funding ---------------------------------------------------------
    def oi_requests(self) -> list[str]:
        """The requests of one OI poll (none when the venue has no OI feed or it is off)."""
        if self.oi_interval <= 0 or self.venue.parse_oi is None:
            return []
        return list(self.venue.oi_urls(self.session.meta, self.urls))

    async def poll_open_interest(self, http: aiohttp.ClientSession) -> bool:
        """One OI poll: every request in order (a later body may use an earlier one's marks),
        each body recorded and parsed like any REST body, its records published. True when
        every request gave a usable body. A failure is logged, counted and dead-lettered where
        there is a body; the next poll simply tries again (no backoff storm: polls are
        ``oi_interval`` apart)."""
        failures: list[tuple[str, str]] = []  # (request, why)
        ex = self.venue.id
        m = self.metrics
        for url in self.oi_requests():
            try:
                body = await self._get(http, url)
            except BodyTooLarge as exc:
                await self._deadletter(RawFrame(ex, url, self.clock(), ""), "too_large", str(exc))
                failures.append((url, f"body too large ({exc})"))
                continue
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failures.append((url, describe(exc)))
                continue
            out = await self._handle(RawFrame(ex, url, self.clock(), body))
            if out.deadletter is not None:
                failures.append((url, f"unusable ({out.deadletter['reason']})"))
        ok = not failures
        if failures:
            # One line per poll, however many of its requests failed (Binance makes seven).
            url, self.oi_error = failures[0]
            more = f" (and {len(failures) - 1} more requests)" if len(failures) > 1 else ""
            log.warning("%s: open-interest poll failed: %s: %s%s; next poll in %.0f s", ex,
                        url, self.oi_error, more, self.oi_interval)
        if ok and m:
            m.oi_last_success_ts.labels(ex).set(self.clock())
        if m:
            m.oi_polls.labels(ex, "ok" if ok else "error").inc()
        return ok

    async def _oi_loop(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.rest_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                started = time.monotonic()
                if await self.poll_open_interest(http):
                    self.oi_error = None
                await asyncio.sleep(max(0.0, self.oi_interval - (time.monotonic() - started)))

    # ---- the warm start: history on start ---------------------------------------------------
    def state_path(self) -> Path | None:
        """The warm-start state of this venue in durable mode (``state_dir``), else None."""
        return None if self.state_dir is None else self.state_dir / f"{self.venue.id}.json"

    def _load_state(self) -> None:
        """The last run's newest event time, coverage start and last coverage record, if it
        left them (a missing or unreadable file is a first start: the full depth is read)."""
        path = self.state_path()
        if path is None or not path.is_file():
            return
        try:
            saved = orjson.loads(path.read_bytes())
            newest, covered = saved.get("newest_ts"), saved.get("covered_since")
            record = saved.get("coverage")
        except (OSError, orjson.JSONDecodeError, AttributeError) as exc:
            log.warning("%s: warm-start state %s unreadable (%s); reading the full %g h", self.venue.id,
                        path, exc, self.backfill_depth / 3600)
            return
        if isinstance(newest, int | float) and not isinstance(newest, bool):
            self.newest_event_ts = float(newest)
        if isinstance(covered, int | float) and not isinstance(covered, bool):
            self._prev_covered_since = float(covered)
        if record is not None:
            try:
                prev = coverage_from_json(record)
            except CoverageError as exc:
                log.warning("%s: last run's coverage in %s unreadable (%s)", self.venue.id,
                            path, exc)
            else:
                if prev.exchange == self.venue.id:
                    self._prev_coverage = prev

    def _save_state(self) -> None:
        """Written atomically (a crash mid-write leaves the previous state)."""
        path = self.state_path()
        if path is None or self.started_at is None:
            return
        covered = self.covered_since if self.covered_since is not None else self.started_at
        state: dict[str, Any] = {"saved_at": self.clock()}
        if self.venue.history is not None:  # what the next warm start resumes from
            state.update(newest_ts=self.newest_event_ts, covered_since=covered)
        if self.coverage is not None:
            state["coverage"] = orjson.loads(self.coverage.record(self.clock()).to_json())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(orjson.dumps(state))
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("%s: cannot save the warm-start state to %s: %s", self.venue.id, path,
                        exc)

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(STATE_SAVE_INTERVAL)
            self._save_state()

    def backfill_since(self, now: float) -> float:
        """Where the warm start begins: ``backfill_depth`` ago, or (durable mode) shortly
        before the newest event the last run published, when that run's windows were complete
        up to it (else its hole is read again: the ids of rows already published dedupe)."""
        floor = now - self.backfill_depth
        prev, covered = self.newest_event_ts, self._prev_covered_since
        if prev is not None and covered is not None and covered <= floor:
            return min(now, max(floor, prev - BACKFILL_OVERLAP))
        return floor

    def _set_backfill_state(self, state: str) -> None:
        self.backfill_state = state
        if self.coverage is not None:
            self.coverage.backfill_state = state
            self._coverage_changed.set()
        if self.metrics:
            for name in BACKFILL_STATES:
                self.metrics.backfill_state.labels(self.venue.id, name).set(
                    1 if name == state else 0)

    def _set_covered_since(self, ts: float) -> None:
        self.covered_since = ts
        if self.metrics:
            self.metrics.source_covered_since.labels(self.venue.id).set(ts)

    def _backfill_outcome(self, outcome: str) -> None:
        if self.metrics:
            self.metrics.backfill_requests.labels(self.venue.id, outcome).inc()

    async def _backfill(self) -> None:
        """The warm start: every topic of the venue's ``HistorySpec``, page by page, from
        ``backfill_since`` to now, each body handled as a frame (source ``HISTORY_PREFIX`` +
        the request's identity: recorded, replayed through the history parser) whose events
        are published with ``backfill: true``. Paced to the venue's rate (``max_rate``, also
        for retries); a 429 holds every request for its ``Retry-After`` (or the backoff,
        whichever is longer). A topic whose page fails ``BACKFILL_ATTEMPTS`` times is given
        up (state ``failed``; the others are still read). Live collection never waits."""
        hist: HistorySpec = self.venue.history  # type: ignore[assignment]
        ex = self.venue.id
        self._set_backfill_state("running")
        now = self.clock()
        since = self.backfill_since(now)
        since_ms, until_ms = int(since * 1000), int(now * 1000)
        topics = list(hist.topics(self.session.meta))
        gap = 1.0 / (self.backfill_rate if self.backfill_rate is not None else hist.max_rate)
        pacer, backoff = Pacer(), Backoff(self.backoff_initial, self.backoff_cap)
        failed: list[str] = []
        #: Topics cut at ``max_pages``: (complete back to, topic).
        cut: list[tuple[float, str]] = []
        try:
            timeout = aiohttp.ClientTimeout(total=self.backfill_timeout)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                if hist.listing is not None:
                    listed = await self._history_listing(http, hist, gap, pacer, backoff)
                    if listed is None:
                        failed.append("(topic listing)")
                    topics = listed or []
                log.info("%s: warm start: %d topics from %.0f s ago", ex, len(topics),
                         now - since)
                for topic in topics:
                    reach = await self._backfill_topic(http, hist, topic, since_ms, until_ms,
                                                       gap, pacer, backoff)
                    if reach is None:
                        failed.append(topic)
                    elif reach > since:
                        cut.append((reach, topic))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug here must not take the live feed down with it
            log.warning("%s: warm start stopped: %s: %s", ex, type(exc).__name__, exc)
            failed.append("*")
        if failed:
            self._set_backfill_state("failed")
            log.warning("%s: warm start incomplete: %d of %d topics not read (%s); windows "
                        "complete from the process start only", ex, len(failed), len(topics),
                        ", ".join(failed[:5]) + (" ..." if len(failed) > 5 else ""))
        else:
            # Read from ``since``; what lies before it (durable mode) the last run covered.
            # A topic cut short is complete back to its oldest liquidation read only: the
            # venue's windows are complete from the latest such point.
            start = now - self.backfill_depth
            if cut:
                reach, topic = max(cut)
                start = reach
                log.warning("%s: warm start cut at %d pages (%s%s): windows complete from "
                            "%.0f s ago", ex, hist.max_pages, topic,
                            f" and {len(cut) - 1} more" if len(cut) > 1 else "", now - reach)
            self._set_covered_since(start)
            if self.coverage is not None:
                self.coverage.backfilled = (start, max(start, now - min(hist.lag,
                                                                        self.backfill_depth)))
            self._set_backfill_state("done")
            log.info("%s: warm start done in %.0f s", ex, self.clock() - now)
        self._save_state()

    async def _backfill_topic(self, http: aiohttp.ClientSession, hist: HistorySpec, topic: str,
                              since_ms: int, until_ms: int, gap: float, pacer: Pacer,
                              backoff: Backoff) -> float | None:
        """One topic's pages: from when the topic is complete (the window's start once read
        to it; cut at ``max_pages``, newest first, the oldest liquidation read), or None when
        it could not be read."""
        ex = self.venue.id
        source = HISTORY_PREFIX + hist.request(self.urls, topic, None, None, None)
        cursor: str | None = None
        oldest: float | None = None
        for _ in range(hist.max_pages):
            url = hist.request(self.urls, topic, since_ms, until_ms, cursor)
            body = await self._history_get(http, url, gap, pacer, backoff, hist.throttled)
            if body is None:
                return None
            out = await self._handle(RawFrame(ex, source, self.clock(), body), history=True)
            if out.events:
                first = min(ev.ts for ev in out.events)
                oldest = first if oldest is None else min(oldest, first)
            try:
                cursor = hist.after(body, since_ms, until_ms, cursor)
            except FrameError as exc:
                reason = out.deadletter["reason"] if out.deadletter else exc.reason
                log.warning(f"{ex}: warm start: %s unusable (%s); topic %s given up", url,
                            reason, topic)
                return None
            if cursor is None:
                return since_ms / 1000
        if hist.newest_first and oldest is not None:
            log.warning(f"{ex}: warm start: more than %d pages of %s; rows before %.0f s "
                        "ago not read", hist.max_pages, topic, self.clock() - oldest)
            return oldest
        log.warning(f"{ex}: warm start: more than %d pages of %s; %s", hist.max_pages, topic,
                    "no liquidation in them" if hist.newest_first else "newer rows not read")
        return None

    async def _history_listing(self, http: aiohttp.ClientSession, hist: HistorySpec,
                               gap: float, pacer: Pacer, backoff: Backoff) -> list[str] | None:
        """The topics of a venue that has them only from a REST listing (``HistorySpec.listing``),
        or None when the listing could not be read (one warning line)."""
        url = hist.listing(self.urls)  # type: ignore[misc]
        body = await self._history_get(http, url, gap, pacer, backoff)
        if body is None:
            return None
        try:
            return list(hist.listing_topics(body))
        except FrameError as exc:
            log.warning(f"{self.venue.id}: warm start: topic listing %s unusable (%s: %s)", url,
                        exc.reason, exc.detail[:200])
            return None

    async def _history_get(self, http: aiohttp.ClientSession, url: str, gap: float,
                           pacer: Pacer, backoff: Backoff,
                           throttled: Callable[[str], bool] | None = None) -> str | None:
        """One history page, tried up to ``BACKFILL_ATTEMPTS`` times; None when given up.
        A body ``throttled`` recognises is a 429 in the venue's own words (no Retry-After).
        One warning line per failed request, never a traceback."""
        ex = self.venue.id
        for attempt in range(1, BACKFILL_ATTEMPTS + 1):
            await pacer.turn(gap)
            wait: float | None = None
            try:
                body = await self._get(http, url)
            except BodyTooLarge as exc:
                self._backfill_outcome("error")
                await self._deadletter(RawFrame(ex, url, self.clock(), ""), "too_large", str(exc))
                why = f"body too large ({exc})"
            except aiohttp.ClientResponseError as exc:
                if exc.status == 429:
                    self._backfill_outcome("rate_limited")
                    wait = max(retry_after((exc.headers or {}).get("Retry-After")) or 0.0,
                               backoff.next_delay())
                    why = "rate limited (HTTP 429)"
                elif exc.status >= 500:
                    self._backfill_outcome("error")
                    wait = backoff.next_delay()
                    why = f"HTTP {exc.status}"
                else:  # this request's fault: asking again gives the same answer
                    self._backfill_outcome("error")
                    why = f"HTTP {exc.status} {exc.message!r:.100}"
            except TimeoutError:
                self._backfill_outcome("timeout")
                wait = backoff.next_delay()
                why = f"no answer within {self.backfill_timeout:g}s"
            except (aiohttp.ClientError, OSError) as exc:
                self._backfill_outcome("error")
                wait = backoff.next_delay()
                why = describe(exc)
            else:
                if throttled is None or not throttled(body):
                    self._backfill_outcome("ok")
                    backoff.reset()
                    return body
                self._backfill_outcome("rate_limited")
                wait = backoff.next_delay()
                why = "rate limited (in the body)"
            if wait is None or attempt == BACKFILL_ATTEMPTS:
                log.warning(f"{ex}: warm start: %s failed: %s; given up", url, why)
                return None
            pacer.hold(wait)
            log.warning(f"{ex}: warm start: %s failed: %s; retry in %.1f s", url, why, wait)
        return None  # pragma: no cover - the loop returns

    # ---- connections ----------------------------------------------------------------------
    async def run(self) -> None:
        self.started_at = self.clock()
        self._load_state()
        if self.metrics:
            self.metrics.init_sources({self.venue.id: self.sampled})
            self.metrics.raw_skipped.labels(self.venue.id)
            for outcome in ("ok", "rate_limited", "timeout", "error"):
                self.metrics.backfill_requests.labels(self.venue.id, outcome)
            self.metrics.backfill_events.labels(self.venue.id)
        self.coverage = CoverageTracker(self.venue.id, self.started_at, sampled=self.sampled)
        self._set_backfill_state(self.backfill_state)
        self._set_covered_since(self.started_at)
        coverage_task = asyncio.create_task(self._coverage_loop(),
                                            name=f"{self.venue.id}:coverage")
        try:
            await self.load_metadata()
        except BaseException:
            coverage_task.cancel()
            raise
        self._tasks: dict[str, asyncio.Task[None]] = {}
        for conn in self.venue.connections(self.session.meta, self.urls):
            if conn.kind == "prices" and self.metrics:
                # At 0 from the start, so "prices stale" alerts on a feed that never delivers.
                self.metrics.source_prices.labels(self.venue.id)
                self.metrics.source_last_price_ts.labels(self.venue.id).set(0)
            self._start_connection(conn)
        background: list[asyncio.Task[None]] = [coverage_task]
        if self.metadata_refresh > 0 and list(self.venue.rest_urls(self.urls)):
            background.append(asyncio.create_task(self._refresh_loop(),
                                                  name=f"{self.venue.id}:refresh"))
        if self.oi_requests():
            if self.metrics:
                # At 0 from the start, so "OI stale" alerts on a poll that never succeeds.
                self.metrics.oi_last_success_ts.labels(self.venue.id).set(0)
                for outcome in ("ok", "error"):
                    self.metrics.oi_polls.labels(self.venue.id, outcome)
                for metric in (self.metrics.oi_records, self.metrics.oi_unpriced,
                               self.metrics.oi_skipped):
                    metric.labels(self.venue.id)
            background.append(asyncio.create_task(self._oi_loop(), name=f"{self.venue.id}:oi"))
        if self.state_dir is not None:
            background.append(asyncio.create_task(self._save_loop(),
                                                  name=f"{self.venue.id}:state"))
        # The warm start runs beside the live connections (started above, never waiting for
        # it), and ends: it is watched apart from the tasks that only end by raising.
        warm = (asyncio.create_task(self._backfill(), name=f"{self.venue.id}:backfill")
                if self.backfill else None)
        try:
            while True:
                # A connection task only ends by raising: surface it instead of idling. The
                # timeout picks up connections a metadata refresh started meanwhile.
                watched = [*self._tasks.values(), *background]
                if not watched:
                    await asyncio.sleep(1.0)
                    continue
                done, _ = await asyncio.wait(watched, timeout=1.0,
                                             return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()
        finally:
            tasks = [*self._tasks.values(), *background, *([warm] if warm else [])]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._set_up(None)
            self._save_state()
            # The stop itself, at once: the venue's windows are missing from here on (the
            # workers would otherwise find out only when the record goes stale).
            with contextlib.suppress(Exception):
                await self.sink.coverage(self.coverage.record(self.clock()))

    def _start_connection(self, conn: Connection) -> None:
        self.conns[conn.name] = conn
        self.states.setdefault(conn.name, ConnState())
        runner = self._run_connection
        if conn.url.startswith("file://"):
            runner = self._run_file
        elif conn.poll > 0:
            if self.venue.poll is None or not conn.url.startswith(("http://", "https://")):
                raise ConfigError(f"{self.venue.id}/{conn.name}: a polled connection needs an "
                                  f"http(s) URL and the venue's PollSpec; got {conn.url!r}")
            runner = self._run_poll
        self._tasks[conn.name] = asyncio.create_task(runner(conn.name),
                                                     name=f"{self.venue.id}:{conn.name}")

    async def _refresh_loop(self) -> None:
        """Reload contract metadata periodically; subscribe new listings on live connections."""
        while True:
            await asyncio.sleep(self.metadata_refresh)
            await self.load_metadata()
            await self.apply_connections(self.venue.connections(self.session.meta, self.urls))

    async def apply_connections(self, fresh: list[Connection]) -> None:
        for conn in fresh:
            old = self.conns.get(conn.name)
            if old is None:
                self._start_connection(conn)
                continue
            self.conns[conn.name] = conn  # a reconnect subscribes the full, updated list
            added = [t for t in conn.topics if t not in set(old.topics)]
            state = self.states[conn.name]
            if added and self.venue.subscribe_for and state.ws is not None:
                msgs = self.venue.subscribe_for(added)
                log.info("%s/%s: subscribing %d new topics", self.venue.id, conn.name, len(added))
                state.expected_acks += len(msgs)
                for msg in msgs:
                    await state.send(msg)

    async def _run_connection(self, name: str) -> None:
        backoff = Backoff(self.backoff_initial, self.backoff_cap)
        state = self.states[name]
        first = True
        while True:
            conn = self.conns[name]
            if not first:
                self.reconnects += 1
                if self.metrics:
                    self.metrics.source_reconnects.labels(self.venue.id).inc()
            first = False
            opened: list[bool] = []
            try:
                await self._connect_once(conn, state, backoff, opened)
                state.error = "closed by the server"
                what = f"the server closed the connection to {conn.url}"
            except asyncio.CancelledError:
                raise
            except InvalidURI as exc:
                # Configuration, not the network: retrying would never help.
                raise ConfigError(f"{self.venue.id}/{conn.name}: bad websocket URL "
                                  f"{conn.url!r} ({exc.msg})") from None
            except (OSError, WebSocketException, TimeoutError, PongTimeout,
                    VenueReconnect) as exc:
                state.error = describe(exc)
                if isinstance(exc, ConnectionClosed) and exc.sent is not None \
                        and exc.sent.code == MESSAGE_TOO_BIG:
                    state.error = f"frame over the {self.max_frame_bytes}-byte limit"
                    await self._frame_too_large(conn, exc)
                what = (f"connection to {conn.url} lost: {state.error}" if opened
                        else f"cannot connect to {conn.url}: {state.error}")
            state.up = False
            self._set_up(state)
            delay = backoff.next_delay()
            # The venue and connection in the template: the CLI's rate limit on repeated
            # warnings (one template per 10 s) then applies per connection, not across venues.
            log.warning(f"{self.venue.id}/{conn.name}: %s; retry in %.1f s", what, delay)
            await asyncio.sleep(delay)

    async def _frame_too_large(self, conn: Connection, exc: ConnectionClosed) -> None:
        """A message over ``max_frame_bytes``: the library refused it unread and closed the
        connection with 1009. Counted (``source_frames{kind="too_large"}``) and dead-lettered
        (without its content, which was never read) before the reconnect."""
        detail = (f"websocket message over max_frame_bytes={self.max_frame_bytes} "
                  f"({exc.sent.reason if exc.sent else ''}); closed with 1009 and reconnected")
        log.warning("%s/%s: a frame from %s exceeded the %d-byte limit (max_frame_bytes); "
                    "closing with 1009 and reconnecting", self.venue.id, conn.name, conn.url,
                    self.max_frame_bytes)
        if self.metrics:
            self.metrics.source_frames.labels(self.venue.id, "too_large").inc()
        await self._deadletter(RawFrame(self.venue.id, conn.url, self.clock(), ""),
                               "too_large", detail)

    async def _deadletter(self, frame: RawFrame, reason: str, detail: str) -> None:
        await self.sink.deadletter(deadletter_record(frame, reason, detail))
        if self.metrics:
            self.metrics.deadletter.labels(self.venue.id, reason).inc()

    async def _run_file(self, name: str) -> None:
        """A file source (``file:///dir``): follow the newest file below it, one frame per
        complete line (a node writing fills, for instance). Starts at the end: history in the
        files is not new. Up while the path exists."""
        state = self.states[name]
        conn = self.conns[name]
        # No history cut-off here: the follower already starts at the end of the files, and a
        # lagging node writes fills dated before our start that are still new to us.
        follower = FileFollower(Path(conn.url[len("file://"):]))
        while True:
            try:
                lines = follower.poll()
            except OSError as exc:
                if state.up or state.error is None:  # once per outage, not every poll
                    log.warning("%s/%s: %s", self.venue.id, conn.name, exc)
                state.error = str(exc)
                lines = None
            up = lines is not None
            if up != state.up:
                state.up = up
                if up:
                    self._mark_up(state, Backoff())
                else:
                    self._set_up(state)
            for line in lines or ():
                await self._handle(RawFrame(self.venue.id, conn.url, self.clock(), line))
            await asyncio.sleep(self.file_poll_interval)

    # ---- polled sources -------------------------------------------------------------------
    def poll_gap(self, conn: Connection, topics: int) -> float:
        """Seconds between two requests of a polled connection: the period spread evenly over
        its topics (every topic once per period), never faster than the venue's ``max_rate``
        allows, never slower than ``ping_interval`` (the liveness bound: ``stall_bounds``)."""
        assert self.venue.poll is not None
        period = self.poll_period if self.poll_period is not None else conn.poll
        rate = self.poll_rate if self.poll_rate is not None else self.venue.poll.max_rate
        return min(max(period / max(topics, 1), 1.0 / rate), self.ping_interval)

    async def _run_poll(self, name: str) -> None:
        """A polled source (``Connection.poll`` > 0): request every topic once per period, one
        request every ``poll_gap`` seconds, and hand every body to ``_handle`` as a frame whose
        ``source`` is the request's stable identity (``POLL_PREFIX`` + the request without its
        cursor and page, see ``PollSpec``), so a recording replays through ``parse``.

        Liveness is the ping that got a reply, never "no data for N seconds" (a market without
        trades is healthy): a poll answered (HTTP 200, a body that is a page) keeps the source
        up; ``POLL_FAILURES`` failed polls in a row, or one request unanswered for
        ``pong_timeout`` seconds (the watchdog), take it down with the reason, and the next
        answered poll brings it back. A 429 holds every request for its ``Retry-After`` (or the
        backoff, whichever is longer); a 5xx, a network error, a timeout or an unusable body
        hold them for the backoff; another 4xx concerns one request and holds nothing. A failed
        poll leaves its topic's cursor where it was: the next round asks for the same rows."""
        state = self.states[name]
        backoff = Backoff(self.backoff_initial, self.backoff_cap)
        pacer = Pacer()
        watchdog = asyncio.create_task(self._poll_watchdog(state))
        timeout = aiohttp.ClientTimeout(total=self.pong_timeout)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http:
                while True:
                    conn = self.conns[name]
                    topics = list(conn.topics)
                    if not topics:  # nothing listed yet: a metadata refresh adds topics
                        await asyncio.sleep(self._tick())
                        continue
                    now_ms = int(self.clock() * 1000)
                    for topic in topics:  # new topics start now: older rows are history
                        state.cursors.setdefault(topic, now_ms)
                    gap = self.poll_gap(conn, len(topics))
                    for topic in topics:
                        if topic in self.conns[name].topics:  # not delisted meanwhile
                            await self._poll_topic(http, self.conns[name], state, topic, gap,
                                                   pacer, backoff)
                    if watchdog.done():
                        watchdog.result()
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)

    async def _poll_topic(self, http: aiohttp.ClientSession, conn: Connection, state: ConnState,
                          topic: str, gap: float, pacer: Pacer, backoff: Backoff) -> None:
        """One poll of one topic: its pages from the cursor on (at most ``max_pages``), each
        body handled as a frame; then the cursor moves to the newest row minus the overlap."""
        poll: PollSpec = self.venue.poll  # type: ignore[assignment]
        ex = self.venue.id
        since = state.cursors[topic]
        source = POLL_PREFIX + poll.request(conn.url, topic, None, None)
        page: str | None = None
        newest: int | None = None
        for _ in range(poll.max_pages):
            await pacer.turn(gap)
            url = poll.request(conn.url, topic, since, page)
            if state.awaiting_pong_since is None:
                state.awaiting_pong_since = self.clock()
            try:
                body = await self._get(http, url, self.max_frame_bytes)
            except BodyTooLarge as exc:
                if self.metrics:
                    self.metrics.source_frames.labels(ex, "too_large").inc()
                await self._deadletter(RawFrame(ex, source, self.clock(), ""), "too_large",
                                       str(exc))
                self._poll_failed(conn, state, url, f"body too large ({exc})")
                return
            except aiohttp.ClientResponseError as exc:
                if exc.status == 429:
                    wait = max(retry_after((exc.headers or {}).get("Retry-After")) or 0.0,
                               backoff.next_delay())
                    pacer.hold(wait)
                    self._poll_failed(conn, state, url, "rate limited (HTTP 429)", wait)
                elif exc.status >= 500:
                    wait = backoff.next_delay()
                    pacer.hold(wait)
                    self._poll_failed(conn, state, url, f"HTTP {exc.status}", wait)
                else:  # this request's fault (a market gone, a bad parameter), not the venue's
                    self._poll_failed(conn, state, url, f"HTTP {exc.status} {exc.message!r:.100}")
                return
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                wait = backoff.next_delay()
                pacer.hold(wait)
                why = (f"no answer within {self.pong_timeout:g}s" if isinstance(exc, TimeoutError)
                       else describe(exc))
                self._poll_failed(conn, state, url, why, wait)
                return
            out = await self._handle(RawFrame(ex, source, self.clock(), body))
            try:
                rows_newest, page = poll.progress(body)
            except FrameError:
                # Dead-lettered by ``_handle`` already (parse refuses what progress does).
                wait = backoff.next_delay()
                pacer.hold(wait)
                reason = out.deadletter["reason"] if out.deadletter else "not a page"
                self._poll_failed(conn, state, url, f"unusable body ({reason})", wait)
                return
            self._poll_answered(state, backoff)
            if rows_newest is not None:
                newest = rows_newest if newest is None else max(newest, rows_newest)
            if page is None:
                break
        else:
            log.warning("%s/%s: more than %d pages of %s since %d; older rows skipped", ex,
                        conn.name, poll.max_pages, topic, since)
        if newest is not None:
            state.cursors[topic] = max(since, newest - int(poll.overlap * 1000))

    def _poll_answered(self, state: ConnState, backoff: Backoff) -> None:
        state.awaiting_pong_since = None
        state.failures = 0
        backoff.reset()
        if not state.up:
            if state.was_up:  # back after an outage: what a reconnect is for a websocket
                self.reconnects += 1
                if self.metrics:
                    self.metrics.source_reconnects.labels(self.venue.id).inc()
            state.was_up = True
            self._mark_up(state, backoff)

    def _poll_failed(self, conn: Connection, state: ConnState, url: str, why: str,
                     wait: float = 0.0) -> None:
        state.failures += 1
        state.error = why
        if state.up and state.failures >= POLL_FAILURES:
            self._mark_down(state)
        # The venue and connection in the template, as for websockets: the CLI's rate limit on
        # repeated warnings then applies per connection.
        log.warning(f"{self.venue.id}/{conn.name}: poll %s failed: %s; next request in %.1f s",
                    url, why, wait)

    async def _poll_watchdog(self, state: ConnState) -> None:
        """Takes a polled source down once a request has gone unanswered for ``pong_timeout``
        seconds (a stuck request, or failures that keep it waiting), without waiting for the
        request itself to give up."""
        tick = self._tick()
        while True:
            await asyncio.sleep(tick)
            since = state.awaiting_pong_since
            if state.up and since is not None and self.clock() - since > self.pong_timeout:
                if not state.failures:
                    state.error = f"no answer to a poll within {self.pong_timeout:g}s"
                self._mark_down(state)

    async def _connect_once(self, conn: Connection, state: ConnState, backoff: Backoff,
                            opened: list[bool]) -> None:
        # Two liveness checks (stall_bounds): protocol pings catch a dead path, the venue-level
        # ping below a venue whose websocket stack answers while its feed is stuck.
        async with websockets.connect(conn.url, open_timeout=15,
                                      ping_interval=self.ws_ping_interval,
                                      ping_timeout=self.ws_ping_timeout,
                                      close_timeout=self.close_timeout,
                                      max_size=self.max_frame_bytes) as ws:
            opened.append(True)
            state.closing = None
            self.session.reset_connection(conn.url)
            state.awaiting_pong_since = None
            state.acks = 0
            state.expected_acks = (len(conn.subscribe) if conn.expected_acks is None
                                   else conn.expected_acks)
            state.ws = ws
            sender: asyncio.Task[None] | None = None
            if conn.send_rate > 0:
                state.outbox = asyncio.Queue()
                sender = asyncio.create_task(self._paced_sender(
                    ws, state.outbox, TokenBucket(conn.send_rate, conn.send_burst)))
            for msg in conn.subscribe:
                await state.send(msg)
            if state.expected_acks == 0:
                self.session.mark_subscribed(conn.url, self.clock())
                self._mark_up(state, backoff)
            pinger = asyncio.create_task(self._pinger(ws, state))
            try:
                async for data in ws:
                    frame = RawFrame(self.venue.id, conn.url, self.clock(), data)
                    interval = (self.price_interval if self.price_interval is not None
                                and conn.kind == "prices" else conn.min_interval)
                    out = await self._handle(frame, interval, state)
                    if out.kind == "reconnect":
                        raise VenueReconnect("the venue asked to reconnect")
                    if out.kind == "pong":
                        state.awaiting_pong_since = None
                    if out.kind == "ack":
                        state.acks += 1
                        # Up only once every subscribe message (one per chunk) is acknowledged.
                        if not state.up and state.acks >= state.expected_acks:
                            self._mark_up(state, backoff)
                    if out.reply is not None:
                        await state.send(out.reply)
                    if pinger.done():
                        pinger.result()
                    if sender is not None and sender.done():
                        sender.result()
            except ConnectionClosed:
                if state.closing is not None:  # our close after a missed pong: say why
                    raise state.closing from None
                raise
            finally:
                state.ws = None
                state.outbox = None
                pinger.cancel()
                if sender is not None:
                    sender.cancel()
                await asyncio.gather(pinger, *([sender] if sender else []),
                                     return_exceptions=True)
            if pinger.done() and not pinger.cancelled() and pinger.exception():
                raise pinger.exception()  # type: ignore[misc]

    @staticmethod
    async def _paced_sender(ws: websockets.ClientConnection, outbox: asyncio.Queue[str],
                            bucket: TokenBucket) -> None:
        """Sends the queued messages in order, as fast as ``bucket`` allows."""
        while True:
            msg = await outbox.get()
            await bucket.take()
            await ws.send(msg)

    async def _pinger(self, ws: websockets.ClientConnection, state: ConnState) -> None:
        tick = self._tick()
        last_ping = connected_at = self.clock()
        while True:
            await asyncio.sleep(tick)
            now = self.clock()
            if not state.up and now - connected_at > self.subscribe_timeout:
                # A rejected or unanswered subscribe would otherwise leave the source down
                # until some unrelated reconnect.
                self._mark_down(state)
                state.closing = PongTimeout(
                    f"subscription not acknowledged within {self.subscribe_timeout:.0f}s")
                await ws.close(code=4001, reason="subscribe not acknowledged")
                raise state.closing
            if state.awaiting_pong_since is not None and now - state.awaiting_pong_since > self.pong_timeout:
                self._mark_down(state)  # at once: the close handshake may take a while
                state.closing = PongTimeout(f"no reply to ping within {self.pong_timeout:.0f}s")
                await ws.close(code=4000, reason="pong timeout")
                raise state.closing
            if self.ping_interval > 0 and now - last_ping >= self.ping_interval:
                state.ping_seq += 1
                await ws.send(self.venue.ping_message(state.ping_seq))
                if state.awaiting_pong_since is None:
                    state.awaiting_pong_since = now
                last_ping = now

    def _mark_down(self, state: ConnState) -> None:
        state.up = False
        self._set_up(state)

    def _mark_up(self, state: ConnState, backoff: Backoff) -> None:
        state.up = True
        state.error = None
        backoff.reset()
        self._set_up(state)
        if all(s.up for s in self.states.values()):
            self.subscribed.set()

    def _set_up(self, state: ConnState | None) -> None:
        up = bool(self.states) and state is not None and all(s.up for s in self.states.values())
        if self.coverage is not None and self.coverage.set_up(up, self.clock()):
            self._coverage_changed.set()
        if self.metrics:
            self.metrics.source_up.labels(self.venue.id).set(1 if up else 0)

    async def _coverage_loop(self) -> None:
        """Publish what the windows cover every ``REPORT_INTERVAL`` and soon after each
        change. The record is written at publish time, so an open gap reaches up to it."""
        assert self.coverage is not None
        if self._prev_coverage is not None:
            await self.sink.coverage(self._prev_coverage)
        while True:
            await self.sink.coverage(self.coverage.record(self.clock()))
            self._coverage_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._coverage_changed.wait(), REPORT_INTERVAL)

    async def _handle(self, frame: RawFrame, min_interval: float = 0.0,
                      state: ConnState | None = None, history: bool = False) -> Outcome:
        # A history body goes to the history parser by name: the compiled path would read it
        # as a websocket frame.
        out = self.session.process_history(frame) if history else self.session.process(frame)
        m = self.metrics
        ex = self.venue.id
        if out.prices and not out.events and state is not None and min_interval > 0:
            # Parsed first: a pong or ack on the same connection must never be throttled.
            if frame.recv_ts - state.last_kept < min_interval:
                if m:
                    m.source_frames.labels(ex, "throttled").inc()
                    m.source_last_message_ts.labels(ex).set(frame.recv_ts)
                out.prices = []
                return out
            state.last_kept = frame.recv_ts
        if keeps_raw(self.raw_policy, out):
            await self.sink.raw(frame)
        elif m:
            m.raw_skipped.labels(ex).inc()
        if m:
            m.source_frames.labels(ex, out.kind).inc()
            if not frame.is_rest and not history:
                m.source_last_message_ts.labels(ex).set(frame.recv_ts)
        if out.deadletter is not None:
            await self.sink.deadletter(out.deadletter)
            if m:
                m.deadletter.labels(ex, out.deadletter["reason"]).inc()
            log.info("%s: dead letter (%s): %s", ex, out.deadletter["reason"],
                     out.deadletter["detail"])
        if history:
            for ev in out.events:
                await self.sink.event(ev, backfill=True)
        else:
            for ev in out.events:
                await self.sink.event(ev)
        if out.events:
            newest = max(ev.ts for ev in out.events)
            if self.newest_event_ts is None or newest > self.newest_event_ts:
                self.newest_event_ts = newest
        for tick in out.prices:
            await self.sink.price(tick)
        for rec in out.open_interest:
            await self.sink.open_interest(rec)
        if m and (out.open_interest or out.skipped):
            m.oi_records.labels(ex).inc(len(out.open_interest))
            unvalued = sum(1 for r in out.open_interest if r.oi_usd is None)
            if unvalued:
                m.oi_unpriced.labels(ex).inc(unvalued)
            if out.skipped:
                m.oi_skipped.labels(ex).inc(out.skipped)
        if out.prices and m:
            m.source_prices.labels(ex).inc(len(out.prices))
            m.source_last_price_ts.labels(ex).set(frame.recv_ts)
        self.events_published += len(out.events)
        if m:
            if out.events:
                m.source_events.labels(ex).inc(len(out.events))
                if history:  # old news: it must not make a silent live feed look alive
                    m.backfill_events.labels(ex).inc(len(out.events))
                else:
                    m.source_last_liquidation_ts.labels(ex).set(frame.recv_ts)
            if out.unpriced:
                m.unpriced.labels(ex).inc(out.unpriced)
            if out.snapshot_dropped:
                m.snapshot_dropped.labels(ex).inc(out.snapshot_dropped)
        return out
