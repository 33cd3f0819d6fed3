"""Binance COIN-M simulator: serves ``/ws/!forceOrder@arr`` (dstream), answers
``LIST_SUBSCRIPTIONS`` and serves ``/dapi/v1/exchangeInfo`` and the open-interest poll
(``/dapi/v1/premiumIndex``, ``/dapi/v1/openInterest`` per symbol; ``oi_bodies`` built by
``premium_body`` and ``oi_body``). Like the real dstream feed it can
also carry USD-M orders (``push`` any frame). Run standalone for a demo:
``python -m liqstress.streams.sims.binance_coinm``."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/ws/!forceOrder@arr"

# The Binance doc example, verbatim (COIN-M Liquidation Order Streams).
DOC_FRAME = {
    "e": "forceOrder", "E": 1591154240950,
    "o": {"s": "BTCUSD_200925", "ps": "BTCUSD", "S": "SELL", "o": "LIMIT", "f": "IOC",
          "q": "1", "p": "9425.5", "ap": "9496.5", "X": "FILLED", "l": "1", "z": "1",
          "T": 1591154240949},
}
LIST_SUBSCRIPTIONS_REPLY = {"result": ["!forceOrder@arr"], "id": 1}
ERROR_REPLY = {"error": {"code": 2, "msg": "Invalid request: unknown variant `LIST`"}, "id": 1}


def symbol_info(symbol: str, contract_size: int, contract_type: str = "PERPETUAL",
                delivery: int = 4133404800000, quote: str = "USD",
                margin: str | None = None) -> dict[str, Any]:
    """One ``symbols[]`` entry of ``/dapi/v1/exchangeInfo`` (shape of the Binance doc example)."""
    pair = symbol.split("_")[0]
    base = pair[: -len(quote)] if pair.endswith(quote) else pair
    return {
        "filters": [{"filterType": "PRICE_FILTER", "maxPrice": "4520958", "minPrice": "1000",
                     "tickSize": "0.1"}],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        "liquidationFee": "0.010000", "marketTakeBound": "0.30",
        "symbol": symbol, "pair": pair, "contractType": contract_type,
        "deliveryDate": delivery, "onboardDate": 1597042800000, "contractStatus": "TRADING",
        "contractSize": contract_size, "quoteAsset": quote, "baseAsset": base,
        "marginAsset": margin or base, "pricePrecision": 1, "quantityPrecision": 0,
        "baseAssetPrecision": 8, "quotePrecision": 8, "equalQtyPrecision": 4,
        "triggerProtect": "0.0500", "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "underlyingType": "COIN", "underlyingSubType": [],
    }


SYMBOLS: list[dict[str, Any]] = [
    symbol_info("BTCUSD_PERP", 100),
    symbol_info("BTCUSD_261225", 100, "CURRENT_QUARTER", 1798185600000),
    symbol_info("ETHUSD_PERP", 10),
    symbol_info("SOLUSD_PERP", 10),
]


def exchange_info_body(symbols: list[dict[str, Any]] | None = None) -> str:
    return orjson.dumps({
        "exchangeFilters": [],
        "rateLimits": [{"interval": "MINUTE", "intervalNum": 1, "limit": 2400,
                        "rateLimitType": "REQUEST_WEIGHT"}],
        "serverTime": 1789670000000,
        "symbols": SYMBOLS if symbols is None else symbols,
        "timezone": "UTC",
    }).decode()


def force_order(symbol: str, order_side: str, contracts: str, price: str, t_ms: int,
                avg: str | None = None, filled: str | None = None) -> str:
    """A dstream ``forceOrder`` frame; ``contracts`` (q/z) are contracts, not coins."""
    pair = symbol.split("_")[0]
    return orjson.dumps({
        "e": "forceOrder", "E": t_ms + 900,
        "o": {"s": symbol, "ps": pair, "S": order_side, "o": "LIMIT", "f": "IOC",
              "q": contracts, "p": price, "ap": avg or price, "X": "FILLED",
              "l": filled or contracts, "z": filled or contracts, "T": t_ms},
    }).decode()


PREMIUM_PATH = "/dapi/v1/premiumIndex"
OI_PATH = "/dapi/v1/openInterest"
#: The sim's default marks and open interest (contracts) per perpetual of ``SYMBOLS``.
OI_DEFAULTS = {"BTCUSD_PERP": ("60000.0", "500000"), "ETHUSD_PERP": ("3000.0", "2000000"),
               "SOLUSD_PERP": ("150.0", "400000")}


def premium_body(marks: dict[str, str] | None = None, t_ms: int | None = None,
                 rate: str = "0.00010000") -> str:
    """An all-symbol ``/dapi/v1/premiumIndex`` body (shape of the Binance doc example):
    symbol -> mark; delivery symbols (not ``_PERP``) get ``""`` funding, as Binance sends."""
    marks = {s: m for s, (m, _) in OI_DEFAULTS.items()} if marks is None else marks
    t = int(time.time() * 1000) if t_ms is None else t_ms
    perp = lambda s: s.endswith("_PERP")  # noqa: E731
    return orjson.dumps([{"symbol": s, "pair": s.split("_")[0], "markPrice": m, "indexPrice": m,
                          "estimatedSettlePrice": m,
                          "lastFundingRate": rate if perp(s) else "",
                          "interestRate": "0.00010000" if perp(s) else "",
                          "nextFundingTime": t - t % 28_800_000 + 28_800_000 if perp(s) else 0,
                          "time": t} for s, m in marks.items()]).decode()


def oi_body(symbol: str, contracts: str, t_ms: int | None = None) -> str:
    """A ``/dapi/v1/openInterest`` body (contracts)."""
    t = int(time.time() * 1000) if t_ms is None else t_ms
    return orjson.dumps({"symbol": symbol, "pair": symbol.split("_")[0],
                         "openInterest": contracts,
                         "contractType": "PERPETUAL" if symbol.endswith("_PERP")
                         else "CURRENT_QUARTER", "time": t}).decode()


class BinanceCoinmSim(VenueSim):
    ws_paths = (WS_PATH,)
    oi_paths = (PREMIUM_PATH, OI_PATH)

    def __init__(self) -> None:
        super().__init__()
        self.symbols: list[dict[str, Any]] = list(SYMBOLS)
        now = int(time.time() * 1000)
        self.oi_bodies[PREMIUM_PATH] = premium_body(t_ms=now)
        for symbol, (_, contracts) in OI_DEFAULTS.items():
            self.oi_bodies[f"{OI_PATH}?symbol={symbol}"] = oi_body(symbol, contracts, now)

    def rest_routes(self) -> dict[str, Any]:
        return {"/dapi/v1/exchangeInfo": self._exchange_info}

    async def _exchange_info(self, request: web.Request) -> str:
        return exchange_info_body(self.symbols)

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = orjson.loads(msg)
        if req.get("method") == "LIST_SUBSCRIPTIONS" and self.answer_pings:
            await ws.send(orjson.dumps({"result": ["!forceOrder@arr"],
                                        "id": req.get("id")}).decode())


async def _demo(sim: BinanceCoinmSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(force_order("BTCUSD_PERP", "SELL" if i % 3 else "BUY", "12", "60000", now))


if __name__ == "__main__":  # pragma: no cover
    run_demo(BinanceCoinmSim, _demo)
