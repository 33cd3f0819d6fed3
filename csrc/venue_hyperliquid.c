/* Hyperliquid (streams/venues/hyperliquid.py): the public `trades` frames (a trade with exactly
 * one HLP liquidator vault among its users -> one event, the rest -> data without events),
 * `pong`, `subscriptionResponse` (ack, or info for another method), and the node fills lines
 * (`[user, fill]` and `{"events": [[user, fill], ...]}` blocks: the liquidated user's own fill
 * -> one event, other fills -> data without events). The greeting text, `error`, `allMids`
 * (prices), non-ASCII users, exponent numbers and other shapes fall back. */

static PyObject *hl_channel, *hl_data, *hl_method, *hl_users, *hl_coin, *hl_px, *hl_sz,
    *hl_time, *hl_tid, *hl_events, *hl_liquidation, *hl_liquidatedUser, *hl_dir, *hl_side,
    *hl_exchange, *hl_usdc, *hl_usd;

static const char *const HL_LIQUIDATORS[4] = {
    "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",
    "0xb0a55f13d22f66e6d495ac98113841b2326e9540",
    "0x5e177e5e39c0f4e421f5865a6d8beed8d921cb70",
    "0x2ed5c4484ea3ff8b57d5f2fb152a40d9f2b68308",
};

static int venue_hyperliquid_init(void) {
    hl_channel = intern("channel");
    hl_data = intern("data");
    hl_method = intern("method");
    hl_users = intern("users");
    hl_coin = intern("coin");
    hl_px = intern("px");
    hl_sz = intern("sz");
    hl_time = intern("time");
    hl_tid = intern("tid");
    hl_events = intern("events");
    hl_liquidation = intern("liquidation");
    hl_liquidatedUser = intern("liquidatedUser");
    hl_dir = intern("dir");
    hl_side = intern("side");
    hl_exchange = intern("hyperliquid");
    hl_usdc = intern("USDC");
    hl_usd = intern("USD");
    return PyErr_Occurred() ? -1 : 0;
}

/* `user.lower() in LIQUIDATORS` for an ASCII str: 1 yes, 0 no. */
static int hl_is_liquidator(PyObject *user) {
    if (PyUnicode_GET_LENGTH(user) != 42) return 0;
    const char *s = (const char *)PyUnicode_1BYTE_DATA(user);
    for (int k = 0; k < 4; k++) {
        const char *l = HL_LIQUIDATORS[k];
        int i = 0;
        for (; i < 42; i++) {
            char c = s[i];
            if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
            if (c != l[i]) break;
        }
        if (i == 42) return 1;
    }
    return 0;
}

/* str.lower() of an ASCII str (new reference). */
static PyObject *hl_lower(PyObject *s) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    const Py_UCS1 *src = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t i = 0;
    while (i < n && !(src[i] >= 'A' && src[i] <= 'Z')) i++;
    if (i == n) return Py_NewRef(s);
    PyObject *out = PyUnicode_New(n, 127);
    if (out == NULL) return NULL;
    Py_UCS1 *d = PyUnicode_1BYTE_DATA(out);
    for (Py_ssize_t j = 0; j < n; j++) {
        Py_UCS1 c = src[j];
        d[j] = (c >= 'A' && c <= 'Z') ? (Py_UCS1)(c + 32) : c;
    }
    return out;
}

/* hyperliquid._event: one event for `coin` (fill or public trade). `user` is the liquidated
 * user, already lower case. */
