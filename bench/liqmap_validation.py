"""Out-of-sample check of the estimated liquidation map (``liqstress/liqmap.py``, docs/signals.md
section 11): do the map's largest levels near the price say where the next hours' liquidations
happen, better than bands spread evenly around the price?

Method. A recording (default: the SYNTHETIC seed scenario, ``streams.scenario.seed_scenario``,
written to a temp dir; or a path argument) goes through ``process_recording``, the parse path
of ``liqstress replay``. At each hour boundary ``t`` (epoch hours) from ``--start-hours`` (6)
after the first record on, whose next ``--hours`` (H = 4) hours are fully recorded:

* the map of every coin is built from data before ``t`` only: an ``OIHistory`` and a
  ``PriceStore`` fed with the records dated before ``t``, read by ``liqmap.map_points`` (one
  point per finished 5-minute slot over the 25 h horizon);
* realised: the liquidated USD of the next H hours per side and 0.25 % bucket (the events'
  own prices and ``notional_usd``);
* model: per side, the map's top-K buckets (K = 8, i.e. 2 % of price in all) among those
  within 5 % of the price at ``t`` (longs below it, shorts above);
* naive baseline (the gate): USD spread evenly over the same 5 % band, so any K of its buckets
  are its "top" ones: K buckets at even steps across the band;
* at-price baseline (reported, stronger on short horizons): the K buckets next to the price
  (longs: the bucket holding it and the K − 1 below; shorts: it and the K − 1 above);
* score: the share of the realised USD (both sides, all prices) that falls in the chosen
  buckets; ``ratio`` = model share / naive share, ``ratio_at_price`` = model / at-price, per
  coin, per side and overall (USD-weighted over every boundary and coin), and per boundary.

What it shows: whether the map's placement of positions (entry prices from OI increases, a
fixed leverage mix) points at the prices where liquidations follow, on the data given. On the
seed it is a test of the mechanics, not of markets: the seed's earlier hours liquidate where the
price crosses the liquidation prices of positions behind its open interest (with the seed's
own leverage mix, not the map's), its final hour is placed by the story. No real recording with
open interest is available offline; run it on one (``python bench/liqmap_validation.py
REC.jsonl``) before trusting the map. ``--raw-usd`` shows the variant that reads ΔOI as the raw
USD difference.

Usage: ``python bench/liqmap_validation.py [REC.jsonl] [--hours 4] [--top 8] [--within 5]
[--start-hours 6] [--raw-usd] [--json] [--check]``. ``--check`` exits 1 when the overall
ratio against the naive baseline is <= 1 (or undefined).
"""

from __future__ import annotations

import argparse
import bisect
import math
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liqstress.cli.pipeline import process_recording  # noqa: E402
from liqstress.liqmap import DEFAULT_MAP_CONFIG, CoinMap, MapConfig, build_map, map_points  # noqa: E402
from liqstress.oi_history import OIHistory  # noqa: E402
from liqstress.prices import PriceStore  # noqa: E402
from liqstress.signals.clusters import bucket_index  # noqa: E402
from liqstress.windows import coin_scale  # noqa: E402

#: End of the generated seed scenario (a fixed epoch hour: the run is deterministic).
SEED_END = 1_789_668_000.0
HOUR = 3600.0


def _seed_recording(tmp: Path, end: float) -> Path:
    from liqstress.streams.scenario import write_seed

    path = tmp / "seed.jsonl"
    write_seed(path, end)
    return path


def _side_buckets(cmap: CoinMap, side: str, price: float, within_pct: float, k: int,
                  bucket_pct: float) -> set[int]:
    """The map's top-k buckets of ``side`` whose midpoint is within ``within_pct`` % of
    ``price`` (longs below, shorts above)."""
    lo, hi = ((price * (1 - within_pct / 100), price) if side == "long"
              else (price, price * (1 + within_pct / 100)))
    near = [(usd, (a + b) / 2) for a, b, usd in cmap.levels(side)  # type: ignore[arg-type]
            if lo <= (a + b) / 2 <= hi]
    near.sort(key=lambda x: (-x[0], abs(x[1] - price)))
    return {bucket_index(mid, bucket_pct) for _, mid in near[:k]}


def _baseline_buckets(side: str, price: float, k: int, bucket_pct: float) -> set[int]:
    k0 = bucket_index(price, bucket_pct)
    return {k0 - i for i in range(k)} if side == "long" else {k0 + i for i in range(k)}


