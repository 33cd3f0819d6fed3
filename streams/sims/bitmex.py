"""BitMEX simulator: ``/realtime`` (welcome banner on connect, subscriptions from the URL's
``?subscribe=`` or from ``{"op":"subscribe"}``, a ``partial`` of resting liquidation orders
after each subscribe, text ``ping`` -> ``pong``), ``/api/v1/instrument/active`` and the
open-interest poll ``/api/v1/instrument?filter=..`` (``oi_bodies``; ``oi_body`` builds one). Run
standalone for a demo: ``python -m liqstress.streams.sims.bitmex``."""

from __future__ import annotations

import random
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/realtime"
WS_PATH_SUBSCRIBED = "/realtime?subscribe=liquidation"

WELCOME = {"info": "Welcome to the BitMEX Realtime API.", "version": "2.0.0",
           "timestamp": "2026-09-17T15:33:20.000Z", "docs": "https://www.bitmex.com/app/wsAPI",
           "limit": {"remaining": 39}}
SUBSCRIBE_ACK = {"success": True, "subscribe": "liquidation",
                 "request": {"op": "subscribe", "args": "liquidation"}}
SUBSCRIBE_ERROR = {"status": 400, "error": "Unknown table: liquidations", "meta": {},
                   "request": {"op": "subscribe", "args": ["liquidations"]}}
RATE_LIMITED = {"status": 429, "error": "Rate limit exceeded, retry in 1 seconds.",
                "meta": {"retryAfter": 1}}

# The partial sent on subscribe, verbatim as quoted in exchanges.md §2.7.
DOC_PARTIAL = {"table": "liquidation", "action": "partial", "keys": ["orderID"],
               "types": {"orderID": "guid", "symbol": "symbol", "side": "symbol",
                         "price": "float", "leavesQty": "long"},
               "filter": {}, "data": []}
# Captured insert, verbatim (philipperemy/bitmex-liquidations README): TRXZ19 was an
# XBT-quoted future, long delisted.
DOC_INSERT_TRX = {"table": "liquidation", "action": "insert", "data": [
    {"orderID": "8b4a95db-815a-f93a-c9a2-ffbbabeddbac", "symbol": "TRXZ19", "side": "Buy",
     "price": 2.17e-06, "leavesQty": 5000}]}
# Captured insert commented "Long Liquidation" (same README); the source elides the orderID
# ("03f4bca6-…"), completed here.
DOC_INSERT_XBTUSD = {"table": "liquidation", "action": "insert", "data": [
    {"orderID": "03f4bca6-2c1d-4d5e-8f90-1a2b3c4d5e6f", "symbol": "XBTUSD", "side": "Sell",
     "price": 90927.1, "leavesQty": 876800}]}
# A resting liquidation order as BitMEX support quoted it (BitMEX/api-connectors #241).
SUPPORT_ORDER = {"orderID": "5e589e8e-a46c-5dc4-85e3-982a66951d67", "symbol": "XBTUSD",
                 "side": "Buy", "price": 657.8, "leavesQty": 30000}


def _inst(symbol: str, underlying: str, quote: str, *, typ: str = "FFWCSX",
          inverse: bool = False, quanto: bool = False, multiplier: float,
          settle: str, position: str | None = None, u2p: float | None = None,
          u2s: float | None = None, q2s: float | None = None,
          lot: int = 100, expiry: str | None = None) -> dict[str, Any]:
    """One ``/api/v1/instrument/active`` row (the unit fields as BitMEX sends them)."""
    return {
        "symbol": symbol, "rootSymbol": underlying, "state": "Open", "typ": typ,
        "listing": "2016-05-13T12:00:00.000Z", "front": "2016-05-13T12:00:00.000Z",
        "expiry": expiry, "positionCurrency": underlying if position is None else position,
        "underlying": underlying, "quoteCurrency": quote, "underlyingSymbol": f"{underlying}=",
        "reference": "BMEX", "maxOrderQty": 10000000, "maxPrice": 1000000, "lotSize": lot,
        "tickSize": 0.1, "multiplier": multiplier, "settlCurrency": settle,
        "underlyingToPositionMultiplier": u2p, "underlyingToSettleMultiplier": u2s,
        "quoteToSettleMultiplier": q2s, "isQuanto": quanto, "isInverse": inverse,
        "initMargin": 0.01, "maintMargin": 0.005, "takerFee": 0.0005, "makerFee": 0.0005,
        "hasLiquidity": True, "timestamp": "2026-09-17T15:33:20.000Z",
    }


INSTRUMENTS: list[dict[str, Any]] = [
    # Unit fields of XBTUSD as in nautilus_trader's http_get_instrument_xbtusd.json.
    _inst("XBTUSD", "XBT", "USD", inverse=True, multiplier=-100000000, settle="XBt",
          position="USD", u2s=-100000000),
    _inst("XBTZ26", "XBT", "USD", typ="FFCCSX", inverse=True, multiplier=-100000000,
          settle="XBt", position="USD", u2s=-100000000, expiry="2026-12-25T12:00:00.000Z"),
    # Linear USDT contracts: XBTUSDT 1e-6 XBT, ETHUSDT 1e-5 ETH per contract; LTCUSDT as in
    # the ccxt fetchMarkets sample (multiplier 100, underlyingToPositionMultiplier 10000).
    _inst("XBTUSDT", "XBT", "USDT", multiplier=1, settle="USDt", u2p=1000000, q2s=1000000,
          lot=1000),
    _inst("ETHUSDT", "ETH", "USDT", multiplier=10, settle="USDt", u2p=100000, q2s=1000000,
          lot=1000),
    _inst("LTCUSDT", "LTC", "USDT", multiplier=100, settle="USDt", u2p=10000, q2s=1000000,
          lot=1000),
    # Quanto: pays multiplier x price satoshis; USD would need the XBT price (unpriced).
    _inst("ETHUSD", "ETH", "USD", quanto=True, multiplier=100, settle="XBt", position="",
          lot=1),
    # Inverse but quoted in EUR: not USD (unpriced).
    _inst("XBTEUR", "XBT", "EUR", inverse=True, multiplier=-100000000, settle="XBt",
          position="EUR", u2s=-100000000),
    # Calendar spread (ccxt sample): no position multiplier, positionCurrency USD (unpriced).
    _inst("XBTUSD-XBTU26", "XBT", "USD", typ="FFMCSX", multiplier=1, settle="XBt",
          position="USD", u2s=-100000000, expiry="2026-09-25T12:00:00.000Z"),
]


