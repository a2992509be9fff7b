/* Inspection in the traffic: the detection engine on every surface of an
 * exchange. Outbound: URL (path, query values also joined, host), request
 * header values as the agent sent them (before credential injection, so an
 * injected credential is never flagged but a leaked real one is), the
 * request body. Inbound: the response body (prompt injection).
 *
 * Request bodies are scanned as they stream; the last HOLD bytes are held
 * back until the next chunk has been scanned, so a secret that spans two
 * reads never leaves half-sent. A blocking finding stops the body: the
 * upstream never gets a complete request.
 *
 * Bodies with a Content-Encoding are scanned decoded (src/http/coding.h)
 * while the original bytes are forwarded unchanged; the hold-back then also
 * covers bytes the decoder has not turned into scanned text yet. A body that
 * cannot be decoded is refused unless inspect.undecodable lets it pass for
 * its host. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "http/coding.h"
#include "http/url.h"
#include "policy/hostglob.h"
#include "inspect/inspect.h"
#include "policy/suppress.h"
#include "proxy/history.h"
#include "proxy/internal.h"

#define HOLD 1024

bool sl_inspect_note(sl_exchange_t *x, const sl_finding_t *fd)
{
    int sup = fd->category == SL_CAT_LIMIT
                  ? -1
                  : sl_suppress_match(x->policy->cfg, fd->rule_id, x->target.host);
    char note[96];
    snprintf(note, sizeof note, sup < 0 ? "%s" : "%s:suppressed[%d]", fd->rule_id, sup);
    size_t used = strlen(x->findings);
    if (used + strlen(note) + 2 < sizeof x->findings && !strstr(x->findings, note))
        snprintf(x->findings + used, sizeof x->findings - used, "%s%s", used ? "," : "", note);
    return sup >= 0;
}

/* Turn findings into a decision: the first blocking one refuses; warn
 * findings are noted for the audit event, suppressed ones (inspect.suppress)
 * as "rule:suppressed[N]". Redact is not applied to what leaves (a
 * half-redacted credential is still a leak): it blocks there. Returns true
 * when refused. */
static bool decide(sl_exchange_t *x, const sl_findings_t *f, const char *surface, sl_verdict_t *v)
{
    for (size_t i = 0; i < f->n; i++) {
        const sl_finding_t *fd = &f->v[i];
        if (sl_inspect_note(x, fd) || (fd->action != SL_ACT_BLOCK && fd->action != SL_ACT_REDACT &&
                                       fd->category != SL_CAT_LIMIT))
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

bool sl_inspect_decide(sl_exchange_t *x, const sl_findings_t *f, const char *surface,
                       sl_verdict_t *v)
{
    return decide(x, f, surface, v);
}

/* Note a rule id for the audit event (if not there yet). */
static void note_finding(sl_exchange_t *x, const char *rule)
{
    size_t used = strlen(x->findings);
    if (used + strlen(rule) + 2 < sizeof x->findings && !strstr(x->findings, rule))
        snprintf(x->findings + used, sizeof x->findings - used, "%s%s", used ? "," : "", rule);
}

/* A body that cannot be decoded for inspection (`why`): refused (-1, verdict
 * filled) unless the operator lets undecodable bodies to this host pass (0;
 * audited as an inspection-limit finding). */
static int undecodable(sl_exchange_t *x, const char *what, const char *why, sl_verdict_t *v)
{
    const sl_config_t *cfg = x->policy->cfg;
    bool pass = cfg->inspect.undecodable == SL_UNDECODABLE_PASS;
    for (size_t i = 0; i < cfg->inspect.n_undecodable_pass && !pass; i++)
        pass = sl_hostglob_match(cfg->inspect.undecodable_pass[i],
                                 sl_view(x->target.host, strlen(x->target.host)));
    note_finding(x, "inspection-limit");
    if (pass) {
        sl_info("request %s: the %s cannot be decoded for inspection (%s); passed for %s "
                "(inspect.undecodable)",
                x->id, what, why, x->target.host);
        return 0;
    }
    *v = (sl_verdict_t){.blocked = true, .rule = "inspection-limit", .scanner = "inspect:limit"};
    snprintf(v->reason, sizeof v->reason, "the %s cannot be decoded for inspection: %s", what, why);
    return -1;
}

/* Parse the Content-Encoding fields among `h` and make a decoder for them.
 * Returns 0 (decoder or NULL for identity in *out), or -1 with *why set. */
static int coding_decoder(const sl_exchange_t *x, const sl_h1_header_t *h, size_t n,
                          sl_decoder_t **out, char *why, size_t cap)
{
    sl_coding_list_t cl = {0};
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!sl_view_ieq(h[i].name, "content-encoding"))
            continue;
        const char *err = NULL;
        sl_view_t bad = SL_VIEW_NULL;
        if (sl_coding_parse(h[i].value, &cl, &bad, &err) != 0) {
            snprintf(why, cap, "%s (Content-Encoding: %.40s)", err, h[i].value.p);
            for (char *q = why; *q; q++)
                if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
                    *q = '?';
            return -1;
        }
    }
    if (cl.n == 0)
        return 0;
    const sl_config_t *cfg = x->policy->cfg;
    sl_coding_limits_t lim = {.max_out = cfg->inspect.decode_limit,
                              .max_ratio = cfg->inspect.decode_ratio,
                              .ratio_free = 1024 * 1024};
    if ((*out = sl_decoder_new(&cl, &lim)) == NULL) {
        snprintf(why, cap, "out of memory");
        return -1;
    }
    return 0;
}

