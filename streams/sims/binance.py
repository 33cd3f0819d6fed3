"""Binance USD-M simulator: serves ``/market/ws/!forceOrder@arr`` (and the silent legacy
``/ws/!forceOrder@arr``) and ``/market/ws/!markPrice@arr@1s``, answers ``LIST_SUBSCRIPTIONS``. Run standalone for a demo:
``python -m liqstress.streams.sims.binance``."""

from __future__ import annotations

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


class BinanceSim(VenueSim):
    ws_paths = ("/market/ws/!forceOrder@arr", "/ws/!forceOrder@arr", MARK_PRICE_PATH)

    def urls(self) -> dict[str, str]:
        """Venue URL overrides pointing both connections here."""
        return {"ws": self.ws_url(), "prices": self.ws_url(MARK_PRICE_PATH)}

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
