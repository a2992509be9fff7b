/* The agent side of the pipeline: accept, read and check a request head,
 * decide, forward the request (streaming its body), hand the response back,
 * then wait for the next request on the same connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "audit/audit.h"
#include "tls/certcache.h"
#include "core/log.h"
#include "http/url.h"
#include "policy/ratelimit.h"
#include "secrets/inject.h"
#include "proxy/internal.h"

#define MAX_HEADERS_CAP 1024

static void client_timer_cb(uv_timer_t *t);
static void client_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void client_drain_input(sl_client_t *c);
static void drain_once(sl_client_t *c);
static void exchange_drop_secrets(sl_exchange_t *x);
static int client_tls_pump(sl_client_t *c);
static int start_client_tls(sl_client_t *c);

static void client_free_if_closed(sl_client_t *c)
{
    if (--c->open_handles > 0)
        return;
    sl_worker_t *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_clients--;
    atomic_fetch_sub(&w->server->n_connections, 1);
    if (c->tls) {
        sl_tls_free(c->tls);
        free(c->tls);
    }
    sl_buf_free(&c->in);
    sl_buf_free(&c->x.path);
    sl_buf_free(&c->x.head);
    sl_buf_free(&c->tunnel_target);
    sl_websocket_free(c);
    free(c->x.chunked);
    exchange_drop_secrets(&c->x);
    if (c->x.policy)
        sl_policy_unref(c->x.policy);
    free(c);
    if (w->draining && w->n_clients == 0)
        uv_async_send(&w->wake);
}

static void client_handle_closed(uv_handle_t *h)
{
    client_free_if_closed(h->data);
}

static const sl_config_t *cfg_of(sl_client_t *c)
{
    return c->w->policy->cfg;
}

/* Write the audit event of the current exchange. */
static void exchange_audit(sl_client_t *c)
{
    sl_exchange_t *x = &c->x;
    if (!(c->flags & SL_CF_EXCHANGE))
        return;
    sl_audit_event_t ev = {
        .request_id = x->id,
        .identity = x->ident ? x->ident->name : NULL,
        .method = x->method,
        .host = x->target.host[0] ? x->target.host : NULL,
        .port = x->target.port,
        .target_path = sl_view(x->path.p ? x->path.p : "", x->path.n),
        .verdict = x->verdict ? x->verdict : "error",
        .rule = x->rule,
        .scanner = x->scanner,
        .reason = x->reason[0] ? x->reason : NULL,
        .upstream = x->upstream_addr[0] ? x->upstream_addr : NULL,
        .status = x->status,
        .bytes_in = x->bytes_in,
        .bytes_out = x->bytes_out,
        .duration_ms = (double)(sl_io_now_ns() - x->start_ns) / 1e6,
    };
    /* Which credentials went out, and where: names only, never values. */
    sl_buf_t used = {0};
    size_t n_used = 0;
    if (x->sd) {
        sl_buf_append(&used, "[", 1);
        for (size_t i = 0; i < x->sd->n_uses; i++, n_used++) {
            sl_buf_append_str(&used, n_used ? ",\"" : "\"");
            sl_buf_append_json(&used, x->sd->uses[i].name, strlen(x->sd->uses[i].name));
            sl_buf_append(&used, "@", 1);
            sl_buf_append_json(&used, x->sd->uses[i].where, strlen(x->sd->uses[i].where));
            sl_buf_append(&used, "\"", 1);
        }
        const char *names[16];
        size_t n = x->sbody ? sl_secret_body_used(x->sbody, names, 16) : 0;
        for (size_t i = 0; i < n && i < 16; i++, n_used++) {
            sl_buf_append_str(&used, n_used ? ",\"" : "\"");
            sl_buf_append_json(&used, names[i], strlen(names[i]));
            sl_buf_append_str(&used, "@body\"");
        }
        sl_buf_append(&used, "]", 1);
        if (n_used)
            ev.secrets = sl_buf_cstr(&used);
    }
    if (x->findings[0])
        ev.findings = x->findings;
    if (x->sd && x->sd->refused && x->sd->high_severity)
        ev.severity = "high";
    sl_audit_write(&ev);
    sl_buf_free(&used);
}

/* Forget the current exchange (after its audit event). */
/* Release the credential-injection state of the exchange (wiped). */
static void exchange_drop_secrets(sl_exchange_t *x)
{
    sl_inspect_request_done(x);
    if (x->sbody) {
        sl_secret_body_free(x->sbody);
        free(x->sbody);
        x->sbody = NULL;
    }
    if (x->sd) {
        sl_secret_decision_free(x->sd);
        free(x->sd);
        x->sd = NULL;
    }
}

static void exchange_reset(sl_client_t *c)
{
    sl_exchange_t *x = &c->x;
    exchange_drop_secrets(x);
    sl_buf_reset(&x->path);
    sl_buf_free(&x->head);
    free(x->chunked);
    if (x->policy)
        sl_policy_unref(x->policy);
    sl_buf_t path = x->path;
    memset(x, 0, sizeof *x);
    x->path = path;
    c->flags &= ~(SL_CF_EXCHANGE | SL_CF_REQ_DONE | SL_CF_RESP_DONE | SL_CF_HEAD_TIMER);
}

void sl_client_close(sl_client_t *c)
{
    if (c->state == SL_CS_CLOSING)
        return;
    if (c->flags & SL_CF_EXCHANGE) {
        if (c->x.status == 0 && c->x.verdict == NULL) {
            c->x.verdict = "error";
            snprintf(c->x.reason, sizeof c->x.reason, "client closed the connection");
        }
        exchange_audit(c);
        c->flags &= ~SL_CF_EXCHANGE;
    }
    if (c->state == SL_CS_HELD)
        sl_approval_forget(c);
    c->state = SL_CS_CLOSING;
    if (c->up) {
        sl_upstream_t *up = c->up;
        c->up = NULL;
        up->c = NULL;
        sl_upstream_close(up);
    }
    uv_close((uv_handle_t *)&c->timer, client_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, client_handle_closed);
}

int sl_client_send(sl_client_t *c, const uv_buf_t *b, unsigned nb)
{
    return sl_io_send((uv_stream_t *)&c->tcp, c->tls, b, nb, sl_client_write_cb, c);
}

