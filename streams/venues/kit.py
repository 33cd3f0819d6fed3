"""The venue kit: helpers for what venue parsers would otherwise each write again.

``base`` defines the contract between a venue and the runner (``VenueSpec``, ``Parsed``...) and the
primitive field readers; this module builds on it with the shapes several venues share: REST
bodies, required fields, lists of objects, contract units, the event that dead-letters instead of
raising, and the OKX-style ``event``/``arg``+``data`` envelope. Each helper keeps the exact
dead-letter reasons the venues used before, so metrics and recordings do not change with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote as url_quote

import orjson

from liqstress.event import EventError, LiquidationEvent, Market, make_event
from liqstress.labels import Side
from liqstress.open_interest import OIError, OpenInterest, make_oi

# Everything a venue module needs from base as well, so a venue imports one namespace
# (`from . import kit`) and every helper reads as kit.<name> where it is used.
from .base import ACK as ACK
from .base import DATA as DATA
from .base import INFO as INFO
from .base import PONG as PONG
from .base import RECONNECT as RECONNECT
from .base import Connection as Connection
from .base import FrameError as FrameError
from .base import HistorySpec as HistorySpec
from .base import Instrument as Instrument
from .base import Metadata as Metadata
from .base import Parsed as Parsed
from .base import VenueSpec as VenueSpec
from .base import decimal_string as decimal_string
from .base import json_number as json_number
from .base import loads as loads
from .base import ms as ms
from .base import num as num
from .base import num_any as num_any
from .base import num_str as num_str
from .base import parsed as parsed
from .base import plain_decimal as plain_decimal
from .base import price_frame as price_frame
from .base import side_from_order_side as side_from_order_side
from .base import side_from_position_side as side_from_position_side
from .base import split_symbol as split_symbol

_T = TypeVar("_T")

#: ``VenueSpec`` fields a venue module fills with a function of the same name.
HOOKS = ("rest_urls", "connections", "parse", "load_rest", "rest_next", "ping_message",
         "oi_urls", "oi_source", "parse_oi")


def hooks(namespace: dict[str, Any]) -> dict[str, Any]:
    """The ``VenueSpec`` hooks a venue module defines under their field names, for
    ``VenueSpec(**hooks(globals()), ...)``: the functions are the spec, so naming each one again
    in every ``VENUE`` adds nothing but a chance to wire the wrong one. A hook the module lacks
    keeps the ``VenueSpec`` default; one it imports is passed explicitly (only functions defined
    in the module itself are picked up, so an import never becomes a hook unseen)."""
    module = namespace["__name__"]
    return {name: namespace[name] for name in HOOKS
            if callable(namespace.get(name)) and namespace[name].__module__ == module}

#: A venue's reading of its REST error reply: a detail for ``rest_error``, or None when the
#: body is not an error.
RestError = Callable[[dict[str, Any]], str | None]


def rest_url(urls: dict[str, str], default: str, path: str) -> str:
    """``path`` under the REST base: the ``rest`` URL override (simulators), else ``default``."""
    return f"{urls.get('rest', default).rstrip('/')}{path}"


def history_url(identity: str, start_ms: int | None, params: str, cursor: str | None) -> str:
    """A history request of a venue that pages by an opaque ``cursor``: ``identity`` alone
    when ``start_ms`` is None (the recorded source), else with ``&params`` and the cursor
    (URL-quoted: cursors are the venue's base64 or JSON text)."""
    if start_ms is None:
        return identity
    url = f"{identity}&{params}"
    return url + (f"&cursor={url_quote(cursor, safe='')}" if cursor is not None else "")


def rest_json(body: str, kind: type[_T], shape: str, error: RestError | None = None) -> _T:
    """A REST body that must be JSON of ``kind``. An object that ``error`` recognises is the
    venue refusing us (``rest_error``: retried, and reported as such, not as a parser fault);
    anything else not of ``kind`` is ``unexpected_shape`` with ``shape`` as the detail."""
    msg = loads(body)
    if error is not None and isinstance(msg, dict):
        problem = error(msg)
        if problem is not None:
            raise FrameError("rest_error", problem)
    if not isinstance(msg, kind):
        raise FrameError("unexpected_shape", shape)
    return msg


def code_error(msg: dict[str, Any]) -> str:
    """The ``rest_error`` detail of a ``{"code": ..., "msg": ...}`` reply (OKX, Binance)."""
    return f"code={msg.get('code')!r} {str(msg.get('msg'))[:200]!r}"


def member(obj: dict[str, Any], key: str, kind: type[_T], detail: str | None = None) -> _T:
    """``obj[key]``, which must be of ``kind``; ``unexpected_shape`` (``detail``, by default
    "missing <key>") otherwise."""
    val = obj.get(key)
    if not isinstance(val, kind):
        raise FrameError("unexpected_shape", f"missing {key}" if detail is None else detail)
    return val


def required_str(obj: dict[str, Any], key: str, label: str | None = None) -> str:
    """A non-empty string field (symbol, id); ``missing_field`` (``label`` or ``key``) if absent:
    an event without it could be neither attributed nor deduplicated."""
    val = obj.get(key)
    if not isinstance(val, str) or not val:
        raise FrameError("missing_field", key if label is None else label)
    return val


def objects(items: Iterable[Any], what: str) -> Iterator[dict[str, Any]]:
    """The items of a data list, each of which must be an object: one that is not makes the
    whole frame a dead letter (``"<what> is not an object"``) rather than a silent gap."""
    for item in items:
        if not isinstance(item, dict):
            raise FrameError("unexpected_shape", f"{what} is not an object")
        yield item


_orjson_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def frame_object(text: str) -> dict[str, Any]:
    """A websocket frame that must be a JSON object."""
    try:  # loads(), inline: this runs for every frame
        msg = _orjson_loads(text)
    except _JSONDecodeError as exc:
        raise FrameError("malformed_json", str(exc)[:200]) from exc
    if type(msg) is not dict:  # orjson builds plain dicts only
        raise FrameError("unexpected_shape", "frame is not an object")
    return msg  # type: ignore[no-any-return]


def positive(item: dict[str, Any], key: str) -> float | None:
    """A positive, finite number from instrument metadata (a JSON number or a decimal string,
    never a boolean or a padded string), or None: one odd listing is left out (its events stay
    unpriced) instead of failing the whole load."""
    val = item.get(key)
    try:
        out = decimal_string(val, key) if type(val) is str else json_number(val, key)
    except FrameError:
        return None
    return out if out > 0 else None


def amounts(size: float, price: float, market: Market,
            contract_value: float = 1.0) -> tuple[float, float]:
    """(base qty, notional in the quote currency) of ``size`` contracts of ``contract_value``
    each. An inverse contract is worth quote currency (USD), so its notional needs no price and
    the base qty is derived from it; a linear contract is base units, priced at ``price``."""
    if market == "inverse":
        notional = size * contract_value
        return notional / price, notional
    qty = size * contract_value
    return qty, qty * price


def event(*, exchange: str, symbol: str, base: str, quote: str, market: Market, side: Side,
          price: float, qty: float | None, notional_usd: float | None, ts: float,
          recv_ts: float, sampled: bool, qty_raw: str | float | None = None,
          venue_id: str | None = None) -> LiquidationEvent:
    """``make_event`` for parsers, with its signature: an ``EventError`` becomes the frame's
    dead letter (``invalid_event``). Written out rather than wrapped with ``*args/**kwargs``:
    it runs once per event."""
    try:
        return make_event(exchange=exchange, symbol=symbol, base=base, quote=quote,
                          market=market, side=side, price=price, qty=qty,
                          notional_usd=notional_usd, ts=ts, recv_ts=recv_ts, sampled=sampled,
                          qty_raw=qty_raw, venue_id=venue_id)
    except EventError as exc:
        # A value the event schema refuses is the venue's frame at fault, not the parser.
        raise FrameError("invalid_event", str(exc)) from exc


def okx_envelope(text: str, arg_key: str,
                 arg_value: str) -> Parsed | tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """The envelope OKX and Bitget share: the text ``pong``; ``{"event": ...}`` control frames
    (``subscribe`` acks, ``error`` = ``subscribe_error``, anything else info); else
    ``{"arg": {...}, "data": [...]}`` whose ``arg[arg_key]`` (OKX ``channel``, Bitget
    ``topic``) must be ``arg_value`` (``unexpected_<arg_key>`` otherwise), returned as
    (message, arg, data). Another channel/topic is ``unexpected_channel``, as for every venue."""
    # Plain text, not JSON. A frame starting with "{" can never strip to "pong": strip only
    # the others.
    if text[:1] != "{" and text.strip() == "pong":
        return PONG
    msg = frame_object(text)
    control = msg.get("event")
    if control is not None:
        if control == "subscribe":
            return ACK
        if control == "error":
            raise FrameError("subscribe_error",
                             f"code={msg.get('code')!r} {str(msg.get('msg'))[:200]}")
        return INFO  # unsubscribe, notices (service upgrade, channel-conn-count)
    arg, data = msg.get("arg"), msg.get("data")
    if not isinstance(arg, dict) or not isinstance(data, list):
        raise FrameError("unexpected_shape", "neither event nor arg+data")
    if arg.get(arg_key) != arg_value:
        raise FrameError("unexpected_channel", str(arg.get(arg_key))[:100])
    return msg, arg, data


# ---- open interest and funding ---------------------------------------------------------------


def oi_record(*, exchange: str, symbol: str, base: str, market: str, oi_coins: float | None,
              oi_usd: float | None, price: float | None, funding_rate: float | None,
              funding_interval_hours: float | None, ts: float,
              recv_ts: float) -> OpenInterest:
    """``make_oi`` for parsers: a value it refuses is ``FrameError("bad_open_interest")``,
    which ``oi_frame`` counts as one skipped instrument."""
    try:
        return make_oi(exchange=exchange, symbol=symbol, base=base, market=market,
                       oi_coins=oi_coins, oi_usd=oi_usd, price=price, funding_rate=funding_rate,
                       funding_interval_hours=funding_interval_hours, ts=ts, recv_ts=recv_ts)
    except OIError as exc:
        raise FrameError("bad_open_interest", str(exc)) from exc


def oi_frame(items: Iterable[Any],
             build: Callable[[Any], OpenInterest | None]) -> Parsed:
    """The outcome of one OI poll body: ``build`` turns each listed instrument into a record,
    or None for one that is not ours (spot, options, another settle currency). An instrument
    it cannot read (a FrameError, e.g. a missing or non-numeric field) is skipped: one odd
    listing must not cost the other few hundred. A body whose instruments are ALL unreadable
    is the error ``bad_open_interest``; none of ours at all is ``info``."""
    records: list[OpenInterest] = []
    bad = 0
    first = ""
    for item in items:
        try:
            rec = build(item)
        except FrameError as exc:
            bad += 1
            first = first or str(exc)
            continue
        if rec is not None:
            records.append(rec)
    if bad and not records:
        raise FrameError("bad_open_interest", f"{bad} unusable instruments; first: {first}"[:300])
    return Parsed(kind="data" if records else "info", open_interest=tuple(records),
                  unpriced=sum(1 for r in records if r.oi_usd is None), skipped=bad)


def url_has(*markers: str) -> Callable[[str], bool]:
    """An ``oi_source`` predicate: the REST sources (URL, ``#`` POST body included) that
    contain one of ``markers`` are open-interest polls."""
    def oi_source(source: str) -> bool:
        return any(m in source for m in markers)
    return oi_source
