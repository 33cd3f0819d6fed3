/* OKX v5 (streams/venues/okx.py): the liquidation-orders frames and the {"event": ...} control
 * frames of kit.okx_envelope (subscribe ack, other events info). The text "pong" is not JSON:
 * orjson refuses it and the driver leaves it to the Python path, as every frame this does not
 * recognise completely (error events, other channels, unknown instruments without a family,
 * exponent decimals, non-str fields where Python would str() them...). The history cut-off
 * (drop_before_subscribe) is the driver's. */

#define LIQSTRESS_OKX_ENVELOPE 1

static PyObject *ok_event, *ok_arg, *ok_data, *ok_channel, *ok_details, *ok_instId, *ok_instType,
    *ok_uly, *ok_instFamily, *ok_posSide, *ok_side, *ok_sz, *ok_bkPx, *ok_ts, *ok_exchange;

static int venue_okx_init(void) {
    ok_event = intern("event");
    ok_arg = intern("arg");
    ok_data = intern("data");
    ok_channel = intern("channel");
    ok_details = intern("details");
    ok_instId = intern("instId");
    ok_instType = intern("instType");
    ok_uly = intern("uly");
    ok_instFamily = intern("instFamily");
    ok_posSide = intern("posSide");
    ok_side = intern("side");
    ok_sz = intern("sz");
    ok_bkPx = intern("bkPx");
    ok_ts = intern("ts");
    ok_exchange = intern("okx");
    return PyErr_Occurred() ? -1 : 0;
}

/* kit.okx_envelope for a decoded frame (the text "pong" never gets here: not JSON). Returns
 * FX_OK with fc->kind set for a control frame (nothing more to do), FX_FALLBACK, or -1 with
 * *arg and *data (borrowed) set for an arg+data frame whose arg[key] is the C string `value`. */
static int ok_envelope(FastCall *fc, PyObject *msg, PyObject *key, const char *value,
                       PyObject **arg, PyObject **data) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *control = fx_get(msg, ok_event);
    if (control != NULL && control != Py_None) {
        if (fx_eq(control, "subscribe")) {
            fc->kind = FX.s_ack;
            return FX_OK;
        }
        if (fx_eq(control, "error")) return FX_FALLBACK; /* subscribe_error */
        fc->kind = FX.s_info;
        return FX_OK;
    }
    *arg = fx_get(msg, ok_arg);
    *data = fx_get(msg, ok_data);
    if (*arg == NULL || *data == NULL || !PyDict_CheckExact(*arg) || !PyList_CheckExact(*data))
        return FX_FALLBACK;
    if (!fx_eq(fx_get(*arg, key), value)) return FX_FALLBACK; /* unexpected_<key> */
    return -1;
}

/* okx._pair: "BTC-USDT-SWAP" -> ("BTC", "USDT") as new references; 0 when the family has no
 * two non-empty leading parts (unknown_symbol: fall back), -1 on error. */
static int ok_pair(PyObject *family, PyObject **base, PyObject **quote) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(family);
    Py_ssize_t i1 = PyUnicode_FindChar(family, '-', 0, n, 1);
    if (i1 == -2) return -1;
    if (i1 <= 0) return 0;
    Py_ssize_t i2 = PyUnicode_FindChar(family, '-', i1 + 1, n, 1);
    if (i2 == -2) return -1;
    if (i2 < 0) i2 = n;
    if (i2 == i1 + 1) return 0;
    *base = PyUnicode_Substring(family, 0, i1);
    if (*base == NULL) return -1;
    *quote = PyUnicode_Substring(family, i1 + 1, i2);
    if (*quote == NULL) {
        Py_CLEAR(*base);
        return -1;
    }
    return 1;
}

/* okx._side: posSide (long/short/buy/sell), or "net"/falsy -> the order side (sell -> long). */
static PyObject *ok_side_of(PyObject *d) {
    PyObject *pos = fx_get(d, ok_posSide);
    int net;
    if (pos == NULL) {
        net = 1;
    } else {
        int truth = PyObject_IsTrue(pos);
        if (truth < 0) { PyErr_Clear(); return NULL; }
        if (!truth) {
            net = 1;
        } else {
            if (!PyUnicode_CheckExact(pos)) return NULL;
            net = fx_ieq(pos, "net");
            if (!net) return fx_position_side(pos);
        }
    }
    return fx_order_side(fx_get(d, ok_side));
}

/* The interned market label equal to an Instrument's market, or NULL (fall back). */
static PyObject *ok_market_label(PyObject *market) {
    if (market == FX.s_linear || market == FX.s_inverse || market == FX.s_spot) return market;
    if (fx_eq(market, "linear")) return FX.s_linear;
    if (fx_eq(market, "inverse")) return FX.s_inverse;
    if (fx_eq(market, "spot")) return FX.s_spot;
    return NULL;
}

