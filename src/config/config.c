/* The sluice config schema (one table entry per key) and the loaders. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config/schema.h"
#include "config/values.h"
#include "http/h1.h"
#include "net/ipaddr.h"

/* Bigger than any sane policy, small enough that a wrong path (a log file, a
 * device) fails fast instead of being read into memory. */
#define SL_CONFIG_MAX_FILE (4u * 1024 * 1024)
/* Deepest collection nesting accepted; the schema itself needs about 4. */
#define SL_CONFIG_MAX_DEPTH 64

#define KIB 1024ull
#define MIB (1024ull * KIB)
#define SEC 1000ull
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)

/* ---- listen ------------------------------------------------------------ */

static bool listen_elem(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_listen_cfg_t *l = elem;
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    char host[SL_CFG_HOST_MAX];
    const char *why = sl_cfg_parse_listen(v, host, &l->port);
    if (why != NULL) {
        sl_cfg_value_error(ctx, node, f, why);
        return false;
    }
    l->host = sl_cfg_strdup(sl_view(host, strlen(host)));
    return true;
}

static void listen_free(void *elem)
{
    free(((sl_listen_cfg_t *)elem)->host);
}

static const char *listen_key(const void *elem, char *buf, size_t cap)
{
    const sl_listen_cfg_t *l = elem;
    snprintf(buf, cap, strchr(l->host, ':') ? "[%s]:%u" : "%s:%u", l->host, (unsigned)l->port);
    return buf;
}

static const sl_cfg_list_t listen_list = {
    .elem_size = sizeof(sl_listen_cfg_t),
    .elem_expect = "an address like \"127.0.0.1:8888\"",
    .elem_parse = listen_elem,
    .elem_release = listen_free,
    .elem_key = listen_key,
    .min_items = 1,
    .max_items = 64,
    .single_ok = true,
};

/* A file path: one line, not empty. */
static const char *check_path(sl_view_t v)
{
    if (v.n == 0)
        return "is empty; write a file path";
    if (memchr(v.p, '\n', v.n) != NULL || memchr(v.p, '\r', v.n) != NULL ||
        memchr(v.p, '\0', v.n) != NULL)
        return "contains a line break or NUL; write a file path";
    return NULL;
}

/* ---- routes ------------------------------------------------------------ */

static void route_to_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f,
                           char *base)
{
    sl_route_cfg_t *r = (sl_route_cfg_t *)base;
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return;
    char host[SL_CFG_HOST_MAX];
    uint16_t port;
    const char *why = sl_cfg_parse_target(v, host, &port);
    if (why != NULL) {
        sl_cfg_value_error(ctx, node, f, why);
        return;
    }
    free(r->to_host);
    r->to_host = sl_cfg_strdup(sl_view(host, strlen(host)));
    r->to_port = port;
}

static void route_to_release(const sl_cfg_field_t *f, char *base)
{
    sl_route_cfg_t *r = (sl_route_cfg_t *)base;
    free(r->to_host);
    r->to_host = NULL;
}

static const sl_cfg_type_t route_to_type = {"an address (host:port or host)", route_to_parse,
                                            route_to_release};

static const sl_cfg_field_t route_fields[] = {
    {.key = "host",
     .type = &sl_cfg_type_hostglob,
     SL_CFG_AT(sl_route_cfg_t, host),
     .flags = SL_CFG_REQUIRED,
     .example = "host: api.internal.example"},
    {.key = "to",
     .type = &route_to_type,
     SL_CFG_AT(sl_route_cfg_t, to_host),
     .flags = SL_CFG_REQUIRED,
     .example = "to: \"10.0.0.5:9000\""},
    {.key = "ca_file",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_route_cfg_t, ca_file),
     .check = check_path,
     .example = "ca_file: /etc/sluice/internal-ca.pem"},
};
static const sl_cfg_table_t route_table = {"route", route_fields,
                                           sizeof route_fields / sizeof *route_fields};

static const char *route_key(const void *elem, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return ((const sl_route_cfg_t *)elem)->host;
}

static const sl_cfg_list_t route_list = {
    .elem_size = sizeof(sl_route_cfg_t),
    .elem_expect = "a mapping with host: and to:",
    .map = &route_table,
    .elem_key = route_key,
    .max_items = 10000,
};

/* ---- policy ------------------------------------------------------------ */

static const sl_cfg_list_t hostglob_list = {
    .elem_size = sizeof(char *),
    .elem_expect = "a host pattern",
    .elem_parse = sl_cfg_elem_hostglob,
    .elem_release = sl_cfg_elem_free_str,
    .elem_key = sl_cfg_elem_key_str,
    .max_items = 100000,
    .single_ok = false,
};

/* A method token, stored uppercased. */
static bool elem_method(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    for (size_t i = 0; i < v.n; i++)
        if (!sl_h1_is_tchar((unsigned char)v.p[i]) || v.n > 32) {
            sl_cfg_value_error(ctx, node, f, "not an HTTP method; write e.g. GET or POST");
            return false;
        }
    char *m = sl_cfg_strdup(v);
    for (char *q = m; *q; q++)
        *q = (char)toupper((unsigned char)*q);
    *(char **)elem = m;
    return true;
}

/* A path prefix or glob: starts with '/', visible ASCII only. */
static bool elem_path(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    bool ok = v.n > 0 && v.p[0] == '/';
    for (size_t i = 0; ok && i < v.n; i++)
        ok = (unsigned char)v.p[i] > 0x20 && (unsigned char)v.p[i] < 0x7f;
    if (!ok) {
        sl_cfg_value_error(ctx, node, f,
                           "a path must start with '/' and contain no spaces (\"/repos/\", "
                           "\"/v1/*/files\")");
        return false;
    }
    *(char **)elem = sl_cfg_strdup(v);
    return true;
}

/* A port number 1..65535, kept as its decimal text. */
static bool elem_port(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    unsigned long n = 0;
    bool ok = v.n > 0 && v.n <= 5 && v.p[0] != '0';
    for (size_t i = 0; ok && i < v.n; i++) {
        ok = v.p[i] >= '0' && v.p[i] <= '9';
        n = n * 10 + (unsigned long)(v.p[i] - '0');
    }
    if (!ok || n == 0 || n > 65535) {
        sl_cfg_value_error(ctx, node, f, "a port is a number from 1 to 65535");
        return false;
    }
    *(char **)elem = sl_cfg_strdup(v);
    return true;
}

/* A CIDR or address ("10.0.0.0/24", "::1"). */
static bool elem_cidr(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    char *text = sl_cfg_strdup(v);
    sl_cidr_t c;
    if (sl_cidr_parse(text, &c) != 0) {
        sl_cfg_value_error(ctx, node, f,
                           "not an address or CIDR; write e.g. 10.0.0.0/24 or 192.168.1.7");
        free(text);
        return false;
    }
    *(char **)elem = text;
    return true;
}

/* Free text on one line (identity metadata, listener names). */
static bool elem_text(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    for (size_t i = 0; i < v.n; i++)
        if ((unsigned char)v.p[i] < 0x20) {
            sl_cfg_value_error(ctx, node, f, "contains a control character");
            return false;
        }
    *(char **)elem = sl_cfg_strdup(v);
    return true;
}

/* "key=value" label. */
static bool elem_label(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    const char *eq = memchr(v.p, '=', v.n);
    bool ok = eq != NULL && eq > v.p;
    for (const char *q = v.p; ok && q < eq; q++)
        ok = isalnum((unsigned char)*q) || *q == '_' || *q == '-' || *q == '.';
    if (!ok) {
        sl_cfg_value_error(ctx, node, f, "a label is key=value with a key of [A-Za-z0-9_.-]");
        return false;
    }
    return elem_text(ctx, node, f, elem);
}

#define STR_LIST(ident, parse, what)                                                               \
    static const sl_cfg_list_t ident = {                                                           \
        .elem_size = sizeof(char *),                                                               \
        .elem_expect = what,                                                                       \
        .elem_parse = parse,                                                                       \
        .elem_release = sl_cfg_elem_free_str,                                                      \
        .elem_key = sl_cfg_elem_key_str,                                                           \
        .max_items = 10000,                                                                        \
    }
