"""VenueSession: history cut-off after subscribe acks, snapshots, decoding, dead letters."""

from __future__ import annotations

import base64
import gzip
from typing import Any

import orjson
import pytest

from liqstress.event import LiquidationEvent, make_event
from liqstress.recording import RawFrame
from liqstress.streams.session import Outcome, VenueSession, deadletter_record
from liqstress.streams.sims.binance import force_order
from liqstress.streams.venues import binance
from liqstress.streams.venues.base import (
    Connection,
    FrameError,
    Instrument,
    Metadata,
    Parsed,
    VenueSpec,
)

WS_A = "ws://fake/a"
WS_B = "ws://fake/b"
REST = "https://fake/api/instruments"
T0 = 1_700_000_000.0


# ---- a tiny fake venue ---------------------------------------------------------------------------
def fake_event(ts: float, n: int, priced: bool = True) -> LiquidationEvent:
    return make_event(exchange="fake", symbol="BTC-USD", base="BTC", quote="USD",
                      market="linear", side="long", price=100.0, qty=1.0,
                      notional_usd=100.0 if priced else None, ts=ts, recv_ts=ts,
                      sampled=False, venue_id=f"e{n}")


def fake_parse(text: str, source: str, recv_ts: float, meta: Metadata) -> Parsed:
    msg = orjson.loads(text)  # a JSONDecodeError here is a "parser bug" on purpose
    kind = msg["kind"]
    if kind == "raise":
        raise RuntimeError(msg.get("why", "boom"))
    if kind == "frame_error":
        raise FrameError("fake_reason", "fake detail")
    events = [fake_event(ts, i, priced=i % 2 == 0) for i, ts in enumerate(msg.get("ts", []))]
    return Parsed(kind=kind, events=tuple(events), snapshot=bool(msg.get("snapshot")),
                  reply=msg.get("reply"))


def fake_load_rest(meta: Metadata, url: str, body: str) -> None:
    if body == "bad":
        raise FrameError("bad_rest_body", "not instruments")
    if body == "crash":
        raise KeyError("instruments")
    for sym in orjson.loads(body):
        meta.instruments[sym] = Instrument(sym, sym.split("-")[0], "USD", "linear", 0.01)


def fake_venue(**kw: Any) -> VenueSpec:
    defaults: dict[str, Any] = dict(
        id="fake", side_rule="", unit_rule="", sampled=False, rest_urls=lambda urls: (REST,),
        connections=lambda meta, urls: [Connection("c", WS_A)], parse=fake_parse,
        load_rest=fake_load_rest, drop_before_subscribe=True)
    return VenueSpec(**{**defaults, **kw})


def frame(source: str, recv_ts: float, **msg: Any) -> RawFrame:
    return RawFrame("fake", source, recv_ts, orjson.dumps(msg).decode())


def ts_of(out: Outcome) -> list[float]:
    return [e.ts for e in out.events]


# ---- subscribe ack and history cut-off -----------------------------------------------------------
def test_events_before_any_ack_are_kept() -> None:
    s = VenueSession(fake_venue())
    out = s.process(frame(WS_A, T0, kind="data", ts=[T0 - 100, T0 - 1]))
    assert ts_of(out) == [T0 - 100, T0 - 1]
    assert out.snapshot_dropped == 0 and out.kind == "data" and out.deadletter is None


def test_ack_sets_cutoff_per_source() -> None:
    s = VenueSession(fake_venue())
    ack = s.process(frame(WS_A, T0, kind="ack"))
    assert (ack.kind, ack.events, ack.deadletter) == ("ack", [], None)
    out = s.process(frame(WS_A, T0 + 5, kind="data", ts=[T0 - 60, T0 - 0.001, T0, T0 + 3]))
    assert ts_of(out) == [T0, T0 + 3]  # dated at the ack itself: kept
    assert out.snapshot_dropped == 2
    # Another connection of the same venue has no ack yet: nothing dropped there.
    other = s.process(frame(WS_B, T0 + 5, kind="data", ts=[T0 - 60]))
    assert ts_of(other) == [T0 - 60] and other.snapshot_dropped == 0


