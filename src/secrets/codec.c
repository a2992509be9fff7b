/* base64 and percent-encoding for credentials. */
#include "secrets/codec.h"

#include <string.h>

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sl_secret_b64_encode(const void *vp, size_t n, char *out)
{
    const unsigned char *p = vp;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    return o;
}

bool sl_secret_b64_decode(sl_view_t v, char *out, size_t *out_n)
{
    size_t o = 0;
    if (v.n == 0 || v.n % 4 != 0)
        return false;
    for (size_t i = 0; i < v.n; i += 4) {
        unsigned acc = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = v.p[i + k];
            const char *at = c ? strchr(b64, c) : NULL;
            if (c == '=' && i + 4 == v.n && k >= 2 && (k == 3 || v.p[i + 3] == '=')) {
                pad++;
                acc <<= 6;
                continue;
            }
            if (at == NULL || pad > 0)
                return false;
            acc = acc << 6 | (unsigned)(at - b64);
        }
        unsigned char bytes[3] = {(unsigned char)(acc >> 16), (unsigned char)(acc >> 8),
                                  (unsigned char)acc};
        memcpy(out + o, bytes, (size_t)(3 - pad));
        o += (size_t)(3 - pad);
    }
    *out_n = o;
    return true;
}

size_t sl_secret_b64_inner(const void *vp, size_t n, unsigned align, char *out)
{
    const unsigned char *p = vp;
    /* Character c covers bits [6c, 6c + 6) of the stream; keep those inside
     * the bits of p, which start at 8 * align. */
    size_t first = (8 * align + 5) / 6, end = (8 * (align + n)) / 6, o = 0;
    for (size_t c = first; c < end; c++) {
        size_t bit = 6 * c - 8 * align; /* offset into p's bits */
        unsigned v = (unsigned)p[bit / 8] << 8 | (bit / 8 + 1 < n ? p[bit / 8 + 1] : 0);
        out[o++] = b64[(v >> (10 - bit % 8)) & 63];
    }
    return o;
}

size_t sl_secret_pct_encode(const void *vp, size_t n, char *out)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = vp;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    return o;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool sl_secret_pct_decode(sl_view_t v, char *out, size_t *out_n)
{
    if (v.n == 0 || memchr(v.p, '%', v.n) == NULL)
        return false;
    size_t o = 0;
    for (size_t i = 0; i < v.n; i++) {
        int h, l;
        if (v.p[i] == '%' && i + 2 < v.n && (h = hexval((unsigned char)v.p[i + 1])) >= 0 &&
            (l = hexval((unsigned char)v.p[i + 2])) >= 0) {
            out[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            out[o++] = v.p[i];
        }
    }
    *out_n = o;
    return true;
}
