/* shm_cdef.c - client keys kept in the store (see shm_cdef.h). */
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

static void fingerprint(const unsigned char d[32], char out[9])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 4; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[8] = '\0';
}

/* 0 if models is a list of at most SHM_CDEF_MODELS_N names of [A-Za-z0-9._:/-] split by ','. */
static int models_ok(const char *m)
{
    size_t n = strnlen(m, SHM_CDEF_MODELS_MAX + 1), names = 0, len = 0;
    if (n > SHM_CDEF_MODELS_MAX)
        return -1;
    for (size_t i = 0; i <= n; i++) {
        char c = m[i];
        if (c == ',' || c == '\0') {
            if (len == 0 && (n > 0 || c == ','))
                return -1; /* an empty name */
            names += len > 0;
            len = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-'))
            return -1;
        len++;
    }
    return names <= SHM_CDEF_MODELS_N ? 0 : -1;
}

int shm_cdef_models_ok(const char *models)
{
    return models && models_ok(models) == 0;
}

/* ---- records ------------------------------------------------------------------------------ */

static int drec_get(shm_t *s, MDB_txn *txn, const char *name, shm_drec_t *out)
{
    MDB_val k = {strlen(name), (void *)name}, v;
    int rc;
    if (!s->has_cdefs)
        return MDB_NOTFOUND;
    if ((rc = mdb_get(txn, s->dbi_cdefs, &k, &v)) != 0 ||
        (rc = shm__rec_check(s, SHM_REC_CDEF, &k, &v)) != 0)
        return rc;
    memcpy(out, v.mv_data, sizeof(*out));
    return 0;
}

static int drec_put(shm_t *s, MDB_txn *txn, const shm_drec_t *d)
{
    MDB_val k = {strnlen(d->name, SHM_NAME_MAX), (void *)d->name}, v = {sizeof(*d), (void *)d};
    return mdb_put(txn, s->dbi_cdefs, &k, &v, 0);
}

int shm__cdig_owner(shm_t *s, MDB_txn *txn, const unsigned char d[32], char name[SHM_NAME_MAX + 1])
{
    MDB_val k = {32, (void *)d}, v;
    int rc = mdb_get(txn, s->dbi_cdig, &k, &v);
    if (rc != 0)
        return rc;
    if (v.mv_size == 0 || v.mv_size > SHM_NAME_MAX || memchr(v.mv_data, '\0', v.mv_size))
        return shm__corrupt(s, SHM_REC_CDEF, &k, "a digest entry holds no client name");
    memcpy(name, v.mv_data, v.mv_size);
    name[v.mv_size] = '\0';
    return 0;
}

static int digest_put(shm_t *s, MDB_txn *txn, const unsigned char d[32], const char *name)
{
    MDB_val k = {32, (void *)d}, v = {strlen(name), (void *)name};
    return mdb_put(txn, s->dbi_cdig, &k, &v, MDB_NOOVERWRITE);
}

static int digest_del(shm_t *s, MDB_txn *txn, const unsigned char d[32])
{
    MDB_val k = {32, (void *)d};
    int rc = mdb_del(txn, s->dbi_cdig, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int event(shm_t *s, MDB_txn *txn, const shm_drec_t *d, int type, int64_t arg,
                 const char *actor, int64_t now_ms)
{
    return shm__hist_add_db(s, txn, s->dbi_chist, SHM_REC_CHIST, d->name, type, (int)d->status, 0,
                            arg, actor ? actor : "admin", now_ms);
}

static void spec_to_crec(const shm_cdef_spec_t *sp, unsigned what, shm_crec_t *c)
{
    if (what & SHM_CDEF_SET_RPM)
        c->rpm = sp->rpm;
    if (what & SHM_CDEF_SET_RPD)
        c->rpd = sp->rpd;
    if (what & SHM_CDEF_SET_TOK_DAY)
        c->tok_day_max = sp->tokens_per_day;
    if (what & SHM_CDEF_SET_TOK_MON)
        c->tok_month_max = sp->tokens_per_month;
    if (what & SHM_CDEF_SET_COST_DAY)
        c->cost_day_max = sp->cost_per_day_micro_usd;
    if (what & SHM_CDEF_SET_COST_MON)
        c->cost_month_max = sp->cost_per_month_micro_usd;
}

static int writable(shm_t *s)
{
    if (s->readonly)
        return SHM_ERDONLY;
    return s->has_cdefs && s->has_clients ? 0 : SHM_EINTERNAL;
}

/* ---- changes ------------------------------------------------------------------------------ */

typedef struct cdef_ctx_s {
    const char *name;
    const unsigned char *digest;
    const shm_cdef_spec_t *spec;
    unsigned what;
    int64_t grace_ms;
    const char *actor;
    int64_t now_ms;
} cdef_ctx_t;

static int add_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    cdef_ctx_t *c = arg;
    shm_drec_t d;
    shm_crec_t cr;
    char owner[SHM_NAME_MAX + 1];
    int rc = drec_get(s, txn, c->name, &d);
    if (rc != MDB_NOTFOUND)
        return rc == 0 ? SHM_EEXIST : rc;
    rc = shm__crec_get(s, txn, c->name, &cr);
    if (rc == 0 && !(cr.flags & SHM_CF_ORPHANED))
        return SHM_ECONFLICT; /* a live configuration client */
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    if (rc == MDB_NOTFOUND)
        shm__crec_init(&cr, c->name, c->now_ms);
    /* a configuration client gone from it: its usage carries over to the store's */
    cr.flags = SHM_CF_STORE;
    spec_to_crec(c->spec, ~0u, &cr);
    cr.updated_ms = c->now_ms;
    if ((rc = shm__cdig_owner(s, txn, c->digest, owner)) != MDB_NOTFOUND)
        return rc == 0 ? SHM_EINVAL : rc;
    memset(&d, 0, sizeof(d));
    d.version = SHM_DREC_VERSION;
    d.size = sizeof(d);
    copy_str(d.name, sizeof(d.name), c->name);
    d.status = SHM_CDEF_ACTIVE;
    memcpy(d.digest, c->digest, 32);
    d.expires_ms = c->spec->expires_ms;
    d.created_ms = d.updated_ms = c->now_ms;
    copy_str(d.models, sizeof(d.models), c->spec->models);
    copy_str(d.created_by, sizeof(d.created_by), c->actor ? c->actor : "admin");
    if ((rc = shm__crec_put(s, txn, &cr)) != 0 || (rc = drec_put(s, txn, &d)) != 0 ||
        (rc = digest_put(s, txn, d.digest, d.name)) != 0)
        return rc;
    return event(s, txn, &d, SHM_EV_CLIENT_ADD, 0, c->actor, c->now_ms);
}

int shm_cdef_add(shm_t *s, const char *name, const unsigned char digest[32],
                 const shm_cdef_spec_t *spec, const char *actor, int64_t now_ms)
{
    if (!s || !shm__name_ok(name) || !digest || !spec || !memcmp(digest, zero_digest, 32) ||
        models_ok(spec->models) != 0 || spec->expires_ms < 0)
        return SHM_EINVAL;
    int rc = writable(s);
    if (rc != 0)
        return rc;
    cdef_ctx_t c = {name, digest, spec, ~0u, 0, actor, shm__now(s, now_ms)};
    return shm__err(shm__write(s, add_fn, &c));
}

/* The definition and budget record of a live client, for a change. */
static int get_live(shm_t *s, MDB_txn *txn, const char *name, shm_drec_t *d, shm_crec_t *cr)
{
    int rc = drec_get(s, txn, name, d);
    if (rc != 0)
        return rc;
    if (d->status != SHM_CDEF_ACTIVE)
        return SHM_EINVAL;
    rc = shm__crec_get(s, txn, name, cr);
    if (rc == MDB_NOTFOUND)
        return shm__corrupt(s, SHM_REC_CDEF, &(MDB_val){strlen(name), (void *)name},
                            "a store client without its budget record");
    return rc;
}

static int set_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    cdef_ctx_t *c = arg;
    shm_drec_t d;
    shm_crec_t cr;
    int rc = get_live(s, txn, c->name, &d, &cr);
    if (rc != 0)
        return rc;
    spec_to_crec(c->spec, c->what, &cr);
    cr.updated_ms = c->now_ms;
    if (c->what & SHM_CDEF_SET_EXPIRES)
        d.expires_ms = c->spec->expires_ms;
    if (c->what & SHM_CDEF_SET_MODELS)
        copy_str(d.models, sizeof(d.models), c->spec->models);
    d.updated_ms = c->now_ms;
    if ((rc = shm__crec_put(s, txn, &cr)) != 0 || (rc = drec_put(s, txn, &d)) != 0)
        return rc;
    return event(s, txn, &d, SHM_EV_CLIENT_SET, c->what, c->actor, c->now_ms);
}

int shm_cdef_set(shm_t *s, const char *name, const shm_cdef_spec_t *spec, unsigned what,
                 const char *actor, int64_t now_ms)
{
    if (!s || !shm__name_ok(name) || !spec || what == 0 ||
        ((what & SHM_CDEF_SET_MODELS) && models_ok(spec->models) != 0) || spec->expires_ms < 0)
        return SHM_EINVAL;
    int rc = writable(s);
    if (rc != 0)
        return rc;
    cdef_ctx_t c = {name, NULL, spec, what, 0, actor, shm__now(s, now_ms)};
    return shm__err(shm__write(s, set_fn, &c));
}

static int rotate_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    cdef_ctx_t *c = arg;
    shm_drec_t d;
    shm_crec_t cr;
    char owner[SHM_NAME_MAX + 1];
    int rc = get_live(s, txn, c->name, &d, &cr);
    if (rc != 0)
        return rc;
    if ((rc = shm__cdig_owner(s, txn, c->digest, owner)) != MDB_NOTFOUND)
        return rc == 0 ? SHM_EINVAL : rc;
    if (memcmp(d.prev_digest, zero_digest, 32) && (rc = digest_del(s, txn, d.prev_digest)) != 0)
        return rc; /* the key replaced before stops now */
    /* the replaced key stays known (as replaced) until the next rotation */
    memcpy(d.prev_digest, d.digest, 32);
    d.prev_until_ms = c->now_ms + c->grace_ms;
    memcpy(d.digest, c->digest, 32);
    d.rotated_ms = d.updated_ms = c->now_ms;
    if ((rc = drec_put(s, txn, &d)) != 0 || (rc = digest_put(s, txn, d.digest, d.name)) != 0)
        return rc;
    return event(s, txn, &d, SHM_EV_CLIENT_ROTATE, d.prev_until_ms, c->actor, c->now_ms);
}

