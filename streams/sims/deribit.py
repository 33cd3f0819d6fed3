"""Deribit simulator: ``/ws/api/v2`` speaking JSON-RPC 2.0: ``public/set_heartbeat`` (then
``test_request``s the client must answer with ``public/test``, or the connection is closed, as
Deribit does), ``public/subscribe`` (the result lists the accepted channels) and
``public/test`` (our ping; the result is the pong), and the open-interest listing
``/api/v2/public/get_book_summary_by_currency`` (one body per ``?currency=..&kind=future``
query, from ``oi_bodies``; ``oi_body`` builds one). Run standalone for a demo:
``python -m liqstress.streams.sims.deribit``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/ws/api/v2"
VERSION = "1.2.26"
OI_PATH = "/api/v2/public/get_book_summary_by_currency"
OI_CURRENCIES = ("BTC", "ETH", "USDC", "USDT")

# The Deribit doc example of the trades.(kind).(currency).(interval) family, verbatim: the
# ``data`` of a user.trades.(kind).(currency).100ms notification (public trades carry the same
# trade fields, without the private ones). No ``liquidation`` key: an ordinary trade.
DOC_TRADE: dict[str, Any] = {
    "trade_seq": 74405, "trade_id": "48079262", "timestamp": 1590484255886,
    "tick_direction": 2, "state": "filled", "reduce_only": False, "price": 8947,
    "post_only": False, "order_type": "limit", "order_id": "4008978075", "matching_id": None,
    "mark_price": 8970.03, "liquidity": "T", "instrument_name": "BTC-25SEP20",
    "index_price": 8953.53, "fee_currency": "BTC", "fee": 0.00049961, "direction": "sell",
    "amount": 8940,
}
DOC_FRAME = {"jsonrpc": "2.0", "method": "subscription",
             "params": {"channel": "trades.future.BTC.100ms", "data": [DOC_TRADE]}}
#: The same documented trade as a liquidation print (the documented optional field added).
DOC_LIQUIDATION = {"jsonrpc": "2.0", "method": "subscription", "params": {
    "channel": "trades.future.BTC.100ms", "data": [{**DOC_TRADE, "liquidation": "M"}]}}
#: Documented server heartbeat frames (``public/set_heartbeat``).
TEST_REQUEST = {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
HEARTBEAT = {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "heartbeat"}}
DOC_ERROR = {"jsonrpc": "2.0", "id": 2, "error": {
    "message": "Invalid params", "data": {"reason": "wrong format", "param": "channels"},
    "code": -32602}, "testnet": False, "usIn": 1789670000000000, "usOut": 1789670000000200,
    "usDiff": 200}


def response(req_id: Any, result: Any, t_us: int = 1_789_670_000_000_000) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "id": req_id, "result": result, "usIn": t_us,
                         "usOut": t_us + 150, "usDiff": 150, "testnet": False}).decode()


def trade(instrument: str, direction: str, amount: float, price: float, t_ms: int,
          trade_id: str, liquidation: str | None = None, seq: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trade_seq": seq, "trade_id": trade_id, "timestamp": t_ms, "tick_direction": 1,
        "price": price, "mark_price": price, "instrument_name": instrument,
        "index_price": price, "direction": direction, "amount": amount,
        "contracts": amount / 10 if "_" not in instrument else amount}
    if liquidation is not None:
        out["liquidation"] = liquidation
    return out


def trades(channel: str, *items: dict[str, Any]) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "method": "subscription",
                         "params": {"channel": channel, "data": list(items)}}).decode()


def summary(instrument: str, open_interest: float, mark_price: float, t_ms: int,
            funding_8h: float | None = None) -> dict[str, Any]:
    """One ``get_book_summary_by_currency`` row (the fields of a captured BTC-PERPETUAL row):
    ``open_interest`` USD for inverse names, base coin for ``_USDC``/``_USDT`` ones."""
    base, _, rest = instrument.partition("_")
    quote = rest.partition("-")[0] if rest else "USD"
    out: dict[str, Any] = {
        "volume_usd": 0.0, "volume": 0.0, "quote_currency": quote, "price_change": 0.0,
        "open_interest": open_interest, "mid_price": mark_price, "mark_price": mark_price,
        "low": mark_price, "last": mark_price, "instrument_name": instrument,
        "high": mark_price, "estimated_delivery_price": mark_price,
        "creation_timestamp": t_ms, "bid_price": mark_price, "ask_price": mark_price,
        "base_currency": base.partition("-")[0]}
    if funding_8h is not None:
        out["funding_8h"] = funding_8h
        out["current_funding"] = 0.0
    return out


def oi_body(*rows: dict[str, Any], t_us: int = 1_789_670_000_000_000) -> str:
    """A ``get_book_summary_by_currency`` reply listing ``rows``."""
    return orjson.dumps({"jsonrpc": "2.0", "result": list(rows), "usIn": t_us,
                         "usOut": t_us + 150, "usDiff": 150, "testnet": False}).decode()


def default_oi_bodies(t_ms: int = 1_789_670_000_000) -> dict[str, str]:
    """One body per currency the venue polls: inverse BTC/ETH perpetuals, linear USDC ones."""
    rows = {
        "BTC": [summary("BTC-PERPETUAL", 600_000_000, 60_000.0, t_ms, funding_8h=0.0001)],
        "ETH": [summary("ETH-PERPETUAL", 150_000_000, 3_000.0, t_ms, funding_8h=-0.00005)],
        "USDC": [summary("SOL_USDC-PERPETUAL", 250_000, 150.0, t_ms, funding_8h=0.0002)],
        "USDT": [],
    }
    return {f"{OI_PATH}?currency={c}&kind=future": oi_body(*rows[c]) for c in OI_CURRENCIES}


HISTORY_PATH = "/api/v2/public/get_last_trades_by_currency_and_time"


class DeribitSim(VenueSim):
    ws_paths = (WS_PATH,)
    oi_paths = (OI_PATH,)

    def __init__(self) -> None:
        super().__init__()
        #: Channels the sim rejects (left out of the subscribe result, as Deribit does).
        self.reject_channels: set[str] = set()
        #: Seconds between test_requests; None: only when a test calls ``send_test_request``.
        self.test_request_every: float | None = None
        #: Close a connection whose test_request went unanswered for this long (Deribit does).
        self.test_request_grace = 1.0
        self.subscribed: list[list[str]] = []
        self.heartbeat_intervals: list[Any] = []
        self.test_requests_sent = 0
        self.test_replies = 0
        self._pending: dict[Any, float] = {}  # ws -> time of the unanswered test_request
        self.oi_bodies.update(default_oi_bodies())
        #: Trade history per currency (``get_last_trades_by_currency_and_time``), any order:
        #: served oldest first (``sorting=asc``) from ``start_timestamp`` to
        #: ``end_timestamp``, ``count`` rows a page at most (and ``history_page``), with
        #: ``has_more``. ``history_requests`` (base): (currency, start_timestamp).
        self.trade_history: dict[str, list[dict[str, Any]]] = {}
        self.history_page = 1000

    def rest_routes(self) -> dict[str, Any]:
        return {HISTORY_PATH: self._history}

    async def _history(self, request: web.Request) -> str:
        q = request.query
        currency, start = q.get("currency", ""), int(q.get("start_timestamp", "0"))
        end = int(q.get("end_timestamp", str(2**62)))
        self.history_requests.append((currency, start))
        await self.history_faults(orjson.dumps({"jsonrpc": "2.0", "error": {
            "code": 10028, "message": "too_many_requests"}}).decode())
        rows = sorted((t for t in self.trade_history.get(currency, [])
                       if start <= t["timestamp"] <= end),
                      key=lambda t: (t["timestamp"], t["trade_seq"]))
        limit = min(int(q.get("count", "10")), self.history_page)
        # A REST reply: no JSON-RPC id.
        return orjson.dumps({"jsonrpc": "2.0", "result": {"trades": rows[:limit],
                                                          "has_more": len(rows) > limit},
                             "usIn": 1, "usOut": 2, "usDiff": 1, "testnet": False}).decode()

    async def send_test_request(self, ws: Any | None = None) -> None:
        for client in [ws] if ws is not None else list(self.clients):
            self._pending.setdefault(client, time.monotonic())
            self.test_requests_sent += 1
            with contextlib.suppress(Exception):
                await client.send(orjson.dumps(TEST_REQUEST).decode())

    async def _beat(self, ws: Any) -> None:
        while ws in self.clients:
            await asyncio.sleep(self.test_request_every or 0.1)
            if self.test_request_every:
                await self.send_test_request(ws)
            since = self._pending.get(ws)
            if since is not None and time.monotonic() - since > self.test_request_grace:
                await ws.close(code=1000, reason="heartbeat test_request unanswered")
                return

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = orjson.loads(msg)
        method, req_id, params = req.get("method"), req.get("id"), req.get("params") or {}
        if method == "public/test":
            if self._pending.pop(ws, None) is not None:  # any public/test answers it
                self.test_replies += 1
            if self.answer_pings:
                await ws.send(response(req_id, {"version": VERSION}))
        elif method == "public/set_heartbeat":
            self.heartbeat_intervals.append(params.get("interval"))
            await ws.send(response(req_id, "ok"))
            self.background(self._beat(ws))
        elif method == "public/subscribe":
            if self.fail_subscribe:
                await ws.send(orjson.dumps({**DOC_ERROR, "id": req_id}).decode())
                return
            channels = [c for c in params.get("channels", []) if c not in self.reject_channels]
            self.subscribed.append(channels)
            await ws.send(response(req_id, channels))


def _demo_sim() -> DeribitSim:  # pragma: no cover - manual demo
    sim = DeribitSim()
    sim.test_request_every = 10
    return sim


async def _demo(sim: DeribitSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(trades("trades.future.BTC.100ms", trade(
        "BTC-PERPETUAL", "sell" if i % 2 else "buy", 10000, 60000, now, str(i),
        liquidation=("T", "M", "MT")[i % 3])))


if __name__ == "__main__":  # pragma: no cover
    run_demo(_demo_sim, _demo)
