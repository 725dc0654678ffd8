/* shm_key.c - admission and outcomes: the hot path.
 *
 * An admission is one LMDB write transaction: read each candidate's record, decide
 * admissibility on a private copy (nothing is written for candidates not chosen), let the
 * strategy choose, re-read the chosen record and reserve on it, put, commit. The writer
 * lock that LMDB holds across processes for the whole transaction is what makes the
 * limits exact. An outcome is one transaction too; shm_key_record_batch() lets a worker
 * fold several plain successes into one commit (shm-bench measures what that saves). */
#include "shm/shm_int.h"

#include <string.h>

void shm_outcome_init(shm_outcome_t *o, int cls)
{
    memset(o, 0, sizeof(*o));
    o->cls = cls;
    o->set_status = -1;
    o->circuit = -1;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int status_blocked(int st)
{
    return st == SHM_ST_DISABLED || st == SHM_ST_INVALID || st == SHM_ST_DEPLETED;
}

#define ADMIT_PROV_CACHE 4
#define ADMIT_REC_CACHE  4

typedef struct admit_ctx_s {
    const shm_admit_req_t *req;
    int64_t now_in, now_ms;
    uint32_t slot;
    uint32_t tokens;
    shm_resv_t resv; /* out */
    int64_t retry_at;
    int result;    /* 0 or SHM_NONE */
    int client_rc; /* SHM_ECLIENT_BUDGET or SHM_ENOTFOUND: the client was refused */
    uint8_t skip[SHM_ADMIT_MAX];
} admit_ctx_t;

/* Decide for one candidate on k (a private copy, advanced to now). Returns the skip reason
 * and sets *t (key clock ms at which time-bound reasons clear) and *untimed. */
static int judge(const shm_krec_t *k, int64_t eff, int prov_open, int64_t prov_until_eff,
                 uint32_t tokens, uint32_t probes, int64_t *t, int *untimed)
{
    int why = SHM_SKIP_NONE;
    int64_t r;
    *t = 0;
    *untimed = 0;
#define SKIP(w)                                                                                    \
    do {                                                                                           \
        if (!why)                                                                                  \
            why = (w);                                                                             \
    } while (0)
    if (k->flags & SHM_KF_ORPHANED) {
        SKIP(SHM_SKIP_ORPHANED);
        *untimed = 1;
    }
    if (k->status == SHM_ST_DEPLETED && k->cooldown_until_ms) {
        /* depleted until the quota resets: then probed like a half-open key */
        if (k->cooldown_until_ms > eff) {
            SKIP(SHM_SKIP_STATUS);
            *t = max64(*t, k->cooldown_until_ms);
        } else if (shm__key_inflight(k) >= probes) {
            SKIP(SHM_SKIP_PROBE);
            *untimed = 1;
        }
    } else if (status_blocked(k->status)) {
        SKIP(SHM_SKIP_STATUS);
        *untimed = 1;
    } else if (k->status == SHM_ST_COOLING && k->cooldown_until_ms > eff) {
        SKIP(SHM_SKIP_COOLING);
        *t = max64(*t, k->cooldown_until_ms);
    } else if (k->status != SHM_ST_ACTIVE && shm__key_inflight(k) >= probes) {
        SKIP(SHM_SKIP_PROBE); /* half-open: probes at a time */
        *untimed = 1;
    }
    if (prov_open) {
        SKIP(SHM_SKIP_CIRCUIT);
        *t = max64(*t, prov_until_eff);
    }
    if (k->rpm && !shm_window_fits(&k->req, k->rpm, 1, &r)) {
        SKIP(SHM_SKIP_RPM);
        *t = max64(*t, r);
    }
    if (k->tpm && !shm_window_fits(&k->tok, k->tpm, tokens, &r)) {
        SKIP(SHM_SKIP_TPM);
        *t = max64(*t, r);
    }
    if (k->rpd && k->day_count >= k->rpd) {
        SKIP(SHM_SKIP_RPD);
        *t = max64(*t, (k->day + 1) * 86400000 + (int64_t)k->day_offset_s * 1000);
    }
    if (k->max_inflight && shm__key_inflight(k) >= k->max_inflight) {
        SKIP(SHM_SKIP_INFLIGHT);
        *untimed = 1;
    }
#undef SKIP
    return why;
}

/* Bring a private copy to now: key clock, windows, day. Returns the key clock now. */
static int64_t key_to_now(shm_krec_t *k, int64_t now_ms, int64_t *stepped)
{
    int64_t eff = shm__key_clock(k, now_ms, stepped);
    int64_t sec = shm_floordiv(eff, 1000);
    shm_window_advance(&k->req, sec);
    shm_window_advance(&k->tok, sec);
    shm__key_day(k, eff);
    return eff;
}

static int admit_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    admit_ctx_t *c = arg;
    const shm_admit_req_t *req = c->req;
    shm_candidate_t cands[SHM_ADMIT_MAX];
    unsigned nc = 0;
    int64_t best = 0, stepped;
    /* Providers seen in this admission (candidates are usually one provider's keys) and
     * copies of the first admissible records, so that the chosen one is not read twice. */
    shm_prec_t provs[ADMIT_PROV_CACHE];
    unsigned nprov = 0;
    shm_krec_t copies[ADMIT_REC_CACHE];
    int dirty = 0, rc;
    shm_krec_t k;
    shm_crec_t client;

    c->retry_at = 0;
    c->client_rc = 0;
    c->now_ms = shm__now(s, c->now_in); /* SHM_NOW: read under the writer lock */
    /* The client's budgets first: over one, no key is judged and nothing is written. */
    if (req->client && (rc = shm__client_admit(s, txn, req, c->now_ms, &client, &c->retry_at))) {
        if (rc != SHM_ECLIENT_BUDGET && rc != MDB_NOTFOUND)
            return rc;
        c->client_rc = rc == MDB_NOTFOUND ? SHM_ENOTFOUND : rc;
        memset(c->skip, SHM_SKIP_CLIENT, req->count);
        return SHM_NONE;
    }
    for (unsigned i = 0; i < req->count; i++) {
        c->skip[i] = SHM_SKIP_UNKNOWN;
        /* read straight into the copy slot the chosen record may be reserved from */
        shm_krec_t *kp = nc < ADMIT_REC_CACHE ? &copies[nc] : &k;
        rc = shm__key_get(s, txn, req->names[i], kp);
        if (rc == MDB_NOTFOUND || rc == SHM_ECORRUPT)
            continue;
        if (rc != 0)
            return rc;
        int64_t eff = key_to_now(kp, c->now_ms, &stepped);
        if (stepped) {
            /* A re-base is kept whether or not this key is admitted: repeating it from the
             * old key clock on every call would keep the window full forever. */
            if ((rc = shm__key_put(s, txn, kp)) != 0 ||
                (rc = shm__hist_add(s, txn, kp->name, SHM_EV_CLOCK, kp, stepped, "admission",
                                    c->now_ms)) != 0)
                return rc;
            dirty = 1;
        }
        const shm_prec_t *prov = NULL;
        for (unsigned p = 0; p < nprov && !prov; p++)
            if (strncmp(provs[p].name, kp->provider, sizeof(kp->provider)) == 0)
                prov = &provs[p];
        if (!prov) {
            shm_prec_t *slot = &provs[nprov < ADMIT_PROV_CACHE ? nprov++ : 0];
            rc = shm__prov_get(s, txn, kp->provider, slot);
            if (rc == MDB_NOTFOUND || rc == SHM_ECORRUPT)
                shm__prov_init(slot, kp->provider, 0);
            else if (rc != 0)
                return rc;
            prov = slot;
        }
        int prov_open = prov->circuit == SHM_CIRCUIT_OPEN && prov->open_until_ms > c->now_ms;
        int64_t t;
        int untimed;
        int why = judge(kp, eff, prov_open, eff + (prov->open_until_ms - c->now_ms), c->tokens,
                        req->half_open_probes ? req->half_open_probes : 1, &t, &untimed);
        c->skip[i] = (uint8_t)why;
        if (why) {
            if (!untimed) {
                int64_t at = c->now_ms + (t > eff ? t - eff : 1);
                best = best == 0 || at < best ? at : best;
            }
            continue;
        }
        shm_candidate_t *cd = &cands[nc++];
        cd->index = i;
        cd->status = kp->status == SHM_ST_ACTIVE ? SHM_ST_ACTIVE : SHM_ST_HALF_OPEN;
        cd->weight = kp->weight;
        cd->inflight = shm__key_inflight(kp);
        cd->max_inflight = kp->max_inflight;
        cd->rpm_used = (uint32_t)kp->req.total;
        cd->rpm = kp->rpm;
        cd->rpd_used = kp->day_count;
        cd->rpd = kp->rpd;
        cd->tpm_used = kp->tok.total;
        cd->tpm = kp->tpm;
        cd->ewma_total_ms = kp->ewma_total_ms;
        cd->consec_failures = kp->consec_fail;
        cd->last_admit_ms = kp->last_admit_ms;
    }
    /* SHM_NONE is a result, not a failure: commit (nearly free without writes) so that a
     * re-base above is kept. */
    if (nc == 0) {
        c->retry_at = best;
        c->result = SHM_NONE;
        return dirty ? 0 : SHM_NONE;
    }
    int pick = req->choose ? req->choose(req->choose_arg, cands, nc) : 0;
    if (pick < 0 || (unsigned)pick >= nc) {
        c->result = SHM_NONE;
        return dirty ? 0 : SHM_NONE;
    }
    unsigned idx = cands[pick].index;
    const char *name = req->names[idx];

    /* Reserve on the chosen record, already brought to now (and re-based if it stepped). */
    if ((unsigned)pick < ADMIT_REC_CACHE) {
        k = copies[pick];
    } else {
        if ((rc = shm__key_get(s, txn, name, &k)) != 0)
            return rc;
        key_to_now(&k, c->now_ms, &stepped);
    }
    int64_t eff = k.clock_ms;
    shm_window_add(&k.req, 1);
    shm_window_add(&k.tok, k.tpm && c->tokens > k.tpm ? k.tpm : c->tokens);
    k.day_count++;
    k.inflight[c->slot]++;
    k.requests++;
    k.last_admit_ms = eff;
    k.updated_ms = c->now_ms;
    if (k.status == SHM_ST_COOLING || k.status == SHM_ST_DEPLETED) {
        k.status = SHM_ST_HALF_OPEN;
        k.status_since_ms = eff;
        k.consec_succ = 0; /* recovery counts the probes' successes */
        if ((rc = shm__hist_add(s, txn, name, SHM_EV_STATUS, &k, 0, "cooldown over: probe",
                                c->now_ms)))
            return rc;
    }
    if ((rc = shm__key_put(s, txn, &k)) != 0)
        return rc;
    shm_resv_t *r = &c->resv;
    memset(r, 0, sizeof(*r));
    memcpy(r->name, k.name, sizeof(r->name));
    r->name[SHM_NAME_MAX] = '\0';
    r->index = idx;
    r->live = 1;
    r->slot = c->slot;
    r->tokens = k.tpm && c->tokens > k.tpm ? k.tpm : c->tokens;
    r->admit_sec = shm_floordiv(eff, 1000);
    r->admitted_ms = c->now_ms;
    if (req->client && (rc = shm__client_reserve(s, txn, &client, req, r)) != 0)
        return rc;
    c->result = 0;
    return 0;
}

