/* Analysis and folding (see normalize.h). The hot path: prose goes through
 * sl_analyze once and, for inbound surfaces, the ASCII branch of sl_fold. */
#include "inspect/normalize.h"

#include <stdlib.h>
#include <string.h>

/* Byte classes for the analysis pass. */
enum {
    C_B64 = 1,       /* base64 / base64url alphabet */
    C_HEX = 2,       /* hex digit */
    C_B32 = 4,       /* A-Z 2-7 */
    C_LOW = 8,       /* a-z */
    C_UP = 16,       /* A-Z */
    C_DIG = 32,      /* 0-9 */
    C_DELIM = 64,    /* hex delimiter: space : - , */
    C_NOTSAME = 128, /* folding changes this byte or its neighbourhood */
};

static unsigned char cls[256];
static unsigned char lower_tab[256];
static unsigned char fold_tab[256]; /* lowercase, whitespace -> ' ' */
static unsigned char ws_tab[256];   /* 1 for ASCII whitespace */
static unsigned char leet_tab[256];

__attribute__((constructor)) static void init_tables(void)
{
    static const char lf[] = "103457@$", lt[] = "ioeastas";
    for (int c = 0; c < 256; c++) {
        unsigned char k = 0;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '+' || c == '/' || c == '-' || c == '_')
            k |= C_B64;
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))
            k |= C_HEX;
        if ((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'))
            k |= C_B32;
        if (c >= 'a' && c <= 'z')
            k |= C_LOW;
        if (c >= 'A' && c <= 'Z')
            k |= C_UP | C_NOTSAME;
        if (c >= '0' && c <= '9')
            k |= C_DIG;
        if (c == ' ' || c == ':' || c == '-' || c == ',')
            k |= C_DELIM;
        if (c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c >= 0x80)
            k |= C_NOTSAME;
        cls[c] = k;
        lower_tab[c] = (unsigned char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
        ws_tab[c] = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
        fold_tab[c] = ws_tab[c] ? ' ' : lower_tab[c];
        leet_tab[c] = (unsigned char)c;
    }
    for (size_t i = 0; i < sizeof lf - 1; i++)
        leet_tab[(unsigned char)lf[i]] = (unsigned char)lt[i];
}

static void push_run(sl_textinfo_t *ti, size_t start, size_t len, unsigned kinds)
{
    if (ti->n_runs == ti->cap_runs) {
        size_t nc = ti->cap_runs ? ti->cap_runs * 2 : 16;
        sl_run_t *r = realloc(ti->runs, nc * sizeof *r);
        if (!r)
            abort();
        ti->runs = r;
        ti->cap_runs = nc;
    }
    ti->runs[ti->n_runs++] = (sl_run_t){(uint32_t)start, (uint32_t)len, kinds};
}

static void end_b64_run(sl_textinfo_t *ti, const char *p, size_t n, size_t s, size_t e,
                        unsigned acc, size_t min_run)
{
    /* Include up to two '=' of padding. */
    size_t pe = e;
    while (pe < n && pe < e + 2 && p[pe] == '=')
        pe++;
    if (pe - s < min_run)
        return;
    unsigned kinds = 0;
    /* Text encoded in base64 always mixes upper case with lower case or digits. */
    if ((acc & C_UP) && (acc & (C_LOW | C_DIG)))
        kinds |= SL_RUN_BASE64;
    if ((acc & C_B32) && !(acc & C_LOW)) {
        bool ok = true;
        for (size_t i = s; i < e && ok; i++)
            ok = (cls[(unsigned char)p[i]] & C_B32) != 0;
        if (ok)
            kinds |= SL_RUN_BASE32;
    }
    if (!(acc & ~(unsigned)(C_HEX | C_DIG | C_LOW | C_UP | C_B64 | C_B32 | C_DELIM))) {
        bool ok = (e - s) % 2 == 0 && pe == e;
        for (size_t i = s; i < e && ok; i++)
            ok = (cls[(unsigned char)p[i]] & C_HEX) != 0;
        if (ok)
            kinds |= SL_RUN_HEX;
    }
    if (kinds)
        push_run(ti, s, pe - s, kinds);
}

static bool any_high(const unsigned char *p, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= p[i];
    return (acc & 0x8080808080808080ull) != 0;
}

/* Delimited hex inside [s, e): HH D HH D HH ... (one delimiter), >= 8 pairs. */
static void hexd_runs(sl_textinfo_t *ti, const unsigned char *u, size_t s, size_t e)
{
    size_t i = s;
    while (i + 2 <= e) {
        if (!(cls[u[i]] & C_HEX) || !(cls[u[i + 1]] & C_HEX)) {
            i++;
            continue;
        }
        size_t st = i, pairs = 1;
        unsigned char d = i + 2 < e ? u[i + 2] : 0;
        size_t k = i + 2;
        if ((cls[d] & C_DELIM) && !(cls[d] & C_HEX)) {
            while (k + 3 <= e && u[k] == d && (cls[u[k + 1]] & C_HEX) && (cls[u[k + 2]] & C_HEX)) {
                pairs++;
                k += 3;
            }
        }
        if (pairs >= 8) {
            push_run(ti, st, k - st, SL_RUN_HEXD);
            i = k;
        } else {
            i = st + 1;
        }
    }
}

void sl_analyze(const char *p, size_t n, size_t min_run, sl_textinfo_t *ti)
{
    const unsigned char *u = (const unsigned char *)p;
    ti->n_runs = 0;
    ti->has_high = any_high(u, n);
    ti->has_amp = n && memchr(p, '&', n) != NULL;
    ti->has_bslash = n && memchr(p, '\\', n) != NULL;
    ti->has_pct = false;
    for (const char *q = p, *end = p + n; q < end && (q = memchr(q, '%', (size_t)(end - q))); q++)
        if (q + 2 < end && (cls[(unsigned char)q[1]] & C_HEX) &&
            (cls[(unsigned char)q[2]] & C_HEX)) {
            ti->has_pct = true;
            break;
        }
    if (min_run < 2)
        min_run = 2;
    /* Long base64-alphabet runs by skip search: a run of >= min_run bytes
     * must contain the byte min_run - 1 ahead, so prose is mostly probed
     * once per word. Invariant: i == 0 or u[i - 1] ends a run. */
    size_t i = 0;
    while (i + min_run <= n) {
        size_t probe = i + min_run - 1;
        if (!(cls[u[probe]] & C_B64)) {
            i = probe + 1;
            continue;
        }
        size_t s = probe, e = probe + 1;
        while (s > i && (cls[u[s - 1]] & C_B64))
            s--;
        while (e < n && (cls[u[e]] & C_B64))
            e++;
        if (e - s >= min_run) {
            unsigned acc = 0;
            for (size_t k = s; k < e; k++)
                acc |= cls[u[k]];
            end_b64_run(ti, p, n, s, e, acc, min_run);
        }
        i = e + 1;
    }
    /* Delimited hex: runs of hex digits and delimiters of >= 23 bytes. */
    const size_t hmin = 23;
    i = 0;
    while (i + hmin <= n) {
        size_t probe = i + hmin - 1;
        unsigned k = cls[u[probe]];
        if (!(k & (C_HEX | C_DELIM))) {
            i = probe + 1;
            continue;
        }
        size_t s = probe, e = probe + 1;
        while (s > i && (cls[u[s - 1]] & (C_HEX | C_DELIM)))
            s--;
        while (e < n && (cls[u[e]] & (C_HEX | C_DELIM)))
            e++;
        if (e - s >= hmin)
            hexd_runs(ti, u, s, e);
        i = e + 1;
    }
}

void sl_textinfo_free(sl_textinfo_t *ti)
{
    free(ti->runs);
    ti->runs = NULL;
    ti->n_runs = ti->cap_runs = 0;
}

/* Is the leet character at p[k] next to an ASCII letter (a word like
 * "1gn0r3" or "4ll", not a number like "2024" or "$10")? */
static bool leet_in_word(const char *p, size_t n, size_t k)
{
    return (k > 0 && (cls[(unsigned char)p[k - 1]] & (C_LOW | C_UP))) ||
           (k + 1 < n && (cls[(unsigned char)p[k + 1]] & (C_LOW | C_UP)));
}

bool sl_leet(const char *p, size_t n, char *out)
{
    bool changed = false;
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const uint64_t low7 = 0x7f7f7f7f7f7f7f7full;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        /* Copy 8 bytes at once when none is a digit, '@' or '$'. */
        uint64_t w;
        memcpy(&w, p + i, 8);
        uint64_t h = w & low7;
        uint64_t digit = ((h + 0x50 * ones) & ~(h + 0x46 * ones)) & ~w & highs;
        uint64_t at = w ^ (0x40 * ones), dol = w ^ (0x24 * ones);
        uint64_t z = (~(((at & low7) + low7) | at) | ~(((dol & low7) + low7) | dol)) & highs;
        if (!(digit | z)) {
            memcpy(out + i, &w, 8);
            continue;
        }
        for (size_t k = i; k < i + 8; k++) {
            unsigned char c = (unsigned char)p[k], l = leet_tab[c];
            out[k] = (char)l;
            if (c != l && !changed)
                changed = leet_in_word(p, n, k);
        }
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i], l = leet_tab[c];
        out[i] = (char)l;
        if (c != l && !changed)
            changed = leet_in_word(p, n, i);
    }
    return changed;
}

