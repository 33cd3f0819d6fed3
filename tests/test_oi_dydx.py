"""dYdX v4 open interest and funding: the indexer's ``GET /v4/perpetualMarkets?limit=1000``.

Fixture ``tests/fixtures/oi/dydx_perpetual_markets.json``: a REAL indexer answer, trimmed to
four markets (entries byte for byte) from nautechsystems/nautilus_trader
``tests/test_data/dydx/http/list_perpetual_markets.json``: ADA-USD and AXL-USD (non-zero
funding), AVAX-USD (``openInterest`` 40558.0 differs from ``baseOpenInterest``) and AGIX-USD in
FINAL_SETTLEMENT. ``nextFundingRate`` is the predicted rate of the next HOURLY payment.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.dydx import DydxSim
from liqstress.streams.venues import dydx
from liqstress.streams.venues.base import FrameError, Metadata

BODY = (Path(__file__).parent / "fixtures" / "oi" / "dydx_perpetual_markets.json").read_text()
URL = "https://indexer.dydx.trade/v4/perpetualMarkets?limit=1000"
RECV = 1_717_000_000.0


def parse(body: str = BODY) -> dict:
    return {r.symbol: r for r in dydx.parse_oi(body, URL, RECV, Metadata()).open_interest}


def test_base_coins_valued_at_oracle_with_hourly_funding() -> None:
    ada = parse()["ADA-USD"]
    assert (ada.coin, ada.market) == ("ADA", "linear")
    assert ada.oi_coins == pytest.approx(1610310)
    assert ada.price == pytest.approx(0.4244568913)
    assert ada.oi_usd == pytest.approx(1610310 * 0.4244568913)
    assert ada.funding_rate == pytest.approx(0.00000046646341463415)
    assert ada.funding_interval_hours == 1.0
    assert ada.funding_8h == pytest.approx(8 * 0.00000046646341463415)
    assert (ada.ts, ada.recv_ts) == (RECV, RECV)  # the body has no time


def test_open_interest_not_base_open_interest_and_settled_markets_left_out() -> None:
    recs = parse()
    assert sorted(recs) == ["ADA-USD", "AVAX-USD", "AXL-USD"]  # AGIX-USD is settled
    assert recs["AVAX-USD"].oi_coins == pytest.approx(40558.0)  # not 40563.8
    assert recs["AXL-USD"].oi_usd == pytest.approx(6513 * 0.667333466)


def test_missing_oracle_price_leaves_usd_null() -> None:
    msg = orjson.loads(BODY)
    msg["markets"]["ADA-USD"]["oraclePrice"] = None
    out = dydx.parse_oi(orjson.dumps(msg).decode(), URL, RECV, Metadata())
    ada = {r.symbol: r for r in out.open_interest}["ADA-USD"]
    assert ada.oi_usd is None and ada.price is None and ada.oi_coins == 1610310
    assert out.unpriced == 1


def test_bad_instrument_is_skipped_and_counted() -> None:
    msg = orjson.loads(BODY)
    msg["markets"]["AXL-USD"]["nextFundingRate"] = "2"  # +200 % per hour: a unit error
    out = dydx.parse_oi(orjson.dumps(msg).decode(), URL, RECV, Metadata())
    assert out.skipped == 1
    assert sorted(r.symbol for r in out.open_interest) == ["ADA-USD", "AVAX-USD"]


def test_all_bad_body_is_bad_open_interest() -> None:
    msg = orjson.loads(BODY)
    for m in msg["markets"].values():
        m["openInterest"] = ""
    with pytest.raises(FrameError) as err:
        dydx.parse_oi(orjson.dumps(msg).decode(), URL, RECV, Metadata())
    assert err.value.reason == "bad_open_interest"


def test_venue_error_is_rest_error() -> None:
    body = '{"errors":[{"msg":"Too many requests"}]}'
    with pytest.raises(FrameError) as err:
        dydx.parse_oi(body, URL, RECV, Metadata())
    assert err.value.reason == "rest_error"


def test_oi_source_tells_polls_from_metadata() -> None:
    urls = dydx.VENUE.oi_urls(Metadata(), {})
    assert urls == [URL]
    assert dydx.VENUE.oi_source(URL)
    # the metadata listing is the same path without a query: never an OI poll
    assert not any(dydx.VENUE.oi_source(u) for u in dydx.VENUE.rest_urls({}))
    assert dydx.VENUE.oi_rule


def test_session_routes_poll_and_metadata_apart() -> None:
    session = VenueSession(dydx.VENUE)
    meta_out = session.process(RawFrame("dydx", "https://indexer.dydx.trade/v4/perpetualMarkets",
                                        RECV, BODY))
    assert meta_out.deadletter is None and not meta_out.open_interest
    assert sorted(session.meta.instruments) == ["ADA-USD", "AVAX-USD", "AXL-USD"]
    out = session.process(RawFrame("dydx", URL, RECV, BODY))
    assert out.deadletter is None
    assert len(out.open_interest) == 3


async def test_simulator_serves_the_poll() -> None:
    sim = DydxSim()
    async with sim, aiohttp.ClientSession() as http:
        (url,) = dydx.VENUE.oi_urls(Metadata(), sim.urls())
        async with http.get(url) as resp:
            body = await resp.text()
        async with http.get(dydx.VENUE.rest_urls(sim.urls())[0]) as resp:
            listing = await resp.text()
    recs = {r.symbol: r for r in dydx.parse_oi(body, url, time.time(), Metadata())
            .open_interest}
    assert sorted(recs) == ["BTC-USD", "ETH-USD"]  # LUNA-USD is settled
    assert recs["BTC-USD"].oi_usd == pytest.approx(50.5 * 60000)
    assert recs["ETH-USD"].funding_rate == pytest.approx(-0.0000025)
    assert body != listing  # the metadata route still serves the full listing
