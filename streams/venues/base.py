"""What a venue module declares, and the small pure helpers venue parsers share.

A venue is one module under ``streams/venues/`` exposing ``VENUE: VenueSpec``: its endpoints,
subscribe messages, app-level ping, side rule, units and a pure ``parse`` function. The websocket
runner (``streams/collector.py``) and the replay path (``streams/session.py``) only talk to this
spec, so adding a venue means one module, one simulator and its tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from liqstress.event import LiquidationEvent, Market
from liqstress.labels import Side
from liqstress.prices import PriceTick

FrameKind = Literal["data", "ack", "pong", "ping", "info"]


class FrameError(ValueError):
    """A frame the venue parser cannot use. ``reason`` is a short, stable label for the
    dead-letter record and the ``liqstress_deadletter_total{reason}`` metric."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    base: str
    quote: str
    market: Market
    #: Base units (linear) or USD (inverse) per contract; 1.0 where qty is already in base.
    contract_value: float = 1.0


@dataclass
class Metadata:
    """Instrument metadata a venue learned from REST. Parsers read it, never fetch it."""

    instruments: dict[str, Instrument] = field(default_factory=dict)
    #: Which REST URLs were loaded; a collector refuses to start if a required one failed.
    loaded: set[str] = field(default_factory=set)

    def get(self, symbol: str) -> Instrument | None:
        return self.instruments.get(symbol)


@dataclass(frozen=True, slots=True)
class Parsed:
    kind: FrameKind
    events: Sequence[LiquidationEvent] = ()
    #: Text to send back on the same connection (venues whose server pings need an echo).
    reply: str | None = None
    #: Events that are history the venue replays on (re)subscribe, never new liquidations.
    snapshot: bool = False
    #: Events parsed but without a USD notional (metadata missing); counted, not guessed.
    unpriced: int = 0
    #: Mark/mid prices (price connections); published to the prices topic.
    prices: Sequence[PriceTick] = ()


@dataclass(frozen=True, slots=True)
class Connection:
    """One websocket connection a venue needs, with the messages that subscribe it."""

    name: str
    url: str
    subscribe: Sequence[str] = ()
    #: What ``subscribe`` covers (e.g. Bybit symbols): after a metadata refresh the collector
    #: subscribes only the new ones, on the live connection, via ``VenueSpec.subscribe_for``.
    topics: Sequence[str] = ()
    #: Acks that confirm the subscription when it is not one per subscribe message (BitMEX
    #: subscribes in the URL and confirms with one ack); None = one per message.
    expected_acks: int | None = None
    #: "prices" for a mark/mid price feed (its frames carry ``Parsed.prices``).
    kind: Literal["liquidations", "prices"] = "liquidations"
    #: Keep at most one price frame per this many seconds (0 = all): minute-level signals
    #: need no 1-second marks, and every kept frame is also a raw record.
    min_interval: float = 0.0


ParseFn = Callable[[str, str, float, Metadata], Parsed]


@dataclass(frozen=True)
class VenueSpec:
    id: str
    #: Human-readable side rule, shown in docs; the parser implements it.
    side_rule: str
    unit_rule: str
    #: True where the venue throttles/samples its feed (totals are a floor).
    sampled: bool
    #: Builds the connections (URL + subscribe messages) from metadata; ``base_url`` lets tests
    #: point a venue at a local simulator.
    connections: Callable[[Metadata, dict[str, str]], list[Connection]]
    parse: ParseFn
    #: REST endpoints (from the URL overrides) whose bodies feed ``load_rest``; recorded
    #: alongside frames so a recording is self-contained. ``url#{json}`` means POST that JSON
    #: body to ``url`` (the fragment stays in the recorded source to identify the request).
    #: Default none: venues whose frames carry their own units need no metadata.
    rest_urls: Callable[[dict[str, str]], Sequence[str]] = field(
        default=lambda urls: [], kw_only=True)
    load_rest: Callable[[Metadata, str, str], None] = lambda meta, url, body: None
    #: Next page of a paginated REST listing, or None.
    rest_next: Callable[[str, str], str | None] = lambda url, body: None
    #: App-level ping: liveness is a reply to our own ping, never "no data for N seconds".
    ping_interval: float = 20.0
    ping_message: Callable[[int], str] = lambda seq: "ping"
    #: Seconds without a pong (or any frame) before the connection is declared dead.
    pong_timeout: float = 30.0
    #: Frames are gzip-compressed binary (HTX); the runner inflates them before parse.
    gzip: bool = False
    #: Events dated before the subscribe ack are the venue replaying history (OKX).
    drop_before_subscribe: bool = False
    #: Subscribe messages for topics added by a metadata refresh (new listings).
    subscribe_for: Callable[[Sequence[str]], list[str]] | None = None
    #: Coverage by configured source, where a venue has several (default: ``sampled``).
    sampled_for: Callable[[dict[str, str]], bool] | None = None
    #: Seconds between REST metadata refreshes (contract values, new listings); 0 = never.
    metadata_refresh: float = 3600.0
    #: Default base URLs (websocket and REST), overridable for simulators.
    default_urls: dict[str, str] = field(default_factory=dict)


def price_frame(ticks: Sequence[PriceTick], bad: int) -> Parsed:
    """A price frame's outcome. Bad items were skipped (one odd symbol must not cost the other
    prices), but a frame with no usable item at all is an error; none at all is ``info``."""
    if bad and not ticks:
        raise FrameError("bad_price", f"{bad} unusable prices")
    return Parsed(kind="data" if ticks else "info", prices=tuple(ticks))


def loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FrameError("malformed_json", str(exc)[:200]) from exc


def num(obj: dict[str, Any], key: str) -> float:
    """A numeric field that venues send as string or number."""
    try:
        val = obj[key]
    except (KeyError, TypeError) as exc:
        raise FrameError("missing_field", key) from exc
    try:
        out = float(val)
    except (TypeError, ValueError) as exc:
        raise FrameError("bad_number", f"{key}={val!r}") from exc
    if out != out or out in (float("inf"), float("-inf")):
        raise FrameError("bad_number", f"{key}={val!r}")
    return out


def side_from_order_side(order_side: str) -> Side:
    """Closing a long takes a SELL order, closing a short a BUY."""
    s = order_side.lower()
    if s == "sell":
        return "long"
    if s == "buy":
        return "short"
    raise FrameError("bad_side", order_side)


def side_from_position_side(position_side: str) -> Side:
    s = position_side.lower()
    if s in ("buy", "long"):
        return "long"
    if s in ("sell", "short"):
        return "short"
    raise FrameError("bad_side", position_side)


def split_symbol(symbol: str, quotes: Sequence[str] = ("USDT", "USDC", "BUSD", "FDUSD", "USD")) -> tuple[str, str]:
    """Base/quote of a concatenated symbol (BTCUSDT); used only when metadata has no entry."""
    for q in quotes:
        if symbol.endswith(q) and len(symbol) > len(q):
            return symbol[: -len(q)], q
    raise FrameError("unknown_symbol", symbol)
