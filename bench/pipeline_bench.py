"""Throughput of the liqstress worker against a bare Faust agent, on one embedded broker.

    /tmp/venv/bin/python bench/pipeline_bench.py [--events 20000] [--partitions 4]
        [--rounds 3] [--json]

What one run measures (see bench/README.md for how to read the numbers); phases 1 and 2 run
``--rounds`` times, interleaved, and their medians are reported:

1. ``baseline``: a bare Faust agent (own app id, own topic, same app settings as the worker)
   that only ``orjson.loads`` each record and counts it.
2. ``pipeline_live``: the real worker (``agents.app.create_app``) applying N fresh events in
   its Faust agent. The start-up rebuild is pointed at an empty read (``read_topic`` is
   replaced for this run only), otherwise the rebuild would consume the backlog and the agent
   would see nothing but duplicates. This is the like-for-like comparison with the baseline.
3. ``pipeline_startup``: the unmodified worker started on the same backlog. Its rebuild
   (a raw aiokafka read, agents/rebuild.py) applies all N; then the Faust agent reads the
   N records again from offset 0 (a new consumer group) and drops each as a duplicate.
   Both phases are timed.
4. ``store``: ``WindowStore.add`` / ``snapshot`` in-process, no Kafka, and their memory.

Every Kafka phase publishes its N records (the same bytes ``KafkaSink.event`` sends, keyed by
``exchange:symbol``) *before* its consumer starts, so only consumption is timed: from the first
record handled to the Nth. ``wall_s`` also includes the app start (group join, assignment).
``cpu_us_per_event`` is this process's CPU time over the same span (less sensitive to other
load on the machine than the wall-clock rate; the broker's CPU is not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import logging
import math
import os
import platform
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import liqstress.agents.app as worker_app
from liqstress.agents.app import create_app
from liqstress.agents.state import WorkerState
from liqstress.cli.pipeline import worker_settings
from liqstress.config import Topics
from liqstress.event import LiquidationEvent, event_from_json, make_event
from liqstress.infra.broker import EmbeddedBroker
from liqstress.infra.metrics import Metrics
from liqstress.windows import HORIZON, WindowStore

log = logging.getLogger("bench")

EXCHANGES = ("binance", "bybit", "okx", "bitget", "gate", "hyperliquid", "deribit", "bitmex",
             "kraken", "mexc")
#: 50 bases; the multiplier/k-prefixed ones exercise ``coin_of`` (1000PEPE and kPEPE -> PEPE).
BASES = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "DOT", "TRX", "LTC",
         "BCH", "NEAR", "APT", "ARB", "OP", "SUI", "TIA", "SEI", "INJ", "ATOM", "FIL", "ETC",
         "UNI", "AAVE", "MKR", "LDO", "RNDR", "FET", "WLD", "JUP", "PYTH", "ENA", "ORDI", "STX",
         "IMX", "HBAR", "ICP", "XLM", "1000PEPE", "kPEPE", "1000SHIB", "1000BONK", "1000FLOKI",
         "WIF", "TON", "NOT", "ZRO", "TAO")


# ---- synthetic data -----------------------------------------------------------------------------
@dataclass
class Dataset:
    events: list[LiquidationEvent]  # publish order, duplicates included
    payloads: list[tuple[bytes, bytes]]  # (key, value) exactly as KafkaSink.event sends them
    unique: int
    duplicates: int
    now: float


def synthetic_events(n: int, *, now: float | None = None, seed: int = 7,
                     dup_rate: float = 0.01, unpriced_rate: float = 0.05) -> Dataset:
    """``n`` records: 10 exchanges x 2 sides x 50 bases, event times spread over the last
    24 h (a quarter in the last 15 min so the 5 s buckets fill too), ~5% unpriced, and
    ``dup_rate`` of the records re-sending an earlier event (same id, same bytes)."""
    if n < 1:
        raise ValueError("n must be >= 1")
    rng = random.Random(seed)
    now = time.time() if now is None else now
    n_dup = int(n * dup_rate)
    n_unique = n - n_dup
    prices = {b: math.exp(rng.uniform(-9, 11)) for b in BASES}
    rows: list[tuple[float, int, LiquidationEvent]] = []
    for i in range(n_unique):
        base = rng.choice(BASES)
        age = rng.uniform(0, 900) if rng.random() < 0.25 else rng.uniform(0, HORIZON - 600)
        ts = now - age
        price = prices[base] * rng.uniform(0.97, 1.03)
        qty = rng.lognormvariate(0, 1.6) * 2_000 / price
        ev = make_event(exchange=rng.choice(EXCHANGES), symbol=f"{base}USDT", base=base,
                        quote="USDT", market="linear", side=rng.choice(("long", "short")),
                        price=price, qty=qty,
                        notional_usd=None if rng.random() < unpriced_rate else price * qty,
                        ts=ts, recv_ts=ts + rng.uniform(0.02, 0.8), sampled=False,
                        venue_id=f"bench-{seed}-{i}")
        rows.append((ev.recv_ts, i, ev))
    for j in range(n_dup):  # a redelivery shortly after the original
        _, _, ev = rows[rng.randrange(n_unique)]
        rows.append((ev.recv_ts + rng.uniform(0.001, 30.0), n_unique + j, ev))
    rows.sort()
    events = [ev for _, _, ev in rows]
    payloads = [(ev.key.encode(), ev.to_json()) for ev in events]
    return Dataset(events, payloads, n_unique, n_dup, now)


# ---- in-process store -----------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def bench_store(data: Dataset, min_snapshot_seconds: float = 1.0,
                repeat: int = 3) -> dict[str, Any]:
    """WindowStore without Kafka: add and decode+add rates (best of ``repeat``), median
    snapshot time, memory."""
    now = data.now + 1.0
    add_s = decode_add_s = math.inf
    rss_growth = 0
    for _ in range(repeat):  # best of ``repeat``: other processes share the 2 cores
        gc.collect()
        store = WindowStore()
        t0 = time.perf_counter()
        for ev in data.events:
            store.add(ev, now)
        add_s = min(add_s, time.perf_counter() - t0)

        gc.collect()
        rss0 = _rss_bytes()
        decoded = WindowStore()
        t0 = time.perf_counter()
        for _, value in data.payloads:
            decoded.add(event_from_json(value), now)
        decode_add_s = min(decode_add_s, time.perf_counter() - t0)
        rss_growth = max(rss_growth, _rss_bytes() - rss0)
        del decoded

    def per_call_ms(fn: Any, min_seconds: float) -> tuple[float, Any]:
        times: list[float] = []
        t_end = time.perf_counter() + min_seconds
        while len(times) < 5 or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            out = fn()
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times), out

    snapshot_ms, snap = per_call_ms(lambda: store.snapshot(now), min_snapshot_seconds)
    snapshot_msg_ms, msg = per_call_ms(lambda: orjson.dumps(store.snapshot(now).to_dict()),
                                       min_snapshot_seconds / 2)

    # Retained size of a store built from the wire bytes (ids included), and the peak on the way.
    gc.collect()
    tracemalloc.start()
    traced = WindowStore()
    for _, value in data.payloads:
        traced.add(event_from_json(value), now)
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert traced.events == store.events
    return {
        "events": store.events,
        "duplicates": store.duplicates,
        "add_eps": len(data.events) / add_s,
        "decode_add_eps": len(data.payloads) / decode_add_s,
        "buckets": store.bucket_count(),
        "snapshot_ms": snapshot_ms,
        "snapshot_message_ms": snapshot_msg_ms,
        "snapshot_message_bytes": len(msg),
        "snapshot_events": snap.events,
        "tracemalloc_store_mb": current / 2**20,
        "tracemalloc_peak_mb": peak / 2**20,
        "rss_growth_mb": rss_growth / 2**20,
        "peak_rss_mb": _peak_rss_mb(),
    }


# ---- Kafka helpers --------------------------------------------------------------------------------
async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        resp = await admin.create_topics([NewTopic(name, partitions, 1)])
        for _topic, code, *_ in resp.topic_errors:
            if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS
                raise RuntimeError(f"create topic {name}: error {code}")
    finally:
        await admin.close()


async def publish(bootstrap: str, topic: str, payloads: list[tuple[bytes, bytes]],
                  partitions: int) -> dict[str, Any]:
    """Create ``topic`` and send every record, batched (futures gathered once at the end)."""
    await create_topic(bootstrap, topic, partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                                max_batch_size=512 * 1024, request_timeout_ms=30000)
    await producer.start()
    try:
        t0 = time.perf_counter()
        futs = [await producer.send(topic, value=v, key=k) for k, v in payloads]
        results = await asyncio.gather(*futs)
        seconds = time.perf_counter() - t0
    finally:
        await producer.stop()
    last: dict[int, int] = {}
    for r in results:
        last[r.partition] = max(last.get(r.partition, -1), r.offset)
    return {"records": len(results), "seconds": seconds, "eps": len(results) / seconds,
            "last_offsets": last}


@dataclass
class Clock:
    """First/last handled record; ``done`` fires at ``target`` records (never if < 0)."""
    target: int
    n: int = 0
    first: float | None = None
    last: float | None = None
    cpu_first: float = 0.0
    cpu_last: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def hit(self) -> None:
        t, cpu = time.perf_counter(), time.process_time()
        if self.first is None:
            self.first, self.cpu_first = t, cpu
        self.last, self.cpu_last = t, cpu
        self.n += 1
        if self.n == self.target:
            self.done.set()

    def seconds(self) -> float:
        assert self.first is not None and self.last is not None
        return max(self.last - self.first, 1e-9)

    def rate(self) -> dict[str, Any]:
        """Records per wall second, and this process's CPU time per record (the broker runs
        in its own process and is not included)."""
        secs = self.seconds()
        return {"records": self.n, "consume_s": secs, "eps": self.n / secs,
                "cpu_us_per_event": (self.cpu_last - self.cpu_first) * 1e6 / self.n}


def faust_app(app_id: str, bootstrap: str, partitions: int, session_timeout: float,
              datadir: str) -> faust.App:
    """The settings ``agents.app.create_app`` uses, for the baseline."""
    return faust.App(
        app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
        autodiscover=False, topic_partitions=partitions, topic_replication_factor=1,
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=min(3.0, session_timeout / 3),
        consumer_auto_offset_reset="earliest", processing_guarantee="at_least_once",
        datadir=datadir)


async def _run_app(app: faust.App, done: asyncio.Event, timeout: float, what: str) -> float:
    """Start ``app``, wait for ``done``, stop it; returns the start time (perf_counter)."""
    t_start = time.perf_counter()
    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout)
    except TimeoutError:
        raise TimeoutError(f"{what}: not done within {timeout:.0f}s") from None
    finally:
        await app.stop()
    return t_start


# ---- 1. baseline ----------------------------------------------------------------------------------
async def run_baseline(bootstrap: str, data: Dataset, partitions: int, workdir: str,
                       run_id: str, timeout: float = 300.0) -> dict[str, Any]:
    topic_name = f"bench-{run_id}.baseline"
    pub = await publish(bootstrap, topic_name, data.payloads, partitions)
    app_id = f"bench-baseline-{run_id}"
    app = faust_app(app_id, bootstrap, partitions, worker_settings(bootstrap, True).session_timeout,
                    os.path.join(workdir, app_id))
    topic = app.topic(topic_name, value_serializer="raw", key_serializer="raw")
    clock = Clock(target=len(data.payloads))

    @app.agent(topic, name="bench-count")
    async def count(stream: Any) -> None:
        async for event in stream.events():
            orjson.loads(event.value)
            clock.hit()

    t_start = await _run_app(app, clock.done, timeout, "baseline")
    assert clock.last is not None
    return {**clock.rate(), "wall_s": clock.last - t_start, "publish": pub}


# ---- 2. the worker --------------------------------------------------------------------------------
@dataclass
class TimedState(WorkerState):
    """The worker's state, plus timestamps of the records applied during rebuild and by the
    agent (``ready`` is set between the two). Counting is events + duplicates + invalid."""
    target: int = 0
    rebuild: Clock = field(default_factory=lambda: Clock(target=-1))
    agent: Clock = field(default_factory=lambda: Clock(target=-1))
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def handled(self) -> int:
        return self.store.events + self.store.duplicates + self.invalid

    def apply_record(self, partition: int, offset: int,
                     value: bytes | None) -> LiquidationEvent | None:
        ps = self.parts.get(partition)
        clock = self.agent if ps is not None and ps.ready else self.rebuild
        ev = super().apply_record(partition, offset, value)
        clock.hit()
        if self.handled() >= self.target:
            self.done.set()
        return ev


@contextlib.contextmanager
def rebuild_reads_nothing() -> Iterator[None]:
    """Point the worker's start-up rebuild at an empty read (and keep the new group's
    committed offsets at the start) so the Faust agent does the work."""
    original = worker_app.read_topic, worker_app.commit_history_if_new

    async def empty(*_: Any, **__: Any) -> dict[int, int]:
        return {}

    worker_app.read_topic = worker_app.commit_history_if_new = empty
    try:
        yield
    finally:
        worker_app.read_topic, worker_app.commit_history_if_new = original


async def run_worker(bootstrap: str, data: Dataset, partitions: int, workdir: str, run_id: str,
                     skip_rebuild: bool, timeout: float = 300.0) -> dict[str, Any]:
    name = "live" if skip_rebuild else "startup"
    topics = Topics.with_prefix(f"bench-{run_id}.{name}.")
    pub = await publish(bootstrap, topics.events, data.payloads, partitions)
    app_id = f"bench-worker-{name}-{run_id}"
    settings = worker_settings(bootstrap, True, topics=topics, app_id=app_id,
                               partitions=partitions, datadir=os.path.join(workdir, app_id))
    metrics = Metrics.create()
    n = len(data.payloads)
    # Unmodified: the rebuild applies all n; the agent then skips the re-delivered history
    # (offsets the rebuild covered) without decoding it.
    state = TimedState(settings=settings, metrics=metrics, target=n)
    app, _ = create_app(settings, metrics, state=state)
    with rebuild_reads_nothing() if skip_rebuild else contextlib.nullcontext():
        t_start = await _run_app(app, state.done, timeout, f"worker ({name})")
    out: dict[str, Any] = {
        "events": state.store.events, "duplicates": state.store.duplicates,
        "invalid": state.invalid, "buckets": state.store.bucket_count(),
        "snapshots_published": state.snapshots_published,
        "offsets_caught_up": all(state.offsets.get(p, -1) >= o
                                 for p, o in pub["last_offsets"].items()),
        "publish": pub,
    }
    if skip_rebuild:
        assert state.agent.last is not None
        out.update(state.agent.rate(), wall_s=state.agent.last - t_start)
    else:
        rb, ag = state.rebuild, state.agent
        assert rb.first is not None and rb.last is not None
        out.update(
            rebuild_records=rb.n, rebuild_s=rb.seconds(), rebuild_eps=rb.rate()["eps"],
            agent_records=ag.n, wall_caught_up_s=rb.last - t_start, wall_s=rb.last - t_start)
    return out


# ---- all of it -------------------------------------------------------------------------------------
def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The last run's fields, with the timing ones replaced by their median over ``runs``."""
    out = dict(runs[-1])
    for k in ("eps", "consume_s", "wall_s", "cpu_us_per_event"):
        out[k] = statistics.median(r[k] for r in runs)
    out["eps_rounds"] = [r["eps"] for r in runs]
    out["runs"] = runs
    return out


