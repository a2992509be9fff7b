#include "tls/ca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define DEFAULT_CN "sluice interception CA"
/* A PEM key larger than this is not a key sluice could have written. */
#define KEY_FILE_MAX (64 * 1024)

struct sl_ca {
    atomic_int refs;  /* owners; the last sl_ca_unref frees */
    X509 *cert;       /* the CA certificate */
    EVP_PKEY *key;    /* its private key; never leaves this file */
    char *pem;        /* cert as PEM, NUL-terminated */
    time_t not_after; /* cert notAfter, cached for leaf clamping */
};

void sl_tls_err(sl_buf_t *err, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char reason[256];
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof(reason));
        sl_buf_appendf(err, "%s: %s\n", what, reason);
    } else {
        sl_buf_appendf(err, "%s\n", what);
    }
    ERR_clear_error();
}

time_t sl_tls_asn1_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return (time_t)-1;
    return timegm(&tm);
}

/* A positive random 128-bit serial (RFC 5280 allows up to 20 octets). */
static int set_random_serial(X509 *x)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return -1;
    r[0] &= 0x7f;
    r[0] |= 0x40; /* keep it 16 octets long and never zero */
    BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
    if (bn == NULL)
        return -1;
    int ok = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : -1;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static EVP_PKEY *gen_p256(void)
{
    return EVP_EC_gen("P-256");
}

static X509 *build_ca_cert(EVP_PKEY *key, const char *cn, int days)
{
    X509 *x = X509_new();
    if (x == NULL)
        return NULL;
    time_t now = time(NULL);
    X509_NAME *name = X509_get_subject_name(x);
    X509V3_CTX ctx;
    if (X509_set_version(x, X509_VERSION_3) != 1 || set_random_serial(x) != 0)
        goto fail;
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"sluice", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, name) != 1)
        goto fail;
    if (ASN1_TIME_set(X509_getm_notBefore(x), now - SL_TLS_BACKDATE_SECONDS) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), now + (time_t)days * 86400) == NULL)
        goto fail;
    if (X509_set_pubkey(x, key) != 1)
        goto fail;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0)
        goto fail;
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        goto fail;
    return x;
fail:
    X509_free(x);
    return NULL;
}

/* Take ownership of cert and key (on failure too) and wrap them. */
static sl_ca_t *ca_wrap(X509 *cert, EVP_PKEY *key, sl_buf_t *err)
{
    sl_ca_t *ca = NULL;
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1) {
        sl_tls_err(err, "cannot encode the CA certificate as PEM");
        goto fail;
    }
    BIO_get_mem_ptr(bio, &bm);
    ca = calloc(1, sizeof(*ca));
    char *pem = malloc(bm->length + 1);
    if (ca == NULL || pem == NULL) {
        free(pem);
        sl_buf_append_str(err, "out of memory creating the CA\n");
        goto fail;
    }
    memcpy(pem, bm->data, bm->length);
    pem[bm->length] = '\0';
    BIO_free(bio);
    atomic_init(&ca->refs, 1);
    ca->cert = cert;
    ca->key = key;
    ca->pem = pem;
    ca->not_after = sl_tls_asn1_time(X509_get0_notAfter(cert));
    return ca;
fail:
    free(ca);
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(key);
    return NULL;
}

static sl_ca_t *ca_new(const char *cn, int days, sl_buf_t *err)
{
    if (cn == NULL || *cn == '\0')
        cn = DEFAULT_CN;
    if (strlen(cn) > 64) {
        sl_buf_append_str(err, "CA common name longer than 64 bytes; choose a shorter --cn\n");
        return NULL;
    }
    EVP_PKEY *key = gen_p256();
    if (key == NULL) {
        sl_tls_err(err, "cannot generate the CA key (ECDSA P-256)");
        return NULL;
    }
    X509 *cert = build_ca_cert(key, cn, days > 0 ? days : SL_CA_DEFAULT_DAYS);
    if (cert == NULL) {
        sl_tls_err(err, "cannot build the CA certificate");
        EVP_PKEY_free(key);
        return NULL;
    }
    return ca_wrap(cert, key, err);
}

sl_ca_t *sl_ca_generate(const char *common_name, sl_buf_t *err)
{
    return ca_new(common_name, SL_CA_DEFAULT_DAYS, err);
}

/* Read the key file after checking, on the open descriptor (no race with a
 * chmod or rename in between), that only its owner can read or write it. */
