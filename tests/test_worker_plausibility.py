"""Events on the liquidations topic that are well-formed but cannot be true (another producer
with write access, a buggy collector) are refused by the worker under the collectors' own
reasons, and never reach a window or a counter."""

from __future__ import annotations

import time

import pytest

from liqstress.agents.app import create_app
from liqstress.config import ConfigError, WorkerSettings
from liqstress.event import make_event
from liqstress.infra.broker import EmbeddedBroker
from liqstress.infra.metrics import Metrics

from .helpers import dead_letters_of, registry_samples, sample_sum


def test_cap_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max notional"):
        WorkerSettings(broker="x:1", max_notional_usd=0).validate()


@pytest.mark.timeout(90)
async def test_implausible_events_are_dead_lettered(broker: EmbeddedBroker) -> None:
    metrics = Metrics.create()
    app, state = create_app(WorkerSettings(broker=broker.bootstrap, session_timeout=6,
                                           refresh_interval=0.5, app_id="plausible-test",
                                           max_notional_usd=1e8), metrics)
    await app.start()
    now = time.time()

    def ev(**over: float) -> bytes:
        kw = dict(exchange="okx", symbol="BTC-USDT-SWAP", base="BTC", quote="USDT",
                  market="linear", side="short", price=50000.0, qty=0.2, notional_usd=10000.0,
                  ts=now, recv_ts=now, sampled=True)
        kw.update(over)
        return make_event(**kw).to_json()  # type: ignore[arg-type]

    # Above the worker's cap (1e8 here), in 1970, a year ahead; then one good event.
    values = (ev(notional_usd=2e8, qty=4000.0), ev(ts=86_400.0), ev(ts=now + 365 * 86_400), ev())
    try:
        dls = await dead_letters_of(broker.bootstrap, state,
                                    [("liquidations", v) for v in values], events=1, invalid=3)
    finally:
        await app.stop()
    assert state.store.events == 1 and state.invalid == 3
    assert sample_sum(registry_samples(metrics.registry), "liqstress_liquidated_usd_total",
                      exchange="okx", side="short") == 10000.0
    assert sorted(d["reason"] for d in dls) == ["implausible_notional", "implausible_time",
                                                "implausible_time"]