/* Decode one UTF-8 sequence at p[i]; *len gets its length. Returns the code
 * point or UINT32_MAX for an invalid byte (len 1). */
static uint32_t utf8_at(const unsigned char *p, size_t n, size_t i, size_t *len)
{
    unsigned char c = p[i];
    uint32_t cp;
    size_t l;
    if (c < 0x80) {
        *len = 1;
        return c;
    } else if (c >= 0xC2 && c < 0xE0) {
        cp = c & 0x1F, l = 2;
    } else if (c >= 0xE0 && c < 0xF0) {
        cp = c & 0x0F, l = 3;
    } else if (c >= 0xF0 && c < 0xF5) {
        cp = c & 0x07, l = 4;
    } else {
        *len = 1;
        return UINT32_MAX;
    }
    if (i + l > n) {
        *len = 1;
        return UINT32_MAX;
    }
    for (size_t k = 1; k < l; k++) {
        if ((p[i + k] & 0xC0) != 0x80) {
            *len = 1;
            return UINT32_MAX;
        }
        cp = cp << 6 | (p[i + k] & 0x3F);
    }
    *len = l;
    return cp;
}

static bool is_invisible(uint32_t cp)
{
    return cp == 0xAD || cp == 0x34F || cp == 0x61C || cp == 0x115F || cp == 0x1160 ||
           cp == 0x17B4 || cp == 0x17B5 || (cp >= 0x180B && cp <= 0x180F) ||
           (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
           (cp >= 0x2060 && cp <= 0x206F) || cp == 0x3164 || (cp >= 0xFE00 && cp <= 0xFE0F) ||
           cp == 0xFEFF || cp == 0xFFA0 || (cp >= 0x1D173 && cp <= 0x1D17A) ||
           (cp >= 0xE0000 && cp <= 0xE007F) || (cp >= 0xE0100 && cp <= 0xE01EF);
}

static bool is_uspace(uint32_t cp)
{
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Cyrillic and Greek letters that look like ASCII ones (case kept). */
static const struct {
    uint16_t cp;
    char a;
} confusables[] = {
    {0x0391, 'A'}, {0x0392, 'B'}, {0x0395, 'E'}, {0x0396, 'Z'}, {0x0397, 'H'}, {0x0399, 'I'},
    {0x039A, 'K'}, {0x039C, 'M'}, {0x039D, 'N'}, {0x039F, 'O'}, {0x03A1, 'P'}, {0x03A4, 'T'},
    {0x03A5, 'Y'}, {0x03A7, 'X'}, {0x03B1, 'a'}, {0x03B5, 'e'}, {0x03B9, 'i'}, {0x03BA, 'k'},
    {0x03BD, 'v'}, {0x03BF, 'o'}, {0x03C1, 'p'}, {0x03C4, 't'}, {0x03C5, 'u'}, {0x0405, 'S'},
    {0x0406, 'I'}, {0x0408, 'J'}, {0x0410, 'A'}, {0x0412, 'B'}, {0x0415, 'E'}, {0x041A, 'K'},
    {0x041C, 'M'}, {0x041D, 'H'}, {0x041E, 'O'}, {0x0420, 'P'}, {0x0421, 'C'}, {0x0422, 'T'},
    {0x0423, 'Y'}, {0x0425, 'X'}, {0x0430, 'a'}, {0x0435, 'e'}, {0x043E, 'o'}, {0x0440, 'p'},
    {0x0441, 'c'}, {0x0443, 'y'}, {0x0445, 'x'}, {0x0455, 's'}, {0x0456, 'i'}, {0x0458, 'j'},
    {0x04BB, 'h'}, {0x04CF, 'l'}, {0x0501, 'd'}, {0x051B, 'q'}, {0x051D, 'w'}, {0x0131, 'i'},
};

static char confusable(uint32_t cp)
{
    if (cp < 0x131 || cp > 0x51D)
        return 0;
    for (size_t i = 0; i < sizeof confusables / sizeof confusables[0]; i++)
        if (confusables[i].cp == cp)
            return confusables[i].a;
    return 0;
}

/* Compatibility forms that NFKC maps to one ASCII character; 0 if none. */
static char compat_ascii(uint32_t cp)
{
    if (cp >= 0xFF01 && cp <= 0xFF5E)
        return (char)(cp - 0xFF01 + 0x21);
    if (cp >= 0x1D400 && cp <= 0x1D6A3) {
        unsigned k = (cp - 0x1D400) % 52;
        return (char)(k < 26 ? 'A' + k : 'a' + k - 26);
    }
    if (cp >= 0x1D7CE && cp <= 0x1D7FF)
        return (char)('0' + (cp - 0x1D7CE) % 10);
    if (cp >= 0x24B6 && cp <= 0x24CF)
        return (char)('A' + cp - 0x24B6);
    if (cp >= 0x24D0 && cp <= 0x24E9)
        return (char)('a' + cp - 0x24D0);
    if (cp >= 0x2070 && cp <= 0x2079 && cp != 0x2071 && cp != 0x2072 && cp != 0x2073)
        return (char)('0' + cp - 0x2070);
    return 0;
}

static uint32_t lower_cp(uint32_t cp)
{
    if ((cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) || (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) ||
        (cp >= 0x410 && cp <= 0x42F))
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 0x50;
    if (cp >= 0x100 && cp <= 0x17F && !(cp & 1) && cp != 0x130 && cp != 0x138)
        return cp + 1;
    return cp;
}

static size_t put_cp(char *o, uint32_t cp)
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
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static inline bool ascii_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t sl_fold(const char *p, size_t n, unsigned flags, char *out, uint32_t *map, sl_buf_t *tags,
               size_t *tag_lo, size_t *tag_hi)
{
    const unsigned char *u = (const unsigned char *)p;
    bool fcase = flags & SL_FOLD_CASE, fws = flags & SL_FOLD_WS;
    size_t o = 0;
    if (fcase && fws && !any_high(u, n)) {
        /* The hot path (ASCII prose): branch-free lowercase and collapse;
         * with a map (streams) each copied byte records its input offset. */
        unsigned in_ws = 0;
        size_t i = 0;
        const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
        for (; i + 8 <= n; i += 8) {
            /* Eight bytes at once unless they hold a control character or
             * a space next to whitespace (then the byte loop below). */
            uint64_t w;
            memcpy(&w, u + i, 8);
            uint64_t ctrl = ~(w + 0x60 * ones) & highs; /* bytes < 0x20 (all < 0x80 here) */
            uint64_t eq = w ^ (0x20 * ones);
            uint64_t sp = ~(((eq & 0x7f7f7f7f7f7f7f7full) + 0x7f7f7f7f7f7f7f7full) | eq) & highs;
            if (!ctrl && !(sp & (sp << 8)) && !(in_ws && (sp & 0x80))) {
                uint64_t ge_a = w + 0x3f * ones, gt_z = w + 0x25 * ones;
                w |= ((ge_a & ~gt_z) & highs) >> 2;
                memcpy(out + o, &w, 8);
                if (map)
                    for (size_t k = 0; k < 8; k++)
                        map[o + k] = (uint32_t)(i + k);
                o += 8;
                in_ws = (sp >> 63) & 1;
                continue;
            }
            for (size_t k = i; k < i + 8; k++) {
                unsigned ws = ws_tab[u[k]];
                out[o] = (char)fold_tab[u[k]];
                if (map)
                    map[o] = (uint32_t)k;
                o += !(ws & in_ws);
                in_ws = ws;
            }
        }
        for (; i < n; i++) {
            unsigned ws = ws_tab[u[i]];
            out[o] = (char)fold_tab[u[i]];
            if (map)
                map[o] = (uint32_t)i;
            o += !(ws & in_ws);
            in_ws = ws;
        }
        if (map)
            map[o] = (uint32_t)n;
        return o;
    }
    bool in_ws = false;
    size_t i = 0;
    while (i < n) {
        /* A word: up to the next ASCII whitespace. Decide whether look-alike
         * letters in it are folded (only if it also has ASCII letters). */
        size_t we = i;
        bool has_high = false, has_ascii_alpha = false;
        while (we < n && !ascii_ws(u[we])) {
            has_high |= u[we] >= 0x80;
            has_ascii_alpha |= (cls[u[we]] & (C_LOW | C_UP)) != 0;
            we++;
        }
        if (!has_high) {
            if (we > i)
                in_ws = false;
            for (; i < we; i++) {
                if (map)
                    map[o] = (uint32_t)i;
                out[o++] = (char)(fcase ? lower_tab[u[i]] : u[i]);
            }
        }
        while (i < we) {
            size_t len;
            uint32_t cp = utf8_at(u, n, i, &len);
            uint32_t emit = cp;
            char a;
            if (cp == UINT32_MAX) {
                emit = UINT32_MAX; /* invalid byte: copied as is */
            } else if (cp >= 0xE0020 && cp <= 0xE007E) {
                if (tags) {
                    char t = (char)(cp - 0xE0000);
                    sl_buf_append(tags, &t, 1);
                    if (*tag_lo > i)
                        *tag_lo = i;
                    if (*tag_hi < i + len)
                        *tag_hi = i + len;
                }
                i += len;
                continue;
            } else if (is_invisible(cp)) {
                i += len;
                continue;
            } else if (is_uspace(cp)) {
                emit = ' ';
            } else if ((a = compat_ascii(cp)) != 0) {
                emit = (unsigned char)a;
            } else if (has_ascii_alpha && (a = confusable(cp)) != 0) {
                emit = (unsigned char)a;
            }
            if (emit == ' ' && fws) {
                if (!in_ws) {
                    if (map)
                        map[o] = (uint32_t)i;
                    out[o++] = ' ';
                }
                in_ws = true;
                i += len;
                continue;
            }
            in_ws = false;
            size_t o0 = o;
            if (emit == UINT32_MAX) {
                out[o++] = (char)u[i];
            } else {
                if (fcase)
                    emit = emit < 0x80 ? lower_tab[emit] : lower_cp(emit);
                o += put_cp(out + o, emit);
            }
            if (map)
                for (size_t m = o0; m < o; m++)
                    map[m] = (uint32_t)i;
            i += len;
        }
        /* The whitespace after the word. */
        while (i < n && ascii_ws(u[i])) {
            if (!fws || !in_ws) {
                if (map)
                    map[o] = (uint32_t)i;
                out[o++] = fws ? ' ' : (char)u[i];
            }
            in_ws = true;
            i++;
        }
        if (!fws)
            in_ws = false;
    }
    if (map)
        map[o] = (uint32_t)n;
    return o;
}
