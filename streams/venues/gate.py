"""Gate USDT-settled futures: the ``futures.public_liquidates`` channel with payload ``["!all"]``.

- Endpoint: ``wss://fx-ws.gateio.ws/v4/ws/usdt``; one subscribe covers every USDT contract:
  ``{"time":<s>,"channel":"futures.public_liquidates","event":"subscribe","payload":["!all"]}``,
  acked by ``{"event":"subscribe","result":{"status":"success"},"error":null,...}``. A frame
  with a non-null ``error`` (or a ``result.status`` other than success) is a ``subscribe_error``.
  Gate wants ``time`` (seconds) on every request, so the subscribe is stamped when it is SENT
  (each reconnect), not when the connection list was built (see ``_Subscribe``).
  BTC-settled (``/btc``) and USD1-settled (``/usd1``) contracts are not covered.
- Updates: ``event: "update"``; ``result`` is an ARRAY in the doc (and since the 2026-08-20
  batching change) but live captures before that (gateio/WebSocket-API #132) carry a bare
  OBJECT. Both are parsed, one event per item.
- Side: the SIGN of ``size``: positive -> a long was liquidated, negative -> a short. The WS sign
  is undocumented. Decided from the REST sibling ``GET /futures/usdt/liq_orders``, whose
  ``size`` is documented as the POSITION size (``order_size``, the closing order, carries the
  opposite sign) and was verified on 167/167 live records (positive = long; ai-rates, as quoted
  in exchanges.md §2.8); the WS item carries the same field name ``size``, not ``order_size``.
  Counter-evidence, noted so it can be checked: one small OSS bot maps WS ``size < 0`` to a long
  (unverified, and it also ignores ``quanto_multiplier``). To confirm live, compare the price
  with the book at event time: a liquidated long prints below the bid. The rule is the single
  constant ``POSITIVE_SIZE_IS_LONG``; tests pin it.
- Units: ``size`` is CONTRACTS (an integer unless the ``X-Gate-Size-Decimal: 1`` header is
  sent, which we do not). Base qty = ``|size| × quanto_multiplier`` from REST
  ``GET /api/v4/futures/usdt/contracts`` (``name``, ``quanto_multiplier``; BTC_USDT is
  0.0001 BTC), notional = qty × ``price`` in USDT, treated as USD. A contract without a
  multiplier (new listing before the next refresh, or a non-``direct`` type) gets
  ``qty``/``notional_usd`` null (counted as unpriced), never ``|size| × price``, which would be
  contracts read as coins (10,000× too large on BTC).
- Time: the item's ``time_ms`` if present, else its ``time`` (milliseconds since the
  2026-08-20 doc change, seconds before; the magnitude tells them apart); the frame's
  ``time_ms``/``time`` (push time) only as a fallback.
- Sampling: before 2026-08-20 Gate pushed at most one liquidation per contract per second (a
  floor). Since then, per Gate's changelog (seen only through a third-party changelog diff,
  never measured), a contract's liquidations in a ~1 s cycle come as one array (flushed at 20)
  and none are dropped. That completeness is unverified and the only live captures we have
  still show the old single-object shape, so the venue is flagged ``sampled=True``: totals are
  labelled a floor rather than risk overstating coverage.
- Liveness: ``{"time":<s>,"channel":"futures.ping"}`` every 15 s; the reply is a
  ``futures.pong`` frame. Liquidations are sparse (~1.8/min with ``!all``): silence is normal.
- Snapshot/replay: Gate sends no history on subscribe, so nothing is dropped.
- Event id: the WS items have no order id, and the REST history (below) has neither the WS
  item's millisecond nor its ``price`` (it has ``order_price`` and ``fill_price``; which one
  the WS ``price`` is, is not documented). So the id is built, live and in the history alike,
  from what both carry: contract, the SECOND of the liquidation and ``|size|``, as
  ``venue_id`` ``"<second>|<|size| as a float repr>"`` (``liquidation_key``). Why these match:
  Gate's public WS sample is its private ``futures.liquidates`` sample cut down (the same -124
  and 1541486601123), and there ``size`` is the POSITION size and ``time``/``time_ms`` the
  same instant in s/ms, as REST ``size`` and ``time`` are. ``|size|`` rather than the sign:
  the id holds whichever sign convention the WS turns out to use. The cost: two liquidations
  of one contract in one second with the same ``|size|`` would share an id and count once; so
  the n-th repeat of a key within one frame (or one history body) gets ``|n`` appended (Gate
  batches a contract's liquidations of a ~1 s cycle in one frame, and the history returns the
  hour in one body, so repeats line up). Repeats split over two frames still merge (a floor).
  Unverified live: if WS and REST disagree on the second or the size, an overlap is counted
  twice (never lost); compare a recorded hour of both to confirm.
- Open interest and funding (REST poll, one request): ``GET /api/v4/futures/usdt/tickers``.
  ``total_size`` is CONTRACTS (one side): coins = ``total_size × quanto_multiplier`` from the
  contracts metadata (else the row's own ``quanto_multiplier``, which newer tickers carry), USD
  = coins × ``mark_price`` (the row's own mark, USDT as USD); a contract without a multiplier
  gets coins and USD null. ``funding_rate`` is a fraction per interval:
  the row's ``funding_interval`` (seconds) where sent, else the contract's ``funding_interval``
  kept by ``load_rest`` (``meta.oi_context[FUNDING_CONTEXT]``), else 8 h. The tickers carry no
  time: ts = receipt time.
- History (the warm start): ``GET {rest}/api/v4/futures/usdt/liq_orders?limit=1000``, public,
  every USDT contract in one call. Rows ``{"contract","size","order_size","order_price",
  "fill_price","left","time"}``: ``size`` the signed POSITION (positive = long, verified
  167/167 by ai-rates, as for the live rule), ``time`` seconds. Units as live: ``|size| ×
  quanto_multiplier`` base, priced at ``fill_price`` (the average taker price; ``order_price``
  when there is none), USDT as USD. Only the last ~hour is served (``from``/``to`` are
  silently ignored, no cursor: third-party measurement), so ``depth`` is 1 h and one page per
  call: the warm start covers 1 h and ``covered_since`` says so; the 4 h and 24 h windows
  still fill from the process start. Rows older than the window are published as dYdX's are
  (the windows place them by their time). Ids: ``liquidation_key``, as live. A ``label``/
  ``message`` body (Gate's error) is a ``rest_error`` dead letter; a 429 is retried. The
  endpoint's own rate limit was not found (public futures endpoints: 200 per 10 s, not
  verified); one request per start.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import orjson

from liqstress.labels import Side
from liqstress.open_interest import OpenInterest

from . import kit

ID = "gate"
WS_URL = "wss://fx-ws.gateio.ws/v4/ws/usdt"
REST = "https://api.gateio.ws"
CHANNEL = "futures.public_liquidates"
PING_CHANNEL = "futures.ping"
PONG_CHANNEL = "futures.pong"
#: The sign rule, in one place: True = a positive ``size`` is a liquidated LONG (REST semantics).
POSITIVE_SIZE_IS_LONG = True
#: Epoch values above this are milliseconds (seconds stay below it until the year 5138).
_MS_THRESHOLD = 1e11
OI_PATH = "/api/v4/futures/usdt/tickers"
#: ``meta.oi_context`` key: contract -> funding interval in hours, from the contracts metadata.
FUNDING_CONTEXT = "gate_funding_interval_hours"
#: Gate's default funding interval (hours) when neither the ticker nor the contract says.
DEFAULT_FUNDING_HOURS = 8.0


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, "/api/v4/futures/usdt/contracts")]


def _pair(contract: str) -> tuple[str, str] | None:
    parts = contract.split("_")
    if len(parts) >= 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    return None


def _rest_error(msg: dict[str, Any]) -> str | None:
    if "label" in msg or "message" in msg:
        return f"label={msg.get('label')!r} {str(msg.get('message'))[:200]!r}"
    return None


def _interval_hours(item: dict[str, Any]) -> float | None:
    """``funding_interval`` (integer seconds, e.g. 28800) in hours, or None."""
    val = item.get("funding_interval")
    if type(val) is not int or not 0 < val <= 86_400:
        return None
    return val / 3600.0


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    intervals: dict[str, float] = meta.oi_context.setdefault(FUNDING_CONTEXT, {})
    for item in kit.rest_json(body, list, "contracts body is not a list", _rest_error):
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            continue
        hours = _interval_hours(item)
        if hours is not None:
            intervals[name] = hours
        pair = _pair(name)
        # Only linear ("direct") contracts are |size| x multiplier base units; anything else
        # (inverse/quanto, should one appear on this settle) stays unpriced rather than wrong.
        if pair is None or item.get("type", "direct") != "direct":
            continue
        mult = kit.positive(item, "quanto_multiplier")
        if mult is None:
            continue
        meta.instruments[name] = kit.Instrument(symbol=name, base=pair[0], quote=pair[1],
                                            market="linear", contract_value=mult)


def subscribe_message(now: float | None = None) -> str:
    return orjson.dumps({"time": int(time.time() if now is None else now), "channel": CHANNEL,
                         "event": "subscribe", "payload": ["!all"]}).decode()


class _Subscribe(Sequence[str]):
    """The one subscribe message, built when the collector reads it (on every (re)connect), so
    its ``time`` is the send time and not the time the connection list was built."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(1))]
        if index not in (0, -1):
            raise IndexError(index)
        return subscribe_message()

    def __repr__(self) -> str:
        return f"_Subscribe({CHANNEL!r}, ['!all'])"


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    return [kit.Connection(name="usdt", url=urls.get("ws", WS_URL), subscribe=_Subscribe())]