def _even_buckets(side: str, price: float, k: int, within_pct: float,
                  bucket_pct: float) -> set[int]:
    """The naive map: USD spread evenly over the buckets within ``within_pct`` % of ``price``
    (longs below, shorts above); any k of them are its "top" bands, so k taken at even
    steps across the band."""
    lo, hi = ((price * (1 - within_pct / 100), price) if side == "long"
              else (price, price * (1 + within_pct / 100)))
    first, last = bucket_index(lo, bucket_pct), bucket_index(hi, bucket_pct)
    n = last - first + 1
    return {first + int((i + 0.5) * n / k) for i in range(min(k, n))}


def _new_acc() -> dict[str, float]:
    return {"realised_usd": 0.0, "model_usd": 0.0, "baseline_usd": 0.0, "even_usd": 0.0}


def _shares(acc: dict[str, float]) -> dict[str, Any]:
    real = acc["realised_usd"]
    m = acc["model_usd"] / real if real > 0 else None
    b = acc["baseline_usd"] / real if real > 0 else None
    e = acc["even_usd"] / real if real > 0 else None
    return {**acc, "model_share": m, "baseline_share": b, "even_share": e,
            "ratio": m / e if m is not None and e else None,
            "ratio_at_price": m / b if m is not None and b else None}


def validate(path: str | Path | None = None, *, hours: float = 4.0, top: int = 8,
             within_pct: float = 5.0, start_hours: float = 6.0,
             config: MapConfig = DEFAULT_MAP_CONFIG, seed_end: float = SEED_END) -> dict[str, Any]:
    """Run the validation; returns per coin and overall shares (see the module doc)."""
    if path is None:
        with tempfile.TemporaryDirectory(prefix="liqmap-") as tmp:
            r = validate(_seed_recording(Path(tmp), seed_end), hours=hours, top=top,
                         within_pct=within_pct, start_hours=start_hours, config=config)
        r["recording"] = f"SYNTHETIC seed scenario (end={seed_end:.0f})"
        return r
    errors: list[str] = []
    with open(path, "rb") as fh:
        rec = process_recording(fh, lambda n, msg: errors.append(f"line {n}: {msg}"))
    ticks = sorted(rec.prices, key=lambda x: x.ts)
    ois = sorted(rec.open_interest, key=lambda x: x.ts)
    events = sorted((ev.ts, coin_scale(ev.base)[0], ev.side, ev.price / coin_scale(ev.base)[1],
                     ev.notional_usd) for ev in rec.events if ev.notional_usd is not None)
    ev_ts = [e[0] for e in events]
    firsts = [x[0].ts for x in (ticks, ois) if x]
    if not firsts or not ois:
        raise SystemExit(f"{path}: no prices or no open interest in the recording")
    first_ts = min(firsts)
    last_ts = max([ticks[-1].ts if ticks else 0.0, ois[-1].ts, ev_ts[-1] if ev_ts else 0.0,
                   rec.last_recv_ts or 0.0])
    h = hours * HOUR
    t = math.ceil((first_ts + start_hours * HOUR) / HOUR) * HOUR
    bp = config.bucket_pct

    oi_hist, store = OIHistory(), PriceStore()
    i_tick = i_oi = 0
    per_coin: dict[str, dict[str, float]] = {}
    per_side = {"long": _new_acc(), "short": _new_acc()}
    overall = _new_acc()
    evaluated = 0
    hours_out: list[float] = []
    per_hour: list[dict[str, float]] = []
    while t + h <= last_ts:
        while i_tick < len(ticks) and ticks[i_tick].ts < t:
            store.add(ticks[i_tick])
            i_tick += 1
        while i_oi < len(ois) and ois[i_oi].ts < t:
            oi_hist.apply(ois[i_oi])
            i_oi += 1
        before = dict(overall)
        realised: dict[tuple[str, str], dict[int, float]] = {}
        for _, coin, side, px, usd in events[bisect.bisect_right(ev_ts, t):
                                             bisect.bisect_right(ev_ts, t + h)]:
            cell = realised.setdefault((coin, side), {})
            k = bucket_index(px, bp)
            cell[k] = cell.get(k, 0.0) + usd
        for coin in oi_hist.coins():
            cmap = build_map(map_points(oi_hist, store, coin, t, config.horizon), config)
            if cmap.price is None:
                continue
            evaluated += 1
            acc = per_coin.setdefault(coin, _new_acc())
            for side in ("long", "short"):
                real = realised.get((coin, side), {})
                total = math.fsum(real.values())
                model = _side_buckets(cmap, side, cmap.price, within_pct, top, bp)
                base = _baseline_buckets(side, cmap.price, top, bp)
                got_m = math.fsum(real.get(k, 0.0) for k in model)
                got_b = math.fsum(real.get(k, 0.0) for k in base)
                got_e = math.fsum(real.get(k, 0.0) for k in
                                  _even_buckets(side, cmap.price, top, within_pct, bp))
                for a in (acc, per_side[side], overall):
                    a["realised_usd"] += total
                    a["model_usd"] += got_m
                    a["baseline_usd"] += got_b
                    a["even_usd"] += got_e
        hours_out.append(t)
        per_hour.append({"t": t, **{k: overall[k] - before[k] for k in overall}})
        t += HOUR
    return {
        "recording": str(path), "errors": len(errors), "hours": hours, "top": top,
        "within_pct": within_pct, "start_hours": start_hours,
        "config": {"leverage_mix": [list(x) for x in config.leverage_mix],
                   "maintenance_margin": config.maintenance_margin, "bucket_pct": bp,
                   "horizon": config.horizon, "price_neutral": config.price_neutral},
        "boundaries": len(hours_out), "maps": evaluated,
        "first_t": hours_out[0] if hours_out else None,
        "last_t": hours_out[-1] if hours_out else None,
        "coins": {c: _shares(a) for c, a in sorted(per_coin.items())},
        "sides": {s: _shares(a) for s, a in per_side.items()},
        "overall": _shares(overall),
        "per_hour": [_shares(h) | {"t": h["t"]} for h in per_hour],
    }


