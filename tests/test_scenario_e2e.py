"""The SYNTHETIC seed scenario through the full pipeline: recording -> venue parse path ->
embedded Tansu broker (liquidations + prices topics) -> Faust worker -> ``stress.signals`` and
/metrics. The article's sentences must come out as numbers: extreme long skew, a spike,
Binance + Hyperliquid on top, longs clustered at the local low, staged deleveraging, and the
price signals (breadth, divergence) from the mark-price feed."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from liqstress.cli.pipeline import ReplayResult, format_table, metrics_server, replay
from liqstress.infra.metrics import Metrics
from liqstress.streams.scenario import (
    FINAL_HOUR_LONGS,
    FINAL_HOUR_SHORTS,
    OI_BUILDUP,
    OI_DROPS,
    OI_FUNDING_8H,
    price_path,
    write_seed,
)

from .helpers import read_topic, sample, schema, scrape

END = 1_789_670_000.0


@pytest.mark.timeout(300)
async def test_seed_scenario_end_to_end(tmp_path: Path) -> None:
    rec = tmp_path / "seed.jsonl"
    write_seed(rec, END)
    seen: dict[str, Any] = {}

    async def serve(result: ReplayResult) -> None:
        with metrics_server(result.state.metrics, 0, "127.0.0.1") as port:
            seen["metrics"] = await asyncio.to_thread(scrape, port)
        raw = await asyncio.to_thread(read_topic, result.bootstrap, result.topics.signals, 1)
        seen["signals"] = [json.loads(v) for v in raw]
        raw_prices = await asyncio.to_thread(read_topic, result.bootstrap, result.topics.prices,
                                             15_000)
        seen["prices"] = len(raw_prices)
        seen["price_sample"] = json.loads(raw_prices[0])

    result = await replay(str(rec), metrics=Metrics.create(), serve=serve, quiet=True)
    assert result.processing.deadletters == []
    assert result.state.store.events == 5733
    assert result.state.prices.ticks == seen["prices"] == 3020 * 5
    jsonschema.validate(seen["price_sample"], schema("price"))

    records = seen["signals"]
    for rec_ in records:
        jsonschema.validate(rec_, schema("stress"))
    # The cascade of the last dip was announced as a state change on the topic.
    assert any(r["type"] == "cascade_start" and r["direction"] == "long" for r in records)
    final = [r for r in records if r["type"] == "snapshot" and r["ts"] == END][-1]["signals"]

    # "$230M of longs liquidated in an hour while shorts stayed under $5M": extreme long skew.
    imb = final["imbalance"]["1h"]
    long_usd, short_usd = sum(FINAL_HOUR_LONGS.values()), sum(FINAL_HOUR_SHORTS.values())
    assert imb["long_usd"] == pytest.approx(long_usd, rel=1e-3)
    assert imb["short_usd"] == pytest.approx(short_usd, rel=1e-3)
    assert imb["long_share"] > 0.98
    # A spike against the previous 24 hours' median hour.
    assert final["spike"]["long"]["flag"] and final["spike"]["long"]["multiple"] > 50
    assert not final["spike"]["short"]["flag"]
    # "Binance and Hyperliquid accounted for the largest share".
    shares = final["concentration"]["1h"]["shares"]
    assert sorted(shares, key=shares.get, reverse=True)[:2] == ["hyperliquid", "binance"]
    assert final["concentration"]["1h"]["top2_share"] == pytest.approx(
        (59e6 + 0.5e6 + 36e6 + 0.8e6) / (long_usd + short_usd), rel=1e-3)
    # "clusters remain active near recent local lows".
    clusters = final["clusters"]
    assert clusters["long_share_near_low"] == pytest.approx(1.0)
    btc = clusters["coins"]["BTC"]
    assert btc["local_low"] == 61_200.0
    top = btc["top_levels"][0]
    assert top["long_usd"] > 0 and top["low"] <= 61_200.0 * 1.01
    # "leverage is being reduced in stages rather than in a single capitulation".
    assert final["deleveraging"]["label"] == "staged"
    # Prices: every coin lower than 1 h and 24 h ago; liquidations rising as ranges shrink.
    assert final["breadth"]["down_1h_share"] == 1.0 and final["breadth"]["down_24h_share"] == 1.0
    assert all(d["flag"] for d in final["divergence"].values())
    assert set(final["divergence"]) == {"BTC", "ETH", "SOL", "XRP", "DOGE"}
    # Leverage (open interest polls of Bybit and Hyperliquid, every 5 minutes): built up over
    # the day, then reduced in stages with the waves; funding hot with OI up; the final hour's
    # longs are over 1 % of the open interest an hour ago.
    lev = final["leverage"]["market"]
    assert set(lev["coverage"]) == {"bybit", "hyperliquid"}
    kept = math.prod(1 - d for d in OI_DROPS.values())  # what the five stages left
    # Open interest is held in coins, so its USD also moves with the price (down ~5 % in 24 h;
    # every coin's path has the same shape): polls every 300 s up to END - 300 s, one of them
    # at END - 24 h.
    moved = price_path("BTC", END, END - 300) / price_path("BTC", END, END - 86400)
    assert lev["changes"]["24h"]["change_ratio"] == pytest.approx(
        (1 + OI_BUILDUP) * kept * moved - 1, rel=0.02)
    assert lev["buildup"]["flag"] and lev["buildup"]["score"] > 0.5
    assert lev["deleveraging"]["label"] == "staged" and lev["deleveraging"]["stages"] == 5
    assert lev["crowding"]["label"] == "long_crowded"
    assert lev["crowding"]["funding_8h"] == pytest.approx(OI_FUNDING_8H)
    assert lev["intensity"]["1h"]["ratio"] > 0.01
    assert final["leverage"]["coins"]["BTC"]["deleveraging"]["label"] == "staged"
    # "a decisive move lower could trigger a larger wave": the estimated liquidation map has
    # a long cluster below the price (more long USD within 5 % below than short USD above).
    for coin, cmap in final["liquidation_map"].items():
        longs, shorts = cmap["long"], cmap["short"]
        assert longs["top"] and longs["top"][0]["price"] < cmap["price_now"], coin
        assert longs["within_pct"]["5"] > shorts["within_pct"]["5"] >= 0, coin
        assert longs["within_pct"]["1"] <= longs["within_pct"]["2"] <= longs["within_pct"]["5"]
    assert set(final["liquidation_map"]) == {"BTC", "ETH", "SOL", "XRP", "DOGE"}
    index = final["index"]
    assert index["level"] == "extreme" and index["coverage"] == pytest.approx(1.0)
    assert index["components"]["oi_deleveraging"] == 0.5 and index["components"]["intensity"] == 1.0

    # The same numbers on /metrics.
    m = seen["metrics"]
    assert sample(m, "liqstress_long_share_ratio", window="1h") == pytest.approx(imb["long_share"])
    assert sample(m, "liqstress_spike_active", side="long") == 1.0
    assert sample(m, "liqstress_exchange_share_ratio", exchange="hyperliquid", window="1h") == \
        pytest.approx(shares["hyperliquid"])
    assert sample(m, "liqstress_top2_share_ratio", window="1h") == pytest.approx(
        final["concentration"]["1h"]["top2_share"])
    assert sample(m, "liqstress_near_extreme_ratio", side="long") == pytest.approx(1.0)
    assert sample(m, "liqstress_coin_near_extreme_ratio", coin="BTC", side="long") == \
        pytest.approx(1.0)
    assert sample(m, "liqstress_coin_local_low_usd", coin="BTC") == 61_200.0
    assert sample(m, "liqstress_deleveraging_state", state="staged") == 1.0
    assert sample(m, "liqstress_deleveraging_state", state="capitulation") == 0.0
    assert sample(m, "liqstress_breadth_down_ratio", window="24h") == 1.0
    assert sample(m, "liqstress_divergence_active", coin="ETH") == 1.0
    assert sample(m, "liqstress_stress_index") == pytest.approx(index["value"])
    assert index["value"] >= 75
    assert sample(m, "liqstress_prices_total", exchange="binance") == 3020 * 5
    assert sample(m, "liqstress_open_interest_usd") == pytest.approx(lev["oi_usd"])
    assert sample(m, "liqstress_leverage_buildup_active") == 1.0
    assert sample(m, "liqstress_oi_deleveraging_state", state="staged") == 1.0
    assert sample(m, "liqstress_crowding_state", state="long_crowded") == 1.0
    assert sample(m, "liqstress_open_interest_records_total", exchange="bybit") == 302 * 5
    btc_map = final["liquidation_map"]["BTC"]["long"]
    assert sample(m, "liqstress_liquidation_map_usd", coin="BTC", side="long", band="2pct") == \
        pytest.approx(btc_map["within_pct"]["2"])
    assert sample(m, "liqstress_liquidation_map_top_level_price_usd", coin="BTC",
                  side="long") == pytest.approx(btc_map["top"][0]["price"])

    # What `liqstress replay seed.jsonl` prints.
    summary = result.summary()
    sig = summary["signals"]
    assert summary["prices"] == 3020 * 5
    assert sig["level"] == "extreme" and sig["deleveraging"] == "staged"
    assert sig["long_share_near_low"] == pytest.approx(1.0)
    assert sig["divergence_coins"] == ["BTC", "DOGE", "ETH", "SOL", "XRP"]
    table = format_table(summary)
    assert "staged" in table and "prices: 15100" in table and "stress_index" in table
