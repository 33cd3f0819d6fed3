"""How much of each window every venue covers: read live, read back from its public history
(the warm start), or missing. Pure module (no Faust/Kafka/websocket).

A trader reading "24h: $1.2 B" must know whether that is 24 hours of every venue or 20 minutes
of half of them. Each collector keeps a :class:`CoverageTracker` and publishes its
:class:`SourceCoverage` on the ``coverage`` topic (key: exchange) every
``REPORT_INTERVAL`` seconds and whenever it changes; workers read the topic as a broadcast and
:func:`window_coverage` turns the newest record of each venue's collectors into, per window,
the seconds read from history and the seconds missing.

A venue's time is covered while its live feed was up (from its process start, minus the spans
it was down) and over the span its warm start read (when the warm start finished). Everything
else in a window is missing: before the venue was collected, while it was down and not read
back, and since its collector went silent (no record for ``STALE_AFTER`` seconds: a stopped
collector must never look like a quiet venue).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .event import EARLIEST_TS, MAX_AHEAD_SECONDS
from .wire import json_record

SCHEMA_VERSION = 1
#: Seconds between two records of a running collector (also sent on every change).
REPORT_INTERVAL = 15.0
#: A venue whose newest record is older than this has a silent collector: from the record's
#: time plus this, its windows count as missing. Three reports lost plus slack.
STALE_AFTER = 4 * REPORT_INTERVAL
#: Down spans kept per record (the newest); older ones are outside every window by then or,
#: for a venue flapping that often, merged into one span (still missing, never covered).
MAX_GAPS = 48
#: Down spans older than this are dropped: no window reaches back further (24 h + margin).
GAP_HORIZON = 25 * 3600.0
STATES = ("pending", "running", "done", "failed", "off")


class CoverageError(ValueError):
    """A value that cannot be a coverage record."""


Span = tuple[float, float]


@dataclass(frozen=True, slots=True)
class SourceCoverage:
    """What one venue's collector has covered, as of ``ts``."""

    v: int
    exchange: str
    #: When the collector wrote this record (epoch seconds).
    ts: float
    #: The collector's process start: live collection from here on, minus ``gaps``.
    live_since: float
    #: The span the warm start read back, once it finished (``[from, until]``); None while it
    #: runs, when it failed, or for a venue without public history.
    backfilled: Span | None
    #: Spans after ``live_since`` while the live feed was not up (the last one may still be
    #: open: its end is ``ts``).
    gaps: tuple[Span, ...]
    #: ``liqstress_backfill_state`` of the venue (pending/running/done/failed/off).
    backfill_state: str
    #: True for a throttled feed (Binance's one liquidation a second per symbol): a covered
    #: window of it is complete in time but its totals are still a floor.
    sampled: bool
    #: True while the live feed is down right now (the last gap is open).
    down: bool = False
    #: Which collector process wrote it (random per process): several collectors of one
    #: venue (a restart, or a standby) each report; the venue covers the union of theirs.
    collector: str = ""

    @property
    def key(self) -> str:
        return self.exchange

    def to_json(self) -> bytes:
        return orjson.dumps({"v": self.v, "exchange": self.exchange, "ts": self.ts,
                             "live_since": self.live_since,
                             "backfilled": list(self.backfilled) if self.backfilled else None,
                             "gaps": [list(g) for g in self.gaps],
                             "backfill_state": self.backfill_state, "sampled": self.sampled,
                             "down": self.down, "collector": self.collector})

    def live(self, now: float) -> list[Span]:
        """The spans up to ``now`` the live feed covered, merged (``backfilled`` apart)."""
        live_end = min(now, self.ts + STALE_AFTER)
        spans: list[Span] = []
        start = self.live_since
        for g0, g1 in sorted(self.gaps):
            if g0 > start:
                spans.append((start, min(g0, live_end)))
            start = max(start, g1)
        if not self.down and live_end > start:
            spans.append((start, live_end))
        return _merge(s for s in spans if s[1] > s[0])


