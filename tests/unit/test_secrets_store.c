/* Secrets: the config section, loading sources, the store's error paths
 * (none may print a value), rotation and wiping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>
#include <unistd.h>

#include "test_secrets_helpers.h"

#define VALUE "sk-test-REALVALUE-0123456789abcdef"

static char *load_bad(const char *yaml)
{
    sl_buf_t err = {0};
    sl_config_t *c = sl_config_load_string(yaml, strlen(yaml), "t.yaml", &err);
    if (c != NULL) {
        sl_config_free(c);
        fail_msg("expected a config error for:\n%s", yaml);
    }
    return sl_buf_cstr(&err);
}

static void expect_cfg_error(const char *yaml, const char *want)
{
    char *got = load_bad(yaml);
    if (strstr(got, want) == NULL)
        fail_msg("want part: %s\ngot: %s", want, got);
    free(got);
}

/* ---- config ------------------------------------------------------------ */

static void test_config_minimal_defaults(void **state)
{
    (void)state;
    sl_config_t *c = th_cfg("secrets:\n"
                            "  - name: openai\n"
                            "    source: { env: OPENAI_API_KEY }\n"
                            "    hosts: [api.openai.com]\n");
    assert_int_equal(c->n_secrets, 1);
    const sl_secret_cfg_t *s = &c->secrets[0];
    assert_string_equal(s->name, "openai");
    assert_string_equal(s->env, "OPENAI_API_KEY");
    assert_null(s->file);
    assert_int_equal(s->replace_in, SL_SECRET_IN_HEADERS);
    assert_null(s->inject_header);
    assert_false(s->require);
    char ph[SL_SECRET_PLACEHOLDER_MAX + 1];
    sl_config_secret_placeholder("openai", ph);
    assert_string_equal(s->placeholder, ph);
    assert_true(strncmp(ph, "sluice-ph-openai-", 17) == 0);
    assert_int_equal(strlen(ph), 17 + 16);
    sl_config_free(c);
}

static void test_config_full_entry(void **state)
{
    (void)state;
    sl_config_t *c = th_cfg("secrets:\n"
                            "  - name: gh\n"
                            "    source: { file: /run/secrets/gh }\n"
                            "    placeholder: SLUICE_PLACEHOLDER_GH\n"
                            "    hosts: [api.github.com, '*.githubusercontent.com']\n"
                            "    methods: [GET, post]\n"
                            "    paths: ['/repos/', '/user']\n"
                            "    identities: [agent-1]\n"
                            "    replace_in: [headers, query, path, body]\n"
                            "    inject: { header: Authorization }\n"
                            "    require: true\n");
    const sl_secret_cfg_t *s = &c->secrets[0];
    assert_string_equal(s->file, "/run/secrets/gh");
    assert_int_equal(s->n_hosts, 2);
    assert_string_equal(s->hosts[1], "*.githubusercontent.com");
    assert_int_equal(s->n_methods, 2);
    assert_string_equal(s->methods[1], "POST");
    assert_int_equal(s->n_paths, 2);
    assert_int_equal(s->n_identities, 1);
    assert_int_equal(s->replace_in, SL_SECRET_IN_HEADERS | SL_SECRET_IN_QUERY | SL_SECRET_IN_PATH |
                                        SL_SECRET_IN_BODY);
    assert_string_equal(s->inject_header, "Authorization");
    assert_string_equal(s->inject_template, "{secret}");
    assert_true(s->require);
    sl_config_free(c);
}

