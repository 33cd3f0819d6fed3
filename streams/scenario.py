"""The seed scenario: a SYNTHETIC recording of the article's hour, as venue-native frames.

Nothing here was captured from an exchange. Every frame is generated from a fixed random seed in
the exact wire format each venue's parser accepts (``streams/venues/*.py``), stamped with that
venue's real websocket or REST URL as its ``source`` so it replays through the same code path as
a live recording. Use it for demos, dashboards and end-to-end tests; never as market data.
``docs/scenario.md`` describes the story and the signal readings it must produce.

The story, for the 24 h before ``end``:

* the final hour holds about $230M of LONG liquidations against about $3.5M of shorts, spread
  over seven venues, Hyperliquid (~$59M) and Binance (~$36M) the two largest;
* in that hour prices are range-bound (a ~1.2% range per coin) and every long is liquidated
  within 0.8% of the hour's local low, in three dips to the low (the last one still running
  at ``end``); shorts are liquidated near the high;
* the 23 hours before hold four earlier, smaller and separated waves ($46M-$85M) on a calm
  baseline of $2-5M an hour, while prices drift down about 6%: leverage reduced in stages, the
  big hour is not more than half of the day;
* Binance ``!markPrice@arr@1s`` frames every 30 s for all 25 hours: each hour swings less than
  the one before (the range shrinks from about 3% to the final hour's 1.2% while liquidations
  grow), the final hour touches its low at the centre of each dip;
* open interest and funding polls of Bybit (linear tickers) and Hyperliquid
  (``metaAndAssetCtxs``) every 5 minutes: open interest (in coins) builds up 65% in the first
  four hours of the day while funding runs hot (0.04% per 8 h), then falls in stages with each
  liquidation wave (``OI_DROPS``): leverage built up, then reduced in stages;
* the earlier hours' liquidations happen where the price crosses the liquidation prices of the
  positions behind that open interest (``position_crossings``, with the scenario's own
  ``POSITION_MIX``), at the price of that moment;
* four smaller venues, Aster, Lighter, Bitfinex and Paradex, take 4/3/3/2 % of every earlier
  hour's USD (``EARLIER_ADDED_VENUE_WEIGHTS``) from the seven, so each hour's total stays; they
  have no final-hour liquidations.

Venue specifics honoured: Binance pushes at most one liquidation per symbol per second (event
times are spread to distinct seconds); Hyperliquid's default source counts public trades with an
HLP liquidator vault as a counterparty (vault buys a liquidated long), after its
``{"type":"meta"}`` REST body and one subscribe ack per coin; OKX gets its instruments bodies
and its subscribe ack before any event (it drops events dated before the ack); Bybit gets its
instruments-info bodies; Gate its contracts body; HTX frames are gzip-compressed. Aster gets
its exchangeInfo body and SUBSCRIBE ack and throttles as Binance does; Bitfinex its greeting and
``liq:global`` ack (it drops events dated before it); Lighter its ``orderBookDetails`` body,
greeting and one empty ``subscribed/trade`` ack per market; Paradex, a polled venue, its markets
body, then one trade page per market and poll minute under its ``poll+`` source.

CLI: ``python -m liqstress.streams.scenario OUT.jsonl [--end EPOCH] [--seed N]``.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from liqstress.liqmap import MapBuilder, MapConfig
from liqstress.recording import RawFrame
from liqstress.streams.sims import aster as aster_sim
from liqstress.streams.sims import bitfinex as bitfinex_sim
from liqstress.streams.sims import lighter as lighter_sim
from liqstress.streams.sims import paradex as paradex_sim
from liqstress.streams.venues import (
    aster,
    binance,
    bitfinex,
    bitget,
    bybit,
    gate,
    htx,
    hyperliquid,
    lighter,
    okx,
    paradex,
)
from liqstress.streams.venues.base import Metadata

VENUES: tuple[str, ...] = ("binance", "hyperliquid", "bybit", "okx", "gate", "bitget", "htx",
                           "aster", "bitfinex", "lighter", "paradex")

#: USD of LONG liquidations per venue in the final hour (total 230M).
FINAL_HOUR_LONGS: dict[str, float] = {
    "binance": 36_000_000.0, "hyperliquid": 59_000_000.0, "bybit": 34_000_000.0,
    "okx": 33_000_000.0, "gate": 28_000_000.0, "bitget": 26_000_000.0, "htx": 14_000_000.0,
}
#: USD of SHORT liquidations per venue in the final hour (total 3.5M).
FINAL_HOUR_SHORTS: dict[str, float] = {
    "binance": 800_000.0, "hyperliquid": 500_000.0, "bybit": 700_000.0, "okx": 600_000.0,
    "gate": 350_000.0, "bitget": 350_000.0, "htx": 200_000.0,
}
#: Earlier waves: hours before the final hour (1 = the hour just before it) -> USD, both sides.
WAVES: dict[int, float] = {19: 46_000_000.0, 13: 58_000_000.0, 8: 72_000_000.0,
                           3: 85_000_000.0}
WAVE_LONG_SHARE = 0.8
#: Calm hours: total USD per hour drawn uniformly from this range; long share 45-65%.
BASELINE_USD = (2_000_000.0, 5_000_000.0)
#: Venue split of the earlier hours among the story's seven venues, ...
EARLIER_VENUE_WEIGHTS: dict[str, float] = {
    "binance": 0.25, "bybit": 0.20, "okx": 0.15, "hyperliquid": 0.15, "gate": 0.10,
    "bitget": 0.10, "htx": 0.05,
}
#: ... of which the venues added to the seed later (issue 14) take these shares of every
#: earlier hour's USD (both sides), the seven keeping the rest pro rata (x 0.88): every hour's
#: total stays, so spike, deleveraging and divergence read as before. Smaller venues, and none
#: in the final hour, whose story (venues, amounts, top two) predates them.
EARLIER_ADDED_VENUE_WEIGHTS: dict[str, float] = {
    "aster": 0.04, "lighter": 0.03, "bitfinex": 0.03, "paradex": 0.02,
}
#: Hours of history before the final hour (the spike baseline uses 24).
HISTORY_HOURS = 24

#: coin -> (final hour's local low, weight in the notional). Synthetic levels.
COINS: dict[str, tuple[float, float]] = {
    "BTC": (61_200.0, 0.42), "ETH": (2_380.0, 0.30), "SOL": (131.5, 0.14),
    "XRP": (2.06, 0.08), "DOGE": (0.171, 0.06),
}
#: Final hour: the high is this many percent above the low (range-bound).
RANGE_PCT = 1.2
#: Final hour: longs are liquidated at most this many percent above the low.
NEAR_LOW_PCT = 0.8
#: Final hour: shorts are liquidated at most this many percent below the high.
NEAR_HIGH_PCT = 0.4
#: Final hour: centres (seconds before ``end``), half-width and long weight of the dips.
DIPS: tuple[tuple[float, float, float], ...] = ((2880.0, 150.0, 0.30), (1620.0, 150.0, 0.30),
                                                (150.0, 130.0, 0.25))
#: Event times keep clear of the hour edges (minute buckets) and of ``end``.
FINAL_SPAN = (20.0, 3480.0)
EARLIER_SPAN = (120.0, 3480.0)
#: Seconds between mark-price frames (a multiple of 10 that divides every dip centre).
PRICE_STEP = 30
#: Open interest: USD per coin and venue at the start of the day (synthetic; the scenario holds
#: it in COINS, this USD at the day's first price, so a price move alone never reads as
#: positions opened or closed), ...
OI_BASE_USD: dict[str, dict[str, float]] = {
    "bybit": {"BTC": 5.0e9, "ETH": 3.0e9, "SOL": 1.0e9, "XRP": 0.6e9, "DOGE": 0.4e9},
    "hyperliquid": {"BTC": 4.0e9, "ETH": 2.0e9, "SOL": 0.8e9, "XRP": 0.4e9, "DOGE": 0.3e9},
}
#: ... rising by this share over the first OI_BUILDUP_HOURS hours of the day, ...
OI_BUILDUP = 0.65
OI_BUILDUP_HOURS = 4
#: ... then falling by these shares in the hour of each wave (hours before the final hour;
#: 0 = the final hour): separate drops, none dominant (staged deleveraging by OI).
OI_DROPS: dict[int, float] = {19: 0.04, 13: 0.05, 8: 0.05, 3: 0.06, 0: 0.07}
#: Seconds between open-interest polls in the scenario (the live default is 60).
OI_STEP = 300
#: Funding per 8 hours (positive: longs pay, the crowded side).
OI_FUNDING_8H = 0.0004
#: The positions behind the open interest (docs/scenario.md, "Positions"): every rise of open
#: interest opens longs and shorts at the price of the moment with this leverage mix and
#: maintenance margin (the scenario's own; deliberately NOT the liquidation map's documented
#: mix), and the earlier hours' liquidations happen where the price crosses their liquidation
#: prices, stepped every POSITION_STEP seconds.
POSITION_MIX: tuple[tuple[float, float], ...] = (
    (3.0, 0.15), (8.0, 0.30), (20.0, 0.30), (40.0, 0.15), (75.0, 0.10))
POSITION_MM = 0.004
POSITION_STEP = 30
#: Earlier hour k's price swings +/- this many percent around its level: wider further back.
SWING_PCT = (0.6, 0.08)  # a + b*k

_PRICE_DECIMALS = {"BTC": 1, "ETH": 2, "SOL": 3, "XRP": 4, "DOGE": 5}
_QTY_DECIMALS = {"BTC": 3, "ETH": 2, "SOL": 1, "XRP": 0, "DOGE": 0}
_OKX_CT_VAL = {"BTC": "0.01", "ETH": "0.1", "SOL": "1", "XRP": "100", "DOGE": "1000"}
_GATE_MULT = {"BTC": "0.0001", "ETH": "0.01", "SOL": "1", "XRP": "10", "DOGE": "10"}
_HTX_CONTRACT = {"BTC": 0.001, "ETH": 0.01, "SOL": 1.0, "XRP": 10.0, "DOGE": 100.0}
_LIQUIDATOR_VAULTS = sorted(hyperliquid.LIQUIDATORS)
#: Lighter's market ids of the coins (as on mainnet: one trade channel per market).
_LIGHTER_MARKETS = {"ETH": 0, "BTC": 1, "SOL": 2, "DOGE": 3, "XRP": 7}
#: Bitfinex's chanId of the liq:global subscription (any, as the venue assigns it).
_BITFINEX_CHAN = 386841


@dataclass(frozen=True, slots=True)
class Liq:
    """One planned liquidation: the POSITION side, its USD size and event time."""

    venue: str
    coin: str
    side: str
    usd: float
    price: float
    ts: float


def hour_level(coin: str, k: int) -> float:
    """Earlier hour ``k`` (hours before the final hour)'s mid price: drifts down into the end."""
    return COINS[coin][0] * (1.006 + 0.0022 * k)


