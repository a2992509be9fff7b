/* The admin API's request surface as pure functions over buffers: which
 * endpoint a method + target names, what its JSON body says, who the actor
 * is and whether the bearer token is right. No sockets and no global state,
 * so all of it is unit-tested and fuzzed alone (fuzz/fuzz_admin.c). */
#ifndef SLUICE_ADMIN_ROUTE_H
#define SLUICE_ADMIN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/view.h"
#include "proxy/control.h"

/* Longest identity or policy name (config: 1-64 of [a-z0-9_-]). */
#define SL_ADMIN_NAME_MAX 64
/* Longest request id accepted in a path. */
#define SL_ADMIN_ID_MAX 64
/* Longest host pattern accepted in a body. */
#define SL_ADMIN_HOST_MAX 255
/* Longest actor name kept from X-Sluice-Actor. */
#define SL_ADMIN_ACTOR_MAX 64

/* The endpoints. */
typedef enum sl_admin_op {
    SL_ADMIN_HEALTH = 0, /* GET /v1/health */
    SL_ADMIN_POLICY,     /* GET /v1/policy */
    SL_ADMIN_HOST,       /* POST|DELETE /v1/identities/{name}/allow|deny */
    SL_ADMIN_SET_POLICY, /* PUT /v1/identities/{name}/policy */
    SL_ADMIN_KILL,       /* POST /v1/kill */
    SL_ADMIN_APPROVALS,  /* GET /v1/approvals */
    SL_ADMIN_DECIDE,     /* POST /v1/approvals/{request_id} */
} sl_admin_op_t;

/* A routed request: the endpoint and what its path carried. */
typedef struct sl_admin_route {
    sl_admin_op_t op;
    sl_control_list_t list;               /* SL_ADMIN_HOST: allow or deny */
    bool add;                             /* SL_ADMIN_HOST: POST adds, DELETE removes */
    char identity[SL_ADMIN_NAME_MAX + 1]; /* HOST, SET_POLICY: the {name} */
    char request_id[SL_ADMIN_ID_MAX + 1]; /* DECIDE: the {request_id} */
} sl_admin_route_t;

/* Route `method` + `target` (origin-form). Returns 0, or the HTTP status of
 * the refusal: 400 (query string, malformed name), 404 (no such endpoint),
 * 405 (endpoint exists, method does not; *allow then names the methods for
 * the Allow header). *why gets a static human reason on refusal. */
int sl_admin_route(sl_view_t method, sl_view_t target, sl_admin_route_t *r, const char **allow,
                   const char **why);

/* Does the endpoint take a JSON body? */
bool sl_admin_op_has_body(sl_admin_op_t op);

/* The arguments of a request body. */
typedef struct sl_admin_args {
    char host[SL_ADMIN_HOST_MAX + 1];     /* HOST: {"host": "..."} */
    char policy[SL_ADMIN_NAME_MAX + 1];   /* SET_POLICY: {"policy": "..."} */
    bool policy_null;                     /* SET_POLICY: {"policy": null} = back to configured */
    char identity[SL_ADMIN_NAME_MAX + 1]; /* KILL: {"identity": "..."} */
    bool identity_null;                   /* KILL: {"identity": null} = global */
    bool on;                              /* KILL: {"on": true|false} */
    bool approve;                         /* DECIDE: {"approve": true|false} */
} sl_admin_args_t;

/* Parse the JSON body of `op` strictly: one object, duplicate keys refused,
 * exactly the keys the endpoint takes, each of the right type. Returns 0, or
 * -1 with a reason a caller can act on appended to `err`. */
int sl_admin_parse_body(sl_admin_op_t op, const char *body, size_t n, sl_admin_args_t *a,
                        sl_buf_t *err);

/* The actor recorded in audit events: "admin-api", or the X-Sluice-Actor
 * header value (empty view: none) with every byte outside [A-Za-z0-9._@:-]
 * replaced by '_', cut to SL_ADMIN_ACTOR_MAX bytes. `out` holds
 * SL_ADMIN_ACTOR_MAX + 1 bytes. */
void sl_admin_actor(sl_view_t header, char *out);

/* SHA-256 of a token, the only form in which the server keeps it. */
void sl_admin_token_digest(const char *token, size_t n, unsigned char digest[32]);

/* Is `authorization` ("Bearer <token>", scheme case-insensitive) the token
 * whose digest is `digest`? Constant time in the token's content. */
bool sl_admin_token_ok(sl_view_t authorization, const unsigned char digest[32]);

#endif
