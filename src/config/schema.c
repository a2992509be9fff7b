#include "config/schema.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/values.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) {
        fputs("sluice: out of memory loading the config\n", stderr);
        abort();
    }
    return p;
}

char *sl_cfg_strdup(sl_view_t v)
{
    char *s = xcalloc(v.n + 1, 1);
    memcpy(s, v.p, v.n);
    return s;
}

/* ---- nodes ------------------------------------------------------------- */

bool sl_cfg_scalar(const yaml_node_t *node, sl_view_t *out)
{
    if (node == NULL || node->type != YAML_SCALAR_NODE)
        return false;
    *out = sl_view((const char *)node->data.scalar.value, node->data.scalar.length);
    return true;
}

bool sl_cfg_is_plain(const yaml_node_t *node)
{
    return node != NULL && node->type == YAML_SCALAR_NODE &&
           node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool sl_cfg_is_null(const yaml_node_t *node)
{
    sl_view_t v;
    if (!sl_cfg_is_plain(node) || !sl_cfg_scalar(node, &v))
        return false;
    return v.n == 0 || sl_view_eq(v, "~") || sl_view_eq(v, "null") || sl_view_eq(v, "Null") ||
           sl_view_eq(v, "NULL");
}

/* Printable, bounded rendering of user text for messages. */
static void quote(sl_view_t v, char *out, size_t cap)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < v.n; i++) {
        if (o + 8 >= cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)v.p[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* ---- errors ------------------------------------------------------------ */

static void verror(sl_cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *fmt, va_list ap)
{
    ctx->n_errors++;
    if (ctx->n_errors > SL_CFG_MAX_ERRORS) {
        if (ctx->n_errors == SL_CFG_MAX_ERRORS + 1)
            sl_buf_appendf(ctx->err, "%s: too many errors; fix the ones above and check again\n",
                           ctx->name);
        return;
    }
    if (mark != NULL)
        sl_buf_appendf(ctx->err, "%s:%zu:%zu: ", ctx->name, mark->line + 1, mark->column + 1);
    else
        sl_buf_appendf(ctx->err, "%s: ", ctx->name);
    if (ctx->path_n > 0)
        sl_buf_appendf(ctx->err, "%.*s: ", (int)ctx->path_n, ctx->path);
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    sl_buf_append_str(ctx->err, msg);
    sl_buf_append(ctx->err, "\n", 1);
}

void sl_cfg_error(sl_cfg_ctx_t *ctx, const yaml_node_t *node, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(ctx, node != NULL ? &node->start_mark : NULL, fmt, ap);
    va_end(ap);
}

void sl_cfg_error_at(sl_cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(ctx, mark, fmt, ap);
    va_end(ap);
}

static void describe(const yaml_node_t *node, const sl_cfg_field_t *f, char *out, size_t cap)
{
    sl_view_t v;
    char q[96];
    if (node->type == YAML_MAPPING_NODE)
        snprintf(out, cap, "a mapping");
    else if (node->type == YAML_SEQUENCE_NODE)
        snprintf(out, cap, "a list");
    else if (sl_cfg_is_null(node))
        snprintf(out, cap, "an empty value");
    else if (f != NULL && (f->flags & SL_CFG_SECRET))
        snprintf(out, cap, "a %s value", sl_cfg_is_plain(node) ? "plain" : "quoted");
    else if (sl_cfg_scalar(node, &v)) {
        quote(v, q, sizeof q);
        snprintf(out, cap, "%s%s", sl_cfg_is_plain(node) ? "" : "the quoted string ", q);
    } else
        snprintf(out, cap, "something else");
}

void sl_cfg_type_error(sl_cfg_ctx_t *ctx, const yaml_node_t *node, const sl_cfg_field_t *f)
{
    char got[128];
    describe(node, f, got, sizeof got);
    sl_cfg_error(ctx, node, "expected %s, got %s; write e.g. `%s`", f->type->expect, got,
                 f->example ? f->example : "see docs/configuration.md");
}

void sl_cfg_value_error(sl_cfg_ctx_t *ctx, const yaml_node_t *node, const sl_cfg_field_t *f,
                        const char *reason)
{
    sl_view_t v = SL_VIEW_NULL;
    char q[96];
    sl_cfg_scalar(node, &v);
    if (f != NULL && (f->flags & SL_CFG_SECRET))
        snprintf(q, sizeof q, "(value hidden)");
    else
        quote(v, q, sizeof q);
    sl_cfg_error(ctx, node, "invalid value %s: %s", q, reason);
}

/* ---- key paths --------------------------------------------------------- */

static size_t path_push(sl_cfg_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t path_push(sl_cfg_ctx_t *ctx, const char *fmt, ...)
{
    size_t saved = ctx->path_n;
    size_t room = sizeof ctx->path - ctx->path_n;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(ctx->path + ctx->path_n, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        ctx->path_n += (size_t)n < room ? (size_t)n : room - 1;
    return saved;
}

static void path_pop(sl_cfg_ctx_t *ctx, size_t saved)
{
    ctx->path_n = saved;
    ctx->path[saved] = '\0';
}

/* ---- tables ------------------------------------------------------------ */

static size_t edit_distance(sl_view_t a, const char *b)
{
    size_t bn = strlen(b);
    if (a.n > 32 || bn > 32)
        return 99;
    size_t row[33];
    for (size_t j = 0; j <= bn; j++)
        row[j] = j;
    for (size_t i = 1; i <= a.n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t cost = a.p[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

static void unknown_key(sl_cfg_ctx_t *ctx, const yaml_node_t *knode, sl_view_t key,
                        const sl_cfg_table_t *t)
{
    char q[96];
    quote(key, q, sizeof q);
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < t->n; i++) {
        size_t d = edit_distance(key, t->fields[i].key);
        if (d < best_d && d < strlen(t->fields[i].key)) {
            best = t->fields[i].key;
            best_d = d;
        }
    }
    if (best != NULL) {
        sl_cfg_error(ctx, knode, "unknown key %s; did you mean '%s'?", q, best);
        return;
    }
    for (size_t i = 0; i < t->n; i++) {
        const sl_cfg_field_t *f = &t->fields[i];
        if (f->type != &sl_cfg_type_map)
            continue;
        const sl_cfg_table_t *sub = f->sub;
        for (size_t j = 0; j < sub->n; j++)
            if (sl_view_eq(key, sub->fields[j].key)) {
                sl_cfg_error(ctx, knode, "unknown key %s here; it belongs under '%s:'", q, f->key);
                return;
            }
    }
    char list[512];
    size_t o = 0;
    list[0] = '\0';
    for (size_t i = 0; i < t->n && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", t->fields[i].key);
    sl_cfg_error(ctx, knode, "unknown key %s; valid keys here: %s", q, list);
}

void sl_cfg_parse_table(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_table_t *t, char *base)
{
    if (node == NULL || sl_cfg_is_null(node))
        return;
    if (node->type != YAML_MAPPING_NODE) {
        char got[128];
        describe(node, NULL, got, sizeof got);
        sl_cfg_error(ctx, node,
                     "expected a mapping of `key: value` lines, got %s; "
                     "see docs/configuration.md",
                     got);
        return;
    }
    /* First key node seen for each field, for duplicate reports. Unknown keys
     * are errors already, so only known ones need tracking: O(keys x fields). */
    yaml_node_t **seen = xcalloc(t->n, sizeof *seen);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
         p++) {
        if (ctx->n_errors > SL_CFG_MAX_ERRORS)
            break;
        yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
        sl_view_t key;
        if (!sl_cfg_scalar(k, &key) || sl_cfg_is_null(k)) {
            sl_cfg_error(ctx, k, "keys must be plain names; write `name: value`");
            continue;
        }
        size_t i = 0;
        while (i < t->n && !sl_view_eq(key, t->fields[i].key))
            i++;
        if (i == t->n) {
            unknown_key(ctx, k, key, t);
            continue;
        }
        if (seen[i] != NULL) {
            sl_cfg_error(ctx, k, "duplicate key '%s' (first at line %zu, column %zu); remove one",
                         t->fields[i].key, seen[i]->start_mark.line + 1,
                         seen[i]->start_mark.column + 1);
            continue;
        }
        seen[i] = k;
        const sl_cfg_field_t *f = &t->fields[i];
        size_t saved = path_push(ctx, "%s%s", ctx->path_n ? "." : "", f->key);
        f->type->parse(ctx, v, f, base);
        path_pop(ctx, saved);
    }
    for (size_t i = 0; i < t->n && ctx->n_errors <= SL_CFG_MAX_ERRORS; i++)
        if ((t->fields[i].flags & SL_CFG_REQUIRED) && seen[i] == NULL)
            sl_cfg_error(ctx, node, "missing required key '%s'; add e.g. `%s`", t->fields[i].key,
                         t->fields[i].example ? t->fields[i].example : t->fields[i].key);
    free(seen);
}

void sl_cfg_release_table(const sl_cfg_table_t *t, char *base)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->fields[i].type->release != NULL)
            t->fields[i].type->release(&t->fields[i], base);
}

/* ---- maps -------------------------------------------------------------- */

static void map_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    if (node->type != YAML_MAPPING_NODE && !sl_cfg_is_null(node)) {
        sl_cfg_type_error(ctx, node, f);
        return;
    }
    sl_cfg_parse_table(ctx, node, f->sub, base + f->off);
}

static void map_release(const sl_cfg_field_t *f, char *base)
{
    sl_cfg_release_table(f->sub, base + f->off);
}

const sl_cfg_type_t sl_cfg_type_map = {"a mapping of `key: value` lines", map_parse, map_release};

/* ---- lists ------------------------------------------------------------- */

typedef struct elem_id {
    char *key;
    size_t idx;
} elem_id_t;

static int elem_id_cmp(const void *a, const void *b)
{
    const elem_id_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Report elements whose identity repeats an earlier one; sorting keeps this
 * O(n log n) for long allow lists. Returns true if any did. */
static bool find_duplicates(sl_cfg_ctx_t *ctx, const sl_cfg_list_t *L, const char *arr, size_t n,
                            yaml_node_t **nodes, const size_t *pos)
{
    if (L->elem_key == NULL || n < 2)
        return false;
    elem_id_t *ids = xcalloc(n, sizeof *ids);
    char buf[SL_CFG_HOST_MAX + 16];
    for (size_t i = 0; i < n; i++) {
        const char *k = L->elem_key(arr + i * L->elem_size, buf, sizeof buf);
        ids[i].key = sl_cfg_strdup(sl_view(k, strlen(k)));
        ids[i].idx = i;
    }
    qsort(ids, n, sizeof *ids, elem_id_cmp);
    bool dup = false;
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(ids[i].key, ids[first].key) != 0) {
            first = i;
            continue;
        }
        const yaml_node_t *a = nodes[ids[first].idx], *b = nodes[ids[i].idx];
        size_t saved = path_push(ctx, "[%zu]", pos[ids[i].idx]);
        sl_cfg_error(ctx, b, "'%s' is listed twice (first at line %zu, column %zu); remove one",
                     ids[i].key, a->start_mark.line + 1, a->start_mark.column + 1);
        path_pop(ctx, saved);
        dup = true;
    }
    for (size_t i = 0; i < n; i++)
        free(ids[i].key);
    free(ids);
    return dup;
}

static void release_elems(const sl_cfg_list_t *L, char *arr, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *e = arr + i * L->elem_size;
        if (L->map != NULL)
            sl_cfg_release_table(L->map, e);
        else if (L->elem_release != NULL)
            L->elem_release(e);
    }
    free(arr);
}

static void list_release(const sl_cfg_field_t *f, char *base)
{
    char **slot = (char **)(base + f->off);
    size_t *count = (size_t *)(base + f->off_n);
    release_elems(f->sub, *slot, *count);
    *slot = NULL;
    *count = 0;
}

static void list_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    const sl_cfg_list_t *L = f->sub;
    yaml_node_t **nodes;
    size_t n;
    if (sl_cfg_is_null(node)) {
        n = 0;
    } else if (node->type == YAML_SEQUENCE_NODE) {
        n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    } else if (node->type == YAML_SCALAR_NODE && L->single_ok) {
        n = 1;
    } else {
        sl_cfg_type_error(ctx, node, f);
        return;
    }
    if (n < L->min_items) {
        sl_cfg_error(ctx, node, "needs at least %zu entr%s; write e.g. `%s`", L->min_items,
                     L->min_items == 1 ? "y" : "ies", f->example);
        return;
    }
    if (L->max_items != 0 && n > L->max_items) {
        sl_cfg_error(ctx, node, "%zu entries, more than the limit of %zu; remove some", n,
                     L->max_items);
        return;
    }
    nodes = xcalloc(n, sizeof *nodes);
    size_t *pos = xcalloc(n, sizeof *pos); /* list index of each parsed element */
    char *arr = xcalloc(n, L->elem_size);
    size_t got = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ctx->n_errors <= SL_CFG_MAX_ERRORS; i++) {
        yaml_node_t *en = node->type == YAML_SEQUENCE_NODE
                              ? yaml_document_get_node(ctx->doc, node->data.sequence.items.start[i])
                              : node;
        char *e = arr + got * L->elem_size;
        size_t saved = path_push(ctx, "[%zu]", i);
        bool eok;
        if (L->map != NULL) {
            if (en->type != YAML_MAPPING_NODE) {
                char got_s[128];
                describe(en, NULL, got_s, sizeof got_s);
                sl_cfg_error(ctx, en, "expected %s, got %s; write e.g. `%s`", L->elem_expect, got_s,
                             f->example);
                eok = false;
            } else {
                unsigned before = ctx->n_errors;
                sl_cfg_parse_table(ctx, en, L->map, e);
                eok = ctx->n_errors == before;
                if (!eok)
                    sl_cfg_release_table(L->map, e);
            }
        } else if (en->type != YAML_SCALAR_NODE) {
            char got_s[128];
            describe(en, NULL, got_s, sizeof got_s);
            sl_cfg_error(ctx, en, "expected %s, got %s; write e.g. `%s`", L->elem_expect, got_s,
                         f->example);
            eok = false;
        } else {
            eok = L->elem_parse(ctx, en, f, e);
        }
        path_pop(ctx, saved);
        if (eok) {
            pos[got] = i;
            nodes[got++] = en;
        } else {
            memset(e, 0, L->elem_size);
            ok = false;
        }
    }
    if (find_duplicates(ctx, L, arr, got, nodes, pos))
        ok = false;
    free(nodes);
    free(pos);
    if (!ok || ctx->n_errors > SL_CFG_MAX_ERRORS) {
        release_elems(L, arr, got);
        return;
    }
    list_release(f, base);
    *(char **)(base + f->off) = arr;
    *(size_t *)(base + f->off_n) = got;
}

