/* shm_cdef_sync.c - store clients shared by the hosts of a cluster: export, newer-wins
 * adoption, the cluster flag of their budget records (shm_cdef.h, "cluster mode"). */
#include "shm/shm_cdef.h"

#include <stdio.h>
#include <string.h>

#include "shm/shm_int.h"

static const unsigned char zero_digest[32];

static void copy_str(char *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    if (src)
        memcpy(dst, src, strnlen(src, size - 1));
}

static int has_limit(const shm_crec_t *c)
{
    return c->rpm || c->rpd || c->tok_day_max || c->tok_month_max || c->cost_day_max ||
           c->cost_month_max;
}

/* ---- export -------------------------------------------------------------------------------- */

static void drec_to_raw(const void *rec, int64_t now_ms, void *view)
{
    const shm_drec_t *d = rec;
    shm_cdef_raw_t *o = view;
    (void)now_ms;
    memset(o, 0, sizeof(*o));
    copy_str(o->name, sizeof(o->name), d->name);
    o->status = (int)d->status;
    memcpy(o->digest, d->digest, 32);
    memcpy(o->prev_digest, d->prev_digest, 32);
    o->prev_until_ms = d->prev_until_ms;
    o->spec.expires_ms = d->expires_ms;
    copy_str(o->spec.models, sizeof(o->spec.models), d->models);
    o->created_ms = d->created_ms;
    o->updated_ms = d->updated_ms;
    o->revoked_ms = d->revoked_ms;
    o->rotated_ms = d->rotated_ms;
    copy_str(o->created_by, sizeof(o->created_by), d->created_by);
}

typedef struct raw_ctx_s {
    shm_cdef_raw_t *all;
    unsigned n;
} raw_ctx_t;

static int limits_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    raw_ctx_t *c = arg;
    for (unsigned i = 0; i < c->n; i++) {
        shm_crec_t cr;
        shm_cdef_raw_t *o = &c->all[i];
        int rc = shm__crec_get(s, txn, o->name, &cr);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        o->spec.rpm = cr.rpm;
        o->spec.rpd = cr.rpd;
        o->spec.tokens_per_day = cr.tok_day_max;
        o->spec.tokens_per_month = cr.tok_month_max;
        o->spec.cost_per_day_micro_usd = cr.cost_day_max;
        o->spec.cost_per_month_micro_usd = cr.cost_month_max;
        o->cluster = (cr.flags & SHM_CF_CLUSTER) != 0;
    }
    return 0;
}

int shm_cdef_export(shm_t *s, shm_cdef_raw_t **out, unsigned *n)
{
    if (!s || !out || !n)
        return SHM_EINVAL;
    *out = NULL;
    *n = 0;
    if (!s->has_cdefs)
        return 0;
    void *v = NULL;
    int rc =
        shm__list(s, s->dbi_cdefs, SHM_REC_CDEF, sizeof(shm_cdef_raw_t), drec_to_raw, 0, &v, n);
    if (rc != 0)
        return rc;
    /* limits as of a second read: a change between the two has a later updated_ms, so the
     * next export sends it again */
    raw_ctx_t c = {v, *n};
    if ((rc = shm__err(shm__read(s, limits_fn, &c))) != 0) {
        shm_snapshot_free(v);
        *n = 0;
        return rc;
    }
    *out = v;
    return 0;
}

/* ---- newer wins ---------------------------------------------------------------------------- */

int shm_cdef_newer(const shm_cdef_raw_t *a, const shm_cdef_raw_t *b)
{
    if (a->updated_ms != b->updated_ms)
        return a->updated_ms > b->updated_ms;
    if (a->status != b->status)
        return a->status == SHM_CDEF_REVOKED; /* a revoke wins a tie */
    int c = memcmp(a->digest, b->digest, 32);
    if (c != 0)
        return c > 0;
    c = memcmp(a->prev_digest, b->prev_digest, 32);
    if (c != 0)
        return c > 0;
    /* same keys, same time: the rest by value, so that hosts still agree */
    if (a->prev_until_ms != b->prev_until_ms)
        return a->prev_until_ms > b->prev_until_ms;
    return memcmp(&a->spec, &b->spec, sizeof(a->spec)) > 0;
}

/* ---- adoption ------------------------------------------------------------------------------ */

typedef struct adopt_ctx_s {
    const shm_cdef_raw_t *def;
    int cluster;
    const char *actor;
    int64_t now_ms;
    int taken;
} adopt_ctx_t;

/* 0 if digest d is free or name's; SHM_EINVAL if another client holds it. */
static int digest_free_for(shm_t *s, MDB_txn *txn, const unsigned char d[32], const char *name)
{
    char owner[SHM_NAME_MAX + 1];
    int rc = shm__cdig_owner(s, txn, d, owner);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    return strcmp(owner, name) ? SHM_EINVAL : 0;
}

static int holds(const shm_cdef_raw_t *r, const unsigned char d[32])
{
    return !memcmp(r->digest, d, 32) || !memcmp(r->prev_digest, d, 32);
}

