/* The upstream side: resolve (checking every answer), connect to exactly
 * the checked address, pool kept-alive connections, and relay the response
 * back to the client with backpressure. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "secrets/inject.h"
#include "secrets/redact.h"
#include "proxy/internal.h"

#define POOL_MAX 256
#define RESP_HEADERS_CAP 256

static void up_timer_cb(uv_timer_t *t);
static void connect_next(sl_upstream_t *up);
static void up_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static const sl_config_t *cfg_of(sl_upstream_t *up)
{
    return up->w->policy->cfg;
}

static void drop_redactor(sl_upstream_t *up)
{
    sl_inspect_response_done(up);
    if (up->redact) {
        sl_redactor_free(up->redact);
        free(up->redact);
        up->redact = NULL;
    }
}

static void up_maybe_free(sl_upstream_t *up)
{
    if (up->open_handles > 0 || up->dns_pending)
        return;
    if (up->tls) {
        sl_tls_free(up->tls);
        free(up->tls);
    }
    sl_buf_free(&up->in);
    sl_buf_free(&up->out_head);
    free(up->chunked);
    drop_redactor(up);
    free(up);
}

static void up_handle_closed(uv_handle_t *h)
{
    sl_upstream_t *up = h->data;
    up->open_handles--;
    up_maybe_free(up);
}

static void pool_remove(sl_upstream_t *up)
{
    sl_worker_t *w = up->w;
    if (up->prev)
        up->prev->next = up->next;
    else
        w->pool = up->next;
    if (up->next)
        up->next->prev = up->prev;
    up->prev = up->next = NULL;
    w->n_pool--;
}

void sl_upstream_close(sl_upstream_t *up)
{
    if (up->state == SL_US_CLOSING)
        return;
    if (up->state == SL_US_IDLE)
        pool_remove(up);
    up->state = SL_US_CLOSING;
    up->c = NULL;
    if (up->tcp_open) {
        up->tcp_open = false;
        uv_close((uv_handle_t *)&up->tcp, up_handle_closed);
    }
    uv_close((uv_handle_t *)&up->timer, up_handle_closed);
    if (up->dns_pending)
        uv_cancel((uv_req_t *)&up->dns_req);
}

/* The upstream failed before a response reached the client: answer with an
 * error (or just close the client if part of a response was sent). */
static void up_fail(sl_upstream_t *up, int status, const char *code, const char *detail)
{
    sl_client_t *c = up->c;
    bool started = up->state == SL_US_BODY || up->state == SL_US_TUNNEL;
    if (c)
        c->up = NULL;
    sl_upstream_close(up);
    if (c == NULL)
        return;
    if (started) {
        sl_warn("request %s: upstream failed mid-response (%s: %s)", c->x.id, code, detail);
        sl_client_close(c);
    } else {
        sl_client_upstream_failed(c, status, code, detail);
    }
}

void sl_upstream_touch(sl_upstream_t *up)
{
    up->last_ms = uv_now(&up->w->loop);
}

static void arm_timer(sl_upstream_t *up, uint64_t ms)
{
    up->last_ms = uv_now(&up->w->loop);
    uv_timer_start(&up->timer, up_timer_cb, ms, 0);
}

static void up_timer_cb(uv_timer_t *t)
{
    sl_upstream_t *up = t->data;
    const sl_config_t *cfg = cfg_of(up);
    uint64_t now = uv_now(&up->w->loop), idle = now - up->last_ms;
    bool sending = up->c && !(up->c->flags & SL_CF_REQ_DONE);
    switch (up->state) {
    case SL_US_DIAL:
        up->timed_out = true;
        up_fail(up, 504, "connect-timeout",
                "the upstream did not accept the connection in time "
                "(timeouts.connect)");
        return;
    case SL_US_TLS:
        up_fail(up, 504, "tls-timeout",
                "the upstream did not finish the TLS handshake in time (timeouts.connect)");
        return;
    case SL_US_HEAD:
        if (!sending) {
            up_fail(up, 504, "response-timeout",
                    "the upstream did not answer in time (timeouts.response_head)");
            return;
        }
        /* still uploading the request body: io_idle applies */
        __attribute__((fallthrough));
    case SL_US_BODY:
    case SL_US_TUNNEL:
        if (idle < cfg->timeouts.io_idle) {
            uv_timer_start(&up->timer, up_timer_cb, cfg->timeouts.io_idle - idle, 0);
            return;
        }
        up_fail(up, 504, "io-timeout", "no data moved for timeouts.io_idle");
        return;
    case SL_US_IDLE:
        sl_upstream_close(up);
        return;
    case SL_US_CLOSING:
        return;
    }
}

