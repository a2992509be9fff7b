/* Validators run on candidate matches (see validators.h). */
#include "inspect/validators.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

#include "inspect/bip39_words.h"
#include "inspect/decode.h"

static const char *const val_names[SL_VAL__COUNT] = {
    [SL_VAL_NONE] = "none",
    [SL_VAL_LUHN] = "luhn",
    [SL_VAL_IBAN] = "iban",
    [SL_VAL_BIP39] = "bip39",
    [SL_VAL_BASE58CHECK] = "base58check",
    [SL_VAL_CRC32_BASE62] = "crc32-base62",
    [SL_VAL_JWT] = "jwt",
    [SL_VAL_SSN] = "ssn",
    [SL_VAL_PEM] = "pem",
    [SL_VAL_ENTROPY] = "entropy",
};

int sl_validator_parse(const char *name)
{
    for (int i = 1; i < SL_VAL__COUNT; i++)
        if (strcmp(name, val_names[i]) == 0)
            return i;
    return -1;
}

const char *sl_validator_name(sl_validator_t v)
{
    return (unsigned)v < SL_VAL__COUNT ? val_names[v] : "?";
}

double sl_entropy(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned cnt[256] = {0};
    for (size_t i = 0; i < n; i++)
        cnt[(unsigned char)p[i]]++;
    double h = 0;
    for (int i = 0; i < 256; i++) {
        if (cnt[i] == 0)
            continue;
        double q = (double)cnt[i] / (double)n;
        h -= q * log2(q);
    }
    return h;
}