bool sl_inspect_request_coding(sl_client_t *c, const sl_h1_header_t *h, size_t n, sl_verdict_t *v)
{
    sl_exchange_t *x = &c->x;
    char why[160];
    if (c->w->server->rules == NULL || x->framing.kind == SL_H1_BODY_NONE)
        return false;
    if (coding_decoder(x, h, n, &x->idecoder, why, sizeof why) == 0)
        return false;
    return undecodable(x, "request body", why, v) != 0;
}

int sl_inspect_response_coding(sl_upstream_t *up, const sl_h1_header_t *h, size_t n,
                               sl_verdict_t *v)
{
    sl_client_t *c = up->c;
    char why[160];
    if (c->w->server->rules == NULL || !c->x.policy->cfg->inspect.responses || up->binary_body)
        return 0;
    if (up->idecoder)
        sl_decoder_free(up->idecoder);
    if (coding_decoder(&c->x, h, n, &up->idecoder, why, sizeof why) == 0)
        return 0;
    if (undecodable(&c->x, "response", why, v) != 0)
        return -1;
    up->binary_body = true; /* passed unscanned: its bytes mean nothing as sent */
    return 0;
}

/* Decoder sink: decoded body bytes into the inspection stream. */
typedef struct decoded_sink {
    sl_inspect_stream_t *st;
    sl_findings_t *f;
    sl_upstream_t *up; /* response: decide binary-or-text on the first bytes */
    sl_exchange_t *x;  /* request: the JSON-RPC gate gets the decoded text too */
} decoded_sink_t;

static bool looks_binary(const char *p, size_t n);

static int to_stream(void *arg, const char *p, size_t n)
{
    decoded_sink_t *s = arg;
    if (s->up && sl_decoder_total_out(s->up->idecoder) == n && looks_binary(p, n)) {
        s->up->binary_body = true;
        return 1;
    }
    if (s->x) {
        /* Up to one byte past the gate's limit, so it sees "too big". */
        size_t cap = sl_rpcgate_plain_cap(s->x), have = s->x->rpcplain.n;
        if (have < cap)
            sl_buf_append(&s->x->rpcplain, p, n < cap - have ? n : cap - have);
    }
    return sl_inspect_stream_feed(s->st, p, n, s->f) < 0 ? 1 : 0;
}

/* Feed body bytes to the inspection stream through the decoder `*dp`.
 * Returns 0, or -1 (verdict filled) when the body cannot be decoded and is
 * refused; when it may pass, the decoder is dropped and the bytes are
 * scanned as sent. */
