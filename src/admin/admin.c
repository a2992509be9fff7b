/* The admin API server (see admin.h): one thread, one libuv loop, one
 * request per connection (Connection: close), strict framing. */
#include "admin/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "admin/api.h"
#include "admin/route.h"
#include "config/values.h"
#include "core/log.h"
#include "http/h1.h"

#define ADMIN_MAX_HEAD (16 * 1024)
#define ADMIN_MAX_BODY (64 * 1024)
#define ADMIN_MAX_HEADERS 64
#define ADMIN_MAX_CONNS 32
#define ADMIN_TIMEOUT_MS 10000
#define ADMIN_LINGER_MS 2000
/* Shorter tokens are refused: the token is the only thing between a
 * local process and the whole egress policy. */
#define ADMIN_MIN_TOKEN 16

typedef union admin_stream {
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
} admin_stream_t;

typedef enum admin_conn_state {
    ADMIN_READING = 0, /* collecting the request */
    ADMIN_ANSWERED,    /* response queued, write side shut down, discarding input */
    ADMIN_CLOSING,     /* handles being closed */
} admin_conn_state_t;

typedef struct admin_conn {
    admin_stream_t h; /* first: the handle's address is the connection's */
    uv_timer_t timer; /* request deadline, then linger */
    sl_buf_t in;      /* bytes received so far */
    admin_conn_state_t state;
    int open_handles; /* closes still pending before free */
    struct admin_conn *next, *prev;
} admin_conn_t;

typedef struct admin_write {
    uv_write_t req;
    sl_buf_t data;
} admin_write_t;

static struct {
    bool opened, started;
    bool is_unix;
    char unix_path[128];
    char where[160];          /* listen text for logs */
    unsigned char digest[32]; /* SHA-256 of the token; the token itself is not kept */
    uv_loop_t loop;
    admin_stream_t listener;
    uv_async_t stop;
    pthread_t thread;
    admin_conn_t *conns;
    size_t n_conns;
} adm;

/* ---- token ------------------------------------------------------------- */

static bool token_text_ok(const char *t, size_t n, const char *src)
{
    if (n < ADMIN_MIN_TOKEN) {
        fprintf(stderr,
                "sluice: admin API: the token in %s is shorter than %d characters; use a "
                "random one, e.g. `openssl rand -hex 32`\n",
                src, ADMIN_MIN_TOKEN);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f) {
            fprintf(stderr,
                    "sluice: admin API: the token in %s contains spaces or non-ASCII bytes; "
                    "use visible ASCII, e.g. `openssl rand -hex 32`\n",
                    src);
            return false;
        }
    return true;
}

static int load_token(const sl_config_t *cfg)
{
    if (cfg->admin.token_env) {
        const char *t = getenv(cfg->admin.token_env);
        char src[300];
        snprintf(src, sizeof src, "environment variable %s", cfg->admin.token_env);
        if (t == NULL || *t == '\0') {
            fprintf(stderr,
                    "sluice: admin API: environment variable %s (admin.token_env) is not set; "
                    "export a bearer token there (e.g. `export %s=$(openssl rand -hex 32)`) "
                    "or remove `admin:` from the config\n",
                    cfg->admin.token_env, cfg->admin.token_env);
            return -1;
        }
        if (!token_text_ok(t, strlen(t), src))
            return -1;
        sl_admin_token_digest(t, strlen(t), adm.digest);
        return 0;
    }
    const char *path = cfg->admin.token_file;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd == -1) {
        fprintf(stderr, "sluice: admin API: cannot open admin.token_file %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    struct stat st;
    char buf[4097];
    ssize_t n = -1;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "sluice: admin API: admin.token_file %s is not a regular file\n", path);
    } else if ((st.st_mode & 077) != 0) {
        fprintf(stderr,
                "sluice: admin API: admin.token_file %s has mode %04o, readable by others; "
                "run `chmod 600 %s`\n",
                path, (unsigned)(st.st_mode & 07777), path);
    } else {
        n = read(fd, buf, sizeof buf - 1);
        if (n == -1)
            fprintf(stderr, "sluice: admin API: cannot read %s: %s\n", path, strerror(errno));
    }
    close(fd);
    if (n < 0)
        return -1;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    char src[300];
    snprintf(src, sizeof src, "file %s", path);
    int r = token_text_ok(buf, (size_t)n, src) ? 0 : -1;
    if (r == 0)
        sl_admin_token_digest(buf, (size_t)n, adm.digest);
    memset(buf, 0, sizeof buf);
    return r;
}

