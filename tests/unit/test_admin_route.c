/* Unit tests of the admin API's pure request surface (src/admin/route.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "admin/route.h"

static int route(const char *m, const char *t, sl_admin_route_t *r)
{
    const char *allow, *why;
    return sl_admin_route(sl_view(m, strlen(m)), sl_view(t, strlen(t)), r, &allow, &why);
}

static void test_routes(void **state)
{
    sl_admin_route_t r;
    assert_int_equal(route("GET", "/v1/health", &r), 0);
    assert_int_equal(r.op, SL_ADMIN_HEALTH);
    assert_int_equal(route("GET", "/v1/policy", &r), 0);
    assert_int_equal(r.op, SL_ADMIN_POLICY);
    assert_int_equal(route("POST", "/v1/identities/agent-1/allow", &r), 0);
    assert_int_equal(r.op, SL_ADMIN_HOST);
    assert_true(r.add);
    assert_int_equal(r.list, SL_CONTROL_ALLOW);
    assert_string_equal(r.identity, "agent-1");
    assert_int_equal(route("DELETE", "/v1/identities/default/deny", &r), 0);
    assert_false(r.add);
    assert_int_equal(r.list, SL_CONTROL_DENY);
    assert_int_equal(route("PUT", "/v1/identities/x_y/policy", &r), 0);
    assert_int_equal(r.op, SL_ADMIN_SET_POLICY);
    assert_int_equal(route("POST", "/v1/kill", &r), 0);
    assert_int_equal(r.op, SL_ADMIN_KILL);
    assert_int_equal(route("GET", "/v1/approvals", &r), 0);
    assert_int_equal(r.op, SL_ADMIN_APPROVALS);
    assert_int_equal(route("POST", "/v1/approvals/9f3cA01_-", &r), 0);
    assert_int_equal(r.op, SL_ADMIN_DECIDE);
    assert_string_equal(r.request_id, "9f3cA01_-");
}

static void test_refusals(void **state)
{
    sl_admin_route_t r;
    const char *allow, *why;
    assert_int_equal(
        sl_admin_route(SL_VIEW_LIT("POST"), SL_VIEW_LIT("/v1/health"), &r, &allow, &why), 405);
    assert_string_equal(allow, "GET");
    assert_int_equal(route("GET", "/v1/identities/a/allow", &r), 405);
    assert_int_equal(route("GET", "/v1/health?x", &r), 400);
    assert_int_equal(route("GET", "http://x/v1/health", &r), 400);
    assert_int_equal(route("GET", "/v1/health/", &r), 404);
    assert_int_equal(route("GET", "/v1//health", &r), 404);
    assert_int_equal(route("GET", "/v1", &r), 404);
    assert_int_equal(route("GET", "/v2/health", &r), 404);
    assert_int_equal(route("POST", "/v1/identities/Upper/allow", &r), 404);
    assert_int_equal(route("POST", "/v1/identities/a%2fb/allow", &r), 404);
    assert_int_equal(route("POST", "/v1/identities//allow", &r), 404);
    assert_int_equal(route("POST", "/v1/identities/a/allow/x", &r), 404);
    assert_int_equal(route("POST", "/v1/identities/a/other", &r), 404);
    char longname[100];
    memset(longname, 'a', 65);
    longname[65] = '\0';
    char t[200];
    snprintf(t, sizeof t, "/v1/identities/%s/allow", longname);
    assert_int_equal(route("POST", t, &r), 404);
    assert_int_equal(route("POST", "/v1/approvals/a.b", &r), 404);
}

static int body(sl_admin_op_t op, const char *json, sl_admin_args_t *a)
{
    sl_buf_t err = {0};
    int r = sl_admin_parse_body(op, json, strlen(json), a, &err);
    if (r != 0)
        assert_true(err.n > 0); /* a refusal says why */
    sl_buf_free(&err);
    return r;
}

