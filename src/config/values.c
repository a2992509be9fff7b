#include "config/values.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool all_digits(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_digit(p[i]))
            return false;
    return true;
}

/* Digits at p[*i..] into *out; advances *i. Returns a reason on overflow. */
static const char *take_number(sl_view_t v, size_t *i, uint64_t *out)
{
    uint64_t x = 0;
    size_t start = *i;
    while (*i < v.n && is_digit(v.p[*i])) {
        unsigned d = (unsigned)(v.p[*i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return "number too large";
        x = x * 10 + d;
        (*i)++;
    }
    /* YAML 1.1 reads 010 as octal 8; refuse the spelling rather than guess. */
    if (*i - start > 1 && v.p[start] == '0')
        return "leading zeros are ambiguous (octal in YAML 1.1); drop them";
    *out = x;
    return NULL;
}

const char *sl_cfg_parse_uint(sl_view_t v, uint64_t *out)
{
    if (v.n > 0 && v.p[0] == '-')
        return "must not be negative";
    if (!all_digits(v.p, v.n))
        return "not a whole number; write decimal digits only";
    size_t i = 0;
    return take_number(v, &i, out);
}

static bool mul_add(uint64_t *acc, uint64_t num, uint64_t mult)
{
    if (num != 0 && mult > UINT64_MAX / num)
        return false;
    if (*acc > UINT64_MAX - num * mult)
        return false;
    *acc += num * mult;
    return true;
}

const char *sl_cfg_parse_duration(sl_view_t v, uint64_t *ms)
{
    static const char fmt_hint[] =
        "not a duration; write e.g. 250ms, 10s, 5m, 1h, 1m30s or whole milliseconds";
    if (v.n == 0)
        return fmt_hint;
    if (v.p[0] == '-')
        return "must not be negative";
    if (all_digits(v.p, v.n))
        return sl_cfg_parse_uint(v, ms);
    uint64_t total = 0;
    size_t i = 0;
    while (i < v.n) {
        if (!is_digit(v.p[i]))
            return fmt_hint;
        uint64_t num;
        const char *why = take_number(v, &i, &num);
        if (why != NULL)
            return why;
        if (i < v.n && (v.p[i] == '.' || v.p[i] == ','))
            return "fractions are not supported; use a smaller unit (1500ms, not 1.5s)";
        size_t u = i;
        while (i < v.n && isalpha((unsigned char)v.p[i]))
            i++;
        sl_view_t unit = sl_view(v.p + u, i - u);
        uint64_t mult;
        if (unit.n == 0)
            return i == v.n ? "missing unit after a number; use ms, s, m or h (1m30s)" : fmt_hint;
        else if (sl_view_eq(unit, "ms"))
            mult = 1;
        else if (sl_view_eq(unit, "s"))
            mult = 1000;
        else if (sl_view_eq(unit, "m"))
            mult = 60 * 1000;
        else if (sl_view_eq(unit, "h"))
            mult = 60 * 60 * 1000;
        else
            return "unknown duration unit; use ms, s, m or h";
        if (!mul_add(&total, num, mult))
            return "duration too large";
    }
    *ms = total;
    return NULL;
}

const char *sl_cfg_parse_size(sl_view_t v, uint64_t *bytes)
{
    if (v.n > 0 && v.p[0] == '-')
        return "must not be negative";
    if (v.n == 0 || !is_digit(v.p[0]))
        return "not a size; write bytes (32768) or a number with KiB, MiB or GiB (32KiB)";
    size_t i = 0;
    uint64_t num;
    const char *why = take_number(v, &i, &num);
    if (why != NULL)
        return why;
    if (i < v.n && (v.p[i] == '.' || v.p[i] == ','))
        return "fractions are not supported; use a smaller unit (1536KiB, not 1.5MiB)";
    while (i < v.n && v.p[i] == ' ')
        i++;
    sl_view_t unit = sl_view(v.p + i, v.n - i);
    uint64_t mult;
    if (unit.n == 0 || sl_view_ieq(unit, "b"))
        mult = 1;
    else if (sl_view_ieq(unit, "kib"))
        mult = 1024;
    else if (sl_view_ieq(unit, "mib"))
        mult = 1024 * 1024;
    else if (sl_view_ieq(unit, "gib"))
        mult = 1024 * 1024 * 1024;
    else if (sl_view_ieq(unit, "k") || sl_view_ieq(unit, "kb") || sl_view_ieq(unit, "m") ||
             sl_view_ieq(unit, "mb") || sl_view_ieq(unit, "g") || sl_view_ieq(unit, "gb"))
        return "ambiguous unit (1000 or 1024?); use KiB, MiB or GiB";
    else
        return "unknown size unit; use B, KiB, MiB or GiB";
    uint64_t total = 0;
    if (!mul_add(&total, num, mult))
        return "size too large";
    *bytes = total;
    return NULL;
}

static const char *parse_port(const char *p, size_t n, uint16_t *port)
{
    if (n == 0)
        return "missing port after ':'; write e.g. :8888";
    if (!all_digits(p, n) || n > 5)
        return "port must be a number from 1 to 65535";
    unsigned x = 0;
    for (size_t i = 0; i < n; i++)
        x = x * 10 + (unsigned)(p[i] - '0');
    if (x == 0 || x > 65535)
        return "port must be a number from 1 to 65535";
    *port = (uint16_t)x;
    return NULL;
}

/* Canonical text of a numeric address in p[0..n), or false if it is not one
 * of the given family. */
static bool numeric_ip(const char *p, size_t n, int family, char *host)
{
    char tmp[SL_CFG_HOST_MAX];
    unsigned char bin[16];
    if (n == 0 || n >= sizeof tmp || memchr(p, '\0', n) != NULL)
        return false;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (inet_pton(family, tmp, bin) != 1)
        return false;
    if (host != NULL)
        inet_ntop(family, bin, host, SL_CFG_HOST_MAX);
    return true;
}

/* Does the last dot-separated label consist of digits only? Such a host is
 * meant as an IPv4 address (no top-level domain is numeric). */
static bool last_label_numeric(const char *p, size_t n)
{
    size_t i = n;
    while (i > 0 && p[i - 1] != '.')
        i--;
    return all_digits(p + i, n - i);
}

/* A DNS name, or with `glob` a name pattern; lowercased into out. */
static const char *check_name(const char *p, size_t n, bool glob, char *out)
{
    if (n > 253)
        return "name longer than 253 bytes";
    if (n > 0 && p[n - 1] == '.')
        return "trailing dot; write the name without it";
    size_t label = 0, plain_labels = 0;
    bool label_star = false, label_dash_edge = false;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? (char)tolower((unsigned char)p[i]) : '.';
        if (c == '.') {
            if (label == 0)
                return "empty label (leading or double dot)";
            if (label > 63)
                return "label longer than 63 bytes";
            if (label_dash_edge && !label_star)
                return "label starts or ends with '-'";
            if (!label_star)
                plain_labels++;
            else if (i == n && n > 1)
                return "'*' in the last label would match any top-level domain; name the domain";
            label = 0;
            label_star = label_dash_edge = false;
        } else {
            if (c == '*') {
                if (!glob)
                    return "'*' is only allowed in host patterns, not here";
                if (i > 0 && p[i - 1] == '*')
                    return "'**' is not supported; one '*' already matches any labels";
                label_star = true;
            } else if (c == '-') {
                if (label == 0 || i + 1 == n || p[i + 1] == '.')
                    label_dash_edge = true;
            } else if (!(c >= 'a' && c <= 'z') && !is_digit(c) && c != '_') {
                return "invalid character; use letters, digits, '-', '_' and '.'"
                       " (and '*' in patterns)";
            }
            label++;
        }
        if (i < n)
            out[i] = c;
    }
    out[n] = '\0';
    if (plain_labels == 0 && !(n == 1 && p[0] == '*'))
        return "pattern matches too much; name a domain (*.example.com), or write \"*\" alone "
               "for every host";
    return NULL;
}

/* "[v6]" at the start of v, followed by nothing or ':'. Sets *after to the
 * byte after ']'. */
static const char *bracketed(sl_view_t v, char *host, const char **after)
{
    const char *close = memchr(v.p, ']', v.n);
    if (close == NULL)
        return "missing ']' after IPv6 address; write e.g. [::1]:8888";
    if (!numeric_ip(v.p + 1, (size_t)(close - v.p - 1), AF_INET6, host))
        return "not a valid IPv6 address; write e.g. [::1]:8888";
    *after = close + 1;
    if (*after != v.p + v.n && **after != ':')
        return "unexpected text after ']'; write [v6]:port";
    return NULL;
}

const char *sl_cfg_parse_listen(sl_view_t v, char *host, uint16_t *port)
{
    if (v.n == 0)
        return "empty address; write e.g. 127.0.0.1:8888";
    const char *colon;
    if (v.p[0] == '[') {
        const char *why = bracketed(v, host, &colon);
        if (why != NULL)
            return why;
        if (colon == v.p + v.n)
            return "missing port; write e.g. [::1]:8888";
    } else {
        colon = memrchr(v.p, ':', v.n);
        if (colon == NULL) {
            if (all_digits(v.p, v.n))
                return "missing address; write e.g. 127.0.0.1:PORT (0.0.0.0:PORT for all)";
            return "missing port; write e.g. 127.0.0.1:8888";
        }
        if (memchr(v.p, ':', (size_t)(colon - v.p)) != NULL)
            return "IPv6 addresses need brackets; write e.g. [::1]:8888";
        size_t hn = (size_t)(colon - v.p);
        if (hn == 0)
            return "missing address; write e.g. 127.0.0.1:PORT (0.0.0.0:PORT for all)";
        if (!numeric_ip(v.p, hn, AF_INET, host))
            return "not a numeric IPv4 address (listeners bind addresses, not names); "
                   "write e.g. 127.0.0.1:8888";
    }
    return parse_port(colon + 1, (size_t)(v.p + v.n - colon - 1), port);
}

const char *sl_cfg_parse_target(sl_view_t v, char *host, uint16_t *port)
{
    *port = 0;
    if (v.n == 0)
        return "empty target; write addr:port, e.g. 127.0.0.1:9000 or internal.svc:443";
    const char *end = v.p + v.n;
    const char *rest;
    if (v.p[0] == '[') {
        const char *why = bracketed(v, host, &rest);
        if (why != NULL || rest == end)
            return why;
    } else {
        const char *colon = memchr(v.p, ':', v.n);
        if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL) {
            if (numeric_ip(v.p, v.n, AF_INET6, host))
                return NULL;
            return "not a valid IPv6 address; with a port write e.g. [fd00::1]:9000";
        }
        size_t hn = colon != NULL ? (size_t)(colon - v.p) : v.n;
        if (hn == 0)
            return "missing host before ':'; write e.g. 127.0.0.1:9000";
        if (!numeric_ip(v.p, hn, AF_INET, host)) {
            if (last_label_numeric(v.p, hn))
                return "not a canonical IPv4 address; write four decimal numbers a.b.c.d";
            const char *why = check_name(v.p, hn, false, host);
            if (why != NULL)
                return why;
        }
        if (colon == NULL)
            return NULL;
        rest = colon;
    }
    const char *why = parse_port(rest + 1, (size_t)(end - rest - 1), port);
    if (why != NULL && all_digits(rest + 1, (size_t)(end - rest - 1)) && rest + 2 == end &&
        rest[1] == '0')
        return "port 0 is not a port; leave the port out to keep the request's port";
    return why;
}

