/* libFuzzer driver for WebSocket framing, close payloads, extension
 * negotiation and message reassembly (with permessage-deflate).
 *
 * The first byte picks the direction, whether permessage-deflate is
 * negotiated (and with which context takeover) and the message limit; the
 * rest is a stream of frames fed to the parser and reassembler as a relay
 * would. Besides "does not crash", it checks the contracts the relay relies
 * on: a parsed frame lies inside the input and its length adds up, control
 * frames are small and final, a re-encoded header parses to the same frame,
 * and no message exceeds the limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/ws.h"
#include "fuzz_check.h"

static void check_reencode(const sl_ws_frame_t *f, bool from_client)
{
    sl_buf_t b = {0};
    sl_ws_append_header(&b, f->fin, f->rsv1, f->opcode, f->payload_len, f->masked ? f->mask : NULL);
    sl_buf_append(&b, f->payload.p, f->payload.n);
    sl_ws_frame_t g;
    uint16_t code = 0;
    const char *err = NULL;
    long r = sl_ws_parse_frame(b.p, b.n, from_client, true, UINT64_MAX >> 1, &g, &code, &err);
    CHECK(r == (long)b.n);
    CHECK(g.fin == f->fin && g.rsv1 == f->rsv1 && g.opcode == f->opcode && g.masked == f->masked);
    CHECK(g.payload_len == f->payload_len);
    CHECK(!g.masked || memcmp(g.mask, f->mask, 4) == 0);
    CHECK(g.payload.n == 0 || memcmp(g.payload.p, f->payload.p, g.payload.n) == 0);
    sl_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    bool from_client = sel & 1;
    static const char *exts[] = {"", "permessage-deflate",
                                 ("permessage-deflate; client_no_context_takeover; "
                                  "server_no_context_takeover"),
                                 "permessage-deflate; server_max_window_bits=9"};
    const char *e = exts[(sel >> 1) & 3];
    sl_ws_ext_t ext;
    const char *err = NULL;
    sl_view_t ev = sl_view(e, strlen(e));
    CHECK(sl_ws_ext_parse(&ev, 1, &ext, &err) == 0);
    size_t max = (sel & 0x08) ? 64 : 64 * 1024;

    /* The same bytes as an extension header: must not crash, and a success
     * yields sane parameters. */
    sl_ws_ext_t any;
    sl_view_t whole = sl_view(p, n < 256 ? n : 256);
    if (sl_ws_ext_parse(&whole, 1, &any, &err) == 0) {
        CHECK(any.server_max_window_bits >= 8 && any.server_max_window_bits <= 15);
        CHECK(any.client_max_window_bits >= 8 && any.client_max_window_bits <= 15);
    }

    sl_ws_asm_t a;
    sl_ws_asm_init(&a, from_client, &ext, max);
    while (n > 0) {
        sl_ws_frame_t f;
        uint16_t code = 0;
        err = NULL;
        long r = sl_ws_parse_frame(p, n, from_client, ext.deflate, max, &f, &code, &err);
        if (r == SL_WS_INCOMPLETE)
            break;
        if (r == SL_WS_BAD) {
            CHECK(err != NULL);
            CHECK(code == SL_WS_CLOSE_PROTOCOL || code == SL_WS_CLOSE_TOO_BIG);
            break;
        }
        CHECK(r > 0 && (size_t)r <= n);
        CHECK(f.header_len + f.payload_len == (uint64_t)r);
        CHECK(f.payload.p == p + f.header_len && f.payload.n == f.payload_len);
        CHECK(f.payload_len <= max);
        CHECK(f.masked == from_client);
        if (sl_ws_is_control(f.opcode)) {
            CHECK(f.fin && f.payload_len <= 125 && !f.rsv1);
            if (f.opcode == SL_WS_OP_CLOSE) {
                char un[125];
                sl_ws_unmask(un, f.payload.p, f.payload.n, f.mask, 0);
                uint16_t st = 0;
                if (sl_ws_check_close(sl_view(un, f.payload.n), &st, &err) == 0)
                    CHECK(st >= 1000 && st <= 4999);
            }
        } else {
            int m = sl_ws_asm_add(&a, &f, &code, &err);
            if (m < 0) {
                CHECK(err != NULL && code >= 1002 && code <= 1011);
                break;
            }
            if (m == 1) {
                CHECK(a.msg.n <= max);
                CHECK(a.opcode == SL_WS_OP_TEXT || a.opcode == SL_WS_OP_BINARY);
                if (a.opcode == SL_WS_OP_TEXT)
                    CHECK(sl_ws_utf8_valid(sl_view(a.msg.p, a.msg.n)));
            }
        }
        check_reencode(&f, from_client);
        p += r;
        n -= (size_t)r;
    }
    sl_ws_asm_free(&a);
    return 0;
}
