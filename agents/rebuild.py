"""Read a topic back from the beginning up to its fetch high watermark.

Window state is rebuilt from the ``liquidations`` topic itself instead of a Faust changelog:
Tansu's ListOffsets(latest) under-reports the end offset, so changelog recovery silently stops
short, and it never compacts. The high watermark in Fetch responses is right, so reading until
``position >= highwater`` (as the fetcher reports it) sees every record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


async def read_topic(bootstrap: str, topic: str, on_record: Callable[[Any], None],
                     timeout: float = 600.0) -> dict[int, int]:
    """Call ``on_record`` for every record of ``topic``; returns {partition: end offset}."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                group_id=None, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = None
        for _ in range(3):
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                break
            await consumer._client.force_metadata_update()  # noqa: SLF001 - fresh topic list
        if not partitions:
            return {}
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        remaining = set(tps)
        ends: dict[int, int] = {}

        async def drain() -> None:
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

        await asyncio.wait_for(drain(), timeout)
        return ends
    finally:
        await consumer.stop()


async def ensure_topics(bootstrap: str, names: list[str], partitions: int) -> list[str]:
    """Create the topics the worker consumes if they are missing; returns those created.

    Faust's partition assignor only assigns topics that exist when the group forms: with a
    source topic missing (no price feed has published yet), other topics' partitions were
    left unassigned until the next rebalance.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics([NewTopic(n, partitions, 1) for n in missing])
            except TopicAlreadyExistsError:
                pass  # another worker or a producer's auto-create won the race
        return missing
    finally:
        await admin.close()
