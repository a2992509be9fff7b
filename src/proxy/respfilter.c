/* Response-side actions: what a finding in a response body does.
 *
 *   block   the response is refused (403) when nothing of it was sent yet,
 *           else cut off (SSE: ended with a `sluice-blocked` event);
 *   redact  the offending span is replaced by "[sluice:redacted:RULE]" and
 *           the rest delivered;
 *   warn    delivered, the rule id audited.
 *
 * The action is the rule's (rule files, `inspect: warn/redact/disable`), and
 * `inspect: response_action` re-targets rules whose action is block when
 * they fire on a response. Limits always block.
 *
 * Plain bodies are scanned as they stream and each read is delivered once
 * scanned, so a span can only be replaced while its first byte has not been
 * sent: a body with Content-Length up to SL_RESP_HOLD_MAX is held whole when
 * redaction is possible (any span in it can be replaced); for larger or
 * streamed bodies a span inside one read is replaced, and a span that
 * started in bytes already delivered cuts the response off (fail closed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/sse.h"
#include "proxy/internal.h"
#include "proxy/respfilter.h"

static sl_respfilter_t *filter_of(sl_upstream_t *up)
{
    if (up->rf == NULL && (up->rf = calloc(1, sizeof *up->rf)) == NULL)
        abort();
    return up->rf;
}

void sl_respfilter_free(sl_upstream_t *up)
{
    sl_respfilter_t *rf = up->rf;
    if (rf == NULL)
        return;
    sl_buf_free(&rf->hold);
    sl_buf_free(&rf->tail[0]);
    sl_buf_free(&rf->tail[1]);
    sl_findings_free(&rf->spans);
    if (rf->split_open)
        sl_sse_free(&rf->split);
    for (int i = 0; i < 3; i++)
        if (rf->st[i])
            sl_inspect_stream_close(rf->st[i], NULL);
    free(rf);
    up->rf = NULL;
}

/* Can any response finding be redacted under this policy? */
static bool may_redact(const sl_config_t *cfg, const sl_ruleset_t *rs)
{
    return cfg->inspect.response_action == SL_ACT_REDACT ||
           (sl_ruleset_action_categories(rs, SL_ACT_REDACT) &
            sl_inspect_surface_categories(SL_SURF_RESPONSE)) != 0;
}

void sl_respfilter_head(sl_upstream_t *up, const sl_h1_response_t *res)
{
    sl_client_t *c = up->c;
    const sl_config_t *cfg = c->x.policy->cfg;
    const sl_ruleset_t *rs = c->w->server->rules;
    bool scan = rs != NULL && cfg->inspect.responses;
    sl_respfilter_free(up);
    up->sse = up->rewrite = false;
    /* A content-coded body is scanned decoded but relayed as sent: its
     * bytes cannot be cut into events or redacted (redact blocks there). */
    if (up->framing.kind == SL_H1_BODY_NONE || up->idecoder != NULL)
        return;
    bool sse = false;
    for (size_t i = 0; i < res->n_headers; i++)
        if (sl_view_ieq(res->headers[i].name, "content-type"))
            sse = sl_sse_content_type(res->headers[i].value);
    if (sse && (scan || up->redact)) {
        up->sse = up->rewrite = true;
        return;
    }
    if (!scan || up->binary_body || !may_redact(cfg, rs))
        return;
    up->rewrite = true;
    if (up->framing.kind == SL_H1_BODY_LENGTH && up->framing.length <= SL_RESP_HOLD_MAX)
        filter_of(up)->whole = true;
}

sl_action_t sl_respfilter_action(const sl_exchange_t *x, const sl_finding_t *f)
{
    if (f->category == SL_CAT_LIMIT)
        return SL_ACT_BLOCK;
    if (f->action == SL_ACT_BLOCK)
        return (sl_action_t)x->policy->cfg->inspect.response_action;
    return f->action;
}

static const char *scanner_of(sl_category_t c)
{
    return c == SL_CAT_LIMIT            ? "inspect:limit"
           : c == SL_CAT_INJECTION      ? "inspect:injection"
           : c == SL_CAT_TOOL_POISONING ? "inspect:tool-poisoning"
                                        : "inspect";
}

