/* Config loader: defaults, every key, every error class with its exact
 * file:line:col, value syntaxes, and the `sluice check` command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <fcntl.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/values.h"

/* ---- helpers ----------------------------------------------------------- */

static sl_config_t *load_ok(const char *yaml)
{
    sl_buf_t err = {0};
    sl_config_t *cfg = sl_config_load_string(yaml, strlen(yaml), "t.yaml", &err);
    if (cfg == NULL)
        fail_msg("expected to load, got:\n%s", sl_buf_cstr(&err));
    assert_int_equal(err.n, 0);
    sl_buf_free(&err);
    return cfg;
}

/* Load must fail; returns the error text (free it). */
static char *load_bad(const char *yaml)
{
    sl_buf_t err = {0};
    sl_config_t *cfg = sl_config_load_string(yaml, strlen(yaml), "t.yaml", &err);
    if (cfg != NULL) {
        sl_config_free(cfg);
        fail_msg("expected an error for:\n%s", yaml);
    }
    assert_true(err.n > 0);
    return sl_buf_cstr(&err);
}

/* The whole error output must be exactly `want` (one line). */
static void expect_error(const char *yaml, const char *want)
{
    char *got = load_bad(yaml);
    if (strcmp(got, want) != 0 &&
        !(strncmp(got, want, strlen(want)) == 0 && strcmp(got + strlen(want), "\n") == 0))
        fail_msg("for YAML:\n%s\nwant: %s\ngot:  %s", yaml, want, got);
    free(got);
}

/* The error output must contain `want`. */
static void expect_error_part(const char *yaml, const char *want)
{
    char *got = load_bad(yaml);
    if (strstr(got, want) == NULL)
        fail_msg("for YAML:\n%s\nwant part: %s\ngot: %s", yaml, want, got);
    free(got);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* ---- defaults ---------------------------------------------------------- */

static void assert_defaults(const sl_config_t *c)
{
    assert_int_equal(c->n_listen, 1);
    assert_string_equal(c->listen[0].host, "127.0.0.1");
    assert_int_equal(c->listen[0].port, 8888);
    assert_int_equal(c->workers, 0);
    assert_int_equal(c->log_level, SL_LOG_INFO);
    assert_string_equal(c->audit_path, "-");
    assert_true(c->watch);
    assert_int_equal(c->limits.max_head_bytes, 32768);
    assert_int_equal(c->limits.max_headers, 100);
    assert_int_equal(c->limits.max_connections, 10000);
    assert_int_equal(c->timeouts.header_read, 10000);
    assert_int_equal(c->timeouts.idle, 60000);
    assert_int_equal(c->timeouts.connect, 10000);
    assert_int_equal(c->timeouts.response_head, 60000);
    assert_int_equal(c->timeouts.io_idle, 300000);
    assert_int_equal(c->timeouts.upstream_idle, 30000);
    assert_int_equal(c->timeouts.drain, 30000);
    assert_int_equal(c->policy.n_allow, 0);
    assert_int_equal(c->policy.n_deny, 0);
    assert_false(c->policy.allow_private);
    assert_int_equal(c->n_routes, 0);
}

static void test_default(void **state)
{
    (void)state;
    sl_config_t *c = sl_config_default();
    assert_non_null(c);
    assert_null(c->path);
    assert_defaults(c);
    sl_config_free(c);
}

static void test_default_yaml_loads_by_itself(void **state)
{
    (void)state;
    /* The documented YAML, loaded as a user file, gives the same config. */
    sl_config_t *c = load_ok(sl_config_default_yaml);
    assert_defaults(c);
    sl_config_free(c);
    assert_non_null(strstr(sl_config_default_yaml, "# "));
}

static void test_empty_file_is_defaults(void **state)
{
    (void)state;
    const char *docs[] = {"", "\n", "# only a comment\n", "---\n", "~\n", "---\n...\n"};
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        sl_config_t *c = load_ok(docs[i]);
        assert_defaults(c);
        sl_config_free(c);
    }
}

/* ---- every key --------------------------------------------------------- */

static const char full_yaml[] = "listen: [\"0.0.0.0:3128\", \"[::1]:3129\"]\n"
                                "workers: 8\n"
                                "log: { level: debug }\n"
                                "audit: { path: /var/log/sluice/audit.jsonl }\n"
                                "watch: false\n"
                                "limits:\n"
                                "  max_head_bytes: 64KiB\n"
                                "  max_headers: 50\n"
                                "  max_connections: 200\n"
                                "timeouts:\n"
                                "  header_read: 5s\n"
                                "  idle: 2m\n"
                                "  connect: 1500\n"
                                "  response_head: 1h\n"
                                "  io_idle: 1m30s\n"
                                "  upstream_idle: 0\n"
                                "  drain: 250ms\n"
                                "policy:\n"
                                "  allow: [\"API.Example.com\", \"*.GitHub.com\", \"10.0.0.0/8\"]\n"
                                "  deny:\n"
                                "    - \"*.pastebin.com\"\n"
                                "    - \"2001:DB8::1\"\n"
                                "  allow_private: true\n"
                                "routes:\n"
                                "  - { host: DB.internal, to: \"10.0.0.5:5432\" }\n"
                                "  - host: \"*.svc.local\"\n"
                                "    to: Gateway.Local\n"
                                "  - { host: v6.internal, to: \"[fd00::1]:443\" }\n";

