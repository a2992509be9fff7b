/* libFuzzer driver: the admin API's request surface. The first byte picks
 * the endpoint whose body parser runs; the input also goes through the
 * router as a target and through the actor and token functions. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "admin/route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
    const char *m = methods[data[0] & 3];
    sl_view_t rest = sl_view((const char *)data + 1, size - 1);
    sl_admin_route_t r;
    const char *allow = NULL, *why = NULL;
    int st = sl_admin_route(sl_view(m, strlen(m)), rest, &r, &allow, &why);
    assert(st == 0 || st == 400 || st == 404 || st == 405);
    assert(st != 405 || allow != NULL);
    if (st == 0) {
        assert(strlen(r.identity) <= SL_ADMIN_NAME_MAX);
        assert(strlen(r.request_id) <= SL_ADMIN_ID_MAX);
    }
    sl_admin_args_t a;
    sl_buf_t err = {0};
    static const sl_admin_op_t ops[] = {SL_ADMIN_HOST, SL_ADMIN_SET_POLICY, SL_ADMIN_KILL,
                                        SL_ADMIN_DECIDE};
    int pr = sl_admin_parse_body(ops[(data[0] >> 2) & 3], rest.p, rest.n, &a, &err);
    assert(pr == 0 || err.n > 0); /* a refusal says why */
    if (pr == 0)
        assert(strlen(a.host) <= SL_ADMIN_HOST_MAX && strlen(a.policy) <= SL_ADMIN_NAME_MAX);
    sl_buf_free(&err);
    char actor[SL_ADMIN_ACTOR_MAX + 1];
    sl_admin_actor(rest, actor);
    for (const char *p = actor; *p; p++)
        assert(*p > 0x20 && *p < 0x7f && *p != '"' && *p != '\\');
    unsigned char d[32];
    sl_admin_token_digest("fuzz-token-0123456789", 21, d);
    (void)sl_admin_token_ok(rest, d);
    return 0;
}
