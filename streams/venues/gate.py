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
- Snapshot/replay: Gate sends no history on subscribe, so nothing is dropped. The WS items have
  no order id, so events are deduped by the content hash (contract, ms time, side, price, size).
- Open interest and funding (REST poll, one request): ``GET /api/v4/futures/usdt/tickers``.
  ``total_size`` is CONTRACTS (one side): coins = ``total_size × quanto_multiplier`` from the
  contracts metadata (else the row's own ``quanto_multiplier``, which newer tickers carry), USD
  = coins × ``mark_price`` (the row's own mark, USDT as USD); a contract without a multiplier
  gets coins and USD null. ``funding_rate`` is a fraction per interval:
  the row's ``funding_interval`` (seconds) where sent, else the contract's ``funding_interval``
  kept by ``load_rest`` (``meta.oi_context[FUNDING_CONTEXT]``), else 8 h. The tickers carry no
  time: ts = receipt time.
"""

from __future__ import annotations

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
    for item in kit.objects(items, "result item"):
        contract = kit.required_str(item, "contract")
        # price is a decimal string; size a number in live frames, a string in the doc sample
        size, price = kit.num_any(item, "size"), kit.num_str(item, "price")
        side = side_from_size(size)
        if price <= 0:
            raise kit.FrameError("bad_number", f"price={item.get('price')!r}")
        ts = _event_time(item, msg)
        inst = meta.get(contract)
        if inst is not None:
            base, quote = inst.base, inst.quote
            qty: float | None
            notional: float | None
            qty, notional = kit.amounts(abs(size), price, "linear", inst.contract_value)
        else:
            pair = _pair(contract)
            if pair is None:
                raise kit.FrameError("unknown_symbol", contract[:100])
            base, quote = pair
            qty = notional = None
            unpriced += 1
        events.append(kit.event(
            exchange=ID, symbol=contract, base=base, quote=quote, market="linear",
            side=side, price=price, qty=qty, notional_usd=notional, ts=ts,
            recv_ts=recv_ts, sampled=True, qty_raw=item.get("size")))
    return kit.parsed("data", tuple(events), unpriced=unpriced)


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
             "**verify live**.",
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
)