const sl_cfg_type_t sl_cfg_type_list = {"a list", list_parse, list_release};

/* ---- scalars ----------------------------------------------------------- */

static void store_uint(char *slot, size_t size, uint64_t x)
{
    switch (size) {
    case 1: {
        uint8_t v = (uint8_t)x;
        memcpy(slot, &v, 1);
        break;
    }
    case 2: {
        uint16_t v = (uint16_t)x;
        memcpy(slot, &v, 2);
        break;
    }
    case 4: {
        uint32_t v = (uint32_t)x;
        memcpy(slot, &v, 4);
        break;
    }
    default:
        memcpy(slot, &x, 8);
        break;
    }
}

/* A non-empty scalar, else a type error. */
static bool want_scalar(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, bool plain,
                        sl_view_t *v)
{
    if (!sl_cfg_scalar(node, v) || sl_cfg_is_null(node) || (plain && !sl_cfg_is_plain(node))) {
        sl_cfg_type_error(ctx, node, f);
        return false;
    }
    return true;
}

typedef const char *(*unit_parser_t)(sl_view_t v, uint64_t *out);
typedef void (*unit_format_t)(uint64_t x, char *out, size_t cap);

static void fmt_plain(uint64_t x, char *out, size_t cap)
{
    snprintf(out, cap, "%llu", (unsigned long long)x);
}

