/* Functions shared between the files of src/proxy/ (not a public API). */
#ifndef SLUICE_PROXY_INTERNAL_H
#define SLUICE_PROXY_INTERNAL_H

#include "inspect/inspect.h"
#include "proxy/proxy-t.h"

/* io.c: write bufs to a stream, trying a synchronous write first and
 * copying only what the kernel did not take. `cb` runs only for the copied
 * part (with req->data = owner). Returns 0 or a libuv error. */
int sl_io_write(uv_stream_t *s, const uv_buf_t *bufs, unsigned nbufs, uv_write_cb cb, void *owner);
/* The same through a TLS session when `tls` is non-NULL (plaintext in,
 * ciphertext out). */
int sl_io_send(uv_stream_t *s, sl_tls_t *tls, const uv_buf_t *bufs, unsigned nbufs, uv_write_cb cb,
               void *owner);
/* Free a write request made by sl_io_write (call from the write callback). */
void sl_io_write_done(uv_write_t *req);
/* Milliseconds of monotonic time and nanoseconds for durations. */
uint64_t sl_io_now_ns(void);

/* server.c */
sl_server_t *sl_server(void);
/* Build a snapshot from the loaded config text and the runtime overlay, and
 * publish it to every worker. Any thread. */
int sl_server_rebuild(const char *why, sl_buf_t *err);

/* approval.c */
/* Hold the current exchange of `c` until a decision or the timeout. */
void sl_approval_hold(sl_client_t *c);
/* The client is going away: drop its held entry, if any. */
void sl_approval_forget(sl_client_t *c);
/* Decide a held request (any thread). */
int sl_approval_decide(sl_server_t *srv, const char *actor, const char *id, bool approve,
                       sl_buf_t *err);
/* JSON array of held requests (any thread). */
void sl_approval_list(sl_server_t *srv, sl_buf_t *json);
/* Worker thread: apply decisions handed to it. */
void sl_approval_apply(sl_worker_t *w);

/* inspection.c: the detection engine on the exchange's surfaces. Each
 * returns true / -1 when a finding refuses the message (verdict filled). */
#include "http/url.h"
bool sl_inspect_request_head(sl_client_t *c, const sl_url_t *u, const sl_h1_header_t *fwd,
                             size_t n_fwd, sl_verdict_t *v);
int sl_inspect_request_body(sl_client_t *c, const char *p, size_t n, bool done, sl_buf_t *out,
                            sl_verdict_t *v);
void sl_inspect_request_done(sl_exchange_t *x);
/* Content-Encoding of a request (`h`: its fields) or response body: set up
 * decoding for the body scan (src/http/coding.h). True / -1 when the body
 * cannot be decoded and inspect.undecodable refuses it for this host. */
bool sl_inspect_request_coding(sl_client_t *c, const sl_h1_header_t *h, size_t n, sl_verdict_t *v);
int sl_inspect_response_coding(sl_upstream_t *up, const sl_h1_header_t *h, size_t n,
                               sl_verdict_t *v);
/* Response body filter results (docs/inspection.md, "Actions on responses"): */
#define SL_RESP_PASS 0 /* deliver the bytes as given */
#define SL_RESP_OUT 1  /* deliver `out` instead (redacted, or held back: may be empty) */
#define SL_RESP_END 2  /* deliver `out`, then end the response here (verdict filled) */
/* -1: refused (verdict filled): a refusal if nothing was sent yet, else cut off. */
int sl_inspect_response_body(sl_upstream_t *up, const char *p, size_t n, bool done, sl_buf_t *out,
                             sl_verdict_t *v);
void sl_inspect_response_done(sl_upstream_t *up);
/* Note a finding's rule id in the exchange's audit list ("rule:suppressed[N]"
 * when entry N of inspect.suppress covers it for this host). Returns true
 * when suppressed: the finding then takes no action. */
bool sl_inspect_note(sl_exchange_t *x, const sl_finding_t *f);

/* respfilter.c: response-side actions (block, redact, warn). */
/* A response head arrived: decide SSE mode, whether the body may be
 * rewritten (up->rewrite) and whether a small body is held whole. */
void sl_respfilter_head(sl_upstream_t *up, const sl_h1_response_t *res);
/* The action a response finding takes under the exchange's policy
 * (inspect.response_action applies to rules whose action is block). */
sl_action_t sl_respfilter_action(const sl_exchange_t *x, const sl_finding_t *f);
/* Fill a verdict from a blocking response finding (`how` is appended to the reason). */
void sl_respfilter_verdict(const sl_finding_t *f, const char *where, const char *how,
                           sl_verdict_t *v);
/* Plain (non-SSE) body: `f` holds the stream findings of this call (offsets
 * absolute from the body's first byte), p/n the bytes just scanned. Applies
 * the actions; returns an SL_RESP_* code or -1. */
int sl_respfilter_plain(sl_upstream_t *up, const sl_findings_t *f, const char *p, size_t n,
                        bool done, sl_buf_t *out, sl_verdict_t *v);
/* Replace the spans of `spans` (offsets relative to `base`) in p/n by
 * "[sluice:redacted:RULE]" markers, appending the result to `out`. */
void sl_respfilter_redact(const char *p, size_t n, uint64_t base, const sl_findings_t *spans,
                          sl_buf_t *out);
/* Free the response filter state. */
void sl_respfilter_free(sl_upstream_t *up);

/* sse.c: text/event-stream responses, scanned and delivered per event. */
int sl_sse_response(sl_upstream_t *up, const char *p, size_t n, bool done, sl_buf_t *out,
                    sl_verdict_t *v);
