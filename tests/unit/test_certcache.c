/* Leaf minting, the LRU cache, host validation and a real handshake. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/certcache.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static sl_ca_t *g_ca;
static time_t g_now;

static time_t fake_now(void *arg)
{
    (void)arg;
    return g_now;
}

static int setup(void **state)
{
    sl_buf_t err = {0};
    g_ca = sl_ca_generate("certcache test CA", &err);
    sl_buf_free(&err);
    return g_ca == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    sl_ca_unref(g_ca);
    return 0;
}

static sl_certcache_t *new_cache(size_t cap)
{
    sl_buf_t err = {0};
    sl_certcache_t *c = sl_certcache_new(g_ca, cap, &err);
    if (c == NULL)
        fprintf(stderr, "%s", sl_buf_cstr(&err));
    assert_non_null(c);
    sl_buf_free(&err);
    return c;
}

static SSL_CTX *get_ok(sl_certcache_t *c, const char *host)
{
    const char *err = NULL;
    SSL_CTX *ctx = sl_certcache_get(c, host, &err);
    if (ctx == NULL) {
        fprintf(stderr, "get(\"%s\") refused: %s\n", host, err);
        fail();
    }
    return ctx;
}

static X509 *leaf_of(SSL_CTX *ctx)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    assert_non_null(x);
    return x;
}

/* Verify `leaf` as a TLS server certificate chaining to the CA. */
static int verify_leaf(X509 *leaf, sl_ca_t *ca, time_t at)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, sl_ca_cert(ca));
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    X509_STORE_CTX_init(sc, store, leaf, NULL);
    X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_SERVER);
    if (at != 0)
        X509_STORE_CTX_set_time(sc, 0, at);
    int ok = X509_verify_cert(sc);
    if (ok != 1)
        fprintf(stderr, "verify: %s\n",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(sc)));
    X509_STORE_CTX_free(sc);
    X509_STORE_free(store);
    return ok;
}

/* ------------------------------------------------------------------ hosts */

static void test_host_valid(void **state)
{
    char label63[64], long253[254];
    memset(label63, 'a', 63);
    label63[63] = '\0';
    /* 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 */
    snprintf(long253, sizeof(long253), "%s.%s.%s.%.61s", label63, label63, label63, label63);
    assert_int_equal(strlen(long253), 253);
    const char *good[] = {
        "example.com",
        "a",
        "localhost",
        "xn--bcher-kva.de",
        "a-b.c-d.e",
        "a1.b2",
        "1a.com",
        "123.example",
        "www.x0a.com",
        label63,
        long253,
        "1.2.3.4",
        "0.0.0.0",
        "255.255.255.255",
        "::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "fe80::1",
    };
    for (size_t i = 0; i < COUNT(good); i++) {
        const char *why = sl_tls_host_problem(good[i], strlen(good[i]));
        if (why != NULL) {
            fprintf(stderr, "\"%s\" refused: %s\n", good[i], why);
            fail();
        }
        assert_int_equal(sl_tls_host_valid(good[i]), 1);
    }

    char label64[80], long254[260];
    memset(label64, 'b', 64);
    strcpy(label64 + 64, ".com");
    snprintf(long254, sizeof(long254), "%s.%s.%s.%.62s", label63, label63, label63, label63);
    assert_int_equal(strlen(long254), 254);
    const char *bad[] = {
        "",
        "a..b",
        ".a",
        "a.",
        "..",
        ".",
        label64,
        long254,
        "a b",
        " a",
        "a\tb",
        "*.x",
        "*",
        "a.*.b",
        "ex_ample.com",
        "_dmarc.x",
        "EXAMPLE.com",
        "Example.com",
        "\xc3\xa9t\xc3\xa9.fr",
        "caf\xe9.com",
        "-a.com",
        "a-.com",
        "a.-b.com",
        "a.b-",
        "a/b",
        "a:b",
        "a@b",
        "a%2eb",
        "a\\b",
        "[::1]",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "1.2.3.999",
        "0x7f.1",
        "0x7f000001",
        "2130706433",
        "a.1",
        "a.0x1f",
        "::FFFF:1.2.3.4",
        "0:0::1",
        "::1%eth0",
        "fe80::1%25lo",
        "1::2::3",
        "gggg::1",
        "::1.",
        "a\x7f",
        "a\x01",
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        if (sl_tls_host_valid(bad[i]) != 0) {
            fprintf(stderr, "\"%s\" accepted\n", bad[i]);
            fail();
        }
        assert_non_null(sl_tls_host_problem(bad[i], strlen(bad[i])));
    }
    /* An embedded NUL hides a suffix from C-string code: refused by
     * length, whatever follows it. */
    assert_string_equal(sl_tls_host_problem("evil.com\0x", 10), "NUL byte in host name");
    assert_string_equal(sl_tls_host_problem("evil.com\0", 9), "NUL byte in host name");
    assert_null(sl_tls_host_problem("evil.com\0x", 8));
    assert_non_null(sl_tls_host_problem(NULL, 0));
    assert_int_equal(sl_tls_host_valid(NULL), 0);
    /* Reasons name the problem. */
    assert_string_equal(sl_tls_host_problem("*.x", 3), "wildcard in host name");
    assert_string_equal(sl_tls_host_problem(label64, strlen(label64)),
                        "label longer than 63 bytes");
}

