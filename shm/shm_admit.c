/* shm_admit.c - admission: the hot path, one LMDB write transaction per request.
 *
 * Judge every candidate, let the strategy choose among the admissible ones, reserve on the
 * chosen record, put it, commit. The writer lock that LMDB holds across processes for the
 * whole transaction is what makes the limits exact.
 *
 * What it costs is mostly B-tree searches and copies, so:
 *  - candidates are visited in key order with one cursor: the next candidate is usually
 *    the next record (MDB_NEXT) or on the cursor's page, and the tree is descended about
 *    once per admission instead of once per candidate (the caller's order is kept for the
 *    strategy, skip[] and resv.index);
 *  - a candidate is judged where its record lies in the map, nothing written: only the
 *    fields judging reads are copied out (values are only 2-byte aligned, so never through
 *    a struct pointer), and a window's 61 buckets only when its head must move or an
 *    amount does not fit. What "now" does to a record (key clock, windows, day) is applied
 *    to that partial copy exactly as shm__key_to_now() would to a whole one;
 *  - only the chosen record is copied whole, brought to now and put, in place through the
 *    cursor that found it (MDB_CURRENT);
 *  - a record whose key clock stepped back is the exception: it is copied, re-based and put
 *    at once, chosen or not (see admit_fn);
 *  - in a batch (shm_key_batch), every admission runs at the batch's one "now", and nothing
 *    but the admissions themselves writes key records, so what judging read of a record
 *    stays true until an admission of the batch puts that record: the batch keeps it (a
 *    judged_t per record, found by name) and the next admissions judge from that copy
 *    without a search (from the batch's second admission on: a batch of one would only
 *    pay for keeping). The record an admission reserves on is kept as it was put; a
 *    record re-based at once is dropped. A copy whose window would not fit the cost is not
 *    used (the retry time needs the buckets, which are not kept): that candidate is read
 *    again.
 */
#include "shm/shm_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define ADMIT_PROV_CACHE 4

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* ---- what a batch keeps of the records judged ------------------------------------------- */

#define JUDGED_MAX   128 /* records kept per batch; more are judged from the map */
#define JUDGED_SLOTS 256 /* open addressing over them, a power of two */

/* The part of a key record that krec_peek copies: rpm .. last_admit_ms. */
#define KPART_OFF offsetof(shm_krec_t, rpm)
#define KPART_LEN (offsetof(shm_krec_t, created_ms) - offsetof(shm_krec_t, rpm))

/* A record as judging saw it at the batch's now (key clock, windows and day brought to it). */
typedef struct judged_s {
    size_t len;
    char name[SHM_NAME_MAX + 1];
    char part[KPART_LEN];
    int64_t req_head, tok_head; /* the windows' head_sec and total */
    uint64_t req_total, tok_total;
    uint32_t rpm, tpm; /* also in part: for judged_fits */
    uint32_t inflight;
    int prov_open;
    int valid; /* 0: dropped (an admission put the record in a way not kept) */
    int64_t eff, prov_until_eff;
} judged_t;

typedef struct judged_set_s {
    unsigned n;
    uint8_t slot[JUDGED_SLOTS]; /* index + 1 into rec, 0 free */
    judged_t rec[JUDGED_MAX];
} judged_set_t;

struct shm_batch_s {
    shm_t *s;
    MDB_txn *txn;
    int64_t now_ms;       /* resolved: one now for every admission of the batch */
    int err;              /* a failed admission step: the transaction is given up */
    MDB_cursor *cur;      /* on the keys, shared by the admissions; closed with the batch */
    judged_set_t *judged; /* allocated by the second admission (judged_failed: it could not be) */
    int judged_failed;
    unsigned admissions; /* run so far */
};

typedef struct admit_ctx_s {
    const shm_admit_req_t *req;
    shm_batch_t *batch; /* NULL outside a batch */
    const size_t *lens; /* strlen of each req->names[i] */
    int64_t now_in, now_ms;
    uint32_t slot;
    uint32_t tokens;
    shm_resv_t resv; /* out */
    int64_t retry_at;
    int result;          /* 0 or SHM_NONE */
    int client_rc;       /* SHM_ECLIENT_BUDGET or SHM_ENOTFOUND: the client was refused */
    int has_budget;      /* budget is set (the client's record was read) */
    shm_budget_t budget; /* for req->budget */
    uint8_t skip[SHM_ADMIT_MAX];
} admit_ctx_t;

/* ---- a key record judged in the map ------------------------------------------------------ */

/* A window of a partial copy: head_sec and total are in w; its buckets are in w too, or
 * still at *src in the map (then *src != NULL). */
static void win_load(shm_window_t *w, const char **src)
{
    if (*src) {
        memcpy(w->bucket, *src + offsetof(shm_window_t, bucket), sizeof(w->bucket));
        *src = NULL;
    }
}

/* shm_window_advance() on such a window. */
static void win_advance(shm_window_t *w, const char **src, int64_t sec)
{
    if (sec <= w->head_sec)
        return;
    if (sec - w->head_sec < SHM_WIN_BUCKETS)
        win_load(w, src); /* some seconds stay: their buckets are needed */
    else
        *src = NULL; /* every second leaves: advance clears all buckets */
    shm_window_advance(w, sec);
}

