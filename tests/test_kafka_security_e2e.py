"""`liqstress run` against a broker that requires TLS and SASL (SCRAM-SHA-512): the collector's
sink, the topic admin and the Faust worker all log in, events are counted end to end, and no
secret reaches the output. The secured broker is a real Tansu behind the TLS+SASL front of
tests/test_kafka_security.py (Tansu 0.6 implements neither itself)."""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from liqstress.infra.broker import free_port
from liqstress.streams.sims.binance import MARK_PRICE_PATH, BinanceSim, force_order

from .helpers import eventually, liqstress_cmd, spawn, stop_process
from .test_kafka_security import PASSWORD, Certs, certs, secured_broker  # noqa: F401

USER = "liqstress"


def _liquidated(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(s.value for fam in text_string_to_metric_families(text)
               for s in fam.samples if s.name == "liqstress_liquidated_usd_total")


@pytest.mark.timeout(180)
async def test_run_against_a_tls_sasl_broker(certs: Certs, tmp_path: Path) -> None:  # noqa: F811
    pwfile = tmp_path / "kafka-password"
    pwfile.write_text(PASSWORD + "\n")
    with secured_broker(certs, tls=True, users={USER: PASSWORD}) as (bootstrap, gateway):
        async with BinanceSim() as bn:
            port = free_port()
            log = tmp_path / "run.log"
            proc = spawn(liqstress_cmd(
                "run", "--broker", bootstrap, "--exchanges", "binance",
                "--venue-urls", f"binance.ws={bn.ws_url()},binance.prices="
                f"{bn.ws_url(MARK_PRICE_PATH)}", "--metrics-port", str(port),
                "--refresh-interval", "0.5", "--partitions", "1",
                "--kafka-security-protocol", "SASL_SSL", "--kafka-sasl-mechanism",
                "SCRAM-SHA-512", "--kafka-sasl-username", USER,
                "--kafka-ssl-cafile", str(certs.ca)), log,
                env={"LIQSTRESS_KAFKA_SASL_PASSWORD_FILE": str(pwfile)})
            try:
                await eventually(lambda: len(bn.clients) == 2, 90, what="collector to connect")
                now_ms = int(time.time() * 1000)
                await bn.push(force_order("BTCUSDT", "SELL", "0.5", "60000", now_ms))
                await eventually(lambda: _liquidated(port) == 30_000.0, 90, 0.5,
                                 what="the event counted by the worker through the secured broker")
            finally:
                rc = stop_process(proc, signal.SIGINT)
    output = log.read_text(errors="replace")
    assert rc == 0, output[-3000:]
    assert PASSWORD not in output
    assert "SASL_SSL (SCRAM-SHA-512 as liqstress" in output
    # Producer, admin and the worker's consumers each logged in with the configured mechanism.
    assert gateway.logins.count(("SCRAM-SHA-512", USER)) >= 3, gateway.logins


def test_embedded_broker_refuses_security_settings(tmp_path: Path) -> None:
    """Tansu cannot serve TLS or SASL: asking the embedded broker for them is a one-line
    configuration error, not a plaintext broker that silently ignores them."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "liqstress", "run",
                           "--kafka-security-protocol", "SSL",
                           "--kafka-ssl-cafile", str(certs_path_placeholder(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "embedded broker" in proc.stderr and "--broker" in proc.stderr


def certs_path_placeholder(tmp_path: Path) -> Path:
    """A readable CA file is enough to get past validation to the embedded-broker check."""
    from .test_kafka_security import _make_ca

    ca, _ = _make_ca(tmp_path, "placeholder-ca")
    return ca