def test_new_ack_after_reset_moves_the_cutoff() -> None:
    s = VenueSession(fake_venue())
    s.process(frame(WS_A, T0, kind="ack"))
    s.reset_connection(WS_A)
    # Reconnected, not yet acked: no cut-off (the worker dedupes by id).
    out = s.process(frame(WS_A, T0 + 50, kind="data", ts=[T0 - 10, T0 + 20]))
    assert ts_of(out) == [T0 - 10, T0 + 20] and out.snapshot_dropped == 0
    s.process(frame(WS_A, T0 + 100, kind="ack"))
    out = s.process(frame(WS_A, T0 + 101, kind="data", ts=[T0 + 20, T0 + 99, T0 + 100.5]))
    assert ts_of(out) == [T0 + 100.5]
    assert out.snapshot_dropped == 2


def test_reset_of_one_source_keeps_the_other() -> None:
    s = VenueSession(fake_venue())
    s.process(frame(WS_A, T0, kind="ack"))
    s.process(frame(WS_B, T0, kind="ack"))
    s.reset_connection(WS_A)
    s.reset_connection("never-seen")  # harmless
    assert s.process(frame(WS_A, T0 + 1, kind="data", ts=[T0 - 1])).snapshot_dropped == 0
    assert s.process(frame(WS_B, T0 + 1, kind="data", ts=[T0 - 1])).snapshot_dropped == 1


def test_mark_subscribed_sets_cutoff() -> None:
    s = VenueSession(fake_venue())
    s.mark_subscribed(WS_A, T0)
    out = s.process(frame(WS_A, T0 + 1, kind="data", ts=[T0 - 1, T0 + 1]))
    assert ts_of(out) == [T0 + 1] and out.snapshot_dropped == 1


def test_no_cutoff_when_venue_does_not_drop_before_subscribe() -> None:
    s = VenueSession(fake_venue(drop_before_subscribe=False))
    s.process(frame(WS_A, T0, kind="ack"))
    out = s.process(frame(WS_A, T0 + 1, kind="data", ts=[T0 - 500]))
    assert ts_of(out) == [T0 - 500] and out.snapshot_dropped == 0


def test_snapshot_frames_drop_every_event() -> None:
    s = VenueSession(fake_venue())
    out = s.process(frame(WS_A, T0, kind="data", ts=[T0 + 1, T0 + 2, T0 + 3], snapshot=True))
    assert out.events == [] and out.snapshot_dropped == 3 and out.unpriced == 0
    # Even with drop_before_subscribe off and events after the ack.
    s2 = VenueSession(fake_venue(drop_before_subscribe=False))
    out2 = s2.process(frame(WS_A, T0, kind="data", ts=[T0 + 1], snapshot=True))
    assert out2.events == [] and out2.snapshot_dropped == 1


def test_unpriced_counts_only_kept_events() -> None:
    s = VenueSession(fake_venue())
    # Events 0 and 2 are priced, 1 and 3 unpriced.
    out = s.process(frame(WS_A, T0, kind="data", ts=[T0, T0, T0, T0]))
    assert out.unpriced == 2
    s.process(frame(WS_A, T0 + 10, kind="ack"))
    out = s.process(frame(WS_A, T0 + 11, kind="data", ts=[T0, T0 + 11, T0, T0 + 11]))
    assert [e.notional_usd for e in out.events] == [None, None]
    assert out.unpriced == 2 and out.snapshot_dropped == 2


def test_reply_is_passed_through() -> None:
    s = VenueSession(fake_venue())
    out = s.process(frame(WS_A, T0, kind="ping", reply="pong-1"))
    assert (out.kind, out.reply, out.events) == ("ping", "pong-1", [])


