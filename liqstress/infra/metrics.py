"""Prometheus metrics for liqstress, built on an injected registry.

Every collector-side metric is declared once, below, as a class attribute of :class:`Metrics`
(name, help, labels, initial value). :meth:`Metrics.create` builds each declared metric on the
registry it is given, so tests use a fresh ``CollectorRegistry`` and several components in one
process (collectors and worker in ``liqstress run``) share one ``/metrics``. The same registry
also gets the process and Python runtime metrics (``process_*``, ``python_*``).

The worker's values (windows, counters, prices, signals) are not declared here: the worker
exports the last immutable snapshot of its state at scrape time (agents/exporter.py).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)

M = TypeVar("M", Counter, Gauge)


@dataclass(frozen=True)
class MetricSpec(Generic[M]):
    """One declared metric. As a class attribute of :class:`Metrics` it reads, on an instance,
    as the metric built on that instance's registry (typed ``Gauge`` or ``Counter``)."""

    kind: type[M]
    name: str
    help: str
    labels: tuple[str, ...] = ()
    #: Value set when the metric is created (unlabelled metrics only); None leaves the
    #: client's default (0).
    initial: float | None = None
    attr: str = field(default="", compare=False)

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "attr", name)

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> MetricSpec[M]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> M: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> MetricSpec[M] | M:
        if obj is None:
            return self
        # Built metrics live in the instance's __dict__ under the same name, which Python
        # reads before this (non-data) descriptor: this only runs for one never built.
        raise AttributeError(f"{self.attr}: {type(obj).__name__} not built by create()")

    @property
    def type_name(self) -> str:
        return "counter" if self.kind is Counter else "gauge"

    def build(self, registry: CollectorRegistry) -> M:
        metric = self.kind(self.name, self.help, self.labels, registry=registry)
        if self.initial is not None:
            metric.set(self.initial)  # type: ignore[union-attr]  # gauges only (checked)
        return metric


def gauge(name: str, help: str, labels: tuple[str, ...] = (),
          initial: float | None = None) -> MetricSpec[Gauge]:
    return MetricSpec(Gauge, name, help, labels, initial)


def counter(name: str, help: str, labels: tuple[str, ...] = ()) -> MetricSpec[Counter]:
    return MetricSpec(Counter, name, help, labels)


EX = ("exchange",)
TOPIC = ("topic",)
#: A process without a sink (a worker) must not report sink_up 0, which pages: NaN until a
#: KafkaSink sets them.
NO_SINK_YET = math.nan
#: registry -> the Metrics built on it: a registry given to create() again gets those back
#: (its metrics cannot be registered twice).
_BUILT: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = weakref.WeakKeyDictionary()


