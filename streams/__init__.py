"""Venue collectors: websocket sessions that turn venue frames into liquidation events."""
