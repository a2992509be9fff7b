/* WebSocket frames, close payloads, permessage-deflate negotiation and
 * message reassembly (src/http/ws.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "http/ws.h"

#define MIB (1024 * 1024)

static const uint8_t MASK[4] = {0x37, 0xfa, 0x21, 0x3d};

/* Build one frame: header, then the payload masked when `mask`. */
static void frame(sl_buf_t *out, bool fin, bool rsv1, uint8_t op, const char *p, size_t n,
                  const uint8_t *mask)
{
    sl_ws_append_header(out, fin, rsv1, op, n, mask);
    size_t at = out->n;
    sl_buf_append(out, p, n);
    if (mask)
        sl_ws_unmask(out->p + at, out->p + at, n, mask, 0);
}

/* Parse expecting success; returns the frame. */
static sl_ws_frame_t parse_ok(const sl_buf_t *b, bool from_client, bool rsv1_ok)
{
    sl_ws_frame_t f;
    uint16_t code = 0;
    const char *err = NULL;
    long r = sl_ws_parse_frame(b->p, b->n, from_client, rsv1_ok, MIB, &f, &code, &err);
    if (r != (long)b->n)
        fprintf(stderr, "parse: %ld (%s)\n", r, err ? err : "");
    assert_int_equal(r, (long)b->n);
    return f;
}

static void parse_bad(const void *p, size_t n, bool from_client, bool rsv1_ok, uint16_t want)
{
    sl_ws_frame_t f;
    uint16_t code = 0;
    const char *err = NULL;
    long r = sl_ws_parse_frame(p, n, from_client, rsv1_ok, MIB, &f, &code, &err);
    assert_int_equal(r, SL_WS_BAD);
    assert_int_equal(code, want);
    assert_non_null(err);
}

static void test_lengths(void **state)
{
    size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        char *payload = malloc(sizes[k] + 1);
        for (size_t i = 0; i < sizes[k]; i++)
            payload[i] = (char)('a' + i % 26);
        for (int masked = 0; masked < 2; masked++) {
            sl_buf_t b = {0};
            frame(&b, true, false, SL_WS_OP_BINARY, payload, sizes[k], masked ? MASK : NULL);
            size_t want_hl = (sizes[k] < 126 ? 2 : sizes[k] <= 65535 ? 4 : 10) + (masked ? 4 : 0);
            sl_ws_frame_t f = parse_ok(&b, masked, false);
            assert_int_equal(f.header_len, want_hl);
            assert_int_equal(f.payload_len, sizes[k]);
            assert_true(f.fin);
            assert_int_equal(f.opcode, SL_WS_OP_BINARY);
            assert_int_equal(f.masked, masked);
            char *un = malloc(sizes[k] + 1);
            if (masked)
                sl_ws_unmask(un, f.payload.p, f.payload.n, f.mask, 0);
            else if (sizes[k])
                memcpy(un, f.payload.p, sizes[k]);
            assert_memory_equal(un, payload, sizes[k]);
            /* Every strict prefix needs more bytes. */
            for (size_t cut = 0; cut < b.n; cut += 1 + cut / 3) {
                sl_ws_frame_t g;
                uint16_t code;
                const char *err;
                assert_int_equal(sl_ws_parse_frame(b.p, cut, masked, false, MIB, &g, &code, &err),
                                 SL_WS_INCOMPLETE);
            }
            free(un);
            sl_buf_free(&b);
        }
        free(payload);
    }
    (void)state;
}

static void test_non_minimal_lengths_accepted(void **state)
{
    /* A 5-byte payload declared with the 16-bit and the 64-bit forms. */
    const unsigned char f16[] = {0x82, 126, 0, 5, 'h', 'e', 'l', 'l', 'o'};
    const unsigned char f64[] = {0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5, 'h', 'e', 'l', 'l', 'o'};
    sl_ws_frame_t f;
    uint16_t code;
    const char *err;
    assert_int_equal(
        sl_ws_parse_frame((const char *)f16, sizeof f16, false, false, MIB, &f, &code, &err),
        (long)sizeof f16);
    assert_int_equal(f.payload_len, 5);
    assert_int_equal(
        sl_ws_parse_frame((const char *)f64, sizeof f64, false, false, MIB, &f, &code, &err),
        (long)sizeof f64);
    assert_memory_equal(f.payload.p, "hello", 5);
    (void)state;
}

