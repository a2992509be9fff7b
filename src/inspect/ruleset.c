/* Rule files: YAML -> validated rules -> compiled ruleset (see inspect.h and
 * rules/README.md). Every error names file:line:col and the rule id. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/log.h"
#include "inspect/rules.h"

static const char *const cat_names[SL_CAT__COUNT] = {
    "credential", "financial", "injection", "tool-poisoning", "shell", "inspection-limit"};
static const char *const sev_names[] = {"low", "medium", "high", "critical"};
static const char *const act_names[] = {"block", "redact", "warn", "off"};
static const char *const surf_names[SL_SURF__COUNT] = {"url",       "header",    "body", "response",
                                                       "tool_call", "tool_list", "all"};
static const char *const layer_names[SL_LAYER__COUNT] = {"raw",    "percent", "html",  "escape",
                                                         "base64", "base32",  "hex",   "tags",
                                                         "folded", "leet",    "joined"};

static int name_index(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

const char *sl_category_name(sl_category_t c)
{
    return (unsigned)c < SL_CAT__COUNT ? cat_names[c] : "?";
}
int sl_category_parse(const char *s)
{
    return name_index(cat_names, SL_CAT_LIMIT, s); /* "inspection-limit" is engine-only */
}
const char *sl_severity_name(sl_severity_t s)
{
    return (unsigned)s < 4 ? sev_names[s] : "?";
}
int sl_severity_parse(const char *s)
{
    return name_index(sev_names, 4, s);
}
const char *sl_action_name(sl_action_t a)
{
    return (unsigned)a < 4 ? act_names[a] : "?";
}
int sl_action_parse(const char *s)
{
    return name_index(act_names, 4, s);
}
const char *sl_surface_name(sl_surface_t s)
{
    return (unsigned)s < SL_SURF__COUNT ? surf_names[s] : "?";
}
int sl_surface_parse(const char *s)
{
    int r = name_index(surf_names, SL_SURF__COUNT, s);
    if (r < 0 && strcmp(s, "headers") == 0)
        r = SL_SURF_HEADER;
    return r;
}
const char *sl_layer_name(sl_layer_t l)
{
    return (unsigned)l < SL_LAYER__COUNT ? layer_names[l] : "?";
}

/* ---- YAML helpers ---------------------------------------------------- */

typedef struct loader {
    const char *file;
    yaml_document_t *doc;
    sl_buf_t *err;
    sl_ruleset_t *rs;
    size_t cap;
} loader_t;

