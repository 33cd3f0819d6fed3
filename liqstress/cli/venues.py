"""``liqstress venues``: the coverage table a trader reads, built from the venue specs.

Every fact shown here lives in the venue's own module (``streams/venues/<module>.py``,
``VENUE``: ``feed``, ``coverage``, ``side_rule``, ``unit_rule``, ``oi_rule``, ``sampled``,
``experimental``, ``poll``, ``history``), next to the parser that implements it, so the table cannot drift
from the code the way a hand-written copy did. Three renderings of the same rows:

* the terminal (default): a compact table (id, kind, completeness, open interest yes/no, warm
  start: how far back the history read on start goes, or no) and
  then one short block per venue with the long texts, readable in 100 columns;
* ``--markdown``: the whole of ``docs/venues.md`` (regenerate it with
  ``liqstress venues --markdown > docs/venues.md``; tests/test_venues_table.py fails when the
  file and the specs differ);
* ``--json``: a list of row objects, for scripts.

Rows come in registry order (``VENUE_MODULES``): the order venues were added, which is also the
order of ``--exchanges``' default.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import orjson
from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from liqstress.config import env
from liqstress.streams.venues import all_venue_ids, get_venue
from liqstress.streams.venues.base import VenueSpec

Kind = Literal["stream", "poll"]
#: What a row says for a venue without an open-interest feed.
NO_OI = "—"
COMPLETE = "complete"
SAMPLED = "sampled (floor)"
EXPERIMENTAL = "experimental"
#: The command that writes docs/venues.md (named in the file and in the test's message).
REGENERATE = "liqstress venues --markdown > docs/venues.md"
#: Widest the terminal rendering gets: long lines of prose are hard to read on a wide screen.
MAX_WIDTH = 100


@dataclass(frozen=True)
class VenueRow:
    """One venue as the table shows it. ``feed`` and ``coverage`` are light markdown (the
    spec's words); the rules are plain text."""

    id: str
    kind: Kind
    #: ``complete`` or ``sampled (floor)``, then ``, experimental`` where the spec says so.
    completeness: str
    sampled: bool
    experimental: bool
    feed: str
    side_rule: str
    unit_rule: str
    coverage: str
    #: The OI and funding rule, ``NO_OI`` when the venue has no open-interest feed.
    open_interest: str
    #: The warm start's rule (``HistorySpec.rule``), ``NO_OI`` when the venue has no public
    #: history read on start.
    warm_start: str = NO_OI

    @property
    def has_oi(self) -> bool:
        return self.open_interest != NO_OI

    @property
    def warm_depth(self) -> str:
        """The summary column: ``24 h`` (how far back the warm start reads) or ``no``."""
        return self.warm_start.partition(":")[0] if self.warm_start != NO_OI else "no"


def completeness(spec: VenueSpec) -> str:
    text = SAMPLED if spec.sampled else COMPLETE
    if spec.sampled_for is not None:
        # ``sampled`` describes the default source only (Hyperliquid's vault trades); another
        # configured source may be complete, which the coverage text explains.
        text += " by default"
    if spec.experimental:
        text += f", {EXPERIMENTAL}"
    return text


def venue_row(spec: VenueSpec) -> VenueRow:
    # A file followed as it grows (Hyperliquid's node fills) pushes like a websocket: only a
    # REST poll has the latency of its period, which is what "poll" warns about.
    kind: Kind = "poll" if spec.poll is not None else "stream"
    return VenueRow(
        id=spec.id, kind=kind, completeness=completeness(spec), sampled=spec.sampled,
        experimental=spec.experimental, feed=spec.feed, side_rule=spec.side_rule,
        unit_rule=spec.unit_rule, coverage=spec.coverage, open_interest=spec.oi_rule or NO_OI,
        warm_start=spec.history.rule if spec.history is not None else NO_OI)


def venue_rows(ids: Sequence[str] | None = None) -> list[VenueRow]:
    """The rows of ``ids`` (default: every registered venue, in registry order)."""
    return [venue_row(get_venue(v)) for v in (all_venue_ids() if ids is None else ids)]


# ---- markdown ------------------------------------------------------------------------------
#: ``_`` only where it touches a non-alphanumeric: inside a word (``open_interest``) markdown
#: never reads it as emphasis, and the raw file stays readable.
_MD_SPECIAL = re.compile(r"([\\`*\[\]<~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def md_escape(text: str) -> str:
    """Plain text (the side, unit and OI rules) as markdown that shows it verbatim: ``z*ap
    (fallback q*p)`` would otherwise render as italics, ``<= 2 min`` might open an HTML tag.
    ``>`` and ``|`` stay: only a line start or a table makes them special, and these texts
    go in list items, one line each."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_item(text: str) -> str:
    """Markdown kept as markdown (feed, coverage), on one line so it stays one list item."""
    return " ".join(text.split()) or "(not documented in the spec)"


INTRO = (
    "Every venue liqstress collects liquidations from: what is subscribed or polled, what "
    "\"long\" means, how sizes become USD, how complete the feed is, and the open-interest "
    "feed. **kind**: `stream` is a push feed (a websocket, or a file followed as it grows), "
    "`poll` a REST resource requested on a period, so an event arrives up to one period late. "
    "**complete**: every liquidation the venue prints is read. **sampled (floor)**: the venue "
    "throttles, samples or only partly exposes its liquidations, so its totals, and every "
    "cross-venue total that includes it, are lower bounds; the gauge "
    "`liqstress_source_sampled{exchange}` is 1 for such a source (per configured source: "
    "Hyperliquid's node fills are complete, its default vault trades a floor). "
    "**experimental**: no frame captured from the live venue pins the parser yet, only "
    "documentation examples, so check its numbers against the venue before relying on them. "
    "Open interest and funding are polled over REST every `--oi-interval` seconds where the "
    "venue has them. **warm start**: how far back the venue's public history is read on "
    "start, in the background (`--no-backfill` turns it off; docs/warm-start.md); without "
    "one a venue's windows are complete from the process start only. `liqstress venues` "
    "prints the same table in a terminal (`--json` for scripts)."
)


def _anchor(venue_id: str) -> str:
    # GitHub's heading anchors: lower case, spaces to dashes; venue ids are already both.
    return venue_id.lower().replace(" ", "-")


def render_markdown(rows: Sequence[VenueRow]) -> str:
    """The whole of docs/venues.md, ending in one newline."""
    out = [
        "<!-- Generated from the venue specs (streams/venues/<module>.py, VENUE) by",
        f"     `{REGENERATE}`: do not edit by hand. Edit the specs,",
        "     then run the command again (tests/test_venues_table.py fails when this file is out",
        "     of date). -->",
        "",
        "# Venues",
        "",
        textwrap.fill(INTRO, width=100, break_on_hyphens=False, break_long_words=False),
        "",
        f"{len(rows)} venues, in the order of the registry (`streams/venues/__init__.py`).",
        "",
        "| venue | kind | completeness | open interest | warm start |",
        "|---|---|---|---|---|",
    ]
    out += [f"| [`{r.id}`](#{_anchor(r.id)}) | {r.kind} | {r.completeness} | "
            f"{'yes' if r.has_oi else 'no'} | {r.warm_depth} |" for r in rows]
    for r in rows:
        out += [
            "",
            f"## {r.id}",
            "",
            f"- **Kind:** {r.kind}; **completeness:** {r.completeness}",
            f"- **Feed:** {_md_item(r.feed)}",
            f"- **Side** (what \"long\" means): {md_escape(r.side_rule)}",
            f"- **Units → USD:** {md_escape(r.unit_rule)}",
            f"- **Coverage:** {_md_item(r.coverage)}",
            f"- **Open interest and funding:** "
            f"{md_escape(r.open_interest) if r.has_oi else 'none'}",
            f"- **Warm start:** "
            f"{md_escape(r.warm_start) if r.warm_start != NO_OI else 'none'}",
        ]
    return "\n".join(out) + "\n"


# ---- terminal ------------------------------------------------------------------------------
_MD_INLINE = re.compile(r"\*\*(.+?)\*\*|`([^`]+)`")


def md_text(text: str) -> Text:
    """Light markdown for a terminal: ``**x**`` bold, ```x``` without its backticks in cyan.
    Everything else is literal (a Text, never rich markup: ``[...]`` in a spec is text)."""
    out = Text()
    pos = 0
    for m in _MD_INLINE.finditer(text):
        out.append(text[pos:m.start()])
        if m.group(1) is not None:
            out.append(m.group(1), style="bold")
        else:
            out.append(m.group(2), style="cyan")
        pos = m.end()
    out.append(text[pos:])
    return out


def summary_table(rows: Sequence[VenueRow]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title=f"{len(rows)} venues", title_justify="left",
                  pad_edge=False)
    table.add_column("venue", style="bold", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("completeness")
    table.add_column("open interest", no_wrap=True)
    table.add_column("warm start", no_wrap=True)
    for r in rows:
        style = "yellow" if r.sampled or r.experimental else "green"
        table.add_row(r.id, r.kind, Text(r.completeness, style=style),
                      "yes" if r.has_oi else "no", r.warm_depth)
    return table


def venue_block(row: VenueRow) -> Group:
    grid = Table.grid(padding=(0, 1))
    grid.add_column(style="dim", no_wrap=True)
    # fold: URLs and rule strings have long unbreakable words; cut them, never hide them.
    grid.add_column(overflow="fold")
    grid.add_row("feed", md_text(row.feed))
    grid.add_row("side", Text(row.side_rule))
    grid.add_row("units", Text(row.unit_rule))
    grid.add_row("coverage", md_text(row.coverage))
    grid.add_row("OI", Text(row.open_interest if row.has_oi else "none"))
    grid.add_row("warm start", Text(row.warm_start if row.warm_start != NO_OI else "none"))
    title = Text.assemble((row.id, "bold"), f"  {row.kind} · {row.completeness}")
    return Group(title, Padding(grid, (0, 0, 0, 2)))


LEGEND = ("sampled (floor): the venue throttles or samples its liquidations, so its totals "
          "(and every total including it) are lower bounds; liqstress_source_sampled is 1 for "
          "it. experimental: no live frame pins the parser yet. poll: REST requested on a "
          "period (latency about the period); stream: pushed. warm start: history read on "
          "start (docs/warm-start.md). Details: docs/venues.md.")


def render_terminal(rows: Sequence[VenueRow]) -> RenderableType:
    parts: list[RenderableType] = [summary_table(rows), Text(LEGEND, style="dim")]
    for r in rows:
        parts += [Text(""), venue_block(r)]
    return Group(*parts)


# ---- command -------------------------------------------------------------------------------
def rows_json(rows: Sequence[VenueRow]) -> bytes:
    return orjson.dumps([{**asdict(r), "has_oi": r.has_oi} for r in rows],
                        option=orjson.OPT_INDENT_2)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The ``venues`` sub-command on ``sub`` (build_parser's sub-parsers)."""
    p: argparse.ArgumentParser = sub.add_parser(
        "venues", help="the venues liqstress reads: feed (stream or poll), complete or sampled, "
        "side and unit rules, coverage caveats, open interest")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true",
                     help=f"print docs/venues.md ({REGENERATE})")
    fmt.add_argument("--json", action="store_true", help="print the rows as a JSON list")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "warning"),
                   choices=["debug", "info", "warning", "error"])
    return p


def cmd_venues(args: argparse.Namespace) -> int:
    rows = venue_rows()
    if args.markdown:
        sys.stdout.write(render_markdown(rows))
    elif args.json:
        sys.stdout.write(rows_json(rows).decode() + "\n")
    else:
        width = min(shutil.get_terminal_size((MAX_WIDTH, 40)).columns, MAX_WIDTH)
        console = Console(width=width, highlight=False)
        if console.is_terminal:
            console.print(render_terminal(rows))
        else:
            # Piped (less, grep, a file): without the padding rich adds to every table line.
            with console.capture() as captured:
                console.print(render_terminal(rows))
            sys.stdout.write("".join(line.rstrip() + "\n"
                                     for line in captured.get().splitlines()))
    return 0
