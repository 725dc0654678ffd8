/* shm_client.c - client budgets: the gateway's own API keys' request and spend limits.
 *
 * A client record lives in the "clients" database, keyed by the client's configured name.
 * Its budgets are checked and reserved inside shm_key_admit()'s write transaction (so they
 * are exact across threads and processes, like a key's limits) and reconciled inside the
 * record/release transaction of the key reservation that carries the client's name.
 *
 * Windows and calendars. RPM is a rolling 60 s window (shm_window, as for keys). RPD,
 * tokens_per_day and cost_per_day count per UTC day; tokens_per_month and cost_per_month per
 * UTC calendar month. The client has its own clock (the highest now seen; a step back up
 * to SHM_CLOCK_SKEW_MS counts as now, a larger one moves the window back with it), and a
 * day or month index never makes a count start afresh by going back.
 *
 * Tokens and cost are reserved at admission from the caller's estimate, clamped to the
 * smallest budget of its kind (an oversized request passes while the budget is unspent),
 * and reconciled to the real usage when the outcome is recorded. A request is admitted
 * while used + reserved <= budget; real usage above the estimate can take a day or month
 * past its budget by at most that request's underestimate, and then nothing more is
 * admitted until it resets. The outcome classes in which the upstream did not serve the
 * request (429, 5xx, timeout, connect, auth) give the client's reservation back entirely:
 * the proxy then retries (admitted afresh) or answers an error, and the client is charged
 * for neither.
 */
#include "shm/shm_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"

#define DAY_MS 86400000LL

/* ---- calendar -------------------------------------------------------------------------- */

static int64_t day_index(int64_t ms)
{
    return shm_floordiv(ms, DAY_MS);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's civil-date
 * algorithms). Valid far beyond CAL_MAX_DAYS. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

/* Beyond a million years either way the libc functions decide, as they always did. */
#define CAL_MAX_DAYS (1000000LL * 366)

/* Months since year 0 (UTC): year * 12 + month - 1. gmtime_r() costs some hundred
 * instructions and runs twice per request (admission and outcome): integer arithmetic. */
int64_t shm__month_index(int64_t ms)
{
    int64_t days = shm_floordiv(ms, DAY_MS), y, m;

    if (days > -CAL_MAX_DAYS && days < CAL_MAX_DAYS) {
        civil_from_days(days, &y, &m);
        return y * 12 + m - 1;
    }
    time_t t = (time_t)shm_floordiv(ms, 1000);
    struct tm tm;

    if (!gmtime_r(&t, &tm))
        return 0;
    return ((int64_t)tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* Wall-clock ms at which month index m starts. */
int64_t shm__month_start_ms(int64_t m)
{
    int64_t y = shm_floordiv(m, 12);

    if (y > -1000000 && y < 1000000)
        return days_from_civil(y, shm_floormod(m, 12) + 1, 1) * DAY_MS;
    struct tm tm = {0};

    tm.tm_year = (int)(y - 1900);
    tm.tm_mon = (int)shm_floormod(m, 12);
    tm.tm_mday = 1;
    return (int64_t)timegm(&tm) * 1000;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static uint64_t sub_floor(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* ---- records ------------------------------------------------------------------------- */

static void copy_name(char *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    memcpy(dst, src, strnlen(src, size - 1));
}

/* 0, MDB_NOTFOUND, SHM_ECORRUPT (shm__rec_check) or an LMDB code. */
static int crec_get(shm_t *s, MDB_txn *txn, const char *name, shm_crec_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc;

    if (!s->has_clients)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, s->dbi_clients, &k, &v)) != 0 ||
        (rc = shm__rec_check(s, SHM_REC_CLIENT, &k, &v)) != 0)
        return rc;
    memcpy(out, v.mv_data, sizeof(*out));
    return 0;
}

static int crec_put(shm_t *s, MDB_txn *txn, const shm_crec_t *c)
{
    MDB_val k = {strnlen(c->name, SHM_NAME_MAX), (void *)c->name}, v = {sizeof(*c), (void *)c};
    return mdb_put(txn, s->dbi_clients, &k, &v, 0);
}

int shm__crec_get(shm_t *s, MDB_txn *txn, const char *name, shm_crec_t *out)
{
    return crec_get(s, txn, name, out);
}

int shm__crec_put(shm_t *s, MDB_txn *txn, const shm_crec_t *c)
{
    return crec_put(s, txn, c);
}

/* crec_get through cur (NULL: no clients database), which is left on the record. */
static int crec_cur_get(shm_t *s, MDB_cursor *cur, const char *name, shm_crec_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc;

    if (!s->has_clients || !cur)
        return MDB_NOTFOUND;
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY)) != 0 ||
        (rc = shm__rec_check(s, SHM_REC_CLIENT, &k, &v)) != 0)
        return rc;
    memcpy(out, v.mv_data, sizeof(*out));
    return 0;
}