static void raw_to_crec(const shm_cdef_raw_t *r, shm_crec_t *c)
{
    c->rpm = r->spec.rpm;
    c->rpd = r->spec.rpd;
    c->tok_day_max = r->spec.tokens_per_day;
    c->tok_month_max = r->spec.tokens_per_month;
    c->cost_day_max = r->spec.cost_per_day_micro_usd;
    c->cost_month_max = r->spec.cost_per_month_micro_usd;
}

static int raw_same(const shm_cdef_raw_t *a, const shm_cdef_raw_t *b)
{
    const shm_cdef_spec_t *x = &a->spec, *y = &b->spec;
    return a->status == b->status && !memcmp(a->digest, b->digest, 32) &&
           !memcmp(a->prev_digest, b->prev_digest, 32) && a->prev_until_ms == b->prev_until_ms &&
           a->created_ms == b->created_ms && a->updated_ms == b->updated_ms &&
           a->revoked_ms == b->revoked_ms && a->rotated_ms == b->rotated_ms &&
           !strcmp(a->created_by, b->created_by) && x->rpm == y->rpm && x->rpd == y->rpd &&
           x->tokens_per_day == y->tokens_per_day && x->tokens_per_month == y->tokens_per_month &&
           x->cost_per_day_micro_usd == y->cost_per_day_micro_usd &&
           x->cost_per_month_micro_usd == y->cost_per_month_micro_usd &&
           x->expires_ms == y->expires_ms && !strcmp(x->models, y->models);
}

void shm_cdef_merge(const shm_cdef_raw_t *mine, const shm_cdef_raw_t *theirs, shm_cdef_raw_t *out)
{
    const shm_cdef_raw_t *base = shm_cdef_newer(theirs, mine) ? theirs : mine;
    const shm_cdef_raw_t *other = base == theirs ? mine : theirs;
    *out = *base;
    /* the keys of the later rotation (a rotation is never lost to a change made meanwhile) */
    if (other->rotated_ms > base->rotated_ms) {
        memcpy(out->digest, other->digest, 32);
        memcpy(out->prev_digest, other->prev_digest, 32);
        out->prev_until_ms = other->prev_until_ms;
        out->rotated_ms = other->rotated_ms;
    }
    /* a revoke is final: never undone by a change made before it was heard */
    if (other->status == SHM_CDEF_REVOKED && base->status != SHM_CDEF_REVOKED) {
        out->status = SHM_CDEF_REVOKED;
        out->revoked_ms = other->revoked_ms;
    }
    out->cluster = 0;
}

static int adopt_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    adopt_ctx_t *c = arg;
    const shm_cdef_raw_t *r = c->def;
    MDB_val k = {strlen(r->name), (void *)r->name}, v;
    shm_drec_t d;
    shm_cdef_raw_t mine;
    shm_crec_t cr;
    int rc, had = 0, type = SHM_EV_CLIENT_ADD;
    c->taken = 0;
    rc = mdb_get(txn, s->dbi_cdefs, &k, &v);
    if (rc == 0) {
        if ((rc = shm__rec_check(s, SHM_REC_CDEF, &k, &v)) != 0)
            return rc;
        memcpy(&d, v.mv_data, sizeof(d));
        had = 1;
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    rc = shm__crec_get(s, txn, r->name, &cr);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (rc == 0 && !(cr.flags & (SHM_CF_STORE | SHM_CF_ORPHANED)))
        return SHM_ECONFLICT; /* a live configuration client */
    if (rc == MDB_NOTFOUND)
        shm__crec_init(&cr, r->name, c->now_ms);
    shm_cdef_raw_t merged = *r;
    if (had) {
        drec_to_raw(&d, 0, &mine);
        mine.spec.rpm = cr.rpm;
        mine.spec.rpd = cr.rpd;
        mine.spec.tokens_per_day = cr.tok_day_max;
        mine.spec.tokens_per_month = cr.tok_month_max;
        mine.spec.cost_per_day_micro_usd = cr.cost_day_max;
        mine.spec.cost_per_month_micro_usd = cr.cost_month_max;
        shm_cdef_merge(&mine, r, &merged);
        if (raw_same(&merged, &mine))
            return 0; /* no news */
        if (merged.status == SHM_CDEF_REVOKED && d.status != SHM_CDEF_REVOKED)
            type = SHM_EV_CLIENT_REVOKE;
        else if (memcmp(merged.digest, d.digest, 32))
            type = SHM_EV_CLIENT_ROTATE;
        else
            type = SHM_EV_CLIENT_SET;
    }
    r = &merged;
    if ((rc = digest_free_for(s, txn, r->digest, r->name)) != 0 ||
        (memcmp(r->prev_digest, zero_digest, 32) &&
         (rc = digest_free_for(s, txn, r->prev_digest, r->name)) != 0))
        return rc;
    /* the digests this store held for it and the new definition does not */
    if (had) {
        const unsigned char *old[2] = {d.digest, d.prev_digest};
        for (int i = 0; i < 2; i++) {
            MDB_val dk = {32, (void *)old[i]};
            if (!memcmp(old[i], zero_digest, 32) || holds(r, old[i]))
                continue;
            if ((rc = mdb_del(txn, s->dbi_cdig, &dk, NULL)) != 0 && rc != MDB_NOTFOUND)
                return rc;
        }
    }
    memset(&d, 0, sizeof(d));
    d.version = SHM_DREC_VERSION;
    d.size = sizeof(d);
    copy_str(d.name, sizeof(d.name), r->name);
    d.status = (uint32_t)r->status;
    memcpy(d.digest, r->digest, 32);
    memcpy(d.prev_digest, r->prev_digest, 32);
    d.prev_until_ms = r->prev_until_ms;
    d.expires_ms = r->spec.expires_ms;
    d.created_ms = r->created_ms;
    d.updated_ms = r->updated_ms;
    d.revoked_ms = r->revoked_ms;
    d.rotated_ms = r->rotated_ms;
    copy_str(d.models, sizeof(d.models), r->spec.models);
    copy_str(d.created_by, sizeof(d.created_by), r->created_by);
    raw_to_crec(r, &cr);
    cr.flags = SHM_CF_STORE;
    if (c->cluster && has_limit(&cr))
        cr.flags |= SHM_CF_CLUSTER;
    if (r->status == SHM_CDEF_REVOKED)
        cr.flags |= SHM_CF_ORPHANED;
    cr.updated_ms = c->now_ms;
    MDB_val dv = {sizeof(d), &d};
    if ((rc = shm__crec_put(s, txn, &cr)) != 0 || (rc = mdb_put(txn, s->dbi_cdefs, &k, &dv, 0)))
        return rc;
    const unsigned char *now[2] = {d.digest, d.prev_digest};
    for (int i = 0; i < 2; i++) {
        MDB_val dk = {32, (void *)now[i]}, nv = {strlen(d.name), d.name};
        if (memcmp(now[i], zero_digest, 32) && (rc = mdb_put(txn, s->dbi_cdig, &dk, &nv, 0)))
            return rc;
    }
    if ((rc = shm__hist_add_db(s, txn, s->dbi_chist, SHM_REC_CHIST, d.name, type, (int)d.status, 0,
                               type == SHM_EV_CLIENT_ROTATE ? d.prev_until_ms : 0, c->actor,
                               c->now_ms)) != 0)
        return rc;
    c->taken = 1;
    return 0;
}