STR_LIST(method_list, elem_method, "an HTTP method");
STR_LIST(path_list, elem_path, "a path prefix or glob");
STR_LIST(port_list, elem_port, "a port number");
STR_LIST(cidr_list, elem_cidr, "an address or CIDR");
STR_LIST(label_list, elem_label, "a key=value label");
STR_LIST(text_list, elem_text, "a string");

static const sl_cfg_field_t rule_fields[] = {
    {.key = "host",
     .type = &sl_cfg_type_hostglob,
     SL_CFG_AT(sl_host_rule_cfg_t, host),
     .flags = SL_CFG_REQUIRED,
     .example = "host: api.github.com"},
    {.key = "methods",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_host_rule_cfg_t, methods, n_methods),
     .sub = &method_list,
     .example = "methods: [GET, HEAD]"},
    {.key = "paths",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_host_rule_cfg_t, paths, n_paths),
     .sub = &path_list,
     .example = "paths: [\"/repos/\"]"},
    {.key = "ports",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_host_rule_cfg_t, ports, n_ports),
     .sub = &port_list,
     .example = "ports: [443]"},
};
static const sl_cfg_table_t rule_table = {"rule", rule_fields,
                                          sizeof rule_fields / sizeof *rule_fields};
static const sl_cfg_list_t rule_list = {
    .elem_size = sizeof(sl_host_rule_cfg_t),
    .elem_expect = "a mapping with host: and methods:, paths: or ports:",
    .map = &rule_table,
    .max_items = 10000,
};

static const sl_cfg_field_t approval_fields[] = {
    {.key = "hosts",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_policy_cfg_t, approval.hosts, approval.n_hosts),
     .sub = &hostglob_list,
     .example = "hosts: [\"api.github.com\"]"},
    {.key = "methods",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_policy_cfg_t, approval.methods, approval.n_methods),
     .sub = &method_list,
     .example = "methods: [POST, PUT, PATCH, DELETE]"},
    {.key = "timeout",
     .type = &sl_cfg_type_duration,
     SL_CFG_AT(sl_policy_cfg_t, approval.timeout),
     .min = 100,
     .max = 24 * HOUR,
     .example = "timeout: 60s"},
};
static const sl_cfg_table_t approval_table = {"approval", approval_fields,
                                              sizeof approval_fields / sizeof *approval_fields};

static const sl_cfg_field_t rate_fields[] = {
    {.key = "requests",
     .type = &sl_cfg_type_uint,
     SL_CFG_AT(sl_policy_cfg_t, rate_limit.requests),
     .max = 100000000,
     .example = "requests: 600"},
    {.key = "per_host",
     .type = &sl_cfg_type_uint,
     SL_CFG_AT(sl_policy_cfg_t, rate_limit.per_host),
     .max = 100000000,
     .example = "per_host: 120"},
    {.key = "window",
     .type = &sl_cfg_type_duration,
     SL_CFG_AT(sl_policy_cfg_t, rate_limit.window),
     .min = 100,
     .max = 24 * HOUR,
     .example = "window: 60s"},
};
static const sl_cfg_table_t rate_table = {"rate_limit", rate_fields,
                                          sizeof rate_fields / sizeof *rate_fields};

static const char *const mcp_shadow_modes[] = {"auto", "block", "warn", "off", NULL};

static const sl_cfg_field_t mcp_fields[] = {
    {.key = "servers",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_policy_cfg_t, mcp.servers, mcp.n_servers),
     .sub = &hostglob_list,
     .example = "servers: [\"mcp.example.com\"]"},
    {.key = "shadow",
     .type = &sl_cfg_type_enum,
     SL_CFG_AT(sl_policy_cfg_t, mcp.shadow),
     .sub = mcp_shadow_modes,
     .example = "shadow: block"},
    {.key = "max_body",
     .type = &sl_cfg_type_size,
     SL_CFG_AT(sl_policy_cfg_t, mcp.max_body),
     .min = 1 * KIB,
     .max = 64 * MIB,
     .example = "max_body: 1MiB"},
};
static const sl_cfg_table_t mcp_table = {"mcp", mcp_fields, sizeof mcp_fields / sizeof *mcp_fields};

/* The keys of a policy, shared by `policy:` and each entry of `policies:`
 * (offsets are from sl_policy_cfg_t). */
#define POLICY_FIELDS                                                                              \
    {.key = "allow",                                                                               \
     .type = &sl_cfg_type_list,                                                                    \
     SL_CFG_LIST_AT(sl_policy_cfg_t, allow, n_allow),                                              \
     .sub = &hostglob_list,                                                                        \
     .example = "allow: [\"api.example.com\", \"*.github.com\"]"},                                 \
        {.key = "deny",                                                                            \
         .type = &sl_cfg_type_list,                                                                \
         SL_CFG_LIST_AT(sl_policy_cfg_t, deny, n_deny),                                            \
         .sub = &hostglob_list,                                                                    \
         .example = "deny: [\"*.pastebin.com\"]"},                                                 \
        {.key = "allow_private",                                                                   \
         .type = &sl_cfg_type_bool,                                                                \
         SL_CFG_AT(sl_policy_cfg_t, allow_private),                                                \
         .example = "allow_private: false"},                                                       \
        {.key = "rules",                                                                           \
         .type = &sl_cfg_type_list,                                                                \
         SL_CFG_LIST_AT(sl_policy_cfg_t, rules, n_rules),                                          \
         .sub = &rule_list,                                                                        \
         .example = "rules: [{ host: api.github.com, methods: [GET] }]"},                          \
        {.key = "approval",                                                                        \
         .type = &sl_cfg_type_map,                                                                 \
         .sub = &approval_table,                                                                   \
         .example = "approval: { hosts: [api.github.com] }"},                                      \
        {.key = "rate_limit",                                                                      \
         .type = &sl_cfg_type_map,                                                                 \
         .sub = &rate_table,                                                                       \
         .example = "rate_limit: { requests: 600, window: 60s }"},                                 \
    {                                                                                              \
        .key = "mcp", .type = &sl_cfg_type_map, .sub = &mcp_table,                                 \
        .example = "mcp: { servers: [\"mcp.example.com\"], shadow: block }"                       \
    }

static const sl_cfg_field_t policy_fields[] = {POLICY_FIELDS};

static bool check_name_chars(sl_view_t v)
{
    if (v.n == 0 || v.n > 64)
        return false;
    for (size_t i = 0; i < v.n; i++)
        if (!(islower((unsigned char)v.p[i]) || isdigit((unsigned char)v.p[i]) || v.p[i] == '-' ||
              v.p[i] == '_'))
            return false;
    return true;
}

static const char *check_policy_name(sl_view_t v)
{
    if (!check_name_chars(v))
        return "a policy name is 1-64 characters of [a-z0-9_-]";
    if (v.n == 7 && memcmp(v.p, "default", 7) == 0)
        return "\"default\" is the top-level `policy:`; choose another name";
    return NULL;
}

static const sl_cfg_field_t named_policy_fields[] = {
    {.key = "name",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_policy_cfg_t, name),
     .flags = SL_CFG_REQUIRED,
     .check = check_policy_name,
     .example = "name: readonly-github"},
    POLICY_FIELDS,
};
static const sl_cfg_table_t named_policy_table = {
    "policy", named_policy_fields, sizeof named_policy_fields / sizeof *named_policy_fields};

static const char *policy_key(const void *elem, char *buf, size_t cap)
{
    return ((const sl_policy_cfg_t *)elem)->name;
}

static const sl_cfg_list_t policy_list = {
    .elem_size = sizeof(sl_policy_cfg_t),
    .elem_expect = "a mapping with name: and the keys of a policy",
    .map = &named_policy_table,
    .elem_key = policy_key,
    .max_items = 10000,
};

/* ---- identities -------------------------------------------------------- */

static const char *check_identity_name(sl_view_t v)
{
    return check_name_chars(v) ? NULL : "an identity name is 1-64 characters of [a-z0-9_-]";
}

static const char *check_env_name(sl_view_t v)
{
    bool ok = v.n > 0 && v.n < 256 && !isdigit((unsigned char)v.p[0]);
    for (size_t i = 0; ok && i < v.n; i++)
        ok = isalnum((unsigned char)v.p[i]) || v.p[i] == '_';
    return ok ? NULL : "an environment variable name is [A-Za-z_][A-Za-z0-9_]*";
}