static void canon_is(const char *in, const char *want, bool want_ip)
{
    char out[SL_TLS_HOST_MAX + 1];
    const char *why = NULL;
    bool is_ip = !want_ip;
    int n = sl_tls_host_canon(in, strlen(in), out, sizeof(out), &is_ip, &why);
    if (n < 0) {
        fprintf(stderr, "canon(\"%s\") refused: %s\n", in, why);
        fail();
    }
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);
    assert_int_equal(is_ip, want_ip);
}

static void test_host_canon(void **state)
{
    canon_is("Example.COM.", "example.com", false);
    canon_is("example.com", "example.com", false);
    canon_is("A", "a", false);
    canon_is("10.0.0.1", "10.0.0.1", true);
    canon_is("10.0.0.1.", "10.0.0.1", true);
    canon_is("0:0::1", "::1", true);
    canon_is("2001:DB8:0:0::1", "2001:db8::1", true);
    canon_is("::FFFF:10.0.0.1", "::ffff:10.0.0.1", true);
    canon_is("123.example", "123.example", false);
    const char *bad[] = {
        "",
        ".",
        "..",
        "a..",
        "[::1]",
        "::1%eth0",
        "0x7f.1",
        "127.1",
        "*.Example.com",
        "a_b",
        "\xc3\xa9.com",
        "a b",
    };
    for (size_t i = 0; i < COUNT(bad); i++) {
        char out[SL_TLS_HOST_MAX + 1];
        const char *why = NULL;
        if (sl_tls_host_canon(bad[i], strlen(bad[i]), out, sizeof(out), NULL, &why) != -1) {
            fprintf(stderr, "canon(\"%s\") accepted as \"%s\"\n", bad[i], out);
            fail();
        }
        assert_non_null(why);
    }
    char out[SL_TLS_HOST_MAX + 1];
    const char *why = NULL;
    assert_int_equal(sl_tls_host_canon("evil.com\0x", 10, out, sizeof(out), NULL, &why), -1);
    assert_int_equal(sl_tls_host_canon("::1\0x", 5, out, sizeof(out), NULL, &why), -1);
    /* Too small an output buffer is a refusal, not an overflow. */
    char small[4];
    assert_int_equal(sl_tls_host_canon("example.com", 11, small, sizeof(small), NULL, &why), -1);
}

/* ------------------------------------------------------------------ leaves */

