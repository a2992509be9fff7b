/* `sluice admin`: a small client of the admin API for people (docs/admin.md). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "http/h1.h"

static const char admin_usage[] =
    "Usage: sluice admin [OPTIONS] <verb> [ARGS]\n"
    "\n"
    "Talk to the admin API of a running sluice (see docs/admin.md). Prints the\n"
    "JSON answer, pretty. Exit status: 0 done, 1 refused or unreachable, 2 usage.\n"
    "\n"
    "Verbs:\n"
    "  health                      is the gateway up?       sluice admin health\n"
    "  policy [IDENTITY]           effective policy per identity (or one)\n"
    "                                                       sluice admin policy agent-a\n"
    "  allow IDENTITY HOST         add HOST to IDENTITY's allow list\n"
    "                                                       sluice admin allow agent-a "
    "api.github.com\n"
    "  unallow IDENTITY HOST       remove a host added with allow\n"
    "                                                       sluice admin unallow agent-a "
    "api.github.com\n"
    "  deny IDENTITY HOST          add HOST to IDENTITY's deny list (deny wins)\n"
    "                                                       sluice admin deny default "
    "'*.pastebin.com'\n"
    "  undeny IDENTITY HOST        remove a host added with deny\n"
    "  set-policy IDENTITY POLICY  make IDENTITY use a named policy from the config\n"
    "                                                       sluice admin set-policy agent-a "
    "readonly\n"
    "  set-policy IDENTITY --configured\n"
    "                              back to the policy the config gives it\n"
    "  kill IDENTITY | --all       refuse all egress of IDENTITY (or everyone)\n"
    "                                                       sluice admin kill --all\n"
    "  unkill IDENTITY | --all     lift that kill switch    sluice admin unkill agent-a\n"
    "  approvals                   requests waiting for approval (with their ids)\n"
    "  approve REQUEST_ID          let a held request go    sluice admin approve 1a2b3c...\n"
    "  reject REQUEST_ID           refuse a held request (the agent gets 403)\n"
    "\n"
    "Identity \"default\" stands for clients that match no configured identity.\n"
    "Changes apply to new requests at once and are written to the audit trail;\n"
    "they last until sluice restarts.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE    take the address and token source from FILE's `admin:`\n"
    "      --url URL        admin API address (default http://127.0.0.1:8889)\n"
    "      --socket PATH    admin API unix socket instead of a URL\n"
    "      --token-env NAME environment variable holding the token\n"
    "                       (default SLUICE_ADMIN_TOKEN)\n"
    "      --token-file PATH file holding the token\n"
    "      --actor NAME     who you are, for the audit trail (default: $USER)\n"
    "  -h, --help           this text\n";

typedef struct admin_target {
    const char *url;
    const char *socket;
    const char *token_env;
    const char *token_file;
    const char *actor;
} admin_target_t;

static int usage_error(const char *fmt, const char *arg)
{
    fputs("sluice admin: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n\nRun `sluice admin --help` for the verbs and options.\n", stderr);
    return 2;
}

/* Identity names and request ids go into the request path: only their own
 * characters are accepted. */
static bool name_ok(const char *s, bool ids)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              (ids && c >= 'A' && c <= 'Z')))
            return false;
    }
    return true;
}

static int read_token(const admin_target_t *t, sl_buf_t *tok)
{
    if (t->token_file) {
        int fd = open(t->token_file, O_RDONLY | O_CLOEXEC);
        if (fd == -1) {
            fprintf(stderr, "sluice admin: cannot open token file %s: %s\n", t->token_file,
                    strerror(errno));
            return -1;
        }
        char buf[4096];
        ssize_t n = read(fd, buf, sizeof buf);
        close(fd);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            n--;
        if (n <= 0) {
            fprintf(stderr, "sluice admin: token file %s is empty or unreadable\n", t->token_file);
            return -1;
        }
        sl_buf_append(tok, buf, (size_t)n);
        memset(buf, 0, sizeof buf);
        return 0;
    }
    const char *env = t->token_env ? t->token_env : "SLUICE_ADMIN_TOKEN";
    const char *v = getenv(env);
    if (v == NULL || *v == '\0') {
        fprintf(stderr,
                "sluice admin: no token: environment variable %s is not set (use --token-env "
                "or --token-file)\n",
                env);
        return -1;
    }
    sl_buf_append_str(tok, v);
    return 0;
}

