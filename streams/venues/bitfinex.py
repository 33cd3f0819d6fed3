"""Bitfinex: the public liquidation feed, ``status`` channel with key ``liq:global`` (derivatives
and margin positions, all symbols in one subscription).

- Endpoint and subscribe: ``wss://api-pub.bitfinex.com/ws/2``, one message
  ``{"event":"subscribe","channel":"status","key":"liq:global"}``, acknowledged by
  ``{"event":"subscribed","channel":"status","chanId":N,"key":"liq:global"}`` (docs
  ``ws-public-status``). A subscribe refused is ``{"event":"error","code":103xx,...}``
  (``subscribe_error``; 10300 failed, 10301 already subscribed, 10302 unknown channel, 10305
  channel limit: bitfinex-api-go ``docs/ws_v2.md``, docs ``ws-general``); any other error frame
  is ``venue_error``.
- Channel routing: data frames are arrays ``[CHAN_ID, payload, ...]`` that name the channel only
  by the numeric id of the ack. ``parse`` is pure and sees one frame at a time, so the ack's id
  cannot reach it (nor a replay of a recording that kept the data frames but not, under another
  raw policy, every ack). The choice: this connection carries exactly ONE subscription, so every
  array frame on it is ``liq:global``; the chanId is only checked to be a positive integer
  (0 is the authenticated channel, never ours: ``unexpected_channel``), and the payload is held
  to the liquidation row layout instead (``"pos"`` tag, field types), which catches a frame of
  another channel far better than the id would. The simulator tests pin that the ack's chanId
  is the one on the data frames.
- Rows: ``["pos", POS_ID, MTS, null, SYMBOL, AMOUNT, BASE_PRICE, null, IS_MATCH,
  IS_MARKET_SOLD, null, LIQUIDATION_PRICE, ...]`` (docs ``ws-public-status``; the REST twin
  ``rest-public-liquidations`` calls index 11 ``PRICE_ACQUIRED``). Position 1 of a frame holds
  either a list of rows or one row (both shapes in bitfinex-api-go ``pkg/mux/msg/msg_test.go``);
  ``[]`` (nothing to report) is info. Fields appended after index 11, and the ``seq, ts`` that the
  ``conf`` flags append to a frame, are ignored (ws-general: "new fields may be appended").
- One event per liquidated position: a liquidation sends one ``IS_MATCH=0`` row (the "initial
  liquidation trigger", carrying the whole position) and zero or more ``IS_MATCH=1`` rows
  ("market execution", partial amounts of the same ``POS_ID``: the tardis-node capture has
  -8.6007 ETH trigger and -4.5667 ETH match of position 143679087). Only the trigger counts; a
  match is info (counting it too would count the position twice; tardis-node's mapper does the
  same).
- Side: the sign of ``AMOUNT`` is the POSITION: positive = long, negative = short (REST doc:
  "Positive values means a long position, negative values means a short position"; the captured
  long was taken at 9080 below its 9135.97 entry, the short at 235.52 above its 222.25 entry).
  ``AMOUNT`` 0 has no side (``bad_number``).
- Units and price: ``|AMOUNT|`` is base units. ``BASE_PRICE`` is the ENTRY price ("The price at
  which user entered the position") and is never used. The price is index 11 ("Price at which
  the liquidation was triggered"), notional = ``|AMOUNT| × price``, USD when the quote is USD or
  USDt (``USTF0``/``UST``), otherwise null (unpriced; EURt-margined perps ``...:EUTF0``, BTC- or
  EUR-quoted margin pairs). A trigger whose index 11 is null (the captured ETH one) has no
  liquidation price anywhere in its row, and an event needs one: that position is the dead
  letter ``no_liquidation_price`` (``Parsed.rejected``: the frame's other positions still
  count; the frame is kept raw, so a re-parse can count it once the event schema allows an
  event without a price), never priced with ``BASE_PRICE``.
- Symbols: ``t<BASE>F0:<QUOTE>F0`` are the perpetuals (``tBTCF0:USTF0``): market ``linear``
  (collateral and quote USDt). Every other ``t`` pair is a margin position on a spot pair:
  market ``spot``, ``t<BASE><QUOTE>`` with 3-letter codes (``tBTCUSD``) or ``t<BASE>:<QUOTE>``
  (``tDOGE:USD``). Bitfinex's currency codes ``UST``/``EUT``/``UDC`` are reported as USDT/EURT/
  USDC. Anything else (funding ``f`` symbols, odd shapes) is ``unknown_symbol``. No REST
  metadata is needed.
- Time: ``MTS`` (ms; the docs' example has a fractional one, accepted). Dedupe id: ``POS_ID``
  (one counted row per position, so the id is stable across reconnects and replays).
- Coverage: every liquidated position, derivatives and margin, in one global channel; no
  throttling documented: ``sampled`` is False.
- History: the first data frame after a subscribe replays the latest liquidation (tardis-node:
  position 143683674 dated 12 h before its frame, the 7th message of the connection): dropped by
  ``drop_before_subscribe`` (events dated before the ack).
- History (the warm start): ``GET https://api-pub.bitfinex.com/v2/liquidations/hist?start=..&
  end=..&limit=500&sort=-1`` (docs ``rest-public-liquidations``; 500 as ccxt pages), one
  market-wide topic, newest first, paged back by ``end``. Rows are the live rows, each wrapped
  in one more list, read by the live ``_row``/``_event``: one event per trigger, POS_ID ids,
  the sign of AMOUNT, index 11 never BASE_PRICE, derivatives AND margin as live. The REST
  history leaves index 11 of a trigger EMPTY (ccxt PR #20989: the trigger at ...752 ms without
  a price, match rows at ...753/...757 ms at 42735), where the live parser dead-letters such a
  trigger. So a trigger without a price is priced at the match rows (IS_MATCH 1) of the same
  POS_ID in the same page, their mean weighted by amount; one without either is left out and
  its page dead-lettered ``no_liquidation_price`` (``Parsed.rejected``: the page's other events
  still count). The id stays the POS_ID one, so a position seen live and in the history counts
  once; its price (and notional) may differ by that rule: the first one the worker sees is
  kept. Each page re-reads ``MATCH_SPREAD_MS`` above the oldest row of the page before, so a
  trigger and its matches (a few ms apart) are never split by a page boundary. Rate limit:
  "3 reqs/min" (docs): one request every 22 s, retries included.
- Liveness: our ``{"event":"ping","cid":N}`` is answered by ``{"event":"pong","ts":...,"cid":N}``
  (the pong). The ``[CHAN_ID,"hb"]`` heartbeats (every 15 s on an idle channel) are info, never
  pongs: data arriving is not liveness.
- Info frames: ``{"event":"info","version":2,"platform":{"status":1}}`` on connect (a version
  other than 2 is ``venue_error``; status 0 = maintenance, info). Code 20051 (server
  stop/restart, "please reconnect", bitfinex-api-node ``INFO_CODES``) is a ``reconnect`` frame:
  the collector reconnects at once rather than wait for the restarting server's close.
  20060/20061 (maintenance start/end) are info.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from liqstress.event import LiquidationEvent, Market
from liqstress.labels import Side

from . import kit

ID = "bitfinex"
WS_URL = "wss://api-pub.bitfinex.com/ws/2"
CHANNEL = "status"
KEY = "liq:global"
SUBSCRIBE = orjson.dumps({"event": "subscribe", "channel": CHANNEL, "key": KEY}).decode()
#: The API version this parser reads (bitfinex-api-node refuses any other).
API_VERSION = 2
#: Info codes (bitfinex-api-node ``lib/transports/ws2.js`` ``INFO_CODES``).
INFO_RESTART = 20051
INFO_MAINTENANCE_START = 20060
INFO_MAINTENANCE_END = 20061
#: Error codes that answer a subscribe (bitfinex-api-go ``docs/ws_v2.md``; 10305 ws-general).
SUBSCRIBE_ERROR_CODES = (10300, 10301, 10302, 10305)
#: Names of a row's fields by index (docs ``ws-public-status``).
ROW_FIELDS = ("MSG_TYPE", "POS_ID", "MTS", "_3", "SYMBOL", "AMOUNT", "BASE_PRICE", "_7",
              "IS_MATCH", "IS_MARKET_SOLD", "_10", "LIQUIDATION_PRICE")
#: Bitfinex currency codes -> the names the other venues use.
_CURRENCY = {"UST": "USDT", "EUT": "EURT", "UDC": "USDC"}
#: Quotes valued as USD (issue 14: USD and USDt; any other quote leaves the notional null).
USD_QUOTES = ("USD", "USDT")
_CODE = re.compile(r"[A-Z0-9]+")
_DERIV_SUFFIX = "F0"
_MAX_INT = 2**63


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    return [kit.Connection(name="public", url=urls.get("ws", WS_URL), subscribe=(SUBSCRIBE,),
                           topics=(KEY,))]


def ping_message(seq: int) -> str:
    return orjson.dumps({"event": "ping", "cid": seq}).decode()


def _currency(code: str) -> str:
    return _CURRENCY.get(code, code)


def symbol_pair(symbol: str) -> tuple[str, str, Market]:
    """(base, quote, market) of a liquidation's pair: ``tBTCF0:USTF0`` (perpetual, linear),
    ``tBTCUSD`` / ``tDOGE:USD`` (margin on a spot pair)."""
    body = symbol[1:]
    if symbol[:1] != "t" or not body:
        raise kit.FrameError("unknown_symbol", symbol[:100])
    base, colon, quote = body.partition(":")
    if not colon:
        if len(body) != 6:  # without a colon both codes have 3 letters (ws-general)
            raise kit.FrameError("unknown_symbol", symbol[:100])
        base, quote = body[:3], body[3:]
    if not (_CODE.fullmatch(base) and _CODE.fullmatch(quote)):
        raise kit.FrameError("unknown_symbol", symbol[:100])
    deriv_base, deriv_quote = base.endswith(_DERIV_SUFFIX), quote.endswith(_DERIV_SUFFIX)
    if deriv_base != deriv_quote:
        raise kit.FrameError("unknown_symbol", symbol[:100])
    if deriv_base:
        base, quote = base[: -len(_DERIV_SUFFIX)], quote[: -len(_DERIV_SUFFIX)]
        if not base or not quote:
            raise kit.FrameError("unknown_symbol", symbol[:100])
        return _currency(base), _currency(quote), "linear"
    return _currency(base), _currency(quote), "spot"


def _mts(row: dict[str, Any]) -> float:
    """Epoch seconds from ``MTS``: integer milliseconds as captured, or a fractional number of
    them as in the docs' example (``1574697680828.2002``)."""
    val = row.get("MTS")
    if type(val) is float:
        ms = kit.json_number(val, "MTS", "bad_timestamp")
        if ms > 0:
            return ms / 1000.0
        raise kit.FrameError("bad_timestamp", f"MTS={val!r}")
    return kit.ms(row, "MTS")


