"""BitMEX: the ``liquidation`` table ("liquidation orders as they're entered into the book").

- Endpoint and subscribe: ``wss://www.bitmex.com/realtime?subscribe=liquidation`` (all symbols;
  the subscription is in the URL, so no subscribe message is sent). The server greets with
  ``{"info":"Welcome to the BitMEX Realtime API.",...}`` (kind ``info``), confirms with
  ``{"success":true,"subscribe":"liquidation",...}`` (kind ``ack``) and then sends a ``partial``.
  ``{"status":4xx,"error":...}`` frames raise ``subscribe_error`` (their ``request.op`` is
  subscribe) or ``venue_error``.
- Actions: ``partial`` is the snapshot of liquidation orders resting in the book at subscribe
  time: parsed, returned as ``Parsed(snapshot=True)``, never counted (a reconnect would count them
  again). ``insert`` is a new liquidation order: the only counted action. ``update`` (``leavesQty``
  shrinking as it fills) and ``delete`` (filled or cancelled) are kind ``info``.
- Side: ``side`` is the side of the liquidation ORDER: ``Sell`` closes a long, ``Buy`` a short
  (exchanges.md §2.7: a captured XBTUSD ``Sell`` insert commented "Long Liquidation").
- Units: ``leavesQty`` is in CONTRACTS; the value of a contract comes from REST
  ``GET /api/v1/instrument/active`` (fields isInverse, isQuanto, multiplier,
  underlyingToPositionMultiplier, underlyingToSettleMultiplier, quoteToSettleMultiplier,
  quoteCurrency, underlying, positionCurrency, typ):

  * inverse (``isInverse``, quote USD; XBTUSD, XBT futures): a contract is worth
    ``|multiplier / underlyingToSettleMultiplier|`` USD (XBTUSD: -1e8 / -1e8 = 1 USD; a contract
    pays ``multiplier / price`` settlement units and ``underlyingToSettleMultiplier`` of those
    make one coin). Notional = ``leavesQty × that`` (USD, no price involved); base qty =
    notional / price. XBTUSD therefore gives notional = ``leavesQty`` USD.
  * linear (neither inverse nor quanto, quoted in USDT/USDC, position in the underlying; XBTUSDT,
    ETHUSDT): base per contract = ``1 / underlyingToPositionMultiplier`` (ccxt ``contractSize``,
    nautilus_trader ``derive_contract_decimal_and_increment``), cross-checked against
    ``multiplier / quoteToSettleMultiplier`` (a contract pays ``multiplier × price`` settlement
    units, ``quoteToSettleMultiplier`` of those per quote unit): LTCUSDT 100 / 1e6 = 1 / 10 000,
    XBTUSDT 1 / 1e6, JTOUSDT 1e6 / 1e6 = 1. If the two disagree the instrument stays unpriced.
    qty = ``leavesQty ×`` base per contract, notional = qty × price (USDT/USDC as USD).
    (``underlyingToSettleMultiplier`` is null on USDT-settled linear contracts, so it cannot be the
    linear divisor.)
  * quanto (``isQuanto``: ETHUSD, SOLUSD... settled in XBT): a contract pays ``multiplier ×
    price`` satoshis, so USD needs the XBT price too: notional and qty null (unpriced).
  * anything else (non-USD quotes such as XBTEUR, XBT-quoted futures, spreads and other ``typ``
    than FFWCSX perpetual / FFCCSX future, missing multipliers): unpriced.

  Symbols absent from the instrument list are unpriced; their base/quote come from the symbol
  (``XBTUSD`` style or futures codes ``<root><month><yy>``) and ``market`` is a label only.
  BitMEX's ``XBT`` is reported as base ``BTC``, so coin metrics add it to the other venues' BTC.
  The ``insert``'s ``leavesQty`` is the order as it entered the book; research notes an order can
  be partly absorbed before its first print, so a notional can be a floor.
- Time: the payload has no timestamp: event time = receipt time (``recv_ts``).
- Sampling: none; every liquidation order is inserted (BitMEX support, BitMEX/api-connectors
  #241: "you will see all of the liquidation orders - even if they are immediately filled").
- Dedupe: ``orderID`` is the venue id (the same order seen after a reconnect has the same id).
- Liveness: send the text ``ping``; the text ``pong`` is the reply (BitMEX docs: ping when no
  message arrived for 5 s, reconnect when no pong follows).
- Open interest and funding (REST poll, one request): ``GET /api/v1/instrument`` with
  ``filter={"state":"Open"}``, ``count=500`` and only the ``OI_COLUMNS`` (the rows of
  ``/instrument/active``, whose URL stays the metadata's so the two never mix in a recording).
  ``openInterest`` is CONTRACTS, valued with the metadata's contract value, as liquidations:
  inverse USD = contracts x USD per contract (XBTUSD: 1 USD), coins = USD / ``markPrice``;
  linear coins = contracts x base per contract, USD = coins x ``markPrice``. Quanto (XBt-settled,
  ETHUSD): ``openValue`` is satoshis, USD = openValue / 1e8 x the XBTUSD ``markPrice`` of the
  SAME body, coins = USD / ``markPrice`` (no XBTUSD row: unvalued). A symbol without metadata,
  or whose units are not pinned, is unvalued (null). Only perpetuals (FFWCSX) and futures
  (FFCCSX) are listed. Funding: ``fundingRate`` per ``fundingInterval``, a time offset from
  2000-01-01 (``2000-01-01T08:00:00.000Z`` = 8 h); futures have none. Time: the row's
  ``timestamp``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from liqstress.event import Market
from liqstress.open_interest import OpenInterest

from . import kit

ID = "bitmex"
WS_URL = "wss://www.bitmex.com/realtime?subscribe=liquidation"
REST = "https://www.bitmex.com"
TABLE = "liquidation"
#: Instrument types whose units are pinned: perpetual swap and dated future.
PRICED_TYPS = ("FFWCSX", "FFCCSX")
_STABLE = ("USDT", "USDC")
_QUOTES = ("USDT", "USDC", "USD", "EUR", "XBT")
#: BitMEX futures codes: root + month letter + two-digit year (XBTZ26, TRXZ19).
_FUTURE_CODE = re.compile(r"^([A-Z0-9]+?)[FGHJKMNQUVXZ]\d{2}$")
_PLAIN = re.compile(r"^[A-Z0-9]+$")
OI_PATH = "/api/v1/instrument"
#: Columns of the OI poll (BitMEX always adds the keys: symbol, timestamp).
OI_COLUMNS = ("symbol", "typ", "underlying", "quoteCurrency", "settlCurrency", "isQuanto",
              "isInverse", "openInterest", "openValue", "markPrice", "fundingRate",
              "fundingInterval", "timestamp")
#: The instrument whose mark prices XBt (satoshi) values in USD.
XBT_MARK_SYMBOL = "XBTUSD"
SATOSHI = 1e-8
_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=UTC)


def coin(asset: str) -> str:
    """BitMEX names bitcoin XBT; everyone else (and the coin metrics) say BTC."""
    return "BTC" if asset in ("XBT", "XBt") else asset


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, "/api/v1/instrument/active")]


def _finite(item: dict[str, Any], key: str) -> float | None:
    try:  # BitMEX sends these as JSON numbers: never a string, a boolean, NaN or inf
        out = kit.json_number(item.get(key), key)
    except kit.FrameError:
        return None
    return out if out != 0 else None


def contract_value(item: dict[str, Any]) -> float:
    """USD per contract (inverse) or base units per contract (linear); 0.0 when the units
    cannot be pinned from the instrument fields (quanto, non-USD quote, odd types)."""
    if item.get("typ") not in PRICED_TYPS or item.get("isQuanto") is not False:
        return 0.0
    quote = item.get("quoteCurrency")
    if item.get("isInverse") is True:
        mult, u2s = _finite(item, "multiplier"), _finite(item, "underlyingToSettleMultiplier")
        if quote != "USD" or mult is None or u2s is None:
            return 0.0
        return abs(mult / u2s)
    if item.get("isInverse") is not False or quote not in _STABLE:
        return 0.0
    if item.get("positionCurrency") not in (None, "", item.get("underlying")):
        return 0.0
    u2p = _finite(item, "underlyingToPositionMultiplier")
    mult, q2s = _finite(item, "multiplier"), _finite(item, "quoteToSettleMultiplier")
    by_position = 1.0 / u2p if u2p is not None and u2p > 0 else None
    by_value = mult / q2s if mult is not None and q2s is not None and mult > 0 and q2s > 0 else None
    if by_position is not None and by_value is not None:
        if abs(by_position - by_value) > 1e-9 * max(by_position, by_value):
            return 0.0  # the two derivations disagree: do not pick one
        return by_position
    return by_position or by_value or 0.0


def _rest_error(msg: dict[str, Any]) -> str | None:
    return str(msg["error"])[:200] if "error" in msg else None


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    for item in kit.rest_json(body, list, "instrument list is not an array", _rest_error):
        if not isinstance(item, dict):
            continue
        symbol, underlying = item.get("symbol"), item.get("underlying")
        quote = item.get("quoteCurrency")
        if not (isinstance(symbol, str) and symbol and isinstance(underlying, str)
                and underlying and isinstance(quote, str) and quote):
            continue
        # Quanto payoffs are linear in the price (settled in XBT): labelled linear.
        market: Market = "inverse" if item.get("isInverse") is True else "linear"
        meta.instruments[symbol] = kit.Instrument(symbol=symbol, base=coin(underlying), quote=quote,
                                              market=market, contract_value=contract_value(item))


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    # The subscription is in the URL: no subscribe message is sent.
    # Subscribed in the URL; up once BitMEX confirms it with {"success": true, "subscribe": ...}.
    return [kit.Connection(name="realtime", url=urls.get("ws", WS_URL), expected_acks=1)]


def _unknown_pair(symbol: str) -> tuple[str, str, Market]:
    """Base/quote/market label for a symbol missing from the instrument list (unpriced)."""
    if not _PLAIN.match(symbol):  # indices (.BXBT), spreads, spot pairs: not a contract name
        raise kit.FrameError("unknown_symbol", symbol[:50])
    m = _FUTURE_CODE.match(symbol)
    root = m.group(1) if m else symbol
    try:
        base, quote = kit.split_symbol(root, _QUOTES)
    except kit.FrameError:
        if m is None:
            raise
        base, quote = root, ""  # a futures code without its quote currency in the name
    base = coin(base)
    market: Market = "inverse" if base == "BTC" and quote not in _STABLE else "linear"
    return base, quote, market


def _events(data: list[Any], recv_ts: float, meta: kit.Metadata) -> list[Any]:
    events = []
    for entry in kit.objects(data, "data entry"):
        order_id, symbol = kit.required_str(entry, "orderID"), kit.required_str(entry, "symbol")
        side = kit.side_from_order_side(str(entry.get("side", "")))
        price, contracts = kit.num(entry, "price"), kit.num(entry, "leavesQty")
        if price <= 0 or contracts < 0:
            raise kit.FrameError("bad_number", f"price={entry.get('price')!r} "
                                           f"leavesQty={entry.get('leavesQty')!r}")
        inst = meta.get(symbol)
        qty: float | None = None
        notional: float | None = None
        if inst is not None:
            base, quote, market = inst.base, inst.quote, inst.market
            if inst.contract_value > 0:  # 0: units not pinned (quanto...), stays unpriced
                qty, notional = kit.amounts(contracts, price, market, inst.contract_value)
        else:
            base, quote, market = _unknown_pair(symbol)
        events.append(kit.event(
            exchange=ID, symbol=symbol, base=base, quote=quote, market=market, side=side,
            price=price, qty=qty, notional_usd=notional, ts=recv_ts, recv_ts=recv_ts,
            sampled=False, qty_raw=entry.get("leavesQty"), venue_id=order_id))
    return events


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    # Plain text, not JSON; a frame starting with "{" can never strip to it.
    if text[:1] != "{" and text.strip() == "pong":
        return kit.PONG
    msg = kit.frame_object(text)
    if "table" in msg:
        if msg["table"] != TABLE:
            raise kit.FrameError("unexpected_channel", str(msg["table"])[:100])
        action, data = msg.get("action"), kit.member(msg, "data", list)
        if action in ("update", "delete"):
            return kit.INFO  # fills/cancels of an order already counted at insert
        if action == "partial":
            return kit.parsed("data", tuple(_events(data, recv_ts, meta)), snapshot=True)
        if action != "insert":
            raise kit.FrameError("unexpected_action", str(action)[:50])
        events = _events(data, recv_ts, meta)
        return kit.parsed("data", tuple(events),
                          unpriced=sum(1 for e in events if e.notional_usd is None))
    if "error" in msg:
        request = msg.get("request")
        op = request.get("op") if isinstance(request, dict) else None
        raise kit.FrameError("subscribe_error" if op == "subscribe" else "venue_error",
                         f"status={msg.get('status')!r} {str(msg['error'])[:200]}")
    if "success" in msg:
        if msg["success"] is not True:
            raise kit.FrameError("subscribe_error", str(msg)[:200])
        if msg.get("subscribe") is not None:
            return kit.ACK
        return kit.INFO  # unsubscribe and other confirmations
    if "info" in msg:
        return kit.INFO  # the welcome banner (version, docs, rate-limit remaining)
    raise kit.FrameError("unexpected_shape", "neither table, success, error nor info")


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    query = (f"filter={quote(orjson.dumps({'state': 'Open'}).decode())}&count=500"
             f"&columns={quote(orjson.dumps(list(OI_COLUMNS)).decode())}")
    return [kit.rest_url(urls, REST, f"{OI_PATH}?{query}")]


def _iso(item: dict[str, Any], key: str) -> datetime:
    val = item.get(key)
    try:
        if not isinstance(val, str) or not val.endswith("Z"):
            raise ValueError(val)
        return datetime.fromisoformat(val[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise kit.FrameError("bad_timestamp", f"{key}={val!r}"[:200]) from exc


def _optional(item: dict[str, Any], key: str) -> float | None:
    return None if item.get(key) is None else kit.num(item, key)


def _funding(item: dict[str, Any]) -> tuple[float | None, float | None]:
    rate = _optional(item, "fundingRate")
    if rate is None:
        return None, None  # futures: no funding
    if item.get("fundingInterval") is None:
        return rate, 8.0  # BitMEX perpetuals fund every 8 h
    hours = (_iso(item, "fundingInterval") - _EPOCH_2000).total_seconds() / 3600.0
    return rate, hours


def _instrument_oi(item: dict[str, Any], recv_ts: float, meta: kit.Metadata,
                   xbt_mark: float | None) -> OpenInterest | None:
    symbol = kit.required_str(item, "symbol")
    if item.get("typ") not in PRICED_TYPS:
        return None  # spot pairs, indices, spreads: no open interest of ours
    contracts = kit.num(item, "openInterest")
    mark = _optional(item, "markPrice")
    inst = meta.get(symbol)
    if inst is not None:
        base, quote_ccy, market = inst.base, inst.quote, inst.market
    else:
        base, quote_ccy, market = _unknown_pair(symbol)
    usd_quote = quote_ccy in ("USD", *_STABLE)
    price = mark if mark is not None and mark > 0 and usd_quote else None
    oi_coins: float | None = None
    oi_usd: float | None = None
    if inst is not None and inst.contract_value > 0:
        if market == "inverse":  # contract_value is USD per contract
            oi_usd = contracts * inst.contract_value
            oi_coins = oi_usd / price if price is not None else None
        else:  # linear: base per contract
            oi_coins = contracts * inst.contract_value
            oi_usd = oi_coins * price if price is not None else None
    elif (inst is not None and item.get("isQuanto") is True and item.get("settlCurrency") == "XBt"
          and xbt_mark is not None and price is not None):
        oi_usd = kit.num(item, "openValue") * SATOSHI * xbt_mark
        oi_coins = oi_usd / price
    rate, hours = _funding(item)
    ts = _iso(item, "timestamp").timestamp() if item.get("timestamp") is not None else recv_ts
    return kit.oi_record(exchange=ID, symbol=symbol, base=base, market=market,
                         oi_coins=oi_coins, oi_usd=oi_usd, price=price, funding_rate=rate,
                         funding_interval_hours=hours, ts=ts, recv_ts=recv_ts)


def _xbt_mark(items: list[Any]) -> float | None:
    for item in items:
        if isinstance(item, dict) and item.get("symbol") == XBT_MARK_SYMBOL:
            try:
                mark = _optional(item, "markPrice")
            except kit.FrameError:
                return None
            return mark if mark is not None and mark > 0 else None
    return None


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    items = kit.rest_json(body, list, "instrument list is not an array", _rest_error)
    xbt_mark = _xbt_mark(items)
    return kit.oi_frame(kit.objects(items, "instrument"),
                        lambda item: _instrument_oi(item, recv_ts, meta, xbt_mark))


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="side is the liquidation order side: Sell -> long, Buy -> short",
    unit_rule="leavesQty contracts; inverse (XBTUSD) USD = leavesQty*|multiplier/"
              "underlyingToSettleMultiplier| (1 USD each); linear USDT/USDC qty = leavesQty/"
              "underlyingToPositionMultiplier (= *multiplier/quoteToSettleMultiplier), notional "
              "qty*price; quanto, non-USD quotes, unknown symbols -> null notional",
    sampled=False,
    feed="`wss://www.bitmex.com/realtime?subscribe=liquidation`: the liquidation table, "
         "subscribed in the URL.",
    coverage="every liquidation order at `insert` (`partial` is history); no timestamp "
             "in the payload, so receipt time; `leavesQty` at insert may be below the full order.",
    # BitMEX: ping when 5 s pass without a message. Frames: the liquidation table's
    # `partial` on subscribe is the biggest: the 1 MiB default.
    ping_interval=5.0,
    pong_timeout=10.0,
    oi_source=kit.url_has(f"{OI_PATH}?"),
    oi_rule="/instrument (state Open): openInterest contracts x metadata contract value (inverse "
            "USD, linear base), priced at markPrice; quanto openValue satoshis x XBTUSD mark of "
            "the same body; fundingRate per fundingInterval (offset from 2000-01-01, 8 h); "
            "futures and unknown units none",
    default_urls={"ws": WS_URL, "rest": REST},
)
