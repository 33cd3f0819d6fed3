"""``liqstress demo``: the whole pipeline on one machine without internet (docs/demo.md).

Twelve venue simulators (``liqstress.streams.sims``) serve on loopback; ``liqstress run``'s own
code path (supervised embedded broker, worker, /metrics and the JSON API, one collector per
venue) runs with ``--venue-urls`` pointed at them. The seed scenario
(``liqstress.streams.scenario``) ending at the demo's start goes straight to Kafka through the
collectors' parse path, as ``liqstress replay`` sends a recording: that is the past 24 hours.
From then on every simulator plays a light live stream (its own frame helpers) in real time
through the real collectors, and the Binance and Hyperliquid price connections carry the
scenario's price path on.

``--history-out DIR`` also writes the worker's window series over the past 24 h, one sample
per scrape interval, as OpenMetrics, for ``promtool tsdb create-blocks-from openmetrics``:
Prometheus then has the history the spike alert's 24 h baseline needs.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import io
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from liqstress.config import Topics
from liqstress.event import LiquidationEvent
from liqstress.infra.broker import free_port, wait_for_port
from liqstress.streams.publisher import KafkaSink
from liqstress.streams.scenario import COINS, price_path, seed_scenario, to_jsonl
from liqstress.streams.sims import (
    aster,
    binance,
    binance_coinm,
    bitfinex,
    bitget,
    bitmex,
    bybit,
    deribit,
    dydx,
    gate,
    htx,
    hyperliquid,
    kraken_futures,
    lighter,
    okx,
    paradex,
)
from liqstress.streams.sims.base import VenueSim
from liqstress.streams.venues import all_venue_ids

from .pipeline import process_recording

log = logging.getLogger("liqstress.demo")

#: venue id -> (simulator factory, live tick ``(sim, i, now_ms)``): each simulator's own
#: demo tick, a liquidation or two on BTC at a time.
SIMS: dict[str, tuple[Callable[[], VenueSim], Callable[[Any, int, int], Awaitable[None]]]] = {
    "aster": (aster.AsterSim, aster._demo),
    "bitfinex": (bitfinex.BitfinexSim, bitfinex._demo),
    "lighter": (lighter.LighterSim, lighter._demo),
    "paradex": (paradex.ParadexSim, paradex._demo),
    "binance": (binance.BinanceSim, binance._demo),
    "binance-coinm": (binance_coinm.BinanceCoinmSim, binance_coinm._demo),
    "bitget": (bitget.BitgetSim, bitget._demo),
    "bitmex": (bitmex.BitmexSim, bitmex._demo),
    "bybit": (bybit.BybitSim, bybit._demo),
    "deribit": (deribit._demo_sim, deribit._demo),
    "dydx": (dydx.DydxSim, dydx._demo),
    "gate": (gate.GateSim, gate._demo),
    "htx": (htx.HtxSim, htx._demo),
    "hyperliquid": (hyperliquid.HyperliquidSim, hyperliquid._demo),
    "kraken-futures": (kraken_futures.KrakenFuturesSim, kraken_futures._demo),
    "okx": (okx.OkxSim, okx._demo),
}

#: Windows written by --history-out (the worker's ``window`` label values).
#: 1h is what the spike alert's 24 h baseline (and its recording rule) reads; every sample of
#: every window would make the file several times larger for little.
HISTORY_WINDOWS = {"1h": 3600, "24h": 86400}


def add_parser(sub: Any, add_common: Callable[..., None], adders: list[Callable[..., None]],
               env: Callable[..., Any]) -> None:
    """The ``demo`` sub-command: ``run``'s worker, storage, raw-frame and notional options
    (the broker is always the embedded one, the venues always the simulators)."""
    p = sub.add_parser("demo", help="no internet: venue simulators for every venue play the "
                       "seed scenario and a live stream through the collectors, the embedded "
                       "broker and the worker (docs/demo.md)")
    add_common(p, exchanges=False, broker=False)
    for add in adders:
        add(p)
    p.add_argument("--history-out", default=env("HISTORY_OUT"), help=(
        "directory for history.om: the worker's window series over the past 24 h as "
        "OpenMetrics, for `promtool tsdb create-blocks-from openmetrics` [env "
        "LIQSTRESS_HISTORY_OUT]"))
    p.add_argument("--history-instance", default=env("HISTORY_INSTANCE"), help=(
        "instance label of the --history-out series (default host.docker.internal:"
        "<metrics port>, the target of the README's compose override) [env "
        "LIQSTRESS_HISTORY_INSTANCE]"))
    p.add_argument("--history-step", type=float, default=env("HISTORY_STEP", "15"), help=(
        "seconds between two --history-out samples: the scrape interval (default 15) "
        "[env LIQSTRESS_HISTORY_STEP]"))
    p.add_argument("--tick", type=float, default=env("DEMO_TICK", "2"), help=(
        "seconds between two live frames of one simulator (default 2) [env "
        "LIQSTRESS_DEMO_TICK]"))


# ---- history ---------------------------------------------------------------------------------
def seed_history(end: float) -> Any:
    """The seed scenario ending at ``end`` through the collectors' parse path (FileProcessing)."""
    errors: list[str] = []
    res = process_recording(io.BytesIO(to_jsonl(seed_scenario(end))),
                            lambda n, msg: errors.append(f"line {n}: {msg}"), keep_frames=True)
    for e in errors:
        log.warning("seed: %s", e)
    return res