int shm_key_admit(shm_t *s, const shm_admit_req_t *req, int64_t now_ms, shm_resv_t *resv,
                  int64_t *retry_at_ms)
{
    if (retry_at_ms)
        *retry_at_ms = 0;
    if (!s || !req || !resv || !req->names || req->count == 0 || req->count > SHM_ADMIT_MAX)
        return SHM_EINVAL;
    for (unsigned i = 0; i < req->count; i++)
        if (!shm__name_ok(req->names[i]))
            return SHM_EINVAL;
    if (req->client && !shm__name_ok(req->client))
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    int slot = __atomic_load_n(&s->slot, __ATOMIC_ACQUIRE);
    if (slot < 0) {
        int rc = shm__owner_ensure(s, shm__now(s, now_ms));
        if (rc != 0)
            return rc;
        slot = __atomic_load_n(&s->slot, __ATOMIC_ACQUIRE);
    }
    admit_ctx_t c = {.req = req, .now_in = now_ms, .slot = (uint32_t)slot, .tokens = req->tokens};
    int rc = shm__write(s, admit_fn, &c);
    if (rc == 0)
        rc = c.result;
    if (rc == SHM_NONE && c.client_rc)
        rc = c.client_rc;
    if (req->skip)
        memcpy(req->skip, c.skip, req->count);
    if (rc == 0)
        *resv = c.resv;
    else if ((rc == SHM_NONE || rc == SHM_ECLIENT_BUDGET) && retry_at_ms)
        *retry_at_ms = c.retry_at;
    return rc;
}