# ---- failures become dead letters ----------------------------------------------------------------
def test_parser_exception_becomes_dead_letter() -> None:
    s = VenueSession(fake_venue())
    f = frame(WS_A, T0, kind="raise", why="kaput")
    out = s.process(f)
    assert out.kind == "error" and out.events == []
    assert out.deadletter == {"exchange": "fake", "source": WS_A, "recv_ts": T0,
                              "frame": f.data, "reason": "parser_exception",
                              "detail": "RuntimeError: kaput"}


def test_parser_exception_detail_is_truncated() -> None:
    out = VenueSession(fake_venue()).process(frame(WS_A, T0, kind="raise", why="x" * 2000))
    assert out.deadletter is not None
    assert len(out.deadletter["detail"]) == 500
    assert out.deadletter["detail"].startswith("RuntimeError: xxx")


def test_parser_bug_on_non_json_is_a_parser_exception() -> None:
    out = VenueSession(fake_venue()).process(RawFrame("fake", WS_A, T0, "not json"))
    assert out.deadletter is not None
    assert out.deadletter["reason"] == "parser_exception"
    assert out.deadletter["detail"].startswith("JSONDecodeError")


def test_frame_error_keeps_its_reason() -> None:
    out = VenueSession(fake_venue()).process(frame(WS_A, T0, kind="frame_error"))
    assert out.deadletter is not None
    assert (out.deadletter["reason"], out.deadletter["detail"]) == ("fake_reason", "fake detail")


def test_deadletter_record_shape() -> None:
    f = RawFrame("okx", "wss://x", 3.0, b"\x00\x01")
    rec = deadletter_record(f, "bad_utf8", "d" * 600)
    assert rec == {"exchange": "okx", "source": "wss://x", "recv_ts": 3.0, "frame_b64": "AAE=",
                   "reason": "bad_utf8", "detail": "d" * 500}


# ---- decoding --------------------------------------------------------------------------------------
def test_gzip_binary_frames_are_inflated() -> None:
    s = VenueSession(fake_venue(gzip=True))
    body = orjson.dumps({"kind": "data", "ts": [T0]})
    out = s.process(RawFrame("fake", WS_A, T0, gzip.compress(body)))
    assert out.deadletter is None and ts_of(out) == [T0]


def test_gzip_magic_is_inflated_even_when_venue_is_not_gzip() -> None:
    s = VenueSession(binance.VENUE)
    text = force_order("BTCUSDT", "SELL", "0.5", "60000", 1_700_000_000_000)
    out = s.process(RawFrame("binance", binance.WS_URL, T0, gzip.compress(text.encode())))
    assert out.deadletter is None
    assert [(e.symbol, e.side, e.notional_usd) for e in out.events] == [("BTCUSDT", "long", 30000.0)]


def test_plain_binary_utf8_frame_is_decoded() -> None:
    s = VenueSession(binance.VENUE)
    text = force_order("ETHUSDT", "BUY", "2", "3000", 1_700_000_000_000)
    out = s.process(RawFrame("binance", binance.WS_URL, T0, text.encode()))
    assert [(e.side, e.notional_usd) for e in out.events] == [("short", 6000.0)]


@pytest.mark.parametrize("data", [b"not gzip at all", b"\x1f\x8b\x08\x00garbage"])
def test_bad_gzip_is_dead_lettered(data: bytes) -> None:
    out = VenueSession(fake_venue(gzip=True)).process(RawFrame("fake", WS_A, T0, data))
    assert out.kind == "error" and out.events == []
    assert out.deadletter is not None and out.deadletter["reason"] == "bad_gzip"
    assert base64.b64decode(out.deadletter["frame_b64"]) == data


def test_bad_gzip_magic_on_non_gzip_venue() -> None:
    out = VenueSession(binance.VENUE).process(
        RawFrame("binance", binance.WS_URL, T0, b"\x1f\x8btruncated"))
    assert out.deadletter is not None and out.deadletter["reason"] == "bad_gzip"


def test_truncated_gzip_is_dead_lettered() -> None:
    data = gzip.compress(b'{"kind":"data"}')[:-6]
    out = VenueSession(fake_venue(gzip=True)).process(RawFrame("fake", WS_A, T0, data))
    assert out.deadletter is not None and out.deadletter["reason"] == "bad_gzip"


