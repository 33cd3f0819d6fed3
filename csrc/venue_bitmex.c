/* BitMEX (streams/venues/bitmex.py): the liquidation table's actions (insert counted, partial
 * parsed as a snapshot, update/delete info), the subscribe confirmation (ack) and the welcome
 * banner (info). Mirrors parse + _events + _unknown_pair: leavesQty contracts valued with the
 * instrument's contract_value (inverse: USD per contract, linear: base per contract), event
 * time = receipt time, orderID the venue id. The text "pong" is not JSON and never reaches
 * here (the driver falls back before); errors, other tables and odd values fall back. */

static PyObject *bm_table, *bm_action, *bm_data, *bm_error, *bm_success, *bm_subscribe,
    *bm_info, *bm_orderID, *bm_symbol, *bm_side, *bm_price, *bm_leavesQty, *bm_exchange,
    *bm_BTC, *bm_empty;
static const char *const BM_QUOTES[5] = {"USDT", "USDC", "USD", "EUR", "XBT"};
static PyObject *bm_quotes[5];

static int venue_bitmex_init(void) {
    bm_table = intern("table");
    bm_action = intern("action");
    bm_data = intern("data");
    bm_error = intern("error");
    bm_success = intern("success");
    bm_subscribe = intern("subscribe");
    bm_info = intern("info");
    bm_orderID = intern("orderID");
    bm_symbol = intern("symbol");
    bm_side = intern("side");
    bm_price = intern("price");
    bm_leavesQty = intern("leavesQty");
    bm_exchange = intern("bitmex");
    bm_BTC = intern("BTC");
    bm_empty = intern("");
    for (int i = 0; i < 5; i++) bm_quotes[i] = intern(BM_QUOTES[i]);
    return PyErr_Occurred() ? -1 : 0;
}

/* The interned market label equal to an instrument's market, or NULL (fall back). */
static PyObject *bm_market(PyObject *market) {
    if (!PyUnicode_CheckExact(market)) return NULL;
    if (market == FX.s_inverse || fx_eq(market, "inverse")) return FX.s_inverse;
    if (market == FX.s_linear || fx_eq(market, "linear")) return FX.s_linear;
    if (market == FX.s_spot || fx_eq(market, "spot")) return FX.s_spot;
    return NULL;
}

/* _unknown_pair for an ASCII symbol of [A-Z0-9] only: base and quote (new references) and the
 * market label (borrowed). 1 ok, 0 fall back (Python raises or the symbol is outside the plain
 * form), -1 error. */
static int bm_unknown_pair(PyObject *symbol, PyObject **base, PyObject **quote,
                           PyObject **market) {
    if (!PyUnicode_IS_ASCII(symbol)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(symbol);
    const char *s = (const char *)PyUnicode_1BYTE_DATA(symbol);
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return 0;
    }
    /* _FUTURE_CODE: root (1+ chars) + month letter + two digits */
    int future = n >= 4 && strchr("FGHJKMNQUVXZ", s[n - 3]) != NULL &&
                 s[n - 2] >= '0' && s[n - 2] <= '9' && s[n - 1] >= '0' && s[n - 1] <= '9';
    Py_ssize_t root = future ? n - 3 : n;
    Py_ssize_t blen = -1;
    int qi = -1;
    for (int i = 0; i < 5; i++) {
        Py_ssize_t q = (Py_ssize_t)strlen(BM_QUOTES[i]);
        if (root > q && memcmp(s + root - q, BM_QUOTES[i], (size_t)q) == 0) {
            blen = root - q;
            qi = i;
            break;
        }
    }
    if (qi < 0) {
        if (!future) return 0; /* unknown_symbol */
        blen = root;           /* a futures code without its quote currency in the name */
    }
    PyObject *b;
    if (blen == 3 && memcmp(s, "XBT", 3) == 0)
        b = Py_NewRef(bm_BTC);
    else
        b = PyUnicode_Substring(symbol, 0, blen);
    if (b == NULL) return -1;
    *base = b;
    *quote = Py_NewRef(qi < 0 ? bm_empty : bm_quotes[qi]);
    int btc = b == bm_BTC || (blen == 3 && memcmp(s, "BTC", 3) == 0);
    *market = btc && !(qi == 0 || qi == 1) ? FX.s_inverse : FX.s_linear;
    return 1;
}