async def run_bench(n: int = 20_000, partitions: int = 4, bootstrap: str | None = None,
                    seed: int = 7, rounds: int = 3, progress: bool = False,
                    store_repeat: int = 3) -> dict[str, Any]:
    """One embedded broker (unless ``bootstrap`` is given): the store phase, then ``rounds``
    interleaved baseline/live-pipeline pairs (medians reported), then the start-up path."""
    def say(msg: str) -> None:
        if progress:
            print(f"[bench] {msg}", file=sys.stderr, flush=True)

    run_id = uuid.uuid4().hex[:8]
    t0 = time.perf_counter()
    data = synthetic_events(n, seed=seed)
    say(f"{n} records ({data.unique} unique, {data.duplicates} duplicates); store phase")
    store = bench_store(data, repeat=store_repeat)
    result: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "run_id": run_id,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "faust": metadata.version("faust-streaming"),
                    "aiokafka": metadata.version("aiokafka"),
                    "orjson": metadata.version("orjson"),
                    "loadavg_at_start": list(os.getloadavg())},
        "events": n, "rounds": rounds, "unique_events": data.unique, "duplicate_records": data.duplicates,
        "partitions": partitions, "payload_bytes_avg": sum(len(v) for _, v in data.payloads) / n,
        "store": store,
    }
    emb = None
    workdir = tempfile.mkdtemp(prefix=f"liqstress-bench-{run_id}-")
    try:
        if bootstrap is None:
            emb = EmbeddedBroker(log_path=os.path.join(workdir, "tansu.log"))
            await asyncio.to_thread(emb.start)
            bootstrap = emb.bootstrap
        base_runs: list[dict[str, Any]] = []
        live_runs: list[dict[str, Any]] = []
        for i in range(rounds):  # interleaved, so load from elsewhere hits both alike
            tag = f"{run_id}-{i}"
            say(f"broker {bootstrap}; round {i + 1}/{rounds}: baseline")
            base_runs.append(await run_baseline(bootstrap, data, partitions, workdir, tag))
            say(f"round {i + 1}/{rounds}: pipeline (live path: the worker's agent applies all)")
            live_runs.append(await run_worker(bootstrap, data, partitions, workdir, tag,
                                              skip_rebuild=True))
        result["baseline"] = _summary(base_runs)
        result["pipeline_live"] = _summary(live_runs)
        result["ratio_rounds"] = [lv["eps"] / b["eps"] for b, lv in zip(base_runs, live_runs,
                                                                          strict=True)]
        say("pipeline (unmodified start-up: rebuild reads the backlog, agent skips it)")
        result["pipeline_startup"] = await run_worker(bootstrap, data, partitions, workdir,
                                                      run_id, skip_rebuild=False)
    finally:
        if emb is not None:
            await asyncio.to_thread(emb.stop)
        shutil.rmtree(workdir, ignore_errors=True)
    base = result["baseline"]["eps"]
    result["ratio_live"] = result["pipeline_live"]["eps"] / base
    result["ratio_live_cpu"] = (result["baseline"]["cpu_us_per_event"]
                                / result["pipeline_live"]["cpu_us_per_event"])
    result["ratio_rebuild"] = result["pipeline_startup"]["rebuild_eps"] / base
    result["peak_rss_mb"] = _peak_rss_mb()
    result["total_s"] = time.perf_counter() - t0
    return result


