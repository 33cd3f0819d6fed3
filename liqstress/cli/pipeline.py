"""Wiring: collectors, worker, broker and metrics server put together for the CLI commands.
Kept out of cli.py so tests drive the same code paths the commands run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from liqstress.agents.app import create_app
from liqstress.agents.publishing import publish
from liqstress.agents.state import WorkerState
from liqstress.cli.output import Progress, window_stats
from liqstress.cli.output import format_table as format_table  # the table replay prints
from liqstress.config import ConfigError, Topics, WorkerSettings
from liqstress.coverage import SCHEMA_VERSION as COVERAGE_VERSION
from liqstress.coverage import SourceCoverage
from liqstress.event import DEFAULT_MAX_NOTIONAL_USD, LiquidationEvent
from liqstress.infra.broker import EmbeddedBroker
from liqstress.infra.metrics import Metrics
from liqstress.open_interest import OpenInterest
from liqstress.prices import PriceTick
from liqstress.recording import RawFrame, RecordingError, read_recording
from liqstress.streams.collector import Collector
from liqstress.streams.publisher import KafkaSink, Sink
from liqstress.streams.session import VenueSession, deadletter_record
from liqstress.streams.venues import all_venue_ids, get_venue
from liqstress.streams.venues.base import HISTORY_PREFIX

log = logging.getLogger(__name__)


# ---- metrics server --------------------------------------------------------------------------
@contextlib.contextmanager
def metrics_server(metrics: Metrics, port: int, host: str = "127.0.0.1") -> Iterator[int]:
    """Serve /metrics from the injected registry, and on the same port the worker's read-only
    JSON API under /api/v1/ (agents/api.py, docs/api.md; 404 in a process without a worker);
    port 0 picks a free port (tests)."""
    import threading
    from wsgiref.simple_server import make_server

    from prometheus_client.exposition import ThreadingWSGIServer, _get_best_family, _SilentHandler

    from liqstress.agents.api import make_app

    class _Server(ThreadingWSGIServer):
        """prometheus_client's threading server, with its own address family (IPv6 hosts)."""

    try:
        _Server.address_family, addr = _get_best_family(host, port)
        server = make_server(addr, port, make_app(metrics.registry), _Server,
                             handler_class=_SilentHandler)
    except OSError as exc:
        raise ConfigError(f"cannot serve /metrics on {host}:{port}: {exc.strerror or exc} "
                          f"(--metrics-port/--metrics-host, LIQSTRESS_METRICS_PORT/_HOST)") from None
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.asynccontextmanager
async def broker_or_embedded(broker: str | None) -> AsyncIterator[tuple[str, bool]]:
    """Yield (bootstrap, embedded?); starts Tansu when no broker is configured."""
    if broker:
        yield broker, False
        return
    emb = EmbeddedBroker()
    await asyncio.to_thread(emb.start)
    try:
        yield emb.bootstrap, True
    finally:
        await asyncio.to_thread(emb.stop)


# ---- collectors --------------------------------------------------------------------------------
#: Schemes each kind of venue URL key takes (VenueSpec.url_kinds).
URL_SCHEMES = {"ws": ("ws", "wss"), "rest": ("http", "https"), "file": ("file",)}


def check_venue_urls(venue_urls: dict[str, dict[str, str]],
                     exchanges: list[str] | None = None) -> dict[str, dict[str, str]]:
    """``--venue-urls`` checked against the venues before anything connects: a known venue, a
    key that venue reads (its ``default_urls`` and ``optional_urls``), and a URL of the kind
    the key takes (ws/wss, http/https, file; ``off`` where the venue allows it) with a host.
    Raises ConfigError naming the entry; overrides of venues not in ``exchanges`` are kept
    but logged, since they change nothing."""
    known = all_venue_ids()
    for venue_id, urls in venue_urls.items():
        if venue_id not in known:
            raise ConfigError(f"--venue-urls: unknown venue {venue_id!r}; known: "
                              f"{', '.join(sorted(known))}")
        spec = get_venue(venue_id)
        kinds = spec.url_kinds()
        for key, url in urls.items():
            entry = f"{venue_id}.{key}={url}"
            kind = kinds.get(key)
            if kind is None:
                raise ConfigError(f"--venue-urls: {venue_id} has no URL key {key!r} in "
                                  f"{entry!r}; its keys: {', '.join(kinds)}")
            if url == "off" and key in spec.off_urls:
                continue
            problem = _url_problem(url, kind)
            if problem:
                off = " (or off)" if key in spec.off_urls else ""
                raise ConfigError(f"--venue-urls: {entry!r}: {problem}; {venue_id}.{key} takes "
                                  f"a {'/'.join(URL_SCHEMES[kind])} URL{off}")
        if exchanges is not None and venue_id not in exchanges:
            log.warning("--venue-urls: %s is not among the exchanges run (%s): its overrides "
                        "are unused", venue_id, ",".join(exchanges))
    return venue_urls


