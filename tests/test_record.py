"""`liqstress record` against the simulators writes a self-contained recording (REST bodies
and frames) that `normalize` turns back into the same events."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from liqstress import cli
from liqstress.cli.pipeline import process_recording
from liqstress.streams.sims.binance import MARK_PRICE_PATH, BinanceSim, force_order, mark_prices
from liqstress.streams.sims.okx import OkxSim, detail, entry, liquidations


@pytest.mark.timeout(60)
async def test_record_then_normalize(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl"
    async with BinanceSim() as bn, OkxSim() as ok:
        urls = (f"binance.ws={bn.ws_url()},binance.prices={bn.ws_url(MARK_PRICE_PATH)},"
                f"okx.ws={ok.ws_url()},okx.rest={ok.http_base}")
        args = cli.build_parser().parse_args(
            ["record", "--out", str(out), "--exchanges", "binance,okx", "--venue-urls", urls,
             "--duration", "3"])
        task = asyncio.create_task(cli.cmd_record(args))
        await bn.wait_for(lambda: len(bn.clients) == 2 and ok.clients and ok.messages())
        await asyncio.sleep(0.3)
        t = int(time.time() * 1000)
        await bn.push(force_order("BTCUSDT", "SELL", "1", "50000", t))
        # Mark prices: the first frame is kept, the second (within 10 s) is throttled away.
        await bn.push(mark_prices({"BTCUSDT": "50100.5", "ETHUSDT": "3001"}, t), MARK_PRICE_PATH)
        await bn.push(mark_prices({"BTCUSDT": "50200"}, t + 1000), MARK_PRICE_PATH)
        await ok.push(liquidations(entry("ETH-USDT-SWAP", detail("short", "buy", "4", "3000", t))))
        assert await asyncio.wait_for(task, 10) == 0
    lines = out.read_bytes().splitlines()
    assert any(b"/api/v5/public/instruments?instType=SWAP" in ln for ln in lines)  # REST kept
    with out.open("rb") as fh:
        res = process_recording(fh, lambda n, m: None)
    got = sorted((e.exchange, e.side, e.notional_usd) for e in res.events)
    assert got == [("binance", "long", 50000.0), ("okx", "short", 4 * 0.1 * 3000)]
    assert res.snapshot_dropped == 3  # the OKX stale batch, recorded but never an event
    # Prices are recorded as frames and replay into the same ticks.
    assert sorted((p.coin, p.price) for p in res.prices) == [("BTC", 50100.5), ("ETH", 3001.0)]
