"""``liqstress`` command line. Every option also reads a ``LIQSTRESS_*`` environment variable
(shown in ``--help``); a flag on the command line wins."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from typing import Any

import orjson

from streams.publisher import KafkaSink, RecordingSink
from streams.venues import UnknownVenue, all_venue_ids, parse_exchange_list

from . import __version__
from .config import (
    ConfigError,
    Topics,
    env,
    normalize_broker,
    parse_port,
    parse_venue_urls,
)
from .metrics import Metrics
from .pipeline import (
    broker_or_embedded,
    build_collectors,
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


def _add_common(p: argparse.ArgumentParser, broker: bool = True, exchanges: bool = True,
                metrics_port: bool = True, default_port: int = 9464) -> None:
    if broker:
        p.add_argument("--broker", default=env("BROKER"), help=_env_help(
            "BROKER", "Kafka bootstrap host:port (kafka:// prefix and comma lists accepted); "
            "omitted: start the embedded broker where the command allows it"))
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
        p.add_argument("--metrics-host", default=env("METRICS_HOST", "0.0.0.0"),
                       help=_env_help("METRICS_HOST", "address for /metrics (default 0.0.0.0)"))
    p.add_argument("--log-level", default=env("LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"],
                   help=_env_help("LOG_LEVEL", "logging level (default info)"))


def _add_worker_opts(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic-prefix", default=env("TOPIC_PREFIX", ""), help=_env_help(
        "TOPIC_PREFIX", "prefix for every topic name (several deployments on one cluster)"))
    p.add_argument("--app-id", default=env("APP_ID", "liqstress-worker"),
                   help=_env_help("APP_ID", "Faust app id / consumer group (default liqstress-worker)"))
    p.add_argument("--partitions", type=int, default=int(env("PARTITIONS", "4") or 4),
                   help=_env_help("PARTITIONS", "partitions of topics the worker creates (default 4)"))
    p.add_argument("--refresh-interval", type=float,
                   default=float(env("REFRESH_INTERVAL", "2") or 2),
                   help=_env_help("REFRESH_INTERVAL", "seconds between window recomputes and "
                                  "liquidation.windows snapshots (default 2)"))
    p.add_argument("--session-timeout", type=float, default=None,
                   help=_env_help("SESSION_TIMEOUT", "consumer group session timeout in seconds "
                                  "(default 10; 6 on the embedded broker, which holds JoinGroup "
                                  "for half of it)"))
    p.add_argument("--coins", default=env("COINS", "BTC,ETH,SOL,XRP,DOGE,BNB"),
                   help=_env_help("COINS", "coins that get their own per-coin metric series"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liqstress",
        description="Streaming liquidation stress: venue websockets -> Kafka -> Faust windows "
                    "-> Prometheus metrics and derived topics.")
    parser.add_argument("--version", action="version", version=f"liqstress {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="collectors + worker + /metrics in one process; embedded "
                       "broker when --broker is not given")
    _add_common(p)
    _add_worker_opts(p)

    p = sub.add_parser("collect", help="collectors only, publishing to a Kafka cluster")
    _add_common(p)
    p.add_argument("--topic-prefix", default=env("TOPIC_PREFIX", ""),
                   help=_env_help("TOPIC_PREFIX", "prefix for every topic name"))

    p = sub.add_parser("worker", help="the Faust worker only, against a Kafka cluster")
    _add_common(p, exchanges=False)
    p.add_argument("--exchanges", default=env("EXCHANGES", DEFAULT_EXCHANGES),
                   help=_env_help("EXCHANGES", "venues whose series are created at 0 on start"))
    _add_worker_opts(p)

    p = sub.add_parser("record", help="record venue frames and REST bodies to a JSON Lines file")
    p.add_argument("--out", required=True, help="output file (JSON Lines)")
    p.add_argument("--duration", type=float, default=None,
                   help=_env_help("DURATION", "stop after this many seconds (default: until Ctrl-C)"))
    _add_common(p, broker=False, metrics_port=False)

    p = sub.add_parser("normalize", help="print the normalized events of a recording as JSON Lines")
    p.add_argument("file")
    p.add_argument("--log-level", default=env("LOG_LEVEL", "warning"),
                   choices=["debug", "info", "warning", "error"])

    p = sub.add_parser("replay", help="drive a recording through Kafka and the worker; print "
                       "window totals at the recording's last timestamp")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    p.add_argument("--serve", action="store_true",
                   help="keep /metrics up after the replay until Ctrl-C")
    _add_common(p, exchanges=False)
    return parser


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread
            pass


def _settings_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "app_id": args.app_id,
        "topics": Topics.with_prefix(args.topic_prefix),
        "partitions": args.partitions,
        "refresh_interval": args.refresh_interval,
        "coins": tuple(c.strip().upper() for c in args.coins.split(",") if c.strip()),
    }
    st = args.session_timeout if args.session_timeout is not None else env("SESSION_TIMEOUT")
    if st is not None:
        kw["session_timeout"] = float(st)
    return kw


async def cmd_run(args: argparse.Namespace, with_collectors: bool = True,
                  with_worker: bool = True) -> int:
    metrics = Metrics.create(worker=with_worker)
    exchanges = parse_exchange_list(args.exchanges)
    venue_urls = parse_venue_urls(getattr(args, "venue_urls", None))
    port = parse_port(args.metrics_port, "metrics port")
    broker = normalize_broker(args.broker) if args.broker else None
    if broker is None and not with_worker:
        raise ConfigError("collect needs --broker (or LIQSTRESS_BROKER); use `liqstress run` "
                          "for the embedded broker")
    if broker is None and not with_collectors:
        raise ConfigError("worker needs --broker (or LIQSTRESS_BROKER); use `liqstress run` "
                          "for the embedded broker")
    stop = asyncio.Event()
    _install_stop(stop)
    async with broker_or_embedded(broker) as (bootstrap, embedded):
        topics = Topics.with_prefix(args.topic_prefix)
        with metrics_server(metrics, port, args.metrics_host) as bound:
            print(f"liqstress: broker {bootstrap}{' (embedded)' if embedded else ''}, "
                  f"metrics http://{args.metrics_host}:{bound}/metrics", file=sys.stderr, flush=True)
            app = None
            if with_worker:
                settings = worker_settings(bootstrap, embedded, **_settings_kwargs(args))
                metrics.init_exchanges(exchanges)
                from agents.app import create_app
                app, _state = create_app(settings, metrics)
                try:
                    await app.start()
                except Exception as exc:
                    await app.stop()
                    raise ConfigError(f"worker could not start against {bootstrap}: {exc}") from exc
            sink = None
            try:
                if with_collectors:
                    sink = KafkaSink(bootstrap, topics)
                    await sink.start()
                    collectors = build_collectors(exchanges, sink, metrics, venue_urls)
                    await run_collectors(collectors, stop)
                else:
                    await stop.wait()
            finally:
                print("liqstress: stopping", file=sys.stderr, flush=True)
                if sink:
                    await sink.stop()
                if app is not None:
                    await app.stop()
    return 0


async def cmd_record(args: argparse.Namespace) -> int:
    exchanges = parse_exchange_list(args.exchanges)
    venue_urls = parse_venue_urls(args.venue_urls)
    duration = args.duration if args.duration is not None else (
        float(env("DURATION")) if env("DURATION") else None)
    stop = asyncio.Event()
    _install_stop(stop)
    with open(args.out, "ab") as fh:
        sink = RecordingSink(fh)
        collectors = build_collectors(exchanges, sink, None, venue_urls)
        if duration is not None:
            asyncio.get_running_loop().call_later(duration, stop.set)
        await run_collectors(collectors, stop)
    print(f"liqstress: recorded {sink.lines} lines to {args.out}", file=sys.stderr)
    return 0


def cmd_normalize(args: argparse.Namespace) -> int:
    path = recording_path_ok(args.file)
    out = sys.stdout.buffer

    def on_error(lineno: int, msg: str) -> None:
        print(f"{path}:{lineno}: {msg}", file=sys.stderr)

    with open(path, "rb") as fh:
        res = process_recording(fh, on_error)
    for ev in res.events:
        out.write(ev.to_json() + b"\n")
    out.flush()
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
                          quiet=False)
    if not args.serve:
        report(result.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    started = time.monotonic()
    try:
        if args.command == "run":
            return asyncio.run(cmd_run(args))
        if args.command == "collect":
            return asyncio.run(cmd_run(args, with_worker=False))
        if args.command == "worker":
            return asyncio.run(cmd_run(args, with_collectors=False))
        if args.command == "record":
            return asyncio.run(cmd_record(args))
        if args.command == "normalize":
            return cmd_normalize(args)
        if args.command == "replay":
            return asyncio.run(cmd_replay(args))
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