static void test_every_key(void **state)
{
    (void)state;
    sl_config_t *c = load_ok(full_yaml);
    assert_int_equal(c->n_listen, 2);
    assert_string_equal(c->listen[0].host, "0.0.0.0");
    assert_int_equal(c->listen[0].port, 3128);
    assert_string_equal(c->listen[1].host, "::1");
    assert_int_equal(c->listen[1].port, 3129);
    assert_int_equal(c->workers, 8);
    assert_int_equal(c->log_level, SL_LOG_DEBUG);
    assert_string_equal(c->audit_path, "/var/log/sluice/audit.jsonl");
    assert_false(c->watch);
    assert_int_equal(c->limits.max_head_bytes, 65536);
    assert_int_equal(c->limits.max_headers, 50);
    assert_int_equal(c->limits.max_connections, 200);
    assert_int_equal(c->timeouts.header_read, 5000);
    assert_int_equal(c->timeouts.idle, 120000);
    assert_int_equal(c->timeouts.connect, 1500);
    assert_int_equal(c->timeouts.response_head, 3600000);
    assert_int_equal(c->timeouts.io_idle, 90000);
    assert_int_equal(c->timeouts.upstream_idle, 0);
    assert_int_equal(c->timeouts.drain, 250);
    assert_int_equal(c->policy.n_allow, 3);
    assert_string_equal(c->policy.allow[0], "api.example.com");
    assert_string_equal(c->policy.allow[1], "*.github.com");
    assert_string_equal(c->policy.allow[2], "10.0.0.0/8");
    assert_int_equal(c->policy.n_deny, 2);
    assert_string_equal(c->policy.deny[0], "*.pastebin.com");
    assert_string_equal(c->policy.deny[1], "2001:db8::1");
    assert_true(c->policy.allow_private);
    assert_int_equal(c->n_routes, 3);
    assert_string_equal(c->routes[0].host, "db.internal");
    assert_string_equal(c->routes[0].to_host, "10.0.0.5");
    assert_int_equal(c->routes[0].to_port, 5432);
    assert_string_equal(c->routes[1].host, "*.svc.local");
    assert_string_equal(c->routes[1].to_host, "gateway.local");
    assert_int_equal(c->routes[1].to_port, 0);
    assert_string_equal(c->routes[2].to_host, "fd00::1");
    assert_int_equal(c->routes[2].to_port, 443);
    sl_config_free(c);
}

static void test_partial_sections_keep_defaults(void **state)
{
    (void)state;
    sl_config_t *c = load_ok("limits: { max_headers: 7 }\ntimeouts: { idle: 1s }\n"
                             "policy: { deny: [evil.example] }\n");
    assert_int_equal(c->limits.max_headers, 7);
    assert_int_equal(c->limits.max_head_bytes, 32768);
    assert_int_equal(c->timeouts.idle, 1000);
    assert_int_equal(c->timeouts.connect, 10000);
    assert_int_equal(c->policy.n_deny, 1);
    assert_int_equal(c->policy.n_allow, 0);
    assert_int_equal(c->n_listen, 1);
    sl_config_free(c);
}

static void test_listen_single_string_and_ipv6_canonical(void **state)
{
    (void)state;
    sl_config_t *c = load_ok("listen: \"[0:0:0:0:0:0:0:1]:9000\"\n");
    assert_int_equal(c->n_listen, 1);
    assert_string_equal(c->listen[0].host, "::1");
    assert_int_equal(c->listen[0].port, 9000);
    sl_config_free(c);
    c = load_ok("listen: 127.0.0.1:1\n");
    assert_int_equal(c->listen[0].port, 1);
    sl_config_free(c);
}

static void test_null_sections_are_empty(void **state)
{
    (void)state;
    sl_config_t *c = load_ok("limits:\npolicy:\n  allow:\n  deny: ~\nroutes:\n");
    assert_defaults(c);
    sl_config_free(c);
}

/* ---- errors: exact file:line:col --------------------------------------- */