def test_bad_utf8_is_dead_lettered() -> None:
    out = VenueSession(binance.VENUE).process(RawFrame("binance", binance.WS_URL, T0, b"\xff\xfe"))
    assert out.deadletter is not None and out.deadletter["reason"] == "bad_utf8"
    out = VenueSession(fake_venue(gzip=True)).process(
        RawFrame("fake", WS_A, T0, gzip.compress(b"\xff\xfe")))
    assert out.deadletter is not None and out.deadletter["reason"] == "bad_utf8"


# ---- the real binance venue ------------------------------------------------------------------------
def test_binance_data_and_pong() -> None:
    s = VenueSession(binance.VENUE)
    assert binance.VENUE.drop_before_subscribe is False
    out = s.process(RawFrame("binance", binance.WS_URL, T0,
                             force_order("SOLUSDT", "SELL", "10", "100", 1_600_000_000_000)))
    # No subscribe ack on binance: an old event is still kept.
    assert out.kind == "data" and len(out.events) == 1 and out.snapshot_dropped == 0
    (ev,) = out.events
    assert (ev.ts, ev.recv_ts, ev.notional_usd) == (1_600_000_000.0, T0, 1000.0)
    pong = s.process(RawFrame("binance", binance.WS_URL, T0, '{"result":[],"id":1}'))
    assert (pong.kind, pong.events, pong.deadletter) == ("pong", [], None)


@pytest.mark.parametrize("text,reason", [
    ("{oops", "malformed_json"),
    ('{"e":"aggTrade"}', "unexpected_shape"),
    ('{"error":{"code":1}}', "venue_error"),
])
def test_binance_bad_frames(text: str, reason: str) -> None:
    out = VenueSession(binance.VENUE).process(RawFrame("binance", binance.WS_URL, T0, text))
    assert out.kind == "error" and out.deadletter is not None
    assert out.deadletter["reason"] == reason
    assert out.deadletter["frame"] == text


def test_binance_rest_frame_marks_loaded() -> None:
    s = VenueSession(binance.VENUE)
    url = "https://fapi.binance.com/fapi/v1/exchangeInfo"
    out = s.process(RawFrame("binance", url, T0, "{}"))
    assert (out.kind, out.deadletter, out.events) == ("info", None, [])
    assert s.meta.loaded == {url}


# ---- REST ----------------------------------------------------------------------------------------
def test_rest_frames_call_load_rest_and_mark_loaded() -> None:
    s = VenueSession(fake_venue())
    out = s.process(RawFrame("fake", REST, T0, '["BTC-USD","ETH-USD"]'))
    assert out.kind == "info" and out.deadletter is None
    assert s.meta.loaded == {REST}
    assert s.meta.get("ETH-USD") == Instrument("ETH-USD", "ETH", "USD", "linear", 0.01)
    # Binary REST bodies are decoded too.
    s.process(RawFrame("fake", REST + "?page=2", T0, b'["SOL-USD"]'))
    assert s.meta.loaded == {REST, REST + "?page=2"}
    assert s.meta.get("SOL-USD") is not None


def test_rest_frame_error_is_dead_lettered_and_not_loaded() -> None:
    s = VenueSession(fake_venue())
    out = s.process(RawFrame("fake", REST, T0, "bad"))
    assert out.kind == "error"
    assert out.deadletter == {"exchange": "fake", "source": REST, "recv_ts": T0, "frame": "bad",
                              "reason": "bad_rest_body", "detail": "not instruments"}
    assert s.meta.loaded == set()


def test_rest_generic_exception_is_dead_lettered() -> None:
    s = VenueSession(fake_venue())
    out = s.process(RawFrame("fake", REST, T0, "crash"))
    assert out.deadletter is not None
    assert out.deadletter["reason"] == "rest_parse_exception"
    assert out.deadletter["detail"] == "KeyError: 'instruments'"
    assert s.meta.loaded == set()
