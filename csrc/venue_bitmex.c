/* bitmex (streams/venues/bitmex.py): not compiled yet, every frame takes the Python path. */

static int venue_bitmex_init(void) { return 0; }

static int venue_bitmex(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