/* shm_window_fits() on such a window: the buckets are read only when cost does not fit. */
static int win_fits(shm_window_t *w, const char **src, uint64_t limit, uint64_t cost,
                    int64_t *retry_ms)
{
    if (w->total + (cost > limit ? limit : cost) <= limit)
        return 1;
    win_load(w, src);
    return shm_window_fits(w, limit, cost, retry_ms);
}

/* Copy out of the key record at rec what judging reads: limits, status, clocks, day and
 * the strategy's fields (rpm .. last_admit_ms), and the windows' head and total. Everything
 * else in *k stays unset (the provider is compared in place). Returns the in-flight count
 * of all owners. */
static uint32_t krec_peek(shm_krec_t *k, const char *rec, const char *src[2])
{
    const size_t a = offsetof(shm_krec_t, rpm), b = offsetof(shm_krec_t, created_ms);
    const char *in = rec + offsetof(shm_krec_t, inflight);
    uint32_t n = 0, v;
    memcpy((char *)k + a, rec + a, b - a);
    memcpy(&k->req, rec + offsetof(shm_krec_t, req), offsetof(shm_window_t, bucket));
    memcpy(&k->tok, rec + offsetof(shm_krec_t, tok), offsetof(shm_window_t, bucket));
    src[0] = rec + offsetof(shm_krec_t, req);
    src[1] = rec + offsetof(shm_krec_t, tok);
    for (unsigned i = 0; i < SHM_MAX_OWNERS; i++) { /* shm__key_inflight() */
        memcpy(&v, in + i * sizeof(v), sizeof(v));
        n += v;
    }
    return n;
}

/* 1 if the key clock of k stepped back so far from now_ms that shm__key_to_now() re-bases. */
static int clock_steps(const shm_krec_t *k, int64_t now_ms)
{
    return now_ms < k->clock_ms && k->clock_ms - now_ms > SHM_CLOCK_SKEW_MS;
}

/* shm__key_to_now() on a partial copy whose clock does not step: key clock, windows, day.
 * Returns the key clock now. */
static int64_t peek_to_now(shm_krec_t *k, const char *src[2], int64_t now_ms)
{
    int64_t eff = now_ms >= k->clock_ms ? now_ms : k->clock_ms;
    int64_t sec = shm_floordiv(eff, 1000);
    k->clock_ms = eff;
    win_advance(&k->req, &src[0], sec);
    win_advance(&k->tok, &src[1], sec);
    shm__key_day(k, eff);
    return eff;
}

/* Decide for one candidate on k, brought to now (whole, or partial with its windows'
 * buckets at src). Returns the skip reason and sets *t (key clock ms at which time-bound
 * reasons clear) and *untimed. */
static int judge(shm_krec_t *k, const char *src[2], uint32_t inflight, int64_t eff, int prov_open,
                 int64_t prov_until_eff, uint32_t tokens, uint32_t probes, int64_t *t, int *untimed)
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
        } else if (inflight >= probes) {
            SKIP(SHM_SKIP_PROBE);
            *untimed = 1;
        }
    } else if (shm__status_blocked(k->status)) {
        SKIP(SHM_SKIP_STATUS);
        *untimed = 1;
    } else if (k->status == SHM_ST_COOLING && k->cooldown_until_ms > eff) {
        SKIP(SHM_SKIP_COOLING);
        *t = max64(*t, k->cooldown_until_ms);
    } else if (k->status != SHM_ST_ACTIVE && inflight >= probes) {
        SKIP(SHM_SKIP_PROBE); /* half-open: probes at a time */
        *untimed = 1;
    }
    if (prov_open) {
        SKIP(SHM_SKIP_CIRCUIT);
        *t = max64(*t, prov_until_eff);
    }
    if (k->rpm && !win_fits(&k->req, &src[0], k->rpm, 1, &r)) {
        SKIP(SHM_SKIP_RPM);
        *t = max64(*t, r);
    }
    if (k->tpm && !win_fits(&k->tok, &src[1], k->tpm, tokens, &r)) {
        SKIP(SHM_SKIP_TPM);
        *t = max64(*t, r);
    }
    if (k->rpd && k->day_count >= k->rpd) {
        SKIP(SHM_SKIP_RPD);
        *t = max64(*t, (k->day + 1) * 86400000 + (int64_t)k->day_offset_s * 1000);
    }
    if (k->max_inflight && inflight >= k->max_inflight) {
        SKIP(SHM_SKIP_INFLIGHT);
        *untimed = 1;
    }
#undef SKIP
    return why;
}

/* ---- providers --------------------------------------------------------------------------- */

/* What admission reads of a provider: its circuit (a missing record is a closed circuit, a
 * corrupt one fails the admission). name is the provider field of a key record; cmp_len is
 * how many bytes of it decide equality with another such field, as
 * strncmp(a, b, SHM_NAME_MAX + 1) would. */
