"""Topic retention: the topic table (liqstress/topics.py), what the embedded broker (Tansu) does
with CreateTopics configs and DescribeConfigs, and the retention check at start
(liqstress/infra/topic_admin.py). docs/topics.md documents the Tansu behaviour pinned here."""

from __future__ import annotations

import logging
import re
from collections import namedtuple
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    ResourceType,
)
from prometheus_client import CollectorRegistry, start_http_server

from liqstress.config import ConfigError, Topics
from liqstress.infra.broker import EmbeddedBroker, free_port
from liqstress.infra.metrics import Metrics
from liqstress.infra.topic_admin import (
    TopicConfigs,
    check_topics,
    classify_topics,
    ensure_topics,
    parse_describe_configs,
    report_topic_retention,
)
from liqstress.topics import (
    DEFAULT_RETENTION_MS,
    HOUR_MS,
    Retention,
    TopicSpec,
    format_duration_ms,
    markdown_table,
    parse_duration_ms,
    topic_specs,
)

from .helpers import sample, scrape

ROOT = Path(__file__).resolve().parents[1]


def _describe(bootstrap: str, names: list[str]) -> dict[str, dict[str, tuple[str | None, int, bool]]]:
    """DescribeConfigs through a second, independent client (librdkafka):
    {topic: {config: (value, source, is_default)}}."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.describe_configs([ConfigResource(ResourceType.TOPIC, n) for n in names],
                                     request_timeout=10)
    return {res.name: {k: (v.value, v.source, v.is_default) for k, v in fut.result(10).items()}
            for res, fut in futures.items()}


def _scrape_metrics(metrics: Metrics) -> dict:
    """A real scrape of ``metrics`` over HTTP."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    try:
        return scrape(int(server.server_address[1]))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _create(bootstrap: str, *topics: NewTopic) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics(list(topics), request_timeout=10).values():
        fut.result(10)


# ---- the table and its parsing ------------------------------------------------------------------

def test_docs_table_matches_the_code() -> None:
    text = (ROOT / "docs" / "topics.md").read_text()
    m = re.search(r"<!-- topics-table:start -->\n(.*?)\n<!-- topics-table:end -->", text, re.S)
    assert m, "docs/topics.md lost its table markers"
    assert m.group(1) == markdown_table(topic_specs(Topics())), (
        "docs/topics.md is out of date; paste markdown_table(topic_specs(Topics())) between "
        "the markers")


def test_every_topic_has_a_spec_with_retention() -> None:
    topics = Topics.with_prefix("p.")
    specs = topic_specs(topics, partitions=6)
    assert {s.name for s in specs} == set(vars(topics).values())
    assert {s.role for s in specs} == set(DEFAULT_RETENTION_MS)
    for s in specs:
        assert s.configs == {"retention.ms": str(DEFAULT_RETENTION_MS[s.role]),
                             "cleanup.policy": "delete"}
        assert s.writers and s.readers and s.key
    by_role = {s.role: s for s in specs}
    assert by_role["events"].partitions == 6 and by_role["partials"].partitions == 1
    # events/prices cover the 25 h the worker rebuilds, with margin
    assert by_role["events"].retention_ms == by_role["prices"].retention_ms == 30 * HOUR_MS


@pytest.mark.parametrize(("text", "ms"), [
    ("90s", 90_000), ("15m", 900_000), ("30h", 108_000_000), ("7d", 604_800_000),
    ("250ms", 250), ("45", 45_000), (" 1.5h ", 5_400_000),
])
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "h", "5x", "-5m", "0s", "1e3s", "5 m s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration_ms(text)


def test_retention_parse_overrides_named_roles_only() -> None:
    r = Retention.parse("raw=1h, deadletter=3d,events=26h")
    assert r.ms == {**DEFAULT_RETENTION_MS, "raw": HOUR_MS, "deadletter": 72 * HOUR_MS,
                    "events": 26 * HOUR_MS}
    assert Retention.parse(None).ms == DEFAULT_RETENTION_MS == Retention.parse(" , ").ms
    specs = {s.role: s for s in topic_specs(Topics(), retention=r)}
    assert specs["raw"].configs["retention.ms"] == "3600000"
    assert specs["prices"].retention_ms == 30 * HOUR_MS


@pytest.mark.parametrize("text", ["raw", "bogus=1h", "raw=", "raw=1y", "=1h", "raw=0s",
                                  "events=5m,prices"])
def test_retention_parse_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        Retention.parse(text)


