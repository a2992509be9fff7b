/* Host patterns: validation, single matching, and compiled sets. */
#include "policy/hostglob.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HOST_MAX 253
#define LABEL_MAX 63

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_name_char(char c)
{
    c = lower(c);
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* Drop one trailing dot (the DNS root) unless that would leave nothing. */
static size_t strip_dot(const char *p, size_t n)
{
    return (n > 1 && p[n - 1] == '.') ? n - 1 : n;
}

static bool is_ip_pattern(const char *pattern)
{
    return strchr(pattern, '/') != NULL || strchr(pattern, ':') != NULL;
}

const char *sl_hostglob_check(const char *pattern)
{
    if (pattern == NULL || pattern[0] == '\0')
        return "empty host pattern";
    size_t n = strlen(pattern);
    if (n == 1 && pattern[0] == '*')
        return NULL;
    sl_cidr_t c;
    if (is_ip_pattern(pattern))
        return sl_cidr_parse(pattern, &c) == 0
                   ? NULL
                   : "invalid IP/CIDR pattern (canonical address, host bits zero)";
    sl_ip_t ip;
    if (sl_ip_parse_literal(pattern, n, &ip) != 0)
        return sl_cidr_parse(pattern, &c) == 0
                   ? NULL
                   : "numeric host pattern must be a dotted-quad IPv4 address";
    n = strip_dot(pattern, n);
    if (n == 1 && pattern[0] == '*')
        return "write \"*\" for every host, not \"*.\"";
    if (n > HOST_MAX)
        return "host pattern longer than 253 bytes";
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = i < n ? pattern[i] : '.';
        if (ch == '.') {
            if (label == 0)
                return "empty label in host pattern";
            label = 0;
            continue;
        }
        if (ch == '*') {
            if (i > 0 && pattern[i - 1] == '*')
                return "'**' in host pattern";
        } else if (!is_name_char(ch)) {
            return "invalid character in host pattern (allowed: a-z 0-9 - _ . *)";
        }
        if (++label > LABEL_MAX)
            return "label longer than 63 bytes in host pattern";
    }
    return NULL;
}

/* One label against one pattern label; '*' matches any run of bytes inside
 * the label, and a label that is only '*' needs at least one byte. */
