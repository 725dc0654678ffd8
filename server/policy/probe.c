/* probe.c - active health probes; see probe.h. */
#include "server/policy/probe.h"
#include "server/common/clock.h"
#include "server/common/buf.h"
#include "server/policy/keypolicy.h"
#include "server/common/log.h"
#include "server/upstream/rewrite.h"
#include "server/upstream/upstream.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct probe_s {
    struct prober_s *p;
    cfg_ref_t *cfg; /* held while the probe runs: prov and key point into it */
    const cfg_provider_t *prov;
    const cfg_key_t *key;
    int for_circuit; /* probing an open circuit rather than the key */
    int status;
    struct probe_s *next;
} probe_t;

struct prober_s {
    uv_loop_t *loop;
    uv_timer_t timer;
    shm_t *shm;
    upstream_pool_t *pool;
    cfg_ref_t *(*current)(void *arg);
    void *arg;
    probe_t *running;
    int stopping;
};

static int running(const prober_t *p, const cfg_key_t *key)
{
    for (const probe_t *q = p->running; q; q = q->next)
        if (strcmp(q->key->name, key->name) == 0)
            return 1;
    return 0;
}

static void probe_free(probe_t *q)
{
    prober_t *p = q->p;

    for (probe_t **pp = &p->running; *pp; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    }
    cfgref_put(q->cfg);
    free(q);
}

static void on_probe_response_cb(upstream_req_t *up, int status, const http_hdr_t *hdrs, size_t n,
                                 long long cl, void *ud)
{
    probe_t *q = ud;

    (void)up, (void)hdrs, (void)n, (void)cl;
    q->status = status;
}

static void on_probe_body_cb(upstream_req_t *up, const char *data, size_t len, void *ud)
{
    (void)up, (void)data, (void)len, (void)ud;
}

static void on_probe_done_cb(upstream_req_t *up, int err, void *ud)
{
    probe_t *q = ud;
    prober_t *p = q->p;
    shm_outcome_t o;
    const char *why;
    kp_input_t in = {q->status, err, NULL, 0, NULL, 0, clock_wall_ms()};
    int rc;

    (void)up;
    if (err == UPSTREAM_ECANCELED || p->stopping) {
        probe_free(q);
        return;
    }
    keypolicy_judge(&q->cfg->cfg->policy, &in, &o, &why);
    /* A probe says whether the key works, not how the provider limits it right now. */
    o.cooldown_until_ms = 0;
    o.fail_threshold = 0;
    o.circuit_min_requests = 0;
    o.set_status = -1;
    o.reason = SHM_RS_PROBE;
    o.count_request = 1; /* probe traffic counts against the key's limits */
    if (!err && q->status >= 200 && q->status < 300) {
        if (q->for_circuit) {
            shm_provider_set_circuit(p->shm, q->prov->name, SHM_CIRCUIT_CLOSED, 0, SHM_RS_PROBE,
                                     SHM_NOW);
            log_info("probe: provider %s answers again: circuit closed", q->prov->name);
        } else {
            shm_key_t k;
            if (shm_key_get(p->shm, q->key->name, SHM_NOW, &k) == 0 &&
                k.status == SHM_ST_DEPLETED) {
                o.set_status = SHM_ST_ACTIVE;
                log_info("probe: key %s of %s answers again: depletion ended", q->key->name,
                         q->prov->name);
            }
        }
    } else if (!err && (q->status == 401 || q->status == 403)) {
        o.set_status = SHM_ST_INVALID;
        o.reason = SHM_RS_AUTH;
        log_warn("probe: key %s of %s is refused (%d): marked invalid", q->key->name, q->prov->name,
                 q->status);
    }
    rc = shm_key_note(p->shm, q->key->name, &o, SHM_NOW);
    if (rc != 0 && rc != SHM_ENOTFOUND) {
        char why[320];
        log_error("probe: recording key %s failed: %s", q->key->name,
                  shm_explain(p->shm, rc, why, sizeof(why)));
    }
    probe_free(q);
}

static const upstream_cbs_t probe_cbs = {
    .on_response_cb = on_probe_response_cb,
    .on_body_cb = on_probe_body_cb,
    .on_done_cb = on_probe_done_cb,
};

