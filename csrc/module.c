/* liqstress.streams._fast: the compiled parse path (see fast.h for the rules).
 *
 * Python entry points:
 *   configure(event_type, event_fields, outcome_type, outcome_fields, loads, schema_version,
 *             earliest_ts, max_ahead)  -- once, from streams/session.py
 *   Accel(venue, instruments, subscribed_at, max_notional, drop_before_subscribe,
 *         max_inflated, fallback) -- a VenueSession's process(frame) (VENUES below)
 *   event_id(...), blake2b_hex(...) -- the id hashing, for the tests
 */
#include "fast.h"
#include "blake2b.h"
#include "scan.h"
#include <zlib.h>

FastGlobals FX;

/* ---- event ids ---------------------------------------------------------------------------- */

/* Appends the UTF-8 of str(obj) the way an f-string formats it, for the objects parsers pass
 * (str, float, int, None). Returns 0, or -1 to fall back. */
typedef struct {
    char *buf;
    size_t len, cap;
    char small[256];
} Buf;

static int buf_put(Buf *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        char *nb = (char *)PyMem_Malloc(cap);
        if (nb == NULL) return -1;
        memcpy(nb, b->buf, b->len);
        if (b->buf != b->small) PyMem_Free(b->buf);
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    return 0;
}

static int buf_str(Buf *b, PyObject *s) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL) { PyErr_Clear(); return -1; }  /* lone surrogates: Python would raise too */
    return buf_put(b, u, (size_t)n);
}

static int buf_float(Buf *b, double x) {
    char *r = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (r == NULL) { PyErr_Clear(); return -1; }
    int rc = buf_put(b, r, strlen(r));
    PyMem_Free(r);
    return rc;
}

static int buf_obj(Buf *b, PyObject *o) {
    if (o == NULL || o == Py_None) return buf_put(b, "None", 4);
    if (PyUnicode_CheckExact(o)) return buf_str(b, o);
    if (PyFloat_CheckExact(o)) return buf_float(b, PyFloat_AS_DOUBLE(o));
    if (PyLong_CheckExact(o)) {
        PyObject *s = PyObject_Str(o);
        if (s == NULL) { PyErr_Clear(); return -1; }
        int rc = buf_str(b, s);
        Py_DECREF(s);
        return rc;
    }
    return -1;
}

/* round(x) as Python rounds a float (half to even), as a decimal integer. -1 to fall back. */
static int buf_round_ms(Buf *b, double ts) {
    double x = ts * 1000.0;
    double r = round(x);
    if (fabs(x - r) == 0.5) r = 2.0 * round(x / 2.0);
    if (!(fabs(r) < 9.0e18)) return -1;
    long long v = (long long)r;
    char tmp[24];
    int n = 0, neg = v < 0;
    unsigned long long u = neg ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg) tmp[sizeof tmp - 1 - n++] = '-';
    return buf_put(b, tmp + sizeof tmp - n, (size_t)n);
}

static const char HEX[] = "0123456789abcdef";

/* The id of liqstress.event.event_id / make_event: blake2b(basis, digest_size=12).hexdigest().
 * qty_obj is what make_event formats (qty_raw, else the qty float, else None). */
static PyObject *id_of(PyObject *exchange, PyObject *symbol, double ts, PyObject *side,
                       double price, PyObject *qty_obj, PyObject *venue_id, int *fallback) {
    Buf b;
    b.buf = b.small;
    b.len = 0;
    b.cap = sizeof b.small;
    int bad = buf_str(&b, exchange) || buf_put(&b, "|", 1) || buf_str(&b, symbol) ||
              buf_put(&b, "|", 1);
    if (!bad) {
        int has_id = venue_id != NULL && venue_id != Py_None ? PyObject_IsTrue(venue_id) : 0;
        if (has_id < 0) {
            PyErr_Clear();
            bad = 1;
        } else if (has_id) { /* `if venue_id:` in event_id: an empty id is no id */
            bad = buf_obj(&b, venue_id);
        } else {
            bad = buf_round_ms(&b, ts) || buf_put(&b, "|", 1) || buf_str(&b, side) ||
                  buf_put(&b, "|", 1) || buf_float(&b, price) || buf_put(&b, "|", 1) ||
                  buf_obj(&b, qty_obj);
        }
    }
    PyObject *out = NULL;
    if (!bad) {
        b2b_ctx ctx;
        uint8_t digest[12];
        b2b_init(&ctx, 12);
        b2b_update(&ctx, (const uint8_t *)b.buf, b.len);
        b2b_final(&ctx, digest);
        out = PyUnicode_New(24, 127);
        if (out != NULL) {
            Py_UCS1 *d = PyUnicode_1BYTE_DATA(out);
            for (int i = 0; i < 12; i++) {
                d[2 * i] = (Py_UCS1)HEX[digest[i] >> 4];
                d[2 * i + 1] = (Py_UCS1)HEX[digest[i] & 15];
            }
        }
    } else {
        *fallback = 1;
    }
    if (b.buf != b.small) PyMem_Free(b.buf);
    return out;
}

