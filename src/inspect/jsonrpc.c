/* JSON-RPC classification and content extraction (see jsonrpc.h). */
#include "inspect/jsonrpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* MCP requests and notifications (2024-11-05 .. 2025-06-18 revisions),
 * either direction: a client of a shadow server may also answer its
 * sampling/elicitation requests. */
static const char *const mcp_methods[] = {
    "initialize",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "sampling/createMessage",
    "elicitation/create",
    "roots/list",
};

/* A2A (0.2/0.3 names, and the 0.1 tasks/send family). */
static const char *const a2a_methods[] = {
    "message/send",
    "message/stream",
    "agent/getAuthenticatedExtendedCard",
};

/* A JSON path name; long ones are cut (only the name suffers). */
__attribute__((format(printf, 3, 4))) static void path_fmt(char *dst, size_t cap, const char *fmt,
                                                           ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

static bool has_prefix_ci(const char *s, size_t n, const char *pre)
{
    size_t l = strlen(pre);
    return n >= l && strncasecmp(s, pre, l) == 0;
}

static bool in_list_ci(const char *s, size_t n, const char *const *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strlen(list[i]) == n && strncasecmp(s, list[i], n) == 0)
            return true;
    return false;
}

sl_rpc_family_t sl_rpc_family(const json_t *msg)
{
    const json_t *m = json_is_object(msg) ? json_object_get(msg, "method") : NULL;
    if (!json_is_string(m))
        return SL_RPC_OTHER;
    const char *s = json_string_value(m);
    size_t n = json_string_length(m);
    if (n == 10 && strncasecmp(s, "initialize", 10) == 0) {
        /* LSP's initialize carries processId/rootUri, MCP's a protocolVersion. */
        const json_t *params = json_object_get(msg, "params");
        return json_is_object(params) && json_object_get(params, "protocolVersion") ? SL_RPC_MCP
                                                                                    : SL_RPC_OTHER;
    }
    if (n == 4 && strncasecmp(s, "ping", 4) == 0)
        return SL_RPC_OTHER; /* too generic to name a protocol */
    if (in_list_ci(s, n, mcp_methods, sizeof mcp_methods / sizeof *mcp_methods) ||
        has_prefix_ci(s, n, "notifications/"))
        return SL_RPC_MCP;
    if (in_list_ci(s, n, a2a_methods, sizeof a2a_methods / sizeof *a2a_methods) ||
        has_prefix_ci(s, n, "tasks/"))
        return SL_RPC_A2A;
    return SL_RPC_OTHER;
}

static void note_method(char dst[48], const json_t *msg)
{
    if (dst[0])
        return;
    const json_t *m = json_object_get(msg, "method");
    size_t n = json_string_length(m);
    if (n > 47)
        n = 47;
    memcpy(dst, json_string_value(m), n);
    dst[n] = '\0';
    /* The name goes into audit events and reasons: printable ASCII only. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)dst[i] < 0x20 || (unsigned char)dst[i] > 0x7e || dst[i] == '"' ||
            dst[i] == '\\')
            dst[i] = '?';
}

static void info_one(const json_t *msg, sl_rpc_info_t *info)
{
    if (!json_is_object(msg) || !json_is_string(json_object_get(msg, "method")))
        return;
    info->n_calls++;
    switch (sl_rpc_family(msg)) {
    case SL_RPC_MCP:
        info->n_mcp++;
        note_method(info->mcp_method, msg);
        break;
    case SL_RPC_A2A:
        info->n_a2a++;
        note_method(info->a2a_method, msg);
        break;
    default:
        break;
    }
}

void sl_rpc_info(const json_t *root, sl_rpc_info_t *info)
{
    *info = (sl_rpc_info_t){0};
    if (json_is_array(root)) {
        size_t i;
        json_t *m;
        json_array_foreach(root, i, m) info_one(m, info);
    } else {
        info_one(root, info);
    }
}

sl_rpc_parse_t sl_rpc_parse(const char *p, size_t n, json_t **root)
{
    json_error_t err;
    *root = NULL;
    size_t flags = JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL;
    json_t *j = json_loadb(p, n, flags | JSON_REJECT_DUPLICATES, &err);
    if (j) {
        *root = j;
        return SL_RPC_JSON;
    }
    if (json_error_code(&err) != json_error_duplicate_key)
        return SL_RPC_NOT_JSON;
    /* Which of two "method" members counts differs between receivers: if
     * the text holds JSON-RPC messages at all, nobody can say which. */
    j = json_loadb(p, n, flags, &err);
    if (!j)
        return SL_RPC_NOT_JSON;
    sl_rpc_info_t info;
    sl_rpc_info(j, &info);
    json_decref(j);
    return info.n_calls ? SL_RPC_AMBIGUOUS : SL_RPC_NOT_JSON;
}

