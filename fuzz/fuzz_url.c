/* libFuzzer driver for request-target parsing and host normalisation.
 *
 * Besides "does not crash", it checks the contracts callers rely on: views
 * lie inside the input, a parsed host always normalises, normalised output
 * is lowercase without a trailing dot and is a fixed point, and hosts agree
 * between the absolute and authority parsers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/url.h"
#include "net/ipaddr.h"
#include "policy/hostglob.h"
#include "fuzz_check.h"

static void inside(const uint8_t *in, size_t n, sl_view_t v)
{
    if (v.n == 0)
        return;
    CHECK(v.p >= (const char *)in && v.p + v.n <= (const char *)in + n);
}

static void check_normalized(const char *out, int len)
{
    CHECK(len > 0 && len <= SL_HOST_MAX);
    CHECK(strlen(out) == (size_t)len);
    for (int i = 0; i < len; i++) {
        CHECK(!(out[i] >= 'A' && out[i] <= 'Z'));
        CHECK((unsigned char)out[i] > 0x20 && (unsigned char)out[i] < 0x7f);
        CHECK(out[i] != '[' && out[i] != ']');
    }
    /* Names lose their trailing dot; an IPv6 zone id ("eth0.100") may end in
     * one and is kept as written. */
    if (memchr(out, ':', (size_t)len) == NULL)
        CHECK(out[len - 1] != '.');
    /* Normalising twice changes nothing. */
    char again[512];
    int len2 = sl_host_normalize(sl_view(out, (size_t)len), again, sizeof(again));
    CHECK(len2 == len && memcmp(out, again, (size_t)len) == 0);
}

static char *patterns[] = {
    "example.com", "*.example.com", "api.*.example.com", "a*.b*", "10.0.0.0/8", "*.*.c",
    "x-*.dev",     "::1",           "fe80::/10",         "api.*", "*.com",      "0.0.0.0/8",
    "A*",          "*a.b",          "localhost",         "*",
};

/* The compiled set must pick the same first pattern as a linear scan. */
static void check_hostset(sl_view_t host)
{
    static sl_hostset_t *set;
    size_t n = sizeof(patterns) / sizeof(patterns[0]);
    if (set == NULL)
        set = sl_hostset_new(patterns, n);
    CHECK(set != NULL);
    int want = -1;
    for (size_t i = 0; i < n && want < 0; i++)
        if (sl_hostglob_match(patterns[i], host))
            want = (int)i;
    /* Without "*" too, so the other patterns decide. */
    CHECK(sl_hostset_match(set, host, NULL) == want);
    static sl_hostset_t *nostar;
    if (nostar == NULL)
        nostar = sl_hostset_new(patterns, n - 1);
    want = -1;
    for (size_t i = 0; i + 1 < n && want < 0; i++)
        if (sl_hostglob_match(patterns[i], host))
            want = (int)i;
    CHECK(sl_hostset_match(nostar, host, NULL) == want);
}

static void check_url(const uint8_t *data, size_t size, const sl_url_t *u, bool absolute)
{
    inside(data, size, u->scheme);
    inside(data, size, u->userinfo);
    inside(data, size, u->host);
    inside(data, size, u->path);
    inside(data, size, u->query);
    inside(data, size, u->fragment);
    CHECK(u->host.n > 0);
    CHECK(u->port > 0);
    if (absolute) {
        CHECK(u->path.n == 0 || u->path.p[0] == '/');
        CHECK(u->has_query || u->query.n == 0);
        if (!u->has_port)
            CHECK(u->port == (u->scheme.n == 5 ? 443 : 80));
    }
    char out[512];
    int len = sl_host_normalize(u->host, out, sizeof(out));
    CHECK(len > 0);
    check_normalized(out, len);
    sl_ip_t ip;
    int lit = sl_ip_parse_literal(u->host.p, u->host.n, &ip);
    CHECK(lit >= 0);
    CHECK(u->host_is_ipv6 == (lit == 1 && ip.family == AF_INET6));
    check_hostset(u->host);
    check_hostset(sl_view(out, (size_t)len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_url_t u;
    if (sl_url_parse_absolute((const char *)data, size, &u) == SL_URL_OK) {
        check_url(data, size, &u, true);
        /* The authority of an absolute URL, parsed as CONNECT, names the
         * same host. */
        const char *a = u.host.p - (u.host_is_ipv6 ? 1 : 0);
        size_t an = (size_t)(u.host.p + u.host.n - a) + (u.host_is_ipv6 ? 1 : 0);
        if (u.has_port) {
            const char *end = a + an;
            while (end < (const char *)data + size && *end != '/' && *end != '?' && *end != '#')
                end++;
            sl_url_t c;
            CHECK(sl_url_parse_authority(a, (size_t)(end - a), &c) == SL_URL_OK);
            CHECK(c.port == u.port && c.host.p == u.host.p && c.host.n == u.host.n);
        }
    }
    if (sl_url_parse_authority((const char *)data, size, &u) == SL_URL_OK) {
        check_url(data, size, &u, false);
        CHECK(u.has_port);
    }
    char out[512];
    int len = sl_host_normalize(sl_view((const char *)data, size), out, sizeof(out));
    if (len >= 0)
        check_normalized(out, len);
    /* Unnormalised bytes too: the two matchers must never disagree. */
    check_hostset(sl_view((const char *)data, size));
    (void)sl_url_strerror(len);
    return 0;
}
