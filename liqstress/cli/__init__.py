"""``liqstress`` command line. Every option also reads a ``LIQSTRESS_*`` environment variable
(shown in ``--help``); a flag on the command line wins."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, NoReturn

import orjson

from liqstress import __version__
from liqstress.config import (
    ConfigError,
    Topics,
    env,
    normalize_broker,
    parse_port,
    parse_venue_urls,
)
from liqstress.event import DEFAULT_MAX_NOTIONAL_USD
from liqstress.infra import kafka_security
from liqstress.infra.journal import DEFAULT_MAX_BYTES
from liqstress.infra.metrics import Metrics
from liqstress.infra.supervisor import (
    BROKER_METRICS,
    DEFAULT_RECYCLE_BYTES,
    BrokerSupervisor,
    default_data_dir,
    unregister,
    wait_failed_or,
)
from liqstress.infra.topic_admin import ensure_topics, report_topic_retention
from liqstress.streams.collector import DEFAULT_OI_INTERVAL
from liqstress.streams.publisher import KafkaSink, RecordingSink
from liqstress.streams.venues import UnknownVenue, all_venue_ids, parse_exchange_list
from liqstress.topics import ROLES, Retention, TopicSpec, topic_specs

from .pipeline import (
    build_collectors,
    check_venue_urls,
    format_table,
    metrics_server,
    process_recording,
    recording_path_ok,
    replay,
    run_collectors,
    worker_settings,
)

log = logging.getLogger("liqstress")

DEFAULT_EXCHANGES = ",".join(all_venue_ids())


def _env_help(var: str, text: str) -> str:
    return f"{text} [env LIQSTRESS_{var}]"


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line and exit code 2: a bad flag or variable is a configuration
    error like any other, not a page of usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"liqstress: error: {message} (see {self.prog} --help)\n")


def _typed(kind: type, var: str, positive: bool = False, non_negative: bool = False) -> Any:
    """An argparse ``type`` that names the environment variable as well as the flag: argparse
    applies it to the (string) default read from LIQSTRESS_<var> too."""
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be {'an integer' if kind is int else 'a number'}, got {text!r} "
                f"(flag or LIQSTRESS_{var})") from None
        if positive and not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text!r} (flag or LIQSTRESS_{var})")
        if non_negative and not value >= 0:
            raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r} (flag or LIQSTRESS_{var})")
        return value
    convert.__name__ = kind.__name__
    return convert


def _add_common(p: argparse.ArgumentParser, broker: bool = True, exchanges: bool = True,
                metrics_port: bool = True, default_port: int = 9464,
                default_host: str = "127.0.0.1") -> None:
    if broker:
        p.add_argument("--broker", default=env("BROKER"), help=_env_help(
            "BROKER", "Kafka bootstrap host:port (kafka:// prefix and comma lists accepted); "
            "omitted: start the embedded broker where the command allows it"))
        kafka_security.add_arguments(p)
    if exchanges:
        p.add_argument("--exchanges", default=env("EXCHANGES", DEFAULT_EXCHANGES),
                       help=_env_help("EXCHANGES", f"comma list of venues, default "
                                      f"{DEFAULT_EXCHANGES}; known: {', '.join(all_venue_ids())}"))
        p.add_argument("--venue-urls", default=env("VENUE_URLS"), help=_env_help(
            "VENUE_URLS", "override venue endpoints, e.g. binance.ws=ws://127.0.0.1:9000/x,"
            "bybit.rest=http://127.0.0.1:9001 (simulators, proxies)"))
    if metrics_port:
        p.add_argument("--metrics-port", default=env("METRICS_PORT", str(default_port)),
                       help=_env_help("METRICS_PORT", f"port for /metrics (default {default_port}; 0 = any free port)"))
        p.add_argument("--metrics-host", default=env("METRICS_HOST", default_host),
                       help=_env_help("METRICS_HOST", f"address for /metrics (default "
                                      f"{default_host}{_BIND_WHY[default_host]})"))
    p.add_argument("--log-level", default=env("LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"],
                   help=_env_help("LOG_LEVEL", "logging level (default info)"))


def _add_worker_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic-prefix", default=env("TOPIC_PREFIX", ""), help=_env_help(
        "TOPIC_PREFIX", "prefix for every topic name (several deployments on one cluster)"))
    p.add_argument("--app-id", default=env("APP_ID", "liqstress-worker"),
                   help=_env_help("APP_ID", "Faust app id / consumer group (default liqstress-worker)"))
    p.add_argument("--partitions", type=_typed(int, "PARTITIONS", positive=True),
                   default=env("PARTITIONS", "4"),
                   help=_env_help("PARTITIONS", "partitions of topics the worker creates (default 4)"))
    p.add_argument("--refresh-interval", type=_typed(float, "REFRESH_INTERVAL", positive=True),
                   default=env("REFRESH_INTERVAL", "2"),
                   help=_env_help("REFRESH_INTERVAL", "seconds between window recomputes and "
                                  "liquidation.windows snapshots (default 2)"))
    p.add_argument("--session-timeout", type=_typed(float, "SESSION_TIMEOUT", positive=True),
                   default=env("SESSION_TIMEOUT"),
                   help=_env_help("SESSION_TIMEOUT", "consumer group session timeout in seconds "
                                  "(default 10; 6 on the embedded broker, which holds JoinGroup "
                                  "for half of it)"))
    p.add_argument("--coins", default=env("COINS", "BTC,ETH,SOL,XRP,DOGE,BNB"),
                   help=_env_help("COINS", "coins that get their own per-coin metric series"))


def _add_retention(p: argparse.ArgumentParser) -> None:
    p.add_argument("--retention", default=env("RETENTION"), help=_env_help(
        "RETENTION", "per-role retention of the topics it creates, e.g. raw=1h,deadletter=3d "
        f"(roles: {', '.join(ROLES)}; defaults in docs/topics.md)"))


def _add_storage_opts(p: argparse.ArgumentParser, port_flag: str = "--broker-port",
                      default_port: int = 0) -> None:
    """The supervised embedded broker: journal, refill, recycle (docs/storage.md)."""
    p.add_argument(port_flag, dest="broker_port", type=_typed(int, "BROKER_PORT"),
                   default=env("BROKER_PORT", str(default_port)),
                   help=_env_help("BROKER_PORT", f"port of the embedded broker (default "
                                  f"{default_port or 'a free port'}; kept across restarts)"))
    p.add_argument("--data-dir", default=env("DATA_DIR"), help=_env_help(
        "DATA_DIR", f"where the embedded broker's journal lives (default {default_data_dir()})"))
    p.add_argument("--ephemeral", action="store_true",
                   default=bool(env("EPHEMERAL") and env("EPHEMERAL") not in ("0", "false")),
                   help=_env_help("EPHEMERAL", "no journal: history is lost when the broker or "
                                  "liqstress restarts, and recycling is off"))
    _add_retention(p)
    p.add_argument("--journal-max-bytes", type=_typed(int, "JOURNAL_MAX_BYTES"),
                   default=env("JOURNAL_MAX_BYTES", str(DEFAULT_MAX_BYTES)),
                   help=_env_help("JOURNAL_MAX_BYTES", f"byte cap of the journal; the oldest "
                                  f"segments are dropped above it (default {DEFAULT_MAX_BYTES})"))
    p.add_argument("--broker-recycle-bytes", type=_typed(int, "BROKER_RECYCLE_BYTES"),
                   default=env("BROKER_RECYCLE_BYTES", str(DEFAULT_RECYCLE_BYTES)),
                   help=_env_help("BROKER_RECYCLE_BYTES", f"recycle (restart + refill) the "
                                  f"embedded broker when its resident memory passes this "
                                  f"(default {DEFAULT_RECYCLE_BYTES})"))
    p.add_argument("--broker-recycle-interval", type=_typed(float, "BROKER_RECYCLE_INTERVAL"),
                   default=env("BROKER_RECYCLE_INTERVAL", "60"),
                   help=_env_help("BROKER_RECYCLE_INTERVAL", "minimum seconds between two "
                                  "recycles (default 60)"))
    p.add_argument("--broker-restart-attempts", type=_typed(int, "BROKER_RESTART_ATTEMPTS"),
                   default=env("BROKER_RESTART_ATTEMPTS", "5"),
                   help=_env_help("BROKER_RESTART_ATTEMPTS", "failed restarts in a row of a "
                                  "dead embedded broker before liqstress exits with an error "
                                  "(default 5, backoff 0.5 s doubling to 8 s)"))


def _add_max_notional(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-notional-usd", type=_typed(float, "MAX_NOTIONAL_USD", positive=True),
                   default=env("MAX_NOTIONAL_USD", f"{DEFAULT_MAX_NOTIONAL_USD:.0f}"),
                   help=_env_help("MAX_NOTIONAL_USD", f"largest plausible single liquidation in "
                                  f"USD; an event above it is dead-lettered as "
                                  f"implausible_notional (default "
                                  f"{DEFAULT_MAX_NOTIONAL_USD:.0f})"))


def _add_oi_interval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--oi-interval", type=_typed(float, "OI_INTERVAL", non_negative=True),
                   default=env("OI_INTERVAL", f"{DEFAULT_OI_INTERVAL:.0f}"),
                   help=_env_help("OI_INTERVAL", f"seconds between open-interest and funding "
                                  f"polls of every venue (default {DEFAULT_OI_INTERVAL:.0f}; "
                                  f"0 = off)"))


def _backfill_default() -> bool:
    """LIQSTRESS_BACKFILL: on unless 0, false, off or no (as LIQSTRESS_EPHEMERAL reads)."""
    return (env("BACKFILL") or "1").strip().lower() not in ("0", "false", "off", "no")


def _add_backfill(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-backfill", dest="backfill", action="store_false",
                   default=_backfill_default(),
                   help="no warm start: do not read up to the last 24 h of liquidations from "
                        "the venues with a public history on start (default: read it, in the "
                        "background; with a journal only the gap since the last stop) "
                        "[env LIQSTRESS_BACKFILL=0]")


def _add_raw_policy(p: argparse.ArgumentParser) -> None:
    p.add_argument("--raw-frames", default=env("RAW_FRAMES", "liquidations"),
                   choices=["all", "liquidations", "off"], help=_env_help(
                       "RAW_FRAMES", "which venue frames go to liquidations.raw: all, "
                       "liquidations (frames that gave an event or a dead letter, plus REST "
                       "bodies; default) or off"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="liqstress",
        description="Streaming liquidation stress: venue websockets -> Kafka -> Faust windows "
                    "-> Prometheus metrics and derived topics.")
    parser.add_argument("--version", action="version", version=f"liqstress {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("run", help="collectors + worker + /metrics in one process; embedded "
                       "broker when --broker is not given")
    _add_common(p)
    _add_worker_opts(p)
    _add_storage_opts(p)
    _add_raw_policy(p)
    _add_max_notional(p)
    _add_oi_interval(p)
    _add_backfill(p)

    p = sub.add_parser("collect", help="collectors only, publishing to a Kafka cluster")
    _add_common(p, default_host="0.0.0.0")
    p.add_argument("--topic-prefix", default=env("TOPIC_PREFIX", ""),
                   help=_env_help("TOPIC_PREFIX", "prefix for every topic name"))
    p.add_argument("--partitions", type=_typed(int, "PARTITIONS", positive=True),
                   default=env("PARTITIONS", "4"),
                   help=_env_help("PARTITIONS", "partitions of topics the collector creates "
                                  "(default 4)"))
    _add_retention(p)
    _add_raw_policy(p)
    _add_max_notional(p)
    _add_oi_interval(p)
    _add_backfill(p)
    p.add_argument("--data-dir", default=env("DATA_DIR"), help=_env_help(
        "DATA_DIR", "where the warm start keeps its state (<dir>/warm-start/<venue>.json), so "
        "a restart reads only the gap since the last stop; for a broker that keeps the "
        "topics' 30 h (Kafka). Default: none, every start reads the full 24 h"))

    p = sub.add_parser("broker", help="the supervised embedded broker alone (journal, refill, "
                       "recycle), for collect and worker processes on this machine")
    _add_common(p, broker=False, exchanges=False, default_port=9465, default_host="0.0.0.0")
    p.add_argument("--topic-prefix", default=env("TOPIC_PREFIX", ""),
                   help=_env_help("TOPIC_PREFIX", "prefix for every topic name"))
    p.add_argument("--partitions", type=_typed(int, "PARTITIONS", positive=True),
                   default=env("PARTITIONS", "4"),
                   help=_env_help("PARTITIONS", "partitions of the topics (default 4)"))
    _add_storage_opts(p, port_flag="--port", default_port=9092)

    p = sub.add_parser("worker", help="the Faust worker only, against a Kafka cluster")
    _add_common(p, exchanges=False, default_host="0.0.0.0")
    p.add_argument("--exchanges", default=env("EXCHANGES", DEFAULT_EXCHANGES),
                   help=_env_help("EXCHANGES", "venues whose series are created at 0 on start"))
    _add_retention(p)
    _add_worker_opts(p)
    _add_max_notional(p)

    p = sub.add_parser("record", help="record venue frames and REST bodies to a JSON Lines file")
    p.add_argument("--out", required=True, help="output file (JSON Lines)")
    p.add_argument("--duration", type=_typed(float, "DURATION", positive=True),
                   default=env("DURATION"),
                   help=_env_help("DURATION", "stop after this many seconds (default: until Ctrl-C)"))
    _add_common(p, broker=False, metrics_port=False)
    _add_max_notional(p)
    _add_oi_interval(p)
    _add_backfill(p)

    p = sub.add_parser("normalize", help="print the normalized events of a recording as JSON Lines")
    p.add_argument("file")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "warning"),
                   choices=["debug", "info", "warning", "error"])
    _add_max_notional(p)

    p = sub.add_parser("replay", help="drive a recording through Kafka and the worker; print "
                       "window totals at the recording's last timestamp")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    p.add_argument("--serve", action="store_true",
                   help="keep /metrics up after the replay until Ctrl-C")
    _add_common(p, exchanges=False)
    _add_max_notional(p)

    p = sub.add_parser("report", help="write a self-contained HTML report of a recording "
                       "(hourly bars, exchanges, coins, price levels, signals over time)")
    p.add_argument("file")
    p.add_argument("--out", required=True, help="output HTML file")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "warning"),
                   choices=["debug", "info", "warning", "error"])
    _add_max_notional(p)

    from .top import add_parser as add_top_parser
    add_top_parser(sub)
    from .venues import add_parser as add_venues_parser
    add_venues_parser(sub)
    from .demo import add_parser as add_demo_parser
    add_demo_parser(sub, _add_common,
                    [_add_worker_opts, _add_storage_opts, _add_raw_policy, _add_max_notional], env)
    return parser


_BIND_WHY = {"127.0.0.1": "; this machine only: pass 0.0.0.0 to let another host scrape it",
             "0.0.0.0": "; every interface: this command runs in containers scraped by "
                        "Prometheus on another host"}

#: Every stop step is bounded; the watchdog ends the process if they still add up past this.
STOP_DEADLINE = 9.0


def _install_stop(stop: asyncio.Event, on_kill: list[Any] | None = None) -> None:
    """Ctrl-C/SIGTERM set ``stop``; from then a watchdog thread ends the process after
    ``STOP_DEADLINE`` whatever is stuck, and a second signal ends it at once."""
    loop = asyncio.get_running_loop()

    def hard_exit(reason: str) -> None:
        for proc in on_kill or []:
            with contextlib.suppress(Exception):
                proc()
        print(f"liqstress: {reason}; exiting", file=sys.stderr, flush=True)
        os._exit(1)

    def handler() -> None:
        if stop.is_set():
            hard_exit("second stop signal")
        stop.set()
        timer = threading.Timer(STOP_DEADLINE, hard_exit,
                                args=(f"stop took longer than {STOP_DEADLINE:.0f}s",))
        timer.daemon = True
        timer.start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, handler)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread
            pass


_TIMED_OUT = object()


async def _bounded(what: str, aw: Any, timeout: float) -> Any:
    """Await a stop step for at most ``timeout`` seconds; log, never raise. On timeout the
    step is cancelled but not waited for (a stuck client may swallow the cancel), and
    ``_TIMED_OUT`` is returned."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait([task], timeout=timeout)
    if task not in done:
        task.cancel()
        log.error("%s did not finish within %.1fs; going on", what, timeout)
        return _TIMED_OUT
    if task.cancelled():
        return None
    if task.exception() is not None:
        log.error("%s failed: %s", what, task.exception())
        return None
    return task.result()