/* Connect to the admin API; returns a socket or -1 after printing why. */
static int dial(const admin_target_t *t)
{
    const char *sock = t->socket;
    const char *url = t->url ? t->url : "http://127.0.0.1:8889";
    if (sock == NULL && strncmp(url, "unix:", 5) == 0)
        sock = url + 5;
    if (sock) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (strlen(sock) >= sizeof sa.sun_path) {
            fprintf(stderr, "sluice admin: socket path too long: %s\n", sock);
            return -1;
        }
        memcpy(sa.sun_path, sock, strlen(sock) + 1);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
            fprintf(stderr, "sluice admin: cannot connect to unix:%s: %s\n", sock, strerror(errno));
            if (fd != -1)
                close(fd);
            return -1;
        }
        return fd;
    }
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "sluice admin: --url must be http://HOST:PORT or unix:/PATH, not %s\n",
                url);
        return -1;
    }
    char host[256], port[8] = "8889";
    const char *h = url + 7, *end = h + strcspn(h, "/");
    const char *colon;
    if (*h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (rb == NULL || (size_t)(rb - h - 1) >= sizeof host)
            goto bad;
        snprintf(host, sizeof host, "%.*s", (int)(rb - h - 1), h + 1);
        colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(h, ':', (size_t)(end - h));
        size_t hn = (size_t)((colon ? colon : end) - h);
        if (hn == 0 || hn >= sizeof host)
            goto bad;
        snprintf(host, sizeof host, "%.*s", (int)hn, h);
    }
    if (colon) {
        size_t pn = (size_t)(end - colon - 1);
        if (pn == 0 || pn >= sizeof port)
            goto bad;
        snprintf(port, sizeof port, "%.*s", (int)pn, colon + 1);
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gr = getaddrinfo(host, port, &hints, &res);
    if (gr != 0) {
        fprintf(stderr, "sluice admin: cannot resolve %s: %s\n", host, gai_strerror(gr));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai && fd == -1; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd != -1 && connect(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd == -1)
        fprintf(stderr,
                "sluice admin: cannot connect to %s: %s (is sluice running with an "
                "`admin:` section?)\n",
                url, strerror(err));
    return fd;
bad:
    fprintf(stderr, "sluice admin: cannot read the address in --url %s\n", url);
    return -1;
}

/* One request; prints the answer. Returns the exit status. `filter`: keep
 * only this identity of a /v1/policy answer. */
static int call(const admin_target_t *t, const char *method, const char *path, json_t *body,
                const char *filter)
{
    sl_buf_t tok = {0}, req = {0}, resp = {0};
    int status = 1;
    if (read_token(t, &tok) != 0)
        return 1;
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    const char *actor = t->actor ? t->actor : getenv("USER");
    sl_buf_appendf(&req, "%s %s HTTP/1.1\r\nHost: sluice-admin\r\nAuthorization: Bearer ", method,
                   path);
    sl_buf_append(&req, tok.p, tok.n);
    sl_buf_append_str(&req, "\r\n");
    if (actor && *actor && strlen(actor) < 64 && !strpbrk(actor, "\r\n"))
        sl_buf_appendf(&req, "X-Sluice-Actor: cli:%s\r\n", actor);
    if (b)
        sl_buf_appendf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                       strlen(b));
    sl_buf_append_str(&req, "Connection: close\r\n\r\n");
    if (b)
        sl_buf_append_str(&req, b);
    free(b);
    memset(tok.p, 0, tok.n);
    sl_buf_free(&tok);
    int fd = dial(t);
    if (fd == -1)
        goto out;
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (size_t off = 0; off < req.n;) {
        ssize_t w = send(fd, req.p + off, req.n - off, MSG_NOSIGNAL);
        if (w <= 0) {
            fprintf(stderr, "sluice admin: send failed: %s\n", strerror(errno));
            close(fd);
            goto out;
        }
        off += (size_t)w;
    }
    char chunk[16384];
    ssize_t n;
    while ((n = recv(fd, chunk, sizeof chunk, 0)) > 0 && resp.n < 64u * 1024 * 1024)
        sl_buf_append(&resp, chunk, (size_t)n);
    close(fd);
    sl_h1_header_t hdrs[64];
    sl_h1_response_t r = {.headers = hdrs, .n_headers = 64};
    const char *why = NULL;
    int hl = resp.n ? sl_h1_parse_response(resp.p, resp.n, &r, &why) : -1;
    if (hl < 0) {
        fprintf(stderr, "sluice admin: no valid HTTP answer from the admin API%s%s\n",
                why ? ": " : "", why ? why : "");
        goto out;
    }
    json_error_t je;
    json_t *doc = json_loadb(resp.p + hl, resp.n - (size_t)hl, 0, &je);
    if (doc == NULL) {
        fprintf(stderr, "sluice admin: HTTP %d with a body that is not JSON\n", r.status);
        goto out;
    }
    if (filter && r.status == 200) {
        json_t *found = NULL, *id;
        size_t i;
        json_array_foreach(json_object_get(doc, "identities"), i, id)
        {
            const char *nm = json_string_value(json_object_get(id, "name"));
            if (nm && strcmp(nm, filter) == 0)
                found = json_incref(id);
        }
        json_decref(doc);
        if (found == NULL) {
            fprintf(stderr, "sluice admin: no identity named \"%s\"\n", filter);
            goto out;
        }
        doc = found;
    }
    char *pretty = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    puts(pretty ? pretty : "null");
    free(pretty);
    if (r.status >= 200 && r.status < 300) {
        status = 0;
    } else {
        const char *d = json_string_value(json_object_get(doc, "detail"));
        fprintf(stderr, "sluice admin: HTTP %d: %s\n", r.status, d ? d : "refused");
    }
    json_decref(doc);
out:
    sl_buf_free(&req);
    sl_buf_free(&resp);
    return status;
}

