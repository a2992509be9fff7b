/* Typed configuration, loaded from YAML and strictly validated.
 *
 * A config is immutable once loaded: a reload builds a new one, validates it
 * as a whole and only then replaces the old one, so a bad file never leaves
 * the gateway half-configured. Every error names file:line:col, what is wrong
 * and what to do about it. */
#ifndef SLUICE_CONFIG_CONFIG_H
#define SLUICE_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/log.h"

/* One address the gateway accepts agent connections on. */
typedef struct sl_listen_cfg {
    char *host;    /* numeric IPv4 or IPv6 address, no brackets ("127.0.0.1", "::1") */
    uint16_t port; /* 1..65535 */
} sl_listen_cfg_t;

/* An operator route: requests for hosts matching `host` connect to `to_host`
 * (which may be a private address: the operator said so). */
typedef struct sl_route_cfg {
    char *host;       /* host glob, lowercased (see policy/hostglob.h) */
    char *to_host;    /* numeric address or DNS name */
    uint16_t to_port; /* 0 = keep the request's port */
    char *ca_file;    /* extra PEM bundle trusted for this route's upstream TLS, or NULL */
} sl_route_cfg_t;

/* Per-host rule inside a policy: a request to a matching host must fit at
 * least one of the rules that match its host. */
typedef struct sl_host_rule_cfg {
    char *host;        /* host glob */
    char **methods;    /* uppercase tokens; none = any method */
    size_t n_methods;
    char **paths;      /* "/prefix/" or a glob with '*'; none = any path */
    size_t n_paths;
    char **ports;      /* decimal port texts; none = any port */
    size_t n_ports;
} sl_host_rule_cfg_t;

/* A policy: where an identity may go. */
typedef struct sl_policy_cfg {
    char *name; /* "default" for the top-level `policy:` */
    char **allow; /* host globs/IPs/CIDRs; none = every host allowed */
    size_t n_allow;
    char **deny; /* host globs/IPs/CIDRs; deny wins over allow */
    size_t n_deny;
    bool allow_private; /* let DNS answers reach private ranges (default false) */
    sl_host_rule_cfg_t *rules;
    size_t n_rules;
    struct {
        char **hosts;   /* writes to these hosts wait for an operator */
        size_t n_hosts;
        char **methods; /* which methods are writes (default POST PUT PATCH DELETE) */
        size_t n_methods;
        uint64_t timeout; /* ms until a held request is refused (default 60 s) */
    } approval;
    struct {
        uint64_t requests;  /* per identity per window; 0 = unlimited */
        uint64_t per_host;  /* per identity and destination host per window; 0 = unlimited */
        uint64_t window;    /* ms (default 60 s) */
    } rate_limit;
    struct {
        char **servers;   /* host globs of approved MCP servers (docs/inspection.md) */
        size_t n_servers;
        int shadow;       /* SL_MCP_SHADOW_*: MCP traffic to any other host */
        size_t max_body;  /* JSON request bodies buffered whole up to this (0 = 1 MiB) */
    } mcp;
} sl_policy_cfg_t;

/* What happens to MCP traffic sent to a host not in mcp.servers. */
#define SL_MCP_SHADOW_AUTO 0  /* BLOCK when mcp.servers is set, else WARN */
#define SL_MCP_SHADOW_BLOCK 1 /* refused (rule "mcp-shadow") */
#define SL_MCP_SHADOW_WARN 2  /* forwarded, "mcp-shadow" noted in the audit event */
#define SL_MCP_SHADOW_OFF 3   /* not checked */

/* One inspection suppression: findings of `rule` for requests to `hosts`
 * are neither refused nor warned, only audited as suppressed. */
typedef struct sl_suppress_cfg {
    char *rule;    /* rule id (must name a loaded rule: checked when the rules load) */
    char **hosts;  /* host globs; none = every host */
    size_t n_hosts;
    char *reason;  /* why (mandatory, non-empty): for the reader of the config */
} sl_suppress_cfg_t;

/* Who a request belongs to, and how that is recognised. Every condition
 * given must hold; identities are tried in order, the first match wins. */