/* crec_put of c, read by crec_cur_get(s, cur, name): overwritten where cur stands when the
 * record's own name is name (always, but for a damaged record). */
static int crec_cur_put(shm_t *s, MDB_cursor *cur, const char *name, const shm_crec_t *c)
{
    MDB_val k = {strnlen(c->name, SHM_NAME_MAX), (void *)c->name}, v = {sizeof(*c), (void *)c};

    if (k.mv_size == strlen(name) && memcmp(k.mv_data, name, k.mv_size) == 0)
        return mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
    return crec_put(s, mdb_cursor_txn(cur), c);
}

/* Bring c to now: client clock, window, day and month. Returns the client clock now. */
static int64_t crec_to_now(shm_crec_t *c, int64_t now_ms)
{
    int64_t eff = now_ms;

    if (now_ms < c->clock_ms) {
        int64_t back = c->clock_ms - now_ms;
        if (back <= SHM_CLOCK_SKEW_MS) {
            eff = c->clock_ms;
        } else {
            shm_window_shift(&c->req, shm_floordiv(now_ms, 1000) - shm_floordiv(c->clock_ms, 1000));
            c->clock_ms = now_ms;
        }
    } else {
        c->clock_ms = now_ms;
    }
    shm_window_advance(&c->req, shm_floordiv(eff, 1000));
    int64_t d = day_index(eff), m = shm__month_index(eff);
    if (d > c->day) {
        c->day_requests = 0;
        c->day_tokens = c->day_cost = 0;
    }
    c->day = d; /* back: the count is kept, never more than the budget */
    if (m > c->month)
        c->month_tokens = c->month_cost = 0;
    c->month = m;
    return eff;
}

/* What a reservation takes of a budget kind: the estimate clamped to the smallest budget. */
static uint64_t clamp_want(uint64_t want, uint64_t a, uint64_t b)
{
    if (a && want > a)
        want = a;
    if (b && want > b)
        want = b;
    return want;
}

static int budget_fits(uint64_t used, uint64_t limit, uint64_t want)
{
    return limit == 0 || (used < limit && want <= limit - used);
}

/* ---- admission (inside shm_key_admit's transaction) ----------------------------------- */