static int hl_event(FastCall *fc, PyObject *obj, PyObject *side, PyObject *user, int sampled) {
    PyObject *coin = fx_get(obj, hl_coin), *px_obj = fx_get(obj, hl_px),
             *sz_obj = fx_get(obj, hl_sz), *t_obj = fx_get(obj, hl_time);
    double px, sz, ts;
    if (!fx_nonempty_str(coin) || px_obj == NULL || sz_obj == NULL || t_obj == NULL ||
        !fx_plain_decimal(px_obj, &px) || !fx_plain_decimal(sz_obj, &sz) ||
        !PyLong_CheckExact(t_obj) || !fx_int_ms(t_obj, &ts) || !(sz > 0 && px > 0 && ts > 0))
        return FX_FALLBACK;
    /* _market: the instrument's base and quote, else from the coin's shape */
    PyObject *base = NULL, *quote = NULL;
    int priced = 1;
    PyObject *inst = PyDict_GetItemWithError(fc->instruments, coin);
    if (inst != NULL) {
        base = PyObject_GetAttr(inst, FX.s_base);
        quote = base ? PyObject_GetAttr(inst, FX.s_quote) : NULL;
        if (quote == NULL) {
            Py_XDECREF(base);
            return FX_ERROR;
        }
        if (!PyUnicode_CheckExact(base) || !PyUnicode_CheckExact(quote)) {
            Py_DECREF(base);
            Py_DECREF(quote);
            return FX_FALLBACK;
        }
    } else {
        if (PyErr_Occurred()) return FX_ERROR;
        Py_ssize_t n = PyUnicode_GET_LENGTH(coin);
        if (PyUnicode_READ_CHAR(coin, 0) == '@') return FX_FALLBACK; /* spot */
        Py_ssize_t slash = PyUnicode_FindChar(coin, '/', 0, n, 1);
        Py_ssize_t colon = slash == -1 ? PyUnicode_FindChar(coin, ':', 0, n, 1) : -1;
        if (slash == -2 || colon == -2) return FX_ERROR;
        if (slash != -1) return FX_FALLBACK; /* spot */
        if (colon != -1) { /* HIP-3 builder dex: no USD notional */
            if (colon == 0 || colon == n - 1) return FX_FALLBACK;
            base = PyUnicode_Substring(coin, colon + 1, n);
            if (base == NULL) return FX_ERROR;
            quote = Py_NewRef(hl_usd);
            priced = 0;
        } else {
            base = Py_NewRef(coin);
            quote = Py_NewRef(hl_usdc);
        }
    }
    /* venue_id: f"{int(t_ms)}:{tid}:{user}" (None without a tid) */
    PyObject *tid = fx_get(obj, hl_tid), *venue_id = NULL;
    int rc = FX_OK;
    if (tid != NULL && tid != Py_None) {
        if (PyUnicode_CheckExact(tid) || PyLong_CheckExact(tid))
            venue_id = PyUnicode_FromFormat("%S:%S:%U", t_obj, tid, user);
        else
            rc = FX_FALLBACK;
        if (rc == FX_OK && venue_id == NULL) rc = FX_ERROR;
    }
    if (rc == FX_OK) {
        FxEvent ev = {hl_exchange, coin, base, quote, FX.s_linear, side, px, 1, sz, priced,
                      sz * px, ts, sampled, sz_obj, venue_id};
        rc = fx_append_event(fc, &ev);
    }
    Py_XDECREF(venue_id);
    Py_DECREF(base);
    Py_DECREF(quote);
    return rc;
}

/* The public trades frame (_parse_ws's trades branch). */
static int hl_trades(FastCall *fc, PyObject *data) {
    Py_ssize_t n = PyList_GET_SIZE(data);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *trade = PyList_GET_ITEM(data, i);
        if (!PyDict_CheckExact(trade)) return FX_FALLBACK;
        PyObject *users = fx_get(trade, hl_users);
        if (users == NULL || !PyList_CheckExact(users) || PyList_GET_SIZE(users) != 2)
            return FX_FALLBACK;
        PyObject *buyer = PyList_GET_ITEM(users, 0), *seller = PyList_GET_ITEM(users, 1);
        if (!PyUnicode_CheckExact(buyer) || !PyUnicode_CheckExact(seller) ||
            !PyUnicode_IS_ASCII(buyer) || !PyUnicode_IS_ASCII(seller))
            return FX_FALLBACK;
        int b = hl_is_liquidator(buyer), s = hl_is_liquidator(seller);
        if (b == s) continue; /* an ordinary trade, or vault to vault */
        /* the vault BUYS a liquidated long */
        PyObject *side = b ? FX.s_long : FX.s_short;
        PyObject *user = hl_lower(b ? seller : buyer);
        if (user == NULL) return FX_ERROR;
        int rc = hl_event(fc, trade, side, user, 1);
        Py_DECREF(user);
        if (rc != FX_OK) return rc;
    }
    fc->kind = FX.s_data;
    return FX_OK;
}

