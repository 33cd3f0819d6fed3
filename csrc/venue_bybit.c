/* Bybit v5 (streams/venues/bybit.py): the allLiquidation.{symbol} frames (linear and inverse
 * streams), the ping reply (our pong), subscribe acks and other successful op frames (info).
 * Mirrors bybit.parse: a failed op, a subscribe without success, any field the Python readers
 * would refuse or read otherwise (exponent decimals, non-str side...) falls back. */

static PyObject *by_op, *by_success, *by_topic, *by_data, *by_s, *by_S, *by_v, *by_p, *by_T,
    *by_exchange, *by_quotes[5];
static const char *const BY_QUOTES[5] = {"USDT", "USDC", "BUSD", "FDUSD", "USD"};
#define BY_TOPIC "allLiquidation."
#define BY_TOPIC_LEN 15

static int venue_bybit_init(void) {
    by_op = intern("op");
    by_success = intern("success");
    by_topic = intern("topic");
    by_data = intern("data");
    by_s = intern("s");
    by_S = intern("S");
    by_v = intern("v");
    by_p = intern("p");
    by_T = intern("T");
    by_exchange = intern("bybit");
    for (int i = 0; i < 5; i++) by_quotes[i] = intern(BY_QUOTES[i]);
    return PyErr_Occurred() ? -1 : 0;
}

/* bybit._market_from_source: the path of urlsplit(source), "/"-stripped, ends with /inverse
 * or /linear. Only for a plain ASCII URL without query, fragment, brackets, blanks or control
 * characters (where urlsplit's result is the simple split below); NULL to fall back. */
static PyObject *by_market_from_source(PyObject *source) {
    if (!PyUnicode_IS_ASCII(source)) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(source);
    const char *s = (const char *)PyUnicode_1BYTE_DATA(source);
    for (Py_ssize_t k = 0; k < n; k++) {
        char c = s[k];
        if (c <= 0x20 || c == 0x7f || c == '?' || c == '#' || c == '[' || c == ']') return NULL;
    }
    Py_ssize_t start = 0;
    const char *colon = memchr(s, ':', (size_t)n);
    if (colon != NULL && colon > s &&
        ((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) {
        int ok = 1;
        for (const char *c = s; c < colon; c++) {
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '+' || *c == '-' || *c == '.')) {
                ok = 0;
                break;
            }
        }
        if (ok) start = colon - s + 1;
    }
    if (n - start >= 2 && s[start] == '/' && s[start + 1] == '/') {
        const char *slash = memchr(s + start + 2, '/', (size_t)(n - start - 2));
        start = slash == NULL ? n : slash - s;
    }
    Py_ssize_t end = n;
    while (end > start && s[end - 1] == '/') end--;
    Py_ssize_t len = end - start;
    if (len >= 8 && memcmp(s + end - 8, "/inverse", 8) == 0) return FX.s_inverse;
    if (len >= 7 && memcmp(s + end - 7, "/linear", 7) == 0) return FX.s_linear;
    return NULL;
}

/* The interned market label equal to `market`, or NULL (fall back). */
static PyObject *by_market_label(PyObject *market) {
    if (market == FX.s_linear || market == FX.s_inverse || market == FX.s_spot) return market;
    if (!PyUnicode_CheckExact(market)) return NULL;
    if (fx_eq(market, "linear")) return FX.s_linear;
    if (fx_eq(market, "inverse")) return FX.s_inverse;
    if (fx_eq(market, "spot")) return FX.s_spot;
    return NULL;
}