static void test_error_numbers(void **state)
{
    (void)state;
    expect_error("workers: 65\n", "t.yaml:1:10: workers: 65 is out of range; use 0 to 64");
    expect_error("workers: many\n", "t.yaml:1:10: workers: invalid value \"many\": not a whole "
                                    "number; write decimal digits only");
    expect_error("workers: \"4\"\n", "t.yaml:1:10: workers: expected a whole number, got the "
                                     "quoted string \"4\"; write e.g. `workers: 0`");
    expect_error("workers: [1]\n",
                 "t.yaml:1:10: workers: expected a whole number, got a list; write e.g. "
                 "`workers: 0`");
    expect_error("workers:\n",
                 "t.yaml:1:9: workers: expected a whole number, got an empty value; write e.g. "
                 "`workers: 0`");
    expect_error("workers: -1\n", "t.yaml:1:10: workers: invalid value \"-1\": must not be "
                                  "negative");
    expect_error("workers: 010\n", "t.yaml:1:10: workers: invalid value \"010\": leading zeros "
                                   "are ambiguous (octal in YAML 1.1); drop them");
    expect_error("workers: 99999999999999999999999\n",
                 "t.yaml:1:10: workers: invalid value \"99999999999999999999999\": number too "
                 "large");
    expect_error("limits: { max_headers: 0 }\n",
                 "t.yaml:1:24: limits.max_headers: 0 is out of range; use 1 to 10000");
    expect_error("limits:\n  max_connections: 2000000\n",
                 "t.yaml:2:20: limits.max_connections: 2000000 is out of range; use 1 to 1000000");
}

static void test_error_sizes_and_durations(void **state)
{
    (void)state;
    expect_error("limits:\n  max_head_bytes: 100\n",
                 "t.yaml:2:19: limits.max_head_bytes: 100 is out of range; use 1KiB to 16MiB");
    expect_error("limits:\n  max_head_bytes: 32KB\n",
                 "t.yaml:2:19: limits.max_head_bytes: invalid value \"32KB\": ambiguous unit "
                 "(1000 or 1024?); use KiB, MiB or GiB");
    expect_error("limits:\n  max_head_bytes: 1TiB\n",
                 "t.yaml:2:19: limits.max_head_bytes: invalid value \"1TiB\": unknown size "
                 "unit; use B, KiB, MiB or GiB");
    expect_error("timeouts: { idle: 0 }\n",
                 "t.yaml:1:19: timeouts.idle: 0ms is out of range; use 100ms to 24h");
    expect_error("timeouts:\n  connect: 5 minutes\n",
                 "t.yaml:2:12: timeouts.connect: invalid value \"5 minutes\": not a duration; "
                 "write e.g. 250ms, 10s, 5m, 1h, 1m30s or whole milliseconds");
    expect_error("timeouts:\n  drain: 2h\n",
                 "t.yaml:2:10: timeouts.drain: 2h is out of range; use 0ms to 1h");
    expect_error("timeouts:\n  io_idle: 10d\n",
                 "t.yaml:2:12: timeouts.io_idle: invalid value \"10d\": unknown duration unit; "
                 "use ms, s, m or h");
    expect_error("timeouts:\n  idle: { a: 1 }\n",
                 "t.yaml:2:9: timeouts.idle: expected a duration (250ms, 10s, 5m, 1h), got a "
                 "mapping; write e.g. `idle: 60s`");
}

static void test_error_listen(void **state)
{
    (void)state;
    expect_error("listen: [\"127.0.0.1:0\"]\n",
                 "t.yaml:1:10: listen[0]: invalid value \"127.0.0.1:0\": port must be a number "
                 "from 1 to 65535");
    expect_error("listen:\n  - 127.0.0.1:8080\n  - 127.0.0.1:70000\n",
                 "t.yaml:3:5: listen[1]: invalid value \"127.0.0.1:70000\": port must be a "
                 "number from 1 to 65535");
    expect_error("listen: localhost:8080\n",
                 "t.yaml:1:9: listen[0]: invalid value \"localhost:8080\": not a numeric IPv4 "
                 "address (listeners bind addresses, not names); write e.g. 127.0.0.1:8888");
    expect_error("listen: \"::1:8080\"\n", "t.yaml:1:9: listen[0]: invalid value \"::1:8080\": "
                                           "IPv6 addresses need brackets; write e.g. "
                                           "[::1]:8888");
    expect_error("listen: \"8080\"\n", "t.yaml:1:9: listen[0]: invalid value \"8080\": missing "
                                       "address; write e.g. 127.0.0.1:PORT (0.0.0.0:PORT for "
                                       "all)");
    expect_error("listen: []\n", "t.yaml:1:9: listen: needs at least 1 entry; write e.g. "
                                 "`listen: [\"127.0.0.1:8888\"]`");
    expect_error("listen: { a: 1 }\n", "t.yaml:1:9: listen: expected a list, got a mapping; "
                                       "write e.g. `listen: [\"127.0.0.1:8888\"]`");
    expect_error("listen: [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:1\"]\n",
                 "t.yaml:1:40: listen[2]: '127.0.0.1:1' is listed twice (first at line 1, column "
                 "10); remove one");
}