def price_path(coin: str, end: float, t: float) -> float:
    """The scenario's mark price of ``coin`` at time ``t`` (synthetic, deterministic)."""
    low = COINS[coin][0]
    age = end - t  # seconds before end
    if age <= 3600:
        # Final hour: range-bound in [low, low*(1+RANGE_PCT%)], dipping to the low at each dip.
        # It opens at its high (u = 1 at age 3600) and swings with a 15-minute period, so the
        # "price 1 h ago" (the close of the 5-minute slot holding end - 3600, i.e. a tick
        # 0-270 s into the hour) is at u >= 0.47, above the last dip's close at end - 30
        # (u = 0.28), whatever the slot grid's phase: breadth 1 h does not depend on ``end``.
        u = 0.6 + 0.4 * math.cos(2 * math.pi * (3600.0 - age) / 900.0)
        for centre, half, _ in DIPS:
            u = min(u, abs(age - centre) / (half + 300.0))
        return low * (1 + RANGE_PCT / 100 * max(0.0, min(1.0, u)))
    k = math.ceil((age - 3600) / 3600)
    swing = (SWING_PCT[0] + SWING_PCT[1] * k) / 100
    # Two swings an hour, highs 7.5 and 37.5 min into it, lows 22.5 and 52.5 min in. The
    # hour's first 5 minutes stay between its level and its high: an hourly range read on the
    # 5-minute slot grid takes up to 300 s of the next-older hour, and that start is inside
    # the older (higher, wider) hour's range, so each reading is this hour's own range for
    # any ``end``.
    return hour_level(coin, k) * (1 - swing * math.sin(4 * math.pi * (age % 3600) / 3600))


