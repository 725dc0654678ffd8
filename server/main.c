/* main.c - llmgate: load the config, bind the listeners, run the workers, stop cleanly.
 *
 *   llmgate --config FILE          serve
 *   llmgate --check-config FILE    validate and exit 0 (valid) or 1 (with the problems)
 *   llmgate --version              version, git describe and build options
 *
 * SIGTERM and SIGINT stop accepting, let in-flight requests finish for up to
 * shutdown_timeout_ms, then close what is left and exit 0. SIGHUP reloads the file.
 * Under systemd (Type=notify) each of these is reported: READY=1 once the store is open
 * and every listener accepts, RELOADING=1 / READY=1 around a reload, STOPPING=1 (see
 * server/common/notify.h).
 */
#include "llmgate_version.h"

#include "config/config.h"
#include "server/cluster/cluster.h"
#include "server/common/clock.h"
#include "server/common/log.h"
#include "server/common/notify.h"
#include "server/obs/obs.h"
#include "server/policy/probe.h"
#include "server/tls/tls.h"
#include "server/upstream/upstream.h"
#include "server/worker.h"
#include "shm/shm.h"
#include "shm/shm_cdef.h"
#include "shm/shm_obj.h"
#include "shm/shm_stats.h"
#include "shm/shm_usage.h"

#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct app_s {
    cfg_t *cfg;         /* current: cur->cfg */
    cfg_ref_t *cur;     /* the main thread's reference to the current configuration */
    uv_signal_t sighup; /* reload */
    prober_t *prober;   /* active health probes, on this loop */
    uv_loop_t *loop;
    worker_t *workers;
    unsigned nworkers;
    uv_async_t exited;
    atomic_uint nexited;
    uv_signal_t sigterm, sigint;
    uv_signal_t sigusr1; /* access log reopen */
    uv_timer_t deadline;
    uv_timer_t maint;    /* store housekeeping, every second */
    uv_timer_t watchdog; /* WATCHDOG=1 to systemd, when the unit has WatchdogSec= */
    unsigned maint_tick; /* seconds of maintenance, for the once-a-minute work */
    shm_t *shm;
    tls_conf_t *client_tls; /* tls: in the config, shared by every worker; NULL = plain HTTP */
    int stopping;
} app_t;

static void usage(FILE *f)
{
    fprintf(f, "usage: llmgate --config FILE [--log-level debug|info|warn|error]\n"
               "       llmgate --check-config FILE\n"
               "       llmgate --version\n");
}

static void on_worker_exit(worker_t *w)
{
    app_t *app = w->ud;
    atomic_fetch_add(&app->nexited, 1);
    uv_async_send(&app->exited);
}

static void on_sigusr1_cb(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    obs_access_log_reopen();
}

static void close_main_handles(app_t *app)
{
    uv_close((uv_handle_t *)&app->exited, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->deadline, NULL);
    uv_close((uv_handle_t *)&app->maint, NULL);
    uv_close((uv_handle_t *)&app->watchdog, NULL);
    uv_close((uv_handle_t *)&app->sighup, NULL);
    uv_close((uv_handle_t *)&app->sigusr1, NULL);
    obs_admin_stop();
    cluster_stop(NULL, NULL); /* gives the grants back, then closes (the loop runs until then) */
    probe_stop(app->prober);
    app->prober = NULL;
}

static cfg_ref_t *current_cfg(void *arg)
{
    app_t *app = arg;
    return cfgref_get(app->cur);
}

