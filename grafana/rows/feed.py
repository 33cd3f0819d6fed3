"""Single liquidations from the worker's JSON API (docs/api.md) through the Infinity datasource:
the largest of a window and the live feed. Prometheus keeps numbers over time, not events."""

from __future__ import annotations

from panels import ApiQ, Col, Override, Row, Settings, api_table, by_name, drill

EXCHANGE_UID, COIN_UID = "liqstress-exchange", "liqstress-coin"

EVENT_COLUMNS = (Col("time", "Time", "timestamp"), Col("exchange", "Exchange"),
                 Col("symbol", "Symbol"), Col("coin", "Coin"), Col("side", "Side"),
                 Col("price", "Price", "number"), Col("usd", "USD", "number"))


def event_overrides() -> list[Override]:
    side_map = {"type": "value", "options": {
        "long": {"text": "long", "color": "red", "index": 0},
        "short": {"text": "short", "color": "green", "index": 1}}}
    return [
        by_name("Exchange", links=[drill(EXCHANGE_UID, "Exchange dashboard: ${__value.raw}",
                                         exchange="${__value.raw}")]),
        by_name("Coin", links=[drill(COIN_UID, "Coin dashboard: ${__value.raw}",
                                     coin="${__value.raw}")]),
        by_name("Side", mappings=[side_map], custom__cellOptions={"type": "color-text"}),
        by_name("Price", unit="none"),
        by_name("USD", unit="currencyUSD", decimals=0,
                custom__cellOptions={"type": "gauge", "mode": "basic"}),
        by_name("Time", unit="dateTimeAsIsoNoDateIfToday"),
    ]


def latest(title: str, description: str, url: str, *, w: int, h: int) -> object:
    return api_table(title, description, ApiQ(url, "liquidations", EVENT_COLUMNS),
                     overrides=event_overrides(), w=w, h=h)


def row(cfg: Settings) -> Row:
    return Row(
        "Largest and latest liquidations (worker API)",
        api_table("Largest liquidations ($largest)",
                  "The 50 largest single liquidations of the last $largest across every "
                  "exchange, largest first, from the worker's JSON API (GET /api/v1/largest: "
                  "exact, not sampled from a time series). Click an exchange or a coin for its "
                  "dashboard.",
                  ApiQ("/api/v1/largest?window=${largest}&limit=50", "liquidations",
                       (Col("rank", "#", "number"), *EVENT_COLUMNS)),
                  overrides=[*event_overrides(), by_name("#", custom__width=40)], w=12, h=12),
        latest("Live feed: latest liquidations",
               "The newest 100 liquidations across every exchange, newest first (GET "
               "/api/v1/liquidations), refreshed with the dashboard. Any worker answers for "
               "every partition.",
               "/api/v1/liquidations?limit=100", w=12, h=12),
    )
