"""Hyperliquid simulator: ``/ws`` (the plain-text greeting, one ``subscriptionResponse`` per
``trades`` coin, the recent trades pushed right after a subscribe, the ``allMids`` subscription
acked, ``{"method":"ping"}`` -> ``{"channel":"pong"}``, and the server closing a connection after
``idle_timeout`` seconds without a client message) and ``POST /info`` ``{"type":"meta"}`` and
``{"type":"metaAndAssetCtxs"}`` (open interest, ``oi_bodies["/info"]``, built by ``oi_body``). Plus
builders for ``allMids`` frames and node fills lines (``[user, fill]`` and by-block). Run
standalone for a demo: ``python -m liqstress.streams.sims.hyperliquid``."""

from __future__ import annotations

import contextlib
import itertools
import time
from typing import Any

import orjson
import websockets
from aiohttp import web

from liqstress.streams.venues.hyperliquid import CONNECTED

from .base import VenueSim, run_demo

WS_PATH = "/ws"
#: What the allMids connection connects to in tests (``HyperliquidSim.urls``): the same ``/ws``
#: endpoint; the query only gives it a source of its own, as the spelled-out port does live.
PRICES_PATH = "/ws?conn=allmids"

#: HLP Liquidator (1) and HLP Liquidator 4: backstop counterparties.
VAULT = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
VAULT4 = "0x2ed5c4484ea3ff8b57d5f2fb152a40d9f2b68308"
TRADER = "0x7ba283114573bde6fd304ad7b188a763e5402a52"
MAKER = "0x4a8a68b2ec7c67cbb79060d98157b68c47eba0e6"
OTHER = "0xbb8b801eeddaa7061ae171041ec77516313f2921"

# Live captures quoted in a public probe write-up (2026-08-18): public trades, an ack and the
# error a made-up subscription type gets.
LIVE_TRADES = (
    '{"channel":"trades","data":['
    '{"coin":"BTC","side":"A","px":"64159.0","sz":"0.13722","time":1787047504010,'
    '"hash":"0x292f4dcc51901beb2aa904426dff020202cf00b1ec933abdccf7f91f1093f5d5",'
    '"tid":1016897150094344,"users":["0x07fd7e702ba749ffa49c3a6c17fcd9e6c7b7082a",'
    '"0x4a8a68b2ec7c67cbb79060d98157b68c47eba0e6"]},'
    '{"coin":"BTC","side":"B","px":"64160.0","sz":"0.00587","time":1787047505157,'
    '"hash":"0x77daa017a76cb4ca795404426dff1302011f00fd426fd39c1ba34b6a66608eb5",'
    '"tid":284971718326268,"users":["0xd0bd58f100b3a25aecc1b9ac900c6a6868acf729",'
    '"0x654086857e1fad6dcf05cf6695cce51ea3984268"]}]}')
LIVE_ACK = ('{"channel":"subscriptionResponse","data":{"method":"subscribe",'
            '"subscription":{"type":"trades","coin":"BTC"}}}')
LIVE_ERROR = ('{"channel":"error","data":"Error parsing JSON into valid websocket request: '
              '{\\"method\\": \\"subscribe\\", \\"subscription\\": {\\"type\\": '
              '\\"liquidations\\"}}"}')
PONG = '{"channel":"pong"}'
ALL_MIDS_ACK = ('{"channel":"subscriptionResponse","data":{"method":"subscribe",'
                '"subscription":{"type":"allMids"}}}')
#: The allMids frame shape of the Hyperliquid docs ("Websocket > Subscriptions", AllMids: a
#: ``mids`` map of coin -> mid string) with the keys a main-dex subscription gets: perps, spot
#: pairs by index (``@107``) and by name (``PURR/USDC``), and a per-1000 coin (``kPEPE``).
DOC_ALL_MIDS = ('{"channel":"allMids","data":{"mids":{"@107":"38.95","BTC":"97000.5",'
                '"ETH":"3100.1","PURR/USDC":"0.1873","kPEPE":"0.012345","SOL":"180.05"}}}')

