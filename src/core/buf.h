/* Growable byte buffer. sl_buf_* abort on allocation failure (a proxy that
 * cannot allocate a few KiB has nothing better to do). */
#ifndef SLUICE_CORE_BUF_H
#define SLUICE_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "core/view.h"

typedef struct sl_buf {
    char *p;    /* heap storage, NULL until first append */
    size_t n;   /* bytes in use */
    size_t cap; /* bytes allocated */
} sl_buf_t;

/* Ensure room for `extra` more bytes. */
void sl_buf_reserve(sl_buf_t *b, size_t extra);
void sl_buf_append(sl_buf_t *b, const void *p, size_t n);
static inline void sl_buf_append_view(sl_buf_t *b, sl_view_t v)
{
    sl_buf_append(b, v.p, v.n);
}
void sl_buf_append_str(sl_buf_t *b, const char *s);
void sl_buf_appendf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append an unsigned decimal number. */
void sl_buf_append_u64(sl_buf_t *b, uint64_t v);
/* Append `v` as exactly `digits` lowercase hex digits (zero-padded). */
void sl_buf_append_hex(sl_buf_t *b, uint64_t v, int digits);
/* Append `p` as the inside of a JSON string (no surrounding quotes). */
void sl_buf_append_json(sl_buf_t *b, const char *p, size_t n);
/* Drop the first `n` bytes, keeping the rest. */
void sl_buf_consume(sl_buf_t *b, size_t n);
void sl_buf_reset(sl_buf_t *b);
/* Free storage; the buffer is empty and reusable afterwards. */
void sl_buf_free(sl_buf_t *b);
/* NUL-terminate without counting the NUL; returns b->p. */
char *sl_buf_cstr(sl_buf_t *b);

#endif
