/* The JSON-RPC gate: MCP and A2A inside plain HTTP bodies.
 *
 * A request body whose first non-blank byte opens a JSON object or array
 * is held back whole (up to policy.mcp.max_body) instead of streaming with
 * the usual 1 KiB hold-back, then parsed and classified (inspect/jsonrpc.h):
 *   - MCP to a host not in policy.mcp.servers is shadow MCP: refused or
 *     noted per policy.mcp.shadow;
 *   - tools/call arguments are scanned as SL_SURF_TOOL_CALL, A2A message
 *     parts as what they are (text, data, file bytes, URIs);
 *   - duplicate keys in a JSON-RPC body are refused (receivers disagree).
 * Bodies over the limit: to an approved MCP server they are refused (the
 * tool call cannot be checked); to other hosts they stream on under the
 * byte-level scan and the audit event notes "jsonrpc-unchecked".
 * The Content-Type is not consulted: a JSON-RPC body sent as text/plain is
 * still JSON-RPC to a lenient server.
 *
 * Responses for an Agent Card location are scanned as SL_SURF_TOOL_LIST
 * while they stream and, at their end, field by field. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "inspect/jsonrpc.h"
#include "policy/hostglob.h"
#include "proxy/internal.h"

#define DEFAULT_MAX_BODY (1024 * 1024)

/* x->rpc: where the gate is for the current request body. */
enum {
    GATE_START = 0, /* only blank bytes seen so far: hold */
    GATE_HOLD,      /* a JSON object/array: hold the whole body */
    GATE_STREAM,    /* not JSON, or over the limit: the normal stream scan only */
};

static const sl_policy_cfg_t *pcfg(const sl_exchange_t *x)
{
    return x->ident->rules.cfg;
}

static size_t max_body(const sl_exchange_t *x)
{
    return pcfg(x)->mcp.max_body ? pcfg(x)->mcp.max_body : DEFAULT_MAX_BODY;
}

/* Is the exchange's destination an approved MCP server? */
static bool approved(const sl_exchange_t *x)
{
    const sl_policy_cfg_t *pc = pcfg(x);
    sl_view_t h = sl_view(x->target.host, strlen(x->target.host));
    for (size_t i = 0; i < pc->mcp.n_servers; i++)
        if (sl_hostglob_match(pc->mcp.servers[i], h))
            return true;
    return false;
}

static int shadow_mode(const sl_exchange_t *x)
{
    const sl_policy_cfg_t *pc = pcfg(x);
    if (pc->mcp.shadow != SL_MCP_SHADOW_AUTO)
        return pc->mcp.shadow;
    /* Deny-by-default once the operator has named the approved servers. */
    return pc->mcp.n_servers ? SL_MCP_SHADOW_BLOCK : SL_MCP_SHADOW_WARN;
}

static void note(sl_exchange_t *x, const char *id)
{
    size_t used = strlen(x->findings);
    if (used + strlen(id) + 2 < sizeof x->findings && !strstr(x->findings, id))
        snprintf(x->findings + used, sizeof x->findings - used, "%s%s", used ? "," : "", id);
}

static int refuse(sl_exchange_t *x, sl_verdict_t *v, const char *rule, const char *scanner,
                  const char *reason)
{
    *v = (sl_verdict_t){.blocked = true, .rule = rule, .scanner = scanner};
    snprintf(v->reason, sizeof v->reason, "%s", reason);
    note(x, rule);
    return -1;
}

/* Scan the content of the families in `fam` with its surfaces. */
static int scan_content(sl_client_t *c, const json_t *root, unsigned fam, const char *what,
                        sl_verdict_t *v)
{
    sl_rpc_content_t ct = {0};
    sl_findings_t f = {0};
    sl_rpc_content(root, fam, &ct);
    if (ct.n)
        sl_rpc_content_scan(c->w->server->rules, &ct, &f);
    bool blocked = sl_inspect_decide(&c->x, &f, what, v);
    sl_findings_free(&f);
    sl_rpc_content_free(&ct);
    return blocked ? -1 : 0;
}

