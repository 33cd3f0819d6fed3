/* HTX (streams/venues/htx.py): the public.*.liquidation_orders notify frames, the server's
 * {"op":"ping","ts":"<ts>"} (kind pong, with the {"op":"pong","ts":<token>} reply), the sub
 * reply to our heartbeat (pong), the subscribe ack and the other op frames that are info
 * (close, unsub...). The frames arrive gzip-compressed; the driver inflates them.
 *
 * The ping reply echoes the raw "ts" token of the text, which the decoded JSON does not give:
 * it is built here only where the text can be nothing but the minimal encoding
 * {"op":"ping","ts":"<ts>"} (or the same two members the other way round), i.e. where the
 * inflated size (the gzip trailer's ISIZE, checked by zlib) is exactly that encoding's length
 * and the ts is plain printable ASCII: any whitespace, escape or repeated member would make the
 * text longer. Every other ping (padded, escaped, numeric ts, the bare {"ping": n} form) falls
 * back, as do errors, refused pongs, odd ops and everything the Python path would dead-letter.
 */

static PyObject *ht_op, *ht_ts, *ht_cid, *ht_err_code, *ht_topic, *ht_data, *ht_contract_code,
    *ht_offset, *ht_direction, *ht_price, *ht_created_at, *ht_volume, *ht_amount,
    *ht_trade_turnover, *ht_pair, *ht_exchange, *ht_attr_data, *ht_prefix, *ht_suffix, *ht_hb_cid;

static int venue_htx_init(void) {
    ht_op = intern("op");
    ht_ts = intern("ts");
    ht_cid = intern("cid");
    ht_err_code = intern("err-code");
    ht_topic = intern("topic");
    ht_data = intern("data");
    ht_contract_code = intern("contract_code");
    ht_offset = intern("offset");
    ht_direction = intern("direction");
    ht_price = intern("price");
    ht_created_at = intern("created_at");
    ht_volume = intern("volume");
    ht_amount = intern("amount");
    ht_trade_turnover = intern("trade_turnover");
    ht_pair = intern("pair");
    ht_exchange = intern("htx");
    ht_attr_data = intern("data");
    ht_prefix = intern("public.");
    ht_suffix = intern(".liquidation_orders");
    ht_hb_cid = intern("liqstress-hb-");
    return PyErr_Occurred() ? -1 : 0;
}

/* The byte length of the frame's text: the gzip trailer's ISIZE (the driver inflated exactly
 * one member with nothing after it, and zlib checked that length), or the length of an ASCII
 * text frame. -1 when unknown. */
static Py_ssize_t ht_text_size(PyObject *frame) {
    PyObject *data = PyObject_GetAttr(frame, ht_attr_data);
    if (data == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t size = -1;
    if (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) >= 18) {
        const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(data);
        Py_ssize_t n = PyBytes_GET_SIZE(data);
        if (b[0] == 0x1f && b[1] == 0x8b)
            size = (Py_ssize_t)((uint32_t)b[n - 4] | ((uint32_t)b[n - 3] << 8) |
                                ((uint32_t)b[n - 2] << 16) | ((uint32_t)b[n - 1] << 24));
    } else if (PyUnicode_CheckExact(data) && PyUnicode_IS_ASCII(data)) {
        size = PyUnicode_GET_LENGTH(data);
    }
    Py_DECREF(data);
    return size;
}

/* {"op":"ping","ts":"<ts>"}: kind pong and the reply, when the text is the minimal encoding
 * (see the header). FX_OK / FX_FALLBACK / FX_ERROR. */
static int ht_ping(FastCall *fc, PyObject *msg) {
    PyObject *ts = fx_get(msg, ht_ts);
    if (PyDict_GET_SIZE(msg) != 2 || ts == NULL || !PyUnicode_CheckExact(ts) ||
        !PyUnicode_IS_ASCII(ts))
        return FX_FALLBACK;
    Py_ssize_t n = PyUnicode_GET_LENGTH(ts);
    const char *s = (const char *)PyUnicode_1BYTE_DATA(ts);
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\') return FX_FALLBACK;
    /* {"op":"ping","ts":""} is 21 bytes */
    if (ht_text_size(fc->frame) != 21 + n) return FX_FALLBACK;
    PyObject *reply = PyUnicode_New(n + 21, 127);
    if (reply == NULL) return FX_ERROR;
    char *d = (char *)PyUnicode_1BYTE_DATA(reply);
    memcpy(d, "{\"op\":\"pong\",\"ts\":\"", 19);
    memcpy(d + 19, s, (size_t)n);
    memcpy(d + 19 + n, "\"}", 2);
    fc->reply = reply;
    fc->kind = FX.s_pong; /* the server's ping is the proof of life */
    return FX_OK;
}