static void client_shutdown_cb(uv_shutdown_t *req, int status)
{
    sl_client_t *c = req->data;
    free(req);
    sl_client_close(c);
}

/* Close once everything queued has been written. */
static void client_close_after_flush(sl_client_t *c)
{
    if (c->state == SL_CS_CLOSING || (c->flags & SL_CF_SHUTDOWN))
        return;
    c->flags |= SL_CF_SHUTDOWN;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->flags &= ~SL_CF_READING;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, client_shutdown_cb) != 0) {
        free(req);
        sl_client_close(c);
        return;
    }
    req->data = c;
}

void sl_client_write_cb(uv_write_t *req, int status)
{
    sl_client_t *c = req->data;
    sl_io_write_done(req);
    if (c->state == SL_CS_CLOSING)
        return;
    if (status < 0) {
        sl_client_close(c);
        return;
    }
    sl_client_on_drain(c);
}

void sl_client_on_drain(sl_client_t *c)
{
    if (c->up && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) < SL_WQ_LOW)
        sl_upstream_update_reading(c->up);
}

static void set_timer(sl_client_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, client_timer_cb, ms, 0);
}

void sl_client_update_reading(sl_client_t *c)
{
    bool want = false;
    if (c->flags & SL_CF_SHUTDOWN)
        want = false;
    else if (c->state == SL_CS_HEAD)
        want = true;
    else if ((c->state == SL_CS_FORWARD && (c->flags & SL_CF_REQ_DONE)) || c->state == SL_CS_DIAL)
        /* Keep reading (no epoll churn per request) but bound what early
         * body bytes or pipelined requests may queue meanwhile. */
        want = c->in.n < cfg_of(c)->limits.max_head_bytes;
    else if ((c->state == SL_CS_FORWARD && !(c->flags & SL_CF_REQ_DONE)) ||
             c->state == SL_CS_TUNNEL)
        want = c->up == NULL ||
               uv_stream_get_write_queue_size((uv_stream_t *)&c->up->tcp) < SL_WQ_HIGH;
    if (want && !(c->flags & SL_CF_READING)) {
        if (uv_read_start((uv_stream_t *)&c->tcp, client_alloc_cb, client_read_cb) == 0)
            c->flags |= SL_CF_READING;
    } else if (!want && (c->flags & SL_CF_READING)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->flags &= ~SL_CF_READING;
    }
}

/* Back to waiting for a request on a kept-alive connection. */
static void client_next_request(sl_client_t *c)
{
    exchange_reset(c);
    c->state = SL_CS_HEAD;
    if (c->w->draining) {
        client_close_after_flush(c);
        return;
    }
    set_timer(c, cfg_of(c)->timeouts.idle);
    sl_client_update_reading(c);
    if (c->in.n)
        client_drain_input(c);
}

/* The exchange is over from the client's point of view. */
static void exchange_finish(sl_client_t *c)
{
    exchange_audit(c);
    c->flags &= ~SL_CF_EXCHANGE;
    if (c->flags & SL_CF_CLOSE_AFTER)
        client_close_after_flush(c);
    else
        client_next_request(c);
}

void sl_client_response_done(sl_client_t *c)
{
    c->flags |= SL_CF_RESP_DONE;
    if (!(c->flags & SL_CF_REQ_DONE))
        c->flags |= SL_CF_CLOSE_AFTER; /* unread request body: cannot reuse */
    exchange_finish(c);
}

void sl_client_upstream_failed(sl_client_t *c, int status, const char *code, const char *detail)
{
    c->up = NULL;
    sl_respond_upstream_error(c, status, code, detail);
    exchange_finish(c);
}

void sl_client_upstream_refused(sl_client_t *c, const sl_verdict_t *v)
{
    c->up = NULL;
    sl_respond_refusal(c, v);
    exchange_finish(c);
}

static void client_timer_cb(uv_timer_t *t)
{
    sl_client_t *c = t->data;
    if (c->state != SL_CS_HEAD)
        return;
    if (c->flags & SL_CF_HEAD_TIMER) {
        sl_debug("client sent an incomplete request head for too long: closing");
        /* Slowloris: answer 408 and close, without waiting for the rest. */
        static const char resp[] = "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                                   "Content-Length: 0\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)resp, sizeof resp - 1);
        sl_client_send(c, &b, 1);
        client_close_after_flush(c);
        return;
    }
    sl_client_close(c); /* idle keep-alive connection */
}

/* Request ids: 8 hex digits random per process, 2 of worker, 10 of sequence. */
static void new_request_id(sl_client_t *c)
{
    static const char hex[] = "0123456789abcdef";
    sl_worker_t *w = c->w;
    uint64_t parts[3] = {w->server->id_prefix, (uint64_t)w->id & 0xff, ++w->req_seq};
    int widths[3] = {8, 2, 10};
    char *o = c->x.id;
    for (int k = 0; k < 3; k++) {
        for (int i = widths[k] - 1; i >= 0; i--)
            o[i] = hex[(parts[k] >> (4 * (widths[k] - 1 - i))) & 15];
        o += widths[k];
    }
    *o = '\0';
}

/* Answer 400 and close: the request cannot be read unambiguously. */
static bool reject(sl_client_t *c, const char *reason)
{
    if (c->x.id[0] == '\0')
        new_request_id(c);
    sl_respond_bad_request(c, reason);
    exchange_finish(c);
    return false;
}

/* Start an exchange's bookkeeping. */
static void exchange_begin(sl_client_t *c, const sl_h1_request_t *req)
{
    sl_exchange_t *x = &c->x;
    sl_worker_t *w = c->w;
    c->flags |= SL_CF_EXCHANGE;
    x->start_ns = sl_io_now_ns();
    x->policy = sl_policy_ref(w->policy);
    new_request_id(c);
    size_t ml = req->method.n < sizeof x->method - 1 ? req->method.n : sizeof x->method - 1;
    memcpy(x->method, req->method.p, ml);
    x->method[ml] = '\0';
}

/* Build the request head sent upstream: origin-form target, our own Host,
 * no hop-by-hop fields. */
