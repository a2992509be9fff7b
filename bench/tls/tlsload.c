/* tlsload: HTTPS load generator for the TLS interception bench.
 *
 * wrk cannot speak CONNECT, so this drives intercepting proxies itself:
 * N concurrent connections (single thread, epoll), each
 *   TCP connect to the proxy -> "CONNECT host:port HTTP/1.1" -> 200
 *   -> TLS handshake with SNI, verified against --cafile
 *   -> keep-alive "GET path HTTP/1.1" for the duration,
 * counting complete responses (status 200, Content-Length body) and
 * recording each request's latency in a log-linear histogram (0.1 %
 * resolution) for p50/p90/p99.
 *
 * --new-conn: one request per connection (connect + CONNECT + full
 *   handshake + GET + close), to measure the new-connection rate; the
 *   latency is then the whole sequence. The client never resumes sessions.
 * --direct: no CONNECT; TLS straight to the address (the origin), as the
 *   baseline.
 *
 * Output: one JSON object on stdout (requests, duration_s, rps, p50_us,
 * p99_us, errors by kind, ...). Exit 0 when it ran (even with errors),
 * 1 when --check failed, 2 on usage or setup errors.
 *
 * Build: part of the normal CMake build (target tlsload, option
 * SLUICE_BENCH). Usage: tlsload --help. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* ------------------------------------------------------------------------ */
/* latency histogram: exact below 2^HB, then 2^(HB-1) sub-buckets per power
 * of two (relative error < 0.1 %). Values are microseconds. */

enum { HB = 10, HSUB = 1 << (HB - 1), HBUCKETS = (1 << HB) + 40 * HSUB };

typedef struct hist {
    uint64_t count[HBUCKETS]; /* requests per bucket */
    uint64_t n;               /* total recorded */
    double sum_us;            /* for the mean */
    uint64_t max_us;          /* largest value recorded */
} hist_t;

static int hist_index(uint64_t v)
{
    if (v < (1u << HB))
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int s = msb - HB + 1;
    if (s > 40)
        return HBUCKETS - 1;
    uint64_t top = v >> s;
    return (1 << HB) + (s - 1) * HSUB + (int)(top - HSUB);
}

static double hist_value(int idx)
{
    if (idx < (1 << HB))
        return idx;
    int s = (idx - (1 << HB)) / HSUB + 1;
    uint64_t top = (uint64_t)((idx - (1 << HB)) % HSUB + HSUB);
    /* Middle of the bucket. */
    return (double)(top << s) + (double)(1ull << s) / 2.0;
}

static void hist_add(hist_t *h, uint64_t us)
{
    h->count[hist_index(us)]++;
    h->n++;
    h->sum_us += (double)us;
    if (us > h->max_us)
        h->max_us = us;
}

static double hist_pct(const hist_t *h, double pct)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)((double)h->n * pct / 100.0 + 0.5);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HBUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want)
            return hist_value(i);
    }
    return (double)h->max_us;
}

/* ------------------------------------------------------------------------ */
/* options and counters */

typedef struct opts {
    struct sockaddr_in addr; /* proxy (or origin with --direct) */
    const char *connect;     /* CONNECT authority, host:port */
    const char *sni;         /* SNI and verified name */
    const char *host;        /* Host header */
    const char *path;        /* GET path */
    const char *cafile;      /* trust anchors for the server certificate */
    int conns;               /* concurrent connections */
    double duration;         /* seconds */
    long max_requests;       /* stop after this many responses (0 = no limit) */
    long expect_len;         /* required body length (-1 = any) */
    double timeout;          /* per-step timeout, seconds */
    bool new_conn;           /* one request per connection */
    bool direct;             /* no CONNECT */
    bool check;              /* exit 1 unless every request succeeded */
} opts_t;

enum err_kind {
    E_CONNECT,
    E_PROXY,
    E_HANDSHAKE,
    E_READ,
    E_WRITE,
    E_STATUS,
    E_LENGTH,
    E_TIMEOUT,
    E_N
};
static const char *const err_name[E_N] = {"connect", "proxy",  "handshake", "read",
                                          "write",   "status", "length",    "timeout"};

typedef struct stats {
    uint64_t requests;     /* complete, successful responses */
    uint64_t body_bytes;   /* body bytes of those */
    uint64_t conns_opened; /* TCP connections started */
    uint64_t handshakes;   /* TLS handshakes completed */
    uint64_t server_close; /* keep-alive connections the server closed cleanly */
    uint64_t errors[E_N];  /* failures by kind */
    hist_t lat;            /* per-request latency, µs */
} stats_t;

