/* shm_cdef_adopt_test.c - store clients shared by the hosts of a cluster (shm_cdef.h, "cluster
 * mode"): a definition exported from one store is adopted by another when newer (a later
 * updated_ms, then the tie-break every host decides alike), with its digest index (a digest it
 * no longer holds is gone), its limits and its revoke; the budget record is flagged for leases
 * when asked (and then admits nothing without a lease); what is refused is refused whole. */
#include <stdlib.h>
#include <string.h>

#include "shm/shm_cdef.h"
#include "shm_tutil.h"
#include "t.h"

static void digest_of(unsigned char d[32], int seed)
{
    for (int i = 0; i < 32; i++)
        d[i] = (unsigned char)(seed * 31 + i * 7 + 1);
}

static int auth(shm_t *s, int seed, int64_t now)
{
    unsigned char d[32];
    shm_cdef_auth_t a;
    digest_of(d, seed);
    int rc = shm_cdef_auth(s, d, now, &a);
    return rc != 0 ? rc : a.result;
}

static int admit(shm_t *s, const char *client, int64_t now)
{
    const char *names[1] = {"k"};
    shm_admit_req_t req = {.names = names, .count = 1, .client = client};
    shm_resv_t r;
    int64_t retry;
    int rc = shm_key_admit(s, &req, now, &r, &retry);
    if (rc == 0)
        shm_key_release(s, &r, 0, now);
    return rc;
}

/* The one exported definition of name. */
static int export_one(shm_t *s, const char *name, shm_cdef_raw_t *out)
{
    shm_cdef_raw_t *all = NULL;
    unsigned n = 0;
    int rc = shm_cdef_export(s, &all, &n), found = SHM_ENOTFOUND;
    for (unsigned i = 0; rc == 0 && i < n; i++)
        if (!strcmp(all[i].name, name)) {
            *out = all[i];
            found = 0;
        }
    shm_snapshot_free(all);
    return rc != 0 ? rc : found;
}

static void test_newer(void)
{
    shm_cdef_raw_t a, b;
    memset(&a, 0, sizeof(a));
    a.status = SHM_CDEF_ACTIVE;
    a.updated_ms = 100;
    digest_of(a.digest, 1);
    b = a;
    T_OK(!shm_cdef_newer(&a, &b) && !shm_cdef_newer(&b, &a), "an equal definition is no news");
    b.updated_ms = 101;
    T_OK(shm_cdef_newer(&b, &a) && !shm_cdef_newer(&a, &b), "a later updated_ms is newer");
    b = a;
    b.status = SHM_CDEF_REVOKED;
    T_OK(shm_cdef_newer(&b, &a) && !shm_cdef_newer(&a, &b), "at the same time a revoke wins");
    b = a;
    digest_of(b.digest, 2);
    T_OK(shm_cdef_newer(&a, &b) != shm_cdef_newer(&b, &a), "other digests: exactly one wins");
    b = a;
    b.spec.rpm = 5;
    T_OK(shm_cdef_newer(&a, &b) != shm_cdef_newer(&b, &a), "other limits: exactly one wins");
}

/* Changes made on two hosts before either heard of the other's: the merge keeps the later
 * rotation and any revoke, whatever the order, and both sides end alike. */
static void test_merge(void)
{
    shm_cdef_raw_t base, rot, set, rev, x, y;
    memset(&base, 0, sizeof(base));
    snprintf(base.name, sizeof(base.name), "m");
    base.status = SHM_CDEF_ACTIVE;
    base.created_ms = base.updated_ms = 100;
    digest_of(base.digest, 1);
    rot = set = rev = base;
    memcpy(rot.prev_digest, rot.digest, 32);
    digest_of(rot.digest, 2);
    rot.rotated_ms = rot.updated_ms = 200; /* host A rotates */
    set.spec.rpm = 9;
    set.updated_ms = 201; /* host B sets rpm a moment later, not knowing */
    shm_cdef_merge(&rot, &set, &x);
    shm_cdef_merge(&set, &rot, &y);
    T_OK(!memcmp(&x, &y, sizeof(x)), "rotation + set: the same whichever side merges");
    T_OK(!memcmp(x.digest, rot.digest, 32) && x.rotated_ms == 200, "the rotation is kept");
    T_OK(x.spec.rpm == 9 && x.updated_ms == 201, "and the later set");
    shm_cdef_merge(&x, &set, &y);
    T_OK(!memcmp(&x, &y, sizeof(x)), "merging again changes nothing");
    rev.status = SHM_CDEF_REVOKED;
    rev.revoked_ms = rev.updated_ms = 150; /* revoked on C before B's set */
    shm_cdef_merge(&rev, &set, &x);
    shm_cdef_merge(&set, &rev, &y);
    T_OK(!memcmp(&x, &y, sizeof(x)) && x.status == SHM_CDEF_REVOKED && x.revoked_ms == 150,
         "a revoke is never undone by a later change made without knowing it");
}