static void up_tcp_closed_retry(uv_handle_t *h)
{
    sl_upstream_t *up = h->data;
    up->open_handles--;
    if (up->state == SL_US_DIAL)
        connect_next(up);
    else
        up_maybe_free(up);
}

static void start_tls(sl_upstream_t *up);

static void connect_cb(uv_connect_t *req, int status)
{
    sl_upstream_t *up = req->data;
    if (up->state != SL_US_DIAL)
        return; /* closing (timeout or client gone) */
    if (status == 0) {
        uv_tcp_nodelay(&up->tcp, 1);
        sl_client_t *c = up->c;
        if (c == NULL) {
            sl_upstream_close(up);
            return;
        }
        memcpy(up->peer, c->x.upstream_addr, sizeof up->peer);
        if (c->x.upstream_tls) {
            start_tls(up);
            return;
        }
        up->state = SL_US_HEAD;
        sl_client_upstream_ready(c, up);
        return;
    }
    up->last_error = status;
    up->next_addr++;
    up->tcp_open = false;
    uv_close((uv_handle_t *)&up->tcp, up_tcp_closed_retry);
}

int sl_upstream_send(sl_upstream_t *up, const uv_buf_t *b, unsigned nb)
{
    return sl_io_send((uv_stream_t *)&up->tcp, up->tls, b, nb, sl_upstream_write_cb, up);
}

/* Send whatever the TLS session has for the upstream (handshake, alerts). */
static int flush_tls(sl_upstream_t *up)
{
    return sl_upstream_send(up, NULL, 0);
}

/* Begin TLS to the upstream, verifying its certificate for the name the
 * agent asked for (also when an operator route sends it elsewhere). */
static void start_tls(sl_upstream_t *up)
{
    sl_client_t *c = up->c;
    const sl_target_t *t = &c->x.target;
    up->tls = malloc(sizeof *up->tls);
    if (up->tls == NULL ||
        sl_tls_init(up->tls, sl_policy_upstream_tls(c->x.policy, t), false) != 0) {
        free(up->tls);
        up->tls = NULL;
        up_fail(up, 502, "upstream-tls", "cannot create a TLS session");
        return;
    }
    SSL *ssl = up->tls->ssl;
    if (t->is_literal) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->host);
    } else {
        SSL_set_tlsext_host_name(ssl, t->host);
        SSL_set1_host(ssl, t->host);
    }
    up->state = SL_US_TLS;
    sl_buf_t none = {0};
    if (sl_tls_pump(up->tls, &none) != SL_TLS_OK || flush_tls(up) != 0) {
        sl_buf_free(&none);
        up_fail(up, 502, "upstream-tls", "cannot start the TLS handshake");
        return;
    }
    sl_buf_free(&none);
    sl_upstream_update_reading(up);
}

