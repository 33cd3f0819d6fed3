"""Three `liqstress worker` processes with one app id on the embedded broker share the work:
after each step settles (start, kill -9 of the aggregator, a new worker), the sum over every
worker's /metrics and the published `liquidation.windows` snapshot (read with confluent-kafka)
equal the sums of the events sent, and exactly one worker is the aggregator."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from liqstress.config import Topics
from liqstress.event import LiquidationEvent
from liqstress.infra.broker import EmbeddedBroker, free_port
from liqstress.streams.publisher import KafkaSink

from .helpers import (
    eventually,
    liqstress_cmd,
    read_topic,
    sample,
    sample_sum,
    scrape,
    spawn,
    stop_process,
)
from .test_worker_restart import EXCHANGES, expected, synthetic

Want = dict[tuple[str, str], tuple[int, float]]


class Worker:
    def __init__(self, broker: EmbeddedBroker, tmp: Path, name: str) -> None:
        self.port = free_port()
        self.name = name
        self.proc: subprocess.Popen[bytes] = spawn(liqstress_cmd(
            "worker", "--broker", broker.bootstrap, "--metrics-port", str(self.port),
            "--metrics-host", "127.0.0.1", "--refresh-interval", "0.5",
            "--session-timeout", "6", "--exchanges", ",".join(EXCHANGES)),
            tmp / f"{name}.log", env={"LIQSTRESS_FULL_INTERVAL": "5"})

    def alive(self) -> bool:
        return self.proc.poll() is None


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(abs(b), 1.0)


def settled(workers: list[Worker], want: Want) -> dict[str, Any] | None:
    """Every live worker ready, one aggregator, and the sums over /metrics exact."""
    scrapes = {w.name: scrape(w.port) for w in workers if w.alive()}
    if not all(sample(s, "liqstress_worker_ready") == 1 for s in scrapes.values()):
        return None
    aggregators = [n for n, s in scrapes.items() if sample(s, "liqstress_aggregator_active") == 1]
    if len(aggregators) != 1:
        return None
    every = list(scrapes.values())
    for (ex, side), (count, usd) in want.items():
        got_count = sum(sample_sum(s, "liqstress_liquidations_total", exchange=ex, side=side)
                        for s in every)
        got_usd = sum(sample_sum(s, "liqstress_liquidated_usd_total", exchange=ex, side=side)
                      for s in every)
        win = sum(sample(s, "liqstress_window_liquidated_usd", exchange=ex, side=side,
                         window="1h") or 0.0 for s in every)
        win_n = sum(sample(s, "liqstress_window_liquidations", exchange=ex, side=side,
                           window="1h") or 0.0 for s in every)
        if not (got_count == count and win_n == count and close(got_usd, usd)
                and close(win, usd)):
            return None
    owned = {n: sample_sum(s, "liqstress_worker_partitions", state="ready")
             for n, s in scrapes.items()}
    return {"aggregator": aggregators[0], "partitions": owned}


def published(bootstrap: str, want: Want, after: float) -> bool:
    """The newest liquidation.windows snapshot, published after ``after``, is exact."""
    records = read_topic(bootstrap, Topics().windows, 1, timeout=10)
    snaps = [orjson.loads(r) for r in records]
    snaps = [s for s in snaps if s["published_at"] > after]
    if not snaps:
        return False
    w = snaps[-1]["windows"]["1h"]["exchange"]
    return all(ex in w and w[ex][side]["count"] == count and close(w[ex][side]["usd"], usd)
               for (ex, side), (count, usd) in want.items())


async def send(sink: KafkaSink, events: list[LiquidationEvent]) -> None:
    for i, ev in enumerate(events):
        await sink.event(ev)
        if i % 50 == 0:
            await asyncio.sleep(0.01)
    await sink.flush()


@asynccontextmanager
async def sink_and_workers(broker: EmbeddedBroker, tmp: Path,
                           n: int) -> AsyncIterator[tuple[KafkaSink, list[Worker]]]:
    """A started sink and ``n`` worker processes (w0, w1, ...). At the end every worker in the
    list is stopped, also one a test appended, and then the sink."""
    sink = KafkaSink(broker.bootstrap, Topics())
    await sink.start()
    workers = [Worker(broker, tmp, f"w{i}") for i in range(n)]
    try:
        yield sink, workers
    finally:
        for w in workers:
            stop_process(w.proc)
        await sink.stop()


@pytest.mark.timeout(300)
async def test_three_workers_share_the_partitions_and_fail_over(broker: EmbeddedBroker,
                                                                tmp_path: Path) -> None:
    now = time.time()
    events = synthetic(1500, seed=11, now=now)
    async with sink_and_workers(broker, tmp_path, 3) as (sink, workers):
        await send(sink, events[:600])
        state = await eventually(lambda: settled(workers, expected(events[:600])), 120,
                                 interval=0.5, what="three workers to count the first batch")
        # The work is shared: no worker owns every partition.
        assert sum(state["partitions"].values()) == 4
        assert max(state["partitions"].values()) < 4
        t0 = time.time()
        await eventually(lambda: published(broker.bootstrap, expected(events[:600]), t0), 60,
                         interval=0.5, what="an exact liquidation.windows snapshot")

        # kill -9 the aggregator mid-stream; the others take over its partitions and role.
        victim = next(w for w in workers if w.name == state["aggregator"])
        streaming = asyncio.create_task(send(sink, events[600:1100]))
        await asyncio.sleep(0.2)
        stop_process(victim.proc, signal.SIGKILL)
        killed_at = time.time()
        await streaming
        state = await eventually(lambda: settled(workers, expected(events[:1100])), 120,
                                 interval=0.5, what="two workers to take over")
        assert state["aggregator"] != victim.name
        handoff = time.time() - killed_at
        await eventually(lambda: published(broker.bootstrap, expected(events[:1100]),
                                           killed_at), 60, interval=0.5,
                         what="the new aggregator's exact snapshot")

        # A new worker joins; the partitions spread out again, the totals stay exact.
        workers.append(Worker(broker, tmp_path, "w3"))
        await send(sink, events[1100:])
        state = await eventually(lambda: settled(workers, expected(events)), 120,
                                 interval=0.5, what="three workers again")
        assert sum(state["partitions"].values()) == 4
        assert len([n for n, p in state["partitions"].items() if p > 0]) >= 2
        t1 = time.time()
        await eventually(lambda: published(broker.bootstrap, expected(events), t1), 60,
                         interval=0.5, what="an exact snapshot after the join")
        # Each worker checked the topics' retention at start (docs/topics.md).
        s = scrape(workers[-1].port)
        assert sample(s, "liqstress_topic_retention_seconds", topic="liquidations") == 30 * 3600
        assert sample(s, "liqstress_topic_retention_missing", topic="liquidations") == 0
        print(f"hand-off after kill -9 of the aggregator settled in {handoff:.1f}s")