static void test_bad_frames(void **state)
{
    /* 64-bit length with the MSB set. */
    const unsigned char msb[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    parse_bad(msb, sizeof msb, false, false, SL_WS_CLOSE_PROTOCOL);
    /* RSV2, RSV3. */
    parse_bad("\xa2\x00", 2, false, false, SL_WS_CLOSE_PROTOCOL);
    parse_bad("\x92\x00", 2, false, false, SL_WS_CLOSE_PROTOCOL);
    /* RSV1 without permessage-deflate; allowed with it. */
    parse_bad("\xc1\x00", 2, false, false, SL_WS_CLOSE_PROTOCOL);
    sl_ws_frame_t f;
    uint16_t code;
    const char *err;
    assert_int_equal(sl_ws_parse_frame("\xc1\x00", 2, false, true, MIB, &f, &code, &err), 2);
    assert_true(f.rsv1);
    /* RSV1 on a continuation or a control frame, even with deflate. */
    parse_bad("\xc0\x00", 2, false, true, SL_WS_CLOSE_PROTOCOL);
    parse_bad("\xc9\x00", 2, false, true, SL_WS_CLOSE_PROTOCOL);
    /* Reserved opcodes. */
    const uint8_t reserved[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
    for (size_t i = 0; i < sizeof reserved; i++) {
        char h[2] = {(char)(0x80 | reserved[i]), 0};
        parse_bad(h, 2, false, false, SL_WS_CLOSE_PROTOCOL);
    }
    /* Fragmented control frame; control payload over 125 bytes. */
    parse_bad("\x09\x00", 2, false, false, SL_WS_CLOSE_PROTOCOL);
    parse_bad("\x89\x7e\x00\x7e", 4, false, false, SL_WS_CLOSE_PROTOCOL);
    /* Masking: client frames must be masked, server frames must not. */
    parse_bad("\x81\x00", 2, true, false, SL_WS_CLOSE_PROTOCOL);
    parse_bad("\x81\x80\x01\x02\x03\x04", 6, false, false, SL_WS_CLOSE_PROTOCOL);
    /* Larger than the limit: refused from the header alone (1009). */
    const unsigned char big[] = {0x82, 127, 0, 0, 0, 0, 0, 0x20, 0, 0};
    parse_bad(big, sizeof big, false, false, SL_WS_CLOSE_TOO_BIG);
    (void)state;
}

static void test_close_payloads(void **state)
{
    uint16_t st = 0;
    const char *err = NULL;
    assert_int_equal(sl_ws_check_close(sl_view("", 0), &st, &err), 0);
    assert_int_equal(st, 1005);
    assert_int_equal(sl_ws_check_close(sl_view("\x03\xe8", 2), &st, &err), 0);
    assert_int_equal(st, 1000);
    assert_int_equal(sl_ws_check_close(sl_view("\x0f\xa0ok", 4), &st, &err), 0); /* 4000 */
    assert_int_equal(st, 4000);
    assert_int_equal(sl_ws_check_close(sl_view("\x03", 1), &st, &err), -1);
    assert_int_equal(sl_ws_check_close(sl_view("\x03\xed", 2), &st, &err), -1);     /* 1005 */
    assert_int_equal(sl_ws_check_close(sl_view("\x03\xee", 2), &st, &err), -1);     /* 1006 */
    assert_int_equal(sl_ws_check_close(sl_view("\x03\xe7", 2), &st, &err), -1);     /* 999 */
    assert_int_equal(sl_ws_check_close(sl_view("\x13\x88", 2), &st, &err), -1);     /* 5000 */
    assert_int_equal(sl_ws_check_close(sl_view("\x03\xe8\xff", 3), &st, &err), -1); /* UTF-8 */

    /* Built close frames: masked for servers, reason cut on a UTF-8 boundary. */
    char reason[200];
    memset(reason, 'x', sizeof reason);
    memcpy(reason + 120, "\xc3\xa9\xc3\xa9", 4); /* é é straddling byte 123 */
    reason[199] = '\0';
    for (int masked = 0; masked < 2; masked++) {
        sl_buf_t b = {0};
        sl_ws_append_close(&b, SL_WS_CLOSE_POLICY, reason, masked ? MASK : NULL);
        sl_ws_frame_t f = parse_ok(&b, masked, false);
        assert_int_equal(f.opcode, SL_WS_OP_CLOSE);
        assert_true(f.payload.n <= 125);
        char un[125];
        sl_ws_unmask(un, f.payload.p, f.payload.n, masked ? f.mask : (const uint8_t *)"\0\0\0\0",
                     0);
        assert_int_equal(sl_ws_check_close(sl_view(un, f.payload.n), &st, &err), 0);
        assert_int_equal(st, 1008);
        assert_int_equal(f.payload.n, 2 + 122); /* the é at 121..122 would be cut: dropped */
        sl_buf_free(&b);
    }
    (void)state;
}

static void test_utf8(void **state)
{
    const char *good[] = {
        "", "plain", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"};
    const char *bad[] = {"\xc0\xaf",         "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\xf8\x88\x80\x80", "\xc3",         "\xe2\x82",     "\x80"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(sl_ws_utf8_valid(sl_view(good[i], strlen(good[i]))));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(sl_ws_utf8_valid(sl_view(bad[i], strlen(bad[i]))));
    (void)state;
}

static int ext_of(const char *v, sl_ws_ext_t *e)
{
    const char *err = NULL;
    sl_view_t val = sl_view(v, strlen(v));
    return sl_ws_ext_parse(&val, 1, e, &err);
}

static void test_extensions(void **state)
{
    sl_ws_ext_t e;
    assert_int_equal(sl_ws_ext_parse(NULL, 0, &e, &(const char *){0}), 0);
    assert_false(e.deflate);
    assert_int_equal(ext_of("permessage-deflate", &e), 0);
    assert_true(e.deflate);
    assert_false(e.server_no_context_takeover);
    assert_int_equal(e.server_max_window_bits, 15);
    assert_int_equal(ext_of("permessage-deflate; server_no_context_takeover; "
                            "client_no_context_takeover; server_max_window_bits=10; "
                            "client_max_window_bits=\"9\"",
                            &e),
                     0);
    assert_true(e.server_no_context_takeover && e.client_no_context_takeover);
    assert_int_equal(e.server_max_window_bits, 10);
    assert_int_equal(e.client_max_window_bits, 9);
    assert_int_equal(ext_of("Permessage-Deflate;client_max_window_bits", &e), 0);
    assert_int_equal(e.client_max_window_bits, 15);
    assert_int_equal(ext_of(" , permessage-deflate ,", &e), 0);
    /* Unknown extension or parameter, duplicates, bad window bits: refused. */
    const char *bad[] = {"x-webkit-deflate-frame",
                         "permessage-deflate, permessage-deflate",
                         "permessage-deflate; server_no_context_takeover; "
                         "server_no_context_takeover",
                         "permessage-deflate; server_max_window_bits",
                         "permessage-deflate; server_max_window_bits=7",
                         "permessage-deflate; server_max_window_bits=16",
                         "permessage-deflate; client_max_window_bits=08",
                         "permessage-deflate; server_no_context_takeover=1",
                         "permessage-deflate; foo=1",
                         "permessage-deflate; client_max_window_bits=\"10",
                         "permessage-deflate x",
                         "permessage-deflate, foo"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (ext_of(bad[i], &e) != -1) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            fail();
        }
    }
    /* Two field lines count as one list. */
    sl_view_t two[2] = {SL_VIEW_LIT("permessage-deflate"), SL_VIEW_LIT("permessage-deflate")};
    const char *err = NULL;
    assert_int_equal(sl_ws_ext_parse(two, 2, &e, &err), -1);
    (void)state;
}

/* Feed one frame (built with `frame`) to a reassembler. */
static int add(sl_ws_asm_t *a, bool fin, bool rsv1, uint8_t op, const char *p, size_t n,
               uint16_t *code)
{
    sl_buf_t b = {0};
    frame(&b, fin, rsv1, op, p, n, a->from_client ? MASK : NULL);
    sl_ws_frame_t f;
    const char *err = NULL;
    long r =
        sl_ws_parse_frame(b.p, b.n, a->from_client, a->deflate, a->max_message, &f, code, &err);
    int out = r < 0 ? -1 : sl_ws_asm_add(a, &f, code, &err);
    sl_buf_free(&b);
    return out;
}

static void test_reassembly(void **state)
{
    sl_ws_asm_t a;
    uint16_t code = 0;
    sl_ws_asm_init(&a, true, NULL, 64);
    assert_int_equal(add(&a, true, false, SL_WS_OP_TEXT, "hello", 5, &code), 1);
    assert_int_equal(a.opcode, SL_WS_OP_TEXT);
    assert_memory_equal(a.msg.p, "hello", 5);
    assert_int_equal(a.msg.n, 5);
    /* Fragmented: text, continuation, continuation (fin). */
    assert_int_equal(add(&a, false, false, SL_WS_OP_BINARY, "AKIA", 4, &code), 0);
    assert_int_equal(add(&a, false, false, SL_WS_OP_CONT, "1234", 4, &code), 0);
    assert_int_equal(add(&a, true, false, SL_WS_OP_CONT, "5678", 4, &code), 1);
    assert_int_equal(a.opcode, SL_WS_OP_BINARY);
    assert_int_equal(a.msg.n, 12);
    assert_memory_equal(a.msg.p, "AKIA12345678", 12);
    /* Continuation with nothing to continue. */
    assert_int_equal(add(&a, true, false, SL_WS_OP_CONT, "x", 1, &code), -1);
    assert_int_equal(code, SL_WS_CLOSE_PROTOCOL);
    sl_ws_asm_free(&a);

    /* A new data frame inside a fragmented message. */
    sl_ws_asm_init(&a, false, NULL, 64);
    assert_int_equal(add(&a, false, false, SL_WS_OP_TEXT, "ab", 2, &code), 0);
    assert_int_equal(add(&a, true, false, SL_WS_OP_TEXT, "cd", 2, &code), -1);
    assert_int_equal(code, SL_WS_CLOSE_PROTOCOL);
    sl_ws_asm_free(&a);

    /* Size limit over the fragments of one message: 1009. */
    char chunk[40];
    memset(chunk, 'z', sizeof chunk);
    sl_ws_asm_init(&a, false, NULL, 64);
    assert_int_equal(add(&a, false, false, SL_WS_OP_BINARY, chunk, 40, &code), 0);
    assert_int_equal(add(&a, true, false, SL_WS_OP_CONT, chunk, 24, &code), 1); /* exactly 64 */
    assert_int_equal(add(&a, false, false, SL_WS_OP_BINARY, chunk, 40, &code), 0);
    assert_int_equal(add(&a, true, false, SL_WS_OP_CONT, chunk, 25, &code), -1);
    assert_int_equal(code, SL_WS_CLOSE_TOO_BIG);
    sl_ws_asm_free(&a);

    /* Invalid UTF-8 in a text message split inside a code point: only the
     * whole message is judged. */
    sl_ws_asm_init(&a, false, NULL, 64);
    assert_int_equal(add(&a, false, false, SL_WS_OP_TEXT, "caf\xc3", 4, &code), 0);
    assert_int_equal(add(&a, true, false, SL_WS_OP_CONT, "\xa9", 1, &code), 1);
    assert_int_equal(add(&a, true, false, SL_WS_OP_TEXT, "\xc3(", 2, &code), -1);
    assert_int_equal(code, SL_WS_CLOSE_BAD_DATA);
    /* RSV1 without deflate is refused by the reassembler too. */
    sl_ws_frame_t f = {.fin = true, .rsv1 = true, .opcode = SL_WS_OP_TEXT};
    const char *err = NULL;
    assert_int_equal(sl_ws_asm_add(&a, &f, &code, &err), -1);
    assert_int_equal(code, SL_WS_CLOSE_PROTOCOL);
    sl_ws_asm_free(&a);
    (void)state;
}

/* A permessage-deflate sender: one raw deflate stream, each message ended
 * with a sync flush whose 00 00 ff ff tail is removed. */
typedef struct {
    z_stream z;
    bool reset;
} sender_t;

static void sender_init(sender_t *s, bool reset)
{
    memset(s, 0, sizeof *s);
    s->reset = reset;
    assert_int_equal(deflateInit2(&s->z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
}

static void compress_msg(sender_t *s, const char *p, size_t n, sl_buf_t *out)
{
    sl_buf_reset(out);
    s->z.next_in = (Bytef *)p;
    s->z.avail_in = (uInt)n;
    do {
        sl_buf_reserve(out, 4096);
        s->z.next_out = (Bytef *)out->p + out->n;
        s->z.avail_out = 4096;
        int r = deflate(&s->z, Z_SYNC_FLUSH);
        if (r == Z_BUF_ERROR && n == 0) {
            /* zlib will not flush twice in a row: an empty message is the
             * single empty-block byte 0x00 (RFC 7692 7.2.3.6). */
            sl_buf_append(out, "\x00\x00\x00\xff\xff", 5);
            break;
        }
        assert_int_equal(r, Z_OK);
        out->n += 4096 - s->z.avail_out;
    } while (s->z.avail_out == 0);
    assert_true(out->n >= 4 && memcmp(out->p + out->n - 4, "\x00\x00\xff\xff", 4) == 0);
    out->n -= 4;
    if (s->reset)
        deflateReset(&s->z);
}

static void test_deflate(void **state)
{
    const char *msgs[] = {"the quick brown fox", "the quick brown fox jumps", "", "the quick"};
    for (int takeover = 0; takeover < 2; takeover++) {
        sl_ws_ext_t ext;
        assert_int_equal(ext_of(takeover ? "permessage-deflate"
                                         : "permessage-deflate; client_no_context_takeover",
                                &ext),
                         0);
        sender_t s;
        sender_init(&s, !takeover);
        sl_ws_asm_t a;
        sl_ws_asm_init(&a, true, &ext, 1024);
        uint16_t code = 0;
        sl_buf_t c = {0};
        for (size_t i = 0; i < sizeof msgs / sizeof *msgs; i++) {
            compress_msg(&s, msgs[i], strlen(msgs[i]), &c);
            /* Split the compressed bytes over two frames. */
            size_t half = c.n / 2;
            assert_int_equal(add(&a, false, true, SL_WS_OP_TEXT, c.p, half, &code), 0);
            assert_int_equal(add(&a, true, false, SL_WS_OP_CONT, c.p + half, c.n - half, &code), 1);
            assert_int_equal(a.msg.n, strlen(msgs[i]));
            assert_memory_equal(a.msg.p, msgs[i], a.msg.n);
        }
        /* An uncompressed message (RSV1 clear) between compressed ones. */
        assert_int_equal(add(&a, true, false, SL_WS_OP_TEXT, "plain", 5, &code), 1);
        assert_memory_equal(a.msg.p, "plain", 5);
        sl_buf_free(&c);
        deflateEnd(&s.z);
        sl_ws_asm_free(&a);
    }
    (void)state;
}

static void test_deflate_limits(void **state)
{
    sl_ws_ext_t ext;
    assert_int_equal(ext_of("permessage-deflate", &ext), 0);
    /* A small compressed message that inflates past the limit: 1009. */
    char *zeros = calloc(1, 256 * 1024);
    sender_t s;
    sender_init(&s, true);
    sl_buf_t c = {0};
    compress_msg(&s, zeros, 256 * 1024, &c);
    assert_true(c.n < 4096);
    sl_ws_asm_t a;
    sl_ws_asm_init(&a, false, &ext, 64 * 1024);
    uint16_t code = 0;
    assert_int_equal(add(&a, true, true, SL_WS_OP_BINARY, c.p, c.n, &code), -1);
    assert_int_equal(code, SL_WS_CLOSE_TOO_BIG);
    sl_ws_asm_free(&a);
    /* The same at a limit it fits in. */
    sl_ws_asm_init(&a, false, &ext, 256 * 1024);
    assert_int_equal(add(&a, true, true, SL_WS_OP_BINARY, c.p, c.n, &code), 1);
    assert_int_equal(a.msg.n, 256 * 1024);
    sl_ws_asm_free(&a);
    /* Garbage that is not deflate data: 1007. */
    sl_ws_asm_init(&a, false, &ext, 1024);
    assert_int_equal(add(&a, true, true, SL_WS_OP_BINARY, "\xff\xff\xff\xff", 4, &code), -1);
    assert_int_equal(code, SL_WS_CLOSE_BAD_DATA);
    sl_ws_asm_free(&a);
    sl_buf_free(&c);
    deflateEnd(&s.z);
    free(zeros);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),        cmocka_unit_test(test_non_minimal_lengths_accepted),
        cmocka_unit_test(test_bad_frames),     cmocka_unit_test(test_close_payloads),
        cmocka_unit_test(test_utf8),           cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_reassembly),     cmocka_unit_test(test_deflate),
        cmocka_unit_test(test_deflate_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
