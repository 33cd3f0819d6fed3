"""The one canonical liquidation event shared by collectors (streams/) and the worker (agents/).

Pure module: no Kafka, Faust or websocket imports. The JSON Schema of the wire form is
``liqstress/schemas/liquidation.schema.json``; ``tests/test_event.py`` keeps both in step.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import orjson

SCHEMA_VERSION = 1
Side = Literal["long", "short"]
Market = Literal["linear", "inverse", "spot"]


class EventError(ValueError):
    """A payload that cannot become a valid event."""


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
        return orjson.dumps(asdict(self))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def event_id(exchange: str, symbol: str, ts: float, side: str, price: float,
             qty_raw: str | float | None, venue_id: str | None = None) -> str:
    """Deterministic dedupe key: the same liquidation seen twice (reconnect, replay,
    a restarted collector) hashes to the same id. Venue-native ids win when present."""
    if venue_id:
        basis = f"{exchange}|{symbol}|{venue_id}"
    else:
        basis = f"{exchange}|{symbol}|{int(round(ts * 1000))}|{side}|{price!r}|{qty_raw}"
    return hashlib.blake2b(basis.encode(), digest_size=12).hexdigest()


def _check_values(side: str, market: str, price: float, ts: float, qty: float | None,
                  notional_usd: float | None) -> None:
    if side not in ("long", "short"):
        raise EventError(f"side must be long|short, got {side!r}")
    if market not in ("linear", "inverse", "spot"):
        raise EventError(f"market must be linear|inverse|spot, got {market!r}")
    for name, val in (("price", price), ("ts", ts)):
        if not math.isfinite(val) or val <= 0:
            raise EventError(f"{name} must be a positive finite number, got {val!r}")
    if qty is not None and (not math.isfinite(qty) or qty < 0):
        raise EventError(f"qty must be >= 0, got {qty!r}")
    if notional_usd is not None and (not math.isfinite(notional_usd) or notional_usd < 0):
        raise EventError(f"notional_usd must be >= 0, got {notional_usd!r}")


def make_event(*, exchange: str, symbol: str, base: str, quote: str, market: Market,
               side: Side, price: float, qty: float | None, notional_usd: float | None,
               ts: float, recv_ts: float, sampled: bool, qty_raw: str | float | None = None,
               venue_id: str | None = None) -> LiquidationEvent:
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


_FIELDS = ("v", "id", "exchange", "symbol", "base", "quote", "market", "side", "price", "qty",
           "notional_usd", "ts", "recv_ts", "sampled")


def event_from_json(data: bytes | str | dict[str, Any]) -> LiquidationEvent:
    """Decode and check a wire event; raises EventError with a reason on anything off."""
    try:
        obj = data if isinstance(data, dict) else orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EventError("event must be a JSON object")
    missing = [f for f in _FIELDS if f not in obj]
    if missing:
        raise EventError(f"missing fields: {', '.join(missing)}")
    if obj["v"] != SCHEMA_VERSION:
        raise EventError(f"unsupported schema version {obj['v']!r}")
    if obj["side"] not in ("long", "short"):
        raise EventError(f"bad side {obj['side']!r}")
    for name in ("id", "exchange", "symbol", "base", "quote"):
        if not isinstance(obj[name], str):
            raise EventError(f"{name} must be a string")
    for name in ("price", "ts", "recv_ts", "qty", "notional_usd"):
        val = obj[name]
        if val is None and name in ("qty", "notional_usd"):
            continue
        if isinstance(val, bool) or not isinstance(val, int | float):
            raise EventError(f"{name} must be a number, got {val!r}")
    if not isinstance(obj["sampled"], bool):
        raise EventError("sampled must be a boolean")
    # The same value checks as for events we build ourselves: a bad record from another
    # producer must become a dead letter, not crash the worker.
    _check_values(obj["side"], obj["market"], obj["price"], obj["ts"], obj["qty"],
                  obj["notional_usd"])
    return LiquidationEvent(**{f: obj[f] for f in _FIELDS})
