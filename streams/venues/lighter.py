"""Lighter (zk perp DEX): the ``liquidation_trades`` of the per-market ``trade/{market_id}`` channel.

- Feed: ``wss://mainnet.zklighter.elliot.ai/stream`` (public, no auth; ``?readonly=true`` is the
  variant for restricted regions, set through the ``ws`` URL override). There is no all-markets
  trade channel, so one ``{"type":"subscribe","channel":"trade/{market_id}"}`` per market.
  Every trade frame (``subscribed/trade`` or ``update/trade``, channel ``trade:{market_id}``)
  carries ``trades`` and, as a separate, disjoint array, ``liquidation_trades``; only entries of
  the latter with ``type == "liquidation"`` count (``deleverage`` is the ADL counterparty,
  ``trade`` an ordinary print). A missing or null ``liquidation_trades`` is empty (the venue
  omits it: tardis-node ``test/mappers.test.ts`` "map lighter trade messages").
- Markets: ``GET {rest}/api/v1/orderBookDetails``, ``order_book_details[]`` with
  ``market_type == "perp"`` and ``status == "active"``, keyed by ``market_id``. Ids are kept as
  their exact decimal string: they became 64-bit in September 2026 (nautilus_trader
  ``crates/adapters/lighter/test_data/http_order_book_details_widened_ids.json``), and nothing
  here ever turns one into a float. Refreshed hourly; new listings are subscribed on the live
  connection (``subscribe_for``). Metadata only names the market: an entry of a market id that
  is not in it keeps the id as symbol and base, with ``notional_usd`` null (counted as
  unpriced).
- Side: there is no side field; the liquidated account is the TAKER (the engine sends IoC orders
  for the margin-called account; belyjelli/ai-rates ``liqlighter.go``: on 15 live liquidations,
  7 long and 8 short, the taker paid the 1 % liquidation fee and ``taker_position_size_before``
  had the sign opposite to its trade). So the sign of ``taker_position_size_before`` is the
  position: ``+`` long, ``-`` short. Without it, ``is_maker_ask``: ``false`` (the taker sold)
  -> long, ``true`` (the taker bought) -> short, the rule of tardis-node's
  ``LighterLiquidationMapper`` too. Every real capture (tardis-node, ai-rates,
  choosemycoins/hftbacktest) agrees both ways. When both are present and disagree, that fill
  is a dead letter ``side_conflict`` (``Parsed.rejected``): the frame's other liquidations
  still count, and the raw frame is kept in the dead letter. A zero position before is no
  position to liquidate: ``bad_side``.
- Units: ``usd_amount`` is the venue's USD (USDC) value of the fill (= ``size`` in base units x
  ``price`` in USDC: 0.01664 x 75602.8 = 1258.030592 in the tardis capture); qty is ``size``.
- Completeness: every liquidation fill is a print, nothing is sampled (``sampled=False``). One
  liquidation order filling against several makers gives several entries, one event each (the
  notional sums are right either way).
- Ids: ``trade_id`` (exact 64-bit integer; ``trade_id_str`` where given must agree) is the venue
  id, so a re-delivered liquidation has the same event id and counts once.
- Replay: the ``subscribed/trade`` reply to every subscribe replays the market's recent prints
  and liquidations (hours to days old: hftbacktest's CRV replay carries one 46 h older than the
  newest trade). That frame is the subscribe ack, and its events are history
  (``Parsed.snapshot``: dropped and counted as such). ``drop_before_subscribe`` is NOT used: all
  markets share one connection, so its cut-off would move with every later ack and drop live
  liquidations of markets subscribed earlier whose block time lags our receipt time.
- Subscribe pacing: the venue allows an IP 50 unacknowledged client messages and 200 a minute
  (nautilus_trader ``common/rate_limit.rs``; df-lighter-core ``limits.rs``), and a burst of
  subscribes past the first cap is refused with 30009/30010. So a (re)connect sends the first
  ``WINDOW`` subscribes, and each ``subscribed/trade`` ack carries (``Parsed.reply``) the
  subscribe of the market ``WINDOW`` places further in the connection's list: never more than
  ``WINDOW`` in flight. The list is metadata order (first listing first), which a refresh only
  appends to, so positions never shift under a running chain. And the connection is paced
  (``Connection.send_rate``/``send_burst``: the first ``WINDOW`` at once, then ``SEND_RATE``,
  2.67 a second): at most 180 subscribes in any minute, leaving room for the pings, so the 200
  a minute holds however many perps the venue lists (a full resubscribe of 300 markets takes
  about 105 s).
- History (the warm start, ``HISTORY``): ``GET {rest}/api/v1/trades?market_id=<M>&sort_by=
  timestamp&sort_dir=desc&type=liquidation&limit=100`` per market, then ``&cursor=<next_cursor>``
  until a page is empty, has no cursor, or reaches a row older than the window. Public (the
  generated SDK's ``OrderApi.md``: "No authorization required"; df-lighter-core
  ``markets/trades.rs``: "A market's history ... [is] public"), newest first, 100 a page at
  most (nautilus_trader ``http/client.rs``). Its rows are the trade schema of the channel
  (nautilus_trader's mainnet ``http_recent_trades.json`` capture has the same fields as the
  tardis entry), read by ``_event``: the same ``trade_id``, the same id. Unverified: the
  ``type`` filter (nautilus_trader ``http/query.rs`` sends it; rows are filtered here too) and
  a liquidation row from this endpoint (none captured). 0.5 requests/s: 60 a minute per IP
  without an account, ``trades`` weighing 600 of the premium 24,000 (apidocs "Rate Limits").
- Liveness: ``{"type":"ping"}`` every 15 s, answered ``{"type":"pong"}`` (ai-rates measured the
  reply; the venue closes a connection that sent nothing for 2 minutes, measured at 120 s).
  Control frames: ``{"type":"connected","session_id":...}`` greets, ``{"error":{"code":...,
  "message":...}}`` refuses (naming no channel; hftbacktest's mainnet captures); 30003
  "Already Subscribed" is harmless (``info``), any other 2xxxx/3xxxx code a ``subscribe_error``
  dead letter (this connection only subscribes and pings), other codes ``venue_error``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from liqstress.event import LiquidationEvent
from liqstress.labels import Side

from . import kit

ID = "lighter"
WS_URL = "wss://mainnet.zklighter.elliot.ai/stream"
REST = "https://mainnet.zklighter.elliot.ai"
DETAILS_PATH = "/api/v1/orderBookDetails"
#: Every Lighter (Ethereum) perp settles in USDC (ai-rates ``adapters/lighter/lighter.go``).
QUOTE = "USDC"
#: Subscribes in flight at once: below the venue's 50 per IP with room for our pings.
WINDOW = 20
#: The venue's budget of client messages per IP and minute.
MAX_PER_MINUTE = 200
#: Our subscribes per second after a first ``WINDOW`` (``Connection.send_rate``): in any
#: minute at most WINDOW + 60 x SEND_RATE = 180, leaving room for the pings (4 a minute).
SEND_RATE = (MAX_PER_MINUTE - 20 - WINDOW) / 60.0
PING = '{"type":"ping"}'
#: "Already Subscribed to : ...": a duplicate subscribe (a new listing the refresh and the ack
#: chain both asked for), refused without harm.
ALREADY_SUBSCRIBED = 30003

_MAX_ID = 2**63
#: A market or trade id as the venue writes it: canonical decimal digits, at most 19.
_ID = re.compile(r"0|[1-9][0-9]{0,18}")
_CHANNEL = re.compile(r"trade:(0|[1-9][0-9]{0,18})")


# ---- metadata ------------------------------------------------------------------------------

def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, DETAILS_PATH)]


def _rest_error(msg: dict[str, Any]) -> str | None:
    code = msg.get("code")
    if code is None or code == 200:
        return None
    return f"code={code!r} {str(msg.get('message'))[:200]!r}"


def _market_id(val: Any) -> str | None:
    """A JSON integer market id as its exact decimal string, or None."""
    if type(val) is int and 0 <= val < _MAX_ID:
        return str(val)
    return None


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    """``orderBookDetails``: the active perps of ``order_book_details`` (spot books are in
    ``spot_order_book_details`` and never liquidate). One odd row is left out, not the load."""
    msg = kit.rest_json(body, dict, "orderBookDetails is not an object", _rest_error)
    details = kit.member(msg, "order_book_details", list)
    found = 0
    for item in details:
        if not isinstance(item, dict):
            continue
        if item.get("market_type", "perp") != "perp" or item.get("status", "active") != "active":
            continue
        market, symbol = _market_id(item.get("market_id")), item.get("symbol")
        if market is None or not isinstance(symbol, str) or not symbol:
            continue
        # Updating an existing key keeps its place: the subscribe chain relies on that order.
        meta.instruments[market] = kit.Instrument(symbol=symbol, base=symbol, quote=QUOTE,
                                                  market="linear")
        found += 1
    if not found:
        raise kit.FrameError("unexpected_shape", "orderBookDetails without an active perp")


def markets(meta: kit.Metadata) -> list[str]:
    """The market ids a connection subscribes, in metadata order (first listed first)."""
    return list(meta.instruments)


# ---- connections ---------------------------------------------------------------------------

def subscribe_message(market: str) -> str:
    return orjson.dumps({"type": "subscribe", "channel": f"trade/{market}"}).decode()


def subscribe_messages(market_ids: Sequence[str]) -> list[str]:
    """One subscribe (hence one ack) per market: the channel takes no lists."""
    return [subscribe_message(m) for m in market_ids]


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    ids = markets(meta)
    # Without markets the connection would subscribe nothing and look healthy while silent: a
    # metadata refresh starts it once markets are known.
    if not ids:
        return []
    # Only the first window goes out on connect; each ack sends the next (``_chained``). Up
    # once every market is acknowledged.
    return [kit.Connection(name="trades", url=urls.get("ws", WS_URL),
                           subscribe=subscribe_messages(ids[:WINDOW]), topics=tuple(ids),
                           expected_acks=len(ids), send_rate=SEND_RATE, send_burst=WINDOW)]


def ping_message(seq: int) -> str:
    return PING


def _chained(market: str, meta: kit.Metadata) -> str | None:
    """The subscribe an ack of ``market`` releases: the market ``WINDOW`` places further."""
    ids = markets(meta)
    try:
        nxt = ids.index(market) + WINDOW
    except ValueError:
        return None
    return subscribe_message(ids[nxt]) if nxt < len(ids) else None


# ---- frames --------------------------------------------------------------------------------

def _channel_market(msg: dict[str, Any]) -> str:
    channel = msg.get("channel")
    m = _CHANNEL.fullmatch(channel) if type(channel) is str else None
    if m is None or int(m.group(1)) >= _MAX_ID:
        raise kit.FrameError("unexpected_channel", str(channel)[:100])
    return m.group(1)


def _trade_id(entry: dict[str, Any]) -> str:
    tid, text = entry.get("trade_id"), entry.get("trade_id_str")
    if tid is None and text is None:
        raise kit.FrameError("missing_field", "trade_id")
    if tid is not None:
        out = _market_id(tid)
        if out is None:
            raise kit.FrameError("bad_id", f"trade_id={tid!r}"[:200])
        if text is not None and text != out:
            raise kit.FrameError("bad_id", f"trade_id={tid!r} trade_id_str={text!r}"[:200])
        return out
    if type(text) is not str or not _ID.fullmatch(text) or int(text) >= _MAX_ID:
        raise kit.FrameError("bad_id", f"trade_id_str={text!r}"[:200])
    return text


def _side(entry: dict[str, Any]) -> Side:
    """The liquidated position: the taker's, by the sign of its position before the fill,
    checked against (or, without it, read from) the side of the trade."""
    by_trade: Side | None = None
    maker_ask = entry.get("is_maker_ask")
    if maker_ask is not None:
        if type(maker_ask) is not bool:
            raise kit.FrameError("bad_side", f"is_maker_ask={maker_ask!r}"[:200])
        # The maker's ask filled means the taker bought, which closes a short.
        by_trade = "short" if maker_ask else "long"
    if entry.get("taker_position_size_before") is None:
        if by_trade is None:
            raise kit.FrameError("missing_field", "taker_position_size_before/is_maker_ask")
        return by_trade
    before = kit.num_str(entry, "taker_position_size_before")
    if before == 0:
        raise kit.FrameError("bad_side", "taker_position_size_before=0: no position to liquidate")
    by_position: Side = "long" if before > 0 else "short"
    if by_trade is not None and by_trade != by_position:
        raise kit.FrameError("side_conflict", (
            f"trade_id={entry.get('trade_id')!r}: taker_position_size_before="
            f"{entry.get('taker_position_size_before')!r} ({by_position}) but "
            f"is_maker_ask={maker_ask!r} ({by_trade})")[:300])
    return by_position


def _read(entry: dict[str, Any]) -> tuple[Side, float, float, float, float, str]:
    """What a liquidation entry says without its market: position side, size, price, USD,
    time (s) and trade id. ``FrameError`` for an entry that cannot be read."""
    side = _side(entry)
    size, price = kit.num_str(entry, "size"), kit.num_str(entry, "price")
    usd = kit.num_str(entry, "usd_amount")
    if not (size > 0 and price > 0 and usd >= 0):
        raise kit.FrameError("bad_number", f"size={size!r} price={price!r} usd_amount={usd!r}")
    return side, size, price, usd, kit.ms(entry, "timestamp"), _trade_id(entry)


def _event(entry: dict[str, Any], market: str, recv_ts: float,
           meta: kit.Metadata) -> LiquidationEvent:
    own = entry.get("market_id")
    if own is not None and _market_id(own) != market:
        raise kit.FrameError("unexpected_shape", f"market_id={own!r} on trade:{market}"[:200])
    side, size, price, usd, ts, venue_id = _read(entry)
    inst = meta.get(market)
    if inst is None:  # listed after our last metadata load: named by its id, not priced
        symbol = base = market
        notional: float | None = None
    else:
        symbol, base, notional = inst.symbol, inst.base, usd
    return kit.event(exchange=ID, symbol=symbol, base=base, quote=QUOTE, market="linear",
                     side=side, price=price, qty=size, notional_usd=notional, ts=ts,
                     recv_ts=recv_ts, sampled=False, qty_raw=entry["size"], venue_id=venue_id)


def _liquidations(msg: dict[str, Any]) -> list[Any]:
    entries = msg.get("liquidation_trades")
    if entries is None:
        return []
    if type(entries) is not list:
        raise kit.FrameError("unexpected_shape", "liquidation_trades is not a list")
    return entries


def _update(msg: dict[str, Any], recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    market = _channel_market(msg)
    entries = _liquidations(msg)
    if not entries:  # the usual frame: ordinary prints only
        return kit.DATA
    events: list[LiquidationEvent] = []
    rejected: list[tuple[str, str]] = []
    for e in kit.objects(entries, "liquidation trade"):
        if e.get("type") != "liquidation":
            continue
        try:
            events.append(_event(e, market, recv_ts, meta))
        except kit.FrameError as exc:
            if exc.reason != "side_conflict":
                raise
            # That fill alone: the frame's other liquidations still count.
            rejected.append((exc.reason, exc.detail))
    return kit.parsed("data", tuple(events),
                      unpriced=sum(1 for e in events if e.notional_usd is None),
                      rejected=tuple(rejected))


def _subscribed(msg: dict[str, Any], recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """The ack of one market, with its replayed history. A replayed entry that cannot be read
    is left out rather than failing the frame: its events are dropped anyway, and a dead
    letter here would lose the ack, keeping the connection from ever coming up while the
    venue replays that entry (for days)."""
    market = _channel_market(msg)
    events = []
    entries = msg.get("liquidation_trades")
    for entry in entries if type(entries) is list else ():
        if type(entry) is dict and entry.get("type") == "liquidation":
            try:
                events.append(_event(entry, market, recv_ts, meta))
            except kit.FrameError:
                continue
    return kit.parsed("ack", tuple(events), snapshot=True, reply=_chained(market, meta))


def _error(msg: dict[str, Any]) -> kit.Parsed:
    err = msg.get("error")
    if isinstance(err, dict):
        code, text = err.get("code"), err.get("message")
    elif err is not None:
        code, text = None, err
    else:  # the ``{"type":"error","code":...}`` form
        code, text = msg.get("code"), msg.get("message")
    if type(code) is int and code == ALREADY_SUBSCRIBED:
        return kit.INFO
    detail = f"code={code!r} {str(text)[:200]}"
    # 2xxxx request validation, 3xxxx websocket subscription state (nautilus_trader consts):
    # on this connection, which only subscribes and pings, both are a refused subscribe.
    if type(code) is int and 20_000 <= code < 40_000:
        raise kit.FrameError("subscribe_error", detail)
    raise kit.FrameError("venue_error", detail)


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.frame_object(text)
    kind = msg.get("type")
    if kind == "update/trade":
        return _update(msg, recv_ts, meta)
    if kind == "subscribed/trade":
        return _subscribed(msg, recv_ts, meta)
    if kind == "pong":
        return kit.PONG
    if "error" in msg or kind == "error":
        return _error(msg)
    if kind in ("connected", "unsubscribed", "ping"):
        return kit.INFO
    if type(kind) is str and kind.startswith(("update/", "subscribed/")):
        raise kit.FrameError("unexpected_channel", str(msg.get("channel"))[:100])
    raise kit.FrameError("unexpected_shape", f"type={kind!r}"[:100])


# ---- history (the warm start) ------------------------------------------------------------

HISTORY_PATH = "/api/v1/trades"
#: Rows a page: the venue's cap (above it ``20001 invalid param``: nautilus_trader
#: ``http/client.rs`` ``LIGHTER_REST_PAGE_SIZE``; df-lighter-core ``MOST_TRADES``).
HISTORY_LIMIT = 100
#: Requests per second: an IP without an account gets 60 requests a rolling minute, and
#: ``trades`` weighs 600 of the premium tier's 24,000 (apidocs "Rate Limits"), so at most 40 a
#: minute; 30 leaves the metadata refresh its share.
HISTORY_RATE = 0.5
#: Pages per market at most: 2,000 liquidation fills in the window.
HISTORY_MAX_PAGES = 20


def history_topics(meta: kit.Metadata) -> list[str]:
    """The markets the live connection subscribes."""
    return markets(meta)


def history_request(urls: dict[str, str], topic: str, start_ms: int | None,
                    end_ms: int | None, cursor: str | None) -> str:
    """No time parameter (the meaning of ``from`` is not documented): a market's
    liquidations newest first, then back by the venue's ``next_cursor``."""
    return kit.history_url(kit.rest_url(urls, REST, f"{HISTORY_PATH}?market_id={topic}"),
                           start_ms, "sort_by=timestamp&sort_dir=desc&type=liquidation"
                           f"&limit={HISTORY_LIMIT}", cursor)


