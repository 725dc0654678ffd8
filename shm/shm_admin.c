/* shm_admin.c - the key set (sync from the configuration, prune), views for readers (the
 * CLI, metrics), provider circuits and the admin actions. None of this is on the request
 * path except shm_provider_set_circuit. */
#include "shm/shm_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

/* ---- Key set ----------------------------------------------------------------------------- */

typedef struct sync_ctx_s {
    const shm_key_spec_t *specs;
    const shm_key_spec_t **sorted; /* by name, for the orphan pass */
    unsigned n;
    int64_t now_ms;
    shm_sync_stats_t st;
} sync_ctx_t;

static int spec_cmp(const void *a, const void *b)
{
    return strcmp((*(const shm_key_spec_t *const *)a)->name,
                  (*(const shm_key_spec_t *const *)b)->name);
}

static int spec_find_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(const shm_key_spec_t *const *)elem)->name);
}

static void copy_name(char *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    if (src)
        memcpy(dst, src, strnlen(src, size - 1));
}

static void key_init(shm_krec_t *k, const shm_key_spec_t *sp, int64_t now_ms)
{
    memset(k, 0, sizeof(*k));
    k->version = SHM_KREC_VERSION;
    k->size = sizeof(*k);
    copy_name(k->name, sizeof(k->name), sp->name);
    k->status = SHM_ST_ACTIVE;
    k->status_since_ms = k->created_ms = k->updated_ms = k->clock_ms = now_ms;
    k->req.head_sec = k->tok.head_sec = shm_floordiv(now_ms, 1000);
    k->day = shm__day_index(now_ms, sp->day_offset_s);
}

/* Copy the configured fields of sp into k; 1 if any changed. */
static int key_configure(shm_krec_t *k, const shm_key_spec_t *sp)
{
    shm_krec_t before = *k;
    copy_name(k->provider, sizeof(k->provider), sp->provider);
    copy_name(k->fingerprint, sizeof(k->fingerprint), sp->fingerprint);
    k->rpm = sp->rpm;
    k->rpd = sp->rpd;
    k->tpm = sp->tpm;
    k->max_inflight = sp->max_inflight;
    k->weight = sp->weight ? sp->weight : 1;
    k->day_offset_s = sp->day_offset_s;
    /* leased only where a limit is: a key without one needs no share of anything */
    if (sp->cluster && (sp->rpm || sp->rpd || sp->tpm))
        k->flags |= SHM_KF_CLUSTER;
    else
        k->flags &= ~SHM_KF_CLUSTER;
    return memcmp(&before, k, sizeof(*k)) != 0;
}

static int ensure_provider(shm_t *s, MDB_txn *txn, const char *name, int64_t now_ms)
{
    shm_prec_t p;
    int rc = shm__prov_get(s, txn, name, &p);
    if (rc != MDB_NOTFOUND)
        return rc;
    shm__prov_init(&p, name, now_ms);
    return shm__prov_put(s, txn, &p);
}

