"""Early skips of the trade-feed venues (Deribit, dYdX, Kraken Futures, Hyperliquid): frames
without a liquidation return a shared constant before anything is built, and the skip never
changes a result: every fixture frame gives what the full path gives, a liquidation is never
skipped, and a corrupt frame of the skipped shape is still a dead letter."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from liqstress.recording import RawFrame, read_recording
from liqstress.streams.venues import deribit, dydx, hyperliquid, kit, kraken_futures
from liqstress.streams.venues.base import FrameError, Metadata

FIXTURES = Path(__file__).parent / "fixtures"
VAULT = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
TRADER = "0x7ba283114573bde6fd304ad7b188a763e5402a52"


def _texts(venue: str) -> list[str]:
    with (FIXTURES / f"{venue}.jsonl").open("rb") as fh:
        frames = [f for _, f in read_recording(fh) if isinstance(f, RawFrame) and not f.is_rest]
    out = []
    for f in frames:
        data = f.data
        if isinstance(data, bytes):
            data = (gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data).decode()
        out.append(data)
    return out


def _is_skipped(venue: str, text: str) -> bool:
    """Whether the venue's skip test accepts the frame (decoded as its parse decodes it)."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    if venue == "deribit":
        return type(msg) is dict and deribit._ordinary_trades(msg)
    if venue == "dydx":
        return type(msg) is dict and dydx._ordinary_trades(msg)
    if venue == "kraken-futures":
        return (type(msg) is dict and msg.get("feed") == "trade"
                and msg.get("type") != "liquidation" and msg.get("event") is None)
    if type(msg) is list:
        return hyperliquid._ordinary_fills([msg])
    if type(msg) is dict:
        if "channel" in msg:
            return hyperliquid._ordinary_ws_trades(msg)
        return hyperliquid._ordinary_fills(msg.get("events"))
    return False


MODULES: dict[str, Any] = {"deribit": deribit, "dydx": dydx, "kraken-futures": kraken_futures,
                           "hyperliquid": hyperliquid}


@pytest.mark.parametrize("venue", sorted(MODULES))
def test_fixture_frames_skipped_only_when_the_full_path_builds_nothing(venue: str) -> None:
    skipped = 0
    for text in _texts(venue):
        if not _is_skipped(venue, text):
            continue
        skipped += 1
        out = MODULES[venue].parse(text, "wss://x", 1_789_670_000.0, Metadata())
        # The shared constant: no events, no reply, nothing built for the frame.
        assert out is (kit.DATA if venue == "hyperliquid" else kit.INFO)
    assert skipped >= 1, f"{venue}: no fixture frame exercises the skip"


def _deribit(trades: list[dict[str, Any]]) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": "trades.future.BTC.100ms", "data": trades}}).decode()


ORDINARY_TRADE = {"trade_id": "1", "instrument_name": "BTC-PERPETUAL", "direction": "sell",
                  "amount": 10, "price": 60000, "timestamp": 1_789_670_000_000}


def test_deribit_skip_and_its_limits() -> None:
    meta = Metadata()
    assert deribit.parse(_deribit([ORDINARY_TRADE] * 3), "s", 1_789_670_000.0, meta) is kit.INFO
    out = deribit.parse(_deribit([ORDINARY_TRADE, {**ORDINARY_TRADE, "liquidation": "T"}]), "s",
                        1_789_670_000.0, meta)
    assert out.kind == "data" and len(out.events) == 1
    for bad, reason in ((_deribit([ORDINARY_TRADE, 1]), "unexpected_shape"),
                        (_deribit([ORDINARY_TRADE])[:-3], "malformed_json")):
        with pytest.raises(FrameError) as info:
            deribit.parse(bad, "s", 1_789_670_000.0, meta)
        assert info.value.reason == reason


def _dydx_trade(kind: str) -> dict[str, Any]:
    return {"id": "t1", "side": "SELL", "size": "1", "price": "100", "type": kind,
            "createdAt": "2026-09-17T18:00:00.000Z"}


def test_dydx_skip_and_its_limits() -> None:
    meta = Metadata()
    frame = {"type": "channel_data", "id": "BTC-USD", "channel": "v4_trades",
             "contents": {"trades": [_dydx_trade("LIMIT"), _dydx_trade("DELEVERAGED")]}}
    assert dydx.parse(orjson.dumps(frame).decode(), "s", 1.0, meta) is kit.INFO
    # Any letter case of LIQUIDATED is a liquidation, never skipped.
    frame["contents"] = {"trades": [_dydx_trade("LIMIT"), _dydx_trade("liquidated")]}
    assert len(dydx.parse(orjson.dumps(frame).decode(), "s", 1.0, meta).events) == 1
    # The subscribe snapshot is an ack, never skipped as info.
    snap = {**frame, "type": "subscribed"}
    assert dydx.parse(orjson.dumps(snap).decode(), "s", 1.0, meta).kind == "ack"
    del frame["id"]
    with pytest.raises(FrameError) as info:
        dydx.parse(orjson.dumps(frame).decode(), "s", 1.0, meta)
    assert info.value.reason == "missing_field"


def test_kraken_skip_and_its_limits() -> None:
    meta = Metadata()
    fill = {"feed": "trade", "product_id": "PF_XBTUSD", "uid": "u1", "side": "sell",
            "type": "fill", "time": 1_789_670_000_000, "qty": 1, "price": 60000}
    assert kraken_futures.parse(orjson.dumps(fill).decode(), "s", 1.0, meta) is kit.INFO
    liq = orjson.dumps({**fill, "type": "liquidation"}).decode()
    assert len(kraken_futures.parse(liq, "s", 1_789_670_000.0, meta).events) == 1
    with pytest.raises(FrameError) as info:
        kraken_futures.parse(orjson.dumps(fill).decode()[:-1], "s", 1.0, meta)
    assert info.value.reason == "malformed_json"


def test_hyperliquid_skips_and_their_limits() -> None:
    meta = Metadata()
    trade = {"coin": "BTC", "side": "A", "px": "60000", "sz": "1", "time": 1_789_670_000_000,
             "tid": 1, "users": [TRADER, "0x" + "1" * 40]}
    frame = {"channel": "trades", "data": [trade]}
    assert hyperliquid.parse(orjson.dumps(frame).decode(), "s", 1.0, meta) is kit.DATA
    # A vault in any letter case is a backstop liquidation, never skipped.
    frame["data"] = [trade, {**trade, "users": [VAULT.upper().replace("0X", "0x"), TRADER]}]
    out = hyperliquid.parse(orjson.dumps(frame).decode(), "s", 1_789_670_000.0, meta)
    assert len(out.events) == 1
    frame["data"] = [{**trade, "users": [TRADER]}]
    with pytest.raises(FrameError) as info:
        hyperliquid.parse(orjson.dumps(frame).decode(), "s", 1.0, meta)
    assert info.value.reason == "missing_field"
    fill = [TRADER, {"coin": "BTC", "px": "1", "sz": "1", "side": "A", "time": 1}]
    assert hyperliquid.parse(orjson.dumps(fill).decode(), "s", 1.0, meta) is kit.DATA
    block = {"local_time": "x", "block_time": "y", "block_number": 1, "events": [fill, fill]}
    assert hyperliquid.parse(orjson.dumps(block).decode(), "s", 1.0, meta) is kit.DATA
    with pytest.raises(FrameError) as info:
        hyperliquid.parse(orjson.dumps(block).decode()[:-2], "s", 1.0, meta)
    assert info.value.reason == "malformed_json"
