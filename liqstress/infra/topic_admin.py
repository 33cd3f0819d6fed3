"""Creating liqstress's topics on the broker (the table is in liqstress/topics.py).

Topics are created explicitly, with their partitions and retention, rather than left to the
broker's auto-creation: auto-created topics get the broker's defaults (one partition, 7-day
retention on Kafka), and the embedded broker loses every topic when it restarts (memory
storage), so the publisher re-creates them before resending its backlog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import for_code

from liqstress.topics import TopicSpec, format_duration_ms

from .kafka_security import client_kwargs

if TYPE_CHECKING:
    from .metrics import Metrics

log = logging.getLogger(__name__)

#: Kafka error codes that mean "it is there already", which is what we wanted.
_TOPIC_ALREADY_EXISTS = 36


class TopicAdminError(RuntimeError):
    pass


async def ensure_topics(bootstrap: str, specs: list[TopicSpec], timeout: float = 10.0) -> list[str]:
    """Create the topics of ``specs`` that the broker does not have, with ``spec.partitions``
    and ``spec.configs``; return the names created. Existing topics are left as they are
    (their partition count and configs are not changed). Raises on connection failures and on
    any creation error other than "already exists" (a race with another creator)."""
    if not specs:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                request_timeout_ms=max(1000, int(timeout * 1000)),
                                **client_kwargs())
    try:
        await asyncio.wait_for(admin.start(), timeout)
        existing = set(await asyncio.wait_for(admin.list_topics(), timeout))
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        resp = await asyncio.wait_for(admin.create_topics(
            [NewTopic(s.name, s.partitions, 1, topic_configs=s.configs) for s in missing],
            timeout_ms=int(timeout * 1000)), timeout)
        created: list[str] = []
        errors: list[str] = []
        for item in resp.topic_errors:
            name, code = item[0], item[1]
            if code == 0:
                created.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:
                errors.append(f"{name}: {for_code(code).__name__}")
        if errors:
            raise TopicAdminError("could not create topics: " + "; ".join(errors))
        if created:
            log.info("created topics %s on %s", ", ".join(created), bootstrap)
        return created
    finally:
        await admin.close()


# ---- retention check -----------------------------------------------------------------------

#: Roles whose retention bounds what a restarted worker can rebuild (windows.HISTORY = 25 h).
HISTORY_ROLES = ("events", "prices")


@dataclass(frozen=True)
class TopicConfigs:
    """What DescribeConfigs returned for one topic: its configs, or the error instead."""

    configs: dict[str, str | None]
    error: str | None = None


@dataclass(frozen=True)
class TopicIssue:
    """A topic whose retention is not what liqstress needs.

    ``kind``: ``unlimited`` (retention.ms = -1: the topic grows without bound), ``missing``
    (no retention.ms among the returned configs), ``short`` (events/prices kept for less than
    the spec: a restarted worker rebuilds incomplete windows) or ``unknown`` (the broker
    returned no configs for the topic, or an error)."""

    topic: str
    role: str
    kind: str
    #: What the broker reports, in ms (None when absent or unreadable; -1 = unlimited).
    retention_ms: int | None
    wanted_ms: int
    detail: str = ""

    def message(self) -> str:
        wanted = format_duration_ms(self.wanted_ms)
        if self.kind == "unlimited":
            return (f"topic {self.topic} ({self.role}) has no retention limit (retention.ms=-1); "
                    f"it grows without bound (liqstress creates it with {wanted})")
        if self.kind == "missing":
            return (f"topic {self.topic} ({self.role}): the broker reports no retention.ms, so "
                    f"it may keep everything (liqstress creates it with {wanted})")
        if self.kind == "short":
            return (f"topic {self.topic} ({self.role}) keeps {format_duration_ms(self.retention_ms or 0)}, "
                    f"less than the {wanted} liqstress needs: windows rebuilt after a restart "
                    f"miss what the broker has already deleted")
        return (f"topic {self.topic} ({self.role}): retention unknown, the broker returned no "
                f"configs ({self.detail or 'empty answer'}; liqstress wants {wanted})")


def parse_describe_configs(responses: Iterable[Any]) -> dict[str, TopicConfigs]:
    """{topic: TopicConfigs} from aiokafka DescribeConfigsResponse objects (any version: every
    config entry starts with (name, value, ...))."""
    out: dict[str, TopicConfigs] = {}
    for resp in responses:
        for error_code, error_message, resource_type, name, entries in resp.resources:
            if resource_type != ConfigResourceType.TOPIC:
                continue
            if error_code:
                err = f"{for_code(error_code).__name__}: {error_message or ''}".rstrip(": ")
                out[name] = TopicConfigs({}, err)
            else:
                out[name] = TopicConfigs({e[0]: e[1] for e in entries})
    return out


def _retention_ms(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def classify_topics(specs: Iterable[TopicSpec],
                    described: dict[str, TopicConfigs]) -> list[TopicIssue]:
    """The retention issues of ``specs`` given what the broker described (pure; see
    :class:`TopicIssue` for the kinds). A topic absent from ``described`` is ``unknown``."""
    issues: list[TopicIssue] = []
    for spec in specs:
        got = described.get(spec.name)
        if got is None or got.error is not None or not got.configs:
            detail = got.error if got is not None and got.error else "no config entries"
            issues.append(TopicIssue(spec.name, spec.role, "unknown", None, spec.retention_ms,
                                     detail))
            continue
        raw = got.configs.get("retention.ms")
        ms = _retention_ms(raw)
        if ms is None:
            detail = "absent" if raw is None else f"unreadable value {raw!r}"
            issues.append(TopicIssue(spec.name, spec.role, "missing", None, spec.retention_ms,
                                     detail))
        elif ms < 0:
            issues.append(TopicIssue(spec.name, spec.role, "unlimited", ms, spec.retention_ms))
        elif spec.role in HISTORY_ROLES and ms < spec.retention_ms:
            issues.append(TopicIssue(spec.name, spec.role, "short", ms, spec.retention_ms))
    return issues


async def describe_topics(bootstrap: str, names: list[str],
                          timeout: float = 10.0) -> dict[str, TopicConfigs]:
    """DescribeConfigs for ``names`` (all configs of each topic)."""
    if not names:
        return {}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap,
                                request_timeout_ms=max(1000, int(timeout * 1000)),
                                **client_kwargs())
    try:
        await asyncio.wait_for(admin.start(), timeout)
        resp = await asyncio.wait_for(admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]), timeout)
        return parse_describe_configs(resp)
    finally:
        await admin.close()


async def check_topics(bootstrap: str, specs: list[TopicSpec],
                       timeout: float = 10.0) -> list[TopicIssue]:
    """Describe the existing topics of ``specs`` and return their retention issues. Raises
    on connection failures (see :func:`report_topic_retention` for the logging variant)."""
    described = await describe_topics(bootstrap, [s.name for s in specs], timeout)
    return classify_topics(specs, described)


def set_retention_metrics(metrics: Metrics, specs: Iterable[TopicSpec],
                          described: dict[str, TopicConfigs]) -> None:
    """``liqstress_topic_retention_seconds{topic}``: what the broker reports (removed when it
    reports none or unlimited); ``liqstress_topic_retention_missing{topic}``: 1 when the topic
    has no known retention limit."""
    for spec in specs:
        got = described.get(spec.name)
        ms = None
        if got is not None and got.error is None:
            ms = _retention_ms(got.configs.get("retention.ms"))
        if ms is not None and ms >= 0:
            metrics.topic_retention_seconds.labels(spec.name).set(ms / 1000)
            metrics.topic_retention_missing.labels(spec.name).set(0)
        else:
            try:
                metrics.topic_retention_seconds.remove(spec.name)
            except KeyError:
                pass
            metrics.topic_retention_missing.labels(spec.name).set(1)


async def report_topic_retention(bootstrap: str, specs: list[TopicSpec], metrics: Metrics | None,
                                 timeout: float = 10.0) -> list[TopicIssue]:
    """Check the topics' retention at start: one warning line per issue, and the retention
    gauges on ``metrics``. Never raises: a broker that cannot be described makes every topic
    ``unknown`` (the service still starts; the alert says why it should not stay so)."""
    try:
        described = await describe_topics(bootstrap, [s.name for s in specs], timeout)
    except Exception as exc:  # connection, timeout, unsupported request: all "unknown"
        described = {s.name: TopicConfigs({}, f"DescribeConfigs failed: {exc!r}") for s in specs}
    issues = classify_topics(specs, described)
    for issue in issues:
        log.warning("%s", issue.message())
    if metrics is not None:
        set_retention_metrics(metrics, specs, described)
    return issues
