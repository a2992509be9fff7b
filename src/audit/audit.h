/* The audit trail: one JSON line per decision. This first version writes
 * plain JSON lines; hash chaining and signing build on the same events. */
#ifndef SLUICE_AUDIT_AUDIT_H
#define SLUICE_AUDIT_AUDIT_H

#include <stdbool.h>
#include <stdint.h>
#include "core/buf.h"

typedef struct sl_audit_event {
    const char *request_id;
    const char *identity;
    const char *method;
    const char *host;
    uint16_t port;
    sl_view_t target_path; /* path and query as sent; query values are redacted here */
    const char *verdict;   /* "allow", "block", "error" */
    const char *rule;      /* deciding rule id or NULL */
    const char *scanner;   /* NULL if none */
    const char *reason;    /* NULL or human text */
    const char *upstream;  /* "addr:port" or NULL */
    int status;            /* status sent to the client, 0 if none */
    uint64_t bytes_in;     /* request body bytes from the client */
    uint64_t bytes_out;    /* response bytes sent to the client (head + body) */
    double duration_ms;
    const char *secrets;  /* JSON array of injected secrets ("name@where"), or NULL */
    const char *findings; /* comma-separated rule ids the inspection found, or NULL */
    const char *severity; /* "high" for exfiltration signatures, else NULL */
} sl_audit_event_t;

/* Open the sink: "-" stdout, "off" none, else a file opened for append.
 * Replaces the previous sink. Returns 0 or -1 (errno set). */
int sl_audit_open(const char *path);
void sl_audit_close(void);

/* Write one event as a JSON line (safe from any thread). */
void sl_audit_write(const sl_audit_event_t *ev);

/* Batch this thread's events in memory (worker threads): they are written
 * by sl_audit_flush, which the worker calls at least every 100 ms, and
 * whenever 64 KiB have accumulated. Turning batching off flushes. */
void sl_audit_batch(bool on);
void sl_audit_flush(void);

/* Write an operator action (admin API, CLI) as an audit line:
 * {"time", "event":"admin", "actor", "action", "identity", "detail"}. */
void sl_audit_admin(const char *actor, const char *action, const char *identity,
                    const char *detail);

/* Append `path?query` to b with every query value replaced by "*". */
void sl_audit_redact_target(sl_buf_t *b, sl_view_t target);

#endif
