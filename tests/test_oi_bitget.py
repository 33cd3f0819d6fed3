"""Bitget open interest and funding: v2 ``GET /api/v2/mix/market/tickers?productType=..``.

Fixture ``tests/fixtures/oi/bitget_tickers_coin_futures_doc.json`` is Bitget's DOC EXAMPLE (no
real capture of this endpoint was found), the response example of "Get All Tickers"
(https://www.bitget.com/api-doc/contract/market/Get-All-Symbol-Ticker), byte for byte as
copied in rosssaunders/coincise ``docs/bitget/endpoints/private/get_api_v2_mix_market_tickers.md``.
It is a COIN-FUTURES listing: BTCUSD (perpetual; the doc's markPrice 12345 is a placeholder,
used as is) and ETHUSD_231229 (a delivery contract, fundingRate "0"). Other rows come from the
simulator's ``ticker`` helper. Units: ``holdingAmount`` "Current positions in the unit of
number of coins traded" (same doc), base coin even for coin-margined contracts.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.bitget import OI_PATH, BitgetSim, oi_body, ticker
from liqstress.streams.venues import bitget
from liqstress.streams.venues.base import FrameError, Metadata

FIXTURE = (Path(__file__).parent / "fixtures" / "oi" /
           "bitget_tickers_coin_futures_doc.json").read_text()
URLS = bitget.oi_urls(Metadata(), bitget.VENUE.default_urls)
USDT_URL, COIN_URL, USDC_URL = URLS
RECV = 1_695_794_272.0
T_MS = 1_791_500_000_000


def parse(body: str, url: str = COIN_URL, recv_ts: float = RECV):  # noqa: ANN201
    return bitget.parse_oi(body, url, recv_ts, Metadata())


def test_one_request_per_product_type_and_oi_source() -> None:
    assert URLS == [f"https://api.bitget.com/api/v2/mix/market/tickers?productType={t}"
                    for t in ("USDT-FUTURES", "COIN-FUTURES", "USDC-FUTURES")]
    assert all(bitget.VENUE.oi_source(u) for u in URLS)
    assert bitget.rest_urls(bitget.VENUE.default_urls) == []
    assert not bitget.VENUE.oi_source(bitget.WS_URL)
    assert bitget.VENUE.oi_rule


def test_doc_example_coin_futures_holding_is_base_coin() -> None:
    out = parse(FIXTURE)
    assert out.kind == "data" and out.skipped == 0 and out.unpriced == 0
    perp, dated = out.open_interest
    assert (perp.symbol, perp.coin, perp.market) == ("BTCUSD", "BTC", "inverse")
    # 125.6844 BTC (not USD contracts) x mark 12345 = 1,551,573.918 USD
    assert perp.oi_coins == 125.6844 and perp.oi_usd == pytest.approx(1_551_573.918)
    assert perp.price == 12_345.0
    assert perp.funding_rate == -0.0007 and perp.funding_interval_hours == 8.0
    assert perp.ts == 1_695_794_271.4
    assert (dated.symbol, dated.coin, dated.market) == ("ETHUSD_231229", "ETH", "inverse")
    assert dated.oi_coins == 9_488.49 and dated.oi_usd == pytest.approx(9_488.49 * 1234)
    assert dated.funding_rate is None and dated.funding_interval_hours is None  # "0" on delivery


def test_usdt_and_usdc_futures_are_linear() -> None:
    out = parse(oi_body(ticker("BTCUSDT", "40000", "60000", T_MS),
                        ticker("1000PEPEUSDT", "2000000", "0.012", T_MS, "0.0003",
                               fundingRateInterval="4")), USDT_URL, T_MS / 1000)
    btc, pepe = out.open_interest
    assert btc.market == "linear" and btc.oi_coins == 40_000.0 and btc.oi_usd == 2.4e9
    # 2,000,000 units of 1000 PEPE = 2e9 PEPE, 24,000 USD; the row's own 4 h interval
    assert pepe.coin == "PEPE" and pepe.oi_coins == pytest.approx(2e9)
    assert pepe.oi_usd == pytest.approx(24_000.0) and pepe.price == pytest.approx(0.000012)
    assert pepe.funding_interval_hours == 4.0 and pepe.funding_8h == pytest.approx(0.0006)
    (perp,) = parse(oi_body(ticker("BTCPERP", "10", "60010", T_MS)), USDC_URL,
                    T_MS / 1000).open_interest
    assert perp.coin == "BTC" and perp.market == "linear" and perp.oi_usd == 600_100.0


def test_missing_mark_is_unvalued_and_empty_funding_none() -> None:
    out = parse(oi_body(ticker("ETHUSDT", "10", "", T_MS, "")), USDT_URL, T_MS / 1000)
    (rec,) = out.open_interest
    assert rec.oi_coins == 10.0 and rec.oi_usd is None and rec.price is None
    assert rec.funding_rate is None and out.unpriced == 1


def test_bad_row_is_skipped_and_counted() -> None:
    body = oi_body(ticker("BTCUSDT", "1", "60000", T_MS), ticker("ETHUSDT", "lots", "3000", T_MS),
                   ticker("XRPBTC", "1", "0.00001", T_MS))  # no USDT in the symbol
    out = parse(body, USDT_URL, T_MS / 1000)
    assert [r.symbol for r in out.open_interest] == ["BTCUSDT"] and out.skipped == 2


def test_all_bad_body_is_bad_open_interest() -> None:
    with pytest.raises(FrameError) as exc:
        parse(oi_body(ticker("BTCUSDT", "-1", "60000", T_MS)), USDT_URL, T_MS / 1000)
    assert exc.value.reason == "bad_open_interest"


def test_venue_error_body_is_rest_error() -> None:
    body = '{"code":"40034","msg":"Parameter productType does not exist","requestTime":1,"data":null}'
    with pytest.raises(FrameError) as exc:
        parse(body)
    assert exc.value.reason == "rest_error" and "40034" in exc.value.detail


def test_session_routes_the_poll_to_parse_oi() -> None:
    outcome = VenueSession(bitget.VENUE).process(RawFrame("bitget", COIN_URL, RECV, FIXTURE))
    assert outcome.deadletter is None
    assert [r.symbol for r in outcome.open_interest] == ["BTCUSD", "ETHUSD_231229"]


async def test_simulator_serves_every_oi_url() -> None:
    async with BitgetSim() as sim:
        urls = bitget.oi_urls(Metadata(), sim.urls())
        records = []
        async with aiohttp.ClientSession() as http:
            for url in urls:
                async with http.get(url) as resp:
                    assert resp.status == 200
                    records += parse(await resp.text(), url, T_MS / 1000).open_interest
        by = {r.symbol: r for r in records}
        assert set(by) == {"BTCUSDT", "ETHUSDT", "BTCUSD", "BTCPERP"}
        assert by["BTCUSD"].market == "inverse" and by["BTCUSD"].oi_usd == 3e8
        sim.oi_bodies[f"{OI_PATH}?productType=USDT-FUTURES"] = oi_body(
            ticker("BTCUSDT", "45000", "60000", T_MS))
        async with aiohttp.ClientSession() as http, http.get(urls[0]) as resp:
            (rec,) = parse(await resp.text(), urls[0], T_MS / 1000).open_interest
        assert rec.oi_coins == 45_000.0