static const sl_cfg_field_t proxy_auth_fields[] = {
    {.key = "user",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, auth_user),
     .flags = SL_CFG_REQUIRED,
     .check = check_identity_name,
     .example = "user: sandbox-7"},
    {.key = "password_env",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, auth_password_env),
     .flags = SL_CFG_REQUIRED,
     .check = check_env_name,
     .example = "password_env: SANDBOX7_PROXY_PASSWORD"},
};
static const sl_cfg_table_t proxy_auth_table = {
    "proxy_auth", proxy_auth_fields, sizeof proxy_auth_fields / sizeof *proxy_auth_fields};

static const char *check_identity_ca(sl_view_t v)
{
    return sl_view_eq(v, "ephemeral")
               ? NULL
               : "the only value is `ephemeral` (for a CA from files give ca_cert and ca_key)";
}

/* An identity's own interception CA; the cross-key rules are in
 * check_identity_tls. */
static const sl_cfg_field_t identity_tls_fields[] = {
    {.key = "ca",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, tls.ca),
     .check = check_identity_ca,
     .example = "ca: ephemeral"},
    {.key = "ca_cert",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, tls.ca_cert),
     .check = check_path,
     .example = "ca_cert: /etc/sluice/sandbox-7-ca.pem"},
    {.key = "ca_key",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, tls.ca_key),
     .check = check_path,
     .example = "ca_key: /etc/sluice/sandbox-7-ca.key"},
    {.key = "ca_out",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, tls.ca_out),
     .check = check_path,
     .example = "ca_out: /run/sluice/sandbox-7-ca.pem"},
};
static const sl_cfg_table_t identity_tls_table = {
    "tls", identity_tls_fields, sizeof identity_tls_fields / sizeof *identity_tls_fields};

static const sl_cfg_field_t identity_fields[] = {
    {.key = "name",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, name),
     .flags = SL_CFG_REQUIRED,
     .check = check_identity_name,
     .example = "name: sandbox-7"},
    {.key = "tenant",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, tenant),
     .example = "tenant: acme"},
    {.key = "agent",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, agent),
     .example = "agent: coder"},
    {.key = "labels",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_identity_cfg_t, labels, n_labels),
     .sub = &label_list,
     .example = "labels: [\"team=payments\"]"},
    {.key = "policy",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_identity_cfg_t, policy),
     .example = "policy: readonly-github"},
    {.key = "listen",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_identity_cfg_t, listen, n_listen),
     .sub = &text_list,
     .example = "listen: [\"127.0.0.1:8891\"]"},
    {.key = "sources",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_identity_cfg_t, sources, n_sources),
     .sub = &cidr_list,
     .example = "sources: [\"10.0.3.0/24\"]"},
    {.key = "proxy_auth",
     .type = &sl_cfg_type_map,
     .sub = &proxy_auth_table,
     .example = "proxy_auth: { user: sandbox-7, password_env: SANDBOX7_PROXY_PASSWORD }"},
    {.key = "tls",
     .type = &sl_cfg_type_map,
     .sub = &identity_tls_table,
     .example = "tls: { ca: ephemeral, ca_out: /run/sluice/sandbox-7-ca.pem }"},
};
static const sl_cfg_table_t identity_table = {"identity", identity_fields,
                                              sizeof identity_fields / sizeof *identity_fields};

static const char *identity_key(const void *elem, char *buf, size_t cap)
{
    return ((const sl_identity_cfg_t *)elem)->name;
}

static const sl_cfg_list_t identity_list = {
    .elem_size = sizeof(sl_identity_cfg_t),
    .elem_expect = "a mapping with name: and how to recognise the identity",
    .map = &identity_table,
    .elem_key = identity_key,
    .max_items = 100000,
};

/* ---- limits and timeouts ----------------------------------------------- */

static const sl_cfg_field_t limits_fields[] = {
    {.key = "max_head_bytes",
     .type = &sl_cfg_type_size,
     SL_CFG_AT(sl_config_t, limits.max_head_bytes),
     .min = 1 * KIB,
     .max = 16 * MIB,
     .example = "max_head_bytes: 32KiB"},
    {.key = "max_headers",
     .type = &sl_cfg_type_uint,
     SL_CFG_AT(sl_config_t, limits.max_headers),
     .min = 1,
     .max = 10000,
     .example = "max_headers: 100"},
    {.key = "max_connections",
     .type = &sl_cfg_type_uint,
     SL_CFG_AT(sl_config_t, limits.max_connections),
     .min = 1,
     .max = 1000000,
     .example = "max_connections: 10000"},
    {.key = "max_ws_message",
     .type = &sl_cfg_type_size,
     SL_CFG_AT(sl_config_t, limits.max_ws_message),
     .min = 1 * KIB,
     .max = 64 * MIB,
     .example = "max_ws_message: 1MiB"},
};

#define TIMEOUT(name, lo, hi, ex)                                                                  \
    {                                                                                              \
        .key = #name, .type = &sl_cfg_type_duration, SL_CFG_AT(sl_config_t, timeouts.name),        \
        .min = (lo), .max = (hi), .example = #name ": " ex                                         \
    }

static const sl_cfg_field_t timeouts_fields[] = {
    TIMEOUT(header_read, 100, 1 * HOUR, "10s"),
    TIMEOUT(idle, 100, 24 * HOUR, "60s"),
    TIMEOUT(connect, 100, 1 * HOUR, "10s"),
    TIMEOUT(response_head, 100, 24 * HOUR, "60s"),
    TIMEOUT(io_idle, 100, 24 * HOUR, "300s"),
    TIMEOUT(upstream_idle, 0, 1 * HOUR, "30s"), /* 0 = never reuse upstream connections */
    TIMEOUT(drain, 0, 1 * HOUR, "30s"),         /* 0 = close at once on SIGTERM */
};

/* ---- admin ------------------------------------------------------------- */

/* Syntax of admin.listen: "unix:/absolute/path" or a numeric host:port. */
static const char *check_admin_listen(sl_view_t v)
{
    if (v.n >= 5 && memcmp(v.p, "unix:", 5) == 0) {
        if (v.n < 7 || v.p[5] != '/')
            return "a unix socket needs an absolute path; write e.g. unix:/run/sluice/admin.sock";
        if (v.n - 5 > 107)
            return "unix socket path longer than 107 bytes; choose a shorter path";
        return check_path(sl_view(v.p + 5, v.n - 5));
    }
    char host[SL_CFG_HOST_MAX];
    uint16_t port;
    return sl_cfg_parse_listen(v, host, &port);
}

static const sl_cfg_field_t admin_fields[] = {
    {.key = "listen",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_config_t, admin.listen),
     .flags = SL_CFG_REQUIRED,
     .check = check_admin_listen,
     .example = "listen: \"127.0.0.1:8889\""},
    {.key = "allow_remote",
     .type = &sl_cfg_type_bool,
     SL_CFG_AT(sl_config_t, admin.allow_remote),
     .example = "allow_remote: false"},
    {.key = "token_env",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_config_t, admin.token_env),
     .check = check_env_name,
     .example = "token_env: SLUICE_ADMIN_TOKEN"},
    {.key = "token_file",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_config_t, admin.token_file),
     .check = check_path,
     .example = "token_file: /etc/sluice/admin.token"},
};
static const sl_cfg_table_t admin_table = {"admin", admin_fields,
                                           sizeof admin_fields / sizeof *admin_fields};

/* Do two TCP listen addresses collide (same port, same or wildcard host)? */
static bool admin_collides(const char *ah, uint16_t ap, const char *lh, uint16_t lp)
{
    if (ap != lp)
        return false;
    return strcmp(ah, lh) == 0 || strcmp(ah, "0.0.0.0") == 0 || strcmp(ah, "::") == 0 ||
           strcmp(lh, "0.0.0.0") == 0 || strcmp(lh, "::") == 0;
}

/* Does admin address ah:ap collide with the proxy's listeners? They are read
 * from the document itself (the root `listen:` may come after `admin:`), or
 * are the defaults already in cfg when the file has no `listen:`. */