/* _events: one event per data entry, appended to fc->events. FX_OK / FX_FALLBACK / FX_ERROR. */
static int bm_events(FastCall *fc, PyObject *data) {
    Py_ssize_t n = PyList_GET_SIZE(data);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *entry = PyList_GET_ITEM(data, i);
        if (!PyDict_CheckExact(entry)) return FX_FALLBACK;
        PyObject *order_id = fx_get(entry, bm_orderID), *symbol = fx_get(entry, bm_symbol);
        PyObject *side_raw = fx_get(entry, bm_side), *p = fx_get(entry, bm_price);
        PyObject *lq = fx_get(entry, bm_leavesQty);
        if (!fx_nonempty_str(order_id) || !fx_nonempty_str(symbol) || side_raw == NULL ||
            p == NULL || lq == NULL)
            return FX_FALLBACK;
        PyObject *side = fx_order_side(side_raw); /* a Sell liquidation order closes a long */
        if (side == NULL) return FX_FALLBACK;
        double price, contracts;
        if (!fx_num(p, &price) || !fx_num(lq, &contracts) || price <= 0 || contracts < 0)
            return FX_FALLBACK;
        FxEvent ev = {bm_exchange, symbol, NULL, NULL, NULL, side, price, 0, 0.0, 0, 0.0,
                      fc->recv_ts, 0, lq, order_id};
        PyObject *base = NULL, *quote = NULL;
        PyObject *inst = PyDict_GetItemWithError(fc->instruments, symbol);
        if (inst == NULL && PyErr_Occurred()) return FX_ERROR;
        if (inst == Py_None) return FX_FALLBACK;
        if (inst != NULL) {
            PyObject *market = PyObject_GetAttr(inst, FX.s_market);
            if (market == NULL) return FX_ERROR;
            ev.market = bm_market(market);
            Py_DECREF(market);
            if (ev.market == NULL) return FX_FALLBACK;
            PyObject *cv = PyObject_GetAttr(inst, FX.s_contract_value);
            if (cv == NULL) return FX_ERROR;
            if (!PyFloat_CheckExact(cv)) {
                Py_DECREF(cv);
                return FX_FALLBACK;
            }
            double value = PyFloat_AS_DOUBLE(cv);
            Py_DECREF(cv);
            if (value > 0) { /* 0: units not pinned (quanto...), stays unpriced */
                ev.has_qty = ev.has_notional = 1;
                if (ev.market == FX.s_inverse) {
                    ev.notional = contracts * value;
                    ev.qty = ev.notional / price;
                } else {
                    ev.qty = contracts * value;
                    ev.notional = ev.qty * price;
                }
            }
            base = PyObject_GetAttr(inst, FX.s_base);
            quote = base ? PyObject_GetAttr(inst, FX.s_quote) : NULL;
            if (quote == NULL) {
                Py_XDECREF(base);
                return FX_ERROR;
            }
        } else {
            int got = bm_unknown_pair(symbol, &base, &quote, &ev.market);
            if (got <= 0) return got < 0 ? FX_ERROR : FX_FALLBACK;
        }
        ev.base = base;
        ev.quote = quote;
        int rc = fx_append_event(fc, &ev);
        Py_DECREF(base);
        Py_DECREF(quote);
        if (rc != FX_OK) return rc;
    }
    return FX_OK;
}

static int venue_bitmex(FastCall *fc, PyObject *msg) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *table = fx_get(msg, bm_table);
    if (table != NULL) {
        if (!fx_eq(table, "liquidation")) return FX_FALLBACK;
        PyObject *action = fx_get(msg, bm_action), *data = fx_get(msg, bm_data);
        if (action == NULL || data == NULL || !PyList_CheckExact(data) ||
            !PyUnicode_CheckExact(action))
            return FX_FALLBACK;
        if (fx_eq(action, "update") || fx_eq(action, "delete")) {
            fc->kind = FX.s_info; /* fills/cancels of an order already counted at insert */
            return FX_OK;
        }
        int snapshot = fx_eq(action, "partial");
        if (!snapshot && !fx_eq(action, "insert")) return FX_FALLBACK;
        int rc = bm_events(fc, data);
        if (rc != FX_OK) return rc;
        fc->kind = FX.s_data;
        fc->snapshot = snapshot;
        return FX_OK;
    }
    if (PyErr_Occurred()) return FX_ERROR;
    if (fx_get(msg, bm_error) != NULL) return FX_FALLBACK;
    PyObject *success = fx_get(msg, bm_success);
    if (success != NULL) {
        if (success != Py_True) return FX_FALLBACK;
        PyObject *sub = fx_get(msg, bm_subscribe);
        fc->kind = sub != NULL && sub != Py_None ? FX.s_ack : FX.s_info;
        return FX_OK;
    }
    if (fx_get(msg, bm_info) != NULL) {
        fc->kind = FX.s_info; /* the welcome banner */
        return FX_OK;
    }
    return FX_FALLBACK;
}
