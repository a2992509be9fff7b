/* The split-secret history over the built-in rules: pieces joined per
 * channel and identity, within the window and bounds; what completes is
 * found once, benign repetition is not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <pthread.h>

#include "inspect/history.h"
#include "inspect/inspect.h"

#define GHP "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" /* rules/credentials-scm.yaml example */
#define VISA "4539148803436467"                        /* Luhn-valid, made up */

static sl_ruleset_t *rs;

static int setup(void **state)
{
    (void)state;
    sl_ruleset_opts_t o = {0};
    sl_buf_t err = {0};
    rs = sl_ruleset_load(&o, &err);
    if (!rs)
        fprintf(stderr, "%s", sl_buf_cstr(&err));
    sl_buf_free(&err);
    return rs ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sl_ruleset_unref(rs);
    return 0;
}

static const sl_history_limits_t LIM = {.window_ms = 60000};

/* One request of `who` with one fragment `value` in `channel`. */
static int send1(sl_history_t *h, const sl_history_limits_t *lim, const char *who,
                 const char *channel, const char *value, size_t n, uint64_t now, sl_findings_t *f,
                 sl_history_hit_t *hit)
{
    sl_history_frag_t fr = {.channel = sl_view(channel, strlen(channel)),
                            .value = sl_view(value, n),
                            .surface = SL_SURF_URL};
    sl_findings_reset(f);
    return sl_history_check(h, lim, sl_view(who, strlen(who)), &fr, 1, now, rs, f, hit);
}

/* Send `secret` in pieces of `k` bytes; returns the index of the first
 * request with a finding, or -1. */
static int send_split(sl_history_t *h, const sl_history_limits_t *lim, const char *who,
                      const char *channel, const char *secret, size_t k, uint64_t now,
                      uint64_t step, sl_history_hit_t *hit, const char **rule)
{
    sl_findings_t f = {0};
    size_t n = strlen(secret);
    int at = -1;
    for (size_t i = 0, r = 0; i < n; i += k, r++) {
        size_t len = n - i < k ? n - i : k;
        if (send1(h, lim, who, channel, secret + i, len, now + r * step, &f, hit) > 0) {
            at = (int)r;
            if (rule)
                *rule = f.v[0].rule_id;
            assert_int_equal(f.v[0].layer, SL_LAYER_JOINED);
            break;
        }
    }
    sl_findings_free(&f);
    return at;
}

static void completing_request_is_found(void **state)
{
    (void)state;
    sl_history_t *h = sl_history_new();
    sl_history_hit_t hit = {0};
    const char *rule = NULL;
    assert_int_equal(send_split(h, &LIM, "a", "q:d", GHP, 8, 1000, 100, &hit, &rule), 4);
    assert_string_equal(rule, "github-pat-classic");
    assert_int_equal(hit.pieces, 5);
    /* The completing piece was not recorded: sending it again is refused again. */
    sl_findings_t f = {0};
    assert_true(send1(h, &LIM, "a", "q:d", GHP + 32, 8, 2000, &f, NULL) > 0);
    /* A payment card, 4 digits a request. */
    rule = NULL;
    assert_int_equal(send_split(h, &LIM, "a", "h:x-n", VISA, 4, 3000, 100, &hit, &rule), 3);
    assert_string_equal(rule, "card-visa");
    sl_findings_free(&f);
    sl_history_free(h);
}

static void whole_secret_in_one_request_is_not_repeated(void **state)
{
    (void)state;
    sl_history_t *h = sl_history_new();
    sl_findings_t f = {0};
    assert_int_equal(send1(h, &LIM, "a", "q:d", "abc", 3, 1000, &f, NULL), 0);
    /* The per-request scan refuses this one; the history adds nothing. */
    assert_int_equal(send1(h, &LIM, "a", "q:d", GHP, strlen(GHP), 1001, &f, NULL), 0);
    sl_findings_free(&f);
    sl_history_free(h);
}

static void identities_channels_and_window_keep_apart(void **state)
{
    (void)state;
    sl_history_t *h = sl_history_new();
    sl_findings_t f = {0};
    /* Alternating identities. */
    for (size_t i = 0, r = 0; i < 40; i += 8, r++)
        assert_int_equal(send1(h, &LIM, r % 2 ? "a" : "b", "q:d", GHP + i, 8, 1000 + r, &f, NULL),
                         0);
    /* Alternating channels. */
    const char *chans[] = {"q:x", "q:y"};
    for (size_t i = 0, r = 0; i < 40; i += 8, r++)
        assert_int_equal(send1(h, &LIM, "c", chans[r % 2], GHP + i, 8, 1000 + r, &f, NULL), 0);
    /* Pieces further apart than the window. */
    sl_history_limits_t lim = {.window_ms = 1000};
    assert_int_equal(send_split(h, &lim, "d", "q:d", GHP, 8, 1000, 1001, NULL, NULL), -1);
    assert_int_equal(send_split(h, &lim, "e", "q:d", GHP, 8, 1000, 200, NULL, NULL), 4);
    sl_findings_free(&f);
    sl_history_free(h);
}