static void build_upstream_head(sl_client_t *c, const sl_h1_request_t *req, const sl_url_t *u,
                                const sl_h1_header_t *fwd, size_t n_fwd)
{
    sl_exchange_t *x = &c->x;
    sl_buf_t *h = &x->head;
    sl_buf_append_view(h, req->method);
    sl_buf_append(h, " ", 1);
    if (x->sd && x->sd->changed) {
        sl_buf_append_view(h, x->sd->path.n ? x->sd->path : SL_VIEW_LIT("/"));
        if (x->sd->has_query) {
            sl_buf_append(h, "?", 1);
            sl_buf_append_view(h, x->sd->query);
        }
    } else if (x->path.n) {
        sl_buf_append(h, x->path.p, x->path.n);
    } else {
        sl_buf_append(h, "/", 1);
    }
    sl_buf_append_str(h, " HTTP/1.1\r\nHost: ");
    if (u->host_is_ipv6) {
        sl_buf_append(h, "[", 1);
        sl_buf_append_view(h, u->host);
        sl_buf_append(h, "]", 1);
    } else {
        sl_buf_append_str(h, x->target.host);
    }
    if (u->has_port)
        sl_buf_appendf(h, ":%u", u->port);
    sl_buf_append_str(h, "\r\n");
    /* Ask for responses plain: echo redaction rewrites bytes, and scanning
     * plain text is cheapest. A compressed one anyway is scanned decoded. */
    bool plain = c->w->server->rules && x->policy->cfg->inspect.responses;
    if (plain)
        sl_buf_append_str(h, "Accept-Encoding: identity\r\n");
    for (size_t i = 0; i < n_fwd; i++) {
        const sl_h1_header_t *f = &fwd[i];
        if (x->rechunk && sl_view_ieq(f->name, "content-length"))
            continue;
        if (plain && sl_view_ieq(f->name, "accept-encoding"))
            continue;
        sl_buf_append_view(h, f->name);
        sl_buf_append(h, ": ", 2);
        sl_buf_append_view(h, f->value);
        sl_buf_append(h, "\r\n", 2);
    }
    if (x->framing.kind == SL_H1_BODY_CHUNKED || x->rechunk)
        sl_buf_append_str(h, "Transfer-Encoding: chunked\r\n");
    if (x->upgrade) {
        for (size_t i = 0; i < req->n_headers; i++) {
            if (!sl_view_ieq(req->headers[i].name, "upgrade"))
                continue;
            sl_buf_append_str(h, "Connection: Upgrade\r\nUpgrade: ");
            sl_buf_append_view(h, req->headers[i].value);
            sl_buf_append(h, "\r\n", 2);
            break;
        }
    }
    sl_buf_append(h, "\r\n", 2);
}

/* Find out who sent the request. Inside an intercepted tunnel that is who
 * opened the tunnel. Returns 0, or -1 after answering 407. */
static int identify(sl_client_t *c, const sl_h1_request_t *req)
{
    sl_exchange_t *x = &c->x;
    const char *why = "unknown client";
    if (c->tunnel_identity[0]) {
        x->ident = sl_policy_identity_named(x->policy, c->tunnel_identity);
        why = "the identity that opened this tunnel no longer exists";
    } else {
        sl_view_t auth = SL_VIEW_NULL;
        for (size_t i = 0; i < req->n_headers; i++)
            if (sl_view_ieq(req->headers[i].name, "proxy-authorization"))
                auth = req->headers[i].value;
        x->ident =
            sl_policy_identify(x->policy, c->listener, c->has_peer ? &c->peer : NULL, auth, &why);
    }
    if (x->ident)
        return 0;
    sl_verdict_t v = {.blocked = true, .rule = "identity.refused", .scanner = "identity"};
    snprintf(v.reason, sizeof v.reason, "%s", why);
    c->flags |= SL_CF_CLOSE_AFTER;
    x->status = 407;
    sl_respond_refusal(c, &v);
    exchange_finish(c);
    return -1;
}

/* Rate limits of the identity's policy, per identity and per destination.
 * Returns true (with the verdict filled) when the request must wait. */
static bool rate_limited(sl_client_t *c, sl_verdict_t *v)
{
    const sl_exchange_t *x = &c->x;
    const sl_policy_cfg_t *pc = x->ident->rules.cfg;
    if (pc->rate_limit.requests == 0 && pc->rate_limit.per_host == 0)
        return false;
    uint64_t now = uv_now(&c->w->loop);
    char key[160];
    snprintf(key, sizeof key, "%s", x->ident->name);
    bool ok = sl_ratelimit_take(key, pc->rate_limit.requests, pc->rate_limit.window, now);
    if (ok) {
        snprintf(key, sizeof key, "%.64s|%.90s", x->ident->name, x->target.host);
        ok = sl_ratelimit_take(key, pc->rate_limit.per_host, pc->rate_limit.window, now);
    }
    if (ok)
        return false;
    v->blocked = true;
    v->rule = "policy.rate-limit";
    v->scanner = "policy";
    snprintf(v->reason, sizeof v->reason, "rate limit of policy %s reached for %s; retry later",
             x->ident->rules.policy_name, x->ident->name);
    return true;
}

/* Accept a CONNECT for interception: answer 200 at once and look at the
 * first bytes the agent sends. TLS is decrypted with a leaf minted for the
 * CONNECT host; anything else is read as plain HTTP. Either way every request
 * inside goes through the same pipeline, pinned to the tunnel's host. */
static bool intercept_tunnel(sl_client_t *c)
{
    sl_exchange_t *x = &c->x;
    static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)ok, sizeof ok - 1);
    if (sl_client_send(c, &b, 1) != 0) {
        sl_client_close(c);
        return false;
    }
    x->status = 200;
    x->verdict = "allow";
    snprintf(x->reason, sizeof x->reason, "tunnel intercepted");
    snprintf(c->tunnel_host, sizeof c->tunnel_host, "%s", x->target.host);
    snprintf(c->tunnel_identity, sizeof c->tunnel_identity, "%s", x->ident->name);
    c->tunnel_port = x->target.port;
    c->flags |= SL_CF_PEEK;
    exchange_finish(c);
    return c->state != SL_CS_CLOSING;
}

