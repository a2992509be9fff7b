/* The engine: compiles rule groups into Vectorscan databases and runs the
 * block-mode pipeline (raw -> analysis -> folded variants -> decoders,
 * recursively within budgets). Streaming lives in stream.c. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "inspect/decode.h"
#include "inspect/dbcache.h"
#include "inspect/engine_int.h"
#include "inspect/normalize.h"

unsigned sl_inspect_surface_categories(sl_surface_t s)
{
    /* THE surface table. Outbound bytes can leak secrets; inbound bytes can
     * carry instructions; tool definitions can carry both instructions and
     * poisoning; tool-call arguments can carry commands and secrets. */
    static const unsigned table[SL_SURF__COUNT] = {
        [SL_SURF_URL] = SL_CAT_BIT(SL_CAT_CREDENTIAL) | SL_CAT_BIT(SL_CAT_FINANCIAL),
        [SL_SURF_HEADER] = SL_CAT_BIT(SL_CAT_CREDENTIAL) | SL_CAT_BIT(SL_CAT_FINANCIAL),
        [SL_SURF_BODY] = SL_CAT_BIT(SL_CAT_CREDENTIAL) | SL_CAT_BIT(SL_CAT_FINANCIAL),
        [SL_SURF_RESPONSE] = SL_CAT_BIT(SL_CAT_INJECTION),
        [SL_SURF_TOOL_CALL] = SL_CAT_BIT(SL_CAT_SHELL) | SL_CAT_BIT(SL_CAT_CREDENTIAL),
        [SL_SURF_TOOL_LIST] = SL_CAT_BIT(SL_CAT_TOOL_POISONING) | SL_CAT_BIT(SL_CAT_INJECTION),
        [SL_SURF_ALL] = SL_CAT_BIT(SL_CAT_CREDENTIAL) | SL_CAT_BIT(SL_CAT_FINANCIAL) |
                        SL_CAT_BIT(SL_CAT_INJECTION) | SL_CAT_BIT(SL_CAT_TOOL_POISONING) |
                        SL_CAT_BIT(SL_CAT_SHELL),
    };
    return (unsigned)s < SL_SURF__COUNT ? table[s] : 0;
}

/* ---- compile ---------------------------------------------------------- */

bool sl_engine_in_group(const sl_rule_t *r, sl_dbgroup_t g)
{
    if (r->info.action == SL_ACT_OFF)
        return false;
    switch (g) {
    case SL_DB_SECRETS:
    case SL_DB_SECRETS_PROSE:
        return (r->info.category == SL_CAT_CREDENTIAL || r->info.category == SL_CAT_FINANCIAL) &&
               r->prose == (g == SL_DB_SECRETS_PROSE);
    case SL_DB_INJECTION:
        return r->info.category == SL_CAT_INJECTION;
    case SL_DB_TOOLPOISON:
        return r->info.category == SL_CAT_TOOL_POISONING;
    case SL_DB_SHELL:
        return r->info.category == SL_CAT_SHELL;
    case SL_DB_LEET:
        return r->leet;
    case SL_DB_INJECTION_RAW:
        return r->needs_raw && r->info.category == SL_CAT_INJECTION;
    case SL_DB_TOOLPOISON_RAW:
        return r->needs_raw && r->info.category == SL_CAT_TOOL_POISONING;
    case SL_DB_SHELL_RAW:
        return r->needs_raw && r->info.category == SL_CAT_SHELL;
    default:
        return false;
    }
}

static hs_error_t compile_mode(sl_ruleset_t *rs, const unsigned *idx, size_t n, unsigned mode,
                               hs_database_t **db, hs_compile_error_t **cerr)
{
    const char **ex = malloc(n * sizeof *ex);
    unsigned *fl = malloc(n * sizeof *fl), *ids = malloc(n * sizeof *ids);
    if (!ex || !fl || !ids)
        abort();
    for (size_t i = 0; i < n; i++) {
        const sl_rule_t *r = &rs->rules[idx[i]];
        ex[i] = r->info.pattern;
        fl[i] = r->hs_flags;
        ids[i] = idx[i];
    }
    hs_error_t e = hs_compile_multi(ex, fl, ids, (unsigned)n, mode, NULL, db, cerr);
    free(ex);
    free(fl);
    free(ids);
    return e;
}

