/* Fuzz the JSON-RPC walker: parse any bytes as a body, classify it, extract
 * MCP/A2A content and Agent Card fields, and scan them with the fixture
 * rules. Every extracted view must lie inside a string of the parsed value
 * (checked by bounds on its length), every finding inside its string. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "inspect/jsonrpc.h"

static sl_ruleset_t *rs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *paths[] = {SLUICE_SOURCE_DIR "/tests/unit/rules-fixtures"};
    sl_ruleset_opts_t o = {.no_embedded = true, .paths = paths, .n_paths = 1};
    sl_buf_t err = {0};
    rs = sl_ruleset_load(&o, &err);
    if (!rs) {
        fprintf(stderr, "fuzz_jsonrpc: %s", sl_buf_cstr(&err));
        abort();
    }
    sl_buf_free(&err);
    return 0;
}

static void check_content(const sl_rpc_content_t *c, size_t size)
{
    for (size_t i = 0; i < c->n; i++) {
        CHECK(c->v[i].s.n > 0); /* empty groups are dropped */
        CHECK(c->v[i].surface < SL_SURF__COUNT);
        for (size_t k = 0; k < c->v[i].s.n; k++) {
            /* A decoded string is never longer than the text it came from. */
            CHECK(c->v[i].s.v[k].n <= size);
            CHECK(c->v[i].s.name[k] != NULL);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *root = NULL;
    sl_rpc_parse_t r = sl_rpc_parse((const char *)data, size, &root);
    CHECK((r == SL_RPC_JSON) == (root != NULL));
    if (!root)
        return 0;
    sl_rpc_info_t info;
    sl_rpc_info(root, &info);
    CHECK(info.n_mcp + info.n_a2a <= info.n_calls);
    CHECK(strlen(info.mcp_method) < sizeof info.mcp_method);
    CHECK((info.n_mcp > 0) == (info.mcp_method[0] != '\0'));
    sl_rpc_content_t c = {0};
    sl_rpc_content(root, (1u << SL_RPC_MCP) | (1u << SL_RPC_A2A), &c);
    sl_a2a_card_content(root, &c);
    check_content(&c, size);
    sl_findings_t f = {0};
    sl_rpc_content_scan(rs, &c, &f);
    for (size_t i = 0; i < f.n; i++)
        CHECK(f.v[i].start <= f.v[i].end && f.v[i].rule_id);
    sl_findings_free(&f);
    sl_rpc_content_free(&c);
    json_decref(root);
    return 0;
}
