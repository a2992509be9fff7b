/* WebSocket frames, close payloads, extension negotiation and message
 * reassembly (RFC 6455, RFC 7692). */
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "http/ws.h"

#define BAD(c, e)                                                                                  \
    do {                                                                                           \
        *code = (c);                                                                               \
        *err = (e);                                                                                \
        return SL_WS_BAD;                                                                          \
    } while (0)

long sl_ws_parse_frame(const char *p, size_t n, bool from_client, bool rsv1_ok,
                       uint64_t max_payload, sl_ws_frame_t *f, uint16_t *code, const char **err)
{
    const unsigned char *u = (const unsigned char *)p;
    if (n < 2)
        return SL_WS_INCOMPLETE;
    memset(f, 0, sizeof *f);
    f->fin = (u[0] & 0x80) != 0;
    f->rsv1 = (u[0] & 0x40) != 0;
    f->opcode = u[0] & 0x0f;
    f->masked = (u[1] & 0x80) != 0;
    unsigned len7 = u[1] & 0x7f;
    if (u[0] & 0x30)
        BAD(SL_WS_CLOSE_PROTOCOL, "RSV2 or RSV3 set (no extension defines them)");
    if ((f->opcode >= 0x3 && f->opcode <= 0x7) || f->opcode >= 0xB)
        BAD(SL_WS_CLOSE_PROTOCOL, "reserved opcode");
    if (sl_ws_is_control(f->opcode)) {
        if (!f->fin)
            BAD(SL_WS_CLOSE_PROTOCOL, "fragmented control frame");
        if (len7 > 125)
            BAD(SL_WS_CLOSE_PROTOCOL, "control frame payload over 125 bytes");
        if (f->rsv1)
            BAD(SL_WS_CLOSE_PROTOCOL, "RSV1 set on a control frame");
    }
    if (f->rsv1 && !rsv1_ok)
        BAD(SL_WS_CLOSE_PROTOCOL, "RSV1 set but permessage-deflate was not negotiated");
    if (f->rsv1 && f->opcode == SL_WS_OP_CONT)
        BAD(SL_WS_CLOSE_PROTOCOL, "RSV1 set on a continuation frame");
    if (f->masked != from_client)
        BAD(SL_WS_CLOSE_PROTOCOL,
            from_client ? "unmasked frame from the client" : "masked frame from the server");
    size_t hl = 2;
    uint64_t len = len7;
    if (len7 == 126) {
        if (n < 4)
            return SL_WS_INCOMPLETE;
        len = (uint64_t)u[2] << 8 | u[3];
        hl = 4;
    } else if (len7 == 127) {
        if (n < 10)
            return SL_WS_INCOMPLETE;
        if (u[2] & 0x80)
            BAD(SL_WS_CLOSE_PROTOCOL, "64-bit payload length with the most significant bit set");
        len = 0;
        for (int i = 2; i < 10; i++)
            len = len << 8 | u[i];
        hl = 10;
    }
    if (len > max_payload)
        BAD(SL_WS_CLOSE_TOO_BIG, "frame larger than the message size limit");
    if (f->masked) {
        if (n < hl + 4)
            return SL_WS_INCOMPLETE;
        memcpy(f->mask, u + hl, 4);
        hl += 4;
    }
    if (n - hl < len)
        return SL_WS_INCOMPLETE;
    f->header_len = hl;
    f->payload_len = len;
    f->payload = sl_view(p + hl, (size_t)len);
    return (long)(hl + len);
}

void sl_ws_unmask(char *dst, const char *src, size_t n, const uint8_t mask[4], size_t offset)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)(src[i] ^ mask[(offset + i) & 3]);
}

