"""The JSON API with two `liqstress worker` processes in one group on the embedded broker:
events produced by a separate client land on partitions owned by either worker, yet both
serve the same global /api/v1/liquidations, /api/v1/largest, /api/v1/windows and
/api/v1/levels (every worker reads every partition's partials). After one worker stops, the
other still answers everything."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from liqstress.event import LiquidationEvent
from liqstress.infra.broker import EmbeddedBroker
from liqstress.windows import coin_of

from .helpers import eventually, sample, sample_sum, scrape, stop_process
from .test_worker_restart import synthetic
from .test_workers_scale import send, sink_and_workers


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=15) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def largest_ids(events: list[LiquidationEvent], n: int) -> list[str]:
    return [e.id for e in sorted(events, key=lambda e: (e.notional_usd or 0.0, e.id),
                                 reverse=True)[:n]]


def global_answer(port: int, events: list[LiquidationEvent]) -> dict[str, Any] | None:
    """The worker's API holds every event sent; None until it does."""
    _, recent = get(port, "/api/v1/liquidations?limit=500")
    if {r["id"] for r in recent["liquidations"]} != {e.id for e in events}:
        return None
    _, largest = get(port, "/api/v1/largest?window=1h&limit=20")
    if [r["id"] for r in largest["liquidations"]] != largest_ids(events, 20):
        return None
    _, windows = get(port, "/api/v1/windows?top=50")
    total = sum(r["usd"] for r in windows["rows"] if r["window"] == "1h"
                and r["scope"] == "total")
    if abs(total - sum(e.notional_usd or 0.0 for e in events)) > 1e-6 * total:
        return None
    return {"recent": recent, "largest": largest, "windows": windows}


def partitions_owned(port: int) -> float:
    return sample_sum(scrape(port), "liqstress_worker_partitions", state="ready")


@pytest.mark.timeout(240)
async def test_two_workers_both_answer_the_global_view(broker: EmbeddedBroker,
                                                       tmp_path: Path) -> None:
    now = time.time()
    events = synthetic(400, seed=5, now=now)
    async with sink_and_workers(broker, tmp_path, 2) as (sink, workers):
        # Both in the group, each owning a share of the partitions.
        await eventually(lambda: all(sample(scrape(w.port), "liqstress_worker_ready") == 1
                                     for w in workers)
                         and all(partitions_owned(w.port) >= 1 for w in workers), 120,
                         interval=0.5, what="two ready workers sharing the partitions")
        await send(sink, events)
        answers = [await eventually(lambda w=w: global_answer(w.port, events), 90,
                                    interval=0.5, what=f"{w.name}'s global answer")
                   for w in workers]
        owned = [partitions_owned(w.port) for w in workers]
        assert sum(owned) == 4 and min(owned) >= 1  # each sees events it does not own
        a, b = answers
        assert a["recent"]["liquidations"] == b["recent"]["liquidations"]
        assert a["largest"]["liquidations"] == b["largest"]["liquidations"]
        assert a["largest"]["exact"] and b["largest"]["exact"]
        assert sorted(a["recent"]["partitions"]) == [0, 1, 2, 3]
        assert [r["aggregator"] for r in (a["recent"], b["recent"])].count(True) == 1
        row = a["recent"]["liquidations"][0]
        assert set(row) >= {"exchange", "symbol", "coin", "side", "price", "qty", "usd", "ts",
                            "time", "id"}
        # The heatmap of a coin: the same on both workers, and all of its USD.
        coin = coin_of(events[0].base)
        want = sum(e.notional_usd or 0.0 for e in events if coin_of(e.base) == coin)
        levels = [get(w.port, f"/api/v1/levels?coin={coin}&hours=2")[1] for w in workers]
        assert levels[0]["cells"] == levels[1]["cells"]
        assert sum(c["usd"] for c in levels[0]["cells"]) == pytest.approx(want)
        status, err = get(workers[0].port, "/api/v1/largest?window=7h")
        assert status == 400 and "window" in err["error"]

        # One worker stops: the other takes its partitions and still answers everything.
        stop_process(workers[0].proc)
        survivor = workers[1]
        await eventually(lambda: partitions_owned(survivor.port) == 4, 90, interval=0.5,
                         what="the survivor to own every partition")
        got = await eventually(lambda: global_answer(survivor.port, events), 60,
                               interval=0.5, what="the survivor's global answer")
        assert got["largest"]["liquidations"] == a["largest"]["liquidations"]
        assert got["recent"]["aggregator"] is True
