/* The approval gate: requests with side effects to hosts the operator marks
 * wait here until someone approves or denies them through the admin API, or
 * the policy's approval timeout passes. Reads are never held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/log.h"
#include "proxy/internal.h"

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

void sl_approval_hold(sl_client_t *c)
{
    sl_exchange_t *x = &c->x;
    sl_server_t *srv = c->w->server;
    sl_held_t *h = calloc(1, sizeof *h);
    uint64_t timeout = x->ident->rules.cfg->approval.timeout;
    if (timeout == 0)
        timeout = 60000;
    if (h == NULL) {
        sl_verdict_t v = {.blocked = true, .rule = "policy.approval", .scanner = "policy"};
        snprintf(v.reason, sizeof v.reason, "cannot hold the request for approval");
        sl_client_upstream_refused(c, &v);
        return;
    }
    snprintf(h->id, sizeof h->id, "%s", x->id);
    snprintf(h->identity, sizeof h->identity, "%s", x->ident->name);
    snprintf(h->method, sizeof h->method, "%s", x->method);
    snprintf(h->host, sizeof h->host, "%s", x->target.host);
    sl_buf_t path = {0};
    sl_audit_redact_target(&path, sl_view(x->path.p ? x->path.p : "/", x->path.n ? x->path.n : 1));
    snprintf(h->path, sizeof h->path, "%.*s", (int)(path.n > 255 ? 255 : path.n), path.p);
    sl_buf_free(&path);
    h->since_ms = now_ms();
    h->timeout_ms = timeout;
    h->worker = c->w->id;
    pthread_mutex_lock(&srv->lock);
    h->next = srv->held;
    srv->held = h;
    pthread_mutex_unlock(&srv->lock);
    c->state = SL_CS_HELD;
    sl_client_update_reading(c);
    sl_client_arm_approval_timer(c, timeout);
    sl_info("request %s (%s %s%s) held for approval, identity %s, timeout %llu ms", h->id,
            h->method, h->host, h->path, h->identity, (unsigned long long)timeout);
}

/* Remove a held entry by id; returns it (caller frees) or NULL. */
static sl_held_t *take_held(sl_server_t *srv, const char *id)
{
    for (sl_held_t **pp = &srv->held; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->id, id) == 0) {
            sl_held_t *h = *pp;
            *pp = h->next;
            h->next = NULL;
            return h;
        }
    return NULL;
}

void sl_approval_forget(sl_client_t *c)
{
    sl_server_t *srv = c->w->server;
    pthread_mutex_lock(&srv->lock);
    sl_held_t *h = take_held(srv, c->x.id);
    pthread_mutex_unlock(&srv->lock);
    free(h);
}

int sl_approval_decide(sl_server_t *srv, const char *actor, const char *id, bool approve,
                       sl_buf_t *err)
{
    pthread_mutex_lock(&srv->lock);
    sl_held_t *h = take_held(srv, id);
    if (h == NULL) {
        pthread_mutex_unlock(&srv->lock);
        sl_buf_appendf(err, "no request %s is waiting for approval (decided, timed out or gone)",
                       id);
        return -1;
    }
    h->decision = approve ? 1 : -1;
    snprintf(h->actor, sizeof h->actor, "%s", actor ? actor : "admin");
    sl_worker_t *w = &srv->workers[h->worker];
    h->next = w->decided;
    w->decided = h;
    pthread_mutex_unlock(&srv->lock);
    uv_async_send(&w->wake);
    return 0;
}

void sl_approval_list(sl_server_t *srv, sl_buf_t *json)
{
    uint64_t now = now_ms();
    sl_buf_append_str(json, "[");
    pthread_mutex_lock(&srv->lock);
    for (sl_held_t *h = srv->held; h; h = h->next) {
        sl_buf_appendf(json, "%s{\"id\":\"%s\",\"identity\":\"", h == srv->held ? "" : ",", h->id);
        sl_buf_append_json(json, h->identity, strlen(h->identity));
        sl_buf_append_str(json, "\",\"method\":\"");
        sl_buf_append_json(json, h->method, strlen(h->method));
        sl_buf_append_str(json, "\",\"host\":\"");
        sl_buf_append_json(json, h->host, strlen(h->host));
        sl_buf_append_str(json, "\",\"path\":\"");
        sl_buf_append_json(json, h->path, strlen(h->path));
        sl_buf_appendf(json, "\",\"held_ms\":%llu,\"timeout_ms\":%llu}",
                       (unsigned long long)(now - h->since_ms), (unsigned long long)h->timeout_ms);
    }
    pthread_mutex_unlock(&srv->lock);
    sl_buf_append_str(json, "]");
}

void sl_approval_apply(sl_worker_t *w)
{
    pthread_mutex_lock(&w->server->lock);
    sl_held_t *list = w->decided;
    w->decided = NULL;
    pthread_mutex_unlock(&w->server->lock);
    while (list) {
        sl_held_t *h = list;
        list = h->next;
        for (sl_client_t *c = w->clients; c; c = c->next) {
            if (c->state != SL_CS_HELD || strcmp(c->x.id, h->id) != 0)
                continue;
            sl_client_approval_decided(c, h->decision > 0, h->actor);
            break;
        }
        free(h);
    }
}
