"""``liqstress normalize`` on a small recording, and the CLI's configuration errors (exit 2)."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from liqstress.cli import main
from liqstress.event import event_from_json, event_id
from liqstress.recording import RawFrame
from liqstress.streams.sims.binance import DOC_FRAME, force_order
from liqstress.streams.venues import all_venue_ids, binance

SCHEMA = json.loads(resources.files("liqstress").joinpath("schemas/liquidation.schema.json")
                    .read_text())
T_MS = 1_700_000_000_000
RECV = 1_700_000_001.5


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("LIQSTRESS_"):
            monkeypatch.delenv(name)


def bn(text: str, recv: float = RECV) -> bytes:
    return RawFrame("binance", binance.WS_URL, recv, text).to_json()


def write_recording(tmp_path: Path) -> Path:
    lines = [
        bn(force_order("BTCUSDT", "SELL", "0.5", "60000", T_MS)),             # 1 event (long)
        b"{this is not json",                                                  # 2 bad line
        bn("{oops"),                                                           # 3 malformed frame
        b"",                                                                   # 4 blank
        RawFrame("nope", "wss://nope", RECV, "{}").to_json(),                  # 5 unknown venue
        bn(force_order("ETHUSDT", "BUY", "2", "3000", T_MS + 1000)),           # 6 event (short)
        bn('{"result":["!forceOrder@arr"],"id":7}'),                           # 7 pong
        b'{"exchange":"binance","source":"wss://x","recv_ts":"late","frame":"{}"}',  # 8 bad line
        bn(orjson.dumps(DOC_FRAME).decode(), recv=RECV + 10),                   # 9 event (doc)
    ]
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_normalize_prints_events_and_reports_bad_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_recording(tmp_path)
    assert main(["normalize", str(path)]) == 0
    out, err = capsys.readouterr()

    rows = out.splitlines()
    assert len(rows) == 3
    events = [event_from_json(r) for r in rows]
    validator = Draft202012Validator(SCHEMA)
    for r in rows:
        assert list(validator.iter_errors(orjson.loads(r))) == []
    assert [(e.symbol, e.side, e.price, e.qty, e.notional_usd, e.ts, e.recv_ts) for e in events] == [
        ("BTCUSDT", "long", 60000.0, 0.5, 30000.0, 1_700_000_000.0, RECV),
        ("ETHUSDT", "short", 3000.0, 2.0, 6000.0, 1_700_000_001.0, RECV),
        ("BTCUSDT", "long", 9910.0, 0.014, 0.014 * 9910.0, 1568014460.893, RECV + 10),
    ]
    assert all(e.exchange == "binance" and e.sampled for e in events)
    assert events[0].id == event_id("binance", "BTCUSDT", 1_700_000_000.0, "long", 60000.0, "0.5")

    err_lines = err.splitlines()
    prefix = f"{path}:"
    bad = {int(line[len(prefix):].split(":", 1)[0]): line for line in err_lines
           if line.startswith(prefix)}
    assert sorted(bad) == [2, 3, 5, 8]
    assert f"{path}:2: bad_recording_line: not JSON" in bad[2]
    assert bad[3].startswith(f"{path}:3: malformed_json: ")
    assert bad[5].startswith(f"{path}:5: unknown_exchange: ")
    assert "'nope'" in bad[5]
    assert bad[8] == f"{path}:8: bad_recording_line: recv_ts must be a number"
    assert err_lines[-1] == ("liqstress: 3 events, 4 bad lines/frames, 0 snapshot events "
                             "dropped, 0 unpriced")


def test_normalize_empty_recording(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"\n")
    assert main(["normalize", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == ("liqstress: 0 events, 0 bad lines/frames, 0 snapshot events dropped, "
                           "0 unpriced")


def test_normalize_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["normalize", "/no/such/file.jsonl"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "liqstress: error: no such recording: /no/such/file.jsonl"


def test_run_with_unknown_exchange_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--exchanges", "nope"]) == 2
    err = capsys.readouterr().err
    assert "liqstress: error: unknown exchange 'nope'; known: " in err
    listed = err.split("known: ", 1)[1].strip().split(", ")
    assert listed == sorted(all_venue_ids())  # every registered venue is listed


def test_run_with_empty_exchange_list_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--exchanges", " , "]) == 2
    assert "liqstress: error: no exchanges given" in capsys.readouterr().err


def test_replay_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "/no/such/file"]) == 2
    err = capsys.readouterr().err
    assert "liqstress: error: no such recording: /no/such/file" in err


def test_run_with_bad_metrics_port_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--metrics-port", "99999", "--broker", "x:1"]) == 2
    err = capsys.readouterr().err
    assert "liqstress: error: metrics port must be 0-65535, got 99999" in err


def test_run_with_bad_broker_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--metrics-port", "0", "--broker", "no-port-here"]) == 2
    assert "broker must look like host:port" in capsys.readouterr().err


def test_collect_without_broker_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", "--metrics-port", "0"]) == 2
    assert "collect needs --broker" in capsys.readouterr().err


def test_env_variable_is_read(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LIQSTRESS_EXCHANGES", "binance,nope2")
    assert main(["run"]) == 2
    assert "unknown exchange 'nope2'" in capsys.readouterr().err
