/* Deribit (streams/venues/deribit.py): JSON-RPC trade notifications (the 100 ms batches of
 * trades.future.*: ordinary trades -> info, trades flagged `liquidation` T/M/MT -> one event, or
 * two for MT), the subscribe/set_heartbeat acks, public/test replies (our pong) and the
 * heartbeat frames (a test_request gets the TEST_REPLY reply, kind "ping"). Errors, options and
 * combos, exponent numbers, odd ids and every other shape fall back. */

static PyObject *dr_method, *dr_params, *dr_channel, *dr_data, *dr_liquidation, *dr_error,
    *dr_id, *dr_result, *dr_type, *dr_instrument_name, *dr_trade_id, *dr_direction,
    *dr_amount, *dr_price, *dr_timestamp, *dr_exchange, *dr_usd, *dr_ping, *dr_test_reply,
    *dr_trades_prefix, *dr_long_suffix, *dr_short_suffix;

static int venue_deribit_init(void) {
    dr_method = intern("method");
    dr_params = intern("params");
    dr_channel = intern("channel");
    dr_data = intern("data");
    dr_liquidation = intern("liquidation");
    dr_error = intern("error");
    dr_id = intern("id");
    dr_result = intern("result");
    dr_type = intern("type");
    dr_instrument_name = intern("instrument_name");
    dr_trade_id = intern("trade_id");
    dr_direction = intern("direction");
    dr_amount = intern("amount");
    dr_price = intern("price");
    dr_timestamp = intern("timestamp");
    dr_exchange = intern("deribit");
    dr_usd = intern("USD");
    dr_ping = intern("ping");
    /* deribit.TEST_REPLY: _rpc(3, "public/test", {}) */
    dr_test_reply = intern("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"public/test\",\"params\":{}}");
    dr_trades_prefix = intern("trades.");
    dr_long_suffix = intern(":long");
    dr_short_suffix = intern(":short");
    return PyErr_Occurred() ? -1 : 0;
}

/* deribit.instrument_market for an ASCII name: base and quote (new references), *linear.
 * 1 ok, 0 fall back (not a future we price, or a form left to Python), -1 error. */
