"""Turns window snapshots into stress signals: the glue between liqstress/windows.py,
liqstress/prices.py and the formulas in liqstress/signals/ (one module per signal family,
docs/signals.md sections 1-9). Pure (no Faust/Kafka/Prometheus): the worker calls
:meth:`StressEngine.evaluate` on every refresh and publishes what it returns
(``StressResult.to_dict()`` is the ``signals`` object of a ``stress.signals`` snapshot,
liqstress/schemas/stress.schema.json).

Price-based signals (clusters near local lows/highs, range divergence, breadth) need the prices
topic; without prices they are absent and the index renormalises its weights over the inputs
present (``index.coverage`` says how much of the weight was available).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from . import signals as sg
from .labels import SIDES
from .liqmap import DEFAULT_MAP_CONFIG, CoinMap, MapConfig, build_map, map_points
from .prices import SLOT_SECONDS, LiquidationLevels, PriceStore
from .windows import WINDOWS, Snapshot

#: Windows whose imbalance and concentration are published.
SIGNAL_WINDOWS = ("5m", "1h", "4h", "24h")


@dataclass(frozen=True)
class StressSettings:
    #: Cascade: this much USD of one side within 1 minute across >= min_venues venues.
    cascade_threshold_usd: float = 5_000_000.0
    cascade_min_venues: int = 2
    spike_factor: float = sg.SPIKE_FACTOR
    spike_min_usd: float = sg.SPIKE_MIN_USD
    #: Hours below this total are not "spike hours" in the staged/capitulation call.
    deleveraging_min_hour_usd: float = 1_000_000.0
    #: Window feeding the index's skew, size and concentration components.
    index_window: str = "1h"
    #: Clusters: liquidations of the last ``cluster_window`` seconds against each coin's low
    #: and high over the last ``local_extreme_hours``; "near" = within ``near_extreme_pct`` %.
    cluster_window: float = 3600.0
    local_extreme_hours: float = 4.0
    near_extreme_pct: float = sg.NEAR_EXTREME_PCT
    cluster_top_levels: int = sg.TOP_LEVELS
    #: Coins whose levels are published: the allowlist plus this many with the most USD.
    cluster_top_coins: int = 5
    #: Divergence: hourly points per coin (allowlisted coins).
    divergence_hours: int = 12
    divergence_min_points: int = sg.DIVERGENCE_MIN_POINTS
    breadth_min_move_pct: float = 0.0
    config: sg.StressConfig = field(default_factory=lambda: sg.DEFAULT_CONFIG)
    leverage: sg.LeverageConfig = field(default_factory=lambda: sg.DEFAULT_LEVERAGE_CONFIG)
    #: Estimated liquidation map (docs/signals.md section 11), per allowlisted coin.
    liqmap: MapConfig = DEFAULT_MAP_CONFIG


@dataclass
class StressResult:
    ts: float
    imbalance: dict[str, sg.Imbalance]
    concentration: dict[str, sg.Concentration]
    spike: dict[str, sg.SpikeResult]
    cascades: dict[str, sg.CascadeState]
    deleveraging: sg.Deleveraging
    index: sg.StressIndex
    #: State changes since the previous evaluation (cascade start/end, deleveraging label).
    events: list[dict[str, Any]]
    #: Price-based signals; empty/None without prices.
    clusters: dict[str, Any] = field(default_factory=dict)
    near_extreme: sg.NearExtreme | None = None
    divergence: dict[str, sg.Divergence] = field(default_factory=dict)
    breadth: sg.Breadth | None = None
    #: Open interest and funding signals; None without open interest.
    leverage: sg.LeverageSignals | None = None
    #: Estimated liquidation map per allowlisted coin with open interest and a price
    #: (``CoinMap.to_dict`` read against the current price); empty without both.
    liquidation_map: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imbalance": {w: v.to_dict() for w, v in self.imbalance.items()},
            "concentration": {w: v.to_dict() for w, v in self.concentration.items()},
            "spike": {s: v.to_dict() for s, v in self.spike.items()},
            "cascade": {s: v.to_dict() for s, v in self.cascades.items()},
            "deleveraging": self.deleveraging.to_dict(),
            "clusters": self.clusters or None,
            "divergence": {c: d.to_dict() for c, d in self.divergence.items()},
            "breadth": self.breadth.to_dict() if self.breadth else None,
            "leverage": self.leverage.to_dict() if self.leverage else None,
            "liquidation_map": self.liquidation_map or None,
            "index": self.index.to_dict(),
        }


class StressEngine:
    def __init__(self, settings: StressSettings | None = None) -> None:
        self.settings = settings or StressSettings()
        s = self.settings
        self.cascade = sg.CascadeDetector(s.cascade_threshold_usd, 60.0,
                                          min_venues=s.cascade_min_venues)
        self._last_label: str | None = None
        #: coin -> (map input key, map): a map changes once a 5-minute slot (or when open
        #: interest for a past slot arrives late), not on every refresh.
        self._maps: dict[str, tuple[tuple[float, int], CoinMap]] = {}

    def restore(self, signals: dict[str, Any], ts: float) -> None:
        """Take over from a published ``stress.signals`` snapshot (``StressResult.to_dict()``):
        the cascade episodes and the deleveraging label go on instead of starting over."""
        self.cascade.restore(signals.get("cascade") or {}, ts)
        label = (signals.get("deleveraging") or {}).get("label")
        if isinstance(label, str):
            self._last_label = label

    def evaluate(self, snap: Snapshot, hourly: dict[str, list[float]], *,
                 prices: PriceStore | None = None, levels: LiquidationLevels | None = None,
                 coin_hourly: dict[str, list[float]] | None = None,
                 coins: tuple[str, ...] = (),
                 oi: sg.OIHistoryView | None = None) -> StressResult:
        """``hourly``: per side, the last 25 hourly totals oldest first, the current hour last
        (``WindowStore.hourly_totals``). ``prices``/``levels``: the price history and the
        liquidation price levels; ``coin_hourly``: per allowlisted coin (``coins``) the hourly
        totals of both sides (``WindowStore.hourly_totals_by_coin``). ``oi``: the open-interest
        history (``liqstress.oi_history.OIHistory``), for the leverage signals."""
        s = self.settings
        by_window = snap.usd_by_exchange()
        imbalance = {w: sg.imbalance(by_window[w]) for w in SIGNAL_WINDOWS}
        concentration = {w: sg.concentration(sg.venue_usd(by_window[w])) for w in SIGNAL_WINDOWS}
        spike = {side: sg.spike(hourly[side][-1], hourly[side][:-1], factor=s.spike_factor,
                                min_usd=s.spike_min_usd) for side in SIDES}
        events: list[dict[str, Any]] = []
        for side in SIDES:
            for ev in self.cascade.update(snap.now, sg.venue_usd(by_window["1m"], side), side):
                events.append({"type": f"cascade_{ev.kind}", **ev.to_dict()})
        both = [lng + sht for lng, sht in zip(hourly["long"], hourly["short"], strict=True)]
        delev = sg.classify_deleveraging(both[-24:], min_hour_usd=s.deleveraging_min_hour_usd)
        if delev.label != self._last_label:
            if self._last_label is not None:
                events.append({"type": "deleveraging_change", "ts": snap.now,
                               "from": self._last_label, "to": delev.label})
            self._last_label = delev.label
        clusters: dict[str, Any] = {}
        near: sg.NearExtreme | None = None
        divergence: dict[str, sg.Divergence] = {}
        breadth: sg.Breadth | None = None
        if prices is not None:
            if levels is not None:
                clusters, near = self._clusters(snap.now, prices, levels, coins)
            divergence = self._divergence(snap.now, prices, coin_hourly or {}, coins)
            b = sg.breadth(prices.breadth_inputs(snap.now), s.breadth_min_move_pct)
            breadth = b if b.coins else None
        leverage = self._leverage(snap, oi, prices, coins)
        liq_map = self._liquidation_map(snap.now, oi, prices, coins) if leverage else {}
        # Divergence enters the index only where a coin had enough hourly points to judge.
        judged = [d.flag for d in divergence.values() if d.points >= s.divergence_min_points]
        # The index follows the larger side's spike: stress from shorts counts too.
        main = max(SIDES, key=lambda side: hourly[side][-1])
        inputs = sg.StressInputs.from_signals(
            imbalance=imbalance[s.index_window], spike=spike[main],
            concentration=concentration[s.index_window],
            cascade_active=self.cascade.active(), deleveraging=delev, near_extreme=near,
            breadth=breadth,
            leverage=sg.index_components(leverage, s.leverage) if leverage else None)
        if judged:
            inputs = replace(inputs, divergence=any(judged))
        index = sg.stress_index(inputs, s.config)
        return StressResult(ts=snap.now, imbalance=imbalance, concentration=concentration,
                            spike=spike, cascades=self.cascade.states(), deleveraging=delev,
                            index=index, events=events, clusters=clusters, near_extreme=near,
                            divergence=divergence, breadth=breadth, leverage=leverage,
                            liquidation_map=liq_map)

    def _liquidation_map(self, now: float, oi: sg.OIHistoryView | None,
                         prices: PriceStore | None,
                         coins: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """The estimated liquidation map of each allowlisted coin that has open interest and
        a price now, read against the current price."""
        if oi is None or prices is None:
            return {}
        cfg = self.settings.liqmap
        # Maps are rebuilt from the histories, so every worker gets the same map from the
        # same records: the key is the last finished slot and how many records were applied.
        key = (float(now // SLOT_SECONDS), int(getattr(oi, "applied", 0)))
        out: dict[str, dict[str, Any]] = {}
        for coin in coins:
            price = prices.price_at(coin, now)
            if price is None or oi.oi_usd(coin, at=now) is None:
                self._maps.pop(coin, None)
                continue
            cached = self._maps.get(coin)
            if cached is None or cached[0] != key:
                cached = (key, build_map(map_points(oi, prices, coin, now, cfg.horizon), cfg))
                self._maps[coin] = cached
            if cached[1].price is not None:
                out[coin] = cached[1].to_dict(price=price)
        return out

    def _leverage(self, snap: Snapshot, oi: sg.OIHistoryView | None, prices: PriceStore | None,
                  coins: tuple[str, ...]) -> sg.LeverageSignals | None:
        """The leverage signals (docs/signals.md section 10) for the allowlisted ``coins`` and
        market-wide; None before any open-interest record."""
        if oi is None or oi.oi_usd(at=snap.now) is None:
            return None
        now = snap.now
        by_seconds = {sec: name for name, sec in WINDOWS.items()}

        def price_range_pct(coin: str, seconds: float) -> float | None:
            ext = prices.extremes(coin, now, seconds) if prices is not None else None
            return sg.range_pct(ext[1], ext[0]) if ext else None

        def liquidated_usd(coin: str | None, seconds: float) -> float:
            w = snap.windows[by_seconds[int(seconds)]]
            if coin is None:
                return sum(snap.total(by_seconds[int(seconds)], side).usd for side in SIDES)
            sides = w["coin"].get(coin, {})
            return sum(a.usd for a in sides.values())

        return sg.leverage_signals(oi, now=now, price_range_pct=price_range_pct,
                                   liquidated_usd=liquidated_usd, coins=coins,
                                   config=self.settings.leverage)

    def _clusters(self, now: float, prices: PriceStore, levels: LiquidationLevels,
                  coins: tuple[str, ...]) -> tuple[dict[str, Any], sg.NearExtreme | None]:
        """Per coin near-extreme shares and top levels; market-wide shares weighted by USD
        over the coins that have a local low/high (a coin without prices cannot be judged)."""
        s = self.settings
        lookback = s.local_extreme_hours * 3600.0
        per_coin: dict[str, dict[str, Any]] = {}
        long_all = long_near = short_all = short_near = 0.0
        for coin in levels.coins():
            liqs = levels.liquidations(coin, now, s.cluster_window)
            if not liqs:
                continue
            ext = prices.extremes(coin, now, lookback)
            low, high = ext if ext else (None, None)
            ne = sg.near_extreme_share(liqs, low, high, s.near_extreme_pct)
            long_usd = sum(u for _, side, u in liqs if side == "long")
            short_usd = sum(u for _, side, u in liqs if side == "short")
            if ext:
                long_all += long_usd
                short_all += short_usd
                long_near += (ne.long_share_near_low or 0.0) * long_usd
                short_near += (ne.short_share_near_high or 0.0) * short_usd
            per_coin[coin] = {"local_low": low, "local_high": high, "long_usd": long_usd,
                              "short_usd": short_usd, **ne.to_dict(), "_liqs": liqs}
        ranked = sorted(per_coin, key=lambda c: -(per_coin[c]["long_usd"] + per_coin[c]["short_usd"]))
        keep = set(ranked[:s.cluster_top_coins]) | (set(coins) & set(per_coin))
        # Levels only for the coins published: with hundreds of coins they are most of the cost.
        for coin in keep:
            info = per_coin[coin]
            info["price"] = prices.price_at(coin, now)
            info["top_levels"] = [lv.to_dict() for lv in sg.top_levels(
                sg.price_clusters(info.pop("_liqs"), levels.bucket_pct), s.cluster_top_levels)]
        if not per_coin:
            return {}, None
        # Levels are published without prices too; the shares need a coin with a low/high.
        near = (sg.NearExtreme(long_near / long_all if long_all > 0 else None,
                               short_near / short_all if short_all > 0 else None)
                if long_all > 0 or short_all > 0 else None)
        return {"window_s": s.cluster_window, "lookback_s": lookback,
                "within_pct": s.near_extreme_pct, "bucket_pct": levels.bucket_pct,
                **(near or sg.NearExtreme(None, None)).to_dict(),
                "coins": {c: per_coin[c] for c in ranked if c in keep}}, near

    def _divergence(self, now: float, prices: PriceStore, coin_hourly: dict[str, list[float]],
                    coins: tuple[str, ...]) -> dict[str, sg.Divergence]:
        s = self.settings
        h = s.divergence_hours
        out: dict[str, sg.Divergence] = {}
        for coin in coins:
            ranges = prices.hourly_ranges(coin, now, h)
            if not any(r is not None for r in ranges):
                continue
            liq = coin_hourly.get(coin, [0.0] * h)[-h:]
            out[coin] = sg.divergence(liq, ranges, min_points=s.divergence_min_points)
        return out
