"""HTX (Huobi) USDT-margined swaps: ``public.*.liquidation_orders`` on the notification endpoint.

- Endpoint: ``wss://api.hbdm.com/linear-swap-notification`` (public topic, no authentication).
- Subscribe: ``{"op":"sub","cid":"liqstress-liq","topic":"public.*.liquidation_orders"}``; the
  ``*`` wildcard covers every USDT-M contract (swaps and USDT-M futures). The ack is
  ``{"op":"sub","cid":...,"topic":...,"ts":...,"err-code":0}``; any other ``err-code`` is a
  ``subscribe_error``.
- Transport: EVERY server frame (acks, pings, data) is gzip-compressed binary (``gzip=True``);
  what we send is plain JSON text.
- Side: ``direction`` is the side of the liquidation ORDER (``offset`` is always ``close``): a
  forced ``sell`` closes a long, a forced ``buy`` closes a short. Any other ``offset`` is refused
  (``unexpected_offset``) rather than guessed.
- Units: ``volume`` is CONTRACTS (0.01 ETH per ETH-USDT contract, for instance), ``amount`` is the
  base coin, ``trade_turnover`` is already the USDT notional. notional = ``trade_turnover``;
  qty = ``amount``. ``volume × price`` would be wrong by the contract size (100× on ETH-USDT) and
  is never used. Without ``trade_turnover`` the notional falls back to ``amount × price`` (base ×
  USDT, same units); without either, qty/notional are null (counted as unpriced). ``price`` is
  the bankruptcy price. USDT is counted 1:1 as USD, as for the other venues.
- Time: ``created_at`` (ms) of each entry; the frame's ``ts`` is the push time.
- Sampling: HTX documents the topic as pushing every liquidation (``sampled=False``); it is sparse
  (0.23 events/min measured by a third party in a quiet period), so silence never means dead.
- Liveness: HTX pings US. It sends ``{"op":"ping","ts":"<ts>"}`` about every 5 s and closes the
  connection ("Bye") after ~5 unanswered pings. ``parse`` answers with
  ``{"op":"pong","ts":<ts>}`` echoing the ``ts`` token byte for byte (HTX sends it as a quoted
  string on pings and as a number on acks, so it is never re-formatted) via ``Parsed.reply``.
  Because the server's pings are the proof that it is alive, a server ping is returned as kind
  ``pong`` (with the reply): the collector's pong timer is reset by every server ping, and a
  server that stops pinging is declared dead after ``pong_timeout``.
  The collector still sends its own ``ping_message`` every ``ping_interval``; HTX's heartbeat is
  one-way, so there is no ping op to send. We send a harmless, answered request instead: a
  repeated subscribe of ``public.BTC-USDT.liquidation_orders`` with a heartbeat ``cid``
  (``liqstress-hb-<n>``). Once the wildcard is subscribed, HTX refuses it with ``err-code`` 2014
  "Repeated subscription" and keeps the connection (measured by a third party, 2026-09-18; HTX
  documents no rate limit for ``sub``). That reply is also a pong. Should HTX ever accept it,
  BTC-USDT would be pushed twice with identical fields, which hash to the same event id and are
  deduplicated by the worker.
- Open interest and funding (REST poll, ``oi_urls``; REST bodies are plain JSON, not gzip): first
  ``GET {rest}/linear-swap-api/v1/swap_batch_funding_rate`` (every USDT-M swap; ``funding_rate``
  a decimal string, a fraction per 8 h: HTX documents no other interval in this listing), kept
  in ``meta.oi_context`` for the next body of the same poll; then
  ``GET {rest}/linear-swap-api/v1/swap_open_interest?business_type=all`` (every swap and USDT-M
  future: no ``contract_code``). ``value`` is already USDT (= USD), ``amount`` is coins,
  ``volume`` contracts (unused); ``trade_*`` are 24 h trading volume, never OI. Dated futures
  have no funding (null). The listing carries no mark price: ``price`` is null. Time: the
  body's ``ts``. Funding older than ``FUNDING_MAX_AGE`` seconds against that ``ts`` is not used.
- Snapshot/replay: none; the topic pushes only new liquidations, and HTX has no native id, so
  events get the hash id of (symbol, time, side, price, volume).
- History (the warm start): ``GET {rest}/v5/market/liquidation_orders?contract_code=<C>&
  start_time=..&end_time=..&limit=100&direct=prev[&from=<id>]`` (what ccxt's
  ``fetch_liquidations`` reads for linear swaps) per USDT-M swap. HTX loads no metadata, so the
  contracts come from the funding listing (``HistorySpec.listing``: one extra request);
  dated USDT-M futures, which the live wildcard covers, are not read back. One request spans 2 h
  at most, so a 24 h window is 12 windows, newest first; inside one, ``from`` = the oldest
  row's id pages back while a page is full (the cursor is ``<window end>[/<id>]``). Rows, all
  strings in the ccxt sample: ``id``, ``contract_code``, ``liquidation_time`` (ms),
  ``side`` (the closing ORDER), ``position_side`` (the liquidated position: the side, checked
  against ``side``), ``volume`` (contracts), ``amount`` (equal to ``volume`` in the sample, so
  not base coins and not read), ``bankrupt_price``, ``trade_turnover`` (USDT notional). The
  event id must be the push's, which hashes (contract, ``created_at`` ms, position side,
  ``repr(float(price))``, ``str(volume)`` of the JSON number): a row is normalised to exactly
  that (``liquidation_time`` -> ms, ``position_side`` -> side, ``bankrupt_price`` as a float,
  ``volume`` ``"2"`` -> ``2``, ``"2.5"`` -> ``2.5``). ASSUMED, not verified against a paired
  capture: the push's ``price`` is the bankruptcy price too (the docs say so, and
  ``trade_turnover`` = base x price holds in both the push capture and the v5 sample) and
  ``created_at`` is ``liquidation_time``. Should either differ, a liquidation that both the
  feed and the history give (the minutes around a start, the durable gap's re-read minute)
  would count twice. Notional = ``trade_turnover`` (as live; USDT 1:1 USD), qty =
  ``trade_turnover / bankrupt_price`` to 12 digits (the push's base ``amount`` on the captured
  numbers); no turnover: unpriced. A ``code`` other than 200 in an HTTP 200 is ``rest_error``
  (that contract's warm start is given up). HTX's v5 limit is not documented where we looked
  (ccxt weighs it as 80 requests/s): 5 requests/s here, about 4 minutes per 100 contracts.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from liqstress.event import LiquidationEvent
from liqstress.labels import Side

from . import kit

ID = "htx"
WS_URL = "wss://api.hbdm.com/linear-swap-notification"
REST = "https://api.hbdm.com"
FUNDING_PATH = "/linear-swap-api/v1/swap_batch_funding_rate"
OI_PATH = "/linear-swap-api/v1/swap_open_interest"
#: Hours between USDT-M swap fundings (the batch listing names no interval).
FUNDING_INTERVAL_HOURS = 8.0
#: Seconds between the funding body's ``ts`` and the open-interest body's ``ts`` beyond which the
#: stashed funding is from another poll and is not used.
FUNDING_MAX_AGE = 120.0
_OI_CONTEXT = "htx_funding"
_USD_QUOTES = ("USDT", "USDC")
TOPIC = "public.*.liquidation_orders"
SUB_CID = "liqstress-liq"
SUBSCRIBE = orjson.dumps({"op": "sub", "cid": SUB_CID, "topic": TOPIC}).decode()
#: The heartbeat request: a subscribe HTX refuses (2014) while the wildcard is active.
HEARTBEAT_CID = "liqstress-hb-"
HEARTBEAT_TOPIC = "public.BTC-USDT.liquidation_orders"
_TOPIC_PREFIX, _TOPIC_SUFFIX = "public.", ".liquidation_orders"

#: The raw JSON token of a top-level "ts" (or "ping") member: a string or a number.
_TS_TOKEN = re.compile(
    r'"(ts|ping)"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    return [kit.Connection(name="linear-swap", url=urls.get("ws", WS_URL), subscribe=(SUBSCRIBE,))]


def ping_message(seq: int) -> str:
    return orjson.dumps({"op": "sub", "cid": f"{HEARTBEAT_CID}{seq}",
                         "topic": HEARTBEAT_TOPIC}).decode()


def _raw_token(text: str, key: str, value: Any) -> str:
    """The exact JSON token the venue sent for ``key`` (echoed byte for byte); falls back to
    re-encoding the parsed value if the raw form cannot be located."""
    for m in _TS_TOKEN.finditer(text):
        if m.group(1) == key:
            token = m.group(2)
            try:
                if orjson.loads(token) == value:
                    return token
            except orjson.JSONDecodeError:
                pass
    return orjson.dumps(value).decode()


def _echo(text: str, key: str, value: Any, reply_key: str, op: bool) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise kit.FrameError("bad_ping", f"{key}={value!r}"[:200])
    token = _raw_token(text, key, value)
    if op:
        return f'{{"op":"pong","{reply_key}":{token}}}'
    return f'{{"{reply_key}":{token}}}'


def _base_quote(entry: dict[str, Any], topic: str) -> tuple[str, str]:
    pair = entry.get("pair")
    if isinstance(pair, str) and pair.count("-") == 1:
        base, quote = pair.split("-")
        if base and quote:
            return base, quote
    code = entry.get("contract_code")
    if not isinstance(code, str) or "-" not in code:
        code = topic[len(_TOPIC_PREFIX):-len(_TOPIC_SUFFIX)] if topic.endswith(_TOPIC_SUFFIX) else ""
    parts = code.split("-")
    if len(parts) >= 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    raise kit.FrameError("unknown_symbol", str(entry.get("contract_code"))[:100])


def _optional_positive(entry: dict[str, Any], key: str) -> float | None:
    if entry.get(key) in (None, ""):
        return None
    val = kit.num(entry, key)
    if val < 0:
        raise kit.FrameError("bad_number", f"{key}={entry.get(key)!r}")
    return val if val > 0 else None


def _control(msg: dict[str, Any], text: str, op: str) -> kit.Parsed:
    if op == "ping":
        if "ts" not in msg:
            raise kit.FrameError("missing_field", "ts")
        return kit.Parsed(kind="pong", reply=_echo(text, "ts", msg["ts"], "ts", op=True))
    if op == "sub":
        cid = str(msg.get("cid") or "")
        if cid.startswith(HEARTBEAT_CID):
            # The reply to our heartbeat (2014 "Repeated subscription", or 0): proof of life.
            return kit.PONG
        code = msg.get("err-code")
        if code in (0, "0"):
            return kit.ACK
        raise kit.FrameError("subscribe_error",
                         f"err-code={code!r} {str(msg.get('err-msg'))[:150]} topic={msg.get('topic')!r}")
    if op == "pong":
        # HTX only sends this to reject one of our pongs (err-code 2011 "invalid pong").
        raise kit.FrameError("venue_error",
                         f"pong refused: err-code={msg.get('err-code')!r} "
                         f"{str(msg.get('err-msg'))[:150]}")
    if op == "error":
        raise kit.FrameError("venue_error",
                         f"err-code={msg.get('err-code')!r} {str(msg.get('err-msg'))[:150]}")
    # "close" (sent just before HTX hangs up), "unsub" acks, "auth": nothing to count.
    return kit.INFO


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.frame_object(text)
    op = msg.get("op")
    if op is None:
        if "ping" in msg:  # the market endpoints' bare form, answered the same way
            return kit.Parsed(kind="pong", reply=_echo(text, "ping", msg["ping"], "pong", op=False))
        raise kit.FrameError("unexpected_shape", "no op")
    if op != "notify":
        return _control(msg, text, str(op))
    topic = msg.get("topic")
    if not isinstance(topic, str) or not (topic.startswith(_TOPIC_PREFIX)
                                          and topic.endswith(_TOPIC_SUFFIX)):
        raise kit.FrameError("unexpected_channel", str(topic)[:100])
    events = []
    unpriced = 0
    for entry in kit.objects(kit.member(msg, "data", list, "data is not a list"), "data entry"):
        symbol = kit.required_str(entry, "contract_code")
        offset = entry.get("offset", "close")
        if str(offset).lower() != "close":
            raise kit.FrameError("unexpected_offset", f"offset={offset!r}")
        side = kit.side_from_order_side(str(entry.get("direction", "")))
        price, ts = kit.num(entry, "price"), kit.ms(entry, "created_at")
        if price <= 0 or ts <= 0:
            raise kit.FrameError("bad_number",
                             f"price={entry.get('price')!r} created_at={entry.get('created_at')!r}")
        volume = entry.get("volume")
        if volume is not None:
            kit.num(entry, "volume")  # contracts: validated, kept only for the dedupe id
        qty = _optional_positive(entry, "amount")
        notional = _optional_positive(entry, "trade_turnover")
        if notional is None and qty is not None:
            notional = qty * price
        if notional is None:
            unpriced += 1
        base, quote = _base_quote(entry, topic)
        events.append(kit.event(
            exchange=ID, symbol=symbol, base=base, quote=quote, market="linear", side=side,
            price=price, qty=qty, notional_usd=notional, ts=ts, recv_ts=recv_ts,
            sampled=False, qty_raw=volume if volume is not None else entry.get("amount")))
    return kit.parsed("data", tuple(events), unpriced=unpriced)


# ---- open interest and funding -------------------------------------------------------------


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    # Funding first: its rates are stashed for the open-interest body of the same poll.
    return [kit.rest_url(urls, REST, FUNDING_PATH),
            kit.rest_url(urls, REST, f"{OI_PATH}?business_type=all")]


def _rest_error(msg: dict[str, Any]) -> str | None:
    if msg.get("status") != "ok":
        return (f"status={msg.get('status')!r} err_code={msg.get('err_code')!r} "
                f"{str(msg.get('err_msg'))[:200]}")
    return None


def _funding(body: str, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    ts = kit.ms(msg, "ts")
    rates: dict[str, float] = {}
    bad = 0
    items = kit.member(msg, "data", list)
    for item in items:
        try:
            if not isinstance(item, dict):
                raise kit.FrameError("unexpected_shape", "funding entry is not an object")
            code = kit.required_str(item, "contract_code")
            if item.get("funding_rate") in (None, "", "null"):
                continue
            rates[code] = kit.num_str(item, "funding_rate")
        except kit.FrameError:
            bad += 1
    if bad and not rates:
        raise kit.FrameError("bad_open_interest", f"{bad} unusable funding rates")
    meta.oi_context[_OI_CONTEXT] = (ts, rates)
    return kit.INFO


def _oi_record(item: Any, ts: float, recv_ts: float,
               funding: dict[str, float]) -> Any:
    if not isinstance(item, dict):
        raise kit.FrameError("unexpected_shape", "open interest entry is not an object")
    code = kit.required_str(item, "contract_code")
    base, quote = _base_quote(item, "")
    # HTX documents amount (and volume) as the SUM OF BOTH buy and sell sides, and value
    # as the value of that total: halved to ONE side, what every other venue reports (Bybit's
    # singleOpenInterest is the same correction).
    coins, value = kit.num(item, "amount") / 2, kit.num(item, "value") / 2
    swap = item.get("contract_type") == "swap" or item.get("business_type") == "swap"
    rate = funding.get(code) if swap else None
    return kit.oi_record(exchange=ID, symbol=code, base=base, market="linear", oi_coins=coins,
                         oi_usd=value if quote in _USD_QUOTES else None, price=None,
                         funding_rate=rate,
                         funding_interval_hours=FUNDING_INTERVAL_HOURS if rate is not None
                         else None, ts=ts, recv_ts=recv_ts)


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    if FUNDING_PATH in source:
        return _funding(body, meta)
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    ts = kit.ms(msg, "ts")
    stashed = meta.oi_context.get(_OI_CONTEXT)
    funding: dict[str, float] = {}
    if stashed is not None and abs(ts - stashed[0]) <= FUNDING_MAX_AGE:
        funding = stashed[1]
    return kit.oi_frame(kit.member(msg, "data", list),
                        lambda item: _oi_record(item, ts, recv_ts, funding))


# ---- history (the warm start) ------------------------------------------------------------

HISTORY_PATH = "/v5/market/liquidation_orders"
#: Rows a page holds at most (v5 ``limit``) and the longest time window one request may span.
HISTORY_LIMIT = 100
HISTORY_WINDOW_MS = 2 * 3_600_000
#: A contract code fit for a query string (``BTC-USDT``; a dated future ``BTC-USDT-211210``).
_CONTRACT = re.compile(r"[A-Z0-9]{1,20}(?:-[A-Z0-9]{1,20}){1,2}")
_POSITION_SIDES = ("long", "short")


def history_topics(meta: kit.Metadata) -> list[str]:
    return []  # no metadata: the topics come from ``history_listing``


def history_listing(urls: dict[str, str]) -> str:
    """Every USDT-M swap, from the funding listing the OI poll reads too (one body)."""
    return kit.rest_url(urls, REST, FUNDING_PATH)


def history_listing_topics(body: str) -> list[str]:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    codes = {item["contract_code"] for item in kit.objects(kit.member(msg, "data", list),
                                                           "funding entry")
             if isinstance(item.get("contract_code"), str)
             and _CONTRACT.fullmatch(item["contract_code"])}
    if not codes:
        raise kit.FrameError("no_active_markets", "no contract in the funding listing")
    return sorted(codes)


def _history_cursor(cursor: str | None, end_ms: int) -> tuple[int, str | None]:
    """(end of the window being read, the id to page back from or None). Our own cursor:
    ``<window end ms>`` for a window's first page, ``<window end ms>/<row id>`` after."""
    if cursor is None:
        return end_ms, None
    end, _, from_id = cursor.partition("/")
    return int(end), from_id or None