static int compile_group(sl_ruleset_t *rs, sl_dbgroup_t g, sl_buf_t *err)
{
    unsigned *idx = malloc((rs->n + 1) * sizeof *idx);
    if (!idx)
        abort();
    size_t n = 0;
    for (size_t i = 0; i < rs->n; i++)
        if (sl_engine_in_group(&rs->rules[i], g))
            idx[n++] = (unsigned)i;
    int rc = 0;
    if (n == 0)
        goto out;
    /* The databases never track start-of-match: SOM slows every byte of
     * every scan and its databases are several times larger, while starts
     * are only needed for the rare matches (sl_engine_resolve). */
    static const unsigned modes[2] = {HS_MODE_BLOCK, HS_MODE_STREAM};
    /* Streams never run the raw-text groups of folded-text rules. */
    int nmodes = g >= SL_DB_INJECTION_RAW ? 1 : 2;
    for (int m = 0; m < nmodes; m++) {
        hs_database_t **db = m == 0 ? &rs->db[g].block : &rs->db[g].stream;
        hs_compile_error_t *cerr = NULL;
        if (compile_mode(rs, idx, n, modes[m], db, &cerr) != HS_SUCCESS) {
            int bad = cerr ? cerr->expression : -1;
            if (bad >= 0 && (size_t)bad < n) {
                const sl_rule_t *r = &rs->rules[idx[bad]];
                sl_buf_appendf(err, "%s:%u: rule '%s': pattern does not compile: %s\n",
                               r->info.file, r->info.line, r->info.id, cerr->message);
            } else {
                sl_buf_appendf(err, "rules: compiling the %s patterns failed: %s\n",
                               g <= SL_DB_SECRETS_PROSE ? "credential/financial" : "folded-text",
                               cerr ? cerr->message : "unknown error");
            }
            hs_free_compile_error(cerr);
            rc = -1;
            goto out;
        }
        size_t sz = 0;
        if (hs_database_size(*db, &sz) == HS_SUCCESS)
            rs->db_bytes += sz;
    }
    rs->db[g].n = n;
out:
    free(idx);
    return rc;
}

/* The rule's pattern for PCRE2, used only to find where a reported match
 * starts. Vectorscan patterns are PCRE syntax; one PCRE2 does not take just
 * loses exact starts (they are then approximated by the pattern's width). */
static void compile_start_re(sl_rule_t *r)
{
    uint32_t opt = 0;
    if (r->hs_flags & HS_FLAG_CASELESS)
        opt |= PCRE2_CASELESS;
    if (r->hs_flags & HS_FLAG_DOTALL)
        opt |= PCRE2_DOTALL;
    if (r->hs_flags & HS_FLAG_MULTILINE)
        opt |= PCRE2_MULTILINE;
    if (r->hs_flags & HS_FLAG_UTF8)
        opt |= PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    if (r->hs_flags & HS_FLAG_UCP)
        opt |= PCRE2_UCP;
    int ec;
    PCRE2_SIZE eo;
    r->start_re =
        pcre2_compile((PCRE2_SPTR)r->info.pattern, PCRE2_ZERO_TERMINATED, opt, &ec, &eo, NULL);
    if (r->start_re == NULL) {
        r->info.exact_start = false;
        sl_debug("%s:%u: rule '%s': PCRE2 does not take the pattern (error %d at %zu); its "
                 "match starts are approximate",
                 r->info.file, r->info.line, r->info.id, ec, (size_t)eo);
    }
}

/* Does the rule match ordinary lowercase prose? Such a pattern (e.g. a
 * seed phrase: twelve or more words) fires all over text, and inside the
 * shared credential database it slows every byte of every scan (measured:
 * one such rule took 35 of 41 us per 10 KiB body); alone it is cheap. */
static bool matches_prose(const sl_rule_t *r)
{
    static const char sample[] =
        "the quick brown fox jumps over the lazy dog while the farmer walks home across the "
        "field and the sun sets slowly behind the hills";
    if (r->start_re == NULL)
        return false;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL)
        return false;
    int rc = pcre2_match(r->start_re, (PCRE2_SPTR)sample, sizeof sample - 1, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* Can a folded-text rule match raw text that its folded form does not?
 * Folding lowercases, collapses whitespace to one space, and removes or
 * maps invisible and non-ASCII characters; a pattern that mentions none of
 * these (no line anchors, control or non-ASCII characters, negated classes,
 * runs of spaces, or case-sensitive capitals) matches the folded form of
 * whatever raw text it matches. Conservative: when unsure, true. */
static bool needs_raw(const sl_rule_t *r)
{
    const unsigned char *p = (const unsigned char *)r->info.pattern;
    bool caseless = r->hs_flags & HS_FLAG_CASELESS;
    for (size_t i = 0; p[i]; i++) {
        unsigned char ch = p[i];
        if (ch >= 0x80 || ch == '^' || ch == '$' || (!caseless && ch >= 'A' && ch <= 'Z'))
            return true;
        if (ch == ' ' && (p[i + 1] == ' ' || (p[i + 1] == '\\' && p[i + 2] == 's')))
            return true;
        if (ch != '\\')
            continue;
        unsigned char x = p[i + 1];
        if (x == '\0' || strchr("nrtvfeAzZGxoupPNXhHRQEK0123456789c", x))
            return true;
        if (x == 's' && (p[i + 2] == '{' || p[i + 2] == ' ' || p[i + 2] == '\\'))
            return true;
        i++;
    }
    return false;
}

int sl_engine_compile(sl_ruleset_t *rs, sl_buf_t *err)
{
    for (size_t i = 0; i < rs->n; i++) {
        sl_rule_t *r = &rs->rules[i];
        hs_expr_info_t *info = NULL;
        hs_compile_error_t *cerr = NULL;
        r->max_width = UINT_MAX;
        if (hs_expression_info(r->info.pattern, r->hs_flags, &info, &cerr) != HS_SUCCESS) {
            sl_buf_appendf(err, "%s:%u: rule '%s': pattern does not compile: %s\n", r->info.file,
                           r->info.line, r->info.id, cerr ? cerr->message : "?");
            hs_free_compile_error(cerr);
            return -1;
        }
        r->max_width = info->max_width;
        free(info);
        compile_start_re(r);
        r->prose = matches_prose(r);
        r->needs_raw = needs_raw(r);
    }
    if (sl_dbcache_load(rs) == 0)
        return 0;
    for (int g = 0; g < SL_DB__COUNT; g++)
        if (compile_group(rs, (sl_dbgroup_t)g, err) < 0)
            return -1;
    sl_dbcache_store(rs);
    return 0;
}

void sl_engine_free(sl_ruleset_t *rs)
{
    for (int g = 0; g < SL_DB__COUNT; g++) {
        hs_free_database(rs->db[g].block);
        hs_free_database(rs->db[g].stream);
        rs->db[g].block = rs->db[g].stream = NULL;
    }
    for (size_t i = 0; i < rs->n; i++) {
        pcre2_code_free(rs->rules[i].start_re);
        rs->rules[i].start_re = NULL;
    }
}

/* ---- per-thread scratch -------------------------------------------------- */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static __thread hs_scratch_t *tl_scratch;
static __thread uint64_t tl_gen;

static void scratch_dtor(void *p)
{
    hs_free_scratch(p);
}

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, scratch_dtor);
}

