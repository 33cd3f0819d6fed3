"""liqstress/oi_history.py: the per-instrument OI ring (carry-forward, staleness, idempotence,
pruning, coverage, hourly series, funding). Pure: no broker."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqstress.oi_history import N_SLOTS, OI_HISTORY, SLOT_SECONDS, STALE_SECONDS, OIHistory
from liqstress.open_interest import OpenInterest, make_oi

T0 = 1_789_660_800.0  # a slot and hour boundary
H = 3600.0
M = 1_000_000.0


def rec(exchange: str, coin: str, oi_usd: float | None, ts: float, *,
        funding: float | None = None, interval: float = 8.0, price: float = 100.0,
        symbol: str | None = None) -> OpenInterest:
    return make_oi(exchange=exchange, symbol=symbol or f"{coin}USDT", base=coin,
                   market="linear", oi_coins=None if oi_usd is None else oi_usd / price,
                   oi_usd=oi_usd, price=price, funding_rate=funding,
                   funding_interval_hours=interval if funding is not None else None,
                   ts=ts, recv_ts=ts + 0.5)


def test_ring_covers_25_hours_of_5_minute_slots() -> None:
    assert SLOT_SECONDS == 300 and N_SLOTS == 301 and OI_HISTORY == 90_300
    assert STALE_SECONDS == 900.0


def test_carry_forward_for_at_most_stale_seconds() -> None:
    h = OIHistory()
    assert h.apply(rec("binance", "BTC", 100 * M, T0))
    assert h.oi_usd() == 100 * M  # default: as of the newest record
    assert h.oi_usd(at=T0 + 600) == 100 * M
    assert h.oi_usd(at=T0 + 900) == 100 * M  # inclusive
    assert h.oi_usd(at=T0 + 901) is None
    assert h.oi_usd(at=T0 - 1) is None  # before anything
    # a newer poll refreshes it
    h.apply(rec("binance", "BTC", 110 * M, T0 + 850))
    assert h.oi_usd(at=T0 + 901) == 110 * M
    assert h.oi_usd(at=T0 + 850 + 900) == 110 * M
    assert h.oi_usd(at=T0 + 850 + 901) is None
    # querying the past reads the slot of that time
    assert h.oi_usd(at=T0 + 599) == 100 * M


def test_slot_keeps_the_last_value_seen_in_it() -> None:
    h = OIHistory()
    h.apply(rec("binance", "BTC", 100 * M, T0 + 10))
    h.apply(rec("binance", "BTC", 130 * M, T0 + 200))
    h.apply(rec("binance", "BTC", 90 * M, T0 + 100))  # older than the slot holds
    assert h.oi_usd(at=T0 + 299) == 130 * M
    # 5-minute resolution: the slot holding `at` counts, even its later record
    assert h.oi_usd(at=T0 + 50) == 130 * M


def test_sums_and_filters_over_instruments() -> None:
    h = OIHistory()
    h.apply_all([rec("binance", "BTC", 100 * M, T0), rec("bybit", "BTC", 50 * M, T0 + 60),
                 rec("binance", "ETH", 30 * M, T0 + 120)])
    assert h.oi_usd() == 180 * M
    assert h.oi_usd("BTC") == 150 * M
    assert h.oi_usd(exchange="binance") == 130 * M
    assert h.oi_usd("BTC", "bybit") == 50 * M
    assert h.oi_usd("DOGE") is None
    assert h.oi_usd("ETH", "bybit") is None
    assert h.coins() == ["BTC", "ETH"]
    assert h.exchanges() == ["binance", "bybit"]
    assert h.series_count() == 3


def test_a_silent_venue_drops_out_of_the_sum() -> None:
    h = OIHistory()
    h.apply(rec("bybit", "BTC", 50 * M, T0))
    for k in range(5):
        h.apply(rec("binance", "BTC", 100 * M, T0 + k * 300))
    assert h.oi_usd("BTC", at=T0 + 900) == 150 * M
    assert h.oi_usd("BTC", at=T0 + 1200) == 100 * M
    assert h.coverage("BTC", now=T0 + 1200) == {"binance": 1.0}


def test_apply_reports_changes_and_is_idempotent() -> None:
    h = OIHistory()
    a = rec("binance", "BTC", 100 * M, T0 + 3050)
    assert h.apply(a) is True
    assert h.apply(a) is False  # the same record again
    assert h.apply(rec("binance", "BTC", 90 * M, T0 + 3010)) is False  # older, same slot
    assert h.apply(rec("binance", "BTC", 101 * M, T0 + 3100)) is True  # newer, same slot
    # an old record fills an empty older slot: True, and the past reads it
    old = rec("binance", "BTC", 70 * M, T0)
    assert h.apply(old) is True
    assert h.apply(old) is False
    assert h.oi_usd(at=T0 + 100) == 70 * M
    assert h.oi_usd(at=T0 + 3100) == 101 * M
    assert h.latest("binance", "BTCUSDT").oi_usd == 101 * M  # type: ignore[union-attr]
    assert (h.applied, h.ignored) == (3, 3)


def test_a_record_without_usd_updates_the_newest_but_no_slot() -> None:
    h = OIHistory()
    h.apply(rec("binance", "BTC", 100 * M, T0, funding=0.0001))
    assert h.apply(rec("binance", "BTC", None, T0 + 300, funding=0.0002)) is True
    assert h.latest("binance", "BTCUSDT").funding_rate == 0.0002  # type: ignore[union-attr]
    assert h.oi_usd(at=T0 + 300) == 100 * M  # carried forward from T0
    assert h.oi_usd(at=T0 + 901) is None


def test_a_slot_older_than_the_ring_is_refused() -> None:
    h = OIHistory()
    h.apply(rec("binance", "BTC", 100 * M, T0 + N_SLOTS * SLOT_SECONDS))
    # same ring position, one full ring older
    assert h.apply(rec("binance", "BTC", 50 * M, T0)) is False
    assert h.oi_usd(at=T0) is None


def test_prune_drops_instruments_silent_for_25_hours() -> None:
    h = OIHistory()
    h.apply(rec("binance", "OLD", 10 * M, T0))
    h.apply(rec("binance", "BTC", 100 * M, T0 + 25 * H))
    assert h.prune(T0 + 25 * H) == 0  # OLD at exactly the history's edge stays
    assert h.prune(T0 + OI_HISTORY + 1) == 1
    assert h.coins() == ["BTC"]
    assert h.series_count() == 1
    assert h.latest("binance", "OLDUSDT") is None
    assert h.oi_usd("OLD", at=T0) is None
    assert h.oi_usd(at=T0 + 25 * H) == 100 * M


def test_coverage_shares_by_exchange() -> None:
    h = OIHistory()
    h.apply_all([rec("binance", "BTC", 100 * M, T0), rec("bybit", "BTC", 50 * M, T0),
                 rec("okx", "BTC", 50 * M, T0), rec("okx", "ETH", 200 * M, T0)])
    assert h.coverage("BTC", now=T0) == {"binance": 0.25 * 2, "bybit": 0.25, "okx": 0.25}
    assert h.coverage(now=T0) == {"binance": 0.25, "bybit": 0.125, "okx": 0.625}
    assert h.coverage("DOGE", now=T0) == {}
    assert h.coverage(now=T0 + 901) == {}
    # a zero sum has no shares
    h.apply(rec("kraken", "ZERO", 0.0, T0))
    assert h.coverage("ZERO", now=T0) == {}


def test_hourly_is_the_level_at_each_hour_end() -> None:
    h = OIHistory()
    levels = {0: 100 * M, 1: 110 * M, 2: 99 * M}  # hour index -> OI through that hour
    for k in range(36):  # 3 hours of 5-minute polls
        h.apply(rec("binance", "BTC", levels[k // 12], T0 + k * 300))
    now = T0 + 35 * 300
    # ends: now - 2 h (hour 0), now - 1 h (hour 1), now (hour 2)
    assert h.hourly("BTC", now=now, hours=3) == [100 * M, 110 * M, 99 * M]
    assert h.hourly("BTC", now=now, hours=5) == [None, None, 100 * M, 110 * M, 99 * M]
    assert h.hourly("ETH", now=now, hours=2) == [None, None]
    with pytest.raises(ValueError):
        h.hourly(now=now, hours=0)


def test_linked_hourly_ignores_a_venue_dropping_out() -> None:
    h = OIHistory()
    for k in range(3):
        h.apply(rec("binance", "BTC", 100 * M * (1 + 0.01 * k), T0 + k * H))
        if k != 1:  # bybit's poll fails around the middle hour
            h.apply(rec("bybit", "BTC", 100 * M, T0 + k * H))
    raw = h.hourly("BTC", now=T0 + 2 * H, hours=3)
    assert raw == [200 * M, 101 * M, 202 * M]
    linked = h.hourly("BTC", now=T0 + 2 * H, hours=3, linked=True)
    # hour 1 vs 0: binance only, 101/100; hour 2 vs 1: binance only, 102/101
    assert linked == [pytest.approx(200 * M), pytest.approx(202 * M), pytest.approx(204 * M)]
    # a gap with no instrument on both sides restarts the chain from that hour's sum
    g = OIHistory()
    g.apply(rec("binance", "BTC", 100 * M, T0))
    g.apply(rec("bybit", "BTC", 70 * M, T0 + 2 * H))
    assert g.hourly("BTC", now=T0 + 2 * H, hours=3, linked=True) == [100 * M, None, 70 * M]


def test_paired_compares_like_for_like() -> None:
    h = OIHistory()
    h.apply_all([rec("binance", "BTC", 100 * M, T0), rec("bybit", "BTC", 50 * M, T0),
                 rec("binance", "BTC", 120 * M, T0 + H), rec("okx", "BTC", 40 * M, T0 + H)])
    assert h.paired("BTC", then=T0, now=T0 + H) == (100 * M, 120 * M, 1)
    assert h.paired("BTC", then=T0, now=T0 + H, exchange="bybit") == (0.0, 0.0, 0)
    assert h.paired("ETH", then=T0, now=T0 + H) == (0.0, 0.0, 0)


def test_funding_is_oi_weighted_over_fresh_instruments() -> None:
    h = OIHistory()
    h.apply_all([
        rec("binance", "BTC", 300 * M, T0, funding=0.0001),  # 0.0001 per 8 h
        rec("hyperliquid", "BTC", 100 * M, T0, funding=0.00002, interval=1.0),  # 0.00016 / 8 h
        rec("deribit", "BTC", 500 * M, T0, symbol="BTC-27MAR"),  # dated: no funding
        rec("bybit", "BTC", 1000 * M, T0 - 1000, funding=0.01),  # stale
        rec("okx", "BTC", 0.0, T0, funding=0.01),  # no weight
    ])
    assert h.funding_8h("BTC", now=T0) == pytest.approx((0.0001 * 300 + 0.00016 * 100) / 400)
    assert h.funding_8h("BTC", now=T0) == pytest.approx(0.000115)
    assert h.funding_8h(now=T0) == pytest.approx(0.000115)
    assert h.funding_8h("ETH", now=T0) is None
    assert h.funding_8h("BTC", now=T0 + 901) is None


def test_open_interest_in_coins_is_read_like_usd() -> None:
    h = OIHistory()
    h.apply(rec("binance", "BTC", 6e6, T0, price=60_000.0))  # 100 coins
    h.apply(rec("bybit", "BTC", 3e6, T0 + 60, price=60_000.0))  # 50 coins
    h.apply(rec("binance", "BTC", 6.6e6, T0 + 300, price=66_000.0))  # still 100 coins
    assert h.oi_coins("BTC", at=T0 + 60) == pytest.approx(150.0)
    assert h.oi_coins("BTC", at=T0 + 300) == pytest.approx(150.0)  # USD rose, coins did not
    assert h.oi_usd("BTC", at=T0 + 300) == pytest.approx(9.6e6)
    assert h.oi_coins("ETH", at=T0 + 300) is None
    assert h.oi_coins("BTC", at=T0 + 300 + STALE_SECONDS + SLOT_SECONDS) is None
    # an instrument whose record has USD but no coin figure makes the sum unknown, not short
    h.apply(make_oi(exchange="okx", symbol="BTC-USDT-SWAP", base="BTC", market="linear",
                    oi_coins=None, oi_usd=1e6, price=None, funding_rate=None,
                    funding_interval_hours=None, ts=T0 + 310, recv_ts=T0 + 310))
    assert h.oi_coins("BTC", at=T0 + 310) is None


def test_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        OIHistory(stale_seconds=0)


# -- properties ---------------------------------------------------------------------------

_records = st.lists(
    st.builds(
        lambda ex, coin, usd, dt, f: rec(ex, coin, usd, T0 + dt, funding=f),
        st.sampled_from(["binance", "bybit", "okx"]), st.sampled_from(["BTC", "ETH"]),
        st.one_of(st.none(), st.floats(0, 1e9, allow_nan=False)),
        # coarse times collide (same instrument, same ts): the tie-break must be an order
        st.one_of(st.integers(0, 36).map(lambda k: k * 600.0),
                  st.floats(0, 6 * H).map(lambda x: round(x, 1))),
        st.one_of(st.none(), st.sampled_from([-0.0005, 0.0, 0.0001, 0.0007]))),
    min_size=1, max_size=40)


def _answers(h: OIHistory) -> tuple:
    times = [T0 + k * 1234.5 for k in range(20)]
    out: list = [h.coins(), h.exchanges(), h.series_count(), h.max_ts]
    out += [[h.oi_coins(c, at=t) for t in times] for c in ("BTC", "ETH")]
    for c in (None, "BTC", "ETH"):
        out += [[h.oi_usd(c, at=t) for t in times],
                [h.coverage(c, now=t) for t in times],
                [h.funding_8h(c, now=t) for t in times],
                h.hourly(c, now=T0 + 6 * H, hours=7),
                h.hourly(c, now=T0 + 6 * H, hours=7, linked=True),
                h.paired(c, then=T0 + H, now=T0 + 5 * H)]
    out += [h.latest(ex, f"{c}USDT") for ex in ("binance", "bybit", "okx")
            for c in ("BTC", "ETH")]
    return tuple(out)


@settings(max_examples=150, deadline=None)
@given(_records, st.randoms(use_true_random=False))
def test_same_records_in_any_order_and_twice_give_the_same_answers(
        recs: list[OpenInterest], rnd: random.Random) -> None:
    a = OIHistory()
    a.apply_all(recs)
    b = OIHistory()
    shuffled = recs * 2
    rnd.shuffle(shuffled)
    b.apply_all(shuffled)
    assert _answers(a) == _answers(b)
    # re-reading everything changes nothing and reports nothing applied
    assert a.apply_all(recs) == 0
    assert _answers(a) == _answers(b)


@settings(max_examples=150, deadline=None)
@given(_records, st.floats(0, 6 * H))
def test_coverage_shares_sum_to_one(recs: list[OpenInterest], dt: float) -> None:
    h = OIHistory()
    h.apply_all(recs)
    for coin in (None, "BTC", "ETH"):
        shares = h.coverage(coin, now=T0 + dt)
        total = h.oi_usd(coin, at=T0 + dt)
        if shares:
            assert math.fsum(shares.values()) == pytest.approx(1.0, abs=1e-9)
            assert all(0 <= s <= 1 for s in shares.values())
            assert total is not None and total > 0
        else:
            assert not total
        f = h.funding_8h(coin, now=T0 + dt)
        assert f is None or -0.0005 - 1e-12 <= f <= 0.0007 + 1e-12
