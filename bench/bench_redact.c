/* Throughput of secret-echo redaction and of the request-body filter.
 *
 *   ninja -C build bench_redact && build/bench_redact [secrets] [MiB] [chunk]
 *
 * Redacts a 1 MiB body (JSON-ish printable text) against 10 secrets of 40
 * bytes, fed in 16 KiB chunks as the proxy reads them, and prints MB/s next
 * to memcpy of the same bytes in the same run (the redactor has to copy the
 * body anyway: that is its floor). Cases: no secret in the body; one echo
 * per 4 KiB; the body fed whole; and the request-body filter (placeholders
 * -> values, values and out-of-scope placeholders flagged). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "secrets/inject.h"
#include "secrets/redact.h"
#include "secrets/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long long rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static volatile size_t sink;

static double bench_memcpy(const char *body, size_t n, int reps)
{
    char *dst = malloc(n);
    double t0 = now_s();
    for (int r = 0; r < reps; r++) {
        memcpy(dst, body, n);
        sink += (unsigned char)dst[r % n];
    }
    double dt = now_s() - t0;
    free(dst);
    return (double)n * reps / dt / 1e6;
}

static double bench_redactor(sl_secret_store_t *s, const char *body, size_t n, size_t chunk,
                             int reps, size_t *count)
{
    sl_buf_t out = {0};
    sl_buf_reserve(&out, n + n / 4);
    double t0 = now_s();
    for (int r = 0; r < reps; r++) {
        sl_redactor_t red;
        sl_redactor_init(&red, s);
        out.n = 0;
        for (size_t at = 0; at < n; at += chunk)
            sl_redactor_feed(&red, body + at, at + chunk <= n ? chunk : n - at, &out);
        sl_redactor_finish(&red, &out);
        *count = sl_redactor_count(&red);
        sl_redactor_free(&red);
        sink += out.n;
    }
    double dt = now_s() - t0;
    sl_buf_free(&out);
    return (double)n * reps / dt / 1e6;
}

static double bench_body_filter(sl_secret_store_t *s, const char *body, size_t n, size_t chunk,
                                int reps)
{
    sl_h1_header_t h = {SL_VIEW_LIT("Content-Type"), SL_VIEW_LIT("application/json")};
    sl_secret_req_t q = {.identity = SL_VIEW_LIT("agent"),
                         .method = SL_VIEW_LIT("POST"),
                         .host = SL_VIEW_LIT("api.s0.example.com"),
                         .path = SL_VIEW_LIT("/v1/x"),
                         .headers = &h,
                         .n_headers = 1};
    sl_secret_decision_t d;
    sl_secret_decide(s, &q, &d);
    sl_buf_t out = {0};
    sl_buf_reserve(&out, n + n / 4);
    double t0 = now_s();
    for (int r = 0; r < reps; r++) {
        sl_secret_body_t b;
        sl_secret_body_init(&b, &d);
        out.n = 0;
        for (size_t at = 0; at < n; at += chunk)
            if (sl_secret_body_feed(&b, body + at, at + chunk <= n ? chunk : n - at, &out) != 0)
                abort();
        if (sl_secret_body_finish(&b, &out) != 0)
            abort();
        sl_secret_body_free(&b);
        sink += out.n;
    }
    double dt = now_s() - t0;
    sl_buf_free(&out);
    sl_secret_decision_free(&d);
    return (double)n * reps / dt / 1e6;
}

static double bench_decide(sl_secret_store_t *s, int reps)
{
    sl_h1_header_t h[6] = {
        {SL_VIEW_LIT("Host"), SL_VIEW_LIT("api.s0.example.com")},
        {SL_VIEW_LIT("User-Agent"), SL_VIEW_LIT("python-httpx/0.27")},
        {SL_VIEW_LIT("Accept"), SL_VIEW_LIT("application/json")},
        {SL_VIEW_LIT("Content-Type"), SL_VIEW_LIT("application/json")},
        {SL_VIEW_LIT("Authorization"), SL_VIEW_LIT("Bearer PH_SECRET_0_PLACEHOLDER")},
        {SL_VIEW_LIT("Accept-Encoding"), SL_VIEW_LIT("gzip, deflate")},
    };
    sl_secret_req_t q = {.identity = SL_VIEW_LIT("agent"),
                         .method = SL_VIEW_LIT("POST"),
                         .host = SL_VIEW_LIT("api.s0.example.com"),
                         .path = SL_VIEW_LIT("/v1/chat/completions"),
                         .query = SL_VIEW_LIT("stream=true"),
                         .has_query = true,
                         .headers = h,
                         .n_headers = 6};
    double t0 = now_s();
    for (int r = 0; r < reps; r++) {
        sl_secret_decision_t d;
        sl_secret_decide(s, &q, &d);
        if (d.refused || d.n_uses != 1)
            abort();
        sl_secret_decision_free(&d);
    }
    return (now_s() - t0) / reps * 1e9;
}

int main(int argc, char **argv)
{
    int nsec = argc > 1 ? atoi(argv[1]) : 10;
    size_t n = (size_t)(argc > 2 ? atoi(argv[2]) : 1) << 20;
    size_t chunk = argc > 3 ? (size_t)atoi(argv[3]) : 16384;
    if (nsec < 1 || nsec > 256 || n == 0 || chunk == 0)
        return 2;

    /* Secrets with random 40-byte values, scoped to api.sN.example.com. */
    sl_secret_cfg_t *cfg = calloc((size_t)nsec, sizeof *cfg);
    char(*vals)[41] = calloc((size_t)nsec, sizeof *vals);
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < nsec; i++) {
        char name[32], env[32], ph[64], host[64];
        snprintf(name, sizeof name, "s%d", i);
        snprintf(env, sizeof env, "BENCH_SECRET_%d", i);
        snprintf(ph, sizeof ph, "PH_SECRET_%d_PLACEHOLDER", i);
        snprintf(host, sizeof host, "api.s%d.example.com", i);
        memcpy(vals[i], "sk-", 3);
        for (int k = 3; k < 40; k++)
            vals[i][k] = alnum[rnd(sizeof alnum - 1)];
        setenv(env, vals[i], 1);
        cfg[i].name = strdup(name);
        cfg[i].env = strdup(env);
        cfg[i].placeholder = strdup(ph);
        cfg[i].hosts = malloc(sizeof(char *));
        cfg[i].hosts[0] = strdup(host);
        cfg[i].n_hosts = 1;
        cfg[i].replace_in = SL_SECRET_IN_HEADERS | SL_SECRET_IN_BODY;
    }
    sl_buf_t err = {0};
    sl_secret_store_t *s = sl_secret_store_new(cfg, (size_t)nsec, &err);
    if (s == NULL) {
        fputs(sl_buf_cstr(&err), stderr);
        return 1;
    }

    /* JSON-ish printable text; a second copy with an echo every 4 KiB. */
    static const char text[] = "{\"id\":\"chatcmpl-\",\"object\":\"chat.completion\",\"content\":"
                               "\"The quick brown fox jumps over the lazy dog; sk-ant and ghp_ "
                               "are prefixes, not secrets.\"},\n";
    char *clean = malloc(n), *echo = malloc(n), *req = malloc(n);
    for (size_t i = 0; i < n; i++)
        clean[i] = text[(i * 7 + i / 61) % (sizeof text - 1)];
    memcpy(echo, clean, n);
    memcpy(req, clean, n);
    size_t planted = 0;
    for (size_t at = 1000; at + 64 < n; at += 4096, planted++) {
        memcpy(echo + at, vals[planted % (size_t)nsec], 40);
        memcpy(req + at, "PH_SECRET_0_PLACEHOLDER", 23);
    }

    int reps = (int)((256u << 20) / n);
    if (reps < 3)
        reps = 3;
    size_t count = 0;
    double mc = bench_memcpy(clean, n, reps);
    double r_clean = bench_redactor(s, clean, n, chunk, reps, &count);
    size_t c_clean = count;
    double r_echo = bench_redactor(s, echo, n, chunk, reps, &count);
    size_t c_echo = count;
    double r_whole = bench_redactor(s, clean, n, n, reps, &count);
    double bf = bench_body_filter(s, req, n, chunk, reps);
    double ns = bench_decide(s, 200000);

    printf("bench_redact: %d secrets (40-byte values), %zu KiB body, %zu-byte chunks, %d reps\n",
           nsec, n >> 10, chunk, reps);
    printf("  memcpy baseline            %8.0f MB/s\n", mc);
    printf("  redact, no echo            %8.0f MB/s  (%.2fx memcpy time; %zu replaced)\n", r_clean,
           mc / r_clean, c_clean);
    printf("  redact, echo every 4 KiB   %8.0f MB/s  (%.2fx; %zu replaced)\n", r_echo, mc / r_echo,
           c_echo);
    printf("  redact, body fed whole     %8.0f MB/s  (%.2fx)\n", r_whole, mc / r_whole);
    printf("  request body filter        %8.0f MB/s  (%.2fx; placeholder every 4 KiB)\n", bf,
           mc / bf);
    printf("  injection decision         %8.0f ns per request (6 headers, 1 placeholder)\n", ns);

    sl_secret_store_unref(s);
    for (int i = 0; i < nsec; i++)
        sl_config_free(NULL), free(cfg[i].name), free(cfg[i].env), free(cfg[i].placeholder),
            free(cfg[i].hosts[0]), free(cfg[i].hosts);
    free(cfg);
    free(vals);
    free(clean);
    free(echo);
    free(req);
    sl_buf_free(&err);
    return 0;
}