static bool admin_hits_proxy(sl_cfg_ctx_t *ctx, const sl_config_t *cfg, const char *ah,
                             uint16_t ap, char *which, size_t cap)
{
    yaml_node_t *root = yaml_document_get_root_node(ctx->doc);
    yaml_node_t *ln = NULL;
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        sl_view_t kv;
        yaml_node_t *k = yaml_document_get_node(ctx->doc, pr->key);
        if (k && sl_cfg_scalar(k, &kv) && sl_view_eq(kv, "listen"))
            ln = yaml_document_get_node(ctx->doc, pr->value);
    }
    size_t n = ln == NULL                        ? cfg->n_listen
               : ln->type == YAML_SEQUENCE_NODE ? (size_t)(ln->data.sequence.items.top -
                                                            ln->data.sequence.items.start)
                                                 : 1;
    for (size_t i = 0; i < n; i++) {
        char lh[SL_CFG_HOST_MAX];
        uint16_t lp;
        if (ln == NULL) {
            snprintf(lh, sizeof lh, "%s", cfg->listen[i].host);
            lp = cfg->listen[i].port;
        } else {
            yaml_node_t *e = ln->type == YAML_SEQUENCE_NODE
                                 ? yaml_document_get_node(ctx->doc, ln->data.sequence.items.start[i])
                                 : ln;
            sl_view_t v;
            if (e == NULL || !sl_cfg_scalar(e, &v) || sl_cfg_parse_listen(v, lh, &lp) != NULL)
                continue; /* reported by `listen` itself */
        }
        if (admin_collides(ah, ap, lh, lp)) {
            snprintf(which, cap, strchr(lh, ':') ? "[%s]:%u" : "%s:%u", lh, (unsigned)lp);
            return true;
        }
    }
    return false;
}

/* `admin:` is a table plus checks across its keys and against `listen:`. */
static void admin_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    sl_config_t *cfg = (sl_config_t *)base;
    unsigned before = ctx->n_errors;
    sl_cfg_parse_table(ctx, node, &admin_table, base);
    if (ctx->n_errors != before || cfg->admin.listen == NULL)
        return;
    if ((cfg->admin.token_env == NULL) == (cfg->admin.token_file == NULL)) {
        sl_cfg_error(ctx, node,
                     "the admin API needs a bearer token from exactly one of token_env or "
                     "token_file; add e.g. `token_env: SLUICE_ADMIN_TOKEN`");
        return;
    }
    if (strncmp(cfg->admin.listen, "unix:", 5) == 0)
        return;
    char host[SL_CFG_HOST_MAX], which[SL_CFG_HOST_MAX + 8];
    uint16_t port;
    if (sl_cfg_parse_listen(sl_view(cfg->admin.listen, strlen(cfg->admin.listen)), host, &port) !=
        NULL)
        return;
    bool loopback = strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
    if (!loopback && !cfg->admin.allow_remote)
        sl_cfg_error(ctx, node,
                     "listen \"%s\" is not a loopback address, so sandboxes might reach the "
                     "admin API; use 127.0.0.1:PORT or unix:/PATH (or set allow_remote: true "
                     "if a firewall protects it)",
                     cfg->admin.listen);
    else if (admin_hits_proxy(ctx, cfg, host, port, which, sizeof which))
        sl_cfg_error(ctx, node,
                     "listen \"%s\" is also the proxy listen address %s, where sandboxes "
                     "connect; give the admin API its own port",
                     cfg->admin.listen, which);
}

static void admin_release(const sl_cfg_field_t *f, char *base)
{
    sl_cfg_release_table(&admin_table, base);
}

static const sl_cfg_type_t admin_type = {"a mapping of `key: value` lines", admin_parse,
                                         admin_release};

/* ---- top level --------------------------------------------------------- */

static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};

static const char *check_audit_path(sl_view_t v)
{
    if (memchr(v.p, '\n', v.n) != NULL || memchr(v.p, '\r', v.n) != NULL)
        return "contains a line break; write a file path, \"-\" or \"off\"";
    return NULL;
}

static const sl_cfg_field_t log_fields[] = {
    {.key = "level",
     .type = &sl_cfg_type_enum,
     SL_CFG_AT(sl_config_t, log_level),
     .sub = log_levels,
     .example = "level: info"},
};

static const sl_cfg_field_t audit_fields[] = {
    {.key = "path",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_config_t, audit_path),
     .check = check_audit_path,
     .example = "path: /var/log/sluice/audit.jsonl"},
};

#define TABLE(name, fields)                                                                        \
    {                                                                                              \
        name, fields, sizeof fields / sizeof *fields                                               \
    }
static const sl_cfg_table_t log_table = TABLE("log", log_fields);
static const sl_cfg_table_t audit_table = TABLE("audit", audit_fields);
static const sl_cfg_table_t limits_table = TABLE("limits", limits_fields);
static const sl_cfg_table_t timeouts_table = TABLE("timeouts", timeouts_fields);
static const sl_cfg_table_t policy_table = TABLE("policy", policy_fields);

static const sl_cfg_field_t tls_fields[] = {
    {.key = "intercept",
     .type = &sl_cfg_type_bool,
     SL_CFG_AT(sl_config_t, tls.intercept),
     .example = "intercept: true"},
    {.key = "ca_cert",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_config_t, tls.ca_cert),
     .check = check_path,
     .example = "ca_cert: /etc/sluice/ca.pem"},
    {.key = "ca_key",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_config_t, tls.ca_key),
     .check = check_path,
     .example = "ca_key: /etc/sluice/ca.key"},
    {.key = "ca_out",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_config_t, tls.ca_out),
     .check = check_path,
     .example = "ca_out: /run/sluice/ca.pem"},
    {.key = "passthrough",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, tls.passthrough, tls.n_passthrough),
     .sub = &hostglob_list,
     .example = "passthrough: [\"*.apple.com\"]"},
    {.key = "upstream_ca_file",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_config_t, tls.upstream_ca_file),
     .check = check_path,
     .example = "upstream_ca_file: /etc/sluice/extra-roots.pem"},
    {.key = "leaf_lifetime",
     .type = &sl_cfg_type_duration,
     SL_CFG_AT(sl_config_t, tls.leaf_lifetime),
     .min = 5 * 60 * 1000,
     .max = 30 * 24 * HOUR,
     .example = "leaf_lifetime: 24h"},
};
static const sl_cfg_table_t tls_table = TABLE("tls", tls_fields);

static const char *check_rule_id(sl_view_t v)
{
    for (size_t i = 0; i < v.n; i++)
        if (!(islower((unsigned char)v.p[i]) || isdigit((unsigned char)v.p[i]) || v.p[i] == '-'))
            return "a rule id is [a-z0-9-]+ (see `sluice scan --list-rules`)";
    return NULL;
}

static bool elem_rule_id(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    const char *why = check_rule_id(v);
    if (why) {
        sl_cfg_value_error(ctx, node, f, why);
        return false;
    }
    *(char **)elem = sl_cfg_strdup(v);
    return true;
}
STR_LIST(rule_id_list, elem_rule_id, "a rule id");

static bool elem_file(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    const char *why = check_path(v);
    if (why) {
        sl_cfg_value_error(ctx, node, f, why);
        return false;
    }
    *(char **)elem = sl_cfg_strdup(v);
    return true;
}
STR_LIST(file_list, elem_file, "a file or directory path");

/* Index = sl_action_t value (block 0, redact 1, warn 2). */
static const char *const response_actions[] = {"block", "redact", "warn", NULL};
static const char *check_reason(sl_view_t v)
{
    for (size_t i = 0; i < v.n; i++)
        if (!isspace((unsigned char)v.p[i]))
            return NULL;
    return "a suppression needs a reason: say why this finding is a false positive here";
}

static const sl_cfg_field_t suppress_fields[] = {
    {.key = "rule",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_suppress_cfg_t, rule),
     .flags = SL_CFG_REQUIRED,
     .check = check_rule_id,
     .example = "rule: us-ssn"},
    {.key = "hosts",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_suppress_cfg_t, hosts, n_hosts),
     .sub = &hostglob_list,
     .example = "hosts: [\"hr.example.com\"]"},
    {.key = "reason",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_suppress_cfg_t, reason),
     .flags = SL_CFG_REQUIRED,
     .check = check_reason,
     .example = "reason: \"employee ids look like SSNs\""},
};
static const sl_cfg_table_t suppress_table = TABLE("suppression", suppress_fields);

