#include "tls/tls_io.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

int sl_tls_init(sl_tls_t *t, SSL_CTX *ctx, bool server)
{
    memset(t, 0, sizeof *t);
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        memset(t, 0, sizeof *t);
        return -1;
    }
    /* An empty memory BIO means "would block", not EOF. */
    BIO_set_mem_eof_return(t->rbio, -1);
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    if (server)
        SSL_set_accept_state(t->ssl);
    else
        SSL_set_connect_state(t->ssl);
    return 0;
}

void sl_tls_free(sl_tls_t *t)
{
    if (t->ssl)
        SSL_free(t->ssl); /* frees both BIOs */
    memset(t, 0, sizeof *t);
}

void sl_tls_feed(sl_tls_t *t, const char *p, size_t n)
{
    while (n > 0) {
        int w = BIO_write(t->rbio, p, n > 1 << 30 ? 1 << 30 : (int)n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

sl_tls_status_t sl_tls_pump(sl_tls_t *t, sl_buf_t *plain)
{
    ERR_clear_error();
    if (!t->handshaken) {
        int r = SSL_do_handshake(t->ssl);
        if (r != 1) {
            int e = SSL_get_error(t->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return SL_TLS_OK;
            return SL_TLS_ERROR;
        }
        t->handshaken = true;
    }
    for (;;) {
        sl_buf_reserve(plain, 16384);
        size_t got = 0;
        int r = SSL_read_ex(t->ssl, plain->p + plain->n, plain->cap - plain->n, &got);
        if (r == 1) {
            plain->n += got;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return SL_TLS_OK;
        if (e == SSL_ERROR_ZERO_RETURN) {
            t->closed = true;
            return SL_TLS_OK;
        }
        return SL_TLS_ERROR;
    }
}

sl_tls_status_t sl_tls_write(sl_tls_t *t, const char *p, size_t n)
{
    ERR_clear_error();
    while (n > 0) {
        size_t done = 0;
        /* Memory BIOs grow, so a write never wants to wait. */
        if (SSL_write_ex(t->ssl, p, n, &done) != 1)
            return SL_TLS_ERROR;
        p += done;
        n -= done;
    }
    return SL_TLS_OK;
}

size_t sl_tls_take_output(sl_tls_t *t, sl_buf_t *raw)
{
    size_t pending = BIO_ctrl_pending(t->wbio), total = 0;
    while (pending > 0) {
        sl_buf_reserve(raw, pending);
        int r = BIO_read(t->wbio, raw->p + raw->n, (int)pending);
        if (r <= 0)
            break;
        raw->n += (size_t)r;
        total += (size_t)r;
        pending = BIO_ctrl_pending(t->wbio);
    }
    return total;
}

const char *sl_tls_error(sl_tls_t *t, char *buf, size_t cap)
{
    long vr = t && t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    if (vr != X509_V_OK) {
        snprintf(buf, cap, "certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
        return buf;
    }
    unsigned long e = ERR_peek_last_error();
    if (e == 0) {
        snprintf(buf, cap, "TLS handshake failed");
        return buf;
    }
    char tmp[256];
    ERR_error_string_n(e, tmp, sizeof tmp);
    snprintf(buf, cap, "%s", tmp);
    return buf;
}
