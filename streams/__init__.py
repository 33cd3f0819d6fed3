"""Venue collectors: websocket sessions that turn venue frames into liquidation events."""

if __name__ != "liqstress.streams":
    # The folder installs as liqstress.streams; importing it under a second name would load every
    # module twice, with two copies of its state.
    raise ImportError("import liqstress.streams, not streams")
