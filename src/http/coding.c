/* Content codings: Content-Encoding parsing and a streaming, budgeted
 * decoder over zlib, brotli and zstd. */
#include "http/coding.h"

#include <stdlib.h>
#include <string.h>

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* RFC 8878 section 3.1.1.1.2: HTTP decoders need not accept windows over
 * 8 MiB; larger ones are a memory lever for whoever writes the body. */
#define ZSTD_WINDOW_LOG_MAX 23
#define ZSTD_BLOCK_MAX (128u * 1024u)
#define ZSTD_MAGIC 0xFD2FB528u
#define ZSTD_SKIP_MAGIC 0x184D2A50u /* low 4 bits free */

/* ---- Content-Encoding -------------------------------------------------- */

static const struct {
    const char *name;
    sl_coding_t coding; /* 0: identity */
} known[] = {
    {"gzip", SL_CODING_GZIP},
    {"x-gzip", SL_CODING_GZIP},
    {"deflate", SL_CODING_DEFLATE},
    {"br", SL_CODING_BR},
    {"zstd", SL_CODING_ZSTD},
    {"identity", 0},
    {"none", 0},
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

int sl_coding_parse(sl_view_t value, sl_coding_list_t *out, sl_view_t *bad, const char **err)
{
    const char *p = value.p, *end = value.p + value.n;
    while (p < end) {
        while (p < end && (is_ows(*p) || *p == ','))
            p++;
        const char *tok = p;
        while (p < end && *p != ',' && !is_ows(*p))
            p++;
        sl_view_t t = sl_view(tok, (size_t)(p - tok));
        while (p < end && is_ows(*p))
            p++;
        if (p < end && *p != ',') {
            if (bad)
                *bad = t;
            *err = "malformed Content-Encoding (codings are separated by commas)";
            return -1;
        }
        if (t.n == 0)
            continue;
        size_t k = 0;
        while (k < sizeof known / sizeof *known && !sl_view_ieq(t, known[k].name))
            k++;
        if (k == sizeof known / sizeof *known) {
            if (bad)
                *bad = t;
            *err = "unknown content coding";
            return -1;
        }
        if (known[k].coding == 0)
            continue;
        if (out->n == SL_CODING_MAX_LAYERS) {
            if (bad)
                *bad = t;
            *err = "too many content codings stacked on one body";
            return -1;
        }
        out->v[out->n++] = known[k].coding;
    }
    return 0;
}

const char *sl_coding_name(sl_coding_t c)
{
    switch (c) {
    case SL_CODING_GZIP:
        return "gzip";
    case SL_CODING_DEFLATE:
        return "deflate";
    case SL_CODING_BR:
        return "br";
    case SL_CODING_ZSTD:
        return "zstd";
    }
    return "?";
}

/* ---- decoder ----------------------------------------------------------- */

/* Where a zstd layer is in its framing (see RFC 8878 section 3.1). */
typedef enum zstage {
    ZS_MAGIC = 0, /* between frames: 4 bytes of magic number */
    ZS_FHD,       /* frame header descriptor */
    ZS_HEADER,    /* rest of the frame header */
    ZS_BLOCK_HDR, /* 3-byte block header */
    ZS_BLOCK,     /* block content */
    ZS_CHECKSUM,  /* 4-byte content checksum after the last block */
    ZS_SKIP_SIZE, /* skippable frame: its 4-byte size */
    ZS_SKIP,      /* skippable frame content: dropped */
} zstage_t;

/* One coding being undone. */
typedef struct layer {
    sl_coding_t kind;
    bool started; /* any input seen */
    bool ended;   /* the compressed stream ended (gzip: the last member so far) */
    z_stream z;
    bool z_init;
    unsigned char z_hdr[2]; /* deflate: first bytes, until zlib-or-raw is decided */
    size_t z_hdr_n;
    BrotliDecoderState *br;
    ZSTD_DCtx *zs;
    zstage_t zstage;
    unsigned char *gate; /* zstd: the unit being gathered (at most one block) */
    size_t gate_n, gate_need;
    bool zlast;    /* the block being gathered is the frame's last */
    bool zsum;     /* the current frame ends in a checksum */
    uint64_t skip; /* bytes of a skippable frame still to drop */
    uint64_t out_total;
    unsigned char out[SL_CODING_CHUNK];
} layer_t;

struct sl_decoder {
    layer_t *L; /* L[0] undoes the coding applied last (it sees the body) */
    size_t n;
    sl_coding_limits_t lim;
    uint64_t raw_pos; /* body bytes consumed by L[0] */
    uint64_t settled; /* body bytes whose decoded bytes all reached the sink */
    uint64_t total_out;
    sl_dec_status_t st;
    const char *err;
    sl_coding_sink_fn sink;
    void *arg;
};

static sl_dec_status_t fail(sl_decoder_t *d, sl_dec_status_t st, const char *err)
{
    if (d->st == SL_DEC_OK) {
        d->st = st;
        d->err = err;
    }
    return d->st;
}

static const char *bad_msg(sl_coding_t c)
{
    switch (c) {
    case SL_CODING_GZIP:
        return "gzip: invalid compressed data";
    case SL_CODING_DEFLATE:
        return "deflate: invalid compressed data";
    case SL_CODING_BR:
        return "br: invalid compressed data";
    case SL_CODING_ZSTD:
        return "zstd: invalid compressed data";
    }
    return "invalid compressed data";
}

static const char *truncated_msg(sl_coding_t c)
{
    switch (c) {
    case SL_CODING_GZIP:
        return "gzip: the body ended inside the compressed stream";
    case SL_CODING_DEFLATE:
        return "deflate: the body ended inside the compressed stream";
    case SL_CODING_BR:
        return "br: the body ended inside the compressed stream";
    case SL_CODING_ZSTD:
        return "zstd: the body ended inside the compressed stream";
    }
    return "the body ended inside a compressed stream";
}

static sl_dec_status_t push(sl_decoder_t *d, size_t i, const unsigned char *p, size_t n);

/* Account for and pass on what layer i decoded. */
static sl_dec_status_t deliver(sl_decoder_t *d, size_t i, const unsigned char *p, size_t n)
{
    layer_t *l = &d->L[i];
    if (n == 0)
        return d->st;
    if (l->out_total + n > d->lim.max_out)
        return fail(d, SL_DEC_LIMIT, "decoded size over the inspection limit");
    l->out_total += n;
    if (d->lim.max_ratio && l->out_total > d->lim.ratio_free &&
        l->out_total / d->lim.max_ratio > d->raw_pos)
        return fail(d, SL_DEC_RATIO, "compression ratio over the limit (decompression bomb)");
    if (i + 1 < d->n)
        return push(d, i + 1, p, n);
    d->total_out += n;
    if (d->sink(d->arg, (const char *)p, n) != 0)
        return fail(d, SL_DEC_STOPPED, "stopped by the inspection");
    return d->st;
}

/* After L[0] handed on a whole piece: if no zstd layer holds a partial unit,
 * every body byte consumed so far has been decoded all the way. */
static void settle(sl_decoder_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->L[i].gate_n > 0 || (d->L[i].kind == SL_CODING_ZSTD && d->L[i].zstage == ZS_SKIP))
            return;
    d->settled = d->raw_pos;
}

