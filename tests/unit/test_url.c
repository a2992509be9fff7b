/* Request-target parsing and host normalisation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/url.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool view_is(sl_view_t v, const char *s)
{
    return v.n == strlen(s) && (v.n == 0 || memcmp(v.p, s, v.n) == 0);
}

static void expect_view(const char *in, const char *what, sl_view_t v, const char *want)
{
    if (!view_is(v, want)) {
        fprintf(stderr, "%s: %s = \"%.*s\", want \"%s\"\n", in, what, (int)v.n, v.p ? v.p : "",
                want);
        fail();
    }
}

/* Every non-empty view must point inside the input. */
static void expect_inside(const char *in, size_t n, sl_view_t v)
{
    if (v.n == 0)
        return;
    assert_true(v.p >= in && v.p + v.n <= in + n);
}

static void test_absolute_good(void **state)
{
    static const struct {
        const char *in, *scheme, *userinfo, *host;
        bool v6;
        unsigned port;
        bool has_port;
        const char *path, *query;
        bool has_query;
        const char *frag;
    } t[] = {
        {"http://example.com/", "http", "", "example.com", false, 80, false, "/", "", false, ""},
        {"https://example.com", "https", "", "example.com", false, 443, false, "", "", false, ""},
        {"HTTP://Example.COM:8080/a/b?x=1&y=2#frag", "HTTP", "", "Example.COM", false, 8080, true,
         "/a/b", "x=1&y=2", true, "frag"},
        {"HtTpS://h:443/", "HtTpS", "", "h", false, 443, true, "/", "", false, ""},
        {"http://user:pass@host/", "http", "user:pass", "host", false, 80, false, "/", "", false,
         ""},
        {"http://u%41:p!$&'()*+,;=@host:1/", "http", "u%41:p!$&'()*+,;=", "host", false, 1, true,
         "/", "", false, ""},
        {"http://[::1]/", "http", "", "::1", true, 80, false, "/", "", false, ""},
        {"https://[2001:db8::1]:8443/x", "https", "", "2001:db8::1", true, 8443, true, "/x", "",
         false, ""},
        {"http://[fe80::1%25eth0]:8080/", "http", "", "fe80::1%25eth0", true, 8080, true, "/", "",
         false, ""},
        {"http://[::ffff:1.2.3.4]/", "http", "", "::ffff:1.2.3.4", true, 80, false, "/", "", false,
         ""},
        {"http://host?q", "http", "", "host", false, 80, false, "", "q", true, ""},
        {"http://host/?", "http", "", "host", false, 80, false, "/", "", true, ""},
        {"http://host#f", "http", "", "host", false, 80, false, "", "", false, "f"},
        {"http://host/p?q#f?g#h", "http", "", "host", false, 80, false, "/p", "q", true, "f?g#h"},
        {"http://example.com./", "http", "", "example.com.", false, 80, false, "/", "", false, ""},
        {"http://127.0.0.1:65535/", "http", "", "127.0.0.1", false, 65535, true, "/", "", false,
         ""},
        {"http://0x7f.1/", "http", "", "0x7f.1", false, 80, false, "/", "", false, ""},
        {"http://a_b-c.example/", "http", "", "a_b-c.example", false, 80, false, "/", "", false,
         ""},
        {"http://h/%41%2f%2F", "http", "", "h", false, 80, false, "/%41%2f%2F", "", false, ""},
        {"http://h/a{b}|c^d?e[f]=\"g\"", "http", "", "h", false, 80, false, "/a{b}|c^d",
         "e[f]=\"g\"", true, ""},
        {"http://u/x@h/", "http", "", "u", false, 80, false, "/x@h/", "", false, ""},
        {"http://u?@h/", "http", "", "u", false, 80, false, "", "@h/", true, ""},
        {"http://u#@h/", "http", "", "u", false, 80, false, "", "", false, "@h/"},
        {"http://h//a/../b", "http", "", "h", false, 80, false, "//a/../b", "", false, ""},
        {"http://h:1", "http", "", "h", false, 1, true, "", "", false, ""},
    };
    for (size_t i = 0; i < COUNT(t); i++) {
        sl_url_t u;
        const char *in = t[i].in;
        size_t n = strlen(in);
        int rc = sl_url_parse_absolute(in, n, &u);
        if (rc != SL_URL_OK) {
            fprintf(stderr, "%s: rc %d (%s)\n", in, rc, sl_url_strerror(rc));
            fail();
        }
        expect_view(in, "scheme", u.scheme, t[i].scheme);
        expect_view(in, "userinfo", u.userinfo, t[i].userinfo);
        expect_view(in, "host", u.host, t[i].host);
        expect_view(in, "path", u.path, t[i].path);
        expect_view(in, "query", u.query, t[i].query);
        expect_view(in, "fragment", u.fragment, t[i].frag);
        assert_int_equal(u.host_is_ipv6, t[i].v6);
        assert_int_equal(u.port, t[i].port);
        assert_int_equal(u.has_port, t[i].has_port);
        assert_int_equal(u.has_query, t[i].has_query);
        sl_view_t all[] = {u.scheme, u.userinfo, u.host, u.path, u.query, u.fragment};
        for (size_t k = 0; k < COUNT(all); k++)
            expect_inside(in, n, all[k]);
    }
    (void)state;
}

