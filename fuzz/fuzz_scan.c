/* Fuzz the whole scanner over the built-in rules plus the engine's fixtures: block scans on
 * every surface, joined values and a stream fed in input-chosen chunks. Every
 * finding must lie inside the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inspect/inspect.h"

static sl_ruleset_t *rs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *paths[] = {SLUICE_SOURCE_DIR "/tests/unit/rules-fixtures"};
    sl_ruleset_opts_t o = {.paths = paths, .n_paths = 1};
    sl_buf_t err = {0};
    rs = sl_ruleset_load(&o, &err);
    if (!rs) {
        fprintf(stderr, "fuzz_scan: %s", sl_buf_cstr(&err));
        abort();
    }
    sl_buf_free(&err);
    return 0;
}

static void check(const sl_findings_t *f, size_t from, size_t n)
{
    for (size_t i = from; i < f->n; i++)
        if (f->v[i].start > f->v[i].end || f->v[i].end > n || !f->v[i].rule_id)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    sl_findings_t f = {0};
    for (int s = 0; s < SL_SURF__COUNT; s++) {
        sl_findings_reset(&f);
        sl_inspect_scan(rs, (sl_surface_t)s, p, size, &f);
        check(&f, 0, size);
    }
    /* Split into up to 4 values at input-chosen points. */
    sl_view_t v[4];
    size_t nv = 0, off = 0;
    for (size_t i = 0; i < 3 && off < size; i++) {
        size_t k = data[off] % 32;
        if (off + k > size)
            k = size - off;
        v[nv++] = sl_view(p + off, k);
        off += k;
    }
    v[nv++] = sl_view(p + off, size - off);
    sl_findings_reset(&f);
    sl_inspect_scan_values(rs, SL_SURF_ALL, v, nv, &f);
    check(&f, 0, size);
    /* Stream in chunks of 1..64 bytes chosen by the first byte. */
    size_t chunk = size ? (size_t)(data[0] % 64) + 1 : 1;
    sl_findings_reset(&f);
    sl_inspect_stream_t *st = sl_inspect_stream_open(rs, SL_SURF_ALL);
    for (size_t o = 0; o < size; o += chunk)
        sl_inspect_stream_feed(st, p + o, size - o < chunk ? size - o : chunk, &f);
    sl_inspect_stream_close(st, &f);
    check(&f, 0, size);
    sl_findings_free(&f);
    return 0;
}