def _fmt(x: float | None, pct: bool = True) -> str:
    if x is None:
        return "-"
    return f"{100 * x:6.1f}%" if pct else f"{x:6.2f}"


def format_report(r: dict[str, Any]) -> str:
    lines = [f"liquidation map validation: {r['recording']}",
             f"{r['boundaries']} hour boundaries, {r['maps']} coin maps; next {r['hours']:g} h; "
             f"top-{r['top']} buckets per side within {r['within_pct']:g} % vs {r['top']} "
             f"spread evenly over that band (naive) and {r['top']} at the price; ΔOI "
             f"{'price-neutral' if r['config']['price_neutral'] else 'raw USD'}",
             "",
             f"{'':10} {'realised USD':>14} {'model':>8} {'naive':>8} {'ratio':>7} "
             f"{'at price':>9} {'ratio':>7}"]
    rows = [*r["coins"].items(), *(("side " + s, v) for s, v in r["sides"].items()),
            ("overall", r["overall"])]
    for name, v in rows:
        lines.append(f"{name:10} {v['realised_usd']:14,.0f} {_fmt(v['model_share']):>8} "
                     f"{_fmt(v['even_share']):>8} {_fmt(v['ratio'], pct=False):>7} "
                     f"{_fmt(v['baseline_share']):>9} {_fmt(v['ratio_at_price'], pct=False):>7}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Validate the estimated liquidation map against "
                                             "the next hours' liquidations (default: the "
                                             "SYNTHETIC seed scenario).")
    ap.add_argument("recording", nargs="?", help="a .jsonl recording (default: the seed)")
    ap.add_argument("--hours", type=float, default=4.0, help="realised window H (default 4)")
    ap.add_argument("--top", type=int, default=8, help="buckets per side K (default 8)")
    ap.add_argument("--within", type=float, default=5.0,
                    help="model buckets within this %% of price (default 5)")
    ap.add_argument("--start-hours", type=float, default=6.0,
                    help="first boundary this many hours after the first record (default 6)")
    ap.add_argument("--raw-usd", action="store_true",
                    help="read ΔOI as the raw USD difference (not price-neutral)")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    ap.add_argument("--check", action="store_true",
                    help="exit 1 when the overall ratio against the naive baseline is <= 1")
    args = ap.parse_args(argv)
    config = replace(DEFAULT_MAP_CONFIG, price_neutral=not args.raw_usd)
    r = validate(args.recording, hours=args.hours, top=args.top, within_pct=args.within,
                 start_hours=args.start_hours, config=config)
    if args.json:
        sys.stdout.write(orjson.dumps(r, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(format_report(r))
    ratio = r["overall"]["ratio"]
    if args.check and not (ratio is not None and ratio > 1):
        print(f"check failed: overall ratio {ratio} <= 1", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