static void test_error_enum_bool_string(void **state)
{
    (void)state;
    expect_error("log:\n  level: loud\n", "t.yaml:2:10: log.level: invalid value \"loud\": not "
                                          "one of the choices; use one of: debug, info, warn, "
                                          "error");
    expect_error("watch: yes\n", "t.yaml:1:8: watch: invalid value \"yes\": YAML 1.1 booleans "
                                 "are ambiguous; write true or false");
    expect_error("watch: \"true\"\n", "t.yaml:1:8: watch: expected true or false, got the "
                                      "quoted string \"true\"; write e.g. `watch: true`");
    expect_error("policy: { allow_private: 1 }\n",
                 "t.yaml:1:26: policy.allow_private: invalid value \"1\": not a boolean; write "
                 "true or false");
    expect_error("audit: { path: \"\" }\n", "t.yaml:1:16: audit.path: invalid value \"\": empty; "
                                            "write a value or leave the key out");
    expect_error("audit: { path: \"a\\nb\" }\n",
                 "t.yaml:1:16: audit.path: invalid value \"a\\x0ab\": contains a line break; "
                 "write a file path, \"-\" or \"off\"");
    expect_error("audit: { path: \"a\\0b\" }\n", "t.yaml:1:16: audit.path: invalid value "
                                                 "\"a\\x00b\": contains a NUL byte; remove it");
    expect_error("log: info\n", "t.yaml:1:6: log: expected a mapping of `key: value` lines, got "
                                "\"info\"; write e.g. `log: { level: info }`");
}

static void test_error_hostglobs(void **state)
{
    (void)state;
    expect_error("policy:\n  allow: [\"http://x.com/\"]\n",
                 "t.yaml:2:11: policy.allow[0]: invalid value \"http://x.com/\": looks like a "
                 "URL; write only the host (example.com), no scheme or path");
    expect_error("policy:\n  deny: [\"example.*\"]\n",
                 "t.yaml:2:10: policy.deny[0]: invalid value \"example.*\": '*' in the last label "
                 "would match any top-level domain; name the domain");
    expect_error("policy:\n  allow: [\"10.1.2.3/8\"]\n",
                 "t.yaml:2:11: policy.allow[0]: invalid value \"10.1.2.3/8\": address has bits "
                 "set beyond the prefix; write the network address (10.0.0.0/8, not 10.1.2.3/8)");
    expect_error("policy:\n  allow: [ok.com, \"a b.com\"]\n",
                 "t.yaml:2:19: policy.allow[1]: invalid value \"a b.com\": invalid character; "
                 "use letters, digits, '-', '_' and '.' (and '*' in patterns)");
    expect_error("policy:\n  allow: [\"\"]\n",
                 "t.yaml:2:11: policy.allow[0]: invalid value \"\": empty host pattern; write a "
                 "name (example.com), a glob (*.example.com), an IP or a CIDR");
    expect_error("policy:\n  allow: [[a]]\n", "t.yaml:2:11: policy.allow[0]: expected a host "
                                              "pattern, got a list; write e.g. `allow: "
                                              "[\"api.example.com\", \"*.github.com\"]`");
    expect_error("policy:\n  allow: [a.com, A.com]\n",
                 "t.yaml:2:18: policy.allow[1]: 'a.com' is listed twice (first at line 2, column "
                 "11); remove one");
    expect_error("policy:\n  allow: \"a.com\"\n", "t.yaml:2:10: policy.allow: expected a list, got "
                                                  "the quoted string \"a.com\"; write e.g. `allow: "
                                                  "[\"api.example.com\", \"*.github.com\"]`");
}

static void test_error_routes(void **state)
{
    (void)state;
    expect_error("routes:\n  - { host: db.internal }\n",
                 "t.yaml:2:5: routes[0]: missing required key 'to'; add e.g. `to: "
                 "\"10.0.0.5:9000\"`");
    expect_error("routes:\n  - { host: db.internal, to: \"10.0.0.5:0\" }\n",
                 "t.yaml:2:30: routes[0].to: invalid value \"10.0.0.5:0\": port 0 is not a port; "
                 "leave the port out to keep the request's port");
    expect_error("routes:\n  - { host: a, to: \"10.0.0.5:1\", via: x }\n",
                 "t.yaml:2:34: routes[0]: unknown key \"via\"; valid keys here: host, to, ca_file");
    expect_error("routes:\n  - { host: a, to: b }\n  - { host: A, to: c }\n",
                 "t.yaml:3:5: routes[1]: 'a' is listed twice (first at line 2, column 5); remove "
                 "one");
    expect_error("routes:\n  - { host: a, to: \"1.2.3\" }\n",
                 "t.yaml:2:20: routes[0].to: invalid value \"1.2.3\": not a canonical IPv4 "
                 "address; write four decimal numbers a.b.c.d");
    expect_error("routes:\n  - { host: a, host: b, to: c }\n",
                 "t.yaml:2:16: routes[0]: duplicate key 'host' (first at line 2, column 7); "
                 "remove one");
    expect_error("routes: [x]\n",
                 "t.yaml:1:10: routes[0]: expected a mapping with host: and to:, got \"x\"; write "
                 "e.g. `routes: [{ host: db.internal, to: \"10.0.0.5:5432\" }]`");
}

