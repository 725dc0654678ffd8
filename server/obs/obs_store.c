/* obs_store.c - what /metrics and /health/full read from the shared store: one snapshot
 * of every key and provider per call, the families llmgate_key_*, llmgate_provider_*,
 * llmgate_model_*, and readiness. See obs.h for the rules and obs_store.h for the calls. */
#include "server/obs/obs_store.h"
#include "server/common/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/common/errors.h"
#include "server/common/log.h"
#include "server/obs/obs_clients.h"
#include "server/obs/obs_cluster.h"
#include "server/obs/prom.h"

/* ---- the store: snapshot and readiness ---------------------------------------------------- */

typedef struct view_s {
    int64_t now;
    shm_key_t *keys;
    unsigned nkeys;
    shm_provider_t *provs;
    unsigned nprovs;
} view_t;

static int cmp_key(const void *a, const void *b)
{
    return strcmp(((const shm_key_t *)a)->name, ((const shm_key_t *)b)->name);
}

static int cmp_prov(const void *a, const void *b)
{
    return strcmp(((const shm_provider_t *)a)->name, ((const shm_provider_t *)b)->name);
}

static int view_load(view_t *v, shm_t *shm)
{
    int rc;

    memset(v, 0, sizeof(*v));
    v->now = clock_wall_ms();
    rc = shm_snapshot(shm, v->now, &v->keys, &v->nkeys);
    if (rc == 0)
        rc = shm_providers(shm, &v->provs, &v->nprovs);
    if (rc != 0)
        return rc;
    /* sorted by the store already; sorted here by strcmp so that bsearch agrees */
    qsort(v->keys, v->nkeys, sizeof(*v->keys), cmp_key);
    qsort(v->provs, v->nprovs, sizeof(*v->provs), cmp_prov);
    return 0;
}

static void view_free(view_t *v)
{
    shm_snapshot_free(v->keys);
    shm_snapshot_free(v->provs);
    memset(v, 0, sizeof(*v));
}

static const shm_key_t *view_key(const view_t *v, const char *name)
{
    shm_key_t probe;

    snprintf(probe.name, sizeof(probe.name), "%s", name);
    return bsearch(&probe, v->keys, v->nkeys, sizeof(*v->keys), cmp_key);
}

static const shm_provider_t *view_prov(const view_t *v, const char *name)
{
    shm_provider_t probe;

    snprintf(probe.name, sizeof(probe.name), "%s", name);
    return bsearch(&probe, v->provs, v->nprovs, sizeof(*v->provs), cmp_prov);
}

/* The state llmgatectl shows: a COOLING key whose cooldown has passed is half-open. */
static int key_state(const shm_key_t *k, int64_t now)
{
    if (k->status == SHM_ST_COOLING && k->cooldown_until_ms <= now)
        return SHM_ST_HALF_OPEN;
    return k->status;
}

/* NULL if k (NULL: not in the store) can be admitted by its state now, else why not. */
static const char *key_blocked(const view_t *v, const shm_key_t *k)
{
    const shm_provider_t *p;

    if (!k)
        return "not_in_store";
    if (k->orphaned)
        return "orphaned";
    switch (key_state(k, v->now)) {
    case SHM_ST_ACTIVE:
    case SHM_ST_HALF_OPEN:
        break;
    case SHM_ST_COOLING:
        return "cooling";
    case SHM_ST_DEPLETED:
        /* with a reset time that has passed it is probed again (shm.h) */
        if (k->cooldown_until_ms && k->cooldown_until_ms <= v->now)
            break;
        return "depleted";
    default:
        return shm_status_name(k->status); /* disabled, invalid */
    }
    p = view_prov(v, k->provider);
    if (p && p->circuit == SHM_CIRCUIT_OPEN && p->open_until_ms > v->now)
        return "circuit_open";
    return NULL;
}

typedef struct mready_s {
    unsigned admissible, total;
} mready_t;

/* Walk model and its fallbacks (breadth-first, each once); call fn for each distinct key.
 * seen: cfg->models_count + nkeys scratch bytes. */
typedef void (*key_fn)(void *arg, const cfg_key_t *key, const cfg_provider_t *prov);