/* _control for op "sub": the reply to our heartbeat (pong) or the subscribe ack. */
static int ht_sub(FastCall *fc, PyObject *msg) {
    PyObject *cid = fx_get(msg, ht_cid);
    if (cid != NULL && cid != Py_None) {
        if (!PyUnicode_CheckExact(cid)) return FX_FALLBACK; /* str(cid) of another type */
        int hb = PyUnicode_Tailmatch(cid, ht_hb_cid, 0, PY_SSIZE_T_MAX, -1);
        if (hb < 0) return FX_ERROR;
        if (hb) {
            fc->kind = FX.s_pong; /* 2014 "Repeated subscription" (or 0): proof of life */
            return FX_OK;
        }
    }
    PyObject *code = fx_get(msg, ht_err_code);
    if (code == NULL) return FX_FALLBACK;
    int ok = 0;
    if (PyLong_CheckExact(code)) {
        int overflow = 0;
        long v = PyLong_AsLongAndOverflow(code, &overflow);
        if (v == -1 && PyErr_Occurred()) return FX_ERROR;
        ok = !overflow && v == 0;
    } else {
        ok = fx_eq(code, "0");
    }
    if (!ok) return FX_FALLBACK; /* subscribe_error (or a value Python compares otherwise) */
    fc->kind = FX.s_ack;
    return FX_OK;
}

/* _base_quote: base and quote (new references) from pair, else contract_code, else the
 * topic. 1 ok, 0 fall back, -1 error. */
static int ht_split2(PyObject *code, PyObject **base, PyObject **quote) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(code);
    Py_ssize_t i = PyUnicode_FindChar(code, '-', 0, n, 1);
    if (i == -2) return -1;
    if (i <= 0) return 0; /* no "-", or an empty first part */
    Py_ssize_t j = PyUnicode_FindChar(code, '-', i + 1, n, 1);
    if (j == -2) return -1;
    if (j < 0) j = n;
    if (j == i + 1) return 0; /* an empty second part */
    *base = PyUnicode_Substring(code, 0, i);
    *quote = *base ? PyUnicode_Substring(code, i + 1, j) : NULL;
    if (*quote == NULL) {
        Py_CLEAR(*base);
        return -1;
    }
    return 1;
}

static int ht_base_quote(PyObject *entry, PyObject *code, PyObject *topic, PyObject **base,
                         PyObject **quote) {
    PyObject *pair = fx_get(entry, ht_pair);
    if (pair != NULL && PyUnicode_CheckExact(pair)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(pair);
        Py_ssize_t i = PyUnicode_FindChar(pair, '-', 0, n, 1);
        if (i == -2) return -1;
        if (i >= 0) {
            Py_ssize_t j = PyUnicode_FindChar(pair, '-', i + 1, n, 1);
            if (j == -2) return -1;
            if (j < 0 && i > 0 && i < n - 1) { /* exactly one "-", both sides non-empty */
                *base = PyUnicode_Substring(pair, 0, i);
                *quote = *base ? PyUnicode_Substring(pair, i + 1, n) : NULL;
                if (*quote == NULL) {
                    Py_CLEAR(*base);
                    return -1;
                }
                return 1;
            }
        }
    }
    /* code is contract_code, a non-empty str */
    Py_ssize_t n = PyUnicode_GET_LENGTH(code);
    Py_ssize_t dash = PyUnicode_FindChar(code, '-', 0, n, 1);
    if (dash == -2) return -1;
    if (dash >= 0) return ht_split2(code, base, quote);
    /* the topic's middle part: topic ends with the suffix here */
    Py_ssize_t tn = PyUnicode_GET_LENGTH(topic);
    Py_ssize_t start = PyUnicode_GET_LENGTH(ht_prefix);
    Py_ssize_t stop = tn - PyUnicode_GET_LENGTH(ht_suffix);
    if (stop <= start) return 0; /* "" splits into one part: unknown_symbol */
    PyObject *mid = PyUnicode_Substring(topic, start, stop);
    if (mid == NULL) return -1;
    int rc = ht_split2(mid, base, quote);
    Py_DECREF(mid);
    return rc;
}