static void test_leaf_for_name(void **state)
{
    sl_certcache_t *c = new_cache(0);
    g_now = time(NULL);
    sl_certcache_set_clock(c, fake_now, NULL);
    SSL_CTX *ctx = get_ok(c, "Api.Example.com.");
    X509 *leaf = leaf_of(ctx);

    assert_int_equal(verify_leaf(leaf, g_ca, g_now), 1);
    assert_int_equal(X509_check_host(leaf, "api.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "example.com", 0, 0, NULL), 0);
    assert_int_equal(X509_check_host(leaf, "evil.api.example.com", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 0);

    /* Exactly one SAN, the DNS name; not critical (there is a CN). */
    int crit = -1;
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    assert_non_null(gens);
    assert_int_equal(crit, 0);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, 0);
    assert_int_equal(gn->type, GEN_DNS);
    assert_int_equal(ASN1_STRING_length(gn->d.dNSName), 15);
    assert_memory_equal(ASN1_STRING_get0_data(gn->d.dNSName), "api.example.com", 15);
    GENERAL_NAMES_free(gens);
    char cn[80];
    assert_int_equal(
        X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn)), 15);
    assert_string_equal(cn, "api.example.com");

    /* EKU serverAuth only, KU digitalSignature, not a CA, CA as issuer. */
    assert_true(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_check_ca(leaf), 0);
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(leaf, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_false(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_check_issued(sl_ca_cert(g_ca), leaf), X509_V_OK);
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    assert_int_equal(BN_num_bytes(bn), 16);
    assert_false(BN_is_negative(bn));
    BN_free(bn);

    /* Validity: backdated one hour, 24 h ahead by default. */
    assert_int_equal(sl_tls_asn1_time(X509_get0_notBefore(leaf)), g_now - 3600);
    assert_int_equal(sl_tls_asn1_time(X509_get0_notAfter(leaf)), g_now + 24 * 3600);
    /* A client whose clock is 59 minutes behind accepts it; 2 h is too much,
     * and so is a day and a bit ahead. */
    assert_int_equal(verify_leaf(leaf, g_ca, g_now - 59 * 60), 1);
    assert_int_not_equal(verify_leaf(leaf, g_ca, g_now - 7200), 1);
    assert_int_not_equal(verify_leaf(leaf, g_ca, g_now + 25 * 3600), 1);

    /* The leaf goes alone: no chain certificates (the client has the CA as
     * its trust anchor), and no chain built automatically from a store. */
    STACK_OF(X509) *chain = NULL;
    assert_int_equal(SSL_CTX_get0_chain_certs(ctx, &chain), 1);
    assert_true(chain == NULL || sk_X509_num(chain) == 0);
    assert_true((SSL_CTX_get_mode(ctx) & SSL_MODE_NO_AUTO_CHAIN) != 0);

    /* Protocol floor and ceiling. */
    assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    assert_int_equal(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
    assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);

    SSL_CTX_free(ctx);
    sl_certcache_free(c);
}

static void test_leaf_for_ip(void **state)
{
    sl_certcache_t *c = new_cache(0);
    SSL_CTX *v4 = get_ok(c, "10.1.2.3");
    X509 *leaf = leaf_of(v4);
    assert_int_equal(verify_leaf(leaf, g_ca, 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "10.1.2.3", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "10.1.2.4", 0), 0);
    /* An IP leaf holds no DNS name (its CN is the address text, which only
     * legacy CN matching would look at). */
    assert_int_equal(
        X509_check_host(leaf, "10.1.2.3", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL), 0);
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
    assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_IPADD);
    GENERAL_NAMES_free(gens);

    SSL_CTX *v6 = get_ok(c, "2001:DB8:0::1");
    leaf = leaf_of(v6);
    assert_int_equal(verify_leaf(leaf, g_ca, 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "2001:db8::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "2001:db8::2", 0), 0);
    /* Another spelling of the same address is the same entry. */
    SSL_CTX *again = get_ok(c, "2001:db8::1");
    assert_ptr_equal(again, v6);
    SSL_CTX_free(again);
    SSL_CTX_free(v4);
    SSL_CTX_free(v6);
    sl_certcache_free(c);
}

static void test_leaf_long_name(void **state)
{
    /* Over 64 bytes: no CN (RFC 5280 upper bound), so the SAN is critical. */
    char host[200];
    snprintf(host, sizeof(host), "%s.%s.example.com",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    sl_certcache_t *c = new_cache(0);
    SSL_CTX *ctx = get_ok(c, host);
    X509 *leaf = leaf_of(ctx);
    assert_int_equal(verify_leaf(leaf, g_ca, 0), 1);
    assert_int_equal(X509_check_host(leaf, host, 0, 0, NULL), 1);
    assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
    int crit = -1;
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, &crit, NULL);
    assert_int_equal(crit, 1);
    GENERAL_NAMES_free(gens);
    SSL_CTX_free(ctx);
    sl_certcache_free(c);
}

static void test_invalid_hosts_refused(void **state)
{
    sl_certcache_t *c = new_cache(0);
    const char *bad[] = {"",       "a..b", "*.x", "a b", "ex_ample.com", "\xc3\xa9.com",
                         "0x7f.1", "[::1]"};
    for (size_t i = 0; i < COUNT(bad); i++) {
        const char *err = NULL;
        assert_null(sl_certcache_get(c, bad[i], &err));
        assert_non_null(err);
    }
    const char *err = NULL;
    assert_null(sl_certcache_get_n(c, "evil.com\0x", 10, &err));
    assert_string_equal(err, "NUL byte in host name");
    assert_null(sl_certcache_get(c, NULL, &err));
    sl_certcache_stats_t st;
    sl_certcache_stats(c, &st);
    assert_int_equal(st.refused, COUNT(bad) + 2);
    assert_int_equal(st.mints, 0);
    assert_int_equal(st.entries, 0);
    sl_certcache_free(c);
}

/* -------------------------------------------------------------------- LRU */

static void test_hit_costs_no_signing(void **state)
{
    sl_certcache_t *c = new_cache(0);
    SSL_CTX *a = get_ok(c, "example.com");
    SSL_CTX *b = get_ok(c, "example.com");
    SSL_CTX *d = get_ok(c, "EXAMPLE.com.");
    assert_ptr_equal(a, b);
    assert_ptr_equal(a, d);
    sl_certcache_stats_t st;
    sl_certcache_stats(c, &st);
    assert_int_equal(st.mints, 1);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.entries, 1);
    /* A different host is a different leaf with the same (shared) key. */
    SSL_CTX *e = get_ok(c, "example.org");
    assert_ptr_not_equal(e, a);
    assert_int_equal(X509_check_host(leaf_of(e), "example.org", 0, 0, NULL), 1);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf_of(e)), X509_get0_pubkey(leaf_of(a))), 1);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf_of(e)), X509_get0_serialNumber(leaf_of(a))),
        0);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(d);
    SSL_CTX_free(e);
    /* Leaves survive their holders' frees while cached. */
    SSL_CTX *f = get_ok(c, "example.com");
    sl_certcache_stats(c, &st);
    assert_int_equal(st.mints, 2);
    assert_int_equal(st.hits, 3);
    SSL_CTX_free(f);
    sl_certcache_free(c);
}

