/* Request rewriting decisions for credential injection. */
#include "secrets/inject.h"

#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "secrets/codec.h"
#include "secrets/store-t.h"

const char SL_SECRET_RULE_OUT_OF_SCOPE[] = "secret.out-of-scope";
const char SL_SECRET_RULE_REAL_VALUE[] = "secret.real-value-from-sandbox";
const char SL_SECRET_RULE_REQUIRED_MISSING[] = "secret.required-missing";
const char SL_SECRET_RULE_BODY_ENCODED[] = "secret.body-encoded";

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

/* Keep a buffer that holds (or may hold) a real value: wiped on free. */
static char *own(sl_secret_decision_t *d, sl_buf_t *b)
{
    d->_owned = realloc(d->_owned, (d->_n_owned + 1) * sizeof *d->_owned);
    d->_owned_n = realloc(d->_owned_n, (d->_n_owned + 1) * sizeof *d->_owned_n);
    if (d->_owned == NULL || d->_owned_n == NULL)
        abort();
    sl_buf_reserve(b, 1);
    d->_owned[d->_n_owned] = b->p;
    d->_owned_n[d->_n_owned] = b->cap;
    d->_n_owned++;
    char *p = b->p;
    *b = (sl_buf_t){0};
    return p;
}

/* Wipe a scratch buffer that may have held a value, and free it. */
static void wipe_buf(sl_buf_t *b)
{
    if (b->p != NULL)
        explicit_bzero(b->p, b->cap);
    sl_buf_free(b);
}

/* ---- encodings (codec.h into growable buffers) ------------------------ */

/* Percent-decode v into out; false if v has no '%'. */
static bool pct_decode(sl_view_t v, sl_buf_t *out)
{
    size_t n;
    sl_buf_reserve(out, v.n + 1);
    if (!sl_secret_pct_decode(v, out->p + out->n, &n))
        return false;
    out->n += n;
    return true;
}

static void pct_encode(const unsigned char *p, size_t n, sl_buf_t *out)
{
    sl_buf_reserve(out, SL_SECRET_PCT_LEN(n) + 1);
    out->n += sl_secret_pct_encode(p, n, out->p + out->n);
}

static void b64_encode(const unsigned char *p, size_t n, sl_buf_t *out)
{
    sl_buf_reserve(out, SL_SECRET_B64_LEN(n) + 1);
    out->n += sl_secret_b64_encode(p, n, out->p + out->n);
}

static bool b64_decode(sl_view_t v, sl_buf_t *out)
{
    size_t n;
    sl_buf_reserve(out, v.n / 4 * 3 + 1);
    if (!sl_secret_b64_decode(v, out->p + out->n, &n))
        return false;
    out->n += n;
    return true;
}

/* The credentials of "Basic <token>" (scheme case-insensitive), or empty. */
static sl_view_t basic_token(const sl_h1_header_t *h)
{
    if (!sl_view_ieq(h->name, "authorization") || h->value.n < 7 ||
        strncasecmp(h->value.p, "basic ", 6) != 0)
        return SL_VIEW_NULL;
    sl_view_t t = sl_view(h->value.p + 6, h->value.n - 6);
    while (t.n > 0 && t.p[0] == ' ') {
        t.p++;
        t.n--;
    }
    return t;
}

/* ---- scope ------------------------------------------------------------- */

/* The policy rules' path syntax: a glob (fnmatch, '*' crosses '/') when the
 * pattern has a '*', else a prefix. Paths too long to copy never match. */
static bool path_match(const char *pattern, sl_view_t path)
{
    char buf[2048];
    if (!strchr(pattern, '*'))
        return path.n >= strlen(pattern) && memcmp(path.p, pattern, strlen(pattern)) == 0;
    if (path.n >= sizeof buf)
        return false;
    memcpy(buf, path.p, path.n);
    buf[path.n] = '\0';
    return fnmatch(pattern, buf, 0) == 0;
}

/* A path whose meaning a server might change by normalising it (dot
 * segments, encoded '/', '.' or '\') never matches a path scope. */
static bool path_ambiguous(sl_view_t p)
{
    if (p.n == 0 || p.p[0] != '/')
        return true;
    for (size_t i = 0; i < p.n; i++) {
        char c = p.p[i];
        if (c == '\\')
            return true;
        if (c == '%' && i + 2 < p.n) {
            char a = p.p[i + 1], b = (char)(p.p[i + 2] | 0x20);
            if ((a == '2' && (b == 'e' || b == 'f')) || (a == '5' && b == 'c'))
                return true;
        }
        if (c == '/' && i + 1 < p.n) {
            size_t e = i + 1;
            while (e < p.n && p.p[e] != '/')
                e++;
            size_t seg = e - i - 1;
            if (seg == 0 || (seg == 1 && p.p[i + 1] == '.') ||
                (seg == 2 && p.p[i + 1] == '.' && p.p[i + 2] == '.'))
                return true;
        }
    }
    return false;
}

