/* shm_obj_test.c - object affinity (shm/shm_obj.h): put/get/del round trips, expiry and
 * pruning, the bound on the table (eviction of the soonest to expire, never the new entry),
 * replacing an id (one index entry), invalid ids and entries, SHM_NOW through the store's
 * clock, corrupt records and index entries written with raw LMDB (SHM_ECORRUPT, named, nothing
 * written; under ASan), two processes seeing each other's entries at once, close and reopen,
 * stores written before the objects databases (read-only and read-write) and the handles an
 * older build opens. Ends with a small timing figure (a '#' line, not a test). */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shm/shm_int.h"
#include "shm/shm_obj.h"
#include "shm_tutil.h"
#include "t.h"

#define HOUR_MS 3600000LL

typedef struct fix_s {
    char parent[64], dir[96];
    shm_t *s;
} fix_t;

static shm_t *fix_open(fix_t *f)
{
    tu_mkdir(f->parent, sizeof(f->parent), f->dir, sizeof(f->dir));
    return f->s = tu_open(f->dir, T0);
}

static void fix_close(fix_t *f)
{
    shm_store_close(f->s);
    tu_rmdir(f->parent);
}

static shm_obj_t obj(const char *key, const char *group, const char *model, int64_t created,
                     int64_t expires)
{
    shm_obj_t o;

    memset(&o, 0, sizeof(o));
    snprintf(o.key, sizeof(o.key), "%s", key);
    snprintf(o.group, sizeof(o.group), "%s", group);
    snprintf(o.provider, sizeof(o.provider), "openai");
    snprintf(o.client, sizeof(o.client), "team-a");
    snprintf(o.model, sizeof(o.model), "%s", model);
    o.created_ms = created;
    o.expires_ms = expires;
    return o;
}

static int put(shm_t *s, const char *id, const shm_obj_t *o, unsigned max, int64_t now)
{
    return shm_obj_put(s, id, strlen(id), o, max, now);
}

static int get(shm_t *s, const char *id, shm_obj_t *o, int64_t now)
{
    return shm_obj_get(s, id, strlen(id), o, now);
}

static unsigned stored(shm_t *s)
{
    unsigned n = 0;

    return shm_obj_count(s, T0, NULL, &n) == 0 ? n : (unsigned)-1;
}

static unsigned live_at(shm_t *s, int64_t now)
{
    unsigned n = 0;

    return shm_obj_count(s, now, &n, NULL) == 0 ? n : (unsigned)-1;
}

