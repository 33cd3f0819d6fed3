"""Binance USD-M futures: the all-market ``!forceOrder@arr`` stream.

- Route: since the 2026 route split the stream lives under ``/market``; the legacy unrouted URL
  still accepts the connection and then delivers nothing, which looks healthy. Use ``/market``.
- Side: ``o.S`` is the side of the liquidation ORDER. A forced SELL closes a long.
- Units: ``q``/``z`` are base units; notional is ``z × ap`` (what filled), else ``q × p``.
- Time: ``o.T`` (trade time); ``E`` is the push time, ~1 s later because of the snapshot rule.
- Sampling: at most one liquidation per symbol per 1000 ms is pushed, so totals are a floor.
- Liveness: the server's protocol pings never reach the app, so we send ``LIST_SUBSCRIPTIONS``
  and treat its ``{"result": [...], "id": n}`` reply as the pong.
- Prices: a second connection takes ``!markPrice@arr@1s`` (also a ``/market`` stream): a JSON
  ARRAY of ``markPriceUpdate`` objects, ``p`` the mark price, ``E`` its time. One frame per
  ``PRICE_INTERVAL`` seconds is kept. Only USDT perpetuals (no ``_`` delivery suffix) become
  ticks: one price per coin, and USDC twins would only repeat it. ``prices=off`` in the venue
  URLs turns the connection off.
- Open interest and funding (REST poll, ``oi_urls``, base URL key ``rest``): first
  ``GET {rest}/fapi/v1/premiumIndex`` (every symbol: ``markPrice``, ``lastFundingRate``, ``time``),
  kept in ``meta.oi_context``; then ``GET {rest}/fapi/v1/openInterest?symbol=<COIN>USDT`` for each
  coin of ``DEFAULT_COIN_ALLOWLIST`` (Binance has OI only per symbol; 7 requests of weight <= 10
  per minute). ``openInterest`` is base coins at ``time``; USD = coins x the stashed mark, used
  only when its ``time`` is within ``MARK_MAX_AGE`` seconds of the OI ``time`` (else USD and
  price null). Funding: ``lastFundingRate``, a fraction per 8 h (the premiumIndex listing names
  no interval; ``/fapi/v1/fundingInfo`` would list the exceptions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from liqstress.labels import DEFAULT_COIN_ALLOWLIST, Side
from liqstress.prices import PriceTick, make_tick

from . import kit

ID = "binance"
WS_URL = "wss://fstream.binance.com/market/ws/!forceOrder@arr"
PRICES_URL = "wss://fstream.binance.com/market/ws/!markPrice@arr@1s"
#: Seconds between kept mark-price frames (signals work on 5-minute price slots).
PRICE_INTERVAL = 10.0
REST = "https://fapi.binance.com"
PREMIUM_PATH = "/fapi/v1/premiumIndex"
OI_PATH = "/fapi/v1/openInterest"
#: Hours between fundings unless ``/fapi/v1/fundingInfo`` lists the symbol with another.
FUNDING_INTERVAL_HOURS = 8.0
#: A mark older (or newer) than this many seconds against the OI time never prices it.
MARK_MAX_AGE = 120.0
_OI_CONTEXT = "binance_marks"


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    # Streams are named in the URL: no subscribe message is needed.
    conns = [kit.Connection(name="usdm", url=urls.get("ws", WS_URL))]
    prices = urls.get("prices", PRICES_URL)
    if prices != "off":
        conns.append(kit.Connection(name="markprice", url=prices, kind="prices",
                                min_interval=PRICE_INTERVAL))
    return conns


def parse_mark_prices(items: list[Any], recv_ts: float) -> kit.Parsed:
    """A ``!markPrice@arr`` frame. Items that are not USDT perpetuals are skipped; a bad
    item is skipped too (one odd symbol must not cost the other prices), but a frame with no
    usable item at all is an error."""
    ticks: list[PriceTick] = []
    bad = foreign = 0
    for item in items:
        if not isinstance(item, dict) or item.get("e") != "markPriceUpdate":
            foreign += 1
            continue
        symbol = item.get("s")
        if not isinstance(symbol, str) or "_" in symbol or not symbol.endswith("USDT"):
            continue
        try:
            price, ts = kit.num_str(item, "p"), kit.ms(item, "E")
            base, _ = kit.split_symbol(symbol, ("USDT",))
            ticks.append(make_tick(exchange=ID, symbol=symbol, base=base, price=price, ts=ts,
                                   recv_ts=recv_ts))
        except (kit.FrameError, ValueError):
            bad += 1
    if foreign == len(items) and items:
        raise kit.FrameError("unexpected_shape", "array without markPriceUpdate items")
    return kit.price_frame(ticks, bad + foreign)


def ping_message(seq: int) -> str:
    return orjson.dumps({"method": "LIST_SUBSCRIPTIONS", "id": seq}).decode()


def decode_force_order(text: str, msg: Any = None,
                       ) -> tuple[dict[str, Any], dict[str, Any], str] | kit.Parsed:
    """The ``forceOrder`` envelope both Binance futures families share: (message, order,
    symbol), or the Parsed pong for a ``LIST_SUBSCRIPTIONS`` reply. ``msg``: the frame
    already decoded, if it was (anything but an object is decoded again, for its error)."""
    if type(msg) is not dict:
        msg = kit.frame_object(text)
    if "result" in msg and "id" in msg:
        return kit.PONG
    if "error" in msg:
        raise kit.FrameError("venue_error", str(msg["error"])[:200])
    if msg.get("e") != "forceOrder":
        raise kit.FrameError("unexpected_shape", f"event type {msg.get('e')!r}")
    o = kit.member(msg, "o", dict)
    return msg, o, kit.required_str(o, "s", "o.s")


def order_fill(o: dict[str, Any]) -> tuple[float, float]:
    """(amount, price) of a forceOrder: what filled (``z`` at ``ap``), else the order (``q`` at
    ``p``). The amount is base units on USD-M, contracts on COIN-M."""
    filled = kit.num_str(o, "z") if "z" in o else 0.0
    avg = kit.num_str(o, "ap") if "ap" in o else 0.0
    if filled > 0 and avg > 0:
        return filled, avg
    return kit.num_str(o, "q"), kit.num_str(o, "p")


def order_time(msg: dict[str, Any], o: dict[str, Any]) -> float:
    """``o.T`` (trade time); ``E`` (push time, ~1 s later) only when it is missing."""
    return kit.ms(o, "T") if "T" in o else kit.ms(msg, "E")


_loads = orjson.loads
_SPLIT_CACHE_MAX = 4096
_split_cache: dict[str, tuple[str, str]] = {}


def cached_split(symbol: str) -> tuple[str, str]:
    """``kit.split_symbol(symbol)`` remembered (a bounded dict: the symbols of a venue are a
    few hundred, garbage must not grow it without end). Only successes are kept."""
    pair = _split_cache.get(symbol)
    if pair is None:
        pair = kit.split_symbol(symbol)
        if len(_split_cache) >= _SPLIT_CACHE_MAX:
            _split_cache.clear()
        _split_cache[symbol] = pair
    return pair


#: The side rule of ``kit.side_from_order_side``, as a lookup for the fast paths.
_ORDER_SIDE: dict[str, Side] = {"sell": "long", "buy": "short"}
_plain = kit.plain_decimal
_JSONDecodeError = orjson.JSONDecodeError
_MAX_MS = 2**63


def fast_order(msg: Any) -> tuple[dict[str, Any], str, float, float, float, Side] | None:
    """The happy path of ``decode_force_order`` + the side rule + ``order_fill`` +
    ``order_time`` for a decoded frame: a well-formed forceOrder that filled (``z`` and ``ap``
    plain decimals > 0, integer ``T``) gives (order, symbol, amount, price, ts, side); anything
    else None, and the full path decides (with its dead letters). Every value is the one the
    full path computes: this only gives up earlier."""
    if (type(msg) is not dict or msg.get("e") != "forceOrder" or "error" in msg
            or "result" in msg):
        return None
    o = msg.get("o")
    if type(o) is not dict:
        return None
    symbol, side, t_ms = o.get("s"), o.get("S"), o.get("T")
    if not (type(symbol) is str and symbol and type(side) is str and type(t_ms) is int
            and 0 <= t_ms < _MAX_MS):
        return None
    side = _ORDER_SIDE.get(side.lower())
    qty, price = _plain(o.get("z")), _plain(o.get("ap"))
    if side is None or qty is None or price is None or not (qty > 0 and price > 0):
        return None
    return o, symbol, qty, price, t_ms / 1000.0, side


def decoded_frame(text: str) -> Any:
    """The frame's JSON, or None when it is not JSON (the full path reports that)."""
    try:
        return _loads(text)
    except _JSONDecodeError:
        return None


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = decoded_frame(text)
    # A frame that starts with "[" never is a forceOrder (fast_order gives None for it), so
    # taking the price frames first changes no outcome.
    if text.startswith("["):
        if isinstance(msg, list):
            return parse_mark_prices(msg, recv_ts)
        kit.loads(text)  # malformed_json (anything else is not a list: fall through)
    return force_order_frame(text, msg, recv_ts, meta, ID)