static void walk_model_keys(const cfg_t *cfg, const cfg_model_t *m, unsigned char *mseen,
                            const cfg_key_t **kseen, unsigned *nk, key_fn fn, void *arg)
{
    const cfg_model_t *queue[64];
    unsigned qh = 0, qt = 0;

    memset(mseen, 0, cfg->models_count);
    *nk = 0;
    queue[qt++] = m;
    mseen[m - cfg->models] = 1;
    while (qh < qt) {
        const cfg_model_t *cur = queue[qh++];
        for (unsigned d = 0; d < cur->deployments_count; d++) {
            const cfg_provider_t *p = cur->deployments[d].provider_ref;
            for (unsigned k = 0; p && k < p->keys_count; k++) {
                unsigned j;
                for (j = 0; j < *nk && kseen[j] != &p->keys[k]; j++)
                    ;
                if (j < *nk)
                    continue;
                kseen[(*nk)++] = &p->keys[k];
                fn(arg, &p->keys[k], p);
            }
        }
        for (unsigned f = 0; f < cur->fallbacks_count && qt < 64; f++) {
            const cfg_model_t *fm = cur->fallback_refs ? cur->fallback_refs[f] : NULL;
            if (fm && !mseen[fm - cfg->models]) {
                mseen[fm - cfg->models] = 1;
                queue[qt++] = fm;
            }
        }
    }
}

typedef struct count_arg_s {
    const view_t *v;
    mready_t *r;
    buf_t *out; /* with a body: the keys and why, as JSON */
    int first;
    int rc;
} count_arg_t;

static void count_key(void *arg, const cfg_key_t *key, const cfg_provider_t *prov)
{
    count_arg_t *a = arg;
    const char *why = key_blocked(a->v, view_key(a->v, key->name));

    a->r->total++;
    if (!why)
        a->r->admissible++;
    if (a->out) {
        char kn[200], pn[200];
        json_escape(kn, sizeof(kn), key->name, strlen(key->name));
        json_escape(pn, sizeof(pn), prov->name, strlen(prov->name));
        a->rc |= buf_printf(a->out, "%s{\"key\":\"%s\",\"provider\":\"%s\",\"state\":\"%s\"}",
                            a->first ? "" : ",", kn, pn, why ? why : "admissible");
        a->first = 0;
    }
}

/* Readiness of every model into r[] (cfg->models_count entries). 0 or -1 (memory). */
static int readiness(const cfg_t *cfg, const view_t *v, mready_t *r)
{
    unsigned nkeys = 0, nk;
    unsigned char *mseen;
    const cfg_key_t **kseen;

    for (unsigned i = 0; i < cfg->providers_count; i++)
        nkeys += cfg->providers[i].keys_count;
    mseen = calloc(cfg->models_count + 1, 1);
    kseen = calloc(nkeys + 1, sizeof(*kseen));
    if (!mseen || !kseen) {
        free(mseen);
        free(kseen);
        return -1;
    }
    for (unsigned i = 0; i < cfg->models_count; i++) {
        count_arg_t a = {v, &r[i], NULL, 1, 0};
        memset(&r[i], 0, sizeof(r[i]));
        walk_model_keys(cfg, &cfg->models[i], mseen, kseen, &nk, count_key, &a);
    }
    free(mseen);
    free(kseen);
    return 0;
}