/* entries of dbi, straight from LMDB */
static size_t entries(shm_t *s, MDB_dbi dbi)
{
    MDB_txn *txn;
    MDB_stat st = {0};

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return (size_t)-1;
    mdb_stat(txn, dbi, &st);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* Put size bytes under key (klen bytes) in dbi, in a transaction of its own, behind the
 * store's back. 0 or an LMDB code. */
static int raw_put(shm_t *s, MDB_dbi dbi, const void *key, size_t klen, const void *data,
                   size_t size)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v = {size, (void *)data};
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

    rc = rc ? rc : mdb_put(txn, dbi, &k, &v, 0);
    if (rc == 0)
        return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

static int raw_get_rec(shm_t *s, const char *id, shm_jrec_t *out)
{
    MDB_txn *txn;
    MDB_val k = {strlen(id), (void *)id}, v;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

    rc = rc ? rc : mdb_get(txn, s->dbi_objs, &k, &v);
    if (rc == 0 && v.mv_size != sizeof(*out))
        rc = MDB_BAD_VALSIZE;
    if (rc == 0)
        memcpy(out, v.mv_data, sizeof(*out));
    mdb_txn_abort(txn);
    return rc;
}

static void named(shm_t *s, const char *rec, const char *why, const char *what)
{
    char buf[256];
    int found = shm_store_corrupt(s, buf, sizeof(buf));

    T_OK(found && strstr(buf, rec) && strstr(buf, why), "%s: the store names it: %s", what, buf);
}

/* ---- round trips, invalid arguments ---------------------------------------------------------- */

static void test_roundtrip(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o = obj("oai-1", "org-a", "gpt-4.1", T0, T0 + HOUR_MS), g;
    const char *id = "resp_68af0123456789abcdef";

    T_EQ_INT(put(s, id, &o, 0, T0), 0, "put");
    memset(&g, 0x5a, sizeof(g));
    T_EQ_INT(get(s, id, &g, T0 + 1), 0, "get");
    T_EQ_STR(g.key, "oai-1", "  key");
    T_EQ_STR(g.group, "org-a", "  group");
    T_EQ_STR(g.provider, "openai", "  provider");
    T_EQ_STR(g.client, "team-a", "  client");
    T_EQ_STR(g.model, "gpt-4.1", "  model");
    T_EQ_INT(g.created_ms, T0, "  created_ms");
    T_EQ_INT(g.expires_ms, T0 + HOUR_MS, "  expires_ms");
    T_EQ_INT(get(s, "resp_other", &g, T0), SHM_ENOTFOUND, "unknown id: not found");
    T_EQ_INT(get(s, "resp_68af", &g, T0), SHM_ENOTFOUND, "a prefix of an id is another id");
    T_EQ_INT(stored(s), 1, "count 1");

    o = obj("oai-2", "", "gpt-4o", 0, T0 + 2 * HOUR_MS);
    T_EQ_INT(put(s, "resp_2", &o, 0, T0 + 5), 0, "put with created_ms 0");
    T_EQ_INT(get(s, "resp_2", &g, T0 + 5), 0, "get it");
    T_EQ_INT(g.created_ms, T0 + 5, "  created_ms is the put's now");
    T_EQ_STR(g.group, "", "  empty group kept");

    T_EQ_INT(shm_obj_del(s, id, strlen(id)), 0, "del");
    T_EQ_INT(get(s, id, &g, T0 + 1), SHM_ENOTFOUND, "gone after del");
    T_EQ_INT(shm_obj_del(s, id, strlen(id)), SHM_ENOTFOUND, "del again: not found");
    T_EQ_INT(entries(s, s->dbi_objs), 1, "one record left");
    T_EQ_INT(entries(s, s->dbi_objx), 1, "and one index entry");

    /* an id of exactly SHM_OBJ_ID_MAX bytes, and binary bytes (ids are opaque) */
    char longid[SHM_OBJ_ID_MAX + 2];
    memset(longid, 'r', sizeof(longid));
    o = obj("oai-1", "", "m", T0, T0 + HOUR_MS);
    T_EQ_INT(shm_obj_put(s, longid, SHM_OBJ_ID_MAX, &o, 0, T0), 0, "an id of 127 bytes");
    T_EQ_INT(shm_obj_get(s, longid, SHM_OBJ_ID_MAX, &g, T0), 0, "  found");
    T_EQ_INT(shm_obj_get(s, longid, SHM_OBJ_ID_MAX - 1, &g, T0), SHM_ENOTFOUND,
             "  its 126-byte prefix is not");
    const char bin[] = {'\x01', '\xff', 'x'};
    T_EQ_INT(shm_obj_put(s, bin, sizeof(bin), &o, 0, T0), 0, "an id of binary bytes");
    T_EQ_INT(shm_obj_get(s, bin, sizeof(bin), &g, T0), 0, "  found");
    fix_close(&f);
}

static void test_invalid(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o = obj("oai-1", "", "m", T0, T0 + HOUR_MS), g, bad;
    char longid[SHM_OBJ_ID_MAX + 2];

    memset(longid, 'r', sizeof(longid));
    T_EQ_INT(shm_obj_put(s, NULL, 3, &o, 0, T0), SHM_EINVAL, "put: NULL id");
    T_EQ_INT(shm_obj_put(s, "abc", 0, &o, 0, T0), SHM_EINVAL, "put: empty id");
    T_EQ_INT(shm_obj_put(s, longid, SHM_OBJ_ID_MAX + 1, &o, 0, T0), SHM_EINVAL,
             "put: an id of 128 bytes");
    T_EQ_INT(shm_obj_put(s, "ab\0cd", 5, &o, 0, T0), SHM_EINVAL, "put: NUL inside the id");
    T_EQ_INT(shm_obj_put(NULL, "abc", 3, &o, 0, T0), SHM_EINVAL, "put: NULL store");
    T_EQ_INT(shm_obj_put(s, "abc", 3, NULL, 0, T0), SHM_EINVAL, "put: NULL entry");
    bad = o;
    bad.key[0] = '\0';
    T_EQ_INT(put(s, "abc", &bad, 0, T0), SHM_EINVAL, "put: empty key name");
    bad = o;
    memset(bad.model, 'm', sizeof(bad.model));
    T_EQ_INT(put(s, "abc", &bad, 0, T0), SHM_EINVAL, "put: model without its NUL");
    bad = o;
    memset(bad.group, 'g', sizeof(bad.group));
    T_EQ_INT(put(s, "abc", &bad, 0, T0), SHM_EINVAL, "put: group without its NUL");
    bad = o;
    bad.expires_ms = T0;
    T_EQ_INT(put(s, "abc", &bad, 0, T0), SHM_EINVAL, "put: expires_ms == now");
    bad.expires_ms = T0 - 1;
    T_EQ_INT(put(s, "abc", &bad, 0, T0), SHM_EINVAL, "put: expires_ms before now");
    T_EQ_INT(stored(s), 0, "nothing stored by the refused puts");

    T_EQ_INT(shm_obj_get(s, NULL, 3, &g, T0), SHM_EINVAL, "get: NULL id");
    T_EQ_INT(shm_obj_get(s, "abc", 0, &g, T0), SHM_EINVAL, "get: empty id");
    T_EQ_INT(shm_obj_get(s, longid, SHM_OBJ_ID_MAX + 1, &g, T0), SHM_EINVAL, "get: 128 bytes");
    T_EQ_INT(shm_obj_get(s, "a\0b", 3, &g, T0), SHM_EINVAL, "get: NUL inside");
    T_EQ_INT(shm_obj_get(s, "abc", 3, NULL, T0), SHM_EINVAL, "get: NULL out");
    T_EQ_INT(shm_obj_del(s, "abc", 0), SHM_EINVAL, "del: empty id");
    T_EQ_INT(shm_obj_del(s, longid, SHM_OBJ_ID_MAX + 1), SHM_EINVAL, "del: 128 bytes");
    T_EQ_INT(shm_obj_del(s, "a\0b", 3), SHM_EINVAL, "del: NUL inside");
    T_EQ_INT(shm_obj_prune(NULL, T0, NULL), SHM_EINVAL, "prune: NULL store");
    T_EQ_INT(shm_obj_count(NULL, T0, NULL, NULL), SHM_EINVAL, "count: NULL store");
    fix_close(&f);
}

/* ---- expiry, the bound, replacing ------------------------------------------------------------ */

static void test_expiry(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o, g;
    unsigned removed = 99, live, st;

    o = obj("k", "", "m", T0, T0 + 1000);
    T_EQ_INT(put(s, "a", &o, 0, T0), 0, "put a, expires T0+1000");
    o.expires_ms = T0 + 2000;
    T_EQ_INT(put(s, "b", &o, 0, T0), 0, "put b, expires T0+2000");
    o.expires_ms = T0 + 3000;
    T_EQ_INT(put(s, "c", &o, 0, T0), 0, "put c, expires T0+3000");
    T_EQ_INT(get(s, "a", &g, T0 + 999), 0, "a live at T0+999");
    T_EQ_INT(get(s, "a", &g, T0 + 1000), SHM_ENOTFOUND, "a expired at T0+1000");
    T_EQ_INT(shm_obj_count(s, T0 + 2000, &live, &st), 0, "count at T0+2000");
    T_OK(live == 1 && st == 3, "  1 live of 3 stored (live %u, stored %u)", live, st);
    T_EQ_INT(shm_obj_prune(s, T0 + 1999, &removed), 0, "prune at T0+1999");
    T_EQ_INT(removed, 1, "  removed a only");
    T_EQ_INT(shm_obj_prune(s, T0 + 2000, &removed), 0, "prune at T0+2000");
    T_EQ_INT(removed, 1, "  removed b");
    T_EQ_INT(shm_obj_prune(s, T0 + 2000, &removed), 0, "prune again");
    T_EQ_INT(removed, 0, "  nothing more");
    T_EQ_INT(stored(s), 1, "one stored");
    T_EQ_INT(entries(s, s->dbi_objx), 1, "one index entry");
    T_EQ_INT(get(s, "c", &g, T0 + 2999), 0, "c still there");
    T_EQ_INT(shm_obj_del(s, "c", 1), 0, "del c");

    /* an expired entry not yet pruned: del removes it (0), get never shows it */
    o.expires_ms = T0 + 10;
    T_EQ_INT(put(s, "d", &o, 0, T0), 0, "put d, expires T0+10");
    T_EQ_INT(get(s, "d", &g, T0 + 50), SHM_ENOTFOUND, "d expired");
    T_EQ_INT(shm_obj_del(s, "d", 1), 0, "del of the expired d removes it");
    T_EQ_INT(stored(s), 0, "empty");

    /* prune across several transactions: 3000 expired entries */
    char id[32];
    int ok = 1;
    for (int i = 0; i < 3000 && ok; i++) {
        snprintf(id, sizeof(id), "resp_%05d", i);
        o.expires_ms = T0 + 100 + i;
        ok = put(s, id, &o, 10000, T0) == 0;
    }
    T_OK(ok, "3000 puts");
    o.expires_ms = T0 + 100000;
    T_EQ_INT(put(s, "keep", &o, 10000, T0), 0, "one that lives on");
    T_EQ_INT(live_at(s, T0 + 5000), 1, "1 live at T0+5000");
    T_EQ_INT(shm_obj_prune(s, T0 + 5000, &removed), 0, "prune all expired");
    T_EQ_INT(removed, 3000, "  removed 3000 (in transactions of 1024)");
    T_EQ_INT(stored(s), 1, "  one left");
    T_EQ_INT(entries(s, s->dbi_objx), 1, "  one index entry left");

    /* a put prunes up to SHM_OBJ_PRUNE_BATCH expired entries on its way */
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof(id), "soon_%02d", i);
        o.expires_ms = T0 + 10 + i;
        put(s, id, &o, 0, T0);
    }
    T_EQ_INT(stored(s), 51, "51 stored");
    o.expires_ms = T0 + 100000;
    T_EQ_INT(put(s, "later", &o, 0, T0 + 1000), 0, "a put after they expired");
    T_EQ_INT(stored(s), 51 - SHM_OBJ_PRUNE_BATCH + 1, "  it removed %d of them",
             SHM_OBJ_PRUNE_BATCH);
    T_EQ_INT(get(s, "soon_00", &g, T0), SHM_ENOTFOUND, "  the soonest first");
    T_EQ_INT(get(s, "soon_16", &g, T0), 0, "  the 17th still stored (read at T0)");
    fix_close(&f);
}

