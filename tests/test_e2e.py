"""End to end, all real parts: venue simulators -> `liqstress run` (collectors, embedded Tansu
broker, Faust worker, /metrics) -> a real Prometheus. Prometheus query results must equal the
sums of the frames sent; derived topics read with confluent-kafka must validate against their
JSON Schemas. Ctrl-C must stop everything cleanly."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from pathlib import Path

import jsonschema
import pytest

from liqstress.streams.sims.binance import MARK_PRICE_PATH, BinanceSim, force_order, mark_prices
from liqstress.streams.sims.bybit import INVERSE_PATH, LINEAR_PATH, BybitSim, liquidation
from liqstress.streams.sims.okx import OkxSim, detail, entry, liquidations

from .helpers import (
    ROOT,
    Prometheus,
    eventually,
    liqstress_cmd,
    read_topic,
    schema,
    spawn,
    stop_process,
)


@pytest.mark.timeout(240)
async def test_simulators_to_prometheus_and_derived_topics(tmp_path: Path) -> None:
    async with BinanceSim() as bn, BybitSim() as bb, OkxSim() as ok:
        urls = ",".join([
            f"binance.ws={bn.ws_url()}", f"binance.prices={bn.ws_url(MARK_PRICE_PATH)}",
            f"bybit.ws_linear={bb.ws_url(LINEAR_PATH)}", f"bybit.ws_inverse={bb.ws_url(INVERSE_PATH)}",
            f"bybit.rest={bb.http_base}",
            f"okx.ws={ok.ws_url()}", f"okx.rest={ok.http_base}",
        ])
        from liqstress.infra.broker import free_port
        port = free_port()
        log = tmp_path / "run.log"
        proc = spawn(liqstress_cmd("run", "--exchanges", "binance,bybit,okx", "--venue-urls", urls,
                                   "--metrics-port", str(port), "--metrics-host", "127.0.0.1",
                                   "--refresh-interval", "0.5"), log)
        prom = Prometheus([f"127.0.0.1:{port}"], tmp_path,
                          rule_files=[str(ROOT / "prometheus" / "rules" / "liqstress.yml")]).start()
        try:
            def broker_line() -> str | None:
                m = re.search(r"broker (\S+) \(embedded\)", log.read_text())
                return m.group(1) if m else None
            bootstrap = await eventually(broker_line, 30, what="embedded broker address")
            await eventually(lambda: len(bn.clients) == 2 and len(bb.clients) == 2 and ok.clients
                             and bb.subscribed[LINEAR_PATH] and bb.subscribed[INVERSE_PATH],
                             60, what="collectors to connect and subscribe")
            await asyncio.sleep(0.5)  # past the OKX subscribe ack: stale batch already dropped
            # Dated now: OKX drops anything dated before its subscribe ack as replayed history.
            now_ms = int(time.time() * 1000)

            # Binance mark prices (one frame; the collector keeps one per 10 s).
            await bn.push(mark_prices({"BTCUSDT": "60100.5", "ETHUSDT": "3001.25",
                                       "1000PEPEUSDT": "0.0123"}, now_ms), MARK_PRICE_PATH)
            # Binance: SELL closes a long. 0.5 BTC @ 60000 and 2 ETH @ 3000 (BUY: short).
            await bn.push(force_order("BTCUSDT", "SELL", "0.5", "60000", now_ms))
            await bn.push(force_order("ETHUSDT", "BUY", "2", "3000", now_ms + 1))
            await bn.push("{broken")
            # Bybit: S is the position side. Linear v*p; inverse v is USD.
            await bb.push(liquidation("BTCUSDT", ("Buy", "0.1", "61000", now_ms),
                                      ("Sell", "0.2", "61500", now_ms + 5)), LINEAR_PATH)
            await bb.push(liquidation("BTCUSD", ("Sell", "25000", "61000", now_ms + 9)), INVERSE_PATH)
            await bb.push('{"topic":"allLiquidation.BTCUSDT","data":"nope"}', LINEAR_PATH)
            # OKX: contracts x ctVal; inverse ctVal is USD; net posSide inverts the order side.
            await ok.push(liquidations(
                entry("BTC-USDT-SWAP", detail("long", "sell", "30", "60000", now_ms)),
                entry("ETH-USDT-SWAP", detail("net", "buy", "10", "3000", now_ms + 2)),
                entry("BTC-USD-SWAP", detail("short", "buy", "50", "60000", now_ms + 3))))
            await ok.push("not json at all")

            want = {
                ("binance", "long"): 0.5 * 60000, ("binance", "short"): 2 * 3000,
                ("bybit", "long"): 0.1 * 61000, ("bybit", "short"): 0.2 * 61500 + 25000,
                ("okx", "long"): 30 * 0.01 * 60000, ("okx", "short"): 10 * 0.1 * 3000 + 50 * 100,
            }
            want_counts = {("binance", "long"): 1, ("binance", "short"): 1, ("bybit", "long"): 1,
                           ("bybit", "short"): 2, ("okx", "long"): 1, ("okx", "short"): 2}

            def prom_matches() -> bool:
                got = prom.query_map("sum by (exchange, side) (liqstress_liquidated_usd_total)",
                                     "exchange", "side")
                win = prom.query_map('liqstress_window_liquidated_usd{window="1h"}', "exchange", "side")
                short = prom.query_map('liqstress_window_liquidated_usd{window="1m"}', "exchange", "side")
                return all(abs(got.get(k, -1) - v) < 1e-6 and abs(win.get(k, -1) - v) < 1e-6
                           and abs(short.get(k, -1) - v) < 1e-6 for k, v in want.items())
            try:
                await eventually(prom_matches, 60, interval=0.5, what="Prometheus to see the sums")
            except AssertionError:
                got = prom.query_map("sum by (exchange, side) (liqstress_liquidated_usd_total)",
                                     "exchange", "side")
                win = prom.query_map('liqstress_window_liquidated_usd{window="1h"}', "exchange", "side")
                raise AssertionError(f"want {want}\ngot {got}\nwindow {win}\n"
                                     f"log: {log.read_text()[-4000:]}") from None

            counts = prom.query_map("sum by (exchange, side) (liqstress_liquidations_total)",
                                    "exchange", "side")
            assert {k: counts.get(k) for k in want_counts} == {k: float(v) for k, v in want_counts.items()}
            largest = prom.query_map('liqstress_window_largest_liquidation_usd{window="24h"}',
                                     "exchange", "side")
            assert largest[("bybit", "short")] == 25000
            assert largest[("okx", "long")] == 18000
            dl = prom.query_map("sum by (exchange) (liqstress_deadletter_total)", "exchange")
            assert dl == {("binance",): 1.0, ("bybit",): 1.0, ("okx",): 1.0}
            up = prom.query_map("liqstress_source_up", "exchange")
            assert up == {("binance",): 1.0, ("bybit",): 1.0, ("okx",): 1.0}
            stale = prom.query_map("liqstress_snapshot_dropped_total", "exchange")
            assert stale[("okx",)] == 3  # the batch OKX replays on subscribe never counts
            sampled = prom.query_map("liqstress_source_sampled", "exchange")
            assert sampled == {("binance",): 1.0, ("bybit",): 0.0, ("okx",): 1.0}

            # The shipped recording rules evaluate against the real exporter.
            long_total = sum(v for (_, sd), v in want.items() if sd == "long")
            share = long_total / sum(want.values())

            def rules_evaluated() -> bool:
                r = prom.query_map('window:liqstress_window_liquidated_usd_long_per_total:ratio{window="1h"}')
                return abs(r.get((), -1) - share) < 1e-9
            await eventually(rules_evaluated, 40, interval=1, what="recording rules")
            summed = prom.query_map('side_window:liqstress_window_liquidated_usd:sum{window="24h"}', "side")
            assert abs(summed[("long",)] - long_total) < 1e-6
            assert prom.query('ALERTS{alertname=~"LiqStressSource.*"}') == []

            # Derived topics, read by an independent client and checked against the schemas.
            events = [json.loads(v) for v in read_topic(bootstrap, "liquidations", 8)]
            assert len(events) == 8
            for ev in events:
                jsonschema.validate(ev, schema("liquidation"))
            assert sorted((e["exchange"], e["side"]) for e in events) == sorted(
                k for k, n in want_counts.items() for _ in range(n))
            snaps = [json.loads(v) for v in read_topic(bootstrap, "liquidation.windows", 1)]
            assert snaps
            for snap in snaps[-3:]:
                jsonschema.validate(snap, schema("windows"))
            last = snaps[-1]
            assert last["events"] == 8
            for (ex, side), usd in want.items():
                assert abs(last["windows"]["1h"]["exchange"][ex][side]["usd"] - usd) < 1e-6
            assert abs(last["windows"]["1h"]["total"]["long"]["usd"]
                       - sum(v for (_, s), v in want.items() if s == "long")) < 1e-6
            assert last["windows"]["1h"]["coin"]["BTC"]["long"]["count"] == 3
            dls = [json.loads(v) for v in read_topic(bootstrap, "liquidations.deadletter", 3)]
            assert sorted(d["reason"] for d in dls) == sorted(
                ["malformed_json", "malformed_json", "unexpected_shape"]) or len(dls) == 3
            for d in dls:
                jsonschema.validate(d, schema("deadletter"))
            stress = [json.loads(v) for v in read_topic(bootstrap, "stress.signals", 1)]
            assert any(m["type"] == "snapshot" for m in stress)
            for m in stress:
                jsonschema.validate(m, schema("stress"))
            last_stress = [m for m in stress if m["type"] == "snapshot"][-1]["signals"]
            assert last_stress["imbalance"]["1h"]["long_share"] == pytest.approx(
                long_total / sum(want.values()))
            index = prom.query_map("liqstress_stress_index")
            assert 0 <= index[()] <= 100
            prices = [json.loads(v) for v in read_topic(bootstrap, "prices", 3)]
            for t in prices:
                jsonschema.validate(t, schema("price"))
            assert sorted((t["coin"], t["price"]) for t in prices) == [
                ("BTC", 60100.5), ("ETH", 3001.25), ("PEPE", pytest.approx(0.0000123))]
            await eventually(lambda: prom.query_map("liqstress_coin_price_usd", "coin") == {
                ("BTC",): 60100.5, ("ETH",): 3001.25}, 30, interval=0.5, what="coin prices")
            clusters = last_stress["clusters"]["coins"]["BTC"]
            assert clusters["price"] == 60100.5
            raws = [json.loads(v) for v in read_topic(bootstrap, "liquidations.raw", 10)]
            for r in raws:
                jsonschema.validate(r, schema("raw"))
            assert any(r["frame"] == "{broken" for r in raws if "frame" in r)
        finally:
            prom.stop()
            rc = stop_process(proc, signal.SIGINT, timeout=30)
    text = log.read_text()
    assert rc == 0, text[-3000:]
    assert "liqstress: stopping" in text
