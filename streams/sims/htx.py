"""HTX simulator: ``/linear-swap-notification`` with every server frame gzip-compressed, ``sub``
acks (``err-code`` 0, 2014 "Repeated subscription", or an error), and the venue's one-way
heartbeat: the server sends ``{"op":"ping","ts":"<ms>"}`` every ``ping_every`` seconds, expects
``{"op":"pong","ts":<same>}`` and, after ``max_missed`` unanswered pings, sends
``{"op":"close"}`` and closes with "Bye", as HTX does. REST serves the open-interest poll:
``swap_batch_funding_rate`` and ``swap_open_interest`` (plain JSON, ``oi_bodies``, built by
``funding_body`` and ``oi_body``; the funding listing is also the warm start's list of
contracts), and the v5 liquidation history ``/v5/market/liquidation_orders`` (rows of
``liquidation_history`` per contract, paged like the venue, a 429 or a slow answer on demand).
Run standalone for a demo: ``python -m liqstress.streams.sims.htx``."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import time
from typing import Any

import orjson
import websockets
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/linear-swap-notification"
FUNDING_PATH = "/linear-swap-api/v1/swap_batch_funding_rate"
OI_PATH = "/linear-swap-api/v1/swap_open_interest"
HISTORY_PATH = "/v5/market/liquidation_orders"

# Live capture (ai-rates liqhtx.go, 2026-09-18), as quoted in exchanges.md §2.12, verbatim.
LIVE_FRAME = ('{"op":"notify","topic":"public.ETH-USDT.liquidation_orders","ts":1789670297217,'
              '"data":[{"symbol":"ETH","contract_code":"ETH-USDT","direction":"buy","offset":"close",'
              '"volume":500,"price":2446.26,"created_at":1789670297212,"amount":5,'
              '"trade_turnover":12231.3,"contract_type":"swap","pair":"ETH-USDT",'
              '"business_type":"swap","trade_partition":"USDT"}]}')
# The ack and ping seen on one live connection seconds apart: ts is a number on the ack and a
# quoted string on the ping (ai-rates liqhtx.go).
LIVE_ACK = ('{"op":"sub","cid":"airates-liq","topic":"public.*.liquidation_orders",'
            '"ts":1789676350590,"err-code":0}')
LIVE_PING = '{"op":"ping","ts":"1789676355591"}'
REPEATED = {"err-code": 2014, "err-msg": "Repeated subscription"}
INVALID_TOPIC = {"err-code": 2011, "err-msg": "invalid topic"}


def gz(text: str) -> bytes:
    """A server frame as HTX sends it (deterministic: no mtime in the header)."""
    return gzip.compress(text.encode(), mtime=0)


def liquidation(contract: str, *entries: tuple[str, float, float, float, int, float],
                business_type: str = "swap") -> str:
    """A ``notify`` frame; each entry is (order direction, volume contracts, price, amount base,
    created_at ms, trade_turnover USDT)."""
    base, quote = contract.split("-")[:2]
    data = [{"symbol": base, "contract_code": contract, "direction": d, "offset": "close",
             "volume": v, "price": p, "created_at": t, "amount": a, "trade_turnover": tt,
             "contract_type": "swap" if business_type == "swap" else "quarter",
             "pair": f"{base}-{quote}", "business_type": business_type,
             "trade_partition": quote} for d, v, p, a, t, tt in entries]
    push_ts = max(e[4] for e in entries) + 5
    return orjson.dumps({"op": "notify", "topic": f"public.{contract}.liquidation_orders",
                         "ts": push_ts, "data": data}).decode()


# The v5 history row of the ccxt doc comment (htx.py ``fetch_liquidations``), verbatim: not a
# capture of ours.
CCXT_V5_ROW = {"id": "150153038758", "contract_code": "BTC-USDT",
               "liquidation_time": "1781849094165", "side": "buy", "position_side": "short",
               "volume": "2", "amount": "2", "bankrupt_price": "62978.5",
               "trade_turnover": "125.957"}


def history_row(row_id: int, contract: str, position_side: str, volume: str, price: str,
                t_ms: int, turnover: str) -> dict[str, Any]:
    """A v5 ``liquidation_orders`` row, every value a string as in the ccxt sample; ``side``
    is the order that closed the position, ``amount`` equals ``volume`` as there."""
    return {"id": str(row_id), "contract_code": contract, "liquidation_time": str(t_ms),
            "side": "sell" if position_side == "long" else "buy",
            "position_side": position_side, "volume": volume, "amount": volume,
            "bankrupt_price": price, "trade_turnover": turnover}


def history_body(rows: list[dict[str, Any]], ts_ms: int = 1_781_854_869_221) -> str:
    return orjson.dumps({"code": 200, "message": "Success", "data": rows, "ts": ts_ms}).decode()


def ping(ts_ms: int) -> str:
    """A server heartbeat, ts quoted as HTX sends it."""
    return f'{{"op":"ping","ts":"{ts_ms}"}}'


def ack(cid: str, topic: str, ts: int, err: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"op": "sub", "cid": cid, "topic": topic, "ts": ts, "err-code": 0}
    if err:
        body.update(err)
    return orjson.dumps(body).decode()


def funding_body(rates: dict[str, str] | None = None, ts_ms: int | None = None) -> str:
    """A ``swap_batch_funding_rate`` body (shape of the HTX doc example): contract -> rate."""
    rates = {"BTC-USDT": "0.000100000000000000", "ETH-USDT": "-0.000050000000000000"} \
        if rates is None else rates
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    data = [{"funding_rate": r, "contract_code": c, "symbol": c.split("-")[0], "fee_asset": "USDT",
             "funding_time": str(ts - ts % 60_000), "estimated_rate": None,
             "next_funding_time": None} for c, r in rates.items()]
    return orjson.dumps({"status": "ok", "data": data, "ts": ts}).decode()


def oi_body(items: list[tuple[str, float, float]] | None = None, ts_ms: int | None = None) -> str:
    """A ``swap_open_interest`` body (shape of the HTX doc example); each item is (contract code,
    amount in coins, value in USDT); a code with a date suffix is a future."""
    items = [("BTC-USDT", 1500.0, 90_000_000.0), ("ETH-USDT", 20000.0, 60_000_000.0)] \
        if items is None else items
    data = []
    for code, amount, value in items:
        base, quote = code.split("-")[:2]
        swap = code.count("-") == 1
        data.append({"volume": amount * 1000, "amount": amount, "symbol": base, "value": value,
                     "contract_code": code, "trade_amount": 0, "trade_volume": 0,
                     "trade_turnover": 0, "business_type": "swap" if swap else "futures",
                     "pair": f"{base}-{quote}", "contract_type": "swap" if swap else "quarter"})
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    return orjson.dumps({"status": "ok", "data": data, "ts": ts}).decode()


class HtxSim(VenueSim):
    ws_paths = (WS_PATH,)
    oi_paths = (FUNDING_PATH, OI_PATH)

    def __init__(self, ping_every: float = 5.0, max_missed: int = 5) -> None:
        super().__init__()
        self.gzip = True
        self.ping_every = ping_every
        self.max_missed = max_missed
        #: Server heartbeats on/off (off: a server that went quiet).
        self.send_pings = True
        #: Pings carry ts as a quoted string (as HTX does); False sends a bare number.
        self.ts_as_string = True
        self.pings_sent: list[str] = []  # the raw ts token of every ping
        self.pongs: list[str] = []  # every pong received, verbatim
        self.bad_pongs = 0
        self.byes = 0  # connections closed for unanswered pings
        #: Per connection: topics subscribed, ping ts tokens not answered yet.
        self._topics: dict[Any, set[str]] = {}
        self._outstanding: dict[Any, list[str]] = {}
        self.oi_bodies[FUNDING_PATH] = funding_body()
        self.oi_bodies[OI_PATH] = oi_body()
        #: The v5 liquidation history per contract (``history_row``s, any order): served
        #: newest first within ``start_time``..``end_time`` (both inclusive), at most
        #: ``history_page`` rows a page, paged back with ``from`` (inclusive: the row of that
        #: id comes again, the harder case for a reader). ``history_requests`` (base):
        #: (contract, start_time, end_time, from or None) per request.
        self.liquidation_history: dict[str, list[dict[str, Any]]] = {}
        self.history_page = 100
        #: Contracts whose history is refused in an HTTP 200 (``code`` not 200).
        self.refuse_history: set[str] = set()

    def rest_routes(self) -> dict[str, Any]:
        return {HISTORY_PATH: self._history}

    async def _history(self, request: web.Request) -> str:
        q = request.query
        contract, start, end = q.get("contract_code", ""), int(q["start_time"]), int(q["end_time"])
        from_id = q.get("from")
        self.history_requests.append((contract, start, end, from_id))
        await self.history_faults('{"code":429,"message":"Too many requests","ts":0}')  # ours
        if contract in self.refuse_history or end - start > 2 * 3_600_000:
            # A refusal in an HTTP 200, as HTX answers (code and text ours).
            return orjson.dumps({"code": 1068, "message": "request refused",
                                 "ts": int(time.time() * 1000)}).decode()
        rows = sorted((r for r in self.liquidation_history.get(contract, [])
                       if start <= int(r["liquidation_time"]) <= end
                       and (from_id is None or int(r["id"]) <= int(from_id))),
                      key=lambda r: (int(r["liquidation_time"]), int(r["id"])), reverse=True)
        return history_body(rows[:min(int(q.get("limit", "100")), self.history_page)])

    async def send(self, ws: Any, text: str) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(gz(text))

    async def on_connect(self, ws: Any, path: str) -> None:
        self._topics[ws] = set()
        self._outstanding[ws] = []
        self.background(self._heartbeat(ws))

    async def _heartbeat(self, ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while ws.close_code is None:
                await asyncio.sleep(self.ping_every)
                if not self.send_pings:
                    continue
                if len(self._outstanding[ws]) >= self.max_missed:
                    self.byes += 1
                    await ws.send(gz('{"op":"close"}'))
                    await ws.close(code=1000, reason="Bye")
                    return
                ms = str(int(time.time() * 1000))
                token = f'"{ms}"' if self.ts_as_string else ms
                self._outstanding[ws].append(token)
                self.pings_sent.append(token)
                await ws.send(gz(f'{{"op":"ping","ts":{token}}}'))

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = orjson.loads(msg)
        op = req.get("op")
        now = int(time.time() * 1000)
        if op == "pong":
            self.pongs.append(msg)
            token = orjson.dumps(req.get("ts")).decode()
            if token in self._outstanding[ws]:
                self._outstanding[ws].clear()  # an answer to the latest pings: the client is alive
            else:
                self.bad_pongs += 1
                await self.send(ws, orjson.dumps({"op": "pong", "ts": str(now), "err-code": 2011,
                                                  "err-msg": "invalid pong"}).decode())
        elif op == "sub":
            topic, cid = str(req.get("topic")), str(req.get("cid", ""))
            covered = topic in self._topics[ws] or "public.*.liquidation_orders" in self._topics[ws]
            if self.fail_subscribe:
                await self.send(ws, ack(cid, topic, now, INVALID_TOPIC))
            elif covered:
                if self.answer_pings:
                    await self.send(ws, ack(cid, topic, now, REPEATED))
            else:
                self._topics[ws].add(topic)
                await self.send(ws, ack(cid, topic, now))
        else:
            await self.send(ws, orjson.dumps({"op": "error", "ts": now, "err-code": 2002,
                                              "err-msg": "invalid op"}).decode())


async def _demo(sim: HtxSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(liquidation("BTC-USDT", ("sell" if i % 3 else "buy", 100, 60000.0, 0.1, now,
                                            6000.0)))


if __name__ == "__main__":  # pragma: no cover
    run_demo(HtxSim, _demo)