static int sync_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    sync_ctx_t *c = arg;
    int rc;
    const char *last_prov = NULL;
    memset(&c->st, 0, sizeof(c->st));
    for (unsigned i = 0; i < c->n; i++) {
        const shm_key_spec_t *sp = &c->specs[i];
        shm_krec_t k;
        rc = shm__key_get(s, txn, sp->name, &k);
        if (rc == MDB_NOTFOUND) {
            key_init(&k, sp, c->now_ms);
            key_configure(&k, sp);
            c->st.added++;
        } else if (rc != 0) {
            return rc;
        } else {
            char old_fp[sizeof(k.fingerprint)];
            memcpy(old_fp, k.fingerprint, sizeof(old_fp));
            int changed = key_configure(&k, sp);
            if (k.flags & SHM_KF_ORPHANED) {
                k.flags &= ~SHM_KF_ORPHANED;
                c->st.restored++;
                if ((rc = shm__hist_add(s, txn, k.name, SHM_EV_RESTORED, &k, 0, "config",
                                        c->now_ms)))
                    return rc;
            } else if (!changed) {
                goto provider;
            }
            if (changed) {
                const char *what = "limits";
                if (memcmp(old_fp, k.fingerprint, sizeof(old_fp)) != 0) {
                    what = "new secret";
                    if (k.status == SHM_ST_INVALID || k.status == SHM_ST_DEPLETED) {
                        k.status = SHM_ST_ACTIVE;
                        k.reason = SHM_RS_NONE;
                        k.status_since_ms = c->now_ms;
                    }
                }
                c->st.updated++;
                if ((rc = shm__hist_add(s, txn, k.name, SHM_EV_CONFIG, &k, 0, what, c->now_ms)))
                    return rc;
            }
            k.updated_ms = c->now_ms;
        }
        if ((rc = shm__key_put(s, txn, &k)) != 0)
            return rc;
    provider:
        if (!last_prov || strcmp(last_prov, sp->provider) != 0) {
            if ((rc = ensure_provider(s, txn, sp->provider, c->now_ms)) != 0)
                return rc;
            last_prov = sp->provider;
        }
    }
    /* Orphan pass: keys in the store that the config no longer names. */
    MDB_cursor *cur;
    MDB_val kv, vv;
    if ((rc = mdb_cursor_open(txn, s->dbi_keys, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &kv, &vv, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &kv, &vv, MDB_NEXT)) {
        shm_krec_t k;
        if ((rc = shm__rec_check(s, SHM_REC_KEY, &kv, &vv)) != 0)
            break;
        memcpy(&k, vv.mv_data, sizeof(k));
        if (k.flags & SHM_KF_ORPHANED)
            continue;
        char name[SHM_NAME_MAX + 1];
        copy_name(name, sizeof(name), k.name);
        if (bsearch(name, c->sorted, c->n, sizeof(*c->sorted), spec_find_cmp))
            continue;
        k.flags |= SHM_KF_ORPHANED;
        k.updated_ms = c->now_ms;
        MDB_val nv = {sizeof(k), &k};
        if ((rc = mdb_cursor_put(cur, &kv, &nv, MDB_CURRENT)) != 0)
            break;
        if ((rc = shm__hist_add(s, txn, name, SHM_EV_ORPHANED, &k, 0, "not in config", c->now_ms)))
            break;
        c->st.orphaned++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_keys_sync(shm_t *s, const shm_key_spec_t *specs, unsigned n, int64_t now_ms,
                  shm_sync_stats_t *stats)
{
    if (!s || (n && !specs))
        return SHM_EINVAL;
    for (unsigned i = 0; i < n; i++) {
        const shm_key_spec_t *sp = &specs[i];
        if (!shm__name_ok(sp->name) || !shm__name_ok(sp->provider) ||
            (sp->fingerprint && strlen(sp->fingerprint) > SHM_FP_MAX) ||
            sp->day_offset_s <= -86400 || sp->day_offset_s >= 86400)
            return SHM_EINVAL;
    }
    if (s->readonly)
        return SHM_ERDONLY;
    const shm_key_spec_t **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    if (!sorted)
        return SHM_ENOMEM;
    for (unsigned i = 0; i < n; i++)
        sorted[i] = &specs[i];
    qsort(sorted, n, sizeof(*sorted), spec_cmp);
    int rc = 0;
    for (unsigned i = 1; i < n; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
            rc = SHM_EINVAL; /* duplicate name */
    sync_ctx_t c = {.specs = specs, .sorted = sorted, .n = n, .now_ms = shm__now(s, now_ms)};
    if (rc == 0)
        rc = shm__write(s, sync_fn, &c);
    free(sorted);
    if (rc == 0 && stats)
        *stats = c.st;
    return rc;
}

int shm_keys_sync_cfg(shm_t *s, const struct cfg_s *cfg, int64_t now_ms, shm_sync_stats_t *stats)
{
    if (!s || !cfg)
        return SHM_EINVAL;
    unsigned n = 0, i = 0;
    for (unsigned p = 0; p < cfg->providers_count; p++)
        n += cfg->providers[p].keys_count;
    shm_key_spec_t *specs = calloc(n ? n : 1, sizeof(*specs));
    if (!specs)
        return SHM_ENOMEM;
    for (unsigned p = 0; p < cfg->providers_count; p++) {
        const cfg_provider_t *pv = &cfg->providers[p];
        for (unsigned k = 0; k < pv->keys_count; k++, i++) {
            const cfg_key_t *key = &pv->keys[k];
            specs[i] = (shm_key_spec_t){.name = key->name,
                                        .fingerprint = key->fingerprint,
                                        .provider = pv->name,
                                        .rpm = key->rpm,
                                        .rpd = key->rpd,
                                        .tpm = key->tpm,
                                        .max_inflight = key->max_inflight,
                                        .weight = key->weight,
                                        .cluster = cfg->cluster.enabled};
        }
    }
    int rc = shm_keys_sync(s, specs, n, now_ms, stats);
    free(specs);
    return rc;
}

typedef struct prune_ctx_s {
    unsigned pruned;
} prune_ctx_t;

static int prune_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    prune_ctx_t *c = arg;
    MDB_cursor *cur;
    MDB_val kv, vv;
    int rc = mdb_cursor_open(txn, s->dbi_keys, &cur);
    c->pruned = 0;
    if (rc != 0)
        return rc;
    rc = mdb_cursor_get(cur, &kv, &vv, MDB_FIRST);
    while (rc == 0) {
        shm_krec_t k;
        if ((rc = shm__rec_check(s, SHM_REC_KEY, &kv, &vv)) != 0)
            break;
        memcpy(&k, vv.mv_data, sizeof(k));
        if (!(k.flags & SHM_KF_ORPHANED)) {
            rc = mdb_cursor_get(cur, &kv, &vv, MDB_NEXT);
            continue;
        }
        char name[SHM_NAME_MAX + 1];
        copy_name(name, sizeof(name), k.name);
        MDB_val nk = {strlen(name), name};
        if ((rc = mdb_cursor_del(cur, 0)) != 0)
            break;
        if (((rc = mdb_del(txn, s->dbi_lat, &nk, NULL)) && rc != MDB_NOTFOUND) ||
            ((rc = mdb_del(txn, s->dbi_hist, &nk, NULL)) && rc != MDB_NOTFOUND))
            break;
        c->pruned++;
        /* continue at the first key after the deleted one */
        kv = nk;
        rc = mdb_cursor_get(cur, &kv, &vv, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_keys_prune(shm_t *s, unsigned *pruned)
{
    if (!s)
        return SHM_EINVAL;
    prune_ctx_t c = {0};
    int rc = shm__write(s, prune_fn, &c);
    if (pruned)
        *pruned = rc == 0 ? c.pruned : 0;
    return rc;
}

/* ---- Views ------------------------------------------------------------------------------- */

typedef struct view_ctx_s {
    const char *name;
    int64_t now_ms;
    void *out;
    unsigned max, n;
} view_ctx_t;

static int key_get_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    view_ctx_t *c = arg;
    shm_krec_t k;
    int rc = shm__key_get(s, txn, c->name, &k);
    if (rc == 0)
        shm__key_to_view(&k, c->now_ms, c->out);
    return rc;
}

int shm_key_get(shm_t *s, const char *name, int64_t now_ms, shm_key_t *out)
{
    if (!s || !shm__name_ok(name) || !out)
        return SHM_EINVAL;
    view_ctx_t c = {.name = name, .now_ms = shm__now(s, now_ms), .out = out};
    return shm__read(s, key_get_fn, &c);
}

static void key_conv(const void *rec, int64_t now_ms, void *view)
{
    shm__key_to_view(rec, now_ms, view);
}

int shm_snapshot(shm_t *s, int64_t now_ms, shm_key_t **out, unsigned *n)
{
    if (!s || !out || !n)
        return SHM_EINVAL;
    return shm__list(s, s->dbi_keys, SHM_REC_KEY, sizeof(shm_key_t), key_conv, shm__now(s, now_ms),
                     (void **)out, n);
}

void shm_snapshot_free(void *p)
{
    free(p);
}

static int latency_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    view_ctx_t *c = arg;
    shm_latency_t *o = c->out;
    shm_lrec_t l;
    shm_krec_t k;
    memset(o, 0, sizeof(*o));
    int rc = shm__key_get(s, txn, c->name, &k);
    if (rc != 0)
        return rc;
    rc = shm__lat_get(s, txn, c->name, &l);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    unsigned start = l.count < SHM_LAT_RING ? 0 : l.head;
    for (unsigned i = 0; i < l.count && i < SHM_LAT_RING; i++) {
        o->ttfb_ms[i] = l.ttfb[(start + i) % SHM_LAT_RING];
        o->total_ms[i] = l.total[(start + i) % SHM_LAT_RING];
    }
    o->count = l.count < SHM_LAT_RING ? l.count : SHM_LAT_RING;
    return 0;
}

int shm_key_latency(shm_t *s, const char *name, shm_latency_t *out)
{
    if (!s || !shm__name_ok(name) || !out)
        return SHM_EINVAL;
    view_ctx_t c = {.name = name, .out = out};
    return shm__read(s, latency_fn, &c);
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t rank(const uint32_t *sorted, unsigned n, unsigned pct)
{
    unsigned r = (unsigned)(((uint64_t)pct * n + 99) / 100); /* nearest rank, 1-based */
    return sorted[r ? r - 1 : 0];
}

void shm_percentiles(const uint32_t *samples, unsigned n, shm_pct_t *out)
{
    uint32_t buf[SHM_LAT_RING];
    uint32_t *v = buf;
    memset(out, 0, sizeof(*out));
    if (n == 0 || !samples)
        return;
    if (n > SHM_LAT_RING && !(v = malloc(n * sizeof(*v))))
        return;
    memcpy(v, samples, n * sizeof(*v));
    qsort(v, n, sizeof(*v), u32_cmp);
    out->p50 = rank(v, n, 50);
    out->p95 = rank(v, n, 95);
    out->p99 = rank(v, n, 99);
    if (v != buf)
        free(v);
}

static int history_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    view_ctx_t *c = arg;
    shm_event_t *out = c->out;
    shm_krec_t k;
    c->n = 0;
    int rc = shm__key_get(s, txn, c->name, &k);
    if (rc != 0)
        return rc;
    return shm__hist_get(s, txn, s->dbi_hist, SHM_REC_HIST, c->name, out, c->max, &c->n);
}

int shm_key_history(shm_t *s, const char *name, shm_event_t *out, unsigned max, unsigned *n)
{
    if (!s || !shm__name_ok(name) || (!out && max) || !n)
        return SHM_EINVAL;
    view_ctx_t c = {.name = name, .out = out, .max = max};
    int rc = shm__read(s, history_fn, &c);
    *n = rc == 0 ? c.n : 0;
    return rc;
}

/* ---- Providers ----------------------------------------------------------------------------- */

static void prov_to_view(const shm_prec_t *p, int64_t now_ms, shm_provider_t *o)
{
    shm_window_t req = p->win_req, err = p->win_err;

    memset(o, 0, sizeof(*o));
    copy_name(o->name, sizeof(o->name), p->name);
    o->circuit = p->circuit;
    shm_window_advance(&req, shm_floordiv(now_ms, 1000));
    shm_window_advance(&err, shm_floordiv(now_ms, 1000));
    o->window_requests = req.total;
    o->window_errors = err.total;
    o->reason = p->reason;
    o->since_ms = p->since_ms;
    o->open_until_ms = p->open_until_ms;
    o->consec_failures = p->consec_fail;
    o->failures = p->failures;
    o->updated_ms = p->updated_ms;
}

static int prov_get_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    view_ctx_t *c = arg;
    shm_prec_t p;
    int rc = shm__prov_get(s, txn, c->name, &p);
    if (rc == 0)
        prov_to_view(&p, shm__now(s, SHM_NOW), c->out);
    return rc;
}

int shm_provider_get(shm_t *s, const char *name, shm_provider_t *out)
{
    if (!s || !shm__name_ok(name) || !out)
        return SHM_EINVAL;
    view_ctx_t c = {.name = name, .out = out};
    return shm__read(s, prov_get_fn, &c);
}

static void prov_conv(const void *rec, int64_t now_ms, void *view)
{
    prov_to_view(rec, now_ms, view);
}

int shm_providers(shm_t *s, shm_provider_t **out, unsigned *n)
{
    if (!s || !out || !n)
        return SHM_EINVAL;
    return shm__list(s, s->dbi_prov, SHM_REC_PROV, sizeof(shm_provider_t), prov_conv,
                     shm__now(s, SHM_NOW), (void **)out, n);
}

typedef struct circuit_ctx_s {
    const char *name;
    int circuit, reason;
    int64_t until, now_ms;
} circuit_ctx_t;

static int circuit_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    circuit_ctx_t *c = arg;
    shm_prec_t p;
    int rc = shm__prov_get(s, txn, c->name, &p);
    if (rc == MDB_NOTFOUND)
        shm__prov_init(&p, c->name, c->now_ms);
    else if (rc != 0)
        return rc;
    if (p.circuit != c->circuit)
        p.since_ms = c->now_ms;
    p.circuit = (uint16_t)c->circuit;
    p.reason = (uint16_t)c->reason;
    p.open_until_ms = c->circuit == SHM_CIRCUIT_OPEN ? c->until : 0;
    p.updated_ms = c->now_ms;
    return shm__prov_put(s, txn, &p);
}

int shm_provider_set_circuit(shm_t *s, const char *name, int circuit, int64_t open_until_ms,
                             int reason, int64_t now_ms)
{
    if (!s || !shm__name_ok(name) || circuit < SHM_CIRCUIT_CLOSED ||
        circuit > SHM_CIRCUIT_HALF_OPEN || reason < 0 || reason >= SHM_RS_COUNT)
        return SHM_EINVAL;
    circuit_ctx_t c = {name, circuit, reason, open_until_ms, shm__now(s, now_ms)};
    return shm__write(s, circuit_fn, &c);
}

/* ---- Cluster: a status or circuit another host set ------------------------------------------ */

/* Whether a change told by another host (told_since, told_state, told_until) is newer than
 * ours: by since, then (the same change extended) by until. At the same moment with another
 * state each host keeps its own. own_since is INT64_MIN for a record with no news of its own. */
static int told_is_newer(int64_t own_since, int own_state, int64_t own_until, int64_t told_since,
                         int told_state, int64_t told_until)
{
    if (told_since != own_since)
        return told_since > own_since;
    return told_state == own_state && told_until > own_until;
}

typedef struct padopt_ctx_s {
    const char *name;
    int circuit, reason;
    int64_t since_ms, until_ms, now_ms;
    int applied;
} padopt_ctx_t;

static int padopt_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    padopt_ctx_t *c = arg;
    shm_prec_t p;
    int rc = shm__prov_get(s, txn, c->name, &p);
    c->applied = 0;
    if (rc == MDB_NOTFOUND)
        shm__prov_init(&p, c->name, c->now_ms);
    else if (rc != 0)
        return rc;
    /* newer wins, as for keys (shm_key_adopt): by since, then by until; a circuit that never
     * changed (closed, no reason: as created) is older than anything told */
    int64_t own =
        p.circuit == SHM_CIRCUIT_CLOSED && p.reason == SHM_RS_NONE ? INT64_MIN : p.since_ms;
    if (!told_is_newer(own, p.circuit, p.open_until_ms, c->since_ms, c->circuit, c->until_ms))
        return 0;
    p.circuit = (uint16_t)c->circuit;
    p.reason = (uint16_t)c->reason;
    p.since_ms = c->since_ms;
    p.open_until_ms = c->circuit == SHM_CIRCUIT_OPEN ? c->until_ms : 0;
    if (c->circuit == SHM_CIRCUIT_CLOSED) { /* closed afresh, as by a half-open success */
        p.consec_fail = 0;
        shm_window_reset(&p.win_req);
        shm_window_reset(&p.win_err);
    }
    p.updated_ms = c->now_ms;
    if ((rc = shm__prov_put(s, txn, &p)) != 0)
        return rc;
    c->applied = 1;
    return 0;
}