def ping_message(seq: int) -> str:
    return orjson.dumps({"time": int(time.time()), "channel": PING_CHANNEL}).decode()


def side_from_size(size: float) -> Side:
    if size == 0:
        raise kit.FrameError("bad_side", "size 0 has no sign")
    long = size > 0 if POSITIVE_SIZE_IS_LONG else size < 0
    return "long" if long else "short"


def _epoch(obj: dict[str, Any], key: str) -> float:
    val = obj[key]  # an integer: seconds (the push ``time``) or milliseconds
    if type(val) is not int or not 0 < val < 2**63:
        raise kit.FrameError("bad_timestamp", f"{key}={val!r}"[:200])
    if key == "time_ms" or val > _MS_THRESHOLD:
        return val / 1000.0
    return float(val)


def _event_time(item: dict[str, Any], msg: dict[str, Any]) -> float:
    for obj in (item, msg):  # the liquidation's own time first, the push time as a fallback
        for key in ("time_ms", "time"):
            if obj.get(key) is not None:
                return _epoch(obj, key)
    raise kit.FrameError("missing_field", "time")


def liquidation_key(ts: float, size: float, seen: dict[tuple[str, str], int],
                    contract: str) -> str:
    """The ``venue_id`` of one liquidation (see "Event id"): its second and ``|size|``, with
    ``|n`` for the n-th repeat of that key of ``contract`` among the items ``seen`` so far in
    the same frame or body. ``csrc/venue_gate.c`` builds the same string."""
    key = f"{math.floor(ts)}|{abs(size)!r}"
    n = seen.get((contract, key), 0) + 1
    seen[(contract, key)] = n
    return key if n == 1 else f"{key}|{n}"


