/* IP literal spellings, special ranges, CIDR and conversions. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "net/ipaddr.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int parse(const char *s, sl_ip_t *ip)
{
    return sl_ip_parse_literal(s, strlen(s), ip);
}

/* Parse `s`, which must be an IP literal, and return its canonical text. */
static const char *canon(const char *s, char *buf)
{
    sl_ip_t ip;
    int r = parse(s, &ip);
    if (r != 1) {
        fprintf(stderr, "not a literal: \"%s\" (%d)\n", s, r);
        fail();
    }
    return sl_ip_format(&ip, buf, 64);
}

static void expect_all(const char *const *spellings, size_t n, const char *want, const char *range)
{
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        sl_ip_t ip;
        const char *got = canon(spellings[i], buf);
        if (strcmp(got, want) != 0) {
            fprintf(stderr, "\"%s\" -> %s, want %s\n", spellings[i], got, want);
            fail();
        }
        assert_int_equal(parse(spellings[i], &ip), 1);
        const char *r = sl_ip_special_range(&ip);
        if (r == NULL || strcmp(r, range) != 0) {
            fprintf(stderr, "\"%s\" range %s, want %s\n", spellings[i], r ? r : "(public)", range);
            fail();
        }
    }
}

static void test_loopback_spellings(void **state)
{
    static const char *const v4[] = {
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0X7F000001",
        "0x7F000001",
        "017700000001",
        "0000017700000001",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "0177.0.0.01",
        "127.1",
        "127.0.1",
        "0x7f.1",
        "0177.1",
        "0x7f.0x0.0x0.0x1",
        "127.0x0.0.1",
        "127.0.0.0x1",
        "0x7f.0.1",
        "127.000.000.001",
        "00000177.0.0.1",
        "0x00007f.0.0.1",
        "127.0.0.1.",
        "127.1.",
        "0x7F.0X00.0.01",
        "127.00.0.1",
        "0x0000007f000001",
        "127.0.0x00000001",
        "127.0x000001",
        "0177.01",
        "0x7f.00.0x00.00001",
    };
    expect_all(v4, COUNT(v4), "127.0.0.1", "loopback");
    static const char *const v6[] = {
        "::ffff:127.0.0.1", "::ffff:7f00:1", "0:0:0:0:0:ffff:7f00:1",
        "::127.0.0.1",      "::7f00:1",      "::ffff:0:127.0.0.1",
    };
    for (size_t i = 0; i < COUNT(v6); i++) {
        sl_ip_t ip;
        assert_int_equal(parse(v6[i], &ip), 1);
        assert_int_equal(ip.family, AF_INET6);
        assert_string_equal(sl_ip_special_range(&ip), "loopback");
    }
    (void)state;
}

static void test_metadata_spellings(void **state)
{
    static const char *const v4[] = {
        "169.254.169.254",     "2852039166",
        "0xa9fea9fe",          "0xA9FEA9FE",
        "025177524776",        "0xa9.0xfe.0xa9.0xfe",
        "0251.0376.0251.0376", "169.254.43518",
        "169.16689662",        "0xa9.0xfea9fe",
        "0251.0xfe.169.0376",  "169.254.169.254.",
        "0251.077524776",      "169.254.0xa9fe",
        "0xa9.254.0251.0xFE",  "0000251.0000376.0000251.0000376",
    };
    expect_all(v4, COUNT(v4), "169.254.169.254", "metadata");
    static const char *const v6[] = {
        "::ffff:169.254.169.254",
        "::ffff:a9fe:a9fe",
        "::169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::169.254.169.254",
        "64:ff9b:1::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "2002:a9fe:a9fe:1234::5",
        "2001:0:4136:e378:8000:63bf:5601:5601",
        "fd00:ec2::254",
        "fd00:0ec2:0:0:0:0:0:254",
    };
    for (size_t i = 0; i < COUNT(v6); i++) {
        sl_ip_t ip;
        assert_int_equal(parse(v6[i], &ip), 1);
        const char *r = sl_ip_special_range(&ip);
        if (r == NULL || strcmp(r, "metadata") != 0) {
            fprintf(stderr, "%s -> %s\n", v6[i], r ? r : "(public)");
            fail();
        }
    }
    (void)state;
}

