"""The supervised embedded broker in-process (liqstress/infra/supervisor.py): refill from the journal,
the journaler, restart after a crash and the planned recycle, on the real embedded broker,
checked with an independent client (confluent-kafka)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from liqstress.config import Topics
from liqstress.event import make_event
from liqstress.infra.broker import EmbeddedBroker
from liqstress.infra.journal import Journal
from liqstress.infra.metrics import Metrics
from liqstress.infra.supervisor import BrokerSupervisor, Journaler, journaled_specs, refill
from liqstress.infra.topic_admin import ensure_topics
from liqstress.streams.publisher import KafkaSink
from liqstress.topics import Retention, topic_specs

from .helpers import eventually

Rec = tuple[int, bytes | None, bytes | None, int]


def read_all(bootstrap: str, topic: str, partitions: int = 4,
             timeout: float = 20) -> dict[int, list[Rec]]:
    """Every record of ``topic`` per partition: (offset, key, value, timestamp ms)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"verify-{time.time()}",
                  "enable.auto.commit": False})
    out: dict[int, list[Rec]] = {p: [] for p in range(partitions)}
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        idle = 0
        while time.monotonic() < deadline and idle < 3:
            msg = c.poll(0.3)
            if msg is None:
                idle += 1
                continue
            idle = 0
            if msg.error():
                continue
            out[msg.partition()].append((msg.offset(), msg.key(), msg.value(),
                                         msg.timestamp()[1]))
        return out
    finally:
        c.close()


