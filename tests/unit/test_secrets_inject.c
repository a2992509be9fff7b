/* Secrets: injection decisions (scope in every dimension, require, Basic
 * auth, query/path, real values from the sandbox) and the body filter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "secrets/inject.h"
#include "test_secrets_helpers.h"

#define V_OPENAI "sk-openai-REAL-0001"
#define V_GH "ghp+REAL/gh=token42"
#define V_BASIC "p@ss/w:rd+REAL"
#define V_BODY "body-REAL-secret-99"

static const char yaml[] = "secrets:\n"
                           "  - name: openai\n"
                           "    source: { env: SL_T_OPENAI }\n"
                           "    placeholder: PH_OPENAI_XXXX\n"
                           "    hosts: [api.openai.com]\n"
                           "    methods: [POST, GET]\n"
                           "    paths: ['/v1/']\n"
                           "    identities: [agent-1]\n"
                           "    inject: { header: Authorization, template: 'Bearer {secret}' }\n"
                           "  - name: gh\n"
                           "    source: { env: SL_T_GH }\n"
                           "    placeholder: PH_GITHUB_XXXX\n"
                           "    hosts: [api.github.com]\n"
                           "    replace_in: [headers, query, path]\n"
                           "    require: true\n"
                           "  - name: basic\n"
                           "    source: { env: SL_T_BASIC }\n"
                           "    placeholder: PH_BASIC_XXXX\n"
                           "    hosts: ['*.example.com']\n"
                           "    paths: ['/v2/*/blobs', '/api/*/x']\n"
                           "  - name: body\n"
                           "    source: { env: SL_T_BODY }\n"
                           "    placeholder: PH_BODY_XXXX\n"
                           "    hosts: [upload.example.net]\n"
                           "    replace_in: [body]\n"
                           "    require: true\n";

static sl_secret_store_t *store;

static int setup(void **state)
{
    (void)state;
    setenv("SL_T_OPENAI", V_OPENAI, 1);
    setenv("SL_T_GH", V_GH, 1);
    setenv("SL_T_BASIC", V_BASIC, 1);
    setenv("SL_T_BODY", V_BODY, 1);
    store = th_store(yaml);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_secret_store_unref(store);
    return 0;
}

/* A request from a compact description; headers as "Name: value" strings. */
typedef struct req {
    const char *identity, *method, *host, *target;
    const char *headers[6];
} req_t;

static sl_h1_header_t hdrs[8];

static void decide(const req_t *r, sl_secret_decision_t *d)
{
    sl_secret_req_t q = {0};
    q.identity = sl_view(r->identity, strlen(r->identity));
    q.method = sl_view(r->method, strlen(r->method));
    q.host = sl_view(r->host, strlen(r->host));
    const char *t = r->target, *qm = strchr(t, '?');
    q.path = sl_view(t, qm ? (size_t)(qm - t) : strlen(t));
    if (qm) {
        q.has_query = true;
        q.query = sl_view(qm + 1, strlen(qm + 1));
    }
    size_t n = 0;
    for (; n < 6 && r->headers[n]; n++) {
        const char *c = strchr(r->headers[n], ':');
        hdrs[n].name = sl_view(r->headers[n], (size_t)(c - r->headers[n]));
        hdrs[n].value = sl_view(c + 2, strlen(c + 2));
    }
    q.headers = hdrs;
    q.n_headers = n;
    sl_secret_decide(store, &q, d);
}

static const char *header(const sl_secret_decision_t *d, const char *name, char *buf)
{
    for (size_t i = 0; i < d->n_headers; i++)
        if (sl_view_ieq(d->headers[i].name, name)) {
            memcpy(buf, d->headers[i].value.p, d->headers[i].value.n);
            buf[d->headers[i].value.n] = '\0';
            return buf;
        }
    return NULL;
}

