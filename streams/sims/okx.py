"""OKX v5 simulator: ``/ws/v5/public`` (subscribe acks per arg, text ``ping`` -> ``pong``, a
stale liquidation batch right after the ack, as OKX does), ``/api/v5/public/instruments`` and
the open-interest poll (``/api/v5/public/funding-rate?instId=ANY``,
``/api/v5/public/open-interest?instType=SWAP|FUTURES`` from ``oi_bodies``, built by
``funding_body`` and ``oi_body``), and the liquidation history
``/api/v5/public/liquidation-orders`` (pages back with ``after``; a 429, a ``50011`` refusal or
a slow answer on demand). Run standalone for a demo: ``python -m liqstress.streams.sims.okx``."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/ws/v5/public"

# The OKX doc example, verbatim (liquidation-orders channel).
DOC_FRAME = {
    "id": "1512",
    "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
    "data": [
        {
            "details": [
                {"bkLoss": "0", "bkPx": "0.007831", "ccy": "", "posSide": "short",
                 "side": "buy", "sz": "13", "ts": "1692266434010"},
            ],
            "instFamily": "IOST-USDT", "instId": "IOST-USDT-SWAP",
            "instType": "SWAP", "uly": "IOST-USDT",
        },
    ],
}
DOC_ACK = {"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
           "connId": "a4d3ae55"}
DOC_ERROR = {"event": "error", "code": "60012",
             "msg": "Invalid request: {\"op\": \"subscribe\", \"argss\":[]}", "connId": "a4d3ae55"}


def _inst(inst_type: str, inst_id: str, uly: str, ct_val: str, ct_type: str, ct_ccy: str,
          settle: str, exp: str = "") -> dict[str, Any]:
    return {"instType": inst_type, "instId": inst_id, "uly": uly, "instFamily": uly,
            "baseCcy": "", "quoteCcy": "", "settleCcy": settle, "ctVal": ct_val, "ctMult": "1",
            "ctValCcy": ct_ccy, "ctType": ct_type, "expTime": exp, "lever": "100",
            "lotSz": "0.01", "minSz": "0.01", "tickSz": "0.1", "state": "live",
            "listTime": "1606468572000", "alias": "quarter" if exp else ""}


INSTRUMENTS: dict[str, list[dict[str, Any]]] = {
    "SWAP": [
        _inst("SWAP", "BTC-USDT-SWAP", "BTC-USDT", "0.01", "linear", "BTC", "USDT"),
        _inst("SWAP", "ETH-USDT-SWAP", "ETH-USDT", "0.1", "linear", "ETH", "USDT"),
        _inst("SWAP", "BTC-USD-SWAP", "BTC-USD", "100", "inverse", "USD", "BTC"),
    ],
    "FUTURES": [
        _inst("FUTURES", "BTC-USD-261225", "BTC-USD", "100", "inverse", "USD", "BTC",
              exp="1798185600000"),
    ],
}


def instruments_body(inst_type: str) -> str:
    return orjson.dumps({"code": "0", "msg": "", "data": INSTRUMENTS.get(inst_type, [])}).decode()


def detail(pos_side: str, side: str, sz: str, bk_px: str, t_ms: int) -> dict[str, Any]:
    return {"bkLoss": "0", "bkPx": bk_px, "ccy": "", "posSide": pos_side, "side": side,
            "sz": sz, "ts": str(t_ms)}


def entry(inst_id: str, *details: dict[str, Any], inst_type: str | None = None) -> dict[str, Any]:
    uly = "-".join(inst_id.split("-")[:2])
    kind = inst_type or ("SWAP" if inst_id.endswith("-SWAP") else "FUTURES")
    return {"details": list(details), "instFamily": uly, "instId": inst_id, "instType": kind,
            "uly": uly}


def liquidations(*entries: dict[str, Any], inst_type: str = "SWAP") -> str:
    return orjson.dumps({"arg": {"channel": "liquidation-orders", "instType": inst_type},
                         "data": list(entries)}).decode()


#: What OKX pushes right after a subscribe: liquidations from minutes to hours ago.
STALE_BATCH = liquidations(
    entry("BTC-USDT-SWAP", detail("long", "sell", "5", "60000", 1_692_266_000_000),
          detail("short", "buy", "2", "60100", 1_692_266_100_000)),
    entry("ETH-USDT-SWAP", detail("net", "sell", "30", "3000", 1_692_266_200_000)),
)


FUNDING_PATH = "/api/v5/public/funding-rate"
OI_PATH = "/api/v5/public/open-interest"


def _now_ms() -> int:
    return int(time.time() * 1000)


def funding_body(*rows: tuple[str, str, int]) -> str:
    """``funding-rate?instId=ANY``: rows of (instId, fundingRate, interval hours)."""
    now = _now_ms()
    nxt = now - now % 3_600_000 + 3_600_000
    data = [{"formulaType": "withRate", "fundingRate": rate, "fundingTime": str(nxt),
             "instId": inst_id, "instType": "SWAP", "method": "current_period",
             "nextFundingRate": "", "nextFundingTime": str(nxt + hours * 3_600_000),
             "settState": "settled", "ts": str(now)} for inst_id, rate, hours in rows]
    return orjson.dumps({"code": "0", "data": data, "msg": ""}).decode()


def oi_body(inst_type: str, *rows: tuple[str, str, str, str | None]) -> str:
    """``open-interest?instType=...``: rows of (instId, oi contracts, oiCcy, oiUsd or None)."""
    now = str(_now_ms())
    data = []
    for inst_id, oi, oi_ccy, oi_usd in rows:
        row = {"instId": inst_id, "instType": inst_type, "oi": oi, "oiCcy": oi_ccy, "ts": now}
        if oi_usd is not None:
            row["oiUsd"] = oi_usd
        data.append(row)
    return orjson.dumps({"code": "0", "data": data, "msg": ""}).decode()


HISTORY_PATH = "/api/v5/public/liquidation-orders"
#: OKX's refusal for rate: code 50011 in an HTTP 200 (the HTTP 429 carries the same body).
RATE_LIMITED = orjson.dumps({"code": "50011", "msg": "Too Many Requests", "data": []}).decode()


class OkxSim(VenueSim):
    ws_paths = (WS_PATH,)
    oi_paths = (FUNDING_PATH, OI_PATH)

    def __init__(self) -> None:
        super().__init__()
        self.oi_bodies[f"{FUNDING_PATH}?instId=ANY"] = funding_body(
            ("BTC-USDT-SWAP", "0.0001", 8), ("ETH-USDT-SWAP", "-0.00002", 4),
            ("BTC-USD-SWAP", "0.00005", 8))
        self.oi_bodies[f"{OI_PATH}?instType=SWAP"] = oi_body(
            "SWAP", ("BTC-USDT-SWAP", "2500000", "25000", "1500000000"),
            ("ETH-USDT-SWAP", "3000000", "300000", "900000000"),
            ("BTC-USD-SWAP", "4000000", "6666.67", None))
        self.oi_bodies[f"{OI_PATH}?instType=FUTURES"] = oi_body(
            "FUTURES", ("BTC-USD-261225", "50000", "83.3", "5000000"))
        self.send_stale_batch = True
        #: Liquidation history (``/api/v5/public/liquidation-orders``): entries (``entry``)
        #: per (instType, instFamily), details in any order. Served as OKX pages it: the
        #: details older than ``after`` (exclusive), newest first, at most ``limit`` (and
        #: ``history_page``) of them, regrouped per instrument. ``history_requests`` (base):
        #: (instType, instFamily, after or None) per request; ``history_refusals``: 50011.
        self.liquidation_history: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.history_page = 100

    def rest_routes(self) -> dict[str, Any]:
        return {"/api/v5/public/instruments": self._instruments, HISTORY_PATH: self._history}

    async def _history(self, request: web.Request) -> str:
        q = request.query
        key, after = (q.get("instType", ""), q.get("instFamily", "")), q.get("after")
        self.history_requests.append((*key, after))
        refused = await self.history_faults(RATE_LIMITED, RATE_LIMITED)
        if refused is not None:
            return refused
        rows = [(int(d["ts"]), e, d) for e in self.liquidation_history.get(key, [])
                for d in e["details"] if after is None or int(d["ts"]) < int(after)]
        rows.sort(key=lambda r: r[0], reverse=True)
        page = rows[:min(int(q.get("limit", "100")), self.history_page)]
        grouped: dict[str, dict[str, Any]] = {}
        for _, e, d in page:
            grouped.setdefault(e["instId"], {**e, "details": [], "totalLoss": "0"})[
                "details"].append(d)
        return orjson.dumps({"code": "0", "msg": "", "data": list(grouped.values())}).decode()

    async def _instruments(self, request: web.Request) -> str:
        return instruments_body(request.query.get("instType", ""))

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = await self.subscribe_request(ws, msg)
        if req is None:
            return
        if self.fail_subscribe:
            await ws.send(orjson.dumps(DOC_ERROR).decode())
            return
        for arg in req.get("args", []):
            ack: dict[str, Any] = {"event": "subscribe", "arg": arg, "connId": "a4d3ae55"}
            if "id" in req:
                ack["id"] = req["id"]
            await ws.send(orjson.dumps(ack).decode())
        if self.send_stale_batch:
            await ws.send(STALE_BATCH)


async def _demo(sim: OkxSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(liquidations(entry("BTC-USDT-SWAP", detail(
        "long" if i % 3 else "short", "sell" if i % 3 else "buy", "3", "60000", now))))


if __name__ == "__main__":  # pragma: no cover
    run_demo(OkxSim, _demo)
