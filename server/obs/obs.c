/* obs.c - the observability hooks: life cycle, the per-request hooks (metrics.c shards and
 * accesslog.c buffers), alert events (alerts.c), the /metrics and /health/full renderers
 * (with obs_store.c for the store's side) and the admin listener's routes (admin_http.c).
 * See obs.h for the design. */
#include "server/obs/obs.h"
#include "server/common/clock.h"
#include "server/obs/obs_cluster.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llhttp.h"

#include "server/obs/accesslog.h"
#include "server/obs/admin_http.h"
#include "server/obs/alerts.h"
#include "server/obs/dashboard.h"
#include "server/common/cfgref.h"
#include "server/common/log.h"
#include "server/obs/metrics.h"
#include "server/obs/obs_store.h"
#include "server/obs/prom.h"

static struct {
    atomic_int ready;
    uv_mutex_t ref_lock; /* guards ref (replaced by obs_reload) */
    cfg_ref_t *ref;      /* our reference to the current configuration */
    char *admin_listen;  /* metrics.listen at obs_init (changes need a restart) */
    int admin_mode, admin_default;
    shm_t *shm;
    unsigned nworkers;
    int64_t start_ms;
    metrics_t *metrics;
    accesslog_t *alog;
    alerts_t *alerts;
    admin_http_t *admin;
    int admin_port;
} g;

static int on(void)
{
    return atomic_load_explicit(&g.ready, memory_order_acquire);
}

/* A reference to the current configuration; cfgref_put() it when done. */
static cfg_ref_t *cur_ref(void)
{
    cfg_ref_t *r;

    uv_mutex_lock(&g.ref_lock);
    r = cfgref_get(g.ref);
    uv_mutex_unlock(&g.ref_lock);
    return r;
}

/* ---- life cycle -------------------------------------------------------------------------- */

int obs_init(cfg_ref_t *ref, shm_t *shm, unsigned nworkers, char *err, size_t errlen)
{
    const cfg_t *cfg = ref->cfg;
    char e[512];

    if (on()) {
        snprintf(err, errlen, "obs: already initialised");
        return -1;
    }
    memset(&g, 0, sizeof(g));
    uv_mutex_init(&g.ref_lock);
    g.ref = cfgref_get(ref);
    g.shm = shm;
    g.admin_mode = cfg->metrics.mode;
    g.admin_default = cfg->metrics.listen_default;
    if (cfg->metrics.listen && !(g.admin_listen = strdup(cfg->metrics.listen))) {
        snprintf(err, errlen, "obs: out of memory");
        goto fail;
    }
    g.nworkers = nworkers;
    g.start_ms = clock_wall_ms();
    /* one shard per worker, and one more for calls from any other thread */
    if (metrics_create(cfg, nworkers + 1, &g.metrics) != 0) {
        snprintf(err, errlen, "obs: out of memory");
        goto fail;
    }
    if (accesslog_open(cfg->access_log.mode, cfg->access_log.path, nworkers + 1, &g.alog, e,
                       sizeof(e)) != 0) {
        snprintf(err, errlen, "%s", e);
        goto fail;
    }
    if (cfg->alerts.webhook_url) {
        alerts_opts_t o = {
            .host = cfg->alerts.host,
            .port = cfg->alerts.port,
            .path = cfg->alerts.path,
            .host_header = cfg->alerts.host_header,
            .min_interval_ms = cfg->alerts.min_interval_ms,
            .timeout_ms = cfg->alerts.timeout_ms,
            .include_cooling = cfg->alerts.include_cooling,
            .shm = shm,
        };
        if (alerts_start(&o, &g.alerts, e, sizeof(e)) != 0) {
            snprintf(err, errlen, "%s", e);
            goto fail;
        }
        log_info("alerts: webhook to %s:%u, at most one POST per %u ms", cfg->alerts.host,
                 cfg->alerts.port, cfg->alerts.min_interval_ms);
    }
    atomic_store_explicit(&g.ready, 1, memory_order_release);
    return 0;
fail:
    accesslog_close(g.alog);
    metrics_destroy(g.metrics);
    cfgref_put(g.ref);
    uv_mutex_destroy(&g.ref_lock);
    free(g.admin_listen);
    memset(&g, 0, sizeof(g));
    return -1;
}

static int str_differ(const char *a, const char *b)
{
    return (a || b) && (!a || !b || strcmp(a, b) != 0);
}

