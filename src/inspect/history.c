/* Split-secret history (see history.h). */
#include "inspect/history.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

#define SHARDS 16
#define BUCKETS 64    /* identity hash buckets per shard */
#define MAX_FRAGS 256 /* fragments of one request looked at */
#define MAX_JOIN 512  /* bytes of a channel's history joined to the current value */

typedef struct frag {
    struct frag *next; /* newer */
    uint64_t chan;     /* hash of the channel name */
    uint64_t t_ms;
    size_t n;
    char p[];
} frag_t;

typedef struct ident {
    struct ident *hnext;         /* hash chain */
    struct ident *lprev, *lnext; /* LRU list, most recent first */
    uint64_t hash;
    frag_t *head, *tail; /* oldest .. newest */
    size_t count, bytes;
    size_t name_n;
    char name[];
} ident_t;

typedef struct shard {
    pthread_mutex_t lock;
    ident_t *buckets[BUCKETS];
    ident_t *lru_head, *lru_tail;
    size_t n_idents;
    size_t bytes;
} shard_t;

struct sl_history {
    shard_t shards[SHARDS];
};

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

sl_history_t *sl_history_new(void)
{
    sl_history_t *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    for (size_t i = 0; i < SHARDS; i++)
        pthread_mutex_init(&h->shards[i].lock, NULL);
    return h;
}

static void drop_oldest(shard_t *s, ident_t *id)
{
    frag_t *f = id->head;
    id->head = f->next;
    if (id->head == NULL)
        id->tail = NULL;
    id->count--;
    id->bytes -= f->n;
    s->bytes -= f->n;
    free(f);
}

static void ident_free(shard_t *s, ident_t *id)
{
    while (id->head)
        drop_oldest(s, id);
    free(id);
}

void sl_history_free(sl_history_t *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < SHARDS; i++) {
        shard_t *s = &h->shards[i];
        for (ident_t *id = s->lru_head, *nx; id; id = nx) {
            nx = id->lnext;
            ident_free(s, id);
        }
        pthread_mutex_destroy(&s->lock);
    }
    free(h);
}

void sl_history_stats(sl_history_t *h, size_t *identities, size_t *bytes)
{
    size_t ni = 0, nb = 0;
    for (size_t i = 0; i < SHARDS; i++) {
        shard_t *s = &h->shards[i];
        pthread_mutex_lock(&s->lock);
        ni += s->n_idents;
        nb += s->bytes;
        pthread_mutex_unlock(&s->lock);
    }
    if (identities)
        *identities = ni;
    if (bytes)
        *bytes = nb;
}

static void lru_unlink(shard_t *s, ident_t *id)
{
    if (id->lprev)
        id->lprev->lnext = id->lnext;
    else
        s->lru_head = id->lnext;
    if (id->lnext)
        id->lnext->lprev = id->lprev;
    else
        s->lru_tail = id->lprev;
    id->lprev = id->lnext = NULL;
}

static void lru_push_front(shard_t *s, ident_t *id)
{
    id->lnext = s->lru_head;
    id->lprev = NULL;
    if (s->lru_head)
        s->lru_head->lprev = id;
    s->lru_head = id;
    if (s->lru_tail == NULL)
        s->lru_tail = id;
}

static void evict(shard_t *s, ident_t *id)
{
    lru_unlink(s, id);
    ident_t **pp = &s->buckets[id->hash % BUCKETS];
    while (*pp != id)
        pp = &(*pp)->hnext;
    *pp = id->hnext;
    s->n_idents--;
    ident_free(s, id);
}

