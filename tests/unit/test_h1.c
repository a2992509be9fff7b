/* Unit tests for the strict HTTP/1.1 parser: heads, framing (smuggling
 * vectors), hop-by-hop headers and the chunked decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/h1.h"

static sl_h1_header_t hdrs[32];

static int parse_req(const char *s, sl_h1_request_t *req, const char **err)
{
    req->headers = hdrs;
    req->n_headers = 32;
    return sl_h1_parse_request(s, strlen(s), req, err);
}

static void test_simple_request(void **state)
{
    sl_h1_request_t req;
    const char *err = NULL;
    const char *s = "GET http://example.com/a?b=1 HTTP/1.1\r\nHost: example.com\r\n"
                    "X-Spaces:   padded value  \r\n\r\nBODY";
    int r = parse_req(s, &req, &err);
    assert_int_equal(r, (int)(strlen(s) - 4));
    assert_true(sl_view_eq(req.method, "GET"));
    assert_true(sl_view_eq(req.target, "http://example.com/a?b=1"));
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.n_headers, 2);
    assert_true(sl_view_eq(req.headers[1].value, "padded value"));
}

static void test_incomplete(void **state)
{
    sl_h1_request_t req;
    const char *err = NULL;
    const char *full = "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t i = 0; i < strlen(full); i++) {
        req.headers = hdrs;
        req.n_headers = 32;
        assert_int_equal(sl_h1_parse_request(full, i, &req, &err), SL_H1_INCOMPLETE);
    }
}

static void test_rejects(void **state)
{
    static const char *bad[] = {
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", /* obs-fold */
        "GET http://a/ HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",         /* bare CR */
        "GET http://a/ HTTP/1.1\nHost: a\n\n",                     /* bare LF */
        "GET http://a/ HTTP/1.1\r\nHost : a\r\n\r\n",              /* space before colon */
        "G(T http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",               /* bad method */
        "GET http://a/\x7f HTTP/1.1\r\nHost: a\r\n\r\n",           /* bad target */
        "GET http://a/ HTTP/2.0\r\nHost: a\r\n\r\n",               /* version */
        "GET  http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",              /* double space */
        "GET http://a/ HTTP/1.1\r\n: empty\r\n\r\n",               /* empty name */
        "GET http://a/ HTTP/1.1\r\nX: \x01\r\n\r\n",               /* control */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sl_h1_request_t req;
        const char *err = NULL;
        req.headers = hdrs;
        req.n_headers = 32;
        int r = sl_h1_parse_request(bad[i], strlen(bad[i]), &req, &err);
        assert_int_equal(r, SL_H1_BAD);
        assert_non_null(err);
    }
}

static void test_nul_in_head(void **state)
{
    const char nul[] = "GET http://a/ HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    sl_h1_request_t req = {.headers = hdrs, .n_headers = 32};
    const char *err = NULL;
    assert_int_equal(sl_h1_parse_request(nul, sizeof nul - 1, &req, &err), SL_H1_BAD);
    assert_string_equal(err, "NUL byte in header value");
}

static void test_too_many_headers(void **state)
{
    sl_h1_request_t req;
    const char *err = NULL;
    req.headers = hdrs;
    req.n_headers = 2;
    const char *s = "GET http://a/ HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_int_equal(sl_h1_parse_request(s, strlen(s), &req, &err), SL_H1_BAD);
    assert_string_equal(err, "too many header fields");
}

static int framing_of(const char *s, sl_h1_framing_t *f, const char **err)
{
    sl_h1_request_t req;
    int r = parse_req(s, &req, err);
    assert_true(r > 0);
    return sl_h1_request_framing(&req, f, err);
}

static void test_framing_smuggling(void **state)
{
    static const char *bad[] = {
        "POST http://a/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
        "chunked\r\n\r\n",
        "POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sl_h1_framing_t f;
        const char *err = NULL;
        assert_int_equal(framing_of(bad[i], &f, &err), -1);
        assert_non_null(err);
    }
}

