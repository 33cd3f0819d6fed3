"""Partitioned state and the aggregator's merge: the merged windows equal one store fed every
event, whatever the chunking, the re-reads and the stale former owners."""

from __future__ import annotations

import random

import orjson
import pytest

from liqstress.event import LiquidationEvent, make_event
from liqstress.partials import Merger, PartialError, PartitionStore, decode_partial
from liqstress.prices import LiquidationLevels, MergedLevels
from liqstress.windows import WINDOWS, Rollup, WindowStore, coin_scale, rollup, rollup_steps

from .helpers import nonempty_aggs

NOW = 1_700_000_040.0
COINS = ("BTC", "ETH", "SOL")


def events(n: int, seed: int) -> list[LiquidationEvent]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        coin = rng.choice(COINS)
        out.append(make_event(
            exchange=rng.choice(("binance", "okx", "bybit")), symbol=f"{coin}USDT", base=coin,
            quote="USDT", market="linear", side=rng.choice(("long", "short")),
            price=rng.uniform(90, 110), qty=1.0, notional_usd=round(rng.uniform(10, 5000), 2),
            ts=NOW - rng.uniform(0, 26 * 3600), recv_ts=NOW, sampled=False,
            venue_id=f"id{i}"))
    return out


def partition_of(ev: LiquidationEvent, n: int) -> int:
    return hash(ev.key) % n


def apply(ps: PartitionStore, ev: LiquidationEvent) -> None:
    coin, units = coin_scale(ev.base)
    ps.apply(ev, NOW, coin, ev.price / units)


def values(r: Rollup) -> dict[tuple[str, str, str, str], tuple[float, int, float]]:
    return {k: (round(a.usd, 6), a.count, a.largest_usd) for k, a in nonempty_aggs(r.windows)}


def test_merged_partials_equal_one_store_fed_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("liqstress.partials.ROWS_PER_MESSAGE", 50)  # force chunked fulls
    evs = events(3000, seed=3)
    ref = WindowStore()
    for ev in evs:
        ref.add(ev, NOW)
    parts = {p: PartitionStore(p) for p in range(4)}
    for ps in parts.values():
        ps.new_epoch(1000.0)
        ps.mark_ready()
    merger = Merger()
    half = len(evs) // 2
    for ev in evs[:half]:
        apply(parts[partition_of(ev, 4)], ev)
    wire = [m for ps in parts.values() for m in ps.messages(NOW, "w1", full=True)]
    assert len(wire) > 4  # chunked
    for ev in evs[half:] + evs[:100]:  # the re-delivered ones count once
        apply(parts[partition_of(ev, 4)], ev)
    wire += [m for ps in parts.values() for m in ps.messages(NOW, "w1", full=False)]
    for m in wire + wire:  # a second read of the whole topic changes nothing
        merger.apply(decode_partial(m))
    got = rollup([v.table for v in merger.views.values()], NOW, COINS)
    want = rollup([ref.table], NOW, COINS)
    assert values(got) == values(want)
    for side in ("long", "short"):
        assert got.hourly[side] == pytest.approx(want.hourly[side])
    assert sum(v.events for v in merger.views.values()) == ref.events == 3000
    # Levels merge into the same clusters one store gives.
    ref_levels = LiquidationLevels()
    for ev in evs:
        coin, units = coin_scale(ev.base)
        ref_levels.add(coin, ev.price / units, ev.side, ev.notional_usd, ev.ts, NOW)
    merged = MergedLevels([v.levels for v in merger.views.values()])
    for coin in COINS:
        a = merged.liquidations(coin, NOW)
        b = ref_levels.liquidations(coin, NOW)
        assert [(p, s) for p, s, _ in a] == [(p, s) for p, s, _ in b]
        assert [u for *_, u in a] == pytest.approx([u for *_, u in b])


def test_stale_owner_and_foreign_deltas_are_ignored() -> None:
    evs = events(200, seed=5)
    old = PartitionStore(0)
    old.new_epoch(100.0)
    old.mark_ready()
    for ev in evs[:100]:
        apply(old, ev)
    new = PartitionStore(0)
    new.new_epoch(200.0)  # the partition moved: the new owner rebuilt everything
    new.mark_ready()
    for ev in evs:
        apply(new, ev)
    merger = Merger()
    for m in new.messages(NOW, "b", full=True):
        assert merger.apply(decode_partial(m))
    # The former owner's late full and delta arrive after the new owner's full.
    late = old.messages(NOW, "a", full=True)
    apply(old, evs[150])
    late += old.messages(NOW, "a", full=False)
    assert not any(merger.apply(decode_partial(m)) for m in late)
    assert merger.views[0].events == 200 and merger.views[0].epoch == new.epoch
    # A delta before any full of its epoch has nothing to apply to.
    fresh = Merger()
    assert not fresh.apply(decode_partial(_delta(new)))


def _delta(ps: PartitionStore) -> bytes:
    ev = make_event(exchange="okx", symbol="BTCUSDT", base="BTC", quote="USDT", market="linear",
                    side="long", price=100.0, qty=1.0, notional_usd=1.0, ts=NOW, recv_ts=NOW,
                    sampled=False, venue_id="extra")
    apply(ps, ev)
    return ps.messages(NOW, "b", full=False)[0]


def test_rollup_yields_between_chunks_and_sums_the_same() -> None:
    evs = events(2000, seed=9)
    s = WindowStore()
    for ev in evs:
        s.add(ev, NOW)
    out = Rollup.empty(NOW, COINS)
    steps = sum(1 for _ in rollup_steps(s.table, out, step=100))
    assert steps > 10
    assert values(out) == values(rollup([s.table], NOW, COINS))
    assert set(out.windows) == set(WINDOWS)


@pytest.mark.parametrize("value, reason", [
    (b"nope", "not JSON"), (b"[]", "JSON object"), (b'{"v": 1}', "missing fields"),
])
def test_bad_partials_are_rejected_with_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(PartialError, match=reason):
        decode_partial(value)
    good = orjson.loads(PartitionStore(1).messages(NOW, "w", full=True)[0])
    with pytest.raises(PartialError, match="version"):
        decode_partial(orjson.dumps({**good, "v": 99}))
