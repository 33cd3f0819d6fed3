"""The recording format: JSON Lines, one venue frame or REST body per line.

``{"exchange": "<venue id>", "source": "<URL>", "recv_ts": <epoch s>, "frame": "<text>"}``;
binary frames carry ``"frame_b64"`` instead of ``"frame"``. REST bodies a collector needs are
lines whose ``source`` is the REST URL. The raw Kafka topic carries exactly these objects, so
a dump of ``liquidations.raw`` is itself a recording.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import IO, Any

import orjson


class RecordingError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RawFrame:
    exchange: str
    source: str
    recv_ts: float
    data: str | bytes

    @property
    def is_rest(self) -> bool:
        return self.source.startswith(("http://", "https://"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"exchange": self.exchange, "source": self.source,
                               "recv_ts": self.recv_ts}
        if isinstance(self.data, bytes):
            out["frame_b64"] = base64.b64encode(self.data).decode()
        else:
            out["frame"] = self.data
        return out

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


class _FrameBuilder:
    """The slot layout of :class:`RawFrame` without its frozen ``__setattr__``: a frame is
    filled with plain stores and re-labelled (``__class__`` assignment between classes with the
    same slots), the same object the dataclass ``__init__`` builds at a third of the cost."""

    __slots__ = RawFrame.__slots__  # type: ignore[attr-defined]


assert _FrameBuilder.__slots__ == tuple(f.name for f in fields(RawFrame))
_new = object.__new__
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def frame_from_obj(obj: Any) -> RawFrame:
    # Fast path: the shape every recorder writes (a text frame, float or int recv_ts), tested
    # with exact types. Anything else goes through the checks below, which say what is wrong.
    if type(obj) is dict:
        exchange, source = obj.get("exchange"), obj.get("source")
        recv_ts, data = obj.get("recv_ts"), obj.get("frame")
        if (type(exchange) is str and type(source) is str and type(data) is str
                and (type(recv_ts) is float or type(recv_ts) is int)):
            frame = _new(_FrameBuilder)
            frame.exchange = exchange
            frame.source = source
            frame.recv_ts = float(recv_ts)
            frame.data = data
            frame.__class__ = RawFrame  # type: ignore[assignment]
            return frame  # type: ignore[return-value]
    return _frame_from_obj_checked(obj)


def _frame_from_obj_checked(obj: Any) -> RawFrame:
    if not isinstance(obj, dict):
        raise RecordingError("line is not a JSON object")
    for key in ("exchange", "source", "recv_ts"):
        if key not in obj:
            raise RecordingError(f"missing {key!r}")
    if not isinstance(obj["exchange"], str) or not isinstance(obj["source"], str):
        raise RecordingError("exchange and source must be strings")
    if not isinstance(obj["recv_ts"], int | float) or isinstance(obj["recv_ts"], bool):
        raise RecordingError("recv_ts must be a number")
    data: str | bytes
    if isinstance(obj.get("frame"), str):
        data = obj["frame"]
    elif isinstance(obj.get("frame_b64"), str):
        try:
            data = base64.b64decode(obj["frame_b64"], validate=True)
        except ValueError as exc:
            raise RecordingError(f"bad frame_b64: {exc}") from exc
    else:
        raise RecordingError("needs a string 'frame' or 'frame_b64'")
    return RawFrame(obj["exchange"], obj["source"], float(obj["recv_ts"]), data)


def frame_from_json(line: bytes | str) -> RawFrame:
    try:
        obj = _loads(line)
    except _JSONDecodeError as exc:
        raise RecordingError(f"not JSON: {exc}") from exc
    return frame_from_obj(obj)


def read_recording(fh: IO[bytes]) -> Iterator[tuple[int, RawFrame | RecordingError]]:
    """Yield (line number, frame or the error for that line); a bad line never stops a replay."""
    for lineno, line in enumerate(fh, start=1):
        if not line.strip():
            continue
        try:
            yield lineno, frame_from_json(line)
        except RecordingError as exc:
            yield lineno, exc
