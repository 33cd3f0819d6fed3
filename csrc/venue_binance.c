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

/* One forceOrder as binance.fast_order reads it (borrowed references). */
typedef struct {
    PyObject *symbol, *side, *z;
    double ts, amount, price;
} BnOrder;

/* The forceOrder envelope both Binance futures families share (binance.fast_order's checks on
 * the decoded frame): FX_OK with *fo filled; FX_OK with fc->kind = pong and fo->symbol NULL for
 * the {"result": [...], "id": n} LIST_SUBSCRIPTIONS reply that is our pong; FX_FALLBACK for
 * anything else (errors, unfilled orders, other events). */
static int bn_force_order(FastCall *fc, PyObject *msg, BnOrder *fo) {
    fo->symbol = NULL;
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *e = fx_get(msg, bn_e);
    if (e == NULL || !fx_eq(e, "forceOrder")) {
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
    PyObject *symbol = fx_get(o, bn_s), *t = fx_get(o, bn_T);
    PyObject *side = fx_order_side(fx_get(o, bn_S)); /* a forced SELL closes a long */
    PyObject *z = fx_get(o, bn_z), *ap = fx_get(o, bn_ap);
    if (!fx_nonempty_str(symbol) || side == NULL || t == NULL || z == NULL || ap == NULL ||
        !fx_int_ms(t, &fo->ts) || !fx_plain_decimal(z, &fo->amount) ||
        !fx_plain_decimal(ap, &fo->price) || !(fo->amount > 0 && fo->price > 0))
        return FX_FALLBACK;
    fo->symbol = symbol;
    fo->side = side;
    fo->z = z;
    return FX_OK;
}

static int venue_binance(FastCall *fc, PyObject *msg) {
    BnOrder fo;
    int rc0 = bn_force_order(fc, msg, &fo);
    if (rc0 != FX_OK || fo.symbol == NULL) return rc0;
    PyObject *symbol = fo.symbol, *side = fo.side, *z = fo.z;
    double ts = fo.ts, qty = fo.amount, price = fo.price;
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

/* The forceOrder frame straight from its text (scan.h): the same checks and values as
 * venue_binance on the decoded frame, without building the dict. Anything else (the pong,
 * error replies, escapes, unusual shapes) is FX_FALLBACK: orjson and venue_binance decide. */
static int venue_binance_text(FastCall *fc, const char *text, Py_ssize_t len) {
    static const ScanKey TOP[] = {{"e", 0}, {"o", 1}, {"error", 0}, {"result", 0}};
    static const ScanKey ORDER[] = {{"s", 0}, {"S", 0}, {"T", 0}, {"z", 0}, {"ap", 0}};
    Tok top[4] = {{0}}, ord[5] = {{0}};
    Scan sc = {text, text + len};
    if (!scan_char(&sc, '{')) return FX_FALLBACK;
    int seen_o = 0;
    if (!scan_char(&sc, '}')) {
        for (;;) {
            Tok key;
            if (!scan_string(&sc, &key) || !scan_char(&sc, ':')) return FX_FALLBACK;
            int k = scan_key_index(&key, TOP, 4);
            if (k == 1) { /* "o": read its members */
                if (seen_o++ || !scan_char(&sc, '{')) return FX_FALLBACK;
                if (!scan_char(&sc, '}')) {
                    for (;;) {
                        Tok okey, val;
                        if (!scan_string(&sc, &okey) || !scan_char(&sc, ':') ||
                            !scan_value(&sc, &val, 2))
                            return FX_FALLBACK;
                        int j = scan_key_index(&okey, ORDER, 5);
                        if (j >= 0) {
                            if (ord[j].kind) return FX_FALLBACK; /* duplicate key */
                            ord[j] = val;
                        }
                        if (scan_char(&sc, ',')) continue;
                        if (scan_char(&sc, '}')) break;
                        return FX_FALLBACK;
                    }
                }
            } else {
                Tok val;
                if (!scan_value(&sc, &val, 1)) return FX_FALLBACK;
                if (k >= 0) {
                    if (top[k].kind || k >= 2) return FX_FALLBACK; /* duplicate, error, result */
                    top[k] = val;
                }
            }
            if (scan_char(&sc, ',')) continue;
            if (scan_char(&sc, '}')) break;
            return FX_FALLBACK;
        }
    }
    if (!scan_tail(&sc) || !seen_o) return FX_FALLBACK;
    const Tok *e = &top[0], *s = &ord[0], *side_tok = &ord[1], *t = &ord[2], *z = &ord[3],
              *ap = &ord[4];
    if (e->kind != 's' || e->n != 10 || memcmp(e->s, "forceOrder", 10) != 0) return FX_FALLBACK;
    if (s->kind != 's' || s->n == 0 || side_tok->kind != 's' || t->kind != 'i' ||
        z->kind != 's' || ap->kind != 's')
        return FX_FALLBACK;
    PyObject *side;
    char lower[4];
    if (side_tok->n == 4 || side_tok->n == 3) {
        for (Py_ssize_t i = 0; i < side_tok->n; i++) {
            char c = side_tok->s[i];
            lower[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
    }
    if (side_tok->n == 4 && memcmp(lower, "sell", 4) == 0)
        side = FX.s_long; /* a forced SELL closes a long */
    else if (side_tok->n == 3 && memcmp(lower, "buy", 3) == 0)
        side = FX.s_short;
    else
        return FX_FALLBACK;
    if (t->s[0] == '-' || t->n > 18) return FX_FALLBACK; /* 0 <= T < 2**63 */
    long long t_ms = 0;
    for (Py_ssize_t i = 0; i < t->n; i++) t_ms = t_ms * 10 + (t->s[i] - '0');
    double qty, price;
    if (!fx_decimal_chars(z->s, z->n, &qty) || !fx_decimal_chars(ap->s, ap->n, &price) ||
        !(qty > 0 && price > 0))
        return FX_FALLBACK;
    PyObject *symbol = PyUnicode_FromStringAndSize(s->s, s->n);
    PyObject *qty_raw = symbol ? PyUnicode_FromStringAndSize(z->s, z->n) : NULL;
    if (qty_raw == NULL) {
        Py_XDECREF(symbol);
        return FX_ERROR;
    }
    PyObject *base = NULL, *quote = NULL;
    int got = bn_base_quote(fc->instruments, symbol, &base, &quote);
    int rc = got < 0 ? FX_ERROR : FX_FALLBACK;
    if (got > 0) {
        FxEvent ev = {bn_exchange, symbol, base, quote, FX.s_linear, side, price, 1, qty, 1,
                      qty * price, (double)t_ms / 1000.0, 1, qty_raw, NULL};
        rc = fx_append_event(fc, &ev);
        Py_DECREF(base);
        Py_DECREF(quote);
        fc->kind = FX.s_data;
    }
    Py_DECREF(symbol);
    Py_DECREF(qty_raw);
    return rc;
}