static EVP_PKEY *read_key_file(const char *path, sl_buf_t *err)
{
    EVP_PKEY *key = NULL;
    char *data = NULL;
    size_t n = 0, size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        sl_buf_appendf(err, "%s: cannot open the CA key: %s\n", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == -1) {
        sl_buf_appendf(err, "%s: cannot stat the CA key: %s\n", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        sl_buf_appendf(err, "%s: the CA key is not a regular file\n", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        sl_buf_appendf(err,
                       "%s: the CA key file has mode %04o, so users other than its owner can "
                       "read or change it; refusing to use it. Run `chmod 600 %s` (and check "
                       "who may have copied it; if in doubt, create a new CA with `sluice ca "
                       "init --force`)\n",
                       path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_size <= 0 || st.st_size > KEY_FILE_MAX) {
        sl_buf_appendf(err, "%s: the CA key file is empty or larger than %d bytes\n", path,
                       KEY_FILE_MAX);
        goto out;
    }
    size = (size_t)st.st_size;
    data = malloc(size);
    if (data == NULL) {
        sl_buf_appendf(err, "%s: out of memory reading the CA key\n", path);
        goto out;
    }
    while (n < size) {
        ssize_t r = read(fd, data + n, size - n);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            sl_buf_appendf(err, "%s: cannot read the CA key: %s\n", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    BIO *bio = BIO_new_mem_buf(data, (int)n);
    if (bio == NULL) {
        sl_tls_err(err, "out of memory reading the CA key");
        goto out;
    }
    /* An empty passphrase callback: an encrypted key fails instead of
     * prompting on a terminal sluice may not have. */
    key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
    BIO_free(bio);
    if (key == NULL) {
        bool encrypted = memmem(data, n, "ENCRYPTED", 9) != NULL;
        sl_buf_appendf(err, "%s: ", path);
        sl_tls_err(err, encrypted ? "the CA key is encrypted; sluice needs an unencrypted PEM key "
                                    "protected by file mode 0600"
                                  : "not a PEM private key");
    }
out:
    if (data != NULL) {
        OPENSSL_cleanse(data, size);
        free(data);
    }
    close(fd);
    return key;
}

static X509 *read_cert_file(const char *path, sl_buf_t *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        sl_buf_appendf(err, "%s: cannot open the CA certificate: %s\n", path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        sl_buf_appendf(err, "%s: ", path);
        sl_tls_err(err, "not a PEM certificate");
    }
    return x;
}

sl_ca_t *sl_ca_load(const char *cert_path, const char *key_path, sl_buf_t *err)
{
    EVP_PKEY *key = NULL;
    X509 *cert = read_cert_file(cert_path, err);
    if (cert == NULL)
        return NULL;
    key = read_key_file(key_path, err);
    if (key == NULL)
        goto fail;
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        sl_buf_appendf(err,
                       "%s: the key does not belong to the certificate %s; give the key "
                       "that `sluice ca init` wrote with it\n",
                       key_path, cert_path);
        goto fail;
    }
    if (X509_check_ca(cert) != 1 || (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) == 0) {
        sl_buf_appendf(err,
                       "%s: not a CA certificate (needs basicConstraints CA:TRUE and "
                       "keyUsage keyCertSign); create one with `sluice ca init`\n",
                       cert_path);
        goto fail;
    }
    time_t now = time(NULL);
    time_t nb = sl_tls_asn1_time(X509_get0_notBefore(cert));
    time_t na = sl_tls_asn1_time(X509_get0_notAfter(cert));
    if (nb == (time_t)-1 || na == (time_t)-1 || now < nb || now >= na) {
        sl_buf_appendf(err,
                       "%s: the CA certificate is %s; create a new CA with `sluice ca init "
                       "--force` and install its certificate in the sandboxes\n",
                       cert_path, now >= na ? "expired" : "not valid yet (check the clock)");
        goto fail;
    }
    return ca_wrap(cert, key, err);
fail:
    X509_free(cert);
    EVP_PKEY_free(key);
    return NULL;
}

/* Write `p[0..n)` to `path` with `mode` via a temporary file in the same
 * directory; with `replace` the file is renamed over any old one, without
 * it a hard link makes the creation fail if `path` exists (O_EXCL
 * semantics, atomically). */
static int write_file_atomic(const char *path, const void *p, size_t n, mode_t mode, bool replace,
                             sl_buf_t *err)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (tmp == NULL) {
        sl_buf_appendf(err, "%s: out of memory\n", path);
        return -1;
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd == -1) {
        sl_buf_appendf(err, "%s: cannot create a file next to it: %s\n", path, strerror(errno));
        free(tmp);
        return -1;
    }
    const char *what = "set the mode of";
    if (fchmod(fd, mode) == -1)
        goto fail;
    what = "write";
    for (size_t off = 0; off < n;) {
        ssize_t w = write(fd, (const char *)p + off, n - off);
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1)
            goto fail;
        off += (size_t)w;
    }
    what = "sync";
    if (fsync(fd) == -1)
        goto fail;
    what = "close";
    int rc = close(fd);
    fd = -1;
    if (rc == -1)
        goto fail;
    if (replace) {
        what = "rename into place";
        if (rename(tmp, path) == -1)
            goto fail;
    } else {
        what = "create";
        if (link(tmp, path) == -1)
            goto fail;
        unlink(tmp);
    }
    free(tmp);
    return 0;
fail:
    if (errno == EEXIST && !replace)
        sl_buf_appendf(err, "%s: already exists; not overwriting it (use --force to replace it)\n",
                       path);
    else
        sl_buf_appendf(err, "%s: cannot %s the file: %s\n", path, what, strerror(errno));
    if (fd != -1)
        close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
}

int sl_ca_write_cert(const sl_ca_t *ca, const char *path, sl_buf_t *err)
{
    return write_file_atomic(path, ca->pem, strlen(ca->pem), 0644, true, err);
}

static int write_key(const sl_ca_t *ca, const char *path, bool replace, sl_buf_t *err)
{
    /* A secure-memory BIO clears every buffer it grows out of. */
    BIO *bio = BIO_new(BIO_s_secmem());
    BUF_MEM *bm = NULL;
    int rc = -1;
    if (bio == NULL || PEM_write_bio_PrivateKey(bio, ca->key, NULL, NULL, 0, NULL, NULL) != 1) {
        sl_tls_err(err, "cannot encode the CA key");
        goto out;
    }
    BIO_get_mem_ptr(bio, &bm);
    rc = write_file_atomic(path, bm->data, bm->length, 0600, replace, err);
    OPENSSL_cleanse(bm->data, bm->length);
out:
    BIO_free(bio);
    return rc;
}

int sl_ca_init_files(const char *cert_path, const char *key_path, const char *cn, int days,
                     bool force, sl_buf_t *err)
{
    if (strcmp(cert_path, key_path) == 0) {
        sl_buf_append_str(err, "the certificate and the key must be different files\n");
        return -1;
    }
    if (!force) {
        const char *paths[2] = {key_path, cert_path};
        for (int i = 0; i < 2; i++) {
            struct stat st;
            if (lstat(paths[i], &st) == 0) {
                sl_buf_appendf(err,
                               "%s: already exists; not overwriting it (use --force to replace "
                               "the CA; sandboxes that trust the old one must get the new "
                               "certificate)\n",
                               paths[i]);
                return -1;
            }
        }
    }
    sl_ca_t *ca = ca_new(cn, days, err);
    if (ca == NULL)
        return -1;
    int rc = -1;
    if (write_key(ca, key_path, force, err) != 0)
        goto out;
    if (write_file_atomic(cert_path, ca->pem, strlen(ca->pem), 0644, force, err) != 0) {
        /* A key without its certificate is useless and a secret lying
         * around: remove the one just written. */
        unlink(key_path);
        goto out;
    }
    rc = 0;
out:
    sl_ca_unref(ca);
    return rc;
}

const char *sl_ca_cert_pem(const sl_ca_t *ca)
{
    return ca->pem;
}

void sl_ca_fingerprint_sha256(const sl_ca_t *ca, char out[96])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    out[0] = '\0';
    if (X509_digest(ca->cert, EVP_sha256(), md, &len) != 1 || len != 32)
        return;
    static const char hex[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < len; i++) {
        out[i * 3] = hex[md[i] >> 4];
        out[i * 3 + 1] = hex[md[i] & 15];
        out[i * 3 + 2] = i + 1 < len ? ':' : '\0';
    }
}

X509 *sl_ca_cert(const sl_ca_t *ca)
{
    return ca->cert;
}

time_t sl_ca_not_after(const sl_ca_t *ca)
{
    return ca->not_after;
}

int sl_ca_sign(const sl_ca_t *ca, X509 *leaf)
{
    int id = EVP_PKEY_get_id(ca->key);
    const EVP_MD *md = (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) ? NULL : EVP_sha256();
    return X509_sign(leaf, ca->key, md) > 0 ? 0 : -1;
}

sl_ca_t *sl_ca_ref(sl_ca_t *ca)
{
    atomic_fetch_add_explicit(&ca->refs, 1, memory_order_relaxed);
    return ca;
}

void sl_ca_unref(sl_ca_t *ca)
{
    if (ca == NULL || atomic_fetch_sub_explicit(&ca->refs, 1, memory_order_acq_rel) != 1)
        return;
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca->pem);
    free(ca);
}