void sl_client_destination_checked(sl_client_t *c)
{
    c->state = SL_CS_HEAD;
    if (intercept_tunnel(c))
        sl_client_update_reading(c);
}

/* Rewrite an inner request of an intercepted tunnel to absolute form, and
 * refuse one that names another host than the tunnel's. Returns 0, or -1
 * after answering. */
static int tunnel_target(sl_client_t *c, const sl_h1_request_t *req, sl_buf_t *abs)
{
    const char *scheme = c->tls ? "https" : "http";
    bool v6 = strchr(c->tunnel_host, ':') != NULL;
    uint16_t dflt = c->tls ? 443 : 80;
    sl_buf_appendf(abs, "%s://%s%s%s", scheme, v6 ? "[" : "", c->tunnel_host, v6 ? "]" : "");
    if (c->tunnel_port != dflt)
        sl_buf_appendf(abs, ":%u", c->tunnel_port);
    if (req->target.n && req->target.p[0] == '/') {
        sl_buf_append_view(abs, req->target);
    } else {
        sl_url_t u;
        char host[256];
        if (sl_url_parse_absolute(req->target.p, req->target.n, &u) != SL_URL_OK ||
            sl_host_normalize(u.host, host, sizeof host) < 0 || strcmp(host, c->tunnel_host) != 0 ||
            u.port != c->tunnel_port) {
            sl_verdict_t v = {.blocked = true, .rule = "tls.host-mismatch", .scanner = "tls"};
            snprintf(v.reason, sizeof v.reason,
                     "request inside the tunnel to %.180s names another host", c->tunnel_host);
            sl_respond_refusal(c, &v);
            return -1;
        }
        sl_buf_append_view(abs, u.path.n ? u.path : SL_VIEW_LIT("/"));
        if (u.has_query) {
            sl_buf_append(abs, "?", 1);
            sl_buf_append_view(abs, u.query);
        }
    }
    for (size_t i = 0; i < req->n_headers; i++) {
        if (!sl_view_ieq(req->headers[i].name, "host"))
            continue;
        sl_url_t hu;
        char host[256];
        sl_view_t hv = req->headers[i].value;
        if (sl_url_parse_authority(hv.p, hv.n, &hu) != SL_URL_OK) {
            /* No port: parse as a bare host. */
            hu.host = hv;
            if (hv.n && hv.p[0] == '[' && hv.p[hv.n - 1] == ']')
                hu.host = sl_view(hv.p + 1, hv.n - 2);
        }
        if (sl_host_normalize(hu.host, host, sizeof host) < 0 ||
            strcmp(host, c->tunnel_host) != 0) {
            sl_verdict_t v = {.blocked = true, .rule = "tls.host-mismatch", .scanner = "tls"};
            snprintf(v.reason, sizeof v.reason,
                     "Host header does not match the tunnel's host %.180s", c->tunnel_host);
            sl_respond_refusal(c, &v);
            return -1;
        }
    }
    return 0;
}

/* The request passed every check: find or dial its upstream. */
static void dispatch(sl_client_t *c)
{
    c->state = SL_CS_DIAL;
    sl_client_update_reading(c);
    sl_upstream_acquire(c);
}

/* Credential injection: replace placeholders (or add a templated header)
 * for requests in a secret's scope, refuse placeholders out of scope and
 * real values coming from the sandbox. Returns -1 after refusing. */
static int apply_secrets(sl_client_t *c, const sl_h1_request_t *req, const sl_url_t *u,
                         const sl_h1_header_t *fwd, size_t n_fwd)
{
    sl_exchange_t *x = &c->x;
    sl_secret_req_t sr = {
        .identity = sl_view(x->ident->name, strlen(x->ident->name)),
        .method = req->method,
        .host = sl_view(x->target.host, strlen(x->target.host)),
        .path = u->path.n ? u->path : SL_VIEW_LIT("/"),
        .query = u->query,
        .has_query = u->has_query,
        .headers = fwd,
        .n_headers = n_fwd,
    };
    x->sd = calloc(1, sizeof *x->sd);
    if (x->sd == NULL) {
        sl_client_close(c);
        return -1;
    }
    sl_secret_decide(x->policy->secrets, &sr, x->sd);
    sl_verdict_t v = {.blocked = x->sd->refused, .rule = x->sd->rule, .scanner = "secrets"};
    if (!v.blocked && x->sd->body_replace && x->framing.kind != SL_H1_BODY_NONE) {
        sl_view_t ce = SL_VIEW_NULL;
        for (size_t i = 0; i < n_fwd; i++)
            if (sl_view_ieq(fwd[i].name, "content-encoding"))
                ce = fwd[i].value;
        if (!sl_secret_body_encoding_ok(x->sd, ce)) {
            v.blocked = true;
            v.rule = SL_SECRET_RULE_BODY_ENCODED;
            snprintf(v.reason, sizeof v.reason,
                     "the request body is compressed (Content-Encoding) and credentials may "
                     "be replaced in bodies: send it uncompressed");
        }
    }
    if (v.blocked) {
        if (x->sd->refused)
            snprintf(v.reason, sizeof v.reason, "%s", x->sd->reason);
        if (x->sd->high_severity)
            sl_warn("request %s from %s: %s (possible exfiltration attempt)", x->id, x->ident->name,
                    x->sd->reason);
        if (x->framing.kind != SL_H1_BODY_NONE)
            c->flags |= SL_CF_CLOSE_AFTER;
        sl_respond_refusal(c, &v);
        exchange_finish(c);
        return -1;
    }
    if (x->sd->body_filter && (x->framing.kind == SL_H1_BODY_CHUNKED ||
                               (x->framing.kind == SL_H1_BODY_LENGTH && x->framing.length > 0))) {
        x->sbody = malloc(sizeof *x->sbody);
        if (x->sbody == NULL) {
            sl_client_close(c);
            return -1;
        }
        sl_secret_body_init(x->sbody, x->sd);
        x->rechunk = x->sd->body_replace && x->framing.kind == SL_H1_BODY_LENGTH;
    }
    return 0;
}

/* Decide and dispatch a parsed request head. Returns false if the
 * connection was closed or is closing. */