def history_request(urls: dict[str, str], topic: str, start_ms: int | None,
                    end_ms: int | None, cursor: str | None) -> str:
    """Newest window first (``direct=prev``: newest rows first, ``from`` pages back)."""
    url = kit.rest_url(urls, REST, f"{HISTORY_PATH}?contract_code={topic}")
    if start_ms is None or end_ms is None:
        return url  # the request's identity (the recorded source)
    window_end, from_id = _history_cursor(cursor, end_ms)
    window_start = max(start_ms, window_end - HISTORY_WINDOW_MS)
    url += (f"&start_time={window_start}&end_time={window_end}&limit={HISTORY_LIMIT}"
            f"&direct=prev")
    return url + (f"&from={from_id}" if from_id is not None else "")


def _history_error(msg: dict[str, Any]) -> str | None:
    """v5 answers ``{"code": 200, "message": "Success", ...}``; anything else, in an HTTP 200
    too, is the venue refusing (older endpoints' ``status: error`` included)."""
    code = msg.get("code")
    if code in (200, "200") and msg.get("status", "ok") == "ok":
        return None
    return (f"code={code!r} {str(msg.get('message', msg.get('err_msg')))[:150]} "
            f"status={msg.get('status')!r}")


def _history_rows(body: str) -> list[dict[str, Any]]:
    msg = kit.rest_json(body, dict, "REST body is not an object", _history_error)
    return list(kit.objects(kit.member(msg, "data", list), "liquidation row"))


