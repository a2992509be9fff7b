/* Table-driven YAML schema: the machinery behind config.c.
 *
 * A section of the config is a table of fields; each field names its key, a
 * type (parse + release functions), where the value lives in the C struct and
 * the type's parameters (bounds, sub-table, list shape). Adding a key is one
 * table entry, plus a small parser when none of the built-in types fits.
 *
 * Parsing overlays the YAML onto a struct that already holds defaults: a key
 * that is absent keeps its value, a key that fails to parse keeps its value
 * and reports, so one pass collects every problem. Errors go through
 * sl_cfg_error as "FILE:LINE:COL: key.path: what is wrong; what to do". */
#ifndef SLUICE_CONFIG_SCHEMA_H
#define SLUICE_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "core/buf.h"
#include "core/view.h"

/* Errors reported per load before the rest are summarised in one line. */
#define SL_CFG_MAX_ERRORS 100

/* State of one load. */
typedef struct sl_cfg_ctx {
    const char *name;     /* file name used in messages */
    yaml_document_t *doc; /* the document being walked (aliases already refused) */
    sl_buf_t *err;        /* receives one line per problem */
    unsigned n_errors;    /* problems found so far, including unprinted ones */
    char path[256];       /* dotted key path of the value being parsed ("limits.max_headers") */
    size_t path_n;        /* bytes used in path */
} sl_cfg_ctx_t;

typedef struct sl_cfg_field sl_cfg_field_t;

/* A value type. */
typedef struct sl_cfg_type {
    /* What the value must look like, for type errors ("a whole number"). */
    const char *expect;
    /* Parse `node` into the slot `f` describes inside `base`. On a problem,
     * report it with sl_cfg_error and leave the slot as it was. */
    void (*parse)(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, char *base);
    /* Free what parse stored in the slot and reset it; NULL if nothing owned. */
    void (*release)(const sl_cfg_field_t *f, char *base);
} sl_cfg_type_t;

/* The keys of one mapping. */
typedef struct sl_cfg_table {
    const char *name;             /* section name for messages ("limits"); "" at top */
    const sl_cfg_field_t *fields; /* the keys, in documentation order */
    size_t n;                     /* number of fields */
} sl_cfg_table_t;

/* Shape of a list value (sl_cfg_type_list): an array of elem_size elements at
 * field.off, its length (size_t) at field.off_n. */
typedef struct sl_cfg_list {
    size_t elem_size;        /* bytes per element */
    const char *elem_expect; /* what one element must be ("a host pattern") */
    /* Scalar elements: parse `node` into the zeroed `elem`; true on success
     * (false after reporting). NULL when elements are mappings. */
    bool (*elem_parse)(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, void *elem);
    void (*elem_release)(void *elem); /* free an element's contents; NULL if none */
    const sl_cfg_table_t *map;        /* mapping elements: the keys of each element */
    /* Identity of an element for duplicate detection: writes text to buf
     * (cap bytes) and returns it; NULL = duplicates are allowed. */
    const char *(*elem_key)(const void *elem, char *buf, size_t cap);
    size_t min_items; /* fewer is an error */
    size_t max_items; /* more is an error; 0 = no limit */
    bool single_ok;   /* a lone scalar counts as a one-element list */
} sl_cfg_list_t;

/* One key. */
struct sl_cfg_field {
    const char *key;           /* YAML key */
    const sl_cfg_type_t *type; /* how to parse and free it */
    size_t off;                /* offset of the value in the struct being filled */
    size_t size;               /* sizeof the value (integers are stored by width) */
    size_t off_n;              /* lists: offset of the size_t element count */
    const void *sub;           /* maps: sl_cfg_table_t; lists: sl_cfg_list_t;
                                  enums: NULL-terminated array of names (index = value) */
    uint64_t min, max;         /* numbers, sizes, durations: inclusive bounds */
    unsigned flags;            /* SL_CFG_* below */
    const char *example;       /* a valid line, shown in type errors ("workers: 4") */
    /* Strings: extra check of the text; NULL if any non-empty text goes. */
    const char *(*check)(sl_view_t v);
};