/* Find or create the identity's entry (most recently used now). NULL on OOM. */
static ident_t *lookup(shard_t *s, uint64_t hash, sl_view_t name, size_t max_idents)
{
    ident_t **b = &s->buckets[hash % BUCKETS];
    for (ident_t *id = *b; id; id = id->hnext)
        if (id->hash == hash && id->name_n == name.n && memcmp(id->name, name.p, name.n) == 0) {
            lru_unlink(s, id);
            lru_push_front(s, id);
            return id;
        }
    while (s->n_idents >= max_idents && s->lru_tail)
        evict(s, s->lru_tail);
    ident_t *id = calloc(1, sizeof *id + name.n);
    if (id == NULL)
        return NULL;
    id->hash = hash;
    id->name_n = name.n;
    memcpy(id->name, name.p, name.n);
    id->hnext = *b;
    *b = id;
    lru_push_front(s, id);
    s->n_idents++;
    return id;
}

static bool all_digits(const char *p, size_t n, uint64_t *val)
{
    if (n == 0 || n > 19)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *val = v;
    return true;
}

/* Two consecutive values of a channel that look like a counter (a page
 * number, an offset, a timestamp): near-equal numbers. Joining them would
 * only build long digit runs that no secret was split into. */
static bool counters(const char *a, size_t an, const char *b, size_t bn)
{
    uint64_t x, y;
    if (!all_digits(a, an, &x) || !all_digits(b, bn, &y))
        return false;
    uint64_t d = x > y ? x - y : y - x, m = x > y ? x : y;
    return d <= 2 || d <= m / 1000;
}

/* The current value of channel `chan`: the values of every fragment with
 * that channel, in order. */
static void current_value(const sl_history_frag_t *frags, size_t n, size_t first, sl_buf_t *cur)
{
    for (size_t j = first; j < n; j++)
        if (frags[j].channel.n == frags[first].channel.n &&
            memcmp(frags[j].channel.p, frags[first].channel.p, frags[first].channel.n) == 0)
            sl_buf_append(cur, frags[j].value.p, frags[j].value.n);
}

static bool channel_seen_before(const sl_history_frag_t *frags, size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (frags[j].channel.n == frags[i].channel.n &&
            memcmp(frags[j].channel.p, frags[i].channel.p, frags[i].channel.n) == 0)
            return true;
    return false;
}

/* Drop the oldest `j` pieces of the join. */
static void drop_pieces(sl_buf_t *hist, size_t *starts, size_t *n_starts, size_t j)
{
    size_t cut = j < *n_starts ? starts[j] : hist->n;
    sl_buf_consume(hist, cut);
    for (size_t k = j; k < *n_starts; k++)
        starts[k - j] = starts[k] - cut;
    *n_starts -= j < *n_starts ? j : *n_starts;
}

/* Join the newest stored fragments of `chan` (oldest first, whole fragments,
 * at most MAX_JOIN bytes unless one fragment is longer, none before the last
 * counter pair) into `hist`; `starts` gets each piece's offset. Returns the
 * newest stored fragment of the channel, or NULL if none. A secret is far
 * shorter than a busy channel's window, and the scan costs per byte. */
static const frag_t *gather(const ident_t *id, uint64_t chan, sl_buf_t *hist, size_t *starts,
                            size_t *n_starts, size_t max_starts)
{
    const frag_t *prev = NULL;
    *n_starts = 0;
    hist->n = 0;
    for (const frag_t *f = id->head; f; f = f->next) {
        if (f->chan != chan)
            continue;
        if (prev && counters(prev->p, prev->n, f->p, f->n))
            drop_pieces(hist, starts, n_starts, *n_starts);
        if (*n_starts == max_starts)
            drop_pieces(hist, starts, n_starts, 1);
        starts[(*n_starts)++] = hist->n;
        sl_buf_append(hist, f->p, f->n);
        size_t j = 0;
        while (j + 1 < *n_starts && hist->n - starts[j] > MAX_JOIN)
            j++;
        if (j)
            drop_pieces(hist, starts, n_starts, j);
        prev = f;
    }
    return prev;
}

static bool blocking(const sl_findings_t *out, size_t from)
{
    for (size_t i = from; i < out->n; i++)
        if (out->v[i].action == SL_ACT_BLOCK || out->v[i].category == SL_CAT_LIMIT)
            return true;
    return false;
}

