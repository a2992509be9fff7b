/* Server-sent events through the proxy: a text/event-stream response is cut
 * into events (src/http/sse.c) and each event is delivered as soon as it is
 * complete and scanned; nothing waits for the next read.
 *
 * Each event's data text (its data lines joined) is scanned on its own, and
 * the data texts are also fed back to back to one stream scanner, so an
 * injection split over several events is found when its last piece
 * arrives. Actions (src/proxy/respfilter.c): block ends the stream with a
 * final `sluice-blocked` event (or a 403 when nothing was sent yet); redact
 * replaces the span in the event's data (the whole data when the event's
 * JSON would no longer parse); warn delivers. Echo redaction of secret
 * values runs per event too, so it never holds an event back. */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "proxy/internal.h"
#include "proxy/respfilter.h"
#include "secrets/redact.h"

/* What one event's findings decide. */
typedef enum ev_verdict {
    EV_PASS = 0,
    EV_REDACT,
    EV_BLOCK,
} ev_verdict_t;

static bool is_json(const char *p, size_t n)
{
    json_t *j = json_loadb(p, n, JSON_DECODE_ANY, NULL);
    json_decref(j);
    return j != NULL;
}

/* Append the event (raw or with redacted data), echo-redacted. */
static void deliver(sl_upstream_t *up, sl_view_t ev, sl_buf_t *out)
{
    if (up->redact)
        sl_secret_redact(up->redact->store, ev, out);
    else
        sl_buf_append(out, ev.p, ev.n);
}

/* Decide on one event's findings: `one` from the event's own scan (offsets
 * into its data), `across` from the stream scanner (absolute, the event's
 * data starts at `base`). Redact spans go to `spans` (data offsets). */
static ev_verdict_t judge(sl_exchange_t *x, const sl_findings_t *one, const sl_findings_t *across,
                          uint64_t base, size_t dn, sl_findings_t *spans, sl_verdict_t *v)
{
    for (size_t i = 0; i < one->n + across->n; i++) {
        bool own = i < one->n;
        sl_finding_t fd = own ? one->v[i] : across->v[i - one->n];
        if (!own) {
            bool dup = false;
            for (size_t k = 0; k < one->n && !dup; k++)
                dup = one->v[k].rule_id == fd.rule_id && fd.start >= base;
            if (dup)
                continue;
            /* Into this event's data offsets; the part before it is already out. */
            fd.start = fd.start < base ? 0 : fd.start - base;
            fd.end = fd.end < base ? 0 : fd.end - base;
            fd.end = fd.end > dn ? dn : fd.end;
        }
        sl_inspect_note(x, &fd);
        sl_action_t act = sl_respfilter_action(x, &fd);
        if (act == SL_ACT_WARN || act == SL_ACT_OFF)
            continue;
        if (act == SL_ACT_REDACT) {
            *sl_findings_push(spans) = fd;
            continue;
        }
        sl_respfilter_verdict(&fd, own ? "event stream" : "event stream (across events)", NULL, v);
        return EV_BLOCK;
    }
    return spans->n ? EV_REDACT : EV_PASS;
}

/* Scan one event and append what the agent gets to `out`. */
static ev_verdict_t one_event(sl_upstream_t *up, const sl_sse_event_t *ev, sl_buf_t *out,
                              sl_verdict_t *v)
{
    sl_client_t *c = up->c;
    sl_respfilter_t *rf = up->rf;
    const sl_ruleset_t *rs = c->w->server->rules;
    bool scan = rs != NULL && c->x.policy->cfg->inspect.responses;
    if (!scan || !ev->has_data || ev->data.n == 0) {
        deliver(up, ev->raw, out);
        return EV_PASS;
    }
    sl_findings_t one = {0}, across = {0}, spans = {0};
    sl_inspect_scan(rs, SL_SURF_RESPONSE, ev->data.p, ev->data.n, &one);
    if (rf->st == NULL)
        rf->st = sl_inspect_stream_open(rs, SL_SURF_RESPONSE);
    uint64_t base = rf->st_off;
    if (rf->st == NULL) {
        sl_finding_t *l = sl_findings_push(&across);
        *l = (sl_finding_t){.rule_id = "inspection-limit", .category = SL_CAT_LIMIT};
        snprintf(l->excerpt, sizeof l->excerpt, "out of memory");
    } else {
        sl_inspect_stream_feed(rf->st, ev->data.p, ev->data.n, &across);
        rf->st_off += ev->data.n;
    }
    ev_verdict_t r = judge(&c->x, &one, &across, base, ev->data.n, &spans, v);
    if (r == EV_PASS) {
        deliver(up, ev->raw, out);
    } else if (r == EV_REDACT) {
        sl_buf_t data = {0}, rebuilt = {0};
        sl_respfilter_redact(ev->data.p, ev->data.n, 0, &spans, &data);
        if (is_json(ev->data.p, ev->data.n) && !is_json(data.p, data.n)) {
            sl_buf_reset(&data);
            sl_buf_appendf(&data, "\"[sluice:redacted:%s]\"", spans.v[0].rule_id);
        }
        sl_sse_rebuild(ev->raw, sl_view(data.p, data.n), &rebuilt);
        deliver(up, sl_view(rebuilt.p, rebuilt.n), out);
        rf->events_redacted++;
        if (c->x.rule == NULL) {
            c->x.rule = spans.v[0].rule_id;
            c->x.scanner = "inspect:injection";
            snprintf(c->x.reason, sizeof c->x.reason, "%s redacted in the event stream",
                     spans.v[0].rule_id);
        }
        sl_buf_free(&data);
        sl_buf_free(&rebuilt);
    }
    sl_findings_free(&one);
    sl_findings_free(&across);
    sl_findings_free(&spans);
    return r;
}

