"""The polled source (``Collector._run_poll``, ``PollSpec``, ``Connection.poll``) on a toy venue:
request spacing and its bounds, the cursor and overlap, ids published once per source (in the
session, so a replay agrees), failures that hold one request or all of them, bodies that are
not pages, the raw policy for poll bodies, and ``liqstress record`` + ``normalize`` of a
polled venue giving back exactly the events the live collector published."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import pytest
from aiohttp import web

from liqstress import cli
from liqstress.cli.pipeline import process_recording
from liqstress.config import ConfigError
from liqstress.infra.metrics import Metrics
from liqstress.recording import RawFrame
from liqstress.streams.collector import Collector, Pacer, retry_after
from liqstress.streams.session import SEEN_PRUNE_AT, VenueSession
from liqstress.streams.sims.base import MemorySink, VenueSim, running
from liqstress.streams.sims.paradex import ParadexSim, market, trade
from liqstress.streams.venues import kit, paradex
from liqstress.streams.venues.base import POLL_PREFIX, Connection, PollSpec, VenueSpec

# ---- a toy polled venue ------------------------------------------------------------------------
# GET /tape?topic=T[&since=ms][&page=k] -> {"rows": [{"id", "t" (ms), "side", "usd"}], "more": k}


def toy_request(url: str, topic: str, since: int | None, page: str | None) -> str:
    query: dict[str, Any] = {"topic": topic}
    if since is not None:
        query["since"] = since
    if page is not None:
        query["page"] = page
    return f"{url}?{urlencode(query)}"


def toy_progress(body: str) -> tuple[int | None, str | None]:
    msg = kit.rest_json(body, dict, "not a page")
    rows = kit.member(msg, "rows", list)
    times = [r["t"] for r in rows if isinstance(r, dict) and type(r.get("t")) is int]
    more = msg.get("more")
    return (max(times) if times else None), (more if isinstance(more, str) else None)


def toy_parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.rest_json(text, dict, "not a page")
    events = [kit.event(exchange="toy", symbol=r["topic"], base=r["topic"], quote="USD",
                        market="linear", side=r["side"], price=1.0, qty=float(r["usd"]),
                        notional_usd=float(r["usd"]), ts=r["t"] / 1000, recv_ts=recv_ts,
                        sampled=False, venue_id=r["id"])
              for r in kit.objects(kit.member(msg, "rows", list), "row")]
    return kit.parsed("data" if events else "info", tuple(events))


TOPICS = ("A", "B", "C")


def toy_connections(meta: kit.Metadata, urls: dict[str, str]) -> list[Connection]:
    return [Connection(name="tape", url=f"{urls['rest']}/tape", topics=TOPICS, poll=0.3)]


TOY = VenueSpec(id="toy", side_rule="", unit_rule="", sampled=False,
                connections=toy_connections, parse=toy_parse,
                poll=PollSpec(request=toy_request, progress=toy_progress, overlap=2.0,
                              max_rate=100.0, max_pages=3),
                ping_interval=1.0, pong_timeout=1.0, default_urls={"rest": "http://toy.invalid"})


class ToySim(VenueSim):
    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[dict[str, Any]]] = {t: [] for t in TOPICS}
        self.queries: list[dict[str, str]] = []
        #: Per topic: answer with this status (and body) instead.
        self.refuse: dict[str, tuple[int, str]] = {}
        #: Pages of at most this many rows (newest first); "more" is the next page's index.
        self.page_rows = 100

    def urls(self) -> dict[str, str]:
        return {"rest": self.http_base}

    def http_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/tape", self._tape)
        return app

    async def _tape(self, request: web.Request) -> web.Response:
        q = dict(request.query)
        self.queries.append(q)
        topic = q["topic"]
        if topic in self.refuse:
            status, text = self.refuse[topic]
            return web.Response(status=status, text=text, content_type="application/json")
        rows = sorted((r for r in self.rows[topic] if r["t"] >= int(q.get("since", 0))),
                      key=lambda r: r["t"], reverse=True)
        k = int(q.get("page", "0"))
        chunk = rows[k * self.page_rows:(k + 1) * self.page_rows]
        more = str(k + 1) if (k + 1) * self.page_rows < len(rows) else None
        return web.json_response({"rows": chunk, "more": more})

    def add(self, topic: str, row_id: str, t: int, side: str = "long", usd: float = 100.0) -> None:
        self.rows[topic].append({"id": row_id, "topic": topic, "t": t, "side": side, "usd": usd})

    def of(self, topic: str) -> list[dict[str, str]]:
        return [q for q in self.queries if q["topic"] == topic]


def now_ms() -> int:
    return int(time.time() * 1000)


def collector(sim: VenueSim, venue: VenueSpec = TOY, sink: Any = None, **kw: Any) -> Collector:
    settings: dict[str, Any] = {"backoff_initial": 0.05, "backoff_cap": 0.2, "oi_interval": 0,
                                **kw}
    return Collector(venue, sink if sink is not None else MemorySink(), Metrics.create(),
                     urls=sim.urls(), **settings)


async def wait_for(pred: Any, timeout: float = 5.0) -> None:
    async def loop() -> None:
        while not pred():
            await asyncio.sleep(0.02)
    await asyncio.wait_for(loop(), timeout)


def up(col: Collector) -> float | None:
    assert col.metrics is not None
    return col.metrics.registry.get_sample_value("liqstress_source_up", {"exchange": col.venue.id})


# ---- settings, spacing, bounds ------------------------------------------------------------------

def test_request_spacing_is_the_period_spread_over_topics_within_the_rate_and_ping() -> None:
    col = Collector(TOY, MemorySink())
    conn = Connection(name="x", url="http://h/x", poll=60.0)
    assert col.poll_gap(conn, 120) == pytest.approx(0.5)  # 60 s / 120 topics
    assert col.poll_gap(conn, 12_000) == pytest.approx(0.01)  # capped by 100 requests/s
    assert col.poll_gap(conn, 3) == pytest.approx(1.0)  # never slower than ping_interval
    assert col.poll_gap(conn, 0) == pytest.approx(1.0)
    assert Collector(TOY, MemorySink(), poll_period=6.0).poll_gap(conn, 12) == pytest.approx(0.5)
    assert Collector(TOY, MemorySink(), poll_rate=1.0).poll_gap(conn, 12_000) == 1.0
    # Paradex: 150 markets in 60 s is 2.5 requests/s, under its 5/s cap.
    para = Collector(paradex.VENUE, MemorySink())
    assert para.poll_gap(Connection(name="t", url="https://h", poll=60.0), 150) == 0.4
    assert para.poll_gap(Connection(name="t", url="https://h", poll=60.0), 600) == 0.2


def test_stall_bound_of_a_polled_venue() -> None:
    col = Collector(TOY, MemorySink())
    bound = col.ping_interval + col.pong_timeout + 2 * col._tick()  # noqa: SLF001
    assert col.stall_bounds() == {"app": bound, "protocol": bound}
    assert Collector(paradex.VENUE, MemorySink()).stall_bounds()["app"] == 21.0


async def test_a_polled_connection_needs_an_http_url_and_a_poll_spec() -> None:
    def ws(meta: kit.Metadata, urls: dict[str, str]) -> list[Connection]:
        return [Connection(name="tape", url="ws://h/x", topics=("A",), poll=1.0)]

    for venue in (replace(TOY, connections=ws), replace(TOY, poll=None)):
        with pytest.raises(ConfigError, match="polled connection needs"):
            await asyncio.wait_for(Collector(venue, MemorySink(), oi_interval=0,
                                             urls={"rest": "http://h"}).run(), 5)


async def test_pacer_spaces_requests_and_holds_them() -> None:
    pacer = Pacer()
    t0 = time.monotonic()
    for _ in range(3):
        await pacer.turn(0.1)
    assert 0.18 <= time.monotonic() - t0 < 0.5  # the first goes at once
    pacer.hold(0.3)
    t1 = time.monotonic()
    await pacer.turn(0.01)
    assert time.monotonic() - t1 >= 0.28


@pytest.mark.parametrize(("header", "seconds"), [
    ("2", 2.0), ("0.5", 0.5), ("0", 0.0), (None, None), ("Wed, 21 Oct 2026 07:28:00 GMT", None),
    ("-1", None), ("inf", None), ("nan", None)])
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert retry_after(header) == seconds


# ---- the session: a poll source publishes an id once ---------------------------------------------

def toy_body(*rows: tuple[str, int]) -> str:
    return orjson.dumps({"rows": [{"id": i, "topic": "A", "t": t, "side": "long", "usd": 1.0}
                                  for i, t in rows]}).decode()


SRC = f"{POLL_PREFIX}http://toy/tape?topic=A"


def test_a_poll_source_gives_each_id_once_other_sources_every_time() -> None:
    s = VenueSession(TOY)
    t = 1_790_000_000_000
    assert len(s.process(RawFrame("toy", SRC, 1.79e9, toy_body(("1", t), ("2", t)))).events) == 2
    again = s.process(RawFrame("toy", SRC, 1.79e9, toy_body(("2", t), ("3", t + 1))))
    assert [e.ts for e in again.events] == [(t + 1) / 1000] and again.snapshot_dropped == 1
    # The same body twice in one page counts once too.
    twice = s.process(RawFrame("toy", SRC, 1.79e9, toy_body(("4", t), ("4", t))))
    assert len(twice.events) == 1 and twice.snapshot_dropped == 1
    # Another source has its own memory; a websocket source has none.
    other = f"{POLL_PREFIX}http://toy/tape?topic=B"
    assert len(s.process(RawFrame("toy", other, 1.79e9, toy_body(("1", t)))).events) == 1
    for _ in range(2):
        assert len(s.process(RawFrame("toy", "ws://toy", 1.79e9, toy_body(("1", t)))).events) == 1
    # A poll source starting over (what a new connection is) forgets what it gave.
    s.reset_connection(SRC)
    assert len(s.process(RawFrame("toy", SRC, 1.79e9, toy_body(("1", t)))).events) == 1
    # Without the memory (the fuzz tests), every body is parsed on its own.
    fresh = VenueSession(TOY, poll_dedupe=False)
    for _ in range(2):
        assert len(fresh.process(RawFrame("toy", SRC, 1.79e9, toy_body(("1", t)))).events) == 1


def test_a_refused_row_read_again_is_not_refused_twice() -> None:
    s = VenueSession(TOY)
    bad = toy_body(("x", 1000))  # 1970: implausible
    first = s.process(RawFrame("toy", SRC, 1.79e9, bad))
    assert first.deadletter is not None and first.deadletter["reason"] == "implausible_time"
    again = s.process(RawFrame("toy", SRC, 1.79e9, bad))
    assert again.deadletter is None and again.snapshot_dropped == 1


def test_the_memory_of_ids_is_bounded_by_event_time() -> None:
    s = VenueSession(TOY)
    t = 1_790_000_000_000
    old = [(f"old{i}", t) for i in range(SEEN_PRUNE_AT)]
    s.process(RawFrame("toy", SRC, 1.79e9 + 7200, toy_body(*old)))
    s.process(RawFrame("toy", SRC, 1.79e9 + 7200, toy_body(("new", t + 7_200_000))))
    seen = s._seen[SRC]  # noqa: SLF001
    assert list(seen.values()) == [(t + 7_200_000) / 1000]  # two hours older: dropped


# ---- the runner against the toy server -----------------------------------------------------------

async def test_cursor_starts_now_moves_to_the_newest_row_minus_the_overlap() -> None:
    async with ToySim() as sim:
        start = now_ms()
        sim.add("A", "history", start - 60_000)
        col = collector(sim)
        async with running(col):
            await asyncio.wait_for(col.subscribed.wait(), 5)
            t = now_ms() + 5000  # a venue clock a little ahead: the cursor passes the start
            sim.add("A", "a1", t)
            await wait_for(lambda: len(col.sink.events) == 1)  # type: ignore[attr-defined]
            await wait_for(lambda: int(sim.of("A")[-1].get("since", 0)) == t - 2000)
            assert all(int(q["since"]) >= start for q in sim.of("A"))
            assert col.states["tape"].cursors["A"] == t - 2000
            assert col.states["tape"].cursors["B"] >= start  # no rows: stays where it began
    assert [e.symbol for e in col.sink.events] == ["A"]  # type: ignore[attr-defined]


async def test_pages_are_followed_up_to_the_limit() -> None:
    async with ToySim() as sim:
        sim.page_rows = 2
        col = collector(sim)
        async with running(col):
            await asyncio.wait_for(col.subscribed.wait(), 5)
            t = now_ms() + 10
            for i in range(9):  # five pages of two; three are read per poll
                sim.add("A", f"r{i}", t + i)
            await wait_for(lambda: len(col.sink.events) >= 6)  # type: ignore[attr-defined]
            await asyncio.sleep(0.5)
    times = {e.ts for e in col.sink.events}  # type: ignore[attr-defined]
    # The newest six: the three oldest are beyond the page limit of every poll.
    assert times == {(t + i) / 1000 for i in range(3, 9)}
    assert {q.get("page") for q in sim.of("A")} >= {"1", "2"}


async def test_a_4xx_on_one_topic_holds_nothing_and_takes_nothing_down(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="liqstress.streams.collector")
    async with ToySim() as sim:
        sim.refuse["B"] = (404, '{"error":"no such topic"}')
        col = collector(sim)
        async with running(col):
            await asyncio.wait_for(col.subscribed.wait(), 5)
            sim.add("C", "c1", now_ms() + 10)
            await wait_for(lambda: len(col.sink.events) == 1)  # type: ignore[attr-defined]
            await wait_for(lambda: len(sim.of("B")) >= 4)
            assert up(col) == 1
    assert col.sink.deadletters == []  # type: ignore[attr-defined]
    assert any("toy/tape: poll" in r.getMessage() and "HTTP 404" in r.getMessage()
               for r in caplog.records)


async def test_a_body_that_is_not_a_page_is_a_dead_letter_and_the_cursor_stays() -> None:
    async with ToySim() as sim:
        col = collector(sim)
        async with running(col):
            await asyncio.wait_for(col.subscribed.wait(), 5)
            since = col.states["tape"].cursors["A"]
            sim.refuse["A"] = (200, "<html>maintenance</html>")
            sim.refuse["B"] = sim.refuse["C"] = sim.refuse["A"]
            await wait_for(lambda: up(col) == 0)
            assert col.down_reason() == "unusable body (malformed_json)"
            assert col.states["tape"].cursors["A"] == since
            sim.refuse.clear()
            await wait_for(lambda: up(col) == 1)
    dls = col.sink.deadletters  # type: ignore[attr-defined]
    assert dls and {d["reason"] for d in dls} == {"malformed_json"}
    assert all(d["source"].startswith(f"{POLL_PREFIX}{sim.http_base}/tape?topic=") for d in dls)


async def test_a_body_over_the_frame_limit_is_too_large() -> None:
    async with ToySim() as sim:
        sim.refuse["A"] = (200, '{"rows": [], "pad": "' + "x" * 70_000 + '"}')
        col = collector(sim, replace(TOY, max_frame_bytes=64 * 1024))
        async with running(col):
            await wait_for(lambda: bool(col.sink.deadletters))  # type: ignore[attr-defined]
    (dl, *_) = col.sink.deadletters  # type: ignore[attr-defined]
    assert dl["reason"] == "too_large" and dl["frame"] == ""
    assert dl["source"] == f"{POLL_PREFIX}{sim.http_base}/tape?topic=A"


async def test_raw_policy_keeps_only_poll_bodies_with_an_event_or_a_dead_letter() -> None:
    async with ToySim() as sim:
        col = collector(sim)
        async with running(col):
            await asyncio.wait_for(col.subscribed.wait(), 5)
            sim.add("A", "a1", now_ms() + 10)
            await wait_for(lambda: len(col.sink.events) == 1)  # type: ignore[attr-defined]
            await wait_for(lambda: len(sim.queries) >= 12)
    raws = col.sink.raws  # type: ignore[attr-defined]
    assert len(raws) == 1 and "a1" in raws[0].data  # the re-reads of a1 were not kept
    assert col.metrics is not None and col.metrics.registry.get_sample_value(
        "liqstress_raw_skipped_total", {"exchange": "toy"}) >= 10


# ---- record + normalize of a polled venue -------------------------------------------------------

@pytest.mark.timeout(60)
async def test_record_then_normalize_gives_the_published_events(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paradex, "POLL_PERIOD", 0.5)  # both markets every half second
    out = tmp_path / "rec.jsonl"
    async with ParadexSim(markets=[market("BTC-USD-PERP"), market("ETH-USD-PERP")]) as sim:
        args = cli.build_parser().parse_args(
            ["record", "--out", str(out), "--exchanges", "paradex", "--venue-urls",
             f"paradex.rest={sim.http_base}", "--duration", "4"])
        task = asyncio.create_task(cli.cmd_record(args))
        await sim.wait_for(lambda: len(sim.trade_requests) >= 2)
        t = now_ms()
        sim.add(trade("p1", "BTC-USD-PERP", "SELL", "0.5", "60000", t),
                trade("p2", "ETH-USD-PERP", "BUY", "2", "3000", t + 1),
                trade("p3", "ETH-USD-PERP", "BUY", "9", "3000", t + 2, "FILL"))
        assert await asyncio.wait_for(task, 15) == 0
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    sources = {ln["source"] for ln in lines}
    assert f"{sim.http_base}/v1/markets" in sources  # metadata, replayed through load_rest
    polls = [ln for ln in lines if ln["source"].startswith(POLL_PREFIX)]
    assert polls and all("start_at" not in ln["source"] for ln in polls)
    with out.open("rb") as fh:
        res = process_recording(fh, lambda n, m: None)
    assert sorted((e.symbol, e.side, e.notional_usd) for e in res.events) == [
        ("BTC-USD-PERP", "long", 30000.0), ("ETH-USD-PERP", "short", 6000.0)]
    assert res.deadletters == []


def test_request_query_of_the_toy() -> None:
    q = parse_qs(urlsplit(toy_request("http://h/tape", "A", 5, "2")).query)
    assert q == {"topic": ["A"], "since": ["5"], "page": ["2"]}
