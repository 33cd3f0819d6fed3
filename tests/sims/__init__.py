"""Local simulators that speak each venue's websocket/REST protocol for collector tests."""
