/* JSON-RPC classification and content extraction (src/inspect/jsonrpc.c):
 * families, strict parsing, which fields are scanned as which surface, and
 * a scan over the fixture rules end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "inspect/jsonrpc.h"

#define TOKEN "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"

static json_t *parse(const char *s)
{
    json_t *j = NULL;
    assert_int_equal(sl_rpc_parse(s, strlen(s), &j), SL_RPC_JSON);
    return j;
}

static sl_rpc_family_t fam(const char *s)
{
    json_t *j = parse(s);
    sl_rpc_family_t f = sl_rpc_family(j);
    json_decref(j);
    return f;
}

static void families(void **state)
{
    (void)state;
    assert_int_equal(fam("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\"}"), SL_RPC_MCP);
    assert_int_equal(fam("{\"method\":\"TOOLS/LIST\"}"), SL_RPC_MCP);
    assert_int_equal(fam("{\"method\":\"notifications/initialized\"}"), SL_RPC_MCP);
    assert_int_equal(fam("{\"method\":\"sampling/createMessage\",\"id\":3}"), SL_RPC_MCP);
    assert_int_equal(fam("{\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"x\"}}"),
                     SL_RPC_MCP);
    /* LSP's initialize is not MCP. */
    assert_int_equal(fam("{\"method\":\"initialize\",\"params\":{\"processId\":1}}"), SL_RPC_OTHER);
    assert_int_equal(fam("{\"method\":\"message/send\"}"), SL_RPC_A2A);
    assert_int_equal(fam("{\"method\":\"tasks/sendSubscribe\"}"), SL_RPC_A2A);
    assert_int_equal(fam("{\"method\":\"eth_call\"}"), SL_RPC_OTHER);
    assert_int_equal(fam("{\"method\":\"ping\"}"), SL_RPC_OTHER);
    assert_int_equal(fam("{\"method\":1}"), SL_RPC_OTHER);
    assert_int_equal(fam("{\"tools/call\":\"method\"}"), SL_RPC_OTHER);
    assert_int_equal(fam("[\"tools/call\"]"), SL_RPC_OTHER);
}

static void info_of_batches(void **state)
{
    (void)state;
    json_t *j = parse("[{\"method\":\"eth_call\"},{\"method\":\"message/send\"},"
                      "{\"method\":\"tools/call\"},{\"method\":\"tools/list\"},42]");
    sl_rpc_info_t info;
    sl_rpc_info(j, &info);
    assert_int_equal(info.n_calls, 4);
    assert_int_equal(info.n_mcp, 2);
    assert_int_equal(info.n_a2a, 1);
    assert_string_equal(info.mcp_method, "tools/call");
    assert_string_equal(info.a2a_method, "message/send");
    json_decref(j);
    /* Method names are cleaned for audit text. */
    j = parse("{\"method\":\"notifications/\\u0001\\\"x\"}");
    sl_rpc_info(j, &info);
    assert_string_equal(info.mcp_method, "notifications/??x");
    json_decref(j);
}

static void strict_parsing(void **state)
{
    (void)state;
    json_t *j = NULL;
    const char *dup = "{\"method\":\"tools/call\",\"method\":\"eth_call\"}";
    assert_int_equal(sl_rpc_parse(dup, strlen(dup), &j), SL_RPC_AMBIGUOUS);
    assert_null(j);
    /* Duplicate keys in something that is not JSON-RPC: just not JSON. */
    const char *dup2 = "{\"a\":1,\"a\":2}";
    assert_int_equal(sl_rpc_parse(dup2, strlen(dup2), &j), SL_RPC_NOT_JSON);
    const char *bad = "{\"method\":\"tools/call\"";
    assert_int_equal(sl_rpc_parse(bad, strlen(bad), &j), SL_RPC_NOT_JSON);
    assert_int_equal(sl_rpc_parse("\"s\"", 3, &j), SL_RPC_NOT_JSON);
    /* Integers beyond 64 bits and NUL inside strings still parse. */
    const char *big = "{\"id\":123456789012345678901234567890,\"method\":\"tools/call\","
                      "\"params\":{\"arguments\":{\"a\":\"x\\u0000y\"}}}";
    assert_int_equal(sl_rpc_parse(big, strlen(big), &j), SL_RPC_JSON);
    json_decref(j);
}