bool sl_val_luhn(const char *p, size_t n)
{
    /* Digits only; separators and any context around the number are ignored,
     * but the digit count must be a card's. */
    unsigned char d[32];
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= '0' && p[i] <= '9') {
            if (nd == sizeof d)
                return false;
            d[nd++] = (unsigned char)(p[i] - '0');
        }
    }
    if (nd < 12 || nd > 19)
        return false;
    unsigned sum = 0;
    for (size_t i = 0; i < nd; i++) {
        unsigned v = d[nd - 1 - i];
        if (i & 1) {
            v *= 2;
            if (v > 9)
                v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

static const struct {
    char cc[3];
    unsigned char len;
} iban_lens[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
    {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27},
    {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
    {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24}, {"PL", 28},
    {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
    {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28},
    {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
};

static unsigned iban_len(const char *cc)
{
    for (size_t i = 0; i < sizeof iban_lens / sizeof iban_lens[0]; i++)
        if (iban_lens[i].cc[0] == cc[0] && iban_lens[i].cc[1] == cc[1])
            return iban_lens[i].len;
    return 0;
}

static bool iban_at(const char *p, size_t n)
{
    /* Collect alphanumerics (spaces and dashes are print formatting), uppercase. */
    char s[40];
    size_t ns = 0;
    for (size_t i = 0; i < n && ns < sizeof s; i++) {
        unsigned char c = (unsigned char)p[i];
        if (isalnum(c))
            s[ns++] = (char)toupper(c);
        else if (c != ' ' && c != '-')
            break;
    }
    if (ns < 15 || !isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]) ||
        !isdigit((unsigned char)s[2]) || !isdigit((unsigned char)s[3]))
        return false;
    unsigned len = iban_len(s);
    if (len == 0 || ns < len)
        return false;
    unsigned rem = 0;
    for (unsigned k = 0; k < len; k++) {
        char c = s[(k + 4) % len];
        if (isdigit((unsigned char)c))
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
    }
    return rem == 1;
}

bool sl_val_iban(const char *p, size_t n)
{
    /* The IBAN may follow a label inside the match: try each letter pair start. */
    for (size_t i = 0; i + 15 <= n; i++)
        if (isalpha((unsigned char)p[i]) && (i == 0 || !isalnum((unsigned char)p[i - 1])) &&
            iban_at(p + i, n - i))
            return true;
    return false;
}

/* BIP-39 English words are unique in their first four letters: an
 * open-addressing table keyed by that prefix finds a candidate in one probe
 * or two, then one comparison confirms the whole word. */
#define BIP39_SLOTS 4096
#define BIP39_MIN_WORDS 12
#define BIP39_MAX_WORDS 24
static uint16_t bip39_slot[BIP39_SLOTS];     /* word index + 1, 0 = empty */
static uint32_t bip39_slot_key[BIP39_SLOTS]; /* bip39_key() of that slot's word */
static uint8_t bip39_slot_len[BIP39_SLOTS];  /* its length */

static uint32_t bip39_key(const char *w, size_t n)
{
    uint32_t k = 0;
    for (size_t i = 0; i < 4; i++)
        k = k << 8 | (i < n ? (unsigned char)w[i] : 0);
    return k;
}

static size_t bip39_hash(uint32_t k)
{
    return (size_t)((k * 2654435761u) >> 20) & (BIP39_SLOTS - 1);
}

__attribute__((constructor)) static void bip39_init(void)
{
    for (int i = 0; i < SL_BIP39_NWORDS; i++) {
        const char *w = sl_bip39_words[i];
        uint32_t k = bip39_key(w, strlen(w));
        size_t h = bip39_hash(k);
        while (bip39_slot[h])
            h = (h + 1) & (BIP39_SLOTS - 1);
        bip39_slot[h] = (uint16_t)(i + 1);
        bip39_slot_key[h] = k;
        bip39_slot_len[h] = (uint8_t)strlen(w);
    }
}

static int bip39_index(const char *w, size_t n)
{
    if (n < 3 || n > 8)
        return -1;
    uint32_t k = bip39_key(w, n);
    for (size_t h = bip39_hash(k); bip39_slot[h]; h = (h + 1) & (BIP39_SLOTS - 1)) {
        if (bip39_slot_key[h] != k)
            continue;
        return bip39_slot_len[h] == n && memcmp(sl_bip39_words[bip39_slot[h] - 1], w, n) == 0
                   ? bip39_slot[h] - 1
                   : -1;
    }
    return -1;
}

static bool bip39_check(const int *idx, unsigned L)
{
    /* L words carry 11*L bits: entropy then L/3 checksum bits of SHA-256(entropy). */
    unsigned char bits[33] = {0};
    unsigned total = 11 * L;
    for (unsigned i = 0; i < L; i++)
        for (unsigned b = 0; b < 11; b++)
            if (idx[i] & (1 << (10 - b))) {
                unsigned pos = i * 11 + b;
                bits[pos / 8] |= (unsigned char)(0x80 >> (pos % 8));
            }
    unsigned cs = L / 3, ent = total - cs;
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256(bits, ent / 8, h);
    for (unsigned b = 0; b < cs; b++) {
        unsigned pos = ent + b;
        int want = (bits[pos / 8] >> (7 - pos % 8)) & 1;
        int got = (h[b / 8] >> (7 - b % 8)) & 1;
        if (want != got)
            return false;
    }
    return true;
}

bool sl_val_bip39(const char *p, size_t n)
{
    /* Split into lowercase words; a phrase is a window of 12..24 consecutive
     * list words with a valid checksum. */
    int idx[64];
    unsigned nw = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && !isalpha((unsigned char)p[i]))
            i++;
        size_t s = i;
        char w[16];
        while (i < n && isalpha((unsigned char)p[i])) {
            if (i - s < sizeof w)
                w[i - s] = (char)tolower((unsigned char)p[i]);
            i++;
        }
        if (i == s)
            break;
        int k = (i - s < sizeof w) ? bip39_index(w, i - s) : -1;
        if (k < 0) {
            nw = 0; /* the run of list words is broken */
            continue;
        }
        if (nw == 64)
            memmove(idx, idx + 1, sizeof idx - sizeof idx[0]), nw--;
        idx[nw++] = k;
        for (unsigned L = 12; L <= 24 && L <= nw; L += 3)
            if (bip39_check(idx + nw - L, L))
                return true;
    }
    return false;
}

static inline bool ascii_alpha(unsigned char c)
{
    return (unsigned char)((c | 0x20) - 'a') < 26;
}

/* The word before offset *e (separators are runs of non-letters): sets *s
 * and *e to its bounds; false at the start of the text. */
static bool prev_word(const char *p, size_t *s, size_t *e)
{
    while (*e > 0 && !ascii_alpha((unsigned char)p[*e - 1]))
        (*e)--;
    *s = *e;
    while (*s > 0 && ascii_alpha((unsigned char)p[*s - 1]))
        (*s)--;
    return *s < *e;
}

bool sl_val_bip39_tail(const char *p, size_t n)
{
    /* The engine calls this at every word end of a long lowercase run (prose
     * gives many). Most runs hold a 1-, 2- or 9+-letter word among their last
     * twelve: counting word lengths first rejects them without a lookup. */
    size_t s, e = n;
    unsigned shaped = 0;
    while (shaped < BIP39_MIN_WORDS && prev_word(p, &s, &e) && e - s >= 3 && e - s <= 8) {
        shaped++;
        e = s;
    }
    if (shaped < BIP39_MIN_WORDS)
        return false;
    /* Walk words backwards from the end while they are list words. */
    int idx[BIP39_MAX_WORDS];
    unsigned nw = 0;
    e = n;
    while (nw < BIP39_MAX_WORDS && prev_word(p, &s, &e)) {
        char w[9];
        size_t len = e - s;
        if (len < 3 || len > 8)
            break;
        for (size_t i = 0; i < len; i++)
            w[i] = (char)tolower((unsigned char)p[s + i]);
        int k = bip39_index(w, len);
        if (k < 0)
            break;
        idx[BIP39_MAX_WORDS - 1 - nw++] = k;
        e = s;
    }
    for (unsigned L = BIP39_MIN_WORDS; L <= nw; L += 3)
        if (bip39_check(idx + BIP39_MAX_WORDS - L, L))
            return true;
    return false;
}

static const char b58_alpha[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static bool b58check_run(const char *p, size_t n)
{
    /* Big-number base conversion; 120 chars bound the output to < 90 bytes. */
    unsigned char out[96];
    size_t olen = 0;
    size_t zeros = 0;
    while (zeros < n && p[zeros] == '1')
        zeros++;
    memset(out, 0, sizeof out);
    for (size_t i = 0; i < n; i++) {
        const char *q = memchr(b58_alpha, p[i], 58);
        if (!q)
            return false;
        unsigned carry = (unsigned)(q - b58_alpha);
        for (size_t j = 0; j < olen; j++) {
            carry += (unsigned)out[sizeof out - 1 - j] * 58;
            out[sizeof out - 1 - j] = (unsigned char)carry;
            carry >>= 8;
        }
        while (carry) {
            if (olen == sizeof out)
                return false;
            out[sizeof out - 1 - olen++] = (unsigned char)carry;
            carry >>= 8;
        }
    }
    size_t total = zeros + olen;
    if (total < 5 || total > sizeof out)
        return false;
    unsigned char buf[96];
    memset(buf, 0, zeros);
    memcpy(buf + zeros, out + sizeof out - olen, olen);
    unsigned char h1[SHA256_DIGEST_LENGTH], h2[SHA256_DIGEST_LENGTH];
    SHA256(buf, total - 4, h1);
    SHA256(h1, sizeof h1, h2);
    return memcmp(h2, buf + total - 4, 4) == 0;
}

bool sl_val_base58check(const char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        while (i < n && !memchr(b58_alpha, p[i], 58))
            i++;
        size_t s = i;
        while (i < n && memchr(b58_alpha, p[i], 58))
            i++;
        if (i - s >= 20 && i - s <= 120 && b58check_run(p + s, i - s))
            return true;
    }
    return false;
}

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static bool crc_matches(const char *rnd, size_t n, const char *sum6, const char *alpha)
{
    uint32_t c = crc32_ieee((const unsigned char *)rnd, n);
    char enc[6];
    for (int i = 5; i >= 0; i--) {
        enc[i] = alpha[c % 62];
        c /= 62;
    }
    return memcmp(enc, sum6, 6) == 0;
}

bool sl_val_crc32_base62(const char *p, size_t n)
{
    static const char a1[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    static const char a2[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    /* Find the token: the alphanumeric run after the last '_' of the prefix. */
    const char *pat = NULL;
    for (size_t i = 0; i + 11 <= n; i++)
        if (memcmp(p + i, "github_pat_", 11) == 0) {
            pat = p + i;
            break;
        }
    if (pat) {
        /* Fine-grained PATs: github_pat_ + 22 + '_' + 59. GitHub does not
         * document a checksum we can verify here; accept the exact shape. */
        const char *q = pat + 11, *end = p + n;
        size_t a = 0, b = 0;
        while (q + a < end && isalnum((unsigned char)q[a]))
            a++;
        if (a != 22 || q + a >= end || q[a] != '_')
            return false;
        q += 23;
        while (q + b < end && isalnum((unsigned char)q[b]))
            b++;
        return b == 59;
    }
    const char *us = NULL;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '_')
            us = p + i;
    if (!us)
        return false;
    const char *body = us + 1;
    size_t bl = 0;
    while (body + bl < p + n && isalnum((unsigned char)body[bl]))
        bl++;
    if (bl != 36)
        return false;
    /* The checksum alphabet order differs between published descriptions;
     * accepting both costs a 2^-35 false-accept rate. */
    return crc_matches(body, 30, body + 30, a1) || crc_matches(body, 30, body + 30, a2);
}

static bool b64url_part(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '='))
            return false;
    }
    return true;
}

