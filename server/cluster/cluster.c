/* cluster.c - the cluster mode: connections, ticks, heartbeat, epoch (cluster.h). */
#include "server/cluster/cluster.h"
#include "server/common/clock.h"

#include "llmgate_version.h"
#include "server/cluster/clients.h"
#include "server/cluster/lease.h"
#include "server/cluster/rconn.h"
#include "server/cluster/status.h"
#include "server/common/log.h"
#include "shm/shm_cdef.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 50

typedef struct cluster_s {
    uv_loop_t *loop;
    shm_t *shm;
    const cfg_t *cfg;
    cfg_cluster_t conn_cfg; /* the start's address, node and prefix: the connections' */
    rconn_t *cmd, *sub;
    lease_mgr_t *lease;
    status_t *status;
    clients_t *clients;
    uv_timer_t tick;
    unsigned ticks;
    int mode;
    int tried; /* the first connection was up or failed */
    uint64_t epoch;
    int64_t last_contact_ms, degraded_since_ms;
    int stopping;
    uint64_t stop_deadline;
    void (*done)(void *);
    void *done_arg;
} cluster_t;

static cluster_t *g_cl;
static pthread_mutex_t g_info_lock = PTHREAD_MUTEX_INITIALIZER;
static cluster_info_t g_info; /* under g_info_lock */

const char *cluster_mode_name(int mode)
{
    static const char *const n[] = {"off", "connecting", "leased", "degraded"};
    return mode >= 0 && mode <= CLUSTER_DEGRADED ? n[mode] : "unknown";
}

void cluster_get(cluster_info_t *out)
{
    pthread_mutex_lock(&g_info_lock);
    *out = g_info;
    pthread_mutex_unlock(&g_info_lock);
}

static void publish_info(cluster_t *cl)
{
    lease_stats_t ls;
    uint64_t pub = 0, app = 0;
    lease_stats(cl->lease, &ls);
    status_counts(cl->status, &pub, &app);
    uint64_t cpub = 0, capp = 0;
    clients_counts(cl->clients, &cpub, &capp);
    pub += cpub;
    app += capp;
    pthread_mutex_lock(&g_info_lock);
    /* leased, but on the safe share until every node has reconciled: say degraded */
    g_info.mode = cl->mode == CLUSTER_LEASED && ls.holding ? CLUSTER_DEGRADED : cl->mode;
    g_info.redis_up = rconn_up(cl->cmd);
    snprintf(g_info.node, sizeof(g_info.node), "%s", cl->conn_cfg.node_id);
    g_info.last_contact_ms = cl->last_contact_ms;
    g_info.degraded_since_ms = cl->degraded_since_ms;
    g_info.grants = ls.grants;
    g_info.units = ls.units;
    g_info.roundtrips = rconn_commands(cl->cmd);
    g_info.refills = ls.refills;
    g_info.refill_us = ls.refill_us;
    g_info.refill_p50_us = ls.refill_p50_us;
    g_info.refill_max_us = ls.refill_max_us;
    g_info.published = pub;
    g_info.applied = app;
    pthread_mutex_unlock(&g_info_lock);
}

static void set_mode(cluster_t *cl, int mode, const char *why)
{
    if (cl->mode == mode)
        return;
    if (mode == CLUSTER_DEGRADED) {
        cl->degraded_since_ms = clock_wall_ms();
        log_warn("cluster: degraded: %s; every shared limit is admitted at %.3g of it on this "
                 "host until Redis is back",
                 why, cl->cfg->cluster.safe_share);
    } else if (mode == CLUSTER_LEASED) {
        cl->degraded_since_ms = 0;
        log_info("cluster: node %s leases from Redis%s", cl->conn_cfg.node_id,
                 cl->mode == CLUSTER_DEGRADED ? " again" : "");
    }
    cl->mode = mode;
    lease_set_redis(cl->lease, mode == CLUSTER_LEASED, cl->epoch, mode == CLUSTER_DEGRADED);
    publish_info(cl);
}

