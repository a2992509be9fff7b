/* Strings of a JSON value with their paths (see jsonwalk.h). */
#include "inspect/jsonwalk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sl_strlist_add(sl_strlist_t *l, const char *p, size_t n, const char *name)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        l->name = realloc(l->name, l->cap * sizeof *l->name);
        if (!l->v || !l->name)
            abort();
    }
    l->v[l->n] = sl_view(p, n);
    if ((l->name[l->n++] = strdup(name)) == NULL)
        abort();
}

void sl_strlist_free(sl_strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->name[i]);
    free(l->v);
    free(l->name);
    *l = (sl_strlist_t){0};
}

void sl_json_collect_strings(const json_t *j, const char *path, sl_strlist_t *keys,
                             sl_strlist_t *values)
{
    char sub[512];
    if (json_is_string(j)) {
        sl_strlist_add(values, json_string_value(j), json_string_length(j), path);
    } else if (json_is_object(j)) {
        const char *k;
        json_t *v;
        /* jansson's iteration macros take a non-const object; nothing is changed. */
        json_object_foreach((json_t *)j, k, v)
        {
            snprintf(sub, sizeof sub, "%s.%s", path, k);
            if (keys)
                sl_strlist_add(keys, k, strlen(k), sub);
            sl_json_collect_strings(v, sub, keys, values);
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            snprintf(sub, sizeof sub, "%s[%zu]", path, i);
            sl_json_collect_strings(v, sub, keys, values);
        }
    }
}
