/* Unit tests for the server-sent events splitter (src/http/sse.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http/sse.h"

/* Split `in` fed in pieces of `step` bytes (0 = all at once); record the
 * raw bytes of all events back to back and each event's data, "|"-joined. */
static int split(const char *in, size_t n, size_t step, sl_buf_t *raws, sl_buf_t *datas,
                 bool finish)
{
    sl_sse_t s;
    sl_sse_init(&s, 0);
    int events = 0;
    size_t off = 0;
    do {
        size_t k = step && n - off > step ? step : n - off;
        sl_sse_feed(&s, in + off, k);
        off += k;
        sl_sse_event_t ev;
        int r;
        while ((r = sl_sse_next(&s, &ev)) == 1) {
            sl_buf_append(raws, ev.raw.p, ev.raw.n);
            if (ev.has_data) {
                sl_buf_append(datas, ev.data.p, ev.data.n);
                sl_buf_append(datas, "|", 1);
            }
            events++;
        }
        assert_int_equal(r, 0);
    } while (off < n);
    sl_sse_event_t ev;
    if (finish && sl_sse_finish(&s, &ev) == 1) {
        sl_buf_append(raws, ev.raw.p, ev.raw.n);
        if (ev.has_data) {
            sl_buf_append(datas, ev.data.p, ev.data.n);
            sl_buf_append(datas, "|", 1);
        }
        events++;
    }
    sl_sse_free(&s);
    return events;
}

static const char MIXED[] = ": keepalive\r\n\r\n"
                            "event: delta\r\ndata: {\"t\": \"Hel\"}\r\n\r\n"
                            "data: one\rdata: two\r\r"
                            "id: 7\nretry: 10\ndata:no-space\ndata\ndata:  two spaces\n\n"
                            "data: crlf\r\n\r\n"
                            "data: last";

static void test_data_joined(void **state)
{
    (void)state;
    sl_buf_t raws = {0}, datas = {0};
    int n = split(MIXED, sizeof MIXED - 1, 0, &raws, &datas, true);
    assert_int_equal(n, 6);
    assert_string_equal(sl_buf_cstr(&datas),
                        "{\"t\": \"Hel\"}|one\ntwo|no-space\n\n two spaces|crlf|last|");
    assert_int_equal(raws.n, sizeof MIXED - 1);
    assert_memory_equal(raws.p, MIXED, raws.n);
    sl_buf_free(&raws);
    sl_buf_free(&datas);
}

static void test_any_split_gives_the_same_events(void **state)
{
    (void)state;
    sl_buf_t raws0 = {0}, datas0 = {0};
    split(MIXED, sizeof MIXED - 1, 0, &raws0, &datas0, true);
    for (size_t step = 1; step < 24; step++) {
        sl_buf_t raws = {0}, datas = {0};
        split(MIXED, sizeof MIXED - 1, step, &raws, &datas, true);
        assert_int_equal(raws.n, raws0.n);
        assert_memory_equal(raws.p, raws0.p, raws.n);
        assert_string_equal(sl_buf_cstr(&datas), sl_buf_cstr(&datas0));
        sl_buf_free(&raws);
        sl_buf_free(&datas);
    }
    sl_buf_free(&raws0);
    sl_buf_free(&datas0);
}

static void test_event_returned_as_soon_as_complete(void **state)
{
    (void)state;
    sl_sse_t s;
    sl_sse_init(&s, 0);
    sl_sse_event_t ev;
    sl_sse_feed(&s, "data: a\n", 8);
    assert_int_equal(sl_sse_next(&s, &ev), 0);
    assert_int_equal(sl_sse_pending(&s), 8);
    /* A lone CR ends the blank line at once: no wait for a possible LF. */
    sl_sse_feed(&s, "\r", 1);
    assert_int_equal(sl_sse_next(&s, &ev), 1);
    assert_true(sl_view_eq(ev.data, "a"));
    assert_int_equal(ev.raw.n, 9);
    /* The LF that follows belongs to that CR: no empty event. */
    sl_sse_feed(&s, "\ndata: b\n\n", 10);
    assert_int_equal(sl_sse_next(&s, &ev), 1);
    assert_true(sl_view_eq(ev.data, "b"));
    assert_true(sl_view_eq(ev.raw, "\ndata: b\n\n"));
    assert_int_equal(sl_sse_next(&s, &ev), 0);
    assert_int_equal(sl_sse_finish(&s, &ev), 0);
    sl_sse_free(&s);
}