int obs_store_readiness(const cfg_t *cfg, shm_t *shm, buf_t *out)
{
    view_t v;
    mready_t *r = NULL;
    int status = 503, rc, ready = 1;
    unsigned nkeys = 0, nk;
    unsigned char *mseen = NULL;
    const cfg_key_t **kseen = NULL;

    rc = view_load(&v, shm);
    if (rc != 0) {
        buf_printf(out,
                   "{\"status\":\"not_ready\",\"error\":\"the state store cannot be read: %s\"}",
                   shm_strerror(rc));
        view_free(&v);
        return 503;
    }
    for (unsigned i = 0; i < cfg->providers_count; i++)
        nkeys += cfg->providers[i].keys_count;
    r = calloc(cfg->models_count + 1, sizeof(*r));
    mseen = calloc(cfg->models_count + 1, 1);
    kseen = calloc(nkeys + 1, sizeof(*kseen));
    if (!r || !mseen || !kseen || readiness(cfg, &v, r) != 0) {
        buf_appends(out, "{\"status\":\"not_ready\",\"error\":\"out of memory\"}");
        goto out;
    }
    for (unsigned i = 0; i < cfg->models_count; i++)
        ready &= r[i].admissible > 0;
    rc = buf_printf(out, "{\"status\":\"%s\",\"models\":[", ready ? "ready" : "not_ready");
    for (unsigned i = 0; i < cfg->models_count; i++) {
        char mn[1600];
        json_escape(mn, sizeof(mn), cfg->models[i].name, strlen(cfg->models[i].name));
        rc |= buf_printf(
            out, "%s{\"model\":\"%s\",\"ready\":%s,\"admissible_keys\":%u,\"keys\":%u}",
            i ? "," : "", mn, r[i].admissible ? "true" : "false", r[i].admissible, r[i].total);
    }
    rc |= buf_appends(out, "]");
    if (!ready) {
        int first = 1;
        rc |= buf_appends(out, ",\"missing\":[");
        for (unsigned i = 0; i < cfg->models_count; i++) {
            char mn[1600];
            mready_t dummy = {0, 0};
            count_arg_t a = {&v, &dummy, out, 1, 0};
            if (r[i].admissible)
                continue;
            json_escape(mn, sizeof(mn), cfg->models[i].name, strlen(cfg->models[i].name));
            rc |= buf_printf(out, "%s{\"model\":\"%s\",\"reason\":\"no admissible key\",\"keys\":[",
                             first ? "" : ",", mn);
            walk_model_keys(cfg, &cfg->models[i], mseen, kseen, &nk, count_key, &a);
            rc |= a.rc | buf_appends(out, "]}");
            first = 0;
        }
        rc |= buf_appends(out, "]");
    }
    rc |= obs_cluster_json(out); /* degraded is still ready: it admits on the safe share */
    rc |= buf_appends(out, "}");
    status = rc == 0 && ready ? 200 : 503;
out:
    free(r);
    free(mseen);
    free(kseen);
    view_free(&v);
    return status;
}

/* ---- metrics: the store's families --------------------------------------------------------- */

static void key_labels(prom_labels_t *l, const shm_key_t *k)
{
    l->n = 0;
    prom_label(l, "key", k->name);
    prom_label(l, "provider", k->provider);
}

