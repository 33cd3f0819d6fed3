"""Pure frame processing shared by the live collector, ``normalize`` and ``replay``.

A :class:`VenueSession` follows one venue: it loads REST metadata, parses websocket frames
and poll bodies, drops history the venue replays on subscribe (and the rows a poll reads
again), and turns every failure into a dead-letter record with a reason. It never touches a socket or Kafka, so a recording processed here gives
exactly what the live collector published.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from liqstress.event import _FIELDS as EVENT_FIELDS
from liqstress.event import (
    DEFAULT_MAX_NOTIONAL_USD,
    EARLIEST_TS,
    MAX_AHEAD_SECONDS,
    SCHEMA_VERSION,
    LiquidationEvent,
    implausible,
)
from liqstress.open_interest import OpenInterest
from liqstress.prices import PriceTick
from liqstress.recording import RawFrame

from .venues.base import HISTORY_PREFIX, POLL_PREFIX, FrameError, FrameKind, Metadata, VenueSpec

#: Largest inflated frame accepted (gzip venues): a few hundred KB is the biggest real frame;
#: anything beyond this is a bomb or garbage and becomes a ``too_large`` dead letter.
MAX_INFLATED_BYTES = 8 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def inflate(data: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Gunzip ``data`` (one or more members) without ever holding more than ``limit`` + 1
    inflated bytes: ``too_large`` above it, ``bad_gzip`` for anything not a complete gzip
    stream. ``gzip.decompress`` would inflate a 1 MB bomb to 1 GB before we could look."""
    d = zlib.decompressobj(wbits=31)  # gzip header and trailer only, no raw/zlib streams
    try:
        chunk = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise FrameError("bad_gzip", str(exc)) from exc
    if d.eof and not d.unused_data and len(chunk) <= limit:
        return chunk  # one complete member, nothing after it: the usual frame
    # Anything else (several members, padding, garbage, truncation, above the limit) takes
    # the general loop below, from the start: the same results as ever.
    out: list[bytes] = []
    total = 0
    while True:
        d = zlib.decompressobj(wbits=31)  # gzip header and trailer only, no raw/zlib streams
        try:
            chunk = d.decompress(data, limit - total + 1)
        except zlib.error as exc:
            raise FrameError("bad_gzip", str(exc)) from exc
        total += len(chunk)
        if total > limit:
            raise FrameError("too_large", f"inflates to more than {limit} bytes")
        out.append(chunk)
        if not d.eof:
            raise FrameError("bad_gzip", "compressed data ended before the end-of-stream marker")
        data = d.unused_data
        if not data.strip(b"\x00"):  # trailing zero padding is tolerated, as by gzip
            return b"".join(out)
        if data[:2] != _GZIP_MAGIC:
            raise FrameError("bad_gzip", "trailing garbage after gzip member")


@dataclass(slots=True)
class Outcome:
    frame: RawFrame
    kind: FrameKind | str
    events: list[LiquidationEvent] = field(default_factory=list)
    deadletter: dict[str, Any] | None = None
    reply: str | None = None
    snapshot_dropped: int = 0
    unpriced: int = 0
    prices: list[PriceTick] = field(default_factory=list)
    open_interest: Sequence[OpenInterest] = ()
    #: Items of an OI listing left out because they could not be read.
    skipped: int = 0


_new_object = object.__new__
_REST_SCHEMES = ("http://", "https://")  # RawFrame.is_rest, inline
_OUTCOME_FIELDS = ("frame", "kind", "events", "deadletter", "reply", "snapshot_dropped",
                   "unpriced", "prices", "open_interest", "skipped")


def _compiled() -> dict[str, str]:
    """The compiled parse path (``liqstress.streams._fast``, C sources in ``csrc/``), per venue
    id; empty when the extension was not built (no C compiler at install: everything then runs the Python parsers, with the
    same results, slower). ``LIQSTRESS_PURE_PYTHON=1`` turns it off (tests compare both)."""
    if os.environ.get("LIQSTRESS_PURE_PYTHON") == "1":
        return {}
    try:
        from . import _fast  # type: ignore[attr-defined]
    except ImportError:
        return {}
    _fast.configure(LiquidationEvent, EVENT_FIELDS, Outcome, _OUTCOME_FIELDS, orjson.loads,
                    SCHEMA_VERSION, EARLIEST_TS, MAX_AHEAD_SECONDS)
    global _Accel
    _Accel = _fast.Accel
    return dict(COMPILED_VENUES)


_Accel: Callable[..., Callable[[RawFrame], Outcome]] | None = None


#: Venue id -> function of the compiled module that parses its usual frames.
COMPILED_VENUES = {"binance": "binance", "binance-coinm": "binance_coinm", "bitget": "bitget",
                   "bitmex": "bitmex", "bybit": "bybit", "deribit": "deribit", "dydx": "dydx",
                   "gate": "gate", "htx": "htx", "hyperliquid": "hyperliquid",
                   "kraken-futures": "kraken_futures", "okx": "okx"}
COMPILED = _compiled()