int shm_provider_adopt(shm_t *s, const char *name, int circuit, int reason, int64_t since_ms,
                       int64_t until_ms, int64_t now_ms)
{
    if (!s || !shm__name_ok(name) ||
        (circuit != SHM_CIRCUIT_CLOSED && circuit != SHM_CIRCUIT_OPEN) || reason < 0 ||
        reason >= SHM_RS_COUNT)
        return SHM_EINVAL;
    padopt_ctx_t c = {name, circuit, reason, since_ms, until_ms, shm__now(s, now_ms), 0};
    int rc = shm__write(s, padopt_fn, &c);
    return rc != 0 ? shm__err(rc) : c.applied;
}

/* ---- Admin actions ------------------------------------------------------------------------- */

typedef struct action_ctx_s {
    const char *name;
    int type; /* SHM_EV_COOLDOWN, _DISABLE, _ENABLE, _RESET */
    int64_t duration_ms;
    unsigned what;
    const char *actor;
    int64_t now_ms;
} action_ctx_t;

static int action_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    action_ctx_t *c = arg;
    shm_krec_t k;
    int64_t stepped, arg64 = 0;
    int rc = shm__key_get(s, txn, c->name, &k);
    if (rc != 0)
        return rc;
    int64_t eff = shm__key_clock(&k, c->now_ms, &stepped);
    int64_t sec = shm_floordiv(eff, 1000);
    shm_window_advance(&k.req, sec);
    shm_window_advance(&k.tok, sec);
    shm__key_day(&k, eff);
    int old = k.status;
    switch (c->type) {
    case SHM_EV_COOLDOWN:
        k.status = SHM_ST_COOLING;
        k.reason = SHM_RS_ADMIN;
        k.cooldown_until_ms = eff + c->duration_ms;
        arg64 = k.cooldown_until_ms;
        break;
    case SHM_EV_DISABLE:
        k.status = SHM_ST_DISABLED;
        k.reason = SHM_RS_ADMIN;
        break;
    case SHM_EV_ENABLE:
        k.status = SHM_ST_ACTIVE;
        k.reason = SHM_RS_NONE;
        k.cooldown_until_ms = 0;
        k.consec_fail = 0;
        break;
    case SHM_EV_RESET:
        arg64 = c->what;
        if (c->what & SHM_RESET_RPM)
            shm_window_reset(&k.req);
        if (c->what & SHM_RESET_TPM)
            shm_window_reset(&k.tok);
        if (c->what & SHM_RESET_RPD)
            k.day_count = 0;
        if (c->what & SHM_RESET_COUNTERS) {
            k.requests = k.prompt_tokens = k.completion_tokens = k.cost_micro_usd = 0;
            memset(k.by_class, 0, sizeof(k.by_class));
            k.consec_fail = k.consec_succ = 0;
            k.ewma_total_ms = k.ewma_ttfb_ms = 0;
            k.last_error_code = 0;
            k.last_error_ms = 0;
            MDB_val nk = {strlen(c->name), (void *)c->name};
            if ((rc = mdb_del(txn, s->dbi_lat, &nk, NULL)) != 0 && rc != MDB_NOTFOUND)
                return rc;
        }
        break;
    }
    if (k.status != old)
        k.status_since_ms = eff;
    k.updated_ms = c->now_ms;
    if ((rc = shm__key_put(s, txn, &k)) != 0)
        return rc;
    return shm__hist_add(s, txn, c->name, c->type, &k, arg64, c->actor ? c->actor : "admin",
                         c->now_ms);
}