static bool record(shard_t *s, ident_t *id, uint64_t chan, const char *p, size_t n, uint64_t now,
                   size_t max_fragment)
{
    if (n > max_fragment) {
        /* The tail is what a secret continued in the next request starts in. */
        p += n - max_fragment;
        n = max_fragment;
    }
    frag_t *f = malloc(sizeof *f + n);
    if (f == NULL)
        return false;
    f->next = NULL;
    f->chan = chan;
    f->t_ms = now;
    f->n = n;
    memcpy(f->p, p, n);
    if (id->tail)
        id->tail->next = f;
    else
        id->head = f;
    id->tail = f;
    id->count++;
    id->bytes += n;
    s->bytes += n;
    return true;
}

int sl_history_check(sl_history_t *h, const sl_history_limits_t *lim, sl_view_t identity,
                     const sl_history_frag_t *frags, size_t n, uint64_t now_ms,
                     const sl_ruleset_t *rs, sl_findings_t *out, sl_history_hit_t *hit)
{
    uint64_t window = lim && lim->window_ms ? lim->window_ms : 60000;
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : 4096;
    size_t max_entries = lim && lim->max_entries ? lim->max_entries : 64;
    size_t max_idents = lim && lim->max_identities ? lim->max_identities : 4096;
    size_t max_fragment = lim && lim->max_fragment ? lim->max_fragment : 256;
    size_t per_shard = (max_idents + SHARDS - 1) / SHARDS;
    size_t out0 = out->n;
    uint64_t hash = fnv(identity.p, identity.n);
    shard_t *s = &h->shards[(hash >> 32) % SHARDS];
    sl_buf_t hist = {0}, cur = {0};
    size_t starts[128];
    bool record_it[MAX_FRAGS];
    int rc = 0;
    if (n > MAX_FRAGS)
        n = MAX_FRAGS;

    pthread_mutex_lock(&s->lock);
    ident_t *id = lookup(s, hash, identity, per_shard);
    if (id == NULL) {
        rc = -1;
        goto done;
    }
    /* A fragment stamped a moment after `now` (another worker took its time
     * later but the lock first) is fresh, not expired. */
    while (id->head && now_ms > id->head->t_ms && now_ms - id->head->t_ms > window)
        drop_oldest(s, id);

    for (size_t i = 0; i < n; i++) {
        record_it[i] = false;
        if (channel_seen_before(frags, i))
            continue;
        uint64_t chan = fnv(frags[i].channel.p, frags[i].channel.n);
        cur.n = hist.n = 0;
        current_value(frags, n, i, &cur);
        if (cur.n == 0)
            continue;
        size_t n_starts;
        const frag_t *last = gather(id, chan, &hist, starts, &n_starts, 128);
        /* The same value again (compared by the tail that was kept): nothing
         * new went out. */
        size_t tail = cur.n < max_fragment ? cur.n : max_fragment;
        if (last && last->n == tail && memcmp(last->p, cur.p + cur.n - tail, tail) == 0)
            continue;
        record_it[i] = true;
        if (last == NULL || counters(last->p, last->n, cur.p, cur.n))
            continue;
        /* Only the head of a long current value can continue the history. */
        sl_view_t vals[2] = {sl_view(hist.p, hist.n),
                             sl_view(cur.p, cur.n < max_fragment ? cur.n : max_fragment)};
        size_t before = out->n;
        if (sl_inspect_scan_joined(rs, frags[i].surface, vals, 2, out) < 0)
            rc = -1;
        for (size_t k = before; k < out->n; k++) {
            sl_finding_t *f = &out->v[k];
            if (hit && k == out0 && f->category != SL_CAT_LIMIT) {
                unsigned pieces = 1;
                for (size_t j = 0; j < n_starts; j++) {
                    size_t e = j + 1 < n_starts ? starts[j + 1] : hist.n;
                    pieces += starts[j] < f->end && e > f->start;
                }
                *hit = (sl_history_hit_t){.frag = i, .pieces = pieces};
            }
        }
    }
    if (!blocking(out, out0)) {
        for (size_t i = 0; i < n; i++) {
            if (!record_it[i])
                continue;
            cur.n = 0;
            current_value(frags, n, i, &cur);
            if (!record(s, id, fnv(frags[i].channel.p, frags[i].channel.n), cur.p, cur.n, now_ms,
                        max_fragment)) {
                rc = -1;
                break;
            }
        }
        while (id->head && (id->count > max_entries || id->bytes > max_bytes))
            drop_oldest(s, id);
    }
done:
    pthread_mutex_unlock(&s->lock);
    sl_buf_free(&hist);
    sl_buf_free(&cur);
    if (rc < 0 && !blocking(out, out0)) {
        sl_finding_t *f = sl_findings_push(out);
        f->rule_id = "inspection-limit";
        f->category = SL_CAT_LIMIT;
        f->severity = SL_SEV_HIGH;
        f->action = SL_ACT_BLOCK;
        f->layer = SL_LAYER_JOINED;
        snprintf(f->excerpt, sizeof f->excerpt, "request history (out of memory)");
    }
    return rc < 0 ? -1 : (int)(out->n - out0);
}

