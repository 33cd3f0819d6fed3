"""A venue that goes silent is noticed within 30 s, on every venue.

Two ways a connection stalls: the venue's websocket stack still answers protocol pings while its
feed is stuck (only the app-level ping notices: the case that took 78 s on Binance, whose 60 s
ping interval plus a 30 s pong timeout allowed 92 s), or the path is dead and nothing is answered
(the protocol pings notice first). The worst case of each is computed from every venue's real
settings; one slow test runs both stalls against simulators with the real default intervals."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from liqstress.streams.collector import Collector
from liqstress.streams.sims.base import MemorySink, running
from liqstress.streams.sims.binance import BinanceSim
from liqstress.streams.sims.dydx import DydxSim
from liqstress.streams.venues import all_venue_ids, binance, dydx, get_venue
from liqstress.streams.venues.base import STALL_BUDGET

from .venue_harness import Rig


@pytest.mark.parametrize("venue_id", all_venue_ids())
def test_every_venue_notices_a_stall_within_30s(venue_id: str) -> None:
    col = Collector(get_venue(venue_id), MemorySink())
    bounds = col.stall_bounds()
    # A stall the websocket stack hides (protocol pongs still flow): only the app-level ping
    # can see it, so every venue has one, and its worst case fits the budget.
    assert bounds["app"] is not None, f"{venue_id} has no app-level ping"
    assert bounds["app"] <= STALL_BUDGET, (venue_id, bounds)
    # A dead path: the protocol pings see it even sooner.
    assert bounds["protocol"] is not None and bounds["protocol"] <= STALL_BUDGET, (venue_id, bounds)
    # The bound is what the settings give: interval + timeout, the pinger's tick twice (it can
    # delay the ping and the check), and the close handshake. A polled venue (its request is
    # the ping, the answer the pong) has no socket to close, and one bound for both stalls.
    polled = get_venue(venue_id).poll is not None
    assert bounds["app"] == pytest.approx(col.ping_interval + col.pong_timeout
                                          + 2 * col._tick()
                                          + (0.0 if polled else col.close_timeout))


def test_a_venue_without_an_app_ping_relies_on_protocol_pings() -> None:
    col = Collector(replace(get_venue("dydx"), ping_interval=0.0), MemorySink())
    assert col.stall_bounds() == {"app": None, "protocol": 22.0}


def test_binance_no_longer_waits_a_minute_between_pings() -> None:
    """The 78 s measured on Binance: a 60 s ping interval with the 30 s default timeout."""
    assert binance.VENUE.ping_interval + binance.VENUE.pong_timeout <= 25


async def _time_to_down(rig: Rig, since: float, limit: float) -> tuple[float, set[str]]:
    """Seconds from ``since`` until the venue's source_up reads 0, and the reasons its
    connections give once the close is over."""
    while time.monotonic() - since < limit:
        if rig.up() == 0:
            took = time.monotonic() - since
            reasons: set[str] = set()
            deadline = time.monotonic() + 5
            while not reasons and time.monotonic() < deadline:
                reasons = {s.error for s in rig.col.states.values() if s.error}
                await asyncio.sleep(0.02)
            return took, reasons
        await asyncio.sleep(0.05)
    raise AssertionError(f"{rig.venue.id}: still up {limit:.0f}s after the stall began")


@pytest.mark.timeout(90)
async def test_real_stalls_are_detected_within_30s_with_the_default_intervals() -> None:
    """Slow (~25 s): both stalls at once, each against a simulator, with the collectors'
    real default ping intervals and timeouts (nothing shortened for the test)."""
    async with BinanceSim() as bn, DydxSim() as dy:
        # A long first retry delay: each stays down (reason kept) until both are seen.
        app_stall = Rig(binance.VENUE, bn, backoff_initial=40.0)
        dead_path = Rig(dydx.VENUE, dy, backoff_initial=40.0)
        assert app_stall.col.ping_interval == binance.VENUE.ping_interval == 15.0
        assert dead_path.col.ws_ping_interval == dydx.VENUE.ws_ping_interval
        async with running(app_stall.col), running(dead_path.col):
            await asyncio.wait_for(asyncio.gather(app_stall.col.subscribed.wait(),
                                                  dead_path.col.subscribed.wait()), 15)
            assert app_stall.up() == 1 and dead_path.up() == 1
            # Binance: LIST_SUBSCRIPTIONS goes unanswered; the server's websocket stack still
            # answers protocol pings, so only the app-level ping can notice.
            bn.answer_pings = False
            # dYdX (whose own keepalive is protocol pings): the server stops reading
            # altogether, so neither our protocol pings nor our app pings get an answer.
            paused = list(dy.clients)
            for ws in paused:
                ws.transport.pause_reading()
            began = time.monotonic()
            (app_s, app_reason), (dead_s, dead_reason) = await asyncio.gather(
                _time_to_down(app_stall, began, 40), _time_to_down(dead_path, began, 40))
            for ws in paused:  # let the simulator see the dropped sockets and stop quickly
                ws.transport.resume_reading()
    # Within the computed worst case (plus scheduling and the 50 ms polling here).
    assert app_s <= STALL_BUDGET and app_s <= app_stall.col.stall_bounds()["app"] + 0.5, app_s
    assert dead_s <= STALL_BUDGET and dead_s <= dead_path.col.stall_bounds()["protocol"] + 0.5, \
        dead_s
    assert any("no reply to ping" in r for r in app_reason), app_reason
    assert any("keepalive" in r for r in dead_reason), dead_reason
