"""Deribit: liquidations are flagged inside the public trade prints (JSON-RPC 2.0 websocket).

- Endpoint: ``wss://www.deribit.com/ws/api/v2``. On connect we send ``public/set_heartbeat``
  (``HEARTBEAT_INTERVAL`` s) and one ``public/subscribe`` for ``CHANNELS``: the trades of every
  future (perpetuals are kind ``future``) per settlement currency, ``trades.future.{BTC,ETH}``
  (inverse, coin-settled) and ``trades.future.{USDC,USDT}`` (linear: ``BTC_USDC-PERPETUAL``,
  ``SOL_USDC-PERPETUAL``, ...; the docs list BTC, ETH, USDC, USDT, EURR and ``any`` as the
  channel's currencies). ``100ms`` batches the prints of 100 ms into one notification without
  merging them (``raw`` needs authentication). Options and combos are not subscribed.
  The subscribe result lists the channels accepted; an empty list is a ``subscribe_error``.
- Liquidations: only trades carrying ``liquidation`` count; other trades are ignored (kind
  ``info``, never dead letters). ``direction`` is the TAKER's order side.
  ``T`` (taker liquidated): the liquidated position is the opposite of ``direction``
  (sell -> long). ``M`` (maker liquidated): the maker's order side is the opposite of
  ``direction``, so the position has the same sign as ``direction`` (buy -> long).
  ``MT`` (both sides liquidated): one long AND one short event, each for the whole amount.
  (cryptofeed and aggr use ``direction`` for every case, which inverts ``M``.)
- Units: inverse instruments (``BTC-PERPETUAL``, ``ETH-27DEC26``: no ``_`` in the name, quoted
  in USD) have ``amount`` in USD: notional = ``amount``, qty = ``amount / price``. Linear
  instruments (``{BASE}_{QUOTE}-...``, USDC/USDT-settled) have ``amount`` in base: notional =
  ``amount × price``. A linear quote that is not a USD stablecoin stays unpriced (null), and an
  instrument name of neither shape (options, combos) is a ``unsupported_instrument`` frame.
- Time: the trade's ``timestamp`` (ms). Dedupe id: ``trade_id`` (``trade_id:long`` /
  ``trade_id:short`` for the two events of an ``MT`` trade).
- Coverage: complete for what it covers (every liquidation prints as a trade): ``sampled`` is
  False. Options liquidations are not covered.
- Liveness: the server sends ``heartbeat``/``test_request`` every ``HEARTBEAT_INTERVAL`` s and
  closes the connection unless each is answered with ``public/test`` (``Parsed.reply``); our
  own app ping is ``public/test`` too, whose ``{"result": {"version": ...}}`` reply is the pong.
- Replay: the trades channels send no history on subscribe, so nothing is dropped; ids dedupe
  anything seen twice.
- Open interest and funding (REST poll): ``GET /api/v2/public/get_book_summary_by_currency?
  currency=<C>&kind=future``, one request per settlement currency of ``CHANNELS`` (BTC, ETH,
  USDC, USDT: 4 requests a poll). ``open_interest`` is USD for inverse perpetuals/futures
  (``BTC-PERPETUAL``: oi_usd = open_interest, coins = open_interest / mark_price) and base coin
  for linear ones (``BTC_USDC-PERPETUAL``: coins = open_interest, USD = coins x mark_price; a
  quote that is not a USD stablecoin leaves USD null). Price: the row's ``mark_price``.
  Funding: ``funding_8h`` (a fraction per 8 h, perpetuals only; ``current_funding`` is not
  used), dated futures None. Time: ``creation_timestamp`` (ms).
- History (the warm start): ``GET /api/v2/public/get_last_trades_by_currency_and_time?
  currency=<C>&kind=future&start_timestamp=..&end_timestamp=..&count=1000&sorting=asc`` per
  currency of ``CHANNELS``: EVERY futures trade of the window, oldest first, of which the ones
  flagged ``liquidation`` are read by the live ``_trade_events`` (same ``trade_id``, same
  event ids). Paged forward with ``start_timestamp`` = the last row's millisecond while
  ``has_more`` (that millisecond's rows come again and are dropped by id). Costly: 24 h of BTC
  futures prints are tens of thousands of trades, so tens of pages; Deribit's public requests
  draw on a credit budget (its numbers not verified here): at most 5 requests a second.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from liqstress.event import Market
from liqstress.labels import Side

from . import kit

ID = "deribit"
WS_URL = "wss://www.deribit.com/ws/api/v2"
REST = "https://www.deribit.com"
OI_PATH = "/api/v2/public/get_book_summary_by_currency"
#: One channel per currency: BTC and ETH hold the inverse perpetuals and futures, USDC (and
#: USDT) the linear ones. ``trades.future.any.100ms`` would cover all of them in one channel.
CHANNELS: tuple[str, ...] = (
    "trades.future.BTC.100ms",
    "trades.future.ETH.100ms",
    "trades.future.USDC.100ms",
    "trades.future.USDT.100ms",
)
#: Seconds between the server's ``test_request``s (Deribit's minimum is 10).
HEARTBEAT_INTERVAL = 30
#: JSON-RPC ids: the subscribe sequence, the answer to a test_request, our pings (1000 + seq).
SET_HEARTBEAT_ID = 1
SUBSCRIBE_ID = 2
TEST_REPLY_ID = 3
PING_ID_BASE = 1000
_SUBSCRIBE_IDS = (SET_HEARTBEAT_ID, SUBSCRIBE_ID)
_USD_QUOTES = ("USD", "USDC", "USDT")
_EXPIRY = re.compile(r"^\d{1,2}[A-Z]{3}\d{2}$")
_FLAGS = ("T", "M", "MT")


def _rpc(req_id: int, method: str, params: dict[str, Any]) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "id": req_id, "method": method,
                         "params": params}).decode()


SET_HEARTBEAT = _rpc(SET_HEARTBEAT_ID, "public/set_heartbeat", {"interval": HEARTBEAT_INTERVAL})
SUBSCRIBE = _rpc(SUBSCRIBE_ID, "public/subscribe", {"channels": list(CHANNELS)})
#: What a ``test_request`` must be answered with.
TEST_REPLY = _rpc(TEST_REPLY_ID, "public/test", {})


def rest_urls(urls: dict[str, str]) -> list[str]:
    return []  # units follow from the instrument name; no metadata needed


def oi_currencies() -> list[str]:
    """The settlement currencies of ``CHANNELS`` (``trades.future.BTC.100ms`` -> ``BTC``)."""
    return [channel.split(".")[2] for channel in CHANNELS]


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, f"{OI_PATH}?currency={currency}&kind=future")
            for currency in oi_currencies()]


def oi_source(source: str) -> bool:
    return OI_PATH in source


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    return [kit.Connection(name="public", url=urls.get("ws", WS_URL),
                       subscribe=(SET_HEARTBEAT, SUBSCRIBE), topics=CHANNELS)]


def ping_message(seq: int) -> str:
    return _rpc(PING_ID_BASE + seq, "public/test", {})


def instrument_market(name: str) -> tuple[str, str, Market]:
    """(base, quote, market) of a future/perpetual from Deribit's naming.

    ``BTC-PERPETUAL``/``BTC-27DEC26``: inverse, quoted in USD. ``BTC_USDC-PERPETUAL``/
    ``BTC_USDC-27DEC26``: linear, base and quote around the ``_``. Anything else (options
    ``BTC-27DEC26-60000-C``, combos ``BTC-FS-...``) is not a future we can price."""
    head, sep, tail = name.partition("-")
    if not head or not sep or not (tail == "PERPETUAL" or _EXPIRY.match(tail)):
        raise kit.FrameError("unsupported_instrument", name[:100])
    if "_" in head:
        base, _, quote = head.partition("_")
        if not base or not quote:
            raise kit.FrameError("unsupported_instrument", name[:100])
        return base, quote, "linear"
    return head, "USD", "inverse"


def liquidated_sides(flag: str, direction: str) -> list[Side]:
    """The positions liquidated by one trade. ``direction`` is the taker's order side."""
    taker = kit.side_from_order_side(direction)  # the taker's order closes this position
    maker: Side = "short" if taker == "long" else "long"  # the maker's order is the opposite
    if flag == "T":
        return [taker]
    if flag == "M":
        return [maker]
    if flag == "MT":
        return [taker, maker]
    raise kit.FrameError("bad_side", str(flag)[:20])


