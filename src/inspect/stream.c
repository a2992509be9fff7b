/* Streaming scan (see sl_inspect_stream_* in inspect.h).
 *
 * Raw bytes go through the credential/financial stream database and folded
 * bytes through the folded-text ones, so pattern matches spanning chunks are
 * found by Vectorscan itself. Decoders and the case-preserving clean variant
 * run on a bounded window of recent raw bytes: each feed decodes the new
 * bytes plus the unfinished token at the end of the previous feed. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/engine_int.h"
#include "inspect/normalize.h"

#define RECENT 128
typedef struct recent {
    const char *rule_id;
    size_t start, end;
} recent_t;

struct sl_inspect_stream {
    sl_ruleset_t *rs;
    unsigned mask;
    hs_stream_t *hs[SL_DB__COUNT]; /* open streams, NULL for unused groups */
    unsigned long long raw_off;    /* raw bytes fed so far */
    unsigned long long fold_off;   /* folded bytes produced so far */
    sl_buf_t win;                  /* last raw bytes (>= window) */
    unsigned long long win_base;   /* absolute offset of win.p[0] */
    sl_buf_t fwin;                 /* last folded bytes */
    sl_buf_t lwin;                 /* fwin with leetspeak folded (when leet rules exist) */
    unsigned long long *fmap;      /* folded byte -> absolute raw offset */
    size_t fmap_cap;
    uint32_t *m32; /* sl_fold's map of the current chunk (reused) */
    /* The leet stream skips slices without leetspeak (sl_leet false) once a
     * clean slice has followed the last one with it; it is reset and
     * resumes over the recent clean bytes when leetspeak comes back. */
    bool leet_prev;               /* the previous slice had leetspeak */
    bool leet_parked;             /* slices were skipped since the last reset */
    unsigned long long leet_bias; /* folded offset of the leet stream's offset 0 */
    size_t m32_cap;
    unsigned long long fwin_base;
    unsigned char carry[4]; /* incomplete UTF-8 sequence at the end of a chunk */
    size_t ncarry;
    bool fold_ws;                /* the last folded byte was a collapsed space */
    unsigned long long dec_from; /* next window decode pass starts here */
    recent_t recent[RECENT];
    size_t nrecent;
    bool limited;
};

static bool group_wanted(unsigned mask, sl_dbgroup_t g)
{
    switch (g) {
    case SL_DB_SECRETS:
    case SL_DB_SECRETS_PROSE:
        return mask & (SL_CAT_BIT(SL_CAT_CREDENTIAL) | SL_CAT_BIT(SL_CAT_FINANCIAL));
    case SL_DB_INJECTION:
        return mask & SL_CAT_BIT(SL_CAT_INJECTION);
    case SL_DB_TOOLPOISON:
        return mask & SL_CAT_BIT(SL_CAT_TOOL_POISONING);
    case SL_DB_SHELL:
        return mask & SL_CAT_BIT(SL_CAT_SHELL);
    case SL_DB_LEET:
        return mask & (SL_CAT_BIT(SL_CAT_INJECTION) | SL_CAT_BIT(SL_CAT_TOOL_POISONING) |
                       SL_CAT_BIT(SL_CAT_SHELL));
    default:
        return false;
    }
}

sl_inspect_stream_t *sl_inspect_stream_open(const sl_ruleset_t *crs, sl_surface_t surface)
{
    sl_ruleset_t *rs = (sl_ruleset_t *)crs;
    sl_inspect_stream_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->rs = sl_ruleset_ref(rs);
    st->mask = sl_inspect_surface_categories(surface);
    for (int g = 0; g < SL_DB__COUNT; g++) {
        if (!rs->db[g].stream || !group_wanted(st->mask, (sl_dbgroup_t)g))
            continue;
        if (hs_open_stream(rs->db[g].stream, 0, &st->hs[g]) != HS_SUCCESS) {
            sl_inspect_stream_close(st, NULL);
            return NULL;
        }
    }
    return st;
}

