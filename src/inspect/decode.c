/* Decoders (see decode.h). */
#include "inspect/decode.h"

#include <string.h>

static signed char hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return (signed char)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (signed char)(c - 'a' + 10);
    return -1;
}

static signed char b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (signed char)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (signed char)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (signed char)(c - '0' + 52);
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

static signed char b32val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (signed char)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (signed char)(c - 'a');
    if (c >= '2' && c <= '7')
        return (signed char)(c - '2' + 26);
    return -1;
}

/* Base64 and base32 alike: `bits` per symbol, padding ignored, leftover
 * bits dropped. SIZE_MAX on a foreign symbol or a full `out`. */
static size_t decode_radix(const char *p, size_t n, unsigned char *out, size_t cap, unsigned width,
                           signed char (*val)(unsigned char))
{
    while (n > 0 && p[n - 1] == '=')
        n--;
    size_t o = 0;
    uint64_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        signed char v = val((unsigned char)p[i]);
        if (v < 0)
            return SIZE_MAX;
        acc = (acc << width) | (uint64_t)v;
        bits += width;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return SIZE_MAX;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

size_t sl_decode_base64(const char *p, size_t n, unsigned char *out, size_t cap)
{
    while (n > 0 && p[n - 1] == '=')
        n--;
    if (n % 4 == 1)
        return SIZE_MAX;
    return decode_radix(p, n, out, cap, 6, b64val);
}

size_t sl_decode_base32(const char *p, size_t n, unsigned char *out, size_t cap)
{
    return decode_radix(p, n, out, cap, 5, b32val);
}

size_t sl_decode_hex(const char *p, size_t n, unsigned char *out, size_t cap)
{
    size_t o = 0, i = 0;
    char delim = 0;
    while (i < n) {
        if (i > 0 && delim == 0 && hexval((unsigned char)p[i]) < 0)
            delim = p[i];
        if (i > 0 && delim != 0) {
            if (p[i] != delim)
                return SIZE_MAX;
            i++;
        }
        if (i + 2 > n)
            return SIZE_MAX;
        signed char a = hexval((unsigned char)p[i]), b = hexval((unsigned char)p[i + 1]);
        if (a < 0 || b < 0 || o == cap)
            return SIZE_MAX;
        out[o++] = (unsigned char)(a << 4 | b);
        i += 2;
    }
    if (delim && delim != ' ' && delim != ':' && delim != '-' && delim != ',')
        return SIZE_MAX;
    return o;
}

size_t sl_decode_percent(const char *p, size_t n, char *out, uint32_t *map)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (map)
            map[o] = (uint32_t)i;
        if (p[i] == '%' && i + 3 <= n) {
            signed char a = hexval((unsigned char)p[i + 1]), b = hexval((unsigned char)p[i + 2]);
            if (a >= 0 && b >= 0) {
                out[o++] = (char)(a << 4 | b);
                i += 3;
                continue;
            }
        }
        out[o++] = p[i++];
    }
    if (map)
        map[o] = (uint32_t)n;
    return o;
}

/* Append code point `cp` as UTF-8; returns bytes written (0 if invalid). */
static size_t put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp <= 0x10FFFF) {
        o[0] = (char)(0xF0 | cp >> 18);
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
    }
    return 0;
}

static const struct {
    const char *name;
    const char *val;
} html_named[] = {
    {"lt", "<"},     {"gt", ">"},     {"amp", "&"},      {"quot", "\""}, {"apos", "'"},
    {"nbsp", " "},   {"colon", ":"},  {"sol", "/"},      {"bsol", "\\"}, {"period", "."},
    {"comma", ","},  {"lpar", "("},   {"rpar", ")"},     {"lsqb", "["},  {"rsqb", "]"},
    {"lcub", "{"},   {"rcub", "}"},   {"equals", "="},   {"quest", "?"}, {"excl", "!"},
    {"num", "#"},    {"dollar", "$"}, {"percnt", "%"},   {"ast", "*"},   {"plus", "+"},
    {"semi", ";"},   {"Tab", "\t"},   {"NewLine", "\n"}, {"grave", "`"}, {"vert", "|"},
    {"lowbar", "_"}, {"hyphen", "-"}, {"commat", "@"},   {"Hat", "^"},   {"tilde", "~"},
};