/* A name as nodes send it (server/cluster/clients_msg.h): [A-Za-z0-9._-], 1..SHM_NAME_MAX. */
static int wire_name_ok(const char *name)
{
    size_t n = strnlen(name, SHM_NAME_MAX + 1);
    if (n == 0 || n > SHM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int raw_ok(const shm_cdef_raw_t *r)
{
    return wire_name_ok(r->name) && shm__name_ok(r->name) &&
           (r->status == SHM_CDEF_ACTIVE || r->status == SHM_CDEF_REVOKED) &&
           memcmp(r->digest, zero_digest, 32) && memcmp(r->digest, r->prev_digest, 32) &&
           shm_cdef_models_ok(r->spec.models) && r->spec.expires_ms >= 0 && r->updated_ms > 0 &&
           memchr(r->created_by, '\0', sizeof(r->created_by));
}

int shm_cdef_adopt(shm_t *s, const shm_cdef_raw_t *def, int cluster, const char *node,
                   int64_t now_ms)
{
    if (!s || !def || !raw_ok(def))
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    if (!s->has_cdefs || !s->has_clients)
        return SHM_EINTERNAL;
    char actor[40];
    snprintf(actor, sizeof(actor), "cluster %.31s", node && *node ? node : "?");
    adopt_ctx_t c = {def, cluster, actor, shm__now(s, now_ms), 0};
    int rc = shm__err(shm__write(s, adopt_fn, &c));
    return rc != 0 ? rc : c.taken;
}

/* ---- the cluster flag ---------------------------------------------------------------------- */

typedef struct mark_ctx_s {
    int cluster;
    int changed;
} mark_ctx_t;

static int mark_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    mark_ctx_t *c = arg;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->dbi_cdefs, &cur), op = MDB_FIRST;
    c->changed = 0;
    if (rc != 0)
        return rc;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        char name[SHM_NAME_MAX + 1];
        shm_crec_t cr;
        op = MDB_NEXT;
        if (k.mv_size == 0 || k.mv_size > SHM_NAME_MAX)
            continue;
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        if ((rc = shm__crec_get(s, txn, name, &cr)) == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            break;
        uint32_t flags = cr.flags & ~SHM_CF_CLUSTER;
        if (c->cluster && has_limit(&cr))
            flags |= SHM_CF_CLUSTER;
        if (flags == cr.flags)
            continue;
        cr.flags = flags;
        if ((rc = shm__crec_put(s, txn, &cr)) != 0)
            break;
        c->changed++;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_cdef_cluster_mark(shm_t *s, int cluster)
{
    if (!s)
        return SHM_EINVAL;
    if (s->readonly)
        return SHM_ERDONLY;
    if (!s->has_cdefs || !s->has_clients)
        return 0;
    mark_ctx_t c = {cluster, 0};
    int rc = shm__err(shm__write(s, mark_fn, &c));
    return rc != 0 ? rc : c.changed;
}
