#include "policy/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fnmatch.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "http/url.h"
#include "secrets/store.h"
#include "tls/idca.h"

static void verdict_block(sl_verdict_t *v, const char *scanner, const char *rule, const char *fmt,
                          ...) __attribute__((format(printf, 4, 5)));

static void verdict_block(sl_verdict_t *v, const char *scanner, const char *rule, const char *fmt,
                          ...)
{
    v->blocked = true;
    v->scanner = scanner;
    v->rule = rule;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
}

/* An SSL_CTX for connections to upstreams: TLS 1.2+, peer verification
 * against the system store plus the operator's bundles, ALPN http/1.1. */
static SSL_CTX *client_ctx(const char *bundle, const char *route_bundle, sl_buf_t *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_default_verify_paths(ctx);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    const char *files[2] = {bundle, route_bundle};
    for (int i = 0; i < 2; i++) {
        if (files[i] && SSL_CTX_load_verify_locations(ctx, files[i], NULL) != 1) {
            sl_buf_appendf(err,
                           "cannot load the CA bundle %s (tls.upstream_ca_file or a route's "
                           "ca_file): not a readable PEM file\n",
                           files[i]);
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

bool sl_policy_passthrough(const sl_policy_t *p, const char *host)
{
    return p->passthrough &&
           sl_hostset_match(p->passthrough, sl_view(host, strlen(host)), NULL) >= 0;
}

SSL_CTX *sl_policy_upstream_tls(const sl_policy_t *p, const sl_target_t *t)
{
    if (t->route && p->route_tls) {
        SSL_CTX *c = p->route_tls[t->route - p->cfg->routes];
        if (c)
            return c;
    }
    return p->tls_client;
}

/* Concatenate two pattern lists into a new hostset (NULL when both empty). */
static int hostset_of(char **a, size_t na, char **b, size_t nb, sl_hostset_t **out)
{
    *out = NULL;
    if (na + nb == 0)
        return 0;
    char **all = calloc(na + nb, sizeof *all);
    if (all == NULL)
        return -1;
    memcpy(all, a, na * sizeof *all);
    if (nb)
        memcpy(all + na, b, nb * sizeof *all);
    *out = sl_hostset_new(all, na + nb);
    free(all);
    return *out ? 0 : -1;
}

static const sl_overlay_entry_t *overlay_for(const sl_overlay_t *o, const char *identity)
{
    for (size_t i = 0; o && i < o->n_entries; i++)
        if (strcmp(o->entries[i].identity, identity) == 0)
            return &o->entries[i];
    return NULL;
}

static const sl_policy_cfg_t *policy_named(const sl_config_t *cfg, const char *name)
{
    if (name == NULL || strcmp(name, "default") == 0)
        return &cfg->policy;
    for (size_t i = 0; i < cfg->n_policies; i++)
        if (strcmp(cfg->policies[i].name, name) == 0)
            return &cfg->policies[i];
    return NULL;
}

/* Compile what one identity may do. */
static int ruleset_build(sl_ruleset_t *r, const sl_config_t *cfg, const char *identity,
                         const char *policy, const sl_overlay_t *o, sl_buf_t *err)
{
    const sl_overlay_entry_t *e = overlay_for(o, identity);
    if (e && e->policy)
        policy = e->policy;
    r->cfg = policy_named(cfg, policy);
    if (r->cfg == NULL) {
        sl_buf_appendf(err, "identity %s: no policy named \"%s\"\n", identity, policy);
        return -1;
    }
    r->policy_name = policy ? policy : "default";
    r->killed = e && e->killed;
    if (hostset_of(r->cfg->allow, r->cfg->n_allow, e ? e->allow : NULL, e ? e->n_allow : 0,
                   &r->allow) != 0 ||
        hostset_of(r->cfg->deny, r->cfg->n_deny, e ? e->deny : NULL, e ? e->n_deny : 0, &r->deny) !=
            0 ||
        hostset_of(r->cfg->approval.hosts, r->cfg->approval.n_hosts, NULL, 0, &r->approval) != 0) {
        sl_buf_appendf(err, "identity %s: cannot compile the host lists of policy %s\n", identity,
                       r->policy_name);
        return -1;
    }
    return 0;
}

static void ruleset_free(sl_ruleset_t *r)
{
    sl_hostset_free(r->allow);
    sl_hostset_free(r->deny);
    sl_hostset_free(r->approval);
}

/* Compile identity i (or the default one when icfg is NULL). */
static int identity_build(sl_identity_t *id, const sl_config_t *cfg, const sl_identity_cfg_t *icfg,
                          const sl_overlay_t *o, sl_buf_t *err)
{
    id->cfg = icfg;
    id->name = icfg ? icfg->name : "default";
    if (ruleset_build(&id->rules, cfg, id->name, icfg ? icfg->policy : NULL, o, err) != 0)
        return -1;
    if (icfg == NULL)
        return 0;
    if (icfg->n_sources) {
        id->sources = calloc(icfg->n_sources, sizeof *id->sources);
        for (size_t i = 0; id->sources && i < icfg->n_sources; i++)
            if (sl_cidr_parse(icfg->sources[i], &id->sources[id->n_sources]) == 0)
                id->n_sources++;
    }
    if (icfg->n_listen) {
        id->listeners = calloc(icfg->n_listen, sizeof *id->listeners);
        for (size_t i = 0; id->listeners && i < icfg->n_listen; i++)
            for (size_t k = 0; k < cfg->n_listen; k++) {
                char text[300];
                const sl_listen_cfg_t *l = &cfg->listen[k];
                snprintf(text, sizeof text, strchr(l->host, ':') ? "[%s]:%u" : "%s:%u", l->host,
                         l->port);
                if (strcmp(text, icfg->listen[i]) == 0)
                    id->listeners[id->n_listeners++] = (int)k;
            }
    }
    if (icfg->auth_user) {
        const char *pw = getenv(icfg->auth_password_env);
        if (pw == NULL || *pw == '\0') {
            sl_buf_appendf(err,
                           "identity %s: proxy_auth.password_env: environment variable %s is not "
                           "set (or empty); export it before starting sluice\n",
                           id->name, icfg->auth_password_env);
            return -1;
        }
        size_t n = strlen(icfg->auth_user) + 1 + strlen(pw) + 1;
        id->auth = malloc(n);
        if (id->auth == NULL)
            return -1;
        snprintf(id->auth, n, "%s:%s", icfg->auth_user, pw);
    }
    return 0;
}

static void identity_free(sl_identity_t *id)
{
    ruleset_free(&id->rules);
    free(id->sources);
    free(id->listeners);
    if (id->auth) {
        OPENSSL_cleanse(id->auth, strlen(id->auth));
        free(id->auth);
    }
}

sl_policy_t *sl_policy_new(sl_config_t *cfg, const sl_overlay_t *overlay, uint64_t generation,
                           sl_buf_t *err)
{
    sl_policy_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        goto fail;
    atomic_init(&p->refs, 1);
    p->generation = generation;
    p->cfg = cfg;
    p->killed = overlay && overlay->killed;
    p->ids = calloc(cfg->n_identities + 1, sizeof *p->ids);
    if (p->ids == NULL)
        goto fail_set;
    for (size_t i = 0; i <= cfg->n_identities; i++) {
        const sl_identity_cfg_t *icfg = i < cfg->n_identities ? &cfg->identities[i] : NULL;
        p->n_ids++;
        if (identity_build(&p->ids[i], cfg, icfg, overlay, err) != 0)
            goto fail_tls;
        p->any_auth |= p->ids[i].auth != NULL;
    }
    if (cfg->n_secrets &&
        (p->secrets = sl_secret_store_new(cfg->secrets, cfg->n_secrets, err)) == NULL)
        goto fail_tls;
    if (cfg->n_routes) {
        char **pats = calloc(cfg->n_routes, sizeof *pats);
        if (pats == NULL)
            goto fail_set;
        for (size_t i = 0; i < cfg->n_routes; i++)
            pats[i] = cfg->routes[i].host;
        p->routes = sl_hostset_new(pats, cfg->n_routes);
        free(pats);
        if (p->routes == NULL)
            goto fail_set;
    }
    if (cfg->tls.n_passthrough &&
        !(p->passthrough = sl_hostset_new(cfg->tls.passthrough, cfg->tls.n_passthrough)))
        goto fail_set;
    if ((p->tls_client = client_ctx(cfg->tls.upstream_ca_file, NULL, err)) == NULL)
        goto fail_tls;
    if (cfg->n_routes && (p->route_tls = calloc(cfg->n_routes, sizeof *p->route_tls)) == NULL)
        goto fail_set;
    for (size_t i = 0; i < cfg->n_routes; i++)
        if (cfg->routes[i].ca_file &&
            !(p->route_tls[i] = client_ctx(cfg->tls.upstream_ca_file, cfg->routes[i].ca_file, err)))
            goto fail_tls;
    p->self = calloc(cfg->n_listen, sizeof *p->self);
    p->self_ports = calloc(cfg->n_listen, sizeof *p->self_ports);
    if (p->self == NULL || p->self_ports == NULL)
        goto fail_set;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const char *h = cfg->listen[i].host;
        if (sl_ip_parse_literal(h, strlen(h), &p->self[p->n_self]) == 1)
            p->self_ports[p->n_self++] = cfg->listen[i].port;
    }
    return p;

fail_set:
    sl_buf_appendf(err, "cannot compile the host lists of the policy\n");
fail_tls:
    p->cfg = NULL;
    sl_policy_unref(p);
    sl_config_free(cfg);
    return NULL;
fail:
    sl_config_free(cfg);
    return NULL;
}

sl_policy_t *sl_policy_ref(sl_policy_t *p)
{
    atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
    return p;
}

void sl_policy_unref(sl_policy_t *p)
{
    if (p == NULL || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < p->n_ids; i++)
        identity_free(&p->ids[i]);
    free(p->ids);
    if (p->secrets)
        sl_secret_store_unref(p->secrets);
    sl_hostset_free(p->routes);
    sl_hostset_free(p->passthrough);
    SSL_CTX_free(p->tls_client);
    if (p->route_tls && p->cfg)
        for (size_t i = 0; i < p->cfg->n_routes; i++)
            SSL_CTX_free(p->route_tls[i]);
    free(p->route_tls);
    free(p->self);
    free(p->self_ports);
    sl_idca_unref(p->idca);
    if (p->cfg)
        sl_config_free(p->cfg);
    free(p);
}

/* Does `n` bytes of host-name text look like encoded data: all hex, or high
 * in entropy with digits, or very long? */
static bool encoded_run(const char *p, size_t n, size_t what_labels, char *why, size_t cap)
{
    unsigned counts[256] = {0}, digits = 0;
    bool hex = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        counts[ch]++;
        digits += ch >= '0' && ch <= '9';
        hex &= sl_hexval(ch) >= 0;
    }
    double h = 0;
    for (int k = 0; k < 256; k++)
        if (counts[k]) {
            double f = (double)counts[k] / (double)n;
            h -= f * log2(f);
        }
    if (!(hex || (h >= 3.6 && digits >= 2) || n >= 50))
        return false;
    if (what_labels > 1)
        snprintf(why, cap,
                 "%zu consecutive labels of the host name (%zu characters) look like encoded "
                 "data split into labels (entropy %.1f bits/char%s)",
                 what_labels, n, h, hex ? ", hex" : "");
    else
        snprintf(why, cap,
                 "a %zu-character run in the host name looks like encoded data "
                 "(entropy %.1f bits/char%s)",
                 n, h, hex ? ", hex" : "");
    return true;
}

/* A label that could be a piece of encoded data: dash-free, 6+ letters and
 * digits with at least one digit (hex and base32 chunks; words are not). */
static bool chunk_label(const char *p, size_t n)
{
    if (n < 6 || n > 63)
        return false;
    bool digit = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            return false;
        digit |= ch >= '0' && ch <= '9';
    }
    return digit;
}

