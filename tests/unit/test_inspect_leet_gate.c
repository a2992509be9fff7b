/* sl_leet's return value gates the leet-folded database pass: leetspeak
 * words turn it on, numbers alone do not; the folding itself is unchanged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "inspect/normalize.h"

static bool leet(const char *s, char *out)
{
    return sl_leet(s, strlen(s), out);
}

static void numbers_do_not_count(void **state)
{
    (void)state;
    char out[128] = {0};
    assert_false(leet("on 2024-01-10 at 10:30, paid $150.75 (45%) for 3 items", out));
    /* The bytes are still folded: a word next to them may need it. */
    assert_string_equal(out, "on 2o2a-oi-io at io:eo, paid siso.ts (as%) for e items");
    assert_false(leet("sha256 base64 1337 @ $", out));
    assert_false(leet("plain words only, nothing to fold here at all", out));
}

static void leet_words_count(void **state)
{
    (void)state;
    char out[128] = {0};
    assert_true(leet("x 1gn0r3 4ll", out));
    assert_string_equal(out, "x ignore all");
    /* At either end of a word, and past the word-at-a-time fast path. */
    assert_true(leet("numbers 2024 and 10:30 then pr3", out));
    assert_true(leet("4ll", out));
    assert_true(leet("abcdefghijklmnopqrstuvw k3", out));
    assert_true(leet("@dmin", out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numbers_do_not_count),
        cmocka_unit_test(leet_words_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