/* The whole body is in `held`: classify it and decide. */
static int check_body(sl_client_t *c, const sl_buf_t *held, sl_verdict_t *v)
{
    sl_exchange_t *x = &c->x;
    json_t *root = NULL;
    size_t bom = held->n >= 3 && memcmp(held->p, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
    /* A receiver that skips a BOM reads the same messages: so do we. */
    sl_rpc_parse_t pr = sl_rpc_parse(held->p ? held->p + bom : "", held->n - bom, &root);
    if (pr == SL_RPC_AMBIGUOUS)
        return refuse(x, v, "jsonrpc-ambiguous", "mcp",
                      "a JSON-RPC body with duplicate object keys (receivers disagree on "
                      "which value counts)");
    if (pr == SL_RPC_NOT_JSON) {
        if (approved(x))
            return refuse(x, v, "mcp-unverifiable", "mcp",
                          "a body to an MCP server that is not valid JSON cannot be checked");
        return 0;
    }
    sl_rpc_info_t info;
    sl_rpc_info(root, &info);
    int rc = 0;
    if (info.n_mcp && !approved(x)) {
        int mode = shadow_mode(x);
        if (mode == SL_MCP_SHADOW_BLOCK) {
            char why[200];
            snprintf(why, sizeof why,
                     "shadow MCP: %s to %.64s, which is not an approved MCP server "
                     "(policy.mcp.servers)",
                     info.mcp_method, x->target.host);
            rc = refuse(x, v, "mcp-shadow", "mcp", why);
            goto out;
        }
        if (mode == SL_MCP_SHADOW_WARN) {
            sl_warn("request %s from %s: shadow MCP (%s) to %s", x->id, x->ident->name,
                    info.mcp_method, x->target.host);
            note(x, "mcp-shadow");
        }
    }
    if (info.n_mcp && scan_content(c, root, 1u << SL_RPC_MCP, "MCP tools/call arguments", v) != 0) {
        rc = -1;
        goto out;
    }
    if (info.n_a2a && scan_content(c, root, 1u << SL_RPC_A2A, "A2A message", v) != 0)
        rc = -1;
out:
    json_decref(root);
    return rc;
}

size_t sl_rpcgate_plain_cap(const sl_exchange_t *x)
{
    return x->rpc == GATE_STREAM ? 0 : max_body(x) + 1;
}

int sl_rpcgate_request_body(sl_client_t *c, const sl_buf_t *held, bool done, bool *hold_all,
                            sl_verdict_t *v)
{
    sl_exchange_t *x = &c->x;
    *hold_all = false;
    if (x->rpc == GATE_STREAM)
        return 0;
    if (x->rpc == GATE_START) {
        /* Blank bytes (and a UTF-8 BOM) before the first token. */
        size_t i = 0;
        if (held->n >= 3 && memcmp(held->p, "\xef\xbb\xbf", 3) == 0)
            i = 3;
        while (i < held->n && (held->p[i] == ' ' || held->p[i] == '\t' || held->p[i] == '\r' ||
                               held->p[i] == '\n'))
            i++;
        if (i < held->n)
            x->rpc = held->p[i] == '{' || held->p[i] == '[' ? GATE_HOLD : GATE_STREAM;
        if (x->rpc == GATE_STREAM)
            return 0;
    }
    /* The limit holds however the body arrived (one read or many). */
    if (held->n > max_body(x)) {
        if (x->rpc == GATE_HOLD && approved(x))
            return refuse(x, v, "mcp-unverifiable", "inspect:limit",
                          "a JSON body to an MCP server larger than policy.mcp.max_body "
                          "cannot be checked");
        if (x->rpc == GATE_HOLD)
            note(x, "jsonrpc-unchecked");
        x->rpc = GATE_STREAM;
        return 0;
    }
    if (done)
        return x->rpc == GATE_HOLD ? check_body(c, held, v) : 0;
    *hold_all = true;
    return 0;
}

static bool is_card_request(const sl_client_t *c)
{
    const sl_exchange_t *x = &c->x;
    return strcmp(x->method, "GET") == 0 && x->path.n && sl_a2a_card_path(x->path.p, x->path.n);
}

int sl_rpcgate_response_surface(const sl_client_t *c)
{
    return is_card_request(c) ? SL_SURF_TOOL_LIST : SL_SURF_RESPONSE;
}

int sl_rpcgate_response_body(sl_upstream_t *up, const char *p, size_t n, bool done, sl_verdict_t *v)
{
    sl_client_t *c = up->c;
    if (!is_card_request(c))
        return 0;
    /* Past the limit the streamed TOOL_LIST scan is all there is. */
    if (up->card.n != SIZE_MAX && up->card.n + n <= max_body(&c->x)) {
        sl_buf_append(&up->card, p, n);
    } else if (up->card.n != SIZE_MAX) {
        sl_buf_free(&up->card);
        up->card.n = SIZE_MAX; /* marks "too big" until the next response */
    }
    if (!done || up->card.n == SIZE_MAX)
        return 0;
    json_t *card = NULL;
    int rc = 0;
    if (sl_rpc_parse(up->card.p ? up->card.p : "", up->card.n, &card) == SL_RPC_JSON) {
        sl_rpc_content_t ct = {0};
        sl_findings_t f = {0};
        sl_a2a_card_content(card, &ct);
        if (ct.n)
            sl_rpc_content_scan(c->w->server->rules, &ct, &f);
        rc = sl_inspect_decide(&c->x, &f, "A2A Agent Card", v) ? -1 : 0;
        sl_findings_free(&f);
        sl_rpc_content_free(&ct);
    }
    json_decref(card);
    return rc;
}