void sl_respfilter_verdict(const sl_finding_t *f, const char *where, const char *how,
                           sl_verdict_t *v)
{
    v->blocked = true;
    v->rule = f->rule_id;
    v->scanner = scanner_of(f->category);
    snprintf(v->reason, sizeof v->reason, "%s (%s) found in the %s: %s%s",
             sl_category_name(f->category), sl_severity_name(f->severity), where, f->excerpt,
             how ? how : "");
}

/* Remember the first redaction for the audit event (the verdict stays allow). */
static void note_redacted(sl_exchange_t *x, const sl_finding_t *f, const char *where)
{
    if (x->rule != NULL)
        return;
    x->rule = f->rule_id;
    x->scanner = scanner_of(f->category);
    snprintf(x->reason, sizeof x->reason, "%s redacted in the %s", f->rule_id, where);
}

static int by_start(const void *a, const void *b)
{
    const sl_finding_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

void sl_respfilter_redact(const char *p, size_t n, uint64_t base, const sl_findings_t *spans,
                          sl_buf_t *out)
{
    if (spans->n == 0) {
        sl_buf_append(out, p, n);
        return;
    }
    sl_finding_t *v = malloc(spans->n * sizeof *v);
    if (v == NULL)
        abort();
    memcpy(v, spans->v, spans->n * sizeof *v);
    qsort(v, spans->n, sizeof *v, by_start);
    size_t cur = 0;
    for (size_t i = 0; i < spans->n; i++) {
        size_t s = v[i].start < base ? 0 : (size_t)(v[i].start - base);
        size_t e = v[i].end < base ? 0 : (size_t)(v[i].end - base);
        s = s > n ? n : s;
        e = e > n ? n : e;
        if (e <= cur)
            continue; /* inside a span already replaced */
        if (s >= cur) {
            sl_buf_append(out, p + cur, s - cur);
            sl_buf_appendf(out, "[sluice:redacted:%s]", v[i].rule_id);
        }
        cur = e;
    }
    sl_buf_append(out, p + cur, n - cur);
    free(v);
}

int sl_respfilter_plain(sl_upstream_t *up, const sl_findings_t *f, const char *p, size_t n,
                        bool done, sl_buf_t *out, sl_verdict_t *v)
{
    sl_exchange_t *x = &up->c->x;
    sl_respfilter_t *rf = filter_of(up);
    uint64_t base = rf->fed;
    rf->fed += n;
    /* First byte not delivered yet: spans from here on can still be replaced. */
    uint64_t open = rf->whole ? 0 : base;
    sl_findings_t spans = {0};
    int rc = SL_RESP_PASS;
    for (size_t i = 0; i < f->n; i++) {
        const sl_finding_t *fd = &f->v[i];
        if (sl_inspect_note(x, fd))
            continue; /* suppressed for this host */
        sl_action_t act = sl_respfilter_action(x, fd);
        if (act == SL_ACT_WARN || act == SL_ACT_OFF)
            continue;
        if (act == SL_ACT_REDACT && up->idecoder == NULL && fd->start >= open) {
            *sl_findings_push(rf->whole ? &rf->spans : &spans) = *fd;
            note_redacted(x, fd, "response");
            continue;
        }
        sl_respfilter_verdict(fd, "response",
                              act != SL_ACT_REDACT ? NULL
                              : up->idecoder
                                  ? " (content-coded body: cannot redact)"
                                  : " (the span began in bytes already delivered: cannot redact)",
                              v);
        rc = -1;
        goto out;
    }
    if (rf->whole) {
        sl_buf_append(&rf->hold, p, n);
        if (done)
            sl_respfilter_redact(rf->hold.p, rf->hold.n, 0, &rf->spans, out);
        rc = SL_RESP_OUT;
    } else if (spans.n) {
        sl_respfilter_redact(p, n, base, &spans, out);
        rc = SL_RESP_OUT;
    }
out:
    sl_findings_free(&spans);
    return rc;
}