#: A backstop fill in a liquidator vault's own ``userFills`` (the same probe, fields as
#: quoted): the VAULT bought (side B) while the liquidated position was a LONG.
VAULT_BACKSTOP_FILL = {
    "coin": "SOL", "px": "67.5499", "sz": "28.33", "side": "B", "time": 1770337193454,
    "dir": "Liquidated Cross Long", "crossed": True, "fee": "0.0",
    "liquidation": {"liquidatedUser": "0x7ba283114573bde6fd304ad7b188a763e5402a52",
                    "markPx": "68.2", "method": "backstop"},
}
#: A maker's fill that absorbed a market liquidation of ANOTHER user (HIP-3 coin).
MAKER_MARKET_FILL = {
    "coin": "xyz:CRWV", "px": "116.86", "sz": "2.47", "side": "A", "time": 1786628572099,
    "startPosition": "-143.54", "dir": "Open Short", "closedPnl": "0.0",
    "hash": "0xe6838c8a3dba3578e7fd044214d3e2020481006fd8bd544a8a4c37dcfcbe0f63",
    "oid": 515445455983, "crossed": False, "fee": "0.008659", "tid": 711626751774561,
    "liquidation": {"liquidatedUser": "0xbb8b801eeddaa7061ae171041ec77516313f2921",
                    "markPx": "116.84", "method": "market"},
    "feeToken": "USDC", "twapId": None,
}
#: node_fills_by_block line from the S3 archive (hourly/20251010/21, the 2025-10-10 cascade):
#: a trader auto-deleveraged against the liquidator vault. Not a liquidation of that trader.
ADL_BLOCK = (
    '{"local_time":"2025-10-10T21:16:04.831874828","block_time":"2025-10-10T21:16:04.831874687",'
    '"block_number":758800641,"events":[["0xe92d2041199b18f611b137457f3acee8bedb22d3",'
    '{"coin":"AVAX","px":"22.075","sz":"28.53","side":"B","time":1760130964831,'
    '"startPosition":"-28.53","dir":"Auto-Deleveraging","closedPnl":"194.275035",'
    '"hash":"0x922ada1583e0175a93a4042d3a6101010100f1fb1ee3362c35f3856842e3f145",'
    '"oid":194018286846,"crossed":true,"fee":"0.0","tid":771334864158847,'
    '"liquidation":{"liquidatedUser":"0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",'
    '"markPx":"22.025","method":"backstop"},"feeToken":"USDC"}]]}')

META_COINS = ("BTC", "ETH", "SOL", "HYPE", "kPEPE")

_tids = itertools.count(100_000_000_000_001)


def meta_body(coins: tuple[str, ...] = META_COINS, delisted: tuple[str, ...] = ("MATIC",)) -> str:
    universe = [{"szDecimals": 3, "name": c, "maxLeverage": 20, "marginTableId": 20}
                for c in coins]
    universe += [{"szDecimals": 1, "name": c, "maxLeverage": 20, "marginTableId": 20,
                  "onlyIsolated": True, "isDelisted": True} for c in delisted]
    return orjson.dumps({"universe": universe, "marginTables": [], "collateralToken": 0}).decode()


#: ``oi_bodies`` key of the ``metaAndAssetCtxs`` answer (a POST to /info).
OI_KEY = "/info"


