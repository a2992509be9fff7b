/* libFuzzer driver for the HTTP/1.1 head parsers, framing checks and the
 * chunked decoder. Checks invariants, not just absence of crashes: views lie
 * inside the input and decoded output never exceeds what was consumed. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

static void check_view(sl_view_t v, const char *base, size_t len)
{
    if (v.n == 0)
        return;
    assert(v.p >= base && v.p + v.n <= base + len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char *buf = malloc(size);
    memcpy(buf, data + 1, size - 1);
    size_t len = size - 1;
    const char *err = NULL;
    sl_h1_header_t hdrs[64];
    switch (data[0] % 3) {
    case 0: {
        sl_h1_request_t req = {.headers = hdrs, .n_headers = 64};
        int r = sl_h1_parse_request(buf, len, &req, &err);
        assert(r == SL_H1_BAD || r == SL_H1_INCOMPLETE || (r > 0 && (size_t)r <= len));
        if (r == SL_H1_BAD)
            assert(err != NULL);
        if (r > 0) {
            check_view(req.method, buf, len);
            check_view(req.target, buf, len);
            for (size_t i = 0; i < req.n_headers; i++) {
                check_view(req.headers[i].name, buf, len);
                check_view(req.headers[i].value, buf, len);
                assert(memchr(req.headers[i].value.p, '\r', req.headers[i].value.n) == NULL);
                assert(memchr(req.headers[i].value.p, '\0', req.headers[i].value.n) == NULL);
            }
            sl_h1_framing_t f;
            if (sl_h1_request_framing(&req, &f, &err) == 0)
                assert(f.kind != SL_H1_BODY_UNTIL_CLOSE);
        }
        break;
    }
    case 1: {
        sl_h1_response_t res = {.headers = hdrs, .n_headers = 64};
        int r = sl_h1_parse_response(buf, len, &res, &err);
        assert(r == SL_H1_BAD || r == SL_H1_INCOMPLETE || (r > 0 && (size_t)r <= len));
        if (r > 0) {
            assert(res.status >= 100 && res.status <= 599);
            sl_h1_framing_t f;
            sl_h1_response_framing(&res, SL_VIEW_LIT("GET"), &f, &err);
        }
        break;
    }
    default: {
        sl_chunked_t d;
        sl_chunked_init(&d);
        /* Feed in two pieces to exercise state carried across calls. */
        size_t split = len ? data[0] % (len + 1) : 0;
        size_t off = 0;
        for (int piece = 0; piece < 2; piece++) {
            size_t n = piece == 0 ? split : len - split;
            size_t out = n, used = 0;
            if (sl_chunked_decode(&d, buf + off, &out, &used, &err) != 0)
                break;
            assert(used <= n && out <= used);
            assert(d.trailers_len <= sizeof d.trailers);
            off += used;
            if (d.done || used < n)
                break;
        }
        break;
    }
    }
    free(buf);
    return 0;
}