class Metrics:
    """The collector-side metrics of one process, on one registry."""

    # ---- how the sources are doing (streams/) ------------------------------------------
    source_up = gauge(
        "liqstress_source_up",
        "1 while the venue connection is subscribed and answers our pings.", EX)
    source_last_message_ts = gauge(
        "liqstress_source_last_message_timestamp_seconds",
        "Receipt time of the last frame of any kind (data, ack or pong) from the venue.", EX)
    source_last_liquidation_ts = gauge(
        "liqstress_source_last_liquidation_timestamp_seconds",
        "Receipt time of the last liquidation event from the venue.", EX)
    source_reconnects = counter(
        "liqstress_source_reconnects_total",
        "Websocket reconnections after a drop, a failed connect or a missed pong.", EX)
    source_frames = counter(
        "liqstress_source_frames_total",
        "Frames received from the venue, by kind.", ("exchange", "kind"))
    source_events = counter(
        "liqstress_source_events_total",
        "Normalized liquidation events published by the collector.", EX)
    source_sampled = gauge(
        "liqstress_source_sampled",
        "1 where the venue throttles or samples its feed, so totals are a floor.", EX)
    snapshot_dropped = counter(
        "liqstress_snapshot_dropped_total",
        "Events the venue replayed on (re)subscribe, dropped as history.", EX)
    unpriced = counter(
        "liqstress_unpriced_total",
        "Events published with notional_usd null because contract metadata was missing.", EX)
    deadletter = counter(
        "liqstress_deadletter_total",
        "Frames sent to the dead-letter topic, by reason.", ("exchange", "reason"))
    source_prices = counter(
        "liqstress_source_prices_total",
        "Price ticks (mark or mid) published by the collector.", EX)
    source_last_price_ts = gauge(
        "liqstress_source_last_price_timestamp_seconds",
        "Receipt time of the last price frame kept from the venue (0 = none yet).", EX)
    oi_polls = counter(
        "liqstress_oi_polls_total",
        "Open-interest and funding polls, by outcome: ok (every request gave a usable "
        "body) or error.", ("exchange", "outcome"))
    oi_last_success_ts = gauge(
        "liqstress_oi_last_success_timestamp_seconds",
        "Time of the last open-interest poll whose every request succeeded (0 = none yet).", EX)
    oi_records = counter(
        "liqstress_oi_records_total",
        "Open-interest records (one per instrument and poll) published by the collector.", EX)
    oi_unpriced = counter(
        "liqstress_oi_unpriced_total",
        "Open-interest records published with oi_usd null: contract size or price unknown.", EX)
    oi_skipped = counter(
        "liqstress_oi_skipped_total",
        "Instruments of an open-interest listing left out because a field could not be read.",
        EX)

    # ---- the warm start: each venue's public history read on start (Collector._backfill) ---
    backfill_state = gauge(
        "liqstress_backfill_state",
        "1 for the venue's warm-start state (pending, running, done, failed or off), 0 for "
        "the others: failed = some history could not be read (see the warnings).",
        ("exchange", "state"))
    backfill_requests = counter(
        "liqstress_backfill_requests_total",
        "Warm-start history requests, by outcome: ok, rate_limited (HTTP 429), timeout or "
        "error (network, 5xx, other 4xx, an unusable body).", ("exchange", "outcome"))
    backfill_events = counter(
        "liqstress_backfill_events_total",
        "Liquidation events published from the venue's history on start (backfill: true).",
        EX)
    source_covered_since = gauge(
        "liqstress_source_covered_since_timestamp_seconds",
        "Earliest time from which the venue's windows are complete: the start of the warm "
        "start's window once it is done, else the process start.", EX)

    # ---- delivery to Kafka (streams/publisher.py KafkaSink) and the raw-frame policy -----
    sink_up = gauge(
        "liqstress_sink_up",
        "1 while the Kafka broker accepts the collector's records; 0 from the first "
        "failed connect or send until a send succeeds again; NaN without a sink.",
        initial=NO_SINK_YET)
    publish_backlog_records = gauge(
        "liqstress_publish_backlog_records",
        "Records accepted by the collector and not yet acknowledged by the broker.",
        initial=NO_SINK_YET)
    publish_backlog_bytes = gauge(
        "liqstress_publish_backlog_bytes",
        "Bytes (keys and values) of the records waiting for the broker.", initial=NO_SINK_YET)
    publish_dropped = counter(
        "liqstress_publish_dropped_total",
        "Records given up unsent: the oldest when the backlog is full, or records "
        "larger than the producer's request size.", TOPIC)
    publish_sent = counter(
        "liqstress_publish_sent_total", "Records acknowledged by the broker.", TOPIC)
    raw_skipped = counter(
        "liqstress_raw_skipped_total",
        "Frames not published to the raw topic because of the raw-frame policy.", EX)

    # ---- topic retention as the broker reports it (infra/topic_admin.py) ------------------
    topic_retention_seconds = gauge(
        "liqstress_topic_retention_seconds",
        "Retention of the topic as the broker reports it (retention.ms); absent when "
        "the broker reports none or an unlimited one.", TOPIC)
    topic_retention_missing = gauge(
        "liqstress_topic_retention_missing",
        "1 when the topic has no known retention limit (retention.ms -1, absent, or "
        "configs not returned by the broker).", TOPIC)

    # ---- the supervised embedded broker and its journal (infra/supervisor.py) -------------
    broker_up = gauge(
        "liqstress_broker_up",
        "1 while the embedded broker process runs and has been refilled; 0 from the "
        "moment it died (or is being recycled) until it is back.")
    broker_rss = gauge(
        "liqstress_broker_resident_memory_bytes",
        "Resident memory of the embedded broker process.")
    broker_memory_cap = gauge(
        "liqstress_broker_memory_cap_bytes",
        "Documented ceiling of the embedded broker's resident memory: the recycle "
        "threshold plus headroom for growth between checks (docs/storage.md).")
    broker_recycle_threshold = gauge(
        "liqstress_broker_recycle_threshold_bytes",
        "Resident memory above which the embedded broker is recycled "
        "(--broker-recycle-bytes).")
    broker_restarts = counter(
        "liqstress_broker_restarts",
        "Embedded broker restarts, by reason: crash (it died) or recycle (planned, "
        "to give its memory back).", ("reason",))
    broker_refill_records = gauge(
        "liqstress_broker_refill_records",
        "Records the last refill produced from the journal into the embedded broker.")
    broker_refill_seconds = gauge(
        "liqstress_broker_refill_seconds",
        "Duration of the last refill of the embedded broker from the journal.")
    journal_bytes = gauge(
        "liqstress_journal_bytes",
        "Bytes of the on-disk journal the embedded broker is refilled from.")
    journal_max_bytes = gauge(
        "liqstress_journal_max_bytes",
        "Byte cap of the journal (--journal-max-bytes); above it the oldest segments "
        "are dropped before their retention.")
    journal_oldest_ts = gauge(
        "liqstress_journal_oldest_timestamp_seconds",
        "Timestamp of the oldest record in the journal (0 = empty).")
    journal_records = counter(
        "liqstress_journal_records",
        "Records appended to the journal by this process.", TOPIC)
    journal_dropped_bytes = counter(
        "liqstress_journal_dropped_bytes",
        "Journal bytes dropped before their retention because the journal reached "
        "its byte cap (history lost).", TOPIC)

    def __init__(self, registry: CollectorRegistry, *,
                 known_exchanges: list[str] | None = None,
                 known_coins: list[str] | None = None) -> None:
        self.registry = registry
        #: Exchanges and coins whose worker series are exported at 0 before any data.
        self.known_exchanges: list[str] = known_exchanges if known_exchanges is not None else []
        self.known_coins: list[str] = known_coins if known_coins is not None else []

    @classmethod
    def specs(cls) -> Iterator[MetricSpec[Any]]:
        """Every declared metric, in declaration order."""
        seen: set[str] = set()
        for klass in reversed(cls.__mro__):
            for attr, spec in vars(klass).items():
                if isinstance(spec, MetricSpec) and attr not in seen:
                    seen.add(attr)
                    yield getattr(cls, attr)

    @classmethod
    def create(cls, registry: CollectorRegistry | None = None, worker: bool = True) -> Metrics:
        """Build every declared metric on ``registry`` (a fresh one when None), plus the
        process and Python runtime collectors; the same registry given again returns the
        metrics already built on it. ``worker`` is kept for callers; the worker registers its
        own scrape-time collector (agents/exporter.py) on ``registry``, so a collector alone
        exports no worker series."""
        reg = registry if registry is not None else CollectorRegistry()
        built = _BUILT.get(reg)
        if built is not None and type(built) is cls:
            return built
        metrics = cls(reg)
        for spec in cls.specs():
            if spec.initial is not None and (spec.kind is not Gauge or spec.labels):
                raise TypeError(f"{spec.name}: an initial value needs an unlabelled gauge")
            metrics.__dict__[spec.attr] = spec.build(reg)
        register_runtime_collectors(reg)
        _BUILT[reg] = metrics
        return metrics

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


def register_runtime_collectors(registry: CollectorRegistry) -> None:
    """``process_*`` and ``python_*`` on ``registry``, once: a registry that has them already
    (the client's default one) keeps its own."""
    # A registry without auto_describe does not detect these collectors twice (they have no
    # describe()), so look at what it holds; the client has no public way to ask.
    held = {type(c) for c in list(getattr(registry, "_collector_to_names", {}))}
    for kind in (ProcessCollector, PlatformCollector, GCCollector):
        if kind in held:
            continue
        try:
            kind(registry=registry)
        except ValueError:  # "Duplicated timeseries" (an auto-describing registry)
            pass
