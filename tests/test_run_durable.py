"""`liqstress run` on the supervised embedded broker, as a process: durable across restarts
(journal under --data-dir), a killed broker is reported and restarted and refilled, a planned
recycle gives memory back with the totals unchanged, and SIGTERM stops it in under 10 s in
every state."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from liqstress.config import Topics
from liqstress.event import LiquidationEvent, make_event
from liqstress.infra.broker import free_port, tansu_binary
from liqstress.streams.publisher import KafkaSink
from liqstress.streams.sims.binance import MARK_PRICE_PATH, BinanceSim, force_order

from .helpers import eventually, liqstress_cmd, read_topic, sample, scrape, spawn, stop_process

EXCHANGES = ("binance", "bybit")
#: Nothing listens there: the collectors retry quietly, events come from the test's sink.
DEAD_VENUES = "binance.ws=ws://127.0.0.1:9/x,binance.prices=ws://127.0.0.1:9/y"


def spread_events(n: int, seed: int, now: float) -> list[LiquidationEvent]:
    """Events spread over the last 20 hours: only the 24 h window holds them all."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        price = rng.choice((60000.0, 3000.0))
        qty = round(rng.uniform(0.01, 3), 4)
        ts = now - rng.uniform(3600, 20 * 3600) - i * 1e-3
        out.append(make_event(
            exchange=rng.choice(EXCHANGES), symbol="BTCUSDT", base="BTC", quote="USDT",
            market="linear", side=rng.choice(("long", "short")), price=price, qty=qty,
            notional_usd=round(qty * price, 2), ts=ts, recv_ts=ts, sampled=False))
    return out


def want_24h(events: list[LiquidationEvent]) -> dict[tuple[str, str], tuple[float, float]]:
    out: dict[tuple[str, str], tuple[float, float]] = {}
    for ev in events:
        c, usd = out.get((ev.exchange, ev.side), (0.0, 0.0))
        out[(ev.exchange, ev.side)] = (c + 1, usd + (ev.notional_usd or 0.0))
    return out


def windows_24h(port: int) -> dict[tuple[str, str], tuple[float, float]]:
    s = scrape(port)
    return {(ex, side): (
        sample(s, "liqstress_window_liquidations", exchange=ex, side=side, window="24h") or 0.0,
        round(sample(s, "liqstress_window_liquidated_usd", exchange=ex, side=side,
                     window="24h") or 0.0, 2))
        for ex in EXCHANGES for side in ("long", "short")}


def rounded(w: dict[tuple[str, str], tuple[float, float]]) -> dict[tuple[str, str], tuple[float, float]]:
    return {k: (c, round(u, 2)) for k, (c, u) in w.items()}


def metric(port: int, name: str, **labels: str) -> float | None:
    return sample(scrape(port), name, **labels)