static void test_framing_ok(void **state)
{
    sl_h1_framing_t f;
    const char *err = NULL;
    assert_int_equal(framing_of("POST http://a/ HTTP/1.1\r\nContent-Length: 12\r\n\r\n", &f, &err),
                     0);
    assert_int_equal(f.kind, SL_H1_BODY_LENGTH);
    assert_int_equal(f.length, 12);
    assert_true(f.keep_alive);
    assert_int_equal(
        framing_of("POST http://a/ HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &f, &err), 0);
    assert_int_equal(f.kind, SL_H1_BODY_CHUNKED);
    assert_int_equal(framing_of("GET http://a/ HTTP/1.1\r\nConnection: close\r\n\r\n", &f, &err),
                     0);
    assert_false(f.keep_alive);
    assert_int_equal(framing_of("GET http://a/ HTTP/1.0\r\n\r\n", &f, &err), 0);
    assert_false(f.keep_alive);
    assert_int_equal(framing_of("POST http://a/ HTTP/1.1\r\nExpect: 100-continue\r\n"
                                "Content-Length: 1\r\n\r\n",
                                &f, &err),
                     0);
    assert_true(f.expect_100);
}

static void test_response_framing(void **state)
{
    sl_h1_response_t res;
    sl_h1_framing_t f;
    const char *err = NULL;
    const char *s = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
    res.headers = hdrs;
    res.n_headers = 32;
    assert_true(sl_h1_parse_response(s, strlen(s), &res, &err) > 0);
    assert_int_equal(sl_h1_response_framing(&res, SL_VIEW_LIT("GET"), &f, &err), 0);
    assert_int_equal(f.kind, SL_H1_BODY_UNTIL_CLOSE);
    assert_false(f.keep_alive);
    assert_int_equal(sl_h1_response_framing(&res, SL_VIEW_LIT("HEAD"), &f, &err), 0);
    assert_int_equal(f.kind, SL_H1_BODY_NONE);
    const char *s204 = "HTTP/1.1 204 No Content\n\n"; /* bare LF tolerated from upstreams */
    res.n_headers = 32;
    assert_true(sl_h1_parse_response(s204, strlen(s204), &res, &err) > 0);
    assert_int_equal(res.status, 204);
    const char *bad = "HTTP/1.1 99 Odd\r\n\r\n";
    res.n_headers = 32;
    assert_int_equal(sl_h1_parse_response(bad, strlen(bad), &res, &err), SL_H1_BAD);
}

static void test_hop_by_hop(void **state)
{
    sl_h1_request_t req;
    const char *err = NULL;
    parse_req("GET http://a/ HTTP/1.1\r\nConnection: close, X-Secret-Hop\r\nX-Secret-Hop: 1\r\n"
              "X-Keep: 2\r\n\r\n",
              &req, &err);
    assert_true(sl_h1_is_hop_by_hop(SL_VIEW_LIT("x-secret-hop"), req.headers, req.n_headers));
    assert_true(
        sl_h1_is_hop_by_hop(SL_VIEW_LIT("Proxy-Authorization"), req.headers, req.n_headers));
    assert_true(sl_h1_is_hop_by_hop(SL_VIEW_LIT("TE"), req.headers, req.n_headers));
    assert_true(sl_h1_is_hop_by_hop(SL_VIEW_LIT("Keep-Alive"), req.headers, req.n_headers));
    assert_true(sl_h1_is_hop_by_hop(SL_VIEW_LIT("Proxy-Connection"), req.headers, req.n_headers));
    assert_false(sl_h1_is_hop_by_hop(SL_VIEW_LIT("X-Keep"), req.headers, req.n_headers));
}

/* Decode `in` fed one byte at a time; returns the decoded text. */
static int chunked_bytewise(const char *in, char *out, size_t *out_len, sl_chunked_t *d)
{
    const char *err = NULL;
    sl_chunked_init(d);
    *out_len = 0;
    for (size_t i = 0; in[i] && !d->done; i++) {
        char b = in[i];
        size_t len = 1, used = 0;
        if (sl_chunked_decode(d, &b, &len, &used, &err) != 0)
            return -1;
        assert_int_equal(used, 1);
        if (len)
            out[(*out_len)++] = b;
    }
    return 0;
}

static void test_chunked(void **state)
{
    sl_chunked_t d;
    char out[128];
    size_t n;
    assert_int_equal(
        chunked_bytewise("5\r\nhello\r\n6;name=v\r\n world\r\n0\r\nX-T: 1\r\n\r\n", out, &n, &d),
        0);
    assert_true(d.done);
    assert_int_equal(n, 11);
    assert_memory_equal(out, "hello world", 11);
    assert_int_equal(d.trailers_len, 8);
    assert_memory_equal(d.trailers, "X-T: 1\r\n", 8);

    static const char *bad[] = {"0x5\r\nhello\r\n0\r\n\r\n",
                                "-1\r\n",
                                "5 ;\r\nhello\r\n",
                                "fffffffffffffffff\r\n",
                                "5\r\nhelloX\r\n",
                                "5\nhello\r\n",
                                "\r\n",
                                "0\r\nbad trailer\r\n\r\n",
                                "0\r\n folded: x\r\n\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(chunked_bytewise(bad[i], out, &n, &d), -1);
}

static void test_chunked_leftover(void **state)
{
    sl_chunked_t d;
    const char *err = NULL;
    char buf[] = "3\r\nabc\r\n0\r\n\r\nGET next";
    size_t len = sizeof buf - 1, used = 0;
    sl_chunked_init(&d);
    assert_int_equal(sl_chunked_decode(&d, buf, &len, &used, &err), 0);
    assert_true(d.done);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(used, sizeof buf - 1 - strlen("GET next"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_request),   cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_rejects),          cmocka_unit_test(test_nul_in_head),
        cmocka_unit_test(test_too_many_headers), cmocka_unit_test(test_framing_smuggling),
        cmocka_unit_test(test_framing_ok),       cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_hop_by_hop),       cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_leftover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