static void consumed(sl_decoder_t *d, size_t i, size_t n)
{
    if (i == 0)
        d->raw_pos += n;
}

/* gzip and deflate through zlib. */
static sl_dec_status_t push_zlib(sl_decoder_t *d, size_t i, const unsigned char *p, size_t n)
{
    layer_t *l = &d->L[i];
    if (!l->z_init) {
        int wbits = 15 + 16; /* gzip only */
        if (l->kind == SL_CODING_DEFLATE) {
            /* "deflate" means zlib (RFC 9110), but servers send raw deflate
             * too; the first two bytes tell them apart. */
            while (l->z_hdr_n < 2 && n > 0) {
                l->z_hdr[l->z_hdr_n++] = *p++;
                n--;
                consumed(d, i, 1);
            }
            if (l->z_hdr_n < 2)
                return d->st;
            unsigned cmf = l->z_hdr[0], flg = l->z_hdr[1];
            bool zlib_hdr = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
            wbits = zlib_hdr ? 15 : -15;
        }
        if (inflateInit2(&l->z, wbits) != Z_OK)
            return fail(d, SL_DEC_NOMEM, "cannot allocate a decoder");
        l->z_init = true;
        if (l->kind == SL_CODING_DEFLATE) {
            /* Replay the two bytes held back (not counted again: only the
             * outer layer counts body bytes). raw_pos is restored whatever
             * the replay gives, so "pending" never goes backwards. */
            uint64_t keep = d->raw_pos;
            if (i == 0)
                d->raw_pos = keep > 2 ? keep - 2 : 0;
            unsigned char hdr[2] = {l->z_hdr[0], l->z_hdr[1]};
            l->z_hdr_n = 0;
            sl_dec_status_t r = push_zlib(d, i, hdr, 2);
            d->raw_pos = keep;
            if (d->settled > d->raw_pos)
                d->settled = d->raw_pos;
            if (r != SL_DEC_OK)
                return d->st;
        }
    }
    l->z.next_in = (unsigned char *)p;
    l->z.avail_in = (uInt)n;
    for (;;) {
        if (l->ended) {
            if (l->z.avail_in == 0)
                return d->st;
            /* Another gzip member follows: decode it too (a decoder that
             * stopped at the first would let a second one pass unseen). */
            if (l->kind != SL_CODING_GZIP)
                return fail(d, SL_DEC_BAD, "deflate: data after the end of the stream");
            inflateReset(&l->z);
            l->ended = false;
        }
        l->z.next_out = l->out;
        l->z.avail_out = sizeof l->out;
        uInt before = l->z.avail_in;
        int r = inflate(&l->z, Z_NO_FLUSH);
        consumed(d, i, before - l->z.avail_in);
        size_t got = sizeof l->out - l->z.avail_out;
        if (r == Z_MEM_ERROR)
            return fail(d, SL_DEC_NOMEM, "cannot allocate a decoder");
        if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
            return fail(d, SL_DEC_BAD, bad_msg(l->kind));
        if (deliver(d, i, l->out, got) != SL_DEC_OK)
            return d->st;
        if (i == 0)
            settle(d);
        if (r == Z_STREAM_END) {
            l->ended = true;
            continue;
        }
        if (l->z.avail_in == 0 && l->z.avail_out != 0)
            return d->st;
        if (r == Z_BUF_ERROR && got == 0)
            return d->st; /* no progress possible without more input */
    }
}

