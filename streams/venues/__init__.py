"""Registry of venue modules. Adding a venue: one module here exposing ``VENUE``, its name in
``VENUE_MODULES``, one simulator under ``streams/sims/`` and its tests."""

from __future__ import annotations

import importlib

from .base import VenueSpec

#: Venue id -> module name under streams.venues.
VENUE_MODULES: dict[str, str] = {
    "binance": "binance",
    "bybit": "bybit",
    "okx": "okx",
    "binance-coinm": "binance_coinm",
    "deribit": "deribit",
    "bitmex": "bitmex",
    "gate": "gate",
    "bitget": "bitget",
    "htx": "htx",
    "dydx": "dydx",
    "kraken-futures": "kraken_futures",
    "hyperliquid": "hyperliquid",
    "aster": "aster",
    "bitfinex": "bitfinex",
    "lighter": "lighter",
    "paradex": "paradex",
}


class UnknownVenue(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_venue(venue_id: str) -> VenueSpec:
    try:
        module = VENUE_MODULES[venue_id]
    except KeyError:
        raise UnknownVenue(
            f"unknown exchange {venue_id!r}; known: {', '.join(sorted(VENUE_MODULES))}") from None
    spec: VenueSpec = importlib.import_module(f"{__name__}.{module}").VENUE
    return spec


def all_venue_ids() -> list[str]:
    return list(VENUE_MODULES)


def parse_exchange_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UnknownVenue("no exchanges given")
    for n in names:
        get_venue(n)
    return names
