"""Prometheus metrics for liqstress, built on an injected registry.

Every metric lives on the registry passed to :meth:`Metrics.create`, so tests use a fresh
``CollectorRegistry`` and several components in one process (collectors and worker in
``liqstress run``) share one ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


def _no_sink_yet(gauge: Gauge) -> Gauge:
    gauge.set(float("nan"))
    return gauge


@dataclass
class Metrics:
    registry: CollectorRegistry
    #: Exchanges and coins whose worker series are exported at 0 before any data.
    known_exchanges: list[str] = field(default_factory=list, kw_only=True)
    known_coins: list[str] = field(default_factory=list, kw_only=True)
    # Collector side: how the sources are doing. The worker's values (windows, counters,
    # prices, signals) are read from its state at scrape time: agents/exporter.py.
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
    # Delivery to Kafka (streams/publisher.py KafkaSink) and the raw-frame policy.
    sink_up: Gauge
    publish_backlog_records: Gauge
    publish_backlog_bytes: Gauge
    publish_dropped: Counter
    publish_sent: Counter
    raw_skipped: Counter
    # Topic retention as the broker reports it (liqstress/infra/topic_admin.py, checked at start).
    topic_retention_seconds: Gauge
    topic_retention_missing: Gauge
    # The supervised embedded broker and its journal (liqstress/infra/supervisor.py).
    broker_up: Gauge
    broker_rss: Gauge
    broker_memory_cap: Gauge
    broker_recycle_threshold: Gauge
    broker_restarts: Counter
    broker_refill_records: Gauge
    broker_refill_seconds: Gauge
    journal_bytes: Gauge
    journal_max_bytes: Gauge
    journal_oldest_ts: Gauge
    journal_records: Counter
    journal_dropped_bytes: Counter

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None, worker: bool = True) -> Metrics:
        """``worker`` is kept for callers; the worker registers its own scrape-time collector
        (agents/exporter.py) on ``registry``, so a collector alone exports no worker series."""
        reg = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=reg,
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
            # NaN until a KafkaSink sets them: a process without a sink (a worker) must not
            # report sink_up 0, which pages.
            sink_up=_no_sink_yet(Gauge(
                "liqstress_sink_up",
                "1 while the Kafka broker accepts the collector's records; 0 from the first "
                "failed connect or send until a send succeeds again; NaN without a sink.",
                registry=reg)),
            publish_backlog_records=_no_sink_yet(Gauge(
                "liqstress_publish_backlog_records",
                "Records accepted by the collector and not yet acknowledged by the broker.",
                registry=reg)),
            publish_backlog_bytes=_no_sink_yet(Gauge(
                "liqstress_publish_backlog_bytes",
                "Bytes (keys and values) of the records waiting for the broker.",
                registry=reg)),
            publish_dropped=Counter(
                "liqstress_publish_dropped_total",
                "Records given up unsent: the oldest when the backlog is full, or records "
                "larger than the producer's request size.", ["topic"], registry=reg),
            publish_sent=Counter(
                "liqstress_publish_sent_total",
                "Records acknowledged by the broker.", ["topic"], registry=reg),
            raw_skipped=Counter(
                "liqstress_raw_skipped_total",
                "Frames not published to the raw topic because of the raw-frame policy.",
                ["exchange"], registry=reg),
            topic_retention_seconds=Gauge(
                "liqstress_topic_retention_seconds",
                "Retention of the topic as the broker reports it (retention.ms); absent when "
                "the broker reports none or an unlimited one.", ["topic"], registry=reg),
            topic_retention_missing=Gauge(
                "liqstress_topic_retention_missing",
                "1 when the topic has no known retention limit (retention.ms -1, absent, or "
                "configs not returned by the broker).", ["topic"], registry=reg),
            broker_up=Gauge(
                "liqstress_broker_up",
                "1 while the embedded broker process runs and has been refilled; 0 from the "
                "moment it died (or is being recycled) until it is back.", registry=reg),
            broker_rss=Gauge(
                "liqstress_broker_resident_memory_bytes",
                "Resident memory of the embedded broker process.", registry=reg),
            broker_memory_cap=Gauge(
                "liqstress_broker_memory_cap_bytes",
                "Documented ceiling of the embedded broker's resident memory: the recycle "
                "threshold plus headroom for growth between checks (docs/storage.md).",
                registry=reg),
            broker_recycle_threshold=Gauge(
                "liqstress_broker_recycle_threshold_bytes",
                "Resident memory above which the embedded broker is recycled "
                "(--broker-recycle-bytes).", registry=reg),
            broker_restarts=Counter(
                "liqstress_broker_restarts",
                "Embedded broker restarts, by reason: crash (it died) or recycle (planned, "
                "to give its memory back).", ["reason"], registry=reg),
            broker_refill_records=Gauge(
                "liqstress_broker_refill_records",
                "Records the last refill produced from the journal into the embedded broker.",
                registry=reg),
            broker_refill_seconds=Gauge(
                "liqstress_broker_refill_seconds",
                "Duration of the last refill of the embedded broker from the journal.",
                registry=reg),
            journal_bytes=Gauge(
                "liqstress_journal_bytes",
                "Bytes of the on-disk journal the embedded broker is refilled from.",
                registry=reg),
            journal_max_bytes=Gauge(
                "liqstress_journal_max_bytes",
                "Byte cap of the journal (--journal-max-bytes); above it the oldest segments "
                "are dropped before their retention.", registry=reg),
            journal_oldest_ts=Gauge(
                "liqstress_journal_oldest_timestamp_seconds",
                "Timestamp of the oldest record in the journal (0 = empty).", registry=reg),
            journal_records=Counter(
                "liqstress_journal_records",
                "Records appended to the journal by this process.", ["topic"], registry=reg),
            journal_dropped_bytes=Counter(
                "liqstress_journal_dropped_bytes",
                "Journal bytes dropped before their retention because the journal reached "
                "its byte cap (history lost).", ["topic"], registry=reg),
        )

    def init_exchanges(self, exchanges: Iterable[str], sampled: dict[str, bool] | None = None) -> None:
        """Exchanges whose worker series are exported at 0 before their first event, so
        absent data is visible as 0, not as a gap (read by agents/exporter.py)."""
        for ex in exchanges:
            if ex not in self.known_exchanges:
                self.known_exchanges.append(ex)

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
            if coin not in self.known_coins:
                self.known_coins.append(coin)
