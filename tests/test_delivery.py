"""Delivery to Kafka you can see: the sink survives a broker killed and restarted empty (the
embedded broker keeps topics in memory), its backlog is bounded and counted, and
``liqstress_sink_up`` / backlog gauges say what is happening. Real embedded broker throughout;
topics are read back by an independent client (librdkafka)."""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from liqstress.config import Topics
from liqstress.coverage import CoverageTracker, coverage_from_json
from liqstress.event import make_event
from liqstress.infra.broker import EmbeddedBroker, free_port
from liqstress.infra.metrics import Metrics
from liqstress.infra.topic_admin import ensure_topics
from liqstress.recording import RawFrame
from liqstress.streams.collector import Collector
from liqstress.streams.publisher import KafkaSink
from liqstress.streams.sims.base import running
from liqstress.streams.sims.hyperliquid import TRADER, VAULT, HyperliquidSim, trade, trades
from liqstress.streams.venues import hyperliquid as hl
from liqstress.topics import Retention, topic_specs

from .helpers import eventually, read_topic


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def _up(metrics: Metrics, sink: KafkaSink) -> float | None:
    return _value(metrics, "liqstress_sink_up")


def _event(i: int, now: float) -> Any:
    # The price makes each event id distinct.
    return make_event(exchange="binance", symbol="BTCUSDT", base="BTC", quote="USDT",
                      market="linear", side="long", price=1000.0 + i, qty=1.0,
                      notional_usd=1000.0 + i, ts=now, recv_ts=now, sampled=True)


def _kill(broker: EmbeddedBroker) -> None:
    assert broker.proc is not None
    broker.proc.send_signal(signal.SIGKILL)
    broker.proc.wait(10)
    broker.proc = None


