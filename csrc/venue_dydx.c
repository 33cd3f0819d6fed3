/* dYdX v4 (streams/venues/dydx.py): v4_trades channel_data / channel_batch_data (trades of
 * type LIQUIDATED -> events, every other trade type -> info), the `subscribed` ack with its
 * snapshot of recent trades (kind ack, snapshot: the driver counts and drops them),
 * `connected` (info), `pong` and `unsubscribed` (our heartbeat: pong, else info). Errors,
 * non-ASCII types or sides, exponent numbers, odd timestamps and other shapes fall back. */

static PyObject *dy_type, *dy_channel, *dy_id, *dy_contents, *dy_trades, *dy_side, *dy_size,
    *dy_price, *dy_createdAt, *dy_exchange, *dy_heartbeat;

static int venue_dydx_init(void) {
    dy_type = intern("type");
    dy_channel = intern("channel");
    dy_id = intern("id");
    dy_contents = intern("contents");
    dy_trades = intern("trades");
    dy_side = intern("side");
    dy_size = intern("size");
    dy_price = intern("price");
    dy_createdAt = intern("createdAt");
    dy_exchange = intern("dydx");
    dy_heartbeat = intern("liqstress-heartbeat-");
    return PyErr_Occurred() ? -1 : 0;
}

static int dy_digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long long dy_days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* dydx._timestamp: "YYYY-MM-DDTHH:MM:SS(.f{1,9})?Z" as datetime.fromisoformat(...).timestamp()
 * gives it (microseconds, further digits truncated; an exact int division by 10**6). 1 ok,
 * 0 fall back (anything Python would refuse, or a value too far out to be exact here). */
static int dy_iso_ts(PyObject *val, double *out) {
    if (!fx_nonempty_str(val) || !PyUnicode_IS_ASCII(val)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(val);
    const char *s = (const char *)PyUnicode_1BYTE_DATA(val);
    if (n < 20 || n > 30 || s[n - 1] != 'Z') return 0;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':') return 0;
    int y, mo, d, h, mi, se;
    if (!dy_digits(s, 4, &y) || !dy_digits(s + 5, 2, &mo) || !dy_digits(s + 8, 2, &d) ||
        !dy_digits(s + 11, 2, &h) || !dy_digits(s + 14, 2, &mi) || !dy_digits(s + 17, 2, &se))
        return 0;
    long long us = 0;
    if (n > 20) {
        if (s[19] != '.') return 0;
        Py_ssize_t fd = n - 21; /* fraction digits */
        if (fd < 1 || fd > 9) return 0;
        int frac = 0;
        for (Py_ssize_t i = 0; i < fd; i++) {
            char c = s[20 + i];
            if (c < '0' || c > '9') return 0;
            if (i < 6) frac = frac * 10 + (c - '0');
        }
        for (Py_ssize_t i = fd; i < 6; i++) frac *= 10;
        us = frac;
    } else if (n != 20) {
        return 0;
    }
    static const int DIM[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > DIM[mo - 1] + (mo == 2 && leap)) return 0;
    long long secs = dy_days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + se;
    /* both operands exact doubles below 2**53: IEEE division is Python's int / int */
    if (secs < 0 || secs > 9000000000LL) return 0;
    us += secs * 1000000LL;
    *out = (double)us / 1e6;
    return 1;
}

/* One trade (dydx._liquidation). *is_liq: 0 for a trade of another type (nothing built).
 * FX_OK / FX_FALLBACK / FX_ERROR. */
typedef struct {
    PyObject *market, *base, *quote; /* base/quote: new references, made on first use */
    int split;                       /* 1 once tried; base NULL then = unknown_symbol */
} DyMarket;

