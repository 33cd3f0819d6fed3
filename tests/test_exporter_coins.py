"""Bounded per-coin cardinality of liqstress_coin_window_liquidated_usd (agents/exporter.py):
the allowlist plus the top N coins by 24 h USD (WorkerSettings.top_coins, LIQSTRESS_TOP_COINS)
get their own series, every other coin is summed as coin="other", so the sum over coins is the
total of every exchange; a coin that drops out of the top N leaves no series behind."""

from __future__ import annotations

import pytest

from liqstress.agents import exporter
from liqstress.agents.state import WorkerState
from liqstress.config import ConfigError, WorkerSettings
from liqstress.infra.metrics import Metrics
from liqstress.labels import WINDOW_NAMES
from liqstress.windows import Agg, Snapshot

from .test_exporter_snapshot import T0, liq, scrape, scrape_elsewhere, series, value

COIN_USD = "liqstress_coin_window_liquidated_usd"
EX_USD = "liqstress_window_liquidated_usd"


def make_state(top: int, coins: tuple[str, ...] = ("BTC", "ETH")) -> WorkerState:
    metrics = Metrics.create()
    metrics.init_exchanges(["binance"])
    state = WorkerState(settings=WorkerSettings(broker="x:1", coins=coins, top_coins=top),
                        metrics=metrics)
    state.fixed_now = T0
    state.ready.set()
    return state


def coins_of(samples: dict, window: str = "24h") -> set[str]:
    return {dict(lbls)["coin"] for lbls in series(samples, COIN_USD, window=window)}


def total(samples: dict, name: str, window: str, side: str | None = None) -> float:
    want = {"window": window, **({"side": side} if side else {})}
    return sum(series(samples, name, **want).values())


def test_top_n_plus_allowlist_and_other_sum_to_the_total() -> None:
    state = make_state(top=2)
    exporter.register(state)
    # 24 h ranking: PEPE 9M, WIF 5M, BTC 4M, ETH 0, SUI 2M, ARB 1M (the last two in "other").
    liq(state, "binance", "PEPE", "long", 9e6, T0 - 3 * 3600)
    liq(state, "okx", "WIF", "short", 5e6, T0 - 30 * 60, partition=1)
    liq(state, "binance", "BTC", "long", 3e6, T0 - 60)
    liq(state, "bybit", "BTC", "short", 1e6, T0 - 120, partition=2)
    liq(state, "okx", "SUI", "long", 2e6, T0 - 90)
    liq(state, "binance", "ARB", "short", 1e6, T0 - 20 * 3600, partition=3)
    state.refresh()
    got = scrape(state)
    for w in WINDOW_NAMES:
        # Top 2 by 24 h USD, the allowlist (ETH with zeros) and "other", in every window.
        assert coins_of(got, w) == {"PEPE", "WIF", "BTC", "ETH", "other"}, w
        for side in ("long", "short"):
            assert total(got, COIN_USD, w, side) == pytest.approx(total(got, EX_USD, w, side))
    assert value(got, COIN_USD, coin="other", side="long", window="24h") == 2e6
    assert value(got, COIN_USD, coin="other", side="short", window="24h") == 1e6
    assert value(got, COIN_USD, coin="other", side="long", window="1h") == 2e6
    assert value(got, COIN_USD, coin="other", side="short", window="1h") == 0.0
    assert value(got, COIN_USD, coin="PEPE", side="long", window="1h") == 0.0
    assert value(got, COIN_USD, coin="PEPE", side="long", window="4h") == 9e6
    assert value(got, COIN_USD, coin="ETH", side="short", window="24h") == 0.0
    assert value(got, COIN_USD, coin="BTC", side="short", window="15m") == 1e6
    assert exporter.shown_coins(state) == ("PEPE", "WIF", "BTC", "ETH")


def test_a_coin_that_drops_out_of_the_top_n_leaves_no_series() -> None:
    state = make_state(top=1)
    exporter.register(state)
    liq(state, "binance", "PEPE", "long", 5e6, T0 - 60)
    liq(state, "binance", "WIF", "long", 1e6, T0 - 60)
    state.refresh()
    before = scrape(state)
    assert coins_of(before) == {"PEPE", "BTC", "ETH", "other"}
    assert value(before, COIN_USD, coin="other", side="long", window="24h") == 1e6

    # WIF overtakes PEPE: PEPE is summed into "other" and its series are gone, on the next
    # snapshot, from a scrape on any thread.
    liq(state, "okx", "WIF", "long", 8e6, T0 - 30, partition=1)
    state.refresh()
    after = scrape_elsewhere(state)
    assert coins_of(after) == {"WIF", "BTC", "ETH", "other"}
    for w in WINDOW_NAMES:
        assert not series(after, COIN_USD, coin="PEPE", window=w), w
    assert value(after, COIN_USD, coin="WIF", side="long", window="24h") == 9e6
    assert value(after, COIN_USD, coin="other", side="long", window="24h") == 5e6
    assert total(after, COIN_USD, "24h") == pytest.approx(total(after, EX_USD, "24h"))

    # A day later nothing is left in any window: only the allowlist and "other", all zero.
    state.fixed_now = T0 + 25 * 3600
    state.refresh()
    later = scrape(state)
    assert coins_of(later) == {"BTC", "ETH", "other"}
    assert not series(later, COIN_USD, coin="WIF")
    assert total(later, COIN_USD, "24h") == 0.0


def test_top_zero_keeps_only_the_allowlist_and_other() -> None:
    state = make_state(top=0, coins=("BTC",))
    exporter.register(state)
    liq(state, "binance", "PEPE", "long", 5e6, T0 - 60)
    liq(state, "binance", "BTC", "short", 1e6, T0 - 60)
    state.refresh()
    got = scrape(state)
    assert coins_of(got) == {"BTC", "other"}
    assert value(got, COIN_USD, coin="other", side="long", window="5m") == 5e6
    assert value(got, COIN_USD, coin="BTC", side="short", window="5m") == 1e6


def test_ranking_uses_the_global_view_when_there_is_one() -> None:
    """Workers rank on the view of every partition, so they all name the same coins."""
    state = make_state(top=1)
    exporter.register(state)
    liq(state, "binance", "PEPE", "long", 5e6, T0 - 60)
    state.refresh()
    assert exporter.shown_coins(state)[0] == "PEPE"
    # A view where WIF leads (as another worker's partitions would make it).
    assert state.view_snapshot is not None
    day = dict(state.view_snapshot.windows["24h"]["coin"])
    day["WIF"] = {"long": Agg(usd=9e6, count=1), "short": Agg()}
    state.view_snapshot = Snapshot(now=T0, windows={"24h": {"exchange": {}, "coin": day}},
                                   events=2)
    assert exporter.shown_coins(state) == ("WIF", "BTC", "ETH")
    state.view_at -= exporter.VIEW_MAX_AGE + 1  # stale: back to this worker's own windows
    assert exporter.shown_coins(state) == ("PEPE", "BTC", "ETH")


def test_top_coins_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert WorkerSettings(broker="x:1").top_coins == 20
    monkeypatch.setenv("LIQSTRESS_TOP_COINS", "5")
    assert WorkerSettings(broker="x:1").top_coins == 5
    monkeypatch.setenv("LIQSTRESS_TOP_COINS", "many")
    with pytest.raises(ConfigError, match="LIQSTRESS_TOP_COINS"):
        WorkerSettings(broker="x:1)")
    monkeypatch.delenv("LIQSTRESS_TOP_COINS")
    with pytest.raises(ConfigError, match="top coins"):
        WorkerSettings(broker="x:1", top_coins=-1).validate()
