#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

static atomic_int audit_fd = -1;
static _Thread_local sl_buf_t tl_batch;
static _Thread_local bool tl_batching;
static atomic_bool audit_regular; /* batching is only safe for regular files */

/* Append a whole buffer to the audit fd. Lines up to PIPE_BUF from several
 * writers never interleave in an O_APPEND file. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == -1 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

int sl_audit_open(const char *path)
{
    int fd;
    if (strcmp(path, "off") == 0)
        fd = -1;
    else if (strcmp(path, "-") == 0)
        fd = dup(STDOUT_FILENO);
    else
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd == -1 && strcmp(path, "off") != 0)
        return -1;
    struct stat st;
    atomic_store(&audit_regular, fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode));
    int old = atomic_exchange(&audit_fd, fd);
    /* A writer may still hold the old fd for one write; closing it races at
     * worst into EBADF for that one line, never into another file, because
     * the number is only reused by a later open. Keep it simple: leak-free
     * close after the swap. */
    if (old >= 0)
        close(old);
    return 0;
}

void sl_audit_close(void)
{
    int old = atomic_exchange(&audit_fd, -1);
    if (old >= 0)
        close(old);
}

void sl_audit_redact_target(sl_buf_t *b, sl_view_t t)
{
    const char *q = memchr(t.p, '?', t.n);
    if (q == NULL) {
        sl_buf_append(b, t.p, t.n);
        return;
    }
    sl_buf_append(b, t.p, (size_t)(q - t.p) + 1);
    const char *p = q + 1, *end = t.p + t.n;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        if (eq) {
            sl_buf_append(b, p, (size_t)(eq - p));
            sl_buf_append(b, "=*", 2);
        } else {
            sl_buf_append(b, p, (size_t)(seg_end - p));
        }
        if (amp)
            sl_buf_append(b, "&", 1);
        p = amp ? amp + 1 : end;
    }
}

static void field_str(sl_buf_t *b, const char *key, const char *val)
{
    sl_buf_append(b, ",\"", 2);
    sl_buf_append_str(b, key);
    sl_buf_append(b, "\":", 2);
    if (val == NULL) {
        sl_buf_append_str(b, "null");
        return;
    }
    sl_buf_append(b, "\"", 1);
    sl_buf_append_json(b, val, strlen(val));
    sl_buf_append(b, "\"", 1);
}

/* RFC 3339 UTC timestamp with microseconds; the part up to the seconds is
 * formatted once per second per thread. */
static void append_time(sl_buf_t *b)
{
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[24];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S.", &tm);
        cached_sec = tv.tv_sec;
    }
    sl_buf_append(b, "{\"time\":\"", 9);
    sl_buf_append_str(b, cached);
    char us[6];
    long v = (long)tv.tv_usec;
    for (int i = 5; i >= 0; i--, v /= 10)
        us[i] = (char)('0' + v % 10);
    sl_buf_append(b, us, 6);
    sl_buf_append(b, "Z\"", 2);
}

void sl_audit_write(const sl_audit_event_t *ev)
{
    int fd = atomic_load(&audit_fd);
    if (fd < 0)
        return;
    sl_buf_t b = {0};
    sl_buf_reserve(&b, 512);
    append_time(&b);
    field_str(&b, "request_id", ev->request_id);
    field_str(&b, "identity", ev->identity);
    field_str(&b, "method", ev->method);
    field_str(&b, "host", ev->host);
    sl_buf_append_str(&b, ",\"port\":");
    sl_buf_append_u64(&b, ev->port);
    sl_buf_append_str(&b, ",\"path\":\"");
    sl_buf_t path = {0};
    sl_audit_redact_target(&path, ev->target_path);
    sl_buf_append_json(&b, path.p ? path.p : "", path.n);
    sl_buf_free(&path);
    sl_buf_append(&b, "\"", 1);
    field_str(&b, "verdict", ev->verdict);
    field_str(&b, "rule", ev->rule);
    field_str(&b, "scanner", ev->scanner);
    field_str(&b, "reason", ev->reason);
    field_str(&b, "upstream", ev->upstream);
    if (ev->severity)
        field_str(&b, "severity", ev->severity);
    if (ev->secrets) {
        sl_buf_append_str(&b, ",\"secrets\":");
        sl_buf_append_str(&b, ev->secrets);
    }
    if (ev->findings) {
        sl_buf_append_str(&b, ",\"findings\":[\"");
        for (const char *q = ev->findings; *q; q++) {
            if (*q == ',')
                sl_buf_append_str(&b, "\",\"");
            else
                sl_buf_append_json(&b, q, 1);
        }
        sl_buf_append_str(&b, "\"]");
    }
    sl_buf_append_str(&b, ",\"status\":");
    sl_buf_append_u64(&b, (uint64_t)(ev->status < 0 ? 0 : ev->status));
    sl_buf_append_str(&b, ",\"bytes_in\":");
    sl_buf_append_u64(&b, ev->bytes_in);
    sl_buf_append_str(&b, ",\"bytes_out\":");
    sl_buf_append_u64(&b, ev->bytes_out);
    uint64_t us = ev->duration_ms > 0 ? (uint64_t)(ev->duration_ms * 1000.0) : 0;
    sl_buf_append_str(&b, ",\"duration_ms\":");
    sl_buf_append_u64(&b, us / 1000);
    char frac[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10)};
    sl_buf_append(&b, frac, 4);
    sl_buf_append(&b, "}\n", 2);
    if (tl_batching && atomic_load(&audit_regular)) {
        /* Worker threads batch their lines: one write per flush instead of
         * one per request. Lines stay whole and in order per worker. */
        sl_buf_append(&tl_batch, b.p, b.n);
        sl_buf_free(&b);
        if (tl_batch.n >= 64 * 1024)
            sl_audit_flush();
        return;
    }
    write_all(fd, b.p, b.n);
    sl_buf_free(&b);
}

void sl_audit_batch(bool on)
{
    if (!on) {
        sl_audit_flush();
        sl_buf_free(&tl_batch);
    }
    tl_batching = on;
}

void sl_audit_flush(void)
{
    if (tl_batch.n == 0)
        return;
    int fd = atomic_load(&audit_fd);
    if (fd >= 0)
        write_all(fd, tl_batch.p, tl_batch.n);
    sl_buf_reset(&tl_batch);
    if (tl_batch.cap > 256 * 1024)
        sl_buf_free(&tl_batch);
}

void sl_audit_admin(const char *actor, const char *action, const char *identity, const char *detail)
{
    int fd = atomic_load(&audit_fd);
    if (fd < 0)
        return;
    sl_buf_t b = {0};
    append_time(&b);
    sl_buf_append_str(&b, ",\"event\":\"admin\"");
    field_str(&b, "actor", actor);
    field_str(&b, "action", action);
    field_str(&b, "identity", identity);
    field_str(&b, "detail", detail);
    sl_buf_append_str(&b, "}\n");
    write_all(fd, b.p, b.n);
    sl_buf_free(&b);
}
