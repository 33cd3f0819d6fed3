"""Cascade (docs/signals.md section 4): same-direction liquidations on several venues at once,
with start/end events and hysteresis. ``CascadeDetector`` is the only stateful signal."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..labels import SIDES, Side
from .common import ToDict, amount, finite

__all__ = ["CASCADE_END_RATIO", "CASCADE_MIN_VENUES", "CASCADE_VENUE_SHARE", "CascadeDetector",
           "CascadeEvent", "CascadeState"]

CASCADE_MIN_VENUES = 2
CASCADE_VENUE_SHARE = 0.1  # venue_min_usd defaults to this share of threshold_usd
CASCADE_END_RATIO = 0.5


@dataclass(frozen=True, slots=True)
class CascadeEvent(ToDict):
    """A cascade state change for one direction: ``kind`` is "start" or "end"."""

    kind: Literal["start", "end"]
    direction: Side
    #: the ``now`` of the update that produced the event
    ts: float
    started_at: float
    #: None for "start"
    ended_at: float | None
    #: venues that reached venue_min_usd at some update of the episode, sorted
    venues: tuple[str, ...]
    #: estimated USD liquidated in the episode so far (see CascadeDetector)
    size_usd: float
    #: largest window total seen in the episode
    peak_usd: float
    #: the window total at this update
    window_usd: float

    @property
    def duration_s(self) -> float:
        return self.ts - self.started_at


@dataclass(frozen=True, slots=True)
class CascadeState(ToDict):
    """The current state of one direction (for periodic snapshots and gauges)."""

    direction: Side
    active: bool
    started_at: float | None
    venues: tuple[str, ...]
    size_usd: float
    peak_usd: float
    window_usd: float
    #: since when the episode has been below the sustain condition (None: sustained/inactive)
    quiet_since: float | None


@dataclass
class _Episode:
    active: bool = False
    started_at: float | None = None
    venues: set[str] = field(default_factory=set)
    size_usd: float = 0.0
    peak_usd: float = 0.0
    window_usd: float = 0.0
    quiet_since: float | None = None
    last_ts: float | None = None


class CascadeDetector:
    """Same-direction liquidations on several venues at once, with start/end events.

    One detector tracks BOTH directions independently: call ``update(now, per_venue_usd,
    direction)`` once per direction per tick, where ``per_venue_usd`` is ``{exchange: usd}`` of
    that direction over the last ``window_seconds`` (e.g. ``venue_usd(snap_by_ex["1m"], "long")``
    with ``window_seconds=60``). Let T = ``threshold_usd``, V = ``venue_min_usd`` (default
    ``0.1 × T``), r = ``end_ratio``, S = Σ per_venue_usd:

    * **start** (inactive): ``S >= T`` and at least ``min_venues`` venues have ``usd >= V``.
    * **sustained** (active): ``S >= r·T`` and at least ``min_venues`` venues have
      ``usd >= r·V``. Hysteresis: ending needs the weaker condition to fail.
    * **end**: not sustained at every update for ``hold_seconds`` (default ``window_seconds``),
      measured from the first update that was not sustained; a sustained update resets it.
    * **size_usd**: S at the start (the whole triggering window), then ``+ S × min(dt, W) / W``
      per update (dt = time since the previous update, W = ``window_seconds``): the trailing
      window's rate integrated over time. Exact when updates come every W seconds, an estimate
      in between; it never double counts overlapping windows.

    Events alternate start, end, start, ... per direction; at most one per update. A ``now``
    earlier than the previous update adds nothing to the size (dt clamps to 0).
    """

    def __init__(self, threshold_usd: float, window_seconds: float,
                 min_venues: int = CASCADE_MIN_VENUES, *, venue_min_usd: float | None = None,
                 end_ratio: float = CASCADE_END_RATIO,
                 hold_seconds: float | None = None) -> None:
        if not (math.isfinite(threshold_usd) and threshold_usd > 0):
            raise ValueError("threshold_usd must be > 0")
        if not (math.isfinite(window_seconds) and window_seconds > 0):
            raise ValueError("window_seconds must be > 0")
        if min_venues < 1:
            raise ValueError("min_venues must be >= 1")
        if not 0 < end_ratio <= 1:
            raise ValueError("end_ratio must be in (0, 1]")
        self.threshold_usd = float(threshold_usd)
        self.window_seconds = float(window_seconds)
        self.min_venues = int(min_venues)
        self.venue_min_usd = (CASCADE_VENUE_SHARE * self.threshold_usd if venue_min_usd is None
                              else float(venue_min_usd))
        if not (math.isfinite(self.venue_min_usd) and self.venue_min_usd >= 0):
            raise ValueError("venue_min_usd must be >= 0")
        self.end_ratio = float(end_ratio)
        self.hold_seconds = self.window_seconds if hold_seconds is None else float(hold_seconds)
        if not (math.isfinite(self.hold_seconds) and self.hold_seconds >= 0):
            raise ValueError("hold_seconds must be >= 0")
        self._ep: dict[str, _Episode] = {s: _Episode() for s in SIDES}

    @staticmethod
    def _check(direction: str) -> None:
        if direction not in SIDES:
            raise ValueError(f"direction must be long|short, got {direction!r}")

    def _event(self, kind: Literal["start", "end"], direction: Side, now: float,
               ep: _Episode) -> CascadeEvent:
        assert ep.started_at is not None
        return CascadeEvent(kind=kind, direction=direction, ts=now, started_at=ep.started_at,
                            ended_at=now if kind == "end" else None,
                            venues=tuple(sorted(ep.venues)), size_usd=ep.size_usd,
                            peak_usd=ep.peak_usd, window_usd=ep.window_usd)

    def update(self, now: float, per_venue_usd: Mapping[str, float],
               direction: Side) -> list[CascadeEvent]:
        """Feed one direction's per-venue USD over the last window; returns the state changes
        (empty, ``[start]`` or ``[end]``). Invalid amounts count as 0."""
        self._check(direction)
        ep = self._ep[direction]
        amounts = {ex: amount(v) for ex, v in per_venue_usd.items()}
        total = sum(amounts.values())
        strong = {ex for ex, v in amounts.items() if v >= self.venue_min_usd and v > 0}
        if not ep.active:
            ep.last_ts = now if ep.last_ts is None else max(ep.last_ts, now)
            ep.window_usd = total
            if total >= self.threshold_usd and len(strong) >= self.min_venues:
                ep.active = True
                ep.started_at = now
                ep.venues = set(strong)
                ep.size_usd = total
                ep.peak_usd = total
                ep.quiet_since = None
                return [self._event("start", direction, now, ep)]
            return []
        last = ep.last_ts if ep.last_ts is not None else now
        dt = min(max(now - last, 0.0), self.window_seconds)
        ep.size_usd += total * dt / self.window_seconds
        ep.last_ts = max(last, now)
        ep.window_usd = total
        ep.peak_usd = max(ep.peak_usd, total)
        ep.venues |= strong
        weak_min = self.venue_min_usd * self.end_ratio
        alive = sum(1 for v in amounts.values() if v >= weak_min and v > 0)
        if total >= self.threshold_usd * self.end_ratio and alive >= self.min_venues:
            ep.quiet_since = None
            return []
        if ep.quiet_since is None:
            ep.quiet_since = now
        if now - ep.quiet_since >= self.hold_seconds:
            event = self._event("end", direction, now, ep)
            self._ep[direction] = _Episode(last_ts=ep.last_ts, window_usd=total)
            return [event]
        return []

    def active(self, direction: Side | None = None) -> bool:
        """Is a cascade on in ``direction`` (either direction when None)?"""
        if direction is None:
            return any(ep.active for ep in self._ep.values())
        self._check(direction)
        return self._ep[direction].active

    def size_usd(self, direction: Side) -> float:
        """Estimated USD of the active episode in ``direction`` (0 when inactive)."""
        self._check(direction)
        ep = self._ep[direction]
        return ep.size_usd if ep.active else 0.0

    def state(self, direction: Side) -> CascadeState:
        self._check(direction)
        ep = self._ep[direction]
        return CascadeState(direction=direction, active=ep.active, started_at=ep.started_at,
                            venues=tuple(sorted(ep.venues)),
                            size_usd=ep.size_usd if ep.active else 0.0,
                            peak_usd=ep.peak_usd if ep.active else 0.0,
                            window_usd=ep.window_usd, quiet_since=ep.quiet_since)

    def states(self) -> dict[str, CascadeState]:
        return {s: self.state(s) for s in SIDES}

    def restore(self, states: Mapping[str, Mapping[str, Any]], ts: float) -> None:
        """Continue from published states (``CascadeState.to_dict()`` per direction, as of
        ``ts``): a new aggregator takes over an episode instead of starting a second one."""
        for side in SIDES:
            st = states.get(side)
            if not st:
                continue
            active = bool(st.get("active"))
            self._ep[side] = _Episode(
                active=active, started_at=finite(st.get("started_at")) if active else None,
                venues=set(st.get("venues") or ()) if active else set(),
                size_usd=amount(st.get("size_usd")), peak_usd=amount(st.get("peak_usd")),
                window_usd=amount(st.get("window_usd")),
                quiet_since=finite(st.get("quiet_since")), last_ts=ts)