static int action(shm_t *s, action_ctx_t *c)
{
    if (!s || !shm__name_ok(c->name))
        return SHM_EINVAL;
    c->now_ms = shm__now(s, c->now_ms);
    return shm__write(s, action_fn, c);
}

int shm_key_cooldown(shm_t *s, const char *name, int64_t duration_ms, const char *actor,
                     int64_t now_ms)
{
    if (duration_ms <= 0)
        return SHM_EINVAL;
    action_ctx_t c = {name, SHM_EV_COOLDOWN, duration_ms, 0, actor, now_ms};
    return action(s, &c);
}

int shm_key_disable(shm_t *s, const char *name, const char *actor, int64_t now_ms)
{
    action_ctx_t c = {name, SHM_EV_DISABLE, 0, 0, actor, now_ms};
    return action(s, &c);
}

int shm_key_enable(shm_t *s, const char *name, const char *actor, int64_t now_ms)
{
    action_ctx_t c = {name, SHM_EV_ENABLE, 0, 0, actor, now_ms};
    return action(s, &c);
}

int shm_key_reset(shm_t *s, const char *name, unsigned what, const char *actor, int64_t now_ms)
{
    if (what == 0 || (what & ~SHM_RESET_ALL))
        return SHM_EINVAL;
    action_ctx_t c = {name, SHM_EV_RESET, 0, what, actor, now_ms};
    return action(s, &c);
}

