/* Server-sent events through the proxy: a text/event-stream response is cut
 * into events (src/http/sse.c) and each event is delivered as soon as it is
 * complete and scanned; nothing waits for the next read.
 *
 * Each event's data text (its data lines joined) is scanned on its own, and
 * also across events (stream scanners over the joined texts, plus a block
 * scan of the last TAIL bytes with the new event), so an injection split
 * over several events is found when its last piece arrives. Actions (src/proxy/respfilter.c): block
 * ends the stream with a final `sluice-blocked` event (or a 403 when nothing was sent yet); redact
 * replaces the span in the event's data (the whole data when the event's
 * JSON would no longer parse); warn delivers. Echo redaction of secret
 * values runs per event too, so it never holds an event back. */
#include <stdio.h>
#include <stdlib.h>
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

/* Append the event (raw or with redacted data), echo-redacted. */
static void deliver(sl_upstream_t *up, sl_view_t ev, sl_buf_t *out)
{
    if (up->redact)
        sl_secret_redact(up->redact->store, ev, out);
    else
        sl_buf_append(out, ev.p, ev.n);
}

/* Keys whose string values carry the text of a JSON event: the deltas of
 * LLM streaming APIs and the text parts of MCP/A2A messages. */
static bool text_key(const char *k)
{
    static const char *const keys[] = {"content",  "text",      "delta",       "partial_json",
                                       "thinking", "arguments", "output_text", "reasoning"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

/* Append the string values under text keys of `j` to `out`, in document
 * order; with `marker`, replace them by it instead. */
static void json_text(json_t *j, sl_buf_t *out, const char *marker, int depth)
{
    if (depth > 32)
        return;
    if (json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) json_text(e, out, marker, depth + 1);
        return;
    }
    const char *k;
    json_t *e;
    json_object_foreach(j, k, e)
    {
        if (json_is_string(e) && text_key(k)) {
            if (marker)
                json_string_set(e, marker);
            else
                sl_buf_append(out, json_string_value(e), json_string_length(e));
        } else if (json_is_object(e) || json_is_array(e)) {
            json_text(e, out, marker, depth + 1);
        }
    }
}

/* The event's data as JSON (an object or array), or NULL. */
static json_t *as_json(sl_view_t d)
{
    size_t i = 0;
    while (i < d.n && (d.p[i] == ' ' || d.p[i] == '\t'))
        i++;
    if (i == d.n || (d.p[i] != '{' && d.p[i] != '['))
        return NULL;
    return json_loadb(d.p, d.n, 0, NULL);
}

/* Bytes of earlier events kept to re-scan with each new one. */
#define TAIL 1024

/* Findings of one scan and how they map onto the event. */
typedef struct scan_part {
    const sl_findings_t *f;
    uint64_t base; /* where the event's data (or text) begins in that scan's input */
    bool text;     /* input was the JSON text values: offsets do not map onto the data */
    bool tail;     /* a block scan of TAIL bytes before the event plus the event */
    bool covered;  /* a stream whose short matches ending before `base` a tail scan judged */
} scan_part_t;

/* Decide on one event's findings: part 0 is the event's own scan, the
 * others look across events (what the own scan saw is not counted twice,
 * nor what an earlier event's scan judged). Redact spans go to `spans`, in
 * data offsets; the part of a span before this event is already out. */
static ev_verdict_t judge(sl_exchange_t *x, const scan_part_t *parts, size_t np, size_t dn,
                          sl_findings_t *spans, const char **text_rule, sl_verdict_t *v)
{
    const sl_findings_t *own = parts[0].f;
    for (size_t k = 0; k < np; k++) {
        const scan_part_t *pt = &parts[k];
        uint64_t base = pt->base;
        for (size_t i = 0; i < pt->f->n; i++) {
            sl_finding_t fd = pt->f->v[i];
            bool dup = false;
            for (size_t j = 0; k > 0 && j < own->n && !dup; j++)
                dup = own->v[j].rule_id == fd.rule_id && (fd.start >= base || pt->text);
            if (dup || (pt->tail && fd.end <= base) ||
                (pt->covered && fd.end <= base && fd.end - fd.start <= TAIL))
                continue;
            bool across = fd.start < base;
            bool none_here = fd.end <= base; /* matched up to the end of an earlier event */
            fd.start = across ? 0 : fd.start - base;
            fd.end = fd.end < base ? 0 : fd.end - base;
            fd.end = fd.end > dn ? dn : fd.end;
            if (sl_inspect_note(x, &fd))
                continue; /* suppressed for this host */
            sl_action_t act = sl_respfilter_action(x, &fd);
            if (act == SL_ACT_WARN || act == SL_ACT_OFF)
                continue;
            if (act == SL_ACT_REDACT && pt->text && !none_here) {
                if (*text_rule == NULL)
                    *text_rule = fd.rule_id;
                continue;
            }
            if (act == SL_ACT_REDACT && !none_here) {
                *sl_findings_push(spans) = fd;
                continue;
            }
            sl_respfilter_verdict(
                &fd, across ? "event stream (across events)" : "event stream",
                act == SL_ACT_REDACT ? " (already delivered: cannot redact)" : NULL, v);
            return EV_BLOCK;
        }
    }
    return spans->n || *text_rule ? EV_REDACT : EV_PASS;
}

/* Keep the last TAIL bytes of a joined text. */
static void keep_tail(sl_buf_t *tail, sl_view_t add)
{
    sl_buf_append(tail, add.p, add.n);
    if (tail->n > TAIL)
        sl_buf_consume(tail, tail->n - TAIL);
}

/* Block-scan the tail of the earlier events plus this one, so a match
 * that ends exactly at this event's end is found now (a stream scanner
 * may need the next byte to settle a trailing \b). */
static void tail_scan(const sl_ruleset_t *rs, sl_buf_t *tail, sl_view_t cur, scan_part_t *pt,
                      sl_findings_t *f)
{
    pt->base = tail->n;
    if (tail->n) {
        sl_buf_t both = {0};
        sl_buf_append(&both, tail->p, tail->n);
        sl_buf_append(&both, cur.p, cur.n);
        sl_inspect_scan(rs, SL_SURF_RESPONSE, both.p, both.n, f);
        sl_buf_free(&both);
    }
    keep_tail(tail, cur);
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
    sl_findings_t f[6] = {{0}}, spans = {0};
    /* 0 own; streams: 1 data back to back, 2 data + "\n", 3 JSON text values;
     * tail scans: 4 data back to back, 5 JSON text values. */
    scan_part_t parts[6] = {
        {.f = &f[0]},
        {.f = &f[1], .covered = true},
        {.f = &f[2]},
        {.f = &f[3], .text = true, .covered = true},
        {.f = &f[4], .tail = true},
        {.f = &f[5], .text = true, .tail = true},
    };
    json_t *j = as_json(ev->data);
    sl_buf_t text = {0};
    if (j)
        json_text(j, &text, NULL, 0);
    sl_view_t tv = sl_view(text.p ? text.p : "", text.n);
    sl_inspect_scan(rs, SL_SURF_RESPONSE, ev->data.p, ev->data.n, &f[0]);
    for (int i = 0; i < 3; i++) {
        sl_view_t in = i == 2 ? tv : ev->data;
        if (in.n == 0)
            continue;
        if (rf->st[i] == NULL &&
            (rf->st[i] = sl_inspect_stream_open(rs, SL_SURF_RESPONSE)) == NULL) {
            sl_finding_t *l = sl_findings_push(&f[1 + i]);
            *l = (sl_finding_t){.rule_id = "inspection-limit", .category = SL_CAT_LIMIT};
            snprintf(l->excerpt, sizeof l->excerpt, "out of memory");
            continue;
        }
        parts[1 + i].base = rf->st_off[i];
        sl_inspect_stream_feed(rf->st[i], in.p, in.n, &f[1 + i]);
        rf->st_off[i] += in.n;
        if (i == 1) {
            /* The separator after the data settles a trailing \b now. */
            sl_inspect_stream_feed(rf->st[1], "\n", 1, &f[2]);
            rf->st_off[1]++;
        }
    }
    tail_scan(rs, &rf->tail[0], ev->data, &parts[4], &f[4]);
    if (tv.n)
        tail_scan(rs, &rf->tail[1], tv, &parts[5], &f[5]);
    const char *text_rule = NULL;
    ev_verdict_t r = judge(&c->x, parts, 6, ev->data.n, &spans, &text_rule, v);
    if (r == EV_PASS) {
        deliver(up, ev->raw, out);
    } else if (r == EV_REDACT) {
        sl_buf_t data = {0}, rebuilt = {0};
        const char *rule = spans.n ? spans.v[0].rule_id : text_rule;
        sl_respfilter_redact(ev->data.p, ev->data.n, 0, &spans, &data);
        json_t *red = j ? json_loadb(data.p, data.n, 0, NULL) : NULL;
        if (j && red && text_rule) {
            /* Found in the text values across JSON events: those values go. */
            char marker[160];
            snprintf(marker, sizeof marker, "[sluice:redacted:%s]", text_rule);
            json_text(red, NULL, marker, 0);
            char *dump = json_dumps(red, JSON_COMPACT);
            sl_buf_reset(&data);
            if (dump)
                sl_buf_append_str(&data, dump);
            free(dump);
        }
        if (j && (red == NULL || data.n == 0)) {
            sl_buf_reset(&data);
            sl_buf_appendf(&data, "\"[sluice:redacted:%s]\"", rule);
        }
        json_decref(red);
        sl_sse_rebuild(ev->raw, sl_view(data.p, data.n), rf->events_out == 0, &rebuilt);
        deliver(up, sl_view(rebuilt.p, rebuilt.n), out);
        rf->events_redacted++;
        if (c->x.rule == NULL) {
            c->x.rule = rule;
            c->x.scanner = "inspect:injection";
            snprintf(c->x.reason, sizeof c->x.reason, "%s redacted in the event stream", rule);
        }
        sl_buf_free(&data);
        sl_buf_free(&rebuilt);
    }
    for (int i = 0; i < 6; i++)
        sl_findings_free(&f[i]);
    json_decref(j);
    sl_buf_free(&text);
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
        /* Matches that needed the end of the data report at close. Short
         * ones were judged already (each event's own and tail scans end at
         * the event's end); a longer one finds the events out, so anything
         * but warn ends the stream with the refusal event. */
        sl_findings_t f = {0};
        for (int i = 0; i < 3; i++) {
            sl_inspect_stream_close(rf->st[i], rf->st[i] ? &f : NULL);
            rf->st[i] = NULL;
        }
        bool stop = false;
        for (size_t i = 0; i < f.n && !stop; i++) {
            if (f.v[i].category != SL_CAT_LIMIT && f.v[i].end - f.v[i].start <= TAIL)
                continue;
            if (sl_inspect_note(&c->x, &f.v[i]))
                continue;
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