static void bounds_hold(void **state)
{
    (void)state;
    sl_history_t *h = sl_history_new();
    sl_findings_t f = {0};
    /* Too few entries kept to see all five pieces. */
    sl_history_limits_t lim = {.max_entries = 3};
    assert_int_equal(send_split(h, &lim, "a", "q:d", GHP, 8, 1000, 1, NULL, NULL), -1);
    lim.max_entries = 5;
    assert_int_equal(send_split(h, &lim, "b", "q:d", GHP, 8, 1000, 1, NULL, NULL), 4);
    /* Bytes per identity. */
    lim = (sl_history_limits_t){.max_bytes = 300};
    char v[64];
    for (int i = 0; i < 200; i++) {
        snprintf(v, sizeof v, "value-%d-%s", i * 7919, "padpadpadpadpad");
        send1(h, &lim, "c", "h:x", v, strlen(v), 2000 + (uint64_t)i, &f, NULL);
    }
    size_t ids, bytes;
    sl_history_stats(h, &ids, &bytes);
    assert_true(bytes <= 300 + 2 * 40 + 5 * 8);
    /* Identities: least recently used evicted. */
    lim = (sl_history_limits_t){.max_identities = 32};
    for (int i = 0; i < 1000; i++) {
        snprintf(v, sizeof v, "agent-%d", i);
        send1(h, &lim, v, "q:d", "x", 1, 3000, &f, NULL);
    }
    sl_history_stats(h, &ids, &bytes);
    assert_true(ids <= 32 + 16);
    /* A busy channel: only its newest bytes are joined, the secret after
     * 200 other values is still found. */
    sl_history_free(h);
    h = sl_history_new();
    for (int i = 0; i < 200; i++) {
        snprintf(v, sizeof v, "c%08x.", (unsigned)i * 2654435761u);
        assert_int_equal(send1(h, &LIM, "a", "q:d", v, strlen(v), 1000, &f, NULL), 0);
    }
    assert_int_equal(send_split(h, &LIM, "a", "q:d", GHP, 8, 1000, 1, NULL, NULL), 4);
    /* A long value keeps only its tail. */
    sl_history_free(h);
    h = sl_history_new();
    char big[2000];
    memset(big, 'z', sizeof big);
    send1(h, &LIM, "a", "q:d", big, sizeof big, 1000, &f, NULL);
    sl_history_stats(h, &ids, &bytes);
    assert_int_equal(bytes, 256);
    sl_findings_free(&f);
    sl_history_free(h);
}

static void benign_repetition_is_quiet(void **state)
{
    (void)state;
    sl_history_t *h = sl_history_new();
    sl_findings_t f = {0};
    char v[128];
    for (int i = 0; i < 60; i++) {
        uint64_t now = 1000 + (uint64_t)i * 500;
        snprintf(v, sizeof v, "%d", i + 1);
        assert_int_equal(send1(h, &LIM, "a", "q:page", v, strlen(v), now, &f, NULL), 0);
        snprintf(v, sizeof v, "%d", i * 20);
        assert_int_equal(send1(h, &LIM, "a", "q:offset", v, strlen(v), now, &f, NULL), 0);
        snprintf(v, sizeof v, "%d", 4000 + i);
        assert_int_equal(send1(h, &LIM, "a", "p:api.test|b", v, strlen(v), now, &f, NULL), 0);
        snprintf(v, sizeof v, "%llu", 1795405592000ull + now);
        assert_int_equal(send1(h, &LIM, "a", "q:ts", v, strlen(v), now, &f, NULL), 0);
        snprintf(v, sizeof v, "%08x-%04x-4%03x-a%03x-%012llx", (unsigned)(i * 2654435761u),
                 i * 31 & 0xffff, i * 7 & 0xfff, i * 13 & 0xfff,
                 (unsigned long long)i * 0x9e3779b97f4aull & 0xffffffffffffull);
        assert_int_equal(send1(h, &LIM, "a", "h:x-request-id", v, strlen(v), now, &f, NULL), 0);
        snprintf(v, sizeof v, "session=%s", "0123456789abcdef0123456789abcdef");
        assert_int_equal(send1(h, &LIM, "a", "h:cookie", v, strlen(v), now, &f, NULL), 0);
    }
    /* Consecutive ids whose digits happen to make a Luhn-valid Visa shape:
     * 4003 4004 4005 4006. Counters are not joined. */
    for (int i = 0; i < 4; i++) {
        snprintf(v, sizeof v, "%d", 4003 + i);
        assert_int_equal(send1(h, &LIM, "ids", "p:api.test|b", v, 4, 1000, &f, NULL), 0);
    }
    sl_history_free(h);
    /* A repeated value is stored once. */
    h = sl_history_new();
    snprintf(v, sizeof v, "session=%s", "0123456789abcdef0123456789abcdef");
    for (int i = 0; i < 20; i++)
        send1(h, &LIM, "a", "h:cookie", v, strlen(v), 1000 + (uint64_t)i, &f, NULL);
    size_t bytes;
    sl_history_stats(h, NULL, &bytes);
    assert_int_equal(bytes, strlen(v));
    /* Also a long one (only its tail is kept). */
    char big[1000];
    memset(big, 'c', sizeof big);
    for (int i = 0; i < 20; i++)
        send1(h, &LIM, "a", "h:cookie2", big, sizeof big, 1000 + (uint64_t)i, &f, NULL);
    sl_history_stats(h, NULL, &bytes);
    assert_int_equal(bytes, strlen(v) + 256);
    sl_findings_free(&f);
    sl_history_free(h);
}

