/* Shared helpers for the secrets unit tests (included, not compiled alone). */
#ifndef SLUICE_TEST_SECRETS_HELPERS_H
#define SLUICE_TEST_SECRETS_HELPERS_H

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "secrets/redact.h"
#include "secrets/store.h"

/* Load a config from YAML text; fails the test on error. */
static inline sl_config_t *th_cfg(const char *yaml)
{
    sl_buf_t err = {0};
    sl_config_t *c = sl_config_load_string(yaml, strlen(yaml), "t.yaml", &err);
    if (c == NULL)
        fail_msg("config refused:\n%s", sl_buf_cstr(&err));
    sl_buf_free(&err);
    return c;
}

/* Config + store; the config is freed (the store keeps its own copy). */
static inline sl_secret_store_t *th_store(const char *yaml)
{
    sl_config_t *c = th_cfg(yaml);
    sl_buf_t err = {0};
    sl_secret_store_t *s = sl_secret_store_new(c->secrets, c->n_secrets, &err);
    if (s == NULL)
        fail_msg("store refused:\n%s", sl_buf_cstr(&err));
    sl_buf_free(&err);
    sl_config_free(c);
    return s;
}

/* Does the store redact this exact text (i.e. hold it as a value)? */
static inline bool th_has_value(const sl_secret_store_t *s, const char *v)
{
    return sl_secret_contains_value(s, sl_view(v, strlen(v)));
}

#endif