def force_order_frame(text: str, msg: Any, recv_ts: float, meta: kit.Metadata, exchange: str,
                      *, listed_only: bool = False,
                      split: Callable[[str], tuple[str, str]] = cached_split) -> kit.Parsed:
    """A frame of a USD-M style ``forceOrder`` stream (Binance USD-M; Aster, which mirrors it):
    its one event, or the Parsed of a ``LIST_SUBSCRIPTIONS`` reply. ``msg``: the frame as
    ``decoded_frame`` gave it. Amounts are base units in a USD stablecoin: notional ``z x ap``
    (fallback ``q x p``). A symbol the metadata lacks is named by ``split`` and, with
    ``listed_only`` (a venue whose metadata says which quotes are USD), left unpriced: qty and
    notional null, counted, never a guess."""
    fast = fast_order(msg)  # the happy path; None: the full path below decides
    if fast is not None:
        o, symbol, qty, price, ts, side = fast
        qty_raw = o["z"]
    else:
        # The full path, in the order it always ran, on the JSON decoded once.
        decoded = decode_force_order(text, msg)
        if isinstance(decoded, kit.Parsed):
            return decoded
        msg, o, symbol = decoded
        side = kit.side_from_order_side(str(o.get("S", "")))
        qty, price = order_fill(o)
        ts = order_time(msg, o)
        qty_raw = o.get("z", o.get("q"))
    inst = meta.get(symbol)
    base, quote = (inst.base, inst.quote) if inst else split(symbol)
    if qty < 0 or price <= 0:  # the fast path only takes qty and price > 0
        raise kit.FrameError("bad_number", f"q/z={qty!r} p/ap={price!r}")
    if inst is None and listed_only:
        ev = kit.event(exchange=exchange, symbol=symbol, base=base, quote=quote,
                       market="linear", side=side, price=price, qty=None, notional_usd=None,
                       ts=ts, recv_ts=recv_ts, sampled=True, qty_raw=qty_raw)
        return kit.parsed("data", (ev,), unpriced=1)
    return kit.parsed("data", (kit.event(
        exchange=exchange, symbol=symbol, base=base, quote=quote, market="linear", side=side,
        price=price, qty=qty, notional_usd=qty * price, ts=ts, recv_ts=recv_ts, sampled=True,
        qty_raw=qty_raw),))