typedef struct sl_identity_cfg {
    char *name;       /* unique; appears in audit events */
    char *tenant;     /* metadata, optional */
    char *agent;      /* metadata, optional */
    char **labels;    /* "key=value" metadata */
    size_t n_labels;
    char *policy;     /* policy name (default "default") */
    char **listen;    /* arrived on one of these listen addresses ("127.0.0.1:8891") */
    size_t n_listen;
    char **sources;   /* client address in one of these CIDRs */
    size_t n_sources;
    char *auth_user;  /* Proxy-Authorization Basic user ... */
    char *auth_password_env; /* ... whose password is in this environment variable */
    struct {                 /* the identity's own interception CA (docs/tls.md) */
        char *ca;            /* "ephemeral", or NULL */
        char *ca_cert;       /* PEM CA certificate to load, or NULL */
        char *ca_key;        /* its key (mode 0600 or stricter) */
        char *ca_out;        /* where its certificate is written for the sandbox, or NULL */
    } tls;                   /* all NULL: the identity uses the instance CA */
} sl_identity_cfg_t;

typedef struct sl_config {
    char *path; /* file it came from; NULL for the built-in default */

    sl_listen_cfg_t *listen; /* at least one */
    size_t n_listen;
    unsigned workers; /* event loops; 0 = one per CPU core */

    sl_log_level_t log_level;
    char *audit_path; /* "-" = stdout, "off" = none, else a file appended to */
    bool watch;       /* reload when the config file changes (default true) */

    struct {
        size_t max_head_bytes;  /* request or response head, default 32 KiB */
        size_t max_headers;     /* header fields per head, default 100 */
        size_t max_connections; /* concurrent client connections, default 10000 */
        size_t max_ws_message;  /* WebSocket message held for inspection, default 1 MiB */
    } limits;

    struct {                    /* all in milliseconds */
        uint64_t header_read;   /* client must send a whole head, default 10 s */
        uint64_t idle;          /* client keep-alive idle, default 60 s */
        uint64_t connect;       /* upstream DNS + TCP connect, default 10 s */
        uint64_t response_head; /* upstream's response head after request, default 60 s */
        uint64_t io_idle;       /* no bytes either way in a body or tunnel, default 300 s */
        uint64_t upstream_idle; /* pooled upstream connection kept, default 30 s */
        uint64_t drain;         /* SIGTERM grace for in-flight requests, default 30 s */
    } timeouts;

    sl_policy_cfg_t policy; /* the policy named "default" */

    sl_policy_cfg_t *policies; /* further named policies (`policies:`) */
    size_t n_policies;

    sl_identity_cfg_t *identities; /* in matching order */
    size_t n_identities;
    bool refuse_unknown; /* clients matching no identity are refused (407) */

    sl_route_cfg_t *routes;
    size_t n_routes;

    struct {
        bool intercept;          /* decrypt CONNECT tunnels that carry TLS (default true) */
        char *ca_cert;           /* PEM CA certificate to load; NULL = ephemeral CA per start */
        char *ca_key;            /* its private key (file mode 0600 or stricter) */
        char *ca_out;            /* where to write the CA certificate for sandboxes, or NULL */
        char **passthrough;      /* host globs tunnelled without interception */
        size_t n_passthrough;
        char *upstream_ca_file;  /* PEM bundle trusted for upstreams besides the system store */
        uint64_t leaf_lifetime;  /* minted leaf validity in ms (default 24 h) */
    } tls;

    /* The admin API (docs/admin.md). Absent from the file = no admin API. */
    struct {
        char *listen;      /* "127.0.0.1:8889", "[::1]:8889" or "unix:/path"; NULL = no admin API */
        bool allow_remote; /* a non-loopback TCP address is allowed (default false) */
        char *token_env;   /* environment variable holding the bearer token, or NULL */
        char *token_file;  /* file holding it (mode 0600 or stricter), or NULL */
    } admin;
    struct {
        bool enabled;       /* scan traffic with the detection rules (default true) */
        bool responses;     /* scan response bodies for prompt injection (default true) */
        char **rules;       /* extra rule files or directories */
        size_t n_rules;
        char **disable;     /* rule ids switched off */
        size_t n_disable;
        char **warn;        /* rule ids downgraded to warn (audited, not refused) */
        size_t n_warn;
        char **redact;      /* rule ids set to redact (responses: span replaced; outbound: block) */
        size_t n_redact;
        int response_action; /* sl_action_t taken on responses for rules whose action is block:
                                SL_ACT_BLOCK (default), SL_ACT_REDACT or SL_ACT_WARN */
        sl_suppress_cfg_t *suppress; /* per-rule, per-host exceptions */
        size_t n_suppress;
        uint64_t decode_limit; /* decoded bytes of one content-coded body (default 64 MiB) */
        uint32_t decode_ratio; /* decoded per compressed byte past 1 MiB; 0 = unchecked
                                  (default 1000) */
        int undecodable;       /* SL_UNDECODABLE_*: a body that cannot be decoded */
        char **undecodable_pass; /* host globs whose undecodable bodies pass unscanned */
        size_t n_undecodable_pass;
        struct {
            bool enabled;          /* join fragments across requests (default true) */
            uint64_t window;       /* ms a fragment is remembered (default 60 s) */
            uint64_t max_bytes;    /* fragment bytes kept per identity (default 4 KiB) */
            uint64_t max_entries;  /* fragments kept per identity (default 64) */
            uint64_t max_identities; /* identities tracked, LRU (default 4096) */
        } history;                 /* secrets split across requests (docs/inspection.md) */
    } inspect;

    struct sl_secret_cfg *secrets; /* credentials injected on the way out (docs/credentials.md) */
    size_t n_secrets;
} sl_config_t;

