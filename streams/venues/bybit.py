"""Bybit v5: the per-symbol ``allLiquidation.{symbol}`` topic on the linear and inverse streams.

- Topic: there is no all-symbols topic, so every Trading symbol from REST
  ``/v5/market/instruments-info`` (linear and inverse, paginated by ``nextPageCursor``) is
  subscribed, in chunks of at most ``SUBSCRIBE_CHUNK`` args and ``SUBSCRIBE_MAX_CHARS`` chars.
  The deprecated ``liquidation.{symbol}`` topic (≤1/s, not every liquidation) is not used.
- Side: ``S`` is the side of the liquidated POSITION (the opposite of Binance): Buy -> long.
- Units: linear ``v`` is base units, notional ``v × p``; inverse ``v`` is USD contracts, so the
  notional is ``v`` and base qty ``v / p``. ``p`` is the bankruptcy price (notional approximate).
- Time: ``T`` (liquidation time, ms); the frame's ``ts`` is the push time.
- Sampling: documented as every liquidation, pushed in 500 ms batches (``data`` may hold several).
- Liveness: ``{"op":"ping"}`` every 20 s; the reply ``{"op":"ping","ret_msg":"pong",...}`` is
  the pong. Liquidations are sparse, so silence never means dead.
- Open interest and funding: one poll is ``GET /v5/market/tickers?category=linear`` and
  ``?category=inverse`` (every instrument of the category in one body). Bybit's ``openInterest``
  is the SUM OF BOTH SIDES (v5 open-interest doc); one side is ``singleOpenInterest`` (Bybit
  computes it as half the sum), or ``openInterest / 2`` where a body lacks it. Linear: base
  units, USD = one side × ``markPrice``; inverse: USD (1-USD contracts), coins = one side /
  ``markPrice`` (``openInterestValue`` is coins there, and both sides: unused). Price is
  ``markPrice``. ``fundingRate`` is a fraction per ``fundingIntervalHour`` (8 h where the body
  has none); dated futures (``deliveryTime`` set) and ``""`` have no funding. Time: the body's
  ``time``. Only the Trading instruments of the metadata are reported.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from liqstress.event import Market

from . import kit

ID = "bybit"
WS_LINEAR = "wss://stream.bybit.com/v5/public/linear"
WS_INVERSE = "wss://stream.bybit.com/v5/public/inverse"
REST = "https://api.bybit.com"
TOPIC = "allLiquidation."
#: Args per subscribe message (what a live 805-symbol run used: 5 frames of up to 200).
SUBSCRIBE_CHUNK = 200
#: Chars per subscribe message, well below the documented 21,000-char args limit.
SUBSCRIBE_MAX_CHARS = 8_000

_CONTRACT_MARKET: dict[str, Market] = {
    "LinearPerpetual": "linear", "LinearFutures": "linear",
    "InversePerpetual": "inverse", "InverseFutures": "inverse",
}


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, f"/v5/market/instruments-info?category={cat}&limit=1000")
            for cat in ("linear", "inverse")]


def _rest_error(msg: dict[str, Any]) -> str | None:
    if msg.get("retCode") != 0:
        return f"retCode={msg.get('retCode')!r} {msg.get('retMsg')!r}"
    return None


def _rest_body(body: str) -> dict[str, Any]:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    result = kit.member(msg, "result", dict, "missing result.list")
    kit.member(result, "list", list, "missing result.list")
    return result


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    result = _rest_body(body)
    category = result.get("category") or dict(parse_qsl(urlsplit(url).query)).get("category")
    for item in result["list"]:
        if not isinstance(item, dict) or item.get("status") != "Trading":
            continue
        symbol, base, quote = item.get("symbol"), item.get("baseCoin"), item.get("quoteCoin")
        if not (isinstance(symbol, str) and symbol and isinstance(base, str) and base
                and isinstance(quote, str) and quote):
            continue
        market = _CONTRACT_MARKET.get(str(item.get("contractType")))
        if market is None and category in ("linear", "inverse"):
            market = category
        if market is None:
            continue
        meta.instruments[symbol] = kit.Instrument(symbol=symbol, base=base, quote=quote, market=market)


def rest_next(url: str, body: str) -> str | None:
    try:
        cursor = _rest_body(body).get("nextPageCursor")
    except kit.FrameError:
        return None
    if not isinstance(cursor, str) or not cursor:
        return None
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "cursor"] + [("cursor", cursor)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def subscribe_messages(symbols: list[str]) -> list[str]:
    """Chunked subscribe messages: ≤ SUBSCRIBE_CHUNK args and ≤ SUBSCRIBE_MAX_CHARS each."""
    out: list[str] = []
    chunk: list[str] = []

    def flush() -> None:
        if chunk:
            out.append(orjson.dumps({"op": "subscribe", "req_id": str(len(out) + 1),
                                     "args": chunk}).decode())

    size = 0
    for sym in symbols:
        arg = TOPIC + sym
        cost = len(arg) + 3  # quotes and comma
        if chunk and (len(chunk) >= SUBSCRIBE_CHUNK or size + cost > SUBSCRIBE_MAX_CHARS - 100):
            flush()
            chunk, size = [], 0
        chunk.append(arg)
        size += cost
    flush()
    return out


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    conns = []
    for name, key, default in (("linear", "ws_linear", WS_LINEAR),
                               ("inverse", "ws_inverse", WS_INVERSE)):
        symbols = sorted(s for s, i in meta.instruments.items() if i.market == name)
        if symbols:  # a connection with nothing to subscribe would look healthy and be silent
            conns.append(kit.Connection(name=name, url=urls.get(key, default),
                                    subscribe=subscribe_messages(symbols), topics=tuple(symbols)))
    return conns


def ping_message(seq: int) -> str:
    return '{"op":"ping"}'


OI_PATH = "/v5/market/tickers"
#: Funding interval where a tickers body has no ``fundingIntervalHour`` (older bodies).
DEFAULT_FUNDING_HOURS = 8.0


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, f"{OI_PATH}?category={cat}") for cat in ("linear", "inverse")]


def _one_side(item: dict[str, Any]) -> float:
    """Open interest of ONE side: ``singleOpenInterest``, else half the both-sides sum."""
    if "singleOpenInterest" in item:
        return kit.num_str(item, "singleOpenInterest")
    return kit.num_str(item, "openInterest") / 2.0


def _funding(item: dict[str, Any]) -> tuple[float | None, float | None]:
    """(rate per interval, interval hours); (None, None) for a dated future or no rate."""
    delivery = item.get("deliveryTime")
    if isinstance(delivery, str) and delivery not in ("", "0"):
        return None, None  # a dated future: no funding
    if item.get("fundingRate") in (None, ""):
        return None, None
    rate = kit.num_str(item, "fundingRate")
    hours = item.get("fundingIntervalHour")
    interval = DEFAULT_FUNDING_HOURS if hours in (None, "") else kit.num_str(
        item, "fundingIntervalHour")
    return rate, interval


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    result = kit.member(msg, "result", dict, "missing result.list")
    items = kit.member(result, "list", list, "missing result.list")
    ts = kit.ms(msg, "time") if "time" in msg else recv_ts

    def build(item: Any) -> kit.OpenInterest | None:
        if not isinstance(item, dict):
            raise kit.FrameError("unexpected_shape", "ticker is not an object")
        inst = meta.get(kit.required_str(item, "symbol"))
        if inst is None:
            return None  # not a Trading instrument of ours (yet: metadata refreshes)
        side = _one_side(item)
        mark = kit.num_str(item, "markPrice")
        if mark <= 0:
            raise kit.FrameError("bad_number", f"markPrice={item.get('markPrice')!r}")
        rate, interval = _funding(item)
        if inst.market == "inverse":  # one side in USD (1-USD contracts)
            coins, usd = side / mark, side
        else:
            coins, usd = side, side * mark
        return kit.oi_record(exchange=ID, symbol=inst.symbol, base=inst.base, market=inst.market,
                             oi_coins=coins, oi_usd=usd, price=mark, funding_rate=rate,
                             funding_interval_hours=interval, ts=ts, recv_ts=recv_ts)

    return kit.oi_frame(items, build)


def _market_from_source(source: str) -> Market:
    path = urlsplit(source).path.rstrip("/")
    if path.endswith("/inverse"):
        return "inverse"
    if path.endswith("/linear"):
        return "linear"
    raise kit.FrameError("unknown_symbol", f"no metadata and source {source!r} names no category")


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.frame_object(text)
    op = msg.get("op")
    if op is not None:
        if op in ("ping", "pong"):
            return kit.PONG
        if op == "subscribe":
            if msg.get("success") is True:
                return kit.ACK
            raise kit.FrameError("subscribe_error", str(msg.get("ret_msg"))[:200])
        if msg.get("success") is False:
            raise kit.FrameError("venue_error", f"op={op!r} {str(msg.get('ret_msg'))[:200]}")
        return kit.INFO
    topic = msg.get("topic")
    if not isinstance(topic, str):
        raise kit.FrameError("unexpected_shape", "neither op nor topic")
    if not topic.startswith(TOPIC):
        raise kit.FrameError("unexpected_channel", topic[:100])
    events = []
    for entry in kit.objects(kit.member(msg, "data", list, "data is not a list"), "data entry"):
        symbol = entry.get("s") or topic[len(TOPIC):]
        if not isinstance(symbol, str) or not symbol:
            raise kit.FrameError("missing_field", "s")
        side = kit.side_from_position_side(str(entry.get("S", "")))
        size, price, ts = kit.num_str(entry, "v"), kit.num_str(entry, "p"), kit.ms(entry, "T")
        if size < 0 or price <= 0 or ts <= 0:
            raise kit.FrameError("bad_number", f"v={entry.get('v')!r} p={entry.get('p')!r} T={entry.get('T')!r}")
        inst = meta.get(symbol)
        if inst:
            base, quote, market = inst.base, inst.quote, inst.market
        else:
            market = _market_from_source(source)
            base, quote = kit.split_symbol(symbol)
        qty, notional = kit.amounts(size, price, market)  # inverse v is USD, linear v base
        events.append(kit.event(
            exchange=ID, symbol=symbol, base=base, quote=quote, market=market, side=side,
            price=price, qty=qty, notional_usd=notional, ts=ts, recv_ts=recv_ts,
            sampled=False, qty_raw=entry.get("v")))
    return kit.parsed("data", tuple(events))


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="S is the liquidated POSITION side: Buy -> long, Sell -> short",
    unit_rule="linear: v base units, notional v*p; inverse: v USD, notional v, qty v/p",
    sampled=False,
    feed="v5 `allLiquidation.{symbol}` on `/v5/public/linear` and `/v5/public/inverse`, for "
         "every Trading symbol of `instruments-info` (paginated), in chunks of at most 200; new "
         "listings are subscribed on refresh.",
    coverage="complete: all liquidations (\"push all\"), in 500 ms batches.",
    # Bybit's documented 20 s ping; a 6 s pong timeout keeps a stall within 30 s.
    ping_interval=20.0,
    pong_timeout=6.0,
    # Frames: one symbol's 500 ms batch each (~0.1 KB per liquidation).
    max_frame_bytes=256 * 1024,
    default_urls={"ws_linear": WS_LINEAR, "ws_inverse": WS_INVERSE, "rest": REST},
    subscribe_for=subscribe_messages,
    metadata_refresh=900.0,
    oi_source=kit.url_has(OI_PATH),
    oi_rule="tickers (linear+inverse): one side = singleOpenInterest (else openInterest/2, "
            "Bybit's openInterest is both sides); linear base units x markPrice, inverse USD "
            "(coins = USD/markPrice); fundingRate per fundingIntervalHour (default 8 h); dated "
            "futures no funding",
)
