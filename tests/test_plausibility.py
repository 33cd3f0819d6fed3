"""Plausibility: an event whose time or notional cannot be true is refused with its own reason,
by the pure rule the session and the worker share."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from liqstress.event import (
    DEFAULT_MAX_NOTIONAL_USD,
    EARLIEST_TS,
    EventError,
    implausible,
    make_event,
    read_event,
)

NOW = time.time()


def wire(**over: Any) -> bytes:
    kw: dict[str, Any] = dict(exchange="binance", symbol="BTCUSDT", base="BTC", quote="USDT",
                              market="linear", side="long", price=60_000.0, qty=1.0,
                              notional_usd=60_000.0, ts=NOW - 1, recv_ts=NOW, sampled=True)
    kw.update(over)
    return make_event(**kw).to_json()


@pytest.mark.parametrize(("ts", "recv", "ok"), [
    (EARLIEST_TS, EARLIEST_TS + 5, True),
    (EARLIEST_TS - 1, EARLIEST_TS + 5, False),
    (NOW + 86_400, NOW, True),
    (NOW + 86_401, NOW, False),
    (0.001, NOW, False),
    (1e305, NOW, False),
    (NOW * 1000, NOW, False),       # milliseconds read as seconds
])
def test_event_time_window(ts: float, recv: float, ok: bool) -> None:
    bad = implausible(ts, recv, 1.0)
    assert (bad is None) is ok
    if not ok:
        assert bad is not None and bad.reason == "implausible_time"


def test_notional_cap_default_and_configured() -> None:
    assert implausible(NOW, NOW, DEFAULT_MAX_NOTIONAL_USD) is None
    bad = implausible(NOW, NOW, DEFAULT_MAX_NOTIONAL_USD * 1.01)
    assert bad is not None and bad.reason == "implausible_notional"
    assert implausible(NOW, NOW, None) is None  # unpriced: nothing to judge
    bad = implausible(NOW, NOW, 2e6, max_notional_usd=1e6)
    assert bad is not None and bad.reason == "implausible_notional"


def test_read_event_refuses_what_kafka_should_not_hold() -> None:
    assert read_event(wire()).notional_usd == 60_000.0
    for over, reason in (({"ts": 1.0}, "implausible_time"),
                         ({"recv_ts": NOW + 3 * 86_400, "ts": NOW}, "implausible_time"),
                         ({"notional_usd": 1e13}, "implausible_notional")):
        with pytest.raises(EventError) as info:
            read_event(wire(**over))
        assert info.value.reason == reason, over
    with pytest.raises(EventError) as info:
        read_event(wire(notional_usd=2e6), max_notional_usd=1e6)
    assert info.value.reason == "implausible_notional"


def test_malformed_wire_event_keeps_the_generic_reason() -> None:
    obj = orjson.loads(wire())
    obj["price"] = True  # a JSON boolean is never a number
    with pytest.raises(EventError) as info:
        read_event(orjson.dumps(obj))
    assert info.value.reason == "invalid_event"


def test_to_json_is_the_field_by_field_form() -> None:
    ev = read_event(wire(qty=None))
    assert list(orjson.loads(ev.to_json()).items()) == list(ev.to_dict().items())