def _url_problem(url: str, kind: str) -> str | None:
    if kind == "file" and url.startswith("/"):
        return None  # a bare absolute path stands for file://<path>
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if not parts.scheme or "://" not in url:
        return "not a URL (no scheme://)"
    if parts.scheme.lower() not in URL_SCHEMES[kind]:
        return f"wrong scheme {parts.scheme + '://'!r}"
    if kind == "file":
        return None if parts.path.startswith("/") else "a file URL needs an absolute path"
    if not parts.hostname:
        return "no host"
    return None


def build_collectors(exchanges: list[str], sink: Sink, metrics: Metrics | None,
                     venue_urls: dict[str, dict[str, str]], *,
                     max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD,
                     **kwargs: Any) -> list[Collector]:
    return [Collector(get_venue(ex), sink, metrics, urls=venue_urls.get(ex),
                      max_notional_usd=max_notional_usd, **kwargs)
            for ex in exchanges]


def status_line(collectors: list[Collector]) -> str:
    """``venues up 9/12: down binance (connection refused), ...`` from each collector's state."""
    down = [c for c in collectors if not c.up]
    line = f"venues up {len(collectors) - len(down)}/{len(collectors)}"
    if down:
        line += ": down " + ", ".join(f"{c.venue.id} ({c.down_reason()})" for c in down)
    return line


