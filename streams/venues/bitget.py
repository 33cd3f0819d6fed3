"""Bitget UTA (v3 public websocket): the ``liquidation`` topic, one subscription per instType.

- Endpoint: ``wss://ws.bitget.com/v3/ws/public``. One subscribe message per instType in
  ``INST_TYPES`` (usdt-futures, coin-futures, usdc-futures; exchanges.md §2.9 lists all three),
  e.g. ``{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"}]}``. The
  topic takes no symbol: every symbol of the instType comes on it. Each is acked by
  ``{"event":"subscribe","arg":{...}}``, so the source is up only once all three are acked;
  ``{"event":"error",...}`` is a ``subscribe_error``.
- Side: ``side`` is the liquidated POSITION (tardis: "Bitget side is position side"; aggr flips
  it too): ``buy`` -> long, ``sell`` -> short. The opposite of Binance's order side.
- Units (DISPUTED in the sources; decided here): ``amount`` is in the QUOTE currency, i.e. the
  notional. Evidence (exchanges.md §2.9):
  * aggr's ``bitget.ts``: "Liquidation amount unit is quote coin; convert to base size", and it
    divides ``amount`` by ``price``; a Russian OSS README agrees ("Bitget уже отдаёт `amount` в
    quote currency"). tardis-node passes ``amount`` through unconverted, without a comment or a
    check: a pass-through, not a claim about units.
  * The sample payload: BTCUSDT ``price`` 60000, ``amount`` 150000. Read as quote it is a
    $150,000 liquidation (2.5 BTC), an ordinary size. Read as base it is 150,000 BTC × 60,000 =
    $9 billion in one liquidation, the order of a whole exchange's BTC open interest: absurd.
  So ``notional_usd = amount`` (USDT, USDC and, for coin-futures, USD all taken as USD) and
  ``qty = amount / price`` in base. No contract metadata is needed, so there is no REST call.
  The sample is an OSS test fixture, not an exchange capture: a live check is to see whether
  ``amount`` sits on the symbol's size grid (base) or not (quote). Tests pin the quote reading.
- Markets: usdt-/usdc-futures are linear, coin-futures inverse (quote USD). Base/quote come
  from the symbol (BTCUSDT, BTCUSD, BTCPERP/BTCUSDC); an unrecognisable symbol is a dead letter.
- Time: the entry's ``ts`` (ms, a string); the frame's ``ts`` (push time) as a fallback.
- Sampling: reported aggregated/throttled (a Russian design doc, LiquidVision "totals are a
  floor: Binance and Bitget throttle"; an OSS collector found by code search labels its
  coverage "largest long and short liquidation per pair per second"). Not confirmed by Bitget's doc text, but ``sampled=True``:
  totals are a floor.
- Liveness: the text ``ping`` every 25 s (Bitget asks for one about every 30 s and disconnects
  after ~2 min without), answered by the text ``pong``. Bitget force-closes connections at
  24 h; the collector reconnects and resubscribes.
- Snapshot/replay: updates come as ``action: "update"`` (what tardis maps). A frame with
  ``action: "snapshot"`` is state sent on subscribe, not new liquidations: ``Parsed(snapshot=
  True)``, counted in ``liqstress_snapshot_dropped_total``, never as events. No venue id, so
  events dedupe by the content hash (symbol, ms time, side, price, amount).
- Open interest and funding (REST poll): the v2 ``GET /api/v2/mix/market/tickers?productType=
  <T>`` for the instTypes above (USDT-FUTURES, COIN-FUTURES, USDC-FUTURES: 3 requests a poll,
  against 20/s allowed). ``holdingAmount`` is in BASE coin for every product type, coin-margined
  included: coins = holdingAmount, USD = coins x ``markPrice`` (the row's own mark; USDT/USDC/USD
  as USD). ``fundingRate`` is a fraction per interval: the row's ``fundingRateInterval`` (hours)
  where sent, else 8 h; delivery contracts (``deliveryTime`` set, ``ETHUSD_231229``) have no
  funding (their ``"0"`` is None). Time: the row's ``ts`` (ms string).
- History (the warm start): the public UTA ``GET {rest}/api/v3/market/liquidations?category=
  <USDT-FUTURES|COIN-FUTURES|USDC-FUTURES>&limit=100[&cursor=…]`` (tiagosiebler/bitget-api
  ``src/rest-client-v3.ts`` "Get Liquidations History ... (last 3 days)", a public ``get``;
  types in ``src/types/{request,response}/v3/public.ts``): ``{"code":"00000",...,"data":{"list":
  [{symbol, side, price, amount, ts}], "cursor"}}``, one walk per instType the live feed
  subscribes, newest first, back by ``cursor`` until a page reaches older than the window, a
  page is empty or no cursor comes back (the page cap is not documented: a short page is not
  taken as the last). The rows have the live entry's fields and are read by the same
  ``_event``: ``side`` the position, ``amount`` quote, and the same content-hash id (no venue
  id), so a liquidation seen live and in the history counts once IF the REST row repeats the
  live entry's symbol, ms, side, price and ``amount`` text exactly. Whether the REST side and
  units are the live ones is UNVERIFIED against the venue (no capture of this endpoint found;
  one third-party collector reads its ``amount`` as base coin, against the quote reading
  above); its completeness (the live feed is a floor) likewise. A code other than ``00000``
  in a 200 body is a ``rest_error`` dead letter and gives up that instType. Rate: not
  documented for this endpoint (Bitget's public market data is commonly 20/s per IP): 5/s.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from liqstress.event import Market
from liqstress.open_interest import OpenInterest

from . import kit

ID = "bitget"
WS_URL = "wss://ws.bitget.com/v3/ws/public"
REST = "https://api.bitget.com"
OI_PATH = "/api/v2/mix/market/tickers"
#: Funding interval (hours) of a ticker that does not say otherwise.
DEFAULT_FUNDING_HOURS = 8.0
#: v2 delivery-contract suffix: ``ETHUSD_231229``.
_V2_DELIVERY = re.compile(r"_\d{6}")
TOPIC = "liquidation"
INST_TYPES = ("usdt-futures", "coin-futures", "usdc-futures")
#: instType -> (market, quote label, symbol suffixes that mark the quote).
_INST: dict[str, tuple[Market, str, tuple[str, ...]]] = {
    "usdt-futures": ("linear", "USDT", ("USDT",)),
    "usdc-futures": ("linear", "USDC", ("USDC", "PERP")),
    "coin-futures": ("inverse", "USD", ("USD",)),
}
_DELIVERY = re.compile(r"(?:[FGHJKMNQUVXZ]?\d{2,6})?")
SUBSCRIBE = tuple(orjson.dumps({"op": "subscribe", "args": [
    {"instType": t, "topic": TOPIC}]}).decode() for t in INST_TYPES)


def rest_urls(urls: dict[str, str]) -> list[str]:
    return []  # amount is already the notional: no contract metadata needed


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    return [kit.Connection(name="public", url=urls.get("ws", WS_URL), subscribe=SUBSCRIBE)]


def _pair(symbol: str, inst_type: str) -> tuple[str, str]:
    """Base/quote of a UTA symbol: BTCUSDT, BTCUSD (and dated BTCUSDZ25), BTCPERP, BTCUSDC."""
    _, quote, markers = _INST[inst_type]
    for marker in markers:
        i = symbol.rfind(marker)
        # After the quote only a delivery code may follow (Z26, 0627): "BTCUSDT" is not BTC/USD.
        if i > 0 and _DELIVERY.fullmatch(symbol[i + len(marker):]):
            return symbol[:i], quote
    raise kit.FrameError("unknown_symbol", f"{inst_type}:{symbol[:100]}")


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    envelope = kit.okx_envelope(text, "topic", TOPIC)
    if isinstance(envelope, kit.Parsed):
        return envelope
    msg, arg, data = envelope
    inst_type = str(arg.get("instType", "")).lower()
    if inst_type not in _INST:
        raise kit.FrameError("unsupported_instrument", inst_type[:50])
    events = [_event(entry, inst_type, msg, recv_ts) for entry in kit.objects(data, "data entry")]
    return kit.parsed("data", tuple(events), snapshot=msg.get("action") == "snapshot")


def _event(entry: dict[str, Any], inst_type: str, msg: dict[str, Any] | None,
           recv_ts: float) -> Any:
    """One liquidation of the ``liquidation`` topic or of the REST history (same fields): the
    live rules, and the content-hash id of its symbol, ms time, side, price and ``amount`` text.
    ``msg`` is the websocket envelope, whose ``ts`` stands in for an entry without one; a
    history row has no envelope and must carry its own."""
    symbol = kit.required_str(entry, "symbol")
    base, quote = _pair(symbol, inst_type)
    side = kit.side_from_position_side(str(entry.get("side", "")))
    amount, price = kit.num_str(entry, "amount"), kit.num_str(entry, "price")
    # The entry's ts is a string of ms; the envelope's (its fallback) a JSON integer.
    ts = (kit.ms(entry, "ts", string=True) if entry.get("ts") is not None or msg is None
          else kit.ms(msg, "ts"))
    if amount < 0 or price <= 0 or ts <= 0:
        raise kit.FrameError("bad_number", f"amount={entry.get('amount')!r} "
                                       f"price={entry.get('price')!r} ts={entry.get('ts')!r}")
    notional = amount  # quote units (USDT/USDC/USD), see the module docstring
    return kit.event(
        exchange=ID, symbol=symbol, base=base, quote=quote, market=_INST[inst_type][0],
        side=side, price=price, qty=notional / price, notional_usd=notional, ts=ts,
        recv_ts=recv_ts, sampled=True, qty_raw=entry.get("amount"))


def product_type(inst_type: str) -> str:
    """v2 REST productType of a v3 instType: ``usdt-futures`` -> ``USDT-FUTURES``."""
    return inst_type.upper()


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, f"{OI_PATH}?productType={product_type(t)}")
            for t in INST_TYPES]


def _inst_type_of(source: str) -> str:
    for inst_type in INST_TYPES:
        if f"productType={product_type(inst_type)}" in source:
            return inst_type
    raise kit.FrameError("unexpected_shape", f"no known productType in {source[-60:]!r}")


def _rest_error(msg: dict[str, Any]) -> str | None:
    return None if msg.get("code") == "00000" else kit.code_error(msg)


def _optional_str(item: dict[str, Any], key: str) -> float | None:
    """A decimal string Bitget may send as "" or null (no mark, no funding)."""
    return None if item.get(key) in (None, "") else kit.num_str(item, key)


def _ticker(item: dict[str, Any], inst_type: str, recv_ts: float) -> OpenInterest:
    symbol = kit.required_str(item, "symbol")
    head = symbol
    match = _V2_DELIVERY.search(symbol)
    if match is not None and match.end() == len(symbol):
        head = symbol[:match.start()]
    dated = head != symbol or item.get("deliveryTime") not in (None, "", "0")
    base, _ = _pair(head, inst_type)
    coins = kit.num_str(item, "holdingAmount")  # base coin, coin-margined included
    mark = _optional_str(item, "markPrice")
    price = mark if mark is not None and mark > 0 else None
    funding = None if dated else _optional_str(item, "fundingRate")
    hours = None
    if funding is not None:
        hours = _optional_str(item, "fundingRateInterval") or DEFAULT_FUNDING_HOURS
    ts = kit.ms(item, "ts", string=True) if item.get("ts") not in (None, "") else recv_ts
    return kit.oi_record(exchange=ID, symbol=symbol, base=base, market=_INST[inst_type][0],
                         oi_coins=coins, oi_usd=coins * price if price is not None else None,
                         price=price, funding_rate=funding, funding_interval_hours=hours,
                         ts=ts, recv_ts=recv_ts)


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    inst_type = _inst_type_of(source)
    msg = kit.rest_json(body, dict, "tickers body is not an object", _rest_error)
    data = kit.member(msg, "data", list, "data is not a list")
    return kit.oi_frame(kit.objects(data, "ticker"),
                        lambda item: _ticker(item, inst_type, recv_ts))


# ---- history (the warm start) ------------------------------------------------------------

HISTORY_PATH = "/api/v3/market/liquidations"
#: Rows asked for per page (the endpoint's maximum is not documented where we looked).
HISTORY_LIMIT = 100


def history_topics(meta: kit.Metadata) -> list[str]:
    """The instTypes the live feed subscribes: one cursor walk each, every symbol at once."""
    return list(INST_TYPES)


def history_request(urls: dict[str, str], topic: str, start_ms: int | None,
                    end_ms: int | None, cursor: str | None) -> str:
    """No time parameter: the newest rows first, then back by the venue's ``cursor``."""
    return kit.history_url(kit.rest_url(urls, REST, f"{HISTORY_PATH}?category="
                                        f"{product_type(topic)}"),
                           start_ms, f"limit={HISTORY_LIMIT}", cursor)