def test_format_duration_round_trips() -> None:
    for ms in (*DEFAULT_RETENTION_MS.values(), 90_000, 250, 1500):
        assert parse_duration_ms(format_duration_ms(ms)) == ms


# ---- classification (pure) ----------------------------------------------------------------------

def _spec(role: str, ms: int) -> TopicSpec:
    return TopicSpec(role, f"t.{role}", 1, ms, "k", "r")


def test_classify_topics() -> None:
    specs = [_spec("events", 30 * HOUR_MS), _spec("prices", 30 * HOUR_MS),
             _spec("raw", 6 * HOUR_MS), _spec("deadletter", 72 * HOUR_MS),
             _spec("windows", HOUR_MS), _spec("signals", 6 * HOUR_MS),
             _spec("partials", HOUR_MS)]
    described = {
        "t.events": TopicConfigs({"retention.ms": "3600000", "cleanup.policy": "delete"}),
        "t.prices": TopicConfigs({"retention.ms": "-1"}),
        # shorter than the spec, but only events/prices are read back: not an issue
        "t.raw": TopicConfigs({"retention.ms": "60000"}),
        "t.deadletter": TopicConfigs({"cleanup.policy": "delete"}),
        "t.windows": TopicConfigs({}),
        "t.signals": TopicConfigs({}, "UnknownTopicOrPartitionError"),
        # t.partials: not in the answer at all
    }
    got = {i.topic: (i.kind, i.retention_ms) for i in classify_topics(specs, described)}
    assert got == {
        "t.events": ("short", HOUR_MS),
        "t.prices": ("unlimited", -1),
        "t.deadletter": ("missing", None),
        "t.windows": ("unknown", None),
        "t.signals": ("unknown", None),
        "t.partials": ("unknown", None),
    }
    fine = {"t.events": TopicConfigs({"retention.ms": str(40 * HOUR_MS)}),
            "t.prices": TopicConfigs({"retention.ms": str(30 * HOUR_MS)})}
    assert classify_topics(specs[:2], fine) == []
    assert [i.kind for i in classify_topics(
        specs[:1], {"t.events": TopicConfigs({"retention.ms": "soon"})})] == ["missing"]


def test_issue_messages_say_what_and_why() -> None:
    specs = [_spec("events", 30 * HOUR_MS), _spec("raw", 6 * HOUR_MS)]
    described = {"t.events": TopicConfigs({"retention.ms": str(5 * 60_000)}),
                 "t.raw": TopicConfigs({"retention.ms": "-1"})}
    msgs = [i.message() for i in classify_topics(specs, described)]
    assert "t.events" in msgs[0] and "5m" in msgs[0] and "30h" in msgs[0]
    assert "restart" in msgs[0]
    assert "t.raw" in msgs[1] and "without bound" in msgs[1]


def test_parse_describe_configs_response_shapes() -> None:
    resp = namedtuple("resp", "resources")
    # v0 entries end with is_default; v1+ with config_source and synonyms
    v0 = resp([(0, None, 2, "a", [("retention.ms", "1000", False, False, False)])])
    v2 = resp([(0, "", 2, "b", [("retention.ms", "2000", False, 5, False, []),
                                  ("cleanup.policy", "delete", False, 5, False, [])]),
               (3, "no such topic", 2, "c", []),
               (0, "", 4, "1", [("log.retention.ms", "5", False, 5, False, [])])])
    assert parse_describe_configs([v0, v2]) == {
        "a": TopicConfigs({"retention.ms": "1000"}),
        "b": TopicConfigs({"retention.ms": "2000", "cleanup.policy": "delete"}),
        "c": TopicConfigs({}, "UnknownTopicOrPartitionError: no such topic"),
    }


# ---- the embedded broker ------------------------------------------------------------------------

@pytest.mark.timeout(60)
async def test_tansu_keeps_create_configs_verbatim(broker: EmbeddedBroker) -> None:
    retention = Retention.parse("raw=90m,events=26h")
    specs = topic_specs(Topics(), partitions=2, retention=retention)
    created = await ensure_topics(broker.bootstrap, specs)
    assert sorted(created) == sorted(s.name for s in specs)

    described = _describe(broker.bootstrap, [s.name for s in specs])
    for spec in specs:
        # Exactly what was sent and nothing more: no broker defaults (Kafka returns ~30
        # entries), each entry reported as a default although it is a topic override.
        assert described[spec.name] == {
            k: (v, ConfigSource.DEFAULT_CONFIG.value, True) for k, v in spec.configs.items()
        }, spec.name
    assert await check_topics(broker.bootstrap, specs) == []


