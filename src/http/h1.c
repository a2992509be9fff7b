#include "http/h1.h"

#include <string.h>

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~" DIGIT ALPHA */
static const unsigned char tchar_map[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

bool sl_h1_is_tchar(unsigned char c)
{
    return tchar_map[c] != 0;
}

/* Parser cursor over the head. `lenient_lf` accepts a bare LF as line end. */
typedef struct cursor {
    const char *p, *end;
    bool lenient_lf;
    const char **err;
} cursor_t;

#define FAIL(msg)                                                                                  \
    do {                                                                                           \
        *c->err = (msg);                                                                           \
        return SL_H1_BAD;                                                                          \
    } while (0)
#define NEED()                                                                                     \
    do {                                                                                           \
        return SL_H1_INCOMPLETE;                                                                   \
    } while (0)

/* Consume a line ending at c->p. Returns 1 on success, -2 need more, -1 bad. */
static int eat_eol(cursor_t *c)
{
    if (c->p == c->end)
        NEED();
    if (*c->p == '\r') {
        if (c->p + 1 == c->end)
            NEED();
        if (c->p[1] != '\n')
            FAIL("bare CR in message head");
        c->p += 2;
        return 1;
    }
    if (*c->p == '\n') {
        if (!c->lenient_lf)
            FAIL("bare LF line ending in message head");
        c->p++;
        return 1;
    }
    FAIL("unexpected byte at end of line");
}

/* Parse "HTTP/1.x". */
static int parse_version(cursor_t *c, int *minor)
{
    static const char proto[] = "HTTP/1.";
    size_t have = (size_t)(c->end - c->p);
    size_t cmp = have < 7 ? have : 7;
    if (memcmp(c->p, proto, cmp) != 0)
        FAIL("invalid HTTP version");
    if (have < 8)
        NEED();
    char d = c->p[7];
    if (d != '0' && d != '1')
        FAIL("unsupported HTTP version (only HTTP/1.0 and HTTP/1.1)");
    *minor = d - '0';
    c->p += 8;
    return 1;
}

/* Parse header fields up to and including the empty line. */
static int parse_headers(cursor_t *c, sl_h1_header_t *hdrs, size_t *n_hdrs)
{
    size_t cap = *n_hdrs, n = 0;
    for (;;) {
        if (c->p == c->end)
            NEED();
        if (*c->p == '\r' || *c->p == '\n') {
            int r = eat_eol(c);
            if (r != 1)
                return r;
            *n_hdrs = n;
            return 1;
        }
        if (*c->p == ' ' || *c->p == '\t')
            FAIL("obsolete line folding (obs-fold) in header");
        const char *name = c->p;
        while (c->p < c->end && tchar_map[(unsigned char)*c->p])
            c->p++;
        if (c->p == c->end)
            NEED();
        if (*c->p != ':') {
            if (*c->p == ' ' || *c->p == '\t')
                FAIL("whitespace between header name and colon");
            FAIL("invalid character in header name");
        }
        if (c->p == name)
            FAIL("empty header name");
        size_t name_len = (size_t)(c->p - name);
        c->p++;
        while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
            c->p++;
        const char *val = c->p;
        const char *val_end = NULL;
        while (c->p < c->end) {
            unsigned char ch = (unsigned char)*c->p;
            if (ch == '\r' || ch == '\n') {
                val_end = c->p;
                break;
            }
            if (ch == 0)
                FAIL("NUL byte in header value");
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                FAIL("control character in header value");
            c->p++;
        }
        if (val_end == NULL)
            NEED();
        int r = eat_eol(c);
        if (r != 1)
            return r;
        while (val_end > val && (val_end[-1] == ' ' || val_end[-1] == '\t'))
            val_end--;
        if (n == cap)
            FAIL("too many header fields");
        hdrs[n].name = sl_view(name, name_len);
        hdrs[n].value = sl_view(val, (size_t)(val_end - val));
        n++;
    }
}

int sl_h1_parse_request(const char *buf, size_t len, sl_h1_request_t *req, const char **err)
{
    cursor_t cur = {buf, buf + len, false, err}, *c = &cur;
    /* RFC 9112 2.2: a server SHOULD ignore at least one empty line before the
     * request-line; we ignore exactly CRLFs between pipelined requests. */
    while (c->end - c->p >= 2 && c->p[0] == '\r' && c->p[1] == '\n')
        c->p += 2;
    const char *m = c->p;
    while (c->p < c->end && tchar_map[(unsigned char)*c->p])
        c->p++;
    if (c->p == c->end)
        NEED();
    if (*c->p != ' ' || c->p == m)
        FAIL("invalid method");
    req->method = sl_view(m, (size_t)(c->p - m));
    c->p++;
    const char *t = c->p;
    while (c->p < c->end && (unsigned char)*c->p > 0x20 && (unsigned char)*c->p < 0x7f)
        c->p++;
    if (c->p == c->end)
        NEED();
    if (*c->p != ' ' || c->p == t)
        FAIL("invalid request target");
    req->target = sl_view(t, (size_t)(c->p - t));
    c->p++;
    int r = parse_version(c, &req->minor_version);
    if (r != 1)
        return r;
    if ((r = eat_eol(c)) != 1)
        return r;
    if ((r = parse_headers(c, req->headers, &req->n_headers)) != 1)
        return r;
    return (int)(c->p - buf);
}

int sl_h1_parse_response(const char *buf, size_t len, sl_h1_response_t *res, const char **err)
{
    cursor_t cur = {buf, buf + len, true, err}, *c = &cur;
    int r = parse_version(c, &res->minor_version);
    if (r != 1)
        return r;
    if (c->end - c->p < 5)
        NEED();
    if (c->p[0] != ' ')
        FAIL("invalid status line");
    int st = 0;
    for (int i = 1; i <= 3; i++) {
        if (c->p[i] < '0' || c->p[i] > '9')
            FAIL("invalid status code");
        st = st * 10 + (c->p[i] - '0');
    }
    if (st < 100 || st > 599)
        FAIL("status code out of range");
    res->status = st;
    c->p += 4;
    const char *reason = c->p;
    if (*c->p == ' ') {
        c->p++;
        reason = c->p;
        while (c->p < c->end && *c->p != '\r' && *c->p != '\n') {
            unsigned char ch = (unsigned char)*c->p;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                FAIL("control character in reason phrase");
            c->p++;
        }
    }
    res->reason = sl_view(reason, (size_t)(c->p - reason));
    if ((r = eat_eol(c)) != 1)
        return r;
    if ((r = parse_headers(c, res->headers, &res->n_headers)) != 1)
        return r;
    return (int)(c->p - buf);
}

/* Does a comma-separated header value list contain `token`? */
static bool list_has_token(sl_view_t v, const char *token)
{
    size_t tl = strlen(token);
    const char *p = v.p, *end = v.p + v.n;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return true;
    }
    return false;
}

