/* shm_obj.c - object affinity (see shm_obj.h): object id -> the key that created it, with a
 * TTL, in the "objects" database, and an expiry index ("objects_by_expiry") that pruning and
 * eviction walk from its first entry.
 *
 * An index key is 8 bytes of expires_ms, big-endian with the sign bit flipped (so that LMDB's
 * byte order is the numeric order), followed by the object id. Every transaction here keeps
 * exactly one index entry per record, with the record's expiry; an entry of one without the
 * other is corrupt (shm_obj.h, "Corrupt records"). Bytes read from the map are copied before
 * the next write of the transaction: LMDB keeps them valid only until then.
 */
#include "shm/shm_obj.h"

#include <stdio.h>
#include <string.h>

#include "shm/shm_int.h"

#define IDX_EXP       8 /* bytes of expiry in front of an index key */
#define IDX_KEY_MAX   (IDX_EXP + SHM_OBJ_ID_MAX)
#define PRUNE_PER_TXN 1024 /* removals per shm_obj_prune transaction */

_Static_assert(sizeof(((shm_obj_t *)0)->model) == sizeof(((shm_jrec_t *)0)->model), "model");

static int id_ok(const char *id, size_t len)
{
    return id && len > 0 && len <= SHM_OBJ_ID_MAX && !memchr(id, '\0', len);
}

/* a name field of size bytes holds its NUL */
static int field_ok(const char *f, size_t size)
{
    return memchr(f, '\0', size) != NULL;
}

/* ---- the expiry index ------------------------------------------------------------------- */

typedef struct idx_key_s {
    unsigned char b[IDX_KEY_MAX];
    MDB_val k;  /* the whole key, over b */
    MDB_val id; /* its id part, over b */
    int64_t expires_ms;
} idx_key_t;

static void idx_make(idx_key_t *x, int64_t expires_ms, const MDB_val *id)
{
    uint64_t u = (uint64_t)expires_ms ^ (UINT64_C(1) << 63);

    for (int i = 0; i < IDX_EXP; i++)
        x->b[i] = (unsigned char)(u >> (56 - 8 * i));
    memcpy(x->b + IDX_EXP, id->mv_data, id->mv_size);
    x->k = (MDB_val){IDX_EXP + id->mv_size, x->b};
    x->id = (MDB_val){id->mv_size, x->b + IDX_EXP};
    x->expires_ms = expires_ms;
}

/* Check an index entry read from the map and copy it into x. 0 or SHM_ECORRUPT (noted). */
static int idx_load(shm_t *s, const MDB_val *k, const MDB_val *v, idx_key_t *x)
{
    const unsigned char *p = k->mv_data;
    char why[96];

    if (k->mv_size <= IDX_EXP || k->mv_size > IDX_KEY_MAX) {
        snprintf(why, sizeof(why), "a key of %zu bytes, not %d of expiry and 1..%d of id",
                 k->mv_size, IDX_EXP, SHM_OBJ_ID_MAX);
        return shm__corrupt(s, SHM_REC_OBJ_IDX, k, why);
    }
    MDB_val id = {k->mv_size - IDX_EXP, (void *)(p + IDX_EXP)};
    if (memchr(id.mv_data, '\0', id.mv_size))
        return shm__corrupt(s, SHM_REC_OBJ_IDX, &id, "its id holds a NUL");
    if (v->mv_size != 0) {
        snprintf(why, sizeof(why), "a value of %zu bytes, not 0", v->mv_size);
        return shm__corrupt(s, SHM_REC_OBJ_IDX, &id, why);
    }
    uint64_t u = 0;
    for (int i = 0; i < IDX_EXP; i++)
        u = u << 8 | p[i];
    idx_make(x, (int64_t)(u ^ (UINT64_C(1) << 63)), &id);
    return 0;
}

/* ---- records ------------------------------------------------------------------------------ */

