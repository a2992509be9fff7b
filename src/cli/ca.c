/* `sluice ca init|show`: create and inspect the interception CA. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cli/cli.h"
#include "config/config.h"
#include "tls/ca.h"

static const char ca_usage[] =
    "Usage: sluice ca init --cert FILE --key FILE [--cn NAME] [--days N] [--force]\n"
    "       sluice ca show --cert FILE\n"
    "       sluice ca show -c CONFIG [--identity NAME]\n"
    "\n"
    "Manage the CA that signs the certificates sluice presents when it intercepts\n"
    "TLS. Without a CA from files, `sluice run` generates an ephemeral one at start\n"
    "whose key exists only in memory. The key never goes into a sandbox: sandboxes\n"
    "get the certificate only, installed in their trust store (docs/tls.md).\n"
    "\n"
    "Commands:\n"
    "  init   create a persistent CA (ECDSA P-256): the key file is written with\n"
    "         mode 0600, the certificate with 0644\n"
    "  show   print a CA certificate's subject, validity, SHA-256 fingerprint and PEM\n"
    "         (one file, or the CAs a config gives the instance and each identity)\n"
    "\n"
    "Run `sluice ca init --help` or `sluice ca show --help` for details.\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static const char init_usage[] =
    "Usage: sluice ca init --cert FILE --key FILE [--cn NAME] [--days N] [--force]\n"
    "\n"
    "Create a persistent interception CA: an ECDSA P-256 key and a self-signed\n"
    "certificate (CA:TRUE, pathlen 0, keyCertSign, notBefore backdated 1 hour).\n"
    "\n"
    "The key file is created with mode 0600 and must stay readable by sluice only:\n"
    "sluice refuses to load a key that group or others can read or write. Keep it\n"
    "out of every sandbox. Distribute the certificate to the sandboxes' trust stores\n"
    "(docs/tls.md lists how for the system store, Python, Node, Java, git, curl).\n"
    "\n"
    "Options:\n"
    "  --cert FILE   where to write the certificate (PEM, mode 0644)\n"
    "  --key FILE    where to write the private key (PEM PKCS#8, mode 0600)\n"
    "  --cn NAME     the CA's common name (default \"sluice interception CA\")\n"
    "  --days N      validity in days, 1..3650 (default 365)\n"
    "  --force       replace existing files (sandboxes trusting the old CA must\n"
    "                get the new certificate)\n"
    "  -h, --help    show this help\n"
    "\n"
    "Exit status: 0 created, 1 failed (nothing written), 2 usage error.\n";

static const char show_usage[] =
    "Usage: sluice ca show --cert FILE\n"
    "       sluice ca show -c CONFIG [--identity NAME]\n"
    "\n"
    "Print a CA certificate's subject, validity and SHA-256 fingerprint, then its\n"
    "PEM (what a sandbox's trust store needs). Compare the fingerprint with what a\n"
    "sandbox trusts, e.g. `openssl x509 -noout -fingerprint -sha256 -in FILE`.\n"
    "The key is not needed and never printed.\n"
    "\n"
    "With a config, show the CA that signs for an identity: its own (identities[].tls)\n"
    "or the instance CA (tls). Without --identity, every CA of the config, each\n"
    "headed by the identities it signs for. A CA from files is read from ca_cert; an\n"
    "ephemeral one from its ca_out, which the running sluice writes.\n"
    "\n"
    "Options:\n"
    "  --cert FILE          the certificate to show (\"-\" reads stdin)\n"
    "  -c, --config FILE    the sluice config to take the CAs from\n"
    "  --identity NAME      only the CA of this identity (\"default\": clients that\n"
    "                       match no identity)\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: 0 shown, 1 unreadable or not a certificate (or no such identity),\n"
    "2 usage error.\n";

/* Take the value of option argv[*i]; NULL (after printing why) if absent. */
static const char *opt_value(int argc, char **argv, int *i, const char *cmd, const char *usage)
{
    if (*i + 1 >= argc || argv[*i + 1][0] == '\0') {
        fprintf(stderr, "sluice ca %s: %s needs a value\n\n%s", cmd, argv[*i], usage);
        return NULL;
    }
    return argv[++*i];
}

