"""Paradex REST simulator: ``GET /v1/markets`` (the listing, ``results[]``) and
``GET /v1/trades`` (the trade tape of one market: ``start_at``/``end_at`` in epoch ms,
``page_size`` default 100 and at most 1000, newest first, an opaque ``next``/``prev`` cursor
that carries the scope it was opened with, so a later page needs only ``cursor``). On demand:
429 with ``Retry-After`` (``rate_limited``), 503 (``rest_fail``, from the base class), and a
stuck API whose trade requests never answer until ``release`` (``stalled``). Requests of a
closed window (``end_at``: the warm start) are logged in ``history_requests`` and get the base
class's history faults (a 429, a slow answer).
Run standalone for a demo: ``python -m liqstress.streams.sims.paradex``."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

# The real LIQUIDATION print, belyjelli/ai-rates
# apps/collector-go/internal/adapters/paradex/liquidations.go @ b441e142e12c8a0273ad8bc17ddc099b4a80a08c
# ("Captured 2026-09-24"), verbatim from its comment, where it is printed without its id.
REAL_ROW_TEXT = ('{"market":"BTC-USD-PERP","side":"SELL","size":"0.00649",'
                 '"price":"83894.04692005321","created_at":1790173872009,'
                 '"trade_type":"LIQUIDATION"}')
REAL_ROW: dict[str, Any] = orjson.loads(REAL_ROW_TEXT)
# The same row as liquidations_test.go @ b441e14 has it ("The first row is a real LIQUIDATION
# from /v1/trades (2026-09-23)"), with the author's simplified "id":"1", and that test's
# constructed rows of the other types that share the tape (kept as the test has them).
TEST_PAGE_ROWS: list[dict[str, Any]] = orjson.loads("""[
 {"id":"1","market":"BTC-USD-PERP","side":"SELL","size":"0.00649","price":"83894.04692005321","created_at":1790173872009,"trade_type":"LIQUIDATION"},
 {"id":"2","market":"BTC-USD-PERP","side":"BUY","size":"0.01","price":"84000","created_at":1790173900000,"trade_type":"LIQUIDATION"},
 {"id":"3","market":"BTC-USD-PERP","side":"SELL","size":"0.00528","price":"84313","created_at":1790238038418,"trade_type":"RPI"},
 {"id":"4","market":"BTC-USD-PERP","side":"SELL","size":"1","price":"84313","created_at":1790238038418,"trade_type":"FILL"},
 {"id":"5","market":"BTC-USD-PERP","side":"SELL","size":"1","price":"84313","created_at":1790238038418,"trade_type":"UNWIND_TRANSFER"}
]""")
#: Trade types on the tape that are not liquidations (ai-rates skips every one of them).
OTHER_TYPES = ("FILL", "RPI", "UNWIND_TRANSFER", "SETTLE_MARKET", "BLOCK_TRADE")
MAX_PAGE_SIZE = 1000
RATE_LIMITED = '{"error":"RATE_LIMIT_EXCEEDED","message":"rate limit exceeded"}'


def market(symbol: str, asset_kind: str = "PERP", quote: str = "USD") -> dict[str, Any]:
    """A ``/v1/markets`` entry, fields as ccxt's paradex ``parseMarket`` sample shows them."""
    return {"symbol": symbol, "base_currency": symbol.split("-")[0], "quote_currency": quote,
            "settlement_currency": "USDC", "order_size_increment": "0.001",
            "price_tick_size": "0.1", "min_notional": "10", "open_at": 1700000000000,
            "expiry_at": 0, "asset_kind": asset_kind, "market_kind": "cross",
            "position_limit": "500", "price_bands_width": "0.05", "max_open_orders": 100,
            "max_funding_rate": "0.05", "interest_rate": "0.0001", "clamp_rate": "0.05",
            "funding_period_hours": "8", "tags": []}


#: Three perps and a perpetual option (options share the listing and are never polled).
MARKETS: list[dict[str, Any]] = [market("BTC-USD-PERP"), market("ETH-USD-PERP"),
                                 market("SOL-USD-PERP"),
                                 market("BTC-USD-96000-C", asset_kind="PERP_OPTION")]


def markets_body(markets: list[dict[str, Any]]) -> str:
    return orjson.dumps({"results": markets}).decode()


def trade(trade_id: str, market_: str, side: str, size: str, price: str, created_at: int,
          trade_type: str = "LIQUIDATION") -> dict[str, Any]:
    """A ``/v1/trades`` row (``side`` is the taker's)."""
    return {"id": trade_id, "market": market_, "side": side, "size": size, "price": price,
            "created_at": created_at, "trade_type": trade_type}