static void test_bound(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o = obj("k", "g", "m", 0, 0), g;
    char id[32];
    int ok = 1, over = 0;

    for (int i = 0; i < 1000 && ok; i++) {
        int64_t now = T0 + i * 1000LL;
        snprintf(id, sizeof(id), "resp_%04d", i);
        o.expires_ms = now + HOUR_MS; /* the same TTL: the oldest expire first */
        ok = put(s, id, &o, 100, now) == 0;
        if (stored(s) > 100)
            over++;
    }
    T_OK(ok, "1000 puts with max_entries 100");
    T_EQ_INT(over, 0, "never more than 100 stored");
    T_EQ_INT(stored(s), 100, "100 stored");
    T_EQ_INT(entries(s, s->dbi_objx), 100, "100 index entries");
    int newest = 0, oldest = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof(id), "resp_%04d", i);
        int rc = get(s, id, &g, T0 + 999000);
        if (i >= 900 && rc == 0)
            newest++;
        if (i < 900 && rc == SHM_ENOTFOUND)
            oldest++;
    }
    T_EQ_INT(newest, 100, "the newest 100 survive");
    T_EQ_INT(oldest, 900, "the oldest 900 are gone");

    /* the new entry is never the one evicted, even when it expires first */
    o.expires_ms = T0 + 999000 + 1000; /* sooner than any of the others */
    T_EQ_INT(put(s, "short", &o, 100, T0 + 999000), 0, "put one with a short TTL");
    T_EQ_INT(get(s, "short", &g, T0 + 999000), 0, "  it is there");
    T_EQ_INT(get(s, "resp_0900", &g, T0 + 999000), SHM_ENOTFOUND, "  the soonest other went");
    T_EQ_INT(stored(s), 100, "  still 100");

    /* a lowered bound: each put takes the table down by up to SHM_OBJ_EVICT_BATCH - 1 */
    o.expires_ms = T0 + 10 * HOUR_MS;
    T_EQ_INT(put(s, "low", &o, 10, T0 + 999000), 0, "put with max_entries 10");
    T_EQ_INT(stored(s), 100 - SHM_OBJ_EVICT_BATCH + 1, "  %d stored",
             100 - SHM_OBJ_EVICT_BATCH + 1);
    T_EQ_INT(put(s, "low2", &o, 10, T0 + 999000), 0, "and again");
    T_EQ_INT(stored(s), 10, "  10 stored: within the bound");
    T_EQ_INT(entries(s, s->dbi_objx), 10, "  10 index entries");
    fix_close(&f);
}