/* ------------------------------------------------------------------------ */
/* connections */

enum cstate { C_IDLE, C_TCP, C_PROXY_W, C_PROXY_R, C_TLS, C_REQ_W, C_RESP_R };

typedef struct conn {
    enum cstate st;    /* where this connection is */
    int fd;            /* socket, -1 when idle */
    SSL *ssl;          /* TLS session, NULL before the handshake starts */
    uint32_t ev;       /* epoll events currently registered */
    double t_req;      /* when the measured request (or connection) began */
    double deadline;   /* the current step fails after this */
    size_t off;        /* bytes written of the CONNECT or request */
    char head[8192];   /* response or CONNECT-reply head being read */
    size_t head_len;   /* bytes in head */
    long body_left;    /* body bytes still to read; -1 while reading the head */
    long body_len;     /* Content-Length of the current response */
    bool server_close; /* response said Connection: close */
    double retry_at;   /* an idle slot reconnects no earlier than this */
} conn_t;

static opts_t O;
static stats_t S;
static SSL_CTX *ctx;
static int ep;
static char req_buf[1024], connect_buf[512];
static size_t req_len, connect_len;
static volatile sig_atomic_t stop_flag;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void set_events(conn_t *c, uint32_t ev)
{
    if (c->ev == ev)
        return;
    struct epoll_event e = {.events = ev, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) == -1) {
        perror("tlsload: epoll_ctl");
        exit(2);
    }
    c->ev = ev;
}

static void conn_close(conn_t *c)
{
    if (c->ssl != NULL) {
        /* close_notify, best effort: the proxy sees an orderly end. */
        if (SSL_is_init_finished(c->ssl))
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd != -1) {
        close(c->fd); /* also removes it from the epoll set */
        c->fd = -1;
    }
    c->st = C_IDLE;
    c->ev = 0;
}

static void conn_fail(conn_t *c, enum err_kind k)
{
    S.errors[k]++;
    /* Back off a little so a dead proxy is not hammered in a tight loop. */
    c->retry_at = now_s() + 0.01;
    if (O.check)
        stop_flag = 1; /* a check reports the first failure, not thousands */
    conn_close(c);
}

static void conn_start(conn_t *c, double now)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd == -1) {
        conn_fail(c, E_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    S.conns_opened++;
    c->t_req = now_s();
    c->deadline = now + O.timeout;
    c->off = 0;
    c->head_len = 0;
    c->body_left = -1;
    c->server_close = false;
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e) == -1) {
        perror("tlsload: epoll_ctl add");
        exit(2);
    }
    c->ev = EPOLLOUT;
    if (connect(c->fd, (struct sockaddr *)&O.addr, sizeof O.addr) == -1 && errno != EINPROGRESS) {
        conn_fail(c, E_CONNECT);
        return;
    }
    c->st = C_TCP;
}

static void step(conn_t *c, double now);

static bool tls_begin(conn_t *c)
{
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL)
        return false;
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, O.sni);
    SSL_set1_host(c->ssl, O.sni);
    SSL_set_connect_state(c->ssl);
    c->st = C_TLS;
    return true;
}

static void begin_request(conn_t *c, double now)
{
    c->st = C_REQ_W;
    c->off = 0;
    c->head_len = 0;
    c->body_left = -1;
    c->deadline = now + O.timeout;
    if (!O.new_conn)
        c->t_req = now_s();
}

/* Map an SSL_ERROR to the epoll events to wait for; false on a real error. */
static bool ssl_want(conn_t *c, int r)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        set_events(c, EPOLLIN);
        return true;
    case SSL_ERROR_WANT_WRITE:
        set_events(c, EPOLLOUT);
        return true;
    default:
        return false;
    }
}

/* Parse a response head in c->head[0..end). Returns the status code, sets
 * body_len (-1 when absent) and server_close. */
static int parse_head(conn_t *c, size_t end)
{
    c->head[end] = '\0';
    int status = 0;
    if (sscanf(c->head, "HTTP/1.%*1d %3d", &status) != 1)
        return -1;
    c->body_len = -1;
    for (char *ln = strstr(c->head, "\r\n"); ln != NULL && ln + 2 < c->head + end;
         ln = strstr(ln + 2, "\r\n")) {
        char *h = ln + 2;
        if (strncasecmp(h, "content-length:", 15) == 0)
            c->body_len = strtol(h + 15, NULL, 10);
        else if (strncasecmp(h, "connection:", 11) == 0) {
            char *v = h + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0)
                c->server_close = true;
        }
    }
    return status;
}

