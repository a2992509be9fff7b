#include "tls/hostcheck.h"

#include <arpa/inet.h>
#include <string.h>

/* The canonical text of an IP literal, or -1 if `s` is not one. */
static int ip_canon(const char *s, char *out, size_t cap)
{
    unsigned char addr[16];
    int af = strchr(s, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(af, s, addr) != 1)
        return -1;
    if (inet_ntop(af, addr, out, (socklen_t)cap) == NULL)
        return -1;
    return (int)strlen(out);
}

/* The last label is numeric ("1", "0x1f"): per the URL standard the name
 * parses as IPv4, so it can never be a DNS name. */
static bool last_label_numeric(const char *p, size_t n)
{
    size_t i = n;
    while (i > 0 && p[i - 1] != '.')
        i--;
    const char *l = p + i;
    size_t ln = n - i;
    size_t start = 0;
    bool hex = ln >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X');
    if (hex)
        start = 2;
    for (size_t k = start; k < ln; k++) {
        char c = l[k];
        bool ok =
            (c >= '0' && c <= '9') || (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
        if (!ok)
            return false;
    }
    return true;
}

static const char *ip_problem(const char *p, size_t n)
{
    char tmp[64], canon[64];
    if (n >= sizeof(tmp))
        return "IP literal too long";
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (ip_canon(tmp, canon, sizeof(canon)) < 0)
        return "malformed IP literal";
    if (strcmp(tmp, canon) != 0)
        return "IP literal not in canonical form";
    return NULL;
}

const char *sl_tls_host_problem(const char *p, size_t n)
{
    if (p == NULL || n == 0)
        return "empty host name";
    if (n > SL_TLS_HOST_MAX)
        return "host name longer than 253 bytes";
    bool colon = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == 0)
            return "NUL byte in host name";
        if (c <= 0x20 || c >= 0x7f)
            return "control, space or non-ASCII byte in host name";
        if (c == ':')
            colon = true;
    }
    if (colon)
        return ip_problem(p, n);
    if (p[n - 1] == '.')
        return "trailing dot in host name";
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '.') {
            if (label == 0)
                return "empty label in host name";
            if (p[i - 1] == '-')
                return "label ends with '-'";
            label = 0;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            return "uppercase letter in host name (lowercase it first)";
        if (c == '*')
            return "wildcard in host name";
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return "byte outside [a-z0-9.-] in host name";
        if (c == '-' && label == 0)
            return "label starts with '-'";
        if (++label > 63)
            return "label longer than 63 bytes";
    }
    if (p[n - 1] == '-')
        return "label ends with '-'";
    if (last_label_numeric(p, n))
        return ip_problem(p, n);
    return NULL;
}

int sl_tls_host_valid(const char *host)
{
    return host != NULL && sl_tls_host_problem(host, strlen(host)) == NULL;
}

int sl_tls_host_canon(const char *p, size_t n, char *out, size_t cap, bool *is_ip,
                      const char **reason)
{
    char tmp[SL_TLS_HOST_MAX + 2];
    const char *why = NULL;
    if (p == NULL || n == 0) {
        why = "empty host name";
        goto refused;
    }
    if (n > 1 && p[n - 1] == '.')
        n--;
    if (n > SL_TLS_HOST_MAX) {
        why = "host name longer than 253 bytes";
        goto refused;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        tmp[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    tmp[n] = '\0';
    /* Rewrite IPv6 only: odd IPv4 spellings ("0x7f.1") stay refused, as a
     * CONNECT to them means the client did not parse the host as we do. */
    if (memchr(tmp, ':', n) != NULL && memchr(tmp, '\0', n) == NULL) {
        char canon[64];
        int cn = ip_canon(tmp, canon, sizeof(canon));
        if (cn < 0) {
            why = "malformed IP literal";
            goto refused;
        }
        memcpy(tmp, canon, (size_t)cn + 1);
        n = (size_t)cn;
    }
    why = sl_tls_host_problem(tmp, n);
    if (why != NULL)
        goto refused;
    if (n + 1 > cap) {
        why = "output buffer too small for host name";
        goto refused;
    }
    memcpy(out, tmp, n + 1);
    if (is_ip != NULL)
        *is_ip = memchr(tmp, ':', n) != NULL || last_label_numeric(tmp, n);
    return (int)n;
refused:
    if (reason != NULL)
        *reason = why;
    return -1;
}