static void expect_refused(const req_t *r, const char *rule, const char *secret, const char *dim)
{
    sl_secret_decision_t d;
    decide(r, &d);
    if (!d.refused)
        fail_msg("%s %s%s: not refused (want %s)", r->method, r->host, r->target, rule);
    assert_string_equal(d.rule, rule);
    assert_string_equal(d.secret, secret);
    if (dim)
        assert_string_equal(d.dimension, dim);
    assert_non_null(strstr(d.reason, secret));
    /* Refusal texts name the secret, never a value. */
    assert_null(strstr(d.reason, "REAL"));
    sl_secret_decision_free(&d);
}

/* ---- headers and inject ------------------------------------------------ */

static void test_header_placeholder_replaced(void **state)
{
    (void)state;
    req_t r = {"agent-1",
               "POST",
               "api.openai.com",
               "/v1/chat/completions",
               {"Authorization: Bearer PH_OPENAI_XXXX", "Accept-Encoding: gzip, br"}};
    sl_secret_decision_t d;
    char buf[256];
    decide(&r, &d);
    assert_false(d.refused);
    assert_true(d.changed);
    assert_string_equal(header(&d, "authorization", buf), "Bearer " V_OPENAI);
    assert_string_equal(header(&d, "accept-encoding", buf), "identity");
    assert_int_equal(d.n_headers, 2);
    assert_int_equal(d.n_uses, 1);
    assert_string_equal(d.uses[0].name, "openai");
    assert_string_equal(d.uses[0].where, "header:Authorization");
    assert_false(d.uses[0].injected);
    assert_true(d.body_filter);
    assert_false(d.body_replace);
    sl_secret_decision_free(&d);
}

static void test_inject_when_missing(void **state)
{
    (void)state;
    req_t r = {"agent-1", "GET", "api.openai.com", "/v1/models", {"Accept: */*"}};
    sl_secret_decision_t d;
    char buf[256];
    decide(&r, &d);
    assert_false(d.refused);
    assert_string_equal(header(&d, "Authorization", buf), "Bearer " V_OPENAI);
    assert_string_equal(header(&d, "Accept-Encoding", buf), "identity");
    assert_int_equal(d.n_uses, 1);
    assert_true(d.uses[0].injected);
    assert_string_equal(d.uses[0].where, "header:Authorization");
    sl_secret_decision_free(&d);

    /* The agent brought its own Authorization: nothing is injected over it. */
    req_t own = {"agent-1", "GET", "api.openai.com", "/v1/models", {"authorization: Bearer mine"}};
    decide(&own, &d);
    assert_false(d.refused);
    assert_false(d.changed);
    assert_string_equal(header(&d, "Authorization", buf), "Bearer mine");
    assert_int_equal(d.n_uses, 0);
    sl_secret_decision_free(&d);
}

static void test_out_of_scope_without_placeholder_untouched(void **state)
{
    (void)state;
    req_t r = {"agent-2", "GET", "example.org", "/", {"Accept: */*"}};
    sl_secret_decision_t d;
    char buf[64];
    decide(&r, &d);
    assert_false(d.refused);
    assert_false(d.changed);
    assert_null(header(&d, "Authorization", buf));
    assert_int_equal(d.n_headers, 1);
    sl_secret_decision_free(&d);
}

/* ---- scope ------------------------------------------------------------- */

