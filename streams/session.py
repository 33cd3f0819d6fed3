"""Pure frame processing shared by the live collector, ``normalize`` and ``replay``.

A :class:`VenueSession` follows one venue: it loads REST metadata, parses websocket frames,
drops history the venue replays on subscribe, and turns every failure into a dead-letter
record with a reason. It never touches a socket or Kafka, so a recording processed here gives
exactly what the live collector published.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from liqstress.event import DEFAULT_MAX_NOTIONAL_USD, LiquidationEvent, implausible
from liqstress.prices import PriceTick
from liqstress.recording import RawFrame

from .venues.base import FrameError, FrameKind, Metadata, VenueSpec

#: Largest inflated frame accepted (gzip venues): a few hundred KB is the biggest real frame;
#: anything beyond this is a bomb or garbage and becomes a ``too_large`` dead letter.
MAX_INFLATED_BYTES = 8 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"


def inflate(data: bytes, limit: int = MAX_INFLATED_BYTES) -> bytes:
    """Gunzip ``data`` (one or more members) without ever holding more than ``limit`` + 1
    inflated bytes: ``too_large`` above it, ``bad_gzip`` for anything not a complete gzip
    stream. ``gzip.decompress`` would inflate a 1 MB bomb to 1 GB before we could look."""
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


@dataclass
class Outcome:
    frame: RawFrame
    kind: FrameKind | str
    events: list[LiquidationEvent] = field(default_factory=list)
    deadletter: dict[str, Any] | None = None
    reply: str | None = None
    snapshot_dropped: int = 0
    unpriced: int = 0
    prices: list[PriceTick] = field(default_factory=list)


def deadletter_record(frame: RawFrame, reason: str, detail: str) -> dict[str, Any]:
    rec = frame.to_dict()
    rec["reason"] = reason
    rec["detail"] = detail[:500]
    return rec


class VenueSession:
    def __init__(self, venue: VenueSpec, *,
                 max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD,
                 max_inflated_bytes: int = MAX_INFLATED_BYTES) -> None:
        self.venue = venue
        self.max_inflated_bytes = max_inflated_bytes
        #: Cap on one event's USD notional; above it the event is dead-lettered as
        #: ``implausible_notional`` (see ``liqstress.event.implausible``).
        self.max_notional_usd = max_notional_usd
        self.meta = Metadata()
        #: Per connection source: receipt time of the subscribe ack (history cut-off).
        self._subscribed_at: dict[str, float] = {}

    def reset_connection(self, source: str) -> None:
        """A new connection: history cut-off is unknown until its subscribe ack arrives."""
        self._subscribed_at.pop(source, None)

    def mark_subscribed(self, source: str, ts: float) -> None:
        self._subscribed_at[source] = ts

    def process(self, frame: RawFrame) -> Outcome:
        if frame.is_rest:
            return self._rest(frame)
        try:
            text = self._decode(frame.data)
            parsed = self.venue.parse(text, frame.source, frame.recv_ts, self.meta)
        except FrameError as exc:
            return Outcome(frame, "error", deadletter=deadletter_record(frame, exc.reason, exc.detail))
        except Exception as exc:  # a parser bug must dead-letter the frame, not kill the feed
            return Outcome(frame, "error", deadletter=deadletter_record(
                frame, "parser_exception", f"{type(exc).__name__}: {exc}"))
        out = Outcome(frame, parsed.kind, reply=parsed.reply)
        if parsed.kind == "ack":
            self._subscribed_at[frame.source] = frame.recv_ts
        events = list(parsed.events)
        if parsed.snapshot:
            out.snapshot_dropped = len(events)
            events = []
        elif self.venue.drop_before_subscribe and events:
            cutoff = self._subscribed_at.get(frame.source)
            if cutoff is not None:
                kept = [e for e in events if e.ts >= cutoff]
                out.snapshot_dropped = len(events) - len(kept)
                events = kept
        refused: dict[str, list[str]] = {}
        if events:
            kept = []
            for e in events:
                err = implausible(e.ts, e.recv_ts, e.notional_usd, self.max_notional_usd)
                if err is None:
                    kept.append(e)
                else:
                    refused.setdefault(err.reason, []).append(str(err))
            if refused:
                events = kept
                n = sum(len(v) for v in refused.values())
                reason = next(iter(refused))
                out.deadletter = deadletter_record(
                    frame, reason, f"{n} of {n + len(kept)} events refused: "
                    + "; ".join(msgs[0] for msgs in refused.values()))
        out.events = events
        out.prices = list(parsed.prices)
        out.unpriced = sum(1 for e in events if e.notional_usd is None)
        return out

    def _rest(self, frame: RawFrame) -> Outcome:
        try:
            # A REST body is plain text (HTTP already undid any Content-Encoding), even for a
            # venue whose websocket frames are gzip.
            body = _utf8(frame.data)
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
