/* Fuzz the credential injector, the request-body filter and the echo
 * redactor against a fixed store.
 *
 * Input: "METHOD HOST TARGET IDENTITY\n" then "Name: value" header lines, a
 * blank line, then a body; the first byte picks the chunk size used for the
 * streaming parts. Invariants:
 *   - a request that carries a real value (raw) is refused;
 *   - a request that is not refused sends real values only to hosts in their
 *     secret's scope (headers, path, query, raw and percent-decoded);
 *   - redaction output never contains a real value, and streaming in chunks
 *     gives exactly the one-shot output;
 *   - the body filter's output is the same whatever the chunking. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/view.h"

#include "config/config.h"
#include "fuzz_check.h"
#include "secrets/inject.h"
#include "secrets/redact.h"
#include "secrets/store.h"

static const char yaml[] =
    "secrets:\n"
    "  - { name: a, source: { env: FZ_A }, placeholder: PH_AAAA_PLACE, hosts: [a.com],"
    " methods: [GET, POST], paths: ['/v1/'], inject: { header: Authorization,"
    " template: 'Bearer {secret}' } }\n"
    "  - { name: b, source: { env: FZ_B }, placeholder: PH_BBBB_PLACE, hosts: ['*.b.com'],"
    " replace_in: [headers, query, path, body], require: true }\n"
    "  - { name: c, source: { env: FZ_C }, placeholder: PH_CCCC_PLACE, hosts: [c.com],"
    " identities: [me], replace_in: [body, query] }\n";
static const char *const values[] = {"sk-REAL-aaaa1111", "sk+REAL/bb=2222", "ghp_REAL%cc3333"};
static const char *const hosts[] = {"a.com", ".b.com", "c.com"};

static sl_secret_store_t *store;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("FZ_A", values[0], 1);
    setenv("FZ_B", values[1], 1);
    setenv("FZ_C", values[2], 1);
    sl_buf_t err = {0};
    sl_config_t *c = sl_config_load_string(yaml, strlen(yaml), "fuzz", &err);
    CHECK(c != NULL);
    store = sl_secret_store_new(c->secrets, c->n_secrets, &err);
    CHECK(store != NULL);
    sl_config_free(c);
    sl_buf_free(&err);
    return 0;
}

static bool host_ok(size_t i, sl_view_t h)
{
    size_t n = strlen(hosts[i]);
    if (h.n > 0 && h.p[h.n - 1] == '.') /* host globs ignore one trailing dot */
        h.n--;
    if (hosts[i][0] == '.')
        return h.n > n && strncasecmp(h.p + h.n - n, hosts[i], n) == 0;
    return sl_view_ieq(h, hosts[i]);
}

/* A real value in v (raw or percent-decoded) may only go to its hosts. */
static void check_sent(sl_view_t v, sl_view_t host)
{
    if (v.n == 0)
        return; /* an empty view may have a NULL pointer */
    char *dec = malloc(v.n + 1);
    size_t dn = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] == '%' && i + 2 < v.n && sl_hexval((unsigned char)v.p[i + 1]) >= 0 &&
            sl_hexval((unsigned char)v.p[i + 2]) >= 0) {
            dec[dn++] = (char)(sl_hexval((unsigned char)v.p[i + 1]) << 4 |
                               sl_hexval((unsigned char)v.p[i + 2]));
            i += 2;
        } else {
            dec[dn++] = v.p[i];
        }
    }
    for (size_t s = 0; s < 3; s++) {
        size_t n = strlen(values[s]);
        if (memmem(v.p, v.n, values[s], n) || memmem(dec, dn, values[s], n))
            CHECK(host_ok(s, host));
    }
    free(dec);
}

static sl_view_t next_line(const char **p, const char *end)
{
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    sl_view_t v = sl_view(*p, nl ? (size_t)(nl - *p) : (size_t)(end - *p));
    *p = nl ? nl + 1 : end;
    return v;
}

static sl_view_t word(sl_view_t *line)
{
    size_t i = 0;
    while (i < line->n && line->p[i] != ' ')
        i++;
    sl_view_t w = sl_view(line->p, i);
    line->p += i < line->n ? i + 1 : i;
    line->n -= i < line->n ? i + 1 : i;
    return w;
}

static void stream(void (*feed)(void *, const char *, size_t, sl_buf_t *), void *ctx, const char *p,
                   size_t n, size_t chunk, sl_buf_t *out)
{
    for (size_t at = 0; at < n; at += chunk)
        feed(ctx, p + at, at + chunk <= n ? chunk : n - at, out);
}

