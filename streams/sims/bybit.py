"""Bybit v5 simulator: ``/v5/public/linear`` and ``/v5/public/inverse`` websockets (subscribe
acks, ``{"op":"ping"}`` replies), a paginated ``/v5/market/instruments-info`` and the
open-interest listing ``/v5/market/tickers?category=linear|inverse`` (``oi_bodies``, built by
``oi_body``). Run standalone for a demo: ``python -m liqstress.streams.sims.bybit``."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

LINEAR_PATH = "/v5/public/linear"
INVERSE_PATH = "/v5/public/inverse"

# The Bybit doc example, verbatim (all-liquidation.mdx).
DOC_FRAME = {
    "topic": "allLiquidation.ROSEUSDT",
    "type": "snapshot",
    "ts": 1739502303204,
    "data": [
        {"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"},
    ],
}
# Live captures (ai-rates, 2026-09-18), as quoted in exchanges.md.
LIVE_BUY = ('{"topic":"allLiquidation.ICPUSDT","type":"snapshot","ts":1789670094412,"data":'
            '[{"T":1789670094099,"s":"ICPUSDT","S":"Buy","v":"19.7","p":"2.585"}]}')
LIVE_SELL = ('{"topic":"allLiquidation.MARSCOINUSDT","type":"snapshot","ts":1789670278412,'
             '"data":[{"T":1789670278053,"s":"MARSCOINUSDT","S":"Sell","v":"2380",'
             '"p":"0.12734"}]}')

PONG = {"success": True, "ret_msg": "pong", "conn_id": "d9b1c6a8-sim", "op": "ping"}
#: Page token as Bybit sends it (already percent-encoded inside).
CURSOR = "first%3DBTCUSDT%26last%3DBTCUSDT"


def _inst(symbol: str, contract_type: str, base: str, quote: str,
          status: str = "Trading") -> dict[str, Any]:
    return {"symbol": symbol, "contractType": contract_type, "status": status,
            "baseCoin": base, "quoteCoin": quote, "settleCoin": quote if "Linear" in
            contract_type else base, "launchTime": "1585526400000", "deliveryTime": "0",
            "priceScale": "2", "lotSizeFilter": {"qtyStep": "0.001", "minOrderQty": "0.001"}}


LINEAR_PAGES = [
    [_inst("BTCUSDT", "LinearPerpetual", "BTC", "USDT")],
    [_inst("ETHUSDT", "LinearPerpetual", "ETH", "USDT"),
     _inst("BTCPERP", "LinearPerpetual", "BTC", "USDC"),
     _inst("NEWUSDT", "LinearPerpetual", "NEW", "USDT", status="PreLaunch")],
]
INVERSE = [
    _inst("BTCUSD", "InversePerpetual", "BTC", "USD"),
    _inst("BTCUSDH26", "InverseFutures", "BTC", "USD"),
    _inst("OLDUSD", "InversePerpetual", "OLD", "USD", status="Closed"),
]


def instruments_body(category: str, items: list[dict[str, Any]], cursor: str = "") -> str:
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {
        "category": category, "list": items, "nextPageCursor": cursor},
        "retExtInfo": {}, "time": 1789670000000}).decode()


TICKERS_PATH = "/v5/market/tickers"


def ticker(symbol: str, single_oi: str, mark: str, funding: str = "0.0001",
           interval_hours: str = "8", delivery_ms: int = 0) -> dict[str, Any]:
    """One ``/v5/market/tickers`` row (the fields the OI parser reads, as Bybit sends them):
    ``openInterest`` is both sides, twice ``singleOpenInterest``."""
    both = float(single_oi) * 2
    return {"symbol": symbol, "markPrice": mark, "openInterest": f"{both:g}",
            "singleOpenInterest": single_oi, "fundingRate": "" if delivery_ms else funding,
            "fundingIntervalHour": "" if delivery_ms else interval_hours,
            "deliveryTime": str(delivery_ms), "nextFundingTime": "0" if delivery_ms else "1"}


def oi_body(category: str, *rows: dict[str, Any], time_ms: int | None = None) -> str:
    """A tickers body of ``category`` listing ``rows`` (see ``ticker``)."""
    now = int(time.time() * 1000) if time_ms is None else time_ms
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {
        "category": category, "list": list(rows)}, "retExtInfo": {}, "time": now}).decode()


def liquidation(symbol: str, *entries: tuple[str, str, str, int]) -> str:
    """An ``allLiquidation`` frame; each entry is (position side, v, p, T ms)."""
    data = [{"T": t, "s": symbol, "S": side, "v": v, "p": p} for side, v, p, t in entries]
    push_ts = max(t for *_, t in entries) + 300
    return orjson.dumps({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": push_ts,
                         "data": data}).decode()


class BybitSim(VenueSim):
    ws_paths = (LINEAR_PATH, INVERSE_PATH)
    oi_paths = (TICKERS_PATH,)

    def __init__(self) -> None:
        super().__init__()
        self.oi_bodies[f"{TICKERS_PATH}?category=linear"] = oi_body(
            "linear", ticker("BTCUSDT", "25000", "60000", "0.0001"),
            ticker("ETHUSDT", "400000", "3000", "-0.00005", "4"))
        self.oi_bodies[f"{TICKERS_PATH}?category=inverse"] = oi_body(
            "inverse", ticker("BTCUSD", "300000000", "60000", "0.0001"),
            ticker("BTCUSDH26", "20000000", "61000", delivery_ms=1_774_598_400_000))
        #: path -> topics subscribed, over every connection (resubscribes repeat them).
        self.subscribed: dict[str, list[str]] = {LINEAR_PATH: [], INVERSE_PATH: []}

    def urls(self) -> dict[str, str]:
        return {"ws_linear": self.ws_url(LINEAR_PATH), "ws_inverse": self.ws_url(INVERSE_PATH),
                "rest": self.http_base}

    def rest_routes(self) -> dict[str, Any]:
        return {"/v5/market/instruments-info": self._instruments}

    async def _instruments(self, request: web.Request) -> str:
        category = request.query.get("category")
        if category == "linear":
            if request.query.get("cursor") == CURSOR:
                return instruments_body("linear", LINEAR_PAGES[1])
            return instruments_body("linear", LINEAR_PAGES[0], CURSOR)
        if category == "inverse":
            return instruments_body("inverse", INVERSE)
        return orjson.dumps({"retCode": 10001, "retMsg": "params error", "result": {}}).decode()

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = orjson.loads(msg)
        if req.get("op") == "ping":
            if self.answer_pings:
                await ws.send(orjson.dumps(PONG).decode())
        elif req.get("op") == "subscribe":
            if self.fail_subscribe:
                await ws.send(orjson.dumps({
                    "success": False, "ret_msg": "error:handler not found,topic:x",
                    "conn_id": "d9b1c6a8-sim", "req_id": req.get("req_id"),
                    "op": "subscribe"}).decode())
                return
            self.subscribed.setdefault(path, []).extend(req.get("args", []))
            await ws.send(orjson.dumps({"success": True, "ret_msg": "", "conn_id": "d9b1c6a8-sim",
                                        "req_id": req.get("req_id"), "op": "subscribe"}).decode())


async def _demo(sim: BybitSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(liquidation("BTCUSDT", ("Buy" if i % 3 else "Sell", "0.5", "60000", now)),
                   LINEAR_PATH)
    await sim.push(liquidation("BTCUSD", ("Sell", "10000", "60000", now)), INVERSE_PATH)


if __name__ == "__main__":  # pragma: no cover
    run_demo(BybitSim, _demo)
