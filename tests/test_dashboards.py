"""Static checks of the committed Grafana dashboards against the metric contract.

Metric names used by the dashboards and by the Prometheus rules must be ones that
``liqstress.infra.metrics.Metrics.create()`` registers, and recording-rule names must be defined in
``prometheus/rules``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from liqstress.agents import exporter
from liqstress.infra.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = sorted((ROOT / "grafana" / "provisioning" / "datasources").glob("*.y*ml"))
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
INFINITY = "yesoreyeram-infinity-datasource"
API_REF = {"type": INFINITY, "uid": "${api}"}
MIXED_REF = {"type": "datasource", "uid": "-- Mixed --"}
UIDS = {"liqstress-overview", "liqstress-exchange", "liqstress-coin", "liqstress-stress",
        "liqstress-health"}

RECORDED_RE = re.compile(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b")
METRIC_RE = re.compile(r"liqstress_[a-z0-9_]+")
VAR_RE = re.compile(r"\$\{([A-Za-z_]\w*)(?::\w+)?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]")
SUFFIXES = ("_bucket", "_sum", "_count")


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])


def _targets(dash: dict) -> Iterator[dict]:
    for panel in _panels(dash.get("panels") or []):
        yield from panel.get("targets") or []


def _exprs(dash: dict) -> list[str]:
    exprs = [t["expr"] for t in _targets(dash) if t.get("expr")]
    exprs += [a["expr"] for a in dash.get("annotations", {}).get("list", []) if a.get("expr")]
    return exprs


def _rule_exprs() -> list[str]:
    exprs = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            exprs += [str(r["expr"]) for r in group["rules"]]
    return exprs


def _recorded_names() -> set[str]:
    names = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["record"] for r in group["rules"] if "record" in r}
    return names


def _registered_names() -> set[str]:
    metrics = Metrics.create(CollectorRegistry())
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    # The worker's series come from its scrape-time collector.
    return names | {name for _, name, _, _ in exporter.SPECS.values()}


def _metric_names(expr: str) -> set[str]:
    """liqstress_* metric names in a PromQL expression, recording-rule names excluded."""
    bare = RECORDED_RE.sub(" ", expr)
    names = set()
    for name in METRIC_RE.findall(bare):
        for suffix in SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        names.add(name)
    return names


def _variables(text: str) -> set[str]:
    found = {a or b or c for a, b, c in VAR_RE.findall(text)}
    return {v for v in found if not v.startswith("__")}


def _datasource_uids() -> set[str]:
    uids = set()
    for path in DATASOURCES:
        for ds in yaml.safe_load(path.read_text())["datasources"]:
            uids.add(ds.get("uid"))
    return uids


def test_dashboards_exist() -> None:
    assert DASHBOARDS, "no grafana/dashboards/*.json"


def test_uid_unique_and_id_null() -> None:
    uids = [_load(p).get("uid") for p in DASHBOARDS]
    titles = [_load(p).get("title") for p in DASHBOARDS]
    assert all(uids), "every dashboard needs a fixed uid"
    assert len(set(uids)) == len(uids), f"duplicate dashboard uids: {uids}"
    assert len(set(titles)) == len(titles), f"duplicate dashboard titles: {titles}"
    for path in DASHBOARDS:
        dash = _load(path)
        assert "id" in dash and dash["id"] is None, f"{path.name}: id must be null"


def test_the_dashboards_per_concern() -> None:
    assert {_load(p)["uid"] for p in DASHBOARDS} == UIDS
    assert {p.stem for p in DASHBOARDS} == UIDS, "file name = uid"


def test_overview_dashboard_shape() -> None:
    dash = _load(ROOT / "grafana" / "dashboards" / "liqstress-overview.json")
    assert dash["uid"] == "liqstress-overview"
    assert dash["title"] == "liqstress / Overview"
    assert dash["tags"] == ["liqstress"]
    assert dash["timezone"] == "utc"
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["api"]["type"] == "datasource" and variables["api"]["query"] == INFINITY
    exchange = variables["exchange"]
    assert exchange["multi"] and exchange["includeAll"]
    assert exchange["query"] == ('label_values(liqstress_liquidations_total{job=~"$job", '
                                 'instance=~"$instance"}, exchange)')
    window = variables["window"]
    assert window["type"] == "custom"
    assert window["query"].split(",") == ["1m", "5m", "15m", "1h", "4h", "12h", "24h"]
    assert window["current"]["value"] == "1h"
    assert variables["largest"]["query"].split(",") == ["1h", "4h", "12h", "24h"]
    titles = [p["title"] for p in _panels(dash["panels"])]
    for win in ("1h", "4h", "12h", "24h"):
        assert f"selected exchanges: last {win}" in titles
    assert {"Exchanges: 1h / 4h / 12h / 24h", "Coins ranked by liquidated USD ($window)",
            "Long vs short liquidated USD per interval", "Largest liquidations ($largest)",
            "Live feed: latest liquidations"} <= set(titles)
    # Issue 14: per window, which venues it covers whole and how much came from history.
    assert {"Venues covering the whole window", "Share of each window covered, per venue",
            "Share of each window read back from history, per venue", "Warm start"} <= set(titles)
    covered = next(p for p in _panels(dash["panels"])
                   if p["title"] == "Share of each window covered, per venue")
    props = {prop["id"]: prop["value"] for o in covered["fieldConfig"]["overrides"]
             for prop in o["properties"]}
    # Red below half, orange below the whole window, green only for all of it.
    assert [(st["color"], st["value"]) for st in props["thresholds"]["steps"]] == [
        ("red", None), ("orange", 0.5), ("green", 1)]


def test_every_dashboard_has_job_and_instance_variables() -> None:
    jobs = "|".join(_settings_jobs())
    for path in DASHBOARDS:
        variables = {v["name"]: v for v in _load(path)["templating"]["list"]}
        names = list(variables)
        assert names[0] == "datasource", path.name
        job, instance = variables["job"], variables["instance"]
        assert job["type"] == "query" and job["multi"] and job["includeAll"], path.name
        assert job["current"]["value"] == ["$__all"], "job defaults to all"
        assert job["query"] == f'label_values(up{{job=~"{jobs}"}}, job)'
        assert job["allValue"] == jobs
        assert instance["type"] == "query" and instance["multi"] and instance["includeAll"]
        assert instance["query"] == 'label_values(up{job=~"$job"}, instance)', path.name
        assert instance["current"]["value"] == ["$__all"]
        # The variables a query uses come before it.
        assert names.index("job") < names.index("instance")
        for later in names[names.index("instance") + 1:]:
            assert names.index("instance") < names.index(later)


def _refs(panel: dict) -> list[dict]:
    return [t.get("datasource") for t in panel.get("targets") or []]


def test_every_target_uses_a_datasource_variable() -> None:
    """Prometheus targets use ${datasource}, worker-API targets ${api}; a panel with both is
    Mixed."""
    for path in DASHBOARDS:
        dash = _load(path)
        defined = {v["name"] for v in dash["templating"]["list"]}
        for panel in _panels(dash["panels"]):
            if panel.get("type") == "row":
                continue
            where = f"{path.name}: panel {panel.get('title')!r}"
            refs = _refs(panel)
            assert refs and all(r in (DS_REF, API_REF) for r in refs), where
            kinds = {r["uid"] for r in refs}
            want = DS_REF if kinds == {"${datasource}"} else \
                API_REF if kinds == {"${api}"} else MIXED_REF
            assert panel.get("datasource") == want, where
            if "${api}" in kinds:
                assert "api" in defined, where
        for var in dash["templating"]["list"]:
            if var["type"] == "query":
                assert var["datasource"] == DS_REF, f"{path.name}: variable {var['name']}"


def test_rates_use_rate_interval() -> None:
    for path in DASHBOARDS:
        for expr in _exprs(_load(path)):
            for window in re.findall(r"\b(?:rate|irate)\(.*?\[([^\]]+)\]", expr, re.S):
                assert window == "$__rate_interval", f"{path.name}: {expr}"


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    assert m, f"not a simple duration: {duration!r}"
    return int(m.group(1)) * units[m.group(2)]


def test_increases_use_a_disjoint_interval() -> None:
    """increase() over $__interval with a panel min interval of at least two scrapes: Grafana's
    step equals $__interval, so the points cover adjacent, disjoint ranges and a legend sum is
    the real increase (increase(...[$__rate_interval]) at a 15 s step overlaps 4x)."""
    scrape = min(_seconds(ds["jsonData"]["timeInterval"]) for ds in _datasources().values()
                 if ds["type"] == "prometheus")
    seen = 0
    for path in DASHBOARDS:
        for panel in _panels(_load(path)["panels"]):
            exprs = [t["expr"] for t in panel.get("targets") or [] if t.get("expr")]
            windows = [w for e in exprs
                       for w in re.findall(r"\bincrease\(.*?\[([^\]]+)\]", e, re.S)]
            if not windows:
                continue
            seen += 1
            where = f"{path.name}: panel {panel['title']!r}"
            assert set(windows) == {"$__interval"}, f"{where}: {exprs}"
            assert "interval" in panel, f"{where}: increase() needs a panel min interval"
            assert _seconds(panel["interval"]) >= 2 * scrape, f"{where}: {panel['interval']}"
            assert not any(t.get("interval") for t in panel["targets"]), where
            if "sum" in panel["options"]["legend"].get("calcs", []):
                assert panel["fieldConfig"]["defaults"]["custom"]["drawStyle"] == "bars", where
    assert seen, "no increase() panels found"


# Queries that do not take the job filter, and why.
JOB_EXEMPT = {
    # The spike alerts' own all-job recorded inputs (liqstress.yml aggregates job away).
    "side_window:liqstress_window_liquidated_usd:sum",
    "side_window:liqstress_window_liquidated_usd:sum_avg24h_offset1h",
}
SELECTOR_RE = re.compile(r"\b((?:[a-z_]+:)?liqstress_[a-z0-9_]+(?::[a-z0-9_]+)?)(\{[^}]*\})?")


def test_every_liqstress_selector_filters_by_job() -> None:
    for path in DASHBOARDS:
        dash = _load(path)
        for expr in _exprs(dash):
            for name, matchers in SELECTOR_RE.findall(expr):
                if name in JOB_EXEMPT:
                    continue
                assert 'job=~"$job"' in (matchers or ""), f"{path.name}: {name} in {expr!r}"
                # Recorded series are per-job sums over the instances; raw ones take both.
                if ":" not in name:
                    assert 'instance=~"$instance"' in (matchers or ""), \
                        f"{path.name}: {name} in {expr!r}"
        for var in dash["templating"]["list"]:
            if var["type"] == "query" and var["name"] != "job":
                assert 'job=~"$job"' in var["query"], f"{path.name}: variable {var['name']}"


def _settings_jobs() -> list[str]:
    import tomllib

    prom = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["liqstress"]["prometheus"]
    return [prom["collector-job"], prom["worker-job"]]


def test_job_names_match_the_shipped_prometheus_config() -> None:
    config = yaml.safe_load((ROOT / "prometheus" / "prometheus.yml").read_text())
    scraped = {job["job_name"] for job in config["scrape_configs"]}
    assert set(_settings_jobs()) <= scraped, (_settings_jobs(), scraped)
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for job in config["scrape_configs"]:
        if job["job_name"] in _settings_jobs():
            for sd in job.get("dns_sd_configs", []):
                assert set(sd["names"]) <= set(compose["services"]), job["job_name"]


def test_runbook_links_come_from_the_repository_url() -> None:
    import tomllib

    repo = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    base = repo.rstrip("/") + "/blob/main/docs/runbook.md"
    for path in DASHBOARDS:
        runbook = [link for link in _load(path)["links"] if link["title"] == "Runbook"]
        assert len(runbook) == 1 and runbook[0]["url"] == base, path.name
    dash = _load(ROOT / "grafana" / "dashboards" / "liqstress-health.json")
    alerts = next(p for p in _panels(dash["panels"]) if p["title"] == "Firing liqstress alerts")
    links = [prop["value"] for o in alerts["fieldConfig"]["overrides"]
             for prop in o["properties"] if prop["id"] == "links"]
    assert links and all(link["url"].startswith(base + "#") for link in links[0])


def test_every_variable_used_is_defined() -> None:
    for path in DASHBOARDS:
        dash = _load(path)
        defined = {v["name"] for v in dash["templating"]["list"]}
        used: set[str] = set()
        for expr in _exprs(dash):
            used |= _variables(expr)
        for panel in _panels(dash["panels"]):
            used |= _variables(panel.get("title", ""))
            for target in panel.get("targets") or []:
                used |= _variables(target.get("legendFormat", ""))
                used |= _variables(target.get("url", ""))
        assert used <= defined, f"{path.name}: undefined variables {sorted(used - defined)}"


def test_dashboard_metrics_are_registered() -> None:
    registered = _registered_names()
    recorded = _recorded_names()
    for path in DASHBOARDS:
        for expr in _exprs(_load(path)):
            unknown = _metric_names(expr) - registered
            assert not unknown, f"{path.name}: unregistered metrics {sorted(unknown)} in {expr!r}"
            undefined = set(RECORDED_RE.findall(expr)) - recorded
            assert not undefined, f"{path.name}: undefined recording rules {sorted(undefined)}"


def test_rule_metrics_are_registered() -> None:
    registered = _registered_names()
    recorded = _recorded_names()
    exprs = _rule_exprs()
    assert exprs
    for expr in exprs:
        unknown = _metric_names(expr) - registered
        assert not unknown, f"rules: unregistered metrics {sorted(unknown)} in {expr!r}"
        undefined = set(RECORDED_RE.findall(expr)) - recorded
        assert not undefined, f"rules: undefined recording rules {sorted(undefined)}"


def test_metric_name_extraction() -> None:
    expr = (
        'sum(rate(liqstress_x_seconds_bucket[5m])) / '
        'side_window:liqstress_window_liquidated_usd_long_per_total:ratio'
    )
    assert _metric_names(expr) == {"liqstress_x_seconds"}
    assert _registered_names() >= {
        "liqstress_liquidations_total",
        "liqstress_window_liquidated_usd",
        "liqstress_source_up",
    }


def _datasources() -> dict[str, dict]:
    return {ds["uid"]: ds for path in DATASOURCES
            for ds in yaml.safe_load(path.read_text())["datasources"]}


def test_datasource_provisioning_matches_dashboards() -> None:
    sources = _datasources()
    assert set(sources) == {"liqstress-prometheus", "liqstress-api"}
    prom = sources["liqstress-prometheus"]
    assert prom["type"] == "prometheus" and prom["isDefault"]
    assert prom["url"] == "http://prometheus:9090"
    assert prom["jsonData"]["timeInterval"] == "15s"
    api = sources["liqstress-api"]
    assert api["type"] == INFINITY and not api["isDefault"]
    for path in DASHBOARDS:
        dash = _load(path)
        ds_vars = {v["name"]: v for v in dash["templating"]["list"] if v["type"] == "datasource"}
        assert set(ds_vars) <= {"datasource", "api"}, path.name
        assert ds_vars["datasource"]["current"]["value"] == "liqstress-prometheus", path.name
        if "api" in ds_vars:
            assert ds_vars["api"]["query"] == INFINITY
            assert ds_vars["api"]["current"]["value"] == "liqstress-api", path.name


def test_infinity_datasource_points_at_the_worker_api() -> None:
    """The API is served on the worker's /metrics port; compose scales the worker service, and
    any replica answers with the global view."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    worker = compose["services"]["worker"]
    port = worker["command"][worker["command"].index("--metrics-port") + 1]
    assert port in [str(p) for p in worker["expose"]]
    api = _datasources()["liqstress-api"]
    assert api["url"] == f"http://worker:{port}"
    assert api["jsonData"]["allowedHosts"] == [api["url"]]
    assert api["access"] == "proxy" and api["editable"] is False