static int feed_decoded(sl_exchange_t *x, sl_decoder_t **dp, sl_upstream_t *up,
                        sl_inspect_stream_t *st, const char *p, size_t n, bool done,
                        sl_findings_t *f, const char *what, sl_verdict_t *v)
{
    decoded_sink_t s = {st, f, up, up ? NULL : x};
    sl_dec_status_t r = sl_decoder_feed(*dp, p, n, to_stream, &s);
    if (r == SL_DEC_OK && done)
        r = sl_decoder_finish(*dp, to_stream, &s);
    if (r == SL_DEC_OK || r == SL_DEC_STOPPED)
        return 0; /* stopped: a limit finding, or a binary response */
    char why[96];
    snprintf(why, sizeof why, "%s", sl_decoder_error(*dp));
    sl_decoder_free(*dp);
    *dp = NULL;
    if (undecodable(x, what, why, v) != 0)
        return -1;
    if (up)
        up->binary_body = true;
    else if (n)
        sl_inspect_stream_feed(st, p, n, f);
    return 0;
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
    if (!blocked) {
        char where[96];
        sl_findings_reset(&f);
        if (sl_history_request(c, u, fwd, n_fwd, &f, where, sizeof where) != 0)
            blocked = decide(x, &f, where, v);
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
    if (x->idecoder) {
        if (feed_decoded(x, &x->idecoder, NULL, x->istream, p, n, done, &f, "request body", v)) {
            sl_findings_free(&f);
            return -1;
        }
    } else if (n) {
        sl_inspect_stream_feed(x->istream, p, n, &f);
    }
    if (done) {
        sl_inspect_stream_close(x->istream, &f);
        x->istream = NULL;
    }
    bool blocked = decide(x, &f, "request body", v);
    sl_findings_free(&f);
    if (blocked)
        return -1;
    sl_buf_append(&x->ihold, p, n);
    bool hold_all = false;
    if (sl_rpcgate_request_body(c, x->idecoder ? &x->rpcplain : &x->ihold, done, &hold_all, v) != 0)
        return -1;
    if (done && !x->idecoder && x->ihold.n < HOLD) {
        /* Nothing released yet: the whole small body may be a split-secret piece. */
        char where[96];
        sl_findings_reset(&f);
        blocked = sl_history_body(c, x->ihold.p, x->ihold.n, &f, where, sizeof where) != 0 &&
                  decide(x, &f, where, v);
        sl_findings_free(&f);
        if (blocked)
            return -1;
    }
    /* Bytes the decoder has not yet turned into scanned text stay too. */
    size_t keep = HOLD + (x->idecoder ? (size_t)sl_decoder_pending(x->idecoder) : 0);
    size_t release = done ? x->ihold.n : hold_all ? 0 : (x->ihold.n > keep ? x->ihold.n - keep : 0);
    sl_buf_append(out, x->ihold.p, release);
    sl_buf_consume(&x->ihold, release);
    return 0;
}

void sl_inspect_request_done(sl_exchange_t *x)
{
    if (x->istream)
        sl_inspect_stream_close(x->istream, NULL);
    x->istream = NULL;
    sl_decoder_free(x->idecoder);
    x->idecoder = NULL;
    sl_buf_free(&x->ihold);
    sl_buf_free(&x->rpcplain);
    x->rpc = 0;
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
    if (up->idecoder == NULL && up->istream == NULL && n > 0 && looks_binary(p, n)) {
        up->binary_body = true;
        return 0;
    }
    if (up->istream == NULL && (up->istream = sl_inspect_stream_open(
                                    rs, (sl_surface_t)sl_rpcgate_response_surface(c))) == NULL)
        return 0;
    sl_findings_t f = {0};
    if (up->idecoder) {
        if (feed_decoded(&c->x, &up->idecoder, up, up->istream, p, n, done, &f, "response", v)) {
            sl_findings_free(&f);
            return -1;
        }
        if (up->binary_body) {
            sl_findings_free(&f);
            sl_inspect_response_done(up);
            return 0;
        }
    } else if (n) {
        sl_inspect_stream_feed(up->istream, p, n, &f);
    }
    if (done) {
        sl_inspect_stream_close(up->istream, &f);
        up->istream = NULL;
    }
    int r = sl_respfilter_plain(up, &f, p, n, done, out, v);
    sl_findings_free(&f);
    if (r >= 0 && sl_rpcgate_response_body(up, p, n, done, v) != 0)
        r = -1;
    return r;
}

void sl_inspect_response_done(sl_upstream_t *up)
{
    sl_respfilter_free(up);
    if (up->istream)
        sl_inspect_stream_close(up->istream, NULL);
    up->istream = NULL;
    sl_buf_free(&up->card);
    sl_decoder_free(up->idecoder);
    up->idecoder = NULL;
}