def _history_page(body: str) -> tuple[list[Any], str | None]:
    """(rows, the cursor of the next page or None) of one body. A code other than
    ``00000`` is the venue refusing us (``rest_error``)."""
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    data = kit.member(msg, "data", dict, "data is not an object")
    rows = data.get("list")
    if rows is None:  # an empty page may come as null rather than []
        rows = []
    if not isinstance(rows, list):
        raise kit.FrameError("unexpected_shape", "data.list is not a list")
    cursor = data.get("cursor")
    if type(cursor) is int:
        cursor = str(cursor)
    return rows, cursor if isinstance(cursor, str) and cursor else None


def history_next_page(body: str, start_ms: int) -> str | None:
    rows, cursor = _history_page(body)
    if not rows or cursor is None:
        return None
    # No short-page test: the page cap is unknown, so only an empty page or no cursor ends it.
    oldest = min(kit.ms(row, "ts", string=True) for row in kit.objects(rows, "liquidation"))
    return None if round(oldest * 1000) < start_ms else cursor


def _inst_type_of_history(source: str) -> str:
    category = source.partition("category=")[2].partition("&")[0]
    for inst_type in INST_TYPES:
        if category == product_type(inst_type):
            return inst_type
    raise kit.FrameError("unexpected_source", source[-100:])