def local_extremes() -> dict[str, tuple[float, float]]:
    """coin -> (local low, local high) of the final hour (the 24 h low as well)."""
    return {c: (low, low * (1 + RANGE_PCT / 100)) for c, (low, _) in COINS.items()}


def _split(total: float, n: int, rng: random.Random) -> list[float]:
    w = [rng.lognormvariate(0.0, 0.9) for _ in range(n)]
    s = sum(w)
    return [total * x / s for x in w]


def _coin(rng: random.Random) -> str:
    return rng.choices(list(COINS), weights=[w for _, w in COINS.values()])[0]


def _final_hour_ts(end: float, side: str, rng: random.Random, frac: float) -> float:
    """Event time of a final-hour liquidation. ``frac`` is the share of the venue's final-hour
    USD of that side before this event: longs are assigned to the dips by it (the running dip
    first, then the older dips, then the rest of the hour), so every dip holds its exact
    ``DIPS`` weight of each venue's USD. The running dip is filled from its young edge by USD,
    so its USD per second is even: at least ``weight * 30 / (2 * half)`` of every venue's
    longs fall in the last 50 s before ``end``, whatever the seed (the cascade). The random
    draws are the same as before either way, so the other fields do not depend on this."""
    lo, hi = FINAL_SPAN
    if side == "long":
        rng.random()  # kept: the draws after it (sizes, coins, prices, earlier hours) stay put
        start = 0.0
        for centre, half, weight in (DIPS[-1], *DIPS[:-1]):
            if frac < start + weight:
                off = rng.uniform(-half, half)
                if centre == DIPS[-1][0]:
                    off = -half + 2 * half * (frac - start) / weight
                return end - min(hi, max(lo, centre + off))
            start += weight
    return end - rng.uniform(lo, hi)


def plan(end: float, seed: int = 7) -> list[Liq]:
    """Every liquidation of the scenario, before it is written as venue frames."""
    rng = random.Random(seed)
    extremes = local_extremes()
    liqs: list[Liq] = []
    for venue in FINAL_HOUR_LONGS:  # the final hour's seven; the added venues sit it out
        for side, target, avg in (("long", FINAL_HOUR_LONGS[venue], 150_000.0),
                                  ("short", FINAL_HOUR_SHORTS[venue], 20_000.0)):
            done = 0.0
            for usd in _split(target, max(5, round(target / avg)), rng):
                frac, done = done / target, done + usd
                coin = _coin(rng)
                low, high = extremes[coin]
                if side == "long":
                    price = low * (1 + NEAR_LOW_PCT / 100 * rng.random() ** 2)
                else:
                    price = high * (1 - NEAR_HIGH_PCT / 100 * rng.random())
                liqs.append(Liq(venue, coin, side, usd, price,
                                _final_hour_ts(end, side, rng, frac)))
    crossed = _HourCrossings(end)
    place = random.Random(seed * 31 + 5)
    # The added venues draw from their own generators, so the draws of the original seven
    # (sizes, coins, prices, times, placements) are the ones they always were.
    extra, extra_place = random.Random(seed * 53 + 11), random.Random(seed * 97 + 13)
    carve = 1.0 - sum(EARLIER_ADDED_VENUE_WEIGHTS.values())
    for k in range(1, HISTORY_HOURS + 1):
        wave = WAVES.get(k)
        total = wave if wave is not None else rng.uniform(*BASELINE_USD)
        long_share = WAVE_LONG_SHARE if wave is not None else rng.uniform(0.45, 0.65)
        avg = 150_000.0 if wave is not None else 40_000.0
        hour = (k, end - 3600 * (k + 1) + EARLIER_SPAN[0], end - 3600 * k - EARLIER_SPAN[0])
        for venue, vw in EARLIER_VENUE_WEIGHTS.items():
            for side, share in (("long", long_share), ("short", 1 - long_share)):
                usd_total = total * vw * share
                # The count comes from the unscaled USD: the same number of draws as before
                # the added venues took their share, only each size is smaller.
                for usd in _split(usd_total * carve, max(1, round(usd_total / avg)), rng):
                    liqs.append(_earlier_liq(venue, side, usd, hour, end, crossed, rng, place))
        for venue, vw in EARLIER_ADDED_VENUE_WEIGHTS.items():
            for side, share in (("long", long_share), ("short", 1 - long_share)):
                usd_total = total * vw * share
                for usd in _split(usd_total, max(1, round(usd_total / avg)), extra):
                    liqs.append(_earlier_liq(venue, side, usd, hour, end, crossed, extra,
                                             extra_place))
    return liqs


