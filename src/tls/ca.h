/* The interception CA: the certificate authority that signs the leaf
 * certificates sluice presents to sandboxes on intercepted TLS.
 *
 * Its private key lives in sluice's memory only (ephemeral CA), or in a file
 * only sluice can read (persistent CA); only the certificate is ever handed
 * to a sandbox. See docs/tls.md. */
#ifndef SLUICE_TLS_CA_H
#define SLUICE_TLS_CA_H

#include <stdbool.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/buf.h"

typedef struct sl_ca sl_ca_t;

/* Validity of a generated CA certificate, in days, unless told otherwise. */
#define SL_CA_DEFAULT_DAYS 365
/* How far back a CA's and a leaf's notBefore is set, so that clients whose
 * clock is a little behind still accept them. */
#define SL_TLS_BACKDATE_SECONDS 3600

/* Generate an ephemeral CA: an ECDSA P-256 key that exists only in memory
 * and a self-signed X.509 v3 certificate (CN=`common_name`, or a default if
 * NULL; basicConstraints critical CA:TRUE pathlen:0; keyUsage critical
 * keyCertSign cRLSign; subjectKeyIdentifier; random 128-bit serial;
 * notBefore now - 1 h; notAfter after SL_CA_DEFAULT_DAYS). Returns a CA with
 * one reference, or NULL with a message appended to `err`. */
sl_ca_t *sl_ca_generate(const char *common_name, sl_buf_t *err);

/* Load a persistent CA from a PEM certificate and a PEM private key.
 * Refused, with a message naming the file and the fix: a key file that is
 * not a regular file or whose mode grants anything to group or others
 * (mode & 077; fix: chmod 600 FILE), an encrypted key, a key that does not
 * match the certificate, a certificate that is not a CA (basicConstraints
 * CA:TRUE, keyCertSign if keyUsage is present), or one outside its validity
 * period. Returns a CA with one reference, or NULL. */
sl_ca_t *sl_ca_load(const char *cert_path, const char *key_path, sl_buf_t *err);

/* Create a new persistent CA (as sl_ca_generate, valid `days` days; 0 means
 * SL_CA_DEFAULT_DAYS) and write its key (PKCS#8 PEM, mode 0600) and its
 * certificate (PEM, mode 0644). Each file is written to a temporary file in
 * the same directory, synced, then moved into place, so a reader never sees
 * a partial file. Without `force`, an existing file at either path is never
 * touched and the call fails; with `force`, both are replaced. Returns 0, or
 * -1 with a message in `err` (on failure no new file is left behind). */
int sl_ca_init_files(const char *cert_path, const char *key_path, const char *cn, int days,
                     bool force, sl_buf_t *err);

/* Write the CA certificate as PEM to `path` (mode 0644), atomically
 * replacing any existing file. Returns 0 or -1 with a message in `err`. */
int sl_ca_write_cert(const sl_ca_t *ca, const char *path, sl_buf_t *err);

/* The CA certificate as a NUL-terminated PEM string, owned by `ca`. */
const char *sl_ca_cert_pem(const sl_ca_t *ca);

/* The SHA-256 fingerprint of the DER certificate as 32 colon-separated
 * uppercase hex pairs ("AB:CD:..."), NUL-terminated (95 chars + NUL). */
void sl_ca_fingerprint_sha256(const sl_ca_t *ca, char out[96]);

/* The CA certificate (owned by `ca`; do not free). Use it to build chains
 * and to print details; never modify it. */
X509 *sl_ca_cert(const sl_ca_t *ca);

/* The CA certificate's notAfter as a Unix time. */
time_t sl_ca_not_after(const sl_ca_t *ca);

/* Sign `leaf` with the CA key (SHA-256, or the key's own digest for
 * EdDSA). The caller sets the leaf's issuer and extensions first. The key
 * itself is never exposed. Returns 0, or -1 (OpenSSL error queue set). */
int sl_ca_sign(const sl_ca_t *ca, X509 *leaf);

/* Add a reference; returns `ca`. Thread-safe. */
sl_ca_t *sl_ca_ref(sl_ca_t *ca);

/* Drop a reference; the last one frees the key (OpenSSL clears it) and the
 * certificate. NULL is a no-op. Thread-safe. */
void sl_ca_unref(sl_ca_t *ca);

/* Append "what: <OpenSSL reason>" to `err` and clear the OpenSSL error queue
 * of this thread. For the tls module's error messages. */
void sl_tls_err(sl_buf_t *err, const char *what);

/* Convert an ASN1_TIME to a Unix time; returns -1 on a malformed time. */
time_t sl_tls_asn1_time(const ASN1_TIME *t);

#endif