def test_compose_installs_the_pinned_infinity_plugin() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    env = grafana["environment"]
    plugins = env.get("GF_PLUGINS_PREINSTALL") or env.get("GF_INSTALL_PLUGINS") or ""
    pinned = [p for p in re.split(r"[,\s]+", plugins) if p.startswith(INFINITY)]
    assert len(pinned) == 1, plugins
    assert re.fullmatch(rf"{INFINITY}@\d+\.\d+\.\d+", pinned[0]), pinned
    assert "worker" in grafana["depends_on"]
    mounts = [v.split(":")[:2] for v in grafana["volumes"] if isinstance(v, str)]
    assert ["./grafana/provisioning", "/etc/grafana/provisioning"] in mounts
    assert (ROOT / "grafana" / "provisioning" / "datasources" / "liqstress-api.yaml").is_file()


def _api_targets(dash: dict) -> Iterator[tuple[dict, dict]]:
    for panel in _panels(dash["panels"]):
        for target in panel.get("targets") or []:
            if (target.get("datasource") or {}).get("type") == INFINITY:
                yield panel, target


def test_every_infinity_target_is_a_route_of_the_worker_api() -> None:
    from urllib.parse import parse_qs, urlsplit

    api_src = (ROOT / "agents" / "api.py").read_text()
    routes = set(re.findall(r'"(/api/v1/\w+)": self\.\w+', api_src))
    assert routes == {"/api/v1/liquidations", "/api/v1/largest", "/api/v1/windows",
                      "/api/v1/levels"}
    seen = set()
    for path in DASHBOARDS:
        for panel, target in _api_targets(_load(path)):
            where = f"{path.name}: panel {panel['title']!r}"
            url = urlsplit(target["url"])
            assert not url.scheme and not url.netloc, f"{where}: relative to the datasource"
            assert url.path in routes, where
            seen.add(url.path)
            params = parse_qs(url.query)
            for name in params:  # the parameters docs/api.md lists for the route
                assert re.search(rf"\b{name}\b", api_src), (where, name)
            assert target["type"] == "json" and target["parser"] == "backend", where
            assert target["source"] == "url" and target["format"] == "table", where
            assert target["root_selector"] in ("", "liquidations", "rows", "cells", "prices")
            assert target["columns"] and all(c["selector"] for c in target["columns"]), where
    assert {"/api/v1/liquidations", "/api/v1/largest", "/api/v1/levels"} <= seen


