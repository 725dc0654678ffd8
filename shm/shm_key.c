/* shm_key.c - outcomes: recording, batches, notes (health probes) and releases.
 *
 * Admission lives in shm_admit.c. An outcome is one transaction: the key record, its
 * latency ring, its provider and the request's client are each read through a cursor that
 * the transaction opens on first use, and put back where that cursor stands (no second
 * B-tree search). shm_key_record_batch() lets a worker fold several plain successes into one
 * commit (shm-bench measures what that saves). */
#include "shm/shm_int.h"

#include <string.h>

void shm_outcome_init(shm_outcome_t *o, int cls)
{
    memset(o, 0, sizeof(*o));
    o->cls = cls;
    o->set_status = -1;
    o->circuit = -1;
}

/* ---- Outcomes ---------------------------------------------------------------------------- */

static int is_failure(int cls)
{
    return cls == SHM_CL_429 || cls == SHM_CL_5XX || cls == SHM_CL_TIMEOUT ||
           cls == SHM_CL_CONNECT || cls == SHM_CL_AUTH;
}

/* The cursors of one record transaction, opened on first use, closed at its end. */
typedef struct rec_curs_s {
    MDB_cursor *keys, *lat, *prov, *clients;
} rec_curs_t;

static int curs_get(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cur, const MDB_val *key, MDB_val *val)
{
    MDB_val k = *key;
    int rc = *cur ? 0 : mdb_cursor_open(txn, dbi, cur);
    return rc ? rc : mdb_cursor_get(*cur, &k, val, MDB_SET_KEY);
}

static void curs_close(rec_curs_t *cu)
{
    MDB_cursor **all[] = {&cu->keys, &cu->lat, &cu->prov, &cu->clients};
    for (unsigned i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (*all[i])
            mdb_cursor_close(*all[i]);
        *all[i] = NULL;
    }
}

static int lat_push(shm_t *s, MDB_txn *txn, rec_curs_t *cu, const char *name, uint32_t ttfb,
                    uint32_t total)
{
    shm_lrec_t l;
    MDB_val key = {strlen(name), (void *)name}, v;
    int rc = curs_get(txn, s->dbi_lat, &cu->lat, &key, &v);
    int in_place = rc == 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    /* the head indexes the ring: checked before it is used */
    if (in_place && (rc = shm__rec_check(s, SHM_REC_LAT, &key, &v)) != 0)
        return rc;
    if (in_place) {
        memcpy(&l, v.mv_data, sizeof(l));
    } else {
        memset(&l, 0, sizeof(l));
        l.version = SHM_LREC_VERSION;
        l.size = sizeof(l);
    }
    l.ttfb[l.head] = ttfb;
    l.total[l.head] = total;
    l.head = (l.head + 1) % SHM_LAT_RING;
    if (l.count < SHM_LAT_RING)
        l.count++;
    v.mv_size = sizeof(l);
    v.mv_data = &l;
    /* a ring found in place is overwritten where the cursor stands */
    return mdb_cursor_put(cu->lat, &key, &v, in_place ? MDB_CURRENT : 0);
}

static uint32_t ewma(uint32_t old, uint32_t x)
{
    return old == 0 ? x : (uint32_t)(((uint64_t)old * 7 + x) / 8);
}

