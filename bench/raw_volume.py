"""What each raw-frame policy publishes to ``liquidations.raw``, per venue, for recordings.

Every frame of the recordings goes through the venue session the live collector uses, and the
collector's own decision (``streams.collector.keeps_raw``) says whether the policy publishes
it. Bytes are those the Kafka sink would queue: the raw record's key (the exchange) and value
(``RawFrame.to_json()``), the measure of ``liqstress_publish_backlog_bytes``.

Not modelled: the live collector's price throttling (a price frame inside a connection's
``min_interval`` is dropped before the policy, under every policy).

Usage: ``python bench/raw_volume.py [recording.jsonl ...] [--json]`` (default: the replay
fixtures, tests/fixtures/*.jsonl).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liqstress.recording import RawFrame, RecordingError, read_recording  # noqa: E402
from liqstress.streams.collector import RAW_POLICIES, keeps_raw  # noqa: E402
from liqstress.streams.session import VenueSession  # noqa: E402
from liqstress.streams.venues import get_venue  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("*.jsonl"))


@dataclass
class Volume:
    frames: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RAW_POLICIES, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RAW_POLICIES, 0))
    #: Why the default policy kept a frame: event, deadletter, rest, ack.
    kept_for: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _reason(out: Any) -> str:
    if out.events:
        return "event"
    if out.deadletter is not None:
        return "deadletter"
    if out.frame.is_rest:
        return "rest"
    return "ack"


def measure(paths: list[Path]) -> dict[str, Volume]:
    """Per exchange, the frames and bytes each policy publishes."""
    volumes: dict[str, Volume] = defaultdict(Volume)
    sessions: dict[str, VenueSession] = {}
    for path in paths:
        with path.open("rb") as fh:
            for _lineno, item in read_recording(fh):
                if isinstance(item, RecordingError):
                    continue
                frame: RawFrame = item
                session = sessions.get(frame.exchange)
                if session is None:
                    session = sessions[frame.exchange] = VenueSession(get_venue(frame.exchange))
                out = session.process(frame)
                size = len(frame.exchange.encode()) + len(frame.to_json())
                vol = volumes[frame.exchange]
                for policy in RAW_POLICIES:
                    if keeps_raw(policy, out):
                        vol.frames[policy] += 1
                        vol.bytes[policy] += size
                if keeps_raw("liquidations", out):
                    vol.kept_for[_reason(out)] += 1
    return dict(sorted(volumes.items()))


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "-"


def format_table(volumes: dict[str, Volume]) -> str:
    head = (f"| {'venue':<15} | {'all: frames':>11} | {'all: bytes':>10} | "
            f"{'liquidations: frames':>20} | {'liquidations: bytes':>19} | {'bytes kept':>10} | "
            f"{'kept for (event/dl/rest/ack)':<28} |")
    rule = "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"
    rows = [head, rule]
    total = Volume()
    for ex, v in volumes.items():
        why = "/".join(str(v.kept_for.get(k, 0)) for k in ("event", "deadletter", "rest", "ack"))
        rows.append(f"| {ex:<15} | {v.frames['all']:>11} | {v.bytes['all']:>10,} | "
                    f"{v.frames['liquidations']:>20} | {v.bytes['liquidations']:>19,} | "
                    f"{_pct(v.bytes['liquidations'], v.bytes['all']):>10} | {why:<28} |")
        for p in RAW_POLICIES:
            total.frames[p] += v.frames[p]
            total.bytes[p] += v.bytes[p]
    rows.append(f"| {'total':<15} | {total.frames['all']:>11} | {total.bytes['all']:>10,} | "
                f"{total.frames['liquidations']:>20} | {total.bytes['liquidations']:>19,} | "
                f"{_pct(total.bytes['liquidations'], total.bytes['all']):>10} | {'':<28} |")
    return "\n".join(rows) + "\n\n`off` publishes nothing (0 frames, 0 bytes) for every venue."


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("recordings", nargs="*", type=Path, help="default: tests/fixtures/*.jsonl")
    ap.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = ap.parse_args(argv)
    volumes = measure(args.recordings or FIXTURES)
    if args.json:
        print(orjson.dumps({ex: {"frames": v.frames, "bytes": v.bytes, "kept_for": v.kept_for}
                            for ex, v in volumes.items()}).decode())
    else:
        print(format_table(volumes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
