/* Fuzz the decoders, the analysis pass, folding and the validators: no
 * crash, no out-of-bounds, offset maps stay inside their input, and the
 * ASCII fast path of sl_fold agrees with the mapped (slow) path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/decode.h"
#include "inspect/normalize.h"
#include "inspect/validators.h"

static void check_map(const uint32_t *map, size_t out_n, size_t in_n)
{
    for (size_t i = 0; i <= out_n; i++) {
        if (map[i] > in_n)
            abort();
        if (i > 0 && map[i] < map[i - 1])
            abort();
    }
    if (map[out_n] != in_n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    char *out = malloc(size + 1), *out2 = malloc(size + 1);
    uint32_t *map = malloc((size + 1) * sizeof *map);
    unsigned char *bin = malloc(size + 1);
    size_t n;

    n = sl_decode_percent(p, size, out, map);
    if (n > size)
        abort();
    check_map(map, n, size);
    n = sl_decode_html(p, size, out, map);
    if (n > size)
        abort();
    check_map(map, n, size);
    n = sl_decode_escapes(p, size, out, map);
    if (n > size)
        abort();
    check_map(map, n, size);
    n = sl_decode_base64(p, size, bin, size);
    if (n != SIZE_MAX && n > size)
        abort();
    n = sl_decode_base32(p, size, bin, size);
    if (n != SIZE_MAX && n > size)
        abort();
    n = sl_decode_hex(p, size, bin, size);
    if (n != SIZE_MAX && n > size)
        abort();
    (void)sl_mostly_printable(data, size);

    sl_textinfo_t ti = {0};
    sl_analyze(p, size, 16, &ti);
    for (size_t i = 0; i < ti.n_runs; i++)
        if ((size_t)ti.runs[i].start + ti.runs[i].len > size || ti.runs[i].kinds == 0)
            abort();
    sl_textinfo_free(&ti);

    for (unsigned flags = 0; flags < 4; flags++) {
        sl_buf_t tags = {0};
        size_t lo = SIZE_MAX, hi = 0;
        size_t a = sl_fold(p, size, flags, out, NULL, &tags, &lo, &hi);
        size_t b = sl_fold(p, size, flags, out2, map, NULL, NULL, NULL);
        if (a > size || a != b || memcmp(out, out2, a) != 0)
            abort();
        check_map(map, b, size);
        if (tags.n && (lo > hi || hi > size))
            abort();
        sl_buf_free(&tags);
    }
    (void)sl_leet(p, size, out);

    for (int v = 1; v < SL_VAL__COUNT; v++)
        (void)sl_validate((sl_validator_t)v, p, size);
    (void)sl_entropy(p, size);

    free(out);
    free(out2);
    free(map);
    free(bin);
    return 0;
}