static void test_bodies(void **state)
{
    sl_admin_args_t a;
    assert_int_equal(body(SL_ADMIN_HOST, "{\"host\":\"api.example.com\"}", &a), 0);
    assert_string_equal(a.host, "api.example.com");
    assert_int_equal(body(SL_ADMIN_SET_POLICY, "{\"policy\":null}", &a), 0);
    assert_true(a.policy_null);
    assert_int_equal(body(SL_ADMIN_SET_POLICY, "{\"policy\":\"ro\"}", &a), 0);
    assert_false(a.policy_null);
    assert_string_equal(a.policy, "ro");
    assert_int_equal(body(SL_ADMIN_KILL, "{\"identity\":null,\"on\":true}", &a), 0);
    assert_true(a.identity_null && a.on);
    assert_int_equal(body(SL_ADMIN_KILL, "{\"on\":false,\"identity\":\"x\"}", &a), 0);
    assert_true(!a.identity_null && !a.on);
    assert_string_equal(a.identity, "x");
    assert_int_equal(body(SL_ADMIN_DECIDE, "{\"approve\":false}", &a), 0);
    assert_false(a.approve);

    assert_int_equal(body(SL_ADMIN_HOST, "", &a), -1);
    assert_int_equal(body(SL_ADMIN_HOST, "[]", &a), -1);
    assert_int_equal(body(SL_ADMIN_HOST, "{}", &a), -1);
    assert_int_equal(body(SL_ADMIN_HOST, "{\"host\":\"a\",\"host\":\"b\"}", &a), -1);
    assert_int_equal(body(SL_ADMIN_HOST, "{\"host\":\"a\",\"x\":1}", &a), -1);
    assert_int_equal(body(SL_ADMIN_HOST, "{\"host\":1}", &a), -1);
    assert_int_equal(body(SL_ADMIN_HOST, "{\"host\":\"\"}", &a), -1);
    assert_int_equal(body(SL_ADMIN_HOST, "{\"host\":\"a\\u0000b\"}", &a), -1);
    assert_int_equal(body(SL_ADMIN_HOST, "{\"host\":\"a\\nb\"}", &a), -1);
    assert_int_equal(body(SL_ADMIN_KILL, "{\"on\":true}", &a), -1);
    assert_int_equal(body(SL_ADMIN_KILL, "{\"identity\":null,\"on\":1}", &a), -1);
    assert_int_equal(body(SL_ADMIN_DECIDE, "{\"approve\":\"yes\"}", &a), -1);
    assert_int_equal(body(SL_ADMIN_DECIDE, "{\"approve\":true} x", &a), -1);
}

static void test_actor(void **state)
{
    char out[SL_ADMIN_ACTOR_MAX + 1];
    sl_admin_actor(SL_VIEW_NULL, out);
    assert_string_equal(out, "admin-api");
    sl_admin_actor(SL_VIEW_LIT("cli:alice@example.org"), out);
    assert_string_equal(out, "cli:alice@example.org");
    sl_admin_actor(SL_VIEW_LIT("bob\"}\n{x"), out);
    assert_string_equal(out, "bob____x");
    char big[200];
    memset(big, 'z', sizeof big);
    sl_admin_actor(sl_view(big, sizeof big), out);
    assert_int_equal(strlen(out), SL_ADMIN_ACTOR_MAX);
}

static void test_token(void **state)
{
    unsigned char d[32];
    sl_admin_token_digest("correct-horse-battery", 21, d);
    assert_true(sl_admin_token_ok(SL_VIEW_LIT("Bearer correct-horse-battery"), d));
    assert_true(sl_admin_token_ok(SL_VIEW_LIT("bearer correct-horse-battery"), d));
    assert_false(sl_admin_token_ok(SL_VIEW_LIT("Bearer correct-horse-batter"), d));
    assert_false(sl_admin_token_ok(SL_VIEW_LIT("Bearer correct-horse-batteryy"), d));
    assert_false(sl_admin_token_ok(SL_VIEW_LIT("Basic correct-horse-battery"), d));
    assert_false(sl_admin_token_ok(SL_VIEW_LIT("Bearer "), d));
    assert_false(sl_admin_token_ok(SL_VIEW_LIT("correct-horse-battery"), d));
    assert_false(sl_admin_token_ok(SL_VIEW_NULL, d));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_bodies), cmocka_unit_test(test_actor),
        cmocka_unit_test(test_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
