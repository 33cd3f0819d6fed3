"""Scaling, failover and latency of the partitioned worker, on one embedded broker.

    .venv/bin/python bench/scale_bench.py [--events 60000] [--held 1000000] [--rate 2000]
        [--seconds 20] [--json]

Every figure is measured in this run; targets are ratios against a baseline of the same run.

1. ``throughput``: N events are published, then 1, 2 and 3 ``liqstress worker`` processes (one
   app id each round, fresh topics) start on them; time from the first worker's start until
   the sum of ``liqstress_liquidations_total`` over every worker's /metrics is N. The ratio is
   against the 1-worker round.
2. ``rebuild``: per-partition rebuild rates, from the workers' own log lines.
3. ``handoff``: 3 workers; ``kill -9`` of the aggregator; seconds until another worker reports
   ``liqstress_aggregator_active 1`` and publishes a ``liquidation.windows`` snapshot.
4. ``latency``: events produced at ``--rate`` per second for ``--seconds``, each stamped with
   its send time; p50/p99 of (time a 1 worker's /metrics count first includes it − send time),
   scraped every 10 ms, against a raw aiokafka consumer of the same topic in the same run
   (p99 of receive − send), with aiokafka's default fetch wait and with the worker's.
5. ``restart``: ``--held`` events in the topic; seconds from a worker's start until
   ``liqstress_worker_ready 1`` with all of them counted; and, in process, the longest time
   one refresh holds the event loop with those events held (a 1 ms ticker measures it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from liqstress.agents.rebuild import FETCH_WAIT_MS  # noqa: E402
from liqstress.agents.state import WorkerState  # noqa: E402
from liqstress.config import Topics, WorkerSettings  # noqa: E402
from liqstress.event import make_event  # noqa: E402
from liqstress.infra.broker import EmbeddedBroker, free_port  # noqa: E402
from liqstress.infra.metrics import Metrics  # noqa: E402
from liqstress.infra.topic_admin import ensure_topics  # noqa: E402
from liqstress.topics import topic_specs  # noqa: E402

EXCHANGES = ("binance", "bybit", "okx", "deribit", "bitmex", "gate")
COINS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "PEPE", "WIF", "SUI", "ADA")
_RE_REBUILT = re.compile(r"partition (\d+): rebuilt (\d+) events in ([\d.]+)s")


def payloads(n: int, now: float, seed: int = 1, spread: float = 23 * 3600) -> list[tuple[bytes, bytes]]:
    import random
    rng = random.Random(seed)
    out = []
    for i in range(n):
        coin = rng.choice(COINS)
        ev = make_event(exchange=rng.choice(EXCHANGES), symbol=f"{coin}USDT", base=coin,
                        quote="USDT", market="linear", side=rng.choice(("long", "short")),
                        price=100.0, qty=1.0, notional_usd=round(rng.uniform(10, 10_000), 2),
                        ts=now - rng.uniform(0, spread), recv_ts=now, sampled=False,
                        venue_id=f"b{seed}-{i}")
        out.append((ev.key.encode(), ev.to_json()))
    return out


async def produce(bootstrap: str, topic: str, items: list[tuple[bytes, bytes]]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await p.start()
    try:
        futs = [await p.send(topic, key=k, value=v) for k, v in items]
        await asyncio.gather(*futs)
    finally:
        await p.stop()


def scrape(port: int) -> dict[str, float]:
    """name{labels} -> value; a bare name is the sum of its series."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        key, _, val = line.rpartition(" ")
        name = key.split("{", 1)[0]
        if key != name:
            out[key] = float(val)
        out[name] = out.get(name, 0.0) + float(val)
    return out


def try_scrape(port: int) -> dict[str, float] | None:
    try:
        return scrape(port)
    except OSError:
        return None