static void connect_next(sl_upstream_t *up)
{
    if (up->next_addr >= up->n_addrs) {
        char detail[200];
        snprintf(detail, sizeof detail, "could not connect to %s: %s",
                 up->c ? up->c->x.upstream_addr : "upstream", uv_strerror(up->last_error));
        up_fail(up, 502, "connect-failed", detail);
        return;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&up->addrs[up->next_addr];
    if (up->c) {
        sl_ip_t ip;
        uint16_t port;
        char text[64];
        sl_ip_from_sockaddr(sa, &ip, &port);
        sl_ip_format(&ip, text, sizeof text);
        snprintf(up->c->x.upstream_addr, sizeof up->c->x.upstream_addr,
                 ip.family == AF_INET6 ? "[%s]:%u" : "%s:%u", text, port);
    }
    uv_tcp_init(&up->w->loop, &up->tcp);
    up->tcp.data = up;
    up->tcp_open = true;
    up->open_handles++;
    up->connect_req.data = up;
    int r = uv_tcp_connect(&up->connect_req, &up->tcp, sa, connect_cb);
    if (r != 0)
        connect_cb(&up->connect_req, r);
}

/* Add an address that passed the policy check to the list to try. */
static void add_addr(sl_upstream_t *up, const sl_ip_t *ip, uint16_t port)
{
    if (up->n_addrs >= (int)(sizeof up->addrs / sizeof *up->addrs))
        return;
    socklen_t len;
    sl_ip_to_sockaddr(ip, port, &up->addrs[up->n_addrs++], &len);
}

/* The destination passed every address check: connect, or, when the
 * exchange only wanted the check (an intercepted CONNECT), report back. */
static void dial_checked(sl_upstream_t *up)
{
    sl_client_t *c = up->c;
    if (c && c->x.resolve_only) {
        c->up = NULL;
        sl_upstream_close(up);
        sl_client_destination_checked(c);
        return;
    }
    connect_next(up);
}

static void dns_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    sl_upstream_t *up = req->data;
    up->dns_pending = false;
    if (up->state != SL_US_DIAL || up->c == NULL) {
        uv_freeaddrinfo(res);
        if (up->state == SL_US_CLOSING)
            up_maybe_free(up);
        else
            sl_upstream_close(up);
        return;
    }
    sl_client_t *c = up->c;
    if (status < 0) {
        char detail[300];
        snprintf(detail, sizeof detail, "cannot resolve %s: %s", c->x.target.host,
                 uv_strerror(status));
        up_fail(up, 502, "dns-failed", detail);
        return;
    }
    sl_verdict_t first_block = {0};
    uint16_t port = c->x.target.route && c->x.target.route->to_port ? c->x.target.route->to_port
                                                                    : c->x.target.port;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        sl_ip_t ip;
        uint16_t p;
        if (sl_ip_from_sockaddr(ai->ai_addr, &ip, &p) != 0)
            continue;
        sl_verdict_t v;
        memset(&v, 0, sizeof v);
        sl_policy_check_address(c->x.policy, c->x.ident, &c->x.target, &ip, port, &v);
        if (v.blocked) {
            /* One bad answer taints the name: a rebinding attacker mixes them. */
            if (!first_block.blocked)
                first_block = v;
            continue;
        }
        add_addr(up, &ip, port);
    }
    uv_freeaddrinfo(res);
    if (first_block.blocked) {
        c->up = NULL;
        sl_upstream_close(up);
        sl_client_upstream_refused(c, &first_block);
        return;
    }
    if (up->n_addrs == 0) {
        up_fail(up, 502, "dns-failed", "the name resolved to no usable address");
        return;
    }
    dial_checked(up);
}

static void pool_key(sl_client_t *c, char *key, size_t cap)
{
    const sl_target_t *t = &c->x.target;
    snprintf(key, cap, "%llu|%s|%s|%u|%s|%u", (unsigned long long)c->x.policy->generation,
             c->x.upstream_tls ? "tls" : "tcp", t->host, t->port, t->route ? t->route->to_host : "",
             t->route ? t->route->to_port : 0);
}

void sl_upstream_acquire(sl_client_t *c)
{
    sl_worker_t *w = c->w;
    sl_exchange_t *x = &c->x;
    char key[sizeof((sl_upstream_t *)0)->key];
    pool_key(c, key, sizeof key);
    if (!x->is_connect && !x->retried) {
        for (sl_upstream_t *up = w->pool; up; up = up->next) {
            if (strcmp(up->key, key) != 0)
                continue;
            pool_remove(up);
            up->state = SL_US_HEAD;
            up->reused = true;
            uv_timer_stop(&up->timer);
            memcpy(x->upstream_addr, up->peer, sizeof x->upstream_addr);
            sl_client_upstream_ready(c, up);
            return;
        }
    }
    sl_upstream_t *up = calloc(1, sizeof *up);
    if (up == NULL) {
        sl_client_upstream_failed(c, 502, "no-memory", "out of memory");
        return;
    }
    up->w = w;
    up->c = c;
    c->up = up;
    memcpy(up->key, key, sizeof up->key);
    uv_timer_init(&w->loop, &up->timer);
    up->timer.data = up;
    up->open_handles = 1;
    up->state = SL_US_DIAL;
    arm_timer(up, cfg_of(up)->timeouts.connect);

    const sl_target_t *t = &x->target;
    const char *name = t->host;
    uint16_t port = t->port;
    if (t->route) {
        name = t->route->to_host;
        if (t->route->to_port)
            port = t->route->to_port;
    }
    sl_ip_t ip;
    if (t->is_literal && !t->route) {
        add_addr(up, &t->literal, port);
        dial_checked(up);
        return;
    }
    if (sl_ip_parse_literal(name, strlen(name), &ip) == 1) {
        sl_verdict_t v = {0};
        sl_policy_check_address(x->policy, x->ident, t, &ip, port, &v);
        if (v.blocked) {
            c->up = NULL;
            sl_upstream_close(up);
            sl_client_upstream_refused(c, &v);
            return;
        }
        add_addr(up, &ip, port);
        dial_checked(up);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    up->dns_req.data = up;
    up->dns_pending = true;
    char portstr[8];
    snprintf(portstr, sizeof portstr, "%u", port);
    int r = uv_getaddrinfo(&w->loop, &up->dns_req, dns_cb, name, portstr, &hints);
    if (r != 0) {
        up->dns_pending = false;
        up_fail(up, 502, "dns-failed", uv_strerror(r));
    }
}

static void up_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    sl_upstream_t *up = h->data;
    if (up->tls) {
        *buf = uv_buf_init(up->w->scratch, SL_READ_CHUNK);
        return;
    }
    sl_buf_reserve(&up->in, SL_READ_CHUNK);
    *buf = uv_buf_init(up->in.p + up->in.n, (unsigned)(up->in.cap - up->in.n));
}

