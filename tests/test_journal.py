"""The on-disk journal the embedded broker is refilled from (liqstress/infra/journal.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from liqstress.infra.journal import HEADER, Journal, read_segment

HOUR = 3600.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_append_and_replay_keep_order_and_fields(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    now_ms = int(time.time() * 1000)
    for i in range(100):
        j.append("liquidations", i % 4, f"k{i}".encode(), f"v{i}".encode(), now_ms + i)
    j.append("liquidations", 2, None, None, now_ms + 100)  # tombstone, no key
    j.append("prices", 0, b"BTC", b"1", now_ms)
    got = list(j.replay("liquidations"))
    assert [(r.partition, r.key, r.value, r.timestamp_ms) for r in got[:100]] == [
        (i % 4, f"k{i}".encode(), f"v{i}".encode(), now_ms + i) for i in range(100)]
    assert got[100].key is None and got[100].value is None and got[100].partition == 2
    assert [r.value for r in j.replay("prices")] == [b"1"]
    assert j.topics() == ["liquidations", "prices"]
    assert j.appended == {"liquidations": 101, "prices": 1}
    j.close()
    # A second process sees the same records, and appends to a new segment after them.
    j2 = Journal(tmp_path)
    j2.append("liquidations", 0, b"k", b"after", now_ms + 200)
    vals = [r.value for r in j2.replay("liquidations")]
    assert len(vals) == 102 and vals[-1] == b"after"
    assert len(j2.segments("liquidations")) == 2
    assert j2.oldest_timestamp_ms() == now_ms


def test_segments_roll_by_hour_and_by_size(tmp_path: Path) -> None:
    clock = Clock(1_700_000_000.0 - 1_700_000_000.0 % HOUR + 10)
    j = Journal(tmp_path, clock=clock, segment_bytes=1000)
    j.append("t", 0, b"k", b"x", int(clock.t * 1000))
    clock.t += HOUR  # next wall-clock hour
    j.append("t", 0, b"k", b"y", int(clock.t * 1000))
    assert len(j.segments("t")) == 2
    for i in range(40):  # 40 x ~50 bytes: over 1000 bytes per segment
        j.append("t", 0, b"k", b"z" * 20, int(clock.t * 1000) + i)
    assert len(j.segments("t")) >= 3
    assert all(p.stat().st_size <= 1000 + 100 for p in j.segments("t"))
    assert len(list(j.replay("t"))) == 42


def test_replay_skips_records_older_than_retention(tmp_path: Path) -> None:
    now = time.time()
    j = Journal(tmp_path, retention_ms={"prices": 3_600_000})
    ts = [int((now - h * HOUR) * 1000) for h in (3, 2, 0.5, 0)]
    for t in ts:
        j.append("prices", 0, b"BTC", str(t).encode(), t)
        j.append("other", 0, None, b"x", t)
    assert [r.timestamp_ms for r in j.replay("prices")] == ts[2:]
    assert len(list(j.replay("other"))) == 4  # no retention: everything
    assert len(list(j.replay("prices", since_ms=0))) == 4


def test_prune_by_retention_removes_only_expired_closed_segments(tmp_path: Path) -> None:
    now = time.time()
    j = Journal(tmp_path, retention_ms={"a": 3_600_000, "b": 30 * 3_600_000})
    for topic in ("a", "b"):
        j.append(topic, 0, None, b"old", int((now - 2 * HOUR) * 1000))
    j.close()
    for topic in ("a", "b"):  # written two hours ago
        seg = j.segments(topic)[0]
        os.utime(seg, (now - 2 * HOUR, now - 2 * HOUR))
    j = Journal(tmp_path, retention_ms={"a": 3_600_000, "b": 30 * 3_600_000})
    j.append("a", 0, None, b"new", int(now * 1000))
    dropped = j.prune(now)
    assert [(d.topic, d.reason) for d in dropped] == [("a", "retention")]
    assert [r.value for r in j.replay("a", since_ms=0)] == [b"new"]
    assert [r.value for r in j.replay("b", since_ms=0)] == [b"old"]


def test_byte_cap_drops_oldest_segments_first(tmp_path: Path) -> None:
    clock = Clock(time.time())
    j = Journal(tmp_path, max_bytes=3000, segment_bytes=1000, clock=clock)
    for i in range(100):  # ~5 KB in ~1 KB segments, oldest first
        j.append("raw", 0, None, b"r" * 30 + str(i).encode(), int(clock.t * 1000) + i)
    segs = j.segments("raw")
    for n, seg in enumerate(segs):  # mtimes in write order
        os.utime(seg, (clock.t - 1000 + n, clock.t - 1000 + n))
    before = j.bytes_total
    assert before > 3000
    dropped = j.prune()
    assert dropped and all(d.reason == "cap" for d in dropped)
    assert [d.path for d in dropped] == segs[:len(dropped)]
    assert j.bytes_total <= 3000
    assert before - j.bytes_total == sum(d.bytes for d in dropped)
    vals = [r.value for r in j.replay("raw")]
    assert vals[-1] == b"r" * 30 + b"99"  # the newest history is what is kept
    assert len(vals) < 100


def test_torn_tail_is_ignored(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    for i in range(3):
        j.append("t", 0, b"k", f"v{i}".encode(), 1000 + i)
    j.close()
    seg = j.segments("t")[0]
    data = seg.read_bytes()
    seg.write_bytes(data[:-2])  # a crash in the middle of the last record
    assert [r.value for r in read_segment(seg, "t")] == [b"v0", b"v1"]
    # A flipped byte in a value fails the CRC: the reader stops there.
    bad = bytearray(data)
    bad[HEADER.size + 1 + 1] ^= 0xFF  # first record's value
    seg.write_bytes(bytes(bad))
    assert list(read_segment(seg, "t")) == []