/* Does a host name carry data in its labels? Encoded or random runs (hex,
 * base32, base64) are long, dash-free, digit-bearing and high in entropy;
 * names people choose are words joined by dashes. Judged per dash-free run
 * of a label, and over consecutive chunk-like labels joined (data split into
 * short labels: "a1b2c3d4.e5f6a7b8.c9d0e1f2..."). */
static bool encoded_label(const char *host, char *why, size_t cap)
{
    const char *p = host;
    while (*p) {
        size_t n = strcspn(p, ".-");
        if (n >= 24 && encoded_run(p, n, 1, why, cap))
            return true;
        p += n;
        if (*p)
            p++;
    }
    char joined[256];
    size_t jn = 0, labels = 0;
    for (p = host;; p++) {
        size_t n = strcspn(p, ".");
        if (chunk_label(p, n) && jn + n <= sizeof joined) {
            memcpy(joined + jn, p, n);
            jn += n;
            labels++;
        } else {
            if (labels > 1 && jn >= 24 && encoded_run(joined, jn, labels, why, cap))
                return true;
            jn = labels = 0;
        }
        p += n;
        if (*p == '\0')
            break;
    }
    return labels > 1 && jn >= 24 && encoded_run(joined, jn, labels, why, cap);
}

void sl_policy_check_target(const sl_policy_t *p, const sl_identity_t *id, sl_view_t host,
                            uint16_t port, sl_target_t *t, sl_verdict_t *v)
{
    const sl_ruleset_t *rs = &id->rules;
    memset(v, 0, sizeof *v);
    memset(t, 0, sizeof *t);
    t->port = port;
    int n = sl_host_normalize(host, t->host, sizeof t->host);
    if (n < 0) {
        verdict_block(v, "url", "url.invalid-host", "the target host is not a valid host name");
        return;
    }
    sl_view_t h = sl_view(t->host, (size_t)n);
    int lit = sl_ip_parse_literal(t->host, (size_t)n, &t->literal);
    if (lit < 0) {
        verdict_block(v, "ssrf", "ssrf.ambiguous-address",
                      "the host looks like an IP address but is not a valid one; refused "
                      "rather than guessing how a resolver would read it");
        return;
    }
    t->is_literal = lit == 1;
    char why[160];
    if (!t->is_literal && encoded_label(t->host, why, sizeof why)) {
        verdict_block(v, "url", "url.encoded-hostname", "%s", why);
        return;
    }
    const sl_ip_t *ip = t->is_literal ? &t->literal : NULL;
    int i;
    if (p->killed || rs->killed) {
        verdict_block(v, "policy", "policy.kill-switch",
                      "all egress is stopped by the operator's kill switch%s",
                      p->killed ? "" : " for this identity");
        return;
    }
    if (rs->deny && (i = sl_hostset_match(rs->deny, h, ip)) >= 0) {
        verdict_block(v, "policy", "policy.deny", "host %s matches deny pattern '%s'", t->host,
                      sl_hostset_pattern(rs->deny, i));
        return;
    }
    if (rs->allow && sl_hostset_match(rs->allow, h, ip) < 0) {
        verdict_block(v, "policy", "policy.not-allowed",
                      "host %s is not on the allow list of policy %s", t->host, rs->policy_name);
        return;
    }
    if (p->routes && (i = sl_hostset_match(p->routes, h, ip)) >= 0) {
        t->route = &p->cfg->routes[i];
        return;
    }
    if (t->is_literal)
        sl_policy_check_address(p, id, t, &t->literal, port, v);
}

