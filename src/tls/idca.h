/* Per-identity interception CAs: an identity may have a CA of its own, so
 * that the certificate one sandbox trusts does not make it accept the
 * leaves presented to another sandbox (docs/tls.md, "A CA per identity").
 *
 * A set maps identity names to a CA and a leaf cache minted by that CA
 * alone (a leaf for host X signed by A's CA is never served to B). Sets are
 * immutable once built and refcounted; a reload builds a new set from the
 * previous one, keeping entries whose CA did not change, so an ephemeral
 * CA the sandbox already trusts survives reloads. Entries are shared
 * between sets and refcounted too. */
#ifndef SLUICE_TLS_IDCA_H
#define SLUICE_TLS_IDCA_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "tls/ca.h"
#include "tls/certcache.h"

typedef struct sl_idca_set sl_idca_set_t;

/* What one identity's CA is to be. */
typedef struct sl_idca_spec {
    const char *identity; /* identity name; unique within one build */
    const char *ca_cert;  /* PEM CA certificate to load, or NULL for an ephemeral CA */
    const char *ca_key;   /* its key (mode 0600 or stricter); with ca_cert */
    const char *ca_out;   /* where to write the CA certificate for the sandbox, or NULL */
} sl_idca_spec_t;

/* Build a set from `n` specs, reusing entries of `prev` (may be NULL):
 * - ephemeral: the CA (and its leaf cache) of prev's entry for the same
 *   identity is kept if that entry is ephemeral too; otherwise a new CA is
 *   generated (key in memory only).
 * - files: the files are read again with every sl_ca_load check; if they
 *   hold the certificate prev's entry for the identity already uses, that
 *   entry is kept, else the new CA replaces it.
 * Each CA certificate is then written to its ca_out (0644, atomically),
 * unless the file already holds exactly that certificate. Every cache gets
 * `leaf_lifetime` seconds (sl_certcache_set_lifetime). On any failure no
 * set is returned and `err` says which identity and why, naming the file
 * (files already written for earlier identities stay: they hold valid
 * certificates). Returns a set with one reference. */
sl_idca_set_t *sl_idca_build(const sl_idca_spec_t *specs, size_t n, const sl_idca_set_t *prev,
                             long leaf_lifetime, sl_buf_t *err);

/* The leaf cache for `identity`'s own CA, or NULL if it has none. Valid
 * while the caller holds a reference to `s`. */
sl_certcache_t *sl_idca_certs(const sl_idca_set_t *s, const char *identity);

/* The CA of `identity`, or NULL if it has none. Valid while the caller
 * holds a reference to `s`. */
sl_ca_t *sl_idca_ca(const sl_idca_set_t *s, const char *identity);

/* Was `identity`'s entry carried over from the `prev` given to the build
 * (same CA, same leaf cache)? False for identities without an entry. */
bool sl_idca_kept(const sl_idca_set_t *s, const char *identity);

/* Number of identities with their own CA. */
size_t sl_idca_count(const sl_idca_set_t *s);

/* Add a reference; returns `s`. Thread-safe. */
sl_idca_set_t *sl_idca_ref(sl_idca_set_t *s);

/* Drop a reference; the last one drops the set's entry references (the
 * last of which frees a CA, its key and its cache). NULL is a no-op. */
void sl_idca_unref(sl_idca_set_t *s);

#endif
