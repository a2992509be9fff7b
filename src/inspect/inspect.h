/* The inspection engine: one library every surface calls (URLs, headers,
 * request bodies, responses, WebSocket frames, MCP tool calls and lists).
 *
 * A ruleset is loaded once from YAML (the embedded default rules plus
 * operator files; format in rules/README.md), compiled into Vectorscan
 * databases and then never changes: it is refcounted, so a config reload
 * builds a new one and swaps it in while in-flight scans finish on the old.
 *
 * Every scan normalises and decodes its input the same way (docs/detection.md):
 * the raw bytes, decoded layers (percent, HTML entities, \u/\x escapes,
 * base64/base32/hex runs, nested up to a depth) and, for non-credential
 * categories, a folded text (NFKC-ish, homoglyphs, invisible characters,
 * whitespace, case; leetspeak for rules asking for it). When the decoding
 * budgets are exceeded the scan reports the finding "inspection-limit" so the
 * caller fails closed: an input is never "clean" because it was too big or
 * too deep to look at. */
#ifndef SLUICE_INSPECT_INSPECT_H
#define SLUICE_INSPECT_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/view.h"

/* What a rule looks for. The bit values form category masks. */
typedef enum sl_category {
    SL_CAT_CREDENTIAL = 0,
    SL_CAT_FINANCIAL,
    SL_CAT_INJECTION,
    SL_CAT_TOOL_POISONING,
    SL_CAT_SHELL,
    SL_CAT_LIMIT, /* engine-made: the input exceeded a budget (rule "inspection-limit") */
    SL_CAT__COUNT,
} sl_category_t;

#define SL_CAT_BIT(c) (1u << (c))

typedef enum sl_severity {
    SL_SEV_LOW = 0,
    SL_SEV_MEDIUM,
    SL_SEV_HIGH,
    SL_SEV_CRITICAL,
} sl_severity_t;

/* What the caller should do with a finding. Rules default to BLOCK; operators
 * downgrade with overrides. OFF rules are not compiled at all. */
typedef enum sl_action {
    SL_ACT_BLOCK = 0, /* refuse the message */
    SL_ACT_REDACT,    /* replace the matched bytes and let the rest through */
    SL_ACT_WARN,      /* let it through, log and audit the finding */
    SL_ACT_OFF,       /* rule disabled */
} sl_action_t;

/* Where the bytes are. Which categories apply where is one table:
 * sl_inspect_surface_categories(). */
typedef enum sl_surface {
    SL_SURF_URL = 0,   /* request URL / hostname (outbound) */
    SL_SURF_HEADER,    /* request header value (outbound) */
    SL_SURF_BODY,      /* request body, WebSocket frame to upstream (outbound) */
    SL_SURF_RESPONSE,  /* response body, SSE event, WebSocket frame to agent (inbound) */
    SL_SURF_TOOL_CALL, /* MCP tools/call arguments */
    SL_SURF_TOOL_LIST, /* MCP tool definitions (tools/list result) */
    SL_SURF_ALL,       /* every category (sluice scan without a surface, tests) */
    SL_SURF__COUNT,
} sl_surface_t;

/* Which text variant a finding was seen in. */
typedef enum sl_layer {
    SL_LAYER_RAW = 0, /* the input bytes as given */
    SL_LAYER_PERCENT, /* percent-decoded (to a fixed point) */
    SL_LAYER_HTML,    /* HTML entities decoded */
    SL_LAYER_ESCAPE,  /* \uXXXX / \xXX / \n escapes decoded */
    SL_LAYER_BASE64,  /* a base64 (std, url-safe, unpadded) run decoded */
    SL_LAYER_BASE32,  /* a base32 run decoded */
    SL_LAYER_HEX,     /* a hex run (plain or delimited) decoded */
    SL_LAYER_TAGS,    /* ASCII carried by Unicode tag characters U+E0020..E007F */
    SL_LAYER_FOLDED,  /* homoglyph/width/invisible/whitespace/case folded */
    SL_LAYER_LEET,    /* folded plus leetspeak */
    SL_LAYER_JOINED,  /* the concatenation of several values (sl_inspect_scan_values) */
    SL_LAYER__COUNT,
} sl_layer_t;