/* 0, MDB_NOTFOUND, SHM_ECORRUPT (shm__rec_check) or an LMDB code. */
static int jrec_get(shm_t *s, MDB_txn *txn, const MDB_val *id, shm_jrec_t *out)
{
    MDB_val k = *id, v;
    int rc;

    if (!s->has_objects)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, s->dbi_objs, &k, &v)) != 0 ||
        (rc = shm__rec_check(s, SHM_REC_OBJ, id, &v)) != 0)
        return rc;
    memcpy(out, v.mv_data, sizeof(*out));
    return 0;
}

/* Delete the record of id (read as r) and its index entry. 0, SHM_ECORRUPT (the record has
 * no index entry of its expiry: nothing deleted) or an LMDB code. */
static int jrec_del(shm_t *s, MDB_txn *txn, const MDB_val *id, const shm_jrec_t *r)
{
    idx_key_t x;
    char why[112];
    MDB_val k = *id;
    int rc;

    idx_make(&x, r->expires_ms, id);
    rc = mdb_del(txn, s->dbi_objx, &x.k, NULL);
    if (rc == MDB_NOTFOUND) {
        snprintf(why, sizeof(why), "no entry in objects_by_expiry for its expiry %lld",
                 (long long)r->expires_ms);
        return shm__corrupt(s, SHM_REC_OBJ, id, why);
    }
    return rc ? rc : mdb_del(txn, s->dbi_objs, &k, NULL);
}

/* Remove the first entry of the index (cur on it) if it expires at or before until: *done 1
 * when it does not (or the index is empty). The record it names must be there, whole, with
 * its expiry. 0, SHM_ECORRUPT or an LMDB code. */
static int remove_first(shm_t *s, MDB_txn *txn, MDB_cursor *cur, int64_t until, int *done)
{
    MDB_val k, v;
    idx_key_t x;
    shm_jrec_t r;
    char why[112];
    int rc;

    *done = 1;
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) != 0)
        return rc == MDB_NOTFOUND ? 0 : rc;
    if ((rc = idx_load(s, &k, &v, &x)) != 0 || x.expires_ms > until)
        return rc;
    rc = jrec_get(s, txn, &x.id, &r);
    if (rc == MDB_NOTFOUND || (rc == 0 && r.expires_ms != x.expires_ms)) {
        if (rc == MDB_NOTFOUND)
            snprintf(why, sizeof(why), "expires %lld, but the object has no record",
                     (long long)x.expires_ms);
        else
            snprintf(why, sizeof(why), "expires %lld, but its record says %lld",
                     (long long)x.expires_ms, (long long)r.expires_ms);
        return shm__corrupt(s, SHM_REC_OBJ_IDX, &x.id, why);
    }
    if (rc != 0)
        return rc;
    if ((rc = mdb_del(txn, s->dbi_objx, &x.k, NULL)) != 0 ||
        (rc = mdb_del(txn, s->dbi_objs, &x.id, NULL)) != 0)
        return rc;
    *done = 0;
    return 0;
}

/* ---- put ---------------------------------------------------------------------------------- */

typedef struct put_ctx_s {
    const shm_obj_put_t *items;
    unsigned n;
    unsigned max_entries;
    int64_t now_ms;
} put_ctx_t;

