"""liqstress/feed.py: the recent ring and the largest liquidations of a window, per partition
and merged, against brute force; carried through partials; the JSON API built on a state."""

from __future__ import annotations

import wsgiref.util
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqstress.agents.api import make_app, register
from liqstress.agents.state import WorkerState
from liqstress.config import WorkerSettings
from liqstress.coverage import CoverageTracker
from liqstress.event import make_event
from liqstress.feed import (
    ID,
    TS,
    USD,
    Entry,
    PartitionFeed,
    check_entry,
    make_entry,
    merge_largest,
    merge_recent,
    skyline,
)
from liqstress.infra.metrics import Metrics
from liqstress.partials import Merger, PartitionStore, decode_partial
from liqstress.prices import make_tick

NOW = 1_700_000_000.0


def entry(i: int, usd: float | None, ts: float, ex: str = "binance") -> Entry:
    return (f"e{i}", ex, "BTCUSDT", "BTC", "long" if i % 2 else "short", 100.0, 1.0, usd, ts)


def brute_largest(entries: list[Entry], since: float, k: int) -> list[str]:
    got = sorted((e for e in entries if e[USD] is not None and e[TS] >= since),
                 key=lambda e: (e[USD], e[ID]), reverse=True)
    return [e[ID] for e in got[:k]]


def test_largest_of_a_window_starting_mid_hour_is_exact() -> None:
    # The hour's largest lie before the window start: a plain per-hour top-K would miss the
    # smaller ones after it.
    f = PartitionFeed(k=3)
    hour = 3600 * (int(NOW) // 3600)
    big = [entry(i, 1e6 + i, hour + 10 + i) for i in range(5)]
    small = [entry(10 + i, 10.0 + i, hour + 2000 + i) for i in range(3)]
    for e in big + small:
        f.add(e)
    now = hour + 3600 + 1000  # 1h window starts at hour + 1000
    got, exact = f.largest(now, 3600, 3)
    assert exact
    assert [e[ID] for e in got] == ["e12", "e11", "e10"]
    got, _ = f.largest(now, 4 * 3600, 3)
    assert [e[ID] for e in got] == ["e4", "e3", "e2"]


def test_recent_ring_is_bounded_newest_and_deduplicated() -> None:
    f = PartitionFeed(recent_size=5)
    for i in range(20):
        f.add(entry(i, 1.0, NOW + i))
    assert not f.add(entry(19, 1.0, NOW + 19))  # same id
    assert [e[ID] for e in f.recent()] == ["e19", "e18", "e17", "e16", "e15"]
    assert not f.add(entry(100, None, NOW - 10))  # older than the ring, unpriced


def test_unpriced_events_are_recent_but_never_largest() -> None:
    f = PartitionFeed()
    f.add(entry(1, None, NOW))
    assert [e[ID] for e in f.recent()] == ["e1"]
    assert f.largest(NOW, 3600)[0] == []


def test_hours_older_than_a_day_are_pruned() -> None:
    f = PartitionFeed()
    f.add(entry(1, 5.0, NOW - 30 * 3600))
    f.add(entry(2, 5.0, NOW))
    f.prune(NOW)
    assert [e[ID] for e in f.largest(NOW, 86400)[0]] == ["e2"]
    assert len(f._tops) == 1  # noqa: SLF001


def test_clipped_hour_is_reported_not_exact() -> None:
    f = PartitionFeed(k=2, cap=3)
    # Falling USD over time: nothing beats anything later, every event is a candidate.
    for i in range(20):
        f.add(entry(i, 1000.0 - i, NOW - 3000 + i))
    for h in f._tops.values():  # noqa: SLF001
        h.compact(2, 3)
    _, exact = f.largest(NOW, 3000 - 10)  # starts inside the clipped hour
    assert not exact


def test_check_entry_refuses_malformed() -> None:
    with pytest.raises(ValueError):
        check_entry(["id", "ex", "s", "c", "long", "x", 1, 1, 1])
    with pytest.raises(ValueError):
        check_entry(["id"])
    assert check_entry(list(entry(1, None, NOW)))[USD] is None


events_st = st.lists(
    st.tuples(st.integers(0, 3),  # partition
              st.one_of(st.none(), st.floats(0, 1e7, allow_nan=False)),  # usd
              st.floats(-30 * 3600, 600, allow_nan=False)),  # ts offset from NOW
    min_size=0, max_size=300)


@settings(max_examples=150, deadline=None)
@given(events_st, st.sampled_from([3600, 14400, 43200, 86400]), st.integers(1, 8),
       st.floats(-3600, 3600, allow_nan=False))
def test_merged_largest_equals_brute_force(evs: list[tuple[int, float | None, float]],
                                           window: int, k: int, shift: float) -> None:
    feeds = [PartitionFeed(k=k, cap=10_000) for _ in range(4)]
    entries = []
    for i, (p, usd, off) in enumerate(evs):
        e = entry(i, usd, NOW + off)
        entries.append(e)
        feeds[p].add(e)
        if i % 7 == 0:  # a re-delivery lands on the same partition
            feeds[p].add(e)
    now = NOW + shift
    for f in feeds:
        f.prune(now)
    got, exact = merge_largest(feeds, now, window, k)
    assert exact
    assert [e[ID] for e in got] == brute_largest(entries, now - window, k)
    # The recent ring: the union of the partitions' newest.
    newest = sorted(entries, key=lambda e: (e[TS], e[ID]), reverse=True)
    assert [e[ID] for e in merge_recent(feeds, limit=20)][:5] == [e[ID] for e in newest[:5]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100, allow_nan=False), st.floats(0, 3600)),
                max_size=80), st.integers(1, 5), st.floats(0, 3600))