static const sl_cfg_list_t suppress_list = {
    .elem_size = sizeof(sl_suppress_cfg_t),
    .elem_expect = "a mapping with rule:, hosts: and reason:",
    .map = &suppress_table,
    .max_items = 10000,
};
/* Index = SL_UNDECODABLE_*. */
static const char *const undecodable_choices[] = {"refuse", "pass", NULL};
static const sl_cfg_field_t history_fields[] = {
    {.key = "enabled",
     .type = &sl_cfg_type_bool,
     SL_CFG_AT(sl_config_t, inspect.history.enabled),
     .example = "enabled: true"},
    {.key = "window",
     .type = &sl_cfg_type_duration,
     SL_CFG_AT(sl_config_t, inspect.history.window),
     .min = 1000,
     .max = HOUR,
     .example = "window: 60s"},
    {.key = "max_bytes",
     .type = &sl_cfg_type_size,
     SL_CFG_AT(sl_config_t, inspect.history.max_bytes),
     .min = 256,
     .max = 1 * MIB,
     .example = "max_bytes: 4KiB"},
    {.key = "max_entries",
     .type = &sl_cfg_type_uint,
     SL_CFG_AT(sl_config_t, inspect.history.max_entries),
     .min = 2,
     .max = 4096,
     .example = "max_entries: 64"},
    {.key = "max_identities",
     .type = &sl_cfg_type_uint,
     SL_CFG_AT(sl_config_t, inspect.history.max_identities),
     .min = 16,
     .max = 1000000,
     .example = "max_identities: 4096"},
};
static const sl_cfg_table_t history_table = TABLE("history", history_fields);

static const sl_cfg_field_t inspect_fields[] = {
    {.key = "enabled",
     .type = &sl_cfg_type_bool,
     SL_CFG_AT(sl_config_t, inspect.enabled),
     .example = "enabled: true"},
    {.key = "responses",
     .type = &sl_cfg_type_bool,
     SL_CFG_AT(sl_config_t, inspect.responses),
     .example = "responses: true"},
    {.key = "rules",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, inspect.rules, inspect.n_rules),
     .sub = &file_list,
     .example = "rules: [/etc/sluice/rules.d]"},
    {.key = "disable",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, inspect.disable, inspect.n_disable),
     .sub = &rule_id_list,
     .example = "disable: [us-ssn]"},
    {.key = "warn",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, inspect.warn, inspect.n_warn),
     .sub = &rule_id_list,
     .example = "warn: [credit-card-number]"},
    {.key = "redact",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, inspect.redact, inspect.n_redact),
     .sub = &rule_id_list,
     .example = "redact: [inj-ignore-previous-instructions]"},
    {.key = "response_action",
     .type = &sl_cfg_type_enum,
     SL_CFG_AT(sl_config_t, inspect.response_action),
     .sub = response_actions,
     .example = "response_action: redact"},
    {.key = "suppress",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, inspect.suppress, inspect.n_suppress),
     .sub = &suppress_list,
     .example = "suppress: [{ rule: us-ssn, hosts: [hr.example.com], reason: \"employee ids\" }]"},
    {.key = "decode_limit",
     .type = &sl_cfg_type_size,
     SL_CFG_AT(sl_config_t, inspect.decode_limit),
     .min = 64 * KIB,
     .max = 4096 * MIB,
     .example = "decode_limit: 64MiB"},
    {.key = "decode_ratio",
     .type = &sl_cfg_type_uint,
     SL_CFG_AT(sl_config_t, inspect.decode_ratio),
     .max = 1000000,
     .example = "decode_ratio: 1000"},
    {.key = "undecodable",
     .type = &sl_cfg_type_enum,
     SL_CFG_AT(sl_config_t, inspect.undecodable),
     .sub = undecodable_choices,
     .example = "undecodable: refuse"},
    {.key = "undecodable_pass",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, inspect.undecodable_pass, inspect.n_undecodable_pass),
     .sub = &hostglob_list,
     .example = "undecodable_pass: [\"downloads.example.com\"]"},
    {.key = "history",
     .type = &sl_cfg_type_map,
     .sub = &history_table,
     .example = "history: { window: 60s, max_bytes: 4KiB }"},
};
static const sl_cfg_table_t inspect_table = TABLE("inspect", inspect_fields);

/* ---- secrets ----------------------------------------------------------- */

/* Structural checks only: values are read from their sources by
 * src/secrets/store.c, so `sluice check` works without them. */

static const char *check_secret_name(sl_view_t v)
{
    return check_name_chars(v) ? NULL : "a secret name is 1-64 characters of [a-z0-9_-]";
}

/* Placeholders use URI-unreserved bytes only, so they read the same in a
 * header, a path or a query, and percent-decoding cannot hide them. */
static const char *check_placeholder(sl_view_t v)
{
    if (v.n < 8)
        return "shorter than 8 bytes; use a distinctive text like SLUICE_PLACEHOLDER_OPENAI";
    if (v.n > SL_SECRET_PLACEHOLDER_MAX)
        return "longer than 256 bytes; use a shorter text";
    for (size_t i = 0; i < v.n; i++) {
        char c = v.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == '~'))
            return "use letters, digits and - _ . ~ only (it must read the same in a URL)";
    }
    return NULL;
}

static const char *check_inject_header(sl_view_t v)
{
    static const char *const framing[] = {
        "host", "content-length", "transfer-encoding", "connection",       "keep-alive",
        "te",   "trailer",        "upgrade",           "proxy-connection", NULL};
    if (v.n > 128)
        return "longer than 128 bytes; write a header name";
    for (size_t i = 0; i < v.n; i++)
        if (!sl_h1_is_tchar((unsigned char)v.p[i]))
            return "not a header name; use letters, digits and '-'";
    for (size_t i = 0; framing[i] != NULL; i++)
        if (v.n == strlen(framing[i]) && strncasecmp(v.p, framing[i], v.n) == 0)
            return "a framing or hop-by-hop header cannot carry a credential; use e.g. "
                   "Authorization";
    return NULL;
}

static const char *check_inject_template(sl_view_t v)
{
    for (size_t i = 0; i < v.n; i++)
        if ((unsigned char)v.p[i] < 0x20 || v.p[i] == 0x7f)
            return "contains a control byte or line break; write e.g. \"Bearer {secret}\"";
    const char *at = memmem(v.p, v.n, "{secret}", 8);
    if (at == NULL)
        return "has no {secret}; write e.g. \"Bearer {secret}\"";
    if (memmem(at + 8, v.n - (size_t)(at + 8 - v.p), "{secret}", 8) != NULL)
        return "has {secret} twice; write it once";
    return NULL;
}

/* Identity names follow identities[].name. */
static bool secret_identity_elem(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f,
                                 void *elem)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return false;
    const char *why = check_identity_name(v);
    if (why != NULL) {
        sl_cfg_value_error(ctx, node, f, why);
        return false;
    }
    *(char **)elem = sl_cfg_strdup(v);
    return true;
}

STR_LIST(secret_identity_list, secret_identity_elem, "an identity name");
static const sl_cfg_list_t secret_host_list = {
    .elem_size = sizeof(char *),
    .elem_expect = "a host pattern",
    .elem_parse = sl_cfg_elem_hostglob,
    .elem_release = sl_cfg_elem_free_str,
    .elem_key = sl_cfg_elem_key_str,
    .min_items = 1,
    .max_items = 1000,
    .single_ok = true,
};

/* replace_in: a list of location words, stored as SL_SECRET_IN_* bits. */
static void replace_in_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f,
                             char *base)
{
    static const char *const words[] = {"headers", "query", "path", "body"};
    yaml_node_item_t *it = NULL, *end = NULL;
    if (node->type == YAML_SEQUENCE_NODE) {
        it = node->data.sequence.items.start;
        end = node->data.sequence.items.top;
    }
    if ((node->type != YAML_SEQUENCE_NODE && node->type != YAML_SCALAR_NODE) ||
        sl_cfg_is_null(node) || it == end) {
        if (node->type == YAML_SCALAR_NODE && !sl_cfg_is_null(node))
            goto scalar;
        sl_cfg_type_error(ctx, node, f);
        return;
    }
scalar:;
    unsigned bits = 0;
    size_t count = node->type == YAML_SCALAR_NODE ? 1 : (size_t)(end - it);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *en =
            node->type == YAML_SCALAR_NODE ? node : yaml_document_get_node(ctx->doc, it[i]);
        sl_view_t v;
        if (!sl_cfg_scalar(en, &v) || sl_cfg_is_null(en)) {
            sl_cfg_type_error(ctx, en, f);
            return;
        }
        unsigned w = 0;
        while (w < 4 && !sl_view_eq(v, words[w]))
            w++;
        if (w == 4) {
            sl_cfg_value_error(ctx, en, f, "not a location; use headers, query, path or body");
            return;
        }
        if (bits & (1u << w)) {
            sl_cfg_value_error(ctx, en, f, "listed twice; remove one");
            return;
        }
        bits |= 1u << w;
    }
    *(unsigned *)(base + f->off) = bits;
}