def _history_page(body: str) -> tuple[list[Any], str | None]:
    """(rows, the next page's cursor or None) of one ``trades`` body; a ``code`` other than
    200 is the venue refusing us (``rest_error``)."""
    msg = kit.rest_json(body, dict, "trades body is not an object", _rest_error)
    rows = msg.get("trades")
    if rows is None:  # an empty page may come as null
        rows = []
    if type(rows) is not list:
        raise kit.FrameError("unexpected_shape", "trades is not a list")
    cursor = msg.get("next_cursor")
    if cursor is None or cursor == "":
        return rows, None
    if type(cursor) is not str:
        raise kit.FrameError("unexpected_shape", f"next_cursor={cursor!r}"[:100])
    return rows, cursor


def _history_liquidations(rows: list[Any]) -> list[dict[str, Any]]:
    """The rows of type ``liquidation`` (also filtered here: the ``type`` parameter is not
    shown to work). A row without a type fails the page rather than reading as no
    liquidation."""
    out = []
    for row in kit.objects(rows, "trade"):
        kind = row.get("type")
        if type(kind) is not str:
            raise kit.FrameError("missing_field", "type")
        if kind == "liquidation":
            out.append(row)
    return out


def history_next_page(body: str, start_ms: int) -> str | None:
    """The cursor of the next page while the page has rows, none older than the window; a
    page whose liquidations the parser refuses raises the same reason (the market is given up,
    not read as complete)."""
    rows, cursor = _history_page(body)
    for row in _history_liquidations(rows):
        _read(row)
    if not rows or cursor is None:
        return None
    oldest = min(kit.ms(row, "timestamp") for row in rows)
    return None if round(oldest * 1000) < start_ms else cursor


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One page of a market's liquidations (source ``history+…/api/v1/trades?market_id=<M>``):
    each row read as the live parser reads a ``liquidation_trades`` entry, so a liquidation
    seen live and read back has one id (its ``trade_id``)."""
    market = source.partition("market_id=")[2].partition("&")[0]
    if not _ID.fullmatch(market) or int(market) >= _MAX_ID:
        raise kit.FrameError("unexpected_source", source[-100:])
    rows, _ = _history_page(text)
    events = tuple(_event(row, market, recv_ts, meta) for row in _history_liquidations(rows))
    return kit.parsed("data" if events else "info", events,
                      unpriced=sum(1 for e in events if e.notional_usd is None))


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page=history_next_page,
    parse=parse_history, max_rate=HISTORY_RATE, max_pages=HISTORY_MAX_PAGES,
    rule="24 h: /api/v1/trades per active perp, type=liquidation, newest first, 100 a page "
         "back by next_cursor; rows read as live (trade_id, taker side); the type filter and "
         "a liquidation row of this endpoint unverified against the venue; 0.5 requests/s "
         "(60/min per IP, trades weight 600)")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="the liquidated account is the taker: taker_position_size_before > 0 -> long, "
              "< 0 -> short; without it is_maker_ask false (taker sold) -> long, true -> "
              "short; the two disagreeing -> dead letter side_conflict",
    unit_rule="usd_amount (venue USDC value of the fill, = size base x price USDC); qty size "
              "in base units; a market id missing from orderBookDetails: null notional",
    sampled=False,  # every liquidation fill is a print
    feed="`wss://mainnet.zklighter.elliot.ai/stream`, one `trade/{market_id}` subscription "
         "per active perp of `orderBookDetails`, keeping `liquidation_trades` entries of type "
         "`liquidation`; new listings subscribed on refresh.",
    coverage="complete: every liquidation fill is a print (one event per fill); the "
             "recent prints replayed in each subscribe reply are history (dropped); `deleverage` "
             "(ADL) not counted.",
    subscribe_for=subscribe_messages,
    ping_interval=15.0,  # a stall within 30 s; the venue closes a client silent for 2 min
    pong_timeout=10.0,
    # subscribed/trade replays ~50 prints (49,611 bytes for CRV in hftbacktest's capture):
    # the 1 MiB default leaves room for a busy block.
    default_urls={"ws": WS_URL, "rest": REST},
    history=HISTORY,
)
