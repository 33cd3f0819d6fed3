"""A record on the liquidations topic that is not a valid event (another producer, a bug)
becomes a dead letter with a reason; the worker keeps counting the valid ones."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka import AIOKafkaProducer

from agents.app import create_app
from liqstress.broker import EmbeddedBroker
from liqstress.config import WorkerSettings
from liqstress.event import make_event
from liqstress.metrics import Metrics

from .test_e2e import read_topic


@pytest.mark.timeout(90)
async def test_invalid_records_are_dead_lettered(broker: EmbeddedBroker) -> None:
    metrics = Metrics.create()
    app, state = create_app(WorkerSettings(broker=broker.bootstrap, session_timeout=6,
                                           refresh_interval=0.5, app_id="invalid-test"), metrics)
    await app.start()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        now = time.time()
        good = make_event(exchange="okx", symbol="BTC-USDT-SWAP", base="BTC", quote="USDT",
                          market="linear", side="short", price=50000.0, qty=0.2,
                          notional_usd=10000.0, ts=now, recv_ts=now, sampled=True)
        bad_obj = {**good.to_dict(), "notional_usd": "lots", "id": "x"}
        for value in (b"not json", json.dumps(bad_obj).encode(), good.to_json()):
            await producer.send_and_wait("liquidations", value=value, key=b"okx:BTC-USDT-SWAP")

        async def settled() -> None:
            while state.store.events < 1 or state.invalid < 2:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(settled(), 60)
        dls = [json.loads(v) for v in await asyncio.to_thread(
            read_topic, broker.bootstrap, "liquidations.deadletter", 2)]
    finally:
        await producer.stop()
        await app.stop()
    assert state.store.events == 1 and state.invalid == 2
    assert metrics.registry.get_sample_value(
        "liqstress_liquidated_usd_total", {"exchange": "okx", "side": "short"}) == 10000.0
    assert [d["reason"] for d in dls] == ["invalid_event", "invalid_event"]
    assert dls[0]["frame"] == "not json"