class _HourCrossings:
    """``position_crossings`` of every coin, cut once per (coin, side, hour) into the crossing
    times and their cumulative USD: each earlier-hour event draws from its hour's cut."""

    def __init__(self, end: float) -> None:
        self.all = {c: position_crossings(c, end) for c in COINS}
        self._cuts: dict[tuple[str, str, float, float], tuple[list[float], list[float]]] = {}

    def cut(self, coin: str, side: str, lo: float, hi: float) -> tuple[list[float], list[float]]:
        key = (coin, side, lo, hi)
        got = self._cuts.get(key)
        if got is None:
            inside = [(t, u) for t, u in self.all[coin][side] if lo <= t <= hi]
            got = self._cuts[key] = ([t for t, _ in inside],
                                     list(itertools.accumulate(u for _, u in inside)))
        return got


def _earlier_liq(venue: str, side: str, usd: float, hour: tuple[int, float, float], end: float,
                 crossed: _HourCrossings, rng: random.Random, place: random.Random) -> Liq:
    """One liquidation of earlier hour ``hour`` = (k, first, last usable time)."""
    k, lo, hi = hour
    coin = _coin(rng)
    level = hour_level(coin, k)
    price = level * (1 + rng.uniform(-0.004, 0.004))
    ts = end - 3600 * k - rng.uniform(*EARLIER_SPAN)
    # Where the hour crossed positions' liquidation prices, the liquidation happens at such a
    # crossing (drawn by the USD crossed), at the price of that moment; an hour that crossed
    # none keeps the drawn price and time.
    times, cum_usd = crossed.cut(coin, side, lo, hi)
    if times:
        ts = place.choices(times, cum_weights=cum_usd)[0] - place.uniform(0.0, POSITION_STEP)
        price = price_path(coin, end, ts)
    return Liq(venue, coin, side, usd, price, ts)


def oi_coins(venue: str, coin: str, end: float, t: float) -> float:
    """Open interest of ``coin`` on ``venue`` at ``t``, in coins."""
    return OI_BASE_USD[venue][coin] * oi_level(end, t) / price_path(coin, end, end - 86400)


def position_crossings(coin: str, end: float) -> dict[str, list[tuple[float, float]]]:
    """Per side, ``[(t, usd), ...]``: the USD of the scenario's positions (``POSITION_MIX``
    opened on every rise of open interest, closed pro rata on every fall) whose liquidation
    price the price path crossed in the ``POSITION_STEP`` seconds up to ``t``."""
    builder = MapBuilder(MapConfig(leverage_mix=POSITION_MIX, maintenance_margin=POSITION_MM,
                                   horizon=float(HISTORY_HOURS + 2) * 3600))
    out: dict[str, list[tuple[float, float]]] = {"long": [], "short": []}
    t = end - (HISTORY_HOURS + 1) * 3600 - 600
    prev: float | None = None
    while t <= end:
        px = price_path(coin, end, t)
        coins = sum(oi_coins(v, coin, end, t) for v in OI_BASE_USD)
        before = dict(builder.crossed)
        low, high = (px, px) if prev is None else (min(px, prev), max(px, prev))
        builder.step(t, coins * px, px, low, high, coins)
        for side in ("long", "short"):
            if builder.crossed[side] > before[side]:
                out[side].append((t, builder.crossed[side] - before[side]))
        prev = px
        t += POSITION_STEP
    return out


# ---- venue-native frames ------------------------------------------------------------------

def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _px(coin: str, price: float) -> str:
    return f"{price:.{_PRICE_DECIMALS[coin]}f}"


def _qty(coin: str, usd: float, price: float) -> str:
    d = _QTY_DECIMALS[coin]
    q = max(round(usd / price, d), 10.0 ** -d)
    return f"{q:.{d}f}"


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


def _spread_binance(liqs: list[Liq], end: float) -> list[Liq]:
    """Binance pushes at most one liquidation per symbol per second: move clashing events to
    the nearest free second (never after ``end - 1``)."""
    used: set[tuple[str, int]] = set()
    out = []
    for liq in sorted(liqs, key=lambda x: x.ts):
        sec, frac = int(math.floor(liq.ts)), liq.ts - math.floor(liq.ts)
        for step in range(10_000):
            cand = sec + (step + 1) // 2 * (1 if step % 2 else -1)
            if (liq.coin, cand) not in used and cand + frac <= end - 2:
                break
        used.add((liq.coin, cand))
        out.append(Liq(liq.venue, liq.coin, liq.side, liq.usd, liq.price, cand + frac))
    return out