void sl_upstream_update_reading(sl_upstream_t *up)
{
    bool want = false;
    switch (up->state) {
    case SL_US_IDLE:
    case SL_US_TLS:
        want = true;
        break;
    case SL_US_HEAD:
    case SL_US_BODY:
    case SL_US_TUNNEL: {
        size_t q = up->c ? uv_stream_get_write_queue_size((uv_stream_t *)&up->c->tcp) : 0;
        want = up->reading ? q < SL_WQ_HIGH : q < SL_WQ_LOW;
        break;
    }
    default:
        break;
    }
    if (want && !up->reading) {
        if (uv_read_start((uv_stream_t *)&up->tcp, up_alloc_cb, up_read_cb) == 0)
            up->reading = true;
    } else if (!want && up->reading) {
        uv_read_stop((uv_stream_t *)&up->tcp);
        up->reading = false;
    }
}

void sl_upstream_expect_response(sl_upstream_t *up)
{
    up->state = SL_US_HEAD;
    up->got_bytes = false;
    up->chunk_out = false;
    free(up->chunked);
    up->chunked = NULL;
    drop_redactor(up);
    arm_timer(up, cfg_of(up)->timeouts.io_idle);
    sl_upstream_update_reading(up);
}

void sl_upstream_request_sent(sl_upstream_t *up)
{
    if (up->state == SL_US_HEAD)
        arm_timer(up, cfg_of(up)->timeouts.response_head);
}

void sl_upstream_start_tunnel(sl_upstream_t *up)
{
    up->state = SL_US_TUNNEL;
    arm_timer(up, cfg_of(up)->timeouts.io_idle);
    sl_upstream_update_reading(up);
}

void sl_upstream_release(sl_upstream_t *up, bool reusable)
{
    sl_worker_t *w = up->w;
    up->c = NULL;
    if (!reusable || w->draining || w->n_pool >= POOL_MAX || up->in.n != 0) {
        sl_upstream_close(up);
        return;
    }
    up->state = SL_US_IDLE;
    sl_buf_free(&up->in);
    free(up->chunked);
    up->chunked = NULL;
    up->prev = NULL;
    up->next = w->pool;
    if (w->pool)
        w->pool->prev = up;
    w->pool = up;
    w->n_pool++;
    arm_timer(up, cfg_of(up)->timeouts.upstream_idle);
    sl_upstream_update_reading(up);
}

void sl_upstream_pool_flush(sl_worker_t *w)
{
    while (w->pool)
        sl_upstream_close(w->pool);
}

void sl_upstream_write_cb(uv_write_t *req, int status)
{
    sl_upstream_t *up = req->data;
    sl_io_write_done(req);
    if (up->state == SL_US_CLOSING)
        return;
    if (status < 0) {
        up_fail(up, 502, "upstream-write-failed", uv_strerror(status));
        return;
    }
    if (up->c)
        sl_client_update_reading(up->c);
}

/* Queue bytes to the client; false if the client is gone. */
static bool to_client(sl_upstream_t *up, const uv_buf_t *b, unsigned nb)
{
    sl_client_t *c = up->c;
    uv_buf_t all[8];
    unsigned k = 0;
    /* A pending response head goes out in the same write as the first body
     * bytes: one syscall instead of two for small responses. */
    if (up->out_head.n)
        all[k++] = uv_buf_init(up->out_head.p, (unsigned)up->out_head.n);
    for (unsigned i = 0; i < nb && k < 8; i++)
        all[k++] = b[i];
    size_t n = 0;
    for (unsigned i = 0; i < k; i++)
        n += all[i].len;
    c->x.bytes_out += n;
    int r = sl_client_send(c, all, k);
    sl_buf_reset(&up->out_head);
    if (r != 0) {
        sl_client_close(c);
        return false;
    }
    return true;
}