/* ---- objects -------------------------------------------------------------------------------- */

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* Stores a NEW reference in a slot of a freshly allocated object (slots start NULL). */
static inline void put(PyObject *obj, Py_ssize_t off, PyObject *val) { SLOT(obj, off) = val; }

/* make_event's fast path: the event it builds, or NULL with *fallback set when the inputs are
 * not the plain floats and labels that path takes (then Python's make_event decides). */
static PyObject *fx_event(const FxEvent *e, double recv_ts, int *fallback) {
    double inf = INFINITY;
    if (!(0.0 < e->price && e->price < inf && 0.0 < e->ts && e->ts < inf &&
          (e->side == FX.s_long || e->side == FX.s_short) &&
          (e->market == FX.s_linear || e->market == FX.s_inverse || e->market == FX.s_spot) &&
          (!e->has_qty || (0.0 <= e->qty && e->qty < inf)) &&
          (!e->has_notional || (0.0 <= e->notional && e->notional < inf)))) {
        *fallback = 1;
        return NULL;
    }
    PyObject *qty_obj = e->qty_raw;
    PyObject *qty_float = NULL;
    if (qty_obj == NULL && e->has_qty) {
        qty_float = PyFloat_FromDouble(e->qty);
        if (qty_float == NULL) return NULL;
        qty_obj = qty_float;
    }
    PyObject *id = id_of(e->exchange, e->symbol, e->ts, e->side, e->price, qty_obj, e->venue_id,
                         fallback);
    Py_XDECREF(qty_float);
    if (id == NULL) return NULL;
    PyTypeObject *tp = FX.event_type;
    PyObject *ev = tp->tp_alloc(tp, 0);
    if (ev == NULL) { Py_DECREF(id); return NULL; }
    const Py_ssize_t *o = FX.event_off;
    PyObject *price = PyFloat_FromDouble(e->price);
    PyObject *qty = e->has_qty ? PyFloat_FromDouble(e->qty) : Py_NewRef(Py_None);
    PyObject *notional = e->has_notional ? PyFloat_FromDouble(e->notional) : Py_NewRef(Py_None);
    PyObject *ts = PyFloat_FromDouble(e->ts);
    PyObject *recv = PyFloat_FromDouble(recv_ts);
    if (price == NULL || qty == NULL || notional == NULL || ts == NULL || recv == NULL) {
        Py_XDECREF(price); Py_XDECREF(qty); Py_XDECREF(notional); Py_XDECREF(ts);
        Py_XDECREF(recv);
        Py_DECREF(id);
        Py_DECREF(ev);
        return NULL;
    }
    put(ev, o[0], Py_NewRef(FX.schema_version));
    put(ev, o[1], id);
    put(ev, o[2], Py_NewRef(e->exchange));
    put(ev, o[3], Py_NewRef(e->symbol));
    put(ev, o[4], Py_NewRef(e->base));
    put(ev, o[5], Py_NewRef(e->quote));
    put(ev, o[6], Py_NewRef(e->market));
    put(ev, o[7], Py_NewRef(e->side));
    put(ev, o[8], price);
    put(ev, o[9], qty);
    put(ev, o[10], notional);
    put(ev, o[11], ts);
    put(ev, o[12], recv);
    put(ev, o[13], Py_NewRef(e->sampled ? Py_True : Py_False));
    return ev;
}