static int provider_outcome(shm_t *s, MDB_txn *txn, rec_curs_t *cu, const char *name,
                            const shm_outcome_t *o, int64_t now_ms)
{
    shm_prec_t p;
    MDB_val key = {strlen(name), (void *)name}, v;
    int fail = o->cls != SHM_CL_AUTH && is_failure(o->cls);
    int rc = curs_get(txn, s->dbi_prov, &cu->prov, &key, &v);
    int found = rc == 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (found && (rc = shm__rec_check(s, SHM_REC_PROV, &key, &v)) != 0)
        return rc; /* never overwritten: a corrupt record is for a person to look at */
    if (found)
        memcpy(&p, v.mv_data, sizeof(p));
    else
        shm__prov_init(&p, name, now_ms);
    int dirty = 0;
    if (fail) {
        p.consec_fail++;
        p.failures++;
        dirty = 1;
    } else if (o->cls == SHM_CL_SUCCESS && p.consec_fail) {
        p.consec_fail = 0;
        dirty = 1;
    }
    if (o->circuit_min_requests && o->circuit_open_ms > 0) {
        /* Circuit breaker over the provider's last 60 s of outcomes. An OPEN circuit whose
         * time is up is half-open: admission lets its keys through again. */
        int64_t sec = shm_floordiv(now_ms, 1000);
        int half = p.circuit == SHM_CIRCUIT_HALF_OPEN ||
                   (p.circuit == SHM_CIRCUIT_OPEN && p.open_until_ms <= now_ms);
        shm_window_advance(&p.win_req, sec);
        shm_window_advance(&p.win_err, sec);
        shm_window_add(&p.win_req, 1);
        if (fail)
            shm_window_add(&p.win_err, 1);
        dirty = 1;
        if (half && fail) {
            p.circuit = SHM_CIRCUIT_OPEN;
            p.reason = SHM_RS_POLICY; /* the breaker decided */
            p.open_until_ms = now_ms + o->circuit_open_ms;
            p.since_ms = now_ms;
        } else if (half && o->cls == SHM_CL_SUCCESS) {
            p.circuit = SHM_CIRCUIT_CLOSED;
            p.open_until_ms = 0;
            p.since_ms = now_ms;
            shm_window_reset(&p.win_req);
            shm_window_reset(&p.win_err);
        } else if (p.circuit == SHM_CIRCUIT_CLOSED && p.win_req.total >= o->circuit_min_requests &&
                   (double)p.win_err.total >= o->circuit_error_ratio * (double)p.win_req.total) {
            p.circuit = SHM_CIRCUIT_OPEN;
            p.reason = SHM_RS_POLICY;
            p.open_until_ms = now_ms + o->circuit_open_ms;
            p.since_ms = now_ms;
        }
    }
    if (o->circuit >= SHM_CIRCUIT_CLOSED && o->circuit <= SHM_CIRCUIT_HALF_OPEN) {
        if (p.circuit != o->circuit)
            p.since_ms = now_ms;
        p.circuit = (uint16_t)o->circuit;
        p.reason = (uint16_t)o->reason;
        p.open_until_ms = o->circuit == SHM_CIRCUIT_OPEN ? o->circuit_until_ms : 0;
        dirty = 1;
    }
    if (!dirty)
        return 0; /* plain success on a healthy provider: no write */
    p.updated_ms = now_ms;
    if (found)
        return shm__cur_put(cu->prov, s->dbi_prov, &key, p.name, &p, sizeof(p));
    return shm__prov_put(s, txn, &p);
}