static const char *check_cidr(const char *p, size_t n, char *out)
{
    const char *slash = memchr(p, '/', n);
    size_t an = (size_t)(slash - p);
    const char *pp = slash + 1;
    size_t pn = (size_t)(p + n - pp);
    char host[SL_CFG_HOST_MAX];
    int family;
    if (numeric_ip(p, an, AF_INET, host))
        family = AF_INET;
    else if (numeric_ip(p, an, AF_INET6, host))
        family = AF_INET6;
    else
        return "not a CIDR; write a network address and prefix length (10.0.0.0/8, fc00::/7)";
    unsigned bits = family == AF_INET ? 32 : 128;
    if (!all_digits(pp, pn) || pn > 3)
        return "prefix length must be a number (10.0.0.0/8)";
    unsigned prefix = 0;
    for (size_t i = 0; i < pn; i++)
        prefix = prefix * 10 + (unsigned)(pp[i] - '0');
    if (prefix > bits)
        return family == AF_INET ? "IPv4 prefix length must be 0 to 32"
                                 : "IPv6 prefix length must be 0 to 128";
    unsigned char bin[16];
    inet_pton(family, host, bin);
    for (unsigned b = prefix; b < bits; b++)
        if (bin[b / 8] & (0x80u >> (b % 8)))
            return "address has bits set beyond the prefix; write the network address "
                   "(10.0.0.0/8, not 10.1.2.3/8)";
    /* host is at most 39 bytes (inet_ntop of IPv6), so this always fits. */
    size_t hl = strlen(host);
    memcpy(out, host, hl);
    snprintf(out + hl, 8, "/%u", prefix);
    return NULL;
}