def oi_body(ctxs: dict[str, tuple[str, str, str]],
            delisted: tuple[str, ...] = ("MATIC",)) -> str:
    """``metaAndAssetCtxs``: ``[meta, ctxs]`` with ctx i for coin i; ``ctxs`` maps a coin to
    (openInterest coins, markPx, funding per hour); delisted coins get zeros."""
    universe: list[dict[str, Any]] = [{"szDecimals": 3, "name": c, "maxLeverage": 20,
                                       "marginTableId": 20} for c in ctxs]
    universe += [{"szDecimals": 1, "name": c, "maxLeverage": 20, "marginTableId": 20,
                  "onlyIsolated": True, "isDelisted": True} for c in delisted]
    rows = [{"funding": f, "openInterest": oi, "prevDayPx": px, "dayNtlVlm": "0.0",
             "premium": "0.0", "oraclePx": px, "markPx": px, "midPx": px,
             "impactPxs": [px, px], "dayBaseVlm": "0.0"} for oi, px, f in ctxs.values()]
    rows += [{"funding": "0.0", "openInterest": "0.0", "prevDayPx": "1.0", "dayNtlVlm": "0.0",
              "premium": None, "oraclePx": "1.0", "markPx": "1.0", "midPx": None,
              "impactPxs": None, "dayBaseVlm": "0.0"} for _ in delisted]
    return orjson.dumps([{"universe": universe, "marginTables": [], "collateralToken": 0},
                         rows]).decode()


def trade(coin: str, taker_side: str, px: str, sz: str, t_ms: int, buyer: str, seller: str,
          tid: int | None = None) -> dict[str, Any]:
    return {"coin": coin, "side": taker_side, "px": px, "sz": sz, "time": t_ms,
            "hash": "0x" + "0" * 64, "tid": tid if tid is not None else next(_tids),
            "users": [buyer, seller]}


def trades(*items: dict[str, Any]) -> str:
    return orjson.dumps({"channel": "trades", "data": list(items)}).decode()


def fill(coin: str, px: str, sz: str, side: str, t_ms: int, dir_: str, tid: int,
         liquidated: str | None = None, method: str = "market",
         start: str = "0.0") -> dict[str, Any]:
    out: dict[str, Any] = {
        "coin": coin, "px": px, "sz": sz, "side": side, "time": t_ms, "startPosition": start,
        "dir": dir_, "closedPnl": "0.0", "hash": f"0x{tid:064x}", "oid": tid // 3,
        "crossed": True, "fee": "0.0", "tid": tid, "feeToken": "USDC"}
    if liquidated is not None:
        out["liquidation"] = {"liquidatedUser": liquidated, "markPx": px, "method": method}
    return out


def all_mids(mids: dict[str, Any]) -> str:
    """An ``allMids`` frame."""
    return orjson.dumps({"channel": "allMids", "data": {"mids": mids}}).decode()


def node_line(user: str, f: dict[str, Any]) -> str:
    """A ``node_fills`` line: ``[user, fill]``."""
    return orjson.dumps([user, f]).decode()


