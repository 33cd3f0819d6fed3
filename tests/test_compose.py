"""Static checks of docker-compose.yml against the Prometheus and Grafana config.

Docker cannot run here, so these tests pin down what a typo would break: the Kafka KRaft
settings, scrape targets that match compose services and ports, and mounted paths.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "prometheus" / "prometheus.yml"
PYPROJECT = ROOT / "pyproject.toml"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict:
    return _compose()["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def _option(args: list[str], name: str) -> str:
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {args}")


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' -> {NAME: (host, port)}."""
    out = {}
    for item in value.split(","):
        m = re.fullmatch(r"(\w+)://([^:]*):(\d+)", item.strip())
        assert m, f"bad listener {item!r}"
        out[m.group(1)] = (m.group(2), int(m.group(3)))
    return out


def _bind_mounts(service: dict) -> list[tuple[str, str]]:
    mounts = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            if vol.get("type") == "bind":
                mounts.append((vol["source"], vol["target"]))
            continue
        source, target = vol.split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def _scrape_jobs() -> dict[str, dict]:
    config = yaml.safe_load(PROMETHEUS.read_text())
    return {job["job_name"]: job for job in config["scrape_configs"]}


def _configured_jobs() -> dict[str, str]:
    """The scrape job names the rules select and the dashboards list, from their one setting
    ([tool.liqstress.prometheus] in pyproject.toml): {"collector": ..., "worker": ...}."""
    jobs = tomllib.loads(PYPROJECT.read_text())["tool"]["liqstress"]["prometheus"]
    return {"collector": jobs["collector-job"], "worker": jobs["worker-job"]}


def test_services_present_and_style() -> None:
    compose = _compose()
    assert "version" not in compose, "the top-level version key is obsolete"
    services = compose["services"]
    assert {"kafka", "collector", "worker", "prometheus", "alertmanager", "grafana"} <= set(services)
    for name, svc in services.items():
        assert svc.get("restart") == "unless-stopped", name
        image = svc.get("image", "")
        if "build" not in svc:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{name}: image must be pinned: {image!r}"
            assert not image.endswith(":latest"), f"{name}: do not use :latest"