/* Is this Content-Type a non-text media type (not scanned for injection)? */
bool sl_inspect_binary_type(sl_view_t content_type);
/* Turn findings into a decision for exchange `x` (suppressions applied,
 * warn findings noted for the audit event); true when refused. */
struct sl_findings;
bool sl_inspect_decide(sl_exchange_t *x, const struct sl_findings *f, const char *surface,
                       sl_verdict_t *v);

/* rpcgate.c: JSON-RPC bodies (shadow MCP, MCP tool calls, A2A messages,
 * Agent Cards). */
/* Request body bytes so far are in `held` (all of them while the gate
 * holds; the decoded text when the body has a Content-Encoding); `done` ends the body. Sets *hold_all while the whole body must be
 * held back. Returns -1 to refuse (verdict filled). */
int sl_rpcgate_request_body(sl_client_t *c, const sl_buf_t *held, bool done, bool *hold_all,
                            sl_verdict_t *v);
/* How many decoded bytes of a content-coded request body the gate still
 * wants in x->rpcplain (0 once it streams: not JSON, or too big). */
size_t sl_rpcgate_plain_cap(const sl_exchange_t *x);
/* The surface the response body of the current exchange is scanned as. */
int sl_rpcgate_response_surface(const sl_client_t *c);
/* Response body bytes (after the stream scan passed); at `done` an Agent
 * Card is scanned field by field. Returns -1 to refuse (verdict filled). */
int sl_rpcgate_response_body(sl_upstream_t *up, const char *p, size_t n, bool done,
                             sl_verdict_t *v);

/* client.c */
void sl_client_arm_approval_timer(sl_client_t *c, uint64_t ms);
void sl_client_approval_decided(sl_client_t *c, bool approve, const char *actor);
/* Send bytes to the agent (through its TLS session when intercepted). */
int sl_client_send(sl_client_t *c, const uv_buf_t *b, unsigned nb);
void sl_client_on_connection(uv_stream_t *listener, int status);
/* The upstream for the current exchange is connected (or taken from the
 * pool): send the request. */
void sl_client_upstream_ready(sl_client_t *c, sl_upstream_t *up);
/* The destination of a resolve-only exchange passed the address checks. */
void sl_client_destination_checked(sl_client_t *c);
/* The upstream could not be reached: answer with a 502/504 or 403. */
void sl_client_upstream_failed(sl_client_t *c, int status, const char *code, const char *detail);
void sl_client_upstream_refused(sl_client_t *c, const sl_verdict_t *v);
/* The response has been fully queued to the client. */
void sl_client_response_done(sl_client_t *c);
/* Close the client connection (and its upstream) now. */
void sl_client_close(sl_client_t *c);
/* Re-evaluate whether the client should be read (states, backpressure). */
void sl_client_update_reading(sl_client_t *c);
/* Write callback for writes to the client stream. */
void sl_client_write_cb(uv_write_t *req, int status);
/* The client's write queue drained enough: resume whoever feeds it. */
void sl_client_on_drain(sl_client_t *c);
/* Worker is draining: close the client if it is between requests. */
void sl_client_drain(sl_client_t *c);

/* upstream.c */
/* Send bytes to the upstream (through TLS when the upstream speaks it). */
int sl_upstream_send(sl_upstream_t *up, const uv_buf_t *b, unsigned nb);
/* Find a pooled connection or dial a new one for c->x.target. */
void sl_upstream_acquire(sl_client_t *c);
/* Start reading the response for the request just sent. */
void sl_upstream_expect_response(sl_upstream_t *up);
/* The request body is complete: response_head timeout starts now. */
void sl_upstream_request_sent(sl_upstream_t *up);
/* Switch to raw tunnelling (CONNECT, or an accepted Upgrade). */
void sl_upstream_start_tunnel(sl_upstream_t *up);
/* Detach from the client; pool the connection if `reusable`, else close. */
void sl_upstream_release(sl_upstream_t *up, bool reusable);
void sl_upstream_close(sl_upstream_t *up);
void sl_upstream_update_reading(sl_upstream_t *up);
/* Note traffic for the io_idle timeout. */
void sl_upstream_touch(sl_upstream_t *up);
void sl_upstream_write_cb(uv_write_t *req, int status);
void sl_upstream_pool_flush(sl_worker_t *w);

/* respond.c: gateway-generated responses. All set x->status/verdict and
 * mark the connection to close unless `keep` is allowed. */
void sl_respond_refusal(sl_client_t *c, const sl_verdict_t *v);
void sl_respond_upstream_error(sl_client_t *c, int status, const char *code, const char *detail);
void sl_respond_bad_request(sl_client_t *c, const char *reason);

/* websocket.c: frame-by-frame relay of an accepted WebSocket upgrade. */
/* At a 101: when the upgrade is to WebSocket and inspection is on, set up
 * c->ws (the relay) from the response's negotiated extensions. Returns 0
 * (c->ws set, or left NULL for a plain tunnel), or -1 with a static *err
 * when the connection could not be inspected (unknown extension). */
int sl_websocket_start(sl_client_t *c, const sl_h1_response_t *res, const char **err);
/* Does a request's Upgrade field ask for WebSocket? */
bool sl_websocket_requested(const sl_h1_header_t *h, size_t n);
/* Relay the complete frames in c->in to the upstream (holding a message's
 * frames until it is complete and scanned). Returns the bytes to consume
 * from c->in (0: need more), or -1 when the connection is closing. */
long sl_websocket_from_client(sl_client_t *c);
/* Relay the complete frames in up->in to the agent; consumes them. */
void sl_websocket_from_upstream(sl_upstream_t *up);
/* Free the relay state of a client (at connection free). */
void sl_websocket_free(sl_client_t *c);

#endif