typedef struct prov_peek_s {
    char name[SHM_NAME_MAX + 1];
    size_t cmp_len;
    int open;
    int64_t open_until_ms;
} prov_peek_t;

/* name: the provider field of a checked key record (its NUL is inside the field). */
static int prov_peek(shm_t *s, MDB_txn *txn, const char *name, prov_peek_t *p)
{
    MDB_val k = {strnlen(name, SHM_NAME_MAX + 1), (void *)name}, v;
    uint16_t circuit;
    int rc = mdb_get(txn, s->dbi_prov, &k, &v);

    memcpy(p->name, name, sizeof(p->name));
    p->cmp_len = strnlen(p->name, sizeof(p->name));
    p->cmp_len += p->cmp_len < sizeof(p->name); /* and the NUL */
    p->open = 0;
    p->open_until_ms = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if ((rc = shm__rec_check(s, SHM_REC_PROV, &k, &v)) != 0)
        return rc;
    memcpy(&circuit, (char *)v.mv_data + offsetof(shm_prec_t, circuit), sizeof(circuit));
    memcpy(&p->open_until_ms, (char *)v.mv_data + offsetof(shm_prec_t, open_until_ms),
           sizeof(p->open_until_ms));
    p->open = circuit == SHM_CIRCUIT_OPEN;
    return 0;
}

/* The providers seen in this admission (candidates are usually one or two providers' keys,
 * in runs): last is where the previous candidate's was found. */
typedef struct prov_cache_s {
    prov_peek_t p[ADMIT_PROV_CACHE];
    unsigned n, last;
} prov_cache_t;

/* The provider of a key record (its provider field), from the cache or the store. */
static int prov_find(shm_t *s, MDB_txn *txn, prov_cache_t *pc, const char *provider,
                     const prov_peek_t **out)
{
    const prov_peek_t *p = &pc->p[pc->last];
    if (pc->n && memcmp(p->name, provider, p->cmp_len) == 0) {
        *out = p;
        return 0;
    }
    for (unsigned q = 0; q < pc->n; q++) {
        if (q != pc->last && memcmp(pc->p[q].name, provider, pc->p[q].cmp_len) == 0) {
            pc->last = q;
            *out = &pc->p[q];
            return 0;
        }
    }
    pc->last = pc->n < ADMIT_PROV_CACHE ? pc->n++ : 0;
    *out = &pc->p[pc->last];
    return prov_peek(s, txn, provider, &pc->p[pc->last]);
}

/* ---- visiting the candidates in key order ------------------------------------------------ */

/* The order of the keys database: LMDB's default for keys (unsigned bytes, then the
 * shorter first). It only decides the order of the visits; found or not is decided by LMDB,
 * so another order would cost searches, never change a result. */
static int keycmp(const char *a, size_t la, const char *b, size_t lb)
{
    int d = memcmp(a, b, la < lb ? la : lb);
    return d ? d : (la > lb) - (la < lb);
}

/* The order in which to visit the candidates. A run of candidates in key order costs one
 * search and then MDB_NEXT steps; a new run costs one search more. So the caller's order is
 * kept when it is a few runs (a route's candidates are its providers' keys, each provider's
 * in configuration order, which is often key order); otherwise the candidates are sorted
 * (a binary insertion sort), which costs comparisons instead of searches. */
#define ADMIT_RUNS_KEPT 4