static bool handle_request(sl_client_t *c, const sl_h1_request_t *req)
{
    sl_exchange_t *x = &c->x;
    const char *err = NULL;
    exchange_begin(c, req);
    bool is_connect = sl_view_eq(req->method, "CONNECT");
    x->is_connect = is_connect;
    if (is_connect && c->tunnel_host[0])
        return reject(c, "CONNECT inside an intercepted tunnel");
    x->is_head = sl_view_eq(req->method, "HEAD");
    if (sl_h1_request_framing(req, &x->framing, &err) != 0) {
        return reject(c, err);
    }
    if (!is_connect && req->minor_version == 1 && !c->tunnel_host[0]) {
        bool has_host = false;
        for (size_t i = 0; i < req->n_headers && !has_host; i++)
            has_host = sl_view_ieq(req->headers[i].name, "host");
        if (!has_host)
            return reject(c, "HTTP/1.1 request without a Host header");
    }
    if (identify(c, req) != 0)
        return false;
    x->client_minor = req->minor_version;
    x->upgrade = x->framing.upgrade && !is_connect;
    /* A CONNECT's own Connection header and version do not end the tunnel
     * (requests' http.client and s_client send HTTP/1.0 CONNECTs). */
    if (!is_connect && (!x->framing.keep_alive || req->minor_version == 0))
        c->flags |= SL_CF_CLOSE_AFTER;
    sl_url_t u;
    int r;
    if (is_connect) {
        r = sl_url_parse_authority(req->target.p, req->target.n, &u);
        if (r == SL_URL_OK && x->framing.kind != SL_H1_BODY_NONE)
            r = SL_URL_BAD_CHAR;
        sl_buf_append_view(&x->path, req->target);
    } else if (c->tunnel_host[0]) {
        sl_buf_reset(&c->tunnel_target);
        if (tunnel_target(c, req, &c->tunnel_target) != 0) {
            c->flags |= SL_CF_CLOSE_AFTER;
            exchange_finish(c);
            return false;
        }
        x->upstream_tls = c->tls != NULL;
        r = sl_url_parse_absolute(c->tunnel_target.p, c->tunnel_target.n, &u);
        if (r == SL_URL_OK) {
            sl_buf_append_view(&x->path, u.path.n ? u.path : SL_VIEW_LIT("/"));
            if (u.has_query) {
                sl_buf_append(&x->path, "?", 1);
                sl_buf_append_view(&x->path, u.query);
            }
        }
    } else {
        r = sl_url_parse_absolute(req->target.p, req->target.n, &u);
        if (r == SL_URL_OK && !sl_view_ieq(u.scheme, "http")) {
            return reject(c, "https:// targets must use CONNECT (absolute-form is for "
                             "http:// only)");
        }
        if (r == SL_URL_OK) {
            if (u.path.n)
                sl_buf_append_view(&x->path, u.path);
            else
                sl_buf_append(&x->path, "/", 1);
            if (u.has_query) {
                sl_buf_append(&x->path, "?", 1);
                sl_buf_append_view(&x->path, u.query);
            }
        }
    }
    if (r != SL_URL_OK) {
        char msg[160];
        if (!is_connect && req->target.n && req->target.p[0] == '/')
            snprintf(msg, sizeof msg,
                     "origin-form target: sluice is a forward proxy, send absolute-form "
                     "(GET http://host/path)");
        else
            snprintf(msg, sizeof msg, "invalid request target: %s", sl_url_strerror(r));
        return reject(c, msg);
    }
    sl_verdict_t v;
    sl_policy_check_target(x->policy, x->ident, u.host, u.port, &x->target, &v);
    if (!v.blocked &&
        !(is_connect && c->w->server->certs && !sl_policy_passthrough(x->policy, x->target.host)))
        sl_policy_check_request(x->ident, req->method, x->target.host, x->target.port,
                                sl_view(x->path.p ? x->path.p : "/", x->path.n ? x->path.n : 1),
                                &v);
    if (!v.blocked && rate_limited(c, &v))
        x->status = 429;
    if (v.blocked) {
        /* Unread body bytes would be taken for the next request. */
        if (x->framing.kind != SL_H1_BODY_NONE)
            c->flags |= SL_CF_CLOSE_AFTER;
        sl_respond_refusal(c, &v);
        exchange_finish(c);
        return c->state != SL_CS_CLOSING && !(c->flags & SL_CF_SHUTDOWN);
    }
    if (is_connect) {
        sl_verdict_t iv = {0};
        if (sl_inspect_request_head(c, NULL, NULL, 0, &iv)) {
            sl_respond_refusal(c, &iv);
            exchange_finish(c);
            return c->state != SL_CS_CLOSING && !(c->flags & SL_CF_SHUTDOWN);
        }
    }
    if (is_connect && c->w->server->certs && !sl_policy_passthrough(x->policy, x->target.host)) {
        /* Check where the name leads before saying 200, so DNS failures and
         * private answers are refused on the CONNECT itself. */
        x->resolve_only = true;
        c->state = SL_CS_DIAL;
        uv_timer_stop(&c->timer);
        c->flags &= ~SL_CF_HEAD_TIMER;
        sl_client_update_reading(c);
        sl_upstream_acquire(c);
        return c->state != SL_CS_CLOSING;
    }
    if (!is_connect) {
        /* The fields that go upstream: no Host (ours is written), nothing
         * hop-by-hop. Credential injection may rewrite them. */
        sl_h1_header_t fwd[MAX_HEADERS_CAP];
        size_t n_fwd = 0;
        for (size_t i = 0; i < req->n_headers; i++)
            if (!sl_view_ieq(req->headers[i].name, "host") &&
                !sl_h1_is_hop_by_hop(req->headers[i].name, req->headers, req->n_headers))
                fwd[n_fwd++] = req->headers[i];
        sl_verdict_t iv = {0};
        if (sl_inspect_request_head(c, &u, fwd, n_fwd, &iv) ||
            sl_inspect_request_coding(c, fwd, n_fwd, &iv)) {
            if (x->framing.kind != SL_H1_BODY_NONE)
                c->flags |= SL_CF_CLOSE_AFTER;
            sl_respond_refusal(c, &iv);
            exchange_finish(c);
            return c->state != SL_CS_CLOSING && !(c->flags & SL_CF_SHUTDOWN);
        }
        if (x->policy->secrets && apply_secrets(c, req, &u, fwd, n_fwd) != 0)
            return c->state != SL_CS_CLOSING && !(c->flags & SL_CF_SHUTDOWN);
        if (x->sd)
            build_upstream_head(c, req, &u, x->sd->headers, x->sd->n_headers);
        else
            build_upstream_head(c, req, &u, fwd, n_fwd);
    }
    if (x->framing.kind == SL_H1_BODY_CHUNKED) {
        x->chunked = malloc(sizeof *x->chunked);
        if (x->chunked == NULL) {
            sl_client_close(c);
            return false;
        }
        sl_chunked_init(x->chunked);
    } else if (x->framing.kind == SL_H1_BODY_LENGTH) {
        x->body_left = x->framing.length;
    }
    if (x->framing.kind == SL_H1_BODY_NONE ||
        (x->framing.kind == SL_H1_BODY_LENGTH && x->body_left == 0))
        c->flags |= SL_CF_REQ_DONE;
    uv_timer_stop(&c->timer);
    c->flags &= ~SL_CF_HEAD_TIMER;
    if (!is_connect && sl_policy_needs_approval(x->ident, req->method, x->target.host)) {
        sl_approval_hold(c);
        return c->state != SL_CS_CLOSING;
    }
    dispatch(c);
    return c->state != SL_CS_CLOSING;
}

