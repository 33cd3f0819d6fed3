"""Gate USDT futures simulator: ``/v4/ws/usdt`` (``futures.public_liquidates`` subscribe acks and
errors, ``futures.ping`` -> ``futures.pong``), ``/api/v4/futures/usdt/contracts`` and the
open-interest listing ``/api/v4/futures/usdt/tickers`` (``oi_bodies``; ``oi_body`` builds one)
and the liquidation history ``/api/v4/futures/usdt/liq_orders`` (``liq_orders``; a 429 or a slow
answer on demand). Run
standalone for a demo: ``python -m liqstress.streams.sims.gate``."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/v4/ws/usdt"
CHANNEL = "futures.public_liquidates"

# The Gate doc example after the 2026-08-20 change, verbatim (exchanges.md §2.8).
DOC_FRAME = {
    "channel": "futures.public_liquidates", "event": "update", "time": 1541505434,
    "time_ms": 1541505434123,
    "result": [
        {"price": "215.1", "size": "-124.5", "time": 1541486601123, "contract": "BTC_USDT"},
        {"price": "215.2", "size": "-10.5", "time": 1541486601456, "contract": "BTC_USDT"},
    ],
}
# Live frames from gateio/WebSocket-API #132 (2026-08-10), verbatim: a bare object, not an array.
ISSUE_FRAMES = (
    '{"time":1786327033,"time_ms":1786327033532,"channel":"futures.public_liquidates",'
    '"event":"update","result":{"contract":"HEI_USDT","price":"0.13827","time":1786327033531,'
    '"size":-23}}',
    '{"time":1786327035,"time_ms":1786327035702,"channel":"futures.public_liquidates",'
    '"event":"update","result":{"contract":"HEI_USDT","price":"0.13761","time":1786327035701,'
    '"size":-9}}',
    '{"time":1786327040,"time_ms":1786327040873,"channel":"futures.public_liquidates",'
    '"event":"update","result":{"contract":"LAB_USDT","price":"0.11824","time":1786327040872,'
    '"size":-9}}',
)
# The subscribe ack and error in Gate's documented shape (ids are made up).
DOC_ACK = {"time": 1789660000, "time_ms": 1789660000123, "conn_id": "5e74253e9c793974",
           "trace_id": "d8ee37cd14347e4ed298d44e69aedaa7", "channel": CHANNEL,
           "event": "subscribe", "payload": ["!all"], "error": None,
           "result": {"status": "success"}}
DOC_ERROR = {"time": 1789660000, "time_ms": 1789660000125, "conn_id": "5e74253e9c793974",
             "channel": CHANNEL, "event": "subscribe",
             "error": {"code": 2, "message": "unknown contract BTC_USDTX"},
             "result": {"status": "failed"}}


def pong(now: float | None = None) -> str:
    t = time.time() if now is None else now
    return orjson.dumps({"time": int(t), "time_ms": int(t * 1000), "conn_id": "5e74253e9c793974",
                         "trace_id": "0b6e5a1c", "channel": "futures.pong", "event": "",
                         "result": None}).decode()


def _contract(name: str, mult: str, ctype: str = "direct") -> dict[str, Any]:
    return {"name": name, "type": ctype, "quanto_multiplier": mult, "mark_type": "index",
            "leverage_min": "1", "leverage_max": "100", "order_size_min": 1,
            "order_size_max": 1000000, "in_delisting": False, "status": "trading",
            "funding_interval": 28800, "order_price_round": "0.1"}


CONTRACTS: list[dict[str, Any]] = [
    _contract("BTC_USDT", "0.0001"),
    _contract("ETH_USDT", "0.01"),
    _contract("SOL_USDT", "1"),
    _contract("DOGE_USDT", "10"),
]


def contracts_body(contracts: list[dict[str, Any]] | None = None) -> str:
    return orjson.dumps(CONTRACTS if contracts is None else contracts).decode()


def item(contract: str, size: int | str, price: str, t_ms: int) -> dict[str, Any]:
    """One liquidation: ``size`` in contracts, signed (positive = a long, see the venue)."""
    return {"price": price, "size": size, "time": t_ms, "contract": contract}


def liquidations(*items: dict[str, Any], bare: bool = False) -> str:
    """An update frame: an array of items (doc, post-2026-08-20) or one bare object (#132)."""
    push_ms = max(i["time"] for i in items) + 400
    result: Any = items[0] if bare else list(items)
    return orjson.dumps({"time": push_ms // 1000, "time_ms": push_ms, "channel": CHANNEL,
                         "event": "update", "result": result}).decode()


OI_PATH = "/api/v4/futures/usdt/tickers"


def ticker(contract: str, total_size: int, mark_price: str, funding_rate: str = "0.0001",
           **extra: Any) -> dict[str, Any]:
    """One ``/futures/usdt/tickers`` row (the fields of a captured BTC_USDT row):
    ``total_size`` in contracts, strings as Gate sends them."""
    return {"contract": contract, "last": mark_price, "change_percentage": "0",
            "funding_rate": funding_rate, "mark_price": mark_price, "index_price": mark_price,
            "total_size": str(total_size), "volume_24h": "0", "quanto_base_rate": "",
            "low_24h": mark_price, "high_24h": mark_price, "funding_rate_indicative": funding_rate,
            "volume_24h_quote": "0", "volume_24h_settle": "0", "volume_24h_base": "0", **extra}


def oi_body(*rows: dict[str, Any]) -> str:
    return orjson.dumps(list(rows)).decode()


#: Default listing: BTC 500 000 000 contracts x 0.0001 = 50 000 BTC, ETH 3 000 000 x 0.01.
DEFAULT_TICKERS = (ticker("BTC_USDT", 500_000_000, "60000"),
                   ticker("ETH_USDT", 3_000_000, "3000", "-0.00005"))


HISTORY_PATH = "/api/v4/futures/usdt/liq_orders"
#: Gate's error body (the 429 carries one).
TOO_MANY = orjson.dumps({"label": "TOO_MANY_REQUESTS", "message": "Request Rate Limit Exceeded"}
                        ).decode()


def liq_order(contract: str, size: int, fill_price: str, t_s: int,
              order_price: str | None = None) -> dict[str, Any]:
    """One ``liq_orders`` row as the public endpoint gives it (ccxt's sample): ``size`` the
    signed position in contracts, ``order_size`` its opposite, ``time`` in seconds."""
    return {"time": t_s, "contract": contract, "size": size, "order_size": -size,
            "order_price": order_price or fill_price, "fill_price": fill_price, "left": 0}


class GateSim(VenueSim):
    ws_paths = (WS_PATH,)
    oi_paths = (OI_PATH,)

    def __init__(self) -> None:
        super().__init__()
        #: Every subscribe request received (parsed), across connections.
        self.subscribes: list[dict[str, Any]] = []
        self.oi_bodies[OI_PATH] = oi_body(*DEFAULT_TICKERS)
        #: ``liq_orders`` rows (``liq_order``), any order: served newest first, at most
        #: ``limit`` of them, ``from``/``to`` ignored (as measured on the venue).
        #: ``history_requests`` (base): the query of each request.
        self.liq_orders: list[dict[str, Any]] = []

    def rest_routes(self) -> dict[str, Any]:
        return {"/api/v4/futures/usdt/contracts": self._contracts, HISTORY_PATH: self._history}

    async def _history(self, request: web.Request) -> str:
        self.history_requests.append(dict(request.query))
        await self.history_faults(TOO_MANY)
        rows = sorted(self.liq_orders, key=lambda r: r["time"], reverse=True)
        return orjson.dumps(rows[:int(request.query.get("limit", "100"))]).decode()

    async def _contracts(self, request: web.Request) -> str:
        return contracts_body()

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = orjson.loads(msg)
        if req.get("channel") == "futures.ping":
            if self.answer_pings:
                await ws.send(pong())
            return
        if req.get("event") != "subscribe":
            return
        self.subscribes.append(req)
        now = time.time()
        if self.fail_subscribe or req.get("channel") != CHANNEL:
            await ws.send(orjson.dumps({**DOC_ERROR, "channel": req.get("channel"),
                                        "time": int(now)}).decode())
            return
        await ws.send(orjson.dumps({**DOC_ACK, "payload": req.get("payload"), "time": int(now),
                                    "time_ms": int(now * 1000)}).decode())


async def _demo(sim: GateSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(liquidations(item("BTC_USDT", 500 if i % 3 else -500, "60000", now)))


if __name__ == "__main__":  # pragma: no cover
    run_demo(GateSim, _demo)