static void test_config_errors(void **state)
{
    (void)state;
#define HEAD "secrets:\n  - name: a\n    hosts: [x.com]\n"
    expect_cfg_error("secrets:\n  - name: a\n    hosts: [x.com]\n",
                     "secrets[0]: missing required key 'source'");
    expect_cfg_error(HEAD "    source: { env: A, file: /f }\n",
                     "secrets[0].source: give exactly one of env: or file:");
    expect_cfg_error(HEAD "    source: {}\n", "give exactly one of env: or file:");
    expect_cfg_error(HEAD "    source: { env: 'A B' }\n", "an environment variable name is");
    expect_cfg_error("secrets:\n  - name: Bad\n    source: { env: A }\n    hosts: [x]\n",
                     "1-64 characters of [a-z0-9_-]");
    expect_cfg_error("secrets:\n  - name: a\n    source: { env: A }\n    hosts: []\n",
                     "secrets[0].hosts: needs at least 1 entry");
    expect_cfg_error("secrets:\n  - name: a\n    source: { env: A }\n",
                     "missing required key 'hosts'");
    expect_cfg_error(HEAD "    source: { env: A }\n    placeholder: short\n",
                     "shorter than 8 bytes");
    expect_cfg_error(HEAD "    source: { env: A }\n    placeholder: 'has space in it'\n",
                     "must read the same in a URL");
    expect_cfg_error(HEAD "    source: { env: A }\n    methods: ['GE T']\n", "not an HTTP method");
    expect_cfg_error(HEAD "    source: { env: A }\n    paths: [v1]\n", "must start with '/'");
    expect_cfg_error(HEAD "    source: { env: A }\n    identities: [Agent]\n", "identity name");
    expect_cfg_error(HEAD "    source: { env: A }\n    replace_in: [headers, cookies]\n",
                     "not a location");
    expect_cfg_error(HEAD "    source: { env: A }\n    replace_in: [query, query]\n",
                     "listed twice");
    expect_cfg_error(HEAD "    source: { env: A }\n    inject: { header: Host }\n",
                     "framing or hop-by-hop");
    expect_cfg_error(HEAD "    source: { env: A }\n    inject: { header: X, template: 'Bearer' }\n",
                     "has no {secret}");
    expect_cfg_error(HEAD "    source: { env: A }\n"
                          "    inject: { header: X, template: '{secret}{secret}' }\n",
                     "has {secret} twice");
    expect_cfg_error(HEAD "    source: { env: A }\n    inject: { template: 'B {secret}' }\n",
                     "missing required key 'header'");
#undef HEAD
}

static void test_config_names_and_placeholders_unique(void **state)
{
    (void)state;
    expect_cfg_error("secrets:\n"
                     "  - { name: a, source: { env: A }, hosts: [x.com] }\n"
                     "  - { name: a, source: { env: B }, hosts: [y.com] }\n",
                     "'a' is listed twice");
    expect_cfg_error(
        "secrets:\n"
        "  - { name: a, source: { env: A }, hosts: [x.com], placeholder: PH_SAME_1 }\n"
        "  - { name: b, source: { env: B }, hosts: [y.com], placeholder: PH_SAME_1 }\n",
        "secrets[1].placeholder: placeholder equals the placeholder of secret 'a'");
    expect_cfg_error(
        "secrets:\n"
        "  - { name: a, source: { env: A }, hosts: [x.com], placeholder: PH_SAME_1 }\n"
        "  - { name: b, source: { env: B }, hosts: [y.com], placeholder: XPH_SAME_1X }\n",
        "overlaps the placeholder of secret 'a'");
    /* Generated placeholders of names that prefix each other do not overlap. */
    sl_config_t *c = th_cfg("secrets:\n"
                            "  - { name: open, source: { env: A }, hosts: [x.com] }\n"
                            "  - { name: openai, source: { env: B }, hosts: [y.com] }\n");
    assert_null(strstr(c->secrets[1].placeholder, c->secrets[0].placeholder));
    sl_config_free(c);
}

/* ---- store ------------------------------------------------------------- */

static const char store_yaml[] = "secrets:\n"
                                 "  - name: openai\n"
                                 "    source: { env: SL_TEST_OPENAI }\n"
                                 "    placeholder: SLUICE_PH_OPENAI\n"
                                 "    hosts: [api.openai.com]\n";

static void test_store_loads_env(void **state)
{
    (void)state;
    setenv("SL_TEST_OPENAI", VALUE, 1);
    sl_secret_store_t *s = th_store(store_yaml);
    assert_int_equal(sl_secret_store_count(s), 1);
    assert_string_equal(sl_secret_store_name(s, 0), "openai");
    assert_string_equal(sl_secret_store_placeholder(s, 0), "SLUICE_PH_OPENAI");
    assert_null(sl_secret_store_name(s, 1));
    sl_buf_t env = {0};
    sl_secret_store_sandbox_env(s, &env);
    assert_string_equal(sl_buf_cstr(&env), "SL_TEST_OPENAI=SLUICE_PH_OPENAI\n");
    sl_buf_free(&env);
    sl_secret_store_unref(s);
}

static char tmpdir[64];

