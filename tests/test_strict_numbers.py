"""Strict field readers (kit.num / num_str / num_any / ms / positive), the session's
plausibility check and inflation cap, and the dead-letter reasons documented in
docs/deadletters.md."""

from __future__ import annotations

import ast
import gzip
import math
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from liqstress.event import DEFAULT_MAX_NOTIONAL_USD
from liqstress.recording import RawFrame
from liqstress.streams.session import VenueSession, inflate
from liqstress.streams.sims.binance import force_order
from liqstress.streams.venues import binance, bybit, kit, okx

ROOT = Path(__file__).parent.parent
RECV = 1_789_670_000.0
T_MS = 1_789_669_999_000


def reason(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(kit.FrameError) as info:
        fn(*args, **kwargs)
    return info.value.reason


# ---- the readers -----------------------------------------------------------------------------
@pytest.mark.parametrize("val", [True, False, None, "5", "1e3", [], {}, 2**64])
def test_num_takes_json_numbers_only(val: Any) -> None:
    assert reason(kit.num, {"k": val}, "k") == "bad_number"


def test_num_values_and_missing() -> None:
    assert kit.num({"k": 5}, "k") == 5.0 and kit.num({"k": -0.5}, "k") == -0.5
    assert reason(kit.num, {}, "k") == "missing_field"
    assert reason(kit.num, [], "k") == "missing_field"


@pytest.mark.parametrize("val", [
    True, 5, 5.0, None, "", " 5 ", "5 ", "+5", "5.", ".5", "nan", "NaN", "inf", "-Infinity",
    "0x10", "1_000", "\u0661\u0662", "1e400", "-1e999", "1" * 400, "true"])
def test_num_str_takes_decimal_strings_only(val: Any) -> None:
    assert reason(kit.num_str, {"k": val}, "k") == "bad_number"


@pytest.mark.parametrize("text,value", [("60000", 60000.0), ("-1.5", -1.5), ("0.00001", 1e-5),
                                        ("1e-05", 1e-5), ("2E3", 2000.0), ("007", 7.0)])
def test_num_str_values(text: str, value: float) -> None:
    assert kit.num_str({"k": text}, "k") == value


def test_num_any_takes_both_strictly() -> None:
    assert kit.num_any({"k": -250}, "k") == -250.0 and kit.num_any({"k": "-124.5"}, "k") == -124.5
    for bad in (True, " 5", "nan", None):
        assert reason(kit.num_any, {"k": bad}, "k") == "bad_number"


@pytest.mark.parametrize("val", [True, 1.7e12, "1789670000000", "1e3", -1, None, 2**70])
def test_ms_integer_json(val: Any) -> None:
    assert reason(kit.ms, {"t": val}, "t") == "bad_timestamp"


@pytest.mark.parametrize("val", [1789670000000, " 1789670000000", "1e3", "1789670000000.0",
                                 "-5", "", "\u0661\u0662", "1" * 20])
def test_ms_string(val: Any) -> None:
    assert reason(kit.ms, {"t": val}, "t", string=True) == "bad_timestamp"


def test_ms_values() -> None:
    assert kit.ms({"t": 1789670000123}, "t") == 1789670000.123
    assert kit.ms({"t": "1789670000123"}, "t", string=True) == 1789670000.123


def test_positive_metadata() -> None:
    for val, out in ((5, 5.0), ("0.01", 0.01), (True, None), (" 1", None), ("nan", None),
                     (0, None), ("-1", None), (None, None), ("1e400", None)):
        assert kit.positive({"k": val}, "k") == out, val


@given(st.one_of(st.booleans(), st.none(), st.integers(), st.floats(allow_nan=True),
                 st.text(max_size=30)))
def test_readers_never_raise_anything_but_frame_errors(val: Any) -> None:
    for fn in (kit.num, kit.num_str, kit.num_any):
        try:
            out = fn({"k": val}, "k")
        except kit.FrameError:
            continue
        assert math.isfinite(out) and not isinstance(val, bool)
    try:
        assert kit.ms({"k": val}, "k") >= 0
    except kit.FrameError:
        pass


# ---- venues ---------------------------------------------------------------------------------
def bn(**o: Any) -> str:
    return force_order("BTCUSDT", "SELL", "0.5", "60000", T_MS).replace(
        '"o":{', '"o":{' + ",".join(f'"{k}":{orjson.dumps(v).decode()}' for k, v in o.items())
        + ",", 1)


@pytest.mark.parametrize("o,why", [
    ({"T": True}, "bad_timestamp"), ({"T": "1e3"}, "bad_timestamp"),
    ({"T": str(T_MS)}, "bad_timestamp"), ({"z": True, "ap": "1"}, "bad_number"),
    ({"z": " 5 ", "ap": "1"}, "bad_number"), ({"z": 5, "ap": "1"}, "bad_number")])
def test_binance_strict_fields(o: dict[str, Any], why: str) -> None:
    frame = orjson.loads(force_order("BTCUSDT", "SELL", "0.5", "60000", T_MS))
    frame["o"].update(o)
    out = VenueSession(binance.VENUE).process(
        RawFrame("binance", binance.WS_URL, RECV, orjson.dumps(frame).decode()))
    assert out.events == [] and out.deadletter is not None
    assert out.deadletter["reason"] == why


def test_okx_ts_is_a_string_of_digits() -> None:
    detail = {"bkPx": "60000", "posSide": "long", "side": "sell", "sz": "1", "ts": T_MS}
    text = orjson.dumps({"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                         "data": [{"details": [detail], "instId": "BTC-USDT-SWAP",
                                   "instType": "SWAP", "uly": "BTC-USDT"}]}).decode()
    assert reason(okx.parse, text, okx.WS_URL, RECV, kit.Metadata()) == "bad_timestamp"
    out = okx.parse(text.replace(f'"ts":{T_MS}', f'"ts":"{T_MS}"'), okx.WS_URL, RECV,
                    kit.Metadata())
    assert [e.ts for e in out.events] == [T_MS / 1000]


