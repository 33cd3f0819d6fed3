"""Hyperliquid: there is NO public market-wide liquidation stream. Two sources, one venue id.

Which source runs is chosen by the URL overrides: with ``node_fills`` set (a ``file://``
directory, no default) the node-fills source runs INSTEAD of the websocket one.

(a) ``ws`` (default): public ``trades`` + the HLP liquidator vaults. BACKSTOP-ONLY HEURISTIC.
   ******************************************************************************************
   * This source sees ONLY backstop liquidations (the position is handed to an HLP liquidator *
   * vault because the book could not absorb it). Ordinary liquidations, the great majority, *
   * are market orders against ordinary makers and are INVISIBLE here: public trades carry   *
   * no liquidation flag. Totals from this source are a FLOOR, and a thin one (a third-party *
   * poller saw 0 events in ~924k trades over 2 days). It can also over-count: the vaults'   *
   * own trades that unwind an inherited position look the same on the tape. Every event is  *
   * ``sampled=True``. Label it "backstop only"; run a node (b) for real coverage.            *
   ******************************************************************************************
   - Endpoint: ``wss://api.hyperliquid.xyz/ws``; one
     ``{"method":"subscribe","subscription":{"type":"trades","coin":C}}`` per perp coin of the
     main dex. Coins come from ``POST https://api.hyperliquid.xyz/info {"type":"meta"}``
     (``universe[].name``, delisted skipped), sent as ``…/info#{"type":"meta"}`` (the collector
     POSTs a URL fragment); refreshed hourly, new listings subscribed live. HIP-3 builder dexes
     (``xyz:…``) are not subscribed.
   - A trade is a liquidation when one of ``users`` (``[buyer, seller]``) is an HLP liquidator
     vault (``LIQUIDATORS``: HLP Liquidator 1-4, child vaults of HLP
     ``0xdfc24b077bc1425ad1dea75bcb6f8158e10df303``); the other user is the liquidated trader.
   - Side: the vault takes over the liquidated position, so a liquidated LONG is SOLD to the
     vault: vault = buyer (``users[0]``) -> long; vault = seller (``users[1]``) -> short.
     Evidence: a live backstop fill in a liquidator vault's own ``userFills`` reads
     ``"side":"B"`` with ``"dir":"Liquidated Cross Long"``. (exchanges.md §2.5 quotes the
     opposite rule from a third-party README; that rule inverts every event.)
   - Acks ``{"channel":"subscriptionResponse",...}`` (one per coin); the greeting text
     ``Websocket connection established.`` is info; ``{"channel":"error",...}`` dead-letters.
   - Replay: trades the venue may send right after a subscribe are history:
     ``drop_before_subscribe`` drops anything dated before the ack (and ids dedupe).
   - Liveness: ``{"method":"ping"}`` every 20 s, reply ``{"channel":"pong"}``; the server closes
     a connection after 60 s without a client message.

(b) ``node_fills``: a non-validator node's fills, COMPLETE for whoever runs a node.
   ``hl-visor run-non-validator --write-fills`` writes ``~/hl/data/node_fills/hourly/{date}/{hour}``
   (each line ``[user, fill]``, the API fill format); with ``--batch-by-block`` it writes
   ``node_fills_by_block/hourly/{date}/{hour}`` (each line
   ``{"local_time","block_time","block_number","events":[[user, fill], ...]}``). Point
   ``node_fills`` at either directory: the collector follows the newest hourly file from its end
   (history is not new), one frame per complete line, through rotation. Both line shapes parse.
   - Every fill of a liquidation trade carries ``liquidation: {liquidatedUser, markPx, method}``,
     the counterparties' fills (makers, the vault) too. One event per fill whose own user IS
     ``liquidatedUser``: the liquidated trader's fills only, so nothing is counted twice. Fills of
     a liquidator vault are never events (an auto-deleveraging of the vault closes a position it
     inherited from a backstop liquidation already counted).
   - Side: ``dir`` names the position ("Liquidated Cross Long", "Liquidated Isolated Short",
     "Close Long", "Close Short"); without a long/short ``dir`` ("Auto-Deleveraging") the
     trader's own order side: ``A`` (ask, sells) -> long, ``B`` (bid, buys) -> short.
   - ``sampled=False`` on these events: complete, not a floor. ``VenueSpec.sampled`` describes
     the default source (a).
   - Liveness: up while the directory exists (no ping); a dead node shows as silence.

Both sources:
- Units: ``sz`` is base coin, ``px`` USDC: notional ``sz × px`` (USDC taken as USD). HIP-3
  coins (``dex:COIN``) settle in their dex's collateral token, unknown here: qty ``sz``,
  notional null (counted as unpriced). Spot coins (``@N``, ``A/B``) are never liquidated:
  dead-lettered.
- Time: ``time`` (ms, block time).
- Ids: ``time:tid:liquidated user`` is the venue id (``tid`` alone is a 50-bit hash of the two
  order ids), so the same backstop liquidation seen by both sources has one event id.

Prices (with either source): a connection of its own (``allmids``, kind ``prices``) subscribes
``{"method":"subscribe","subscription":{"type":"allMids"}}`` (no ``dex``: the main perp dex, spot
mids included) and gets ``{"channel":"allMids","data":{"mids":{"BTC":"97000.5",...}}}``. Mids are
``(best bid + best ask) / 2`` in USDC (taken as USD): ``kind="mid"`` ticks, one per main-dex perp
coin (``kPEPE`` is per 1000 PEPE: ``make_tick`` divides it out). Spot keys (``@107``,
``PURR/USDC``) and builder-dex keys (``dex:COIN``, other collateral) are skipped; a mid that is
not a positive number is skipped too, but a frame with no usable mid at all dead-letters
(``bad_price``). The frame carries NO time: a tick's ``ts`` is its receipt time ``recv_ts``.
One frame per ``PRICE_INTERVAL`` seconds is kept. Same ack, ping and idle rules as above.
URL key ``prices``: ``off`` turns it off; unset, it is the ``ws`` endpoint with its port spelled
out (``wss://api.hyperliquid.xyz:443/ws``): the same server and handshake, but a ``source`` of
its own, so recordings tell the two connections apart and an allMids (re)subscribe never moves
the trades connection's history cut-off (``drop_before_subscribe`` is kept per source).

Open interest and funding: one ``POST {rest}/info {"type":"metaAndAssetCtxs"}`` per poll
(``[{"universe": [...]}, [ctx, ...]]``, ctx ``i`` belongs to coin ``i``; main-dex perps, delisted
coins left out). ``openInterest`` is in coins of the base (``kPEPE``: thousands), valued at the
mark ``markPx`` (USDC taken as USD; the oracle price ``oraclePx`` differs slightly and is not
used). ``funding`` is the rate per HOUR (interval 1 h; 0.0000125 = 0.01 %/8 h). The body has
no time: ``ts`` is the receipt time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from liqstress.event import LiquidationEvent, Market
from liqstress.labels import Side
from liqstress.prices import PriceError, PriceTick, make_tick

from . import kit

ID = "hyperliquid"
WS_URL = "wss://api.hyperliquid.xyz/ws"
REST = "https://api.hyperliquid.xyz"
META_BODY = '{"type":"meta"}'
OI_BODY = '{"type":"metaAndAssetCtxs"}'
QUOTE = "USDC"
#: The greeting the server sends as plain text on every new connection.
CONNECTED = "Websocket connection established."
#: Seconds between kept allMids frames (signals work on 5-minute price slots).
PRICE_INTERVAL = 10.0
ALL_MIDS_SUBSCRIBE = '{"method":"subscribe","subscription":{"type":"allMids"}}'

#: HLP liquidator child vaults (HLP parent 0xdfc24b077bc1425ad1dea75bcb6f8158e10df303). The
#: agents rotate: a live probe (2026-08) found recent backstop fills on Liquidator 2 and 4, none
#: on Liquidator 1 for ~90 days, which is why all four are watched.
LIQUIDATORS: frozenset[str] = frozenset({
    "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",  # HLP Liquidator
    "0xb0a55f13d22f66e6d495ac98113841b2326e9540",  # HLP Liquidator 2
    "0x5e177e5e39c0f4e421f5865a6d8beed8d921cb70",  # HLP Liquidator 3
    "0x2ed5c4484ea3ff8b57d5f2fb152a40d9f2b68308",  # HLP Liquidator 4
})

_DIR_WORDS = re.compile(r"[A-Za-z]+")


def _node_url(urls: dict[str, str]) -> str | None:
    url = urls.get("node_fills")
    if not url:
        return None
    if url.startswith("/"):
        return f"file://{url}"
    if not url.startswith("file://"):
        raise ValueError(f"hyperliquid node_fills must be a file:// directory, got {url!r}")
    return url


def rest_urls(urls: dict[str, str]) -> list[str]:
    if _node_url(urls):
        return []  # node fills name their coins; nothing to subscribe
    return [kit.rest_url(urls, REST, f"/info#{META_BODY}")]


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    """``{"type":"meta"}``: ``universe[]`` of perps (``name``, ``szDecimals``, ``isDelisted``)."""
    universe = kit.rest_json(body, dict, "meta without a universe").get("universe")
    if not isinstance(universe, list) or not universe:
        raise kit.FrameError("unexpected_shape", "meta without a universe")
    for item in universe:
        if not isinstance(item, dict) or item.get("isDelisted") is True:
            continue
        name = item.get("name")
        if isinstance(name, str) and name and _is_main_perp(name):
            meta.instruments[name] = kit.Instrument(symbol=name, base=name, quote=QUOTE,
                                                market="linear")


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, f"/info#{OI_BODY}")]


def _oi_px(ctx: dict[str, Any], key: str) -> float | None:
    """A price of a ctx: a positive decimal string, or None (a coin without a mark yet)."""
    val = ctx.get(key)
    if val is None:
        return None
    px = kit.num_str(ctx, key)
    return px if px > 0 else None


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.rest_json(body, list, "metaAndAssetCtxs is not [meta, ctxs]")
    if len(msg) != 2 or not isinstance(msg[0], dict) or not isinstance(msg[1], list):
        raise kit.FrameError("unexpected_shape", "metaAndAssetCtxs is not [meta, ctxs]")
    universe, ctxs = msg[0].get("universe"), msg[1]
    if not isinstance(universe, list) or len(universe) != len(ctxs):
        raise kit.FrameError("unexpected_shape", "universe and asset contexts do not align")

    def build(pair: tuple[Any, Any]) -> kit.OpenInterest | None:
        asset, ctx = pair
        if not isinstance(asset, dict) or not isinstance(ctx, dict):
            raise kit.FrameError("unexpected_shape", "asset or context is not an object")
        coin = kit.required_str(asset, "name")
        if asset.get("isDelisted") is True or not _is_main_perp(coin):
            return None
        coins = kit.num_str(ctx, "openInterest")
        mark = _oi_px(ctx, "markPx")
        return kit.oi_record(exchange=ID, symbol=coin, base=coin, market="linear",
                             oi_coins=coins, oi_usd=None if mark is None else coins * mark,
                             price=mark, funding_rate=kit.num_str(ctx, "funding"),
                             funding_interval_hours=1.0, ts=recv_ts, recv_ts=recv_ts)

    return kit.oi_frame(zip(universe, ctxs, strict=True), build)


def subscribe_messages(coins: Sequence[str]) -> list[str]:
    """One subscribe message (hence one ack) per coin: the venue takes no lists."""
    return [orjson.dumps({"method": "subscribe",
                          "subscription": {"type": "trades", "coin": c}}).decode() for c in coins]


def _with_port(url: str) -> str:
    """``url`` with its default port spelled out: the same endpoint and handshake (the Host
    header leaves a default port out), but a different string."""
    parts = urlsplit(url)
    if parts.port is not None or not parts.netloc:
        return url
    port = 443 if parts.scheme in ("wss", "https") else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def prices_url(urls: dict[str, str]) -> str | None:
    """The allMids connection's URL: ``prices`` if set (``off``: none), else the ``ws``
    endpoint under a source string of its own (see the module doc)."""
    url = urls.get("prices")
    if url == "off":
        return None
    return url or _with_port(urls.get("ws", WS_URL))


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    conns: list[kit.Connection] = []
    node = _node_url(urls)
    if node:
        conns.append(kit.Connection(name="node_fills", url=node))
    else:
        coins = sorted(meta.instruments)
        # Without coins a trades connection would have nothing to subscribe: it would look
        # healthy and stay silent. A metadata refresh starts it once coins are known.
        if coins:
            conns.append(kit.Connection(name="trades", url=urls.get("ws", WS_URL),
                                    subscribe=subscribe_messages(coins), topics=tuple(coins)))
    prices = prices_url(urls)
    if prices is not None:
        conns.append(kit.Connection(name="allmids", url=prices, subscribe=(ALL_MIDS_SUBSCRIBE,),
                                kind="prices", min_interval=PRICE_INTERVAL))
    return conns


def ping_message(seq: int) -> str:
    return '{"method":"ping"}'


# ---- shared helpers ----------------------------------------------------------------------

def _is_main_perp(coin: str) -> bool:
    return not (coin.startswith("@") or "/" in coin or ":" in coin)


def _market(coin: str, meta: kit.Metadata) -> tuple[str, str, bool]:
    """(base, quote, priced) for a perp coin; spot coins are never liquidated."""
    inst = meta.get(coin)
    if inst:
        return inst.base, inst.quote, True
    if coin.startswith("@") or "/" in coin:
        raise kit.FrameError("unsupported_instrument", f"spot coin {coin!r}")
    dex, sep, name = coin.partition(":")
    if sep:  # HIP-3 builder dex: collateral token unknown here, so no USD notional
        if not dex or not name:
            raise kit.FrameError("unknown_symbol", coin)
        return name, "USD", False
    return coin, QUOTE, True


def _time_ms(obj: dict[str, Any]) -> int:
    """``time``: integer milliseconds (a JSON integer; checked by ``kit.ms``)."""
    kit.ms(obj, "time")
    t_ms: int = obj["time"]
    return t_ms


def _event(coin: str, side: Side, px: float, sz: float, t_ms: float, tid: Any, user: str,
           recv_ts: float, sampled: bool, meta: kit.Metadata, qty_raw: Any) -> LiquidationEvent:
    if sz <= 0 or px <= 0 or t_ms <= 0:
        raise kit.FrameError("bad_number", f"sz={sz!r} px={px!r} time={t_ms!r}")
    base, quote, priced = _market(coin, meta)
    market: Market = "linear"
    venue_id = f"{int(t_ms)}:{tid}:{user.lower()}" if tid is not None else None
    return kit.event(exchange=ID, symbol=coin, base=base, quote=quote, market=market, side=side,
                 price=px, qty=sz, notional_usd=sz * px if priced else None, ts=t_ms / 1000.0,
                 recv_ts=recv_ts, sampled=sampled, qty_raw=qty_raw, venue_id=venue_id)


# ---- (a) public trades -----------------------------------------------------------------

def _parse_ws(msg: dict[str, Any], recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    channel = msg.get("channel")
    data = msg.get("data")
    if channel == "pong":
        return kit.PONG
    if channel == "subscriptionResponse":
        method = data.get("method") if isinstance(data, dict) else None
        return (kit.ACK if method == "subscribe" else kit.INFO)
    if channel == "error":
        text = str(data)[:300]
        raise kit.FrameError("subscribe_error" if "subscri" in text else "venue_error", text)
    if channel == "allMids":
        return _parse_all_mids(data, recv_ts)
    if channel != "trades":
        raise kit.FrameError("unexpected_channel", str(channel)[:100])
    if not isinstance(data, list):
        raise kit.FrameError("unexpected_shape", "trades data is not a list")
    events = []
    for trade in kit.objects(data, "trade"):
        users = trade.get("users")
        if (not isinstance(users, list) or len(users) != 2
                or not all(isinstance(u, str) for u in users)):
            raise kit.FrameError("missing_field", "users")
        buyer, seller = users[0].lower(), users[1].lower()
        if (buyer in LIQUIDATORS) == (seller in LIQUIDATORS):
            continue  # an ordinary trade (or vault to vault): not a backstop liquidation
        # The vault takes the liquidated position over: it BUYS a liquidated long.
        side: Side = "long" if buyer in LIQUIDATORS else "short"
        liquidated = seller if side == "long" else buyer
        events.append(_event(kit.required_str(trade, "coin"), side, kit.num_str(trade, "px"),
                             kit.num_str(trade, "sz"), _time_ms(trade), trade.get("tid"),
                             liquidated, recv_ts,
                             True, meta, trade.get("sz")))
    return kit.parsed("data", tuple(events))


# ---- prices: allMids -------------------------------------------------------------------

def _parse_all_mids(data: Any, recv_ts: float) -> kit.Parsed:
    """``{"mids": {coin: mid}}``. Spot and builder-dex keys are skipped; so is a bad mid (one
    odd coin must not cost the others), but a frame with no usable mid at all is an error. No
    time in the frame: ``ts`` is the receipt time."""
    mids = data.get("mids") if isinstance(data, dict) else None
    if not isinstance(mids, dict):
        raise kit.FrameError("unexpected_shape", "allMids data without a mids object")
    ticks: list[PriceTick] = []
    bad = 0
    for coin, mid in mids.items():
        if not coin or not _is_main_perp(coin):
            continue
        if isinstance(mid, bool):
            bad += 1
            continue
        try:
            ticks.append(make_tick(exchange=ID, symbol=coin, base=coin,
                                   price=kit.num_str(mids, coin), ts=recv_ts, recv_ts=recv_ts,
                                   kind="mid"))
        except (kit.FrameError, PriceError):
            bad += 1
    return kit.price_frame(ticks, bad)


# ---- (b) node fills --------------------------------------------------------------------

def _fill_side(fill: dict[str, Any]) -> Side:
    words = {w.lower() for w in _DIR_WORDS.findall(str(fill.get("dir") or ""))}
    if "long" in words and "short" not in words:
        return "long"
    if "short" in words and "long" not in words:
        return "short"
    # No position named (Auto-Deleveraging, a flip): the trader's own order side closes it.
    order_side = fill.get("side")
    if order_side == "A":
        return "long"
    if order_side == "B":
        return "short"
    raise kit.FrameError("bad_side", f"dir={fill.get('dir')!r} side={order_side!r}")


def _fill_event(pair: Any, recv_ts: float, meta: kit.Metadata) -> LiquidationEvent | None:
    if (not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str)
            or not isinstance(pair[1], dict)):
        raise kit.FrameError("unexpected_shape", "fill is not a [user, fill] pair")
    user, fill = pair[0].lower(), pair[1]
    liq = fill.get("liquidation")
    if liq is None:
        return None
    if not isinstance(liq, dict) or not isinstance(liq.get("liquidatedUser"), str):
        raise kit.FrameError("unexpected_shape", "liquidation without liquidatedUser")
    if liq["liquidatedUser"].lower() != user or user in LIQUIDATORS:
        return None  # a counterparty's fill (maker, vault): the liquidated trader's is counted
    return _event(kit.required_str(fill, "coin"), _fill_side(fill), kit.num_str(fill, "px"),
                  kit.num_str(fill, "sz"), _time_ms(fill), fill.get("tid"), user, recv_ts, False, meta, fill.get("sz"))


def _parse_node(msg: Any, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    if isinstance(msg, list):  # node_fills: one [user, fill] per line
        pairs: list[Any] = [msg]
    else:  # node_fills_by_block: one block per line
        pairs = msg.get("events")
        if not isinstance(pairs, list):
            raise kit.FrameError("unexpected_shape", "block without an events list")
    events = [ev for ev in (_fill_event(p, recv_ts, meta) for p in pairs) if ev is not None]
    return kit.parsed("data", tuple(events))


def _ordinary_ws_trades(msg: Any) -> bool:
    """True for a well-formed public ``trades`` frame none of whose trades involves exactly
    one liquidator vault: exactly the frames ``_parse_ws`` returns as data without events
    and without a dead letter. Anything else is left to the full path."""
    data = msg.get("data")
    if msg.get("channel") != "trades" or type(data) is not list:
        return False
    for trade in data:
        users = trade.get("users") if type(trade) is dict else None
        if type(users) is not list or len(users) != 2:
            return False
        buyer, seller = users
        if type(buyer) is not str or type(seller) is not str:
            return False
        if (buyer.lower() in LIQUIDATORS) != (seller.lower() in LIQUIDATORS):
            return False
    return True


def _ordinary_fills(pairs: Any) -> bool:
    """True for node fills (a list of ``[user, fill]`` pairs) none of which carries a
    ``liquidation``: exactly those ``_parse_node`` returns as data without events."""
    if type(pairs) is not list:
        return False
    for pair in pairs:
        if (type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str
                or type(pair[1]) is not dict or pair[1].get("liquidation") is not None):
            return False
    return True


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    # "{" or "[" first can never strip to the greeting: strip only the others.
    if text[:1] != "{" and text[:1] != "[" and text.strip() == CONNECTED:
        return kit.INFO
    msg = kit.loads(text)
    # Early skips: public trades without a backstop liquidation and node fills without a
    # liquidation (the bulk of both feeds) are data without events before anything is built,
    # as the full path returns them. The JSON is still decoded: a corrupt frame stays a dead
    # letter.
    if type(msg) is dict:
        if "channel" in msg:
            if _ordinary_ws_trades(msg):
                return kit.DATA
        elif _ordinary_fills(msg.get("events")):
            return kit.DATA
    elif type(msg) is list and _ordinary_fills([msg]):
        return kit.DATA
    if isinstance(msg, dict) and "channel" in msg:
        return _parse_ws(msg, recv_ts, meta)
    if isinstance(msg, list) or (isinstance(msg, dict) and "events" in msg):
        return _parse_node(msg, recv_ts, meta)
    raise kit.FrameError("unexpected_shape", "neither a websocket message nor a node fills line")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="ws (backstop only): HLP liquidator vault is the buyer (users[0]) -> long, the "
              "seller -> short; node fills: the liquidated user's own fill, dir Long/Short, "
              "else order side A -> long, B -> short",
    unit_rule="sz base coin, px USDC (as USD): notional sz*px; builder (HIP-3) dex coins: null "
              "notional; allMids mids in USDC per coin (kPEPE per 1000)",
    sampled=True,  # the default source (ws) is backstop-only
    feed="default: public `trades` per coin, kept where an HLP liquidator vault is a "
         "counterparty; with `--venue-urls hyperliquid.node_fills=file:///…/node_fills/hourly`: "
         "the fills a non-validator node writes (a file followed as a stream).",
    coverage="default source is **backstop-only** (most liquidations never touch the "
             "vault, and a vault's own unwinds can look alike): a heuristic **floor**. The node "
             "source is complete for anyone running a node (`liqstress_source_sampled` 0).",
    sampled_for=lambda urls: _node_url(urls) is None,  # node fills are complete
    drop_before_subscribe=True,
    subscribe_for=subscribe_messages,
    ping_interval=15.0,  # a stall within 30 s; the server drops a client silent for 60 s
    pong_timeout=10.0,
    # Frames: a block's trades of one coin, allMids (~500 coins): the 1 MiB default.
    default_urls={"ws": WS_URL, "rest": REST},
    optional_urls={"prices": "ws", "node_fills": "file"},
    off_urls=("prices",),
    oi_source=kit.url_has(OI_BODY),
    oi_rule="metaAndAssetCtxs: openInterest coins, valued at markPx (USDC as USD); funding "
            "per 1 h; no venue time (receipt time)",
)