static void on_maint_cb(uv_timer_t *t)
{
    app_t *app = t->data;
    shm_maint_t m;
    char why[320];
    int rc = shm_maintain(app->shm, SHM_NOW, &m);

    if (rc != 0)
        log_error("store: maintenance failed: %s", shm_explain(app->shm, rc, why, sizeof(why)));
    if (++app->maint_tick % 60 == 0) {
        /* Expired response affinities: puts remove a few each; this takes the rest, so the
         * table does not hold a day's worth of expired entries when traffic stops. */
        unsigned removed = 0;
        rc = shm_obj_prune(app->shm, SHM_NOW, &removed);
        if (rc != 0)
            log_error("store: pruning expired response affinities failed: %s",
                      shm_explain(app->shm, rc, why, sizeof(why)));
        else if (removed)
            log_debug("store: %u expired response affinities pruned", removed);
        /* history rows past their retention (shm_stats.h): a seek per series */
        rc = shm_stats_prune(app->shm, clock_wall_ms(), &removed);
        if (rc != 0)
            log_error("store: pruning old history failed: %s",
                      shm_explain(app->shm, rc, why, sizeof(why)));
    }
    if (app->maint_tick % 3600 == 1) {
        /* clients' usage rows past their retention, soon after start and then hourly (a
         * scan of the rows; several processes doing it is harmless) */
        unsigned removed = 0;
        int64_t today = clock_wall_ms() / 86400000;
        rc = shm_usage_prune(app->shm, today - SHM_USAGE_KEEP_DAYS, &removed);
        if (rc != 0)
            log_error("store: pruning old client usage failed: %s",
                      shm_explain(app->shm, rc, why, sizeof(why)));
        else if (removed)
            log_info("store: %u client usage rows older than %d days pruned", removed,
                     SHM_USAGE_KEEP_DAYS);
    }
    if (m.owners_reclaimed)
        log_warn("store: reclaimed the in-flight reservations of %d dead process(es)",
                 m.owners_reclaimed);
    if (m.readers_cleared)
        log_info("store: cleared %d stale reader slot(s)", m.readers_cleared);
    if (m.grown)
        log_info("store: map grown");
}

/* A client that the configuration and the store (llmgatectl client add) both name is
 * refused, with a message naming both places. 0, or -1 with it logged after what. */
static int client_conflict(shm_t *shm, const cfg_t *cfg, const char *what)
{
    for (unsigned i = 0; i < cfg->client_keys_count; i++) {
        const char *name = cfg->client_keys[i].name;
        shm_cdef_t d;
        if (shm_cdef_get(shm, name, &d) != 0)
            continue;
        char when[32] = "?";
        time_t t = (time_t)(d.created_ms / 1000);
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
        log_error("%sconfig: %s: client_keys[%u].name: client \"%s\" is also a client of the "
                  "store %s (made with llmgatectl client add by %s at %s%s); one name is one "
                  "client: rename this one or remove it from the configuration",
                  what, cfg->path, i, name, cfg->state_dir, d.created_by, when,
                  d.status == SHM_CDEF_REVOKED ? ", since revoked" : "");
        return -1;
    }
    return 0;
}

/* Open the state dir's store and make its key set match the config. */
static int open_store(app_t *app)
{
    shm_opts_t o;
    shm_sync_stats_t st;
    char err[512];
    int rc;

    memset(&o, 0, sizeof(o));
    o.dir = app->cfg->state_dir;
    rc = shm_store_open(&o, SHM_NOW, &app->shm, err, sizeof(err));
    if (rc != 0) {
        log_error("%s", err);
        return -1;
    }
    if (client_conflict(app->shm, app->cfg, "") != 0)
        return -1;
    rc = shm_keys_sync_cfg(app->shm, app->cfg, SHM_NOW, &st);
    if (rc == 0)
        rc = shm_clients_sync_cfg(app->shm, app->cfg, SHM_NOW, NULL);
    if (rc != 0) {
        char why[320];
        log_error("store: cannot record the configured keys in %s: %s", app->cfg->state_dir,
                  shm_explain(app->shm, rc, why, sizeof(why)));
        return -1;
    }
    if (app->cfg->allow_unauthenticated) {
        log_warn("allow_unauthenticated: true - anyone who can reach llmgate can use its "
                 "upstream keys");
    } else if (app->cfg->client_keys_count == 0) {
        shm_cdef_t *defs = NULL;
        unsigned n = 0, live = 0;
        if (shm_cdefs(app->shm, &defs, &n) == 0)
            for (unsigned i = 0; i < n; i++)
                live += defs[i].status == SHM_CDEF_ACTIVE;
        shm_snapshot_free(defs);
        log_info("no client_keys in the configuration: only clients made with llmgatectl "
                 "client add are served (%u in the store)",
                 live);
    }
    log_info("store %s: %u keys added, %u updated, %u orphaned, %u restored", app->cfg->state_dir,
             st.added, st.updated, st.orphaned, st.restored);
    return 0;
}

static void on_exited_cb(uv_async_t *a)
{
    app_t *app = a->data;

    if (atomic_load(&app->nexited) == app->nworkers)
        close_main_handles(app);
}

