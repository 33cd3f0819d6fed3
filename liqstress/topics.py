"""Every topic liqstress creates: its key, partitions, retention and readers, in one table.

Topics are created with ``retention.ms`` set (``ensure_topics``), so a real Kafka cluster never
falls back to its 7-day default, and the embedded broker's recycling (liqstress/infra/supervisor.py)
keeps the same horizons. Events and prices must cover the longest window plus its spike
baseline (``windows.HISTORY`` = 25 h) and a margin; the defaults give 30 h.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace

from .config import ConfigError, Topics

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000

#: Default retention per topic role, in milliseconds.
DEFAULT_RETENTION_MS: dict[str, int] = {
    "events": 30 * HOUR_MS,
    "prices": 30 * HOUR_MS,
    "open_interest": 30 * HOUR_MS,
    "raw": 6 * HOUR_MS,
    "deadletter": 72 * HOUR_MS,
    "windows": 1 * HOUR_MS,
    "signals": 6 * HOUR_MS,
    "partials": 1 * HOUR_MS,
    # Collectors rewrite their record every 15 s: a worker starting reads the last hour.
    "coverage": 1 * HOUR_MS,
}
ROLES = tuple(DEFAULT_RETENTION_MS)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": HOUR_MS, "d": 24 * HOUR_MS}


def parse_duration_ms(text: str) -> int:
    """``90s``, ``15m``, ``30h``, ``7d`` (a bare number is seconds) → milliseconds."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"not a duration (e.g. 90s, 15m, 30h, 7d): {text!r}")
    ms = int(float(m.group(1)) * _UNIT_MS[m.group(2) or "s"])
    if ms <= 0:
        raise ConfigError(f"duration must be > 0: {text!r}")
    return ms


@dataclass(frozen=True)
class Retention:
    """Retention per topic role (see ``DEFAULT_RETENTION_MS``)."""

    ms: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_RETENTION_MS))

    @classmethod
    def parse(cls, text: str | None) -> Retention:
        """``raw=1h,deadletter=3d`` overrides the defaults of the roles it names."""
        out = dict(DEFAULT_RETENTION_MS)
        for item in (text or "").split(","):
            item = item.strip()
            if not item:
                continue
            role, eq, value = item.partition("=")
            role = role.strip()
            if not eq or role not in out:
                raise ConfigError(f"retention must be role=duration with role one of "
                                  f"{', '.join(ROLES)}; got {item!r}")
            out[role] = parse_duration_ms(value)
        return cls(out)

    def with_overrides(self, **ms: int) -> Retention:
        return replace(self, ms={**self.ms, **ms})


@dataclass(frozen=True)
class TopicSpec:
    role: str
    name: str
    partitions: int
    retention_ms: int
    key: str
    readers: str
    writers: str = ""

    @property
    def configs(self) -> dict[str, str]:
        return {"retention.ms": str(self.retention_ms), "cleanup.policy": "delete"}


def topic_specs(topics: Topics, partitions: int = 4,
                retention: Retention | None = None) -> list[TopicSpec]:
    """The table of every topic liqstress creates (docs/topics.md shows the same)."""
    r = (retention or Retention()).ms
    return [
        TopicSpec("raw", topics.raw, partitions, r["raw"], "exchange",
                  "people and tools re-parsing venue frames",
                  writers="collectors (every venue frame)"),
        TopicSpec("events", topics.events, partitions, r["events"], "exchange:symbol",
                  "workers (consumer group, partitioned state)",
                  writers="collectors (normalized liquidations)"),
        TopicSpec("prices", topics.prices, partitions, r["prices"], "coin",
                  "every worker (broadcast read)",
                  writers="collectors (mark/mid price ticks)"),
        TopicSpec("open_interest", topics.open_interest, partitions, r["open_interest"], "coin",
                  "every worker (broadcast read)",
                  writers="collectors (open interest and funding per instrument, each poll)"),
        TopicSpec("deadletter", topics.deadletter, partitions, r["deadletter"], "exchange",
                  "people (debugging)",
                  writers="collectors (unparseable frames), workers (invalid records)"),
        TopicSpec("partials", topics.partials, 1, r["partials"], "partition",
                  "the aggregator (owner of its only partition)",
                  writers="workers (window state of their partitions)"),
        TopicSpec("windows", topics.windows, 1, r["windows"], "snapshot",
                  "dashboards, downstream consumers",
                  writers="the aggregator (window snapshots)"),
        TopicSpec("coverage", topics.coverage, 1, r["coverage"], "exchange",
                  "every worker (broadcast read)",
                  writers="collectors (what each venue's windows cover, every 15 s)"),
        TopicSpec("signals", topics.signals, 1, r["signals"], "type",
                  "downstream consumers; a new aggregator (cascade state)",
                  writers="the aggregator (stress signal changes)"),
    ]


def format_duration_ms(ms: int) -> str:
    """The largest whole unit: 108000000 -> ``30h``, 90000 -> ``90s`` (inverse of
    :func:`parse_duration_ms` for whole units)."""
    for unit, size in (("d", 24 * HOUR_MS), ("h", HOUR_MS), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def markdown_table(specs: list[TopicSpec]) -> str:
    """The topic table of docs/topics.md (tests/test_retention.py keeps the two equal)."""
    rows = ["| role | topic | key | partitions | retention | written by | read by |",
            "|---|---|---|---|---|---|---|"]
    for s in specs:
        parts = str(s.partitions) if s.partitions == 1 else f"{s.partitions} (`--partitions`)"
        rows.append(f"| {s.role} | `{s.name}` | {s.key} | {parts} | "
                    f"{format_duration_ms(s.retention_ms)} | {s.writers} | {s.readers} |")
    return "\n".join(rows)