async def _unless_stopped(stop: asyncio.Event, aw: Any) -> bool:
    """Await ``aw`` unless a stop signal comes first (then cancel it): False if stopped."""
    task = asyncio.ensure_future(aw)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
            return True
        return False
    finally:
        for t in (task, stopper):
            if not t.done():
                t.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)


def _settings_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "app_id": args.app_id,
        "topics": Topics.with_prefix(args.topic_prefix),
        "partitions": args.partitions,
        "refresh_interval": args.refresh_interval,
        "coins": tuple(c.strip().upper() for c in args.coins.split(",") if c.strip()),
        "max_notional_usd": args.max_notional_usd,
    }
    if args.session_timeout is not None:
        kw["session_timeout"] = args.session_timeout
    if getattr(args, "retention", None):
        kw["retention"] = Retention.parse(args.retention)
    return kw


async def _check_retention(bootstrap: str, specs: list[TopicSpec], metrics: Metrics) -> None:
    """Warn once at start about topics without the retention they need (docs/topics.md);
    created first, so a topic the sink has not made yet is not reported as missing."""
    with contextlib.suppress(Exception):  # the sink and worker create them when they can
        await ensure_topics(bootstrap, specs)
    await report_topic_retention(bootstrap, specs, metrics)


def _supervisor(args: argparse.Namespace, metrics: Metrics, topics: Topics,
                retention: Retention) -> BrokerSupervisor:
    data_dir = None if args.ephemeral else Path(args.data_dir or default_data_dir())
    for flag, value in (("--journal-max-bytes", args.journal_max_bytes),
                        ("--broker-recycle-bytes", args.broker_recycle_bytes)):
        if value <= 0:
            raise ConfigError(f"{flag} must be > 0, got {value}")
    return BrokerSupervisor(
        topics, port=parse_port(args.broker_port, "broker port") or None, data_dir=data_dir,
        partitions=args.partitions, retention=retention, metrics=metrics,
        recycle_bytes=args.broker_recycle_bytes,
        recycle_min_interval=args.broker_recycle_interval,
        journal_max_bytes=args.journal_max_bytes,
        max_failures=max(1, args.broker_restart_attempts))