void sl_policy_check_address(const sl_policy_t *p, const sl_identity_t *id, const sl_target_t *t,
                             const sl_ip_t *ip, uint16_t port, sl_verdict_t *v)
{
    const sl_ruleset_t *rs = &id->rules;
    char text[64];
    for (size_t i = 0; i < p->n_self; i++) {
        const sl_ip_t *self = &p->self[i];
        bool any = true;
        for (int k = 0; k < 16; k++)
            any &= self->addr[k] == 0;
        if (p->self_ports[i] == port && (sl_ip_equal(self, ip) || any)) {
            verdict_block(v, "ssrf", "ssrf.self", "destination %s:%u is sluice itself",
                          sl_ip_format(ip, text, sizeof text), port);
            return;
        }
    }
    if (t->route != NULL)
        return; /* the operator routed this host here: trusted */
    if (rs->deny && sl_hostset_match(rs->deny, sl_view(t->host, strlen(t->host)), ip) >= 0) {
        verdict_block(v, "policy", "policy.deny", "%s resolved to %s, which is on the deny list",
                      t->host, sl_ip_format(ip, text, sizeof text));
        return;
    }
    const char *range = sl_ip_special_range(ip);
    if (range != NULL && !rs->cfg->allow_private) {
        if (t->is_literal)
            verdict_block(v, "ssrf", "ssrf.private-address",
                          "destination %s is in a private or special range (%s)",
                          sl_ip_format(ip, text, sizeof text), range);
        else
            verdict_block(v, "ssrf", "ssrf.dns-private-address",
                          "%s resolved to %s, a private or special range (%s)", t->host,
                          sl_ip_format(ip, text, sizeof text), range);
    }
}

