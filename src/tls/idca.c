#include "tls/idca.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

/* Leaf hosts cached per identity CA. */
#define IDCA_CACHE_CAPACITY 1024

typedef struct idca_entry {
    atomic_int refs;       /* sets holding it */
    char *identity;        /* owned copy of the name */
    bool ephemeral;        /* generated, key in memory only */
    sl_ca_t *ca;           /* one reference */
    sl_certcache_t *certs; /* leaves signed by `ca` only */
} idca_entry_t;

typedef struct idca_slot {
    idca_entry_t *e; /* one reference */
    bool kept;       /* carried over from the previous set */
} idca_slot_t;

struct sl_idca_set {
    atomic_int refs;   /* owners: policy snapshots, the server */
    idca_slot_t *slot; /* n entries, in spec order */
    size_t n;
};

static void entry_unref(idca_entry_t *e)
{
    if (e == NULL || atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    sl_certcache_free(e->certs);
    sl_ca_unref(e->ca);
    free(e->identity);
    free(e);
}

static const idca_slot_t *find(const sl_idca_set_t *s, const char *identity)
{
    for (size_t i = 0; s != NULL && i < s->n; i++)
        if (strcmp(s->slot[i].e->identity, identity) == 0)
            return &s->slot[i];
    return NULL;
}

/* Take the CA reference (on failure too). */
static idca_entry_t *entry_new(const char *identity, sl_ca_t *ca, bool ephemeral, sl_buf_t *err)
{
    idca_entry_t *e = calloc(1, sizeof *e);
    if (e == NULL || (e->identity = strdup(identity)) == NULL) {
        sl_buf_appendf(err, "identity %s: out of memory creating its CA\n", identity);
        goto fail;
    }
    e->certs = sl_certcache_new(ca, IDCA_CACHE_CAPACITY, err);
    if (e->certs == NULL) {
        sl_buf_appendf(err, "identity %s: cannot set up certificate minting\n", identity);
        goto fail;
    }
    atomic_init(&e->refs, 1);
    e->ca = ca;
    e->ephemeral = ephemeral;
    return e;
fail:
    if (e != NULL)
        free(e->identity);
    free(e);
    sl_ca_unref(ca);
    return NULL;
}

/* Does `path` hold exactly `pem`? Then writing it again would only disturb
 * whoever watches the file. */
static bool file_holds(const char *path, const char *pem)
{
    size_t n = strlen(pem);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return false;
    char *buf = malloc(n + 1);
    size_t got = 0;
    while (buf != NULL && got <= n) {
        ssize_t r = read(fd, buf + got, n + 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    bool same = buf != NULL && got == n && memcmp(buf, pem, n) == 0;
    free(buf);
    return same;
}

/* The entry for one spec: prev's when its CA is unchanged, else a new
 * one. Returns a new reference (sets *kept), or NULL with `err` set. */
static idca_entry_t *entry_for(const sl_idca_spec_t *sp, const sl_idca_set_t *prev, bool *kept,
                               sl_buf_t *err)
{
    const idca_slot_t *old = find(prev, sp->identity);
    *kept = false;
    if (sp->ca_cert == NULL) {
        if (old != NULL && old->e->ephemeral) {
            atomic_fetch_add_explicit(&old->e->refs, 1, memory_order_relaxed);
            *kept = true;
            return old->e;
        }
        char cn[64 + 1];
        snprintf(cn, sizeof cn, "sluice CA for %.38s (ephemeral)", sp->identity);
        sl_ca_t *ca = sl_ca_generate(cn, err);
        if (ca == NULL) {
            sl_buf_appendf(err, "identity %s: cannot generate its ephemeral CA\n", sp->identity);
            return NULL;
        }
        return entry_new(sp->identity, ca, true, err);
    }
    sl_buf_t why = {0};
    sl_ca_t *ca = sl_ca_load(sp->ca_cert, sp->ca_key, &why);
    if (ca == NULL) {
        sl_buf_appendf(err, "identity %s: tls.ca_cert/ca_key: %s", sp->identity, sl_buf_cstr(&why));
        sl_buf_free(&why);
        return NULL;
    }
    sl_buf_free(&why);
    if (old != NULL && !old->e->ephemeral &&
        X509_cmp(sl_ca_cert(old->e->ca), sl_ca_cert(ca)) == 0) {
        /* The same certificate, and sl_ca_load checked the key belongs to
         * it: the running CA (and its warm leaf cache) stays. */
        sl_ca_unref(ca);
        atomic_fetch_add_explicit(&old->e->refs, 1, memory_order_relaxed);
        *kept = true;
        return old->e;
    }
    return entry_new(sp->identity, ca, false, err);
}

sl_idca_set_t *sl_idca_build(const sl_idca_spec_t *specs, size_t n, const sl_idca_set_t *prev,
                             long leaf_lifetime, sl_buf_t *err)
{
    sl_idca_set_t *s = calloc(1, sizeof *s);
    if (s == NULL || (n > 0 && (s->slot = calloc(n, sizeof *s->slot)) == NULL)) {
        free(s);
        sl_buf_append_str(err, "out of memory building the identity CAs\n");
        return NULL;
    }
    atomic_init(&s->refs, 1);
    for (size_t i = 0; i < n; i++) {
        const sl_idca_spec_t *sp = &specs[i];
        bool kept = false;
        idca_entry_t *e = entry_for(sp, prev, &kept, err);
        if (e == NULL)
            goto fail;
        s->slot[s->n++] = (idca_slot_t){.e = e, .kept = kept};
        sl_certcache_set_lifetime(e->certs, leaf_lifetime);
        const char *pem = sl_ca_cert_pem(e->ca);
        if (sp->ca_out != NULL && !file_holds(sp->ca_out, pem) &&
            sl_ca_write_cert(e->ca, sp->ca_out, err) != 0) {
            sl_buf_appendf(err, "identity %s: cannot write its CA certificate (tls.ca_out)\n",
                           sp->identity);
            goto fail;
        }
    }
    return s;
fail:
    sl_idca_unref(s);
    return NULL;
}

sl_certcache_t *sl_idca_certs(const sl_idca_set_t *s, const char *identity)
{
    const idca_slot_t *sl = find(s, identity);
    return sl ? sl->e->certs : NULL;
}

sl_ca_t *sl_idca_ca(const sl_idca_set_t *s, const char *identity)
{
    const idca_slot_t *sl = find(s, identity);
    return sl ? sl->e->ca : NULL;
}

bool sl_idca_kept(const sl_idca_set_t *s, const char *identity)
{
    const idca_slot_t *sl = find(s, identity);
    return sl != NULL && sl->kept;
}

size_t sl_idca_count(const sl_idca_set_t *s)
{
    return s ? s->n : 0;
}

sl_idca_set_t *sl_idca_ref(sl_idca_set_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void sl_idca_unref(sl_idca_set_t *s)
{
    if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        entry_unref(s->slot[i].e);
    free(s->slot);
    free(s);
}