bool sl_val_jwt(const char *p, size_t n)
{
    /* Start at the header ("eyJ" is base64url of '{"'), else at the first char. */
    size_t s = 0;
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(p + i, "eyJ", 3) == 0 || memcmp(p + i, "ewo", 3) == 0) {
            s = i;
            break;
        }
    const char *d1 = memchr(p + s, '.', n - s);
    if (!d1)
        return false;
    const char *end = p + n;
    const char *d2 = memchr(d1 + 1, '.', (size_t)(end - d1 - 1));
    if (!d2)
        return false;
    size_t l3 = 0;
    while (d2 + 1 + l3 < end && (isalnum((unsigned char)d2[1 + l3]) || d2[1 + l3] == '-' ||
                                 d2[1 + l3] == '_' || d2[1 + l3] == '='))
        l3++;
    size_t hl = (size_t)(d1 - (p + s));
    if (!b64url_part(p + s, hl) || !b64url_part(d1 + 1, (size_t)(d2 - d1 - 1)) || hl > 2048)
        return false;
    (void)l3; /* unsigned JWTs ("alg":"none") have an empty signature */
    char hdr[1600];
    size_t hn = sl_decode_base64(p + s, hl, (unsigned char *)hdr, sizeof hdr - 1);
    if (hn == SIZE_MAX)
        return false;
    hdr[hn] = '\0';
    json_error_t jerr;
    json_t *j = json_loadb(hdr, hn, 0, &jerr);
    bool ok = j && json_is_object(j) && json_object_get(j, "alg") != NULL;
    json_decref(j);
    return ok;
}

