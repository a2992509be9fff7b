/* The admin API's endpoints: a routed, authenticated request with a parsed
 * body becomes calls to proxy/control.h and a JSON answer. */
#ifndef SLUICE_ADMIN_API_H
#define SLUICE_ADMIN_API_H

#include "admin/route.h"
#include "core/buf.h"

/* Run one endpoint for `actor`. Writes the JSON response body to `out` and
 * returns its HTTP status: 200, or 400 (the change was refused), 404
 * (unknown identity or request id, or a host that is not on the list), with
 * {"error", "detail"} in the body. Any thread. */
int sl_admin_api_call(const sl_admin_route_t *r, const sl_admin_args_t *a, const char *actor,
                      sl_buf_t *out);

/* Append {"error": code, "detail": detail} to `out`. */
void sl_admin_api_error(sl_buf_t *out, const char *code, const char *detail);

#endif
