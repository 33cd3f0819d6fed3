"""The collector's open-interest poll against a local HTTP simulator: records published every
interval, failures counted and retried at the next poll, bodies kept out of the raw topic unless
asked for, and a recording of the polls replaying to the same records."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

import liqstress.cli.pipeline as pipeline
from liqstress.cli.pipeline import process_recording
from liqstress.infra.metrics import Metrics
from liqstress.open_interest import OpenInterest
from liqstress.recording import RawFrame
from liqstress.streams.collector import Collector, keeps_raw
from liqstress.streams.publisher import RecordingSink
from liqstress.streams.session import VenueSession
from liqstress.streams.sims.base import MemorySink, VenueSim, running
from liqstress.streams.venues import kit
from liqstress.streams.venues.base import VenueSpec

T = 1_789_660_000.0


def body(oi: float, funding: Any = "0.0001") -> str:
    return orjson.dumps({"list": [{"s": "BTCUSDT", "oi": str(oi), "mark": "100000",
                                   "funding": funding, "t": int(T * 1000)}]}).decode()


def _build(item: dict[str, Any], recv_ts: float) -> OpenInterest:
    coins, mark = kit.num_str(item, "oi"), kit.num_str(item, "mark")
    return kit.oi_record(exchange="simx", symbol=item["s"], base="BTC", market="linear",
                         oi_coins=coins, oi_usd=coins * mark, price=mark,
                         funding_rate=kit.num_str(item, "funding"), funding_interval_hours=8.0,
                         ts=kit.ms(item, "t"), recv_ts=recv_ts)


def parse_oi(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.rest_json(text, dict, "not an object")
    return kit.oi_frame(kit.member(msg, "list", list), lambda item: _build(item, recv_ts))


VENUE = VenueSpec(id="simx", side_rule="", unit_rule="", sampled=False,
                  connections=lambda meta, urls: [], parse=lambda *a: kit.INFO,
                  oi_urls=lambda meta, urls: [kit.rest_url(urls, "https://simx.test",
                                                           "/oi?all=1")],
                  oi_source=kit.url_has("/oi?"), parse_oi=parse_oi,
                  default_urls={"rest": "https://simx.test"})


class OISim(VenueSim):
    oi_paths = ("/oi",)

    def __init__(self) -> None:
        super().__init__()
        self.oi_bodies["/oi"] = body(10)


def sample(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, {"exchange": "simx", **labels})


async def test_polls_publish_records_and_recover_from_failures() -> None:
    metrics = Metrics.create(CollectorRegistry())
    sink = MemorySink()
    async with OISim() as sim:
        c = Collector(VENUE, sink, metrics, urls={"rest": sim.http_base}, oi_interval=0.2,
                      backoff_initial=0.05)
        async with running(c):
            await sim.wait_for(lambda: len(sink.oi_records) >= 2)
            assert sample(metrics, "liqstress_oi_last_success_timestamp_seconds") > T
            sim.oi_bodies["/oi"] = body(12)
            await sim.wait_for(lambda: sink.oi_records[-1].oi_coins == 12.0)
            sim.rest_fail = 1  # a 503: counted as an error, the next poll succeeds
            polls_ok = sample(metrics, "liqstress_oi_polls_total", outcome="ok")
            await sim.wait_for(lambda: (sample(metrics, "liqstress_oi_polls_total",
                                               outcome="error") or 0) >= 1)
            await sim.wait_for(lambda: sample(metrics, "liqstress_oi_polls_total",
                                              outcome="ok") > polls_ok)
            assert c.oi_error is None
            sim.oi_bodies["/oi"] = body(12, funding=True)  # the only instrument unreadable
            await sim.wait_for(lambda: any(d["reason"] == "bad_open_interest"
                                           for d in sink.deadletters))
            await sim.wait_for(lambda: (sample(metrics, "liqstress_oi_polls_total",
                                               outcome="error") or 0) >= 2)
            assert c.oi_error == "unusable (bad_open_interest)"
    last = sink.oi_records[-1]
    assert (last.coin, last.oi_usd, last.funding_8h) == ("BTC", 1_200_000.0, 0.0001)
    assert sample(metrics, "liqstress_oi_records_total") == len(sink.oi_records)
    assert sample(metrics, "liqstress_deadletter_total", reason="bad_open_interest") >= 1
    assert all(h.startswith("/oi?all=1") for h in sim.rest_hits)
    # The poll bodies stay out of the raw topic under the default policy; the dead letter's
    # frame is kept (it is what someone debugging needs).
    assert sink.raws and all('"funding":true' in r.data for r in sink.raws)


async def test_no_polls_when_off_or_without_a_feed() -> None:
    async with OISim() as sim:
        for venue, interval in ((VENUE, 0.0), (VenueSpec(id="y", side_rule="", unit_rule="",
                                                          sampled=False,
                                                          connections=lambda m, u: [],
                                                          parse=lambda *a: kit.INFO), 0.1)):
            c = Collector(venue, MemorySink(), urls={"rest": sim.http_base},
                          oi_interval=interval)
            assert c.oi_requests() == []
            async with running(c):
                await asyncio.sleep(0.3)
        assert sim.rest_hits == []


def test_raw_policy_keeps_poll_bodies_only_under_all() -> None:
    session = VenueSession(VENUE)
    out = session.process(RawFrame("simx", "https://simx.test/oi?all=1", T, body(3)))
    assert out.open_interest and out.deadletter is None
    assert not keeps_raw("liquidations", out)
    assert keeps_raw("all", out)
    bad = session.process(RawFrame("simx", "https://simx.test/oi?all=1", T, "{"))
    assert keeps_raw("liquidations", bad)  # a dead letter's frame is always kept


async def test_a_recording_of_the_polls_replays_to_the_same_records(monkeypatch: Any) -> None:
    fh = io.BytesIO()
    sink = RecordingSink(fh)
    async with OISim() as sim:
        c = Collector(VENUE, sink, urls={"rest": sim.http_base}, oi_interval=0.1)
        live = MemorySink()
        c2 = Collector(VENUE, live, urls={"rest": sim.http_base}, oi_interval=0.1)
        async with running(c), running(c2):
            await sim.wait_for(lambda: sink.lines >= 3 and len(live.oi_records) >= 1)
    fh.seek(0)
    original = pipeline.get_venue
    monkeypatch.setattr(pipeline, "get_venue", lambda ex: VENUE if ex == "simx" else original(ex))
    res = process_recording(fh, lambda n, why: None)
    assert len(res.open_interest) == sink.lines
    assert {(r.symbol, r.oi_coins, r.funding_rate) for r in res.open_interest} == {
        ("BTCUSDT", 10.0, 0.0001)}
    assert {r.recv_ts for r in res.open_interest} == {
        orjson.loads(line)["recv_ts"] for line in fh.getvalue().splitlines()}