def _links(obj: object) -> Iterator[str]:
    if isinstance(obj, dict):
        if isinstance(obj.get("url"), str) and "title" in obj:
            yield obj["url"]
        for value in obj.values():
            yield from _links(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _links(value)


def test_drill_down_links_point_to_existing_dashboards() -> None:
    dashboards = {_load(p)["uid"]: _load(p) for p in DASHBOARDS}
    targets: set[str] = set()
    for uid, dash in dashboards.items():
        for url in _links(dash["panels"]):
            m = re.match(r"/d/([\w-]+)/[\w-]+\?(.*)", url)
            if not m:
                continue
            assert m.group(1) in dashboards, (uid, url)
            target_vars = {v["name"] for v in dashboards[m.group(1)]["templating"]["list"]}
            for param in m.group(2).split("&"):
                var = re.fullmatch(r"var-(\w+)=.*", param)
                if var:
                    assert var.group(1) in target_vars, (uid, url)
            assert "${job:queryparam}" in url and "${instance:queryparam}" in url, url
            assert "${__url_time_range}" in url, url
            targets.add(m.group(1))
        # Every dashboard lists the others (tag dropdown, variables and time kept).
        (menu,) = [link for link in dash["links"] if link["type"] == "dashboards"]
        assert menu["tags"] == ["liqstress"] and menu["includeVars"] and menu["keepTime"]
    assert {"liqstress-exchange", "liqstress-coin"} <= targets


def test_dashboard_provider_points_at_dashboards() -> None:
    providers = []
    for path in (ROOT / "grafana" / "provisioning" / "dashboards").glob("*.y*ml"):
        providers += yaml.safe_load(path.read_text())["providers"]
    assert [p["options"]["path"] for p in providers] == ["/etc/grafana/dashboards"]
    assert all(p["type"] == "file" for p in providers)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Substitute the template variables and let promtool parse every query."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found on PATH: install the 'prometheus' package"
    values = {"exchange": "binance|bybit", "window": "1h", "datasource": "x",
              "job": "liqstress-worker"}
    rules = []
    for path in DASHBOARDS:
        for expr in _exprs(_load(path)):
            text = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
            text = text.replace("$__range", "1h")
            text = VAR_RE.sub(lambda m: values.get(m.group(1) or m.group(2) or m.group(3), "x"), text)
            rules.append({"record": f"dashboard:check_{len(rules)}:expr", "expr": text})
    assert rules
    rule_file = tmp_path / "dashboard_exprs.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    proc = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}\n{rule_file.read_text()}"
