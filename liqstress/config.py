"""Settings shared by the CLI, collectors and worker. Every option has an environment variable
(``LIQSTRESS_*``); the CLI flag wins over the variable, the variable over the default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .event import DEFAULT_MAX_NOTIONAL_USD
from .labels import DEFAULT_COIN_ALLOWLIST


class ConfigError(ValueError):
    """A setting that cannot work; raised before anything connects."""


def env(name: str, default: str | None = None) -> str | None:
    val = os.environ.get(f"LIQSTRESS_{name}")
    return val if val not in (None, "") else default


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"not a boolean: {text!r}")


def _env_int(name: str, default: int) -> int:
    raw = env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"LIQSTRESS_{name} must be an integer, got {raw!r}") from None


def parse_port(text: str | int, what: str = "port") -> int:
    try:
        port = int(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be an integer, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what} must be 0-65535, got {port}")
    return port


def normalize_broker(url: str) -> str:
    """Accept ``host:port``, ``kafka://host:port`` and comma lists; return ``host:port,...``."""
    hosts = []
    for part in url.split(","):
        part = part.strip()
        if part.startswith("kafka://"):
            part = part[len("kafka://"):]
        part = part.rstrip("/")
        if not part:
            continue
        host, sep, port = part.rpartition(":")
        if not sep or not host:
            raise ConfigError(f"broker must look like host:port, got {part!r}")
        parse_port(port, "broker port")
        hosts.append(part)
    if not hosts:
        raise ConfigError(f"no broker in {url!r}")
    return ",".join(hosts)


def parse_venue_urls(text: str | None) -> dict[str, dict[str, str]]:
    """``binance.ws=ws://127.0.0.1:9000/x,bybit.rest=http://...`` → {venue: {key: url}}."""
    out: dict[str, dict[str, str]] = {}
    if not text:
        return out
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, url = item.partition("=")
        venue, dot, key = name.partition(".")
        if not eq or not dot or not url:
            raise ConfigError(f"venue URL must be venue.key=url, got {item!r}")
        out.setdefault(venue, {})[key] = url
    return out


@dataclass(frozen=True)
class Topics:
    raw: str = "liquidations.raw"
    events: str = "liquidations"
    deadletter: str = "liquidations.deadletter"
    windows: str = "liquidation.windows"
    signals: str = "stress.signals"
    prices: str = "prices"
    #: Open interest and funding per instrument (liqstress.open_interest), every minute.
    open_interest: str = "open_interest"
    #: Per-partition window state from each worker to the aggregator (single partition).
    partials: str = "liquidation.partials"
    #: What each venue's windows cover (liqstress.coverage), from every collector.
    coverage: str = "coverage"

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        if not prefix:
            return cls()
        return cls(raw=f"{prefix}liquidations.raw", events=f"{prefix}liquidations",
                   deadletter=f"{prefix}liquidations.deadletter",
                   windows=f"{prefix}liquidation.windows", signals=f"{prefix}stress.signals",
                   prices=f"{prefix}prices", open_interest=f"{prefix}open_interest",
                   partials=f"{prefix}liquidation.partials", coverage=f"{prefix}coverage")


@dataclass
class WorkerSettings:
    broker: str
    app_id: str = "liqstress-worker"
    topics: Topics = field(default_factory=Topics)
    partitions: int = 4
    #: Short in embedded mode: Tansu holds JoinGroup for half the session timeout.
    session_timeout: float = 10.0
    refresh_interval: float = 2.0
    #: "wall": windows end at the wall clock (live). "event": they end at the newest receipt
    #: time seen, so a replay shows what live processing showed at that moment.
    clock: str = "wall"
    coins: tuple[str, ...] = DEFAULT_COIN_ALLOWLIST
    #: Per-coin window series (liqstress_coin_window_liquidated_usd) for the allowlist plus
    #: the top N coins by 24 h USD; every other coin is summed as coin="other".
    top_coins: int = field(default_factory=lambda: _env_int("TOP_COINS", 20))
    datadir: str | None = None
    #: Seconds between full partials of a partition (deltas in between): how far back a
    #: newly elected aggregator reads the partials topic.
    full_interval: float = field(default_factory=lambda: float(env("FULL_INTERVAL", "300") or 300))
    #: Events read from Kafka above this single-liquidation notional are refused
    #: (liqstress.event.implausible): the same cap the collectors apply.
    max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD
    #: liqstress.topics.Retention for the topics the worker creates (None: the defaults).
    retention: Any = None

    def validate(self) -> None:
        if self.clock not in ("wall", "event"):
            raise ConfigError(f"clock must be wall|event, got {self.clock!r}")
        if self.partitions < 1:
            raise ConfigError("partitions must be >= 1")
        if not self.max_notional_usd > 0:
            raise ConfigError(f"max notional must be > 0 USD, got {self.max_notional_usd!r}")
        if self.refresh_interval <= 0:
            raise ConfigError("refresh interval must be > 0")
        if self.top_coins < 0:
            raise ConfigError(f"top coins must be >= 0, got {self.top_coins}")
