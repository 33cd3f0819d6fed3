"""Reading topics outside the consumer group: a partition back to its fetch high watermark (the
rebuild of an assigned partition), and a tail that follows every partition of a topic (the
broadcast price read, the aggregator's read of recent partials).

State is rebuilt from the ``liquidations`` topic itself instead of a Faust changelog: Tansu's
ListOffsets(latest) under-reports the end offset, so changelog recovery silently stops short,
and it never compacts. The high watermark in Fetch responses is right, so reading until
``position >= highwater`` (as the fetcher reports it) sees every record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from liqstress.infra.kafka_security import client_kwargs

log = logging.getLogger(__name__)

#: Tansu holds a fetch until the consumer's max wait even when data is there: a short wait
#: keeps an idle feed's latency low at the cost of more (cheap) fetch requests.
FETCH_WAIT_MS = 100


#: A rebuild reads a backlog: every fetch has data, so the held wait is pure loss there.
REBUILD_FETCH_WAIT_MS = 5


def _consumer(bootstrap: str, fetch_wait_ms: int = FETCH_WAIT_MS) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                            group_id=None, auto_offset_reset="earliest",
                            fetch_max_wait_ms=fetch_wait_ms,
                            max_partition_fetch_bytes=8 * 1024 * 1024, **client_kwargs())


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
    for _ in range(3):
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return sorted(parts)
        await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh topic list
    return []


async def _drain(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                 on_record: Callable[[Any], None],
                 on_end: Callable[[int, int], None] | None = None) -> dict[int, int]:
    """Read ``tps`` from their positions up to the fetch high watermark; ``on_end(partition,
    end)`` as each one gets there."""
    remaining = set(tps)
    ends: dict[int, int] = {}
    while remaining:
        batch = await consumer.getmany(*remaining, timeout_ms=200, max_records=10000)
        for msgs in batch.values():
            for msg in msgs:
                on_record(msg)
        for tp in list(remaining):
            hw = consumer.highwater(tp)
            if hw is None:
                continue  # no fetch response for this partition yet
            pos = await consumer.position(tp)
            if pos >= hw:
                ends[tp.partition] = pos
                remaining.discard(tp)
                if on_end is not None:
                    on_end(tp.partition, pos)
        await asyncio.sleep(0)  # a long rebuild must not starve the event loop
    return ends


async def read_topic(bootstrap: str, topic: str, on_record: Callable[[Any], None],
                     timeout: float = 600.0, partitions: list[int] | None = None,
                     since: float | None = None,
                     on_end: Callable[[int, int], None] | None = None) -> dict[int, int]:
    """Call ``on_record`` for every record of ``topic`` (only ``partitions`` if given; from
    ``since`` (epoch seconds) if given, else from the beginning); returns {partition: end}."""
    consumer = _consumer(bootstrap, REBUILD_FETCH_WAIT_MS)
    await consumer.start()
    try:
        parts = await _partitions(consumer, topic)
        if partitions is not None:
            parts = [p for p in parts if p in partitions]
        if not parts:
            return {}
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        if since is not None:
            await _seek_since(consumer, tps, since)
        return await asyncio.wait_for(_drain(consumer, tps, on_record, on_end), timeout)
    finally:
        await consumer.stop()


async def _seek_since(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                      since: float) -> None:
    """Best effort: a broker that answers wrongly (Tansu resolves times by storage write
    time) only makes the read longer or shorter; partials re-send full state periodically."""
    try:
        found = await consumer.offsets_for_times({tp: int(since * 1000) for tp in tps})
    except (KafkaError, ValueError, TypeError) as exc:
        log.info("offsets_for_times failed (%s); reading from the beginning", exc)
        return
    for tp, ot in found.items():
        if ot is not None:
            consumer.seek(tp, ot.offset)


class TopicTail:
    """Follow every partition of a topic from the beginning, for good: the broadcast read
    (each worker reads all prices). Survives broker restarts: a high watermark below what
    was already read means the broker came back refilled (fewer records than before), so the
    tail starts over from the beginning; a position past the end resets to the earliest
    offset anyway. What it re-reads is idempotent."""

    def __init__(self, bootstrap: str, topic: str,
                 on_record: Callable[[Any], None]) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.on_record = on_record

    async def run(self) -> None:
        while True:
            consumer = _consumer(self.bootstrap)
            try:
                await consumer.start()
                parts: list[int] = []
                while not parts:
                    parts = await _partitions(consumer, self.topic)
                    if not parts:
                        await asyncio.sleep(1.0)
                tps = [TopicPartition(self.topic, p) for p in parts]
                consumer.assign(tps)
                await consumer.seek_to_beginning(*tps)
                read_up_to: dict[TopicPartition, int] = {}
                while True:
                    batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
                    for tp, msgs in batch.items():
                        for msg in msgs:
                            self.on_record(msg)
                        if msgs:
                            read_up_to[tp] = msgs[-1].offset + 1
                    if any((hw := consumer.highwater(tp)) is not None and hw < read_up_to[tp]
                           for tp in read_up_to):
                        log.info("%s is shorter than what was read: the broker restarted; "
                                 "reading it again", self.topic)
                        break
                    if len(await _partitions(consumer, self.topic)) != len(parts):
                        break  # partitions added: re-assign
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker gone or restarting: start over
                # Repeats are folded by the CLI's rate-limiting log filter (liqstress/cli/__init__.py).
                log.warning("reading %s failed (%s); retrying", self.topic, exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()


async def commit_history_if_new(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """For a group that has never committed on ``topic`` (a first start, or a broker refilled
    from the journal), commit each partition's current end: the rebuild of an assigned
    partition reads everything before it anyway, and without this the group's consumer would
    re-deliver the whole history (a million records through Faust is over a minute) before
    the first live event. Only for partitions without a committed offset, and a commit from
    outside a generation is refused while the group has members, so it can never skip
    records someone is about to consume. ListOffsets may under-report on Tansu: that only
    leaves a few records to re-deliver. Returns what was committed."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False, **client_kwargs())
    await consumer.start()
    try:
        parts = await _partitions(consumer, topic)
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return {}
        consumer.assign(tps)
        fresh = [tp for tp in tps if await consumer.committed(tp) is None]
        if not fresh:
            return {}
        ends = await consumer.end_offsets(fresh)
        todo = {tp: off for tp, off in ends.items() if off > 0}
        if todo:
            await consumer.commit(todo)
        return {tp.partition: off for tp, off in todo.items()}
    except KafkaError as exc:
        log.info("not committing %s history for %s (%s): it will be re-delivered", topic,
                 group, exc)
        return {}
    finally:
        await consumer.stop()
