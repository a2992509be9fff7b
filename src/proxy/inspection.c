/* Inspection in the traffic: the detection engine on every surface of an
 * exchange. Outbound: URL (path, query values also joined, host), request
 * header values as the agent sent them (before credential injection, so an
 * injected credential is never flagged but a leaked real one is), the
 * request body. Inbound: the response body (prompt injection).
 *
 * Request bodies are scanned as they stream; the last HOLD bytes are held
 * back until the next chunk has been scanned, so a secret that spans two
 * reads never leaves half-sent. A blocking finding stops the body: the
 * upstream never gets a complete request. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "http/url.h"
#include "inspect/inspect.h"
#include "proxy/internal.h"

#define HOLD 1024

void sl_inspect_note(sl_exchange_t *x, const sl_finding_t *fd)
{
    size_t used = strlen(x->findings);
    if (used + strlen(fd->rule_id) + 2 < sizeof x->findings && !strstr(x->findings, fd->rule_id))
        snprintf(x->findings + used, sizeof x->findings - used, "%s%s", used ? "," : "",
                 fd->rule_id);
}

/* Turn findings into a decision: the first blocking one refuses; warn
 * findings are noted for the audit event. Redact is not applied to what
 * leaves (a half-redacted credential is still a leak): it blocks there.
 * Returns true when refused. */
static bool decide(sl_exchange_t *x, const sl_findings_t *f, const char *surface, sl_verdict_t *v)
{
    for (size_t i = 0; i < f->n; i++) {
        const sl_finding_t *fd = &f->v[i];
        sl_inspect_note(x, fd);
        if (fd->action != SL_ACT_BLOCK && fd->action != SL_ACT_REDACT &&
            fd->category != SL_CAT_LIMIT)
            continue;
        v->blocked = true;
        v->rule = fd->rule_id;
        v->scanner = fd->category == SL_CAT_LIMIT        ? "inspect:limit"
                     : fd->category == SL_CAT_CREDENTIAL ? "inspect:credential"
                     : fd->category == SL_CAT_FINANCIAL  ? "inspect:financial"
                     : fd->category == SL_CAT_INJECTION  ? "inspect:injection"
                                                         : "inspect";
        snprintf(v->reason, sizeof v->reason, "%s (%s) found in the %s: %s",
                 sl_category_name(fd->category), sl_severity_name(fd->severity), surface,
                 fd->excerpt);
        return true;
    }
    return false;
}

bool sl_inspect_request_head(sl_client_t *c, const sl_url_t *u, const sl_h1_header_t *fwd,
                             size_t n_fwd, sl_verdict_t *v)
{
    const sl_ruleset_t *rs = c->w->server->rules;
    sl_exchange_t *x = &c->x;
    if (rs == NULL)
        return false;
    sl_findings_t f = {0};
    bool blocked = false;
    sl_inspect_scan(rs, SL_SURF_URL, x->target.host, strlen(x->target.host), &f);
    if (x->path.n)
        sl_inspect_scan(rs, SL_SURF_URL, x->path.p, x->path.n, &f);
    blocked = decide(x, &f, "URL", v);
    if (!blocked && u && u->has_query && u->query.n) {
        /* A secret split over several query values. */
        sl_view_t vals[64];
        size_t nv = 0;
        const char *p = u->query.p, *end = u->query.p + u->query.n;
        while (p < end && nv < 64) {
            const char *amp = memchr(p, '&', (size_t)(end - p));
            const char *seg_end = amp ? amp : end;
            const char *eq = memchr(p, '=', (size_t)(seg_end - p));
            if (eq)
                vals[nv++] = sl_view(eq + 1, (size_t)(seg_end - eq - 1));
            p = amp ? amp + 1 : end;
        }
        sl_findings_reset(&f);
        if (nv > 1)
            sl_inspect_scan_joined(rs, SL_SURF_URL, vals, nv, &f);
        blocked = decide(x, &f, "URL query", v);
    }
    if (!blocked && n_fwd) {
        sl_findings_reset(&f);
        sl_view_t vals[256];
        size_t nv = 0;
        for (size_t i = 0; i < n_fwd && nv < 256; i++)
            vals[nv++] = fwd[i].value;
        sl_inspect_scan_values(rs, SL_SURF_HEADER, vals, nv, &f);
        blocked = decide(x, &f, "request headers", v);
    }
    sl_findings_free(&f);
    return blocked;
}

