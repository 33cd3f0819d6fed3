/* BLAKE2b as specified in RFC 7693 (unkeyed, any digest length 1..64), written from the RFC's
 * description. Event ids are blake2b(..., digest_size=12) hex digests (liqstress/event.py) and
 * the compiled parse path must give the very same ids without a round trip through hashlib;
 * tests/test_fastparse.py checks it against hashlib. */
#ifndef LIQSTRESS_BLAKE2B_H
#define LIQSTRESS_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    uint8_t b[128];
    uint64_t h[8];
    uint64_t t[2];
    size_t c;
    size_t outlen;
} b2b_ctx;

static const uint64_t b2b_iv[8] = {
    0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL,
    0xA54FF53A5F1D36F1ULL, 0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL,
    0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};

static const uint8_t b2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

#define B2B_ROTR64(x, y) (((x) >> (y)) ^ ((x) << (64 - (y))))

static uint64_t b2b_load64(const uint8_t *p) {
    return ((uint64_t)p[0]) ^ ((uint64_t)p[1] << 8) ^ ((uint64_t)p[2] << 16) ^
           ((uint64_t)p[3] << 24) ^ ((uint64_t)p[4] << 32) ^ ((uint64_t)p[5] << 40) ^
           ((uint64_t)p[6] << 48) ^ ((uint64_t)p[7] << 56);
}

#define B2B_G(a, b, c, d, x, y)             \
    do {                                    \
        v[a] = v[a] + v[b] + (x);           \
        v[d] = B2B_ROTR64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];                 \
        v[b] = B2B_ROTR64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);           \
        v[d] = B2B_ROTR64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];                 \
        v[b] = B2B_ROTR64(v[b] ^ v[c], 63); \
    } while (0)

static void b2b_compress(b2b_ctx *ctx, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) {
        v[i] = ctx->h[i];
        v[i + 8] = b2b_iv[i];
    }
    v[12] ^= ctx->t[0];
    v[13] ^= ctx->t[1];
    if (last) v[14] = ~v[14];
    for (int i = 0; i < 16; i++) m[i] = b2b_load64(&ctx->b[8 * i]);
    /* The twelve rounds written out, so every message index is a constant and v and m stay
     * in registers (a loop over the rounds is about twice slower). */
#define B2B_ROUND(r)                                                    \
    do {                                                                \
        B2B_G(0, 4, 8, 12, m[b2b_sigma[r][0]], m[b2b_sigma[r][1]]);     \
        B2B_G(1, 5, 9, 13, m[b2b_sigma[r][2]], m[b2b_sigma[r][3]]);     \
        B2B_G(2, 6, 10, 14, m[b2b_sigma[r][4]], m[b2b_sigma[r][5]]);    \
        B2B_G(3, 7, 11, 15, m[b2b_sigma[r][6]], m[b2b_sigma[r][7]]);    \
        B2B_G(0, 5, 10, 15, m[b2b_sigma[r][8]], m[b2b_sigma[r][9]]);    \
        B2B_G(1, 6, 11, 12, m[b2b_sigma[r][10]], m[b2b_sigma[r][11]]);  \
        B2B_G(2, 7, 8, 13, m[b2b_sigma[r][12]], m[b2b_sigma[r][13]]);   \
        B2B_G(3, 4, 9, 14, m[b2b_sigma[r][14]], m[b2b_sigma[r][15]]);   \
    } while (0)
    B2B_ROUND(0);
    B2B_ROUND(1);
    B2B_ROUND(2);
    B2B_ROUND(3);
    B2B_ROUND(4);
    B2B_ROUND(5);
    B2B_ROUND(6);
    B2B_ROUND(7);
    B2B_ROUND(8);
    B2B_ROUND(9);
    B2B_ROUND(10);
    B2B_ROUND(11);
#undef B2B_ROUND
    for (int i = 0; i < 8; i++) ctx->h[i] ^= v[i] ^ v[i + 8];
}

static void b2b_init(b2b_ctx *ctx, size_t outlen) {
    for (int i = 0; i < 8; i++) ctx->h[i] = b2b_iv[i];
    ctx->h[0] ^= 0x01010000ULL ^ (uint64_t)outlen; /* depth 1, fanout 1, no key */
    ctx->t[0] = ctx->t[1] = 0;
    ctx->c = 0;
    ctx->outlen = outlen;
    memset(ctx->b, 0, sizeof ctx->b);
}

static void b2b_update(b2b_ctx *ctx, const uint8_t *in, size_t inlen) {
    while (inlen > 0) {
        if (ctx->c == 128) {
            ctx->t[0] += ctx->c;
            if (ctx->t[0] < ctx->c) ctx->t[1]++;
            b2b_compress(ctx, 0);
            ctx->c = 0;
        }
        size_t take = 128 - ctx->c;
        if (take > inlen) take = inlen;
        memcpy(ctx->b + ctx->c, in, take);
        ctx->c += take;
        in += take;
        inlen -= take;
    }
}

static void b2b_final(b2b_ctx *ctx, uint8_t *out) {
    ctx->t[0] += ctx->c;
    if (ctx->t[0] < ctx->c) ctx->t[1]++;
    while (ctx->c < 128) ctx->b[ctx->c++] = 0;
    b2b_compress(ctx, 1);
    for (size_t i = 0; i < ctx->outlen; i++)
        out[i] = (uint8_t)((ctx->h[i >> 3] >> (8 * (i & 7))) & 0xFF);
}

#endif
