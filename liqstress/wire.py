"""Decoding the JSON records liqstress reads back from Kafka (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson


def json_record(data: bytes | str | dict[str, Any] | None, fields: Sequence[str],
                version: int, error: type[ValueError], what: str) -> dict[str, Any]:
    """``data`` as a JSON object holding every one of ``fields`` with ``"v" == version``;
    anything else raises ``error`` with the reason."""
    try:
        obj = data if isinstance(data, dict) else orjson.loads(data or b"")
    except orjson.JSONDecodeError as exc:
        raise error(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise error(f"{what} must be a JSON object")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise error(f"missing fields: {', '.join(missing)}")
    if obj["v"] != version:
        raise error(f"unsupported schema version {obj['v']!r} for a {what}")
    return obj
