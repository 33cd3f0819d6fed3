/* Shared helpers of the compiled parse path (liqstress.streams._fast).
 *
 * The compiled path is an ACCELERATOR, never a second source of truth: each venue function
 * handles only the frames it recognises completely (the usual liquidation frame, pongs) and
 * returns FX_FALLBACK for anything else, including every frame that would become a dead letter.
 * The session then runs the venue's Python parser on the same frame, which stays the reference:
 * tests/test_fastparse.py runs every fixture frame and 10,000 mutated frames per venue through
 * both and requires identical outcomes (events, ids, kinds, dead letters).
 *
 * Rules every venue function follows:
 *   - exact JSON types (PyUnicode_CheckExact, PyLong_CheckExact...): a JSON boolean is never a
 *     number, as in the Python readers;
 *   - a value the Python path would refuse or treat differently -> FX_FALLBACK, never a guess;
 *   - no Python exception may escape: on an allocation failure return FX_ERROR with the error
 *     set (the caller clears it and falls back).
 */
#ifndef LIQSTRESS_FAST_H
#define LIQSTRESS_FAST_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#define FX_OK 0
#define FX_FALLBACK 1
#define FX_ERROR 2

/* Set once by configure(): the classes and constants of the Python side. */
typedef struct {
    PyTypeObject *event_type;   /* liqstress.event.LiquidationEvent (slotted) */
    Py_ssize_t event_off[14];   /* slot offsets, in liqstress.event._FIELDS order */
    PyTypeObject *outcome_type; /* liqstress.streams.session.Outcome (slotted) */
    Py_ssize_t outcome_off[10]; /* frame kind events deadletter reply snapshot_dropped unpriced
                                   prices open_interest skipped */
    PyObject *loads;            /* orjson.loads */
    PyObject *schema_version;   /* int */
    double earliest_ts, max_ahead;
    PyObject *empty_tuple, *zero;
    /* interned strings */
    PyObject *s_long, *s_short, *s_linear, *s_inverse, *s_spot;
    PyObject *s_data, *s_info, *s_pong, *s_ack;
    PyObject *s_instruments, *s_base, *s_quote, *s_market, *s_contract_value;
    PyObject *s_source, *s_recv_ts;
    int configured;
} FastGlobals;

extern FastGlobals FX;

/* One call: what a venue function needs besides the decoded frame. */
typedef struct {
    PyObject *frame;        /* RawFrame (borrowed) */
    PyObject *source;       /* frame.source: the connection URL (borrowed str) */
    double recv_ts;         /* frame.recv_ts */
    PyObject *instruments;  /* meta.instruments: symbol -> Instrument (borrowed dict) */
    /* out: what the venue's Python parse returns as Parsed(kind, events, reply, snapshot) */
    PyObject *kind;         /* borrowed interned kind: FX.s_data / s_info / s_pong / s_ack */
    PyObject *events;       /* new list (fx_append_event makes it), or NULL for none */
    PyObject *reply;        /* new reference to the reply text, or NULL for none */
    int snapshot;           /* 1: the events are history the venue replays (Parsed.snapshot) */
} FastCall;

/* Fields of one event, as make_event takes them (borrowed references). */
typedef struct {
    PyObject *exchange, *symbol, *base, *quote, *market, *side;
    double price;
    int has_qty;
    double qty;
    int has_notional;
    double notional;
    double ts;
    int sampled;
    PyObject *qty_raw;  /* NULL = None */
    PyObject *venue_id; /* NULL = None */
} FxEvent;

static inline PyObject *intern(const char *s) { return PyUnicode_InternFromString(s); }

/* dict[key] for an interned C-string key, borrowed, NULL when absent (never raises for str
 * keys of a real dict). */
static inline PyObject *fx_get(PyObject *dict, PyObject *key) {
    return PyDict_GetItemWithError(dict, key);
}

/* Powers of ten exactly representable as doubles. */
static const double FX_POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                    1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* base.plain_decimal (the fast path of kit.num_str) on the characters s[0..n): at most 64
 * ASCII chars of the form "-"? digits ("." digits)?, as a float equal to Python's float(). 1
 * and *out set, 0 when it is not of that form (the caller falls back).
 *
 * Digits that fit 2**53 with at most 22 decimals are converted as m / 10**k: both are exact
 * doubles and IEEE division rounds correctly, so the result is the correctly rounded value,
 * as float() gives (Clinger's fast path). Longer ones go through PyOS_string_to_double (exact
 * too, but it switches the x87 control word on some builds: ten times slower). */