class Worker:
    def __init__(self, bootstrap: str, prefix: str, app_id: str, logdir: Path, name: str,
                 refresh: float = 0.5) -> None:
        self.port = free_port()
        self.log = logdir / f"{name}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "LIQSTRESS_FULL_INTERVAL": "10"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liqstress", "worker", "--broker", bootstrap,
             "--topic-prefix", prefix, "--app-id", app_id, "--metrics-port", str(self.port),
             "--metrics-host", "127.0.0.1", "--refresh-interval", str(refresh),
             "--session-timeout", "6", "--exchanges", ",".join(EXCHANGES)],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT, env=env)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rebuilds(self) -> list[tuple[int, int, float]]:
        return [(int(p), int(n), float(s)) for p, n, s in _RE_REBUILT.findall(
            self.log.read_text(errors="replace"))]


async def wait_for(check: Any, timeout: float, interval: float = 0.1) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic()
        await asyncio.sleep(interval)
    raise TimeoutError("condition not reached")


def counted(workers: list[Worker]) -> float:
    total = 0.0
    for w in workers:
        if w.proc.poll() is None:
            s = try_scrape(w.port)
            total += s.get("liqstress_liquidations_total", 0.0) if s else 0.0
    return total


async def bench_throughput(bootstrap: str, n: int, logdir: Path) -> dict[str, Any]:
    items = payloads(n, time.time())
    out: dict[str, Any] = {}
    for k in (1, 2, 3):
        prefix = f"tp{k}-{int(time.time())}."
        await ensure_topics(bootstrap, topic_specs(Topics.with_prefix(prefix), 4))
        await produce(bootstrap, f"{prefix}liquidations", items)
        t0 = time.monotonic()
        workers = [Worker(bootstrap, prefix, f"bench-tp{k}-{prefix}", logdir, f"tp{k}-{i}")
                   for i in range(k)]
        try:
            t1 = await wait_for(lambda ws=workers: counted(ws) >= n, 300, 0.2)
            rebuilt = [r for w in workers for r in w.rebuilds()]
            out[str(k)] = {"seconds": t1 - t0, "eps": n / (t1 - t0),
                           "partition_rebuild_eps": [round(c / s) for _, c, s in rebuilt if s > 0]}
        finally:
            for w in workers:
                w.stop()
    base = out["1"]["seconds"]
    for k in ("2", "3"):
        out[k]["speedup_vs_1"] = base / out[k]["seconds"]
    return out


async def bench_handoff(bootstrap: str, logdir: Path) -> dict[str, Any]:
    prefix = f"ho-{int(time.time())}."
    topics = Topics.with_prefix(prefix)
    await ensure_topics(bootstrap, topic_specs(topics, 4))
    await produce(bootstrap, topics.events, payloads(5000, time.time(), seed=2))
    workers = [Worker(bootstrap, prefix, f"bench-ho-{prefix}", logdir, f"ho-{i}")
               for i in range(3)]
    try:
        def aggregator() -> Worker | None:
            found = [w for w in workers if w.proc.poll() is None
                     and (try_scrape(w.port) or {}).get("liqstress_aggregator_active") == 1]
            return found[0] if len(found) == 1 else None
        await wait_for(lambda: counted(workers) >= 5000 and aggregator() is not None, 120)
        victim = aggregator()
        assert victim is not None
        victim.stop(signal.SIGKILL)
        killed = time.monotonic()
        await wait_for(lambda: aggregator() is not None, 120, 0.05)
        active = time.monotonic()
        new = aggregator()
        assert new is not None
        before = (try_scrape(new.port) or {}).get("liqstress_window_refresh_timestamp_seconds", 0)
        await wait_for(lambda: (try_scrape(new.port) or {}).get(
            "liqstress_window_refresh_timestamp_seconds", 0) > before, 30, 0.05)
        return {"aggregator_active_s": active - killed,
                "first_refresh_s": time.monotonic() - killed, "session_timeout_s": 6.0}
    finally:
        for w in workers:
            w.stop()


