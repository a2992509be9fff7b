/* IP addresses: every spelling of a literal, and which ranges are special.
 *
 * SSRF defence rests on this file: "is this target private?" must get the same
 * answer however the address is spelt (decimal 2130706433, hex 0x7f.1, octal
 * 0177.0.0.1, short 127.1, IPv4-mapped/compatible IPv6, NAT64, 6to4, Teredo,
 * zone ids). */
#ifndef SLUICE_NET_IPADDR_H
#define SLUICE_NET_IPADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct sl_ip {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16]; /* network order; IPv4 uses the first 4 bytes */
} sl_ip_t;

typedef struct sl_cidr {
    sl_ip_t ip;      /* network address */
    unsigned prefix; /* 0..32 or 0..128 */
} sl_cidr_t;

/* Parse a host (no brackets, possibly with "%zone") as an IP literal in any
 * spelling a resolver or browser would accept. Returns 1 and fills `out` if it
 * is an IP literal, 0 if it is a name, -1 if it looks numeric but is malformed
 * (such hosts must be refused, never resolved). */
int sl_ip_parse_literal(const char *host, size_t n, sl_ip_t *out);

/* Parse "10.0.0.0/8", "fc00::/7" or a bare address (full-length prefix).
 * Returns 0 or -1. Only canonical dotted-quad/RFC 4291 spellings. */
int sl_cidr_parse(const char *s, sl_cidr_t *out);

bool sl_cidr_contains(const sl_cidr_t *c, const sl_ip_t *ip);

/* If `ip` is a special-purpose address, return a short static name of its
 * range ("loopback", "rfc1918", "link-local", "metadata", "cgnat", ...);
 * NULL if it is an ordinary public address. IPv6 forms that embed an IPv4
 * address (mapped, compatible, NAT64, 6to4, Teredo) are judged by the
 * embedded address as well. */
const char *sl_ip_special_range(const sl_ip_t *ip);

/* Convert from/to a sockaddr (port in host order). */
int sl_ip_from_sockaddr(const struct sockaddr *sa, sl_ip_t *out, uint16_t *port);
void sl_ip_to_sockaddr(const sl_ip_t *ip, uint16_t port, struct sockaddr_storage *out,
                       socklen_t *len);

/* Canonical text form into buf (at least 46 bytes). Returns buf. */
char *sl_ip_format(const sl_ip_t *ip, char *buf, size_t cap);

bool sl_ip_equal(const sl_ip_t *a, const sl_ip_t *b);

#endif