static int ca_init(int argc, char **argv)
{
    const char *cert = NULL, *key = NULL, *cn = NULL;
    int days = 0;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(init_usage, stdout);
            return 0;
        } else if (strcmp(a, "--force") == 0) {
            force = true;
            continue;
        } else if (strcmp(a, "--cert") == 0) {
            dst = &cert;
        } else if (strcmp(a, "--key") == 0) {
            dst = &key;
        } else if (strcmp(a, "--cn") == 0) {
            dst = &cn;
        } else if (strcmp(a, "--days") == 0) {
            const char *v = opt_value(argc, argv, &i, "init", init_usage);
            if (v == NULL)
                return 2;
            char *end = NULL;
            errno = 0;
            long d = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || d < 1 || d > 3650) {
                fprintf(stderr,
                        "sluice ca init: --days wants a number of days, 1..3650; got "
                        "'%s'\n",
                        v);
                return 2;
            }
            days = (int)d;
            continue;
        } else {
            fprintf(stderr, "sluice ca init: unexpected argument '%s'\n\n%s", a, init_usage);
            return 2;
        }
        const char *v = opt_value(argc, argv, &i, "init", init_usage);
        if (v == NULL)
            return 2;
        if (*dst != NULL) {
            fprintf(stderr, "sluice ca init: give %s only once\n", a);
            return 2;
        }
        *dst = v;
    }
    if (cert == NULL || key == NULL) {
        fprintf(stderr, "sluice ca init: both --cert FILE and --key FILE are required\n\n%s",
                init_usage);
        return 2;
    }
    sl_buf_t err = {0};
    if (sl_ca_init_files(cert, key, cn, days, force, &err) != 0) {
        fprintf(stderr, "sluice ca init: %s", sl_buf_cstr(&err));
        sl_buf_free(&err);
        return 1;
    }
    sl_buf_free(&err);
    sl_ca_t *ca = sl_ca_load(cert, key, &err);
    if (ca == NULL) {
        fprintf(stderr, "sluice ca init: wrote the CA but cannot load it back: %s",
                sl_buf_cstr(&err));
        sl_buf_free(&err);
        return 1;
    }
    char fp[96];
    sl_ca_fingerprint_sha256(ca, fp);
    printf("created CA\n  certificate: %s (give this to sandboxes)\n"
           "  key:         %s (mode 0600; keep it out of every sandbox)\n"
           "  SHA-256:     %s\n",
           cert, key, fp);
    sl_ca_unref(ca);
    return 0;
}

static void print_time(BIO *out, const char *label, const ASN1_TIME *t)
{
    BIO_printf(out, "%s", label);
    ASN1_TIME_print(out, t);
    BIO_printf(out, "\n");
}

