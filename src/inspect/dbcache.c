#include "inspect/dbcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pwd.h>

#include <openssl/evp.h>

#include "core/log.h"

#define CACHE_MAGIC "sluice-hsdb-4\n"

static bool dir_ok(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0700) == -1 && errno != EEXIST)
        return false;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
           (st.st_mode & 022) == 0;
}

/* The cache directory (created), or false. */
static bool cache_dir(char *out, size_t cap)
{
    const char *env = getenv("SLUICE_CACHE_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return dir_ok(out);
    }
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (home == NULL || *home == '\0') {
        /* A stripped environment (service managers, tests): the same home
         * as an interactive start, so both find the same cache. */
        struct passwd *pw = getpwuid(geteuid());
        home = pw ? pw->pw_dir : NULL;
    }
    if ((xdg && *xdg) || (home && *home)) {
        char parent[512];
        if (xdg && *xdg)
            snprintf(parent, sizeof parent, "%s", xdg);
        else
            snprintf(parent, sizeof parent, "%s/.cache", home);
        mkdir(parent, 0700);
        snprintf(out, cap, "%s/sluice", parent);
        if (dir_ok(out))
            return true;
    }
    snprintf(out, cap, "/tmp/sluice-cache-%u", (unsigned)geteuid());
    return dir_ok(out);
}

/* Path of the entry for this ruleset: SHA-256 of what shapes the databases. */
static bool entry_path(const sl_ruleset_t *rs, char *out, size_t cap)
{
    char dir[600];
    if (!cache_dir(dir, sizeof dir))
        return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char h[32];
    unsigned hl = 0;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    const char *ver = hs_version();
    EVP_DigestUpdate(md, CACHE_MAGIC, strlen(CACHE_MAGIC));
    EVP_DigestUpdate(md, ver, strlen(ver) + 1);
    for (size_t i = 0; i < rs->n; i++) {
        const sl_rule_t *r = &rs->rules[i];
        uint32_t groups = 0;
        for (int g = 0; g < SL_DB__COUNT; g++)
            groups |= (uint32_t)sl_engine_in_group(r, (sl_dbgroup_t)g) << g;
        EVP_DigestUpdate(md, r->info.pattern, strlen(r->info.pattern) + 1);
        EVP_DigestUpdate(md, &r->hs_flags, sizeof r->hs_flags);
        EVP_DigestUpdate(md, &groups, sizeof groups);
    }
    EVP_DigestFinal_ex(md, h, &hl);
    EVP_MD_CTX_free(md);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", h[i]);
    snprintf(out, cap, "%s/%s.db", dir, hex);
    return true;
}

static bool read_u64(FILE *f, uint64_t *v)
{
    return fread(v, sizeof *v, 1, f) == 1;
}

int sl_dbcache_load(sl_ruleset_t *rs)
{
    char path[800];
    if (!entry_path(rs, path, sizeof path))
        return -1;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    sl_db_t db[SL_DB__COUNT];
    memset(db, 0, sizeof db);
    char magic[sizeof CACHE_MAGIC];
    uint64_t n = 0;
    size_t bytes = 0;
    bool ok = fread(magic, 1, sizeof CACHE_MAGIC - 1, f) == sizeof CACHE_MAGIC - 1 &&
              memcmp(magic, CACHE_MAGIC, sizeof CACHE_MAGIC - 1) == 0 && read_u64(f, &n) &&
              n == rs->n;
    for (int g = 0; ok && g < SL_DB__COUNT; g++) {
        uint64_t cnt = 0;
        ok = read_u64(f, &cnt);
        db[g].n = (size_t)cnt;
        hs_database_t **slot[2] = {&db[g].block, &db[g].stream};
        for (int k = 0; ok && k < 2; k++) {
            uint64_t len = 0;
            ok = read_u64(f, &len) && len < (1ull << 30);
            if (!ok || len == 0)
                continue;
            char *blob = malloc(len);
            ok = blob && fread(blob, 1, len, f) == len &&
                 hs_deserialize_database(blob, len, slot[k]) == HS_SUCCESS;
            size_t sz = 0;
            if (ok && hs_database_size(*slot[k], &sz) == HS_SUCCESS)
                bytes += sz;
            free(blob);
        }
    }
    fclose(f);
    if (!ok) {
        for (int g = 0; g < SL_DB__COUNT; g++) {
            hs_free_database(db[g].block);
            hs_free_database(db[g].stream);
        }
        return -1;
    }
    memcpy(rs->db, db, sizeof db);
    rs->db_bytes = bytes;
    return 0;
}

static bool write_db(FILE *f, const hs_database_t *db)
{
    uint64_t len = 0;
    if (db == NULL)
        return fwrite(&len, sizeof len, 1, f) == 1;
    char *blob = NULL;
    size_t n = 0;
    if (hs_serialize_database(db, &blob, &n) != HS_SUCCESS)
        return false;
    len = n;
    bool ok = fwrite(&len, sizeof len, 1, f) == 1 && fwrite(blob, 1, n, f) == n;
    free(blob);
    return ok;
}

void sl_dbcache_store(const sl_ruleset_t *rs)
{
    char path[800], tmp[820];
    if (!entry_path(rs, path, sizeof path))
        return;
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1)
        return;
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        return;
    }
    uint64_t n = rs->n;
    bool ok = fwrite(CACHE_MAGIC, 1, strlen(CACHE_MAGIC), f) == strlen(CACHE_MAGIC) &&
              fwrite(&n, sizeof n, 1, f) == 1;
    for (int g = 0; ok && g < SL_DB__COUNT; g++) {
        uint64_t cnt = rs->db[g].n;
        ok = fwrite(&cnt, sizeof cnt, 1, f) == 1 && write_db(f, rs->db[g].block) &&
             write_db(f, rs->db[g].stream);
    }
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        sl_debug("compiled rules cached in %s", path);
    else
        unlink(tmp);
}
