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
from panels import DATASOURCE, Settings, extra, layout, settings  # noqa: E402
from rows import exchanges, flow, overview, prices, sources, stress, worker  # noqa: E402

ROOT = HERE.parent
PYPROJECT = ROOT / "pyproject.toml"
DASHBOARDS = HERE / "dashboards"
SCHEMA_VERSION = 39  # Grafana 10.4+ JSON (the compose stack runs Grafana 12)
WINDOWS = ["1m", "5m", "15m", "1h", "4h", "12h", "24h"]


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


def variables(cfg: Settings) -> list[Any]:
    datasource = (dash_b.DatasourceVariable("datasource").label("Data source").type("prometheus")
                  .current(dash_m.VariableOption(selected=False, text="Prometheus",
                                                 value="liqstress-prometheus"))
                  .hide(0).regex("").multi(False).include_all(False))
    job = _label_values(
        "job", "Job", f'label_values(up{{job=~"{cfg.job_regex}"}}, job)',
        "Prometheus scrape jobs of the liqstress collectors and workers ([tool.liqstress."
        "prometheus] in pyproject.toml; the jobs of prometheus/prometheus.yml).",
        all_value=cfg.job_regex)
    exchange = _label_values(
        "exchange", "Exchange", 'label_values(liqstress_liquidations_total{job=~"$job"}, exchange)')
    window = (dash_b.CustomVariable("window").label("Window")
              .description("Rolling window of the worker's window gauges.")
              .values(",".join(WINDOWS))
              .current(dash_m.VariableOption(selected=True, text="1h", value="1h"))
              .hide(0).multi(False).include_all(False))
    window = extra(window, options=[{"selected": w == "1h", "text": w, "value": w}
                                    for w in WINDOWS])
    coin = _label_values(
        "coin", "Coin", 'label_values(liqstress_coin_price_usd{job=~"$job"}, coin)',
        "Allowlisted coins with a price (LIQSTRESS_COINS), for the Price signals row.")
    return [datasource, job, exchange, window, coin]


def overview_dashboard(cfg: Settings) -> dash_m.Dashboard:
    board = (
        dash_b.Dashboard("liqstress / Overview").uid("liqstress-overview")
        .description("Crypto-derivatives liquidations: long vs short per exchange, rolling "
                     "windows, coins, stress signals, price signals, and the health of the "
                     "websocket sources and the worker.")
        .tags(["liqstress"]).timezone("utc").readonly().tooltip(1).refresh("30s")
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
        .variables(variables(cfg))
    )
    layout(board, [module.row(cfg) for module in
                   (overview, flow, exchanges, stress, prices, sources, worker)])
    model = board.build()
    model.schema_version = SCHEMA_VERSION
    return model


# file name -> dashboard
DASHBOARD_BUILDERS: dict[str, Callable[[Settings], dash_m.Dashboard]] = {
    "liqstress-overview.json": overview_dashboard,
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
