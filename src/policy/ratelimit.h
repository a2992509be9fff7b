/* Request rate limits per identity and per identity and destination host:
 * token buckets shared by all workers (one mutex; a lookup is a hash probe).
 * State lives outside policy snapshots so a reload does not reset it. */
#ifndef SLUICE_POLICY_RATELIMIT_H
#define SLUICE_POLICY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* Take one token from the bucket `key` (`limit` requests per `window_ms`).
 * Returns true if the request may go; false if the bucket is empty. A
 * limit of 0 means unlimited. Thread-safe. */
bool sl_ratelimit_take(const char *key, uint64_t limit, uint64_t window_ms, uint64_t now_ms);

/* Forget every bucket (tests). */
void sl_ratelimit_reset(void);

#endif