/* The final event of a stream ended by policy. */
static void blocked_event(const sl_exchange_t *x, const sl_verdict_t *v, sl_buf_t *out)
{
    sl_buf_append_str(out, "event: sluice-blocked\ndata: {\"blocked\":true,\"rule\":\"");
    sl_buf_append_json(out, v->rule, strlen(v->rule));
    sl_buf_append_str(out, "\",\"scanner\":\"");
    sl_buf_append_json(out, v->scanner, strlen(v->scanner));
    sl_buf_append_str(out, "\",\"reason\":\"");
    sl_buf_append_json(out, v->reason, strlen(v->reason));
    sl_buf_append_str(out, "\",\"request_id\":\"");
    sl_buf_append_json(out, x->id, strlen(x->id));
    sl_buf_append_str(out, "\"}\n\n");
}

int sl_sse_response(sl_upstream_t *up, const char *p, size_t n, bool done, sl_buf_t *out,
                    sl_verdict_t *v)
{
    sl_client_t *c = up->c;
    if (up->rf == NULL && (up->rf = calloc(1, sizeof *up->rf)) == NULL)
        goto oom;
    sl_respfilter_t *rf = up->rf;
    if (!rf->split_open) {
        sl_sse_init(&rf->split, 0);
        rf->split_open = true;
    }
    sl_sse_feed(&rf->split, p, n);
    for (;;) {
        sl_sse_event_t ev;
        int r = sl_sse_next(&rf->split, &ev);
        bool last = false;
        if (r == 0 && done) {
            r = sl_sse_finish(&rf->split, &ev);
            last = true;
        }
        if (r < 0) {
            sl_finding_t lim = {.rule_id = "inspection-limit", .category = SL_CAT_LIMIT};
            snprintf(lim.excerpt, sizeof lim.excerpt, "event over %zu bytes", rf->split.max_event);
            sl_inspect_note(&c->x, &lim);
            sl_respfilter_verdict(&lim, "event stream", NULL, v);
            goto block;
        }
        if (r == 0)
            break;
        if (one_event(up, &ev, out, v) == EV_BLOCK)
            goto block;
        rf->events_out++;
        if (last)
            break;
    }
    if (done && rf->st) {
        /* End-anchored matches report at close: the events are out by now,
         * so anything but warn ends the stream with the refusal event. */
        sl_findings_t f = {0};
        sl_inspect_stream_close(rf->st, &f);
        rf->st = NULL;
        bool stop = false;
        for (size_t i = 0; i < f.n && !stop; i++) {
            sl_inspect_note(&c->x, &f.v[i]);
            sl_action_t act = sl_respfilter_action(&c->x, &f.v[i]);
            if (act == SL_ACT_BLOCK || act == SL_ACT_REDACT) {
                sl_respfilter_verdict(&f.v[i], "event stream (at its end)", NULL, v);
                stop = true;
            }
        }
        sl_findings_free(&f);
        if (stop)
            goto block;
    }
    return SL_RESP_OUT;
block:
    if (up->out_head.n && out->n == 0 && rf->events_out == 0)
        return -1; /* nothing sent yet: a plain refusal */
    blocked_event(&c->x, v, out);
    return SL_RESP_END;
oom:
    *v = (sl_verdict_t){.blocked = true, .rule = "inspection-limit", .scanner = "inspect:limit"};
    snprintf(v->reason, sizeof v->reason, "cannot inspect the event stream (out of memory)");
    return -1;
}
