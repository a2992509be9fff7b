/* Micro-benchmark of leaf minting and cache hits.
 *
 * Build (after the normal build in ./build):
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/bench_certcache.c build/libsluice_core.a \
 *      -lssl -lcrypto -lpthread -o build/bench_certcache
 *   build/bench_certcache [mints] [hits]
 * Prints µs per mint through sl_certcache_get (sign a leaf + build its
 * SSL_CTX) and through sl_certcache_use (sign only), the cost of a bare
 * SSL_CTX_new for comparison, ns per cache hit on one thread and on two
 * threads sharing the cache, the per-connection cost of the use path, and
 * µs per full TLS 1.3 handshake with a cached leaf (client and server both
 * run here, so this is the sum of both ends), then the CPU time of each end
 * with the chain sluice sends (the leaf alone) and with the CA added. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "tls/certcache.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct hitter {
    sl_certcache_t *c;
    long n;
} hitter_t;

static void *hit_loop(void *arg)
{
    hitter_t *h = arg;
    const char *err = NULL;
    for (long i = 0; i < h->n; i++) {
        char host[32];
        snprintf(host, sizeof(host), "host%ld.bench.test", i & 63);
        SSL_CTX *ctx = sl_certcache_get(h->c, host, &err);
        if (ctx == NULL)
            abort();
        SSL_CTX_free(ctx);
    }
    return NULL;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* As pump, adding the CPU time spent in each end to *ct and *st. */
static int pump_timed(SSL *client, SSL *server, double *ct, double *st)
{
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 20 && !(cdone && sdone); i++) {
        double t0 = cpu_s();
        if (!cdone && SSL_do_handshake(client) == 1)
            cdone = 1;
        double t1 = cpu_s();
        if (!sdone && SSL_do_handshake(server) == 1)
            sdone = 1;
        *ct += t1 - t0;
        *st += cpu_s() - t1;
    }
    return cdone && sdone;
}

/* A client and a server session joined by a BIO pair, the client asking
 * for (and checking) the bench host name. */
static void new_pair(SSL_CTX *cctx, SSL_CTX *sctx, SSL **cl, SSL **sv)
{
    *cl = SSL_new(cctx);
    *sv = SSL_new(sctx);
    BIO *cb, *sb;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(*cl, cb, cb);
    SSL_set_bio(*sv, sb, sb);
    SSL_set_tlsext_host_name(*cl, "hs.bench.test");
    SSL_set1_host(*cl, "hs.bench.test");
    SSL_set_connect_state(*cl);
    SSL_set_accept_state(*sv);
}

static int pump(SSL *client, SSL *server)
{
    int cdone = 0, sdone = 0;
    for (int i = 0; i < 20 && !(cdone && sdone); i++) {
        if (!cdone && SSL_do_handshake(client) == 1)
            cdone = 1;
        if (!sdone && SSL_do_handshake(server) == 1)
            sdone = 1;
    }
    return cdone && sdone;
}