static void test_other_spellings(void **state)
{
    static const struct {
        const char *in, *want;
    } t[] = {
        {"0", "0.0.0.0"},
        {"0x0", "0.0.0.0"},
        {"00", "0.0.0.0"},
        {"4294967295", "255.255.255.255"},
        {"0xffffffff", "255.255.255.255"},
        {"037777777777", "255.255.255.255"},
        {"1.2.3.4", "1.2.3.4"},
        {"1.2.772", "1.2.3.4"},
        {"1.131844", "1.2.3.4"},
        {"16909060", "1.2.3.4"},
        {"10.0.0.1", "10.0.0.1"},
        {"8.8.8.8", "8.8.8.8"},
        {"255.255.65535", "255.255.255.255"},
        {"255.16777215", "255.255.255.255"},
        {"::1", "::1"},
        {"::", "::"},
        {"0:0:0:0:0:0:0:1", "::1"},
        {"2001:DB8::1", "2001:db8::1"},
        {"fe80::1%eth0", "fe80::1"},
        {"fe80::1%25eth0", "fe80::1"},
        {"fe80::1%en0.1_x~y-z", "fe80::1"},
        {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
        {"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"},
        {"::ffff:1.2.3.4", "::ffff:1.2.3.4"},
    };
    for (size_t i = 0; i < COUNT(t); i++) {
        char buf[64];
        const char *got = canon(t[i].in, buf);
        if (strcmp(got, t[i].want) != 0) {
            fprintf(stderr, "\"%s\" -> %s, want %s\n", t[i].in, got, t[i].want);
            fail();
        }
    }
    (void)state;
}

static void test_malformed_numeric(void **state)
{
    static const char *const bad[] = {
        "1.2.3.4.5",
        "0x",
        "08.1.1.1",
        "256.1.1.1",
        "1.2.3.999",
        "1.2.3.256",
        "4294967296",
        "0x100000000",
        "040000000000",
        "1..2.3",
        ".1.2.3",
        "1.2.3.4..",
        "09",
        "0x1.0x",
        "1.2.3.0x",
        "example.123",
        "foo.0x10",
        "foo.0X",
        "1.2.65536",
        "1.16777216",
        "0x1.0x2.0x3.0x4.5",
        "1.2.3.4 ",
        "1.2.3.4 x",
        " 1.2.3.4",
        "1.2.3.4\t",
        "1.2.3.4\n",
        "1.2.3.08",
        "0x1g.1",
        "999999999999999999999999",
        "0x0000000000000000000000000100000000",
        "",
        ":::",
        "1:2:3:4:5:6:7:8:9",
        "::ffff:127.1",
        "::ffff:01.2.3.4",
        "fe80::1%",
        "fe80::1%eth 0",
        "fe80::1%eth/0",
        "fe80::1%%",
        "[::1]",
        "::g",
        "12345::",
        "1::2::3",
        "::1:",
        "1.2.3.4:80",
        "example.com:443",
        "::1%eth0%eth1",
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        sl_ip_t ip;
        int r = parse(bad[i], &ip);
        if (r != -1) {
            fprintf(stderr, "\"%s\" -> %d, want -1\n", bad[i], r);
            fail();
        }
    }
    /* Embedded NUL is not a terminator. */
    sl_ip_t ip;
    assert_int_equal(sl_ip_parse_literal("1.2.3.4\0"
                                         "5",
                                         9, &ip),
                     -1);
    assert_int_equal(sl_ip_parse_literal("::1\0"
                                         "5",
                                         5, &ip),
                     -1);
    (void)state;
}

static void test_names(void **state)
{
    static const char *const names[] = {
        "example.com",
        "localhost",
        "1.2.3.4.nip.io",
        "0x7f.example",
        "a1",
        "deadbeef",
        "127.0.0.1x",
        "0x1g",
        "-1",
        "+1",
        "1e5",
        "xn--e1afmkfd.xn--p1ai",
        "a.b.c.d.e",
        "0xabc.com",
        "1.2.3.4a",
        ".",
        "_srv.example",
        "0xx1",
    };
    for (size_t i = 0; i < COUNT(names); i++) {
        sl_ip_t ip;
        int r = parse(names[i], &ip);
        if (r != 0) {
            fprintf(stderr, "\"%s\" -> %d, want 0 (name)\n", names[i], r);
            fail();
        }
    }
    (void)state;
}

struct range_case {
    const char *addr;
    const char *want; /* NULL = public */
};

static void check_ranges(const struct range_case *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sl_ip_t ip;
        if (parse(t[i].addr, &ip) != 1) {
            fprintf(stderr, "not a literal: %s\n", t[i].addr);
            fail();
        }
        const char *got = sl_ip_special_range(&ip);
        bool ok =
            (got == NULL && t[i].want == NULL) || (got && t[i].want && strcmp(got, t[i].want) == 0);
        if (!ok) {
            fprintf(stderr, "%s -> %s, want %s\n", t[i].addr, got ? got : "(public)",
                    t[i].want ? t[i].want : "(public)");
            fail();
        }
    }
}

