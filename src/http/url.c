/* Request-target parsing (RFC 9112 3.2, RFC 3986) and host normalisation. */
#include "http/url.h"

#include <sys/socket.h>
#include "net/ipaddr.h"

#define HOST_MAX SL_HOST_MAX
#define LABEL_MAX 63

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_unreserved(char c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool is_subdelim(char c)
{
    return c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
           c == '+' || c == ',' || c == ';' || c == '=';
}

/* Bytes no request-target may carry, wherever they are: they are where
 * parsers disagree (backslash as '/', whitespace as a delimiter, raw UTF-8). */
static bool is_forbidden(unsigned char c)
{
    return c <= 0x20 || c >= 0x7f || c == '\\';
}

/* Every '%' must start a %HH escape; a stray one is read differently by
 * different decoders. */
static bool pct_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '%')
            continue;
        if (i + 2 >= n)
            return false;
        if (!is_hex(p[i + 1]) || !is_hex(p[i + 2]))
            return false;
        i += 2;
    }
    return true;
}

/* Decimal 1..65535, no sign, no leading zero (so nobody reads it as octal). */
static int parse_port(const char *p, size_t n, uint16_t *out)
{
    uint32_t v = 0;
    if (n == 0 || n > 5 || p[0] == '0')
        return SL_URL_BAD_PORT;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return SL_URL_BAD_PORT;
        v = v * 10 + (uint32_t)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return SL_URL_BAD_PORT;
    *out = (uint16_t)v;
    return SL_URL_OK;
}

/* A reg-name or IPv4 host as written: [A-Za-z0-9._-], non-empty labels of at
 * most 63 bytes, at most 253 bytes without one trailing dot. Percent-encoding
 * and sub-delims are legal in RFC 3986 reg-names but no DNS name uses them, so
 * they are refused rather than decoded. */
static int check_name(const char *p, size_t n)
{
    if (n == 0)
        return SL_URL_BAD_HOST;
    size_t body = (n > 1 && p[n - 1] == '.') ? n - 1 : n;
    if (body > HOST_MAX)
        return SL_URL_TOO_LONG;
    size_t label = 0;
    for (size_t i = 0; i < body; i++) {
        char c = p[i];
        if (c == '.') {
            if (label == 0)
                return SL_URL_BAD_HOST;
            label = 0;
            continue;
        }
        if (!(is_alpha(c) || is_digit(c) || c == '-' || c == '_'))
            return SL_URL_BAD_HOST;
        if (++label > LABEL_MAX)
            return SL_URL_TOO_LONG;
    }
    if (label == 0)
        return SL_URL_BAD_HOST;
    /* "1.2.3.999" or "0x" look like addresses but are not: refuse, never
     * hand them to a resolver that may read them differently. */
    sl_ip_t ip;
    if (sl_ip_parse_literal(p, n, &ip) < 0)
        return SL_URL_BAD_HOST;
    return SL_URL_OK;
}

/* The inside of "[...]": an IPv6 address, optionally "%25" + zone id
 * (RFC 6874). IPvFuture ("v1.x") is refused. */
static int check_ipv6(const char *p, size_t n)
{
    size_t alen = n;
    if (n > HOST_MAX)
        return SL_URL_TOO_LONG;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%') {
            alen = i;
            break;
        }
    }
    if (alen == 0 || memchr(p, ':', alen) == NULL)
        return SL_URL_BAD_HOST;
    for (size_t i = 0; i < alen; i++)
        if (!(is_hex(p[i]) || p[i] == ':' || p[i] == '.'))
            return SL_URL_BAD_HOST;
    if (alen < n) {
        const char *z = p + alen;
        size_t zn = n - alen;
        if (zn < 4 || z[1] != '2' || z[2] != '5')
            return SL_URL_BAD_HOST;
        for (size_t i = 3; i < zn; i++)
            if (!is_unreserved(z[i]))
                return SL_URL_BAD_HOST;
    }
    sl_ip_t ip;
    if (sl_ip_parse_literal(p, alen, &ip) != 1 || ip.family != AF_INET6)
        return SL_URL_BAD_HOST;
    return SL_URL_OK;
}

/* host [ ":" port ] with the port optional or required; fills host fields. */
static int parse_hostport(const char *p, size_t n, bool port_required, sl_url_t *out)
{
    const char *port = NULL;
    size_t portn = 0;
    int rc;
    if (n == 0)
        return SL_URL_BAD_HOST;
    if (p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (close == NULL)
            return SL_URL_BAD_HOST;
        size_t hn = (size_t)(close - p - 1);
        if ((rc = check_ipv6(p + 1, hn)) != SL_URL_OK)
            return rc;
        out->host = sl_view(p + 1, hn);
        out->host_is_ipv6 = true;
        size_t rest = n - hn - 2;
        if (rest > 0) {
            if (close[1] != ':')
                return SL_URL_BAD_HOST;
            port = close + 2;
            portn = rest - 1;
        }
    } else {
        const char *colon = memchr(p, ':', n);
        size_t hn = colon ? (size_t)(colon - p) : n;
        if (colon) {
            port = colon + 1;
            portn = n - hn - 1;
        }
        if ((rc = check_name(p, hn)) != SL_URL_OK)
            return rc;
        out->host = sl_view(p, hn);
    }
    if (port) {
        if ((rc = parse_port(port, portn, &out->port)) != SL_URL_OK)
            return rc;
        out->has_port = true;
    } else if (port_required) {
        return SL_URL_BAD_PORT;
    }
    return SL_URL_OK;
}

