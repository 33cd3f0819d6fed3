"""Real infrastructure for integration tests: the embedded broker, a real Prometheus server,
and small polling/scraping helpers."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import yaml
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from liqstress.infra.broker import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "liqstress" / "schemas"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse /metrics into {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def sample(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def sample_sum(samples: dict[Any, float], name: str, **labels: str) -> float:
    """Sum of every sample of ``name`` whose labels include ``labels`` (e.g. over the
    ``partition`` label of the worker's counters, or over several workers' scrapes)."""
    want = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and want <= set(lbls))


def nonempty_aggs(windows: dict[str, Any]) -> Iterator[tuple[tuple[str, str, str, str], Any]]:
    """Every aggregate with a count in a snapshot's or rollup's ``windows``
    (window -> scope -> name -> side -> Agg), keyed (window, scope, name, side)."""
    for w, scopes in windows.items():
        for scope, names in scopes.items():
            for name, sides in names.items():
                for side, a in sides.items():
                    if a.count:
                        yield (w, scope, name, side), a


def registry_samples(registry: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A registry read like a scrape (``scrape``'s shape)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in registry.collect() for s in fam.samples}


async def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2,
                     what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # the service may not be up yet
            last_exc = exc
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last error: {last_exc!r}")


class Prometheus:
    """A real Prometheus server (Debian's package) scraping ``targets`` every second under
    ``job``, with ``rule_files`` evaluated every second; ``start()``/``stop()`` or a ``with``
    block. ``data`` serves an existing TSDB (e.g. backfilled blocks) instead of a fresh one."""

    def __init__(self, targets: list[str], workdir: Path, rule_files: list[str] | None = None, *,
                 job: str = "liqstress", scrape_interval: str = "1s",
                 data: Path | None = None) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("the prometheus server is not installed (apt-get install -y prometheus)")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape_interval, "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}]
            if targets else [],
        }
        if rule_files:
            config["rule_files"] = rule_files
        self.cfg = workdir / "prometheus.yml"
        self.cfg.write_text(yaml.safe_dump(config))
        self.data = data or workdir / "data"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        log = open(self.workdir / "prometheus.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.cfg}", f"--storage.tsdb.path={self.data}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT)
        if not wait_for_port("127.0.0.1", self.port, 30):
            raise RuntimeError("prometheus did not start; see " + str(self.workdir / "prometheus.log"))
        # The port opens before the TSDB is loaded; queries before /-/ready answer 503.
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline:
                raise RuntimeError("prometheus not ready")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, timeout=10)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def api(self, path: str, **params: Any) -> dict[str, Any]:
        """The API's JSON body, also for a 4xx/5xx answer (status "error")."""
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?" + urllib.parse.urlencode(params,
                                                                                       doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return orjson.loads(resp.read())
        except urllib.error.HTTPError as err:
            return orjson.loads(err.read())

    def instant(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result (at ``at``, default now); it must succeed."""
        body = self.api("query", query=expr, **({"time": at} if at is not None else {}))
        assert body["status"] == "success", (expr, body)
        return body["data"]["result"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.instant(expr)

    def query_map(self, expr: str, *labels: str) -> dict[tuple[str, ...], float]:
        return {tuple(r["metric"].get(lb, "") for lb in labels): float(r["value"][1])
                for r in self.query(expr)}


def liqstress_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "liqstress", *args]


def spawn(args: list[str], logfile: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    log = open(logfile, "wb")  # noqa: SIM115
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=full_env)


def stop_process(proc: subprocess.Popen[bytes], sig: int | None = None, timeout: float = 20) -> int:
    if proc.poll() is None:
        if sig is None:
            proc.terminate()
        else:
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text())


def read_topic(bootstrap: str, topic: str, expect_at_least: int, timeout: float = 30) -> list[bytes]:
    """Everything in ``topic``, read by an independent client (librdkafka)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"verify-{topic}-{time.time()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + timeout
        parts: list[int] = []
        while not parts and time.monotonic() < deadline:
            # The topic may not exist yet (its first record is still on the way).
            md = c.list_topics(topic, timeout=10)
            meta = md.topics.get(topic)
            parts = list(meta.partitions) if meta is not None and meta.error is None else []
            if not parts:
                time.sleep(0.2)
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[bytes] = []
        while time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                if len(out) >= expect_at_least:
                    break
                continue
            if msg.error():
                continue
            out.append(msg.value())
        return out
    finally:
        c.close()


async def dead_letters_of(bootstrap: str, state: Any, records: list[tuple[str, bytes]],
                          events: int, invalid: int, timeout: float = 60) -> list[dict[str, Any]]:
    """Produce ``records`` (topic, value) to a started worker, wait until it counted
    ``events`` events and refused ``invalid`` records, and return its dead letters."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic, value in records:
            await producer.send_and_wait(topic, value=value, key=b"k")

        async def settled() -> None:
            while state.store.events < events or state.invalid < invalid:
                await asyncio.sleep(0.05)
        await asyncio.wait_for(settled(), timeout)
    finally:
        await producer.stop()
    raw = await asyncio.to_thread(read_topic, bootstrap, "liquidations.deadletter", invalid)
    return [orjson.loads(v) for v in raw]
