"""Shared panel helpers for the liqstress dashboards, on grafana-foundation-sdk builders.

Every panel gets the ``${datasource}`` ref, its targets (refIds A, B, ...; instant for stat,
bar gauge and table, range for time series and state timelines), a unit, thresholds and the
house legend/tooltip style. ``layout`` places rows and panels on the 24-column grid (no
hand-placed gridPos). ``settings`` reads the one configuration place, pyproject.toml.

The pinned SDK speaks the Grafana 10.1 schema; the few JSON keys it has no setter for (e.g. a
bar gauge's ``namePlacement``, a repeat's ``maxPerRow``, an annotation's ``titleFormat``) are
attached with ``extra`` and merged into that object's JSON.
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge as bargauge_b
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.builders import heatmap as heatmap_b
from grafana_foundation_sdk.builders import prometheus as prom_b
from grafana_foundation_sdk.builders import stat as stat_b
from grafana_foundation_sdk.builders import statetimeline as statetimeline_b
from grafana_foundation_sdk.builders import table as table_b
from grafana_foundation_sdk.builders import timeseries as timeseries_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dash_m

GRID_WIDTH = 24
DATASOURCE = dash_m.DataSourceRef(type_val="prometheus", uid="${datasource}")
#: The worker's JSON API (docs/api.md) through Grafana's Infinity datasource, chosen by the
#: ``api`` variable (provisioned as uid liqstress-api, grafana/provisioning/datasources).
INFINITY = "yesoreyeram-infinity-datasource"
API_DATASOURCE = dash_m.DataSourceRef(type_val=INFINITY, uid="${api}")
#: A panel whose targets come from both.
MIXED = dash_m.DataSourceRef(type_val="datasource", uid="-- Mixed --")

# ---- settings (pyproject.toml) -----------------------------------------------------------------
# Scrape job names the shipped prometheus/prometheus.yml uses; [tool.liqstress.prometheus]
# in pyproject.toml overrides them (collector-job, worker-job).
DEFAULT_JOBS = {"collector-job": "liqstress-collector", "worker-job": "liqstress-worker"}
RUNBOOK_PATH = "/blob/main/docs/runbook.md"
DEFAULT_REPOSITORY = "https://github.com/liqstress/liqstress"


@dataclass(frozen=True)
class Settings:
    runbook_url: str
    jobs: tuple[str, ...]

    @property
    def job_regex(self) -> str:
        return "|".join(self.jobs)


def settings(pyproject: Path) -> Settings:
    """The runbook base URL and the liqstress scrape jobs, from pyproject.toml."""
    data = tomllib.loads(pyproject.read_text())
    repo = data.get("project", {}).get("urls", {}).get("Repository", DEFAULT_REPOSITORY)
    prom = data.get("tool", {}).get("liqstress", {}).get("prometheus", {})
    jobs = tuple(str(prom.get(key, default)) for key, default in DEFAULT_JOBS.items())
    return Settings(runbook_url=repo.rstrip("/") + RUNBOOK_PATH, jobs=jobs)


# ---- JSON the SDK has no setter for --------------------------------------------------------------
def _merge(into: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value)
    return into


class _Extended:
    """A built SDK model whose JSON gets ``extra`` merged in; attributes pass through."""

    def __init__(self, model: Any, extra: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_extra", extra)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._model, name, value)

    def to_json(self) -> dict[str, object]:
        return _merge(json.loads(json.dumps(self._model, cls=JSONEncoder)), self._extra)


class Extra(cogbuilder.Builder[Any]):
    """``builder`` plus raw JSON keys merged into what it builds."""

    def __init__(self, builder: cogbuilder.Builder[Any], extra: Mapping[str, Any]) -> None:
        self.builder = builder
        self.extra = extra

    def build(self) -> Any:
        return _Extended(self.builder.build(), self.extra)


def extra(builder: cogbuilder.Builder[Any], **keys: Any) -> cogbuilder.Builder[Any]:
    if isinstance(builder, Extra):
        return Extra(builder.builder, _merge(copy.deepcopy(dict(builder.extra)), keys))
    return Extra(builder, keys)


# ---- queries -------------------------------------------------------------------------------------
JOB = 'job=~"$job"'
INSTANCE = 'instance=~"$instance"'
EXCHANGE = 'exchange=~"$exchange"'
WINDOW = 'window="$window"'
COIN = 'coin=~"$coin"'


def sel(metric: str, *matchers: str) -> str:
    """``metric{job=~"$job", instance=~"$instance", matchers...}``: every liqstress series is
    filtered by scrape job, and raw series by instance too. Recorded series
    (``level:metric:operations``) are per-job aggregates over the workers (instance dropped,
    prometheus/rulesrc/dashboards.py), so the instance filter does not apply to them."""
    scope = (JOB,) if ":" in metric else (JOB, INSTANCE)
    return f"{metric}{{{', '.join((*scope, *matchers))}}}"


@dataclass(frozen=True)
class Q:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Col:
    """A column of an Infinity query: the JSON key, its header and type (string, number,
    timestamp: ISO-8601 text)."""

    selector: str
    text: str
    type: str = "string"


@dataclass(frozen=True)
class ApiQ:
    """One request to the worker's JSON API (docs/api.md) through the Infinity datasource:
    ``url`` relative to the datasource's base URL (template variables allowed), the rows under
    ``root``, the ``columns`` the panel reads, and an optional backend ``filter`` expression
    (e.g. ``scope == 'exchange'``)."""

    url: str
    root: str
    columns: tuple[Col, ...]
    filter: str = ""

    def target(self, ref: str) -> dict[str, Any]:
        return {"refId": ref, "datasource": {"type": INFINITY, "uid": "${api}"},
                "type": "json", "source": "url", "parser": "backend", "format": "table",
                "url": self.url, "url_options": {"method": "GET", "data": ""},
                "root_selector": self.root,
                "columns": [{"selector": c.selector, "text": c.text, "type": c.type}
                            for c in self.columns],
                "filterExpression": self.filter, "filters": [], "computed_columns": []}


class _Raw:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_json(self) -> dict[str, Any]:
        return copy.deepcopy(self.data)


class RawTarget(cogbuilder.Builder[Any]):
    """A target as raw JSON (a datasource the SDK has no builder for)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def build(self) -> Any:
        return _Raw(self.data)


