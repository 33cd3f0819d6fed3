"""Shared scaffolding for the per-venue tests (``tests/test_<venue>.py``): parsing a frame the
way the collector would, reading the FrameError reason a call raises, and running a real
:class:`Collector` against a venue simulator (``liqstress.streams.sims``) with the MemorySink and Metrics it
publishes to, plus the two collector tests every venue repeats (pings unanswered, subscribe
refused)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import orjson
import pytest

from liqstress.infra.metrics import Metrics
from liqstress.streams.collector import Collector
from liqstress.streams.sims.base import MemorySink, VenueSim, running
from liqstress.streams.venues.base import FrameError, Metadata, Parsed, VenueSpec

#: Collector pings against a simulator that answers them (backoff left at the defaults).
PINGS: dict[str, float] = {"ping_interval": 0.2, "pong_timeout": 1.0}
#: Collector timings against a simulator that answers: quick pings, quick reconnects.
LIVELY: dict[str, float] = {**PINGS, "backoff_initial": 0.05, "backoff_cap": 0.2}
#: Collector timings where pings go unanswered: the pong timeout expires within half a second.
IMPATIENT: dict[str, float] = {"ping_interval": 0.1, "pong_timeout": 0.4,
                               "backoff_initial": 0.05, "backoff_cap": 0.1}


# ---- parsing ----------------------------------------------------------------------------------

def as_text(frame: object) -> str:
    """A frame as the wire carries it: text as is, anything else as JSON."""
    return frame if isinstance(frame, str) else orjson.dumps(frame).decode()


def reason_of(call: Callable[..., Any], *args: Any) -> str:
    """The reason of the FrameError ``call(*args)`` raises; the test fails if it raises none."""
    with pytest.raises(FrameError) as err:
        call(*args)
    return err.value.reason


#: Bodies of Binance's ``exchangeInfo`` shape that no venue of that kit (Binance COIN-M,
#: Aster) may read as metadata, with the reason each must be refused for.
EXCHANGE_INFO_BAD_BODIES = [
    ('{"code":-1121,"msg":"Invalid symbol."}', "rest_error"),
    ("<html>busy</html>", "malformed_json"),
    ("[]", "unexpected_shape"),
    ('{"timezone":"UTC"}', "unexpected_shape"),
]


def rejected_of(call: Callable[..., Any], *args: Any) -> list[str]:
    """The reasons of the rows ``call(*args)`` rejected (``Parsed.rejected``) while the frame
    itself parsed: those rows are one dead letter, the frame's other events still count."""
    return [reason for reason, _ in call(*args).rejected]


# ---- a collector against a simulator ------------------------------------------------------------

class Rig:
    """A collector wired to a simulator, with the sink and the metrics it publishes to."""

    def __init__(self, venue: VenueSpec, sim: VenueSim, **settings: Any) -> None:
        self.venue = venue
        self.sim = sim
        self.sink = MemorySink()
        self.metrics = Metrics.create()
        self.col = Collector(venue, self.sink, self.metrics, urls=sim.urls(), **settings)

    def value(self, name: str, **labels: str) -> float | None:
        """A sample of this venue's ``name``; None while it does not exist."""
        return self.metrics.registry.get_sample_value(name, {"exchange": self.venue.id, **labels})

    def count(self, name: str, **labels: str) -> float:
        """A counter of this venue's, 0 before its first increment."""
        return self.value(name, **labels) or 0

    def frames(self, kind: str) -> float:
        return self.count("liqstress_source_frames_total", kind=kind)

    def up(self) -> float | None:
        return self.value("liqstress_source_up")

    async def published(self, events: int, deadletters: int,
                        also: Callable[[], bool] = lambda: True) -> None:
        """Wait until exactly this many events and dead letters are out (and ``also``)."""
        await self.sim.wait_for(lambda: len(self.sink.events) == events
                                and len(self.sink.deadletters) == deadletters and also())

    async def pinged(self, ping: str, path: str | None = None, pongs: int = 1,
                     exact: bool = True) -> None:
        """Wait until our ping (the message ``ping``, or any message containing it unless
        ``exact``) reached the simulator and ``pongs`` pong frames came back."""
        def sent() -> bool:
            msgs = self.sim.messages(path)
            return ping in msgs if exact else any(ping in m for m in msgs)
        await self.sim.wait_for(sent)
        await self.sim.wait_for(lambda: self.frames("pong") >= pongs)

    def outcome(self, *fields: str) -> list[tuple[Any, ...]]:
        """``fields`` of every event published, in order."""
        return [tuple(getattr(e, f) for f in fields) for e in self.sink.events]

    def assert_recovered(self, reconnects: int = 1) -> None:
        """After a run with a malformed frame and a server-side disconnect: that frame was the
        first dead letter, as malformed JSON, and the source reconnected ``reconnects`` times or
        more."""
        assert self.sink.deadletters[0]["reason"] == "malformed_json"
        assert self.count("liqstress_source_reconnects_total") >= reconnects

    async def reconnected(self, connections: int = 2, clients: int = 1,
                          also: Callable[[], bool] = lambda: True) -> None:
        """Drop every connection server-side, then wait for the collector to come back:
        ``connections`` in total, ``clients`` open, and ``also``."""
        await self.sim.disconnect_all()
        await self.sim.wait_for(lambda: self.sim.connections >= connections
                                and len(self.sim.clients) == clients and also())