static void test_v4_ranges(void **state)
{
    static const struct range_case t[] = {
        {"0.0.0.0", "this-network"},
        {"0.255.255.255", "this-network"},
        {"1.0.0.0", NULL},
        {"127.0.0.1", "loopback"},
        {"127.255.255.255", "loopback"},
        {"126.255.255.255", NULL},
        {"128.0.0.0", NULL},
        {"10.0.0.0", "rfc1918"},
        {"10.255.255.255", "rfc1918"},
        {"9.255.255.255", NULL},
        {"11.0.0.0", NULL},
        {"172.16.0.0", "rfc1918"},
        {"172.31.255.255", "rfc1918"},
        {"172.15.255.255", NULL},
        {"172.32.0.0", NULL},
        {"192.168.0.0", "rfc1918"},
        {"192.168.255.255", "rfc1918"},
        {"192.167.255.255", NULL},
        {"192.169.0.0", NULL},
        {"169.254.0.1", "link-local"},
        {"169.254.169.254", "metadata"},
        {"169.254.169.253", "link-local"},
        {"169.254.169.255", "link-local"},
        {"169.254.255.255", "link-local"},
        {"169.253.255.255", NULL},
        {"169.255.0.0", NULL},
        {"100.100.100.200", "metadata"},
        {"100.100.100.199", "cgnat"},
        {"100.100.100.201", "cgnat"},
        {"100.64.0.0", "cgnat"},
        {"100.127.255.255", "cgnat"},
        {"100.63.255.255", NULL},
        {"100.128.0.0", NULL},
        {"192.0.0.0", "ietf-protocol"},
        {"192.0.0.255", "ietf-protocol"},
        {"191.255.255.255", NULL},
        {"192.0.1.0", NULL},
        {"192.0.2.1", "documentation"},
        {"192.0.3.0", NULL},
        {"198.51.100.7", "documentation"},
        {"198.51.99.255", NULL},
        {"198.51.101.0", NULL},
        {"203.0.113.9", "documentation"},
        {"203.0.112.255", NULL},
        {"203.0.114.0", NULL},
        {"198.18.0.0", "benchmark"},
        {"198.19.255.255", "benchmark"},
        {"198.17.255.255", NULL},
        {"198.20.0.0", NULL},
        {"224.0.0.1", "multicast"},
        {"239.255.255.255", "multicast"},
        {"223.255.255.255", NULL},
        {"240.0.0.0", "reserved"},
        {"255.255.255.254", "reserved"},
        {"255.255.255.255", "broadcast"},
        {"8.8.8.8", NULL},
        {"1.1.1.1", NULL},
    };
    check_ranges(t, COUNT(t));
    (void)state;
}

