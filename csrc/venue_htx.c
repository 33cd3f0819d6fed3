/* htx (streams/venues/htx.py): not compiled yet, every frame takes the Python path. */

static int venue_htx_init(void) { return 0; }

static int venue_htx(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
