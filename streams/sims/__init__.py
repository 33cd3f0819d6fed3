"""Local simulators that speak each venue's websocket/REST protocol (pings, acks, REST
snapshots), on loopback: the collector tests and ``liqstress demo`` point collectors at them
through the venue URL overrides. Collectors layer: they import core and infra only."""
