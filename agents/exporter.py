"""The worker's metrics: a custom collector that serves, at scrape time, the last immutable
snapshot of the worker's state (``WorkerCollector``). No gauge is set by hand, so no series
outlives the data it describes.

Per-worker series are shares that add up across workers: window gauges hold this worker's
partitions only (``sum`` over every worker's /metrics is the true total), and counters carry a
``partition`` label so ``sum(rate(...))`` stays right when a partition moves (its series ends
on one worker and starts, at the rebuilt value, on the next). Global values (signals, prices)
come only from the one worker whose ``liqstress_aggregator_active`` is 1.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from liqstress import signals as sg
from liqstress.labels import SIDES, WINDOW_NAMES
from liqstress.stress import SIGNAL_WINDOWS

from .state import WorkerState

_C, _G = "counter", "gauge"
#: A counter change shows in the snapshot within this many seconds (rebuilds coalesced).
COUNTER_LAG = 0.25
#: The loop rebuilds the snapshot at least this often, even when nothing changed.
HEARTBEAT = 5.0
#: A scrape fails (rather than report stale health) when the loop has not rebuilt the
#: snapshot for this long: it is stuck.
STALE_AFTER = 30.0
EX_SIDE_WIN = ("exchange", "side", "window")
#: The coin label of the per-coin window series that sums every coin not shown by name.
OTHER_COIN = "other"
#: A global view older than this no longer ranks the coins (the local windows do).
VIEW_MAX_AGE = 60.0

#: key -> (type, name, help, labels)
SPECS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "liquidations": (_C, "liqstress_liquidations_total",
                     "Liquidations counted by the worker (deduplicated by event id), per "
                     "liquidations partition it owns. side is the position liquidated.",
                     ("exchange", "side", "partition")),
    "liquidated_usd": (_C, "liqstress_liquidated_usd_total",
                       "USD notional of liquidations counted by the worker, per partition it "
                       "owns; unpriced events add 0.", ("exchange", "side", "partition")),
    "duplicates": (_C, "liqstress_duplicates_total",
                   "Events dropped by the worker because their id was already counted.",
                   ("exchange", "partition")),
    "invalid": (_C, "liqstress_invalid_records_total",
                "Records of a source topic that could not be decoded (dead-lettered).",
                ("topic",)),
    "window_usd": (_G, "liqstress_window_liquidated_usd",
                   "USD notional liquidated in the rolling window ending now (this worker's "
                   "partitions: sum over workers).", EX_SIDE_WIN),
    "window_count": (_G, "liqstress_window_liquidations",
                     "Number of liquidations in the rolling window ending now (this worker's "
                     "partitions: sum over workers).", EX_SIDE_WIN),
    "window_largest": (_G, "liqstress_window_largest_liquidation_usd",
                       "Largest single liquidation (USD) in the rolling window ending now "
                       "(this worker's partitions: max over workers).", EX_SIDE_WIN),
    "coin_window_usd": (_G, "liqstress_coin_window_liquidated_usd",
                        "USD notional liquidated per coin across all exchanges, for the "
                        "allowlisted coins and the top N by 24 h USD (LIQSTRESS_TOP_COINS); "
                        "coin=\"other\" sums every other coin, so the sum over coins is the "
                        "total (this worker's partitions: sum over workers).",
                        ("coin", "side", "window")),
    "refresh_ts": (_G, "liqstress_window_refresh_timestamp_seconds",
                   "Wall-clock time the window gauges were last recomputed.", ()),
    "ready": (_G, "liqstress_worker_ready",
              "1 while the broker is reachable and every partition this worker owns is "
              "rebuilt; 0 otherwise.", ()),
    "rebuilt": (_G, "liqstress_worker_rebuilt_events",
                "Events read back from the liquidations topic when this worker's partitions "
                "were last assigned.", ()),
    "partitions": (_G, "liqstress_worker_partitions",
                   "liquidations partitions this worker owns, by state.", ("state",)),
    "aggregator": (_G, "liqstress_aggregator_active",
                   "1 on the one worker that combines every partition and publishes the "
                   "global windows and signals.", ()),
    "agg_partitions": (_G, "liqstress_aggregator_partitions",
                    "Partitions the aggregator combines, by where it reads them from.",
                    ("source",)),
    "prices": (_C, "liqstress_prices_total", "Price ticks applied by the worker.",
               ("exchange",)),
    "price_coins": (_G, "liqstress_price_coins",
                    "Coins with a current price (tick within 15 minutes).", ()),
    "coin_price": (_G, "liqstress_coin_price_usd",
                   "Current price of an allowlisted coin (USD per coin).", ("coin",)),
    "coin_low": (_G, "liqstress_coin_local_low_usd",
                 "Lowest price of an allowlisted coin over the local-extreme lookback.",
                 ("coin",)),
    "coin_high": (_G, "liqstress_coin_local_high_usd",
                  "Highest price of an allowlisted coin over the local-extreme lookback.",
                  ("coin",)),
    "near_extreme": (_G, "liqstress_near_extreme_ratio",
                     "side=long: share of the cluster window's long USD (all coins with "
                     "prices) liquidated within the threshold of the coin's local low; "
                     "side=short: shorts near the local high (0-1).", ("side",)),
    "coin_near_extreme": (_G, "liqstress_coin_near_extreme_ratio",
                          "As liqstress_near_extreme_ratio, per allowlisted coin (0-1).",
                          ("coin", "side")),
    "div_active": (_G, "liqstress_divergence_active",
                   "1 while hourly liquidations trend up as the hourly price range shrinks.",
                   ("coin",)),
    "div_liq": (_G, "liqstress_divergence_liquidation_trend",
                "Least-squares slope of hourly liquidated USD over its mean (per hour).",
                ("coin",)),
    "div_range": (_G, "liqstress_divergence_range_trend",
                  "Least-squares slope of the hourly price range over its mean (per hour).",
                  ("coin",)),
    "breadth_down": (_G, "liqstress_breadth_down_ratio",
                     "Share of coins with a price whose price is lower than 1 h / 24 h ago "
                     "(0-1).", ("window",)),
    "breadth_coins": (_G, "liqstress_breadth_coins",
                      "Coins counted in liqstress_breadth_down_ratio.", ("window",)),
    "long_share": (_G, "liqstress_long_share_ratio",
                   "Long share of the USD liquidated in the window, all exchanges (0-1); "
                   "absent when nothing was liquidated.", ("window",)),
    "ex_long_share": (_G, "liqstress_exchange_long_share_ratio",
                      "Long share of the USD liquidated in the window on one exchange (0-1).",
                      ("exchange", "window")),
    "spike_multiple": (_G, "liqstress_spike_multiple",
                       "Last hour's USD liquidated (all exchanges) over the median of the 24 "
                       "hourly totals before it; absent without history.", ("side",)),
    "spike_active": (_G, "liqstress_spike_active",
                     "1 while the last hour is a spike (multiple >= factor and above the USD "
                     "floor).", ("side",)),
    "ex_share": (_G, "liqstress_exchange_share_ratio",
                 "Exchange's share of the USD liquidated in the window, both sides (0-1).",
                 ("exchange", "window")),
    "top2": (_G, "liqstress_top2_share_ratio",
             "Share of the USD liquidated in the window on the two largest exchanges (0-1).",
             ("window",)),
    "hhi": (_G, "liqstress_concentration_hhi_ratio",
            "Herfindahl-Hirschman index of exchange shares in the window (1/n..1).",
            ("window",)),
    "cascade_active": (_G, "liqstress_cascade_active",
                       "1 while same-direction liquidations on >= 2 venues exceed the cascade "
                       "threshold.", ("side",)),
    "cascade_size": (_G, "liqstress_cascade_size_usd",
                     "Estimated USD liquidated in the current (or last) cascade of that side.",
                     ("side",)),
    "cascades": (_C, "liqstress_cascades_total",
                 "Cascades started while this worker was the aggregator, by side.", ("side",)),
    "delev_share": (_G, "liqstress_deleveraging_largest_hour_share_ratio",
                    "Largest hour's share of the last 24 h of USD liquidated (0-1).", ()),
    "delev_hours": (_G, "liqstress_deleveraging_spike_waves",
                    "Distinct spike stages among the last 24 hourly totals.", ()),
    "delev_state": (_G, "liqstress_deleveraging_state",
                    "1 for the current classification of the last 24 h: calm, staged or "
                    "capitulation.", ("state",)),
    "index": (_G, "liqstress_stress_index",
              "Composite leverage-stress index, 0-100 (docs/signals.md).", ()),
    "component": (_G, "liqstress_stress_component_ratio",
                  "Each stress-index component mapped to 0-1 before weighting.",
                  ("component",)),
    # ---- open interest and funding (docs/signals.md section 10) ----------------------------
    "oi_records": (_C, "liqstress_open_interest_records_total",
                   "Open-interest records applied by the worker (every worker reads them all).",
                   ("exchange",)),
    "oi_usd": (_G, "liqstress_open_interest_usd",
               "Open interest in USD now, all venues and coins (fresh instruments only).", ()),
    "oi_coverage": (_G, "liqstress_open_interest_exchange_share_ratio",
                    "Each venue's share of liqstress_open_interest_usd (0-1).", ("exchange",)),
    "oi_change": (_G, "liqstress_open_interest_change_ratio",
                  "Change of open interest over the window, over the instruments present at "
                  "both ends (0.05 = +5 %).", ("window",)),
    "coin_oi_usd": (_G, "liqstress_coin_open_interest_usd",
                    "Open interest in USD of an allowlisted coin, all venues.", ("coin",)),
    "coin_oi_change": (_G, "liqstress_coin_open_interest_change_ratio",
                       "As liqstress_open_interest_change_ratio, per allowlisted coin.",
                       ("coin", "window")),
    "funding": (_G, "liqstress_funding_rate_8h_ratio",
                "Open-interest-weighted funding rate per 8 hours, all venues (0.0001 = "
                "0.01 %).", ()),
    "coin_funding": (_G, "liqstress_coin_funding_rate_8h_ratio",
                     "As liqstress_funding_rate_8h_ratio, per allowlisted coin.", ("coin",)),
    "buildup": (_G, "liqstress_leverage_buildup_ratio",
                "Leverage build-up score (open interest up while the price range stays flat), "
                "0-1, market-wide.", ()),
    "buildup_active": (_G, "liqstress_leverage_buildup_active",
                       "1 while the market-wide build-up score is at or above its flag level.",
                       ()),
    "coin_buildup": (_G, "liqstress_coin_leverage_buildup_ratio",
                     "Leverage build-up score per allowlisted coin (0-1).", ("coin",)),
    "intensity": (_G, "liqstress_liquidation_intensity_ratio",
                  "USD liquidated in the window over the open interest at its start, all "
                  "venues.", ("window",)),
    "oi_delev_state": (_G, "liqstress_oi_deleveraging_state",
                       "1 for the current reading of the last 24 hourly open-interest changes: "
                       "none, staged or capitulation.", ("state",)),
    "oi_delev_decline": (_G, "liqstress_oi_deleveraging_decline_ratio",
                         "Largest peak-to-trough fall of open interest over the last 24 h "
                         "(0-1).", ()),
    "crowding_state": (_G, "liqstress_crowding_state",
                       "1 for the current crowding reading (funding with open interest "
                       "growing): none, long_crowded or short_crowded.", ("state",)),
    "coin_crowding_state": (_G, "liqstress_coin_crowding_state",
                            "As liqstress_crowding_state, per allowlisted coin.",
                            ("coin", "state")),
    # ---- coverage: what each venue's windows hold (docs/warm-start.md) -------------------------
    "cov_missing": (_G, "liqstress_window_coverage_missing_ratio",
                    "Share of the rolling window the venue does not cover (0 = covered whole, "
                    "live or read back from its history; 1 = none of it): before the venue was "
                    "collected, while its feed was down, or since its collector went silent.",
                    ("exchange", "window")),
    "cov_backfilled": (_G, "liqstress_window_coverage_backfilled_ratio",
                       "Share of the rolling window the venue covers from its public history "
                       "(the warm start) rather than live.", ("exchange", "window")),
    # ---- estimated liquidation map (docs/signals.md section 11) -------------------------------
    "map_usd": (_G, "liqstress_liquidation_map_usd",
                "Estimated USD of open positions (model, not observed) whose liquidation price "
                "lies within the band of the current price: longs below it, shorts above "
                "(allowlisted coins; band 1pct, 2pct or 5pct).", ("coin", "side", "band")),
    "map_top_price": (_G, "liqstress_liquidation_map_top_level_price_usd",
                      "Price of the estimated liquidation map's largest level still below "
                      "(longs) or above (shorts) the current price.", ("coin", "side")),
    "map_top_usd": (_G, "liqstress_liquidation_map_top_level_usd",
                    "Estimated USD at the liquidation map's largest level (see "
                    "liqstress_liquidation_map_top_level_price_usd).", ("coin", "side")),
}


class _Families:
    def __init__(self) -> None:
        self.fams: dict[str, Metric] = {}

    def add(self, key: str, labels: Sequence[str], value: float | None) -> None:
        if value is None:
            return
        fam = self.fams.get(key)
        if fam is None:
            kind, name, doc, names = SPECS[key]
            cls = CounterMetricFamily if kind == _C else GaugeMetricFamily
            fam = self.fams[key] = cls(name, doc, labels=list(names))
        fam.add_metric(list(labels), float(value))

    def freeze(self) -> tuple[Metric, ...]:
        for fam in self.fams.values():
            fam.samples = tuple(fam.samples)  # type: ignore[assignment]  # read-only from here
        return tuple(self.fams.values())


class WorkerCollector(Collector):
    """The worker's series as of the last snapshot of its state.

    The snapshot is a tuple of metric families built on the event loop (the only thread that
    changes the state), so it never holds a half-applied record, and replaced whole: a scrape,
    on the HTTP server's thread, reads that one reference and nothing else. A series exists
    only while the state has it (a coin without a current price, an exchange gone from the
    window), so none outlives its data.

    The snapshot is rebuilt at the end of every refresh and on a health change (broker,
    assignment, rebuild, aggregator role: ``WorkerState.metrics_changed(urgent=True)``), and
    at most ``COUNTER_LAG`` after a counter moved; a heartbeat rebuilds it every ``HEARTBEAT``
    seconds, and a scrape fails, rather than report stale health, when the loop has not
    rebuilt it for ``STALE_AFTER`` seconds (a stuck loop). Without a running loop (tests,
    tools), a scrape on the state's own thread rebuilds it when something changed.
    """

    def __init__(self, state: WorkerState, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.state = state
        self.loop = loop
        #: The thread that owns the state (runs the loop): the only one that builds.
        self.owner = threading.get_ident()
        #: The last immutable snapshot: replaced whole, never changed.
        self.families: tuple[Metric, ...] = ()
        self.built_at = time.monotonic()
        self.builds = 0
        self._timer: asyncio.TimerHandle | None = None
        state.on_metrics_change = self.changed
        self.rebuild()
        if loop is not None:
            loop.call_later(HEARTBEAT, self._beat)

    # ---- on the loop's thread ---------------------------------------------------------------
    def changed(self, urgent: bool) -> None:
        if urgent:
            self.rebuild()
            return
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next scrape on this thread rebuilds
        self._timer = loop.call_later(COUNTER_LAG, self._flush)

    def _flush(self) -> None:
        self._timer = None
        if self.state.metrics_dirty:
            self.rebuild()

    def _beat(self) -> None:
        self.rebuild()
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_later(HEARTBEAT, self._beat)

    def rebuild(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.state.metrics_dirty = False
        self.families = build(self.state)
        self.built_at = time.monotonic()
        self.builds += 1

    # ---- on any thread -----------------------------------------------------------------------
    def describe(self) -> Iterator[Metric]:
        # Without describe() the registry would call collect() at registration time.
        for kind, name, doc, names in SPECS.values():
            cls = CounterMetricFamily if kind == _C else GaugeMetricFamily
            yield cls(name, doc, labels=list(names))

    def collect(self) -> Iterator[Metric]:
        if threading.get_ident() == self.owner:
            if self.state.metrics_dirty:
                self.rebuild()
        elif self.loop is not None and self.loop.is_running() \
                and time.monotonic() - self.built_at > STALE_AFTER:
            raise TimeoutError(f"worker metrics not rebuilt for {STALE_AFTER:.0f}s: "
                               "the event loop is stuck")
        return iter(self.families)


def build(st: WorkerState) -> tuple[Metric, ...]:
    """Every worker family from the state as it is now (on the state's thread)."""
    f = _Families()
    ready_parts = {p: ps for p, ps in st.parts.items() if ps.ready}
    exchanges = set(st.metrics.known_exchanges)
    for ps in ready_parts.values():
        exchanges |= ps.store.exchanges
    for p, ps in sorted(ready_parts.items()):
        for ex in sorted(exchanges):
            for side in SIDES:
                count, usd = ps.counts.get((ex, side), (0, 0.0))
                f.add("liquidations", (ex, side, str(p)), count)
                f.add("liquidated_usd", (ex, side, str(p)), usd)
            f.add("duplicates", (ex, str(p)), ps.duplicates_by_exchange.get(ex, 0))
    f.add("invalid", (st.settings.topics.events,),
          sum(ps.invalid for ps in st.parts.values()))
    f.add("invalid", (st.settings.topics.prices,), st.invalid_prices)
    f.add("invalid", (st.settings.topics.open_interest,), st.invalid_oi)
    f.add("invalid", (st.settings.topics.coverage,), st.invalid_coverage)
    local = st.local
    shown = shown_coins(st)
    for w in WINDOW_NAMES:
        names = local.windows[w]["exchange"] if local else {}
        for ex in sorted(exchanges | set(names)):
            sides = names.get(ex)
            for side in SIDES:
                agg = sides[side] if sides else None
                labels = (ex, side, w)
                f.add("window_usd", labels, agg.usd if agg else 0.0)
                f.add("window_count", labels, agg.count if agg else 0)
                f.add("window_largest", labels, agg.largest_usd if agg else 0.0)
        coins = local.windows[w]["coin"] if local else {}
        for coin in shown:
            sides = coins.get(coin)
            for side in SIDES:
                f.add("coin_window_usd", (coin, side, w), sides[side].usd if sides else 0.0)
        other = dict.fromkeys(SIDES, 0.0)
        for coin, sides in coins.items():
            if coin not in shown:
                for side in SIDES:
                    other[side] += sides[side].usd if side in sides else 0.0
        for side in SIDES:
            f.add("coin_window_usd", (OTHER_COIN, side, w), other[side])
    f.add("refresh_ts", (), st.refreshed_at or None)
    f.add("ready", (), 1.0 if st.is_ready() else 0.0)
    f.add("rebuilt", (), sum(ps.rebuilt_events for ps in st.parts.values()))
    f.add("partitions", ("ready",), len(ready_parts))
    f.add("partitions", ("rebuilding",), len(st.parts) - len(ready_parts))
    active = st.aggregating and st.aggregator_ready and st.broker_up
    f.add("aggregator", (), 1.0 if active else 0.0)
    for ex, n in sorted(st.price_counts.items()):
        f.add("prices", (ex,), n)
    for ex, n in sorted(st.oi_counts.items()):
        f.add("oi_records", (ex,), n)
    for side in SIDES:
        f.add("cascades", (side,), st.cascades_started[side])
    if active:
        local_n = sum(1 for s in st.last_sources if s.partition in ready_parts)
        f.add("agg_partitions", ("local",), local_n)
        f.add("agg_partitions", ("partials",), len(st.last_sources) - local_n)
        _prices(st, f)
        _stress(st, f)
        _leverage(st, f)
        _coverage(st, f)
    return f.freeze()


def _coverage(st: WorkerState, f: _Families) -> None:
    for w, cov in st.last_coverage.items():
        for ex, v in sorted(cov.venues.items()):
            f.add("cov_missing", (ex, w), min(1.0, v.missing_s / cov.seconds))
            f.add("cov_backfilled", (ex, w), min(1.0, v.backfilled_s / cov.seconds))


def shown_coins(st: WorkerState) -> tuple[str, ...]:
    """The coins with their own window series: the top ``settings.top_coins`` by 24 h USD
    (both sides, all exchanges; largest first, then by name), then the allowlisted coins not
    among them: the coins ``GET /api/v1/windows?top=N`` shows, less those with no USD in the
    last 24 h (a coin whose liquidations have all aged out keeps no series).

    Ranked on the global view (every partition) when this worker has a recent one (the
    aggregator always does, any worker while its API is read), so every worker names the same
    coins and ``sum by (coin)`` over workers stays whole; otherwise on its own partitions. A
    coin that leaves the top N leaves no series behind: it is summed into ``other`` from the
    next snapshot on.
    """
    view = st.view_snapshot
    if view is not None and time.monotonic() - st.view_at <= VIEW_MAX_AGE:
        day = view.windows.get("24h", {}).get("coin", {})
    else:
        day = st.local.windows["24h"]["coin"] if st.local else {}
    usd = {coin: total for coin, sides in day.items()
           if coin != OTHER_COIN and (total := sum(a.usd for a in sides.values())) > 0}
    ranked = sorted(usd, key=lambda c: (-usd[c], c))[:max(st.settings.top_coins, 0)]
    return tuple(ranked) + tuple(c for c in st.settings.coins
                                 if c not in ranked and c != OTHER_COIN)


def _prices(st: WorkerState, f: _Families) -> None:
    res = st.last_stress
    now = res.ts if res else st.now()
    lookback = st.stress.settings.local_extreme_hours * 3600.0
    f.add("price_coins", (), len(st.prices.breadth_inputs(now)))
    for coin in st.settings.coins:
        f.add("coin_price", (coin,), st.prices.price_at(coin, now))
        ext = st.prices.extremes(coin, now, lookback)
        if ext:
            f.add("coin_low", (coin,), ext[0])
            f.add("coin_high", (coin,), ext[1])
        info = (res.clusters.get("coins", {}).get(coin) if res and res.clusters else None) or {}
        f.add("coin_near_extreme", (coin, "long"), info.get("long_share_near_low"))
        f.add("coin_near_extreme", (coin, "short"), info.get("short_share_near_high"))
        div = res.divergence.get(coin) if res else None
        if div is not None:
            f.add("div_active", (coin,), float(div.flag))
            f.add("div_liq", (coin,), div.liq_slope)
            f.add("div_range", (coin,), div.range_slope)
    near = res.near_extreme if res else None
    if near:
        f.add("near_extreme", ("long",), near.long_share_near_low)
        f.add("near_extreme", ("short",), near.short_share_near_high)
    b = res.breadth if res else None
    if b:
        f.add("breadth_down", ("1h",), b.down_1h_share)
        f.add("breadth_down", ("24h",), b.down_24h_share)
        f.add("breadth_coins", ("1h",), b.coins_1h)
        f.add("breadth_coins", ("24h",), b.coins_24h)


def _stress(st: WorkerState, f: _Families) -> None:
    res = st.last_stress
    if res is None:
        return
    for w in SIGNAL_WINDOWS:
        imb, conc = res.imbalance[w], res.concentration[w]
        f.add("long_share", (w,), imb.long_share)
        for ex, share in imb.per_exchange.items():
            f.add("ex_long_share", (ex, w), share)
        for ex, share in conc.shares.items():
            f.add("ex_share", (ex, w), share)
        f.add("top2", (w,), conc.top2_share)
        f.add("hhi", (w,), conc.hhi)
    for side in SIDES:
        sp = res.spike[side]
        f.add("spike_multiple", (side,), sp.multiple)
        f.add("spike_active", (side,), 1.0 if sp.flag else 0.0)
        cs = res.cascades[side]
        f.add("cascade_active", (side,), 1.0 if cs.active else 0.0)
        f.add("cascade_size", (side,), cs.size_usd)
    d = res.deleveraging
    f.add("delev_share", (), d.largest_hour_share or 0.0)
    f.add("delev_hours", (), d.distinct_spike_hours)
    for state in ("calm", "staged", "capitulation"):
        f.add("delev_state", (state,), 1.0 if d.label == state else 0.0)
    f.add("index", (), res.index.value)
    for comp, val in res.index.components.items():
        f.add("component", (comp,), val)


def _leverage(st: WorkerState, f: _Families) -> None:
    res = st.last_stress
    lev = res.leverage if res else None
    if res is None or lev is None:
        return  # no open interest read yet: no series (absent, not 0)
    m = lev.market
    f.add("oi_usd", (), m.oi_usd)
    for ex, share in sorted(m.coverage.items()):
        f.add("oi_coverage", (ex,), share)
    for w, ch in m.changes.items():
        f.add("oi_change", (w,), ch.change_ratio)
    for w, it in m.intensity.items():
        f.add("intensity", (w,), it.ratio)
    f.add("funding", (), m.crowding.funding_8h)
    f.add("buildup", (), m.buildup.score)
    f.add("buildup_active", (), 1.0 if m.buildup.flag else 0.0)
    for state in sg.OI_DELEVERAGING_LABELS:
        f.add("oi_delev_state", (state,), 1.0 if m.deleveraging.label == state else 0.0)
    f.add("oi_delev_decline", (), m.deleveraging.total_decline)
    for state in sg.CROWDING_LABELS:
        f.add("crowding_state", (state,), 1.0 if m.crowding.label == state else 0.0)
    for coin, c in sorted(lev.coins.items()):
        if c.oi_usd is None:
            continue  # a coin no venue reports open interest for
        f.add("coin_oi_usd", (coin,), c.oi_usd)
        for w, ch in c.changes.items():
            f.add("coin_oi_change", (coin, w), ch.change_ratio)
        f.add("coin_funding", (coin,), c.crowding.funding_8h)
        f.add("coin_buildup", (coin,), c.buildup.score)
        for state in sg.CROWDING_LABELS:
            f.add("coin_crowding_state", (coin, state), 1.0 if c.crowding.label == state else 0.0)
    for coin, m in sorted(res.liquidation_map.items()):
        for side in SIDES:
            part = m[side]
            for pct, usd in part["within_pct"].items():
                f.add("map_usd", (coin, side, f"{pct}pct"), usd)
            if part["top"]:
                f.add("map_top_price", (coin, side), part["top"][0]["price"])
                f.add("map_top_usd", (coin, side), part["top"][0]["usd"])


def register(state: WorkerState) -> WorkerCollector:
    """Export ``state`` on its metrics' registry; call it on the thread (and in the loop, if
    any) that changes the state."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    collector = WorkerCollector(state, loop)
    state.metrics.registry.register(collector)
    return collector
