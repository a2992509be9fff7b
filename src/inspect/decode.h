/* Decoders: pure functions turning encoded text back into bytes. The engine
 * runs them on whole texts (percent, HTML entities, escapes) or on candidate
 * runs found by sl_analyze (base64, base32, hex). Whole-text decoders never
 * grow their input, so an output buffer of n bytes always suffices, and they
 * can fill a map: map[j] = offset in the input of the unit that produced
 * output byte j, map[out_len] = n. */
#ifndef SLUICE_INSPECT_DECODE_H
#define SLUICE_INSPECT_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Base64, standard or URL-safe alphabet (both accepted), padding optional.
 * Returns bytes written, or SIZE_MAX on a character outside the alphabet, a
 * dangling single char, or when the output would exceed `cap`. */
size_t sl_decode_base64(const char *p, size_t n, unsigned char *out, size_t cap);
/* Base32 (RFC 4648 alphabet, either case, padding optional). Same return. */
size_t sl_decode_base32(const char *p, size_t n, unsigned char *out, size_t cap);
/* Hex pairs, either plain ("4142") or delimited by one repeated delimiter
 * (' ', ':', '-', ','), e.g. "41:42:43". Same return. */
size_t sl_decode_hex(const char *p, size_t n, unsigned char *out, size_t cap);

/* %XX sequences decoded once (invalid ones copied). Returns the output length. */
size_t sl_decode_percent(const char *p, size_t n, char *out, uint32_t *map);
/* HTML character references: &#NNN; &#xHH; and common named ones. */
size_t sl_decode_html(const char *p, size_t n, char *out, uint32_t *map);
/* Backslash escapes: \uXXXX (with surrogate pairs), \u{X..}, \xHH, \n \r \t
 * \" \' \\ \/ ; unknown escapes are copied. */
size_t sl_decode_escapes(const char *p, size_t n, char *out, uint32_t *map);

/* True when decoded bytes look like text: at least ~90% printable ASCII,
 * whitespace, or well-formed UTF-8. */
bool sl_mostly_printable(const unsigned char *p, size_t n);
/* Bytes that are neither printable ASCII, whitespace nor well-formed UTF-8. */
size_t sl_count_unprintable(const unsigned char *p, size_t n);

#endif