/* Send a pending response head on its own (no body bytes at hand). */
static bool flush_head(sl_upstream_t *up)
{
    if (up->out_head.n == 0 || up->c == NULL)
        return true;
    return to_client(up, NULL, 0);
}

static void response_complete(sl_upstream_t *up)
{
    if (!flush_head(up))
        return;
    sl_client_t *c = up->c;
    bool reusable =
        up->framing.keep_alive && up->in.n == 0 && (c->flags & SL_CF_REQ_DONE) && !c->x.upgrade;
    c->up = NULL;
    sl_upstream_release(up, reusable);
    sl_client_response_done(c);
}

/* Send response body bytes to the client: through the echo redactor, then
 * framed (chunked when up->chunk_out). `done` ends the body: held-back bytes
 * are flushed and the last chunk and trailers written. */
static bool emit_resp(sl_upstream_t *up, const char *p, size_t n, bool done)
{
    sl_verdict_t v = {0};
    sl_buf_t filt = {0};
    int fr = sl_inspect_response_body(up, p, n, done, &filt, &v);
    if (fr < 0) {
        sl_buf_free(&filt);
        sl_client_t *c = up->c;
        sl_info("request %s: response refused by %s: %s", c->x.id, v.rule, v.reason);
        if (up->out_head.n) {
            /* Nothing reached the agent yet: it gets the refusal instead. */
            sl_buf_reset(&up->out_head);
            c->up = NULL;
            c->flags |= SL_CF_CLOSE_AFTER;
            sl_upstream_close(up);
            sl_client_upstream_refused(c, &v);
        } else {
            c->x.verdict = "block";
            c->x.rule = v.rule;
            c->x.scanner = v.scanner;
            snprintf(c->x.reason, sizeof c->x.reason, "%.200s (response cut off)", v.reason);
            sl_client_close(c);
        }
        return false;
    }
    if (fr != SL_RESP_PASS) {
        p = filt.p;
        n = filt.n;
    }
    if (fr == SL_RESP_END) {
        /* Ended by policy (an SSE event): what was scanned goes out, then
         * the body ends here and neither connection is reused. */
        sl_client_t *c = up->c;
        sl_info("request %s: response ended by %s: %s", c->x.id, v.rule, v.reason);
        c->x.verdict = "block";
        c->x.rule = v.rule;
        c->x.scanner = v.scanner;
        snprintf(c->x.reason, sizeof c->x.reason, "%.200s (response ended)", v.reason);
        c->flags |= SL_CF_CLOSE_AFTER;
        up->framing.keep_alive = false;
        if (up->chunked)
            up->chunked->trailers_len = 0;
        done = true;
    }
    sl_buf_t red = {0};
    if (up->redact && !up->sse) {
        if (n)
            sl_redactor_feed(up->redact, p, n, &red);
        if (done)
            sl_redactor_finish(up->redact, &red);
        p = red.p;
        n = red.n;
    }
    char hex[24];
    uv_buf_t b[6];
    unsigned nb = 0;
    if (n && up->chunk_out) {
        b[nb++] = uv_buf_init(hex, (unsigned)snprintf(hex, sizeof hex, "%zx\r\n", n));
        b[nb++] = uv_buf_init((char *)p, (unsigned)n);
        b[nb++] = uv_buf_init("\r\n", 2);
    } else if (n) {
        b[nb++] = uv_buf_init((char *)p, (unsigned)n);
    }
    if (done && up->chunk_out) {
        b[nb++] = uv_buf_init("0\r\n", 3);
        if (up->chunked)
            b[nb++] = uv_buf_init(up->chunked->trailers, (unsigned)up->chunked->trailers_len);
        b[nb++] = uv_buf_init("\r\n", 2);
    }
    bool ok = nb == 0 || to_client(up, b, nb);
    sl_buf_free(&red);
    sl_buf_free(&filt);
    if (ok && fr == SL_RESP_END) {
        response_complete(up);
        return false;
    }
    return ok;
}