/* ---- Outcomes ---------------------------------------------------------------------------- */

static int is_failure(int cls)
{
    return cls == SHM_CL_429 || cls == SHM_CL_5XX || cls == SHM_CL_TIMEOUT ||
           cls == SHM_CL_CONNECT || cls == SHM_CL_AUTH;
}

static int lat_push(shm_t *s, MDB_txn *txn, const char *name, uint32_t ttfb, uint32_t total)
{
    shm_lrec_t l;
    int rc = shm__lat_get(s, txn, name, &l);
    if (rc == MDB_NOTFOUND || rc == SHM_ECORRUPT) {
        memset(&l, 0, sizeof(l));
        l.version = SHM_LREC_VERSION;
        l.size = sizeof(l);
    } else if (rc != 0) {
        return rc;
    }
    l.ttfb[l.head] = ttfb;
    l.total[l.head] = total;
    l.head = (l.head + 1) % SHM_LAT_RING;
    if (l.count < SHM_LAT_RING)
        l.count++;
    MDB_val k = {strlen(name), (void *)name}, v = {sizeof(l), &l};
    return mdb_put(txn, s->dbi_lat, &k, &v, 0);
}

static uint32_t ewma(uint32_t old, uint32_t x)
{
    return old == 0 ? x : (uint32_t)(((uint64_t)old * 7 + x) / 8);
}

