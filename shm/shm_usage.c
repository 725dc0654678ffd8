/* shm_usage.c - clients' usage by UTC day and model (see shm_usage.h). */
#include "shm/shm_usage.h"

#include <stdlib.h>
#include <string.h>

#include "shm/shm_int.h"

#define KEY_MAX (SHM_NAME_MAX + 1 + 4 + SHM_NAME_MAX)

/* The key of (client, day, model) into k (KEY_MAX bytes); its length. */
static size_t key_of(unsigned char *k, const char *client, int64_t day, const char *model)
{
    size_t cl = strnlen(client, SHM_NAME_MAX), ml = strnlen(model, SHM_NAME_MAX);
    uint32_t d = day < 0 ? 0 : day > UINT32_MAX ? UINT32_MAX : (uint32_t)day;
    memcpy(k, client, cl);
    k[cl] = 0;
    k[cl + 1] = (unsigned char)(d >> 24);
    k[cl + 2] = (unsigned char)(d >> 16);
    k[cl + 3] = (unsigned char)(d >> 8);
    k[cl + 4] = (unsigned char)d;
    memcpy(k + cl + 5, model, ml);
    return cl + 5 + ml;
}

/* Split a stored key; -1 if it is not one of ours. */
static int key_split(const MDB_val *k, shm_usage_row_t *row)
{
    const unsigned char *p = k->mv_data;
    const unsigned char *nul = memchr(p, 0, k->mv_size);
    if (!nul || nul == p || (size_t)(nul - p) > SHM_NAME_MAX || k->mv_size < (size_t)(nul - p) + 5)
        return -1;
    size_t cl = (size_t)(nul - p), ml = k->mv_size - cl - 5;
    if (ml > SHM_NAME_MAX || memchr(nul + 5, 0, ml))
        return -1;
    memset(row, 0, sizeof(*row));
    memcpy(row->client, p, cl);
    row->day = (int64_t)((uint32_t)nul[1] << 24 | (uint32_t)nul[2] << 16 | (uint32_t)nul[3] << 8 |
                         (uint32_t)nul[4]);
    memcpy(row->model, nul + 5, ml);
    return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* Read (client, day, model)'s row into *u (a fresh one if there is none); its key into k. */
static int row_get(shm_t *s, MDB_txn *txn, const char *client, int64_t day, const char *model,
                   unsigned char kb[KEY_MAX], MDB_val *k, shm_urec_t *u)
{
    MDB_val v;
    *k = (MDB_val){key_of(kb, client, day, model ? model : ""), kb};
    int rc = mdb_get(txn, s->dbi_usage, k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(u, 0, sizeof(*u));
        u->version = SHM_UREC_VERSION;
        u->size = sizeof(*u);
        return 0;
    }
    if (rc != 0 || (rc = shm__rec_check(s, SHM_REC_USAGE, k, &v)) != 0)
        return rc;
    memcpy(u, v.mv_data, sizeof(*u));
    return 0;
}

static int row_put(shm_t *s, MDB_txn *txn, MDB_val *k, shm_urec_t *u)
{
    MDB_val v = {sizeof(*u), u};
    return mdb_put(txn, s->dbi_usage, k, &v, 0);
}

int shm__usage_add(shm_t *s, MDB_txn *txn, const shm_resv_t *r, const shm_outcome_t *o, int64_t day)
{
    if (!s->has_usage)
        return 0;
    unsigned char kb[KEY_MAX];
    MDB_val k;
    shm_urec_t u;
    int rc = row_get(s, txn, r->client, day, r->model, kb, &k, &u);
    if (rc != 0)
        return rc;
    u.requests = add_sat(u.requests, 1);
    u.prompt_tokens = add_sat(u.prompt_tokens, o->prompt_tokens);
    u.completion_tokens = add_sat(u.completion_tokens, o->completion_tokens);
    u.cost_micro_usd = add_sat(u.cost_micro_usd, o->cost_micro_usd);
    if (o->cls == SHM_CL_OTHER)
        u.errors = add_sat(u.errors, 1);
    return row_put(s, txn, &k, &u);
}

int shm__usage_refused(shm_t *s, MDB_txn *txn, const char *client, const char *model,
                       int64_t now_ms)
{
    if (!s->has_usage)
        return 0;
    unsigned char kb[KEY_MAX];
    MDB_val k;
    shm_urec_t u;
    int rc = row_get(s, txn, client, shm_usage_day(now_ms), model, kb, &k, &u);
    if (rc != 0)
        return rc;
    u.refused = add_sat(u.refused, 1);
    return row_put(s, txn, &k, &u);
}

typedef struct usage_ctx_s {
    const char *client;
    int64_t from, to;
    shm_usage_row_t *rows;
    unsigned n, cap;
} usage_ctx_t;

static int push(usage_ctx_t *c, const shm_usage_row_t *row)
{
    if (c->n == c->cap) {
        unsigned cap = c->cap ? c->cap * 2 : 64;
        shm_usage_row_t *nr = realloc(c->rows, cap * sizeof(*nr));
        if (!nr)
            return SHM_ENOMEM;
        c->rows = nr;
        c->cap = cap;
    }
    c->rows[c->n++] = *row;
    return 0;
}

static int usage_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    usage_ctx_t *c = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    unsigned char kb[KEY_MAX];
    int rc = mdb_cursor_open(txn, s->dbi_usage, &cur);
    if (rc != 0)
        return rc;
    c->n = 0; /* a re-run starts afresh */
    if (c->client) {
        k = (MDB_val){key_of(kb, c->client, c->from, ""), kb};
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    while (rc == 0) {
        shm_usage_row_t row;
        if (key_split(&k, &row) != 0) {
            rc = shm__corrupt(s, SHM_REC_USAGE, &k, "not a (client, day, model) key");
            break;
        }
        if (c->client && strcmp(row.client, c->client) != 0)
            break; /* past the client's range */
        if (row.day < c->from || row.day > c->to) {
            if (c->client)
                break; /* its rows are in day order: past c->to */
            /* every client: seek to this client's first day, or past its rows (a client
             * with a longer name sorts after client + "\1"), not a row at a time */
            if (row.day < c->from) {
                k = (MDB_val){key_of(kb, row.client, c->from, ""), kb};
            } else {
                size_t cl = strlen(row.client);
                memcpy(kb, row.client, cl);
                kb[cl] = 1;
                k = (MDB_val){cl + 1, kb};
            }
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            continue;
        }
        if ((rc = shm__rec_check(s, SHM_REC_USAGE, &k, &v)) != 0)
            break;
        shm_urec_t u;
        memcpy(&u, v.mv_data, sizeof(u));
        row.requests = u.requests;
        row.prompt_tokens = u.prompt_tokens;
        row.completion_tokens = u.completion_tokens;
        row.cost_micro_usd = u.cost_micro_usd;
        row.errors = u.errors;
        row.refused = u.refused;
        if ((rc = push(c, &row)) != 0)
            break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_usage(shm_t *s, const char *client, int64_t from_day, int64_t to_day, shm_usage_row_t **out,
              unsigned *n)
{
    if (!s || !out || !n || (client && !shm__name_ok(client)))
        return SHM_EINVAL;
    *out = NULL;
    *n = 0;
    if (!s->has_usage)
        return 0;
    usage_ctx_t c = {.client = client, .from = from_day, .to = to_day};
    int rc = shm__err(shm__read(s, usage_fn, &c));
    if (rc != 0) {
        free(c.rows);
        return rc;
    }
    *out = c.rows;
    *n = c.n;
    return 0;
}

typedef struct prune_ctx_s {
    int64_t before;
    unsigned pruned;
} prune_ctx_t;

static int prune_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    prune_ctx_t *c = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->dbi_usage, &cur);
    if (rc != 0)
        return rc;
    c->pruned = 0;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        shm_usage_row_t row;
        if (key_split(&k, &row) == 0 && row.day >= c->before)
            continue;
        if ((rc = mdb_cursor_del(cur, 0)) != 0) /* old, or not ours at all */
            break;
        c->pruned++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_usage_prune(shm_t *s, int64_t before_day, unsigned *pruned)
{
    if (!s)
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    prune_ctx_t c = {before_day, 0};
    int rc = s->has_usage ? shm__err(shm__write(s, prune_fn, &c)) : 0;
    if (pruned)
        *pruned = rc == 0 ? c.pruned : 0;
    return rc;
}
