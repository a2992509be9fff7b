/* The interception CA: generation, files, loading and its refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/ca.h"
#include "tls/idca.h"

typedef struct dir {
    char path[64];
    char cert[96];
    char key[96];
} dir_t;

static void dir_make(dir_t *d)
{
    strcpy(d->path, "/tmp/sl-tlsca-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->cert, sizeof(d->cert), "%s/ca.pem", d->path);
    snprintf(d->key, sizeof(d->key), "%s/ca.key", d->path);
}

static void dir_remove(dir_t *d)
{
    unlink(d->cert);
    unlink(d->key);
    rmdir(d->path);
}

static mode_t file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

static void expect_err(sl_buf_t *err, const char *needle)
{
    const char *s = sl_buf_cstr(err);
    if (strstr(s, needle) == NULL) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", s, needle);
        fail();
    }
}

static void test_generate(void **state)
{
    sl_buf_t err = {0};
    time_t now = time(NULL);
    sl_ca_t *ca = sl_ca_generate("test CA", &err);
    assert_non_null(ca);
    X509 *x = sl_ca_cert(ca);

    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    /* Self-signed, by an ECDSA P-256 key. */
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_int_equal(EVP_PKEY_get_id(pub), EVP_PKEY_EC);
    char group[32];
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof(group), NULL), 1);
    assert_string_equal(group, "prime256v1");
    assert_int_equal(X509_verify(x, pub), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    char cn[80];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "test CA");

    /* basicConstraints critical CA:TRUE pathlen:0. */
    int crit = -1;
    BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(crit, 1);
    assert_true(bc->ca);
    assert_non_null(bc->pathlen);
    assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
    BASIC_CONSTRAINTS_free(bc);
    /* keyUsage critical keyCertSign + cRLSign only. */
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
    assert_non_null(ku);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(ku);
    assert_int_equal(X509_get_key_usage(x), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(x));
    assert_int_equal(X509_check_ca(x), 1);

    /* Serial: positive, 128 bits. */
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    assert_false(BN_is_negative(bn));
    assert_int_equal(BN_num_bytes(bn), 16);
    BN_free(bn);

    /* Backdated one hour, valid for the default period. */
    time_t nb = sl_tls_asn1_time(X509_get0_notBefore(x));
    time_t na = sl_tls_asn1_time(X509_get0_notAfter(x));
    assert_true(nb >= now - SL_TLS_BACKDATE_SECONDS - 2 && nb <= now - SL_TLS_BACKDATE_SECONDS + 2);
    assert_true(na - now >= SL_CA_DEFAULT_DAYS * 86400L - 2 &&
                na - now <= SL_CA_DEFAULT_DAYS * 86400L + 2);
    assert_int_equal(sl_ca_not_after(ca), na);

    /* The PEM is this certificate. */
    const char *pem = sl_ca_cert_pem(ca);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----"));
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *back = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(back);
    assert_int_equal(X509_cmp(back, x), 0);
    X509_free(back);

    /* The fingerprint is the SHA-256 of the DER, colon hex. */
    char fp[96];
    sl_ca_fingerprint_sha256(ca, fp);
    assert_int_equal(strlen(fp), 95);
    unsigned char md[32];
    unsigned int mdlen = 0;
    assert_int_equal(X509_digest(x, EVP_sha256(), md, &mdlen), 1);
    char want[96];
    for (int i = 0; i < 32; i++)
        snprintf(want + i * 3, 4, i < 31 ? "%02X:" : "%02X", md[i]);
    assert_string_equal(fp, want);

    /* Two CAs never share a key or serial. */
    sl_ca_t *other = sl_ca_generate(NULL, &err);
    assert_non_null(other);
    assert_int_not_equal(EVP_PKEY_eq(X509_get0_pubkey(sl_ca_cert(other)), pub), 1);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(sl_ca_cert(other)), serial), 0);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(sl_ca_cert(other)), NID_commonName,
                                          cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "sluice interception CA");
    sl_ca_unref(other);

    /* A reference keeps it alive after the first owner lets go. */
    sl_ca_t *again = sl_ca_ref(ca);
    sl_ca_unref(ca);
    assert_string_equal(sl_ca_cert_pem(again), pem);
    sl_ca_unref(again);
    sl_buf_free(&err);
}