/* userinfo = *( unreserved / pct-encoded / sub-delims / ":" ), non-empty. */
static int check_userinfo(const char *p, size_t n)
{
    if (n == 0)
        return SL_URL_BAD_USERINFO;
    for (size_t i = 0; i < n; i++)
        if (!(is_unreserved(p[i]) || is_subdelim(p[i]) || p[i] == ':' || p[i] == '%'))
            return SL_URL_BAD_USERINFO;
    if (!pct_ok(p, n))
        return SL_URL_BAD_USERINFO;
    return SL_URL_OK;
}

/* What both target forms start with: a clean result, then the byte scan. */
static int begin_target(const char *p, size_t n, sl_url_t *out)
{
    memset(out, 0, sizeof(*out));
    if (p == NULL || n == 0)
        return SL_URL_EMPTY;
    for (size_t i = 0; i < n; i++)
        if (is_forbidden((unsigned char)p[i]))
            return SL_URL_BAD_CHAR;
    return SL_URL_OK;
}

int sl_url_parse_absolute(const char *p, size_t n, sl_url_t *out)
{
    int rc;
    if ((rc = begin_target(p, n, out)) != SL_URL_OK)
        return rc;

    size_t i = 0;
    while (i < n && is_alpha(p[i]))
        i++;
    sl_view_t scheme = sl_view(p, i);
    if (!(sl_view_ieq(scheme, "http") || sl_view_ieq(scheme, "https")))
        return SL_URL_BAD_SCHEME;
    if (n - i < 3 || memcmp(p + i, "://", 3) != 0)
        return SL_URL_BAD_SCHEME;
    out->scheme = scheme;
    i += 3;

    size_t a0 = i;
    while (i < n && p[i] != '/' && p[i] != '?' && p[i] != '#')
        i++;
    const char *auth = p + a0;
    size_t authn = i - a0;

    /* More than one '@' is how "allowed.com@evil.com@x" tricks differ
     * between parsers: refuse it. */
    const char *at = memchr(auth, '@', authn);
    if (at) {
        size_t un = (size_t)(at - auth);
        if (memchr(at + 1, '@', authn - un - 1) != NULL)
            return SL_URL_BAD_USERINFO;
        if ((rc = check_userinfo(auth, un)) != SL_URL_OK)
            return rc;
        out->userinfo = sl_view(auth, un);
        auth += un + 1;
        authn -= un + 1;
    }
    if ((rc = parse_hostport(auth, authn, false, out)) != SL_URL_OK)
        return rc;
    if (!out->has_port)
        out->port = (scheme.n == 5) ? 443 : 80;

    size_t p0 = i;
    while (i < n && p[i] != '?' && p[i] != '#')
        i++;
    out->path = sl_view(p + p0, i - p0);
    if (i < n && p[i] == '?') {
        size_t q0 = ++i;
        while (i < n && p[i] != '#')
            i++;
        out->query = sl_view(p + q0, i - q0);
        out->has_query = true;
    }
    if (i < n) {
        /* p[i] == '#' */
        i++;
        out->fragment = sl_view(p + i, n - i);
    }
    if (!pct_ok(out->path.p, out->path.n) || !pct_ok(out->query.p, out->query.n) ||
        !pct_ok(out->fragment.p, out->fragment.n))
        return SL_URL_BAD_CHAR;
    return SL_URL_OK;
}

int sl_url_parse_authority(const char *p, size_t n, sl_url_t *out)
{
    int rc;
    if ((rc = begin_target(p, n, out)) != SL_URL_OK)
        return rc;
    /* RFC 9112: authority-form is uri-host ":" port, nothing else. */
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '@')
            return SL_URL_BAD_USERINFO;
        if (p[i] == '/' || p[i] == '?' || p[i] == '#')
            return SL_URL_BAD_HOST;
    }
    return parse_hostport(p, n, true, out);
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

int sl_host_normalize(sl_view_t host, char *out, size_t outcap)
{
    const char *p = host.p;
    size_t n = host.n;
    sl_ip_t ip;
    if (p == NULL || n == 0 || out == NULL)
        return -1;
    bool bracketed = n >= 2 && p[0] == '[' && p[n - 1] == ']';
    if (bracketed) {
        p++;
        n -= 2;
    }
    if (bracketed || memchr(p, ':', n) != NULL) {
        /* IPv6 with an optional zone, "%eth0" or the URL's "%25eth0". */
        if (n > HOST_MAX || sl_ip_parse_literal(p, n, &ip) != 1 || ip.family != AF_INET6)
            return -1;
    } else {
        if (check_name(p, n) != SL_URL_OK)
            return -1;
        if (n > 1 && p[n - 1] == '.')
            n--;
    }
    if (n + 1 > outcap)
        return -1;
    for (size_t i = 0; i < n; i++)
        out[i] = lower(p[i]);
    out[n] = '\0';
    return (int)n;
}

const char *sl_url_strerror(int code)
{
    switch (code) {
    case SL_URL_OK:
        return "ok";
    case SL_URL_EMPTY:
        return "empty request target";
    case SL_URL_BAD_SCHEME:
        return "scheme must be http:// or https://";
    case SL_URL_BAD_HOST:
        return "missing or invalid host";
    case SL_URL_BAD_PORT:
        return "port must be 1..65535 in decimal";
    case SL_URL_BAD_CHAR:
        return "invalid byte or escape in request target";
    case SL_URL_TOO_LONG:
        return "host name or label too long";
    case SL_URL_BAD_USERINFO:
        return "invalid or ambiguous userinfo";
    default:
        return "unknown URL error";
    }
}
