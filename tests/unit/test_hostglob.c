/* Host pattern validation, single matching and compiled sets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/hostglob.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static sl_view_t V(const char *s)
{
    return sl_view(s, strlen(s));
}

static void test_check(void **state)
{
    static const char *const good[] = {
        "example.com",
        "*.example.com",
        "api.*.example.com",
        "*",
        "10.0.0.0/8",
        "::1",
        "fc00::/7",
        "1.2.3.4",
        "Example.COM.",
        "api-*.example.com",
        "*.*.example.com",
        "*.com",
        "_dmarc.example.com",
        "a*b.example",
        "*example.com",
        "0.0.0.0/0",
        "::/0",
        "localhost",
        "xn--p1ai",
        "*.1a",
    };
    for (size_t i = 0; i < COUNT(good); i++) {
        const char *why = sl_hostglob_check(good[i]);
        if (why != NULL) {
            fprintf(stderr, "\"%s\" refused: %s\n", good[i], why);
            fail();
        }
    }
    char label64[80], long254[300];
    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".com");
    memset(long254, 'a', 254);
    long254[254] = '\0';
    for (int i = 60; i < 254; i += 61)
        long254[i] = '.';
    const char *const bad[] = {
        NULL,
        "",
        "**.example.com",
        "a**b.c",
        "*..com",
        ".example.com",
        "exa mple.com",
        "example..com",
        "10.0.0.1/8",
        "10/8",
        "0x7f.1",
        "127.1",
        "*.0.0.1",
        "1.2.3.999",
        "example.com:443",
        "http://example.com",
        "ex/ample",
        "ex%41.com",
        "fe80::1%eth0",
        "::1/129",
        "a,b",
        "a?b.com",
        "example.123",
        "*.",
        "..",
        label64,
        long254,
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        if (sl_hostglob_check(bad[i]) == NULL) {
            fprintf(stderr, "\"%s\" accepted\n", bad[i] ? bad[i] : "(null)");
            fail();
        }
    }
    (void)state;
}

static const struct {
    const char *pattern, *host;
    bool want;
} match_cases[] = {
    /* exact, case and trailing dot */
    {"example.com", "example.com", true},
    {"example.com", "EXAMPLE.com", true},
    {"Example.COM", "example.com", true},
    {"example.com", "example.com.", true},
    {"example.com.", "example.com", true},
    {"example.com", "www.example.com", false},
    {"example.com", "example.co", false},
    {"example.com", "xexample.com", false},
    {"example.com", "example.com.evil", false},
    {"example.com", "example.com..", false},
    /* leading "*." spans one or more labels */
    {"*.example.com", "api.example.com", true},
    {"*.example.com", "a.b.example.com", true},
    {"*.example.com", "API.Example.COM.", true},
    {"*.example.com", "example.com", false},
    {"*.example.com", "evilexample.com", false},
    {"*.example.com", "example.com.evil.com", false},
    {"*.example.com", ".example.com", false},
    {"*.com", "example.com", true},
    {"*.com", "com", false},
    {"*.*.example.com", "a.b.example.com", true},
    {"*.*.example.com", "a.b.c.example.com", true},
    {"*.*.example.com", "a.example.com", false},
    /* '*' elsewhere stays inside one label */
    {"api.*.example.com", "api.v1.example.com", true},
    {"api.*.example.com", "API.V1.EXAMPLE.COM", true},
    {"api.*.example.com", "api.v1.v2.example.com", false},
    {"api.*.example.com", "api.example.com", false},
    {"api.*.example.com", "x.api.v1.example.com", false},
    {"api.*.example.com", "api..example.com", false},
    {"api-*.example.com", "api-v1.example.com", true},
    {"api-*.example.com", "api-.example.com", true},
    {"api-*.example.com", "api.example.com", false},
    {"api-*.example.com", "api-v1.x.example.com", false},
    {"a*b.example", "ab.example", true},
    {"a*b.example", "axxb.example", true},
    {"a*b.example", "axbxb.example", true},
    {"a*b.example", "axbx.example", false},
    {"a*b.example", "a.b.example", false},
    {"*example.com", "evilexample.com", true},
    {"*example.com", "example.com", true},
    {"*example.com", "a.example.com", false},
    {"api.*", "api.com", true},
    {"api.*", "api.co.uk", false},
    /* everything */
    {"*", "anything", true},
    {"*", "a.b.c", true},
    {"*", "10.0.0.1", true},
    {"*", "", false},
    /* IP patterns match IP literals in any spelling, never names */
    {"10.0.0.0/8", "10.1.2.3", true},
    {"10.0.0.0/8", "0xa.1", true},
    {"10.0.0.0/8", "167772161", true},
    {"10.0.0.0/8", "11.0.0.1", false},
    {"10.0.0.0/8", "ten.example", false},
    {"10.0.0.0/8", "::ffff:10.0.0.1", true},
    {"127.0.0.1", "2130706433", true},
    {"127.0.0.1", "127.0.0.2", false},
    {"::1", "::1", true},
    {"::1", "0:0::1", true},
    {"::1", "::2", false},
    {"fc00::/7", "fd00::1", true},
    {"fc00::/7", "fe80::1%eth0", false},
    {"fe80::/10", "fe80::1%eth0", true},
    {"example.com", "127.0.0.1", false},
    {"0.0.0.0/8", "1.", true},
    {"0.0.0.0/8", "1..", false},
    {"*", "1..", true},
    /* malformed patterns never match */
    {"**.example.com", "a.example.com", false},
    {"10.0.0.1/8", "10.0.0.1", false},
};