static int dr_instrument(PyObject *name, PyObject **base, PyObject **quote, int *linear) {
    if (!PyUnicode_IS_ASCII(name)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(name);
    const char *s = (const char *)PyUnicode_1BYTE_DATA(name);
    const char *dash = memchr(s, '-', (size_t)n);
    if (dash == NULL || dash == s) return 0;
    Py_ssize_t head = dash - s;
    const char *tail = dash + 1;
    Py_ssize_t tn = n - head - 1;
    int ok = 0;
    if (tn == 9 && memcmp(tail, "PERPETUAL", 9) == 0) {
        ok = 1;
    } else if (tn == 6 || tn == 7) { /* ^\d{1,2}[A-Z]{3}\d{2}$ (no trailing newline here) */
        Py_ssize_t d = tn - 5, i;
        ok = 1;
        for (i = 0; i < d; i++) ok &= tail[i] >= '0' && tail[i] <= '9';
        for (; i < d + 3; i++) ok &= tail[i] >= 'A' && tail[i] <= 'Z';
        for (; i < tn; i++) ok &= tail[i] >= '0' && tail[i] <= '9';
    }
    if (!ok) return 0;
    const char *us = memchr(s, '_', (size_t)head);
    if (us != NULL) {
        Py_ssize_t b = us - s;
        if (b == 0 || b == head - 1) return 0;
        *base = PyUnicode_FromStringAndSize(s, b);
        *quote = PyUnicode_FromStringAndSize(us + 1, head - b - 1);
        *linear = 1;
    } else {
        *base = PyUnicode_FromStringAndSize(s, head);
        *quote = Py_NewRef(dr_usd);
        *linear = 0;
    }
    if (*base == NULL || *quote == NULL) {
        Py_CLEAR(*base);
        Py_CLEAR(*quote);
        return -1;
    }
    return 1;
}

/* The events of one trade flagged `liquidation` (deribit._trade_events). */
static int dr_trade(FastCall *fc, PyObject *trade) {
    PyObject *flag = fx_get(trade, dr_liquidation);
    if (flag == NULL || !PyUnicode_CheckExact(flag)) return FX_FALLBACK;
    int taker = 0, maker = 0;
    if (fx_eq(flag, "T"))
        taker = 1;
    else if (fx_eq(flag, "M"))
        maker = 1;
    else if (fx_eq(flag, "MT"))
        taker = maker = 1;
    else
        return FX_FALLBACK;
    PyObject *name = fx_get(trade, dr_instrument_name);
    if (!fx_nonempty_str(name)) return FX_FALLBACK;
    PyObject *trade_id = fx_get(trade, dr_trade_id);
    if (trade_id == NULL) return FX_FALLBACK;
    if (PyUnicode_CheckExact(trade_id)) {
        if (PyUnicode_GET_LENGTH(trade_id) == 0) return FX_FALLBACK;
    } else if (!PyLong_CheckExact(trade_id)) {
        return FX_FALLBACK;
    }
    PyObject *taker_side = fx_order_side(fx_get(trade, dr_direction));
    if (taker_side == NULL) return FX_FALLBACK;
    PyObject *maker_side = taker_side == FX.s_long ? FX.s_short : FX.s_long;
    PyObject *amount_obj = fx_get(trade, dr_amount), *price_obj = fx_get(trade, dr_price),
             *ts_obj = fx_get(trade, dr_timestamp);
    double amount, price, ts;
    if (amount_obj == NULL || price_obj == NULL || ts_obj == NULL ||
        !fx_num(amount_obj, &amount) || !fx_num(price_obj, &price) || !fx_int_ms(ts_obj, &ts) ||
        !(amount > 0 && price > 0 && ts > 0))
        return FX_FALLBACK;
    PyObject *base = NULL, *quote = NULL;
    int linear = 0;
    int got = dr_instrument(name, &base, &quote, &linear);
    if (got <= 0) return got < 0 ? FX_ERROR : FX_FALLBACK;
    double qty, notional;
    if (linear) {
        qty = amount * 1.0;
        notional = qty * price;
    } else {
        notional = amount * 1.0;
        qty = notional / price;
    }
    int priced = !linear || fx_eq(quote, "USD") || fx_eq(quote, "USDC") || fx_eq(quote, "USDT");
    int rc = FX_OK;
    PyObject *id_str = NULL;
    if (PyUnicode_CheckExact(trade_id))
        id_str = Py_NewRef(trade_id);
    else
        id_str = PyObject_Str(trade_id);
    if (id_str == NULL) rc = FX_ERROR;
    for (int k = 0; k < 2 && rc == FX_OK; k++) {
        PyObject *side;
        if (k == 0) {
            if (!taker) continue;
            side = taker_side;
        } else {
            if (!maker) continue;
            side = maker_side;
        }
        PyObject *venue_id;
        if (taker && maker) {
            venue_id = PyUnicode_Concat(id_str, side == FX.s_long ? dr_long_suffix
                                                                  : dr_short_suffix);
            if (venue_id == NULL) { rc = FX_ERROR; break; }
        } else {
            venue_id = Py_NewRef(id_str);
        }
        FxEvent ev = {dr_exchange, name, base, quote, linear ? FX.s_linear : FX.s_inverse,
                      side, price, 1, qty, priced, notional, ts, 0, amount_obj, venue_id};
        rc = fx_append_event(fc, &ev);
        Py_DECREF(venue_id);
    }
    Py_XDECREF(id_str);
    Py_DECREF(base);
    Py_DECREF(quote);
    return rc;
}

static int venue_deribit(FastCall *fc, PyObject *msg) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *method = fx_get(msg, dr_method);
    if (method == NULL || method == Py_None) {
        /* a response: {"id": n, "result": ...} */
        if (fx_get(msg, dr_error) != NULL) return FX_FALLBACK;
        PyObject *id = fx_get(msg, dr_id), *result = fx_get(msg, dr_result);
        if (id == NULL || result == NULL || !PyLong_CheckExact(id)) return FX_FALLBACK;
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(id, &overflow);
        if (v == -1 && PyErr_Occurred()) return FX_ERROR;
        if (!overflow && v == 2) { /* SUBSCRIBE_ID: the channels accepted */
            if (!PyList_CheckExact(result) || PyList_GET_SIZE(result) == 0) return FX_FALLBACK;
            fc->kind = FX.s_ack;
        } else if (!overflow && v == 1) { /* SET_HEARTBEAT_ID */
            fc->kind = FX.s_ack;
        } else {
            fc->kind = FX.s_pong; /* public/test */
        }
        return FX_OK;
    }
    PyObject *params = fx_get(msg, dr_params);
    if (params == NULL || !PyDict_CheckExact(params)) return FX_FALLBACK;
    if (fx_eq(method, "heartbeat")) {
        PyObject *type = fx_get(params, dr_type);
        if (type != NULL && fx_eq(type, "test_request")) {
            fc->kind = dr_ping;
            fc->reply = Py_NewRef(dr_test_reply);
        } else {
            fc->kind = FX.s_info;
        }
        return FX_OK;
    }
    if (!fx_eq(method, "subscription")) return FX_FALLBACK;
    PyObject *channel = fx_get(params, dr_channel), *data = fx_get(params, dr_data);
    if (channel == NULL || !PyUnicode_CheckExact(channel) ||
        PyUnicode_Tailmatch(channel, dr_trades_prefix, 0, PY_SSIZE_T_MAX, -1) != 1 ||
        data == NULL || !PyList_CheckExact(data))
        return FX_FALLBACK;
    Py_ssize_t n = PyList_GET_SIZE(data);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *trade = PyList_GET_ITEM(data, i);
        if (!PyDict_CheckExact(trade)) return FX_FALLBACK;
        if (fx_get(trade, dr_liquidation) == NULL) continue; /* an ordinary trade */
        int rc = dr_trade(fc, trade);
        if (rc != FX_OK) return rc;
    }
    fc->kind = fc->events != NULL ? FX.s_data : FX.s_info;
    return FX_OK;
}
