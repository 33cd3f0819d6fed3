/* Kraken Futures (streams/venues/kraken_futures.py): the `trade` feed (type liquidation ->
 * one event; fill, block, termination -> info), `trade_snapshot` (history: kind data/info with
 * snapshot, the driver counts and drops its liquidations), heartbeats and the heartbeat
 * subscribe answer (pong), trade subscribe acks, other `event` frames (info). Failed
 * subscribes, errors, alerts, non-ASCII products without metadata and other shapes fall back. */

static PyObject *kf_event, *kf_feed, *kf_type, *kf_trades, *kf_product_id, *kf_uid, *kf_side,
    *kf_qty, *kf_price, *kf_time, *kf_exchange, *kf_btc, *kf_quotes[8];
static const char *const KF_QUOTES[8] = {"USDT", "USDC", "USD", "EUR", "GBP", "CHF", "AUD", "JPY"};

static int venue_kraken_futures_init(void) {
    kf_event = intern("event");
    kf_feed = intern("feed");
    kf_type = intern("type");
    kf_trades = intern("trades");
    kf_product_id = intern("product_id");
    kf_uid = intern("uid");
    kf_side = intern("side");
    kf_qty = intern("qty");
    kf_price = intern("price");
    kf_time = intern("time");
    kf_exchange = intern("kraken-futures");
    kf_btc = intern("BTC");
    for (int i = 0; i < 8; i++) kf_quotes[i] = intern(KF_QUOTES[i]);
    return PyErr_Occurred() ? -1 : 0;
}

/* kraken_futures.product_pair for a printable-ASCII product id: base, quote (new references)
 * and market. 1 ok, 0 fall back (no pair, or a form left to Python), -1 error. */
static int kf_product_pair(PyObject *product, PyObject **base, PyObject **quote,
                           PyObject **market) {
    if (!PyUnicode_IS_ASCII(product)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(product);
    const char *s0 = (const char *)PyUnicode_1BYTE_DATA(product);
    if (n > 128) return 0;
    char s[129];
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s0[i];
        if (c < 0x20 || c > 0x7e) return 0; /* `$` of _MATURITY matches before a newline */
        s[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    /* split("_") into 2 or 3 parts */
    Py_ssize_t u1 = -1, u2 = -1, count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] == '_') {
            count++;
            if (u1 < 0) u1 = i;
            else if (u2 < 0) u2 = i;
        }
    }
    if (count < 1 || count > 2 || u1 != 2) return 0;
    if (s[1] == 'F') {
        if (s[0] != 'P' && s[0] != 'F') return 0;
        *market = FX.s_linear;
    } else if (s[1] == 'I') {
        if (s[0] != 'P' && s[0] != 'F') return 0;
        *market = FX.s_inverse;
    } else {
        return 0;
    }
    Py_ssize_t core_start = u1 + 1, core_end = n;
    if (count == 2) {
        core_end = u2;
        if (n - u2 - 1 != 6) return 0;
        for (Py_ssize_t i = u2 + 1; i < n; i++)
            if (s[i] < '0' || s[i] > '9') return 0;
    }
    const char *core = s + core_start;
    Py_ssize_t cn = core_end - core_start;
    for (int q = 0; q < 8; q++) {
        Py_ssize_t qn = (Py_ssize_t)strlen(KF_QUOTES[q]);
        if (cn > qn && memcmp(core + cn - qn, KF_QUOTES[q], (size_t)qn) == 0) {
            Py_ssize_t bn = cn - qn;
            if (bn == 3 && memcmp(core, "XBT", 3) == 0)
                *base = Py_NewRef(kf_btc);
            else
                *base = PyUnicode_FromStringAndSize(core, bn);
            if (*base == NULL) return -1;
            *quote = Py_NewRef(kf_quotes[q]);
            return 1;
        }
    }
    return 0;
}