/* Decoding budgets. Zero fields take the defaults in brackets. */
typedef struct sl_inspect_limits {
    unsigned max_depth;       /* nested decode layers [3] */
    size_t max_decoded_bytes; /* total bytes produced by decoders per scan [4 x input + 64 KiB] */
    size_t max_input_bytes;   /* block-scan input larger than this is a limit finding [16 MiB] */
    size_t min_run;           /* shortest base64/base32/hex run worth decoding [16] */
    size_t stream_window;     /* stream mode: recent bytes kept for validators and decoders
                                 (between 1x and 2x this is held) [16 KiB] */
} sl_inspect_limits_t;

/* An operator override: disable or downgrade one rule by id. */
typedef struct sl_rule_override {
    const char *id;     /* rule id; unknown ids are a load error */
    sl_action_t action; /* new action (OFF disables) */
    int severity;       /* new severity, or -1 to keep the rule's */
} sl_rule_override_t;

/* Everything needed to build a ruleset. Zero-initialise, then fill in. */
typedef struct sl_ruleset_opts {
    bool no_embedded;         /* skip the rules compiled into the binary */
    const char *const *paths; /* operator rule files or directories (*.yaml) */
    size_t n_paths;
    const sl_rule_override_t *overrides; /* applied after loading, by rule id */
    size_t n_overrides;
    sl_inspect_limits_t limits; /* decoding budgets (zero = defaults) */
} sl_ruleset_opts_t;

/* Read-only description of one loaded rule (valid while the ruleset lives). */
typedef struct sl_rule_info {
    const char *id;          /* unique rule id */
    const char *description; /* one line */
    const char *file;        /* YAML file it came from ("<embedded>/name.yaml" for built-ins) */
    unsigned line;           /* 1-based line of the rule in that file */
    sl_category_t category;
    sl_severity_t severity; /* after overrides */
    sl_action_t action;     /* after overrides */
    const char *validator;  /* validator name or NULL */
    const char *pattern;    /* Vectorscan pattern as written */
    bool exact_start;       /* false if match starts are approximated (PCRE2 refused the pattern) */
} sl_rule_info_t;

typedef struct sl_ruleset sl_ruleset_t;

/* One thing found. Offsets are bytes into the scanned input: exact for RAW
 * findings, otherwise the span of the input region that decoded/folded into
 * the match (`exact` false when only the enclosing region is known). */
typedef struct sl_finding {
    const char *rule_id; /* owned by the ruleset: valid while a reference is held
                            ("inspection-limit" for limits: static) */
    sl_category_t category;
    sl_severity_t severity;
    sl_action_t action;
    size_t start, end; /* [start, end) in the original input */
    bool exact;        /* start/end map exactly onto the matched bytes */
    sl_layer_t layer;  /* innermost decode layer of the match (folded/leet if none) */
    uint8_t depth;     /* number of nested decode layers (0 = raw) */
    char excerpt[48];  /* REDACTED: first <= 4 chars, "…", "(N bytes)"; never the value.
                          For inspection-limit: which budget was exceeded */
} sl_finding_t;

/* A growable list of findings the caller owns. */
typedef struct sl_findings {
    sl_finding_t *v;
    size_t n, cap;
} sl_findings_t;

/* Release the storage of a findings list (it stays usable, empty). */
void sl_findings_free(sl_findings_t *f);
/* Append a zeroed finding and return it (aborts on out of memory). */
sl_finding_t *sl_findings_push(sl_findings_t *f);
/* Empty the list, keeping its storage. */
static inline void sl_findings_reset(sl_findings_t *f)
{
    f->n = 0;
}
/* The strictest action among the findings (BLOCK < REDACT < WARN), or OFF if none. */
sl_action_t sl_findings_verdict(const sl_findings_t *f);

/* The category mask a surface is inspected for: THE table. */
unsigned sl_inspect_surface_categories(sl_surface_t s);

/* Names <-> enums ("url", "header", "body", "response", "tool_call", "tool_list", "all"),
 * ("credential", ...), ("low", ...), ("block", "redact", "warn", "off"), layers.
 * Parsers return -1 on an unknown name. */