def page(rows: list[dict[str, Any]], next_: str | None = None, prev: str | None = None) -> str:
    """A ``/v1/trades`` body."""
    return orjson.dumps({"next": next_, "prev": prev, "results": rows}).decode()


def _cursor(scope: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(scope)).decode()


def _scope(cursor: str) -> dict[str, Any]:
    try:
        scope = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, orjson.JSONDecodeError):
        raise _bad_request("invalid cursor") from None
    if not isinstance(scope, dict):
        raise _bad_request("invalid cursor")
    return scope


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=orjson.dumps({"error": "VALIDATION_ERROR",
                                                 "message": message}).decode(),
                              content_type="application/json")


class ParadexSim(VenueSim):
    def __init__(self, markets: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.markets = list(MARKETS if markets is None else markets)
        #: The tape, per market, in any order (answers sort it newest first).
        self.tape: dict[str, list[dict[str, Any]]] = {}
        #: Query of every ``/v1/trades`` request, in order, and when it arrived (monotonic).
        self.trade_requests: list[dict[str, str]] = []
        self.trade_times: list[float] = []
        #: Answer this many trade requests with 429 and ``Retry-After: retry_after``.
        self.rate_limited = 0
        self.retry_after = "1"
        # ``history_requests`` (base): (market, cursor or None) of every request with an
        # ``end_at`` (the warm start's window; the poll never sends one), whose faults
        # (``history_429``, ``history_slow``) apply to those requests only.
        #: Trade requests hang (never answered) while set, until ``release``.
        self.stalled = False
        self._released = asyncio.Event()

    def urls(self) -> dict[str, str]:
        return {"rest": self.http_base}  # REST only: Paradex's websocket is not used

    def rest_routes(self) -> dict[str, Any]:
        return {"/v1/markets": self._markets, "/v1/trades": self._trades}

    def add(self, *rows: dict[str, Any]) -> None:
        """Print ``rows`` on their markets' tapes."""
        for row in rows:
            self.tape.setdefault(row["market"], []).append(row)

    def release(self) -> None:
        """Answer the trade requests a stall held (and every one after it)."""
        self.stalled = False
        self._released.set()

    async def stop(self) -> None:
        self.release()  # a held request would keep the HTTP server from shutting down
        await super().stop()

    def requests_for(self, market_: str) -> list[dict[str, str]]:
        return [q for q in self.trade_requests if q.get("market") == market_]

    async def _markets(self, request: web.Request) -> str:
        return markets_body(self.markets)

    async def _trades(self, request: web.Request) -> str:
        query = dict(request.query)
        self.trade_requests.append(query)
        self.trade_times.append(time.monotonic())
        if self.rate_limited > 0:
            self.rate_limited -= 1
            raise web.HTTPTooManyRequests(headers={"Retry-After": self.retry_after},
                                          text=RATE_LIMITED, content_type="application/json")
        if self.stalled:
            self._released.clear()
            await self._released.wait()
        try:
            size = int(query.get("page_size", "100"))
        except ValueError:
            raise _bad_request("invalid page_size") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise _bad_request(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if "cursor" in query:  # the scope the first page was opened with travels inside
            scope = _scope(query["cursor"])
        else:
            try:
                scope = {"market": query["market"], "offset": 0,
                         "start_at": int(query.get("start_at", "0")),
                         "end_at": int(query["end_at"]) if "end_at" in query else None}
            except (KeyError, ValueError):
                raise _bad_request("market is required; start_at/end_at are integers") from None
        if scope.get("end_at") is not None:  # a closed window: only the warm start asks one
            self.history_requests.append((scope.get("market"), query.get("cursor")))
            await self.history_faults(RATE_LIMITED)
        name = scope.get("market")
        if name not in {m["symbol"] for m in self.markets}:
            raise _bad_request(f"market {name!r} not found")
        end = scope.get("end_at")
        rows = sorted((r for r in self.tape.get(name, []) if r["created_at"] >= scope["start_at"]
                       and (end is None or r["created_at"] <= end)),
                      key=lambda r: (r["created_at"], r["id"]), reverse=True)
        offset = int(scope.get("offset", 0))
        chunk = rows[offset:offset + size]
        next_ = (_cursor({**scope, "offset": offset + size})
                 if offset + size < len(rows) else None)
        prev = _cursor({**scope, "offset": max(0, offset - size)}) if offset > 0 else None
        return page(chunk, next_, prev)


async def _demo(sim: ParadexSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    sim.add(trade(f"demo-{i}", "BTC-USD-PERP", "SELL" if i % 3 else "BUY", "0.01", "60000",
                  now, "LIQUIDATION" if i % 5 == 0 else "FILL"))


if __name__ == "__main__":  # pragma: no cover
    run_demo(ParadexSim, _demo)
