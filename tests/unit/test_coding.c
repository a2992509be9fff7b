/* Content codings: Content-Encoding parsing and the streaming decoder.
 * Compressed fixtures are made here with the real encoders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>
#include <zlib.h>
#include <zstd.h>

#include "core/buf.h"
#include "http/coding.h"

#define MIB (1024u * 1024u)

static const sl_coding_limits_t roomy = {.max_out = 256 * MIB, .max_ratio = 0, .ratio_free = 0};

/* ---- encoders ---------------------------------------------------------- */

/* wbits: 15+16 gzip, 15 zlib, -15 raw deflate. */
static void zlib_enc(const char *p, size_t n, int wbits, sl_buf_t *out)
{
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, n) + 64;
    sl_buf_reserve(out, cap);
    z.next_in = (unsigned char *)p;
    z.avail_in = (uInt)n;
    z.next_out = (unsigned char *)out->p + out->n;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    out->n += cap - z.avail_out;
    deflateEnd(&z);
}

static void br_enc(const char *p, size_t n, sl_buf_t *out)
{
    size_t cap = BrotliEncoderMaxCompressedSize(n) + 64;
    sl_buf_reserve(out, cap);
    assert_true(BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, n, (const uint8_t *)p, &cap,
                                      (uint8_t *)out->p + out->n));
    out->n += cap;
}

static void zstd_enc(const char *p, size_t n, sl_buf_t *out)
{
    size_t cap = ZSTD_compressBound(n);
    sl_buf_reserve(out, cap);
    size_t r = ZSTD_compress(out->p + out->n, cap, p, n, 3);
    assert_false(ZSTD_isError(r));
    out->n += r;
}

static void encode(sl_coding_t c, const char *p, size_t n, sl_buf_t *out)
{
    switch (c) {
    case SL_CODING_GZIP:
        zlib_enc(p, n, 15 + 16, out);
        break;
    case SL_CODING_DEFLATE:
        zlib_enc(p, n, 15, out);
        break;
    case SL_CODING_BR:
        br_enc(p, n, out);
        break;
    case SL_CODING_ZSTD:
        zstd_enc(p, n, out);
        break;
    }
}

/* Text that compresses but is not trivial: numbered lines. */
static void sample(sl_buf_t *b, size_t lines)
{
    for (size_t i = 0; i < lines; i++)
        sl_buf_appendf(b, "line %zu: the quick brown fox jumps over the lazy dog %zu\n", i,
                       i * 2654435761u % 1000003u);
}

/* ---- decoding helpers -------------------------------------------------- */

static int collect(void *arg, const char *p, size_t n)
{
    assert_true(n > 0 && n <= SL_CODING_CHUNK);
    sl_buf_append(arg, p, n);
    return 0;
}

/* Decode `in` fed in pieces of `step` bytes; returns the final status. */
static sl_dec_status_t decode(const sl_coding_list_t *cl, const sl_coding_limits_t *lim,
                              const char *in, size_t n, size_t step, sl_buf_t *out)
{
    sl_decoder_t *d = sl_decoder_new(cl, lim);
    assert_non_null(d);
    sl_dec_status_t st = SL_DEC_OK;
    for (size_t off = 0; off < n && st == SL_DEC_OK; off += step)
        st = sl_decoder_feed(d, in + off, n - off < step ? n - off : step, collect, out);
    if (st == SL_DEC_OK)
        st = sl_decoder_finish(d, collect, out);
    if (st != SL_DEC_OK)
        assert_true(sl_decoder_error(d)[0] != '\0');
    else
        assert_int_equal(sl_decoder_total_out(d), out->n);
    sl_decoder_free(d);
    return st;
}

static sl_coding_list_t list1(sl_coding_t c)
{
    return (sl_coding_list_t){.v = {c}, .n = 1};
}

/* ---- parsing ----------------------------------------------------------- */

