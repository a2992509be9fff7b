/* TLS under the socket: an OpenSSL session driven through memory BIOs, so the
 * event loop moves raw bytes and the protocol code above only ever sees
 * plaintext (the h2o/HAProxy arrangement). Used on both sides of an
 * intercepted connection. */
#ifndef SLUICE_TLS_TLS_IO_H
#define SLUICE_TLS_TLS_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

#include "core/buf.h"

typedef struct sl_tls {
    SSL *ssl;
    BIO *rbio;       /* raw bytes from the peer go in here */
    BIO *wbio;       /* raw bytes for the peer come out of here */
    bool handshaken; /* handshake finished */
    bool closed;     /* peer sent close_notify */
} sl_tls_t;

/* Result of driving the session. */
typedef enum sl_tls_status {
    SL_TLS_OK = 0, /* progress made (or nothing to do) */
    SL_TLS_ERROR,  /* fatal: the connection must close; see sl_tls_error */
} sl_tls_status_t;

/* Set up a session on `ctx` as server (accept) or client (connect). Returns
 * 0 or -1. */
int sl_tls_init(sl_tls_t *t, SSL_CTX *ctx, bool server);
void sl_tls_free(sl_tls_t *t);

/* Feed raw bytes received from the peer. */
void sl_tls_feed(sl_tls_t *t, const char *p, size_t n);

/* Advance the handshake and decrypt whatever is available, appending
 * plaintext to `plain`. Raw output the peer must get (handshake messages,
 * alerts) accumulates in the wbio: collect it with sl_tls_take_output. */
sl_tls_status_t sl_tls_pump(sl_tls_t *t, sl_buf_t *plain);

/* Encrypt plaintext for the peer (after the handshake). */
sl_tls_status_t sl_tls_write(sl_tls_t *t, const char *p, size_t n);

/* Move pending raw output into `raw` (appended). Returns bytes moved. */
size_t sl_tls_take_output(sl_tls_t *t, sl_buf_t *raw);

/* A short description of the last error on this thread (OpenSSL's queue, or
 * the certificate verification result of `t` when that failed). Writes into
 * `buf` and returns it. */
const char *sl_tls_error(sl_tls_t *t, char *buf, size_t cap);

#endif