int shm__client_admit(shm_t *s, MDB_cursor *cur, const shm_admit_req_t *req, int64_t now_ms,
                      shm_crec_t *c, int64_t *retry_at)
{
    int rc = crec_cur_get(s, cur, req->client, c);
    int64_t t = 0, r;
    int over = 0;

    *retry_at = 0;
    if (rc != 0)
        return rc; /* a corrupt record is not an unknown client: SHM_ECORRUPT */
    if (c->flags & SHM_CF_ORPHANED)
        return MDB_NOTFOUND;
    int64_t eff = crec_to_now(c, now_ms);
    uint64_t tok = clamp_want(req->tokens, c->tok_day_max, c->tok_month_max);
    uint64_t cost = clamp_want(req->cost_micro_usd, c->cost_day_max, c->cost_month_max);
    int64_t next_day = (c->day + 1) * DAY_MS, next_month = shm__month_start_ms(c->month + 1);

    if (c->rpm && !shm_window_fits(&c->req, c->rpm, 1, &r)) {
        over = 1;
        t = max64(t, r);
    }
    if (c->rpd && c->day_requests >= c->rpd) {
        over = 1;
        t = max64(t, next_day);
    }
    if (!budget_fits(c->day_tokens, c->tok_day_max, tok) ||
        !budget_fits(c->day_cost, c->cost_day_max, cost)) {
        over = 1;
        t = max64(t, next_day);
    }
    if (!budget_fits(c->month_tokens, c->tok_month_max, tok) ||
        !budget_fits(c->month_cost, c->cost_month_max, cost)) {
        over = 1;
        t = max64(t, next_month);
    }
    if (!over)
        return 0;
    *retry_at = now_ms + (t > eff ? t - eff : 1);
    return SHM_ECLIENT_BUDGET;
}

void shm__client_lease_ask(const shm_crec_t *c, const shm_admit_req_t *req, shm_lease_ask_t *a)
{
    uint64_t tok = clamp_want(req->tokens, c->tok_day_max, c->tok_month_max);
    uint64_t cost = clamp_want(req->cost_micro_usd, c->cost_day_max, c->cost_month_max);
    memset(a, 0, sizeof(*a));
    a->limit[SHM_LD_RPM] = c->rpm;
    a->used[SHM_LD_RPM] = c->req.total;
    a->cost[SHM_LD_RPM] = 1;
    a->limit[SHM_LD_RPD] = c->rpd;
    a->used[SHM_LD_RPD] = c->day_requests;
    a->cost[SHM_LD_RPD] = 1;
    a->limit[SHM_LD_TOK_DAY] = c->tok_day_max;
    a->used[SHM_LD_TOK_DAY] = c->day_tokens;
    a->cost[SHM_LD_TOK_DAY] = tok;
    a->limit[SHM_LD_TOK_MONTH] = c->tok_month_max;
    a->used[SHM_LD_TOK_MONTH] = c->month_tokens;
    a->cost[SHM_LD_TOK_MONTH] = tok;
    a->limit[SHM_LD_COST_DAY] = c->cost_day_max;
    a->used[SHM_LD_COST_DAY] = c->day_cost;
    a->cost[SHM_LD_COST_DAY] = cost;
    a->limit[SHM_LD_COST_MONTH] = c->cost_month_max;
    a->used[SHM_LD_COST_MONTH] = c->month_cost;
    a->cost[SHM_LD_COST_MONTH] = cost;
}

int shm__client_reserve(shm_t *s, MDB_cursor *cur, shm_crec_t *c, const shm_admit_req_t *req,
                        shm_resv_t *r)
{
    uint64_t tok = clamp_want(req->tokens, c->tok_day_max, c->tok_month_max);
    uint64_t cost = clamp_want(req->cost_micro_usd, c->cost_day_max, c->cost_month_max);
    int64_t eff = c->clock_ms > r->admitted_ms ? c->clock_ms : r->admitted_ms;

    shm_window_add(&c->req, 1);
    c->day_requests++;
    c->day_tokens = add_sat(c->day_tokens, tok);
    c->month_tokens = add_sat(c->month_tokens, tok);
    c->day_cost = add_sat(c->day_cost, cost);
    c->month_cost = add_sat(c->month_cost, cost);
    c->requests++;
    c->last_admit_ms = eff;
    c->updated_ms = r->admitted_ms;
    memcpy(r->client, c->name, sizeof(r->client));
    r->client[SHM_NAME_MAX] = '\0';
    r->client_tokens = tok;
    r->client_cost = cost;
    r->client_sec = c->req.head_sec;
    r->client_day = c->day;
    r->client_month = c->month;
    return crec_cur_put(s, cur, req->client, c);
}