static void test_parse(void **state)
{
    (void)state;
    sl_coding_list_t l = {0};
    const char *err = NULL;
    sl_view_t bad = SL_VIEW_NULL;
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT("gzip"), &l, &bad, &err), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.v[0], SL_CODING_GZIP);

    l = (sl_coding_list_t){0};
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT(" GZIP ,, Br,\tidentity , zstd"), &l, &bad, &err),
                     0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.v[0], SL_CODING_GZIP);
    assert_int_equal(l.v[1], SL_CODING_BR);
    assert_int_equal(l.v[2], SL_CODING_ZSTD);
    /* A second field appends. */
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT("x-gzip"), &l, &bad, &err), 0);
    assert_int_equal(l.n, 4);
    assert_int_equal(l.v[3], SL_CODING_GZIP);
    /* A fifth layer is too many. */
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT("deflate"), &l, &bad, &err), -1);
    assert_true(sl_view_eq(bad, "deflate"));

    l = (sl_coding_list_t){0};
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT("identity"), &l, &bad, &err), 0);
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT(""), &l, &bad, &err), 0);
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT("none"), &l, &bad, &err), 0);
    assert_int_equal(l.n, 0);

    assert_int_equal(sl_coding_parse(SL_VIEW_LIT("gzip, compress"), &l, &bad, &err), -1);
    assert_true(sl_view_eq(bad, "compress"));
    assert_string_equal(err, "unknown content coding");
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT("gzip br"), &l, &bad, &err), -1);
    assert_int_equal(sl_coding_parse(SL_VIEW_LIT("gzip;q=1"), &l, NULL, &err), -1);
    assert_string_equal(sl_coding_name(SL_CODING_ZSTD), "zstd");
}

/* ---- round trips ------------------------------------------------------- */

static void test_roundtrip_each(void **state)
{
    (void)state;
    sl_buf_t plain = {0};
    sample(&plain, 4000); /* ~240 KiB: several zstd blocks, many output chunks */
    static const sl_coding_t all[] = {SL_CODING_GZIP, SL_CODING_DEFLATE, SL_CODING_BR,
                                      SL_CODING_ZSTD};
    static const size_t steps[] = {1, 7, 4096, 1u << 30};
    for (size_t c = 0; c < 4; c++) {
        sl_buf_t enc = {0};
        encode(all[c], plain.p, plain.n, &enc);
        assert_true(enc.n < plain.n / 3);
        sl_coding_list_t cl = list1(all[c]);
        for (size_t s = 0; s < 4; s++) {
            if (steps[s] == 1 && plain.n > 100000 && all[c] != SL_CODING_ZSTD)
                continue; /* byte at a time is slow with nothing new to show */
            sl_buf_t out = {0};
            assert_int_equal(decode(&cl, &roomy, enc.p, enc.n, steps[s], &out), SL_DEC_OK);
            assert_int_equal(out.n, plain.n);
            assert_memory_equal(out.p, plain.p, plain.n);
            sl_buf_free(&out);
        }
        sl_buf_free(&enc);
    }
    sl_buf_free(&plain);
}

static void test_raw_deflate_and_layers(void **state)
{
    (void)state;
    sl_buf_t plain = {0}, raw = {0}, out = {0};
    sample(&plain, 300);
    zlib_enc(plain.p, plain.n, -15, &raw);
    sl_coding_list_t cl = list1(SL_CODING_DEFLATE);
    assert_int_equal(decode(&cl, &roomy, raw.p, raw.n, 1, &out), SL_DEC_OK);
    assert_int_equal(out.n, plain.n);
    assert_memory_equal(out.p, plain.p, plain.n);
    sl_buf_free(&out);

    /* "gzip, br": gzip applied first, then br; and zstd under gzip. */
    static const sl_coding_t stacks[][2] = {{SL_CODING_GZIP, SL_CODING_BR},
                                            {SL_CODING_ZSTD, SL_CODING_GZIP},
                                            {SL_CODING_BR, SL_CODING_ZSTD}};
    for (size_t k = 0; k < 3; k++) {
        sl_buf_t a = {0}, b = {0};
        encode(stacks[k][0], plain.p, plain.n, &a);
        encode(stacks[k][1], a.p, a.n, &b);
        sl_coding_list_t two = {.v = {stacks[k][0], stacks[k][1]}, .n = 2};
        assert_int_equal(decode(&two, &roomy, b.p, b.n, 13, &out), SL_DEC_OK);
        assert_int_equal(out.n, plain.n);
        assert_memory_equal(out.p, plain.p, plain.n);
        /* The wrong order does not decode. */
        sl_coding_list_t wrong = {.v = {stacks[k][1], stacks[k][0]}, .n = 2};
        sl_buf_reset(&out);
        assert_int_not_equal(decode(&wrong, &roomy, b.p, b.n, 13, &out), SL_DEC_OK);
        sl_buf_free(&out);
        sl_buf_free(&a);
        sl_buf_free(&b);
    }
    sl_buf_free(&raw);
    sl_buf_free(&plain);
}

