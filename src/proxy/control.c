/* Runtime control (see control.h): the overlay of admin changes, rebuilt
 * into a new snapshot on every change. */
#include "proxy/control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "policy/hostglob.h"
#include "proxy/internal.h"

/* The overlay entry of `identity`, created if missing. Caller holds lock. */
static sl_overlay_entry_t *entry(sl_overlay_t *o, const char *identity)
{
    for (size_t i = 0; i < o->n_entries; i++)
        if (strcmp(o->entries[i].identity, identity) == 0)
            return &o->entries[i];
    sl_overlay_entry_t *e = realloc(o->entries, (o->n_entries + 1) * sizeof *e);
    if (e == NULL)
        return NULL;
    o->entries = e;
    e = &o->entries[o->n_entries++];
    memset(e, 0, sizeof *e);
    e->identity = strdup(identity);
    return e;
}

/* Does the running snapshot know this identity (and policy, if given)? */
static bool known(const char *identity, const char *policy, sl_buf_t *err)
{
    sl_server_t *srv = sl_server();
    pthread_mutex_lock(&srv->rebuild_lock);
    sl_policy_t *p = sl_policy_ref(srv->current);
    pthread_mutex_unlock(&srv->rebuild_lock);
    bool ok = sl_policy_identity_named(p, identity) != NULL;
    if (!ok)
        sl_buf_appendf(err, "no identity named \"%s\" (see GET /v1/policy)", identity);
    if (ok && policy && strcmp(policy, "default") != 0) {
        ok = false;
        for (size_t i = 0; i < p->cfg->n_policies && !ok; i++)
            ok = strcmp(p->cfg->policies[i].name, policy) == 0;
        if (!ok)
            sl_buf_appendf(err, "no policy named \"%s\" in the config", policy);
    }
    sl_policy_unref(p);
    return ok;
}

static int list_edit(char ***list, size_t *n, const char *pattern, bool add, sl_buf_t *err)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp((*list)[i], pattern) != 0)
            continue;
        if (add)
            return 0; /* already there */
        free((*list)[i]);
        (*list)[i] = (*list)[--*n];
        return 0;
    }
    if (!add) {
        sl_buf_appendf(err,
                       "\"%s\" was not added at runtime (patterns from the config file "
                       "change with the file)",
                       pattern);
        return -1;
    }
    char **l = realloc(*list, (*n + 1) * sizeof *l);
    if (l == NULL)
        return -1;
    *list = l;
    l[(*n)++] = strdup(pattern);
    return 0;
}