/* FNV-1a of the epoch string. */
static uint64_t hash64(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

static void on_ignore(rconn_t *r, redisReply *reply, void *arg)
{
    cluster_t *cl = arg;
    (void)r;
    if (reply && cl)
        cl->last_contact_ms = clock_wall_ms();
}

static void on_epoch(rconn_t *r, redisReply *reply, void *arg)
{
    cluster_t *cl = arg;
    (void)r;
    if (!reply || cl->stopping)
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        log_error("cluster: Redis gave no epoch (%s)",
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "not a string");
        return;
    }
    cl->last_contact_ms = clock_wall_ms();
    uint64_t e = hash64(reply->str, reply->len);
    if (cl->epoch && e != cl->epoch)
        log_warn("cluster: Redis lost its state (a new epoch): every node reconciles its "
                 "usage");
    cl->epoch = e;
    set_mode(cl, CLUSTER_LEASED, "");
    status_on_up(cl->status);
    clients_on_up(cl->clients);
}

static void ask_epoch(cluster_t *cl)
{
    char key[96], val[33];
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        for (unsigned i = 0; i < sizeof(rnd); i++)
            rnd[i] = (unsigned char)(rand() & 0xff);
    for (unsigned i = 0; i < sizeof(rnd); i++)
        snprintf(val + 2 * i, 3, "%02x", rnd[i]);
    snprintf(key, sizeof(key), "%s:epoch", cl->conn_cfg.prefix);
    const char *sv[4] = {"SET", key, val, "NX"};
    size_t sl[4] = {3, strlen(key), 32, 2};
    const char *gv[2] = {"GET", key};
    size_t gl[2] = {3, strlen(key)};
    rconn_cmd(cl->cmd, on_ignore, cl, 4, sv, sl);
    rconn_cmd(cl->cmd, on_epoch, cl, 2, gv, gl);
}

static void on_cmd_state(rconn_t *r, int up, const char *why, void *arg)
{
    cluster_t *cl = arg;
    (void)r;
    cl->tried = 1;
    if (cl->stopping)
        return;
    if (up) {
        ask_epoch(cl); /* leased once the epoch is known */
        return;
    }
    set_mode(cl, CLUSTER_DEGRADED, why);
}

static void on_sub_state(rconn_t *r, int up, const char *why, void *arg)
{
    (void)r;
    (void)arg;
    if (!up)
        log_debug("cluster: the event subscription is down: %s", why);
}

static void on_event(rconn_t *r, const char *payload, size_t len, void *arg)
{
    cluster_t *cl = arg;
    (void)r;
    cl->last_contact_ms = clock_wall_ms();
    if (!clients_on_message(cl->clients, payload, len))
        status_on_message(cl->status, payload, len);
}

