/* gate (streams/venues/gate.py): not compiled yet, every frame takes the Python path. */

static int venue_gate_init(void) { return 0; }

static int venue_gate(FastCall *fc, PyObject *msg) { return FX_FALLBACK; }
