/* shm_lease.c - the leases database: a host's grants of cluster-wide budgets (shm_lease.h).
 *
 * A record lives under its kind's letter and its name ("k" + key name, "c" + client name).
 * Nothing here talks to Redis or decides a grant: the lease manager does, through
 * shm_lease_edit / shm_lease_each; admission only takes from the grants (shm__lease_admit).
 */
#include "shm/shm_int.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(shm_grant_t) == 32, "grant layout");
_Static_assert(sizeof(shm_lease_t) % 8 == 0, "lease layout");
_Static_assert(sizeof(shm_lease_t) < 1800, "a lease record must stay inline in a 4 KiB page");

#define LEASE_KEY_MAX (SHM_NAME_MAX + 2)

static int kind_ok(int kind)
{
    return kind == SHM_LK_KEY || kind == SHM_LK_CLIENT;
}

/* The store key of (kind, name[0..len)) into buf (LEASE_KEY_MAX bytes). */
static MDB_val lease_key(char *buf, int kind, const char *name, size_t len)
{
    buf[0] = kind == SHM_LK_KEY ? 'k' : 'c';
    memcpy(buf + 1, name, len);
    return (MDB_val){len + 1, buf};
}

uint64_t shm_lease_avail(const shm_lease_t *l, int d, int64_t now_ms)
{
    uint64_t n = 0;
    if (d < 0 || d >= SHM_LD_COUNT)
        return 0;
    for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++) {
        const shm_grant_t *g = &l->g[d][i];
        if (g->id && g->until_ms > now_ms && g->used < g->granted)
            n += g->granted - g->used;
    }
    return n;
}

/* Take cost units of dimension d from the usable grants, soonest until_ms first. The caller
 * checked shm_lease_avail(l, d, now_ms) >= cost. */
static void lease_take(shm_lease_t *l, int d, uint64_t cost, int64_t now_ms)
{
    while (cost) {
        shm_grant_t *best = NULL;
        for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++) {
            shm_grant_t *g = &l->g[d][i];
            if (g->id && g->until_ms > now_ms && g->used < g->granted &&
                (!best || g->until_ms < best->until_ms))
                best = g;
        }
        if (!best)
            return;
        uint64_t n = best->granted - best->used;
        n = n < cost ? n : cost;
        best->used += n;
        cost -= n;
    }
}

static int lease_read(shm_t *s, MDB_txn *txn, const MDB_val *key, shm_lease_t *out)
{
    MDB_val v;
    int rc = mdb_get(txn, s->dbi_leases, (MDB_val *)key, &v);
    if (rc != 0)
        return rc;
    if ((rc = shm__rec_check(s, SHM_REC_LEASE, key, &v)) != 0)
        return rc;
    memcpy(out, v.mv_data, sizeof(*out));
    return 0;
}

static int lease_write(shm_t *s, MDB_txn *txn, const MDB_val *key, shm_lease_t *l)
{
    MDB_val v = {sizeof(*l), l};
    l->version = SHM_LEASE_VERSION;
    l->size = sizeof(*l);
    return mdb_put(txn, s->dbi_leases, (MDB_val *)key, &v, 0);
}

int shm__lease_admit(shm_t *s, MDB_txn *txn, int kind, const char *name, size_t len,
                     const shm_lease_ask_t *ask, int take, int64_t now_ms, int64_t *retry_at)
{
    char kb[LEASE_KEY_MAX];
    shm_lease_t l;
    MDB_val key;
    int rc, ok = 1;

    if (!s->has_leases || len > SHM_NAME_MAX) {
        *retry_at = now_ms + SHM_LEASE_RETRY_MS;
        return SHM_NONE;
    }
    key = lease_key(kb, kind, name, len);
    rc = lease_read(s, txn, &key, &l);
    if (rc == MDB_NOTFOUND) { /* the lease manager has not made it yet */
        *retry_at = now_ms + SHM_LEASE_RETRY_MS;
        return SHM_NONE;
    }
    if (rc != 0)
        return rc;
    for (int d = 0; d < SHM_LD_COUNT; d++) {
        if (!ask->limit[d])
            continue;
        if (l.mode == SHM_LM_DEGRADED) {
            uint64_t cap = (uint64_t)((unsigned __int128)ask->limit[d] * l.share_ppm / 1000000u);
            uint64_t cost = ask->cost[d] < cap ? ask->cost[d] : cap;
            if (cap == 0 || ask->used[d] + cost > cap)
                ok = 0;
        } else if (shm_lease_avail(&l, d, now_ms) < ask->cost[d]) {
            ok = 0;
            if (ask->cost[d] > l.want[d])
                l.want[d] = ask->cost[d];
        }
    }
    if (!ok) {
        *retry_at = now_ms + (l.mode == SHM_LM_DEGRADED ? 1000 : SHM_LEASE_RETRY_MS);
        l.starved_ms = now_ms;
        if ((rc = lease_write(s, txn, &key, &l)) != 0)
            return rc;
        return SHM_NONE;
    }
    if (!take)
        return 0;
    for (int d = 0; d < SHM_LD_COUNT; d++) {
        if (!ask->limit[d] || !ask->cost[d])
            continue;
        if (l.mode == SHM_LM_DEGRADED)
            l.deg_used[d] += ask->cost[d];
        else
            lease_take(&l, d, ask->cost[d], now_ms);
    }
    return lease_write(s, txn, &key, &l);
}

