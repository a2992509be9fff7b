/* libFuzzer driver: arbitrary bytes as a config file. Every input must either
 * load or fail with at least one error line, without crashing or leaking. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_buf_t err = {0};
    sl_config_t *cfg = sl_config_load_string((const char *)data, size, "fuzz.yaml", &err);
    if (cfg == NULL && err.n == 0)
        abort(); /* a refusal must always say why */
    if (cfg != NULL && err.n != 0)
        abort(); /* a config that loads must not have reported problems */
    if (cfg != NULL) {
        sl_buf_t s = {0};
        sl_config_summary(cfg, &s);
        sl_buf_free(&s);
    }
    sl_config_free(cfg);
    sl_buf_free(&err);
    return 0;
}