void sl_ws_append_header(sl_buf_t *out, bool fin, bool rsv1, uint8_t opcode, uint64_t len,
                         const uint8_t *mask)
{
    unsigned char h[14];
    size_t k = 0;
    h[k++] = (unsigned char)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        h[k++] = (unsigned char)(m | len);
    } else if (len <= 0xffff) {
        h[k++] = m | 126;
        h[k++] = (unsigned char)(len >> 8);
        h[k++] = (unsigned char)len;
    } else {
        h[k++] = m | 127;
        for (int i = 7; i >= 0; i--)
            h[k++] = (unsigned char)(len >> (8 * i));
    }
    if (mask) {
        memcpy(h + k, mask, 4);
        k += 4;
    }
    sl_buf_append(out, h, k);
}

void sl_ws_append_close(sl_buf_t *out, uint16_t code, const char *reason, const uint8_t *mask)
{
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > SL_WS_MAX_REASON) {
        rl = SL_WS_MAX_REASON;
        /* Do not cut a UTF-8 sequence in two: the reason must stay valid. */
        while (rl > 0 && ((unsigned char)reason[rl] & 0xc0) == 0x80)
            rl--;
    }
    char payload[2 + SL_WS_MAX_REASON];
    payload[0] = (char)(code >> 8);
    payload[1] = (char)(code & 0xff);
    if (rl)
        memcpy(payload + 2, reason, rl);
    sl_ws_append_header(out, true, false, SL_WS_OP_CLOSE, 2 + rl, mask);
    if (mask)
        sl_ws_unmask(payload, payload, 2 + rl, mask, 0);
    sl_buf_append(out, payload, 2 + rl);
}