def _binance(liq: Liq, rng: random.Random) -> RawFrame:
    t = _ms(liq.ts)
    qty, px = _qty(liq.coin, liq.usd, liq.price), _px(liq.coin, liq.price)
    text = _dumps({"e": "forceOrder", "E": t + 900, "o": {
        "s": f"{liq.coin}USDT", "S": "SELL" if liq.side == "long" else "BUY", "o": "LIMIT",
        "f": "IOC", "q": qty, "p": px, "ap": px, "X": "FILLED", "l": qty, "z": qty, "T": t}})
    return RawFrame("binance", binance.WS_URL, liq.ts + 0.95, text)


def _hyperliquid(liq: Liq, rng: random.Random, tid: int) -> RawFrame:
    vault = rng.choice(_LIQUIDATOR_VAULTS)
    trader = "0x" + "".join(rng.choice("0123456789abcdef") for _ in range(40))
    # The vault takes the position over: it BUYS a liquidated long, SELLS a liquidated short.
    buyer, seller = (vault, trader) if liq.side == "long" else (trader, vault)
    text = _dumps({"channel": "trades", "data": [{
        "coin": liq.coin, "side": "A" if liq.side == "long" else "B",
        "px": _px(liq.coin, liq.price), "sz": _qty(liq.coin, liq.usd, liq.price),
        "time": _ms(liq.ts), "hash": f"0x{tid:064x}", "tid": tid, "users": [buyer, seller]}]})
    return RawFrame("hyperliquid", hyperliquid.WS_URL, liq.ts + 0.4, text)


def _bybit(liq: Liq, rng: random.Random) -> RawFrame:
    t = _ms(liq.ts)
    sym = f"{liq.coin}USDT"
    text = _dumps({"topic": f"{bybit.TOPIC}{sym}", "type": "snapshot", "ts": t + 300, "data": [
        {"T": t, "s": sym, "S": "Buy" if liq.side == "long" else "Sell",
         "v": _qty(liq.coin, liq.usd, liq.price), "p": _px(liq.coin, liq.price)}]})
    return RawFrame("bybit", bybit.WS_LINEAR, liq.ts + 0.35, text)


def _okx(liq: Liq, rng: random.Random) -> RawFrame:
    ct = float(_OKX_CT_VAL[liq.coin])
    sz = max(round(liq.usd / (liq.price * ct), 2), 0.01)
    inst = f"{liq.coin}-USDT-SWAP"
    text = _dumps({"arg": {"channel": okx.CHANNEL, "instType": "SWAP"}, "data": [{
        "details": [{"bkLoss": "0", "bkPx": _px(liq.coin, liq.price), "ccy": "",
                     "posSide": liq.side, "side": "sell" if liq.side == "long" else "buy",
                     "sz": f"{sz:.2f}", "ts": str(_ms(liq.ts))}],
        "instFamily": f"{liq.coin}-USDT", "instId": inst, "instType": "SWAP",
        "uly": f"{liq.coin}-USDT"}]})
    return RawFrame("okx", okx.WS_URL, liq.ts + 0.5, text)


def _gate(liq: Liq, rng: random.Random) -> RawFrame:
    contracts = max(1, round(liq.usd / (liq.price * float(_GATE_MULT[liq.coin]))))
    t = _ms(liq.ts)
    text = _dumps({"time": (t + 400) // 1000, "time_ms": t + 400, "channel": gate.CHANNEL,
                   "event": "update", "result": [{
                       "price": _px(liq.coin, liq.price),
                       "size": contracts if liq.side == "long" else -contracts,
                       "time": t, "contract": f"{liq.coin}_USDT"}]})
    return RawFrame("gate", gate.WS_URL, liq.ts + 0.45, text)


def _bitget(liq: Liq, rng: random.Random) -> RawFrame:
    t = _ms(liq.ts)
    text = _dumps({"action": "update", "arg": {"instType": "usdt-futures", "topic": bitget.TOPIC},
                   "data": [{"symbol": f"{liq.coin}USDT",
                             "side": "buy" if liq.side == "long" else "sell",
                             "price": _px(liq.coin, liq.price), "amount": f"{liq.usd:.2f}",
                             "ts": str(t)}], "ts": t + 200})
    return RawFrame("bitget", bitget.WS_URL, liq.ts + 0.25, text)


def _htx(liq: Liq, rng: random.Random) -> RawFrame:
    cs = _HTX_CONTRACT[liq.coin]
    volume = max(1, round(liq.usd / (liq.price * cs)))
    amount = volume * cs
    price = round(liq.price, _PRICE_DECIMALS[liq.coin])
    contract = f"{liq.coin}-USDT"
    t = _ms(liq.ts)
    text = _dumps({"op": "notify", "topic": f"public.{contract}.liquidation_orders",
                   "ts": t + 5, "data": [{
                       "symbol": liq.coin, "contract_code": contract,
                       "direction": "sell" if liq.side == "long" else "buy", "offset": "close",
                       "volume": volume, "price": price, "created_at": t,
                       "amount": round(amount, 6), "trade_turnover": round(amount * price, 4),
                       "contract_type": "swap", "pair": contract, "business_type": "swap",
                       "trade_partition": "USDT"}]})
    return RawFrame("htx", htx.WS_URL, liq.ts + 0.3, gzip.compress(text.encode(), mtime=0))