def test_kafka_kraft_essentials() -> None:
    kafka = _services()["kafka"]
    assert kafka["image"] == "apache/kafka:4.0.0"
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    listeners = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocol_map = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert controller in listeners
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:{listeners[controller][1]}"
    assert set(listeners) <= set(protocol_map), "every listener needs a security protocol"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    # containers use kafka:19092, the host uses localhost:9092
    assert ("kafka", 19092) in advertised.values()
    assert ("localhost", 9092) in advertised.values()
    for name, (_, port) in advertised.items():
        assert listeners[name][1] == port, f"advertised {name} port differs from its listener"
    assert "127.0.0.1:9092:9092" in [str(p) for p in kafka.get("ports", [])]
    # one broker: Kafka's default replication factor of 3 cannot be met
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "1"
    health = " ".join(kafka["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in health


def test_app_services_use_internal_listener() -> None:
    services = _services()
    for name, subcommand in (("collector", "collect"), ("worker", "worker")):
        svc = services[name]
        assert "build" in svc, f"{name} is built from the repository Dockerfile"
        args = _command(svc)
        assert args[0] == subcommand
        assert _option(args, "--broker") == "kafka://kafka:19092"
        from liqstress.streams.venues import all_venue_ids

        # Every venue the compose stack collects is a registered one, and none is left out.
        assert sorted(_env(svc)["LIQSTRESS_EXCHANGES"].split(",")) == sorted(all_venue_ids())
        assert svc["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim\b", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert 'ENTRYPOINT ["liqstress"]' in text
    assert (ROOT / ".dockerignore").is_file()


def test_scrape_targets_match_services() -> None:
    """Each liqstress job discovers its service's replicas through Docker's DNS (one A record
    per replica) on the port the service serves /metrics on, so scaled replicas are all
    scraped; a static target would hit one replica at random."""
    services = _services()
    jobs = _scrape_jobs()
    for role, subcommand in (("collector", "collect"), ("worker", "worker")):
        job = _configured_jobs()[role]
        assert job in jobs, f"prometheus.yml has no scrape job {job} ([tool.liqstress.prometheus])"
        cfg = jobs[job]
        assert "static_configs" not in cfg, f"{job}: a static target sees one replica only"
        (sd,) = cfg["dns_sd_configs"]
        (service,) = sd["names"]
        assert service in services, f"{job} discovers {service!r}, which is not a compose service"
        assert _command(services[service])[0] == subcommand, f"{job}: {service} is not the {role}"
        assert sd["type"] == "A", f"{job}: A records (one per replica); SRV needs no port"
        port = _option(_command(services[service]), "--metrics-port")
        assert str(sd["port"]) == port, job
        assert port in [str(p) for p in services[service].get("expose", [])], job
    config = yaml.safe_load(PROMETHEUS.read_text())
    am_targets = [
        t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"]
        for t in sc["targets"]
    ]
    assert am_targets == ["alertmanager:9093"]
    assert "127.0.0.1:9093:9093" in [str(p) for p in services["alertmanager"].get("ports", [])]


def test_mounted_paths_exist() -> None:
    compose = _compose()
    named = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for vol in svc.get("volumes") or []:
            source = vol["source"] if isinstance(vol, dict) else vol.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in named, f"{name}: named volume {source} is not declared"
        for source, _ in _bind_mounts(svc):
            assert (ROOT / source).resolve().exists(), f"{name}: {source} does not exist"


def test_config_paths_line_up() -> None:
    services = _services()
    prom_mounts = dict(_bind_mounts(services["prometheus"]))
    assert prom_mounts["./prometheus"] == "/etc/prometheus"
    prom_args = _command(services["prometheus"])
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom_args

    am_mounts = dict(_bind_mounts(services["alertmanager"]))
    assert am_mounts["./alertmanager/alertmanager.yml"] == "/etc/alertmanager/alertmanager.yml"
    am = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())
    assert am["route"]["group_by"] == ["alertname", "exchange"]
    assert am["route"]["receiver"] in {r["name"] for r in am["receivers"]}

    grafana_mounts = dict(_bind_mounts(services["grafana"]))
    assert grafana_mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = yaml.safe_load(
        (ROOT / "grafana" / "provisioning" / "dashboards" / "liqstress.yaml").read_text()
    )["providers"]
    for provider in providers:
        assert grafana_mounts["./grafana/dashboards"] == provider["options"]["path"]


def test_worker_scales() -> None:
    """`docker compose up --scale worker=3` needs replicas that cannot collide: no fixed
    container name or hostname, no host port, no per-replica volume."""
    for name in ("worker", "collector"):
        svc = _services()[name]
        assert "container_name" not in svc, name
        assert "hostname" not in svc, name
        assert not svc.get("ports"), f"{name}: a host port can be bound by one replica only"
        assert not svc.get("volumes"), f"{name}: replicas would share the volume"
        # Every replica joins the same consumer group (the default app id), sharing partitions.
        assert "--app-id" not in _command(svc) and "LIQSTRESS_APP_ID" not in _env(svc), name


def test_scrape_job_names_match_the_setting() -> None:
    """prometheus.yml scrapes liqstress under exactly the job names the rules and dashboards
    are built with (docs/observability.md, "Scrape jobs and runbook links")."""
    liqstress_jobs = set(_scrape_jobs()) - {"prometheus"}
    assert liqstress_jobs == set(_configured_jobs().values())


def test_alert_job_selectors_match_scrape_jobs() -> None:
    """Alerts select targets by job; a renamed scrape job would silence them."""
    jobs = set(_scrape_jobs())
    selected: set[str] = set()
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        text = path.read_text()
        selected |= set(re.findall(r'job="([^"]+)"', text))
        for alternatives in re.findall(r'job=~"([^"]+)"', text):
            selected |= set(alternatives.split("|"))
    assert selected, "no job selectors found in prometheus/rules"
    assert selected <= jobs, f"rules select jobs with no scrape config: {sorted(selected - jobs)}"
    assert selected == set(_configured_jobs().values()), "rules not built from pyproject.toml's jobs"


# ---- locked down by default (README "Security") ----------------------------------------------

def test_host_ports_are_bound_to_loopback() -> None:
    published = 0
    for name, svc in _services().items():
        for port in svc.get("ports") or []:
            published += 1
            spec = port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port}"
            assert str(spec).startswith("127.0.0.1:"), f"{name}: {spec} is published on every interface"
    assert published >= 4  # Kafka, Prometheus, Alertmanager, Grafana


def test_no_default_admin_password_and_no_anonymous_access() -> None:
    env = _env(_services()["grafana"])
    password = env["GF_SECURITY_ADMIN_PASSWORD"]
    # ${VAR:?message}: compose refuses to start without it, so there is no default to guess.
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:\?[^}]+\}", password), password
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"


def test_no_lifecycle_api_and_no_topic_auto_create() -> None:
    services = _services()
    assert not any("lifecycle" in arg for arg in _command(services["prometheus"]))
    assert _env(services["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_images_are_pinned_exactly() -> None:
    for name, svc in _services().items():
        if "build" in svc:
            continue
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not an exact version"
    base = re.search(r"^FROM (\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert base and re.search(r":\d+\.\d+\.\d+-", base.group(1)), base


def test_alertmanager_config_and_webhook_example_are_valid(tmp_path: Path) -> None:
    """amtool (Debian's prometheus-alertmanager) checks the shipped config, and the webhook
    receiver the config's comment documents, so the example a user copies works."""
    amtool = shutil.which("amtool")
    assert amtool, "amtool not found: install the 'prometheus-alertmanager' package"
    shipped = ROOT / "alertmanager" / "alertmanager.yml"
    proc = subprocess.run([amtool, "check-config", str(shipped)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = shipped.read_text()
    example = "\n".join(line[4:] for line in text.splitlines() if line.startswith("#     ")
                        or line.startswith("#   receivers:"))
    assert "webhook_configs" in example
    config = yaml.safe_load(text)
    config["receivers"] = yaml.safe_load(example)["receivers"]
    candidate = tmp_path / "alertmanager.yml"
    candidate.write_text(yaml.safe_dump(config))
    proc = subprocess.run([amtool, "check-config", str(candidate)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # amtool does look inside receivers: a broken webhook URL fails the same check.
    config["receivers"][0]["webhook_configs"][0]["url"] = "not a url"
    candidate.write_text(yaml.safe_dump(config))
    proc = subprocess.run([amtool, "check-config", str(candidate)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
