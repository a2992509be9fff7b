/* Leftmost-longest exact multi-pattern matching: a 64 Kibit filter on the
 * first two bytes, then the few patterns starting with that byte. */
#include "secrets/match.h"

#include <stdlib.h>
#include <string.h>

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        abort();
    return p;
}

static int by_first_then_longest(const void *a, const void *b, void *ctx)
{
    const sl_smatch_t *sort_m = ctx;
    uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;
    unsigned cx = sort_m->pat[x][0], cy = sort_m->pat[y][0];
    if (cx != cy)
        return cx < cy ? -1 : 1;
    if (sort_m->len[x] != sort_m->len[y])
        return sort_m->len[x] > sort_m->len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* 16-bit hash of the 4 bytes at p. */
static inline unsigned gram_key(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return (unsigned)((v * 2654435761u) >> 16);
}

bool sl_smatch_init(sl_smatch_t *m, const unsigned char *const *pat, const size_t *len, size_t n)
{
    memset(m, 0, sizeof *m);
    if (n > SL_SMATCH_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (len[i] < 2 || len[i] > UINT32_MAX)
            return false;
        m->pat[i] = pat[i];
        m->len[i] = (uint32_t)len[i];
        m->order[i] = (uint16_t)i;
        if (len[i] > m->maxlen)
            m->maxlen = len[i];
        unsigned k = (unsigned)pat[i][0] << 8 | pat[i][1];
        m->pair[k / 64] |= 1ull << (k % 64);
    }
    m->n = n;
    size_t minlen = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (len[i] < minlen)
            minlen = len[i];
    /* Sampling needs 4-grams: patterns of 7 bytes or more. */
    m->stride = n && minlen >= 7 ? minlen - 3 : 0;
    for (size_t i = 0; m->stride && i < n; i++)
        for (size_t o = 0; o < m->stride; o++) {
            unsigned k = gram_key(pat[i] + o);
            m->gram[k / 64] |= 1ull << (k % 64);
        }
    qsort_r(m->order, n, sizeof *m->order, by_first_then_longest, m);
    size_t o = 0;
    for (unsigned c = 0; c < 256; c++) {
        m->first[c] = (uint16_t)o;
        while (o < n && m->pat[m->order[o]][0] == c)
            o++;
    }
    m->first[256] = (uint16_t)o;
    return true;
}

/* Leftmost match starting in [from, limit) that fits in b[0..n); returns its
 * start (and pattern in *pi) or n when there is none. Every position. */
static size_t find_at(const sl_smatch_t *m, const sl_smatch_act_t *act, const unsigned char *b,
                      size_t n, size_t from, size_t limit, size_t *pi)
{
    if (n < 2)
        return n;
    size_t last = limit < n - 1 ? limit : n - 1;
    for (size_t j = from; j < last; j++) {
        unsigned k = (unsigned)b[j] << 8 | b[j + 1];
        if (!((m->pair[k / 64] >> (k % 64)) & 1))
            continue;
        for (unsigned o = m->first[b[j]]; o < m->first[b[j] + 1]; o++) {
            unsigned p = m->order[o];
            if (act[p].kind == SL_SM_OFF || m->len[p] > n - j)
                continue;
            if (memcmp(m->pat[p], b + j, m->len[p]) == 0) {
                *pi = p;
                return j;
            }
        }
    }
    return n;
}

/* Decide positions [start, limit) of b[0..n): write them (transformed) to
 * out and return where the next undecided byte is (>= limit). */
/* Same answer as find_at, sampling: every pattern is at least stride + 3
 * bytes, so an occurrence at j has one of its first `stride` 4-grams at the
 * multiple of stride in [j, j + stride). Only windows whose sampled 4-gram
 * hashes into the table of pattern-head 4-grams are searched position by
 * position. */
static size_t find(const sl_smatch_t *m, const sl_smatch_act_t *act, const unsigned char *b,
                   size_t n, size_t from, size_t limit, size_t *pi)
{
    size_t s = m->stride;
    if (s < 4 || from >= limit)
        return find_at(m, act, b, n, from, limit, pi);
    /* Window of sample p: starts in [p - s + 1, p]. */
    for (size_t p = (from + s - 1) / s * s;; p += s) {
        size_t lo = p >= s - 1 ? p - (s - 1) : 0;
        if (lo < from)
            lo = from;
        if (lo >= limit || p + 3 >= n)
            return n;
        unsigned k = gram_key(b + p);
        if (!((m->gram[k / 64] >> (k % 64)) & 1))
            continue;
        size_t hi = p + 1 < limit ? p + 1 : limit;
        size_t at = find_at(m, act, b, n, lo, hi, pi);
        if (at < n)
            return at;
    }
}

static size_t scan(const sl_smatch_t *m, const sl_smatch_act_t *act, const unsigned char *b,
                   size_t n, size_t start, size_t limit, sl_buf_t *out, sl_smatch_hits_t *hits,
                   size_t *matches)
{
    size_t i = start, p = 0;
    for (;;) {
        size_t at = find(m, act, b, n, i, limit, &p);
        if (at >= n)
            break;
        if (out != NULL) {
            sl_buf_append(out, b + i, at - i);
            if (act[p].kind == SL_SM_REPLACE)
                sl_buf_append(out, act[p].to, act[p].to_n);
            else
                sl_buf_append(out, b + at, m->len[p]);
        }
        if (hits != NULL)
            hits->bits[p / 64] |= 1ull << (p % 64);
        (*matches)++;
        i = at + m->len[p];
    }
    if (i < limit) {
        if (out != NULL)
            sl_buf_append(out, b + i, limit - i);
        i = limit;
    }
    return i;
}

size_t sl_smatch_apply(const sl_smatch_t *m, const sl_smatch_act_t *act, const void *in, size_t n,
                       sl_buf_t *out, sl_smatch_hits_t *hits)
{
    size_t matches = 0;
    scan(m, act, in, n, 0, n, out, hits, &matches);
    return matches;
}

void sl_smatch_stream_init(sl_smatch_stream_t *s, const sl_smatch_t *m, const sl_smatch_act_t *act)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->act = act;
    s->carry_cap = 2 * (m->maxlen ? m->maxlen : 1);
    s->carry = xmalloc(s->carry_cap);
}