def _aster(liq: Liq) -> RawFrame:
    """Binance's forceOrder payload (Aster mirrors it), from the simulator's builder."""
    text = aster_sim.force_order(f"{liq.coin}USDT", "SELL" if liq.side == "long" else "BUY",
                                 _qty(liq.coin, liq.usd, liq.price), _px(liq.coin, liq.price),
                                 _ms(liq.ts))
    return RawFrame("aster", aster.WS_URL, liq.ts + 0.95, text)


def _bitfinex(liq: Liq, pos_id: int) -> RawFrame:
    """A ``liq:global`` trigger row of the coin's USDt perpetual: the sign of the amount is the
    position, the price its liquidation price (what the venue prices the event at)."""
    qty = float(_qty(liq.coin, liq.usd, liq.price))
    return RawFrame("bitfinex", bitfinex.WS_URL, liq.ts + 0.6, bitfinex_sim.frame(
        _BITFINEX_CHAN, bitfinex_sim.row(pos_id, _ms(liq.ts), f"t{liq.coin}F0:USTF0",
                                        qty if liq.side == "long" else -qty,
                                        float(_px(liq.coin, liq.price)))))


def _lighter(liq: Liq, trade_id: int) -> RawFrame:
    market = _LIGHTER_MARKETS[liq.coin]
    size, price = _qty(liq.coin, liq.usd, liq.price), _px(liq.coin, liq.price)
    build = lighter_sim.long_liquidation if liq.side == "long" else lighter_sim.short_liquidation
    # Explicit ids and nonces: the simulator's own counters would make the recording depend
    # on what ran before it in the process.
    entry = build(market, size, price, _ms(liq.ts), trade_id=trade_id)
    return RawFrame("lighter", lighter.WS_URL, liq.ts + 0.4,
                    lighter_sim.trade_frame(market, entry, nonce=trade_id - 31_000_000_000))


def _paradex(liqs: list[Liq], end: float) -> list[RawFrame]:
    """The trade pages the poll reads: each market every ``paradex.POLL_PERIOD`` seconds, a
    page holding the liquidations since the last poll (newest first). Only pages with a
    liquidation are written: a quiet market's empty page parses to nothing. The poll grid
    counts back from ``end``, as every planned time does, so the pages (and the frame count)
    do not depend on the phase of ``end``."""
    pages: dict[tuple[str, float], list[dict[str, object]]] = {}
    for i, liq in enumerate(sorted(liqs, key=lambda x: x.ts)):
        poll = end - math.floor((end - liq.ts) / paradex.POLL_PERIOD) * paradex.POLL_PERIOD
        market = f"{liq.coin}-USD-PERP"
        pages.setdefault((market, poll), []).insert(0, paradex_sim.trade(
            f"17{_ms(liq.ts)}{i:06d}", market, "SELL" if liq.side == "long" else "BUY",
            _qty(liq.coin, liq.usd, liq.price), _px(liq.coin, liq.price), _ms(liq.ts)))
    return [RawFrame("paradex", f"{paradex.WS_URL}?market={market}", t + 0.5,
                     paradex_sim.page(rows)) for (market, t), rows in pages.items()]