static void response_done(conn_t *c, double now)
{
    S.requests++;
    S.body_bytes += (uint64_t)c->body_len;
    double us = (now_s() - c->t_req) * 1e6;
    hist_add(&S.lat, us < 0 ? 0 : (uint64_t)us);
    if (O.new_conn || c->server_close) {
        if (!O.new_conn)
            S.server_close++;
        conn_close(c);
        return;
    }
    begin_request(c, now);
}

static void read_response(conn_t *c, double now)
{
    for (;;) {
        char tmp[16384];
        char *p;
        int r;
        if (c->body_left < 0) {
            p = c->head + c->head_len;
            r = SSL_read(c->ssl, p, (int)(sizeof c->head - 1 - c->head_len));
        } else {
            p = tmp;
            r = SSL_read(c->ssl, tmp, (int)sizeof tmp);
        }
        if (r <= 0) {
            if (!ssl_want(c, r))
                conn_fail(c, E_READ);
            return;
        }
        size_t n = (size_t)r;
        if (c->body_left < 0) {
            size_t scan = c->head_len > 3 ? c->head_len - 3 : 0;
            c->head_len += n;
            char *end = memmem(c->head + scan, c->head_len - scan, "\r\n\r\n", 4);
            if (end == NULL) {
                if (c->head_len >= sizeof c->head - 1)
                    conn_fail(c, E_READ);
                continue;
            }
            size_t hlen = (size_t)(end - c->head) + 4;
            size_t extra = c->head_len - hlen;
            int status = parse_head(c, hlen);
            if (status != 200) {
                conn_fail(c, E_STATUS);
                return;
            }
            if (c->body_len < 0 || (O.expect_len >= 0 && c->body_len != O.expect_len)) {
                conn_fail(c, E_LENGTH);
                return;
            }
            if ((long)extra > c->body_len) {
                conn_fail(c, E_READ); /* bytes after the body: we never pipeline */
                return;
            }
            c->body_left = c->body_len - (long)extra;
        } else {
            if ((long)n > c->body_left) {
                conn_fail(c, E_READ);
                return;
            }
            c->body_left -= (long)n;
        }
        if (c->body_left == 0) {
            response_done(c, now);
            return;
        }
    }
}

static void step(conn_t *c, double now)
{
    for (;;) {
        switch (c->st) {
        case C_IDLE:
            return;
        case C_TCP: {
            int err = 0;
            socklen_t len = sizeof err;
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1 || err != 0) {
                conn_fail(c, E_CONNECT);
                return;
            }
            if (O.direct) {
                if (!tls_begin(c)) {
                    conn_fail(c, E_HANDSHAKE);
                    return;
                }
            } else {
                c->st = C_PROXY_W;
                c->off = 0;
            }
            break;
        }
        case C_PROXY_W: {
            ssize_t w = send(c->fd, connect_buf + c->off, connect_len - c->off, MSG_NOSIGNAL);
            if (w == -1) {
                if (errno == EAGAIN) {
                    set_events(c, EPOLLOUT);
                    return;
                }
                conn_fail(c, E_PROXY);
                return;
            }
            c->off += (size_t)w;
            if (c->off == connect_len) {
                c->st = C_PROXY_R;
                c->head_len = 0;
            }
            break;
        }
        case C_PROXY_R: {
            /* The proxy sends nothing after its reply until the ClientHello,
             * so reading whatever is there cannot eat TLS bytes. */
            ssize_t r = recv(c->fd, c->head + c->head_len, sizeof c->head - 1 - c->head_len, 0);
            if (r == -1 && errno == EAGAIN) {
                set_events(c, EPOLLIN);
                return;
            }
            if (r <= 0) {
                conn_fail(c, E_PROXY);
                return;
            }
            c->head_len += (size_t)r;
            c->head[c->head_len] = '\0';
            char *end = strstr(c->head, "\r\n\r\n");
            if (end == NULL) {
                if (c->head_len >= sizeof c->head - 1) {
                    conn_fail(c, E_PROXY);
                    return;
                }
                break;
            }
            int status = 0;
            if (end + 4 != c->head + c->head_len ||
                sscanf(c->head, "HTTP/1.%*1d %3d", &status) != 1 || status != 200) {
                if (O.check)
                    fprintf(stderr, "tlsload: CONNECT answered: %.200s\n", c->head);
                conn_fail(c, E_PROXY);
                return;
            }
            if (!tls_begin(c)) {
                conn_fail(c, E_HANDSHAKE);
                return;
            }
            break;
        }
        case C_TLS: {
            int r = SSL_do_handshake(c->ssl);
            if (r != 1) {
                if (!ssl_want(c, r)) {
                    if (O.check) {
                        long v = SSL_get_verify_result(c->ssl);
                        fprintf(stderr, "tlsload: handshake failed: %s (verify: %s)\n",
                                ERR_reason_error_string(ERR_peek_last_error()),
                                X509_verify_cert_error_string(v));
                    }
                    ERR_clear_error();
                    conn_fail(c, E_HANDSHAKE);
                }
                return;
            }
            S.handshakes++;
            begin_request(c, now);
            break;
        }
        case C_REQ_W: {
            int r = SSL_write(c->ssl, req_buf, (int)req_len);
            if (r <= 0) {
                if (!ssl_want(c, r))
                    conn_fail(c, E_WRITE);
                return;
            }
            c->st = C_RESP_R;
            break;
        }
        case C_RESP_R:
            read_response(c, now);
            if (c->st == C_RESP_R || c->st == C_IDLE)
                return;
            break;
        }
    }
}

/* ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f, "usage: tlsload --proxy IP:PORT --connect HOST:PORT | --direct IP:PORT\n"
               "               --sni NAME --cafile PEM [options]\n"
               "  --proxy IP:PORT     the proxy to CONNECT through\n"
               "  --direct IP:PORT    no proxy: TLS straight to this address\n"
               "  --connect HOST:PORT CONNECT authority (default SNI:443)\n"
               "  --sni NAME          SNI and the name the certificate must carry\n"
               "  --host NAME         Host header (default: the SNI)\n"
               "  --path PATH         GET path (default /)\n"
               "  --cafile PEM        CA bundle to verify the server certificate\n"
               "  -c, --connections N concurrent connections (32)\n"
               "  -d, --duration S    seconds to run (10)\n"
               "  -n, --requests N    stop after N responses\n"
               "  --expect-len N      every body must be N bytes\n"
               "  --timeout S         per-step timeout (5)\n"
               "  --new-conn          one request per connection (full handshake each)\n"
               "  --check             print failure reasons; exit 1 unless all succeeded\n");
}

static bool parse_addr(const char *s, struct sockaddr_in *a)
{
    char ip[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof ip)
        return false;
    memcpy(ip, s, (size_t)(colon - s));
    ip[colon - s] = '\0';
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return false;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, ip, &a->sin_addr) == 1;
}

static void parse_opts(int argc, char **argv)
{
    static const struct option lo[] = {{"proxy", required_argument, 0, 'P'},
                                       {"direct", required_argument, 0, 'D'},
                                       {"connect", required_argument, 0, 'C'},
                                       {"sni", required_argument, 0, 's'},
                                       {"host", required_argument, 0, 'H'},
                                       {"path", required_argument, 0, 'p'},
                                       {"cafile", required_argument, 0, 'a'},
                                       {"connections", required_argument, 0, 'c'},
                                       {"duration", required_argument, 0, 'd'},
                                       {"requests", required_argument, 0, 'n'},
                                       {"expect-len", required_argument, 0, 'L'},
                                       {"timeout", required_argument, 0, 't'},
                                       {"new-conn", no_argument, 0, 'N'},
                                       {"check", no_argument, 0, 'k'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    O.conns = 32;
    O.duration = 10;
    O.expect_len = -1;
    O.timeout = 5;
    O.path = "/";
    bool have_addr = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:d:n:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'P':
        case 'D':
            if (!parse_addr(optarg, &O.addr)) {
                fprintf(stderr, "tlsload: bad address %s (want IPv4:PORT)\n", optarg);
                exit(2);
            }
            O.direct = ch == 'D';
            have_addr = true;
            break;
        case 'C':
            O.connect = optarg;
            break;
        case 's':
            O.sni = optarg;
            break;
        case 'H':
            O.host = optarg;
            break;
        case 'p':
            O.path = optarg;
            break;
        case 'a':
            O.cafile = optarg;
            break;
        case 'c':
            O.conns = atoi(optarg);
            break;
        case 'd':
            O.duration = atof(optarg);
            break;
        case 'n':
            O.max_requests = atol(optarg);
            break;
        case 'L':
            O.expect_len = atol(optarg);
            break;
        case 't':
            O.timeout = atof(optarg);
            break;
        case 'N':
            O.new_conn = true;
            break;
        case 'k':
            O.check = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (!have_addr || O.sni == NULL || O.cafile == NULL || O.conns < 1 || O.duration <= 0 ||
        O.timeout <= 0) {
        usage(stderr);
        exit(2);
    }
    if (O.host == NULL)
        O.host = O.sni;
    static char dflt[300];
    if (O.connect == NULL) {
        snprintf(dflt, sizeof dflt, "%s:443", O.sni);
        O.connect = dflt;
    }
}

static void setup_tls(void)
{
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, O.cafile, NULL) != 1) {
        fprintf(stderr, "tlsload: cannot load CA file %s\n", O.cafile);
        goto fail;
    }
    /* Every handshake is a full one: no client session cache, no tickets. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    return;
fail:
    ERR_print_errors_fp(stderr);
    exit(2);
}

static void print_json(double elapsed)
{
    uint64_t nerr = 0;
    for (int k = 0; k < E_N; k++)
        nerr += S.errors[k];
    printf("{\"mode\": \"%s\", \"connections\": %d, \"requests\": %llu, "
           "\"duration_s\": %.3f, \"rps\": %.1f, ",
           O.new_conn ? "new-conn" : "keep-alive", O.conns, (unsigned long long)S.requests, elapsed,
           elapsed > 0 ? (double)S.requests / elapsed : 0.0);
    printf("\"p50_us\": %.0f, \"p90_us\": %.0f, \"p99_us\": %.0f, \"p999_us\": %.0f, "
           "\"max_us\": %llu, \"mean_us\": %.1f, ",
           hist_pct(&S.lat, 50), hist_pct(&S.lat, 90), hist_pct(&S.lat, 99), hist_pct(&S.lat, 99.9),
           (unsigned long long)S.lat.max_us, S.lat.n ? S.lat.sum_us / (double)S.lat.n : 0.0);
    printf("\"body_bytes\": %llu, \"conns_opened\": %llu, \"handshakes\": %llu, "
           "\"server_closes\": %llu, \"error_count\": %llu, \"errors\": {",
           (unsigned long long)S.body_bytes, (unsigned long long)S.conns_opened,
           (unsigned long long)S.handshakes, (unsigned long long)S.server_close,
           (unsigned long long)nerr);
    for (int k = 0; k < E_N; k++)
        printf("%s\"%s\": %llu", k ? ", " : "", err_name[k], (unsigned long long)S.errors[k]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("}, \"client_cpu_s\": %.3f}\n", cpu);
}

int main(int argc, char **argv)
{
    parse_opts(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setup_tls();
    connect_len = (size_t)snprintf(connect_buf, sizeof connect_buf,
                                   "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", O.connect, O.connect);
    req_len = (size_t)snprintf(req_buf, sizeof req_buf,
                               "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tlsload\r\n\r\n", O.path,
                               O.host);
    if (connect_len >= sizeof connect_buf || req_len >= sizeof req_buf) {
        fprintf(stderr, "tlsload: host or path too long\n");
        return 2;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    conn_t *conns = calloc((size_t)O.conns, sizeof *conns);
    if (ep == -1 || conns == NULL) {
        perror("tlsload");
        return 2;
    }
    double t0 = now_s(), end = t0 + O.duration, now = t0;
    for (int i = 0; i < O.conns; i++) {
        conns[i].fd = -1;
        conn_start(&conns[i], now);
    }
    struct epoll_event evs[256];
    while (!stop_flag && now < end && (O.max_requests == 0 || (long)S.requests < O.max_requests)) {
        int wait_ms = (int)((end - now) * 1000) + 1;
        if (wait_ms > 10)
            wait_ms = 10; /* timeouts and reconnect back-off are checked per wake-up */
        int n = epoll_wait(ep, evs, 256, wait_ms);
        if (n == -1 && errno != EINTR) {
            perror("tlsload: epoll_wait");
            return 2;
        }
        now = now_s();
        for (int i = 0; i < n; i++)
            step(evs[i].data.ptr, now);
        for (int i = 0; i < O.conns; i++) {
            conn_t *c = &conns[i];
            if (c->st != C_IDLE && now > c->deadline)
                conn_fail(c, E_TIMEOUT);
            /* A new connection waits for EPOLLOUT (connect done). */
            if (c->st == C_IDLE && now < end && now >= c->retry_at)
                conn_start(c, now);
        }
    }
    double elapsed = now_s() - t0;
    for (int i = 0; i < O.conns; i++)
        conn_close(&conns[i]);
    print_json(elapsed);
    free(conns);
    close(ep);
    SSL_CTX_free(ctx);
    if (O.check) {
        uint64_t nerr = 0;
        for (int k = 0; k < E_N; k++)
            nerr += S.errors[k];
        if (nerr != 0 || S.requests == 0 ||
            (O.max_requests != 0 && (long)S.requests < O.max_requests)) {
            fprintf(stderr, "tlsload: check failed: %llu responses, %llu errors\n",
                    (unsigned long long)S.requests, (unsigned long long)nerr);
            return 1;
        }
    }
    return 0;
}
