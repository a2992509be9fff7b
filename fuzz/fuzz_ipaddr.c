/* libFuzzer driver for IP literal parsing, CIDR and special ranges.
 *
 * Invariants: a parsed literal formats to text that parses back to the same
 * address; whatever inet_aton accepts (in the shapes both understand) is
 * either the same address or refused, never a different address; mapped
 * IPv6 addresses get the same verdict as their IPv4 address. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/ipaddr.h"
#include "fuzz_check.h"

static bool same_name(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char s[257];
    memcpy(s, data, size);
    s[size] = '\0';

    sl_ip_t ip, back;
    int r = sl_ip_parse_literal(s, size, &ip);
    CHECK(r >= -1 && r <= 1);
    if (r == 1) {
        CHECK(ip.family == AF_INET || ip.family == AF_INET6);
        char buf[64];
        sl_ip_format(&ip, buf, sizeof(buf));
        CHECK(sl_ip_parse_literal(buf, strlen(buf), &back) == 1);
        CHECK(sl_ip_equal(&ip, &back));
        const char *name = sl_ip_special_range(&ip);
        if (ip.family == AF_INET) {
            /* The mapped form must be judged like the address itself. */
            sl_ip_t m = {.family = AF_INET6};
            m.addr[10] = m.addr[11] = 0xff;
            memcpy(m.addr + 12, ip.addr, 4);
            CHECK(same_name(sl_ip_special_range(&m), name));
            sl_cidr_t c;
            CHECK(sl_cidr_parse(buf, &c) == 0 && c.prefix == 32);
            CHECK(sl_cidr_contains(&c, &ip) && sl_cidr_contains(&c, &m));
        } else {
            sl_ip_t v4;
            if (sl_ip_embedded_v4(&ip, &v4) && sl_ip_special_range(&v4) != NULL)
                CHECK(name != NULL);
        }
        struct sockaddr_storage ss;
        socklen_t sl;
        uint16_t port;
        sl_ip_to_sockaddr(&ip, 443, &ss, &sl);
        CHECK(sl_ip_from_sockaddr((struct sockaddr *)&ss, &back, &port) == 0);
        CHECK(port == 443 && sl_ip_equal(&ip, &back));
    }
    /* Differential against glibc: where inet_aton accepts the whole string
     * (no trailing junk, no trailing dot), we must agree or refuse. */
    struct in_addr a4;
    bool plain = size > 0 && strlen(s) == size && s[size - 1] != '.';
    for (size_t i = 0; i < size && plain; i++)
        if ((unsigned char)s[i] <= 0x20)
            plain = false;
    if (plain && inet_aton(s, &a4) == 1 && memchr(s, ':', size) == NULL) {
        CHECK(r != 0);
        if (r == 1)
            CHECK(ip.family == AF_INET && memcmp(ip.addr, &a4, 4) == 0);
    }
    unsigned char a6[16];
    if (plain && inet_pton(AF_INET6, s, a6) == 1) {
        CHECK(r == 1 && ip.family == AF_INET6 && memcmp(ip.addr, a6, 16) == 0);
    }

    sl_cidr_t c;
    if (sl_cidr_parse(s, &c) == 0) {
        CHECK(c.prefix <= (c.ip.family == AF_INET ? 32u : 128u));
        CHECK(sl_cidr_contains(&c, &c.ip));
        char buf[64];
        sl_ip_format(&c.ip, buf, sizeof(buf));
        CHECK(sl_ip_parse_literal(buf, strlen(buf), &back) == 1 && sl_ip_equal(&back, &c.ip));
    }
    return 0;
}