struct bad_case {
    const char *in;
    int rc;
};

static void check_bad(const struct bad_case *t, size_t count, bool authority)
{
    for (size_t i = 0; i < count; i++) {
        sl_url_t u;
        size_t n = strlen(t[i].in);
        int rc = authority ? sl_url_parse_authority(t[i].in, n, &u)
                           : sl_url_parse_absolute(t[i].in, n, &u);
        if (rc != t[i].rc) {
            fprintf(stderr, "\"%s\": rc %d (%s), want %d (%s)\n", t[i].in, rc, sl_url_strerror(rc),
                    t[i].rc, sl_url_strerror(t[i].rc));
            fail();
        }
    }
}

static void test_absolute_bad(void **state)
{
    static const struct bad_case t[] = {
        {"", SL_URL_EMPTY},
        /* scheme */
        {"ftp://h/", SL_URL_BAD_SCHEME},
        {"http:/h/", SL_URL_BAD_SCHEME},
        {"http//h/", SL_URL_BAD_SCHEME},
        {"httpx://h/", SL_URL_BAD_SCHEME},
        {"/path", SL_URL_BAD_SCHEME},
        {"http:h", SL_URL_BAD_SCHEME},
        {"://h/", SL_URL_BAD_SCHEME},
        {"http", SL_URL_BAD_SCHEME},
        {"ws://h/", SL_URL_BAD_SCHEME},
        {"http:///h", SL_URL_BAD_HOST},
        /* bytes */
        {"http://h :80/", SL_URL_BAD_CHAR},
        {"http://h/ a", SL_URL_BAD_CHAR},
        {"http://h/\x01", SL_URL_BAD_CHAR},
        {"http://h/\x7f", SL_URL_BAD_CHAR},
        {"http://h/\xc3\xa9", SL_URL_BAD_CHAR},
        {"http://h\xc3\xa9.com/", SL_URL_BAD_CHAR},
        {"http://good.com\\@evil.com/", SL_URL_BAD_CHAR},
        {"http://h/a\\b", SL_URL_BAD_CHAR},
        {"http://h/\ta", SL_URL_BAD_CHAR},
        {"http://h/\r\nX: y", SL_URL_BAD_CHAR},
        {" http://h/", SL_URL_BAD_CHAR},
        {"http://h/%", SL_URL_BAD_CHAR},
        {"http://h/%4", SL_URL_BAD_CHAR},
        {"http://h/%4g", SL_URL_BAD_CHAR},
        {"http://h/?a=%zz", SL_URL_BAD_CHAR},
        {"http://h/#%", SL_URL_BAD_CHAR},
        /* host */
        {"http://", SL_URL_BAD_HOST},
        {"http:///path", SL_URL_BAD_HOST},
        {"http://:80/", SL_URL_BAD_HOST},
        {"http://?q", SL_URL_BAD_HOST},
        {"http://#f", SL_URL_BAD_HOST},
        {"http://ex%41mple.com/", SL_URL_BAD_HOST},
        {"http://a..b/", SL_URL_BAD_HOST},
        {"http://.a/", SL_URL_BAD_HOST},
        {"http://a../", SL_URL_BAD_HOST},
        {"http://./", SL_URL_BAD_HOST},
        {"http://ex!ample/", SL_URL_BAD_HOST},
        {"http://ex*ample/", SL_URL_BAD_HOST},
        {"http://a,b/", SL_URL_BAD_HOST},
        {"http://[::1/", SL_URL_BAD_HOST},
        {"http://[]/", SL_URL_BAD_HOST},
        {"http://[::g]/", SL_URL_BAD_HOST},
        {"http://[v1.x]/", SL_URL_BAD_HOST},
        {"http://[::1]x/", SL_URL_BAD_HOST},
        {"http://[::1]]/", SL_URL_BAD_HOST},
        {"http://[[::1]]/", SL_URL_BAD_HOST},
        {"http://[fe80::1%eth0]/", SL_URL_BAD_HOST},
        {"http://[fe80::1%25]/", SL_URL_BAD_HOST},
        {"http://[fe80::1%25eth%2f0]/", SL_URL_BAD_HOST},
        {"http://[fe80::1%25eth0%25x]/", SL_URL_BAD_HOST},
        {"http://[1.2.3.4]/", SL_URL_BAD_HOST},
        {"http://[example.com]/", SL_URL_BAD_HOST},
        {"http://::1/", SL_URL_BAD_HOST},
        {"http://1.2.3.999/", SL_URL_BAD_HOST},
        {"http://0x/", SL_URL_BAD_HOST},
        {"http://1.2.3.4.5/", SL_URL_BAD_HOST},
        {"http://08.1.1.1/", SL_URL_BAD_HOST},
        {"http://example.123/", SL_URL_BAD_HOST},
        {"http://u@/", SL_URL_BAD_HOST},
        {"http://u@:80/", SL_URL_BAD_HOST},
        /* port */
        {"http://h:/", SL_URL_BAD_PORT},
        {"http://h:", SL_URL_BAD_PORT},
        {"http://h:+80/", SL_URL_BAD_PORT},
        {"http://h:-1/", SL_URL_BAD_PORT},
        {"http://h:65536/", SL_URL_BAD_PORT},
        {"http://h:99999/", SL_URL_BAD_PORT},
        {"http://h:123456/", SL_URL_BAD_PORT},
        {"http://h:0/", SL_URL_BAD_PORT},
        {"http://h:00/", SL_URL_BAD_PORT},
        {"http://h:080/", SL_URL_BAD_PORT},
        {"http://h:8a/", SL_URL_BAD_PORT},
        {"http://h:0x50/", SL_URL_BAD_PORT},
        {"http://h:80:80/", SL_URL_BAD_PORT},
        {"http://[::1]:/", SL_URL_BAD_PORT},
        {"http://[::1]:0/", SL_URL_BAD_PORT},
        /* userinfo */
        {"http://a@b@c/", SL_URL_BAD_USERINFO},
        {"http://good.com@evil.com@x/", SL_URL_BAD_USERINFO},
        {"http://@h/", SL_URL_BAD_USERINFO},
        {"http://u[x]@h/", SL_URL_BAD_USERINFO},
        {"http://u%zz@h/", SL_URL_BAD_USERINFO},
        {"http://u%4@h/", SL_URL_BAD_USERINFO},
        {"http://u\"@h/", SL_URL_BAD_USERINFO},
        {"http://u<>@h/", SL_URL_BAD_USERINFO},
    };
    check_bad(t, COUNT(t), false);
    /* An embedded NUL is a bad byte, not a terminator. */
    sl_url_t u;
    assert_int_equal(sl_url_parse_absolute("http://a\0.evil/", 15, &u), SL_URL_BAD_CHAR);
    assert_int_equal(sl_url_parse_absolute(NULL, 0, &u), SL_URL_EMPTY);
    (void)state;
}

