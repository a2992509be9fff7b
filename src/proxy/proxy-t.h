/* Types of the proxy pipeline: workers, client connections (agent side) and
 * upstream connections. Internal to src/proxy/. */
#ifndef SLUICE_PROXY_PROXY_T_H
#define SLUICE_PROXY_PROXY_T_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "http/h1.h"
#include "policy/policy.h"
#include "tls/tls_io.h"

typedef struct sl_server sl_server_t;
typedef struct sl_worker sl_worker_t;
typedef struct sl_client sl_client_t;
typedef struct sl_upstream sl_upstream_t;
typedef struct sl_held sl_held_t;

/* Write-queue sizes for backpressure: stop reading the source above HIGH,
 * resume below LOW. Bounds what sluice buffers for a slow reader. */
#define SL_WQ_HIGH (256 * 1024)
#define SL_WQ_LOW (64 * 1024)
#define SL_READ_CHUNK (64 * 1024)

/* One event loop on its own thread, with its own listening sockets
 * (SO_REUSEPORT), clients and upstream pool. Nothing here is shared between
 * workers except the server and refcounted policy snapshots. */
struct sl_worker {
    int id;
    sl_server_t *server;
    uv_loop_t loop;
    uv_async_t wake;        /* another thread has news: new policy, drain, stop */
    uv_timer_t audit_timer; /* flushes this worker's batched audit lines */
    uv_tcp_t *listeners;    /* one per configured listen address */
    size_t n_listeners;
    sl_policy_t *policy;  /* current snapshot (a reference) */
    sl_policy_t *pending; /* next snapshot, handed over under server->lock */
    bool stopped;         /* loop handles are closing; thread about to exit */
    sl_held_t *decided;   /* decisions to apply, handed over under server->lock */
    sl_client_t *clients; /* every open client connection */
    size_t n_clients;
    sl_upstream_t *pool; /* idle upstream connections, most recent first */
    size_t n_pool;
    uint64_t req_seq; /* request ids */
    bool draining;    /* stop accepting; close clients between requests */
    char *scratch;    /* SL_READ_CHUNK bytes: raw TLS records land here */
    pthread_t thread;
};

/* A request waiting for an operator's decision (approval gate). Lives in
 * the server's list until decided, timed out or abandoned; the worker that
 * holds the client finds it again by request id. */
struct sl_held {
    char id[24];
    char identity[72];
    char method[24];
    char host[256];
    char path[256];    /* query values redacted */
    uint64_t since_ms; /* uv_hrtime based */
    uint64_t timeout_ms;
    int worker;
    int decision; /* 0 pending, 1 approved, -1 denied */
    char actor[64];
    struct sl_held *next;
};

/* The process-wide part: config source, workers, counters. */
struct sl_server {
    const char *config_path; /* NULL: built-in default */
    sl_worker_t *workers;
    size_t n_workers;
    pthread_mutex_t lock;         /* guards workers' `pending` slots, `overlay`, approvals */
    pthread_mutex_t rebuild_lock; /* one snapshot build at a time (reload, admin changes) */
    sl_policy_t *current;         /* the snapshot the main thread last published */
    uv_loop_t *main_loop;         /* signals, file watch, reloads */
    uv_async_t worker_exited;     /* a worker finished draining */
    size_t n_exited;
    atomic_bool force_stop;     /* drain timeout passed: close everything */
    sl_buf_t config_text;       /* bytes of the config file last loaded */
    sl_overlay_t overlay;       /* runtime changes (admin API), under `lock` */
    sl_held_t *held;            /* requests waiting for approval, under `lock` */
    struct sl_ca *ca;           /* interception CA (NULL when interception is off) */
    struct sl_certcache *certs; /* leaves minted by `ca`, per host */
    struct sl_ruleset *rules;   /* detection rules (NULL when inspection is off) */
    atomic_uint_fast64_t policy_gen;
    atomic_long n_connections; /* open client connections, all workers */
    atomic_bool draining;
    uint32_t id_prefix; /* random per process, for request ids */
};

/* Client connection states. */
typedef enum sl_client_state {
    SL_CS_HEAD = 0, /* waiting for or reading a request head */
    SL_CS_HELD,     /* waiting for an operator's approval */
    SL_CS_DIAL,     /* resolving/connecting the upstream for this request */
    SL_CS_FORWARD,  /* request sent (body may still stream), response pending */
    SL_CS_TUNNEL,   /* CONNECT: bytes flow both ways untouched */
    SL_CS_CLOSING,  /* uv_close issued */
} sl_client_state_t;

/* Client flags. */
#define SL_CF_READING 0x01     /* uv_read_start is active */
#define SL_CF_CLOSE_AFTER 0x02 /* close once the current response is written */
#define SL_CF_REQ_DONE 0x04    /* the whole request body has been forwarded */
#define SL_CF_RESP_DONE 0x08   /* the whole response has been queued to the client */
#define SL_CF_HEAD_TIMER 0x10  /* header_read timer runs (first byte of a head seen) */
#define SL_CF_PAUSED 0x20      /* reading stopped for backpressure */
#define SL_CF_EXCHANGE 0x40    /* an exchange is in progress */
#define SL_CF_SHUTDOWN 0x80    /* shutdown requested after writes drain */
#define SL_CF_IN_DRAIN 0x100   /* client_drain_input is on the stack */
#define SL_CF_REDRAIN 0x200    /* input became consumable again during a drain */
#define SL_CF_PEEK 0x400       /* intercepted CONNECT: first byte decides TLS or plain */

/* The per-request state (one exchange at a time per client connection;
 * pipelined requests wait in the input buffer). */