/* Fill the target from a config file's `admin:` (flags given win). */
static int from_config(const char *path, admin_target_t *t, char **listen_copy)
{
    sl_buf_t err = {0};
    sl_config_t *cfg = sl_config_load_file(path, &err);
    if (cfg == NULL) {
        fprintf(stderr, "sluice admin: cannot use %s:\n%s", path, sl_buf_cstr(&err));
        sl_buf_free(&err);
        return -1;
    }
    sl_buf_free(&err);
    if (cfg->admin.listen == NULL) {
        fprintf(stderr, "sluice admin: %s has no `admin:` section\n", path);
        sl_config_free(cfg);
        return -1;
    }
    sl_buf_t u = {0};
    if (strncmp(cfg->admin.listen, "unix:", 5) == 0)
        sl_buf_append_str(&u, cfg->admin.listen);
    else
        sl_buf_appendf(&u, "http://%s", cfg->admin.listen);
    *listen_copy = strdup(sl_buf_cstr(&u));
    sl_buf_free(&u);
    if (t->url == NULL && t->socket == NULL)
        t->url = *listen_copy;
    if (t->token_env == NULL && t->token_file == NULL) {
        static char env[256], file[4096];
        if (cfg->admin.token_env) {
            snprintf(env, sizeof env, "%s", cfg->admin.token_env);
            t->token_env = env;
        } else if (cfg->admin.token_file) {
            snprintf(file, sizeof file, "%s", cfg->admin.token_file);
            t->token_file = file;
        }
    }
    sl_config_free(cfg);
    return 0;
}

static int need(int n, int want, const char *verb)
{
    if (n != want) {
        fprintf(stderr, "sluice admin %s: expects %d argument%s (see sluice admin --help)\n", verb,
                want, want == 1 ? "" : "s");
        return 2;
    }
    return 0;
}