/* ---- the lease manager's side ------------------------------------------------------------ */

typedef struct get_ctx_s {
    MDB_val key;
    shm_lease_t *out;
} get_ctx_t;

static int get_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    get_ctx_t *c = arg;
    return lease_read(s, txn, &c->key, c->out);
}

int shm_lease_get(shm_t *s, int kind, const char *name, shm_lease_t *out)
{
    char kb[LEASE_KEY_MAX];
    if (!s || !name || !out || !kind_ok(kind) || !shm__name_ok(name))
        return SHM_EINVAL;
    if (!s->has_leases)
        return SHM_ENOTFOUND;
    get_ctx_t c = {lease_key(kb, kind, name, strlen(name)), out};
    int rc = shm__read(s, get_fn, &c);
    return rc == MDB_NOTFOUND ? SHM_ENOTFOUND : shm__err(rc);
}

static void lease_conv(const void *rec, int64_t now_ms, void *view)
{
    (void)now_ms;
    memcpy(view, rec, sizeof(shm_lease_t));
}

int shm_leases(shm_t *s, shm_lease_t **out, unsigned *n)
{
    if (!s || !out || !n)
        return SHM_EINVAL;
    *out = NULL;
    *n = 0;
    if (!s->has_leases)
        return 0;
    void *v = NULL;
    int rc = shm__list(s, s->dbi_leases, SHM_REC_LEASE, sizeof(shm_lease_t), lease_conv, 0, &v, n);
    if (rc != 0)
        return shm__err(rc);
    *out = v;
    return 0;
}

typedef struct edit_ctx_s {
    int kind;
    const char *name;
    int64_t now_in;
    shm_lease_edit_fn fn;
    void *arg;
} edit_ctx_t;

/* What fn said of l, the record under key. */
static int edit_apply(shm_t *s, MDB_txn *txn, const MDB_val *key, shm_lease_t *l, int r)
{
    if (r == 1)
        return lease_write(s, txn, key, l);
    if (r == -1) {
        int rc = mdb_del(txn, s->dbi_leases, (MDB_val *)key, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    return r; /* 0, or the callback's code */
}

static int edit_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    edit_ctx_t *c = arg;
    char kb[LEASE_KEY_MAX];
    MDB_val key = lease_key(kb, c->kind, c->name, strlen(c->name));
    int64_t now = shm__now(s, c->now_in);
    shm_lease_t l;
    int exists = 1, rc = lease_read(s, txn, &key, &l);
    if (rc == MDB_NOTFOUND) {
        memset(&l, 0, sizeof(l));
        l.kind = (uint32_t)c->kind;
        memcpy(l.name, c->name, strlen(c->name) + 1);
        exists = 0;
    } else if (rc != 0) {
        return rc;
    }
    return edit_apply(s, txn, &key, &l, c->fn(&l, exists, now, c->arg));
}

int shm_lease_edit(shm_t *s, int kind, const char *name, int64_t now_ms, shm_lease_edit_fn fn,
                   void *arg)
{
    if (!s || !name || !fn || !kind_ok(kind) || !shm__name_ok(name))
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    if (!s->has_leases)
        return SHM_EINTERNAL;
    edit_ctx_t c = {kind, name, now_ms, fn, arg};
    return shm__err(shm__write(s, edit_fn, &c));
}

static int each_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    edit_ctx_t *c = arg;
    int64_t now = shm__now(s, c->now_in);
    MDB_cursor *cur;
    MDB_val kv, vv;
    int rc;

    if ((rc = c->fn(NULL, 0, now, c->arg)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi_leases, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &kv, &vv, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &kv, &vv, MDB_NEXT)) {
        shm_lease_t l;
        if ((rc = shm__rec_check(s, SHM_REC_LEASE, &kv, &vv)) != 0)
            break;
        memcpy(&l, vv.mv_data, sizeof(l));
        int r = c->fn(&l, 1, now, c->arg);
        if (r == 1) {
            l.version = SHM_LEASE_VERSION;
            l.size = sizeof(l);
            MDB_val nv = {sizeof(l), &l};
            rc = mdb_cursor_put(cur, &kv, &nv, MDB_CURRENT);
        } else if (r == -1) {
            rc = SHM_EINVAL; /* records are deleted one by one, with shm_lease_edit */
        } else if (r != 0) {
            rc = r;
        }
        if (rc != 0)
            break;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_lease_each(shm_t *s, int64_t now_ms, shm_lease_edit_fn fn, void *arg)
{
    if (!s || !fn)
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    if (!s->has_leases)
        return SHM_EINTERNAL;
    edit_ctx_t c = {0, NULL, now_ms, fn, arg};
    return shm__err(shm__write(s, each_fn, &c));
}