static void send_probe(prober_t *p, cfg_ref_t *cfg, const cfg_provider_t *prov,
                       const cfg_key_t *key, int for_circuit)
{
    probe_t *q;
    buf_t head = {0};
    upstream_req_t *up;

    if (running(p, key) || !(q = calloc(1, sizeof(*q))))
        return;
    q->p = p;
    q->cfg = cfgref_get(cfg);
    q->prov = prov;
    q->key = key;
    q->for_circuit = for_circuit;
    q->next = p->running;
    p->running = q;
    if (rewrite_request_head(&head, "GET", "/models", 7, NULL, 0, prov, key, 0, NULL) != 0 ||
        upstream_request(p->pool, prov, head.data, head.len, "", 0, 0, &probe_cbs, q, &up) != 0)
        probe_free(q);
    buf_free(&head);
}

static void on_tick_cb(uv_timer_t *t)
{
    prober_t *p = t->data;
    cfg_ref_t *cfg = p->current(p->arg);
    shm_key_t *keys = NULL;
    shm_provider_t *provs = NULL;
    unsigned nkeys = 0, nprovs = 0;
    int64_t now = clock_wall_ms();

    if (!cfg)
        return;
    if (shm_snapshot(p->shm, SHM_NOW, &keys, &nkeys) != 0)
        nkeys = 0;
    if (shm_providers(p->shm, &provs, &nprovs) != 0)
        nprovs = 0;
    for (unsigned i = 0; i < nkeys; i++) {
        const cfg_provider_t *prov;
        const cfg_key_t *key;
        if (keys[i].orphaned ||
            (keys[i].status != SHM_ST_COOLING && keys[i].status != SHM_ST_DEPLETED))
            continue;
        if ((key = cfg_key_find(cfg->cfg, keys[i].name, &prov)))
            send_probe(p, cfg, prov, key, 0);
    }
    for (unsigned i = 0; i < nprovs; i++) {
        if (provs[i].circuit != SHM_CIRCUIT_OPEN && provs[i].circuit != SHM_CIRCUIT_HALF_OPEN)
            continue;
        for (unsigned j = 0; j < cfg->cfg->providers_count; j++) {
            const cfg_provider_t *prov = &cfg->cfg->providers[j];
            if (strcmp(prov->name, provs[i].name) != 0)
                continue;
            /* the first key that is not out of service */
            for (unsigned k = 0; k < prov->keys_count; k++) {
                shm_key_t st;
                if (shm_key_get(p->shm, prov->keys[k].name, SHM_NOW, &st) == 0 &&
                    st.status != SHM_ST_INVALID && st.status != SHM_ST_DISABLED) {
                    send_probe(p, cfg, prov, &prov->keys[k], 1);
                    break;
                }
            }
        }
    }
    (void)now;
    shm_snapshot_free(keys);
    shm_snapshot_free(provs);
    /* the interval may have changed with a reload */
    if (cfg->cfg->policy.probe_interval_ms)
        uv_timer_start(&p->timer, on_tick_cb, cfg->cfg->policy.probe_interval_ms, 0);
    cfgref_put(cfg);
}

int probe_start(prober_t **out, uv_loop_t *loop, shm_t *shm, cfg_ref_t *(*current)(void *arg),
                void *arg)
{
    prober_t *p = calloc(1, sizeof(*p));
    cfg_ref_t *cfg = current(arg);
    int rc;

    *out = NULL;
    if (!p || !cfg) {
        free(p);
        cfgref_put(cfg);
        return -1;
    }
    p->loop = loop;
    p->shm = shm;
    p->current = current;
    p->arg = arg;
    if ((rc = upstream_pool_new(&p->pool, loop, cfg->cfg)) != 0) {
        free(p);
        cfgref_put(cfg);
        return rc;
    }
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    if (cfg->cfg->policy.probe_interval_ms)
        uv_timer_start(&p->timer, on_tick_cb, cfg->cfg->policy.probe_interval_ms, 0);
    cfgref_put(cfg);
    *out = p;
    return 0;
}

static void on_timer_closed_cb(uv_handle_t *h)
{
    free(h->data);
}

void probe_stop(prober_t *p)
{
    if (!p)
        return;
    p->stopping = 1;
    upstream_pool_close(p->pool); /* in-flight probes end now, through on_probe_done_cb */
    uv_close((uv_handle_t *)&p->timer, on_timer_closed_cb);
}