static void test_lru_eviction(void **state)
{
    sl_certcache_t *c = new_cache(3);
    sl_certcache_stats_t st;
    const char *hosts[] = {"a.test", "b.test", "c.test"};
    for (size_t i = 0; i < COUNT(hosts); i++)
        SSL_CTX_free(get_ok(c, hosts[i]));
    SSL_CTX_free(get_ok(c, "a.test")); /* hit: a is now the most recent */
    /* A fourth host evicts the least recently used: b. */
    SSL_CTX *held_c = get_ok(c, "c.test");
    SSL_CTX_free(get_ok(c, "d.test"));
    sl_certcache_stats(c, &st);
    assert_int_equal(st.mints, 4);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.entries, 3);
    /* a, c, d are still cached. */
    SSL_CTX_free(get_ok(c, "a.test"));
    SSL_CTX_free(get_ok(c, "c.test"));
    SSL_CTX_free(get_ok(c, "d.test"));
    sl_certcache_stats(c, &st);
    assert_int_equal(st.mints, 4);
    assert_int_equal(st.hits, 5);
    /* b is minted again, which evicts a (LRU order now a, c, d -> a oldest). */
    SSL_CTX_free(get_ok(c, "b.test"));
    sl_certcache_stats(c, &st);
    assert_int_equal(st.mints, 5);
    assert_int_equal(st.evictions, 2);
    SSL_CTX_free(get_ok(c, "c.test"));
    SSL_CTX_free(get_ok(c, "a.test"));
    sl_certcache_stats(c, &st);
    assert_int_equal(st.mints, 6);
    assert_int_equal(st.entries, 3);
    /* A context evicted while held stays usable. */
    for (int i = 0; i < 5; i++) {
        char h[32];
        snprintf(h, sizeof(h), "evict%d.test", i);
        SSL_CTX_free(get_ok(c, h));
    }
    assert_int_equal(X509_check_host(leaf_of(held_c), "c.test", 0, 0, NULL), 1);
    SSL *ssl = SSL_new(held_c);
    assert_non_null(ssl);
    SSL_free(ssl);
    SSL_CTX_free(held_c);
    sl_certcache_free(c);
}

