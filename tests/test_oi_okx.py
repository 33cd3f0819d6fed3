"""OKX open interest and funding: ``/api/v5/public/funding-rate?instId=ANY`` (all perpetuals'
funding, kept in ``meta.oi_context``), then ``/api/v5/public/open-interest?instType=SWAP`` and
``FUTURES``.

Fixtures (tests/fixtures/oi/):
- ``okx_open_interest_swap_2022.json`` and ``okx_open_interest_futures_2022.json``: REAL
  captures (2022-06-04) of ``open-interest?instType=SWAP`` / ``FUTURES``, byte for byte from
  crypto-crawler/crypto-crawler-rs ``crypto-msg-parser/tests/okx.rs`` (module
  ``open_interest``, tests ``inverse_swap`` and ``inverse_future``). Bodies of that time have no
  ``oiUsd``.
- ``okx_open_interest_doc.json``: the OKX DOC example of the same endpoint, with ``oiUsd``
  (www.okx.com/docs-v5/en/#public-data-rest-api-get-open-interest; copy in
  qiuham/crypto-api-docs ``docs/okx/public/data/rest-api-get-open-interest.md``).
- ``okx_funding_rate_doc.json``: the OKX DOC example of ``/api/v5/public/funding-rate``
  (same copy, ``rest-api-get-funding-rate.md``, which documents ``instId=ANY``: "to return the
  funding rate info of all perpetual and X-Perps futures contracts"). No real ANY capture with
  its provenance was found.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.okx import OkxSim, funding_body, instruments_body, oi_body
from liqstress.streams.venues import okx
from liqstress.streams.venues.base import FrameError, Instrument, Metadata

FIXTURES = Path(__file__).parent / "fixtures" / "oi"
SWAP_2022 = (FIXTURES / "okx_open_interest_swap_2022.json").read_text()
FUTURES_2022 = (FIXTURES / "okx_open_interest_futures_2022.json").read_text()
OI_DOC = (FIXTURES / "okx_open_interest_doc.json").read_text()
FUNDING_DOC = (FIXTURES / "okx_funding_rate_doc.json").read_text()
FUNDING_URL = "https://www.okx.com/api/v5/public/funding-rate?instId=ANY"
SWAP_URL = "https://www.okx.com/api/v5/public/open-interest?instType=SWAP"
FUTURES_URL = "https://www.okx.com/api/v5/public/open-interest?instType=FUTURES"
RECV_2022 = 1_654_348_684.0
RECV_DOC = 1_743_588_687.0


def meta() -> Metadata:
    m = Metadata()
    for inst_id, base, quote, market, cv in (
            ("BTC-USD-SWAP", "BTC", "USD", "inverse", 100.0),
            ("ETH-USD-SWAP", "ETH", "USD", "inverse", 10.0),
            ("BTC-USDT-SWAP", "BTC", "USDT", "linear", 0.01),
            ("BTC-USD-220520", "BTC", "USD", "inverse", 100.0)):
        m.instruments[inst_id] = Instrument(inst_id, base, quote, market, cv)
    return m


def records(body: str, source: str = SWAP_URL, recv: float = RECV_2022,
            m: Metadata | None = None) -> dict:
    out = okx.parse_oi(body, source, recv, meta() if m is None else m)
    return {r.symbol: r for r in out.open_interest}


def test_inverse_without_oi_usd_is_contracts_times_contract_value() -> None:
    recs = records(SWAP_2022)
    btc, eth = recs["BTC-USD-SWAP"], recs["ETH-USD-SWAP"]
    assert btc.market == "inverse" and btc.coin == "BTC"
    assert btc.oi_coins == pytest.approx(13840.048827662696883)  # oiCcy
    assert btc.oi_usd == pytest.approx(4092973 * 100)  # 100-USD contracts
    assert eth.oi_usd == pytest.approx(21795246 * 10)  # 10-USD contracts
    # the implied price is a plausible June-2022 BTC price: the units agree
    assert btc.oi_usd / btc.oi_coins == pytest.approx(29573.5, rel=1e-4)
    assert btc.price is None  # the body has no mark
    assert btc.ts == pytest.approx(1_654_348_683.853)
    assert btc.funding_rate is None  # no funding body in this poll


def test_unknown_metadata_keeps_venue_coins_but_no_usd() -> None:
    out = okx.parse_oi(SWAP_2022, SWAP_URL, RECV_2022, Metadata())
    recs = {r.symbol: r for r in out.open_interest}
    assert recs["BTC-USD-SWAP"].oi_usd is None
    assert recs["BTC-USD-SWAP"].oi_coins == pytest.approx(13840.048827662696883)
    assert recs["BTC-USD-SWAP"].market == "inverse"
    assert out.unpriced == 2


def test_oi_usd_and_funding_from_the_first_body_of_the_poll() -> None:
    m = meta()
    assert okx.parse_oi(FUNDING_DOC, FUNDING_URL, RECV_DOC, m).kind == "info"
    btc = records(OI_DOC, SWAP_URL, RECV_DOC + 1, m)["BTC-USDT-SWAP"]
    assert (btc.oi_coins, btc.oi_usd) == (555.55, 50000.0)  # oiCcy, oiUsd as the venue says
    assert btc.market == "linear"
    assert btc.funding_rate == pytest.approx(0.0000182221218054)
    # interval = nextFundingTime - fundingTime = 1743638400000 - 1743609600000 ms = 8 h
    assert btc.funding_interval_hours == 8.0


def test_funding_interval_follows_the_venue_and_stale_funding_is_dropped() -> None:
    m = meta()
    now = time.time()
    okx.parse_oi(funding_body(("BTC-USDT-SWAP", "0.0003", 4)), FUNDING_URL, now, m)
    body = oi_body("SWAP", ("BTC-USDT-SWAP", "100", "1", "60000"))
    btc = records(body, SWAP_URL, now + 2, m)["BTC-USDT-SWAP"]
    assert (btc.funding_rate, btc.funding_interval_hours) == (0.0003, 4.0)
    assert btc.funding_8h == pytest.approx(0.0006)
    later = records(body, SWAP_URL, now + okx.FUNDING_MAX_AGE + 1, m)["BTC-USDT-SWAP"]
    assert later.funding_rate is None and later.funding_interval_hours is None


def test_dated_futures_have_no_funding() -> None:
    m = meta()
    okx.parse_oi(FUNDING_DOC, FUNDING_URL, RECV_2022 - 1, m)
    fut = records(FUTURES_2022, FUTURES_URL, RECV_2022, m)["BTC-USD-220520"]
    assert (fut.oi_coins, fut.oi_usd) == (0.0, 0.0)
    assert fut.funding_rate is None and fut.funding_interval_hours is None


def test_bad_instrument_is_skipped_and_counted() -> None:
    msg = orjson.loads(SWAP_2022)
    msg["data"][1]["oiCcy"] = "lots"
    out = okx.parse_oi(orjson.dumps(msg).decode(), SWAP_URL, RECV_2022, meta())
    assert out.skipped == 1
    assert [r.symbol for r in out.open_interest] == ["BTC-USD-SWAP"]


def test_all_bad_body_is_bad_open_interest() -> None:
    msg = orjson.loads(SWAP_2022)
    for row in msg["data"]:
        row["oiCcy"] = 1.5  # OKX sends strings; a JSON number is refused
    with pytest.raises(FrameError) as err:
        okx.parse_oi(orjson.dumps(msg).decode(), SWAP_URL, RECV_2022, meta())
    assert err.value.reason == "bad_open_interest"


@pytest.mark.parametrize("url", [FUNDING_URL, SWAP_URL])
def test_venue_error_is_rest_error(url: str) -> None:
    body = '{"code":"51000","data":[],"msg":"Parameter instId error"}'
    with pytest.raises(FrameError) as err:
        okx.parse_oi(body, url, RECV_2022, meta())
    assert err.value.reason == "rest_error"


def test_oi_source_tells_polls_from_metadata() -> None:
    urls = okx.VENUE.oi_urls(Metadata(), {})
    assert urls == [FUNDING_URL, SWAP_URL, FUTURES_URL]  # funding first: the others read it
    assert all(okx.VENUE.oi_source(u) for u in urls)
    assert not any(okx.VENUE.oi_source(u) for u in okx.VENUE.rest_urls({}))
    assert okx.VENUE.oi_rule


def test_session_routes_the_poll_to_parse_oi() -> None:
    session = VenueSession(okx.VENUE)
    for t in okx.INST_TYPES:  # the metadata, through load_rest as live
        url = f"https://www.okx.com/api/v5/public/instruments?instType={t}"
        assert session.process(RawFrame("okx", url, RECV_2022, instruments_body(t))).deadletter \
            is None
    assert session.meta.get("BTC-USD-SWAP").contract_value == 100.0
    out = session.process(RawFrame("okx", FUNDING_URL, RECV_2022, FUNDING_DOC))
    assert out.deadletter is None and out.kind == "info" and not out.open_interest
    out = session.process(RawFrame("okx", SWAP_URL, RECV_2022 + 1, SWAP_2022))
    assert out.deadletter is None
    btc = {r.symbol: r for r in out.open_interest}["BTC-USD-SWAP"]
    assert btc.oi_usd == pytest.approx(409_297_300)


async def test_simulator_serves_the_poll() -> None:
    sim = OkxSim()
    m = meta()
    m.instruments["ETH-USDT-SWAP"] = Instrument("ETH-USDT-SWAP", "ETH", "USDT", "linear", 0.1)
    m.instruments["BTC-USD-261225"] = Instrument("BTC-USD-261225", "BTC", "USD", "inverse", 100)
    got = {}
    async with sim, aiohttp.ClientSession() as http:
        for url in okx.VENUE.oi_urls(m, sim.urls()):
            async with http.get(url) as resp:
                body = await resp.text()
            assert resp.status == 200 and okx.VENUE.oi_source(url)
            got.update({r.symbol: r for r in okx.parse_oi(body, url, time.time(), m)
                        .open_interest})
    assert got["ETH-USDT-SWAP"].funding_interval_hours == 4.0
    assert got["BTC-USDT-SWAP"].funding_rate == pytest.approx(0.0001)
    assert got["BTC-USD-SWAP"].oi_usd == pytest.approx(4_000_000 * 100)
    assert got["BTC-USD-261225"].funding_rate is None