typedef struct sl_exchange {
    sl_policy_t *policy;        /* snapshot this request is decided under */
    const sl_identity_t *ident; /* who sent it (points into `policy`) */
    char id[24];                /* request id */
    uint64_t start_ns;
    char method[24];
    sl_target_t target;
    sl_buf_t path; /* path?query as sent upstream */
    sl_buf_t head; /* rewritten request head, kept for one retry */
    sl_h1_framing_t framing;
    uint64_t body_left;    /* SL_H1_BODY_LENGTH: bytes still to forward */
    sl_chunked_t *chunked; /* SL_H1_BODY_CHUNKED decoder */
    bool is_head;
    bool is_connect;
    bool retried;                      /* one retry on a stale pooled connection */
    int client_minor;                  /* HTTP/1.x minor version the client spoke */
    bool upgrade;                      /* request asked for a protocol upgrade */
    bool upstream_tls;                 /* speak TLS to the upstream (intercepted https) */
    bool resolve_only;                 /* check the destination's addresses, do not connect */
    struct sl_secret_decision *sd;     /* credential injection for this request, or NULL */
    struct sl_secret_body *sbody;      /* request body filter (placeholders, real values) */
    bool rechunk;                      /* body length may change: send it upstream chunked */
    struct sl_inspect_stream *istream; /* request body inspection */
    sl_buf_t ihold;     /* inspected body bytes held back until the next chunk is seen */
    struct sl_decoder *idecoder; /* undoes the body's Content-Encoding for inspection, or NULL */
    char findings[160]; /* rule ids found (warned or blocking), for the audit event */
    int rpc;            /* request body JSON-RPC gate state (rpcgate.c), 0 at start */
    sl_buf_t rpcplain;  /* a content-coded body decoded, for the JSON-RPC gate (bounded) */
    int status;         /* status sent to the client */
    uint64_t bytes_in, bytes_out;
    const char *verdict; /* "allow" / "block" / "error" */
    const char *rule, *scanner;
    char reason[256];
    char upstream_addr[64];
} sl_exchange_t;

struct sl_client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    sl_worker_t *w;
    sl_client_state_t state;
    unsigned flags;
    int open_handles;         /* handles not yet closed; free at 0 */
    sl_buf_t in;              /* bytes read and not yet consumed */
    sl_client_t *prev, *next; /* worker's client list */
    sl_upstream_t *up;        /* attached upstream, if any */
    sl_tls_t *tls;            /* agent-side TLS session inside an intercepted tunnel */
    int listener;             /* index of the listen address it arrived on */
    sl_ip_t peer;             /* client address */
    bool has_peer;
    char tunnel_identity[72]; /* identity that opened the intercepted tunnel */
    char tunnel_host[256];    /* CONNECT host of an intercepted tunnel ("" otherwise) */
    uint16_t tunnel_port;
    sl_buf_t tunnel_target; /* inner request rewritten to absolute form */
    struct sl_ws_relay *ws; /* WebSocket relay after an accepted upgrade (websocket.c), or NULL */
    sl_exchange_t x;
};

typedef enum sl_upstream_state {
    SL_US_DIAL = 0, /* resolving or connecting */
    SL_US_TLS,      /* TLS handshake with the upstream */
    SL_US_HEAD,     /* waiting for a response head */
    SL_US_BODY,     /* forwarding the response body */
    SL_US_TUNNEL,   /* CONNECT tunnel */
    SL_US_IDLE,     /* in the worker's pool */
    SL_US_CLOSING,
} sl_upstream_state_t;

struct sl_upstream {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_getaddrinfo_t dns_req;
    sl_worker_t *w;
    sl_client_t *c; /* owner while attached */
    sl_upstream_state_t state;
    int open_handles;
    bool tcp_open; /* tcp handle initialised */
    bool reading;
    bool paused; /* reading stopped for backpressure */
    bool reused; /* came from the pool */
    bool dns_pending;
    char key[300];           /* pool key: generation|host|port|route */
    sl_buf_t in;             /* plaintext read and not yet consumed */
    sl_tls_t *tls;           /* upstream TLS session, or NULL */
    sl_h1_framing_t framing; /* of the current response */
    uint64_t body_left;
    sl_chunked_t *chunked;
    struct sl_redactor *redact;        /* echo redaction of the current response body, or NULL */
    struct sl_inspect_stream *istream; /* response body inspection, or NULL */
    sl_buf_t card;                     /* Agent Card body buffered for its structural scan */
    struct sl_decoder *idecoder;       /* undoes the response's Content-Encoding, or NULL */
    bool sent_body;                    /* response bytes already reached the client */
    bool binary_body; /* media type or first bytes say the body is not text: no injection scan */
    bool chunk_out;                    /* the client gets this response body chunked */
    bool sse;     /* text/event-stream relayed event by event (src/proxy/sse.c) */
    bool rewrite; /* inspection may change the body's length: no Content-Length to the client */
    struct sl_respfilter *rf; /* response actions state (redaction, SSE events), or NULL */
    bool got_bytes;                    /* any response byte seen for the current request */
    struct sockaddr_storage addrs[8];  /* checked addresses to try, in order */
    int n_addrs, next_addr;
    int last_error; /* libuv error of the last failed connect */
    bool timed_out;
    uint64_t last_ms;           /* last traffic, for io_idle */
    char peer[64];              /* "addr:port" connected to, for audit */
    sl_buf_t out_head;          /* response head waiting to go out with the first body bytes */
    sl_upstream_t *prev, *next; /* pool list */
};

#endif
