"""The raw-frame policy: what a collector publishes to ``liquidations.raw`` for a trade-feed
venue (Hyperliquid: every public trade arrives, a few are liquidations), and that a recording
keeps every frame whatever the policy, so ``liqstress replay`` still gives the same windows."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from liqstress.cli.pipeline import replay
from liqstress.config import ConfigError
from liqstress.infra.metrics import Metrics
from liqstress.streams.collector import RAW_POLICIES, Collector
from liqstress.streams.publisher import RecordingSink
from liqstress.streams.sims.base import MemorySink, running
from liqstress.streams.sims.hyperliquid import (
    MAKER,
    OTHER,
    TRADER,
    VAULT,
    VAULT4,
    HyperliquidSim,
    all_mids,
    trade,
    trades,
)
from liqstress.streams.venues import hyperliquid as hl


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, {"exchange": "hyperliquid", **labels}) or 0


def _frames_decided(metrics: Metrics) -> float:
    """Frames that reached the raw decision: every frame handled except throttled prices."""
    total = 0.0
    for fam in metrics.registry.collect():
        for s in fam.samples:
            if (s.name == "liqstress_source_frames_total" and s.labels["exchange"] == "hyperliquid"
                    and s.labels["kind"] != "throttled"):
                total += s.value
    return total


def _text(frame: object) -> str:
    data = frame.data  # type: ignore[attr-defined]
    return data.decode() if isinstance(data, bytes) else data


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match="raw policy"):
        Collector(hl.VENUE, MemorySink(), raw_policy="some")


async def _session(sink: object, metrics: Metrics, policy: str) -> dict[str, str]:
    """Run a Hyperliquid session: REST metadata, subscribe acks, the snapshot trades pushed
    after each subscribe (history, dropped), pongs, a price frame, an ordinary trade, two
    liquidation frames and a malformed frame. Returns the frames pushed by name."""
    now = int(time.time() * 1000) + 1000  # after the acks: never dropped as history
    pushed = {
        "liquidation": trades(trade("BTC", "A", "60000", "0.5", now, VAULT, TRADER)),
        "plain": trades(trade("BTC", "B", "60001", "3", now, MAKER, OTHER)),
        "liquidation2": trades(trade("ETH", "B", "3000", "2", now + 1, TRADER, VAULT4)),
        "malformed": "{malformed",
        "mids": all_mids({"BTC": "60000.5"}),
    }
    async with HyperliquidSim() as sim:
        col = Collector(hl.VENUE, sink, metrics, urls=sim.urls(), ping_interval=0.2,
                        pong_timeout=1.0, backoff_initial=0.05, backoff_cap=0.2,
                        price_interval=0.0, raw_policy=policy)
        async with running(col):
            await asyncio.wait_for(col.subscribed.wait(), 5)
            for name in ("liquidation", "plain", "mids", "liquidation2", "malformed"):
                await sim.push(pushed[name])
            await sim.wait_for(lambda: col.events_published == 2)
            await sim.wait_for(lambda: _sample(metrics, "liqstress_source_frames_total",
                                               kind="pong") >= 1
                               and _sample(metrics, "liqstress_deadletter_total",
                                           reason="malformed_json") == 1
                               and _sample(metrics, "liqstress_source_prices_total") >= 1)
    return pushed


@pytest.mark.parametrize("policy", RAW_POLICIES)
async def test_policy_decides_what_reaches_the_raw_topic(policy: str) -> None:
    metrics = Metrics.create()
    sink = MemorySink()
    pushed = await _session(sink, metrics, policy)
    texts = [_text(r) for r in sink.raws]
    # Whatever the policy, events, prices and dead letters are published alike.
    assert [(e.symbol, e.side) for e in sink.events] == [("BTC", "long"), ("ETH", "short")]
    assert [d["reason"] for d in sink.deadletters] == ["malformed_json"]
    assert [t.coin for t in sink.prices] == ["BTC"]
    decided = _frames_decided(metrics)
    skipped = _sample(metrics, "liqstress_raw_skipped_total")
    assert skipped + len(sink.raws) == decided
    if policy == "all":
        assert skipped == 0
        for name in ("liquidation", "liquidation2", "plain", "mids", "malformed"):
            assert pushed[name] in texts, name
        assert any('"channel":"pong"' in t for t in texts)
    elif policy == "off":
        assert sink.raws == [] and skipped == decided > 0
    else:
        assert pushed["liquidation"] in texts and pushed["liquidation2"] in texts
        assert pushed["malformed"] in texts  # dead letters keep their frame
        assert pushed["plain"] not in texts and pushed["mids"] not in texts
        assert not any('"channel":"pong"' in t for t in texts)
        # The snapshot trades pushed after each subscribe produced no event: not kept.
        assert _sample(metrics, "liqstress_snapshot_dropped_total") > 0
        rest = [r for r in sink.raws if r.is_rest]
        assert [r.source.endswith('/info#{"type":"meta"}') for r in rest] == [True]
        others = [t for r, t in zip(sink.raws, texts, strict=True) if not r.is_rest]
        channels = {orjson.loads(t)["channel"] for t in others if t != pushed["malformed"]}
        assert channels == {"trades", "subscriptionResponse"}  # liquidations and acks
        assert skipped >= 3  # at least the plain trade, the mids and a pong


@pytest.mark.timeout(120)
async def test_recording_keeps_every_frame_and_replays_to_the_same_windows(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    with path.open("wb") as fh:
        sink = RecordingSink(fh)
        # The policy a collect would use: the recording keeps every frame nonetheless.
        pushed = await _session(sink, Metrics.create(), "liquidations")
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    frames = [line.get("frame") for line in lines]
    for name in ("liquidation", "liquidation2", "plain", "mids", "malformed"):
        assert pushed[name] in frames, name
    assert any('"channel":"pong"' in (f or "") for f in frames)
    result = await replay(str(path), quiet=True)
    summary = result.summary()
    assert summary["events"] == 2
    hour = summary["windows"]["1h"]["hyperliquid"]
    assert hour["long"] == pytest.approx(30000.0) and hour["short"] == pytest.approx(6000.0)


def test_raw_volume_bench_counts_every_fixture_frame() -> None:
    from bench.raw_volume import FIXTURES, format_table, measure

    volumes = measure(FIXTURES)
    lines = sum(1 for p in FIXTURES for line in p.read_bytes().splitlines() if line.strip())
    assert sum(v.frames["all"] for v in volumes.values()) == lines
    for ex, v in volumes.items():
        assert v.frames["off"] == v.bytes["off"] == 0, ex
        assert v.frames["liquidations"] == sum(v.kept_for.values()), ex
        assert 0 < v.bytes["liquidations"] <= v.bytes["all"], ex
    # The trade-feed venues' fixtures carry ordinary trades: the default policy leaves them out.
    for ex in ("hyperliquid", "deribit", "dydx", "kraken-futures"):
        assert volumes[ex].frames["liquidations"] < volumes[ex].frames["all"], ex
    assert "| total" in format_table(volumes)