static void test_expiry_remint(void **state)
{
    sl_certcache_t *c = new_cache(0);
    time_t t0 = time(NULL);
    g_now = t0;
    sl_certcache_set_clock(c, fake_now, NULL);
    sl_certcache_set_lifetime(c, 7200); /* refresh margin: 1 h */
    SSL_CTX *first = get_ok(c, "example.com");
    assert_int_equal(sl_tls_asn1_time(X509_get0_notAfter(leaf_of(first))), t0 + 7200);

    g_now = t0 + 3599;
    SSL_CTX *same = get_ok(c, "example.com");
    assert_ptr_equal(same, first);
    SSL_CTX_free(same);

    g_now = t0 + 3600; /* within 1 h of notAfter: re-minted */
    SSL_CTX *fresh = get_ok(c, "example.com");
    assert_ptr_not_equal(fresh, first);
    assert_int_equal(sl_tls_asn1_time(X509_get0_notAfter(leaf_of(fresh))), g_now + 7200);
    assert_int_equal(sl_tls_asn1_time(X509_get0_notBefore(leaf_of(fresh))), g_now - 3600);
    sl_certcache_stats_t st;
    sl_certcache_stats(c, &st);
    assert_int_equal(st.mints, 2);
    assert_int_equal(st.remints, 1);
    assert_int_equal(st.entries, 1);
    /* The old context, still held, still works. */
    assert_int_equal(X509_check_host(leaf_of(first), "example.com", 0, 0, NULL), 1);
    SSL_CTX_free(first);
    SSL_CTX_free(fresh);

    /* Short lifetimes shrink the margin to half the lifetime. */
    sl_certcache_set_lifetime(c, 600);
    g_now = t0;
    SSL_CTX *s = get_ok(c, "short.test");
    assert_int_equal(sl_tls_asn1_time(X509_get0_notAfter(leaf_of(s))), t0 + 600);
    g_now = t0 + 299;
    SSL_CTX *s2 = get_ok(c, "short.test");
    assert_ptr_equal(s, s2);
    g_now = t0 + 300;
    SSL_CTX *s3 = get_ok(c, "short.test");
    assert_ptr_not_equal(s, s3);
    SSL_CTX_free(s);
    SSL_CTX_free(s2);
    SSL_CTX_free(s3);

    /* Lifetimes are clamped to [60 s, 7 d]. */
    sl_certcache_set_lifetime(c, 1);
    g_now = t0;
    s = get_ok(c, "clamp-low.test");
    assert_int_equal(sl_tls_asn1_time(X509_get0_notAfter(leaf_of(s))), t0 + 60);
    SSL_CTX_free(s);
    sl_certcache_set_lifetime(c, 365L * 86400);
    s = get_ok(c, "clamp-high.test");
    assert_int_equal(sl_tls_asn1_time(X509_get0_notAfter(leaf_of(s))), t0 + 7 * 86400);
    SSL_CTX_free(s);
    sl_certcache_free(c);
}

static void test_leaf_never_outlives_ca(void **state)
{
    sl_certcache_t *c = new_cache(0);
    time_t ca_end = sl_ca_not_after(g_ca);
    g_now = ca_end - 100;
    sl_certcache_set_clock(c, fake_now, NULL);
    SSL_CTX *ctx = get_ok(c, "late.test");
    assert_int_equal(sl_tls_asn1_time(X509_get0_notAfter(leaf_of(ctx))), ca_end);
    SSL_CTX_free(ctx);
    g_now = ca_end;
    const char *err = NULL;
    assert_null(sl_certcache_get(c, "later.test", &err));
    assert_string_equal(err, "the interception CA has expired");
    sl_certcache_free(c);
}

/* -------------------------------------------------------------- threads */

typedef struct worker {
    sl_certcache_t *c;
    SSL_CTX *base;
    int id;
    int bad;
} worker_t;

