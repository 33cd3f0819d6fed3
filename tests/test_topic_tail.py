"""The broadcast price read follows the topic across a broker that comes back refilled with
fewer records than it had: records published after the restart are not skipped."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from liqstress.agents.rebuild import TopicTail
from liqstress.infra.broker import EmbeddedBroker, free_port

from .helpers import eventually


async def produce(bootstrap: str, values: list[bytes]) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        for v in values:
            await p.send_and_wait("prices", value=v, partition=0)
    finally:
        await p.stop()


@pytest.mark.timeout(90)
async def test_tail_reads_again_after_a_refilled_broker() -> None:
    port = free_port()
    seen: list[bytes] = []

    def on_record(msg: Any) -> None:
        seen.append(msg.value)

    first = EmbeddedBroker(port=port).start()
    try:
        await produce(first.bootstrap, [b"old-%d" % i for i in range(30)])
        tail = asyncio.create_task(TopicTail(first.bootstrap, "prices", on_record).run())
        await eventually(lambda: len(seen) >= 30, 30, what="the first 30 records")
    finally:
        first.stop()
    # The broker comes back with only the last 5 records (a refill within retention), then
    # 10 new ones: offsets 5..14, below the 30 already read.
    second = EmbeddedBroker(port=port).start()
    try:
        await produce(second.bootstrap, [b"old-%d" % i for i in range(25, 30)])
        await produce(second.bootstrap, [b"new-%d" % i for i in range(10)])
        await eventually(lambda: all(b"new-%d" % i in seen for i in range(10)), 45,
                         what="the records published after the restart")
    finally:
        tail.cancel()
        await asyncio.gather(tail, return_exceptions=True)
        second.stop()