int sl_inspect_request_body(sl_client_t *c, const char *p, size_t n, bool done, sl_buf_t *out,
                            sl_verdict_t *v)
{
    const sl_ruleset_t *rs = c->w->server->rules;
    sl_exchange_t *x = &c->x;
    if (rs == NULL) {
        sl_buf_append(out, p, n);
        return 0;
    }
    if (x->istream == NULL && (x->istream = sl_inspect_stream_open(rs, SL_SURF_BODY)) == NULL) {
        *v =
            (sl_verdict_t){.blocked = true, .rule = "inspection-limit", .scanner = "inspect:limit"};
        snprintf(v->reason, sizeof v->reason, "cannot inspect the body (out of memory)");
        return -1;
    }
    sl_findings_t f = {0};
    if (n)
        sl_inspect_stream_feed(x->istream, p, n, &f);
    if (done) {
        sl_inspect_stream_close(x->istream, &f);
        x->istream = NULL;
    }
    bool blocked = decide(x, &f, "request body", v);
    sl_findings_free(&f);
    if (blocked)
        return -1;
    sl_buf_append(&x->ihold, p, n);
    size_t release = done ? x->ihold.n : (x->ihold.n > HOLD ? x->ihold.n - HOLD : 0);
    sl_buf_append(out, x->ihold.p, release);
    sl_buf_consume(&x->ihold, release);
    return 0;
}

void sl_inspect_request_done(sl_exchange_t *x)
{
    if (x->istream)
        sl_inspect_stream_close(x->istream, NULL);
    x->istream = NULL;
    sl_buf_free(&x->ihold);
}

/* Prompt injection is text a model will read. Bodies that are not text (an
 * image, an archive, random bytes) are not scanned for it: the media type
 * says so, or the first bytes do (a NUL, or mostly control bytes). */
static bool looks_binary(const char *p, size_t n)
{
    size_t odd = 0, k = n < 512 ? n : 512;
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == 0)
            return true;
        odd += (ch < 0x20 && ch != '\n' && ch != '\r' && ch != '\t' && ch != '\f' && ch != 0x1b) ||
               ch == 0x7f;
    }
    /* UTF-8 text has high bytes too; only control bytes count against it. */
    return k >= 64 && odd * 10 > k;
}

bool sl_inspect_binary_type(sl_view_t ct)
{
    static const char *prefixes[] = {"image/",
                                     "audio/",
                                     "video/",
                                     "font/",
                                     "application/octet-stream",
                                     "application/zip",
                                     "application/gzip",
                                     "application/x-gzip",
                                     "application/x-tar",
                                     "application/wasm"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t l = strlen(prefixes[i]);
        if (ct.n >= l && strncasecmp(ct.p, prefixes[i], l) == 0)
            return true;
    }
    return false;
}

int sl_inspect_response_body(sl_upstream_t *up, const char *p, size_t n, bool done, sl_buf_t *out,
                             sl_verdict_t *v)
{
    sl_client_t *c = up->c;
    const sl_ruleset_t *rs = c->w->server->rules;
    if (up->sse)
        return sl_sse_response(up, p, n, done, out, v);
    if (rs == NULL || !c->x.policy->cfg->inspect.responses || up->binary_body)
        return 0;
    if (up->istream == NULL && n > 0 && looks_binary(p, n)) {
        up->binary_body = true;
        return 0;
    }
    if (up->istream == NULL && (up->istream = sl_inspect_stream_open(rs, SL_SURF_RESPONSE)) == NULL)
        return 0;
    sl_findings_t f = {0};
    if (n)
        sl_inspect_stream_feed(up->istream, p, n, &f);
    if (done) {
        sl_inspect_stream_close(up->istream, &f);
        up->istream = NULL;
    }
    int r = sl_respfilter_plain(up, &f, p, n, done, out, v);
    sl_findings_free(&f);
    return r;
}

void sl_inspect_response_done(sl_upstream_t *up)
{
    sl_respfilter_free(up);
    if (up->istream)
        sl_inspect_stream_close(up->istream, NULL);
    up->istream = NULL;
}