static void fmt_size(uint64_t x, char *out, size_t cap)
{
    static const char *units[] = {"GiB", "MiB", "KiB"};
    for (int i = 0; i < 3; i++) {
        uint64_t m = 1ull << (10 * (3 - i));
        if (x >= m && x % m == 0) {
            snprintf(out, cap, "%llu%s", (unsigned long long)(x / m), units[i]);
            return;
        }
    }
    fmt_plain(x, out, cap);
}

static void fmt_duration(uint64_t x, char *out, size_t cap)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{3600000, "h"}, {60000, "m"}, {1000, "s"}};
    for (int i = 0; i < 3; i++)
        if (x >= units[i].ms && x % units[i].ms == 0) {
            snprintf(out, cap, "%llu%s", (unsigned long long)(x / units[i].ms), units[i].unit);
            return;
        }
    snprintf(out, cap, "%llums", (unsigned long long)x);
}

static void number_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base,
                         bool plain, unit_parser_t parse, unit_format_t fmt)
{
    sl_view_t v;
    uint64_t x;
    if (!want_scalar(ctx, node, f, plain, &v))
        return;
    const char *why = parse(v, &x);
    if (why != NULL) {
        sl_cfg_value_error(ctx, node, f, why);
        return;
    }
    if (x < f->min || x > f->max) {
        char lo[32], hi[32], val[32];
        fmt(f->min, lo, sizeof lo);
        fmt(f->max, hi, sizeof hi);
        fmt(x, val, sizeof val);
        sl_cfg_error(ctx, node, "%s is out of range; use %s to %s", val, lo, hi);
        return;
    }
    store_uint(base + f->off, f->size, x);
}

