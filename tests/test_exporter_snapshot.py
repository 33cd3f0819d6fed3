"""The worker's custom collector (agents/exporter.py) serves the last immutable snapshot of
the worker's state: a coin or an exchange that drops out of the windows leaves no series
behind, counters stay monotonic across rebuilds, a scrape from another thread reads only the
snapshot, and health changes show at once."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from liqstress.agents import exporter
from liqstress.agents.state import WorkerState
from liqstress.config import WorkerSettings
from liqstress.event import make_event
from liqstress.infra.metrics import Metrics
from liqstress.prices import make_tick

T0 = 1_750_000_000.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(state: WorkerState) -> Samples:
    """/metrics as Prometheus reads it: the text exposition, parsed."""
    text = generate_latest(state.metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def scrape_elsewhere(state: WorkerState) -> Samples:
    """A scrape from another thread, like the HTTP server's."""
    out: list[Samples] = []
    t = threading.Thread(target=lambda: out.append(scrape(state)))
    t.start()
    t.join(10)
    return out[0]


def series(samples: Samples, name: str, **labels: str) -> dict[tuple[tuple[str, str], ...], float]:
    want = set(labels.items())
    return {lbls: v for (n, lbls), v in samples.items() if n == name and want <= set(lbls)}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def liq(state: WorkerState, exchange: str, coin: str, side: str, usd: float, t: float,
        partition: int = 0) -> None:
    state.apply(make_event(exchange=exchange, symbol=f"{coin}USDT", base=coin, quote="USDT",
                           market="linear", side=side, price=100.0, qty=usd / 100.0,
                           notional_usd=usd, ts=t, recv_ts=t, sampled=False), partition)


def tick(state: WorkerState, coin: str, price: float, t: float) -> None:
    state.apply_tick(make_tick(exchange="binance", symbol=f"{coin}USDT", base=coin,
                               price=price, ts=t, recv_ts=t))


def make_state(coins: tuple[str, ...] = ("BTC", "ETH")) -> WorkerState:
    metrics = Metrics.create()
    metrics.init_exchanges(["binance"])
    state = WorkerState(settings=WorkerSettings(broker="x:1", coins=coins), metrics=metrics)
    state.fixed_now = T0
    state.ready.set()  # standalone: nothing to wait for (the app sets it on assignment)
    return state


def worker_series(samples: Samples) -> Samples:
    names = {name for _, name, _, _ in exporter.SPECS.values()}
    return {k: v for k, v in samples.items() if k[0] in names}


def test_a_coin_and_an_exchange_that_drop_out_leave_no_series() -> None:
    state = make_state()
    exporter.register(state)
    for m in range(0, 30):  # half an hour of prices for both coins
        tick(state, "BTC", 100.0 - m, T0 - (30 - m) * 60)
        tick(state, "ETH", 50.0 + m, T0 - (30 - m) * 60)
    liq(state, "binance", "BTC", "long", 2e6, T0 - 60, partition=0)
    liq(state, "okx", "ETH", "short", 1e6, T0 - 30, partition=1)
    state.refresh()
    before = scrape(state)
    assert value(before, "liqstress_coin_price_usd", coin="ETH") == 79.0
    assert value(before, "liqstress_coin_local_low_usd", coin="ETH") == 50.0
    assert series(before, "liqstress_coin_near_extreme_ratio", coin="ETH")
    assert value(before, "liqstress_exchange_share_ratio", exchange="okx", window="1h") == \
        pytest.approx(1 / 3)
    assert value(before, "liqstress_exchange_long_share_ratio", exchange="okx",
                 window="1h") == 0.0
    assert value(before, "liqstress_window_liquidated_usd", exchange="okx", side="short",
                 window="1h") == 1e6
    okx_total = value(before, "liqstress_liquidated_usd_total", exchange="okx", side="short",
                      partition="1")
    assert okx_total == 1e6

    # A day later: BTC still trades and liquidates on binance; ETH has no price any more and
    # okx nothing in any window.
    later = T0 + 25 * 3600
    state.fixed_now = later
    for m in range(0, 5):
        tick(state, "BTC", 90.0 + m, later - (5 - m) * 60)
    liq(state, "binance", "BTC", "long", 3e6, later - 10, partition=0)
    state.refresh()
    after = scrape(state)

    # The coin: every per-coin price and signal series is gone, none holds its old value.
    for name in ("liqstress_coin_price_usd", "liqstress_coin_local_low_usd",
                 "liqstress_coin_local_high_usd", "liqstress_coin_near_extreme_ratio",
                 "liqstress_divergence_active"):
        assert not series(after, name, coin="ETH"), name
    assert value(after, "liqstress_coin_price_usd", coin="BTC") == 94.0
    assert value(after, "liqstress_price_coins") == 1
    # The exchange: its shares are gone from every window; its window totals read 0.
    assert not series(after, "liqstress_exchange_share_ratio", exchange="okx")
    assert not series(after, "liqstress_exchange_long_share_ratio", exchange="okx")
    assert value(after, "liqstress_exchange_share_ratio", exchange="binance",
                 window="1h") == 1.0
    okx_windows = series(after, "liqstress_window_liquidated_usd", exchange="okx")
    assert okx_windows and set(okx_windows.values()) == {0.0}
    assert set(series(after, "liqstress_window_largest_liquidation_usd",
                      exchange="okx").values()) == {0.0}
    # Counters are monotonic across rebuilds: history leaving the windows takes nothing off.
    assert value(after, "liqstress_liquidated_usd_total", exchange="okx", side="short",
                 partition="1") == okx_total
    assert value(after, "liqstress_liquidated_usd_total", exchange="binance", side="long",
                 partition="0") == 5e6