def _mark_prices(end: float, t0: float) -> list[RawFrame]:
    """Binance ``!markPrice@arr@1s`` frames every PRICE_STEP seconds from ``t0`` to ``end``."""
    out: list[RawFrame] = []
    n = int((end - t0) // PRICE_STEP)
    for j in range(n, 0, -1):  # t = end - j*step: the dip centres fall on a tick
        t = end - j * PRICE_STEP
        items = [{"e": "markPriceUpdate", "E": _ms(t), "s": f"{c}USDT",
                  "p": _px(c, price_path(c, end, t)), "i": _px(c, price_path(c, end, t)),
                  "P": "0", "r": "0.00010000", "T": _ms(t) // 28_800_000 * 28_800_000
                  + 28_800_000} for c in COINS]
        out.append(RawFrame("binance", binance.PRICES_URL, t + 0.05, _dumps(items)))
    return out


def oi_level(end: float, t: float) -> float:
    """Open interest at ``t`` as a multiple of its level at the start of the day (``end`` - 24
    h): the build-up, then each wave's drop, spread over the first 40 minutes of its hour."""
    age_h = (end - t) / 3600.0  # hours before end
    day_h = 24.0 - age_h  # hours into the day
    level = 1.0 + OI_BUILDUP * min(max(day_h / OI_BUILDUP_HOURS, 0.0), 1.0)
    for k, drop in OI_DROPS.items():
        start = k + 1.0  # the wave's hour runs from k+1 to k hours before end
        done = min(max((start - age_h) / (40 / 60), 0.0), 1.0)
        level *= 1.0 - drop * done
    return level


def _oi_polls(end: float, t0: float) -> list[RawFrame]:
    """Bybit and Hyperliquid open-interest polls every OI_STEP seconds from ``t0`` to ``end``,
    in each venue's REST format, valued at the scenario's mark price."""
    out: list[RawFrame] = []
    bybit_url = bybit.oi_urls(Metadata(), {})[0]  # linear tickers
    hl_url = hyperliquid.oi_urls(Metadata(), {})[0]
    n = int((end - t0) // OI_STEP)
    for j in range(n, 0, -1):
        t = end - j * OI_STEP
        rows = []
        ctxs = []
        for c in COINS:
            px = price_path(c, end, t)
            b_coins = oi_coins("bybit", c, end, t)
            rows.append({"symbol": f"{c}USDT", "markPrice": _px(c, px),
                         "openInterest": f"{2 * b_coins:.3f}",
                         "singleOpenInterest": f"{b_coins:.3f}",
                         "fundingRate": f"{OI_FUNDING_8H:.8f}", "fundingIntervalHour": "8",
                         "deliveryTime": "0", "nextFundingTime": str(_ms(t) + 3_600_000)})
            h_coins = oi_coins("hyperliquid", c, end, t)
            ctxs.append({"funding": f"{OI_FUNDING_8H / 8:.10f}", "openInterest": f"{h_coins:.3f}",
                         "prevDayPx": _px(c, px), "dayNtlVlm": "0.0", "premium": "0.0",
                         "oraclePx": _px(c, px), "markPx": _px(c, px), "midPx": _px(c, px),
                         "impactPxs": [_px(c, px), _px(c, px)], "dayBaseVlm": "0.0"})
        out.append(RawFrame("bybit", bybit_url, t + 0.2, _dumps({
            "retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": rows},
            "retExtInfo": {}, "time": _ms(t)})))
        universe = [{"szDecimals": _QTY_DECIMALS[c], "name": c, "maxLeverage": 40,
                     "marginTableId": 50} for c in COINS]
        out.append(RawFrame("hyperliquid", hl_url, t + 0.3, _dumps(
            [{"universe": universe, "marginTables": [], "collateralToken": 0}, ctxs])))
    return out


def _setup_frames(t0: float) -> list[RawFrame]:
    """REST bodies and subscribe acks each venue needs before its first event."""
    coins = list(COINS)
    out: list[RawFrame] = []
    # Hyperliquid: meta (POST body in the URL fragment), greeting, one ack per coin.
    meta = {"universe": [{"szDecimals": _QTY_DECIMALS[c], "name": c, "maxLeverage": 40,
                          "marginTableId": 50} for c in coins],
            "marginTables": [], "collateralToken": 0}
    out.append(RawFrame("hyperliquid", hyperliquid.rest_urls({})[0], t0, _dumps(meta)))
    out.append(RawFrame("hyperliquid", hyperliquid.WS_URL, t0 + 1, hyperliquid.CONNECTED))
    for i, c in enumerate(coins):
        out.append(RawFrame("hyperliquid", hyperliquid.WS_URL, t0 + 1.1 + i / 100, _dumps(
            {"channel": "subscriptionResponse", "data": {
                "method": "subscribe", "subscription": {"type": "trades", "coin": c}}})))
    # OKX: instruments (SWAP, FUTURES), then the subscribe acks.
    swap = [{"instType": "SWAP", "instId": f"{c}-USDT-SWAP", "uly": f"{c}-USDT",
             "instFamily": f"{c}-USDT", "baseCcy": "", "quoteCcy": "", "settleCcy": "USDT",
             "ctVal": _OKX_CT_VAL[c], "ctMult": "1", "ctValCcy": c, "ctType": "linear",
             "expTime": "", "lever": "100", "lotSz": "0.01", "minSz": "0.01", "tickSz": "0.1",
             "state": "live", "listTime": "1606468572000", "alias": ""} for c in coins]
    for url, data in zip(okx.rest_urls({}), (swap, []), strict=True):
        out.append(RawFrame("okx", url, t0, _dumps({"code": "0", "msg": "", "data": data})))
    for i, inst_type in enumerate(okx.INST_TYPES):
        out.append(RawFrame("okx", okx.WS_URL, t0 + 1 + i / 100, _dumps(
            {"event": "subscribe", "arg": {"channel": okx.CHANNEL, "instType": inst_type},
             "connId": "5ce9a1f0"})))
    # Bybit: instruments-info (linear; inverse empty), then the linear subscribe ack.
    linear = [{"symbol": f"{c}USDT", "contractType": "LinearPerpetual", "status": "Trading",
               "baseCoin": c, "quoteCoin": "USDT", "settleCoin": "USDT",
               "launchTime": "1585526400000", "deliveryTime": "0", "priceScale": "2"}
              for c in coins]
    for url, (cat, items) in zip(bybit.rest_urls({}), (("linear", linear), ("inverse", [])),
                                 strict=True):
        out.append(RawFrame("bybit", url, t0, _dumps({
            "retCode": 0, "retMsg": "OK", "result": {"category": cat, "list": items,
                                                     "nextPageCursor": ""},
            "retExtInfo": {}, "time": _ms(t0)})))
    out.append(RawFrame("bybit", bybit.WS_LINEAR, t0 + 1, _dumps(
        {"success": True, "ret_msg": "", "conn_id": "c1", "req_id": "1", "op": "subscribe"})))
    # Gate: contracts, then the subscribe ack.
    contracts = [{"name": f"{c}_USDT", "type": "direct", "quanto_multiplier": _GATE_MULT[c],
                  "mark_type": "index", "leverage_min": "1", "leverage_max": "100",
                  "in_delisting": False, "status": "trading"} for c in coins]
    out.append(RawFrame("gate", gate.rest_urls({})[0], t0, _dumps(contracts)))
    out.append(RawFrame("gate", gate.WS_URL, t0 + 1, _dumps(
        {"time": int(t0 + 1), "time_ms": _ms(t0 + 1), "conn_id": "5e74253e9c793974",
         "channel": gate.CHANNEL, "event": "subscribe", "payload": ["!all"], "error": None,
         "result": {"status": "success"}})))
    # Bitget: one ack per instType (no REST).
    for i, inst_type in enumerate(bitget.INST_TYPES):
        out.append(RawFrame("bitget", bitget.WS_URL, t0 + 1 + i / 100, _dumps(
            {"event": "subscribe", "arg": {"instType": inst_type, "topic": bitget.TOPIC}})))
    # HTX: the wildcard subscribe ack (gzip, as every HTX server frame).
    out.append(RawFrame("htx", htx.WS_URL, t0 + 1, gzip.compress(_dumps(
        {"op": "sub", "cid": htx.SUB_CID, "topic": htx.TOPIC, "ts": _ms(t0 + 1),
         "err-code": 0}).encode(), mtime=0)))
    # Aster: exchangeInfo (the quote that prices each symbol), then the SUBSCRIBE ack.
    out.append(RawFrame("aster", aster.rest_urls({})[0], t0, aster_sim.exchange_info_body(
        [aster_sim.symbol_info(f"{c}USDT", c) for c in coins])))
    out.append(RawFrame("aster", aster.WS_URL, t0 + 1, _dumps(
        {"result": None, "id": aster.SUBSCRIBE_ID})))
    # Bitfinex: the info greeting, then the liq:global ack (it drops events dated before it).
    out.append(RawFrame("bitfinex", bitfinex.WS_URL, t0 + 1, _dumps(bitfinex_sim.APIGO_INFO)))
    out.append(RawFrame("bitfinex", bitfinex.WS_URL, t0 + 1.1, bitfinex_sim.ack(_BITFINEX_CHAN)))
    # Lighter: orderBookDetails, the greeting, one subscribed/trade ack per market (no recent
    # liquidation in them: a replayed one would be history, dropped).
    out.append(RawFrame("lighter", lighter.rest_urls({})[0], t0, lighter_sim.details_body(
        {m: c for c, m in _LIGHTER_MARKETS.items()})))
    out.append(RawFrame("lighter", lighter.WS_URL, t0 + 0.9, lighter_sim.CONNECTED))
    for i, m in enumerate(_LIGHTER_MARKETS.values()):
        out.append(RawFrame("lighter", lighter.WS_URL, t0 + 1 + i / 100,
                            lighter_sim.ack_frame(m, nonce=18_000_000_000 + m)))
    # Paradex: the markets listing (no websocket: its trade pages are polled).
    out.append(RawFrame("paradex", paradex.rest_urls({})[0], t0, paradex_sim.markets_body(
        [paradex_sim.market(f"{c}-USD-PERP") for c in coins])))
    return out


def seed_scenario(end: float, seed: int = 7) -> list[RawFrame]:
    """The SYNTHETIC seed recording ending exactly at ``end`` (epoch seconds), ordered by
    receipt time: setup frames (REST bodies, acks) 25 h before, 24 h of liquidations, and a
    Binance ``LIST_SUBSCRIPTIONS`` reply at ``end`` so a replay's clock stops there."""
    rng = random.Random(seed * 7919 + 1)
    liqs = plan(end, seed)
    t0 = end - (HISTORY_HOURS + 1) * 3600 - 600
    frames = _setup_frames(t0)
    by_venue: dict[str, list[Liq]] = {v: [] for v in VENUES}
    for liq in liqs:
        by_venue[liq.venue].append(liq)
    tid = 900_000_000_000_000 + seed * 1_000_000
    for liq in _spread_binance(by_venue["binance"], end):
        frames.append(_binance(liq, rng))
    for liq in sorted(by_venue["hyperliquid"], key=lambda x: x.ts):
        tid += 1
        frames.append(_hyperliquid(liq, rng, tid))
    for venue, render in (("bybit", _bybit), ("okx", _okx), ("gate", _gate),
                          ("bitget", _bitget), ("htx", _htx)):
        for liq in by_venue[venue]:
            frames.append(render(liq, rng))
    # Aster throttles as Binance does (one liquidation per symbol per second).
    frames.extend(_aster(liq) for liq in _spread_binance(by_venue["aster"], end))
    for i, liq in enumerate(sorted(by_venue["bitfinex"], key=lambda x: x.ts)):
        frames.append(_bitfinex(liq, 150_000_000 + i))
    for i, liq in enumerate(sorted(by_venue["lighter"], key=lambda x: x.ts)):
        frames.append(_lighter(liq, 31_800_000_000 + i))
    frames.extend(_paradex(by_venue["paradex"], end))
    frames.extend(_mark_prices(end, t0))
    frames.extend(_oi_polls(end, t0))
    frames.append(RawFrame("binance", binance.WS_URL, end,
                           _dumps({"result": ["!forceOrder@arr"], "id": 1})))
    frames.sort(key=lambda f: f.recv_ts)
    return frames


def to_jsonl(frames: Sequence[RawFrame]) -> bytes:
    """The recording format (``liqstress.recording``): one JSON object per line."""
    return b"".join(f.to_json() + b"\n" for f in frames)


def write_seed(path: str | Path, end: float, seed: int = 7) -> int:
    """Write the synthetic seed recording to ``path``; returns the number of frames."""
    frames = seed_scenario(end, seed)
    Path(path).write_bytes(to_jsonl(frames))
    return len(frames)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m liqstress.streams.scenario",
        description="Write the SYNTHETIC seed scenario (the article's hour) as a recording.")
    ap.add_argument("out", help="output .jsonl path")
    ap.add_argument("--end", type=float, default=None,
                    help="epoch seconds the recording ends at (default: now, to the minute)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    end = args.end if args.end is not None else float(int(time.time()) // 60 * 60)
    n = write_seed(args.out, end, args.seed)
    print(f"wrote {n} synthetic frames ending at {end:.0f} to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
