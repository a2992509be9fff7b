/* Inspection engine benchmark: the hot paths against their targets.
 *
 * Run: ninja -C build bench_scan && ./build/bench_scan [--rules PATH]...
 * (from the repo root; without --rules it uses the rules built into the
 * binary, or tests/unit/rules-fixtures when none are embedded).
 *
 * --only SUBSTR runs only the cases whose name contains SUBSTR (for perf stat).
 *
 * ./build/bench_scan --corpus DIR [--rounds N] instead scans every regular
 * file in DIR (read into memory first) through the request-body surface and
 * through all categories, N rounds (default 3), and prints the fastest
 * round's total as one line: CORPUS {"files":..,"bytes":..,"body_s":..,
 * "all_s":..,"body_findings":..,"all_findings":..} (bench/scan/run.py reads it).
 *
 * Prints, per case, the median (and fastest) wall time and the median CPU
 * time of this thread per scan over 15 batches
 * next to a baseline over the same bytes (memchr + memcpy), and the target:
 *   10 KiB clean English prose, response surface, full normalisation: <= 25 us
 *   a typical URL through the URL checks (whole URL + joined query values): <= 3 us */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "inspect/inspect.h"

static const char *const prose[] = {
    "The committee met on Tuesday to review the quarterly figures, and most members agreed that "
    "the results were better than expected. ",
    "Sales in the northern region grew steadily, although costs rose faster than anyone had "
    "planned for at the start of the year. ",
    "After a long discussion about hiring, the chair proposed that the team revisit the budget "
    "in the spring, once the new office had opened. ",
    "Several people noted that the documentation was out of date, so a small group volunteered "
    "to rewrite the guides before the next release.\n\n",
    "In the afternoon, visitors from the partner company presented their roadmap; it included a "
    "new mobile application, better search, and support for more languages. ",
    "Questions focused on timing, pricing and whether existing customers would need to migrate "
    "their data by hand. ",
    "The weather turned cold in the evening, and the walk back to the station took longer than "
    "usual because of the rain.\n",
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* This thread's CPU time: on a shared, loaded machine it is the stable measure. */
static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef void (*fn_t)(void *arg);

static double last_min; /* fastest batch of the last bench() call */
static double last_cpu; /* median CPU time per call of the last bench() call */

/* Median ns per call over 15 batches of `iters` calls (the fastest batch is
 * kept in last_min: on a shared machine it is the better estimate of cost). */
static double bench(fn_t fn, void *arg, int iters)
{
    double t[15], ct[15];
    for (int w = 0; w < iters / 10 + 1; w++)
        fn(arg);
    for (int b = 0; b < 15; b++) {
        double t0 = now_ns(), c0 = cpu_ns();
        for (int i = 0; i < iters; i++)
            fn(arg);
        t[b] = (now_ns() - t0) / iters;
        ct[b] = (cpu_ns() - c0) / iters;
    }
    qsort(t, 15, sizeof t[0], cmp_d);
    qsort(ct, 15, sizeof ct[0], cmp_d);
    last_min = t[0];
    last_cpu = ct[7];
    return t[7];
}

typedef struct job {
    const sl_ruleset_t *rs;
    sl_surface_t surface;
    const char *p;
    size_t n;
    sl_findings_t f;
    char *copy;
    size_t chunk;
    const sl_view_t *vals;
    size_t nvals;
} job_t;

static volatile size_t sink;

static void do_scan(void *a)
{
    job_t *j = a;
    sl_findings_reset(&j->f);
    sl_inspect_scan(j->rs, j->surface, j->p, j->n, &j->f);
    sink += j->f.n;
}

static void do_url(void *a)
{
    job_t *j = a;
    sl_findings_reset(&j->f);
    sl_inspect_scan(j->rs, SL_SURF_URL, j->p, j->n, &j->f);
    sl_inspect_scan_joined(j->rs, SL_SURF_URL, j->vals, j->nvals, &j->f);
    sink += j->f.n;
}

static void do_stream(void *a)
{
    job_t *j = a;
    sl_findings_reset(&j->f);
    sl_inspect_stream_t *st = sl_inspect_stream_open(j->rs, j->surface);
    for (size_t off = 0; off < j->n; off += j->chunk)
        sl_inspect_stream_feed(st, j->p + off, j->n - off < j->chunk ? j->n - off : j->chunk,
                               &j->f);
    sl_inspect_stream_close(st, &j->f);
    sink += j->f.n;
}

static void do_baseline(void *a)
{
    job_t *j = a;
    memcpy(j->copy, j->p, j->n);
    const char *q = memchr(j->copy, 0x01, j->n);
    sink += q ? 1 : 0;
}

static const char *only; /* --only: run the cases whose name contains this */

static bool selected(const char *name)
{
    return only == NULL || strstr(name, only) != NULL;
}

static void row(const char *name, double ns, double base, size_t bytes, const char *target)
{
    printf("%-44s %9.2f us (min %7.2f, cpu %8.2f)  %8.1f MB/s  baseline %7.3f us  %s\n", name,
           ns / 1000, last_min / 1000, last_cpu / 1000, (double)bytes / ns * 1000, base / 1000,
           target);
}

/* Engine time over every regular file in dir (read first, so no I/O is timed). */
static int corpus(const sl_ruleset_t *rs, const char *dir, int rounds)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 2;
    }
    sl_buf_t *files = NULL;
    size_t nf = 0, cap = 0, bytes = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        if (nf == cap) {
            cap = cap ? cap * 2 : 256;
            files = realloc(files, cap * sizeof *files);
            if (!files)
                abort();
        }
        sl_buf_t b = {0};
        char chunk[65536];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
            sl_buf_append(&b, chunk, n);
        fclose(f);
        bytes += b.n;
        files[nf++] = b;
    }
    closedir(d);
    static const sl_surface_t surf[2] = {SL_SURF_BODY, SL_SURF_ALL};
    double best[2] = {1e300, 1e300};
    size_t found[2] = {0, 0};
    sl_findings_t f = {0};
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < 2; k++) {
            size_t hits = 0;
            double t0 = now_ns();
            for (size_t i = 0; i < nf; i++) {
                sl_findings_reset(&f);
                sl_inspect_scan(rs, surf[k], files[i].p, files[i].n, &f);
                hits += f.n > 0;
            }
            double t = (now_ns() - t0) / 1e9;
            if (t < best[k])
                best[k] = t;
            found[k] = hits;
        }
    }
    printf("CORPUS {\"files\":%zu,\"bytes\":%zu,\"body_s\":%.6f,\"all_s\":%.6f,"
           "\"body_files_with_findings\":%zu,\"all_files_with_findings\":%zu}\n",
           nf, bytes, best[0], best[1], found[0], found[1]);
    for (size_t i = 0; i < nf; i++)
        sl_buf_free(&files[i]);
    free(files);
    sl_findings_free(&f);
    return 0;
}