class Run:
    """A `liqstress run` process with its broker address, metrics port and broker pid."""

    def __init__(self, tmp: Path, name: str, data_dir: Path, *extra: str,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.log = tmp / f"{name}.log"
        self.proc = spawn(liqstress_cmd(
            "run", "--exchanges", "binance", "--venue-urls", DEAD_VENUES,
            "--metrics-port", str(self.port), "--metrics-host", "127.0.0.1",
            "--refresh-interval", "0.5", "--data-dir", str(data_dir), *extra), self.log, env)
        self.bootstrap = ""

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def broker_pid(self) -> int:
        pids = re.findall(r"embedded broker \(Tansu\) on \S+, pid (\d+)", self.text())
        return int(pids[-1])

    async def ready(self) -> None:
        def started() -> str | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"liqstress exited {self.proc.returncode}:\n"
                                     f"{self.text()[-3000:]}")
            m = re.search(r"broker (\S+) \(embedded", self.text())
            return m.group(1) if m else None
        self.bootstrap = await self.expect(started, 40, what="embedded broker address")
        await self.expect(lambda: metric(self.port, "liqstress_worker_ready") == 1, 60,
                         what="worker ready")

    async def expect(self, check: Any, timeout: float, what: str,
                     interval: float = 0.2) -> Any:
        """``eventually``, with the tail of the process log when it times out."""
        try:
            return await eventually(check, timeout, interval=interval, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- liqstress log ---\n{self.text()[-4000:]}") \
                from None

    async def publish_and_count(self, events: list[LiquidationEvent],
                                what: str = "windows") -> dict[tuple[str, str], tuple[float, float]]:
        """Publish ``events`` to the embedded broker and wait (40 s at most) until the 24 h
        windows hold exactly them; those windows."""
        want = rounded(want_24h(events))
        await publish(self.bootstrap, events)
        await self.expect(lambda: windows_24h(self.port) == want, 40, what=what)
        return want

    def kill_broker(self, block: Path | None = None) -> int:
        """SIGKILL the embedded broker, first creating ``block`` (see ``blockable_run``) so that
        it cannot come back; the pid killed."""
        pid = self.broker_pid()
        if block is not None:
            block.touch()
        os.kill(pid, signal.SIGKILL)
        return pid

    def sigterm(self) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took)."""
        started = time.monotonic()
        rc = stop_process(self.proc, signal.SIGTERM, timeout=30)
        return rc, time.monotonic() - started


async def publish(bootstrap: str, events: list[LiquidationEvent]) -> None:
    sink = KafkaSink(bootstrap, Topics())
    await sink.start()
    for ev in events:
        await sink.event(ev)
    assert await sink.stop(flush_timeout=30) == 0


@pytest.mark.timeout(150)
async def test_restart_with_the_same_data_dir_keeps_the_24h_windows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = Run(tmp_path, "first", data)
    try:
        await run.ready()
        await run.publish_and_count(spread_events(60, 1, time.time()),
                                    "24h windows of the published events")
        before = windows_24h(run.port)
        # The journal carries them (flushed within a poll of the broker acknowledging).
        await run.expect(lambda: metric(run.port, "liqstress_journal_records_total",
                                        topic="liquidations") == 60, 10, what="journaled")
    finally:
        rc, took = run.sigterm()
    assert rc == 0, run.text()[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f}s"

    again = Run(tmp_path, "second", data)
    try:
        await again.ready()
        assert metric(again.port, "liqstress_broker_refill_records") >= 60
        await again.expect(lambda: windows_24h(again.port) == before, 40,
                         what="the same 24h windows after the restart")
        # Refilled records are not journaled a second time.
        assert metric(again.port, "liqstress_journal_records_total", topic="liquidations") == 0
    finally:
        rc, took = again.sigterm()
    assert rc == 0, again.text()[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f}s"


def blockable_run(tmp: Path, restart_attempts: int) -> tuple[Run, Path]:
    """A `liqstress run` (``--broker-restart-attempts``) whose Tansu is a wrapper that fails
    while the returned ``block`` file exists: a broker that cannot come back."""
    block = tmp / "block"
    script = tmp / "tansu.sh"
    script.write_text(f"#!/bin/sh\nif [ -e {block} ]; then echo blocked >&2; exit 3; fi\n"
                      f"exec {tansu_binary()} \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return Run(tmp, "run", tmp / "data", "--broker-restart-attempts", str(restart_attempts),
               env={"LIQSTRESS_TANSU_BIN": str(script)}), block


@pytest.mark.timeout(150)
async def test_killed_broker_is_reported_then_restarted_and_refilled(tmp_path: Path) -> None:
    run, block = blockable_run(tmp_path, 100)
    try:
        await run.ready()
        events = spread_events(30, 2, time.time())
        want = await run.publish_and_count(events)
        await run.expect(lambda: metric(run.port, "liqstress_journal_records_total",
                                        topic="liquidations") == 30, 10, what="journaled")
        old_pid = run.kill_broker(block)

        seen: list[tuple[float | None, ...]] = []

        def down() -> bool:
            s = scrape(run.port)
            seen.append(tuple(sample(s, n) for n in ("liqstress_broker_up",
                                                     "liqstress_worker_ready",
                                                     "liqstress_sink_up")))
            return seen[-1] == (0, 0, 0)
        try:
            await run.expect(down, 10, interval=0.1, what="broker, worker and sink down")
        except AssertionError as exc:
            raise AssertionError(f"(broker_up, worker_ready, sink_up) seen: {seen[-5:]}\n"
                                 f"{exc}") from None
        await run.expect(lambda: "restart 1/100 failed" in run.text(), 20,
                         what="a failing restart")
        await asyncio.sleep(2)  # more restarts fail meanwhile (backoff 0.5, 1, 2 s)
        assert run.proc.poll() is None
        lines = len(run.text().splitlines())
        await asyncio.sleep(3)  # while it is down the log stays quiet (rate-limited)
        assert len(run.text().splitlines()) - lines < 40, run.text()[-3000:]

        block.unlink()
        await run.expect(lambda: metric(run.port, "liqstress_broker_up") == 1, 30,
                         what="broker back")
        assert run.broker_pid() != old_pid
        assert metric(run.port, "liqstress_broker_restarts_total", reason="crash") == 1
        assert metric(run.port, "liqstress_broker_refill_records") >= 30
        await run.expect(lambda: metric(run.port, "liqstress_worker_ready") == 1, 40,
                         what="worker ready again")
        # The worker rebuilds its partitions from the refilled topic as its group rejoins.
        await run.expect(lambda: windows_24h(run.port) == want, 40,
                         what="the same windows from the refilled broker")
        # More events after the restart land in the refilled broker and count once.
        more = spread_events(10, 3, time.time())
        await publish(run.bootstrap, more)
        await run.expect(lambda: windows_24h(run.port) == rounded(want_24h(events + more)), 40,
                         what="windows after the restart")
    finally:
        rc, took = run.sigterm()
    assert rc == 0, run.text()[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f}s"


@pytest.mark.timeout(120)
async def test_broker_that_cannot_come_back_gives_one_line_and_exit_1(tmp_path: Path) -> None:
    run, block = blockable_run(tmp_path, 2)
    await run.ready()
    run.kill_broker(block)
    try:
        rc = await asyncio.to_thread(run.proc.wait, 30)
    except subprocess.TimeoutExpired:
        stop_process(run.proc, signal.SIGKILL)
        raise AssertionError(run.text()[-3000:]) from None
    assert rc == 1, run.text()[-3000:]
    errors = [ln for ln in run.text().splitlines() if ln.startswith("liqstress: error:")]
    assert len(errors) == 1
    assert "embedded broker could not be restarted after 2 attempts" in errors[0]


@pytest.mark.timeout(120)
async def test_sigterm_stops_within_10s_while_the_broker_is_down(tmp_path: Path) -> None:
    run, block = blockable_run(tmp_path, 100)
    try:
        await run.ready()
        run.kill_broker(block)
        await run.expect(lambda: metric(run.port, "liqstress_broker_up") == 0, 10,
                         what="broker down")
        await run.expect(lambda: "restart 1/100 failed" in run.text(), 10, what="restart failed")
    finally:
        rc, took = run.sigterm()
    assert took < 10, f"SIGTERM took {took:.1f}s:\n{run.text()[-3000:]}"
    assert rc == 0, run.text()[-3000:]


@pytest.mark.timeout(150)
async def test_recycle_gives_memory_back_and_keeps_the_totals(tmp_path: Path) -> None:
    threshold = 96 * 1024 * 1024
    run = Run(tmp_path, "run", tmp_path / "data", "--broker-recycle-bytes", str(threshold),
              "--broker-recycle-interval", "2")
    try:
        await run.ready()
        want = await run.publish_and_count(spread_events(40, 4, time.time()))
        # ~150 MB of raw frames older than raw retention (6 h): journaled, never refilled.
        old_ms = int((time.time() - 7 * 3600) * 1000)
        producer = AIOKafkaProducer(bootstrap_servers=run.bootstrap, acks="all",
                                    max_batch_size=1 << 20, max_request_size=2 << 20)
        await producer.start()
        try:
            futs = []
            batch = producer.create_batch()
            for _ in range(150_000):
                if batch.append(timestamp=old_ms, key=b"binance", value=b"x" * 1000) is None:
                    futs.append(await producer.send_batch(batch, "liquidations.raw",
                                                          partition=len(futs) % 4))
                    batch = producer.create_batch()
                    batch.append(timestamp=old_ms, key=b"binance", value=b"x" * 1000)
            futs.append(await producer.send_batch(batch, "liquidations.raw", partition=0))
            await asyncio.gather(*futs)
        finally:
            await producer.stop()
        peak = await run.expect(
            lambda: (r := metric(run.port, "liqstress_broker_resident_memory_bytes")) is not None
            and r > threshold and r, 30, what="broker RSS over the threshold")
        await run.expect(lambda: metric(run.port, "liqstress_broker_restarts_total",
                                        reason="recycle") >= 1, 40, what="a recycle")
        await run.expect(lambda: metric(run.port, "liqstress_broker_up") == 1
                         and metric(run.port, "liqstress_worker_ready") == 1, 40,
                         what="up again after the recycle")
        rss = metric(run.port, "liqstress_broker_resident_memory_bytes")
        assert rss is not None and rss < threshold / 2 < peak, (rss, peak)
        assert metric(run.port, "liqstress_broker_restarts_total", reason="crash") == 0
        assert metric(run.port, "liqstress_broker_refill_records") >= 40
        await run.expect(lambda: windows_24h(run.port) == want, 30,
                         what="the same totals after the recycle")
        assert metric(run.port, "liqstress_broker_memory_cap_bytes") > threshold
    finally:
        rc, took = run.sigterm()
    assert rc == 0, run.text()[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f}s"


@pytest.mark.timeout(120)
async def test_broker_command_serves_separate_processes_and_keeps_history(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    port, mport = free_port(), free_port()
    args = liqstress_cmd("broker", "--port", str(port), "--data-dir", str(data),
                         "--metrics-port", str(mport), "--metrics-host", "127.0.0.1")
    log = tmp_path / "broker.log"
    proc = spawn(args, log)
    bootstrap = f"127.0.0.1:{port}"
    events = spread_events(25, 5, time.time())
    try:
        await eventually(lambda: re.search(rf"^{re.escape(bootstrap)}$", log.read_text(), re.M),
                         30, what="bootstrap printed")
        assert metric(mport, "liqstress_broker_up") == 1
        await publish(bootstrap, events)
        await eventually(lambda: metric(mport, "liqstress_journal_records_total",
                                        topic="liquidations") == 25, 10, what="journaled")
    finally:
        started = time.monotonic()
        rc = stop_process(proc, signal.SIGTERM, timeout=30)
        took = time.monotonic() - started
    assert rc == 0 and took < 10, (rc, took, log.read_text()[-2000:])

    proc = spawn(args, tmp_path / "broker2.log")
    try:
        await eventually(lambda: metric(mport, "liqstress_broker_up") == 1, 30, what="up again")
        assert metric(mport, "liqstress_broker_refill_records") == 25
        got = read_topic(bootstrap, "liquidations", 25)
        assert sorted(got) == sorted(ev.to_json() for ev in events)
    finally:
        assert stop_process(proc, signal.SIGTERM, timeout=30) == 0


@pytest.mark.timeout(90)
async def test_collect_exits_1_with_the_unsent_count_when_the_broker_is_gone(
        tmp_path: Path) -> None:
    async with BinanceSim() as bn:
        dead = f"127.0.0.1:{free_port()}"  # nothing listens: no record can be delivered
        log = tmp_path / "collect.log"
        proc = spawn(liqstress_cmd(
            "collect", "--broker", dead, "--exchanges", "binance",
            "--venue-urls", f"binance.ws={bn.ws_url()},binance.prices="
                            f"{bn.ws_url(MARK_PRICE_PATH)}",
            "--metrics-port", "0", "--metrics-host", "127.0.0.1"), log)
        try:
            await eventually(lambda: len(bn.clients) == 2, 30, what="collector connected")
            now_ms = int(time.time() * 1000)
            for i in range(3):
                await bn.push(force_order("BTCUSDT", "SELL", "0.5", str(60000 + i), now_ms + i))
            await eventually(lambda: "records (" in log.read_text()
                             or "waiting" in log.read_text(), 20, what="records waiting")
        finally:
            started = time.monotonic()
            rc = stop_process(proc, signal.SIGTERM, timeout=30)
            took = time.monotonic() - started
    text = log.read_text()
    assert rc == 1, text[-3000:]
    assert took < 10, f"SIGTERM took {took:.1f}s"
    m = re.search(r"^liqstress: (\d+) records unsent$", text, re.M)
    assert m and int(m.group(1)) >= 3, text[-3000:]