static void heartbeat(cluster_t *cl)
{
    char key[160], nodes[96], pid[24], last[24], grants[24], units[24], refills[24], p50[24],
        max[24];
    lease_stats_t ls;
    lease_stats(cl->lease, &ls);
    snprintf(key, sizeof(key), "%s:node:%s", cl->conn_cfg.prefix, cl->conn_cfg.node_id);
    snprintf(nodes, sizeof(nodes), "%s:nodes", cl->conn_cfg.prefix);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    snprintf(last, sizeof(last), "%lld", (long long)clock_wall_ms());
    snprintf(grants, sizeof(grants), "%llu", (unsigned long long)ls.grants);
    snprintf(units, sizeof(units), "%llu", (unsigned long long)ls.units);
    snprintf(refills, sizeof(refills), "%llu", (unsigned long long)ls.refills);
    snprintf(p50, sizeof(p50), "%llu", (unsigned long long)ls.refill_p50_us);
    snprintf(max, sizeof(max), "%llu", (unsigned long long)ls.refill_max_us);
    const char *hv[] = {"HSET",
                        key,
                        "last_contact_ms",
                        last,
                        "mode",
                        cluster_mode_name(cl->mode),
                        "pid",
                        pid,
                        "grants",
                        grants,
                        "units",
                        units,
                        "refills",
                        refills,
                        "refill_p50_us",
                        p50,
                        "refill_max_us",
                        max,
                        "version",
                        LLMGATE_VERSION};
    size_t hl[sizeof(hv) / sizeof(hv[0])];
    for (unsigned i = 0; i < sizeof(hv) / sizeof(hv[0]); i++)
        hl[i] = strlen(hv[i]);
    const char *ev[3] = {"EXPIRE", key, "30"};
    size_t el[3] = {6, strlen(key), 2};
    const char *av[3] = {"SADD", nodes, cl->conn_cfg.node_id};
    size_t al[3] = {4, strlen(nodes), strlen(cl->conn_cfg.node_id)};
    rconn_cmd(cl->cmd, on_ignore, cl, (int)(sizeof(hv) / sizeof(hv[0])), hv, hl);
    rconn_cmd(cl->cmd, on_ignore, cl, 3, ev, el);
    rconn_cmd(cl->cmd, on_ignore, cl, 3, av, al);
}

/* The connections' own copy of the section: a reload frees the configuration they began with. */
static int conn_cfg_copy(cfg_cluster_t *dst, const cfg_cluster_t *src)
{
    *dst = *src;
    dst->redis = dst->username = dst->password_env = dst->password = NULL;
    dst->node_id = dst->prefix = dst->host = dst->unix_path = NULL;
#define DUP(f)                                                                                     \
    do {                                                                                           \
        if (src->f && !(dst->f = strdup(src->f)))                                                  \
            return -1;                                                                             \
    } while (0)
    DUP(redis);
    DUP(username);
    DUP(password);
    DUP(node_id);
    DUP(prefix);
    DUP(host);
    DUP(unix_path);
#undef DUP
    return 0;
}

static void conn_cfg_free(cfg_cluster_t *c)
{
    if (c->password)
        explicit_bzero(c->password, strlen(c->password));
    free(c->redis);
    free(c->username);
    free(c->password);
    free(c->node_id);
    free(c->prefix);
    free(c->host);
    free(c->unix_path);
}

static void on_closed(uv_handle_t *h)
{
    cluster_t *cl = h->data;
    void (*done)(void *) = cl->done;
    void *arg = cl->done_arg;
    lease_free(cl->lease);
    status_free(cl->status);
    clients_free(cl->clients);
    conn_cfg_free(&cl->conn_cfg);
    free(cl);
    if (done)
        done(arg);
}

static void finish_stop(cluster_t *cl)
{
    uv_timer_stop(&cl->tick);
    rconn_close(cl->cmd);
    rconn_close(cl->sub);
    cl->cmd = cl->sub = NULL;
    pthread_mutex_lock(&g_info_lock);
    g_info.mode = CLUSTER_OFF;
    pthread_mutex_unlock(&g_info_lock);
    uv_close((uv_handle_t *)&cl->tick, on_closed);
}

static void on_tick(uv_timer_t *t)
{
    cluster_t *cl = t->data;
    if (cl->stopping) {
        if (lease_pending(cl->lease) == 0 || uv_now(cl->loop) >= cl->stop_deadline)
            finish_stop(cl);
        return;
    }
    cl->ticks++;
    if (cl->mode == CLUSTER_CONNECTING && cl->tried && !rconn_up(cl->cmd))
        set_mode(cl, CLUSTER_DEGRADED, "Redis cannot be reached");
    if (cl->mode == CLUSTER_LEASED && !rconn_up(cl->cmd))
        set_mode(cl, CLUSTER_DEGRADED, "the connection to Redis is down");
    lease_tick(cl->lease);
    if (cl->ticks % 5 == 0) {
        status_tick(cl->status);
        clients_tick(cl->clients);
    }
    if (cl->ticks % 20 == 0 && rconn_up(cl->cmd))
        heartbeat(cl);
    publish_info(cl);
}