/* ---- body fields -------------------------------------------------------- */

/* End of the JSON string starting at p[i] == '"' (index of the closing
 * quote), or n if it does not close. */
static size_t json_string_end(const char *p, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == '"')
            return i;
    }
    return n;
}

static size_t json_fields(const char *p, size_t n, sl_history_field_cb cb, void *arg)
{
    /* Names of the enclosing members, by depth: an array's elements and an
     * object's members after "name": take that name. */
    enum { DEPTH = 32 };
    sl_view_t names[DEPTH + 1];
    size_t depth = 0, count = 0;
    sl_view_t pending = sl_view("", 0); /* the last "name": seen at this depth */
    names[0] = pending;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '{' || ch == '[') {
            sl_view_t inherit = pending.n ? pending : names[depth];
            if (depth < DEPTH)
                names[++depth] = inherit;
            pending = sl_view("", 0);
        } else if (ch == '}' || ch == ']') {
            if (depth)
                depth--;
            pending = sl_view("", 0);
        } else if (ch == ',') {
            pending = sl_view("", 0);
        } else if (ch == '"') {
            size_t e = json_string_end(p, n, i);
            sl_view_t str = sl_view(p + i + 1, e - i - 1);
            size_t k = e + 1;
            while (k < n && (p[k] == ' ' || p[k] == '\t' || p[k] == '\r' || p[k] == '\n'))
                k++;
            if (k < n && p[k] == ':') {
                pending = str;
                i = k;
                continue;
            }
            cb(arg, pending.n ? pending : names[depth], str);
            count++;
            pending = sl_view("", 0);
            i = e;
        }
    }
    return count;
}

static bool looks_form(const char *p, size_t n)
{
    if (memchr(p, '=', n) == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == '"' || p[i] == '{' || p[i] == '<')
            return false;
    return true;
}

size_t sl_history_form_fields(const char *p, size_t n, sl_history_field_cb cb, void *arg)
{
    size_t count = 0;
    for (const char *q = p, *end = p + n; q < end;) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(seg_end - q));
        if (eq) {
            cb(arg, sl_view(q, (size_t)(eq - q)), sl_view(eq + 1, (size_t)(seg_end - eq - 1)));
            count++;
        }
        q = amp ? amp + 1 : end;
    }
    return count;
}

size_t sl_history_body_fields(const char *p, size_t n, sl_history_field_cb cb, void *arg)
{
    size_t s = 0;
    while (s < n && (p[s] == ' ' || p[s] == '\t' || p[s] == '\r' || p[s] == '\n'))
        s++;
    if (s < n && (p[s] == '{' || p[s] == '['))
        return json_fields(p + s, n - s, cb, arg);
    if (n && looks_form(p, n))
        return sl_history_form_fields(p, n, cb, arg);
    if (n == 0)
        return 0;
    cb(arg, sl_view("", 0), sl_view(p, n));
    return 1;
}
