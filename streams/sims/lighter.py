"""Lighter simulator: ``/stream`` (the ``connected`` greeting, one ``subscribed/trade`` per
``trade/{market_id}`` subscribe, ``ack_delay`` s later, replaying a recent liquidation as the
venue does; ``{"type":"ping"}`` -> ``{"type":"pong"}``; the venue's per-IP caps of 50 subscribes
in flight and 200 client messages a minute, refused with 30009; a duplicate subscribe refused
with 30003, an unknown market or channel with 30005; a connection that sent nothing for
``idle_timeout`` s closed), ``GET /api/v1/orderBookDetails`` and the trade history
``GET /api/v1/trades`` (the warm start: ``trade_history``, newest first, a cursor, the ``type``
filter, ``20001`` above 100 rows, and the base class's 429 or slow answer on demand). Plus builders for liquidation
entries, trade frames and metadata bodies, and the real captured frames the tests pin the parser
on. Run standalone for a demo: ``python -m liqstress.streams.sims.lighter``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import deque
from typing import Any

import orjson
import websockets
from aiohttp import web

from .base import VenueSim, run_demo

WS_PATH = "/stream"
DETAILS_PATH = "/api/v1/orderBookDetails"
TRADES_PATH = "/api/v1/trades"
#: Rows a ``trades`` page holds at most; more is refused with 20001 (nautilus_trader).
MAX_TRADES = 100

# ---- real captures -------------------------------------------------------------------------
# tardis-dev/tardis-node test/mappers.test.ts @ c1d73fb54c8cb785bd0a05c36189e24fb289065a, test
# "map lighter trade messages": the first two messages are labelled "real captured message"
# there. Converted from the test's JS object literals to JSON (same keys, values and order).
# BTC (market 1): a SHORT liquidated (taker_position_size_before -0.01664, is_maker_ask true).
TARDIS_LIQUIDATION = (
    '{"trade_id":18237797923,"trade_id_str":"18237797923","tx_hash":"00000011bcbd1dfc0000019daad'
    '62ecd000000000000000000000000000000000000000000000000","type":"liquidation","market_id":1,'
    '"size":"0.01664","price":"75602.8","usd_amount":"1258.030592","ask_id":562952080068427,'
    '"ask_id_str":"562952080068427","bid_id":844422775101621,"bid_id_str":"844422775101621",'
    '"ask_client_id":177668765669007,"ask_client_id_str":"177668765669007","bid_client_id":0,'
    '"bid_client_id_str":"0","ask_account_id":281474976626509,"bid_account_id":281474976600615,'
    '"is_maker_ask":true,"block_height":218829719,"timestamp":1776687656653,"taker_fee":10000,'
    '"taker_position_size_before":"-0.01664","taker_entry_quote_before":"1247.585664",'
    '"taker_initial_margin_fraction_before":200,"taker_position_sign_changed":true,'
    '"maker_fee":39,"maker_position_size_before":"-0.00015","maker_entry_quote_before":'
    '"11.282089","maker_initial_margin_fraction_before":200,"transaction_time":1776687656681222,'
    '"taker_allocated_margin_usdc_before":25585360}')
TARDIS_SUBSCRIBED = (
    '{"type":"subscribed/trade","channel":"trade:1","nonce":10380968789,"trades":['
    '{"trade_id":18240999145,"trade_id_str":"18240999145","tx_hash":"00000011bd66332a0000019dab0'
    '62502000000000000000000000000000000000000000000000000","type":"trade","market_id":1,'
    '"size":"0.00006","price":"75198.1","usd_amount":"4.511886","ask_id":562952080517578,'
    '"ask_id_str":"562952080517578","bid_id":844422774647641,"bid_id_str":"844422774647641",'
    '"ask_client_id":177669079961927,"ask_client_id_str":"177669079961927",'
    '"bid_client_id":51630146860820,"bid_client_id_str":"51630146860820","ask_account_id":72056,'
    '"bid_account_id":27927,"is_maker_ask":false,"block_height":218856170,'
    '"timestamp":1776690799874,"taker_position_size_before":"0.00072",'
    '"taker_entry_quote_before":"54.139644","taker_initial_margin_fraction_before":200,'
    '"maker_fee":38,"maker_position_size_before":"-60.95094","maker_entry_quote_before":'
    '"4581275.187585","maker_initial_margin_fraction_before":500,'
    '"transaction_time":1776690799927875},'
    '{"trade_id":18240999144,"trade_id_str":"18240999144","tx_hash":"00000011bd6633290000019dab0'
    '62502000000000000000000000000000000000000000000000000","type":"trade","market_id":1,'
    '"size":"0.00020","price":"75198.2","usd_amount":"15.039640","ask_id":562952080517578,'
    '"ask_id_str":"562952080517578","bid_id":844422774647644,"bid_id_str":"844422774647644",'
    '"ask_client_id":177669079961927,"ask_client_id_str":"177669079961927",'
    '"bid_client_id":116325593583470,"bid_client_id_str":"116325593583470",'
    '"ask_account_id":72056,"bid_account_id":27927,"is_maker_ask":false,'
    '"block_height":218856170,"timestamp":1776690799874,"taker_position_size_before":"0.00092",'
    '"taker_entry_quote_before":"69.178434","taker_initial_margin_fraction_before":200,'
    '"maker_fee":38,"maker_position_size_before":"-60.95114","maker_entry_quote_before":'
    '"4581290.220250","maker_initial_margin_fraction_before":500,'
    '"transaction_time":1776690799927846}],'
    '"liquidation_trades":[' + TARDIS_LIQUIDATION + ']}')
TARDIS_UPDATE = (
    '{"type":"update/trade","channel":"trade:1","nonce":10380969080,"trades":['
    '{"trade_id":18240999426,"trade_id_str":"18240999426","tx_hash":"00000011bd6636f50000019dab0'
    '62676000000000000000000000000000000000000000000000000","type":"trade","market_id":1,'
    '"size":"0.00012","price":"75196.7","usd_amount":"9.023604","ask_id":562952080517591,'
    '"ask_id_str":"562952080517591","bid_id":844422774647737,"bid_id_str":"844422774647737",'
    '"ask_client_id":177669079994047,"ask_client_id_str":"177669079994047",'
    '"bid_client_id":227191959496532,"bid_client_id_str":"227191959496532",'
    '"ask_account_id":72056,"bid_account_id":27927,"is_maker_ask":false,'
    '"block_height":218856174,"timestamp":1776690800246,"taker_position_size_before":"0.00012",'
    '"taker_entry_quote_before":"9.023274","taker_initial_margin_fraction_before":200,'
    '"taker_position_sign_changed":true,"maker_fee":38,"maker_position_size_before":'
    '"-60.95034","maker_entry_quote_before":"4581230.089589",'
    '"maker_initial_margin_fraction_before":500,"transaction_time":1776690800252707}],'
    '"liquidation_trades":[]}')
#: The same test's example of the venue omitting ``liquidation_trades`` ("Lighter sometimes
#: omits liquidation_trades when there are no liquidation events"); not labelled a capture.
TARDIS_NO_LIQUIDATION_KEY = ('{"type":"update/trade","channel":"trade:1","nonce":10380968791,'
                             '"trades":[]}')

# nautechsystems/nautilus_trader crates/adapters/lighter/test_data/http_recent_trades.json @
# ff0a315d6012da78739be3ebafe720ee460360cd, "captured from Lighter Mainnet REST endpoints on
# 2026-05-05" (its README): the only row of a REST trade page found, an ordinary print. Its keys
# are those of a channel entry (TARDIS_LIQUIDATION carries them all), verbatim.
NAUTILUS_REST_TRADE = (
    '{"trade_id":19211490282,"trade_id_str":"19211490282","tx_hash":"000000128ba361090000019df5c9'
    '4af4000000000000000000000000000000000000000000000000","type":"trade","market_id":0,'
    '"size":"0.0005","price":"2361.31","usd_amount":"1.180655","ask_id":281476929689557,'
    '"ask_id_str":"281476929689557","bid_id":562947905454831,"bid_id_str":"562947905454831",'
    '"ask_client_id":0,"ask_client_id_str":"0","bid_client_id":410940644,'
    '"bid_client_id_str":"410940644","ask_account_id":719347,"bid_account_id":281474976639642,'
    '"is_maker_ask":false,"block_height":227557648,"timestamp":1777945103092,'
    '"taker_position_size_before":"0.6611","taker_entry_quote_before":"1556.462172",'
    '"taker_initial_margin_fraction_before":200,"maker_fee":28,"maker_position_size_before":'
    '"-76.0264","maker_entry_quote_before":"179127.402288",'
    '"maker_initial_margin_fraction_before":200,"transaction_time":1777945103092648}')

# belyjelli/ai-rates apps/collector-go/internal/stream/liqlighter_test.go
# @ 7e632d33bea540bf8a4959d76cf54d75e97381bc: "Two real liquidation trades captured from Lighter
# 2026-09-24, one of each direction" (the test wraps them in a constructed envelope).
# WIF (market 5): is_maker_ask false, taker_position_size_before +1172.0: a LONG liquidated.
AI_RATES_LONG = (
    '{"trade_id":31787102386,"type":"liquidation","market_id":5,"market_kind":"perps",'
    '"size":"1172.0","price":"0.24087","usd_amount":"282.299640","ask_client_id":0,'
    '"bid_client_id":12007779301,"ask_account_id":281474976620776,"bid_account_id":7684,'
    '"is_maker_ask":false,"timestamp":1790221085387,"taker_fee":10000,'
    '"taker_position_size_before":"1172.0","taker_position_sign_changed":true,"maker_fee":28}')
# DOGE (market 3): is_maker_ask true, taker_position_size_before -3349: a SHORT liquidated.
AI_RATES_SHORT = (
    '{"trade_id":31795317844,"type":"liquidation","market_id":3,"market_kind":"perps",'
    '"size":"3349","price":"0.095169","usd_amount":"318.720981","ask_client_id":41232660,'
    '"bid_client_id":0,"ask_account_id":415333,"bid_account_id":281474976513961,'
    '"is_maker_ask":true,"timestamp":1790226477516,"taker_fee":10000,'
    '"taker_position_size_before":"-3349","taker_position_sign_changed":true,"maker_fee":28}')
# The liquidation quoted (elided with "...") in the comment of ai-rates liqlighter.go
# @ 1b074832432da9c3119d3f8b741c1d6ee6127ffe, "Captured live 2026-09-24 on market 0 (ETH)" in a
# subscribed/trade reply: its quoted fields only, no trade id (the elision dropped it).
AI_RATES_ETH_QUOTED = {"type": "liquidation", "market_id": 0, "size": "0.0394",
                       "price": "2703.94", "usd_amount": "106.535236", "is_maker_ask": True,
                       "timestamp": 1790226496534, "taker_fee": 10000,
                       "taker_position_size_before": "-0.0394"}

# choosemycoins/hftbacktest connector/src/lighter/fixtures.rs
# @ b83f8c3280f81b5ab434ad5e3004aec5439c099a: "Frames captured verbatim from Lighter mainnet",
# CRV (market 36), 2026-07-29; the control and error frames from a mainnet session 2026-07-28.
#: ``update/trade``, one block's prints, verbatim (no liquidation).
HFT_TRADE_CRV = (
    '{"channel":"trade:36","liquidation_trades":[],"nonce":18032408814,"trades":[{"trade_id":'
    '26412422124,"trade_id_str":"26412422124","tx_hash":"00000019c75017e30000019fafade0cc000000'
    '000000000000000000000000000000000000000000","type":"trade","market_id":36,"size":"0.7",'
    '"price":"0.20382","usd_amount":"0.142674","ask_id":10414574259102759,"ask_id_str":'
    '"10414574259102759","bid_id":10696048997502383,"bid_id_str":"10696048997502383",'
    '"ask_client_id":69016212847,"ask_client_id_str":"69016212847","bid_client_id":0,'
    '"bid_client_id_str":"0","ask_account_id":314233,"bid_account_id":382258,"is_maker_ask":true,'
    '"block_height":303153774,"timestamp":1785358835916,"taker_position_size_before":"619.5",'
    '"taker_entry_quote_before":"129.621128","taker_initial_margin_fraction_before":1000,'
    '"maker_fee":28,"maker_position_size_before":"47295.0","maker_entry_quote_before":'
    '"9694.464700","maker_initial_margin_fraction_before":1000,"transaction_time":'
    '1785358835917189}],"type":"update/trade"}')
#: The liquidation replayed in the CRV ``subscribed/trade`` below: a LONG (taker sold,
#: taker_position_size_before +8432.2), 46 h older than the newest trade of the replay.
HFT_LIQUIDATION_CRV = (
    '{"trade_id":26218621834,"trade_id_str":"26218621834","tx_hash":"0000001995872dea0000019fa5c'
    'e8ff3000000000000000000000000000000000000000000000000","type":"liquidation","market_id":36,'
    '"size":"8215.3","price":"0.20039","usd_amount":"1646.263967","ask_id":10414574258696109,'
    '"ask_id_str":"10414574258696109","bid_id":10696048997897706,"bid_id_str":'
    '"10696048997897706","ask_client_id":0,"ask_client_id_str":"0","bid_client_id":55006172834,'
    '"bid_client_id_str":"55006172834","ask_account_id":722982,"bid_account_id":314233,'
    '"is_maker_ask":false,"block_height":301149026,"timestamp":1785193205747,"taker_fee":10000,'
    '"taker_position_size_before":"8432.2","taker_entry_quote_before":"1798.870797",'
    '"taker_initial_margin_fraction_before":1000,"maker_fee":28,"maker_position_size_before":'
    '"-4282.3","maker_entry_quote_before":"865.558815","maker_initial_margin_fraction_before":'
    '1000,"maker_position_sign_changed":true,"transaction_time":1785193205753071}')
#: ``subscribed/trade``, "the replay the venue sends on every subscribe": envelope, the first
#: two of its 50 trades and the first liquidation, as trimmed by the capture's author.
HFT_REPLAY_CRV = (
    '{"channel":"trade:36","liquidation_trades":[' + HFT_LIQUIDATION_CRV + '],"nonce":'
    '18032383935,"trades":[{"trade_id":26412385647,"trade_id_str":"26412385647","tx_hash":'
    '"00000019c74d740c0000019fafad6ba9000000000000000000000000000000000000000000000000","type":'
    '"trade","market_id":36,"size":"0.7","price":"0.20382","usd_amount":"0.142674","ask_id":'
    '10414574259102759,"ask_id_str":"10414574259102759","bid_id":10696048997502478,'
    '"bid_id_str":"10696048997502478","ask_client_id":69016212847,"ask_client_id_str":'
    '"69016212847","bid_client_id":0,"bid_client_id_str":"0","ask_account_id":314233,'
    '"bid_account_id":382258,"is_maker_ask":true,"block_height":303153355,"timestamp":'
    '1785358805929,"taker_position_size_before":"618.8","taker_entry_quote_before":"129.478454",'
    '"taker_initial_margin_fraction_before":1000,"maker_fee":28,"maker_position_size_before":'
    '"47295.7","maker_entry_quote_before":"9694.608186","maker_initial_margin_fraction_before":'
    '1000,"transaction_time":1785358805929929},{"trade_id":26412344671,"trade_id_str":'
    '"26412344671","tx_hash":"00000019c74ac6a80000019fafacf686000000000000000000000000000000000'
    '000000000000000","type":"trade","market_id":36,"size":"0.7","price":"0.20393","usd_amount":'
    '"0.142751","ask_id":10414574259102610,"ask_id_str":"10414574259102610","bid_id":'
    '10696048997502569,"bid_id_str":"10696048997502569","ask_client_id":69016212842,'
    '"ask_client_id_str":"69016212842","bid_client_id":0,"bid_client_id_str":"0",'
    '"ask_account_id":314233,"bid_account_id":382258,"is_maker_ask":true,"block_height":'
    '303152935,"timestamp":1785358775942,"taker_position_size_before":"618.1",'
    '"taker_entry_quote_before":"129.335703","taker_initial_margin_fraction_before":1000,'
    '"maker_fee":28,"maker_position_size_before":"47296.4","maker_entry_quote_before":'
    '"9694.751672","maker_initial_margin_fraction_before":1000,"transaction_time":'
    '1785358775942778}],"type":"subscribed/trade"}')
#: "The first frame of every session."
CONNECTED = '{"session_id":"b23c70b2-9ef8-4080-8f02-4edf34138329","type":"connected"}'
#: "The venue's answer to an app-level {"type":"ping"}."
PONG = '{"type":"pong"}'
#: The answer to a subscribe of an unknown market (``ticker/99999``): names no channel.
ERROR_UNKNOWN_MARKET = '{"error":{"code":30005,"message":"Invalid Channel:  (marketId)"}}'
#: The answer to a duplicate subscribe (of ``order_book/0`` there).
ERROR_ALREADY_SUBSCRIBED = ('{"error":{"code":30003,"message":"Already Subscribed to : '
                            'order_book:0"}}')
#: The unsubscribe ack, "the one frame the venue spells with" spaces.
UNSUBSCRIBED = '{"type": "unsubscribed", "channel": "order_book:0"}'

# nautechsystems/nautilus_trader crates/adapters/lighter/test_data/http_order_book_details.json
# @ ff0a315d6012da78739be3ebafe720ee460360cd: captured from mainnet REST 2026-05-05 (per the
# folder's README), whitespace removed.
NAUTILUS_DETAILS = (
    '{"code":200,"order_book_details":[{"symbol":"ETH","market_id":0,"market_type":"perp",'
    '"base_asset_id":0,"quote_asset_id":0,"status":"active","taker_fee":"0.0000",'
    '"is_taker_fee_enabled":true,"maker_fee":"0.0000","is_maker_fee_enabled":true,'
    '"liquidation_fee":"1.0000","min_base_amount":"0.0050","min_quote_amount":"10.000000",'
    '"order_quote_limit":"281474976.710655","supported_size_decimals":4,'
    '"supported_price_decimals":2,"supported_quote_decimals":6,"size_decimals":4,'
    '"price_decimals":2,"quote_multiplier":1,"default_initial_margin_fraction":500,'
    '"min_initial_margin_fraction":200,"maintenance_margin_fraction":120,'
    '"closeout_margin_fraction":80,"last_trade_price":2361.31,"daily_trades_count":428074,'
    '"daily_base_token_volume":195399.1521,"daily_quote_token_volume":460664167.955905,'
    '"daily_price_low":2313.36,"daily_price_high":2398,"daily_price_change":-0.5215684126709949,'
    '"open_interest":27350.8981,"daily_chart":{},"market_config":{"market_margin_mode":0,'
    '"insurance_fund_account_index":281474976710655,"liquidation_mode":0,'
    '"force_reduce_only":false,"trading_hours":"","funding_fee_discounts_enabled":false,'
    '"hidden":false,"rfq_enabled":true},"strategy_index":2}],"spot_order_book_details":[]}')

# ---- builders ------------------------------------------------------------------------------

#: Active perps the simulator lists (market id -> symbol), as on mainnet.
MARKETS: dict[int, str] = {0: "ETH", 1: "BTC", 3: "DOGE", 5: "WIF", 36: "CRV"}

_trade_ids = itertools.count(40_000_000_001)
_nonces = itertools.count(20_000_000_001)


def details_body(markets: dict[int, str] = MARKETS,
                 inactive: dict[int, str] | None = None,
                 spot: dict[int, str] | None = None) -> str:
    """``orderBookDetails``: ``markets`` active perps, ``inactive`` delisted ones and ``spot``
    books (ids from 2048, as on mainnet), with the rows' other fields as in the capture."""
    def row(market_id: int, symbol: str, kind: str, status: str) -> dict[str, Any]:
        return {"symbol": symbol, "market_id": market_id, "market_type": kind,
                "base_asset_id": 0, "quote_asset_id": 0 if kind == "perp" else 3,
                "status": status, "taker_fee": "0.0000", "maker_fee": "0.0000",
                "liquidation_fee": "1.0000" if kind == "perp" else "0.0000",
                "min_base_amount": "0.0050", "min_quote_amount": "10.000000",
                "size_decimals": 4, "price_decimals": 2, "quote_multiplier": 1}
    perps = [row(i, s, "perp", "active") for i, s in markets.items()]
    perps += [row(i, s, "perp", "inactive") for i, s in (inactive or {140: "PIPPIN"}).items()]
    spots = [row(i, s, "spot", "active") for i, s in (spot or {2053: "SKY/USDC"}).items()]
    return orjson.dumps({"code": 200, "order_book_details": perps,
                         "spot_order_book_details": spots}).decode()