static void approval_timer_cb(uv_timer_t *t)
{
    sl_client_t *c = t->data;
    if (c->state != SL_CS_HELD)
        return;
    sl_approval_forget(c);
    sl_verdict_t v = {.blocked = true, .rule = "policy.approval-timeout", .scanner = "policy"};
    snprintf(v.reason, sizeof v.reason,
             "no operator approved this request within the approval timeout");
    c->flags |= SL_CF_CLOSE_AFTER;
    sl_client_upstream_refused(c, &v);
}

void sl_client_arm_approval_timer(sl_client_t *c, uint64_t ms)
{
    uv_timer_start(&c->timer, approval_timer_cb, ms, 0);
}

void sl_client_approval_decided(sl_client_t *c, bool approve, const char *actor)
{
    uv_timer_stop(&c->timer);
    if (approve) {
        sl_info("request %s approved by %s", c->x.id, actor);
        dispatch(c);
        return;
    }
    sl_verdict_t v = {.blocked = true, .rule = "policy.approval-denied", .scanner = "policy"};
    snprintf(v.reason, sizeof v.reason, "an operator (%.60s) denied this request", actor);
    c->flags |= SL_CF_CLOSE_AFTER;
    sl_client_upstream_refused(c, &v);
}

/* Try to parse one head from `p`. Returns bytes consumed, 0 if more are
 * needed, -1 if the connection is done. */
static long process_head(sl_client_t *c, const char *p, size_t n)
{
    const sl_config_t *cfg = cfg_of(c);
    sl_h1_header_t hdrs[MAX_HEADERS_CAP];
    size_t cap =
        cfg->limits.max_headers < MAX_HEADERS_CAP ? cfg->limits.max_headers : MAX_HEADERS_CAP;
    sl_h1_request_t req = {.headers = hdrs, .n_headers = cap};
    const char *err = NULL;
    size_t scan = n < cfg->limits.max_head_bytes ? n : cfg->limits.max_head_bytes;
    int r = sl_h1_parse_request(p, scan, &req, &err);
    if (r == SL_H1_INCOMPLETE) {
        if (n >= cfg->limits.max_head_bytes) {
            c->flags |= SL_CF_EXCHANGE;
            c->x.start_ns = sl_io_now_ns();
            reject(c, "request head exceeds limits.max_head_bytes");
            return -1;
        }
        if (!(c->flags & SL_CF_HEAD_TIMER)) {
            c->flags |= SL_CF_HEAD_TIMER;
            set_timer(c, cfg->timeouts.header_read);
        }
        return 0;
    }
    if (r == SL_H1_BAD) {
        c->flags |= SL_CF_EXCHANGE;
        c->x.start_ns = sl_io_now_ns();
        reject(c, err);
        return -1;
    }
    if (!handle_request(c, &req))
        return c->state == SL_CS_CLOSING || (c->flags & SL_CF_SHUTDOWN) ? -1 : r;
    return r;
}

/* Forward request body bytes. Returns bytes consumed or -1 on close. */
/* The request body cannot go on (malformed, or refused by a body filter):
 * the upstream never gets a complete request. Tell the agent why if no
 * response has started, else just close. */
static void body_stop(sl_client_t *c, const sl_verdict_t *refusal, const char *bad_request)
{
    sl_upstream_t *up = c->up;
    if (up && up->state == SL_US_HEAD && !up->got_bytes) {
        c->up = NULL;
        sl_upstream_close(up);
        if (refusal) {
            c->flags |= SL_CF_CLOSE_AFTER;
            sl_respond_refusal(c, refusal);
            exchange_finish(c);
        } else {
            reject(c, bad_request);
        }
    } else {
        sl_client_close(c);
    }
}

/* Send decoded request body bytes upstream: through the credential filter
 * when there is one, then framed (chunked when the agent sent chunked or the
 * filter may change the length). `done` ends the body. Returns 0 or -1 when
 * the connection is done. */