async def bench_latency(bootstrap: str, rate: int, seconds: float,
                        logdir: Path) -> dict[str, Any]:
    prefix = f"lat-{int(time.time())}."
    topics = Topics.with_prefix(prefix)
    await ensure_topics(bootstrap, topic_specs(topics, 4))
    worker = Worker(bootstrap, prefix, f"bench-lat-{prefix}", logdir, "lat", refresh=2.0)
    raw: dict[str, list[float]] = {"default": [], "short": []}

    async def raw_consumer(kind: str, stop: asyncio.Event) -> None:
        kw = {} if kind == "default" else {"fetch_max_wait_ms": FETCH_WAIT_MS}
        c = AIOKafkaConsumer(topics.events, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="latest", **kw)
        await c.start()
        try:
            while not stop.is_set():
                batch = await c.getmany(timeout_ms=200)
                now = time.time()
                for msgs in batch.values():
                    for m in msgs:
                        raw[kind].append(now - orjson.loads(m.value)["recv_ts"])
        finally:
            await c.stop()

    try:
        await wait_for(lambda: (try_scrape(worker.port) or {}).get("liqstress_worker_ready") == 1,
                       120)
        await asyncio.sleep(1.0)
        stop = asyncio.Event()
        consumers = [asyncio.create_task(raw_consumer(k, stop)) for k in raw]
        await asyncio.sleep(2.0)  # their partitions assigned and positioned at the end
        sent_at: list[float] = []
        seen: list[float] = []

        async def scraper() -> None:
            base = None
            while not stop.is_set():
                s = try_scrape(worker.port)
                t = time.time()
                if s is not None:
                    total = s.get("liqstress_liquidations_total", 0.0)
                    if base is None:
                        base = total
                    while len(seen) < total - base and len(seen) < len(sent_at):
                        seen.append(t)
                await asyncio.sleep(0.01)

        scr = asyncio.create_task(scraper())
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
        await p.start()
        n = int(rate * seconds)
        start = time.time()
        now = start
        for i in range(n):
            target = start + i / rate
            if target > time.time():
                await asyncio.sleep(target - time.time())
            now = time.time()
            ev = make_event(exchange=EXCHANGES[i % len(EXCHANGES)], symbol=f"C{i % 40}USDT",
                            base=f"C{i % 40}", quote="USDT", market="linear",
                            side="long" if i % 2 else "short", price=1.0, qty=1.0,
                            notional_usd=1.0, ts=now, recv_ts=now, sampled=False,
                            venue_id=f"lat{i}")
            sent_at.append(now)
            await p.send(topics.events, key=ev.key.encode(), value=ev.to_json())
        await p.flush()
        await p.stop()
        try:
            await wait_for(lambda: len(seen) >= n, 60, 0.05)
        except TimeoutError:
            pass
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(scr, *consumers)
        # Events are counted in order per partition but not across partitions: the count
        # reaching k is when the k-th event (by count) was visible.
        worker_lat = sorted(s - a for s, a in zip(seen, sorted(sent_at), strict=False))

        def pct(xs: list[float], q: float) -> float:
            xs = sorted(xs)
            return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")
        out = {"rate": rate, "sent": n, "achieved_rate": n / max(now - start, 1e-9),
               "counted": len(seen),
               "worker_p50_s": pct(worker_lat, 0.5), "worker_p99_s": pct(worker_lat, 0.99)}
        for kind, xs in raw.items():
            out[f"raw_{kind}_p50_s"] = pct(xs, 0.5)
            out[f"raw_{kind}_p99_s"] = pct(xs, 0.99)
            out[f"ratio_vs_raw_{kind}_p99"] = out["worker_p99_s"] / max(pct(xs, 0.99), 1e-9)
        return out
    finally:
        worker.stop()