static bool label_match(const char *pat, size_t pn, const char *s, size_t sn)
{
    if (pn == 1 && pat[0] == '*')
        return sn > 0;
    size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;
    while (si < sn) {
        if (pi < pn && pat[pi] == '*') {
            star = pi++;
            mark = si;
        } else if (pi < pn && lower(pat[pi]) == lower(s[si])) {
            pi++;
            si++;
        } else if (star != SIZE_MAX) {
            pi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (pi < pn && pat[pi] == '*')
        pi++;
    return pi == pn;
}

static size_t count_labels(const char *p, size_t n)
{
    size_t k = 1;
    for (size_t i = 0; i < n; i++)
        k += p[i] == '.';
    return k;
}

/* Labels of pat (no leading "*.") against exactly the last labels of host
 * starting at host[off]. */
static bool labels_match(const char *pat, size_t pn, const char *s, size_t sn)
{
    size_t pi = 0, si = 0;
    for (;;) {
        const char *pd = memchr(pat + pi, '.', pn - pi);
        const char *sd = memchr(s + si, '.', sn - si);
        size_t pe = pd ? (size_t)(pd - pat) : pn;
        size_t se = sd ? (size_t)(sd - s) : sn;
        if (!label_match(pat + pi, pe - pi, s + si, se - si))
            return false;
        if (!pd || !sd)
            return !pd && !sd;
        pi = pe + 1;
        si = se + 1;
    }
}

/* A name glob (validated, trailing dot stripped) against a host (trailing
 * dot stripped). */
static bool glob_match(const char *pat, size_t pn, const char *s, size_t sn)
{
    if (sn == 0)
        return false;
    if (pn >= 2 && pat[0] == '*' && pat[1] == '.') {
        /* Leading "*." spans one or more whole labels. */
        const char *rest = pat + 2;
        size_t rn = pn - 2;
        size_t want = count_labels(rest, rn);
        size_t have = count_labels(s, sn);
        if (have <= want)
            return false;
        size_t skip = have - want, off = 0;
        for (size_t i = 0; i < sn && skip > 0; i++) {
            if (s[i] == '.') {
                skip--;
                off = i + 1;
            }
        }
        /* The labels the '*' stands for must not be empty. */
        if (off < 2)
            return false;
        return labels_match(rest, rn, s + off, sn - off);
    }
    return labels_match(pat, pn, s, sn);
}

bool sl_hostglob_match(const char *pattern, sl_view_t host)
{
    if (host.p == NULL || host.n == 0 || sl_hostglob_check(pattern) != NULL)
        return false;
    sl_ip_t ip, pip;
    sl_cidr_t c;
    if (pattern[0] == '*' && pattern[1] == '\0')
        return true;
    int lit = sl_ip_parse_literal(host.p, host.n, &ip);
    if (is_ip_pattern(pattern) || sl_ip_parse_literal(pattern, strlen(pattern), &pip) != 0) {
        /* IP patterns match only IP literals, never names. */
        if (lit != 1 || sl_cidr_parse(pattern, &c) != 0)
            return false;
        return sl_cidr_contains(&c, &ip);
    }
    if (lit != 0)
        return false;
    size_t pn = strip_dot(pattern, strlen(pattern));
    return glob_match(pattern, pn, host.p, strip_dot(host.p, host.n));
}

/* ---- Compiled sets */

typedef struct entry {
    uint64_t hash;   /* reversed-FNV hash of the key, 0 = free slot */
    const char *key; /* lowercase key, owned by the set */
    size_t n;        /* key length */
    int idx;         /* lowest pattern index with this key */
} entry_t;

typedef struct table {
    entry_t *slots; /* open addressing, linear probing */
    size_t mask;    /* capacity - 1; capacity is a power of two */
} table_t;

typedef struct glob {
    const char *pat; /* lowercase, no trailing dot */
    size_t n;        /* pattern length */
    int idx;         /* pattern index */
    int next;        /* next glob (position in globs) with the same tail, or -1 */
} glob_t;

typedef struct ipent {
    sl_cidr_t cidr;
    int idx;
} ipent_t;

struct sl_hostset {
    char **orig;    /* patterns as given */
    char **norm;    /* lowercase, trailing dot stripped */
    size_t n;       /* number of patterns */
    int star;       /* index of the first "*", or -1 */
    table_t exact;  /* exact names */
    table_t suffix; /* "*.suffix" patterns, keyed by suffix */
    table_t tails;  /* globs by the whole labels after their last '*' */
    int loose;      /* first glob with no such labels ("api.*"), or -1 */
    glob_t *globs;  /* every other name glob; chains run in index order */
    size_t nglobs;  /* entries in globs */
    ipent_t *ips;   /* IP/CIDR patterns, in index order */
    size_t nips;    /* entries in ips */
};

#define FNV_OFF 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

/* FNV-1a run from the last byte to the first: the running value at each '.'
 * is the hash of the suffix after it, so one pass over a host yields the keys
 * for every "*.suffix" lookup and the exact lookup. */
static uint64_t rhash_step(uint64_t h, char c)
{
    return (h ^ (uint8_t)lower(c)) * FNV_PRIME;
}

static uint64_t rhash(const char *p, size_t n)
{
    uint64_t h = FNV_OFF;
    while (n > 0)
        h = rhash_step(h, p[--n]);
    return h | 1;
}

static int table_init(table_t *t, size_t count)
{
    size_t cap = 8;
    while (cap < count * 2)
        cap <<= 1;
    t->slots = calloc(cap, sizeof(entry_t));
    t->mask = cap - 1;
    return t->slots ? 0 : -1;
}

/* Insert `key` with `idx` unless present; returns the entry either way. */
static entry_t *table_put(table_t *t, const char *key, size_t n, int idx)
{
    uint64_t h = rhash(key, n);
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        entry_t *e = &t->slots[i];
        if (e->hash == 0) {
            *e = (entry_t){h, key, n, idx};
            return e;
        }
        if (e->hash == h && e->n == n && memcmp(e->key, key, n) == 0)
            return e; /* an earlier pattern already holds this key */
    }
}

static bool eq_lower(const char *key, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (key[i] != lower(s[i]))
            return false;
    return true;
}

static int table_get(const table_t *t, uint64_t h, const char *s, size_t n)
{
    h |= 1;
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        const entry_t *e = &t->slots[i];
        if (e->hash == 0)
            return -1;
        if (e->hash == h && e->n == n && eq_lower(e->key, s, n))
            return e->idx;
    }
}

/* Globs are only tried when the host ends in the whole labels that follow
 * their last '*' ("x-*.example.org" needs a host ending in ".example.org"),
 * which the reverse hash pass finds for free. Chains keep index order. */
static void add_glob(sl_hostset_t *s, const char *q, size_t len, int idx)
{
    int pos = (int)s->nglobs++;
    s->globs[pos] = (glob_t){q, len, idx, -1};
    const char *dot = strchr(strrchr(q, '*'), '.');
    int *link = &s->loose;
    if (dot != NULL && dot[1] != '\0') {
        entry_t *e = table_put(&s->tails, dot + 1, len - (size_t)(dot + 1 - q), pos);
        if (e->idx == pos)
            return;
        link = &e->idx;
    }
    while (*link >= 0)
        link = &s->globs[*link].next;
    *link = pos;
}