static void test_out_of_scope_each_dimension(void **state)
{
    (void)state;
    const char *auth = "Authorization: Bearer PH_OPENAI_XXXX";
    req_t host = {"agent-1", "POST", "api.openai.com.evil.net", "/v1/x", {auth}};
    req_t method = {"agent-1", "DELETE", "api.openai.com", "/v1/x", {auth}};
    req_t path = {"agent-1", "POST", "api.openai.com", "/v2/x", {auth}};
    req_t dots = {"agent-1", "POST", "api.openai.com", "/v1/../admin", {auth}};
    req_t enc = {"agent-1", "POST", "api.openai.com", "/v1/%2e%2e/admin", {auth}};
    req_t ident = {"agent-2", "POST", "api.openai.com", "/v1/x", {auth}};
    req_t noident = {"", "POST", "api.openai.com", "/v1/x", {auth}};
    expect_refused(&host, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "host");
    expect_refused(&method, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "method");
    expect_refused(&path, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "path");
    expect_refused(&dots, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "path");
    expect_refused(&enc, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "path");
    expect_refused(&ident, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "identity");
    expect_refused(&noident, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "identity");

    /* Anywhere in the request: other headers, query, path, percent-encoded. */
    req_t q = {"agent-1", "GET", "evil.net", "/c?k=PH_OPENAI_XXXX", {NULL}};
    req_t qe = {"agent-1", "GET", "evil.net", "/c?k=PH%5FOPENAI%5fXXXX", {NULL}};
    req_t p = {"agent-1", "GET", "evil.net", "/PH_OPENAI_XXXX/x", {NULL}};
    req_t h = {"agent-1", "GET", "evil.net", "/", {"X-Note: PH_OPENAI_XXXX"}};
    req_t hn = {"agent-1", "GET", "evil.net", "/", {"PH_OPENAI_XXXX: 1"}};
    req_t he = {"agent-1", "GET", "evil.net", "/", {"Cookie: a=PH%5FOPENAI_XXXX"}};
    expect_refused(&q, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "host");
    expect_refused(&qe, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "host");
    expect_refused(&p, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "host");
    expect_refused(&h, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "host");
    expect_refused(&hn, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "host");
    expect_refused(&he, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "host");
    sl_secret_decision_t d;
    decide(&q, &d);
    assert_true(d.high_severity);
    sl_secret_decision_free(&d);
}

static void test_path_globs(void **state)
{
    (void)state;
    const char *auth = "Authorization: Bearer PH_BASIC_XXXX";
    req_t ok1 = {"x", "GET", "r.example.com", "/v2/lib/blobs", {auth}};
    req_t ok2 = {"x", "GET", "r.example.com", "/api/a/b/c/x", {auth}};
    req_t bad1 = {"x", "GET", "r.example.com", "/v3/lib/blobs", {auth}};
    req_t bad2 = {"x", "GET", "r.example.com", "/v2/lib/blobs/more", {auth}};
    sl_secret_decision_t d;
    decide(&ok1, &d);
    assert_false(d.refused);
    assert_int_equal(d.n_uses, 1);
    sl_secret_decision_free(&d);
    decide(&ok2, &d);
    assert_false(d.refused);
    sl_secret_decision_free(&d);
    expect_refused(&bad1, SL_SECRET_RULE_OUT_OF_SCOPE, "basic", "path");
    expect_refused(&bad2, SL_SECRET_RULE_OUT_OF_SCOPE, "basic", "path");
}

/* ---- real values ------------------------------------------------------- */

static void test_real_value_refused_everywhere(void **state)
{
    (void)state;
    char basic[128] = "Authorization: Basic ";
    /* base64("u:" V_OPENAI) */
    strcat(basic, "dTpzay1vcGVuYWktUkVBTC0wMDAx");
    req_t cases[] = {
        {"agent-1", "POST", "api.openai.com", "/v1/x", {"Authorization: Bearer " V_OPENAI}},
        {"agent-1", "GET", "evil.net", "/?k=" V_OPENAI, {NULL}},
        {"agent-1", "GET", "evil.net", "/" V_OPENAI, {NULL}},
        {"agent-1", "GET", "evil.net", "/?k=ghp%2BREAL%2Fgh%3Dtoken42", {NULL}},
        {"agent-1", "GET", "evil.net", "/", {basic}},
        {"agent-1", "GET", "evil.net", "/", {"X-A: b", "X-Leak: pre" V_BODY "post"}},
    };
    const char *names[] = {"openai", "openai", "openai", "gh", "openai", "body"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        expect_refused(&cases[i], SL_SECRET_RULE_REAL_VALUE, names[i], NULL);
        sl_secret_decision_t d;
        decide(&cases[i], &d);
        assert_true(d.high_severity);
        sl_secret_decision_free(&d);
    }
}

/* ---- require ----------------------------------------------------------- */