/* Relay response body bytes from up->in. */
static void relay_body(sl_upstream_t *up)
{
    sl_client_t *c = up->c;
    sl_exchange_t *x = &c->x;
    while (up->in.n > 0 && up->state == SL_US_BODY) {
        if (up->framing.kind == SL_H1_BODY_LENGTH) {
            size_t take = up->in.n < up->body_left ? up->in.n : (size_t)up->body_left;
            bool done = take == up->body_left;
            if (!emit_resp(up, up->in.p, take, done))
                return;
            up->body_left -= take;
            sl_buf_consume(&up->in, take);
            if (done) {
                response_complete(up);
                return;
            }
        } else if (up->framing.kind == SL_H1_BODY_CHUNKED) {
            size_t len = up->in.n, used = 0;
            const char *err = NULL;
            if (sl_chunked_decode(up->chunked, up->in.p, &len, &used, &err) != 0) {
                sl_warn("request %s: upstream sent a malformed chunked body (%s)", x->id, err);
                sl_client_close(c);
                return;
            }
            if (!emit_resp(up, up->in.p, len, up->chunked->done))
                return;
            sl_buf_consume(&up->in, used);
            if (up->chunked->done) {
                response_complete(up);
                return;
            }
            if (used == 0)
                break;
        } else { /* until close */
            if (!emit_resp(up, up->in.p, up->in.n, false))
                return;
            sl_buf_reset(&up->in);
        }
    }
    sl_upstream_update_reading(up);
}

/* Build the response head the client gets. */
static void client_head(sl_upstream_t *up, const sl_h1_response_t *res, sl_buf_t *h, bool final)
{
    sl_client_t *c = up->c;
    sl_secret_store_t *store = c->x.policy->secrets;
    sl_buf_appendf(h, "HTTP/1.1 %d ", res->status);
    sl_buf_append_view(h, res->reason);
    sl_buf_append(h, "\r\n", 2);
    for (size_t i = 0; i < res->n_headers; i++) {
        const sl_h1_header_t *f = &res->headers[i];
        if (sl_h1_is_hop_by_hop(f->name, res->headers, res->n_headers)) {
            /* An accepted upgrade keeps its Connection/Upgrade pair. */
            if (!(res->status == 101 &&
                  (sl_view_ieq(f->name, "upgrade") || sl_view_ieq(f->name, "connection"))))
                continue;
        }
        if (final && (up->redact || up->rewrite) && sl_view_ieq(f->name, "content-length"))
            continue; /* redaction may change the length */
        sl_buf_append_view(h, f->name);
        sl_buf_append(h, ": ", 2);
        sl_buf_t red = {0};
        if (store && sl_secret_redact(store, f->value, &red) > 0) {
            sl_warn("request %s: the upstream echoed a secret in header %.*s; redacted", c->x.id,
                    (int)(f->name.n > 64 ? 64 : f->name.n), f->name.p);
            sl_buf_append(h, red.p, red.n);
        } else {
            sl_buf_append_view(h, f->value);
        }
        sl_buf_free(&red);
        sl_buf_append(h, "\r\n", 2);
    }
    if (final) {
        if (up->chunk_out)
            sl_buf_append_str(h, "Transfer-Encoding: chunked\r\n");
        if (c->flags & SL_CF_CLOSE_AFTER)
            sl_buf_append_str(h, "Connection: close\r\n");
    }
    sl_buf_append(h, "\r\n", 2);
}

/* When credentials are configured, every response body is run through the
 * echo redactor. A compressed body cannot be redacted: it is refused when
 * this request carried a secret (fail closed), passed through otherwise.
 * A compressed body is scanned for injection decoded; one that cannot be
 * decoded is refused (inspect.undecodable). Returns -1 after failing the
 * exchange. */
static int setup_redaction(sl_upstream_t *up, const sl_h1_response_t *res)
{
    sl_exchange_t *x = &up->c->x;
    sl_secret_store_t *store = x->policy->secrets;
    if (up->framing.kind != SL_H1_BODY_NONE) {
        sl_verdict_t v = {0};
        if (sl_inspect_response_coding(up, res->headers, res->n_headers, &v) != 0) {
            sl_client_t *c = up->c;
            c->up = NULL;
            c->flags |= SL_CF_CLOSE_AFTER;
            sl_upstream_close(up);
            sl_client_upstream_refused(c, &v);
            return -1;
        }
    }
    if (store == NULL || up->framing.kind == SL_H1_BODY_NONE)
        return 0;
    for (size_t i = 0; i < res->n_headers; i++) {
        if (!sl_view_ieq(res->headers[i].name, "content-encoding") ||
            sl_view_ieq(res->headers[i].value, "identity"))
            continue;
        if (x->sd && x->sd->n_uses > 0) {
            up_fail(up, 502, "secret.response-encoded",
                    "the upstream compressed a response to a request carrying a credential; "
                    "it cannot be checked for an echo of the credential");
            return -1;
        }
        return 0;
    }
    up->redact = malloc(sizeof *up->redact);
    if (up->redact == NULL) {
        up_fail(up, 502, "no-memory", "out of memory");
        return -1;
    }
    sl_redactor_init(up->redact, store);
    return 0;
}

