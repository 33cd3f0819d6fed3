"""Binance COIN-M (coin-margined, inverse) futures: the all-market ``!forceOrder@arr`` stream.

- Endpoint: ``wss://dstream.binance.com/ws/!forceOrder@arr``. The 2026 route split
  (``/market``) covers USD-M ``fstream`` only; COIN-M keeps the unrouted ``/ws`` path (ccxt PR
  #28091, nautilus_trader docs). The stream is named in the URL: no subscribe message.
- Side: as for USD-M, ``o.S`` is the side of the liquidation ORDER. A forced SELL closes a long,
  a forced BUY a short.
- Units: ``q``/``z`` are CONTRACTS of ``contractSize`` USD each (REST ``GET
  /dapi/v1/exchangeInfo``: BTCUSD 100 USD, the others 10 USD). USD notional = ``z ×
  contractSize`` (what filled; ``q × contractSize`` when nothing filled), already USD, with no
  price in it; base qty = notional / ``ap`` (``p`` on the fallback). A COIN-M symbol missing from
  exchangeInfo (a listing newer than the last metadata load) keeps ``qty``/``notional_usd`` null
  (counted as unpriced), never ``z × ap``, which treats contracts as coins.
- Family filter: the dstream all-market stream has been seen also carrying the USD-M orders,
  one for one identical to fstream (third-party report, exchanges.md §2.2). Only COIN-M symbols
  are kept: those exchangeInfo lists as coin-margined (quote USD, margin asset = base asset) and,
  for listings not loaded yet, the COIN-M naming ``<PAIR>USD_PERP`` / ``<PAIR>USD_<yymmdd>``.
  Anything else (``BTCUSDT``, ``ETHUSDC``, ``BTCUSDT_261225``) is the USD-M feed's business: the
  frame is ignored as kind ``info``, so it is neither counted twice nor dead-lettered. It shows
  up only in ``liqstress_source_frames_total{exchange="binance-coinm",kind="info"}``; the only
  other info frames of this venue are the exchangeInfo loads (one per metadata refresh).
- Time: ``o.T`` (trade time), falling back to ``E`` (push time, ~1 s later).
- Sampling: at most one liquidation per symbol per 1000 ms is pushed, so totals are a floor.
- Liveness: the server's protocol pings never reach the app, so we send ``LIST_SUBSCRIPTIONS``
  (the USD-M helper) and treat its ``{"result": [...], "id": n}`` reply as the pong.
- Replay: none; the stream sends only new liquidations after connect, no snapshot.
- Open interest and funding (REST poll, ``oi_urls``): first ``GET {rest}/dapi/v1/premiumIndex``
  (every symbol: ``markPrice``, ``lastFundingRate`` ("" for delivery contracts), ``time``), kept
  in ``meta.oi_context``; then ``GET {rest}/dapi/v1/openInterest?symbol=<COIN>USD_PERP`` for each
  coin of ``DEFAULT_COIN_ALLOWLIST`` that exchangeInfo lists. ``openInterest`` is CONTRACTS:
  USD = contracts x ``contractSize`` (exchangeInfo; no price involved; null without metadata),
  coins = USD / the stashed mark (null when that mark is missing or more than ``MARK_MAX_AGE``
  seconds from the OI ``time``). Funding: ``lastFundingRate``, a fraction per 8 h, perpetuals
  only.
"""

from __future__ import annotations

import re
from typing import Any

from liqstress.labels import DEFAULT_COIN_ALLOWLIST, Side

from . import kit
from .binance import (
    FUNDING_INTERVAL_HOURS,
    MARK_MAX_AGE,
    decode_force_order,
    decoded_frame,
    fast_order,
    fresh_mark,
    order_fill,
    order_time,
    ping_message,
    stash_marks,
)

ID = "binance-coinm"
WS_URL = "wss://dstream.binance.com/ws/!forceOrder@arr"
REST = "https://dapi.binance.com"
#: COIN-M naming: perpetual ``BTCUSD_PERP``, delivery ``BTCUSD_261225``. USD-M symbols end in
#: USDT/USDC (``BTCUSDT``, ``BTCUSDT_261225``) and never match.
COINM_SYMBOL = re.compile(r"^([A-Z0-9]+)USD_(?:PERP|\d{6})$")
PREMIUM_PATH = "/dapi/v1/premiumIndex"
OI_PATH = "/dapi/v1/openInterest"
_OI_CONTEXT = "binance_coinm_marks"


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, "/dapi/v1/exchangeInfo")]


def _rest_error(msg: dict[str, Any]) -> str | None:
    return kit.code_error(msg) if "symbols" not in msg and "code" in msg else None


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    """``/dapi/v1/exchangeInfo``: keep coin-margined contracts (quote USD, margined in the base
    coin) with a positive ``contractSize`` (USD per contract)."""
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    for item in kit.member(msg, "symbols", list):
        if not isinstance(item, dict):
            continue
        symbol, base = item.get("symbol"), item.get("baseAsset")
        if not isinstance(symbol, str) or not symbol or not isinstance(base, str) or not base:
            continue
        size = kit.positive(item, "contractSize")
        # Coin-margined: quoted in USD and margined (settled) in the base coin. Anything else
        # has no USD contract value we can trust, so it stays out (events unpriced).
        if size is None or item.get("quoteAsset") != "USD" or item.get("marginAsset") != base:
            continue
        meta.instruments[symbol] = kit.Instrument(symbol=symbol, base=base, quote="USD",
                                              market="inverse", contract_value=size)


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    # The stream is named in the URL: no subscribe message is needed.
    return [kit.Connection(name="coinm", url=urls.get("ws", WS_URL))]


