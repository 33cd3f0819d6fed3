"""The parse benchmark runs end to end on a tiny repetition count and prints a line per venue
(no timing assertions: the targets are ratios that ``bench/parse_bench.py --check`` enforces)."""

from __future__ import annotations

import pytest

from bench.parse_bench import PEER_FRAME_ROW, main
from liqstress.streams.venues import all_venue_ids

TINY = ["--frames", "20", "--rounds", "1", "--no-peer"]


def _rows(out: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in out.splitlines()
            if line.split()[:1] and line.split()[0] in all_venue_ids()
            and not line.startswith(PEER_FRAME_ROW)}


def test_prints_a_line_per_venue(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(TINY) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert sorted(rows) == sorted(all_venue_ids())
    for cells in rows.values():
        frames, events = int(cells[1]), int(cells[2])
        assert frames > 0 and events > 0
        assert cells[-2].endswith("%")  # parse/orjson
    peer = next(line for line in out.splitlines() if line.startswith(PEER_FRAME_ROW))
    assert peer.split()[-1] == "-"  # no peer figure without the peer
    assert "peer not run" in out


def test_check_fails_without_the_peer_figure(capsys: pytest.CaptureFixture[str]) -> None:
    # The Binance target needs the peer's figure: without it --check cannot pass.
    assert main([*TINY, "--check"]) == 1
    assert "no peer figure" in capsys.readouterr().out