/* ---- the budgets left, for the client's x-ratelimit-* headers ------------------------- */

static uint64_t left(uint64_t used, uint64_t limit)
{
    return used < limit ? limit - used : 0;
}

/* When the rolling window is empty again: its newest counted second leaves. */
static int64_t window_empty_ms(const shm_window_t *w, int64_t eff)
{
    if (w->total == 0)
        return eff;
    for (int64_t sec = w->head_sec; sec > w->head_sec - SHM_WIN_BUCKETS; sec--)
        if (w->bucket[shm_floormod(sec, SHM_WIN_BUCKETS)])
            return (sec + SHM_WIN_BUCKETS) * 1000;
    return eff;
}

/* Of two budgets of one kind, the one with less left (a tie: the first, the shorter). */
static void tighter(uint64_t lim_a, uint64_t left_a, int64_t at_a, uint64_t lim_b, uint64_t left_b,
                    int64_t at_b, uint64_t *lim, uint64_t *rem, int64_t *at)
{
    if (lim_a && (!lim_b || left_a <= left_b)) {
        *lim = lim_a, *rem = left_a, *at = at_a;
    } else if (lim_b) {
        *lim = lim_b, *rem = left_b, *at = at_b;
    } else {
        *lim = 0, *rem = 0, *at = 0;
    }
}

void shm__client_budget(const shm_crec_t *c, int64_t now_ms, shm_budget_t *out)
{
    int64_t eff = c->clock_ms, next_day = (c->day + 1) * DAY_MS;
    int64_t next_month = shm__month_start_ms(c->month + 1), at;

    tighter(c->rpm, left(c->req.total, c->rpm), window_empty_ms(&c->req, eff), c->rpd,
            left(c->day_requests, c->rpd), next_day, &out->req_limit, &out->req_remaining, &at);
    out->req_reset_ms = out->req_limit ? now_ms + (at > eff ? at - eff : 0) : 0;
    tighter(c->tok_day_max, left(c->day_tokens, c->tok_day_max), next_day, c->tok_month_max,
            left(c->month_tokens, c->tok_month_max), next_month, &out->tok_limit,
            &out->tok_remaining, &at);
    out->tok_reset_ms = out->tok_limit ? now_ms + (at > eff ? at - eff : 0) : 0;
}

/* ---- outcomes (inside the record / release transaction) ------------------------------- */

static int served(int cls)
{
    return cls == SHM_CL_SUCCESS || cls == SHM_CL_OTHER || cls == SHM_CL_CANCELLED;
}

/* Adjust a day or month counter reserved in period `at` by delta, now in period `cur`: in
 * the same period the reservation is corrected; in a later one the reservation left with
 * its period and only the real amount (delta + reserved) counts in the new one. */
static uint64_t reconcile(uint64_t v, int64_t at, int64_t cur, uint64_t reserved, uint64_t real)
{
    if (at == cur)
        return add_sat(sub_floor(v, reserved), real);
    return add_sat(v, real);
}