static void test_replace(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o = obj("k-1", "", "m-1", T0, T0 + 1000), g;
    unsigned removed = 99;

    T_EQ_INT(put(s, "resp_x", &o, 0, T0), 0, "put x, expires T0+1000, key k-1");
    o = obj("k-2", "grp", "m-2", T0 + 10, T0 + 5000);
    T_EQ_INT(put(s, "resp_x", &o, 0, T0 + 10), 0, "put x again, expires T0+5000, key k-2");
    T_EQ_INT(stored(s), 1, "one record");
    T_EQ_INT(entries(s, s->dbi_objx), 1, "one index entry: the old one is gone");
    T_EQ_INT(get(s, "resp_x", &g, T0 + 2000), 0, "x live at T0+2000 (past the old expiry)");
    T_OK(strcmp(g.key, "k-2") == 0 && strcmp(g.model, "m-2") == 0 && g.expires_ms == T0 + 5000,
         "  the new entry (key %s, model %s)", g.key, g.model);
    T_EQ_INT(shm_obj_prune(s, T0 + 2000, &removed), 0, "prune at T0+2000");
    T_EQ_INT(removed, 0, "  removes nothing: the old expiry is forgotten");
    T_EQ_INT(live_at(s, T0 + 2000), 1, "one live");
    T_EQ_INT(put(s, "resp_x", &o, 1, T0 + 20), 0, "replace with max_entries 1");
    T_EQ_INT(get(s, "resp_x", &g, T0 + 20), 0, "  it does not evict itself");
    T_EQ_INT(shm_obj_prune(s, T0 + 5000, &removed), 0, "prune at T0+5000");
    T_EQ_INT(removed, 1, "  removes it");
    T_EQ_INT(entries(s, s->dbi_objs) + entries(s, s->dbi_objx), 0, "  record and index gone");
    fix_close(&f);
}

/* ---- SHM_NOW --------------------------------------------------------------------------------- */