static void visit_order(const char *const *names, const size_t *lens, unsigned n, uint8_t *ord)
{
    unsigned runs = 1;
    for (unsigned i = 0; i < n; i++)
        ord[i] = (uint8_t)i;
    for (unsigned i = 1; i < n && runs <= ADMIT_RUNS_KEPT; i++)
        runs += keycmp(names[i], lens[i], names[i - 1], lens[i - 1]) < 0;
    if (runs <= ADMIT_RUNS_KEPT)
        return;
    for (unsigned i = 1; i < n; i++) {
        unsigned lo = 0, hi = i - 1;
        if (keycmp(names[i], lens[i], names[ord[hi]], lens[ord[hi]]) >= 0)
            continue;     /* ord[i] == i already */
        while (lo < hi) { /* names[i] sorts before ord[i - 1]: its place is in [0, i - 1] */
            unsigned mid = (lo + hi) / 2;
            if (keycmp(names[i], lens[i], names[ord[mid]], lens[ord[mid]]) >= 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        memmove(&ord[lo + 1], &ord[lo], i - lo);
        ord[lo] = (uint8_t)i;
    }
}

/* Position cur on key and read its record into *cv: 0, MDB_NOTFOUND, or an LMDB code. When
 * cur stands on the candidate visited before (*on), the next record is tried first: a
 * candidate that is its neighbour in key order costs no search. */
static int seek(MDB_cursor *cur, const MDB_val *key, MDB_val *cv, int *on)
{
    MDB_val ck;
    int rc;
    if (*on) {
        rc = mdb_cursor_get(cur, &ck, cv, MDB_NEXT);
        if (rc == 0 && ck.mv_size == key->mv_size &&
            memcmp(ck.mv_data, key->mv_data, key->mv_size) == 0)
            return 0;
        if (rc != 0 && rc != MDB_NOTFOUND)
            return rc;
    }
    ck = *key;
    rc = mdb_cursor_get(cur, &ck, cv, MDB_SET_KEY);
    *on = rc == 0;
    return rc;
}

/* ---- the records a batch keeps ----------------------------------------------------------- */

/* A hash of a name for the set's slots: its first and last 8 bytes and its length (names of
 * 8 bytes and more; shorter ones byte by byte). Names that differ only in between collide;
 * the slot search compares whole names, so a collision costs a step, never a wrong record. */
static uint32_t name_hash(const char *name, size_t len)
{
    uint64_t a = len, b = 0;
    if (len >= 8) {
        memcpy(&a, name, 8);
        memcpy(&b, name + len - 8, 8);
        b ^= len;
    } else {
        for (size_t i = 0; i < len; i++)
            a = a << 8 | (uint8_t)name[i];
    }
    uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + (b >> 29)) * 0xc2b2ae3d27d4eb4full;
    return (uint32_t)(h >> 32 ^ h);
}

/* The slot of name: the one that holds it, or the free one where it would go. There is
 * always a free slot (JUDGED_MAX < JUDGED_SLOTS), and a record is never removed, only
 * marked not valid, so a search ends at the first free slot. */
static uint8_t *judged_slot(judged_set_t *js, const char *name, size_t len)
{
    uint32_t h = name_hash(name, len);
    for (;;) {
        uint8_t *sl = &js->slot[h++ & (JUDGED_SLOTS - 1)];
        if (*sl == 0)
            return sl;
        const judged_t *j = &js->rec[*sl - 1];
        if (j->len == len && memcmp(j->name, name, len) == 0)
            return sl;
    }
}

static judged_t *judged_get(judged_set_t *js, const char *name, size_t len)
{
    uint8_t *sl = judged_slot(js, name, len);
    return *sl && js->rec[*sl - 1].valid ? &js->rec[*sl - 1] : NULL;
}

/* Where to keep name's record (NULL: the set is full). */
static judged_t *judged_at(judged_set_t *js, const char *name, size_t len)
{
    uint8_t *sl = judged_slot(js, name, len);
    if (*sl)
        return &js->rec[*sl - 1];
    if (js->n == JUDGED_MAX)
        return NULL;
    judged_t *j = &js->rec[js->n++];
    *sl = (uint8_t)js->n;
    j->len = len;
    memcpy(j->name, name, len);
    return j;
}

static void judged_drop(judged_set_t *js, const char *name, size_t len)
{
    uint8_t *sl = judged_slot(js, name, len);
    if (*sl)
        js->rec[*sl - 1].valid = 0;
}

/* Keep k as judging reads it (brought to the batch's now). */
static void judged_save(judged_set_t *js, const char *name, size_t len, const shm_krec_t *k,
                        uint32_t inflight, int64_t eff, int prov_open, int64_t prov_until_eff)
{
    judged_t *j = judged_at(js, name, len);
    if (!j)
        return;
    memcpy(j->part, (const char *)k + KPART_OFF, KPART_LEN);
    j->req_head = k->req.head_sec;
    j->req_total = k->req.total;
    j->tok_head = k->tok.head_sec;
    j->tok_total = k->tok.total;
    j->rpm = k->rpm;
    j->tpm = k->tpm;
    j->inflight = inflight;
    j->eff = eff;
    j->prov_open = prov_open;
    j->prov_until_eff = prov_until_eff;
    j->valid = 1;
}

/* 1 if judging j's record for tokens can do without the windows' buckets (not kept): the
 * windows fit, so no retry time is needed from them. */
static int judged_fits(const judged_t *j, uint32_t tokens)
{
    return (!j->rpm || j->req_total + 1 <= j->rpm) &&
           (!j->tpm || j->tok_total + (tokens > j->tpm ? j->tpm : tokens) <= j->tpm);
}

/* The partial copy of j's record in k, as krec_peek and peek_to_now would have made it. */
static void judged_load(const judged_t *j, shm_krec_t *k)
{
    memcpy((char *)k + KPART_OFF, j->part, KPART_LEN);
    k->req.head_sec = j->req_head;
    k->req.total = j->req_total;
    k->tok.head_sec = j->tok_head;
    k->tok.total = j->tok_total;
}

/* The batch's set (NULL: none, judge from the map). A batch of one admission, the usual
 * one on a quiet server, would only pay for keeping records, so the set starts with the
 * second admission. */
static judged_set_t *batch_judged(shm_batch_t *b)
{
    if (b->admissions++ == 0)
        return NULL;
    if (!b->judged && !b->judged_failed) {
        b->judged = malloc(sizeof(*b->judged));
        if (b->judged) {
            b->judged->n = 0;
            memset(b->judged->slot, 0, sizeof(b->judged->slot));
        } else {
            b->judged_failed = 1;
        }
    }
    return b->judged;
}

/* ---- the admission transaction ------------------------------------------------------------ */

static int admit_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    admit_ctx_t *c = arg;
    const shm_admit_req_t *req = c->req;
    const unsigned n = req->count;
    const uint32_t probes = req->half_open_probes ? req->half_open_probes : 1;
    shm_batch_t *b = c->batch;
    judged_set_t *js = b ? batch_judged(b) : NULL;
    /* by position in names where skip is NONE; then the admissible ones, in that order */
    shm_candidate_t cands[SHM_ADMIT_MAX];
    uint8_t ord[SHM_ADMIT_MAX];
    const judged_t *jp[SHM_ADMIT_MAX]; /* kept by the batch and usable, else NULL */
    int64_t prov_left[SHM_ADMIT_MAX];  /* circuit open: ms until it may close, else INT64_MIN */
    prov_cache_t provs = {.n = 0, .last = 0};
    unsigned nc = 0;
    int64_t best = 0, stepped;
    int dirty = 0, on = 0, rc;
    MDB_cursor *cur = NULL, *ccur = NULL;
    MDB_val cv;
    shm_krec_t k;
    shm_crec_t client;
    shm_lease_ask_t client_ask;

    c->retry_at = 0;
    c->client_rc = 0;
    c->has_budget = 0;
    c->now_ms = shm__now(s, c->now_in); /* SHM_NOW: read under the writer lock */
    /* The client's budgets first: over one, no key is judged and only the refusal is
     * written (counted in the client's usage, shm_usage.h). */
    if (req->client) {
        if (s->has_clients && (rc = mdb_cursor_open(txn, s->dbi_clients, &ccur)) != 0)
            goto out;
        rc = shm__client_admit(s, ccur, req, c->now_ms, &client, &c->retry_at);
        if (rc == 0 || rc == SHM_ECLIENT_BUDGET) {
            shm__client_budget(&client, c->now_ms, &c->budget);
            c->has_budget = 1;
        }
        if (rc == SHM_ECLIENT_BUDGET || rc == MDB_NOTFOUND) {
            c->client_rc = rc == MDB_NOTFOUND ? SHM_ENOTFOUND : rc;
            memset(c->skip, SHM_SKIP_CLIENT, n);
            c->result = SHM_NONE;
            /* a refusal by its own limits is counted in the client's usage: then commit */
            if (rc == MDB_NOTFOUND)
                rc = SHM_NONE;
            else
                rc = shm__usage_refused(s, txn, req->client, req->model, c->now_ms);
            goto out;
        }
        if (rc != 0)
            goto out;
        if (client.flags & SHM_CF_CLUSTER) {
            /* cluster mode: its lease must allow it too (taken when a key is reserved) */
            shm__client_lease_ask(&client, req, &client_ask);
            rc = shm__lease_admit(s, txn, SHM_LK_CLIENT, client.name,
                                  strnlen(client.name, sizeof(client.name)), &client_ask, 0,
                                  c->now_ms, &c->retry_at);
            if (rc == SHM_NONE) {
                memset(c->skip, SHM_SKIP_LEASE, n);
                c->result = SHM_NONE;
                rc = 0; /* commit: the lease was stamped starved */
                goto out;
            }
            if (rc != 0)
                goto out;
        }
    }
    if (b) {
        if (!b->cur && (rc = mdb_cursor_open(txn, s->dbi_keys, &b->cur)) != 0)
            goto out;
        cur = b->cur;
    } else if ((rc = mdb_cursor_open(txn, s->dbi_keys, &cur)) != 0) {
        goto out;
    }
    /* The candidates this batch has kept (judged from the copy, in any order), the others
     * from the map in key order. A name given twice is judged twice, as any other: the
     * second time finds the record as the first left it (re-based, if it was). */
    unsigned nkept = 0;
    for (unsigned i = 0; i < n; i++) {
        jp[i] = js && js->n ? judged_get(js, req->names[i], c->lens[i]) : NULL;
        if (jp[i] && !judged_fits(jp[i], c->tokens))
            jp[i] = NULL;
        nkept += jp[i] != NULL;
    }
    if (nkept < n)
        visit_order(req->names, c->lens, n, ord);
    for (unsigned o = 0; o < n; o++) {
        unsigned i = nkept < n ? ord[o] : o;
        const char *src[2] = {NULL, NULL};
        uint32_t inflight;
        int64_t eff, prov_until_eff;
        int prov_open;
        if (jp[i] && !jp[i]->valid) /* dropped by a re-base above (a record not under its name) */
            jp[i] = NULL;
        if (jp[i]) {
            judged_load(jp[i], &k);
            inflight = jp[i]->inflight;
            eff = jp[i]->eff;
            prov_open = jp[i]->prov_open;
            prov_until_eff = jp[i]->prov_until_eff;
        } else {
            MDB_val key = {c->lens[i], (void *)req->names[i]};
            c->skip[i] = SHM_SKIP_UNKNOWN;
            rc = seek(cur, &key, &cv, &on);
            if (rc == MDB_NOTFOUND)
                continue;
            if (rc != 0)
                goto out;
            /* a record we cannot read fails the admission: skipping it would hide it */
            if ((rc = shm__rec_check(s, SHM_REC_KEY, &key, &cv)) != 0)
                goto out;
            inflight = krec_peek(&k, cv.mv_data, src);
            /* the provider field, read in place (the map does not move before the next put) */
            const char *pname = (const char *)cv.mv_data + offsetof(shm_krec_t, provider);
            int keep = js != NULL;
            if (!clock_steps(&k, c->now_ms)) {
                eff = peek_to_now(&k, src, c->now_ms);
            } else {
                /* A re-base is kept whether or not this key is admitted: repeating it from
                 * the old key clock on every call would keep the window full forever. The
                 * cursor stays on the record. */
                memcpy(&k, cv.mv_data, sizeof(k));
                eff = shm__key_to_now(&k, c->now_ms, &stepped);
                src[0] = src[1] = NULL;
                pname = k.provider;
                if ((rc = shm__cur_put(cur, s->dbi_keys, &key, k.name, &k, sizeof(k))) != 0 ||
                    (rc = shm__hist_add(s, txn, k.name, SHM_EV_CLOCK, &k, stepped, "admission",
                                        c->now_ms)) != 0)
                    goto out;
                dirty = 1;
                if (js) { /* rare: not kept (put under k.name, which may not be this name) */
                    judged_drop(js, key.mv_data, key.mv_size);
                    judged_drop(js, k.name, strnlen(k.name, sizeof(k.name)));
                    keep = 0;
                }
            }
            const prov_peek_t *prov;
            if ((rc = prov_find(s, txn, &provs, pname, &prov)) != 0)
                goto out;
            prov_open = prov->open && prov->open_until_ms > c->now_ms;
            prov_until_eff = eff + (prov->open_until_ms - c->now_ms);
            if (keep) /* before judging, which may load buckets into k: they are not kept */
                judged_save(js, key.mv_data, key.mv_size, &k, inflight, eff, prov_open,
                            prov_until_eff);
        }
        prov_left[i] = prov_open ? prov_until_eff - eff : INT64_MIN;
        int64_t t;
        int untimed;
        int why = judge(&k, src, inflight, eff, prov_open, prov_until_eff, c->tokens, probes, &t,
                        &untimed);
        c->skip[i] = (uint8_t)why;
        if (why) {
            if (!untimed) {
                int64_t when = c->now_ms + (t > eff ? t - eff : 1);
                best = best == 0 || when < best ? when : best;
            }
            continue;
        }
        shm_candidate_t *cd = &cands[i];
        cd->index = i;
        cd->status = k.status == SHM_ST_ACTIVE ? SHM_ST_ACTIVE : SHM_ST_HALF_OPEN;
        cd->weight = k.weight;
        cd->inflight = inflight;
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
    /* the strategy sees the admissible candidates in the caller's order */
    for (unsigned i = 0; i < n; i++) {
        if (c->skip[i] != SHM_SKIP_NONE)
            continue;
        if (nc != i)
            cands[nc] = cands[i];
        nc++;
    }
    /* SHM_NONE is a result, not a failure: commit (nearly free without writes) so that a
     * re-base above is kept. */
    int pick = -1;
    unsigned idx;
    const char *name;
    MDB_val key, ck;
    int64_t eff;
    for (;;) {
        pick = -1;
        if (nc == 0)
            c->retry_at = best;
        else
            pick = req->choose ? req->choose(req->choose_arg, cands, nc) : 0;
        if (pick < 0 || (unsigned)pick >= nc) {
            c->result = SHM_NONE;
            rc = dirty ? 0 : SHM_NONE;
            goto out;
        }
        idx = cands[pick].index;
        name = req->names[idx];
        key = (MDB_val){c->lens[idx], (void *)name};

        /* Reserve on the chosen record, brought to now (already re-based if it stepped). */
        ck = key;
        if ((rc = mdb_cursor_get(cur, &ck, &cv, MDB_SET_KEY)) != 0 ||
            (rc = shm__rec_check(s, SHM_REC_KEY, &key, &cv)) != 0)
            goto out;
        memcpy(&k, cv.mv_data, sizeof(k));
        eff = shm__key_to_now(&k, c->now_ms, &stepped);
        if (!(k.flags & SHM_KF_CLUSTER))
            break;
        /* Cluster mode: the key's lease must allow it as well (shm_lease.h). Refused: the
         * strategy chooses again among the others. */
        int64_t lr = 0;
        shm_lease_ask_t ask;
        memset(&ask, 0, sizeof(ask));
        ask.limit[SHM_LD_RPM] = k.rpm;
        ask.used[SHM_LD_RPM] = k.req.total;
        ask.cost[SHM_LD_RPM] = 1;
        ask.limit[SHM_LD_TPM] = k.tpm;
        ask.used[SHM_LD_TPM] = k.tok.total;
        ask.cost[SHM_LD_TPM] = k.tpm && c->tokens > k.tpm ? k.tpm : c->tokens;
        ask.limit[SHM_LD_RPD] = k.rpd;
        ask.used[SHM_LD_RPD] = k.day_count;
        ask.cost[SHM_LD_RPD] = 1;
        rc = shm__lease_admit(s, txn, SHM_LK_KEY, name, key.mv_size, &ask, 1, c->now_ms, &lr);
        if (rc == 0) {
            /* the lease put may have moved the cursor's page: find the record again */
            ck = key;
            if ((rc = mdb_cursor_get(cur, &ck, &cv, MDB_SET_KEY)) != 0)
                goto out;
            break;
        }
        if (rc != SHM_NONE)
            goto out;
        dirty = 1; /* the lease was stamped starved */
        c->skip[idx] = SHM_SKIP_LEASE;
        best = best == 0 || lr < best ? lr : best;
        memmove(&cands[pick], &cands[pick + 1], (nc - (unsigned)pick - 1) * sizeof(cands[0]));
        nc--; /* the others keep the caller's order */
    }
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
            goto out;
    }
    if ((rc = shm__cur_put(cur, s->dbi_keys, &key, k.name, &k, sizeof(k))) != 0)
        goto out;
    if (js) {
        /* what the next admissions of the batch see of it is what was put */
        size_t nlen = strnlen(k.name, sizeof(k.name));
        if (nlen == key.mv_size && memcmp(k.name, name, nlen) == 0) {
            int popen = prov_left[idx] != INT64_MIN;
            judged_save(js, name, nlen, &k, shm__key_inflight(&k), eff, popen,
                        popen ? eff + prov_left[idx] : eff);
        } else { /* put under k.name: neither is kept */
            judged_drop(js, name, key.mv_size);
            judged_drop(js, k.name, nlen);
        }
    }
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
    if (req->model) { /* for the usage rows and the history (shm_stats.h) */
        size_t ml = strnlen(req->model, SHM_NAME_MAX);
        memcpy(r->model, req->model, ml);
        r->model[ml] = '\0';
    }
    if (req->client && (client.flags & SHM_CF_CLUSTER)) {
        /* find the client's record again for the put through ccur (the lease puts came
         * between), then take from its lease what it was judged against above */
        MDB_val cq = {strnlen(client.name, sizeof(client.name)), client.name}, cvv;
        int64_t lr;
        if ((rc = mdb_cursor_get(ccur, &cq, &cvv, MDB_SET_KEY)) != 0 ||
            (rc = shm__lease_admit(s, txn, SHM_LK_CLIENT, client.name, cq.mv_size, &client_ask, 1,
                                   c->now_ms, &lr)) != 0)
            goto out; /* SHM_NONE cannot be: it fitted in this transaction */
        cq = (MDB_val){strnlen(client.name, sizeof(client.name)), client.name};
        if ((rc = mdb_cursor_get(ccur, &cq, &cvv, MDB_SET_KEY)) != 0)
            goto out;
    }
    if (req->client && (rc = shm__client_reserve(s, ccur, &client, req, r)) != 0)
        goto out;
    if (req->client)
        shm__client_budget(&client, c->now_ms, &c->budget);
    c->result = 0;
    rc = 0;
out:
    /* closed here on every path: an aborted write transaction would not free them twice (a
     * batch's cursor is closed with the batch) */
    if (cur && !b)
        mdb_cursor_close(cur);
    if (ccur)
        mdb_cursor_close(ccur);
    return rc;
}