int sl_control_host(const char *actor, const char *identity, sl_control_list_t which, bool add,
                    const char *pattern, sl_buf_t *err)
{
    sl_server_t *srv = sl_server();
    char norm[300];
    size_t n = strlen(pattern);
    if (n == 0 || n >= sizeof norm) {
        sl_buf_appendf(err, "empty or overlong host pattern");
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        norm[i] = (char)((pattern[i] >= 'A' && pattern[i] <= 'Z') ? pattern[i] + 32 : pattern[i]);
    const char *why = sl_hostglob_check(norm);
    if (why) {
        sl_buf_appendf(err, "invalid host pattern \"%s\": %s", pattern, why);
        return -1;
    }
    if (!known(identity, NULL, err))
        return -1;
    pthread_mutex_lock(&srv->lock);
    sl_overlay_entry_t *e = entry(&srv->overlay, identity);
    int r = e ? (which == SL_CONTROL_ALLOW ? list_edit(&e->allow, &e->n_allow, norm, add, err)
                                           : list_edit(&e->deny, &e->n_deny, norm, add, err))
              : -1;
    pthread_mutex_unlock(&srv->lock);
    if (r != 0)
        return -1;
    char detail[400];
    snprintf(detail, sizeof detail, "%s %s %s", add ? "added" : "removed", norm,
             which == SL_CONTROL_ALLOW ? "allow" : "deny");
    sl_audit_admin(actor, which == SL_CONTROL_ALLOW ? "allow-list" : "deny-list", identity, detail);
    return sl_server_rebuild("admin: host list change", err);
}

int sl_control_set_policy(const char *actor, const char *identity, const char *policy,
                          sl_buf_t *err)
{
    sl_server_t *srv = sl_server();
    if (!known(identity, policy, err))
        return -1;
    pthread_mutex_lock(&srv->lock);
    sl_overlay_entry_t *e = entry(&srv->overlay, identity);
    if (e) {
        free(e->policy);
        e->policy = policy ? strdup(policy) : NULL;
    }
    pthread_mutex_unlock(&srv->lock);
    if (e == NULL)
        return -1;
    sl_audit_admin(actor, "set-policy", identity, policy ? policy : "(configured)");
    return sl_server_rebuild("admin: policy swap", err);
}

int sl_control_kill(const char *actor, const char *identity, bool on, sl_buf_t *err)
{
    sl_server_t *srv = sl_server();
    if (identity && !known(identity, NULL, err))
        return -1;
    pthread_mutex_lock(&srv->lock);
    if (identity == NULL) {
        srv->overlay.killed = on;
    } else {
        sl_overlay_entry_t *e = entry(&srv->overlay, identity);
        if (e)
            e->killed = on;
    }
    pthread_mutex_unlock(&srv->lock);
    sl_audit_admin(actor, on ? "kill-switch-on" : "kill-switch-off", identity,
                   identity ? "one identity" : "all identities");
    return sl_server_rebuild(on ? "admin: kill switch on" : "admin: kill switch off", err);
}

static void json_str(sl_buf_t *b, const char *s)
{
    if (s == NULL) {
        sl_buf_append_str(b, "null");
        return;
    }
    sl_buf_append(b, "\"", 1);
    sl_buf_append_json(b, s, strlen(s));
    sl_buf_append(b, "\"", 1);
}

static void json_list(sl_buf_t *b, char **l, size_t n)
{
    sl_buf_append(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            sl_buf_append(b, ",", 1);
        json_str(b, l[i]);
    }
    sl_buf_append(b, "]", 1);
}

void sl_control_describe(sl_buf_t *b)
{
    sl_server_t *srv = sl_server();
    pthread_mutex_lock(&srv->rebuild_lock);
    sl_policy_t *p = sl_policy_ref(srv->current);
    pthread_mutex_unlock(&srv->rebuild_lock);
    sl_buf_appendf(b, "{\"generation\":%llu,\"killed\":%s,\"identities\":[",
                   (unsigned long long)p->generation, p->killed ? "true" : "false");
    pthread_mutex_lock(&srv->lock);
    for (size_t i = 0; i < p->n_ids; i++) {
        const sl_identity_t *id = &p->ids[i];
        const sl_policy_cfg_t *pc = id->rules.cfg;
        const sl_overlay_entry_t *e = NULL;
        for (size_t k = 0; k < srv->overlay.n_entries; k++)
            if (strcmp(srv->overlay.entries[k].identity, id->name) == 0)
                e = &srv->overlay.entries[k];
        sl_buf_append_str(b, i ? ",{\"name\":" : "{\"name\":");
        json_str(b, id->name);
        sl_buf_append_str(b, ",\"tenant\":");
        json_str(b, id->cfg ? id->cfg->tenant : NULL);
        sl_buf_append_str(b, ",\"agent\":");
        json_str(b, id->cfg ? id->cfg->agent : NULL);
        sl_buf_append_str(b, ",\"labels\":");
        json_list(b, id->cfg ? id->cfg->labels : NULL, id->cfg ? id->cfg->n_labels : 0);
        sl_buf_append_str(b, ",\"policy\":");
        json_str(b, id->rules.policy_name);
        sl_buf_appendf(b, ",\"killed\":%s,\"allow_private\":%s,\"allow\":",
                       id->rules.killed ? "true" : "false", pc->allow_private ? "true" : "false");
        json_list(b, pc->allow, pc->n_allow);
        sl_buf_append_str(b, ",\"deny\":");
        json_list(b, pc->deny, pc->n_deny);
        sl_buf_append_str(b, ",\"runtime_allow\":");
        json_list(b, e ? e->allow : NULL, e ? e->n_allow : 0);
        sl_buf_append_str(b, ",\"runtime_deny\":");
        json_list(b, e ? e->deny : NULL, e ? e->n_deny : 0);
        sl_buf_append_str(b, ",\"rules\":[");
        for (size_t r = 0; r < pc->n_rules; r++) {
            const sl_host_rule_cfg_t *hr = &pc->rules[r];
            sl_buf_append_str(b, r ? ",{\"host\":" : "{\"host\":");
            json_str(b, hr->host);
            sl_buf_append_str(b, ",\"methods\":");
            json_list(b, hr->methods, hr->n_methods);
            sl_buf_append_str(b, ",\"paths\":");
            json_list(b, hr->paths, hr->n_paths);
            sl_buf_append_str(b, ",\"ports\":");
            json_list(b, hr->ports, hr->n_ports);
            sl_buf_append_str(b, "}");
        }
        sl_buf_append_str(b, "]}");
    }
    pthread_mutex_unlock(&srv->lock);
    sl_buf_append_str(b, "]}");
    sl_policy_unref(p);
}

void sl_control_approvals(sl_buf_t *json)
{
    sl_approval_list(sl_server(), json);
}

int sl_control_decide(const char *actor, const char *request_id, bool approve, sl_buf_t *err)
{
    if (sl_approval_decide(sl_server(), actor, request_id, approve, err) != 0)
        return -1;
    sl_audit_admin(actor, approve ? "approve" : "deny", NULL, request_id);
    return 0;
}

void sl_control_health(sl_buf_t *json)
{
    sl_server_t *srv = sl_server();
    sl_buf_appendf(json,
                   "{\"status\":\"%s\",\"version\":\"" SLUICE_VERSION "\",\"workers\":%zu,"
                   "\"connections\":%ld,\"generation\":%llu}",
                   atomic_load(&srv->draining) ? "draining" : "ok", srv->n_workers,
                   (long)atomic_load(&srv->n_connections),
                   (unsigned long long)atomic_load(&srv->policy_gen));
}
