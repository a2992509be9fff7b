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

/* Validate a pattern; returns NULL if usable, else a static reason. */
const char *sl_hostglob_check(const char *pattern);

/* Does a (normalised) host name match the pattern? IP/CIDR patterns never
 * match names. */
bool sl_hostglob_match(const char *pattern, sl_view_t host);

/* A compiled list of patterns, for matching many patterns per request. */
typedef struct sl_hostset sl_hostset_t;

sl_hostset_t *sl_hostset_new(char *const *patterns, size_t n);
void sl_hostset_free(sl_hostset_t *s);
/* Index of the first pattern matching `host` (a name or IP literal text), or
 * -1. If `ip` is non-NULL it is also tested against IP/CIDR patterns. */
int sl_hostset_match(const sl_hostset_t *s, sl_view_t host, const sl_ip_t *ip);
/* The pattern text at index i, as given; NULL if out of range. */
const char *sl_hostset_pattern(const sl_hostset_t *s, int i);
/* Number of patterns in the set. */
size_t sl_hostset_count(const sl_hostset_t *s);

#endif
