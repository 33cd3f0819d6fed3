"""kill -9 the Faust worker mid-stream, restart it: windows and counters stay exact on the
embedded broker (despite Tansu's ListOffsets under-reporting), duplicates count once."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from pathlib import Path

from liqstress.config import Topics
from liqstress.event import LiquidationEvent, make_event
from liqstress.infra.broker import EmbeddedBroker, free_port
from liqstress.prices import make_tick
from liqstress.streams.publisher import KafkaSink

from .helpers import eventually, liqstress_cmd, sample, sample_sum, scrape, spawn, stop_process

EXCHANGES = ("binance", "bybit", "okx")


def synthetic(n: int, seed: int, now: float) -> list[LiquidationEvent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ex = rng.choice(EXCHANGES)
        price = rng.choice((60000.0, 3000.0, 150.0))
        qty = round(rng.uniform(0.01, 5), 4)
        out.append(make_event(
            exchange=ex, symbol=f"S{i % 17}USDT", base=f"S{i % 17}", quote="USDT",
            market="linear", side=rng.choice(("long", "short")), price=price, qty=qty,
            notional_usd=round(qty * price, 2),
            # 16..50 minutes old: inside 1h/4h/12h/24h, outside 1m/5m/15m, whatever the
            # bucket alignment at the moment of checking.
            ts=now - rng.uniform(16 * 60, 50 * 60) - i * 1e-3, recv_ts=now, sampled=False))
    return out


def expected(events: list[LiquidationEvent]) -> dict[tuple[str, str], tuple[int, float]]:
    seen: set[str] = set()
    out: dict[tuple[str, str], tuple[int, float]] = {}
    for ev in events:
        if ev.id in seen:
            continue
        seen.add(ev.id)
        c, usd = out.get((ev.exchange, ev.side), (0, 0.0))
        out[(ev.exchange, ev.side)] = (c + 1, usd + (ev.notional_usd or 0.0))
    return out


def totals(port: int) -> tuple[float, dict[tuple[str, str], tuple[float, float, float, float]]]:
    s = scrape(port)
    per = {}
    for ex in EXCHANGES:
        for side in ("long", "short"):
            per[(ex, side)] = (
                sample_sum(s, "liqstress_liquidations_total", exchange=ex, side=side),
                sample_sum(s, "liqstress_liquidated_usd_total", exchange=ex, side=side),
                sample(s, "liqstress_window_liquidated_usd", exchange=ex, side=side, window="1h") or 0.0,
                sample(s, "liqstress_window_liquidated_usd", exchange=ex, side=side, window="15m") or 0.0,
            )
    return sample(s, "liqstress_worker_ready") or 0.0, per


async def test_kill_9_and_restart_keeps_windows_exact(broker: EmbeddedBroker, tmp_path: Path) -> None:
    now = time.time()
    events = synthetic(900, seed=7, now=now)
    first, second = events[:300], events[300:]
    dupes = random.Random(1).sample(events[:600], 40)  # a collector resending after reconnect
    # BTC mark prices over the last 10 minutes: low 60,000, newest 60,029.
    ticks = [make_tick(exchange="binance", symbol="BTCUSDT", base="BTC", price=60_000.0 + i,
                       ts=now - 600 + 10 * i, recv_ts=now - 600 + 10 * i) for i in range(30)]
    sink = KafkaSink(broker.bootstrap, Topics())
    await sink.start()
    for ev in first:
        await sink.event(ev)
    for tick in ticks[:15]:
        await sink.price(tick)
    await sink.flush()

    port = free_port()
    args = liqstress_cmd("worker", "--broker", broker.bootstrap, "--metrics-port", str(port),
                         "--metrics-host", "127.0.0.1", "--refresh-interval", "0.5",
                         "--session-timeout", "6", "--exchanges", ",".join(EXCHANGES))
    worker = spawn(args, tmp_path / "worker1.log")
    try:
        def first_counted() -> bool:
            _, per = totals(port)
            return sum(v[0] for v in per.values()) >= 300
        await eventually(first_counted, 90, what="worker to count the first batch")

        async def stream_rest() -> None:
            for i, ev in enumerate(second + dupes):
                await sink.event(ev)
                if i < 15:
                    await sink.price(ticks[15 + i])
                if i % 20 == 0:
                    await asyncio.sleep(0.02)
            await sink.flush()

        publisher = asyncio.create_task(stream_rest())
        await asyncio.sleep(0.3)
        assert worker.poll() is None
        stop_process(worker, signal.SIGKILL)  # mid-stream, without any chance to commit
        await publisher
    finally:
        stop_process(worker)

    worker2 = spawn(args, tmp_path / "worker2.log")
    try:
        want = expected(events + dupes)
        want_total = sum(c for c, _ in want.values())

        def all_counted() -> bool:
            ready, per = totals(port)
            return ready == 1 and sum(v[0] for v in per.values()) >= want_total
        await eventually(all_counted, 120, what="restarted worker to catch up")
        await asyncio.sleep(1.5)  # a few more refreshes: nothing may be added twice
        _, per = totals(port)
        for key, (count, usd) in want.items():
            got_count, got_usd, win_1h, win_15m = per[key]
            assert got_count == count, (key, got_count, count)
            assert abs(got_usd - usd) < 1e-6 * max(usd, 1), (key, got_usd, usd)
            assert abs(win_1h - usd) < 1e-6 * max(usd, 1), (key, win_1h, usd)
            assert win_15m == 0.0
        s = scrape(port)
        assert (sample(s, "liqstress_worker_rebuilt_events") or 0) >= 300
        # Prices come back from the prices topic too: the newest close and the local low.
        assert sample(s, "liqstress_coin_price_usd", coin="BTC") == 60_029.0
        assert sample(s, "liqstress_coin_local_low_usd", coin="BTC") == 60_000.0
    finally:
        stop_process(worker2)
        await sink.stop()