hs_scratch_t *sl_engine_scratch(const sl_ruleset_t *rs)
{
    if (tl_scratch && tl_gen == rs->gen)
        return tl_scratch;
    pthread_once(&scratch_once, scratch_key_init);
    /* A scratch grown for every database this thread has seen fits them all. */
    for (int g = 0; g < SL_DB__COUNT; g++) {
        if (rs->db[g].block && hs_alloc_scratch(rs->db[g].block, &tl_scratch) != HS_SUCCESS)
            return NULL;
        if (rs->db[g].stream && hs_alloc_scratch(rs->db[g].stream, &tl_scratch) != HS_SUCCESS)
            return NULL;
    }
    pthread_setspecific(scratch_key, tl_scratch);
    tl_gen = rs->gen;
    return tl_scratch;
}

/* ---- findings ---------------------------------------------------------- */

void sl_findings_free(sl_findings_t *f)
{
    free(f->v);
    f->v = NULL;
    f->n = f->cap = 0;
}

sl_action_t sl_findings_verdict(const sl_findings_t *f)
{
    sl_action_t best = SL_ACT_OFF;
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].action < best)
            best = f->v[i].action;
    return best;
}

sl_finding_t *sl_findings_push(sl_findings_t *f)
{
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        sl_finding_t *v = realloc(f->v, nc * sizeof *v);
        if (!v)
            abort();
        f->v = v;
        f->cap = nc;
    }
    sl_finding_t *x = &f->v[f->n++];
    memset(x, 0, sizeof *x);
    return x;
}

void sl_inspect_excerpt(const char *p, size_t n, char out[48])
{
    /* Short values reveal less: a quarter of their length, at most 4 chars. */
    size_t k = n >= 16 ? 4 : n / 4;
    size_t o = 0;
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)p[i];
        out[o++] = (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? (char)c : '?';
    }
    snprintf(out + o, 48 - o, "\xE2\x80\xA6(%zu bytes)", n);
}

void sl_engine_add_limit(sl_findings_t *out, size_t out0, size_t n, const char *why)
{
    for (size_t i = out0; i < out->n; i++)
        if (out->v[i].category == SL_CAT_LIMIT)
            return;
    sl_finding_t *f = sl_findings_push(out);
    f->rule_id = "inspection-limit";
    f->category = SL_CAT_LIMIT;
    f->severity = SL_SEV_HIGH;
    f->action = SL_ACT_BLOCK;
    f->start = 0;
    f->end = n;
    f->exact = false;
    f->layer = SL_LAYER_RAW;
    snprintf(f->excerpt, sizeof f->excerpt, "%s", why);
}

/* ---- layers and offset maps ------------------------------------------------ */

/* Percent, HTML-entity and backslash decoding, repeated until nothing
 * changes: one layer however the three are stacked, so documents full of
 * "&amp;lt;" or "%2520" do not fan out into nested layers. *kind gets the
 * first decoder that changed something; *limit is set past 16 rounds. With
 * `map`, map[j] is the input offset of output byte j (n + 1 entries). */
static size_t unescape(const char *p, size_t n, char *out, uint32_t *map, sl_layer_t *kind,
                       bool *limit)
{
    char *a = malloc(n + 1), *b = malloc(n + 1);
    uint32_t *m = map ? malloc((n + 1) * sizeof *m) : NULL;
    if (!a || !b || (map && !m))
        abort();
    memcpy(a, p, n);
    size_t len = n;
    if (map)
        for (size_t i = 0; i <= n; i++)
            map[i] = (uint32_t)i;
    *kind = SL_LAYER_RAW;
    for (int round = 0;; round++) {
        bool changed = false;
        for (int step = 0; step < 3; step++) {
            static const char trig[3] = {'%', '&', '\\'};
            static const sl_layer_t kinds[3] = {SL_LAYER_PERCENT, SL_LAYER_HTML, SL_LAYER_ESCAPE};
            if (len == 0 || !memchr(a, trig[step], len))
                continue;
            size_t nl = step == 0   ? sl_decode_percent(a, len, b, m)
                        : step == 1 ? sl_decode_html(a, len, b, m)
                                    : sl_decode_escapes(a, len, b, m);
            if (nl == len)
                continue; /* these decoders shrink whenever they decode */
            if (map)
                for (size_t j = 0; j <= nl; j++)
                    map[j] = map[m[j]]; /* m[j] >= j: entries not yet rewritten */
            char *t = a;
            a = b;
            b = t;
            len = nl;
            changed = true;
            if (*kind == SL_LAYER_RAW)
                *kind = kinds[step];
        }
        if (!changed)
            break;
        if (round == 16) {
            *limit = true;
            break;
        }
    }
    memcpy(out, a, len);
    free(a);
    free(b);
    free(m);
    return len;
}