def _response(msg: dict[str, Any]) -> kit.Parsed:
    req_id = msg.get("id")
    if "error" in msg:
        err = msg.get("error")
        detail = (f"id={req_id!r} code={err.get('code')!r} {str(err.get('message'))[:200]}"
                  if isinstance(err, dict) else f"id={req_id!r} {str(err)[:200]}")
        raise kit.FrameError("subscribe_error" if req_id in _SUBSCRIBE_IDS else "venue_error", detail)
    result = msg.get("result")
    if req_id == SUBSCRIBE_ID:
        if not isinstance(result, list):
            raise kit.FrameError("unexpected_shape", "subscribe result is not a list")
        if not result:  # Deribit answers with the channels it accepted
            raise kit.FrameError("subscribe_error", "no channel accepted")
        return kit.ACK
    if req_id == SET_HEARTBEAT_ID:
        return kit.ACK
    # public/test (our ping, or our answer to a test_request): {"version": "..."}
    return kit.PONG


def _trade_events(trade: dict[str, Any], recv_ts: float) -> tuple[list[Any], int]:
    flag = trade.get("liquidation")
    if not isinstance(flag, str) or flag not in _FLAGS:
        raise kit.FrameError("bad_side", str(flag)[:20])
    name = kit.required_str(trade, "instrument_name")
    trade_id = trade.get("trade_id")
    if not isinstance(trade_id, str | int) or isinstance(trade_id, bool) or trade_id == "":
        raise kit.FrameError("missing_field", "trade_id")
    base, quote, market = instrument_market(name)
    sides = liquidated_sides(flag, str(trade.get("direction", "")))
    amount, price, ts = kit.num(trade, "amount"), kit.num(trade, "price"), kit.ms(trade, "timestamp")
    if amount <= 0 or price <= 0 or ts <= 0:
        raise kit.FrameError("bad_number", f"amount={trade.get('amount')!r} price={trade.get('price')!r} "
                                       f"timestamp={trade.get('timestamp')!r}")
    notional: float | None
    qty, notional = kit.amounts(amount, price, market)  # inverse amount is USD, linear base
    if quote not in _USD_QUOTES:  # only a linear quote can be: no USD value without a rate
        notional = None
    events = []
    for side in sides:
        venue_id = f"{trade_id}:{side}" if len(sides) > 1 else str(trade_id)
        events.append(kit.event(
            exchange=ID, symbol=name, base=base, quote=quote, market=market, side=side,
            price=price, qty=qty, notional_usd=notional, ts=ts, recv_ts=recv_ts,
            sampled=False, qty_raw=trade.get("amount"), venue_id=venue_id))
    return events, (len(events) if notional is None else 0)


