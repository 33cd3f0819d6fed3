"""Open interest and funding: one record per venue instrument and poll.

Pure module (no Faust/Kafka/websocket). Collectors poll each venue's public REST listing of open
interest and funding (``VenueSpec.oi_urls``) and turn every instrument of a body into an
:class:`OpenInterest` record on the ``open_interest`` topic (key: coin; schema
``liqstress/schemas/open_interest.schema.json``). Workers read the topic as a broadcast, like
prices, and keep the newest record per instrument plus a short history for the leverage signals.

Units are normalised here, once, for every venue:

* ``oi_coins``: open interest in ONE coin (venue multipliers such as 1000PEPE divided out, like
  prices), the venue's own figure (one side of the book: what the venue calls open interest);
* ``oi_usd``: its USD value; ``None`` when the venue's contract metadata is missing (never a
  guess; the collector counts it);
* ``funding_rate``: a fraction per ``funding_interval_hours`` (0.0001 = 1 bp per interval);
  ``None`` for instruments without funding (dated futures) or when the venue sent none.
  :attr:`OpenInterest.funding_8h` puts every venue on the same 8-hour footing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from .event import EARLIEST_TS, MAX_AHEAD_SECONDS
from .windows import coin_scale
from .wire import json_record

SCHEMA_VERSION = 1
MARKETS = ("linear", "inverse")
#: One instrument's open interest above this is garbage, not a position book: the largest
#: single-venue books are tens of billions of USD.
MAX_OI_USD = 1e12
#: A funding rate beyond +-100 % per interval is a unit error (venues cap it at a few %).
MAX_FUNDING_ABS = 1.0
#: Funding intervals venues use (1 h Hyperliquid/dYdX, 4 h and 8 h elsewhere); up to a day.
MAX_FUNDING_INTERVAL_HOURS = 24.0


class OIError(ValueError):
    """A value that cannot be an open-interest record."""


@dataclass(frozen=True, slots=True)
class OpenInterest:
    v: int
    exchange: str
    symbol: str
    #: the coin, as in the liquidation windows (``1000PEPE`` -> ``PEPE``)
    coin: str
    market: str
    #: open interest in coins (per ONE coin); None when the contract size is unknown
    oi_coins: float | None
    #: open interest in USD; None when it cannot be valued (unknown contract size or price)
    oi_usd: float | None
    #: USD per one coin used to value the open interest (the venue's mark), or None
    price: float | None
    #: funding per interval, as a fraction; None = no funding on this instrument
    funding_rate: float | None
    funding_interval_hours: float | None
    #: venue time of the figures (receipt time where the venue sends none), epoch seconds
    ts: float
    recv_ts: float

    @property
    def key(self) -> str:
        return self.coin

    @property
    def funding_8h(self) -> float | None:
        """The funding rate scaled to an 8-hour interval (what most venues quote)."""
        if self.funding_rate is None or not self.funding_interval_hours:
            return None
        return self.funding_rate * 8.0 / self.funding_interval_hours

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = ("v", "exchange", "symbol", "coin", "market", "oi_coins", "oi_usd", "price",
           "funding_rate", "funding_interval_hours", "ts", "recv_ts")


def _number(name: str, val: Any, *, optional: bool = True) -> float | None:
    if val is None and optional:
        return None
    if type(val) not in (int, float) or not math.isfinite(val):
        raise OIError(f"{name} must be a finite number, got {val!r}")
    return float(val)


def _check(market: str, oi_coins: float | None, oi_usd: float | None, price: float | None,
           funding_rate: float | None, funding_interval_hours: float | None, ts: float,
           recv_ts: float) -> None:
    if market not in MARKETS:
        raise OIError(f"market must be one of {MARKETS}, got {market!r}")
    if oi_coins is not None and oi_coins < 0:
        raise OIError(f"oi_coins must be >= 0, got {oi_coins!r}")
    if oi_usd is not None and not 0 <= oi_usd <= MAX_OI_USD:
        raise OIError(f"oi_usd must be between 0 and {MAX_OI_USD:.0e}, got {oi_usd!r}")
    if price is not None and not price > 0:
        raise OIError(f"price must be > 0, got {price!r}")
    if funding_rate is not None:
        if abs(funding_rate) > MAX_FUNDING_ABS:
            raise OIError(f"funding_rate must be within +-{MAX_FUNDING_ABS}, got {funding_rate!r}")
        if funding_interval_hours is None:
            raise OIError("a funding_rate needs its funding_interval_hours")
    if funding_interval_hours is not None and not (
            0 < funding_interval_hours <= MAX_FUNDING_INTERVAL_HOURS):
        raise OIError(f"funding_interval_hours must be in (0, {MAX_FUNDING_INTERVAL_HOURS:.0f}],"
                      f" got {funding_interval_hours!r}")
    if not recv_ts > 0:
        raise OIError(f"recv_ts must be > 0, got {recv_ts!r}")
    if not EARLIEST_TS <= ts <= recv_ts + MAX_AHEAD_SECONDS:
        raise OIError(f"time {ts!r} is not between 2017-01-01 and receipt ({recv_ts!r}) + 1 day")


def make_oi(*, exchange: str, symbol: str, base: str, market: str, oi_coins: float | None,
            oi_usd: float | None, price: float | None, funding_rate: float | None,
            funding_interval_hours: float | None, ts: float, recv_ts: float) -> OpenInterest:
    """A checked record. ``oi_coins`` and ``price`` are per unit of the venue's ``base`` (per
    1000 PEPE for 1000PEPEUSDT); they are converted to one coin here. Raises :class:`OIError`
    for anything that cannot be true (negative or absurd open interest, a funding rate beyond
    +-100 %, a time outside 2017 .. receipt + 1 day)."""
    values = {name: _number(name, val) for name, val in (
        ("oi_coins", oi_coins), ("oi_usd", oi_usd), ("price", price),
        ("funding_rate", funding_rate), ("funding_interval_hours", funding_interval_hours))}
    ts_f = _number("ts", ts, optional=False)
    recv_f = _number("recv_ts", recv_ts, optional=False)
    assert ts_f is not None and recv_f is not None
    _check(market, values["oi_coins"], values["oi_usd"], values["price"],
           values["funding_rate"], values["funding_interval_hours"], ts_f, recv_f)
    if not isinstance(symbol, str) or not symbol or not isinstance(base, str) or not base:
        raise OIError("symbol and base must be non-empty strings")
    coin, units = coin_scale(base)
    coins, px = values["oi_coins"], values["price"]
    return OpenInterest(
        v=SCHEMA_VERSION, exchange=exchange, symbol=symbol, coin=coin, market=market,
        oi_coins=None if coins is None else coins * units, oi_usd=values["oi_usd"],
        price=None if px is None else px / units, funding_rate=values["funding_rate"],
        funding_interval_hours=values["funding_interval_hours"], ts=ts_f, recv_ts=recv_f)


def oi_from_json(data: bytes | str | dict[str, Any]) -> OpenInterest:
    """Decode and check a wire record (anyone with topic access may have written it)."""
    obj = json_record(data, _FIELDS, SCHEMA_VERSION, OIError, "open interest record")
    for name in ("exchange", "symbol", "coin"):
        if not isinstance(obj[name], str) or not obj[name]:
            raise OIError(f"{name} must be a non-empty string")
    values = {name: _number(name, obj[name]) for name in (
        "oi_coins", "oi_usd", "price", "funding_rate", "funding_interval_hours")}
    ts = _number("ts", obj["ts"], optional=False)
    recv_ts = _number("recv_ts", obj["recv_ts"], optional=False)
    assert ts is not None and recv_ts is not None
    _check(obj["market"], values["oi_coins"], values["oi_usd"], values["price"],
           values["funding_rate"], values["funding_interval_hours"], ts, recv_ts)
    return OpenInterest(v=SCHEMA_VERSION, exchange=obj["exchange"], symbol=obj["symbol"],
                        coin=obj["coin"], market=obj["market"], ts=ts, recv_ts=recv_ts,
                        **values)