/* Apply one outcome (resv may be NULL: shm_key_note) to the record of name. */
static int apply_outcome(shm_t *s, MDB_txn *txn, rec_curs_t *cu, const char *name,
                         const shm_resv_t *r, const shm_outcome_t *o, int64_t now_ms)
{
    shm_krec_t k;
    int64_t stepped;
    MDB_val key = {strlen(name), (void *)name}, v;
    int rc = curs_get(txn, s->dbi_keys, &cu->keys, &key, &v);
    if (rc != 0 || (rc = shm__rec_check(s, SHM_REC_KEY, &key, &v)) != 0)
        return rc;
    memcpy(&k, v.mv_data, sizeof(k));
    int64_t eff = shm__key_to_now(&k, now_ms, &stepped);
    if (stepped && (rc = shm__hist_add(s, txn, name, SHM_EV_CLOCK, &k, stepped, "outcome", now_ms)))
        return rc;
    uint64_t used = (uint64_t)o->prompt_tokens + o->completion_tokens;
    if (r) {
        if (k.inflight[r->slot] > 0)
            k.inflight[r->slot]--;
        /* Reconcile the estimate to real usage in the second it was counted. A cancelled
         * request without usage keeps its estimate: upstream may have spent it. */
        if (!(o->cls == SHM_CL_CANCELLED && used == 0))
            shm_window_adjust(&k.tok, r->admit_sec, (int64_t)used - (int64_t)r->tokens);
    } else {
        if (used)
            shm_window_add(&k.tok, used);
        if (o->count_request) {
            shm_window_add(&k.req, 1);
            k.day_count++;
            k.requests++;
        }
    }
    k.by_class[o->cls]++;
    k.prompt_tokens += o->prompt_tokens;
    k.completion_tokens += o->completion_tokens;
    k.cost_micro_usd += o->cost_micro_usd;
    if (o->cls == SHM_CL_SUCCESS) {
        k.consec_succ++;
        k.consec_fail = 0;
        if (o->total_ms) {
            k.ewma_total_ms = ewma(k.ewma_total_ms, o->total_ms);
            k.ewma_ttfb_ms = ewma(k.ewma_ttfb_ms, o->ttfb_ms);
            if ((rc = lat_push(s, txn, cu, name, o->ttfb_ms, o->total_ms)) != 0)
                return rc;
        }
    } else if (o->cls != SHM_CL_CANCELLED) {
        if (is_failure(o->cls)) {
            k.consec_fail++;
            k.consec_succ = 0;
        }
        k.last_error_code = o->code;
        k.last_error_ms = now_ms;
    }

    int old_status = k.status;
    int64_t old_until = k.cooldown_until_ms;
    int64_t cool_until = o->cooldown_until_ms > now_ms ? eff + (o->cooldown_until_ms - now_ms) : 0;
    int reason = o->reason;
    /* Key policy: a failing probe relapses; enough failures in a row start a cooldown. */
    if (o->fail_cooldown_ms > 0 && is_failure(o->cls) && o->cls != SHM_CL_AUTH &&
        !shm__status_blocked(k.status)) {
        int probe = k.status == SHM_ST_HALF_OPEN;
        if (probe || (o->fail_threshold && k.consec_fail >= o->fail_threshold)) {
            int64_t d = o->fail_cooldown_ms;
            for (uint32_t i = 0; i < k.relapses && i < 40; i++) {
                d *= 2;
                if (o->cooldown_max_ms > 0 && d >= o->cooldown_max_ms)
                    break;
            }
            if (o->cooldown_max_ms > 0 && d > o->cooldown_max_ms)
                d = o->cooldown_max_ms;
            if (eff + d > cool_until) {
                cool_until = eff + d;
                if (!o->reason)
                    reason = SHM_RS_POLICY;
            }
            k.relapses++;
        }
    }
    if (cool_until && !shm__status_blocked(k.status)) {
        if (k.status != SHM_ST_COOLING || cool_until > k.cooldown_until_ms)
            k.cooldown_until_ms = cool_until;
        k.status = SHM_ST_COOLING;
        k.reason = (uint16_t)reason;
    }
    if (o->set_status >= 0 && o->set_status < SHM_ST_COUNT) {
        k.status = (uint16_t)o->set_status;
        k.reason = (uint16_t)o->reason;
        if (o->set_status == SHM_ST_ACTIVE) {
            k.cooldown_until_ms = 0;
            k.relapses = 0;
        } else if (o->set_status == SHM_ST_DEPLETED) {
            k.cooldown_until_ms = cool_until; /* the quota's reset, 0 = until enabled */
        }
    } else if (o->cls == SHM_CL_SUCCESS && !cool_until &&
               (k.status == SHM_ST_HALF_OPEN ||
                (k.status == SHM_ST_COOLING && k.cooldown_until_ms <= eff))) {
        if (k.status == SHM_ST_COOLING ||
            k.consec_succ >= (o->recovery_successes ? o->recovery_successes : 1)) {
            k.status = SHM_ST_ACTIVE;
            k.reason = SHM_RS_NONE;
            k.relapses = 0;
        }
    }
    if (k.status != old_status || k.cooldown_until_ms != old_until) {
        if (k.status != old_status)
            k.status_since_ms = eff;
        if ((rc = shm__hist_add(s, txn, name, SHM_EV_STATUS, &k,
                                k.status == SHM_ST_COOLING ? k.cooldown_until_ms : 0,
                                shm_class_name(o->cls), now_ms)))
            return rc;
    }
    k.updated_ms = now_ms;
    /* lat_push and the history used other cursors: cu->keys still stands on the record */
    if ((rc = shm__cur_put(cu->keys, s->dbi_keys, &key, k.name, &k, sizeof(k))) != 0)
        return rc;
    if (o->cls != SHM_CL_CANCELLED && o->cls != SHM_CL_OTHER)
        return provider_outcome(s, txn, cu, k.provider, o, now_ms);
    return 0;
}

int shm__record_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    shm_rec_ctx_t *c = arg;
    rec_curs_t cu = {NULL, NULL, NULL, NULL};
    int64_t now_ms = shm__now(s, c->now_ms);
    shm_sacc_t acc;
    int rc = 0;
    acc.n = 0;
    for (unsigned i = 0; i < c->n; i++) {
        const shm_resv_t *r = c->resv ? c->resv[i] : NULL;
        if (r && r->client[0]) {
            if (s->has_clients && !cu.clients &&
                (rc = mdb_cursor_open(txn, s->dbi_clients, &cu.clients)) != 0)
                break;
            if ((rc = shm__client_finish(s, cu.clients, r, &c->o[i], 0, now_ms)) != 0)
                break;
        }
        rc = apply_outcome(s, txn, &cu, r ? r->name : c->name, r, &c->o[i], now_ms);
        if (rc == MDB_NOTFOUND && r) {
            rc = 0;
            continue; /* pruned while in flight: nothing left to count */
        }
        if (rc != 0 || (rc = shm__stats_add(s, txn, &acc, r ? r->name : c->name,
                                            r ? r->model : NULL, &c->o[i], now_ms)) != 0)
            break;
    }
    if (rc == 0)
        rc = shm__stats_flush(s, txn, &acc, now_ms);
    curs_close(&cu); /* on every path: an aborted write transaction would not free them twice */
    return rc;
}

