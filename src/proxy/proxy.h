/* The gateway: listeners, worker loops, the request pipeline, reloads and
 * graceful shutdown. */
#ifndef SLUICE_PROXY_PROXY_H
#define SLUICE_PROXY_PROXY_H

#include "config/config.h"

/* Run the gateway until SIGTERM/SIGINT has drained it. `config_path` NULL
 * means the built-in default policy (no reloads from disk). Takes ownership
 * of `cfg`. Returns the process exit status. */
int sl_proxy_run(const char *config_path, sl_config_t *cfg);

#endif