static void test_generate_refuses_long_cn(void **state)
{
    sl_buf_t err = {0};
    char cn[80];
    memset(cn, 'a', 65);
    cn[65] = '\0';
    assert_null(sl_ca_generate(cn, &err));
    expect_err(&err, "longer than 64");
    sl_buf_free(&err);
}

static void test_init_load_round_trip(void **state)
{
    dir_t d;
    dir_make(&d);
    sl_buf_t err = {0};
    mode_t old = umask(0);
    int rc = sl_ca_init_files(d.cert, d.key, "round trip", 30, false, &err);
    umask(old);
    if (rc != 0)
        fprintf(stderr, "%s", sl_buf_cstr(&err));
    assert_int_equal(rc, 0);
    /* Modes are set explicitly, whatever the umask. */
    assert_int_equal(file_mode(d.key), 0600);
    assert_int_equal(file_mode(d.cert), 0644);
    /* No temporary files left behind. */
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) -eq 2", d.path);
    assert_int_equal(system(cmd), 0);

    char *key_text = slurp(d.key);
    assert_non_null(strstr(key_text, "-----BEGIN PRIVATE KEY-----"));
    free(key_text);

    sl_ca_t *ca = sl_ca_load(d.cert, d.key, &err);
    if (ca == NULL)
        fprintf(stderr, "%s", sl_buf_cstr(&err));
    assert_non_null(ca);
    char *cert_text = slurp(d.cert);
    assert_string_equal(sl_ca_cert_pem(ca), cert_text);
    free(cert_text);
    time_t na = sl_ca_not_after(ca);
    assert_true(na - time(NULL) > 29 * 86400L && na - time(NULL) <= 30 * 86400L);

    /* The loaded key signs what the loaded cert verifies. */
    X509 *leaf = X509_new();
    X509_set_version(leaf, X509_VERSION_3);
    X509_set_issuer_name(leaf, X509_get_subject_name(sl_ca_cert(ca)));
    X509_set_pubkey(leaf, X509_get0_pubkey(sl_ca_cert(ca)));
    ASN1_TIME_set(X509_getm_notBefore(leaf), time(NULL));
    ASN1_TIME_set(X509_getm_notAfter(leaf), time(NULL) + 60);
    assert_int_equal(sl_ca_sign(ca, leaf), 0);
    assert_int_equal(X509_verify(leaf, X509_get0_pubkey(sl_ca_cert(ca))), 1);
    X509_free(leaf);

    /* Re-writing the certificate elsewhere: same bytes, mode 0644. */
    char copy[128];
    snprintf(copy, sizeof(copy), "%s/copy.pem", d.path);
    assert_int_equal(sl_ca_write_cert(ca, copy, &err), 0);
    assert_int_equal(file_mode(copy), 0644);
    char *copy_text = slurp(copy);
    assert_string_equal(copy_text, sl_ca_cert_pem(ca));
    free(copy_text);
    /* ... and replacing an existing file. */
    sl_ca_t *other = sl_ca_generate(NULL, &err);
    assert_int_equal(sl_ca_write_cert(other, copy, &err), 0);
    copy_text = slurp(copy);
    assert_string_equal(copy_text, sl_ca_cert_pem(other));
    free(copy_text);
    sl_ca_unref(other);
    unlink(copy);

    sl_ca_unref(ca);
    sl_buf_free(&err);
    dir_remove(&d);
}