static void test_require(void **state)
{
    (void)state;
    req_t none = {"a", "GET", "api.github.com", "/user", {"Accept: */*"}};
    req_t own = {"a", "GET", "api.github.com", "/user", {"Authorization: token ghp_mine"}};
    req_t ph = {"a", "GET", "api.github.com", "/user", {"Authorization: token PH_GITHUB_XXXX"}};
    expect_refused(&none, SL_SECRET_RULE_REQUIRED_MISSING, "gh", NULL);
    expect_refused(&own, SL_SECRET_RULE_REQUIRED_MISSING, "gh", NULL);
    sl_secret_decision_t d;
    char buf[128];
    decide(&ph, &d);
    assert_false(d.refused);
    assert_string_equal(header(&d, "authorization", buf), "token " V_GH);
    sl_secret_decision_free(&d);
    /* Out of scope, require does not apply. */
    req_t other = {"a", "GET", "github.com", "/", {NULL}};
    decide(&other, &d);
    assert_false(d.refused);
    sl_secret_decision_free(&d);
}

/* ---- Basic, query, path ------------------------------------------------ */

static void test_basic_auth(void **state)
{
    (void)state;
    /* base64("robot:PH_BASIC_XXXX") */
    req_t r = {"x",
               "GET",
               "r.example.com",
               "/v2/a/blobs",
               {"Authorization: Basic cm9ib3Q6UEhfQkFTSUNfWFhYWA=="}};
    sl_secret_decision_t d;
    char buf[128];
    decide(&r, &d);
    assert_false(d.refused);
    /* base64("robot:" V_BASIC) */
    assert_string_equal(header(&d, "Authorization", buf), "Basic cm9ib3Q6cEBzcy93OnJkK1JFQUw=");
    assert_string_equal(d.uses[0].where, "header:Authorization");
    sl_secret_decision_free(&d);
    /* The same credential to a host out of scope is an exfiltration attempt. */
    req_t bad = {
        "x", "GET", "evil.net", "/", {"authorization: basic cm9ib3Q6UEhfQkFTSUNfWFhYWA=="}};
    expect_refused(&bad, SL_SECRET_RULE_OUT_OF_SCOPE, "basic", "host");
}

static void test_query_and_path(void **state)
{
    (void)state;
    req_t r = {
        "a", "GET", "api.github.com", "/repos/PH_GITHUB_XXXX/x?a=1&t=PH_GITHUB_XXXX&b=2", {NULL}};
    sl_secret_decision_t d;
    decide(&r, &d);
    assert_false(d.refused);
    assert_true(d.changed);
    assert_true(d.has_query);
    assert_int_equal(d.path.n, strlen("/repos/ghp%2BREAL%2Fgh%3Dtoken42/x"));
    assert_memory_equal(d.path.p, "/repos/ghp%2BREAL%2Fgh%3Dtoken42/x", d.path.n);
    assert_int_equal(d.query.n, strlen("a=1&t=ghp%2BREAL%2Fgh%3Dtoken42&b=2"));
    assert_memory_equal(d.query.p, "a=1&t=ghp%2BREAL%2Fgh%3Dtoken42&b=2", d.query.n);
    assert_int_equal(d.n_uses, 2);
    assert_string_equal(d.uses[0].where, "path");
    assert_string_equal(d.uses[1].where, "query");
    sl_secret_decision_free(&d);

    /* A placeholder in a location the secret does not enable stays as is
     * (openai replaces in headers only). */
    req_t q = {"agent-1", "GET", "api.openai.com", "/v1/x?k=PH_OPENAI_XXXX", {NULL}};
    decide(&q, &d);
    assert_false(d.refused);
    assert_memory_equal(d.query.p, "k=PH_OPENAI_XXXX", d.query.n);
    sl_secret_decision_free(&d);
}

static void test_no_store(void **state)
{
    (void)state;
    sl_secret_req_t q = {
        .method = SL_VIEW_LIT("GET"), .host = SL_VIEW_LIT("x.com"), .path = SL_VIEW_LIT("/")};
    sl_secret_decision_t d;
    sl_secret_decide(NULL, &q, &d);
    assert_false(d.refused);
    assert_false(d.changed);
    assert_false(d.body_filter);
    sl_secret_decision_free(&d);
}

/* ---- body -------------------------------------------------------------- */

