"""``liqstress venues`` and docs/venues.md come from the venue specs, and say what they say.

Rows are in registry order (``VENUE_MODULES``), the order ``--exchanges`` defaults to.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import orjson
import pytest

from liqstress.cli import main
from liqstress.cli.venues import NO_OI, REGENERATE, SAMPLED, md_escape, render_markdown, venue_rows
from liqstress.streams.venues import VENUE_MODULES, all_venue_ids, get_venue

ROOT = Path(__file__).resolve().parents[1]
#: Venues with a warm start (a public history read on start: docs/warm-start.md), and how far
#: back it reads.
WARM = {"dydx": "24 h", "deribit": "24 h", "okx": "24 h", "gate": "1 h", "bitget": "24 h",
        "kraken-futures": "24 h", "htx": "24 h", "bitfinex": "24 h",
        "paradex": "24 h", "lighter": "24 h"}
DOC = ROOT / "docs" / "venues.md"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    code = main(["venues", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_doc_is_the_generated_table(capsys: pytest.CaptureFixture[str]) -> None:
    expected = run(capsys, "--markdown")
    assert expected == render_markdown(venue_rows())
    assert DOC.read_text() == expected, (
        f"docs/venues.md is out of date with the venue specs: run `.venv/bin/{REGENERATE}`")
    assert REGENERATE in expected.splitlines()[1], "the file must say how it is made"


def test_every_venue_once_in_registry_order(capsys: pytest.CaptureFixture[str]) -> None:
    ids = [row.id for row in venue_rows()]
    assert ids == all_venue_ids() == list(VENUE_MODULES)
    assert len(ids) == len(set(ids)) == 16
    doc = render_markdown(venue_rows())
    assert re.findall(r"^## (\S+)$", doc, re.M) == ids
    assert re.findall(r"^\| \[`([^`]+)`\]", doc, re.M) == ids
    assert [row["id"] for row in orjson.loads(run(capsys, "--json"))] == ids


def test_every_spec_documents_its_feed_and_coverage() -> None:
    """The hand-written README table is gone: a venue without these has no coverage docs."""
    for venue_id in all_venue_ids():
        spec = get_venue(venue_id)
        assert spec.feed.strip() and spec.coverage.strip(), venue_id
        assert spec.side_rule.strip() and spec.unit_rule.strip(), venue_id


def test_kind_is_poll_only_for_paradex() -> None:
    kinds = {row.id: row.kind for row in venue_rows()}
    assert {v for v, k in kinds.items() if k == "poll"} == {"paradex"}
    assert set(kinds.values()) == {"stream", "poll"}
    # The node-fills file is followed as it grows: still a stream.
    assert kinds["hyperliquid"] == "stream"


def test_completeness_follows_the_specs() -> None:
    for row in venue_rows():
        spec = get_venue(row.id)
        assert (row.sampled, row.experimental) == (spec.sampled, spec.experimental), row.id
        assert row.completeness.startswith(SAMPLED if spec.sampled else "complete"), row.id
        assert ("experimental" in row.completeness) == spec.experimental, row.id
    sampled = {row.id for row in venue_rows() if row.sampled}
    assert sampled == {"binance", "okx", "binance-coinm", "gate", "bitget", "hyperliquid",
                       "aster"}
    # Aster's parser is pinned by a captured live frame: not experimental.
    assert not any(row.experimental for row in venue_rows())


def test_open_interest_follows_the_specs() -> None:
    for row in venue_rows():
        spec = get_venue(row.id)
        assert row.has_oi == (spec.parse_oi is not None), row.id
        assert row.open_interest == (spec.oi_rule or NO_OI), row.id


def test_warm_start_follows_the_specs() -> None:
    rows = {row.id: row for row in venue_rows()}
    for venue_id, row in rows.items():
        spec = get_venue(venue_id)
        assert (row.warm_start != NO_OI) == (spec.history is not None), venue_id
    assert {v: r.warm_depth for v, r in rows.items() if r.warm_depth != "no"} == WARM
    doc = render_markdown(venue_rows())
    assert "| [`dydx`](#dydx) | stream | complete | yes | 24 h |" in doc


def test_experimental_spec_is_labelled(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module("liqstress.streams.venues.lighter")
    monkeypatch.setattr(module, "VENUE", dataclasses.replace(module.VENUE, experimental=True))
    (row,) = [r for r in venue_rows() if r.id == "lighter"]
    assert (row.experimental, row.completeness) == (True, "complete, experimental")
    assert "| [`lighter`](#lighter) | stream | complete, experimental | no | 24 h |" in \
        render_markdown(venue_rows())
    assert "lighter  stream · complete, experimental" in run(capsys)
    (item,) = [r for r in orjson.loads(run(capsys, "--json")) if r["id"] == "lighter"]
    assert item["experimental"] is True
    # The committed doc no longer matches: the staleness check would catch it.
    assert render_markdown(venue_rows()) != DOC.read_text()


def test_terminal_lists_every_venue(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys)
    for venue_id in all_venue_ids():
        assert re.search(rf"^ {re.escape(venue_id)} +(stream|poll) ", out, re.M), venue_id
        assert re.search(rf"^{re.escape(venue_id)}  (stream|poll) · ", out, re.M), venue_id
    assert "**" not in out and "`" not in out, "markdown leaked into the terminal"
    assert max(len(line) for line in out.splitlines()) <= 100


def test_json_rows(capsys: pytest.CaptureFixture[str]) -> None:
    rows = orjson.loads(run(capsys, "--json"))
    assert isinstance(rows, list) and len(rows) == len(all_venue_ids())
    paradex = next(r for r in rows if r["id"] == "paradex")
    assert (paradex["kind"], paradex["sampled"], paradex["has_oi"]) == ("poll", False, False)
    assert paradex["open_interest"] == NO_OI
    assert set(paradex) >= {"feed", "side_rule", "unit_rule", "coverage", "completeness"}


def test_markdown_and_json_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["venues", "--markdown", "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("liqstress: error:") and len(err.strip().splitlines()) == 1


def test_plain_rules_are_escaped_for_markdown() -> None:
    assert md_escape("notional z*ap (fallback q*p)") == r"notional z\*ap (fallback q\*p)"
    assert md_escape("(<= 2 min)") == r"(\<= 2 min)"
    assert md_escape("open_interest, linear _USDC") == r"open_interest, linear \_USDC"