const char *sl_surface_name(sl_surface_t s);
int sl_surface_parse(const char *s);
const char *sl_category_name(sl_category_t c);
int sl_category_parse(const char *s);
const char *sl_severity_name(sl_severity_t s);
int sl_severity_parse(const char *s);
const char *sl_action_name(sl_action_t a);
int sl_action_parse(const char *s);
const char *sl_layer_name(sl_layer_t l);

/* Load, validate and compile a ruleset. Returns NULL and appends a message
 * naming file:line:col (and the rule id) to `err` on any error: bad YAML,
 * unknown key, duplicate id, pattern that does not compile, unknown override.
 * The result has one reference. Takes up to a few hundred ms: call it at
 * startup or reload, never per request. */
sl_ruleset_t *sl_ruleset_load(const sl_ruleset_opts_t *opts, sl_buf_t *err);
/* Take / drop a reference. The last unref frees everything. Thread-safe. */
sl_ruleset_t *sl_ruleset_ref(sl_ruleset_t *rs);
void sl_ruleset_unref(sl_ruleset_t *rs);
/* Number of loaded rules (including OFF ones) and their descriptions. */
size_t sl_ruleset_count(const sl_ruleset_t *rs);
const sl_rule_info_t *sl_ruleset_rule(const sl_ruleset_t *rs, size_t i);
/* Rule by id, or NULL. */
const sl_rule_info_t *sl_ruleset_find(const sl_ruleset_t *rs, const char *id);
/* Bytes of compiled database (block + stream) held by the ruleset. */
size_t sl_ruleset_db_bytes(const sl_ruleset_t *rs);
/* Category mask (SL_CAT_BIT) of the categories with at least one rule whose
 * action is `a` (after overrides). Constant time: per-exchange checks. */
unsigned sl_ruleset_action_categories(const sl_ruleset_t *rs, sl_action_t a);

/* Scan one buffer for `surface`: appends findings (at most one per rule and
 * layer region) to `out`. Returns the number appended, or -1 on an internal
 * error, in which case an "inspection-limit" finding is appended too, so a
 * caller that only looks at `out` still fails closed. Thread-safe: any number
 * of threads may scan with the same ruleset. */
int sl_inspect_scan(const sl_ruleset_t *rs, sl_surface_t surface, const char *p, size_t n,
                    sl_findings_t *out);

/* Scan several values that may carry one secret split into pieces (URL query
 * values, header values): each value alone, then their concatenation without
 * separators (layer JOINED, offsets into that concatenation). Same return as
 * sl_inspect_scan. Findings of the concatenation that were already found in
 * a single value are not repeated. */
int sl_inspect_scan_values(const sl_ruleset_t *rs, sl_surface_t surface, const sl_view_t *vals,
                           size_t n, sl_findings_t *out);

/* Only the concatenation part of sl_inspect_scan_values, for callers that
 * already scanned each value (or a text containing them all, like a whole
 * URL): findings that cross a value boundary, layer JOINED. */
int sl_inspect_scan_joined(const sl_ruleset_t *rs, sl_surface_t surface, const sl_view_t *vals,
                           size_t n, sl_findings_t *out);

/* Streaming scan of a body that arrives in chunks. Matches spanning chunk
 * boundaries are found (Vectorscan stream mode for raw and folded text; a
 * bounded window of recent bytes for decoders and validators). Memory is
 * bounded by the ruleset's stream state plus the window, whatever the body
 * length. Offsets are absolute from the first byte fed. */
typedef struct sl_inspect_stream sl_inspect_stream_t;

/* Open a stream (holds a ruleset reference until close). NULL on OOM. */
sl_inspect_stream_t *sl_inspect_stream_open(const sl_ruleset_t *rs, sl_surface_t surface);
/* Feed the next chunk; appends findings that are complete so far. Returns the
 * number appended or -1 (with an "inspection-limit" finding). */
int sl_inspect_stream_feed(sl_inspect_stream_t *st, const char *p, size_t n, sl_findings_t *out);
/* End of body: flushes matches that need end-of-data, frees the stream.
 * `out` may be NULL to abandon the stream. Returns as feed. */
int sl_inspect_stream_close(sl_inspect_stream_t *st, sl_findings_t *out);

/* Build the redacted excerpt for a matched value: at most the first 4
 * characters (fewer for short values), "…", and "(N bytes)". */
void sl_inspect_excerpt(const char *p, size_t n, char out[48]);

#endif