def _merge(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _overlap(spans: Iterable[Span], a: float, b: float) -> float:
    return sum(max(0.0, min(b, s1) - max(a, s0)) for s0, s1 in spans)


_FIELDS = ("v", "exchange", "ts", "live_since", "backfilled", "gaps", "backfill_state",
           "sampled")


def _time(name: str, val: Any) -> float:
    if type(val) not in (int, float) or not math.isfinite(val) or val < EARLIEST_TS:
        raise CoverageError(f"{name} must be an epoch time in seconds after 2017, got {val!r}")
    return float(val)


def _span(name: str, val: Any) -> Span:
    if not isinstance(val, list) or len(val) != 2:
        raise CoverageError(f"{name} must be a [start, end] pair, got {val!r}")
    a, b = _time(name, val[0]), _time(name, val[1])
    if b < a:
        raise CoverageError(f"{name} ends before it starts: {val!r}")
    return a, b


def coverage_from_json(data: bytes | str | dict[str, Any]) -> SourceCoverage:
    """Decode and check a wire record (anyone with topic access may have written it)."""
    obj = json_record(data, _FIELDS, SCHEMA_VERSION, CoverageError, "coverage record")
    if not isinstance(obj["exchange"], str) or not obj["exchange"]:
        raise CoverageError("exchange must be a non-empty string")
    ts, live_since = _time("ts", obj["ts"]), _time("live_since", obj["live_since"])
    if live_since > ts + MAX_AHEAD_SECONDS:
        raise CoverageError(f"live_since {live_since!r} is after the record's time {ts!r}")
    gaps = obj["gaps"]
    if not isinstance(gaps, list) or len(gaps) > MAX_GAPS:
        raise CoverageError(f"gaps must be a list of at most {MAX_GAPS} spans")
    if obj["backfill_state"] not in STATES:
        raise CoverageError(f"backfill_state must be one of {STATES}, "
                            f"got {obj['backfill_state']!r}")
    for name in ("sampled", "down"):
        if not isinstance(obj.get(name, False), bool):
            raise CoverageError(f"{name} must be true or false")
    collector = obj.get("collector", "")
    if not isinstance(collector, str) or len(collector) > 64:
        raise CoverageError("collector must be a string of at most 64 characters")
    backfilled = obj["backfilled"]
    return SourceCoverage(
        v=SCHEMA_VERSION, exchange=obj["exchange"], ts=ts, live_since=live_since,
        backfilled=None if backfilled is None else _span("backfilled", backfilled),
        gaps=tuple(_span("gaps", g) for g in gaps), backfill_state=obj["backfill_state"],
        sampled=obj["sampled"], down=obj.get("down", False), collector=collector)


@dataclass
class CoverageTracker:
    """A collector's running account of its venue's coverage: fed the feed's up/down changes
    and the warm start's outcome, it writes a :class:`SourceCoverage` on demand."""

    exchange: str
    live_since: float
    sampled: bool = False
    backfill_state: str = "off"
    backfilled: Span | None = None
    gaps: list[Span] = field(default_factory=list)
    #: Start of the open gap; the feed is not up before its first subscription.
    down_since: float | None = None
    collector: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        if self.down_since is None:
            self.down_since = self.live_since

    def set_up(self, up: bool, now: float) -> bool:
        """The live feed went up or down at ``now``; True when that changed anything."""
        if up and self.down_since is not None:
            if now > self.down_since:
                self.gaps.append((self.down_since, now))
            self.down_since = None
            self._trim(now)
            return True
        if not up and self.down_since is None:
            self.down_since = now
            return True
        return False

    def _trim(self, now: float) -> None:
        self.gaps = [g for g in self.gaps if g[1] >= now - GAP_HORIZON]
        if len(self.gaps) >= MAX_GAPS:
            # Merge the oldest two: the merged span also holds the covered time between
            # them, which is then reported missing (never the other way round).
            (a, _), (_, d) = self.gaps[0], self.gaps[1]
            self.gaps[:2] = [(a, d)]

    def record(self, now: float) -> SourceCoverage:
        gaps = list(self.gaps)
        if self.down_since is not None:
            gaps.append((self.down_since, max(now, self.down_since)))
        return SourceCoverage(
            v=SCHEMA_VERSION, exchange=self.exchange, ts=now, live_since=self.live_since,
            backfilled=self.backfilled, gaps=tuple(gaps[-MAX_GAPS:]),
            backfill_state=self.backfill_state, sampled=self.sampled,
            down=self.down_since is not None, collector=self.collector)


@dataclass(frozen=True)
class VenueWindow:
    """One venue in one window: seconds read back from history and seconds missing."""

    backfilled_s: float
    missing_s: float

    def to_dict(self) -> dict[str, float]:
        return {"backfilled_s": round(self.backfilled_s, 3), "missing_s": round(self.missing_s, 3)}


#: Missing time up to this (per venue and window) is reported as none: the warm start reads
#: up to the moment it starts, a moment before the first subscription is confirmed, and a
#: record is written a moment after the feed's state changed.
TOLERANCE_S = 1.0


@dataclass(frozen=True)
class WindowCoverage:
    """Every venue's coverage of one window ``[now - seconds, now]``."""

    seconds: float
    venues: dict[str, VenueWindow]
    sampled: frozenset[str] = frozenset()

    @property
    def complete(self) -> list[str]:
        """The venues that cover the whole window (live or read back)."""
        return sorted(ex for ex, v in self.venues.items() if v.missing_s == 0)

    @property
    def incomplete(self) -> list[str]:
        return sorted(ex for ex, v in self.venues.items() if v.missing_s > 0)

    def _ratio(self, attr: str) -> float:
        if not self.venues:
            return 0.0
        return sum(getattr(v, attr) for v in self.venues.values()) / (
            len(self.venues) * self.seconds)

    @property
    def missing_ratio(self) -> float:
        """Share of the window's venue-seconds missing (0 = every venue covers all of it)."""
        return self._ratio("missing_s")

    @property
    def backfilled_ratio(self) -> float:
        """Share of the window's venue-seconds read back from history rather than live."""
        return self._ratio("backfilled_s")

    def to_dict(self) -> dict[str, Any]:
        return {"complete": self.complete, "incomplete": self.incomplete,
                "sampled": sorted(self.sampled & set(self.venues)),
                "missing_ratio": round(self.missing_ratio, 6),
                "backfilled_ratio": round(self.backfilled_ratio, 6),
                "exchanges": {ex: v.to_dict() for ex, v in sorted(self.venues.items())}}


@dataclass(frozen=True)
class _VenueSpans:
    """One venue's spans as of ``now``, merged over its collectors, computed once for every
    window: covered (live or read back), live only, and read back."""

    covered: list[Span]
    live: list[Span]
    backfilled: list[Span]

    @classmethod
    def of(cls, recs: Sequence[SourceCoverage], now: float) -> _VenueSpans:
        live = _merge(s for r in recs for s in r.live(now))
        backfilled = _merge(r.backfilled for r in recs if r.backfilled)
        return cls(_merge([*live, *backfilled]), live, backfilled)

    def window(self, now: float, seconds: float) -> VenueWindow:
        a = now - seconds
        # Read back = the history spans minus what a live feed covered anyway.
        backfilled = 0.0
        for b0, b1 in self.backfilled:
            b0, b1 = max(a, b0), min(now, b1)
            if b1 > b0:
                backfilled += (b1 - b0) - _overlap(self.live, b0, b1)
        missing = seconds - _overlap(self.covered, a, now)
        return VenueWindow(backfilled_s=max(0.0, backfilled),
                           missing_s=missing if missing > TOLERANCE_S else 0.0)


def window_coverage(records: Iterable[SourceCoverage], now: float,
                    windows: Mapping[str, int]) -> dict[str, WindowCoverage]:
    """Per window name, every reporting venue's coverage of ``[now - size, now]``."""
    by_venue: dict[str, list[SourceCoverage]] = {}
    for r in records:
        by_venue.setdefault(r.exchange, []).append(r)
    sampled = frozenset(ex for ex, rs in by_venue.items() if any(r.sampled for r in rs))
    spans = {ex: _VenueSpans.of(rs, now) for ex, rs in by_venue.items()}
    return {name: WindowCoverage(float(size), {ex: sp.window(now, size)
                                               for ex, sp in spans.items()}, sampled)
            for name, size in windows.items()}


class CoverageStore:
    """A worker's newest record per venue and collector (records arrive from every
    collector, in any order)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], SourceCoverage] = {}

    def apply(self, rec: SourceCoverage) -> bool:
        key = (rec.exchange, rec.collector)
        old = self.records.get(key)
        if old is not None and old.ts >= rec.ts:
            return False
        self.records[key] = rec
        return True

    def prune(self, now: float) -> None:
        """Forget collectors silent for longer than every window: all of their time is out
        of every window by then, and a venue no longer collected should not stay listed."""
        for key in [k for k, r in self.records.items() if r.ts < now - GAP_HORIZON]:
            del self.records[key]

    def windows(self, now: float, windows: Mapping[str, int]) -> dict[str, WindowCoverage]:
        return window_coverage(self.records.values(), now, windows)


def coverage_dict(cov: Mapping[str, WindowCoverage],
                  order: Sequence[str] | None = None) -> dict[str, Any] | None:
    """The wire form (``coverage`` of liquidation.windows and stress.signals), None without a
    reporting venue."""
    if not cov or not any(c.venues for c in cov.values()):
        return None
    names = order or list(cov)
    return {w: cov[w].to_dict() for w in names if w in cov}