/* Parse response heads from up->in (interim 1xx ones are relayed). */
static void process_response_head(sl_upstream_t *up)
{
    const sl_config_t *cfg = cfg_of(up);
    while (up->state == SL_US_HEAD && up->in.n > 0) {
        sl_client_t *c = up->c;
        sl_h1_header_t hdrs[RESP_HEADERS_CAP];
        sl_h1_response_t res = {.headers = hdrs, .n_headers = RESP_HEADERS_CAP};
        const char *err = NULL;
        size_t scan = up->in.n < cfg->limits.max_head_bytes ? up->in.n : cfg->limits.max_head_bytes;
        int r = sl_h1_parse_response(up->in.p, scan, &res, &err);
        if (r == SL_H1_INCOMPLETE) {
            if (up->in.n >= cfg->limits.max_head_bytes)
                up_fail(up, 502, "bad-response", "upstream response head exceeds the size limit");
            return;
        }
        if (r == SL_H1_BAD) {
            up_fail(up, 502, "bad-response", err);
            return;
        }
        sl_buf_t h = {0};
        if (res.status < 200) {
            bool switching = res.status == 101;
            if (switching && !c->x.upgrade) {
                up_fail(up, 502, "bad-response", "101 Switching Protocols without an upgrade");
                return;
            }
            const char *wserr = NULL;
            if (switching && sl_websocket_start(c, &res, &wserr) != 0) {
                up_fail(up, 502, "websocket-uninspectable", wserr);
                return;
            }
            client_head(up, &res, &h, false);
            uv_buf_t b = uv_buf_init(h.p, (unsigned)h.n);
            bool ok = to_client(up, &b, 1);
            sl_buf_free(&h);
            sl_buf_consume(&up->in, (size_t)r);
            if (!ok)
                return;
            if (switching) {
                /* A WebSocket is relayed frame by frame when c->ws is set
                 * (websocket.c); other upgrades are a tunnel. */
                c->x.status = 101;
                c->x.verdict = "allow";
                c->state = SL_CS_TUNNEL;
                c->flags |= SL_CF_CLOSE_AFTER | SL_CF_REQ_DONE;
                sl_upstream_start_tunnel(up);
                sl_client_update_reading(c);
                if (up->in.n && c->ws) {
                    sl_websocket_from_upstream(up);
                } else if (up->in.n) {
                    uv_buf_t rest = uv_buf_init(up->in.p, (unsigned)up->in.n);
                    if (!to_client(up, &rest, 1))
                        return;
                    sl_buf_reset(&up->in);
                }
                return;
            }
            continue;
        }
        if (sl_h1_response_framing(&res, sl_view(c->x.method, strlen(c->x.method)), &up->framing,
                                   &err) != 0) {
            up_fail(up, 502, "bad-response", err);
            return;
        }
        up->got_bytes = true;
        c->x.status = res.status;
        c->x.verdict = "allow";
        up->binary_body = false;
        for (size_t i = 0; i < res.n_headers; i++)
            if (sl_view_ieq(res.headers[i].name, "content-type"))
                up->binary_body = sl_inspect_binary_type(res.headers[i].value);
        if (setup_redaction(up, &res) != 0)
            return;
        sl_respfilter_head(up, &res);
        up->chunk_out = c->x.client_minor == 1 && up->framing.kind != SL_H1_BODY_UNTIL_CLOSE &&
                        up->framing.kind != SL_H1_BODY_NONE &&
                        (up->framing.kind == SL_H1_BODY_CHUNKED || up->redact || up->rewrite);
        if (up->framing.kind == SL_H1_BODY_UNTIL_CLOSE ||
            (up->framing.kind != SL_H1_BODY_NONE && c->x.client_minor == 0 &&
             (up->framing.kind == SL_H1_BODY_CHUNKED || up->redact || up->rewrite)) ||
            up->w->draining)
            c->flags |= SL_CF_CLOSE_AFTER;
        sl_buf_free(&h);
        client_head(up, &res, &up->out_head, true);
        sl_buf_consume(&up->in, (size_t)r);
        if (up->framing.kind == SL_H1_BODY_NONE) {
            response_complete(up);
            return;
        }
        up->state = SL_US_BODY;
        arm_timer(up, cfg->timeouts.io_idle);
        if (up->framing.kind == SL_H1_BODY_LENGTH) {
            up->body_left = up->framing.length;
            if (up->body_left == 0) {
                response_complete(up);
                return;
            }
        } else if (up->framing.kind == SL_H1_BODY_CHUNKED) {
            up->chunked = malloc(sizeof *up->chunked);
            if (up->chunked == NULL) {
                sl_client_close(c);
                return;
            }
            sl_chunked_init(up->chunked);
        }
        relay_body(up);
        /* With response inspection the head waits for the first body bytes,
         * so a refusal can still replace the whole response; an event stream
         * may idle before its first event, so its head goes out at once. */
        if (up->state == SL_US_BODY &&
            (!(up->w->server->rules && c->x.policy->cfg->inspect.responses) || up->sse))
            flush_head(up);
        return;
    }
}