static const uint32_t *layer_map(layer_t *L)
{
    if (L->map || L->how != LAYER_WHOLE)
        return L->map;
    const layer_t *P = L->parent;
    L->map = malloc((P->n + 1) * sizeof *L->map);
    char *tmp = malloc(P->n + 1);
    if (!L->map || !tmp)
        abort();
    bool lim = false;
    switch (L->kind) {
    case SL_LAYER_PERCENT:
    case SL_LAYER_HTML:
    case SL_LAYER_ESCAPE: {
        sl_layer_t k;
        unescape(P->p, P->n, tmp, L->map, &k, &lim);
        break;
    }
    case SL_LAYER_FOLDED:
        sl_fold(P->p, P->n, L->fold_flags, tmp, L->map, NULL, NULL, NULL);
        break;
    default: /* LEET and other length-preserving layers */
        for (size_t i = 0; i <= P->n; i++)
            L->map[i] = (uint32_t)i;
        break;
    }
    free(tmp);
    return L->map;
}

void sl_engine_map_root(layer_t *L, size_t from, size_t to, size_t *start, size_t *end, bool *exact)
{
    size_t s = from, e = to;
    bool ex = true;
    for (; L && L->how != LAYER_ROOT; L = (layer_t *)L->parent) {
        if (L->how == LAYER_REGION) {
            s = L->lo;
            e = L->hi;
            ex = false;
            continue;
        }
        const uint32_t *m = layer_map(L);
        size_t ns = m[s], ne = m[e];
        if (e > 0 && ne <= m[e - 1])
            ne = m[e - 1] + 1;
        s = ns;
        e = ne;
    }
    *start = s;
    *end = e;
    *exact = ex;
}

static sl_layer_t finding_layer(const layer_t *L, unsigned *depth)
{
    /* The innermost decode layer names the finding; folding only if nothing
     * was decoded. */
    *depth = 0;
    sl_layer_t dec = SL_LAYER_RAW, fold = SL_LAYER_RAW;
    for (const layer_t *q = L; q && q->how != LAYER_ROOT; q = q->parent) {
        if (q->kind == SL_LAYER_FOLDED || q->kind == SL_LAYER_LEET) {
            if (fold == SL_LAYER_RAW)
                fold = q->kind;
            continue;
        }
        if (dec == SL_LAYER_RAW)
            dec = q->kind;
        (*depth)++;
    }
    if (dec != SL_LAYER_RAW)
        return dec;
    return fold != SL_LAYER_RAW ? fold : L->root_kind;
}

/* ---- match handling ---------------------------------------------------------- */

#define MAX_FINDINGS 1024

static bool rule_accepts(const sl_rule_t *r, const char *p, size_t n)
{
    if (r->validator == SL_VAL_BIP39) {
        if (!sl_val_bip39_tail(p, n))
            return false;
    } else if (r->validator != SL_VAL_NONE && !sl_validate(r->validator, p, n)) {
        return false;
    }
    if (r->min_entropy > 0 && sl_entropy(p, n) < r->min_entropy)
        return false;
    return true;
}