/* Try the globs of one chain that could still lower `best`. */
static int try_chain(const sl_hostset_t *s, int pos, const char *p, size_t n, int best)
{
    for (; pos >= 0 && s->globs[pos].idx < best; pos = s->globs[pos].next)
        if (glob_match(s->globs[pos].pat, s->globs[pos].n, p, n))
            return s->globs[pos].idx;
    return best;
}

void sl_hostset_free(sl_hostset_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->orig[i]);
        free(s->norm[i]);
    }
    free(s->orig);
    free(s->norm);
    free(s->exact.slots);
    free(s->suffix.slots);
    free(s->tails.slots);
    free(s->globs);
    free(s->ips);
    free(s);
}

sl_hostset_t *sl_hostset_new(char *const *patterns, size_t n)
{
    sl_hostset_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->star = -1;
    s->loose = -1;
    if (n > INT32_MAX)
        goto fail;
    s->orig = calloc(n ? n : 1, sizeof(char *));
    s->norm = calloc(n ? n : 1, sizeof(char *));
    s->globs = calloc(n ? n : 1, sizeof(glob_t));
    s->ips = calloc(n ? n : 1, sizeof(ipent_t));
    if (!s->orig || !s->norm || !s->globs || !s->ips)
        goto fail;
    if (table_init(&s->exact, n) < 0 || table_init(&s->suffix, n) < 0 ||
        table_init(&s->tails, n) < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *p = patterns[i];
        if (sl_hostglob_check(p) != NULL)
            goto fail;
        size_t len = strlen(p);
        s->orig[i] = strdup(p);
        s->norm[i] = malloc(len + 1);
        s->n = i + 1;
        if (!s->orig[i] || !s->norm[i])
            goto fail;
        len = strip_dot(p, len);
        for (size_t k = 0; k < len; k++)
            s->norm[i][k] = lower(p[k]);
        s->norm[i][len] = '\0';
        const char *q = s->norm[i];
        int idx = (int)i;
        sl_ip_t ip;
        if (len == 1 && q[0] == '*') {
            if (s->star < 0)
                s->star = idx;
        } else if (is_ip_pattern(q) || sl_ip_parse_literal(q, len, &ip) != 0) {
            if (sl_cidr_parse(q, &s->ips[s->nips].cidr) != 0)
                goto fail;
            s->ips[s->nips++].idx = idx;
        } else if (strchr(q, '*') == NULL) {
            table_put(&s->exact, q, len, idx);
        } else if (q[0] == '*' && q[1] == '.' && strchr(q + 2, '*') == NULL) {
            table_put(&s->suffix, q + 2, len - 2, idx);
        } else {
            add_glob(s, q, len, idx);
        }
    }
    return s;
fail:
    sl_hostset_free(s);
    return NULL;
}

int sl_hostset_match(const sl_hostset_t *s, sl_view_t host, const sl_ip_t *ip)
{
    int best = INT32_MAX;
    const char *p = host.p;
    size_t n = p ? strip_dot(p, host.n) : 0;
    int lit = -1;
    sl_ip_t hostip;

    if (n > 0) {
        lit = sl_ip_parse_literal(p, host.n, &hostip);
        if (s->star >= 0)
            best = s->star;
    }
    if (lit == 0) {
        uint64_t h = FNV_OFF;
        for (size_t i = n; i-- > 0;) {
            if (p[i] == '.' && i > 0) {
                int r = table_get(&s->suffix, h, p + i + 1, n - i - 1);
                if (r >= 0 && r < best)
                    best = r;
                r = table_get(&s->tails, h, p + i + 1, n - i - 1);
                if (r >= 0)
                    best = try_chain(s, r, p, n, best);
            }
            h = rhash_step(h, p[i]);
        }
        int r = table_get(&s->exact, h, p, n);
        if (r >= 0 && r < best)
            best = r;
        best = try_chain(s, s->loose, p, n, best);
    }
    for (size_t i = 0; i < s->nips && s->ips[i].idx < best; i++) {
        if ((ip && sl_cidr_contains(&s->ips[i].cidr, ip)) ||
            (lit == 1 && sl_cidr_contains(&s->ips[i].cidr, &hostip)))
            best = s->ips[i].idx;
    }
    return best == INT32_MAX ? -1 : best;
}

const char *sl_hostset_pattern(const sl_hostset_t *s, int i)
{
    if (s == NULL || i < 0 || (size_t)i >= s->n)
        return NULL;
    return s->orig[i];
}

size_t sl_hostset_count(const sl_hostset_t *s)
{
    return s ? s->n : 0;
}