/* A second gzip member is decoded too: stopping at the first would let
 * whatever follows it pass uninspected. */
static void test_gzip_members(void **state)
{
    (void)state;
    sl_buf_t enc = {0}, out = {0};
    zlib_enc("first member, ", 14, 15 + 16, &enc);
    zlib_enc("second member", 13, 15 + 16, &enc);
    sl_coding_list_t cl = list1(SL_CODING_GZIP);
    assert_int_equal(decode(&cl, &roomy, enc.p, enc.n, 5, &out), SL_DEC_OK);
    assert_int_equal(out.n, 27);
    assert_memory_equal(out.p, "first member, second member", 27);
    sl_buf_free(&out);
    sl_buf_free(&enc);
}

static void test_zstd_frames(void **state)
{
    (void)state;
    sl_buf_t enc = {0}, out = {0};
    /* A skippable frame, two frames, another skippable frame. */
    static const char skip[] = "\x50\x2a\x4d\x18\x03\x00\x00\x00xyz";
    sl_buf_append(&enc, skip, sizeof skip - 1);
    zstd_enc("alpha ", 6, &enc);
    zstd_enc("beta", 4, &enc);
    sl_buf_append(&enc, skip, sizeof skip - 1);
    sl_coding_list_t cl = list1(SL_CODING_ZSTD);
    assert_int_equal(decode(&cl, &roomy, enc.p, enc.n, 1, &out), SL_DEC_OK);
    assert_int_equal(out.n, 10);
    assert_memory_equal(out.p, "alpha beta", 10);
    sl_buf_free(&out);
    /* A skippable frame cut short is truncated. */
    assert_int_equal(decode(&cl, &roomy, skip, 9, 4, &out), SL_DEC_TRUNCATED);
    sl_buf_free(&out);
    sl_buf_free(&enc);
}

static void test_empty_body(void **state)
{
    (void)state;
    for (sl_coding_t c = SL_CODING_GZIP; c <= SL_CODING_ZSTD; c++) {
        sl_coding_list_t cl = list1(c);
        sl_buf_t out = {0};
        assert_int_equal(decode(&cl, &roomy, "", 0, 1, &out), SL_DEC_OK);
        assert_int_equal(out.n, 0);
        /* An encoded empty text decodes to nothing. */
        sl_buf_t enc = {0};
        encode(c, "", 0, &enc);
        assert_int_equal(decode(&cl, &roomy, enc.p, enc.n, 3, &out), SL_DEC_OK);
        assert_int_equal(out.n, 0);
        sl_buf_free(&enc);
    }
}

/* ---- bad data ---------------------------------------------------------- */

static void test_corrupt_truncated_trailing(void **state)
{
    (void)state;
    sl_buf_t plain = {0};
    sample(&plain, 200);
    for (sl_coding_t c = SL_CODING_GZIP; c <= SL_CODING_ZSTD; c++) {
        sl_buf_t enc = {0}, out = {0};
        encode(c, plain.p, plain.n, &enc);
        sl_coding_list_t cl = list1(c);

        /* Cut off: never a clean end. */
        assert_int_equal(decode(&cl, &roomy, enc.p, enc.n - 5, 64, &out), SL_DEC_TRUNCATED);
        sl_buf_reset(&out);
        assert_int_equal(decode(&cl, &roomy, enc.p, 1, 64, &out), SL_DEC_TRUNCATED);
        sl_buf_reset(&out);

        /* Garbage after the end. */
        sl_buf_t tail = {0};
        sl_buf_append(&tail, enc.p, enc.n);
        sl_buf_append(&tail, "\0\0\0\0garbage", 11);
        assert_int_equal(decode(&cl, &roomy, tail.p, tail.n, 64, &out), SL_DEC_BAD);
        sl_buf_reset(&out);
        sl_buf_free(&tail);

        /* Not compressed at all. */
        assert_int_not_equal(decode(&cl, &roomy, plain.p, plain.n, 64, &out), SL_DEC_OK);
        sl_buf_reset(&out);

        /* Bytes flipped in the middle: refused (or, where the format has no
         * check at that spot, never decoded to the original). */
        sl_buf_t bent = {0};
        sl_buf_append(&bent, enc.p, enc.n);
        for (size_t i = enc.n / 3; i < enc.n / 3 + 8; i++)
            bent.p[i] ^= 0x5a;
        sl_dec_status_t st = decode(&cl, &roomy, bent.p, bent.n, 64, &out);
        assert_true(st != SL_DEC_OK || out.n != plain.n || memcmp(out.p, plain.p, plain.n) != 0);
        sl_buf_free(&bent);
        sl_buf_free(&out);
        sl_buf_free(&enc);
    }
    sl_buf_free(&plain);
}