def _collector_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {"max_notional_usd": args.max_notional_usd}
    if getattr(args, "oi_interval", None) is not None:
        kw["oi_interval"] = args.oi_interval
    if getattr(args, "backfill", None) is not None:
        kw["backfill"] = args.backfill
    policy = getattr(args, "raw_frames", None)
    if policy is not None:
        kw["raw_policy"] = policy
    return kw


async def cmd_run(args: argparse.Namespace, with_collectors: bool = True,
                  with_worker: bool = True) -> int:
    metrics = Metrics.create(worker=with_worker)
    exchanges = parse_exchange_list(args.exchanges)
    venue_urls = check_venue_urls(parse_venue_urls(getattr(args, "venue_urls", None)),
                                  exchanges)
    port = parse_port(args.metrics_port, "metrics port")
    broker = normalize_broker(args.broker) if args.broker else None
    if broker is None and not with_worker:
        raise ConfigError("collect needs --broker (or LIQSTRESS_BROKER); use `liqstress run` "
                          "for the embedded broker, or start `liqstress broker`")
    if broker is None and not with_collectors:
        raise ConfigError("worker needs --broker (or LIQSTRESS_BROKER); use `liqstress run` "
                          "for the embedded broker, or start `liqstress broker`")
    topics = Topics.with_prefix(args.topic_prefix)
    retention = Retention.parse(getattr(args, "retention", None))
    partitions = getattr(args, "partitions", 4)
    collector_kw = _collector_kwargs(args)
    supervisor = _supervisor(args, metrics, topics, retention) if broker is None else None
    if supervisor is not None and supervisor.journal is not None \
            and supervisor.data_dir is not None:
        # Durable: the journal refills the windows, so the warm start reads only the gap
        # since the last stop (docs/warm-start.md).
        collector_kw["state_dir"] = supervisor.data_dir / "warm-start"
    if supervisor is None and with_collectors and getattr(args, "data_dir", None):
        # collect: the external broker keeps the topics, so the same gap-only warm start.
        collector_kw["state_dir"] = Path(args.data_dir) / "warm-start"
    if supervisor is None:
        unregister(metrics, BROKER_METRICS)
    stop = asyncio.Event()
    kill: list[Any] = []
    _install_stop(stop, kill)
    app = None
    sink: KafkaSink | None = None
    retention_check: asyncio.Task[None] | None = None
    error: str | None = None
    unsent = 0
    stuck = False
    try:
        if supervisor is not None:
            kill.append(lambda: supervisor.broker.proc and supervisor.broker.proc.kill())
            if not await _unless_stopped(stop, supervisor.start()):
                return 0
        bootstrap = broker or supervisor.bootstrap  # type: ignore[union-attr]
        with metrics_server(metrics, port, args.metrics_host) as bound:
            where = ""
            if supervisor is not None:
                where = (f" (embedded), journal {supervisor.journal.root}"
                         if supervisor.journal else " (embedded), ephemeral")
            print(f"liqstress: broker {bootstrap}{where}, "
                  f"metrics http://{args.metrics_host}:{bound}/metrics", file=sys.stderr, flush=True)
            try:
                if with_worker:
                    settings = worker_settings(bootstrap, supervisor is not None,
                                               **_settings_kwargs(args))
                    metrics.init_exchanges(exchanges)
                    from liqstress.agents.app import create_app
                    app, state = create_app(settings, metrics)
                    if supervisor is not None:
                        set_up = getattr(state, "set_broker_up", None)
                        if set_up is not None:
                            supervisor.on_down(lambda: set_up(False))
                            supervisor.on_up(lambda: set_up(True))
                    try:
                        await _unless_stopped(stop, wait_failed_or(supervisor, app.start()))
                    except Exception as exc:
                        raise ConfigError(f"worker could not start against {bootstrap}: "
                                          f"{exc}") from exc
                if supervisor is not None and supervisor.failed.is_set():
                    error = supervisor.error
                elif not stop.is_set():
                    retention_check = asyncio.create_task(_check_retention(
                        bootstrap, topic_specs(topics, partitions, retention), metrics))
                    if with_collectors:
                        sink = KafkaSink(bootstrap, topics, metrics=metrics,
                                         partitions=partitions, retention=retention)
                        if supervisor is not None:
                            supervisor.sink = sink
                            supervisor.on_down(sink.mark_down)
                        await sink.start()
                        collectors = build_collectors(exchanges, sink, metrics, venue_urls,
                                                      **collector_kw)
                        error = await wait_failed_or(supervisor,
                                                     run_collectors(collectors, stop))
                    else:
                        error = await wait_failed_or(supervisor, stop.wait())
            finally:
                print("liqstress: stopping", file=sys.stderr, flush=True)
                if retention_check is not None:
                    retention_check.cancel()
                if supervisor is not None:
                    await supervisor.stop_watching()
                # Each step bounded, sink and worker side by side: the broker may be gone,
                # the worker stuck joining its group, the sink unable to flush.
                steps = []
                if sink is not None:
                    steps.append(_bounded("kafka sink stop", sink.stop(flush_timeout=3.0), 3.5))
                if app is not None:
                    steps.append(_bounded("worker stop", app.stop(), 4.0))
                results = await asyncio.gather(*steps)
                if sink is not None:
                    unsent = results[0] if isinstance(results[0], int) else sink.backlog
                    stuck = stuck or results[0] is _TIMED_OUT
                if app is not None:
                    stuck = stuck or results[-1] is _TIMED_OUT
    finally:
        if supervisor is not None:
            await _bounded("embedded broker stop", supervisor.stop(timeout=1.5), 2.0)
    rc = 0
    if error:
        print(f"liqstress: error: {error}", file=sys.stderr, flush=True)
        rc = 1
    elif unsent:
        print(f"liqstress: {unsent} records unsent", file=sys.stderr, flush=True)
        rc = 1
    if stuck:
        # A client stuck on the dead broker (Faust's consumer thread) would hold up the
        # interpreter's shutdown past the deadline; everything of ours is stopped.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    return rc


