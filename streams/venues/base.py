"""What a venue module declares, and the small pure helpers venue parsers share.

A venue is one module under ``streams/venues/`` exposing ``VENUE: VenueSpec``: its endpoints,
subscribe messages, app-level ping, side rule, units and a pure ``parse`` function. The websocket
runner (``streams/collector.py``) and the replay path (``streams/session.py``) only talk to this
spec, so adding a venue means one module, one simulator and its tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from liqstress.event import LiquidationEvent, Market, frozen_builder
from liqstress.labels import Side
from liqstress.open_interest import OpenInterest
from liqstress.prices import PriceTick

#: ``reconnect``: the venue's notice that it is about to drop us (Bitfinex's 20051 "please
#: reconnect"): the collector closes the connection and reconnects at once.
FrameKind = Literal["data", "ack", "pong", "ping", "info", "reconnect"]
#: What a venue URL key names: a websocket, a REST base or a local path.
UrlKind = Literal["ws", "rest", "file"]


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
    #: What one OI poll body leaves for the next ones of the same poll, per venue (e.g.
    #: Binance: marks and funding from ``premiumIndex`` for the per-symbol open interest).
    #: Bodies are parsed in request order, live and in a replay alike.
    oi_context: dict[str, Any] = field(default_factory=dict)

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
    #: Open interest and funding (REST polls); published to the open_interest topic.
    open_interest: Sequence[OpenInterest] = ()
    #: Items of a listing that could not be read and were left out (OI polls).
    skipped: int = 0
    #: Rows of the frame that could not become events, as (reason, detail): the frame's
    #: other rows still count, and these go to one dead letter with the frame (which is kept
    #: raw), as implausible events do. A frame where nothing parses raises ``FrameError``.
    rejected: Sequence[tuple[str, str]] = ()


#: ``parsed`` fills one with plain stores and re-labels it as a ``Parsed`` (the builder trick of
#: ``liqstress.event.frozen_builder``). A field added to Parsed fails at import until it is in
#: this tuple and set in ``parsed``.
_ParsedBuilder = frozen_builder(Parsed, ("kind", "events", "reply", "snapshot", "unpriced",
                                         "prices", "open_interest", "skipped", "rejected"))
_new_object = object.__new__


def parsed(kind: FrameKind, events: Sequence[LiquidationEvent] = (), snapshot: bool = False,
           unpriced: int = 0, reply: str | None = None,
           prices: Sequence[PriceTick] = (),
           rejected: Sequence[tuple[str, str]] = ()) -> Parsed:
    """``Parsed(kind=..., events=..., ...)`` for the per-frame path: equal to the one the
    dataclass ``__init__`` builds."""
    out = _new_object(_ParsedBuilder)
    out.kind = kind
    out.events = events
    out.reply = reply
    out.snapshot = snapshot
    out.unpriced = unpriced
    out.prices = prices
    out.open_interest = ()
    out.skipped = 0
    out.rejected = rejected
    out.__class__ = Parsed  # type: ignore[assignment]
    return out  # type: ignore[return-value]


#: The outcomes of frames without payload, shared (``Parsed`` is frozen, so sharing is safe).
PONG = Parsed(kind="pong")
ACK = Parsed(kind="ack")
INFO = Parsed(kind="info")
RECONNECT = Parsed(kind="reconnect")
#: A data frame without events (e.g. node fills without a liquidation).
DATA = Parsed(kind="data")


@dataclass(frozen=True, slots=True)
class Connection:
    """One websocket connection a venue needs, with the messages that subscribe it (or a file
    to follow, or a REST resource to poll: see ``poll``)."""

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
    #: Our messages on this connection (subscribes and the replies a parse asks for) per
    #: second at most, after a burst of ``send_burst``, for a venue that limits them per
    #: minute (Lighter: 200 a minute per IP). 0 = not paced. Pings go out unpaced (a few a
    #: minute): leave room for them.
    send_rate: float = 0.0
    send_burst: int = 1
    #: A polled source instead of a websocket (``url`` is then http/https, ``VenueSpec.poll``
    #: says how to request it): seconds in which every one of ``topics`` is requested once.
    #: 0 = not polled.
    poll: float = 0.0


#: Prefix of the recorded ``source`` of a poll body: ``poll+`` and the request without its
#: moving parts (time cursor, page token), e.g. ``poll+https://x/v1/trades?market=BTC-USD-PERP``.
#: Not an http(s) source on purpose: a poll body is a FRAME, parsed by ``VenueSpec.parse`` (live
#: and in a replay alike), kept on the raw topic only when it carried an event or a dead letter,
#: and never mistaken for a metadata body (``load_rest``) or an OI listing (``parse_oi``). One
#: stable source per topic also keeps the session's per-source state (``VenueSession``: ids
#: already published) the same in a replay as live.
POLL_PREFIX = "poll+"


@dataclass(frozen=True)
class PollSpec:
    """How a venue without a usable push feed is polled over REST: the collector's poll runner
    (``Collector._run_poll``) runs it for a ``Connection`` with ``poll`` > 0, and every body is a
    frame for ``VenueSpec.parse``. Per topic (a market) it keeps a cursor: the newest row time
    read so far, minus ``overlap``; the first poll of a topic starts at the time the topic was
    first seen (older rows are history, not new liquidations)."""

    #: The URL of one request: (the connection's ``url``, topic, cursor in epoch ms, next-page
    #: token). With cursor and page None it is the request's stable identity, recorded (behind
    #: ``POLL_PREFIX``) as the source of every body it answers.
    request: Callable[[str, str, int | None, str | None], str]
    #: What a body means for the cursor: (newest row time in epoch ms, None for no rows; the
    #: token of the next page, None when this was the last). ``FrameError`` for a body that is
    #: not a page: the poll is then a failure (not answered) and the cursor stays.
    progress: Callable[[str], tuple[int | None, str | None]]
    #: Seconds re-read behind the newest row seen, so rows the venue makes visible a little
    #: late are still read; the ids of re-read rows make them count once (the session drops an
    #: event id it already published from the same source).
    overlap: float = 30.0
    #: Requests per second at most, over every topic of the connection: the venue's documented
    #: limit with a wide margin (the spacing of requests is also capped by ``ping_interval``).
    max_rate: float = 5.0
    #: Pages read per topic and poll at most; rows beyond them are skipped (with a warning).
    max_pages: int = 5


ParseFn = Callable[[str, str, float, Metadata], Parsed]


#: Prefix of the recorded ``source`` of a history body (the warm start, ``HistorySpec``):
#: ``history+`` and the request without its moving parts (window, page cursor), e.g.
#: ``history+https://indexer.dydx.trade/v4/trades/perpetualMarket/BTC-USD``. Distinct from
#: ``POLL_PREFIX`` and from http(s) on purpose: a history body is a frame for
#: ``HistorySpec.parse`` (live and in a replay alike), never a metadata body, and its events are
#: published with ``backfill: true``.
HISTORY_PREFIX = "history+"


@dataclass(frozen=True)
class HistorySpec:
    """How a venue with a public liquidation history is read back on start (the warm start,
    ``Collector._backfill``): per topic (a market, a currency, or one topic for the whole
    venue) the pages of a time window, newest or oldest first as the venue serves them. Every
    body is a frame for ``parse``, whose events must carry the SAME ids as the live parser
    gives the same liquidation: the worker's windows then count an event seen by both once."""

    #: Topics to read, from the loaded metadata (e.g. every ACTIVE market).
    topics: Callable[[Metadata], Sequence[str]]
    #: The URL of one request: (URL overrides, topic, window start and end in epoch ms, page
    #: cursor). With start, end and cursor None it is the request's stable identity, recorded
    #: (behind ``HISTORY_PREFIX``) as the source of every body it answers.
    request: Callable[[dict[str, str], str, int | None, int | None, str | None], str]
    #: A history body's events (``Parsed.events``); the same ids as the live parser.
    parse: ParseFn
    #: The cursor of the next page of the window starting at (epoch ms), or None when this
    #: body was the last one needed. ``FrameError`` for a body that is not a page.
    next_page: Callable[[str, int], str | None] | None = None
    #: Instead of ``next_page``, where a body alone does not say where the walk stands (HTX:
    #: an empty 2 h window): (body, window start and end in epoch ms, the cursor this body
    #: answered, None for the first page).
    next_page_from: Callable[[str, int, int, str | None], str | None] | None = None
    #: Requests per second at most, the venue's documented limit with a margin (Bitfinex: 3
    #: a minute). The warm start never runs faster, retries included.
    max_rate: float = 2.0
    #: Pages read per topic at most. A newest-first walk cut there is complete back to its
    #: oldest liquidation read, and the venue's windows count as covered from there; an
    #: oldest-first one (``newest_first`` False) would miss the recent rows: it fails.
    max_pages: int = 50
    newest_first: bool = True
    #: Seconds of history the venue serves at most (the warm start asks for up to 24 h).
    depth: float = 86_400.0
    #: Seconds the venue publishes its history late (OKX: about 70 min): the last ``lag``
    #: before the warm start is not in it yet, so coverage reports that span missing unless
    #: the live feed covered it.
    lag: float = 0.0
    #: How far back and at what cost, in words (docs/venues.md, ``liqstress venues``).
    rule: str = ""
    #: For a venue that loads no metadata (HTX): the URL of a REST listing the warm start
    #: fetches first (paced and retried like a page, never recorded: no event comes from it),
    #: and ``listing_topics`` of its body replace ``topics``. ``FrameError`` for a body that
    #: is not a listing: the warm start then fails.
    listing: Callable[[dict[str, str]], str] | None = None
    listing_topics: Callable[[str], Sequence[str]] = lambda body: ()
    #: True for a body that is the venue refusing for rate (OKX: code ``50011`` in an HTTP
    #: 200): retried like a 429, never parsed. None: only HTTP 429 is a rate limit.
    throttled: Callable[[str], bool] | None = None

    def __post_init__(self) -> None:
        if (self.next_page is None) == (self.next_page_from is None):
            raise TypeError("a HistorySpec needs exactly one of next_page and next_page_from")

    def after(self, body: str, start_ms: int, end_ms: int, cursor: str | None) -> str | None:
        """The cursor of the page after ``body`` (which answered ``cursor``), or None."""
        if self.next_page_from is not None:
            return self.next_page_from(body, start_ms, end_ms, cursor)
        assert self.next_page is not None
        return self.next_page(body, start_ms)


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
    #: A silent stall is noticed within ``ping_interval + pong_timeout`` (plus the runner's
    #: check tick, ``Collector.stall_bounds``), which must stay within ``STALL_BUDGET``: these
    #: defaults (52 s) do not, so every venue declares its own pair (tests/test_stalls.py).
    #: 0 = the venue has no app-level ping: only the protocol pings below.
    ping_interval: float = 20.0
    ping_message: Callable[[int], str] = lambda seq: "ping"
    #: Seconds after an unanswered ping (no frame of kind ``pong`` since) before the
    #: connection is declared dead.
    pong_timeout: float = 30.0
    #: Websocket protocol pings (RFC 6455 ping frames, answered by the server's websocket
    #: stack): one every ``ws_ping_interval`` s, the connection closed (1011) when its pong
    #: is ``ws_ping_timeout`` s late. They catch a dead path; the app-level ping above also
    #: catches a venue whose websocket stack answers while its feed is stuck.
    ws_ping_interval: float = 10.0
    ws_ping_timeout: float = 10.0
    #: Largest websocket message accepted (websockets ``max_size``, after permessage-deflate):
    #: a few times the biggest frame the venue really sends. Above it the library closes the
    #: connection with 1009, which the runner reports and reconnects.
    max_frame_bytes: int = 1024 * 1024
    #: Largest REST body read (metadata listings are far bigger than frames); above it the
    #: body is a ``too_large`` dead letter, never read into memory whole.
    max_rest_bytes: int = 32 * 1024 * 1024
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
    #: Open interest and funding, polled over REST every ``--oi-interval`` seconds: the
    #: requests of one poll (``url#{json}`` = POST, as for ``rest_urls``; metadata may name
    #: them, e.g. one request per listed currency), which of the recorded REST sources are
    #: such polls (a recording replays them through ``parse_oi``, the rest through
    #: ``load_rest``), and the parser of one body: ``Parsed.open_interest``, with instruments
    #: that cannot be read skipped and counted (``kit.oi_frame``). Default: no OI feed.
    oi_urls: Callable[[Metadata, dict[str, str]], Sequence[str]] = \
        lambda meta, urls: []
    oi_source: Callable[[str], bool] = lambda source: False
    parse_oi: ParseFn | None = None
    #: Units and funding interval of the OI feed, in words (docs/venues, ``liqstress venues``).
    oi_rule: str = ""
    #: What is subscribed or polled for liquidations, in one or two sentences (light markdown:
    #: docs/venues.md and ``liqstress venues`` render it, so the facts live next to the code).
    feed: str = field(default="", kw_only=True)
    #: Completeness and its caveats (throttling, history dropped, what is not counted, what is
    #: unverified), for a trader reading a total: ``sampled`` is the flag, this the reason.
    coverage: str = field(default="", kw_only=True)
    #: Default base URLs (websocket and REST), overridable for simulators.
    default_urls: dict[str, str] = field(default_factory=dict)
    #: URL keys the venue reads beyond ``default_urls`` (which have no default), with their
    #: kind: ``ws`` (ws/wss), ``rest`` (http/https) or ``file`` (a ``file://`` path).
    #: ``--venue-urls`` accepts the keys of both and nothing else.
    optional_urls: dict[str, UrlKind] = field(default_factory=dict)
    #: URL keys whose value may be ``off`` (the connection is not opened).
    off_urls: tuple[str, ...] = ()
    #: No frame captured from the live venue pins the parser yet (doc examples only): the
    #: coverage table says "experimental" until one is recorded.
    experimental: bool = False
    #: Polled over REST instead of a websocket (see ``PollSpec``); its connections have
    #: ``poll`` > 0. Then ``ping_interval`` is the longest wait between two requests (the
    #: request is the "ping", its answer the "pong"), ``pong_timeout`` how long one request may
    #: take, and ``max_frame_bytes`` the largest body read.
    poll: PollSpec | None = None
    #: A public liquidation history read on start (``HistorySpec``); None = none (the
    #: venue's windows are complete from process start only).
    history: HistorySpec | None = None

    def url_kinds(self) -> dict[str, UrlKind]:
        """Every URL key the venue reads, with its kind (a default's kind from its scheme)."""
        out: dict[str, UrlKind] = {}
        for key, url in self.default_urls.items():
            scheme = url.partition("://")[0].lower()
            out[key] = "ws" if scheme in ("ws", "wss") else "file" if scheme == "file" else "rest"
        out.update(self.optional_urls)
        return out


