"""Kraken Futures simulator: ``/ws/v1`` (the ``info`` greeting on connect, ``trade`` subscribe
acks followed by a ``trade_snapshot`` per product, the ``heartbeat`` feed: a ``subscribed``
answer then ``{"feed":"heartbeat"}`` beats), REST ``/derivatives/api/v3/instruments`` and the
open-interest listing ``/derivatives/api/v3/tickers`` (``oi_body``; tests replace it in
``oi_bodies`` to move open interest), and the trade history ``/derivatives/api/v3/history``
(the warm start: ``trade_history``, 100 rows a page back by ``lastTime``, a 429 or a slow
answer on demand).
Run standalone for a demo: ``python -m liqstress.streams.sims.kraken_futures``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/ws/v1"
REST_PATH = "/derivatives/api/v3/instruments"
TICKERS_PATH = "/derivatives/api/v3/tickers"

# Kraken Futures doc examples, verbatim (websocket trade feed; heartbeat feed; errors).
DOC_TRADE = {"feed": "trade", "product_id": "PF_XBTUSD",
             "uid": "caa9c653-420b-4c24-a9f1-462a054d86f1", "side": "sell", "type": "fill",
             "seq": 655508, "time": 1612269657781, "qty": 440, "price": 34893}
DOC_SUBSCRIBE = {"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]}
DOC_HEARTBEAT_SUBSCRIBED = {"event": "subscribed", "feed": "heartbeat"}
DOC_HEARTBEAT = {"feed": "heartbeat", "time": 1534262350627}
DOC_ERROR = {"event": "error", "message": "Json Error"}
INFO = {"event": "info", "version": 1}


def _inst(symbol: str, typ: str, contract_size: float = 1, tradeable: bool = True,
          **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "symbol": symbol, "type": typ, "tickSize": 0.5, "contractSize": contract_size,
        "tradeable": tradeable, "impactMidSize": 1, "maxPositionSize": 1000000,
        "openingDate": "2022-01-01T00:00:00.000Z",
        "marginLevels": [{"contracts": 0, "initialMargin": 0.02, "maintenanceMargin": 0.01}],
        "fundingRateCoefficient": 8, "maxRelativeFundingRate": 0.001,
        "contractValueTradePrecision": 4 if typ == "flexible_futures" else 0,
        "postOnly": False, "category": "", "tags": []}
    out.update(extra)
    return out


INSTRUMENTS: list[dict[str, Any]] = [
    _inst("PI_XBTUSD", "futures_inverse", underlying="rr_xbtusd", isin="GB00J62YGL67"),
    _inst("PI_ETHUSD", "futures_inverse", underlying="rr_ethusd"),
    _inst("FI_XBTUSD_261225", "futures_inverse", underlying="rr_xbtusd",
          lastTradingTime="2026-12-25T16:00:00.000Z"),
    _inst("PF_XBTUSD", "flexible_futures", base="BTC", quote="USD", pair="BTC:USD",
          category="Layer 1"),
    _inst("PF_ETHUSD", "flexible_futures"),
    _inst("PF_SOLUSD", "flexible_futures", base="SOL", quote="USD", pair="SOL:USD"),
    _inst("FF_XBTUSD_261225", "flexible_futures", lastTradingTime="2026-12-25T16:00:00.000Z"),
    _inst("PF_OLDUSD", "flexible_futures", tradeable=False),
    {"symbol": "in_xbtusd", "type": "spot index", "tradeable": False},
    {"symbol": "rr_xbtusd", "type": "spot index", "tradeable": False},
]
PRODUCTS = sorted(i["symbol"] for i in INSTRUMENTS
                  if i["tradeable"] and i["symbol"][:2] in ("PF", "PI", "FI", "FF"))


def instruments_body(items: list[dict[str, Any]] | None = None) -> str:
    return orjson.dumps({"result": "success", "instruments": INSTRUMENTS if items is None else items,
                         "serverTime": "2026-09-17T15:33:20.000Z"}).decode()


def trade_msg(product: str, side: str, qty: float, price: float, t_ms: int, uid: str,
              typ: str = "liquidation", seq: int = 1) -> dict[str, Any]:
    return {"feed": "trade", "product_id": product, "uid": uid, "side": side, "type": typ,
            "seq": seq, "time": t_ms, "qty": qty, "price": price}


def trade(product: str, side: str, qty: float, price: float, t_ms: int, uid: str,
          typ: str = "liquidation", seq: int = 1) -> str:
    return orjson.dumps(trade_msg(product, side, qty, price, t_ms, uid, typ, seq)).decode()


def snapshot(product: str, *trades: dict[str, Any]) -> str:
    return orjson.dumps({"feed": "trade_snapshot", "product_id": product,
                         "trades": list(trades)}).decode()


#: What the sim replays after a trade subscribe: recent history with one old liquidation.
def history(product: str, t_ms: int = 1_789_600_000_000) -> str:
    return snapshot(product,
                    trade_msg(product, "buy", 100, 60000, t_ms, f"{product}-h1", "fill", 90),
                    trade_msg(product, "sell", 500, 59900, t_ms - 5000, f"{product}-h2", seq=89))


HISTORY_PATH = "/derivatives/api/v3/history"


def iso(ms: int) -> str:
    """Kraken's REST time: ISO 8601 in UTC with milliseconds (``2019-02-14T09:25:33.920Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def history_row(uid: str, side: str, size: float, price: float, t_ms: int,
                typ: str = "liquidation", trade_id: int = 100) -> dict[str, Any]:
    """One ``/derivatives/api/v3/history`` row, the fields of the support article's example
    plus ``uid`` (ccxt's): ``size`` is the live ``qty`` (contracts), ``side`` the taker."""
    return {"time": iso(t_ms), "trade_id": trade_id, "price": price, "size": size,
            "side": side, "type": typ, "uid": uid}