static void test_adopt(shm_t *src, shm_t *dst)
{
    unsigned char d[32];
    shm_cdef_raw_t r, got;
    shm_cdef_spec_t sp = {.rpm = 2, .models = "m"};
    digest_of(d, 1);
    T_EQ_INT(shm_cdef_add(src, "acme", d, &sp, "alice", T0), 0, "acme added on A");
    T_EQ_INT(export_one(src, "acme", &r), 0, "acme exported");
    T_OK(!memcmp(r.digest, d, 32) && r.spec.rpm == 2 && !strcmp(r.spec.models, "m") &&
             r.updated_ms == T0 && !strcmp(r.created_by, "alice") && !r.cluster,
         "with its digest, limits, models, time and creator");
    T_EQ_INT(auth(dst, 1, T0 + 1), SHM_AUTH_UNKNOWN, "B does not know it");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 0, "node-a", T0 + 1), 1, "B adopts it");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 0, "node-a", T0 + 2), 0, "once: the same again is no news");
    T_EQ_INT(auth(dst, 1, T0 + 2), SHM_AUTH_OK, "its key authenticates on B");
    T_EQ_INT(admit(dst, "acme", T0 + 3), 0, "B admits it");
    T_EQ_INT(admit(dst, "acme", T0 + 4), 0, "twice");
    T_OK(admit(dst, "acme", T0 + 5) != 0, "not three times: its rpm 2");
    shm_cdef_t v;
    T_EQ_INT(shm_cdef_get(dst, "acme", &v), 0, "B's view of it");
    T_OK(v.spec.rpm == 2 && v.created_ms == T0 && v.updated_ms == T0 &&
             !strcmp(v.created_by, "alice"),
         "is A's definition");
    shm_event_t ev[8];
    unsigned n = 0;
    T_EQ_INT(shm_cdef_history(dst, "acme", ev, 8, &n), 0, "B's history of it");
    T_OK(n == 1 && !strcmp(ev[0].text, "cluster node-a"), "says it came from node-a");

    /* an older one is refused; a rotation on A moves B's index */
    shm_cdef_raw_t old = r;
    digest_of(d, 2);
    T_EQ_INT(shm_cdef_rotate(src, "acme", d, 0, "bob", T0 + 100), 0, "A rotates acme, no grace");
    T_EQ_INT(export_one(src, "acme", &r), 0, "exported again");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "node-a", T0 + 101), 1, "B adopts the rotation");
    T_EQ_INT(auth(dst, 2, T0 + 102), SHM_AUTH_OK, "the new key works on B");
    T_EQ_INT(auth(dst, 1, T0 + 102), SHM_AUTH_REPLACED, "the old one is replaced there");
    T_EQ_INT(shm_cdef_adopt(dst, &old, 1, "node-c", T0 + 103), 0, "an older definition is not");
    T_EQ_INT(auth(dst, 2, T0 + 104), SHM_AUTH_OK, "the new key still works");
    digest_of(d, 3);
    T_EQ_INT(shm_cdef_rotate(src, "acme", d, 0, "bob", T0 + 200), 0, "A rotates it again");
    T_EQ_INT(export_one(src, "acme", &r), 0, "exported");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "node-a", T0 + 201), 1, "B adopts it");
    T_EQ_INT(auth(dst, 1, T0 + 202), SHM_AUTH_UNKNOWN, "the first key is unknown on B now");
    T_EQ_INT(auth(dst, 3, T0 + 202), SHM_AUTH_OK, "the third works");

    /* cluster flag: leased, so nothing without a lease */
    T_EQ_INT(export_one(dst, "acme", &got), 0, "B's export");
    T_OK(got.cluster, "B's record of acme is flagged for leases");
    T_OK(admit(dst, "acme", T0 + 70000) != 0, "which B does not hold: not admitted");
    T_OK(shm_cdef_cluster_mark(dst, 0) == 1, "the flag cleared on B (cluster off)");
    T_EQ_INT(admit(dst, "acme", T0 + 70001), 0, "admitted locally again");
    T_OK(shm_cdef_cluster_mark(dst, 1) == 1 && shm_cdef_cluster_mark(dst, 1) == 0,
         "set again, once");

    /* limits from a `client set` on A */
    sp.rpm = 7;
    T_EQ_INT(shm_cdef_set(src, "acme", &sp, SHM_CDEF_SET_RPM, "bob", T0 + 300), 0, "A sets rpm 7");
    T_EQ_INT(export_one(src, "acme", &r), 0, "exported");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "node-a", T0 + 301), 1, "B adopts it");
    T_EQ_INT(shm_cdef_get(dst, "acme", &v), 0, "B's view");
    T_EQ_INT(v.spec.rpm, 7, "rpm 7 on B");

    /* a revoke */
    T_EQ_INT(shm_cdef_revoke(src, "acme", "bob", T0 + 400), 0, "A revokes acme");
    T_EQ_INT(export_one(src, "acme", &r), 0, "exported");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "node-a", T0 + 401), 1, "B adopts the revoke");
    T_EQ_INT(auth(dst, 3, T0 + 402), SHM_AUTH_REVOKED, "its key is revoked on B");
    T_OK(admit(dst, "acme", T0 + 80000) != 0, "and nothing is admitted for it");
    T_EQ_INT(shm_cdef_history(dst, "acme", ev, 8, &n), 0, "B's history");
    T_OK(n >= 2 && ev[n - 1].type == SHM_EV_CLIENT_REVOKE, "ends with the revoke");
}

