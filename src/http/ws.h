/* WebSocket framing (RFC 6455) and permessage-deflate (RFC 7692), strictly.
 *
 * The frame parser is a pure function over a buffer: it returns the length
 * of one complete frame with its header decoded and a view of its (still
 * masked) payload, SL_WS_INCOMPLETE when more bytes are needed, or SL_WS_BAD
 * with the close code the connection must be failed with and a static
 * reason. The reassembler joins the data frames of one message (unmasked,
 * decompressed when the message was compressed) under a size limit, and
 * enforces the fragmentation rules. Neither does I/O. */
#ifndef SLUICE_HTTP_WS_H
#define SLUICE_HTTP_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/view.h"

#define SL_WS_INCOMPLETE (-2)
#define SL_WS_BAD (-1)

/* Opcodes (RFC 6455 section 5.2); 3-7 and 11-15 are reserved (invalid). */
#define SL_WS_OP_CONT 0x0
#define SL_WS_OP_TEXT 0x1
#define SL_WS_OP_BINARY 0x2
#define SL_WS_OP_CLOSE 0x8
#define SL_WS_OP_PING 0x9
#define SL_WS_OP_PONG 0xA

/* Close status codes sluice sends (RFC 6455 section 7.4.1). */
#define SL_WS_CLOSE_NORMAL 1000
#define SL_WS_CLOSE_PROTOCOL 1002    /* protocol error */
#define SL_WS_CLOSE_BAD_DATA 1007    /* payload inconsistent with its type (UTF-8, deflate) */
#define SL_WS_CLOSE_POLICY 1008      /* policy violation (a blocking finding) */
#define SL_WS_CLOSE_TOO_BIG 1009     /* message too big to inspect */
#define SL_WS_CLOSE_UNSUPPORTED 1010 /* client only: extension not negotiated */
#define SL_WS_CLOSE_INTERNAL 1011    /* server only: unexpected condition */

/* Largest close reason in a close frame (125 - 2 bytes of code). */
#define SL_WS_MAX_REASON 123

/* One frame as parsed. */
typedef struct sl_ws_frame {
    bool fin;             /* last frame of its message */
    bool rsv1;            /* per-message compressed (only with permessage-deflate) */
    uint8_t opcode;       /* SL_WS_OP_* */
    bool masked;          /* the MASK bit */
    uint8_t mask[4];      /* masking key when `masked` */
    size_t header_len;    /* 2 to 14 bytes */
    uint64_t payload_len; /* as declared */
    sl_view_t payload;    /* payload bytes as on the wire (masked when `masked`) */
} sl_ws_frame_t;

/* Is this a control opcode (close, ping, pong)? */
static inline bool sl_ws_is_control(uint8_t opcode)
{
    return (opcode & 0x8) != 0;
}

/* Parse one complete frame at p[0..n). `from_client`: the frame travels
 * client to server and MUST be masked (else it MUST NOT be). `rsv1_ok`:
 * permessage-deflate was negotiated, so RSV1 may mark the first frame of a
 * data message. A frame whose payload exceeds `max_payload` is refused with
 * 1009 as soon as its header is read. Returns the frame's total length (the
 * frame fields filled), SL_WS_INCOMPLETE, or SL_WS_BAD with *code (1002 or
 * 1009) and a static *err. Fragmentation order is the reassembler's job. */
long sl_ws_parse_frame(const char *p, size_t n, bool from_client, bool rsv1_ok,
                       uint64_t max_payload, sl_ws_frame_t *f, uint16_t *code, const char **err);

/* XOR `n` bytes of src with `mask`, starting at byte `offset` of the
 * payload, into dst (dst == src is allowed). */
void sl_ws_unmask(char *dst, const char *src, size_t n, const uint8_t mask[4], size_t offset);

/* Append a frame header for a payload of `len` bytes (masked with `mask`
 * when non-NULL; the caller masks the payload). */
void sl_ws_append_header(sl_buf_t *out, bool fin, bool rsv1, uint8_t opcode, uint64_t len,
                         const uint8_t *mask);

/* Append a whole close frame: `code`, then `reason` cut to
 * SL_WS_MAX_REASON bytes (on a UTF-8 boundary); masked when `mask` is
 * non-NULL (frames to a server). */
void sl_ws_append_close(sl_buf_t *out, uint16_t code, const char *reason, const uint8_t *mask);

/* Check an unmasked close payload: empty, or a valid status code followed by
 * a UTF-8 reason. Returns 0 (with *status = 1005 when empty) or -1 with a
 * static *err (the connection then fails with 1002). */
int sl_ws_check_close(sl_view_t payload, uint16_t *status, const char **err);

/* Is `v` well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF)? */
bool sl_ws_utf8_valid(sl_view_t v);

/* Extensions negotiated in a 101 response. */
typedef struct sl_ws_ext {
    bool deflate;                    /* permessage-deflate is in use */
    bool server_no_context_takeover; /* the server resets its compressor per message */
    bool client_no_context_takeover; /* the client resets its compressor per message */
    uint8_t server_max_window_bits;  /* 8..15 (15 when absent) */
    uint8_t client_max_window_bits;  /* 8..15 (15 when absent or given without a value) */
} sl_ws_ext_t;

/* Parse the Sec-WebSocket-Extensions field values of a 101 response (one
 * entry per field line; each a comma-separated list). Only
 * permessage-deflate, once, with valid parameters each at most once, is
 * accepted: anything else returns -1 with a static *err, because frames
 * transformed by an extension sluice does not know could not be inspected. */
int sl_ws_ext_parse(const sl_view_t *vals, size_t n, sl_ws_ext_t *ext, const char **err);

/* Reassembles the messages of one direction. */
typedef struct sl_ws_asm {
    bool from_client;   /* direction: client-to-server frames */
    size_t max_message; /* largest message (wire and decoded payload), bytes */
    bool deflate;       /* permessage-deflate negotiated */
    bool reset_context; /* the sender uses no context takeover */
    bool in_message;    /* a fragmented message has started */
    bool compressed;    /* the current message had RSV1 */
    uint8_t opcode;     /* text or binary: the current (or completed) message's type */
    sl_buf_t data;      /* payload so far (still compressed when `compressed`) */
    sl_buf_t msg;       /* the last complete message, decoded */
    void *z;            /* zlib inflate stream, created on the first compressed message */
} sl_ws_asm_t;

/* Start a reassembler for one direction. `ext` may be NULL (no extension). */
void sl_ws_asm_init(sl_ws_asm_t *a, bool from_client, const sl_ws_ext_t *ext, size_t max_message);

/* Add a data frame (text, binary or continuation; control frames are not
 * for here) parsed by sl_ws_parse_frame. Returns 1 when it completed a
 * message (a->msg holds the decoded payload, a->opcode its type), 0 when
 * more frames are needed, or -1 with *code (1002 order, 1007 bad deflate
 * data or UTF-8 text, 1009 too big) and a static *err. */
int sl_ws_asm_add(sl_ws_asm_t *a, const sl_ws_frame_t *f, uint16_t *code, const char **err);

/* Release a reassembler's storage. */
void sl_ws_asm_free(sl_ws_asm_t *a);

#endif