static void *worker_run(void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < 300; i++) {
        char host[32];
        snprintf(host, sizeof(host), "h%d.test", (i * 7 + w->id * 13) % 40);
        const char *err = NULL;
        if (w->id % 2 == 1) {
            /* Odd workers take the per-connection path. */
            SSL *ssl = SSL_new(w->base);
            if (sl_certcache_use(w->c, ssl, host, &err) != 0 ||
                X509_check_host(SSL_get_certificate(ssl), host, 0, 0, NULL) != 1)
                w->bad++;
            SSL_free(ssl);
            continue;
        }
        SSL_CTX *ctx = sl_certcache_get(w->c, host, &err);
        if (ctx == NULL || X509_check_host(SSL_CTX_get0_certificate(ctx), host, 0, 0, NULL) != 1)
            w->bad++;
        SSL_CTX_free(ctx);
    }
    return NULL;
}

static void test_threads(void **state)
{
    sl_certcache_t *c = new_cache(16);
    SSL_CTX *base = sl_certcache_base_ctx(c);
    worker_t w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){c, base, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    sl_certcache_stats_t st;
    sl_certcache_stats(c, &st);
    assert_int_equal(st.hits + st.mints, 4 * 300);
    assert_true(st.entries <= 16);
    assert_int_equal(st.mints - st.races - st.remints, st.evictions + st.entries);
    SSL_CTX_free(base);
    sl_certcache_free(c);
}

/* ------------------------------------------------------------ handshake */

typedef struct hs {
    SSL *client;
    SSL *server;
} hs_t;

/* Client SSL trusting `trust` (NULL: the test CA), expecting `name`. */
static SSL *make_client(SSL_CTX **cctx, X509 *trust, const char *sni, const char *name,
                        const unsigned char *alpn, unsigned alpn_len, int max_version)
{
    *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(*cctx);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(*cctx), trust ? trust : sl_ca_cert(g_ca));
    SSL_CTX_set_verify(*cctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_min_proto_version(*cctx, TLS1_VERSION);
    if (max_version != 0)
        SSL_CTX_set_max_proto_version(*cctx, max_version);
    /* Let an old-protocol client through the client-side seclevel so that
     * the refusal under test is the server's. */
    if (max_version != 0 && max_version < TLS1_2_VERSION)
        SSL_CTX_set_security_level(*cctx, 0);
    SSL *ssl = SSL_new(*cctx);
    if (sni != NULL)
        SSL_set_tlsext_host_name(ssl, sni);
    if (name != NULL) {
        if (strchr(name, ':') != NULL || (name[0] >= '0' && name[0] <= '9'))
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
        else
            SSL_set1_host(ssl, name);
    }
    if (alpn != NULL)
        SSL_set_alpn_protos(ssl, alpn, alpn_len);
    SSL_set_connect_state(ssl);
    return ssl;
}

/* Run the handshake over a BIO pair; 1 if both ends completed. */
static int handshake(SSL *client, SSL *server)
{
    BIO *cb = NULL, *sb = NULL;
    assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
    SSL_set_bio(client, cb, cb);
    SSL_set_bio(server, sb, sb);
    SSL_set_accept_state(server);
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 50 && !(cdone && sdone); i++) {
        if (!cdone) {
            int r = SSL_do_handshake(client);
            if (r == 1)
                cdone = 1;
            else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ)
                return 0;
        }
        if (!sdone) {
            int r = SSL_do_handshake(server);
            if (r == 1)
                sdone = 1;
            else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ)
                return 0;
        }
    }
    return cdone && sdone;
}

static const unsigned char ALPN_H2_H11[] = "\x02h2\x08http/1.1";
static const unsigned char ALPN_H2[] = "\x02h2";