static int render_keys(const view_t *v, buf_t *out)
{
    static const char *const quota[] = {"rpm", "rpd", "tpm"};
    prom_labels_t l;
    int rc = 0;

    rc |= prom_family(out, "llmgate_key_status", "gauge",
                      "1 for the key's current status (as llmgatectl shows it), 0 for the others.");
    for (unsigned i = 0; i < v->nkeys; i++) {
        int st = key_state(&v->keys[i], v->now);
        for (int s = 0; s < SHM_ST_COUNT; s++) {
            key_labels(&l, &v->keys[i]);
            prom_label(&l, "status", shm_status_name(s));
            rc |= prom_sample(out, "llmgate_key_status", &l, s == st);
        }
    }
    rc |= prom_family(out, "llmgate_key_orphaned", "gauge",
                      "1 if the key is in the store but no longer in the configuration.");
    for (unsigned i = 0; i < v->nkeys; i++) {
        key_labels(&l, &v->keys[i]);
        rc |= prom_sample(out, "llmgate_key_orphaned", &l, v->keys[i].orphaned != 0);
    }
    rc |= prom_family(out, "llmgate_key_cooldown_seconds", "gauge",
                      "Seconds until the key's cooldown (or depletion) ends, 0 if none.");
    for (unsigned i = 0; i < v->nkeys; i++) {
        const shm_key_t *k = &v->keys[i];
        double left = k->cooldown_until_ms > v->now ? (k->cooldown_until_ms - v->now) / 1000.0 : 0;
        if (k->status != SHM_ST_COOLING && k->status != SHM_ST_DEPLETED)
            left = 0;
        key_labels(&l, k);
        rc |= prom_sample(out, "llmgate_key_cooldown_seconds", &l, left);
    }
    rc |= prom_family(out, "llmgate_key_inflight", "gauge",
                      "Requests in flight on the key, over every process sharing the store.");
    for (unsigned i = 0; i < v->nkeys; i++) {
        key_labels(&l, &v->keys[i]);
        rc |= prom_sample(out, "llmgate_key_inflight", &l, v->keys[i].inflight);
    }
    rc |= prom_family(out, "llmgate_key_consecutive_failures", "gauge",
                      "Failures of the key since its last success.");
    for (unsigned i = 0; i < v->nkeys; i++) {
        key_labels(&l, &v->keys[i]);
        rc |= prom_sample(out, "llmgate_key_consecutive_failures", &l, v->keys[i].consec_failures);
    }
    rc |= prom_family(out, "llmgate_key_quota_used", "gauge",
                      "Use of the key's limits now: requests in the last 60 s (rpm), today (rpd), "
                      "tokens in the last 60 s (tpm).");
    for (unsigned i = 0; i < v->nkeys; i++) {
        const shm_key_t *k = &v->keys[i];
        double used[3] = {k->rpm_used, k->rpd_used, (double)k->tpm_used};
        for (int q = 0; q < 3; q++) {
            key_labels(&l, k);
            prom_label(&l, "limit", quota[q]);
            rc |= prom_sample(out, "llmgate_key_quota_used", &l, used[q]);
        }
    }
    rc |= prom_family(out, "llmgate_key_quota_limit", "gauge",
                      "The key's configured limits (rpm, rpd, tpm); 0 = unlimited.");
    for (unsigned i = 0; i < v->nkeys; i++) {
        const shm_key_t *k = &v->keys[i];
        double lim[3] = {k->rpm, k->rpd, k->tpm};
        for (int q = 0; q < 3; q++) {
            key_labels(&l, k);
            prom_label(&l, "limit", quota[q]);
            rc |= prom_sample(out, "llmgate_key_quota_limit", &l, lim[q]);
        }
    }
    rc |= prom_family(out, "llmgate_key_requests_total", "counter",
                      "Requests admitted on the key (the store's total, every process).");
    for (unsigned i = 0; i < v->nkeys; i++) {
        key_labels(&l, &v->keys[i]);
        rc |= prom_sample(out, "llmgate_key_requests_total", &l, (double)v->keys[i].requests);
    }
    rc |= prom_family(out, "llmgate_key_outcomes_total", "counter",
                      "Outcomes recorded for the key by class (the store's total).");
    for (unsigned i = 0; i < v->nkeys; i++) {
        for (int c = 0; c < SHM_CL_COUNT; c++) {
            key_labels(&l, &v->keys[i]);
            prom_label(&l, "class", shm_class_name(c));
            rc |=
                prom_sample(out, "llmgate_key_outcomes_total", &l, (double)v->keys[i].by_class[c]);
        }
    }
    rc |= prom_family(out, "llmgate_key_tokens_total", "counter",
                      "Tokens used through the key by type (the store's total).");
    for (unsigned i = 0; i < v->nkeys; i++) {
        key_labels(&l, &v->keys[i]);
        prom_label(&l, "type", "prompt");
        rc |= prom_sample(out, "llmgate_key_tokens_total", &l, (double)v->keys[i].prompt_tokens);
        key_labels(&l, &v->keys[i]);
        prom_label(&l, "type", "completion");
        rc |=
            prom_sample(out, "llmgate_key_tokens_total", &l, (double)v->keys[i].completion_tokens);
    }
    rc |= prom_family(out, "llmgate_key_cost_usd_total", "counter",
                      "Cost in US dollars through the key at the configured prices (the store's "
                      "total).");
    for (unsigned i = 0; i < v->nkeys; i++) {
        key_labels(&l, &v->keys[i]);
        rc |= prom_sample(out, "llmgate_key_cost_usd_total", &l,
                          (double)v->keys[i].cost_micro_usd / 1e6);
    }
    return rc;
}

