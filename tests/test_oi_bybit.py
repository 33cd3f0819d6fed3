"""Bybit open interest and funding: ``/v5/market/tickers?category=linear|inverse``.

Fixtures (tests/fixtures/oi/):
- ``bybit_tickers_linear.json``: a REAL capture of ``GET /v5/market/tickers?category=linear``
  (recorded 2026-09-15), byte for byte from skipaoff/ludiki_parcer
  ``tests/exchanges/fixtures/bybit_tickers.json`` (five instruments: a USDC perp, 1000PEPE,
  BTCUSDT, a dated future, DOGE). It carries ``singleOpenInterest`` = half of ``openInterest``.
- ``bybit_tickers_inverse_doc.json``: the Bybit DOC example of the inverse tickers answer
  (bybit-exchange/docs ``docs/v5/market/tickers.mdx``), an older body without
  ``singleOpenInterest`` or ``fundingIntervalHour``: no real inverse capture was found.

Bybit's ``openInterest`` is the sum of both sides (v5 open-interest doc: "The value is the sum of
both sides"; ``singleOpenInterest``: "The value is the single side"), so one side is
``singleOpenInterest`` or ``openInterest / 2``.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.bybit import BybitSim, oi_body, ticker
from liqstress.streams.venues import bybit
from liqstress.streams.venues.base import FrameError, Instrument, Metadata

FIXTURES = Path(__file__).parent / "fixtures" / "oi"
LINEAR = (FIXTURES / "bybit_tickers_linear.json").read_text()
INVERSE_DOC = (FIXTURES / "bybit_tickers_inverse_doc.json").read_text()
LINEAR_URL = "https://api.bybit.com/v5/market/tickers?category=linear"
INVERSE_URL = "https://api.bybit.com/v5/market/tickers?category=inverse"
RECV = 1_789_485_206.5
RECV_DOC = 1_672_376_497.0


def meta() -> Metadata:
    m = Metadata()
    for sym, base, quote, market in (
            ("BTCUSDT", "BTC", "USDT", "linear"), ("1000PEPEUSDT", "1000PEPE", "USDT", "linear"),
            ("BTCUSDT-02OCT26", "BTC", "USDT", "linear"), ("DOGEUSDT", "DOGE", "USDT", "linear"),
            ("BTCUSD", "BTC", "USD", "inverse")):
        m.instruments[sym] = Instrument(symbol=sym, base=base, quote=quote, market=market)
    return m


def by_symbol(body: str, source: str = LINEAR_URL, recv: float = RECV,
              m: Metadata | None = None) -> dict:
    parsed = bybit.parse_oi(body, source, recv, m or meta())
    return {r.symbol: r for r in parsed.open_interest}


def test_linear_one_side_in_base_valued_at_mark() -> None:
    btc = by_symbol(LINEAR)["BTCUSDT"]
    # singleOpenInterest 27853.603 BTC = openInterest 55707.206 / 2
    assert btc.oi_coins == pytest.approx(27853.603)
    assert btc.price == pytest.approx(76030.70)
    assert btc.oi_usd == pytest.approx(27853.603 * 76030.70)
    assert btc.oi_usd == pytest.approx(2117728933.61, abs=0.01)  # the venue's own single value
    assert (btc.market, btc.coin) == ("linear", "BTC")
    assert btc.funding_rate == pytest.approx(0.00002514)
    assert btc.funding_interval_hours == 8.0
    assert btc.funding_8h == pytest.approx(0.00002514)
    assert btc.ts == pytest.approx(1_789_485_205.941)  # the body's "time"
    assert btc.recv_ts == RECV


def test_thousand_multiplier_is_divided_out() -> None:
    pepe = by_symbol(LINEAR)["1000PEPEUSDT"]
    assert pepe.coin == "PEPE"
    assert pepe.oi_coins == pytest.approx(8410865700 * 1000)
    assert pepe.price == pytest.approx(0.0033840 / 1000)
    assert pepe.oi_usd == pytest.approx(8410865700 * 0.0033840)  # 28,462,369.53


def test_dated_future_has_no_funding() -> None:
    fut = by_symbol(LINEAR)["BTCUSDT-02OCT26"]
    assert fut.funding_rate is None and fut.funding_interval_hours is None
    assert fut.oi_usd == pytest.approx(26.411 * 76294.3)


def test_negative_funding_and_symbols_outside_the_metadata_are_left_out() -> None:
    out = bybit.parse_oi(LINEAR, LINEAR_URL, RECV, meta())
    recs = {r.symbol: r for r in out.open_interest}
    assert recs["DOGEUSDT"].funding_rate == pytest.approx(-0.00001798)
    # 1000BONKPERP is not a Trading instrument of the metadata: not ours, not "skipped".
    assert sorted(recs) == ["1000PEPEUSDT", "BTCUSDT", "BTCUSDT-02OCT26", "DOGEUSDT"]
    assert (out.kind, out.skipped, out.unpriced) == ("data", 0, 0)


def test_inverse_usd_contracts_without_single_field_halve_the_both_sides_sum() -> None:
    btc = by_symbol(INVERSE_DOC, INVERSE_URL, RECV_DOC)["BTCUSD"]
    one_side = 373504107 / 2  # USD
    assert btc.market == "inverse"
    assert btc.oi_usd == pytest.approx(one_side)
    assert btc.oi_coins == pytest.approx(one_side / 16596.00)
    # openInterestValue (22505.67) is BOTH sides in BTC: our coins are half of it.
    assert btc.oi_coins == pytest.approx(22505.67 / 2, rel=1e-5)
    assert btc.funding_rate == pytest.approx(-0.001034)
    assert btc.funding_interval_hours == 8.0  # no fundingIntervalHour: the 8 h default


def test_funding_interval_from_the_body() -> None:
    body = oi_body("linear", ticker("BTCUSDT", "10", "50000", "0.0002", "4"),
                   time_ms=1_789_485_205_000)
    btc = by_symbol(body)["BTCUSDT"]
    assert (btc.funding_rate, btc.funding_interval_hours) == (0.0002, 4.0)
    assert btc.funding_8h == pytest.approx(0.0004)


def test_bad_instrument_is_skipped_and_counted() -> None:
    msg = orjson.loads(LINEAR)
    msg["result"]["list"][4]["markPrice"] = "n/a"  # DOGEUSDT
    out = bybit.parse_oi(orjson.dumps(msg).decode(), LINEAR_URL, RECV, meta())
    assert out.skipped == 1
    assert "DOGEUSDT" not in {r.symbol for r in out.open_interest}
    assert len(out.open_interest) == 3


def test_all_bad_body_is_bad_open_interest() -> None:
    msg = orjson.loads(LINEAR)
    for row in msg["result"]["list"]:
        row["singleOpenInterest"] = True  # a boolean is never a number
    with pytest.raises(FrameError) as err:
        bybit.parse_oi(orjson.dumps(msg).decode(), LINEAR_URL, RECV, meta())
    assert err.value.reason == "bad_open_interest"


def test_venue_error_is_rest_error() -> None:
    body = '{"retCode":10001,"retMsg":"params error","result":{},"retExtInfo":{},"time":1}'
    with pytest.raises(FrameError) as err:
        bybit.parse_oi(body, LINEAR_URL, RECV, meta())
    assert err.value.reason == "rest_error"


def test_oi_source_tells_polls_from_metadata() -> None:
    urls = bybit.VENUE.oi_urls(Metadata(), {})
    assert urls == [LINEAR_URL, INVERSE_URL]
    assert all(bybit.VENUE.oi_source(u) for u in urls)
    assert not any(bybit.VENUE.oi_source(u) for u in bybit.VENUE.rest_urls({}))
    assert bybit.VENUE.oi_rule


def test_session_routes_the_poll_to_parse_oi() -> None:
    session = VenueSession(bybit.VENUE)
    session.meta = meta()
    out = session.process(RawFrame("bybit", LINEAR_URL, RECV, LINEAR))
    assert out.deadletter is None
    assert out.kind == "data"
    assert {r.symbol for r in out.open_interest} == {
        "1000PEPEUSDT", "BTCUSDT", "BTCUSDT-02OCT26", "DOGEUSDT"}


async def test_simulator_serves_the_poll() -> None:
    sim = BybitSim()
    m = meta()
    m.instruments["ETHUSDT"] = Instrument("ETHUSDT", "ETH", "USDT", "linear")
    m.instruments["BTCUSDH26"] = Instrument("BTCUSDH26", "BTC", "USD", "inverse")
    got = {}
    async with sim, aiohttp.ClientSession() as http:
        for url in bybit.VENUE.oi_urls(m, sim.urls()):
            async with http.get(url) as resp:
                body = await resp.text()
            assert bybit.VENUE.oi_source(url)
            got.update(by_symbol(body, url, time.time(), m))
    assert got["ETHUSDT"].funding_interval_hours == 4.0
    assert got["BTCUSD"].oi_usd == pytest.approx(300_000_000)
    assert got["BTCUSD"].oi_coins == pytest.approx(5000)
    assert got["BTCUSDH26"].funding_rate is None
    assert got["BTCUSDT"].oi_usd == pytest.approx(25000 * 60000)