@pytest.mark.timeout(60)
async def test_tansu_gaps_are_reported(broker: EmbeddedBroker) -> None:
    _create(broker.bootstrap, NewTopic("bare", 1, 1),
            NewTopic("forever", 1, 1, config={"retention.ms": "-1", "foo.bar": "x"}))
    described = _describe(broker.bootstrap, ["bare", "forever", "never-created"])
    # Created without configs: nothing to describe. A topic that does not exist: the same
    # empty answer, no error (Kafka: UNKNOWN_TOPIC_OR_PARTITION). Unknown keys are kept.
    assert described["bare"] == {}
    assert described["never-created"] == {}
    assert {k: v[0] for k, v in described["forever"].items()} == {"retention.ms": "-1",
                                                                 "foo.bar": "x"}

    specs = [TopicSpec("raw", "bare", 1, HOUR_MS, "k", "r"),
             TopicSpec("events", "forever", 1, HOUR_MS, "k", "r"),
             TopicSpec("prices", "never-created", 1, HOUR_MS, "k", "r")]
    assert {(i.topic, i.kind) for i in await check_topics(broker.bootstrap, specs)} == {
        ("bare", "unknown"), ("forever", "unlimited"), ("never-created", "unknown")}

    # An operator fixes a topic in place: IncrementalAlterConfigs works on Tansu (the old
    # AlterConfigs request does not), and the check sees the new value.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    res = ConfigResource(ResourceType.TOPIC, "bare", incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    for fut in admin.incremental_alter_configs([res]).values():
        fut.result(10)
    assert {(i.topic, i.kind) for i in await check_topics(broker.bootstrap, specs)} == {
        ("forever", "unlimited"), ("never-created", "unknown")}


@pytest.mark.timeout(60)
async def test_report_sets_metrics_and_logs_one_line_per_issue(
        broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture) -> None:
    specs = topic_specs(Topics(), partitions=1, retention=Retention.parse("events=2h"))
    await ensure_topics(broker.bootstrap, specs)
    # The worker wants 30 h of events; the topic exists with 2 h (created by an older config).
    wanted = topic_specs(Topics(), partitions=1)
    extra = TopicSpec("raw", "auto-created", 1, HOUR_MS, "k", "r")
    _create(broker.bootstrap, NewTopic("auto-created", 1, 1))
    metrics = Metrics.create(CollectorRegistry())
    with caplog.at_level(logging.WARNING, logger="liqstress.infra.topic_admin"):
        issues = await report_topic_retention(broker.bootstrap, [*wanted, extra], metrics)
    assert {(i.topic, i.kind) for i in issues} == {("liquidations", "short"),
                                                   ("auto-created", "unknown")}
    lines = [r.getMessage() for r in caplog.records if r.name == "liqstress.infra.topic_admin"]
    assert len(lines) == 2
    assert any("liquidations" in m and "2h" in m and "30h" in m for m in lines)

    got = _scrape_metrics(metrics)
    for spec in specs:
        assert sample(got, "liqstress_topic_retention_seconds", topic=spec.name) == \
            spec.retention_ms / 1000, spec.name
        assert sample(got, "liqstress_topic_retention_missing", topic=spec.name) == 0
    assert sample(got, "liqstress_topic_retention_seconds", topic="auto-created") is None
    assert sample(got, "liqstress_topic_retention_missing", topic="auto-created") == 1


@pytest.mark.timeout(60)
async def test_report_without_a_broker_marks_every_topic_unknown(
        caplog: pytest.LogCaptureFixture) -> None:
    specs = topic_specs(Topics())
    metrics = Metrics.create(CollectorRegistry())
    with caplog.at_level(logging.WARNING, logger="liqstress.infra.topic_admin"):
        issues = await report_topic_retention(f"127.0.0.1:{free_port()}", specs, metrics,
                                              timeout=2)
    assert [(i.topic, i.kind) for i in issues] == [(s.name, "unknown") for s in specs]
    assert len([r for r in caplog.records if r.name == "liqstress.infra.topic_admin"]) == len(specs)
    got = _scrape_metrics(metrics)
    for spec in specs:
        assert sample(got, "liqstress_topic_retention_missing", topic=spec.name) == 1
        assert sample(got, "liqstress_topic_retention_seconds", topic=spec.name) is None