/* Checks an admission request and makes sure this process has its owner slot; fills c. */
static int admit_prepare(shm_t *s, const shm_admit_req_t *req, int64_t now_ms, size_t *lens,
                         admit_ctx_t *c)
{
    if (!s || !req || !req->names || req->count == 0 || req->count > SHM_ADMIT_MAX)
        return SHM_EINVAL;
    for (unsigned i = 0; i < req->count; i++) {
        lens[i] = req->names[i] ? strlen(req->names[i]) : 0;
        if (lens[i] == 0 || lens[i] > SHM_NAME_MAX)
            return SHM_EINVAL;
    }
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
    memset(c, 0, sizeof(*c));
    c->req = req;
    c->lens = lens;
    c->now_in = now_ms;
    c->slot = (uint32_t)slot;
    c->tokens = req->tokens;
    c->result = SHM_NONE;
    return 0;
}

/* The caller's view of an admission that ran (rc: the transaction's result). */
static int admit_finish(const admit_ctx_t *c, int rc, shm_resv_t *resv, int64_t *retry_at_ms)
{
    const shm_admit_req_t *req = c->req;

    if (rc == 0)
        rc = c->result;
    if (rc == SHM_NONE && c->client_rc)
        rc = c->client_rc;
    if (req->skip)
        memcpy(req->skip, c->skip, req->count);
    if (req->budget && c->has_budget && (rc == 0 || rc == SHM_NONE || rc == SHM_ECLIENT_BUDGET))
        *req->budget = c->budget;
    if (rc == 0)
        *resv = c->resv;
    else if ((rc == SHM_NONE || rc == SHM_ECLIENT_BUDGET) && retry_at_ms)
        *retry_at_ms = c->retry_at;
    return rc;
}