static void test_bom_and_comments(void **state)
{
    (void)state;
    static const char in[] = "\xEF\xBB\xBF"
                             "data: x\n:comment data: no\n\n";
    sl_buf_t raws = {0}, datas = {0};
    /* Fed one byte at a time, the BOM's prefix must not be taken for a line. */
    assert_int_equal(split(in, sizeof in - 1, 1, &raws, &datas, false), 1);
    assert_string_equal(sl_buf_cstr(&datas), "x|");
    assert_int_equal(raws.n, sizeof in - 1);
    sl_buf_free(&raws);
    sl_buf_free(&datas);
}

static void test_event_size_bound(void **state)
{
    (void)state;
    sl_sse_t s;
    sl_sse_init(&s, 64);
    sl_sse_event_t ev;
    char big[100];
    memset(big, 'x', sizeof big);
    sl_sse_feed(&s, "data: ", 6);
    sl_sse_feed(&s, big, 50);
    assert_int_equal(sl_sse_next(&s, &ev), 0);
    sl_sse_feed(&s, big, 50);
    assert_int_equal(sl_sse_next(&s, &ev), -1);
    sl_sse_free(&s);
    /* Many small complete events in one read are fine. */
    sl_sse_init(&s, 64);
    for (int i = 0; i < 50; i++)
        sl_sse_feed(&s, "data: ok\n\n", 10);
    for (int i = 0; i < 50; i++)
        assert_int_equal(sl_sse_next(&s, &ev), 1);
    assert_int_equal(sl_sse_next(&s, &ev), 0);
    sl_sse_free(&s);
}

static void test_rebuild(void **state)
{
    (void)state;
    sl_buf_t out = {0};
    const char *raw = "event: m\r\ndata: secret one\r\nid: 3\r\ndata: two\r\n\r\n";
    sl_sse_rebuild(sl_view(raw, strlen(raw)), sl_view("[r]\ntwo", 7), false, &out);
    assert_string_equal(sl_buf_cstr(&out), "event: m\r\ndata: [r]\ndata: two\nid: 3\r\n\r\n");
    /* The rebuilt event parses back to the new data. */
    sl_sse_t s;
    sl_sse_init(&s, 0);
    sl_sse_feed(&s, out.p, out.n);
    sl_sse_event_t ev;
    assert_int_equal(sl_sse_next(&s, &ev), 1);
    assert_true(sl_view_eq(ev.data, "[r]\ntwo"));
    sl_sse_free(&s);
    sl_buf_reset(&out);
    raw = "event: m\n\n";
    sl_sse_rebuild(sl_view(raw, strlen(raw)), sl_view("new", 3), false, &out);
    assert_string_equal(sl_buf_cstr(&out), "event: m\ndata: new\n\n");
    sl_buf_free(&out);
}

static void test_content_type(void **state)
{
    (void)state;
    assert_true(sl_sse_content_type(sl_view("text/event-stream", 17)));
    assert_true(sl_sse_content_type(sl_view("Text/Event-Stream; charset=utf-8", 32)));
    assert_false(sl_sse_content_type(sl_view("text/event-streamx", 18)));
    assert_false(sl_sse_content_type(sl_view("text/html", 9)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_joined),
        cmocka_unit_test(test_any_split_gives_the_same_events),
        cmocka_unit_test(test_event_returned_as_soon_as_complete),
        cmocka_unit_test(test_bom_and_comments),
        cmocka_unit_test(test_event_size_bound),
        cmocka_unit_test(test_rebuild),
        cmocka_unit_test(test_content_type),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
