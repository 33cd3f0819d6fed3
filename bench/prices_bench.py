"""Price-path benchmark, in process (no Kafka): what the prices topic costs the worker.

Every figure is a ratio against a baseline measured in the same run:

* ``memory``: ``PriceStore`` (array rings) against a plain dict-of-lists store holding the same
  5-minute (high, low, close, close_ts) slots, for C coins x 2 venues x 25 h (tracemalloc);
* ``ingest``: ``tick_from_json`` + ``PriceStore.add`` per tick against ``event_from_json`` +
  ``WindowStore.add`` per liquidation event (the worker's existing per-record cost);
* ``evaluate``: the worker's refresh (``WindowStore.snapshot`` + ``StressEngine.evaluate``) with
  prices and liquidation levels for C coins against the same refresh without them;
* ``parse``: ``binance.parse`` of one C-symbol ``!markPrice@arr@1s`` frame against one
  ``forceOrder`` frame; with one frame kept per 10 s this is the collector's added CPU.

Usage: ``python bench/prices_bench.py [--coins 600] [--json]``.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liqstress.event import event_from_json, make_event  # noqa: E402
from liqstress.prices import SLOT_SECONDS, LiquidationLevels, PriceStore, make_tick, tick_from_json  # noqa: E402
from liqstress.streams.venues import binance  # noqa: E402
from liqstress.streams.venues.base import Metadata  # noqa: E402
from liqstress.stress import StressEngine  # noqa: E402
from liqstress.windows import WindowStore, coin_scale  # noqa: E402

NOW = 1_789_670_000.0
HOURS = 25


def _coins(n: int) -> list[str]:
    return [f"C{i:04d}" for i in range(n)]


class DictStore:
    """The baseline: the same slots in dicts of lists."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], dict[int, list[float]]] = {}

    def add(self, coin: str, exchange: str, price: float, ts: float) -> None:
        slots = self.series.setdefault((coin, exchange), {})
        slot = math.floor(ts / SLOT_SECONDS)
        cell = slots.get(slot)
        if cell is None:
            slots[slot] = [price, price, price, ts]
        else:
            cell[0] = max(cell[0], price)
            cell[1] = min(cell[1], price)
            if ts >= cell[3]:
                cell[2], cell[3] = price, ts


def _traced(build: Callable[[], Any]) -> tuple[Any, int]:
    gc.collect()
    tracemalloc.start()
    obj = build()
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return obj, size