bool sl_ws_utf8_valid(sl_view_t v)
{
    const unsigned char *s = (const unsigned char *)v.p;
    size_t i = 0, n = v.n;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i <= need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

int sl_ws_check_close(sl_view_t payload, uint16_t *status, const char **err)
{
    if (payload.n == 0) {
        *status = 1005; /* "no status received", never sent on the wire */
        return 0;
    }
    if (payload.n == 1) {
        *err = "close frame with a one-byte payload";
        return -1;
    }
    const unsigned char *u = (const unsigned char *)payload.p;
    uint16_t s = (uint16_t)(u[0] << 8 | u[1]);
    bool ok = (s >= 1000 && s <= 1003) || (s >= 1007 && s <= 1014) || (s >= 3000 && s <= 4999);
    if (!ok) {
        *err = "close frame with an invalid status code";
        return -1;
    }
    if (!sl_ws_utf8_valid(sl_view(payload.p + 2, payload.n - 2))) {
        *err = "close reason is not valid UTF-8";
        return -1;
    }
    *status = s;
    return 0;
}

/* ---- Sec-WebSocket-Extensions ------------------------------------------ */

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void skip_ows(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t'))
        (*p)++;
}

static sl_view_t take_token(const char **p, const char *end)
{
    const char *s = *p;
    while (*p < end && is_tchar((unsigned char)**p))
        (*p)++;
    return sl_view(s, (size_t)(*p - s));
}

/* Window bits "8".."15" (a token or a quoted string). */
static int window_bits(sl_view_t v)
{
    if (v.n == 1 && v.p[0] >= '8' && v.p[0] <= '9')
        return v.p[0] - '0';
    if (v.n == 2 && v.p[0] == '1' && v.p[1] >= '0' && v.p[1] <= '5')
        return 10 + v.p[1] - '0';
    return -1;
}

/* One extension: name *( ";" param [ "=" value ] ), up to a ',' or the end. */
static int parse_one_ext(const char **pp, const char *end, sl_ws_ext_t *ext, const char **err)
{
    const char *p = *pp;
    sl_view_t name = take_token(&p, end);
    if (name.n == 0) {
        *err = "malformed Sec-WebSocket-Extensions";
        return -1;
    }
    if (!sl_view_ieq(name, "permessage-deflate")) {
        *err = "the upstream accepted a WebSocket extension sluice cannot inspect through";
        return -1;
    }
    if (ext->deflate) {
        *err = "permessage-deflate accepted twice";
        return -1;
    }
    ext->deflate = true;
    unsigned seen = 0;
    for (;;) {
        skip_ows(&p, end);
        if (p == end || *p == ',')
            break;
        if (*p != ';') {
            *err = "malformed Sec-WebSocket-Extensions";
            return -1;
        }
        p++;
        skip_ows(&p, end);
        sl_view_t param = take_token(&p, end);
        skip_ows(&p, end);
        sl_view_t val = SL_VIEW_NULL;
        bool has_val = false;
        if (p < end && *p == '=') {
            p++;
            skip_ows(&p, end);
            has_val = true;
            if (p < end && *p == '"') {
                const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
                if (q == NULL) {
                    *err = "malformed Sec-WebSocket-Extensions";
                    return -1;
                }
                val = sl_view(p + 1, (size_t)(q - p - 1));
                p = q + 1;
            } else {
                val = take_token(&p, end);
            }
        }
        unsigned bit;
        int wb = 15;
        if (sl_view_ieq(param, "server_no_context_takeover") && !has_val) {
            bit = 1;
            ext->server_no_context_takeover = true;
        } else if (sl_view_ieq(param, "client_no_context_takeover") && !has_val) {
            bit = 2;
            ext->client_no_context_takeover = true;
        } else if (sl_view_ieq(param, "server_max_window_bits") && has_val &&
                   (wb = window_bits(val)) > 0) {
            bit = 4;
            ext->server_max_window_bits = (uint8_t)wb;
        } else if (sl_view_ieq(param, "client_max_window_bits") &&
                   (!has_val || (wb = window_bits(val)) > 0)) {
            bit = 8;
            ext->client_max_window_bits = (uint8_t)wb;
        } else {
            *err = "invalid permessage-deflate parameter";
            return -1;
        }
        if (seen & bit) {
            *err = "permessage-deflate parameter given twice";
            return -1;
        }
        seen |= bit;
    }
    *pp = p;
    return 0;
}

int sl_ws_ext_parse(const sl_view_t *vals, size_t n, sl_ws_ext_t *ext, const char **err)
{
    memset(ext, 0, sizeof *ext);
    ext->server_max_window_bits = ext->client_max_window_bits = 15;
    for (size_t i = 0; i < n; i++) {
        const char *p = vals[i].p, *end = vals[i].p + vals[i].n;
        for (;;) {
            skip_ows(&p, end);
            if (p == end)
                break;
            if (*p == ',') { /* empty list elements are allowed (RFC 9110 5.6.1) */
                p++;
                continue;
            }
            if (parse_one_ext(&p, end, ext, err) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- message reassembly ------------------------------------------------ */

void sl_ws_asm_init(sl_ws_asm_t *a, bool from_client, const sl_ws_ext_t *ext, size_t max_message)
{
    memset(a, 0, sizeof *a);
    a->from_client = from_client;
    a->max_message = max_message;
    if (ext && ext->deflate) {
        a->deflate = true;
        a->reset_context =
            from_client ? ext->client_no_context_takeover : ext->server_no_context_takeover;
    }
}

void sl_ws_asm_free(sl_ws_asm_t *a)
{
    if (a->z) {
        inflateEnd(a->z);
        free(a->z);
        a->z = NULL;
    }
    sl_buf_free(&a->data);
    sl_buf_free(&a->msg);
    a->in_message = false;
}

/* Inflate a->data (one whole compressed message) into a->msg, at most
 * a->max_message bytes. Returns 0 or a close code. */
static uint16_t inflate_message(sl_ws_asm_t *a, const char **err)
{
    z_stream *z = a->z;
    if (z == NULL) {
        z = calloc(1, sizeof *z);
        /* A 2^15 window decodes whatever smaller window the sender used. */
        if (z == NULL || inflateInit2(z, -15) != Z_OK) {
            free(z);
            *err = "cannot start a decompressor";
            return SL_WS_CLOSE_INTERNAL;
        }
        a->z = z;
    }
    /* RFC 7692 7.2.2: the sender removed this empty-block tail. */
    sl_buf_append(&a->data, "\x00\x00\xff\xff", 4);
    z->next_in = (Bytef *)a->data.p;
    z->avail_in = (uInt)a->data.n;
    uint16_t rc = 0;
    for (;;) {
        sl_buf_reserve(&a->msg, 16384);
        size_t room = a->msg.cap - a->msg.n, left = a->max_message + 1 - a->msg.n;
        if (room > left)
            room = left;
        z->next_out = (Bytef *)a->msg.p + a->msg.n;
        z->avail_out = (uInt)room;
        int r = inflate(z, Z_SYNC_FLUSH);
        a->msg.n += room - z->avail_out;
        if (a->msg.n > a->max_message) {
            *err = "decompressed message larger than the message size limit";
            rc = SL_WS_CLOSE_TOO_BIG;
            break;
        }
        if (r == Z_STREAM_END) {
            /* The sender ended the deflate stream: the next message starts a new one. */
            inflateReset(z);
            break;
        }
        if (r == Z_BUF_ERROR || (r == Z_OK && z->avail_in == 0 && z->avail_out != 0))
            break;
        if (r != Z_OK) {
            *err = "invalid compressed data (permessage-deflate)";
            rc = SL_WS_CLOSE_BAD_DATA;
            break;
        }
    }
    if (rc == 0 && a->reset_context)
        inflateReset(z);
    return rc;
}

int sl_ws_asm_add(sl_ws_asm_t *a, const sl_ws_frame_t *f, uint16_t *code, const char **err)
{
    if (sl_ws_is_control(f->opcode)) {
        *code = SL_WS_CLOSE_PROTOCOL;
        *err = "control frame given to the message reassembler";
        return -1;
    }
    if (f->opcode == SL_WS_OP_CONT) {
        if (!a->in_message) {
            *code = SL_WS_CLOSE_PROTOCOL;
            *err = "continuation frame without a message to continue";
            return -1;
        }
    } else {
        if (a->in_message) {
            *code = SL_WS_CLOSE_PROTOCOL;
            *err = "new data message before the fragmented one ended";
            return -1;
        }
        if (f->rsv1 && !a->deflate) {
            *code = SL_WS_CLOSE_PROTOCOL;
            *err = "RSV1 set but permessage-deflate was not negotiated";
            return -1;
        }
        a->in_message = true;
        a->opcode = f->opcode;
        a->compressed = f->rsv1;
        sl_buf_reset(&a->data);
    }
    if (f->payload.n > a->max_message || a->data.n > a->max_message - f->payload.n) {
        *code = SL_WS_CLOSE_TOO_BIG;
        *err = "message larger than the message size limit";
        return -1;
    }
    size_t at = a->data.n;
    sl_buf_append(&a->data, f->payload.p, f->payload.n);
    if (f->masked && f->payload.n > 0) /* an empty message has no buffer yet */
        sl_ws_unmask(a->data.p + at, a->data.p + at, f->payload.n, f->mask, 0);
    if (!f->fin)
        return 0;
    a->in_message = false;
    sl_buf_reset(&a->msg);
    if (a->compressed) {
        uint16_t rc = inflate_message(a, err);
        if (rc) {
            *code = rc;
            return -1;
        }
    } else {
        sl_buf_t t = a->msg;
        a->msg = a->data;
        a->data = t;
    }
    sl_buf_reset(&a->data);
    if (a->opcode == SL_WS_OP_TEXT && !sl_ws_utf8_valid(sl_view(a->msg.p, a->msg.n))) {
        *code = SL_WS_CLOSE_BAD_DATA;
        *err = "text message is not valid UTF-8";
        return -1;
    }
    return 1;
}
