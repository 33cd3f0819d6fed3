/* Binance COIN-M (streams/venues/binance_coinm.py): the forceOrder frame of the dstream
 * !forceOrder@arr stream, the USD-M orders that stream also carries (kind info) and the
 * LIST_SUBSCRIPTIONS reply (our pong). Mirrors binance.fast_order + is_coinm + _data:
 * z contracts x contractSize USD (metadata) = notional, qty = notional / ap; a COIN-M symbol
 * without metadata is unpriced. Everything else (errors, unfilled orders, q/p fallbacks,
 * non-ASCII symbols) falls back. */

/* The envelope is venue_binance.c's bn_force_order (that file is included before this one). */
static PyObject *bc_exchange, *bc_USD;

static int venue_binance_coinm_init(void) {
    bc_exchange = intern("binance-coinm");
    bc_USD = intern("USD");
    return PyErr_Occurred() ? -1 : 0;
}

/* COINM_SYMBOL = ^([A-Z0-9]+)USD_(?:PERP|\d{6})$ on an ASCII symbol: the length of the group
 * (> 0) on a match, 0 when it does not match, -1 when the symbol is not ASCII or ends in "\n"
 * (Python's $ and \d accept more there: fall back). */
static Py_ssize_t bc_coinm_prefix(PyObject *symbol) {
    if (!PyUnicode_IS_ASCII(symbol)) return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(symbol);
    const char *s = (const char *)PyUnicode_1BYTE_DATA(symbol);
    if (n > 0 && s[n - 1] == '\n') return -1;
    Py_ssize_t tail;
    if (n >= 9 && memcmp(s + n - 8, "USD_PERP", 8) == 0) {
        tail = 8;
    } else if (n >= 11 && memcmp(s + n - 10, "USD_", 4) == 0) {
        for (Py_ssize_t i = n - 6; i < n; i++)
            if (s[i] < '0' || s[i] > '9') return 0;
        tail = 10;
    } else {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n - tail; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return 0;
    }
    return n - tail;
}

static int venue_binance_coinm(FastCall *fc, PyObject *msg) {
    BnOrder fo;
    int rc0 = bn_force_order(fc, msg, &fo);
    if (rc0 != FX_OK || fo.symbol == NULL) return rc0;
    PyObject *symbol = fo.symbol, *side = fo.side, *z = fo.z;
    double ts = fo.ts, contracts = fo.amount, price = fo.price;
    PyObject *inst = PyDict_GetItemWithError(fc->instruments, symbol);
    if (inst == NULL && PyErr_Occurred()) return FX_ERROR;
    if (inst == Py_None) return FX_FALLBACK;
    Py_ssize_t prefix = 0;
    if (inst == NULL) {
        prefix = bc_coinm_prefix(symbol);
        if (prefix < 0) return FX_FALLBACK;
        if (prefix == 0) { /* a USD-M order the dstream feed also carries: ignored */
            fc->kind = FX.s_info;
            return FX_OK;
        }
    }
    PyObject *base;
    FxEvent ev = {bc_exchange, symbol, NULL, bc_USD, FX.s_inverse, side, price, 0, 0.0, 0,
                  0.0, ts, 1, z, NULL};
    if (inst != NULL) {
        PyObject *cv = PyObject_GetAttr(inst, FX.s_contract_value);
        if (cv == NULL) return FX_ERROR;
        if (!PyFloat_CheckExact(cv)) {
            Py_DECREF(cv);
            return FX_FALLBACK;
        }
        double notional = contracts * PyFloat_AS_DOUBLE(cv); /* USD, no price involved */
        Py_DECREF(cv);
        ev.has_qty = ev.has_notional = 1;
        ev.notional = notional;
        ev.qty = notional / price;
        base = PyObject_GetAttr(inst, FX.s_base);
    } else {
        base = PyUnicode_Substring(symbol, 0, prefix); /* contract size unknown: unpriced */
    }
    if (base == NULL) return FX_ERROR;
    ev.base = base;
    int rc = fx_append_event(fc, &ev);
    Py_DECREF(base);
    fc->kind = FX.s_data;
    return rc;
}