int sl_engine_on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                       void *vctx)
{
    (void)flags;
    scan_ctx_t *c = vctx;
    const sl_rule_t *r = &c->rs->rules[id];
    if (!(c->mask & SL_CAT_BIT(r->info.category)))
        return 0;
    if (!c->resolved) {
        /* No exact start: look back the pattern's width, or for BIP-39 the
         * longest phrase (24 words of <= 8 letters and 23 separators). */
        size_t cap = r->validator == SL_VAL_BIP39 ? 24 * 8 + 23 : 4096;
        size_t w = r->max_width < cap ? r->max_width : cap;
        from = to > w ? to - w : 0;
    }
    if (from < c->text_base) /* stream mode: the start left the window */
        from = c->text_base;
    size_t f0 = (size_t)(from - c->text_base), t0 = (size_t)(to - c->text_base);
    if (t0 > c->tn)
        t0 = c->tn;
    /* Same rule, overlapping an earlier hit of this layer: one finding. */
    for (size_t i = 0; i < c->nhits; i++) {
        hit_t *h = &c->hits[i];
        if (h->rule != id || from < h->from || from > h->to)
            continue;
        if (h->fidx >= 0) {
            if (to > h->to) {
                h->to = to;
                size_t s, e;
                bool ex;
                if (c->abs_map) {
                    e = (size_t)c->abs_map[t0 > 0 ? t0 - 1 : 0] + 1;
                } else {
                    sl_engine_map_root(c->text_layer, f0, t0, &s, &e, &ex);
                    e += c->root_base;
                }
                sl_finding_t *f = &c->out->v[h->fidx];
                if (e > f->end)
                    f->end = e;
            }
            return 0;
        }
    }
    bool ok = rule_accepts(r, c->text + f0, t0 - f0);
    hit_t *h = &c->hits[c->nhits < HITS ? c->nhits++ : (c->hit_next++ % HITS)];
    h->rule = id;
    h->from = from;
    h->to = to;
    h->fidx = -1;
    if (!ok)
        return 0;
    size_t s, e;
    bool ex;
    if (c->abs_map) {
        s = (size_t)c->abs_map[f0];
        e = (size_t)c->abs_map[t0 > f0 ? t0 - 1 : f0] + 1;
        ex = true;
    } else {
        sl_engine_map_root(c->text_layer, f0, t0, &s, &e, &ex);
        s += c->root_base;
        e += c->root_base;
    }
    for (size_t i = c->dedupe_from; i < c->out->n; i++) {
        sl_finding_t *f = &c->out->v[i];
        if (f->rule_id == r->info.id && s < f->end + (s == f->end) &&
            e + (e == f->start) > f->start) {
            h->fidx = (long)i;
            return 0;
        }
    }
    if (c->out->n - c->out0 >= MAX_FINDINGS) {
        c->limit = "too many findings";
        return 1;
    }
    sl_finding_t *f = sl_findings_push(c->out);
    f->rule_id = r->info.id;
    f->category = r->info.category;
    f->severity = r->info.severity;
    f->action = r->info.action;
    f->start = s;
    f->end = e;
    f->exact = ex && c->resolved;
    unsigned depth;
    f->layer = finding_layer(c->text_layer, &depth);
    f->depth = (uint8_t)depth;
    sl_inspect_excerpt(c->text + f0, t0 - f0, f->excerpt);
    h->fidx = (long)(c->out->n - 1);
    return 0;
}

int sl_engine_pend_cb(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                      void *vctx)
{
    scan_ctx_t *c = vctx;
    const sl_rule_t *r = &c->rs->rules[id];
    if (!(c->mask & SL_CAT_BIT(r->info.category)))
        return 0;
    from += c->hs_bias;
    to += c->hs_bias;
    /* One rule ending at successive offsets from one run: keep the last end
     * only when the previous one was just before it (a growing match). */
    if (c->npend > 0) {
        pend_t *last = &c->pend[c->npend - 1];
        if (last->id == id && last->to + 1 == to && r->validator == SL_VAL_NONE &&
            r->min_entropy == 0) {
            last->to = to;
            return 0;
        }
    }
    /* The BIP-39 validator looks for the phrase inside whatever region it
     * gets, so its (frequent, mostly rejected) candidates skip resolution. */
    if (c->npend < PENDING && r->validator != SL_VAL_BIP39) {
        c->pend[c->npend++] = (pend_t){id, to};
        return 0;
    }
    c->resolved = false;
    return sl_engine_on_match(id, from, to, flags, c); /* start approximated */
}

/* Longest region looked back over to find a start. */
#define RESOLVE_MAX 4096
/* PCRE2 work per start search: a pathological pattern costs an approximate
 * start, never a stall. */
#define RESOLVE_MATCH_LIMIT 200000

typedef struct start_search {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
} start_search_t;

static pthread_key_t search_key;
static pthread_once_t search_once = PTHREAD_ONCE_INIT;
static __thread start_search_t *tl_search;

static void search_free(void *p)
{
    start_search_t *s = p;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    free(s);
}

static void search_key_init(void)
{
    pthread_key_create(&search_key, search_free);
}

