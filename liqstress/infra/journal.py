"""A rolling, size-bounded journal of broker records on local disk.

The embedded broker (Tansu) keeps everything in memory and has no retention or delete, so
liqstress carries the history itself: the journaler (liqstress/infra/supervisor.py) appends what the
broker received here, and the broker is refilled from here when it starts, after it died and
when it is recycled to give its memory back. See docs/storage.md.

Layout: ``<root>/<topic>/<start_ms>.seg``, one segment per hour of wall time (or per
``segment_bytes``), append-only. Every process opens a new segment, so a record torn by a crash
stays at the end of a closed segment, where the reader stops. A record is::

    crc32 (u32) | timestamp_ms (i64) | partition (i32) | key_len (i32) | value_len (i32) | key | value

little-endian, lengths -1 for null; the CRC covers everything after itself. The topic is the
directory name. No Kafka or Faust imports: this module is plain files.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

HEADER = struct.Struct("<Iqiii")
#: Everything after the CRC field, which the CRC covers.
_CRC_START = 4
SUFFIX = ".seg"
DEFAULT_SEGMENT_SECONDS = 3600.0
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_BYTES = 2 * 1024 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class JournalRecord:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(frozen=True)
class Dropped:
    """A segment removed by ``prune``: ``reason`` is "retention" (normal) or "cap" (history
    lost before its retention because the journal reached ``max_bytes``)."""

    topic: str
    path: Path
    bytes: int
    reason: str


def encode(partition: int, key: bytes | None, value: bytes | None, timestamp_ms: int) -> bytes:
    k = key or b""
    v = value or b""
    body = HEADER.pack(0, timestamp_ms, partition, -1 if key is None else len(k),
                       -1 if value is None else len(v))[_CRC_START:] + k + v
    return struct.pack("<I", zlib.crc32(body)) + body


def read_segment(path: Path, topic: str) -> Iterator[JournalRecord]:
    """The records of one segment, in write order; stops at a torn or corrupt record."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # pruned meanwhile
        return
    pos, end = 0, len(data)
    unpack = HEADER.unpack_from
    hsize = HEADER.size
    while pos + hsize <= end:
        crc, ts, partition, klen, vlen = unpack(data, pos)
        kend = pos + hsize + max(klen, 0)
        vend = kend + max(vlen, 0)
        if klen < -1 or vlen < -1 or vend > end:
            log.warning("journal %s: torn record at byte %d (crash while writing); "
                        "%d bytes ignored", path, pos, end - pos)
            return
        if zlib.crc32(data[pos + _CRC_START:vend]) != crc:
            log.warning("journal %s: corrupt record at byte %d; %d bytes ignored",
                        path, pos, end - pos)
            return
        yield JournalRecord(topic, partition, None if klen < 0 else data[pos + hsize:kend],
                            None if vlen < 0 else data[kend:vend], ts)
        pos = vend


def first_timestamp_ms(path: Path) -> int | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(HEADER.size)
    except FileNotFoundError:
        return None
    if len(head) < HEADER.size:
        return None
    return int(HEADER.unpack(head)[1])


@dataclass
class _Open:
    path: Path
    fh: BinaryIO
    opened: float
    size: int = 0


