"""Label values shared by events, windows, signals and metrics: one definition each."""

from __future__ import annotations

from typing import Literal

Side = Literal["long", "short"]
#: The side of the position liquidated, in the order every table and panel shows them.
SIDES: tuple[Side, Side] = ("long", "short")
#: Window names in the order users read them; sizes in seconds live in liqstress.windows.
WINDOW_NAMES = ("1m", "5m", "15m", "1h", "4h", "12h", "24h")
#: Coins get their own series only when allowlisted: venues list hundreds of perps.
DEFAULT_COIN_ALLOWLIST = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB")