def _pos_id(row: dict[str, Any]) -> int:
    val = row.get("POS_ID")
    if type(val) is not int or not 0 < val < _MAX_INT:
        raise kit.FrameError("missing_field", "POS_ID")
    return val


def _is_match(row: dict[str, Any]) -> bool:
    flag = row.get("IS_MATCH")
    if type(flag) is not int or flag not in (0, 1):
        raise kit.FrameError("unexpected_shape", f"IS_MATCH={flag!r}"[:100])
    return flag == 1


def _row(item: Any) -> dict[str, Any]:
    """A row as a dict of its named fields (so the kit's readers name the field at fault)."""
    if type(item) is not list or not item or item[0] != "pos":
        raise kit.FrameError("unexpected_shape", "row is not a pos array")
    if len(item) < len(ROW_FIELDS):
        raise kit.FrameError("missing_field", ROW_FIELDS[len(item)])
    return dict(zip(ROW_FIELDS, item, strict=False))


def _event(row: dict[str, Any], recv_ts: float) -> LiquidationEvent:
    """The event of a trigger row (IS_MATCH 0)."""
    pos_id = _pos_id(row)
    symbol = kit.required_str(row, "SYMBOL")
    base, quote, market = symbol_pair(symbol)
    amount = kit.num(row, "AMOUNT")
    if amount == 0:
        raise kit.FrameError("bad_number", "AMOUNT=0")
    side: Side = "long" if amount > 0 else "short"
    ts = _mts(row)
    if row["LIQUIDATION_PRICE"] is None:
        # No liquidation price in the row and BASE_PRICE is the entry: nothing to price it with.
        raise kit.FrameError("no_liquidation_price", f"POS_ID={pos_id} {symbol}"[:200])
    price = kit.num(row, "LIQUIDATION_PRICE")
    if not price > 0:
        raise kit.FrameError("bad_number", f"LIQUIDATION_PRICE={price!r}")
    qty = abs(amount)
    notional = qty * price if quote in USD_QUOTES else None
    return kit.event(exchange=ID, symbol=symbol, base=base, quote=quote, market=market,
                     side=side, price=price, qty=qty, notional_usd=notional, ts=ts,
                     recv_ts=recv_ts, sampled=False, venue_id=str(pos_id))