static int emit_body(sl_client_t *c, const char *p, size_t n, bool done)
{
    sl_exchange_t *x = &c->x;
    sl_buf_t inspected = {0}, filtered = {0};
    if (c->w->server->rules) {
        sl_verdict_t v = {0};
        if (sl_inspect_request_body(c, p, n, done, &inspected, &v) != 0) {
            sl_info("request %s from %s refused by %s: %s", x->id, x->ident->name, v.rule,
                    v.reason);
            sl_buf_free(&inspected);
            body_stop(c, &v, NULL);
            return -1;
        }
        p = inspected.p;
        n = inspected.n;
    }
    if (x->sbody) {
        int r = n ? sl_secret_body_feed(x->sbody, p, n, &filtered) : 0;
        if (r == 0 && done)
            r = sl_secret_body_finish(x->sbody, &filtered);
        if (r != 0) {
            sl_verdict_t v = {.blocked = true, .rule = x->sbody->rule, .scanner = "secrets"};
            snprintf(v.reason, sizeof v.reason, "%s", x->sbody->reason);
            sl_warn("request %s from %s: %s in the body", x->id, x->ident->name, v.reason);
            sl_buf_free(&filtered);
            sl_buf_free(&inspected);
            body_stop(c, &v, NULL);
            return -1;
        }
        p = filtered.p;
        n = filtered.n;
    }
    bool chunked_out = x->framing.kind == SL_H1_BODY_CHUNKED || x->rechunk;
    char hex[24];
    uv_buf_t b[6];
    unsigned nb = 0;
    if (n && chunked_out) {
        b[nb++] = uv_buf_init(hex, (unsigned)snprintf(hex, sizeof hex, "%zx\r\n", n));
        b[nb++] = uv_buf_init((char *)p, (unsigned)n);
        b[nb++] = uv_buf_init("\r\n", 2);
    } else if (n) {
        b[nb++] = uv_buf_init((char *)p, (unsigned)n);
    }
    if (done && chunked_out) {
        /* Trailer fields are forwarded; the decoder validated them. */
        b[nb++] = uv_buf_init("0\r\n", 3);
        if (x->chunked)
            b[nb++] = uv_buf_init(x->chunked->trailers, (unsigned)x->chunked->trailers_len);
        b[nb++] = uv_buf_init("\r\n", 2);
    }
    int r = nb ? sl_upstream_send(c->up, b, nb) : 0;
    sl_buf_free(&filtered);
    sl_buf_free(&inspected);
    if (r != 0) {
        sl_client_close(c);
        return -1;
    }
    return 0;
}

/* Forward request body bytes. Returns bytes consumed or -1 on close. */
static long forward_body(sl_client_t *c, char *p, size_t n)
{
    sl_exchange_t *x = &c->x;
    sl_upstream_t *up = c->up;
    size_t used, len;
    bool done;
    if (x->framing.kind == SL_H1_BODY_LENGTH) {
        used = len = n < x->body_left ? n : (size_t)x->body_left;
        x->body_left -= used;
        done = x->body_left == 0;
    } else {
        const char *err = NULL;
        len = n;
        if (sl_chunked_decode(x->chunked, p, &len, &used, &err) != 0) {
            sl_info("request %s: malformed chunked body (%s)", x->id, err);
            body_stop(c, NULL, err);
            return -1;
        }
        done = x->chunked->done;
    }
    x->bytes_in += len;
    if (done)
        c->flags |= SL_CF_REQ_DONE;
    if (emit_body(c, p, len, done) != 0)
        return -1;
    sl_upstream_touch(up);
    if (c->flags & SL_CF_REQ_DONE) {
        sl_upstream_request_sent(up);
        sl_client_update_reading(c);
    } else if (uv_stream_get_write_queue_size((uv_stream_t *)&up->tcp) >= SL_WQ_HIGH) {
        sl_client_update_reading(c);
    }
    return (long)used;
}

/* Consume as much of c->in as the current state allows. */
static void client_drain_input(sl_client_t *c)
{
    /* Callbacks run inside this loop (a refusal finishing an exchange) may
     * ask for another pass; the loop itself does it once it has consumed the
     * bytes it was working on, so nothing is parsed twice. */
    if (c->flags & SL_CF_IN_DRAIN) {
        c->flags |= SL_CF_REDRAIN;
        return;
    }
    c->flags |= SL_CF_IN_DRAIN;
    do {
        c->flags &= ~SL_CF_REDRAIN;
        drain_once(c);
    } while ((c->flags & SL_CF_REDRAIN) && c->state != SL_CS_CLOSING);
    c->flags &= ~SL_CF_IN_DRAIN;
}

static void drain_once(sl_client_t *c)
{
    if ((c->flags & SL_CF_PEEK) && c->in.n > 0) {
        c->flags &= ~SL_CF_PEEK;
        if ((unsigned char)c->in.p[0] == 0x16 && start_client_tls(c) != 0)
            return;
    }
    while (c->in.n > 0 && c->state != SL_CS_CLOSING && !(c->flags & SL_CF_SHUTDOWN)) {
        long used = 0;
        if (c->state == SL_CS_HEAD) {
            used = process_head(c, c->in.p, c->in.n);
            if (used == 0)
                break;
        } else if (c->state == SL_CS_FORWARD && !(c->flags & SL_CF_REQ_DONE) && c->up) {
            used = forward_body(c, c->in.p, c->in.n);
            if (used == 0)
                break;
        } else if (c->state == SL_CS_TUNNEL && c->up && c->ws) {
            used = sl_websocket_from_client(c);
            if (used == 0)
                break;
        } else if (c->state == SL_CS_TUNNEL && c->up) {
            uv_buf_t b = uv_buf_init(c->in.p, (unsigned)c->in.n);
            if (sl_upstream_send(c->up, &b, 1)) {
                sl_client_close(c);
                return;
            }
            c->x.bytes_in += c->in.n;
            sl_upstream_touch(c->up);
            used = (long)c->in.n;
            sl_client_update_reading(c);
        } else {
            break; /* dialing, or pipelined bytes waiting for the response */
        }
        if (used < 0)
            return;
        if (c->state == SL_CS_CLOSING)
            return;
        sl_buf_consume(&c->in, (size_t)used);
    }
    if (c->in.n == 0 && c->in.cap > 16384)
        sl_buf_free(&c->in);
}

/* Send what the agent-side TLS session has for the agent (handshake
 * messages, alerts): a send of nothing flushes the session's output. */
static int client_tls_flush(sl_client_t *c)
{
    return sl_client_send(c, NULL, 0);
}

/* Decrypt what the agent sent into c->in. Returns -1 if the connection is
 * closing. */
static int client_tls_pump(sl_client_t *c)
{
    sl_tls_status_t st = sl_tls_pump(c->tls, &c->in);
    int w = client_tls_flush(c);
    if (st != SL_TLS_OK || w != 0) {
        char why[256];
        sl_info("TLS with the agent for %s failed: %s", c->tunnel_host,
                sl_tls_error(NULL, why, sizeof why));
        sl_client_close(c);
        return -1;
    }
    if (c->tls->closed && c->in.n == 0) {
        sl_client_close(c);
        return -1;
    }
    return 0;
}