int shm_cdef_rotate(shm_t *s, const char *name, const unsigned char digest[32], int64_t grace_ms,
                    const char *actor, int64_t now_ms)
{
    if (!s || !shm__name_ok(name) || !digest || !memcmp(digest, zero_digest, 32) || grace_ms < 0)
        return SHM_EINVAL;
    int rc = writable(s);
    if (rc != 0)
        return rc;
    cdef_ctx_t c = {name, digest, NULL, 0, grace_ms, actor, shm__now(s, now_ms)};
    return shm__err(shm__write(s, rotate_fn, &c));
}

static int revoke_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    cdef_ctx_t *c = arg;
    shm_drec_t d;
    shm_crec_t cr;
    int rc = get_live(s, txn, c->name, &d, &cr);
    if (rc != 0)
        return rc;
    d.status = SHM_CDEF_REVOKED;
    d.revoked_ms = d.updated_ms = c->now_ms;
    cr.flags |= SHM_CF_ORPHANED; /* never admitted again, even when authenticated before */
    cr.updated_ms = c->now_ms;
    if ((rc = shm__crec_put(s, txn, &cr)) != 0 || (rc = drec_put(s, txn, &d)) != 0)
        return rc;
    return event(s, txn, &d, SHM_EV_CLIENT_REVOKE, 0, c->actor, c->now_ms);
}