/* _optional_positive: 1 with *out set (0 = None), 0 fall back. */
static int ht_optional_positive(PyObject *entry, PyObject *key, double *out) {
    PyObject *v = fx_get(entry, key);
    *out = 0.0;
    if (v == NULL || v == Py_None || (PyUnicode_CheckExact(v) && PyUnicode_GET_LENGTH(v) == 0))
        return 1;
    double x;
    if (!fx_num(v, &x) || x < 0) return 0;
    *out = x > 0 ? x : 0.0;
    return 1;
}

static int ht_notify(FastCall *fc, PyObject *msg) {
    PyObject *topic = fx_get(msg, ht_topic);
    if (topic == NULL || !PyUnicode_CheckExact(topic)) return FX_FALLBACK;
    Py_ssize_t tn = PyUnicode_GET_LENGTH(topic);
    if (PyUnicode_Tailmatch(topic, ht_prefix, 0, tn, -1) != 1 ||
        PyUnicode_Tailmatch(topic, ht_suffix, 0, tn, 1) != 1)
        return PyErr_Occurred() ? FX_ERROR : FX_FALLBACK;
    PyObject *data = fx_get(msg, ht_data);
    if (data == NULL || !PyList_CheckExact(data)) return FX_FALLBACK;
    Py_ssize_t n = PyList_GET_SIZE(data);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *entry = PyList_GET_ITEM(data, i);
        if (!PyDict_CheckExact(entry)) return FX_FALLBACK;
        PyObject *symbol = fx_get(entry, ht_contract_code);
        if (!fx_nonempty_str(symbol)) return FX_FALLBACK;
        PyObject *offset = fx_get(entry, ht_offset);
        if (offset != NULL && !fx_ieq(offset, "close")) return FX_FALLBACK;
        PyObject *side = fx_order_side(fx_get(entry, ht_direction)); /* sell closes a long */
        if (side == NULL) return FX_FALLBACK;
        PyObject *p = fx_get(entry, ht_price), *created = fx_get(entry, ht_created_at);
        double price, ts, unused;
        if (p == NULL || created == NULL || !fx_num(p, &price) || !fx_int_ms(created, &ts) ||
            price <= 0 || ts <= 0)
            return FX_FALLBACK;
        PyObject *volume = fx_get(entry, ht_volume);
        if (volume == Py_None) volume = NULL;
        if (volume != NULL && !fx_num(volume, &unused)) return FX_FALLBACK;
        double qty, notional;
        if (!ht_optional_positive(entry, ht_amount, &qty) ||
            !ht_optional_positive(entry, ht_trade_turnover, &notional))
            return FX_FALLBACK;
        if (notional == 0.0 && qty != 0.0) notional = qty * price;
        PyObject *qty_raw = volume;
        if (qty_raw == NULL) {
            qty_raw = fx_get(entry, ht_amount);
            if (qty_raw == Py_None) qty_raw = NULL;
        }
        PyObject *base = NULL, *quote = NULL;
        int got = ht_base_quote(entry, symbol, topic, &base, &quote);
        if (got <= 0) return got < 0 ? FX_ERROR : FX_FALLBACK;
        FxEvent ev = {ht_exchange, symbol, base, quote, FX.s_linear, side, price, qty != 0.0,
                      qty, notional != 0.0, notional, ts, 0, qty_raw, NULL};
        int rc = fx_append_event(fc, &ev);
        Py_DECREF(base);
        Py_DECREF(quote);
        if (rc != FX_OK) return rc;
    }
    fc->kind = FX.s_data;
    return FX_OK;
}

static int venue_htx(FastCall *fc, PyObject *msg) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *op = fx_get(msg, ht_op);
    if (op == NULL || !PyUnicode_CheckExact(op)) return FX_FALLBACK;
    if (fx_eq(op, "notify")) return ht_notify(fc, msg);
    if (fx_eq(op, "ping")) return ht_ping(fc, msg);
    if (fx_eq(op, "sub")) return ht_sub(fc, msg);
    if (fx_eq(op, "pong") || fx_eq(op, "error")) return FX_FALLBACK; /* venue errors */
    fc->kind = FX.s_info; /* close, unsub, auth...: nothing to count */
    return FX_OK;
}
