/* Multi-pattern exact matcher for secret values and placeholders.
 *
 * The one engine behind echo redaction (values -> placeholders), body
 * injection (placeholders -> values) and the scans that refuse a request
 * (a real value or an out-of-scope placeholder from the sandbox). Semantics:
 * leftmost match first, the longest pattern at that position, no overlaps;
 * the streaming form gives exactly the block form's output whatever the
 * chunk boundaries (it holds back at most maxlen - 1 bytes).
 *
 * The compiled table is a plain struct with no pointers of its own besides
 * the patterns, so the store can place it (and the patterns, which are secret
 * values) in locked, non-dumpable memory. */
#ifndef SLUICE_SECRETS_MATCH_H
#define SLUICE_SECRETS_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Most patterns one table holds (seven per secret: see store-t.h). */
#define SL_SMATCH_MAX 2048

/* A compiled pattern set. Build with sl_smatch_init; read-only afterwards. */
typedef struct sl_smatch {
    size_t n;      /* patterns */
    size_t maxlen; /* longest pattern */
    size_t stride; /* shortest pattern - 3: the sampling step of find (0: none) */
    const unsigned char *pat[SL_SMATCH_MAX]; /* pattern bytes (not owned) */
    uint32_t len[SL_SMATCH_MAX];             /* pattern lengths, each >= 2 */
    uint16_t order[SL_SMATCH_MAX];           /* indexes by first byte, then longest first */
    uint16_t first[257];                     /* order[first[c]..first[c+1]) start with byte c */
    uint64_t pair[65536 / 64];               /* bit (b0 << 8 | b1): some pattern starts b0 b1 */
    uint64_t
        gram[65536 / 64]; /* bit gram_key(4 bytes): some pattern has them below offset stride */
} sl_smatch_t;

/* What to do when pattern i matches. */
typedef enum sl_smatch_kind {
    SL_SM_OFF = 0, /* pattern disabled: never matches */
    SL_SM_REPLACE, /* write `to` instead of the match, and record a hit */
    SL_SM_FLAG,    /* copy the match unchanged, and record a hit */
} sl_smatch_kind_t;

typedef struct sl_smatch_act {
    sl_smatch_kind_t kind;
    const unsigned char *to; /* SL_SM_REPLACE: replacement bytes (not owned) */
    size_t to_n;             /* their length */
} sl_smatch_act_t;

/* Bitset of pattern indexes that matched. */
typedef struct sl_smatch_hits {
    uint64_t bits[SL_SMATCH_MAX / 64];
} sl_smatch_hits_t;

static inline bool sl_smatch_hit(const sl_smatch_hits_t *h, size_t i)
{
    return (h->bits[i / 64] >> (i % 64)) & 1;
}

/* Compile `n` (<= SL_SMATCH_MAX) patterns of length >= 2 into `m`. The
 * pattern bytes must outlive `m`. Returns false if a limit is broken. */
bool sl_smatch_init(sl_smatch_t *m, const unsigned char *const *pat, const size_t *len, size_t n);

/* Block form: apply the actions `act` (one per pattern) to in[0..n). If `out`
 * is non-NULL the transformed bytes are appended to it; with `out` NULL this
 * is a scan. Hits are OR-ed into `hits` (may be NULL). Returns the number of
 * matches. */
size_t sl_smatch_apply(const sl_smatch_t *m, const sl_smatch_act_t *act, const void *in, size_t n,
                       sl_buf_t *out, sl_smatch_hits_t *hits);

/* Streaming form. */
typedef struct sl_smatch_stream {
    const sl_smatch_t *m;       /* the table (borrowed) */
    const sl_smatch_act_t *act; /* the actions (borrowed) */
    unsigned char *carry;       /* held-back tail; may hold part of a secret: wiped on free */
    size_t carry_n;             /* bytes in carry */
    size_t carry_cap;           /* 2 * maxlen */
    sl_smatch_hits_t hits;      /* patterns matched so far */
    size_t matches;             /* number of matches so far */
    uint64_t in_bytes;          /* bytes fed */
    uint64_t out_bytes;         /* bytes written to outputs */
} sl_smatch_stream_t;

/* Start a stream over table `m` with actions `act` (both must outlive it). */
void sl_smatch_stream_init(sl_smatch_stream_t *s, const sl_smatch_t *m, const sl_smatch_act_t *act);
/* Feed a chunk; transformed bytes that are decided are appended to `out`
 * (NULL: scan only). Up to maxlen - 1 bytes are held back. */
void sl_smatch_stream_feed(sl_smatch_stream_t *s, const void *in, size_t n, sl_buf_t *out);
/* End of stream: flush what was held back. The stream can be reused. */
void sl_smatch_stream_finish(sl_smatch_stream_t *s, sl_buf_t *out);
/* Wipe and free the held-back bytes. */
void sl_smatch_stream_free(sl_smatch_stream_t *s);

#endif
