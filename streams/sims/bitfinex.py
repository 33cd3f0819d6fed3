"""Bitfinex simulator: ``/ws/2`` (the ``info`` greeting on connect, the ``status``/``liq:global``
subscribe acknowledged with a per-connection ``chanId`` and followed by a replay of the latest
liquidation, ``[chanId,"hb"]`` heartbeats, ``{"event":"ping"}`` -> ``{"event":"pong"}``, error
frames for refused subscribes and unknown events, the 20051/20060/20061 info codes). Data frames
carry the chanId of the connection they go to, so ``push_rows`` builds them per client.
REST serves the liquidation history ``/v2/liquidations/hist`` (rows of
``liquidation_history``, newest first, paged by ``end``; a 429 or a slow answer on demand).
Run standalone for a demo: ``python -m liqstress.streams.sims.bitfinex``."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/ws/2"
HISTORY_PATH = "/v2/liquidations/hist"

# ---- real frames --------------------------------------------------------------------------
# tardis-dev/tardis-node test/mappers.test.ts @ c1d73fb54c8cb785bd0a05c36189e24fb289065a, test
# "map bitfinex derivatives messages" (recorded by tardis with the conf flags TIMESTAMP|SEQ_ALL,
# which append ``seq, ts`` to a frame; tardis's storage suffix ``'liquidations','global'`` is not
# on the wire and is left out). JSON here, JS literals there.
TARDIS_ACK = {"event": "subscribed", "channel": "status", "chanId": 386841, "key": "liq:global"}
#: The first data frame of that connection (seq 7): a trigger (IS_MATCH 0) of a LONG, with its
#: liquidation price 9080 below the 9135.97 entry, dated 12 h before the frame: the replay of
#: the latest liquidation that follows a subscribe.
TARDIS_BTC_TRIGGER = [386841, [["pos", 143683674, 1593522802742, None, "tBTCF0:USTF0",
                                0.00268657, 9135.972557016, None, 0, 1, None, 9080]],
                      7, 1593566593351]
TARDIS_HB = [386841, "hb", 2043, 1593566613422]
#: One SHORT position (143679087): the match row (IS_MATCH 1, a partial execution at 235.52)
#: arrived first, then the trigger (IS_MATCH 0, the whole -8.6007 ETH, no liquidation price).
TARDIS_ETH_MATCH = [907, [["pos", 143679087, 1594036710543, None, "tETHF0:USTF0", -4.56671421,
                           222.248906484356, None, 1, 1, None, 235.52]], 1206215, 1594036710595]
TARDIS_ETH_TRIGGER = [907, [["pos", 143679087, 1594036710534, None, "tETHF0:USTF0", -8.6007,
                             222.248906484356, None, 0, 1, None, None]], 1206216, 1594036710596]

# bitfinexcom/bitfinex-api-go pkg/mux/msg/msg_test.go @ 2026b3224505c9f0a6b75296e92aba03442b3d31
# (TestProcessRaw "liquidation status snapshot" / "liquidation status", TestProcessEvent): a
# match row of a long in both frame shapes, and the info greeting.
APIGO_SNAPSHOT = [521209, [["pos", 145511476, 1609921778489, None, "tBTCF0:USTF0", 0.12173,
                            34618.82986269, None, 1, 1, None, 34281]]]
APIGO_UPDATE = [521209, ["pos", 145511476, 1609921778489, None, "tBTCF0:USTF0", 0.12173,
                         34618.82986269, None, 1, 1, None, 34281]]
APIGO_INFO = {"event": "info", "version": 2, "serverId": "dbea77ee-4740-4a82-84f3-c6bc1b5abb9a",
              "platform": {"status": 1}}

# ---- documentation examples (docs.bitfinex.com; no capture) --------------------------------
# ws-public-status: the liquidation feed ack and row (a margin pair, a match row of a short;
# its fractional MTS is as printed there).
DOC_ACK = {"event": "subscribed", "channel": "status", "chanId": 91684, "key": "liq:global"}
DOC_ROW = ["pos", 142397657, 1574697680828.2002, None, "tBSVUSD", -2.62932, 91.583875238719,
           None, 1, 1, None, 112.27]
# ws-general: ping/pong, the info codes and the errors (shapes as documented; values ours).
DOC_PING = {"event": "ping", "cid": 1234}
DOC_PONG = {"event": "pong", "ts": 1511545528111, "cid": 1234}
SUBSCRIBE_FAILED = {"event": "error", "msg": "Subscription failed (generic)", "code": 10300,
                    "channel": "status", "key": "liq:global"}
UNKNOWN_EVENT = {"event": "error", "msg": "Unknown event", "code": 10000}
INFO_RESTART = {"event": "info", "code": 20051, "msg": "restart: please reconnect"}
INFO_MAINTENANCE_START = {"event": "info", "code": 20060, "msg": "maintenance started"}
INFO_MAINTENANCE_END = {"event": "info", "code": 20061, "msg": "maintenance ended"}

# ---- the REST history (samples quoted by ccxt; no capture of ours) --------------------------
# ccxt bitfinex.py ``fetch_liquidations`` doc comment: the body of /v2/liquidations/hist, each
# row wrapped in one more list; a match row (IS_MATCH 1) of a short with its price.
CCXT_HIST_BODY = [[["pos", 171085137, 1706395919788, None, "tAVAXF0:USTF0", -8, 32.868, None,
                    1, 1, None, 33.255]]]
#: ccxt PR #20989's sample run, as printed there (position id and entry price not shown:
#: ours): the trigger of a 0.0392 BTC long WITHOUT a price at ...752 ms, then two match rows at
#: ...753 and ...757 ms, both at 42735.
CCXT_PR_T0 = 1706395919752
CCXT_PR_ROWS = [
    ["pos", 171085200, CCXT_PR_T0 + 5, None, "tBTCF0:USTF0", 0.03908247, 43600.0, None, 1, 1,
     None, 42735],
    ["pos", 171085200, CCXT_PR_T0 + 1, None, "tBTCF0:USTF0", 0.0392, 43600.0, None, 1, 1,
     None, 42735],
    ["pos", 171085200, CCXT_PR_T0, None, "tBTCF0:USTF0", 0.0392, 43600.0, None, 0, 1, None,
     None],
]
#: Bitfinex's REST error shape ``["error", code, text]`` (the 11010 rate-limit code as client
#: libraries name it; not verified here).
RATE_LIMITED = ["error", 11010, "ratelimit: error"]


def hist_body(rows: list[list[Any]]) -> str:
    """A /v2/liquidations/hist body: each row wrapped in one more list."""
    return orjson.dumps([[r] for r in rows]).decode()


#: chanIds handed out by the sim: one per subscribe, never 0 (the account channel).
FIRST_CHAN_ID = 91684


def row(pos_id: int, t_ms: int | float, symbol: str, amount: float, price: float | None,
        is_match: int = 0, base_price: float | None = None,
        is_market_sold: int = 1) -> list[Any]:
    """One liquidation row. ``base_price`` (the entry) defaults to 2% on the profitable side
    of ``price``, as in the captures; it is never read."""
    if base_price is None:
        ref = price if price is not None else 100.0
        base_price = ref * (1.02 if amount > 0 else 0.98)
    return ["pos", pos_id, t_ms, None, symbol, amount, base_price, None, is_match,
            is_market_sold, None, price]


def frame(chan_id: int, *rows: list[Any]) -> str:
    """A data frame with a list of rows (the shape of every captured liquidation frame)."""
    return orjson.dumps([chan_id, list(rows)]).decode()


def update(chan_id: int, one: list[Any]) -> str:
    """A data frame with one row in place of the list (bitfinex-api-go's "update" shape)."""
    return orjson.dumps([chan_id, one]).decode()


def heartbeat(chan_id: int) -> str:
    return orjson.dumps([chan_id, "hb"]).decode()


def ack(chan_id: int) -> str:
    return orjson.dumps({"event": "subscribed", "channel": "status", "chanId": chan_id,
                         "key": "liq:global"}).decode()


def dumps(msg: Any) -> str:
    return orjson.dumps(msg).decode()


class BitfinexSim(VenueSim):
    ws_paths = (WS_PATH,)

    def __init__(self) -> None:
        super().__init__()
        #: The chanId given to each connection's subscribe (ws -> chanId).
        self.chan_ids: dict[Any, int] = {}
        #: Every chanId handed out, in order, over all connections.
        self.acked: list[int] = []
        self.pings = 0
        #: Replay the latest liquidation (dated an hour ago) after each subscribe, as Bitfinex.
        self.send_history = True
        #: Seconds between heartbeats on a subscribed channel (Bitfinex: 15 s when idle).
        self.heartbeat_every = 0.05
        self._next_chan_id = FIRST_CHAN_ID
        #: The REST liquidation history (``row``s, any order): served newest first
        #: (``sort=-1``) within ``start``..``end`` (both inclusive), ``history_page`` rows a
        #: page at most. ``history_requests`` (base): (start, end) per request.
        self.liquidation_history: list[list[Any]] = []
        self.history_page = 500

    def rest_routes(self) -> dict[str, Any]:
        return {HISTORY_PATH: self._history}

    async def _history(self, request: web.Request) -> str:
        q = request.query
        start, end = int(q.get("start", "0")), int(q.get("end", str(2**62)))
        self.history_requests.append((start, end))
        await self.history_faults(dumps(RATE_LIMITED))
        rows = sorted((r for r in self.liquidation_history if start <= r[2] <= end),
                      key=lambda r: r[2], reverse=q.get("sort") == "-1")
        return hist_body(rows[:min(int(q.get("limit", "125")), self.history_page)])

    async def on_connect(self, ws: Any, path: str) -> None:
        await ws.send(dumps(APIGO_INFO))

    async def _beat(self, ws: Any) -> None:
        # Heartbeats keep flowing whether pings are answered or not: they are no pong.
        with contextlib.suppress(Exception):
            while ws in self.clients:
                await ws.send(heartbeat(self.chan_ids[ws]))
                await asyncio.sleep(self.heartbeat_every)

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        try:
            req = orjson.loads(msg)
        except orjson.JSONDecodeError:
            await ws.send(dumps(UNKNOWN_EVENT))
            return
        event = req.get("event") if isinstance(req, dict) else None
        if event == "ping":
            self.pings += 1
            if self.answer_pings:
                await ws.send(dumps({"event": "pong", "ts": int(time.time() * 1000),
                                     "cid": req.get("cid")}))
        elif event == "subscribe":
            if self.fail_subscribe or req.get("channel") != "status" \
                    or req.get("key") != "liq:global":
                await ws.send(dumps(SUBSCRIBE_FAILED))
                return
            chan_id = self._next_chan_id
            self._next_chan_id += 1
            self.chan_ids[ws] = chan_id
            self.acked.append(chan_id)
            await ws.send(ack(chan_id))
            if self.send_history:
                old = int(time.time() * 1000) - 3_600_000
                await ws.send(frame(chan_id, row(1, old, "tBTCF0:USTF0", 0.5, 60000.0)))
            self.background(self._beat(ws))
        else:
            await ws.send(dumps(UNKNOWN_EVENT))

    async def push_rows(self, *rows: list[Any], single: bool = False) -> None:
        """Send ``rows`` to every subscribed connection under its own chanId: one frame with
        the list of rows, or (``single``) one frame per row in the one-row shape."""
        for ws, chan_id in list(self.chan_ids.items()):
            if ws not in self.clients:
                continue
            texts = [update(chan_id, r) for r in rows] if single else [frame(chan_id, *rows)]
            for text in texts:
                with contextlib.suppress(Exception):
                    await ws.send(text)

    async def announce_restart(self, close: bool = True) -> None:
        """What Bitfinex does before a server restart: the 20051 info, then (``close``) the
        connection goes away."""
        await self.push(dumps(INFO_RESTART))
        if close:
            for ws in list(self.clients):
                await ws.close(code=1012, reason="service restart")


async def _demo(sim: BitfinexSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    amount = 0.25 if i % 2 else -3.0
    symbol = "tBTCF0:USTF0" if i % 2 else "tETHF0:USTF0"
    price = 60000.0 if i % 2 else 3000.0
    await sim.push_rows(row(1000 + i, now, symbol, amount, price))
    await sim.push_rows(row(1000 + i, now + 5, symbol, amount / 2, price, is_match=1))


if __name__ == "__main__":  # pragma: no cover
    run_demo(BitfinexSim, _demo)
