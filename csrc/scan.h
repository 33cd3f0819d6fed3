/* A strict scanner for a subset of JSON, for venue frames whose usual form is small and flat
 * (Binance's forceOrder): it reads the fields a venue needs straight from the text, without
 * building the dict orjson would (half the cost of such a frame).
 *
 * It accepts only what orjson accepts AND reads the same way, and declines (returns 0, the
 * caller then takes the orjson path) everything else:
 *   - the text must be ASCII (a str whose kind is 1-byte ASCII);
 *   - strings without backslash escapes and without control characters (orjson would unescape
 *     or refuse them);
 *   - numbers of the RFC 8259 grammar; literals true/false/null; objects and arrays nested at
 *     most SCAN_MAX_DEPTH deep;
 *   - JSON whitespace only (space, tab, CR, LF), nothing after the top-level value.
 * A key the venue reads that appears twice declines too (a dict keeps the last one; not
 * worth the special case). */
#ifndef LIQSTRESS_SCAN_H
#define LIQSTRESS_SCAN_H

#include <stddef.h>
#include <string.h>

#define SCAN_MAX_DEPTH 32

typedef struct {
    const char *p, *end;
} Scan;

/* A token the venue reads: where it is in the text and what kind it is. */
typedef struct {
    const char *s; /* start (strings: inside the quotes) */
    Py_ssize_t n;  /* length */
    char kind;     /* 's' string, 'i' integer, 'f' other number, 'o' object, 'a' array,
                      'l' literal, 0 absent */
} Tok;

static inline void scan_ws(Scan *sc) {
    while (sc->p < sc->end &&
           (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\n' || *sc->p == '\r'))
        sc->p++;
}

static inline int scan_char(Scan *sc, char c) {
    scan_ws(sc);
    if (sc->p < sc->end && *sc->p == c) {
        sc->p++;
        return 1;
    }
    return 0;
}

/* A string at sc->p (after whitespace): sets *t to its contents. */
static int scan_string(Scan *sc, Tok *t) {
    scan_ws(sc);
    if (sc->p >= sc->end || *sc->p != '"') return 0;
    const char *s = ++sc->p;
    while (sc->p < sc->end) {
        unsigned char c = (unsigned char)*sc->p;
        if (c == '"') {
            t->s = s;
            t->n = sc->p - s;
            t->kind = 's';
            sc->p++;
            return 1;
        }
        if (c == '\\' || c < 0x20 || c >= 0x80) return 0;
        sc->p++;
    }
    return 0;
}

static inline int scan_digit(const Scan *sc) {
    return sc->p < sc->end && *sc->p >= '0' && *sc->p <= '9';
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(Scan *sc, Tok *t) {
    const char *s = sc->p;
    int is_int = 1;
    if (sc->p < sc->end && *sc->p == '-') sc->p++;
    if (!scan_digit(sc)) return 0;
    if (*sc->p == '0') {
        sc->p++;
    } else {
        while (scan_digit(sc)) sc->p++;
    }
    if (sc->p < sc->end && *sc->p == '.') {
        sc->p++;
        is_int = 0;
        if (!scan_digit(sc)) return 0;
        while (scan_digit(sc)) sc->p++;
    }
    if (sc->p < sc->end && (*sc->p == 'e' || *sc->p == 'E')) {
        sc->p++;
        is_int = 0;
        if (sc->p < sc->end && (*sc->p == '+' || *sc->p == '-')) sc->p++;
        if (!scan_digit(sc)) return 0;
        while (scan_digit(sc)) sc->p++;
    }
    t->s = s;
    t->n = sc->p - s;
    t->kind = is_int ? 'i' : 'f';
    return 1;
}

static int scan_value(Scan *sc, Tok *t, int depth);

/* An object whose members are all skipped (or read by the caller through scan_members). */
static int scan_skip_object(Scan *sc, int depth) {
    if (scan_char(sc, '}')) return 1;
    for (;;) {
        Tok key, val;
        if (!scan_string(sc, &key) || !scan_char(sc, ':') || !scan_value(sc, &val, depth + 1))
            return 0;
        if (scan_char(sc, ',')) continue;
        return scan_char(sc, '}');
    }
}

static int scan_skip_array(Scan *sc, int depth) {
    if (scan_char(sc, ']')) return 1;
    for (;;) {
        Tok val;
        if (!scan_value(sc, &val, depth + 1)) return 0;
        if (scan_char(sc, ',')) continue;
        return scan_char(sc, ']');
    }
}

/* Any value; an object or array is consumed whole (t->s/t->n span it). */
static int scan_value(Scan *sc, Tok *t, int depth) {
    if (depth > SCAN_MAX_DEPTH) return 0;
    scan_ws(sc);
    if (sc->p >= sc->end) return 0;
    const char *s = sc->p;
    switch (*sc->p) {
    case '"':
        return scan_string(sc, t);
    case '{':
        sc->p++;
        if (!scan_skip_object(sc, depth)) return 0;
        t->kind = 'o';
        break;
    case '[':
        sc->p++;
        if (!scan_skip_array(sc, depth)) return 0;
        t->kind = 'a';
        break;
    case 't':
    case 'f':
    case 'n': {
        const char *lit = *sc->p == 't' ? "true" : *sc->p == 'f' ? "false" : "null";
        size_t n = strlen(lit);
        if ((size_t)(sc->end - sc->p) < n || memcmp(sc->p, lit, n) != 0) return 0;
        sc->p += n;
        t->kind = 'l';
        break;
    }
    default:
        return scan_number(sc, t);
    }
    t->s = s;
    t->n = sc->p - s;
    return 1;
}

/* The members of an object (its '{' already consumed): each key found in `keys` (n_keys of
 * them) fills the matching Tok of `out` (kind 0 = absent); an object value is left
 * unconsumed when its key's `descend` flag is set (out->s points at its '{', and the caller
 * must call scan_members on it next: only one such key per object). Returns 1 at the closing
 * '}', 0 to decline. */
typedef struct {
    const char *name;
    int descend;
} ScanKey;

static int scan_key_index(const Tok *key, const ScanKey *keys, int n_keys) {
    for (int i = 0; i < n_keys; i++) {
        size_t len = strlen(keys[i].name);
        if ((size_t)key->n == len && memcmp(key->s, keys[i].name, len) == 0) return i;
    }
    return -1;
}

static int scan_tail(Scan *sc) {
    scan_ws(sc);
    return sc->p == sc->end;
}

#endif