static void test_init_refuses_overwrite(void **state)
{
    dir_t d;
    dir_make(&d);
    sl_buf_t err = {0};
    assert_int_equal(sl_ca_init_files(d.cert, d.key, NULL, 0, false, &err), 0);
    char *cert1 = slurp(d.cert), *key1 = slurp(d.key);

    assert_int_equal(sl_ca_init_files(d.cert, d.key, NULL, 0, false, &err), -1);
    expect_err(&err, "already exists");
    expect_err(&err, "--force");
    char *cert2 = slurp(d.cert), *key2 = slurp(d.key);
    assert_string_equal(cert1, cert2);
    assert_string_equal(key1, key2);
    free(cert2);
    free(key2);

    /* Only the certificate exists: still refused, and no key is created. */
    unlink(d.key);
    sl_buf_reset(&err);
    assert_int_equal(sl_ca_init_files(d.cert, d.key, NULL, 0, false, &err), -1);
    expect_err(&err, d.cert);
    assert_int_equal(access(d.key, F_OK), -1);

    /* Same path for both. */
    sl_buf_reset(&err);
    assert_int_equal(sl_ca_init_files(d.cert, d.cert, NULL, 0, true, &err), -1);

    /* --force replaces both. */
    assert_int_equal(sl_ca_init_files(d.cert, d.key, NULL, 0, true, &err), 0);
    cert2 = slurp(d.cert);
    key2 = slurp(d.key);
    assert_string_not_equal(cert1, cert2);
    assert_string_not_equal(key1, key2);
    assert_int_equal(file_mode(d.key), 0600);
    sl_ca_t *ca = sl_ca_load(d.cert, d.key, &err);
    assert_non_null(ca);
    sl_ca_unref(ca);
    free(cert1);
    free(key1);
    free(cert2);
    free(key2);

    /* A directory that does not exist: clear failure, nothing written. */
    sl_buf_reset(&err);
    assert_int_equal(sl_ca_init_files("/nonexistent-dir/ca.pem", "/nonexistent-dir/ca.key", NULL, 0,
                                      false, &err),
                     -1);
    expect_err(&err, "/nonexistent-dir/ca.key");
    sl_buf_free(&err);
    dir_remove(&d);
}

static void test_key_mode_refused(void **state)
{
    dir_t d;
    dir_make(&d);
    sl_buf_t err = {0};
    assert_int_equal(sl_ca_init_files(d.cert, d.key, NULL, 0, false, &err), 0);
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0606, 0620, 0602, 0610, 0601, 0777};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(d.key, bad[i]), 0);
        sl_buf_reset(&err);
        sl_ca_t *ca = sl_ca_load(d.cert, d.key, &err);
        if (ca != NULL) {
            fprintf(stderr, "mode %04o accepted\n", (unsigned)bad[i]);
            fail();
        }
        expect_err(&err, d.key);
        expect_err(&err, "chmod 600");
    }
    static const mode_t good[] = {0600, 0400};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(chmod(d.key, good[i]), 0);
        sl_ca_t *ca = sl_ca_load(d.cert, d.key, &err);
        assert_non_null(ca);
        sl_ca_unref(ca);
    }
    /* A key that is not a regular file. */
    sl_buf_reset(&err);
    assert_null(sl_ca_load(d.cert, d.path, &err));
    expect_err(&err, "not a regular file");
    /* A missing key. */
    sl_buf_reset(&err);
    assert_null(sl_ca_load(d.cert, "/nonexistent/ca.key", &err));
    expect_err(&err, "/nonexistent/ca.key");
    sl_buf_free(&err);
    dir_remove(&d);
}

