"""Binance COIN-M open interest: ``/dapi/v1/premiumIndex`` (marks and funding, stashed in
``meta.oi_context``) then ``/dapi/v1/openInterest?symbol=<COIN>USD_PERP`` per allowlisted coin:
CONTRACTS x exchangeInfo ``contractSize`` USD = oi_usd (no price), coins = USD / mark.

Fixtures (Binance doc examples; no real capture was found): ``tests/fixtures/oi/
binance_coinm_premium_index.json`` is the COIN-M "Index Price and Mark Price" example
(developers.binance.com/docs/derivatives/coin-margined-futures/market-data/rest-api/
Index-Price-and-Mark-Price: a perpetual and a delivery contract with ``lastFundingRate: ""``);
``binance_coinm_open_interest.json`` is the COIN-M "Open Interest" example (BTCUSD_200626,
CURRENT_QUARTER). Contract sizes come from the simulator's exchangeInfo (BTCUSD 100 USD, others 10).
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.binance_coinm import BinanceCoinmSim, exchange_info_body, symbol_info
from liqstress.streams.venues import binance_coinm as coinm
from liqstress.streams.venues.base import FrameError, Metadata

OI_DIR = Path(__file__).parent / "fixtures" / "oi"
PREMIUM_DOC = (OI_DIR / "binance_coinm_premium_index.json").read_text()
OI_DOC = (OI_DIR / "binance_coinm_open_interest.json").read_text()
PREMIUM_URL = "https://dapi.binance.com/dapi/v1/premiumIndex"
PERP_URL = "https://dapi.binance.com/dapi/v1/openInterest?symbol=BTCUSD_PERP"
MARK_TIME = 1_596_094_042_000
RECV = MARK_TIME / 1000 + 1


def loaded_meta(*extra: dict) -> Metadata:
    meta = Metadata()
    body = exchange_info_body(None if not extra else [*orjson.loads(exchange_info_body())[
        "symbols"], *extra])
    coinm.load_rest(meta, coinm.rest_urls({})[0], body)
    return meta


def perp_oi(contracts: str = "15004", t_ms: int = MARK_TIME + 10_000) -> str:
    item = orjson.loads(OI_DOC)
    return orjson.dumps({**item, "symbol": "BTCUSD_PERP", "contractType": "PERPETUAL",
                         "openInterest": contracts, "time": t_ms}).decode()


def test_urls_premium_first_then_the_listed_allowlisted_perps() -> None:
    urls = coinm.oi_urls(loaded_meta(), {})
    assert urls[0] == PREMIUM_URL
    # The sim's exchangeInfo lists BTC, ETH and SOL perpetuals of the allowlist.
    assert urls[1:] == [f"https://dapi.binance.com/dapi/v1/openInterest?symbol={c}USD_PERP"
                        for c in ("BTC", "ETH", "SOL")]
    assert len(coinm.oi_urls(Metadata(), {})) == 7  # before metadata: the whole allowlist


def test_contracts_times_contract_size_is_usd_and_coins_use_the_mark() -> None:
    meta = loaded_meta()
    assert coinm.parse_oi(PREMIUM_DOC, PREMIUM_URL, RECV, meta).kind == "info"
    out = coinm.parse_oi(perp_oi(), PERP_URL, RECV, meta)
    (rec,) = out.open_interest
    assert (rec.symbol, rec.coin, rec.market, rec.exchange) == (
        "BTCUSD_PERP", "BTC", "inverse", "binance-coinm")
    assert rec.oi_usd == pytest.approx(15004 * 100)  # 1,500,400 USD
    assert rec.oi_coins == pytest.approx(1_500_400 / 11029.69574559)  # ~136.03 BTC
    assert rec.price == pytest.approx(11029.69574559)
    assert rec.funding_rate == pytest.approx(0.00071003)
    assert rec.funding_interval_hours == 8.0


def test_doc_delivery_contract_has_no_funding() -> None:
    meta = loaded_meta(symbol_info("BTCUSD_200626", 100, "CURRENT_QUARTER", 1593158400000))
    coinm.parse_oi(PREMIUM_DOC, PREMIUM_URL, RECV, meta)
    assert meta.oi_context["binance_coinm_marks"]["BTCUSD_200925"][1] is None  # "" -> None
    (rec,) = coinm.parse_oi(OI_DOC, "https://dapi.binance.com/dapi/v1/openInterest?symbol=BTCUSD_200626", RECV,
                            meta).open_interest
    assert rec.oi_usd == pytest.approx(1_500_400.0)
    assert rec.funding_rate is None
    assert rec.oi_coins is None and rec.price is None  # no mark of that symbol in this poll


def test_unknown_metadata_and_stale_mark() -> None:
    meta = Metadata()  # exchangeInfo not loaded: contract size unknown
    coinm.parse_oi(PREMIUM_DOC, PREMIUM_URL, RECV, meta)
    (rec,) = coinm.parse_oi(perp_oi(), PERP_URL, RECV, meta).open_interest
    assert rec.oi_usd is None and rec.oi_coins is None and rec.coin == "BTC"
    meta = loaded_meta()
    coinm.parse_oi(PREMIUM_DOC, PREMIUM_URL, RECV, meta)
    (rec,) = coinm.parse_oi(perp_oi(t_ms=MARK_TIME + 121_000), PERP_URL, RECV,
                            meta).open_interest
    assert rec.oi_usd == pytest.approx(1_500_400.0)  # needs no price
    assert rec.oi_coins is None and rec.price is None


def test_bad_bodies_and_venue_errors() -> None:
    with pytest.raises(FrameError) as err:
        coinm.parse_oi(perp_oi(contracts="-1"), PERP_URL, RECV, loaded_meta())
    assert err.value.reason == "bad_open_interest"
    with pytest.raises(FrameError) as err:
        coinm.parse_oi('{"code":-1121,"msg":"Invalid symbol."}', PERP_URL, RECV, loaded_meta())
    assert err.value.reason == "rest_error"


def test_oi_source_is_false_for_exchange_info() -> None:
    assert coinm.VENUE.oi_source(PREMIUM_URL) and coinm.VENUE.oi_source(PERP_URL)
    for url in coinm.rest_urls({}):
        assert not coinm.VENUE.oi_source(url)


def test_session_routes_the_bodies() -> None:
    session = VenueSession(coinm.VENUE)
    session.process(RawFrame(coinm.ID, coinm.rest_urls({})[0], RECV, exchange_info_body()))
    assert session.process(RawFrame(coinm.ID, PREMIUM_URL, RECV, PREMIUM_DOC)).kind == "info"
    out = session.process(RawFrame(coinm.ID, PERP_URL, RECV, perp_oi()))
    assert out.deadletter is None
    assert out.open_interest[0].oi_usd == pytest.approx(1_500_400.0)


async def test_simulator_serves_the_poll() -> None:
    async with BinanceCoinmSim() as sim:
        meta = loaded_meta()
        records = []
        async with aiohttp.ClientSession() as http:
            for url in coinm.oi_urls(meta, sim.urls()):
                async with http.get(url) as resp:
                    out = coinm.parse_oi(await resp.text(), url, time.time(), meta)
                records.extend(out.open_interest)
    assert [r.symbol for r in records] == ["BTCUSD_PERP", "ETHUSD_PERP", "SOLUSD_PERP"]
    btc = records[0]
    assert btc.oi_usd == pytest.approx(500000 * 100)
    assert btc.oi_coins == pytest.approx(500000 * 100 / 60000.0)