def _ordinary_trades(msg: dict[str, Any]) -> bool:
    """True for a well-formed trades notification none of whose trades is flagged
    ``liquidation``: exactly the frames the full path below returns as info without a dead
    letter. Anything else (a liquidation, any oddity) is left to the full path."""
    params = msg.get("params")
    if msg.get("method") != "subscription" or type(params) is not dict:
        return False
    channel, data = params.get("channel"), params.get("data")
    if type(channel) is not str or not channel.startswith("trades.") or type(data) is not list:
        return False
    for trade in data:
        if type(trade) is not dict or "liquidation" in trade:
            return False
    return True


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.frame_object(text)
    # Early skip: most frames are 100 ms batches of ordinary trades; they are info before
    # anything is built. The JSON is still decoded: a corrupt frame stays a dead letter.
    if _ordinary_trades(msg):
        return kit.INFO
    method = msg.get("method")
    if method is None:
        if "error" in msg or ("id" in msg and "result" in msg):
            return _response(msg)
        raise kit.FrameError("unexpected_shape", "neither a response nor a notification")
    params = kit.member(msg, "params", dict, "params is not an object")
    if method == "heartbeat":
        if params.get("type") == "test_request":
            return kit.Parsed(kind="ping", reply=TEST_REPLY)
        return kit.INFO  # type "heartbeat": the server's own beat
    if method != "subscription":
        raise kit.FrameError("unexpected_shape", f"method {str(method)[:100]!r}")
    channel = params.get("channel")
    if not isinstance(channel, str) or not channel.startswith("trades."):
        raise kit.FrameError("unexpected_channel", str(channel)[:100])
    data = kit.member(params, "data", list, "data is not a list")
    events: list[Any] = []
    unpriced = 0
    for trade in kit.objects(data, "trade"):
        if "liquidation" not in trade:
            continue  # an ordinary trade
        evs, n = _trade_events(trade, recv_ts)
        events += evs
        unpriced += n
    if not events:
        return kit.INFO
    return kit.parsed("data", tuple(events), unpriced=unpriced)


def _rest_error(msg: dict[str, Any]) -> str | None:
    err = msg.get("error")
    if err is None:
        return None
    if isinstance(err, dict):
        return f"code={err.get('code')!r} {str(err.get('message'))[:200]!r}"
    return str(err)[:200]


def _optional(item: dict[str, Any], key: str) -> float | None:
    """A JSON number that Deribit may leave out or send as null (mark, funding)."""
    return None if item.get(key) is None else kit.num(item, key)


