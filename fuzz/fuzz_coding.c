/* Fuzz the content-coding decoder and the Content-Encoding parser.
 *
 * Input: byte 0 picks the coding stack (two layers of 2 bits each, plus a
 * layer count) and whether to round-trip; byte 1 the feed size; the rest is
 * the body. Decoding arbitrary bytes must never crash, overrun its budgets
 * or hand the sink more than it promised; round-tripping data through the
 * real encoders must give the data back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "fuzz_check.h"
#include "http/coding.h"

typedef struct sink {
    uint64_t n;
    unsigned char *keep; /* round trip: decoded bytes */
    size_t cap;
} sink_t;

static int take(void *arg, const char *p, size_t n)
{
    sink_t *s = arg;
    CHECK(n > 0 && n <= SL_CODING_CHUNK);
    if (s->keep) {
        CHECK(s->n + n <= s->cap);
        memcpy(s->keep + s->n, p, n);
    }
    s->n += n;
    return 0;
}

static sl_dec_status_t run(const sl_coding_list_t *cl, const sl_coding_limits_t *lim,
                           const uint8_t *p, size_t n, size_t step, sink_t *s)
{
    sl_decoder_t *d = sl_decoder_new(cl, lim);
    CHECK(d != NULL);
    sl_dec_status_t st = SL_DEC_OK;
    size_t fed = 0;
    while (fed < n && st == SL_DEC_OK) {
        size_t k = n - fed < step ? n - fed : step;
        st = sl_decoder_feed(d, (const char *)p + fed, k, take, s);
        fed += k;
        CHECK(sl_decoder_pending(d) <= fed);
    }
    if (st == SL_DEC_OK) {
        st = sl_decoder_finish(d, take, s);
        if (st == SL_DEC_OK)
            CHECK(sl_decoder_pending(d) == 0);
    }
    CHECK(sl_decoder_status(d) == st);
    CHECK((st == SL_DEC_OK) == (sl_decoder_error(d)[0] == '\0'));
    CHECK(sl_decoder_total_out(d) == s->n);
    CHECK(s->n <= lim->max_out);
    /* Errors are final. */
    if (st != SL_DEC_OK)
        CHECK(sl_decoder_feed(d, "x", 1, take, s) == st);
    sl_decoder_free(d);
    return st;
}

/* Encode with one coding; returns malloc'd bytes or NULL. */
static unsigned char *enc(sl_coding_t c, const unsigned char *p, size_t n, size_t *out_n)
{
    size_t cap = n + n / 2 + 1024;
    unsigned char *o = malloc(cap);
    CHECK(o != NULL);
    if (c == SL_CODING_GZIP || c == SL_CODING_DEFLATE) {
        z_stream z = {0};
        CHECK(deflateInit2(&z, 1, Z_DEFLATED, c == SL_CODING_GZIP ? 31 : 15, 8,
                           Z_DEFAULT_STRATEGY) == Z_OK);
        z.next_in = (unsigned char *)p;
        z.avail_in = (uInt)n;
        z.next_out = o;
        z.avail_out = (uInt)cap;
        CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
        *out_n = cap - z.avail_out;
        deflateEnd(&z);
    } else if (c == SL_CODING_BR) {
        *out_n = cap;
        CHECK(BrotliEncoderCompress(1, 18, BROTLI_MODE_GENERIC, n, p, out_n, o));
    } else {
        size_t r = ZSTD_compress(o, cap, p, n, 1);
        CHECK(!ZSTD_isError(r));
        *out_n = r;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned mode = data[0];
    size_t step = (size_t)data[1] * 37 + 1;
    const uint8_t *body = data + 2;
    size_t n = size - 2;
    sl_coding_list_t cl = {.n = (mode & 0x10) ? 2 : 1};
    cl.v[0] = (sl_coding_t)((mode & 3) + 1);
    cl.v[1] = (sl_coding_t)(((mode >> 2) & 3) + 1);
    sl_coding_limits_t lim = {.max_out = 1u << 20, .max_ratio = 1000, .ratio_free = 1u << 16};

    /* The parser on the body as a field value. */
    sl_coding_list_t parsed = {0};
    const char *err = NULL;
    sl_view_t bad = SL_VIEW_NULL;
    if (sl_coding_parse(sl_view((const char *)body, n), &parsed, &bad, &err) == 0) {
        CHECK(parsed.n <= SL_CODING_MAX_LAYERS);
    } else {
        CHECK(err != NULL);
        CHECK(bad.n == 0 ||
              (bad.p >= (const char *)body && bad.p + bad.n <= (const char *)body + n));
    }

    if (!(mode & 0x80)) {
        sink_t s = {0};
        run(&cl, &lim, body, n, step, &s);
        return 0;
    }
    /* Round trip: encode the body with the chosen stack, decode it back. */
    size_t n1 = 0, n2 = 0;
    unsigned char *e1 = enc(cl.v[0], body, n, &n1), *e2 = NULL;
    const unsigned char *wire = e1;
    size_t wire_n = n1;
    if (cl.n == 2) {
        e2 = enc(cl.v[1], e1, n1, &n2);
        wire = e2;
        wire_n = n2;
    }
    sl_coding_limits_t roomy = {.max_out = 1u << 24};
    sink_t s = {.keep = malloc(n + 1), .cap = n};
    CHECK(s.keep != NULL);
    CHECK(run(&cl, &roomy, wire, wire_n, step, &s) == SL_DEC_OK);
    CHECK(s.n == n && memcmp(s.keep, body, n) == 0);
    free(s.keep);
    free(e1);
    free(e2);
    return 0;
}