/* Index of the group holding a string named `name`, or -1. */
static int group_of(const sl_rpc_content_t *c, const char *name)
{
    for (size_t i = 0; i < c->n; i++)
        for (size_t k = 0; k < c->v[i].s.n; k++)
            if (strcmp(c->v[i].s.name[k], name) == 0)
                return (int)i;
    return -1;
}

static void mcp_tool_call_content(void **state)
{
    (void)state;
    json_t *j = parse("[{\"method\":\"tools/call\",\"params\":{\"name\":\"run\","
                      "\"arguments\":{\"cmd\":\"ls\",\"env\":[\"A\",\"B\"]}}},"
                      "{\"method\":\"tools/list\",\"params\":{\"arguments\":{\"x\":\"y\"}}}]");
    sl_rpc_content_t c = {0};
    sl_rpc_content(j, 1u << SL_RPC_A2A, &c);
    assert_int_equal(c.n, 0); /* MCP not asked for */
    sl_rpc_content(j, 1u << SL_RPC_MCP, &c);
    int vals = group_of(&c, "[0].params.arguments.cmd");
    assert_true(vals >= 0);
    assert_int_equal(c.v[vals].surface, SL_SURF_TOOL_CALL);
    assert_true(c.v[vals].joined);
    assert_int_equal(group_of(&c, "[0].params.arguments.env[1]"), vals);
    /* Keys are their own group, not joined with the values. */
    int keys = group_of(&c, "[0].params.arguments.env");
    assert_true(keys >= 0 && keys != vals);
    assert_false(c.v[keys].joined);
    /* Only tools/call carries arguments that are scanned. */
    assert_int_equal(group_of(&c, "[1].params.arguments.x"), -1);
    sl_rpc_content_free(&c);
    json_decref(j);
}

static void a2a_parts_content(void **state)
{
    (void)state;
    json_t *j = parse("{\"method\":\"message/send\",\"params\":{\"message\":{\"parts\":["
                      "{\"kind\":\"text\",\"text\":\"hello\"},"
                      "{\"kind\":\"data\",\"data\":{\"k\":\"v\"}},"
                      "{\"kind\":\"file\",\"file\":{\"uri\":\"https://h/f?x=1\",\"name\":\"f\"}},"
                      "{\"kind\":\"file\",\"file\":{\"bytes\":\"aGVsbG8=\"}},"
                      "{\"type\":\"text\",\"text\":\"world\"},"
                      "{\"kind\":\"weird\",\"stuff\":\"z\"}]},"
                      "\"pushNotificationConfig\":{\"url\":\"https://hook/\"}}}");
    sl_rpc_content_t c = {0};
    sl_rpc_content(j, 1u << SL_RPC_A2A, &c);
    const char *p = "params.message.parts";
    char n[128];
    snprintf(n, sizeof n, "%s[0].text", p);
    int text = group_of(&c, n);
    assert_true(text >= 0);
    assert_int_equal(c.v[text].surface, SL_SURF_BODY);
    assert_true(c.v[text].joined);
    snprintf(n, sizeof n, "%s[4].text", p); /* legacy "type" names the kind too */
    assert_int_equal(group_of(&c, n), text);
    snprintf(n, sizeof n, "%s[1].data.k", p);
    int data = group_of(&c, n);
    assert_true(data >= 0 && data != text);
    assert_int_equal(c.v[data].surface, SL_SURF_BODY);
    snprintf(n, sizeof n, "%s[2].file.uri", p);
    int uri = group_of(&c, n);
    assert_true(uri >= 0);
    assert_int_equal(c.v[uri].surface, SL_SURF_URL);
    assert_int_equal(group_of(&c, "params.pushNotificationConfig.url"), uri);
    snprintf(n, sizeof n, "%s[3].file.bytes", p);
    int bytes = group_of(&c, n);
    assert_true(bytes >= 0);
    assert_int_equal(c.v[bytes].surface, SL_SURF_BODY);
    snprintf(n, sizeof n, "%s[5].stuff", p); /* unknown kinds: all their strings */
    assert_true(group_of(&c, n) >= 0);
    sl_rpc_content_free(&c);
    json_decref(j);
}

