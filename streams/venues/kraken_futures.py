"""Kraken Futures: liquidations are trades of ``type: "liquidation"`` in the public ``trade`` feed.

- Endpoint: ``wss://futures.kraken.com/ws/v1``. There is no wildcard: every tradeable future
  from REST ``GET {rest}/derivatives/api/v3/instruments`` is subscribed with
  ``{"event":"subscribe","feed":"trade","product_ids":[...]}``, ``SUBSCRIBE_CHUNK`` products per
  message, each acknowledged by ``{"event":"subscribed","feed":"trade",...}``. Products are the
  multi-collateral linear ``PF_`` perpetuals and ``FF_`` fixed-maturity futures (REST type
  ``flexible_futures``) and the inverse ``PI_`` perpetuals and ``FI_`` futures
  (``futures_inverse``); other types (indices, legacy vanilla futures) have no documented trade
  units and are skipped. The metadata refresh subscribes new listings on the live connection.
- Liquidations: ``type`` ``liquidation`` counts; ``fill``, ``block`` and ``termination`` (a
  terminated account, not a liquidation) are info.
- Side: ``side`` is documented only as the TAKER side ("buy if the taker is a buyer"); the docs
  do not say which party was liquidated. We take the liquidated account to be the taker (the
  liquidation engine's closing order is the one that crosses the book, the usual design and the
  reading in exchanges.md §2.10), so the position is the opposite of ``side``: sell -> long,
  buy -> short. UNVERIFIED against captures: ``LIQUIDATED_IS_TAKER`` flips it in one place, and
  tests pin the current rule.
- Units: ``PF_``/``FF_`` ``qty`` is base units: notional = ``qty × price``. ``PI_``/``FI_``
  ``qty`` is USD contracts: notional = ``qty``, base qty = ``qty / price``. Both are scaled by
  the REST ``contractSize`` (1 for every product today). A product without metadata gets
  ``qty``/``notional_usd`` null, one quoted in a currency that is not USD or a USD stablecoin
  a null ``notional_usd`` (both counted as unpriced). ``XBT`` is reported as base ``BTC``.
- Time: the trade's ``time`` (ms). Dedupe id: the trade ``uid``.
- Coverage: trade prints, so complete for the subscribed products: ``sampled`` is False.
- Replay: a ``trade_snapshot`` of recent trades follows each (re)subscribe. It is history and
  is never counted (``Parsed(snapshot=True)``); live ``trade`` messages follow.
- Open interest and funding (REST poll, ``oi_urls``): one ``GET {rest}/derivatives/api/v3/tickers``
  lists every product. ``openInterest`` is contracts: ``PI_``/``FI_`` inverse contracts are
  worth ``contractSize`` USD each (1 USD today), so OI USD = OI x contractSize and coins = USD /
  ``markPrice``; ``PF_``/``FF_`` linear contracts are ``contractSize`` base units each (1 today),
  so coins = OI x contractSize and USD = coins x ``markPrice``. Without instrument metadata the
  figures are null (never a guess). Funding: ``relativeFundingRate`` (a fraction per hour: Kraken
  funds hourly) for perpetuals only; the plain ``fundingRate`` is an ABSOLUTE amount per contract
  and is never read; a ticker without ``relativeFundingRate`` has null funding. Price: the
  ticker's ``markPrice``. Time: the body's ``serverTime``.
- Liveness: Kraken closes connections idle for 60 s and documents no app-level ping that gets
  a reply. Our ping is ``{"event":"subscribe","feed":"heartbeat"}``: its
  ``{"event":"subscribed","feed":"heartbeat"}`` answer and the ``{"feed":"heartbeat",...}``
  beats that stream from then on (every few seconds) are the pongs; repeating the subscribe is
  harmless. The websocket protocol pings also keep the connection open.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from liqstress.event import Market
from liqstress.labels import Side

from . import kit

ID = "kraken-futures"
WS_URL = "wss://futures.kraken.com/ws/v1"
REST = "https://futures.kraken.com"
FEED = "trade"
SNAPSHOT_FEED = "trade_snapshot"
#: Products per subscribe message.
SUBSCRIBE_CHUNK = 100
#: The liquidated account is the taker (see the module docstring; unverified).
LIQUIDATED_IS_TAKER = True
HEARTBEAT_SUBSCRIBE = orjson.dumps({"event": "subscribe", "feed": "heartbeat"}).decode()

#: REST ``type`` -> market, and the symbol prefixes of each (the fallback when type is absent).
_TYPE_MARKET: dict[str, Market] = {"flexible_futures": "linear", "futures_inverse": "inverse"}
_PREFIX_MARKET: dict[str, Market] = {"PF": "linear", "FF": "linear", "PI": "inverse",
                                     "FI": "inverse"}
_QUOTES = ("USDT", "USDC", "USD", "EUR", "GBP", "CHF", "AUD", "JPY")
_USD_QUOTES = ("USD", "USDT", "USDC")
_MATURITY = re.compile(r"^\d{6}$")
_ALIASES = {"XBT": "BTC"}
TICKERS_PATH = "/derivatives/api/v3/tickers"
#: Kraken funds perpetuals every hour; ``relativeFundingRate`` is the rate of one such hour.
FUNDING_INTERVAL_HOURS = 1.0


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, "/derivatives/api/v3/instruments")]


def _coin(code: str) -> str:
    code = code.upper()
    return _ALIASES.get(code, code)


def product_pair(symbol: str) -> tuple[str, str, Market] | None:
    """(base, quote, market) from a product id: ``PF_XBTUSD``, ``FI_ETHUSD_261225``."""
    parts = symbol.upper().split("_")
    market = _PREFIX_MARKET.get(parts[0])
    if market is None or len(parts) not in (2, 3):
        return None
    if len(parts) == 3 and not _MATURITY.match(parts[2]):
        return None
    core = parts[1]
    for q in _QUOTES:
        if core.endswith(q) and len(core) > len(q):
            return _coin(core[: -len(q)]), q, market
    return None


def _rest_error(msg: dict[str, Any]) -> str | None:
    if msg.get("result") != "success":
        return f"result={msg.get('result')!r} {str(msg.get('error'))[:200]}"
    return None


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    for item in kit.member(msg, "instruments", list):
        if not isinstance(item, dict) or item.get("tradeable") is not True:
            continue
        symbol = item.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            continue
        pair = product_pair(symbol)
        if pair is None:
            continue
        base, quote, market = pair
        typ = item.get("type")
        if typ is not None and _TYPE_MARKET.get(str(typ)) != market:
            continue  # a type whose trade units we do not know, or one at odds with the prefix
        size = item.get("contractSize", 1)
        if isinstance(size, bool) or not isinstance(size, int | float) or not size > 0:
            continue
        if isinstance(item.get("base"), str) and isinstance(item.get("quote"), str) \
                and item["base"] and item["quote"]:
            base, quote = _coin(item["base"]), item["quote"].upper()
        meta.instruments[symbol] = kit.Instrument(symbol=symbol, base=base, quote=quote, market=market,
                                              contract_value=float(size))


def subscribe_messages(products: Sequence[str]) -> list[str]:
    items = list(products)
    return [orjson.dumps({"event": "subscribe", "feed": FEED,
                          "product_ids": items[i:i + SUBSCRIBE_CHUNK]}).decode()
            for i in range(0, len(items), SUBSCRIBE_CHUNK)]


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    products = sorted(meta.instruments)
    if not products:  # a connection with nothing to subscribe would look healthy and be silent
        return []
    return [kit.Connection(name="public", url=urls.get("ws", WS_URL),
                       subscribe=subscribe_messages(products), topics=tuple(products))]


def ping_message(seq: int) -> str:
    return HEARTBEAT_SUBSCRIBE


def liquidated_side(taker_side: str) -> Side:
    if LIQUIDATED_IS_TAKER:
        return kit.side_from_order_side(taker_side)  # the taker's order closed its position
    return kit.side_from_position_side(taker_side)  # the maker's order was the opposite


def _event(trade: dict[str, Any], recv_ts: float, meta: kit.Metadata) -> Any:
    product, uid = kit.required_str(trade, "product_id"), kit.required_str(trade, "uid")
    side = liquidated_side(str(trade.get("side", "")))
    size, price, ts = kit.num(trade, "qty"), kit.num(trade, "price"), kit.ms(trade, "time")
    if size <= 0 or price <= 0 or ts <= 0:
        raise kit.FrameError("bad_number", f"qty={trade.get('qty')!r} price={trade.get('price')!r} "
                                       f"time={trade.get('time')!r}")
    inst = meta.get(product)
    qty: float | None = None
    notional: float | None = None
    if inst is not None:
        base, quote, market = inst.base, inst.quote, inst.market
        # Inverse qty is contracts of quote currency (USD), linear qty base units.
        qty, notional = kit.amounts(size, price, market, inst.contract_value)
        if quote not in _USD_QUOTES:  # a quote value with no USD rate here: unpriced
            notional = None
    else:
        pair = product_pair(product)
        if pair is None:
            raise kit.FrameError("unknown_symbol", product[:100])
        base, quote, market = pair  # no contract metadata: unpriced, never a guess
    return kit.event(exchange=ID, symbol=product, base=base, quote=quote, market=market, side=side,
                 price=price, qty=qty, notional_usd=notional, ts=ts, recv_ts=recv_ts,
                 sampled=False, qty_raw=trade.get("qty"), venue_id=uid)


def _liquidations(trades: list[Any], recv_ts: float, meta: kit.Metadata) -> list[Any]:
    out = []
    for trade in kit.objects(trades, "trade"):
        if trade.get("type") == "liquidation":
            out.append(_event(trade, recv_ts, meta))
    return out


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = kit.frame_object(text)
    # Early skip: a live trade that is not a liquidation (fill, block, termination) is info
    # before anything is built, as the full path below returns it. The JSON is still decoded:
    # a corrupt frame stays a dead letter.
    if msg.get("feed") == FEED and msg.get("type") != "liquidation" and msg.get("event") is None:
        return kit.INFO
    control = msg.get("event")
    if control is not None:
        feed = msg.get("feed")
        if control == "subscribed":
            # The heartbeat subscribe is our ping; a trade subscribe is acknowledged.
            return (kit.PONG if feed == "heartbeat" else kit.ACK)
        if control in ("subscribed_failed", "unsubscribed_failed"):
            raise kit.FrameError("subscribe_error",
                             f"{control} feed={feed!r} {str(msg.get('product_ids'))[:200]}")
        if control in ("error", "alert"):
            raise kit.FrameError("venue_error", f"{control}: {str(msg.get('message'))[:200]}")
        return kit.INFO  # info (version greeting on connect), unsubscribed
    feed = msg.get("feed")
    if feed == "heartbeat":
        return kit.PONG
    if feed == SNAPSHOT_FEED:
        trades = kit.member(msg, "trades", list, "trade_snapshot without trades")
        events = _liquidations(trades, recv_ts, meta)
        # History replayed on (re)subscribe: never new liquidations.
        return kit.parsed("data" if events else "info", tuple(events), snapshot=True)
    if feed == FEED:
        events = _liquidations([msg], recv_ts, meta)
        if not events:
            return kit.INFO  # fill, block, termination
        return kit.parsed("data", tuple(events),
                          unpriced=sum(1 for e in events if e.notional_usd is None))
    raise kit.FrameError("unexpected_channel", str(feed)[:100])


# ---- open interest and funding -------------------------------------------------------------


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, TICKERS_PATH)]


def _server_time(msg: dict[str, Any], recv_ts: float) -> float:
    """``serverTime`` (ISO 8601, ``2025-11-17T00:34:37.524Z``) in epoch seconds; receipt time
    when the body has none."""
    raw = msg.get("serverTime")
    if raw is None:
        return recv_ts
    if not isinstance(raw, str) or not raw.endswith("Z"):
        raise kit.FrameError("bad_timestamp", f"serverTime={raw!r}"[:200])
    try:
        return datetime.fromisoformat(raw[:-1] + "+00:00").timestamp()
    except ValueError as exc:
        raise kit.FrameError("bad_timestamp", f"serverTime={raw!r}"[:200]) from exc


def _optional_num(item: dict[str, Any], key: str) -> float | None:
    return kit.num(item, key) if item.get(key) is not None else None


def _oi_record(item: Any, meta: kit.Metadata, ts: float, recv_ts: float) -> Any:
    if not isinstance(item, dict):
        raise kit.FrameError("unexpected_shape", "ticker is not an object")
    symbol = kit.required_str(item, "symbol")
    pair = product_pair(symbol)
    if pair is None:
        return None  # an index (in_/rr_) or a product type whose units we do not know
    base, quote, market = pair
    inst = meta.get(symbol)
    contracts = kit.num(item, "openInterest")
    mark = _optional_num(item, "markPrice")
    if mark is not None and not mark > 0:
        mark = None
    oi_coins: float | None = None
    oi_usd: float | None = None
    if inst is not None:
        base, quote, market = inst.base, inst.quote, inst.market
        if market == "inverse":
            # Contracts of contractSize quote currency (USD) each: a USD value without a price.
            value = contracts * inst.contract_value
            oi_usd = value if quote in _USD_QUOTES else None
            oi_coins = value / mark if mark is not None and oi_usd is not None else None
        else:
            oi_coins = contracts * inst.contract_value
            if mark is not None and quote in _USD_QUOTES:
                oi_usd = oi_coins * mark
    perpetual = len(symbol.split("_")) == 2  # PF_XBTUSD; dated: FI_XBTUSD_261225
    funding = _optional_num(item, "relativeFundingRate") if perpetual else None
    return kit.oi_record(exchange=ID, symbol=symbol, base=base, market=market,
                         oi_coins=oi_coins, oi_usd=oi_usd,
                         price=mark if quote in _USD_QUOTES else None,
                         funding_rate=funding,
                         funding_interval_hours=FUNDING_INTERVAL_HOURS if funding is not None
                         else None, ts=ts, recv_ts=recv_ts)


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    """``/derivatives/api/v3/tickers``: one record per PF_/PI_/FF_/FI_ product."""
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    tickers = kit.member(msg, "tickers", list)
    ts = _server_time(msg, recv_ts)
    return kit.oi_frame(tickers, lambda item: _oi_record(item, meta, ts, recv_ts))


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="type liquidation; side is the taker side and the taker is taken to be the "
              "liquidated account (unverified): sell -> long, buy -> short",
    unit_rule="PF_/FF_: qty base x contractSize, notional qty*price; PI_/FI_: qty USD "
              "contracts x contractSize = notional, qty notional/price; no metadata -> null",
    sampled=False,
    feed="`trade` feed for every tradeable `PF_`/`FF_`/`PI_`/`FI_` product, trades of `type: "
         "liquidation`; new listings subscribed on refresh.",
    coverage="complete trade prints; `trade_snapshot` dropped; `termination` not "
             "counted; the side rule is **unverified**.",
    oi_source=kit.url_has(TICKERS_PATH),
    oi_rule="tickers openInterest contracts: PI_/FI_ x contractSize USD (coins = USD/markPrice), "
            "PF_/FF_ x contractSize base (USD = coins*markPrice); funding relativeFundingRate "
            "per 1 h (perpetuals; fundingRate is absolute, unused); no metadata -> null",
    ping_interval=15.0,  # a stall within 30 s; Kraken wants a message at least every 60 s
    pong_timeout=10.0,
    # Frames: a product's trade_snapshot (~100 trades x 0.2 KB) is the biggest.
    max_frame_bytes=256 * 1024,
    subscribe_for=subscribe_messages,
    metadata_refresh=900.0,
    default_urls={"ws": WS_URL, "rest": REST},
)