static void test_match(void **state)
{
    for (size_t i = 0; i < COUNT(match_cases); i++) {
        bool got = sl_hostglob_match(match_cases[i].pattern, V(match_cases[i].host));
        if (got != match_cases[i].want) {
            fprintf(stderr, "\"%s\" vs \"%s\": %d, want %d\n", match_cases[i].pattern,
                    match_cases[i].host, got, match_cases[i].want);
            fail();
        }
    }
    (void)state;
}

/* A set of one pattern must agree with the single matcher on every case. */
static void test_set_agrees_with_single(void **state)
{
    for (size_t i = 0; i < COUNT(match_cases); i++) {
        char *p[] = {(char *)match_cases[i].pattern};
        sl_hostset_t *s = sl_hostset_new(p, 1);
        if (sl_hostglob_check(p[0]) != NULL) {
            assert_null(s);
            continue;
        }
        assert_non_null(s);
        int got = sl_hostset_match(s, V(match_cases[i].host), NULL);
        if ((got == 0) != match_cases[i].want) {
            fprintf(stderr, "set \"%s\" vs \"%s\": %d, want %d\n", match_cases[i].pattern,
                    match_cases[i].host, got, match_cases[i].want);
            fail();
        }
        sl_hostset_free(s);
    }
    (void)state;
}

