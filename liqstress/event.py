"""The one canonical liquidation event shared by collectors (streams/) and the worker (agents/).

Pure module: no Kafka, Faust or websocket imports. The JSON Schema of the wire form is
``liqstress/schemas/liquidation.schema.json``; ``tests/test_event.py`` keeps both in step.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

import orjson

from .labels import SIDES, Side

SCHEMA_VERSION = 1
Market = Literal["linear", "inverse", "spot"]

#: 2017-01-01T00:00:00Z. No venue we read had a liquidation feed before it: an earlier event
#: time is a unit error or garbage (milliseconds read as seconds give 1970).
EARLIEST_TS = 1_483_228_800.0
#: Venue clocks run a little ahead of ours, never a day: a later event time is garbage.
MAX_AHEAD_SECONDS = 86_400.0
#: Default cap on ONE liquidation's notional. The largest single liquidations ever reported are
#: in the hundreds of millions of USD; $5 billion is an order of magnitude above them and still
#: keeps any sum of capped values far from float overflow (docs/plausibility in README).
DEFAULT_MAX_NOTIONAL_USD = 5e9


class EventError(ValueError):
    """A payload that cannot become a valid event. ``reason`` is the dead-letter reason."""

    def __init__(self, message: str, reason: str = "invalid_event") -> None:
        super().__init__(message)
        self.reason = reason


def implausible(ts: float, recv_ts: float, notional_usd: float | None,
                max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD) -> EventError | None:
    """Why a well-formed event cannot be true, or None. Checked by the session for events a
    venue sent and by the worker for events read from Kafka, so both refuse the same ones."""
    if not EARLIEST_TS <= ts <= recv_ts + MAX_AHEAD_SECONDS:
        return EventError(f"event time {ts!r} is not between 2017-01-01 and receipt "
                          f"({recv_ts!r}) + 1 day", "implausible_time")
    if notional_usd is not None and notional_usd > max_notional_usd:
        return EventError(f"notional {notional_usd!r} USD is above the {max_notional_usd:.0f} "
                          f"USD cap for one liquidation", "implausible_notional")
    return None


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    v: int
    id: str
    exchange: str
    symbol: str
    base: str
    quote: str
    market: Market
    side: Side  # the POSITION that was liquidated, never the order side
    price: float
    qty: float | None  # base units
    notional_usd: float | None  # None when contract metadata is missing: never a guess
    ts: float  # venue event time, epoch seconds
    recv_ts: float  # our receipt time, epoch seconds
    sampled: bool

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.symbol}"

    def to_json(self) -> bytes:
        # orjson writes a dataclass field by field, in order: the same bytes as asdict() at a
        # tenth of the cost, on the path of every published event.
        return orjson.dumps(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The optional wire key of an event read back from a venue's history on start (the warm
#: start). Not a field of the event: the same liquidation seen live and in the history is ONE
#: event with one id, and the compiled parsers build events by slot. Optional and additive, so
#: the schema stays v1: every v1 reader (``event_from_json`` reads its fields and checks this
#: one only when present) and every record written before it still validate.
BACKFILL_KEY = "backfill"
_BACKFILL_TAIL = b',"backfill":true}'


def event_json(ev: LiquidationEvent, backfill: bool = False) -> bytes:
    """The wire form of ``ev``: ``to_json()``, plus ``"backfill": true`` for a history event."""
    data = ev.to_json()
    return data[:-1] + _BACKFILL_TAIL if backfill else data


def event_id(exchange: str, symbol: str, ts: float, side: str, price: float,
             qty_raw: str | float | None, venue_id: str | None = None) -> str:
    """Deterministic dedupe key: the same liquidation seen twice (reconnect, replay,
    a restarted collector) hashes to the same id. Venue-native ids win when present."""
    if venue_id:
        basis = f"{exchange}|{symbol}|{venue_id}"
    else:
        basis = f"{exchange}|{symbol}|{int(round(ts * 1000))}|{side}|{price!r}|{qty_raw}"
    return _blake2b(basis.encode(), digest_size=12).hexdigest()


def _check_values(side: str, market: str, price: float, ts: float, qty: float | None,
                  notional_usd: float | None) -> None:
    if side not in SIDES:
        raise EventError(f"side must be long|short, got {side!r}")
    if market not in _MARKETS:
        raise EventError(f"market must be linear|inverse|spot, got {market!r}")
    for name, val in (("price", price), ("ts", ts)):
        if not math.isfinite(val) or val <= 0:
            raise EventError(f"{name} must be a positive finite number, got {val!r}")
    if qty is not None and (not math.isfinite(qty) or qty < 0):
        raise EventError(f"qty must be >= 0, got {qty!r}")
    if notional_usd is not None and (not math.isfinite(notional_usd) or notional_usd < 0):
        raise EventError(f"notional_usd must be >= 0, got {notional_usd!r}")


def frozen_builder(cls: type, sets: tuple[str, ...]) -> type:
    """The slot layout of the frozen, slotted dataclass ``cls`` without its frozen
    ``__setattr__``, for building many instances fast.

    A constructor fills ``object.__new__(builder)`` with plain attribute stores and then
    re-labels it (``obj.__class__ = cls``, allowed between classes with the same slots) as
    ``cls``: the same object the dataclass ``__init__`` builds, at a fraction of the cost of its
    one ``object.__setattr__`` call per field. Nothing else may ever see a builder.

    ``sets`` names the fields its constructors store, in slot order: a field added to ``cls``
    fails here, at import, until they store it too (an unset slot would only show as an
    AttributeError far from the constructor). The stores stay written out in each constructor:
    a shared store function would add a call per object on the parse path."""
    slots = getattr(cls, "__slots__", None)
    if slots != sets or tuple(f.name for f in fields(cls)) != sets:
        raise TypeError(f"{cls.__name__}: the builder's fields {sets} are not its slots {slots}")
    return type(f"_{cls.__name__}Builder", (), {"__slots__": sets})


_FIELDS = ("v", "id", "exchange", "symbol", "base", "quote", "market", "side", "price", "qty",
           "notional_usd", "ts", "recv_ts", "sampled")
#: The wire fields, in slot order: event_from_json reads these, and it and make_event store
#: each one on an _EventBuilder.
_EventBuilder = frozen_builder(LiquidationEvent, _FIELDS)
_N_FIELDS = len(_FIELDS)

_blake2b = hashlib.blake2b
_MARKETS = ("linear", "inverse", "spot")
_INF = math.inf
_new_builder = object.__new__


def make_event(*, exchange: str, symbol: str, base: str, quote: str, market: Market,
               side: Side, price: float, qty: float | None, notional_usd: float | None,
               ts: float, recv_ts: float, sampled: bool, qty_raw: str | float | None = None,
               venue_id: str | None = None) -> LiquidationEvent:
    # Fast path for what parsers pass: floats that are in range and known labels, tested
    # inline (a NaN fails every comparison). Anything else takes the checked path below,
    # which raises exactly the errors it always did. Both give the same event and id.
    if not (type(price) is float and type(ts) is float and 0.0 < price < _INF
            and 0.0 < ts < _INF and (side == "long" or side == "short")
            and (market == "linear" or market == "inverse" or market == "spot")
            and (qty is None or (type(qty) is float and 0.0 <= qty < _INF))
            and (notional_usd is None
                 or (type(notional_usd) is float and 0.0 <= notional_usd < _INF))):
        return _make_event_checked(
            exchange=exchange, symbol=symbol, base=base, quote=quote, market=market,
            side=side, price=price, qty=qty, notional_usd=notional_usd, ts=ts,
            recv_ts=recv_ts, sampled=sampled, qty_raw=qty_raw, venue_id=venue_id)
    ev = _new_builder(_EventBuilder)
    # The id basis of event_id, written out: round() of a float is already an int.
    if venue_id:
        ev.id = _blake2b(f"{exchange}|{symbol}|{venue_id}".encode(), digest_size=12).hexdigest()
    else:
        ev.id = _blake2b(
            f"{exchange}|{symbol}|{round(ts * 1000)}|{side}|{price!r}|"
            f"{qty if qty_raw is None else qty_raw}".encode(), digest_size=12).hexdigest()
    ev.v = SCHEMA_VERSION
    ev.exchange = exchange
    ev.symbol = symbol
    ev.base = base
    ev.quote = quote
    ev.market = market
    ev.side = side
    ev.price = price
    ev.qty = qty
    ev.notional_usd = notional_usd
    ev.ts = ts
    ev.recv_ts = recv_ts if type(recv_ts) is float else float(recv_ts)
    ev.sampled = sampled
    ev.__class__ = LiquidationEvent  # type: ignore[assignment]
    return ev  # type: ignore[return-value]


def _make_event_checked(*, exchange: str, symbol: str, base: str, quote: str, market: Market,
                        side: Side, price: float, qty: float | None,
                        notional_usd: float | None, ts: float, recv_ts: float, sampled: bool,
                        qty_raw: str | float | None, venue_id: str | None) -> LiquidationEvent:
    """make_event for any other input (ints, bools, out-of-range values): check, coerce."""
    _check_values(side, market, price, ts, qty, notional_usd)
    return LiquidationEvent(
        v=SCHEMA_VERSION,
        id=event_id(exchange, symbol, ts, side, price, qty_raw if qty_raw is not None else qty,
                    venue_id),
        exchange=exchange, symbol=symbol, base=base, quote=quote, market=market, side=side,
        price=float(price), qty=None if qty is None else float(qty),
        notional_usd=None if notional_usd is None else float(notional_usd),
        ts=float(ts), recv_ts=float(recv_ts), sampled=sampled,
    )


_NUMBER_TYPES = (int, float)
_STRING_FIELDS = ("id", "exchange", "symbol", "base", "quote")
_time = time.time


def event_from_json(data: bytes | str | dict[str, Any]) -> LiquidationEvent:
    """Decode and check a wire event; raises EventError with a reason on anything off.

    The worker's rebuild runs this for every event it holds, so the checks are written out
    (exact ``type`` tests: a JSON boolean is never a number) rather than looped."""
    if isinstance(data, dict):
        obj = data
    else:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise EventError(f"not JSON: {exc}") from exc
    if type(obj) is not dict:
        raise EventError("event must be a JSON object")
    try:
        values = [obj[f] for f in _FIELDS]
    except KeyError:
        missing = [f for f in _FIELDS if f not in obj]
        raise EventError(f"missing fields: {', '.join(missing)}") from None
    v, id_, exchange, symbol, base, quote, market, side, price, qty, notional, ts, recv_ts, \
        sampled = values
    if v != SCHEMA_VERSION:
        raise EventError(f"unsupported schema version {v!r}")
    if side != "long" and side != "short":
        raise EventError(f"bad side {side!r}")
    if not (type(id_) is str and type(exchange) is str and type(symbol) is str
            and type(base) is str and type(quote) is str):
        bad = next(n for n in _STRING_FIELDS if not isinstance(obj[n], str))
        raise EventError(f"{bad} must be a string")
    for name, val in (("price", price), ("ts", ts), ("recv_ts", recv_ts), ("qty", qty),
                      ("notional_usd", notional)):
        if type(val) not in _NUMBER_TYPES and not (val is None and name in ("qty",
                                                                            "notional_usd")):
            raise EventError(f"{name} must be a number, got {val!r}")
    if type(sampled) is not bool:
        raise EventError("sampled must be a boolean")
    if len(obj) > _N_FIELDS and type(obj.get(BACKFILL_KEY, False)) is not bool:
        raise EventError("backfill must be a boolean")
    # The same value checks as for events we build ourselves: a bad record from another
    # producer must become a dead letter, not crash the worker.
    _check_values(side, market, price, ts, qty, notional)
    # Field by field, as the frozen dataclass's own __init__ does, without its per-call cost
    # (see frozen_builder).
    ev = _new_builder(_EventBuilder)
    ev.v = v
    ev.id = id_
    ev.exchange = exchange
    ev.symbol = symbol
    ev.base = base
    ev.quote = quote
    ev.market = market
    ev.side = side
    ev.price = price
    ev.qty = qty
    ev.notional_usd = notional
    ev.ts = ts
    ev.recv_ts = recv_ts
    ev.sampled = sampled
    ev.__class__ = LiquidationEvent  # type: ignore[assignment]
    return ev  # type: ignore[return-value]


def read_event(data: bytes | str | dict[str, Any],
               max_notional_usd: float = DEFAULT_MAX_NOTIONAL_USD) -> LiquidationEvent:
    """An event read from Kafka, where anyone with access may have written it: well-formed
    (:func:`event_from_json`) AND plausible, or EventError with the dead-letter reason."""
    ev = event_from_json(data)
    if not EARLIEST_TS <= ev.recv_ts <= _time() + MAX_AHEAD_SECONDS:
        raise EventError(f"receipt time {ev.recv_ts!r} is not between 2017-01-01 and now + "
                         f"1 day", "implausible_time")
    bad = implausible(ev.ts, ev.recv_ts, ev.notional_usd, max_notional_usd)
    if bad is not None:
        raise bad
    return ev