int shm_cdef_revoke(shm_t *s, const char *name, const char *actor, int64_t now_ms)
{
    if (!s || !shm__name_ok(name))
        return SHM_EINVAL;
    int rc = writable(s);
    if (rc != 0)
        return rc;
    cdef_ctx_t c = {name, NULL, NULL, 0, 0, actor, shm__now(s, now_ms)};
    return shm__err(shm__write(s, revoke_fn, &c));
}

/* ---- views -------------------------------------------------------------------------------- */

static void drec_to_view(const void *rec, int64_t now_ms, void *view)
{
    const shm_drec_t *d = rec;
    shm_cdef_t *o = view;
    memset(o, 0, sizeof(*o));
    copy_str(o->name, sizeof(o->name), d->name);
    o->status = (int)d->status;
    o->spec.expires_ms = d->expires_ms;
    copy_str(o->spec.models, sizeof(o->spec.models), d->models);
    fingerprint(d->digest, o->fingerprint);
    if (memcmp(d->prev_digest, zero_digest, 32) && d->prev_until_ms > now_ms) {
        fingerprint(d->prev_digest, o->prev_fingerprint);
        o->prev_until_ms = d->prev_until_ms;
    }
    o->created_ms = d->created_ms;
    o->updated_ms = d->updated_ms;
    o->revoked_ms = d->revoked_ms;
    o->rotated_ms = d->rotated_ms;
    copy_str(o->created_by, sizeof(o->created_by), d->created_by);
}

