/* Secrets: the matching engine (block vs streaming vs a naive reference, on
 * random patterns and random chunkings) and echo redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <openssl/evp.h>

#include "secrets/match.h"
#include "secrets/redact.h"
#include "test_secrets_helpers.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* Leftmost-longest by brute force. */
static void naive(const sl_smatch_t *m, const sl_smatch_act_t *act, const unsigned char *in,
                  size_t n, sl_buf_t *out)
{
    size_t i = 0;
    while (i < n) {
        size_t best = SIZE_MAX;
        for (size_t p = 0; p < m->n; p++)
            if (act[p].kind != SL_SM_OFF && m->len[p] <= n - i &&
                memcmp(in + i, m->pat[p], m->len[p]) == 0 &&
                (best == SIZE_MAX || m->len[p] > m->len[best]))
                best = p;
        if (best == SIZE_MAX) {
            sl_buf_append(out, in + i, 1);
            i++;
            continue;
        }
        if (act[best].kind == SL_SM_REPLACE)
            sl_buf_append(out, act[best].to, act[best].to_n);
        else
            sl_buf_append(out, in + i, m->len[best]);
        i += m->len[best];
    }
}

static void stream_chunks(const sl_smatch_t *m, const sl_smatch_act_t *act, const unsigned char *in,
                          size_t n, const size_t *cuts, size_t ncuts, sl_buf_t *out)
{
    sl_smatch_stream_t s;
    sl_smatch_stream_init(&s, m, act);
    size_t at = 0;
    for (size_t c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        sl_smatch_stream_feed(&s, in + at, end - at, out);
        at = end;
    }
    sl_smatch_stream_finish(&s, out);
    assert_int_equal(s.in_bytes, n);
    assert_int_equal(s.out_bytes, out->n);
    sl_smatch_stream_free(&s);
}

static void test_engine_property(void **state)
{
    (void)state;
    for (int round = 0; round < 300; round++) {
        /* Small alphabet so patterns overlap, prefix each other and recur. */
        size_t np = 1 + rnd(8);
        unsigned char pats[8][24], tos[8][8];
        const unsigned char *pp[8];
        size_t pl[8];
        sl_smatch_act_t act[8];
        for (size_t p = 0; p < np; p++) {
            /* Odd rounds: every pattern >= 7 bytes, so find() samples. */
            size_t minl = round % 2 ? 7 + rnd(3) : 2;
            pl[p] = minl + rnd(p == 0 ? 24 - (uint32_t)minl : 6);
            for (size_t k = 0; k < pl[p]; k++)
                pats[p][k] = (unsigned char)("abc\0"[rnd(4)]);
            pp[p] = pats[p];
            size_t tn = rnd(8);
            for (size_t k = 0; k < tn; k++)
                tos[p][k] = (unsigned char)('P' + p);
            uint32_t kind = rnd(5);
            act[p] = (sl_smatch_act_t){kind == 0   ? SL_SM_OFF
                                       : kind == 1 ? SL_SM_FLAG
                                                   : SL_SM_REPLACE,
                                       tos[p], tn};
        }
        sl_smatch_t *m = malloc(sizeof *m);
        assert_true(sl_smatch_init(m, pp, pl, np));
        size_t n = rnd(200);
        unsigned char in[256];
        for (size_t i = 0; i < n;) {
            if (rnd(3) == 0) {
                size_t p = rnd((uint32_t)np);
                size_t k = pl[p] < n - i ? pl[p] : n - i;
                memcpy(in + i, pats[p], k);
                i += k;
            } else {
                in[i++] = (unsigned char)("abcd\0"[rnd(5)]);
            }
        }
        sl_buf_t ref = {0}, blk = {0};
        naive(m, act, in, n, &ref);
        sl_smatch_apply(m, act, in, n, &blk, NULL);
        assert_int_equal(blk.n, ref.n);
        if (ref.n)
            assert_memory_equal(blk.p, ref.p, ref.n);
        /* Every single split point, then random multi-way chunkings. */
        for (size_t split = 0; split <= n; split++) {
            sl_buf_t st = {0};
            stream_chunks(m, act, in, n, &split, 1, &st);
            assert_int_equal(st.n, ref.n);
            if (ref.n)
                assert_memory_equal(st.p, ref.p, ref.n);
            sl_buf_free(&st);
        }
        for (int k = 0; k < 20; k++) {
            size_t cuts[16], nc = rnd(16);
            for (size_t c = 0; c < nc; c++)
                cuts[c] = n ? rnd((uint32_t)n + 1) : 0;
            for (size_t a = 1; a < nc; a++) /* sort */
                for (size_t b = a; b > 0 && cuts[b - 1] > cuts[b]; b--) {
                    size_t t = cuts[b];
                    cuts[b] = cuts[b - 1];
                    cuts[b - 1] = t;
                }
            sl_buf_t st = {0};
            stream_chunks(m, act, in, n, cuts, nc, &st);
            assert_int_equal(st.n, ref.n);
            if (ref.n)
                assert_memory_equal(st.p, ref.p, ref.n);
            sl_buf_free(&st);
        }
        sl_buf_free(&ref);
        sl_buf_free(&blk);
        free(m);
    }
}

