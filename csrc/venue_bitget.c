/* bitget (streams/venues/bitget.py): not compiled yet, every frame takes the Python path. */

static int venue_bitget_init(void) { return 0; }

static int venue_bitget(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