/* Decode "Basic <base64>" into out; returns its length or -1. */
static int basic_decode(sl_view_t v, unsigned char *out, size_t cap)
{
    if (v.n < 7 || strncasecmp(v.p, "basic ", 6) != 0)
        return -1;
    const char *b = v.p + 6;
    size_t n = v.n - 6;
    while (n && *b == ' ')
        b++, n--;
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)b, (int)n);
    if (len < 0)
        return -1;
    while (n && b[n - 1] == '=')
        n--, len--;
    return len;
}

static bool conditions_hold(const sl_identity_t *id, int listener, const sl_ip_t *client)
{
    if (id->cfg && id->cfg->n_listen) {
        bool ok = false;
        for (size_t i = 0; i < id->n_listeners && !ok; i++)
            ok = id->listeners[i] == listener;
        if (!ok)
            return false;
    }
    if (id->cfg && id->cfg->n_sources) {
        bool ok = false;
        for (size_t i = 0; i < id->n_sources && !ok; i++)
            ok = client && sl_cidr_contains(&id->sources[i], client);
        if (!ok)
            return false;
    }
    return true;
}

const sl_identity_t *sl_policy_identify(const sl_policy_t *p, int listener, const sl_ip_t *client,
                                        sl_view_t proxy_auth, const char **why)
{
    /* Without any proxy_auth identity the header means nothing here; it is
     * stripped like every hop-by-hop header. */
    if (proxy_auth.n && p->any_auth) {
        unsigned char cred[512];
        int n = basic_decode(proxy_auth, cred, sizeof cred);
        for (size_t i = 0; n > 0 && i + 1 < p->n_ids; i++) {
            const sl_identity_t *id = &p->ids[i];
            if (id->auth == NULL || strlen(id->auth) != (size_t)n ||
                CRYPTO_memcmp(id->auth, cred, (size_t)n) != 0)
                continue;
            OPENSSL_cleanse(cred, sizeof cred);
            if (!conditions_hold(id, listener, client)) {
                *why = "these proxy credentials are not valid from this listener or address";
                return NULL;
            }
            return id;
        }
        OPENSSL_cleanse(cred, sizeof cred);
        *why = "invalid proxy credentials";
        return NULL;
    }
    for (size_t i = 0; i + 1 < p->n_ids; i++) {
        const sl_identity_t *id = &p->ids[i];
        if (id->auth == NULL && conditions_hold(id, listener, client))
            return id;
    }
    if (p->cfg->refuse_unknown) {
        *why = p->any_auth ? "proxy credentials required" : "unknown client: no identity matches";
        return NULL;
    }
    return &p->ids[p->n_ids - 1];
}