def _error_text(msg: dict[str, Any]) -> str:
    err = msg.get("error")
    if isinstance(err, dict):
        return f"code={err.get('code')!r} {str(err.get('message'))[:200]}"
    return str(err if err is not None else msg.get("result"))[:200]


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.frame_object(text)
    channel, op = msg.get("channel"), msg.get("event")
    if channel == PONG_CHANNEL:
        return kit.PONG
    if msg.get("error") not in (None, {}):
        reason = "subscribe_error" if op in ("subscribe", "error") else "venue_error"
        raise kit.FrameError(reason, f"channel={channel!r} {_error_text(msg)}")
    if op == "subscribe":
        result = msg.get("result")
        if channel == CHANNEL and isinstance(result, dict) and result.get("status") == "success":
            return kit.ACK
        raise kit.FrameError("subscribe_error", f"channel={channel!r} {_error_text(msg)}")
    if op == "unsubscribe":
        return kit.INFO
    if op != "update":
        raise kit.FrameError("unexpected_shape", f"event {op!r}")
    if channel != CHANNEL:
        raise kit.FrameError("unexpected_channel", str(channel)[:100])
    result = msg.get("result")
    if isinstance(result, dict):  # live frames (gateio/WebSocket-API #132): a bare object
        items: list[Any] = [result]
    elif isinstance(result, list):  # the doc, and the batched form since 2026-08-20
        items = result
    else:
        raise kit.FrameError("unexpected_shape", "result is neither an object nor a list")
    events = []
    unpriced = 0
    seen: dict[tuple[str, str], int] = {}
    for item in kit.objects(items, "result item"):
        contract = kit.required_str(item, "contract")
        # price is a decimal string; size a number in live frames, a string in the doc sample
        size, price = kit.num_any(item, "size"), kit.num_str(item, "price")
        side = side_from_size(size)
        if price <= 0:
            raise kit.FrameError("bad_number", f"price={item.get('price')!r}")
        ev, n = _event(contract, side, size, price, _event_time(item, msg), recv_ts, meta,
                       seen)
        events.append(ev)
        unpriced += n
    return kit.parsed("data", tuple(events), unpriced=unpriced)