def is_coinm(symbol: str, meta: kit.Metadata) -> bool:
    """True for the COIN-M family; False for USD-M orders the dstream feed also carries."""
    return meta.get(symbol) is not None or COINM_SYMBOL.match(symbol) is not None


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = decoded_frame(text)
    fast = fast_order(msg)  # the happy path; None: the full path below decides
    if fast is not None:
        o, symbol, contracts, price, ts, side = fast
        if not is_coinm(symbol, meta):
            return kit.INFO  # a USD-M order, as below
        return _data(o, symbol, side, contracts, price, ts, recv_ts, meta)
    decoded = decode_force_order(text, msg)
    if isinstance(decoded, kit.Parsed):
        return decoded
    msg, o, symbol = decoded
    if not is_coinm(symbol, meta):
        # A USD-M order (counted by the binance venue): ignore, never count it twice.
        return kit.INFO
    side = kit.side_from_order_side(str(o.get("S", "")))
    contracts, price = order_fill(o)
    if contracts < 0 or price <= 0:
        raise kit.FrameError("bad_number", f"q/z={contracts!r} p/ap={price!r}")
    ts = order_time(msg, o)
    return _data(o, symbol, side, contracts, price, ts, recv_ts, meta)


def _data(o: dict[str, Any], symbol: str, side: Side, contracts: float, price: float,
          ts: float, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    inst = meta.get(symbol)
    qty: float | None
    notional: float | None
    if inst is not None:
        base = inst.base
        # Contracts of contractSize USD: already USD, no price involved.
        qty, notional = kit.amounts(contracts, price, "inverse", inst.contract_value)
    else:
        m = COINM_SYMBOL.match(symbol)
        base = m.group(1) if m else symbol
        qty = notional = None  # contract size unknown: unpriced, never a guess
    ev = kit.event(exchange=ID, symbol=symbol, base=base, quote="USD", market="inverse", side=side,
               price=price, qty=qty, notional_usd=notional, ts=ts, recv_ts=recv_ts,
               sampled=True, qty_raw=o.get("z", o.get("q")))
    return kit.parsed("data", (ev,), unpriced=0 if notional is not None else 1)


# ---- open interest and funding -------------------------------------------------------------


def oi_urls(meta: kit.Metadata, urls: dict[str, str]) -> list[str]:
    """premiumIndex first (marks and funding for the per-symbol bodies), then the allowlisted
    perpetuals exchangeInfo lists (all of them before metadata is loaded)."""
    symbols = [f"{coin}USD_PERP" for coin in DEFAULT_COIN_ALLOWLIST]
    if meta.instruments:
        symbols = [s for s in symbols if s in meta.instruments]
    return [kit.rest_url(urls, REST, PREMIUM_PATH)] + [
        kit.rest_url(urls, REST, f"{OI_PATH}?symbol={symbol}") for symbol in symbols]


def parse_oi(body: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    if PREMIUM_PATH in source:
        return stash_marks(body, meta, _OI_CONTEXT)
    msg = kit.rest_json(body, dict, "openInterest is not an object", _rest_error)

    def build(item: dict[str, Any]) -> Any:
        symbol = kit.required_str(item, "symbol")
        contracts, ts = kit.num_str(item, "openInterest"), kit.ms(item, "time")
        inst = meta.get(symbol)
        m = COINM_SYMBOL.match(symbol)
        if inst is None and m is None:
            raise kit.FrameError("unknown_symbol", symbol[:100])
        base = inst.base if inst is not None else m.group(1)  # type: ignore[union-attr]
        # Contracts of contractSize USD: already USD, no price involved.
        oi_usd = contracts * inst.contract_value if inst is not None else None
        marked = fresh_mark(meta, _OI_CONTEXT, symbol, ts)
        mark, rate = marked if marked is not None else (None, None)
        if item.get("contractType", "PERPETUAL") != "PERPETUAL" or \
                not symbol.endswith("_PERP"):
            rate = None
        return kit.oi_record(exchange=ID, symbol=symbol, base=base, market="inverse",
                             oi_coins=oi_usd / mark if oi_usd is not None and mark else None,
                             oi_usd=oi_usd, price=mark, funding_rate=rate,
                             funding_interval_hours=FUNDING_INTERVAL_HOURS if rate is not None
                             else None, ts=ts, recv_ts=recv_ts)

    return kit.oi_frame([msg], build)


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="o.S is the liquidation order side: SELL -> long, BUY -> short",
    unit_rule="z (fallback q) contracts x contractSize USD (exchangeInfo; BTCUSD 100, others 10); "
              "qty = notional / ap; USD-M symbols on the stream are ignored; no contractSize -> "
              "null notional",
    sampled=True,
    feed="`wss://dstream.binance.com/ws/!forceOrder@arr`: every COIN-M symbol on one stream, "
         "named in the URL; contract sizes from `/dapi/v1/exchangeInfo`.",
    coverage="**floor**: at most one liquidation per symbol per second; USD-M orders "
             "that also appear on this stream are ignored (counted by `binance`).",
    oi_source=kit.url_has(PREMIUM_PATH, OI_PATH),
    oi_rule="openInterest contracts x contractSize USD (exchangeInfo) per allowlisted USD_PERP; "
            f"coins = USD / premiumIndex markPrice (<= {MARK_MAX_AGE:.0f} s apart, else null); "
            "funding lastFundingRate per 8 h",
    # A stall within 30 s (the 60 s interval before let one go unseen for 92 s).
    ping_interval=15.0,
    pong_timeout=10.0,
    # Frames: one forceOrder each (~0.3 KB; USD-M orders on this stream too).
    max_frame_bytes=256 * 1024,
    ping_message=ping_message,
    default_urls={"ws": WS_URL, "rest": REST},
)
