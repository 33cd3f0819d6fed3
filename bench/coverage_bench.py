"""Coverage benchmark, in process (no Kafka): what the windows' coverage costs the aggregator.

Every refresh the aggregator turns the newest coverage record of every venue's collectors into,
per window, the seconds each venue covers, read back or misses (``liqstress.coverage``). Every
figure is a ratio against a baseline measured in the same run:

* ``spans``: ``window_coverage`` (each venue's spans merged once, then read per window) against
  merging them again for every window (the first implementation);
* ``refresh``: ``window_coverage`` against the rest of one aggregator refresh
  (``WorkerState.refresh``: windows roll-up and stress signals) over E events.

The records are the worst case a record allows: V venues, each with its 47 down spans (the
``MAX_GAPS`` cap less the open one) and a warm start's 24 h.

Usage: ``python bench/coverage_bench.py [--venues 16] [--events 20000] [--json]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liqstress.agents.state import WorkerState  # noqa: E402
from liqstress.config import WorkerSettings  # noqa: E402
from liqstress.coverage import (  # noqa: E402
    MAX_GAPS,
    CoverageTracker,
    SourceCoverage,
    WindowCoverage,
    _VenueSpans,
    window_coverage,
)
from liqstress.event import make_event  # noqa: E402
from liqstress.infra.metrics import Metrics  # noqa: E402
from liqstress.windows import WINDOWS  # noqa: E402

T0 = 1_789_600_000.0
DAY = 86_400.0


def records(venues: int) -> tuple[list[SourceCoverage], float]:
    out = []
    for v in range(venues):
        tr = CoverageTracker(f"venue{v}", T0)
        for k in range(MAX_GAPS - 1):
            tr.set_up(True, T0 + 600 * k + 1)
            tr.set_up(False, T0 + 600 * k + 500)
        tr.set_up(True, T0 + 600 * MAX_GAPS)
        tr.backfilled, tr.backfill_state = (T0 - DAY, T0), "done"
        out.append(tr.record(T0 + 600 * (MAX_GAPS + 1)))
    return out, T0 + 600 * (MAX_GAPS + 1)


def per_window(recs: list[SourceCoverage], now: float) -> dict[str, WindowCoverage]:
    """The baseline: every venue's spans merged again for every window."""
    by_venue: dict[str, list[SourceCoverage]] = {}
    for r in recs:
        by_venue.setdefault(r.exchange, []).append(r)
    return {name: WindowCoverage(float(size), {ex: _VenueSpans.of(rs, now).window(now, size)
                                               for ex, rs in by_venue.items()})
            for name, size in WINDOWS.items()}


def worker(venues: int, events: int, now: float) -> WorkerState:
    state = WorkerState(settings=WorkerSettings(broker="x:1"), metrics=Metrics.create())
    state.fixed_now = now
    rnd = random.Random(7)
    for i in range(events):
        ts = now - rnd.random() * DAY
        usd = rnd.uniform(1e3, 1e6)
        ev = make_event(exchange=f"venue{i % venues}", symbol="BTCUSDT", base="BTC",
                        quote="USDT", market="linear", side="long" if i % 3 else "short",
                        price=60_000.0, qty=usd / 60_000.0, notional_usd=usd, ts=ts,
                        recv_ts=ts + 0.2, sampled=False, venue_id=str(i))
        state.apply(ev, partition=i % 4)
    return state


def best_of(fn: Callable[[], Any], repeat: int, number: int) -> float:
    """Seconds per call, the best of ``repeat`` runs of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t) / number)
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--venues", type=int, default=16)
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    recs, now = records(args.venues)
    once = window_coverage(recs, now, WINDOWS)
    assert {w: c.to_dict() for w, c in once.items()} == {
        w: c.to_dict() for w, c in per_window(recs, now).items()}, "the two must agree"
    t_cov = best_of(lambda: window_coverage(recs, now, WINDOWS), 5, 50)
    t_base = best_of(lambda: per_window(recs, now), 5, 50)
    state = worker(args.venues, args.events, now)
    state.refresh()  # warm
    t_refresh = best_of(state.refresh, 3, 5)
    out = {"venues": args.venues, "gaps_per_venue": MAX_GAPS - 1, "events": args.events,
           "coverage_ms": round(t_cov * 1e3, 3), "per_window_ms": round(t_base * 1e3, 3),
           "spans_ratio": round(t_cov / t_base, 3), "refresh_ms": round(t_refresh * 1e3, 3),
           "refresh_ratio": round(t_cov / t_refresh, 4)}
    if args.json:
        print(orjson.dumps(out).decode())
    else:
        print(f"coverage of {args.venues} venues x {MAX_GAPS - 1} down spans x "
              f"{len(WINDOWS)} windows: {out['coverage_ms']} ms a refresh")
        print(f"  spans:   {out['spans_ratio']}x the per-window baseline "
              f"({out['per_window_ms']} ms)")
        print(f"  refresh: {out['refresh_ratio']}x one aggregator refresh over "
              f"{args.events} events ({out['refresh_ms']} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