int shm_key_admit(shm_t *s, const shm_admit_req_t *req, int64_t now_ms, shm_resv_t *resv,
                  int64_t *retry_at_ms)
{
    size_t lens[SHM_ADMIT_MAX];
    admit_ctx_t c;

    if (retry_at_ms)
        *retry_at_ms = 0;
    if (!resv)
        return SHM_EINVAL;
    int rc = admit_prepare(s, req, now_ms, lens, &c);
    if (rc != 0)
        return rc;
    return admit_finish(&c, shm__write(s, admit_fn, &c), resv, retry_at_ms);
}

/* shm_key_record_admit is a batch of one admission. */
typedef struct one_admit_s {
    const shm_admit_req_t *req;
    shm_resv_t *resv;
    int64_t *retry_at_ms;
    int rc;
} one_admit_t;

static int one_admit_fn(shm_batch_t *b, void *arg)
{
    one_admit_t *a = arg;
    a->rc = shm_batch_admit(b, a->req, a->resv, a->retry_at_ms);
    return 0; /* a failed step is kept by the batch itself */
}

int shm_key_record_admit(shm_t *s, shm_resv_t *const *rresv, const shm_outcome_t *o, unsigned n,
                         const shm_admit_req_t *req, int64_t now_ms, shm_resv_t *resv,
                         int64_t *retry_at_ms, int *recorded)
{
    size_t lens[SHM_ADMIT_MAX];
    admit_ctx_t check;
    int rc;

    if (recorded)
        *recorded = 0;
    if (retry_at_ms)
        *retry_at_ms = 0;
    if (!resv || !recorded)
        return SHM_EINVAL;
    if (n == 0)
        return shm_key_admit(s, req, now_ms, resv, retry_at_ms);
    /* a bad request is refused before anything is written (and the owner slot ensured) */
    if ((rc = shm__record_check(s, rresv, o, n)) != 0 ||
        (rc = admit_prepare(s, req, now_ms, lens, &check)) != 0)
        return rc;
    one_admit_t a = {.req = req, .resv = resv, .retry_at_ms = retry_at_ms, .rc = SHM_NONE};
    rc = shm_key_batch(s, rresv, o, n, now_ms, one_admit_fn, &a);
    if (rc != 0)
        return rc;
    *recorded = 1;
    return a.rc;
}