static int run_body(sl_secret_decision_t *d, const char *body, size_t split, sl_buf_t *out,
                    sl_secret_body_t *b)
{
    sl_secret_body_init(b, d);
    size_t n = strlen(body);
    if (split > n)
        split = n;
    if (sl_secret_body_feed(b, body, split, out) != 0)
        return -1;
    if (sl_secret_body_feed(b, body + split, n - split, out) != 0)
        return -1;
    return sl_secret_body_finish(b, out);
}

static void test_body_replacement(void **state)
{
    (void)state;
    req_t r = {"a", "POST", "upload.example.net", "/up", {"Content-Type: application/json"}};
    const char *body = "{\"key\":\"PH_BODY_XXXX\",\"again\":\"PH_BODY_XXXX\"}";
    const char *want = "{\"key\":\"" V_BODY "\",\"again\":\"" V_BODY "\"}";
    sl_secret_decision_t d;
    decide(&r, &d);
    assert_false(d.refused); /* require is pending on the body */
    assert_true(d.body_replace);
    assert_true(sl_secret_body_encoding_ok(&d, SL_VIEW_LIT(" identity ")));
    assert_true(sl_secret_body_encoding_ok(&d, SL_VIEW_NULL));
    assert_false(sl_secret_body_encoding_ok(&d, SL_VIEW_LIT("gzip")));
    for (size_t split = 0; split <= strlen(body); split++) {
        sl_buf_t out = {0};
        sl_secret_body_t b;
        assert_int_equal(run_body(&d, body, split, &out, &b), 0);
        assert_int_equal(out.n, strlen(want));
        assert_memory_equal(out.p, want, out.n);
        assert_int_equal(sl_secret_body_delta(&b), (long long)(strlen(want) - strlen(body)));
        const char *names[2];
        assert_int_equal(sl_secret_body_used(&b, names, 2), 1);
        assert_string_equal(names[0], "body");
        sl_secret_body_free(&b);
        sl_buf_free(&out);
    }
    /* require: a body without the placeholder is refused at the end. */
    sl_buf_t out = {0};
    sl_secret_body_t b;
    assert_int_equal(run_body(&d, "{}", 1, &out, &b), -1);
    assert_string_equal(b.rule, SL_SECRET_RULE_REQUIRED_MISSING);
    sl_secret_body_free(&b);
    sl_buf_free(&out);
    sl_secret_decision_free(&d);
}

static void test_body_refusals(void **state)
{
    (void)state;
    /* A request without body replacement still has its body checked. */
    req_t r = {
        "agent-1", "POST", "api.openai.com", "/v1/x", {"Authorization: Bearer PH_OPENAI_XXXX"}};
    sl_secret_decision_t d;
    decide(&r, &d);
    assert_false(d.body_replace);
    assert_true(sl_secret_body_encoding_ok(&d, SL_VIEW_LIT("gzip")));
    struct {
        const char *body, *rule, *secret;
    } cases[] = {
        {"x=" V_GH "&y", SL_SECRET_RULE_REAL_VALUE, "gh"},
        {"leak PH_GITHUB_XXXX here", SL_SECRET_RULE_OUT_OF_SCOPE, "gh"},
        {"PH_BODY_XXXX", SL_SECRET_RULE_OUT_OF_SCOPE, "body"},
    };
    for (size_t i = 0; i < 3; i++)
        for (size_t split = 0; split <= strlen(cases[i].body); split++) {
            sl_buf_t out = {0};
            sl_secret_body_t b;
            assert_int_equal(run_body(&d, cases[i].body, split, &out, &b), -1);
            assert_string_equal(b.rule, cases[i].rule);
            assert_string_equal(b.secret, cases[i].secret);
            assert_null(strstr(b.reason, "REAL"));
            sl_secret_body_free(&b);
            sl_buf_free(&out);
        }
    /* Its own placeholder in the body is harmless text (headers-only secret). */
    sl_buf_t out = {0};
    sl_secret_body_t b;
    assert_int_equal(run_body(&d, "say PH_OPENAI_XXXX", 5, &out, &b), 0);
    assert_memory_equal(out.p, "say PH_OPENAI_XXXX", out.n);
    sl_secret_body_free(&b);
    sl_buf_free(&out);
    sl_secret_decision_free(&d);
}

