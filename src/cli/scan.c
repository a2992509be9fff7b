/* sluice scan: run the inspection engine over text or JSON envelopes from
 * files or stdin and print the findings. Exit 0 clean, 1 findings, 2 error. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "inspect/inspect.h"
#include "inspect/jsonwalk.h"

static const char scan_usage[] =
    "Usage: sluice scan [options] [FILE...]\n"
    "\n"
    "Scan text for credentials, financial data, prompt injection, tool poisoning\n"
    "and shell obfuscation, after undoing encodings (percent, HTML entities, escapes,\n"
    "base64/base32/hex, nested) and folding look-alike characters. Reads each FILE,\n"
    "or stdin when none is given (or for '-').\n"
    "\n"
    "Input is plain text, or a JSON envelope naming what it is:\n"
    "  {\"type\":\"url\",       \"url\": \"https://h/p?q=...\"}\n"
    "  {\"type\":\"headers\",   \"headers\": {\"Name\": \"value\", ...}}  (or [[name, value], "
    "...])\n"
    "  {\"type\":\"body\",      \"body\": \"...\"}          request body (outbound)\n"
    "  {\"type\":\"response\",  \"body\": \"...\"}          response body (inbound)\n"
    "  {\"type\":\"tool_call\", \"name\": \"...\", \"arguments\": {...}}   MCP tools/call\n"
    "  {\"type\":\"tool_list\", \"tools\": [{\"name\":..., \"description\":..., "
    "\"inputSchema\":...}]}\n"
    "A JSON object with one of these types is treated as an envelope; anything else\n"
    "is text. URL query values and header values are also scanned concatenated, so\n"
    "a secret split across several of them is found.\n"
    "\n"
    "Each surface is checked for its categories:\n"
    "  url, header, body   credential, financial\n"
    "  response            injection\n"
    "  tool_call           shell, credential\n"
    "  tool_list           tool-poisoning, injection\n"
    "  all                 every category (default for plain text)\n"
    "\n"
    "Options:\n"
    "  --rules PATH        also load rules from a YAML file or a directory of *.yaml\n"
    "                      (repeatable; format in rules/README.md)\n"
    "  --no-default-rules  do not load the rules built into the binary\n"
    "  --surface S         surface for plain text: url, header, body, response,\n"
    "                      tool_call, tool_list, all (default all)\n"
    "  --disable ID        turn a rule off (repeatable)\n"
    "  --warn ID           downgrade a rule to warn (repeatable)\n"
    "  --json              JSON output, one object per input per line (the default)\n"
    "  --text              human-readable output, one line per finding\n"
    "  --list-rules        print the loaded rules and exit\n"
    "  -h, --help          this help\n"
    "\n"
    "Output (JSON): {\"input\": NAME, \"surface\": S, \"findings\": [{\"rule\", \"category\",\n"
    "\"severity\", \"action\", \"start\", \"end\", \"exact\", \"layer\", \"depth\", \"excerpt\",\n"
    "\"field\"}]}. Offsets are bytes into the input (into the field's value for\n"
    "envelopes); excerpts are redacted: never more than 4 characters of a match.\n"
    "A finding \"inspection-limit\" means the input exceeded the decoding budgets and\n"
    "was not fully inspected (the gateway refuses such traffic).\n"
    "\n"
    "Exit status: 0 no findings, 1 findings, 2 error.\n";

typedef struct scan_opts {
    const char **paths;
    size_t n_paths;
    sl_rule_override_t *ov;
    size_t n_ov;
    bool no_default;
    bool text;
    bool list;
    int surface;
} scan_opts_t;

/* Findings of one input with the field each came from. */
typedef struct result {
    sl_findings_t f;
    char **field; /* parallel to f.v: field name, or NULL */
    size_t cap;
} result_t;

static void result_tag(result_t *r, size_t from, const char *field)
{
    if (r->cap < r->f.n) {
        r->field = realloc(r->field, r->f.n * sizeof *r->field);
        if (!r->field)
            abort();
        for (size_t i = r->cap; i < r->f.n; i++)
            r->field[i] = NULL;
        r->cap = r->f.n;
    }
    for (size_t i = from; i < r->f.n; i++)
        if (!r->field[i] && field)
            r->field[i] = strdup(field);
}

