/* WebSocket relay: after an accepted upgrade to WebSocket the connection is
 * not a blind tunnel. Frames are parsed in both directions (strict RFC 6455,
 * src/http/ws.h); control frames pass at once; the frames of a data message
 * are held until the message is complete (decompressed when
 * permessage-deflate is in use) and scanned: agent-to-upstream messages for
 * what must not leave (SL_SURF_BODY), upstream-to-agent ones for prompt
 * injection (SL_SURF_RESPONSE, when inspect.responses is on). A message that
 * passes is forwarded as the original frames; otherwise sluice closes the
 * connection both ways: 1008 naming the rule for a blocking finding, 1009 for
 * a message over limits.max_ws_message, 1002 (or 1007) for a protocol error.
 * The exchange's audit event, written when the connection ends, carries the
 * findings and the message counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "core/log.h"
#include "http/ws.h"
#include "inspect/inspect.h"
#include "secrets/inject.h"
#include "secrets/redact.h"
#include "proxy/internal.h"

/* Frame headers of a fragmented message may add this much to what is held
 * beyond the message itself before the message counts as too big. */
#define HELD_SLACK (64 * 1024)

/* An upstream message carrying a credential's real value: HTTP bodies get
 * the value redacted, but a message cannot be rewritten without re-framing
 * (and, under permessage-deflate with context takeover, without breaking the
 * agent's decompressor), so the connection is closed instead. */
static const char RULE_ECHO[] = "secret.echo-not-redactable";

/* One direction of the relay. */
typedef struct ws_side {
    sl_ws_asm_t as;    /* reassembles (and inflates) this direction's messages */
    sl_buf_t held;     /* raw frames of the message being assembled, not yet forwarded */
    uint64_t messages; /* complete messages forwarded */
} ws_side_t;

struct sl_ws_relay {
    sl_ws_ext_t ext;    /* negotiated in the 101 response */
    size_t max_message; /* limits.max_ws_message */
    bool scan_in;       /* scan upstream messages for prompt injection */
    bool done;          /* sluice closed the connection: later input is dropped */
    ws_side_t out;      /* agent to upstream */
    ws_side_t in;       /* upstream to agent */
};

/* Does a header value list the "websocket" protocol? */
static bool names_websocket(sl_view_t v)
{
    static const char tok[] = "websocket";
    for (size_t i = 0; i + sizeof tok - 1 <= v.n; i++)
        if (strncasecmp(v.p + i, tok, sizeof tok - 1) == 0)
            return true;
    return false;
}

/* Did the request head sent upstream ask for WebSocket? */
static bool request_asked_websocket(const sl_buf_t *head)
{
    const char *p = head->p, *end = head->p + head->n;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > 8 && strncasecmp(p, "upgrade:", 8) == 0 &&
            names_websocket(sl_view(p + 8, (size_t)(line_end - p - 8))))
            return true;
        p = eol ? eol + 1 : NULL;
    }
    return false;
}

int sl_websocket_start(sl_client_t *c, const sl_h1_response_t *res, const char **err)
{
    sl_exchange_t *x = &c->x;
    if (c->w->server->rules == NULL)
        return 0; /* inspection is off: the upgrade stays a tunnel */
    bool ws = request_asked_websocket(&x->head);
    sl_view_t exts[8];
    size_t n_ext = 0;
    for (size_t i = 0; i < res->n_headers; i++) {
        const sl_h1_header_t *h = &res->headers[i];
        if (sl_view_ieq(h->name, "upgrade") && names_websocket(h->value))
            ws = true;
        if (sl_view_ieq(h->name, "sec-websocket-extensions")) {
            if (n_ext == sizeof exts / sizeof *exts) {
                *err = "too many Sec-WebSocket-Extensions fields";
                return -1;
            }
            exts[n_ext++] = h->value;
        }
    }
    if (!ws)
        return 0;
    struct sl_ws_relay *r = calloc(1, sizeof *r);
    if (r == NULL) {
        *err = "out of memory";
        return -1;
    }
    if (sl_ws_ext_parse(exts, n_ext, &r->ext, err) != 0) {
        free(r);
        return -1;
    }
    r->max_message = x->policy->cfg->limits.max_ws_message;
    r->scan_in = x->policy->cfg->inspect.responses;
    sl_ws_asm_init(&r->out.as, true, &r->ext, r->max_message);
    sl_ws_asm_init(&r->in.as, false, &r->ext, r->max_message);
    c->ws = r;
    snprintf(x->reason, sizeof x->reason, "websocket%s",
             r->ext.deflate ? " (permessage-deflate)" : "");
    return 0;
}