/* The upstream closed (or failed) its side. */
static void up_on_eof(sl_upstream_t *up, ssize_t nread)
{
    sl_client_t *c = up->c;
    switch (up->state) {
    case SL_US_IDLE:
        sl_upstream_close(up);
        return;
    case SL_US_TLS:
        up_fail(up, 502, "upstream-tls", "the upstream closed the connection during the handshake");
        return;
    case SL_US_HEAD:
        if (up->reused && !up->got_bytes && up->in.n == 0 && c && !c->x.retried &&
            c->x.framing.kind == SL_H1_BODY_NONE) {
            /* The pooled connection went stale under us; try a fresh one. */
            c->x.retried = true;
            c->up = NULL;
            sl_upstream_close(up);
            sl_upstream_acquire(c);
            return;
        }
        up_fail(up, 502, "upstream-closed",
                "the upstream closed the connection before sending a response");
        return;
    case SL_US_BODY:
        if (nread == UV_EOF && up->framing.kind == SL_H1_BODY_UNTIL_CLOSE) {
            up->framing.keep_alive = false;
            if (emit_resp(up, NULL, 0, true))
                response_complete(up);
            return;
        }
        up_fail(up, 502, "upstream-closed", "the upstream closed mid-response");
        return;
    case SL_US_TUNNEL:
        if (c)
            sl_client_response_done(c);
        return;
    default:
        sl_upstream_close(up);
        return;
    }
}

/* Act on plaintext that arrived in up->in. */
static void up_on_data(sl_upstream_t *up)
{
    switch (up->state) {
    case SL_US_IDLE:
        if (up->in.n)
            sl_upstream_close(up); /* an idle upstream must not talk */
        return;
    case SL_US_HEAD:
        if (up->in.n) {
            up->got_bytes = true;
            process_response_head(up);
        }
        return;
    case SL_US_BODY:
        relay_body(up);
        return;
    case SL_US_TUNNEL: {
        if (up->in.n == 0 || up->c == NULL)
            return;
        if (up->c->ws) {
            sl_websocket_from_upstream(up);
            return;
        }
        uv_buf_t b = uv_buf_init(up->in.p, (unsigned)up->in.n);
        if (to_client(up, &b, 1)) {
            sl_buf_reset(&up->in);
            sl_upstream_update_reading(up);
        }
        return;
    }
    default:
        return;
    }
}

static void up_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sl_upstream_t *up = s->data;
    if (up->state == SL_US_CLOSING || nread == 0)
        return;
    if (nread < 0) {
        up_on_eof(up, nread);
        return;
    }
    up->last_ms = uv_now(&up->w->loop);
    if (up->tls == NULL) {
        up->in.n += (size_t)nread;
        up_on_data(up);
        return;
    }
    sl_tls_feed(up->tls, buf->base, (size_t)nread);
    sl_tls_status_t st = sl_tls_pump(up->tls, &up->in);
    if (flush_tls(up) != 0 || st != SL_TLS_OK) {
        char why[256];
        sl_tls_error(up->tls, why, sizeof why);
        up_fail(up, 502, "upstream-tls", why);
        return;
    }
    if (up->state == SL_US_TLS) {
        if (!up->tls->handshaken)
            return;
        up->state = SL_US_HEAD;
        if (up->c == NULL) {
            sl_upstream_close(up);
            return;
        }
        sl_client_upstream_ready(up->c, up);
        return;
    }
    up_on_data(up);
    if (up->state != SL_US_CLOSING && up->tls && up->tls->closed)
        up_on_eof(up, UV_EOF);
}
