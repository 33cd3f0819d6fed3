"""The collector-side metric table (liqstress/infra/metrics.py): each metric declared once,
registered once on the injected registry with its name, type, labels and initial value; the
process and Python runtime metrics on the same registry, once."""

from __future__ import annotations

import math

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)

from liqstress.infra.metrics import Metrics, MetricSpec, register_runtime_collectors
from liqstress.infra.supervisor import BROKER_METRICS, unregister

EX = ("exchange",)
#: attribute -> (exposed family name, type, labels): the contract the dashboards, rules and
#: docs rely on. A change here is a change of the public metrics.
EXPECTED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "source_up": ("liqstress_source_up", "gauge", EX),
    "source_last_message_ts": ("liqstress_source_last_message_timestamp_seconds", "gauge", EX),
    "source_last_liquidation_ts": ("liqstress_source_last_liquidation_timestamp_seconds",
                                   "gauge", EX),
    "source_reconnects": ("liqstress_source_reconnects", "counter", EX),
    "source_frames": ("liqstress_source_frames", "counter", ("exchange", "kind")),
    "source_events": ("liqstress_source_events", "counter", EX),
    "source_sampled": ("liqstress_source_sampled", "gauge", EX),
    "snapshot_dropped": ("liqstress_snapshot_dropped", "counter", EX),
    "unpriced": ("liqstress_unpriced", "counter", EX),
    "deadletter": ("liqstress_deadletter", "counter", ("exchange", "reason")),
    "source_prices": ("liqstress_source_prices", "counter", EX),
    "source_last_price_ts": ("liqstress_source_last_price_timestamp_seconds", "gauge", EX),
    "oi_polls": ("liqstress_oi_polls", "counter", ("exchange", "outcome")),
    "oi_last_success_ts": ("liqstress_oi_last_success_timestamp_seconds", "gauge", EX),
    "oi_records": ("liqstress_oi_records", "counter", EX),
    "oi_unpriced": ("liqstress_oi_unpriced", "counter", EX),
    "oi_skipped": ("liqstress_oi_skipped", "counter", EX),
    "backfill_state": ("liqstress_backfill_state", "gauge", ("exchange", "state")),
    "backfill_requests": ("liqstress_backfill_requests", "counter", ("exchange", "outcome")),
    "backfill_events": ("liqstress_backfill_events", "counter", EX),
    "source_covered_since": ("liqstress_source_covered_since_timestamp_seconds", "gauge", EX),
    "sink_up": ("liqstress_sink_up", "gauge", ()),
    "publish_backlog_records": ("liqstress_publish_backlog_records", "gauge", ()),
    "publish_backlog_bytes": ("liqstress_publish_backlog_bytes", "gauge", ()),
    "publish_dropped": ("liqstress_publish_dropped", "counter", ("topic",)),
    "publish_sent": ("liqstress_publish_sent", "counter", ("topic",)),
    "raw_skipped": ("liqstress_raw_skipped", "counter", EX),
    "topic_retention_seconds": ("liqstress_topic_retention_seconds", "gauge", ("topic",)),
    "topic_retention_missing": ("liqstress_topic_retention_missing", "gauge", ("topic",)),
    "broker_up": ("liqstress_broker_up", "gauge", ()),
    "broker_rss": ("liqstress_broker_resident_memory_bytes", "gauge", ()),
    "broker_memory_cap": ("liqstress_broker_memory_cap_bytes", "gauge", ()),
    "broker_recycle_threshold": ("liqstress_broker_recycle_threshold_bytes", "gauge", ()),
    "broker_restarts": ("liqstress_broker_restarts", "counter", ("reason",)),
    "broker_refill_records": ("liqstress_broker_refill_records", "gauge", ()),
    "broker_refill_seconds": ("liqstress_broker_refill_seconds", "gauge", ()),
    "journal_bytes": ("liqstress_journal_bytes", "gauge", ()),
    "journal_max_bytes": ("liqstress_journal_max_bytes", "gauge", ()),
    "journal_oldest_ts": ("liqstress_journal_oldest_timestamp_seconds", "gauge", ()),
    "journal_records": ("liqstress_journal_records", "counter", ("topic",)),
    "journal_dropped_bytes": ("liqstress_journal_dropped_bytes", "counter", ("topic",)),
}
#: Unlabelled gauges that start at NaN: a process without a sink must not report it down.
NAN_AT_START = {"sink_up", "publish_backlog_records", "publish_backlog_bytes"}


def _families(registry: CollectorRegistry) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in registry.collect():
        out.setdefault(fam.name, []).append(fam)
    return out