def _rows(payload: list[Any]) -> list[Any]:
    """Position 1 of a data frame: a list of rows, or one row (``"pos"`` first)."""
    return [payload] if payload and payload[0] == "pos" else payload


def _data(frame: list[Any], recv_ts: float) -> kit.Parsed:
    chan_id = frame[0]
    if type(chan_id) is not int or chan_id < 0:
        raise kit.FrameError("unexpected_shape", "channel id is not an integer")
    if chan_id == 0:  # the account channel of an authenticated connection, never ours
        raise kit.FrameError("unexpected_channel", "chanId=0")
    if len(frame) < 2:
        raise kit.FrameError("unexpected_shape", "channel frame without payload")
    payload = frame[1]
    if payload == "hb":
        return kit.INFO  # a heartbeat: sent by the server on its own, so no reply to our ping
    if type(payload) is not list:
        raise kit.FrameError("unexpected_shape", f"payload {str(payload)[:50]!r}")
    events: list[LiquidationEvent] = []
    rejected: list[tuple[str, str]] = []
    for item in _rows(payload):
        row = _row(item)
        if _is_match(row):
            continue  # an execution of a position whose trigger is the counted row
        try:
            events.append(_event(row, recv_ts))
        except kit.FrameError as exc:
            if exc.reason != "no_liquidation_price":
                raise
            # That position alone: the frame's other positions still count.
            rejected.append((exc.reason, exc.detail))
    if not events and not rejected:
        return kit.INFO
    return kit.parsed("data", tuple(events),
                      unpriced=sum(1 for e in events if e.notional_usd is None),
                      rejected=tuple(rejected))