/* Builds the event and appends it to fc->events (recv_ts from the call). FX_OK, FX_FALLBACK or
 * FX_ERROR. */
int fx_append_event(FastCall *fc, const FxEvent *e) {
    int fallback = 0;
    PyObject *ev = fx_event(e, fc->recv_ts, &fallback);
    if (ev == NULL) return fallback ? FX_FALLBACK : FX_ERROR;
    if (fc->events == NULL) {
        fc->events = PyList_New(0);
        if (fc->events == NULL) { Py_DECREF(ev); return FX_ERROR; }
    }
    int rc = PyList_Append(fc->events, ev);
    Py_DECREF(ev);
    return rc < 0 ? FX_ERROR : FX_OK;
}

/* ---- venues --------------------------------------------------------------------------------- */

#include "venue_binance.c"
#include "venue_bybit.c"
#include "venue_okx.c"
#include "venue_binance_coinm.c"
#include "venue_deribit.c"
#include "venue_bitmex.c"
#include "venue_gate.c"
#include "venue_bitget.c"
#include "venue_htx.c"
#include "venue_dydx.c"
#include "venue_kraken_futures.c"
#include "venue_hyperliquid.c"

typedef int (*VenueFn)(FastCall *fc, PyObject *msg);
/* Optional: the venue's usual frame read straight from ASCII text (scan.h), before orjson;
 * FX_FALLBACK there means "decode it with orjson and ask the VenueFn". */
typedef int (*VenueTextFn)(FastCall *fc, const char *text, Py_ssize_t len);

typedef struct {
    const char *name;
    VenueFn fn;
    VenueTextFn text;
} VenueDef;

/* Inflates a gzip frame the way session.inflate's common case does: ONE complete member,
 * nothing after it, at most `limit` bytes. Anything else (several members, padding, errors,
 * above the limit) returns NULL without an error: the Python path decides (and dead-letters). */
static PyObject *gunzip_one(PyObject *data, Py_ssize_t limit) {
    const char *in = PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 31) != Z_OK) return NULL; /* 31: gzip header and trailer only */
    size_t cap = (size_t)(n * 4 + 256);
    if (cap > (size_t)limit + 1) cap = (size_t)limit + 1;
    char *out = (char *)PyMem_Malloc(cap);
    if (out == NULL) { inflateEnd(&zs); return NULL; }
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    size_t have = 0;
    int rc;
    for (;;) {
        zs.next_out = (Bytef *)(out + have);
        zs.avail_out = (uInt)(cap - have);
        rc = inflate(&zs, Z_NO_FLUSH);
        have = cap - zs.avail_out;
        if (rc == Z_STREAM_END || rc != Z_OK) break;
        if (zs.avail_out == 0) {
            if (cap >= (size_t)limit + 1) break; /* above the limit */
            size_t ncap = cap * 2 > (size_t)limit + 1 ? (size_t)limit + 1 : cap * 2;
            char *nout = (char *)PyMem_Realloc(out, ncap);
            if (nout == NULL) break;
            out = nout;
            cap = ncap;
        } else if (zs.avail_in == 0) {
            break; /* truncated */
        }
    }
    PyObject *text = NULL;
    if (rc == Z_STREAM_END && zs.avail_in == 0 && have <= (size_t)limit) {
        text = PyUnicode_DecodeUTF8(out, (Py_ssize_t)have, NULL); /* strict, as _utf8 */
        if (text == NULL) PyErr_Clear();
    }
    inflateEnd(&zs);
    PyMem_Free(out);
    return text;
}

/* The session's per-frame work on the compiled path: decode (gzip included), the venue
 * function, then the session's own steps (the subscribe-ack time, the history cut-off,
 * plausibility) and the Outcome. A new Outcome, or NULL WITHOUT an error set when the Python
 * path must handle the frame (every error is cleared: the fallback re-parses from scratch). */
