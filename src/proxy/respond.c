/* Responses sluice writes itself. Three kinds that no one can confuse:
 *   403 + X-Sluice-Blocked: a policy or inspection refusal (the agent was
 *       stopped on purpose; the body names the rule and scanner);
 *   502/504 + X-Sluice-Error: the upstream could not be reached or answered
 *       badly (not a block);
 *   400: the request itself is malformed or ambiguous. */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "proxy/internal.h"

static const char *status_text(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 407:
        return "Proxy Authentication Required";
    case 429:
        return "Too Many Requests";
    case 502:
        return "Bad Gateway";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

static void json_field(sl_buf_t *b, const char *key, const char *val, bool last)
{
    sl_buf_appendf(b, "\"%s\":", key);
    if (val == NULL) {
        sl_buf_append_str(b, "null");
    } else {
        sl_buf_append(b, "\"", 1);
        sl_buf_append_json(b, val, strlen(val));
        sl_buf_append(b, "\"", 1);
    }
    if (!last)
        sl_buf_append(b, ",", 1);
}

/* Write a complete response with a JSON body. */
static void respond(sl_client_t *c, int status, const char *hdr_name, const char *hdr_value,
                    sl_buf_t *body)
{
    sl_exchange_t *x = &c->x;
    sl_buf_t head = {0};
    bool close = (c->flags & SL_CF_CLOSE_AFTER) || c->w->draining;
    sl_buf_appendf(&head,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\nX-Sluice-Request-Id: %s\r\n",
                   status, status_text(status), body->n, x->id);
    if (hdr_name)
        sl_buf_appendf(&head, "%s: %s\r\n", hdr_name, hdr_value);
    if (status == 407)
        sl_buf_append_str(&head, "Proxy-Authenticate: Basic realm=\"sluice\"\r\n");
    if (close)
        sl_buf_append_str(&head, "Connection: close\r\n");
    sl_buf_append(&head, "\r\n", 2);
    uv_buf_t b[2] = {uv_buf_init(head.p, (unsigned)head.n),
                     uv_buf_init(body->p, (unsigned)body->n)};
    unsigned nb = x->is_head ? 1 : 2;
    x->status = status;
    x->bytes_out += head.n + (nb == 2 ? body->n : 0);
    if (c->state != SL_CS_CLOSING && sl_client_send(c, b, nb) != 0)
        c->flags |= SL_CF_CLOSE_AFTER;
    sl_buf_free(&head);
    sl_buf_free(body);
}

void sl_respond_refusal(sl_client_t *c, const sl_verdict_t *v)
{
    sl_exchange_t *x = &c->x;
    x->verdict = "block";
    x->rule = v->rule;
    x->scanner = v->scanner;
    snprintf(x->reason, sizeof x->reason, "%s", v->reason);
    sl_buf_t body = {0};
    sl_buf_append_str(&body, "{\"blocked\":true,");
    json_field(&body, "rule", v->rule, false);
    json_field(&body, "scanner", v->scanner, false);
    json_field(&body, "reason", v->reason, false);
    json_field(&body, "request_id", x->id, true);
    sl_buf_append_str(&body, "}\n");
    sl_info("request %s blocked by %s: %s", x->id, v->rule, v->reason);
    int status = x->status == 407 || x->status == 429 ? x->status : 403;
    respond(c, status, "X-Sluice-Blocked", v->rule, &body);
}

void sl_respond_upstream_error(sl_client_t *c, int status, const char *code, const char *detail)
{
    sl_exchange_t *x = &c->x;
    x->verdict = "error";
    x->rule = NULL;
    snprintf(x->reason, sizeof x->reason, "%s: %s", code, detail);
    sl_buf_t body = {0};
    sl_buf_append_str(&body, "{\"error\":\"upstream\",");
    json_field(&body, "reason", code, false);
    json_field(&body, "detail", detail, false);
    json_field(&body, "request_id", x->id, true);
    sl_buf_append_str(&body, "}\n");
    sl_info("request %s: upstream error %s: %s", x->id, code, detail);
    respond(c, status, "X-Sluice-Error", code, &body);
}

void sl_respond_bad_request(sl_client_t *c, const char *reason)
{
    sl_exchange_t *x = &c->x;
    c->flags |= SL_CF_CLOSE_AFTER;
    x->verdict = "block";
    x->rule = "http.bad-request";
    x->scanner = "http";
    snprintf(x->reason, sizeof x->reason, "%s", reason);
    sl_buf_t body = {0};
    sl_buf_append_str(&body, "{\"error\":\"bad_request\",");
    json_field(&body, "reason", reason, false);
    json_field(&body, "request_id", x->id, true);
    sl_buf_append_str(&body, "}\n");
    sl_debug("request %s rejected: %s", x->id, reason);
    respond(c, 400, "X-Sluice-Error", "bad-request", &body);
}
