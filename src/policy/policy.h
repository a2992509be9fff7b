/* Policy snapshots: an immutable, refcounted view of the config that every
 * request is decided against. A reload builds a new snapshot and swaps it in;
 * requests in flight keep the one they started with. */
#ifndef SLUICE_POLICY_POLICY_H
#define SLUICE_POLICY_POLICY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "net/ipaddr.h"
#include "policy/hostglob.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct sl_secret_store sl_secret_store_t;
struct sl_certcache;
struct sl_idca_set;

/* Runtime changes made through the admin API, applied on top of the config
 * every time a snapshot is built (so they survive reloads). */
typedef struct sl_overlay_entry {
    char *identity; /* identity name ("default" for unknown clients) */
    char **allow;   /* extra allow patterns */
    size_t n_allow;
    char **deny; /* extra deny patterns */
    size_t n_deny;
    char *policy; /* policy name replacing the configured one, or NULL */
    bool killed;  /* all egress of this identity refused */
} sl_overlay_entry_t;

typedef struct sl_overlay {
    bool killed; /* global kill switch */
    sl_overlay_entry_t *entries;
    size_t n_entries;
} sl_overlay_t;

/* A compiled policy as one identity sees it (config policy + overlay). */
typedef struct sl_ruleset {
    const sl_policy_cfg_t *cfg; /* the named policy */
    const char *policy_name;
    sl_hostset_t *allow;    /* NULL when empty (all allowed) */
    sl_hostset_t *deny;     /* NULL when empty */
    sl_hostset_t *approval; /* hosts whose writes wait for approval, or NULL */
    bool killed;            /* kill switch for this identity */
} sl_ruleset_t;

/* An identity as the snapshot knows it. */
typedef struct sl_identity {
    const char *name;             /* "default" for clients matching no identity */
    const sl_identity_cfg_t *cfg; /* NULL for "default" */
    sl_ruleset_t rules;
    sl_cidr_t *sources;
    size_t n_sources;
    int *listeners; /* indexes into cfg->listen */
    size_t n_listeners;
    char *auth; /* expected base64("user:password"), or NULL */
    /* Leaves of the identity's own CA (owned by the snapshot's idca set),
     * or NULL: the instance CA signs for it. */
    struct sl_certcache *certs;
} sl_identity_t;

typedef struct sl_policy {
    atomic_long refs;    /* owners: workers and in-flight exchanges */
    uint64_t generation; /* increases with every reload */
    sl_config_t *cfg;    /* owned */
    sl_identity_t *ids;  /* cfg->identities in order, then "default" */
    size_t n_ids;
    bool killed;                /* global kill switch */
    bool any_auth;              /* some identity uses proxy_auth */
    sl_hostset_t *routes;       /* route host patterns, index = cfg->routes index */
    sl_secret_store_t *secrets; /* credentials to inject (NULL when none are configured) */
    sl_hostset_t *passthrough;  /* tls.passthrough: tunnelled without interception */
    SSL_CTX *tls_client;        /* upstream TLS: system store + tls.upstream_ca_file */
    SSL_CTX **route_tls;        /* per route: the same plus the route's ca_file (or NULL) */
    sl_ip_t *self;              /* the gateway's own listening addresses */
    uint16_t *self_ports;
    size_t n_self;
    struct sl_idca_set *idca; /* identities' own CAs (one reference), or NULL */
} sl_policy_t;

/* A decision with the rule that made it. */
typedef struct sl_verdict {
    bool blocked;
    const char *rule;    /* static rule id, e.g. "policy.deny", NULL if allowed */
    const char *scanner; /* static: "policy", "ssrf", "url" */
    char reason[256];    /* human-readable, never contains secret values */
} sl_verdict_t;

/* What the target check found out about a request's destination. */
typedef struct sl_target {
    char host[256]; /* normalised host name or IP text */
    uint16_t port;
    bool is_literal;             /* host is an IP literal (any spelling) */
    sl_ip_t literal;             /* valid when is_literal */
    const sl_route_cfg_t *route; /* operator route, or NULL */
} sl_target_t;

