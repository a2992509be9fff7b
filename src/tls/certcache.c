#include "tls/certcache.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/log.h"

#define LIFETIME_MIN 60L
#define LIFETIME_MAX (7L * 86400)
/* TLS 1.2 suites: the leaf key is ECDSA, so only ECDSA suites can work;
 * AEAD with forward secrecy only. TLS 1.3 keeps OpenSSL's default list. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
#define GROUPS "X25519:P-256:P-384"

typedef struct cc_entry {
    struct cc_entry *prev, *next; /* LRU list, most recent at head */
    struct cc_entry *hnext;       /* hash chain */
    uint64_t hash;                /* of host */
    X509 *leaf;                   /* the cache's reference */
    SSL_CTX *ctx;                 /* context presenting leaf; NULL until a get asks */
    time_t refresh_at;            /* re-mint at or after this time */
    size_t hlen;                  /* strlen(host) */
    char host[];                  /* canonical host, NUL-terminated */
} cc_entry_t;

struct sl_certcache {
    sl_ca_t *ca;        /* signer (one reference) */
    EVP_PKEY *leaf_key; /* shared by every leaf */
    /* Extensions identical on every leaf, encoded once. */
    X509_EXTENSION *ext_bc, *ext_ku, *ext_eku, *ext_aki;
    SSL_CTX *base;              /* settings + leaf key, no leaf */
    long lifetime;              /* seconds from now to notAfter */
    time_t (*now)(void *arg);   /* clock */
    void *now_arg;              /* its argument */
    uint64_t seed;              /* hash seed, random per cache */
    pthread_mutex_t mu;         /* guards everything below */
    cc_entry_t **buckets;       /* nbuckets chains */
    size_t nbuckets;            /* power of two */
    cc_entry_t *head, *tail;    /* LRU ends */
    size_t capacity;            /* max entries */
    sl_certcache_stats_t stats; /* counters; entries = live count */
};

static time_t wall_clock(void *arg)
{
    (void)arg;
    return time(NULL);
}

/* Seeded FNV-1a: the host is attacker-chosen, the seed is not. Chains are
 * bounded by the capacity anyway. */
static uint64_t host_hash(uint64_t seed, const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

static X509_EXTENSION *make_ext(X509V3_CTX *ctx, int nid, const char *value)
{
    return X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
}

static SSL_CTX *make_ctx(sl_certcache_t *c, X509 *leaf);

sl_certcache_t *sl_certcache_new(sl_ca_t *ca, size_t capacity, sl_buf_t *err)
{
    sl_certcache_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        sl_buf_append_str(err, "out of memory creating the certificate cache\n");
        return NULL;
    }
    c->capacity = capacity ? capacity : SL_CERTCACHE_DEFAULT_CAPACITY;
    c->nbuckets = 16;
    while (c->nbuckets < c->capacity && c->nbuckets < ((size_t)1 << 30))
        c->nbuckets <<= 1;
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (c->buckets == NULL) {
        sl_buf_append_str(err, "out of memory creating the certificate cache\n");
        free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    c->ca = sl_ca_ref(ca);
    c->lifetime = SL_CERTCACHE_DEFAULT_LIFETIME;
    c->now = wall_clock;
    if (RAND_bytes((unsigned char *)&c->seed, sizeof(c->seed)) != 1) {
        sl_tls_err(err, "cannot seed the certificate cache");
        goto fail;
    }
    c->leaf_key = EVP_EC_gen("P-256");
    if (c->leaf_key == NULL) {
        sl_tls_err(err, "cannot generate the leaf key (ECDSA P-256)");
        goto fail;
    }
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, sl_ca_cert(ca), NULL, NULL, NULL, 0);
    c->ext_bc = make_ext(&v3, NID_basic_constraints, "critical,CA:FALSE");
    c->ext_ku = make_ext(&v3, NID_key_usage, "critical,digitalSignature");
    c->ext_eku = make_ext(&v3, NID_ext_key_usage, "serverAuth");
    if (c->ext_bc == NULL || c->ext_ku == NULL || c->ext_eku == NULL) {
        sl_tls_err(err, "cannot encode the leaf certificate extensions");
        goto fail;
    }
    /* A CA without a subjectKeyIdentifier gets leaves without an AKI;
     * clients match by issuer name then. */
    if (X509_get0_subject_key_id(sl_ca_cert(ca)) != NULL) {
        c->ext_aki = make_ext(&v3, NID_authority_key_identifier, "keyid:always");
        if (c->ext_aki == NULL) {
            sl_tls_err(err, "cannot encode the authority key identifier");
            goto fail;
        }
    }
    c->base = make_ctx(c, NULL);
    if (c->base == NULL) {
        sl_tls_err(err, "cannot create the interception TLS context");
        goto fail;
    }
    ERR_clear_error();
    return c;
fail:
    sl_certcache_free(c);
    return NULL;
}

