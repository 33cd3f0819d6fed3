"""Binance USD-M simulator: serves ``/market/ws/!forceOrder@arr`` (and the silent legacy
``/ws/!forceOrder@arr``) and ``/market/ws/!markPrice@arr@1s``, answers ``LIST_SUBSCRIPTIONS``, and
serves the open-interest poll over REST (``/fapi/v1/premiumIndex``, ``/fapi/v1/openInterest``
per symbol; ``oi_bodies`` built by ``premium_body`` and ``oi_body``). Run standalone for a demo:
``python -m liqstress.streams.sims.binance``."""

from __future__ import annotations

import time
from typing import Any

import orjson

from .base import VenueSim, run_demo

# The Binance doc example, verbatim (USD-M Liquidation Order Streams).
DOC_FRAME = {
    "e": "forceOrder", "E": 1568014460893,
    "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014", "p": "9910",
          "ap": "9910", "X": "FILLED", "l": "0.014", "z": "0.014", "T": 1568014460893},
}


# The Binance doc example of ``!markPrice@arr`` (USD-M, "Mark Price Stream for All market").
DOC_MARK_PRICE_ITEM = {
    "e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11185.87786614",
    "i": "11784.62659091", "P": "11784.25641265", "r": "0.00030000", "T": 1562306400000,
}
MARK_PRICE_PATH = "/market/ws/!markPrice@arr@1s"


def mark_prices(prices: dict[str, str], t_ms: int) -> str:
    """A ``!markPrice@arr@1s`` frame: one markPriceUpdate per symbol."""
    return orjson.dumps([{**DOC_MARK_PRICE_ITEM, "E": t_ms, "s": s, "p": p}
                         for s, p in prices.items()]).decode()


def force_order(symbol: str, order_side: str, qty: str, price: str, t_ms: int,
                avg: str | None = None, filled: str | None = None) -> str:
    return orjson.dumps({
        "e": "forceOrder", "E": t_ms + 900,
        "o": {"s": symbol, "S": order_side, "o": "LIMIT", "f": "IOC", "q": qty, "p": price,
              "ap": avg or price, "X": "FILLED", "l": filled or qty, "z": filled or qty,
              "T": t_ms},
    }).decode()


PREMIUM_PATH = "/fapi/v1/premiumIndex"
OI_PATH = "/fapi/v1/openInterest"
#: The sim's default marks and open interest (coins) per allowlisted symbol.
OI_DEFAULTS = {"BTCUSDT": ("60000.0", "80000.000"), "ETHUSDT": ("3000.0", "1500000.000"),
               "SOLUSDT": ("150.0", "9000000"), "XRPUSDT": ("0.5", "300000000"),
               "DOGEUSDT": ("0.1", "2000000000"), "BNBUSDT": ("600.0", "700000.00")}
#: The Binance doc example of one ``/fapi/v1/premiumIndex`` item (USD-M "Mark Price").
DOC_PREMIUM_ITEM = {"symbol": "BTCUSDT", "markPrice": "11793.63104562",
                    "indexPrice": "11781.80495970", "estimatedSettlePrice": "11781.16138815",
                    "lastFundingRate": "0.00038246", "interestRate": "0.00010000",
                    "nextFundingTime": 1597392000000, "time": 1597370495002}


def premium_body(marks: dict[str, str] | None = None, t_ms: int | None = None,
                 rate: str = "0.00010000") -> str:
    """An all-symbol ``/fapi/v1/premiumIndex`` body: symbol -> mark price."""
    marks = {s: m for s, (m, _) in OI_DEFAULTS.items()} if marks is None else marks
    t = int(time.time() * 1000) if t_ms is None else t_ms
    return orjson.dumps([{**DOC_PREMIUM_ITEM, "symbol": s, "markPrice": m, "indexPrice": m,
                          "estimatedSettlePrice": m, "lastFundingRate": rate, "time": t}
                         for s, m in marks.items()]).decode()


def oi_body(symbol: str, open_interest: str, t_ms: int | None = None) -> str:
    """A ``/fapi/v1/openInterest`` body (base coins)."""
    t = int(time.time() * 1000) if t_ms is None else t_ms
    return orjson.dumps({"openInterest": open_interest, "symbol": symbol, "time": t}).decode()


class BinanceSim(VenueSim):
    ws_paths = ("/market/ws/!forceOrder@arr", "/ws/!forceOrder@arr", MARK_PRICE_PATH)
    oi_paths = (PREMIUM_PATH, OI_PATH)

    def __init__(self) -> None:
        super().__init__()
        now = int(time.time() * 1000)
        self.oi_bodies[PREMIUM_PATH] = premium_body(t_ms=now)
        for symbol, (_, oi) in OI_DEFAULTS.items():
            self.oi_bodies[f"{OI_PATH}?symbol={symbol}"] = oi_body(symbol, oi, now)

    def urls(self) -> dict[str, str]:
        """Venue URL overrides pointing both connections and the REST poll here."""
        return {"ws": self.ws_url(), "prices": self.ws_url(MARK_PRICE_PATH),
                "rest": self.http_base}

    async def on_message(self, ws: Any, path: str, msg: str) -> None:
        req = orjson.loads(msg)
        if req.get("method") == "LIST_SUBSCRIPTIONS" and self.answer_pings:
            stream = path.rsplit("/", 1)[-1]
            await ws.send(orjson.dumps({"result": [stream], "id": req.get("id")}).decode())

    async def push(self, frame: str | bytes, path: str | None = None) -> None:
        # The legacy route accepts connections but never delivers liquidations.
        await super().push(frame, path or self.ws_paths[0])


async def _demo(sim: BinanceSim, i: int, now: int) -> None:  # pragma: no cover - manual demo
    await sim.push(force_order("BTCUSDT", "SELL" if i % 3 else "BUY", "0.5", "60000", now))


if __name__ == "__main__":  # pragma: no cover
    run_demo(BinanceSim, _demo)