/* The budget fields of a view from the client's budget record. */
static void limits_to_view(const shm_crec_t *cr, shm_cdef_t *o)
{
    o->spec.rpm = cr->rpm;
    o->spec.rpd = cr->rpd;
    o->spec.tokens_per_day = cr->tok_day_max;
    o->spec.tokens_per_month = cr->tok_month_max;
    o->spec.cost_per_day_micro_usd = cr->cost_day_max;
    o->spec.cost_per_month_micro_usd = cr->cost_month_max;
}

typedef struct view_ctx_s {
    const char *name;
    shm_cdef_t *one;
    shm_cdef_t *all;
    unsigned n;
    shm_event_t *ev;
    unsigned max;
    int64_t now_ms;
} view_ctx_t;

static int get_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    view_ctx_t *c = arg;
    shm_drec_t d;
    shm_crec_t cr;
    int rc = drec_get(s, txn, c->name, &d);
    if (rc != 0)
        return rc;
    drec_to_view(&d, c->now_ms, c->one);
    if ((rc = shm__crec_get(s, txn, c->name, &cr)) == 0)
        limits_to_view(&cr, c->one);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int shm_cdef_get(shm_t *s, const char *name, shm_cdef_t *out)
{
    if (!s || !shm__name_ok(name) || !out)
        return SHM_EINVAL;
    if (!s->has_cdefs)
        return SHM_ENOTFOUND;
    view_ctx_t c = {.name = name, .one = out, .now_ms = shm__now(s, SHM_NOW)};
    return shm__err(shm__read(s, get_fn, &c));
}

static int limits_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    view_ctx_t *c = arg;
    for (unsigned i = 0; i < c->n; i++) {
        shm_crec_t cr;
        int rc = shm__crec_get(s, txn, c->all[i].name, &cr);
        if (rc == 0)
            limits_to_view(&cr, &c->all[i]);
        else if (rc != MDB_NOTFOUND)
            return rc;
    }
    return 0;
}