const char *sl_cfg_check_hostglob(sl_view_t v, char *out)
{
    if (v.n == 0)
        return "empty host pattern; write a name (example.com), a glob (*.example.com), "
               "an IP or a CIDR";
    if (v.n >= SL_CFG_HOST_MAX)
        return "host pattern longer than 253 bytes";
    if (memmem(v.p, v.n, "://", 3) != NULL)
        return "looks like a URL; write only the host (example.com), no scheme or path";
    if (v.p[0] == '[')
        return "write IPv6 addresses without brackets (::1, fc00::/7)";
    bool star = memchr(v.p, '*', v.n) != NULL;
    if (memchr(v.p, '/', v.n) != NULL) {
        if (star)
            return "'*' cannot be combined with a CIDR";
        return check_cidr(v.p, v.n, out);
    }
    if (memchr(v.p, ':', v.n) != NULL) {
        if (!star && numeric_ip(v.p, v.n, AF_INET6, out))
            return NULL;
        return "not a valid IPv6 address, and host patterns carry no port; "
               "write the host alone (example.com, ::1)";
    }
    if (last_label_numeric(v.p, v.n)) {
        if (!star && numeric_ip(v.p, v.n, AF_INET, out))
            return NULL;
        return "not a canonical IPv4 address; write four decimal numbers (10.1.2.3) or a "
               "CIDR (10.0.0.0/8)";
    }
    return check_name(v.p, v.n, true, out);
}