def parse_history(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """One page of a category's liquidations (source ``history+…?category=<C>``): every row
    read as the live topic reads its entries, so a row the live feed also gave has its id."""
    inst_type = _inst_type_of_history(source)
    rows, _ = _history_page(text)
    events = [_event(row, inst_type, None, recv_ts) for row in kit.objects(rows, "liquidation")]
    return kit.parsed("data" if events else "info", tuple(events))


HISTORY = kit.HistorySpec(
    topics=history_topics, request=history_request, next_page=history_next_page,
    parse=parse_history, max_rate=5.0, max_pages=200, depth=3 * 86_400.0,
    rule="24 h: v3 /market/liquidations per category (USDT-, COIN-, USDC-FUTURES), 100 a "
         "page back by cursor (the venue keeps 3 days); position side and content-hash id as "
         "live; completeness and units as the live feed, unverified against the venue; "
         "5 requests/s")


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="side is the liquidated POSITION side: buy -> long, sell -> short",
    unit_rule="amount is quote (USDT/USDC/USD): notional = amount, qty = amount/price; "
              "disputed (aggr: quote, tardis: base), decided from the sample's magnitude (base "
              "would make it a $9bn liquidation): verify live",
    sampled=True,
    feed="UTA v3 `liquidation` topic, one subscription each for usdt-, coin- and "
         "usdc-futures (every symbol of the instType).",
    coverage="**floor**: reported aggregated/throttled (about the largest long and short "
             "liquidation per pair per second; not in Bitget's docs); units **verify live**.",
    # A stall within 30 s; Bitget wants a `ping` at least every 30 s.
    ping_interval=15.0,
    pong_timeout=10.0,
    # Frames: small liquidation arrays per instType.
    max_frame_bytes=256 * 1024,
    metadata_refresh=0.0,
    oi_source=kit.url_has(OI_PATH),
    oi_rule="v2 /mix/market/tickers (USDT-, COIN-, USDC-FUTURES): holdingAmount base coin (also "
            "coin-margined), USD = coins * markPrice; fundingRate per fundingRateInterval if "
            "sent, else 8 h; delivery contracts none",
    default_urls={"ws": WS_URL, "rest": REST},
    history=HISTORY,
)
