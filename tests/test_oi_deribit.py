"""Deribit open interest and funding: ``public/get_book_summary_by_currency?kind=future``.

Fixtures (real captures, byte for byte, the ``raw_msg`` strings of
crypto-crawler/crypto-msg-parser ``crypto-msg-parser/tests/deribit.rs``, ``mod open_interest``;
the same tests are in crypto-crawler/crypto-crawler-rs):

* ``tests/fixtures/oi/deribit_btc_perpetual.json``: ``inverse_swap`` (BTC-PERPETUAL,
  2022-06-04);
* ``tests/fixtures/oi/deribit_btc_future.json``: ``inverse_future`` (BTC-24JUN22, no funding
  fields at all).

Linear (``_USDC``) rows, non-USD quotes and bad rows are built with the simulator's ``summary``
helper (the field set of the captured row).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.deribit import OI_PATH, DeribitSim, oi_body, summary
from liqstress.streams.venues import deribit
from liqstress.streams.venues.base import FrameError, Metadata

FIXTURES = Path(__file__).parent / "fixtures" / "oi"
PERP = (FIXTURES / "deribit_btc_perpetual.json").read_text()
FUTURE = (FIXTURES / "deribit_btc_future.json").read_text()
URLS = deribit.oi_urls(Metadata(), deribit.VENUE.default_urls)
BTC_URL = URLS[0]
RECV = 1_654_340_304.0
T_MS = 1_789_670_000_000


def parse(body: str, recv_ts: float = RECV):  # noqa: ANN201
    return deribit.parse_oi(body, BTC_URL, recv_ts, Metadata())


def test_oi_urls_one_per_known_currency() -> None:
    assert URLS == [
        "https://www.deribit.com/api/v2/public/get_book_summary_by_currency"
        f"?currency={c}&kind=future" for c in ("BTC", "ETH", "USDC", "USDT")]
    sim_urls = deribit.oi_urls(Metadata(), {"rest": "http://127.0.0.1:9"})
    assert sim_urls[0] == f"http://127.0.0.1:9{OI_PATH}?currency=BTC&kind=future"


def test_oi_source_true_for_oi_urls_false_for_metadata_urls() -> None:
    assert all(deribit.oi_source(u) for u in URLS)
    assert deribit.VENUE.oi_source(BTC_URL)
    assert not any(deribit.oi_source(u) for u in deribit.rest_urls(deribit.VENUE.default_urls))
    assert not deribit.oi_source("wss://www.deribit.com/ws/api/v2")
    assert deribit.VENUE.oi_rule


def test_inverse_perpetual_open_interest_is_usd() -> None:
    out = parse(PERP)
    assert out.kind == "data" and out.skipped == 0 and out.unpriced == 0
    (rec,) = out.open_interest
    assert (rec.exchange, rec.symbol, rec.coin, rec.market) == (
        "deribit", "BTC-PERPETUAL", "BTC", "inverse")
    # open_interest 560105870 is USD (not 10-USD contracts): coins = USD / mark 29700.53
    assert rec.oi_usd == 560_105_870.0
    assert rec.oi_coins == pytest.approx(560_105_870 / 29_700.53)
    assert rec.oi_coins == pytest.approx(18_858.45, abs=0.01)
    assert rec.price == 29_700.53
    # funding_8h (0.00000214), not current_funding (0.0): a fraction per 8 h
    assert rec.funding_rate == 0.00000214 and rec.funding_interval_hours == 8.0
    assert rec.funding_8h == pytest.approx(0.00000214)
    assert rec.ts == 1_654_340_303.741 and rec.recv_ts == RECV


def test_dated_future_has_no_funding() -> None:
    (rec,) = parse(FUTURE).open_interest
    assert rec.symbol == "BTC-24JUN22" and rec.market == "inverse"
    assert rec.oi_usd == 272_308_070.0
    assert rec.oi_coins == pytest.approx(272_308_070 / 29_727.97)
    assert rec.funding_rate is None and rec.funding_interval_hours is None
    assert rec.funding_8h is None


def test_linear_open_interest_is_base_coin() -> None:
    body = oi_body(summary("SOL_USDC-PERPETUAL", 250_000, 150.0, T_MS, funding_8h=0.0002),
                   summary("BTC_USDC-27DEC30", 12.5, 61_000.0, T_MS))
    sol, btc = parse(body, T_MS / 1000 + 1).open_interest
    assert (sol.coin, sol.market) == ("SOL", "linear")
    assert sol.oi_coins == 250_000.0 and sol.oi_usd == 250_000 * 150.0 == 37_500_000.0
    assert sol.price == 150.0
    assert sol.funding_rate == 0.0002 and sol.funding_interval_hours == 8.0
    assert btc.oi_coins == 12.5 and btc.oi_usd == 762_500.0
    assert btc.funding_rate is None  # dated linear future


def test_non_usd_quote_and_missing_mark_are_unpriced() -> None:
    eurr = summary("BTC_EURR-PERPETUAL", 3.0, 55_000.0, T_MS, funding_8h=0.0001)
    no_mark = {**summary("ETH-PERPETUAL", 1_000_000, 3_000.0, T_MS), "mark_price": None}
    out = parse(oi_body(eurr, no_mark), T_MS / 1000 + 1)
    a, b = out.open_interest
    assert a.oi_coins == 3.0 and a.oi_usd is None and a.price is None  # EUR is no USD
    assert b.oi_usd == 1_000_000.0 and b.oi_coins is None and b.price is None
    assert out.unpriced == 1


def test_bad_row_is_skipped_and_counted() -> None:
    good = summary("BTC-PERPETUAL", 600_000_000, 60_000.0, T_MS, funding_8h=0.0001)
    bad = {**good, "instrument_name": "ETH-PERPETUAL", "open_interest": "12"}  # a string
    boolean = {**good, "instrument_name": "SOL_USDC-PERPETUAL", "open_interest": True}
    out = parse(oi_body(good, bad, boolean), T_MS / 1000 + 1)
    assert [r.symbol for r in out.open_interest] == ["BTC-PERPETUAL"]
    assert out.skipped == 2


def test_all_bad_body_is_bad_open_interest() -> None:
    bad = {**summary("BTC-PERPETUAL", 1.0, 60_000.0, T_MS), "open_interest": -5}
    with pytest.raises(FrameError) as exc:
        parse(oi_body(bad), T_MS / 1000 + 1)
    assert exc.value.reason == "bad_open_interest"


def test_options_are_not_ours_and_empty_is_info() -> None:
    option = {**summary("BTC-24JUN22-30000-C", 1124.7, 0.053, T_MS)}
    out = parse(oi_body(option), T_MS / 1000 + 1)
    assert out.kind == "info" and out.open_interest == () and out.skipped == 0


def test_venue_error_body_is_rest_error() -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "error": {"message": "Invalid params",
                                                     "code": -32602}, "testnet": False}).decode()
    with pytest.raises(FrameError) as exc:
        parse(body)
    assert exc.value.reason == "rest_error" and "-32602" in exc.value.detail
    with pytest.raises(FrameError) as exc:
        parse('{"jsonrpc":"2.0","result":{}}')
    assert exc.value.reason == "unexpected_shape"


def test_session_routes_the_poll_to_parse_oi() -> None:
    outcome = VenueSession(deribit.VENUE).process(RawFrame("deribit", BTC_URL, RECV, PERP))
    assert outcome.deadletter is None
    (rec,) = outcome.open_interest
    assert rec.symbol == "BTC-PERPETUAL" and rec.oi_usd == 560_105_870.0


async def test_simulator_serves_every_oi_url() -> None:
    async with DeribitSim() as sim:
        urls = deribit.oi_urls(Metadata(), sim.urls())
        assert len(urls) == 4
        records = []
        async with aiohttp.ClientSession() as http:
            for url in urls:
                async with http.get(url) as resp:
                    assert resp.status == 200
                    out = deribit.parse_oi(await resp.text(), url, T_MS / 1000 + 5, Metadata())
                    records += out.open_interest
        by_symbol = {r.symbol: r for r in records}
        assert set(by_symbol) == {"BTC-PERPETUAL", "ETH-PERPETUAL", "SOL_USDC-PERPETUAL"}
        assert by_symbol["BTC-PERPETUAL"].oi_coins == pytest.approx(10_000.0)
        assert by_symbol["SOL_USDC-PERPETUAL"].oi_usd == pytest.approx(37_500_000.0)
        # tests can move open interest between polls
        sim.oi_bodies[f"{OI_PATH}?currency=BTC&kind=future"] = oi_body(
            summary("BTC-PERPETUAL", 900_000_000, 60_000.0, T_MS, funding_8h=0.0001))
        async with aiohttp.ClientSession() as http, http.get(urls[0]) as resp:
            (rec,) = deribit.parse_oi(await resp.text(), urls[0], T_MS / 1000 + 5,
                                      Metadata()).open_interest
        assert rec.oi_coins == pytest.approx(15_000.0)
