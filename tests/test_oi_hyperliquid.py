"""Hyperliquid open interest and funding: ``POST /info {"type":"metaAndAssetCtxs"}``.

Fixture ``tests/fixtures/oi/hyperliquid_meta_and_asset_ctxs.json``: a REAL capture of the
``metaAndAssetCtxs`` answer (recorded 2026-09-15, trimmed to four coins by its recorder), byte
for byte from skipaoff/ludiki_parcer ``tests/exchanges/fixtures/hyperliquid_meta.json``: BTC,
a delisted MATIC, DOGE, kPEPE. ``funding`` 0.0000125 = 0.01 % / 8: the rate per HOUR.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.hyperliquid import OI_KEY, HyperliquidSim, oi_body
from liqstress.streams.venues import hyperliquid as hl
from liqstress.streams.venues.base import FrameError, Metadata

BODY = (Path(__file__).parent / "fixtures" / "oi" / "hyperliquid_meta_and_asset_ctxs.json"
        ).read_text()
URL = 'https://api.hyperliquid.xyz/info#{"type":"metaAndAssetCtxs"}'
RECV = 1_789_485_206.0


def records(body: str = BODY, recv: float = RECV) -> dict:
    return {r.symbol: r for r in hl.parse_oi(body, URL, recv, Metadata()).open_interest}


def test_coins_valued_at_mark_and_hourly_funding() -> None:
    btc = records()["BTC"]
    assert btc.oi_coins == pytest.approx(37208.2098)
    assert btc.price == pytest.approx(76036.0)  # markPx, not oraclePx 76063.3
    assert btc.oi_usd == pytest.approx(37208.2098 * 76036.0)
    assert (btc.funding_rate, btc.funding_interval_hours) == (0.0000125, 1.0)
    assert btc.funding_8h == pytest.approx(0.0001)  # 0.01 % per 8 h
    assert (btc.market, btc.ts, btc.recv_ts) == ("linear", RECV, RECV)  # no venue time


def test_k_prefix_is_thousands_and_delisted_coins_are_left_out() -> None:
    recs = records()
    assert sorted(recs) == ["BTC", "DOGE", "kPEPE"]  # MATIC is delisted
    pepe = recs["kPEPE"]
    assert pepe.coin == "PEPE"
    assert pepe.oi_coins == pytest.approx(6030030310.0 * 1000)
    assert pepe.price == pytest.approx(0.003386 / 1000)
    assert pepe.oi_usd == pytest.approx(6030030310.0 * 0.003386)
    assert recs["DOGE"].funding_rate == pytest.approx(0.0000065103)


def test_missing_mark_leaves_usd_null() -> None:
    msg = orjson.loads(BODY)
    msg[1][2]["markPx"] = None  # DOGE
    out = hl.parse_oi(orjson.dumps(msg).decode(), URL, RECV, Metadata())
    doge = {r.symbol: r for r in out.open_interest}["DOGE"]
    assert doge.oi_usd is None and doge.price is None
    assert doge.oi_coins == pytest.approx(779907482.0)
    assert out.unpriced == 1


def test_bad_instrument_is_skipped_and_counted() -> None:
    msg = orjson.loads(BODY)
    msg[1][0]["openInterest"] = "-5"  # BTC: negative open interest is refused
    out = hl.parse_oi(orjson.dumps(msg).decode(), URL, RECV, Metadata())
    assert out.skipped == 1
    assert sorted(r.symbol for r in out.open_interest) == ["DOGE", "kPEPE"]


def test_all_bad_body_is_bad_open_interest() -> None:
    msg = orjson.loads(BODY)
    for ctx in msg[1]:
        ctx["funding"] = 0.0000125  # a JSON number where the venue sends a string
    with pytest.raises(FrameError) as err:
        hl.parse_oi(orjson.dumps(msg).decode(), URL, RECV, Metadata())
    assert err.value.reason == "bad_open_interest"


@pytest.mark.parametrize("body", [
    '{"universe": []}',  # not [meta, ctxs]
    orjson.dumps([orjson.loads(BODY)[0], orjson.loads(BODY)[1][:3]]).decode(),  # misaligned
])
def test_wrong_shape_is_unexpected_shape(body: str) -> None:
    with pytest.raises(FrameError) as err:
        hl.parse_oi(body, URL, RECV, Metadata())
    assert err.value.reason == "unexpected_shape"


def test_venue_error_text_is_malformed_json() -> None:
    # What /info answers a request it cannot read (HTTP 422, plain text).
    with pytest.raises(FrameError) as err:
        hl.parse_oi("Failed to deserialize the JSON body into the target type", URL, RECV,
                    Metadata())
    assert err.value.reason == "malformed_json"


def test_oi_source_tells_polls_from_metadata() -> None:
    urls = hl.VENUE.oi_urls(Metadata(), {})
    assert urls == [URL]
    assert hl.VENUE.oi_source(URL)
    assert not any(hl.VENUE.oi_source(u) for u in hl.VENUE.rest_urls({}))
    assert hl.VENUE.oi_rule


def test_session_routes_the_poll_to_parse_oi() -> None:
    out = VenueSession(hl.VENUE).process(RawFrame("hyperliquid", URL, RECV, BODY))
    assert out.deadletter is None
    assert sorted(r.symbol for r in out.open_interest) == ["BTC", "DOGE", "kPEPE"]


async def test_simulator_serves_the_poll() -> None:
    sim = HyperliquidSim()
    sim.oi_bodies[OI_KEY] = oi_body({"BTC": ("10.0", "50000.0", "0.00002")})
    async with sim, aiohttp.ClientSession() as http:
        (url,) = hl.VENUE.oi_urls(Metadata(), sim.urls())
        address, _, payload = url.partition("#")
        async with http.post(address, data=payload) as resp:
            body = await resp.text()
    btc = {r.symbol: r for r in hl.parse_oi(body, url, time.time(), Metadata())
           .open_interest}["BTC"]
    assert btc.oi_usd == pytest.approx(500_000.0)
    assert btc.funding_8h == pytest.approx(0.00016)