/* ---- connections -------------------------------------------------------- */

static void conn_free_cb(uv_handle_t *h)
{
    admin_conn_t *c = h->data;
    if (--c->open_handles > 0)
        return;
    sl_buf_free(&c->in);
    free(c);
}

static void conn_close(admin_conn_t *c)
{
    if (c->state == ADMIN_CLOSING)
        return;
    c->state = ADMIN_CLOSING;
    if (c->prev)
        c->prev->next = c->next;
    else
        adm.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    adm.n_conns--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
    uv_close((uv_handle_t *)&c->h, conn_free_cb);
}

static void timer_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void write_cb(uv_write_t *req, int status)
{
    admin_write_t *w = (admin_write_t *)req;
    sl_buf_free(&w->data);
    free(w);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    free(req);
}

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Error";
    }
}

/* Queue the response, shut down the write side and linger for the peer's
 * FIN, so a client still sending (an oversized body) reads the answer
 * instead of a reset. */
static void respond(admin_conn_t *c, int status, const char *allow, sl_buf_t *body)
{
    admin_write_t *w = calloc(1, sizeof *w);
    if (w == NULL) {
        conn_close(c);
        return;
    }
    sl_buf_append(body, "\n", 1);
    sl_buf_appendf(&w->data,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\nConnection: close\r\n",
                   status, status_text(status), body->n);
    if (allow)
        sl_buf_appendf(&w->data, "Allow: %s\r\n", allow);
    if (status == 401)
        sl_buf_append_str(&w->data, "WWW-Authenticate: Bearer realm=\"sluice-admin\"\r\n");
    sl_buf_append(&w->data, "\r\n", 2);
    sl_buf_append(&w->data, body->p, body->n);
    sl_buf_free(body);
    uv_buf_t b = uv_buf_init(w->data.p, (unsigned)w->data.n);
    c->state = ADMIN_ANSWERED;
    sl_buf_free(&c->in);
    if (uv_write(&w->req, &c->h.s, &b, 1, write_cb) != 0) {
        sl_buf_free(&w->data);
        free(w);
        conn_close(c);
        return;
    }
    uv_shutdown_t *sd = malloc(sizeof *sd);
    if (sd == NULL || uv_shutdown(sd, &c->h.s, shutdown_cb) != 0)
        free(sd);
    uv_timer_start(&c->timer, timer_cb, ADMIN_LINGER_MS, 0);
}

static void respond_error(admin_conn_t *c, int status, const char *code, const char *detail,
                          const char *allow)
{
    sl_buf_t body = {0};
    sl_admin_api_error(&body, code, detail);
    respond(c, status, allow, &body);
}

/* The value of the only header called `name`; false if absent or repeated. */
static bool one_header(const sl_h1_request_t *req, const char *name, sl_view_t *out)
{
    int seen = 0;
    *out = SL_VIEW_NULL;
    for (size_t i = 0; i < req->n_headers; i++)
        if (sl_view_ieq(req->headers[i].name, name)) {
            *out = req->headers[i].value;
            seen++;
        }
    return seen == 1;
}