async def _topics(bootstrap: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
    finally:
        await admin.close()


def test_a_process_without_a_sink_does_not_report_it_down() -> None:
    metrics = Metrics.create(CollectorRegistry())  # e.g. `liqstress worker`: no sink
    # NaN, not 0: LiqStressSinkDown (sink_up == 0) stays quiet for a worker.
    assert math.isnan(_value(metrics, "liqstress_sink_up"))
    assert math.isnan(_value(metrics, "liqstress_publish_backlog_records"))
    sink = KafkaSink("127.0.0.1:1", Topics(), metrics=metrics)
    assert _up(metrics, sink) == 0  # until the broker accepts a record
    assert _value(metrics, "liqstress_publish_backlog_records") == 0


async def test_ensure_topics_creates_only_the_missing_ones(broker: EmbeddedBroker) -> None:
    specs = topic_specs(Topics(), partitions=3, retention=Retention.parse("raw=1h"))
    created = await ensure_topics(broker.bootstrap, specs[:2])
    assert created == [specs[0].name, specs[1].name]
    assert sorted(await ensure_topics(broker.bootstrap, specs)) == sorted(
        s.name for s in specs[2:])
    assert await ensure_topics(broker.bootstrap, specs) == []
    got = await _topics(broker.bootstrap)
    assert {s.name: got[s.name] for s in specs} == {s.name: s.partitions for s in specs}


async def test_ensure_topics_raises_when_the_broker_is_down() -> None:
    with pytest.raises(Exception, match="(?i)bootstrap|connect"):
        await ensure_topics(f"127.0.0.1:{free_port()}", topic_specs(Topics()), timeout=3)


@pytest.mark.timeout(90)
async def test_everything_handed_over_after_a_kill_is_on_the_topics_after_the_restart(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="liqstress.streams.publisher")
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    metrics = Metrics.create(CollectorRegistry(), worker=False)
    sink = KafkaSink(broker.bootstrap, Topics(), metrics=metrics, retry_delay=0.1,
                     retry_cap=0.5, log_interval=60.0)
    await sink.start()
    handed = 0
    stop = asyncio.Event()

    async def stream() -> None:
        nonlocal handed
        while not stop.is_set():
            now = time.time()
            await sink.raw(RawFrame("binance", "wss://x", now, f"frame {handed}"))
            await sink.event(_event(handed, now))
            handed += 1
            await asyncio.sleep(0.005)

    feeder = asyncio.create_task(stream())
    try:
        await eventually(lambda: _up(metrics, sink) == 1 and sink.sent >= 200,
                         20, interval=0.05, what="sink up and sending")
        _kill(broker)
        killed_at = handed
        await eventually(lambda: _up(metrics, sink) == 0, 10, interval=0.05,
                         what="sink_up 0 after the kill")
        await eventually(lambda: (_value(metrics, "liqstress_publish_backlog_records") or 0)
                         >= 300, 20, interval=0.05, what="backlog growing during the outage")
        assert (_value(metrics, "liqstress_publish_backlog_bytes") or 0) > 300 * 50
        # Same port, empty memory: every topic is gone.
        broker = await asyncio.to_thread(EmbeddedBroker(port=port).start)
        await eventually(lambda: _up(metrics, sink) == 1, 30, interval=0.05,
                         what="sink_up back to 1")
        stop.set()
        await feeder
        await asyncio.wait_for(sink.wait_idle(), 30)
        assert _value(metrics, "liqstress_publish_backlog_records") == 0
        assert _value(metrics, "liqstress_publish_backlog_bytes") == 0
        after = handed - killed_at
        assert after >= 150  # two records (raw frame, event) per step
        # The topics were created again with our partitions, not auto-created by a produce.
        parts = await _topics(broker.bootstrap)
        assert {s.name: parts.get(s.name) for s in sink.specs} == {
            s.name: s.partitions for s in sink.specs}
        raws = await asyncio.to_thread(read_topic, broker.bootstrap, "liquidations.raw", after)
        frames = {orjson.loads(r)["frame"] for r in raws}
        assert [i for i in range(killed_at, handed) if f"frame {i}" not in frames] == []
        events = await asyncio.to_thread(read_topic, broker.bootstrap, "liquidations", after)
        prices = {orjson.loads(e)["price"] for e in events}
        assert [i for i in range(killed_at, handed) if 1000.0 + i not in prices] == []
        assert (_value(metrics, "liqstress_publish_sent_total", topic="liquidations")
                or 0) >= handed
        assert _value(metrics, "liqstress_publish_dropped_total", topic="liquidations") == 0
        assert await sink.stop() == 0
        # The outage is logged, but not once per record or per retry.
        warnings = [r for r in caplog.records if r.name == "liqstress.streams.publisher"]
        assert 1 <= len(warnings) <= 4, [r.getMessage() for r in warnings]
    finally:
        stop.set()
        feeder.cancel()
        await sink.stop(0.1)
        await asyncio.to_thread(broker.stop)


@pytest.mark.timeout(90)
async def test_collector_frames_received_after_a_kill_reach_the_topics() -> None:
    port = free_port()
    broker = EmbeddedBroker(port=port).start()
    metrics = Metrics.create(CollectorRegistry(), worker=False)
    sink = KafkaSink(broker.bootstrap, Topics(), metrics=metrics, retry_delay=0.1,
                     retry_cap=0.5)
    await sink.start()
    pushed: list[str] = []

    async def push_liquidations(sim: HyperliquidSim, n: int) -> None:
        for _ in range(n):
            now = int(time.time() * 1000) + 1000
            frame = trades(trade("BTC", "A", f"{60000 + len(pushed)}", "0.5", now, VAULT, TRADER))
            pushed.append(frame)
            await sim.push(frame)

    try:
        async with HyperliquidSim() as sim:
            col = Collector(hl.VENUE, sink, metrics, urls=sim.urls(), ping_interval=0.5,
                            pong_timeout=5.0, backoff_initial=0.05, backoff_cap=0.2)
            async with running(col):
                await asyncio.wait_for(col.subscribed.wait(), 10)
                await push_liquidations(sim, 5)
                await eventually(lambda: sink.sent >= 10 and sink.backlog == 0, 20,
                                 interval=0.05, what="first frames delivered")
                _kill(broker)
                before = len(pushed)
                await eventually(lambda: _up(metrics, sink) == 0, 10,
                                 interval=0.05, what="sink down")
                await push_liquidations(sim, 20)
                await eventually(lambda: col.events_published == len(pushed), 10,
                                 interval=0.05, what="collector handled the frames")
                assert sink.backlog >= 40  # 20 raw frames and 20 events, waiting
                broker = await asyncio.to_thread(EmbeddedBroker(port=port).start)
                await asyncio.wait_for(sink.wait_idle(), 30)
        assert _up(metrics, sink) == 1
        after = pushed[before:]
        raws = await asyncio.to_thread(read_topic, broker.bootstrap, "liquidations.raw",
                                       len(after))
        frames = {orjson.loads(r)["frame"] for r in raws}
        assert [f for f in after if f not in frames] == []
        events = await asyncio.to_thread(read_topic, broker.bootstrap, "liquidations",
                                         len(after))
        assert {orjson.loads(e)["price"] for e in events} >= {
            float(orjson.loads(f)["data"][0]["px"]) for f in after}
        assert await sink.stop() == 0
    finally:
        await sink.stop(0.1)
        await asyncio.to_thread(broker.stop)


async def test_full_backlog_drops_the_oldest_and_stop_reports_unsent(
        caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens: the broker is down from the start
    metrics = Metrics.create(CollectorRegistry(), worker=False)
    sink = KafkaSink(f"127.0.0.1:{port}", Topics(), metrics=metrics, retry_delay=0.1,
                     max_backlog_bytes=4000)
    await sink.start()
    for i in range(100):
        await sink.raw(RawFrame("binance", "wss://x", 1.0, f"frame {i:03d}"))
    kept = sink.backlog
    assert 10 < kept < 100
    assert _value(metrics, "liqstress_publish_dropped_total",
                  topic="liquidations.raw") == 100 - kept
    assert _value(metrics, "liqstress_publish_backlog_records") == kept
    in_bytes = _value(metrics, "liqstress_publish_backlog_bytes")
    assert in_bytes == sink.backlog_bytes <= 4000
    await eventually(lambda: _up(metrics, sink) == 0, 5, what="sink down")
    with caplog.at_level(logging.ERROR, logger="liqstress.streams.publisher"):
        assert await sink.stop(flush_timeout=0.5) == kept
    assert any(f"{kept} records unsent" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(60)
async def test_coverage_waits_as_one_record_per_venue_and_is_never_unsent_data() -> None:
    """While the broker is down, a venue's coverage record every 15 s replaces the one still
    waiting; they do not count as records lost at stop (state, restated by the next run), and
    once the broker is back the newest is the one delivered."""
    port = free_port()
    metrics = Metrics.create(CollectorRegistry(), worker=False)
    sink = KafkaSink(f"127.0.0.1:{port}", Topics(), metrics=metrics, retry_delay=0.1)
    await sink.start()
    tracker = CoverageTracker("okx", 1_789_600_000.0)
    for k in range(20):
        await sink.coverage(tracker.record(1_789_600_000.0 + 15 * k))
    await sink.coverage(CoverageTracker("bybit", 1_789_600_000.0).record(1_789_600_010.0))
    await sink.raw(RawFrame("okx", "wss://x", 1.0, "frame"))
    assert sink.backlog == 3
    with EmbeddedBroker(port=port) as broker:
        await asyncio.wait_for(sink.wait_idle(), 30)
        got = [coverage_from_json(v) for v in await asyncio.to_thread(
            read_topic, broker.bootstrap, "coverage", 2)]
        assert sorted((r.exchange, r.ts) for r in got) == [
            ("bybit", 1_789_600_010.0), ("okx", 1_789_600_000.0 + 15 * 19)]
        await sink.coverage(tracker.record(1_789_600_400.0))  # after a delivery: queued anew
        await asyncio.wait_for(sink.wait_idle(), 30)
        assert await sink.stop() == 0
    down = KafkaSink(f"127.0.0.1:{free_port()}", Topics(), metrics=metrics, retry_delay=0.1)
    await down.start()
    await down.coverage(tracker.record(1_789_600_500.0))
    assert await down.stop(flush_timeout=0.3) == 0  # a clean stop, though it waited


@pytest.mark.timeout(60)
async def test_the_newest_records_survive_and_are_delivered() -> None:
    port = free_port()
    metrics = Metrics.create(CollectorRegistry(), worker=False)
    # ``max_backlog`` is the old name of ``max_backlog_records``.
    sink = KafkaSink(f"127.0.0.1:{port}", Topics(), 10, 0.1, metrics=metrics)
    await sink.start()
    for i in range(25):
        await sink.raw(RawFrame("binance", "wss://x", 1.0, f"frame {i}"))
    assert sink.backlog == 10
    assert _value(metrics, "liqstress_publish_dropped_total", topic="liquidations.raw") == 15
    with EmbeddedBroker(port=port) as broker:
        await asyncio.wait_for(sink.wait_idle(), 30)
        raws = await asyncio.to_thread(read_topic, broker.bootstrap, "liquidations.raw", 10)
        assert sorted(orjson.loads(r)["frame"] for r in raws) == sorted(
            f"frame {i}" for i in range(15, 25))
        assert await sink.stop() == 0
    assert _value(metrics, "liqstress_publish_sent_total", topic="liquidations.raw") == 10


@pytest.mark.timeout(60)
async def test_pause_drains_what_came_before_and_holds_the_rest(broker: EmbeddedBroker) -> None:
    """What the embedded-broker supervisor does around a recycle: pause, wait for what was
    already accepted, mark the broker down, and resume once the new broker is ready."""
    metrics = Metrics.create(CollectorRegistry(), worker=False)
    sink = KafkaSink(broker.bootstrap, Topics(), metrics=metrics, retry_delay=0.1)
    await sink.start()
    try:
        await eventually(lambda: _up(metrics, sink) == 1, 20, what="sink up")
        for i in range(20):
            await sink.raw(RawFrame("binance", "wss://x", 1.0, f"before {i}"))
        sink.pause()
        await asyncio.wait_for(sink.wait_idle(), 10)  # accepted before the pause: drained
        assert sink.backlog == 0 and sink.sent == 20
        sink.mark_down()
        assert _up(metrics, sink) == 0
        for i in range(20):
            await sink.raw(RawFrame("binance", "wss://x", 1.0, f"held {i}"))
        idle = asyncio.ensure_future(sink.wait_idle())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(idle), 1.0)
        assert sink.backlog == 20 and sink.sent == 20
        sink.resume()
        await asyncio.wait_for(idle, 20)
        assert sink.backlog == 0 and _up(metrics, sink) == 1
        raws = await asyncio.to_thread(read_topic, broker.bootstrap, "liquidations.raw", 40)
        assert sorted(orjson.loads(r)["frame"] for r in raws) == sorted(
            [f"before {i}" for i in range(20)] + [f"held {i}" for i in range(20)])
    finally:
        assert await sink.stop() == 0


async def test_a_record_too_large_to_send_is_dropped_not_retried(broker: EmbeddedBroker) -> None:
    metrics = Metrics.create(CollectorRegistry(), worker=False)
    sink = KafkaSink(broker.bootstrap, Topics(), metrics=metrics, max_request_bytes=4096)
    await sink.start()
    await sink.raw(RawFrame("binance", "wss://x", 1.0, "x" * 10_000))
    await sink.raw(RawFrame("binance", "wss://x", 1.0, "small"))
    await asyncio.wait_for(sink.wait_idle(), 20)
    assert _value(metrics, "liqstress_publish_dropped_total", topic="liquidations.raw") == 1
    assert _value(metrics, "liqstress_publish_sent_total", topic="liquidations.raw") == 1
    assert await sink.stop() == 0