def _rounds(phase: dict[str, Any]) -> str:
    return "/".join(f"{x:,.0f}" for x in phase["eps_rounds"])


def format_report(r: dict[str, Any]) -> str:
    b, lv, su, st = r["baseline"], r["pipeline_live"], r["pipeline_startup"], r["store"]
    m = r["machine"]
    return "\n".join([
        f"liqstress pipeline bench {r['date']}: {r['events']} records "
        f"({r['unique_events']} unique, {r['duplicate_records']} duplicate), "
        f"{r['partitions']} partitions, {r['payload_bytes_avg']:.0f} B avg; "
        f"{m['cpus']} CPUs (load {m['loadavg_at_start'][0]:.2f}), Python {m['python']}, "
        f"faust {m['faust']}, aiokafka {m['aiokafka']}",
        f"publish (batched, before consuming): {b['publish']['eps']:>10,.0f} rec/s",
        f"medians of {r['rounds']} interleaved rounds:",
        f"baseline  Faust agent, orjson+count: {b['eps']:>10,.0f} ev/s  "
        f"({b['consume_s']:.2f}s consuming, {b['wall_s']:.2f}s incl. start, "
        f"{b['cpu_us_per_event']:.0f} us CPU/ev; rounds {_rounds(b)})",
        f"pipeline  worker agent (live path):  {lv['eps']:>10,.0f} ev/s  "
        f"({lv['consume_s']:.2f}s consuming, {lv['wall_s']:.2f}s incl. start, "
        f"{lv['cpu_us_per_event']:.0f} us CPU/ev; rounds {_rounds(lv)}; "
        f"{lv['events']} counted, {lv['duplicates']} duplicates)",
        f"ratio pipeline/baseline:             {r['ratio_live']:>10.2f}  "
        f"(per round {', '.join(f'{x:.2f}' for x in r['ratio_rounds'])}; "
        f"by CPU/ev {r['ratio_live_cpu']:.2f})",
        f"worker start-up on the backlog: rebuild {su['rebuild_eps']:,.0f} ev/s "
        f"({su['rebuild_s']:.2f}s, ratio {r['ratio_rebuild']:.2f}), caught up "
        f"{su['wall_caught_up_s']:.2f}s after start; the agent then skips the "
        f"re-delivered history ({su['agent_records']} records decoded)",
        f"store (in-process, best of 3): add {st['add_eps']:,.0f} ev/s, decode+add {st['decode_add_eps']:,.0f} ev/s; "
        f"snapshot {st['snapshot_ms']:.1f} ms (median) over {st['buckets']:,} buckets "
        f"(+to_dict+orjson {st['snapshot_message_ms']:.1f} ms, "
        f"{st['snapshot_message_bytes'] / 1024:.0f} KiB)",
        f"store memory: {st['tracemalloc_store_mb']:.1f} MiB retained (tracemalloc), "
        f"{st['tracemalloc_peak_mb']:.1f} MiB peak while building, RSS +{st['rss_growth_mb']:.1f} "
        f"MiB; process peak RSS {r['peak_rss_mb']:.0f} MiB; total {r['total_s']:.1f}s",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000, help="records per phase (default 20000)")
    p.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    p.add_argument("--broker", default=None, help="host:port; default: an embedded Tansu")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved baseline/pipeline pairs; medians are reported (default 3)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if min(args.events, args.partitions, args.rounds) < 1:
        p.error("--events, --partitions and --rounds must be >= 1")
    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(run_bench(args.events, args.partitions, args.broker, args.seed,
                                   args.rounds, progress=not args.json))
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode() + "\n")
    else:
        print(format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