typedef struct adopt_ctx_s {
    const char *name;
    int status, reason;
    int64_t since_ms, until_ms;
    const char *actor;
    int64_t now_ms;
    int applied;
} adopt_ctx_t;

static int adopt_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    adopt_ctx_t *c = arg;
    shm_krec_t k;
    int rc = shm__key_get(s, txn, c->name, &k);
    c->applied = 0;
    if (rc != 0)
        return rc;
    /* newer wins: by since, then (the same change extended) by until; a key still active
     * since it was created here has no news of its own (a host that joins later takes what
     * the others decided before) */
    int64_t own = k.status == SHM_ST_ACTIVE && k.status_since_ms == k.created_ms
                      ? INT64_MIN
                      : k.status_since_ms;
    if (!told_is_newer(own, k.status, k.cooldown_until_ms, c->since_ms, c->status, c->until_ms))
        return 0;
    k.status = (uint16_t)c->status;
    k.reason = (uint16_t)c->reason;
    k.status_since_ms = c->since_ms;
    k.cooldown_until_ms =
        c->status == SHM_ST_COOLING || c->status == SHM_ST_DEPLETED ? c->until_ms : 0;
    if (c->status == SHM_ST_ACTIVE)
        k.consec_fail = 0;
    k.updated_ms = c->now_ms;
    if ((rc = shm__key_put(s, txn, &k)) != 0)
        return rc;
    c->applied = 1;
    return shm__hist_add(s, txn, c->name, SHM_EV_STATUS, &k, k.cooldown_until_ms,
                         c->actor ? c->actor : "cluster", c->now_ms);
}

int shm_key_adopt(shm_t *s, const char *name, int status, int reason, int64_t since_ms,
                  int64_t until_ms, const char *actor, int64_t now_ms)
{
    if (!s || !shm__name_ok(name) || status < 0 || status >= SHM_ST_COUNT ||
        status == SHM_ST_HALF_OPEN || reason < 0 || reason >= SHM_RS_COUNT)
        return SHM_EINVAL;
    adopt_ctx_t c = {name, status, reason, since_ms, until_ms, actor, shm__now(s, now_ms), 0};
    int rc = shm__write(s, adopt_fn, &c);
    if (rc == MDB_NOTFOUND)
        return SHM_ENOTFOUND;
    return rc != 0 ? shm__err(rc) : c.applied;
}