static int outcome_ok(const shm_outcome_t *o)
{
    return o && o->cls >= 0 && o->cls < SHM_CL_COUNT && o->set_status < SHM_ST_COUNT &&
           o->circuit <= SHM_CIRCUIT_HALF_OPEN;
}

int shm__record_check(shm_t *s, shm_resv_t *const *resv, const shm_outcome_t *o, unsigned n)
{
    if (!s || !resv || !o || n == 0)
        return SHM_EINVAL;
    for (unsigned i = 0; i < n; i++) {
        if (!resv[i] || !outcome_ok(&o[i]) || resv[i]->slot >= SHM_MAX_OWNERS)
            return SHM_EINVAL;
        if (!resv[i]->live || (int)resv[i]->slot != __atomic_load_n(&s->slot, __ATOMIC_ACQUIRE))
            return SHM_ESTALE;
    }
    return 0;
}

int shm_key_record_batch(shm_t *s, shm_resv_t *const *resv, const shm_outcome_t *o, unsigned n,
                         int64_t now_ms)
{
    int rc = shm__record_check(s, resv, o, n);
    if (rc != 0)
        return rc;
    shm_rec_ctx_t c = {.resv = resv, .o = o, .n = n, .now_ms = now_ms};
    rc = shm__write(s, shm__record_fn, &c);
    if (rc == 0)
        for (unsigned i = 0; i < n; i++)
            resv[i]->live = 0;
    return rc;
}

int shm_key_record(shm_t *s, shm_resv_t *resv, const shm_outcome_t *o, int64_t now_ms)
{
    return shm_key_record_batch(s, &resv, o, 1, now_ms);
}

int shm_key_note(shm_t *s, const char *name, const shm_outcome_t *o, int64_t now_ms)
{
    if (!s || !shm__name_ok(name) || !outcome_ok(o))
        return SHM_EINVAL;
    shm_rec_ctx_t c = {.name = name, .o = o, .n = 1, .now_ms = now_ms};
    return shm__write(s, shm__record_fn, &c);
}

typedef struct rel_ctx_s {
    const shm_resv_t *r;
    int refund;
    int64_t now_ms;
} rel_ctx_t;

static int release_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    rel_ctx_t *c = arg;
    const shm_resv_t *r = c->r;
    shm_krec_t k;
    int64_t stepped, now_ms = shm__now(s, c->now_ms);
    int rc;
    if (r->client[0]) {
        MDB_cursor *cur = NULL;
        if (s->has_clients && (rc = mdb_cursor_open(txn, s->dbi_clients, &cur)) != 0)
            return rc;
        rc = shm__client_finish(s, cur, r, NULL, c->refund, now_ms);
        if (cur)
            mdb_cursor_close(cur);
        if (rc != 0)
            return rc;
    }
    rc = shm__key_get(s, txn, r->name, &k);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    shm__key_to_now(&k, now_ms, &stepped);
    if (k.inflight[r->slot] > 0)
        k.inflight[r->slot]--;
    if (c->refund) {
        shm_window_adjust(&k.req, r->admit_sec, -1);
        shm_window_adjust(&k.tok, r->admit_sec, -(int64_t)r->tokens);
        if (shm__day_index(r->admit_sec * 1000, k.day_offset_s) == k.day && k.day_count > 0)
            k.day_count--;
    }
    k.updated_ms = now_ms;
    return shm__key_put(s, txn, &k);
}

int shm_key_release(shm_t *s, shm_resv_t *resv, int refund, int64_t now_ms)
{
    if (!s || !resv || resv->slot >= SHM_MAX_OWNERS)
        return SHM_EINVAL;
    if (!resv->live || (int)resv->slot != __atomic_load_n(&s->slot, __ATOMIC_ACQUIRE))
        return SHM_ESTALE;
    rel_ctx_t c = {resv, refund, now_ms};
    int rc = shm__write(s, release_fn, &c);
    if (rc == 0)
        resv->live = 0;
    return rc;
}