/* One entry, inside the transaction (see shm_obj_put). */
static int put_one(shm_t *s, MDB_txn *txn, MDB_cursor *cur, int64_t now, MDB_val id,
                   const shm_obj_t *o, unsigned max_entries)
{
    MDB_stat st;
    shm_jrec_t r;
    idx_key_t x;
    int rc, done = 0;

    if (o->expires_ms <= now)
        return SHM_EINVAL;
    /* The old entry of id first, so that it neither counts nor is evicted. */
    rc = jrec_get(s, txn, &id, &r);
    if (rc == 0)
        rc = jrec_del(s, txn, &id, &r);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    rc = 0;
    for (unsigned i = 0; i < SHM_OBJ_PRUNE_BATCH && !done && rc == 0; i++)
        rc = remove_first(s, txn, cur, now, &done);
    if (rc == 0)
        rc = mdb_stat(txn, s->dbi_objs, &st);
    done = 0;
    for (unsigned i = 0;
         rc == 0 && !done && i < SHM_OBJ_EVICT_BATCH && st.ms_entries >= max_entries;
         i++, st.ms_entries--)
        rc = remove_first(s, txn, cur, INT64_MAX, &done);
    if (rc != 0)
        return rc;

    memset(&r, 0, sizeof(r));
    r.version = SHM_JREC_VERSION;
    r.size = sizeof(r);
    memcpy(r.key, o->key, sizeof(r.key));
    memcpy(r.group, o->group, sizeof(r.group));
    memcpy(r.provider, o->provider, sizeof(r.provider));
    memcpy(r.client, o->client, sizeof(r.client));
    memcpy(r.model, o->model, sizeof(r.model));
    r.created_ms = o->created_ms ? o->created_ms : now;
    r.expires_ms = o->expires_ms;
    MDB_val v = {sizeof(r), &r}, empty = {0, NULL};
    idx_make(&x, r.expires_ms, &id);
    if ((rc = mdb_put(txn, s->dbi_objs, &id, &v, 0)) != 0)
        return rc;
    return mdb_put(txn, s->dbi_objx, &x.k, &empty, 0);
}

static int put_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    const put_ctx_t *c = arg;
    int64_t now = shm__now(s, c->now_ms); /* under the writer lock */
    MDB_cursor *cur = NULL;
    int rc;

    if ((rc = mdb_cursor_open(txn, s->dbi_objx, &cur)) != 0)
        return rc;
    for (unsigned i = 0; i < c->n && rc == 0; i++) {
        MDB_val id = {c->items[i].id_len, (void *)c->items[i].id};
        rc = put_one(s, txn, cur, now, id, c->items[i].o, c->max_entries);
    }
    mdb_cursor_close(cur);
    return rc;
}

static int put_item_ok(const shm_obj_put_t *it)
{
    const shm_obj_t *o = it->o;
    return id_ok(it->id, it->id_len) && o && o->key[0] && field_ok(o->key, sizeof(o->key)) &&
           field_ok(o->group, sizeof(o->group)) && field_ok(o->provider, sizeof(o->provider)) &&
           field_ok(o->client, sizeof(o->client)) && field_ok(o->model, sizeof(o->model));
}

int shm_obj_put_batch(shm_t *s, const shm_obj_put_t *items, unsigned n, unsigned max_entries,
                      int64_t now_ms)
{
    if (!s || (n && !items))
        return SHM_EINVAL;
    for (unsigned i = 0; i < n; i++)
        if (!put_item_ok(&items[i]))
            return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    if (!s->has_objects) /* a writer always opens (creates) them */
        return SHM_EINTERNAL;
    if (n == 0)
        return 0;
    put_ctx_t c = {.items = items,
                   .n = n,
                   .max_entries = max_entries ? max_entries : SHM_OBJ_MAX_DEFAULT,
                   .now_ms = now_ms};
    return shm__write(s, put_fn, &c);
}

int shm_obj_put(shm_t *s, const char *id, size_t id_len, const shm_obj_t *o, unsigned max_entries,
                int64_t now_ms)
{
    shm_obj_put_t it = {id, id_len, o};
    if (!s || !id || !o)
        return SHM_EINVAL;
    return shm_obj_put_batch(s, &it, 1, max_entries, now_ms);
}

/* ---- get, del ----------------------------------------------------------------------------- */

typedef struct get_ctx_s {
    MDB_val id;
    int64_t now_ms;
    shm_jrec_t r;
} get_ctx_t;

static int get_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    get_ctx_t *c = arg;
    int rc = jrec_get(s, txn, &c->id, &c->r);

    if (rc == 0 && c->r.expires_ms <= c->now_ms)
        rc = MDB_NOTFOUND;
    return rc;
}

