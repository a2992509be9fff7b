/* The admin API server: its own thread and libuv loop, a small strict
 * HTTP/1.1 server on a loopback address or a unix socket, bearer-token
 * authentication, endpoints in admin/api.h (reference: docs/admin.md).
 * Lifecycle, called from the main thread of src/proxy/server.c. */
#ifndef SLUICE_ADMIN_ADMIN_H
#define SLUICE_ADMIN_ADMIN_H

#include "config/config.h"

/* Prepare the admin API of `cfg` (nothing when cfg->admin.listen is NULL):
 * read the token (environment variable, or a file of mode 0600 or
 * stricter), bind and listen. Returns 0, or -1 after printing on stderr why
 * the gateway must not start (no token, bad file mode, address in use). */
int sl_admin_open(const sl_config_t *cfg);

/* Start serving on the admin thread. Call once the workers run (endpoints
 * reach them). No-op when nothing was opened. */
void sl_admin_start(void);

/* Stop serving: close the listener and connections, join the thread, remove
 * a unix socket file. Idempotent; no-op when nothing was opened. */
void sl_admin_stop(void);

#endif
