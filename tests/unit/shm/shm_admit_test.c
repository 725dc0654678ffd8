/* shm_admit_test.c - the admission path of shm_admit.c against the one it replaced.
 *
 * Admission judges candidates in place in the map, visits them in key order with one
 * cursor and copies only the chosen record. Its results must be those of the former path
 * (every candidate's record copied whole, brought to now, judged, in the caller's order),
 * which ref_admit() below restates from shm_int.h's record helpers. A random workload
 * (limits, outcomes, cooldowns, circuits, admin actions, clock steps back and forth,
 * unknown and repeated names, any order of candidates) compares both on every admission:
 * skip[], what the strategy sees, the choice, retry times, and every key record byte for
 * byte. Then targeted cases; batches (shm_key_batch judges from the records it kept)
 * against the same admissions one by one in a twin store; and the UTC calendar arithmetic
 * against libc. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shm/shm_int.h"
#include "shm_tutil.h"
#include "t.h"

#define NKEYS  10
#define NPROVS 3
#define MAXC   16

static const char *const key_names[NKEYS] = {"k00", "k01", "k02", "k03", "k04",
                                             "k05", "k06", "k07", "k08", "k09"};
static const char *const prov_names[NPROVS] = {"p0", "p1", "p2"};
/* names that are in no store: before all keys, between two, after all */
static const char *const missing_names[3] = {"a-missing", "k04x", "zz-missing"};

/* ---- raw records -------------------------------------------------------------------------- */

typedef struct snap_s {
    shm_krec_t k[NKEYS];
    int have[NKEYS];
    shm_prec_t p[NPROVS];
    int have_p[NPROVS];
} snap_t;

static int snap_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    snap_t *sn = arg;
    memset(sn, 0, sizeof(*sn));
    for (unsigned i = 0; i < NKEYS; i++)
        sn->have[i] = shm__key_get(s, txn, key_names[i], &sn->k[i]) == 0;
    for (unsigned i = 0; i < NPROVS; i++)
        sn->have_p[i] = shm__prov_get(s, txn, prov_names[i], &sn->p[i]) == 0;
    return 0;
}

static void snap(shm_t *s, snap_t *sn)
{
    if (shm__read(s, snap_fn, sn) != 0)
        memset(sn, 0, sizeof(*sn));
}

static int key_id(const char *name)
{
    for (unsigned i = 0; i < NKEYS; i++)
        if (strcmp(name, key_names[i]) == 0)
            return (int)i;
    return -1;
}

/* ---- the strategy: the same rule for both paths, recording what it saw ------------------- */

typedef struct choose_s {
    int mode; /* 0 oldest (round robin), 1 least in-flight, 2 last, 3 none (-1) */
    shm_candidate_t seen[MAXC];
    unsigned nseen;
    int called;
} choose_t;

static int rule(int mode, const shm_candidate_t *c, unsigned n)
{
    unsigned best = 0;
    switch (mode) {
    case 0:
        for (unsigned i = 1; i < n; i++)
            if (c[i].last_admit_ms < c[best].last_admit_ms)
                best = i;
        return (int)best;
    case 1:
        for (unsigned i = 1; i < n; i++)
            if (c[i].inflight < c[best].inflight)
                best = i;
        return (int)best;
    case 2:
        return (int)n - 1;
    default:
        return -1;
    }
}

static int choose_cb(void *arg, const shm_candidate_t *c, unsigned n)
{
    choose_t *ch = arg;
    ch->called = 1;
    ch->nseen = n;
    memcpy(ch->seen, c, n * sizeof(*c));
    return rule(ch->mode, c, n);
}

