/* Server-sent events splitter (see sse.h). */
#include "http/sse.h"

#include <string.h>
#include <strings.h>

static const char BOM[3] = {'\xEF', '\xBB', '\xBF'};

void sl_sse_init(sl_sse_t *s, size_t max_event)
{
    memset(s, 0, sizeof *s);
    s->max_event = max_event ? max_event : SL_SSE_MAX_EVENT;
}

void sl_sse_feed(sl_sse_t *s, const char *p, size_t n)
{
    sl_buf_append(&s->pend, p, n);
}

size_t sl_sse_pending(const sl_sse_t *s)
{
    return s->pend.n - s->ret;
}

void sl_sse_free(sl_sse_t *s)
{
    sl_buf_free(&s->pend);
    sl_buf_free(&s->data);
    memset(s, 0, sizeof *s);
}

/* Drop the event returned by the previous call. */
static void drop_returned(sl_sse_t *s)
{
    if (s->ret == 0)
        return;
    sl_buf_consume(&s->pend, s->ret);
    s->pos -= s->ret;
    s->ret = 0;
    sl_buf_reset(&s->data);
    s->has_data = false;
}

/* One complete line (without its end): a data line adds to the data text. */
static void take_line(sl_sse_t *s, const char *l, size_t n)
{
    if (n == 0 || l[0] == ':')
        return;
    const char *colon = memchr(l, ':', n);
    size_t name_n = colon ? (size_t)(colon - l) : n;
    if (name_n != 4 || memcmp(l, "data", 4) != 0)
        return;
    const char *v = colon ? colon + 1 : l + n;
    size_t vn = (size_t)(l + n - v);
    if (vn && *v == ' ') {
        v++;
        vn--;
    }
    sl_buf_append(&s->data, v, vn);
    sl_buf_append(&s->data, "\n", 1);
    s->has_data = true;
}

static void fill_event(sl_sse_t *s, size_t end, sl_sse_event_t *ev)
{
    size_t dn = s->data.n;
    if (dn && s->data.p[dn - 1] == '\n')
        dn--;
    ev->raw = sl_view(s->pend.p, end);
    ev->data = sl_view(s->data.p ? s->data.p : "", dn);
    ev->has_data = s->has_data;
    s->ret = end;
}

int sl_sse_next(sl_sse_t *s, sl_sse_event_t *ev)
{
    drop_returned(s);
    const char *b = s->pend.p;
    size_t n = s->pend.n;
    if (!s->started) {
        size_t k = n < 3 ? n : 3;
        if (k && memcmp(b, BOM, k) == 0 && k < 3)
            return 0; /* maybe a BOM: wait for its last bytes */
        s->started = n > 0;
        if (k == 3 && memcmp(b, BOM, 3) == 0)
            s->pos = 3;
    }
    while (s->pos < n) {
        if (s->cr_last) {
            s->cr_last = false;
            if (b[s->pos] == '\n') {
                s->pos++;
                continue;
            }
        }
        size_t ls = s->pos, le = ls;
        while (le < n && b[le] != '\n' && b[le] != '\r')
            le++;
        if (le == n)
            break; /* unfinished line */
        size_t next = le + 1;
        if (b[le] == '\r') {
            if (next < n && b[next] == '\n')
                next++;
            else if (next == n)
                s->cr_last = true;
        }
        s->pos = next;
        if (le == ls) {
            fill_event(s, next, ev);
            return 1;
        }
        take_line(s, b + ls, le - ls);
    }
    return n > s->max_event ? -1 : 0;
}

int sl_sse_finish(sl_sse_t *s, sl_sse_event_t *ev)
{
    drop_returned(s);
    if (s->pend.n == 0)
        return 0;
    if (s->pos < s->pend.n) {
        size_t ls = s->pos;
        if (s->cr_last && s->pend.p[ls] == '\n')
            ls++;
        take_line(s, s->pend.p + ls, s->pend.n - ls);
        s->pos = s->pend.n;
    }
    fill_event(s, s->pend.n, ev);
    return 1;
}

bool sl_sse_content_type(sl_view_t ct)
{
    static const char want[] = "text/event-stream";
    size_t l = sizeof want - 1;
    if (ct.n < l || strncasecmp(ct.p, want, l) != 0)
        return false;
    return ct.n == l || ct.p[l] == ';' || ct.p[l] == ' ' || ct.p[l] == '\t';
}

/* Length of the line at `p` (without its end) and of its end. */
static size_t line_at(const char *p, size_t n, size_t *eol)
{
    size_t i = 0;
    while (i < n && p[i] != '\n' && p[i] != '\r')
        i++;
    *eol = i == n ? 0 : (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') ? 2 : 1;
    return i;
}

static void put_data(sl_view_t data, sl_buf_t *out)
{
    const char *p = data.p, *end = data.p + data.n;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        sl_buf_append_str(out, "data: ");
        sl_buf_append(out, p, (size_t)(le - p));
        sl_buf_append(out, "\n", 1);
        if (!nl)
            break;
        p = nl + 1;
    }
}

void sl_sse_rebuild(sl_view_t raw, sl_view_t data, bool first, sl_buf_t *out)
{
    bool placed = false;
    size_t i = 0;
    if (first && raw.n >= 3 && memcmp(raw.p, BOM, 3) == 0) {
        sl_buf_append(out, BOM, 3);
        i = 3;
    }
    while (i < raw.n) {
        size_t eol, ln = line_at(raw.p + i, raw.n - i, &eol);
        const char *l = raw.p + i;
        const char *colon = memchr(l, ':', ln);
        size_t name_n = colon ? (size_t)(colon - l) : ln;
        bool is_data = ln > 0 && name_n == 4 && memcmp(l, "data", 4) == 0;
        bool last = i + ln + eol == raw.n;
        if (is_data || (last && ln == 0 && i > 0 && !placed)) {
            if (!placed)
                put_data(data, out);
            placed = true;
            if (is_data) {
                i += ln + eol;
                continue;
            }
        }
        sl_buf_append(out, l, ln + eol);
        i += ln + eol;
    }
    if (!placed)
        put_data(data, out);
}