#: Seconds within which every venue's liveness settings notice a silent stall.
STALL_BUDGET = 30.0


def price_frame(ticks: Sequence[PriceTick], bad: int) -> Parsed:
    """A price frame's outcome. Bad items were skipped (one odd symbol must not cost the other
    prices), but a frame with no usable item at all is an error; none at all is ``info``."""
    if bad and not ticks:
        raise FrameError("bad_price", f"{bad} unusable prices")
    return Parsed(kind="data" if ticks else "info", prices=tuple(ticks))


_orjson_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


def loads(text: str) -> Any:
    try:
        return _orjson_loads(text)
    except _JSONDecodeError as exc:
        raise FrameError("malformed_json", str(exc)[:200]) from exc


#: A decimal as venues write one in a string: optional minus, ASCII digits, optional fraction and
#: exponent. No padding, no sign "+", no "nan"/"inf", no "0x10", "1_000" or non-ASCII digits,
#: all of which Python's float() would accept.
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
#: Integer milliseconds as venues write them in a string (OKX, Bitget): digits only.
_INT_MS = re.compile(r"[0-9]{1,16}")
#: Largest integer read as a number: anything above is garbage, not a value (and beyond it
#: float() loses the value or overflows).
_MAX_INT = 2**63


def _field(obj: Any, key: str) -> Any:
    try:
        return obj[key]
    except (KeyError, TypeError, IndexError) as exc:
        raise FrameError("missing_field", key) from exc


