"""Settings parsing: brokers, ports, venue URL overrides, booleans, topics, worker settings."""

from __future__ import annotations

import dataclasses

import pytest

from liqstress.config import (
    ConfigError,
    Topics,
    WorkerSettings,
    env,
    normalize_broker,
    parse_bool,
    parse_port,
    parse_venue_urls,
)
from liqstress.labels import DEFAULT_COIN_ALLOWLIST


# ---- brokers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("url,expected", [
    ("localhost:9092", "localhost:9092"),
    ("kafka://localhost:9092", "localhost:9092"),
    ("kafka://broker:9092/", "broker:9092"),
    ("a:1,b:2", "a:1,b:2"),
    (" kafka://a:1/ , b:2 ,kafka://c:3", "a:1,b:2,c:3"),
    ("a:1,,b:2,", "a:1,b:2"),
    ("127.0.0.1:0", "127.0.0.1:0"),
    ("[::1]:9092", "[::1]:9092"),
    ("x:1", "x:1"),
])
def test_normalize_broker(url: str, expected: str) -> None:
    assert normalize_broker(url) == expected


@pytest.mark.parametrize("url,needle", [
    ("localhost", "host:port"),
    (":9092", "host:port"),
    ("kafka://", "no broker"),
    ("", "no broker"),
    (" , ,", "no broker"),
    ("host:abc", "broker port must be an integer"),
    ("host:", "broker port must be an integer"),
    ("host:65536", "broker port must be 0-65535"),
    ("a:1,b", "host:port, got 'b'"),
])
def test_normalize_broker_errors(url: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        normalize_broker(url)


# ---- ports ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,port", [("0", 0), ("9464", 9464), ("65535", 65535), (80, 80),
                                       (" 8080 ", 8080)])
def test_parse_port(text: str | int, port: int) -> None:
    assert parse_port(text) == port


@pytest.mark.parametrize("text,needle", [
    ("abc", "port must be an integer, got 'abc'"),
    ("", "must be an integer"),
    (None, "must be an integer"),
    ("1.5", "must be an integer"),
    ("65536", "port must be 0-65535, got 65536"),
    ("99999", "0-65535"),
    (-1, "0-65535, got -1"),
])
def test_parse_port_errors(text: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_port(text)  # type: ignore[arg-type]


def test_parse_port_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="^metrics port must be 0-65535, got 99999$"):
        parse_port("99999", "metrics port")


def test_config_error_is_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# ---- venue URLs ----------------------------------------------------------------------------------
def test_parse_venue_urls() -> None:
    assert parse_venue_urls(None) == {}
    assert parse_venue_urls("") == {}
    assert parse_venue_urls(
        "binance.ws=ws://127.0.0.1:9000/x, bybit.rest=http://127.0.0.1:9001,"
        "bybit.ws=ws://127.0.0.1:9002/v5,okx.rest=http://h/api?instType=SWAP,") == {
        "binance": {"ws": "ws://127.0.0.1:9000/x"},
        "bybit": {"rest": "http://127.0.0.1:9001", "ws": "ws://127.0.0.1:9002/v5"},
        "okx": {"rest": "http://h/api?instType=SWAP"},
    }


def test_parse_venue_urls_later_entry_wins() -> None:
    assert parse_venue_urls("okx.ws=ws://a,okx.ws=ws://b") == {"okx": {"ws": "ws://b"}}


@pytest.mark.parametrize("text", ["binance=ws://x", "binance.ws", "binance.ws=",
                                  "ws://127.0.0.1:9000", "okx.ws=ws://a,bad"])
def test_parse_venue_urls_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="venue URL must be venue.key=url"):
        parse_venue_urls(text)


# ---- booleans and env ----------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["1", "true", "TRUE", " yes ", "On"])
def test_parse_bool_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "false", "False", "no", " OFF "])
def test_parse_bool_false(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["", "maybe", "2", "y", "t"])
def test_parse_bool_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="not a boolean"):
        parse_bool(text)


def test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIQSTRESS_TEST_X", raising=False)
    assert env("TEST_X") is None
    assert env("TEST_X", "d") == "d"
    monkeypatch.setenv("LIQSTRESS_TEST_X", "")
    assert env("TEST_X", "d") == "d"  # empty counts as unset
    monkeypatch.setenv("LIQSTRESS_TEST_X", "val")
    assert env("TEST_X", "d") == "val"
    monkeypatch.setenv("TEST_X", "unprefixed")
    monkeypatch.delenv("LIQSTRESS_TEST_X")
    assert env("TEST_X") is None


# ---- topics --------------------------------------------------------------------------------------
def test_topics_defaults() -> None:
    t = Topics()
    assert (t.raw, t.events, t.deadletter, t.windows, t.signals, t.prices) == (
        "liquidations.raw", "liquidations", "liquidations.deadletter", "liquidation.windows",
        "stress.signals", "prices")


def test_topics_with_prefix() -> None:
    assert Topics.with_prefix("") == Topics()
    t = Topics.with_prefix("replay-1234.")
    assert t == Topics(raw="replay-1234.liquidations.raw", events="replay-1234.liquidations",
                       deadletter="replay-1234.liquidations.deadletter",
                       windows="replay-1234.liquidation.windows", prices="replay-1234.prices",
                       open_interest="replay-1234.open_interest",
                       signals="replay-1234.stress.signals",
                       partials="replay-1234.liquidation.partials",
                       coverage="replay-1234.coverage")
    # Every topic gets the prefix; none is forgotten if a topic is added.
    for f in dataclasses.fields(Topics):
        assert getattr(t, f.name) == "replay-1234." + getattr(Topics(), f.name)


def test_topics_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Topics().raw = "x"  # type: ignore[misc]


# ---- worker settings -----------------------------------------------------------------------------
def test_worker_settings_defaults_validate() -> None:
    s = WorkerSettings(broker="localhost:9092")
    s.validate()
    assert (s.app_id, s.partitions, s.session_timeout, s.refresh_interval, s.clock) == (
        "liqstress-worker", 4, 10.0, 2.0, "wall")
    assert s.topics == Topics()
    assert s.coins == DEFAULT_COIN_ALLOWLIST
    assert s.datadir is None
    WorkerSettings(broker="b:1", clock="event", partitions=1, refresh_interval=0.01).validate()


@pytest.mark.parametrize("kw,needle", [
    ({"clock": "monotonic"}, "clock must be wall|event, got 'monotonic'"),
    ({"clock": ""}, "clock must be wall|event"),
    ({"partitions": 0}, "partitions must be >= 1"),
    ({"partitions": -3}, "partitions must be >= 1"),
    ({"refresh_interval": 0}, "refresh interval must be > 0"),
    ({"refresh_interval": -1.0}, "refresh interval must be > 0"),
])
def test_worker_settings_validate_errors(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        WorkerSettings(broker="b:1", **kw).validate()  # type: ignore[arg-type]
