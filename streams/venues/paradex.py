"""Paradex (Starknet perp DEX): public trades with ``trade_type`` ``LIQUIDATION``, POLLED over REST.

- Feed: there is no liquidation channel; liquidations are prints on the public trade tape,
  ``GET {rest}/v1/trades?market=<M>&page_size=1000&start_at=<ms>`` (public, no auth; docs
  "Trade tape": ``results[]`` plus ``next``/``prev`` page cursors, at most 1000 rows a page).
  The websocket is not used: since 2026-09-21 its public channels speak SBE binary only
  (docs banner "Paradex requires Simple Binary Encoding (SBE) for public channel payloads";
  ai-rates measured plain JSON refused with 40301) and we do not have the SBE schema. The trade
  type cannot be filtered server-side, so every print of a market is read and all but
  ``LIQUIDATION`` skipped: ``FILL``, ``RPI``, ``UNWIND_TRANSFER``, ``SETTLE_MARKET``,
  ``BLOCK_TRADE`` and any type added later (a body without a liquidation is kind ``info``).
- Markets: ``GET {rest}/v1/markets`` (``results[]``), every ``asset_kind`` ``PERP`` whose symbol
  ends in ``-PERP`` (options share the listing), refreshed hourly; a market listed by a refresh
  is polled from the next round on, one no longer listed is dropped.
- Polling (``streams/collector.py`` ``_run_poll``, ``base.PollSpec``): one connection
  (``trades``) whose topics are the markets; every market is requested once per
  ``POLL_PERIOD`` (60 s), the requests spread evenly over the period, never more than
  ``MAX_RATE`` (5) per second and never more than ``ping_interval`` (10 s) apart. Paradex
  documents 1500 requests/minute per IP for public endpoints (docs "Rate Limits / API", token
  bucket, ``Retry-After`` on every answer since v1.118.5): 5/s is a fifth of that, so with up
  to 300 markets every one is polled each minute; beyond 300 the round stretches (period =
  markets / 5 s). A 429 holds every request for its ``Retry-After``; a 5xx backs off.
- Cursor per market: the newest ``created_at`` read so far minus ``OVERLAP`` (30 s), starting
  at the time the market was first seen (older prints are history, not ours: issue 14's warm
  start). The tape is newest first; a full page (1000 rows: on a busy market about six hours
  of prints, per ai-rates) is followed with its ``next`` cursor, at most 5 pages a poll.
- Source: every body is a frame recorded as ``poll+{rest}/v1/trades?market=<M>``: the request
  without ``start_at``/``cursor``, so the source is stable per market (``WS_URL`` is the prefix
  shared by all of them, ``poll+{rest}/v1/trades``). A recording replays through ``parse``.
- Ids: ``id`` (the venue's trade id, e.g. ``1718154353750201703989430001``) is the event's
  ``venue_id``; a row without one falls back to the content hash (market, ms, side, price,
  size). Rows re-read in the overlap give the same ids and the session drops them
  (``snapshot_dropped``): an overlap counts once, live and in a replay.
- Side: ``side`` is the TAKER side (docs: "The side field in the response indicates the taker
  side of the trade") and the liquidation order takes: ``SELL`` closed a LONG -> ``long``,
  ``BUY`` closed a SHORT -> ``short``. Evidence (ai-rates ``liquidations.go`` @ b441e14): against
  the price move over the five minutes before each, on BTC 186 of 194 BUY liquidations followed
  a rise and 18 of 19 SELLs a fall; on ETH 118 of 132 and 43 of 60.
- Units: ``size`` in base units, ``price`` in USD (``*-USD-PERP``, ``quote_currency`` USD,
  settled in USDC, taken as USD): notional = ``size × price`` (ai-rates: "size is base units
  and price USD, so the product is dollars"; no contract multiplier, ccxt's contractSize 1). A
  market missing from the listing, or quoted in anything but USD, gets ``notional_usd`` null
  (counted as unpriced), never a guess.
- Time: ``created_at`` (integer epoch ms).
- Completeness: trade prints, so every liquidation executed on the book (``sampled=False``);
  liquidations are rare (ai-rates: "about one every two hours per market, clustered").
- Liveness: a poll answered (HTTP 200, a body that is a trade page) is the ping that got a
  reply; 3 failed polls in a row, or one request unanswered for ``pong_timeout`` (10 s), take
  the source down (``liqstress_source_up`` 0, with the reason). A market without trades is
  healthy: an empty page is an answer. A stall is noticed within 10 + 10 + 2 × 0.5 = 21 s.
- Latency: ≈ the poll period, 60 s (plus the time the venue takes to print the trade): a
  liquidation is seen at most one period after it happened, 30 s on average.
- History (the warm start, ``HISTORY``): the same endpoint per market with the window,
  ``start_at``/``end_at`` (epoch ms, docs "Trade tape"), 1000 prints a page (the documented
  maximum), then the venue's ``next`` cursor (``cursor=``; the window travels inside it) until
  ``next`` is null or a row is older than the window. Every print of the day is read (the type
  cannot be filtered), with the poll's parser: the same rows give the same ids, so a
  liquidation both polled and read back counts once. Paced at 3 requests/s: the poll (at most
  5/s) shares the documented 1500/minute per IP. Recorded as ``history+{rest}/v1/trades?
  market=<M>``.
- Real capture (the parser tests pin it): ai-rates ``apps/collector-go/internal/adapters/
  paradex/liquidations.go`` @ b441e14, "Captured 2026-09-24": ``{"market":"BTC-USD-PERP",
  "side":"SELL","size":"0.00649","price":"83894.04692005321","created_at":1790173872009,
  "trade_type":"LIQUIDATION"}`` (printed without its ``id``; the same row in
  ``liquidations_test.go`` carries a simplified ``"id":"1"``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from liqstress.event import LiquidationEvent
from liqstress.labels import Side

from . import kit
from .base import POLL_PREFIX, PollSpec

ID = "paradex"
REST = "https://api.prod.paradex.trade"
TRADES_PATH = "/v1/trades"
MARKETS_PATH = "/v1/markets"
#: The poll source prefix: each market's bodies are recorded as ``WS_URL?market=<M>``.
WS_URL = f"{POLL_PREFIX}{REST}{TRADES_PATH}"
LIQUIDATION = "LIQUIDATION"
#: Rows per page: the API's maximum.
PAGE_SIZE = 1000
#: Seconds in which every market is polled once: the latency of the feed.
POLL_PERIOD = 60.0
#: Requests per second at most: a fifth of the documented 1500/minute per IP.
MAX_RATE = 5.0
#: Seconds re-read behind the newest print seen (rows the tape shows a little late).
OVERLAP = 30.0
#: Full pages followed per market and poll (5000 prints: days of a busy market).
MAX_PAGES = 5
PERP_SUFFIX = "-PERP"


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, MARKETS_PATH)]


def _rest_error(msg: dict[str, Any]) -> str | None:
    """An object with ``error`` and no ``results``: the venue refusing the request."""
    if "error" in msg and "results" not in msg:
        return f"{str(msg.get('error'))[:100]} {str(msg.get('message'))[:200]!r}"
    return None


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    """``/v1/markets``: ``results[]`` of ``symbol``, ``base_currency``, ``quote_currency``,
    ``settlement_currency``, ``asset_kind``. Perps only; the listing replaces the last one."""
    msg = kit.rest_json(body, dict, "markets body is not an object", _rest_error)
    results = kit.member(msg, "results", list)
    perps: dict[str, kit.Instrument] = {}
    for item in results:
        if not isinstance(item, dict) or item.get("asset_kind") != "PERP":
            continue
        symbol, base, quote = (item.get(k) for k in ("symbol", "base_currency",
                                                      "quote_currency"))
        if not (isinstance(symbol, str) and symbol.endswith(PERP_SUFFIX)
                and isinstance(base, str) and base and isinstance(quote, str) and quote):
            continue  # one odd listing is left out, not the load
        perps[symbol] = kit.Instrument(symbol=symbol, base=base, quote=quote, market="linear")
    if not perps:
        # No market would leave the poll with nothing to ask: retry rather than run blind.
        raise kit.FrameError("no_active_markets", f"{len(results)} markets, no PERP")
    meta.instruments.clear()
    meta.instruments.update(perps)


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    markets = tuple(sorted(meta.instruments))
    if not markets:
        return []
    return [kit.Connection(name="trades", url=kit.rest_url(urls, REST, TRADES_PATH),
                           topics=markets, poll=POLL_PERIOD)]


def poll_request(url: str, market: str, since_ms: int | None, page: str | None) -> str:
    """``url?market=M`` (the stable identity), ``&page_size=1000&start_at=<ms>`` for a poll,
    ``&page_size=1000&cursor=<token>`` for its later pages (the docs: "A later page ... needs
    only its cursor: the scope a page was opened with travels inside")."""
    query: dict[str, str | int] = {"market": market}
    if page is not None:
        query.update(page_size=PAGE_SIZE, cursor=page)
    elif since_ms is not None:
        query.update(page_size=PAGE_SIZE, start_at=since_ms)
    return f"{url}?{urlencode(query)}"


def _page(body: str) -> tuple[dict[str, Any], list[Any]]:
    msg = kit.rest_json(body, dict, "trades body is not an object", _rest_error)
    return msg, kit.member(msg, "results", list)


def poll_progress(body: str) -> tuple[int | None, str | None]:
    """(newest ``created_at`` of any row, the next page's cursor). The next page is followed
    only after a full page: a short page is the end whatever ``next`` says."""
    msg, results = _page(body)
    times = [t for row in results if isinstance(row, dict)
             and type(t := row.get("created_at")) is int and t > 0]
    nxt = msg.get("next")
    more = isinstance(nxt, str) and bool(nxt) and len(results) >= PAGE_SIZE
    return (max(times) if times else None), (nxt if more else None)


def _pair(market: str) -> tuple[str, str]:
    """Base and quote of ``BTC-USD-PERP`` (for a market the listing does not have)."""
    parts = market.split("-")
    if len(parts) != 3 or parts[2] != "PERP" or not parts[0] or not parts[1]:
        raise kit.FrameError("unknown_symbol", market[:100])
    return parts[0], parts[1]


def _read(row: dict[str, Any]) -> tuple[str, Side, float, float, float, str | None]:
    """What a LIQUIDATION row says, without metadata: market, position side, size, price,
    time (s) and the venue's trade id. ``FrameError`` for a row that cannot be read."""
    market = kit.required_str(row, "market")
    side = kit.side_from_order_side(kit.required_str(row, "side"))
    size, price = kit.num_str(row, "size"), kit.num_str(row, "price")
    if size <= 0 or price <= 0:
        raise kit.FrameError("bad_number", f"size={row.get('size')!r} price={row.get('price')!r}")
    ts = kit.ms(row, "created_at")
    trade_id = row.get("id")
    if type(trade_id) is int and trade_id >= 0:
        trade_id = str(trade_id)  # the API sends a string; the same number is the same id
    elif trade_id is not None and not (isinstance(trade_id, str) and trade_id):
        raise kit.FrameError("missing_field", "id")
    return market, side, size, price, ts, trade_id


def _liquidation(row: dict[str, Any], recv_ts: float, meta: kit.Metadata) -> LiquidationEvent:
    market, side, size, price, ts, trade_id = _read(row)
    inst = meta.get(market)
    if inst is not None:
        base, quote = inst.base, inst.quote
    else:
        base, quote = _pair(market)
    # Priced only when the listing says it is a USD-quoted perp: anything else stays unpriced.
    priced = inst is not None and quote == "USD"
    return kit.event(exchange=ID, symbol=market, base=base, quote=quote, market="linear",
                     side=side, price=price, qty=size,
                     notional_usd=size * price if priced else None, ts=ts, recv_ts=recv_ts,
                     sampled=False, qty_raw=row.get("size"), venue_id=trade_id)


def _liquidation_rows(results: list[Any]) -> list[dict[str, Any]]:
    """The ``LIQUIDATION`` rows of a page; of every other row only its ``trade_type`` is
    read (a fill with odd fields costs nothing)."""
    rows = []
    for row in kit.objects(results, "trade"):
        kind = row.get("trade_type")
        if not isinstance(kind, str):
            raise kit.FrameError("missing_field", "trade_type")
        if kind.upper() == LIQUIDATION:
            rows.append(row)
    return rows


def _events(results: list[Any], recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    events = tuple(_liquidation(row, recv_ts, meta) for row in _liquidation_rows(results))
    return kit.parsed("data" if events else "info", events)


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One ``/v1/trades`` page: an event per ``LIQUIDATION`` row, every other row skipped (only
    its ``trade_type`` is read). A liquidation row that cannot be read makes the whole page a
    dead letter, as a bad item does for every venue."""
    _, results = _page(text)
    return _events(results, recv_ts, meta)


# ---- history (the warm start) ------------------------------------------------------------

#: Requests per second of the warm start. The poll runs beside it on the same IP budget
#: (1500/minute documented, at most 5/s of it for the poll): 3/s more keeps the two at about
#: a third of the limit.
HISTORY_RATE = 3.0
#: Pages per market at most: 100,000 prints in the window (ai-rates: a busy market prints
#: 1000 in about six hours, so 4 to 5 pages a day); a market beyond it fails the warm start.
HISTORY_MAX_PAGES = 100


def history_topics(meta: kit.Metadata) -> list[str]:
    """The markets the poll reads: every listed ``-PERP``."""
    return sorted(meta.instruments)


def history_request(urls: dict[str, str], topic: str, start_ms: int | None,
                    end_ms: int | None, cursor: str | None) -> str:
    """``?market=M`` (the identity, the poll's own), ``&page_size=1000&start_at=&end_at=`` for
    the window's first page, and as the poll asks for later pages, ``&page_size=1000&cursor=``:
    the window travels inside the cursor (docs "Trade tape")."""
    url = kit.rest_url(urls, REST, TRADES_PATH)
    if start_ms is None or cursor is not None:
        return poll_request(url, topic, None, cursor)
    query: dict[str, str | int] = {"market": topic, "page_size": PAGE_SIZE, "start_at": start_ms}
    if end_ms is not None:
        query["end_at"] = end_ms
    return f"{url}?{urlencode(query)}"


def _next(msg: dict[str, Any]) -> str | None:
    """The page's ``next`` cursor; null (or empty) when no rows are left. Anything else is no
    page of ours: a walk that stopped at it would read as a window without liquidations."""
    nxt = msg.get("next")
    if nxt is None or nxt == "":
        return None
    if not isinstance(nxt, str):
        raise kit.FrameError("unexpected_shape", f"next={nxt!r}"[:100])
    return nxt


def history_next_page(body: str, start_ms: int) -> str | None:
    """The cursor of the window's next page: ``next`` while the page has rows, none older than
    the window (the tape is newest first; ``start_at`` should already keep older rows out).
    Unlike the poll, a short page does not end the walk: only the venue's ``next`` does. A
    page whose liquidation rows the parser refuses raises as well (the same reason), so the
    market is given up rather than read as complete."""
    msg, results = _page(body)
    nxt = _next(msg)
    for row in _liquidation_rows(results):
        _read(row)
    if nxt is None or not results:
        return None
    times = [t for row in results if type(t := row.get("created_at")) is int]
    return None if times and min(times) < start_ms else nxt


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One page of a market's window (source ``history+{rest}/v1/trades?market=<M>``): the
    poll's rows, read by the poll's parser, so a liquidation polled and read back has one id."""
    msg, results = _page(text)
    _next(msg)
    return _events(results, recv_ts, meta)


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page=history_next_page,
    # The tape's order is not documented: a walk cut at its page cap fails rather than
    # claim the window back to its oldest row read.
    parse=parse_history, max_rate=HISTORY_RATE, max_pages=HISTORY_MAX_PAGES, newest_first=False,
    rule="24 h: /v1/trades per -PERP market with start_at/end_at, every print (LIQUIDATION "
         "rows read as polled, same ids), 1000 a page by the venue's next cursor; 3 "
         "requests/s beside the poll (1500/min per IP documented)")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="trade_type LIQUIDATION prints; side is the taker = liquidation order: SELL -> "
              "long, BUY -> short",
    unit_rule="size base units, price USD (USDC-settled -USD-PERP): notional size*price; a "
              "market not listed (or not USD-quoted): null notional",
    sampled=False,
    feed="REST poll of `/v1/trades` for every `-PERP` market of `/v1/markets`, each once "
         "every 60 s, keeping `LIQUIDATION` prints; the websocket is not used (its public "
         "channels are binary SBE only).",
    coverage="complete trade prints (every liquidation executed on the book); latency ≈ "
             "the poll period (60 s, 30 s on average); rows re-read in the 30 s overlap count "
             "once.",
    poll=PollSpec(request=poll_request, progress=poll_progress, overlap=OVERLAP,
                      max_rate=MAX_RATE, max_pages=MAX_PAGES),
    # The longest gap between two requests (with 6+ markets the 60 s period is spread more
    # finely) and how long one request may take: a stall is seen within 21 s.
    ping_interval=10.0,
    pong_timeout=10.0,
    # The largest poll body read: a page of 1000 prints is ~150 KB.
    max_frame_bytes=1024 * 1024,
    default_urls={"rest": REST},
    history=HISTORY,
)
