/* Pure request-surface functions of the admin API (see route.h). */
#include "admin/route.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

/* Copy one path segment of [a-z0-9_-] (identity names) or, with `upper`,
 * also [A-Z] (request ids) into out (max bytes + NUL). */
static bool segment(sl_view_t s, char *out, size_t max, bool upper)
{
    if (s.n == 0 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  (upper && c >= 'A' && c <= 'Z');
        if (!ok)
            return false;
    }
    memcpy(out, s.p, s.n);
    out[s.n] = '\0';
    return true;
}

/* Split target after `prefix` into segments separated by '/'; up to 3. */
static size_t split(sl_view_t t, sl_view_t seg[3])
{
    size_t n = 0;
    const char *p = t.p, *end = t.p + t.n;
    while (p <= end && n < 3) {
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *e = slash ? slash : end;
        seg[n++] = sl_view(p, (size_t)(e - p));
        if (slash == NULL)
            return n;
        p = slash + 1;
    }
    return 4; /* too many segments */
}

int sl_admin_route(sl_view_t method, sl_view_t target, sl_admin_route_t *r, const char **allow,
                   const char **why)
{
    memset(r, 0, sizeof *r);
    *allow = NULL;
    *why = "no such endpoint; see docs/admin.md";
    if (target.n == 0 || target.p[0] != '/') {
        *why = "the request target must be a path (origin-form)";
        return 400;
    }
    if (memchr(target.p, '?', target.n) != NULL || memchr(target.p, '#', target.n) != NULL) {
        *why = "the admin API takes no query string; send arguments in the JSON body";
        return 400;
    }
    if (target.n < 4 || memcmp(target.p, "/v1/", 4) != 0)
        return 404;
    sl_view_t seg[3];
    size_t n = split(sl_view(target.p + 4, target.n - 4), seg);
    bool get = sl_view_eq(method, "GET"), post = sl_view_eq(method, "POST");
    if (n == 1 && sl_view_eq(seg[0], "health")) {
        r->op = SL_ADMIN_HEALTH;
        *allow = "GET";
        return get ? 0 : 405;
    }
    if (n == 1 && sl_view_eq(seg[0], "policy")) {
        r->op = SL_ADMIN_POLICY;
        *allow = "GET";
        return get ? 0 : 405;
    }
    if (n == 1 && sl_view_eq(seg[0], "kill")) {
        r->op = SL_ADMIN_KILL;
        *allow = "POST";
        return post ? 0 : 405;
    }
    if (n == 1 && sl_view_eq(seg[0], "approvals")) {
        r->op = SL_ADMIN_APPROVALS;
        *allow = "GET";
        return get ? 0 : 405;
    }
    if (n == 2 && sl_view_eq(seg[0], "approvals")) {
        if (!segment(seg[1], r->request_id, SL_ADMIN_ID_MAX, true)) {
            *why = "a request id is 1-64 characters of [A-Za-z0-9_-]";
            return 404;
        }
        r->op = SL_ADMIN_DECIDE;
        *allow = "POST";
        return post ? 0 : 405;
    }
    if (n == 3 && sl_view_eq(seg[0], "identities")) {
        bool is_allow = sl_view_eq(seg[2], "allow"), is_deny = sl_view_eq(seg[2], "deny");
        bool is_policy = sl_view_eq(seg[2], "policy");
        if (!is_allow && !is_deny && !is_policy)
            return 404;
        if (!segment(seg[1], r->identity, SL_ADMIN_NAME_MAX, false)) {
            *why = "an identity name is 1-64 characters of [a-z0-9_-]";
            return 404;
        }
        if (is_policy) {
            r->op = SL_ADMIN_SET_POLICY;
            *allow = "PUT";
            return sl_view_eq(method, "PUT") ? 0 : 405;
        }
        r->op = SL_ADMIN_HOST;
        r->list = is_allow ? SL_CONTROL_ALLOW : SL_CONTROL_DENY;
        r->add = post;
        *allow = "POST, DELETE";
        return post || sl_view_eq(method, "DELETE") ? 0 : 405;
    }
    return 404;
}

bool sl_admin_op_has_body(sl_admin_op_t op)
{
    return op == SL_ADMIN_HOST || op == SL_ADMIN_SET_POLICY || op == SL_ADMIN_KILL ||
           op == SL_ADMIN_DECIDE;
}