static const sl_cfg_type_t replace_in_type = {"a list of headers, query, path, body",
                                              replace_in_parse, NULL};

static const sl_cfg_field_t secret_source_fields[] = {
    {.key = "env",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_secret_cfg_t, env),
     .check = check_env_name,
     .example = "source: { env: OPENAI_API_KEY }"},
    {.key = "file",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_secret_cfg_t, file),
     .check = check_path,
     .example = "source: { file: /run/secrets/openai }"},
};
static const sl_cfg_table_t secret_source_table = TABLE("source", secret_source_fields);

static const sl_cfg_field_t secret_inject_fields[] = {
    {.key = "header",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_secret_cfg_t, inject_header),
     .check = check_inject_header,
     .flags = SL_CFG_REQUIRED,
     .example = "header: Authorization"},
    {.key = "template",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_secret_cfg_t, inject_template),
     .check = check_inject_template,
     .example = "template: \"Bearer {secret}\""},
};
static const sl_cfg_table_t secret_inject_table = TABLE("inject", secret_inject_fields);

static const sl_cfg_field_t secret_fields[] = {
    {.key = "name",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_secret_cfg_t, name),
     .check = check_secret_name,
     .flags = SL_CFG_REQUIRED,
     .example = "name: openai"},
    {.key = "source",
     .type = &sl_cfg_type_map,
     .sub = &secret_source_table,
     .flags = SL_CFG_REQUIRED,
     .example = "source: { env: OPENAI_API_KEY }"},
    {.key = "placeholder",
     .type = &sl_cfg_type_string,
     SL_CFG_AT(sl_secret_cfg_t, placeholder),
     .check = check_placeholder,
     .example = "placeholder: SLUICE_PLACEHOLDER_OPENAI"},
    {.key = "hosts",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_secret_cfg_t, hosts, n_hosts),
     .sub = &secret_host_list,
     .flags = SL_CFG_REQUIRED,
     .example = "hosts: [\"api.openai.com\"]"},
    {.key = "methods",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_secret_cfg_t, methods, n_methods),
     .sub = &method_list,
     .example = "methods: [GET, POST]"},
    {.key = "paths",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_secret_cfg_t, paths, n_paths),
     .sub = &path_list,
     .example = "paths: [\"/v1/\"]"},
    {.key = "identities",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_secret_cfg_t, identities, n_identities),
     .sub = &secret_identity_list,
     .example = "identities: [agent-1]"},
    {.key = "replace_in",
     .type = &replace_in_type,
     SL_CFG_AT(sl_secret_cfg_t, replace_in),
     .example = "replace_in: [headers, query]"},
    {.key = "inject",
     .type = &sl_cfg_type_map,
     .sub = &secret_inject_table,
     .example = "inject: { header: Authorization, template: \"Bearer {secret}\" }"},
    {.key = "require",
     .type = &sl_cfg_type_bool,
     SL_CFG_AT(sl_secret_cfg_t, require),
     .example = "require: true"},
};
static const sl_cfg_table_t secret_table = TABLE("secret", secret_fields);

static const char *secret_key(const void *elem, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return ((const sl_secret_cfg_t *)elem)->name;
}

static const sl_cfg_list_t secret_list = {
    .elem_size = sizeof(sl_secret_cfg_t),
    .elem_expect = "a mapping with name:, source: and hosts:",
    .map = &secret_table,
    .elem_key = secret_key,
    .max_items = 256,
};

void sl_config_secret_placeholder(const char *name, char *out)
{
    /* Not a security property (placeholders are public by design): a stable,
     * distinctive suffix so one generated placeholder never contains another. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *s = "sluice-placeholder-v1:"; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    for (const char *s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    snprintf(out, SL_SECRET_PLACEHOLDER_MAX + 1, "sluice-ph-%.64s-%016llx", name,
             (unsigned long long)h);
}

/* Report at secrets[i] (the list parser has popped its own path by now). */
static void secret_error(sl_cfg_ctx_t *ctx, yaml_node_t *node, size_t i, const char *key,
                         const char *msg)
{
    size_t saved = ctx->path_n;
    snprintf(ctx->path + saved, sizeof ctx->path - saved, "[%zu]%s%s", i, key ? "." : "",
             key ? key : "");
    ctx->path_n = strlen(ctx->path);
    sl_cfg_error(ctx, node, "%s", msg);
    ctx->path_n = saved;
    ctx->path[saved] = '\0';
}

/* The list, then the rules that span fields or entries: one source, defaults
 * for placeholder and template, no placeholder inside another. */
static void secrets_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    unsigned before = ctx->n_errors;
    sl_cfg_type_list.parse(ctx, node, f, base);
    if (ctx->n_errors != before || node->type != YAML_SEQUENCE_NODE)
        return;
    sl_secret_cfg_t *s = *(sl_secret_cfg_t **)(base + f->off);
    size_t n = *(size_t *)(base + f->off_n);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *en = yaml_document_get_node(ctx->doc, node->data.sequence.items.start[i]);
        if ((s[i].env == NULL) == (s[i].file == NULL))
            secret_error(ctx, en, i, "source",
                         "give exactly one of env: or file:; write e.g. "
                         "`source: { env: OPENAI_API_KEY }`");
        if (s[i].placeholder == NULL) {
            char ph[SL_SECRET_PLACEHOLDER_MAX + 1];
            sl_config_secret_placeholder(s[i].name, ph);
            s[i].placeholder = sl_cfg_strdup(sl_view(ph, strlen(ph)));
        }
        if (s[i].inject_header != NULL && s[i].inject_template == NULL)
            s[i].inject_template = sl_cfg_strdup(SL_VIEW_LIT("{secret}"));
        if (s[i].replace_in == 0)
            s[i].replace_in = SL_SECRET_IN_HEADERS;
        for (size_t j = 0; j < i; j++) {
            char msg[640];
            if (strstr(s[i].placeholder, s[j].placeholder) == NULL &&
                strstr(s[j].placeholder, s[i].placeholder) == NULL)
                continue;
            snprintf(msg, sizeof msg,
                     "placeholder %s the placeholder of secret '%s'; each placeholder must be "
                     "distinct and not contain another",
                     strcmp(s[i].placeholder, s[j].placeholder) == 0 ? "equals" : "overlaps",
                     s[j].name);
            secret_error(ctx, en, i, "placeholder", msg);
        }
    }
}

static void secrets_release(const sl_cfg_field_t *f, char *base)
{
    sl_cfg_type_list.release(f, base);
}

static const sl_cfg_type_t secrets_type = {"a list of secrets", secrets_parse, secrets_release};

/* Nested sections fill the same sl_config_t, so their fields carry offsets
 * from the root and the section itself sits at offset 0. */