static int render_providers(const view_t *v, buf_t *out)
{
    static const int states[] = {SHM_CIRCUIT_CLOSED, SHM_CIRCUIT_OPEN, SHM_CIRCUIT_HALF_OPEN};
    prom_labels_t l;
    int rc = 0;

    rc |= prom_family(out, "llmgate_provider_circuit_state", "gauge",
                      "1 for the provider's circuit state (closed, open, half_open), 0 for the "
                      "others.");
    for (unsigned i = 0; i < v->nprovs; i++) {
        for (int s = 0; s < 3; s++) {
            l.n = 0;
            prom_label(&l, "provider", v->provs[i].name);
            prom_label(&l, "state", shm_circuit_name(states[s]));
            rc |= prom_sample(out, "llmgate_provider_circuit_state", &l,
                              v->provs[i].circuit == states[s]);
        }
    }
    rc |= prom_family(out, "llmgate_provider_circuit_open_seconds", "gauge",
                      "Seconds until the provider's open circuit lets requests through, 0 if "
                      "not open.");
    for (unsigned i = 0; i < v->nprovs; i++) {
        const shm_provider_t *p = &v->provs[i];
        double left = p->circuit == SHM_CIRCUIT_OPEN && p->open_until_ms > v->now
                          ? (p->open_until_ms - v->now) / 1000.0
                          : 0;
        l.n = 0;
        prom_label(&l, "provider", p->name);
        rc |= prom_sample(out, "llmgate_provider_circuit_open_seconds", &l, left);
    }
    rc |= prom_family(out, "llmgate_provider_failures_total", "counter",
                      "429, 5xx, timeout and connect outcomes of the provider's keys (the "
                      "store's total).");
    for (unsigned i = 0; i < v->nprovs; i++) {
        l.n = 0;
        prom_label(&l, "provider", v->provs[i].name);
        rc |= prom_sample(out, "llmgate_provider_failures_total", &l, (double)v->provs[i].failures);
    }
    return rc;
}

static int render_models(const cfg_t *cfg, const view_t *v, buf_t *out)
{
    mready_t *r = calloc(cfg->models_count + 1, sizeof(*r));
    prom_labels_t l;
    int rc;

    if (!r || readiness(cfg, v, r) != 0) {
        free(r);
        return -1;
    }
    rc = prom_family(out, "llmgate_model_ready", "gauge",
                     "1 if at least one key of the model (deployments and fallbacks) is "
                     "admissible by its state (what /health/full checks).");
    for (unsigned i = 0; i < cfg->models_count; i++) {
        l.n = 0;
        prom_label(&l, "model", cfg->models[i].name);
        rc |= prom_sample(out, "llmgate_model_ready", &l, r[i].admissible > 0);
    }
    rc |= prom_family(out, "llmgate_model_admissible_keys", "gauge",
                      "Keys of the model (deployments and fallbacks) admissible by their state.");
    for (unsigned i = 0; i < cfg->models_count; i++) {
        l.n = 0;
        prom_label(&l, "model", cfg->models[i].name);
        rc |= prom_sample(out, "llmgate_model_admissible_keys", &l, r[i].admissible);
    }
    free(r);
    return rc;
}

int obs_store_metrics(const cfg_t *cfg, shm_t *shm, buf_t *out)
{
    view_t v;
    int rc = 0, src = view_load(&v, shm);

    rc |= prom_family(out, "llmgate_store_up", "gauge",
                      "1 if the state store could be read for this scrape (the llmgate_key_*, "
                      "llmgate_provider_* and llmgate_model_* families need it).");
    rc |= prom_sample(out, "llmgate_store_up", NULL, src == 0);
    if (src == 0) {
        rc |= render_keys(&v, out);
        rc |= render_providers(&v, out);
        rc |= render_models(cfg, &v, out);
        int crc = obs_clients_metrics(shm, v.now, out);
        if (crc == SHM_ENOMEM)
            rc = -1;
        else if (crc != 0)
            log_warn("metrics: the store's clients cannot be read: %s", shm_strerror(crc));
    } else {
        log_warn("metrics: the state store cannot be read: %s", shm_strerror(src));
    }
    view_free(&v);
    return rc ? -1 : 0;
}
