/* bybit (streams/venues/bybit.py): not compiled yet, every frame takes the Python path. */

static int venue_bybit_init(void) { return 0; }

static int venue_bybit(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
