#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/internal.h"

typedef struct wblock {
    uv_write_t req; /* first: the request pointer is the block pointer */
    size_t n;
    char data[];
} wblock_t;

int sl_io_write(uv_stream_t *s, const uv_buf_t *bufs, unsigned nbufs, uv_write_cb cb, void *owner)
{
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    int w = uv_try_write(s, bufs, nbufs);
    size_t done = 0;
    if (w >= 0)
        done = (size_t)w;
    else if (w != UV_EAGAIN)
        return w;
    if (done == total)
        return 0;
    wblock_t *b = malloc(sizeof *b + (total - done));
    if (b == NULL)
        return UV_ENOMEM;
    b->n = 0;
    size_t skip = done;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(b->data + b->n, bufs[i].base + skip, len - skip);
        b->n += len - skip;
        skip = 0;
    }
    b->req.data = owner;
    uv_buf_t one = uv_buf_init(b->data, (unsigned)b->n);
    int r = uv_write(&b->req, s, &one, 1, cb);
    if (r != 0)
        free(b);
    return r;
}

int sl_io_send(uv_stream_t *s, sl_tls_t *tls, const uv_buf_t *bufs, unsigned nbufs, uv_write_cb cb,
               void *owner)
{
    if (tls == NULL)
        return sl_io_write(s, bufs, nbufs, cb, owner);
    for (unsigned i = 0; i < nbufs; i++)
        if (bufs[i].len && sl_tls_write(tls, bufs[i].base, bufs[i].len) != SL_TLS_OK)
            return UV_EPROTO;
    sl_buf_t raw = {0};
    sl_tls_take_output(tls, &raw);
    uv_buf_t b = uv_buf_init(raw.p, (unsigned)raw.n);
    int r = raw.n ? sl_io_write(s, &b, 1, cb, owner) : 0;
    sl_buf_free(&raw);
    return r;
}

void sl_io_write_done(uv_write_t *req)
{
    free(req);
}

uint64_t sl_io_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
