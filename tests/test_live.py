"""Opt-in checks against the real venues (need internet): ``bash scripts/test.sh -m live``.
Deselected by default; they confirm the endpoints, subscriptions and pings still work."""

from __future__ import annotations

import asyncio

import pytest

from liqstress.infra.metrics import Metrics
from liqstress.streams.collector import Collector
from liqstress.streams.sims.base import MemorySink
from liqstress.streams.venues import all_venue_ids, get_venue

pytestmark = pytest.mark.live


@pytest.mark.parametrize("venue_id", all_venue_ids())
@pytest.mark.timeout(120)
async def test_live_subscribe_and_pong(venue_id: str) -> None:
    metrics = Metrics.create()
    venue = get_venue(venue_id)
    col = Collector(venue, MemorySink(), metrics, ping_interval=5, pong_timeout=20)
    task = asyncio.create_task(col.run())

    def frames(kind: str) -> float:
        return metrics.registry.get_sample_value(
            "liqstress_source_frames_total", {"exchange": venue_id, "kind": kind}) or 0.0

    try:
        await asyncio.wait_for(col.subscribed.wait(), 60)

        async def ponged() -> None:
            # A polled venue's ping is its request and the pong the page answered: up after
            # the first, and a few more (info: no liquidation, data: some) come back.
            while not (frames("info") + frames("data") >= 3 if venue.poll is not None
                       else frames("pong")):
                await asyncio.sleep(0.2)
        await asyncio.wait_for(ponged(), 30)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert metrics.registry.get_sample_value("liqstress_deadletter_total",
                                             {"exchange": venue_id, "reason": "malformed_json"}) is None


@pytest.mark.parametrize("venue_id", ["binance", "hyperliquid"])
@pytest.mark.timeout(120)
async def test_live_prices_arrive(venue_id: str) -> None:
    """The price feeds deliver ticks (mark prices are pushed every second, mids per block)."""
    metrics = Metrics.create()
    sink = MemorySink()
    col = Collector(get_venue(venue_id), sink, metrics, ping_interval=5, pong_timeout=20)
    task = asyncio.create_task(col.run())
    try:
        async def priced() -> None:
            while not any(t.coin == "BTC" for t in sink.prices):
                await asyncio.sleep(0.2)
        await asyncio.wait_for(priced(), 60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    btc = next(t for t in sink.prices if t.coin == "BTC")
    assert 1_000 < btc.price < 10_000_000
    assert not [d for d in sink.deadletters if d["reason"] == "bad_price"]
