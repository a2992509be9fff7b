/* JSON-RPC 2.0 bodies as the inspection sees them: which protocol a message
 * speaks (MCP, A2A, something else) and which of its fields carry content,
 * each with the surface it is scanned as. Also A2A Agent Cards.
 *
 * Detection is structural: a body is parsed (strictly) and its messages are
 * classified by their "method" member, never by searching the bytes. Pure
 * functions over buffers and jansson values, so they are unit-tested and
 * fuzzed without sockets (tests/unit/test_jsonrpc.c, fuzz/fuzz_jsonrpc.c).
 * docs/inspection.md describes what is looked at and why. */
#ifndef SLUICE_INSPECT_JSONRPC_H
#define SLUICE_INSPECT_JSONRPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "inspect/inspect.h"
#include "inspect/jsonwalk.h"

/* Which protocol a JSON-RPC method belongs to. */
typedef enum sl_rpc_family {
    SL_RPC_OTHER = 0, /* a JSON-RPC method of some other protocol */
    SL_RPC_MCP,       /* Model Context Protocol (initialize, tools/call, notifications/...) */
    SL_RPC_A2A,       /* Agent2Agent (message/send, tasks/get, legacy tasks/send, ...) */
} sl_rpc_family_t;

/* How a body parsed. */
typedef enum sl_rpc_parse {
    SL_RPC_NOT_JSON = 0, /* not a JSON object or array (or invalid JSON) */
    SL_RPC_JSON,         /* parsed: *root is set */
    SL_RPC_AMBIGUOUS,    /* JSON-RPC messages with duplicate object keys: receivers may
                            disagree on which value counts (refuse it) */
} sl_rpc_parse_t;

/* Parse a body as JSON: an object or an array at the top, RFC 8259 strict
 * (duplicate keys rejected, NUL allowed inside strings, integers of any size
 * read as reals). On SL_RPC_JSON *root holds a new reference the caller
 * must json_decref; otherwise *root is NULL. */
sl_rpc_parse_t sl_rpc_parse(const char *p, size_t n, json_t **root);

/* Family of one message: an object with a string "method". Method names
 * compare ASCII case-insensitively (a receiver that folds case must not be a
 * way around). "initialize" is MCP only with params.protocolVersion (the
 * Language Server Protocol has an initialize too). Non-messages: OTHER. */
sl_rpc_family_t sl_rpc_family(const json_t *msg);

/* What a parsed body carries. */
typedef struct sl_rpc_info {
    unsigned n_calls;    /* request/notification objects (a string "method") */
    unsigned n_mcp;      /* of which MCP */
    unsigned n_a2a;      /* of which A2A */
    char mcp_method[48]; /* first MCP method (truncated), "" if none */
    char a2a_method[48]; /* first A2A method (truncated), "" if none */
} sl_rpc_info_t;

/* Classify a body: a single message or a batch (array of messages). */
void sl_rpc_info(const json_t *root, sl_rpc_info_t *info);

/* Strings scanned together as one surface. */
typedef struct sl_rpc_group {
    sl_surface_t surface; /* what the strings are scanned as */
    bool joined;          /* also scan their concatenation (a secret split across fields) */
    sl_strlist_t s;       /* the strings, named by JSON path */
} sl_rpc_group_t;

/* The content fields of a body or card. */
typedef struct sl_rpc_content {
    sl_rpc_group_t *v;
    size_t n, cap;
} sl_rpc_content_t;

/* Content of the messages in `root` whose family bit (1u << family) is in
 * `families`:
 *   MCP tools/call   params.arguments (keys and values)  TOOL_CALL, joined
 *   A2A text parts   text of each part of params.message  BODY, joined per message
 *   A2A data parts   strings of the data value            BODY, joined per part
 *   A2A file parts   bytes (base64 text)                  BODY
 *   A2A other parts  all their strings (unknown kinds)    BODY, joined per part
 *   A2A url / uri    any "url" or "uri" string in params  URL (file URIs, push
 *                                                         notification webhooks)
 * Views point into `root`: valid while it lives. */
void sl_rpc_content(const json_t *root, unsigned families, sl_rpc_content_t *out);

/* Content of an A2A Agent Card (GET /.well-known/agent-card.json): name,
 * description, provider.organization and every string of skills[] (names,
 * descriptions, examples, tags), each scanned alone as TOOL_LIST (tool
 * poisoning and injection: the card is read by a model choosing a tool). */
void sl_a2a_card_content(const json_t *card, sl_rpc_content_t *out);

/* Is this request path an Agent Card location? (path without the query) */
bool sl_a2a_card_path(const char *path, size_t n);

/* Scan every group; appends findings to `out`. Returns the number appended,
 * or -1 if any scan hit an internal error (an "inspection-limit" finding is
 * then in `out`). */
int sl_rpc_content_scan(const sl_ruleset_t *rs, const sl_rpc_content_t *c, sl_findings_t *out);

/* Free the groups (the list stays usable, empty). */
void sl_rpc_content_free(sl_rpc_content_t *c);

#endif
