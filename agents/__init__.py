"""The Faust worker: liquidation windows, derived topics and metrics."""