/* Does the path have a "." or ".." segment, written plainly or with
 * percent-encoded dots or slashes (what an origin may resolve)? */
static bool has_dot_segment(sl_view_t path)
{
    char seg[8];
    size_t n = 0;
    for (size_t i = 0; i <= path.n; i++) {
        char ch;
        if (i == path.n) {
            ch = '/';
        } else if (path.p[i] == '%' && i + 2 < path.n) {
            int hi = sl_hexval((unsigned char)path.p[i + 1]);
            int lo = sl_hexval((unsigned char)path.p[i + 2]);
            ch = hi >= 0 && lo >= 0 ? (char)(hi * 16 + lo) : '%';
            if (hi >= 0 && lo >= 0)
                i += 2;
        } else {
            ch = path.p[i];
        }
        if (ch == '/' || ch == '\\') {
            if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return true;
            n = 0;
        } else if (n < sizeof seg) {
            seg[n++] = ch;
        }
    }
    return false;
}

static bool path_matches(const char *pattern, sl_view_t path)
{
    char buf[2048];
    if (path.n >= sizeof buf)
        return false;
    memcpy(buf, path.p, path.n);
    buf[path.n] = '\0';
    if (strchr(pattern, '*'))
        return fnmatch(pattern, buf, 0) == 0;
    return strncmp(buf, pattern, strlen(pattern)) == 0;
}

void sl_policy_check_request(const sl_identity_t *id, sl_view_t method, const char *host,
                             uint16_t port, sl_view_t path, sl_verdict_t *v)
{
    const sl_policy_cfg_t *pc = id->rules.cfg;
    sl_view_t h = sl_view(host, strlen(host));
    const char *q = memchr(path.p, '?', path.n);
    if (q)
        path.n = (size_t)(q - path.p);
    if (pc->n_rules == 0)
        return; /* the common case: no per-host rules, nothing to walk */
    bool any = false;
    bool dots = has_dot_segment(path);
    for (size_t i = 0; i < pc->n_rules; i++) {
        const sl_host_rule_cfg_t *r = &pc->rules[i];
        if (!sl_hostglob_match(r->host, h))
            continue;
        any = true;
        bool ok = r->n_methods == 0;
        for (size_t k = 0; k < r->n_methods && !ok; k++)
            ok = sl_view_eq(method, r->methods[k]);
        if (!ok)
            continue;
        ok = r->n_ports == 0;
        for (size_t k = 0; k < r->n_ports && !ok; k++)
            ok = (uint16_t)atoi(r->ports[k]) == port;
        if (!ok)
            continue;
        ok = r->n_paths == 0;
        /* A path rule cannot be judged on "/a/../b": the origin would
         * resolve it elsewhere. Such paths fit no path rule. */
        for (size_t k = 0; k < r->n_paths && !ok && !dots; k++)
            ok = path_matches(r->paths[k], path);
        if (ok)
            return;
    }
    if (any)
        verdict_block(v, "policy", "policy.rule",
                      "%.*s %.*s on %s port %u is not permitted by the rules of policy %s",
                      (int)(method.n > 16 ? 16 : method.n), method.p,
                      (int)(path.n > 120 ? 120 : path.n), path.p, host, port,
                      id->rules.policy_name);
}

