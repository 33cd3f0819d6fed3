"""The open-interest record (liqstress/open_interest.py): units per one coin, the checks that
refuse what cannot be true, the wire form against its JSON Schema, and the kit helpers venues
build their OI polls with."""

from __future__ import annotations

import json
from importlib import resources

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from liqstress.open_interest import OIError, OpenInterest, make_oi, oi_from_json
from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.venues import kit
from liqstress.streams.venues.base import FrameError, VenueSpec

SCHEMA = json.loads(resources.files("liqstress").joinpath("schemas/open_interest.schema.json")
                    .read_text())
T = 1_789_660_000.0


def rec(**kw: object) -> OpenInterest:
    args: dict[str, object] = dict(exchange="bybit", symbol="BTCUSDT", base="BTC",
                                   market="linear", oi_coins=50_000.0, oi_usd=5e9, price=100_000.0,
                                   funding_rate=0.0001, funding_interval_hours=8.0, ts=T,
                                   recv_ts=T + 0.5)
    args.update(kw)
    return make_oi(**args)  # type: ignore[arg-type]


def test_units_are_per_one_coin() -> None:
    r = rec(symbol="1000PEPEUSDT", base="1000PEPE", oi_coins=2_000_000.0, oi_usd=24_000.0,
            price=0.012)
    assert r.coin == "PEPE" and r.key == "PEPE"
    assert r.oi_coins == pytest.approx(2e9)  # 2 M units of 1000 PEPE
    assert r.price == pytest.approx(0.000012)
    assert r.oi_usd == pytest.approx(24_000.0)  # USD needs no scaling


def test_funding_is_put_on_an_8h_footing() -> None:
    assert rec(funding_rate=0.0000125, funding_interval_hours=1.0).funding_8h == pytest.approx(
        0.0001)
    assert rec(funding_rate=0.0001, funding_interval_hours=4.0).funding_8h == pytest.approx(
        0.0002)
    assert rec(funding_rate=None, funding_interval_hours=None).funding_8h is None


@pytest.mark.parametrize(("kw", "why"), [
    ({"oi_usd": -1.0}, "oi_usd"),
    ({"oi_usd": 2e12}, "oi_usd"),
    ({"oi_coins": -5.0}, "oi_coins"),
    ({"oi_coins": float("nan")}, "oi_coins"),
    ({"oi_usd": True}, "oi_usd"),  # a JSON boolean is never a number
    ({"price": 0.0}, "price"),
    ({"funding_rate": 1.5}, "funding_rate"),
    ({"funding_interval_hours": None}, "funding_interval_hours"),
    ({"funding_interval_hours": 0.0}, "funding_interval_hours"),
    ({"funding_interval_hours": 48.0}, "funding_interval_hours"),
    ({"ts": 1_000_000.0}, "time"),  # 1970: seconds read as milliseconds somewhere
    ({"ts": T + 3 * 86_400}, "time"),
    ({"market": "spot"}, "market"),
    ({"symbol": ""}, "symbol"),
])
def test_what_cannot_be_true_is_refused(kw: dict[str, object], why: str) -> None:
    with pytest.raises(OIError, match=why):
        rec(**kw)


def test_wire_form_round_trips_and_matches_the_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    for r in (rec(), rec(oi_usd=None, oi_coins=None, price=None, funding_rate=None,
                         funding_interval_hours=None, market="inverse")):
        obj = orjson.loads(r.to_json())
        Draft202012Validator(SCHEMA).validate(obj)
        assert list(obj) == SCHEMA["required"]  # field order = schema order
        assert oi_from_json(r.to_json()) == r


@pytest.mark.parametrize("bad", [
    b"not json", b"[]", b'{"v": 1}',
    orjson.dumps({**rec().to_dict(), "v": 2}),
    orjson.dumps({**rec().to_dict(), "oi_usd": "5e9"}),
    orjson.dumps({**rec().to_dict(), "coin": ""}),
    orjson.dumps({**rec().to_dict(), "funding_rate": 9.0}),
])
def test_foreign_records_are_refused(bad: bytes) -> None:
    with pytest.raises(OIError):
        oi_from_json(bad)


@given(st.floats(min_value=0, max_value=1e12), st.floats(min_value=0, max_value=1e9),
       st.floats(min_value=-1, max_value=1), st.sampled_from([1.0, 4.0, 8.0]))
def test_every_valid_record_passes_its_own_schema(usd: float, coins: float, funding: float,
                                                  hours: float) -> None:
    r = rec(oi_usd=usd, oi_coins=coins, funding_rate=funding, funding_interval_hours=hours)
    Draft202012Validator(SCHEMA).validate(orjson.loads(r.to_json()))
    assert oi_from_json(r.to_json()) == r


# ---- the kit ---------------------------------------------------------------------------------
def _build(item: dict[str, object]) -> OpenInterest | None:
    if item.get("type") == "spot":
        return None
    return kit.oi_record(exchange="x", symbol=str(item["s"]), base=str(item["s"]),
                         market="linear", oi_coins=kit.num(item, "oi"), oi_usd=None, price=None,
                         funding_rate=None, funding_interval_hours=None, ts=T, recv_ts=T)


def test_oi_frame_skips_and_counts_unreadable_instruments() -> None:
    out = kit.oi_frame([{"s": "BTC", "oi": 5}, {"s": "ETH", "oi": "5"}, {"s": "SOL", "oi": -1},
                        {"s": "X", "type": "spot"}], _build)
    assert [r.symbol for r in out.open_interest] == ["BTC"]
    assert out.skipped == 2 and out.unpriced == 1 and out.kind == "data"
    assert kit.oi_frame([{"s": "X", "type": "spot"}], _build).kind == "info"
    with pytest.raises(FrameError) as exc:
        kit.oi_frame([{"s": "ETH", "oi": "5"}, {"s": "SOL"}], _build)
    assert exc.value.reason == "bad_open_interest" and "2 unusable" in exc.value.detail


def test_the_session_routes_oi_sources_to_parse_oi_and_the_rest_to_load_rest() -> None:
    loaded: list[str] = []

    def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
        return kit.oi_frame(orjson.loads(body), _build)

    venue = VenueSpec(id="x", side_rule="", unit_rule="", sampled=False,
                      connections=lambda meta, urls: [], parse=lambda *a: kit.INFO,
                      load_rest=lambda meta, url, body: loaded.append(url),
                      oi_source=kit.url_has("/oi"), parse_oi=parse_oi)
    session = VenueSession(venue)
    out = session.process(RawFrame("x", "https://x.test/oi?all", T, '[{"s": "BTC", "oi": 7}]'))
    assert out.deadletter is None and [r.oi_coins for r in out.open_interest] == [7.0]
    assert out.unpriced == 0  # the liquidation count: OI without USD shows in its records
    assert not loaded
    out = session.process(RawFrame("x", "https://x.test/meta", T, "{}"))
    assert loaded == ["https://x.test/meta"] and not out.open_interest
    out = session.process(RawFrame("x", "https://x.test/oi", T, '[{"s": "E", "oi": "7"}]'))
    assert out.deadletter is not None and out.deadletter["reason"] == "bad_open_interest"