static int dy_trade(FastCall *fc, DyMarket *mk, PyObject *trade, int *is_liq) {
    *is_liq = 0;
    if (!PyDict_CheckExact(trade)) return FX_FALLBACK;
    PyObject *type = fx_get(trade, dy_type);
    /* kind.upper() != "LIQUIDATED": a non-ASCII str could upper() to it */
    if (type == NULL || !PyUnicode_CheckExact(type) || !PyUnicode_IS_ASCII(type))
        return FX_FALLBACK;
    if (!fx_ieq(type, "liquidated")) return FX_OK;
    *is_liq = 1;
    if (!mk->split) {
        /* dydx._pair: market.rpartition("-"), both sides non-empty */
        mk->split = 1;
        PyObject *market = mk->market;
        Py_ssize_t mn = PyUnicode_GET_LENGTH(market);
        Py_ssize_t dash = PyUnicode_FindChar(market, '-', 0, mn, -1);
        if (dash == -2) return FX_ERROR;
        if (dash > 0 && dash < mn - 1) {
            mk->base = PyUnicode_Substring(market, 0, dash);
            if (mk->base == NULL) return FX_ERROR;
            mk->quote = PyUnicode_Substring(market, dash + 1, mn);
            if (mk->quote == NULL) return FX_ERROR;
        }
    }
    if (mk->base == NULL || mk->quote == NULL) return FX_FALLBACK; /* unknown_symbol */
    PyObject *side = fx_order_side(fx_get(trade, dy_side));
    if (side == NULL) return FX_FALLBACK;
    PyObject *size_obj = fx_get(trade, dy_size), *price_obj = fx_get(trade, dy_price);
    double size, price, ts;
    if (size_obj == NULL || price_obj == NULL || !fx_plain_decimal(size_obj, &size) ||
        !fx_plain_decimal(price_obj, &price) || !(size >= 0 && price > 0))
        return FX_FALLBACK;
    if (!dy_iso_ts(fx_get(trade, dy_createdAt), &ts)) return FX_FALLBACK;
    PyObject *trade_id = fx_get(trade, dy_id);
    PyObject *venue_id = fx_nonempty_str(trade_id) ? trade_id : NULL;
    FxEvent ev = {dy_exchange, mk->market, mk->base, mk->quote, FX.s_linear, side, price, 1, size, 1,
                  size * price, ts, 0, size_obj, venue_id};
    return fx_append_event(fc, &ev);
}

/* The trades lists of a frame (dydx._trade_lists): every trade, in order. */
static int dy_frame_trades(FastCall *fc, PyObject *msg, int batch, PyObject *market) {
    PyObject *contents = fx_get(msg, dy_contents);
    if (contents == NULL) return FX_FALLBACK;
    DyMarket mk = {market, NULL, NULL, 0};
    int rc = FX_OK;
    Py_ssize_t nb = 1;
    if (batch) {
        if (!PyList_CheckExact(contents)) rc = FX_FALLBACK;
        else nb = PyList_GET_SIZE(contents);
    }
    for (Py_ssize_t b = 0; rc == FX_OK && b < nb; b++) {
        PyObject *item = batch ? PyList_GET_ITEM(contents, b) : contents;
        PyObject *trades = PyDict_CheckExact(item) ? fx_get(item, dy_trades) : NULL;
        if (trades == NULL || !PyList_CheckExact(trades)) {
            rc = FX_FALLBACK;
            break;
        }
        for (Py_ssize_t i = 0; rc == FX_OK && i < PyList_GET_SIZE(trades); i++) {
            int is_liq;
            rc = dy_trade(fc, &mk, PyList_GET_ITEM(trades, i), &is_liq);
        }
    }
    Py_XDECREF(mk.base);
    Py_XDECREF(mk.quote);
    return rc;
}

static int venue_dydx(FastCall *fc, PyObject *msg) {
    if (!PyDict_CheckExact(msg)) return FX_FALLBACK;
    PyObject *type = fx_get(msg, dy_type);
    if (type == NULL || !PyUnicode_CheckExact(type)) return FX_FALLBACK;
    int batch = 0, subscribed = 0;
    if (fx_eq(type, "channel_data")) {
    } else if (fx_eq(type, "channel_batch_data")) {
        batch = 1;
    } else if (fx_eq(type, "subscribed")) {
        subscribed = 1;
    } else if (fx_eq(type, "connected")) {
        fc->kind = FX.s_info;
        return FX_OK;
    } else if (fx_eq(type, "pong")) {
        fc->kind = FX.s_pong;
        return FX_OK;
    } else if (fx_eq(type, "unsubscribed")) {
        PyObject *id = fx_get(msg, dy_id);
        if (id == NULL) {
            fc->kind = FX.s_info; /* str("") */
        } else if (PyUnicode_CheckExact(id)) {
            int hb = PyUnicode_Tailmatch(id, dy_heartbeat, 0, PY_SSIZE_T_MAX, -1);
            if (hb < 0) return FX_ERROR;
            fc->kind = hb ? FX.s_pong : FX.s_info;
        } else {
            return FX_FALLBACK; /* str() of anything else: left to Python */
        }
        return FX_OK;
    } else {
        return FX_FALLBACK;
    }
    PyObject *channel = fx_get(msg, dy_channel), *market = fx_get(msg, dy_id);
    if (!fx_eq(channel, "v4_trades") || !fx_nonempty_str(market)) return FX_FALLBACK;
    if (subscribed) {
        /* The ack and a snapshot of history: its liquidations are counted, never published.
         * Python skips a malformed old trade; here any doubt falls back. */
        int rc = dy_frame_trades(fc, msg, 0, market);
        if (rc != FX_OK) return rc;
        fc->kind = FX.s_ack;
        fc->snapshot = 1;
        return FX_OK;
    }
    int rc = dy_frame_trades(fc, msg, batch, market);
    if (rc != FX_OK) return rc;
    fc->kind = fc->events != NULL ? FX.s_data : FX.s_info;
    return FX_OK;
}