def _event(contract: str, side: Side, size: float, price: float, ts: float, recv_ts: float,
           meta: kit.Metadata, seen: dict[tuple[str, str], int]) -> tuple[Any, int]:
    """One liquidation, live or from the history: (event, 1 if unpriced else 0)."""
    inst = meta.get(contract)
    qty: float | None
    notional: float | None
    if inst is not None:
        base, quote = inst.base, inst.quote
        qty, notional = kit.amounts(abs(size), price, "linear", inst.contract_value)
    else:
        pair = _pair(contract)
        if pair is None:
            raise kit.FrameError("unknown_symbol", contract[:100])
        base, quote = pair
        qty = notional = None
    return kit.event(
        exchange=ID, symbol=contract, base=base, quote=quote, market="linear", side=side,
        price=price, qty=qty, notional_usd=notional, ts=ts, recv_ts=recv_ts, sampled=True,
        venue_id=liquidation_key(ts, size, seen, contract)), int(inst is None)


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, OI_PATH)]


def _ticker(item: dict[str, Any], recv_ts: float, meta: kit.Metadata) -> OpenInterest | None:
    contract = kit.required_str(item, "contract")
    pair = _pair(contract)
    if pair is None:
        raise kit.FrameError("unknown_symbol", contract[:100])
    contracts = kit.num_any(item, "total_size")  # a decimal string; a number tolerated
    mark = kit.num_str(item, "mark_price") if item.get("mark_price") not in (None, "") else None
    price = mark if mark is not None and mark > 0 else None
    inst = meta.get(contract)
    # The contracts metadata's multiplier; else the one newer tickers carry themselves.
    mult = inst.contract_value if inst is not None else kit.positive(item, "quanto_multiplier")
    oi_coins = contracts * mult if mult is not None else None
    oi_usd = oi_coins * price if oi_coins is not None and price is not None else None
    rate = item.get("funding_rate")
    funding = None if rate in (None, "") else kit.num_str(item, "funding_rate")
    hours = None
    if funding is not None:
        known = meta.oi_context.get(FUNDING_CONTEXT, {})
        hours = _interval_hours(item) or known.get(contract) or DEFAULT_FUNDING_HOURS
    return kit.oi_record(exchange=ID, symbol=contract, base=pair[0], market="linear",
                         oi_coins=oi_coins, oi_usd=oi_usd, price=price, funding_rate=funding,
                         funding_interval_hours=hours, ts=recv_ts, recv_ts=recv_ts)


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    items = kit.rest_json(body, list, "tickers body is not a list", _rest_error)
    return kit.oi_frame(kit.objects(items, "ticker"), lambda item: _ticker(item, recv_ts, meta))


HISTORY_PATH = "/api/v4/futures/{settle}/liq_orders"
#: Rows asked for: Gate's maximum. The venue answers with about the last hour whatever the
#: limit (ai-rates: 173 rows over 58 min for 1000), so one page is the whole history.
HISTORY_LIMIT = 1000
#: Seconds of history the endpoint really serves: ``from``/``to`` are silently ignored
#: (ai-rates' bogus-parameter control; ccxt PR #19794 saw 14 min for a 34 min ask).
HISTORY_DEPTH = 3600.0


