/* Split-secret history: a secret leaked a few bytes per request.
 *
 * An agent that sends an API key 8 characters at a time, one piece per
 * request, never puts a whole secret in any one message, so the per-message
 * scan cannot see it. The history keeps, per identity, the recent outbound
 * fragments of each "channel" (a query parameter name, a header name, a
 * path segment position on a host, a body field) and scans the channel's
 * recent fragments concatenated without separators together with the
 * current request's fragment. A finding is kept only when it crosses the boundary between the
 * history and the current fragment: the request that completes the secret is
 * refused; the earlier pieces already left (they were harmless alone).
 *
 * Joining only within one channel is what keeps unrelated values apart: the
 * realistic exfiltration repeats the same parameter, header or path position
 * with a new piece each time. Consecutive identical values in a channel are
 * stored once and not joined (a session cookie or an endpoint polled again
 * is not a piece of anything; a secret whose consecutive pieces are equal,
 * like a test card 4111 1111 1111 1111, is missed), and numeric counters (page numbers, offsets,
 * timestamps) are not joined to each other.
 *
 * Bounded: a time window, a number of fragments and bytes per identity, a
 * number of identities (least recently used evicted). Thread-safe: the store
 * is sharded by identity, one mutex per shard, held while that identity's
 * request is checked so that parallel requests of one identity (served by
 * different workers) are checked one after the other and see each other. */
#ifndef SLUICE_INSPECT_HISTORY_H
#define SLUICE_INSPECT_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "core/view.h"
#include "inspect/inspect.h"

/* Bounds of the store. Zero fields take the defaults in brackets. */
typedef struct sl_history_limits {
    uint64_t window_ms;    /* fragments older than this are forgotten [60000] */
    size_t max_bytes;      /* fragment bytes kept per identity [4096] */
    size_t max_entries;    /* fragments kept per identity [64] */
    size_t max_identities; /* identities tracked, split evenly over 16 shards; the least
                              recently used of a full shard is evicted [4096] */
    size_t max_fragment;   /* bytes kept of one fragment (its tail; its head is scanned) [256] */
} sl_history_limits_t;

/* One outbound value of the current request and the channel it travelled in.
 * Several fragments with the same channel are joined in order (a repeated
 * query parameter). */
typedef struct sl_history_frag {
    sl_view_t channel;    /* e.g. "q:token", "h:x-trace", "p:host/2" (opaque, compared bytewise) */
    sl_view_t value;      /* the bytes as sent */
    sl_surface_t surface; /* categories the join is scanned for (SL_SURF_URL, _HEADER, _BODY) */
} sl_history_frag_t;

/* A finding of sl_history_check and where it was seen. */
typedef struct sl_history_hit {
    size_t frag;     /* index into the caller's fragments of the channel that completed it */
    unsigned pieces; /* number of requests the matched bytes came from (>= 2) */
} sl_history_hit_t;

typedef struct sl_history sl_history_t;

/* A new, empty store, or NULL on out of memory. Limits are read per call. */
sl_history_t *sl_history_new(void);
/* Free a store and every fragment it holds. NULL is a no-op. */
void sl_history_free(sl_history_t *h);

/* Check the current request of `identity` against its history, then record
 * its fragments. For each channel among `frags` whose history is not empty,
 * the recent fragments of that channel (oldest first) are joined with the
 * current value and scanned with `rs`; findings that cross into the current
 * value are appended to `out` (layer JOINED, offsets into that join). When a
 * blocking finding (action BLOCK, or an inspection limit) is appended, the
 * request's fragments are not recorded (they do not leave). `hit`, when not
 * NULL, describes the first finding appended. Returns the number of findings
 * appended, or -1 on out of memory (an "inspection-limit" finding is appended
 * so the caller fails closed). Thread-safe. */
int sl_history_check(sl_history_t *h, const sl_history_limits_t *lim, sl_view_t identity,
                     const sl_history_frag_t *frags, size_t n, uint64_t now_ms,
                     const sl_ruleset_t *rs, sl_findings_t *out, sl_history_hit_t *hit);

/* Called by sl_history_body_fields for each field of a body. */
typedef void (*sl_history_field_cb)(void *arg, sl_view_t name, sl_view_t value);

/* Split a small request body into the fields that travel in it, as views
 * into `p`: a JSON text (starts with '{' or '[') gives each string member
 * value with its member name (any depth; array elements take the name of
 * the array's member; escapes are left as written, the scan decodes them);
 * a form (`name=value&...`, no whitespace) gives each value with its name;
 * anything else is one field with an empty name, the whole body. Pure.
 * Returns the number of fields reported. */
size_t sl_history_body_fields(const char *p, size_t n, sl_history_field_cb cb, void *arg);

/* The `name=value` fields of a query string or form body, split at '&'
 * (segments without '=' are skipped; nothing is decoded). Pure. Returns the
 * number of fields reported. */
size_t sl_history_form_fields(const char *p, size_t n, sl_history_field_cb cb, void *arg);

/* Number of identities and fragment bytes held (tests, metrics). */
void sl_history_stats(sl_history_t *h, size_t *identities, size_t *bytes);

#endif