def deadletter_record(frame: RawFrame, reason: str, detail: str) -> dict[str, Any]:
    rec = frame.to_dict()
    rec["reason"] = reason
    rec["detail"] = detail[:500]
    return rec


#: Per poll source, the ids remembered are pruned once there are more than this many: those
#: older than ``SEEN_HORIZON`` behind the newest are dropped (a poll never re-reads that far
#: back), and never more than ``SEEN_MAX`` are kept.
SEEN_PRUNE_AT = 4096
SEEN_MAX = 65536
#: Seconds of event time an id is remembered at least (many times any poll overlap).
SEEN_HORIZON = 3600.0


class VenueSession:
    def __init__(self, venue: VenueSpec, *,
                 max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD,
                 max_inflated_bytes: int = MAX_INFLATED_BYTES, compiled: bool = True,
                 poll_dedupe: bool = True) -> None:
        self.venue = venue
        #: Per poll source (``POLL_PREFIX``): event id -> event time of every event it gave.
        #: A poll re-reads the rows of its overlap window (``PollSpec.overlap``): an event seen
        #: again from the same source is dropped (counted in ``snapshot_dropped``), so it is
        #: published once. Kept here, not in the collector, so a recording replays to exactly
        #: the events the live collector published. ``poll_dedupe=False`` parses every poll
        #: body on its own (the fuzz tests mutate one body many times).
        self._seen: dict[str, dict[str, float]] = {}
        self.poll_dedupe = poll_dedupe
        self.max_inflated_bytes = max_inflated_bytes
        #: Cap on one event's USD notional; above it the event is dead-lettered as
        #: ``implausible_notional`` (see ``liqstress.event.implausible``).
        self.max_notional_usd = max_notional_usd
        self.meta = Metadata()
        #: Per connection source: receipt time of the subscribe ack (history cut-off).
        self._subscribed_at: dict[str, float] = {}
        #: The compiled path (see ``_compiled``): it becomes this session's ``process``, and
        #: hands every frame it declines (REST bodies, anything unusual, every future dead
        #: letter) to the Python ``process`` below, so the outcome is the same either way.
        #: ``compiled=False`` keeps the Python path alone (the tests compare both).
        self.accel: Any = None
        name = COMPILED.get(venue.id) if compiled else None
        if name is not None and _Accel is not None:
            self.accel = self.process = _Accel(  # type: ignore[method-assign]
                name, self.meta.instruments, self._subscribed_at, self.max_notional_usd,
                venue.drop_before_subscribe, max_inflated_bytes, self.process)

    def reset_connection(self, source: str) -> None:
        """A new connection: history cut-off is unknown until its subscribe ack arrives. A poll
        source starting over forgets the ids it gave, as a restarted collector would (the
        runner never resets one: a poll has no connection to lose)."""
        self._subscribed_at.pop(source, None)
        self._seen.pop(source, None)

    def mark_subscribed(self, source: str, ts: float) -> None:
        self._subscribed_at[source] = ts

    def process(self, frame: RawFrame) -> Outcome:
        source = frame.source
        if source.startswith(_REST_SCHEMES):
            return self._rest(frame)
        if source.startswith(HISTORY_PREFIX):
            return self.process_history(frame)
        data = frame.data
        try:
            text = data if type(data) is str else self._decode(data)
            parsed = self.venue.parse(text, source, frame.recv_ts, self.meta)
        except FrameError as exc:
            return Outcome(frame, "error", deadletter=deadletter_record(frame, exc.reason, exc.detail))
        except Exception as exc:  # a parser bug must dead-letter the frame, not kill the feed
            return Outcome(frame, "error", deadletter=deadletter_record(
                frame, "parser_exception", f"{type(exc).__name__}: {exc}"))
        # Outcome(frame, kind, reply=..., prices=...) without the dataclass __init__ and its
        # default factories: the same fields and values, on the path of every frame.
        out = _new_object(Outcome)
        out.frame = frame
        out.kind = kind = parsed.kind
        out.deadletter = None
        out.reply = parsed.reply
        out.snapshot_dropped = 0
        out.unpriced = 0
        prices = parsed.prices
        out.prices = list(prices) if prices else []
        out.open_interest = ()
        out.skipped = 0
        out.events = []
        if kind == "ack":
            self._subscribed_at[source] = frame.recv_ts
        events = parsed.events
        if not events:  # the usual frame without events: nothing more to do
            if parsed.rejected:
                return self._plausible(frame, out, (), parsed.rejected)
            return out
        if parsed.snapshot:
            out.snapshot_dropped = len(events)
            return out
        if self.poll_dedupe and source.startswith(POLL_PREFIX):
            # Before the plausibility checks: a refused row read again is not refused twice.
            fresh = self._unseen(source, events)
            out.snapshot_dropped = len(events) - len(fresh)
            if not fresh:
                return out
            events = fresh
        if self.venue.drop_before_subscribe:
            cutoff = self._subscribed_at.get(source)
            if cutoff is not None:
                kept = [e for e in events if e.ts >= cutoff]
                out.snapshot_dropped = len(events) - len(kept)
                events = kept
        return self._plausible(frame, out, events, parsed.rejected)

    def process_history(self, frame: RawFrame) -> Outcome:
        """A history body (``HISTORY_PREFIX``, the warm start): parsed by the venue's
        ``HistorySpec.parse``. Callers route these here themselves (the collector, replay):
        the compiled path of a venue would read the body as a websocket frame. Rows a page
        repeats (pages overlap at their boundary) are dropped per source as for polls; an
        event the live feed also gave keeps its id, and the worker counts it once."""
        history = self.venue.history
        try:
            if history is None:
                raise FrameError("unexpected_source", f"{self.venue.id} has no history")
            parsed = history.parse(_utf8(frame.data), frame.source, frame.recv_ts, self.meta)
        except FrameError as exc:
            return Outcome(frame, "error", deadletter=deadletter_record(frame, exc.reason, exc.detail))
        except Exception as exc:  # a parser bug must dead-letter the body, not end the warm start
            return Outcome(frame, "error", deadletter=deadletter_record(
                frame, "parser_exception", f"{type(exc).__name__}: {exc}"))
        out = Outcome(frame, parsed.kind)
        events: Sequence[LiquidationEvent] = parsed.events
        if events and self.poll_dedupe:
            fresh = self._unseen(frame.source, events)
            out.snapshot_dropped = len(events) - len(fresh)
            events = fresh
        return self._plausible(frame, out, events, parsed.rejected)

    def _plausible(self, frame: RawFrame, out: Outcome, events: Sequence[LiquidationEvent],
                   rejected: Sequence[tuple[str, str]] = ()) -> Outcome:
        """``out`` with the plausible ``events``; the others, and the rows the parser
        ``rejected``, refused into its one dead letter (the first reason names it)."""
        refused: dict[str, list[str]] = {}
        for reason, detail in rejected:
            refused.setdefault(reason, []).append(detail)
        kept = []
        unpriced = 0
        max_notional = self.max_notional_usd
        for e in events:
            # implausible()'s two conditions, inline; it is asked only for the error.
            ts, notional = e.ts, e.notional_usd
            if EARLIEST_TS <= ts <= e.recv_ts + MAX_AHEAD_SECONDS and (
                    notional is None or not notional > max_notional):
                kept.append(e)
                if notional is None:
                    unpriced += 1
                continue
            err = implausible(ts, e.recv_ts, notional, max_notional)
            if err is None:  # pragma: no cover - the inline test above is the same
                kept.append(e)
                unpriced += notional is None
            else:
                refused.setdefault(err.reason, []).append(str(err))
        if refused:
            n = sum(len(v) for v in refused.values())
            reason = next(iter(refused))
            out.deadletter = deadletter_record(
                frame, reason, f"{n} of {n + len(kept)} events refused: "
                + "; ".join(msgs[0] for msgs in refused.values()))
        out.events = kept
        out.unpriced = unpriced
        return out

    def _unseen(self, source: str, events: Sequence[LiquidationEvent]) -> list[LiquidationEvent]:
        """The events of a poll body not yet given by the same source (nor earlier in the same
        body), remembered from now on."""
        seen = self._seen.setdefault(source, {})
        fresh = []
        for e in events:
            if e.id not in seen:
                seen[e.id] = e.ts
                fresh.append(e)
        if len(seen) > SEEN_PRUNE_AT:
            newest = max(seen.values())
            kept = sorted(((ts, i) for i, ts in seen.items() if ts >= newest - SEEN_HORIZON),
                          reverse=True)[:SEEN_MAX]
            self._seen[source] = {i: ts for ts, i in kept}
        return fresh

    def _rest(self, frame: RawFrame) -> Outcome:
        try:
            # A REST body is plain text (HTTP already undid any Content-Encoding), even for a
            # venue whose websocket frames are gzip.
            body = _utf8(frame.data)
            parse_oi = self.venue.parse_oi
            if parse_oi is not None and self.venue.oi_source(frame.source):
                parsed = parse_oi(body, frame.source, frame.recv_ts, self.meta)
                # ``unpriced`` stays the liquidation count: OI without USD shows in its records.
                return Outcome(frame, parsed.kind, open_interest=parsed.open_interest,
                               skipped=parsed.skipped)
            self.venue.load_rest(self.meta, frame.source, body)
        except FrameError as exc:
            return Outcome(frame, "error", deadletter=deadletter_record(frame, exc.reason, exc.detail))
        except Exception as exc:
            return Outcome(frame, "error", deadletter=deadletter_record(
                frame, "rest_parse_exception", f"{type(exc).__name__}: {exc}"))
        self.meta.loaded.add(frame.source)
        return Outcome(frame, "info")

    def _decode(self, data: str | bytes) -> str:
        if isinstance(data, str):
            return data
        if self.venue.gzip or data[:2] == _GZIP_MAGIC:
            data = inflate(data, self.max_inflated_bytes)
        return _utf8(data)


def _utf8(data: str | bytes) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FrameError("bad_utf8", str(exc)) from exc