bool sl_val_ssn(const char *p, size_t n)
{
    /* First 9 digits laid out as AAA-GG-SSSS (separator optional and uniform). */
    size_t i = 0;
    while (i < n && !isdigit((unsigned char)p[i]))
        i++;
    char d[9];
    size_t nd = 0;
    for (; i < n && nd < 9; i++) {
        if (isdigit((unsigned char)p[i]))
            d[nd++] = p[i];
        else if (p[i] != '-' && p[i] != ' ')
            break;
    }
    if (nd != 9 || (i < n && isdigit((unsigned char)p[i])))
        return false;
    if (memcmp(d, "000", 3) == 0 || memcmp(d, "666", 3) == 0 || d[0] == '9')
        return false;
    if (memcmp(d + 3, "00", 2) == 0 || memcmp(d + 5, "0000", 4) == 0)
        return false;
    return true;
}

static const char *find_mem(const char *h, size_t hn, const char *needle)
{
    size_t nn = strlen(needle);
    return nn <= hn ? memmem(h, hn, needle, nn) : NULL;
}

bool sl_val_pem(const char *p, size_t n)
{
    const char *b = find_mem(p, n, "-----BEGIN ");
    if (!b)
        return false;
    const char *bl = b + 11, *end = p + n;
    const char *be = find_mem(bl, (size_t)(end - bl), "-----");
    if (!be || be == bl || be - bl > 64)
        return false;
    const char *e = find_mem(be + 5, (size_t)(end - be - 5), "-----END ");
    if (!e)
        return false;
    const char *el = e + 9;
    const char *ee = find_mem(el, (size_t)(end - el), "-----");
    if (!ee || ee - el != be - bl || memcmp(bl, el, (size_t)(be - bl)) != 0)
        return false;
    /* Body: base64 lines, after optional "Key: value" headers (encrypted PEM). */
    size_t b64 = 0;
    const char *q = be + 5;
    while (q < e) {
        const char *nl = memchr(q, '\n', (size_t)(e - q));
        const char *le = nl ? nl : e;
        bool header = memchr(q, ':', (size_t)(le - q)) != NULL;
        for (const char *c = q; c < le && !header; c++) {
            unsigned char u = (unsigned char)*c;
            if (isalnum(u) || u == '+' || u == '/' || u == '=')
                b64++;
            else if (u != ' ' && u != '\t' && u != '\r' && u != '\\')
                return false;
        }
        q = nl ? nl + 1 : e;
    }
    return b64 >= 16;
}

bool sl_validate(sl_validator_t v, const char *p, size_t n)
{
    switch (v) {
    case SL_VAL_LUHN:
        return sl_val_luhn(p, n);
    case SL_VAL_IBAN:
        return sl_val_iban(p, n);
    case SL_VAL_BIP39:
        return sl_val_bip39(p, n);
    case SL_VAL_BASE58CHECK:
        return sl_val_base58check(p, n);
    case SL_VAL_CRC32_BASE62:
        return sl_val_crc32_base62(p, n);
    case SL_VAL_JWT:
        return sl_val_jwt(p, n);
    case SL_VAL_SSN:
        return sl_val_ssn(p, n);
    case SL_VAL_PEM:
        return sl_val_pem(p, n);
    default:
        return true;
    }
}