def _ms_any(row: dict[str, Any], key: str) -> float:
    """Epoch seconds from milliseconds v5 writes as a string of digits (or a JSON integer)."""
    return kit.ms(row, key, string=isinstance(row.get(key), str))


def _row_key(row: dict[str, Any]) -> tuple[float, int, str]:
    """A row's place in time (then id) and its id, the ``from`` of the next page."""
    raw = row.get("id")
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).isdigit():
        raise kit.FrameError("missing_field", "id")
    return _ms_any(row, "liquidation_time"), int(raw), str(raw)


def history_next_page(body: str, start_ms: int, end_ms: int,
                      cursor: str | None = None) -> str | None:
    rows = _history_rows(body)
    window_end, from_id = _history_cursor(cursor, end_ms)
    window_start = max(start_ms, window_end - HISTORY_WINDOW_MS)
    if len(rows) >= HISTORY_LIMIT:
        oldest_s, _, oldest_id = min(_row_key(r) for r in rows)
        # Back from the oldest row while that moves: a venue that ignores ``from`` (the same
        # page again) or the window (rows before it) ends the window instead of looping.
        if oldest_id != from_id and oldest_s * 1000 >= window_start:
            return f"{window_end}/{oldest_id}"
    if window_start <= start_ms:
        return None
    return str(window_start)  # the next older window


