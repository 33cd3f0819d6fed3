"""The JSON Lines recording format: RawFrame round trips and tolerant reading."""

from __future__ import annotations

import base64
import gzip
import io

import orjson
import pytest

from liqstress.recording import (
    RawFrame,
    RecordingError,
    frame_from_json,
    frame_from_obj,
    read_recording,
)

WS = "wss://fstream.binance.com/market/ws/!forceOrder@arr"


def test_text_frame_round_trip() -> None:
    f = RawFrame("binance", WS, 1_700_000_000.25, '{"e":"forceOrder"}')
    assert f.to_dict() == {"exchange": "binance", "source": WS, "recv_ts": 1_700_000_000.25,
                           "frame": '{"e":"forceOrder"}'}
    assert orjson.loads(f.to_json()) == f.to_dict()
    assert frame_from_json(f.to_json()) == f
    assert frame_from_json(f.to_json().decode()) == f


def test_binary_frame_round_trip() -> None:
    payload = gzip.compress(b'{"ch":"x"}') + b"\x00\xff"
    f = RawFrame("htx", "wss://api.hbdm.com/linear-swap-notification", 12.5, payload)
    d = f.to_dict()
    assert "frame" not in d
    assert d["frame_b64"] == base64.b64encode(payload).decode()
    back = frame_from_json(f.to_json())
    assert back == f
    assert isinstance(back.data, bytes) and back.data == payload


def test_empty_frames_round_trip() -> None:
    for data in ("", b""):
        f = RawFrame("okx", "wss://x", 1.0, data)
        assert frame_from_json(f.to_json()) == f


def test_int_recv_ts_becomes_float() -> None:
    f = frame_from_obj({"exchange": "okx", "source": "wss://x", "recv_ts": 5, "frame": "pong"})
    assert f.recv_ts == 5.0 and type(f.recv_ts) is float


@pytest.mark.parametrize("source,rest", [
    ("https://fapi.binance.com/fapi/v1/exchangeInfo", True),
    ("http://127.0.0.1:9001/api/v5/public/instruments?instType=SWAP", True),
    ("wss://ws.okx.com:8443/ws/v5/public", False),
    ("ws://127.0.0.1:9000/ws", False),
    ("", False),
    ("recording", False),
])
def test_is_rest(source: str, rest: bool) -> None:
    assert RawFrame("okx", source, 1.0, "{}").is_rest is rest


def test_frame_wins_over_frame_b64() -> None:
    f = frame_from_obj({"exchange": "a", "source": "s", "recv_ts": 1.0, "frame": "text",
                        "frame_b64": base64.b64encode(b"bin").decode()})
    assert f.data == "text"


@pytest.mark.parametrize("obj,needle", [
    ([1, 2], "not a JSON object"),
    ("x", "not a JSON object"),
    ({"source": "s", "recv_ts": 1, "frame": "f"}, "'exchange'"),
    ({"exchange": "a", "recv_ts": 1, "frame": "f"}, "'source'"),
    ({"exchange": "a", "source": "s", "frame": "f"}, "'recv_ts'"),
    ({"exchange": 1, "source": "s", "recv_ts": 1, "frame": "f"}, "must be strings"),
    ({"exchange": "a", "source": None, "recv_ts": 1, "frame": "f"}, "must be strings"),
    ({"exchange": "a", "source": "s", "recv_ts": "1", "frame": "f"}, "recv_ts must be a number"),
    ({"exchange": "a", "source": "s", "recv_ts": True, "frame": "f"}, "recv_ts must be a number"),
    ({"exchange": "a", "source": "s", "recv_ts": None, "frame": "f"}, "recv_ts must be a number"),
    ({"exchange": "a", "source": "s", "recv_ts": 1}, "needs a string 'frame' or 'frame_b64'"),
    ({"exchange": "a", "source": "s", "recv_ts": 1, "frame": 5}, "needs a string"),
    ({"exchange": "a", "source": "s", "recv_ts": 1, "frame_b64": "!!not base64!!"},
     "bad frame_b64"),
])
def test_frame_from_obj_errors(obj: object, needle: str) -> None:
    with pytest.raises(RecordingError, match=needle):
        frame_from_obj(obj)


def test_frame_from_json_not_json() -> None:
    with pytest.raises(RecordingError, match="not JSON"):
        frame_from_json(b"{nope")
    assert issubclass(RecordingError, ValueError)


def test_read_recording_reports_bad_lines_and_continues() -> None:
    good1 = RawFrame("binance", WS, 1.0, "a")
    good2 = RawFrame("okx", "https://www.okx.com/api", 2.0, b"\x01\x02")
    good3 = RawFrame("bybit", "wss://stream.bybit.com", 3.0, "c")
    lines = [
        good1.to_json(),                                    # 1
        b"{broken",                                         # 2
        b"",                                                # 3 blank
        b"   \t",                                           # 4 whitespace only
        good2.to_json(),                                    # 5
        b"[1,2,3]",                                         # 6
        b'{"exchange":"a","source":"s","recv_ts":1}',       # 7 no frame
        good3.to_json(),                                    # 8
    ]
    fh = io.BytesIO(b"\n".join(lines) + b"\n")
    out = list(read_recording(fh))
    assert [n for n, _ in out] == [1, 2, 5, 6, 7, 8]
    assert out[0][1] == good1
    assert out[2][1] == good2
    assert out[5][1] == good3
    errs = {n: item for n, item in out if isinstance(item, RecordingError)}
    assert set(errs) == {2, 6, 7}
    assert str(errs[2]).startswith("not JSON")
    assert str(errs[6]) == "line is not a JSON object"
    assert "frame" in str(errs[7])


def test_read_recording_without_trailing_newline_and_empty_file() -> None:
    f = RawFrame("binance", WS, 1.0, "x")
    assert list(read_recording(io.BytesIO(f.to_json()))) == [(1, f)]
    assert list(read_recording(io.BytesIO(b""))) == []
    assert list(read_recording(io.BytesIO(b"\n\n\n"))) == []


def test_read_recording_crlf_lines() -> None:
    f = RawFrame("binance", WS, 1.0, "x")
    fh = io.BytesIO(f.to_json() + b"\r\n" + f.to_json() + b"\r\n")
    assert list(read_recording(fh)) == [(1, f), (2, f)]
