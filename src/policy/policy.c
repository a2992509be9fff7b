#include "policy/policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "http/url.h"

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
    return p->passthrough && sl_hostset_match(p->passthrough, sl_view(host, strlen(host)), NULL) >= 0;
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

sl_policy_t *sl_policy_new(sl_config_t *cfg, uint64_t generation, sl_buf_t *err)
{
    sl_policy_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        goto fail;
    atomic_init(&p->refs, 1);
    p->generation = generation;
    p->cfg = cfg;
    if (cfg->policy.n_allow && !(p->allow = sl_hostset_new(cfg->policy.allow, cfg->policy.n_allow)))
        goto fail_set;
    if (cfg->policy.n_deny && !(p->deny = sl_hostset_new(cfg->policy.deny, cfg->policy.n_deny)))
        goto fail_set;
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
    sl_hostset_free(p->allow);
    sl_hostset_free(p->deny);
    sl_hostset_free(p->routes);
    sl_hostset_free(p->passthrough);
    SSL_CTX_free(p->tls_client);
    if (p->route_tls && p->cfg)
        for (size_t i = 0; i < p->cfg->n_routes; i++)
            SSL_CTX_free(p->route_tls[i]);
    free(p->route_tls);
    free(p->self);
    free(p->self_ports);
    if (p->cfg)
        sl_config_free(p->cfg);
    free(p);
}

void sl_policy_check_target(const sl_policy_t *p, sl_view_t host, uint16_t port, sl_target_t *t,
                            sl_verdict_t *v)
{
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
    const sl_ip_t *ip = t->is_literal ? &t->literal : NULL;
    int i;
    if (p->deny && (i = sl_hostset_match(p->deny, h, ip)) >= 0) {
        verdict_block(v, "policy", "policy.deny", "host %s matches deny pattern '%s'", t->host,
                      sl_hostset_pattern(p->deny, i));
        return;
    }
    if (p->allow && sl_hostset_match(p->allow, h, ip) < 0) {
        verdict_block(v, "policy", "policy.not-allowed",
                      "host %s is not on the allow list of this policy", t->host);
        return;
    }
    if (p->routes && (i = sl_hostset_match(p->routes, h, ip)) >= 0) {
        t->route = &p->cfg->routes[i];
        return;
    }
    if (t->is_literal)
        sl_policy_check_address(p, t, &t->literal, port, v);
}

void sl_policy_check_address(const sl_policy_t *p, const sl_target_t *t, const sl_ip_t *ip,
                             uint16_t port, sl_verdict_t *v)
{
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
    if (p->deny && sl_hostset_match(p->deny, sl_view(t->host, strlen(t->host)), ip) >= 0) {
        verdict_block(v, "policy", "policy.deny", "%s resolved to %s, which is on the deny list",
                      t->host, sl_ip_format(ip, text, sizeof text));
        return;
    }
    const char *range = sl_ip_special_range(ip);
    if (range != NULL && !p->cfg->policy.allow_private) {
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
