"""BitMEX open interest and funding: ``GET /api/v1/instrument?filter={"state":"Open"}&..``.

Fixture ``tests/fixtures/oi/bitmex_instrument_xbtusd.json`` is a real capture of one XBTUSD
instrument row, byte for byte: nautechsystems/nautilus_trader
``crates/adapters/bitmex/test_data/http_get_instrument_xbtusd.json`` (2024-11-24). BitMEX serves
a JSON array of such rows; the tests wrap the captured row in ``[...]`` (the row's own bytes are
untouched). Its own numbers check the units: openInterest 411647400 contracts of 1 USD /
markPrice 97849.76 = 4206.93 XBT, and openValue 420691293378 satoshis = 4206.91 XBT. Linear,
quanto and future rows come from the simulator's ``oi_row`` (the unit fields of ``INSTRUMENTS``).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.bitmex import OI_PATH, BitmexSim, instruments_body, oi_body, oi_row
from liqstress.streams.venues import bitmex
from liqstress.streams.venues.base import FrameError, Metadata

ROW = (Path(__file__).parent / "fixtures" / "oi" / "bitmex_instrument_xbtusd.json").read_text()
BODY = f"[{ROW}]"
URL = bitmex.oi_urls(Metadata(), bitmex.VENUE.default_urls)[0]
META_URL = bitmex.rest_urls(bitmex.VENUE.default_urls)[0]
RECV = 1_732_491_200.0
SIM_RECV = 1_789_659_230.0


def loaded(body: str | None = None) -> Metadata:
    meta = Metadata()
    bitmex.load_rest(meta, META_URL, instruments_body() if body is None else body)
    return meta


def parse(body: str, meta: Metadata | None = None, recv_ts: float = SIM_RECV):  # noqa: ANN201
    return bitmex.parse_oi(body, URL, recv_ts, loaded() if meta is None else meta)


def test_oi_url_and_source_never_the_metadata_url() -> None:
    assert URL.startswith("https://www.bitmex.com/api/v1/instrument?filter=")
    assert "count=500" in URL and "openInterest" in URL
    assert bitmex.VENUE.oi_source(URL)
    assert not bitmex.VENUE.oi_source(META_URL)  # /api/v1/instrument/active is metadata
    assert not bitmex.VENUE.oi_source(bitmex.WS_URL)
    assert bitmex.VENUE.oi_rule


def test_captured_xbtusd_inverse_contracts_are_usd() -> None:
    out = parse(BODY, loaded(BODY), RECV)
    assert out.kind == "data" and out.skipped == 0 and out.unpriced == 0
    (rec,) = out.open_interest
    assert (rec.exchange, rec.symbol, rec.coin, rec.market) == ("bitmex", "XBTUSD", "BTC", "inverse")
    assert rec.oi_usd == 411_647_400.0  # contracts of 1 USD each
    assert rec.oi_coins == pytest.approx(4_206.9332, abs=1e-3)
    assert rec.oi_coins == pytest.approx(420_691_293_378e-8, rel=1e-5)  # openValue agrees
    assert rec.price == 97_849.76
    # fundingInterval 2000-01-01T08:00:00.000Z = 8 h; fundingRate 0.00011 per 8 h
    assert rec.funding_rate == 0.00011 and rec.funding_interval_hours == 8.0
    assert rec.ts == 1_732_491_199.034


def test_linear_quanto_and_future_rows() -> None:
    body = oi_body(oi_row("XBTUSD", 600_000_000, 60_000.0),
                   oi_row("XBTUSDT", 2_000_000_000, 60_010.0, funding_rate=-0.0002),
                   oi_row("ETHUSD", 10_000, 3_000.0, open_value=3_000_000_000),
                   oi_row("XBTZ26", 50_000_000, 61_000.0))
    xbt, linear, quanto, future = parse(body).open_interest
    assert xbt.oi_coins == pytest.approx(10_000.0)
    # linear: 2e9 contracts x 1e-6 XBT = 2000 XBT, x mark 60010 = 120.02M USD
    assert linear.market == "linear" and linear.coin == "BTC"
    assert linear.oi_coins == pytest.approx(2_000.0) and linear.oi_usd == pytest.approx(120_020_000)
    assert linear.funding_rate == -0.0002 and linear.funding_interval_hours == 8.0
    # quanto: 3e9 satoshis = 30 XBT x XBTUSD mark 60000 = 1.8M USD = 600 ETH at 3000
    assert quanto.coin == "ETH" and quanto.oi_usd == pytest.approx(1_800_000.0)
    assert quanto.oi_coins == pytest.approx(600.0) and quanto.price == 3_000.0
    # dated future: no funding
    assert future.oi_usd == 50_000_000.0 and future.funding_rate is None
    assert future.funding_interval_hours is None and future.funding_8h is None


def test_funding_interval_other_than_8h() -> None:
    row = {**oi_row("XBTUSD", 100, 60_000.0, funding_rate=0.0001),
           "fundingInterval": "2000-01-01T04:00:00.000Z"}
    (rec,) = parse(oi_body(row)).open_interest
    assert rec.funding_interval_hours == 4.0 and rec.funding_8h == pytest.approx(0.0002)


def test_quanto_without_xbtusd_in_the_body_is_unvalued() -> None:
    out = parse(oi_body(oi_row("ETHUSD", 10_000, 3_000.0, open_value=3_000_000_000)))
    (rec,) = out.open_interest
    assert rec.oi_usd is None and rec.oi_coins is None and out.unpriced == 1


def test_unknown_metadata_and_unpinned_units_are_unvalued() -> None:
    body = oi_body(oi_row("XBTUSD", 600_000_000, 60_000.0),
                   oi_row("XBTEUR", 1_000_000, 55_000.0))
    no_meta = parse(body, Metadata())
    assert [r.oi_usd for r in no_meta.open_interest] == [None, None]
    assert no_meta.unpriced == 2
    xbtusd, xbteur = parse(body).open_interest
    assert xbtusd.oi_usd == 600_000_000.0
    assert xbteur.oi_usd is None and xbteur.price is None  # EUR contracts: not pinned


def test_spot_and_spreads_are_not_ours() -> None:
    spread = oi_row("XBTUSD-XBTU26", 5, 10.0)
    spot = {**oi_row("XBTUSD", 0, 60_000.0), "symbol": "XBT_USDT", "typ": "IFXXXP",
            "openInterest": None}
    out = parse(oi_body(spread, spot))
    assert out.kind == "info" and out.open_interest == () and out.skipped == 0


def test_bad_row_is_skipped_and_counted() -> None:
    good = oi_row("XBTUSD", 600_000_000, 60_000.0)
    body = oi_body(good, {**oi_row("XBTUSDT", 1, 60_000.0), "openInterest": "1"},
                   {**oi_row("ETHUSDT", 1, 3_000.0), "timestamp": "yesterday"})
    out = parse(body)
    assert [r.symbol for r in out.open_interest] == ["XBTUSD"] and out.skipped == 2


def test_all_bad_body_is_bad_open_interest() -> None:
    with pytest.raises(FrameError) as exc:
        parse(oi_body({**oi_row("XBTUSD", 1, 60_000.0), "openInterest": -1}))
    assert exc.value.reason == "bad_open_interest"


def test_venue_error_body_is_rest_error() -> None:
    body = '{"error":{"message":"Rate limit exceeded, retry in 1 seconds.","name":"RateLimitError"}}'
    with pytest.raises(FrameError) as exc:
        parse(body)
    assert exc.value.reason == "rest_error" and "Rate limit" in exc.value.detail


def test_session_routes_the_poll_to_parse_oi() -> None:
    session = VenueSession(bitmex.VENUE)
    meta_out = session.process(RawFrame("bitmex", META_URL, RECV - 10, BODY))
    assert meta_out.deadletter is None and meta_out.open_interest == ()
    outcome = session.process(RawFrame("bitmex", URL, RECV, BODY))
    assert outcome.deadletter is None
    (rec,) = outcome.open_interest
    assert rec.oi_usd == 411_647_400.0


async def test_simulator_serves_the_oi_url() -> None:
    async with BitmexSim() as sim:
        (url,) = bitmex.oi_urls(Metadata(), sim.urls())
        async with aiohttp.ClientSession() as http:
            async with http.get(bitmex.rest_urls(sim.urls())[0]) as resp:
                meta = loaded(await resp.text())
            async with http.get(url) as resp:
                assert resp.status == 200
                out = bitmex.parse_oi(await resp.text(), url, SIM_RECV, meta)
        xbt, linear, quanto = out.open_interest
        assert xbt.oi_coins == pytest.approx(10_000.0)
        assert linear.oi_coins == pytest.approx(2_000.0)
        assert quanto.oi_coins == pytest.approx(600.0)
        assert sim.rest_hits[-1].startswith(f"{OI_PATH}?filter=")