@dataclass
class Journal:
    """Per-topic segment files under ``root``. ``retention_ms`` maps topic name → how long its
    records are kept (topics not in it are kept until the byte cap removes them)."""

    root: Path
    retention_ms: dict[str, int] = field(default_factory=dict)
    max_bytes: int = DEFAULT_MAX_BYTES
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    segment_bytes: int = DEFAULT_SEGMENT_BYTES
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, _Open] = {}
        #: Records appended by this process, per topic.
        self.appended: dict[str, int] = {}
        self._sizes: dict[Path, int] = {p: p.stat().st_size for p in self._all_segments()}

    # ---- writing -----------------------------------------------------------------------------
    def _dir(self, topic: str) -> Path:
        if not topic or "/" in topic or topic in (".", ".."):
            raise ValueError(f"not a journal topic name: {topic!r}")
        return self.root / topic

    def _segment(self, topic: str) -> _Open:
        seg = self._open.get(topic)
        now = self.clock()
        if seg is not None and (seg.size >= self.segment_bytes
                                or now - seg.opened >= self.segment_seconds
                                or int(now // self.segment_seconds)
                                != int(seg.opened // self.segment_seconds)):
            self._close(topic)
            seg = None
        if seg is None:
            d = self._dir(topic)
            d.mkdir(parents=True, exist_ok=True)
            start = int(now * 1000)
            path = d / f"{start:013d}{SUFFIX}"
            while path.exists():  # two segments opened within one millisecond
                start += 1
                path = d / f"{start:013d}{SUFFIX}"
            seg = self._open[topic] = _Open(path, path.open("ab"), now)
            self._sizes[path] = 0
        return seg

    def append(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
               timestamp_ms: int) -> None:
        self.append_many(topic, [(partition, key, value, timestamp_ms)])

    def append_many(self, topic: str,
                    records: Iterable[tuple[int, bytes | None, bytes | None, int]]) -> int:
        """Append (partition, key, value, timestamp_ms) records; buffered until ``flush``."""
        seg = self._segment(topic)
        n = 0
        for partition, key, value, ts in records:
            blob = encode(partition, key, value, ts)
            seg.fh.write(blob)
            seg.size += len(blob)
            n += 1
        self._sizes[seg.path] = seg.size
        self.appended[topic] = self.appended.get(topic, 0) + n
        return n

    def flush(self) -> None:
        """Hand buffered records to the OS: a crash of liqstress loses nothing written before
        (the journaler flushes after every batch it reads, i.e. within about a second)."""
        for seg in self._open.values():
            seg.fh.flush()

    def _close(self, topic: str) -> None:
        seg = self._open.pop(topic, None)
        if seg is not None:
            seg.fh.close()
            if seg.size == 0:
                seg.path.unlink(missing_ok=True)
                self._sizes.pop(seg.path, None)

    def close(self) -> None:
        for topic in list(self._open):
            self._close(topic)

    # ---- reading -----------------------------------------------------------------------------
    def topics(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def segments(self, topic: str) -> list[Path]:
        d = self.root / topic
        if not d.is_dir():
            return []
        return sorted(d.glob(f"*{SUFFIX}"))

    def _all_segments(self) -> list[Path]:
        return [p for t in self.topics() for p in self.segments(t)]

    def cutoff_ms(self, topic: str, now: float | None = None) -> int | None:
        ret = self.retention_ms.get(topic)
        if ret is None:
            return None
        return int((self.clock() if now is None else now) * 1000) - ret

    def replay(self, topic: str, since_ms: int | None = None,
               now: float | None = None) -> Iterator[JournalRecord]:
        """The topic's records in write order (per partition, the order the broker had them),
        skipping those older than the topic's retention (or ``since_ms`` if given)."""
        self.flush()
        cutoff = since_ms if since_ms is not None else self.cutoff_ms(topic, now)
        open_paths = {s.path for s in self._open.values()}
        for path in self.segments(topic):
            if cutoff is not None and path not in open_paths:
                # Written (closed) before the cutoff: every record in it is older, as records
                # are stamped when produced, before the journaler reads them.
                try:
                    if path.stat().st_mtime * 1000 < cutoff:
                        continue
                except FileNotFoundError:
                    continue
            for rec in read_segment(path, topic):
                if cutoff is None or rec.timestamp_ms >= cutoff:
                    yield rec

    # ---- size and pruning --------------------------------------------------------------------
    @property
    def bytes_total(self) -> int:
        return sum(self._sizes.values())

    def oldest_timestamp_ms(self) -> int | None:
        firsts = [ts for t in self.topics() if (segs := self.segments(t))
                  and (ts := first_timestamp_ms(segs[0])) is not None]
        return min(firsts) if firsts else None

    def prune(self, now: float | None = None) -> list[Dropped]:
        """Remove closed segments whose newest record is past the topic's retention, then the
        oldest closed segments while the journal is over ``max_bytes``."""
        now = self.clock() if now is None else now
        open_paths = {s.path for s in self._open.values()}
        dropped: list[Dropped] = []
        candidates: list[tuple[float, str, Path]] = []
        for topic in self.topics():
            ret = self.retention_ms.get(topic)
            for path in self.segments(topic):
                if path in open_paths:
                    continue
                try:
                    mtime = path.stat().st_mtime  # the time its newest record was written
                except FileNotFoundError:
                    continue
                if ret is not None and mtime * 1000 < now * 1000 - ret:
                    dropped.append(self._remove(topic, path, "retention"))
                else:
                    candidates.append((mtime, topic, path))
        total = self.bytes_total
        if total > self.max_bytes:
            for _, topic, path in sorted(candidates):
                if total <= self.max_bytes:
                    break
                d = self._remove(topic, path, "cap")
                total -= d.bytes
                dropped.append(d)
                log.warning("journal over its cap of %d bytes: dropped %s (%d bytes) before "
                            "its retention", self.max_bytes, path, d.bytes)
            if total > self.max_bytes:
                log.warning("journal still over its cap (%d > %d bytes): only open segments "
                            "left", total, self.max_bytes)
        return dropped

    def _remove(self, topic: str, path: Path, reason: str) -> Dropped:
        size = self._sizes.pop(path, None)
        if size is None:
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                size = 0
        path.unlink(missing_ok=True)
        return Dropped(topic, path, size, reason)

    def sync(self) -> None:
        """fsync the open segments (on stop: survive a power loss, not only a crash)."""
        for seg in self._open.values():
            seg.fh.flush()
            os.fsync(seg.fh.fileno())
