/* Gate USDT futures (streams/venues/gate.py): futures.public_liquidates updates (result an
 * object or a list), futures.pong, the successful subscribe ack and unsubscribe (info).
 * Mirrors gate.parse; errors, failed subscribes, other events or channels, exponent decimals,
 * contracts without metadata nor an A_B name... fall back to the Python path. */

static PyObject *gt_channel, *gt_event, *gt_error, *gt_result, *gt_status, *gt_contract,
    *gt_size, *gt_price, *gt_time_ms, *gt_time, *gt_exchange;

static int venue_gate_init(void) {
    gt_channel = intern("channel");
    gt_event = intern("event");
    gt_error = intern("error");
    gt_result = intern("result");
    gt_status = intern("status");
    gt_contract = intern("contract");
    gt_size = intern("size");
    gt_price = intern("price");
    gt_time_ms = intern("time_ms");
    gt_time = intern("time");
    gt_exchange = intern("gate");
    return PyErr_Occurred() ? -1 : 0;
}

/* gate._event_time: the item's time_ms/time, else the frame's; 1 ok, 0 fall back. */
static int gt_event_time(PyObject *item, PyObject *msg, double *out) {
    PyObject *objs[2] = {item, msg};
    PyObject *keys[2] = {gt_time_ms, gt_time};
    for (int o = 0; o < 2; o++) {
        for (int k = 0; k < 2; k++) {
            PyObject *val = fx_get(objs[o], keys[k]);
            if (val == NULL || val == Py_None) continue;
            /* _epoch: an int, 0 < val < 2**63; ms for time_ms or above 1e11, else seconds */
            if (!PyLong_CheckExact(val)) return 0;
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(val, &overflow);
            if (overflow || (v == -1 && PyErr_Occurred())) {
                PyErr_Clear();
                return 0;
            }
            if (v <= 0) return 0;
            *out = (k == 0 || v > 100000000000LL) ? (double)v / 1000.0 : (double)v;
            return 1;
        }
    }
    return 0; /* missing_field time */
}

/* gate.liquidation_key: "<floor(ts)>|<repr(|size|)>", then "|<n>" for the n-th repeat of that
 * key of the contract in this frame (counted in `seen`, a dict keyed by (contract, key)). A
 * new reference, NULL on a Python error. */
static PyObject *gt_key(double ts, double size, PyObject *contract, PyObject *seen) {
    PyObject *abs_size = PyFloat_FromDouble(fabs(size));
    if (abs_size == NULL) return NULL;
    PyObject *repr = PyObject_Repr(abs_size);
    Py_DECREF(abs_size);
    if (repr == NULL) return NULL;
    PyObject *key = PyUnicode_FromFormat("%lld|%U", (long long)floor(ts), repr);
    Py_DECREF(repr);
    if (key == NULL) return NULL;
    PyObject *pair = PyTuple_Pack(2, contract, key);
    if (pair == NULL) { Py_DECREF(key); return NULL; }
    PyObject *old = PyDict_GetItemWithError(seen, pair);
    long n = 1;
    if (old != NULL) {
        n = PyLong_AsLong(old) + 1;
    } else if (PyErr_Occurred()) {
        Py_DECREF(pair);
        Py_DECREF(key);
        return NULL;
    }
    PyObject *count = PyLong_FromLong(n);
    int rc = count == NULL ? -1 : PyDict_SetItem(seen, pair, count);
    Py_XDECREF(count);
    Py_DECREF(pair);
    if (rc < 0) { Py_DECREF(key); return NULL; }
    if (n == 1) return key;
    PyObject *out = PyUnicode_FromFormat("%U|%ld", key, n);
    Py_DECREF(key);
    return out;
}