def _summary(item: dict[str, Any], recv_ts: float) -> Any:
    name = kit.required_str(item, "instrument_name")
    try:
        base, quote, market = instrument_market(name)
    except kit.FrameError:
        return None  # options, combos: not a future of ours
    oi = kit.num(item, "open_interest")
    mark = _optional(item, "mark_price")
    price = mark if mark is not None and mark > 0 else None
    oi_coins: float | None
    oi_usd: float | None
    if market == "inverse":  # open_interest is USD
        oi_usd = oi
        oi_coins = oi / price if price is not None else None
    else:  # linear: open_interest is base coin
        oi_coins = oi
        usd_quote = quote in _USD_QUOTES
        oi_usd = oi * price if price is not None and usd_quote else None
        if not usd_quote:
            price = None  # a EURR quote is no USD price
    perpetual = name.endswith("-PERPETUAL")
    funding = _optional(item, "funding_8h") if perpetual else None
    ts = kit.ms(item, "creation_timestamp") if item.get("creation_timestamp") is not None \
        else recv_ts
    return kit.oi_record(exchange=ID, symbol=name, base=base, market=market, oi_coins=oi_coins,
                         oi_usd=oi_usd, price=price, funding_rate=funding,
                         funding_interval_hours=8.0 if funding is not None else None,
                         ts=ts, recv_ts=recv_ts)


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.rest_json(body, dict, "book summary is not an object", _rest_error)
    result = kit.member(msg, "result", list, "result is not a list")
    return kit.oi_frame(kit.objects(result, "book summary"),
                        lambda item: _summary(item, recv_ts))


HISTORY_PATH = "/api/v2/public/get_last_trades_by_currency_and_time"
#: Rows per history page (the documented maximum of ``count``).
HISTORY_COUNT = 1000


def history_topics(meta: kit.Metadata) -> list[str]:
    return oi_currencies()


def history_request(urls: dict[str, str], topic: str, start_ms: int | None,
                    end_ms: int | None, cursor: str | None) -> str:
    url = kit.rest_url(urls, REST, f"{HISTORY_PATH}?currency={topic}&kind=future")
    if start_ms is None:
        return url  # the request's identity (the recorded source)
    start = cursor if cursor is not None else str(start_ms)
    return (f"{url}&start_timestamp={start}&end_timestamp={end_ms}&count={HISTORY_COUNT}"
            f"&sorting=asc")


def _history_trades(body: str) -> tuple[list[Any], bool]:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    result = kit.member(msg, "result", dict)
    return kit.member(result, "trades", list), result.get("has_more") is True


def history_next_page(body: str, start_ms: int) -> str | None:
    trades, more = _history_trades(body)
    if not more or not trades:
        return None
    first, last = (round(kit.ms(t, "timestamp") * 1000) for t in kit.objects(
        (trades[0], trades[-1]), "trade"))
    # From the last row's millisecond (its rows come again, dropped by id); a page all in one
    # millisecond moves past it, or it would be read forever.
    return str(last + 1 if last == first else last)


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One page of a currency's futures trades: the ones flagged ``liquidation``, as live."""
    trades, _ = _history_trades(text)
    events: list[Any] = []
    unpriced = 0
    for trade in kit.objects(trades, "trade"):
        if "liquidation" in trade:
            evs, n = _trade_events(trade, recv_ts)
            events += evs
            unpriced += n
    return kit.parsed("data" if events else "info", tuple(events), unpriced=unpriced)


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page=history_next_page,
    parse=parse_history, max_rate=5.0, max_pages=500, newest_first=False,
    rule="24 h: every futures trade per currency (BTC, ETH, USDC, USDT; 1000 a page), "
         "liquidation-flagged ones; 5 requests/s")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="trades with liquidation: T taker liquidated, direction sell -> long; M maker "
              "liquidated, direction buy -> long; MT both: one long and one short",
    unit_rule="inverse (BTC-PERPETUAL, no _): amount USD = notional, qty amount/price; "
              "linear (BTC_USDC-...): amount base, notional amount*price",
    sampled=False,
    feed="`trades.future.{BTC,ETH,USDC,USDT}.100ms`, trades with a `liquidation` field; the "
         "`test_request` heartbeat is answered with `public/test`.",
    coverage="complete trade prints (futures and perpetuals, no options).",
    ping_interval=15.0,  # a stall within 30 s
    pong_timeout=10.0,
    # Frames: 100 ms batches of every trade of a kind and currency (hundreds in a crash):
    # the 1 MiB default.
    metadata_refresh=0.0,
    oi_rule="get_book_summary_by_currency (BTC, ETH, USDC, USDT; kind future): open_interest USD "
            "for inverse (coins = USD / mark_price), base coin for linear _USDC/_USDT (USD = coins "
            "* mark_price); funding_8h per 8 h on perpetuals, dated futures none",
    default_urls={"ws": WS_URL, "rest": REST},
    history=HISTORY,
)
