/* IP literals in every spelling, special-purpose ranges, CIDR, sockaddrs. */
#include "net/ipaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* ---- IPv4: the WHATWG URL host parser, which is inet_aton minus its quirks */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Does this label read as a number ("ends in a number" rule)? Decimal digits,
 * or "0x" followed by hex digits. "0x" alone counts too: it is numeric
 * enough that resolving it as a name would be a mistake. */
static bool label_is_numeric(const char *p, size_t n)
{
    if (n == 0)
        return false;
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        for (size_t i = 2; i < n; i++)
            if (hexval(p[i]) < 0)
                return false;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return false;
    return true;
}

/* One inet_aton part: 0x-hex, 0-octal or decimal. Values beyond 32 bits are
 * refused rather than wrapped, so no spelling aliases another address. */
static int parse_v4_part(const char *p, size_t n, uint64_t *out)
{
    unsigned base = 10;
    uint64_t v = 0;
    if (n == 0)
        return -1;
    if (n >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
        n -= 2;
        if (n == 0)
            return -1;
    } else if (n >= 2 && p[0] == '0') {
        base = 8;
        p++;
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        int d = hexval(p[i]);
        if (d < 0 || (unsigned)d >= base)
            return -1;
        v = v * base + (unsigned)d;
        if (v > 0xffffffffu)
            return -1;
    }
    *out = v;
    return 0;
}

/* Returns 1 (IPv4 literal), 0 (a name) or -1 (numeric but malformed). */
static int parse_v4(const char *p, size_t n, uint8_t addr[4])
{
    const char *part[5];
    size_t plen[5];
    size_t nparts = 0;
    size_t start = 0;

    /* A single trailing dot is the root label, as for names. */
    if (n > 1 && p[n - 1] == '.')
        n--;
    /* Find the last label first: only a host ending in a number is an
     * IPv4 candidate; everything else is a name for DNS. */
    size_t last = n;
    while (last > 0 && p[last - 1] != '.')
        last--;
    if (!label_is_numeric(p + last, n - last)) {
        /* "1.2.3.4.." is still numeric-looking, just malformed. */
        size_t end = n;
        while (end > 0 && p[end - 1] == '.')
            end--;
        size_t l = end;
        while (l > 0 && p[l - 1] != '.')
            l--;
        return (end < n && label_is_numeric(p + l, end - l)) ? -1 : 0;
    }

    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '.') {
            if (nparts == 4)
                return -1;
            part[nparts] = p + start;
            plen[nparts] = i - start;
            nparts++;
            start = i + 1;
        }
    }
    uint64_t v[4];
    for (size_t i = 0; i < nparts; i++)
        if (parse_v4_part(part[i], plen[i], &v[i]) < 0)
            return -1;
    uint64_t acc = 0;
    for (size_t i = 0; i + 1 < nparts; i++) {
        if (v[i] > 255)
            return -1;
        acc |= v[i] << (8 * (3 - i));
    }
    /* The last part fills every remaining byte ("127.1" = 127.0.0.1). */
    unsigned rest = (unsigned)(4 - (nparts - 1));
    if (rest < 4 && v[nparts - 1] >> (8 * rest))
        return -1;
    acc |= v[nparts - 1];
    addr[0] = (uint8_t)(acc >> 24);
    addr[1] = (uint8_t)(acc >> 16);
    addr[2] = (uint8_t)(acc >> 8);
    addr[3] = (uint8_t)acc;
    return 1;
}

/* RFC 6874 zone ids are unreserved characters (the URL form "%25eth0" leaves
 * "25eth0" here, which is fine: the zone is dropped). */
static bool zone_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' ||
              c == '.' || c == '_' || c == '~'))
            return false;
    }
    return true;
}

int sl_ip_parse_literal(const char *host, size_t n, sl_ip_t *out)
{
    if (host == NULL || n == 0)
        return -1;
    /* glibc's inet_aton stops at whitespace and accepts "1.2.3.4 anything";
     * a host that could reach a resolver in that shape is refused. */
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)host[i] <= 0x20)
            return -1;
    if (memchr(host, ':', n) == NULL) {
        uint8_t a[4];
        int r = parse_v4(host, n, a);
        if (r == 1) {
            memset(out, 0, sizeof(*out));
            out->family = AF_INET;
            memcpy(out->addr, a, 4);
        }
        return r;
    }
    /* A ':' never occurs in a name, so from here on it is IPv6 or refused. */
    const char *pct = memchr(host, '%', n);
    size_t alen = pct ? (size_t)(pct - host) : n;
    if (pct && !zone_ok(pct + 1, n - alen - 1))
        return -1;
    char tmp[INET6_ADDRSTRLEN + 1];
    if (alen >= sizeof(tmp) || memchr(host, '\0', alen) != NULL)
        return -1;
    memcpy(tmp, host, alen);
    tmp[alen] = '\0';
    struct in6_addr a6;
    if (inet_pton(AF_INET6, tmp, &a6) != 1)
        return -1;
    memset(out, 0, sizeof(*out));
    out->family = AF_INET6;
    memcpy(out->addr, &a6, 16);
    return 1;
}

