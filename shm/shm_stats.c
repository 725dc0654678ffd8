/* shm_stats.c - history rows per key and model by minute, hour and day (see shm_stats.h). */
#include "shm/shm_stats.h"

#include <stdlib.h>
#include <string.h>

#include "shm/shm_int.h"

#define KEY_MAX (2 + SHM_NAME_MAX + 1 + 4)

const uint32_t shm_stats_le_ms[SHM_STATS_BUCKETS - 1] = {
    5,     10,    15,    20,    30,    40,    50,    75,     100,   150,  200,
    300,   400,   500,   750,   1000,  1500,  2000,  3000,   4000,  5000, 7500,
    10000, 15000, 20000, 30000, 45000, 60000, 90000, 120000, 300000};

static const char res_byte[SHM_SR_COUNT] = {'m', 'h', 'd'};
static const char scope_byte[SHM_SS_COUNT] = {'k', 'M'};
static const int64_t step_ms[SHM_SR_COUNT] = {60000, 3600000, 86400000};
static const int64_t keep[SHM_SR_COUNT] = {SHM_STATS_KEEP_MINUTES, SHM_STATS_KEEP_HOURS,
                                           SHM_STATS_KEEP_DAYS};

unsigned shm_stats_bucket(uint32_t ms)
{
    unsigned lo = 0, hi = SHM_STATS_BUCKETS - 1; /* the first bound >= ms, or the open one */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (shm_stats_le_ms[mid] >= ms)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int64_t shm_stats_step_ms(int res)
{
    return res >= 0 && res < SHM_SR_COUNT ? step_ms[res] : 0;
}

int64_t shm_stats_index(int res, int64_t ms)
{
    int64_t st = shm_stats_step_ms(res);
    if (st == 0)
        return 0;
    return ms >= 0 ? ms / st : -((-ms + st - 1) / st);
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static uint32_t add_sat32(uint32_t a, uint64_t b)
{
    return b >= UINT32_MAX - a ? UINT32_MAX : a + (uint32_t)b;
}

void shm_stats_merge(shm_stats_t *into, const shm_stats_t *x)
{
    for (int i = 0; i < SHM_CL_COUNT; i++)
        into->by_class[i] = add_sat(into->by_class[i], x->by_class[i]);
    into->prompt_tokens = add_sat(into->prompt_tokens, x->prompt_tokens);
    into->completion_tokens = add_sat(into->completion_tokens, x->completion_tokens);
    into->cost_micro_usd = add_sat(into->cost_micro_usd, x->cost_micro_usd);
    for (int i = 0; i < SHM_STATS_BUCKETS; i++) {
        into->lat[i] = add_sat(into->lat[i], x->lat[i]);
        into->ttfb[i] = add_sat(into->ttfb[i], x->ttfb[i]);
    }
    into->lat_sum_ms = add_sat(into->lat_sum_ms, x->lat_sum_ms);
    into->ttfb_sum_ms = add_sat(into->ttfb_sum_ms, x->ttfb_sum_ms);
    if (x->lat_max_ms > into->lat_max_ms)
        into->lat_max_ms = x->lat_max_ms;
    if (x->ttfb_max_ms > into->ttfb_max_ms)
        into->ttfb_max_ms = x->ttfb_max_ms;
}

uint64_t shm_stats_outcomes(const shm_stats_t *v)
{
    uint64_t n = 0;
    for (int i = 0; i < SHM_CL_COUNT; i++)
        n = add_sat(n, v->by_class[i]);
    return n;
}

uint64_t shm_stats_errors(const shm_stats_t *v)
{
    static const int err[] = {SHM_CL_429, SHM_CL_5XX, SHM_CL_TIMEOUT, SHM_CL_CONNECT, SHM_CL_AUTH};
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof(err) / sizeof(err[0]); i++)
        n = add_sat(n, v->by_class[err[i]]);
    return n;
}

uint64_t shm_stats_samples(const shm_stats_t *v)
{
    uint64_t n = 0;
    for (int i = 0; i < SHM_STATS_BUCKETS; i++)
        n = add_sat(n, v->lat[i]);
    return n;
}

uint32_t shm_stats_quantile(const uint64_t hist[SHM_STATS_BUCKETS], uint32_t max_ms, double q)
{
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < SHM_STATS_BUCKETS; i++)
        total = add_sat(total, hist[i]);
    if (total == 0 || !(q > 0))
        return 0;
    if (q > 1)
        q = 1;
    /* nearest rank: the smallest rank r with r >= q * total */
    double want = q * (double)total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank < 1)
        rank = 1;
    for (int i = 0; i < SHM_STATS_BUCKETS; i++) {
        if (hist[i] == 0 || seen + hist[i] < rank) {
            seen += hist[i];
            continue;
        }
        double lo = i == 0 ? 0 : shm_stats_le_ms[i - 1];
        double hi = i < SHM_STATS_BUCKETS - 1 ? shm_stats_le_ms[i] : (double)max_ms;
        if (hi > max_ms)
            hi = max_ms;
        if (hi < lo)
            lo = hi;
        double x = lo + (hi - lo) * ((double)(rank - seen) / (double)hist[i]);
        return (uint32_t)(x + 0.5);
    }
    return max_ms;
}

