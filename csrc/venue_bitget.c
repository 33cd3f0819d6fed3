/* Bitget UTA v3 (streams/venues/bitget.py): the liquidation topic's update and snapshot frames
 * and the {"event": ...} control frames of kit.okx_envelope (ok_envelope, in venue_okx.c,
 * included before this file). The text "pong" is not JSON: the driver leaves it to Python, as
 * every frame this does not recognise completely (error events, other topics, unknown
 * instTypes, unrecognisable symbols, exponent decimals, non-ASCII symbols...). */

#ifndef LIQSTRESS_OKX_ENVELOPE
#error "venue_bitget.c uses ok_envelope from venue_okx.c: include venue_okx.c first"
#endif

static PyObject *bg_topic, *bg_instType, *bg_symbol, *bg_side, *bg_amount, *bg_price, *bg_ts,
    *bg_action, *bg_exchange, *bg_USDT, *bg_USDC, *bg_USD, *bg_PERP;

static int venue_bitget_init(void) {
    bg_topic = intern("topic");
    bg_instType = intern("instType");
    bg_symbol = intern("symbol");
    bg_side = intern("side");
    bg_amount = intern("amount");
    bg_price = intern("price");
    bg_ts = intern("ts");
    bg_action = intern("action");
    bg_exchange = intern("bitget");
    bg_USDT = intern("USDT");
    bg_USDC = intern("USDC");
    bg_USD = intern("USD");
    bg_PERP = intern("PERP");
    return PyErr_Occurred() ? -1 : 0;
}

/* bitget._DELIVERY.fullmatch for an ASCII tail: "" or [FGHJKMNQUVXZ]? then 2..6 digits. */
static int bg_delivery(const char *s, Py_ssize_t n) {
    if (n == 0) return 1;
    Py_ssize_t i = 0;
    if (strchr("FGHJKMNQUVXZ", s[0]) != NULL && s[0] != '\0') i = 1;
    Py_ssize_t digits = n - i;
    if (digits < 2 || digits > 6) return 0;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return 1;
}

/* bitget._pair for an ASCII symbol: base (new reference) for the first marker found (rfind)
 * after a non-empty base and followed only by a delivery code. 1 ok, 0 fall back, -1 error. */
static int bg_pair(PyObject *symbol, const char *const *markers, int nmarkers, PyObject **base) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(symbol);
    const char *s = (const char *)PyUnicode_1BYTE_DATA(symbol);
    for (int m = 0; m < nmarkers; m++) {
        Py_ssize_t ml = (Py_ssize_t)strlen(markers[m]);
        Py_ssize_t i = -1;
        for (Py_ssize_t k = n - ml; k >= 0; k--) {
            if (memcmp(s + k, markers[m], (size_t)ml) == 0) {
                i = k;
                break;
            }
        }
        if (i > 0 && bg_delivery(s + i + ml, n - i - ml)) {
            *base = PyUnicode_Substring(symbol, 0, i);
            return *base == NULL ? -1 : 1;
        }
    }
    return 0;
}

static const char *const BG_USDT_MARKERS[1] = {"USDT"};
static const char *const BG_USDC_MARKERS[2] = {"USDC", "PERP"};
static const char *const BG_COIN_MARKERS[1] = {"USD"};

static int venue_bitget(FastCall *fc, PyObject *msg) {
    PyObject *arg = NULL, *data = NULL;
    int env = ok_envelope(fc, msg, bg_topic, "liquidation", &arg, &data);
    if (env != -1) return env;
    /* str(arg.get("instType", "")).lower() in _INST */
    PyObject *it = fx_get(arg, bg_instType);
    if (it == NULL) return FX_FALLBACK;
    PyObject *market, *quote;
    const char *const *markers;
    int nmarkers;
    if (fx_ieq(it, "usdt-futures")) {
        market = FX.s_linear, quote = bg_USDT, markers = BG_USDT_MARKERS, nmarkers = 1;
    } else if (fx_ieq(it, "usdc-futures")) {
        market = FX.s_linear, quote = bg_USDC, markers = BG_USDC_MARKERS, nmarkers = 2;
    } else if (fx_ieq(it, "coin-futures")) {
        market = FX.s_inverse, quote = bg_USD, markers = BG_COIN_MARKERS, nmarkers = 1;
    } else {
        return FX_FALLBACK; /* unsupported_instrument */
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(data); i++) {
        PyObject *entry = PyList_GET_ITEM(data, i);
        if (!PyDict_CheckExact(entry)) return FX_FALLBACK;
        PyObject *symbol = fx_get(entry, bg_symbol);
        if (!fx_nonempty_str(symbol) || !PyUnicode_IS_ASCII(symbol)) return FX_FALLBACK;
        PyObject *side = fx_position_side(fx_get(entry, bg_side));
        if (side == NULL) return FX_FALLBACK;
        PyObject *a = fx_get(entry, bg_amount), *p = fx_get(entry, bg_price);
        double amount, price, ts;
        if (a == NULL || p == NULL || !fx_plain_decimal(a, &amount) ||
            !fx_plain_decimal(p, &price))
            return FX_FALLBACK;
        /* the entry's ts (a string of ms) unless it is missing or null, else the frame's */
        PyObject *t = fx_get(entry, bg_ts);
        if (t != NULL && t != Py_None) {
            if (!fx_str_ms(t, &ts)) return FX_FALLBACK;
        } else {
            t = fx_get((PyObject *)msg, bg_ts);
            if (t == NULL || !fx_int_ms(t, &ts)) return FX_FALLBACK;
        }
        if (amount < 0 || price <= 0 || ts <= 0) return FX_FALLBACK;
        PyObject *base = NULL;
        int got = bg_pair(symbol, markers, nmarkers, &base);
        if (got <= 0) return got < 0 ? FX_ERROR : FX_FALLBACK;
        FxEvent ev = {bg_exchange, symbol, base, quote, market, side, price, 1, amount / price,
                      1, amount, ts, 1, a, NULL};
        int rc = fx_append_event(fc, &ev);
        Py_DECREF(base);
        if (rc != FX_OK) return rc;
    }
    fc->kind = FX.s_data;
    fc->snapshot = fx_eq(fx_get(msg, bg_action), "snapshot");
    return FX_OK;
}