static int64_t fake_now;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static void test_now(void)
{
    char parent[64], dir[96], err[256];
    shm_t *s = NULL;
    shm_obj_t o = obj("k", "", "m", 0, 0), g;
    unsigned removed = 0;

    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    fake_now = T0 + 7;
    shm_opts_t opts = {.dir = dir, .clock = fake_clock};
    T_EQ_INT(shm_store_open(&opts, SHM_NOW, &s, err, sizeof(err)), 0, "open with a fake clock");
    o.expires_ms = T0 + 1000;
    T_EQ_INT(put(s, "n", &o, 0, SHM_NOW), 0, "put with SHM_NOW");
    T_EQ_INT(get(s, "n", &g, SHM_NOW), 0, "get with SHM_NOW");
    T_EQ_INT(g.created_ms, T0 + 7, "  created_ms from the store's clock");
    fake_now = T0 + 1000;
    T_EQ_INT(get(s, "n", &g, SHM_NOW), SHM_ENOTFOUND, "expired by the store's clock");
    T_EQ_INT(live_at(s, SHM_NOW), 0, "count: none live");
    T_EQ_INT(put(s, "m", &o, 0, SHM_NOW), SHM_EINVAL,
             "put whose expiry is not after the store's now: refused");
    T_EQ_INT(shm_obj_prune(s, SHM_NOW, &removed), 0, "prune with SHM_NOW");
    T_EQ_INT(removed, 1, "  removed it");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- corrupt records ------------------------------------------------------------------------- */

static void test_corrupt(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o = obj("k", "", "m", T0, T0 + 1000), g;
    shm_jrec_t r;
    unsigned removed = 99;

    /* a 3-byte record without an index entry */
    T_EQ_INT(raw_put(s, s->dbi_objs, "resp_bad", 8, "abc", 3), 0, "a 3-byte record, raw");
    memset(&g, 0x5a, sizeof(g));
    T_EQ_INT(get(s, "resp_bad", &g, T0), SHM_ECORRUPT, "get refuses it");
    T_OK(g.key[0] == 0x5a, "  out untouched");
    named(s, "resp_bad", "3 bytes, not 408", "3-byte record");
    T_EQ_INT(put(s, "resp_bad", &o, 0, T0), SHM_ECORRUPT, "put of that id refuses it");
    T_EQ_INT(shm_obj_del(s, "resp_bad", 8), SHM_ECORRUPT, "del refuses it");
    T_EQ_INT(entries(s, s->dbi_objs), 1, "  the record is still there, not overwritten");
    T_EQ_INT(entries(s, s->dbi_objx), 0, "  nothing indexed");
    T_EQ_INT(put(s, "resp_ok", &o, 0, T0), 0, "other ids are served as before");
    T_EQ_INT(get(s, "resp_ok", &g, T0), 0, "  and found");
    T_EQ_INT(shm_obj_del(s, "resp_ok", 7), 0, "  and deleted");
    fix_close(&f);

    /* a whole record, damaged, with its index entry: pruning and eviction meet it */
    static const struct {
        const char *what, *why;
    } dmg[] = {{"a 3-byte record", "3 bytes, not 408"},
               {"record version 99", "record version 99"},
               {"a size field of 17", "size field says 17"},
               {"a model field without NUL", "model field"},
               {"a client field without NUL", "client field"}};
    for (unsigned d = 0; d < sizeof(dmg) / sizeof(dmg[0]); d++) {
        s = fix_open(&f);
        o = obj("k", "", "m", T0, T0 + 1000);
        put(s, "resp_bad", &o, 0, T0);
        o.expires_ms = T0 + 5000;
        put(s, "resp_later", &o, 0, T0);
        T_EQ_INT(raw_get_rec(s, "resp_bad", &r), 0, "%s: record read", dmg[d].what);
        if (d == 1)
            r.version = 99;
        if (d == 2)
            r.size = 17;
        if (d == 3)
            memset(r.model, 'x', sizeof(r.model));
        if (d == 4)
            memset(r.client, 'c', sizeof(r.client));
        if (d == 0)
            raw_put(s, s->dbi_objs, "resp_bad", 8, "abc", 3);
        else
            raw_put(s, s->dbi_objs, "resp_bad", 8, &r, sizeof(r));
        T_EQ_INT(get(s, "resp_bad", &g, T0), SHM_ECORRUPT, "%s: get refuses it", dmg[d].what);
        named(s, "resp_bad", dmg[d].why, dmg[d].what);
        T_EQ_INT(get(s, "resp_later", &g, T0), 0, "%s: another id is served", dmg[d].what);
        T_EQ_INT(shm_obj_prune(s, T0 + 2000, &removed), SHM_ECORRUPT,
                 "%s: prune that reaches it refuses it", dmg[d].what);
        T_EQ_INT(removed, 0, "  removed nothing");
        T_EQ_INT(put(s, "resp_new", &o, 0, T0 + 2000), SHM_ECORRUPT,
                 "%s: a put whose pruning reaches it refuses it", dmg[d].what);
        T_EQ_INT(put(s, "resp_new", &o, 2, T0), SHM_ECORRUPT,
                 "%s: so does a put whose eviction reaches it", dmg[d].what);
        T_EQ_INT(put(s, "resp_new", &o, 0, T0), 0, "%s: a put that does not reach it works",
                 dmg[d].what);
        T_EQ_INT(entries(s, s->dbi_objs), 3, "  3 records");
        T_EQ_INT(entries(s, s->dbi_objx), 3, "  3 index entries");
        T_EQ_INT(shm_obj_count(s, T0 + 2000, NULL, NULL), 0, "%s: count reads no record: 0",
                 dmg[d].what);
        fix_close(&f);
    }

    /* index entries that are not what an index entry is */
    s = fix_open(&f);
    o = obj("k", "", "m", T0, T0 + 1000);
    put(s, "resp_a", &o, 0, T0);
    T_EQ_INT(raw_put(s, s->dbi_objx, "abc", 3, "", 0), 0, "a 3-byte index key, raw");
    T_EQ_INT(shm_obj_count(s, T0, NULL, NULL), SHM_ECORRUPT, "count refuses it");
    named(s, "object index", "a key of 3 bytes", "3-byte index key");
    T_EQ_INT(shm_obj_prune(s, T0 + 5000, &removed), SHM_ECORRUPT, "prune refuses it");
    T_EQ_INT(get(s, "resp_a", &g, T0), 0, "get of another id works");
    fix_close(&f);

    s = fix_open(&f);
    unsigned char key[8 + 6];
    uint64_t u = (uint64_t)(T0 + 10) ^ (UINT64_C(1) << 63);
    for (int i = 0; i < 8; i++)
        key[i] = (unsigned char)(u >> (56 - 8 * i));
    memcpy(key + 8, "resp_z", 6);
    T_EQ_INT(raw_put(s, s->dbi_objx, key, sizeof(key), "", 0), 0,
             "an index entry without its record, raw");
    T_EQ_INT(shm_obj_prune(s, T0 + 5000, &removed), SHM_ECORRUPT, "prune refuses it");
    named(s, "resp_z", "no record", "index entry without record");
    T_EQ_INT(raw_put(s, s->dbi_objx, key, sizeof(key), "xy", 2), 0, "with a 2-byte value");
    T_EQ_INT(shm_obj_count(s, T0 + 5000, NULL, NULL), SHM_ECORRUPT, "count refuses it");
    named(s, "resp_z", "a value of 2 bytes", "index value");
    fix_close(&f);
}

/* ---- processes, reopening, older stores ------------------------------------------------------ */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* wait up to 10 s for a byte on fd */
static int wait_byte(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    return poll(&p, 1, 10000) == 1 && read(fd, &c, 1) == 1 ? 0 : -1;
}

static void test_processes(void)
{
    char parent[64], dir[96];
    int to_parent[2], to_child[2];
    shm_obj_t o, g;

    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_store_close(tu_open(dir, SHM_NOW)); /* created, then closed before the fork */
    if (pipe(to_parent) != 0 || pipe(to_child) != 0) {
        T_OK(0, "pipes");
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        shm_t *s = tu_open(dir, SHM_NOW);
        int rc = 1;
        o = obj("k-child", "", "m", 0, wall_ms() + HOUR_MS);
        if (s && put(s, "resp_child", &o, 0, SHM_NOW) == 0 && write(to_parent[1], "x", 1) == 1 &&
            wait_byte(to_child[0]) == 0 && get(s, "resp_parent", &g, SHM_NOW) == 0 &&
            strcmp(g.key, "k-parent") == 0)
            rc = 0;
        shm_store_close(s);
        _exit(rc);
    }
    shm_t *s = tu_open(dir, SHM_NOW);
    T_OK(s != NULL, "parent opened the store");
    T_EQ_INT(wait_byte(to_parent[0]), 0, "the child put its entry");
    T_EQ_INT(get(s, "resp_child", &g, SHM_NOW), 0, "the parent sees it at once");
    T_EQ_STR(g.key, "k-child", "  the child's key");
    o = obj("k-parent", "", "m", 0, wall_ms() + HOUR_MS);
    T_EQ_INT(put(s, "resp_parent", &o, 0, SHM_NOW), 0, "the parent puts one");
    T_EQ_INT(write(to_child[1], "x", 1), 1, "tell the child");
    int status = -1;
    waitpid(pid, &status, 0);
    T_OK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw the parent's entry");
    shm_store_close(s);
    close(to_parent[0]);
    close(to_parent[1]);
    close(to_child[0]);
    close(to_child[1]);
    tu_rmdir(parent);
}

static void test_reopen(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o = obj("k-1", "grp", "gpt-4.1-mini", T0, T0 + HOUR_MS), g;

    T_EQ_INT(put(s, "resp_a", &o, 0, T0), 0, "put a");
    o.expires_ms = T0 + 10;
    T_EQ_INT(put(s, "resp_b", &o, 0, T0), 0, "put b (expires soon)");
    shm_store_close(s);
    f.s = s = tu_open(f.dir, T0);
    T_OK(s != NULL, "reopened");
    T_EQ_INT(get(s, "resp_a", &g, T0 + 1), 0, "a survives close and reopen");
    T_OK(strcmp(g.key, "k-1") == 0 && strcmp(g.group, "grp") == 0 &&
             strcmp(g.model, "gpt-4.1-mini") == 0,
         "  with its fields");
    T_EQ_INT(stored(s), 2, "2 stored");
    T_EQ_INT(live_at(s, T0 + 10), 1, "1 live at T0+10");
    shm_store_close(s);

    shm_opts_t ro = {.dir = f.dir, .readonly = 1};
    char err[256];
    f.s = NULL;
    T_EQ_INT(shm_store_open(&ro, T0, &f.s, err, sizeof(err)), 0, "read-only open");
    s = f.s;
    T_EQ_INT(get(s, "resp_a", &g, T0 + 1), 0, "  get works read-only");
    T_EQ_INT(put(s, "resp_c", &o, 0, T0), SHM_ERDONLY, "  put: read-only");
    T_EQ_INT(shm_obj_del(s, "resp_a", 6), SHM_ERDONLY, "  del: read-only");
    T_EQ_INT(shm_obj_prune(s, T0, NULL), SHM_ERDONLY, "  prune: read-only");
    fix_close(&f);
}

/* A small map: puts hit MDB_MAP_FULL, the map grows and the put is re-run; at map_max the put
 * fails with SHM_EFULL and writes nothing. */
static void test_map_growth(void)
{
    char parent[64], dir[96], err[256];
    shm_t *s = NULL;
    shm_obj_t o = obj("k", "grp", "gpt-4.1", 0, 0), g;
    char id[40];
    int ok = 1, rc = 0, i;

    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_opts_t opts = {.dir = dir, .map_size = 256 << 10, .map_max = 64 << 20};
    T_EQ_INT(shm_store_open(&opts, T0, &s, err, sizeof(err)), 0, "open with a 256 KiB map");
    for (i = 0; i < 5000 && ok; i++) {
        snprintf(id, sizeof(id), "resp_grow_%05d", i);
        o.expires_ms = T0 + HOUR_MS + i;
        ok = put(s, id, &o, 0, T0) == 0;
    }
    T_OK(ok, "5000 puts (~2.5 MB) through map growth");
    T_EQ_INT(stored(s), 5000, "  all 5000 stored");
    T_EQ_INT(entries(s, s->dbi_objx), 5000, "  5000 index entries");
    T_EQ_INT(get(s, "resp_grow_04999", &g, T0), 0, "  the last one found");
    shm_store_info_t info;
    T_OK(shm_store_info(s, &info) == 0 && info.map_size > (256 << 10), "  the map grew (%zu)",
         info.map_size);
    shm_store_close(s);
    tu_rmdir(parent);

    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    opts = (shm_opts_t){.dir = dir, .map_size = 256 << 10, .map_max = 256 << 10};
    T_EQ_INT(shm_store_open(&opts, T0, &s, err, sizeof(err)), 0, "open with map_max 256 KiB");
    for (i = 0; i < 5000 && rc == 0; i++) {
        snprintf(id, sizeof(id), "resp_full_%05d", i);
        o.expires_ms = T0 + HOUR_MS + i;
        rc = put(s, id, &o, 0, T0);
    }
    T_EQ_INT(rc, SHM_EFULL, "at map_max: SHM_EFULL");
    T_EQ_INT(stored(s), (unsigned)(i - 1), "  the failed put wrote nothing (%d stored)", i - 1);
    T_EQ_INT(entries(s, s->dbi_objx), (size_t)(i - 1), "  nor an index entry");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* A store as an older build left it: the same schema, no objects databases. */
static void test_older_store(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o = obj("k", "", "m", T0, T0 + HOUR_MS), g;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    unsigned live = 9, st = 9;
    int rc;

    put(s, "resp_a", &o, 0, T0);
    shm_store_close(s);
    f.s = NULL;

    /* What an older build opens (max DBIs 8, the seven databases it knows) works with the
     * objects databases in the file. */
    static const char *const old_dbs[] = {"meta",      "keys",   "latency", "history",
                                          "providers", "owners", "clients"};
    rc = mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    rc = rc ? rc : mdb_env_open(env, f.dir, 0, 0600);
    rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
    for (unsigned i = 0; rc == 0 && i < 7; i++)
        rc = mdb_dbi_open(txn, old_dbs[i], MDB_CREATE, &dbi);
    rc = rc ? rc : mdb_txn_commit(txn);
    T_EQ_INT(rc, 0, "an older build's open (8 DBIs, 7 databases) works on a new store");
    /* ... and the store as it had it: drop both objects databases */
    rc = mdb_txn_begin(env, NULL, 0, &txn);
    rc = rc ? rc : mdb_dbi_open(txn, "objects", 0, &dbi);
    rc = rc ? rc : mdb_drop(txn, dbi, 1);
    rc = rc ? rc : mdb_dbi_open(txn, "objects_by_expiry", 0, &dbi);
    rc = rc ? rc : mdb_drop(txn, dbi, 1);
    rc = rc ? rc : mdb_txn_commit(txn);
    mdb_env_close(env);
    T_EQ_INT(rc, 0, "dropped the objects databases, raw");

    shm_opts_t ro = {.dir = f.dir, .readonly = 1};
    char err[256];
    T_EQ_INT(shm_store_open(&ro, T0, &s, err, sizeof(err)), 0, "read-only open of it");
    T_EQ_INT(get(s, "resp_a", &g, T0), SHM_ENOTFOUND, "  get: not found");
    T_EQ_INT(shm_obj_count(s, T0, &live, &st), 0, "  count works");
    T_OK(live == 0 && st == 0, "  and is 0");
    shm_store_close(s);
    f.s = s = tu_open(f.dir, T0);
    T_OK(s != NULL, "read-write open of it (same schema version)");
    T_EQ_INT(put(s, "resp_b", &o, 0, T0), 0, "  gains the databases: put works");
    T_EQ_INT(get(s, "resp_b", &g, T0), 0, "  get works");
    fix_close(&f);
}

/* ---- a figure -------------------------------------------------------------------------------- */

static double mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void bench(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t o = obj("k", "grp", "gpt-4.1", 0, 0), g;
    char id[40];
    enum { N = 20000, MAX = 10000 };
    int ok = 1;

    double t = mono_us();
    for (int i = 0; i < N && ok; i++) {
        snprintf(id, sizeof(id), "resp_68af%026d", i);
        o.expires_ms = T0 + i + HOUR_MS;
        ok = put(s, id, &o, MAX, T0 + i) == 0;
    }
    double put_us = (mono_us() - t) / N;
    t = mono_us();
    for (int i = N - MAX; i < N && ok; i++) {
        snprintf(id, sizeof(id), "resp_68af%026d", i);
        ok = get(s, id, &g, T0 + N) == 0;
    }
    double get_us = (mono_us() - t) / MAX;
    T_OK(ok, "%d puts (max_entries %d) and %d gets", N, MAX, MAX);
    printf("# put %.1f us, get %.1f us per call (one commit per put, table full, this build)\n",
           put_us, get_us);
    fix_close(&f);
}

/* A loop iteration's objects in one transaction: all or none, bounded like single puts. */
static void test_batch(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_obj_t a = obj("k-a", "", "m", 0, T0 + 60000), b = obj("k-b", "org", "m", 0, T0 + 60000);
    shm_obj_t late = obj("k-late", "", "m", 0, T0 + 90000), bad = obj("", "", "m", 0, T0 + 60000);
    shm_obj_t past = obj("k-p", "", "m", 0, T0 - 1), got;
    shm_obj_put_t items[4] = {{"resp_a", 6, &a}, {"resp_b", 6, &b}, {"resp_a", 6, &late}};

    T_EQ_INT(shm_obj_put_batch(s, items, 3, 0, T0), 0, "batch: three puts in one transaction");
    T_OK(get(s, "resp_a", &got, T0) == 0 && strcmp(got.key, "k-late") == 0 &&
             got.expires_ms == T0 + 90000,
         "batch: the same id twice, the later wins");
    T_OK(get(s, "resp_b", &got, T0) == 0 && strcmp(got.group, "org") == 0, "batch: the other");
    T_EQ_INT((int)stored(s), 2, "batch: two entries");
    T_EQ_INT((int)entries(s, s->dbi_objx), 2, "batch: ... and two index entries");
    items[0] = (shm_obj_put_t){"resp_c", 6, &a};
    items[1] = (shm_obj_put_t){"resp_d", 6, &bad};
    T_EQ_INT(shm_obj_put_batch(s, items, 2, 0, T0), SHM_EINVAL,
             "batch: an invalid item refuses all");
    T_EQ_INT(get(s, "resp_c", &got, T0), SHM_ENOTFOUND, "batch: ... nothing of it written");
    items[1] = (shm_obj_put_t){"resp_d", 6, &past};
    T_EQ_INT(shm_obj_put_batch(s, items, 2, 0, T0), SHM_EINVAL,
             "batch: an item already expired refuses all");
    T_EQ_INT(get(s, "resp_c", &got, T0), SHM_ENOTFOUND, "batch: ... nothing of it written");
    T_EQ_INT(shm_obj_put_batch(s, items, 0, 0, T0), 0, "batch: empty");
    T_EQ_INT(shm_obj_put_batch(s, NULL, 1, 0, T0), SHM_EINVAL, "batch: no items");

    /* the bound holds for batches: 3 batches of 8 into a table of 10 */
    char ids[24][16];
    shm_obj_put_t many[8];
    int over = 0;
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 8; i++) {
            snprintf(ids[round * 8 + i], sizeof(ids[0]), "resp_m%d", round * 8 + i);
            many[i] = (shm_obj_put_t){ids[round * 8 + i], strlen(ids[round * 8 + i]), &a};
        }
        T_EQ_INT(shm_obj_put_batch(s, many, 8, 10, T0), 0, "batch round %d into a table of 10",
                 round);
        over |= stored(s) > 10;
    }
    T_OK(!over, "batch: the table never holds more than max_entries (%u)", stored(s));
    T_EQ_INT(get(s, "resp_m23", &got, T0), 0, "batch: the newest entry is there");
    fix_close(&f);
}

int main(void)
{
    test_roundtrip();
    test_invalid();
    test_expiry();
    test_bound();
    test_replace();
    test_batch();
    test_now();
    test_corrupt();
    test_processes();
    test_reopen();
    test_map_growth();
    test_older_store();
    bench();
    return t_done();
}