static int run_verb(const admin_target_t *t, const char *verb, int n, char **a)
{
    char path[256];
    int u;
    if (strcmp(verb, "health") == 0)
        return (u = need(n, 0, verb)) ? u : call(t, "GET", "/v1/health", NULL, NULL);
    if (strcmp(verb, "approvals") == 0)
        return (u = need(n, 0, verb)) ? u : call(t, "GET", "/v1/approvals", NULL, NULL);
    if (strcmp(verb, "policy") == 0) {
        if (n > 1)
            return need(n, 1, verb);
        if (n == 1 && !name_ok(a[0], false))
            return usage_error("not an identity name: %s", a[0]);
        return call(t, "GET", "/v1/policy", NULL, n ? a[0] : NULL);
    }
    bool allow = strcmp(verb, "allow") == 0, unallow = strcmp(verb, "unallow") == 0;
    bool deny = strcmp(verb, "deny") == 0, undeny = strcmp(verb, "undeny") == 0;
    if (allow || unallow || deny || undeny) {
        if ((u = need(n, 2, verb)))
            return u;
        if (!name_ok(a[0], false))
            return usage_error("not an identity name: %s", a[0]);
        snprintf(path, sizeof path, "/v1/identities/%s/%s", a[0],
                 allow || unallow ? "allow" : "deny");
        json_t *body = json_pack("{s:s}", "host", a[1]);
        int r = call(t, allow || deny ? "POST" : "DELETE", path, body, NULL);
        json_decref(body);
        return r;
    }
    if (strcmp(verb, "set-policy") == 0) {
        if ((u = need(n, 2, verb)))
            return u;
        if (!name_ok(a[0], false))
            return usage_error("not an identity name: %s", a[0]);
        bool reset = strcmp(a[1], "--configured") == 0;
        if (!reset && !name_ok(a[1], false))
            return usage_error("not a policy name: %s", a[1]);
        snprintf(path, sizeof path, "/v1/identities/%s/policy", a[0]);
        json_t *body = json_pack("{s:o}", "policy", reset ? json_null() : json_string(a[1]));
        int r = call(t, "PUT", path, body, NULL);
        json_decref(body);
        return r;
    }
    bool kill = strcmp(verb, "kill") == 0;
    if (kill || strcmp(verb, "unkill") == 0) {
        if ((u = need(n, 1, verb)))
            return u;
        bool all = strcmp(a[0], "--all") == 0;
        if (!all && !name_ok(a[0], false))
            return usage_error("not an identity name (or --all): %s", a[0]);
        json_t *body =
            json_pack("{s:o, s:b}", "identity", all ? json_null() : json_string(a[0]), "on", kill);
        int r = call(t, "POST", "/v1/kill", body, NULL);
        json_decref(body);
        return r;
    }
    bool approve = strcmp(verb, "approve") == 0;
    if (approve || strcmp(verb, "reject") == 0) {
        if ((u = need(n, 1, verb)))
            return u;
        if (!name_ok(a[0], true))
            return usage_error("not a request id: %s", a[0]);
        snprintf(path, sizeof path, "/v1/approvals/%s", a[0]);
        json_t *body = json_pack("{s:b}", "approve", approve);
        int r = call(t, "POST", path, body, NULL);
        json_decref(body);
        return r;
    }
    return usage_error("unknown verb '%s'", verb);
}

int sl_cmd_admin(int argc, char **argv)
{
    admin_target_t t = {0};
    const char *config = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--all") != 0; i++) {
        const char *o = argv[i];
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            fputs(admin_usage, stdout);
            return 0;
        }
        const char **slot = strcmp(o, "--url") == 0                              ? &t.url
                            : strcmp(o, "--socket") == 0                         ? &t.socket
                            : strcmp(o, "--token-env") == 0                      ? &t.token_env
                            : strcmp(o, "--token-file") == 0                     ? &t.token_file
                            : strcmp(o, "--actor") == 0                          ? &t.actor
                            : strcmp(o, "-c") == 0 || strcmp(o, "--config") == 0 ? &config
                                                                                 : NULL;
        if (slot == NULL)
            return usage_error("unknown option '%s'", o);
        if (i + 1 >= argc)
            return usage_error("%s needs a value", o);
        *slot = argv[++i];
    }
    if (t.url && t.socket)
        return usage_error("give --url or --socket, not both%s", "");
    if (t.token_env && t.token_file)
        return usage_error("give --token-env or --token-file, not both%s", "");
    if (i >= argc)
        return usage_error("which verb?%s", "");
    char *listen_copy = NULL;
    if (config && from_config(config, &t, &listen_copy) != 0)
        return 1;
    int r = run_verb(&t, argv[i], argc - i - 1, argv + i + 1);
    free(listen_copy);
    return r;
}