# ---- open interest and funding -------------------------------------------------------------


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    # premiumIndex first: its marks and funding are stashed for the per-symbol bodies.
    return [kit.rest_url(urls, REST, PREMIUM_PATH)] + [
        kit.rest_url(urls, REST, f"{OI_PATH}?symbol={coin}USDT")
        for coin in DEFAULT_COIN_ALLOWLIST]


def _rest_error(msg: dict[str, Any]) -> str | None:
    return kit.code_error(msg) if "code" in msg and "msg" in msg else None


def optional_rate(item: dict[str, Any], key: str) -> float | None:
    """A funding rate sent as a decimal string; ``""`` (delivery contracts) or absent is None."""
    if item.get(key) in (None, ""):
        return None
    return kit.num_str(item, key)


def stash_marks(body: str, meta: kit.Metadata, key: str) -> kit.Parsed:
    """A premiumIndex listing (USD-M and COIN-M share the shape): symbol -> (mark, funding
    rate or None, time), kept in ``meta.oi_context[key]`` for the open-interest bodies of the
    same poll. Items that cannot be read are left out; a listing of nothing but those is
    ``bad_open_interest``."""
    items = kit.rest_json(body, list, "premiumIndex is not a list", _rest_error)
    marks: dict[str, tuple[float, float | None, float]] = {}
    bad = 0
    for item in items:
        try:
            if not isinstance(item, dict):
                raise kit.FrameError("unexpected_shape", "premiumIndex item is not an object")
            symbol = kit.required_str(item, "symbol")
            mark = kit.num_str(item, "markPrice")
            if not mark > 0:
                raise kit.FrameError("bad_number", f"markPrice={item.get('markPrice')!r}")
            marks[symbol] = (mark, optional_rate(item, "lastFundingRate"), kit.ms(item, "time"))
        except kit.FrameError:
            bad += 1
    if bad and not marks:
        raise kit.FrameError("bad_open_interest", f"{bad} unusable premiumIndex items")
    meta.oi_context[key] = marks
    return kit.INFO


