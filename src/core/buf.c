#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_buf_reserve(sl_buf_t *b, size_t extra)
{
    if (b->cap - b->n > extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n <= extra)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        fprintf(stderr, "sluice: out of memory growing a buffer to %zu bytes\n", cap);
        abort();
    }
    b->p = p;
    b->cap = cap;
}

void sl_buf_append(sl_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    sl_buf_reserve(b, n);
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

void sl_buf_append_str(sl_buf_t *b, const char *s)
{
    sl_buf_append(b, s, strlen(s));
}

void sl_buf_appendf(sl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n < sizeof tmp) {
        sl_buf_append(b, tmp, (size_t)n);
    } else {
        sl_buf_reserve(b, (size_t)n + 1);
        vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap2);
        b->n += (size_t)n;
    }
    va_end(ap2);
}

void sl_buf_append_json(sl_buf_t *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    sl_buf_reserve(b, n + 8);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sl_buf_append(b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sl_buf_append(b, esc, 6);
        } else {
            sl_buf_reserve(b, 1);
            b->p[b->n++] = (char)c;
        }
    }
}

void sl_buf_consume(sl_buf_t *b, size_t n)
{
    if (n >= b->n) {
        b->n = 0;
        return;
    }
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
}

void sl_buf_reset(sl_buf_t *b)
{
    b->n = 0;
}

void sl_buf_free(sl_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

char *sl_buf_cstr(sl_buf_t *b)
{
    sl_buf_reserve(b, 1);
    b->p[b->n] = '\0';
    return b->p;
}

void sl_buf_append_u64(sl_buf_t *b, uint64_t v)
{
    char tmp[20];
    int i = 20;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sl_buf_append(b, tmp + i, (size_t)(20 - i));
}

void sl_buf_append_hex(sl_buf_t *b, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    if (digits > 16)
        digits = 16;
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        tmp[i] = hex[v & 15];
    sl_buf_append(b, tmp, (size_t)digits);
}