def block_line(block: int, t_ms: int, *pairs: tuple[str, dict[str, Any]]) -> str:
    """A ``node_fills_by_block`` line."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t_ms / 1000)) + f".{t_ms % 1000:03d}"
    return orjson.dumps({"local_time": stamp + "500000", "block_time": stamp + "000000",
                         "block_number": block,
                         "events": [[u, f] for u, f in pairs]}).decode()


def _channel(frame: str | bytes) -> Any:
    try:
        msg = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    return msg.get("channel") if isinstance(msg, dict) else None


class HyperliquidSim(VenueSim):
    ws_paths = (WS_PATH,)

    def __init__(self) -> None:
        super().__init__()
        #: Push recent trades (a vault one among them) right after each subscribe ack.
        self.snapshot_on_subscribe = True
        #: Close a connection after this long without a client message, as the venue does.
        self.idle_timeout = 60.0
        self.meta = meta_body()
        self.oi_bodies[OI_KEY] = oi_body({"BTC": ("30000.5", "60000.0", "0.0000125"),
                                          "ETH": ("500000.0", "3000.0", "-0.00001"),
                                          "kPEPE": ("6000000000.0", "0.012", "0.0000125")})
        #: Coins subscribed, over every connection (resubscribes repeat them).
        self.subscribed: list[str] = []
        #: allMids subscriptions acked, over every connection.
        self.all_mids_subscribes = 0
        #: Subscription types per connection: data goes only where it was subscribed.
        self._subs: dict[Any, set[str]] = {}

    def http_app(self) -> web.Application:
        # /info is POST-only: the base class only routes GETs.
        app = web.Application()
        app.router.add_post("/info", self._info)
        return app

    def urls(self) -> dict[str, str]:
        """Venue URL overrides pointing every connection (trades, allMids, /info) here."""
        return {"ws": self.ws_url(), "rest": self.http_base, "prices": self.ws_url(PRICES_PATH)}

    async def push(self, frame: str | bytes, path: str | None = None) -> None:
        """Like the venue, ``trades`` and ``allMids`` data go to the connections subscribed to
        them; anything else goes to ``path``, by default the trades connection's ``/ws``."""
        channel = _channel(frame)
        if path is None and channel in ("trades", "allMids"):
            for ws in list(self.clients):
                if channel in self._subs.get(ws, ()):
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(frame)
            return
        await super().push(frame, WS_PATH if path is None else path)

    async def _info(self, request: web.Request) -> web.Response:
        body = await request.text()
        self.rest_hits.append(f"POST {request.rel_url} {body}")
        if self.rest_fail > 0:
            self.rest_fail -= 1
            return web.Response(status=503, text="busy")
        try:
            req = orjson.loads(body)
        except orjson.JSONDecodeError:
            req = None
        kind = req.get("type") if isinstance(req, dict) else None
        if kind == "metaAndAssetCtxs" and OI_KEY in self.oi_bodies:
            return web.Response(text=self.oi_bodies[OI_KEY], content_type="application/json")
        if kind != "meta":
            return web.Response(status=422, text="Failed to deserialize the JSON body into "
                                                 "the target type")
        return web.Response(text=self.meta, content_type="application/json")

    async def on_connect(self, ws: Any, path: str) -> None:
        await ws.send(CONNECTED)
        self.watch_idle(ws, "idle")

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        self.seen(ws)
        req = orjson.loads(msg)
        if req.get("method") == "ping":
            if self.answer_pings:
                await ws.send(PONG)
            return
        sub = req.get("subscription") or {}
        if req.get("method") != "subscribe" or sub.get("type") not in ("trades", "allMids"):
            await ws.send(orjson.dumps({"channel": "error", "data": (
                f"Error parsing JSON into valid websocket request: {msg}")}).decode())
            return
        if self.fail_subscribe:
            await ws.send(orjson.dumps({"channel": "error", "data": (
                "Error parsing JSON into valid websocket request: "
                + orjson.dumps(req).decode())}).decode())
            return
        self._subs.setdefault(ws, set()).add(sub["type"])
        if sub.get("type") == "allMids":
            self.all_mids_subscribes += 1
            await ws.send(orjson.dumps({"channel": "subscriptionResponse", "data": req}).decode())
            return
        coin = sub.get("coin")
        self.subscribed.append(coin)
        await ws.send(orjson.dumps({"channel": "subscriptionResponse", "data": req}).decode())
        if self.snapshot_on_subscribe:
            old = int(time.time() * 1000) - 120_000
            await ws.send(trades(trade(coin, "A", "100", "1", old, VAULT, TRADER),
                                 trade(coin, "B", "100", "2", old + 1, MAKER, OTHER)))


async def _demo(sim: HyperliquidSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    buyer, seller = (VAULT, TRADER) if i % 2 else (TRADER, VAULT4)
    await sim.push(trades(trade("BTC", "A", "60000", "0.5", now, buyer, seller)))
    await sim.push(all_mids({"BTC": str(60000 + i), "@107": "38.9"}))


if __name__ == "__main__":  # pragma: no cover
    run_demo(HyperliquidSim, _demo)
