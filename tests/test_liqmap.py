"""The estimated liquidation map (liqstress/liqmap.py, docs/signals.md section 11)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqstress.liqmap import (
    DEFAULT_LEVERAGE_MIX,
    DEFAULT_MAP_CONFIG,
    CoinMap,
    MapBuilder,
    MapConfig,
    build_map,
    liquidation_price,
)
from liqstress.signals.clusters import bucket_bounds

MIX = dict(DEFAULT_LEVERAGE_MIX)
MM = DEFAULT_MAP_CONFIG.maintenance_margin


def _one_increase(delta: float = 1000.0, price: float = 100.0,
                  config: MapConfig = DEFAULT_MAP_CONFIG) -> CoinMap:
    return build_map([(0.0, 5000.0, price, None, None),
                      (300.0, 5000.0 + delta, price, price, price)], config)


def _usd_at(cmap: CoinMap, side: str, price: float) -> float:
    """USD of the level whose bucket holds ``price``."""
    lo, hi = bucket_bounds(price)
    return sum(usd for a, b, usd in cmap.levels(side)  # type: ignore[arg-type]
               if math.isclose(a, lo) and math.isclose(b, hi))


def test_liquidation_price_formula() -> None:
    assert liquidation_price(100.0, 10, "long", 0.005) == pytest.approx(90.5)
    assert liquidation_price(100.0, 10, "short", 0.005) == pytest.approx(109.5)
    assert liquidation_price(100.0, 100, "long", 0.005) == pytest.approx(99.5)
    assert liquidation_price(100.0, 5, "short", 0.0) == pytest.approx(120.0)
    with pytest.raises(ValueError):
        liquidation_price(100.0, 10, "both")  # type: ignore[arg-type]


def test_one_increase_places_the_mix_at_its_liquidation_prices() -> None:
    m = _one_increase(1000.0, 100.0)
    for side in ("long", "short"):
        levels = m.levels(side)  # type: ignore[arg-type]
        assert len(levels) == len(MIX)
        assert [lv[0] for lv in levels] == sorted(lv[0] for lv in levels)
        for lev, share in MIX.items():
            px = liquidation_price(100.0, lev, side, MM)  # type: ignore[arg-type]
            assert _usd_at(m, side, px) == pytest.approx(1000.0 * share)
        assert m.total(side) == pytest.approx(1000.0)  # type: ignore[arg-type]
        assert m.added[side] == pytest.approx(1000.0)
    # longs below the price, shorts above it
    assert all(b <= 100.0 for _, b, _ in m.levels("long"))
    assert all(a >= 100.0 for a, _, _ in m.levels("short"))
    assert m.price == 100.0 and m.ts == 300.0
    # the 10x long at 90.5 holds the most USD (35 %)
    assert m.top("long", 1)[0][2] == pytest.approx(350.0)
    assert [lv[2] for lv in m.top("short", 5)] == sorted(
        (lv[2] for lv in m.levels("short")), reverse=True)


def test_first_point_only_sets_the_reference() -> None:
    m = build_map([(0.0, 5000.0, 100.0, None, None)])
    assert m.levels("long") == [] and m.levels("short") == []
    assert m.total("long") == 0 and m.price == 100.0
    empty = build_map([])
    assert empty.price is None and empty.ts is None
    assert empty.to_dict()["long"]["within_pct"] == {"1": None, "2": None, "5": None}


def test_decrease_removes_proportionally_from_both_sides() -> None:
    m = build_map([(0.0, 5000.0, 100.0, None, None), (300.0, 6000.0, 100.0, 100.0, 100.0),
                   (600.0, 5600.0, 100.0, 100.0, 100.0)])
    for side in ("long", "short"):
        assert m.closed[side] == pytest.approx(400.0)
        assert m.total(side) == pytest.approx(600.0)  # type: ignore[arg-type]
        for lev, share in MIX.items():
            px = liquidation_price(100.0, lev, side, MM)  # type: ignore[arg-type]
            assert _usd_at(m, side, px) == pytest.approx(600.0 * share)


def test_decrease_beyond_the_map_empties_it_and_never_goes_negative() -> None:
    m = build_map([(0.0, 5000.0, 100.0, None, None), (300.0, 5100.0, 100.0, 100.0, 100.0),
                   (600.0, 1000.0, 100.0, 100.0, 100.0), (900.0, 1050.0, 100.0, 100.0, 100.0)])
    for side in ("long", "short"):
        assert m.closed[side] == pytest.approx(100.0)  # capped at what the side held
        assert m.total(side) == pytest.approx(50.0)  # type: ignore[arg-type]
        assert all(usd > 0 for _, _, usd in m.levels(side))  # type: ignore[arg-type]


def test_price_crossing_removes_the_crossed_levels() -> None:
    b = MapBuilder()
    b.step(0.0, 5000.0, 100.0)
    b.step(300.0, 6000.0, 100.0, 100.0, 100.0)
    # low 98.0 crosses the 100x (99.5) and 50x (98.5) longs; high 103.0 the 100x (100.5) and
    # 50x (101.5) shorts; the others stay.
    b.step(600.0, 6000.0, 100.0, 98.0, 103.0)
    m = b.snapshot()
    assert m.crossed["long"] == pytest.approx(1000.0 * (MIX[100.0] + MIX[50.0]))
    assert m.crossed["short"] == pytest.approx(1000.0 * (MIX[100.0] + MIX[50.0]))
    assert _usd_at(m, "long", 99.5) == 0 and _usd_at(m, "long", 98.5) == 0
    assert _usd_at(m, "long", 96.5) == pytest.approx(250.0)
    assert _usd_at(m, "short", 103.5) == pytest.approx(250.0)
    # a level exactly at the low counts as crossed
    b.step(900.0, 6000.0, 100.0, 96.5, 100.0)
    assert b.snapshot().crossed["long"] == pytest.approx(1000.0 * (MIX[100.0] + MIX[50.0]
                                                                   + MIX[25.0]))


def test_crossing_uses_the_price_when_low_and_high_are_missing() -> None:
    m = build_map([(0.0, 5000.0, 100.0, None, None), (300.0, 6000.0, 100.0, None, None),
                   (600.0, 6000.0 * 95.0 / 100.0, 95.0, None, None)])  # price-neutral: no ΔOI
    # 95 is below the 100x, 50x and 25x long levels (99.5, 98.5, 96.5)
    assert m.crossed["long"] == pytest.approx(1000.0 * (MIX[100.0] + MIX[50.0] + MIX[25.0]))
    assert m.crossed["short"] == 0
    assert m.closed["long"] == pytest.approx(0.0, abs=1e-6)


def test_price_neutral_and_raw_usd_deltas() -> None:
    pts = [(0.0, 1000.0, 100.0, 100.0, 100.0), (300.0, 1100.0, 110.0, 100.0, 110.0)]
    # OI up 10 % in USD with the price up 10 %: no new coins
    neutral = build_map(pts)
    assert neutral.added["long"] == pytest.approx(0.0, abs=1e-9)
    assert neutral.total("long") == 0
    raw = build_map(pts, MapConfig(price_neutral=False))
    assert raw.added["long"] == pytest.approx(100.0)
    # price-neutral: 1000 USD at 100 = 10 coins; 1320 USD at 110 = 12 coins; +2 coins = 220 USD
    m = build_map([(0.0, 1000.0, 100.0, None, None), (300.0, 1320.0, 110.0, None, None)])
    assert m.added["short"] == pytest.approx(220.0)


def test_coins_give_the_change_and_the_entry_price() -> None:
    # 10 coins valued at 100 (1000 USD), then 12 coins valued at 105 (1260 USD) while the slot
    # closed at 110: +2 coins opened at 105, the price the open interest was measured at
    pts = [(0.0, 1000.0, 100.0, 100.0, 100.0, 10.0), (300.0, 1260.0, 110.0, 100.0, 110.0, 12.0)]
    m = build_map(pts)
    assert m.added["long"] == pytest.approx(210.0)
    assert _usd_at(m, "long", liquidation_price(105.0, 10.0, "long")) == pytest.approx(
        210.0 * MIX[10.0])
    assert m.price == 110.0  # the reference price stays the slot's close
    # the same coins valued at a moving price: nothing opened (the USD-only formula would read
    # 1100 USD at 110 against 1000 at 100 as none too, but 1155 at 110 as +55)
    m = build_map([(0.0, 1000.0, 100.0, None, None, 10.0),
                   (300.0, 1050.0, 110.0, None, None, 10.0)])
    assert m.added["long"] == 0 and m.total("long") == 0
    # coins missing at either end: the USD formula
    m = build_map([(0.0, 1000.0, 100.0, None, None, None),
                   (300.0, 1320.0, 110.0, None, None, 12.0)])
    assert m.added["short"] == pytest.approx(220.0)


def test_missing_values_skip_the_step_without_breaking_the_chain() -> None:
    b = MapBuilder()
    b.step(0.0, 5000.0, 100.0)
    b.step(300.0, None, 100.0, 99.0, 101.0)  # no OI
    b.step(600.0, 5800.0, None)  # no price
    b.step(900.0, math.nan, 100.0)  # invalid OI counts as missing
    b.step(1200.0, 6000.0, 100.0, 100.0, 100.0)  # the whole change since t=0
    m = b.snapshot()
    assert m.skipped == 3 and m.steps == 5
    assert m.added["long"] == pytest.approx(1000.0)
    assert m.ts == 1200.0


def test_a_skipped_step_still_applies_its_price_crossing() -> None:
    b = MapBuilder()
    b.step(0.0, 5000.0, 100.0)
    b.step(300.0, 6000.0, 100.0, 100.0, 100.0)
    b.step(600.0, None, None, 99.0, None)  # crosses the 100x long at 99.5
    m = b.snapshot()
    assert m.crossed["long"] == pytest.approx(1000.0 * MIX[100.0])
    assert m.crossed["short"] == 0


def test_positions_expire_after_the_horizon() -> None:
    cfg = MapConfig(horizon=3600.0)
    b = MapBuilder(cfg)
    b.step(0.0, 5000.0, 100.0)
    b.step(300.0, 6000.0, 100.0, 100.0, 100.0)
    b.step(600.0, 6500.0, 100.0, 100.0, 100.0)
    b.step(3600.0 + 300.0, 6500.0, 100.0, 100.0, 100.0)  # the t=300 cohort is exactly 1 h old
    assert b.snapshot().expired["long"] == 0
    b.step(3600.0 + 301.0, 6500.0, 100.0, 100.0, 100.0)
    m = b.snapshot()
    assert m.expired["long"] == pytest.approx(1000.0)
    assert m.total("long") == pytest.approx(500.0)


def test_out_of_order_points_are_rejected() -> None:
    b = MapBuilder()
    b.step(300.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        b.step(0.0, 1.0, 1.0)


def test_usd_within_bands() -> None:
    m = _one_increase(1000.0, 100.0)
    # longs: 100x at 99.5 (within 1 %), 50x at 98.5 (2 %), 25x at 96.5 (5 %), 10x 90.5, 5x 80.5
    assert m.usd_within("long", 100.0, 1.0) == pytest.approx(50.0)
    assert m.usd_within("long", 100.0, 2.0) == pytest.approx(150.0)
    assert m.usd_within("long", 100.0, 5.0) == pytest.approx(400.0)
    assert m.usd_within("long", 100.0, 25.0) == pytest.approx(1000.0)
    assert m.usd_within("short", 100.0, 1.0) == pytest.approx(50.0)
    assert m.usd_within("short", 100.0, 5.0) == pytest.approx(400.0)
    # shorts are above the price: nothing of them below it, and vice versa
    assert m.usd_within("short", 130.0, 5.0) == 0
    assert m.usd_within("long", 80.0, 5.0) == 0
    d = m.to_dict(n=3)
    json.dumps(d, allow_nan=False)
    assert d["long"]["within_pct"] == pytest.approx({"1": 50.0, "2": 150.0, "5": 400.0})
    assert len(d["short"]["top"]) == 3 and d["short"]["top"][0]["usd"] == pytest.approx(350.0)
    assert d["long"]["added_usd"] == pytest.approx(1000.0)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        MapConfig(leverage_mix=((10.0, 0.5),))
    with pytest.raises(ValueError, match="beyond the entry"):
        MapConfig(leverage_mix=((250.0, 1.0),))  # 1/250 = 0.4 % < 0.5 % maintenance
    with pytest.raises(ValueError):
        MapConfig(bucket_pct=0)
    with pytest.raises(ValueError):
        MapConfig(horizon=-1)
    assert math.fsum(s for _, s in DEFAULT_LEVERAGE_MIX) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        m = _one_increase()
        m.levels("both")  # type: ignore[arg-type]


def test_many_proportional_removals_renormalise() -> None:
    b = MapBuilder()
    b.step(0.0, 1e9, 100.0)
    b.step(1.0, 2e9, 100.0, 100.0, 100.0)
    oi = 2e9
    for i in range(40):  # each removes 60 % of what is left: scale 0.4^40 ~ 1e-16
        held = b.total("long")
        oi -= 0.6 * held
        b.step(2.0 + i, oi, 100.0, 100.0, 100.0)
    m = b.snapshot()
    for side in ("long", "short"):
        assert m.total(side) >= 0  # type: ignore[arg-type]
        assert m.total(side) == pytest.approx(  # type: ignore[arg-type]
            m.added[side] - m.closed[side] - m.crossed[side] - m.expired[side], abs=1e-3)


# ---- conservation and non-negativity --------------------------------------------------------

_maybe = st.one_of(st.none(), st.floats(min_value=0.5, max_value=2.0))


@st.composite
def _points(draw: st.DrawFn) -> list[tuple[float, float | None, float | None,
                                           float | None, float | None]]:
    n = draw(st.integers(min_value=0, max_value=40))
    t = 0.0
    out = []
    for _ in range(n):
        t += draw(st.sampled_from([0.0, 60.0, 300.0, 3600.0]))
        oi = draw(st.one_of(st.none(), st.floats(min_value=0.0, max_value=1e6)))
        px = draw(st.one_of(st.none(), st.floats(min_value=50.0, max_value=200.0)))
        down = draw(st.one_of(st.none(), st.floats(min_value=0.0, max_value=0.2)))
        up = draw(st.one_of(st.none(), st.floats(min_value=0.0, max_value=0.2)))
        ref = px if px is not None else 100.0
        low = None if down is None else ref * (1 - down)
        high = None if up is None else ref * (1 + up)
        out.append((t, oi, px, low, high))
    return out


_configs = st.builds(MapConfig, horizon=st.sampled_from([600.0, 7200.0, 90000.0]),
                     price_neutral=st.booleans())


@settings(max_examples=300, deadline=None)
@given(_points(), _configs)
def test_conservation_and_non_negativity(points, config) -> None:
    b = MapBuilder(config)
    for p in points:
        b.step(*p)
        for side in ("long", "short"):
            assert b.total(side) >= 0  # type: ignore[arg-type]
    m = b.snapshot()
    for side in ("long", "short"):
        levels = m.levels(side)  # type: ignore[arg-type]
        assert all(usd > 0 for _, _, usd in levels)
        assert all(a < b_ for a, b_, _ in levels)
        assert [lv[0] for lv in levels] == sorted(lv[0] for lv in levels)
        for key in ("added", "closed", "crossed", "expired"):
            assert getattr(m, key)[side] >= 0
        expect = m.added[side] - m.closed[side] - m.crossed[side] - m.expired[side]
        scale = max(1.0, m.added[side])
        assert m.total(side) == pytest.approx(expect, abs=1e-9 * scale)  # type: ignore[arg-type]
        assert m.total(side) == pytest.approx(b.total(side), abs=1e-9 * scale)  # type: ignore[arg-type]
    # every open long sits below, every open short above, the last valid price when that
    # point also set the low/high
    if points and m.price is not None and points[-1][2] is not None:
        assert all(lv[0] < m.price for lv in m.levels("long"))
        assert all(lv[1] > m.price for lv in m.levels("short"))
    json.dumps(m.to_dict(), allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(_points())
def test_build_map_equals_the_builder(points) -> None:
    b = MapBuilder()
    for p in points:
        b.step(*p)
    assert build_map(points) == b.snapshot()