static void test_set_first_match(void **state)
{
    char *pats[] = {
        "example.com",          /* 0 */
        "*.example.com",        /* 1 */
        "api.*.corp.internal",  /* 2 */
        "10.0.0.0/8",           /* 3 */
        "*.example.com",        /* 4: duplicate of 1 */
        "Example.COM.",         /* 5: duplicate of 0 */
        "deep.api.example.com", /* 6: shadowed by 1 */
        "::1",                  /* 7 */
        "*.corp.internal",      /* 8 */
        "x-*.dev",              /* 9 */
        "only.late.org",        /* 10 */
    };
    sl_hostset_t *s = sl_hostset_new(pats, COUNT(pats));
    assert_non_null(s);
    assert_int_equal(sl_hostset_count(s), COUNT(pats));
    sl_ip_t ip10, ip8, ip6;
    assert_int_equal(sl_ip_parse_literal("10.0.0.5", 8, &ip10), 1);
    assert_int_equal(sl_ip_parse_literal("8.8.8.8", 7, &ip8), 1);
    assert_int_equal(sl_ip_parse_literal("::1", 3, &ip6), 1);
    static const struct {
        const char *host;
        int ipsel; /* 0 none, 1 = 10.0.0.5, 2 = 8.8.8.8, 3 = ::1 */
        int want;
    } t[] = {
        {"example.com", 0, 0},
        {"EXAMPLE.COM.", 0, 0},
        {"API.example.com", 0, 1},
        {"deep.api.example.com", 0, 1},
        {"api.v1.corp.internal", 0, 2},
        {"other.corp.internal", 0, 8},
        {"corp.internal", 0, -1},
        {"x-1.dev", 0, 9},
        {"x.dev", 0, -1},
        {"10.1.1.1", 0, 3},
        {"0x0a000001", 0, 3},
        {"db.local", 1, 3},
        {"db.local", 2, -1},
        {"::1", 0, 7},
        {"localhost", 3, 7},
        {"nomatch.org", 0, -1},
        {"only.late.org", 0, 10},
        {"only.late.org", 1, 3},
        {"", 0, -1},
        {"", 1, 3},
    };
    const sl_ip_t *ips[] = {NULL, &ip10, &ip8, &ip6};
    for (size_t i = 0; i < COUNT(t); i++) {
        int got = sl_hostset_match(s, V(t[i].host), ips[t[i].ipsel]);
        if (got != t[i].want) {
            fprintf(stderr, "\"%s\" (ip %d): %d, want %d\n", t[i].host, t[i].ipsel, got, t[i].want);
            fail();
        }
    }
    assert_string_equal(sl_hostset_pattern(s, 5), "Example.COM.");
    assert_string_equal(sl_hostset_pattern(s, 0), "example.com");
    assert_null(sl_hostset_pattern(s, -1));
    assert_null(sl_hostset_pattern(s, (int)COUNT(pats)));
    sl_hostset_free(s);

    char *star[] = {"a.com", "*", "b.com", "10.0.0.0/8"};
    s = sl_hostset_new(star, COUNT(star));
    assert_non_null(s);
    assert_int_equal(sl_hostset_match(s, V("a.com"), NULL), 0);
    assert_int_equal(sl_hostset_match(s, V("b.com"), NULL), 1);
    assert_int_equal(sl_hostset_match(s, V("10.0.0.1"), NULL), 1);
    assert_int_equal(sl_hostset_match(s, V(""), &ip10), 3);
    sl_hostset_free(s);

    char *badset[] = {"ok.com", "bad..com"};
    assert_null(sl_hostset_new(badset, COUNT(badset)));
    s = sl_hostset_new(NULL, 0);
    assert_non_null(s);
    assert_int_equal(sl_hostset_match(s, V("a.com"), &ip10), -1);
    assert_int_equal(sl_hostset_count(s), 0);
    sl_hostset_free(s);
    sl_hostset_free(NULL);
    (void)state;
}

/* Random patterns and hosts over a small alphabet, so they collide often:
 * the compiled set must return exactly the first pattern a linear scan with
 * the single matcher finds. */
