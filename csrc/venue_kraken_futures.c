/* kraken-futures (streams/venues/kraken_futures.py): not compiled yet, every frame takes the Python path. */

static int venue_kraken_futures_init(void) { return 0; }

static int venue_kraken_futures(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