/* Build a snapshot that takes ownership of `cfg`, applying `overlay` (may be
 * NULL). Returns NULL with a message in `err` if the config cannot be
 * compiled (cfg is then freed). */
sl_policy_t *sl_policy_new(sl_config_t *cfg, const sl_overlay_t *overlay, uint64_t generation,
                           sl_buf_t *err);

/* The identity of a request: which listener it came in on (index into
 * cfg->listen), the client address, and its Proxy-Authorization value (empty
 * view if none). Credentials, when present, must be valid. Returns NULL when
 * the request must be refused, with the reason in *why. */
const sl_identity_t *sl_policy_identify(const sl_policy_t *p, int listener, const sl_ip_t *client,
                                        sl_view_t proxy_auth, const char **why);

/* Give the identities that have one (identities[].tls) their own CA and
 * leaf cache, reusing those of `prev` (the snapshot this one replaces, or
 * NULL) whose CA did not change: an ephemeral CA stays as long as an
 * identity of that name keeps `ca: ephemeral`; a CA from files is read
 * again and kept if the certificate is the same. Writes each ca_out.
 * Call once, before the snapshot is published; `leaf_lifetime` in seconds.
 * Returns 0, or -1 with the identity, file and fix in `err` (the snapshot
 * must then not be used). */
int sl_policy_attach_cas(sl_policy_t *p, const sl_policy_t *prev, long leaf_lifetime,
                         sl_buf_t *err);

/* The leaf cache for a tunnel opened by the identity called `name`: its
 * own CA's, or `instance` (the instance CA's) when it has none. NULL when
 * no identity of that name is in the snapshot any more (refuse the
 * tunnel). */
struct sl_certcache *sl_policy_tunnel_certs(const sl_policy_t *p, const char *name,
                                            struct sl_certcache *instance);

/* Load every CA in `cfg` that comes from files (tls.ca_cert/ca_key and
 * identities[].tls), with all the checks `sluice run` applies (key file
 * mode, key matches certificate, is a CA, within validity), and discard
 * them: `sluice check` runs this. Returns the number of CAs refused, with
 * one message each in `err`. */
size_t sl_policy_check_cas(const sl_config_t *cfg, sl_buf_t *err);

/* The identity called `name` in this snapshot, or NULL. */
const sl_identity_t *sl_policy_identity_named(const sl_policy_t *p, const char *name);

/* Method, path and port rules of the identity's policy for one request to
 * an allowed host. */
void sl_policy_check_request(const sl_identity_t *id, sl_view_t method, const char *host,
                             uint16_t port, sl_view_t path, sl_verdict_t *v);

/* Does this request need an operator's approval before it is sent? */
bool sl_policy_needs_approval(const sl_identity_t *id, sl_view_t method, const char *host);
sl_policy_t *sl_policy_ref(sl_policy_t *p);
void sl_policy_unref(sl_policy_t *p);

/* Decide on a destination before any DNS lookup: host syntax, IP literal
 * spellings, deny and allow lists, routes, SSRF ranges for literals. Fills
 * `t` (even when blocked, as far as it got). */
void sl_policy_check_target(const sl_policy_t *p, const sl_identity_t *id, sl_view_t host,
                            uint16_t port, sl_target_t *t, sl_verdict_t *v);

/* Is this (normalised) host on the TLS passthrough list? */
bool sl_policy_passthrough(const sl_policy_t *p, const char *host);

/* The client SSL_CTX for an upstream TLS connection to target `t`. */
SSL_CTX *sl_policy_upstream_tls(const sl_policy_t *p, const sl_target_t *t);

/* Decide on one address a name resolved to (or a route's address). Routed
 * targets may be private; DNS answers may not (unless allow_private). The
 * gateway's own listeners are never a valid destination. */
void sl_policy_check_address(const sl_policy_t *p, const sl_identity_t *id, const sl_target_t *t,
                             const sl_ip_t *ip, uint16_t port, sl_verdict_t *v);

#endif
