/* Echo redaction: if an upstream sends a secret's real value back (debug
 * endpoints, error pages, httpbin-style echoes), it is replaced by the
 * secret's placeholder before the agent sees it, in headers and bodies.
 *
 * The body redactor is streaming: matches that straddle chunk boundaries are
 * found (at most longest-value - 1 bytes are held back between feeds), and
 * the output length differs from the input's whenever something was
 * replaced, so the proxy must forward the response body chunked (or
 * close-delimited), not with the upstream's Content-Length, once a body is
 * redacted; see docs/credentials.md. */
#ifndef SLUICE_SECRETS_REDACT_H
#define SLUICE_SECRETS_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/view.h"
#include "secrets/match.h"
#include "secrets/store.h"

typedef struct sl_redactor {
    sl_smatch_stream_t st;    /* engine */
    sl_secret_store_t *store; /* referenced while the redactor lives */
} sl_redactor_t;

/* Start redacting a body against store `s` (takes a reference; s may be
 * NULL or empty: bytes then pass through unchanged). */
void sl_redactor_init(sl_redactor_t *r, sl_secret_store_t *s);
/* Feed decoded body bytes; redacted output that is decided is appended to
 * `out`. */
void sl_redactor_feed(sl_redactor_t *r, const void *p, size_t n, sl_buf_t *out);
/* End of body: flush what was held back. */
void sl_redactor_finish(sl_redactor_t *r, sl_buf_t *out);
/* Values replaced so far. */
size_t sl_redactor_count(const sl_redactor_t *r);
/* Names of the secrets whose value was redacted (for the audit event);
 * writes up to `cap`, returns how many there are. */
size_t sl_redactor_names(const sl_redactor_t *r, const char **names, size_t cap);
/* Wipe held-back bytes and drop the store reference. */
void sl_redactor_free(sl_redactor_t *r);

/* Redact one header value (or any complete buffer): appends the redacted
 * text to `out` and returns the number of values replaced (0: `out` got an
 * unchanged copy). `s` may be NULL. */
size_t sl_secret_redact(const sl_secret_store_t *s, sl_view_t v, sl_buf_t *out);

/* Would the redactor change anything in `v`? (A scan, no copy.) */
bool sl_secret_contains_value(const sl_secret_store_t *s, sl_view_t v);

#endif