static PyObject *fast_outcome(const VenueDef *venue, PyObject *frame, PyObject *data, PyObject *source,
                              PyObject *recv_obj, PyObject *instruments, double max_notional,
                              PyObject *subscribed_at, int drop, Py_ssize_t max_inflated) {
    PyObject *text;
    if (PyUnicode_CheckExact(data)) {
        text = Py_NewRef(data);
    } else if (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) >= 2 &&
               (unsigned char)PyBytes_AS_STRING(data)[0] == 0x1f &&
               (unsigned char)PyBytes_AS_STRING(data)[1] == 0x8b) {
        text = gunzip_one(data, max_inflated);
        if (text == NULL) return NULL;
    } else {
        return NULL;
    }
    double recv_ts = PyFloat_AS_DOUBLE(recv_obj);
    FastCall fc = {frame, source, recv_ts, instruments, NULL, NULL, NULL, 0};
    int rc = FX_FALLBACK;
    if (venue->text != NULL && PyUnicode_IS_ASCII(text)) {
        rc = venue->text(&fc, (const char *)PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text));
        if (rc == FX_FALLBACK) { /* nothing kept from the attempt */
            Py_CLEAR(fc.events);
            Py_CLEAR(fc.reply);
            fc.kind = NULL;
            fc.snapshot = 0;
        }
    }
    if (rc == FX_FALLBACK) {
        PyObject *msg = PyObject_CallOneArg(FX.loads, text);
        if (msg != NULL) {
            rc = venue->fn(&fc, msg);
            Py_DECREF(msg);
        }
    }
    Py_DECREF(text);
    PyObject *result = NULL;
    if (rc != FX_OK || fc.kind == NULL) goto fallback;
    if (fc.kind == FX.s_ack && PyDict_SetItem(subscribed_at, source, recv_obj) < 0) goto fallback;
    Py_ssize_t n = fc.events ? PyList_GET_SIZE(fc.events) : 0;
    Py_ssize_t dropped = 0, unpriced = 0;
    if (n && fc.snapshot) {
        dropped = n;
        Py_CLEAR(fc.events);
        n = 0;
    }
    PyObject *cutoff_obj = n && drop ? PyDict_GetItemWithError(subscribed_at, source) : NULL;
    if (cutoff_obj != NULL) {
        /* drop_before_subscribe venues: events dated before the subscribe ack are history. */
        double cutoff = PyFloat_AsDouble(cutoff_obj);
        if (cutoff == -1.0 && PyErr_Occurred()) goto fallback;
        PyObject *kept = PyList_New(0);
        if (kept == NULL) goto fallback;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *ev = PyList_GET_ITEM(fc.events, i);
            if (PyFloat_AS_DOUBLE(SLOT(ev, FX.event_off[11])) >= cutoff &&
                PyList_Append(kept, ev) < 0) {
                Py_DECREF(kept);
                goto fallback;
            }
        }
        dropped = n - PyList_GET_SIZE(kept);
        Py_SETREF(fc.events, kept);
        n = PyList_GET_SIZE(kept);
    } else if (PyErr_Occurred()) {
        goto fallback;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *ev = PyList_GET_ITEM(fc.events, i);
        double ts = PyFloat_AS_DOUBLE(SLOT(ev, FX.event_off[11]));
        PyObject *notional = SLOT(ev, FX.event_off[10]);
        if (!(FX.earliest_ts <= ts && ts <= recv_ts + FX.max_ahead) ||
            (notional != Py_None && PyFloat_AS_DOUBLE(notional) > max_notional))
            goto fallback; /* implausible: the Python path builds the dead letter */
        if (notional == Py_None) unpriced++;
    }
    PyTypeObject *tp = FX.outcome_type;
    PyObject *out = tp->tp_alloc(tp, 0);
    if (out == NULL) goto fallback;
    const Py_ssize_t *o = FX.outcome_off;
    PyObject *prices = PyList_New(0);
    PyObject *dropped_obj = PyLong_FromSsize_t(dropped);
    PyObject *unpriced_obj = PyLong_FromSsize_t(unpriced);
    PyObject *events = fc.events ? Py_NewRef(fc.events) : PyList_New(0);
    if (prices == NULL || dropped_obj == NULL || unpriced_obj == NULL || events == NULL) {
        Py_XDECREF(prices); Py_XDECREF(dropped_obj); Py_XDECREF(unpriced_obj); Py_XDECREF(events);
        Py_DECREF(out);
        goto fallback;
    }
    put(out, o[0], Py_NewRef(frame));
    put(out, o[1], Py_NewRef(fc.kind));
    put(out, o[2], events);
    put(out, o[3], Py_NewRef(Py_None));
    put(out, o[4], fc.reply ? Py_NewRef(fc.reply) : Py_NewRef(Py_None));
    put(out, o[5], dropped_obj);
    put(out, o[6], unpriced_obj);
    put(out, o[7], prices);
    put(out, o[8], Py_NewRef(FX.empty_tuple));
    put(out, o[9], Py_NewRef(FX.zero));
    result = out;