static void ctx_init(sl_inspect_stream_t *st, scan_ctx_t *c, sl_findings_t *out)
{
    memset(c, 0, sizeof *c);
    c->rs = st->rs;
    c->mask = st->mask;
    c->out = out;
    c->out0 = out->n;
    c->dedupe_from = out->n;
    c->stream_mode = true;
}

/* Drop findings already reported by an earlier feed; remember the new ones. */
static void dedupe_recent(sl_inspect_stream_t *st, sl_findings_t *out, size_t from)
{
    size_t w = from;
    for (size_t i = from; i < out->n; i++) {
        sl_finding_t *f = &out->v[i];
        bool dup = false;
        for (size_t k = 0; k < st->nrecent && !dup; k++) {
            recent_t *r = &st->recent[k];
            dup = r->rule_id == f->rule_id && f->start < r->end && f->end > r->start;
        }
        if (dup)
            continue;
        if (f->category == SL_CAT_LIMIT)
            st->limited = true;
        st->recent[st->nrecent < RECENT ? st->nrecent++ : (size_t)(f->start % RECENT)] =
            (recent_t){f->rule_id, f->start, f->end};
        out->v[w++] = *f;
    }
    out->n = w;
}

static int run_stream(sl_inspect_stream_t *st, scan_ctx_t *c, sl_dbgroup_t g, const char *p,
                      size_t n)
{
    if (!st->hs[g] || n == 0)
        return 0;
    c->nhits = c->hit_next = 0;
    c->npend = 0;
    hs_error_t e = hs_scan_stream(st->hs[g], p, (unsigned)n, 0, c->scratch, sl_engine_pend_cb, c);
    sl_engine_resolve(c, g);
    return e == HS_SUCCESS || e == HS_SCAN_TERMINATED ? 0 : -1;
}

/* Fold one chunk for the folded streams, carrying state across chunks:
 * the folded bytes are appended to st->fwin and their absolute raw offsets
 * to st->fmap. Returns the number of bytes appended. */
static size_t fold_chunk(sl_inspect_stream_t *st, const char *p, size_t n)
{
    /* Prepend the carried partial UTF-8 sequence; hold back a new one. */
    size_t tot = st->ncarry + n;
    const char *in = p;
    char *joined = NULL;
    if (st->ncarry > 0) {
        joined = malloc(tot + 1);
        if (!joined)
            abort();
        memcpy(joined, st->carry, st->ncarry);
        memcpy(joined + st->ncarry, p, n);
        in = joined;
    }
    if (st->m32_cap < tot + 1) {
        st->m32_cap = tot + 1;
        free(st->m32);
        st->m32 = malloc(st->m32_cap * sizeof *st->m32);
        if (!st->m32)
            abort();
    }
    uint32_t *m = st->m32;
    unsigned long long in_base = st->raw_off - st->ncarry;
    size_t keep = 0;
    for (size_t k = 1; k <= 3 && k <= tot; k++) {
        unsigned char c = (unsigned char)in[tot - k];
        if ((c & 0xC0) == 0x80)
            continue;
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (need > k)
            keep = k;
        break;
    }
    size_t use = tot - keep;
    /* Fold straight into the window; in may alias st->carry only via joined. */
    sl_buf_reserve(&st->fwin, use + 1);
    char *out = st->fwin.p + st->fwin.n;
    size_t fn = sl_fold(in, use, SL_FOLD_CASE | SL_FOLD_WS, out, m, NULL, NULL, NULL);
    memcpy(st->carry, in + use, keep);
    st->ncarry = keep;
    free(joined);
    size_t skip = (st->fold_ws && fn > 0 && out[0] == ' ') ? 1 : 0;
    size_t o = fn - skip;
    if (skip)
        memmove(out, out + 1, o);
    if (st->fmap_cap < st->fwin.n + o + 1) {
        st->fmap_cap = (st->fwin.n + o + 1) * 2;
        st->fmap = realloc(st->fmap, st->fmap_cap * sizeof *st->fmap);
        if (!st->fmap)
            abort();
    }
    unsigned long long *am = st->fmap + st->fwin.n;
    for (size_t j = 0; j < o; j++)
        am[j] = in_base + m[j + skip];
    if (o > 0)
        st->fold_ws = out[o - 1] == ' ';
    st->fwin.n += o;
    return o;
}