/* This thread's PCRE2 match data (freed when the thread exits), or NULL. */
static start_search_t *start_search(void)
{
    if (tl_search)
        return tl_search;
    pthread_once(&search_once, search_key_init);
    start_search_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->md = pcre2_match_data_create(1, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (s->md == NULL || s->mctx == NULL) {
        search_free(s);
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, RESOLVE_MATCH_LIMIT);
    pthread_setspecific(search_key, s);
    return tl_search = s;
}

/* The leftmost start of a match of r that ends exactly at `to` (a stream
 * offset within c->text), searched from at most the pattern's width back.
 * False when there is none to be had (no start_re, limit hit). */
static bool find_start(scan_ctx_t *c, const sl_rule_t *r, unsigned long long to,
                       unsigned long long *from)
{
    if (r->start_re == NULL || to <= c->text_base)
        return false;
    start_search_t *ss = start_search();
    if (ss == NULL)
        return false;
    unsigned long long w = r->max_width < RESOLVE_MAX ? r->max_width : RESOLVE_MAX;
    unsigned long long lo = to - c->text_base > w ? to - w : c->text_base;
    /* Unanchored from lo, end-anchored at `to`: PCRE2 tries starts left to
     * right, so the first match is the leftmost one ending there. The bytes
     * before lo stay visible to lookbehinds and \b. */
    int rc = pcre2_match(r->start_re, (PCRE2_SPTR)c->text, (PCRE2_SIZE)(to - c->text_base),
                         (PCRE2_SIZE)(lo - c->text_base), PCRE2_ENDANCHORED, ss->md, ss->mctx);
    if (rc < 0)
        return false;
    *from = c->text_base + pcre2_get_ovector_pointer(ss->md)[0];
    return true;
}

void sl_engine_resolve(scan_ctx_t *c, sl_dbgroup_t g)
{
    (void)g;
    unsigned long long text_end = c->text_base + c->tn;
    for (size_t k = 0; k < c->npend && !c->limit; k++) {
        const pend_t *p = &c->pend[k];
        unsigned long long from = 0;
        c->resolved =
            find_start(c, &c->rs->rules[p->id], p->to < text_end ? p->to : text_end, &from);
        if (sl_engine_on_match(p->id, c->resolved ? from : p->to, p->to, 0, c))
            break;
    }
    c->resolved = false;
    c->npend = 0;
}

/* Run one database over a text in block mode. */
static void run_db(scan_ctx_t *c, sl_dbgroup_t g, layer_t *tl, const char *p, size_t n)
{
    const hs_database_t *db = c->rs->db[g].block;
    if (!db || c->limit)
        return;
    c->text_layer = tl;
    c->text = p;
    c->tn = n;
    c->text_base = 0;
    c->nhits = 0;
    c->hit_next = 0;
    c->npend = 0;
    hs_error_t e = hs_scan(db, n ? p : "", (unsigned)n, 0, c->scratch, sl_engine_pend_cb, c);
    if (e != HS_SUCCESS && e != HS_SCAN_TERMINATED)
        c->limit = "scan error";
    sl_engine_resolve(c, g);
}

/* ---- the pipeline ------------------------------------------------------------ */

/* Folding is only worth it when a folded-text database will read it. */
static bool wants_fold(const sl_ruleset_t *rs, unsigned mask)
{
    return ((mask & SL_CAT_BIT(SL_CAT_INJECTION)) && rs->db[SL_DB_INJECTION].block) ||
           ((mask & SL_CAT_BIT(SL_CAT_TOOL_POISONING)) && rs->db[SL_DB_TOOLPOISON].block) ||
           ((mask & SL_CAT_BIT(SL_CAT_SHELL)) && rs->db[SL_DB_SHELL].block);
}

static void run_secrets(scan_ctx_t *c, layer_t *tl, const char *p, size_t n)
{
    run_db(c, SL_DB_SECRETS, tl, p, n);
    run_db(c, SL_DB_SECRETS_PROSE, tl, p, n);
}

static bool wants_secrets(unsigned mask)
{
    return mask & (SL_CAT_BIT(SL_CAT_CREDENTIAL) | SL_CAT_BIT(SL_CAT_FINANCIAL));
}

static void scan_folded(scan_ctx_t *c, layer_t *tl, const char *p, size_t n)
{
    if (c->mask & SL_CAT_BIT(SL_CAT_INJECTION))
        run_db(c, SL_DB_INJECTION, tl, p, n);
    if (c->mask & SL_CAT_BIT(SL_CAT_TOOL_POISONING))
        run_db(c, SL_DB_TOOLPOISON, tl, p, n);
    if (c->mask & SL_CAT_BIT(SL_CAT_SHELL))
        run_db(c, SL_DB_SHELL, tl, p, n);
    if (c->rs->db[SL_DB_LEET].block && n > 0) {
        char *lt = malloc(n);
        if (!lt)
            abort();
        if (sl_leet(p, n, lt)) {
            layer_t LL = {.parent = tl,
                          .p = lt,
                          .n = n,
                          .kind = SL_LAYER_LEET,
                          .how = LAYER_WHOLE,
                          .depth = tl->depth,
                          .root_kind = tl->root_kind};
            run_db(c, SL_DB_LEET, &LL, lt, n);
            free(LL.map);
        }
        free(lt);
    }
}

static void scan_layer(scan_ctx_t *c, layer_t *L);

/* Hand a decoded child to the pipeline if the budgets allow it. */
static void child(scan_ctx_t *c, layer_t *L, sl_layer_t kind, layer_how_t how, size_t lo, size_t hi,
                  const char *p, size_t n)
{
    if (c->limit)
        return;
    if (L->depth >= c->rs->lim.max_depth) {
        c->limit = "decode depth";
        return;
    }
    c->decoded += n;
    if (c->decoded > c->budget) {
        c->limit = "decode budget";
        return;
    }
    layer_t C = {.parent = L,
                 .p = p,
                 .n = n,
                 .kind = kind,
                 .how = how,
                 .lo = lo,
                 .hi = hi,
                 .depth = L->depth + 1,
                 .root_kind = L->root_kind};
    scan_layer(c, &C);
    free(C.map);
}

/* Decode a base64/base32 run in pieces, giving up as soon as more than a
 * tenth of the expected output is unprintable (the output could then never
 * be kept): a random blob costs a fraction of a full decode. */
static size_t decode_checked(unsigned kind, const char *p, size_t n, unsigned char *buf, size_t cap)
{
    if (kind != SL_RUN_BASE64 && kind != SL_RUN_BASE32)
        return sl_decode_hex(p, n, buf, cap);
    const size_t piece = 4096; /* a multiple of both group sizes (4 and 8) */
    size_t expect = kind == SL_RUN_BASE64 ? n / 4 * 3 : n / 8 * 5;
    size_t o = 0, bad = 0;
    for (size_t i = 0; i < n; i += piece) {
        size_t k = n - i < piece ? n - i : piece;
        size_t dn = kind == SL_RUN_BASE64 ? sl_decode_base64(p + i, k, buf + o, cap - o)
                                          : sl_decode_base32(p + i, k, buf + o, cap - o);
        if (dn == SIZE_MAX)
            return SIZE_MAX;
        bad += sl_count_unprintable(buf + o, dn);
        o += dn;
        if (bad * 10 > expect + 10)
            return SIZE_MAX;
    }
    return o;
}

static void decode_runs(scan_ctx_t *c, layer_t *L, const sl_textinfo_t *ti)
{
    unsigned char *buf = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < ti->n_runs && !c->limit; i++) {
        const sl_run_t *r = &ti->runs[i];
        const char *rp = L->p + r->start;
        if (r->len > cap) {
            cap = r->len;
            free(buf);
            buf = malloc(cap);
            if (!buf)
                abort();
        }
        static const struct {
            unsigned kind;
            sl_layer_t layer;
        } order[] = {{SL_RUN_BASE64, SL_LAYER_BASE64},
                     {SL_RUN_BASE32, SL_LAYER_BASE32},
                     {SL_RUN_HEX, SL_LAYER_HEX},
                     {SL_RUN_HEXD, SL_LAYER_HEX}};
        for (size_t k = 0; k < 4 && !c->limit; k++) {
            if (!(r->kinds & order[k].kind))
                continue;
            /* base64 may start mid-group when glued to a prefix: try the shifts. */
            size_t shifts = order[k].kind == SL_RUN_BASE64 ? 4 : 1;
            for (size_t sh = 0; sh < shifts; sh++) {
                size_t dn = decode_checked(order[k].kind, rp + sh, r->len - sh, buf, cap);
                if (dn == SIZE_MAX || dn < 6 || !sl_mostly_printable(buf, dn))
                    continue;
                child(c, L, order[k].layer, LAYER_REGION, r->start, r->start + r->len,
                      (const char *)buf, dn);
                break;
            }
        }
    }
    free(buf);
}