/* ---- examples/credentials.yaml ----------------------------------------- */

static void test_example_config(void **state)
{
    (void)state;
    setenv("OPENAI_API_KEY", "sk-proj-REALOPENAI0123456789", 1);
    setenv("ANTHROPIC_API_KEY", "sk-ant-api03-REALANTHROPIC0123", 1);
    setenv("GITHUB_TOKEN", "ghp_REALGITHUB0123456789abcdefghij", 1);
    sl_buf_t err = {0};
    sl_config_t *c = sl_config_load_file("examples/credentials.yaml", &err);
    if (c == NULL)
        fail_msg("%s", sl_buf_cstr(&err));
    sl_secret_store_t *ex = sl_secret_store_new(c->secrets, c->n_secrets, &err);
    if (ex == NULL)
        fail_msg("%s", sl_buf_cstr(&err));
    sl_config_free(c);
    sl_buf_t env = {0};
    sl_secret_store_sandbox_env(ex, &env);
    assert_string_equal(sl_buf_cstr(&env), "OPENAI_API_KEY=sluice-placeholder-openai\n"
                                           "ANTHROPIC_API_KEY=sluice-placeholder-anthropic\n"
                                           "GITHUB_TOKEN=sluice-placeholder-github\n");
    sl_buf_free(&env);

    sl_secret_store_t *saved = store;
    store = ex;
    sl_secret_decision_t d;
    char buf[256];
    req_t oa = {"",
                "POST",
                "api.openai.com",
                "/v1/responses",
                {"Authorization: Bearer sluice-placeholder-openai"}};
    decide(&oa, &d);
    assert_false(d.refused);
    assert_string_equal(header(&d, "Authorization", buf), "Bearer sk-proj-REALOPENAI0123456789");
    sl_secret_decision_free(&d);
    req_t an = {"", "POST", "api.anthropic.com", "/v1/messages", {"anthropic-version: 2023-06-01"}};
    decide(&an, &d);
    assert_false(d.refused);
    assert_string_equal(header(&d, "x-api-key", buf), "sk-ant-api03-REALANTHROPIC0123");
    assert_true(d.uses[0].injected);
    sl_secret_decision_free(&d);
    /* git: Basic x-access-token:<placeholder> */
    req_t git = {"",
                 "GET",
                 "github.com",
                 "/org/repo.git/info/refs",
                 {"Authorization: Basic eC1hY2Nlc3MtdG9rZW46c2x1aWNlLXBsYWNlaG9sZGVyLWdpdGh1Yg=="}};
    decide(&git, &d);
    assert_false(d.refused);
    assert_string_equal(
        header(&d, "Authorization", buf),
        "Basic eC1hY2Nlc3MtdG9rZW46Z2hwX1JFQUxHSVRIVUIwMTIzNDU2Nzg5YWJjZGVmZ2hpag==");
    sl_secret_decision_free(&d);
    /* The OpenAI key sent to Anthropic: refused, whatever the header. */
    req_t cross = {
        "", "POST", "api.anthropic.com", "/v1/messages", {"x-api-key: sluice-placeholder-openai"}};
    expect_refused(&cross, SL_SECRET_RULE_OUT_OF_SCOPE, "openai", "host");
    store = saved;
    sl_secret_store_unref(ex);
    sl_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_placeholder_replaced),
        cmocka_unit_test(test_inject_when_missing),
        cmocka_unit_test(test_out_of_scope_without_placeholder_untouched),
        cmocka_unit_test(test_out_of_scope_each_dimension),
        cmocka_unit_test(test_path_globs),
        cmocka_unit_test(test_real_value_refused_everywhere),
        cmocka_unit_test(test_require),
        cmocka_unit_test(test_basic_auth),
        cmocka_unit_test(test_query_and_path),
        cmocka_unit_test(test_no_store),
        cmocka_unit_test(test_body_replacement),
        cmocka_unit_test(test_body_refusals),
        cmocka_unit_test(test_example_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