def history_topics(meta: kit.Metadata) -> list[str]:
    return ["usdt"]  # the settle the live feed follows (BTC- and USD1-settled: not covered)


def history_request(urls: dict[str, str], topic: str, start_ms: int | None, end_ms: int | None,
                    cursor: str | None) -> str:
    """No window and no cursor: ``from``/``to`` are ignored by the venue (and at most 3600 s
    apart by its doc), and there is nothing to page with."""
    url = kit.rest_url(urls, REST, HISTORY_PATH.format(settle=topic))
    return url if start_ms is None else f"{url}?limit={HISTORY_LIMIT}"


def _history_rows(body: str) -> list[Any]:
    return kit.rest_json(body, list, "liq_orders body is not a list", _rest_error)


def history_next_page(body: str, start_ms: int) -> str | None:
    _history_rows(body)  # a refusal or an odd body gives the topic up (and is dead-lettered)
    return None


def _history_price(row: dict[str, Any]) -> float:
    """``fill_price`` (the average taker price: what the order closed at, as ccxt reads it);
    ``order_price`` for a row not filled as taker at all (``fill_price`` 0 or absent)."""
    if row.get("fill_price") not in (None, "", "0", 0):
        return kit.num_any(row, "fill_price")
    return kit.num_any(row, "order_price")


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One ``liq_orders`` body: every row is a liquidation (``size`` the signed position,
    ``time`` seconds), with the live feed's id (``liquidation_key``)."""
    events = []
    unpriced = 0
    seen: dict[tuple[str, str], int] = {}
    for row in kit.objects(_history_rows(text), "liq_orders row"):
        contract = kit.required_str(row, "contract")
        size = kit.num_any(row, "size")  # an integer; a string where the decimal header is on
        side = side_from_size(size)
        price = _history_price(row)
        if price <= 0:
            raise kit.FrameError("bad_number", f"fill_price={row.get('fill_price')!r} "
                                               f"order_price={row.get('order_price')!r}"[:200])
        if row.get("time") is None:
            raise kit.FrameError("missing_field", "time")
        ev, n = _event(contract, side, size, price, _epoch(row, "time"), recv_ts, meta, seen)
        events.append(ev)
        unpriced += n
    return kit.parsed("data" if events else "info", tuple(events), unpriced=unpriced)


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page=history_next_page,
    parse=parse_history, max_rate=2.0, max_pages=1, depth=HISTORY_DEPTH,
    rule="1 h: the last ~hour of every USDT contract in one request (Gate ignores from/to "
         "and has no cursor: nothing older is public; completeness not documented); the 4 h and "
         "24 h windows fill from the start")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="sign of size: positive -> long, negative -> short (REST liq_orders semantics: "
              "size is the position; WS sign undocumented: verify live)",
    unit_rule="size contracts; qty |size|*quanto_multiplier base (REST /futures/usdt/contracts), "
              "notional qty*price USDT; no multiplier -> null notional",
    sampled=True,
    feed="`futures.public_liquidates` with `[\"!all\"]`: every USDT-settled contract (BTC- and "
         "USD1-settled contracts are not covered).",
    coverage="**floor**: at most 1 per contract per second before 2026-08-20, batched "
             "arrays with nothing dropped since (unverified, so still flagged sampled); side sign "
             "**verify live**; ids are contract, second and |size| (shared with the history), so "
             "equal sizes of one contract in one second in two frames count once.",
    # A stall within 30 s (the 20 s timeout before allowed 37 s).
    ping_interval=15.0,
    pong_timeout=10.0,
    # Frames: arrays of at most ~20 liquidations (flushed per ~1 s).
    max_frame_bytes=256 * 1024,
    metadata_refresh=900.0,
    oi_source=kit.url_has(OI_PATH),
    oi_rule="/futures/usdt/tickers: total_size contracts * quanto_multiplier (contracts "
            "metadata) = coins, USD = coins * mark_price; funding_rate per funding_interval "
            "(ticker, else contract metadata, else 8 h); no multiplier -> coins/USD null",
    default_urls={"ws": WS_URL, "rest": REST},
    history=HISTORY,
)
