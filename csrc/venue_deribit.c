/* deribit (streams/venues/deribit.py): not compiled yet, every frame takes the Python path. */

static int venue_deribit_init(void) { return 0; }

static int venue_deribit(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
