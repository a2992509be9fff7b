/* Process-level lifecycle: build the workers and their listeners, run one
 * event loop per worker thread, and handle signals on the main thread:
 * SIGHUP (or a change of the config file) reloads, SIGTERM/SIGINT drain. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "admin/admin.h"
#include "audit/audit.h"
#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/proxy.h"
#include "inspect/inspect.h"
#include "policy/suppress.h"
#include "secrets/store.h"
#include "tls/ca.h"
#include "tls/certcache.h"
#include "tls/idca.h"

static sl_server_t server;

sl_server_t *sl_server(void)
{
    return &server;
}

static void worker_wake_cb(uv_async_t *a);
static int attach_identity_cas(sl_policy_t *p, const sl_policy_t *prev, sl_buf_t *err);

/* Stop the loop of a drained worker: close every handle it owns. */
static void worker_stop(sl_worker_t *w)
{
    if (w->stopped)
        return;
    w->stopped = true;
    sl_upstream_pool_flush(w);
    uv_close((uv_handle_t *)&w->wake, NULL);
    uv_close((uv_handle_t *)&w->audit_timer, NULL);
}

static void close_listeners(sl_worker_t *w)
{
    for (size_t i = 0; i < w->n_listeners; i++)
        if (!uv_is_closing((uv_handle_t *)&w->listeners[i]))
            uv_close((uv_handle_t *)&w->listeners[i], NULL);
}

static void worker_wake_cb(uv_async_t *a)
{
    sl_worker_t *w = a->data;
    pthread_mutex_lock(&server.lock);
    sl_policy_t *np = w->pending;
    w->pending = NULL;
    pthread_mutex_unlock(&server.lock);
    if (np) {
        sl_policy_unref(w->policy);
        w->policy = np;
        /* Pooled connections were checked under the old policy. */
        sl_upstream_pool_flush(w);
    }
    sl_approval_apply(w);
    if (atomic_load(&server.draining) && !w->draining) {
        w->draining = true;
        close_listeners(w);
        sl_upstream_pool_flush(w);
        for (sl_client_t *c = w->clients, *next; c; c = next) {
            next = c->next;
            sl_client_drain(c);
        }
    }
    if (atomic_load(&server.force_stop)) {
        for (sl_client_t *c = w->clients, *next; c; c = next) {
            next = c->next;
            sl_client_close(c);
        }
    }
    if (w->draining && w->n_clients == 0)
        worker_stop(w);
}

static void audit_flush_cb(uv_timer_t *t)
{
    sl_audit_flush();
}

static void *worker_main(void *arg)
{
    sl_worker_t *w = arg;
    sl_audit_batch(true);
    uv_timer_start(&w->audit_timer, audit_flush_cb, 100, 100);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    sl_audit_batch(false);
    uv_async_send(&server.worker_exited);
    return NULL;
}

static void listen_error(const sl_listen_cfg_t *l, int r, sl_buf_t *err)
{
    const char *v6 = strchr(l->host, ':');
    sl_buf_appendf(err,
                   "cannot listen on %s%s%s:%u: %s (is another sluice or proxy running there? "
                   "change `listen` in the config)\n",
                   v6 ? "[" : "", l->host, v6 ? "]" : "", l->port, uv_strerror(r));
}

static int listen_addr(const sl_listen_cfg_t *l, struct sockaddr_storage *ss, sl_buf_t *err)
{
    int r = strchr(l->host, ':') ? uv_ip6_addr(l->host, l->port, (struct sockaddr_in6 *)ss)
                                 : uv_ip4_addr(l->host, l->port, (struct sockaddr_in *)ss);
    if (r != 0)
        sl_buf_appendf(err, "listen address %s is not a numeric IP address\n", l->host);
    return r;
}

/* SO_REUSEPORT lets any process of the same user join a listening port and
 * take a share of its connections, silently. So before anything is set up
 * (and before the CA certificate file is written), every listen address is
 * probed: one that already has a listener (a second sluice, another proxy)
 * is refused. The probe sets SO_REUSEADDR, so TIME_WAIT leftovers of a
 * previous run do not count. */