static void test_engine_limits(void **state)
{
    (void)state;
    sl_smatch_t *m = malloc(sizeof *m);
    const unsigned char *one[] = {(const unsigned char *)"a"};
    size_t len1[] = {1};
    assert_false(sl_smatch_init(m, one, len1, 1)); /* patterns are >= 2 bytes */
    assert_false(sl_smatch_init(m, one, len1, SL_SMATCH_MAX + 1));
    free(m);
}

/* ---- redaction with a store --------------------------------------------- */

#define V1 "sk-ant-REAL-aaaaaaaaaaaaaaaa"
#define V2 "ghp_REALbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static sl_secret_store_t *two_store(void)
{
    setenv("SL_R_1", V1, 1);
    setenv("SL_R_2", V2, 1);
    return th_store("secrets:\n"
                    "  - { name: anthropic, source: { env: SL_R_1 }, hosts: [api.anthropic.com],"
                    " placeholder: PH_ANTHROPIC }\n"
                    "  - { name: github, source: { env: SL_R_2 }, hosts: [api.github.com],"
                    " placeholder: PH_GITHUB }\n");
}

static void test_redact_every_split(void **state)
{
    (void)state;
    sl_secret_store_t *s = two_store();
    const char *body = "{\"headers\":{\"x-api-key\":\"" V1 "\",\"authorization\":\"token " V2
                       "\"},\"echo\":\"" V1 V1 "\"}";
    const char *want = "{\"headers\":{\"x-api-key\":\"PH_ANTHROPIC\",\"authorization\":\"token "
                       "PH_GITHUB\"},\"echo\":\"PH_ANTHROPICPH_ANTHROPIC\"}";
    size_t n = strlen(body);
    for (size_t a = 0; a <= n; a++)
        for (size_t b = a; b <= n; b += 7) {
            sl_redactor_t r;
            sl_buf_t out = {0};
            sl_redactor_init(&r, s);
            sl_redactor_feed(&r, body, a, &out);
            sl_redactor_feed(&r, body + a, b - a, &out);
            sl_redactor_feed(&r, body + b, n - b, &out);
            sl_redactor_finish(&r, &out);
            assert_int_equal(out.n, strlen(want));
            assert_memory_equal(out.p, want, out.n);
            assert_int_equal(sl_redactor_count(&r), 4);
            const char *names[2];
            assert_int_equal(sl_redactor_names(&r, names, 2), 2);
            assert_string_equal(names[0], "anthropic");
            assert_string_equal(names[1], "github");
            sl_redactor_free(&r);
            sl_buf_free(&out);
        }
    sl_secret_store_unref(s);
}

/* One byte at a time, a value split everywhere, never leaks. */
static void test_redact_bytewise_no_leak(void **state)
{
    (void)state;
    sl_secret_store_t *s = two_store();
    sl_buf_t in = {0};
    for (int i = 0; i < 50; i++) {
        for (uint32_t k = rnd(40); k > 0; k--)
            sl_buf_append(&in, "xyz-_sk" + rnd(7), 1);
        sl_buf_append_str(&in, rnd(2) ? V1 : V2);
    }
    sl_redactor_t r;
    sl_buf_t out = {0};
    sl_redactor_init(&r, s);
    for (size_t i = 0; i < in.n; i++)
        sl_redactor_feed(&r, in.p + i, 1, &out);
    sl_redactor_finish(&r, &out);
    assert_int_equal(sl_redactor_count(&r), 50);
    assert_null(memmem(out.p, out.n, V1, strlen(V1)));
    assert_null(memmem(out.p, out.n, V2, strlen(V2)));
    sl_redactor_free(&r);
    sl_buf_free(&out);
    sl_buf_free(&in);
    sl_secret_store_unref(s);
}