def test_series_follow_the_aggregator_role() -> None:
    """Global series exist only while this worker aggregates: none is left behind when it
    stops (another worker took the role, or the broker went away)."""
    state = make_state()
    exporter.register(state)
    tick(state, "BTC", 100.0, T0 - 60)
    liq(state, "binance", "BTC", "long", 1e6, T0 - 60)
    state.refresh()
    s = scrape_elsewhere(state)
    assert value(s, "liqstress_aggregator_active") == 1 and value(s, "liqstress_worker_ready") == 1
    assert value(s, "liqstress_stress_index") is not None
    assert value(s, "liqstress_coin_price_usd", coin="BTC") == 100.0

    state.set_broker_up(False, source="probe")  # health: the snapshot is rebuilt at once
    s = scrape_elsewhere(state)
    assert value(s, "liqstress_worker_ready") == 0 and value(s, "liqstress_aggregator_active") == 0
    for name in ("liqstress_stress_index", "liqstress_coin_price_usd",
                 "liqstress_exchange_share_ratio", "liqstress_cascade_active"):
        assert not series(s, name), name
    # Counters and this worker's own windows stay.
    assert value(s, "liqstress_liquidations_total", exchange="binance", side="long",
                 partition="0") == 1
    assert value(s, "liqstress_window_liquidated_usd", exchange="binance", side="long",
                 window="1h") == 1e6

    state.set_broker_up(True, source="probe")
    s = scrape_elsewhere(state)
    assert value(s, "liqstress_worker_ready") == 1 and value(s, "liqstress_stress_index") is not None


def test_a_scrape_from_another_thread_reads_only_the_snapshot() -> None:
    state = make_state()
    collector = exporter.register(state)
    liq(state, "binance", "BTC", "long", 1e6, T0 - 60)
    state.refresh()
    snap = collector.families
    assert isinstance(snap, tuple) and all(isinstance(f.samples, tuple) for f in snap)
    assert worker_series(scrape_elsewhere(state)) == worker_series(scrape(state))
    assert collector.families is snap  # nothing changed: no rebuild

    # A change on the state's thread, not yet rebuilt (no loop here to schedule it): another
    # thread still sees the last snapshot, whole.
    liq(state, "binance", "BTC", "long", 2e6, T0 - 30)
    assert state.metrics_dirty and collector.families is snap
    s = scrape_elsewhere(state)
    assert value(s, "liqstress_liquidations_total", exchange="binance", side="long",
                 partition="0") == 1
    # The state's own thread rebuilds when something changed.
    s = scrape(state)
    assert value(s, "liqstress_liquidations_total", exchange="binance", side="long",
                 partition="0") == 2
    assert collector.families is not snap and not state.metrics_dirty


async def test_on_the_loop_counters_show_within_the_lag_and_health_at_once() -> None:
    state = make_state()
    state.fixed_now = None
    collector = exporter.register(state)
    now = time.time()
    builds = collector.builds
    for i in range(100):
        liq(state, "okx", "BTC", "short", 1000.0 + i, now - 1, partition=i % 2)
    assert collector.builds == builds  # one rebuild, scheduled, for all of them
    await asyncio.sleep(exporter.COUNTER_LAG + 0.2)
    assert collector.builds == builds + 1 and not state.metrics_dirty
    s = await asyncio.to_thread(scrape, state)
    assert sum(series(s, "liqstress_liquidations_total", exchange="okx").values()) == 100

    state.revoke(1)  # a rebalance starts
    state.metrics_changed(urgent=True)  # what agents/app.py does after the revocations
    s = await asyncio.to_thread(scrape, state)
    assert value(s, "liqstress_worker_ready") == 0
    assert not series(s, "liqstress_liquidations_total", partition="1")
    assert value(s, "liqstress_worker_partitions", state="ready") == 1


async def test_a_stuck_loop_fails_the_scrape_rather_than_report_stale_health() -> None:
    state = make_state()
    collector = exporter.register(state)
    assert value(await asyncio.to_thread(scrape, state), "liqstress_worker_ready") == 1
    collector.built_at -= exporter.STALE_AFTER + 1  # as if the loop had not run since
    with pytest.raises(TimeoutError, match="stuck"):
        await asyncio.to_thread(scrape, state)
    collector._beat()  # noqa: SLF001  # the loop's heartbeat
    assert value(await asyncio.to_thread(scrape, state), "liqstress_worker_ready") == 1
