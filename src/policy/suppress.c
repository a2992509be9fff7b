/* Inspection suppressions (see suppress.h). */
#include "policy/suppress.h"

#include <string.h>

#include "inspect/inspect.h"
#include "policy/hostglob.h"

int sl_suppress_match(const sl_config_t *cfg, const char *rule, const char *host)
{
    sl_view_t h = sl_view(host, strlen(host));
    for (size_t i = 0; i < cfg->inspect.n_suppress; i++) {
        const sl_suppress_cfg_t *s = &cfg->inspect.suppress[i];
        if (strcmp(s->rule, rule) != 0)
            continue;
        if (s->n_hosts == 0)
            return (int)i;
        for (size_t k = 0; k < s->n_hosts; k++)
            if (sl_hostglob_match(s->hosts[k], h))
                return (int)i;
    }
    return -1;
}

int sl_suppress_check(const sl_config_t *cfg, const struct sl_ruleset *rules, sl_buf_t *err)
{
    int rc = 0;
    for (size_t i = 0; i < cfg->inspect.n_suppress; i++) {
        const char *id = cfg->inspect.suppress[i].rule;
        if (sl_ruleset_find(rules, id))
            continue;
        sl_buf_appendf(err,
                       "%s: inspect.suppress[%zu]: unknown rule id '%s' (see `sluice scan "
                       "--list-rules`)\n",
                       cfg->path ? cfg->path : "<config>", i, id);
        rc = -1;
    }
    return rc;
}