def _control(msg: dict[str, Any]) -> kit.Parsed:
    event = msg.get("event")
    if event == "pong":
        return kit.PONG
    if event == "subscribed":
        if msg.get("channel") != CHANNEL or msg.get("key") != KEY:
            raise kit.FrameError("unexpected_channel",
                                 f"{msg.get('channel')!r} {msg.get('key')!r}"[:100])
        return kit.ACK
    if event == "error":
        code = msg.get("code")
        detail = f"code={code!r} {str(msg.get('msg'))[:200]}"
        if code in SUBSCRIBE_ERROR_CODES or "channel" in msg or "key" in msg:
            raise kit.FrameError("subscribe_error", detail)
        raise kit.FrameError("venue_error", detail)
    if event == "info":
        version = msg.get("version")
        if version is not None and version != API_VERSION:
            raise kit.FrameError("venue_error", f"API version {str(version)[:20]}")
        if msg.get("code") == INFO_RESTART:
            return kit.RECONNECT
        # Platform status (1 operative, 0 maintenance), 20060/20061 (maintenance start/end):
        # nothing for a reader to do.
        return kit.INFO
    if event is None:
        raise kit.FrameError("unexpected_shape", "object without event")
    return kit.INFO  # unsubscribed, conf


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.loads(text)
    if type(msg) is list:
        if not msg:
            raise kit.FrameError("unexpected_shape", "empty array")
        return _data(msg, recv_ts)
    if type(msg) is dict:
        return _control(msg)
    raise kit.FrameError("unexpected_shape", "frame is neither an array nor an object")


# ---- history (the warm start) ------------------------------------------------------------

REST = "https://api-pub.bitfinex.com"
HISTORY_PATH = "/v2/liquidations/hist"
#: Items a page holds (ccxt pages with 500; the docs give no maximum).
HISTORY_LIMIT = 500
#: Milliseconds a page re-reads above the oldest row of the page before it: the match rows of
#: a trigger come a few ms after it (1 to 9 ms in the samples), so a trigger cut off at a page
#: boundary finds its matches again in the next page.
MATCH_SPREAD_MS = 5_000


def history_topics(meta: kit.Metadata) -> list[str]:
    return [KEY]  # one market-wide listing, as the live feed


def history_request(urls: dict[str, str], topic: str, start_ms: int | None,
                    end_ms: int | None, cursor: str | None) -> str:
    """Newest first (``sort=-1``), paged back by ``end`` (``cursor``)."""
    url = kit.rest_url(urls, REST, HISTORY_PATH)
    if start_ms is None:
        return url  # the request's identity (the recorded source)
    end = cursor if cursor is not None else str(end_ms)
    return f"{url}?start={start_ms}&end={end}&limit={HISTORY_LIMIT}&sort=-1"


def _history_items(body: str) -> tuple[int, list[dict[str, Any]]]:
    """(items in the body, its rows). Each item is one row wrapped in a list (a bare row is
    read too); ``["error", code, text]`` is the venue refusing."""
    msg = kit.loads(body)
    if type(msg) is list and msg[:1] == ["error"]:
        raise kit.FrameError("rest_error", str(msg)[:200])
    if type(msg) is dict:  # {"error": "ERR_RATE_LIMIT"} and the like
        raise kit.FrameError("rest_error", str(msg)[:200])
    if type(msg) is not list:
        raise kit.FrameError("unexpected_shape", "REST body is not a list")
    rows: list[dict[str, Any]] = []
    for item in msg:
        if type(item) is not list:
            raise kit.FrameError("unexpected_shape", "item is not a list")
        rows += [_row(r) for r in _rows(item)]
    return len(msg), rows


