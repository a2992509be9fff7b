/* libFuzzer driver for the certificate host check (the SNI / CONNECT host
 * that a sandbox controls) and for leaf minting of every host it accepts.
 * Invariants: canonicalisation is idempotent and only yields hosts the
 * strict check accepts; every accepted host mints a leaf that chains to the
 * CA and matches exactly that host. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "tls/certcache.h"

/* Not CHECK(): the fuzz build is RelWithDebInfo, where NDEBUG is set. */
#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x);                  \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static sl_ca_t *g_ca;
static sl_certcache_t *g_cache;
static X509_STORE *g_store;

static void init(void)
{
    sl_buf_t err = {0};
    g_ca = sl_ca_generate("fuzz CA", &err);
    CHECK(g_ca != NULL);
    g_cache = sl_certcache_new(g_ca, 64, &err);
    CHECK(g_cache != NULL);
    g_store = X509_STORE_new();
    X509_STORE_add_cert(g_store, sl_ca_cert(g_ca));
    sl_buf_free(&err);
}

static void check_leaf(const char *host, bool is_ip)
{
    const char *err = NULL;
    SSL_CTX *ctx = sl_certcache_get(g_cache, host, &err);
    CHECK(ctx != NULL);
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (is_ip)
        CHECK(X509_check_ip_asc(leaf, host, 0) == 1);
    else
        CHECK(X509_check_host(leaf, host, strlen(host), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                              NULL) == 1);
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    X509_STORE_CTX_init(sc, g_store, leaf, NULL);
    X509_STORE_CTX_set_purpose(sc, X509_PURPOSE_SSL_SERVER);
    CHECK(X509_verify_cert(sc) == 1);
    X509_STORE_CTX_free(sc);
    SSL_CTX_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (g_ca == NULL)
        init();
    const char *p = (const char *)data;
    const char *why = sl_tls_host_problem(p, size);

    char canon[SL_TLS_HOST_MAX + 1];
    bool is_ip = false;
    const char *reason = NULL;
    int n = sl_tls_host_canon(p, size, canon, sizeof(canon), &is_ip, &reason);
    if (n < 0) {
        CHECK(reason != NULL);
        /* A strictly valid host always canonicalises (to itself). */
        CHECK(why != NULL);
        return 0;
    }
    CHECK((size_t)n == strlen(canon));
    CHECK(sl_tls_host_problem(canon, (size_t)n) == NULL);
    if (why == NULL)
        CHECK((size_t)n == size && memcmp(canon, p, size) == 0);
    /* Idempotent. */
    char again[SL_TLS_HOST_MAX + 1];
    bool again_ip = !is_ip;
    CHECK(sl_tls_host_canon(canon, (size_t)n, again, sizeof(again), &again_ip, &reason) == n);
    CHECK(strcmp(again, canon) == 0 && again_ip == is_ip);
    check_leaf(canon, is_ip);
    return 0;
}
