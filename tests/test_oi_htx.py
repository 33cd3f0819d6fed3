"""HTX USDT-M open interest (``swap_open_interest``) and funding (``swap_batch_funding_rate``,
polled first in the same poll and stashed in ``meta.oi_context``).

Fixtures (HTX doc examples; no real capture of these bodies was found), written as the JSON the
doc pages render: ``tests/fixtures/oi/htx_swap_open_interest.json`` from "[General] Get Swap Open
Interest Information" and ``htx_swap_batch_funding_rate.json`` from "[General] Query a Batch of
Funding Rate" (copies in rosssaunders/coincise ``docs/htx/endpoints/private/
get_general_get_swap_open_interest_information.md`` and
``get_general_query_a_batch_of_funding_rate.md``). REST bodies are plain JSON, never gzip.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.htx import OI_PATH, HtxSim, funding_body, oi_body
from liqstress.streams.venues import htx
from liqstress.streams.venues.base import FrameError, Metadata

OI_DIR = Path(__file__).parent / "fixtures" / "oi"
OI_DOC = (OI_DIR / "htx_swap_open_interest.json").read_text()
FUNDING_DOC = (OI_DIR / "htx_swap_batch_funding_rate.json").read_text()
FUNDING_URL, OI_URL = htx.oi_urls(Metadata(), {})
OI_TS = 1_638_754_059.540
RECV = OI_TS + 0.2


def doc_oi() -> list[dict]:
    return orjson.loads(OI_DOC)["data"]


def oi_with(*items: dict, ts: int = 1_638_754_059_540) -> str:
    return orjson.dumps({"status": "ok", "data": list(items), "ts": ts}).decode()


def test_urls_funding_first_then_every_contract() -> None:
    assert FUNDING_URL == "https://api.hbdm.com/linear-swap-api/v1/swap_batch_funding_rate"
    assert OI_URL == "https://api.hbdm.com/linear-swap-api/v1/swap_open_interest?business_type=all"
    assert "contract_code" not in OI_URL


def test_doc_body_value_is_usdt_and_amount_is_coins() -> None:
    out = htx.parse_oi(OI_DOC, OI_URL, RECV, Metadata())
    recs = {r.symbol: r for r in out.open_interest}
    assert list(recs) == ["BTC-USDT", "BTC-USDT-211217", "BTC-USDT-211210", "BTC-USDT-211231"]
    swap = recs["BTC-USDT"]
    assert (swap.coin, swap.market, swap.exchange) == ("BTC", "linear", "htx")
    # value is already USDT and amount coins, both documented as the sum of both sides:
    # halved to one side, as every other venue reports (volume 78696 contracts unused)
    assert swap.oi_usd == pytest.approx(3_823_138.2456 / 2)
    assert swap.oi_coins == pytest.approx(78.696 / 2)
    assert swap.price is None  # the listing has no mark
    assert swap.ts == pytest.approx(OI_TS)
    # No funding body in this poll: no funding.
    assert swap.funding_rate is None
    assert recs["BTC-USDT-211231"].oi_usd == pytest.approx(9_775_067.0568 / 2)


def test_funding_is_stashed_then_used_per_8h_for_swaps_only() -> None:
    meta = Metadata()
    funding = orjson.loads(FUNDING_DOC)
    funding["data"].append({**funding["data"][0], "contract_code": "BTC-USDT", "symbol": "BTC",
                            "funding_rate": "0.000100000000000000"})
    funding["ts"] = 1_638_754_059_000  # the same poll: half a second before the OI body
    stash = htx.parse_oi(orjson.dumps(funding).decode(), FUNDING_URL, RECV, meta)
    assert stash.kind == "info" and stash.open_interest == ()
    recs = {r.symbol: r for r in htx.parse_oi(OI_DOC, OI_URL, RECV, meta).open_interest}
    assert recs["BTC-USDT"].funding_rate == pytest.approx(0.0001)
    assert recs["BTC-USDT"].funding_interval_hours == 8.0
    assert recs["BTC-USDT"].funding_8h == pytest.approx(0.0001)
    assert recs["BTC-USDT-211231"].funding_rate is None  # dated future: no funding


def test_doc_funding_body_and_stale_funding_is_not_used() -> None:
    meta = Metadata()
    htx.parse_oi(FUNDING_DOC, FUNDING_URL, RECV, meta)  # ts 2021-02-23: months before the OI
    ts, rates = meta.oi_context["htx_funding"]
    assert ts == pytest.approx(1_614_045_373.795)
    assert rates == {"ETC-USDT": pytest.approx(-0.0075), "ADA-USDT": pytest.approx(-0.0075)}
    etc = {**doc_oi()[0], "contract_code": "ETC-USDT", "symbol": "ETC", "pair": "ETC-USDT"}
    (rec,) = htx.parse_oi(oi_with(etc), OI_URL, RECV, meta).open_interest
    assert rec.funding_rate is None  # another poll's funding is never used


def test_a_bad_entry_is_skipped_and_an_all_bad_body_is_an_error() -> None:
    good, bad = doc_oi()[0], {**doc_oi()[1], "value": "530662.21"}
    out = htx.parse_oi(oi_with(good, bad), OI_URL, RECV, Metadata())
    assert [r.symbol for r in out.open_interest] == ["BTC-USDT"] and out.skipped == 1
    with pytest.raises(FrameError) as err:
        htx.parse_oi(oi_with(bad, {**good, "amount": -1}), OI_URL, RECV, Metadata())
    assert err.value.reason == "bad_open_interest"


def test_venue_error_body_is_rest_error() -> None:
    body = ('{"status":"error","err_code":1014,"err_msg":"This contract doesnt exist.",'
            '"ts":1638754059540}')
    for url in (OI_URL, FUNDING_URL):
        with pytest.raises(FrameError) as err:
            htx.parse_oi(body, url, RECV, Metadata())
        assert err.value.reason == "rest_error" and "1014" in err.value.detail


def test_oi_source() -> None:
    assert htx.VENUE.oi_source(OI_URL) and htx.VENUE.oi_source(FUNDING_URL)
    assert list(htx.VENUE.rest_urls({})) == []  # no metadata URL to confuse with
    assert not htx.VENUE.oi_source(htx.WS_URL)
    assert htx.VENUE.default_urls["rest"] == "https://api.hbdm.com"


def test_session_routes_both_bodies() -> None:
    session = VenueSession(htx.VENUE)
    first = session.process(RawFrame(htx.ID, FUNDING_URL, RECV, FUNDING_DOC))
    assert first.deadletter is None and first.kind == "info"
    out = session.process(RawFrame(htx.ID, OI_URL, RECV, OI_DOC))
    assert out.deadletter is None and len(out.open_interest) == 4


async def test_simulator_serves_the_poll() -> None:
    async with HtxSim() as sim:
        sim.oi_bodies[OI_PATH] = oi_body([("ETH-USDT", 20000.0, 60_000_000.0)])
        sim.oi_bodies[htx.FUNDING_PATH] = funding_body({"ETH-USDT": "-0.000050000000000000"})
        meta = Metadata()
        async with aiohttp.ClientSession() as http:
            for url in htx.oi_urls(meta, sim.urls()):
                async with http.get(url) as resp:
                    out = htx.parse_oi(await resp.text(), url, time.time(), meta)
    (rec,) = out.open_interest
    assert (rec.symbol, rec.oi_coins, rec.oi_usd) == ("ETH-USDT", 10000.0, 30_000_000.0)
    assert rec.funding_rate == pytest.approx(-0.00005)
