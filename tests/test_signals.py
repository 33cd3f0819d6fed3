"""Stress signals (liqstress/signals/): hand-computed values, edge cases, properties, and the
seed story of issue 4 (synthetic numbers built to match the article)."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqstress.signals import (
    COMPONENTS,
    DEFAULT_CONFIG,
    DEFAULT_WEIGHTS,
    Breadth,
    CascadeDetector,
    Concentration,
    Deleveraging,
    Divergence,
    Imbalance,
    NearExtreme,
    SpikeResult,
    StressConfig,
    StressIndex,
    StressInputs,
    breadth,
    bucket_bounds,
    classify_deleveraging,
    concentration,
    divergence,
    imbalance,
    imbalance_by_window,
    long_share,
    near_extreme_share,
    normalised_slope,
    price_clusters,
    ramp,
    range_pct,
    spike,
    stress_components,
    stress_index,
    top_levels,
    venue_usd,
)

M = 1_000_000.0
nan, inf = math.nan, math.inf

TOTAL_WEIGHT = sum(DEFAULT_WEIGHTS.values())


def approx(x: float, rel: float = 1e-9) -> object:
    return pytest.approx(x, rel=rel, abs=1e-12)


def dumps(obj: object) -> str:
    """Strict JSON (no NaN/Infinity): what the signals topic will carry."""
    return json.dumps(obj, allow_nan=False)


# ------------------------------------------------------------------------------ 1. imbalance


def test_long_share_values() -> None:
    assert long_share(3, 1) == 0.75
    assert long_share(0, 5) == 0.0
    assert long_share(5, 0) == 1.0
    assert long_share(0, 0) is None


def test_long_share_invalid_amounts_count_as_zero() -> None:
    assert long_share(-1, 5) == 0.0
    assert long_share(nan, 5) == 0.0
    assert long_share(inf, 5) == 0.0
    assert long_share(-3, -4) is None


def test_imbalance_overall_and_per_exchange() -> None:
    imb = imbalance({"a": {"long": 30, "short": 10}, "b": {"long": 0, "short": 0},
                     "c": {"short": 60}})
    assert imb.long_usd == 30 and imb.short_usd == 70 and imb.total_usd == 100
    assert imb.long_share == approx(0.3)
    assert imb.skew == approx(0.4)
    assert imb.per_exchange == {"a": 0.75, "b": None, "c": 0.0}
    assert json.loads(dumps(imb.to_dict()))["per_exchange"]["b"] is None


def test_imbalance_empty() -> None:
    imb = imbalance({})
    assert imb == Imbalance(0.0, 0.0, None, {})
    assert imb.skew is None


def test_imbalance_by_window_takes_usd_by_exchange_shape() -> None:
    # The shape of Snapshot.usd_by_exchange() / `replay --json`.
    windows = {"1m": {"binance": {"long": 1.0, "short": 3.0}},
               "1h": {"binance": {"long": 9.0, "short": 1.0}, "okx": {"long": 0.0, "short": 0.0}}}
    out = imbalance_by_window(windows)
    assert out["1m"].long_share == 0.25
    assert out["1h"].long_share == 0.9
    assert out["1h"].per_exchange == {"binance": 0.9, "okx": None}


def test_imbalance_matches_windows_snapshot() -> None:
    from liqstress.event import make_event
    from liqstress.windows import WindowStore

    now = 1_700_000_040.0
    store = WindowStore()
    for i, (ex, side, usd) in enumerate([("binance", "long", 300.0), ("okx", "short", 100.0),
                                         ("binance", "short", 100.0)]):
        store.add(make_event(exchange=ex, symbol="BTCUSDT", base="BTC", quote="USDT",
                             market="linear", side=side, price=100.0, qty=usd / 100,
                             notional_usd=usd, ts=now - 30, recv_ts=now - 29, sampled=False,
                             venue_id=f"id{i}"), now)
    snap = store.snapshot(now)
    imb = imbalance(snap.usd_by_exchange()["1h"])
    assert imb.long_share == 0.6
    assert imb.long_usd == snap.total("1h", "long").usd
    assert venue_usd(snap.usd_by_exchange()["1h"], "short") == {"binance": 100.0, "okx": 100.0}
    assert venue_usd(snap.usd_by_exchange()["1h"]) == {"binance": 400.0, "okx": 100.0}


def test_venue_usd_rejects_bad_side() -> None:
    with pytest.raises(ValueError):
        venue_usd({}, "both")  # type: ignore[arg-type]


@given(st.floats(allow_nan=True, allow_infinity=True),
       st.floats(allow_nan=True, allow_infinity=True))
def test_long_share_always_in_unit_interval(a: float, b: float) -> None:
    s = long_share(a, b)
    assert s is None or 0.0 <= s <= 1.0


# ------------------------------------------------------------------------------ 2. spike


def test_spike_median_baseline() -> None:
    r = spike(90, [10, 20, 30], factor=3.0, min_usd=50)
    assert r == SpikeResult(multiple=4.5, baseline=20.0, flag=True, current_usd=90.0,
                            baseline_hours=3)
    assert not spike(90, [10, 20, 30], factor=3.0, min_usd=100).flag  # too small in USD
    assert not spike(50, [10, 20, 30], factor=3.0, min_usd=0).flag  # 2.5x < 3x
    assert spike(60, [10, 20, 30], factor=3.0, min_usd=0).flag  # exactly 3x flags


def test_spike_even_history_and_lookback() -> None:
    assert spike(100, [10, 20, 30, 40]).baseline == 25.0
    # only the last 24 hours count
    r = spike(100, [1000.0] * 10 + [10.0] * 24, min_usd=0)
    assert r.baseline == 10.0 and r.baseline_hours == 24 and r.multiple == 10.0 and r.flag
    assert spike(100, [1000.0, 10.0], lookback=1).baseline == 10.0


def test_spike_fewer_hours_uses_what_exists() -> None:
    r = spike(10 * M, [2 * M])
    assert r.baseline == 2 * M and r.multiple == 5.0 and r.flag and r.baseline_hours == 1


def test_spike_no_history_no_flag() -> None:
    r = spike(10 * M, [])
    assert r.multiple is None and r.baseline is None and not r.flag
    assert spike(10 * M, [None, nan, -1.0, inf]).baseline is None


def test_spike_invalid_history_points_dropped() -> None:
    assert spike(100, [10, nan, 30, None, -5, inf]).baseline == 20.0


def test_spike_zero_baseline() -> None:
    r = spike(2 * M, [0, 0, 5])
    assert r.baseline == 0.0 and r.multiple == inf and r.flag
    assert dumps(r.to_dict())  # inf is null on the wire
    assert r.to_dict()["multiple"] is None
    assert not spike(100, [0, 0, 0]).flag  # inf multiple but below min_usd
    quiet = spike(0, [0, 0])
    assert quiet.multiple == 0.0 and not quiet.flag


def test_spike_invalid_current_is_zero() -> None:
    r = spike(nan, [10, 20])
    assert r.current_usd == 0.0 and r.multiple == 0.0 and not r.flag


def test_spike_rejects_bad_lookback() -> None:
    with pytest.raises(ValueError):
        spike(1, [1], lookback=0)


# ------------------------------------------------------------------------------ 3. concentration


def test_concentration_values() -> None:
    c = concentration({"a": 50, "b": 30, "c": 20})
    assert c.total_usd == 100
    assert c.shares == {"a": 0.5, "b": 0.3, "c": 0.2}
    assert c.top == [("a", 0.5), ("b", 0.3), ("c", 0.2)]
    assert c.top2_share == approx(0.8)
    assert c.hhi == approx(0.25 + 0.09 + 0.04)
    assert c.venues == 3
    assert json.loads(dumps(c.to_dict()))["top"][0] == ["a", 0.5]


def test_concentration_single_exchange() -> None:
    c = concentration({"binance": 7.0})
    assert c.shares == {"binance": 1.0} and c.top2_share == 1.0 and c.hhi == 1.0


def test_concentration_equal_venues_hhi_is_one_over_n() -> None:
    c = concentration({"a": 5, "b": 5, "c": 5, "d": 5})
    assert c.hhi == approx(0.25)
    assert c.top == [("a", 0.25), ("b", 0.25), ("c", 0.25), ("d", 0.25)]  # ties by name


def test_concentration_zero_and_invalid() -> None:
    assert concentration({}) == Concentration(0.0, {}, [], None, None, 0)
    assert concentration({"a": 0, "b": 0}).hhi is None
    c = concentration({"a": 10, "b": 0, "c": nan, "d": -4})
    assert c.shares == {"a": 1.0} and c.venues == 1


venue_names = st.text(alphabet="abcdefghij", min_size=1, max_size=4)
amounts = st.floats(min_value=0, max_value=1e12, allow_nan=False)


@given(st.dictionaries(venue_names, amounts, max_size=12))
def test_concentration_shares_sum_to_one_and_hhi_bounds(usd: dict[str, float]) -> None:
    c = concentration(usd)
    if sum(usd.values()) > 0:
        assert abs(sum(c.shares.values()) - 1.0) <= 1e-9
        n = len(c.shares)
        assert c.hhi is not None and 1.0 / n - 1e-9 <= c.hhi <= 1.0 + 1e-9
        # also within [1/N, 1] for N = every venue listed, zero ones included
        assert c.hhi >= 1.0 / len(usd) - 1e-9
        assert c.top2_share is not None and 0 < c.top2_share <= 1.0 + 1e-9
        assert [s for _, s in c.top] == sorted(c.shares.values(), reverse=True)
    else:
        assert c.shares == {} and c.hhi is None


# ------------------------------------------------------------------------------ 4. cascade


def test_cascade_start_size_peak_and_hysteretic_end() -> None:
    d = CascadeDetector(threshold_usd=1000, window_seconds=60)  # V = 100, r = 0.5, hold 60
    assert d.venue_min_usd == 100 and d.hold_seconds == 60
    assert d.update(0, {"a": 600, "b": 50}, "long") == []  # 650 < 1000
    (start,) = d.update(10, {"a": 600, "b": 500}, "long")
    assert start.kind == "start" and start.direction == "long"
    assert start.started_at == 10 and start.ended_at is None
    assert start.venues == ("a", "b") and start.size_usd == 1100 and start.peak_usd == 1100
    assert d.active("long") and d.active() and not d.active("short")

    assert d.update(20, {"a": 900, "b": 400, "c": 150}, "long") == []
    assert d.size_usd("long") == approx(1100 + 1450 * 10 / 60)
    assert d.state("long").peak_usd == 1450
    assert d.state("long").venues == ("a", "b", "c")

    # 440 < 500 (= r·T): quiet from t=30 ...
    assert d.update(30, {"a": 400, "b": 40}, "long") == []
    assert d.state("long").quiet_since == 30
    # ... but at t=50 it holds again: 760 >= 500 and a, b >= 50 (= r·V): the timer resets
    assert d.update(50, {"a": 700, "b": 60}, "long") == []
    assert d.state("long").quiet_since is None
    size = 1100 + 1450 * 10 / 60 + 440 * 10 / 60 + 760 * 20 / 60
    assert d.size_usd("long") == approx(size)
    # one venue left: quiet from t=60; not yet over after 40 s
    assert d.update(60, {"a": 100}, "long") == []
    size += 100 * 10 / 60
    assert d.update(100, {}, "long") == []
    assert d.active("long")
    (end,) = d.update(120, {}, "long")
    assert end.kind == "end" and end.started_at == 10 and end.ended_at == 120
    assert end.duration_s == 110
    assert end.size_usd == approx(size) and end.peak_usd == 1450
    assert end.venues == ("a", "b", "c")
    assert not d.active() and d.size_usd("long") == 0.0
    json.loads(dumps(end.to_dict()))
    # and it can start again
    (again,) = d.update(130, {"a": 2000, "b": 2000}, "long")
    assert again.kind == "start" and again.started_at == 130 and again.size_usd == 4000


def test_cascade_needs_min_venues() -> None:
    d = CascadeDetector(1000, 60)
    assert d.update(0, {"a": 1e9}, "short") == []
    assert d.update(1, {"a": 1e9, "b": 99}, "short") == []  # b below V = 100
    assert d.update(2, {"a": 1e9, "b": 100}, "short")[0].kind == "start"
    single = CascadeDetector(1000, 60, min_venues=1)
    assert single.update(0, {"a": 1000}, "long")[0].kind == "start"


def test_cascade_directions_are_independent() -> None:
    d = CascadeDetector(100, 60, hold_seconds=0)
    assert d.update(0, {"a": 100, "b": 100}, "long")[0].direction == "long"
    assert d.update(0, {"a": 1, "b": 1}, "short") == []
    assert d.active("long") and not d.active("short")
    (end,) = d.update(1, {}, "long")  # hold 0: ends at the first quiet update
    assert end.kind == "end" and end.size_usd == 200
    assert set(d.states()) == {"long", "short"}


def test_cascade_does_not_flap_around_threshold() -> None:
    d = CascadeDetector(1000, 60)
    events = []
    for t in range(0, 600, 5):  # oscillates 1100 / 900: above r·T all the time
        total = 1100 if (t // 5) % 2 == 0 else 900
        events += d.update(t, {"a": total / 2, "b": total / 2}, "long")
    assert [e.kind for e in events] == ["start"]


def test_cascade_time_going_backwards_adds_nothing() -> None:
    d = CascadeDetector(100, 60)
    d.update(100, {"a": 100, "b": 100}, "long")
    d.update(90, {"a": 100, "b": 100}, "long")
    assert d.size_usd("long") == 200
    d.update(160, {"a": 60, "b": 60}, "long")  # dt counts from 100, capped at 60
    assert d.size_usd("long") == approx(200 + 120)


def test_cascade_gap_longer_than_window_is_capped() -> None:
    d = CascadeDetector(100, 60)
    d.update(0, {"a": 100, "b": 100}, "long")
    d.update(600, {"a": 100, "b": 100}, "long")
    assert d.size_usd("long") == approx(400)


def test_cascade_rejects_bad_arguments() -> None:
    for kwargs in ({"threshold_usd": 0, "window_seconds": 60},
                   {"threshold_usd": 1, "window_seconds": 0},
                   {"threshold_usd": 1, "window_seconds": 60, "min_venues": 0},
                   {"threshold_usd": 1, "window_seconds": 60, "end_ratio": 0},
                   {"threshold_usd": 1, "window_seconds": 60, "end_ratio": 1.5},
                   {"threshold_usd": 1, "window_seconds": 60, "hold_seconds": -1}):
        with pytest.raises(ValueError):
            CascadeDetector(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CascadeDetector(1, 60).update(0, {}, "up")  # type: ignore[arg-type]


tick = st.tuples(st.floats(min_value=0, max_value=30),  # dt
                 st.sampled_from(["long", "short"]),
                 st.dictionaries(st.sampled_from(["a", "b", "c"]),
                                 st.one_of(st.floats(min_value=0, max_value=5000),
                                           st.just(nan), st.just(-1.0)), max_size=3))


@settings(max_examples=300)
@given(st.lists(tick, max_size=80), st.floats(min_value=0, max_value=120))
def test_cascade_events_alternate(ticks: list[tuple[float, str, dict[str, float]]],
                                  hold: float) -> None:
    d = CascadeDetector(1000, 60, hold_seconds=hold)
    now = 0.0
    kinds: dict[str, list[str]] = {"long": [], "short": []}
    for dt, direction, usd in ticks:
        now += dt
        events = d.update(now, usd, direction)  # type: ignore[arg-type]
        assert len(events) <= 1
        for e in events:
            assert e.direction == direction
            assert e.size_usd >= 0 and e.peak_usd >= 0
            kinds[direction].append(e.kind)
        assert d.active(direction) == (bool(kinds[direction]) and kinds[direction][-1] == "start")  # type: ignore[arg-type]
    for seq in kinds.values():
        assert all(k == ("start" if i % 2 == 0 else "end") for i, k in enumerate(seq))


# ------------------------------------------------------------------------------ 5. staged vs capitulation


def test_staged_two_separated_spike_hours() -> None:
    hours = [10.0] * 24
    hours[5] = hours[15] = 100.0
    r = classify_deleveraging(hours)
    # median 10, cut 30; total 22·10 + 200 = 420; largest 100/420
    assert r.label == "staged"
    assert r.distinct_spike_hours == 2 and r.spike_hours == 2
    assert r.largest_hour_share == approx(100 / 420)
    assert r.total_usd == 420 and r.median_usd == 10 and r.largest_hour_index == 5


def test_adjacent_spike_hours_are_one_stage() -> None:
    hours = [10.0] * 24
    hours[5] = hours[6] = 100.0
    r = classify_deleveraging(hours)
    assert r.distinct_spike_hours == 1 and r.spike_hours == 2 and r.label == "calm"
    assert classify_deleveraging(hours, min_stages=1).label == "staged"


def test_capitulation_one_hour_dominates() -> None:
    hours = [10.0] * 23 + [1000.0]
    r = classify_deleveraging(hours)
    assert r.label == "capitulation"
    assert r.largest_hour_share == approx(1000 / 1230)
    assert r.distinct_spike_hours == 1 and r.largest_hour_index == 23
    # dominance is "above" the threshold: exactly half is not capitulation
    assert classify_deleveraging([50.0, 0.0, 0.0, 0.0, 50.0]).label == "staged"  # median 0
    assert classify_deleveraging([50.0, 50.0]).label == "calm"


def test_deleveraging_calm_cases() -> None:
    assert classify_deleveraging([]) == Deleveraging(0, None, "calm")
    assert classify_deleveraging([0.0] * 24).largest_hour_share is None
    assert classify_deleveraging([10.0] * 24).label == "calm"  # no spike hour
    hours = [10.0] * 23 + [1000.0]
    assert classify_deleveraging(hours, min_total_usd=1e6).label == "calm"
    assert classify_deleveraging(hours, min_hour_usd=2000).label == "calm"


def test_deleveraging_uses_last_hours_and_invalid_are_zero() -> None:
    hours = [1e9] * 5 + [10.0] * 23 + [1000.0]  # the old 1e9 hours are outside the 24
    assert classify_deleveraging(hours).label == "capitulation"
    r = classify_deleveraging([10.0, nan, 10.0, None, 10.0, 100.0])  # type: ignore[list-item]
    assert r.total_usd == 130 and r.median_usd == 10


def test_deleveraging_median_zero() -> None:
    # mostly silent: any positive hour is a spike hour
    hours = [0.0] * 20 + [5.0, 0.0, 5.0, 0.0]
    r = classify_deleveraging(hours)
    assert r.spike_hours == 2 and r.distinct_spike_hours == 2 and r.label == "staged"


hour_lists = st.lists(st.one_of(st.floats(min_value=0, max_value=1e10), st.just(0.0)),
                      min_size=0, max_size=24)


@given(hour_lists, st.randoms(use_true_random=False))
def test_deleveraging_permutation_invariants(hours: list[float], rnd: random.Random) -> None:
    r = classify_deleveraging(hours)
    assert r.label in ("calm", "staged", "capitulation")
    shuffled = hours[:]
    rnd.shuffle(shuffled)
    p = classify_deleveraging(shuffled)
    # order-free quantities and the order-free calls are stable under any permutation
    assert p.spike_hours == r.spike_hours
    assert p.total_usd == approx(r.total_usd)
    assert (p.largest_hour_share is None) == (r.largest_hour_share is None)
    if r.largest_hour_share is not None:
        assert p.largest_hour_share == approx(r.largest_hour_share)
    assert (p.label == "capitulation") == (r.label == "capitulation")
    if r.spike_hours == 0:
        assert p.label == "calm"
    # reversing time keeps the runs, hence the full label
    rev = classify_deleveraging(hours[::-1])
    assert rev.label == r.label and rev.distinct_spike_hours == r.distinct_spike_hours
    if r.largest_hour_share is not None:
        assert 0 < r.largest_hour_share <= 1 + 1e-12


# ------------------------------------------------------------------------------ 6. clusters


def test_bucket_bounds_hand_values() -> None:
    # bucket_pct = 100: g = 2, buckets [2^k, 2^(k+1))
    assert bucket_bounds(3, 100) == (2.0, 4.0)
    assert bucket_bounds(4, 100) == (4.0, 8.0)
    assert bucket_bounds(1, 100) == (1.0, 2.0)
    assert bucket_bounds(0.3, 100) == (0.25, 0.5)
    with pytest.raises(ValueError):
        bucket_bounds(3, 0)


@given(st.floats(min_value=1e-8, max_value=1e8), st.floats(min_value=0.01, max_value=10))
def test_bucket_contains_price(price: float, pct: float) -> None:
    lo, hi = bucket_bounds(price, pct)
    assert lo <= price < hi
    assert hi / lo == approx(1 + pct / 100, rel=1e-9)


def test_price_clusters_hand_values() -> None:
    liqs = [(3, "long", 1.0), (5, "short", 2.0), (7, "long", 3.0), (4, "long", 1.0),
            (3.5, "short", None), (0, "long", 9.0), (6, "both", 9.0), (6, "long", nan),
            (nan, "long", 1.0)]
    levels = price_clusters(liqs, bucket_pct=100)
    assert [(lv.low, lv.high, lv.price, lv.long_usd, lv.short_usd) for lv in levels] == [
        (2.0, 4.0, 3.0, 1.0, 0.0), (4.0, 8.0, 6.0, 4.0, 2.0)]
    assert levels[1].total_usd == 6.0
    assert json.loads(dumps(levels[1].to_dict()))["total_usd"] == 6.0
    assert price_clusters([]) == []


def test_price_clusters_default_bucket_width() -> None:
    levels = price_clusters([(60_000, "long", 1.0), (60_050, "long", 2.0),
                             (60_350, "short", 4.0)])
    # geometric buckets: [1.0025^4406, 1.0025^4407) = [59949.3, 60099.2) holds 60,000 and 60,050
    assert len(levels) == 2
    assert levels[0].low == approx(1.0025 ** 4406) and levels[0].high == approx(1.0025 ** 4407)
    assert levels[0].long_usd == 3.0 and levels[1].short_usd == 4.0
    assert levels[0].high / levels[0].low == approx(1.0025)


def test_top_levels() -> None:
    levels = price_clusters([(3, "long", 1.0), (5, "short", 2.0), (7, "long", 3.0),
                             (20, "short", 5.0)], bucket_pct=100)
    assert [lv.price for lv in top_levels(levels, 2)] == [6.0, 24.0]  # 5 then 5: price asc
    assert [lv.price for lv in top_levels(levels, 5, by="long")] == [6.0, 3.0]
    assert [lv.price for lv in top_levels(levels, 5, by="short")] == [24.0, 6.0]
    assert top_levels(levels, 0) == [] and top_levels(levels, -1) == []


def test_near_extreme_share_hand_values() -> None:
    liqs = [(100.5, "long", 30.0), (101, "long", 10.0), (105, "long", 60.0),
            (99, "long", 0.0), (109, "short", 20.0), (108, "short", 80.0)]
    # low cut 101, high cut 108.9
    r = near_extreme_share(liqs, local_low=100, local_high=110, within_pct=1.0)
    assert r == NearExtreme(0.4, 0.2)
    near_low, near_high = r  # unpacks like the tuple of the brief
    assert near_low == 0.4 and near_high == 0.2
    assert r.to_dict() == {"long_share_near_low": 0.4, "short_share_near_high": 0.2}
    wide = near_extreme_share(liqs, 100, 110, within_pct=5.0)  # 105 and 104.5
    assert wide == NearExtreme(1.0, 1.0)


def test_near_extreme_share_edges() -> None:
    assert near_extreme_share([], 100, 110) == NearExtreme(None, None)
    only_long = [(100, "long", 5.0)]
    assert near_extreme_share(only_long, 100, 110) == NearExtreme(1.0, None)
    assert near_extreme_share(only_long, None, 110) == NearExtreme(None, None)
    assert near_extreme_share(only_long, nan, 110) == NearExtreme(None, None)
    assert near_extreme_share([(90, "long", 5.0)], 100, 110).long_share_near_low == 1.0


def test_range_pct() -> None:
    assert range_pct(110, 100) == approx(10.0)
    assert range_pct(100, 100) == 0.0
    assert range_pct(90, 100) is None and range_pct(1, 0) is None and range_pct(nan, 1) is None


# ------------------------------------------------------------------------------ 7. divergence


def test_normalised_slope_hand_values() -> None:
    assert normalised_slope([10, 20, 30, 40, 50, 60]) == approx(10 / 35)
    assert normalised_slope([6, 5, 4, 3, 2, 1]) == approx(-1 / 3.5)
    assert normalised_slope([5, 5, 5]) == 0.0
    assert normalised_slope([0, 0, 0]) is None
    assert normalised_slope([7]) is None
    # a dropped point keeps the others' hour index: (0,1), (2,3) -> slope 1, mean 2
    assert normalised_slope([1, None, 3]) == approx(0.5)


def test_normalised_slope_units_cancel() -> None:
    ys = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0]
    assert normalised_slope([y * 1e6 for y in ys]) == approx(normalised_slope(ys))


def test_divergence_flag() -> None:
    r = divergence([10, 20, 30, 40, 50, 60], [6, 5, 4, 3, 2, 1])
    assert r.liq_slope == approx(10 / 35) and r.range_slope == approx(-1 / 3.5)
    assert r.flag and r.points == 6
    assert json.loads(dumps(r.to_dict()))["flag"] is True


def test_divergence_no_flag_cases() -> None:
    assert not divergence([10, 20, 30, 40, 50, 60], [1, 2, 3, 4, 5, 6]).flag  # range grows
    assert not divergence([60, 50, 40, 30, 20, 10], [6, 5, 4, 3, 2, 1]).flag  # liq falls
    few = divergence([10, 20, 30], [3, 2, 1])
    assert few.liq_slope is not None and not few.flag and few.points == 3
    assert divergence([10, 20, 30], [3, 2, 1], min_points=3).flag
    # below the thresholds: liquidations +1 %/h of the mean
    flat = divergence([100, 101, 102, 103, 104, 105], [6, 5, 4, 3, 2, 1])
    assert flat.liq_slope == approx(1 / 102.5) and not flat.flag
    empty = divergence([], [])
    assert empty == Divergence(None, None, False, 0)


def test_divergence_aligns_on_latest_and_drops_invalid_pairs() -> None:
    liq = [999.0, 999.0, 10, 20, 30, 40, 50, 60]  # two extra old hours ignored
    r = divergence(liq, [6, 5, 4, 3, 2, 1])
    assert r.liq_slope == approx(10 / 35) and r.points == 6
    r2 = divergence([10, 20, nan, 40, 50, 60, 70], [7, 6, 5, None, 3, 2, 1])  # type: ignore[list-item]
    assert r2.points == 5
    assert r2.liq_slope == approx(normalised_slope([10, 20, None, None, 50, 60, 70]))


# ------------------------------------------------------------------------------ 8. breadth


def test_breadth_hand_values() -> None:
    r = breadth({"BTC": (100, 101, 90), "ETH": (50, 49, 55), "SOL": (20, 21, None),
                 "X": (None, 1, 1), "Y": (0, 1, 1)})
    assert r == Breadth(down_1h_share=2 / 3, down_24h_share=0.5, coins=3, down_1h=2,
                        down_24h=1, coins_1h=3, coins_24h=2)
    assert json.loads(dumps(r.to_dict()))["coins"] == 3


def test_breadth_min_move_and_empty() -> None:
    prices = {"BTC": (99.5, 100, 100), "ETH": (97, 100, 100)}
    assert breadth(prices).down_1h_share == 1.0
    assert breadth(prices, min_move_pct=1.0).down_1h_share == 0.5  # -0.5 % does not count
    assert breadth({"BTC": (100, 100, 100)}).down_1h_share == 0.0  # unchanged is not down
    assert breadth({}) == Breadth(None, None, 0)


# ------------------------------------------------------------------------------ 9. stress index


def test_ramp() -> None:
    assert ramp(5, 0, 10) == 0.5
    assert ramp(-1, 0, 10) == 0.0 and ramp(11, 0, 10) == 1.0
    assert ramp(inf, 0, 10) == 1.0 and ramp(-inf, 0, 10) == 0.0
    assert ramp(None, 0, 10) is None and ramp(nan, 0, 10) is None
    with pytest.raises(ValueError):
        ramp(1, 1, 1)


def test_index_hand_computed() -> None:
    # skew |0.95-0.5|·2 = 0.9 -> ramp(0.2, 0.9) = 1; spike 3.5 -> (3.5-1)/(6-1) = 0.5
    idx = stress_index(StressInputs(long_share=0.95, spike_multiple=3.5))
    assert idx.components["skew"] == approx(1.0) and idx.components["spike"] == approx(0.5)
    assert idx.value == approx(100 * (0.2 * 1 + 0.2 * 0.5) / 0.4)  # 75
    assert idx.contributions["skew"] == approx(50) and idx.contributions["spike"] == approx(25)
    assert idx.contributions["size"] is None and idx.components["size"] is None
    # coverage: the weight present over all weights (the leverage components are absent)
    assert idx.coverage == approx(0.4 / TOTAL_WEIGHT) and idx.level == "extreme"
    json.loads(dumps(idx.to_dict()))


def test_index_all_components() -> None:
    inputs = StressInputs(long_share=0.5, spike_multiple=1.0, liquidations_usd=105 * M,
                          hhi=0.4, cascade_active=True, deleveraging="staged",
                          near_low_share=0.45, near_high_share=0.1, divergence=False,
                          breadth_down_1h=0.75, breadth_down_24h=0.25)
    c = stress_components(inputs)
    assert c == {"skew": 0.0, "spike": 0.0, "size": approx(0.5), "concentration": approx(0.5),
                 "cascade": 1.0, "deleveraging": 0.5, "clusters": approx(0.5),
                 "divergence": 0.0, "breadth_1h": approx(0.5), "breadth_24h": 0.0,
                 "buildup": None, "crowding": None, "oi_deleveraging": None, "intensity": None}
    expected = 100 * (0.10 * 0.5 + 0.05 * 0.5 + 0.15 + 0.10 * 0.5 + 0.05 * 0.5 + 0.05 * 0.5)
    idx = stress_index(inputs)
    assert idx.value == approx(expected) and idx.coverage == approx(1.0 / TOTAL_WEIGHT)
    # With open interest, the four leverage components join (weights 0.05 each):
    lev = stress_index(replace(inputs, leverage_buildup=1.0, crowding=0.5, oi_deleveraging=0.0,
                               intensity=0.5))
    assert lev.coverage == approx(1.0)
    assert lev.value == approx((expected + 100 * (0.05 + 0.05 * 0.5 + 0.05 * 0.5)) / TOTAL_WEIGHT)
    assert sum(v for v in idx.contributions.values() if v is not None) == approx(idx.value)
    assert idx.level == "elevated"  # 32.5


def test_index_missing_inputs_renormalise() -> None:
    assert stress_index(StressInputs()) == StressIndex(
        value=0.0, components={k: None for k in COMPONENTS},
        contributions={k: None for k in COMPONENTS}, coverage=0.0, level="low")
    only_cascade = stress_index(StressInputs(cascade_active=True))
    assert only_cascade.value == 100.0 and only_cascade.coverage == approx(0.15 / TOTAL_WEIGHT)
    assert stress_index(StressInputs(cascade_active=False)).value == 0.0
    # NaN is "missing", inf saturates
    assert stress_index(StressInputs(spike_multiple=nan)).coverage == 0.0
    assert stress_index(StressInputs(spike_multiple=inf)).value == 100.0


def test_index_deleveraging_scores_and_bad_label() -> None:
    assert stress_index(StressInputs(deleveraging="capitulation")).value == 100.0
    assert stress_index(StressInputs(deleveraging="staged")).value == 50.0
    assert stress_index(StressInputs(deleveraging="calm")).value == 0.0
    with pytest.raises(ValueError):
        stress_index(StressInputs(deleveraging="panic"))  # type: ignore[arg-type]


def test_config_custom_weights_and_validation() -> None:
    cfg = dataclasses.replace(DEFAULT_CONFIG, weights={"skew": 0.0, "spike": 3.0},
                              ramps={"spike": (1.0, 3.0)})
    assert cfg.weights["cascade"] == DEFAULT_WEIGHTS["cascade"]  # merged over the defaults
    inputs = StressInputs(long_share=1.0, spike_multiple=2.0)
    idx = stress_index(inputs, cfg)
    assert idx.value == 50.0  # skew off: spike (2-1)/(3-1) alone
    assert idx.contributions["skew"] == 0.0
    assert stress_index(StressInputs(long_share=1.0), cfg).value == 0.0
    assert DEFAULT_CONFIG.weights == DEFAULT_WEIGHTS  # replace() did not touch the default
    # 1.0 for the liquidation-based components, plus 0.2 for the four leverage ones (absent
    # without open interest: coverage then says so)
    assert sum(DEFAULT_WEIGHTS.values()) == approx(1.2)
    json.loads(dumps(DEFAULT_CONFIG.to_dict()))
    for bad in ({"weights": {"nope": 1.0}}, {"weights": {"skew": -1.0}},
                {"weights": dict.fromkeys(DEFAULT_WEIGHTS, 0.0)},
                {"ramps": {"spike": (2.0, 1.0)}}, {"ramps": {"cascade": (0.0, 1.0)}},
                {"staged_score": 2.0}):
        with pytest.raises(ValueError):
            StressConfig(**bad)  # type: ignore[arg-type]


def test_levels() -> None:
    cfg = StressConfig(weights={k: (1.0 if k == "spike" else 0.0) for k in DEFAULT_WEIGHTS})
    levels = {m: stress_index(StressInputs(spike_multiple=m), cfg).level
              for m in (1.0, 2.25, 3.5, 4.75, 6.0)}
    assert levels == {1.0: "low", 2.25: "elevated", 3.5: "high", 4.75: "extreme",
                      6.0: "extreme"}


any_float = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
any_bool = st.one_of(st.none(), st.booleans())
stress_inputs = st.builds(
    StressInputs, long_share=any_float, spike_multiple=any_float, liquidations_usd=any_float,
    hhi=any_float, cascade_active=any_bool,
    deleveraging=st.one_of(st.none(), st.sampled_from(["calm", "staged", "capitulation"])),
    near_low_share=any_float, near_high_share=any_float, divergence=any_bool,
    breadth_down_1h=any_float, breadth_down_24h=any_float)
weights = st.dictionaries(st.sampled_from(COMPONENTS),
                          st.floats(min_value=0, max_value=1e6), max_size=len(COMPONENTS))


@settings(max_examples=500)
@given(stress_inputs, weights)
def test_index_always_within_0_100(inputs: StressInputs, w: dict[str, float]) -> None:
    try:
        cfg = StressConfig(weights=w)
    except ValueError:  # all weights zero
        cfg = DEFAULT_CONFIG
    idx = stress_index(inputs, cfg)
    assert 0.0 <= idx.value <= 100.0
    assert 0.0 <= idx.coverage <= 1.0
    assert all(c is None or 0.0 <= c <= 1.0 for c in idx.components.values())
    dumps(idx.to_dict())
    dumps(inputs.to_dict())


# ------------------------------------------------------------------------------ the seed story
# Issue 4: "$230M of longs liquidated in an hour while shorts stayed under $5M"; Binance ~36M and
# Hyperliquid ~59M of longs, shorts ~3.5M across venues; price range-bound, long liquidations
# clustered near the local low; "leverage is being reduced in stages rather than in a single
# capitulation". Synthetic numbers built to match.

SEED_HOUR = {  # the 1 h window: exchange -> side -> USD
    "hyperliquid": {"long": 59 * M, "short": 0.80 * M},
    "binance": {"long": 36 * M, "short": 1.00 * M},
    "bybit": {"long": 30 * M, "short": 0.60 * M},
    "bitget": {"long": 27 * M, "short": 0.25 * M},
    "okx": {"long": 28 * M, "short": 0.50 * M},
    "gate": {"long": 25 * M, "short": 0.20 * M},
    "htx": {"long": 25 * M, "short": 0.15 * M},
}
#: the 24 hours before it: calm hours of ~15-25M, with two earlier waves (hours 6 and 14)
SEED_PREVIOUS = [18 * M, 22 * M, 20 * M, 17 * M, 25 * M, 21 * M, 140 * M, 24 * M, 19 * M,
                 20 * M, 16 * M, 23 * M, 22 * M, 18 * M, 150 * M, 26 * M, 20 * M, 19 * M,
                 21 * M, 17 * M, 20 * M, 24 * M, 22 * M, 20 * M]


def test_seed_story() -> None:
    imb = imbalance(SEED_HOUR)
    assert imb.long_usd == approx(230 * M) and imb.short_usd == approx(3.5 * M)
    assert imb.short_usd < 5 * M
    assert imb.long_share == approx(230 / 233.5) and abs(imb.long_share - 0.98) < 0.01
    assert imb.per_exchange["hyperliquid"] == approx(59 / 59.8)

    sp = spike(imb.total_usd, SEED_PREVIOUS)
    assert sp.baseline == 20.5 * M  # median of the 24 previous hours
    assert sp.multiple == approx(233.5 / 20.5) and sp.flag

    conc = concentration(venue_usd(SEED_HOUR, "long"))
    assert [ex for ex, _ in conc.top[:2]] == ["hyperliquid", "binance"]
    assert conc.top2_share == approx(95 / 230)
    assert conc.hhi == approx(sum((v["long"] / (230 * M)) ** 2 for v in SEED_HOUR.values()))

    # the last 24 h (the 23 previous hours + this one): three separated waves, none > 50 %
    day = SEED_PREVIOUS[1:] + [imb.total_usd]
    dl = classify_deleveraging(day)
    assert dl.label == "staged" and dl.distinct_spike_hours == 3
    assert dl.largest_hour_share is not None and dl.largest_hour_share < 0.5
    # the same hour after a quiet day would have been a capitulation
    assert classify_deleveraging([2 * M] * 23 + [imb.total_usd]).label == "capitulation"

    # BTC range-bound 60,000-61,500; long liquidations stacked just above the local low
    rng = random.Random(4)
    liqs: list[tuple[float, str, float]] = []
    for _ in range(400):
        liqs.append((60_000 + rng.random() * 500, "long", 0.4 * M))  # within 1 % of the low
    for _ in range(60):
        liqs.append((60_700 + rng.random() * 800, "long", 0.2 * M))
    for _ in range(30):
        liqs.append((60_500 + rng.random() * 1000, "short", 0.05 * M))
    near = near_extreme_share(liqs, local_low=60_000, local_high=61_500, within_pct=1.0)
    assert near.long_share_near_low == approx(160 / 172)
    top = top_levels(price_clusters(liqs), 3, by="long")
    assert all(lv.high <= 60_000 * 1.01 for lv in top)

    # cascade: both top venues liquidating longs minute after minute
    det = CascadeDetector(threshold_usd=2 * M, window_seconds=60)
    events = []
    per_min = {ex: v["long"] / 60 for ex, v in SEED_HOUR.items()}
    for minute in range(60):
        events += det.update(1_700_000_000 + 60 * minute, per_min, "long")
        events += det.update(1_700_000_000 + 60 * minute,
                             {ex: v["short"] / 60 for ex, v in SEED_HOUR.items()}, "short")
    assert [(e.kind, e.direction) for e in events] == [("start", "long")]
    assert det.size_usd("long") == approx(230 * M)
    assert {"binance", "hyperliquid"} <= set(events[0].venues)

    # range shrinking while liquidations rise over the last hours
    div = divergence([20 * M, 40 * M, 70 * M, 110 * M, 160 * M, 230 * M],
                     [2.4, 2.0, 1.8, 1.5, 1.3, 1.0])
    assert div.flag

    br = breadth({"BTC": (60_300, 60_900, 63_000), "ETH": (2_300, 2_330, 2_450),
                  "SOL": (140, 139, 150), "XRP": (2.0, 2.05, 2.2)})
    assert br.down_1h_share == 0.75 and br.down_24h_share == 1.0

    inputs = StressInputs.from_signals(imbalance=imb, spike=sp, concentration=conc,
                                       cascade_active=det.active(), deleveraging=dl,
                                       near_extreme=near, divergence=div, breadth=br)
    assert inputs.liquidations_usd == approx(233.5 * M) and inputs.deleveraging == "staged"
    idx = stress_index(inputs)
    assert idx.coverage == approx(1.0 / TOTAL_WEIGHT)  # every component but leverage
    assert idx.components["skew"] == 1.0 and idx.components["spike"] == 1.0
    assert idx.components["cascade"] == 1.0 and idx.components["clusters"] == 1.0
    assert idx.level in ("high", "extreme") and idx.value >= 75
    payload = json.loads(dumps({"imbalance": imb.to_dict(), "spike": sp.to_dict(),
                                "concentration": conc.to_dict(), "deleveraging": dl.to_dict(),
                                "near": near.to_dict(), "divergence": div.to_dict(),
                                "breadth": br.to_dict(), "index": idx.to_dict(),
                                "cascade": det.state("long").to_dict()}))
    assert payload["cascade"]["venues"][:2] == ["binance", "bitget"]