static void test_set_equals_linear_scan(void **state)
{
    static const char *const labels[] = {"a", "b", "api", "example", "com", "x-1", "A", "Com"};
    static const char *const ipats[] = {"10.0.0.0/8", "10.1.0.0/16", "::1", "fc00::/7",
                                        "127.0.0.1"};
    static const char *const iphosts[] = {"10.1.2.3",  "10.2.0.1", "::1",    "fd00::5",
                                          "127.0.0.1", "0x7f.1",   "8.8.8.8"};
    uint32_t x = 12345;
#define RND() (x = x * 1103515245u + 12345u, (x >> 16) & 0x7fff)
    for (int round = 0; round < 300; round++) {
        char *pats[40];
        size_t np = 1 + RND() % 40;
        for (size_t i = 0; i < np; i++) {
            char buf[128] = "";
            unsigned kind = RND() % 10;
            if (kind == 0) {
                snprintf(buf, sizeof(buf), "%s", ipats[RND() % COUNT(ipats)]);
            } else if (kind == 1 && RND() % 4 == 0) {
                strcpy(buf, "*");
            } else {
                size_t nl = 1 + RND() % 3;
                if (kind <= 4)
                    strcat(buf, "*.");
                for (size_t l = 0; l < nl; l++) {
                    if (l)
                        strcat(buf, ".");
                    unsigned r = RND() % 12;
                    if (r == 0)
                        strcat(buf, "*");
                    else if (r == 1)
                        strcat(buf, "a*");
                    else
                        strcat(buf, labels[r % COUNT(labels)]);
                }
                if (RND() % 8 == 0 && strcmp(buf, "*") != 0)
                    strcat(buf, ".");
            }
            pats[i] = strdup(buf);
            assert_null(sl_hostglob_check(pats[i]));
        }
        sl_hostset_t *s = sl_hostset_new(pats, np);
        assert_non_null(s);
        for (int h = 0; h < 50; h++) {
            char host[128] = "";
            if (RND() % 6 == 0) {
                strcpy(host, iphosts[RND() % COUNT(iphosts)]);
            } else {
                size_t nl = 1 + RND() % 4;
                for (size_t l = 0; l < nl; l++) {
                    if (l)
                        strcat(host, ".");
                    strcat(host, labels[RND() % COUNT(labels)]);
                }
                if (RND() % 8 == 0)
                    strcat(host, ".");
            }
            int want = -1;
            for (size_t i = 0; i < np && want < 0; i++)
                if (sl_hostglob_match(pats[i], V(host)))
                    want = (int)i;
            int got = sl_hostset_match(s, V(host), NULL);
            if (got != want) {
                fprintf(stderr, "host \"%s\": set %d (%s), scan %d (%s)\n", host, got,
                        got >= 0 ? pats[got] : "-", want, want >= 0 ? pats[want] : "-");
                fail();
            }
        }
        sl_hostset_free(s);
        for (size_t i = 0; i < np; i++)
            free(pats[i]);
    }
#undef RND
    (void)state;
}

/* Many patterns: exact and suffix entries are found through the tables, and
 * nothing is lost when the tables grow past their first size. */
static void test_set_large(void **state)
{
    enum { N = 3000 };
    char **pats = calloc(N, sizeof(char *));
    assert_non_null(pats);
    for (int i = 0; i < N; i++) {
        char buf[64];
        if (i % 3 == 0)
            snprintf(buf, sizeof(buf), "host%d.example.com", i);
        else if (i % 3 == 1)
            snprintf(buf, sizeof(buf), "*.svc%d.example.net", i);
        else
            snprintf(buf, sizeof(buf), "api-%d-*.example.org", i);
        pats[i] = strdup(buf);
    }
    sl_hostset_t *s = sl_hostset_new(pats, N);
    assert_non_null(s);
    for (int i = 0; i < N; i++) {
        char host[80];
        if (i % 3 == 0)
            snprintf(host, sizeof(host), "HOST%d.example.com", i);
        else if (i % 3 == 1)
            snprintf(host, sizeof(host), "a.b.svc%d.example.net", i);
        else
            snprintf(host, sizeof(host), "api-%d-x.example.org", i);
        assert_int_equal(sl_hostset_match(s, V(host), NULL), i);
    }
    assert_int_equal(sl_hostset_match(s, V("host1.example.com"), NULL), -1);
    assert_int_equal(sl_hostset_match(s, V("svc1.example.net"), NULL), -1);
    assert_int_equal(sl_hostset_match(s, V("nothing.example"), NULL), -1);
    sl_hostset_free(s);
    for (int i = 0; i < N; i++)
        free(pats[i]);
    free(pats);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_set_agrees_with_single),
        cmocka_unit_test(test_set_first_match),
        cmocka_unit_test(test_set_equals_linear_scan),
        cmocka_unit_test(test_set_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
