"""The synthetic seed scenario (streams/scenario.py) through the parse path and the signals:
the article's hour must read as extreme long skew, a spike, Binance + Hyperliquid on top,
longs clustered near the local low and staged deleveraging. Pure: no broker."""

from __future__ import annotations

import io
import math
from collections import Counter

import pytest

from liqstress import signals as sg
from liqstress.cli.pipeline import FileProcessing, process_recording
from liqstress.recording import RawFrame, read_recording
from liqstress.streams.scenario import (
    FINAL_HOUR_LONGS,
    FINAL_HOUR_SHORTS,
    VENUES,
    local_extremes,
    main,
    seed_scenario,
    to_jsonl,
)
from liqstress.stress import StressEngine, StressResult
from liqstress.windows import WindowStore, coin_of

END = 1_789_670_000.0  # 2026-09-17T18:33:20Z, the fixtures' END


@pytest.fixture(scope="module")
def frames() -> list[RawFrame]:
    return seed_scenario(END)


@pytest.fixture(scope="module")
def processed(frames: list[RawFrame]) -> FileProcessing:
    errors: list[str] = []
    out = process_recording(io.BytesIO(to_jsonl(frames)), lambda n, m: errors.append(f"{n}: {m}"))
    assert errors == []
    return out


@pytest.fixture(scope="module")
def evaluated(processed: FileProcessing) -> tuple[WindowStore, StressResult]:
    store = WindowStore()
    for ev in processed.events:
        store.add(ev, END)
    result = StressEngine().evaluate(store.snapshot(END), store.hourly_totals(END))
    return store, result


def test_recording_is_deterministic_and_ends_at_end(frames: list[RawFrame]) -> None:
    assert to_jsonl(seed_scenario(END)) == to_jsonl(frames)
    assert to_jsonl(seed_scenario(END, seed=8)) != to_jsonl(frames)
    assert frames[-1].recv_ts == END
    assert all(f.recv_ts <= END for f in frames)
    assert [f.recv_ts for f in frames] == sorted(f.recv_ts for f in frames)


def test_every_frame_parses(processed: FileProcessing) -> None:
    assert processed.deadletters == []
    assert processed.errors == 0
    assert processed.snapshot_dropped == 0  # nothing dated before an ack
    assert processed.unpriced == 0
    assert processed.last_recv_ts == END
    assert {e.exchange for e in processed.events} == set(VENUES)


def test_cli_writes_the_same_recording(tmp_path, frames: list[RawFrame]) -> None:
    out = tmp_path / "seed.jsonl"
    assert main([str(out), "--end", str(END)]) == 0
    with out.open("rb") as fh:
        back = [f for _, f in read_recording(fh)]
    assert back == frames


def test_binance_respects_one_per_symbol_per_second(processed: FileProcessing) -> None:
    seconds = Counter((e.symbol, math.floor(e.ts)) for e in processed.events
                      if e.exchange == "binance")
    assert seconds and max(seconds.values()) == 1


def test_final_hour_per_venue_matches_the_story(evaluated: tuple[WindowStore, StressResult]) -> None:
    store, _ = evaluated
    hour = store.snapshot(END).usd_by_exchange()["1h"]
    for ex, usd in FINAL_HOUR_LONGS.items():
        assert hour[ex]["long"] == pytest.approx(usd, rel=0.05), ex
    assert hour["binance"]["long"] == pytest.approx(36e6, rel=0.05)
    assert hour["hyperliquid"]["long"] == pytest.approx(59e6, rel=0.05)
    longs = sum(s["long"] for s in hour.values())
    shorts = sum(s["short"] for s in hour.values())
    assert longs == pytest.approx(230e6, rel=0.05)
    assert shorts == pytest.approx(sum(FINAL_HOUR_SHORTS.values()), rel=0.05)
    assert shorts == pytest.approx(3.5e6, rel=0.05)
    assert shorts < 5e6


def test_signals_read_the_article(evaluated: tuple[WindowStore, StressResult]) -> None:
    store, r = evaluated
    imb = r.imbalance["1h"]
    assert imb.long_share is not None and imb.long_share >= 0.97
    assert r.spike["long"].flag
    assert r.spike["long"].multiple is not None and r.spike["long"].multiple >= 10
    assert not r.spike["short"].flag or r.spike["short"].current_usd < 5e6
    top2 = {ex for ex, _ in r.concentration["1h"].top[:2]}
    assert top2 == {"binance", "hyperliquid"}
    assert r.concentration["1h"].top[0][0] == "hyperliquid"
    d = r.deleveraging
    assert d.label == "staged"
    assert d.distinct_spike_hours >= 2
    assert d.largest_hour_share is not None and d.largest_hour_share <= 0.5
    assert r.index.level in ("high", "extreme")
    # The calm baseline the spike is measured against: roughly $2-5M an hour, both sides.
    hourly = store.hourly_totals(END)
    both = sorted(lo + sh for lo, sh in zip(hourly["long"][:-1], hourly["short"][:-1],
                                            strict=True))
    assert 2e6 <= both[len(both) // 2] <= 5e6


def test_longs_cluster_near_the_local_low(processed: FileProcessing) -> None:
    extremes = local_extremes()
    by_coin: dict[str, list[tuple[float, str, float | None]]] = {}
    for e in processed.events:
        if e.ts > END - 3540:  # the final hour
            by_coin.setdefault(coin_of(e.base), []).append((e.price, e.side, e.notional_usd))
    assert set(by_coin) == set(extremes)
    for coin, liqs in by_coin.items():
        low, high = extremes[coin]
        prices = [p for p, _, _ in liqs]
        assert min(prices) >= low * 0.999 and max(prices) <= high * 1.001  # range-bound
        near = sg.near_extreme_share(liqs, low, high, within_pct=1.0)
        assert near.long_share_near_low == pytest.approx(1.0), coin