async def publish_history(bootstrap: str, processing: Any, topics: Topics) -> int:
    """Send the seed's frames, prices and events to Kafka as ``replay`` does."""
    sink = KafkaSink(bootstrap, topics)
    await sink.start()
    try:
        await processing.send(sink)
        await sink.flush()
    finally:
        await sink.stop()
    return len(processing.events)


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


def history_openmetrics(events: list[LiquidationEvent], end: float, step: float, job: str,
                        instance: str, exchanges: list[str]) -> str:
    """The worker's window gauges (``liqstress_window_liquidated_usd``, ``_liquidations``) and
    the ``liqstress_liquidated_usd_total`` / ``liqstress_liquidations_total`` counters at every
    ``step`` over the 24 h before ``end``, computed from the events alone (sorted prefix sums:
    the sums the worker's windows hold at each instant, without stepping a WorkerState)."""
    series: dict[tuple[str, str], tuple[list[float], list[float], list[float]]] = {}
    for ex in {e.exchange for e in events} & set(exchanges):
        for side in ("long", "short"):
            series[(ex, side)] = ([], [0.0], [0.0])
    for ev in sorted(events, key=lambda e: e.ts):
        key = (ev.exchange, ev.side)
        if key not in series:
            series[key] = ([], [0.0], [0.0])
        ts, usd, n = series[key]
        ts.append(ev.ts)
        usd.append(usd[-1] + (ev.notional_usd or 0.0))
        n.append(n[-1] + 1)
    start = end - 86400
    times = [start + i * step for i in range(int(86400 // step) + 1)]
    base = {"job": job, "instance": instance}
    out: list[str] = []

    def family(name: str, kind: str, help_: str, rows: Callable[[], list[str]]) -> None:
        out.append(f"# HELP {name} {help_}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(rows())

    def window_rows(col: int) -> list[str]:
        rows = []
        for (ex, side), cols in sorted(series.items()):
            ts, values = cols[0], cols[col]
            for window, secs in HISTORY_WINDOWS.items():
                labels = _labels(**base, exchange=ex, side=side, window=window)
                for t in times:
                    hi = bisect.bisect_right(ts, t)
                    lo = bisect.bisect_right(ts, t - secs)
                    rows.append(f"{'liqstress_window_liquidated_usd' if col == 1 else 'liqstress_window_liquidations'}"
                                f"{labels} {values[hi] - values[lo]:.2f} {t:.3f}")
        return rows

    def counter_rows(name: str, col: int) -> list[str]:
        rows = []
        for (ex, side), cols in sorted(series.items()):
            ts, values = cols[0], cols[col]
            labels = _labels(**base, exchange=ex, side=side)
            for t in times:
                rows.append(f"{name}_total{labels} {values[bisect.bisect_right(ts, t)]:.2f} "
                            f"{t:.3f}")
        return rows

    family("liqstress_window_liquidated_usd", "gauge",
           "USD liquidated in the trailing window (demo history).", lambda: window_rows(1))
    family("liqstress_liquidated_usd", "counter", "USD liquidated (demo history).",
           lambda: counter_rows("liqstress_liquidated_usd", 1))
    family("liqstress_liquidations", "counter", "Liquidations (demo history).",
           lambda: counter_rows("liqstress_liquidations", 2))
    out.append("# EOF")
    return "\n".join(out) + "\n"


def compose_files(out: Path, port: int, job: str) -> None:
    """``prometheus.yml`` (scrapes the demo on the host under the worker job, the repository's
    rules) and ``compose.demo.yml``, an override of docker-compose.yml for its Prometheus and
    Grafana: both reach the host as host.docker.internal, Grafana's JSON API datasource
    (http://worker:9464) too."""
    root = out.resolve()
    (out / "prometheus.yml").write_text(f"""# Written by `liqstress demo --history-out` (docs/demo.md).
global:
  scrape_interval: 15s
  evaluation_interval: 15s
rule_files:
  - /etc/prometheus/rules/*.yml
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["host.docker.internal:{port}"]
""")
    (out / "compose.demo.yml").write_text(f"""# Written by `liqstress demo --history-out` (docs/demo.md):
#   docker compose -f docker-compose.yml -f {root}/compose.demo.yml up -d prometheus grafana
services:
  prometheus:
    command:
      - --config.file=/etc/liqstress-demo/prometheus.yml
      - --storage.tsdb.path=/prometheus
      - --storage.tsdb.retention.time=15d
    extra_hosts: ["host.docker.internal:host-gateway"]
    volumes:
      - {root}:/etc/liqstress-demo:ro
  grafana:
    extra_hosts: ["worker:host-gateway", "host.docker.internal:host-gateway"]
""")


# ---- live ------------------------------------------------------------------------------------
#: Seconds between two malformed frames (each from the next venue in turn).
BROKEN_EVERY = 20


async def play_live(sims: dict[str, VenueSim], end: float, tick: float) -> None:
    """Every second: the Binance mark prices of the scenario's coins along its price path
    (continued past ``end``); every ``tick`` seconds per simulator, staggered: its demo tick."""
    bn = sims.get("binance")
    hl = sims.get("hyperliquid")
    i = broken = 0
    next_broken = 0.0
    order = list(sims)
    per_second = max(1, round(len(order) / max(tick, 0.1)))
    while True:
        now = time.time()
        now_ms = int(now * 1000)
        prices = {c: f"{price_path(c, end, now):.{6 if c in ('XRP', 'DOGE') else 2}f}"
                  for c in COINS}
        if bn is not None:
            await bn.push(binance.mark_prices({f"{c}USDT": p for c, p in prices.items()}, now_ms),
                          binance.MARK_PRICE_PATH)
        if hl is not None:
            await hl.push(hyperliquid.all_mids(prices))
        # Real feeds send the odd frame nobody can parse: one connected venue at a time does
        # here, so the dead-letter panels and their alert path show something too.
        connected = [v for v in order if sims[v].clients]
        if connected and now >= next_broken:
            await sims[connected[broken % len(connected)]].push(
                '{"demo": "a frame no parser accepts"')
            broken += 1
            next_broken = now + BROKEN_EVERY
        for _ in range(per_second):
            venue = order[i % len(order)]
            i += 1
            try:
                await SIMS[venue][1](sims[venue], i // len(order) + 1, now_ms)
            except Exception as exc:  # a closing client: the next tick goes on
                log.debug("demo tick %s: %s", venue, exc)
        await asyncio.sleep(1.0 - (time.time() - now) % 1.0)


async def cmd_demo(args: argparse.Namespace, run: Callable[..., Awaitable[int]]) -> int:
    from liqstress.config import parse_port

    end = float(int(time.time()))
    for noisy in ("websockets", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    port = parse_port(args.metrics_port, "metrics port")
    processing = seed_history(end)
    if args.history_out:
        out = Path(args.history_out)
        out.mkdir(parents=True, exist_ok=True)
        import tomllib
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        job = "liqstress-worker"
        if pyproject.is_file():
            job = tomllib.loads(pyproject.read_text())["tool"]["liqstress"]["prometheus"][
                "worker-job"]
        instance = args.history_instance or f"host.docker.internal:{port or 9464}"
        # End one step before the demo starts: the live scrapes take over from there.
        text = history_openmetrics(processing.events, end - args.history_step,
                                   args.history_step, job, instance, all_venue_ids())
        (out / "history.om").write_text(text)
        compose_files(out, port or 9464, job)
        print(f"liqstress: demo history (24 h, {args.history_step:g} s step) written to "
              f"{out / 'history.om'}, with prometheus.yml and compose.demo.yml "
              f"(docs/demo.md)", file=sys.stderr, flush=True)
    sims: dict[str, VenueSim] = {}
    for venue, (make, _) in SIMS.items():
        sims[venue] = await make().start()
    tasks: list[asyncio.Task[Any]] = []
    try:
        args.venue_urls = ",".join(f"{venue}.{k}={u}" for venue, sim in sims.items()
                                   for k, u in sim.urls().items())
        args.exchanges = ",".join(all_venue_ids())
        args.broker = None
        args.ephemeral = True
        if not args.broker_port:
            args.broker_port = free_port()
        bootstrap = f"127.0.0.1:{args.broker_port}"
        topics = Topics.with_prefix(args.topic_prefix)

        async def feed() -> None:
            while not await asyncio.to_thread(wait_for_port, "127.0.0.1", args.broker_port, 1):
                pass
            n = await publish_history(bootstrap, processing, topics)
            print(f"liqstress: demo: seed scenario ending {time.strftime('%H:%M:%S', time.gmtime(end))} "
                  f"UTC sent to Kafka ({n} events); simulators for {len(sims)} venues playing "
                  f"live", file=sys.stderr, flush=True)
            await play_live(sims, end, args.tick)

        tasks.append(asyncio.create_task(feed(), name="demo-feed"))
        return await run(args)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(s.stop() for s in sims.values()), return_exceptions=True)
