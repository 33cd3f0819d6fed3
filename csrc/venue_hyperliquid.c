/* hyperliquid (streams/venues/hyperliquid.py): not compiled yet, every frame takes the Python path. */

static int venue_hyperliquid_init(void) { return 0; }

static int venue_hyperliquid(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
