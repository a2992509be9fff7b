/* Loading secrets from their sources into locked, non-dumpable memory. */
#include "secrets/store.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/schema.h"
#include "core/log.h"
#include "secrets/codec.h"
#include "secrets/store-t.h"

void (*sl_secret_store_wipe_hook)(const unsigned char *p, size_t n);

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        abort();
    return p;
}

static char *dup_or_null(const char *s)
{
    return s ? sl_cfg_strdup(sl_view(s, strlen(s))) : NULL;
}

static char **dup_list(char *const *v, size_t n)
{
    char **out = xcalloc(n, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = dup_or_null(v[i]);
    return out;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void copy_cfg(sl_secret_cfg_t *d, const sl_secret_cfg_t *s)
{
    *d = *s;
    d->name = dup_or_null(s->name);
    d->env = dup_or_null(s->env);
    d->file = dup_or_null(s->file);
    d->placeholder = dup_or_null(s->placeholder);
    d->hosts = dup_list(s->hosts, s->n_hosts);
    d->methods = dup_list(s->methods, s->n_methods);
    d->paths = dup_list(s->paths, s->n_paths);
    d->identities = dup_list(s->identities, s->n_identities);
    d->inject_header = dup_or_null(s->inject_header);
    d->inject_template = dup_or_null(s->inject_template);
}

static void free_cfg(sl_secret_cfg_t *c)
{
    free(c->name);
    free(c->env);
    free(c->file);
    free(c->placeholder);
    free_list(c->hosts, c->n_hosts);
    free_list(c->methods, c->n_methods);
    free_list(c->paths, c->n_paths);
    free_list(c->identities, c->n_identities);
    free(c->inject_header);
    free(c->inject_template);
}

/* Read one source into buf (cap SL_SECRET_VALUE_MAX + 2). Returns the length,
 * or -1 after reporting. Messages name the secret and source, not the value. */
static long read_source(const sl_secret_cfg_t *c, unsigned char *buf, sl_buf_t *err)
{
    size_t n = 0;
    if (c->env != NULL) {
        const char *v = getenv(c->env);
        if (v == NULL) {
            sl_buf_appendf(err,
                           "secret '%s': environment variable %s is not set; set it in sluice's "
                           "environment (not the sandbox's)\n",
                           c->name, c->env);
            return -1;
        }
        n = strlen(v);
        if (n > SL_SECRET_VALUE_MAX) {
            sl_buf_appendf(err, "secret '%s': environment variable %s is longer than %d bytes\n",
                           c->name, c->env, SL_SECRET_VALUE_MAX);
            return -1;
        }
        memcpy(buf, v, n);
    } else {
        int fd = open(c->file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        struct stat st;
        if (fd == -1) {
            sl_buf_appendf(err,
                           "secret '%s': cannot open file %s: %s; check the path and "
                           "permissions\n",
                           c->name, c->file, strerror(errno));
            return -1;
        }
        if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
            sl_buf_appendf(err,
                           "secret '%s': %s is not a regular file; point file: at the file "
                           "holding the value\n",
                           c->name, c->file);
            close(fd);
            return -1;
        }
        for (;;) {
            ssize_t got = read(fd, buf + n, SL_SECRET_VALUE_MAX + 2 - n);
            if (got == -1 && errno == EINTR)
                continue;
            if (got == -1) {
                sl_buf_appendf(err, "secret '%s': cannot read file %s: %s\n", c->name, c->file,
                               strerror(errno));
                close(fd);
                return -1;
            }
            if (got == 0)
                break;
            n += (size_t)got;
            if (n == SL_SECRET_VALUE_MAX + 2)
                break;
        }
        close(fd);
        /* One trailing newline is how editors and `echo` end files. */
        if (n > 0 && buf[n - 1] == '\n')
            n--;
        if (n > 0 && buf[n - 1] == '\r')
            n--;
        if (n > SL_SECRET_VALUE_MAX) {
            sl_buf_appendf(err, "secret '%s': file %s is longer than %d bytes\n", c->name, c->file,
                           SL_SECRET_VALUE_MAX);
            return -1;
        }
    }
    const char *src = c->env ? "environment variable" : "file";
    const char *what = c->env ? c->env : c->file;
    if (n == 0) {
        sl_buf_appendf(err, "secret '%s': %s %s is empty; put the credential there\n", c->name, src,
                       what);
        return -1;
    }
    if (memchr(buf, '\n', n) || memchr(buf, '\r', n) || memchr(buf, '\0', n)) {
        sl_buf_appendf(err,
                       "secret '%s': the value in %s %s contains a line break or NUL byte; a "
                       "credential is one line\n",
                       c->name, src, what);
        return -1;
    }
    if (n < SL_SECRET_VALUE_MIN) {
        sl_buf_appendf(err,
                       "secret '%s': the value in %s %s is shorter than %d bytes; too short to "
                       "detect and redact safely\n",
                       c->name, src, what, SL_SECRET_VALUE_MIN);
        return -1;
    }
    return (long)n;
}

/* Write the echo variants of secret i's value (and the placeholder forms
 * that replace them) at w; fill their patterns and redaction actions. */
static unsigned char *add_variants(sl_secret_store_t *s, size_t i, unsigned char *w,
                                   const unsigned char **pat, size_t *plen)
{
    const sl_secret_t *sec = &s->sec[i];
    size_t base = 2 * s->n + SL_SECRET_VARIANTS * i;
    for (unsigned k = 0; k < SL_SECRET_VARIANTS; k++) {
        size_t p = base + k, n, rn;
        unsigned char *pw = w;
        const unsigned char *to = sec->ph;
        if (k <= SL_SECRET_VAR_B64_2) {
            n = sl_secret_b64_inner(sec->value, sec->value_n, k, (char *)pw);
            to = pw + n;
            rn = sl_secret_b64_inner(sec->ph, sec->ph_n, k, (char *)pw + n);
        } else if (k == SL_SECRET_VAR_JSON) {
            n = 0;
            for (size_t j = 0; j < sec->value_n; j++) {
                if (sec->value[j] == '/')
                    pw[n++] = '\\';
                pw[n++] = sec->value[j];
            }
            rn = sec->ph_n;
        } else {
            n = sl_secret_pct_encode(sec->value, sec->value_n, (char *)pw);
            rn = sec->ph_n;
        }
        pat[p] = pw;
        plen[p] = n;
        w += n + (to == sec->ph ? 0 : rn);
        /* A form identical to the value adds nothing: leave it off. */
        if (n == sec->value_n && memcmp(pw, sec->value, n) == 0)
            continue;
        s->redact[p] = (sl_smatch_act_t){SL_SM_REPLACE, to, rn};
    }
    return w;
}

static void region_free(unsigned char *p, size_t n)
{
    if (p == NULL)
        return;
    /* Read-only after build: make it writable to wipe it. */
    mprotect(p, n, PROT_READ | PROT_WRITE);
    explicit_bzero(p, n);
    if (sl_secret_store_wipe_hook != NULL)
        sl_secret_store_wipe_hook(p, n);
    munlock(p, n);
    munmap(p, n);
}

static void store_free(sl_secret_store_t *s)
{
    region_free(s->region, s->region_n);
    for (size_t i = 0; i < s->n; i++) {
        free_cfg(&s->sec[i].cfg);
        sl_hostset_free(s->sec[i].hosts);
    }
    free(s->sec);
    free(s->redact);
    free(s->detect);
    free(s);
}

sl_secret_store_t *sl_secret_store_new(const sl_secret_cfg_t *cfg, size_t n, sl_buf_t *err)
{
    if (n * (2 + SL_SECRET_VARIANTS) > SL_SMATCH_MAX) {
        sl_buf_appendf(err, "secrets: more than %d secrets\n",
                       SL_SMATCH_MAX / (2 + SL_SECRET_VARIANTS));
        return NULL;
    }
    sl_secret_store_t *s = xcalloc(1, sizeof *s);
    atomic_init(&s->refs, 1);
    s->n = n;
    s->sec = xcalloc(n, sizeof *s->sec);
    s->n_pat = (2 + SL_SECRET_VARIANTS) * n;
    s->redact = xcalloc(s->n_pat, sizeof *s->redact);
    s->detect = xcalloc(s->n_pat, sizeof *s->detect);
    size_t before = err->n;

    /* Values go straight from the source into a locked scratch page run,
     * then into the region; nothing is left on the heap or stack. */
    size_t scratch_n = 2 * (SL_SECRET_VALUE_MAX + 2);
    unsigned char *scratch =
        mmap(NULL, scratch_n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch == MAP_FAILED) {
        sl_buf_appendf(err, "secrets: cannot map memory: %s\n", strerror(errno));
        goto fail;
    }
    (void)mlock(scratch, scratch_n);
    (void)madvise(scratch, scratch_n, MADV_DONTDUMP);

    size_t total = sizeof(sl_smatch_t);
    size_t *vlen = xcalloc(n, sizeof *vlen);
    const unsigned char **pat = xcalloc(s->n_pat, sizeof *pat);
    size_t *plen = xcalloc(s->n_pat, sizeof *plen);
    for (size_t i = 0; i < n; i++) {
        copy_cfg(&s->sec[i].cfg, &cfg[i]);
        s->sec[i].hosts = sl_hostset_new(cfg[i].hosts, cfg[i].n_hosts);
        if (s->sec[i].hosts == NULL)
            sl_buf_appendf(err, "secret '%s': invalid host pattern\n", cfg[i].name);
        if (cfg[i].placeholder == NULL)
            sl_buf_appendf(err, "secret '%s': no placeholder\n", cfg[i].name);
        long got = read_source(&cfg[i], scratch, err);
        vlen[i] = got < 0 ? 0 : (size_t)got;
        explicit_bzero(scratch, (size_t)(got < 0 ? 0 : got));
        size_t pn = cfg[i].placeholder ? strlen(cfg[i].placeholder) : 0;
        /* Value, placeholder, their base64 forms, JSON and percent forms. */
        total += vlen[i] + pn + 3 * (SL_SECRET_B64_LEN(vlen[i]) + 4) +
                 3 * (SL_SECRET_B64_LEN(pn) + 4) + 2 * vlen[i] + SL_SECRET_PCT_LEN(vlen[i]);
    }
    if (err->n != before)
        goto fail_scratch;

    long page = sysconf(_SC_PAGESIZE);
    s->region_n = (total + (size_t)page - 1) / (size_t)page * (size_t)page;
    s->region = mmap(NULL, s->region_n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (s->region == MAP_FAILED) {
        s->region = NULL;
        sl_buf_appendf(err, "secrets: cannot map %zu bytes: %s\n", s->region_n, strerror(errno));
        goto fail_scratch;
    }
    s->locked = mlock(s->region, s->region_n) == 0;
    if (!s->locked)
        sl_warn("secrets: cannot lock secret memory (%s); values may be swapped to disk; raise "
                "RLIMIT_MEMLOCK (ulimit -l)",
                strerror(errno));
    if (madvise(s->region, s->region_n, MADV_DONTDUMP) == -1)
        sl_warn("secrets: cannot exclude secret memory from core dumps (%s)", strerror(errno));

    s->m = (sl_smatch_t *)s->region;
    unsigned char *w = s->region + sizeof(sl_smatch_t);
    for (size_t i = 0; i < n; i++) {
        /* Read again: a source changing between the two reads is caught by
         * the length check; values are never copied anywhere else. */
        long got = read_source(&cfg[i], scratch, err);
        if (got < 0 || (size_t)got != vlen[i]) {
            if (got >= 0)
                sl_buf_appendf(err, "secret '%s': source changed while loading; try again\n",
                               cfg[i].name);
            explicit_bzero(scratch, SL_SECRET_VALUE_MAX + 2);
            goto fail_scratch;
        }
        memcpy(w, scratch, vlen[i]);
        explicit_bzero(scratch, vlen[i]);
        s->sec[i].value = w;
        s->sec[i].value_n = vlen[i];
        w += vlen[i];
        size_t pn = strlen(cfg[i].placeholder);
        memcpy(w, cfg[i].placeholder, pn);
        s->sec[i].ph = w;
        s->sec[i].ph_n = pn;
        w += pn;
        pat[i] = s->sec[i].value;
        plen[i] = vlen[i];
        pat[n + i] = s->sec[i].ph;
        plen[n + i] = pn;
        w = add_variants(s, i, w, pat, plen);
    }
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (memmem(s->sec[i].ph, s->sec[i].ph_n, s->sec[j].value, s->sec[j].value_n) == NULL)
                continue;
            if (i == j)
                sl_buf_appendf(err,
                               "secret '%s': the placeholder equals or contains the real value; "
                               "choose another placeholder\n",
                               cfg[i].name);
            else
                sl_buf_appendf(err,
                               "secret '%s': the placeholder contains the value of secret '%s'; "
                               "choose another placeholder\n",
                               cfg[i].name, cfg[j].name);
        }
    }
    if (err->n != before)
        goto fail_scratch;
    if (!sl_smatch_init(s->m, pat, plen, s->n_pat)) {
        sl_buf_appendf(err, "secrets: cannot build the matcher\n");
        goto fail_scratch;
    }
    for (size_t i = 0; i < n; i++) {
        s->redact[i] = (sl_smatch_act_t){SL_SM_REPLACE, s->sec[i].ph, s->sec[i].ph_n};
        s->detect[i] = (sl_smatch_act_t){SL_SM_FLAG, NULL, 0};
        s->detect[n + i] = (sl_smatch_act_t){SL_SM_FLAG, NULL, 0};
    }
    mprotect(s->region, s->region_n, PROT_READ);
    free(pat);
    free(plen);
    free(vlen);
    munlock(scratch, scratch_n);
    munmap(scratch, scratch_n);
    return s;

fail_scratch:
    free(pat);
    free(plen);
    free(vlen);
    explicit_bzero(scratch, scratch_n);
    munlock(scratch, scratch_n);
    munmap(scratch, scratch_n);
fail:
    store_free(s);
    return NULL;
}

sl_secret_store_t *sl_secret_store_ref(sl_secret_store_t *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void sl_secret_store_unref(sl_secret_store_t *s)
{
    if (s == NULL)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        store_free(s);
}

size_t sl_secret_store_count(const sl_secret_store_t *s)
{
    return s->n;
}

const char *sl_secret_store_name(const sl_secret_store_t *s, size_t i)
{
    return i < s->n ? s->sec[i].cfg.name : NULL;
}

const char *sl_secret_store_placeholder(const sl_secret_store_t *s, size_t i)
{
    return i < s->n ? s->sec[i].cfg.placeholder : NULL;
}

bool sl_secret_store_locked(const sl_secret_store_t *s)
{
    return s->n == 0 || s->locked;
}

void sl_secret_store_sandbox_env(const sl_secret_store_t *s, sl_buf_t *out)
{
    for (size_t i = 0; i < s->n; i++) {
        const sl_secret_cfg_t *c = &s->sec[i].cfg;
        if (c->env != NULL) {
            sl_buf_appendf(out, "%s=%s\n", c->env, c->placeholder);
            continue;
        }
        sl_buf_append_str(out, "SLUICE_SECRET_");
        for (const char *p = c->name; *p; p++)
            sl_buf_append(out, &(char){*p == '-' ? '_' : (char)toupper((unsigned char)*p)}, 1);
        sl_buf_appendf(out, "=%s\n", c->placeholder);
    }
}
