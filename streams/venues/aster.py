"""Aster (Binance-compatible perp DEX): the all-market ``!forceOrder@arr`` stream.

Aster mirrors Binance USD-M futures down to the stream names and payloads, so the frames go
through Binance's parser (``binance.force_order_frame``); what differs is the host, the venue id,
the subscription and the contract metadata.

- Feed: ``wss://fstream.asterdex.com/ws`` and one live ``SUBSCRIBE`` of ``!forceOrder@arr``,
  acknowledged ``{"result": null, "id": <our id>}`` (asterdex/api-docs
  ``V3(Recommended)/EN/aster-finance-futures-api-v3.md`` @ 265e024, "Websocket Market Streams"
  and "Live Subscribing/Unsubscribing to streams"; the same request on ``/ws`` in
  cj4c0b1/aster-lik-dash ``streamlit_app.py`` @ 0bc1413). Subscribing, rather than naming the
  stream in the URL (``/ws/!forceOrder@arr``: belyjelli/ai-rates ``DefaultAsterLiquidationURL``
  in ``apps/collector-go/internal/stream/liqbinance.go`` @ 154faf1), makes the venue confirm
  the stream before the source counts as up, and reports a refusal (``{"error": {...}, "id":
  <our id>}``, or the docs' bare ``{"code": .., "msg": ..}``) as a ``subscribe_error``. The
  ack and the refusal are matched by ``SUBSCRIBE_ID``, an id the pings never reach. No
  ``/market`` route split is documented for Aster (unlike Binance).
- Side: ``o.S`` is the side of the liquidation ORDER: a forced SELL closes a LONG, a BUY a
  SHORT. Evidence: the docs call it the "Side" of a "force liquidation order", as Binance's do;
  the one real frame pinned in the tests (belyjelli/ai-rates
  ``apps/collector-go/internal/stream/liquidations_test.go`` @ 727d489, ``asterLiqSell``,
  captured live) is a SELL that filled above its limit price (``ap`` 0.0044461 > ``p``
  0.0040681), as a forced sell into the bids does; ai-rates runs Aster through its Binance
  decoder ("SELL -> long").
- Units: USD-M linear, ``q``/``z`` in BASE units, ``p``/``ap`` in the quote: notional
  ``z x ap`` (what filled), else ``q x p``. The quote comes from REST ``GET
  /fapi/v1/exchangeInfo`` (``symbols[].quoteAsset``): USDT, USDC and USD1 (e.g. ``XAUUSD1``,
  quote and margin USD1) are USD stablecoins and count as USD, as Binance's USDT does. A symbol
  exchangeInfo does not list with such a quote (a listing newer than the last load, another
  quote, a coin-margined one) keeps ``qty`` and ``notional_usd`` null: counted as unpriced,
  never a guess. No contract multiplier: ``1000X`` listings quote per 1000 X, so it cancels.
- Time: ``o.T`` (trade time), else ``E`` (push time).
- Completeness: SAMPLED. The docs: "For each symbol, only the latest one liquidation order
  within 1000ms will be pushed as the snapshot"; totals are a floor, as on Binance. All symbols
  on one stream, only new liquidations after subscribing (no snapshot, no replay); no public
  REST backfill (``/fapi/v3/forceOrders`` is the caller's own orders, signed).
- Ids: the event id hashes exchange, symbol, trade time, side, price and the raw ``z`` (no
  venue order id is sent), so the same frame always gives the same id, distinct from Binance's.
- Liveness: the server's protocol pings (every 5 min) never reach the app and the feed can be
  silent for many minutes (ai-rates measured 2 events in 24 min), so we send
  ``LIST_SUBSCRIPTIONS`` every ``ping_interval`` and count its ``{"result": [...], "id": n}``
  reply as the pong ("Verified live on both hosts", ai-rates ``liqbinance.go``). A connection
  lives 24 h at most; the runner reconnects and subscribes again.
- Open interest and funding: none. Aster documents no ``openInterest`` endpoint (V1 or V3), and
  its funding intervals differ per symbol (``fundingInfo``: 1-8 h) where Binance's OI code
  assumes 8 h.
"""

from __future__ import annotations

from typing import Any

import orjson

from . import kit
from .binance import decoded_frame, force_order_frame, ping_message