static void agent_card_content(void **state)
{
    (void)state;
    json_t *j = parse("{\"name\":\"A\",\"description\":\"B\",\"url\":\"https://x/\","
                      "\"provider\":{\"organization\":\"O\"},"
                      "\"skills\":[{\"id\":\"s\",\"description\":\"D\",\"examples\":[\"E\"]}]}");
    sl_rpc_content_t c = {0};
    sl_a2a_card_content(j, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.v[0].surface, SL_SURF_TOOL_LIST);
    assert_false(c.v[0].joined);
    assert_true(group_of(&c, "name") == 0 && group_of(&c, "description") == 0);
    assert_int_equal(group_of(&c, "provider.organization"), 0);
    assert_int_equal(group_of(&c, "skills[0].description"), 0);
    assert_int_equal(group_of(&c, "skills[0].examples[0]"), 0);
    assert_int_equal(group_of(&c, "url"), -1);
    sl_rpc_content_free(&c);
    json_decref(j);
    assert_true(sl_a2a_card_path("/.well-known/agent-card.json?x=1", 33));
    assert_true(sl_a2a_card_path("/.well-known/agent.json", 23));
    assert_false(sl_a2a_card_path("/.well-known/agent.jsonx", 24));
    assert_false(sl_a2a_card_path("/agent.json", 11));
}

/* End to end over the fixture rules: a token split across two arguments is
 * found only through the joined scan of the values. */
static void scan_finds_split_token(void **state)
{
    (void)state;
    const char *paths[] = {"tests/unit/rules-fixtures"};
    sl_ruleset_opts_t o = {.no_embedded = true, .paths = paths, .n_paths = 1};
    sl_buf_t err = {0};
    sl_ruleset_t *rs = sl_ruleset_load(&o, &err);
    if (!rs)
        fprintf(stderr, "%s", sl_buf_cstr(&err));
    sl_buf_free(&err);
    assert_non_null(rs);
    char body[512];
    snprintf(
        body, sizeof body,
        "{\"method\":\"tools/call\",\"params\":{\"arguments\":{\"a\":\"%.20s\",\"b\":\"%s\"}}}",
        TOKEN, TOKEN + 20);
    json_t *j = parse(body);
    sl_rpc_content_t c = {0};
    sl_findings_t f = {0};
    sl_rpc_content(j, 1u << SL_RPC_MCP, &c);
    assert_true(sl_rpc_content_scan(rs, &c, &f) > 0);
    bool joined = false;
    for (size_t i = 0; i < f.n; i++)
        joined |= f.v[i].layer == SL_LAYER_JOINED;
    assert_true(joined);
    /* The raw body alone does not show it (the quotes split it). */
    sl_findings_t raw = {0};
    sl_inspect_scan(rs, SL_SURF_BODY, body, strlen(body), &raw);
    assert_int_equal(raw.n, 0);
    sl_findings_free(&raw);
    sl_findings_free(&f);
    sl_rpc_content_free(&c);
    json_decref(j);
    sl_ruleset_unref(rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(families),
        cmocka_unit_test(info_of_batches),
        cmocka_unit_test(strict_parsing),
        cmocka_unit_test(mcp_tool_call_content),
        cmocka_unit_test(a2a_parts_content),
        cmocka_unit_test(agent_card_content),
        cmocka_unit_test(scan_finds_split_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
