/* dydx (streams/venues/dydx.py): not compiled yet, every frame takes the Python path. */

static int venue_dydx_init(void) { return 0; }

static int venue_dydx(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