static bool list_has(char *const *v, size_t n, sl_view_t x)
{
    for (size_t i = 0; i < n; i++)
        if (sl_view_eq(x, v[i]))
            return true;
    return false;
}

/* NULL when secret `s` may go with this request, else the failing dimension. */
static const char *out_of_scope(const sl_secret_t *s, const sl_secret_req_t *r)
{
    if (r->host.n == 0 || sl_hostset_match(s->hosts, r->host, NULL) < 0)
        return "host";
    if (s->cfg.n_methods > 0 && !list_has(s->cfg.methods, s->cfg.n_methods, r->method))
        return "method";
    if (s->cfg.n_paths > 0) {
        bool ok = false;
        sl_view_t p = r->path.n ? r->path : SL_VIEW_LIT("/");
        for (size_t i = 0; !ok && i < s->cfg.n_paths && !path_ambiguous(p); i++)
            ok = path_match(s->cfg.paths[i], p);
        if (!ok)
            return "path";
    }
    if (s->cfg.n_identities > 0 && !list_has(s->cfg.identities, s->cfg.n_identities, r->identity))
        return "identity";
    return NULL;
}

/* ---- decision ---------------------------------------------------------- */

static void refuse(sl_secret_decision_t *d, const char *rule, const char *secret,
                   const char *dimension, bool high, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void refuse(sl_secret_decision_t *d, const char *rule, const char *secret,
                   const char *dimension, bool high, const char *fmt, ...)
{
    d->refused = true;
    d->rule = rule;
    d->secret = secret;
    d->dimension = dimension;
    d->high_severity = high;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
}

/* Scan one view raw and percent-decoded for every value and placeholder. */
static void detect(const sl_secret_store_t *s, sl_view_t v, bool decode, sl_smatch_hits_t *hits)
{
    if (v.n == 0)
        return;
    sl_smatch_apply(s->m, s->detect, v.p, v.n, NULL, hits);
    sl_buf_t dec = {0};
    if (decode && pct_decode(v, &dec))
        sl_smatch_apply(s->m, s->detect, dec.p, dec.n, NULL, hits);
    wipe_buf(&dec);
}

static void add_use(sl_secret_decision_t *d, const sl_secret_t *sec, const char *where,
                    sl_view_t hname, bool injected)
{
    d->uses = realloc(d->uses, (d->n_uses + 1) * sizeof *d->uses);
    if (d->uses == NULL)
        abort();
    sl_secret_use_t *u = &d->uses[d->n_uses++];
    memset(u, 0, sizeof *u);
    u->name = sec->cfg.name;
    u->injected = injected;
    if (hname.n > 0)
        snprintf(u->where, sizeof u->where, "%s:%.*s", where, (int)(hname.n > 64 ? 64 : hname.n),
                 hname.p);
    else
        snprintf(u->where, sizeof u->where, "%s", where);
}

/* Replace in `v` with actions `act`; on a change store the new text in the
 * decision, point *v at it and record the uses. Returns true if changed. */
static bool rewrite(sl_secret_decision_t *d, const sl_smatch_act_t *act, sl_view_t *v,
                    const char *where, sl_view_t hname)
{
    const sl_secret_store_t *s = d->_store;
    sl_buf_t out = {0};
    sl_smatch_hits_t hits = {0};
    if (sl_smatch_apply(s->m, act, v->p, v->n, &out, &hits) == 0) {
        wipe_buf(&out);
        return false;
    }
    size_t n = out.n;
    v->p = own(d, &out);
    v->n = n;
    for (size_t i = 0; i < s->n; i++)
        if (sl_smatch_hit(&hits, s->n + i))
            add_use(d, &s->sec[i], where, hname, false);
    return true;
}

/* Basic credentials: decode, replace, re-encode. */
static bool rewrite_basic(sl_secret_decision_t *d, const sl_smatch_act_t *act, sl_h1_header_t *h,
                          sl_view_t token)
{
    const sl_secret_store_t *s = d->_store;
    sl_buf_t dec = {0}, rep = {0}, val = {0};
    sl_smatch_hits_t hits = {0};
    bool changed = false;
    if (!b64_decode(token, &dec) ||
        sl_smatch_apply(s->m, act, dec.p ? dec.p : "", dec.n, &rep, &hits) == 0)
        goto out;
    sl_buf_append(&val, h->value.p, (size_t)(token.p - h->value.p));
    b64_encode((const unsigned char *)rep.p, rep.n, &val);
    size_t n = val.n;
    h->value.p = own(d, &val);
    h->value.n = n;
    for (size_t i = 0; i < s->n; i++)
        if (sl_smatch_hit(&hits, s->n + i))
            add_use(d, &s->sec[i], "header", h->name, false);
    changed = true;
out:
    wipe_buf(&dec);
    wipe_buf(&rep);
    wipe_buf(&val);
    return changed;
}

static bool has_header(const sl_h1_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (sl_view_ieq(h[i].name, name))
            return true;
    return false;
}

static void push_header(sl_secret_decision_t *d, size_t *cap, sl_view_t name, sl_view_t value)
{
    if (d->n_headers == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        d->headers = realloc(d->headers, *cap * sizeof *d->headers);
        if (d->headers == NULL)
            abort();
    }
    d->headers[d->n_headers++] = (sl_h1_header_t){name, value};
}

void sl_secret_decide(sl_secret_store_t *s, const sl_secret_req_t *req, sl_secret_decision_t *d)
{
    memset(d, 0, sizeof *d);
    d->path = req->path;
    d->query = req->query;
    d->has_query = req->has_query;
    size_t cap = req->n_headers + 2;
    d->headers = xcalloc(cap, sizeof *d->headers);
    if (req->n_headers > 0)
        memcpy(d->headers, req->headers, req->n_headers * sizeof *d->headers);
    d->n_headers = req->n_headers;
    if (s == NULL || s->n == 0)
        return;
    d->_store = sl_secret_store_ref(s);
    size_t n = s->n;

    /* Where is every value and placeholder? Headers (names, values, Basic
     * credentials), path and query, raw and percent-decoded. */
    sl_smatch_hits_t hits = {0};
    for (size_t i = 0; i < req->n_headers; i++) {
        const sl_h1_header_t *h = &req->headers[i];
        detect(s, h->name, false, &hits);
        detect(s, h->value, true, &hits);
        sl_view_t tok = basic_token(h);
        sl_buf_t dec = {0};
        if (tok.n > 0 && b64_decode(tok, &dec))
            detect(s, sl_view(dec.p ? dec.p : "", dec.n), true, &hits);
        wipe_buf(&dec);
    }
    /* A value in the host name leaks through DNS before any byte is sent. */
    detect(s, req->host, false, &hits);
    detect(s, req->method, false, &hits);
    detect(s, req->identity, false, &hits);
    detect(s, req->path, true, &hits);
    detect(s, req->query, true, &hits);

    for (size_t i = 0; i < n; i++)
        if (sl_smatch_hit(&hits, i)) {
            refuse(d, SL_SECRET_RULE_REAL_VALUE, s->sec[i].cfg.name, NULL, true,
                   "the request carries the real value of secret '%s'; the sandbox must only "
                   "hold its placeholder (the credential may have leaked: rotate it)",
                   s->sec[i].cfg.name);
            return;
        }

    const char **dim = xcalloc(n, sizeof *dim);
    for (size_t i = 0; i < n; i++) {
        dim[i] = out_of_scope(&s->sec[i], req);
        if (dim[i] != NULL && sl_smatch_hit(&hits, n + i)) {
            refuse(d, SL_SECRET_RULE_OUT_OF_SCOPE, s->sec[i].cfg.name, dim[i], true,
                   "the placeholder of secret '%s' was sent out of its scope (%s not allowed)",
                   s->sec[i].cfg.name, dim[i]);
            free(dim);
            return;
        }
    }

    /* Replacement actions per location: placeholder -> value (percent-encoded
     * in the URL) for in-scope secrets that allow the location. */
    sl_smatch_act_t *act_h = xcalloc(s->n_pat, sizeof *act_h);
    sl_smatch_act_t *act_p = xcalloc(s->n_pat, sizeof *act_p);
    sl_smatch_act_t *act_q = xcalloc(s->n_pat, sizeof *act_q);
    d->_body_act = xcalloc(s->n_pat, sizeof *d->_body_act);
    d->_pending = xcalloc(n, sizeof *d->_pending);
    for (size_t i = 0; i < n; i++) {
        const sl_secret_t *sec = &s->sec[i];
        unsigned in = dim[i] == NULL ? sec->cfg.replace_in : 0;
        /* Real values always refuse in a body; placeholders out of scope too. */
        d->_body_act[i] = (sl_smatch_act_t){SL_SM_FLAG, NULL, 0};
        if (dim[i] != NULL)
            d->_body_act[n + i] = (sl_smatch_act_t){SL_SM_FLAG, NULL, 0};
        else if (in & SL_SECRET_IN_BODY)
            d->_body_act[n + i] = (sl_smatch_act_t){SL_SM_REPLACE, sec->value, sec->value_n};
        if (in & SL_SECRET_IN_HEADERS)
            act_h[n + i] = (sl_smatch_act_t){SL_SM_REPLACE, sec->value, sec->value_n};
        if ((in & (SL_SECRET_IN_PATH | SL_SECRET_IN_QUERY)) != 0 && sl_smatch_hit(&hits, n + i)) {
            sl_buf_t enc = {0};
            pct_encode(sec->value, sec->value_n, &enc);
            size_t en = enc.n;
            const unsigned char *ep = (const unsigned char *)own(d, &enc);
            if (in & SL_SECRET_IN_PATH)
                act_p[n + i] = (sl_smatch_act_t){SL_SM_REPLACE, ep, en};
            if (in & SL_SECRET_IN_QUERY)
                act_q[n + i] = (sl_smatch_act_t){SL_SM_REPLACE, ep, en};
        }
    }
    d->body_filter = true;

    for (size_t i = 0; i < d->n_headers; i++) {
        sl_h1_header_t *h = &d->headers[i];
        sl_view_t tok = basic_token(h);
        if (tok.n > 0 && rewrite_basic(d, act_h, h, tok))
            continue;
        rewrite(d, act_h, &h->value, "header", h->name);
    }
    rewrite(d, act_p, &d->path, "path", SL_VIEW_NULL);
    if (d->has_query)
        rewrite(d, act_q, &d->query, "query", SL_VIEW_NULL);

    /* Injection from the template where the header is missing. */
    size_t n_req_headers = d->n_headers;
    for (size_t i = 0; i < n; i++) {
        const sl_secret_t *sec = &s->sec[i];
        if (dim[i] != NULL || sec->cfg.inject_header == NULL ||
            has_header(d->headers, n_req_headers, sec->cfg.inject_header) ||
            has_header(d->headers, d->n_headers, sec->cfg.inject_header))
            continue;
        const char *t = sec->cfg.inject_template;
        const char *at = strstr(t, "{secret}");
        sl_buf_t v = {0};
        sl_buf_append(&v, t, (size_t)(at - t));
        sl_buf_append(&v, sec->value, sec->value_n);
        sl_buf_append_str(&v, at + 8);
        size_t vn = v.n;
        const char *vp = own(d, &v);
        sl_view_t name = sl_view(sec->cfg.inject_header, strlen(sec->cfg.inject_header));
        push_header(d, &cap, name, sl_view(vp, vn));
        add_use(d, sec, "header", name, true);
    }

    for (size_t i = 0; i < n; i++) {
        const sl_secret_t *sec = &s->sec[i];
        if (dim[i] != NULL || !sec->cfg.require)
            continue;
        bool used = false;
        for (size_t u = 0; u < d->n_uses && !used; u++)
            used = d->uses[u].name == sec->cfg.name;
        if (used)
            continue;
        if (sec->cfg.replace_in & SL_SECRET_IN_BODY) {
            d->_pending[i] = true;
            continue;
        }
        refuse(d, SL_SECRET_RULE_REQUIRED_MISSING, sec->cfg.name, NULL, false,
               "secret '%s' is required for this destination and the request does not use "
               "its placeholder; the agent must not bring credentials of its own",
               sec->cfg.name);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (d->_body_act[n + i].kind == SL_SM_REPLACE)
            d->body_replace = true;

    /* An echo can only be redacted in a body sluice can read. */
    if (d->n_uses > 0) {
        size_t i = 0;
        while (i < d->n_headers && !sl_view_ieq(d->headers[i].name, "accept-encoding"))
            i++;
        if (i < d->n_headers)
            d->headers[i].value = SL_VIEW_LIT("identity");
        else
            push_header(d, &cap, SL_VIEW_LIT("Accept-Encoding"), SL_VIEW_LIT("identity"));
    }
    d->changed = d->n_uses > 0 || d->n_headers != req->n_headers;
out:
    free(act_h);
    free(act_p);
    free(act_q);
    free(dim);
}

void sl_secret_decision_free(sl_secret_decision_t *d)
{
    for (size_t i = 0; i < d->_n_owned; i++) {
        explicit_bzero(d->_owned[i], d->_owned_n[i]);
        free(d->_owned[i]);
    }
    free(d->_owned);
    free(d->_owned_n);
    free(d->headers);
    free(d->uses);
    free(d->_body_act);
    free(d->_pending);
    sl_secret_store_unref(d->_store);
    memset(d, 0, sizeof *d);
}

bool sl_secret_body_encoding_ok(const sl_secret_decision_t *d, sl_view_t ce)
{
    if (!d->body_replace)
        return true;
    while (ce.n > 0 && (ce.p[0] == ' ' || ce.p[0] == '\t')) {
        ce.p++;
        ce.n--;
    }
    while (ce.n > 0 && (ce.p[ce.n - 1] == ' ' || ce.p[ce.n - 1] == '\t'))
        ce.n--;
    return ce.n == 0 || sl_view_ieq(ce, "identity");
}

/* ---- body filter ------------------------------------------------------- */

void sl_secret_body_init(sl_secret_body_t *b, const sl_secret_decision_t *d)
{
    memset(b, 0, sizeof *b);
    b->d = d;
    if (d->_store != NULL)
        sl_smatch_stream_init(&b->st, d->_store->m, d->_body_act);
}

/* A flagged pattern (real value, out-of-scope placeholder) refuses. */
static int body_check(sl_secret_body_t *b)
{
    const sl_secret_store_t *s = b->d->_store;
    if (b->refused)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        if (sl_smatch_hit(&b->st.hits, i)) {
            b->refused = true;
            b->rule = SL_SECRET_RULE_REAL_VALUE;
            b->secret = s->sec[i].cfg.name;
            snprintf(b->reason, sizeof b->reason,
                     "the request body carries the real value of secret '%s'; the sandbox must "
                     "only hold its placeholder (the credential may have leaked: rotate it)",
                     b->secret);
            return -1;
        }
        if (sl_smatch_hit(&b->st.hits, s->n + i) && b->d->_body_act[s->n + i].kind == SL_SM_FLAG) {
            b->refused = true;
            b->rule = SL_SECRET_RULE_OUT_OF_SCOPE;
            b->secret = s->sec[i].cfg.name;
            snprintf(b->reason, sizeof b->reason,
                     "the request body carries the placeholder of secret '%s' out of its scope",
                     b->secret);
            return -1;
        }
    }
    return 0;
}

int sl_secret_body_feed(sl_secret_body_t *b, const void *p, size_t n, sl_buf_t *out)
{
    if (b->d->_store == NULL) {
        sl_buf_append(out, p, n);
        return 0;
    }
    if (b->refused)
        return -1;
    sl_smatch_stream_feed(&b->st, p, n, out);
    return body_check(b);
}

int sl_secret_body_finish(sl_secret_body_t *b, sl_buf_t *out)
{
    const sl_secret_store_t *s = b->d->_store;
    if (s == NULL)
        return 0;
    if (b->refused)
        return -1;
    sl_smatch_stream_finish(&b->st, out);
    if (body_check(b) != 0)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        if (b->d->_pending[i] && !sl_smatch_hit(&b->st.hits, s->n + i)) {
            b->refused = true;
            b->rule = SL_SECRET_RULE_REQUIRED_MISSING;
            b->secret = s->sec[i].cfg.name;
            snprintf(b->reason, sizeof b->reason,
                     "secret '%s' is required for this destination and the request does not "
                     "use its placeholder",
                     b->secret);
            return -1;
        }
    return 0;
}

long long sl_secret_body_delta(const sl_secret_body_t *b)
{
    return (long long)b->st.out_bytes - (long long)b->st.in_bytes;
}

size_t sl_secret_body_used(const sl_secret_body_t *b, const char **names, size_t cap)
{
    const sl_secret_store_t *s = b->d->_store;
    size_t k = 0;
    for (size_t i = 0; s != NULL && i < s->n; i++)
        if (sl_smatch_hit(&b->st.hits, s->n + i) &&
            b->d->_body_act[s->n + i].kind == SL_SM_REPLACE) {
            if (k < cap)
                names[k] = s->sec[i].cfg.name;
            k++;
        }
    return k;
}

void sl_secret_body_free(sl_secret_body_t *b)
{
    sl_smatch_stream_free(&b->st);
    memset(b, 0, sizeof *b);
}
