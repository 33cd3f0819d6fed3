"""Generate the Grafana dashboards in grafana/dashboards/ from code (grafana-foundation-sdk).

    python grafana/build.py            # write the committed JSON
    python grafana/build.py --check    # exit 1 (one line per file) when the JSON is stale
    python grafana/build.py --out DIR  # write (or --check) DIR instead

Settings come from pyproject.toml: the runbook links from ``[project.urls] Repository``
(<Repository>/blob/main/docs/runbook.md) and the ``job`` variable's scrape jobs from
``[tool.liqstress.prometheus]`` (collector-job, worker-job). Edit the rows in grafana/rows/ and
the shared helpers in grafana/panels.py, never the JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from grafana_foundation_sdk.builders import dashboard as dash_b  # noqa: E402
from grafana_foundation_sdk.cog.encoder import JSONEncoder  # noqa: E402
from grafana_foundation_sdk.models import dashboard as dash_m  # noqa: E402
from panels import DATASOURCE, INFINITY, Row, Settings, extra, layout, settings  # noqa: E402
from rows import (  # noqa: E402
    coin,
    coverage,
    delivery,
    exchange_detail,
    exchanges,
    feed,
    flow,
    leverage,
    market,
    overview,
    prices,
    sources,
    stress,
    windows,
    worker,
)

ROOT = HERE.parent
PYPROJECT = ROOT / "pyproject.toml"
DASHBOARDS = HERE / "dashboards"
SCHEMA_VERSION = 39  # Grafana 10.4+ JSON (the compose stack runs Grafana 12)
WINDOWS = ["1m", "5m", "15m", "1h", "4h", "12h", "24h"]
#: Windows of GET /api/v1/largest.
LARGEST_WINDOWS = ["1h", "4h", "12h", "24h"]
#: Hours of GET /api/v1/levels the coin dashboard offers.
LEVEL_HOURS = ["1", "4", "12", "24"]


def _all() -> dash_m.VariableOption:
    return dash_m.VariableOption(selected=True, text=["All"], value=["$__all"])


def _label_values(name: str, label: str, query: str, description: str | None = None,
                  all_value: str = ".+") -> Any:
    var = (dash_b.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
           .refresh(2).multi(True).include_all(True).all_value(all_value).current(_all())
           .options([]).regex("").sort(1).hide(0))
    if description:
        var.description(description)
    return extra(var, definition=query)


def _single(name: str, label: str, query: str, default: str, description: str) -> Any:
    """One value at a time (a drill-down's subject); ``default`` until the query answers."""
    var = (dash_b.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
           .refresh(2).multi(False).include_all(False)
           .current(dash_m.VariableOption(selected=True, text=default, value=default))
           .options([]).regex("").sort(1).hide(0).description(description))
    return extra(var, definition=query)


def _custom(name: str, label: str, values: list[str], default: str, description: str) -> Any:
    var = (dash_b.CustomVariable(name).label(label).description(description)
           .values(",".join(values))
           .current(dash_m.VariableOption(selected=True, text=default, value=default))
           .hide(0).multi(False).include_all(False))
    return extra(var, options=[{"selected": v == default, "text": v, "value": v}
                               for v in values])


def _datasource() -> Any:
    return (dash_b.DatasourceVariable("datasource").label("Data source").type("prometheus")
            .current(dash_m.VariableOption(selected=False, text="Prometheus",
                                           value="liqstress-prometheus"))
            .hide(0).regex("").multi(False).include_all(False))


def _api() -> Any:
    return (dash_b.DatasourceVariable("api").label("Worker API").type(INFINITY)
            .description("Infinity datasource whose base URL is a liqstress worker's /metrics "
                         "port (any worker answers for every partition; docs/api.md).")
            .current(dash_m.VariableOption(selected=False, text="liqstress API",
                                           value="liqstress-api"))
            .hide(0).regex("").multi(False).include_all(False))


def common_variables(cfg: Settings, api: bool = False) -> list[Any]:
    """datasource (and api), job, instance: on every dashboard, in this order."""
    job = _label_values(
        "job", "Job", f'label_values(up{{job=~"{cfg.job_regex}"}}, job)',
        "Prometheus scrape jobs of the liqstress collectors and workers ([tool.liqstress."
        "prometheus] in pyproject.toml; the jobs of prometheus/prometheus.yml).",
        all_value=cfg.job_regex)
    instance = _label_values(
        "instance", "Instance", 'label_values(up{job=~"$job"}, instance)',
        "Scrape targets (collector and worker replicas) of the selected jobs. Panels from "
        "recorded per-job sums (window totals) add up every instance of the job.")
    return [_datasource(), *([_api()] if api else []), job, instance]


def _exchange(multi: bool = True) -> Any:
    query = 'label_values(liqstress_liquidations_total{job=~"$job", instance=~"$instance"}, ' \
        'exchange)'
    if multi:
        return _label_values("exchange", "Exchange", query)
    return _single("exchange", "Exchange", query, "binance",
                   "The exchange this dashboard shows.")


def _window() -> Any:
    return _custom("window", "Window", WINDOWS, "1h",
                   "Rolling window of the worker's window gauges.")


def _price_coins() -> Any:
    return _label_values(
        "coin", "Coin",
        'label_values(liqstress_coin_price_usd{job=~"$job", instance=~"$instance"}, coin)',
        "Allowlisted coins with a price (LIQSTRESS_COINS), for the Price signals row.")


def _dashboard(cfg: Settings, uid: str, title: str, description: str, variables: list[Any],
               rows: list[Row], refresh: str = "30s") -> dash_m.Dashboard:
    board = (
        dash_b.Dashboard(title).uid(uid).description(description)
        .tags(["liqstress"]).timezone("utc").readonly().tooltip(1).refresh(refresh)
        .time("now-6h", "now").fiscal_year_start_month(0).live_now(False).week_start("")
        .version(1)
        .link(dash_b.DashboardLink("liqstress dashboards").type("dashboards").tags(["liqstress"])
              .as_dropdown(True).include_vars(True).keep_time(True).icon("external link"))
        .link(dash_b.DashboardLink("Runbook").type("link").url(cfg.runbook_url).icon("doc")
              .tooltip("What each liqstress alert means and what to do (docs/runbook.md)")
              .target_blank(True))
        .annotation(extra(
            dash_b.AnnotationQuery().name("Annotations & Alerts").type("dashboard")
            .datasource(dash_m.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)"), builtIn=1))
        .annotation(extra(
            dash_b.AnnotationQuery().name("liqstress alerts firing").datasource(DATASOURCE)
            .enable(True).hide(False).icon_color("red")
            .expr('sum by (alertname, exchange) '
                  '(ALERTS{alertname=~"LiqStress.*", alertstate="firing"})'),
            step="60s", titleFormat="{{alertname}}", textFormat="{{exchange}}",
            useValueForTime=False))
        .variables(variables)
    )
    layout(board, rows)
    model = board.build()
    model.schema_version = SCHEMA_VERSION
    return model


def overview_dashboard(cfg: Settings) -> dash_m.Dashboard:
    largest = _custom("largest", "Largest of", LARGEST_WINDOWS, "24h",
                      "Window of the largest-liquidations table (GET /api/v1/largest).")
    return _dashboard(
        cfg, "liqstress-overview", "liqstress / Overview",
        "Crypto-derivatives liquidations at a glance: long / short / total for 1h, 4h, 12h "
        "and 24h, exchanges and coins ranked (click through to their dashboards), long vs "
        "short over time, the largest liquidations and the live feed, and what each window "
        "covers per venue (live, read back from history, or missing).",
        [*common_variables(cfg, api=True), _exchange(), _window(), largest],
        [windows.row(cfg), market.row(cfg), feed.row(cfg), overview.row(cfg), flow.row(cfg),
         coverage.row(cfg)],
        refresh="10s")


def exchange_dashboard(cfg: Settings) -> dash_m.Dashboard:
    return _dashboard(
        cfg, "liqstress-exchange", "liqstress / Exchange",
        "One exchange: its windows, long vs short, shares, coins, latest liquidations and the "
        "health of its websocket source.",
        [*common_variables(cfg, api=True), _exchange(multi=False), _window()],
        [exchange_detail.row(cfg), exchanges.row(cfg), sources.row(cfg)])


def coin_dashboard(cfg: Settings) -> dash_m.Dashboard:
    coin_var = _single(
        "coin", "Coin",
        'label_values(liqstress_coin_window_liquidated_usd{job=~"$job", instance=~"$instance", '
        'coin!="other"}, coin)', "BTC",
        "Coins with their own series: the allowlist and the top coins by 24 h USD.")
    hours = _custom("hours", "Hours", LEVEL_HOURS, "4",
                    "Hours of price levels and prices (GET /api/v1/levels?hours=).")
    return _dashboard(
        cfg, "liqstress-coin", "liqstress / Coin",
        "One coin: liquidated USD by price level over time with the price and local low/high, "
        "the levels, its windows, latest liquidations and price signals.",
        [*common_variables(cfg, api=True), coin_var, hours],
        [coin.levels_row(cfg), coin.windows_row(cfg), coin.signals_row(cfg)])


def stress_dashboard(cfg: Settings) -> dash_m.Dashboard:
    return _dashboard(
        cfg, "liqstress-stress", "liqstress / Stress signals",
        "The composite stress index and its inputs: spikes, cascades, deleveraging, exchange "
        "concentration, long share; leverage: open interest, funding, build-up, crowding, "
        "deleveraging by open interest, intensity; price signals: liquidations near local "
        "extremes, breadth, range divergence.",
        [*common_variables(cfg), _exchange(), _price_coins()],
        [stress.row(cfg), leverage.row(cfg), prices.row(cfg)])


def health_dashboard(cfg: Settings) -> dash_m.Dashboard:
    return _dashboard(
        cfg, "liqstress-health", "liqstress / Pipeline health",
        "The pipeline: websocket sources, delivery to Kafka, the embedded broker and topics, "
        "the workers, and the firing alerts (linked to the runbook).",
        [*common_variables(cfg), _exchange()],
        [sources.row(cfg), delivery.delivery_row(cfg), delivery.workers_row(cfg),
         worker.row(cfg)])


# file name -> dashboard
DASHBOARD_BUILDERS: dict[str, Callable[[Settings], dash_m.Dashboard]] = {
    "liqstress-overview.json": overview_dashboard,
    "liqstress-exchange.json": exchange_dashboard,
    "liqstress-coin.json": coin_dashboard,
    "liqstress-stress.json": stress_dashboard,
    "liqstress-health.json": health_dashboard,
}


def render(model: dash_m.Dashboard) -> str:
    data = json.loads(json.dumps(model, cls=JSONEncoder))
    data["id"] = None  # provisioned dashboards: Grafana assigns the numeric id
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate(pyproject: Path = PYPROJECT) -> dict[str, str]:
    cfg = settings(pyproject)
    return {name: render(build(cfg)) for name, build in DASHBOARD_BUILDERS.items()}


def check(out: Path, generated: dict[str, str]) -> list[str]:
    """One line per file of ``out`` that differs from ``generated``."""
    problems = []
    for name, text in sorted(generated.items()):
        path = out / name
        if not path.exists():
            problems.append(f"{path}: missing (run python grafana/build.py)")
        elif path.read_text() != text:
            problems.append(f"{path}: differs from what grafana/build.py generates "
                            "(run python grafana/build.py)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare instead of writing; exit 1 when a file differs")
    parser.add_argument("--out", type=Path, default=DASHBOARDS,
                        help="dashboards directory (default: grafana/dashboards)")
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    generated = generate(args.pyproject)
    if args.check:
        problems = check(args.out, generated)
        for line in problems:
            print(line)
        return 1 if problems else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in sorted(generated.items()):
        (args.out / name).write_text(text)
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
