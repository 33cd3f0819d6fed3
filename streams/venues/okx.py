"""OKX v5: the ``liquidation-orders`` channel, one subscription per instType (SWAP, FUTURES).

- Side: ``posSide`` names the liquidated position (long/short). In net mode (``posSide`` "net")
  the position is the opposite of the closing order ``side``: sell -> long, buy -> short.
- Units: ``sz`` is in CONTRACTS for SWAP/FUTURES. The contract value comes from REST
  ``/api/v5/public/instruments``: linear ``sz × ctVal × ctMult`` is base units, notional that
  × ``bkPx``; inverse ``sz × ctVal × ctMult`` is already USD, base qty that / ``bkPx``. An
  instrument without metadata gets ``qty``/``notional_usd`` null (counted as unpriced), never
  ``sz × bkPx``, which treats contracts as coins.
- Time: ``details[].ts`` (ms, a string). Entries are not in chronological order.
- Sampling: OKX says the channel "doesn't represent the total number of liquidations": a floor.
- Replay: a stale batch follows the subscribe; ``drop_before_subscribe`` drops anything dated
  before the ack (and the worker dedupes by id).
- Liveness: send the text ``ping`` (< 30 s idle or the server cuts us off); the text ``pong``
  (not JSON) is the reply.
- Open interest and funding: one poll is ``GET /api/v5/public/funding-rate?instId=ANY`` (every
  perpetual's funding in one body; kept in ``meta.oi_context`` for the bodies after it), then
  ``GET /api/v5/public/open-interest?instType=SWAP`` and ``?instType=FUTURES``. Coins are
  ``oiCcy`` (the venue's own figure, per coin of the base); USD is ``oiUsd``, or for an inverse
  contract without it ``oi × ctVal × ctMult`` (USD contracts, from the metadata), else null.
  The body has no mark: ``price`` is null. ``fundingRate`` is the fraction for the upcoming
  settlement, per ``nextFundingTime - fundingTime`` (OKX sets 1-8 h per instrument); dated
  futures have none. Time: ``ts`` of each row.
- History (the warm start): ``GET {rest}/api/v5/public/liquidation-orders?instType=<SWAP|
  FUTURES>&instFamily=<family>&state=filled&limit=100`` per family of the loaded instruments
  (one family per call: ~480 swaps and a dozen futures families), newest first, paged back
  with ``after`` (exclusive) = just past the oldest ``ts`` of the page until a row is older
  than the window or a page is short. OKX serves "the last day" and the rows are a SAMPLE,
  like the live channel, published ~1 h late (ai-rates measured 100 rows spanning 21.8 h on
  BTC-USDT, the newest ~92 min old): the history is a floor too. Entries have the live
  channel's shape and go through the same ``_entry_events``: the same detail gives the same
  content-hash id, so a liquidation seen live and in the history counts once. Limit 40
  requests per 2 s per IP: 10 a second here. A refusal for rate comes as ``code`` ``50011``
  in an HTTP 200 (``history_throttled``): retried like a 429, never parsed. Any other non-0
  code is a ``rest_error`` dead letter and gives that family up. SDKs are dropping the
  endpoint (removed from ccxt's map and ``okx-api``): a 404 fails the warm start, not the feed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from liqstress.event import Market
from liqstress.labels import Side

from . import kit

ID = "okx"
WS_URL = "wss://ws.okx.com:8443/ws/v5/public"
REST = "https://www.okx.com"
CHANNEL = "liquidation-orders"
INST_TYPES = ("SWAP", "FUTURES")
SUBSCRIBE = orjson.dumps({"op": "subscribe", "args": [
    {"channel": CHANNEL, "instType": t} for t in INST_TYPES]}).decode()
_USD = ("USD",)


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, f"/api/v5/public/instruments?instType={t}") for t in INST_TYPES]


def _pair(family: str) -> tuple[str, str] | None:
    """Base/quote of an underlying or instrument family ("BTC-USDT", "BTC-USD-SWAP")."""
    parts = family.split("-")
    if len(parts) >= 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    return None


def _rest_error(msg: dict[str, Any]) -> str | None:
    return kit.code_error(msg) if str(msg.get("code")) != "0" else None


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    data = kit.member(msg, "data", list)
    inst_type = dict(parse_qsl(urlsplit(url).query)).get("instType")
    for item in data:
        if not isinstance(item, dict):
            continue
        inst_id = item.get("instId")
        if not isinstance(inst_id, str) or not inst_id:
            continue
        if item.get("instType", inst_type) not in INST_TYPES:
            continue
        pair = None
        if item.get("baseCcy") and item.get("quoteCcy"):  # empty for derivatives, usually
            pair = (str(item["baseCcy"]), str(item["quoteCcy"]))
        pair = pair or _pair(str(item.get("uly") or item.get("instFamily") or inst_id))
        ct_val, ct_mult = kit.positive(item, "ctVal"), kit.positive(item, "ctMult") or 1.0
        ct_type, ct_ccy = item.get("ctType"), str(item.get("ctValCcy") or "")
        if pair is None or ct_val is None:
            continue
        base, quote = pair
        # Contract value must be in base (linear) or USD (inverse), or the units are unknown:
        # leave the instrument out so its events stay unpriced rather than wrong.
        if ct_type == "linear" and ct_ccy == base:
            market: Market = "linear"
        elif ct_type == "inverse" and ct_ccy in _USD:
            market = "inverse"
        else:
            continue
        meta.instruments[inst_id] = kit.Instrument(symbol=inst_id, base=base, quote=quote,
                                               market=market, contract_value=ct_val * ct_mult)


FUNDING_PATH = "/api/v5/public/funding-rate"
OI_PATH = "/api/v5/public/open-interest"
#: ``meta.oi_context`` key of the funding table a poll's first body leaves for the others.
FUNDING_KEY = "okx_funding"
#: A funding table older than this (seconds) is not used (a poll whose first body failed).
FUNDING_MAX_AGE = 120.0


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, f"{FUNDING_PATH}?instId=ANY")] + [
        kit.rest_url(urls, REST, f"{OI_PATH}?instType={t}") for t in INST_TYPES]


def _interval_hours(row: dict[str, Any]) -> float | None:
    """Hours between this settlement and the next (whole hours, 1..24), else None."""
    try:
        this, nxt = kit.ms(row, "fundingTime", string=True), kit.ms(row, "nextFundingTime",
                                                                       string=True)
    except kit.FrameError:
        return None
    hours = (nxt - this) / 3600.0
    return hours if hours == int(hours) and 1 <= hours <= 24 else None


def _funding_table(data: list[Any]) -> dict[str, tuple[float, float]]:
    table: dict[str, tuple[float, float]] = {}
    for row in data:
        if not isinstance(row, dict) or not isinstance(row.get("instId"), str):
            continue
        if row.get("fundingRate") in (None, ""):
            continue
        try:
            rate = kit.num_str(row, "fundingRate")
        except kit.FrameError:
            continue
        hours = _interval_hours(row)
        if hours is not None:
            table[row["instId"]] = (rate, hours)
    return table


def _oi_record(row: dict[str, Any], recv_ts: float, meta: kit.Metadata,
               funding: dict[str, tuple[float, float]]) -> kit.OpenInterest | None:
    inst_id = kit.required_str(row, "instId")
    if row.get("instType") not in INST_TYPES:
        return None
    inst = meta.get(inst_id)
    if inst is not None:
        base, market = inst.base, inst.market
    else:
        pair = _pair(inst_id)
        if pair is None:
            raise kit.FrameError("unknown_symbol", inst_id[:100])
        base = pair[0]
        market = "inverse" if pair[1] in _USD else "linear"
    coins = kit.num_str(row, "oiCcy")
    usd: float | None
    if row.get("oiUsd") not in (None, ""):
        usd = kit.num_str(row, "oiUsd")
    elif inst is not None and inst.market == "inverse":
        usd = kit.num_str(row, "oi") * inst.contract_value  # contracts of ctVal USD
    else:
        usd = None
    rate, hours = funding.get(inst_id, (None, None))
    return kit.oi_record(exchange=ID, symbol=inst_id, base=base, market=market, oi_coins=coins,
                         oi_usd=usd, price=None, funding_rate=rate, funding_interval_hours=hours,
                         ts=kit.ms(row, "ts", string=True), recv_ts=recv_ts)


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    data = kit.member(msg, "data", list)
    if FUNDING_PATH in source:
        meta.oi_context[FUNDING_KEY] = (recv_ts, _funding_table(data))
        return kit.INFO
    stamp, table = meta.oi_context.get(FUNDING_KEY, (0.0, {}))
    funding = table if 0 <= recv_ts - stamp <= FUNDING_MAX_AGE else {}
    return kit.oi_frame(data, lambda row: _oi_record(row, recv_ts, meta, funding)
                        if isinstance(row, dict) else _not_object())


def _not_object() -> kit.OpenInterest | None:
    raise kit.FrameError("unexpected_shape", "open interest row is not an object")


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    return [kit.Connection(name="public", url=urls.get("ws", WS_URL), subscribe=(SUBSCRIBE,))]


def _side(detail: dict[str, Any]) -> Side:
    pos = str(detail.get("posSide") or "net").lower()
    if pos == "net":
        return kit.side_from_order_side(str(detail.get("side", "")))
    return kit.side_from_position_side(pos)


def _entry_events(entry: Any, inst_type: Any, recv_ts: float,
                  meta: kit.Metadata) -> tuple[list[Any], int]:
    """One ``data`` entry (an instrument and its ``details``): its events and how many of them
    are unpriced. Shared by the live channel and the REST history, whose entries have the same
    shape, so the same liquidation gets the same event id from both."""
    if not isinstance(entry, dict) or not isinstance(entry.get("details"), list):
        raise kit.FrameError("unexpected_shape", "data entry without details")
    inst_id = kit.required_str(entry, "instId")
    inst_type = entry.get("instType", inst_type)
    if inst_type not in INST_TYPES:
        raise kit.FrameError("unsupported_instrument", str(inst_type)[:50])
    inst = meta.get(inst_id)
    if inst:
        base, quote, market = inst.base, inst.quote, inst.market
    else:
        pair = _pair(str(entry.get("uly") or entry.get("instFamily") or inst_id))
        if pair is None:
            raise kit.FrameError("unknown_symbol", inst_id)
        base, quote = pair
        # OKX naming: coin-margined (inverse) contracts are quoted in USD.
        market = "inverse" if quote in _USD else "linear"
    events = []
    unpriced = 0
    for d in kit.objects(entry["details"], "detail"):
        side = _side(d)
        sz, price, ts = kit.num_str(d, "sz"), kit.num_str(d, "bkPx"), kit.ms(d, "ts", string=True)
        if sz < 0 or price <= 0 or ts <= 0:
            raise kit.FrameError("bad_number", f"sz={d.get('sz')!r} bkPx={d.get('bkPx')!r} ts={d.get('ts')!r}")
        qty: float | None
        notional: float | None
        if inst is None:
            qty = notional = None
            unpriced += 1
        else:  # linear: sz*ctVal*ctMult base; inverse: that many USD
            qty, notional = kit.amounts(sz, price, inst.market, inst.contract_value)
        events.append(kit.event(
            exchange=ID, symbol=inst_id, base=base, quote=quote, market=market,
            side=side, price=price, qty=qty, notional_usd=notional, ts=ts,
            recv_ts=recv_ts, sampled=True, qty_raw=d.get("sz")))
    return events, unpriced


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    envelope = kit.okx_envelope(text, "channel", CHANNEL)
    if isinstance(envelope, kit.Parsed):
        return envelope
    _, arg, data = envelope
    events: list[Any] = []
    unpriced = 0
    for entry in data:
        evs, n = _entry_events(entry, arg.get("instType"), recv_ts, meta)
        events += evs
        unpriced += n
    return kit.parsed("data", tuple(events), unpriced=unpriced)


HISTORY_PATH = "/api/v5/public/liquidation-orders"
#: Details per history page: OKX's maximum ``limit``; a page with fewer is the last.
HISTORY_LIMIT = 100
#: OKX's "too many requests", sent in an HTTP 200 (ai-rates ``adapter.go`` retries it).
RATE_LIMITED = "50011"


def history_topics(meta: kit.Metadata) -> list[str]:
    """``<instType>:<instFamily>`` of every instrument loaded: the endpoint takes one family
    per call. FUTURES families are read too (a dozen or so beside ~480 swaps) because the live
    feed counts FUTURES: their windows would otherwise mix live rows with no history."""
    topics = set()
    for inst_id in meta.instruments:
        parts = inst_id.split("-")
        if len(parts) < 3 or not parts[0] or not parts[1]:
            continue
        kind = "SWAP" if parts[-1] == "SWAP" else "FUTURES"
        topics.add(f"{kind}:{parts[0]}-{parts[1]}")
    return sorted(topics)


def history_request(urls: dict[str, str], topic: str, start_ms: int | None, end_ms: int | None,
                    cursor: str | None) -> str:
    """No time window: the newest rows first, then back with ``after`` (``cursor``)."""
    inst_type, _, family = topic.partition(":")
    url = kit.rest_url(urls, REST, f"{HISTORY_PATH}?instType={inst_type}&instFamily={family}"
                                   "&state=filled")
    if start_ms is None:
        return url  # the request's identity (the recorded source)
    url += f"&limit={HISTORY_LIMIT}"
    return url + (f"&after={cursor}" if cursor is not None else "")


def history_throttled(body: str) -> bool:
    try:
        msg = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False  # not a refusal: the parser dead-letters it
    return isinstance(msg, dict) and str(msg.get("code")) == RATE_LIMITED


def _history_entries(body: str) -> list[Any]:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    return kit.member(msg, "data", list)


def history_next_page(body: str, start_ms: int) -> str | None:
    stamps = [round(kit.ms(d, "ts", string=True) * 1000)
              for entry in kit.objects(_history_entries(body), "data entry")
              for d in kit.objects(kit.member(entry, "details", list), "detail")]
    if len(stamps) < HISTORY_LIMIT:
        return None
    oldest = min(stamps)  # OKX: "not necessarily in chronological order"
    if oldest < start_ms:
        return None
    # ``after`` is exclusive: from just past the oldest millisecond, so its rows that did not
    # fit come too (those read twice are dropped by id); a page all in one millisecond moves
    # past it, or it would be read forever.
    return str(oldest if oldest == max(stamps) else oldest + 1)


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One page of a family's filled liquidation orders: the live channel's entries."""
    events: list[Any] = []
    unpriced = 0
    for entry in _history_entries(text):
        evs, n = _entry_events(entry, None, recv_ts, meta)
        events += evs
        unpriced += n
    return kit.parsed("data" if events else "info", tuple(events), unpriced=unpriced)


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page=history_next_page,
    parse=parse_history, throttled=history_throttled, max_rate=10.0, max_pages=30,
    # ai-rates measured the feed "about 69 minutes behind" (adapters/okx/adapter.go,
    # 2026-09-13): the last 70 min before the start are reported missing, not covered.
    lag=4200.0,
    rule="24 h: sampled, last day, ~1 h behind: filled liquidation orders per instFamily "
         "(SWAP and FUTURES, ~500 calls; 100 a page, back with after); 10 requests/s")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="posSide long/short is the liquidated position; posSide net: side sell -> long, "
              "buy -> short",
    unit_rule="sz contracts (ctVal, ctMult from /api/v5/public/instruments); linear qty "
              "sz*ctVal*ctMult base, notional qty*bkPx; inverse notional sz*ctVal*ctMult USD, "
              "qty notional/bkPx; no metadata -> null notional",
    sampled=True,
    feed="v5 `liquidation-orders` for instType SWAP and FUTURES; contract values from "
         "`/api/v5/public/instruments`.",
    coverage="**floor**: OKX says the feed \"doesn't represent the total\"; the stale "
             "batch it replays on subscribe is dropped.",
    # A stall within 30 s (OKX drops a connection idle for 30 s). Frames: the batch OKX
    # replays on subscribe is the biggest: the 1 MiB default.
    ping_interval=15.0,
    pong_timeout=10.0,
    drop_before_subscribe=True,
    default_urls={"ws": WS_URL, "rest": REST},
    oi_source=kit.url_has(FUNDING_PATH, OI_PATH),
    history=HISTORY,
    oi_rule="funding-rate?instId=ANY then open-interest (SWAP, FUTURES): coins oiCcy, USD oiUsd "
            "(inverse without it: oi*ctVal USD; else null), no mark (price null); fundingRate "
            "per nextFundingTime-fundingTime hours; dated futures no funding",
)