static sl_rpc_group_t *group_new(sl_rpc_content_t *c, sl_surface_t s, bool joined)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->v = realloc(c->v, c->cap * sizeof *c->v);
        if (!c->v)
            abort();
    }
    sl_rpc_group_t *g = &c->v[c->n++];
    *g = (sl_rpc_group_t){.surface = s, .joined = joined};
    return g;
}

/* Drop a group that collected nothing. */
static void group_done(sl_rpc_content_t *c)
{
    if (c->n && c->v[c->n - 1].s.n == 0)
        sl_strlist_free(&c->v[--c->n].s);
}

/* The strings of a JSON value: values in one group (scanned also joined, so
 * a secret split across fields is seen whole), keys in another (alone: a
 * key between two halves would break the join). */
static void add_json(sl_rpc_content_t *out, sl_surface_t s, const json_t *j, const char *path)
{
    sl_strlist_t keys = {0}, vals = {0};
    sl_json_collect_strings(j, path, &keys, &vals);
    if (vals.n)
        group_new(out, s, true)->s = vals;
    else
        sl_strlist_free(&vals);
    if (keys.n)
        group_new(out, s, false)->s = keys;
    else
        sl_strlist_free(&keys);
}

/* Every "url" / "uri" string under `j`: destinations the receiver will
 * fetch or call back (file parts, push notification webhooks). */
static void collect_urls(const json_t *j, const char *path, sl_rpc_group_t *g)
{
    char sub[512];
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            path_fmt(sub, sizeof sub, "%s.%s", path, k);
            if (json_is_string(v) && (strcasecmp(k, "url") == 0 || strcasecmp(k, "uri") == 0))
                sl_strlist_add(&g->s, json_string_value(v), json_string_length(v), sub);
            else
                collect_urls(v, sub, g);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            path_fmt(sub, sizeof sub, "%s[%zu]", path, i);
            collect_urls(v, sub, g);
        }
    }
}

static const char *part_kind(const json_t *part)
{
    const char *k = json_string_value(json_object_get(part, "kind"));
    return k ? k : json_string_value(json_object_get(part, "type"));
}

static void a2a_parts(const json_t *parts, const char *path, sl_rpc_content_t *out)
{
    char sub[512];
    group_new(out, SL_SURF_BODY, true);
    size_t text_at = out->n - 1;
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part)
    {
        path_fmt(sub, sizeof sub, "%s[%zu]", path, i);
        const char *kind = part_kind(part);
        const json_t *t = json_object_get(part, "text");
        if (kind && strcasecmp(kind, "text") == 0 && json_is_string(t)) {
            char name[540];
            path_fmt(name, sizeof name, "%s.text", sub);
            /* Indexed, not held: group_new may move the array. */
            sl_strlist_add(&out->v[text_at].s, json_string_value(t), json_string_length(t), name);
        } else if (kind && strcasecmp(kind, "file") == 0 &&
                   json_is_object(json_object_get(part, "file"))) {
            const json_t *b = json_object_get(json_object_get(part, "file"), "bytes");
            if (json_is_string(b)) {
                char name[540];
                path_fmt(name, sizeof name, "%s.file.bytes", sub);
                sl_rpc_group_t *g = group_new(out, SL_SURF_BODY, false);
                sl_strlist_add(&g->s, json_string_value(b), json_string_length(b), name);
            }
        } else if (kind && strcasecmp(kind, "data") == 0 && json_object_get(part, "data")) {
            char name[540];
            path_fmt(name, sizeof name, "%s.data", sub);
            add_json(out, SL_SURF_BODY, json_object_get(part, "data"), name);
        } else {
            /* An unknown or malformed part is still content: all of it. */
            add_json(out, SL_SURF_BODY, part, sub);
        }
    }
    if (out->v[text_at].s.n > 0) {
        /* Text parts are read by the receiving agent's model: prompt
         * injection applies to them as to a response the agent reads. */
        sl_rpc_group_t *g = group_new(out, SL_SURF_RESPONSE, true);
        const sl_strlist_t *t = &out->v[text_at].s;
        for (size_t k = 0; k < t->n; k++)
            sl_strlist_add(&g->s, t->v[k].p, t->v[k].n, t->name[k]);
    } else {
        /* Remove the empty text group wherever it sits. */
        sl_strlist_free(&out->v[text_at].s);
        memmove(&out->v[text_at], &out->v[text_at + 1], (out->n - text_at - 1) * sizeof *out->v);
        out->n--;
    }
}

