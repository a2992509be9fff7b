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

/* Findings of one scan with the offset where the event's data begins in
 * that scan's input. */
typedef struct scan_part {
    const sl_findings_t *f;
    uint64_t base;
} scan_part_t;

/* Decide on one event's findings: part 0 is the event's own scan, the
 * others the scanners across events (a finding there that the own scan saw
 * too is not counted twice). Redact spans go to `spans`, in data offsets;
 * the part of a span before this event is already out. */
static ev_verdict_t judge(sl_exchange_t *x, const scan_part_t *parts, size_t np, size_t dn,
                          sl_findings_t *spans, sl_verdict_t *v)
{
    const sl_findings_t *own = parts[0].f;
    for (size_t k = 0; k < np; k++) {
        uint64_t base = parts[k].base;
        for (size_t i = 0; i < parts[k].f->n; i++) {
            sl_finding_t fd = parts[k].f->v[i];
            bool dup = false;
            for (size_t j = 0; k > 0 && j < own->n && !dup; j++)
                dup = own->v[j].rule_id == fd.rule_id && fd.start >= base;
            if (dup)
                continue;
            bool across = fd.start < base;
            fd.start = across ? 0 : fd.start - base;
            fd.end = fd.end < base ? 0 : fd.end - base;
            fd.end = fd.end > dn ? dn : fd.end;
            sl_inspect_note(x, &fd);
            sl_action_t act = sl_respfilter_action(x, &fd);
            if (act == SL_ACT_WARN || act == SL_ACT_OFF)
                continue;
            if (act == SL_ACT_REDACT) {
                *sl_findings_push(spans) = fd;
                continue;
            }
            sl_respfilter_verdict(&fd, across ? "event stream (across events)" : "event stream",
                                  NULL, v);
            return EV_BLOCK;
        }
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
    sl_findings_t f[3] = {{0}}, spans = {0};
    scan_part_t parts[3] = {{&f[0], 0}, {&f[1], 0}, {&f[2], 0}};
    sl_inspect_scan(rs, SL_SURF_RESPONSE, ev->data.p, ev->data.n, &f[0]);
    for (int i = 0; i < 2; i++) {
        if (rf->st[i] == NULL &&
            (rf->st[i] = sl_inspect_stream_open(rs, SL_SURF_RESPONSE)) == NULL) {
            sl_finding_t *l = sl_findings_push(&f[1 + i]);
            *l = (sl_finding_t){.rule_id = "inspection-limit", .category = SL_CAT_LIMIT};
            snprintf(l->excerpt, sizeof l->excerpt, "out of memory");
            continue;
        }
        if (i == 1 && rf->st_off[1] > 0) {
            sl_inspect_stream_feed(rf->st[1], "\n", 1, &f[2]);
            rf->st_off[1]++;
        }
        parts[1 + i].base = rf->st_off[i];
        sl_inspect_stream_feed(rf->st[i], ev->data.p, ev->data.n, &f[1 + i]);
        rf->st_off[i] += ev->data.n;
    }
    ev_verdict_t r = judge(&c->x, parts, 3, ev->data.n, &spans, v);
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
    for (int i = 0; i < 3; i++)
        sl_findings_free(&f[i]);
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
    if (done) {
        /* End-anchored matches report at close: the events are out by now,
         * so anything but warn ends the stream with the refusal event. */
        sl_findings_t f = {0};
        for (int i = 0; i < 2; i++) {
            sl_inspect_stream_close(rf->st[i], rf->st[i] ? &f : NULL);
            rf->st[i] = NULL;
        }
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