int cluster_start(uv_loop_t *loop, shm_t *shm, const cfg_t *cfg)
{
    if (!cfg->cluster.enabled) {
        /* a store that served a cluster before: its store clients' budgets are local again */
        int rc = shm_cdef_cluster_mark(shm, 0);
        if (rc > 0)
            log_info("cluster: off; %d store client budget(s) admitted locally again", rc);
        return 0;
    }
    cluster_t *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return -1;
    cl->loop = loop;
    cl->shm = shm;
    cl->cfg = cfg;
    cl->mode = CLUSTER_CONNECTING;
    if (conn_cfg_copy(&cl->conn_cfg, &cfg->cluster) != 0)
        goto fail;
    rconn_opts_t o = {.cfg = &cl->conn_cfg, .name = "cluster", .on_state = on_cmd_state, .arg = cl};
    if (!(cl->cmd = rconn_new(loop, &o)))
        goto fail;
    char chan[96];
    snprintf(chan, sizeof(chan), "%s:events", cfg->cluster.prefix);
    rconn_opts_t so = {.cfg = &cl->conn_cfg,
                       .name = "cluster events",
                       .channel = chan,
                       .on_state = on_sub_state,
                       .on_message = on_event,
                       .arg = cl};
    if (!(cl->sub = rconn_new(loop, &so)))
        goto fail;
    if (!(cl->lease = lease_new(shm, cfg, cl->cmd)) ||
        !(cl->status = status_new(shm, cfg, cl->cmd)) ||
        !(cl->clients = clients_new(shm, cfg, cl->cmd, cl->lease)))
        goto fail;
    uv_timer_init(loop, &cl->tick);
    cl->tick.data = cl;
    uv_timer_start(&cl->tick, on_tick, TICK_MS, TICK_MS);
    g_cl = cl;
    publish_info(cl);
    log_info("cluster: node %s, Redis %s, %u expected nodes, safe share %.3g, leases of %u ms",
             cfg->cluster.node_id,
             cfg->cluster.unix_path ? cfg->cluster.unix_path : cfg->cluster.host,
             cfg->cluster.expected_nodes, cfg->cluster.safe_share, cfg->cluster.lease_ms);
    return 0;
fail:
    rconn_close(cl->cmd);
    rconn_close(cl->sub);
    lease_free(cl->lease);
    status_free(cl->status);
    clients_free(cl->clients);
    conn_cfg_free(&cl->conn_cfg);
    free(cl);
    return -1;
}

void cluster_reload(const cfg_t *cfg)
{
    cluster_t *cl = g_cl;
    if (!cl)
        return;
    if (!cfg->cluster.enabled || strcmp(cfg->cluster.node_id, cl->conn_cfg.node_id) ||
        strcmp(cfg->cluster.prefix, cl->conn_cfg.prefix) ||
        strcmp(cfg->cluster.redis, cl->conn_cfg.redis)) {
        log_warn("cluster: a change of the cluster section's redis, node_id or prefix (or its "
                 "removal) takes a restart; the reload keeps the ones of the start");
        return;
    }
    cl->cfg = cfg;
    lease_reconfigure(cl->lease, cfg);
    status_reconfigure(cl->status, cfg);
    clients_reconfigure(cl->clients, cfg);
}

void cluster_stop(void (*done)(void *arg), void *arg)
{
    cluster_t *cl = g_cl;
    g_cl = NULL;
    if (!cl) {
        if (done)
            done(arg);
        return;
    }
    cl->stopping = 1;
    cl->done = done;
    cl->done_arg = arg;
    unsigned n = lease_return_all(cl->lease);
    cl->stop_deadline = uv_now(cl->loop) + cl->cfg->cluster.timeout_ms;
    if (n)
        log_info("cluster: %u grant return(s) sent to Redis", n);
}
