/* Strings of a parsed JSON value, each named by its path: what the scanners
 * look at inside structured messages (sluice scan envelopes, MCP tool calls,
 * A2A message parts, Agent Cards). Pure functions over jansson values. */
#ifndef SLUICE_INSPECT_JSONWALK_H
#define SLUICE_INSPECT_JSONWALK_H

#include <jansson.h>
#include <stddef.h>

#include "core/view.h"

/* A growable list of text views with a name each. The views point into the
 * JSON value (or whatever buffer the caller added): valid while it lives. */
typedef struct sl_strlist {
    sl_view_t *v; /* the texts */
    char **name;  /* parallel to v: malloc'd path such as "arguments.cmd[0]" */
    size_t n, cap;
} sl_strlist_t;

/* Append a text with its name (copied). Aborts on out of memory. */
void sl_strlist_add(sl_strlist_t *l, const char *p, size_t n, const char *name);
/* Free the list's storage (it stays usable, empty). */
void sl_strlist_free(sl_strlist_t *l);

/* Append every string value inside `j` to `values`, named `path` + ".key" /
 * "[i]", and every object key to `keys` (parameter names can carry
 * instructions too); `keys` may be `values`, or NULL to skip keys. Names
 * longer than 511 bytes are truncated; nothing is lost but the name. */
void sl_json_collect_strings(const json_t *j, const char *path, sl_strlist_t *keys,
                             sl_strlist_t *values);

#endif