static void test_refusals(shm_t *dst)
{
    shm_cdef_raw_t r;
    memset(&r, 0, sizeof(r));
    snprintf(r.name, sizeof(r.name), "twin");
    r.status = SHM_CDEF_ACTIVE;
    r.updated_ms = T0;
    digest_of(r.digest, 3); /* acme's */
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "node-a", T0), SHM_EINVAL,
             "a digest another client holds here is refused");
    T_EQ_INT(auth(dst, 3, T0 + 1), SHM_AUTH_REVOKED, "and acme's entry is untouched");
    digest_of(r.digest, 9);
    snprintf(r.name, sizeof(r.name), "bad name");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "n", T0), SHM_EINVAL, "a bad name is refused");
    snprintf(r.name, sizeof(r.name), "ok");
    memset(r.digest, 0, 32);
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "n", T0), SHM_EINVAL, "a zero digest is refused");
    digest_of(r.digest, 9);
    snprintf(r.spec.models, sizeof(r.spec.models), "a,,b");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "n", T0), SHM_EINVAL, "bad models are refused");
    r.spec.models[0] = '\0';
    r.status = 7;
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "n", T0), SHM_EINVAL, "a bad status is refused");
    r.status = SHM_CDEF_ACTIVE;
    memcpy(r.prev_digest, r.digest, 32);
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "n", T0), SHM_EINVAL, "prev = current is refused");
    memset(r.prev_digest, 0, 32);
    /* a configuration client of that name */
    shm_client_spec_t cs = {.name = "cfgc", .rpm = 3};
    T_EQ_INT(shm_clients_sync(dst, &cs, 1, T0, NULL), 0, "a configuration client cfgc");
    snprintf(r.name, sizeof(r.name), "cfgc");
    T_EQ_INT(shm_cdef_adopt(dst, &r, 1, "n", T0), SHM_ECONFLICT,
             "a definition of a configuration client's name is refused");
    T_EQ_INT(auth(dst, 9, T0 + 1), SHM_AUTH_UNKNOWN, "and its digest stays unknown");
}

int main(void)
{
    char pa[64], da[96], pb[64], db[96];
    tu_mkdir(pa, sizeof(pa), da, sizeof(da));
    tu_mkdir(pb, sizeof(pb), db, sizeof(db));
    shm_t *a = tu_open(da, T0), *b = tu_open(db, T0);
    T_OK(a && b, "two stores opened (two hosts)");
    if (!a || !b)
        return t_done();
    shm_key_spec_t k = tu_spec("k", "p", 0, 0, 0, 0);
    T_EQ_INT(shm_keys_sync(b, &k, 1, T0, NULL), 0, "a key on B");
    test_newer();
    test_merge();
    test_adopt(a, b);
    test_refusals(b);
    shm_store_close(a);
    shm_store_close(b);
    tu_rmdir(pa);
    tu_rmdir(pb);
    return t_done();
}
