/* Endpoints of the admin API (see api.h) over the runtime control API. */
#include "admin/api.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "policy/hostglob.h"
#include "proxy/control.h"

void sl_admin_api_error(sl_buf_t *out, const char *code, const char *detail)
{
    sl_buf_appendf(out, "{\"error\":\"%s\",\"detail\":\"", code);
    sl_buf_append_json(out, detail, strlen(detail));
    sl_buf_append_str(out, "\"}");
}

/* The current description of one identity, or NULL (caller decrefs). */
static json_t *describe_identity(const char *name, json_t **all)
{
    sl_buf_t b = {0};
    sl_control_describe(&b);
    json_t *root = json_loadb(b.p, b.n, 0, NULL);
    sl_buf_free(&b);
    json_t *found = NULL;
    size_t i;
    json_t *id;
    json_array_foreach(json_object_get(root, "identities"), i, id)
    {
        const char *n = json_string_value(json_object_get(id, "name"));
        if (n && strcmp(n, name) == 0) {
            found = json_incref(id);
            break;
        }
    }
    if (all)
        *all = root;
    else
        json_decref(root);
    return found;
}

/* {"ok":true, ...extra, "identity": current description} */
static void ok_identity(sl_buf_t *out, const char *name)
{
    json_t *id = describe_identity(name, NULL);
    json_t *res = json_pack("{s:b, s:o}", "ok", 1, "identity", id ? id : json_null());
    char *s = json_dumps(res, JSON_COMPACT);
    sl_buf_append_str(out, s);
    free(s);
    json_decref(res);
}

static int unknown_identity(sl_buf_t *out, const char *name)
{
    sl_buf_t d = {0};
    sl_buf_appendf(&d, "no identity named \"%s\"; GET /v1/policy lists them", name);
    sl_admin_api_error(out, "unknown_identity", sl_buf_cstr(&d));
    sl_buf_free(&d);
    return 404;
}

static bool identity_known(const char *name)
{
    json_t *id = describe_identity(name, NULL);
    json_decref(id);
    return id != NULL;
}

static int refused(sl_buf_t *out, int status, const char *code, sl_buf_t *err)
{
    sl_admin_api_error(out, code, err->n ? sl_buf_cstr(err) : "the change was refused");
    sl_buf_free(err);
    return status;
}

static int host_change(const sl_admin_route_t *r, const sl_admin_args_t *a, const char *actor,
                       sl_buf_t *out)
{
    sl_buf_t err = {0};
    char norm[SL_ADMIN_HOST_MAX + 1];
    size_t n = strlen(a->host);
    for (size_t i = 0; i <= n; i++)
        norm[i] = (char)(a->host[i] >= 'A' && a->host[i] <= 'Z' ? a->host[i] + 32 : a->host[i]);
    const char *why = sl_hostglob_check(norm);
    if (why) {
        sl_buf_appendf(&err, "invalid host pattern: %s", why);
        return refused(out, 400, "bad_pattern", &err);
    }
    if (!identity_known(r->identity))
        return unknown_identity(out, r->identity);
    if (sl_control_host(actor, r->identity, r->list, r->add, norm, &err) != 0)
        return refused(out, r->add ? 400 : 404, r->add ? "refused" : "not_present", &err);
    sl_buf_free(&err);
    ok_identity(out, r->identity);
    return 200;
}

static int set_policy(const sl_admin_route_t *r, const sl_admin_args_t *a, const char *actor,
                      sl_buf_t *out)
{
    sl_buf_t err = {0};
    if (!identity_known(r->identity))
        return unknown_identity(out, r->identity);
    if (sl_control_set_policy(actor, r->identity, a->policy_null ? NULL : a->policy, &err) != 0)
        return refused(out, 400, "refused", &err);
    sl_buf_free(&err);
    ok_identity(out, r->identity);
    return 200;
}

static int kill_switch(const sl_admin_args_t *a, const char *actor, sl_buf_t *out)
{
    sl_buf_t err = {0};
    const char *id = a->identity_null ? NULL : a->identity;
    if (id && !identity_known(id))
        return unknown_identity(out, id);
    if (sl_control_kill(actor, id, a->on, &err) != 0)
        return refused(out, 400, "refused", &err);
    sl_buf_free(&err);
    if (id) {
        ok_identity(out, id);
    } else {
        json_t *all = NULL;
        json_decref(describe_identity("", &all));
        json_t *res = json_pack("{s:b, s:b, s:O}", "ok", 1, "killed", a->on, "generation",
                                json_object_get(all, "generation"));
        char *s = json_dumps(res, JSON_COMPACT);
        sl_buf_append_str(out, s);
        free(s);
        json_decref(res);
        json_decref(all);
    }
    return 200;
}

static int decide(const sl_admin_route_t *r, const sl_admin_args_t *a, const char *actor,
                  sl_buf_t *out)
{
    sl_buf_t err = {0};
    if (sl_control_decide(actor, r->request_id, a->approve, &err) != 0)
        return refused(out, 404, "not_waiting", &err);
    sl_buf_free(&err);
    sl_buf_appendf(out, "{\"ok\":true,\"id\":\"%s\",\"approved\":%s}", r->request_id,
                   a->approve ? "true" : "false");
    return 200;
}

int sl_admin_api_call(const sl_admin_route_t *r, const sl_admin_args_t *a, const char *actor,
                      sl_buf_t *out)
{
    switch (r->op) {
    case SL_ADMIN_HEALTH:
        sl_control_health(out);
        return 200;
    case SL_ADMIN_POLICY:
        sl_control_describe(out);
        return 200;
    case SL_ADMIN_APPROVALS:
        sl_control_approvals(out);
        return 200;
    case SL_ADMIN_HOST:
        return host_change(r, a, actor, out);
    case SL_ADMIN_SET_POLICY:
        return set_policy(r, a, actor, out);
    case SL_ADMIN_KILL:
        return kill_switch(a, actor, out);
    case SL_ADMIN_DECIDE:
        return decide(r, a, actor, out);
    }
    sl_admin_api_error(out, "not_found", "no such endpoint");
    return 404;
}
