"""Pure frame processing shared by the live collector, ``normalize`` and ``replay``.

A :class:`VenueSession` follows one venue: it loads REST metadata, parses websocket frames,
drops history the venue replays on subscribe, and turns every failure into a dead-letter
record with a reason. It never touches a socket or Kafka, so a recording processed here gives
exactly what the live collector published.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from typing import Any

from liqstress.event import LiquidationEvent
from liqstress.prices import PriceTick
from liqstress.recording import RawFrame

from .venues.base import FrameError, FrameKind, Metadata, VenueSpec


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
    def __init__(self, venue: VenueSpec) -> None:
        self.venue = venue
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
        out.events = events
        out.prices = list(parsed.prices)
        out.unpriced = sum(1 for e in events if e.notional_usd is None)
        return out

    def _rest(self, frame: RawFrame) -> Outcome:
        body = frame.data.decode() if isinstance(frame.data, bytes) else frame.data
        try:
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
        if self.venue.gzip or data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise FrameError("bad_gzip", str(exc)) from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameError("bad_utf8", str(exc)) from exc
