"""Bad configuration never turns into a silent retry: ``--venue-urls`` is checked against the
venues (venue, key, scheme, host) before anything connects, with one line and exit code 2 from a
real ``liqstress`` process. Connection warnings name the venue, connection, URL and the next
retry delay; a periodic line says how many venues are up. ``--max-notional-usd`` reaches every
session that parses frames."""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest

from liqstress.cli import _collector_kwargs, _settings_kwargs, build_parser
from liqstress.cli.pipeline import (
    build_collectors,
    check_venue_urls,
    process_recording,
    run_collectors,
    status_line,
)
from liqstress.config import ConfigError
from liqstress.event import DEFAULT_MAX_NOTIONAL_USD
from liqstress.infra.metrics import Metrics
from liqstress.streams.collector import Collector
from liqstress.streams.sims.base import MemorySink, VenueSim, running
from liqstress.streams.sims.binance import BinanceSim
from liqstress.streams.venues import VENUE_MODULES, all_venue_ids, binance, bitget, get_venue

from .test_cli_errors import assert_one_line_error, liqstress

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


# ---- the CLI, as a user runs it ------------------------------------------------------------------

@pytest.mark.parametrize(("urls", "needles"), [
    ("binance.ws=notaurl", ["binance.ws=notaurl", "not a URL", "ws/wss"]),
    ("binnace.ws=wss://x.example/ws", ["unknown venue 'binnace'", "known: aster, binance,", "okx"]),
    ("binance.node_fills=file:///x", ["binance has no URL key 'node_fills'",
                                      "its keys: ws, prices, rest"]),
    ("bybit.ws=wss://x.example/ws", ["bybit has no URL key 'ws'", "ws_linear, ws_inverse, rest"]),
    ("okx.ws=https://x.example/ws", ["wrong scheme 'https://'", "okx.ws takes a ws/wss URL"]),
    ("okx.rest=wss://x.example", ["wrong scheme 'wss://'", "okx.rest takes a http/https URL"]),
    ("okx.ws=wss:///ws/v5/public", ["no host"]),
    ("okx.ws=ws://x.example:99999/ws", ["not a valid URL", "Port out of range"]),
    ("hyperliquid.node_fills=https://x.example/fills", ["wrong scheme", "takes a file URL"]),
    ("hyperliquid.node_fills=relative/dir", ["not a URL"]),
    ("okx.prices=off", ["okx has no URL key 'prices'"]),
    ("okx", ["venue URL must be venue.key=url"]),
])
def test_bad_venue_urls_are_one_line_and_exit_2_before_anything_connects(
        urls: str, needles: list[str]) -> None:
    started = time.monotonic()
    proc = liqstress("run", "--venue-urls", urls, "--metrics-port", "0", timeout=30)
    elapsed = time.monotonic() - started
    line = assert_one_line_error(proc, *needles)
    assert "broker" not in proc.stderr.replace(line, "")  # nothing was started
    assert elapsed < 10, elapsed  # the interpreter's start-up, not a retry loop


@pytest.mark.parametrize("command", ["collect", "record"])
def test_collect_and_record_check_venue_urls_too(command: str, tmp_path: Path) -> None:
    extra = ["--out", str(tmp_path / "r.jsonl")] if command == "record" else [
        "--broker", "127.0.0.1:1", "--metrics-port", "0"]
    proc = liqstress(command, *extra, env={"LIQSTRESS_VENUE_URLS": "binance.ws=notaurl"},
                     timeout=30)
    assert_one_line_error(proc, "binance.ws=notaurl", "ws/wss")
    assert not (tmp_path / "r.jsonl").exists()


# ---- the check itself ---------------------------------------------------------------------------

async def test_every_simulator_url_set_is_accepted() -> None:
    for venue_id, module in VENUE_MODULES.items():
        sims = importlib.import_module(f"liqstress.streams.sims.{module}")
        (sim_cls,) = [c for n, c in vars(sims).items() if isinstance(c, type)
                      and issubclass(c, VenueSim) and c is not VenueSim]
        async with sim_cls() as sim:
            urls = {venue_id: sim.urls()}
            assert check_venue_urls(urls) == urls


def test_defaults_off_switches_and_node_fills_are_accepted(caplog: pytest.LogCaptureFixture) -> None:
    for venue_id in all_venue_ids():
        spec = get_venue(venue_id)
        assert check_venue_urls({venue_id: dict(spec.default_urls)})
    ok = {"binance": {"prices": "off"},
          "hyperliquid": {"prices": "off", "node_fills": "file:///data/hl/node_fills/hourly"}}
    assert check_venue_urls(ok) == ok
    assert check_venue_urls({"hyperliquid": {"node_fills": "/data/hl/node_fills"}})
    with caplog.at_level(logging.WARNING):
        check_venue_urls({"okx": {"ws": "ws://127.0.0.1:1/ws"}}, ["binance"])
    assert "okx is not among the exchanges run" in caplog.text


def test_optional_keys_are_declared_on_the_spec() -> None:
    kinds = get_venue("hyperliquid").url_kinds()
    assert kinds == {"ws": "ws", "rest": "rest", "prices": "ws", "node_fills": "file"}
    assert get_venue("binance").url_kinds() == {"ws": "ws", "prices": "ws", "rest": "rest"}
    with pytest.raises(ConfigError, match="no URL key 'node_fills'"):
        check_venue_urls({"binance": {"node_fills": "file:///x"}})