static void write_key(const char *path, EVP_PKEY *key, const EVP_CIPHER *enc)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(PEM_write_PrivateKey(f, key, enc, enc ? (unsigned char *)"secret" : NULL,
                                          enc ? 6 : 0, NULL, NULL),
                     1);
    fclose(f);
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void test_load_refusals(void **state)
{
    dir_t d, d2;
    dir_make(&d);
    dir_make(&d2);
    sl_buf_t err = {0};
    assert_int_equal(sl_ca_init_files(d.cert, d.key, NULL, 0, false, &err), 0);
    assert_int_equal(sl_ca_init_files(d2.cert, d2.key, NULL, 0, false, &err), 0);

    /* The key of another CA. */
    assert_null(sl_ca_load(d.cert, d2.key, &err));
    expect_err(&err, "does not belong");

    /* Not PEM at all. */
    sl_buf_reset(&err);
    assert_null(sl_ca_load(d.key, d.key, &err));
    expect_err(&err, "not a PEM certificate");
    sl_buf_reset(&err);
    assert_int_equal(chmod(d2.cert, 0600), 0);
    assert_null(sl_ca_load(d.cert, d2.cert, &err));
    expect_err(&err, "not a PEM private key");

    /* An encrypted key: refused, no prompt. */
    EVP_PKEY *key = EVP_EC_gen("P-256");
    write_key(d2.key, key, EVP_aes_256_cbc());
    sl_buf_reset(&err);
    assert_null(sl_ca_load(d.cert, d2.key, &err));
    expect_err(&err, "encrypted");

    /* A certificate that is not a CA (matching key). */
    X509 *x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"not a ca", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    ASN1_TIME_set(X509_getm_notBefore(x), time(NULL) - 60);
    ASN1_TIME_set(X509_getm_notAfter(x), time(NULL) + 3600);
    X509_set_pubkey(x, key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_basic_constraints, "CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    write_cert(d2.cert, x);
    write_key(d2.key, key, NULL);
    sl_buf_reset(&err);
    assert_null(sl_ca_load(d2.cert, d2.key, &err));
    expect_err(&err, "not a CA certificate");

    /* An expired CA (right extensions, past notAfter). */
    X509_free(x);
    x = X509_new();
    X509_set_version(x, X509_VERSION_3);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                               (const unsigned char *)"old ca", -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(x));
    ASN1_TIME_set(X509_getm_notBefore(x), time(NULL) - 7200);
    ASN1_TIME_set(X509_getm_notAfter(x), time(NULL) - 3600);
    X509_set_pubkey(x, key);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_nconf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    write_cert(d2.cert, x);
    sl_buf_reset(&err);
    assert_null(sl_ca_load(d2.cert, d2.key, &err));
    expect_err(&err, "expired");

    X509_free(x);
    EVP_PKEY_free(key);
    sl_buf_free(&err);
    dir_remove(&d);
    dir_remove(&d2);
}

/* Does the leaf `certs` presents for `host` verify under `ca`'s key? */
static bool leaf_signed_by(sl_certcache_t *certs, const char *host, sl_ca_t *ca)
{
    const char *why = NULL;
    SSL_CTX *ctx = sl_certcache_get(certs, host, &why);
    assert_non_null(ctx);
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    assert_non_null(leaf);
    bool ok = X509_verify(leaf, X509_get0_pubkey(sl_ca_cert(ca))) == 1;
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return ok;
}

