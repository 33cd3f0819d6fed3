"""dYdX v4 indexer simulator: ``/v4/ws`` speaking the socks protocol (``connected`` greeting,
``subscribed`` with a snapshot of recent trades, ``channel_data`` only for subscribed markets,
``unsubscribed`` replies, silent ``ping``, error messages, the 32-per-connection ``v4_trades``
limit, and protocol-level heartbeats: a ping control frame every ``heartbeat_every`` s, closing
the connection without a pong within ``heartbeat_timeout``), plus REST ``/v4/perpetualMarkets``
(the metadata; with a query, e.g. ``?limit=1000``, the open-interest poll, answered from
``oi_bodies`` when a body is set for that path and query, built by ``oi_body``), and the trade
history ``/v4/trades/perpetualMarket/{ticker}`` (pages, a 429 or a slow answer on demand).
Run standalone for a demo: ``python -m liqstress.streams.sims.dydx``."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import websockets
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/v4/ws"
TRADES_LIMIT = 32

# The dYdX doc example (indexer websocket docs, v4_trades channel_data), verbatim except for the
# elided further trades.
DOC_FRAME = {
    "type": "channel_data", "connection_id": "5a2f5e2c-13e5-4d42-9b96-d7dc5fa9a0d8",
    "message_id": 4, "id": "BTC-USD", "channel": "v4_trades", "version": "1.1.0",
    "contents": {"trades": [
        {"id": "8ee6d90d-272d-5edd-bf0f-2e4d6ae3d3b7", "size": "0.000100431", "price": "27839",
         "side": "BUY", "createdAt": "2023-04-04T00:29:19.353Z", "type": "LIQUIDATED"},
    ]},
}
# Live captures (ai-rates, 2026-09-17/18), as quoted in exchanges.md §2.11 and liqdydx.go.
LIVE_SELL = {"id": "064e89330000000200000002", "side": "SELL", "size": "0.0004", "price": "75974",
             "type": "LIQUIDATED", "createdAt": "2026-09-17T13:39:47.542Z",
             "createdAtHeight": "105810227"}
LIVE_BUY = {"id": "064dd4bd0000000200000002", "side": "BUY", "size": "5", "price": "99.92",
            "type": "LIQUIDATED", "createdAt": "2026-09-17T05:00:57.925Z",
            "createdAtHeight": "105764029"}
CONNECTED = {"type": "connected", "connection_id": "004a1efa-21bb-4b19-a2e9-a8ffadd6dc53",
             "message_id": 0}


def market(ticker: str, clob: int, status: str = "ACTIVE") -> dict[str, Any]:
    """A ``/v4/perpetualMarkets`` entry (fields as the indexer returns them)."""
    return {"clobPairId": str(clob), "ticker": ticker, "status": status, "oraclePrice": "100",
            "priceChange24H": "0", "volume24H": "0", "trades24H": 0, "nextFundingRate": "0",
            "initialMarginFraction": "0.05", "maintenanceMarginFraction": "0.03",
            "openInterest": "0", "atomicResolution": -10, "quantumConversionExponent": -9,
            "tickSize": "1", "stepSize": "0.0001", "stepBaseQuantums": 1000000,
            "subticksPerTick": 100000, "marketType": "CROSS", "openInterestLowerCap": "0",
            "openInterestUpperCap": "0", "baseOpenInterest": "0", "defaultFundingRate1H": "0"}


#: 40 ACTIVE markets (clobPairId 0..39: two connections) and one that is settled.
MARKETS: list[dict[str, Any]] = (
    [market("BTC-USD", 0), market("ETH-USD", 1), market("SOL-USD", 2)]
    + [market(f"M{i:02d}-USD", i) for i in range(3, 40)]
    + [market("LUNA-USD", 41, status="FINAL_SETTLEMENT")])


def markets_body(markets: list[dict[str, Any]]) -> str:
    return orjson.dumps({"markets": {m["ticker"]: m for m in markets}}).decode()


#: ``oi_bodies`` key of the open-interest poll (the listing with the venue module's query).
OI_KEY = "/v4/perpetualMarkets?limit=1000"


def oi_body(rows: dict[str, tuple[str, str, str]], settled: tuple[str, ...] = ()) -> str:
    """The listing as the OI poll reads it: ``rows`` maps a ticker to (openInterest coins,
    oraclePrice, nextFundingRate per hour); ``settled`` tickers are FINAL_SETTLEMENT."""
    markets = []
    for i, (ticker, (oi, px, rate)) in enumerate(rows.items()):
        markets.append({**market(ticker, i), "openInterest": oi, "baseOpenInterest": oi,
                        "oraclePrice": px, "nextFundingRate": rate})
    markets += [market(t, 100 + i, status="FINAL_SETTLEMENT") for i, t in enumerate(settled)]
    return markets_body(markets)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def trade(trade_id: str, side: str, size: str, price: str, t_ms: int,
          kind: str = "LIQUIDATED") -> dict[str, Any]:
    return {"id": trade_id, "side": side, "size": size, "price": price, "type": kind,
            "createdAt": iso(t_ms), "createdAtHeight": str(100_000_000 + t_ms // 1000 % 1_000_000)}


def channel_data(ticker: str, *trades: dict[str, Any], message_id: int = 5,
                 connection_id: str = "5a2f5e2c-13e5-4d42-9b96-d7dc5fa9a0d8") -> str:
    return orjson.dumps({"type": "channel_data", "connection_id": connection_id,
                         "message_id": message_id, "id": ticker, "channel": "v4_trades",
                         "version": "2.1.0", "contents": {"trades": list(trades)}}).decode()


def batch_data(ticker: str, *batches: list[dict[str, Any]], message_id: int = 6) -> str:
    return orjson.dumps({"type": "channel_batch_data", "connection_id": "5a2f5e2c",
                         "message_id": message_id, "id": ticker, "channel": "v4_trades",
                         "version": "2.1.0",
                         "contents": [{"trades": b} for b in batches]}).decode()


def subscribed(ticker: str, history: list[dict[str, Any]], message_id: int = 1,
               connection_id: str = "5a2f5e2c-13e5-4d42-9b96-d7dc5fa9a0d8") -> str:
    return orjson.dumps({"type": "subscribed", "connection_id": connection_id,
                         "message_id": message_id, "channel": "v4_trades", "id": ticker,
                         "contents": {"trades": history}}).decode()


def error(message: str, message_id: int = 1, channel: str | None = None,
          ticker: str | None = None) -> str:
    body: dict[str, Any] = {"type": "error", "message": message,
                            "connection_id": "5a2f5e2c", "message_id": message_id}
    if channel:
        body["channel"] = channel
    if ticker:
        body["id"] = ticker
    return orjson.dumps(body).decode()


#: The subscribe snapshot: recent trades including liquidations from hours ago.
HISTORY_T = 1_789_600_000_000


def history(ticker: str) -> list[dict[str, Any]]:
    return [trade(f"{ticker}-h1", "SELL", "1", "100", HISTORY_T),
            trade(f"{ticker}-h2", "BUY", "2", "101", HISTORY_T + 1000, kind="LIMIT"),
            trade(f"{ticker}-h3", "BUY", "0.5", "99", HISTORY_T + 2000)]


class DydxSim(VenueSim):
    ws_paths = (WS_PATH,)
    #: Served by ``_markets`` (the metadata route has the same path).
    oi_paths = ("/v4/perpetualMarkets",)

    def __init__(self, markets: list[dict[str, Any]] | None = None,
                 heartbeat_every: float = 30.0, heartbeat_timeout: float = 10.0) -> None:
        super().__init__()
        self.markets = list(MARKETS if markets is None else markets)
        self.oi_bodies[OI_KEY] = oi_body({"BTC-USD": ("50.5", "60000", "0.00001"),
                                          "ETH-USD": ("800", "3000", "-0.0000025")},
                                         settled=("LUNA-USD",))
        self.heartbeat_every = heartbeat_every
        self.heartbeat_timeout = heartbeat_timeout
        self.subscribed: list[str] = []  # every market subscribed, over every connection
        self.protocol_pongs = 0
        self.heartbeat_closes = 0
        self._subs: dict[Any, list[str]] = {}
        self._ids: dict[Any, tuple[str, int]] = {}
        #: The trade history per market (``/v4/trades/perpetualMarket/{ticker}``), any order:
        #: served newest first, at most ``history_page`` rows a page (the indexer's cap),
        #: paged with ``createdBeforeOrAtHeight``.
        self.trade_history: dict[str, list[dict[str, Any]]] = {}
        self.history_page = 1000
        # ``history_requests`` (base): (ticker, createdBeforeOrAtHeight or None) per request.

    def rest_routes(self) -> dict[str, Any]:
        return {"/v4/perpetualMarkets": self._markets,
                "/v4/trades/perpetualMarket/{ticker}": self._trades}

    async def _trades(self, request: web.Request) -> str:
        ticker = request.match_info["ticker"]
        height = request.query.get("createdBeforeOrAtHeight")
        self.history_requests.append((ticker, height))
        await self.history_faults('{"errors":[{"msg":"Too many requests"}]}')
        rows = sorted(self.trade_history.get(ticker, []),
                      key=lambda t: (int(t["createdAtHeight"]), t["createdAt"]), reverse=True)
        if height is not None:
            rows = [t for t in rows if int(t["createdAtHeight"]) <= int(height)]
        limit = min(int(request.query.get("limit", "1000")), self.history_page)
        return orjson.dumps({"trades": rows[:limit]}).decode()

    async def _markets(self, request: web.Request) -> str:
        if request.query_string and str(request.rel_url) in self.oi_bodies:
            return self.oi_bodies[str(request.rel_url)]
        return markets_body(self.markets)

    def subscriptions(self) -> list[list[str]]:
        """Markets subscribed on each open connection."""
        return [list(s) for ws, s in self._subs.items() if ws in self.clients]

    def _next(self, ws: Any) -> tuple[str, int]:
        conn_id, n = self._ids[ws]
        self._ids[ws] = (conn_id, n + 1)
        return conn_id, n + 1

    async def _send(self, ws: Any, text: str) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(text)

    async def on_connect(self, ws: Any, path: str) -> None:
        conn_id = str(uuid.uuid4())
        self._ids[ws] = (conn_id, 0)
        self._subs[ws] = []
        await self._send(ws, orjson.dumps({**CONNECTED, "connection_id": conn_id}).decode())
        self.background(self._heartbeat(ws))

    async def _heartbeat(self, ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while ws.close_code is None:
                await asyncio.sleep(self.heartbeat_every)
                waiter = await ws.ping()
                try:
                    await asyncio.wait_for(waiter, self.heartbeat_timeout)
                except TimeoutError:
                    self.heartbeat_closes += 1
                    await ws.close(code=4000, reason="Heartbeat timeout")
                    return
                self.protocol_pongs += 1

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = orjson.loads(msg)
        kind, channel, ticker = req.get("type"), req.get("channel"), req.get("id")
        if kind == "ping":
            return  # the current socks server accepts pings silently
        if kind not in ("subscribe", "unsubscribe"):
            await self._send(ws, error(f"Invalid message type: {kind}"))
            return
        if channel != "v4_trades" or not isinstance(ticker, str):
            await self._send(ws, error(f"Invalid channel: {channel}"))
            return
        conn_id, n = self._next(ws)
        subs = self._subs[ws]
        if kind == "unsubscribe":
            if ticker in subs:
                subs.remove(ticker)
            if self.answer_pings:
                await self._send(ws, orjson.dumps({
                    "type": "unsubscribed", "connection_id": conn_id, "message_id": n,
                    "channel": channel, "id": ticker}).decode())
            return
        active = {m["ticker"] for m in self.markets}
        if self.fail_subscribe or ticker not in active:
            await self._send(ws, error(f"Invalid subscription id for channel: ({channel}-{ticker})",
                                       n))
        elif len(subs) >= TRADES_LIMIT:
            await self._send(ws, error(
                f"Per-connection subscription limit reached for {channel} (limit={TRADES_LIMIT}).", n))
        elif ticker in subs:
            await self._send(ws, error(
                f"Invalid subscribe message: already subscribed ({channel}-{ticker})", n,
                channel, ticker))
        else:
            subs.append(ticker)
            self.subscribed.append(ticker)
            await self._send(ws, subscribed(ticker, history(ticker), n, conn_id))

    async def push_trades(self, ticker: str, *trades: dict[str, Any]) -> None:
        """``channel_data`` to every connection subscribed to ``ticker``."""
        for ws, subs in list(self._subs.items()):
            if ticker in subs and ws in self.clients:
                conn_id, n = self._next(ws)
                await self._send(ws, channel_data(ticker, *trades, message_id=n,
                                                  connection_id=conn_id))


async def _demo(sim: DydxSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push_trades("BTC-USD", trade(f"demo-{i}", "SELL" if i % 3 else "BUY", "0.01",
                                           "60000", now))


if __name__ == "__main__":  # pragma: no cover
    run_demo(DydxSim, _demo)