/* ---- CIDR */

/* Strict prefix length: decimal, no sign, no leading zeros. */
static int parse_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
    unsigned whole = prefix / 8, bits = prefix % 8;
    if (memcmp(a, b, whole) != 0)
        return false;
    if (bits == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - bits));
    return ((a[whole] ^ b[whole]) & mask) == 0;
}

int sl_cidr_parse(const char *s, sl_cidr_t *out)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, alen);
    tmp[alen] = '\0';
    memset(out, 0, sizeof(*out));
    unsigned max;
    if (strchr(tmp, ':')) {
        out->ip.family = AF_INET6;
        max = 128;
    } else {
        out->ip.family = AF_INET;
        max = 32;
    }
    /* inet_pton is the canonical spelling: dotted-quad decimal without
     * leading zeros for IPv4, RFC 4291 text for IPv6. */
    if (inet_pton(out->ip.family, tmp, out->ip.addr) != 1)
        return -1;
    out->prefix = max;
    if (slash && parse_prefix(slash + 1, max, &out->prefix) < 0)
        return -1;
    /* Host bits set ("10.0.0.1/8") means the writer meant something else. */
    uint8_t masked[16];
    memcpy(masked, out->ip.addr, 16);
    for (unsigned bit = out->prefix; bit < max; bit++)
        masked[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
    if (memcmp(masked, out->ip.addr, 16) != 0)
        return -1;
    return 0;
}

bool sl_cidr_contains(const sl_cidr_t *c, const sl_ip_t *ip)
{
    sl_ip_t un;
    if (c->ip.family == AF_INET && ip->family == AF_INET6 && sl_ip_unmap(ip, &un))
        ip = &un;
    if (c->ip.family != ip->family)
        return false;
    return prefix_eq(c->ip.addr, ip->addr, c->prefix);
}

/* ---- Special-purpose ranges */

typedef struct range {
    uint8_t net[16];
    unsigned prefix;
    const char *name;
} range_t;

#define V4(a, b, c, d)                                                                             \
    {                                                                                              \
        a, b, c, d                                                                                 \
    }

/* First match wins: the narrow entries come before the ranges holding them. */
static const range_t v4_ranges[] = {
    {V4(169, 254, 169, 254), 32, "metadata"},   {V4(100, 100, 100, 200), 32, "metadata"},
    {V4(255, 255, 255, 255), 32, "broadcast"},  {V4(0, 0, 0, 0), 8, "this-network"},
    {V4(127, 0, 0, 0), 8, "loopback"},          {V4(10, 0, 0, 0), 8, "rfc1918"},
    {V4(172, 16, 0, 0), 12, "rfc1918"},         {V4(192, 168, 0, 0), 16, "rfc1918"},
    {V4(169, 254, 0, 0), 16, "link-local"},     {V4(100, 64, 0, 0), 10, "cgnat"},
    {V4(192, 0, 0, 0), 24, "ietf-protocol"},    {V4(192, 0, 2, 0), 24, "documentation"},
    {V4(198, 51, 100, 0), 24, "documentation"}, {V4(203, 0, 113, 0), 24, "documentation"},
    {V4(198, 18, 0, 0), 15, "benchmark"},       {V4(224, 0, 0, 0), 4, "multicast"},
    {V4(240, 0, 0, 0), 4, "reserved"},
};

static const range_t v6_ranges[] = {
    {{0}, 128, "unspecified"},
    {{[15] = 1}, 128, "loopback"},
    {{0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54}, 128, "metadata"},
    {{0xfc}, 7, "ula"},
    {{0xfe, 0x80}, 10, "link-local"},
    {{0xfe, 0xc0}, 10, "site-local"},
    {{0xff}, 8, "multicast"},
    {{0x20, 0x01, 0x0d, 0xb8}, 32, "documentation"},
    {{0x01, 0x00}, 64, "discard"},
};

static const char *lookup(const range_t *t, size_t n, const uint8_t *addr)
{
    for (size_t i = 0; i < n; i++)
        if (prefix_eq(t[i].net, addr, t[i].prefix))
            return t[i].name;
    return NULL;
}

static const char *v4_special(const uint8_t a[4])
{
    return lookup(v4_ranges, sizeof(v4_ranges) / sizeof(v4_ranges[0]), a);
}

static bool zeros(const uint8_t *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static const uint8_t pfx_nat64[12] = {0x00, 0x64, 0xff, 0x9b};
static const uint8_t pfx_nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};