/* One result item -> one event appended. FX_OK / FX_FALLBACK / FX_ERROR. */
static int gt_item(FastCall *fc, PyObject *item, PyObject *msg, PyObject *seen) {
    if (!PyDict_CheckExact(item)) return FX_FALLBACK;
    PyObject *contract = fx_get(item, gt_contract);
    if (!fx_nonempty_str(contract)) return FX_FALLBACK;
    /* size: kit.num_any (a decimal string or a JSON number); price: kit.num_str */
    PyObject *sz = fx_get(item, gt_size), *px = fx_get(item, gt_price);
    double size, price, ts;
    if (sz == NULL || px == NULL) return FX_FALLBACK;
    if (PyUnicode_CheckExact(sz) ? !fx_plain_decimal(sz, &size) : !fx_num(sz, &size))
        return FX_FALLBACK;
    if (!fx_plain_decimal(px, &price)) return FX_FALLBACK;
    if (size == 0) return FX_FALLBACK; /* bad_side: no sign */
    PyObject *side = size > 0 ? FX.s_long : FX.s_short; /* POSITIVE_SIZE_IS_LONG */
    if (price <= 0) return FX_FALLBACK;
    if (!gt_event_time(item, msg, &ts)) return FX_FALLBACK;
    PyObject *base = NULL, *quote = NULL;
    FxEvent ev = {gt_exchange, contract, NULL, NULL, FX.s_linear, side, price, 0, 0.0, 0, 0.0,
                  ts, 1, NULL, NULL};
    PyObject *inst = PyDict_GetItemWithError(fc->instruments, contract);
    if (inst != NULL) {
        PyObject *c = PyObject_GetAttr(inst, FX.s_contract_value);
        if (c == NULL) return FX_ERROR;
        int is_float = PyFloat_CheckExact(c);
        double cv = is_float ? PyFloat_AS_DOUBLE(c) : 0.0;
        Py_DECREF(c);
        if (!is_float) return FX_FALLBACK;
        base = PyObject_GetAttr(inst, FX.s_base);
        quote = base ? PyObject_GetAttr(inst, FX.s_quote) : NULL;
        if (quote == NULL) {
            Py_XDECREF(base);
            return FX_ERROR;
        }
        /* kit.amounts(abs(size), price, "linear", contract_value) */
        ev.has_qty = ev.has_notional = 1;
        ev.qty = fabs(size) * cv;
        ev.notional = ev.qty * price;
    } else {
        if (PyErr_Occurred()) return FX_ERROR;
        /* gate._pair: contract.split("_")[:2], both non-empty */
        Py_ssize_t n = PyUnicode_GET_LENGTH(contract);
        Py_ssize_t i1 = PyUnicode_FindChar(contract, '_', 0, n, 1);
        if (i1 == -2) return FX_ERROR;
        if (i1 <= 0) return FX_FALLBACK;
        Py_ssize_t i2 = PyUnicode_FindChar(contract, '_', i1 + 1, n, 1);
        if (i2 == -2) return FX_ERROR;
        if (i2 < 0) i2 = n;
        if (i2 == i1 + 1) return FX_FALLBACK;
        base = PyUnicode_Substring(contract, 0, i1);
        quote = base ? PyUnicode_Substring(contract, i1 + 1, i2) : NULL;
        if (quote == NULL) {
            Py_XDECREF(base);
            return FX_ERROR;
        }
    }
    ev.base = base;
    ev.quote = quote;
    ev.venue_id = gt_key(ts, size, contract, seen);
    int rc = ev.venue_id == NULL ? FX_ERROR : fx_append_event(fc, &ev);
    Py_XDECREF(ev.venue_id);
    Py_DECREF(base);
    Py_DECREF(quote);
    return rc;
}

static int venue_gate(FastCall *fc, PyObject *msg) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *channel = fx_get(msg, gt_channel), *op = fx_get(msg, gt_event);
    if (fx_eq(channel, "futures.pong")) {
        fc->kind = FX.s_pong;
        return FX_OK;
    }
    /* msg.get("error") not in (None, {}) -> an error frame */
    PyObject *error = fx_get(msg, gt_error);
    if (error != NULL && error != Py_None &&
        !(PyDict_CheckExact(error) && PyDict_GET_SIZE(error) == 0))
        return FX_FALLBACK;
    PyObject *result = fx_get(msg, gt_result);
    if (fx_eq(op, "subscribe")) {
        if (fx_eq(channel, "futures.public_liquidates") && result != NULL &&
            PyDict_CheckExact(result) && fx_eq(fx_get(result, gt_status), "success")) {
            fc->kind = FX.s_ack;
            return FX_OK;
        }
        return FX_FALLBACK; /* subscribe_error */
    }
    if (fx_eq(op, "unsubscribe")) {
        fc->kind = FX.s_info;
        return FX_OK;
    }
    if (!fx_eq(op, "update") || !fx_eq(channel, "futures.public_liquidates") || result == NULL)
        return FX_FALLBACK;
    if (!PyDict_CheckExact(result) && !PyList_CheckExact(result)) return FX_FALLBACK;
    PyObject *seen = PyDict_New();
    if (seen == NULL) return FX_ERROR;
    int rc = FX_OK;
    if (PyDict_CheckExact(result)) {
        rc = gt_item(fc, result, msg, seen);
    } else {
        for (Py_ssize_t i = 0; rc == FX_OK && i < PyList_GET_SIZE(result); i++)
            rc = gt_item(fc, PyList_GET_ITEM(result, i), msg, seen);
    }
    Py_DECREF(seen);
    if (rc != FX_OK) return rc;
    fc->kind = FX.s_data;
    return FX_OK;
}