/* ---- keys -------------------------------------------------------------------------------- */

static void put_be32(unsigned char *p, int64_t v)
{
    uint32_t x = v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    p[0] = (unsigned char)(x >> 24);
    p[1] = (unsigned char)(x >> 16);
    p[2] = (unsigned char)(x >> 8);
    p[3] = (unsigned char)x;
}

/* The key of (res, scope, name, index) into k (KEY_MAX bytes); its length. */
static size_t key_of(unsigned char *k, int res, int scope, const char *name, size_t nl,
                     int64_t index)
{
    k[0] = (unsigned char)res_byte[res];
    k[1] = (unsigned char)scope_byte[scope];
    memcpy(k + 2, name, nl);
    k[2 + nl] = 0;
    put_be32(k + 3 + nl, index);
    return 2 + nl + 1 + 4;
}

/* Split a stored key of (res, scope): its name into name, its index; -1 if it is not one of
 * (res, scope) (another range), -2 if it is not a stats key at all. */
static int key_split(const MDB_val *k, int res, int scope, char *name, int64_t *index)
{
    const unsigned char *p = k->mv_data;
    if (k->mv_size < 2 || p[0] != (unsigned char)res_byte[res] ||
        p[1] != (unsigned char)scope_byte[scope])
        return -1;
    size_t nl = k->mv_size - 2 - 5;
    if (k->mv_size < 2 + 1 + 5 || nl > SHM_NAME_MAX || p[2 + nl] != 0 || memchr(p + 2, 0, nl))
        return -2;
    memcpy(name, p + 2, nl);
    name[nl] = '\0';
    const unsigned char *q = p + 3 + nl;
    *index = (int64_t)((uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 |
                       (uint32_t)q[3]);
    return 0;
}

/* ---- writing ----------------------------------------------------------------------------- */

static void srec_init(shm_srec_t *r)
{
    memset(r, 0, sizeof(*r));
    r->version = SHM_SREC_VERSION;
    r->size = sizeof(*r);
}

static void srec_add(shm_srec_t *r, const shm_srec_t *x)
{
    for (int i = 0; i < SHM_CL_COUNT; i++)
        r->by_class[i] = add_sat(r->by_class[i], x->by_class[i]);
    r->prompt_tokens = add_sat(r->prompt_tokens, x->prompt_tokens);
    r->completion_tokens = add_sat(r->completion_tokens, x->completion_tokens);
    r->cost_micro_usd = add_sat(r->cost_micro_usd, x->cost_micro_usd);
    for (int i = 0; i < SHM_STATS_BUCKETS; i++) {
        r->lat[i] = add_sat32(r->lat[i], x->lat[i]);
        r->ttfb[i] = add_sat32(r->ttfb[i], x->ttfb[i]);
    }
    r->lat_sum_ms = add_sat(r->lat_sum_ms, x->lat_sum_ms);
    r->ttfb_sum_ms = add_sat(r->ttfb_sum_ms, x->ttfb_sum_ms);
    if (x->lat_max_ms > r->lat_max_ms)
        r->lat_max_ms = x->lat_max_ms;
    if (x->ttfb_max_ms > r->ttfb_max_ms)
        r->ttfb_max_ms = x->ttfb_max_ms;
}

static void srec_outcome(shm_srec_t *r, const shm_outcome_t *o)
{
    r->by_class[o->cls] = add_sat(r->by_class[o->cls], 1);
    r->prompt_tokens = add_sat(r->prompt_tokens, o->prompt_tokens);
    r->completion_tokens = add_sat(r->completion_tokens, o->completion_tokens);
    r->cost_micro_usd = add_sat(r->cost_micro_usd, o->cost_micro_usd);
    if (o->cls != SHM_CL_SUCCESS || o->total_ms == 0)
        return;
    unsigned lb = shm_stats_bucket(o->total_ms), tb = shm_stats_bucket(o->ttfb_ms);
    r->lat[lb] = add_sat32(r->lat[lb], 1);
    r->ttfb[tb] = add_sat32(r->ttfb[tb], 1);
    r->lat_sum_ms = add_sat(r->lat_sum_ms, o->total_ms);
    r->ttfb_sum_ms = add_sat(r->ttfb_sum_ms, o->ttfb_ms);
    if (o->total_ms > r->lat_max_ms)
        r->lat_max_ms = o->total_ms;
    if (o->ttfb_ms > r->ttfb_max_ms)
        r->ttfb_max_ms = o->ttfb_ms;
}

/* Add d to the stored row of (res, scope, name) at now_ms's index. */
static int row_add(shm_t *s, MDB_cursor *cur, int res, int scope, const char *name,
                   const shm_srec_t *d, int64_t now_ms)
{
    unsigned char kb[KEY_MAX];
    size_t nl = strnlen(name, SHM_NAME_MAX);
    MDB_val k = {key_of(kb, res, scope, name, nl, shm_stats_index(res, now_ms)), kb}, v;
    shm_srec_t r;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
    int in_place = rc == 0;
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (in_place) {
        if ((rc = shm__rec_check(s, SHM_REC_STATS, &k, &v)) != 0)
            return rc;
        memcpy(&r, v.mv_data, sizeof(r));
    } else {
        srec_init(&r);
    }
    srec_add(&r, d);
    v = (MDB_val){sizeof(r), &r};
    return mdb_cursor_put(cur, &k, &v, in_place ? MDB_CURRENT : 0);
}

int shm__stats_flush(shm_t *s, MDB_txn *txn, shm_sacc_t *a, int64_t now_ms)
{
    MDB_cursor *cur = NULL;
    int rc = 0;
    if (!s->has_stats || a->n == 0) {
        a->n = 0;
        return 0;
    }
    if ((rc = mdb_cursor_open(txn, s->dbi_stats, &cur)) != 0)
        return rc;
    for (unsigned i = 0; i < a->n && rc == 0; i++)
        for (int res = 0; res < SHM_SR_COUNT && rc == 0; res++)
            rc = row_add(s, cur, res, a->e[i].scope, a->e[i].name, &a->e[i].d, now_ms);
    mdb_cursor_close(cur);
    a->n = 0;
    return rc;
}

static int fold(shm_t *s, MDB_txn *txn, shm_sacc_t *a, int scope, const char *name,
                const shm_outcome_t *o, int64_t now_ms)
{
    size_t nl = strnlen(name, SHM_NAME_MAX);
    unsigned i;
    int rc;
    for (i = 0; i < a->n; i++)
        if (a->e[i].scope == scope && strncmp(a->e[i].name, name, nl) == 0 &&
            a->e[i].name[nl] == '\0')
            break;
    if (i == a->n) {
        if (a->n == SHM_SACC_MAX && (rc = shm__stats_flush(s, txn, a, now_ms)) != 0)
            return rc;
        i = a->n++;
        a->e[i].scope = scope;
        memcpy(a->e[i].name, name, nl);
        a->e[i].name[nl] = '\0';
        srec_init(&a->e[i].d);
    }
    srec_outcome(&a->e[i].d, o);
    return 0;
}

int shm__stats_add(shm_t *s, MDB_txn *txn, shm_sacc_t *a, const char *key, const char *model,
                   const shm_outcome_t *o, int64_t now_ms)
{
    int rc;
    if (!s->has_stats)
        return 0;
    if ((rc = fold(s, txn, a, SHM_SS_KEY, key, o, now_ms)) != 0)
        return rc;
    if (model && model[0])
        return fold(s, txn, a, SHM_SS_MODEL, model, o, now_ms);
    return 0;
}

/* ---- reading ----------------------------------------------------------------------------- */

typedef struct stats_ctx_s {
    int res, scope;
    const char *name;
    int64_t from, to;
    int names_only;
    shm_stats_row_t *rows;
    unsigned n, cap;
} stats_ctx_t;

static int push(stats_ctx_t *c, const shm_stats_row_t *row)
{
    if (c->n == c->cap) {
        unsigned cap = c->cap ? c->cap * 2 : 64;
        shm_stats_row_t *nr = realloc(c->rows, cap * sizeof(*nr));
        if (!nr)
            return SHM_ENOMEM;
        c->rows = nr;
        c->cap = cap;
    }
    c->rows[c->n++] = *row;
    return 0;
}

static void srec_view(const shm_srec_t *r, shm_stats_t *v)
{
    memset(v, 0, sizeof(*v));
    for (int i = 0; i < SHM_CL_COUNT; i++)
        v->by_class[i] = r->by_class[i];
    v->prompt_tokens = r->prompt_tokens;
    v->completion_tokens = r->completion_tokens;
    v->cost_micro_usd = r->cost_micro_usd;
    for (int i = 0; i < SHM_STATS_BUCKETS; i++) {
        v->lat[i] = r->lat[i];
        v->ttfb[i] = r->ttfb[i];
    }
    v->lat_sum_ms = r->lat_sum_ms;
    v->ttfb_sum_ms = r->ttfb_sum_ms;
    v->lat_max_ms = r->lat_max_ms;
    v->ttfb_max_ms = r->ttfb_max_ms;
}

/* Seek to (name, index) or, with past set, past every row of name (a longer name sorts after
 * name + "\1"). */
static int seek(MDB_cursor *cur, const stats_ctx_t *c, const char *name, int past, int64_t index,
                MDB_val *k, MDB_val *v, unsigned char *kb)
{
    size_t nl = strnlen(name, SHM_NAME_MAX);
    *k = (MDB_val){key_of(kb, c->res, c->scope, name, nl, index), kb};
    if (past) {
        kb[2 + nl] = 1;
        k->mv_size = 2 + nl + 1;
    }
    return mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
}

static int stats_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    stats_ctx_t *c = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned char kb[KEY_MAX];
    int rc = mdb_cursor_open(txn, s->dbi_stats, &cur);
    if (rc != 0)
        return rc;
    c->n = 0; /* a re-run starts afresh */
    rc = seek(cur, c, c->name ? c->name : "", 0, c->from, &k, &v, kb);
    while (rc == 0) {
        shm_stats_row_t row;
        int sp = key_split(&k, c->res, c->scope, row.name, &row.index);
        if (sp == -1)
            break; /* past the (res, scope) range */
        if (sp != 0) {
            rc = shm__corrupt(s, SHM_REC_STATS, &k, "not a (resolution, scope, name, time) key");
            break;
        }
        if (c->name && strcmp(row.name, c->name) != 0)
            break;
        if (row.index < c->from || row.index > c->to) {
            if (c->name)
                break; /* in time order: past c->to */
            rc = seek(cur, c, row.name, row.index > c->to, c->from, &k, &v, kb);
            continue;
        }
        if (c->names_only) {
            row.index = 0;
            memset(&row.v, 0, sizeof(row.v));
            if ((rc = push(c, &row)) != 0)
                break;
            rc = seek(cur, c, row.name, 1, 0, &k, &v, kb);
            continue;
        }
        if ((rc = shm__rec_check(s, SHM_REC_STATS, &k, &v)) != 0)
            break;
        shm_srec_t r;
        memcpy(&r, v.mv_data, sizeof(r));
        srec_view(&r, &row.v);
        if ((rc = push(c, &row)) != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int run_query(shm_t *s, stats_ctx_t *c)
{
    if (!s->has_stats)
        return 0;
    int rc = shm__err(shm__read(s, stats_fn, c));
    if (rc != 0) {
        free(c->rows);
        c->rows = NULL;
        c->n = 0;
    }
    return rc;
}

int shm_stats(shm_t *s, int res, int scope, const char *name, int64_t from, int64_t to,
              shm_stats_row_t **out, unsigned *n)
{
    if (!s || !out || !n || res < 0 || res >= SHM_SR_COUNT || scope < 0 || scope >= SHM_SS_COUNT ||
        (name && !shm__name_ok(name)))
        return SHM_EINVAL;
    *out = NULL;
    *n = 0;
    stats_ctx_t c = {.res = res, .scope = scope, .name = name, .from = from, .to = to};
    int rc = run_query(s, &c);
    if (rc == 0) {
        *out = c.rows;
        *n = c.n;
    }
    return rc;
}

int shm_stats_names(shm_t *s, int res, int scope, int64_t from, char (**out)[SHM_NAME_MAX + 1],
                    unsigned *n)
{
    if (!s || !out || !n || res < 0 || res >= SHM_SR_COUNT || scope < 0 || scope >= SHM_SS_COUNT)
        return SHM_EINVAL;
    *out = NULL;
    *n = 0;
    stats_ctx_t c = {.res = res, .scope = scope, .from = from, .to = UINT32_MAX, .names_only = 1};
    int rc = run_query(s, &c);
    if (rc != 0 || c.n == 0) {
        free(c.rows);
        return rc;
    }
    char(*names)[SHM_NAME_MAX + 1] = malloc(c.n * sizeof(*names));
    if (!names) {
        free(c.rows);
        return SHM_ENOMEM;
    }
    for (unsigned i = 0; i < c.n; i++)
        memcpy(names[i], c.rows[i].name, sizeof(names[i]));
    free(c.rows);
    *out = names;
    *n = c.n;
    return 0;
}

/* ---- retention --------------------------------------------------------------------------- */

typedef struct prune_ctx_s {
    int64_t now_ms;
    unsigned pruned;
} prune_ctx_t;

static int prune_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    prune_ctx_t *c = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned char kb[KEY_MAX];
    int rc = mdb_cursor_open(txn, s->dbi_stats, &cur);
    if (rc != 0)
        return rc;
    c->pruned = 0;
    for (int res = 0; res < SHM_SR_COUNT && (rc == 0 || rc == MDB_NOTFOUND); res++) {
        for (int scope = 0; scope < SHM_SS_COUNT; scope++) {
            stats_ctx_t q = {.res = res, .scope = scope};
            int64_t before = shm_stats_index(res, c->now_ms) - keep[res];
            rc = seek(cur, &q, "", 0, 0, &k, &v, kb);
            while (rc == 0) {
                char name[SHM_NAME_MAX + 1];
                int64_t index;
                int sp = key_split(&k, res, scope, name, &index);
                if (sp == -1)
                    break;
                if (sp == 0 && index >= before) { /* the rest of this series is kept */
                    rc = seek(cur, &q, name, 1, 0, &k, &v, kb);
                    continue;
                }
                if ((rc = mdb_cursor_del(cur, 0)) != 0) /* old, or not ours at all */
                    break;
                c->pruned++;
                rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
            }
            if (rc != 0 && rc != MDB_NOTFOUND)
                break;
        }
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_stats_prune(shm_t *s, int64_t now_ms, unsigned *pruned)
{
    if (!s)
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    prune_ctx_t c = {now_ms, 0};
    int rc = s->has_stats ? shm__err(shm__write(s, prune_fn, &c)) : 0;
    if (pruned)
        *pruned = rc == 0 ? c.pruned : 0;
    return rc;
}
