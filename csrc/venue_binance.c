/* Binance USD-M (streams/venues/binance.py): the forceOrder frame of the !forceOrder@arr
 * stream and the LIST_SUBSCRIPTIONS reply (our pong). Mirrors binance.fast_order + parse's
 * fast branch; everything else (mark-price arrays, errors, unfilled orders) falls back. */

static PyObject *bn_e, *bn_o, *bn_s, *bn_S, *bn_T, *bn_z, *bn_ap, *bn_error, *bn_result, *bn_id,
    *bn_exchange, *bn_quotes[5];
static const char *const BN_QUOTES[5] = {"USDT", "USDC", "BUSD", "FDUSD", "USD"};

static int venue_binance_init(void) {
    bn_e = intern("e");
    bn_o = intern("o");
    bn_s = intern("s");
    bn_S = intern("S");
    bn_T = intern("T");
    bn_z = intern("z");
    bn_ap = intern("ap");
    bn_error = intern("error");
    bn_result = intern("result");
    bn_id = intern("id");
    bn_exchange = intern("binance");
    for (int i = 0; i < 5; i++) bn_quotes[i] = intern(BN_QUOTES[i]);
    return PyErr_Occurred() ? -1 : 0;
}

/* Base and quote of a symbol: the instrument's when metadata has it, else split off the first
 * of the quotes kit.split_symbol tries (new references). 1 ok, 0 fall back, -1 error. */
static int bn_base_quote(PyObject *instruments, PyObject *symbol, PyObject **base,
                         PyObject **quote) {
    PyObject *inst = PyDict_GetItemWithError(instruments, symbol);
    if (inst != NULL) {
        *base = PyObject_GetAttr(inst, FX.s_base);
        *quote = PyObject_GetAttr(inst, FX.s_quote);
        if (*base == NULL || *quote == NULL) {
            Py_CLEAR(*base);
            Py_CLEAR(*quote);
            return -1;
        }
        return 1;
    }
    if (PyErr_Occurred()) return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(symbol);
    for (int i = 0; i < 5; i++) {
        Py_ssize_t q = PyUnicode_GET_LENGTH(bn_quotes[i]);
        if (n > q && PyUnicode_Tailmatch(symbol, bn_quotes[i], n - q, n, 1) == 1) {
            *base = PyUnicode_Substring(symbol, 0, n - q);
            if (*base == NULL) return -1;
            *quote = Py_NewRef(bn_quotes[i]);
            return 1;
        }
    }
    return 0;
}

static int venue_binance(FastCall *fc, PyObject *msg) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *e = fx_get(msg, bn_e);
    if (e == NULL || !fx_eq(e, "forceOrder")) {
        /* {"result": [...], "id": n}: the LIST_SUBSCRIPTIONS reply that is our pong */
        if (e == NULL && !PyErr_Occurred() && fx_get(msg, bn_result) != NULL &&
            fx_get(msg, bn_id) != NULL) {
            fc->kind = FX.s_pong;
            return FX_OK;
        }
        return FX_FALLBACK;
    }
    if (fx_get(msg, bn_error) != NULL || fx_get(msg, bn_result) != NULL) return FX_FALLBACK;
    PyObject *o = fx_get(msg, bn_o);
    if (o == NULL || !PyDict_CheckExact(o)) return FX_FALLBACK;
    PyObject *symbol = fx_get(o, bn_s), *side_raw = fx_get(o, bn_S), *t = fx_get(o, bn_T);
    if (!fx_nonempty_str(symbol) || side_raw == NULL || t == NULL) return FX_FALLBACK;
    PyObject *side;
    if (fx_ieq(side_raw, "sell"))
        side = FX.s_long; /* a forced SELL closes a long */
    else if (fx_ieq(side_raw, "buy"))
        side = FX.s_short;
    else
        return FX_FALLBACK;
    double ts, qty, price;
    PyObject *z = fx_get(o, bn_z), *ap = fx_get(o, bn_ap);
    if (!fx_int_ms(t, &ts) || z == NULL || ap == NULL || !fx_plain_decimal(z, &qty) ||
        !fx_plain_decimal(ap, &price) || !(qty > 0 && price > 0))
        return FX_FALLBACK;
    PyObject *base = NULL, *quote = NULL;
    int got = bn_base_quote(fc->instruments, symbol, &base, &quote);
    if (got <= 0) return got < 0 ? FX_ERROR : FX_FALLBACK;
    FxEvent ev = {bn_exchange, symbol, base, quote, FX.s_linear, side, price, 1, qty, 1,
                  qty * price, ts, 1, z, NULL};
    int rc = fx_append_event(fc, &ev);
    Py_DECREF(base);
    Py_DECREF(quote);
    fc->kind = FX.s_data;
    return rc;
}