static void test_error_keys(void **state)
{
    (void)state;
    expect_error("wokers: 2\n", "t.yaml:1:1: unknown key \"wokers\"; did you mean 'workers'?");
    expect_error("limits: { max_header: 5 }\n",
                 "t.yaml:1:11: limits: unknown key \"max_header\"; did you mean 'max_headers'?");
    expect_error("max_headers: 5\n",
                 "t.yaml:1:1: unknown key \"max_headers\" here; it belongs under 'limits:'");
    expect_error("zzzzzz: 1\n", "t.yaml:1:1: unknown key \"zzzzzz\"; valid keys here: listen, "
                                "workers, log, audit, watch, limits, timeouts, policy, policies, "
                                "identities, refuse_unknown, routes, inspect, tls, admin, secrets");
    expect_error("workers: 1\nwatch: true\nworkers: 2\n",
                 "t.yaml:3:1: duplicate key 'workers' (first at line 1, column 1); remove one");
    expect_error("limits:\n  max_headers: 1\n  max_headers: 2\n",
                 "t.yaml:3:3: limits: duplicate key 'max_headers' (first at line 2, column 3); "
                 "remove one");
    expect_error("? [a]\n: 1\n", "t.yaml:1:3: keys must be plain names; write `name: value`");
}

static void test_error_document(void **state)
{
    (void)state;
    expect_error("- a\n- b\n", "t.yaml:1:1: the top level must be a mapping of keys (listen:, "
                               "policy:, ...); see docs/configuration.md");
    expect_error("workers: [1\n", "t.yaml:2:1: YAML syntax error: did not find expected ',' or "
                                  "']' while parsing a flow sequence; fix the syntax here");
    expect_error("a: &x 1\nb: *x\n",
                 "t.yaml:2:4: YAML aliases (*name) are not supported; write the value out");
    expect_error("workers: !!str 4\n", "t.yaml:1:10: YAML tags (!name) are not supported; "
                                       "write the plain value");
    expect_error("limits: !!map { max_headers: 4 }\n",
                 "t.yaml:1:9: YAML tags (!name) are not supported; write the plain value");
    expect_error("listen: [\"127.0.0.1:1\", {a: 1}]\n",
                 "t.yaml:1:25: listen[1]: expected an address like \"127.0.0.1:8888\", got a "
                 "mapping; write e.g. `listen: [\"127.0.0.1:8888\"]`");
    expect_error("workers: 1\n---\nworkers: 2\n",
                 "t.yaml:2:1: a second YAML document; keep one document per config file");
    expect_error("workers: 1\nwatch: \xff\n",
                 "t.yaml:2:8: not valid UTF-8 text (invalid leading UTF-8 octet); save the file "
                 "as UTF-8");
    expect_error_part("workers: 1\n\tlisten: []\n", "t.yaml:2:1: YAML syntax error:");
}

static void test_deep_nesting_is_refused_fast(void **state)
{
    (void)state;
    /* libyaml is quadratic in flow depth; the loader must stop early. */
    enum { DEPTH = 200000 };
    char *y = malloc(3 + 2 * DEPTH + 2);
    memcpy(y, "a: ", 3);
    memset(y + 3, '[', DEPTH);
    memset(y + 3 + DEPTH, ']', DEPTH);
    memcpy(y + 3 + 2 * DEPTH, "\n", 2);
    clock_t t0 = clock();
    expect_error(y, "t.yaml:1:67: nested more than 64 levels deep; a sluice config never needs "
                    "that");
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    free(y);
    /* 64 levels are still parsed (and then refused by the schema, not the depth check). */
    char ok[200] = "a: ";
    memset(ok + 3, '[', 63);
    memset(ok + 66, ']', 63);
    ok[129] = '\0';
    expect_error_part(ok, "unknown key \"a\"");
}

static void test_errors_are_collected(void **state)
{
    (void)state;
    char *got = load_bad("workers: 99\n"
                         "log: { level: x }\n"
                         "limits: { max_headers: 0, max_connections: -3 }\n"
                         "policy: { allow: [\"a..b\", ok.com, \"c/d\"] }\n"
                         "routes: [{ host: a }]\n");
    assert_int_equal(count_lines(got), 7);
    assert_non_null(strstr(got, "t.yaml:1:10: workers:"));
    assert_non_null(strstr(got, "t.yaml:2:15: log.level:"));
    assert_non_null(strstr(got, "t.yaml:3:24: limits.max_headers:"));
    assert_non_null(strstr(got, "t.yaml:3:44: limits.max_connections:"));
    assert_non_null(strstr(got, "t.yaml:4:19: policy.allow[0]:"));
    assert_non_null(strstr(got, "t.yaml:4:35: policy.allow[2]:"));
    assert_non_null(strstr(got, "t.yaml:5:10: routes[0]: missing required key 'to'"));
    free(got);
}

static void test_error_flood_is_capped(void **state)
{
    (void)state;
    sl_buf_t y = {0};
    sl_buf_append_str(&y, "policy:\n  allow:\n");
    for (int i = 0; i < 1000; i++)
        sl_buf_append_str(&y, "    - \"bad host\"\n");
    char *got = load_bad(sl_buf_cstr(&y));
    assert_int_equal(count_lines(got), 101);
    assert_non_null(strstr(got, "t.yaml: too many errors"));
    free(got);
    sl_buf_free(&y);
}