/* What happens to a body that cannot be decoded for inspection (unknown or
 * corrupt content coding, over decode_limit or decode_ratio). */
#define SL_UNDECODABLE_REFUSE 0 /* refused, rule inspection-limit (default) */
#define SL_UNDECODABLE_PASS 1   /* delivered; scanned as sent, audited as inspection-limit */

/* Where a secret's placeholder is replaced (bits of sl_secret_cfg_t.replace_in). */
#define SL_SECRET_IN_HEADERS 1u /* header values, Basic credentials included */
#define SL_SECRET_IN_QUERY 2u   /* the query string */
#define SL_SECRET_IN_PATH 4u    /* the path */
#define SL_SECRET_IN_BODY 8u    /* the request body (identity-encoded only) */

/* One `secrets:` entry: how to load a credential and where it may go. The
 * value itself is never in the config; src/secrets/store.c reads the source.
 * Config validation is structural (checkable without the sources); the
 * checks that need the value happen when the store loads it. */
typedef struct sl_secret_cfg {
    char *name;        /* [a-z0-9_-]{1,64}, unique; used in audit events and errors */
    char *env;         /* source: environment variable name, or NULL */
    char *file;        /* source: file path (one trailing newline stripped), or NULL */
    char *placeholder; /* what the sandbox holds; always set after load (generated from
                          the name when absent: sl_config_secret_placeholder) */
    char **hosts;      /* host globs where the value may be sent; at least one */
    size_t n_hosts;
    char **methods; /* method tokens, stored upper-cased; none = any method */
    size_t n_methods;
    char **paths; /* "/prefix" or a glob with '*' (fnmatch, as in policy rules); none = any */
    size_t n_paths;
    char **identities; /* identity names allowed to use it; none = every identity */
    size_t n_identities;
    unsigned replace_in;   /* SL_SECRET_IN_* bits; default SL_SECRET_IN_HEADERS */
    char *inject_header;   /* header added when the request lacks it, or NULL */
    char *inject_template; /* its value, with exactly one "{secret}" (default "{secret}") */
    bool require;          /* refuse in-scope requests that do not use the secret */
} sl_secret_cfg_t;

/* Longest placeholder text, and the generated placeholder for a secret name:
 * "sluice-ph-<name>-<16 hex digits>" (FNV-1a 64 of the name), deterministic so
 * the sandbox's environment stays valid across restarts. `out` must hold
 * SL_SECRET_PLACEHOLDER_MAX + 1 bytes. */
#define SL_SECRET_PLACEHOLDER_MAX 256
void sl_config_secret_placeholder(const char *name, char *out);

/* Load and validate a YAML file. On failure returns NULL and appends one line
 * per problem to `err` ("FILE:LINE:COL: what is wrong; what to do").
 * Keys the file leaves out take the values of sl_config_default_yaml.
 * `path` "-" reads stdin (named "<stdin>" in errors; cfg->path is then "-",
 * which a file watcher must skip). Files over 4 MiB are refused. */
sl_config_t *sl_config_load_file(const char *path, sl_buf_t *err);

/* Same for YAML text in memory; `name` stands in for the file name in errors. */
sl_config_t *sl_config_load_string(const char *yaml, size_t n, const char *name, sl_buf_t *err);

/* The built-in default policy used by `sluice run` with no -c. Never NULL. */
sl_config_t *sl_config_default(void);

/* The YAML text of the built-in default (documented in the README). */
extern const char sl_config_default_yaml[];

/* Append a one-line human summary (listeners, routes, allow/deny counts,
 * private-address policy, workers) to `out`, e.g. for `sluice check` and the
 * "config loaded" log line. */
void sl_config_summary(const sl_config_t *cfg, sl_buf_t *out);

/* Free a config and everything it owns; NULL is a no-op. */
void sl_config_free(sl_config_t *cfg);

#endif
