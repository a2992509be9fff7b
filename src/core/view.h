/* Views: a pointer and a length into someone else's buffer.
 *
 * Parsers hand views across their boundary instead of NUL-terminated copies,
 * so they never allocate and can be fuzzed as pure functions. */
#ifndef SLUICE_CORE_VIEW_H
#define SLUICE_CORE_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct sl_view {
    const char *p; /* first byte; not NUL-terminated */
    size_t n;      /* length in bytes */
} sl_view_t;

#define SL_VIEW_LIT(s) ((sl_view_t){(s), sizeof(s) - 1})
#define SL_VIEW_NULL ((sl_view_t){NULL, 0})

static inline sl_view_t sl_view(const char *p, size_t n)
{
    return (sl_view_t){p, n};
}

/* Exact byte equality with a C string. */
static inline bool sl_view_eq(sl_view_t v, const char *s)
{
    size_t n = strlen(s);
    return v.n == n && memcmp(v.p, s, n) == 0;
}

/* ASCII case-insensitive equality with a C string (header names, tokens). */
static inline bool sl_view_ieq(sl_view_t v, const char *s)
{
    size_t n = strlen(s);
    return v.n == n && strncasecmp(v.p, s, n) == 0;
}

/* Value of a hex digit, or -1. */
static inline int sl_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