def _volume_token(row: dict[str, Any]) -> int | float:
    """``volume`` as the live push's JSON number would decode: v5 writes ``"2"`` where the push
    writes ``2``, and the live id hashes ``str()`` of that number (``2``, never ``2.0``)."""
    val = row.get("volume")
    if val is None:
        raise kit.FrameError("missing_field", "volume")
    if type(val) is str:
        kit.decimal_string(val, "volume")
        return int(val) if val.isdigit() else float(val)
    kit.json_number(val, "volume")
    return val  # type: ignore[no-any-return]


def _history_side(row: dict[str, Any]) -> Side:
    """``position_side`` is the liquidated position; ``side`` the order that closed it, which
    must agree (a sell closes a long)."""
    position = row.get("position_side")
    order = row.get("side")
    if position is None and order is None:
        raise kit.FrameError("missing_field", "position_side")
    if position is not None and str(position).lower() not in _POSITION_SIDES:
        raise kit.FrameError("bad_side", f"position_side={position!r}"[:100])
    side = (kit.side_from_position_side(str(position)) if position is not None
            else kit.side_from_order_side(str(order)))
    if order is not None and kit.side_from_order_side(str(order)) != side:
        raise kit.FrameError("bad_side", f"side={order!r} position_side={position!r}"[:100])
    return side