static void content_one(const json_t *msg, const char *path, unsigned families,
                        sl_rpc_content_t *out)
{
    sl_rpc_family_t fam = sl_rpc_family(msg);
    if (fam == SL_RPC_OTHER || !(families & (1u << fam)))
        return;
    const json_t *params = json_object_get(msg, "params");
    const char *method = json_string_value(json_object_get(msg, "method"));
    char sub[512];
    if (fam == SL_RPC_MCP) {
        const json_t *args = json_object_get(params, "arguments");
        if (strcasecmp(method, "tools/call") == 0 && args) {
            path_fmt(sub, sizeof sub, "%sparams.arguments", path);
            add_json(out, SL_SURF_TOOL_CALL, args, sub);
        }
        return;
    }
    const json_t *message = json_object_get(params, "message");
    const json_t *parts = json_object_get(message, "parts");
    if (json_is_array(parts)) {
        path_fmt(sub, sizeof sub, "%sparams.message.parts", path);
        a2a_parts(parts, sub, out);
    }
    path_fmt(sub, sizeof sub, "%sparams", path);
    sl_rpc_group_t *u = group_new(out, SL_SURF_URL, false);
    collect_urls(params, sub, u);
    group_done(out);
}

void sl_rpc_content(const json_t *root, unsigned families, sl_rpc_content_t *out)
{
    if (json_is_array(root)) {
        size_t i;
        json_t *m;
        char path[32];
        json_array_foreach(root, i, m)
        {
            path_fmt(path, sizeof path, "[%zu].", i);
            content_one(m, path, families, out);
        }
    } else if (json_is_object(root)) {
        content_one(root, "", families, out);
    }
}

void sl_a2a_card_content(const json_t *card, sl_rpc_content_t *out)
{
    if (!json_is_object(card))
        return;
    sl_rpc_group_t *g = group_new(out, SL_SURF_TOOL_LIST, false);
    static const char *const top[] = {"name", "description"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *v = json_object_get(card, top[i]);
        if (json_is_string(v))
            sl_strlist_add(&g->s, json_string_value(v), json_string_length(v), top[i]);
    }
    const json_t *org = json_object_get(json_object_get(card, "provider"), "organization");
    if (json_is_string(org))
        sl_strlist_add(&g->s, json_string_value(org), json_string_length(org),
                       "provider.organization");
    const json_t *skills = json_object_get(card, "skills");
    if (skills)
        sl_json_collect_strings(skills, "skills", &g->s, &g->s);
    group_done(out);
}

bool sl_a2a_card_path(const char *path, size_t n)
{
    const char *q = memchr(path, '?', n);
    if (q)
        n = (size_t)(q - path);
    return sl_view_eq(sl_view(path, n), "/.well-known/agent.json") ||
           sl_view_eq(sl_view(path, n), "/.well-known/agent-card.json");
}

int sl_rpc_content_scan(const sl_ruleset_t *rs, const sl_rpc_content_t *c, sl_findings_t *out)
{
    int total = 0;
    bool failed = false;
    for (size_t i = 0; i < c->n; i++) {
        const sl_rpc_group_t *g = &c->v[i];
        int r;
        if (g->joined) {
            r = sl_inspect_scan_values(rs, g->surface, g->s.v, g->s.n, out);
            failed |= r < 0;
            total += r > 0 ? r : 0;
            continue;
        }
        for (size_t k = 0; k < g->s.n; k++) {
            r = sl_inspect_scan(rs, g->surface, g->s.v[k].p, g->s.v[k].n, out);
            failed |= r < 0;
            total += r > 0 ? r : 0;
        }
    }
    return failed ? -1 : total;
}

void sl_rpc_content_free(sl_rpc_content_t *c)
{
    for (size_t i = 0; i < c->n; i++)
        sl_strlist_free(&c->v[i].s);
    free(c->v);
    *c = (sl_rpc_content_t){0};
}