void sl_certcache_set_lifetime(sl_certcache_t *c, long seconds)
{
    if (seconds < LIFETIME_MIN)
        seconds = LIFETIME_MIN;
    if (seconds > LIFETIME_MAX)
        seconds = LIFETIME_MAX;
    pthread_mutex_lock(&c->mu);
    c->lifetime = seconds;
    pthread_mutex_unlock(&c->mu);
}

void sl_certcache_set_clock(sl_certcache_t *c, time_t (*now)(void *arg), void *arg)
{
    pthread_mutex_lock(&c->mu);
    c->now = now ? now : wall_clock;
    c->now_arg = now ? arg : NULL;
    pthread_mutex_unlock(&c->mu);
}

/* Select "http/1.1" if the client offers it; otherwise no ALPN at all, which
 * a client offering only "h2" takes as HTTP/1.1 or gives up on. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (len == 0 || i + 1 + len > inlen)
            break;
        if (len == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = 8;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static int add_san(X509 *x, const char *host, size_t n, bool is_ip, bool critical)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    int rc = -1;
    if (gens == NULL || gn == NULL)
        goto out;
    if (is_ip) {
        unsigned char addr[16];
        int af = memchr(host, ':', n) != NULL ? AF_INET6 : AF_INET;
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        if (os == NULL)
            goto out;
        if (inet_pton(af, host, addr) != 1 ||
            ASN1_OCTET_STRING_set(os, addr, af == AF_INET6 ? 16 : 4) != 1) {
            ASN1_OCTET_STRING_free(os);
            goto out;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
    } else {
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (s == NULL)
            goto out;
        if (ASN1_STRING_set(s, host, (int)n) != 1) {
            ASN1_IA5STRING_free(s);
            goto out;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    }
    if (sk_GENERAL_NAME_push(gens, gn) <= 0)
        goto out;
    gn = NULL;
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) == 1)
        rc = 0;
out:
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    return rc;
}

/* Build and sign the leaf for `host` (canonical, validated). */
static X509 *mint_leaf(sl_certcache_t *c, const char *host, size_t n, bool is_ip, time_t now,
                       long lifetime, time_t *not_after)
{
    X509 *x = X509_new();
    if (x == NULL)
        return NULL;
    time_t na = now + lifetime;
    if (na > sl_ca_not_after(c->ca))
        na = sl_ca_not_after(c->ca);
    /* RFC 5280 caps a CN at 64 bytes; without a subject the SAN must be
     * critical (4.2.1.6). */
    bool has_cn = n <= 64;
    if (X509_set_version(x, X509_VERSION_3) != 1)
        goto fail;
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        goto fail;
    r[0] = (unsigned char)((r[0] & 0x7f) | 0x40);
    BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL) {
        BN_free(bn);
        goto fail;
    }
    BN_free(bn);
    if (X509_set_issuer_name(x, X509_get_subject_name(sl_ca_cert(c->ca))) != 1)
        goto fail;
    if (has_cn && X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                             (const unsigned char *)host, (int)n, -1, 0) != 1)
        goto fail;
    if (ASN1_TIME_set(X509_getm_notBefore(x), now - SL_TLS_BACKDATE_SECONDS) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), na) == NULL)
        goto fail;
    if (X509_set_pubkey(x, c->leaf_key) != 1)
        goto fail;
    if (add_san(x, host, n, is_ip, !has_cn) != 0)
        goto fail;
    if (X509_add_ext(x, c->ext_bc, -1) != 1 || X509_add_ext(x, c->ext_ku, -1) != 1 ||
        X509_add_ext(x, c->ext_eku, -1) != 1 ||
        (c->ext_aki != NULL && X509_add_ext(x, c->ext_aki, -1) != 1))
        goto fail;
    if (sl_ca_sign(c->ca, x) != 0)
        goto fail;
    *not_after = na;
    return x;
fail:
    X509_free(x);
    return NULL;
}

/* A server context with the leaf key, presenting `leaf`
 * if not NULL (the base context has none: sl_certcache_use sets it per
 * connection). */