static void scan_layer(scan_ctx_t *c, layer_t *L)
{
    bool sec = wants_secrets(c->mask), fold = wants_fold(c->rs, c->mask);
    bool skip = c->skip_root_dbs && L->how == LAYER_ROOT;
    if (sec && !skip)
        run_secrets(c, L, L->p, L->n);
    sl_textinfo_t ti = {0};
    sl_analyze(L->p, L->n, c->rs->lim.min_run, &ti);
    char *buf = NULL;
    if (ti.has_high) {
        /* Case-preserving clean variant: width forms, homoglyphs and
         * invisible characters undone; tag characters give up their ASCII. */
        buf = malloc(L->n + 1);
        sl_buf_t tags = {0};
        size_t tlo = SIZE_MAX, thi = 0;
        if (!buf)
            abort();
        size_t fn = sl_fold(L->p, L->n, 0, buf, NULL, &tags, &tlo, &thi);
        if (sec && (fn != L->n || memcmp(buf, L->p, fn) != 0)) {
            layer_t F = {.parent = L,
                         .p = buf,
                         .n = fn,
                         .kind = SL_LAYER_FOLDED,
                         .how = LAYER_WHOLE,
                         .fold_flags = 0,
                         .depth = L->depth,
                         .root_kind = L->root_kind};
            run_secrets(c, &F, buf, fn);
            free(F.map);
        }
        if (tags.n > 0)
            child(c, L, SL_LAYER_TAGS, LAYER_REGION, tlo, thi, tags.p, tags.n);
        sl_buf_free(&tags);
    }
    if (fold && !skip) {
        if (!buf)
            buf = malloc(L->n + 1);
        if (!buf)
            abort();
        size_t fn = sl_fold(L->p, L->n, SL_FOLD_CASE | SL_FOLD_WS, buf, NULL, NULL, NULL, NULL);
        layer_t F = {.parent = L,
                     .p = buf,
                     .n = fn,
                     .kind = SL_LAYER_FOLDED,
                     .how = LAYER_WHOLE,
                     .fold_flags = SL_FOLD_CASE | SL_FOLD_WS,
                     .depth = L->depth,
                     .root_kind = L->root_kind};
        scan_folded(c, &F, buf, fn);
        free(F.map);
        /* Some markers live in what folding removes (line structure, runs of
         * zero-width or tag characters): the rules that may need it (needs_raw)
         * also see raw text. */
        if (c->mask & SL_CAT_BIT(SL_CAT_INJECTION))
            run_db(c, SL_DB_INJECTION_RAW, L, L->p, L->n);
        if (c->mask & SL_CAT_BIT(SL_CAT_TOOL_POISONING))
            run_db(c, SL_DB_TOOLPOISON_RAW, L, L->p, L->n);
        if (c->mask & SL_CAT_BIT(SL_CAT_SHELL))
            run_db(c, SL_DB_SHELL_RAW, L, L->p, L->n);
    }
    free(buf);
    buf = NULL;
    if (c->limit)
        goto out;
    if (ti.has_pct || ti.has_amp || ti.has_bslash) {
        char *d = malloc(L->n + 1);
        if (!d)
            abort();
        bool lim = false;
        sl_layer_t kind;
        size_t dn = unescape(L->p, L->n, d, NULL, &kind, &lim);
        if (lim)
            c->limit = "escape nesting";
        else if (dn != L->n)
            child(c, L, kind, LAYER_WHOLE, 0, 0, d, dn);
        free(d);
    }
    if (ti.n_runs)
        decode_runs(c, L, &ti);
out:
    sl_textinfo_free(&ti);
}