static void result_free(result_t *r)
{
    for (size_t i = 0; i < r->cap; i++)
        free(r->field[i]);
    free(r->field);
    sl_findings_free(&r->f);
}

static int read_all(const char *path, sl_buf_t *b)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "sluice scan: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char tmp[65536];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, f)) > 0)
        sl_buf_append(b, tmp, r);
    bool bad = ferror(f);
    if (f != stdin)
        fclose(f);
    if (bad) {
        fprintf(stderr, "sluice scan: %s: read error\n", path);
        return -1;
    }
    return 0;
}

static void scan_one(const sl_ruleset_t *rs, sl_surface_t s, const char *p, size_t n,
                     const char *field, result_t *r)
{
    size_t from = r->f.n;
    sl_inspect_scan(rs, s, p, n, &r->f);
    result_tag(r, from, field);
}

static void scan_values(const sl_ruleset_t *rs, sl_surface_t s, const sl_view_t *v,
                        char *const *names, size_t n, result_t *r)
{
    for (size_t i = 0; i < n; i++)
        scan_one(rs, s, v[i].p, v[i].n, names[i], r);
    if (n < 2)
        return;
    /* Values alone were scanned above; this adds what only the joined text shows. */
    sl_findings_t tmp = {0};
    sl_inspect_scan_values(rs, s, v, n, &tmp);
    size_t from = r->f.n;
    for (size_t i = 0; i < tmp.n; i++)
        if (tmp.v[i].layer == SL_LAYER_JOINED || tmp.v[i].category == SL_CAT_LIMIT) {
            *sl_findings_push(&r->f) = tmp.v[i];
        }
    result_tag(r, from, "(joined values)");
    sl_findings_free(&tmp);
}

/* Returns 1 if `in` was an envelope (scanned into r), 0 if not, -1 if broken. */
static int scan_envelope(const sl_ruleset_t *rs, const sl_buf_t *in, result_t *r,
                         const char **surface)
{
    size_t i = 0;
    while (i < in->n &&
           (in->p[i] == ' ' || in->p[i] == '\n' || in->p[i] == '\t' || in->p[i] == '\r'))
        i++;
    if (i == in->n || in->p[i] != '{')
        return 0;
    json_error_t jerr;
    json_t *j = json_loadb(in->p, in->n, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return 0;
    }
    const char *type = json_string_value(json_object_get(j, "type"));
    int rc = 1;
    sl_strlist_t l = {0};
    if (!type) {
        rc = 0;
    } else if (strcmp(type, "url") == 0) {
        json_t *u = json_object_get(j, "url");
        if (!json_is_string(u))
            goto bad;
        const char *s = json_string_value(u);
        size_t n = json_string_length(u);
        *surface = "url";
        scan_one(rs, SL_SURF_URL, s, n, "url", r);
        const char *q = memchr(s, '?', n);
        if (q) {
            const char *end = s + n, *hash = memchr(q, '#', (size_t)(end - q));
            if (hash)
                end = hash;
            for (const char *p = q + 1; p < end;) {
                const char *amp = memchr(p, '&', (size_t)(end - p));
                const char *e = amp ? amp : end;
                const char *eq = memchr(p, '=', (size_t)(e - p));
                if (eq) {
                    char name[256];
                    snprintf(name, sizeof name, "url.query.%.*s", (int)(eq - p), p);
                    sl_strlist_add(&l, eq + 1, (size_t)(e - eq - 1), name);
                }
                p = e + 1;
            }
            /* Each value was already seen inside the whole URL: only the join adds. */
            size_t from = r->f.n;
            sl_inspect_scan_joined(rs, SL_SURF_URL, l.v, l.n, &r->f);
            result_tag(r, from, "(joined query values)");
        }
    } else if (strcmp(type, "headers") == 0) {
        json_t *h = json_object_get(j, "headers");
        *surface = "header";
        if (json_is_object(h)) {
            const char *k;
            json_t *v;
            json_object_foreach(h, k, v)
            {
                if (!json_is_string(v))
                    goto bad;
                char name[256];
                snprintf(name, sizeof name, "headers.%s", k);
                sl_strlist_add(&l, json_string_value(v), json_string_length(v), name);
            }
        } else if (json_is_array(h)) {
            size_t x;
            json_t *pair;
            json_array_foreach(h, x, pair)
            {
                json_t *k = json_array_get(pair, 0), *v = json_array_get(pair, 1);
                if (!json_is_string(k) || !json_is_string(v))
                    goto bad;
                char name[256];
                snprintf(name, sizeof name, "headers.%s", json_string_value(k));
                sl_strlist_add(&l, json_string_value(v), json_string_length(v), name);
            }
        } else {
            goto bad;
        }
        scan_values(rs, SL_SURF_HEADER, l.v, l.name, l.n, r);
    } else if (strcmp(type, "body") == 0 || strcmp(type, "response") == 0) {
        json_t *b = json_object_get(j, "body");
        if (!json_is_string(b))
            goto bad;
        bool resp = strcmp(type, "response") == 0;
        *surface = resp ? "response" : "body";
        scan_one(rs, resp ? SL_SURF_RESPONSE : SL_SURF_BODY, json_string_value(b),
                 json_string_length(b), "body", r);
    } else if (strcmp(type, "tool_call") == 0) {
        json_t *a = json_object_get(j, "arguments");
        if (!a)
            goto bad;
        *surface = "tool_call";
        sl_json_collect_strings(a, "arguments", &l, &l);
        scan_values(rs, SL_SURF_TOOL_CALL, l.v, l.name, l.n, r);
    } else if (strcmp(type, "tool_list") == 0) {
        json_t *t = json_object_get(j, "tools");
        if (!json_is_array(t))
            goto bad;
        *surface = "tool_list";
        sl_json_collect_strings(t, "tools", &l, &l);
        for (size_t k = 0; k < l.n; k++)
            scan_one(rs, SL_SURF_TOOL_LIST, l.v[k].p, l.v[k].n, l.name[k], r);
    } else {
        rc = 0; /* a JSON document with some other "type": plain text */
    }
    sl_strlist_free(&l);
    json_decref(j);
    return rc;
bad:
    fprintf(stderr, "sluice scan: envelope of type '%s' is missing its fields (see --help)\n",
            type);
    sl_strlist_free(&l);
    json_decref(j);
    return -1;
}

