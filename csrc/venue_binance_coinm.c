/* binance-coinm (streams/venues/binance_coinm.py): not compiled yet, every frame takes the Python path. */

static int venue_binance_coinm_init(void) { return 0; }

static int venue_binance_coinm(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