/* Parse a Content-Length value: 1*DIGIT, no sign, no list, no overflow. */
static int parse_content_length(sl_view_t v, uint64_t *out)
{
    if (v.n == 0 || v.n > 19)
        return -1;
    uint64_t n = 0;
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(v.p[i] - '0');
    }
    *out = n;
    return 0;
}

/* Shared CL/TE checks for requests and responses. */
static int framing_common(const sl_h1_header_t *h, size_t n, int minor, sl_h1_framing_t *out,
                          const char **err)
{
    int n_cl = 0, n_te = 0;
    sl_view_t cl = SL_VIEW_NULL, te = SL_VIEW_NULL;
    bool conn_close = false, conn_keep = false, conn_upgrade = false, has_upgrade = false;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (sl_view_ieq(h[i].name, "content-length")) {
            n_cl++;
            cl = h[i].value;
        } else if (sl_view_ieq(h[i].name, "transfer-encoding")) {
            n_te++;
            te = h[i].value;
        } else if (sl_view_ieq(h[i].name, "connection")) {
            conn_close |= list_has_token(h[i].value, "close");
            conn_keep |= list_has_token(h[i].value, "keep-alive");
            conn_upgrade |= list_has_token(h[i].value, "upgrade");
        } else if (sl_view_ieq(h[i].name, "upgrade")) {
            has_upgrade = true;
        } else if (sl_view_ieq(h[i].name, "expect")) {
            if (sl_view_ieq(h[i].value, "100-continue"))
                out->expect_100 = true;
        }
    }
    if (n_cl && n_te) {
        *err = "both Content-Length and Transfer-Encoding";
        return -1;
    }
    if (n_cl > 1) {
        *err = "duplicate Content-Length";
        return -1;
    }
    if (n_te > 1) {
        *err = "duplicate Transfer-Encoding";
        return -1;
    }
    if (n_cl) {
        if (parse_content_length(cl, &out->length) != 0) {
            *err = "invalid Content-Length";
            return -1;
        }
        out->kind = SL_H1_BODY_LENGTH;
    } else if (n_te) {
        if (minor == 0) {
            *err = "Transfer-Encoding in an HTTP/1.0 message";
            return -1;
        }
        if (!sl_view_ieq(te, "chunked")) {
            *err = "Transfer-Encoding other than a single final chunked";
            return -1;
        }
        out->kind = SL_H1_BODY_CHUNKED;
    }
    out->keep_alive = minor == 1 ? !conn_close : (conn_keep && !conn_close);
    out->upgrade = conn_upgrade && has_upgrade;
    return 0;
}