/* The agent's SNI must name the host it CONNECTed to. */
static int sni_check(SSL *ssl, int *alert, void *arg)
{
    sl_client_t *c = SSL_get_app_data(ssl);
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (c == NULL || sni == NULL)
        return SSL_TLSEXT_ERR_OK;
    char norm[256];
    if (sl_host_normalize(sl_view(sni, strlen(sni)), norm, sizeof norm) < 0 ||
        strcmp(norm, c->tunnel_host) != 0) {
        sl_warn("tunnel to %s refused (tls.sni-mismatch): the TLS SNI names another host",
                c->tunnel_host);
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* The first bytes of an intercepted tunnel are a TLS ClientHello: start the
 * agent-side TLS session with a leaf for the tunnel's host. */
static int start_client_tls(sl_client_t *c)
{
    const char *err = "the identity that opened this tunnel no longer exists";
    /* The CA of the identity that opened the tunnel signs its leaves. */
    sl_certcache_t *certs =
        sl_policy_tunnel_certs(c->w->policy, c->tunnel_identity, c->w->server->certs);
    SSL_CTX *ctx = certs ? sl_certcache_get(certs, c->tunnel_host, &err) : NULL;
    if (ctx == NULL) {
        sl_warn("cannot mint a certificate for %s: %s; closing the tunnel", c->tunnel_host,
                err ? err : "unknown error");
        sl_client_close(c);
        return -1;
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_check);
    c->tls = malloc(sizeof *c->tls);
    if (c->tls == NULL || sl_tls_init(c->tls, ctx, true) != 0) {
        free(c->tls);
        c->tls = NULL;
        SSL_CTX_free(ctx);
        sl_client_close(c);
        return -1;
    }
    SSL_CTX_free(ctx); /* the session holds its own reference */
    SSL_set_app_data(c->tls->ssl, c);
    sl_tls_feed(c->tls, c->in.p, c->in.n);
    sl_buf_reset(&c->in);
    return client_tls_pump(c);
}

static void free_shutdown_req(uv_shutdown_t *req, int status)
{
    free(req);
}

static void client_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    sl_client_t *c = h->data;
    if (c->tls) {
        *buf = uv_buf_init(c->w->scratch, SL_READ_CHUNK);
        return;
    }
    sl_buf_reserve(&c->in, SL_READ_CHUNK);
    *buf = uv_buf_init(c->in.p + c->in.n, (unsigned)(c->in.cap - c->in.n));
}

static void client_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sl_client_t *c = s->data;
    if (nread < 0) {
        if (c->state == SL_CS_TUNNEL && nread == UV_EOF && c->up) {
            /* Half-close: the agent is done sending. */
            c->flags &= ~SL_CF_READING;
            uv_read_stop(s);
            uv_shutdown_t *req = malloc(sizeof *req);
            if (req && uv_shutdown(req, (uv_stream_t *)&c->up->tcp, free_shutdown_req) == 0)
                return;
            free(req);
        }
        sl_client_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->tls) {
        sl_tls_feed(c->tls, buf->base, (size_t)nread);
        if (client_tls_pump(c) != 0)
            return;
    } else {
        c->in.n += (size_t)nread;
    }
    if (c->state == SL_CS_HEAD && !(c->flags & SL_CF_HEAD_TIMER)) {
        c->flags |= SL_CF_HEAD_TIMER;
        set_timer(c, cfg_of(c)->timeouts.header_read);
    }
    client_drain_input(c);
    if (c->state != SL_CS_CLOSING)
        sl_client_update_reading(c);
}

void sl_client_upstream_ready(sl_client_t *c, sl_upstream_t *up)
{
    sl_exchange_t *x = &c->x;
    c->up = up;
    up->c = c;
    if (x->is_connect) {
        static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)ok, sizeof ok - 1);
        if (sl_client_send(c, &b, 1) != 0) {
            sl_client_close(c);
            return;
        }
        x->status = 200;
        x->verdict = "allow";
        c->state = SL_CS_TUNNEL;
        c->flags |= SL_CF_CLOSE_AFTER;
        sl_upstream_start_tunnel(up);
        sl_client_update_reading(c);
        client_drain_input(c);
        return;
    }
    uv_buf_t b = uv_buf_init(x->head.p, (unsigned)x->head.n);
    if (sl_upstream_send(up, &b, 1) != 0) {
        sl_client_upstream_failed(c, 502, "upstream-write-failed",
                                  "could not send the request to the upstream");
        sl_upstream_close(up);
        return;
    }
    c->state = SL_CS_FORWARD;
    sl_upstream_expect_response(up);
    if (c->flags & SL_CF_REQ_DONE)
        sl_upstream_request_sent(up);
    sl_client_update_reading(c);
    client_drain_input(c);
}

void sl_client_drain(sl_client_t *c)
{
    if (c->state == SL_CS_HEAD && !(c->flags & SL_CF_EXCHANGE) && c->in.n == 0)
        sl_client_close(c);
    else
        c->flags |= SL_CF_CLOSE_AFTER;
}

void sl_client_on_connection(uv_stream_t *listener, int status)
{
    sl_worker_t *w = listener->data;
    if (status < 0) {
        sl_warn("accept failed: %s", uv_strerror(status));
        return;
    }
    sl_client_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->w = w;
    c->open_handles = 2;
    c->next = w->clients;
    if (w->clients)
        w->clients->prev = c;
    w->clients = c;
    w->n_clients++;
    long n = atomic_fetch_add(&w->server->n_connections, 1) + 1;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        sl_client_close(c);
        return;
    }
    if ((size_t)n > w->policy->cfg->limits.max_connections || w->draining) {
        sl_warn("connection refused: limits.max_connections (%zu) reached",
                w->policy->cfg->limits.max_connections);
        sl_client_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->listener = (int)((uv_tcp_t *)listener - w->listeners);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    uint16_t port;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0 &&
        sl_ip_from_sockaddr((struct sockaddr *)&ss, &c->peer, &port) == 0)
        c->has_peer = true;
    c->state = SL_CS_HEAD;
    set_timer(c, cfg_of(c)->timeouts.header_read);
    sl_client_update_reading(c);
}