/* Print one certificate file (see show_usage). Returns the exit status. */
static int show_file(const char *cert)
{
    FILE *f = strcmp(cert, "-") == 0 ? stdin : fopen(cert, "r");
    if (f == NULL) {
        fprintf(stderr, "sluice ca show: %s: %s\n", cert, strerror(errno));
        return 1;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    if (f != stdin)
        fclose(f);
    if (x == NULL) {
        fprintf(stderr, "sluice ca show: %s: not a PEM certificate\n", cert);
        return 1;
    }
    BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    X509_digest(x, EVP_sha256(), md, &mdlen);
    BIO_printf(out, "subject:     ");
    X509_NAME_print_ex(out, X509_get_subject_name(x), 0, XN_FLAG_ONELINE);
    BIO_printf(out, "\nissuer:      ");
    X509_NAME_print_ex(out, X509_get_issuer_name(x), 0, XN_FLAG_ONELINE);
    BIO_printf(out, "\n");
    print_time(out, "not before:  ", X509_get0_notBefore(x));
    print_time(out, "not after:   ", X509_get0_notAfter(x));
    BIO_printf(out, "is a CA:     %s\n", X509_check_ca(x) == 1 ? "yes" : "NO (cannot sign leaves)");
    BIO_printf(out, "SHA-256:     ");
    for (unsigned i = 0; i < mdlen; i++)
        BIO_printf(out, i + 1 < mdlen ? "%02X:" : "%02X\n", md[i]);
    PEM_write_bio_X509(out, x);
    BIO_free(out);
    X509_free(x);
    return 0;
}

/* Print one CA of a config, headed by who it signs for. `cert` is the
 * ca_cert file, or NULL for an ephemeral CA whose certificate is in
 * `out` (ca_out). Returns the exit status. */
static int show_config_ca(const char *who, const char *cert, const char *out)
{
    const char *file = cert ? cert : out;
    fflush(stdout);
    printf("== %s: %s CA, certificate %s\n", who, cert ? "persistent" : "ephemeral",
           file ? file : "(none)");
    fflush(stdout);
    if (file == NULL) {
        fprintf(stderr,
                "sluice ca show: %s: the CA is ephemeral and has no ca_out, so its certificate "
                "exists only in the running sluice; set ca_out\n",
                who);
        return 1;
    }
    if (cert == NULL && access(file, F_OK) != 0) {
        fprintf(stderr,
                "sluice ca show: %s: %s does not exist (yet): sluice writes an ephemeral CA's "
                "certificate there when it starts\n",
                who, file);
        return 1;
    }
    return show_file(file);
}

static bool has_own_ca(const sl_identity_cfg_t *ic)
{
    return ic->tls.ca != NULL || ic->tls.ca_cert != NULL;
}

/* The CAs of a config: one identity's, or all of them. */
static int show_config(const char *path, const char *identity)
{
    sl_buf_t err = {0};
    sl_config_t *cfg = sl_config_load_file(path, &err);
    if (cfg == NULL) {
        fprintf(stderr, "sluice ca show: %s", sl_buf_cstr(&err));
        sl_buf_free(&err);
        return 1;
    }
    sl_buf_free(&err);
    int rc = 0;
    const sl_identity_cfg_t *only = NULL;
    bool found = identity == NULL || strcmp(identity, "default") == 0;
    for (size_t i = 0; identity && !found && i < cfg->n_identities; i++)
        if (strcmp(cfg->identities[i].name, identity) == 0) {
            found = true;
            only = &cfg->identities[i];
        }
    if (!found) {
        fprintf(stderr, "sluice ca show: %s: no identity named \"%s\"\n", path, identity);
        rc = 1;
    } else if (only != NULL && has_own_ca(only)) {
        char who[96];
        snprintf(who, sizeof who, "identity %s", only->name);
        rc = show_config_ca(who, only->tls.ca_cert, only->tls.ca_out);
    } else {
        /* The instance CA, headed by the identities it signs for. */
        sl_buf_t who = {0};
        sl_buf_append_str(&who, "instance CA, for ");
        if (identity != NULL) {
            sl_buf_appendf(&who, "identity %s", identity);
        } else {
            sl_buf_append_str(&who, "identities");
            for (size_t i = 0; i < cfg->n_identities; i++)
                if (!has_own_ca(&cfg->identities[i]))
                    sl_buf_appendf(&who, " %s", cfg->identities[i].name);
            sl_buf_append_str(&who, " default");
        }
        rc = show_config_ca(sl_buf_cstr(&who), cfg->tls.ca_cert, cfg->tls.ca_out);
        sl_buf_free(&who);
        for (size_t i = 0; identity == NULL && i < cfg->n_identities; i++) {
            const sl_identity_cfg_t *ic = &cfg->identities[i];
            if (!has_own_ca(ic))
                continue;
            char w[96];
            snprintf(w, sizeof w, "identity %s", ic->name);
            if (show_config_ca(w, ic->tls.ca_cert, ic->tls.ca_out) != 0)
                rc = 1;
        }
    }
    sl_config_free(cfg);
    return rc;
}

static int ca_show(int argc, char **argv)
{
    const char *cert = NULL, *config = NULL, *identity = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(show_usage, stdout);
            return 0;
        }
        if (strcmp(a, "--cert") == 0)
            dst = &cert;
        else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            dst = &config;
        else if (strcmp(a, "--identity") == 0)
            dst = &identity;
        if (dst == NULL) {
            fprintf(stderr, "sluice ca show: unexpected argument '%s'\n\n%s", a, show_usage);
            return 2;
        }
        const char *v = opt_value(argc, argv, &i, "show", show_usage);
        if (v == NULL)
            return 2;
        if (*dst != NULL) {
            fprintf(stderr, "sluice ca show: give %s only once\n", a);
            return 2;
        }
        *dst = v;
    }
    if ((cert == NULL) == (config == NULL) || (identity != NULL && config == NULL)) {
        fprintf(stderr,
                "sluice ca show: which CA? use --cert FILE, or -c CONFIG [--identity NAME]\n\n%s",
                show_usage);
        return 2;
    }
    return cert ? show_file(cert) : show_config(config, identity);
}

int sl_cmd_ca(int argc, char **argv)
{
    if (argc < 2) {
        fputs(ca_usage, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "init") == 0)
        return ca_init(argc - 1, argv + 1);
    if (strcmp(sub, "show") == 0)
        return ca_show(argc - 1, argv + 1);
    if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
        fputs(ca_usage, stdout);
        return 0;
    }
    fprintf(stderr, "sluice ca: unknown command '%s'\n\n%s", sub, ca_usage);
    return 2;
}