int shm_cdefs(shm_t *s, shm_cdef_t **out, unsigned *n)
{
    if (!s || !out || !n)
        return SHM_EINVAL;
    *out = NULL;
    *n = 0;
    if (!s->has_cdefs)
        return 0;
    void *v = NULL;
    int64_t now = shm__now(s, SHM_NOW);
    int rc = shm__list(s, s->dbi_cdefs, SHM_REC_CDEF, sizeof(shm_cdef_t), drec_to_view, now, &v, n);
    if (rc != 0)
        return rc;
    view_ctx_t c = {.all = v, .n = *n};
    /* the limits as of a second read: a change between the two shows its new limits */
    if ((rc = shm__err(shm__read(s, limits_fn, &c))) != 0) {
        shm_snapshot_free(v);
        *n = 0;
        return rc;
    }
    *out = v;
    return 0;
}

static int history_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    view_ctx_t *c = arg;
    shm_drec_t d;
    int rc = drec_get(s, txn, c->name, &d);
    if (rc != 0)
        return rc;
    return shm__hist_get(s, txn, s->dbi_chist, SHM_REC_CHIST, c->name, c->ev, c->max, &c->n);
}

int shm_cdef_history(shm_t *s, const char *name, shm_event_t *out, unsigned max, unsigned *n)
{
    if (!s || !shm__name_ok(name) || (!out && max) || !n)
        return SHM_EINVAL;
    *n = 0;
    if (!s->has_cdefs)
        return SHM_ENOTFOUND;
    view_ctx_t c = {.name = name, .ev = out, .max = max};
    int rc = shm__err(shm__read(s, history_fn, &c));
    *n = rc == 0 ? c.n : 0;
    return rc;
}

/* ---- authentication ----------------------------------------------------------------------- */

typedef struct auth_ctx_s {
    const unsigned char *digest;
    int64_t now_ms;
    shm_cdef_auth_t *out;
} auth_ctx_t;

static int auth_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    auth_ctx_t *c = arg;
    shm_cdef_auth_t *o = c->out;
    shm_drec_t d;
    int rc = shm__cdig_owner(s, txn, c->digest, o->name);
    if (rc == MDB_NOTFOUND) {
        o->name[0] = '\0';
        return 0;
    }
    if (rc != 0 || (rc = drec_get(s, txn, o->name, &d)) != 0)
        return rc == MDB_NOTFOUND ? shm__corrupt(s, SHM_REC_CDEF, &(MDB_val){32, (void *)c->digest},
                                                 "a digest entry of a client not in the store")
                                  : rc;
    if (d.status == SHM_CDEF_REVOKED) {
        o->result = SHM_AUTH_REVOKED;
        o->at_ms = d.revoked_ms;
    } else if (d.expires_ms && c->now_ms >= d.expires_ms) {
        o->result = SHM_AUTH_EXPIRED;
        o->at_ms = d.expires_ms;
    } else if (memcmp(d.digest, c->digest, 32) != 0 && c->now_ms >= d.prev_until_ms) {
        o->result = SHM_AUTH_REPLACED; /* the previous key (the only other one indexed) */
        o->at_ms = d.prev_until_ms;
    } else {
        o->result = SHM_AUTH_OK;
        memcpy(o->models, d.models, sizeof(o->models));
    }
    return 0;
}

int shm_cdef_auth(shm_t *s, const unsigned char digest[32], int64_t now_ms, shm_cdef_auth_t *out)
{
    if (!s || !digest || !out)
        return SHM_EINVAL;
    memset(out, 0, sizeof(*out));
    out->result = SHM_AUTH_UNKNOWN;
    if (!s->has_cdefs)
        return 0;
    auth_ctx_t c = {digest, shm__now(s, now_ms), out};
    int rc = shm__err(shm__read(s, auth_fn, &c));
    if (rc != 0) {
        memset(out, 0, sizeof(*out));
        out->result = SHM_AUTH_UNKNOWN;
    }
    return rc;
}
