"""Bitget UTA simulator: ``/v3/ws/public`` (per-arg subscribe acks, ``event: error`` for a bad
instType, text ``ping`` -> ``pong``, optionally an ``action: snapshot`` frame right after an
ack). No metadata REST: the venue needs none; the open-interest listing
``/api/v2/mix/market/tickers?productType=..`` is served from ``oi_bodies`` (``oi_body`` builds
one), and the liquidation history ``/api/v3/market/liquidations`` (the warm start) from
``liquidation_history``: pages, a cursor, a 429, a slow answer or a refusal on demand.
Run standalone for a demo:
``python -m liqstress.streams.sims.bitget``."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/v3/ws/public"
TOPIC = "liquidation"
KNOWN_INST_TYPES = ("usdt-futures", "coin-futures", "usdc-futures")

# The message shape of exchanges.md §2.9 verbatim (tardis-node type; values from an OSS test
# fixture, not an exchange capture).
SAMPLE_FRAME = {
    "action": "update", "arg": {"instType": "usdt-futures", "topic": "liquidation"},
    "data": [{"symbol": "BTCUSDT", "side": "buy", "price": "60000", "amount": "150000",
              "ts": "1791500000000"}],
    "ts": 1791500000000,
}
DOC_ACK = {"event": "subscribe", "arg": {"instType": "usdt-futures", "topic": "liquidation"}}
# Bitget's error frame shape (v2 doc example), with a v3 arg.
DOC_ERROR = {"event": "error", "arg": {"instType": "spot", "topic": "liquidation"},
             "code": 30001, "msg": "instType:spot,topic:liquidation doesn't exist",
             "op": "subscribe"}


def entry(symbol: str, side: str, amount: str, price: str, t_ms: int) -> dict[str, Any]:
    """One liquidation: ``side`` the POSITION side, ``amount`` in quote (the notional)."""
    return {"symbol": symbol, "side": side, "price": price, "amount": amount, "ts": str(t_ms)}


def liquidations(*entries: dict[str, Any], inst_type: str = "usdt-futures",
                 action: str = "update") -> str:
    push_ms = max(int(e["ts"]) for e in entries) + 200
    return orjson.dumps({"action": action, "arg": {"instType": inst_type, "topic": TOPIC},
                         "data": list(entries), "ts": push_ms}).decode()


def stale_snapshot(inst_type: str = "usdt-futures") -> str:
    """What a snapshot after subscribe would look like: liquidations from minutes ago."""
    t = int(time.time() * 1000) - 600_000
    quote = {"usdt-futures": "USDT", "coin-futures": "USD", "usdc-futures": "PERP"}[inst_type]
    return liquidations(entry(f"BTC{quote}", "buy", "5000", "60000", t),
                        entry(f"ETH{quote}", "sell", "3000", "3000", t + 1000),
                        inst_type=inst_type, action="snapshot")


OI_PATH = "/api/v2/mix/market/tickers"


def ticker(symbol: str, holding: str, mark: str, t_ms: int, funding: str = "0.0001",
           **extra: Any) -> dict[str, Any]:
    """One v2 ``/mix/market/tickers`` row (the fields of Bitget's doc example): ``holding``
    is base coin."""
    return {"symbol": symbol, "lastPr": mark, "askPr": mark, "bidPr": mark, "bidSz": "1",
            "askSz": "1", "high24h": mark, "low24h": mark, "ts": str(t_ms), "change24h": "0",
            "baseVolume": "0", "quoteVolume": "0", "usdtVolume": "0", "openUtc": mark,
            "changeUtc24h": "0", "indexPrice": mark, "fundingRate": funding,
            "holdingAmount": holding, "deliveryStartTime": None, "deliveryTime": None,
            "deliveryStatus": "", "open24h": mark, "markPrice": mark, **extra}


def oi_body(*rows: dict[str, Any], t_ms: int = 1_791_500_000_000) -> str:
    return orjson.dumps({"code": "00000", "msg": "success", "requestTime": t_ms,
                         "data": list(rows)}).decode()


def default_oi_bodies(t_ms: int = 1_791_500_000_000) -> dict[str, str]:
    rows = {"USDT-FUTURES": [ticker("BTCUSDT", "40000", "60000", t_ms),
                             ticker("ETHUSDT", "500000", "3000", t_ms, "-0.00005")],
            "COIN-FUTURES": [ticker("BTCUSD", "5000", "60000", t_ms)],
            "USDC-FUTURES": [ticker("BTCPERP", "1000", "60010", t_ms)]}
    return {f"{OI_PATH}?productType={k}": oi_body(*v, t_ms=t_ms) for k, v in rows.items()}


HISTORY_PATH = "/api/v3/market/liquidations"


def envelope(data: Any, code: str = "00000", msg: str = "success",
             t_ms: int = 1_791_500_000_000) -> str:
    """Bitget's REST envelope around ``data``."""
    return orjson.dumps({"code": code, "msg": msg, "requestTime": t_ms, "data": data}).decode()


class BitgetSim(VenueSim):
    ws_paths = (WS_PATH,)
    oi_paths = (OI_PATH,)

    def __init__(self) -> None:
        super().__init__()
        self.send_snapshot = False
        #: Every subscribed arg, across connections (resubscribes repeat them).
        self.subscribed: list[dict[str, Any]] = []
        self.oi_bodies.update(default_oi_bodies())
        #: Liquidations per category (``USDT-FUTURES``...; ``entry`` rows), any order: served
        #: newest first, ``limit`` (and ``history_page``) a page, with an opaque ``cursor``
        #: while rows remain and none once a page comes back empty.
        #: ``history_requests`` (base): (category, cursor or None) per request.
        self.liquidation_history: dict[str, list[dict[str, Any]]] = {}
        self.history_page = 100
        #: Answer this many history requests with a 200 body of a non-``00000`` code.
        self.history_refuse = 0

    def rest_routes(self) -> dict[str, Any]:
        return {HISTORY_PATH: self._liquidations}

    async def _liquidations(self, request: web.Request) -> str:
        q = request.query
        category, cursor = q.get("category", ""), q.get("cursor")
        self.history_requests.append((category, cursor))
        await self.history_faults(envelope(None, "429", "Too Many Requests"))
        if self.history_refuse > 0:
            self.history_refuse -= 1
            return envelope(None, "40034", "Parameter verification failed")
        rows = sorted(self.liquidation_history.get(category, []), key=lambda e: int(e["ts"]),
                      reverse=True)
        start = int(cursor[1:]) if cursor else 0  # the sim's cursor: "c<offset>"
        page = rows[start:start + min(int(q.get("limit", "100")), self.history_page)]
        return envelope({"list": page,
                         "cursor": f"c{start + len(page)}" if page else ""})

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = await self.subscribe_request(ws, msg)
        if req is None:
            return
        for arg in req.get("args", []):
            if self.fail_subscribe or arg.get("instType") not in KNOWN_INST_TYPES:
                await ws.send(orjson.dumps({**DOC_ERROR, "arg": arg}).decode())
                continue
            self.subscribed.append(arg)
            await ws.send(orjson.dumps({"event": "subscribe", "arg": arg}).decode())
            if self.send_snapshot:
                await ws.send(stale_snapshot(arg["instType"]))


async def _demo(sim: BitgetSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(liquidations(entry("BTCUSDT", "buy" if i % 3 else "sell", "120000", "60000",
                                      now)))


if __name__ == "__main__":  # pragma: no cover
    run_demo(BitgetSim, _demo)