/* ---- value parsers ------------------------------------------------------ */

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t ms;
    } ok[] = {{"0", 0},         {"250", 250},           {"250ms", 250},
              {"10s", 10000},   {"5m", 300000},         {"1h", 3600000},
              {"1m30s", 90000}, {"1h1m1s1ms", 3661001}, {"18446744073709551615", UINT64_MAX}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t ms = 1;
        const char *why = sl_cfg_parse_duration(sl_view(ok[i].s, strlen(ok[i].s)), &ms);
        if (why != NULL)
            fail_msg("%s: %s", ok[i].s, why);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *bad[] = {"",    "s",    "-5s",  "1.5s", "10 s", "10sec",
                                "5d",  "1m30", "ms10", "10S",  "0x10", "99999999999999999999h",
                                "010s"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t ms;
        if (sl_cfg_parse_duration(sl_view(bad[i], strlen(bad[i])), &ms) == NULL)
            fail_msg("%s accepted as %llu", bad[i], (unsigned long long)ms);
    }
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t b;
    } ok[] = {{"0", 0},          {"32768", 32768},  {"32KiB", 32768},        {"32 KiB", 32768},
              {"1MiB", 1048576}, {"1mib", 1048576}, {"2GiB", 2147483648ull}, {"100B", 100}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t b = 1;
        const char *why = sl_cfg_parse_size(sl_view(ok[i].s, strlen(ok[i].s)), &b);
        if (why != NULL)
            fail_msg("%s: %s", ok[i].s, why);
        assert_int_equal(b, ok[i].b);
    }
    static const char *bad[] = {
        "",    "KiB", "-1", "1.5MiB", "32KB", "1k", "1TiB", "32KiBx", "99999999999999999999GiB",
        "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t b;
        if (sl_cfg_parse_size(sl_view(bad[i], strlen(bad[i])), &b) == NULL)
            fail_msg("%s accepted as %llu", bad[i], (unsigned long long)b);
    }
}

static void test_hostglob_check(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {{"example.com", "example.com"},
              {"EXAMPLE.Com", "example.com"},
              {"*", "*"},
              {"*.example.com", "*.example.com"},
              {"api.*.example.com", "api.*.example.com"},
              {"api-*.example.com", "api-*.example.com"},
              {"_dmarc.example.com", "_dmarc.example.com"},
              {"localhost", "localhost"},
              {"10.1.2.3", "10.1.2.3"},
              {"10.0.0.0/8", "10.0.0.0/8"},
              {"0.0.0.0/0", "0.0.0.0/0"},
              {"::1", "::1"},
              {"FC00::/7", "fc00::/7"},
              {"2001:0db8:0000::/32", "2001:db8::/32"},
              {"*.com", "*.com"}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char out[SL_CFG_HOST_MAX];
        const char *why = sl_cfg_check_hostglob(sl_view(ok[i].in, strlen(ok[i].in)), out);
        if (why != NULL)
            fail_msg("%s: %s", ok[i].in, why);
        assert_string_equal(out, ok[i].out);
    }
    static const char *bad[] = {"",
                                ".example.com",
                                "example.com.",
                                "a..b",
                                "**.example.com",
                                "*.*",
                                "example.*",
                                "a*",
                                "https://example.com",
                                "example.com/path",
                                "example.com:443",
                                "[::1]",
                                "a b",
                                "ex!ample.com",
                                "-a.com",
                                "a-.com",
                                "1.2.3",
                                "127.1",
                                "0x7f.0.0.1",
                                "256.1.1.1",
                                "10.0.0.0/33",
                                "10.0.0.1/8",
                                "::1/129",
                                "*.10.0.0.0/8",
                                "10.0.0.0/",
                                "fe80::1%eth0",
                                "\xc3\xa9xample.com"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char out[SL_CFG_HOST_MAX];
        if (sl_cfg_check_hostglob(sl_view(bad[i], strlen(bad[i])), out) == NULL)
            fail_msg("'%s' accepted as %s", bad[i], out);
    }
    char big[400];
    memset(big, 'a', sizeof big);
    char out[SL_CFG_HOST_MAX];
    assert_non_null(sl_cfg_check_hostglob(sl_view(big, sizeof big), out));
    memset(big, 'a', 64);
    memcpy(big + 64, ".com", 4);
    assert_non_null(sl_cfg_check_hostglob(sl_view(big, 68), out)); /* label > 63 */
    assert_null(sl_cfg_check_hostglob(sl_view(big + 1, 67), out)); /* label = 63 */
}