static void test_lengths(void **state)
{
    char in[600], host[300];
    sl_url_t u;
    /* 63-byte label is fine, 64 is not. */
    memset(host, 'a', 63);
    host[63] = '\0';
    snprintf(in, sizeof(in), "http://%s.com/", host);
    assert_int_equal(sl_url_parse_absolute(in, strlen(in), &u), SL_URL_OK);
    memset(host, 'a', 64);
    host[64] = '\0';
    snprintf(in, sizeof(in), "http://%s.com/", host);
    assert_int_equal(sl_url_parse_absolute(in, strlen(in), &u), SL_URL_TOO_LONG);
    /* 253 bytes (4 x 63-byte labels minus 3) is fine, with or without a
     * trailing dot; 254 is not. */
    memset(host, 'b', 253);
    host[63] = host[127] = host[191] = '.';
    host[253] = '\0';
    assert_int_equal(strlen(host), 253);
    snprintf(in, sizeof(in), "http://%s/", host);
    assert_int_equal(sl_url_parse_absolute(in, strlen(in), &u), SL_URL_OK);
    snprintf(in, sizeof(in), "http://%s./", host);
    assert_int_equal(sl_url_parse_absolute(in, strlen(in), &u), SL_URL_OK);
    snprintf(in, sizeof(in), "http://%sc/", host);
    assert_int_equal(sl_url_parse_absolute(in, strlen(in), &u), SL_URL_TOO_LONG);
    /* The zone id counts towards the host length. */
    char zone[260];
    memset(zone, 'z', 240);
    zone[240] = '\0';
    snprintf(in, sizeof(in), "http://[fe80::1%%25%s]/", zone);
    assert_int_equal(sl_url_parse_absolute(in, strlen(in), &u), SL_URL_OK);
    snprintf(in, sizeof(in), "http://[fe80::1%%25%szzzz]/", zone);
    assert_int_equal(sl_url_parse_absolute(in, strlen(in), &u), SL_URL_TOO_LONG);
    snprintf(in, sizeof(in), "%s:443", host);
    assert_int_equal(sl_url_parse_authority(in, strlen(in), &u), SL_URL_OK);
    snprintf(in, sizeof(in), "%sc:443", host);
    assert_int_equal(sl_url_parse_authority(in, strlen(in), &u), SL_URL_TOO_LONG);
    (void)state;
}