def test_skyline_keeps_every_suffix_top_k(evs: list[tuple[float, float]], k: int,
                                          since: float) -> None:
    entries = [entry(i, usd, NOW + t) for i, (usd, t) in enumerate(evs)]
    kept, clipped = skyline(entries, k, cap=10_000)
    assert not clipped
    assert brute_largest(kept, NOW + since, k) == brute_largest(entries, NOW + since, k)


def ev(i: int, usd: float, ts: float, exchange: str = "binance", base: str = "BTC") -> Any:
    return make_event(exchange=exchange, symbol=f"{base}USDT", base=base, quote="USDT",
                      market="linear", side="long" if i % 2 else "short", price=100.0 + i,
                      qty=usd / (100.0 + i), notional_usd=usd, ts=ts, recv_ts=ts + 0.1,
                      sampled=False)


def test_partials_carry_the_feed_and_heat_full_then_deltas() -> None:
    ps = PartitionStore(0)
    ps.new_epoch(NOW)
    ps.mark_ready()
    events = [ev(i, 1000.0 * (i + 1), NOW - 100 + i) for i in range(30)]
    for e in events[:20]:
        ps.apply(e, NOW, "BTC", e.price)
    m = Merger()
    for raw in ps.messages(NOW, "w", full=True):
        assert m.apply(decode_partial(raw))
    for e in events[20:]:
        ps.apply(e, NOW, "BTC", e.price)
    deltas = ps.messages(NOW, "w", full=False)
    assert deltas
    for raw in deltas:
        assert m.apply(decode_partial(raw))
    view = m.views[0]
    assert [x[ID] for x in view.feed.recent()] == [x[ID] for x in ps.feed.recent()]
    assert view.feed.largest(NOW, 3600)[0] == ps.feed.largest(NOW, 3600)[0]
    assert sorted(view.heat.rows()) == sorted(ps.heat.rows())
    # An older partial (no feed, no heat) still decodes and applies.
    old = orjson.loads(ps.messages(NOW, "w", full=True)[0])
    del old["feed"], old["heat"]
    msg = decode_partial(orjson.dumps(old))
    assert msg["feed"] == [] and msg["heat"] == []


def call(app: Any, path: str, query: str = "") -> tuple[str, dict[str, str], Any]:
    env: dict[str, Any] = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET"}
    wsgiref.util.setup_testing_defaults(env)
    env["PATH_INFO"], env["QUERY_STRING"] = path, query
    got: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        got["status"], got["headers"] = status, dict(headers)
    body = b"".join(app(env, start))
    ctype = got["headers"].get("Content-Type", "")
    return got["status"], got["headers"], orjson.loads(body) if "json" in ctype else body