bool sl_ip_unmap(const sl_ip_t *ip, sl_ip_t *v4)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    if (ip->family != AF_INET6 || memcmp(ip->addr, mapped, 12) != 0)
        return false;
    memset(v4, 0, sizeof(*v4));
    v4->family = AF_INET;
    memcpy(v4->addr, ip->addr + 12, 4);
    return true;
}

/* Collect the IPv4 addresses an IPv6 address may deliver to. Returns how many
 * were written to out[] (at most 4). */
static size_t embedded_v4(const uint8_t *a, uint8_t out[4][4])
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    static const uint8_t translated[12] = {[8] = 0xff, [9] = 0xff};
    size_t k = 0;
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, translated, 12) == 0 || zeros(a, 0, 12) ||
        memcmp(a, pfx_nat64, 12) == 0) {
        /* ::ffff:0:0/96, ::ffff:0:0:0/96 (SIIT), ::/96, 64:ff9b::/96 */
        memcpy(out[k++], a + 12, 4);
    } else if (memcmp(a, pfx_nat64_local, 6) == 0) {
        /* RFC 8215 local-use NAT64: the operator picks the RFC 6052 prefix
         * length. /96 is the common one; otherwise every layout that fits
         * inside the /48 is judged, and any special one refuses. */
        if (zeros(a, 6, 12)) {
            memcpy(out[k++], a + 12, 4);
        } else {
            const uint8_t l48[4] = {a[6], a[7], a[9], a[10]};
            const uint8_t l56[4] = {a[7], a[9], a[10], a[11]};
            const uint8_t l64[4] = {a[9], a[10], a[11], a[12]};
            memcpy(out[k++], l48, 4);
            memcpy(out[k++], l56, 4);
            memcpy(out[k++], l64, 4);
        }
    } else if (a[0] == 0x20 && a[1] == 0x02) {
        /* 6to4: the IPv4 address is bits 16..47. */
        memcpy(out[k++], a + 2, 4);
    } else if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) {
        /* Teredo: the client's address, obfuscated by XOR, in the last 32. */
        for (int i = 0; i < 4; i++)
            out[k][i] = (uint8_t)(a[12 + i] ^ 0xff);
        k++;
    }
    return k;
}

bool sl_ip_embedded_v4(const sl_ip_t *ip, sl_ip_t *v4)
{
    uint8_t e[4][4];
    if (ip->family != AF_INET6 || embedded_v4(ip->addr, e) != 1)
        return false;
    memset(v4, 0, sizeof(*v4));
    v4->family = AF_INET;
    memcpy(v4->addr, e[0], 4);
    return true;
}

const char *sl_ip_special_range(const sl_ip_t *ip)
{
    if (ip->family == AF_INET)
        return v4_special(ip->addr);
    if (ip->family != AF_INET6)
        return "unknown-family";
    /* :: and ::1 sit inside ::/96 but are not IPv4 addresses. */
    if (zeros(ip->addr, 0, 15) && ip->addr[15] <= 1)
        return ip->addr[15] ? "loopback" : "unspecified";
    uint8_t e[4][4];
    size_t k = embedded_v4(ip->addr, e);
    for (size_t i = 0; i < k; i++) {
        const char *name = v4_special(e[i]);
        if (name)
            return name;
    }
    return lookup(v6_ranges, sizeof(v6_ranges) / sizeof(v6_ranges[0]), ip->addr);
}

/* ---- Conversions */

int sl_ip_from_sockaddr(const struct sockaddr *sa, sl_ip_t *out, uint16_t *port)
{
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        out->family = AF_INET;
        memcpy(out->addr, &s4->sin_addr, 4);
        if (port)
            *port = ntohs(s4->sin_port);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        out->family = AF_INET6;
        memcpy(out->addr, &s6->sin6_addr, 16);
        if (port)
            *port = ntohs(s6->sin6_port);
        return 0;
    }
    return -1;
}

void sl_ip_to_sockaddr(const sl_ip_t *ip, uint16_t port, struct sockaddr_storage *out,
                       socklen_t *len)
{
    memset(out, 0, sizeof(*out));
    if (ip->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)out;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, ip->addr, 4);
        *len = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, ip->addr, 16);
        *len = sizeof(*s6);
    }
}

char *sl_ip_format(const sl_ip_t *ip, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    if (inet_ntop(ip->family, ip->addr, buf, (socklen_t)cap) == NULL) {
        buf[0] = '\0';
    }
    return buf;
}

bool sl_ip_equal(const sl_ip_t *a, const sl_ip_t *b)
{
    if (a->family != b->family)
        return false;
    return memcmp(a->addr, b->addr, a->family == AF_INET ? 4 : 16) == 0;
}