/* ---- budgets ----------------------------------------------------------- */

static void test_bomb(void **state)
{
    (void)state;
    size_t n = 32 * MIB;
    char *zeros = calloc(1, n);
    assert_non_null(zeros);
    for (sl_coding_t c = SL_CODING_GZIP; c <= SL_CODING_ZSTD; c++) {
        sl_buf_t enc = {0}, out = {0};
        encode(c, zeros, n, &enc);
        assert_true(enc.n < n / 500);
        sl_coding_list_t cl = list1(c);
        /* Size cap: nothing past it reaches the sink. */
        sl_coding_limits_t cap = {.max_out = 1 * MIB};
        assert_int_equal(decode(&cl, &cap, enc.p, enc.n, 4096, &out), SL_DEC_LIMIT);
        assert_true(out.n <= 1 * MIB);
        sl_buf_free(&out);
        /* Ratio cap: stops long before the size cap. */
        sl_coding_limits_t ratio = {.max_out = 256 * MIB, .max_ratio = 100, .ratio_free = MIB};
        assert_int_equal(decode(&cl, &ratio, enc.p, enc.n, 4096, &out), SL_DEC_RATIO);
        assert_true(out.n <= 2 * MIB);
        sl_buf_free(&out);
        /* The ratio is not checked below ratio_free decoded bytes. */
        ratio.ratio_free = n;
        assert_int_equal(decode(&cl, &ratio, enc.p, enc.n, 1u << 20, &out), SL_DEC_OK);
        assert_int_equal(out.n, n);
        sl_buf_free(&out);
        sl_buf_free(&enc);
    }
    free(zeros);
}

/* A bomb one layer down counts too: gzip inside gzip. */
static void test_nested_bomb(void **state)
{
    (void)state;
    size_t n = 32 * MIB;
    char *zeros = calloc(1, n);
    sl_buf_t a = {0}, b = {0}, out = {0};
    zlib_enc(zeros, n, 15 + 16, &a);
    zlib_enc(a.p, a.n, 15 + 16, &b);
    sl_coding_list_t cl = {.v = {SL_CODING_GZIP, SL_CODING_GZIP}, .n = 2};
    sl_coding_limits_t lim = {.max_out = 256 * MIB, .max_ratio = 100, .ratio_free = MIB};
    assert_int_equal(decode(&cl, &lim, b.p, b.n, 512, &out), SL_DEC_RATIO);
    sl_buf_free(&out);
    sl_buf_free(&a);
    sl_buf_free(&b);
    free(zeros);
}

static void test_zstd_window_cap(void **state)
{
    (void)state;
    /* A frame that declares a 32 MiB window (unknown content size). */
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 25);
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    char buf[4096];
    ZSTD_outBuffer o = {buf, sizeof buf, 0};
    ZSTD_inBuffer in = {"hello window", 12, 0};
    ZSTD_compressStream2(cc, &o, &in, ZSTD_e_continue);
    ZSTD_inBuffer none = {"", 0, 0};
    assert_int_equal(ZSTD_compressStream2(cc, &o, &none, ZSTD_e_end), 0);
    ZSTD_freeCCtx(cc);
    sl_coding_list_t cl = list1(SL_CODING_ZSTD);
    sl_buf_t out = {0};
    assert_int_equal(decode(&cl, &roomy, buf, o.pos, 64, &out), SL_DEC_LIMIT);
    sl_buf_free(&out);
}

/* ---- pending bytes ----------------------------------------------------- */

/* Bytes of an incomplete zstd block are pending: their decoded bytes have
 * not reached the sink, so a forwarding caller must not release them. */