def liquidation(market_id: int, size: str, price: str, usd: str, t_ms: int, *,
                taker_before: str | None, is_maker_ask: bool | None,
                trade_id: int | None = None, kind: str = "liquidation") -> dict[str, Any]:
    """A ``liquidation_trades`` entry with the fields the venue sends (None leaves one out)."""
    tid = next(_trade_ids) if trade_id is None else trade_id
    out: dict[str, Any] = {
        "trade_id": tid, "trade_id_str": str(tid), "tx_hash": f"{tid:080x}", "type": kind,
        "market_id": market_id, "size": size, "price": price, "usd_amount": usd,
        "ask_id": 562952080000000 + tid % 10**6, "bid_id": 844422775000000 + tid % 10**6,
        "ask_client_id": 0, "bid_client_id": 0,
        "ask_account_id": 281474976626509, "bid_account_id": 281474976600615,
        "block_height": 300_000_000, "timestamp": t_ms, "taker_fee": 10000, "maker_fee": 28,
        "taker_position_sign_changed": True, "transaction_time": t_ms * 1000 + 17}
    if is_maker_ask is not None:
        out["is_maker_ask"] = is_maker_ask
    if taker_before is not None:
        out["taker_position_size_before"] = taker_before
    return out


def long_liquidation(market_id: int, size: str, price: str, t_ms: int,
                     trade_id: int | None = None) -> dict[str, Any]:
    """A liquidated LONG: the taker held +size and sold it (the maker bid)."""
    return liquidation(market_id, size, price, _usd(size, price), t_ms, taker_before=size,
                       is_maker_ask=False, trade_id=trade_id)