static int fx_decimal_chars(const char *s, Py_ssize_t n, double *out) {
    if (n == 0 || n > 64) return 0;
    Py_ssize_t i = 0;
    int neg = 0;
    if (s[0] == '-') { neg = 1; i = 1; }
    uint64_t m = 0;
    int exact = 1;
    Py_ssize_t whole = 0, frac = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (m > (UINT64_C(1) << 53) / 10) exact = 0;
        else m = m * 10 + (uint64_t)(s[i] - '0');
        i++; whole++;
    }
    if (whole == 0) return 0;
    if (i < n) {
        if (s[i] != '.') return 0;
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (m > (UINT64_C(1) << 53) / 10) exact = 0;
            else m = m * 10 + (uint64_t)(s[i] - '0');
            i++; frac++;
        }
        if (frac == 0 || i != n) return 0;
    }
    if (exact && m <= (UINT64_C(1) << 53) && frac <= 22) {
        double v = (double)m / FX_POW10[frac];
        *out = neg ? -v : v;
        return 1;
    }
    char buf[72];
    memcpy(buf, s, (size_t)n);
    buf[n] = 0;
    char *end = NULL;
    double v = PyOS_string_to_double(buf, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    if (end != buf + n) return 0;
    *out = v;
    return 1;
}

/* fx_decimal_chars of a str (exact type, ASCII). */
static int fx_plain_decimal(PyObject *val, double *out) {
    if (!PyUnicode_CheckExact(val) || !PyUnicode_IS_ASCII(val)) return 0;
    return fx_decimal_chars((const char *)PyUnicode_1BYTE_DATA(val), PyUnicode_GET_LENGTH(val),
                            out);
}

/* kit.num's accepted values: a JSON float that is finite, or an int with |v| < 2**63, as a
 * double (a bool is never a number). 1 ok, 0 otherwise (fall back). */
static int fx_num(PyObject *val, double *out) {
    if (PyFloat_CheckExact(val)) {
        double v = PyFloat_AS_DOUBLE(val);
        if (!(v - v == 0.0)) return 0;
        *out = v;
        return 1;
    }
    if (PyLong_CheckExact(val)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(val, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) { PyErr_Clear(); return 0; }
        if (v == LLONG_MIN) return 0;
        *out = (double)v;
        return 1;
    }
    return 0;
}

/* kit.ms(..., string=True): a str of 1..16 ASCII digits, milliseconds -> seconds. */
static int fx_str_ms(PyObject *val, double *out) {
    if (!PyUnicode_CheckExact(val) || !PyUnicode_IS_ASCII(val)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(val);
    if (n == 0 || n > 16) return 0;
    const char *s = (const char *)PyUnicode_1BYTE_DATA(val);
    long long v = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = (double)v / 1000.0;
    return 1;
}

/* base.ms for a JSON integer: 0 <= v < 2**63 milliseconds -> seconds. 1 ok, 0 otherwise. */
static int fx_int_ms(PyObject *val, double *out) {
    if (!PyLong_CheckExact(val)) return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(val, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) { PyErr_Clear(); return 0; }
    if (v < 0) return 0;
    *out = (double)v / 1000.0;
    return 1;
}

/* A non-empty exact str. */
static inline int fx_nonempty_str(PyObject *v) {
    return v != NULL && PyUnicode_CheckExact(v) && PyUnicode_GET_LENGTH(v) > 0;
}

/* ASCII case-insensitive equality of a str with a lowercase C literal. */
static int fx_ieq(PyObject *v, const char *lit) {
    if (!PyUnicode_CheckExact(v) || !PyUnicode_IS_ASCII(v)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(v);
    if ((size_t)n != strlen(lit)) return 0;
    const char *s = (const char *)PyUnicode_1BYTE_DATA(v);
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != lit[i]) return 0;
    }
    return 1;
}

/* kit.side_from_order_side: the position an ORDER side closes (a forced SELL closes a long),
 * as FX.s_long / FX.s_short; NULL (fall back) for anything else, a missing value included. */
static inline PyObject *fx_order_side(PyObject *v) {
    if (v == NULL) return NULL;
    if (fx_ieq(v, "sell")) return FX.s_long;
    if (fx_ieq(v, "buy")) return FX.s_short;
    return NULL;
}

/* kit.side_from_position_side: buy/long is a long, sell/short a short; NULL otherwise. */
static inline PyObject *fx_position_side(PyObject *v) {
    if (v == NULL) return NULL;
    if (fx_ieq(v, "buy") || fx_ieq(v, "long")) return FX.s_long;
    if (fx_ieq(v, "sell") || fx_ieq(v, "short")) return FX.s_short;
    return NULL;
}

/* Equality of a str with a C literal (exact). */
static int fx_eq(PyObject *v, const char *lit) {
    if (v == NULL || !PyUnicode_CheckExact(v)) return 0;
    return PyUnicode_CompareWithASCIIString(v, lit) == 0;
}

/* make_event for one event of the frame, appended to fc->events (recv_ts is the frame's).
 * FX_OK; FX_FALLBACK where make_event's fast path would not take the values (then the Python
 * path decides, with its errors); FX_ERROR on a Python error. */
int fx_append_event(FastCall *fc, const FxEvent *e);

#endif