static const sl_cfg_field_t root_fields[] = {
    {.key = "listen",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, listen, n_listen),
     .sub = &listen_list,
     .example = "listen: [\"127.0.0.1:8888\"]"},
    {.key = "workers",
     .type = &sl_cfg_type_uint,
     SL_CFG_AT(sl_config_t, workers),
     .max = 64,
     .example = "workers: 0"},
    {.key = "log", .type = &sl_cfg_type_map, .sub = &log_table, .example = "log: { level: info }"},
    {.key = "audit",
     .type = &sl_cfg_type_map,
     .sub = &audit_table,
     .example = "audit: { path: \"-\" }"},
    {.key = "watch",
     .type = &sl_cfg_type_bool,
     SL_CFG_AT(sl_config_t, watch),
     .example = "watch: true"},
    {.key = "limits",
     .type = &sl_cfg_type_map,
     .sub = &limits_table,
     .example = "limits: { max_headers: 100 }"},
    {.key = "timeouts",
     .type = &sl_cfg_type_map,
     .sub = &timeouts_table,
     .example = "timeouts: { connect: 10s }"},
    {.key = "policy",
     .type = &sl_cfg_type_map,
     SL_CFG_AT(sl_config_t, policy),
     .sub = &policy_table,
     .example = "policy: { allow: [\"api.example.com\"] }"},
    {.key = "policies",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, policies, n_policies),
     .sub = &policy_list,
     .example = "policies: [{ name: readonly, rules: [{ host: \"*\", methods: [GET] }] }]"},
    {.key = "identities",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, identities, n_identities),
     .sub = &identity_list,
     .example = "identities: [{ name: sandbox-7, listen: [\"127.0.0.1:8891\"] }]"},
    {.key = "refuse_unknown",
     .type = &sl_cfg_type_bool,
     SL_CFG_AT(sl_config_t, refuse_unknown),
     .example = "refuse_unknown: false"},
    {.key = "routes",
     .type = &sl_cfg_type_list,
     SL_CFG_LIST_AT(sl_config_t, routes, n_routes),
     .sub = &route_list,
     .example = "routes: [{ host: db.internal, to: \"10.0.0.5:5432\" }]"},
    {.key = "inspect",
     .type = &sl_cfg_type_map,
     .sub = &inspect_table,
     .example = "inspect: { enabled: true, disable: [us-ssn] }"},
    {.key = "tls",
     .type = &sl_cfg_type_map,
     .sub = &tls_table,
     .example = "tls: { intercept: true, ca_out: /run/sluice/ca.pem }"},
    {.key = "admin",
     .type = &admin_type,
     .example = "admin: { listen: \"127.0.0.1:8889\", token_env: SLUICE_ADMIN_TOKEN }"},
    {.key = "secrets",
     .type = &secrets_type,
     SL_CFG_LIST_AT(sl_config_t, secrets, n_secrets),
     .sub = &secret_list,
     .example = "secrets: [{ name: openai, source: { env: OPENAI_API_KEY }, hosts: "
                "[api.openai.com] }]"},
};
static const sl_cfg_table_t root_table = TABLE("", root_fields);

/* ---- loading ----------------------------------------------------------- */

/* Line and column (0-based) of a byte offset, for reader errors that carry
 * only an offset. */
static yaml_mark_t mark_of_offset(const char *text, size_t n, size_t off)
{
    yaml_mark_t m = {0};
    for (size_t i = 0; i < off && i < n; i++) {
        if (text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
            m.column++;
        }
    }
    m.index = off;
    return m;
}

static void syntax_error(sl_cfg_ctx_t *ctx, const yaml_parser_t *p, const char *text, size_t n)
{
    if (p->error == YAML_READER_ERROR) {
        yaml_mark_t m = mark_of_offset(text, n, p->problem_offset);
        sl_cfg_error_at(ctx, &m, "not valid UTF-8 text (%s); save the file as UTF-8",
                        p->problem ? p->problem : "unreadable byte");
        return;
    }
    if (p->error == YAML_MEMORY_ERROR) {
        sl_cfg_error_at(ctx, NULL, "out of memory parsing YAML; is this really a config file?");
        return;
    }
    sl_cfg_error_at(ctx, &p->problem_mark, "YAML syntax error: %s%s%s; fix the syntax here",
                    p->problem ? p->problem : "malformed document", p->context ? " " : "",
                    p->context ? p->context : "");
}

/* Refuse what the document loader would accept but a config must not have:
 * aliases (a billion-laughs expansion, or a node reused in two places),
 * explicit tags (the schema, not the file, decides types), a second document, and deep nesting
 * (libyaml's scanner is quadratic in flow depth: 20000 '[' take seconds). Stopping the event stream
 * at the depth limit bounds the work before libyaml gets deep. Returns false after reporting. */
static bool prescan(sl_cfg_ctx_t *ctx, const char *text, size_t n)
{
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        sl_cfg_error_at(ctx, NULL, "cannot start the YAML parser (out of memory)");
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, n);
    unsigned before = ctx->n_errors;
    int docs = 0, depth = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(ctx, &p, text, n);
            break;
        }
        yaml_event_type_t type = ev.type;
        const yaml_char_t *tag = type == YAML_SCALAR_EVENT           ? ev.data.scalar.tag
                                 : type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag
                                 : type == YAML_MAPPING_START_EVENT  ? ev.data.mapping_start.tag
                                                                     : NULL;
        if (tag != NULL)
            sl_cfg_error_at(ctx, &ev.start_mark,
                            "YAML tags (!name) are not supported; write the plain value");
        else if (type == YAML_ALIAS_EVENT)
            sl_cfg_error_at(ctx, &ev.start_mark,
                            "YAML aliases (*name) are not supported; write the value out");
        else if (type == YAML_DOCUMENT_START_EVENT && ++docs > 1)
            sl_cfg_error_at(ctx, &ev.start_mark,
                            "a second YAML document; keep one document per config file");
        else if ((type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) &&
                 ++depth > SL_CONFIG_MAX_DEPTH) {
            sl_cfg_error_at(ctx, &ev.start_mark,
                            "nested more than %d levels deep; a sluice config never needs that",
                            SL_CONFIG_MAX_DEPTH);
            yaml_event_delete(&ev);
            break;
        } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT)
            depth--;
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT || ctx->n_errors > SL_CFG_MAX_ERRORS)
            break;
    }
    yaml_parser_delete(&p);
    return ctx->n_errors == before;
}

/* Overlay the YAML text onto cfg. Returns the number of problems found. */
/* The value node of `key` in mapping `map`, or NULL. */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = yaml_document_get_node(doc, pr->key);
        sl_view_t kv;
        if (k && sl_cfg_scalar(k, &kv) && sl_view_eq(kv, key))
            return yaml_document_get_node(doc, pr->value);
    }
    return NULL;
}

/* Element i of sequence `seq`, or NULL. */
static yaml_node_t *seq_get(yaml_document_t *doc, yaml_node_t *seq, size_t i)
{
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
        return NULL;
    yaml_node_item_t *it = seq->data.sequence.items.start + i;
    return it < seq->data.sequence.items.top ? yaml_document_get_node(doc, *it) : NULL;
}

/* Checks that span sections: names an identity refers to must exist. */
static void check_references(sl_cfg_ctx_t *ctx, yaml_node_t *root, sl_config_t *cfg)
{
    yaml_node_t *ids = map_get(ctx->doc, root, "identities");
    for (size_t i = 0; i < cfg->n_identities; i++) {
        const sl_identity_cfg_t *id = &cfg->identities[i];
        yaml_node_t *node = seq_get(ctx->doc, ids, i);
        if (id->policy && strcmp(id->policy, "default") != 0) {
            bool found = false;
            for (size_t k = 0; k < cfg->n_policies && !found; k++)
                found = strcmp(cfg->policies[k].name, id->policy) == 0;
            if (!found) {
                yaml_node_t *pn = map_get(ctx->doc, node, "policy");
                sl_cfg_error(ctx, pn ? pn : node,
                             "identities[%zu].policy: no policy named \"%s\"; define it under "
                             "`policies:` or use \"default\"",
                             i, id->policy);
            }
        }
        yaml_node_t *ln = map_get(ctx->doc, node, "listen");
        for (size_t k = 0; k < id->n_listen; k++) {
            char host[SL_CFG_HOST_MAX];
            uint16_t port;
            bool found = false;
            if (sl_cfg_parse_listen(sl_view(id->listen[k], strlen(id->listen[k])), host, &port) ==
                NULL)
                for (size_t j = 0; j < cfg->n_listen && !found; j++)
                    found = strcmp(cfg->listen[j].host, host) == 0 && cfg->listen[j].port == port;
            if (!found) {
                yaml_node_t *en = seq_get(ctx->doc, ln, k);
                sl_cfg_error(ctx, en ? en : node,
                             "identities[%zu].listen: \"%s\" is not one of the `listen` "
                             "addresses; add it there first",
                             i, id->listen[k]);
            }
        }
    }
}

/* The node of `key` inside the tls: map of `parent`, or the best node
 * there is to point at. */
