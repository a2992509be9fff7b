/* libFuzzer driver for the server-sent events splitter. Invariants, not
 * just absence of crashes: however the input is cut into reads, the events'
 * raw bytes put back together are exactly the input and their data texts
 * (of events that have data; a line end's LF held over a read may come
 * back as an event of its own) are the same as for the whole input at once; an event rebuilt with
 * its own data parses back to that data. First input byte: read size. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "http/sse.h"

/* Split `p` in reads of `step` bytes (0: one read); raws and "data\0" list. */
/* Returns true when the event size bound was hit. */
static bool run(const char *p, size_t n, size_t step, sl_buf_t *raws, sl_buf_t *datas)
{
    sl_sse_t s;
    sl_sse_init(&s, 4096);
    size_t off = 0;
    bool big = false;
    do {
        size_t k = step && n - off > step ? step : n - off;
        sl_sse_feed(&s, p + off, k);
        off += k;
        sl_sse_event_t ev;
        int r;
        while ((r = sl_sse_next(&s, &ev)) == 1) {
            CHECK(ev.raw.n > 0 && ev.raw.n <= n);
            CHECK(ev.data.n <= ev.raw.n);
            bool first = raws->n == 0;
            sl_buf_append(raws, ev.raw.p, ev.raw.n);
            if (ev.has_data) {
                sl_buf_append(datas, ev.data.p, ev.data.n);
                sl_buf_append(datas, "\0", 1);
            }
            /* Rebuilt with its own data, an event keeps that data. */
            if (ev.has_data) {
                sl_buf_t rb = {0};
                sl_sse_rebuild(ev.raw, ev.data, first, &rb);
                sl_sse_t t;
                sl_sse_init(&t, 0);
                /* A leading LF is the rest of the CR that ended the previous event. */
                t.cr_last = ev.raw.p[0] == '\n';
                /* Only the stream's first event may start with a BOM to skip. */
                t.started = !first;
                sl_sse_feed(&t, rb.p, rb.n);
                sl_sse_event_t e2;
                int r2 = sl_sse_next(&t, &e2);
                if (r2 != 1)
                    r2 = sl_sse_finish(&t, &e2);
                CHECK(r2 == 1);
                CHECK(e2.data.n == ev.data.n &&
                      (ev.data.n == 0 || memcmp(e2.data.p, ev.data.p, ev.data.n) == 0));
                sl_sse_free(&t);
                sl_buf_free(&rb);
            }
        }
        if (r < 0) {
            big = true;
            break;
        }
    } while (off < n);
    sl_sse_event_t ev;
    if (!big && sl_sse_finish(&s, &ev) == 1) {
        sl_buf_append(raws, ev.raw.p, ev.raw.n);
        if (ev.has_data) {
            sl_buf_append(datas, ev.data.p, ev.data.n);
            sl_buf_append(datas, "\0", 1);
        }
    }
    sl_sse_free(&s);
    return big;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = data[0] % 17;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    sl_buf_t r0 = {0}, d0 = {0}, r1 = {0}, d1 = {0};
    bool big0 = run(p, n, 0, &r0, &d0);
    bool big1 = run(p, n, step, &r1, &d1);
    CHECK(!big0 || big1);
    if (!big0) {
        /* (memcmp only on non-empty buffers: an empty sl_buf has p == NULL) */
        CHECK(r0.n == n && (n == 0 || memcmp(r0.p, p, n) == 0));
        /* Smaller reads can only hit the size bound earlier, never differ otherwise. */
        if (!big1) {
            CHECK(r1.n == n && (n == 0 || memcmp(r1.p, p, n) == 0));
            CHECK(d1.n == d0.n && (d0.n == 0 || memcmp(d1.p, d0.p, d0.n) == 0));
        }
    }
    sl_buf_free(&r0);
    sl_buf_free(&d0);
    sl_buf_free(&r1);
    sl_buf_free(&d1);
    return 0;
}