fallback:
    Py_XDECREF(fc.events);
    Py_XDECREF(fc.reply);
    if (result == NULL) PyErr_Clear();
    return result;
}

/* frame.source and frame.recv_ts as the compiled path needs them (new references), or 0. */
static int frame_fields(PyObject *frame, PyObject **source, PyObject **recv_obj) {
    *source = PyObject_GetAttr(frame, FX.s_source);
    *recv_obj = *source ? PyObject_GetAttr(frame, FX.s_recv_ts) : NULL;
    if (*recv_obj == NULL || !PyUnicode_CheckExact(*source) || !PyFloat_CheckExact(*recv_obj)) {
        Py_CLEAR(*source);
        Py_CLEAR(*recv_obj);
        PyErr_Clear();
        return 0;
    }
    return 1;
}



/* Every venue with its compiled functions (the text reader where there is one). */
static const VenueDef VENUES[] = {
    {"binance", venue_binance, venue_binance_text},
    {"bybit", venue_bybit, NULL},
    {"okx", venue_okx, NULL},
    {"binance_coinm", venue_binance_coinm, NULL},
    {"deribit", venue_deribit, NULL},
    {"bitmex", venue_bitmex, NULL},
    {"gate", venue_gate, NULL},
    {"bitget", venue_bitget, NULL},
    {"htx", venue_htx, NULL},
    {"dydx", venue_dydx, NULL},
    {"kraken_futures", venue_kraken_futures, NULL},
    {"hyperliquid", venue_hyperliquid, NULL},
};


/* ---- the per-session accelerator -------------------------------------------------------- */


/* Accel(venue, instruments, subscribed_at, max_notional, drop_before_subscribe, max_inflated,
 *       fallback): a VenueSession's ``process`` (set as an instance attribute, so a frame costs
 * no Python call): REST bodies and every frame the compiled path declines go to ``fallback``
 * (the session's Python method). ``taken``/``fallbacks`` count both. */
typedef struct {
    PyObject_HEAD
    const VenueDef *venue;
    PyObject *instruments, *subscribed_at, *fallback;
    double max_notional;
    int drop;
    Py_ssize_t max_inflated;
    Py_ssize_t taken, fallbacks;
    vectorcallfunc vectorcall;
} Accel;

static PyObject *s_data_attr, *s_http, *s_https;

static PyObject *accel_call(PyObject *op, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames) {
    Accel *self = (Accel *)op;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "process(frame) takes one frame");
        return NULL;
    }
    PyObject *frame = args[0], *source, *recv_obj, *out = NULL;
    if (frame_fields(frame, &source, &recv_obj)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(source);
        /* REST bodies (metadata, open interest) always take the Python path */
        if (PyUnicode_Tailmatch(source, s_http, 0, n, -1) != 1 &&
            PyUnicode_Tailmatch(source, s_https, 0, n, -1) != 1) {
            PyObject *data = PyObject_GetAttr(frame, s_data_attr);
            if (data != NULL) {
                out = fast_outcome(self->venue, frame, data, source, recv_obj, self->instruments,
                                   self->max_notional, self->subscribed_at, self->drop,
                                   self->max_inflated);
                Py_DECREF(data);
            }
            PyErr_Clear();
        }
        Py_DECREF(source);
        Py_DECREF(recv_obj);
    }
    if (out != NULL) {
        self->taken++;
        return out;
    }
    self->fallbacks++;
    return PyObject_CallOneArg(self->fallback, frame);
}