static void test_handshake_end_to_end(void **state)
{
    sl_certcache_t *c = new_cache(0);
    SSL_CTX *sctx = get_ok(c, "www.example.com");
    SSL_CTX *cctx = NULL;
    SSL *client = make_client(&cctx, NULL, "www.example.com", "www.example.com", ALPN_H2_H11,
                              sizeof(ALPN_H2_H11) - 1, 0);
    SSL *server = SSL_new(sctx);
    int ok = handshake(client, server);
    if (!ok)
        ERR_print_errors_fp(stderr);
    assert_int_equal(ok, 1);
    assert_int_equal(SSL_get_verify_result(client), X509_V_OK);
    assert_int_equal(SSL_version(client), TLS1_3_VERSION);
    assert_string_equal(SSL_get_servername(server, TLSEXT_NAMETYPE_host_name), "www.example.com");
    const unsigned char *sel = NULL;
    unsigned int sel_len = 0;
    SSL_get0_alpn_selected(client, &sel, &sel_len);
    assert_int_equal(sel_len, 8);
    assert_memory_equal(sel, "http/1.1", 8);
    SSL_get0_alpn_selected(server, &sel, &sel_len);
    assert_int_equal(sel_len, 8);
    /* The client saw the leaf alone, and verified it against the CA. */
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(client);
    assert_int_equal(sk_X509_num(chain), 1);
    assert_int_equal(SSL_get_verify_result(client), X509_V_OK);

    /* Data flows both ways; the server issues no session ticket. */
    char buf[64];
    static const char req[] = "GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n";
    assert_int_equal(SSL_write(client, req, sizeof(req) - 1), sizeof(req) - 1);
    assert_int_equal(SSL_read(server, buf, sizeof(buf)), sizeof(req) - 1);
    assert_memory_equal(buf, req, sizeof(req) - 1);
    assert_int_equal(SSL_write(server, "HTTP/1.1 204 \r\n\r\n", 17), 17);
    assert_int_equal(SSL_read(client, buf, sizeof(buf)), 17);
    assert_int_equal(SSL_SESSION_has_ticket(SSL_get0_session(client)), 0);
    assert_int_equal(SSL_session_reused(client), 0);

    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);

    /* TLS 1.2 client: an ECDHE-ECDSA AEAD suite, ALPN still http/1.1. */
    client = make_client(&cctx, NULL, "www.example.com", "www.example.com", ALPN_H2_H11,
                         sizeof(ALPN_H2_H11) - 1, TLS1_2_VERSION);
    server = SSL_new(sctx);
    assert_int_equal(handshake(client, server), 1);
    assert_int_equal(SSL_version(client), TLS1_2_VERSION);
    assert_non_null(strstr(SSL_get_cipher_name(client), "ECDHE-ECDSA"));
    SSL_get0_alpn_selected(client, &sel, &sel_len);
    assert_int_equal(sel_len, 8);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);

    /* A client offering only h2 gets no ALPN (and may fall back). */
    client = make_client(&cctx, NULL, "www.example.com", "www.example.com", ALPN_H2,
                         sizeof(ALPN_H2) - 1, 0);
    server = SSL_new(sctx);
    assert_int_equal(handshake(client, server), 1);
    SSL_get0_alpn_selected(client, &sel, &sel_len);
    assert_int_equal(sel_len, 0);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    sl_certcache_free(c);
}

static void test_handshake_refusals(void **state)
{
    sl_certcache_t *c = new_cache(0);
    SSL_CTX *sctx = get_ok(c, "www.example.com");
    SSL_CTX *cctx = NULL;

    /* TLS 1.1 is refused. */
    SSL *client =
        make_client(&cctx, NULL, "www.example.com", "www.example.com", NULL, 0, TLS1_1_VERSION);
    SSL *server = SSL_new(sctx);
    assert_int_equal(handshake(client, server), 0);
    ERR_clear_error();
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);

    /* A client expecting another name rejects the leaf. */
    client = make_client(&cctx, NULL, "other.example.com", "other.example.com", NULL, 0, 0);
    server = SSL_new(sctx);
    assert_int_equal(handshake(client, server), 0);
    assert_int_equal(SSL_get_verify_result(client), X509_V_ERR_HOSTNAME_MISMATCH);
    ERR_clear_error();
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);

    /* A client that trusts another CA rejects the chain. */
    sl_buf_t err = {0};
    sl_ca_t *stranger = sl_ca_generate("stranger", &err);
    client =
        make_client(&cctx, sl_ca_cert(stranger), "www.example.com", "www.example.com", NULL, 0, 0);
    server = SSL_new(sctx);
    assert_int_equal(handshake(client, server), 0);
    long vr = SSL_get_verify_result(client);
    assert_true(vr == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                vr == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
    ERR_clear_error();
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    sl_ca_unref(stranger);
    sl_buf_free(&err);
    SSL_CTX_free(sctx);

    /* An IP leaf, verified as an IP by the client. */
    sctx = get_ok(c, "127.0.0.1");
    client = make_client(&cctx, NULL, NULL, "127.0.0.1", NULL, 0, 0);
    server = SSL_new(sctx);
    assert_int_equal(handshake(client, server), 1);
    assert_int_equal(SSL_get_verify_result(client), X509_V_OK);
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    sl_certcache_free(c);
}