static void handle(admin_conn_t *c)
{
    sl_h1_header_t hdrs[ADMIN_MAX_HEADERS];
    sl_h1_request_t req = {.headers = hdrs, .n_headers = ADMIN_MAX_HEADERS};
    const char *why = NULL;
    int hl = sl_h1_parse_request(c->in.p, c->in.n, &req, &why);
    if (hl == SL_H1_INCOMPLETE) {
        if (c->in.n > ADMIN_MAX_HEAD)
            respond_error(c, 431, "head_too_large", "request head over 16 KiB", NULL);
        return;
    }
    if (hl < 0) {
        respond_error(c, 400, "bad_request", why ? why : "malformed request", NULL);
        return;
    }
    sl_h1_framing_t fr;
    if (sl_h1_request_framing(&req, &fr, &why) != 0) {
        respond_error(c, 400, "bad_request", why, NULL);
        return;
    }
    if (fr.kind == SL_H1_BODY_CHUNKED) {
        respond_error(c, 411, "length_required", "send the body with Content-Length", NULL);
        return;
    }
    uint64_t blen = fr.kind == SL_H1_BODY_LENGTH ? fr.length : 0;
    if (blen > ADMIN_MAX_BODY) {
        respond_error(c, 413, "body_too_large", "request body over 64 KiB", NULL);
        return;
    }
    if (c->in.n - (size_t)hl < blen)
        return; /* wait for the rest of the body */
    if (c->in.n - (size_t)hl > blen) {
        respond_error(c, 400, "bad_request", "one request per connection (no pipelining)", NULL);
        return;
    }
    char method[16], target[128];
    snprintf(method, sizeof method, "%.*s", (int)req.method.n, req.method.p);
    snprintf(target, sizeof target, "%.*s", (int)req.target.n, req.target.p);
    sl_view_t auth, actor_h;
    if (!one_header(&req, "Authorization", &auth) || !sl_admin_token_ok(auth, adm.digest)) {
        sl_warn("admin: %s %s refused: missing or wrong bearer token", method, target);
        respond_error(c, 401, "unauthorized",
                      "send Authorization: Bearer <token> (the token of admin.token_env or "
                      "admin.token_file)",
                      NULL);
        return;
    }
    if (!one_header(&req, "X-Sluice-Actor", &actor_h))
        actor_h = SL_VIEW_NULL;
    char actor[SL_ADMIN_ACTOR_MAX + 1];
    sl_admin_actor(actor_h, actor);
    sl_admin_route_t r;
    const char *allow;
    int st = sl_admin_route(req.method, req.target, &r, &allow, &why);
    if (st != 0) {
        respond_error(c, st,
                      st == 405   ? "method_not_allowed"
                      : st == 404 ? "not_found"
                                  : "bad_request",
                      st == 405 ? "this endpoint takes another method (see Allow)" : why, allow);
        return;
    }
    sl_admin_args_t args;
    sl_buf_t err = {0};
    if (!sl_admin_op_has_body(r.op) && blen > 0) {
        respond_error(c, 400, "bad_request", "this endpoint takes no body", NULL);
        return;
    }
    if (sl_admin_parse_body(r.op, c->in.p + hl, (size_t)blen, &args, &err) != 0) {
        respond_error(c, 400, "bad_body", sl_buf_cstr(&err), NULL);
        sl_buf_free(&err);
        return;
    }
    sl_buf_t out = {0};
    st = sl_admin_api_call(&r, &args, actor, &out);
    sl_info("admin: %s %s by %s -> %d", method, target, actor, st);
    respond(c, st, NULL, &out);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char rbuf[16384]; /* the admin loop is one thread */
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    admin_conn_t *c = s->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->state != ADMIN_READING)
        return; /* answered: discard until the peer closes */
    if (c->in.n + (size_t)nread > ADMIN_MAX_HEAD + ADMIN_MAX_BODY + 1) {
        respond_error(c, 413, "body_too_large", "request over the admin API's size limit", NULL);
        return;
    }
    sl_buf_append(&c->in, buf->base, (size_t)nread);
    handle(c);
}

static void on_connection(uv_stream_t *l, int status)
{
    if (status != 0)
        return;
    admin_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return;
    if (adm.is_unix)
        uv_pipe_init(&adm.loop, &c->h.pipe, 0);
    else
        uv_tcp_init(&adm.loop, &c->h.tcp);
    uv_timer_init(&adm.loop, &c->timer);
    c->h.s.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = adm.conns;
    if (adm.conns)
        adm.conns->prev = c;
    adm.conns = c;
    adm.n_conns++;
    if (uv_accept(l, &c->h.s) != 0 || adm.n_conns > ADMIN_MAX_CONNS) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, timer_cb, ADMIN_TIMEOUT_MS, 0);
    uv_read_start(&c->h.s, alloc_cb, read_cb);
}