static PyObject *accel_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    const char *name;
    PyObject *instruments, *subscribed_at, *fallback;
    double max_notional;
    int drop;
    Py_ssize_t max_inflated;
    if (!FX.configured) {
        PyErr_SetString(PyExc_RuntimeError, "liqstress.streams._fast is not configured");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "sO!O!dpnO:Accel", &name, &PyDict_Type, &instruments,
                          &PyDict_Type, &subscribed_at, &max_notional, &drop, &max_inflated,
                          &fallback))
        return NULL;
    const VenueDef *venue = NULL;
    for (size_t i = 0; i < sizeof VENUES / sizeof VENUES[0]; i++)
        if (strcmp(VENUES[i].name, name) == 0) venue = &VENUES[i];
    if (venue == NULL) {
        PyErr_Format(PyExc_ValueError, "no compiled parser named %s", name);
        return NULL;
    }
    Accel *self = (Accel *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->venue = venue;
    self->instruments = Py_NewRef(instruments);
    self->subscribed_at = Py_NewRef(subscribed_at);
    self->fallback = Py_NewRef(fallback);
    self->max_notional = max_notional;
    self->drop = drop;
    self->max_inflated = max_inflated;
    self->vectorcall = accel_call;
    return (PyObject *)self;
}

static int accel_traverse(PyObject *op, visitproc visit, void *arg) {
    Accel *self = (Accel *)op;
    Py_VISIT(self->instruments);
    Py_VISIT(self->subscribed_at);
    Py_VISIT(self->fallback);
    return 0;
}

static int accel_clear(PyObject *op) {
    Accel *self = (Accel *)op;
    Py_CLEAR(self->instruments);
    Py_CLEAR(self->subscribed_at);
    Py_CLEAR(self->fallback);
    return 0;
}

static void accel_dealloc(PyObject *op) {
    PyObject_GC_UnTrack(op);
    accel_clear(op);
    Py_TYPE(op)->tp_free(op);
}

static PyMemberDef accel_members[] = {
    {"taken", T_PYSSIZET, offsetof(Accel, taken), READONLY, "frames the compiled path took"},
    {"fallbacks", T_PYSSIZET, offsetof(Accel, fallbacks), READONLY,
     "frames handed to the Python path"},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject AccelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "liqstress.streams._fast.Accel",
    .tp_basicsize = sizeof(Accel),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A VenueSession's process(frame) on the compiled path.",
    .tp_new = accel_new,
    .tp_traverse = accel_traverse,
    .tp_clear = accel_clear,
    .tp_dealloc = accel_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Accel, vectorcall),
    .tp_members = accel_members,
};

/* ---- configuration and test entry points ---------------------------------------------------- */

static int offsets_of(PyTypeObject *tp, PyObject *names, Py_ssize_t *out, Py_ssize_t n) {
    if (!PyTuple_Check(names) || PyTuple_GET_SIZE(names) != n) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd slot names", tp->tp_name, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *descr = PyObject_GetAttr((PyObject *)tp, PyTuple_GET_ITEM(names, i));
        if (descr == NULL) return -1;
        /* Only a plain object slot (a member descriptor of type T_OBJECT_EX) may be written
         * by offset: anything else (a property, a descriptor of another kind) is refused. */
        if (Py_TYPE(descr) != &PyMemberDescr_Type) {
            Py_DECREF(descr);
            PyErr_Format(PyExc_TypeError, "%s.%U is not a slot", tp->tp_name,
                         PyTuple_GET_ITEM(names, i));
            return -1;
        }
        PyMemberDef *def = ((PyMemberDescrObject *)descr)->d_member;
        if (def->type != T_OBJECT_EX) {
            Py_DECREF(descr);
            PyErr_Format(PyExc_TypeError, "%s.%U is not an object slot", tp->tp_name,
                         PyTuple_GET_ITEM(names, i));
            return -1;
        }
        out[i] = def->offset;
        Py_DECREF(descr);
    }
    return 0;
}