static void test_base_ctx_use(void **state)
{
    sl_certcache_t *c = new_cache(0);
    SSL_CTX *base = sl_certcache_base_ctx(c);
    assert_null(SSL_CTX_get0_certificate(base));
    assert_int_equal(SSL_CTX_get_min_proto_version(base), TLS1_2_VERSION);

    /* Two hosts on connections from the one base context. */
    const char *hosts[] = {"one.example", "two.example"};
    for (size_t i = 0; i < COUNT(hosts); i++) {
        SSL *server = SSL_new(base);
        const char *err = NULL;
        assert_int_equal(sl_certcache_use(c, server, hosts[i], &err), 0);
        SSL_CTX *cctx = NULL;
        SSL *client =
            make_client(&cctx, NULL, hosts[i], hosts[i], ALPN_H2_H11, sizeof(ALPN_H2_H11) - 1, 0);
        int ok = handshake(client, server);
        if (!ok)
            ERR_print_errors_fp(stderr);
        assert_int_equal(ok, 1);
        assert_int_equal(SSL_get_verify_result(client), X509_V_OK);
        assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(client)), 1);
        const unsigned char *sel = NULL;
        unsigned int sel_len = 0;
        SSL_get0_alpn_selected(client, &sel, &sel_len);
        assert_int_equal(sel_len, 8);
        assert_memory_equal(sel, "http/1.1", 8);
        SSL_free(client);
        SSL_free(server);
        SSL_CTX_free(cctx);
    }
    /* The base context itself still presents nothing. */
    assert_null(SSL_CTX_get0_certificate(base));

    /* use then get: one leaf, one mint; get builds the context lazily. */
    SSL *s1 = SSL_new(base);
    const char *err = NULL;
    assert_int_equal(sl_certcache_use(c, s1, "three.example", &err), 0);
    SSL_CTX *ctx = get_ok(c, "three.example");
    assert_int_equal(X509_cmp(SSL_get_certificate(s1), leaf_of(ctx)), 0);
    SSL_CTX *ctx2 = get_ok(c, "three.example");
    assert_ptr_equal(ctx, ctx2);
    sl_certcache_stats_t st;
    sl_certcache_stats(c, &st);
    assert_int_equal(st.mints, 3);
    assert_int_equal(st.hits, 2);
    SSL_free(s1);
    SSL_CTX_free(ctx);
    SSL_CTX_free(ctx2);

    /* Invalid host: refused, the SSL untouched. */
    SSL *s2 = SSL_new(base);
    assert_int_equal(sl_certcache_use_n(c, s2, "evil.com\0x", 10, &err), -1);
    assert_string_equal(err, "NUL byte in host name");
    assert_null(SSL_get_certificate(s2));
    SSL_free(s2);

    /* An SSL whose context holds another key cannot take the leaf. */
    SSL_CTX *other = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_int_equal(SSL_CTX_use_PrivateKey(other, k), 1);
    SSL *s3 = SSL_new(other);
    assert_int_equal(sl_certcache_use(c, s3, "one.example", &err), -1);
    SSL_free(s3);
    SSL_CTX_free(other);
    EVP_PKEY_free(k);
    SSL_CTX_free(base);
    sl_certcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_valid),
        cmocka_unit_test(test_host_canon),
        cmocka_unit_test(test_leaf_for_name),
        cmocka_unit_test(test_leaf_for_ip),
        cmocka_unit_test(test_leaf_long_name),
        cmocka_unit_test(test_invalid_hosts_refused),
        cmocka_unit_test(test_hit_costs_no_signing),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_expiry_remint),
        cmocka_unit_test(test_leaf_never_outlives_ca),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_handshake_end_to_end),
        cmocka_unit_test(test_handshake_refusals),
        cmocka_unit_test(test_base_ctx_use),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