def _finite(val: float, key: str, raw: Any, reason: str = "bad_number") -> float:
    if val != val or val in (_INF, -_INF):
        raise FrameError(reason, f"{key}={raw!r}"[:200])
    return val


_INF = float("inf")


def json_number(val: Any, key: str = "value", reason: str = "bad_number") -> float:
    """``val`` if it is a JSON number (int or float, never a boolean), finite, as a float."""
    if type(val) is float:
        return _finite(val, key, val, reason)
    if type(val) is int and -_MAX_INT < val < _MAX_INT:
        return float(val)
    raise FrameError(reason, f"{key}={val!r}"[:200])


def decimal_string(val: Any, key: str = "value", reason: str = "bad_number") -> float:
    """``val`` if it is a decimal string (``"60000.5"``, ``"1e-05"``), finite, as a float."""
    if type(val) is str and len(val) <= 64 and _DECIMAL.fullmatch(val):
        return _finite(float(val), key, val, reason)
    raise FrameError(reason, f"{key}={val!r}"[:200])


def num(obj: dict[str, Any], key: str) -> float:
    """A field the venue sends as a JSON number: int or float, finite. A boolean, a string or
    anything else is ``bad_number``; a missing key ``missing_field``."""
    try:
        val = obj[key]
    except (KeyError, TypeError, IndexError) as exc:
        raise FrameError("missing_field", key) from exc
    # Fast path, the checks of json_number written out (exact types: a bool is never a
    # number); anything else takes json_number, which raises what it always did.
    if type(val) is float:
        if val - val == 0.0:  # finite: inf - inf and NaN - NaN are NaN
            return val
    elif type(val) is int and -_MAX_INT < val < _MAX_INT:
        return float(val)
    return json_number(val, key)


