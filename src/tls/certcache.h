/* Leaf certificates for intercepted TLS: minted on demand per host name,
 * signed by the interception CA, cached in an LRU of ready server-side
 * SSL_CTXs so a repeat host costs no signing.
 *
 * All leaves of one cache share one ECDSA P-256 key generated when the cache
 * is created (what HAProxy's ssl_gencert does): minting is then one
 * signature, not a key generation. Thread-safe: worker threads may call
 * sl_certcache_get concurrently. */
#ifndef SLUICE_TLS_CERTCACHE_H
#define SLUICE_TLS_CERTCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "core/buf.h"
#include "tls/ca.h"
#include "tls/hostcheck.h"

typedef struct sl_certcache sl_certcache_t;

/* Default number of hosts kept. */
#define SL_CERTCACHE_DEFAULT_CAPACITY 1024
/* Default leaf lifetime from now (notBefore is backdated a further hour). */
#define SL_CERTCACHE_DEFAULT_LIFETIME (24 * 3600)

/* Counters, for tests and metrics. A cache entry holds the leaf; its
 * SSL_CTX is built on the first sl_certcache_get for the host, so a host
 * only ever used through sl_certcache_use never costs an SSL_CTX_new. */
typedef struct sl_certcache_stats {
    uint64_t hits;      /* gets answered from the cache */
    uint64_t mints;     /* leaves signed (each a CA signature) */
    uint64_t remints;   /* of those, replacing an entry near its notAfter */
    uint64_t evictions; /* entries dropped to stay within capacity */
    uint64_t refused;   /* gets refused because the host was invalid */
    uint64_t failures;  /* mints or context builds that failed (OpenSSL error) */
    uint64_t races;     /* mints thrown away: another thread minted first */
    size_t entries;     /* hosts cached now */
} sl_certcache_stats_t;

/* A cache whose leaves `ca` signs (the cache takes a reference), holding at
 * most `capacity` hosts (0 means SL_CERTCACHE_DEFAULT_CAPACITY). Generates
 * the shared leaf key. Returns NULL with a message in `err` on failure. */
sl_certcache_t *sl_certcache_new(sl_ca_t *ca, size_t capacity, sl_buf_t *err);

/* Set how long new leaves are valid from now, in seconds (60 .. 7 days;
 * out-of-range values are clamped; default 24 h). A leaf never outlives the
 * CA. Entries are re-minted once within min(1 h, lifetime / 2) of their
 * notAfter. Affects leaves minted after the call. */
void sl_certcache_set_lifetime(sl_certcache_t *c, long seconds);

/* Replace the clock (tests): `now(arg)` is called for every get and mint
 * instead of time(NULL). Call before any get. */
void sl_certcache_set_clock(sl_certcache_t *c, time_t (*now)(void *arg), void *arg);

/* A server-side SSL_CTX presenting a leaf for `host` (as the client sent it:
 * case, one trailing dot and IPv6 spelling are canonicalised by
 * sl_tls_host_canon, then the host is validated; a refused host never
 * reaches a certificate). The leaf: subject CN=host (omitted, with the SAN
 * critical, for hosts over 64 bytes), SAN DNS:host or IP:addr, EKU
 * serverAuth, keyUsage digitalSignature, basicConstraints CA:FALSE,
 * authorityKeyIdentifier, random 128-bit serial, notBefore now - 1 h,
 * notAfter now + lifetime (clamped to the CA's notAfter); the leaf is sent
 * alone (no chain certificates, SSL_MODE_NO_AUTO_CHAIN: the client has the
 * CA as its trust anchor). The context: TLS 1.2 and 1.3 only, ECDHE-ECDSA AEAD
 * suites for 1.2, no session tickets and no session cache (every
 * intercepted connection is a full handshake; nothing to leak across
 * sandboxes), no renegotiation, and an ALPN callback that selects
 * "http/1.1" when offered and otherwise negotiates no ALPN (so h2-capable
 * clients fall back to HTTP/1.1).
 * Returns a new reference (the caller calls SSL_CTX_free), or NULL with
 * `*err` set to a static reason (invalid host, or minting failed; details
 * of an OpenSSL failure are logged). */
SSL_CTX *sl_certcache_get(sl_certcache_t *c, const char *host, const char **err);

/* As sl_certcache_get for a host given as a view (ptr, len) into the
 * caller's buffer, e.g. the CONNECT authority's host. An embedded NUL or
 * any other invalid byte is refused. */
SSL_CTX *sl_certcache_get_n(sl_certcache_t *c, const char *host, size_t n, const char **err);

/* The cheaper path (see docs/tls.md, "Two ways to use the cache"): one
 * shared server context with every setting of sl_certcache_get's contexts,
 * the leaf key, but no leaf. Create each intercepted
 * connection's SSL from it, then call sl_certcache_use. Returns a new
 * reference (SSL_CTX_free it). Per new host this saves an SSL_CTX_new,
 * which in OpenSSL 3.0 costs several times the leaf signature. */
SSL_CTX *sl_certcache_base_ctx(sl_certcache_t *c);

/* Set the leaf for `host` (from the cache, minted on a miss; same host
 * rules and leaf as sl_certcache_get) on `ssl`, which must come from
 * sl_certcache_base_ctx of this cache. Call before the handshake starts.
 * Returns 0, or -1 with `*err` set to a static reason (invalid host,
 * minting failed, or the SSL has another key). */
int sl_certcache_use(sl_certcache_t *c, SSL *ssl, const char *host, const char **err);

/* As sl_certcache_use for a host given as a view (ptr, len). */
int sl_certcache_use_n(sl_certcache_t *c, SSL *ssl, const char *host, size_t n, const char **err);

/* A snapshot of the counters. */
void sl_certcache_stats(sl_certcache_t *c, sl_certcache_stats_t *out);

/* Free the cache, its entries' references and the leaf key, and drop the
 * CA reference. SSL_CTXs returned earlier stay valid until their holders
 * free them. NULL is a no-op. */
void sl_certcache_free(sl_certcache_t *c);

#endif