static int provider_outcome(shm_t *s, MDB_txn *txn, const char *name, const shm_outcome_t *o,
                            int64_t now_ms)
{
    shm_prec_t p;
    int fail = o->cls != SHM_CL_AUTH && is_failure(o->cls);
    int rc = shm__prov_get(s, txn, name, &p);
    if (rc == MDB_NOTFOUND || rc == SHM_ECORRUPT)
        shm__prov_init(&p, name, now_ms);
    else if (rc != 0)
        return rc;
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
    return shm__prov_put(s, txn, &p);
}

/* Apply one outcome (resv may be NULL: shm_key_note) to the record of name. */
static int apply_outcome(shm_t *s, MDB_txn *txn, const char *name, const shm_resv_t *r,
                         const shm_outcome_t *o, int64_t now_ms)
{
    shm_krec_t k;
    int64_t stepped;
    int rc = shm__key_get(s, txn, name, &k);
    if (rc != 0)
        return rc;
    int64_t eff = key_to_now(&k, now_ms, &stepped);
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
            if ((rc = lat_push(s, txn, name, o->ttfb_ms, o->total_ms)) != 0)
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
        !status_blocked(k.status)) {
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
    if (cool_until && !status_blocked(k.status)) {
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
    if ((rc = shm__key_put(s, txn, &k)) != 0)
        return rc;
    if (o->cls != SHM_CL_CANCELLED && o->cls != SHM_CL_OTHER)
        return provider_outcome(s, txn, k.provider, o, now_ms);
    return 0;
}

typedef struct rec_ctx_s {
    shm_resv_t *const *resv; /* NULL for a note */
    const char *name;        /* for a note */
    const shm_outcome_t *o;
    unsigned n;
    int64_t now_ms;
} rec_ctx_t;

static int record_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    rec_ctx_t *c = arg;
    int64_t now_ms = shm__now(s, c->now_ms);
    for (unsigned i = 0; i < c->n; i++) {
        const shm_resv_t *r = c->resv ? c->resv[i] : NULL;
        int rc = 0;
        if (r && r->client[0] && (rc = shm__client_finish(s, txn, r, &c->o[i], 0, now_ms)))
            return rc;
        rc = apply_outcome(s, txn, r ? r->name : c->name, r, &c->o[i], now_ms);
        if (rc == MDB_NOTFOUND && r)
            continue; /* pruned while in flight: nothing left to count */
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int outcome_ok(const shm_outcome_t *o)
{
    return o && o->cls >= 0 && o->cls < SHM_CL_COUNT && o->set_status < SHM_ST_COUNT &&
           o->circuit <= SHM_CIRCUIT_HALF_OPEN;
}

int shm_key_record_batch(shm_t *s, shm_resv_t *const *resv, const shm_outcome_t *o, unsigned n,
                         int64_t now_ms)
{
    if (!s || !resv || !o || n == 0)
        return SHM_EINVAL;
    for (unsigned i = 0; i < n; i++) {
        if (!resv[i] || !outcome_ok(&o[i]) || resv[i]->slot >= SHM_MAX_OWNERS)
            return SHM_EINVAL;
        if (!resv[i]->live || (int)resv[i]->slot != __atomic_load_n(&s->slot, __ATOMIC_ACQUIRE))
            return SHM_ESTALE;
    }
    rec_ctx_t c = {.resv = resv, .o = o, .n = n, .now_ms = now_ms};
    int rc = shm__write(s, record_fn, &c);
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
    rec_ctx_t c = {.name = name, .o = o, .n = 1, .now_ms = now_ms};
    return shm__write(s, record_fn, &c);
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
    if (r->client[0] && (rc = shm__client_finish(s, txn, r, NULL, c->refund, now_ms)) != 0)
        return rc;
    rc = shm__key_get(s, txn, r->name, &k);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    key_to_now(&k, now_ms, &stepped);
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