static void print_result(const char *name, const char *surface, const result_t *r, bool text)
{
    if (text) {
        for (size_t i = 0; i < r->f.n; i++) {
            const sl_finding_t *f = &r->f.v[i];
            printf("%s:%zu-%zu: %s [%s, %s, %s] layer=%s%s%s excerpt=%s\n", name, f->start, f->end,
                   f->rule_id, sl_category_name(f->category), sl_severity_name(f->severity),
                   sl_action_name(f->action), sl_layer_name(f->layer),
                   r->field && r->field[i] ? " field=" : "",
                   r->field && r->field[i] ? r->field[i] : "", f->excerpt);
        }
        return;
    }
    json_t *o = json_object(), *arr = json_array();
    json_object_set_new(o, "input", json_string(name));
    json_object_set_new(o, "surface", json_string(surface));
    for (size_t i = 0; i < r->f.n; i++) {
        const sl_finding_t *f = &r->f.v[i];
        json_t *x = json_object();
        json_object_set_new(x, "rule", json_string(f->rule_id));
        json_object_set_new(x, "category", json_string(sl_category_name(f->category)));
        json_object_set_new(x, "severity", json_string(sl_severity_name(f->severity)));
        json_object_set_new(x, "action", json_string(sl_action_name(f->action)));
        json_object_set_new(x, "start", json_integer((json_int_t)f->start));
        json_object_set_new(x, "end", json_integer((json_int_t)f->end));
        json_object_set_new(x, "exact", json_boolean(f->exact));
        json_object_set_new(x, "layer", json_string(sl_layer_name(f->layer)));
        json_object_set_new(x, "depth", json_integer(f->depth));
        json_object_set_new(x, "excerpt", json_string(f->excerpt));
        if (r->field && r->field[i])
            json_object_set_new(x, "field", json_string(r->field[i]));
        json_array_append_new(arr, x);
    }
    json_object_set_new(o, "findings", arr);
    char *s = json_dumps(o, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(o);
}

static void list_rules(const sl_ruleset_t *rs, bool text)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sl_ruleset_count(rs); i++) {
        const sl_rule_info_t *r = sl_ruleset_rule(rs, i);
        if (text) {
            printf("%-40s %-14s %-8s %-6s %-12s %s:%u  %s\n", r->id, sl_category_name(r->category),
                   sl_severity_name(r->severity), sl_action_name(r->action),
                   r->validator ? r->validator : "-", r->file, r->line, r->description);
            continue;
        }
        json_t *x = json_object();
        json_object_set_new(x, "id", json_string(r->id));
        json_object_set_new(x, "description", json_string(r->description));
        json_object_set_new(x, "category", json_string(sl_category_name(r->category)));
        json_object_set_new(x, "severity", json_string(sl_severity_name(r->severity)));
        json_object_set_new(x, "action", json_string(sl_action_name(r->action)));
        json_object_set_new(x, "validator", r->validator ? json_string(r->validator) : json_null());
        json_object_set_new(x, "file", json_string(r->file));
        json_object_set_new(x, "line", json_integer(r->line));
        json_object_set_new(x, "exact_start", json_boolean(r->exact_start));
        json_array_append_new(arr, x);
    }
    if (!text) {
        char *s = json_dumps(arr, JSON_INDENT(2));
        puts(s);
        free(s);
    }
    json_decref(arr);
}