static sl_dec_status_t push_br(sl_decoder_t *d, size_t i, const unsigned char *p, size_t n)
{
    layer_t *l = &d->L[i];
    if (l->br == NULL && (l->br = BrotliDecoderCreateInstance(NULL, NULL, NULL)) == NULL)
        return fail(d, SL_DEC_NOMEM, "cannot allocate a decoder");
    size_t avail_in = n;
    const uint8_t *in = p;
    for (;;) {
        if (l->ended) {
            if (avail_in > 0)
                return fail(d, SL_DEC_BAD, "br: data after the end of the stream");
            return d->st;
        }
        size_t avail_out = sizeof l->out;
        uint8_t *o = l->out;
        size_t before = avail_in;
        BrotliDecoderResult r =
            BrotliDecoderDecompressStream(l->br, &avail_in, &in, &avail_out, &o, NULL);
        consumed(d, i, before - avail_in);
        if (r == BROTLI_DECODER_RESULT_ERROR) {
            if (BrotliDecoderGetErrorCode(l->br) <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES &&
                BrotliDecoderGetErrorCode(l->br) >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES)
                return fail(d, SL_DEC_NOMEM, "cannot allocate a decoder");
            return fail(d, SL_DEC_BAD, bad_msg(l->kind));
        }
        if (deliver(d, i, l->out, sizeof l->out - avail_out) != SL_DEC_OK)
            return d->st;
        if (i == 0)
            settle(d);
        if (r == BROTLI_DECODER_RESULT_SUCCESS)
            l->ended = true;
        else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
            return d->st;
    }
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Run a complete unit (frame header, block, checksum) through libzstd and
 * hand on everything it decodes. */
static sl_dec_status_t zstd_unit(sl_decoder_t *d, size_t i)
{
    layer_t *l = &d->L[i];
    ZSTD_inBuffer in = {l->gate, l->gate_n, 0};
    for (;;) {
        ZSTD_outBuffer o = {l->out, sizeof l->out, 0};
        size_t r = ZSTD_decompressStream(l->zs, &o, &in);
        if (ZSTD_isError(r)) {
            if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge)
                return fail(d, SL_DEC_LIMIT, "zstd: window over 8 MiB");
            if (ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation)
                return fail(d, SL_DEC_NOMEM, "cannot allocate a decoder");
            return fail(d, SL_DEC_BAD, bad_msg(l->kind));
        }
        if (deliver(d, i, l->out, o.pos) != SL_DEC_OK)
            return d->st;
        if (in.pos == in.size && o.pos < o.size)
            break;
    }
    l->gate_n = 0;
    return d->st;
}

