/* The encodings credentials travel in: base64 (Basic auth, echoes) and
 * percent-encoding (paths and queries). Pure functions writing into caller
 * buffers, so the store can keep encoded values in its locked memory. */
#ifndef SLUICE_SECRETS_CODEC_H
#define SLUICE_SECRETS_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/view.h"

/* Bytes sl_secret_b64_encode writes for n input bytes (padded). */
#define SL_SECRET_B64_LEN(n) (((n) + 2) / 3 * 4)
/* Most bytes sl_secret_pct_encode writes for n input bytes. */
#define SL_SECRET_PCT_LEN(n) (3 * (n))

/* Standard base64 with '=' padding. Returns the length written. */
size_t sl_secret_b64_encode(const void *p, size_t n, char *out);

/* Strict standard base64 (padding required, no whitespace). Writes at most
 * v.n / 4 * 3 bytes to out; false if v is not base64 (out unspecified). */
bool sl_secret_b64_decode(sl_view_t v, char *out, size_t *out_n);

/* The base64 characters that depend only on p[0..n) when p starts `align`
 * (0, 1 or 2) bytes into a 3-byte group: the text any base64 encoding of a
 * message containing p at such an offset contains. Writes at most
 * SL_SECRET_B64_LEN(n) + 4 bytes; returns the length. */
size_t sl_secret_b64_inner(const void *p, size_t n, unsigned align, char *out);

/* Percent-encode everything but A-Z a-z 0-9 - . _ ~ (upper-case hex).
 * Returns the length written (at most SL_SECRET_PCT_LEN(n)). */
size_t sl_secret_pct_encode(const void *p, size_t n, char *out);

/* Decode %XX escapes (one level; a '%' without two hex digits stays as is).
 * Writes at most v.n bytes; returns false (out untouched) if v has no '%'. */
bool sl_secret_pct_decode(sl_view_t v, char *out, size_t *out_n);

#endif