async def cmd_broker(args: argparse.Namespace) -> int:
    """The supervised embedded broker in the foreground, for separate collect/worker processes."""
    metrics = Metrics.create(worker=False)
    # No sink in this process: its unlabelled gauges would read as a sink that is down.
    unregister(metrics, ("sink_up", "publish_backlog_records", "publish_backlog_bytes"))
    port = parse_port(args.metrics_port, "metrics port")
    topics = Topics.with_prefix(args.topic_prefix)
    supervisor = _supervisor(args, metrics, topics, Retention.parse(args.retention))
    stop = asyncio.Event()
    _install_stop(stop, [lambda: supervisor.broker.proc and supervisor.broker.proc.kill()])
    error = None
    try:
        if not await _unless_stopped(stop, supervisor.start()):
            return 0
        with metrics_server(metrics, port, args.metrics_host) as bound:
            journal = supervisor.journal.root if supervisor.journal else "none (ephemeral)"
            refilled = supervisor.last_refill.records if supervisor.last_refill else 0
            print(f"liqstress: broker {supervisor.bootstrap} (embedded), journal {journal}, "
                  f"{refilled} records refilled, metrics http://{args.metrics_host}:{bound}"
                  f"/metrics", file=sys.stderr, flush=True)
            print(supervisor.bootstrap, flush=True)
            error = await wait_failed_or(supervisor, stop.wait())
            print("liqstress: stopping", file=sys.stderr, flush=True)
    finally:
        await _bounded("embedded broker stop", supervisor.stop(timeout=3.0), 4.0)
    if error:
        print(f"liqstress: error: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


async def cmd_record(args: argparse.Namespace) -> int:
    exchanges = parse_exchange_list(args.exchanges)
    venue_urls = check_venue_urls(parse_venue_urls(args.venue_urls), exchanges)
    duration = args.duration
    stop = asyncio.Event()
    _install_stop(stop)
    with open(args.out, "ab") as fh:
        sink = _CountingRecordingSink(fh)
        collectors = build_collectors(exchanges, sink, None, venue_urls,
                                      max_notional_usd=args.max_notional_usd,
                                      oi_interval=args.oi_interval, backfill=args.backfill)
        if duration is not None:
            asyncio.get_running_loop().call_later(duration, stop.set)
        await run_collectors(collectors, stop)
    per_venue = ", ".join(f"{c.venue.id} {sink.by_venue.get(c.venue.id, 0)} lines"
                          f"{f' ({c.reconnects} reconnects)' if c.reconnects else ''}"
                          for c in collectors)
    print(f"liqstress: recorded {sink.lines} lines to {args.out}: {per_venue}", file=sys.stderr)
    if not sink.lines:
        print("liqstress: error: nothing was recorded: no venue answered", file=sys.stderr)
        return 1
    return 0


class _CountingRecordingSink(RecordingSink):
    """Counts lines per venue for the summary ``record`` ends with."""

    def __init__(self, fh: Any) -> None:
        super().__init__(fh)
        self.by_venue: dict[str, int] = {}

    async def raw(self, frame: Any) -> None:
        await super().raw(frame)
        self.by_venue[frame.exchange] = self.by_venue.get(frame.exchange, 0) + 1


def cmd_normalize(args: argparse.Namespace) -> int:
    path = recording_path_ok(args.file)
    out = sys.stdout.buffer

    def on_error(lineno: int, msg: str) -> None:
        print(f"{path}:{lineno}: {msg}", file=sys.stderr)

    with open(path, "rb") as fh:
        res = process_recording(fh, on_error, max_notional_usd=args.max_notional_usd)
    try:
        for ev in res.events:
            out.write(ev.to_json() + b"\n")
        out.flush()
    except BrokenPipeError:
        # `normalize rec.jsonl | head`: the reader is gone. Point stdout at /dev/null so the
        # interpreter's own flush at exit does not print a second error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise ConfigError("output closed before every event was written (broken pipe)") from None
    print(f"liqstress: {len(res.events)} events, {res.errors} bad lines/frames, "
          f"{res.snapshot_dropped} snapshot events dropped, {res.unpriced} unpriced",
          file=sys.stderr)
    return 0


async def cmd_replay(args: argparse.Namespace) -> int:
    recording_path_ok(args.file)
    broker = normalize_broker(args.broker) if args.broker else None
    port = parse_port(args.metrics_port, "metrics port")
    metrics = Metrics.create()
    stop = asyncio.Event()
    _install_stop(stop)

    def report(summary: dict[str, Any]) -> None:
        if args.json:
            sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
        else:
            sys.stdout.write(format_table(summary) + "\n")
        sys.stdout.flush()

    async def serve(result: Any) -> None:
        report(result.summary())
        with metrics_server(metrics, port, args.metrics_host) as bound:
            print(f"liqstress: serving http://{args.metrics_host}:{bound}/metrics until Ctrl-C",
                  file=sys.stderr, flush=True)
            await stop.wait()

    result = await replay(args.file, broker, metrics, serve=serve if args.serve else None,
                          quiet=False, max_notional_usd=args.max_notional_usd)
    if not args.serve:
        report(result.summary())
    return 0


def _use_kafka_security(args: argparse.Namespace) -> None:
    """Adopt the TLS/SASL settings for every Kafka client of this process, before anything
    connects: a bad setting is a one-line error, not a failed connection later."""
    if not hasattr(args, "kafka_security_protocol"):
        return
    security = kafka_security.KafkaSecurity.from_args(args)
    if security.enabled and not args.broker:
        raise ConfigError(f"the embedded broker (Tansu) supports neither TLS nor SASL, but "
                          f"{security.protocol} was asked for: give --broker (or "
                          f"LIQSTRESS_BROKER) for a Kafka cluster that does")
    kafka_security.use(security)
    if security.enabled:
        log.info("kafka security: %s", security)


class RateLimitFilter(logging.Filter):
    """The same warning (logger + message template) at most once per ``interval`` seconds:
    while the broker is down, aiokafka, Faust and our own retries would repeat it many
    times a second. The next line that passes says how many were suppressed."""

    def __init__(self, interval: float = 10.0, level: int = logging.WARNING) -> None:
        super().__init__()
        self.interval = interval
        self.level = level
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.level:
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last, suppressed = self._seen.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._seen[key] = (last, suppressed + 1)
            return False
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[key] = (now, 0)
        if suppressed:
            record.msg = f"{record.msg} ({suppressed} similar suppressed)"
        return True


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    before = set(logging.getLogger().handlers)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    # Only on the handler set up here: one an embedding program (or pytest) owns stays as is.
    for handler in set(logging.getLogger().handlers) - before:
        handler.addFilter(RateLimitFilter())
    started = time.monotonic()
    try:
        _use_kafka_security(args)
        if args.command == "run":
            return asyncio.run(cmd_run(args))
        if args.command == "collect":
            return asyncio.run(cmd_run(args, with_worker=False))
        if args.command == "broker":
            return asyncio.run(cmd_broker(args))
        if args.command == "worker":
            return asyncio.run(cmd_run(args, with_collectors=False))
        if args.command == "record":
            return asyncio.run(cmd_record(args))
        if args.command == "normalize":
            return cmd_normalize(args)
        if args.command == "replay":
            return asyncio.run(cmd_replay(args))
        if args.command == "report":
            from .report import cmd_report
            return cmd_report(args)
        if args.command == "top":
            from .top import cmd_top
            return cmd_top(args)
        if args.command == "venues":
            from .venues import cmd_venues
            return cmd_venues(args)
        if args.command == "demo":
            from .demo import cmd_demo
            return asyncio.run(cmd_demo(args, cmd_run))
    except (ConfigError, UnknownVenue, FileNotFoundError) as exc:
        print(f"liqstress: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        log.debug("%s finished in %.1fs", args.command, time.monotonic() - started)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
