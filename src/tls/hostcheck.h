/* Which host names may be put into an interception certificate.
 *
 * The host comes from the sandbox (CONNECT authority or TLS SNI), so it is
 * attacker-controlled. It is checked here before it goes near a certificate:
 * a name must be lowercase LDH labels, an IP must be in its one canonical
 * spelling, so one destination has exactly one certificate and one cache
 * entry. */
#ifndef SLUICE_TLS_HOSTCHECK_H
#define SLUICE_TLS_HOSTCHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Longest host name accepted (RFC 1035 without the trailing dot). */
#define SL_TLS_HOST_MAX 253

/* Why `p[0..n)` may not go into a certificate, or NULL if it may.
 * Accepted: (a) a DNS name of labels [a-z0-9-]{1,63}, no label starting or
 * ending with '-', at most 253 bytes, no trailing dot, whose last label is
 * not numeric (all digits or "0x"+hex: such names are IPv4 spellings);
 * (b) an IPv4 address as canonical dotted-quad ("10.0.0.1", not "010.0.0.1"
 * or "10.1"); (c) an IPv6 address as inet_ntop writes it ("::1", lowercase,
 * no zone, no brackets). Everything else is refused: empty, uppercase,
 * '_', '*', spaces, NUL or any byte outside printable ASCII, empty labels.
 * The reason is a static string fit for a log line or a refusal body. */
const char *sl_tls_host_problem(const char *p, size_t n);

/* 1 if the C string `host` may go into a certificate, else 0. */
int sl_tls_host_valid(const char *host);

/* Canonicalise a host as a client would send it, then check it: ASCII
 * letters lowercased, one trailing dot dropped, an IPv6 literal rewritten
 * to inet_ntop form (no brackets or zone allowed). Writes the result,
 * NUL-terminated, to `out` (`cap` >= SL_TLS_HOST_MAX + 1 always fits).
 * Returns its length, or -1 with `*reason` set (static string) when the
 * result is refused by sl_tls_host_problem or does not fit. `*is_ip` (may
 * be NULL) tells whether the result is an IP literal. */
int sl_tls_host_canon(const char *p, size_t n, char *out, size_t cap, bool *is_ip,
                      const char **reason);

#endif
