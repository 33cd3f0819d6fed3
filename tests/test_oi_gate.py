"""Gate USDT futures open interest and funding: ``GET /api/v4/futures/usdt/tickers``.

Fixture ``tests/fixtures/oi/gate_tickers_btc_usdt.json`` is a real capture: the ``result``
array, byte for byte, of the ``futures.tickers`` update in ``mod ticker``/``linear_swap`` of
crypto-crawler/crypto-msg-parser ``crypto-msg-parser/tests/gate.rs`` (BTC_USDT, 2022-06-02;
same test in crypto-crawler/crypto-crawler-rs). The websocket ticker item has the fields of a
REST ``/futures/usdt/tickers`` row, and that list is what the REST endpoint serves. The same file
holds the capture's ``contract_stats`` (``open_interest`` 749773515 contracts =
``open_interest_usd`` 2226295750.13 at mark 29692.91), which pins ``total_size`` as contracts of
0.0001 BTC: 749773515 x 0.0001 x 29692.91 = 2.2263e9. Other rows come from the simulator's
``ticker`` helper.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.gate import OI_PATH, GateSim, contracts_body, oi_body, ticker
from liqstress.streams.venues import gate
from liqstress.streams.venues.base import FrameError, Metadata

FIXTURE = (Path(__file__).parent / "fixtures" / "oi" / "gate_tickers_btc_usdt.json").read_text()
URL = gate.oi_urls(Metadata(), gate.VENUE.default_urls)[0]
RECV = 1_654_162_716.0


def loaded(body: str | None = None) -> Metadata:
    meta = Metadata()
    contracts_url = gate.rest_urls(gate.VENUE.default_urls)[0]
    gate.load_rest(meta, contracts_url, contracts_body() if body is None else body)
    return meta


def parse(body: str, meta: Metadata | None = None):  # noqa: ANN201
    return gate.parse_oi(body, URL, RECV, loaded() if meta is None else meta)


def test_one_request_and_oi_source() -> None:
    assert gate.oi_urls(Metadata(), gate.VENUE.default_urls) == [
        "https://api.gateio.ws/api/v4/futures/usdt/tickers"]
    assert gate.VENUE.oi_source(URL)
    assert not any(gate.VENUE.oi_source(u) for u in gate.rest_urls(gate.VENUE.default_urls))
    assert not gate.VENUE.oi_source(gate.WS_URL)
    assert gate.VENUE.oi_rule


def test_captured_btc_usdt_contracts_times_multiplier() -> None:
    out = parse(FIXTURE)
    assert out.kind == "data" and out.skipped == 0 and out.unpriced == 0
    (rec,) = out.open_interest
    assert (rec.exchange, rec.symbol, rec.coin, rec.market) == ("gate", "BTC_USDT", "BTC", "linear")
    # 754413619 contracts x 0.0001 BTC = 75441.3619 BTC; x mark 29908 = 2,256,300,231.67 USD
    assert rec.oi_coins == pytest.approx(75_441.3619)
    assert rec.oi_usd == pytest.approx(2_256_300_231.6652)
    assert rec.price == 29_908.0
    # funding_rate -0.00004 per the contract's funding_interval 28800 s = 8 h
    assert rec.funding_rate == -0.00004 and rec.funding_interval_hours == 8.0
    assert rec.ts == RECV == rec.recv_ts  # the tickers carry no time


def test_funding_interval_from_contract_metadata_and_from_the_row() -> None:
    contracts = orjson.dumps([
        {"name": "BTC_USDT", "type": "direct", "quanto_multiplier": "0.0001",
         "funding_interval": 14400},
        {"name": "DOGE_USDT", "type": "direct", "quanto_multiplier": "10"}]).decode()
    meta = loaded(contracts)
    body = oi_body(ticker("BTC_USDT", 1_000_000, "60000", "0.0002"),
                   ticker("DOGE_USDT", 2_000, "0.2", "0.0003", funding_interval=3600),
                   ticker("ETH_USDT", 10, "3000", "0.0001", quanto_multiplier="0.01"))
    btc, doge, eth = parse(body, meta).open_interest
    assert btc.funding_interval_hours == 4.0 and btc.funding_8h == pytest.approx(0.0004)
    assert btc.oi_coins == pytest.approx(100.0) and btc.oi_usd == pytest.approx(6_000_000.0)
    assert doge.funding_interval_hours == 1.0  # the row's own funding_interval wins
    assert doge.oi_coins == pytest.approx(20_000.0) and doge.oi_usd == pytest.approx(4_000.0)
    # ETH_USDT is not in this metadata: the row's own quanto_multiplier, interval default 8 h
    assert eth.oi_coins == pytest.approx(0.1) and eth.oi_usd == pytest.approx(300.0)
    assert eth.funding_interval_hours == 8.0


def test_unknown_contract_is_unvalued_never_contracts_as_coins() -> None:
    out = parse(oi_body(ticker("NEWCOIN_USDT", 123_456, "1.5")))
    (rec,) = out.open_interest
    assert rec.coin == "NEWCOIN" and rec.oi_coins is None and rec.oi_usd is None
    assert rec.price == 1.5 and rec.funding_rate == 0.0001
    assert out.unpriced == 1


def test_multiplier_prefix_is_divided_out() -> None:
    contracts = orjson.dumps([{"name": "1000PEPE_USDT", "type": "direct",
                               "quanto_multiplier": "10"}]).decode()
    (rec,) = parse(oi_body(ticker("1000PEPE_USDT", 50, "0.012")), loaded(contracts)).open_interest
    # 50 contracts x 10 = 500 units of 1000 PEPE = 500 000 PEPE at 0.000012 USD each
    assert rec.coin == "PEPE" and rec.oi_coins == pytest.approx(500_000.0)
    assert rec.oi_usd == pytest.approx(6.0) and rec.price == pytest.approx(0.000012)


def test_empty_funding_is_none() -> None:
    (rec,) = parse(oi_body(ticker("BTC_USDT", 10, "60000", ""))).open_interest
    assert rec.funding_rate is None and rec.funding_interval_hours is None


def test_bad_row_is_skipped_and_counted() -> None:
    body = oi_body(ticker("BTC_USDT", 10, "60000"), ticker("ETH_USDT", 10, "nan"),
                   {**ticker("SOL_USDT", 10, "150"), "total_size": True})
    out = parse(body)
    assert [r.symbol for r in out.open_interest] == ["BTC_USDT"] and out.skipped == 2


def test_all_bad_body_is_bad_open_interest() -> None:
    with pytest.raises(FrameError) as exc:
        parse(oi_body({**ticker("BTC_USDT", 10, "60000"), "total_size": "-5"}))
    assert exc.value.reason == "bad_open_interest"


def test_venue_error_body_is_rest_error() -> None:
    body = '{"label":"INVALID_PARAM_VALUE","message":"Invalid settle"}'
    with pytest.raises(FrameError) as exc:
        parse(body)
    assert exc.value.reason == "rest_error" and "INVALID_PARAM_VALUE" in exc.value.detail
    with pytest.raises(FrameError) as exc:
        parse('{"contract":"BTC_USDT"}')
    assert exc.value.reason == "unexpected_shape"


def test_session_routes_the_poll_to_parse_oi() -> None:
    session = VenueSession(gate.VENUE)
    contracts_url = gate.rest_urls(gate.VENUE.default_urls)[0]
    meta_out = session.process(RawFrame("gate", contracts_url, RECV - 1, contracts_body()))
    assert meta_out.deadletter is None and meta_out.open_interest == ()
    outcome = session.process(RawFrame("gate", URL, RECV, FIXTURE))
    assert outcome.deadletter is None
    (rec,) = outcome.open_interest
    assert rec.oi_coins == pytest.approx(75_441.3619)


async def test_simulator_serves_the_oi_url() -> None:
    async with GateSim() as sim:
        urls = gate.oi_urls(Metadata(), sim.urls())
        assert urls == [f"{sim.http_base}{OI_PATH}"]
        async with aiohttp.ClientSession() as http:
            async with http.get(gate.rest_urls(sim.urls())[0]) as resp:
                meta = loaded(await resp.text())
            async with http.get(urls[0]) as resp:
                assert resp.status == 200
                out = gate.parse_oi(await resp.text(), urls[0], RECV, meta)
        btc, eth = out.open_interest
        assert btc.oi_coins == pytest.approx(50_000.0) and btc.oi_usd == pytest.approx(3e9)
        assert eth.oi_coins == pytest.approx(30_000.0) and eth.funding_rate == -0.00005