static void uint_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    /* A quoted "4" is a string in YAML; a number field wants the number. */
    number_parse(ctx, node, f, base, true, sl_cfg_parse_uint, fmt_plain);
}

static void size_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    number_parse(ctx, node, f, base, false, sl_cfg_parse_size, fmt_size);
}

static void duration_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f,
                           char *base)
{
    number_parse(ctx, node, f, base, false, sl_cfg_parse_duration, fmt_duration);
}

const sl_cfg_type_t sl_cfg_type_uint = {"a whole number", uint_parse, NULL};
const sl_cfg_type_t sl_cfg_type_size = {"a size (32768, 32KiB, 1MiB)", size_parse, NULL};
const sl_cfg_type_t sl_cfg_type_duration = {"a duration (250ms, 10s, 5m, 1h)", duration_parse,
                                            NULL};

static void bool_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    sl_view_t v;
    if (!want_scalar(ctx, node, f, true, &v))
        return;
    bool x;
    if (sl_view_eq(v, "true") || sl_view_eq(v, "True") || sl_view_eq(v, "TRUE")) {
        x = true;
    } else if (sl_view_eq(v, "false") || sl_view_eq(v, "False") || sl_view_eq(v, "FALSE")) {
        x = false;
    } else if (sl_view_ieq(v, "yes") || sl_view_ieq(v, "no") || sl_view_ieq(v, "on") ||
               sl_view_ieq(v, "off") || sl_view_ieq(v, "y") || sl_view_ieq(v, "n")) {
        sl_cfg_value_error(ctx, node, f, "YAML 1.1 booleans are ambiguous; write true or false");
        return;
    } else {
        sl_cfg_value_error(ctx, node, f, "not a boolean; write true or false");
        return;
    }
    memcpy(base + f->off, &x, sizeof x);
}