def _panel_datasource(queries: Sequence[Any]) -> dash_m.DataSourceRef:
    kinds = {isinstance(q, ApiQ) for q in queries}
    if kinds == {True}:
        return API_DATASOURCE
    return MIXED if kinds == {True, False} else DATASOURCE


def _targets(builder: Any, queries: Sequence[Any], *, instant: bool,
             table: bool = False) -> None:
    for i, q in enumerate(queries):
        if isinstance(q, ApiQ):
            builder.with_target(RawTarget(q.target(chr(ord("A") + i))))
            continue
        t = (prom_b.Dataquery().ref_id(chr(ord("A") + i)).expr(q.expr).datasource(DATASOURCE)
             .editor_mode("code"))
        t = t.instant() if instant else t.range()
        if q.legend:
            t = t.legend_format(q.legend)
        if table:
            t = t.format("table")
        builder.with_target(t)


def thresholds(*steps: tuple[str, float | None]) -> dash_b.ThresholdsConfig:
    """Absolute thresholds; the first step's value is None (the base color)."""
    return (dash_b.ThresholdsConfig().mode("absolute")
            .steps([dash_m.Threshold(value=v, color=c) for c, v in steps]))


BASE = (("green", None),)


def fixed(color: str) -> dash_b.FieldColor:
    return dash_b.FieldColor().mode("fixed").fixed_color(color)


def palette(mode: str = "palette-classic") -> dash_b.FieldColor:
    return dash_b.FieldColor().mode(mode)


def value_map(*entries: tuple[str, str, str]) -> dash_m.ValueMap:
    """``(value, text, color)`` per mapped value."""
    return dash_m.ValueMap(options={
        v: dash_m.ValueMappingResult(text=t, color=c, index=i)
        for i, (v, t, c) in enumerate(entries)})