int main(int argc, char **argv)
{
    long mints = argc > 1 ? atol(argv[1]) : 2000;
    long hits = argc > 2 ? atol(argv[2]) : 2000000;
    sl_buf_t err = {0};
    sl_ca_t *ca = sl_ca_generate("bench CA", &err);
    sl_certcache_t *c = sl_certcache_new(ca, (size_t)mints + 64, &err);
    if (ca == NULL || c == NULL) {
        fprintf(stderr, "%s", sl_buf_cstr(&err));
        return 1;
    }
    const char *e = NULL;

    double t = now_s();
    for (long i = 0; i < mints; i++) {
        char host[48];
        snprintf(host, sizeof(host), "leaf%ld.mint.bench.test", i);
        SSL_CTX *ctx = sl_certcache_get(c, host, &e);
        if (ctx == NULL)
            abort();
        SSL_CTX_free(ctx);
    }
    double mint_us = (now_s() - t) / (double)mints * 1e6;

    SSL_CTX *base = sl_certcache_base_ctx(c);
    t = now_s();
    for (long i = 0; i < mints; i++) {
        char host[48];
        snprintf(host, sizeof(host), "leaf%ld.use.bench.test", i);
        SSL *ssl = SSL_new(base);
        if (sl_certcache_use(c, ssl, host, &e) != 0)
            abort();
        SSL_free(ssl);
    }
    double use_mint_us = (now_s() - t) / (double)mints * 1e6;

    t = now_s();
    for (long i = 0; i < mints; i++)
        SSL_CTX_free(SSL_CTX_new(TLS_server_method()));
    double ctx_us = (now_s() - t) / (double)mints * 1e6;

    hitter_t h1 = {c, hits};
    hit_loop(&h1); /* warm: mints the 64 hit hosts */
    t = now_s();
    hit_loop(&h1);
    double hit_ns = (now_s() - t) / (double)hits * 1e9;

    hitter_t h2[2] = {{c, hits}, {c, hits}};
    pthread_t th[2];
    t = now_s();
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, hit_loop, &h2[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double hit2_ns = (now_s() - t) / (double)(2 * hits) * 1e9;

    /* A hit on the per-connection path: SSL_new(base) + use + SSL_free. */
    long uses = hits / 10;
    t = now_s();
    for (long i = 0; i < uses; i++) {
        SSL *ssl = SSL_new(base);
        if (sl_certcache_use(c, ssl, "host1.bench.test", &e) != 0)
            abort();
        SSL_free(ssl);
    }
    double use_hit_ns = (now_s() - t) / (double)uses * 1e9;
    t = now_s();
    for (long i = 0; i < uses; i++)
        SSL_free(SSL_new(base));
    double ssl_new_ns = (now_s() - t) / (double)uses * 1e9;

    /* Full handshakes, client and server in this thread over a BIO pair. */
    SSL_CTX *sctx = sl_certcache_get(c, "hs.bench.test", &e);
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), sl_ca_cert(ca));
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    long hs = mints;
    t = now_s();
    for (long i = 0; i < hs; i++) {
        SSL *cl, *sv;
        new_pair(cctx, sctx, &cl, &sv);
        if (!pump(cl, sv))
            abort();
        SSL_free(cl);
        SSL_free(sv);
    }
    double hs_us = (now_s() - t) / (double)hs * 1e6;

    /* The same handshake with the CA certificate added to the chain (what
     * sluice sent before it sent the leaf alone), interleaved in blocks of
     * 50 with leaf-only ones so that machine noise hits both alike; CPU
     * time per end. */
    double ct[2] = {0, 0}, st2[2] = {0, 0};
    long per[2] = {0, 0};
    for (long i = 0; i < 2 * hs; i++) {
        int with_ca = (int)((i / 50) & 1);
        SSL *cl, *sv;
        new_pair(cctx, sctx, &cl, &sv);
        if (with_ca && SSL_add1_chain_cert(sv, sl_ca_cert(ca)) != 1)
            abort();
        if (!pump_timed(cl, sv, &ct[with_ca], &st2[with_ca]))
            abort();
        if (sk_X509_num(SSL_get_peer_cert_chain(cl)) != 1 + with_ca)
            abort();
        per[with_ca]++;
        SSL_free(cl);
        SSL_free(sv);
    }

    sl_certcache_stats_t st;
    sl_certcache_stats(c, &st);
    printf("mint (sign leaf + SSL_CTX):   %8.1f us  (%ld leaves)\n", mint_us, mints);
    printf("  of which bare SSL_CTX_new:  %8.1f us\n", ctx_us);
    printf("mint via use (sign leaf only):%8.1f us\n", use_mint_us);
    printf("hit, 1 thread:                %8.1f ns  (%ld gets)\n", hit_ns, hits);
    printf("hit, 2 threads (per get):     %8.1f ns\n", hit2_ns);
    printf("use hit (SSL_new+use+free):   %8.1f ns  (bare SSL_new+free %.1f ns)\n", use_hit_ns,
           ssl_new_ns);
    printf("TLS 1.3 handshake (both ends):%8.1f us  (%ld, cached leaf)\n", hs_us, hs);
    printf("  CPU per end, chain = leaf:  client %7.1f us  server %7.1f us\n",
           ct[0] / (double)per[0] * 1e6, st2[0] / (double)per[0] * 1e6);
    printf("  chain = leaf + CA:          client %7.1f us  server %7.1f us\n",
           ct[1] / (double)per[1] * 1e6, st2[1] / (double)per[1] * 1e6);
    printf("stats: mints=%llu hits=%llu races=%llu entries=%zu\n", (unsigned long long)st.mints,
           (unsigned long long)st.hits, (unsigned long long)st.races, st.entries);
    SSL_CTX_free(sctx);
    SSL_CTX_free(cctx);
    SSL_CTX_free(base);
    sl_certcache_free(c);
    sl_ca_unref(ca);
    sl_buf_free(&err);
    return 0;
}
