"""Prometheus metrics for liqstress, built on an injected registry.

Every metric lives on the registry passed to :meth:`Metrics.create`, so tests use a fresh
``CollectorRegistry`` and several components in one process (collectors and worker in
``liqstress run``) share one ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

SIDES = ("long", "short")
#: Window names in the order users read them; sizes in seconds live in liqstress.windows.
WINDOW_NAMES = ("1m", "5m", "15m", "1h", "4h", "12h", "24h")
#: Coins get their own series only when allowlisted: venues list hundreds of perps.
DEFAULT_COIN_ALLOWLIST = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB")


@dataclass
class Metrics:
    registry: CollectorRegistry
    # Worker (Faust) side: what was counted.
    liquidations: Counter
    liquidated_usd: Counter
    duplicates: Counter
    window_liquidated_usd: Gauge
    window_liquidations: Gauge
    window_largest_usd: Gauge
    coin_window_liquidated_usd: Gauge
    window_refresh_ts: Gauge
    worker_ready: Gauge
    worker_rebuilt_events: Gauge
    # Collector side: how the sources are doing.
    source_up: Gauge
    source_last_message_ts: Gauge
    source_last_liquidation_ts: Gauge
    source_reconnects: Counter
    source_frames: Counter
    source_events: Counter
    source_sampled: Gauge
    snapshot_dropped: Counter
    unpriced: Counter
    deadletter: Counter
    source_prices: Counter
    source_last_price_ts: Gauge
    # Prices (worker side) and the price-based signals.
    prices: Counter
    price_coins: Gauge
    coin_price: Gauge
    coin_local_low: Gauge
    coin_local_high: Gauge
    near_extreme: Gauge
    coin_near_extreme: Gauge
    divergence_active: Gauge
    divergence_liq_trend: Gauge
    divergence_range_trend: Gauge
    breadth_down: Gauge
    breadth_coins: Gauge
    # Stress signals (liqstress/signals.py), recomputed with the windows.
    long_share: Gauge
    exchange_long_share: Gauge
    spike_multiple: Gauge
    spike_active: Gauge
    exchange_share: Gauge
    top2_share: Gauge
    hhi: Gauge
    cascade_active: Gauge
    cascade_size_usd: Gauge
    cascades: Counter
    deleveraging_largest_hour_share: Gauge
    deleveraging_spike_hours: Gauge
    deleveraging_state: Gauge
    stress_index: Gauge
    stress_component: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None, worker: bool = True) -> Metrics:
        """``worker=False`` (``liqstress collect``) keeps the worker's unlabelled gauges off
        the exposed registry, so a collector never reports ``liqstress_worker_ready 0``."""
        reg = registry if registry is not None else CollectorRegistry()
        wreg = reg if worker else CollectorRegistry()
        ex_side = ["exchange", "side"]
        ex_side_win = ["exchange", "side", "window"]
        return cls(
            registry=reg,
            liquidations=Counter(
                "liqstress_liquidations_total",
                "Liquidations counted by the worker (deduplicated by event id). "
                "side is the position liquidated.",
                ex_side, registry=reg),
            liquidated_usd=Counter(
                "liqstress_liquidated_usd_total",
                "USD notional of liquidations counted by the worker; unpriced events add 0.",
                ex_side, registry=reg),
            duplicates=Counter(
                "liqstress_duplicates_total",
                "Events dropped by the worker because their id was already counted.",
                ["exchange"], registry=reg),
            window_liquidated_usd=Gauge(
                "liqstress_window_liquidated_usd",
                "USD notional liquidated in the rolling window ending now.",
                ex_side_win, registry=reg),
            window_liquidations=Gauge(
                "liqstress_window_liquidations",
                "Number of liquidations in the rolling window ending now.",
                ex_side_win, registry=reg),
            window_largest_usd=Gauge(
                "liqstress_window_largest_liquidation_usd",
                "Largest single liquidation (USD) in the rolling window ending now.",
                ex_side_win, registry=reg),
            coin_window_liquidated_usd=Gauge(
                "liqstress_coin_window_liquidated_usd",
                "USD notional liquidated per allowlisted coin across all exchanges.",
                ["coin", "side", "window"], registry=reg),
            window_refresh_ts=Gauge(
                "liqstress_window_refresh_timestamp_seconds",
                "Wall-clock time the window gauges were last recomputed.",
                registry=wreg),
            worker_ready=Gauge(
                "liqstress_worker_ready",
                "1 once the worker has rebuilt its windows from the liquidations topic.",
                registry=wreg),
            worker_rebuilt_events=Gauge(
                "liqstress_worker_rebuilt_events",
                "Events read back from the liquidations topic at the last (re)start.",
                registry=wreg),
            source_up=Gauge(
                "liqstress_source_up",
                "1 while the venue connection is subscribed and answers our pings.",
                ["exchange"], registry=reg),
            source_last_message_ts=Gauge(
                "liqstress_source_last_message_timestamp_seconds",
                "Receipt time of the last frame of any kind (data, ack or pong) from the venue.",
                ["exchange"], registry=reg),
            source_last_liquidation_ts=Gauge(
                "liqstress_source_last_liquidation_timestamp_seconds",
                "Receipt time of the last liquidation event from the venue.",
                ["exchange"], registry=reg),
            source_reconnects=Counter(
                "liqstress_source_reconnects_total",
                "Websocket reconnections after a drop, a failed connect or a missed pong.",
                ["exchange"], registry=reg),
            source_frames=Counter(
                "liqstress_source_frames_total",
                "Frames received from the venue, by kind.",
                ["exchange", "kind"], registry=reg),
            source_events=Counter(
                "liqstress_source_events_total",
                "Normalized liquidation events published by the collector.",
                ["exchange"], registry=reg),
            source_sampled=Gauge(
                "liqstress_source_sampled",
                "1 where the venue throttles or samples its feed, so totals are a floor.",
                ["exchange"], registry=reg),
            snapshot_dropped=Counter(
                "liqstress_snapshot_dropped_total",
                "Events the venue replayed on (re)subscribe, dropped as history.",
                ["exchange"], registry=reg),
            unpriced=Counter(
                "liqstress_unpriced_total",
                "Events published with notional_usd null because contract metadata was missing.",
                ["exchange"], registry=reg),
            deadletter=Counter(
                "liqstress_deadletter_total",
                "Frames sent to the dead-letter topic, by reason.",
                ["exchange", "reason"], registry=reg),
            source_prices=Counter(
                "liqstress_source_prices_total",
                "Price ticks (mark or mid) published by the collector.",
                ["exchange"], registry=reg),
            source_last_price_ts=Gauge(
                "liqstress_source_last_price_timestamp_seconds",
                "Receipt time of the last price frame kept from the venue (0 = none yet).",
                ["exchange"], registry=reg),
            prices=Counter(
                "liqstress_prices_total",
                "Price ticks applied by the worker.", ["exchange"], registry=wreg),
            price_coins=Gauge(
                "liqstress_price_coins",
                "Coins with a current price (tick within 15 minutes).", registry=wreg),
            coin_price=Gauge(
                "liqstress_coin_price_usd",
                "Current price of an allowlisted coin (USD per coin).", ["coin"], registry=wreg),
            coin_local_low=Gauge(
                "liqstress_coin_local_low_usd",
                "Lowest price of an allowlisted coin over the local-extreme lookback.",
                ["coin"], registry=wreg),
            coin_local_high=Gauge(
                "liqstress_coin_local_high_usd",
                "Highest price of an allowlisted coin over the local-extreme lookback.",
                ["coin"], registry=wreg),
            near_extreme=Gauge(
                "liqstress_near_extreme_ratio",
                "side=long: share of the cluster window's long USD (all coins with prices) "
                "liquidated within the threshold of the coin's local low; side=short: shorts "
                "near the local high (0-1).", ["side"], registry=wreg),
            coin_near_extreme=Gauge(
                "liqstress_coin_near_extreme_ratio",
                "As liqstress_near_extreme_ratio, per allowlisted coin (0-1).",
                ["coin", "side"], registry=wreg),
            divergence_active=Gauge(
                "liqstress_divergence_active",
                "1 while hourly liquidations trend up as the hourly price range shrinks.",
                ["coin"], registry=wreg),
            divergence_liq_trend=Gauge(
                "liqstress_divergence_liquidation_trend",
                "Least-squares slope of hourly liquidated USD over its mean (per hour).",
                ["coin"], registry=wreg),
            divergence_range_trend=Gauge(
                "liqstress_divergence_range_trend",
                "Least-squares slope of the hourly price range over its mean (per hour).",
                ["coin"], registry=wreg),
            breadth_down=Gauge(
                "liqstress_breadth_down_ratio",
                "Share of coins with a price whose price is lower than 1 h / 24 h ago (0-1).",
                ["window"], registry=wreg),
            breadth_coins=Gauge(
                "liqstress_breadth_coins",
                "Coins counted in liqstress_breadth_down_ratio.", ["window"], registry=wreg),
            long_share=Gauge(
                "liqstress_long_share_ratio",
                "Long share of the USD liquidated in the window, all exchanges (0-1); absent "
                "when nothing was liquidated.", ["window"], registry=wreg),
            exchange_long_share=Gauge(
                "liqstress_exchange_long_share_ratio",
                "Long share of the USD liquidated in the window on one exchange (0-1).",
                ["exchange", "window"], registry=wreg),
            spike_multiple=Gauge(
                "liqstress_spike_multiple",
                "Last hour's USD liquidated (all exchanges) over the median of the 24 hourly "
                "totals before it; absent without history.", ["side"], registry=wreg),
            spike_active=Gauge(
                "liqstress_spike_active",
                "1 while the last hour is a spike (multiple >= factor and above the USD floor).",
                ["side"], registry=wreg),
            exchange_share=Gauge(
                "liqstress_exchange_share_ratio",
                "Exchange's share of the USD liquidated in the window, both sides (0-1).",
                ["exchange", "window"], registry=wreg),
            top2_share=Gauge(
                "liqstress_top2_share_ratio",
                "Share of the USD liquidated in the window on the two largest exchanges (0-1).",
                ["window"], registry=wreg),
            hhi=Gauge(
                "liqstress_concentration_hhi_ratio",
                "Herfindahl-Hirschman index of exchange shares in the window (1/n..1).",
                ["window"], registry=wreg),
            cascade_active=Gauge(
                "liqstress_cascade_active",
                "1 while same-direction liquidations on >= 2 venues exceed the cascade threshold.",
                ["side"], registry=wreg),
            cascade_size_usd=Gauge(
                "liqstress_cascade_size_usd",
                "Estimated USD liquidated in the current (or last) cascade of that side.",
                ["side"], registry=wreg),
            cascades=Counter(
                "liqstress_cascades_total",
                "Cascades started, by side.", ["side"], registry=wreg),
            deleveraging_largest_hour_share=Gauge(
                "liqstress_deleveraging_largest_hour_share_ratio",
                "Largest hour's share of the last 24 h of USD liquidated (0-1).",
                registry=wreg),
            deleveraging_spike_hours=Gauge(
                "liqstress_deleveraging_spike_hours",
                "Distinct spike stages among the last 24 hourly totals.", registry=wreg),
            deleveraging_state=Gauge(
                "liqstress_deleveraging_state",
                "1 for the current classification of the last 24 h: calm, staged or "
                "capitulation.", ["state"], registry=wreg),
            stress_index=Gauge(
                "liqstress_stress_index",
                "Composite leverage-stress index, 0-100 (docs/signals.md).", registry=wreg),
            stress_component=Gauge(
                "liqstress_stress_component_ratio",
                "Each stress-index component mapped to 0-1 before weighting.",
                ["component"], registry=wreg),
        )

    def init_exchanges(self, exchanges: Iterable[str], sampled: dict[str, bool] | None = None) -> None:
        """Create every known series at 0 so absent data is visible as 0, not as a gap."""
        for ex in exchanges:
            for side in SIDES:
                self.liquidations.labels(ex, side)
                self.liquidated_usd.labels(ex, side)
                for w in WINDOW_NAMES:
                    self.window_liquidated_usd.labels(ex, side, w)
                    self.window_liquidations.labels(ex, side, w)
                    self.window_largest_usd.labels(ex, side, w)
            self.duplicates.labels(ex)

    def init_sources(self, sampled: dict[str, bool]) -> None:
        for ex, is_sampled in sampled.items():
            self.source_up.labels(ex).set(0)
            self.source_last_message_ts.labels(ex)
            self.source_last_liquidation_ts.labels(ex)
            self.source_reconnects.labels(ex)
            self.source_events.labels(ex)
            self.snapshot_dropped.labels(ex)
            self.unpriced.labels(ex)
            self.source_sampled.labels(ex).set(1 if is_sampled else 0)

    def init_coins(self, coins: Iterable[str]) -> None:
        for coin in coins:
            for side in SIDES:
                for w in WINDOW_NAMES:
                    self.coin_window_liquidated_usd.labels(coin, side, w)