def _best(fn: Callable[[], None], repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def run(coins: int = 600, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    names = _coins(coins)
    slots = HOURS * 3600 // SLOT_SECONDS
    points = [(c, ex, 100.0 * (1 + rng.uniform(-0.05, 0.05)), NOW - k * SLOT_SECONDS - 1)
              for c in names for ex in ("binance", "hyperliquid") for k in range(slots)]

    def build_arrays() -> PriceStore:
        s = PriceStore()
        for c, ex, p, ts in points:
            s.add(make_tick(exchange=ex, symbol=c, base=c, price=p, ts=ts, recv_ts=ts))
        return s

    def build_dicts() -> DictStore:
        s = DictStore()
        for c, ex, p, ts in points:
            s.add(c, ex, p, ts)
        return s

    store, mem_arrays = _traced(build_arrays)
    _, mem_dicts = _traced(build_dicts)

    # Ingest: price ticks vs liquidation events, both from their wire bytes.
    n = 20_000
    tick_bytes = [make_tick(exchange="binance", symbol=f"{c}USDT", base=c,
                            price=100.0 + rng.random(), ts=NOW - rng.uniform(0, 3600),
                            recv_ts=NOW).to_json() for c in rng.choices(names, k=n)]
    event_bytes = [make_event(exchange="binance", symbol=f"{c}USDT", base=c, quote="USDT",
                              market="linear", side=rng.choice(("long", "short")),
                              price=100.0, qty=1.0, notional_usd=100.0 + i,
                              ts=NOW - rng.uniform(0, 3600), recv_ts=NOW,
                              sampled=False).to_json()
                   for i, c in enumerate(rng.choices(names, k=n))]

    def ingest_ticks() -> None:
        s = PriceStore()
        for b in tick_bytes:
            s.add(tick_from_json(b))

    def ingest_events() -> None:
        s = WindowStore()
        for b in event_bytes:
            s.add(event_from_json(b), NOW)

    t_ticks, t_events = _best(ingest_ticks), _best(ingest_events)

    # Refresh: evaluate with and without the price signals, on one hour of liquidations.
    windows, levels = WindowStore(), LiquidationLevels()
    for b in event_bytes:
        ev = event_from_json(b)
        if windows.add(ev, NOW):
            coin, units = coin_scale(ev.base)
            levels.add(coin, ev.price * (1 + rng.uniform(-0.02, 0.02)) / units, ev.side,
                       ev.notional_usd, ev.ts, NOW)
    allow = tuple(names[:6])

    # The baseline is the worker's refresh without prices (snapshot + signals); the price
    # signals add their work on top of it.
    def eval_plain() -> None:
        snap = windows.snapshot(NOW)
        StressEngine().evaluate(snap, windows.hourly_totals(NOW))

    def eval_prices() -> None:
        snap = windows.snapshot(NOW)
        StressEngine().evaluate(snap, windows.hourly_totals(NOW), prices=store, levels=levels,
                                coin_hourly=windows.hourly_totals_by_coin(NOW, allow),
                                coins=allow)

    t_plain, t_prices = _best(eval_plain), _best(eval_prices)

    # Collector parse: one all-market mark-price frame vs one liquidation frame.
    frame = orjson.dumps([{"e": "markPriceUpdate", "E": 1, "s": f"{c}USDT", "p": "101.5",
                           "i": "101.4", "P": "0", "r": "0.0001", "T": 2} for c in names]).decode()
    liq = orjson.dumps({"e": "forceOrder", "E": 2, "o": {
        "s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.5", "p": "60000",
        "ap": "60000", "X": "FILLED", "l": "0.5", "z": "0.5", "T": 1}}).decode()
    meta = Metadata()
    reps = 50
    t_mark = _best(lambda: [binance.parse(frame, binance.PRICES_URL, NOW, meta)
                            for _ in range(reps)]) / reps
    t_liq = _best(lambda: [binance.parse(liq, binance.WS_URL, NOW, meta)
                           for _ in range(reps * 20)]) / (reps * 20)
    return {
        "coins": coins,
        "series": store.series_count(),
        "memory": {"price_store_bytes": mem_arrays, "dict_store_bytes": mem_dicts,
                   "ratio": mem_arrays / mem_dicts,
                   "bytes_per_series": mem_arrays / max(store.series_count(), 1)},
        "ingest": {"ticks_per_s": n / t_ticks, "events_per_s": n / t_events,
                   "ratio": t_ticks / t_events},
        "evaluate": {"plain_ms": t_plain * 1000, "with_prices_ms": t_prices * 1000,
                     "ratio": t_prices / t_plain},
        "parse": {"mark_frame_ms": t_mark * 1000, "liquidation_frame_us": t_liq * 1e6,
                  "ratio": t_mark / t_liq, "cpu_share_at_1_per_10s": t_mark / 10.0,
                  "cpu_share_at_1_per_s": t_mark},
    }


def format_report(r: dict[str, Any]) -> str:
    m, i, e, p = r["memory"], r["ingest"], r["evaluate"], r["parse"]
    return "\n".join([
        f"coins: {r['coins']}  series (coin x venue): {r['series']}",
        f"memory   PriceStore {m['price_store_bytes'] / 2**20:.1f} MiB vs dict store "
        f"{m['dict_store_bytes'] / 2**20:.1f} MiB: ratio {m['ratio']:.2f} "
        f"({m['bytes_per_series'] / 1024:.1f} KiB per series)",
        f"ingest   ticks {i['ticks_per_s']:,.0f}/s vs liquidation events "
        f"{i['events_per_s']:,.0f}/s: time ratio {i['ratio']:.2f}",
        f"refresh  with prices {e['with_prices_ms']:.1f} ms vs without {e['plain_ms']:.1f} ms: "
        f"ratio {e['ratio']:.1f}",
        f"parse    markPrice frame {p['mark_frame_ms']:.2f} ms vs forceOrder frame "
        f"{p['liquidation_frame_us']:.1f} us: ratio {p['ratio']:.0f}; CPU share "
        f"{p['cpu_share_at_1_per_s'] * 100:.2f}% at 1 frame/s",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coins", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    r = run(args.coins, args.seed)
    print(orjson.dumps(r, option=orjson.OPT_INDENT_2).decode() if args.json else format_report(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