def fresh_mark(meta: kit.Metadata, key: str, symbol: str,
               ts: float) -> tuple[float, float | None] | None:
    """(mark, funding rate) stashed for ``symbol`` by this poll's premiumIndex, or None when
    there is none within ``MARK_MAX_AGE`` seconds of ``ts``."""
    entry = meta.oi_context.get(key, {}).get(symbol)
    if entry is None or abs(entry[2] - ts) > MARK_MAX_AGE:
        return None
    return entry[0], entry[1]


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    if PREMIUM_PATH in source:
        return stash_marks(body, meta, _OI_CONTEXT)
    msg = kit.rest_json(body, dict, "openInterest is not an object", _rest_error)

    def build(item: dict[str, Any]) -> Any:
        symbol = kit.required_str(item, "symbol")
        coins, ts = kit.num_str(item, "openInterest"), kit.ms(item, "time")
        base, _ = cached_split(symbol)
        marked = fresh_mark(meta, _OI_CONTEXT, symbol, ts)
        mark, rate = marked if marked is not None else (None, None)
        perpetual = "_" not in symbol
        rate = rate if perpetual else None
        return kit.oi_record(exchange=ID, symbol=symbol, base=base, market="linear",
                             oi_coins=coins, oi_usd=coins * mark if mark is not None else None,
                             price=mark, funding_rate=rate,
                             funding_interval_hours=FUNDING_INTERVAL_HOURS if rate is not None
                             else None, ts=ts, recv_ts=recv_ts)

    return kit.oi_frame([msg], build)


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="o.S is the liquidation order side: SELL -> long, BUY -> short",
    unit_rule="base units; notional z*ap (fallback q*p), quote USDT/USDC treated as USD; time "
              "o.T (trade time)",
    sampled=True,
    feed="`wss://fstream.binance.com/market/ws/!forceOrder@arr`: every USD-M symbol on one "
         "stream, named in the URL (the 2026 `/market` route; the old unrouted URL connects and "
         "stays silent).",
    coverage="**floor**: at most one liquidation per symbol per second is pushed.",
    oi_source=kit.url_has(PREMIUM_PATH, OI_PATH),
    oi_rule="openInterest base coins per allowlisted USDT perp x premiumIndex markPrice of the "
            "same poll (<= 2 min apart, else USD null); funding lastFundingRate per 8 h",
    # A stall within 30 s. The 60 s interval this had, plus the 30 s default pong timeout,
    # let a stall with the protocol pings still answered go unseen for up to 92 s.
    ping_interval=15.0,
    pong_timeout=10.0,
    # Frames: one forceOrder (~0.3 KB), but a !markPrice@arr frame lists every symbol
    # (~700 x 0.2 KB): the 1 MiB default.
    default_urls={"ws": WS_URL, "prices": PRICES_URL, "rest": REST},
    off_urls=("prices",),
)
