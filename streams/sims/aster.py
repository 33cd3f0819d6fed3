"""Aster simulator. Serves ``/ws``, where a ``SUBSCRIBE`` is acked ``{"result": null, "id":
...}`` (or refused with a Binance-style error while ``fail_subscribe``), answers
``LIST_SUBSCRIPTIONS`` with the connection's streams (unless ``answer_pings`` is off), serves
``/fapi/v1/exchangeInfo`` (``symbols`` editable) and pushes forceOrder frames to subscribed
connections. The frames come from the Binance simulator's builders (``force_order``,
``DOC_FRAME``): Aster mirrors Binance's payload, only its subscription differs (the Binance
simulator names streams in the URL and answers LIST_SUBSCRIPTIONS from the path). No
open-interest poll. Run standalone for a demo: ``python -m liqstress.streams.sims.aster``."""

from __future__ import annotations

import weakref
from typing import Any

import orjson
import websockets
from aiohttp import web

from . import binance as binance_sim
from .base import VenueSim, run_demo

WS_PATH = "/ws"
EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"
force_order = binance_sim.force_order

#: A real Aster frame (not a doc example): belyjelli/ai-rates
#: ``apps/collector-go/internal/stream/liquidations_test.go`` @ 727d489 (``asterLiqSell``,
#: "CAPTURED LIVE", a !forceOrder@arr probe on fstream.asterdex.com), byte for byte.
CAPTURED_FRAME = ('{"e":"forceOrder","E":1789672621589,"o":{"s":"PAIRUSDT","S":"SELL",'
                  '"o":"LIMIT","f":"IOC","q":"28448","p":"0.0040681","ap":"0.0044461",'
                  '"X":"FILLED","l":"12417","z":"28448","T":1789672621550}}')
#: The Aster doc example (asterdex/api-docs V3 "All Market Liquidation Order Streams"), the
#: same values as Binance's, without the doc's trailing comma after "T" (invalid JSON).
DOC_FRAME = binance_sim.DOC_FRAME
#: Replies as the docs give them ("Live Subscribing/Unsubscribing to streams").
DOC_SUBSCRIBE_ACK = {"result": None, "id": 1}
DOC_LIST_SUBSCRIPTIONS_REPLY = {"result": ["btcusdt@aggTrade"], "id": 3}
#: A refusal in the docs' bare shape ("Error Messages") and in the shape Binance's servers,
#: which Aster's mirror, send it on the wire (``{"error": {...}, "id": ...}``).
DOC_ERROR = {"code": 2, "msg": "Invalid request: missing field `method` at line 1 column 73"}


def error_reply(req_id: Any, msg: str) -> str:
    return orjson.dumps({"error": {"code": 2, "msg": msg}, "id": req_id}).decode()


def symbol_info(symbol: str, base: str, quote: str = "USDT", margin: str | None = None,
                status: str = "TRADING", contract_type: str = "PERPETUAL") -> dict[str, Any]:
    """One ``symbols[]`` entry of ``/fapi/v1/exchangeInfo`` (the shape of the doc example)."""
    return {
        "symbol": symbol, "pair": symbol, "contractType": contract_type,
        "deliveryDate": 4133404800000, "onboardDate": 1598252400000, "status": status,
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000", "baseAsset": base,
        "quoteAsset": quote, "marginAsset": margin or quote, "pricePrecision": 5,
        "quantityPrecision": 0, "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "underlyingSubType": ["STORAGE"], "settlePlan": 0,
        "triggerProtect": "0.15",
        "filters": [{"filterType": "PRICE_FILTER", "maxPrice": "300", "minPrice": "0.0001",
                     "tickSize": "0.0001"},
                    {"filterType": "LOT_SIZE", "maxQty": "10000000", "minQty": "1",
                     "stepSize": "1"}],
        "OrderType": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                      "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "HIDDEN"],
        "liquidationFee": "0.010000", "marketTakeBound": "0.30",
    }


SYMBOLS: list[dict[str, Any]] = [
    symbol_info("BTCUSDT", "BTC"),
    symbol_info("ETHUSDT", "ETH"),
    symbol_info("PAIRUSDT", "PAIR"),
    # Gold quoted and margined in USD1 (World Liberty's USD stablecoin).
    symbol_info("XAUUSD1", "XAU", "USD1"),
    symbol_info("TONUSDT", "TON", status="SETTLING"),
]


def exchange_info_body(symbols: list[dict[str, Any]] | None = None) -> str:
    return orjson.dumps({
        "timezone": "UTC", "serverTime": 1789670000000, "futuresType": "U_MARGINED",
        "rateLimits": [{"interval": "MINUTE", "intervalNum": 1, "limit": 2400,
                        "rateLimitType": "REQUEST_WEIGHT"}],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": 0}],
        "symbols": SYMBOLS if symbols is None else symbols,
    }).decode()


class AsterSim(VenueSim):
    ws_paths = (WS_PATH,)

    def __init__(self) -> None:
        super().__init__()
        self.symbols: list[dict[str, Any]] = list(SYMBOLS)
        #: Streams subscribed, per connection (forgotten with the connection).
        self.streams: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()

    def rest_routes(self) -> dict[str, Any]:
        return {EXCHANGE_INFO_PATH: self._exchange_info}

    async def _exchange_info(self, request: web.Request) -> str:
        return exchange_info_body(self.symbols)

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = orjson.loads(msg)
        method, req_id = req.get("method"), req.get("id")
        if method == "SUBSCRIBE":
            if self.fail_subscribe:
                await ws.send(error_reply(req_id, "Invalid request: too many parameters"))
                return
            self.streams.setdefault(ws, []).extend(req.get("params", []))
            await ws.send(orjson.dumps({"result": None, "id": req_id}).decode())
        elif method == "LIST_SUBSCRIPTIONS":
            if self.answer_pings:
                await ws.send(orjson.dumps({"result": self.streams.get(ws, []),
                                            "id": req_id}).decode())
        else:
            await ws.send(error_reply(req_id, f"Invalid request: unknown variant `{method}`"))

    async def push(self, frame: str | bytes, path: str | None = None) -> None:
        # Only subscribed connections get frames, as on the venue.
        for ws in list(self.clients):
            if self.streams.get(ws) and (path is None or ws.request.path == path):
                try:
                    await ws.send(frame)
                except websockets.ConnectionClosed:
                    pass


async def _demo(sim: AsterSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(force_order("BTCUSDT", "SELL" if i % 3 else "BUY", "0.5", "60000", now))


if __name__ == "__main__":  # pragma: no cover
    run_demo(AsterSim, _demo)