# ---- the session: plausibility and inflation --------------------------------------------------
def bybit_frame(*entries: tuple[int, str]) -> RawFrame:
    data = [{"T": t, "s": "BTCUSDT", "S": "Buy", "v": v, "p": "60000"} for t, v in entries]
    return RawFrame("bybit", "wss://stream.bybit.com/v5/public/linear", RECV,
                    orjson.dumps({"topic": "allLiquidation.BTCUSDT", "data": data}).decode())


def test_implausible_events_are_refused_and_the_rest_kept() -> None:
    s = VenueSession(bybit.VENUE)
    out = s.process(bybit_frame((T_MS, "1"), (1_789, "1"), (T_MS, "1e9")))
    assert [e.qty for e in out.events] == [1.0]
    assert out.deadletter is not None and out.deadletter["reason"] == "implausible_time"
    assert out.deadletter["detail"].startswith("2 of 3 events refused")
    out = s.process(bybit_frame((T_MS, "1e9")))
    assert out.events == [] and out.deadletter["reason"] == "implausible_notional"
    out = s.process(bybit_frame((T_MS + 2 * 86_400_000, "1")))
    assert out.events == [] and out.deadletter["reason"] == "implausible_time"


def test_notional_cap_is_configurable() -> None:
    assert VenueSession(bybit.VENUE).max_notional_usd == DEFAULT_MAX_NOTIONAL_USD
    s = VenueSession(bybit.VENUE, max_notional_usd=100_000.0)
    assert [e.qty for e in s.process(bybit_frame((T_MS, "1"))).events] == [1.0]
    out = s.process(bybit_frame((T_MS, "2")))
    assert out.events == [] and out.deadletter["reason"] == "implausible_notional"


def test_inflate_caps_and_refuses() -> None:
    assert inflate(gzip.compress(b"abc") + gzip.compress(b"def")) == b"abcdef"
    assert inflate(gzip.compress(b"abc") + b"\0\0") == b"abc"
    assert reason(inflate, gzip.compress(b"x" * 1000), 999) == "too_large"
    assert inflate(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000
    assert reason(inflate, gzip.compress(b"abc") + b"junk") == "bad_gzip"
    assert reason(inflate, gzip.compress(b"abc")[:-3]) == "bad_gzip"


def test_session_inflation_cap_and_rest_utf8() -> None:
    text = force_order("BTCUSDT", "SELL", "0.5", "60000", T_MS)
    s = VenueSession(binance.VENUE, max_inflated_bytes=100)
    out = s.process(RawFrame("binance", binance.WS_URL, RECV, gzip.compress(text.encode())))
    assert out.deadletter is not None and out.deadletter["reason"] == "too_large"
    out = s.process(RawFrame("okx", "https://www.okx.com/api/v5/public/instruments", RECV,
                             b'{"\xff": 1}'))
    assert out.deadletter is not None and out.deadletter["reason"] == "bad_utf8"


# ---- every reason is documented ------------------------------------------------------------
def _reasons_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()

    def strings(node: ast.AST) -> set[str]:
        return {n.value for n in ast.walk(node)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
                and re.fullmatch(r"[a-z]+(?:_[a-z0-9]+)+", n.value)}

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            if name in ("FrameError", "EventError") and node.args:
                out |= strings(node.args[0] if name == "FrameError" else node.args[-1])
            if name == "deadletter_record" and len(node.args) > 1:
                out |= strings(node.args[1])
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "reason" for t in node.targets):
            out |= strings(node.value)
        elif isinstance(node, ast.FunctionDef):
            args = node.args.args + node.args.kwonlyargs
            defaults = node.args.defaults + node.args.kw_defaults  # type: ignore[operator]
            for arg, default in zip(args[::-1], defaults[::-1], strict=False):
                if arg.arg == "reason" and default is not None:
                    out |= strings(default)
    return out


def test_every_dead_letter_reason_is_documented() -> None:
    doc = (ROOT / "docs" / "deadletters.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_0-9]+)` \|", doc, re.M))
    used: set[str] = set()
    for path in sorted((ROOT / "streams").rglob("*.py")):
        used |= _reasons_in(path)
    used |= {"implausible_time", "implausible_notional"}  # liqstress.event.implausible
    assert {"bad_number", "bad_timestamp", "too_large", "bad_utf8", "unexpected_channel"} <= used
    assert used - documented == set()