int shm__client_finish(shm_t *s, MDB_cursor *cur, const shm_resv_t *r, const shm_outcome_t *o,
                       int refund, int64_t now_ms)
{
    shm_crec_t c;
    int rc = crec_cur_get(s, cur, r->client, &c);

    if (rc == MDB_NOTFOUND)
        return 0; /* client gone meanwhile: nothing to count */
    if (rc != 0)
        return rc;
    crec_to_now(&c, now_ms);
    if (o && served(o->cls)) {
        uint64_t used = (uint64_t)o->prompt_tokens + o->completion_tokens;
        uint64_t cost = o->cost_micro_usd;
        /* a cancelled request without usage keeps its estimate: upstream may have spent it */
        if (o->cls == SHM_CL_CANCELLED && used == 0) {
            used = r->client_tokens;
            cost = r->client_cost;
        }
        c.day_tokens = reconcile(c.day_tokens, r->client_day, c.day, r->client_tokens, used);
        c.month_tokens =
            reconcile(c.month_tokens, r->client_month, c.month, r->client_tokens, used);
        c.day_cost = reconcile(c.day_cost, r->client_day, c.day, r->client_cost, cost);
        c.month_cost = reconcile(c.month_cost, r->client_month, c.month, r->client_cost, cost);
        c.prompt_tokens = add_sat(c.prompt_tokens, o->prompt_tokens);
        c.completion_tokens = add_sat(c.completion_tokens, o->completion_tokens);
        c.cost_micro_usd = add_sat(c.cost_micro_usd, o->cost_micro_usd);
        if ((rc = shm__usage_add(s, mdb_cursor_txn(cur), r, o, c.day)) != 0)
            return rc;
    } else if (o || refund) {
        /* not served (or released before it went upstream): everything goes back */
        shm_window_adjust(&c.req, r->client_sec, -1);
        if (r->client_day == c.day) {
            if (c.day_requests)
                c.day_requests--;
            c.day_tokens = sub_floor(c.day_tokens, r->client_tokens);
            c.day_cost = sub_floor(c.day_cost, r->client_cost);
        }
        if (r->client_month == c.month) {
            c.month_tokens = sub_floor(c.month_tokens, r->client_tokens);
            c.month_cost = sub_floor(c.month_cost, r->client_cost);
        }
        if (c.requests)
            c.requests--;
    }
    /* released without refund: the reservation stays spent as estimated */
    c.updated_ms = now_ms;
    return crec_cur_put(s, cur, r->client, &c);
}

/* ---- the client set ------------------------------------------------------------------- */

typedef struct csync_ctx_s {
    const shm_client_spec_t *specs;
    unsigned n;
    int64_t now_ms;
    shm_sync_stats_t st;
    unsigned conflict; /* with SHM_ECONFLICT: the spec */
} csync_ctx_t;

void shm__crec_init(shm_crec_t *r, const char *name, int64_t now_ms)
{
    memset(r, 0, sizeof(*r));
    r->version = SHM_CREC_VERSION;
    r->size = sizeof(*r);
    copy_name(r->name, sizeof(r->name), name);
    r->created_ms = r->clock_ms = now_ms;
    r->req.head_sec = shm_floordiv(now_ms, 1000);
    r->day = day_index(now_ms);
    r->month = shm__month_index(now_ms);
}