size_t sl_decode_html(const char *p, size_t n, char *out, uint32_t *map)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t o0 = o;
        if (p[i] == '&' && i + 3 <= n) {
            size_t j = i + 1;
            if (p[j] == '#') {
                uint32_t cp = 0;
                bool hex = j + 1 < n && (p[j + 1] == 'x' || p[j + 1] == 'X');
                size_t k = j + 1 + hex, d = 0;
                while (k < n && d < 8) {
                    signed char v = hexval((unsigned char)p[k]);
                    if (v < 0 || (!hex && v > 9))
                        break;
                    cp = cp * (hex ? 16 : 10) + (uint32_t)v;
                    k++, d++;
                }
                /* The ';' is optional in HTML for numeric references. */
                if (d > 0) {
                    size_t w = put_utf8(out + o, cp);
                    size_t used = k - i + (k < n && p[k] == ';');
                    if (w > 0 && w <= used) {
                        o += w;
                        if (map)
                            for (size_t m = o0; m < o; m++)
                                map[m] = (uint32_t)i;
                        i += used;
                        continue;
                    }
                }
            } else if (memchr(p + j, ';', n - j < 10 ? n - j : 10)) {
                for (size_t t = 0; t < sizeof html_named / sizeof html_named[0]; t++) {
                    if (html_named[t].name[0] != p[j])
                        continue;
                    size_t ln = strlen(html_named[t].name);
                    if (j + ln < n && memcmp(p + j, html_named[t].name, ln) == 0 &&
                        p[j + ln] == ';') {
                        out[o++] = html_named[t].val[0];
                        if (map)
                            map[o0] = (uint32_t)i;
                        i = j + ln + 1;
                        goto next;
                    }
                }
            }
        }
        if (map)
            map[o] = (uint32_t)i;
        out[o++] = p[i++];
    next:;
    }
    if (map)
        map[o] = (uint32_t)n;
    return o;
}

static bool hex_n(const char *p, size_t n, size_t k, uint32_t *v)
{
    uint32_t r = 0;
    if (n < k)
        return false;
    for (size_t i = 0; i < k; i++) {
        signed char h = hexval((unsigned char)p[i]);
        if (h < 0)
            return false;
        r = r << 4 | (uint32_t)h;
    }
    *v = r;
    return true;
}

size_t sl_decode_escapes(const char *p, size_t n, char *out, uint32_t *map)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t o0 = o, used = 0;
        if (p[i] == '\\' && i + 1 < n) {
            char c = p[i + 1];
            uint32_t cp, lo;
            size_t w = 0;
            if (c == 'u' && i + 2 < n && p[i + 2] == '{') {
                size_t k = i + 3;
                cp = 0;
                while (k < n && k < i + 10 && hexval((unsigned char)p[k]) >= 0)
                    cp = cp << 4 | (uint32_t)hexval((unsigned char)p[k++]);
                if (k < n && p[k] == '}' && k > i + 3) {
                    w = put_utf8(out + o, cp);
                    used = k + 1 - i;
                }
            } else if (c == 'u' && hex_n(p + i + 2, n - i - 2, 4, &cp)) {
                used = 6;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 12 <= n && p[i + 6] == '\\' &&
                    p[i + 7] == 'u' && hex_n(p + i + 8, n - i - 8, 4, &lo) && lo >= 0xDC00 &&
                    lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    used = 12;
                }
                w = put_utf8(out + o, cp);
            } else if (c == 'x' && hex_n(p + i + 2, n - i - 2, 2, &cp)) {
                out[o] = (char)cp;
                w = 1;
                used = 4;
            } else {
                static const char from[] = "nrt\"'\\/0", to[] = "\n\r\t\"'\\/\0";
                const char *q = memchr(from, c, sizeof from - 1);
                if (q) {
                    out[o] = to[q - from];
                    w = 1;
                    used = 2;
                }
            }
            if (w > 0 && w <= used) {
                o += w;
                if (map)
                    for (size_t m = o0; m < o; m++)
                        map[m] = (uint32_t)i;
                i += used;
                continue;
            }
        }
        if (map)
            map[o] = (uint32_t)i;
        out[o++] = p[i++];
    }
    if (map)
        map[o] = (uint32_t)n;
    return o;
}

size_t sl_count_unprintable(const unsigned char *p, size_t n)
{
    size_t good = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if ((c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r' || c == '\t') {
            good++, i++;
            continue;
        }
        size_t len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
        if (len == 0 || c >= 0xF5 || i + len > n) {
            i++;
            continue;
        }
        size_t k = 1;
        while (k < len && (p[i + k] & 0xC0) == 0x80)
            k++;
        if (k == len)
            good += len;
        i += k;
    }
    return n - good;
}

bool sl_mostly_printable(const unsigned char *p, size_t n)
{
    return n > 0 && sl_count_unprintable(p, n) * 10 <= n;
}