void sl_engine_scan_root(scan_ctx_t *c, const char *p, size_t n, sl_layer_t root_kind)
{
    layer_t R = {.p = p, .n = n, .kind = root_kind, .how = LAYER_ROOT, .root_kind = root_kind};
    c->budget = c->rs->lim.max_decoded_bytes ? c->rs->lim.max_decoded_bytes : 4 * n + 65536;
    c->decoded = 0;
    scan_layer(c, &R);
}

void sl_engine_scan_decoded(scan_ctx_t *c, const char *p, size_t n)
{
    c->skip_root_dbs = true;
    sl_engine_scan_root(c, p, n, SL_LAYER_RAW);
    c->skip_root_dbs = false;
}

int sl_inspect_scan(const sl_ruleset_t *rs, sl_surface_t surface, const char *p, size_t n,
                    sl_findings_t *out)
{
    size_t out0 = out->n;
    scan_ctx_t c = {.rs = rs,
                    .mask = sl_inspect_surface_categories(surface),
                    .out = out,
                    .out0 = out0,
                    .dedupe_from = out0};
    c.scratch = sl_engine_scratch(rs);
    if (!c.scratch) {
        sl_engine_add_limit(out, out0, n, "scratch allocation");
        return -1;
    }
    if (n > rs->lim.max_input_bytes || n > UINT32_MAX / 2) {
        sl_engine_add_limit(out, out0, n, "input too large");
        return (int)(out->n - out0);
    }
    sl_engine_scan_root(&c, p, n, SL_LAYER_RAW);
    if (c.limit)
        sl_engine_add_limit(out, out0, n, c.limit);
    return (int)(out->n - out0);
}

/* Scan the concatenation of `vals` (values [0, n) already scanned one by one
 * when per_value_from != SIZE_MAX, their findings starting at that index)
 * and keep what crosses a boundary and no per-value finding explains. */
static int scan_join(const sl_ruleset_t *rs, sl_surface_t surface, const sl_view_t *vals, size_t n,
                     sl_findings_t *out, size_t out0, const size_t *fend)
{
    if (n < 2)
        return 0;
    sl_buf_t joined = {0};
    size_t *ends = malloc(n * sizeof *ends);
    if (!ends)
        abort();
    for (size_t i = 0; i < n; i++) {
        sl_buf_append(&joined, vals[i].p, vals[i].n);
        ends[i] = joined.n;
    }
    int rc = 0;
    size_t before = out->n;
    scan_ctx_t c = {.rs = rs,
                    .mask = sl_inspect_surface_categories(surface),
                    .out = out,
                    .out0 = out0,
                    .dedupe_from = before};
    c.scratch = sl_engine_scratch(rs);
    if (!c.scratch) {
        sl_engine_add_limit(out, out0, joined.n, "scratch allocation");
        rc = -1;
        goto done;
    }
    sl_engine_scan_root(&c, joined.p ? joined.p : "", joined.n, SL_LAYER_JOINED);
    size_t w = before;
    for (size_t i = before; i < out->n; i++) {
        sl_finding_t *f = &out->v[i];
        bool keep = f->category == SL_CAT_LIMIT;
        for (size_t k = 0; k + 1 < n && !keep; k++)
            keep = f->start < ends[k] && f->end > ends[k];
        for (size_t v = 0, fi = out0; fend && v < n && keep && f->category != SL_CAT_LIMIT; v++) {
            size_t base = v ? ends[v - 1] : 0;
            for (; fi < fend[v] && keep; fi++) {
                const sl_finding_t *g = &out->v[fi];
                keep = !(g->rule_id == f->rule_id && base + g->start < f->end &&
                         base + g->end > f->start);
            }
        }
        if (keep)
            out->v[w++] = *f;
    }
    out->n = w;
    if (c.limit)
        sl_engine_add_limit(out, out0, joined.n, c.limit);
done:
    free(ends);
    sl_buf_free(&joined);
    return rc;
}

int sl_inspect_scan_joined(const sl_ruleset_t *rs, sl_surface_t surface, const sl_view_t *vals,
                           size_t n, sl_findings_t *out)
{
    size_t out0 = out->n;
    if (scan_join(rs, surface, vals, n, out, out0, NULL) < 0)
        return -1;
    return (int)(out->n - out0);
}

int sl_inspect_scan_values(const sl_ruleset_t *rs, sl_surface_t surface, const sl_view_t *vals,
                           size_t n, sl_findings_t *out)
{
    size_t out0 = out->n;
    size_t *fend = calloc(n + 1, sizeof *fend);
    if (!fend)
        abort();
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (sl_inspect_scan(rs, surface, vals[i].p, vals[i].n, out) < 0)
            rc = -1;
        fend[i] = out->n;
    }
    if (scan_join(rs, surface, vals, n, out, out0, fend) < 0)
        rc = -1;
    free(fend);
    return rc < 0 ? -1 : (int)(out->n - out0);
}
