"""The venue kit (streams/venues/kit.py): the helpers venue modules share instead of copies."""

from __future__ import annotations

from typing import Any

import pytest

from liqstress.streams.venues import all_venue_ids, get_venue, kit
from liqstress.streams.venues.base import FrameError, Parsed, VenueSpec


def reason(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(FrameError) as info:
        fn(*args, **kwargs)
    return info.value.reason


def _code_error(msg: dict[str, Any]) -> str | None:
    return kit.code_error(msg) if msg.get("code") not in (None, "0") else None


def test_rest_url_uses_the_override_without_a_trailing_slash() -> None:
    assert kit.rest_url({}, "https://x.test", "/a?b=1") == "https://x.test/a?b=1"
    assert kit.rest_url({"rest": "http://sim:9/"}, "https://x.test", "/a") == "http://sim:9/a"


def test_rest_json_returns_the_body_of_the_expected_kind() -> None:
    assert kit.rest_json('{"code":"0","data":[1]}', dict, "not an object", _code_error) == {
        "code": "0", "data": [1]}
    assert kit.rest_json("[1, 2]", list, "not a list") == [1, 2]


def test_rest_json_reasons() -> None:
    assert reason(kit.rest_json, "{nope", dict, "x") == "malformed_json"
    assert reason(kit.rest_json, "[1]", dict, "x", _code_error) == "unexpected_shape"
    assert reason(kit.rest_json, '{"code":"5","msg":"slow down"}', dict, "x",
                  _code_error) == "rest_error"
    # A list body is checked for an error reply only when it is an object.
    assert reason(kit.rest_json, '{"code":"5"}', list, "x", _code_error) == "rest_error"
    assert reason(kit.rest_json, '{"code":"0"}', list, "x", _code_error) == "unexpected_shape"


def test_rest_json_details() -> None:
    with pytest.raises(FrameError) as info:
        kit.rest_json('{"code":"50011","msg":"Too Many Requests"}', dict, "x", _code_error)
    assert info.value.detail == "code='50011' 'Too Many Requests'"
    with pytest.raises(FrameError) as info:
        kit.rest_json('"text"', dict, "REST body is not an object")
    assert info.value.detail == "REST body is not an object"


def test_member() -> None:
    assert kit.member({"data": [1]}, "data", list) == [1]
    with pytest.raises(FrameError) as info:
        kit.member({"data": {}}, "data", list)
    assert (info.value.reason, info.value.detail) == ("unexpected_shape", "missing data")
    with pytest.raises(FrameError) as info:
        kit.member({}, "params", dict, "params is not an object")
    assert info.value.detail == "params is not an object"


@pytest.mark.parametrize("value", [None, "", 5, ["BTC"]])
def test_required_str_refuses_anything_but_a_non_empty_string(value: Any) -> None:
    with pytest.raises(FrameError) as info:
        kit.required_str({"s": value}, "s", "o.s")
    assert (info.value.reason, info.value.detail) == ("missing_field", "o.s")


def test_required_str() -> None:
    assert kit.required_str({"symbol": "BTCUSDT"}, "symbol") == "BTCUSDT"
    with pytest.raises(FrameError) as info:
        kit.required_str({}, "symbol")
    assert info.value.detail == "symbol"


def test_objects_yields_objects_and_dead_letters_the_first_other_item() -> None:
    assert list(kit.objects([{"a": 1}, {}], "trade")) == [{"a": 1}, {}]
    with pytest.raises(FrameError) as info:
        list(kit.objects([{"a": 1}, 7], "trade"))
    assert (info.value.reason, info.value.detail) == ("unexpected_shape", "trade is not an object")


def test_frame_object() -> None:
    assert kit.frame_object('{"op":"ping"}') == {"op": "ping"}
    assert reason(kit.frame_object, "[1]") == "unexpected_shape"
    assert reason(kit.frame_object, "pong") == "malformed_json"


@pytest.mark.parametrize(("value", "expected"), [
    ("0.01", 0.01), (100, 100.0), ("1e-4", 1e-4),
    (None, None), ("", None), (0, None), ("-1", None), ("abc", None), ("inf", None),
    ("nan", None), ([1], None),
])
def test_positive(value: Any, expected: float | None) -> None:
    assert kit.positive({"ctVal": value}, "ctVal") == expected


def test_positive_missing_key() -> None:
    assert kit.positive({}, "ctVal") is None


def test_amounts_linear_contracts_are_base_units() -> None:
    qty, notional = kit.amounts(3.0, 60_000.0, "linear", 0.0001)
    assert qty == pytest.approx(0.0003) and notional == pytest.approx(18.0)
    assert kit.amounts(2.0, 50.0, "linear") == (2.0, 100.0)


def test_amounts_inverse_contracts_are_quote_currency() -> None:
    qty, notional = kit.amounts(5.0, 50_000.0, "inverse", 100.0)
    assert notional == 500.0 and qty == pytest.approx(0.01)
    assert kit.amounts(200.0, 100.0, "inverse") == (2.0, 200.0)


def _fields(**kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = dict(
        exchange="x", symbol="BTCUSDT", base="BTC", quote="USDT", market="linear", side="long",
        price=100.0, qty=2.0, notional_usd=200.0, ts=1_700_000_000.0, recv_ts=1_700_000_001.0,
        sampled=False)
    return {**fields, **kw}


def test_event_builds_the_event() -> None:
    ev = kit.event(**_fields(venue_id="abc"))
    assert (ev.exchange, ev.symbol, ev.side, ev.notional_usd) == ("x", "BTCUSDT", "long", 200.0)


def test_event_refused_by_the_schema_is_an_invalid_event_frame() -> None:
    with pytest.raises(FrameError) as info:
        kit.event(**_fields(price=0.0))
    assert info.value.reason == "invalid_event" and info.value.detail


def test_okx_envelope_control_frames() -> None:
    assert kit.okx_envelope("pong\n", "channel", "c") == Parsed(kind="pong")
    assert kit.okx_envelope('{"event":"subscribe","arg":{}}', "channel", "c") == Parsed(kind="ack")
    assert kit.okx_envelope('{"event":"notice","msg":"upgrade"}', "channel", "c") == Parsed(
        kind="info")
    with pytest.raises(FrameError) as info:
        kit.okx_envelope('{"event":"error","code":"60012","msg":"bad"}', "channel", "c")
    assert (info.value.reason, info.value.detail) == ("subscribe_error", "code='60012' bad")


def test_okx_envelope_data() -> None:
    msg, arg, data = kit.okx_envelope('{"arg":{"topic":"t"},"data":[{"a":1}],"action":"update"}',
                                      "topic", "t")
    assert msg["action"] == "update" and arg == {"topic": "t"} and data == [{"a": 1}]
    assert reason(kit.okx_envelope, '{"arg":{"topic":"t"},"data":{}}', "topic",
                  "t") == "unexpected_shape"
    assert reason(kit.okx_envelope, '{"arg":{"topic":"u"},"data":[]}', "topic",
                  "t") == "unexpected_channel"
    assert reason(kit.okx_envelope, '{"arg":{"channel":"u"},"data":[]}', "channel",
                  "c") == "unexpected_channel"
    assert reason(kit.okx_envelope, "[]", "channel", "c") == "unexpected_shape"


def _parse(text: str, source: str, recv_ts: float, meta: Any) -> Parsed:
    return Parsed(kind="info")


def connections(meta: Any, urls: dict[str, str]) -> list[Any]:
    return []


def test_hooks_takes_the_functions_a_module_defines() -> None:
    namespace = {"__name__": __name__, "connections": connections, "parse": _parse,
                 "_parse": _parse, "rest_urls": "not a function", "ping_message": kit.rest_url}
    # Only hook names count, a string is no hook, and an imported function is left to be
    # passed explicitly.
    assert kit.hooks(namespace) == {"connections": connections, "parse": _parse}


def test_venue_spec_defaults() -> None:
    spec = VenueSpec(id="v", side_rule="", unit_rule="", sampled=False, connections=connections,
                     parse=_parse)
    assert spec.rest_urls({}) == [] and spec.ping_message(1) == "ping"
    assert (spec.ping_interval, spec.pong_timeout, spec.metadata_refresh) == (20.0, 30.0, 3600.0)


@pytest.mark.parametrize("venue_id", all_venue_ids())
def test_every_venue_wires_its_own_module_functions(venue_id: str) -> None:
    spec = get_venue(venue_id)
    module = spec.parse.__module__
    assert module.startswith("liqstress.streams.venues.")
    assert spec.connections.__module__ == module
