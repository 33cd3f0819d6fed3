"""liqstress/signals/leverage.py (docs/signals.md section 10): OI change, build-up, OI
deleveraging, liquidation intensity, crowding and their index components, on hand-computed
numbers; then the composed entry point over a real OIHistory."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import liqstress.signals.leverage as lv
from liqstress.oi_history import OIHistory
from liqstress.open_interest import OpenInterest, make_oi
from liqstress.signals.leverage import (
    OI_DELEVERAGING_LABELS,
    LeverageConfig,
    OIChange,
    classify_oi_deleveraging,
    crowding,
    index_components,
    leverage_buildup,
    leverage_signals,
    liquidation_intensity,
    oi_change,
    weighted_range_pct,
)

M = 1_000_000.0
H = 3600.0
T0 = 1_789_660_800.0
nan, inf = math.nan, math.inf


def approx(x: float, rel: float = 1e-9) -> object:
    return pytest.approx(x, rel=rel, abs=1e-12)


# -- OI change ------------------------------------------------------------------------------

def test_oi_change_values() -> None:
    c = oi_change(100 * M, 120 * M, window="24h", seconds=86400, instruments=3)
    assert (c.usd_then, c.usd_now, c.change_usd) == (100 * M, 120 * M, 20 * M)
    assert c.change_ratio == approx(0.2)
    assert (c.window, c.seconds, c.instruments) == ("24h", 86400, 3)
    assert oi_change(80.0, 60.0).change_ratio == approx(-0.25)


@pytest.mark.parametrize("then, now", [(None, 1.0), (1.0, None), (nan, 1.0), (1.0, -5.0),
                                       (inf, 1.0)])
def test_oi_change_missing_or_invalid_is_none(then: float | None, now: float | None) -> None:
    c = oi_change(then, now)
    assert c.change_usd is None and c.change_ratio is None


def test_oi_change_from_zero_has_no_ratio() -> None:
    c = oi_change(0.0, 50.0)
    assert (c.change_usd, c.change_ratio) == (50.0, None)


# -- build-up -------------------------------------------------------------------------------

def test_buildup_formula() -> None:
    # ramp(0.125; 0.05, 0.20) = 0.5; ramp(7; 5, 15) = 1/5 -> 0.5 * 4/5
    b = leverage_buildup(0.125, 7.0)
    assert b.score == approx(0.4)
    assert b.flag is False
    b = leverage_buildup(0.20, 2.0)  # OI +20 % in a 2 % range
    assert (b.score, b.flag) == (1.0, True)
    assert leverage_buildup(0.5, 16.0).score == 0.0  # the price moved: no build-up
    assert leverage_buildup(-0.3, 1.0).score == 0.0  # OI falling
    assert leverage_buildup(0.05, 0.0).score == 0.0  # at the ramp's low end
    # flat range: ramp(0.14) = 0.6 flags, ramp(0.11) = 0.4 does not
    assert leverage_buildup(0.14, 1.0).score == approx(0.6)
    assert leverage_buildup(0.14, 1.0).flag is True
    assert leverage_buildup(0.11, 1.0).flag is False
    assert leverage_buildup(0.14, 1.0, flag_at=0.61).flag is False


@pytest.mark.parametrize("oi, rng", [(None, 2.0), (0.2, None), (nan, 2.0), (0.2, nan),
                                     (0.2, -1.0), (0.2, inf)])
def test_buildup_without_an_input_is_none(oi: float | None, rng: float | None) -> None:
    b = leverage_buildup(oi, rng)
    assert b.score is None and b.flag is False


def test_weighted_range() -> None:
    # (2 * 300 + 6 * 100) / 400
    assert weighted_range_pct({"BTC": 2.0, "ETH": 6.0, "SOL": None, "XRP": 9.0},
                              {"BTC": 300.0, "ETH": 100.0, "SOL": 50.0}) == approx(3.0)
    assert weighted_range_pct({"BTC": 2.0}, {"BTC": 0.0}) is None
    assert weighted_range_pct({}, {}) is None


@settings(max_examples=300)
@given(st.one_of(st.none(), st.floats(allow_nan=True)),
       st.one_of(st.none(), st.floats(allow_nan=True)))
def test_buildup_score_in_unit_interval(oi: float | None, rng: float | None) -> None:
    b = leverage_buildup(oi, rng)
    assert b.score is None or 0.0 <= b.score <= 1.0
    json.dumps(b.to_dict(), allow_nan=False)


# -- OI deleveraging ------------------------------------------------------------------------

def test_flat_oi_is_none() -> None:
    d = classify_oi_deleveraging([100 * M] * 25)
    assert (d.label, d.stages, d.total_decline, d.largest_stage_share) == ("none", 0, 0.0, None)
    assert d.changes == 24


def test_one_dominant_drop_is_capitulation() -> None:
    levels = [100.0] * 20 + [88.0] * 5  # one hour of -12 %
    d = classify_oi_deleveraging(levels)
    assert d.label == "capitulation"
    assert (d.stages, d.drop_hours) == (1, 1)
    assert d.total_decline == approx(0.12)
    assert d.largest_stage_decline == approx(0.12)
    assert d.largest_stage_share == approx(1.0)
    assert d.largest_stage_index == 19  # the change from level 19 to level 20


def test_consecutive_drop_hours_are_one_stage() -> None:
    d = classify_oi_deleveraging([100.0] * 10 + [97.0, 94.09] + [94.09] * 13)
    assert (d.stages, d.drop_hours) == (1, 2)
    assert d.largest_stage_decline == approx(0.0591)
    assert d.total_decline == approx(0.0591)
    assert d.label == "capitulation"


def test_separate_drops_are_staged() -> None:
    # three separate -3 % hours
    levels = [100.0] * 5 + [97.0] * 6 + [94.09] * 6 + [91.2673] * 8
    d = classify_oi_deleveraging(levels)
    assert len(levels) == 25
    assert d.stages == 3
    assert d.total_decline == approx(1 - 0.97 ** 3)  # 0.087327
    assert d.largest_stage_decline == approx(0.03)
    assert d.largest_stage_share == approx(0.03 / (1 - 0.97 ** 3))  # 0.3435
    assert d.label == "staged"


def test_a_missing_hour_ends_a_stage() -> None:
    d = classify_oi_deleveraging([100.0, 97.0, None, 97.0, 94.09], hours=4)
    assert (d.stages, d.changes) == (2, 2)
    assert d.total_decline == approx(0.0591)
    assert d.largest_stage_share == approx(0.03 / 0.0591)
    assert d.label == "staged"


def test_small_or_slow_declines_are_none() -> None:
    # a single -4 % hour: below the 5 % minimum decline
    d = classify_oi_deleveraging([100.0] * 12 + [96.0] * 13)
    assert (d.label, d.stages) == ("none", 1)
    # a slow bleed of -1 % an hour: 21 % lower but no drop hour
    d = classify_oi_deleveraging([100.0 * 0.99 ** k for k in range(25)])
    assert d.total_decline == approx(1 - 0.99 ** 24)
    assert (d.label, d.stages) == ("none", 0)
    # one -3 % stage inside a 12 % bleed: neither dominant nor several
    levels = [100.0 * 0.99 ** k for k in range(10)]
    levels += [levels[-1] * 0.97] * 15
    d = classify_oi_deleveraging(levels)
    assert d.stages == 1 and d.largest_stage_share == approx(0.03 / (1 - 0.99 ** 9 * 0.97))
    assert d.label == "none"


def test_deleveraging_reads_the_last_hours() -> None:
    levels = [100.0, 80.0] + [80.0] * 24  # the drop is 25 changes ago
    assert classify_oi_deleveraging(levels).label == "none"
    assert classify_oi_deleveraging(levels, hours=25).label == "capitulation"
    assert classify_oi_deleveraging([]).changes == 0
    with pytest.raises(ValueError):
        classify_oi_deleveraging([1.0], hours=0)


def test_deleveraging_thresholds_are_parameters() -> None:
    levels = [100.0] * 12 + [96.0] * 13
    assert classify_oi_deleveraging(levels, min_decline=0.04).label == "capitulation"
    assert classify_oi_deleveraging(levels, drop=0.05).stages == 0
    # dominance is inclusive: a stage holding exactly the share is a capitulation
    staged = [100.0] * 5 + [97.0] * 6 + [94.09] * 6 + [91.2673] * 8
    share = classify_oi_deleveraging(staged).largest_stage_share
    assert share is not None
    assert classify_oi_deleveraging(staged, dominance_share=share).label == "capitulation"
    assert classify_oi_deleveraging(staged, dominance_share=share + 1e-9).label == "staged"
    assert classify_oi_deleveraging(staged, min_stages=4).label == "none"


@settings(max_examples=300)
@given(st.lists(st.one_of(st.none(), st.floats(0, 1e11), st.just(nan)), max_size=30))
def test_deleveraging_invariants(levels: list[float | None]) -> None:
    d = classify_oi_deleveraging(levels)
    assert d.label in OI_DELEVERAGING_LABELS
    assert 0.0 <= d.total_decline <= 1.0
    assert d.largest_stage_share is None or 0.0 <= d.largest_stage_share <= 1.0
    assert d.largest_stage_decline <= d.total_decline + 1e-12
    assert d.stages <= d.drop_hours <= d.changes <= 24
    if d.label == "capitulation":
        assert d.largest_stage_share is not None and d.largest_stage_share >= 2 / 3
    json.dumps(d.to_dict(), allow_nan=False)


# -- intensity and crowding -----------------------------------------------------------------

def test_intensity_values() -> None:
    i = liquidation_intensity(5 * M, 1000 * M, window="1h", seconds=3600)
    assert i.ratio == approx(0.005)
    assert (i.window, i.liquidated_usd, i.oi_usd_start) == ("1h", 5 * M, 1000 * M)
    assert liquidation_intensity(5 * M, None).ratio is None
    assert liquidation_intensity(5 * M, 0.0).ratio is None
    assert liquidation_intensity(5 * M, nan).ratio is None
    assert liquidation_intensity(nan, 100.0).ratio == 0.0  # invalid amount counts as 0


@pytest.mark.parametrize("f, g, label", [
    (0.0004, 0.10, "long_crowded"),
    (0.0003, 0.0001, "long_crowded"),  # at the threshold
    (-0.0005, 0.01, "short_crowded"),
    (-0.0003, 0.01, "short_crowded"),
    (0.0004, -0.05, "none"),  # OI falling: not crowding in
    (0.0004, 0.0, "none"),  # flat OI is not growing
    (0.0002, 0.10, "none"),
    (-0.0002, 0.10, "none"),
    (None, 0.10, "none"),
    (0.0004, None, "none"),
    (nan, 0.10, "none"),
])
def test_crowding_labels(f: float | None, g: float | None, label: str) -> None:
    assert crowding(f, g).label == label


# -- composed over an OIHistory -------------------------------------------------------------

NOW = T0 + 25 * H


def _rec(ex: str, coin: str, usd: float, ts: float, funding: float) -> OpenInterest:
    return make_oi(exchange=ex, symbol=f"{coin}USDT", base=coin, market="linear",
                   oi_coins=usd / 100.0, oi_usd=usd, price=100.0, funding_rate=funding,
                   funding_interval_hours=8.0, ts=ts, recv_ts=ts)


def _history() -> OIHistory:
    """25 h of 5-minute polls. BTC: binance 600 + bybit 400 M, both up 20 % at now - 2.5 h;
    ETH: binance 500 M, down 12 % at now - 30 min."""
    h = OIHistory()
    for k in range(301):
        t = NOW - 25 * H + k * 300
        up = t >= NOW - 2.5 * H
        h.apply(_rec("binance", "BTC", (720 if up else 600) * M, t, 0.0001))
        h.apply(_rec("bybit", "BTC", (480 if up else 400) * M, t, 0.0007))
        h.apply(_rec("binance", "ETH", (440 if t >= NOW - 0.5 * H else 500) * M, t, -0.0004))
    return h


LIQ = {("BTC", 3600.0): 2 * M, ("ETH", 3600.0): 5 * M, (None, 3600.0): 8.2 * M}


def _signals(h: OIHistory, **kw: object) -> lv.LeverageSignals:
    return leverage_signals(h, now=NOW, price_range_pct=lambda c, s: {"BTC": 2.0,
                                                                      "ETH": 8.0}.get(c),
                            liquidated_usd=lambda c, s: LIQ.get((c, s), 0.0),
                            coins=["BTC", "ETH"], **kw)  # type: ignore[arg-type]


def test_leverage_signals_per_coin() -> None:
    r = _signals(_history())
    btc, eth = r.coins["BTC"], r.coins["ETH"]
    assert btc.oi_usd == 1200 * M and eth.oi_usd == 440 * M
    assert btc.coverage == {"binance": approx(0.6), "bybit": approx(0.4)}
    assert btc.changes["1h"].change_ratio == 0.0
    assert btc.changes["4h"].change_ratio == approx(0.2)
    assert btc.changes["24h"].change_usd == approx(200 * M)
    assert btc.changes["24h"].instruments == 2
    assert eth.changes["1h"].change_ratio == approx(-0.12)
    # build-up: BTC +20 % in a 2 % range; ETH's OI fell
    assert (btc.buildup.score, btc.buildup.flag) == (1.0, True)
    assert eth.buildup.score == 0.0
    # crowding: (720 * 0.0001 + 480 * 0.0007) / 1200 = 0.00034 with OI up 20 %
    assert btc.crowding.funding_8h == approx(0.00034)
    assert btc.crowding.label == "long_crowded"
    assert eth.crowding.label == "none"  # shorts pay, but OI is falling
    # ETH's OI: one -12 % hour
    assert eth.deleveraging.label == "capitulation"
    assert eth.deleveraging.total_decline == approx(0.12)
    assert btc.deleveraging.label == "none"
    # intensity: liquidated over OI at the window's start
    assert eth.intensity["1h"].ratio == approx(5 / 500)
    assert btc.intensity["1h"].ratio == approx(2 / 1200)
    assert btc.intensity["24h"].ratio == 0.0  # nothing liquidated over 24 h in this fixture


def test_leverage_signals_market_wide() -> None:
    r = _signals(_history())
    m = r.market
    assert m.coin is None and r.ts == NOW
    assert m.oi_usd == approx(1640 * M)
    assert m.changes["24h"].change_ratio == approx(140 / 1500)
    # OI-weighted range: (2 * 1200 + 8 * 440) / 1640
    assert m.price_range_24h_pct == approx(5920 / 1640)
    # ramp(0.09333; 0.05, 0.2) * (1 - ramp(3.6098; 5, 15)): the range is quiet, score kept
    assert m.buildup.score == approx((140 / 1500 - 0.05) / 0.15)
    assert m.buildup.score == approx(0.288889, rel=1e-5)
    assert m.buildup.flag is False
    # funding: (720 * 0.0001 + 480 * 0.0007 - 440 * 0.0004) / 1640
    assert m.crowding.funding_8h == approx(0.232 / 1640)
    assert m.crowding.label == "none"
    # -3.5 % in the last hour (1700 -> 1640): below the 5 % decline
    assert m.deleveraging.label == "none"
    assert m.deleveraging.total_decline == approx(60 / 1700)
    assert m.intensity["1h"].ratio == approx(8.2 / 1700)
    comps = index_components(r)
    assert comps == {
        "buildup": approx(0.288889, rel=1e-5),
        "crowding": approx((0.232 / 1640 - 0.0001) / 0.0004),  # 0.103659
        "oi_deleveraging": 0.0,
        "intensity": approx((8.2 / 1700 - 0.0005) / 0.0095),  # 0.455108
    }
    assert index_components(r.coins["ETH"])["oi_deleveraging"] == 1.0
    assert index_components(r.coins["BTC"])["crowding"] == approx(0.6)
    json.dumps(r.to_dict(), allow_nan=False)
    assert r.to_dict()["coins"]["ETH"]["deleveraging"]["label"] == "capitulation"


def test_a_venue_dropping_out_is_not_deleveraging() -> None:
    """Bybit's BTC poll fails for the last 40 minutes: the sum falls 40 %, the like-for-like
    change and the linked hourly series do not."""
    h = OIHistory()
    for k in range(301):
        t = NOW - 25 * H + k * 300
        h.apply(_rec("binance", "BTC", 600 * M, t, 0.0001))
        if t < NOW - 40 * 60:
            h.apply(_rec("bybit", "BTC", 400 * M, t, 0.0001))
    r = _signals(h)
    btc = r.coins["BTC"]
    assert btc.oi_usd == 600 * M
    assert btc.changes["1h"].change_ratio == 0.0
    assert btc.changes["1h"].instruments == 1
    assert btc.deleveraging.label == "none" and btc.deleveraging.total_decline == 0.0
    # the plain hourly sum would have called it a capitulation
    raw = h.hourly("BTC", now=NOW, hours=25)
    assert classify_oi_deleveraging(raw).label == "capitulation"


def test_without_oi_everything_is_uncovered() -> None:
    r = _signals(OIHistory())
    m = r.market
    assert m.oi_usd is None and m.coverage == {}
    assert m.changes["24h"] == OIChange("24h", 86400.0, None, None, None, None, 0)
    assert m.intensity["1h"].ratio is None and m.intensity["1h"].liquidated_usd == 8.2 * M
    assert m.price_range_24h_pct is None  # no OI to weigh the ranges by
    assert index_components(r) == {"buildup": None, "crowding": None,
                                   "oi_deleveraging": None, "intensity": None}
    assert r.coins["BTC"].buildup.price_range_pct == 2.0
    json.dumps(r.to_dict(), allow_nan=False)


def test_short_history_none_label_is_uncovered_but_a_drop_counts() -> None:
    h = OIHistory()
    for k in range(4):  # 4 hours of data: 3 valid changes
        h.apply(_rec("binance", "BTC", (100 if k < 3 else 80) * M, NOW - (3 - k) * H, 0.0))
    r = _signals(h)
    assert r.market.deleveraging.changes == 3
    assert r.market.deleveraging.label == "capitulation"
    assert index_components(r)["oi_deleveraging"] == 1.0
    flat = OIHistory()
    for k in range(4):
        flat.apply(_rec("binance", "BTC", 100 * M, NOW - (3 - k) * H, 0.0))
    assert index_components(_signals(flat))["oi_deleveraging"] is None
    cfg = LeverageConfig(deleveraging_min_changes=3)
    assert index_components(_signals(flat, config=cfg), cfg)["oi_deleveraging"] == 0.0


def test_config_overrides_and_validation() -> None:
    cfg = dataclasses.replace(lv.DEFAULT_LEVERAGE_CONFIG, buildup_flag=0.2,
                              windows={"24h": 86400.0, "1h": 3600.0})
    r = _signals(_history(), config=cfg)
    assert r.market.buildup.flag is True
    assert set(r.market.changes) == {"24h", "1h"}
    with pytest.raises(ValueError):
        LeverageConfig(windows={"1h": 3600.0})
    with pytest.raises(ValueError):
        LeverageConfig(intensity_window="15m")
    with pytest.raises(ValueError):
        LeverageConfig(crowding_ramp=(0.001, 0.001))
    with pytest.raises(ValueError):
        LeverageConfig(deleveraging_hours=0)


@settings(max_examples=300)
@given(st.one_of(st.none(), st.floats(-1, 1)), st.one_of(st.none(), st.floats(-1, 5)),
       st.one_of(st.none(), st.floats(0, 100)), st.one_of(st.none(), st.floats(0, 1e12)),
       st.one_of(st.none(), st.floats(0, 1e12)), st.sampled_from(OI_DELEVERAGING_LABELS),
       st.integers(0, 24))
def test_index_components_in_unit_interval(f: float | None, g: float | None,
                                           rng: float | None, liq: float | None,
                                           oi: float | None, label: str, n: int) -> None:
    coin = lv.CoinLeverage(
        coin=None, oi_usd=oi, coverage={}, changes={},
        price_range_24h_pct=rng, buildup=leverage_buildup(g, rng),
        deleveraging=lv.OIDeleveraging(label=label, stages=0,  # type: ignore[arg-type]
                                       largest_stage_share=None, total_decline=0.0,
                                       changes=n),
        intensity={"1h": liquidation_intensity(liq, oi)}, crowding=crowding(f, g))
    for name, v in index_components(coin).items():
        assert name in lv.LEVERAGE_COMPONENTS
        assert v is None or 0.0 <= v <= 1.0