async def bench_restart(bootstrap: str, held: int, logdir: Path) -> dict[str, Any]:
    prefix = f"rs-{int(time.time())}."
    topics = Topics.with_prefix(prefix)
    await ensure_topics(bootstrap, topic_specs(topics, 4))
    items = payloads(held, time.time(), seed=3)
    for i in range(0, held, 200_000):
        await produce(bootstrap, topics.events, items[i:i + 200_000])
    t0 = time.monotonic()
    w = Worker(bootstrap, prefix, f"bench-rs-{prefix}", logdir, "restart")
    try:
        def ready() -> bool:
            s = try_scrape(w.port) or {}
            return s.get("liqstress_worker_ready") == 1 and \
                s.get("liqstress_liquidations_total", 0) >= held
        t1 = await wait_for(ready, 300, 0.2)
        rebuilt = w.rebuilds()
    finally:
        w.stop()
    # The same events held in process: the longest time one refresh keeps the loop.
    st = WorkerState(settings=WorkerSettings(broker="x:1"), metrics=Metrics.create())
    for i, (_, v) in enumerate(items):
        st.apply_record(i % 4, i, v)
    st.refresh()  # the first one prunes what the rebuild left behind
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            gaps.append(time.perf_counter() - t)
    stop = asyncio.Event()
    tick = asyncio.create_task(ticker(stop))
    await asyncio.sleep(0.05)
    r0 = time.perf_counter()
    await st.refresh_async()
    refresh_s = time.perf_counter() - r0
    stop.set()
    await tick
    return {"held": held, "ready_s": t1 - t0,
            "rebuild_eps_per_partition": [round(c / s) for _, c, s in rebuilt if s > 0],
            "refresh_s": refresh_s, "refresh_max_loop_block_ms": max(gaps) * 1000,
            "buckets": st.store.bucket_count()}


def say(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    logdir = Path(tempfile.mkdtemp(prefix="liqstress-scale-"))
    result: dict[str, Any] = {"cpus": os.cpu_count(), "logs": str(logdir)}
    with EmbeddedBroker(log_path=str(logdir / "tansu.log")) as broker:
        say("throughput with 1, 2, 3 workers")
        result["throughput"] = await bench_throughput(broker.bootstrap, args.events, logdir)
        say("hand-off after kill -9 of the aggregator")
        result["handoff"] = await bench_handoff(broker.bootstrap, logdir)
        say("latency")
        result["latency"] = await bench_latency(broker.bootstrap, args.rate, args.seconds,
                                                logdir)
    if args.held:
        with EmbeddedBroker(log_path=str(logdir / "tansu-restart.log")) as broker:
            say(f"restart with {args.held} events held")
            result["restart"] = await bench_restart(broker.bootstrap, args.held, logdir)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=60_000)
    ap.add_argument("--held", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    res = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(res, indent=2))
        return
    tp = res["throughput"]
    for k in ("1", "2", "3"):
        r = tp[k]
        extra = f"  speedup {r['speedup_vs_1']:.2f}" if "speedup_vs_1" in r else ""
        print(f"throughput  {k} worker(s): {r['eps']:>9,.0f} ev/s ({r['seconds']:.1f}s){extra}")
    rb = [x for k in tp for x in tp[k]["partition_rebuild_eps"]]
    if rb:
        print(f"rebuild     per partition: median {statistics.median(rb):,.0f} ev/s")
    h = res["handoff"]
    print(f"hand-off    aggregator active after {h['aggregator_active_s']:.1f}s, first "
          f"refresh {h['first_refresh_s']:.1f}s (session timeout {h['session_timeout_s']:.0f}s)")
    lat = res["latency"]
    print(f"latency     {lat['achieved_rate']:,.0f} ev/s: worker p50 {lat['worker_p50_s']:.3f}s "
          f"p99 {lat['worker_p99_s']:.3f}s; raw aiokafka p99 {lat['raw_default_p99_s']:.3f}s "
          f"(ratio {lat['ratio_vs_raw_default_p99']:.2f}), with a {FETCH_WAIT_MS} ms fetch wait "
          f"{lat['raw_short_p99_s']:.3f}s (ratio {lat['ratio_vs_raw_short_p99']:.2f})")
    if "restart" in res:
        r = res["restart"]
        print(f"restart     {r['held']:,} events held: ready in {r['ready_s']:.1f}s; refresh "
              f"{r['refresh_s']:.2f}s, longest loop block {r['refresh_max_loop_block_ms']:.0f} ms "
              f"({r['buckets']:,} buckets)")


if __name__ == "__main__":
    main()