def num_str(obj: dict[str, Any], key: str) -> float:
    """A field the venue sends as a decimal string (``"60000.5"``): ``bad_number`` for a JSON
    number, a padded, signed-plus, hex, "nan"/"inf" or non-ASCII-digit string."""
    try:
        val = obj[key]
    except (KeyError, TypeError, IndexError) as exc:
        raise FrameError("missing_field", key) from exc
    # Fast path for the plain form venues send (``60000.5``, ``-0.014``, ``9910``): ASCII
    # digits, at most one inner dot, an optional minus, which _DECIMAL accepts too. At most 64
    # characters of digits are below 1e64, so always finite. Anything else (exponents, and
    # every string to refuse) takes decimal_string, which raises what it always did.
    if type(val) is str and len(val) <= 64 and val.isascii():
        whole, dot, frac = (val[1:] if val[:1] == "-" else val).partition(".")
        if whole.isdigit() and (not dot or frac.isdigit()):
            return float(val)
    return decimal_string(val, key)


def plain_decimal(val: Any) -> float | None:
    """``val`` as a float if it is a decimal string of the plain form (``60000.5``,
    ``-0.014``, ``9910``: the fast path of ``num_str``), else None: the caller then takes the
    full path. Every string this accepts ``decimal_string`` accepts with the same value."""
    if type(val) is str and len(val) <= 64 and val.isascii():
        whole, dot, frac = (val[1:] if val[:1] == "-" else val).partition(".")
        if whole.isdigit() and (not dot or frac.isdigit()):
            return float(val)
    return None


def num_any(obj: dict[str, Any], key: str) -> float:
    """A field a venue sends either way (Gate's ``size``: a number, a string in its doc
    sample): a JSON number or a decimal string, with the checks of each."""
    val = _field(obj, key)
    return decimal_string(val, key) if type(val) is str else json_number(val, key)


def ms(obj: dict[str, Any], key: str, *, string: bool = False) -> float:
    """Epoch seconds from integer milliseconds: a JSON integer, or (``string=True``, where the
    venue sends one) a string of ASCII digits. ``bad_timestamp`` for anything else: a float,
    a boolean, "1e3", a padded string. Range is the session's ``implausible_time`` check."""
    try:
        val = obj[key]
    except (KeyError, TypeError, IndexError) as exc:
        raise FrameError("missing_field", key) from exc
    if string:
        if type(val) is str and _INT_MS.fullmatch(val):
            return int(val) / 1000.0
    elif type(val) is int and 0 <= val < _MAX_INT:
        return val / 1000.0
    raise FrameError("bad_timestamp", f"{key}={val!r}"[:200])


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