async def test_a_collector_given_a_bad_url_fails_at_once_instead_of_retrying() -> None:
    col = Collector(replace(binance.VENUE, default_urls={"ws": "notaurl", "prices": "off"}),
                    MemorySink(), backoff_initial=0.05)
    with pytest.raises(ConfigError, match="bad websocket URL 'notaurl'"):
        await asyncio.wait_for(col.run(), 5)
    assert col.reconnects == 0


# ---- what a running collector says -------------------------------------------------------------

async def test_connection_warnings_name_the_url_and_the_next_retry(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="liqstress.streams.collector")
    port = dead_port()
    url = f"ws://127.0.0.1:{port}/market/ws/!forceOrder@arr"
    col = Collector(binance.VENUE, MemorySink(), urls={"ws": url, "prices": "off"},
                    backoff_initial=0.2, backoff_cap=0.2, oi_interval=0)
    async with running(col):
        await asyncio.sleep(0.5)
    lines = [r.getMessage() for r in caplog.records]
    assert lines, "no warning for a refused connection"
    for line in lines:
        assert re.fullmatch(rf"binance/usdm: cannot connect to {re.escape(url)}: connection "
                            r"refused; retry in \d+\.\d s", line), line
    assert col.down_reason() == "connection refused"


async def test_a_periodic_line_says_how_many_venues_are_up(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="liqstress.cli.pipeline")
    port = dead_port()
    async with BinanceSim() as sim:
        collectors = build_collectors(
            ["binance", "bitget"], MemorySink(), Metrics.create(),
            {"binance": sim.urls(), "bitget": {"ws": f"ws://127.0.0.1:{port}/v3/ws/public"}},
            backoff_initial=0.1, backoff_cap=0.2)
        stop = asyncio.Event()
        runner = asyncio.create_task(run_collectors(collectors, stop, status_interval=0.3))
        try:
            await asyncio.wait_for(collectors[0].subscribed.wait(), 10)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                    "venues up 1/2" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await runner
    summaries = [r for r in caplog.records if r.getMessage().startswith("venues up")]
    assert summaries and all(r.levelno == logging.INFO for r in summaries)
    assert "venues up 1/2: down bitget (connection refused)" in [r.getMessage() for r in summaries]
    assert status_line(collectors[:1]) == "venues up 1/1"


# ---- --max-notional-usd ------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "collect", "record", "normalize", "replay", "worker"])
def test_every_parsing_command_takes_max_notional(command: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIQSTRESS_MAX_NOTIONAL_USD", raising=False)
    extra = {"record": ["--out", "x"], "normalize": ["f"], "replay": ["f"]}.get(command, [])
    args = build_parser().parse_args([command, *extra])
    assert args.max_notional_usd == DEFAULT_MAX_NOTIONAL_USD
    args = build_parser().parse_args([command, *extra, "--max-notional-usd", "2.5e8"])
    assert args.max_notional_usd == 2.5e8
    monkeypatch.setenv("LIQSTRESS_MAX_NOTIONAL_USD", "1e6")
    assert build_parser().parse_args([command, *extra]).max_notional_usd == 1e6
    if command in ("run", "collect", "worker"):
        assert _collector_kwargs(args)["max_notional_usd"] == 2.5e8
    if command in ("run", "worker"):
        assert _settings_kwargs(args)["max_notional_usd"] == 2.5e8


@pytest.mark.parametrize(("command", "value"), [("run", "0"), ("normalize", "lots"),
                                                ("replay", "-5"), ("collect", "nan")])
def test_a_bad_max_notional_is_one_line(command: str, value: str, tmp_path: Path) -> None:
    extra = [str(FIXTURES / "binance.jsonl")] if command in ("normalize", "replay") else []
    proc = liqstress(command, *extra, env={"LIQSTRESS_MAX_NOTIONAL_USD": value}, timeout=30)
    assert_one_line_error(proc, "LIQSTRESS_MAX_NOTIONAL_USD", repr(value))
    proc = liqstress(command, *extra, "--max-notional-usd", value, timeout=30)
    assert_one_line_error(proc, "--max-notional-usd", repr(value))


def test_the_cap_reaches_the_collectors_sessions_and_normalize() -> None:
    (col,) = build_collectors(["okx"], MemorySink(), None, {}, max_notional_usd=1234.0)
    assert col.session.max_notional_usd == 1234.0
    assert Collector(bitget.VENUE, MemorySink()).session.max_notional_usd == DEFAULT_MAX_NOTIONAL_USD
    with pytest.raises(ConfigError, match="max notional"):
        Collector(bitget.VENUE, MemorySink(), max_notional_usd=0)
    with open(FIXTURES / "binance.jsonl", "rb") as fh:
        full = process_recording(fh, lambda n, m: None)
    with open(FIXTURES / "binance.jsonl", "rb") as fh:
        capped = process_recording(fh, lambda n, m: None, max_notional_usd=1.0)
    assert full.events and not capped.events
    assert {d["reason"] for d in capped.deadletters} >= {"implausible_notional"}


def test_normalize_applies_the_cap_end_to_end() -> None:
    rec = str(FIXTURES / "binance.jsonl")
    plain = liqstress("normalize", rec)
    capped = liqstress("normalize", rec, env={"LIQSTRESS_MAX_NOTIONAL_USD": "1"})
    assert plain.returncode == 0 and capped.returncode == 0, (plain.stderr, capped.stderr)
    assert plain.stdout.strip() and not capped.stdout.strip()
    assert "implausible_notional" in capped.stderr
