/* Normalisation: one analysis pass that finds what is worth decoding, and
 * folding passes that produce the text the non-credential rules match on.
 * Pure functions over buffers. */
#ifndef SLUICE_INSPECT_NORMALIZE_H
#define SLUICE_INSPECT_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Kinds of candidate runs for the run decoders. */
enum {
    SL_RUN_BASE64 = 1, /* [A-Za-z0-9+/_-]+ with optional '=' padding, mixed classes */
    SL_RUN_BASE32 = 2, /* [A-Z2-7]+ (or all lowercase) with optional padding */
    SL_RUN_HEX = 4,    /* [0-9a-fA-F]+ of even length */
    SL_RUN_HEXD = 8,   /* hex pairs with a delimiter (' ', ':', '-', ',') */
};

typedef struct sl_run {
    uint32_t start, len; /* byte range in the analysed text */
    unsigned kinds;      /* SL_RUN_* bits: which decoders to try */
} sl_run_t;

/* What one analysis pass learned about a text. */
typedef struct sl_textinfo {
    bool has_pct;    /* a '%' followed by two hex digits */
    bool has_amp;    /* '&' (possible HTML entity) */
    bool has_bslash; /* '\' (possible escape) */
    bool has_high;   /* a byte >= 0x80 (UTF-8: folding may change it) */
    sl_run_t *runs;  /* candidate runs, at least min_run long (heap, caller frees) */
    size_t n_runs, cap_runs;
} sl_textinfo_t;

/* One pass over `p`: flags and candidate runs of at least `min_run` bytes.
 * Resets `ti` but reuses its run storage. */
void sl_analyze(const char *p, size_t n, size_t min_run, sl_textinfo_t *ti);
void sl_textinfo_free(sl_textinfo_t *ti);

#define SL_FOLD_CASE 1u /* lowercase (ASCII, Latin-1, Greek, Cyrillic) */
#define SL_FOLD_WS 2u   /* collapse whitespace runs (incl. Unicode spaces) to one ' ' */

/* Fold `p` into `out` (capacity >= n; folding never grows text): fullwidth and
 * mathematical alphanumerics to ASCII, look-alike Cyrillic and Greek letters to
 * ASCII inside words that also contain ASCII letters (so Russian or Greek
 * text stays itself), zero-width, bidi, variation selectors and tag
 * characters removed. Tag characters U+E0020..E007E carry ASCII: those
 * bytes are appended to `tags` (if not NULL) and *tag_lo, *tag_hi widened to
 * their input range. `map` (optional, out_len + 1 entries) maps output bytes
 * to input offsets. Returns the output length. */
size_t sl_fold(const char *p, size_t n, unsigned flags, char *out, uint32_t *map, sl_buf_t *tags,
               size_t *tag_lo, size_t *tag_hi);

/* Leetspeak folding in place of a copy: 1->i 0->o 3->e 4->a 5->s 7->t @->a $->s.
 * Same length as the input. Returns true if a changed character is next to
 * an ASCII letter (leetspeak words); numbers alone ("2024", "$10") change
 * but do not count, so text with only numbers can skip the leet pass. */
bool sl_leet(const char *p, size_t n, char *out);

#endif
