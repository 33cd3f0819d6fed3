"""Hostile input: mutated venue frames never crash the parse path and never become events that
cannot be true.

Every venue's recorded frames (``tests/fixtures/<venue>.jsonl``) are mutated deterministically
(``random.Random(seed)``): JSON-aware mutations (values replaced by booleans, nulls, huge, tiny,
negative, NaN-ish, padded and exponent strings, nested junk; keys dropped; types changed; arrays
duplicated; numbers scaled by powers of ten) and byte-level ones (truncation, flipped bytes,
invalid UTF-8, gzip bombs). ``FRAMES_PER_VENUE`` of them per venue go through
:class:`VenueSession` (after the fixture's REST bodies), a smaller sample through
``liqstress normalize`` in a subprocess whose own peak RSS is read by a small launcher.

``python -m tests.test_fuzz`` prints the per-venue table (frames, events, dead letters by
reason, exceptions) without asserting.
"""

from __future__ import annotations

import collections
import copy
import gzip
import math
import os
import random
import resource
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from liqstress.event import implausible
from liqstress.recording import RawFrame, read_recording
from liqstress.streams.session import Outcome, VenueSession
from liqstress.streams.venues import all_venue_ids, get_venue

FIXTURES = Path(__file__).parent / "fixtures"
FRAMES_PER_VENUE = 10_000
#: Mutated frames per venue in the ``liqstress normalize`` subprocess.
CLI_FRAMES_PER_VENUE = 300
SEED = 20_260_917
#: Dead-letter reasons that mean a parser bug, never an answer to hostile input.
BUG_REASONS = {"parser_exception", "rest_parse_exception"}

# ---- hostile values ------------------------------------------------------------------------------
HOSTILE: list[Any] = [
    True, False, None, 0, -1, -0.0, 1, 1e308, -1e308, 1e-308, 5e-324, 1e305, 2**63, 2**64 + 1,
    10**30, -(10**30), 0.001, "", " ", " 5 ", "5 ", "\t7\n", "1e3", "1E3", "1e305", "-1e308",
    "1e-320", "NaN", "nan", "-nan", "inf", "-inf", "Infinity", "-Infinity", "0x10", "1_000",
    "\u0661\u0662\u0663", "+5", "-5", "5.", ".5", "0", "-0", "00012", "true", "null",
    "99999999999999999999999999", "1" * 400, [], {}, [1, 2], {"a": 1}, [[[]]], "a" * 300,
    "Buy", "Sell", "long", "short", "\u0000", "\ud7ff", "BTCUSDT", "\u00e9t\u00e9",
]