/* ---- lifecycle ---------------------------------------------------------- */

static int bind_unix(const char *path)
{
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fprintf(stderr,
                    "sluice: admin API: %s exists and is not a socket; remove it or choose "
                    "another admin.listen\n",
                    path);
            return -1;
        }
        unlink(path); /* a socket left by a previous run */
    }
    uv_pipe_init(&adm.loop, &adm.listener.pipe, 0);
    int r = uv_pipe_bind(&adm.listener.pipe, path);
    /* Bound but not yet listening: nobody can connect before the mode is set. */
    if (r == 0 && chmod(path, 0600) == -1)
        r = uv_translate_sys_error(errno);
    if (r == 0)
        r = uv_listen(&adm.listener.s, 64, on_connection);
    if (r != 0) {
        fprintf(stderr, "sluice: admin API: cannot listen on unix:%s: %s\n", path, uv_strerror(r));
        return -1;
    }
    return 0;
}

static int bind_tcp(const char *listen)
{
    char host[SL_CFG_HOST_MAX];
    uint16_t port;
    struct sockaddr_storage ss;
    if (sl_cfg_parse_listen(sl_view(listen, strlen(listen)), host, &port) != NULL)
        return -1; /* the config loader refused it already */
    int r = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                              : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (r == 0) {
        uv_tcp_init(&adm.loop, &adm.listener.tcp);
        r = uv_tcp_bind(&adm.listener.tcp, (struct sockaddr *)&ss, 0);
        if (r == 0)
            r = uv_listen(&adm.listener.s, 64, on_connection);
    }
    if (r != 0) {
        fprintf(stderr,
                "sluice: admin API: cannot listen on %s: %s (is another sluice running? "
                "change admin.listen)\n",
                listen, uv_strerror(r));
        return -1;
    }
    return 0;
}

static void stop_cb(uv_async_t *a)
{
    uv_close((uv_handle_t *)&adm.listener, NULL);
    while (adm.conns)
        conn_close(adm.conns);
    uv_close((uv_handle_t *)&adm.stop, NULL);
}

int sl_admin_open(const sl_config_t *cfg)
{
    if (cfg->admin.listen == NULL)
        return 0;
    if (load_token(cfg) != 0)
        return -1;
    uv_loop_init(&adm.loop);
    adm.is_unix = strncmp(cfg->admin.listen, "unix:", 5) == 0;
    snprintf(adm.where, sizeof adm.where, "%s", cfg->admin.listen);
    int r;
    if (adm.is_unix) {
        snprintf(adm.unix_path, sizeof adm.unix_path, "%s", cfg->admin.listen + 5);
        r = bind_unix(adm.unix_path);
    } else {
        r = bind_tcp(cfg->admin.listen);
    }
    if (r != 0) {
        /* Close what was initialised so the loop can be closed. */
        if (uv_is_active((uv_handle_t *)&adm.listener) || adm.listener.s.loop == &adm.loop)
            uv_close((uv_handle_t *)&adm.listener, NULL);
        uv_run(&adm.loop, UV_RUN_DEFAULT);
        uv_loop_close(&adm.loop);
        return -1;
    }
    uv_async_init(&adm.loop, &adm.stop, stop_cb);
    adm.opened = true;
    return 0;
}

static void *admin_main(void *arg)
{
    uv_run(&adm.loop, UV_RUN_DEFAULT);
    return NULL;
}

void sl_admin_start(void)
{
    if (!adm.opened || adm.started)
        return;
    if (pthread_create(&adm.thread, NULL, admin_main, NULL) != 0) {
        sl_error("admin API: cannot start its thread; the admin API is off");
        return;
    }
    adm.started = true;
    sl_info("admin API listening on %s", adm.where);
}

void sl_admin_stop(void)
{
    if (!adm.opened)
        return;
    adm.opened = false;
    if (adm.started) {
        uv_async_send(&adm.stop);
        pthread_join(adm.thread, NULL);
    } else {
        stop_cb(&adm.stop);
        uv_run(&adm.loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&adm.loop);
    if (adm.is_unix)
        unlink(adm.unix_path);
    sl_info("admin API stopped");
}