static SSL_CTX *make_ctx(sl_certcache_t *c, X509 *leaf)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
        goto fail;
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_num_tickets(ctx, 0) != 1 || SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ctx, GROUPS) != 1)
        goto fail;
    /* The chain is the leaf alone: the CA is self-signed and every client
     * that can accept the leaf has it as a trust anchor already (RFC 8446
     * 4.4.2 and RFC 5246 7.4.2 let a server omit it). Sending it costs each
     * client a certificate decode per handshake. NO_AUTO_CHAIN: without it
     * OpenSSL would try to build a chain from the (empty) store on every
     * handshake. */
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    if (SSL_CTX_use_PrivateKey(ctx, c->leaf_key) != 1)
        goto fail;
    if (leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) != 1)
        goto fail;
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static cc_entry_t *find(sl_certcache_t *c, uint64_t h, const char *host, size_t n)
{
    for (cc_entry_t *e = c->buckets[h & (c->nbuckets - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && e->hlen == n && memcmp(e->host, host, n) == 0)
            return e;
    return NULL;
}

static void lru_unlink(sl_certcache_t *c, cc_entry_t *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push_front(sl_certcache_t *c, cc_entry_t *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head != NULL)
        c->head->prev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static void hash_unlink(sl_certcache_t *c, cc_entry_t *e)
{
    cc_entry_t **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
}

/* Remove the least recently used entry; returns it for freeing outside
 * the lock. */
static cc_entry_t *evict_tail(sl_certcache_t *c)
{
    cc_entry_t *e = c->tail;
    lru_unlink(c, e);
    hash_unlink(c, e);
    c->stats.entries--;
    c->stats.evictions++;
    return e;
}

static void entry_free(cc_entry_t *e)
{
    if (e == NULL)
        return;
    SSL_CTX_free(e->ctx);
    X509_free(e->leaf);
    free(e);
}

static void count(sl_certcache_t *c, uint64_t *counter)
{
    pthread_mutex_lock(&c->mu);
    (*counter)++;
    pthread_mutex_unlock(&c->mu);
}

/* The leaf for a host, from the cache or freshly minted (and then cached).
 * Returns a new reference, or NULL with *err set. With `ctx_out`, also a
 * new reference to the entry's SSL_CTX, built (outside the lock) if the
 * entry has none yet. */
static X509 *acquire(sl_certcache_t *c, const char *host_in, size_t n_in, SSL_CTX **ctx_out,
                     const char **err)
{
    char host[SL_TLS_HOST_MAX + 1];
    bool is_ip = false;
    const char *why = NULL;
    int hn = sl_tls_host_canon(host_in, n_in, host, sizeof(host), &is_ip, &why);
    if (hn < 0) {
        count(c, &c->stats.refused);
        *err = why;
        return NULL;
    }
    size_t n = (size_t)hn;
    uint64_t h = host_hash(c->seed, host, n);
    X509 *leaf = NULL;
    SSL_CTX *ctx = NULL;

    pthread_mutex_lock(&c->mu);
    time_t now = c->now(c->now_arg);
    long lifetime = c->lifetime;
    cc_entry_t *e = find(c, h, host, n);
    if (e != NULL && now < e->refresh_at) {
        lru_unlink(c, e);
        lru_push_front(c, e);
        c->stats.hits++;
        leaf = e->leaf;
        X509_up_ref(leaf);
        if (ctx_out != NULL && e->ctx != NULL) {
            ctx = e->ctx;
            SSL_CTX_up_ref(ctx);
        }
        pthread_mutex_unlock(&c->mu);
        if (ctx_out == NULL || ctx != NULL)
            goto done;
        goto build_ctx;
    }
    pthread_mutex_unlock(&c->mu);

    /* Mint outside the lock: hits for other hosts must not wait for a
     * signature (and an SSL_CTX_new, which costs far more). */
    if (now >= sl_ca_not_after(c->ca)) {
        *err = "the interception CA has expired";
        return NULL;
    }
    time_t not_after = 0;
    leaf = mint_leaf(c, host, n, is_ip, now, lifetime, &not_after);
    if (leaf != NULL && ctx_out != NULL && (ctx = make_ctx(c, leaf)) == NULL) {
        X509_free(leaf);
        leaf = NULL;
    }
    if (leaf == NULL) {
        sl_buf_t msg = {0};
        sl_tls_err(&msg, "cannot mint a leaf certificate");
        sl_warn("tls: %s: %s", host, sl_buf_cstr(&msg));
        sl_buf_free(&msg);
        count(c, &c->stats.failures);
        *err = "cannot mint a certificate for this host";
        return NULL;
    }
    long margin = lifetime / 2 < 3600 ? lifetime / 2 : 3600;
    time_t refresh_at = not_after - margin;

    cc_entry_t *victim = NULL;
    X509 *old_leaf = NULL;
    SSL_CTX *old_ctx = NULL;
    pthread_mutex_lock(&c->mu);
    c->stats.mints++;
    e = find(c, h, host, n);
    if (e != NULL && c->now(c->now_arg) < e->refresh_at) {
        /* Another thread minted this host meanwhile: serve its leaf so the
         * cache and every client agree on one certificate. */
        c->stats.races++;
        old_leaf = leaf;
        old_ctx = ctx;
        leaf = e->leaf;
        X509_up_ref(leaf);
        ctx = NULL;
        if (ctx_out != NULL && e->ctx != NULL) {
            ctx = e->ctx;
            SSL_CTX_up_ref(ctx);
        }
        lru_unlink(c, e);
        lru_push_front(c, e);
        pthread_mutex_unlock(&c->mu);
        X509_free(old_leaf);
        SSL_CTX_free(old_ctx);
        if (ctx_out == NULL || ctx != NULL)
            goto done;
        goto build_ctx;
    }
    if (e != NULL) {
        c->stats.remints++;
        old_leaf = e->leaf;
        old_ctx = e->ctx;
        lru_unlink(c, e);
    } else {
        e = malloc(sizeof(*e) + n + 1);
        if (e == NULL) {
            pthread_mutex_unlock(&c->mu);
            X509_free(leaf);
            SSL_CTX_free(ctx);
            *err = "out of memory caching a certificate";
            return NULL;
        }
        memcpy(e->host, host, n + 1);
        e->hlen = n;
        e->hash = h;
        size_t b = h & (c->nbuckets - 1);
        e->hnext = c->buckets[b];
        c->buckets[b] = e;
        c->stats.entries++;
    }
    e->leaf = leaf;
    X509_up_ref(leaf);
    e->ctx = ctx;
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    e->refresh_at = refresh_at;
    lru_push_front(c, e);
    if (c->stats.entries > c->capacity)
        victim = evict_tail(c);
    pthread_mutex_unlock(&c->mu);
    X509_free(old_leaf);
    SSL_CTX_free(old_ctx);
    entry_free(victim);
    goto done;

build_ctx:
    /* A cached leaf whose context nobody asked for yet. */
    ctx = make_ctx(c, leaf);
    if (ctx == NULL) {
        sl_buf_t msg = {0};
        sl_tls_err(&msg, "cannot build a TLS context");
        sl_warn("tls: %s: %s", host, sl_buf_cstr(&msg));
        sl_buf_free(&msg);
        count(c, &c->stats.failures);
        X509_free(leaf);
        *err = "cannot mint a certificate for this host";
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    e = find(c, h, host, n);
    /* Install it unless the entry changed meanwhile (evicted, re-minted,
     * or given a context by another thread). */
    if (e != NULL && e->leaf == leaf && e->ctx == NULL) {
        e->ctx = ctx;
        SSL_CTX_up_ref(ctx);
    }
    pthread_mutex_unlock(&c->mu);
done:
    if (ctx_out != NULL)
        *ctx_out = ctx;
    return leaf;
}

SSL_CTX *sl_certcache_get_n(sl_certcache_t *c, const char *host, size_t n, const char **err)
{
    SSL_CTX *ctx = NULL;
    X509 *leaf = acquire(c, host, n, &ctx, err);
    X509_free(leaf);
    return leaf != NULL ? ctx : NULL;
}

SSL_CTX *sl_certcache_get(sl_certcache_t *c, const char *host, const char **err)
{
    return sl_certcache_get_n(c, host, host != NULL ? strlen(host) : 0, err);
}

SSL_CTX *sl_certcache_base_ctx(sl_certcache_t *c)
{
    SSL_CTX_up_ref(c->base);
    return c->base;
}

int sl_certcache_use(sl_certcache_t *c, SSL *ssl, const char *host, const char **err)
{
    return sl_certcache_use_n(c, ssl, host, host != NULL ? strlen(host) : 0, err);
}

int sl_certcache_use_n(sl_certcache_t *c, SSL *ssl, const char *host, size_t n, const char **err)
{
    X509 *leaf = acquire(c, host, n, NULL, err);
    if (leaf == NULL)
        return -1;
    /* OpenSSL accepts a certificate that does not match the SSL's key (it
     * drops the key instead), so check the pair explicitly. */
    int ok = SSL_use_certificate(ssl, leaf) == 1 && SSL_check_private_key(ssl) == 1;
    X509_free(leaf);
    if (!ok) {
        sl_buf_t msg = {0};
        sl_tls_err(&msg, "cannot set the leaf certificate");
        sl_warn("tls: %.*s: %s", (int)n, host, sl_buf_cstr(&msg));
        sl_buf_free(&msg);
        *err = "cannot set the certificate on this connection (was the SSL made from "
               "sl_certcache_base_ctx?)";
        return -1;
    }
    return 0;
}

void sl_certcache_stats(sl_certcache_t *c, sl_certcache_stats_t *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}

void sl_certcache_free(sl_certcache_t *c)
{
    if (c == NULL)
        return;
    for (cc_entry_t *e = c->head; e != NULL;) {
        cc_entry_t *next = e->next;
        entry_free(e);
        e = next;
    }
    free(c->buckets);
    SSL_CTX_free(c->base);
    X509_EXTENSION_free(c->ext_bc);
    X509_EXTENSION_free(c->ext_ku);
    X509_EXTENSION_free(c->ext_eku);
    X509_EXTENSION_free(c->ext_aki);
    EVP_PKEY_free(c->leaf_key);
    sl_ca_unref(c->ca);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