def range_map(lo: float, hi: float, text: str, color: str) -> dash_m.RangeMap:
    return dash_m.RangeMap(options=dash_m.DashboardRangeMapOptions(
        from_val=lo, to=hi, result=dash_m.ValueMappingResult(text=text, color=color, index=0)))


@dataclass(frozen=True)
class Override:
    """A field override: ``matcher`` is byName or byRegexp; properties in order."""

    matcher: str
    options: str
    properties: tuple[tuple[str, Any], ...] = field(default_factory=tuple)


def by_name(name: str, **props: Any) -> Override:
    return Override("byName", name, _props(props))


def by_regexp(regexp: str, **props: Any) -> Override:
    return Override("byRegexp", regexp, _props(props))


def _props(props: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    # Python names for Grafana's property ids: custom__axisPlacement -> custom.axisPlacement.
    return tuple((k.replace("__", "."), v) for k, v in props.items())


UNSET = object()  # a property with no value, e.g. {"id": "decimals"} resets decimals


def color_fixed(color: str) -> dict[str, str]:
    return {"mode": "fixed", "fixedColor": color}


DASHED = {"fill": "dash", "dash": [10, 10]}
SIDE_COLORS = (by_regexp("^long.*", color=color_fixed("red")),
               by_regexp("^short.*", color=color_fixed("green")))


def _overrides(builder: Any, overrides: Iterable[Override]) -> None:
    for o in overrides:
        builder.with_override(
            dash_m.MatcherConfig(id_val=o.matcher, options=o.options),
            [dash_m.DynamicConfigValue(id_val=k) if v is UNSET
             else dash_m.DynamicConfigValue(id_val=k, value=v) for k, v in o.properties])


def _common(builder: Any, title: str, description: str, queries: Sequence[Q], *, w: int, h: int,
            unit: str | None, instant: bool, table: bool = False) -> Any:
    builder.title(title).description(description).datasource(_panel_datasource(queries))
    builder.span(w).height(h)
    if unit is not None:
        builder.unit(unit)
    _targets(builder, queries, instant=instant, table=table)
    return builder


def _limits(builder: Any, min_: float | None, max_: float | None, decimals: int | None) -> None:
    if decimals is not None:
        builder.decimals(decimals)
    if min_ is not None:
        builder.min(min_)
    if max_ is not None:
        builder.max(max_)


def _reduce_last() -> common_b.ReduceDataOptions:
    return common_b.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


# ---- panels --------------------------------------------------------------------------------------
def stat(title: str, description: str, queries: Sequence[Q], *, unit: str, w: int, h: int,
         color: dash_b.FieldColor | None = None,
         steps: Sequence[tuple[str, float | None]] = BASE,
         mappings: Sequence[Any] = (), background: bool = False, graph: bool = False,
         text_mode: str = "auto", justify: str = "auto", decimals: int | None = None,
         min_: float | None = None, max_: float | None = None,
         overrides: Iterable[Override] = (), orientation: str = "auto",
         links: Sequence[Mapping[str, Any]] = ()) -> Any:
    """A single-value stat (instant query, last non-null value)."""
    p = _common(stat_b.Panel(), title, description, queries, w=w, h=h, unit=unit, instant=True)
    p.color_scheme(color or palette("thresholds")).thresholds(thresholds(*steps))
    p.mappings(list(mappings))
    _limits(p, min_, max_, decimals)
    (p.reduce_options(_reduce_last()).orientation(orientation).text_mode(text_mode)
     .color_mode("background" if background else "value")
     .graph_mode("area" if graph else "none").justify_mode(justify))
    _overrides(p, overrides)
    return with_links(p, links)


def with_links(builder: Any, links: Sequence[Mapping[str, Any]]) -> Any:
    """Data links on every field of the panel (``fieldConfig.defaults.links``)."""
    if not links:
        return builder
    return extra(builder, fieldConfig={"defaults": {"links": [dict(x) for x in links]}})


def drill(uid: str, title: str, carry: Sequence[str] = (), **values: str) -> dict[str, Any]:
    """A data link to another liqstress dashboard: ``values`` set its variables (e.g.
    ``exchange="${__field.labels.exchange}"``), ``carry`` names variables passed on as they
    are; job, instance and the time range always travel along."""
    params = [f"var-{k}={v}" for k, v in values.items()]
    params += [f"${{{v}:queryparam}}" for v in (*carry, "job", "instance")]
    params.append("${__url_time_range}")
    return {"title": title, "url": f"/d/{uid}/{uid}?" + "&".join(params)}


def timeseries(title: str, description: str, queries: Sequence[Q], *, unit: str, w: int, h: int,
               bars: bool = False, fill: int = 10, color: dash_b.FieldColor | None = None,
               steps: Sequence[tuple[str, float | None]] = BASE, threshold_style: str = "off",
               soft_min: float | None = None, soft_max: float | None = None,
               min_: float | None = None, max_: float | None = None,
               legend: str = "table", calcs: Sequence[str] | None = ("lastNotNull", "max"),
               tooltip_sort: str = "desc", overrides: Iterable[Override] = (),
               interval: str | None = None) -> Any:
    """A time series; ``bars`` draws stacked bars (for increase() panels, legend calc sum)."""
    p = _common(timeseries_b.Panel(), title, description, queries, w=w, h=h, unit=unit,
                instant=False)
    (p.draw_style("bars" if bars else "line").line_width(1)
     .fill_opacity(80 if bars else fill).show_points("never").span_nulls(False)
     .stacking(common_b.StackingConfig().mode("normal" if bars else "none").group("A"))
     .axis_placement("auto")
     .thresholds_style(common_b.GraphThresholdsStyleConfig().mode(threshold_style)))
    if soft_min is not None:
        p.axis_soft_min(soft_min)
    if soft_max is not None:
        p.axis_soft_max(soft_max)
    _limits(p, min_, max_, None)
    p.color_scheme(color or palette()).thresholds(thresholds(*steps))
    lg = common_b.VizLegendOptions().show_legend(True)
    if legend == "table":
        lg.display_mode("table").placement("right")
    else:
        lg.display_mode("list").placement("bottom")
    if calcs is not None:
        lg.calcs(list(calcs))
    p.legend(lg).tooltip(common_b.VizTooltipOptions().mode("multi").sort(tooltip_sort))
    _overrides(p, overrides)
    if interval is not None:
        p.interval(interval)
    return p


def increase_bars(title: str, description: str, queries: Sequence[Q], *, unit: str, w: int,
                  h: int, interval: str, overrides: Iterable[Override] = ()) -> Any:
    """Stacked bars of ``increase(x[$__interval])`` with a legend sum.

    ``interval`` is the panel's min interval: Grafana's step and ``$__interval`` are equal and at
    least this, so consecutive points cover disjoint, adjacent ranges and the legend sum is the
    real increase over the dashboard range.
    """
    for q in queries:
        if "increase(" in q.expr and "[$__interval]" not in q.expr:
            raise ValueError(f"{title}: increase() must use [$__interval]: {q.expr}")
    return timeseries(title, description, queries, unit=unit, w=w, h=h, bars=True,
                      calcs=("sum",), overrides=overrides, interval=interval)


def bargauge(title: str, description: str, queries: Sequence[Q], *, unit: str, w: int, h: int,
             min_: float | None = 0, max_: float | None = None,
             links: Sequence[Mapping[str, Any]] = ()) -> Any:
    """Horizontal gradient bars, one per series (instant query)."""
    p = _common(bargauge_b.Panel(), title, description, queries, w=w, h=h, unit=unit,
                instant=True)
    _limits(p, min_, max_, None)
    p.color_scheme(palette("continuous-GrYlRd")).thresholds(thresholds(*BASE))
    (p.orientation("horizontal").display_mode("gradient").value_mode("color")
     .show_unfilled(True).min_viz_height(16).reduce_options(_reduce_last()))
    return with_links(extra(p, options={"namePlacement": "left", "sizing": "auto",
                                        "maxVizHeight": 300}), links)


def table(title: str, description: str, queries: Sequence[Q], *, w: int, h: int,
          columns: Mapping[str, str] | None = None, overrides: Iterable[Override] = (),
          sort_by: tuple[str, bool] | None = None,
          footer_sum: Sequence[str] | None = None) -> Any:
    """Instant queries as table rows.

    ``columns`` maps a label or ``Value #<refId>`` to its header, in display order; the
    queries are merged on their labels. Without ``columns`` the one query's labels are shown.
    """
    p = _common(table_b.Panel(), title, description, queries, w=w, h=h, unit=None,
                instant=True, table=True)
    p.thresholds(thresholds(*BASE)).mappings([])
    if columns:
        p.with_transformation(dash_m.DataTransformerConfig(id_val="merge", options={}))
        p.with_transformation(dash_m.DataTransformerConfig(id_val="organize", options={
            "excludeByName": {"Time": True},
            "indexByName": {name: i for i, name in enumerate(columns)},
            "renameByName": dict(columns)}))
    else:
        p.with_transformation(dash_m.DataTransformerConfig(id_val="organize", options={
            "excludeByName": {"Time": True, "Value": True}}))
    _overrides(p, overrides)
    p.show_header(True).cell_height("sm")
    if sort_by is not None:
        p.sort_by([common_b.TableSortByFieldState().display_name(sort_by[0]).desc(sort_by[1])])
    footer = common_b.TableFooterOptions().show(footer_sum is not None)
    if footer_sum is not None:
        footer.reducer(["sum"]).fields(list(footer_sum))
    return p.footer(footer)


def api_table(title: str, description: str, query: ApiQ, *, w: int, h: int,
              overrides: Iterable[Override] = (),
              sort_by: tuple[str, bool] | None = None) -> Any:
    """A table of one worker-API answer: its ``columns``, in order, under their headers."""
    p = _common(table_b.Panel(), title, description, [query], w=w, h=h, unit=None,
                instant=True)
    p.thresholds(thresholds(*BASE)).mappings([])
    _overrides(p, overrides)
    p.show_header(True).cell_height("sm")
    if sort_by is not None:
        p.sort_by([common_b.TableSortByFieldState().display_name(sort_by[0]).desc(sort_by[1])])
    return p.footer(common_b.TableFooterOptions().show(False))


def level_heatmap(title: str, description: str, query: ApiQ, *, time: str, level: str,
                  value: str, w: int, h: int) -> Any:
    """A heatmap of ``value`` by ``level`` (y, numeric buckets) over ``time`` (x) from one
    worker-API answer with one row per (time, level) cell: Grafana's *Grouping to matrix*
    turns the rows into one column per level (its name the level's price), which the heatmap
    reads as buckets (``calculate`` off); empty cells are left out."""
    p = _common(heatmap_b.Panel(), title, description, [query], w=w, h=h, unit=None,
                instant=True)
    matrix = f"{time}\\{level}"
    p.with_transformation(dash_m.DataTransformerConfig(id_val="groupingToMatrix", options={
        "columnField": level, "rowField": time, "valueField": value, "emptyValue": "null"}))
    p.with_transformation(dash_m.DataTransformerConfig(id_val="convertFieldType", options={
        "conversions": [{"targetField": matrix, "destinationType": "time"}], "fields": {}}))
    return extra(p, options={
        "calculate": False, "cellGap": 0, "showValue": "never",
        "color": {"mode": "scheme", "scheme": "Oranges", "fill": "dark-orange",
                  "scale": "exponential", "exponent": 0.5, "steps": 64, "reverse": False},
        "yAxis": {"axisPlacement": "left", "unit": "currencyUSD", "reverse": False,
                  "axisLabel": "price level"},
        "rowsFrame": {"layout": "auto", "value": "USD liquidated"},
        "cellValues": {"unit": "currencyUSD"},
        "filterValues": {"le": 1e-9},
        "tooltip": {"mode": "single", "yHistogram": False, "showColorScale": True},
        "legend": {"show": True},
        "exemplars": {"color": "rgba(255,0,255,0.7)"}})


def state_timeline(title: str, description: str, queries: Sequence[Q], *, w: int, h: int,
                   mappings: Sequence[Any], show_value: str = "auto") -> Any:
    """Discrete states over time, colored by value mappings; legend hidden."""
    p = _common(statetimeline_b.Panel(), title, description, queries, w=w, h=h, unit="none",
                instant=False)
    p.color_scheme(palette("thresholds")).thresholds(thresholds(*BASE)).mappings(list(mappings))
    (p.fill_opacity(80).line_width(0).show_value(show_value).row_height(0.9).merge_values(True)
     .align_value("left")
     .legend(common_b.VizLegendOptions().display_mode("list").placement("bottom")
             .show_legend(False))
     .tooltip(common_b.VizTooltipOptions().mode("single").sort("none")))
    return p


def state_panel(title: str, description: str, metric: str,
                states: Sequence[tuple[str, str, str]], *, w: int, h: int) -> Any:
    """A state timeline of a one-hot state gauge (``metric{state=...} == 1``): ``states`` are
    ``(state, text, color)``, the i-th drawn as value i (the first is the calm one, 0)."""
    terms = []
    for i, (state, _, _) in reversed(list(enumerate(states))):
        matcher = f'state="{state}"'
        term = f"({sel(metric, matcher)} == 1)"
        terms.append(term if i == 1 else f"{term} * {i}")
    query = "max(\n  " + "\n  or ".join(terms) + "\n)"
    return state_timeline(title, description, [Q(query, "state")], w=w, h=h,
                          mappings=[value_map(*((str(i), text, color) for i, (_, text, color)
                                                in enumerate(states)))])


def repeat(panel: Any, variable: str, max_per_row: int) -> Any:
    """One copy of ``panel`` per selected value of ``variable``, side by side."""
    panel.repeat(variable).repeat_direction("h")
    return extra(panel, maxPerRow=max_per_row)


# ---- layout --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stack:
    """Panels of one width stacked in a column of the row."""

    panels: tuple[Any, ...]

    def __init__(self, *panels: Any) -> None:
        object.__setattr__(self, "panels", panels)


@dataclass(frozen=True)
class Row:
    title: str
    items: tuple[Any, ...]

    def __init__(self, title: str, *items: Any) -> None:
        object.__setattr__(self, "title", title)
        object.__setattr__(self, "items", items)


def _size(panel: Any) -> tuple[int, int]:
    pos = panel.build().grid_pos
    return pos.w, pos.h


def _place(panel: Any, x: int, y: int, pid: int) -> None:
    model = panel.build()
    model.grid_pos = dash_m.GridPos(h=model.grid_pos.h, w=model.grid_pos.w, x=x, y=y)
    model.id_val = pid


def layout(board: dash_b.Dashboard, rows: Sequence[Row]) -> dash_b.Dashboard:
    """Rows top to bottom; each row's items left to right, wrapping at the grid width.

    An item is a panel or a ``Stack``; a line is as tall as its tallest item. Panel ids are
    assigned in reading order.
    """
    y, pid = 0, 0
    for row in rows:
        pid += 1
        board.with_row(dash_b.Row(row.title).id(pid).grid_pos(
            dash_m.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)))
        y += 1
        x, line_h = 0, 0
        for item in row.items:
            members = item.panels if isinstance(item, Stack) else (item,)
            sizes = [_size(p) for p in members]
            w, h = max(s[0] for s in sizes), sum(s[1] for s in sizes)
            if x + w > GRID_WIDTH:
                x, y, line_h = 0, y + line_h, 0
            dy = 0
            for panel, (_, ph) in zip(members, sizes, strict=True):
                pid += 1
                _place(panel, x, y + dy, pid)
                board.with_panel(panel)
                dy += ph
            x, line_h = x + w, max(line_h, h)
        y += line_h
    return board
