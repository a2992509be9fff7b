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
 * (such hosts must be refused, never resolved).
 * IPv4 follows the WHATWG URL host parser: a host whose last label (after one
 * optional trailing dot) is decimal digits or "0x"+hex is numeric and must
 * be 1..4 parts of decimal, 0-octal or 0x-hex ("2130706433", "0x7f.1",
 * "0177.0.0.1", "127.1"); anything else numeric ("0x", "08.1.1.1",
 * "1.2.3.4.5", "256.1.1.1") is -1. Any ':' means IPv6 (inet_pton text, then
 * an optional "%zone" of unreserved characters, which is dropped); a bad
 * IPv6 is -1. An empty host, or one with a control/space byte, is -1. */
int sl_ip_parse_literal(const char *host, size_t n, sl_ip_t *out);

/* Parse "10.0.0.0/8", "fc00::/7" or a bare address (full-length prefix).
 * Returns 0 or -1. Only canonical dotted-quad/RFC 4291 spellings; the
 * prefix is decimal without leading zeros; host bits must be zero
 * ("10.0.0.1/8" is refused as ambiguous). */
int sl_cidr_parse(const char *s, sl_cidr_t *out);

/* Is `ip` inside `c`? An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the
 * same destination as a.b.c.d, so it is tested against IPv4 blocks too. */
bool sl_cidr_contains(const sl_cidr_t *c, const sl_ip_t *ip);

/* If `ip` is IPv4-mapped (::ffff:a.b.c.d), write a.b.c.d to `v4` and return
 * true; otherwise return false and leave `v4` alone. */
bool sl_ip_unmap(const sl_ip_t *ip, sl_ip_t *v4);

/* If `ip` is an IPv6 form with exactly one well-defined embedded IPv4
 * address (mapped, SIIT-translated, compatible, 64:ff9b::/96 NAT64,
 * 64:ff9b:1::/96, 6to4, Teredo client), write it to `v4` and return true. */
bool sl_ip_embedded_v4(const sl_ip_t *ip, sl_ip_t *v4);

/* If `ip` is a special-purpose address, return a short static name of its
 * range; NULL if it is an ordinary public address. Names: IPv4
 * "this-network" 0/8, "loopback" 127/8, "rfc1918", "link-local" 169.254/16,
 * "metadata" (169.254.169.254, 100.100.100.200), "cgnat" 100.64/10,
 * "ietf-protocol" 192.0.0/24, "documentation" (192.0.2/24, 198.51.100/24,
 * 203.0.113/24), "benchmark" 198.18/15, "multicast" 224/4, "reserved" 240/4,
 * "broadcast" 255.255.255.255; IPv6 "unspecified" ::, "loopback" ::1,
 * "metadata" fd00:ec2::254, "ula" fc00::/7, "link-local" fe80::/10,
 * "site-local" fec0::/10, "multicast" ff00::/8, "documentation"
 * 2001:db8::/32, "discard" 100::/64. IPv6 forms that embed an IPv4 address
 * (mapped, SIIT, compatible, NAT64 incl. 64:ff9b:1::/48 local-use, 6to4,
 * Teredo client) get the embedded address's name; for 64:ff9b:1::/48 not in
 * /96 layout, every RFC 6052 layout is judged and any special one counts.
 * A family other than AF_INET/AF_INET6 is "unknown-family" (never public). */
const char *sl_ip_special_range(const sl_ip_t *ip);

/* Convert from/to a sockaddr (port in host order). */
int sl_ip_from_sockaddr(const struct sockaddr *sa, sl_ip_t *out, uint16_t *port);
void sl_ip_to_sockaddr(const sl_ip_t *ip, uint16_t port, struct sockaddr_storage *out,
                       socklen_t *len);

/* Canonical text form into buf (at least 46 bytes; a smaller buffer yields
 * ""). Returns buf. */
char *sl_ip_format(const sl_ip_t *ip, char *buf, size_t cap);

bool sl_ip_equal(const sl_ip_t *a, const sl_ip_t *b);

#endif