/* Copy a JSON string value of at most `max` bytes without NUL or controls. */
static int str_arg(json_t *v, const char *key, char *out, size_t max, sl_buf_t *err)
{
    if (!json_is_string(v)) {
        sl_buf_appendf(err, "\"%s\" must be a string", key);
        return -1;
    }
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n == 0 || n > max) {
        sl_buf_appendf(err, "\"%s\" must be 1 to %zu bytes long", key, max);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            sl_buf_appendf(err, "\"%s\" contains a control character", key);
            return -1;
        }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static int bool_arg(json_t *v, const char *key, bool *out, sl_buf_t *err)
{
    if (!json_is_boolean(v)) {
        sl_buf_appendf(err, "\"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int sl_admin_parse_body(sl_admin_op_t op, const char *body, size_t n, sl_admin_args_t *a,
                        sl_buf_t *err)
{
    memset(a, 0, sizeof *a);
    static const char *const keys[][3] = {
        [SL_ADMIN_HOST] = {"host", NULL, NULL},
        [SL_ADMIN_SET_POLICY] = {"policy", NULL, NULL},
        [SL_ADMIN_KILL] = {"identity", "on", NULL},
        [SL_ADMIN_DECIDE] = {"approve", NULL, NULL},
    };
    static const char *const example[] = {
        [SL_ADMIN_HOST] = "{\"host\": \"api.example.com\"}",
        [SL_ADMIN_SET_POLICY] = "{\"policy\": \"readonly\"} or {\"policy\": null}",
        [SL_ADMIN_KILL] = "{\"identity\": \"agent-1\", \"on\": true} (identity null = everyone)",
        [SL_ADMIN_DECIDE] = "{\"approve\": true}",
    };
    if (!sl_admin_op_has_body(op))
        return 0;
    json_error_t je;
    json_t *root = json_loadb(body, n, JSON_REJECT_DUPLICATES, &je);
    int r = -1;
    if (root == NULL) {
        sl_buf_appendf(err, "body is not valid JSON (%s at byte %d); send %s", je.text, je.position,
                       example[op]);
        return -1;
    }
    if (!json_is_object(root)) {
        sl_buf_appendf(err, "body must be a JSON object; send %s", example[op]);
        goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v)
    {
        bool known = false;
        for (size_t i = 0; i < 3 && keys[op][i] && !known; i++)
            known = strcmp(k, keys[op][i]) == 0;
        if (!known) {
            sl_buf_append_str(err, "unknown key \"");
            sl_buf_append_json(err, k, strlen(k));
            sl_buf_appendf(err, "\"; send %s", example[op]);
            goto out;
        }
    }
    for (size_t i = 0; i < 3 && keys[op][i]; i++)
        if (json_object_get(root, keys[op][i]) == NULL) {
            sl_buf_appendf(err, "missing key \"%s\"; send %s", keys[op][i], example[op]);
            goto out;
        }
    switch (op) {
    case SL_ADMIN_HOST:
        r = str_arg(json_object_get(root, "host"), "host", a->host, SL_ADMIN_HOST_MAX, err);
        break;
    case SL_ADMIN_SET_POLICY:
        v = json_object_get(root, "policy");
        a->policy_null = json_is_null(v);
        r = a->policy_null ? 0 : str_arg(v, "policy", a->policy, SL_ADMIN_NAME_MAX, err);
        break;
    case SL_ADMIN_KILL:
        v = json_object_get(root, "identity");
        a->identity_null = json_is_null(v);
        r = a->identity_null ? 0 : str_arg(v, "identity", a->identity, SL_ADMIN_NAME_MAX, err);
        if (r == 0)
            r = bool_arg(json_object_get(root, "on"), "on", &a->on, err);
        break;
    case SL_ADMIN_DECIDE:
        r = bool_arg(json_object_get(root, "approve"), "approve", &a->approve, err);
        break;
    default:
        r = 0;
        break;
    }
out:
    json_decref(root);
    return r;
}

void sl_admin_actor(sl_view_t header, char *out)
{
    if (header.n == 0) {
        snprintf(out, SL_ADMIN_ACTOR_MAX + 1, "admin-api");
        return;
    }
    size_t n = header.n > SL_ADMIN_ACTOR_MAX ? SL_ADMIN_ACTOR_MAX : header.n;
    for (size_t i = 0; i < n; i++) {
        char c = header.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '@' || c == ':' || c == '-';
        out[i] = ok ? c : '_';
    }
    out[n] = '\0';
}

void sl_admin_token_digest(const char *token, size_t n, unsigned char digest[32])
{
    SHA256((const unsigned char *)token, n, digest);
}

bool sl_admin_token_ok(sl_view_t authorization, const unsigned char digest[32])
{
    if (authorization.n < 8 || strncasecmp(authorization.p, "Bearer ", 7) != 0)
        return false;
    sl_view_t tok = sl_view(authorization.p + 7, authorization.n - 7);
    while (tok.n > 0 && tok.p[0] == ' ') {
        tok.p++;
        tok.n--;
    }
    if (tok.n == 0)
        return false;
    /* Comparing digests keeps the comparison constant-time whatever the
     * presented length is. */
    unsigned char got[32];
    sl_admin_token_digest(tok.p, tok.n, got);
    return CRYPTO_memcmp(got, digest, 32) == 0;
}
