"""dYdX v4: ``LIQUIDATED`` trades on the indexer's per-market ``v4_trades`` channel.

- Endpoint: ``wss://indexer.dydx.trade/v4/ws``; markets from REST ``GET {rest}/v4/perpetualMarkets``
  (indexer, ``https://indexer.dydx.trade``): every market with ``status`` ``ACTIVE``.
- Subscribe: one ``{"type":"subscribe","channel":"v4_trades","id":"<MARKET>"}`` per market; there
  is no all-markets form. The indexer allows at most 32 ``v4_trades`` subscriptions per connection
  (``V4_TRADES_CHANNEL_LIMIT``, dYdX docs "Indexer Rate Limits" and socks ``config.ts``), so
  markets are spread over several connections by ``clobPairId``: connection ``trades-<k>`` holds
  the ACTIVE markets with ``clobPairId // 32 == k``. The split is stable: a new listing gets a
  new, higher clobPairId and lands in the last group (subscribed on the live connection through
  ``subscribe_for`` after a metadata refresh) or opens a new connection; existing markets never
  move, so no connection ever goes past 32.
- Frames: ``connected`` (info); ``subscribed`` = the ack AND a snapshot of recent trade HISTORY
  (up to 100 trades, which can include old liquidations: one third party saw 78 in the snapshot
  and none live in 24 min): ``Parsed(kind="ack", snapshot=True)``, never counted;
  ``channel_data`` (``contents.trades``) and ``channel_batch_data`` (``contents`` = list of
  ``{"trades": [...]}``) are live trades.
- What counts: only trades with ``type`` ``LIQUIDATED``. ``DELEVERAGED`` (ADL: a profitable
  counterparty's position closed to absorb a bankrupt one) is a different event and is kept
  apart: never an event, never in the totals; a frame holding only ADL, ``LIMIT`` or ``MARKET``
  trades is kind ``info`` (visible in ``liqstress_source_frames_total{kind="info"}``).
- Side: ``side`` is the TAKER side, and the taker of a liquidation trade is the liquidation order:
  ``SELL`` closes a long, ``BUY`` closes a short (reasoned from the field definition; a third
  party could not yet confirm it against the book).
- Units: ``size`` is base units, ``price`` USD (USDC-settled, USD-quoted perps; no contract
  multiplier on v4): notional = ``size × price``; no metadata needed, so never unpriced.
- Time: ``createdAt`` (ISO 8601, UTC) of each trade. ``id`` is the venue trade id, used as the
  event's ``venue_id`` so the same fill seen again (reconnect, snapshot overlap) dedupes.
- Sampling: trade prints, complete for what the indexer publishes (``sampled=False``).
- Liveness: the indexer sends a protocol ping every 30 s and drops us without a pong within 10 s;
  the websockets library answers those. For the app-level check, ``{"type":"ping"}`` is not
  usable: the current socks server accepts it silently (older versions answered ``pong``). We
  send ``{"type":"unsubscribe","channel":"v4_trades","id":"liqstress-heartbeat-<n>"}``
  instead: the server always answers an unsubscribe with ``unsubscribed`` and an unsubscribe of
  something not subscribed is a documented no-op (socks ``subscription.ts``); the id is never a
  market ticker (tickers are upper case). That ``unsubscribed`` (and a legacy ``pong``) is kind
  ``pong``. Unsubscribes are not rate limited, unlike pings (5/s) and invalid messages.
- Open interest and funding: one ``GET {rest}/v4/perpetualMarkets?limit=1000`` per poll (the
  metadata listing, with a query of its own so the two are told apart in recordings; 1000 is
  the indexer's default limit). Per ACTIVE market: ``openInterest`` in coins of the base,
  valued at ``oraclePrice`` (USD; the price v4 margins and funds with; a market without one
  gets a null USD value); ``nextFundingRate`` is the predicted rate of the next HOURLY payment
  (interval 1 h). The body has no time: ``ts`` is the receipt time.
- History (the warm start): ``GET {rest}/v4/trades/perpetualMarket/{ticker}?limit=1000`` per
  ACTIVE market, newest first (comlink ``trades-controller.ts``: TAKER fills only, so ``side``
  is the taker's, as live), paged back with ``createdBeforeOrAtHeight`` = the height of the
  oldest row read (rows of that height come again and are dropped by id) until a row is older
  than the window or a page is short. The rows are the trades of the live channel, parsed by
  the same ``_liquidation``: the same trade id gives the same event id, so a liquidation seen
  live and in the history counts once. The page cap was 100 in older indexers and is 1000
  now; a page under 100 rows is the last under either. The indexer rate-limits by IP (its
  numbers were not looked up): at most 4 requests a second here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from liqstress.event import LiquidationEvent

from . import kit

ID = "dydx"
WS_URL = "wss://indexer.dydx.trade/v4/ws"
REST = "https://indexer.dydx.trade"
CHANNEL = "v4_trades"
#: v4_trades subscriptions the indexer accepts per connection (V4_TRADES_CHANNEL_LIMIT).
MARKETS_PER_CONNECTION = 32
HEARTBEAT_ID = "liqstress-heartbeat-"
LIQUIDATED = "LIQUIDATED"


@dataclass(frozen=True, slots=True)
class DydxInstrument(kit.Instrument):
    #: The market's CLOB pair id: assigned once, in listing order; it fixes the connection.
    clob_pair_id: int = 0


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, "/v4/perpetualMarkets")]


def _pair(ticker: str) -> tuple[str, str] | None:
    base, sep, quote = ticker.rpartition("-")
    return (base, quote) if sep and base and quote else None


def _rest_error(msg: dict[str, Any]) -> str | None:
    return str(msg["errors"])[:200] if "errors" in msg else None


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    markets = kit.member(msg, "markets", dict)
    active: dict[str, kit.Instrument] = {}
    for key, item in markets.items():
        if not isinstance(item, dict) or item.get("status") != "ACTIVE":
            continue
        ticker = item.get("ticker") or key
        pair = _pair(ticker) if isinstance(ticker, str) else None
        raw_clob = item.get("clobPairId")  # a string of digits (an int from older indexers)
        if type(raw_clob) is str and raw_clob.isascii() and raw_clob.isdigit():
            clob = int(raw_clob)
        elif type(raw_clob) is int:
            clob = raw_clob
        else:
            continue
        if pair is None or not 0 <= clob < 2**32:
            continue
        active[ticker] = DydxInstrument(symbol=ticker, base=pair[0], quote=pair[1],
                                        market="linear", clob_pair_id=clob)
    if not active:
        # An empty listing would start no connection at all: retry rather than run blind.
        raise kit.FrameError("no_active_markets", f"{len(markets)} markets, none ACTIVE")
    # The listing is complete: markets no longer ACTIVE leave (a reconnect drops them).
    meta.instruments.clear()
    meta.instruments.update(active)


OI_QUERY = "/v4/perpetualMarkets?limit=1000"


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, OI_QUERY)]


def oi_source(source: str) -> bool:
    """The OI poll: the markets listing WITH a query (the metadata URL has none)."""
    return "/v4/perpetualMarkets?" in source


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    markets = kit.member(msg, "markets", dict)

    def build(item: Any) -> kit.OpenInterest | None:
        if not isinstance(item, dict):
            raise kit.FrameError("unexpected_shape", "market is not an object")
        if item.get("status") != "ACTIVE":
            return None  # settled or paused: not followed (as in the metadata)
        ticker = kit.required_str(item, "ticker")
        pair = _pair(ticker)
        if pair is None:
            raise kit.FrameError("unknown_symbol", ticker[:100])
        coins = kit.num_str(item, "openInterest")
        oracle = kit.num_str(item, "oraclePrice") if item.get("oraclePrice") not in (
            None, "") else None
        price = oracle if oracle is not None and oracle > 0 else None
        return kit.oi_record(exchange=ID, symbol=ticker, base=pair[0], market="linear",
                             oi_coins=coins, oi_usd=None if price is None else coins * price,
                             price=price, funding_rate=kit.num_str(item, "nextFundingRate"),
                             funding_interval_hours=1.0, ts=recv_ts, recv_ts=recv_ts)

    return kit.oi_frame(markets.values(), build)


def subscribe_messages(markets: Sequence[str]) -> list[str]:
    return [orjson.dumps({"type": "subscribe", "channel": CHANNEL, "id": m}).decode()
            for m in markets]


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    groups: dict[int, list[str]] = {}
    for symbol, inst in meta.instruments.items():
        if isinstance(inst, DydxInstrument):
            groups.setdefault(inst.clob_pair_id // MARKETS_PER_CONNECTION, []).append(symbol)
    url = urls.get("ws", WS_URL)
    return [kit.Connection(name=f"trades-{k}", url=url, subscribe=tuple(subscribe_messages(sorted(m))),
                       topics=tuple(sorted(m)))
            for k, m in sorted(groups.items())]


def ping_message(seq: int) -> str:
    return orjson.dumps({"type": "unsubscribe", "channel": CHANNEL,
                         "id": f"{HEARTBEAT_ID}{seq}"}).decode()


#: The indexer's ``createdAt``: ISO 8601 in UTC with a ``Z``, optional fraction of a second.
_ISO_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?Z")


def _timestamp(trade: dict[str, Any]) -> float:
    raw = kit.required_str(trade, "createdAt")
    if not _ISO_UTC.fullmatch(raw):  # fromisoformat also takes dates, week dates, offsets...
        raise kit.FrameError("bad_timestamp", f"createdAt={raw!r}"[:200])
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise kit.FrameError("bad_timestamp", f"createdAt={raw!r}"[:200]) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _liquidation(market: str, trade: Any, recv_ts: float) -> LiquidationEvent | None:
    """The event for one trade if it is a liquidation, None for any other trade type."""
    if not isinstance(trade, dict):
        raise kit.FrameError("unexpected_shape", "trade is not an object")
    kind = trade.get("type")
    if not isinstance(kind, str):
        raise kit.FrameError("missing_field", "type")
    if kind.upper() != LIQUIDATED:
        return None  # LIMIT/MARKET fills, DELEVERAGED (ADL) and anything newer: not counted
    pair = _pair(market)
    if pair is None:
        raise kit.FrameError("unknown_symbol", market[:100])
    side = kit.side_from_order_side(str(trade.get("side", "")))
    size, price = kit.num_str(trade, "size"), kit.num_str(trade, "price")
    if size < 0 or price <= 0:
        raise kit.FrameError("bad_number", f"size={trade.get('size')!r} price={trade.get('price')!r}")
    ts = _timestamp(trade)
    trade_id = trade.get("id")
    return kit.event(
        exchange=ID, symbol=market, base=pair[0], quote=pair[1], market="linear", side=side,
        price=price, qty=size, notional_usd=size * price, ts=ts, recv_ts=recv_ts,
        sampled=False, qty_raw=trade.get("size"),
        venue_id=trade_id if isinstance(trade_id, str) and trade_id else None)


def _trade_lists(msg: dict[str, Any]) -> list[Any]:
    contents = msg.get("contents")
    batches = contents if msg["type"] == "channel_batch_data" else [contents]
    if not isinstance(batches, list):
        raise kit.FrameError("unexpected_shape", "contents is not a list")
    out = []
    for batch in batches:
        if not isinstance(batch, dict) or not isinstance(batch.get("trades"), list):
            raise kit.FrameError("unexpected_shape", "contents without a trades list")
        out.append(batch["trades"])
    return out


def _snapshot(market: str, msg: dict[str, Any], recv_ts: float) -> list[LiquidationEvent]:
    """Liquidations in the subscribe snapshot, only to count what is dropped: history is never
    new, so a malformed old trade must not cost us the ack."""
    events: list[LiquidationEvent] = []
    try:
        lists = _trade_lists(msg)
    except kit.FrameError:
        return events
    for trades in lists:
        for trade in trades:
            try:
                ev = _liquidation(market, trade, recv_ts)
            except kit.FrameError:
                continue
            if ev is not None:
                events.append(ev)
    return events


def _ordinary_trades(msg: dict[str, Any]) -> bool:
    """True for a well-formed live ``v4_trades`` frame (``channel_data`` or
    ``channel_batch_data``) none of whose trades is ``LIQUIDATED``: exactly the frames the full
    path below returns as info without a dead letter. ``subscribed`` (ack + snapshot) and
    anything odd are left to the full path."""
    kind = msg.get("type")
    if kind == "channel_data":
        batches: Any = [msg.get("contents")]
    elif kind == "channel_batch_data":
        batches = msg.get("contents")
    else:
        return False
    market = msg.get("id")
    if msg.get("channel") != CHANNEL or type(market) is not str or not market \
            or type(batches) is not list:
        return False
    for batch in batches:
        trades = batch.get("trades") if type(batch) is dict else None
        if type(trades) is not list:
            return False
        for trade in trades:
            if type(trade) is not dict:
                return False
            typ = trade.get("type")
            if type(typ) is not str or typ.upper() == LIQUIDATED:
                return False
    return True


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.frame_object(text)
    # Early skip: live frames are mostly ordinary fills; they are info before anything is
    # built. The JSON is still decoded: a corrupt frame stays a dead letter.
    if _ordinary_trades(msg):
        return kit.INFO
    kind = msg.get("type")
    if kind == "connected":
        return kit.INFO
    if kind == "pong":  # older indexers answered {"type":"ping"}
        return kit.PONG
    if kind == "unsubscribed":
        heartbeat = str(msg.get("id", "")).startswith(HEARTBEAT_ID)
        return (kit.PONG if heartbeat else kit.INFO)
    if kind == "error":
        message = str(msg.get("message", ""))
        reason = ("subscribe_error" if "subscri" in message.lower() or msg.get("channel")
                  or msg.get("id") else "venue_error")
        raise kit.FrameError(reason, message[:200])
    if kind not in ("subscribed", "channel_data", "channel_batch_data"):
        raise kit.FrameError("unexpected_shape", f"type {str(kind)[:50]!r}")
    if msg.get("channel") != CHANNEL:
        raise kit.FrameError("unexpected_channel", str(msg.get("channel"))[:100])
    market = kit.required_str(msg, "id")
    if kind == "subscribed":
        return kit.parsed("ack", tuple(_snapshot(market, msg, recv_ts)), snapshot=True)
    events = []
    for trades in _trade_lists(msg):
        for trade in trades:
            ev = _liquidation(market, trade, recv_ts)
            if ev is not None:
                events.append(ev)
    return kit.parsed("data" if events else "info", tuple(events))


HISTORY_PATH = "/v4/trades/perpetualMarket/"
#: Rows asked for per history page, and the fewest a page of an older indexer (cap 100) that
#: is not the last one holds.
HISTORY_LIMIT = 1000
HISTORY_MIN_FULL = 100


def history_topics(meta: kit.Metadata) -> list[str]:
    return sorted(s for s, inst in meta.instruments.items() if isinstance(inst, DydxInstrument))


def history_request(urls: dict[str, str], topic: str, start_ms: int | None, end_ms: int | None,
                    cursor: str | None) -> str:
    """No time parameter: the newest rows first, then back by height (``cursor``)."""
    url = kit.rest_url(urls, REST, f"{HISTORY_PATH}{topic}")
    if start_ms is None:
        return url  # the request's identity (the recorded source)
    url += f"?limit={HISTORY_LIMIT}"
    return url + (f"&createdBeforeOrAtHeight={cursor}" if cursor is not None else "")


def _history_trades(body: str) -> list[Any]:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    return kit.member(msg, "trades", list)


def history_next_page(body: str, start_ms: int) -> str | None:
    trades = _history_trades(body)
    if len(trades) < HISTORY_MIN_FULL:
        return None
    oldest = trades[-1]
    if not isinstance(oldest, dict):
        raise kit.FrameError("unexpected_shape", "trade is not an object")
    if _timestamp(oldest) * 1000 < start_ms:
        return None
    height = oldest.get("createdAtHeight")
    if not (type(height) is str and height.isascii() and height.isdigit()):
        raise kit.FrameError("missing_field", "createdAtHeight")
    return height


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One page of a market's trades (source ``history+…/perpetualMarket/<ticker>``): its
    ``LIQUIDATED`` rows, as the live parser reads them."""
    market = source.rpartition(HISTORY_PATH)[2].partition("?")[0]
    if not market:
        raise kit.FrameError("unexpected_source", source[:200])
    events = [ev for trade in _history_trades(text)
              if (ev := _liquidation(market, trade, recv_ts)) is not None]
    return kit.parsed("data" if events else "info", tuple(events))


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page=history_next_page,
    parse=parse_history, max_rate=4.0, max_pages=200,
    rule="24 h: trades per ACTIVE market, paged back by height (1000 a page), LIQUIDATED "
         "rows; 4 requests/s")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="type LIQUIDATED trades; side is the taker = liquidation order side: SELL -> long, "
              "BUY -> short; DELEVERAGED (ADL) not counted",
    unit_rule="size base units, price USD: notional size*price",
    sampled=False,
    feed="v4 indexer `v4_trades` per ACTIVE market (at most 32 per connection), trades of "
         "`type: LIQUIDATED`; new listings subscribed on refresh.",
    coverage="complete trade prints; the subscribe snapshot is history (dropped), so a "
             "disconnect loses what happened meanwhile; `DELEVERAGED` (ADL) is not counted.",
    ping_interval=15.0,  # a stall within 30 s
    pong_timeout=10.0,
    # Frames: the subscribe snapshot of one market's recent trades (~100 x 0.2 KB) is the
    # biggest.
    max_frame_bytes=256 * 1024,
    subscribe_for=subscribe_messages,
    metadata_refresh=900.0,
    default_urls={"ws": WS_URL, "rest": REST},
    oi_rule="perpetualMarkets: openInterest coins, valued at oraclePrice (USD); nextFundingRate "
            "per 1 h; no venue time (receipt time)",
    history=HISTORY,
)