def row_of(msg: dict[str, Any]) -> dict[str, Any]:
    """The history row of a live ``trade_msg``: the same trade as the REST history shows it."""
    return history_row(msg["uid"], msg["side"], msg["qty"], msg["price"], msg["time"],
                       msg["type"])


def ticker(symbol: str, open_interest: float, mark: float,
           relative_funding: float | None = None) -> dict[str, Any]:
    """One ``/tickers`` entry (fields of the captured nautilus_trader body); the absolute
    ``fundingRate`` is derived from the relative one, as Kraken's are (rate x price)."""
    out: dict[str, Any] = {
        "symbol": symbol, "last": mark, "lastTime": "2026-09-17T15:33:00.000000Z",
        "tag": "perpetual" if symbol.count("_") == 1 else "month", "pair": "BTC:USD",
        "markPrice": mark, "bid": mark - 0.5, "bidSize": 100.0, "ask": mark + 0.5,
        "askSize": 100.0, "vol24h": 1000.0, "openInterest": open_interest,
        "suspended": False, "indexPrice": mark, "postOnly": False}
    if relative_funding is not None:
        out["fundingRate"] = relative_funding * mark
        out["relativeFundingRate"] = relative_funding
    return out


def oi_body(tickers: list[dict[str, Any]] | None = None, t_ms: int | None = None) -> str:
    """A ``/derivatives/api/v3/tickers`` body; by default PI_XBTUSD (10M USD contracts), PF_XBTUSD
    (120 BTC) and PF_ETHUSD (3000 ETH) at now."""
    if tickers is None:
        tickers = [ticker("PI_XBTUSD", 10_000_000, 60000.0, 0.00001),
                   ticker("PF_XBTUSD", 120.0, 60000.0, 0.00001),
                   ticker("PF_ETHUSD", 3000.0, 3000.0, -0.000005),
                   {"symbol": "in_xbtusd", "last": 60000.0, "lastTime": "2026-09-17T15:33:00.000Z",
                    "tag": "index"}]
    ms = int(time.time() * 1000) if t_ms is None else t_ms
    return orjson.dumps({"result": "success", "serverTime": iso(ms), "tickers": tickers}).decode()


