"""Broker down: the collector keeps what it received and delivers it once the broker is up."""

from __future__ import annotations

import asyncio
import time

import pytest

from liqstress.config import Topics
from liqstress.event import make_event
from liqstress.infra.broker import EmbeddedBroker, free_port
from liqstress.recording import RawFrame
from liqstress.streams.publisher import KafkaSink

from .test_e2e import read_topic


@pytest.mark.timeout(120)
async def test_records_wait_for_the_broker_and_are_all_delivered() -> None:
    port = free_port()
    sink = KafkaSink(f"127.0.0.1:{port}", Topics(), retry_delay=0.2)
    await sink.start()
    now = time.time()
    events = [make_event(exchange="binance", symbol="BTCUSDT", base="BTC", quote="USDT",
                         market="linear", side="long", price=100.0 + i, qty=1.0,
                         notional_usd=100.0 + i, ts=now, recv_ts=now, sampled=True)
              for i in range(25)]
    for i, ev in enumerate(events):
        await sink.raw(RawFrame("binance", "wss://x", now, f"frame {i}"))
        await sink.event(ev)
    await asyncio.sleep(1.0)
    assert sink.backlog == 50 and sink.sent == 0  # nowhere to go yet, nothing dropped
    with EmbeddedBroker(port=port) as broker:
        await asyncio.wait_for(sink.flush(), 60)
        assert sink.sent >= 50
        got = read_topic(broker.bootstrap, "liquidations", 25)
        raws = read_topic(broker.bootstrap, "liquidations.raw", 25)
        await sink.stop()
    assert len({g for g in got}) == 25
    assert len(raws) >= 25