bool sl_policy_needs_approval(const sl_identity_t *id, sl_view_t method, const char *host)
{
    const sl_ruleset_t *rs = &id->rules;
    if (rs->approval == NULL ||
        sl_hostset_match(rs->approval, sl_view(host, strlen(host)), NULL) < 0)
        return false;
    const sl_policy_cfg_t *pc = rs->cfg;
    if (pc->approval.n_methods == 0)
        return sl_view_eq(method, "POST") || sl_view_eq(method, "PUT") ||
               sl_view_eq(method, "PATCH") || sl_view_eq(method, "DELETE");
    for (size_t k = 0; k < pc->approval.n_methods; k++)
        if (sl_view_eq(method, pc->approval.methods[k]))
            return true;
    return false;
}

const sl_identity_t *sl_policy_identity_named(const sl_policy_t *p, const char *name)
{
    for (size_t i = 0; i < p->n_ids; i++)
        if (strcmp(p->ids[i].name, name) == 0)
            return &p->ids[i];
    return NULL;
}

int sl_policy_attach_cas(sl_policy_t *p, const sl_policy_t *prev, long leaf_lifetime, sl_buf_t *err)
{
    const sl_config_t *cfg = p->cfg;
    sl_idca_spec_t *specs = calloc(cfg->n_identities + 1, sizeof *specs);
    if (specs == NULL) {
        sl_buf_append_str(err, "out of memory building the identity CAs\n");
        return -1;
    }
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_identities; i++) {
        const sl_identity_cfg_t *ic = &cfg->identities[i];
        if (ic->tls.ca == NULL && ic->tls.ca_cert == NULL)
            continue;
        specs[n++] = (sl_idca_spec_t){.identity = ic->name,
                                      .ca_cert = ic->tls.ca_cert,
                                      .ca_key = ic->tls.ca_key,
                                      .ca_out = ic->tls.ca_out};
    }
    p->idca = sl_idca_build(specs, n, prev ? prev->idca : NULL, leaf_lifetime, err);
    free(specs);
    if (p->idca == NULL)
        return -1;
    for (size_t i = 0; i < p->n_ids; i++)
        p->ids[i].certs = sl_idca_certs(p->idca, p->ids[i].name);
    return 0;
}

struct sl_certcache *sl_policy_tunnel_certs(const sl_policy_t *p, const char *name,
                                            struct sl_certcache *instance)
{
    const sl_identity_t *id = sl_policy_identity_named(p, name);
    if (id == NULL)
        return NULL;
    return id->certs ? id->certs : instance;
}

static size_t check_ca(const char *what, const char *cert, const char *key, sl_buf_t *err)
{
    sl_buf_t why = {0};
    sl_ca_t *ca = sl_ca_load(cert, key, &why);
    if (ca == NULL)
        sl_buf_appendf(err, "%s: %s", what, sl_buf_cstr(&why));
    sl_buf_free(&why);
    sl_ca_unref(ca);
    return ca == NULL;
}

size_t sl_policy_check_cas(const sl_config_t *cfg, sl_buf_t *err)
{
    size_t bad = 0;
    if (cfg->tls.ca_cert && cfg->tls.ca_key)
        bad += check_ca("tls.ca_cert/ca_key", cfg->tls.ca_cert, cfg->tls.ca_key, err);
    for (size_t i = 0; i < cfg->n_identities; i++) {
        const sl_identity_cfg_t *ic = &cfg->identities[i];
        char what[128];
        snprintf(what, sizeof what, "identity %s: tls.ca_cert/ca_key", ic->name);
        if (ic->tls.ca_cert && ic->tls.ca_key)
            bad += check_ca(what, ic->tls.ca_cert, ic->tls.ca_key, err);
    }
    return bad;
}
