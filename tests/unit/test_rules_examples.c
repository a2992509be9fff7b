/* Every rule's own examples hold: each `match` string yields a finding of
 * that rule, each `no_match` string none. Runs over the repo's rules/ (passes
 * trivially when it has no files) and over the engine's fixture rules. Each
 * broken example is printed with its rule id and file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "inspect/rules.h"

static bool has_rule(const sl_findings_t *f, const char *id)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].rule_id, id) == 0)
            return true;
    return false;
}

/* Returns the number of failing examples. */
static int check_examples(const sl_ruleset_t *rs)
{
    int bad = 0;
    sl_findings_t f = {0};
    for (size_t i = 0; i < rs->n; i++) {
        const sl_rule_t *r = &rs->rules[i];
        for (size_t k = 0; k < r->n_match + r->n_no_match; k++) {
            bool want = k < r->n_match;
            const char *ex = want ? r->ex_match[k] : r->ex_no_match[k - r->n_match];
            sl_findings_reset(&f);
            sl_inspect_scan(rs, SL_SURF_ALL, ex, strlen(ex), &f);
            if (has_rule(&f, r->info.id) != want) {
                fprintf(stderr, "%s:%u: rule '%s': %s example %zu %s: \"%.80s\"\n", r->info.file,
                        r->info.line, r->info.id, want ? "match" : "no_match",
                        want ? k : k - r->n_match, want ? "did not match" : "matched", ex);
                bad++;
            }
        }
    }
    sl_findings_free(&f);
    return bad;
}

static void repo_rules(void **state)
{
    (void)state;
    struct stat st;
    if (stat("rules", &st) == -1) {
        fprintf(stderr, "no rules/ directory: nothing to check\n");
        return;
    }
    const char *paths[] = {"rules"};
    sl_ruleset_opts_t o = {.no_embedded = true, .paths = paths, .n_paths = 1};
    sl_buf_t err = {0};
    sl_ruleset_t *rs = sl_ruleset_load(&o, &err);
    if (!rs)
        fprintf(stderr, "%s", sl_buf_cstr(&err));
    assert_non_null(rs);
    fprintf(stderr, "rules/: %zu rules\n", sl_ruleset_count(rs));
    assert_int_equal(check_examples(rs), 0);
    sl_ruleset_unref(rs);
    sl_buf_free(&err);
}

static void fixture_rules(void **state)
{
    (void)state;
    const char *paths[] = {"tests/unit/rules-fixtures"};
    sl_ruleset_opts_t o = {.no_embedded = true, .paths = paths, .n_paths = 1};
    sl_buf_t err = {0};
    sl_ruleset_t *rs = sl_ruleset_load(&o, &err);
    if (!rs)
        fprintf(stderr, "%s", sl_buf_cstr(&err));
    assert_non_null(rs);
    assert_true(sl_ruleset_count(rs) >= 16);
    assert_int_equal(check_examples(rs), 0);
    sl_ruleset_unref(rs);
    sl_buf_free(&err);
}

/* The checker itself can fail: a rule whose examples are wrong both ways. */
static void broken_examples_are_reported(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-examples-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    static const char text[] = "rules:\n"
                               "  - id: wrong-examples\n"
                               "    description: examples that do not hold\n"
                               "    category: credential\n"
                               "    severity: low\n"
                               "    pattern: 'abc[0-9]{3}'\n"
                               "    examples:\n"
                               "      match: [\"abc12\", \"abc123\"]\n"
                               "      no_match: [\"xabc999\"]\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    const char *paths[] = {path};
    sl_ruleset_opts_t o = {.no_embedded = true, .paths = paths, .n_paths = 1};
    sl_buf_t err = {0};
    sl_ruleset_t *rs = sl_ruleset_load(&o, &err);
    unlink(path);
    assert_non_null(rs);
    assert_int_equal(check_examples(rs), 2);
    sl_ruleset_unref(rs);
    sl_buf_free(&err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(broken_examples_are_reported),
        cmocka_unit_test(fixture_rules),
        cmocka_unit_test(repo_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