/* A zstd unit is complete in the gate: act on it. */
static sl_dec_status_t zstd_step(sl_decoder_t *d, size_t i)
{
    layer_t *l = &d->L[i];
    const unsigned char *g = l->gate;
    switch (l->zstage) {
    case ZS_MAGIC: {
        uint32_t m = le32(g);
        if (m == ZSTD_MAGIC) {
            l->zstage = ZS_FHD;
            l->gate_need = 5;
        } else if ((m & 0xFFFFFFF0u) == ZSTD_SKIP_MAGIC) {
            l->zstage = ZS_SKIP_SIZE;
            l->gate_need = 8;
        } else {
            return fail(d, SL_DEC_BAD, "zstd: not a zstd frame");
        }
        return d->st;
    }
    case ZS_FHD: {
        unsigned fhd = g[4];
        if (fhd & 0x08)
            return fail(d, SL_DEC_BAD, bad_msg(l->kind));
        static const size_t did_size[4] = {0, 1, 2, 4}, fcs_size[4] = {0, 2, 4, 8};
        bool single = (fhd >> 5) & 1;
        size_t fcs = fcs_size[fhd >> 6];
        if ((fhd >> 6) == 0 && single)
            fcs = 1;
        l->zsum = (fhd >> 2) & 1;
        l->gate_need = 5 + (single ? 0 : 1) + did_size[fhd & 3] + fcs;
        l->zstage = ZS_HEADER;
        return d->st;
    }
    case ZS_HEADER:
        l->zstage = ZS_BLOCK_HDR;
        l->gate_need = 3;
        return zstd_unit(d, i);
    case ZS_BLOCK_HDR: {
        uint32_t b = (uint32_t)g[0] | (uint32_t)g[1] << 8 | (uint32_t)g[2] << 16;
        unsigned type = (b >> 1) & 3;
        uint32_t size = b >> 3;
        if (type == 3 || size > ZSTD_BLOCK_MAX)
            return fail(d, SL_DEC_BAD, bad_msg(l->kind));
        l->zlast = b & 1;
        l->gate_need = 3 + (type == 1 ? 1 : size);
        l->zstage = ZS_BLOCK;
        return d->st;
    }
    case ZS_BLOCK:
        if (l->zlast) {
            l->zstage = l->zsum ? ZS_CHECKSUM : ZS_MAGIC;
            l->gate_need = 4;
            if (!l->zsum)
                l->ended = true;
        } else {
            l->zstage = ZS_BLOCK_HDR;
            l->gate_need = 3;
        }
        return zstd_unit(d, i);
    case ZS_CHECKSUM:
        l->zstage = ZS_MAGIC;
        l->gate_need = 4;
        l->ended = true;
        return zstd_unit(d, i);
    case ZS_SKIP_SIZE:
        l->skip = le32(g + 4);
        l->gate_n = 0;
        l->zstage = l->skip ? ZS_SKIP : ZS_MAGIC;
        l->gate_need = 4;
        l->ended = true;
        return d->st;
    case ZS_SKIP:
        break;
    }
    return d->st;
}

/* zstd: gather whole units before libzstd sees them, so that a block's
 * bytes count as pending until the block has been decoded. */