static ino_t file_ino(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

/* Two identities, two CAs: each cache's leaves verify under its own CA
 * only, and each CA certificate lands in its own ca_out. */
static void test_idca_separate(void **state)
{
    dir_t d;
    dir_make(&d);
    char out_a[128], out_b[128];
    snprintf(out_a, sizeof out_a, "%s/a.pem", d.path);
    snprintf(out_b, sizeof out_b, "%s/b.pem", d.path);
    sl_idca_spec_t specs[] = {{.identity = "agent-a", .ca_out = out_a},
                              {.identity = "agent-b", .ca_out = out_b}};
    sl_buf_t err = {0};
    sl_idca_set_t *s = sl_idca_build(specs, 2, NULL, 3600, &err);
    assert_non_null(s);
    assert_int_equal(sl_idca_count(s), 2);
    sl_ca_t *a = sl_idca_ca(s, "agent-a"), *b = sl_idca_ca(s, "agent-b");
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_not_equal(X509_cmp(sl_ca_cert(a), sl_ca_cert(b)), 0);
    assert_null(sl_idca_ca(s, "agent-c"));
    assert_null(sl_idca_certs(s, "agent-c"));
    assert_false(sl_idca_kept(s, "agent-a"));
    sl_certcache_t *ca_ = sl_idca_certs(s, "agent-a"), *cb = sl_idca_certs(s, "agent-b");
    assert_ptr_not_equal(ca_, cb);
    assert_true(leaf_signed_by(ca_, "api.example.com", a));
    assert_false(leaf_signed_by(ca_, "api.example.com", b));
    assert_true(leaf_signed_by(cb, "api.example.com", b));
    assert_false(leaf_signed_by(cb, "api.example.com", a));
    char *pa = slurp(out_a), *pb = slurp(out_b);
    assert_string_equal(pa, sl_ca_cert_pem(a));
    assert_string_equal(pb, sl_ca_cert_pem(b));
    assert_null(strstr(pa, "PRIVATE"));
    assert_int_equal(file_mode(out_a), 0644);
    free(pa);
    free(pb);
    char cn[256];
    X509_NAME_oneline(X509_get_subject_name(sl_ca_cert(a)), cn, sizeof cn);
    assert_non_null(strstr(cn, "agent-a"));
    sl_idca_unref(s);
    unlink(out_a);
    unlink(out_b);
    sl_buf_free(&err);
    dir_remove(&d);
}

/* A rebuild keeps the ephemeral CA (and its warm cache) of an identity
 * that stays ephemeral, without rewriting its ca_out; a removed identity's
 * CA is gone for good; switching to files replaces it. */
static void test_idca_rebuild_keeps_ephemeral(void **state)
{
    dir_t d;
    dir_make(&d);
    char out_a[128], out_a2[128];
    snprintf(out_a, sizeof out_a, "%s/a.pem", d.path);
    snprintf(out_a2, sizeof out_a2, "%s/a2.pem", d.path);
    sl_idca_spec_t one[] = {{.identity = "agent-a", .ca_out = out_a},
                            {.identity = "agent-b", .ca_out = NULL}};
    sl_buf_t err = {0};
    sl_idca_set_t *s1 = sl_idca_build(one, 2, NULL, 3600, &err);
    assert_non_null(s1);
    sl_ca_t *a1 = sl_idca_ca(s1, "agent-a");
    sl_certcache_t *c1 = sl_idca_certs(s1, "agent-a");
    assert_true(leaf_signed_by(c1, "x.example", a1));
    ino_t ino = file_ino(out_a);

    sl_idca_set_t *s2 = sl_idca_build(one, 2, s1, 600, &err);
    assert_non_null(s2);
    assert_ptr_equal(sl_idca_ca(s2, "agent-a"), a1);
    assert_ptr_equal(sl_idca_certs(s2, "agent-a"), c1);
    assert_true(sl_idca_kept(s2, "agent-a"));
    assert_true(sl_idca_kept(s2, "agent-b"));
    assert_int_equal(file_ino(out_a), ino); /* not rewritten */
    sl_idca_unref(s1);                      /* the kept entry outlives the old set */
    sl_certcache_stats_t st;
    sl_certcache_stats(c1, &st);
    uint64_t mints = st.mints;
    assert_true(leaf_signed_by(sl_idca_certs(s2, "agent-a"), "x.example", a1));
    sl_certcache_stats(c1, &st);
    assert_int_equal(st.mints, mints); /* served from the kept cache */

    /* A deleted ca_out is written again; a new ca_out gets the same CA. */
    unlink(out_a);
    sl_idca_spec_t moved[] = {{.identity = "agent-a", .ca_out = out_a2}};
    sl_idca_set_t *s3 = sl_idca_build(moved, 1, s2, 600, &err);
    assert_non_null(s3);
    assert_ptr_equal(sl_idca_ca(s3, "agent-a"), a1);
    char *p = slurp(out_a2);
    assert_string_equal(p, sl_ca_cert_pem(a1));
    free(p);
    assert_null(sl_idca_ca(s3, "agent-b"));
    char fp_b[96];
    sl_ca_fingerprint_sha256(sl_idca_ca(s2, "agent-b"), fp_b);
    sl_idca_unref(s2);

    /* agent-b comes back: a new CA, never the dropped one. */
    sl_idca_set_t *s4 = sl_idca_build(one, 2, s3, 600, &err);
    assert_non_null(s4);
    assert_false(sl_idca_kept(s4, "agent-b"));
    char fp_b2[96];
    sl_ca_fingerprint_sha256(sl_idca_ca(s4, "agent-b"), fp_b2);
    assert_string_not_equal(fp_b, fp_b2);
    assert_ptr_equal(sl_idca_ca(s4, "agent-a"), a1);

    /* agent-a switches to a CA from files: the ephemeral one is replaced. */
    assert_int_equal(sl_ca_init_files(d.cert, d.key, "files CA", 0, false, &err), 0);
    sl_idca_spec_t files[] = {{.identity = "agent-a", .ca_cert = d.cert, .ca_key = d.key}};
    sl_idca_set_t *s5 = sl_idca_build(files, 1, s4, 600, &err);
    assert_non_null(s5);
    assert_ptr_not_equal(sl_idca_ca(s5, "agent-a"), a1);
    assert_false(sl_idca_kept(s5, "agent-a"));
    assert_true(
        leaf_signed_by(sl_idca_certs(s5, "agent-a"), "x.example", sl_idca_ca(s5, "agent-a")));
    assert_false(leaf_signed_by(sl_idca_certs(s5, "agent-a"), "x.example", a1));

    sl_idca_unref(s3);
    sl_idca_unref(s4);
    sl_idca_unref(s5);
    unlink(out_a);
    unlink(out_a2);
    sl_buf_free(&err);
    dir_remove(&d);
}

/* A CA from files: kept while the files hold the same certificate,
 * replaced when they change, and every sl_ca_load refusal applies, naming
 * the identity and the file. */
static void test_idca_files(void **state)
{
    dir_t d;
    dir_make(&d);
    sl_buf_t err = {0};
    assert_int_equal(sl_ca_init_files(d.cert, d.key, "agent-a CA", 0, false, &err), 0);
    sl_idca_spec_t sp[] = {{.identity = "agent-a", .ca_cert = d.cert, .ca_key = d.key}};
    sl_idca_set_t *s1 = sl_idca_build(sp, 1, NULL, 3600, &err);
    assert_non_null(s1);
    sl_ca_t *a1 = sl_idca_ca(s1, "agent-a");
    sl_idca_set_t *s2 = sl_idca_build(sp, 1, s1, 3600, &err);
    assert_non_null(s2);
    assert_ptr_equal(sl_idca_ca(s2, "agent-a"), a1);
    assert_true(sl_idca_kept(s2, "agent-a"));

    /* Rotated files: a new CA. */
    assert_int_equal(sl_ca_init_files(d.cert, d.key, "agent-a CA 2", 0, true, &err), 0);
    sl_idca_set_t *s3 = sl_idca_build(sp, 1, s2, 3600, &err);
    assert_non_null(s3);
    assert_ptr_not_equal(sl_idca_ca(s3, "agent-a"), a1);
    assert_false(sl_idca_kept(s3, "agent-a"));

    /* A key others can read: refused, and no set at all. */
    assert_int_equal(chmod(d.key, 0640), 0);
    sl_buf_reset(&err);
    assert_null(sl_idca_build(sp, 1, s3, 3600, &err));
    expect_err(&err, "identity agent-a");
    expect_err(&err, d.key);
    expect_err(&err, "chmod 600");
    assert_int_equal(chmod(d.key, 0600), 0);

    /* A ca_out that cannot be written fails the build too. */
    sl_idca_spec_t bad_out[] = {{.identity = "agent-z", .ca_out = "/nonexistent/dir/z.pem"}};
    sl_buf_reset(&err);
    assert_null(sl_idca_build(bad_out, 1, NULL, 3600, &err));
    expect_err(&err, "identity agent-z");
    expect_err(&err, "/nonexistent/dir/z.pem");

    sl_idca_unref(s1);
    sl_idca_unref(s2);
    sl_idca_unref(s3);
    sl_buf_free(&err);
    dir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate),
        cmocka_unit_test(test_generate_refuses_long_cn),
        cmocka_unit_test(test_init_load_round_trip),
        cmocka_unit_test(test_init_refuses_overwrite),
        cmocka_unit_test(test_key_mode_refused),
        cmocka_unit_test(test_load_refusals),
        cmocka_unit_test(test_idca_separate),
        cmocka_unit_test(test_idca_rebuild_keeps_ephemeral),
        cmocka_unit_test(test_idca_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
