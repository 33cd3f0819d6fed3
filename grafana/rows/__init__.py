"""One module per dashboard row; each exposes ``row(cfg) -> panels.Row``."""