static int spec_index(const csync_ctx_t *c, const char *name, size_t len)
{
    for (unsigned i = 0; i < c->n; i++)
        if (strlen(c->specs[i].name) == len && memcmp(c->specs[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int csync_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    csync_ctx_t *c = arg;
    int rc;

    memset(&c->st, 0, sizeof(c->st));
    for (unsigned i = 0; i < c->n; i++) {
        const shm_client_spec_t *sp = &c->specs[i];
        shm_crec_t r, before;
        rc = crec_get(s, txn, sp->name, &r);
        if (rc == 0 && (r.flags & SHM_CF_STORE)) {
            c->conflict = i;
            return SHM_ECONFLICT; /* a store client's (shm_cdef.h) */
        }
        if (rc == MDB_NOTFOUND) {
            shm__crec_init(&r, sp->name, c->now_ms);
            c->st.added++;
        } else if (rc != 0) {
            return rc;
        }
        before = r;
        r.rpm = sp->rpm;
        r.rpd = sp->rpd;
        r.tok_day_max = sp->tokens_per_day;
        r.tok_month_max = sp->tokens_per_month;
        r.cost_day_max = sp->cost_per_day_micro_usd;
        r.cost_month_max = sp->cost_per_month_micro_usd;
        if (sp->cluster && (r.rpm || r.rpd || r.tok_day_max || r.tok_month_max || r.cost_day_max ||
                            r.cost_month_max))
            r.flags |= SHM_CF_CLUSTER;
        else
            r.flags &= ~SHM_CF_CLUSTER;
        if (r.flags & SHM_CF_ORPHANED) {
            r.flags &= ~SHM_CF_ORPHANED;
            c->st.restored++;
        }
        if (rc == 0 && memcmp(&before, &r, sizeof(r)) == 0)
            continue;
        if (rc == 0 && !(before.flags & SHM_CF_ORPHANED))
            c->st.updated++;
        r.updated_ms = c->now_ms;
        if ((rc = crec_put(s, txn, &r)) != 0)
            return rc;
    }
    /* clients in the store that the configuration no longer names: orphaned, kept */
    MDB_cursor *cur;
    MDB_val kv, vv;
    if ((rc = mdb_cursor_open(txn, s->dbi_clients, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &kv, &vv, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &kv, &vv, MDB_NEXT)) {
        shm_crec_t r;
        if ((rc = shm__rec_check(s, SHM_REC_CLIENT, &kv, &vv)) != 0)
            break;
        memcpy(&r, vv.mv_data, sizeof(r));
        if ((r.flags & (SHM_CF_ORPHANED | SHM_CF_STORE)) ||
            spec_index(c, kv.mv_data, kv.mv_size) >= 0)
            continue;
        r.flags |= SHM_CF_ORPHANED;
        r.updated_ms = c->now_ms;
        MDB_val nv = {sizeof(r), &r};
        if ((rc = mdb_cursor_put(cur, &kv, &nv, MDB_CURRENT)) != 0)
            break;
        c->st.orphaned++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_clients_sync(shm_t *s, const shm_client_spec_t *specs, unsigned n, int64_t now_ms,
                     shm_sync_stats_t *stats)
{
    if (!s || (n && !specs))
        return SHM_EINVAL;
    for (unsigned i = 0; i < n; i++) {
        if (!shm__name_ok(specs[i].name))
            return SHM_EINVAL;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(specs[i].name, specs[j].name) == 0)
                return SHM_EINVAL;
    }
    if (s->readonly)
        return SHM_ERDONLY;
    if (!s->has_clients)
        return SHM_EINTERNAL;
    csync_ctx_t c = {.specs = specs, .n = n, .now_ms = shm__now(s, now_ms)};
    int rc = shm__write(s, csync_fn, &c);
    if (rc == 0 && stats)
        *stats = c.st;
    return rc;
}

static uint64_t usd_to_micro(double usd)
{
    if (!(usd > 0))
        return 0;
    if (usd >= 1e12)
        return (uint64_t)1e18;
    uint64_t v = (uint64_t)(usd * 1e6 + 0.5);
    return v ? v : 1; /* a budget below a micro-dollar is still a budget */
}

int shm_clients_sync_cfg(shm_t *s, const struct cfg_s *cfg, int64_t now_ms, shm_sync_stats_t *stats)
{
    if (!s || !cfg)
        return SHM_EINVAL;
    unsigned n = cfg->client_keys_count;
    shm_client_spec_t *specs = calloc(n ? n : 1, sizeof(*specs));
    if (!specs)
        return SHM_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        const cfg_client_t *k = &cfg->client_keys[i];
        specs[i] = (shm_client_spec_t){
            .name = k->name,
            .rpm = k->rpm,
            .rpd = k->rpd,
            .tokens_per_day = k->tokens_per_day,
            .tokens_per_month = k->tokens_per_month,
            .cost_per_day_micro_usd = usd_to_micro(k->cost_per_day_usd),
            .cost_per_month_micro_usd = usd_to_micro(k->cost_per_month_usd),
            .cluster = cfg->cluster.enabled,
        };
    }
    int rc = shm_clients_sync(s, specs, n, now_ms, stats);
    free(specs);
    return rc;
}

/* ---- views and the admin reset ------------------------------------------------------------ */

static void crec_to_view(const shm_crec_t *r, int64_t now_ms, shm_client_t *o)
{
    shm_crec_t c = *r; /* a reader moves a copy to now, never the record */
    int64_t eff = crec_to_now(&c, now_ms);

    (void)eff;
    memset(o, 0, sizeof(*o));
    copy_name(o->name, sizeof(o->name), c.name);
    o->orphaned = !!(c.flags & SHM_CF_ORPHANED);
    o->rpm = c.rpm;
    o->rpd = c.rpd;
    o->tokens_per_day = c.tok_day_max;
    o->tokens_per_month = c.tok_month_max;
    o->cost_per_day_micro_usd = c.cost_day_max;
    o->cost_per_month_micro_usd = c.cost_month_max;
    o->rpm_used = (uint32_t)c.req.total;
    o->rpd_used = c.day_requests;
    o->tokens_day_used = c.day_tokens;
    o->tokens_month_used = c.month_tokens;
    o->cost_day_used_micro_usd = c.day_cost;
    o->cost_month_used_micro_usd = c.month_cost;
    o->day_reset_ms = (c.day + 1) * DAY_MS;
    o->month_reset_ms = shm__month_start_ms(c.month + 1);
    o->requests = c.requests;
    o->prompt_tokens = c.prompt_tokens;
    o->completion_tokens = c.completion_tokens;
    o->cost_micro_usd = c.cost_micro_usd;
    o->last_admit_ms = c.last_admit_ms;
    o->created_ms = c.created_ms;
    o->updated_ms = c.updated_ms;
}

typedef struct cview_ctx_s {
    const char *name;
    int64_t now_ms;
    shm_client_t *out;
    unsigned n;
    unsigned what;
} cview_ctx_t;

static int client_get_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    cview_ctx_t *c = arg;
    shm_crec_t r;
    int rc = crec_get(s, txn, c->name, &r);
    if (rc == 0)
        crec_to_view(&r, c->now_ms, c->out);
    return rc;
}

int shm_client_get(shm_t *s, const char *name, int64_t now_ms, shm_client_t *out)
{
    if (!s || !shm__name_ok(name) || !out)
        return SHM_EINVAL;
    cview_ctx_t c = {.name = name, .now_ms = shm__now(s, now_ms), .out = out};
    return shm__read(s, client_get_fn, &c);
}

static void client_conv(const void *rec, int64_t now_ms, void *view)
{
    crec_to_view(rec, now_ms, view);
}

int shm_clients(shm_t *s, int64_t now_ms, shm_client_t **out, unsigned *n)
{
    if (!s || !out || !n)
        return SHM_EINVAL;
    if (!s->has_clients) { /* a store from before clients existed, opened read-only */
        *out = NULL;
        *n = 0;
        return 0;
    }
    return shm__list(s, s->dbi_clients, SHM_REC_CLIENT, sizeof(shm_client_t), client_conv,
                     shm__now(s, now_ms), (void **)out, n);
}

static int client_reset_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    cview_ctx_t *c = arg;
    shm_crec_t r;
    int rc = crec_get(s, txn, c->name, &r);

    if (rc != 0)
        return rc;
    crec_to_now(&r, c->now_ms);
    if (c->what & SHM_RESET_RPM)
        shm_window_reset(&r.req);
    if (c->what & SHM_RESET_RPD)
        r.day_requests = 0;
    if (c->what & SHM_RESET_TPM)
        r.day_tokens = r.month_tokens = r.day_cost = r.month_cost = 0;
    if (c->what & SHM_RESET_COUNTERS)
        r.requests = r.prompt_tokens = r.completion_tokens = r.cost_micro_usd = 0;
    r.updated_ms = c->now_ms;
    return crec_put(s, txn, &r);
}

int shm_client_reset(shm_t *s, const char *name, unsigned what, int64_t now_ms)
{
    if (!s || !shm__name_ok(name) || what == 0 || (what & ~SHM_RESET_ALL))
        return SHM_EINVAL;
    cview_ctx_t c = {.name = name, .now_ms = shm__now(s, now_ms), .what = what};
    return shm__write(s, client_reset_fn, &c);
}