void sl_websocket_free(sl_client_t *c)
{
    struct sl_ws_relay *r = c->ws;
    if (r == NULL)
        return;
    sl_ws_asm_free(&r->out.as);
    sl_ws_asm_free(&r->in.as);
    sl_buf_free(&r->out.held);
    sl_buf_free(&r->in.held);
    free(r);
    c->ws = NULL;
}

/* Pass bytes on in the direction they were going. False once the
 * connection is closed. */
static bool forward(sl_client_t *c, bool from_client, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int r;
    if (from_client) {
        r = c->up ? sl_upstream_send(c->up, &b, 1) : UV_ENOTCONN;
    } else {
        c->x.bytes_out += n;
        r = sl_client_send(c, &b, 1);
    }
    if (r != 0) {
        sl_client_close(c);
        return false;
    }
    return true;
}

/* End the connection from sluice's side: a close frame with `code` and
 * `close_reason` to both peers (masked toward the upstream, as a client's
 * must be), the exchange's verdict for the audit event, then close once the
 * agent's side is flushed. */
static void terminate(sl_client_t *c, uint16_t code, const char *close_reason, const char *verdict,
                      const char *rule, const char *scanner, const char *why)
{
    sl_exchange_t *x = &c->x;
    c->ws->done = true;
    x->verdict = verdict;
    x->rule = rule;
    x->scanner = scanner;
    snprintf(x->reason, sizeof x->reason, "websocket closed with %u: %.200s", code, why);
    sl_buf_t b = {0};
    uint8_t mask[4];
    if (c->up && RAND_bytes(mask, sizeof mask) == 1) {
        sl_ws_append_close(&b, code, close_reason, mask);
        uv_buf_t u = uv_buf_init(b.p, (unsigned)b.n);
        sl_upstream_send(c->up, &u, 1); /* best effort: the upstream is closed next anyway */
        sl_buf_reset(&b);
    }
    sl_ws_append_close(&b, code, close_reason, NULL);
    uv_buf_t u = uv_buf_init(b.p, (unsigned)b.n);
    x->bytes_out += b.n;
    sl_client_send(c, &u, 1);
    sl_buf_free(&b);
    sl_client_response_done(c);
}

/* A frame or message broke the protocol (or a limit): fail the connection. */
static void fail(sl_client_t *c, bool from_client, uint16_t code, const char *err)
{
    const char *who = from_client ? "agent" : "upstream";
    char why[200];
    snprintf(why, sizeof why, "%s from the %s: %s",
             code == SL_WS_CLOSE_TOO_BIG ? "message too big" : "protocol error", who, err);
    sl_info("request %s: websocket %s", c->x.id, why);
    if (code == SL_WS_CLOSE_TOO_BIG) {
        terminate(c, code, "sluice: message exceeds limits.max_ws_message", "block",
                  "inspection-limit", "inspect:limit", why);
        return;
    }
    char reason[SL_WS_MAX_REASON + 1];
    snprintf(reason, sizeof reason, "sluice: %s", err);
    terminate(c, code, reason, "error", "websocket.protocol-error", "websocket", why);
}

/* A credential's real value in a message: from the agent it is an
 * exfiltration attempt (the sandbox only holds placeholders), from the
 * upstream an echo. True when the message may be forwarded. */
static bool check_secret_values(sl_client_t *c, bool from_client, const sl_buf_t *msg)
{
    const sl_secret_store_t *store = c->x.policy->secrets;
    if (store == NULL || !sl_secret_contains_value(store, sl_view(msg->p ? msg->p : "", msg->n)))
        return true;
    const char *rule = from_client ? SL_SECRET_RULE_REAL_VALUE : RULE_ECHO;
    const char *why = from_client ? "a credential's real value in a WebSocket message from the "
                                    "agent (possible exfiltration attempt)"
                                  : "the upstream echoed a credential's real value in a "
                                    "WebSocket message";
    sl_warn("request %s: %s", c->x.id, why);
    char reason[SL_WS_MAX_REASON + 1];
    snprintf(reason, sizeof reason, "sluice: blocked by %s", rule);
    terminate(c, SL_WS_CLOSE_POLICY, reason, "block", rule, "secrets", why);
    return false;
}

