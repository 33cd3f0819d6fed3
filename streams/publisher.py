"""Publishing to Kafka. Thin on purpose: the collector hands over frames, events and
dead letters; this keeps them, in order, until the broker has acknowledged them."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import IO, Any, Protocol

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from liqstress.config import Topics
from liqstress.event import LiquidationEvent
from liqstress.prices import PriceTick
from liqstress.recording import RawFrame

log = logging.getLogger(__name__)


class Sink(Protocol):
    async def raw(self, frame: RawFrame) -> None: ...
    async def event(self, ev: LiquidationEvent) -> None: ...
    async def price(self, tick: PriceTick) -> None: ...
    async def deadletter(self, record: dict[str, Any]) -> None: ...


class RecordingSink:
    """``liqstress record``: every frame and REST body as a recording line, nothing else."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.lines = 0

    async def raw(self, frame: RawFrame) -> None:
        self.fh.write(frame.to_json() + b"\n")
        self.fh.flush()
        self.lines += 1

    async def event(self, ev: LiquidationEvent) -> None:
        return None

    async def price(self, tick: PriceTick) -> None:
        return None

    async def deadletter(self, record: dict[str, Any]) -> None:
        return None


class KafkaSink:
    """Queues records and sends them with retries. If the broker is down, records wait in
    memory (bounded by ``max_backlog``) instead of being dropped; ``flush`` waits for all."""

    def __init__(self, bootstrap: str, topics: Topics, max_backlog: int = 1_000_000,
                 retry_delay: float = 1.0) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.max_backlog = max_backlog
        self.retry_delay = retry_delay
        self._pending: deque[tuple[str, bytes, bytes]] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        #: (topic, partition, offset) of the last acknowledged record per topic.
        self.last_offsets: dict[tuple[str, int], int] = {}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kafka-sink")

    async def stop(self, flush_timeout: float = 10.0) -> None:
        try:
            await asyncio.wait_for(self.flush(), flush_timeout)
        except TimeoutError:
            log.error("stopping with %d unsent records (broker unreachable)", len(self._pending))
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._producer:
            await self._producer.stop()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        while self._pending or not self._idle.is_set():
            self._idle.clear()
            self._wakeup.set()
            await self._idle.wait()

    def _put(self, topic: str, key: str, value: bytes) -> None:
        if len(self._pending) >= self.max_backlog:
            # Losing the oldest raw frame beats growing without bound while the broker is down.
            dropped = self._pending.popleft()
            log.error("publish backlog full; dropped oldest record for %s", dropped[0])
        self._pending.append((topic, key.encode(), value))
        self._idle.clear()
        self._wakeup.set()

    async def raw(self, frame: RawFrame) -> None:
        self._put(self.topics.raw, frame.exchange, frame.to_json())

    async def event(self, ev: LiquidationEvent) -> None:
        self._put(self.topics.events, ev.key, ev.to_json())

    async def price(self, tick: PriceTick) -> None:
        self._put(self.topics.prices, tick.key, tick.to_json())

    async def deadletter(self, record: dict[str, Any]) -> None:
        self._put(self.topics.deadletter, str(record.get("exchange", "")), orjson.dumps(record))

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            # No idempotence: Tansu rejects aiokafka's InitProducerId. Duplicates from retries
            # are harmless because the worker dedupes by event id.
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                        linger_ms=5, request_timeout_ms=15000)
            try:
                await producer.start()
            except Exception:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _run(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                producer = await self._ensure_producer()
                batch = [self._pending[i] for i in range(min(len(self._pending), 5000))]
                futs = [await producer.send(t, value=v, key=k) for t, k, v in batch]
                results = await asyncio.gather(*futs, return_exceptions=True)
            except (KafkaError, OSError) as exc:
                log.warning("broker unavailable (%s); %d records waiting", exc, len(self._pending))
                await asyncio.sleep(self.retry_delay)
                continue
            done = 0
            for res in results:
                if isinstance(res, BaseException):
                    break
                self.last_offsets[(res.topic, res.partition)] = res.offset
                done += 1
            for _ in range(done):
                self._pending.popleft()
            self.sent += done
            if done < len(batch):
                log.warning("send failed (%s); retrying %d records", results[done],
                            len(self._pending))
                await asyncio.sleep(self.retry_delay)
