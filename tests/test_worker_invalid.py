"""A record on the liquidations or prices topic that is not valid (another producer, a bug)
becomes a dead letter with a reason; the worker keeps counting the valid ones."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from liqstress.agents.app import create_app
from liqstress.config import WorkerSettings
from liqstress.event import make_event
from liqstress.infra.broker import EmbeddedBroker
from liqstress.infra.metrics import Metrics
from liqstress.prices import make_tick

from .helpers import dead_letters_of, registry_samples, sample_sum


@pytest.mark.timeout(90)
async def test_invalid_records_are_dead_lettered(broker: EmbeddedBroker) -> None:
    metrics = Metrics.create()
    app, state = create_app(WorkerSettings(broker=broker.bootstrap, session_timeout=6,
                                           refresh_interval=0.5, app_id="invalid-test"), metrics)
    await app.start()
    now = time.time()
    good = make_event(exchange="okx", symbol="BTC-USDT-SWAP", base="BTC", quote="USDT",
                      market="linear", side="short", price=50000.0, qty=0.2,
                      notional_usd=10000.0, ts=now, recv_ts=now, sampled=True)
    bad_obj = {**good.to_dict(), "notional_usd": "lots", "id": "x"}
    tick = make_tick(exchange="binance", symbol="BTCUSDT", base="BTC", price=50_100.0,
                     ts=now, recv_ts=now)
    bad_tick = {**json.loads(tick.to_json()), "price": -1}
    records = [("liquidations", v) for v in (b"not json", json.dumps(bad_obj).encode(),
                                              good.to_json())]
    records += [("prices", v) for v in (json.dumps(bad_tick).encode(), tick.to_json())]
    try:
        dls = await dead_letters_of(broker.bootstrap, state, records, events=1, invalid=3)
        while state.prices.ticks < 1:
            await asyncio.sleep(0.05)
    finally:
        await app.stop()
    assert state.store.events == 1 and state.invalid == 3
    assert sample_sum(registry_samples(metrics.registry), "liqstress_liquidated_usd_total",
                      exchange="okx", side="short") == 10000.0
    assert sorted(d["reason"] for d in dls) == ["invalid_event", "invalid_event", "invalid_price"]
    assert "not json" in [d["frame"] for d in dls]
    bad_price = next(d for d in dls if d["reason"] == "invalid_price")
    assert bad_price["source"] == "kafka:prices" and '"price": -1' in bad_price["frame"]
    assert state.prices.price_at("BTC", now) == 50_100.0
