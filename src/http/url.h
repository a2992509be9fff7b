/* Request-target parsing (RFC 9112 section 3.2) and host normalisation.
 *
 * Pure functions over the caller's buffer: the parse results are views into
 * the input. Strict on purpose: anything ambiguous is an error, because an
 * ambiguous target is how a request is made to mean one thing to the policy
 * and another to the upstream. */
#ifndef SLUICE_HTTP_URL_H
#define SLUICE_HTTP_URL_H

#include <stdbool.h>
#include <stdint.h>
#include "core/view.h"

/* Longest host any parser here accepts, IPv6 zone ids included: a buffer of
 * SL_HOST_MAX + 1 bytes always holds a normalised host. */
#define SL_HOST_MAX 253

typedef struct sl_url {
    sl_view_t scheme;   /* "http" or "https" as written (compare case-insensitively) */
    sl_view_t userinfo; /* before '@', empty if none */
    sl_view_t host;     /* reg-name or IPv4 as written (may end in one '.'); IPv6 without
                           brackets; zone id kept ("fe80::1%25eth0") */
    bool host_is_ipv6;  /* host was a bracketed IP-literal */
    uint16_t port;      /* explicit port, or the scheme default (80/443) */
    bool has_port;      /* port was written in the target */
    sl_view_t path;     /* from the first '/' up to '?' or '#'; empty if absent */
    sl_view_t query;    /* after '?' up to '#', without the '?'; empty if none */
    bool has_query;     /* a '?' was present */
    sl_view_t fragment; /* after '#'; clients must not send it, but some do */
} sl_url_t;

/* Error codes (negative) returned by the parsers. */
enum {
    SL_URL_OK = 0,
    SL_URL_EMPTY = -1,        /* nothing to parse */
    SL_URL_BAD_SCHEME = -2,   /* not http:// or https:// */
    SL_URL_BAD_HOST = -3,     /* missing host, invalid characters, bad IP-literal */
    SL_URL_BAD_PORT = -4,     /* not 1..65535 decimal digits */
    SL_URL_BAD_CHAR = -5,     /* control, space, non-ASCII or otherwise invalid byte */
    SL_URL_TOO_LONG = -6,     /* host over 253 bytes or a label over 63 */
    SL_URL_BAD_USERINFO = -7, /* empty, invalid or ambiguous ("a@b@c") userinfo */
};

/* Parse an absolute-form target: "http://host[:port]/path?query".
 * Refused: any byte <= 0x20, >= 0x7f or '\\' anywhere (BAD_CHAR); a '%'
 * not followed by two hex digits in path, query or fragment (BAD_CHAR);
 * schemes other than http/https (any case) followed by "://" (BAD_SCHEME);
 * userinfo that is empty, holds a second '@', or bytes outside RFC 3986
 * userinfo (BAD_USERINFO); a reg-name with bytes outside [A-Za-z0-9._-]
 * (percent-encoding included), an empty label, or a numeric-looking host that
 * sl_ip_parse_literal refuses, e.g. "1.2.3.999" (BAD_HOST); a bracketed host
 * that is not IPv6 with an optional "%25" + unreserved zone id (BAD_HOST);
 * ports with a sign, a leading zero, non-digits, empty, 0 or > 65535
 * (BAD_PORT). One trailing dot on the host is kept in the view. Odd IPv4
 * spellings ("0x7f.1") are valid hosts: pass the host to
 * sl_ip_parse_literal to learn the address. On error *out is unspecified. */
int sl_url_parse_absolute(const char *p, size_t n, sl_url_t *out);

/* Parse an authority-form target (CONNECT): "host:port" or "[v6]:port".
 * The port is required. Only host, host_is_ipv6, port, has_port are set (the
 * rest is zeroed). Host and port rules as above; any '@' is BAD_USERINFO and
 * any '/', '?' or '#' is BAD_HOST. */
int sl_url_parse_authority(const char *p, size_t n, sl_url_t *out);

/* Canonical host for policy decisions: ASCII-lowercased, one trailing dot
 * removed, brackets never included. Writes a NUL-terminated string to `out`.
 * Returns its length, or -1 if it does not fit or is not a valid host.
 * Names: [a-z0-9_-] labels of 1..63 bytes, at most 253 bytes in all; a
 * numeric-looking name must be a valid IPv4 literal and is kept as written
 * (lowercased), not rewritten to dotted-quad. IPv6 (with or without
 * brackets, zone "%eth0" or "%25eth0") is kept as written, lowercased. */
int sl_host_normalize(sl_view_t host, char *out, size_t outcap);

/* A short static description of an error code, for refusal bodies. */
const char *sl_url_strerror(int code);

#endif
