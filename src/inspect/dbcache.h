/* On-disk cache of compiled pattern databases.
 *
 * Compiling every rule with Vectorscan takes seconds of CPU (large bounded
 * gaps), far too long for every start. The compiled
 * databases are serialised to a per-user cache directory under a key that
 * covers everything that shapes them (each rule's pattern, flags, group
 * membership, the Vectorscan version); a start with the same rules
 * deserialises them in milliseconds. A missing, stale or unreadable entry
 * just means compiling again; a corrupt one is rejected by Vectorscan's own
 * checks.
 *
 * Directory: $SLUICE_CACHE_DIR, else $XDG_CACHE_HOME/sluice, else
 * $HOME/.cache/sluice (home from the password database when HOME is unset),
 * else /tmp/sluice-cache-<uid>; created 0700 and only
 * used if owned by the current user. */
#ifndef SLUICE_INSPECT_DBCACHE_H
#define SLUICE_INSPECT_DBCACHE_H

#include "inspect/rules.h"

/* Fill rs->db from the cache. 0 on a hit, -1 on a
 * miss (rs unchanged). */
int sl_dbcache_load(sl_ruleset_t *rs);

/* Save rs's compiled databases (best effort, atomic). */
void sl_dbcache_store(const sl_ruleset_t *rs);

#endif