def short_liquidation(market_id: int, size: str, price: str, t_ms: int,
                      trade_id: int | None = None) -> dict[str, Any]:
    """A liquidated SHORT: the taker held -size and bought it back (the maker asked)."""
    return liquidation(market_id, size, price, _usd(size, price), t_ms, taker_before=f"-{size}",
                       is_maker_ask=True, trade_id=trade_id)


def _usd(size: str, price: str) -> str:
    return f"{float(size) * float(price):.6f}"


def ordinary_trade(market_id: int, size: str, price: str, t_ms: int) -> dict[str, Any]:
    return liquidation(market_id, size, price, _usd(size, price), t_ms, taker_before="0.5",
                       is_maker_ask=False, kind="trade")


def trade_frame(market_id: int, *liquidations: dict[str, Any] | str,
                trades: tuple[dict[str, Any], ...] = (), kind: str = "update/trade",
                nonce: int | None = None) -> str:
    """A trade-channel frame (keys in the venue's order); an entry given as text (a real
    capture) is embedded as it is."""
    liqs = ",".join(x if isinstance(x, str) else orjson.dumps(x).decode() for x in liquidations)
    return (f'{{"channel":"trade:{market_id}","liquidation_trades":[{liqs}],'
            f'"nonce":{next(_nonces) if nonce is None else nonce},'
            f'"trades":{orjson.dumps(list(trades)).decode()},"type":"{kind}"}}')