/* Leet-fold the fn folded bytes at fwin offset `old` into the leet window
 * (length-preserving: the folded map applies) and run the leet stream over
 * them, unless neither they nor the previous slice have leetspeak: text
 * without it gives the leet rules nothing the folded databases miss. */
static int leet_slice(sl_inspect_stream_t *st, scan_ctx_t *c, size_t old, size_t fn, size_t W)
{
    /* From the byte before: a leet character and the letter that makes it
     * leetspeak may be split between slices. */
    size_t at = old > 0 ? old - 1 : 0;
    sl_buf_reserve(&st->lwin, fn);
    bool leet = sl_leet(st->fwin.p + at, old + fn - at, st->lwin.p + at);
    st->lwin.n += fn;
    bool prev = st->leet_prev;
    st->leet_prev = leet;
    if (!leet && !prev) {
        st->leet_parked = true;
        return 0;
    }
    size_t from = old;
    if (st->leet_parked) {
        /* Restart at 0 over up to W/2 recent clean bytes, so a match may
         * begin before the leetspeak. */
        if (hs_reset_stream(st->hs[SL_DB_LEET], 0, NULL, NULL, NULL) != HS_SUCCESS)
            return -1;
        from = old > W / 2 ? old - W / 2 : 0;
        st->leet_bias = st->fwin_base + from;
        st->leet_parked = false;
    }
    c->text = st->lwin.p;
    c->hs_bias = st->leet_bias;
    int rc = run_stream(st, c, SL_DB_LEET, st->lwin.p + from, old - from + fn);
    c->hs_bias = 0;
    return rc;
}

static int feed_slice(sl_inspect_stream_t *st, const char *p, size_t n, sl_findings_t *out)
{
    size_t W = st->rs->lim.stream_window;
    scan_ctx_t c;
    ctx_init(st, &c, out);
    c.scratch = sl_engine_scratch(st->rs);
    if (!c.scratch)
        return -1;
    /* Raw window first, so validators can read the match text. */
    sl_buf_append(&st->win, p, n);
    c.text = st->win.p;
    c.tn = st->win.n;
    c.text_base = st->win_base;
    c.root_base = (size_t)st->win_base;
    layer_t R = {.p = st->win.p, .n = st->win.n, .how = LAYER_ROOT};
    c.text_layer = &R;
    if (run_stream(st, &c, SL_DB_SECRETS, p, n) < 0 ||
        run_stream(st, &c, SL_DB_SECRETS_PROSE, p, n) < 0)
        return -1;
    bool any_fold = st->hs[SL_DB_INJECTION] || st->hs[SL_DB_TOOLPOISON] || st->hs[SL_DB_SHELL] ||
                    st->hs[SL_DB_LEET];
    unsigned long long raw_end = st->raw_off + n;
    if (any_fold) {
        /* st->raw_off is still the offset of p[0]: fold_chunk maps from it. */
        size_t old = st->fwin.n;
        size_t fn = fold_chunk(st, p, n);
        const char *fo = st->fwin.p + old;
        c.text = st->fwin.p;
        c.tn = st->fwin.n;
        c.text_base = st->fwin_base;
        c.abs_map = st->fmap;
        static const sl_dbgroup_t fg[] = {SL_DB_INJECTION, SL_DB_TOOLPOISON, SL_DB_SHELL};
        for (size_t i = 0; i < 3; i++)
            if (run_stream(st, &c, fg[i], fo, fn) < 0)
                return -1;
        if (st->hs[SL_DB_LEET] && fn > 0 && leet_slice(st, &c, old, fn, W) < 0)
            return -1;
        c.abs_map = NULL;
        st->fold_off += fn;
        /* Windows hold between W and 2W bytes: compacting only when they
         * reach 2W keeps the copying at one byte per byte fed. */
        if (st->fwin.n > 2 * W) {
            size_t drop = st->fwin.n - W;
            sl_buf_consume(&st->fwin, drop);
            if (st->lwin.n)
                sl_buf_consume(&st->lwin, drop);
            memmove(st->fmap, st->fmap + drop, (st->fwin.n) * sizeof *st->fmap);
            st->fwin_base += drop;
        }
    }
    st->raw_off = raw_end;
    /* Decoders over the new bytes plus the unfinished token before them. */
    if (st->dec_from < st->win_base)
        st->dec_from = st->win_base;
    size_t off = (size_t)(st->dec_from - st->win_base);
    c.text_layer = NULL;
    c.root_base = (size_t)st->dec_from;
    c.nhits = 0;
    c.stream_mode = false;
    sl_engine_scan_decoded(&c, st->win.p + off, st->win.n - off);
    /* The next pass restarts at the last token that may still be growing. */
    size_t t = st->win.n;
    while (t > off && t + W / 2 > st->win.n && st->win.p[t - 1] != ' ' &&
           st->win.p[t - 1] != '\n' && st->win.p[t - 1] != '\t')
        t--;
    st->dec_from = st->win_base + t;
    if (st->win.n > 2 * W) {
        size_t drop = st->win.n - W;
        sl_buf_consume(&st->win, drop);
        st->win_base += drop;
    }
    if (c.limit)
        sl_engine_add_limit(out, c.out0, (size_t)raw_end, c.limit);
    return 0;
}