int main(int argc, char **argv)
{
    const char **paths = calloc((size_t)argc + 1, sizeof *paths);
    size_t np = 0;
    const char *corpus_dir = NULL;
    int rounds = 3;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--rules") == 0 && i + 1 < argc)
            paths[np++] = argv[++i];
        else if (strcmp(argv[i], "--corpus") == 0 && i + 1 < argc)
            corpus_dir = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
    sl_ruleset_opts_t o = {.paths = paths, .n_paths = np};
    sl_buf_t err = {0};
    sl_ruleset_t *rs = sl_ruleset_load(&o, &err);
    if (rs && sl_ruleset_count(rs) == 0) {
        sl_ruleset_unref(rs);
        static const char *fx[] = {"tests/unit/rules-fixtures"};
        o.paths = fx;
        o.n_paths = 1;
        rs = sl_ruleset_load(&o, &err);
    }
    if (!rs) {
        fprintf(stderr, "bench_scan: %s", sl_buf_cstr(&err));
        return 2;
    }
    unsigned cats[SL_CAT__COUNT] = {0};
    for (size_t i = 0; i < sl_ruleset_count(rs); i++)
        cats[sl_ruleset_rule(rs, i)->category]++;
    printf("rules: %zu (credential %u, financial %u, injection %u, tool-poisoning %u, shell %u); "
           "compiled databases %.1f MiB\n",
           sl_ruleset_count(rs), cats[0], cats[1], cats[2], cats[3], cats[4],
           (double)sl_ruleset_db_bytes(rs) / (1 << 20));
    if (corpus_dir) {
        int rc = corpus(rs, corpus_dir, rounds);
        sl_ruleset_unref(rs);
        sl_buf_free(&err);
        free(paths);
        return rc;
    }

    sl_buf_t text = {0};
    for (size_t i = 0; text.n < 10240; i = (i * 3 + 1) % (sizeof prose / sizeof prose[0]))
        sl_buf_append_str(&text, prose[i]);
    text.n = 10240;
    job_t j = {.rs = rs, .p = text.p, .n = text.n, .copy = malloc(text.n), .chunk = 1024};
    double base = bench(do_baseline, &j, 2000);

    j.surface = SL_SURF_RESPONSE;
    do_scan(&j);
    if (j.f.n)
        printf("warning: the prose has %zu findings (first: %s)\n", j.f.n, j.f.v[0].rule_id);
    if (selected("10 KiB prose, response (injection)"))
        row("10 KiB prose, response (injection)", bench(do_scan, &j, 500), base, text.n,
            "target <= 25 us");
    j.surface = SL_SURF_BODY;
    if (selected("10 KiB prose, request body (credential+fin)"))
        row("10 KiB prose, request body (credential+fin)", bench(do_scan, &j, 500), base, text.n,
            "");
    j.surface = SL_SURF_ALL;
    if (selected("10 KiB prose, all categories"))
        row("10 KiB prose, all categories", bench(do_scan, &j, 500), base, text.n, "");
    j.surface = SL_SURF_RESPONSE;
    /* Real text has numbers (dates, times, amounts): leet characters, though
     * not inside words. */
    sl_buf_t num = {0};
    for (unsigned k = 0; num.n < 10240; k++) {
        sl_buf_append(&num, text.p + (k * 97) % 9000, 90);
        sl_buf_appendf(&num, " on 2024-0%u-1%u at 10:%02u, $%u.50 (%u%%) ", k % 9 + 1, k % 10,
                       k % 60, k * 13 % 1000, k % 70);
    }
    num.n = 10240;
    job_t jn = {.rs = rs, .p = num.p, .n = num.n, .surface = SL_SURF_RESPONSE};
    if (selected("10 KiB prose with numbers, response"))
        row("10 KiB prose with numbers, response", bench(do_scan, &jn, 500), base, num.n, "");
    sl_findings_free(&jn.f);
    sl_buf_free(&num);
    if (selected("10 KiB prose, response, streamed 1 KiB chunks"))
        row("10 KiB prose, response, streamed 1 KiB chunks", bench(do_stream, &j, 300), base,
            text.n, "");

    sl_buf_t big = {0};
    while (big.n < (1u << 20))
        sl_buf_append(&big, text.p, text.n);
    big.n = 1u << 20;
    job_t m = {.rs = rs,
               .p = big.p,
               .n = big.n,
               .copy = malloc(big.n),
               .chunk = 16384,
               .surface = SL_SURF_RESPONSE};
    double mbase = bench(do_baseline, &m, 5);
    if (selected("1 MiB prose, response, streamed 16 KiB chunks"))
        row("1 MiB prose, response, streamed 16 KiB chunks", bench(do_stream, &m, 5), mbase, big.n,
            "");
    sl_findings_free(&m.f);
    free(m.copy);
    sl_buf_free(&big);

    static const char url[] = "https://api.github.com/repos/octo-org/hello-world/issues"
                              "?state=open&per_page=100&page=2&sort=updated&direction=desc";
    static const sl_view_t qv[] = {SL_VIEW_LIT("open"), SL_VIEW_LIT("100"), SL_VIEW_LIT("2"),
                                   SL_VIEW_LIT("updated"), SL_VIEW_LIT("desc")};
    job_t u = {.rs = rs,
               .p = url,
               .n = sizeof url - 1,
               .copy = malloc(sizeof url),
               .vals = qv,
               .nvals = 5};
    double ubase = bench(do_baseline, &u, 20000);
    if (selected("typical URL, url checks + joined query"))
        row("typical URL, url checks + joined query", bench(do_url, &u, 20000), ubase, u.n,
            "target <= 3 us");

    sl_findings_free(&j.f);
    sl_findings_free(&u.f);
    free(j.copy);
    free(u.copy);
    sl_buf_free(&text);
    sl_buf_free(&err);
    free(paths);
    sl_ruleset_unref(rs);
    return 0;
}