static void errat(loader_t *L, const yaml_node_t *node, const char *rule_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void errat(loader_t *L, const yaml_node_t *node, const char *rule_id, const char *fmt, ...)
{
    sl_buf_appendf(L->err, "%s:%zu:%zu: ", L->file, node ? node->start_mark.line + 1 : 0,
                   node ? node->start_mark.column + 1 : 0);
    if (rule_id)
        sl_buf_appendf(L->err, "rule '%s': ", rule_id);
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    sl_buf_append_str(L->err, tmp);
    sl_buf_append_str(L->err, "\n");
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Strings of a sequence node; NULL with an error if not a sequence of scalars. */
static char **string_list(loader_t *L, yaml_node_t *n, size_t *count, const char *id,
                          const char *what)
{
    *count = 0;
    if (!n || n->type != YAML_SEQUENCE_NODE) {
        errat(L, n, id, "%s must be a list of strings", what);
        return NULL;
    }
    size_t len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **v = calloc(len + 1, sizeof *v);
    for (size_t i = 0; i < len; i++) {
        yaml_node_t *it = yaml_document_get_node(L->doc, n->data.sequence.items.start[i]);
        const char *s = scalar(it);
        if (!s) {
            errat(L, it, id, "%s must be a list of strings", what);
            for (size_t k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return NULL;
        }
        v[i] = strdup(s);
    }
    *count = len;
    return v;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

static void rule_free(sl_rule_t *r)
{
    free((char *)r->info.id);
    free((char *)r->info.description);
    free((char *)r->info.file);
    free((char *)r->info.pattern);
    free_strings(r->ex_match, r->n_match);
    free_strings(r->ex_no_match, r->n_no_match);
}

static bool valid_id(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-'))
            return false;
    return true;
}

static int load_rule(loader_t *L, yaml_node_t *rn)
{
    if (rn->type != YAML_MAPPING_NODE) {
        errat(L, rn, NULL, "each rule must be a mapping");
        return -1;
    }
    sl_rule_t r = {0};
    r.info.line = (unsigned)rn->start_mark.line + 1;
    r.info.file = strdup(L->file);
    r.info.action = SL_ACT_BLOCK;
    r.info.category = (sl_category_t)-1;
    r.info.severity = (sl_severity_t)-1;
    int rc = -1;
    yaml_node_t *examples = NULL;
    yaml_node_pair_t *pr;
    /* First pass: the id, so later errors can name it. */
    for (pr = rn->data.mapping.pairs.start; pr < rn->data.mapping.pairs.top; pr++) {
        const char *k = scalar(yaml_document_get_node(L->doc, pr->key));
        yaml_node_t *v = yaml_document_get_node(L->doc, pr->value);
        if (k && strcmp(k, "id") == 0) {
            const char *s = scalar(v);
            if (!s || !valid_id(s)) {
                errat(L, v, NULL, "id must match [a-z0-9-]+");
                goto out;
            }
            r.info.id = strdup(s);
        }
    }
    if (!r.info.id) {
        errat(L, rn, NULL, "rule without an id");
        goto out;
    }
    const char *id = r.info.id;
    for (pr = rn->data.mapping.pairs.start; pr < rn->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, pr->value);
        const char *k = scalar(kn), *s = scalar(v);
        if (!k) {
            errat(L, kn, id, "keys must be strings");
            goto out;
        }
        if (strcmp(k, "id") == 0) {
            continue;
        } else if (strcmp(k, "description") == 0) {
            if (!s || !*s || strchr(s, '\n')) {
                errat(L, v, id, "description must be one non-empty line");
                goto out;
            }
            r.info.description = strdup(s);
        } else if (strcmp(k, "category") == 0) {
            int c = s ? sl_category_parse(s) : -1;
            if (c < 0) {
                errat(L, v, id,
                      "category must be credential, financial, injection, tool-poisoning or shell");
                goto out;
            }
            r.info.category = (sl_category_t)c;
        } else if (strcmp(k, "severity") == 0) {
            int c = s ? sl_severity_parse(s) : -1;
            if (c < 0) {
                errat(L, v, id, "severity must be low, medium, high or critical");
                goto out;
            }
            r.info.severity = (sl_severity_t)c;
        } else if (strcmp(k, "action") == 0) {
            int c = s ? sl_action_parse(s) : -1;
            if (c < 0) {
                errat(L, v, id, "action must be block, redact, warn or off");
                goto out;
            }
            r.info.action = (sl_action_t)c;
        } else if (strcmp(k, "pattern") == 0) {
            if (!s || !*s) {
                errat(L, v, id, "pattern must be a non-empty string");
                goto out;
            }
            r.info.pattern = strdup(s);
        } else if (strcmp(k, "flags") == 0) {
            size_t nf;
            char **fl = string_list(L, v, &nf, id, "flags");
            if (!fl)
                goto out;
            for (size_t i = 0; i < nf; i++) {
                if (strcmp(fl[i], "caseless") == 0)
                    r.hs_flags |= HS_FLAG_CASELESS;
                else if (strcmp(fl[i], "dotall") == 0)
                    r.hs_flags |= HS_FLAG_DOTALL;
                else if (strcmp(fl[i], "multiline") == 0)
                    r.hs_flags |= HS_FLAG_MULTILINE;
                else if (strcmp(fl[i], "utf8") == 0)
                    r.hs_flags |= HS_FLAG_UTF8;
                else {
                    errat(L, v, id, "unknown flag '%s' (caseless, dotall, multiline, utf8)", fl[i]);
                    free_strings(fl, nf);
                    goto out;
                }
            }
            free_strings(fl, nf);
        } else if (strcmp(k, "validator") == 0) {
            int c = s ? sl_validator_parse(s) : -1;
            if (c < 0) {
                errat(L, v, id,
                      "unknown validator '%s' (luhn, iban, bip39, base58check, crc32-base62, "
                      "jwt, ssn, pem, entropy)",
                      s ? s : "");
                goto out;
            }
            r.validator = (sl_validator_t)c;
        } else if (strcmp(k, "min_entropy") == 0) {
            char *end = NULL;
            double d = s ? strtod(s, &end) : -1;
            if (!s || end == s || *end || d <= 0 || d > 8) {
                errat(L, v, id, "min_entropy must be a number in (0, 8] bits per byte");
                goto out;
            }
            r.min_entropy = d;
        } else if (strcmp(k, "secret_group") == 0) {
            errat(L, kn, id, "secret_group is not supported (Vectorscan has no captures)");
            goto out;
        } else if (strcmp(k, "normalize") == 0) {
            size_t nn;
            char **nl = string_list(L, v, &nn, id, "normalize");
            if (!nl)
                goto out;
            for (size_t i = 0; i < nn; i++) {
                if (strcmp(nl[i], "leet") != 0) {
                    errat(L, v, id, "unknown normalize option '%s' (leet)", nl[i]);
                    free_strings(nl, nn);
                    goto out;
                }
                r.leet = true;
            }
            free_strings(nl, nn);
        } else if (strcmp(k, "examples") == 0) {
            examples = v;
        } else {
            errat(L, kn, id, "unknown key '%s'", k);
            goto out;
        }
    }
    if (!r.info.description || (int)r.info.category < 0 || (int)r.info.severity < 0 ||
        !r.info.pattern || !examples) {
        errat(L, rn, id, "missing %s",
              !r.info.description        ? "description"
              : (int)r.info.category < 0 ? "category"
              : (int)r.info.severity < 0 ? "severity"
              : !r.info.pattern          ? "pattern"
                                         : "examples");
        goto out;
    }
    if (r.leet && (r.info.category == SL_CAT_CREDENTIAL || r.info.category == SL_CAT_FINANCIAL)) {
        errat(L, rn, id, "normalize: [leet] is for injection, tool-poisoning and shell rules");
        goto out;
    }
    if (r.validator == SL_VAL_ENTROPY && r.min_entropy == 0)
        r.min_entropy = 3.5;
    if (examples->type != YAML_MAPPING_NODE) {
        errat(L, examples, id, "examples must be a mapping with match and no_match lists");
        goto out;
    }
    for (pr = examples->data.mapping.pairs.start; pr < examples->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = yaml_document_get_node(L->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, pr->value);
        const char *k = scalar(kn);
        if (k && strcmp(k, "match") == 0 && !r.ex_match) {
            if (!(r.ex_match = string_list(L, v, &r.n_match, id, "examples.match")))
                goto out;
        } else if (k && strcmp(k, "no_match") == 0 && !r.ex_no_match) {
            if (!(r.ex_no_match = string_list(L, v, &r.n_no_match, id, "examples.no_match")))
                goto out;
        } else {
            errat(L, kn, id, "examples: unknown or repeated key '%s'", k ? k : "?");
            goto out;
        }
    }
    if (r.n_match == 0 || r.n_no_match == 0) {
        errat(L, examples, id, "examples need at least one match and one no_match");
        goto out;
    }
    r.info.validator = r.validator ? sl_validator_name(r.validator) : NULL;
    r.info.exact_start = true;
    for (size_t i = 0; i < L->rs->n; i++)
        if (strcmp(L->rs->rules[i].info.id, id) == 0) {
            errat(L, rn, id, "duplicate id (first defined at %s:%u)", L->rs->rules[i].info.file,
                  L->rs->rules[i].info.line);
            goto out;
        }
    if (L->rs->n == L->cap) {
        L->cap = L->cap ? L->cap * 2 : 64;
        L->rs->rules = realloc(L->rs->rules, L->cap * sizeof *L->rs->rules);
        if (!L->rs->rules)
            abort();
    }
    L->rs->rules[L->rs->n++] = r;
    return 0;
out:
    rule_free(&r);
    return rc;
}

static int load_text(loader_t *L, const char *data, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        sl_buf_appendf(L->err, "%s:%zu:%zu: YAML error: %s\n", L->file,
                       parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                       parser.problem ? parser.problem : "unknown");
        yaml_parser_delete(&parser);
        return -1;
    }
    L->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) { /* empty file: no rules */
        rc = 0;
        goto done;
    }
    yaml_node_t *rules = NULL;
    if (root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
             pr < root->data.mapping.pairs.top; pr++) {
            yaml_node_t *kn = yaml_document_get_node(&doc, pr->key);
            const char *k = scalar(kn);
            if (k && strcmp(k, "rules") == 0) {
                rules = yaml_document_get_node(&doc, pr->value);
            } else {
                errat(L, kn, NULL, "unknown top-level key '%s' (expected 'rules')", k ? k : "?");
                goto done;
            }
        }
    }
    if (!rules || rules->type != YAML_SEQUENCE_NODE) {
        errat(L, rules ? rules : root, NULL, "expected 'rules:' followed by a list of rules");
        goto done;
    }
    rc = 0;
    for (yaml_node_item_t *it = rules->data.sequence.items.start;
         it < rules->data.sequence.items.top; it++)
        if (load_rule(L, yaml_document_get_node(&doc, *it)) < 0)
            rc = -1; /* keep going: report every bad rule at once */
done:
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    L->doc = NULL;
    return rc;
}

