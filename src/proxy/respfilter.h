/* State of the response-side actions for one response (internal to
 * src/proxy/respfilter.c and src/proxy/sse.c). */
#ifndef SLUICE_PROXY_RESPFILTER_H
#define SLUICE_PROXY_RESPFILTER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/sse.h"
#include "inspect/inspect.h"

/* Largest body held whole so that any span in it can be redacted. */
#define SL_RESP_HOLD_MAX (64 * 1024)

typedef struct sl_respfilter {
    /* plain bodies */
    uint64_t fed;        /* body bytes scanned so far (offset of the next byte) */
    bool whole;          /* small Content-Length body: deliver only once complete */
    sl_buf_t hold;       /* whole mode: bytes scanned and not yet delivered */
    sl_findings_t spans; /* whole mode: redact findings waiting for the end */
    /* text/event-stream */
    sl_sse_t split;             /* event splitter */
    bool split_open;            /* `split` initialised */
    sl_inspect_stream_t *st[3]; /* scanners across events, or NULL: data texts back to back
                                   (token streams), separated by "\n" (message streams), and
                                   the text values of JSON events back to back (LLM deltas) */
    uint64_t st_off[3];         /* bytes fed to each */
    sl_buf_t tail[2];           /* last bytes of the data back to back, of the JSON text values */
    uint64_t events_out;        /* events delivered */
    uint64_t events_redacted;   /* events delivered redacted */
} sl_respfilter_t;

#endif
