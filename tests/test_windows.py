"""WindowStore: exact window sums against hand-computed values and a brute-force reference."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqstress.event import LiquidationEvent, make_event
from liqstress.windows import (
    COARSE_SECONDS,
    FINE_MAX_WINDOW,
    FINE_SECONDS,
    HISTORY,
    HORIZON,
    SIDES,
    WINDOWS,
    Agg,
    WindowStore,
    coin_of,
    rebuild,
)

from .helpers import nonempty_aggs

#: Aligned to a 60 s (and so 5 s) bucket boundary: 1_700_000_040 / 60 == 28_333_334.
NOW = 1_700_000_040.0
assert NOW % COARSE_SECONDS == 0

SHORT = ("1m", "5m", "15m")
LONG = ("1h", "4h", "12h", "24h")
ALL = SHORT + LONG

_uid = itertools.count()


def ev(age: float, *, exchange: str = "binance", side: str = "long",
       notional: float | None = 1000.0, base: str = "BTC", now: float = NOW,
       uid: str | None = None) -> LiquidationEvent:
    """An event ``age`` seconds before ``now`` (negative: in the future)."""
    ts = now - age
    return make_event(exchange=exchange, symbol=f"{base}USDT", base=base, quote="USDT",
                      market="linear", side=side, price=100.0,
                      qty=None if notional is None else notional / 100.0,
                      notional_usd=notional, ts=ts, recv_ts=ts + 0.5, sampled=False,
                      venue_id=uid if uid is not None else f"u{next(_uid)}")


def store_with(*events: LiquidationEvent, now: float = NOW) -> WindowStore:
    s = WindowStore()
    for e in events:
        s.add(e, now)
    return s


def usd(snap: Any, window: str, exchange: str = "binance", side: str = "long") -> float:
    return snap.windows[window]["exchange"][exchange][side].usd


def count(snap: Any, window: str, exchange: str = "binance", side: str = "long") -> int:
    return snap.windows[window]["exchange"][exchange][side].count


def in_windows(snap: Any, exchange: str = "binance", side: str = "long") -> set[str]:
    return {w for w in WINDOWS if count(snap, w, exchange, side) > 0}


# ---- constants ---------------------------------------------------------------------------------
def test_window_constants() -> None:
    assert WINDOWS == {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400,
                       "12h": 43200, "24h": 86400}
    assert (FINE_SECONDS, COARSE_SECONDS, FINE_MAX_WINDOW, HORIZON) == (5, 60, 900, 86400)
    assert SIDES == ("long", "short")


# ---- coin_of -----------------------------------------------------------------------------------
@pytest.mark.parametrize("base,coin", [
    ("BTC", "BTC"), ("ETH", "ETH"), ("1000PEPE", "PEPE"), ("kPEPE", "PEPE"), ("kBONK", "BONK"),
    ("1000000MOG", "MOG"), ("10000LADYS", "LADYS"), ("1MBABYDOGE", "BABYDOGE"),
    ("1000SATS", "SATS"), ("1INCH", "1INCH"), ("btc", "BTC"),
    # Real coins that start with K keep it: only a lowercase k marks the multiplier.
    ("KAVA", "KAVA"), ("KSM", "KSM"), ("KAS", "KAS"), ("100X", "100X"),
])
def test_coin_of(base: str, coin: str) -> None:
    assert coin_of(base) == coin


# ---- Agg ---------------------------------------------------------------------------------------
def test_agg_add_and_merge() -> None:
    a = Agg()
    for v in (10.0, None, 30.0, 5.0):
        a.add(v)
    assert a.to_dict() == {"usd": 45.0, "count": 4, "largest_usd": 30.0, "unpriced": 1}
    b = Agg()
    b.add(100.0)
    b.add(None)
    a.merge(b)
    assert a.to_dict() == {"usd": 145.0, "count": 6, "largest_usd": 100.0, "unpriced": 2}
    c = Agg()
    c.merge(Agg())
    assert c.to_dict() == {"usd": 0.0, "count": 0, "largest_usd": 0.0, "unpriced": 0}


# ---- membership by age -------------------------------------------------------------------------
@pytest.mark.parametrize("age,expected", [
    (0, set(ALL)),
    (30, set(ALL)),
    (120, {"5m", "15m", *LONG}),
    (600, {"15m", *LONG}),
    (1800, set(LONG)),
    (2 * 3600, {"4h", "12h", "24h"}),
    (6 * 3600, {"12h", "24h"}),
    (20 * 3600, {"24h"}),
    (25 * 3600, set()),
])
def test_event_age_decides_windows(age: float, expected: set[str]) -> None:
    s = store_with(ev(age, notional=1234.5))
    snap = s.snapshot(NOW)
    assert in_windows(snap) == expected
    for w in WINDOWS:
        assert usd(snap, w) == (1234.5 if w in expected else 0.0)
        assert snap.windows[w]["exchange"]["binance"]["short"].count == 0
    assert snap.events == 1  # counted in totals even when it is in no window


def test_exact_sums_counts_largest_per_exchange_side_and_coin() -> None:
    events = [
        ev(10, exchange="binance", side="long", notional=100.0, base="BTC"),
        ev(20, exchange="binance", side="long", notional=250.0, base="ETH"),
        ev(40, exchange="binance", side="short", notional=75.0, base="BTC"),
        ev(130, exchange="okx", side="long", notional=1000.0, base="1000PEPE"),
        ev(130, exchange="okx", side="long", notional=None, base="BTC"),
        ev(2000, exchange="bybit", side="short", notional=5000.0, base="kPEPE"),
        ev(7200, exchange="bybit", side="short", notional=7.0, base="ETH"),
    ]
    snap = store_with(*events).snapshot(NOW)
    ex = {w: {name: {s: a.to_dict() for s, a in sides.items()}
              for name, sides in snap.windows[w]["exchange"].items()} for w in WINDOWS}

    def agg(u: float, c: int, big: float, unpriced: int = 0) -> dict[str, Any]:
        return {"usd": u, "count": c, "largest_usd": big, "unpriced": unpriced}

    zero = agg(0.0, 0, 0.0)
    assert ex["1m"] == {
        "binance": {"long": agg(350.0, 2, 250.0), "short": agg(75.0, 1, 75.0)},
        "okx": {"long": zero, "short": zero},
        "bybit": {"long": zero, "short": zero},
    }
    five = {
        "binance": {"long": agg(350.0, 2, 250.0), "short": agg(75.0, 1, 75.0)},
        "okx": {"long": agg(1000.0, 2, 1000.0, 1), "short": zero},
        "bybit": {"long": zero, "short": zero},
    }
    assert ex["5m"] == five
    assert ex["15m"] == five
    assert ex["1h"] == {**five, "bybit": {"long": zero, "short": agg(5000.0, 1, 5000.0)}}
    for w in ("4h", "12h", "24h"):
        assert ex[w] == {**five, "bybit": {"long": zero, "short": agg(5007.0, 2, 5000.0)}}

    coins = snap.windows["24h"]["coin"]
    assert set(coins) == {"BTC", "ETH", "PEPE"}
    assert coins["BTC"]["long"].to_dict() == agg(100.0, 2, 100.0, 1)
    assert coins["BTC"]["short"].to_dict() == agg(75.0, 1, 75.0)
    assert coins["ETH"]["long"].to_dict() == agg(250.0, 1, 250.0)
    assert coins["ETH"]["short"].to_dict() == agg(7.0, 1, 7.0)
    # 1000PEPE (okx) and kPEPE (bybit) are the same coin.
    assert coins["PEPE"]["long"].to_dict() == agg(1000.0, 1, 1000.0)
    assert coins["PEPE"]["short"].to_dict() == agg(5000.0, 1, 5000.0)
    assert snap.windows["1m"]["coin"]["PEPE"]["long"].count == 0
    assert snap.windows["5m"]["coin"]["PEPE"]["long"].usd == 1000.0

    assert snap.total("24h", "long").to_dict() == agg(1350.0, 4, 1000.0, 1)
    assert snap.total("24h", "short").to_dict() == agg(5082.0, 3, 5000.0)
    assert snap.total("1m", "short").to_dict() == agg(75.0, 1, 75.0)
    assert snap.events == 7


# ---- boundaries ----------------------------------------------------------------------------------
@pytest.mark.parametrize("window", list(WINDOWS))
def test_boundary_bucket_just_outside_is_excluded(window: str) -> None:
    """With ``now`` on a bucket boundary a window covers exactly [now - W + g, now + g)."""
    size = WINDOWS[window]
    g = FINE_SECONDS if size <= FINE_MAX_WINDOW else COARSE_SECONDS
    oldest_in = ev(size - g, notional=1.0)  # first second of the oldest bucket in the window
    newest_out = ev(size - g + 0.001, notional=2.0)  # last instant of the bucket before it
    way_out = ev(size, notional=4.0)  # W seconds old
    snap = store_with(oldest_in, newest_out, way_out).snapshot(NOW)
    assert usd(snap, window) == 1.0
    assert count(snap, window) == 1


def test_current_partial_bucket_is_included() -> None:
    now = NOW + 2.5  # halfway through the current 5 s bucket
    partial = ev(2.0, now=now, notional=1.0)  # ts = NOW + 0.5: the current partial bucket
    snap = store_with(partial, now=now).snapshot(now)
    assert in_windows(snap) == set(ALL)
    # 1m at a partial bucket spans 57.5 s back: the bucket starting at NOW - 55.
    s2 = store_with(ev(57.5, now=now, notional=3.0), ev(57.6, now=now, notional=5.0), now=now)
    assert usd(s2.snapshot(now), "1m") == 3.0
    assert usd(s2.snapshot(now), "5m") == 8.0


def test_window_edge_moves_with_now() -> None:
    s = store_with(ev(50, notional=1.0))  # ts = NOW - 50
    assert usd(s.snapshot(NOW), "1m") == 1.0
    assert usd(s.snapshot(NOW + 4.999), "1m") == 1.0
    assert usd(s.snapshot(NOW + 5), "1m") == 1.0  # bucket NOW-50 is now 11 buckets old
    assert usd(s.snapshot(NOW + 10), "1m") == 0.0  # 12 buckets old: out
    assert usd(s.snapshot(NOW + 10), "5m") == 1.0


# ---- late, future, duplicate, unpriced ---------------------------------------------------------
def test_late_event_goes_to_its_event_time_bucket() -> None:
    s = WindowStore()
    s.add(ev(5, notional=1.0), NOW)
    late = ev(200, notional=10.0)  # arrives now but happened 200 s ago
    s.add(late, NOW)
    snap = s.snapshot(NOW)
    assert usd(snap, "1m") == 1.0
    assert usd(snap, "5m") == 11.0
    assert s.max_event_ts == NOW - 5


def test_future_dated_events_wait_until_now_reaches_them() -> None:
    fut = ev(-120, notional=9.0)  # two minutes ahead of NOW (venue clock ahead)
    s = store_with(fut)
    assert in_windows(s.snapshot(NOW)) == set()
    assert s.snapshot(NOW).events == 1
    assert in_windows(s.snapshot(NOW + 119)) == set()
    assert in_windows(s.snapshot(NOW + 120)) == set(ALL)
    # Within the current bucket it already counts (bucket resolution).
    s2 = store_with(ev(-3, notional=1.0))
    assert in_windows(s2.snapshot(NOW)) == set(ALL)
    # In a later fine bucket but the current minute: long windows only.
    s3 = store_with(ev(-10, notional=1.0))
    assert in_windows(s3.snapshot(NOW)) == set(LONG)


def test_duplicate_ids_count_once() -> None:
    s = WindowStore()
    e = ev(30, notional=100.0, uid="dup")
    assert s.add(e, NOW) is True
    assert s.add(e, NOW) is False
    assert s.add(e, NOW + 500) is False
    assert s.seen(e) is True
    assert (s.events, s.duplicates) == (1, 2)
    snap = s.snapshot(NOW)
    assert usd(snap, "1m") == 100.0 and count(snap, "1m") == 1
    # A distinct id with identical content fields counts separately.
    s.add(ev(30, notional=100.0, uid="other"), NOW)
    assert count(s.snapshot(NOW), "1m") == 2


def test_duplicate_of_event_older_than_horizon_counts_once() -> None:
    s = WindowStore()
    old = ev(26 * 3600, uid="old")  # beyond the 25 h of minute buckets kept
    assert s.add(old, NOW) is True
    assert s.add(old, NOW) is False
    assert (s.events, s.duplicates) == (1, 1)
    assert s.bucket_count() == 0


def test_old_id_memory_is_bounded() -> None:
    s = WindowStore(old_id_memory=2)
    a, b, c = (ev(26 * 3600 + i, uid=f"old{i}") for i in range(3))
    for e in (a, b, c):
        s.add(e, NOW)
    assert not s.seen(a)  # evicted first-in
    assert s.seen(b) and s.seen(c)


def test_unpriced_events_count_but_add_no_usd() -> None:
    s = store_with(ev(10, notional=None), ev(10, notional=None), ev(10, notional=50.0))
    a = s.snapshot(NOW).windows["1m"]["exchange"]["binance"]["long"]
    assert a.to_dict() == {"usd": 50.0, "count": 3, "largest_usd": 50.0, "unpriced": 2}
    only = store_with(ev(10, notional=None)).snapshot(NOW).windows["24h"]["exchange"]["binance"]
    assert only["long"].to_dict() == {"usd": 0.0, "count": 1, "largest_usd": 0.0, "unpriced": 1}


def test_max_timestamps_and_exchanges() -> None:
    s = store_with(ev(100, exchange="okx"), ev(10, exchange="bybit"), ev(25 * 3600))
    assert s.max_event_ts == NOW - 10
    assert s.max_recv_ts == NOW - 10 + 0.5
    assert s.exchanges == {"okx", "bybit", "binance"}
    snap = s.snapshot(NOW)
    for w in WINDOWS:  # every exchange seen has both sides in every window, even at zero
        assert set(snap.windows[w]["exchange"]) == {"okx", "bybit", "binance"}
        for sides in snap.windows[w]["exchange"].values():
            assert set(sides) == set(SIDES)


# ---- prune -------------------------------------------------------------------------------------
def _values(snap: Any) -> dict[tuple[str, str, str, str], tuple[float, int, float, int]]:
    """Every non-empty Agg of a snapshot, flattened."""
    return {k: (a.usd, a.count, a.largest_usd, a.unpriced) for k, a in nonempty_aggs(snap.windows)}


def test_prune_drops_old_buckets_but_not_window_values() -> None:
    ages = [0, 4, 61, 299, 899, 901, 3000, 3599, 3601, 14000, 43000, 80000, 86339, 86399, 86420]
    s = store_with(*[ev(a, notional=float(i + 1), base=("BTC", "ETH")[i % 2])
                     for i, a in enumerate(ages)])
    before = _values(s.snapshot(NOW))
    buckets_before = s.bucket_count()
    s.prune(NOW)
    assert s.bucket_count() < buckets_before
    assert _values(s.snapshot(NOW)) == before
    # Fine buckets older than 15 min are gone; coarse ones stay 25 h (spike baseline).
    assert all(i >= NOW // FINE_SECONDS - FINE_MAX_WINDOW // FINE_SECONDS
               for b in s.table.grans[0].values() for i in b)
    assert all(i >= NOW // COARSE_SECONDS - HISTORY // COARSE_SECONDS
               for b in s.table.grans[1].values() for i in b)
    s.prune(NOW)  # idempotent
    assert _values(s.snapshot(NOW)) == before
    # Far in the future everything is gone.
    s.prune(NOW + 2 * HORIZON)
    assert s.bucket_count() == 0
    assert _values(s.snapshot(NOW + 2 * HORIZON)) == {}
    assert s.events == len(ages)


def test_prune_keeps_recent_ids() -> None:
    s = WindowStore()
    e = ev(3000, uid="x")
    s.add(e, NOW)
    s.prune(NOW)
    assert s.add(e, NOW) is False
    assert s.duplicates == 1


def test_bucket_count() -> None:
    s = WindowStore()
    assert s.bucket_count() == 0
    # One event: fine + coarse bucket for the exchange key and for the coin key.
    s.add(ev(10), NOW)
    assert s.bucket_count() == 4
    s.add(ev(7), NOW)  # same 5 s and 60 s buckets
    assert s.bucket_count() == 4
    s.add(ev(20), NOW)  # new fine buckets only
    assert s.bucket_count() == 6


# ---- shapes ------------------------------------------------------------------------------------
def test_usd_by_exchange_shape() -> None:
    s = store_with(ev(10, exchange="okx", side="short", notional=5.0),
                   ev(400, exchange="binance", notional=7.0))
    out = s.snapshot(NOW).usd_by_exchange()
    assert list(out) == list(WINDOWS)
    assert out["1m"] == {"okx": {"long": 0.0, "short": 5.0}, "binance": {"long": 0.0, "short": 0.0}}
    assert out["15m"] == {"okx": {"long": 0.0, "short": 5.0}, "binance": {"long": 7.0, "short": 0.0}}
    assert out["24h"] == out["15m"]


def test_to_dict_total_is_sum_over_exchanges() -> None:
    s = store_with(ev(10, exchange="okx", side="short", notional=5.0),
                   ev(20, exchange="okx", side="long", notional=None),
                   ev(30, exchange="binance", side="short", notional=11.0),
                   ev(400, exchange="bybit", notional=7.0, base="ETH"))
    d = s.snapshot(NOW).to_dict()
    assert list(d) == list(WINDOWS)
    assert d["1m"]["total"] == {
        "long": {"usd": 0.0, "count": 1, "largest_usd": 0.0, "unpriced": 1},
        "short": {"usd": 16.0, "count": 2, "largest_usd": 11.0, "unpriced": 0},
    }
    assert d["5m"]["total"]["long"] == {"usd": 0.0, "count": 1, "largest_usd": 0.0, "unpriced": 1}
    assert d["15m"]["total"]["long"] == {"usd": 7.0, "count": 2, "largest_usd": 7.0, "unpriced": 1}
    for scopes in d.values():
        assert set(scopes) == {"exchange", "coin", "total"}
        for side in SIDES:
            exs = scopes["exchange"].values()
            assert scopes["total"][side]["usd"] == sum(x[side]["usd"] for x in exs)
            assert scopes["total"][side]["count"] == sum(x[side]["count"] for x in exs)
            assert scopes["total"][side]["unpriced"] == sum(x[side]["unpriced"] for x in exs)
            assert scopes["total"][side]["largest_usd"] == max(
                [x[side]["largest_usd"] for x in exs], default=0.0)
    assert d["15m"]["coin"]["ETH"]["long"]["usd"] == 7.0


def test_rebuild_returns_new_count() -> None:
    a, b = ev(10, uid="a"), ev(20, uid="b")
    s = WindowStore()
    assert rebuild(s, [a, b, a, b, a], NOW) == 2
    assert (s.events, s.duplicates) == (2, 3)


# ---- properties ----------------------------------------------------------------------------------
EXCHANGES = ("binance", "bybit", "okx")
BASES = ("BTC", "ETH", "1000PEPE", "kPEPE", "PEPE", "1INCH")
BOUNDARY_AGES = [-130.0, -10.0, -3.0, 0.0, 4.999, 5.0, 55.0, 60.0, 295.0, 300.0, 895.0, 900.0,
                 3540.0, 3600.0, 14340.0, 14400.0, 43140.0, 43200.0, 86340.0, 86400.0,
                 86459.0, 86460.0, 86461.0, 90000.0]

ages = st.one_of(st.sampled_from(BOUNDARY_AGES),
                 st.integers(-200, 90_000).map(float),
                 st.floats(-200, 90_000, allow_nan=False))
#: Integer-valued notionals sum exactly in binary floating point, so results can be compared
#: with ==, whatever the order of addition.
int_notionals = st.one_of(st.none(), st.integers(0, 10**9).map(float))
float_notionals = st.one_of(st.none(), st.floats(0, 1e9, allow_nan=False))
nows = st.one_of(st.just(NOW), st.floats(0, 120, allow_nan=False).map(lambda x: NOW + x))


@st.composite
def event_sets(draw: Any, notionals: Any = int_notionals) -> tuple[float, list[LiquidationEvent]]:
    now = draw(nows)
    specs = draw(st.lists(st.tuples(st.sampled_from(EXCHANGES), st.sampled_from(SIDES), ages,
                                    notionals, st.sampled_from(BASES)), max_size=40))
    events = [ev(age, exchange=ex, side=side, notional=n, base=base, now=now)
              for ex, side, age, n, base in specs]
    if events:  # re-deliveries: exact copies of some events
        dups = draw(st.lists(st.sampled_from(events), max_size=10))
        events = events + dups
    return now, events


def reference(events: list[LiquidationEvent], now: float) -> dict[Any, tuple]:
    """Windows straight from the definition: bucket index arithmetic on first-seen ids."""
    acc: dict[Any, list] = {}
    seen: set[str] = set()
    for e in events:
        if e.id in seen:
            continue
        seen.add(e.id)
        for w, size in WINDOWS.items():
            g = FINE_SECONDS if size <= FINE_MAX_WINDOW else COARSE_SECONDS
            age = math.floor(now / g) - math.floor(e.ts / g)
            if not 0 <= age < size // g:
                continue
            for key in ((w, "exchange", e.exchange, e.side), (w, "coin", coin_of(e.base), e.side)):
                a = acc.setdefault(key, [0.0, 0, 0.0, 0])
                a[1] += 1
                if e.notional_usd is None:
                    a[3] += 1
                else:
                    a[0] += e.notional_usd
                    a[2] = max(a[2], e.notional_usd)
    return {k: tuple(v) for k, v in acc.items()}


def build(events: list[LiquidationEvent], now: float) -> WindowStore:
    s = WindowStore()
    for e in events:
        s.add(e, now)
    return s


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets())
def test_snapshot_equals_brute_force_reference(case: tuple[float, list[LiquidationEvent]]) -> None:
    now, events = case
    s = build(events, now)
    snap = s.snapshot(now)
    assert _values(snap) == reference(events, now)
    unique = {e.id for e in events}
    assert snap.events == s.events == len(unique)
    assert s.duplicates == len(events) - len(unique)
    assert s.exchanges == {e.exchange for e in events}
    # Pruning never changes what a window shows at `now`.
    s.prune(now)
    assert _values(s.snapshot(now)) == reference(events, now)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets(float_notionals))
def test_snapshot_matches_reference_with_float_notionals(
        case: tuple[float, list[LiquidationEvent]]) -> None:
    now, events = case
    got = _values(build(events, now).snapshot(now))
    want = reference(events, now)
    assert got.keys() == want.keys()
    for k, (u, c, big, unp) in want.items():
        assert got[k][1:] == (c, big, unp)
        assert got[k][0] == pytest.approx(u, rel=1e-9, abs=1e-6)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets(), st.randoms(use_true_random=False))
def test_insertion_order_never_changes_the_snapshot(
        case: tuple[float, list[LiquidationEvent]], rnd: Any) -> None:
    """The worker relies on this where rebuilt history and re-delivered records overlap."""
    now, events = case
    shuffled = list(events)
    rnd.shuffle(shuffled)
    a, b = build(events, now), build(shuffled, now)
    assert a.snapshot(now).to_dict() == b.snapshot(now).to_dict()
    assert (a.events, a.duplicates) == (b.events, b.duplicates)
    # Rebuilding from history then re-applying an overlapping tail changes nothing.
    c = build(events, now)
    rebuild(c, shuffled[: len(shuffled) // 2], now)
    assert c.snapshot(now).to_dict() == a.snapshot(now).to_dict()
    assert c.events == a.events


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(event_sets())
def test_windows_are_monotone_and_totals_add_up(case: tuple[float, list[LiquidationEvent]]) -> None:
    now, events = case
    snap = build(events, now).snapshot(now)
    for chain in (SHORT, LONG):
        for small, big in itertools.pairwise(chain):
            for scope in ("exchange", "coin"):
                for name, sides in snap.windows[small][scope].items():
                    for side in SIDES:
                        lo = sides[side]
                        hi = snap.windows[big][scope][name][side]
                        assert lo.usd <= hi.usd
                        assert lo.count <= hi.count
                        assert lo.largest_usd <= hi.largest_usd
                        assert lo.unpriced <= hi.unpriced
    for w in WINDOWS:
        exs = snap.windows[w]["exchange"].values()
        coins = snap.windows[w]["coin"].values()
        long_, short = snap.total(w, "long"), snap.total(w, "short")
        assert long_.usd + short.usd == sum(x[s].usd for x in exs for s in SIDES)
        assert long_.count + short.count == sum(x[s].count for x in exs for s in SIDES)
        # The coin scope sees the same events as the exchange scope.
        for side in SIDES:
            assert snap.total(w, side).count == sum(c[side].count for c in coins)
            assert snap.total(w, side).usd == sum(c[side].usd for c in coins)


def test_pruned_ids_still_dedupe_a_late_redelivery() -> None:
    store = WindowStore()
    now = 2_000_000_000.0
    ev = make_event(exchange="okx", symbol="BTC-USDT-SWAP", base="BTC", quote="USDT",
                    market="linear", side="long", price=1.0, qty=1.0, notional_usd=1.0,
                    ts=now - 86_430, recv_ts=now - 86_430, sampled=True)
    assert store.add(ev, now - 86_430)
    store.prune(now + 100)
    assert store.add(ev, now + 100) is False
    assert (store.events, store.duplicates) == (1, 1)


def test_hourly_totals_are_per_side_oldest_first_and_match_the_1h_window() -> None:
    s = store_with(ev(30, side="long", notional=10.0), ev(1800, side="long", notional=5.0),
                   ev(3600 + 600, side="long", notional=7.0), ev(2 * 3600 + 60, side="short", notional=3.0),
                   ev(24 * 3600 + 600, side="long", notional=11.0), ev(26 * 3600, side="long", notional=99.0))
    h = s.hourly_totals(NOW, hours=25)
    assert len(h["long"]) == len(h["short"]) == 25
    assert h["long"][-1] == 15.0 == s.snapshot(NOW).total("1h", "long").usd
    assert h["long"][-2] == 7.0 and h["short"][-3] == 3.0
    assert h["long"][0] == 11.0  # 24 h ago: outside every window, inside the baseline
    assert sum(h["long"]) == 33.0  # 26 h ago is beyond what is kept