def _row_ms(row: dict[str, Any]) -> int:
    return round(_mts(row) * 1000)


def history_next_page(body: str, start_ms: int) -> str | None:
    items, rows = _history_items(body)
    if items < HISTORY_LIMIT or not rows:
        return None
    times = [_row_ms(r) for r in rows]
    oldest, newest = min(times), max(times)
    if oldest < start_ms:
        return None
    # Re-read MATCH_SPREAD_MS above the oldest row (its repeats dedupe by id) while that still
    # drops the newest rows; else from the oldest millisecond, and past it only when the
    # whole page is one millisecond (rows beyond the page in it are then lost).
    if newest > oldest + MATCH_SPREAD_MS:
        return str(oldest + MATCH_SPREAD_MS)
    return str(oldest if newest > oldest else oldest - 1)


def _match_price(fills: list[tuple[float, float]]) -> float:
    """The mean price of a position's match rows, weighted by their amounts, to 12 digits."""
    size = sum(a for a, _ in fills)
    return float(f"{sum(a * p for a, p in fills) / size:.12g}")


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One page: one event per trigger row (IS_MATCH 0), by the live ``_event`` (same id,
    side, units). A trigger without a price of its own (the REST history leaves index 11 of
    triggers empty) is priced at its match rows of the same page (IS_MATCH 1, same POS_ID);
    one without either is left out and the page dead-lettered ``no_liquidation_price``."""
    _, rows = _history_items(text)
    fills: dict[int, list[tuple[float, float]]] = {}
    for row in rows:
        if _is_match(row) and row["LIQUIDATION_PRICE"] is not None:
            amount, price = abs(kit.num(row, "AMOUNT")), kit.num(row, "LIQUIDATION_PRICE")
            if amount > 0 and price > 0:
                fills.setdefault(_pos_id(row), []).append((amount, price))
    events: list[LiquidationEvent] = []
    priceless: list[tuple[str, str]] = []
    for row in rows:
        if _is_match(row):
            continue
        if row["LIQUIDATION_PRICE"] is None:
            matched = fills.get(_pos_id(row))
            if not matched:
                priceless.append(("no_liquidation_price", f"POS_ID={_pos_id(row)} "
                                  f"{row.get('SYMBOL')}: no price and no match row"[:200]))
                continue
            row = {**row, "LIQUIDATION_PRICE": _match_price(matched)}
        events.append(_event(row, recv_ts))
    return kit.parsed("data" if events else "info", tuple(events),
                      unpriced=sum(1 for e in events if e.notional_usd is None),
                      rejected=tuple(priceless))


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page=history_next_page,
    parse=parse_history, max_rate=0.045, max_pages=30,
    rule="24 h: every liquidated position (derivatives and margin) in one market-wide walk, "
         "500 rows a page newest first; 3 requests a minute: one page every 22 s; a trigger "
         "without a price (REST leaves it out) is priced at its match rows of the page")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="sign of AMOUNT is the position: positive -> long, negative -> short; only the "
              "IS_MATCH=0 trigger row counts (one event per position), match rows are info",
    unit_rule="|AMOUNT| base units x index 11 (liquidation price; BASE_PRICE is the entry, "
              "unused); USD for USD/USDt quotes (tBTCF0:USTF0 linear, tBTCUSD margin spot), "
              "other quotes null; a trigger without index 11 is a no_liquidation_price dead letter",
    sampled=False,
    feed="`wss://api-pub.bitfinex.com/ws/2`, `status` channel with key `liq:global`: "
         "derivatives and margin positions of every symbol in one subscription.",
    coverage="complete: every liquidated position, one event per position (the "
             "`IS_MATCH=0` trigger row; match rows are its executions); no throttling documented. "
             "The liquidation replayed after a subscribe is dropped; a trigger without a "
             "liquidation price is a dead letter.",
    ping_interval=15.0,  # a stall within 30 s
    pong_timeout=10.0,
    # Frames: one liquidation row each, a few on subscribe; a few KB at most.
    max_frame_bytes=256 * 1024,
    # The first data frame after a subscribe replays the latest liquidation.
    drop_before_subscribe=True,
    metadata_refresh=0.0,
    default_urls={"ws": WS_URL, "rest": REST},
    history=HISTORY,
)
