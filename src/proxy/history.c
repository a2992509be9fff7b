/* Split-secret history glue: request head -> fragments -> shared store. */
#include "proxy/history.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "inspect/history.h"
#include "net/ipaddr.h"
#include "proxy/internal.h"

#define MAX_FRAGS 96
#define MAX_PATH_SEGS 16

/* One store for the process: identities are served by every worker. */
static sl_history_t *store;
static pthread_once_t store_once = PTHREAD_ONCE_INIT;

static void store_init(void)
{
    store = sl_history_new();
}

/* Standard fields that carry no agent data worth joining: the client's own
 * constant or protocol values. */
static bool boring_header(sl_view_t name)
{
    static const char *const names[] = {
        "accept",
        "accept-encoding",
        "accept-language",
        "accept-charset",
        "user-agent",
        "content-type",
        "content-length",
        "cache-control",
        "pragma",
        "if-modified-since",
        "if-unmodified-since",
        "date",
        "dnt",
        "upgrade-insecure-requests",
        "priority",
        "expect",
        "content-encoding",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (sl_view_ieq(name, names[i]))
            return true;
    return (name.n > 9 && strncasecmp(name.p, "sec-fetch", 9) == 0) ||
           (name.n > 6 && strncasecmp(name.p, "sec-ch", 6) == 0);
}

/* Channel names live in one fixed scratch area for the request. */
typedef struct frags {
    sl_history_frag_t v[MAX_FRAGS];
    size_t n;
    char names[4096];
    size_t used;
} frags_t;

static void add(frags_t *fr, sl_surface_t surf, sl_view_t value, const char *kind, sl_view_t a,
                sl_view_t b)
{
    if (value.n == 0 || fr->n == MAX_FRAGS)
        return;
    size_t k = strlen(kind), need = k + a.n + 1 + b.n;
    if (fr->used + need > sizeof fr->names)
        return;
    char *p = fr->names + fr->used;
    memcpy(p, kind, k);
    for (size_t i = 0; i < a.n; i++) /* header names compare case-insensitively */
        p[k + i] = (char)((a.p[i] >= 'A' && a.p[i] <= 'Z') ? a.p[i] + 32 : a.p[i]);
    p[k + a.n] = '|';
    memcpy(p + k + a.n + 1, b.p, b.n);
    fr->used += need;
    fr->v[fr->n++] =
        (sl_history_frag_t){.channel = sl_view(p, need), .value = value, .surface = surf};
}

static void query_field(void *arg, sl_view_t name, sl_view_t value)
{
    add(arg, SL_SURF_URL, value, "q:", name, sl_view("", 0));
}

static void add_path(frags_t *fr, sl_view_t path, sl_view_t host)
{
    const char *p = path.p, *end = path.p + path.n;
    unsigned idx = 0;
    while (p < end && idx < MAX_PATH_SEGS) {
        if (*p == '/') {
            p++;
            continue;
        }
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *seg_end = slash ? slash : end;
        char num[4] = {(char)('a' + idx), 0};
        add(fr, SL_SURF_URL, sl_view(p, (size_t)(seg_end - p)), "p:", host, sl_view(num, 1));
        idx++;
        p = seg_end;
    }
}

/* "abc.exfil.example" -> the label "abc" in the channel of "exfil.example". */
static void add_host_label(frags_t *fr, sl_view_t host)
{
    const char *dot = memchr(host.p, '.', host.n);
    if (dot == NULL || memchr(dot + 1, '.', (size_t)(host.p + host.n - dot - 1)) == NULL)
        return;
    add(fr, SL_SURF_URL, sl_view(host.p, (size_t)(dot - host.p)),
        "l:", sl_view(dot + 1, (size_t)(host.p + host.n - dot - 1)), sl_view("", 0));
}

static const char *kind_name(sl_view_t channel)
{
    switch (channel.n ? channel.p[0] : 0) {
    case 'q':
        return "query parameter";
    case 'p':
        return "path segment";
    case 'l':
        return "host name";
    case 'f':
        return "request body field";
    case 'b':
        return "request body";
    default:
        return "request header";
    }
}

/* Check the fragments against the identity's history (see the header). */
static int check(sl_client_t *c, frags_t *fr, sl_findings_t *out, char *where, size_t where_cap)
{
    const sl_exchange_t *x = &c->x;
    const sl_config_t *cfg = x->policy->cfg;
    size_t out0 = out->n;
    /* Clients nobody identified share "default": keep them apart by address. */
    char key[128];
    int kn = snprintf(key, sizeof key, "%s", x->ident->name);
    if (x->ident->cfg == NULL && c->has_peer) {
        char ip[64];
        kn = snprintf(key, sizeof key, "%s@%s", x->ident->name,
                      sl_ip_format(&c->peer, ip, sizeof ip));
    }
    if (kn < 0 || (size_t)kn >= sizeof key)
        kn = (int)strlen(key);
    sl_history_limits_t lim = {
        .window_ms = cfg->inspect.history.window,
        .max_bytes = (size_t)cfg->inspect.history.max_bytes,
        .max_entries = (size_t)cfg->inspect.history.max_entries,
        .max_identities = (size_t)cfg->inspect.history.max_identities,
    };
    sl_history_hit_t hit = {0};
    int rc = sl_history_check(store, &lim, sl_view(key, (size_t)kn), fr->v, fr->n,
                              sl_io_now_ns() / 1000000u, c->w->server->rules, out, &hit);
    if (out->n > out0) {
        if (out->v[out0].category == SL_CAT_LIMIT)
            snprintf(where, where_cap, "request history");
        else
            snprintf(where, where_cap, "%s (split across %u requests)",
                     kind_name(fr->v[hit.frag].channel), hit.pieces);
    }
    return rc;
}

/* The history is on and usable for this exchange; -1 (limit finding
 * appended) when it cannot be had, 0 when it is off. */
static int usable(sl_client_t *c, sl_findings_t *out, char *where, size_t where_cap)
{
    const sl_exchange_t *x = &c->x;
    if (c->w->server->rules == NULL || !x->policy->cfg->inspect.history.enabled || x->ident == NULL)
        return 0;
    pthread_once(&store_once, store_init);
    if (store)
        return 1;
    sl_finding_t *f = sl_findings_push(out);
    f->rule_id = "inspection-limit";
    f->category = SL_CAT_LIMIT;
    f->severity = SL_SEV_HIGH;
    f->action = SL_ACT_BLOCK;
    snprintf(f->excerpt, sizeof f->excerpt, "request history (out of memory)");
    snprintf(where, where_cap, "request history");
    return -1;
}

static frags_t *frags_new(void)
{
    frags_t *fr = malloc(sizeof *fr);
    if (fr == NULL)
        abort();
    fr->n = fr->used = 0;
    return fr;
}

int sl_history_request(sl_client_t *c, const sl_url_t *u, const sl_h1_header_t *fwd, size_t n_fwd,
                       sl_findings_t *out, char *where, size_t where_cap)
{
    int ok = usable(c, out, where, where_cap);
    if (ok <= 0)
        return ok;
    const sl_exchange_t *x = &c->x;
    frags_t *fr = frags_new();
    sl_view_t host = sl_view(x->target.host, strlen(x->target.host));
    if (u) {
        if (u->has_query)
            sl_history_form_fields(u->query.p, u->query.n, query_field, fr);
        add_path(fr, u->path, host);
    }
    if (!x->target.is_literal)
        add_host_label(fr, host);
    for (size_t i = 0; i < n_fwd; i++)
        if (!boring_header(fwd[i].name))
            add(fr, SL_SURF_HEADER, fwd[i].value, "h:", fwd[i].name, sl_view("", 0));
    int rc = check(c, fr, out, where, where_cap);
    free(fr);
    return rc;
}

typedef struct body_ctx {
    frags_t *fr;
    sl_view_t host;
} body_ctx_t;

static void body_field(void *arg, sl_view_t name, sl_view_t value)
{
    body_ctx_t *b = arg;
    if (name.n)
        add(b->fr, SL_SURF_BODY, value, "f:", name, sl_view("", 0));
    else
        add(b->fr, SL_SURF_BODY, value, "b:", b->host, sl_view("", 0));
}

int sl_history_body(sl_client_t *c, const char *p, size_t n, sl_findings_t *out, char *where,
                    size_t where_cap)
{
    int ok = usable(c, out, where, where_cap);
    if (ok <= 0 || n == 0)
        return ok < 0 ? ok : 0;
    frags_t *fr = frags_new();
    body_ctx_t b = {.fr = fr, .host = sl_view(c->x.target.host, strlen(c->x.target.host))};
    sl_history_body_fields(p, n, body_field, &b);
    int rc = check(c, fr, out, where, where_cap);
    free(fr);
    return rc;
}