/* One data entry -> one event appended. FX_OK / FX_FALLBACK / FX_ERROR. */
static int by_entry(FastCall *fc, PyObject *entry, PyObject *topic) {
    if (!PyDict_CheckExact(entry)) return FX_FALLBACK;
    /* symbol = entry.get("s") or topic[len(TOPIC):] */
    PyObject *s = fx_get(entry, by_s);
    PyObject *symbol = NULL; /* new reference */
    if (s != NULL) {
        int truth = PyObject_IsTrue(s);
        if (truth < 0) return FX_ERROR;
        if (truth) {
            if (!PyUnicode_CheckExact(s)) return FX_FALLBACK;
            symbol = Py_NewRef(s);
        }
    } else if (PyErr_Occurred()) {
        return FX_ERROR;
    }
    if (symbol == NULL) {
        Py_ssize_t tn = PyUnicode_GET_LENGTH(topic);
        if (tn <= BY_TOPIC_LEN) return FX_FALLBACK; /* empty: missing_field */
        symbol = PyUnicode_Substring(topic, BY_TOPIC_LEN, tn);
        if (symbol == NULL) return FX_ERROR;
    }
    int rc = FX_FALLBACK;
    PyObject *base = NULL, *quote = NULL, *market = NULL;
    PyObject *side_raw = fx_get(entry, by_S);
    PyObject *side = fx_position_side(side_raw);
    if (side == NULL) goto done;
    PyObject *v = fx_get(entry, by_v), *p = fx_get(entry, by_p), *t = fx_get(entry, by_T);
    double size, price, ts;
    if (v == NULL || p == NULL || t == NULL || !fx_plain_decimal(v, &size) ||
        !fx_plain_decimal(p, &price) || !fx_int_ms(t, &ts))
        goto done;
    if (size < 0 || price <= 0 || ts <= 0) goto done;
    PyObject *inst = PyDict_GetItemWithError(fc->instruments, symbol);
    if (inst != NULL) {
        PyObject *m = PyObject_GetAttr(inst, FX.s_market);
        if (m == NULL) { rc = FX_ERROR; goto done; }
        market = by_market_label(m);
        Py_DECREF(m);
        if (market == NULL) goto done;
        base = PyObject_GetAttr(inst, FX.s_base);
        quote = base ? PyObject_GetAttr(inst, FX.s_quote) : NULL;
        if (quote == NULL) { rc = FX_ERROR; goto done; }
    } else {
        if (PyErr_Occurred()) { rc = FX_ERROR; goto done; }
        market = by_market_from_source(fc->source);
        if (market == NULL) goto done;
        Py_ssize_t n = PyUnicode_GET_LENGTH(symbol);
        for (int i = 0; i < 5; i++) {
            Py_ssize_t q = PyUnicode_GET_LENGTH(by_quotes[i]);
            if (n > q && PyUnicode_Tailmatch(symbol, by_quotes[i], n - q, n, 1) == 1) {
                base = PyUnicode_Substring(symbol, 0, n - q);
                if (base == NULL) { rc = FX_ERROR; goto done; }
                quote = Py_NewRef(by_quotes[i]);
                break;
            }
        }
        if (base == NULL) goto done; /* unknown_symbol */
    }
    /* kit.amounts(size, price, market) with contract_value 1.0 */
    double qty, notional;
    if (market == FX.s_inverse) {
        notional = size * 1.0;
        qty = notional / price;
    } else {
        qty = size * 1.0;
        notional = qty * price;
    }
    FxEvent ev = {by_exchange, symbol, base, quote, market, side, price, 1, qty, 1,
                  notional, ts, 0, v, NULL};
    rc = fx_append_event(fc, &ev);
done:
    Py_XDECREF(base);
    Py_XDECREF(quote);
    Py_DECREF(symbol);
    return rc;
}

static int venue_bybit(FastCall *fc, PyObject *msg) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *op = fx_get(msg, by_op);
    if (op != NULL && op != Py_None) {
        if (fx_eq(op, "ping") || fx_eq(op, "pong")) {
            fc->kind = FX.s_pong;
            return FX_OK;
        }
        PyObject *success = fx_get(msg, by_success);
        if (fx_eq(op, "subscribe")) {
            if (success != Py_True) return FX_FALLBACK; /* subscribe_error */
            fc->kind = FX.s_ack;
            return FX_OK;
        }
        if (success == Py_False) return FX_FALLBACK; /* venue_error */
        fc->kind = FX.s_info;
        return FX_OK;
    }
    PyObject *topic = fx_get(msg, by_topic);
    if (topic == NULL || !PyUnicode_CheckExact(topic) || !PyUnicode_IS_ASCII(topic) ||
        PyUnicode_GET_LENGTH(topic) < BY_TOPIC_LEN ||
        memcmp(PyUnicode_1BYTE_DATA(topic), BY_TOPIC, BY_TOPIC_LEN) != 0)
        return FX_FALLBACK;
    PyObject *data = fx_get(msg, by_data);
    if (data == NULL || !PyList_CheckExact(data)) return FX_FALLBACK;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(data); i++) {
        int rc = by_entry(fc, PyList_GET_ITEM(data, i), topic);
        if (rc != FX_OK) return rc;
    }
    fc->kind = FX.s_data;
    return FX_OK;
}