static const char *write_file(const char *name, const char *content, size_t n)
{
    static char path[128];
    if (tmpdir[0] == '\0') {
        strcpy(tmpdir, "/tmp/sl-secrets-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
    }
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, n, f), n);
    fclose(f);
    return path;
}

static sl_secret_store_t *store_from_file(const char *path, sl_buf_t *err)
{
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "secrets:\n  - { name: f, source: { file: \"%s\" }, hosts: [x.com], "
             "placeholder: SLUICE_PH_FILE }\n",
             path);
    sl_config_t *c = th_cfg(yaml);
    sl_secret_store_t *s = sl_secret_store_new(c->secrets, c->n_secrets, err);
    sl_config_free(c);
    return s;
}

static void test_store_file_trailing_newline(void **state)
{
    (void)state;
    sl_buf_t err = {0};
    const char *p = write_file("nl", VALUE "\n", sizeof VALUE);
    sl_secret_store_t *s = store_from_file(p, &err);
    assert_non_null(s);
    /* The stripped value is what gets redacted: with the newline kept, a
     * bare echo of the value would not match. */
    assert_true(th_has_value(s, VALUE));
    sl_secret_store_unref(s);
    sl_buf_free(&err);
}

/* Every error path, with a known value in reach: the value never appears in
 * the error text. Also checks each error names the secret and the source. */
static void test_store_errors_never_print_value(void **state)
{
    (void)state;
    struct {
        const char *yaml;
        const char *env_value; /* set SL_TEST_V to this, or NULL to unset */
        const char *want;
    } cases[] = {
        {"secrets:\n  - { name: e, source: { env: SL_TEST_V }, hosts: [x.com] }\n", NULL,
         "secret 'e': environment variable SL_TEST_V is not set"},
        {"secrets:\n  - { name: e, source: { env: SL_TEST_V }, hosts: [x.com] }\n", "",
         "secret 'e': environment variable SL_TEST_V is empty"},
        {"secrets:\n  - { name: e, source: { env: SL_TEST_V }, hosts: [x.com] }\n",
         VALUE "\n" VALUE, "contains a line break or NUL"},
        {"secrets:\n  - { name: e, source: { env: SL_TEST_V }, hosts: [x.com] }\n", VALUE "\r",
         "contains a line break or NUL"},
        {"secrets:\n  - { name: e, source: { env: SL_TEST_V }, hosts: [x.com] }\n", "sk-1",
         "shorter than 8 bytes"},
        {"secrets:\n  - { name: e, source: { env: SL_TEST_V }, hosts: [x.com], "
         "placeholder: " VALUE " }\n",
         VALUE, "secret 'e': the placeholder equals or contains the real value"},
        {"secrets:\n  - { name: e, source: { env: SL_TEST_V }, hosts: [x.com], "
         "placeholder: X" VALUE "X }\n",
         VALUE, "the placeholder equals or contains the real value"},
        {"secrets:\n  - { name: e, source: { env: SL_TEST_V }, hosts: [x.com] }\n"
         "  - { name: f, source: { env: SL_TEST_W }, hosts: [x.com], placeholder: "
         "PH_" VALUE " }\n",
         VALUE, "secret 'f': the placeholder contains the value of secret 'e'"},
        {"secrets:\n  - { name: e, source: { file: /nonexistent/sl-test }, hosts: [x.com] }\n",
         VALUE, "secret 'e': cannot open file /nonexistent/sl-test"},
        {"secrets:\n  - { name: e, source: { file: /tmp }, hosts: [x.com] }\n", VALUE,
         "secret 'e': /tmp is not a regular file"},
    };
    setenv("SL_TEST_W", "another-value-of-w-12345", 1);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        if (cases[i].env_value)
            setenv("SL_TEST_V", cases[i].env_value, 1);
        else
            unsetenv("SL_TEST_V");
        sl_config_t *c = th_cfg(cases[i].yaml);
        sl_buf_t err = {0};
        sl_secret_store_t *s = sl_secret_store_new(c->secrets, c->n_secrets, &err);
        sl_config_free(c);
        if (s != NULL)
            fail_msg("case %zu: expected a store error", i);
        const char *text = sl_buf_cstr(&err);
        if (strstr(text, cases[i].want) == NULL)
            fail_msg("case %zu: want part: %s\ngot: %s", i, cases[i].want, text);
        assert_null(strstr(text, VALUE));
        assert_null(strstr(text, "another-value-of-w"));
        assert_null(strstr(text, "sk-1"));
        sl_buf_free(&err);
    }
    /* File sources: empty, only a newline, too long, with a NUL. */
    const char *contents[][2] = {{"", "is empty"},
                                 {"\n", "is empty"},
                                 {VALUE "\0" VALUE, "line break or NUL"},
                                 {VALUE "\n\n", "line break or NUL"}};
    size_t lens[] = {0, 1, 2 * sizeof VALUE - 1, sizeof VALUE + 1};
    for (size_t i = 0; i < 4; i++) {
        sl_buf_t err = {0};
        const char *p = write_file("bad", contents[i][0], lens[i]);
        assert_null(store_from_file(p, &err));
        const char *text = sl_buf_cstr(&err);
        if (strstr(text, contents[i][1]) == NULL || strstr(text, "secret 'f'") == NULL ||
            strstr(text, p) == NULL)
            fail_msg("file case %zu: got: %s", i, text);
        assert_null(strstr(text, VALUE));
        sl_buf_free(&err);
    }
    char big[SL_SECRET_VALUE_MAX + 10];
    memset(big, 'k', sizeof big);
    sl_buf_t err = {0};
    assert_null(store_from_file(write_file("big", big, sizeof big), &err));
    assert_non_null(strstr(sl_buf_cstr(&err), "longer than"));
    assert_null(strstr(sl_buf_cstr(&err), "kkkkkkkk"));
    sl_buf_free(&err);
}