def metric(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


async def test_refill_restores_topic_partition_key_and_timestamp_within_retention(
        tmp_path: Path, broker: EmbeddedBroker) -> None:
    topics = Topics()
    retention = Retention.parse("prices=1h")
    specs = journaled_specs(topics, 4, retention)
    j = Journal(tmp_path, retention_ms={s.name: s.retention_ms for s in specs})
    now_ms = int(time.time() * 1000)
    want: dict[int, list[tuple[bytes | None, bytes | None, int]]] = {p: [] for p in range(4)}
    for i in range(1000):
        p, key, value, ts = i % 4, f"k{i % 7}".encode(), f"event {i}".encode(), now_ms - 1000 + i
        j.append(topics.events, p, key, value, ts)
        want[p].append((key, value, ts))
    j.append(topics.events, 1, None, b"no key", now_ms)
    want[1].append((None, b"no key", now_ms))
    j.append(topics.prices, 0, b"BTC", b"too old", now_ms - 2 * 3_600_000)
    j.append(topics.prices, 0, b"BTC", b"fresh", now_ms)

    await ensure_topics(broker.bootstrap, topic_specs(topics, 4, retention))
    res = await refill(broker.bootstrap, j, specs)
    assert res.records == 1002
    assert res.ends == {**{(topics.events, p): len(want[p]) for p in range(4)},
                        (topics.prices, 0): 1}
    got = read_all(broker.bootstrap, topics.events)
    assert {p: [(k, v, ts) for _, k, v, ts in recs] for p, recs in got.items()} == want
    assert [v for _, _, v, _ in read_all(broker.bootstrap, topics.prices)[0]] == [b"fresh"]


async def test_journaler_starts_at_the_refilled_end(tmp_path: Path,
                                                    broker: EmbeddedBroker) -> None:
    topics = Topics()
    specs = journaled_specs(topics, 4, None)
    j = Journal(tmp_path)
    now_ms = int(time.time() * 1000)
    for i in range(40):
        j.append(topics.events, i % 4, b"k", f"old {i}".encode(), now_ms)
    await ensure_topics(broker.bootstrap, topic_specs(topics, 4))
    res = await refill(broker.bootstrap, j, specs)
    metrics = Metrics.create(CollectorRegistry())
    journaler = Journaler(broker.bootstrap, j, specs, metrics)
    await journaler.start(res.ends)
    try:
        sink = KafkaSink(broker.bootstrap, topics)
        await sink.start()
        for i in range(10):
            await sink.event(make_event(
                exchange="binance", symbol="BTCUSDT", base="BTC", quote="USDT", market="linear",
                side="long", price=1.0, qty=1.0, notional_usd=float(i), ts=time.time() + i,
                recv_ts=time.time(), sampled=False))
        assert await sink.stop() == 0
        targets = {tp: off for tp, off in sink.last_offsets.items()}
        assert await journaler.wait_caught_up(targets, 10)
    finally:
        await journaler.stop()
    values = [r.value for r in j.replay(topics.events)]
    assert len(values) == 50  # 40 refilled, journaled once; 10 new
    assert sum(1 for v in values if v and v.startswith(b"old ")) == 40
    assert metric(metrics, "liqstress_journal_records_total", topic=topics.events) == 10


def events(n: int, start: int = 0) -> list:
    now = time.time()
    return [make_event(exchange="bybit", symbol="ETHUSDT", base="ETH", quote="USDT",
                       market="linear", side="short", price=3000.0, qty=1.0,
                       notional_usd=3000.0 + i, ts=now - i * 1e-3, recv_ts=now, sampled=False)
            for i in range(start, start + n)]


@pytest.mark.timeout(90)
async def test_killed_broker_is_restarted_on_the_same_port_and_refilled(tmp_path: Path) -> None:
    topics = Topics()
    metrics = Metrics.create(CollectorRegistry())
    sup = BrokerSupervisor(topics, data_dir=tmp_path, metrics=metrics, check_interval=0.2)
    calls: list[str] = []
    sup.on_down(lambda: calls.append("down"))
    sup.on_up(lambda: calls.append("up"))
    await sup.start()
    try:
        assert metric(metrics, "liqstress_broker_up") == 1
        port = sup.broker.port
        sink = KafkaSink(sup.bootstrap, topics, metrics=metrics, retry_delay=0.2)
        sup.sink = sink
        sup.on_down(sink.mark_down)
        await sink.start()
        first = events(100)
        for ev in first:
            await sink.event(ev)
        await asyncio.wait_for(sink.flush(), 20)
        await eventually(lambda: sum(sup.journaler.positions.values()) >= 100, 10,
                         what="journaled")
        old_pid = sup.broker.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        await eventually(lambda: "down" in calls, 5, interval=0.05, what="down callback")
        await eventually(lambda: calls[-1:] == ["up"], 30, what="up callback")
        assert calls == ["down", "up"]
        assert sup.broker.port == port and sup.broker.pid != old_pid
        assert metric(metrics, "liqstress_broker_up") == 1
        assert metric(metrics, "liqstress_broker_restarts_total", reason="crash") == 1
        assert metric(metrics, "liqstress_broker_refill_records") >= 100
        second = events(50, start=100)
        for ev in second:
            await sink.event(ev)
        await asyncio.wait_for(sink.flush(), 30)
        await sink.stop()
        got = read_all(sup.bootstrap, topics.events)
        ids = [orjson.loads(v)["id"] for recs in got.values() for _, _, v, _ in recs]
        assert set(ids) == {ev.id for ev in first + second}
        await eventually(lambda: sum(1 for _ in sup.journal.replay(topics.events))
                         == len(ids), 10, what="journal = broker")
    finally:
        await sup.stop()
    assert metric(metrics, "liqstress_broker_up") == 0


@pytest.mark.timeout(90)
async def test_recycle_pauses_the_sink_and_loses_nothing(tmp_path: Path) -> None:
    topics = Topics()
    metrics = Metrics.create(CollectorRegistry())
    # Over the threshold from the start: a recycle every 1.5 s while records flow.
    sup = BrokerSupervisor(topics, data_dir=tmp_path, metrics=metrics, check_interval=0.2,
                           recycle_bytes=1, recycle_min_interval=1.5)
    await sup.start()
    try:
        sink = KafkaSink(sup.bootstrap, topics, metrics=metrics, retry_delay=0.2)
        sup.sink = sink
        sup.on_down(sink.mark_down)
        await sink.start()
        sent = []
        deadline = time.monotonic() + 40
        i = 0
        # Records flow for at least 3 s and through at least two recycles.
        min_end = time.monotonic() + 3
        while time.monotonic() < min_end or (sup.restarts["recycle"] < 2
                                             and time.monotonic() < deadline):
            batch = events(20, start=i)
            i += 20
            for ev in batch:
                await sink.event(ev)
            sent += batch
            await asyncio.sleep(0.02)
        await asyncio.wait_for(sink.flush(), 30)
        assert sup.restarts["recycle"] >= 2
        await eventually(lambda: sup.up, 20, what="up after the last recycle")
        await asyncio.wait_for(sink.flush(), 30)
        await sink.stop()
        got = read_all(sup.bootstrap, topics.events)
        ids = [orjson.loads(v)["id"] for recs in got.values() for _, _, v, _ in recs]
        assert set(ids) == {ev.id for ev in sent}
        assert metric(metrics, "liqstress_broker_restarts_total", reason="recycle") >= 2
        assert metric(metrics, "liqstress_broker_restarts_total", reason="crash") == 0
    finally:
        await sup.stop()


async def test_a_data_dir_is_used_by_one_process_at_a_time(tmp_path: Path) -> None:
    first = BrokerSupervisor(Topics(), data_dir=tmp_path)
    from liqstress.infra.supervisor import DataDirLocked
    with pytest.raises(DataDirLocked, match="in use by another liqstress process"):
        BrokerSupervisor(Topics(), data_dir=tmp_path)
    assert first.journal is not None
    await first.stop()
    await BrokerSupervisor(Topics(), data_dir=tmp_path).stop()  # free again


def test_repeated_warnings_are_rate_limited() -> None:
    import logging

    from liqstress.cli import RateLimitFilter

    f = RateLimitFilter(interval=0.2)

    def rec(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("aiokafka", level, __file__, 1, msg, ("x",), None)

    assert f.filter(rec("Unable connect to node %s"))
    assert not any(f.filter(rec("Unable connect to node %s")) for _ in range(100))
    assert f.filter(rec("another message %s"))  # per message template
    assert f.filter(rec("Unable connect to node %s", logging.INFO))  # info passes
    time.sleep(0.25)
    again = rec("Unable connect to node %s")
    assert f.filter(again)
    assert again.getMessage() == "Unable connect to node x (100 similar suppressed)"