int sl_cmd_scan(int argc, char **argv)
{
    scan_opts_t o = {.surface = SL_SURF_ALL};
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    o.paths = calloc((size_t)argc + 1, sizeof *o.paths);
    o.ov = calloc((size_t)argc + 1, sizeof *o.ov);
    size_t nfiles = 0;
    int rc = 2;
    sl_ruleset_t *rs = NULL;
    if (!files || !o.paths || !o.ov)
        goto out;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_arg = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(scan_usage, stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--rules") == 0 && has_arg) {
            o.paths[o.n_paths++] = argv[++i];
        } else if (strcmp(a, "--no-default-rules") == 0) {
            o.no_default = true;
        } else if (strcmp(a, "--surface") == 0 && has_arg) {
            o.surface = sl_surface_parse(argv[++i]);
            if (o.surface < 0) {
                fprintf(stderr,
                        "sluice scan: unknown surface '%s' (url, header, body, response, "
                        "tool_call, tool_list, all)\n",
                        argv[i]);
                goto out;
            }
        } else if ((strcmp(a, "--disable") == 0 || strcmp(a, "--warn") == 0) && has_arg) {
            o.ov[o.n_ov++] = (sl_rule_override_t){
                argv[++i], strcmp(a, "--warn") == 0 ? SL_ACT_WARN : SL_ACT_OFF, -1};
        } else if (strcmp(a, "--json") == 0) {
            o.text = false;
        } else if (strcmp(a, "--text") == 0) {
            o.text = true;
        } else if (strcmp(a, "--list-rules") == 0) {
            o.list = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sluice scan: unknown option or missing value: %s (see --help)\n", a);
            goto out;
        } else {
            files[nfiles++] = a;
        }
    }
    sl_ruleset_opts_t ro = {.no_embedded = o.no_default,
                            .paths = o.paths,
                            .n_paths = o.n_paths,
                            .overrides = o.ov,
                            .n_overrides = o.n_ov};
    sl_buf_t err = {0};
    rs = sl_ruleset_load(&ro, &err);
    if (!rs) {
        fprintf(stderr, "sluice scan: cannot load rules:\n%s", sl_buf_cstr(&err));
        sl_buf_free(&err);
        goto out;
    }
    sl_buf_free(&err);
    if (o.list) {
        list_rules(rs, o.text);
        rc = 0;
        goto out;
    }
    if (nfiles == 0)
        files[nfiles++] = "-";
    rc = 0;
    for (size_t i = 0; i < nfiles; i++) {
        sl_buf_t in = {0};
        result_t r = {0};
        if (read_all(files[i], &in) < 0) {
            rc = 2;
            continue;
        }
        const char *surface = sl_surface_name((sl_surface_t)o.surface);
        int env = scan_envelope(rs, &in, &r, &surface);
        if (env < 0) {
            rc = 2;
        } else {
            if (env == 0)
                scan_one(rs, (sl_surface_t)o.surface, in.p ? in.p : "", in.n, NULL, &r);
            print_result(strcmp(files[i], "-") == 0 ? "<stdin>" : files[i], surface, &r, o.text);
            if (r.f.n > 0 && rc == 0)
                rc = 1;
        }
        result_free(&r);
        sl_buf_free(&in);
    }
out:
    sl_ruleset_unref(rs);
    free(files);
    free(o.paths);
    free(o.ov);
    return rc;
}
