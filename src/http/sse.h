/* Server-sent events (text/event-stream, WHATWG HTML "Server-sent events"):
 * a pure splitter that cuts a byte stream into events as they complete, and
 * the helpers to rebuild an event with changed data.
 *
 * An event is the run of lines up to and including the blank line that ends
 * it. Lines end in "\r\n", "\n" or "\r"; a "\r" at the very end of the bytes
 * so far ends its line at once (events are never held for the next read),
 * and a "\n" that then follows is swallowed as the rest of that line end.
 * `data:` lines are joined with "\n" (one space after the colon dropped), as
 * a client would hand them to its application. Comments (lines starting
 * with ':'), `event:`, `id:`, `retry:` and unknown fields stay in the raw
 * bytes and are not part of the data text.
 *
 * The splitter never copies an event's bytes out: `raw` views into its own
 * buffer and stays valid until the next call. Memory is bounded by
 * `max_event` (plus the bytes of one read). */
#ifndef SLUICE_HTTP_SSE_H
#define SLUICE_HTTP_SSE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/view.h"

/* Default bound on one event's raw size. */
#define SL_SSE_MAX_EVENT (1024 * 1024)

typedef struct sl_sse {
    sl_buf_t pend;    /* bytes received and not yet returned as an event */
    size_t pos;       /* bytes of `pend` already split into lines */
    size_t ret;       /* bytes of `pend` returned by the last call (dropped next call) */
    sl_buf_t data;    /* joined data text of the event being assembled */
    bool has_data;    /* the event being assembled has a data field */
    bool cr_last;     /* the last line ended in a lone "\r": a "\n" right after is part of it */
    bool started;     /* first byte seen (a leading UTF-8 BOM is skipped once) */
    size_t max_event; /* bound on one event's raw bytes [SL_SSE_MAX_EVENT] */
} sl_sse_t;

/* One complete event. Views are valid until the next sl_sse_next/finish. */
typedef struct sl_sse_event {
    sl_view_t raw;  /* the event's bytes as received, through its blank line */
    sl_view_t data; /* joined data text (no trailing "\n"); empty when no data line */
    bool has_data;  /* at least one data field */
} sl_sse_event_t;

/* Start splitting. `max_event` 0 takes SL_SSE_MAX_EVENT. */
void sl_sse_init(sl_sse_t *s, size_t max_event);
/* Add received bytes (copied). */
void sl_sse_feed(sl_sse_t *s, const char *p, size_t n);
/* Next complete event: 1 and `ev` filled, 0 when more bytes are needed, -1
 * when the unfinished event already exceeds max_event (the stream is
 * unusable from here). */
int sl_sse_next(sl_sse_t *s, sl_sse_event_t *ev);
/* End of stream: the unfinished rest as a last event (1), or 0 if nothing
 * is left. An unterminated last line counts (its data is scanned although a
 * client would drop it). */
int sl_sse_finish(sl_sse_t *s, sl_sse_event_t *ev);
/* Bytes waiting for the end of their event. */
size_t sl_sse_pending(const sl_sse_t *s);
/* Release the buffers. */
void sl_sse_free(sl_sse_t *s);

/* Is this Content-Type text/event-stream (parameters ignored)? */
bool sl_sse_content_type(sl_view_t ct);

/* Append to `out` the event `raw` with its data replaced by `data`: lines
 * that are not data lines are kept as they were, the data lines are
 * replaced at the place of the first one by one "data: " line per line of
 * `data`, each ended with "\n". `raw` must be one event as returned by
 * sl_sse_next (a raw without data lines gets the data lines before its
 * blank line); `first` says it is the stream's first event (which may start
 * with a byte order mark). */
void sl_sse_rebuild(sl_view_t raw, sl_view_t data, bool first, sl_buf_t *out);

#endif
