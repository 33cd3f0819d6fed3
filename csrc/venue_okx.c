/* okx (streams/venues/okx.py): not compiled yet, every frame takes the Python path. */

static int venue_okx_init(void) { return 0; }

static int venue_okx(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