static void on_deadline_cb(uv_timer_t *t)
{
    app_t *app = t->data;

    log_warn("shutdown: %u ms passed, closing the connections still open",
             app->cfg->shutdown_timeout_ms);
    for (unsigned i = 0; i < app->nworkers; i++)
        worker_stop(&app->workers[i], 1);
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void on_watchdog_cb(uv_timer_t *t)
{
    (void)t;
    notify_watchdog();
}

/* SIGHUP: load the file again; if it is valid, bring the store's keys in line and switch
 * every worker to it. Requests in flight finish with the configuration they started with.
 * Listen addresses, workers and state_dir need a restart; they keep their old values. */
static void reload(app_t *app)
{
    static char err[16384];
    cfg_t *cfg = NULL;
    cfg_ref_t *ref;
    shm_sync_stats_t st;
    int rc;

    log_info("SIGHUP: reloading %s", app->cfg->path);
    if (cfg_load(app->cfg->path, &cfg, err, sizeof(err)) != 0) {
        log_error("reload refused, the running configuration stays:\n%s", err);
        return;
    }
    if (!same_str(cfg->tls.cert_file, app->cfg->tls.cert_file) ||
        !same_str(cfg->tls.key_file, app->cfg->tls.key_file))
        log_warn("reload: tls changes take effect at the next start");
    if (cfg->workers != app->cfg->workers || cfg->listen_count != app->cfg->listen_count ||
        strcmp(cfg->state_dir, app->cfg->state_dir) != 0)
        log_warn("reload: listen, workers and state_dir changes take effect at the next start");
    for (unsigned i = 0; i < cfg->listen_count && i < app->cfg->listen_count; i++)
        if (strcmp(cfg->listen[i], app->cfg->listen[i]) != 0)
            log_warn("reload: listen, workers and state_dir changes take effect at the next "
                     "start");
    if (cfg->cluster.enabled != app->cfg->cluster.enabled) {
        log_error("reload refused: adding or removing the cluster section takes a restart (the "
                  "running configuration stays)");
        cfg_free(cfg);
        return;
    }
    if (upstream_tls_init(cfg, err, sizeof(err)) != 0) {
        log_error("reload refused: TLS set-up failed: %s", err);
        cfg_free(cfg);
        return;
    }
    if (client_conflict(app->shm, cfg, "reload refused: ") != 0) {
        cfg_free(cfg);
        return;
    }
    rc = shm_keys_sync_cfg(app->shm, cfg, SHM_NOW, &st);
    if (rc == 0)
        rc = shm_clients_sync_cfg(app->shm, cfg, SHM_NOW, NULL);
    if (rc != 0) {
        char why[320];
        log_error("reload refused: cannot record the keys in the store: %s",
                  shm_explain(app->shm, rc, why, sizeof(why)));
        cfg_free(cfg);
        return;
    }
    ref = cfgref_new(cfg, app->cur->generation + 1);
    if (!ref) {
        cfg_free(cfg);
        return;
    }
    for (unsigned i = 0; i < app->nworkers; i++)
        worker_set_config(&app->workers[i], cfgref_get(ref));
    cfgref_put(app->cur);
    app->cur = ref;
    obs_reload(ref);
    app->cfg = cfg;
    cluster_reload(cfg); /* before the old configuration can go */
    log_info("reloaded (generation %u): %u providers, %u models; keys %u added, %u updated, "
             "%u orphaned, %u restored",
             ref->generation, cfg->providers_count, cfg->models_count, st.added, st.updated,
             st.orphaned, st.restored);
}

static void on_sighup_cb(uv_signal_t *s, int signum)
{
    app_t *app = s->data;
    char status[128];

    (void)signum;
    if (app->stopping)
        return;
    /* systemd waits between the two for the reload to finish (refused or not: the server
     * serves either way, with the new or the running configuration) */
    notify_reloading();
    reload(app);
    snprintf(status, sizeof(status), "serving: %u workers, %u providers, %u models", app->nworkers,
             app->cfg->providers_count, app->cfg->models_count);
    notify_ready(status);
}

static void on_signal_cb(uv_signal_t *s, int signum)
{
    app_t *app = s->data;

    if (app->stopping) {
        log_info("second %s: stopping now", signum == SIGINT ? "SIGINT" : "SIGTERM");
        on_deadline_cb(&app->deadline);
        return;
    }
    app->stopping = 1;
    notify_stopping("draining");
    log_info("%s: draining (up to %u ms)", signum == SIGINT ? "SIGINT" : "SIGTERM",
             app->cfg->shutdown_timeout_ms);
    for (unsigned i = 0; i < app->nworkers; i++)
        worker_stop(&app->workers[i], 0);
    uv_timer_start(&app->deadline, on_deadline_cb, app->cfg->shutdown_timeout_ms, 0);
}

/* Bind nworkers sockets per listen address; logs and returns -1 on failure. */
static int bind_all(app_t *app)
{
    const cfg_t *cfg = app->cfg;
    char err[256];

    for (unsigned a = 0; a < cfg->listen_count; a++) {
        int port = 0;
        for (unsigned i = 0; i < app->nworkers; i++) {
            int fd = listen_socket(cfg->listen[a], &port, err, sizeof(err));
            if (fd < 0) {
                log_error("%s", err);
                return -1;
            }
            app->workers[i].fds[a] = fd;
        }
        log_info("listening on %s (port %d)", cfg->listen[a], port);
    }
    return 0;
}

static int serve(cfg_ref_t *ref)
{
    cfg_t *cfg = ref->cfg; /* the configuration at start: a reload may free it later */
    const unsigned total = cfg->workers;
    unsigned started = 0; /* workers whose thread runs (and gives its references back) */
    app_t app;
    char err[512];
    int rc = 1;

    memset(&app, 0, sizeof(app));
    app.cur = ref;
    app.cfg = cfg;
    app.loop = uv_default_loop();
    app.nworkers = cfg->workers;
    if (upstream_tls_init(cfg, err, sizeof(err)) != 0) {
        log_error("TLS set-up failed: %s", err);
        return 1;
    }
    if (cfg->tls.cert_file) {
        if (tls_conf_server_new(&app.client_tls, cfg->tls.cert_file, cfg->tls.key_file, err,
                                sizeof(err)) != 0) {
            log_error("client TLS (tls.cert_file, tls.key_file): %s", err);
            goto out;
        }
        log_info("client TLS: every listener speaks HTTPS (certificate %s)", cfg->tls.cert_file);
    }
    if (open_store(&app) != 0)
        goto out;
    if (obs_init(ref, app.shm, app.nworkers, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    app.workers = calloc(app.nworkers, sizeof(*app.workers));
    if (!app.workers)
        goto out;
    for (unsigned i = 0; i < app.nworkers; i++) {
        worker_t *w = &app.workers[i];
        w->id = (int)i;
        w->cfg = cfg;
        w->cfgref = cfgref_get(ref);
        w->nlisteners = cfg->listen_count;
        w->fds = calloc(cfg->listen_count, sizeof(int));
        w->on_exit = on_worker_exit;
        w->shm = app.shm;
        w->tls = app.client_tls;
        w->ud = &app;
        if (!w->fds)
            goto out;
    }
    if (bind_all(&app) != 0)
        goto out;
    if (obs_admin_start(app.loop, err, sizeof(err)) != 0) {
        log_error("%s", err);
        goto out;
    }
    if (cluster_start(app.loop, app.shm, cfg) != 0) {
        log_error("cluster: cannot start (out of memory)");
        goto out;
    }

    uv_async_init(app.loop, &app.exited, on_exited_cb);
    app.exited.data = &app;
    uv_signal_init(app.loop, &app.sigterm);
    uv_signal_init(app.loop, &app.sigint);
    uv_signal_init(app.loop, &app.sighup);
    app.sighup.data = &app;
    uv_signal_start(&app.sighup, on_sighup_cb, SIGHUP);
    uv_signal_init(app.loop, &app.sigusr1);
    uv_signal_start(&app.sigusr1, on_sigusr1_cb, SIGUSR1);
    uv_timer_init(app.loop, &app.deadline);
    uv_timer_init(app.loop, &app.maint);
    uv_timer_init(app.loop, &app.watchdog);
    app.sigterm.data = app.sigint.data = app.deadline.data = app.maint.data = &app;
    uv_timer_start(&app.maint, on_maint_cb, 1000, 1000);
    uv_signal_start(&app.sigterm, on_signal_cb, SIGTERM);
    uv_signal_start(&app.sigint, on_signal_cb, SIGINT);

    for (unsigned i = 0; i < app.nworkers; i++) {
        int e = worker_start(&app.workers[i]);
        if (e == 0)
            started++;
        if (e != 0) {
            log_error("cannot start worker %u: %s", i, uv_strerror(e));
            for (unsigned j = 0; j < i; j++)
                worker_stop(&app.workers[j], 1);
            app.nworkers = i;
            app.stopping = 1;
            if (i == 0)
                close_main_handles(&app);
            uv_run(app.loop, UV_RUN_DEFAULT);
            for (unsigned j = 0; j < i; j++)
                uv_thread_join(&app.workers[j].thread);
            goto out;
        }
    }
    if (probe_start(&app.prober, app.loop, app.shm, current_cfg, &app) != 0)
        log_warn("active health probes could not start; serving without them");
    log_info("llmgate %s ready: %u workers, %u providers, %u models", LLMGATE_VERSION, app.nworkers,
             cfg->providers_count, cfg->models_count);
    {
        /* The store is open, every listening socket is bound and listening (connections
         * queue in its backlog from here on), the workers run: tell systemd. */
        char status[128];
        uint64_t wd = notify_watchdog_ms();
        snprintf(status, sizeof(status), "serving: %u workers, %u providers, %u models",
                 app.nworkers, cfg->providers_count, cfg->models_count);
        notify_ready(status);
        if (wd)
            uv_timer_start(&app.watchdog, on_watchdog_cb, wd / 2 ? wd / 2 : 1, wd / 2 ? wd / 2 : 1);
    }
    cfg = NULL; /* from here on app.cfg is the current configuration */

    uv_run(app.loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < app.nworkers; i++)
        uv_thread_join(&app.workers[i].thread);
    log_info("stopped");
    rc = 0;
out:
    if (app.workers) {
        for (unsigned i = 0; i < total; i++) {
            if (i >= started) /* never started: its reference was not given back */
                cfgref_put(app.workers[i].cfgref);
            free(app.workers[i].fds);
            free(app.workers[i].listeners);
        }
        free(app.workers);
    }
    obs_shutdown();
    uv_loop_close(app.loop);
    shm_store_close(app.shm);
    upstream_tls_cleanup();
    tls_conf_free(app.client_tls);
    cfgref_put(app.cur);
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    int check = 0, rc;
    cfg_t *cfg = NULL;
    static char err[16384];

    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "--config") || !strcmp(argv[i], "-c")) && i + 1 < argc) {
            config = argv[++i];
        } else if (!strcmp(argv[i], "--check-config") && i + 1 < argc) {
            config = argv[++i];
            check = 1;
        } else if (!strcmp(argv[i], "--log-level") && i + 1 < argc) {
            const char *l = argv[++i];
            if (!strcmp(l, "debug"))
                log_set_level(LOG_DEBUG);
            else if (!strcmp(l, "info"))
                log_set_level(LOG_INFO);
            else if (!strcmp(l, "warn"))
                log_set_level(LOG_WARN);
            else if (!strcmp(l, "error"))
                log_set_level(LOG_ERROR);
            else {
                fprintf(stderr, "llmgate: unknown log level \"%s\"\n", l);
                return 1;
            }
        } else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("llmgate %s%s%s%s\nbuild: %s\n", LLMGATE_VERSION, LLMGATE_VCS[0] ? " (git " : "",
                   LLMGATE_VCS, LLMGATE_VCS[0] ? ")" : "", LLMGATE_BUILD_OPTIONS);
            return 0;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "llmgate: unknown argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 1;
        }
    }
    if (!config) {
        usage(stderr);
        return 1;
    }
    if (cfg_load(config, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        if (check)
            fprintf(stderr, "llmgate: %s is not valid\n", config);
        return 1;
    }
    if (check) {
        unsigned keys = 0;
        for (unsigned i = 0; i < cfg->providers_count; i++)
            keys += cfg->providers[i].keys_count;
        printf("llmgate: %s is valid: %u providers, %u keys, %u models, %u workers\n", config,
               cfg->providers_count, keys, cfg->models_count, cfg->workers);
        cfg_free(cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    {
        /* Every client and upstream connection is a descriptor: use all we may have. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    if (!cfg->allow_core_dumps) {
        /* A core dump would hold every upstream and client key: none unless asked for. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_CORE, &rl) == 0) {
            rl.rlim_cur = 0;
            setrlimit(RLIMIT_CORE, &rl);
        }
    }
    {
        cfg_ref_t *ref = cfgref_new(cfg, 1);
        if (!ref) {
            cfg_free(cfg);
            return 1;
        }
        rc = serve(ref);
    }
    return rc;
}