static yaml_node_t *tls_node(sl_cfg_ctx_t *ctx, yaml_node_t *parent, const char *key)
{
    yaml_node_t *t = map_get(ctx->doc, parent, "tls");
    yaml_node_t *k = key ? map_get(ctx->doc, t, key) : NULL;
    return k ? k : t ? t : parent;
}

/* The CA keys: ca_cert and ca_key go together; an identity says which CA
 * it has; no two CAs write their certificate to one file, and no
 * certificate is written over a CA file. */
static void check_tls_cas(sl_cfg_ctx_t *ctx, yaml_node_t *root, const sl_config_t *cfg)
{
    if ((cfg->tls.ca_cert == NULL) != (cfg->tls.ca_key == NULL))
        sl_cfg_error(ctx, tls_node(ctx, root, cfg->tls.ca_cert ? "ca_cert" : "ca_key"),
                     "tls: ca_cert and ca_key go together; give both (from `sluice ca init`) "
                     "or neither (an ephemeral CA)");
    yaml_node_t *ids = map_get(ctx->doc, root, "identities");
    for (size_t i = 0; i < cfg->n_identities; i++) {
        const sl_identity_cfg_t *id = &cfg->identities[i];
        yaml_node_t *node = seq_get(ctx->doc, ids, i);
        bool files = id->tls.ca_cert || id->tls.ca_key;
        if (id->tls.ca && files)
            sl_cfg_error(ctx, tls_node(ctx, node, "ca"),
                         "identities[%zu].tls: `ca: ephemeral` and ca_cert/ca_key exclude "
                         "each other; keep one",
                         i);
        else if (files && (id->tls.ca_cert == NULL || id->tls.ca_key == NULL))
            sl_cfg_error(ctx, tls_node(ctx, node, id->tls.ca_cert ? "ca_cert" : "ca_key"),
                         "identities[%zu].tls: ca_cert and ca_key go together; give both "
                         "(from `sluice ca init`)",
                         i);
        else if (!files && id->tls.ca == NULL && id->tls.ca_out)
            sl_cfg_error(ctx, tls_node(ctx, node, "ca_out"),
                         "identities[%zu].tls: ca_out without a CA; add `ca: ephemeral` or "
                         "ca_cert and ca_key (without tls: the identity uses the instance CA)",
                         i);
        else if (id->tls.ca && id->tls.ca_out == NULL)
            sl_cfg_error(ctx, tls_node(ctx, node, "ca"),
                         "identities[%zu].tls: an ephemeral CA needs ca_out, the file its "
                         "certificate is written to for the sandbox to trust",
                         i);
        const char *out = id->tls.ca_out;
        if (out == NULL)
            continue;
        bool clash = (cfg->tls.ca_out && strcmp(out, cfg->tls.ca_out) == 0) ||
                     (cfg->tls.ca_cert && strcmp(out, cfg->tls.ca_cert) == 0) ||
                     (cfg->tls.ca_key && strcmp(out, cfg->tls.ca_key) == 0);
        for (size_t k = 0; k < cfg->n_identities && !clash; k++) {
            const sl_identity_cfg_t *o = &cfg->identities[k];
            clash = (k < i && o->tls.ca_out && strcmp(out, o->tls.ca_out) == 0) ||
                    (o->tls.ca_key && strcmp(out, o->tls.ca_key) == 0) ||
                    (k != i && o->tls.ca_cert && strcmp(out, o->tls.ca_cert) == 0);
        }
        if (clash)
            sl_cfg_error(ctx, tls_node(ctx, node, "ca_out"),
                         "identities[%zu].tls.ca_out: \"%s\" is already the certificate or key "
                         "file of another CA (or its own key); give each CA its own file",
                         i, out);
    }
}

static unsigned load_into(sl_config_t *cfg, const char *text, size_t n, const char *name,
                          sl_buf_t *err)
{
    sl_cfg_ctx_t ctx = {.name = name, .err = err};
    if (!prescan(&ctx, text, n))
        return ctx.n_errors;
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) {
        sl_cfg_error_at(&ctx, NULL, "cannot start the YAML parser (out of memory)");
        return ctx.n_errors;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, n);
    if (!yaml_parser_load(&p, &doc)) {
        syntax_error(&ctx, &p, text, n);
        goto out_parser;
    }
    ctx.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    /* An empty file is all defaults. */
    if (root != NULL && !sl_cfg_is_null(root) && root->type != YAML_MAPPING_NODE)
        sl_cfg_error(&ctx, root,
                     "the top level must be a mapping of keys (listen:, policy:, ...); "
                     "see docs/configuration.md");
    else
        sl_cfg_parse_table(&ctx, root, &root_table, (char *)cfg);
    if (ctx.n_errors == 0)
        check_references(&ctx, root, cfg);
    if (ctx.n_errors == 0)
        check_tls_cas(&ctx, root, cfg);
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&p);
    return ctx.n_errors;
}

static sl_config_t *new_default(void)
{
    sl_config_t *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL) {
        fputs("sluice: out of memory loading the config\n", stderr);
        abort();
    }
    sl_buf_t err = {0};
    if (load_into(cfg, sl_config_default_yaml, strlen(sl_config_default_yaml), "<built-in default>",
                  &err) != 0) {
        /* A broken built-in default is a build defect; the unit tests catch it. */
        fprintf(stderr, "sluice: built-in default config is invalid:\n%s", sl_buf_cstr(&err));
        abort();
    }
    sl_buf_free(&err);
    return cfg;
}

sl_config_t *sl_config_default(void)
{
    return new_default();
}

sl_config_t *sl_config_load_string(const char *yaml, size_t n, const char *name, sl_buf_t *err)
{
    sl_config_t *cfg = new_default();
    if (load_into(cfg, yaml, n, name, err) != 0) {
        sl_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static bool read_all(FILE *f, sl_buf_t *out, const char *name, sl_buf_t *err)
{
    char chunk[16384];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (out->n + got > SL_CONFIG_MAX_FILE) {
            sl_buf_appendf(err, "%s: larger than %u MiB; is this really a config file?\n", name,
                           SL_CONFIG_MAX_FILE / (1024 * 1024));
            return false;
        }
        sl_buf_append(out, chunk, got);
    }
    if (ferror(f)) {
        sl_buf_appendf(err, "%s: cannot read: %s; check the path and permissions\n", name,
                       strerror(errno));
        return false;
    }
    return true;
}

sl_config_t *sl_config_load_file(const char *path, sl_buf_t *err)
{
    bool is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "<stdin>" : path;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (f == NULL) {
        sl_buf_appendf(err, "%s: cannot open: %s; check the path and permissions\n", path,
                       strerror(errno));
        return NULL;
    }
    sl_buf_t text = {0};
    bool ok = read_all(f, &text, name, err);
    if (!is_stdin)
        fclose(f);
    sl_config_t *cfg = NULL;
    if (ok)
        cfg = sl_config_load_string(text.p ? text.p : "", text.n, name, err);
    sl_buf_free(&text);
    if (cfg != NULL)
        cfg->path = sl_cfg_strdup(sl_view(path, strlen(path)));
    return cfg;
}

void sl_config_summary(const sl_config_t *cfg, sl_buf_t *out)
{
    char key[SL_CFG_HOST_MAX + 16];
    sl_buf_appendf(out, "%zu listener%s (", cfg->n_listen, cfg->n_listen == 1 ? "" : "s");
    for (size_t i = 0; i < cfg->n_listen; i++)
        sl_buf_appendf(out, "%s%s", i ? ", " : "", listen_key(&cfg->listen[i], key, sizeof key));
    sl_buf_appendf(out, "), %zu route%s, %zu allow, %zu deny, private addresses %s, workers ",
                   cfg->n_routes, cfg->n_routes == 1 ? "" : "s", cfg->policy.n_allow,
                   cfg->policy.n_deny, cfg->policy.allow_private ? "allowed" : "refused");
    if (cfg->workers == 0)
        sl_buf_append_str(out, "auto");
    else
        sl_buf_appendf(out, "%u", cfg->workers);
}

void sl_config_free(sl_config_t *cfg)
{
    if (cfg == NULL)
        return;
    sl_cfg_release_table(&root_table, (char *)cfg);
    free(cfg->path);
    free(cfg);
}
