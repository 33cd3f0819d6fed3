"""The Faust worker: liquidation windows, derived topics and metrics."""

if __name__ != "liqstress.agents":
    # The folder installs as liqstress.agents; importing it under a second name would load every
    # module twice, with two copies of its state.
    raise ImportError("import liqstress.agents, not agents")
