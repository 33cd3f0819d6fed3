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
"""

from __future__ import annotations

import re
from typing import Any

import orjson

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
)
