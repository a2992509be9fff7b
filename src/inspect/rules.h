/* Internal representation of a loaded ruleset (shared by ruleset.c, which
 * loads and validates YAML, and engine.c, which compiles and scans). Tests
 * include it to reach rule examples. */
#ifndef SLUICE_INSPECT_RULES_H
#define SLUICE_INSPECT_RULES_H

#include <hs.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdatomic.h>

#include "inspect/inspect.h"
#include "inspect/validators.h"

/* One rule as loaded. */
typedef struct sl_rule {
    sl_rule_info_t info; /* public view (strings owned by this rule) */
    sl_validator_t validator;
    double min_entropy;   /* 0 = no entropy requirement */
    unsigned hs_flags;    /* HS_FLAG_* from `flags:` */
    bool leet;            /* normalize: [leet] */
    pcre2_code *start_re; /* the pattern for PCRE2, to recover a match's start
                             (NULL: starts are approximated from the width) */
    unsigned max_width;   /* longest possible match (UINT_MAX if unbounded) */
    bool prose;           /* matches plain lowercase prose: compiled in its own database */
    bool needs_raw;       /* folded-text rule that may match raw text its folded form does not
                             (line structure, invisible or non-ASCII characters, case, runs of
                             spaces): also run over raw text */
    char **ex_match;      /* examples.match */
    size_t n_match;
    char **ex_no_match; /* examples.no_match */
    size_t n_no_match;
} sl_rule_t;

/* The compiled databases, one per rule group. */
typedef enum sl_dbgroup {
    SL_DB_SECRETS = 0,    /* credential + financial, on raw and decoded text, case kept */
    SL_DB_SECRETS_PROSE,  /* the same for rules that match ordinary prose (sl_rule_t.prose) */
    SL_DB_INJECTION,      /* injection, on folded text */
    SL_DB_TOOLPOISON,     /* tool-poisoning, on folded text */
    SL_DB_SHELL,          /* shell, on folded text */
    SL_DB_LEET,           /* non-credential rules with normalize: [leet], on leet-folded text */
    SL_DB_INJECTION_RAW,  /* injection rules with needs_raw, on raw text (block mode only) */
    SL_DB_TOOLPOISON_RAW, /* tool-poisoning rules with needs_raw, on raw text (block mode only) */
    SL_DB_SHELL_RAW,      /* shell rules with needs_raw, on raw text (block mode only) */
    SL_DB__COUNT,
} sl_dbgroup_t;

typedef struct sl_db {
    hs_database_t *block;  /* NULL when the group has no active rules */
    hs_database_t *stream; /* same patterns in stream mode */
    size_t n;              /* patterns compiled */
} sl_db_t;

struct sl_ruleset {
    atomic_int refs;
    uint64_t gen; /* unique per ruleset: per-thread scratch bookkeeping */
    sl_rule_t *rules;
    size_t n;
    sl_inspect_limits_t lim; /* defaults filled in */
    sl_db_t db[SL_DB__COUNT];
    size_t db_bytes;
    unsigned action_cats[SL_ACT_OFF + 1]; /* per action: categories having such a rule */
};

/* One embedded rule file (generated at build time from rules/ *.yaml). */
typedef struct sl_embedded_file {
    const char *name; /* file name, e.g. "credentials.yaml" */
    const char *data; /* contents, NUL-terminated */
    size_t len;
} sl_embedded_file_t;

extern const sl_embedded_file_t sl_embedded_rules[];
extern const size_t sl_embedded_rules_count;

/* engine.c: does rule r belong in database group g (active rules only)? */
bool sl_engine_in_group(const sl_rule_t *r, sl_dbgroup_t g);
/* engine.c: compile every group; on error appends "file:line: rule 'id': ..." to err. */
int sl_engine_compile(sl_ruleset_t *rs, sl_buf_t *err);
/* engine.c: free the databases. */
void sl_engine_free(sl_ruleset_t *rs);

#endif
