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


def connections(meta: kit.Metadata, urls: dict[str, str]) -> list[kit.Connection]:
    return [kit.Connection(name="public", url=urls.get("ws", WS_URL), subscribe=(SUBSCRIBE,))]


def _side(detail: dict[str, Any]) -> Side:
    pos = str(detail.get("posSide") or "net").lower()
    if pos == "net":
        return kit.side_from_order_side(str(detail.get("side", "")))
    return kit.side_from_position_side(pos)


def parse(text: str, source: str, recv_ts: float, meta: kit.Metadata) -> kit.Parsed:
    envelope = kit.okx_envelope(text, "channel", CHANNEL)
    if isinstance(envelope, kit.Parsed):
        return envelope
    _, arg, data = envelope
    events = []
    unpriced = 0
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("details"), list):
            raise kit.FrameError("unexpected_shape", "data entry without details")
        inst_id = kit.required_str(entry, "instId")
        inst_type = entry.get("instType", arg.get("instType"))
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
    return kit.parsed("data", tuple(events), unpriced=unpriced)


VENUE = kit.VenueSpec(
    **kit.hooks(globals()),
    id=ID,
    side_rule="posSide long/short is the liquidated position; posSide net: side sell -> long, "
              "buy -> short",
    unit_rule="sz contracts; linear qty sz*ctVal*ctMult base, notional qty*bkPx; inverse "
              "notional sz*ctVal*ctMult USD, qty notional/bkPx; no metadata -> null notional",
    sampled=True,
    # A stall within 30 s (OKX drops a connection idle for 30 s). Frames: the batch OKX
    # replays on subscribe is the biggest: the 1 MiB default.
    ping_interval=15.0,
    pong_timeout=10.0,
    drop_before_subscribe=True,
    default_urls={"ws": WS_URL, "rest": REST},
)