/* ---- batches: outcomes and any number of admissions in one transaction ---------------- */

typedef struct batch_ctx_s {
    shm_rec_ctx_t rec;
    shm_batch_fn fn;
    void *arg;
    int64_t now_ms;
} batch_ctx_t;

static int batch_txn_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    batch_ctx_t *c = arg;
    /* one now for the whole transaction: the outcomes and every admission */
    int64_t now = shm__now(s, c->now_ms);
    shm_batch_t b = {.s = s, .txn = txn, .now_ms = now};
    int rc;

    c->rec.now_ms = now;
    if (c->rec.n && (rc = shm__record_fn(s, txn, &c->rec)) != 0)
        return rc;
    rc = c->fn(&b, c->arg);
    if (b.cur)
        mdb_cursor_close(b.cur);
    free(b.judged);
    return b.err ? b.err : rc;
}

int shm_batch_admit(shm_batch_t *b, const shm_admit_req_t *req, shm_resv_t *resv,
                    int64_t *retry_at_ms)
{
    size_t lens[SHM_ADMIT_MAX];
    admit_ctx_t c;

    if (retry_at_ms)
        *retry_at_ms = 0;
    if (!b || !resv)
        return SHM_EINVAL;
    if (b->err)
        return b->err;
    /* the owner slot was ensured before the transaction: never a write of its own here */
    if (__atomic_load_n(&b->s->slot, __ATOMIC_ACQUIRE) < 0)
        return SHM_ESTALE;
    int rc = admit_prepare(b->s, req, b->now_ms, lens, &c);
    if (rc != 0)
        return rc;
    c.batch = b;
    rc = admit_fn(b->s, b->txn, &c);
    if (rc == SHM_NONE)
        rc = 0; /* nothing admissible is a result; nothing was written */
    if (rc != 0) {
        b->err = rc;
        return rc;
    }
    return admit_finish(&c, 0, resv, retry_at_ms);
}

int shm_key_batch(shm_t *s, shm_resv_t *const *rresv, const shm_outcome_t *o, unsigned n,
                  int64_t now_ms, shm_batch_fn fn, void *arg)
{
    int rc;

    if (!s || !fn)
        return SHM_EINVAL;
    if (n && (rc = shm__record_check(s, rresv, o, n)) != 0)
        return rc;
    if (s->readonly)
        return SHM_ERDONLY;
    if (__atomic_load_n(&s->slot, __ATOMIC_ACQUIRE) < 0 &&
        (rc = shm__owner_ensure(s, shm__now(s, now_ms))) != 0)
        return rc;
    batch_ctx_t c = {.rec = {.resv = rresv, .o = o, .n = n, .now_ms = now_ms},
                     .fn = fn,
                     .arg = arg,
                     .now_ms = now_ms};
    rc = shm__write(s, batch_txn_fn, &c);
    if (rc == 0)
        for (unsigned i = 0; i < n; i++)
            rresv[i]->live = 0;
    return rc;
}
