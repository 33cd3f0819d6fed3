"""Kraken Futures open interest and funding from ``/derivatives/api/v3/tickers``.

Fixture ``tests/fixtures/oi/kraken_futures_tickers.json``: nautilus_trader
``crates/adapters/kraken/test_data/http_futures_tickers.json`` (commit 17b9c239), byte for byte:
a captured PI_XBTUSD ticker plus a PF_ETHUSD entry in the same shape. It has no
``relativeFundingRate``; no captured /tickers body with it was found (Kraken's own doc example,
docs.kraken.com "Get tickers", lacks it too), so the funding tests add the field to the captured
ticker here. The plain ``fundingRate`` is an ABSOLUTE amount and must never be read as a rate.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.kraken_futures import (
    TICKERS_PATH,
    KrakenFuturesSim,
    instruments_body,
    oi_body,
    ticker,
)
from liqstress.streams.venues import kraken_futures as kf
from liqstress.streams.venues.base import FrameError, Metadata

FIXTURE = Path(__file__).parent / "fixtures" / "oi" / "kraken_futures_tickers.json"
URL = kf.oi_urls(Metadata(), {})[0]
RECV = 1_763_339_700.0  # 2025-11-17T00:35:00Z, just after the capture's serverTime
SERVER_TS = 1_763_339_677.524  # 2025-11-17T00:34:37.524Z


def loaded_meta() -> Metadata:
    meta = Metadata()
    kf.load_rest(meta, kf.rest_urls({})[0], instruments_body())
    return meta


def body_with(*tickers: dict) -> str:
    msg = orjson.loads(FIXTURE.read_text())
    msg["tickers"] = list(tickers)
    return orjson.dumps(msg).decode()


def captured() -> list[dict]:
    return orjson.loads(FIXTURE.read_text())["tickers"]


def parse(body: str, meta: Metadata | None = None) -> dict:
    out = kf.parse_oi(body, URL, RECV, loaded_meta() if meta is None else meta)
    return {r.symbol: r for r in out.open_interest}


def test_captured_inverse_is_usd_contracts_and_linear_is_base_units() -> None:
    recs = parse(FIXTURE.read_text())
    pi, pf = recs["PI_XBTUSD"], recs["PF_ETHUSD"]
    # PI_: 21,279,580 contracts of 1 USD = 21.28M USD; coins = USD / mark.
    assert (pi.coin, pi.market, pi.exchange) == ("BTC", "inverse", "kraken-futures")
    assert pi.oi_usd == pytest.approx(21_279_580.0)
    assert pi.oi_coins == pytest.approx(21_279_580.0 / 91506.6009839176)  # ~232.55 BTC
    assert pi.price == pytest.approx(91506.6009839176)
    # PF_: 1,000,000 contracts of 1 ETH; USD = coins x mark.
    assert (pf.coin, pf.market) == ("ETH", "linear")
    assert pf.oi_coins == pytest.approx(1_000_000.0)
    assert pf.oi_usd == pytest.approx(1_000_000.0 * 3205.25)
    # No relativeFundingRate in the capture: no funding, and the absolute fundingRate
    # (-3.99e-09 BTC per contract) is NOT taken for a rate.
    assert pi.funding_rate is None and pi.funding_interval_hours is None
    assert pf.funding_rate is None
    assert pi.ts == pytest.approx(SERVER_TS) and pi.recv_ts == RECV


def test_relative_funding_is_a_fraction_per_hour() -> None:
    pf = {**captured()[1], "fundingRate": 0.0481, "relativeFundingRate": 1.5e-05}
    (rec,) = parse(body_with(pf)).values()
    assert rec.funding_rate == pytest.approx(1.5e-05)
    assert rec.funding_interval_hours == 1.0
    assert rec.funding_8h == pytest.approx(1.2e-04)  # 8 hourly payments


def test_contract_size_comes_from_metadata() -> None:
    meta = Metadata()
    kf.load_rest(meta, "x", instruments_body([
        {"symbol": "PI_XBTUSD", "type": "futures_inverse", "tradeable": True, "contractSize": 10},
        {"symbol": "PF_ETHUSD", "type": "flexible_futures", "tradeable": True,
         "contractSize": 0.01}]))
    recs = parse(FIXTURE.read_text(), meta)
    assert recs["PI_XBTUSD"].oi_usd == pytest.approx(212_795_800.0)
    assert recs["PF_ETHUSD"].oi_coins == pytest.approx(10_000.0)
    assert recs["PF_ETHUSD"].oi_usd == pytest.approx(10_000.0 * 3205.25)


def test_unknown_metadata_leaves_usd_and_coins_null() -> None:
    out = kf.parse_oi(FIXTURE.read_text(), URL, RECV, Metadata())
    assert out.kind == "data" and out.unpriced == 2
    recs = {r.symbol: r for r in out.open_interest}
    assert recs["PI_XBTUSD"].oi_usd is None and recs["PI_XBTUSD"].oi_coins is None
    assert recs["PF_ETHUSD"].oi_usd is None and recs["PF_ETHUSD"].oi_coins is None
    assert recs["PF_ETHUSD"].price == pytest.approx(3205.25)


def test_dated_future_has_no_funding_and_indices_are_not_ours() -> None:
    fi = {**captured()[0], "symbol": "FI_XBTUSD_261225", "tag": "month",
          "relativeFundingRate": 3e-05}
    index = {"symbol": "in_xbtusd", "last": 91468.38, "lastTime": "2025-11-17T00:34:00.000Z",
             "tag": "index"}
    recs = parse(body_with(fi, index))
    assert list(recs) == ["FI_XBTUSD_261225"]
    assert recs["FI_XBTUSD_261225"].funding_rate is None
    assert recs["FI_XBTUSD_261225"].oi_usd == pytest.approx(21_279_580.0)


def test_a_bad_ticker_is_skipped_and_an_all_bad_body_is_an_error() -> None:
    pi, pf = captured()
    out = kf.parse_oi(body_with(pi, {**pf, "openInterest": "1000000.0"}), URL, RECV,
                      loaded_meta())
    assert [r.symbol for r in out.open_interest] == ["PI_XBTUSD"] and out.skipped == 1
    with pytest.raises(FrameError) as err:
        kf.parse_oi(body_with({**pf, "openInterest": True}, {**pi, "openInterest": -5.0}),
                    URL, RECV, loaded_meta())
    assert err.value.reason == "bad_open_interest"


def test_venue_error_body_is_rest_error() -> None:
    body = '{"result":"error","serverTime":"2016-02-25T09:45:53.818Z","error":"apiLimitExceeded"}'
    with pytest.raises(FrameError) as err:
        kf.parse_oi(body, URL, RECV, loaded_meta())
    assert err.value.reason == "rest_error" and "apiLimitExceeded" in err.value.detail


def test_oi_source_matches_only_the_tickers_url() -> None:
    assert kf.VENUE.oi_source(URL)
    assert URL == "https://futures.kraken.com/derivatives/api/v3/tickers"
    for url in kf.rest_urls({}):
        assert not kf.VENUE.oi_source(url)
    assert "relativeFundingRate" in kf.VENUE.oi_rule


def test_session_routes_the_body_to_parse_oi() -> None:
    session = VenueSession(kf.VENUE)
    session.process(RawFrame(kf.ID, kf.rest_urls({})[0], RECV, instruments_body()))
    out = session.process(RawFrame(kf.ID, URL, RECV, FIXTURE.read_text()))
    assert out.deadletter is None and out.kind == "data"
    assert {r.symbol for r in out.open_interest} == {"PI_XBTUSD", "PF_ETHUSD"}


async def test_simulator_serves_the_poll() -> None:
    async with KrakenFuturesSim() as sim:
        sim.oi_bodies[TICKERS_PATH] = oi_body([ticker("PF_XBTUSD", 120.0, 60000.0, 2e-05)])
        meta = loaded_meta()
        async with aiohttp.ClientSession() as http:
            for url in kf.oi_urls(meta, sim.urls()):
                async with http.get(url) as resp:
                    body = await resp.text()

                out = kf.parse_oi(body, url, time.time(), meta)
    (rec,) = out.open_interest
    assert (rec.symbol, rec.oi_coins, rec.oi_usd) == ("PF_XBTUSD", 120.0, 7_200_000.0)
    assert rec.funding_rate == pytest.approx(2e-05)