class VenueHarness:
    """One venue under test (``tests/test_<venue>.py``): its ``parse`` with the test's defaults
    (its websocket URL as the source, a fixed receipt time, fresh metadata unless one is given:
    ``meta`` makes it), and its collector run against a simulator."""

    def __init__(self, module: ModuleType, recv_ts: float = 1_800_000_000.0,
                 meta: Callable[[], Metadata] = Metadata, source: str | None = None) -> None:
        self.module = module
        self.venue: VenueSpec = module.VENUE
        self.recv_ts = recv_ts
        self.meta = meta
        self.source = module.WS_URL if source is None else source

    # ---- parsing --------------------------------------------------------------------------
    def out(self, frame: object, meta: Metadata | None = None,
            source: str | None = None) -> Parsed:
        return self.module.parse(as_text(frame), self.source if source is None else source,
                                 self.recv_ts, self.meta() if meta is None else meta)

    def events(self, frame: object, meta: Metadata | None = None,
               source: str | None = None) -> list:
        return list(self.out(frame, meta, source).events)

    # ---- the collector against a simulator ------------------------------------------------
    @contextlib.asynccontextmanager
    async def collector(self, sim: VenueSim, timing: dict[str, float] = LIVELY,
                        subscribed: bool = True, **settings: Any) -> AsyncIterator[Rig]:
        """Start ``sim``, run a collector against it (``timing`` plus ``settings``) and, if
        ``subscribed``, wait (5 s at most) until every connection is subscribed."""
        # Open-interest polls are off unless a test asks for them (oi_interval=...): the
        # venue tests count REST requests, and the OI tests exercise the polls.
        settings.setdefault("oi_interval", 0.0)
        # Likewise the warm start (tests/test_backfill.py exercises it).
        settings.setdefault("backfill", False)
        async with sim:
            rig = Rig(self.venue, sim, **timing, **settings)
            async with running(rig.col):
                if subscribed:
                    await asyncio.wait_for(rig.col.subscribed.wait(), 5)
                yield rig

    async def check_unanswered_pings(self, sim: VenueSim, connections: int = 2,
                                     reconnects: int = 1,
                                     back: Callable[[Rig], bool] | None = None,
                                     **settings: Any) -> Rig:
        """With ``sim`` leaving our pings unanswered, a subscribed source goes down while the
        collector still runs, and the collector reconnects (``back``, by default:
        ``connections`` made in all, within 10 s); after the run it has reconnected
        ``reconnects`` times or more and the source is still down."""
        sim.answer_pings = False
        async with self.collector(sim, IMPATIENT, **settings) as rig:
            await sim.wait_for(lambda: rig.up() == 0, timeout=5)
            await sim.wait_for((lambda: back(rig)) if back else
                               (lambda: sim.connections >= connections), timeout=10)
        assert rig.col.reconnects >= reconnects
        assert rig.up() == 0
        return rig

    async def check_subscribe_refused(self, sim: VenueSim,
                                      refused: Callable[[int], bool] = lambda n: n >= 1,
                                      settle: float = 0.0, timing: dict[str, float] = LIVELY,
                                      **settings: Any) -> Rig:
        """With ``sim`` refusing every subscribe, the collector dead-letters the refusals (waits
        for ``refused(number of dead letters)``, then ``settle`` s more): every dead letter is a
        subscribe_error, and the source is never subscribed, nor up."""
        sim.fail_subscribe = True
        async with self.collector(sim, timing, subscribed=False, **settings) as rig:
            await sim.wait_for(lambda: refused(len(rig.sink.deadletters)))
            await asyncio.sleep(settle)
            assert not rig.col.subscribed.is_set()
        assert {d["reason"] for d in rig.sink.deadletters} == {"subscribe_error"}
        assert not rig.col.subscribed.is_set()
        assert rig.up() == 0
        return rig
