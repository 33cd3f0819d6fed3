"""The canonical event: validation, deterministic ids, the wire form and its JSON Schema."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from importlib import resources
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from liqstress.event import (
    BACKFILL_KEY,
    SCHEMA_VERSION,
    EventError,
    LiquidationEvent,
    event_from_json,
    event_id,
    event_json,
    make_event,
)

SCHEMA = json.loads(resources.files("liqstress").joinpath("schemas/liquidation.schema.json")
                    .read_text())
VALIDATOR = Draft202012Validator(SCHEMA)

BASE: dict[str, Any] = dict(exchange="binance", symbol="BTCUSDT", base="BTC", quote="USDT",
                            market="linear", side="long", price=60000.5, qty=0.25,
                            notional_usd=15000.125, ts=1_700_000_000.123, recv_ts=1_700_000_001.0,
                            sampled=True)


def mk(**kw: Any) -> LiquidationEvent:
    return make_event(**{**BASE, **kw})


def errors(obj: Any) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(obj)]


# ---- make_event ----------------------------------------------------------------------------------
def test_make_event_fields() -> None:
    ev = mk()
    assert ev.v == SCHEMA_VERSION == 1
    assert (ev.exchange, ev.symbol, ev.base, ev.quote) == ("binance", "BTCUSDT", "BTC", "USDT")
    assert (ev.market, ev.side, ev.sampled) == ("linear", "long", True)
    assert (ev.price, ev.qty, ev.notional_usd) == (60000.5, 0.25, 15000.125)
    assert (ev.ts, ev.recv_ts) == (1_700_000_000.123, 1_700_000_001.0)
    assert ev.key == "binance:BTCUSDT"
    assert ev.to_dict()["id"] == ev.id


def test_make_event_coerces_numbers_to_float() -> None:
    ev = mk(price=100, qty=2, notional_usd=200, ts=1_700_000_000, recv_ts=1_700_000_001)
    for val in (ev.price, ev.qty, ev.notional_usd, ev.ts, ev.recv_ts):
        assert type(val) is float


def test_make_event_allows_unknown_qty_and_notional_and_zero() -> None:
    ev = mk(qty=None, notional_usd=None)
    assert ev.qty is None and ev.notional_usd is None
    ev0 = mk(qty=0.0, notional_usd=0.0)
    assert ev0.qty == 0.0 and ev0.notional_usd == 0.0
    for market in ("linear", "inverse", "spot"):
        assert mk(market=market).market == market
    assert mk(side="short").side == "short"


@pytest.mark.parametrize("kw,needle", [
    ({"side": "buy"}, "side"), ({"side": "LONG"}, "side"), ({"side": ""}, "side"),
    ({"market": "perp"}, "market"), ({"market": "Linear"}, "market"),
    ({"price": 0.0}, "price"), ({"price": -1.0}, "price"), ({"price": math.nan}, "price"),
    ({"price": math.inf}, "price"),
    ({"ts": 0.0}, "ts"), ({"ts": -5.0}, "ts"), ({"ts": math.nan}, "ts"), ({"ts": math.inf}, "ts"),
    ({"qty": -0.1}, "qty"), ({"qty": math.nan}, "qty"), ({"qty": math.inf}, "qty"),
    ({"notional_usd": -1.0}, "notional_usd"), ({"notional_usd": math.nan}, "notional_usd"),
    ({"notional_usd": -math.inf}, "notional_usd"),
])
def test_make_event_rejects(kw: dict[str, Any], needle: str) -> None:
    with pytest.raises(EventError, match=needle):
        mk(**kw)


def test_event_error_is_value_error() -> None:
    assert issubclass(EventError, ValueError)


# ---- ids -----------------------------------------------------------------------------------------
def test_id_is_deterministic_and_matches_the_documented_basis() -> None:
    ev = mk(qty_raw="0.250")
    assert ev.id == mk(qty_raw="0.250").id
    basis = "binance|BTCUSDT|1700000000123|long|60000.5|0.250"
    assert ev.id == hashlib.blake2b(basis.encode(), digest_size=12).hexdigest()
    assert len(ev.id) == 24
    # Without qty_raw the float qty is the basis.
    assert mk().id == event_id("binance", "BTCUSDT", 1_700_000_000.123, "long", 60000.5, 0.25)


def test_id_ignores_receipt_time_notional_and_metadata() -> None:
    ref = mk().id
    assert mk(recv_ts=1_800_000_000.0).id == ref
    assert mk(notional_usd=None).id == ref
    assert mk(base="XBT", quote="USD", market="inverse", sampled=False).id == ref
    assert mk(ts=1_700_000_000.1234).id == ref  # rounded to the millisecond


@pytest.mark.parametrize("kw", [
    {"exchange": "okx"}, {"symbol": "ETHUSDT"}, {"ts": 1_700_000_000.124}, {"side": "short"},
    {"price": 60000.25}, {"qty": 0.5}, {"qty_raw": "0.250"},
])
def test_id_changes_with_identity_fields(kw: dict[str, Any]) -> None:
    assert mk(**kw).id != mk().id


def test_venue_id_path() -> None:
    a = mk(venue_id="123456")
    assert a.id == hashlib.blake2b(b"binance|BTCUSDT|123456", digest_size=12).hexdigest()
    # The venue id wins: other fields no longer matter, exchange and symbol still do.
    assert mk(venue_id="123456", ts=1_600_000_000.0, price=1.0, side="short", qty=9.0).id == a.id
    assert mk(venue_id="123457").id != a.id
    assert mk(venue_id="123456", symbol="ETHUSDT").id != a.id
    assert mk(venue_id="123456", exchange="okx").id != a.id
    assert mk(venue_id="").id == mk().id  # empty venue id falls back to the content hash


# ---- wire form -----------------------------------------------------------------------------------
def test_to_json_round_trip() -> None:
    for ev in (mk(), mk(qty=None, notional_usd=None, sampled=False, side="short"),
               mk(venue_id="v1", market="inverse")):
        raw = ev.to_json()
        assert isinstance(raw, bytes)
        assert list(orjson.loads(raw)) == [f.name for f in dataclasses.fields(LiquidationEvent)]
        assert event_from_json(raw) == ev
        assert event_from_json(raw.decode()) == ev
        assert event_from_json(orjson.loads(raw)) == ev
        assert event_from_json(ev.to_dict()) == ev


def test_event_from_json_ignores_unknown_fields() -> None:
    d = {**mk().to_dict(), "extra": 1}
    assert event_from_json(d) == mk()


@pytest.mark.parametrize("data,needle", [
    (b"{not json", "not JSON"),
    ("", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"text"', "JSON object"),
    (b"42", "JSON object"),
    (b"null", "JSON object"),
])
def test_event_from_json_rejects_non_objects(data: Any, needle: str) -> None:
    with pytest.raises(EventError, match=needle):
        event_from_json(data)


def test_event_from_json_missing_fields_are_named() -> None:
    d = mk().to_dict()
    del d["price"], d["sampled"]
    with pytest.raises(EventError) as err:
        event_from_json(d)
    assert str(err.value) == "missing fields: price, sampled"
    with pytest.raises(EventError, match="missing fields: v, id, exchange"):
        event_from_json({})


def test_event_from_json_null_fields_are_present() -> None:
    d = {**mk().to_dict(), "qty": None, "notional_usd": None}
    ev = event_from_json(d)
    assert ev.qty is None and ev.notional_usd is None


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_event_from_json_wrong_version(version: Any) -> None:
    with pytest.raises(EventError, match="unsupported schema version"):
        event_from_json({**mk().to_dict(), "v": version})


@pytest.mark.parametrize("side", ["buy", "sell", "LONG", None, ""])
def test_event_from_json_bad_side(side: Any) -> None:
    with pytest.raises(EventError, match="bad side"):
        event_from_json({**mk().to_dict(), "side": side})


# ---- JSON Schema ---------------------------------------------------------------------------------
def test_schema_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_schema_fields_equal_dataclass_fields() -> None:
    names = [f.name for f in dataclasses.fields(LiquidationEvent)]
    assert SCHEMA["required"] == names
    # The wire fields, then the one optional key (the warm start's flag, not an event field).
    assert list(SCHEMA["properties"]) == [*names, BACKFILL_KEY]
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["properties"]["v"]["const"] == SCHEMA_VERSION
    assert SCHEMA["properties"]["side"]["enum"] == ["long", "short"]
    assert SCHEMA["properties"]["market"]["enum"] == ["linear", "inverse", "spot"]


finite = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False)
nonneg = st.one_of(st.none(), st.floats(min_value=0, max_value=1e15, allow_nan=False,
                                        allow_infinity=False))
text = st.text(max_size=20)


@given(exchange=text, symbol=text, base=text, quote=text,
       market=st.sampled_from(["linear", "inverse", "spot"]),
       side=st.sampled_from(["long", "short"]), price=finite, qty=nonneg, notional=nonneg,
       ts=st.floats(min_value=1e-3, max_value=4e9, allow_nan=False),
       recv_ts=st.floats(min_value=0, max_value=4e9, allow_nan=False), sampled=st.booleans(),
       venue_id=st.one_of(st.none(), text))
def test_every_serialized_event_validates_and_round_trips(
        exchange: str, symbol: str, base: str, quote: str, market: Any, side: Any, price: float,
        qty: float | None, notional: float | None, ts: float, recv_ts: float, sampled: bool,
        venue_id: str | None) -> None:
    ev = make_event(exchange=exchange, symbol=symbol, base=base, quote=quote, market=market,
                    side=side, price=price, qty=qty, notional_usd=notional, ts=ts,
                    recv_ts=recv_ts, sampled=sampled, venue_id=venue_id)
    wire = orjson.loads(ev.to_json())
    assert errors(wire) == []
    assert event_from_json(ev.to_json()) == ev


@pytest.mark.parametrize("change", [
    {"side": "buy"}, {"side": "sell"}, {"notional_usd": -1}, {"qty": -0.5}, {"price": 0},
    {"price": -3}, {"market": "perp"}, {"v": 2}, {"id": ""}, {"sampled": "yes"},
    {"ts": "1700000000"}, {"qty": "1"}, {"exchange": 7}, {"notional_usd": "100"},
    {"extra": True}, {"backfill": "yes"}, {"backfill": 1},
])
def test_broken_events_fail_the_schema(change: dict[str, Any]) -> None:
    good = mk().to_dict()
    assert errors(good) == []
    assert errors({**good, **change}) != []


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(LiquidationEvent)])
def test_every_field_is_required_by_the_schema(field: str) -> None:
    d = mk().to_dict()
    del d[field]
    assert errors(d) == [f"'{field}' is a required property"]


@pytest.mark.parametrize("field,value", [
    ("notional_usd", "100"), ("notional_usd", -5), ("market", "perp"), ("price", "1"),
    ("qty", True), ("sampled", "yes"), ("exchange", 3), ("ts", 0),
])
def test_event_from_json_rejects_bad_types_and_ranges(field: str, value: object) -> None:
    good = make_event(exchange="binance", symbol="BTCUSDT", base="BTC", quote="USDT",
                      market="linear", side="long", price=1.0, qty=1.0, notional_usd=1.0,
                      ts=1.0, recv_ts=1.0, sampled=True).to_dict()
    with pytest.raises(EventError):
        event_from_json({**good, field: value})


def test_backfill_key_is_optional_and_v1_readers_accept_it() -> None:
    ev = mk()
    plain, flagged = event_json(ev), event_json(ev, backfill=True)
    assert plain == ev.to_json()  # a live event's wire form is unchanged
    assert orjson.loads(flagged) == {**orjson.loads(plain), "backfill": True}
    assert errors(orjson.loads(flagged)) == [] and errors(orjson.loads(plain)) == []
    assert event_from_json(flagged) == event_from_json(plain) == ev  # one event, one id
    assert errors({**ev.to_dict(), "backfill": False}) == []
    with pytest.raises(EventError, match="backfill must be a boolean"):
        event_from_json({**ev.to_dict(), "backfill": "yes"})