/* One data entry: its details -> events. FX_OK / FX_FALLBACK / FX_ERROR. */
static int ok_entry(FastCall *fc, PyObject *entry, PyObject *arg) {
    if (!PyDict_CheckExact(entry)) return FX_FALLBACK;
    PyObject *details = fx_get(entry, ok_details);
    if (details == NULL || !PyList_CheckExact(details)) return FX_FALLBACK;
    PyObject *inst_id = fx_get(entry, ok_instId);
    if (!fx_nonempty_str(inst_id)) return FX_FALLBACK;
    PyObject *inst_type = fx_get(entry, ok_instType);
    if (inst_type == NULL) inst_type = fx_get(arg, ok_instType);
    if (!(fx_eq(inst_type, "SWAP") || fx_eq(inst_type, "FUTURES"))) return FX_FALLBACK;
    int rc = FX_FALLBACK;
    PyObject *base = NULL, *quote = NULL, *market = NULL;
    double cv = 0.0;
    PyObject *inst = PyDict_GetItemWithError(fc->instruments, inst_id);
    if (inst != NULL) {
        PyObject *m = PyObject_GetAttr(inst, FX.s_market);
        if (m == NULL) return FX_ERROR;
        market = ok_market_label(m);
        Py_DECREF(m);
        if (market == NULL) return FX_FALLBACK;
        PyObject *c = PyObject_GetAttr(inst, FX.s_contract_value);
        if (c == NULL) return FX_ERROR;
        int is_float = PyFloat_CheckExact(c);
        if (is_float) cv = PyFloat_AS_DOUBLE(c);
        Py_DECREF(c);
        if (!is_float) return FX_FALLBACK;
        base = PyObject_GetAttr(inst, FX.s_base);
        quote = base ? PyObject_GetAttr(inst, FX.s_quote) : NULL;
        if (quote == NULL) { rc = FX_ERROR; goto done; }
    } else {
        if (PyErr_Occurred()) return FX_ERROR;
        /* str(entry.get("uly") or entry.get("instFamily") or inst_id) */
        PyObject *family = NULL;
        PyObject *keys[2] = {ok_uly, ok_instFamily};
        for (int k = 0; k < 2 && family == NULL; k++) {
            PyObject *val = fx_get(entry, keys[k]);
            if (val == NULL) continue;
            int truth = PyObject_IsTrue(val);
            if (truth < 0) return FX_ERROR;
            if (truth) family = val;
        }
        if (family == NULL) family = inst_id;
        if (!PyUnicode_CheckExact(family)) return FX_FALLBACK;
        int got = ok_pair(family, &base, &quote);
        if (got <= 0) return got < 0 ? FX_ERROR : FX_FALLBACK;
        market = fx_eq(quote, "USD") ? FX.s_inverse : FX.s_linear;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(details); i++) {
        PyObject *d = PyList_GET_ITEM(details, i);
        rc = FX_FALLBACK;
        if (!PyDict_CheckExact(d)) goto done;
        PyObject *side = ok_side_of(d);
        if (side == NULL) goto done;
        PyObject *sz = fx_get(d, ok_sz), *px = fx_get(d, ok_bkPx), *t = fx_get(d, ok_ts);
        double size, price, ts;
        if (sz == NULL || px == NULL || t == NULL || !fx_plain_decimal(sz, &size) ||
            !fx_plain_decimal(px, &price) || !fx_str_ms(t, &ts))
            goto done;
        if (size < 0 || price <= 0 || ts <= 0) goto done;
        FxEvent ev = {ok_exchange, inst_id, base, quote, market, side, price, 0, 0.0, 0, 0.0,
                      ts, 1, sz, NULL};
        if (inst != NULL) { /* kit.amounts(sz, price, inst.market, inst.contract_value) */
            ev.has_qty = ev.has_notional = 1;
            if (market == FX.s_inverse) {
                ev.notional = size * cv;
                ev.qty = ev.notional / price;
            } else {
                ev.qty = size * cv;
                ev.notional = ev.qty * price;
            }
        }
        rc = fx_append_event(fc, &ev);
        if (rc != FX_OK) goto done;
    }
    rc = FX_OK;
done:
    Py_XDECREF(base);
    Py_XDECREF(quote);
    return rc;
}

static int venue_okx(FastCall *fc, PyObject *msg) {
    PyObject *arg = NULL, *data = NULL;
    int env = ok_envelope(fc, msg, ok_channel, "liquidation-orders", &arg, &data);
    if (env != -1) return env;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(data); i++) {
        int rc = ok_entry(fc, PyList_GET_ITEM(data, i), arg);
        if (rc != FX_OK) return rc;
    }
    fc->kind = FX.s_data;
    return FX_OK;
}