void obs_reload(cfg_ref_t *ref)
{
    const cfg_t *cfg = ref->cfg, *old;
    cfg_ref_t *prev;

    if (!on())
        return;
    if (metrics_reload(g.metrics, cfg) != 0)
        log_error("metrics: out of memory adding the new configuration's names");
    uv_mutex_lock(&g.ref_lock);
    prev = g.ref;
    g.ref = cfgref_get(ref);
    uv_mutex_unlock(&g.ref_lock);
    old = prev->cfg;
    if (str_differ(old->metrics.listen, cfg->metrics.listen) ||
        str_differ(old->access_log.path, cfg->access_log.path) ||
        str_differ(old->alerts.webhook_url, cfg->alerts.webhook_url) ||
        old->alerts.min_interval_ms != cfg->alerts.min_interval_ms ||
        old->alerts.timeout_ms != cfg->alerts.timeout_ms ||
        old->alerts.include_cooling != cfg->alerts.include_cooling)
        log_warn("reload: metrics, access_log and alerts changes take effect at the next start");
    cfgref_put(prev);
}

void obs_shutdown(void)
{
    if (!on())
        return;
    atomic_store(&g.ready, 0);
    alerts_stop(g.alerts);
    accesslog_close(g.alog);
    metrics_destroy(g.metrics);
    cfgref_put(g.ref);
    uv_mutex_destroy(&g.ref_lock);
    free(g.admin_listen);
    g.alerts = NULL;
    g.alog = NULL;
    g.metrics = NULL;
    g.ref = NULL;
    g.admin_listen = NULL;
}

/* ---- hooks ------------------------------------------------------------------------------- */

void obs_request_done(unsigned worker_id, const obs_record_t *r)
{
    if (!on() || !r)
        return;
    metrics_request(g.metrics, worker_id, r);
    accesslog_write(g.alog, worker_id, r);
}

void obs_rotation(unsigned worker_id, const char *reason)
{
    if (on())
        metrics_retry(g.metrics, worker_id, 1, reason);
}

void obs_retry(unsigned worker_id, const char *reason)
{
    if (on())
        metrics_retry(g.metrics, worker_id, 0, reason);
}

void obs_inflight_add(unsigned worker_id, int delta)
{
    if (on())
        metrics_inflight(g.metrics, worker_id, delta);
}

void obs_key_event(const char *key, const char *provider, int old_status, int new_status,
                   const char *reason)
{
    if (on())
        alerts_key_event(g.alerts, key, provider, old_status, new_status, reason);
}

void obs_circuit_event(const char *provider, int old_state, int new_state)
{
    if (on())
        alerts_circuit_event(g.alerts, provider, old_state, new_state);
}

void obs_access_log_reopen(void)
{
    if (on())
        accesslog_reopen(g.alog);
}

const char *obs_outcome_reason(int shm_class, int shm_reason)
{
    if (shm_reason == SHM_RS_QUOTA)
        return "quota";
    switch (shm_class) {
    case SHM_CL_429:
        return "rate_limited";
    case SHM_CL_5XX:
        return "server_error";
    case SHM_CL_TIMEOUT:
        return "timeout";
    case SHM_CL_CONNECT:
        return "connect";
    case SHM_CL_AUTH:
        return "auth";
    default:
        return "other";
    }
}

double obs_cost_usd(const cfg_model_t *model, uint32_t prompt_tokens, uint32_t completion_tokens)
{
    if (!model)
        return 0;
    return ((double)prompt_tokens * model->input_price_per_m +
            (double)completion_tokens * model->output_price_per_m) /
           1e6;
}

int obs_render_liveness(buf_t *out)
{
    buf_appends(out, "{\"status\":\"ok\"}");
    return 200;
}

int obs_render_readiness(buf_t *out)
{
    cfg_ref_t *ref;
    int status;

    if (!on()) {
        buf_appends(out, "{\"status\":\"not_ready\",\"error\":\"starting or stopping\"}");
        return 503;
    }
    ref = cur_ref();
    status = obs_store_readiness(ref->cfg, g.shm, out);
    cfgref_put(ref);
    return status;
}