def test_api_on_a_state_without_loop() -> None:
    state = WorkerState(settings=WorkerSettings(broker="x"), metrics=Metrics.create())
    state.fixed_now = NOW
    register(state)
    app = make_app(state.metrics.registry)
    for i in range(12):
        state.apply(ev(i, 1000.0 * (i + 1), NOW - 600 + i, exchange="bybit" if i % 3 else
                       "binance", base="ETH" if i % 4 == 0 else "BTC"), partition=i % 2)
    for i in range(3):
        state.apply_tick(make_tick(exchange="binance", symbol="BTCUSDT", base="BTC",
                                   price=110.0 + i, ts=NOW - 900 + 300 * i,
                                   recv_ts=NOW - 900 + 300 * i))
    state.refresh()
    status, headers, body = call(app, "/api/v1/liquidations", "limit=5")
    assert status == "200 OK" and headers["Content-Type"] == "application/json"
    assert "Access-Control-Allow-Origin" not in headers
    assert len(body["liquidations"]) == 5 and body["partitions"] == [0, 1]
    assert body["liquidations"][0]["ts"] == NOW - 600 + 11
    _, _, body = call(app, "/api/v1/liquidations", "exchange=binance&coin=eth&side=short")
    assert {(r["exchange"], r["coin"], r["side"]) for r in body["liquidations"]} == \
        {("binance", "ETH", "short")}
    _, _, body = call(app, "/api/v1/largest", "window=1h&limit=3")
    assert [r["usd"] for r in body["liquidations"]] == [12000.0, 11000.0, 10000.0]
    assert body["exact"] and body["liquidations"][0]["rank"] == 1
    _, _, body = call(app, "/api/v1/windows", "top=1")
    rows = {(r["window"], r["scope"], r["name"], r["side"]): r for r in body["rows"]}
    total = sum(r["usd"] for k, r in rows.items() if k[:2] == ("1h", "total"))
    assert total == pytest.approx(sum(1000.0 * (i + 1) for i in range(12)))
    assert ("1h", "coin", "other", "long") in rows and body["coins"][0] == "BTC"
    assert body["coverage"] is None  # no collector has reported
    bybit = CoverageTracker("bybit", NOW - 1800)
    bybit.set_up(True, NOW - 1800)
    state.apply_coverage_record(0, 0, bybit.record(NOW).to_json())
    state.refresh()
    _, _, body = call(app, "/api/v1/windows", "top=1")
    assert body["coverage"]["15m"]["complete"] == ["bybit"]
    assert body["coverage"]["1h"]["exchanges"]["bybit"]["missing_s"] == pytest.approx(1800)
    _, _, body = call(app, "/api/v1/levels", "coin=btc&hours=1")
    assert body["coin"] == "BTC" and body["cells"] and body["prices"]
    assert sum(c["usd"] for c in body["cells"]) == pytest.approx(
        sum(1000.0 * (i + 1) for i in range(12) if i % 4))
    assert body["price"] == 112.0 and body["local_low"] == 110.0
    for path, q in (("/api/v1/largest", "window=2h"), ("/api/v1/liquidations", "limit=x"),
                    ("/api/v1/liquidations", "side=up"), ("/api/v1/levels", ""),
                    ("/api/v1/levels", "coin=BTC&hours=99")):
        status, headers, body = call(app, path, q)
        assert status.startswith("400") and "error" in body, (path, q)
    assert call(app, "/api/v1/nope")[0].startswith("404")
    status, _, text = call(app, "/metrics")
    assert status == "200 OK" and b"python_gc" in text  # prometheus_client's own app


def test_an_event_without_size_or_price_in_usd_is_kept_as_is() -> None:
    """Some venues send a size the collector cannot convert (no contract metadata): qty and
    notional are None, never a guess; the feed keeps them None on the wire and back."""
    e = make_event(exchange="okx", symbol="XYZ-USDT-SWAP", base="XYZ", quote="USDT",
                   market="linear", side="long", price=1.5, qty=None, notional_usd=None,
                   ts=1_789_670_000.0, recv_ts=1_789_670_001.0, sampled=True)
    row = make_entry(e, "XYZ")
    assert row[6] is None and row[7] is None
    assert check_entry(orjson.loads(orjson.dumps(row))) == row


def test_an_interleaved_older_refresh_never_replaces_a_newer_result() -> None:
    """The timer's refresh yields; replay's final refresh does not and runs after the last
    records. The older one, resuming after it, must leave the newer windows in place."""
    state = WorkerState(settings=WorkerSettings(broker="x"), metrics=Metrics.create())
    state.fixed_now = NOW
    state.apply(ev(1, 1000.0, NOW - 60), partition=0)
    older = state.refresh_steps()
    next(older)  # started and paused mid-way, as refresh_async pauses
    state.apply(ev(3, 5000.0, NOW - 30), partition=1)
    state.refresh()  # the newer refresh, after the last record
    newer = state.last_snapshot
    assert newer is not None and newer.total("1h", "long").usd == 6000.0
    for _ in older:
        pass
    assert state.last_snapshot is newer
    assert state.local is not None and sum(
        sides["long"].usd for sides in state.local.windows["1h"]["exchange"].values()) == 6000.0