#define SL_CFG_REQUIRED 1u /* the key must be present in its mapping */
#define SL_CFG_SECRET 2u   /* never quote the value in an error */

/* Slot of member `m` of struct type `T`, for field initialisers. */
#define SL_CFG_AT(T, m) .off = offsetof(T, m), .size = sizeof(((T *)0)->m)
/* Array `m` with count `cnt` of struct type `T`. */
#define SL_CFG_LIST_AT(T, m, cnt)                                                                  \
    .off = offsetof(T, m), .size = sizeof(((T *)0)->m), .off_n = offsetof(T, cnt)

/* Built-in types. */
extern const sl_cfg_type_t sl_cfg_type_map;      /* nested table, same base + off */
extern const sl_cfg_type_t sl_cfg_type_list;     /* see sl_cfg_list_t */
extern const sl_cfg_type_t sl_cfg_type_bool;     /* true / false */
extern const sl_cfg_type_t sl_cfg_type_uint;     /* plain decimal in [min, max] */
extern const sl_cfg_type_t sl_cfg_type_size;     /* bytes or 32KiB, in [min, max] */
extern const sl_cfg_type_t sl_cfg_type_duration; /* ms or 10s, stored as uint64 ms */
extern const sl_cfg_type_t sl_cfg_type_enum;     /* one of sub's names, stored as int */
extern const sl_cfg_type_t sl_cfg_type_string;   /* malloc'd char *, optional check */
extern const sl_cfg_type_t sl_cfg_type_hostglob; /* malloc'd char *, lowercased pattern */

/* List element parsers for the common cases. */
bool sl_cfg_elem_hostglob(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f,
                          void *elem); /* char * element */
void sl_cfg_elem_free_str(void *elem); /* frees a char * element */
const char *sl_cfg_elem_key_str(const void *elem, char *buf, size_t cap);

/* Walk mapping `node` against `table`, filling `base`. A null node (empty
 * value) leaves everything as it is. */
void sl_cfg_parse_table(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_table_t *table,
                        char *base);
/* Release everything the table's fields own in `base`. */
void sl_cfg_release_table(const sl_cfg_table_t *table, char *base);

/* Report a problem at `node` (NULL: no position). `fmt` should read
 * "what is wrong; what to do". */
void sl_cfg_error(sl_cfg_ctx_t *ctx, const yaml_node_t *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same at a mark (events and parser errors have marks, not nodes). */
void sl_cfg_error_at(sl_cfg_ctx_t *ctx, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Report that `node` has the wrong type for `f`. */
void sl_cfg_type_error(sl_cfg_ctx_t *ctx, const yaml_node_t *node, const sl_cfg_field_t *f);
/* Report a bad scalar value: 'invalid value "X": <reason>'. */
void sl_cfg_value_error(sl_cfg_ctx_t *ctx, const yaml_node_t *node, const sl_cfg_field_t *f,
                        const char *reason);

/* The text of a scalar node, or false if `node` is not a scalar. */
bool sl_cfg_scalar(const yaml_node_t *node, sl_view_t *out);
/* Is `node` an unquoted scalar (plain style)? */
bool sl_cfg_is_plain(const yaml_node_t *node);
/* Is `node` an empty value (nothing, ~ or null, unquoted)? */
bool sl_cfg_is_null(const yaml_node_t *node);
/* The text of a non-empty string scalar without NUL bytes, for small custom
 * parsers; reports and returns false otherwise. */
bool sl_cfg_want_text(sl_cfg_ctx_t *ctx, yaml_node_t *node, const sl_cfg_field_t *f, sl_view_t *v);
/* Copy a view into a new NUL-terminated heap string (aborts on OOM). */
char *sl_cfg_strdup(sl_view_t v);

#endif