static void test_targets_and_listen(void **state)
{
    (void)state;
    static const struct {
        const char *in, *host;
        uint16_t port;
    } ok[] = {{"10.0.0.5:9000", "10.0.0.5", 9000},
              {"10.0.0.5", "10.0.0.5", 0},
              {"Svc.Internal:443", "svc.internal", 443},
              {"svc", "svc", 0},
              {"[fd00::1]:8443", "fd00::1", 8443},
              {"[fd00::1]", "fd00::1", 0},
              {"fd00::1", "fd00::1", 0}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char host[SL_CFG_HOST_MAX];
        uint16_t port = 99;
        const char *why = sl_cfg_parse_target(sl_view(ok[i].in, strlen(ok[i].in)), host, &port);
        if (why != NULL)
            fail_msg("%s: %s", ok[i].in, why);
        assert_string_equal(host, ok[i].host);
        assert_int_equal(port, ok[i].port);
    }
    static const char *bad_target[] = {"",        ":80",  "a:0",    "a:65536",      "a:x",
                                       "*.a:80",  "[::1", "[::1]x", "fd00::1:80:x", "1.2.3:80",
                                       "a..b:80", "a:"};
    for (size_t i = 0; i < sizeof bad_target / sizeof *bad_target; i++) {
        char host[SL_CFG_HOST_MAX];
        uint16_t port;
        const char *s = bad_target[i];
        if (sl_cfg_parse_target(sl_view(s, strlen(s)), host, &port) == NULL)
            fail_msg("target '%s' accepted", s);
    }
    static const char *bad_listen[] = {"",           "127.0.0.1",    "127.0.0.1:",
                                       ":8080",      "127.0.0.1:0",  "127.0.0.1:65536",
                                       "[::1]",      "[::1]:",       "::1:80",
                                       "host:80",    "127.1:80",     "127.0.0.1:+80",
                                       "1.2.3.4:8x", "[1.2.3.4]:80", "127.0.0.1:123456"};
    for (size_t i = 0; i < sizeof bad_listen / sizeof *bad_listen; i++) {
        char host[SL_CFG_HOST_MAX];
        uint16_t port;
        const char *s = bad_listen[i];
        if (sl_cfg_parse_listen(sl_view(s, strlen(s)), host, &port) == NULL)
            fail_msg("listen '%s' accepted", s);
    }
    char host[SL_CFG_HOST_MAX];
    uint16_t port;
    assert_null(sl_cfg_parse_listen(SL_VIEW_LIT("0.0.0.0:65535"), host, &port));
    assert_string_equal(host, "0.0.0.0");
    assert_int_equal(port, 65535);
}

/* ---- files and the check command --------------------------------------- */

static void test_inspect_response_actions(void **state)
{
    (void)state;
    sl_config_t *c = load_ok("workers: 1\n");
    assert_int_equal(c->inspect.response_action, 0); /* SL_ACT_BLOCK */
    assert_int_equal(c->inspect.n_redact, 0);
    sl_config_free(c);
    c = load_ok("inspect:\n  redact: [inj-ignore-previous-instructions]\n"
                "  response_action: warn\n");
    assert_int_equal(c->inspect.response_action, 2); /* SL_ACT_WARN */
    assert_int_equal(c->inspect.n_redact, 1);
    assert_string_equal(c->inspect.redact[0], "inj-ignore-previous-instructions");
    sl_config_free(c);
    c = load_ok("inspect: { response_action: redact }\n");
    assert_int_equal(c->inspect.response_action, 1); /* SL_ACT_REDACT */
    sl_config_free(c);
    expect_error_part("inspect: { response_action: off }\n",
                      "t.yaml:1:29: inspect.response_action: invalid value \"off\"");
    expect_error_part("inspect: { redact: [\"bad id\"] }\n", "t.yaml:1:21:");
}

static void test_load_file(void **state)
{
    (void)state;
    sl_buf_t err = {0};
    assert_null(sl_config_load_file("tests/unit/does-not-exist.yaml", &err));
    assert_non_null(strstr(sl_buf_cstr(&err), "tests/unit/does-not-exist.yaml: cannot open: "));
    sl_buf_free(&err);

    char path[] = "/tmp/sluice-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("workers: 3\nlimits: { max_headers: 0 }\n", f);
    fclose(f);
    assert_null(sl_config_load_file(path, &err));
    char want[128];
    snprintf(want, sizeof want, "%s:2:24: limits.max_headers: 0 is out of range", path);
    assert_non_null(strstr(sl_buf_cstr(&err), want));
    sl_buf_reset(&err);

    f = fopen(path, "w");
    fputs("workers: 3\n", f);
    fclose(f);
    sl_config_t *c = sl_config_load_file(path, &err);
    assert_non_null(c);
    assert_string_equal(c->path, path);
    assert_int_equal(c->workers, 3);
    sl_config_free(c);
    unlink(path);
    sl_buf_free(&err);
}