int sl_inspect_stream_feed(sl_inspect_stream_t *st, const char *p, size_t n, sl_findings_t *out)
{
    size_t out0 = out->n;
    size_t W = st->rs->lim.stream_window;
    /* Slices of at most half a window bound the memory whatever the chunk size. */
    for (size_t off = 0; off < n || n == 0; off += W / 2) {
        size_t k = n - off < W / 2 ? n - off : W / 2;
        if (feed_slice(st, p + off, k, out) < 0) {
            sl_engine_add_limit(out, out0, (size_t)st->raw_off, "stream scan error");
            dedupe_recent(st, out, out0);
            return -1;
        }
        if (n == 0)
            break;
    }
    dedupe_recent(st, out, out0);
    return (int)(out->n - out0);
}

int sl_inspect_stream_close(sl_inspect_stream_t *st, sl_findings_t *out)
{
    if (!st)
        return 0;
    sl_findings_t sink = {0};
    sl_findings_t *o = out ? out : &sink;
    size_t out0 = o->n;
    scan_ctx_t c;
    ctx_init(st, &c, o);
    c.scratch = sl_engine_scratch(st->rs);
    for (int g = 0; g < SL_DB__COUNT; g++) {
        if (!st->hs[g])
            continue;
        /* End-anchored patterns report at close. */
        bool raw = g == SL_DB_SECRETS || g == SL_DB_SECRETS_PROSE;
        layer_t R = {.p = st->win.p, .n = st->win.n, .how = LAYER_ROOT};
        c.text_layer = &R;
        c.text = raw ? st->win.p : st->fwin.p;
        c.tn = raw ? st->win.n : st->fwin.n;
        c.text_base = raw ? st->win_base : st->fwin_base;
        c.root_base = (size_t)st->win_base;
        c.abs_map = raw ? NULL : st->fmap;
        c.hs_bias = g == SL_DB_LEET ? st->leet_bias : 0;
        c.npend = 0;
        hs_close_stream(st->hs[g], out && c.scratch ? c.scratch : NULL,
                        out && c.scratch ? sl_engine_pend_cb : NULL, &c);
        st->hs[g] = NULL;
        if (out && c.scratch)
            sl_engine_resolve(&c, (sl_dbgroup_t)g);
    }
    if (out)
        dedupe_recent(st, o, out0);
    int r = (int)(o->n - out0);
    sl_findings_free(&sink);
    sl_buf_free(&st->win);
    sl_buf_free(&st->fwin);
    sl_buf_free(&st->lwin);
    free(st->fmap);
    free(st->m32);
    sl_ruleset_unref(st->rs);
    free(st);
    return r;
}