static void redact_feed(void *r, const char *p, size_t n, sl_buf_t *out)
{
    sl_redactor_feed(r, p, n, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    size_t chunk = 1 + data[0] % 61;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;

    /* Redaction: never a value in the output; chunking does not matter. */
    sl_buf_t whole = {0}, parts = {0};
    sl_redactor_t r;
    sl_redactor_init(&r, store);
    sl_redactor_feed(&r, p, (size_t)(end - p), &whole);
    sl_redactor_finish(&r, &whole);
    sl_redactor_free(&r);
    sl_redactor_init(&r, store);
    stream(redact_feed, &r, p, (size_t)(end - p), chunk, &parts);
    sl_redactor_finish(&r, &parts);
    sl_redactor_free(&r);
    CHECK(whole.n == parts.n && (whole.n == 0 || memcmp(whole.p, parts.p, whole.n) == 0));
    for (size_t s = 0; s < 3; s++)
        CHECK(whole.n == 0 || memmem(whole.p, whole.n, values[s], strlen(values[s])) == NULL);
    sl_buf_free(&whole);
    sl_buf_free(&parts);

    /* The request. */
    sl_view_t first = next_line(&p, end);
    sl_secret_req_t q = {0};
    q.method = word(&first);
    q.host = word(&first);
    sl_view_t target = word(&first);
    q.identity = word(&first);
    const char *qm = memchr(target.p, '?', target.n);
    q.path = sl_view(target.p, qm ? (size_t)(qm - target.p) : target.n);
    if (qm) {
        q.has_query = true;
        q.query = sl_view(qm + 1, target.n - q.path.n - 1);
    }
    sl_h1_header_t h[16];
    size_t nh = 0;
    while (p < end && nh < 16) {
        sl_view_t line = next_line(&p, end);
        if (line.n == 0)
            break;
        const char *c = memchr(line.p, ':', line.n);
        if (c == NULL)
            continue;
        h[nh].name = sl_view(line.p, (size_t)(c - line.p));
        sl_view_t v = sl_view(c + 1, line.n - h[nh].name.n - 1);
        while (v.n && v.p[0] == ' ')
            v = sl_view(v.p + 1, v.n - 1);
        h[nh++].value = v;
    }
    q.headers = h;
    q.n_headers = nh;
    const char *body = p;
    size_t body_n = (size_t)(end - p);

    sl_secret_decision_t d;
    sl_secret_decide(store, &q, &d);
    /* Every view the decision was given, as the sandbox sent it. */
    sl_view_t seen[4 + 2 * 16] = {q.method, q.host, target, q.identity};
    size_t n_seen = 4;
    for (size_t i = 0; i < nh; i++) {
        seen[n_seen++] = h[i].name;
        seen[n_seen++] = h[i].value;
    }
    bool raw_value = false;
    for (size_t i = 0; i < n_seen; i++)
        for (size_t s = 0; s < 3; s++)
            raw_value |=
                seen[i].n > 0 && memmem(seen[i].p, seen[i].n, values[s], strlen(values[s])) != NULL;
    if (raw_value)
        CHECK(d.refused);
    if (!d.refused) {
        for (size_t i = 0; i < d.n_headers; i++)
            check_sent(d.headers[i].value, q.host);
        check_sent(d.path, q.host);
        check_sent(d.query, q.host);
        CHECK(d.body_filter);
        /* Body: one shot and chunked agree, in outcome and bytes. */
        sl_buf_t o1 = {0}, o2 = {0};
        sl_secret_body_t b1, b2;
        sl_secret_body_init(&b1, &d);
        int r1 = sl_secret_body_feed(&b1, body, body_n, &o1);
        if (r1 == 0)
            r1 = sl_secret_body_finish(&b1, &o1);
        sl_secret_body_init(&b2, &d);
        int r2 = 0;
        for (size_t at = 0; r2 == 0 && at < body_n; at += chunk)
            r2 = sl_secret_body_feed(&b2, body + at, at + chunk <= body_n ? chunk : body_n - at,
                                     &o2);
        if (r2 == 0)
            r2 = sl_secret_body_finish(&b2, &o2);
        CHECK(r1 == r2);
        if (r1 == 0) {
            CHECK(o1.n == o2.n && (o1.n == 0 || memcmp(o1.p, o2.p, o1.n) == 0));
            CHECK((long long)o1.n == (long long)body_n + sl_secret_body_delta(&b1));
            for (size_t s = 0; s < 3; s++)
                if (o1.n && memmem(o1.p, o1.n, values[s], strlen(values[s])))
                    CHECK(host_ok(s, q.host));
        }
        sl_secret_body_free(&b1);
        sl_secret_body_free(&b2);
        sl_buf_free(&o1);
        sl_buf_free(&o2);
    }
    sl_secret_decision_free(&d);
    return 0;
}
