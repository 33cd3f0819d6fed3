"""What the aggregator publishes: the ``liquidation.windows`` snapshot and the
``stress.signals`` records. One copy, used by the worker's timer and by ``liqstress replay``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from .state import WorkerState

Send = Callable[[bytes, bytes], Awaitable[Any]]


async def publish(state: WorkerState, send_windows: Send, send_signals: Send) -> bool:
    """Publish the last refresh's windows and signals; False when there is nothing to."""
    snap = state.last_snapshot
    if snap is None:
        return False
    await send_windows(b"snapshot", orjson.dumps(state.windows_message(snap)))
    for msg in state.stress_messages():
        await send_signals(msg["type"].encode(), orjson.dumps(msg))
    state.snapshots_published += 1
    return True