/* kraken_futures._event for a trade of type liquidation. */
static int kf_liquidation(FastCall *fc, PyObject *trade) {
    PyObject *product = fx_get(trade, kf_product_id), *uid = fx_get(trade, kf_uid);
    if (!fx_nonempty_str(product) || !fx_nonempty_str(uid)) return FX_FALLBACK;
    PyObject *side = fx_order_side(fx_get(trade, kf_side));
    if (side == NULL) return FX_FALLBACK;
    PyObject *qty_obj = fx_get(trade, kf_qty), *price_obj = fx_get(trade, kf_price),
             *time_obj = fx_get(trade, kf_time);
    double size, price, ts;
    if (qty_obj == NULL || price_obj == NULL || time_obj == NULL || !fx_num(qty_obj, &size) ||
        !fx_num(price_obj, &price) || !fx_int_ms(time_obj, &ts) ||
        !(size > 0 && price > 0 && ts > 0))
        return FX_FALLBACK;
    PyObject *base = NULL, *quote = NULL, *market = NULL;
    int has_qty = 0, has_notional = 0;
    double qty = 0.0, notional = 0.0;
    PyObject *inst = PyDict_GetItemWithError(fc->instruments, product);
    if (inst != NULL) {
        PyObject *mk = PyObject_GetAttr(inst, FX.s_market);
        PyObject *cv_obj = mk ? PyObject_GetAttr(inst, FX.s_contract_value) : NULL;
        base = cv_obj ? PyObject_GetAttr(inst, FX.s_base) : NULL;
        quote = base ? PyObject_GetAttr(inst, FX.s_quote) : NULL;
        if (quote == NULL) {
            Py_XDECREF(mk); Py_XDECREF(cv_obj); Py_XDECREF(base);
            return FX_ERROR;
        }
        int rc = FX_OK;
        if (fx_eq(mk, "linear"))
            market = FX.s_linear;
        else if (fx_eq(mk, "inverse"))
            market = FX.s_inverse;
        else
            rc = FX_FALLBACK;
        if (!PyFloat_CheckExact(cv_obj) || !PyUnicode_CheckExact(base) ||
            !PyUnicode_CheckExact(quote))
            rc = FX_FALLBACK;
        Py_DECREF(mk);
        if (rc == FX_OK) {
            double cv = PyFloat_AS_DOUBLE(cv_obj);
            if (market == FX.s_inverse) {
                notional = size * cv;
                qty = notional / price;
            } else {
                qty = size * cv;
                notional = qty * price;
            }
            has_qty = 1;
            has_notional = fx_eq(quote, "USD") || fx_eq(quote, "USDT") || fx_eq(quote, "USDC");
        }
        Py_DECREF(cv_obj);
        if (rc != FX_OK) {
            Py_DECREF(base);
            Py_DECREF(quote);
            return rc;
        }
    } else {
        if (PyErr_Occurred()) return FX_ERROR;
        int got = kf_product_pair(product, &base, &quote, &market);
        if (got <= 0) return got < 0 ? FX_ERROR : FX_FALLBACK;
    }
    FxEvent ev = {kf_exchange, product, base, quote, market, side, price, has_qty, qty,
                  has_notional, notional, ts, 0, qty_obj, uid};
    int rc = fx_append_event(fc, &ev);
    Py_DECREF(base);
    Py_DECREF(quote);
    return rc;
}

static int venue_kraken_futures(FastCall *fc, PyObject *msg) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *feed = fx_get(msg, kf_feed);
    PyObject *control = fx_get(msg, kf_event);
    if (control != NULL && control != Py_None) {
        if (PyUnicode_CheckExact(control)) {
            if (fx_eq(control, "subscribed")) {
                fc->kind = fx_eq(feed, "heartbeat") ? FX.s_pong : FX.s_ack;
                return FX_OK;
            }
            if (fx_eq(control, "subscribed_failed") || fx_eq(control, "unsubscribed_failed") ||
                fx_eq(control, "error") || fx_eq(control, "alert"))
                return FX_FALLBACK;
        }
        fc->kind = FX.s_info; /* the version greeting, unsubscribed */
        return FX_OK;
    }
    if (feed == NULL || !PyUnicode_CheckExact(feed)) return FX_FALLBACK;
    if (fx_eq(feed, "trade")) {
        PyObject *type = fx_get(msg, kf_type);
        if (type != NULL && fx_eq(type, "liquidation")) {
            int rc = kf_liquidation(fc, msg);
            if (rc != FX_OK) return rc;
            fc->kind = FX.s_data;
        } else {
            fc->kind = FX.s_info; /* fill, block, termination */
        }
        return FX_OK;
    }
    if (fx_eq(feed, "heartbeat")) {
        fc->kind = FX.s_pong;
        return FX_OK;
    }
    if (fx_eq(feed, "trade_snapshot")) {
        PyObject *trades = fx_get(msg, kf_trades);
        if (trades == NULL || !PyList_CheckExact(trades)) return FX_FALLBACK;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(trades); i++) {
            PyObject *trade = PyList_GET_ITEM(trades, i);
            if (!PyDict_CheckExact(trade)) return FX_FALLBACK;
            PyObject *type = fx_get(trade, kf_type);
            if (type == NULL || !fx_eq(type, "liquidation")) continue;
            int rc = kf_liquidation(fc, trade);
            if (rc != FX_OK) return rc;
        }
        fc->kind = fc->events != NULL ? FX.s_data : FX.s_info;
        fc->snapshot = 1;
        return FX_OK;
    }
    return FX_FALLBACK;
}
