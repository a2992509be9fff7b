/* Host patterns for allow/deny lists and routes.
 *
 * Semantics (documented in docs/configuration.md):
 *   "example.com"        exactly that host
 *   "*.example.com"      any host with one or more labels before example.com
 *                        (api.example.com, a.b.example.com), not example.com
 *   "api.*.example.com"  '*' inside the pattern matches within one label only
 *   "*"                  every host
 *   "10.0.0.0/8", "::1"  an IP or CIDR: matches IP-literal targets and, for
 *                        resolved names, the resolved address
 * Matching is ASCII case-insensitive on normalised hosts (see url.h). */
#ifndef SLUICE_POLICY_HOSTGLOB_H
#define SLUICE_POLICY_HOSTGLOB_H

#include <stdbool.h>
#include <stddef.h>
#include "core/view.h"
#include "net/ipaddr.h"

/* Validate a pattern; returns NULL if usable, else a static reason.
 * Names: [A-Za-z0-9_-] and '*', one optional trailing dot, non-empty labels
 * of at most 63 bytes, 253 in all, no "**", not "*.". A pattern whose last
 * label is numeric must be an IPv4 address or CIDR; IP/CIDR patterns use the
 * canonical spelling of sl_cidr_parse (host bits zero). */
const char *sl_hostglob_check(const char *pattern);

/* Does a (normalised) host name match the pattern? IP/CIDR patterns never
 * match names; they match a host that is an IP literal in any spelling
 * sl_ip_parse_literal accepts ("0xa.1" is inside 10.0.0.0/8). One trailing
 * dot on the host is ignored. "*" matches every non-empty host, IP literals
 * included; no other name pattern matches an IP literal. An invalid pattern
 * matches nothing. */
bool sl_hostglob_match(const char *pattern, sl_view_t host);

/* A compiled list of patterns, for matching many patterns per request. */
typedef struct sl_hostset sl_hostset_t;

/* Compile `n` patterns (copied; the caller keeps its strings). Returns NULL
 * if any pattern fails sl_hostglob_check, or on allocation failure. */
sl_hostset_t *sl_hostset_new(char *const *patterns, size_t n);
void sl_hostset_free(sl_hostset_t *s);
/* Index of the first pattern matching `host` (a name or IP literal text), or
 * -1: the same answer as trying sl_hostglob_match on each pattern in order,
 * plus, if `ip` is non-NULL, testing `ip` against IP/CIDR patterns (an
 * IPv4-mapped `ip` also matches IPv4 blocks). Cost: one pass over the host
 * with a hash lookup per label for exact and "*.suffix" patterns; other
 * globs are tried only when the host ends in the whole labels after their
 * last '*'; IP patterns are scanned in order. */
int sl_hostset_match(const sl_hostset_t *s, sl_view_t host, const sl_ip_t *ip);
/* The pattern text at index i, as given; NULL if out of range. */
const char *sl_hostset_pattern(const sl_hostset_t *s, int i);
/* Number of patterns in the set. */
size_t sl_hostset_count(const sl_hostset_t *s);

#endif