static void test_identities_and_policies(void **state)
{
    sl_config_t *cfg = load_ok("listen: [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n"
                               "policies:\n"
                               "  - name: ro\n"
                               "    rules: [{ host: \"*.github.com\", methods: [get, head], "
                               "paths: [\"/repos/\"], ports: [443] }]\n"
                               "    approval: { hosts: [api.github.com], timeout: 5s }\n"
                               "    rate_limit: { requests: 10, per_host: 5, window: 1s }\n"
                               "identities:\n"
                               "  - { name: a, tenant: t1, labels: [\"team=x\"], policy: ro, "
                               "listen: [\"127.0.0.1:2\"], sources: [\"10.0.0.0/8\"] }\n"
                               "refuse_unknown: true\n");
    assert_int_equal(cfg->n_policies, 1);
    assert_string_equal(cfg->policies[0].name, "ro");
    assert_int_equal(cfg->policies[0].n_rules, 1);
    assert_string_equal(cfg->policies[0].rules[0].methods[0], "GET");
    assert_string_equal(cfg->policies[0].rules[0].ports[0], "443");
    assert_int_equal(cfg->policies[0].approval.timeout, 5000);
    assert_int_equal(cfg->policies[0].rate_limit.per_host, 5);
    assert_int_equal(cfg->n_identities, 1);
    assert_string_equal(cfg->identities[0].policy, "ro");
    assert_true(cfg->refuse_unknown);
    sl_config_free(cfg);

    expect_error("identities:\n  - { name: a, policy: nope }\n",
                 "t.yaml:2:24: identities[0].policy: no policy named \"nope\"; define it under "
                 "`policies:` or use \"default\"");
    expect_error("identities:\n  - { name: a, listen: [\"127.0.0.1:9\"] }\n",
                 "t.yaml:2:25: identities[0].listen: \"127.0.0.1:9\" is not one of the `listen` "
                 "addresses; add it there first");
    expect_error_part("policies: [{ name: default }]\n", "\"default\" is the top-level");
    expect_error_part("policies: [{ name: p, rules: [{ host: a.com, ports: [0] }] }]\n",
                      "a port is a number from 1 to 65535");
    expect_error_part("policies: [{ name: p, rules: [{ host: a.com, paths: [\"x\"] }] }]\n",
                      "a path must start with '/'");
    expect_error_part("identities: [{ name: a, sources: [\"10.0.0.1/8\"] }]\n",
                      "not an address or CIDR");
    expect_error_part("identities: [{ name: a, proxy_auth: { user: a } }]\n", "password_env");
}

static void test_examples_load(void **state)
{
    (void)state;
    static const char *examples[] = {"examples/minimal.yaml", "examples/full.yaml",
                                     "examples/private-services.yaml"};
    for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
        sl_buf_t err = {0};
        sl_config_t *c = sl_config_load_file(examples[i], &err);
        if (c == NULL)
            fail_msg("%s:\n%s", examples[i], sl_buf_cstr(&err));
        sl_config_free(c);
        sl_buf_free(&err);
    }
}

static void test_summary(void **state)
{
    (void)state;
    sl_config_t *c = load_ok(full_yaml);
    sl_buf_t s = {0};
    sl_config_summary(c, &s);
    assert_string_equal(sl_buf_cstr(&s), "2 listeners (0.0.0.0:3128, [::1]:3129), 3 routes, 3 "
                                         "allow, 2 deny, private addresses allowed, workers 8");
    sl_buf_free(&s);
    sl_config_free(c);
}

/* Run the command with stdout and stderr sent to /dev/null, to keep the test
 * log readable. */
static int run_check(int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), err = dup(2);
    int null = open("/dev/null", O_WRONLY);
    assert_true(out >= 0 && err >= 0 && null >= 0);
    dup2(null, 1);
    dup2(null, 2);
    close(null);
    int rc = sl_cmd_check(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(err, 2);
    close(out);
    close(err);
    return rc;
}

static void test_check_command(void **state)
{
    (void)state;
    char *ok[] = {"check", "-c", "examples/full.yaml", NULL};
    assert_int_equal(run_check(3, ok), 0);
    char *missing[] = {"check", "-c", "tests/unit/does-not-exist.yaml", NULL};
    assert_int_equal(run_check(3, missing), 1);
    char *none[] = {"check", NULL};
    assert_int_equal(run_check(1, none), 2);
    char *dangling[] = {"check", "-c", NULL};
    assert_int_equal(run_check(2, dangling), 2);
    char *extra[] = {"check", "-c", "a", "b", NULL};
    assert_int_equal(run_check(4, extra), 2);
    char *help[] = {"check", "--help", NULL};
    assert_int_equal(run_check(2, help), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default),
        cmocka_unit_test(test_default_yaml_loads_by_itself),
        cmocka_unit_test(test_empty_file_is_defaults),
        cmocka_unit_test(test_every_key),
        cmocka_unit_test(test_partial_sections_keep_defaults),
        cmocka_unit_test(test_listen_single_string_and_ipv6_canonical),
        cmocka_unit_test(test_null_sections_are_empty),
        cmocka_unit_test(test_error_numbers),
        cmocka_unit_test(test_error_sizes_and_durations),
        cmocka_unit_test(test_error_listen),
        cmocka_unit_test(test_error_enum_bool_string),
        cmocka_unit_test(test_error_hostglobs),
        cmocka_unit_test(test_error_routes),
        cmocka_unit_test(test_error_keys),
        cmocka_unit_test(test_identities_and_policies),
        cmocka_unit_test(test_error_document),
        cmocka_unit_test(test_deep_nesting_is_refused_fast),
        cmocka_unit_test(test_errors_are_collected),
        cmocka_unit_test(test_error_flood_is_capped),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_hostglob_check),
        cmocka_unit_test(test_targets_and_listen),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_examples_load),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_check_command),
        cmocka_unit_test(test_inspect_response_actions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