/* Workers share the store: hammer it from several threads (ASan/UBSan
 * builds catch races that corrupt it), then check it still finds a split. */
static sl_history_t *shared;

static void *hammer(void *arg)
{
    unsigned t = (unsigned)(uintptr_t)arg;
    sl_findings_t f = {0};
    char who[16], v[32];
    for (unsigned i = 0; i < 3000; i++) {
        snprintf(who, sizeof who, "agent-%u", (i + t) % 5);
        snprintf(v, sizeof v, "v%u.%u", t, i * 7919u);
        sl_history_limits_t lim = {.max_identities = 16, .max_entries = 8};
        send1(shared, &lim, who, i % 2 ? "q:a" : "h:b", v, strlen(v), 1000 + i, &f, NULL);
    }
    sl_findings_free(&f);
    return NULL;
}

static void threads_share_the_store(void **state)
{
    (void)state;
    shared = sl_history_new();
    pthread_t th[4];
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, (void *)i), 0);
    for (size_t i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    size_t ids, bytes;
    sl_history_stats(shared, &ids, &bytes);
    assert_true(ids <= 5);
    assert_int_equal(send_split(shared, &LIM, "agent-1", "q:z", GHP, 8, 5000, 1, NULL, NULL), 4);
    sl_history_free(shared);
}

typedef struct fields {
    char text[512];
    size_t n;
} fields_t;

static void collect(void *arg, sl_view_t name, sl_view_t value)
{
    fields_t *f = arg;
    f->n++;
    size_t used = strlen(f->text);
    snprintf(f->text + used, sizeof f->text - used, "%.*s=%.*s;", (int)name.n, name.p, (int)value.n,
             value.p);
}

static void body_fields(void **state)
{
    (void)state;
    struct {
        const char *in, *want;
    } cases[] = {
        {"{\"data\": \"ghp_kbjh\", \"n\": 3, \"ok\": true}", "data=ghp_kbjh;"},
        {" [{\"d\":\"a\\\"b\"},{\"e\":{\"f\":\"x\"}}]", "d=a\\\"b;f=x;"},
        {"{\"tags\": [\"one\", \"two\"], \"k\": \"v\"}", "tags=one;tags=two;k=v;"},
        {"{\"a\": \"unterminated", "a=unterminated;"},
        {"d=abc&e=&f=x%20y", "d=abc;e=;f=x%20y;"},
        {"just some text = here", "=just some text = here;"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        fields_t f = {{0}, 0};
        size_t n = sl_history_body_fields(cases[i].in, strlen(cases[i].in), collect, &f);
        assert_int_equal(n, f.n);
        assert_string_equal(f.text, cases[i].want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(completing_request_is_found),
        cmocka_unit_test(whole_secret_in_one_request_is_not_repeated),
        cmocka_unit_test(identities_channels_and_window_keep_apart),
        cmocka_unit_test(bounds_hold),
        cmocka_unit_test(benign_repetition_is_quiet),
        cmocka_unit_test(body_fields),
        cmocka_unit_test(threads_share_the_store),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