int obs_render_metrics(buf_t *out)
{
    cfg_ref_t *ref;
    int rc = 0;

    if (!on())
        return -1;
    rc |= metrics_render(g.metrics, out);
    ref = cur_ref();
    rc |= obs_store_metrics(ref->cfg, g.shm, out);
    cfgref_put(ref);
    rc |= obs_cluster_metrics(out);
    {
        alerts_stats_t as;
        prom_labels_t l = {0};
        alerts_stats(g.alerts, &as);
        rc |= prom_family(out, "llmgate_access_log_dropped_lines_total", "counter",
                          "Access log lines dropped because the output could not keep up or "
                          "failed.");
        rc |= prom_sample(out, "llmgate_access_log_dropped_lines_total", NULL,
                          (double)accesslog_dropped(g.alog));
        rc |= prom_family(out, "llmgate_alert_webhook_posts_total", "counter",
                          "POSTs to the alert webhook by result.");
        prom_label(&l, "result", "ok");
        rc |= prom_sample(out, "llmgate_alert_webhook_posts_total", &l, (double)as.posts_ok);
        l.n = 0;
        prom_label(&l, "result", "error");
        rc |= prom_sample(out, "llmgate_alert_webhook_posts_total", &l, (double)as.posts_failed);
        rc |= prom_family(out, "llmgate_alert_events_total", "counter",
                          "Alert events by result (sent in a POST, or dropped).");
        l.n = 0;
        prom_label(&l, "result", "sent");
        rc |= prom_sample(out, "llmgate_alert_events_total", &l, (double)as.events_sent);
        l.n = 0;
        prom_label(&l, "result", "dropped");
        rc |= prom_sample(out, "llmgate_alert_events_total", &l, (double)as.events_dropped);
    }
    rc |= prom_family(out, "llmgate_start_time_seconds", "gauge",
                      "When this llmgate process started, seconds since the epoch.");
    rc |= prom_sample(out, "llmgate_start_time_seconds", NULL, (double)g.start_ms / 1000.0);
    return rc ? -1 : 0;
}

/* ---- the admin listener ------------------------------------------------------------------ */

static int admin_route_cb(void *arg, const admin_req_t *req, buf_t *body, const char **content_type)
{
    const char *path = req->path;
    cfg_ref_t *ref;
    int status;

    (void)arg;
    *content_type = "application/json";
    ref = cur_ref();
    status = dashboard_route(g.shm, ref->cfg, req, body, content_type);
    cfgref_put(ref);
    if (status != 0)
        return status;
    if (req->method == HTTP_POST) {
        buf_appends(body, "{\"error\":{\"message\":\"only the dashboard's actions are posted "
                          "(/api/keys/NAME/ACTION)\",\"type\":\"invalid_request_error\","
                          "\"param\":null,\"code\":\"method_not_allowed\"}}");
        return 405;
    }
    if (strcmp(path, "/metrics") == 0) {
        *content_type = OBS_METRICS_CONTENT_TYPE;
        if (obs_render_metrics(body) != 0) {
            buf_reset(body);
            *content_type = "application/json";
            buf_appends(body, "{\"error\":{\"message\":\"metrics could not be rendered\","
                              "\"type\":\"server_error\",\"param\":null,\"code\":null}}");
            return 500;
        }
        return 200;
    }
    if (strcmp(path, "/health") == 0)
        return obs_render_liveness(body);
    if (strcmp(path, "/health/full") == 0)
        return obs_render_readiness(body);
    return 404;
}

int obs_admin_start(uv_loop_t *main_loop, char *err, size_t errlen)
{
    char e[512];

    if (!on()) {
        snprintf(err, errlen, "obs: obs_admin_start before obs_init");
        return -1;
    }
    if (g.admin_mode != CFG_METRICS_ADMIN || g.admin || !g.admin_listen)
        return 0;
    if (admin_http_start(main_loop, g.admin_listen, admin_route_cb, NULL, &g.admin, &g.admin_port,
                         e, sizeof(e)) != 0) {
        if (g.admin_default) {
            log_warn("metrics: %s; /metrics is not served (set metrics.listen to another "
                     "address, main or off)",
                     e);
            return 0;
        }
        snprintf(err, errlen, "metrics: %s", e);
        return -1;
    }
    log_info("admin http on %s (port %d): /metrics /health /health/full /dashboard /api/",
             g.admin_listen, g.admin_port);
    return 0;
}

void obs_admin_stop(void)
{
    admin_http_stop(g.admin);
    g.admin = NULL;
    g.admin_port = 0;
}

int obs_admin_port(void)
{
    return g.admin_port;
}