def _history_event(row: dict[str, Any], recv_ts: float) -> LiquidationEvent:
    """A v5 row as the live push gives the same liquidation: the live id hashes (contract,
    ``created_at`` ms, position side, ``repr(float(price))``, ``str(volume)``), and v5 has
    each of them under another name or type: ``liquidation_time``, ``position_side``,
    ``bankrupt_price`` (the push's ``price`` is the bankruptcy price too), ``volume`` as a
    string."""
    symbol = kit.required_str(row, "contract_code")
    side = _history_side(row)
    price, ts = kit.num_any(row, "bankrupt_price"), _ms_any(row, "liquidation_time")
    if price <= 0 or ts <= 0:
        raise kit.FrameError("bad_number", f"bankrupt_price={row.get('bankrupt_price')!r} "
                                           f"liquidation_time={row.get('liquidation_time')!r}")
    volume = _volume_token(row)
    turnover = row.get("trade_turnover")
    notional = kit.num_any(row, "trade_turnover") if turnover not in (None, "") else None
    if notional is not None and notional < 0:
        raise kit.FrameError("bad_number", f"trade_turnover={turnover!r}")
    notional = notional or None
    # v5's ``amount`` equals its ``volume`` in the only sample (contracts, not the push's
    # base coins), so the base quantity is the USDT turnover over the price, to 12 digits.
    qty = float(f"{notional / price:.12g}") if notional is not None else None
    base, quote = _base_quote(row, "")
    return kit.event(exchange=ID, symbol=symbol, base=base, quote=quote, market="linear",
                     side=side, price=price, qty=qty, notional_usd=notional, ts=ts,
                     recv_ts=recv_ts, sampled=False, qty_raw=volume)


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One page of a contract's v5 liquidation orders, each row the event the live push gives
    it (same id)."""
    events = tuple(_history_event(row, recv_ts) for row in _history_rows(text))
    return kit.parsed("data" if events else "info", events,
                      unpriced=sum(1 for e in events if e.notional_usd is None))


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page_from=history_next_page,
    parse=parse_history, listing=history_listing, listing_topics=history_listing_topics,
    max_rate=5.0, max_pages=200,
    rule="24 h: v5 liquidation orders per USDT-M swap of the funding listing (dated USDT-M "
         "futures not read), 2 h windows newest first, 100 a page; 5 requests/s: 12 or more a "
         "contract, about 4 min per 100 contracts; live ids assume v5's bankrupt_price and "
         "liquidation_time are the push's price and created_at")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="direction is the liquidation ORDER side (offset close): sell -> long, buy -> short",
    unit_rule="volume contracts (unused), amount base = qty, trade_turnover USDT = notional "
              "(fallback amount*price); never volume*price (100x wrong)",
    sampled=False,
    feed="`public.*.liquidation_orders` (USDT-M swaps), gzip frames; server pings echoed "
         "with the same `ts`.",
    coverage="complete: HTX pushes every liquidation; USDT-M only.",
    oi_source=kit.url_has(FUNDING_PATH, OI_PATH),
    oi_rule="swap_open_interest value USDT = USD, amount coins, both documented as the sum of "
            "both sides: halved to one side (volume contracts unused); "
            "funding swap_batch_funding_rate per 8 h (swaps only); no mark price",
    gzip=True,
    # The server pings every ~5 s (each counts as a pong): the timeout tolerates two missed,
    # and 10 s + 15 s keeps a stall within 30 s.
    ping_interval=10.0,
    pong_timeout=15.0,
    # Frames: small gzip-compressed pushes (the inflated size has its own cap in the session).
    max_frame_bytes=256 * 1024,
    metadata_refresh=0.0,
    default_urls={"ws": WS_URL, "rest": REST},
    history=HISTORY,
)