int shm_obj_get(shm_t *s, const char *id, size_t id_len, shm_obj_t *out, int64_t now_ms)
{
    if (!s || !id_ok(id, id_len) || !out)
        return SHM_EINVAL;
    get_ctx_t c = {.id = {id_len, (void *)id}, .now_ms = shm__now(s, now_ms)};
    int rc = shm__read(s, get_fn, &c);

    if (rc != 0)
        return rc;
    memset(out, 0, sizeof(*out));
    memcpy(out->key, c.r.key, sizeof(out->key)); /* each holds its NUL: shm__rec_check */
    memcpy(out->group, c.r.group, sizeof(out->group));
    memcpy(out->provider, c.r.provider, sizeof(out->provider));
    memcpy(out->client, c.r.client, sizeof(out->client));
    memcpy(out->model, c.r.model, sizeof(out->model));
    out->created_ms = c.r.created_ms;
    out->expires_ms = c.r.expires_ms;
    return 0;
}

static int del_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    const MDB_val *id = arg;
    shm_jrec_t r;
    int rc = jrec_get(s, txn, id, &r);

    return rc ? rc : jrec_del(s, txn, id, &r);
}

int shm_obj_del(shm_t *s, const char *id, size_t id_len)
{
    if (!s || !id_ok(id, id_len))
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    MDB_val k = {id_len, (void *)id};
    return shm__write(s, del_fn, &k);
}

/* ---- prune, count ------------------------------------------------------------------------- */

typedef struct prune_ctx_s {
    int64_t now_ms;
    unsigned removed; /* by the last run of prune_fn */
} prune_ctx_t;

static int prune_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    prune_ctx_t *c = arg;
    int64_t now = shm__now(s, c->now_ms);
    MDB_cursor *cur;
    int rc, done = 0;

    c->removed = 0; /* a re-run starts afresh */
    if ((rc = mdb_cursor_open(txn, s->dbi_objx, &cur)) != 0)
        return rc;
    while (rc == 0 && c->removed < PRUNE_PER_TXN) {
        rc = remove_first(s, txn, cur, now, &done);
        if (rc != 0 || done)
            break;
        c->removed++;
    }
    mdb_cursor_close(cur);
    return rc;
}

int shm_obj_prune(shm_t *s, int64_t now_ms, unsigned *removed)
{
    prune_ctx_t c = {.now_ms = now_ms};
    unsigned total = 0;
    int rc = 0;

    if (removed)
        *removed = 0;
    if (!s)
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    if (!s->has_objects)
        return SHM_EINTERNAL;
    do {
        if ((rc = shm__write(s, prune_fn, &c)) != 0)
            break;
        total += c.removed;
    } while (c.removed == PRUNE_PER_TXN);
    if (removed)
        *removed = total;
    return rc;
}

typedef struct count_ctx_s {
    int64_t now_ms;
    size_t stored, expired;
} count_ctx_t;

static int count_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    count_ctx_t *c = arg;
    MDB_cursor *cur;
    MDB_stat st;
    MDB_val k, v;
    idx_key_t x;
    int rc;

    c->stored = c->expired = 0;
    if ((rc = mdb_stat(txn, s->dbi_objs, &st)) != 0)
        return rc;
    c->stored = st.ms_entries;
    if ((rc = mdb_cursor_open(txn, s->dbi_objx, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if ((rc = idx_load(s, &k, &v, &x)) != 0 || x.expires_ms > c->now_ms)
            break;
        c->expired++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_obj_count(shm_t *s, int64_t now_ms, unsigned *live, unsigned *stored)
{
    count_ctx_t c = {.now_ms = 0};
    int rc = 0;

    if (live)
        *live = 0;
    if (stored)
        *stored = 0;
    if (!s)
        return SHM_EINVAL;
    if (!s->has_objects) /* a read-only open of a store from before the objects databases */
        return 0;
    c.now_ms = shm__now(s, now_ms);
    if ((rc = shm__read(s, count_fn, &c)) != 0)
        return rc;
    if (stored)
        *stored = (unsigned)c.stored;
    if (live)
        *live = (unsigned)(c.stored > c.expired ? c.stored - c.expired : 0);
    return 0;
}