ID = "aster"
WS_URL = "wss://fstream.asterdex.com/ws"
STREAM = "!forceOrder@arr"
REST = "https://fapi.asterdex.com"
EXCHANGE_INFO_PATH = "/fapi/v1/exchangeInfo"
#: The SUBSCRIBE request's id. Our pings carry the collector's sequence (1, 2, ...: one per
#: ping interval, ~1000 years to get here), so an ack or a refusal with this id answers the
#: subscribe and never a ping. Within the signed 32-bit range, in case the server holds it so.
SUBSCRIBE_ID = 2**31 - 1
#: Quote assets that are USD stablecoins: a listing quoted in one of them is priced.
USD_QUOTES = ("USDT", "USDC", "USD1")


def subscribe_message() -> str:
    return orjson.dumps({"method": "SUBSCRIBE", "params": [STREAM],
                         "id": SUBSCRIBE_ID}).decode()


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    return [kit.Connection(name="futures", url=urls.get("ws", WS_URL),
                           subscribe=[subscribe_message()])]


def rest_urls(urls: dict[str, str]) -> list[str]:
    return [kit.rest_url(urls, REST, EXCHANGE_INFO_PATH)]


def _rest_error(msg: dict[str, Any]) -> str | None:
    return kit.code_error(msg) if "symbols" not in msg and "code" in msg else None


def load_rest(meta: kit.Metadata, url: str, body: str) -> None:
    """``/fapi/v1/exchangeInfo``: every listing quoted in a USD stablecoin, whatever its status
    (a contract being settled or delisted can still liquidate). Coin-margined listings (margin
    asset = base asset) would size orders in contracts, not coins: left out, so unpriced."""
    msg = kit.rest_json(body, dict, "REST body is not an object", _rest_error)
    for item in kit.member(msg, "symbols", list):
        if not isinstance(item, dict):
            continue
        symbol, base = item.get("symbol"), item.get("baseAsset")
        quote, margin = item.get("quoteAsset"), item.get("marginAsset")
        if not isinstance(symbol, str) or not symbol or not isinstance(base, str) or not base:
            continue
        if quote not in USD_QUOTES or margin == base:
            continue
        meta.instruments[symbol] = kit.Instrument(symbol=symbol, base=base, quote=str(quote),
                                                  market="linear")


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote of a symbol exchangeInfo does not list (only to name its unpriced event);
    ``unknown_symbol`` if it ends in no USD quote at all."""
    return kit.split_symbol(symbol, (*USD_QUOTES, "USD"))


def _control(msg: dict[str, Any]) -> kit.Parsed | None:
    """A reply to one of our requests, or None for anything else."""
    error = msg.get("error")
    if error is None and "code" in msg and "msg" in msg:
        error = {"code": msg["code"], "msg": msg["msg"]}  # the docs' bare error shape
    if error is not None:
        reason = "subscribe_error" if msg.get("id") == SUBSCRIBE_ID else "venue_error"
        raise kit.FrameError(reason, str(error)[:200])
    if "result" in msg and "id" in msg:
        # Ours are SUBSCRIBE (acked with result null) and LIST_SUBSCRIPTIONS (the pings).
        return kit.ACK if msg["id"] == SUBSCRIBE_ID else kit.PONG
    return None


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    msg = decoded_frame(text)
    if type(msg) is dict and "e" not in msg:  # forceOrder frames go straight to the parser
        control = _control(msg)
        if control is not None:
            return control
    return force_order_frame(text, msg, recv_ts, meta, ID, listed_only=True, split=split_symbol)


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="o.S is the liquidation order side: SELL -> long, BUY -> short",
    unit_rule="base units; notional z*ap (fallback q*p) for listings exchangeInfo quotes in "
              "USDT/USDC/USD1 (treated as USD); any other symbol -> null notional",
    sampled=True,
    feed="`wss://fstream.asterdex.com/ws` with one live `SUBSCRIBE` of the "
         "Binance-compatible `!forceOrder@arr` (every symbol); quotes from "
         "`/fapi/v1/exchangeInfo`.",
    coverage="**floor**: at most one liquidation per symbol per second (\"only the latest "
             "one liquidation order within 1000ms\"); only liquidations after the subscribe (no "
             "replay, no public backfill). Parser pinned by a live frame.",
    # A stall within 30 s, as for Binance: LIST_SUBSCRIPTIONS every 15 s, 10 s for its reply.
    ping_interval=15.0,
    pong_timeout=10.0,
    ping_message=ping_message,
    # Frames: one forceOrder each (~0.3 KB).
    max_frame_bytes=256 * 1024,
    default_urls={"ws": WS_URL, "rest": REST},
)
