#include "audit/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

static atomic_int audit_fd = -1;

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
    sl_buf_appendf(b, ",\"%s\":", key);
    if (val == NULL) {
        sl_buf_append_str(b, "null");
        return;
    }
    sl_buf_append(b, "\"", 1);
    sl_buf_append_json(b, val, strlen(val));
    sl_buf_append(b, "\"", 1);
}

void sl_audit_write(const sl_audit_event_t *ev)
{
    int fd = atomic_load(&audit_fd);
    if (fd < 0)
        return;
    sl_buf_t b = {0};
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%06ldZ", (long)tv.tv_usec);
    sl_buf_appendf(&b, "{\"time\":\"%s\"", ts);
    field_str(&b, "request_id", ev->request_id);
    field_str(&b, "identity", ev->identity);
    field_str(&b, "method", ev->method);
    field_str(&b, "host", ev->host);
    sl_buf_appendf(&b, ",\"port\":%u", ev->port);
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
    sl_buf_appendf(&b,
                   ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%.3f}\n",
                   ev->status, (unsigned long long)ev->bytes_in,
                   (unsigned long long)ev->bytes_out, ev->duration_ms);
    ssize_t w;
    do {
        w = write(fd, b.p, b.n);
    } while (w == -1 && errno == EINTR);
    sl_buf_free(&b);
}