int sl_h1_request_framing(const sl_h1_request_t *req, sl_h1_framing_t *out, const char **err)
{
    if (framing_common(req->headers, req->n_headers, req->minor_version, out, err) != 0)
        return -1;
    int n_host = 0;
    for (size_t i = 0; i < req->n_headers; i++)
        if (sl_view_ieq(req->headers[i].name, "host"))
            n_host++;
    if (n_host > 1) {
        *err = "duplicate Host header";
        return -1;
    }
    return 0;
}

int sl_h1_response_framing(const sl_h1_response_t *res, sl_view_t method, sl_h1_framing_t *out,
                           const char **err)
{
    if (framing_common(res->headers, res->n_headers, res->minor_version, out, err) != 0)
        return -1;
    out->expect_100 = false;
    if (sl_view_eq(method, "HEAD") || res->status < 200 || res->status == 204 ||
        res->status == 304) {
        out->kind = SL_H1_BODY_NONE;
        return 0;
    }
    if (out->kind == SL_H1_BODY_NONE) {
        out->kind = SL_H1_BODY_UNTIL_CLOSE;
        out->keep_alive = false;
    }
    return 0;
}

bool sl_h1_is_hop_by_hop(sl_view_t name, const sl_h1_header_t *headers, size_t n_headers)
{
    static const char *fixed[] = {
        "connection",        "proxy-connection",  "keep-alive", "te",
        "trailer",           "transfer-encoding", "upgrade",    "proxy-authorization",
        "proxy-authenticate"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (sl_view_ieq(name, fixed[i]))
            return true;
    for (size_t i = 0; i < n_headers; i++) {
        if (!sl_view_ieq(headers[i].name, "connection"))
            continue;
        char tok[64];
        if (name.n >= sizeof tok)
            continue;
        memcpy(tok, name.p, name.n);
        tok[name.n] = '\0';
        if (list_has_token(headers[i].value, tok))
            return true;
    }
    return false;
}

/* Chunked decoder states. */
enum {
    CH_SIZE = 0, /* reading hex digits */
    CH_EXT,      /* after size: ';' extension up to CR */
    CH_SIZE_LF,  /* CR seen after the size line, expecting LF */
    CH_DATA,     /* chunk data */
    CH_DATA_CR,  /* expecting CR after data */
    CH_DATA_LF,  /* expecting LF after data */
    CH_TRAILER,  /* trailer line (or the final empty line) */
    CH_TRAILER_LF,
    CH_DONE,
};

void sl_chunked_init(sl_chunked_t *d)
{
    memset(d, 0, sizeof *d);
}

#define CH_FAIL(msg)                                                                               \
    do {                                                                                           \
        *err = (msg);                                                                              \
        return -1;                                                                                 \
    } while (0)

int sl_chunked_decode(sl_chunked_t *d, char *buf, size_t *len, size_t *consumed, const char **err)
{
    size_t in = *len, i = 0, out = 0;
    while (i < in && d->state != CH_DONE) {
        unsigned char ch = (unsigned char)buf[i];
        switch (d->state) {
        case CH_SIZE: {
            int v = sl_hexval((unsigned char)ch);
            if (v >= 0) {
                if (d->size_digits >= 15)
                    CH_FAIL("chunk size too large");
                d->remaining = d->remaining * 16 + (uint64_t)v;
                d->size_digits++;
                i++;
                break;
            }
            if (d->size_digits == 0)
                CH_FAIL("invalid chunk size");
            if (ch == ';') {
                d->state = CH_EXT;
                d->line_len = 0;
                i++;
            } else if (ch == '\r') {
                d->state = CH_SIZE_LF;
                i++;
            } else {
                CH_FAIL("invalid chunk size");
            }
            break;
        }
        case CH_EXT:
            /* Extensions are ignored but must be clean tokens/quoted text. */
            if (ch == '\r') {
                d->state = CH_SIZE_LF;
            } else if (ch == '\n' || ch == 0 || (ch < 0x20 && ch != '\t') || ch == 0x7f) {
                CH_FAIL("invalid chunk extension");
            } else if (++d->line_len > 1024) {
                CH_FAIL("chunk extension too long");
            }
            i++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                CH_FAIL("bare CR in chunk size line");
            i++;
            if (d->remaining == 0) {
                d->state = CH_TRAILER;
                d->line_len = 0;
            } else {
                d->state = CH_DATA;
            }
            break;
        case CH_DATA: {
            size_t avail = in - i;
            size_t take = d->remaining < avail ? (size_t)d->remaining : avail;
            memmove(buf + out, buf + i, take);
            out += take;
            i += take;
            d->remaining -= take;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (ch != '\r')
                CH_FAIL("missing CRLF after chunk data");
            d->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                CH_FAIL("missing CRLF after chunk data");
            d->state = CH_SIZE;
            d->size_digits = 0;
            i++;
            break;
        case CH_TRAILER:
            if (ch == '\r') {
                d->state = CH_TRAILER_LF;
                i++;
                break;
            }
            if (ch == '\n' || ch == 0 || (ch < 0x20 && ch != '\t') || ch == 0x7f)
                CH_FAIL("invalid byte in trailer");
            if (d->line_len == 0 && (ch == ' ' || ch == '\t'))
                CH_FAIL("obs-fold in trailer");
            if (d->trailers_len + 3 >= sizeof d->trailers)
                CH_FAIL("trailer section too large");
            d->trailers[d->trailers_len++] = (char)ch;
            d->line_len++;
            i++;
            break;
        case CH_TRAILER_LF:
            if (ch != '\n')
                CH_FAIL("bare CR in trailer");
            i++;
            if (d->line_len == 0) {
                d->state = CH_DONE;
                d->done = true;
            } else {
                const char *line = d->trailers + d->trailers_len - d->line_len;
                size_t k = 0;
                while (k < d->line_len && tchar_map[(unsigned char)line[k]])
                    k++;
                if (k == 0 || k == d->line_len || line[k] != ':')
                    CH_FAIL("malformed trailer field");
                d->trailers[d->trailers_len++] = '\r';
                d->trailers[d->trailers_len++] = '\n';
                d->line_len = 0;
                d->state = CH_TRAILER;
            }
            break;
        }
    }
    *len = out;
    *consumed = i;
    return 0;
}
