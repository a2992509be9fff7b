/* Echo redaction over the store's value patterns. */
#include "secrets/redact.h"

#include <string.h>

#include "secrets/store-t.h"

void sl_redactor_init(sl_redactor_t *r, sl_secret_store_t *s)
{
    memset(r, 0, sizeof *r);
    if (s == NULL || s->n == 0)
        return;
    r->store = sl_secret_store_ref(s);
    sl_smatch_stream_init(&r->st, s->m, s->redact);
}

void sl_redactor_feed(sl_redactor_t *r, const void *p, size_t n, sl_buf_t *out)
{
    if (r->store == NULL)
        sl_buf_append(out, p, n);
    else
        sl_smatch_stream_feed(&r->st, p, n, out);
}

void sl_redactor_finish(sl_redactor_t *r, sl_buf_t *out)
{
    if (r->store != NULL)
        sl_smatch_stream_finish(&r->st, out);
}

size_t sl_redactor_count(const sl_redactor_t *r)
{
    return r->st.matches;
}

size_t sl_redactor_names(const sl_redactor_t *r, const char **names, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; r->store != NULL && i < r->store->n; i++)
        if (sl_smatch_hit(&r->st.hits, i)) {
            if (k < cap)
                names[k] = r->store->sec[i].cfg.name;
            k++;
        }
    return k;
}

void sl_redactor_free(sl_redactor_t *r)
{
    sl_smatch_stream_free(&r->st);
    sl_secret_store_unref(r->store);
    memset(r, 0, sizeof *r);
}

size_t sl_secret_redact(const sl_secret_store_t *s, sl_view_t v, sl_buf_t *out)
{
    if (s == NULL || s->n == 0) {
        sl_buf_append(out, v.p, v.n);
        return 0;
    }
    return sl_smatch_apply(s->m, s->redact, v.p, v.n, out, NULL);
}

bool sl_secret_contains_value(const sl_secret_store_t *s, sl_view_t v)
{
    return s != NULL && s->n > 0 && sl_smatch_apply(s->m, s->redact, v.p, v.n, NULL, NULL) > 0;
}