static void count_out(sl_smatch_stream_t *s, sl_buf_t *out, size_t before)
{
    if (out != NULL)
        s->out_bytes += out->n - before;
}

void sl_smatch_stream_feed(sl_smatch_stream_t *s, const void *vin, size_t n, sl_buf_t *out)
{
    const unsigned char *in = vin;
    const sl_smatch_t *m = s->m;
    size_t before = out ? out->n : 0;
    size_t hold = m->maxlen ? m->maxlen - 1 : 0;
    s->in_bytes += n;
    if (n == 0)
        return;
    if (s->carry_n > 0) {
        if (s->carry_n + n <= s->carry_cap) {
            memcpy(s->carry + s->carry_n, in, n);
            size_t bn = s->carry_n + n;
            size_t limit = bn > hold ? bn - hold : 0;
            size_t r = scan(m, s->act, s->carry, bn, 0, limit, out, &s->hits, &s->matches);
            memmove(s->carry, s->carry + r, bn - r);
            s->carry_n = bn - r;
            count_out(s, out, before);
            return;
        }
        /* The chunk is longer than maxlen: decide the held-back bytes with
         * maxlen bytes of lookahead, then continue in the chunk itself. */
        size_t k = m->maxlen;
        memcpy(s->carry + s->carry_n, in, k);
        size_t r =
            scan(m, s->act, s->carry, s->carry_n + k, 0, s->carry_n, out, &s->hits, &s->matches);
        size_t off = r - s->carry_n;
        s->carry_n = 0;
        in += off;
        n -= off;
    }
    size_t limit = n > hold ? n - hold : 0;
    size_t r = scan(m, s->act, in, n, 0, limit, out, &s->hits, &s->matches);
    memcpy(s->carry, in + r, n - r);
    s->carry_n = n - r;
    count_out(s, out, before);
}

void sl_smatch_stream_finish(sl_smatch_stream_t *s, sl_buf_t *out)
{
    size_t before = out ? out->n : 0;
    scan(s->m, s->act, s->carry, s->carry_n, 0, s->carry_n, out, &s->hits, &s->matches);
    explicit_bzero(s->carry, s->carry_n);
    s->carry_n = 0;
    count_out(s, out, before);
}

void sl_smatch_stream_free(sl_smatch_stream_t *s)
{
    if (s->carry != NULL) {
        explicit_bzero(s->carry, s->carry_cap);
        free(s->carry);
    }
    s->carry = NULL;
    s->carry_n = 0;
}
