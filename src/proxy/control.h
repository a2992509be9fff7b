/* Runtime control of a running gateway: what the admin API and the CLI
 * change without a restart. Every function is safe to call from any thread;
 * changes build a new policy snapshot (config + all runtime changes) and
 * swap it in atomically, so they apply to new requests at once while
 * requests in flight finish under the snapshot they started with. Every
 * change is written to the audit trail. Runtime changes survive config
 * reloads (they are re-applied on top of the new config) but not restarts. */
#ifndef SLUICE_PROXY_CONTROL_H
#define SLUICE_PROXY_CONTROL_H

#include <stdbool.h>
#include "core/buf.h"

/* Which list a host change is about. */
typedef enum sl_control_list {
    SL_CONTROL_ALLOW = 0,
    SL_CONTROL_DENY,
} sl_control_list_t;

/* Add or remove a host pattern (same syntax as policy lists) on one
 * identity's allow or deny list ("default" = clients matching no identity).
 * `actor` names who asked (for the audit event). Returns 0, or -1 with a
 * reason in err (unknown identity, bad pattern, not present). */
int sl_control_host(const char *actor, const char *identity, sl_control_list_t list, bool add,
                    const char *pattern, sl_buf_t *err);

/* Make `identity` use the named policy (NULL: back to its configured one). */
int sl_control_set_policy(const char *actor, const char *identity, const char *policy,
                          sl_buf_t *err);

/* Kill switch: refuse all egress, for one identity or (identity NULL) for
 * everyone. */
int sl_control_kill(const char *actor, const char *identity, bool on, sl_buf_t *err);

/* The current state as JSON: generation, global kill switch, and per
 * identity its tenant/agent/labels, policy name, effective allow/deny lists,
 * rules, kill state. */
void sl_control_describe(sl_buf_t *json);

/* Requests held for approval, as a JSON array of {id, identity, method,
 * host, path, held_ms, timeout_ms}. */
void sl_control_approvals(sl_buf_t *json);

/* Approve or deny a held request by its request id. Returns 0, or -1 with a
 * reason (unknown id, already decided or timed out). */
int sl_control_decide(const char *actor, const char *request_id, bool approve, sl_buf_t *err);

/* Health: {"status":"ok", "version", "workers", "connections", "generation"}. */
void sl_control_health(sl_buf_t *json);

#endif