async def _report_status(collectors: list[Collector], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        log.info("%s", status_line(collectors))


async def run_collectors(collectors: list[Collector], stop: asyncio.Event,
                         status_interval: float = 60.0) -> None:
    """Run every collector until ``stop`` (or one fails: a configuration error), with a
    one-line INFO summary of which venues are up every ``status_interval`` seconds."""
    tasks = [asyncio.create_task(c.run(), name=f"collector:{c.venue.id}") for c in collectors]
    stopper = asyncio.create_task(stop.wait())
    reporter = asyncio.create_task(_report_status(collectors, status_interval))
    try:
        done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
        for t in done:
            if t is not stopper and t.exception():
                raise t.exception()  # type: ignore[misc]
    finally:
        for t in [*tasks, stopper, reporter]:
            t.cancel()
        await asyncio.gather(*tasks, stopper, reporter, return_exceptions=True)


# ---- normalize ---------------------------------------------------------------------------------
@dataclass
class FileProcessing:
    events: list[LiquidationEvent] = field(default_factory=list)
    deadletters: list[dict[str, Any]] = field(default_factory=list)
    frames: list[RawFrame] = field(default_factory=list)
    errors: int = 0
    last_recv_ts: float | None = None
    snapshot_dropped: int = 0
    unpriced: int = 0
    prices: list[PriceTick] = field(default_factory=list)
    open_interest: list[OpenInterest] = field(default_factory=list)
    #: Positions in ``events`` of those read from history bodies (a recorded warm start):
    #: published with ``backfill: true``, as the live collector did.
    backfill_at: set[int] = field(default_factory=set)
    first_recv_ts: float | None = None
    #: Per venue, the earliest event time read from its history bodies.
    backfill_from: dict[str, float] = field(default_factory=dict)

    def coverage_records(self) -> list[SourceCoverage]:
        """What a recording covers, as its collectors would have reported it at its end: each
        venue live from the recording's first frame to its last (a recording is one session;
        its outages are not recorded), plus the span its recorded warm start read back."""
        if self.first_recv_ts is None or self.last_recv_ts is None:
            return []
        known = set(all_venue_ids())
        exchanges = sorted(({f.exchange for f in self.frames} | set(self.backfill_from)) & known)
        return [SourceCoverage(
            v=COVERAGE_VERSION, exchange=ex, ts=self.last_recv_ts, live_since=self.first_recv_ts,
            backfilled=((self.backfill_from[ex], self.first_recv_ts)
                        if self.backfill_from.get(ex, self.first_recv_ts) < self.first_recv_ts
                        else None),
            gaps=(), backfill_state="done" if ex in self.backfill_from else "off",
            sampled=get_venue(ex).sampled) for ex in exchanges]

    async def send(self, sink: Sink) -> None:
        """Queue the raw frames (kept with ``keep_frames``), prices, open interest, events and
        the recording's coverage on ``sink``, in that order, the one ``replay`` and the demo's
        history share (the dead letters are the
        caller's: only ``replay`` sends them). No flush: ``replay`` watches the backlog drain."""
        for frame in self.frames:
            await sink.raw(frame)
        for tick in self.prices:
            await sink.price(tick)
        for rec in self.open_interest:
            await sink.open_interest(rec)
        backfill = self.backfill_at
        for i, ev in enumerate(self.events):
            if i in backfill:
                await sink.event(ev, backfill=True)
            else:
                await sink.event(ev)
        # What the recording covers, so the windows' coverage says these venues hold it.
        for rec in self.coverage_records():
            await sink.coverage(rec)


def process_recording(fh: IO[bytes], on_error: Callable[[int, str], None],
                      keep_frames: bool = False,
                      on_progress: Callable[[int], None] | None = None,
                      max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD) -> FileProcessing:
    """Run every line through the venue sessions the live collector uses (with the same
    single-liquidation notional cap)."""
    out = FileProcessing()
    sessions: dict[str, VenueSession] = {}
    for lineno, item in read_recording(fh):
        if on_progress:
            on_progress(lineno)
        if isinstance(item, RecordingError):
            out.errors += 1
            on_error(lineno, f"bad_recording_line: {item}")
            out.deadletters.append({"exchange": "", "source": "recording", "recv_ts": time.time(),
                                    "reason": "bad_recording_line", "detail": f"line {lineno}: {item}"})
            continue
        frame = item
        out.last_recv_ts = frame.recv_ts if out.last_recv_ts is None else max(out.last_recv_ts, frame.recv_ts)
        out.first_recv_ts = frame.recv_ts if out.first_recv_ts is None else min(out.first_recv_ts, frame.recv_ts)
        if keep_frames:
            out.frames.append(frame)
        session = sessions.get(frame.exchange)
        if session is None:
            try:
                session = sessions[frame.exchange] = VenueSession(
                    get_venue(frame.exchange), max_notional_usd=max_notional_usd)
            except KeyError as exc:
                out.errors += 1
                on_error(lineno, f"unknown_exchange: {exc}")
                out.deadletters.append(deadletter_record(frame, "unknown_exchange", str(exc)))
                continue
        history = frame.source.startswith(HISTORY_PREFIX)
        # History bodies by name, as the collector hands them over (the compiled path of a
        # venue would read one as a websocket frame).
        res = session.process_history(frame) if history else session.process(frame)
        if history:
            out.backfill_at.update(range(len(out.events), len(out.events) + len(res.events)))
            if res.events:
                first = min(ev.ts for ev in res.events)
                out.backfill_from[frame.exchange] = min(
                    out.backfill_from.get(frame.exchange, first), first)
        if res.deadletter is not None:
            out.errors += 1
            on_error(lineno, f"{res.deadletter['reason']}: {res.deadletter['detail']}")
            out.deadletters.append(res.deadletter)
        out.events.extend(res.events)
        out.prices.extend(res.prices)
        out.open_interest.extend(res.open_interest)
        out.snapshot_dropped += res.snapshot_dropped
        out.unpriced += res.unpriced
    return out


# ---- worker ------------------------------------------------------------------------------------
def worker_settings(bootstrap: str, embedded: bool, **overrides: Any) -> WorkerSettings:
    s = WorkerSettings(broker=bootstrap, **overrides)
    if embedded and "session_timeout" not in overrides:
        s.session_timeout = 6.0
    return s


@dataclass
class ReplayResult:
    state: WorkerState
    processing: FileProcessing
    topics: Topics
    bootstrap: str

    def summary(self) -> dict[str, Any]:
        snap = self.state.last_snapshot
        assert snap is not None
        out: dict[str, Any] = {"windows": snap.usd_by_exchange(),
                               "events": self.state.store.events,
                               "prices": self.state.prices.ticks,
                               "deadletter": len(self.processing.deadletters)}
        # Per window: counts, totals and the largest liquidation, per exchange and overall.
        out["exchanges"], out["totals"] = window_stats(snap, self.processing.events)
        res = self.state.last_stress
        if res is not None:
            near = res.near_extreme
            out["signals"] = {
                "stress_index": res.index.value, "level": res.index.level,
                "long_share_1h": res.imbalance["1h"].long_share,
                "long_spike_multiple": res.spike["long"].multiple,
                "top2_share_1h": res.concentration["1h"].top2_share,
                "deleveraging": res.deleveraging.label,
                "long_share_near_low": near.long_share_near_low if near else None,
                "breadth_down_1h": res.breadth.down_1h_share if res.breadth else None,
                "divergence_coins": sorted(c for c, d in res.divergence.items() if d.flag),
            }
        return out


async def replay(path: str, broker: str | None = None, metrics: Metrics | None = None,
                 serve: Callable[[ReplayResult], Any] | None = None, quiet: bool = False,
                 timeout: float = 300.0,
                 max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD) -> ReplayResult:
    """Recording → same parse path → Kafka → Faust worker → windows at the recording's end."""
    progress = Progress(os.path.getsize(path)) if not quiet else None
    try:
        return await _replay(path, broker, metrics, serve, timeout, max_notional_usd, progress)
    finally:
        if progress:
            # A replay that fails midway must not leave the bar drawn or handlers wrapped.
            progress.close()


async def _replay(path: str, broker: str | None, metrics: Metrics | None,
                  serve: Callable[[ReplayResult], Any] | None, timeout: float,
                  max_notional_usd: float, progress: Progress | None) -> ReplayResult:
    metrics = metrics or Metrics.create()
    size = os.path.getsize(path)
    errors: list[str] = []
    with open(path, "rb") as fh:
        def on_progress(_: int) -> None:
            if progress:
                progress.update(fh.tell(), "parse")
        processing = process_recording(
            fh, lambda n, msg: errors.append(f"line {n}: {msg}"), keep_frames=True,
            on_progress=on_progress, max_notional_usd=max_notional_usd)
    if progress:
        progress.update(size, "parse")
    for e in errors:
        print(e, file=sys.stderr)
    # A unique prefix keeps a replay on a shared cluster away from live topics and workers.
    prefix = f"replay-{uuid.uuid4().hex[:8]}." if broker else ""
    topics = Topics.with_prefix(prefix)
    exchanges = sorted({f.exchange for f in processing.frames})
    async with broker_or_embedded(broker) as (bootstrap, embedded):
        settings = worker_settings(bootstrap, embedded, topics=topics, clock="event",
                                   app_id=f"liqstress-replay-{uuid.uuid4().hex[:8]}",
                                   refresh_interval=1.0, max_notional_usd=max_notional_usd)
        metrics.init_exchanges([e for e in exchanges])
        for dl in processing.deadletters:
            metrics.deadletter.labels(dl.get("exchange", ""), dl["reason"]).inc()
        app, state = create_app(settings, metrics)
        await app.start()
        sink = KafkaSink(bootstrap, topics)
        await sink.start()
        try:
            n = (len(processing.frames) + len(processing.events) + len(processing.deadletters)
                 + len(processing.prices))
            sent = 0
            await processing.send(sink)
            for dl in processing.deadletters:
                await sink.deadletter(dl)
            while sink.backlog:
                sent = n - sink.backlog
                if progress:
                    progress.update(int(size * sent / max(n, 1)), "publish")
                await asyncio.sleep(0.05)
            await sink.flush()
            if progress:
                progress.update(size, "publish")
            targets = {p: o for (t, p), o in sink.last_offsets.items() if t == topics.events}
            price_targets = {p: o for (t, p), o in sink.last_offsets.items()
                             if t == topics.prices}
            deadline = time.monotonic() + timeout
            while (any(state.offsets.get(p, -1) < o for p, o in targets.items())
                   or any(state.price_offsets.get(p, -1) < o for p, o in price_targets.items())):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"worker did not catch up within {timeout:.0f}s: "
                                       f"{state.offsets} < {targets} or "
                                       f"{state.price_offsets} < {price_targets}")
                if progress:
                    done = sum(min(state.offsets.get(p, -1) + 1, o + 1) for p, o in targets.items())
                    progress.update(int(size * done / max(sum(o + 1 for o in targets.values()), 1)),
                                    "worker")
                await asyncio.sleep(0.05)
            if progress:
                progress.update(size, "worker")
            while not (state.aggregating and state.aggregator_ready):
                # One worker owns every partition: the aggregator role is its own.
                if time.monotonic() > deadline:
                    raise TimeoutError("the worker did not become the aggregator")
                await asyncio.sleep(0.05)
            state.fixed_now = processing.last_recv_ts or time.time()
            for rec in processing.coverage_records():
                state.coverage.apply(rec)
            state.refresh()
            windows_out = app.topic(topics.windows, value_serializer="raw")
            signals_out = app.topic(topics.signals, value_serializer="raw")
            await publish(state, lambda k, v: windows_out.send(key=k, value=v),
                          lambda k, v: signals_out.send(key=k, value=v))
            result = ReplayResult(state, processing, topics, bootstrap)
            if serve is not None:
                await serve(result)
            return result
        finally:
            await sink.stop()
            await app.stop()


def recording_path_ok(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such recording: {path}")
    return p