def _scale(value: Any, rng: random.Random) -> Any:
    """A number (or numeric string) scaled by a power of ten: wrong units, absurd sizes."""
    factor = 10.0 ** rng.choice([-9, -6, -3, -1, 1, 3, 6, 9, 12, 15, 200, 300])
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        out = value * factor
        return int(out) if isinstance(value, int) and abs(out) < 2**62 else out
    try:
        return repr(float(value) * factor)
    except (TypeError, ValueError):
        return value


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a JSON tree (object keys and array indexes)."""
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


def _hostile(rng: random.Random) -> Any:
    """A fresh copy: later mutations change values in place, which must never reach HOSTILE
    itself (it would drift between frames and could become cyclic)."""
    return copy.deepcopy(rng.choice(HOSTILE))


def _mutate_json(doc: Any, rng: random.Random) -> Any:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        paths = _paths(doc)
        path = rng.choice(paths)
        if not path:
            if rng.random() < 0.5:
                return _hostile(rng)
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        val = parent[key]
        op = rng.random()
        if op < 0.40:
            parent[key] = _hostile(rng)
        elif op < 0.60:
            parent[key] = _scale(val, rng)
        elif op < 0.70:  # type swap: number <-> string
            if isinstance(val, str):
                try:
                    parent[key] = orjson.loads(val)
                except orjson.JSONDecodeError:
                    parent[key] = len(val)
            elif isinstance(val, int | float):
                parent[key] = rng.choice((str(val), f" {val}", f"{float(val):e}"))
            else:
                parent[key] = str(val)[:50]
        elif op < 0.82:  # drop the key / element
            del parent[key]
        elif op < 0.90:  # duplicate an array (or wrap the value in one)
            parent[key] = val * rng.choice((2, 50)) if isinstance(val, list) else [val, val]
        else:  # nested junk
            parent[key] = {"x": [val, {"y": _hostile(rng)}]}
    return doc


def _gzip_bomb(size: int) -> bytes:
    """A gzip member of ``size`` zero bytes (a multiple of 1 MiB), built from one full-flushed
    deflate block repeated, so a 1 GiB bomb costs milliseconds to make, ~1 MB to hold."""
    chunk = 1 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(b"\0" * chunk) + comp.flush(zlib.Z_FULL_FLUSH)
    tail = comp.flush(zlib.Z_FINISH)
    crc = 0
    zeros = b"\0" * chunk
    for _ in range(size // chunk):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    trailer = crc.to_bytes(4, "little") + (size & 0xFFFFFFFF).to_bytes(4, "little")
    return header + block * (size // chunk) + tail + trailer


@dataclass
class Corpus:
    venue: str
    rest: list[RawFrame]
    ws: list[RawFrame]
    gzip_venue: bool
    #: Per ws frame: its text and parsed JSON (None when not JSON), computed once.
    texts: list[str] = field(default_factory=list)
    docs: list[bytes | None] = field(default_factory=list)


def load_corpus(venue: str) -> Corpus:
    with (FIXTURES / f"{venue}.jsonl").open("rb") as fh:
        frames = [f for _, f in read_recording(fh) if isinstance(f, RawFrame)]
    spec = get_venue(venue)
    c = Corpus(venue, [f for f in frames if f.is_rest], [f for f in frames if not f.is_rest],
               spec.gzip)
    for f in c.ws:
        data = f.data
        if isinstance(data, bytes):
            data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
            data = data.decode()
        c.texts.append(data)
        try:
            orjson.loads(data)
            c.docs.append(data.encode())
        except orjson.JSONDecodeError:
            c.docs.append(None)
    return c


_BOMB_CACHE: dict[int, bytes] = {}


def bomb(size: int = 1 << 30) -> bytes:
    if size not in _BOMB_CACHE:
        _BOMB_CACHE[size] = _gzip_bomb(size)
    return _BOMB_CACHE[size]


def _long_string_gzip() -> bytes:
    """Valid gzip of a valid JSON frame just above the inflation cap (9 MiB)."""
    if -1 not in _BOMB_CACHE:
        _BOMB_CACHE[-1] = gzip.compress(b'{"a":"' + b"A" * (9 << 20) + b'"}', 1, mtime=0)
    return _BOMB_CACHE[-1]


def mutate(c: Corpus, rng: random.Random, with_bombs: bool = True) -> RawFrame:
    """One hostile frame from the corpus: mostly a JSON-aware mutation of a real frame, else a
    byte-level one; REST bodies are mutated too (1 in 12)."""
    if c.rest and rng.random() < 1 / 12:
        base = rng.choice(c.rest)
        body = base.data if isinstance(base.data, str) else base.data.decode()
        r = rng.random()
        if r < 0.6:
            doc = orjson.loads(body)
            try:
                new: str | bytes = orjson.dumps(_mutate_json(doc, rng)).decode()
            except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits
                new = body
        elif r < 0.8:
            new = body.encode()[: rng.randrange(len(body) + 1)] + rng.choice(
                (b"", b"\xff", b"\xc3\x28", b"\xed\xa0\x80"))
        else:
            raw = bytearray(body.encode())
            for _ in range(rng.randint(1, 8)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            new = bytes(raw)
        return RawFrame(base.exchange, base.source, base.recv_ts, new)
    i = rng.randrange(len(c.ws))
    base, text, doc = c.ws[i], c.texts[i], c.docs[i]
    r = rng.random()
    out: str | bytes
    if doc is not None and r < 0.72:
        mutated = _mutate_json(orjson.loads(doc), rng)
        try:
            out = orjson.dumps(mutated).decode()
        except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits
            out = text
        if rng.random() < 0.05:  # NaN/Infinity literals, which only lenient parsers accept
            out = out.replace('"', "", 2) if rng.random() < 0.5 else out.replace(
                "1", rng.choice(("NaN", "Infinity", "-Infinity")), 1)
    elif r < 0.80:
        out = text[: rng.randrange(len(text) + 1)]
    elif r < 0.88:
        raw = bytearray(text.encode())
        for _ in range(rng.randint(1, 6)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        out = bytes(raw)
    elif r < 0.93:
        enc = text.encode()
        pos = rng.randrange(len(enc) + 1)
        out = enc[:pos] + rng.choice((b"\xff", b"\xfe\xfe", b"\xc3\x28", b"\xed\xa0\x80",
                                      b"\xf4\x90\x80\x80")) + enc[pos:]
    elif r < 0.998 or not with_bombs:
        # a gzip frame that is truncated, has a flipped byte, or trailing garbage
        z = bytearray(gzip.compress(text.encode(), mtime=0))
        k = rng.random()
        if k < 0.4:
            out = bytes(z[: rng.randrange(2, len(z))])
        elif k < 0.8:
            z[rng.randrange(10, len(z))] ^= 1 << rng.randrange(8)
            out = bytes(z)
        else:
            out = bytes(z) + rng.choice((b"junk", b"\x1f\x8b", bytes(z)))
    else:
        out = bomb() if rng.random() < 0.5 else _long_string_gzip()
    if c.gzip_venue or (isinstance(out, str) and rng.random() < 0.02):
        if isinstance(out, str) or out[:2] != b"\x1f\x8b":
            out = gzip.compress(out.encode() if isinstance(out, str) else out, mtime=0)
    return RawFrame(base.exchange, base.source, base.recv_ts, out)


# ---- checking --------------------------------------------------------------------------------
def event_problems(out: Outcome) -> list[str]:
    problems = []
    for e in out.events:
        err = implausible(e.ts, e.recv_ts, e.notional_usd)
        if err is not None:
            problems.append(f"implausible event {e}: {err}")
        if not (isinstance(e.price, float) and math.isfinite(e.price) and e.price > 0):
            problems.append(f"bad price {e}")
        for name, val in (("qty", e.qty), ("notional_usd", e.notional_usd)):
            if val is not None and not (isinstance(val, float) and math.isfinite(val)
                                        and val >= 0):
                problems.append(f"bad {name} {e}")
        if e.side not in ("long", "short"):
            problems.append(f"bad side {e}")
    for p in out.prices:
        if not (math.isfinite(p.price) and p.price > 0 and math.isfinite(p.ts)):
            problems.append(f"bad price tick {p}")
    return problems


@dataclass
class Stats:
    frames: int = 0
    frames_with_events: int = 0
    events: int = 0
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    exceptions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def row(self, venue: str) -> str:
        return (f"{venue:15} frames={self.frames} events={self.events} "
                f"frames_with_events={self.frames_with_events / max(self.frames, 1):.1%} "
                f"exceptions={len(self.exceptions)} problems={len(self.problems)} "
                f"deadletters={dict(sorted(self.reasons.items()))}")


def fuzz_venue(venue: str, n: int = FRAMES_PER_VENUE, seed: int = SEED,
               with_bombs: bool = True) -> Stats:
    rng = random.Random(f"{seed}:{venue}")
    c = load_corpus(venue)
    spec = get_venue(venue)
    # Each mutated frame is parsed on its own: a polled venue's session would otherwise drop
    # every event id it already gave from the same source (its overlap dedupe), and the
    # thousands of mutations of one recorded body would mostly come out as duplicates.
    session = VenueSession(spec, poll_dedupe=False)
    for f in c.rest:
        assert session.process(f).deadletter is None, f"{venue}: fixture REST body refused"
    scratch = VenueSession(spec)  # mutated REST bodies go here, not into the main metadata
    st = Stats()
    for _ in range(n):
        frame = mutate(c, rng, with_bombs)
        target = scratch if frame.is_rest else session
        outs = []
        try:
            outs.append(target.process(frame))
            if frame.is_rest:  # what the metadata it left does to a real frame
                outs.append(scratch.process(rng.choice(c.ws)))
        except Exception as exc:  # noqa: BLE001 - the point of the test
            st.exceptions.append(f"{type(exc).__name__}: {exc}"[:300])
            continue
        st.frames += 1
        for out in outs:
            if out.deadletter is not None:
                st.reasons[out.deadletter["reason"]] += 1
                if out.deadletter["reason"] in BUG_REASONS:
                    st.problems.append(f"{out.deadletter['reason']}: {out.deadletter['detail']}"
                                       f" <- {frame.data[:300]!r}")
            st.problems.extend(event_problems(out))
        if outs[0].events:
            st.frames_with_events += 1
            st.events += len(outs[0].events)
    return st


VENUES = all_venue_ids()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("venue", VENUES)
def test_mutated_frames_never_crash_nor_make_implausible_events(venue: str) -> None:
    st = fuzz_venue(venue)
    print(st.row(venue))
    assert st.exceptions == []
    assert st.problems[:5] == []
    assert st.frames == FRAMES_PER_VENUE
    # Most mutations break a frame; some (an unread key, a scaled but plausible number) do
    # not. Neither all refused (a parser refusing everything) nor most accepted.
    assert 0.01 < st.frames_with_events / st.frames < 0.8
    assert set(st.reasons) - {"implausible_time", "implausible_notional"}, st.reasons


# ---- through `liqstress normalize` ------------------------------------------------------------
def _cli_recording(path: Path) -> int:
    lines: list[bytes] = []
    for venue in VENUES:
        rng = random.Random(f"{SEED}:cli:{venue}")
        c = load_corpus(venue)
        lines.extend(f.to_json() for f in c.rest)
        lines.extend(mutate(c, rng, with_bombs=False).to_json()
                     for _ in range(CLI_FRAMES_PER_VENUE))
        # Bombs: a 1 GiB gzip frame, for a gzip venue and (gzip magic) for any other.
        lines.append(RawFrame(venue, c.ws[0].source, c.ws[0].recv_ts, bomb()).to_json())
        # A non-UTF-8 REST body must be a dead letter, not a traceback.
        if c.rest:
            lines.append(RawFrame(venue, c.rest[0].source, c.rest[0].recv_ts,
                                  b'{"\xff\xfe": 1}').to_json())
            lines.extend(f.to_json() for f in c.rest)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines)


_PEAK_RSS_LAUNCHER = """
import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    fh.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(rc)
"""


@pytest.mark.timeout(120)
def test_normalize_survives_mutated_recordings(tmp_path: Path) -> None:
    rec = tmp_path / "mutated.jsonl"
    n = _cli_recording(rec)
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQSTRESS_")}
    rss_path = tmp_path / "maxrss"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        # Linux keeps a process's peak RSS across fork and exec: a child forked from this
        # (large) pytest process would report pytest's size. A small launcher runs normalize
        # and reports the peak of its own child only.
        proc = subprocess.run([sys.executable, "-c", _PEAK_RSS_LAUNCHER, str(rss_path),
                               sys.executable, "-m", "liqstress", "normalize", str(rec)],
                              stdout=out, stderr=err, env=env, timeout=110)
    maxrss_kib = int(rss_path.read_text())
    stderr = err_path.read_text(errors="replace")
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    assert "parser_exception" not in stderr and "rest_parse_exception" not in stderr
    assert stderr.count("too_large") == len(VENUES)
    assert stderr.count("bad_utf8") >= sum(1 for v in VENUES if load_corpus(v).rest)
    rows = out_path.read_bytes().splitlines()
    assert rows, "no event survived at all"
    from liqstress.event import event_from_json

    for row in rows:
        e = event_from_json(row)
        assert implausible(e.ts, e.recv_ts, e.notional_usd) is None, row
    print(f"normalize: {n} lines, {len(rows)} events, max RSS {maxrss_kib // 1024} MiB")
    # 12 bombs of 1 GiB each: inflating any one of them would show as ~1 GiB.
    assert maxrss_kib < 400 * 1024, maxrss_kib


def test_gzip_bomb_in_process_is_too_large_and_bounded() -> None:
    data = bomb()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.monotonic()
    for venue in ("htx", "binance"):
        out = VenueSession(get_venue(venue)).process(RawFrame(venue, "wss://x", 1.7e9, data))
        assert out.deadletter is not None and out.deadletter["reason"] == "too_large"
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert (after - before) < 200 * 1024  # KiB
    assert time.monotonic() - t0 < 5


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else FRAMES_PER_VENUE
    total = time.monotonic()
    for v in VENUES:
        t0 = time.monotonic()
        s = fuzz_venue(v, n, with_bombs=not os.environ.get("FUZZ_NO_BOMBS"))
        print(s.row(v), f"{time.monotonic() - t0:.1f}s", flush=True)
        for p in (s.exceptions[:3] + s.problems[:6]):
            print("   ", p[:400])
    print(f"total {time.monotonic() - total:.1f}s")