/* Scan one complete message. True when it may be forwarded. */
static bool scan_message(sl_client_t *c, bool from_client, const sl_buf_t *msg)
{
    const sl_ruleset_t *rs = c->w->server->rules;
    if (!check_secret_values(c, from_client, msg))
        return false;
    if (rs == NULL || (!from_client && !c->ws->scan_in))
        return true;
    sl_findings_t f = {0};
    sl_verdict_t v = {0};
    sl_inspect_scan(rs, from_client ? SL_SURF_BODY : SL_SURF_RESPONSE, msg->p ? msg->p : "", msg->n,
                    &f);
    bool blocked = sl_inspect_decide(&c->x, &f,
                                     from_client ? "WebSocket message to the upstream"
                                                 : "WebSocket message from the upstream",
                                     &v);
    sl_findings_free(&f);
    if (!blocked)
        return true;
    sl_info("request %s: websocket message %s refused by %s: %s", c->x.id,
            from_client ? "to the upstream" : "to the agent", v.rule, v.reason);
    char reason[SL_WS_MAX_REASON + 1];
    snprintf(reason, sizeof reason, "sluice: blocked by %s", v.rule);
    terminate(c, SL_WS_CLOSE_POLICY, reason, "block", v.rule, v.scanner, v.reason);
    return false;
}

/* Relay the complete frames at the start of p[0..n) in one direction.
 * Returns the bytes consumed, or -1 once the connection is closing. */
static long relay(sl_client_t *c, bool from_client, const char *p, size_t n)
{
    struct sl_ws_relay *ws = c->ws;
    ws_side_t *s = from_client ? &ws->out : &ws->in;
    size_t used = 0;
    while (used < n) {
        sl_ws_frame_t f;
        uint16_t code = 0;
        const char *err = NULL;
        long r = sl_ws_parse_frame(p + used, n - used, from_client, ws->ext.deflate,
                                   ws->max_message, &f, &code, &err);
        if (r == SL_WS_INCOMPLETE)
            break;
        if (r == SL_WS_BAD) {
            fail(c, from_client, code, err);
            return -1;
        }
        const char *raw = p + used;
        used += (size_t)r;
        if (sl_ws_is_control(f.opcode)) {
            if (f.opcode == SL_WS_OP_CLOSE) {
                char un[125];
                uint16_t status;
                sl_ws_unmask(un, f.payload.p, f.payload.n, f.mask, 0);
                if (sl_ws_check_close(sl_view(un, f.payload.n), &status, &err) != 0) {
                    fail(c, from_client, SL_WS_CLOSE_PROTOCOL, err);
                    return -1;
                }
            }
            /* Control frames may come between a message's fragments. */
            if (!forward(c, from_client, raw, (size_t)r))
                return -1;
            continue;
        }
        if (s->held.n + (size_t)r > ws->max_message + HELD_SLACK) {
            fail(c, from_client, SL_WS_CLOSE_TOO_BIG, "message framing overhead too large");
            return -1;
        }
        int m = sl_ws_asm_add(&s->as, &f, &code, &err);
        if (m < 0) {
            fail(c, from_client, code, err);
            return -1;
        }
        sl_buf_append(&s->held, raw, (size_t)r);
        if (m == 0)
            continue;
        if (!scan_message(c, from_client, &s->as.msg))
            return -1;
        if (!forward(c, from_client, s->held.p, s->held.n))
            return -1;
        s->messages++;
        if (s->held.cap > 256 * 1024)
            sl_buf_free(&s->held);
        else
            sl_buf_reset(&s->held);
        if (s->as.msg.cap > 256 * 1024)
            sl_buf_free(&s->as.msg);
        snprintf(c->x.reason, sizeof c->x.reason,
                 "websocket%s: %llu messages to the upstream, %llu to the agent",
                 ws->ext.deflate ? " (permessage-deflate)" : "",
                 (unsigned long long)ws->out.messages, (unsigned long long)ws->in.messages);
    }
    return (long)used;
}

long sl_websocket_from_client(sl_client_t *c)
{
    if (c->ws->done)
        return (long)c->in.n; /* sluice already closed: nothing more goes out */
    long used = relay(c, true, c->in.p, c->in.n);
    if (used <= 0)
        return used;
    c->x.bytes_in += (uint64_t)used;
    if (c->up)
        sl_upstream_touch(c->up);
    sl_client_update_reading(c);
    return used;
}

void sl_websocket_from_upstream(sl_upstream_t *up)
{
    sl_client_t *c = up->c;
    if (c->ws->done) {
        sl_buf_reset(&up->in);
        return;
    }
    long used = relay(c, false, up->in.p, up->in.n);
    if (used < 0)
        return;
    sl_buf_consume(&up->in, (size_t)used);
    sl_upstream_update_reading(up);
}
