/* HTTP content codings (RFC 9110 section 8.4): parse a Content-Encoding
 * field and undo it, streaming, for inspection.
 *
 * The decoder is pure over buffers (no I/O): it is fed the body as it
 * arrives, in chunks of any size, and hands decoded bytes to a sink in
 * pieces of at most SL_CODING_CHUNK bytes. Memory is bounded whatever the
 * body: a fixed output buffer per layer, the codec's own state (zlib 32 KiB
 * window; brotli at most a 16 MiB ring buffer; zstd windows are capped at
 * 8 MiB, RFC 8878's limit for HTTP) and, for zstd, one block (at most
 * 128 KiB) held until it is complete.
 *
 * Budgets stop decompression bombs: the decoded size of every layer is
 * capped, and so is the ratio of decoded to compressed bytes. A body that
 * breaks a budget, is corrupt, truncated or has trailing garbage is an error:
 * callers fail closed. */
#ifndef SLUICE_HTTP_CODING_H
#define SLUICE_HTTP_CODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/view.h"

/* One content coding. */
typedef enum sl_coding {
    SL_CODING_GZIP = 1, /* "gzip", "x-gzip": RFC 1952, concatenated members allowed */
    SL_CODING_DEFLATE,  /* "deflate": zlib (RFC 1950); raw deflate accepted too */
    SL_CODING_BR,       /* "br": brotli (RFC 7932) */
    SL_CODING_ZSTD,     /* "zstd": Zstandard (RFC 8878), several frames allowed */
} sl_coding_t;

/* Most codings stacked on one body; more is refused (nobody needs it, and
 * every layer costs memory). */
#define SL_CODING_MAX_LAYERS 4
/* Largest piece the sink is handed at once. */
#define SL_CODING_CHUNK 16384

/* The codings of a body in the order they were applied (the field's order):
 * "gzip, br" is {GZIP, BR}; decoding undoes BR first. */
typedef struct sl_coding_list {
    sl_coding_t v[SL_CODING_MAX_LAYERS];
    size_t n; /* 0: identity (nothing to undo) */
} sl_coding_list_t;

/* Append the codings named in one Content-Encoding field value to `out`
 * (call once per field, in field order; zero `out` first). Tokens are
 * case-insensitive, separated by commas with optional whitespace; empty list
 * elements are skipped; "identity" (and "none") add nothing. Returns 0, or -1
 * with *err set to a static reason: an unknown coding (`*bad` is then a view
 * of its token), too many layers, or a malformed list. `bad` may be NULL. */
int sl_coding_parse(sl_view_t value, sl_coding_list_t *out, sl_view_t *bad, const char **err);

/* The token for a coding ("gzip"...). */
const char *sl_coding_name(sl_coding_t c);

/* Budgets of one decoded body. */
typedef struct sl_coding_limits {
    uint64_t max_out;    /* decoded bytes of any layer; more is SL_DEC_LIMIT */
    uint32_t max_ratio;  /* decoded bytes per compressed byte, 0 = unchecked ... */
    uint64_t ratio_free; /* ... once more than this many bytes were decoded */
} sl_coding_limits_t;

/* Decoder results. Everything but SL_DEC_OK is final: later calls return
 * the same status and produce nothing. */
typedef enum sl_dec_status {
    SL_DEC_OK = 0,
    SL_DEC_BAD = -1,       /* not valid data for its coding (or trailing garbage) */
    SL_DEC_TRUNCATED = -2, /* the body ended inside a compressed stream */
    SL_DEC_LIMIT = -3,     /* decoded size over limits.max_out */
    SL_DEC_RATIO = -4,     /* decoded/compressed over limits.max_ratio: a bomb */
    SL_DEC_STOPPED = -5,   /* the sink returned non-zero */
    SL_DEC_NOMEM = -6,     /* a codec could not allocate its state */
} sl_dec_status_t;

/* Receives decoded bytes in order (n > 0). Return 0 to go on, non-zero to
 * stop decoding (the decoder then reports SL_DEC_STOPPED). */
typedef int (*sl_coding_sink_fn)(void *arg, const char *p, size_t n);

typedef struct sl_decoder sl_decoder_t;

/* A decoder for a body with these codings (n >= 1) and budgets. NULL on
 * allocation failure. */
sl_decoder_t *sl_decoder_new(const sl_coding_list_t *codings, const sl_coding_limits_t *lim);

/* Decode the next `n` body bytes, handing every decoded byte that they
 * complete to `sink`. Returns SL_DEC_OK or an error status. */
sl_dec_status_t sl_decoder_feed(sl_decoder_t *d, const char *p, size_t n, sl_coding_sink_fn sink,
                                void *arg);

/* The body is complete: flush what is left and check that every layer ended
 * cleanly. A body of zero bytes is accepted (nothing to decode). */
sl_dec_status_t sl_decoder_finish(sl_decoder_t *d, sl_coding_sink_fn sink, void *arg);

/* Body bytes fed so far whose decoded bytes may not have reached the sink
 * yet (a zstd block still incomplete, at any layer). A caller that forwards
 * the body while decoding holds back at least this many of the last bytes
 * it was fed, so nothing leaves before it was inspected. The lag of the
 * bit-level codecs (gzip, deflate, br) is a few bytes and not counted. */
uint64_t sl_decoder_pending(const sl_decoder_t *d);

/* Decoded bytes handed to the sink so far. */
uint64_t sl_decoder_total_out(const sl_decoder_t *d);

/* What went wrong, for a refusal reason: a static string naming the coding
 * and the problem ("gzip: invalid data", "decoded size over the limit").
 * "" while the status is SL_DEC_OK. */
const char *sl_decoder_error(const sl_decoder_t *d);

/* The decoder's status (SL_DEC_OK until something failed). */
sl_dec_status_t sl_decoder_status(const sl_decoder_t *d);

/* Free the decoder and its codec state. NULL is a no-op. */
void sl_decoder_free(sl_decoder_t *d);

#endif