static sl_dec_status_t push_zstd(sl_decoder_t *d, size_t i, const unsigned char *p, size_t n)
{
    layer_t *l = &d->L[i];
    if (l->zs == NULL) {
        if ((l->zs = ZSTD_createDCtx()) == NULL || (l->gate = malloc(3 + ZSTD_BLOCK_MAX)) == NULL)
            return fail(d, SL_DEC_NOMEM, "cannot allocate a decoder");
        ZSTD_DCtx_setParameter(l->zs, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
        l->zstage = ZS_MAGIC;
        l->gate_need = 4;
    }
    while (n > 0 && d->st == SL_DEC_OK) {
        if (l->zstage == ZS_SKIP) {
            size_t k = n < l->skip ? n : (size_t)l->skip;
            l->skip -= k;
            p += k;
            n -= k;
            consumed(d, i, k);
            if (l->skip == 0)
                l->zstage = ZS_MAGIC;
            continue;
        }
        if (l->zstage == ZS_MAGIC && l->gate_n == 0)
            l->ended = false;
        size_t k = l->gate_need - l->gate_n;
        if (k > n)
            k = n;
        memcpy(l->gate + l->gate_n, p, k);
        l->gate_n += k;
        p += k;
        n -= k;
        consumed(d, i, k);
        while (d->st == SL_DEC_OK && l->gate_n == l->gate_need && l->zstage != ZS_SKIP) {
            zstage_t was = l->zstage;
            zstd_step(d, i);
            if (i == 0 && l->gate_n == 0)
                settle(d);
            if (was == l->zstage && l->gate_n == l->gate_need)
                break; /* cannot happen: every step moves on */
        }
    }
    return d->st;
}

static sl_dec_status_t push(sl_decoder_t *d, size_t i, const unsigned char *p, size_t n)
{
    layer_t *l = &d->L[i];
    if (n == 0 || d->st != SL_DEC_OK)
        return d->st;
    l->started = true;
    switch (l->kind) {
    case SL_CODING_GZIP:
    case SL_CODING_DEFLATE:
        return push_zlib(d, i, p, n);
    case SL_CODING_BR:
        return push_br(d, i, p, n);
    case SL_CODING_ZSTD:
        return push_zstd(d, i, p, n);
    }
    return fail(d, SL_DEC_BAD, "unknown content coding");
}

sl_decoder_t *sl_decoder_new(const sl_coding_list_t *codings, const sl_coding_limits_t *lim)
{
    if (codings->n == 0 || codings->n > SL_CODING_MAX_LAYERS)
        return NULL;
    sl_decoder_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    if ((d->L = calloc(codings->n, sizeof *d->L)) == NULL) {
        free(d);
        return NULL;
    }
    d->n = codings->n;
    d->lim = *lim;
    d->err = "";
    for (size_t i = 0; i < d->n; i++)
        d->L[i].kind = codings->v[d->n - 1 - i];
    return d;
}

sl_dec_status_t sl_decoder_feed(sl_decoder_t *d, const char *p, size_t n, sl_coding_sink_fn sink,
                                void *arg)
{
    d->sink = sink;
    d->arg = arg;
    push(d, 0, (const unsigned char *)p, n);
    if (d->st == SL_DEC_OK)
        settle(d);
    return d->st;
}

sl_dec_status_t sl_decoder_finish(sl_decoder_t *d, sl_coding_sink_fn sink, void *arg)
{
    d->sink = sink;
    d->arg = arg;
    for (size_t i = 0; i < d->n && d->st == SL_DEC_OK; i++) {
        layer_t *l = &d->L[i];
        /* An inner layer that saw nothing while an outer one decoded to
         * something is impossible; one that saw nothing at all is an empty
         * body. */
        if (!l->started)
            continue;
        bool clean = l->ended && l->gate_n == 0 && l->z_hdr_n == 0 &&
                     !(l->kind == SL_CODING_ZSTD && l->zstage != ZS_MAGIC);
        if (!clean)
            fail(d, SL_DEC_TRUNCATED, truncated_msg(l->kind));
    }
    if (d->st == SL_DEC_OK)
        d->settled = d->raw_pos;
    return d->st;
}

uint64_t sl_decoder_pending(const sl_decoder_t *d)
{
    return d->raw_pos - d->settled;
}

uint64_t sl_decoder_total_out(const sl_decoder_t *d)
{
    return d->total_out;
}

const char *sl_decoder_error(const sl_decoder_t *d)
{
    return d->err;
}

sl_dec_status_t sl_decoder_status(const sl_decoder_t *d)
{
    return d->st;
}

void sl_decoder_free(sl_decoder_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++) {
        layer_t *l = &d->L[i];
        if (l->z_init)
            inflateEnd(&l->z);
        if (l->br)
            BrotliDecoderDestroyInstance(l->br);
        ZSTD_freeDCtx(l->zs);
        free(l->gate);
    }
    free(d->L);
    free(d);
}
