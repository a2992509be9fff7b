/* HTTP/1.1 message heads (RFC 9112), parsed strictly.
 *
 * Ambiguity is how requests get smuggled past inspection, so the parser
 * refuses anything a lenient peer might read differently: obs-fold, bare CR,
 * NUL or other controls in the head, whitespace before the colon, invalid
 * tokens. The contract is picohttpparser's: return the head length on
 * success, -2 when more bytes are needed, -1 when the head is invalid (with
 * a static reason in *err). Results are views into the caller's buffer. */
#ifndef SLUICE_HTTP_H1_H
#define SLUICE_HTTP_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "core/view.h"

#define SL_H1_INCOMPLETE (-2)
#define SL_H1_BAD (-1)

typedef struct sl_h1_header {
    sl_view_t name;  /* token, as written (compare case-insensitively) */
    sl_view_t value; /* leading and trailing whitespace removed */
} sl_h1_header_t;

typedef struct sl_h1_request {
    sl_view_t method;        /* token */
    sl_view_t target;        /* request-target, visible ASCII only */
    int minor_version;       /* 0 or 1 (HTTP/1.x) */
    sl_h1_header_t *headers; /* caller-provided array */
    size_t n_headers;        /* in: capacity of headers; out: fields parsed */
} sl_h1_request_t;

typedef struct sl_h1_response {
    int minor_version;
    int status; /* 100..599 */
    sl_view_t reason;
    sl_h1_header_t *headers;
    size_t n_headers; /* in: capacity; out: fields parsed */
} sl_h1_response_t;

/* Parse a request head from buf[0..len). */
int sl_h1_parse_request(const char *buf, size_t len, sl_h1_request_t *req, const char **err);

/* Parse a response head. Bare LF line ends are tolerated here (old servers),
 * everything else is as strict as for requests. */
int sl_h1_parse_response(const char *buf, size_t len, sl_h1_response_t *res, const char **err);

/* How a message body is delimited. */
typedef enum sl_h1_body_kind {
    SL_H1_BODY_NONE = 0,   /* no body */
    SL_H1_BODY_LENGTH,     /* Content-Length bytes */
    SL_H1_BODY_CHUNKED,    /* Transfer-Encoding: chunked */
    SL_H1_BODY_UNTIL_CLOSE /* responses only: read until the upstream closes */
} sl_h1_body_kind_t;

/* The framing facts of a head, after the smuggling checks. */
typedef struct sl_h1_framing {
    sl_h1_body_kind_t kind;
    uint64_t length; /* for SL_H1_BODY_LENGTH */
    bool keep_alive; /* connection may be reused after this message */
    bool expect_100; /* request carried Expect: 100-continue */
    bool upgrade;    /* Connection: upgrade with an Upgrade header */
} sl_h1_framing_t;

/* Decide a request's framing, refusing every ambiguous combination: CL with
 * TE, duplicate or conflicting CL, TE other than a single final "chunked",
 * TE on HTTP/1.0. Returns 0, or -1 with a static reason. */
int sl_h1_request_framing(const sl_h1_request_t *req, sl_h1_framing_t *out, const char **err);

/* Same for a response to a request with `method` (HEAD has no body). */
int sl_h1_response_framing(const sl_h1_response_t *res, sl_view_t method, sl_h1_framing_t *out,
                           const char **err);

/* Is this header hop-by-hop (never forwarded)? `connection_tokens` are the
 * values of the message's Connection headers, whose listed names are also
 * hop-by-hop. */
bool sl_h1_is_hop_by_hop(sl_view_t name, const sl_h1_header_t *headers, size_t n_headers);

/* Is `c` a tchar (RFC 9110 token character)? */
bool sl_h1_is_tchar(unsigned char c);

/* Streaming chunked-body decoder. Decodes in place: data bytes are moved to
 * the front of the buffer. Trailer fields are collected (validated, bounded)
 * so they can be forwarded. */
typedef struct sl_chunked {
    int state;            /* private */
    uint64_t remaining;   /* private: data bytes left in the current chunk */
    unsigned size_digits; /* private */
    size_t line_len;      /* private: bytes in the current size/trailer line */
    char trailers[4096];  /* trailer section as received, CRLF-terminated lines */
    size_t trailers_len;
    bool done; /* the terminating chunk and trailers have been read */
} sl_chunked_t;

void sl_chunked_init(sl_chunked_t *d);

/* Decode buf[0..*len). On return buf[0..*len) holds the decoded data bytes
 * and *consumed says how many input bytes were used (the rest belong to the
 * next message once d->done). Returns 0 or -1 with a static reason. */
int sl_chunked_decode(sl_chunked_t *d, char *buf, size_t *len, size_t *consumed, const char **err);

#endif
