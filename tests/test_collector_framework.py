"""Collector framework behaviour shared by venues: metadata refresh subscribing new listings on
the live connection, and file sources (a node's rotated output files)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import orjson

from liqstress.event import make_event
from liqstress.infra.metrics import Metrics
from liqstress.streams.collector import Collector, FileFollower
from liqstress.streams.sims import bybit as bybit_sim
from liqstress.streams.sims.base import MemorySink, running
from liqstress.streams.venues import bybit
from liqstress.streams.venues.base import Connection, Metadata, Parsed, VenueSpec, loads


async def test_refresh_subscribes_new_listing_without_reconnecting(monkeypatch) -> None:
    metrics = Metrics.create()
    sink = MemorySink()
    pages = [list(p) for p in bybit_sim.LINEAR_PAGES]
    monkeypatch.setattr(bybit_sim, "LINEAR_PAGES", pages)
    async with bybit_sim.BybitSim() as sim:
        urls = {"ws_linear": sim.ws_url(bybit_sim.LINEAR_PATH),
                "ws_inverse": sim.ws_url(bybit_sim.INVERSE_PATH), "rest": sim.http_base}
        col = Collector(bybit.VENUE, sink, metrics, urls=urls, ping_interval=0.2,
                        pong_timeout=1.0, backoff_initial=0.05, backoff_cap=0.2,
                        metadata_refresh=0.3)
        async with running(col):
            await asyncio.wait_for(col.subscribed.wait(), 5)
            connections = sim.connections
            assert "allLiquidation.SOLUSDT" not in sim.subscribed[bybit_sim.LINEAR_PATH]
            pages[1].append(bybit_sim._inst("SOLUSDT", "LinearPerpetual", "SOL", "USDT"))
            await sim.wait_for(
                lambda: "allLiquidation.SOLUSDT" in sim.subscribed[bybit_sim.LINEAR_PATH])
            t = int(time.time() * 1000)
            await sim.push(bybit_sim.liquidation("SOLUSDT", ("Buy", "10", "150", t)),
                           bybit_sim.LINEAR_PATH)
            await sim.wait_for(lambda: len(sink.events) == 1)
            assert sim.connections == connections  # added on the live connection
    # Existing symbols were not subscribed twice.
    linear = sim.subscribed[bybit_sim.LINEAR_PATH]
    assert linear.count("allLiquidation.BTCUSDT") == 1
    (ev,) = sink.events
    assert (ev.symbol, ev.base, ev.side, ev.notional_usd) == ("SOLUSDT", "SOL", "long", 1500.0)


def test_file_follower_tails_rotates_and_waits_for_complete_lines(tmp_path: Path) -> None:
    day = tmp_path / "hourly" / "20261125"
    day.mkdir(parents=True)
    first = day / "3"
    first.write_text('{"old": 1}\n')
    f = FileFollower(tmp_path)
    assert f.poll() == []  # what was there before we started is history
    with first.open("a") as fh:
        fh.write('{"a": 1}\n{"b"')
    assert f.poll() == ['{"a": 1}']
    with first.open("a") as fh:
        fh.write(': 2}\n')
    assert f.poll() == ['{"b": 2}']
    second = day / "4"
    second.write_text('{"c": 3}\n')
    future = time.time() + 5
    os.utime(second, (future, future))
    with first.open("a") as fh:
        fh.write('{"late": 0}\n')  # written to the old hour just before rotation
    assert f.poll() == ['{"late": 0}', '{"c": 3}']
    second.write_text("")  # truncated
    assert f.poll() == []
    with second.open("a") as fh:
        fh.write('{"d": 4}\n')
    assert f.poll() == ['{"d": 4}']


def _file_parse(text: str, source: str, recv_ts: float, meta: Metadata) -> Parsed:
    obj = loads(text)
    return Parsed(kind="data", events=(make_event(
        exchange="filevenue", symbol="BTC", base="BTC", quote="USD", market="linear",
        side=obj["side"], price=obj["px"], qty=obj["sz"], notional_usd=obj["px"] * obj["sz"],
        ts=obj["t"], recv_ts=recv_ts, sampled=False),))


async def test_file_source_collector_publishes_appended_lines(tmp_path: Path) -> None:
    path = tmp_path / "fills"
    path.write_text('{"side": "long", "px": 1.0, "sz": 1.0, "t": 1789670000.0}\n')
    spec = VenueSpec(id="filevenue", side_rule="test", unit_rule="test", sampled=False,
                     rest_urls=lambda urls: (), parse=_file_parse,
                     connections=lambda meta, urls: [Connection("node", f"file://{path}")])
    metrics = Metrics.create()
    sink = MemorySink()
    col = Collector(spec, sink, metrics)
    col.file_poll_interval = 0.05
    async with running(col):
        await asyncio.wait_for(col.subscribed.wait(), 5)
        assert metrics.registry.get_sample_value("liqstress_source_up", {"exchange": "filevenue"}) == 1
        with path.open("a") as fh:
            fh.write(orjson.dumps({"side": "short", "px": 2.0, "sz": 3.0,
                                   "t": time.time()}).decode() + "\n")
            fh.write("{broken\n")
        deadline = time.monotonic() + 5
        while (not sink.events or not sink.deadletters) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    assert [(e.side, e.notional_usd) for e in sink.events] == [("short", 6.0)]
    assert sink.deadletters[0]["reason"] == "malformed_json"


async def test_rest_url_fragment_is_sent_as_a_post_body() -> None:
    from aiohttp import web

    seen: list[tuple[str, str]] = []

    async def info(request: web.Request) -> web.Response:
        seen.append((request.method, await request.text()))
        return web.Response(text='{"ok": true}', content_type="application/json")

    app = web.Application()
    app.router.add_post("/info", info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    loaded: list[tuple[str, str]] = []
    url = f"http://127.0.0.1:{port}/info#" + '{"type":"meta"}'
    spec = VenueSpec(id="postvenue", side_rule="t", unit_rule="t", sampled=False,
                     rest_urls=lambda urls: [url], parse=_file_parse,
                     connections=lambda meta, urls: [],
                     load_rest=lambda meta, u, body: loaded.append((u, body)))
    sink = MemorySink()
    try:
        await Collector(spec, sink).load_metadata()
    finally:
        await runner.cleanup()
    assert seen == [("POST", '{"type":"meta"}')]
    assert loaded == [(url, '{"ok": true}')]
    assert sink.raws[0].source == url  # the recording keeps the request identifiable