def ack_frame(market_id: int, *liquidations: dict[str, Any] | str,
              trades: tuple[dict[str, Any], ...] = (), nonce: int | None = None) -> str:
    """``subscribed/trade``: the ack, with the market's recent history."""
    return trade_frame(market_id, *liquidations, trades=trades, kind="subscribed/trade",
                       nonce=nonce)


def error_frame(code: int, message: str) -> str:
    """An error in the venue's shape (no type, no channel). Only 30003 and 30005 are captured
    (above); the rate-limit refusal 30009 is known by its code (nautilus_trader consts.rs)."""
    return orjson.dumps({"error": {"code": code, "message": message}}).decode()


_SUBSCRIBE = re.compile(r"trade/(0|[1-9][0-9]*)")


class LighterSim(VenueSim):
    ws_paths = (WS_PATH,)

    def __init__(self, markets: dict[int, str] | None = None) -> None:
        super().__init__()
        self.markets = dict(MARKETS if markets is None else markets)
        self.details = details_body(self.markets)
        #: Seconds between a subscribe and its ack (the venue's is ~0.27 s).
        self.ack_delay = 0.0
        #: Replay a liquidation from two minutes ago in every ack, as the venue does.
        self.replay_on_subscribe = True
        #: The venue closes a connection that sent nothing for two minutes.
        self.idle_timeout = 120.0
        #: Per-IP caps: subscribes awaiting their ack, client messages in any 60 s.
        self.max_inflight = 50
        self.max_per_minute = 200
        #: The "minute" of ``max_per_minute`` in seconds (tests shrink time with it).
        self.rate_window = 60.0
        self.inflight = 0
        self.inflight_peak = 0
        self.per_minute_peak = 0
        #: Subscribes refused for a cap (30009).
        self.rate_limited = 0
        #: Markets acked, over every connection (resubscribes repeat them).
        self.subscribed: list[int] = []
        self._subs: dict[Any, set[int]] = {}
        self._sent: deque[float] = deque()
        #: ``/api/v1/trades`` per market id: rows (``liquidation``/``ordinary_trade``) in any
        #: order, served by ``sort_dir`` (newest first by default), ``type`` filtered, at most
        #: ``history_page`` a page with an opaque ``next_cursor`` on every page that has rows
        #: (an empty page is the end). ``history_requests`` (base): (market_id, cursor).
        self.trade_history: dict[int, list[dict[str, Any]]] = {}
        self.history_page = MAX_TRADES

    def list_market(self, market_id: int, symbol: str) -> None:
        """A new listing: in ``orderBookDetails`` and open to subscribes from now on."""
        self.markets[market_id] = symbol
        self.details = details_body(self.markets)

    def rest_routes(self) -> dict[str, Any]:
        async def details(request: web.Request) -> str:
            return self.details
        return {DETAILS_PATH: details, TRADES_PATH: self._trades}

    async def _trades(self, request: web.Request) -> str:
        q = request.query
        self.history_requests.append((q.get("market_id"), q.get("cursor")))
        await self.history_faults('{"code":429,"message":"Too Many Requests"}')
        try:
            market, limit = int(q.get("market_id", "")), int(q.get("limit", ""))
            offset = int(q.get("cursor", "c0")[1:])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_TRADES or q.get("sort_by") not in ("timestamp", "trade_id"):
            raise web.HTTPBadRequest(text='{"code":20001,"message":"invalid param"}',
                                     content_type="application/json")
        kind = q.get("type", "all")
        key = "timestamp" if q["sort_by"] == "timestamp" else "trade_id"
        rows = sorted((r for r in self.trade_history.get(market, [])
                       if kind == "all" or r["type"] == kind),
                      key=lambda r: (r[key], r["trade_id"]), reverse=q.get("sort_dir") != "asc")
        chunk = rows[offset:offset + min(limit, self.history_page)]
        return orjson.dumps({"code": 200, "next_cursor": f"c{offset + len(chunk)}" if chunk
                             else None, "trades": chunk}).decode()

    async def push(self, frame: str | bytes, path: str | None = None) -> None:
        """Like the venue, a trade frame goes to the connections subscribed to its market;
        anything else to every connection."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError:
            msg = None
        channel = msg.get("channel") if isinstance(msg, dict) else None
        if isinstance(channel, str) and channel.startswith("trade:"):
            market = channel[len("trade:"):]
            for ws in list(self.clients):
                if market.isdigit() and int(market) in self._subs.get(ws, ()):
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(frame)
            return
        await super().push(frame, path)

    async def on_connect(self, ws: Any, path: str) -> None:
        self._subs[ws] = set()
        await ws.send(CONNECTED)
        self.watch_idle(ws, "i/o timeout")

    def _count_message(self) -> int:
        """Client messages of the last ``rate_window`` s, this one included (every connection:
        per IP)."""
        now = time.monotonic()
        self._sent.append(now)
        while self._sent and now - self._sent[0] > self.rate_window:
            self._sent.popleft()
        self.per_minute_peak = max(self.per_minute_peak, len(self._sent))
        return len(self._sent)

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        self.seen(ws)
        sent = self._count_message()
        try:
            req = orjson.loads(msg)
        except orjson.JSONDecodeError:
            req = None
        kind = req.get("type") if isinstance(req, dict) else None
        if kind == "ping":
            if self.answer_pings:
                await ws.send(PONG)
            return
        channel = req.get("channel") if isinstance(req, dict) else None
        m = _SUBSCRIBE.fullmatch(channel) if kind == "subscribe" and isinstance(channel, str) \
            else None
        if m is None or self.fail_subscribe or int(m.group(1)) not in self.markets:
            await ws.send(ERROR_UNKNOWN_MARKET)
            return
        market = int(m.group(1))
        if sent > self.max_per_minute or self.inflight >= self.max_inflight:
            self.rate_limited += 1
            await ws.send(error_frame(30009, "Too Many Requests"))
            return
        if market in self._subs.setdefault(ws, set()):
            await ws.send(error_frame(30003, f"Already Subscribed to : trade:{market}"))
            return
        self._subs[ws].add(market)
        self.inflight += 1
        self.inflight_peak = max(self.inflight_peak, self.inflight)
        self.background(self._ack(ws, market))

    async def _ack(self, ws: Any, market: int) -> None:
        try:
            await asyncio.sleep(self.ack_delay)
            old = int(time.time() * 1000) - 120_000
            history = [long_liquidation(market, "2", "100", old)] if self.replay_on_subscribe \
                else []
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(ack_frame(market, *history,
                                        trades=(ordinary_trade(market, "1", "100", old),)))
                self.subscribed.append(market)
        finally:
            self.inflight -= 1


async def _demo(sim: LighterSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    make = long_liquidation if i % 2 else short_liquidation
    await sim.push(trade_frame(1, make(1, "0.05", str(60000 + i), now)))


if __name__ == "__main__":  # pragma: no cover
    run_demo(LighterSim, _demo)