static void test_pending(void **state)
{
    (void)state;
    sl_buf_t plain = {0}, enc = {0}, out = {0};
    sample(&plain, 500);
    zstd_enc(plain.p, plain.n, &enc);
    sl_coding_list_t cl = list1(SL_CODING_ZSTD);
    sl_decoder_t *d = sl_decoder_new(&cl, &roomy);
    size_t half = enc.n / 2;
    assert_int_equal(sl_decoder_feed(d, enc.p, half, collect, &out), SL_DEC_OK);
    assert_int_equal(out.n, 0);
    assert_true(sl_decoder_pending(d) >= half - 18);
    assert_int_equal(sl_decoder_feed(d, enc.p + half, enc.n - half, collect, &out), SL_DEC_OK);
    assert_int_equal(sl_decoder_pending(d), 0);
    assert_int_equal(out.n, plain.n);
    assert_int_equal(sl_decoder_finish(d, collect, &out), SL_DEC_OK);
    sl_decoder_free(d);
    sl_buf_free(&out);

    /* zstd under gzip: still pending until the inner block completes. */
    sl_buf_t gz = {0};
    zlib_enc(enc.p, enc.n, 15 + 16, &gz);
    sl_coding_list_t two = {.v = {SL_CODING_ZSTD, SL_CODING_GZIP}, .n = 2};
    d = sl_decoder_new(&two, &roomy);
    assert_int_equal(sl_decoder_feed(d, gz.p, gz.n - 20, collect, &out), SL_DEC_OK);
    assert_int_equal(out.n, 0);
    assert_true(sl_decoder_pending(d) > 0);
    assert_int_equal(sl_decoder_feed(d, gz.p + gz.n - 20, 20, collect, &out), SL_DEC_OK);
    assert_int_equal(sl_decoder_finish(d, collect, &out), SL_DEC_OK);
    assert_int_equal(sl_decoder_pending(d), 0);
    assert_int_equal(out.n, plain.n);
    sl_decoder_free(d);
    sl_buf_free(&out);

    /* gzip alone: nothing pending after a feed. */
    sl_buf_t g1 = {0};
    zlib_enc(plain.p, plain.n, 15 + 16, &g1);
    d = sl_decoder_new(&(sl_coding_list_t){.v = {SL_CODING_GZIP}, .n = 1}, &roomy);
    assert_int_equal(sl_decoder_feed(d, g1.p, g1.n / 2, collect, &out), SL_DEC_OK);
    assert_int_equal(sl_decoder_pending(d), 0);
    assert_true(out.n > 0);
    sl_decoder_free(d);
    sl_buf_free(&out);
    sl_buf_free(&g1);
    sl_buf_free(&gz);
    sl_buf_free(&enc);
    sl_buf_free(&plain);
}

static int stop_at_first(void *arg, const char *p, size_t n)
{
    (void)p;
    (void)n;
    ++*(int *)arg;
    return 1;
}

static void test_sink_stops(void **state)
{
    (void)state;
    sl_buf_t plain = {0}, enc = {0};
    sample(&plain, 2000);
    zlib_enc(plain.p, plain.n, 15 + 16, &enc);
    sl_coding_list_t cl = list1(SL_CODING_GZIP);
    sl_decoder_t *d = sl_decoder_new(&cl, &roomy);
    int calls = 0;
    assert_int_equal(sl_decoder_feed(d, enc.p, enc.n, stop_at_first, &calls), SL_DEC_STOPPED);
    assert_int_equal(calls, 1);
    /* Final: later calls change nothing. */
    assert_int_equal(sl_decoder_feed(d, enc.p, enc.n, stop_at_first, &calls), SL_DEC_STOPPED);
    assert_int_equal(sl_decoder_finish(d, stop_at_first, &calls), SL_DEC_STOPPED);
    assert_int_equal(calls, 1);
    assert_int_equal(sl_decoder_status(d), SL_DEC_STOPPED);
    sl_decoder_free(d);
    sl_buf_free(&enc);
    sl_buf_free(&plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_roundtrip_each),
        cmocka_unit_test(test_raw_deflate_and_layers),
        cmocka_unit_test(test_gzip_members),
        cmocka_unit_test(test_zstd_frames),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_corrupt_truncated_trailing),
        cmocka_unit_test(test_bomb),
        cmocka_unit_test(test_nested_bomb),
        cmocka_unit_test(test_zstd_window_cap),
        cmocka_unit_test(test_pending),
        cmocka_unit_test(test_sink_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