/* ---- rotation and wiping ----------------------------------------------- */

static size_t wiped_calls, wiped_nonzero, wiped_bytes;

static void wipe_hook(const unsigned char *p, size_t n)
{
    wiped_calls++;
    wiped_bytes += n;
    for (size_t i = 0; i < n; i++)
        wiped_nonzero += p[i] != 0;
}

static void test_rotation_wipes_old_store(void **state)
{
    (void)state;
    const char *p = write_file("rot", "first-value-0000000001", 22);
    sl_buf_t err = {0};
    sl_secret_store_t *old = store_from_file(p, &err);
    assert_non_null(old);
    assert_true(th_has_value(old, "first-value-0000000001"));
    /* An in-flight request holds a reference across the swap. */
    sl_secret_store_t *inflight = sl_secret_store_ref(old);

    write_file("rot", "second-value-000000002\n", 23);
    sl_secret_store_t *cur = store_from_file(p, &err);
    assert_non_null(cur);
    assert_true(th_has_value(cur, "second-value-000000002"));
    assert_false(th_has_value(cur, "first-value-0000000001"));

    wiped_calls = wiped_nonzero = wiped_bytes = 0;
    sl_secret_store_wipe_hook = wipe_hook;
    sl_secret_store_unref(old); /* the swap drops the gateway's reference */
    assert_int_equal(wiped_calls, 0);
    /* Still usable by the request that started under it. */
    assert_true(th_has_value(inflight, "first-value-0000000001"));
    sl_secret_store_unref(inflight);
    assert_int_equal(wiped_calls, 1);
    assert_true(wiped_bytes >= 4096);
    assert_int_equal(wiped_nonzero, 0);
    sl_secret_store_unref(cur);
    assert_int_equal(wiped_calls, 2);
    sl_secret_store_wipe_hook = NULL;
    sl_buf_free(&err);
}

static void test_empty_store(void **state)
{
    (void)state;
    sl_buf_t err = {0};
    sl_secret_store_t *s = sl_secret_store_new(NULL, 0, &err);
    assert_non_null(s);
    assert_int_equal(sl_secret_store_count(s), 0);
    assert_true(sl_secret_store_locked(s));
    sl_secret_store_unref(s);
    sl_secret_store_unref(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_minimal_defaults),
        cmocka_unit_test(test_config_full_entry),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_names_and_placeholders_unique),
        cmocka_unit_test(test_store_loads_env),
        cmocka_unit_test(test_store_file_trailing_newline),
        cmocka_unit_test(test_store_errors_never_print_value),
        cmocka_unit_test(test_rotation_wipes_old_store),
        cmocka_unit_test(test_empty_store),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (tmpdir[0] != '\0') {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            rc = rc ? rc : 1;
    }
    return rc;
}