static int listeners_free(const sl_config_t *cfg, sl_buf_t *err)
{
    for (size_t i = 0; i < cfg->n_listen; i++) {
        struct sockaddr_storage ss;
        if (listen_addr(&cfg->listen[i], &ss, err) != 0)
            return -1;
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        if (fd == -1) {
            listen_error(&cfg->listen[i], uv_translate_sys_error(errno), err);
            return -1;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        socklen_t len =
            ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        int r = bind(fd, (struct sockaddr *)&ss, len) == 0 ? 0 : uv_translate_sys_error(errno);
        close(fd);
        if (r != 0) {
            listen_error(&cfg->listen[i], r, err);
            return -1;
        }
    }
    return 0;
}

/* Create one listening socket for a worker (SO_REUSEPORT: the kernel
 * spreads connections over the workers). */
static int worker_listen(sl_worker_t *w, uv_tcp_t *tcp, const sl_listen_cfg_t *l, sl_buf_t *err)
{
    struct sockaddr_storage ss;
    if (listen_addr(l, &ss, err) != 0)
        return -1;
    uv_tcp_init_ex(&w->loop, tcp, ss.ss_family);
    tcp->data = w;
    uv_os_fd_t fd;
    int one = 1;
    if (uv_fileno((uv_handle_t *)tcp, &fd) == 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    int r = uv_tcp_bind(tcp, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)tcp, 4096, sl_client_on_connection);
    if (r != 0) {
        listen_error(l, r, err);
        return -1;
    }
    return 0;
}

static int read_file(const char *path, sl_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    sl_buf_reset(out);
    char tmp[8192];
    ssize_t n;
    while ((n = read(fd, tmp, sizeof tmp)) > 0)
        sl_buf_append(out, tmp, (size_t)n);
    close(fd);
    return n < 0 ? -1 : 0;
}

/* Hand a new snapshot to every worker. */
static void publish(sl_policy_t *p)
{
    pthread_mutex_lock(&server.lock);
    for (size_t i = 0; i < server.n_workers; i++) {
        sl_worker_t *w = &server.workers[i];
        if (w->pending)
            sl_policy_unref(w->pending);
        w->pending = sl_policy_ref(p);
    }
    pthread_mutex_unlock(&server.lock);
    for (size_t i = 0; i < server.n_workers; i++)
        uv_async_send(&server.workers[i].wake);
    sl_policy_t *old = server.current;
    server.current = p;
    sl_policy_unref(old);
}

static bool same_listeners(const sl_config_t *a, const sl_config_t *b)
{
    if (a->n_listen != b->n_listen || a->workers != b->workers)
        return false;
    for (size_t i = 0; i < a->n_listen; i++)
        if (strcmp(a->listen[i].host, b->listen[i].host) != 0 ||
            a->listen[i].port != b->listen[i].port)
            return false;
    return true;
}

int sl_server_rebuild(const char *why, sl_buf_t *err)
{
    pthread_mutex_lock(&server.rebuild_lock);
    sl_config_t *cfg = server.config_path
                           ? sl_config_load_string(server.config_text.p ? server.config_text.p : "",
                                                   server.config_text.n, server.config_path, err)
                           : sl_config_default();
    int r = -1;
    if (cfg && server.rules && sl_suppress_check(cfg, server.rules, err) != 0) {
        sl_config_free(cfg);
        cfg = NULL;
    }
    if (cfg) {
        uint64_t gen = atomic_fetch_add(&server.policy_gen, 1) + 1;
        pthread_mutex_lock(&server.lock);
        sl_policy_t *p = sl_policy_new(cfg, &server.overlay, gen, err);
        pthread_mutex_unlock(&server.lock);
        if (p && attach_identity_cas(p, server.current, err) != 0) {
            sl_policy_unref(p);
            p = NULL;
        }
        if (p) {
            publish(p);
            sl_info("policy rebuilt (%s, generation %llu)", why, (unsigned long long)gen);
            r = 0;
        }
    }
    pthread_mutex_unlock(&server.rebuild_lock);
    return r;
}

/* Reload the config file; a bad file leaves everything as it was. */
static void reload_locked(const char *why, bool only_if_changed);

static void reload(const char *why, bool only_if_changed)
{
    pthread_mutex_lock(&server.rebuild_lock);
    reload_locked(why, only_if_changed);
    pthread_mutex_unlock(&server.rebuild_lock);
}

static void reload_locked(const char *why, bool only_if_changed)
{
    if (server.config_path == NULL) {
        sl_info("%s: running on the built-in default policy, nothing to reload", why);
        return;
    }
    sl_buf_t text = {0};
    if (read_file(server.config_path, &text) != 0) {
        sl_error("reload (%s) failed: cannot read %s: %s; keeping the running config", why,
                 server.config_path, strerror(errno));
        sl_buf_free(&text);
        return;
    }
    if (only_if_changed && text.n == server.config_text.n &&
        (text.n == 0 || memcmp(text.p, server.config_text.p, text.n) == 0)) {
        sl_buf_free(&text);
        return;
    }
    sl_buf_t err = {0};
    sl_config_t *cfg =
        sl_config_load_string(text.p ? text.p : "", text.n, server.config_path, &err);
    sl_buf_free(&server.config_text);
    server.config_text = text;
    if (cfg == NULL) {
        sl_error("reload (%s) rejected, keeping the running config:\n%s", why, sl_buf_cstr(&err));
        sl_buf_free(&err);
        return;
    }
    if (!same_listeners(cfg, server.current->cfg))
        sl_warn("reload (%s): changes to `listen` and `workers` need a restart; the other "
                "changes are applied",
                why);
    const char *old_audit = server.current->cfg->audit_path;
    bool audit_changed = strcmp(old_audit, cfg->audit_path) != 0;
    uint64_t gen = atomic_fetch_add(&server.policy_gen, 1) + 1;
    pthread_mutex_lock(&server.lock);
    sl_policy_t *p = sl_policy_new(cfg, &server.overlay, gen, &err);
    pthread_mutex_unlock(&server.lock);
    if (p && attach_identity_cas(p, server.current, &err) != 0) {
        sl_policy_unref(p);
        p = NULL;
    }
    if (p == NULL) {
        sl_error("reload (%s) rejected, keeping the running config:\n%s", why, sl_buf_cstr(&err));
        sl_buf_free(&err);
        return;
    }
    sl_buf_free(&err);
    sl_log_set_level(p->cfg->log_level);
    if (audit_changed && sl_audit_open(p->cfg->audit_path) != 0)
        sl_error("reload: cannot open audit file %s: %s; audit events are not written",
                 p->cfg->audit_path, strerror(errno));
    publish(p);
    sl_info("config reloaded from %s (%s, generation %llu)", server.config_path, why,
            (unsigned long long)gen);
}

static uv_signal_t sig_hup, sig_term, sig_int;
static uv_fs_event_t watcher;
static uv_timer_t watch_debounce, drain_timer;
static bool watching;
static char *watch_name;

static void drain_timeout_cb(uv_timer_t *t)
{
    sl_warn("drain timeout (timeouts.drain) passed: closing the remaining connections");
    atomic_store(&server.force_stop, true);
    for (size_t i = 0; i < server.n_workers; i++)
        uv_async_send(&server.workers[i].wake);
}

static void start_drain(const char *sig)
{
    if (atomic_exchange(&server.draining, true))
        return;
    sl_info("%s: draining in-flight requests, then exiting", sig);
    sl_admin_stop();
    uv_timer_start(&drain_timer, drain_timeout_cb, server.current->cfg->timeouts.drain, 0);
    for (size_t i = 0; i < server.n_workers; i++)
        uv_async_send(&server.workers[i].wake);
}

static void signal_cb(uv_signal_t *s, int signum)
{
    if (signum == SIGHUP)
        reload("SIGHUP", false);
    else
        start_drain(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void debounce_cb(uv_timer_t *t)
{
    reload("config file changed", true);
}

static void watch_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    if (status < 0 || filename == NULL || strcmp(filename, watch_name) != 0)
        return;
    uv_timer_start(&watch_debounce, debounce_cb, 150, 0);
}

static void close_main_handles(void)
{
    uv_close((uv_handle_t *)&sig_hup, NULL);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
    uv_close((uv_handle_t *)&watch_debounce, NULL);
    uv_close((uv_handle_t *)&drain_timer, NULL);
    uv_close((uv_handle_t *)&server.worker_exited, NULL);
    if (watching)
        uv_close((uv_handle_t *)&watcher, NULL);
}

static void worker_exited_cb(uv_async_t *a)
{
    /* Async sends coalesce: count the threads that really finished. */
    size_t done = 0;
    for (size_t i = 0; i < server.n_workers; i++)
        done += server.workers[i].stopped;
    if (done == server.n_workers && server.n_exited == 0) {
        server.n_exited = done;
        close_main_handles();
    }
}

/* Give a new snapshot its identities' own CAs (identities[].tls), keeping
 * those of `prev` that did not change. Nothing to do without interception.
 * Returns 0, or -1 with the reason in `err`. */
static int attach_identity_cas(sl_policy_t *p, const sl_policy_t *prev, sl_buf_t *err)
{
    if (server.certs == NULL)
        return 0;
    if (sl_policy_attach_cas(p, prev, (long)(p->cfg->tls.leaf_lifetime / 1000), err) != 0)
        return -1;
    for (size_t i = 0; i < p->cfg->n_identities; i++) {
        const sl_identity_cfg_t *ic = &p->cfg->identities[i];
        sl_ca_t *ca = sl_idca_ca(p->idca, ic->name);
        if (ca == NULL)
            continue;
        char fp[96];
        sl_ca_fingerprint_sha256(ca, fp);
        if (sl_idca_kept(p->idca, ic->name)) {
            sl_debug("identity %s: own CA kept (SHA-256 %s)", ic->name, fp);
            continue;
        }
        sl_info("identity %s: own CA %s (SHA-256 %s)%s%s", ic->name,
                ic->tls.ca_cert ? ic->tls.ca_cert : "generated (ephemeral)", fp,
                ic->tls.ca_out ? ", certificate written to " : "",
                ic->tls.ca_out ? ic->tls.ca_out : "");
    }
    return 0;
}

/* Set up the interception CA: loaded from files, or generated for this run
 * with its key in memory only. Its certificate is written where sandboxes
 * can pick it up. Then the identities' own CAs. Returns 0 or -1 after
 * printing why. */
static int setup_interception(sl_policy_t *p)
{
    const sl_config_t *cfg = p->cfg;
    sl_buf_t err = {0};
    if (!cfg->tls.intercept) {
        for (size_t i = 0; i < cfg->n_identities; i++)
            if (cfg->identities[i].tls.ca || cfg->identities[i].tls.ca_cert)
                sl_warn("identity %s: tls (own CA) has no effect with tls.intercept: false",
                        cfg->identities[i].name);
        return 0;
    }
    if (cfg->tls.ca_cert)
        server.ca = sl_ca_load(cfg->tls.ca_cert, cfg->tls.ca_key, &err);
    else
        server.ca = sl_ca_generate("sluice interception CA (ephemeral)", &err);
    if (server.ca == NULL) {
        fprintf(stderr, "sluice: interception CA: %s\n", sl_buf_cstr(&err));
        sl_buf_free(&err);
        return -1;
    }
    if (cfg->tls.ca_out && sl_ca_write_cert(server.ca, cfg->tls.ca_out, &err) != 0) {
        fprintf(stderr, "sluice: cannot write the CA certificate (tls.ca_out): %s\n",
                sl_buf_cstr(&err));
        sl_buf_free(&err);
        return -1;
    }
    server.certs = sl_certcache_new(server.ca, 1024, &err);
    if (server.certs == NULL) {
        fprintf(stderr, "sluice: cannot set up certificate minting: %s\n", sl_buf_cstr(&err));
        sl_buf_free(&err);
        return -1;
    }
    sl_certcache_set_lifetime(server.certs, (long)(cfg->tls.leaf_lifetime / 1000));
    char fp[96];
    sl_ca_fingerprint_sha256(server.ca, fp);
    sl_info("TLS interception on: CA %s (SHA-256 %s)%s%s",
            cfg->tls.ca_cert ? cfg->tls.ca_cert : "generated for this run", fp,
            cfg->tls.ca_out ? ", certificate written to " : "",
            cfg->tls.ca_out ? cfg->tls.ca_out : "");
    if (attach_identity_cas(p, NULL, &err) != 0) {
        fprintf(stderr, "sluice: %s", sl_buf_cstr(&err));
        sl_buf_free(&err);
        return -1;
    }
    sl_buf_free(&err);
    return 0;
}

/* Compile the detection rules (built-in plus the operator's) once at start.
 * Rule changes need a restart; the rest of the config reloads. */
static int setup_inspection(const sl_config_t *cfg)
{
    if (!cfg->inspect.enabled)
        return 0;
    size_t n = cfg->inspect.n_disable + cfg->inspect.n_warn + cfg->inspect.n_redact;
    sl_rule_override_t *ov = n ? calloc(n, sizeof *ov) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < cfg->inspect.n_disable; i++)
        ov[k++] = (sl_rule_override_t){
            .id = cfg->inspect.disable[i], .action = SL_ACT_OFF, .severity = -1};
    for (size_t i = 0; i < cfg->inspect.n_warn; i++)
        ov[k++] =
            (sl_rule_override_t){.id = cfg->inspect.warn[i], .action = SL_ACT_WARN, .severity = -1};
    for (size_t i = 0; i < cfg->inspect.n_redact; i++)
        ov[k++] = (sl_rule_override_t){
            .id = cfg->inspect.redact[i], .action = SL_ACT_REDACT, .severity = -1};
    sl_ruleset_opts_t opts = {.paths = (const char *const *)cfg->inspect.rules,
                              .n_paths = cfg->inspect.n_rules,
                              .overrides = ov,
                              .n_overrides = k};
    sl_buf_t err = {0};
    server.rules = sl_ruleset_load(&opts, &err);
    free(ov);
    if (server.rules == NULL) {
        fprintf(stderr, "sluice: cannot load the detection rules:\n%s", sl_buf_cstr(&err));
        sl_buf_free(&err);
        return -1;
    }
    if (sl_suppress_check(cfg, server.rules, &err) != 0) {
        fprintf(stderr, "sluice: %s", sl_buf_cstr(&err));
        sl_buf_free(&err);
        return -1;
    }
    sl_buf_free(&err);
    /* Loading parsed every rule file: hand the freed parse memory back. */
    malloc_trim(0);
    sl_info("inspection on: %zu rules, %zu KiB of compiled patterns",
            sl_ruleset_count(server.rules), sl_ruleset_db_bytes(server.rules) / 1024);
    return 0;
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

int sl_proxy_run(const char *config_path, sl_config_t *cfg)
{
    sl_buf_t err = {0};
    int status = 1;
    signal(SIGPIPE, SIG_IGN);
    memset(&server, 0, sizeof server);
    pthread_mutex_init(&server.lock, NULL);
    pthread_mutex_init(&server.rebuild_lock, NULL);
    server.config_path = config_path;
    if (getrandom(&server.id_prefix, sizeof server.id_prefix, 0) != sizeof server.id_prefix)
        server.id_prefix = (uint32_t)getpid();
    if (config_path)
        read_file(config_path, &server.config_text);
    atomic_store(&server.policy_gen, 1);
    sl_policy_t *p = sl_policy_new(cfg, &server.overlay, 1, &err);
    if (p == NULL) {
        fprintf(stderr, "sluice: %s", sl_buf_cstr(&err));
        sl_buf_free(&err);
        return 1;
    }
    server.current = p;
    sl_log_set_level(p->cfg->log_level);
    if (listeners_free(p->cfg, &err) != 0) {
        fprintf(stderr, "sluice: %s", sl_buf_cstr(&err));
        sl_buf_free(&err);
        goto out_policy;
    }
    if (sl_audit_open(p->cfg->audit_path) != 0) {
        fprintf(stderr, "sluice: cannot open audit file %s: %s (check `audit.path`)\n",
                p->cfg->audit_path, strerror(errno));
        goto out_policy;
    }
    if (setup_interception(p) != 0 || setup_inspection(p->cfg) != 0)
        goto out_policy;
    if (sl_admin_open(p->cfg) != 0)
        goto out_policy;
    server.n_workers = p->cfg->workers ? p->cfg->workers : cpu_count();
    server.workers = calloc(server.n_workers, sizeof *server.workers);
    for (size_t i = 0; i < server.n_workers; i++) {
        sl_worker_t *w = &server.workers[i];
        w->id = (int)i;
        w->server = &server;
        uv_loop_init(&w->loop);
        uv_async_init(&w->loop, &w->wake, worker_wake_cb);
        uv_timer_init(&w->loop, &w->audit_timer);
        uv_unref((uv_handle_t *)&w->audit_timer); /* never keeps a drained loop alive */
        w->wake.data = w;
        w->policy = sl_policy_ref(p);
        w->scratch = malloc(SL_READ_CHUNK);
        w->n_listeners = p->cfg->n_listen;
        w->listeners = calloc(w->n_listeners, sizeof *w->listeners);
        for (size_t k = 0; k < w->n_listeners; k++)
            if (worker_listen(w, &w->listeners[k], &p->cfg->listen[k], &err) != 0) {
                fprintf(stderr, "sluice: %s", sl_buf_cstr(&err));
                sl_buf_free(&err);
                _exit(1); /* nothing is running yet: no state to save */
            }
    }

    uv_loop_t *loop = uv_default_loop();
    server.main_loop = loop;
    uv_async_init(loop, &server.worker_exited, worker_exited_cb);
    uv_signal_init(loop, &sig_hup);
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_hup, signal_cb, SIGHUP);
    uv_signal_start(&sig_term, signal_cb, SIGTERM);
    uv_signal_start(&sig_int, signal_cb, SIGINT);
    uv_timer_init(loop, &watch_debounce);
    uv_timer_init(loop, &drain_timer);
    char *dir_copy = NULL, *base_copy = NULL;
    if (config_path && p->cfg->watch) {
        dir_copy = strdup(config_path);
        base_copy = strdup(config_path);
        watch_name = basename(base_copy);
        if (uv_fs_event_init(loop, &watcher) == 0 &&
            uv_fs_event_start(&watcher, watch_cb, dirname(dir_copy), 0) == 0)
            watching = true;
        else
            sl_warn("cannot watch %s for changes; reload with SIGHUP", config_path);
    }
    for (size_t i = 0; i < server.n_workers; i++)
        pthread_create(&server.workers[i].thread, NULL, worker_main, &server.workers[i]);
    sl_admin_start();
    for (size_t k = 0; k < p->cfg->n_listen; k++)
        sl_info("listening on %s%s%s:%u", strchr(p->cfg->listen[k].host, ':') ? "[" : "",
                p->cfg->listen[k].host, strchr(p->cfg->listen[k].host, ':') ? "]" : "",
                p->cfg->listen[k].port);
    /* Placeholders are what the sandbox holds instead of the values: say
     * them, so the operator can put them in the sandbox's environment. */
    for (size_t i = 0; p->secrets && i < sl_secret_store_count(p->secrets); i++)
        sl_info("secret %s: the sandbox uses the placeholder %s",
                sl_secret_store_name(p->secrets, i), sl_secret_store_placeholder(p->secrets, i));
    sl_info("sluice %s ready: %zu worker(s), policy from %s", SLUICE_VERSION, server.n_workers,
            config_path ? config_path : "the built-in default");

    uv_run(loop, UV_RUN_DEFAULT);

    for (size_t i = 0; i < server.n_workers; i++) {
        sl_worker_t *w = &server.workers[i];
        pthread_join(w->thread, NULL);
        uv_loop_close(&w->loop);
        sl_policy_unref(w->policy);
        if (w->pending)
            sl_policy_unref(w->pending);
        free(w->listeners);
        free(w->scratch);
    }
    free(server.workers);
    uv_loop_close(loop);
    free(dir_copy);
    free(base_copy);
    sl_info("drained, exiting");
    status = 0;
out_policy:
    for (size_t i = 0; i < server.overlay.n_entries; i++) {
        sl_overlay_entry_t *e = &server.overlay.entries[i];
        for (size_t k = 0; k < e->n_allow; k++)
            free(e->allow[k]);
        for (size_t k = 0; k < e->n_deny; k++)
            free(e->deny[k]);
        free(e->allow);
        free(e->deny);
        free(e->policy);
        free(e->identity);
    }
    free(server.overlay.entries);
    while (server.held) {
        sl_held_t *h = server.held;
        server.held = h->next;
        free(h);
    }
    if (server.rules)
        sl_ruleset_unref(server.rules);
    if (server.certs)
        sl_certcache_free(server.certs);
    if (server.ca)
        sl_ca_unref(server.ca);
    sl_audit_close();
    sl_policy_unref(server.current);
    sl_buf_free(&server.config_text);
    return status;
}