class KrakenFuturesSim(VenueSim):
    ws_paths = (WS_PATH,)
    oi_paths = (TICKERS_PATH,)

    def __init__(self) -> None:
        super().__init__()
        self.instruments = list(INSTRUMENTS)
        self.send_snapshots = True
        self.heartbeat_every = 0.05
        #: Every trade subscribe message's product list, over all connections.
        self.subscribed: list[list[str]] = []
        self.heartbeat_subscribes = 0
        self._beats: dict[Any, asyncio.Task[None]] = {}  # ws -> its heartbeat feed
        self.oi_bodies[TICKERS_PATH] = oi_body()
        #: Trade history per product (``history_row`` rows), any order: served newest first,
        #: ``history_page`` rows a page, those at or before ``lastTime`` when it is given.
        #: ``history_requests`` (base): (product, lastTime or None) per request.
        self.trade_history: dict[str, list[dict[str, Any]]] = {}
        self.history_page = 100

    def rest_routes(self) -> dict[str, Any]:
        return {REST_PATH: self._instruments, HISTORY_PATH: self._history}

    async def _history(self, request: web.Request) -> str:
        product, last = request.query.get("symbol", ""), request.query.get("lastTime")
        self.history_requests.append((product, last))
        await self.history_faults(orjson.dumps({"result": "error", "error": "apiLimitExceeded",
                                                "serverTime": iso(int(time.time() * 1000))
                                                }).decode())
        # ISO 8601 of one format sorts as its time.
        rows = sorted(self.trade_history.get(product, []), key=lambda r: r["time"],
                      reverse=True)
        if last is not None:
            rows = [r for r in rows if r["time"] <= last]
        return orjson.dumps({"result": "success", "history": rows[:self.history_page],
                             "serverTime": iso(int(time.time() * 1000))}).decode()

    async def _instruments(self, request: web.Request) -> str:
        return instruments_body(self.instruments)

    async def on_connect(self, ws: Any, path: str) -> None:
        await ws.send(orjson.dumps(INFO).decode())

    async def _beat(self, ws: Any) -> None:
        with contextlib.suppress(Exception):
            while ws in self.clients and self.answer_pings:
                await ws.send(orjson.dumps({"feed": "heartbeat",
                                            "time": int(time.time() * 1000)}).decode())
                await asyncio.sleep(self.heartbeat_every)
        self._beats.pop(ws, None)

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        try:
            req = orjson.loads(msg)
        except orjson.JSONDecodeError:
            await ws.send(orjson.dumps(DOC_ERROR).decode())
            return
        if req.get("event") != "subscribe":
            return
        feed = req.get("feed")
        if feed == "heartbeat":
            self.heartbeat_subscribes += 1
            if not self.answer_pings:
                return
            await ws.send(orjson.dumps(DOC_HEARTBEAT_SUBSCRIBED).decode())
            if ws not in self._beats:
                self._beats[ws] = self.background(self._beat(ws))
        elif feed == "trade":
            products = list(req.get("product_ids") or [])
            if self.fail_subscribe:
                await ws.send(orjson.dumps({"event": "subscribed_failed", "feed": "trade",
                                            "product_ids": products}).decode())
                return
            self.subscribed.append(products)
            await ws.send(orjson.dumps({"event": "subscribed", "feed": "trade",
                                        "product_ids": products}).decode())
            if self.send_snapshots:
                for p in products:
                    await ws.send(history(p))
        else:
            await ws.send(orjson.dumps({"event": "error", "message": "Invalid feed"}).decode())


async def _demo(sim: KrakenFuturesSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(trade("PF_XBTUSD", "sell" if i % 3 else "buy", 0.5, 60000, now, f"demo-{i}"))


if __name__ == "__main__":  # pragma: no cover
    run_demo(KrakenFuturesSim, _demo)
