"""Binance USD-M open interest: ``/fapi/v1/premiumIndex`` (every symbol; marks and funding,
stashed in ``meta.oi_context``) then ``/fapi/v1/openInterest?symbol=<COIN>USDT`` per allowlisted
coin (base coins), valued only with a mark at most ~2 minutes from the OI time.

Fixtures (Binance doc examples; no real capture of these REST bodies was found):
``tests/fixtures/oi/binance_premium_index.json`` is the USD-M "Mark Price" example item
(developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Mark-Price) as
the one-element list the all-symbol call returns; ``binance_open_interest.json`` is the
"Open Interest" example (.../rest-api/Open-Interest). Their times are three months apart, so
together they must NOT be valued; tests that need a same-moment mark move the time.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.labels import DEFAULT_COIN_ALLOWLIST
from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.binance import BinanceSim
from liqstress.streams.venues import binance
from liqstress.streams.venues.base import FrameError, Metadata

OI_DIR = Path(__file__).parent / "fixtures" / "oi"
PREMIUM_DOC = (OI_DIR / "binance_premium_index.json").read_text()
OI_DOC = (OI_DIR / "binance_open_interest.json").read_text()
PREMIUM_URL, *OI_URLS = binance.oi_urls(Metadata(), {})
BTC_URL = OI_URLS[0]
OI_TIME = 1_589_437_530_011
RECV = OI_TIME / 1000 + 0.5


def premium_at(t_ms: int, **changes: str) -> str:
    (item,) = orjson.loads(PREMIUM_DOC)
    return orjson.dumps([{**item, "time": t_ms, **changes}]).decode()


def parse(*bodies: tuple[str, str], meta: Metadata | None = None):  # type: ignore[no-untyped-def]
    meta = Metadata() if meta is None else meta
    out = None
    for url, body in bodies:
        out = binance.parse_oi(body, url, RECV, meta)
    return out


def test_urls_premium_first_then_the_allowlist() -> None:
    assert PREMIUM_URL == "https://fapi.binance.com/fapi/v1/premiumIndex"
    assert OI_URLS == [f"https://fapi.binance.com/fapi/v1/openInterest?symbol={c}USDT"
                       for c in DEFAULT_COIN_ALLOWLIST]
    assert binance.VENUE.default_urls["rest"] == binance.REST
    assert binance.oi_urls(Metadata(), {"rest": "http://127.0.0.1:9"})[0] == \
        "http://127.0.0.1:9/fapi/v1/premiumIndex"


def test_same_moment_mark_values_base_coins() -> None:
    out = parse((PREMIUM_URL, premium_at(OI_TIME - 30_000)), (BTC_URL, OI_DOC))
    (rec,) = out.open_interest
    assert (rec.symbol, rec.coin, rec.market, rec.exchange) == (
        "BTCUSDT", "BTC", "linear", "binance")
    assert rec.oi_coins == pytest.approx(10659.509)
    assert rec.price == pytest.approx(11793.63104562)
    assert rec.oi_usd == pytest.approx(10659.509 * 11793.63104562)  # ~125.7M USD
    assert rec.funding_rate == pytest.approx(0.00038246)
    assert rec.funding_interval_hours == 8.0
    assert rec.ts == pytest.approx(OI_TIME / 1000)


def test_doc_bodies_months_apart_are_not_valued() -> None:
    meta = Metadata()
    first = binance.parse_oi(PREMIUM_DOC, PREMIUM_URL, RECV, meta)
    assert first.kind == "info" and first.open_interest == ()
    assert meta.oi_context["binance_marks"]["BTCUSDT"][0] == pytest.approx(11793.63104562)
    out = binance.parse_oi(OI_DOC, BTC_URL, RECV, meta)
    (rec,) = out.open_interest
    assert rec.oi_coins == pytest.approx(10659.509)
    assert rec.oi_usd is None and rec.price is None and out.unpriced == 1


@pytest.mark.parametrize(("offset_ms", "valued"), [(-120_000, True), (-121_000, False),
                                                   (121_000, False)])
def test_mark_age_limit(offset_ms: int, valued: bool) -> None:
    out = parse((PREMIUM_URL, premium_at(OI_TIME + offset_ms)), (BTC_URL, OI_DOC))
    assert (out.open_interest[0].oi_usd is not None) is valued


def test_missing_mark_and_empty_funding() -> None:
    out = parse((PREMIUM_URL, premium_at(OI_TIME, symbol="ETHUSDT")), (BTC_URL, OI_DOC))
    assert out.open_interest[0].oi_usd is None  # no BTCUSDT mark in this poll
    out = parse((PREMIUM_URL, premium_at(OI_TIME, lastFundingRate="")), (BTC_URL, OI_DOC))
    rec = out.open_interest[0]
    assert rec.oi_usd is not None and rec.funding_rate is None
    assert rec.funding_interval_hours is None


def test_bad_bodies() -> None:
    with pytest.raises(FrameError) as err:
        parse((BTC_URL, '{"openInterest":10659.509,"symbol":"BTCUSDT","time":1589437530011}'))
    assert err.value.reason == "bad_open_interest"  # a JSON number where Binance sends a string
    with pytest.raises(FrameError) as err:
        parse((PREMIUM_URL, '[{"symbol":"BTCUSDT","markPrice":true,"time":1}]'))
    assert err.value.reason == "bad_open_interest"
    meta = Metadata()
    mixed = orjson.dumps([*orjson.loads(premium_at(OI_TIME)), {"symbol": "X", "markPrice": ""}])
    binance.parse_oi(mixed.decode(), PREMIUM_URL, RECV, meta)  # one bad item: left out
    assert list(meta.oi_context["binance_marks"]) == ["BTCUSDT"]


def test_venue_error_body_is_rest_error() -> None:
    for url in (PREMIUM_URL, BTC_URL):
        with pytest.raises(FrameError) as err:
            parse((url, '{"code":-1121,"msg":"Invalid symbol."}'))
        assert err.value.reason == "rest_error" and "-1121" in err.value.detail


def test_oi_source() -> None:
    assert all(binance.VENUE.oi_source(u) for u in [PREMIUM_URL, *OI_URLS])
    assert list(binance.VENUE.rest_urls({})) == []
    assert not binance.VENUE.oi_source(binance.WS_URL)
    assert not binance.VENUE.oi_source(binance.PRICES_URL)


def test_session_routes_the_bodies() -> None:
    session = VenueSession(binance.VENUE)
    first = session.process(RawFrame(binance.ID, PREMIUM_URL, RECV, premium_at(OI_TIME)))
    assert first.deadletter is None and first.kind == "info"
    out = session.process(RawFrame(binance.ID, BTC_URL, RECV, OI_DOC))
    assert out.deadletter is None
    assert out.open_interest[0].oi_usd == pytest.approx(10659.509 * 11793.63104562)


async def test_simulator_serves_the_poll() -> None:
    async with BinanceSim() as sim:
        meta = Metadata()
        records = []
        async with aiohttp.ClientSession() as http:
            for url in binance.oi_urls(meta, sim.urls()):
                async with http.get(url) as resp:
                    out = binance.parse_oi(await resp.text(), url, time.time(), meta)
                records.extend(out.open_interest)
    assert [r.coin for r in records] == list(DEFAULT_COIN_ALLOWLIST)
    btc = records[0]
    assert btc.oi_coins == pytest.approx(80000.0)
    assert btc.oi_usd == pytest.approx(80000.0 * 60000.0)