static void test_authority(void **state)
{
    static const struct {
        const char *in, *host;
        bool v6;
        unsigned port;
    } good[] = {
        {"example.com:443", "example.com", false, 443},
        {"EXAMPLE.com:1", "EXAMPLE.com", false, 1},
        {"[::1]:443", "::1", true, 443},
        {"[fe80::1%25eth0]:22", "fe80::1%25eth0", true, 22},
        {"10.0.0.1:65535", "10.0.0.1", false, 65535},
        {"example.com.:443", "example.com.", false, 443},
    };
    for (size_t i = 0; i < COUNT(good); i++) {
        sl_url_t u;
        size_t n = strlen(good[i].in);
        int rc = sl_url_parse_authority(good[i].in, n, &u);
        if (rc != SL_URL_OK) {
            fprintf(stderr, "%s: rc %d\n", good[i].in, rc);
            fail();
        }
        expect_view(good[i].in, "host", u.host, good[i].host);
        expect_inside(good[i].in, n, u.host);
        assert_int_equal(u.host_is_ipv6, good[i].v6);
        assert_int_equal(u.port, good[i].port);
        assert_true(u.has_port);
        assert_int_equal(u.scheme.n, 0);
        assert_int_equal(u.path.n, 0);
        assert_false(u.has_query);
    }
    static const struct bad_case bad[] = {
        {"", SL_URL_EMPTY},
        {"example.com", SL_URL_BAD_PORT},
        {"example.com:", SL_URL_BAD_PORT},
        {"[::1]", SL_URL_BAD_PORT},
        {"h:0", SL_URL_BAD_PORT},
        {"h:65536", SL_URL_BAD_PORT},
        {"h:+443", SL_URL_BAD_PORT},
        {"h:0443", SL_URL_BAD_PORT},
        {"u@h:443", SL_URL_BAD_USERINFO},
        {"u:p@h:443", SL_URL_BAD_USERINFO},
        {"h:443/", SL_URL_BAD_HOST},
        {"h:443?", SL_URL_BAD_HOST},
        {"h:443#", SL_URL_BAD_HOST},
        {"http://h:443", SL_URL_BAD_HOST},
        {":443", SL_URL_BAD_HOST},
        {"[]:443", SL_URL_BAD_HOST},
        {"[::1:443", SL_URL_BAD_HOST},
        {"::1:443", SL_URL_BAD_HOST},
        {"1.2.3.999:443", SL_URL_BAD_HOST},
        {"h :443", SL_URL_BAD_CHAR},
        {"h\\:443", SL_URL_BAD_CHAR},
        {"h\xff:443", SL_URL_BAD_CHAR},
    };
    check_bad(bad, COUNT(bad), true);
    (void)state;
}

