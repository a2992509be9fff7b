/* Inspection suppressions (`inspect.suppress`): per-rule, per-host
 * exceptions with a reason, so an operator fixes a false positive without
 * turning a scanner off. A suppressed finding neither refuses nor warns; the
 * audit event still names it and the entry that suppressed it. */
#ifndef SLUICE_POLICY_SUPPRESS_H
#define SLUICE_POLICY_SUPPRESS_H

#include "config/config.h"

struct sl_ruleset;

/* Index into cfg->inspect.suppress of the first entry for `rule` whose host
 * list matches `host` (a normalised host; an entry without hosts matches
 * every host), or -1. */
int sl_suppress_match(const sl_config_t *cfg, const char *rule, const char *host);

/* Every entry must name a rule the loaded detection rules know (a typo
 * would silently suppress nothing). Returns 0, or -1 after appending one
 * line per unknown id to `err`. */
int sl_suppress_check(const sl_config_t *cfg, const struct sl_ruleset *rules, sl_buf_t *err);

#endif