const sl_cfg_type_t sl_cfg_type_bool = {"true or false", bool_parse, NULL};

static void enum_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    sl_view_t v;
    if (!want_scalar(ctx, node, f, false, &v))
        return;
    const char *const *names = f->sub;
    char list[256];
    size_t o = 0;
    list[0] = '\0';
    for (size_t i = 0; names[i] != NULL; i++) {
        if (sl_view_eq(v, names[i])) {
            int x = (int)i;
            memcpy(base + f->off, &x, sizeof x);
            return;
        }
        if (o < sizeof list)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", names[i]);
    }
    char reason[320];
    snprintf(reason, sizeof reason, "not one of the choices; use one of: %s", list);
    sl_cfg_value_error(ctx, node, f, reason);
}

const sl_cfg_type_t sl_cfg_type_enum = {"one of the listed words", enum_parse, NULL};

static void str_release(const sl_cfg_field_t *f, char *base)
{
    char **slot = (char **)(base + f->off);
    free(*slot);
    *slot = NULL;
}

/* Text of a string scalar, with the checks every string shares. */
bool sl_cfg_want_text(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, sl_view_t *v)
{
    if (!want_scalar(ctx, node, f, false, v))
        return false;
    if (v->n == 0) {
        sl_cfg_value_error(ctx, node, f, "empty; write a value or leave the key out");
        return false;
    }
    /* Double-quoted YAML can carry "\0"; C strings cannot. */
    if (memchr(v->p, '\0', v->n) != NULL) {
        sl_cfg_value_error(ctx, node, f, "contains a NUL byte; remove it");
        return false;
    }
    return true;
}

static void string_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base)
{
    sl_view_t v;
    if (!sl_cfg_want_text(ctx, node, f, &v))
        return;
    const char *why = f->check != NULL ? f->check(v) : NULL;
    if (why != NULL) {
        sl_cfg_value_error(ctx, node, f, why);
        return;
    }
    str_release(f, base);
    *(char **)(base + f->off) = sl_cfg_strdup(v);
}

const sl_cfg_type_t sl_cfg_type_string = {"a string", string_parse, str_release};

bool sl_cfg_elem_hostglob(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem)
{
    sl_view_t v;
    if (!want_scalar(ctx, node, f, false, &v))
        return false;
    char out[SL_CFG_HOST_MAX];
    const char *why = sl_cfg_check_hostglob(v, out);
    if (why != NULL) {
        sl_cfg_value_error(ctx, node, f, why);
        return false;
    }
    *(char **)elem = sl_cfg_strdup(sl_view(out, strlen(out)));
    return true;
}

void sl_cfg_elem_free_str(void *elem)
{
    free(*(char **)elem);
}

const char *sl_cfg_elem_key_str(const void *elem, char *buf, size_t cap)
{
    (void)buf;
    (void)cap;
    return *(char *const *)elem;
}

static void hostglob_parse(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f,
                           char *base)
{
    char *s = NULL;
    if (!sl_cfg_elem_hostglob(ctx, node, f, &s))
        return;
    str_release(f, base);
    *(char **)(base + f->off) = s;
}

const sl_cfg_type_t sl_cfg_type_hostglob = {"a host pattern", hostglob_parse, str_release};