static void test_v6_ranges(void **state)
{
    static const struct range_case t[] = {
        {"::", "unspecified"},
        {"::1", "loopback"},
        {"::1:0:0:0:1", NULL},
        {"fd00:ec2::254", "metadata"},
        {"fd00:ec2::253", "ula"},
        {"fc00::1", "ula"},
        {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ula"},
        {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
        {"fe00::", NULL},
        {"fe80::1", "link-local"},
        {"febf:ffff::", "link-local"},
        {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
        {"fec0::1", "site-local"},
        {"feff:ffff::", "site-local"},
        {"ff00::1", "multicast"},
        {"ff02::1", "multicast"},
        {"2001:db8::1", "documentation"},
        {"2001:db8:ffff:ffff::", "documentation"},
        {"2001:db7:ffff::", NULL},
        {"2001:db9::", NULL},
        {"100::1", "discard"},
        {"100::ffff:ffff:ffff:ffff", "discard"},
        {"100:0:0:1::", NULL},
        {"ff::", NULL},
        {"2606:4700::1111", NULL},
        {"2a00:1450:4001:82b::200e", NULL},
    };
    check_ranges(t, COUNT(t));
    (void)state;
}

static void test_v6_embedded(void **state)
{
    static const struct range_case t[] = {
        /* mapped */
        {"::ffff:127.0.0.1", "loopback"},
        {"::ffff:10.1.2.3", "rfc1918"},
        {"::ffff:192.168.1.1", "rfc1918"},
        {"::ffff:169.254.169.254", "metadata"},
        {"::ffff:100.100.100.200", "metadata"},
        {"::ffff:0.0.0.0", "this-network"},
        {"::ffff:8.8.8.8", NULL},
        /* SIIT translated */
        {"::ffff:0:127.0.0.1", "loopback"},
        {"::ffff:0:8.8.8.8", NULL},
        /* compatible */
        {"::127.0.0.1", "loopback"},
        {"::10.0.0.1", "rfc1918"},
        {"::2", "this-network"},
        {"::8.8.8.8", NULL},
        /* NAT64 well-known */
        {"64:ff9b::127.0.0.1", "loopback"},
        {"64:ff9b::10.0.0.1", "rfc1918"},
        {"64:ff9b::a9fe:a9fe", "metadata"},
        {"64:ff9b::8.8.8.8", NULL},
        {"64:ff9a::10.0.0.1", NULL},
        /* NAT64 local-use, /96 and /48 layouts */
        {"64:ff9b:1::10.0.0.1", "rfc1918"},
        {"64:ff9b:1::8.8.8.8", NULL},
        {"64:ff9b:1:a00:0:100::", "rfc1918"},
        {"64:ff9b:1:7f00:0:100::", "loopback"},
        {"64:ff9b:1:808:8:800::", NULL},
        {"64:ff9b:2::10.0.0.1", NULL},
        /* 6to4 */
        {"2002:7f00:1::", "loopback"},
        {"2002:a00:1::1", "rfc1918"},
        {"2002:c0a8:101:1::1", "rfc1918"},
        {"2002:808:808::", NULL},
        {"2003:7f00:1::", NULL},
        /* Teredo: client = last 32 bits XOR 0xffffffff */
        {"2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"},
        {"2001:0:4136:e378:8000:63bf:f5ff:fffe", "rfc1918"},
        {"2001:0:4136:e378:8000:63bf:3fff:fdd2", "documentation"},
        {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", NULL},
        {"2001:1::80ff:fffe", NULL},
    };
    check_ranges(t, COUNT(t));

    sl_ip_t ip, v4;
    char buf[64];
    assert_int_equal(parse("2001:0:4136:e378:8000:63bf:3fff:fdd2", &ip), 1);
    assert_true(sl_ip_embedded_v4(&ip, &v4));
    assert_string_equal(sl_ip_format(&v4, buf, sizeof(buf)), "192.0.2.45");
    assert_int_equal(parse("2002:c000:22d::1", &ip), 1);
    assert_true(sl_ip_embedded_v4(&ip, &v4));
    assert_string_equal(sl_ip_format(&v4, buf, sizeof(buf)), "192.0.2.45");
    assert_int_equal(parse("2606:4700::1", &ip), 1);
    assert_false(sl_ip_embedded_v4(&ip, &v4));
    assert_int_equal(parse("::ffff:1.2.3.4", &ip), 1);
    assert_true(sl_ip_unmap(&ip, &v4));
    assert_string_equal(sl_ip_format(&v4, buf, sizeof(buf)), "1.2.3.4");
    assert_int_equal(parse("::1.2.3.4", &ip), 1);
    assert_false(sl_ip_unmap(&ip, &v4));
    (void)state;
}

static void test_cidr(void **state)
{
    static const struct {
        const char *cidr, *ip;
        bool in;
    } t[] = {
        {"10.0.0.0/8", "10.0.0.1", true},
        {"10.0.0.0/8", "10.255.255.255", true},
        {"10.0.0.0/8", "11.0.0.0", false},
        {"10.0.0.0/8", "::ffff:10.1.1.1", true},
        {"10.0.0.0/8", "::10.1.1.1", false},
        {"172.16.0.0/12", "172.31.0.1", true},
        {"172.16.0.0/12", "172.32.0.1", false},
        {"0.0.0.0/0", "8.8.8.8", true},
        {"0.0.0.0/0", "::1", false},
        {"1.2.3.4", "1.2.3.4", true},
        {"1.2.3.4", "1.2.3.5", false},
        {"1.2.3.4/32", "1.2.3.4", true},
        {"1.2.3.0/31", "1.2.3.1", true},
        {"1.2.3.0/31", "1.2.3.2", false},
        {"fc00::/7", "fdff::1", true},
        {"fc00::/7", "fe00::1", false},
        {"::/0", "2001:db8::1", true},
        {"::/0", "1.2.3.4", false},
        {"::1", "::1", true},
        {"::1", "::2", false},
        {"2001:db8::/33", "2001:db8:7fff::1", true},
        {"2001:db8::/33", "2001:db8:8000::1", false},
        {"::ffff:0:0/96", "::ffff:1.2.3.4", true},
    };
    for (size_t i = 0; i < COUNT(t); i++) {
        sl_cidr_t c;
        sl_ip_t ip;
        assert_int_equal(sl_cidr_parse(t[i].cidr, &c), 0);
        assert_int_equal(parse(t[i].ip, &ip), 1);
        if (sl_cidr_contains(&c, &ip) != t[i].in) {
            fprintf(stderr, "%s contains %s: want %d\n", t[i].cidr, t[i].ip, t[i].in);
            fail();
        }
    }
    sl_cidr_t c;
    assert_int_equal(sl_cidr_parse("10.0.0.0/8", &c), 0);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(c.ip.family, AF_INET);
    assert_int_equal(sl_cidr_parse("::1", &c), 0);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(sl_cidr_parse("1.2.3.4", &c), 0);
    assert_int_equal(c.prefix, 32);
    static const char *const bad[] = {
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/08",
        "10.0.0.0/+8",
        "10.0.0.0/-1",
        "10.0.0.1/8",
        "10/8",
        "0x0a.0.0.0/8",
        "010.0.0.0/8",
        "10.0.0.0/8x",
        "10.0.0.0 /8",
        "::/129",
        "fc00::1/7",
        "::1/",
        "example.com",
        "10.0.0.0/8/8",
        "10.0.0.0/1000",
        "::ffff:1.2.3/96",
        "fe80::1%eth0",
        "127.1",
        "10.0.0.0/ 8",
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        if (sl_cidr_parse(bad[i], &c) != -1) {
            fprintf(stderr, "cidr \"%s\" accepted\n", bad[i]);
            fail();
        }
    }
    (void)state;
}

static void test_sockaddr_format_equal(void **state)
{
    sl_ip_t a, b;
    struct sockaddr_storage ss;
    socklen_t len;
    uint16_t port = 0;
    char buf[64];

    assert_int_equal(parse("192.0.2.7", &a), 1);
    sl_ip_to_sockaddr(&a, 8443, &ss, &len);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    assert_int_equal(ntohs(s4->sin_port), 8443);
    assert_int_equal(ntohl(s4->sin_addr.s_addr), 0xc0000207u);
    assert_int_equal(sl_ip_from_sockaddr((struct sockaddr *)&ss, &b, &port), 0);
    assert_int_equal(port, 8443);
    assert_true(sl_ip_equal(&a, &b));

    assert_int_equal(parse("2001:db8::42", &a), 1);
    sl_ip_to_sockaddr(&a, 443, &ss, &len);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(sl_ip_from_sockaddr((struct sockaddr *)&ss, &b, &port), 0);
    assert_int_equal(port, 443);
    assert_true(sl_ip_equal(&a, &b));
    assert_string_equal(sl_ip_format(&b, buf, sizeof(buf)), "2001:db8::42");

    struct sockaddr sa = {.sa_family = AF_UNIX};
    assert_int_equal(sl_ip_from_sockaddr(&sa, &b, &port), -1);

    /* Equality compares only the bytes the family uses. */
    assert_int_equal(parse("1.2.3.4", &a), 1);
    b = a;
    b.addr[8] = 9;
    assert_true(sl_ip_equal(&a, &b));
    b.addr[3] = 5;
    assert_false(sl_ip_equal(&a, &b));
    assert_int_equal(parse("::ffff:1.2.3.4", &b), 1);
    assert_false(sl_ip_equal(&a, &b));

    /* Too small a buffer yields an empty string, never an overflow. */
    char small[4] = "xyz";
    assert_int_equal(parse("255.255.255.255", &a), 1);
    assert_string_equal(sl_ip_format(&a, small, sizeof(small)), "");
    (void)state;
}

/* Every address whose text round-trips must parse back to itself. */
static void test_roundtrip(void **state)
{
    uint32_t x = 0x12345678;
    for (int i = 0; i < 20000; i++) {
        sl_ip_t a, b;
        char buf[64], alt[64];
        x = x * 1103515245u + 12345u;
        memset(&a, 0, sizeof(a));
        a.family = (i & 1) ? AF_INET6 : AF_INET;
        for (int k = 0; k < 16; k++)
            a.addr[k] = (uint8_t)((x >> (k % 4 * 8)) ^ (k * 37));
        if (a.family == AF_INET)
            memset(a.addr + 4, 0, 12);
        if (i % 5 == 0 && a.family == AF_INET6)
            memset(a.addr, 0, 8);
        sl_ip_format(&a, buf, sizeof(buf));
        assert_int_equal(parse(buf, &b), 1);
        assert_true(sl_ip_equal(&a, &b));
        if (a.family == AF_INET) {
            uint32_t v = (uint32_t)a.addr[0] << 24 | (uint32_t)a.addr[1] << 16 |
                         (uint32_t)a.addr[2] << 8 | a.addr[3];
            snprintf(alt, sizeof(alt), "%u", v);
            assert_int_equal(parse(alt, &b), 1);
            assert_true(sl_ip_equal(&a, &b));
            snprintf(alt, sizeof(alt), "0x%x", v);
            assert_int_equal(parse(alt, &b), 1);
            assert_true(sl_ip_equal(&a, &b));
            snprintf(alt, sizeof(alt), "0%o.0x%x.%u", a.addr[0], a.addr[1],
                     (unsigned)a.addr[2] << 8 | a.addr[3]);
            assert_int_equal(parse(alt, &b), 1);
            assert_true(sl_ip_equal(&a, &b));
        }
    }
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_spellings),
        cmocka_unit_test(test_metadata_spellings),
        cmocka_unit_test(test_other_spellings),
        cmocka_unit_test(test_malformed_numeric),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_v4_ranges),
        cmocka_unit_test(test_v6_ranges),
        cmocka_unit_test(test_v6_embedded),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_sockaddr_format_equal),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