/* ---- the former admission path ------------------------------------------------------------ */

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* judge() as it was: on a whole copy brought to now. */
static int ref_judge(const shm_krec_t *k, int64_t eff, int prov_open, int64_t prov_until_eff,
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
        if (k->cooldown_until_ms > eff) {
            SKIP(SHM_SKIP_STATUS);
            *t = max64(*t, k->cooldown_until_ms);
        } else if (shm__key_inflight(k) >= probes) {
            SKIP(SHM_SKIP_PROBE);
            *untimed = 1;
        }
    } else if (shm__status_blocked(k->status)) {
        SKIP(SHM_SKIP_STATUS);
        *untimed = 1;
    } else if (k->status == SHM_ST_COOLING && k->cooldown_until_ms > eff) {
        SKIP(SHM_SKIP_COOLING);
        *t = max64(*t, k->cooldown_until_ms);
    } else if (k->status != SHM_ST_ACTIVE && shm__key_inflight(k) >= probes) {
        SKIP(SHM_SKIP_PROBE);
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

typedef struct ref_out_s {
    int rc; /* 0 or SHM_NONE */
    uint8_t skip[MAXC];
    shm_candidate_t cands[MAXC];
    unsigned nc;
    int64_t retry;
    unsigned index; /* chosen */
    snap_t after;   /* the key records after the admission */
} ref_out_t;

static void ref_admit(const snap_t *before, const char *const *names, unsigned n, uint32_t tokens,
                      uint32_t half_open_probes, int mode, uint32_t slot, int64_t now, ref_out_t *o)
{
    uint32_t probes = half_open_probes ? half_open_probes : 1;
    int64_t best = 0, stepped;
    memset(o, 0, sizeof(*o));
    o->after = *before;
    for (unsigned i = 0; i < n; i++) {
        int id = key_id(names[i]);
        o->skip[i] = SHM_SKIP_UNKNOWN;
        if (id < 0 || !o->after.have[id])
            continue;
        shm_krec_t k = o->after.k[id];
        int64_t eff = shm__key_to_now(&k, now, &stepped);
        if (stepped)
            o->after.k[id] = k; /* a re-base is put whether or not the key is admitted */
        int open = 0;
        int64_t until = 0;
        for (unsigned p = 0; p < NPROVS; p++) {
            if (o->after.have_p[p] && strcmp(o->after.p[p].name, k.provider) == 0) {
                open = o->after.p[p].circuit == SHM_CIRCUIT_OPEN;
                until = o->after.p[p].open_until_ms;
            }
        }
        int prov_open = open && until > now;
        int64_t t;
        int untimed;
        int why = ref_judge(&k, eff, prov_open, eff + (until - now), tokens, probes, &t, &untimed);
        o->skip[i] = (uint8_t)why;
        if (why) {
            if (!untimed) {
                int64_t at = now + (t > eff ? t - eff : 1);
                best = best == 0 || at < best ? at : best;
            }
            continue;
        }
        shm_candidate_t *cd = &o->cands[o->nc++];
        memset(cd, 0, sizeof(*cd));
        cd->index = i;
        cd->status = k.status == SHM_ST_ACTIVE ? SHM_ST_ACTIVE : SHM_ST_HALF_OPEN;
        cd->weight = k.weight;
        cd->inflight = shm__key_inflight(&k);
        cd->max_inflight = k.max_inflight;
        cd->rpm_used = (uint32_t)k.req.total;
        cd->rpm = k.rpm;
        cd->rpd_used = k.day_count;
        cd->rpd = k.rpd;
        cd->tpm_used = k.tok.total;
        cd->tpm = k.tpm;
        cd->ewma_total_ms = k.ewma_total_ms;
        cd->consec_failures = k.consec_fail;
        cd->last_admit_ms = k.last_admit_ms;
    }
    o->rc = SHM_NONE;
    if (o->nc == 0) {
        o->retry = best;
        return;
    }
    int pick = rule(mode, o->cands, o->nc);
    if (pick < 0 || (unsigned)pick >= o->nc)
        return;
    o->index = o->cands[pick].index;
    int id = key_id(names[o->index]);
    shm_krec_t k = o->after.k[id];
    int64_t eff = shm__key_to_now(&k, now, &stepped);
    shm_window_add(&k.req, 1);
    shm_window_add(&k.tok, k.tpm && tokens > k.tpm ? k.tpm : tokens);
    k.day_count++;
    k.inflight[slot]++;
    k.requests++;
    k.last_admit_ms = eff;
    k.updated_ms = now;
    if (k.status == SHM_ST_COOLING || k.status == SHM_ST_DEPLETED) {
        k.status = SHM_ST_HALF_OPEN;
        k.status_since_ms = eff;
        k.consec_succ = 0;
    }
    o->after.k[id] = k;
    o->rc = 0;
}

/* ---- the differential workload ------------------------------------------------------------ */

static unsigned rnd(unsigned *seed, unsigned n)
{
    return (unsigned)rand_r(seed) % n;
}

/* An outcome of any class, with the policy knobs the tests use. */
static void rand_outcome(unsigned *seed, int64_t now, shm_outcome_t *o)
{
    static const int cls[] = {SHM_CL_SUCCESS, SHM_CL_SUCCESS, SHM_CL_SUCCESS, SHM_CL_429,
                              SHM_CL_5XX,     SHM_CL_TIMEOUT, SHM_CL_OTHER,   SHM_CL_CANCELLED};
    shm_outcome_init(o, cls[rnd(seed, 8)]);
    o->prompt_tokens = rnd(seed, 400);
    o->completion_tokens = rnd(seed, 400);
    o->total_ms = rnd(seed, 2000);
    o->fail_threshold = 2;
    o->fail_cooldown_ms = 5000;
    o->cooldown_max_ms = 60000;
    o->circuit_min_requests = 4;
    o->circuit_error_ratio = 0.5;
    o->circuit_open_ms = 10000;
    if (o->cls == SHM_CL_429 && rnd(seed, 2))
        o->cooldown_until_ms = now + rnd(seed, 30000);
    if (rnd(seed, 40) == 0) {
        o->set_status = SHM_ST_DEPLETED;
        o->cooldown_until_ms = now + rnd(seed, 20000);
    }
}

static int cand_eq(const shm_candidate_t *a, const shm_candidate_t *b)
{
    return a->index == b->index && a->status == b->status && a->weight == b->weight &&
           a->inflight == b->inflight && a->max_inflight == b->max_inflight &&
           a->rpm_used == b->rpm_used && a->rpm == b->rpm && a->rpd_used == b->rpd_used &&
           a->rpd == b->rpd && a->tpm_used == b->tpm_used && a->tpm == b->tpm &&
           a->ewma_total_ms == b->ewma_total_ms && a->consec_failures == b->consec_failures &&
           a->last_admit_ms == b->last_admit_ms;
}

/* One admission through shm_key_admit and through ref_admit; 1 if they agree. */
static int admit_both(shm_t *s, const char *const *names, unsigned n, uint32_t tokens,
                      uint32_t probes, int mode, int64_t now, shm_resv_t *r, int *admitted,
                      char *why, size_t whylen)
{
    snap_t before, after;
    ref_out_t ref;
    choose_t ch = {.mode = mode};
    uint8_t skip[MAXC];
    int64_t retry = -1;
    shm_admit_req_t req = {.names = names,
                           .count = n,
                           .tokens = tokens,
                           .half_open_probes = probes,
                           .choose = choose_cb,
                           .choose_arg = &ch,
                           .skip = skip};

    snap(s, &before);
    int rc = shm_key_admit(s, &req, now, r, &retry);
    snap(s, &after);
    ref_admit(&before, names, n, tokens, probes, mode, rc == 0 ? r->slot : 0, now, &ref);
    *admitted = rc == 0;
    if (rc != ref.rc) {
        snprintf(why, whylen, "rc %d, former path %d", rc, ref.rc);
        return 0;
    }
    if (memcmp(skip, ref.skip, n) != 0) {
        snprintf(why, whylen, "skip[] differs");
        return 0;
    }
    int same = ch.called ? ch.nseen == ref.nc : ref.nc == 0;
    for (unsigned i = 0; same && ch.called && i < ref.nc; i++)
        same = cand_eq(&ch.seen[i], &ref.cands[i]);
    if (!same) {
        snprintf(why, whylen, "the strategy saw other candidates (%u, former %u)", ch.nseen,
                 ref.nc);
        return 0;
    }
    if (rc == SHM_NONE && retry != ref.retry) {
        snprintf(why, whylen, "retry %lld, former %lld", (long long)retry, (long long)ref.retry);
        return 0;
    }
    if (rc == 0 && (r->index != ref.index || strcmp(r->name, names[ref.index]) != 0)) {
        snprintf(why, whylen, "chose %u, former %u", r->index, ref.index);
        return 0;
    }
    for (unsigned i = 0; i < NKEYS; i++) {
        if (after.have[i] != ref.after.have[i] ||
            (after.have[i] && memcmp(&after.k[i], &ref.after.k[i], sizeof(shm_krec_t)) != 0)) {
            snprintf(why, whylen, "record %s differs from the former path's", key_names[i]);
            return 0;
        }
    }
    return 1;
}

static void test_differential(void)
{
    char parent[64], dir[96], why[160] = "";
    unsigned seed = 20240611;
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[NKEYS];
    static const uint32_t rpms[] = {0, 2, 5}, rpds[] = {0, 4, 9}, tpms[] = {0, 500, 2000},
                          mifs[] = {0, 1, 3};
    for (unsigned i = 0; i < NKEYS; i++) {
        sp[i] = tu_spec(key_names[i], prov_names[i % NPROVS], rpms[rnd(&seed, 3)],
                        rpds[rnd(&seed, 3)], tpms[rnd(&seed, 3)], mifs[rnd(&seed, 3)]);
        sp[i].day_offset_s = i == 3 ? 3600 : 0;
    }
    T_EQ_INT(shm_keys_sync(s, sp, NKEYS, T0, NULL), 0, "keys");
    /* one admission first registers the owner slot, so that both paths see the same slot */
    shm_resv_t pool[64];
    unsigned npool = 0;
    const char *first[1] = {"k00"};
    int adm;
    T_OK(admit_both(s, first, 1, 0, 0, 0, T0 + 1000, &pool[npool], &adm, why, sizeof(why)),
         "first admission agrees: %s", why);
    npool += adm;

    int64_t now = T0 + 2000;
    unsigned admissions = 0, agreed = 0, admitted = 0, steps = 0, sorted_path = 0;
    char fail[160] = "";
    for (unsigned step = 0; step < 3000; step++) {
        unsigned dt = rnd(&seed, 100);
        if (dt < 70)
            now += rnd(&seed, 1500);
        else if (dt < 85)
            now += 61000 + rnd(&seed, 120000);
        else if (dt < 93)
            now -= 1 + rnd(&seed, SHM_CLOCK_SKEW_MS); /* a late reader of the clock */
        else if (dt < 97) {
            now -= SHM_CLOCK_SKEW_MS + 1 + rnd(&seed, 100000); /* a step back: re-base */
            steps++;
        } else
            now += DAY_MS / 2 + rnd(&seed, DAY_MS);
        unsigned op = rnd(&seed, 100);
        if (op < 60) {
            const char *names[MAXC];
            unsigned n = 1 + rnd(&seed, MAXC), descents = 0;
            for (unsigned i = 0; i < n; i++) {
                unsigned w = rnd(&seed, 20);
                names[i] = w < 17 ? key_names[rnd(&seed, NKEYS)] : missing_names[w - 17];
                descents += i && strcmp(names[i], names[i - 1]) < 0;
            }
            sorted_path += descents >= 4;
            shm_resv_t r;
            admissions++;
            if (admit_both(s, names, n, rnd(&seed, 900), rnd(&seed, 3), (int)rnd(&seed, 4), now, &r,
                           &adm, why, sizeof(why)))
                agreed++;
            else if (!fail[0])
                snprintf(fail, sizeof(fail), "step %u: %s", step, why);
            if (adm) {
                admitted++;
                if (npool < 64)
                    pool[npool++] = r;
                else
                    shm_key_release(s, &r, 0, now);
            }
        } else if (op < 85 && npool) {
            unsigned i = rnd(&seed, npool);
            shm_outcome_t o;
            rand_outcome(&seed, now, &o);
            shm_key_record(s, &pool[i], &o, now);
            pool[i] = pool[--npool];
        } else if (op < 90 && npool) {
            unsigned i = rnd(&seed, npool);
            shm_key_release(s, &pool[i], (int)rnd(&seed, 2), now);
            pool[i] = pool[--npool];
        } else if (op < 95) {
            const char *k = key_names[rnd(&seed, NKEYS)];
            unsigned a = rnd(&seed, 3);
            if (a == 0)
                shm_key_disable(s, k, "test", now);
            else if (a == 1)
                shm_key_enable(s, k, "test", now);
            else
                shm_key_cooldown(s, k, 1 + rnd(&seed, 20000), "test", now);
        } else if (op < 98) {
            const char *p = prov_names[rnd(&seed, NPROVS)];
            if (rnd(&seed, 2))
                shm_provider_set_circuit(s, p, SHM_CIRCUIT_OPEN, now + rnd(&seed, 20000),
                                         SHM_RS_POLICY, now);
            else
                shm_provider_set_circuit(s, p, SHM_CIRCUIT_CLOSED, 0, SHM_RS_ADMIN, now);
        } else {
            /* orphan one key for a while, then bring it back */
            unsigned drop = rnd(&seed, NKEYS);
            shm_key_spec_t some[NKEYS];
            unsigned m = 0;
            for (unsigned i = 0; i < NKEYS; i++)
                if (i != drop)
                    some[m++] = sp[i];
            if (rnd(&seed, 2))
                shm_keys_sync(s, some, m, now, NULL);
            else
                shm_keys_sync(s, sp, NKEYS, now, NULL);
        }
    }
    T_EQ_INT(agreed, admissions,
             "%u admissions (%u admitted, %u clock steps back, %u sorted "
             "visits) agree with the former path %s",
             admissions, admitted, steps, sorted_path, fail);
    T_OK(admitted > 200 && admitted < admissions && steps > 20 && sorted_path > 50,
         "the workload admits and refuses, steps the clock back and visits in sorted order");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- targeted cases ------------------------------------------------------------------------ */

static int pick_name_cb(void *arg, const shm_candidate_t *c, unsigned n)
{
    choose_t *ch = arg; /* mode = the position in names to pick */
    ch->called = 1;
    ch->nseen = n;
    memcpy(ch->seen, c, n * sizeof(*c));
    for (unsigned i = 0; i < n; i++)
        if (c[i].index == (unsigned)ch->mode)
            return (int)i;
    return -1;
}

static void test_orders_missing_and_repeats(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[NKEYS];
    for (unsigned i = 0; i < NKEYS; i++)
        sp[i] = tu_spec(key_names[i], prov_names[i % 2], 0, 0, 0, 0);
    sp[4].rpm = 1; /* k04 is refused after one admission */
    shm_keys_sync(s, sp, NKEYS, T0, NULL);
    shm_resv_t r;
    const char *one[1] = {"k04"};
    T_EQ_INT(tu_admit(s, one, 1, 0, T0, &r, NULL), 0, "k04 admitted once");

    /* reverse order, unknown names before, between and after the keys, repeats: many runs,
     * so the sorted visit */
    const char *names[12] = {"zz-missing", "k09", "k07",       "k04", "k04x", "k02",
                             "k07",        "k00", "a-missing", "k04", "k08",  "k01"};
    uint8_t skip[12];
    choose_t ch = {.mode = 6}; /* the second "k07" */
    shm_admit_req_t req = {
        .names = names, .count = 12, .choose = pick_name_cb, .choose_arg = &ch, .skip = skip};
    T_EQ_INT(shm_key_admit(s, &req, T0 + 10, &r, NULL), 0, "admit among 12 in no order");
    T_OK(r.index == 6 && strcmp(r.name, "k07") == 0, "resv.index is the caller's position (%u)",
         r.index);
    static const uint8_t want[12] = {
        SHM_SKIP_UNKNOWN, 0, 0, SHM_SKIP_RPM, SHM_SKIP_UNKNOWN, 0, 0, 0, SHM_SKIP_UNKNOWN,
        SHM_SKIP_RPM,     0, 0};
    T_OK(memcmp(skip, want, 12) == 0, "skip[] by the caller's positions: unknown, RPM, repeats");
    int ordered = ch.nseen == 7;
    for (unsigned i = 1; i < ch.nseen; i++)
        ordered &= ch.seen[i].index > ch.seen[i - 1].index;
    T_OK(ordered, "the strategy sees the 7 admissible in the caller's order");
    shm_candidate_t again = ch.seen[3];
    again.index = 2;
    T_OK(ch.seen[1].index == 2 && ch.seen[3].index == 6 && cand_eq(&ch.seen[1], &again),
         "a repeated name is judged alike at both positions");
    shm_key_t k;
    shm_key_get(s, "k07", T0 + 10, &k);
    T_EQ_INT(k.requests, 1, "the repeated key is reserved once");

    /* all unknown */
    const char *none[3] = {"a-missing", "k04x", "zz-missing"};
    req.names = none;
    req.count = 3;
    req.choose = NULL;
    int64_t retry = -1;
    T_EQ_INT(shm_key_admit(s, &req, T0 + 20, &r, &retry), SHM_NONE, "only unknown names");
    T_OK(skip[0] == SHM_SKIP_UNKNOWN && skip[1] == SHM_SKIP_UNKNOWN &&
             skip[2] == SHM_SKIP_UNKNOWN && retry == 0,
         "all unknown, no retry time");

    /* key order given as is: the first admissible by default */
    const char *asc[4] = {"k05", "k06", "k08", "k09"};
    req.names = asc;
    req.count = 4;
    T_EQ_INT(shm_key_admit(s, &req, T0 + 30, &r, NULL), 0, "ascending names");
    T_OK(r.index == 0 && strcmp(r.name, "k05") == 0, "the first: k05");
    shm_store_close(s);
    tu_rmdir(parent);
}

static void test_step_back_not_chosen(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[2] = {tu_spec("a", "p", 0, 0, 0, 0), tu_spec("b", "p", 10, 0, 0, 0)};
    shm_keys_sync(s, sp, 2, T0, NULL);
    int64_t t = T0 + 3600 * 1000;
    for (int i = 0; i < 10; i++)
        T_EQ_INT(tu_admit1(s, "b", t + i, NULL), 0, "b admitted (%d)", i);
    /* a's clock stays at T0; b's is at t: a step back of 20 s for b only */
    int64_t back = t - 20000;
    const char *names[2] = {"b", "a"};
    uint8_t skip[2];
    shm_resv_t r;
    shm_admit_req_t req = {.names = names, .count = 2, .skip = skip};
    T_EQ_INT(shm_key_admit(s, &req, back, &r, NULL), 0, "admit after b's clock stepped back");
    T_OK(strcmp(r.name, "a") == 0 && r.index == 1 && skip[0] == SHM_SKIP_RPM,
         "b still full (re-based, not forgotten): a chosen");
    shm_key_t k;
    shm_key_get(s, "b", back, &k);
    T_EQ_INT(k.rpm_used, 10, "b's window moved back with the clock, counts kept");
    shm_event_t ev[SHM_HISTORY_RING];
    unsigned n = 0;
    shm_key_history(s, "b", ev, SHM_HISTORY_RING, &n);
    T_OK(n > 0 && ev[n - 1].type == SHM_EV_CLOCK && ev[n - 1].arg == 20000 + 9,
         "b's re-base kept and in its history (step %lld ms)", n ? (long long)ev[n - 1].arg : 0);
    /* the re-base is not repeated: same now again, no second clock event */
    T_EQ_INT(shm_key_admit(s, &req, back, &r, NULL), 0, "again");
    unsigned n2 = 0;
    shm_key_history(s, "b", ev, SHM_HISTORY_RING, &n2);
    T_EQ_INT(n2, n, "no second re-base");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- batches: the records a batch keeps ---------------------------------------------------- */

/* Admissions of one batch (shm_key_batch) judge from what the batch kept of the records
 * judged before; one by one (shm_key_admit, same now) each reads the map. Both must give the
 * same results and leave the same records. */

typedef struct bq_s {
    const char *names[MAXC];
    unsigned n;
    uint32_t tokens, probes;
    choose_t ch;
    uint8_t skip[MAXC];
    shm_resv_t r;
    int64_t retry;
    int rc;
} bq_t;

typedef struct bqs_s {
    bq_t *q;
    unsigned n;
} bqs_t;

static void bq_req(bq_t *q, shm_admit_req_t *req)
{
    memset(req, 0, sizeof(*req));
    req->names = q->names;
    req->count = q->n;
    req->tokens = q->tokens;
    req->half_open_probes = q->probes;
    req->choose = choose_cb;
    req->choose_arg = &q->ch;
    req->skip = q->skip;
    q->ch.called = 0;
    q->ch.nseen = 0;
    q->retry = -1;
}

static int bq_batch_fn(shm_batch_t *b, void *arg)
{
    bqs_t *bs = arg;
    for (unsigned i = 0; i < bs->n; i++) {
        shm_admit_req_t req;
        bq_req(&bs->q[i], &req);
        bs->q[i].rc = shm_batch_admit(b, &req, &bs->q[i].r, &bs->q[i].retry);
    }
    return 0;
}

/* 1 if a and b (the same admission, batched and alone) agree. */
static int bq_eq(const bq_t *a, const bq_t *b, char *why, size_t whylen)
{
    if (a->rc != b->rc) {
        snprintf(why, whylen, "rc %d, alone %d", a->rc, b->rc);
        return 0;
    }
    if (memcmp(a->skip, b->skip, a->n) != 0) {
        snprintf(why, whylen, "skip[] differs");
        return 0;
    }
    int same = a->ch.called == b->ch.called && a->ch.nseen == b->ch.nseen;
    for (unsigned i = 0; same && i < a->ch.nseen; i++)
        same = cand_eq(&a->ch.seen[i], &b->ch.seen[i]);
    if (!same) {
        snprintf(why, whylen, "the strategy saw other candidates (%u, alone %u)", a->ch.nseen,
                 b->ch.nseen);
        return 0;
    }
    if (a->rc == SHM_NONE && a->retry != b->retry) {
        snprintf(why, whylen, "retry %lld, alone %lld", (long long)a->retry, (long long)b->retry);
        return 0;
    }
    if (a->rc == 0 && (a->r.index != b->r.index || strcmp(a->r.name, b->r.name) != 0 ||
                       a->r.tokens != b->r.tokens || a->r.admit_sec != b->r.admit_sec)) {
        snprintf(why, whylen, "chose %u, alone %u", a->r.index, b->r.index);
        return 0;
    }
    return 1;
}

static int snaps_eq(shm_t *a, shm_t *b, char *why, size_t whylen)
{
    snap_t sa, sb;
    snap(a, &sa);
    snap(b, &sb);
    for (unsigned i = 0; i < NKEYS; i++) {
        if (sa.have[i] != sb.have[i] ||
            (sa.have[i] && memcmp(&sa.k[i], &sb.k[i], sizeof(shm_krec_t)) != 0)) {
            snprintf(why, whylen, "record %s differs", key_names[i]);
            return 0;
        }
    }
    return 1;
}

static void test_batch_differential(void)
{
    char pa[64], da[96], pb[64], db[96], why[160] = "", fail[200] = "";
    unsigned seed = 4242;
    tu_mkdir(pa, sizeof(pa), da, sizeof(da));
    tu_mkdir(pb, sizeof(pb), db, sizeof(db));
    shm_t *sa = tu_open(da, T0), *sb = tu_open(db, T0);
    shm_key_spec_t sp[NKEYS];
    static const uint32_t rpms[] = {0, 3, 8}, rpds[] = {0, 6, 40}, tpms[] = {0, 700, 3000},
                          mifs[] = {0, 2, 4};
    for (unsigned i = 0; i < NKEYS; i++) {
        sp[i] = tu_spec(key_names[i], prov_names[i % NPROVS], rpms[rnd(&seed, 3)],
                        rpds[rnd(&seed, 3)], tpms[rnd(&seed, 3)], mifs[rnd(&seed, 3)]);
        sp[i].day_offset_s = i == 3 ? 3600 : 0;
    }
    T_OK(shm_keys_sync(sa, sp, NKEYS, T0, NULL) == 0 && shm_keys_sync(sb, sp, NKEYS, T0, NULL) == 0,
         "keys in both stores");
    shm_resv_t pool_a[64], pool_b[64];
    unsigned npool = 0, batches = 0, admissions = 0, agreed = 0, admitted = 0, steps = 0;
    unsigned stores_agree = 0, checks = 0;
    int64_t now = T0 + 2000;
    static bq_t qa[12], qb[12];

    for (unsigned step = 0; step < 1500; step++) {
        unsigned dt = rnd(&seed, 100);
        if (dt < 70)
            now += rnd(&seed, 1500);
        else if (dt < 85)
            now += 61000 + rnd(&seed, 120000);
        else if (dt < 92)
            now -= 1 + rnd(&seed, SHM_CLOCK_SKEW_MS);
        else if (dt < 96) {
            now -= SHM_CLOCK_SKEW_MS + 1 + rnd(&seed, 100000); /* re-bases */
            steps++;
        } else
            now += DAY_MS / 2 + rnd(&seed, DAY_MS);
        unsigned op = rnd(&seed, 100);
        if (op < 50) {
            unsigned nq = 1 + rnd(&seed, 12);
            for (unsigned j = 0; j < nq; j++) {
                bq_t *q = &qa[j];
                memset(q, 0, sizeof(*q));
                q->n = 1 + rnd(&seed, MAXC);
                for (unsigned i = 0; i < q->n; i++) {
                    unsigned w = rnd(&seed, 20);
                    q->names[i] = w < 18 ? key_names[rnd(&seed, NKEYS)] : missing_names[w - 18];
                }
                q->tokens = rnd(&seed, 4) ? rnd(&seed, 400) : rnd(&seed, 4000);
                q->probes = rnd(&seed, 3);
                q->ch.mode = (int)rnd(&seed, 4);
                qb[j] = *q;
            }
            bqs_t bs = {qa, nq};
            int rc = shm_key_batch(sa, NULL, NULL, 0, now, bq_batch_fn, &bs);
            batches++;
            for (unsigned j = 0; j < nq; j++) {
                shm_admit_req_t req;
                bq_req(&qb[j], &req);
                qb[j].rc = shm_key_admit(sb, &req, now, &qb[j].r, &qb[j].retry);
            }
            for (unsigned j = 0; j < nq; j++) {
                admissions++;
                if (rc == 0 && bq_eq(&qa[j], &qb[j], why, sizeof(why)))
                    agreed++;
                else if (!fail[0])
                    snprintf(fail, sizeof(fail), "step %u, admission %u of %u: %s", step, j, nq,
                             rc ? "the batch failed" : why);
                if (rc == 0 && qa[j].rc == 0 && qb[j].rc == 0) {
                    admitted++;
                    if (npool < 64) {
                        pool_a[npool] = qa[j].r;
                        pool_b[npool++] = qb[j].r;
                    } else {
                        shm_key_release(sa, &qa[j].r, 0, now);
                        shm_key_release(sb, &qb[j].r, 0, now);
                    }
                }
            }
            checks++;
            if (snaps_eq(sa, sb, why, sizeof(why)))
                stores_agree++;
            else if (!fail[0])
                snprintf(fail, sizeof(fail), "step %u, after the batch: %s", step, why);
        } else if (op < 80 && npool) {
            unsigned i = rnd(&seed, npool);
            shm_outcome_t o;
            rand_outcome(&seed, now, &o);
            shm_key_record(sa, &pool_a[i], &o, now);
            shm_key_record(sb, &pool_b[i], &o, now);
            pool_a[i] = pool_a[--npool];
            pool_b[i] = pool_b[npool];
        } else if (op < 87 && npool) {
            unsigned i = rnd(&seed, npool);
            int refund = (int)rnd(&seed, 2);
            shm_key_release(sa, &pool_a[i], refund, now);
            shm_key_release(sb, &pool_b[i], refund, now);
            pool_a[i] = pool_a[--npool];
            pool_b[i] = pool_b[npool];
        } else if (op < 94) {
            const char *k = key_names[rnd(&seed, NKEYS)];
            unsigned a = rnd(&seed, 3);
            int64_t ms = 1 + rnd(&seed, 20000);
            shm_t *both[2] = {sa, sb};
            for (unsigned x = 0; x < 2; x++) {
                if (a == 0)
                    shm_key_disable(both[x], k, "test", now);
                else if (a == 1)
                    shm_key_enable(both[x], k, "test", now);
                else
                    shm_key_cooldown(both[x], k, ms, "test", now);
            }
        } else {
            const char *p = prov_names[rnd(&seed, NPROVS)];
            int open = (int)rnd(&seed, 2);
            int64_t until = now + rnd(&seed, 20000);
            shm_t *both[2] = {sa, sb};
            for (unsigned x = 0; x < 2; x++) {
                if (open)
                    shm_provider_set_circuit(both[x], p, SHM_CIRCUIT_OPEN, until, SHM_RS_POLICY,
                                             now);
                else
                    shm_provider_set_circuit(both[x], p, SHM_CIRCUIT_CLOSED, 0, SHM_RS_ADMIN, now);
            }
        }
    }
    T_EQ_INT(agreed, admissions,
             "%u admissions in %u batches (%u admitted, %u clock steps back) agree with the "
             "same admissions one by one %s",
             admissions, batches, admitted, steps, fail);
    T_EQ_INT(stores_agree, checks,
             "after every batch the key records are byte for byte those "
             "of the admissions one by one");
    T_OK(admitted > 300 && admitted < admissions && steps > 20,
         "the workload admits and refuses and steps the clock back (%u of %u)", admitted,
         admissions);
    shm_store_close(sa);
    shm_store_close(sb);
    tu_rmdir(pa);
    tu_rmdir(pb);
}

/* More records than a batch keeps (128): the rest are judged from the map, alike. */
#define WIDE_KEYS 200
static void test_batch_wide(void)
{
    char pa[64], da[96], pb[64], db[96], why[160] = "";
    static char names[WIDE_KEYS][8];
    shm_key_spec_t sp[WIDE_KEYS];
    unsigned seed = 99;
    tu_mkdir(pa, sizeof(pa), da, sizeof(da));
    tu_mkdir(pb, sizeof(pb), db, sizeof(db));
    shm_t *sa = tu_open(da, T0), *sb = tu_open(db, T0);
    for (unsigned i = 0; i < WIDE_KEYS; i++) {
        snprintf(names[i], sizeof(names[i]), "w%03u", i);
        sp[i] = tu_spec(names[i], prov_names[i % NPROVS], 1, 0, 0, 0);
    }
    T_OK(shm_keys_sync(sa, sp, WIDE_KEYS, T0, NULL) == 0 &&
             shm_keys_sync(sb, sp, WIDE_KEYS, T0, NULL) == 0,
         "200 keys in both stores");
    static bq_t qa[40], qb[40];
    unsigned agree = 0, admitted = 0, total = 0;
    for (unsigned round = 0; round < 10; round++) {
        int64_t now = T0 + 1000 + round * 5000;
        for (unsigned j = 0; j < 40; j++) {
            bq_t *q = &qa[j];
            memset(q, 0, sizeof(*q));
            q->n = MAXC;
            for (unsigned i = 0; i < q->n; i++)
                q->names[i] = names[rnd(&seed, WIDE_KEYS)];
            q->ch.mode = (int)rnd(&seed, 3);
            qb[j] = *q;
        }
        bqs_t bs = {qa, 40};
        int rc = shm_key_batch(sa, NULL, NULL, 0, now, bq_batch_fn, &bs);
        for (unsigned j = 0; j < 40; j++) {
            shm_admit_req_t req;
            bq_req(&qb[j], &req);
            qb[j].rc = shm_key_admit(sb, &req, now, &qb[j].r, &qb[j].retry);
            total++;
            agree += rc == 0 && bq_eq(&qa[j], &qb[j], why, sizeof(why));
            admitted += qb[j].rc == 0;
        }
    }
    T_EQ_INT(agree, total, "%u admissions over 200 keys (%u admitted) agree batched and alone %s",
             total, admitted, why);
    unsigned same = 0;
    for (unsigned i = 0; i < WIDE_KEYS; i++) {
        shm_key_t a, b;
        same += shm_key_get(sa, names[i], T0 + 200000, &a) == 0 &&
                shm_key_get(sb, names[i], T0 + 200000, &b) == 0 && a.requests == b.requests &&
                a.rpm_used == b.rpm_used && a.inflight == b.inflight;
    }
    T_EQ_INT(same, WIDE_KEYS, "every one of the 200 keys counted alike");
    T_OK(admitted > 100 && admitted < total, "some admitted, some refused by rpm 1 (%u of %u)",
         admitted, total);
    shm_store_close(sa);
    shm_store_close(sb);
    tu_rmdir(pa);
    tu_rmdir(pb);
}

/* ---- calendar ------------------------------------------------------------------------------ */

static void test_calendar(void)
{
    unsigned seed = 7, bad_idx = 0, bad_start = 0, n = 0;
    /* every day from 1600 to 2500 and random instants far around */
    for (int64_t d = -135140; d < 193000; d += 1, n++) {
        int64_t ms = d * DAY_MS + (int64_t)(rand_r(&seed) % DAY_MS);
        time_t t = (time_t)shm_floordiv(ms, 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        int64_t want = ((int64_t)tm.tm_year + 1900) * 12 + tm.tm_mon;
        bad_idx += shm__month_index(ms) != want;
    }
    for (int64_t m = -12 * 3000; m < 12 * 12000; m++) {
        struct tm tm = {0};
        tm.tm_year = (int)(shm_floordiv(m, 12) - 1900);
        tm.tm_mon = (int)shm_floormod(m, 12);
        tm.tm_mday = 1;
        bad_start += shm__month_start_ms(m) != (int64_t)timegm(&tm) * 1000;
    }
    T_EQ_INT(bad_idx, 0, "month index equals gmtime_r's on %u days (1600..2500)", n);
    T_EQ_INT(bad_start, 0, "month start equals timegm's for years -3000..12000");
    T_EQ_INT(shm__month_index(-1), 1969 * 12 + 11, "1 ms before the epoch: December 1969");
    T_EQ_INT(shm__month_start_ms(2024 * 12 + 2), 1709251200000LL, "2024-03-01 00:00 UTC");
}

int main(void)
{
    test_differential();
    test_orders_missing_and_repeats();
    test_step_back_not_chosen();
    test_batch_differential();
    test_batch_wide();
    test_calendar();
    return t_done();
}
