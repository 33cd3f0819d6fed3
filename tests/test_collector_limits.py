"""Hostile sizes: a websocket message over the venue's ``max_frame_bytes`` is refused by the
library (close 1009), reported and reconnected; a REST body over ``max_rest_bytes`` is a
``too_large`` dead letter, read in chunks and never held whole (Content-Length, chunked, or
gzip that inflates past the cap)."""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from aiohttp import web

from liqstress.infra.metrics import Metrics
from liqstress.streams.collector import Collector
from liqstress.streams.sims.base import MemorySink, running
from liqstress.streams.sims.binance import BinanceSim, force_order
from liqstress.streams.venues import all_venue_ids, binance, get_venue, okx
from liqstress.streams.venues.base import VenueSpec

from .venue_harness import LIVELY, Rig

MiB = 1024 * 1024


@pytest.mark.parametrize("venue_id", all_venue_ids())
def test_every_venue_caps_its_frames_far_below_the_old_16_mib(venue_id: str) -> None:
    spec = get_venue(venue_id)
    assert 64 * 1024 <= spec.max_frame_bytes <= MiB, (venue_id, spec.max_frame_bytes)
    assert spec.max_rest_bytes == 32 * MiB
    col = Collector(spec, MemorySink())
    assert (col.max_frame_bytes, col.max_rest_bytes) == (spec.max_frame_bytes, spec.max_rest_bytes)
    assert Collector(spec, MemorySink(), max_frame_bytes=4096).max_frame_bytes == 4096


async def test_a_frame_over_the_limit_is_refused_reported_and_reconnected(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="liqstress.streams.collector")
    limit = binance.VENUE.max_frame_bytes  # the real Binance limit, 1 MiB
    async with BinanceSim() as sim:
        rig = Rig(binance.VENUE, sim, **LIVELY)
        async with running(rig.col):
            await asyncio.wait_for(rig.col.subscribed.wait(), 10)
            # Just under the limit: read and parsed (garbage: a dead letter), no reconnect.
            await sim.push('"' + "x" * (limit - 2) + '"')
            await rig.published(0, 1)
            assert rig.sink.deadletters[0]["reason"] != "too_large"
            assert rig.col.reconnects == 0
            # One byte over: refused unread, the connection closed with 1009.
            connections = sim.connections
            await sim.push('"' + "x" * (limit - 1) + '"')
            await rig.published(0, 2, also=lambda: sim.connections > connections
                                and rig.up() == 1)
            # Reconnected and delivering again.
            now = int(time.time() * 1000)
            await sim.push(force_order("BTCUSDT", "SELL", "0.5", "60000", now))
            await rig.published(1, 2)
    too_large = rig.sink.deadletters[1]
    assert too_large["reason"] == "too_large" and too_large["exchange"] == "binance"
    assert f"max_frame_bytes={limit}" in too_large["detail"]
    assert too_large["source"] == sim.ws_url()
    assert rig.frames("too_large") == 1
    assert rig.count("liqstress_deadletter_total", reason="too_large") == 1
    assert rig.col.reconnects >= 1 and rig.count("liqstress_source_reconnects_total") >= 1
    warnings = [r.getMessage() for r in caplog.records]
    assert any(f"exceeded the {limit}-byte limit (max_frame_bytes)" in w and sim.ws_url() in w
               for w in warnings), warnings
    assert any("lost: frame over the" in w and "retry in" in w for w in warnings), warnings


# ---- REST bodies ------------------------------------------------------------------------------

CAP = 256 * 1024


class BigRest:
    """An HTTP server whose instrument listings are too big, three ways."""

    def __init__(self) -> None:
        self.streamed = 0
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def announced(self, request: web.Request) -> web.Response:
        return web.Response(body=b"[" + b"0," * CAP + b"0]", content_type="application/json")

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b" " * 65536
        try:
            for _ in range(1024):  # 64 MiB if the client read it all
                await resp.write(chunk)
                self.streamed += len(chunk)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    async def bomb(self, request: web.Request) -> web.Response:
        body = gzip.compress(b" " * (8 * MiB))  # ~8 KB on the wire, 8 MiB inflated
        return web.Response(body=body, headers={"Content-Encoding": "gzip",
                                                "Content-Type": "application/json"})

    async def __aenter__(self) -> BigRest:
        app = web.Application()
        app.router.add_get("/announced/api/v5/public/instruments", self.announced)
        app.router.add_get("/chunked/api/v5/public/instruments", self.chunked)
        app.router.add_get("/bomb/api/v5/public/instruments", self.bomb)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


@pytest.fixture
async def big_rest() -> AsyncIterator[BigRest]:
    async with BigRest() as server:
        yield server


@pytest.mark.parametrize("route", ["announced", "chunked", "bomb"])
async def test_a_rest_body_over_the_cap_is_a_too_large_dead_letter(
        route: str, big_rest: BigRest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="liqstress.streams.collector")
    sink, metrics = MemorySink(), Metrics.create()
    col = Collector(okx.VENUE, sink, metrics, urls={"rest": f"{big_rest.base}/{route}"},
                    max_rest_bytes=CAP, backoff_initial=5.0)
    loading = asyncio.create_task(col.load_metadata())
    try:
        deadline = time.monotonic() + 10
        while not sink.deadletters and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        loading.cancel()
        await asyncio.gather(loading, return_exceptions=True)
    (dl,) = sink.deadletters
    assert dl["reason"] == "too_large" and dl["source"].startswith(f"{big_rest.base}/{route}/")
    assert f"{CAP}-byte limit (max_rest_bytes)" in dl["detail"] and dl["frame"] == ""
    assert metrics.registry.get_sample_value(
        "liqstress_deadletter_total", {"exchange": "okx", "reason": "too_large"}) == 1
    assert not sink.raws  # never recorded, never parsed
    assert col.down_reason().startswith("REST body too large")
    warning = next(r.getMessage() for r in caplog.records if "refused" in r.getMessage())
    assert dl["source"] in warning and "retry in" in warning
    if route == "chunked":
        # The reader stopped at the cap: the server could not push its 64 MiB through.
        assert big_rest.streamed < 16 * MiB


async def test_a_rest_body_under_the_cap_loads(big_rest: BigRest) -> None:
    spec: VenueSpec = okx.VENUE
    loaded: list[int] = []
    fake = replace(spec, load_rest=lambda meta, url, body: loaded.append(len(body)),
                   rest_urls=lambda urls: [f"{big_rest.base}/announced/api/v5/public/instruments"])
    await Collector(fake, MemorySink(), max_rest_bytes=4 * CAP).load_metadata()
    assert loaded == [2 * CAP + 2 + 1]