static PyObject *py_configure(PyObject *self, PyObject *args) {
    PyObject *event_type, *event_fields, *outcome_type, *outcome_fields, *loads, *version;
    double earliest, ahead;
    if (!PyArg_ParseTuple(args, "O!OO!OOOdd", &PyType_Type, &event_type, &event_fields,
                          &PyType_Type, &outcome_type, &outcome_fields, &loads, &version,
                          &earliest, &ahead))
        return NULL;
    if (offsets_of((PyTypeObject *)event_type, event_fields, FX.event_off, 14) < 0) return NULL;
    if (offsets_of((PyTypeObject *)outcome_type, outcome_fields, FX.outcome_off, 10) < 0)
        return NULL;
    Py_XSETREF(FX.event_type, (PyTypeObject *)Py_NewRef(event_type));
    Py_XSETREF(FX.outcome_type, (PyTypeObject *)Py_NewRef(outcome_type));
    Py_XSETREF(FX.loads, Py_NewRef(loads));
    Py_XSETREF(FX.schema_version, Py_NewRef(version));
    FX.earliest_ts = earliest;
    FX.max_ahead = ahead;
    FX.configured = 1;
    Py_RETURN_NONE;
}

static PyObject *py_event_id(PyObject *self, PyObject *args) {
    PyObject *exchange, *symbol, *side, *qty, *venue_id;
    double ts, price;
    if (!PyArg_ParseTuple(args, "UUdUdOO", &exchange, &symbol, &ts, &side, &price, &qty,
                          &venue_id))
        return NULL;
    int fallback = 0;
    PyObject *id = id_of(exchange, symbol, ts, side, price, qty, venue_id, &fallback);
    if (id == NULL && fallback) Py_RETURN_NONE;
    return id;
}

static PyObject *py_blake2b_hex(PyObject *self, PyObject *args) {
    const char *data;
    Py_ssize_t n;
    int size = 12;
    if (!PyArg_ParseTuple(args, "y#|i", &data, &n, &size)) return NULL;
    if (size < 1 || size > 64) {
        PyErr_SetString(PyExc_ValueError, "digest size must be 1..64");
        return NULL;
    }
    b2b_ctx ctx;
    uint8_t digest[64];
    b2b_init(&ctx, (size_t)size);
    b2b_update(&ctx, (const uint8_t *)data, (size_t)n);
    b2b_final(&ctx, digest);
    char hex[129];
    for (int i = 0; i < size; i++) {
        hex[2 * i] = HEX[digest[i] >> 4];
        hex[2 * i + 1] = HEX[digest[i] & 15];
    }
    return PyUnicode_FromStringAndSize(hex, 2 * size);
}

static PyMethodDef methods[] = {
    {"configure", py_configure, METH_VARARGS, "Set the classes and constants (once)."},
    {"event_id", py_event_id, METH_VARARGS, "event_id's basis and hash, compiled (tests)."},
    {"blake2b_hex", py_blake2b_hex, METH_VARARGS, "hashlib.blake2b(data, digest_size).hexdigest()"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_fast",
                                       "The compiled parse path (csrc/fast.h).", -1,
                                       methods};

PyMODINIT_FUNC PyInit__fast(void) {
    if (PyType_Ready(&AccelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Accel", (PyObject *)&AccelType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    s_data_attr = intern("data");
    s_http = intern("http://");
    s_https = intern("https://");
    FX.empty_tuple = PyTuple_New(0);
    FX.zero = PyLong_FromLong(0);
    FX.s_long = intern("long");
    FX.s_short = intern("short");
    FX.s_linear = intern("linear");
    FX.s_inverse = intern("inverse");
    FX.s_spot = intern("spot");
    FX.s_data = intern("data");
    FX.s_info = intern("info");
    FX.s_pong = intern("pong");
    FX.s_ack = intern("ack");
    FX.s_instruments = intern("instruments");
    FX.s_base = intern("base");
    FX.s_quote = intern("quote");
    FX.s_market = intern("market");
    FX.s_contract_value = intern("contract_value");
    FX.s_source = intern("source");
    FX.s_recv_ts = intern("recv_ts");
    int (*const inits[])(void) = {
        venue_binance_init, venue_bybit_init,  venue_okx_init,  venue_binance_coinm_init,
        venue_deribit_init, venue_bitmex_init, venue_gate_init, venue_bitget_init,
        venue_htx_init,     venue_dydx_init,   venue_kraken_futures_init,
        venue_hyperliquid_init};
    int failed = PyErr_Occurred() != NULL;
    for (size_t i = 0; !failed && i < sizeof inits / sizeof inits[0]; i++) failed = inits[i]() < 0;
    if (failed) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