/* _fill_side: the position `dir` names, else the order side. NULL = fall back. */
static PyObject *hl_fill_side(PyObject *fill) {
    PyObject *dir = fx_get(fill, hl_dir);
    int has_long = 0, has_short = 0;
    if (dir != NULL && dir != Py_None) {
        if (!PyUnicode_CheckExact(dir)) return NULL; /* str() of a truthy non-str */
        /* words of [A-Za-z]+, lower-cased */
        Py_ssize_t n = PyUnicode_GET_LENGTH(dir);
        int kind = PyUnicode_KIND(dir);
        const void *d = PyUnicode_DATA(dir);
        Py_ssize_t i = 0;
        while (i < n) {
            Py_UCS4 c = PyUnicode_READ(kind, d, i);
            int letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
            if (!letter) { i++; continue; }
            char w[6];
            Py_ssize_t len = 0;
            while (i < n) {
                c = PyUnicode_READ(kind, d, i);
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) break;
                if (len < 6) w[len] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
                len++;
                i++;
            }
            if (len == 4 && memcmp(w, "long", 4) == 0) has_long = 1;
            if (len == 5 && memcmp(w, "short", 5) == 0) has_short = 1;
        }
    }
    if (has_long && !has_short) return FX.s_long;
    if (has_short && !has_long) return FX.s_short;
    PyObject *order_side = fx_get(fill, hl_side);
    if (fx_eq(order_side, "A")) return FX.s_long;
    if (fx_eq(order_side, "B")) return FX.s_short;
    return NULL;
}

/* One node fill pair (_fill_event). */
static int hl_fill(FastCall *fc, PyObject *pair) {
    if (!PyList_CheckExact(pair) || PyList_GET_SIZE(pair) != 2) return FX_FALLBACK;
    PyObject *user_raw = PyList_GET_ITEM(pair, 0), *fill = PyList_GET_ITEM(pair, 1);
    if (!PyUnicode_CheckExact(user_raw) || !PyDict_CheckExact(fill)) return FX_FALLBACK;
    PyObject *liq = fx_get(fill, hl_liquidation);
    if (liq == NULL || liq == Py_None) return FX_OK;
    if (!PyDict_CheckExact(liq)) return FX_FALLBACK;
    PyObject *liquidated = fx_get(liq, hl_liquidatedUser);
    if (liquidated == NULL || !PyUnicode_CheckExact(liquidated)) return FX_FALLBACK;
    if (!PyUnicode_IS_ASCII(user_raw) || !PyUnicode_IS_ASCII(liquidated)) return FX_FALLBACK;
    Py_ssize_t n = PyUnicode_GET_LENGTH(user_raw);
    if (PyUnicode_GET_LENGTH(liquidated) != n) return FX_OK; /* another user's fill */
    const char *a = (const char *)PyUnicode_1BYTE_DATA(user_raw);
    const char *b = (const char *)PyUnicode_1BYTE_DATA(liquidated);
    for (Py_ssize_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (char)(y + 32);
        if (x != y) return FX_OK; /* a counterparty's fill */
    }
    if (hl_is_liquidator(user_raw)) return FX_OK; /* the vault's own fill */
    PyObject *side = hl_fill_side(fill);
    if (side == NULL) return FX_FALLBACK;
    PyObject *user = hl_lower(user_raw);
    if (user == NULL) return FX_ERROR;
    int rc = hl_event(fc, fill, side, user, 0);
    Py_DECREF(user);
    return rc;
}

static int venue_hyperliquid(FastCall *fc, PyObject *msg) {
    if (PyList_CheckExact(msg)) { /* node_fills: one [user, fill] per line */
        int rc = hl_fill(fc, msg);
        if (rc != FX_OK) return rc;
        fc->kind = FX.s_data;
        return FX_OK;
    }
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *channel = fx_get(msg, hl_channel);
    if (channel == NULL) { /* node_fills_by_block: {"events": [[user, fill], ...]} */
        PyObject *events = fx_get(msg, hl_events);
        if (events == NULL || !PyList_CheckExact(events)) return FX_FALLBACK;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(events); i++) {
            int rc = hl_fill(fc, PyList_GET_ITEM(events, i));
            if (rc != FX_OK) return rc;
        }
        fc->kind = FX.s_data;
        return FX_OK;
    }
    if (!PyUnicode_CheckExact(channel)) return FX_FALLBACK;
    PyObject *data = fx_get(msg, hl_data);
    if (fx_eq(channel, "trades")) {
        if (data == NULL || !PyList_CheckExact(data)) return FX_FALLBACK;
        return hl_trades(fc, data);
    }
    if (fx_eq(channel, "pong")) {
        fc->kind = FX.s_pong;
        return FX_OK;
    }
    if (fx_eq(channel, "subscriptionResponse")) {
        PyObject *method = data != NULL && PyDict_CheckExact(data) ? fx_get(data, hl_method)
                                                                   : NULL;
        fc->kind = method != NULL && fx_eq(method, "subscribe") ? FX.s_ack : FX.s_info;
        return FX_OK;
    }
    return FX_FALLBACK; /* error, allMids (prices), anything else */
}