static int load_file(loader_t *L, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        sl_buf_appendf(L->err, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    sl_buf_t b = {0};
    char tmp[65536];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
        sl_buf_append(&b, tmp, r);
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        sl_buf_appendf(L->err, "%s: read error\n", path);
        sl_buf_free(&b);
        return -1;
    }
    L->file = path;
    int rc = load_text(L, b.p ? b.p : "", b.n);
    sl_buf_free(&b);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_path(loader_t *L, const char *path)
{
    struct stat st;
    if (stat(path, &st) == -1) {
        sl_buf_appendf(L->err, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return load_file(L, path);
    DIR *d = opendir(path);
    if (!d) {
        sl_buf_appendf(L->err, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t ln = strlen(de->d_name);
        if (de->d_name[0] == '.' || ln < 6 || strcmp(de->d_name + ln - 5, ".yaml") != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                abort();
        }
        sl_buf_t p = {0};
        sl_buf_appendf(&p, "%s/%s", path, de->d_name);
        names[n++] = sl_buf_cstr(&p);
    }
    closedir(d);
    /* Sorted, so load order (and error order) does not depend on the file system. */
    if (n)
        qsort(names, n, sizeof *names, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (load_file(L, names[i]) < 0)
            rc = -1;
        free(names[i]);
    }
    free(names);
    return rc;
}

static void ruleset_free(sl_ruleset_t *rs)
{
    if (!rs)
        return;
    sl_engine_free(rs);
    for (size_t i = 0; i < rs->n; i++)
        rule_free(&rs->rules[i]);
    free(rs->rules);
    free(rs);
}

sl_ruleset_t *sl_ruleset_load(const sl_ruleset_opts_t *opts, sl_buf_t *err)
{
    static atomic_uint_fast64_t gen_counter = 1;
    sl_ruleset_opts_t none = {0};
    if (!opts)
        opts = &none;
    sl_ruleset_t *rs = calloc(1, sizeof *rs);
    if (!rs)
        abort();
    atomic_init(&rs->refs, 1);
    rs->gen = atomic_fetch_add(&gen_counter, 1);
    rs->lim = opts->limits;
    if (!rs->lim.max_depth)
        rs->lim.max_depth = 3;
    if (!rs->lim.max_input_bytes)
        rs->lim.max_input_bytes = 16u << 20;
    if (!rs->lim.min_run)
        rs->lim.min_run = 16;
    if (!rs->lim.stream_window)
        rs->lim.stream_window = 16384;
    /* max_decoded_bytes stays 0 = "4 x input + 64 KiB", computed per scan. */
    loader_t L = {.err = err, .rs = rs};
    int rc = 0;
    if (!opts->no_embedded) {
        for (size_t i = 0; i < sl_embedded_rules_count; i++) {
            char name[256];
            snprintf(name, sizeof name, "<embedded>/%s", sl_embedded_rules[i].name);
            L.file = name;
            if (load_text(&L, sl_embedded_rules[i].data, sl_embedded_rules[i].len) < 0)
                rc = -1;
        }
    }
    for (size_t i = 0; i < opts->n_paths; i++)
        if (load_path(&L, opts->paths[i]) < 0)
            rc = -1;
    for (size_t i = 0; i < opts->n_overrides; i++) {
        const sl_rule_override_t *o = &opts->overrides[i];
        sl_rule_t *r = NULL;
        for (size_t k = 0; k < rs->n && !r; k++)
            if (strcmp(rs->rules[k].info.id, o->id) == 0)
                r = &rs->rules[k];
        if (!r) {
            sl_buf_appendf(
                err, "rule override: no rule with id '%s' (see sluice scan --list-rules)\n", o->id);
            rc = -1;
            continue;
        }
        r->info.action = o->action;
        if (o->severity >= 0 && o->severity <= SL_SEV_CRITICAL)
            r->info.severity = (sl_severity_t)o->severity;
    }
    if (rc < 0 || sl_engine_compile(rs, err) < 0) {
        ruleset_free(rs);
        return NULL;
    }
    for (size_t i = 0; i < rs->n; i++)
        rs->action_cats[rs->rules[i].info.action] |= SL_CAT_BIT(rs->rules[i].info.category);
    return rs;
}

sl_ruleset_t *sl_ruleset_ref(sl_ruleset_t *rs)
{
    atomic_fetch_add(&rs->refs, 1);
    return rs;
}

void sl_ruleset_unref(sl_ruleset_t *rs)
{
    if (rs && atomic_fetch_sub(&rs->refs, 1) == 1)
        ruleset_free(rs);
}

size_t sl_ruleset_count(const sl_ruleset_t *rs)
{
    return rs->n;
}

const sl_rule_info_t *sl_ruleset_rule(const sl_ruleset_t *rs, size_t i)
{
    return i < rs->n ? &rs->rules[i].info : NULL;
}

const sl_rule_info_t *sl_ruleset_find(const sl_ruleset_t *rs, const char *id)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->rules[i].info.id, id) == 0)
            return &rs->rules[i].info;
    return NULL;
}

size_t sl_ruleset_db_bytes(const sl_ruleset_t *rs)
{
    return rs->db_bytes;
}

unsigned sl_ruleset_action_categories(const sl_ruleset_t *rs, sl_action_t a)
{
    return (unsigned)a < SL_ACT_OFF + 1 ? rs->action_cats[a] : 0;
}