static void test_normalize(void **state)
{
    static const struct {
        const char *in, *out;
    } good[] = {
        {"Example.COM.", "example.com"},
        {"example.com", "example.com"},
        {"EXAMPLE.COM", "example.com"},
        {"a_b-c.d", "a_b-c.d"},
        {"127.0.0.1", "127.0.0.1"},
        {"0X7F.1", "0x7f.1"},
        {"localhost.", "localhost"},
        {"::1", "::1"},
        {"[::1]", "::1"},
        {"[2001:DB8::1]", "2001:db8::1"},
        {"FE80::1%25ETH0", "fe80::1%25eth0"},
        {"fe80::1%eth0", "fe80::1%eth0"},
    };
    for (size_t i = 0; i < COUNT(good); i++) {
        char out[300];
        int n = sl_host_normalize(sl_view(good[i].in, strlen(good[i].in)), out, sizeof(out));
        if (n < 0 || strcmp(out, good[i].out) != 0 || (size_t)n != strlen(good[i].out)) {
            fprintf(stderr, "normalize \"%s\" -> %d \"%s\", want \"%s\"\n", good[i].in, n,
                    n >= 0 ? out : "", good[i].out);
            fail();
        }
    }
    static const char *const bad[] = {
        "",    ".",         "a..b",     ".a",       "a..", "ex ample", "exa$mple", "1.2.3.999",
        "::g", "[::1",      "ex%41",    "\xc3\xa9", "[]",  "a/b",      "a\\b",     "a:b",
        "0x",  "1.2.3.4.5", "fe80::1%", "a*b",      "a@b", "[a.b]",    "..",
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        char out[300];
        int n = sl_host_normalize(sl_view(bad[i], strlen(bad[i])), out, sizeof(out));
        if (n != -1) {
            fprintf(stderr, "normalize \"%s\" -> %d, want -1\n", bad[i], n);
            fail();
        }
    }
    char label[80], out[300];
    memset(label, 'x', 64);
    assert_int_equal(sl_host_normalize(sl_view(label, 64), out, sizeof(out)), -1);
    assert_int_equal(sl_host_normalize(sl_view(label, 63), out, sizeof(out)), 63);
    /* Capacity: the NUL must fit too. */
    assert_int_equal(sl_host_normalize(SL_VIEW_LIT("Abc."), out, 4), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(sl_host_normalize(SL_VIEW_LIT("abcd"), out, 4), -1);
    assert_int_equal(sl_host_normalize(SL_VIEW_NULL, out, sizeof(out)), -1);
    /* 253 bytes plus a trailing dot normalise to 253; 254 do not. */
    char big[260];
    memset(big, 'a', sizeof(big));
    for (int i = 63; i < 253; i += 64)
        big[i] = '.';
    big[253] = '.';
    assert_int_equal(sl_host_normalize(sl_view(big, 254), out, sizeof(out)), 253);
    big[253] = 'a';
    assert_int_equal(sl_host_normalize(sl_view(big, 254), out, sizeof(out)), -1);
    (void)state;
}

/* Normalising what the parser accepts must succeed: a host that passes one
 * and not the other is a policy bypass waiting to happen. */
static void test_parse_then_normalize(void **state)
{
    static const char *const in[] = {
        "http://Example.COM./",     "http://[FE80::1%25Eth0]/",  "http://0x7F.1/",
        "https://a_b.example:8443", "http://[::ffff:10.0.0.1]/",
    };
    for (size_t i = 0; i < COUNT(in); i++) {
        sl_url_t u;
        char out[300];
        assert_int_equal(sl_url_parse_absolute(in[i], strlen(in[i]), &u), SL_URL_OK);
        int n = sl_host_normalize(u.host, out, sizeof(out));
        assert_true(n > 0);
        for (int k = 0; k < n; k++)
            assert_false(out[k] >= 'A' && out[k] <= 'Z');
        assert_true(out[n - 1] != '.');
    }
    (void)state;
}

static void test_strerror(void **state)
{
    int codes[] = {SL_URL_OK,       SL_URL_EMPTY,    SL_URL_BAD_SCHEME, SL_URL_BAD_HOST,
                   SL_URL_BAD_PORT, SL_URL_BAD_CHAR, SL_URL_TOO_LONG,   SL_URL_BAD_USERINFO};
    for (size_t i = 0; i < COUNT(codes); i++) {
        const char *a = sl_url_strerror(codes[i]);
        assert_non_null(a);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(a, sl_url_strerror(codes[k]));
    }
    assert_string_equal(sl_url_strerror(-999), "unknown URL error");
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absolute_good), cmocka_unit_test(test_absolute_bad),
        cmocka_unit_test(test_lengths),       cmocka_unit_test(test_authority),
        cmocka_unit_test(test_normalize),     cmocka_unit_test(test_parse_then_normalize),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
