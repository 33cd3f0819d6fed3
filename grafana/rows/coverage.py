"""Coverage: which venues each window holds whole, how much was read back from history, and
the warm start per venue (docs/warm-start.md)."""

from __future__ import annotations

from panels import EXCHANGE, Q, Row, Settings, by_regexp, sel, stat, table, value_map

MISSING = "liqstress_window_coverage_missing_ratio"
BACKFILLED = "liqstress_window_coverage_backfilled_ratio"
WINDOWS = ["1m", "5m", "15m", "1h", "4h", "12h", "24h"]
#: liqstress_backfill_state's one-hot states drawn as one number per venue.
BACKFILL_STATES = (("off", "off (no public history)", "text"), ("pending", "loading", "blue"),
                   ("running", "reading history", "blue"), ("done", "done", "green"),
                   ("failed", "failed", "red"))


def _per_window(metric: str, transform: str) -> list[Q]:
    out = []
    for w in WINDOWS:
        matcher = 'window="' + w + '"'
        out.append(Q(transform.format(f"max by (exchange) ({sel(metric, EXCHANGE, matcher)})")))
    return out


def _columns() -> dict[str, str]:
    return {"exchange": "Exchange",
            **{f"Value #{chr(ord('A') + i)}": w for i, w in enumerate(WINDOWS)}}


def _backfill_state() -> str:
    terms = []
    for i, (state, _, _) in enumerate(BACKFILL_STATES):
        matcher = 'state="' + state + '"'
        terms.append(f"({sel('liqstress_backfill_state', EXCHANGE, matcher)} == 1) * {i}")
    return "max by (exchange) (\n  " + "\n  or ".join(terms) + "\n)"


def row(cfg: Settings) -> Row:
    # Green only for the whole window: a venue missing any of it is a short total.
    share = by_regexp("^(" + "|".join(WINDOWS) + ")$", unit="percentunit", decimals=1,
                      min=0, max=1, custom__cellOptions={"type": "color-background",
                                                         "mode": "basic"},
                      thresholds={"mode": "absolute", "steps": [
                          {"color": "red", "value": None}, {"color": "orange", "value": 0.5},
                          {"color": "green", "value": 1}]})
    return Row(
        "Coverage: what each window holds",
        stat("Venues covering the whole window",
             "Per window: how many venues cover all of it, live or read back from their public "
             "history by the warm start (docs/warm-start.md). A venue misses the time before "
             "it was collected, while its feed was down, and since its collector went silent. "
             "Sampled feeds (Binance, Aster, OKX) count as covered in time; their totals are "
             "still a floor.",
             [Q(f"sum by (window) (max by (exchange, window) ({sel(MISSING, EXCHANGE)}) "
                f"== bool 0)", "{{window}}")],
             unit="none", decimals=0, w=24, h=4),
        table("Share of each window covered, per venue",
              "1 - liqstress_window_coverage_missing_ratio: 100 % = the venue's liquidations "
              "of the whole window are in the totals (live or from its history); less = part "
              "of the window is missing, so the venue's totals are short for that window.",
              _per_window(MISSING, "1 - {}"), columns=_columns(),
              overrides=[share], sort_by=("24h", False), w=12, h=10),
        table("Share of each window read back from history, per venue",
              "liqstress_window_coverage_backfilled_ratio: the part of the window covered by "
              "the warm start (the venue's public history) rather than the live feed; 0 for "
              "venues without one.",
              _per_window(BACKFILLED, "{}"), columns=_columns(),
              overrides=[by_regexp("^(" + "|".join(WINDOWS) + ")$", unit="percentunit",
                                   decimals=0)],
              sort_by=("24h", True), w=12, h=10),
        stat("Warm start",
             "liqstress_backfill_state per venue: reading history, done, failed "
             "(LiqStressBackfillFailed: its windows are complete from the collector's start "
             "only) or off (the venue has no public liquidation history, or --no-backfill).",
             [Q(_backfill_state(), "{{exchange}}")], unit="none",
             mappings=[value_map(*((str(i), text, color)
                                   for i, (_, text, color) in enumerate(BACKFILL_STATES)))],
             background=True, w=24, h=5),
    )
