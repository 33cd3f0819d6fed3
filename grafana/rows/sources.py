"""Source health: the collectors' websocket feeds."""

from __future__ import annotations

from panels import (
    EXCHANGE,
    Q,
    Row,
    Settings,
    fixed,
    increase_bars,
    sel,
    stat,
    timeseries,
    value_map,
)

from rows.flow import INCREASE_INTERVAL


def _by_exchange(metric: str) -> str:
    return f"max by (exchange) ({sel(metric, EXCHANGE)})"


def _age(metric: str) -> str:
    return f"time() - max by (exchange) ({sel(metric, EXCHANGE)} > 0)"


def _increase(metric: str, by: str = "exchange") -> str:
    return f"sum by ({by}) (increase({sel(metric, EXCHANGE)}[$__interval]))"


def _rate(metric: str, by: str = "exchange") -> str:
    return f"sum by ({by}) (rate({sel(metric, EXCHANGE)}[$__rate_interval]))"


def row(cfg: Settings) -> Row:
    return Row(
        "Source health",
        stat("Connected", "1 while the venue connection is subscribed and answers pings.",
             [Q(_by_exchange("liqstress_source_up"), "{{exchange}}")], unit="none",
             color=fixed("blue").mode("thresholds"), steps=(("red", None), ("green", 1)),
             mappings=[value_map(("0", "down", "red"), ("1", "up", "green"))], background=True,
             w=6, h=5),
        stat("Time since last frame",
             "Age of the last frame of any kind (data, ack or pong). Pings go out every <= 30 s, "
             "so this stays small on a healthy feed; LiqStressSourceSilent fires above 120 s.",
             [Q(_age("liqstress_source_last_message_timestamp_seconds"), "{{exchange}}")],
             unit="s", color=fixed("blue").mode("thresholds"),
             steps=(("green", None), ("orange", 60), ("red", 120)), background=True, w=6, h=5),
        stat("Time since last liquidation",
             "Informational only: liquidation feeds are sparse, a quiet market can go minutes "
             "without one. Not a health signal; use Time since last frame.",
             [Q(_age("liqstress_source_last_liquidation_timestamp_seconds"), "{{exchange}}")],
             unit="s", color=fixed("blue"), w=6, h=5),
        stat("Feed completeness",
             "'sampled: floor' where the venue throttles or samples its feed (e.g. Binance sends "
             "at most one liquidation per symbol per second), so its totals are a lower bound.",
             [Q(_by_exchange("liqstress_source_sampled"), "{{exchange}}")], unit="none",
             color=fixed("blue").mode("thresholds"), steps=(("green", None), ("orange", 1)),
             mappings=[value_map(("0", "complete", "green"), ("1", "sampled: floor", "orange"))],
             background=True, w=6, h=5),
        increase_bars("Reconnects",
                      "Websocket reconnections (drop, failed connect or missed pong) per bar "
                      "interval; the legend sums them over the time range. "
                      "LiqStressSourceFlapping fires above 5 in 15m.",
                      [Q(_increase("liqstress_source_reconnects_total"), "{{exchange}}")],
                      unit="short", interval=INCREASE_INTERVAL, w=8, h=7),
        increase_bars("Dead-lettered frames",
                      "Frames sent to the dead-letter topic, by reason, per bar interval; the "
                      "legend sums them over the time range.",
                      [Q(_increase("liqstress_deadletter_total", "exchange, reason"),
                         "{{exchange}} {{reason}}")],
                      unit="short", interval=INCREASE_INTERVAL, w=8, h=7),
        increase_bars("Unpriced events",
                      "Events published with notional_usd null because contract metadata was "
                      "missing; they add 0 USD. Per bar interval; the legend sums them over the "
                      "time range.",
                      [Q(_increase("liqstress_unpriced_total"), "{{exchange}}")],
                      unit="short", interval=INCREASE_INTERVAL, w=8, h=7),
        timeseries("Frames received per second by kind",
                   "Frames from each venue by kind (data, ack, pong, ...).",
                   [Q(_rate("liqstress_source_frames_total", "exchange, kind"),
                      "{{exchange}} {{kind}}")], unit="cps", w=12, h=7),
        timeseries("Events: published, counted, dropped",
                   "Collector-published events vs events counted by the worker, and the events "
                   "dropped as duplicates or as (re)subscribe snapshots.",
                   [Q(_rate("liqstress_source_events_total"), "{{exchange}} published"),
                    Q(_rate("liqstress_liquidations_total"), "{{exchange}} counted"),
                    Q(_rate("liqstress_duplicates_total"), "{{exchange}} duplicate"),
                    Q(_rate("liqstress_snapshot_dropped_total"),
                      "{{exchange}} replayed snapshot dropped")],
                   unit="cps", w=12, h=7),
    )