def test_the_table_is_the_contract() -> None:
    specs = list(Metrics.specs())
    assert [s.attr for s in specs] == list(EXPECTED)  # each declared once, in order
    for spec in specs:
        name, kind, labels = EXPECTED[spec.attr]
        assert spec.name.removesuffix("_total") == name
        assert spec.type_name == kind and spec.labels == labels
        assert spec.help.strip(), spec.name


def test_every_declared_metric_is_registered_once_with_its_type_and_labels() -> None:
    metrics = Metrics.create(CollectorRegistry())
    fams = _families(metrics.registry)
    for attr, (name, kind, labels) in EXPECTED.items():
        built = getattr(metrics, attr)
        assert isinstance(built, Counter if kind == "counter" else Gauge), attr
        assert tuple(built._labelnames) == labels, attr  # noqa: SLF001
        assert len(fams.get(name, [])) == 1, f"{name} registered {len(fams.get(name, []))}x"
        fam = fams[name][0]
        assert fam.type == kind and fam.documentation == getattr(Metrics, attr).help
        if not labels:
            value = metrics.registry.get_sample_value(
                name + ("_total" if kind == "counter" else ""))
            assert value is not None, name
            assert math.isnan(value) if attr in NAN_AT_START else value == 0.0, (name, value)
    liqstress = {n for n in fams if n.startswith("liqstress_")}
    assert liqstress == {name for name, _, _ in EXPECTED.values()}


def test_the_attribute_api_is_unchanged() -> None:
    metrics = Metrics.create(CollectorRegistry())
    metrics.init_exchanges(["binance", "okx", "binance"])
    metrics.init_coins(["BTC"])
    assert metrics.known_exchanges == ["binance", "okx"] and metrics.known_coins == ["BTC"]
    metrics.init_sources({"binance": False, "okx": True})
    metrics.source_frames.labels("binance", "data").inc(3)
    metrics.deadletter.labels(exchange="okx", reason="parse").inc()
    metrics.sink_up.set(1)
    get = metrics.registry.get_sample_value
    assert get("liqstress_source_up", {"exchange": "okx"}) == 0
    assert get("liqstress_source_sampled", {"exchange": "okx"}) == 1
    assert get("liqstress_source_events_total", {"exchange": "binance"}) == 0
    assert get("liqstress_source_frames_total", {"exchange": "binance", "kind": "data"}) == 3
    assert get("liqstress_deadletter_total", {"exchange": "okx", "reason": "parse"}) == 1
    assert get("liqstress_sink_up") == 1
    # On the class, the declaration; on an instance, the metric on its own registry.
    assert isinstance(Metrics.source_up, MetricSpec)
    other = Metrics.create(CollectorRegistry())
    assert other.source_frames is not metrics.source_frames
    assert other.registry.get_sample_value(
        "liqstress_source_frames_total", {"exchange": "binance", "kind": "data"}) is None
    # Taking metrics off a process's /metrics still works by attribute name.
    unregister(metrics, BROKER_METRICS)
    assert get("liqstress_broker_up") is None and get("liqstress_sink_up") == 1


def test_process_and_python_metrics_on_the_injected_registry() -> None:
    metrics = Metrics.create(CollectorRegistry())
    fams = _families(metrics.registry)
    for name in ("process_cpu_seconds", "process_resident_memory_bytes",
                 "process_start_time_seconds", "python_info", "python_gc_collections"):
        assert len(fams.get(name, [])) == 1, name
    assert metrics.registry.get_sample_value("process_resident_memory_bytes") > 0


def test_runtime_collectors_are_registered_once() -> None:
    reg = CollectorRegistry()
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    GCCollector(registry=reg)
    register_runtime_collectors(reg)  # already there (like the client's default registry)
    metrics = Metrics.create(reg)
    register_runtime_collectors(metrics.registry)
    # The same registry again: the metrics already built on it, nothing registered twice.
    assert Metrics.create(reg) is metrics
    fams = _families(reg)
    assert len(fams["process_cpu_seconds"]) == 1 and len(fams["python_info"]) == 1
    assert len(fams["liqstress_source_up"]) == 1


def test_an_initial_value_needs_an_unlabelled_gauge() -> None:
    from liqstress.infra.metrics import gauge

    class Broken(Metrics):
        labelled = gauge("liqstress_test_broken", "Not settable without labels.", ("x",),
                         initial=1.0)

    with pytest.raises(TypeError, match="unlabelled gauge"):
        Broken.create(CollectorRegistry())