OI_PATH = "/api/v1/instrument"


def oi_row(symbol: str, open_interest: int, mark_price: float, *,
           open_value: int | None = None, funding_rate: float | None = 0.0001,
           timestamp: str = "2026-09-17T15:33:20.000Z") -> dict[str, Any]:
    """An instrument row of ``INSTRUMENTS`` with the OI fields BitMEX adds (openInterest in
    contracts, openValue in the settlement currency's smallest unit, markPrice, fundingRate per
    ``fundingInterval``); futures (FFCCSX) get no funding."""
    base = next(i for i in INSTRUMENTS if i["symbol"] == symbol)
    future = base["typ"] == "FFCCSX"
    return {**base, "openInterest": open_interest,
            "openValue": open_interest if open_value is None else open_value,
            "markPrice": mark_price, "timestamp": timestamp,
            "fundingRate": None if future else funding_rate,
            "fundingInterval": None if future else "2000-01-01T08:00:00.000Z"}


def oi_body(*rows: dict[str, Any]) -> str:
    return orjson.dumps(list(rows)).decode()


#: Default poll: XBTUSD 600M contracts (USD) at 60 000; XBTUSDT 2e9 contracts (1e-6 XBT each:
#: 2 000 XBT); ETHUSD quanto, openValue 100 x 3 000 x 10 000 contracts satoshis.
DEFAULT_OI = (oi_row("XBTUSD", 600_000_000, 60_000.0, open_value=1_000_000_000_000),
              oi_row("XBTUSDT", 2_000_000_000, 60_010.0),
              oi_row("ETHUSD", 10_000, 3_000.0, open_value=3_000_000_000))


def instruments_body(items: list[dict[str, Any]] | None = None) -> str:
    return orjson.dumps(INSTRUMENTS if items is None else items).decode()


def order(symbol: str, side: str, leaves_qty: int, price: float,
          order_id: str | None = None) -> dict[str, Any]:
    return {"orderID": order_id or str(uuid.uuid4()), "symbol": symbol, "side": side,
            "price": price, "leavesQty": leaves_qty}


def table(action: str, *orders: dict[str, Any]) -> str:
    return orjson.dumps({"table": "liquidation", "action": action, "data": list(orders)}).decode()


def partial(*orders: dict[str, Any]) -> str:
    return orjson.dumps({**DOC_PARTIAL, "data": list(orders)}).decode()


class BitmexSim(VenueSim):
    ws_paths = (WS_PATH_SUBSCRIBED, WS_PATH)
    oi_paths = (OI_PATH,)

    def __init__(self) -> None:
        super().__init__()
        #: Liquidation orders resting in the book: sent in every partial.
        self.resting: list[dict[str, Any]] = [SUPPORT_ORDER]
        self.oi_bodies[OI_PATH] = oi_body(*DEFAULT_OI)

    def rest_routes(self) -> dict[str, Any]:
        return {"/api/v1/instrument/active": self._instruments}

    async def _instruments(self, request: web.Request) -> str:
        return instruments_body()

    async def on_connect(self, ws: Any, path: str) -> None:
        await ws.send(orjson.dumps(WELCOME).decode())
        for arg in parse_qs(urlsplit(path).query).get("subscribe", []):
            for topic in arg.split(","):
                await self._subscribe(ws, topic)

    async def _subscribe(self, ws: Any, topic: str) -> None:
        if self.fail_subscribe or topic.split(":")[0] != "liquidation":
            await ws.send(orjson.dumps({**SUBSCRIBE_ERROR, "error": f"Unknown table: {topic}",
                                        "request": {"op": "subscribe", "args": topic}}).decode())
            return
        await ws.send(orjson.dumps({**SUBSCRIBE_ACK, "subscribe": topic,
                                    "request": {"op": "subscribe", "args": topic}}).decode())
        await ws.send(partial(*self.resting))

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = await self.subscribe_request(ws, msg)
        if req is not None:
            args = req.get("args")
            for topic in args if isinstance(args, list) else [args]:
                await self._subscribe(ws, str(topic))


async def _demo(sim: BitmexSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    o = order("XBTUSD", random.choice(["Buy", "Sell"]), random.randrange(100, 100000, 100), 60000.0)
    await sim.push(table("insert", o))
    await sim.push(table("update", {**o, "leavesQty": o["leavesQty"] // 2}))
    await sim.push(table("delete", {"orderID": o["orderID"], "symbol": "XBTUSD"}))


if __name__ == "__main__":  # pragma: no cover
    run_demo(BitmexSim, _demo)