static void test_redact_header_value(void **state)
{
    (void)state;
    sl_secret_store_t *s = two_store();
    sl_buf_t out = {0};
    assert_int_equal(sl_secret_redact(s, SL_VIEW_LIT("Bearer " V1), &out), 1);
    assert_string_equal(sl_buf_cstr(&out), "Bearer PH_ANTHROPIC");
    sl_buf_reset(&out);
    assert_int_equal(sl_secret_redact(s, SL_VIEW_LIT("nothing here"), &out), 0);
    assert_string_equal(sl_buf_cstr(&out), "nothing here");
    assert_true(sl_secret_contains_value(s, SL_VIEW_LIT("a" V2 "b")));
    assert_false(sl_secret_contains_value(s, SL_VIEW_LIT("PH_GITHUB")));
    /* Placeholders are not redacted, and a value cut short is not a value. */
    sl_buf_reset(&out);
    assert_int_equal(sl_secret_redact(s, SL_VIEW_LIT("PH_GITHUB sk-ant-REAL-aaaa"), &out), 0);
    sl_buf_free(&out);
    /* No store: pass through. */
    sl_redactor_t r;
    sl_redactor_init(&r, NULL);
    sl_redactor_feed(&r, "abc", 3, &out);
    sl_redactor_finish(&r, &out);
    assert_string_equal(sl_buf_cstr(&out), "abc");
    sl_redactor_free(&r);
    sl_buf_free(&out);
    sl_secret_store_unref(s);
}

/* A redactor keeps its store alive across a rotation. */
static void test_redactor_holds_store(void **state)
{
    (void)state;
    sl_secret_store_t *s = two_store();
    sl_redactor_t r;
    sl_buf_t out = {0};
    sl_redactor_init(&r, s);
    sl_secret_store_unref(s);
    sl_redactor_feed(&r, "x" V2 "y", strlen(V2) + 2, &out);
    sl_redactor_finish(&r, &out);
    assert_string_equal(sl_buf_cstr(&out), "xPH_GITHUBy");
    sl_redactor_free(&r);
    sl_buf_free(&out);
}

/* Echoes of the value in the forms it travels in: base64 (at every offset,
 * as in Basic credentials), JSON-escaped, percent-encoded. */
static void test_redact_encoded_echoes(void **state)
{
    (void)state;
#define V3 "tok/REAL+with=chars/9"
    setenv("SL_R_3", V3, 1);
    sl_secret_store_t *s = th_store("secrets:\n  - { name: enc, source: { env: SL_R_3 },"
                                    " hosts: [x.com], placeholder: PH_ENCODED }\n");
    for (size_t pre = 0; pre < 6; pre++) {
        char plain[64], b64[128], body[512];
        snprintf(plain, sizeof plain, "%.*s" V3 "%.*s", (int)pre, "user:", (int)(pre % 3), "xy");
        EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)plain, (int)strlen(plain));
        snprintf(body, sizeof body,
                 "{\"auth\":\"Basic %s\",\"json\":\"tok\\/REAL+with=chars\\/9\","
                 "\"url\":\"/x?k=tok%%2FREAL%%2Bwith%%3Dchars%%2F9\"}",
                 b64);
        for (size_t split = 0; split <= strlen(body); split += 3) {
            sl_redactor_t r;
            sl_buf_t out = {0};
            sl_redactor_init(&r, s);
            sl_redactor_feed(&r, body, split, &out);
            sl_redactor_feed(&r, body + split, strlen(body) - split, &out);
            sl_redactor_finish(&r, &out);
            assert_int_equal(sl_redactor_count(&r), 3);
            sl_buf_cstr(&out);
            assert_null(strstr(out.p, "REAL"));
            assert_null(strstr(out.p, "chars"));
            assert_non_null(strstr(out.p, "PH_ENCODED"));
            /* The base64 echo (no longer valid base64: lengths differ) does
             * not decode to the value from any starting offset. */
            char *a = strstr(out.p, "Basic ") + 6, *e = strchr(a, '"');
            for (int off = 0; off < 4; off++) {
                unsigned char dec[128];
                int len = (int)(e - a - off) / 4 * 4;
                int dn = EVP_DecodeBlock(dec, (unsigned char *)a + off, len);
                assert_true(dn >= 0);
                assert_null(memmem(dec, (size_t)dn, "REAL", 4));
            }
            sl_redactor_free(&r);
            sl_buf_free(&out);
        }
    }
    sl_secret_store_unref(s);
#undef V3
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_engine_property),
        cmocka_unit_test(test_engine_limits),
        cmocka_unit_test(test_redact_every_split),
        cmocka_unit_test(test_redact_bytewise_no_leak),
        cmocka_unit_test(test_redact_header_value),
        cmocka_unit_test(test_redactor_holds_store),
        cmocka_unit_test(test_redact_encoded_echoes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
