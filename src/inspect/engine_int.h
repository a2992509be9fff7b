/* Engine internals shared by engine.c (block mode) and stream.c. */
#ifndef SLUICE_INSPECT_ENGINE_INT_H
#define SLUICE_INSPECT_ENGINE_INT_H

#include "inspect/rules.h"

typedef enum layer_how {
    LAYER_ROOT = 0, /* the input itself */
    LAYER_WHOLE,    /* a whole-text transform of the parent (offset map recomputable) */
    LAYER_REGION,   /* a decode of one region [lo, hi) of the parent */
} layer_how_t;

/* One text variant in the decode tree. */
typedef struct layer {
    const struct layer *parent;
    const char *p;
    size_t n;
    sl_layer_t kind;
    layer_how_t how;
    size_t lo, hi;        /* LAYER_REGION: region in the parent */
    unsigned fold_flags;  /* kind FOLDED: sl_fold flags used */
    unsigned depth;       /* decode layers above (folding does not count) */
    sl_layer_t root_kind; /* RAW, or JOINED for concatenated values */
    uint32_t *map;        /* LAYER_WHOLE: lazily built, n + 1 parent offsets */
} layer_t;

#define HITS 64
#define PENDING 256

/* A match waiting for its start offset (scan databases have no SOM). */
typedef struct pend {
    unsigned id;
    unsigned long long to;
} pend_t;

/* A recent match of this layer, to merge overlapping reports of one rule. */
typedef struct hit {
    unsigned rule;
    unsigned long long from, to;
    long fidx; /* finding index, -1 if the validator rejected it */
} hit_t;

typedef struct scan_ctx {
    const sl_ruleset_t *rs;
    unsigned mask; /* categories reported */
    sl_findings_t *out;
    size_t out0;        /* first finding of this scan */
    size_t dedupe_from; /* findings from here on are checked for duplicates */
    hs_scratch_t *scratch;
    layer_t *text_layer; /* coordinates of `text` */
    const char *text;    /* bytes the current database runs over */
    size_t tn;
    unsigned long long text_base; /* stream offset of text[0] (0 in block mode) */
    unsigned long long hs_bias;   /* added to offsets Vectorscan reports (a stream reset
                                     at this text offset restarted them at 0) */
    size_t root_base;             /* added to root offsets (stream window start) */
    hit_t hits[HITS];
    size_t nhits, hit_next;
    size_t decoded, budget;            /* decoded bytes so far, and the cap */
    const char *limit;                 /* set when a budget was exceeded: why */
    const unsigned long long *abs_map; /* stream fold: text byte -> absolute input offset */
    bool stream_mode;                  /* matches come from stream databases */
    bool resolved;                     /* stream mode: `from` was recovered by a block rescan */
    pend_t pend[PENDING];              /* matches of the current database run */
    size_t npend;
    bool skip_root_dbs; /* stream window pass: raw/folded root scans done by streams */
} scan_ctx_t;

hs_scratch_t *sl_engine_scratch(const sl_ruleset_t *rs);
int sl_engine_on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                       void *ctx);
/* Vectorscan callback for scan databases: queues (id, to) for resolution. */
int sl_engine_pend_cb(unsigned id, unsigned long long from, unsigned long long to, unsigned flags,
                      void *ctx);
/* Recover the start of every queued match (the rule's PCRE2 pattern over
 * c->text), then report each through sl_engine_on_match. */
void sl_engine_resolve(scan_ctx_t *c, sl_dbgroup_t g);
void sl_engine_map_root(layer_t *L, size_t from, size_t to, size_t *start, size_t *end,
                        bool *exact);
/* Full block pipeline over p[0..n) treated as a root of kind root_kind. */
void sl_engine_scan_root(scan_ctx_t *c, const char *p, size_t n, sl_layer_t root_kind);
/* Decoders only (no depth-0 database runs): the streaming window pass. */
void sl_engine_scan_decoded(scan_ctx_t *c, const char *p, size_t n);
void sl_engine_add_limit(sl_findings_t *out, size_t out0, size_t n, const char *why);

#endif
