/* Pure parsers for the value syntaxes used in the config file.
 *
 * Each takes a view of the scalar text and returns NULL on success or a short
 * static reason ("unknown unit", "port out of range; use 1 to 65535") that the
 * loader prefixes with file:line:col and the key. They never allocate, so they
 * can be unit-tested and fuzzed alone, and other modules (admin API, CLI flags)
 * can accept exactly the same spellings. */
#ifndef SLUICE_CONFIG_VALUES_H
#define SLUICE_CONFIG_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/view.h"

/* Longest host text the parsers below write (a DNS name is at most 253 bytes,
 * an IPv6 CIDR at most 43), plus the NUL. */
#define SL_CFG_HOST_MAX 256

/* Decimal digits only, no sign, no leading '+', no overflow. */
const char *sl_cfg_parse_uint(sl_view_t v, uint64_t *out);

/* Duration in milliseconds: a bare integer is milliseconds ("250"), otherwise
 * one or more number+unit groups with units ms, s, m, h ("250ms", "10s",
 * "1m30s"). No fractions, no spaces, no negative values. */
const char *sl_cfg_parse_duration(sl_view_t v, uint64_t *ms);

/* Size in bytes: a bare integer is bytes ("32768"), otherwise a number and a
 * binary unit B, KiB, MiB, GiB (case-insensitive, optional space: "32 KiB").
 * Decimal units (KB, MB) are refused as ambiguous. */
const char *sl_cfg_parse_size(sl_view_t v, uint64_t *bytes);

/* Listener address "a.b.c.d:port" or "[v6]:port". The host must be a numeric
 * address (names are refused: a listener binds an address, it does not
 * resolve one). Writes the canonical host text (inet_ntop form, no brackets)
 * to `host` (SL_CFG_HOST_MAX bytes) and the port (1..65535). */
const char *sl_cfg_parse_listen(sl_view_t v, char *host, uint16_t *port);

/* Route target "addr:port", "addr", "[v6]:port", "[v6]" or a bare IPv6
 * address. addr is a numeric address or a DNS name (stored lowercased).
 * `*port` is 0 when no port is given (keep the request's port). */
const char *sl_cfg_parse_target(sl_view_t v, char *host, uint16_t *port);

/* Host pattern for allow/deny lists and routes: a DNS name glob
 * ("example.com", "*.example.com", "api-*.example.com", "*"), an IP address
 * ("10.1.2.3", "::1") or a CIDR ("10.0.0.0/8", "fc00::/7"). Writes the
 * lowercased pattern to `out` (SL_CFG_HOST_MAX bytes). This is the config's
 * own structural check; policy/hostglob.c does the matching. */
const char *sl_cfg_check_hostglob(sl_view_t v, char *out);

#endif
