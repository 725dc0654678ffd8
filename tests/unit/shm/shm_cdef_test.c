/* shm_cdef_test.c - client keys kept in the store (shm_cdef.h): added, looked up by digest,
 * changed, rotated with a grace period, revoked and expired; their budgets are exact and
 * survive a reopen; the configuration's sync leaves them alone and refuses a name of theirs;
 * a name the configuration has is refused to add; no key is ever stored, only its digest. */
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

static int auth(shm_t *s, int seed, int64_t now, shm_cdef_auth_t *a)
{
    unsigned char d[32];
    digest_of(d, seed);
    int rc = shm_cdef_auth(s, d, now, a);
    return rc != 0 ? rc : a->result;
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

static void test_add_and_auth(shm_t *s)
{
    unsigned char d[32];
    shm_cdef_auth_t a;
    shm_cdef_spec_t sp = {.rpm = 3, .models = "m1,alias-2"};
    digest_of(d, 1);
    T_EQ_INT(shm_cdef_add(s, "acme", d, &sp, "test uid 1", T0), 0, "acme added");
    T_EQ_INT(shm_cdef_add(s, "acme", d, &sp, "test", T0), SHM_EEXIST, "a second acme is refused");
    digest_of(d, 2);
    T_EQ_INT(shm_cdef_add(s, "other", (unsigned char[32]){0}, &sp, "t", T0), SHM_EINVAL,
             "an all-zero digest is refused");
    digest_of(d, 1);
    T_EQ_INT(shm_cdef_add(s, "twin", d, &sp, "t", T0), SHM_EINVAL,
             "a digest another client has is refused");
    shm_cdef_spec_t bad = {.models = "m1,,m2"};
    digest_of(d, 3);
    T_EQ_INT(shm_cdef_add(s, "bad", d, &bad, "t", T0), SHM_EINVAL,
             "an empty model name is refused");
    snprintf(bad.models, sizeof(bad.models), "m 1");
    T_EQ_INT(shm_cdef_add(s, "bad", d, &bad, "t", T0), SHM_EINVAL, "a space in models is refused");
    T_EQ_INT(auth(s, 1, T0 + 1, &a), SHM_AUTH_OK, "acme's key authenticates");
    T_EQ_STR(a.name, "acme", "as acme");
    T_EQ_STR(a.models, "m1,alias-2", "with its models");
    T_EQ_INT(auth(s, 9, T0 + 1, &a), SHM_AUTH_UNKNOWN, "an unknown digest is unknown");
    T_EQ_STR(a.name, "", "and names no client");

    /* the budget record is exact like a configuration client's */
    T_EQ_INT(admit(s, "acme", T0 + 10), 0, "1st of rpm 3");
    T_EQ_INT(admit(s, "acme", T0 + 11), 0, "2nd");
    T_EQ_INT(admit(s, "acme", T0 + 12), 0, "3rd");
    T_EQ_INT(admit(s, "acme", T0 + 13), SHM_ECLIENT_BUDGET, "the 4th is over the client's rpm");
    shm_cdef_t v;
    T_EQ_INT(shm_cdef_get(s, "acme", &v), 0, "acme read back");
    T_EQ_INT(v.status, SHM_CDEF_ACTIVE, "active");
    T_EQ_INT(v.spec.rpm, 3, "rpm 3");
    T_EQ_STR(v.created_by, "test uid 1", "who created it");
    T_EQ_INT(strlen(v.fingerprint), 8, "a fingerprint of 8 hex digits");
    T_EQ_STR(v.prev_fingerprint, "", "no rotation in grace");
}

static void test_set(shm_t *s)
{
    shm_cdef_spec_t sp = {.rpm = 5, .models = "m3"};
    shm_cdef_auth_t a;
    T_EQ_INT(shm_cdef_set(s, "acme", &sp, SHM_CDEF_SET_RPM, "t", T0 + 20), 0, "rpm raised to 5");
    T_EQ_INT(admit(s, "acme", T0 + 21), 0, "the 4th now passes: usage kept, limit raised");
    T_EQ_INT(admit(s, "acme", T0 + 22), 0, "the 5th");
    T_EQ_INT(admit(s, "acme", T0 + 23), SHM_ECLIENT_BUDGET, "the 6th is over 5");
    T_EQ_INT(auth(s, 1, T0 + 24, &a), SHM_AUTH_OK, "still authenticates");
    T_EQ_STR(a.models, "m1,alias-2", "models unchanged: not in the mask");
    T_EQ_INT(shm_cdef_set(s, "acme", &sp, SHM_CDEF_SET_MODELS, "t", T0 + 25), 0, "models set");
    auth(s, 1, T0 + 26, &a);
    T_EQ_STR(a.models, "m3", "the new models at the next lookup");
    T_EQ_INT(shm_cdef_set(s, "ghost", &sp, SHM_CDEF_SET_RPM, "t", T0), SHM_ENOTFOUND,
             "an unknown client");
    T_EQ_INT(shm_cdef_set(s, "acme", &sp, 0, "t", T0), SHM_EINVAL, "nothing to set");
}

static void test_rotate(shm_t *s)
{
    unsigned char d[32];
    shm_cdef_auth_t a;
    digest_of(d, 4);
    T_EQ_INT(shm_cdef_rotate(s, "acme", d, 10000, "t", T0 + 1000), 0, "rotated, 10 s grace");
    T_EQ_INT(auth(s, 4, T0 + 1001, &a), SHM_AUTH_OK, "the new key works");
    T_EQ_INT(auth(s, 1, T0 + 10999, &a), SHM_AUTH_OK, "the old one within its grace");
    T_EQ_INT(auth(s, 1, T0 + 11000, &a), SHM_AUTH_REPLACED, "and is replaced after it");
    T_EQ_INT(a.at_ms, T0 + 11000, "at the grace deadline");
    T_EQ_STR(a.name, "acme", "naming the client");
    digest_of(d, 5);
    T_EQ_INT(shm_cdef_rotate(s, "acme", d, 0, "t", T0 + 12000), 0, "rotated again, no grace");
    T_EQ_INT(auth(s, 4, T0 + 12000, &a), SHM_AUTH_REPLACED, "without grace the old key stops now");
    T_EQ_INT(auth(s, 1, T0 + 12000, &a), SHM_AUTH_UNKNOWN, "a key replaced before is unknown");
    T_EQ_INT(auth(s, 5, T0 + 12001, &a), SHM_AUTH_OK, "the newest works");
    digest_of(d, 5);
    T_EQ_INT(shm_cdef_rotate(s, "acme", d, 0, "t", T0 + 12002), SHM_EINVAL,
             "rotating to a digest in use is refused");
}

static void test_revoke_expire(shm_t *s)
{
    unsigned char d[32];
    shm_cdef_auth_t a;
    shm_cdef_spec_t sp = {.expires_ms = T0 + 50000};
    digest_of(d, 6);
    T_EQ_INT(shm_cdef_add(s, "temp", d, &sp, "t", T0), 0, "temp added, expiring at T0+50s");
    T_EQ_INT(auth(s, 6, T0 + 49999, &a), SHM_AUTH_OK, "valid before its expiry");
    T_EQ_INT(auth(s, 6, T0 + 50000, &a), SHM_AUTH_EXPIRED, "expired at it");
    T_EQ_INT(a.at_ms, T0 + 50000, "at its expiry");
    sp.expires_ms = 0;
    T_EQ_INT(shm_cdef_set(s, "temp", &sp, SHM_CDEF_SET_EXPIRES, "t", T0 + 60000), 0,
             "expiry lifted");
    T_EQ_INT(auth(s, 6, T0 + 60001, &a), SHM_AUTH_OK, "valid again");

    T_EQ_INT(admit(s, "temp", T0 + 60002), 0, "temp admitted");
    T_EQ_INT(shm_cdef_revoke(s, "temp", "t uid 2", T0 + 60003), 0, "temp revoked");
    T_EQ_INT(auth(s, 6, T0 + 60004, &a), SHM_AUTH_REVOKED, "its key is told revoked");
    T_EQ_INT(a.at_ms, T0 + 60003, "since then");
    T_EQ_INT(admit(s, "temp", T0 + 60005), SHM_ENOTFOUND,
             "a request authenticated before the revoke is not admitted after it");
    T_EQ_INT(shm_cdef_revoke(s, "temp", "t", T0 + 60006), SHM_EINVAL, "revoked twice: refused");
    T_EQ_INT(shm_cdef_set(s, "temp", &sp, SHM_CDEF_SET_RPM, "t", T0 + 60006), SHM_EINVAL,
             "a revoked client is not changed");
    T_EQ_INT(shm_cdef_rotate(s, "temp", d, 0, "t", T0 + 60006), SHM_EINVAL, "nor rotated");
    T_EQ_INT(shm_cdef_add(s, "temp", d, &sp, "t", T0 + 60007), SHM_EEXIST,
             "nor added again under its name");
    shm_client_t cv;
    T_EQ_INT(shm_client_get(s, "temp", T0 + 60008, &cv), 0, "its usage stays readable");
    T_EQ_INT(cv.requests, 1, "the request admitted before the revoke counted");

    shm_event_t ev[16];
    unsigned n = 0;
    T_EQ_INT(shm_cdef_history(s, "temp", ev, 16, &n), 0, "temp's history");
    T_EQ_INT(n, 3, "added, changed, revoked");
    T_EQ_STR(shm_event_name(ev[0].type), "added", "first: added");
    T_EQ_INT(n == 3 ? ev[1].arg : 0, SHM_CDEF_SET_EXPIRES, "then its expiry changed");
    T_EQ_STR(shm_event_name(ev[2].type), "revoked", "last: revoked");
    T_EQ_STR(ev[2].text, "t uid 2", "with who did it");
    T_EQ_INT(shm_cdef_history(s, "ghost", ev, 16, &n), SHM_ENOTFOUND, "no history of a stranger");
}

static void test_config_clients(shm_t *s)
{
    unsigned char d[32];
    shm_cdef_spec_t sp = {0};
    shm_client_spec_t cs[2] = {{.name = "cfg-a", .rpm = 7}, {.name = "cfg-b"}};
    T_EQ_INT(shm_clients_sync(s, cs, 2, T0 + 70000, NULL), 0, "configuration clients synced");
    shm_cdef_t v;
    T_EQ_INT(shm_cdef_get(s, "acme", &v), 0, "acme is still in the store after a sync");
    T_EQ_INT(v.spec.rpm, 5, "with its own limits");
    T_EQ_INT(admit(s, "acme", T0 + 120000), 0, "and admitted (not orphaned by the sync)");
    digest_of(d, 7);
    T_EQ_INT(shm_cdef_add(s, "cfg-a", d, &sp, "t", T0 + 70001), SHM_ECONFLICT,
             "a name the configuration has is refused");
    shm_client_spec_t clash[2] = {{.name = "cfg-a"}, {.name = "acme"}};
    T_EQ_INT(shm_clients_sync(s, clash, 2, T0 + 70002, NULL), SHM_ECONFLICT,
             "a configuration naming a store client is refused");
    shm_client_t cv;
    T_EQ_INT(shm_client_get(s, "cfg-b", T0 + 70003, &cv), 0, "cfg-b still there");
    T_EQ_INT(cv.orphaned, 0, "and not orphaned: the refused sync changed nothing");
    T_EQ_INT(shm_clients_sync(s, cs, 1, T0 + 70004, NULL), 0,
             "cfg-b removed from the configuration");
    T_EQ_INT(shm_cdef_add(s, "cfg-b", d, &sp, "t", T0 + 70005), 0,
             "an orphaned configuration name may be added to the store");
    T_EQ_INT(shm_clients_sync(s, cs, 2, T0 + 70006, NULL), SHM_ECONFLICT,
             "and then the configuration may not bring it back");
}

int main(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    T_OK(s != NULL, "store opened");
    if (!s)
        return t_done();
    shm_key_spec_t k = tu_spec("k", "p", 0, 0, 0, 0);
    T_EQ_INT(shm_keys_sync(s, &k, 1, T0, NULL), 0, "a key");
    test_add_and_auth(s);
    test_set(s);
    test_rotate(s);
    test_revoke_expire(s);
    test_config_clients(s);
    shm_store_close(s);

    /* a reopen (a restart) keeps everything */
    s = tu_open(dir, T0 + 130000);
    T_OK(s != NULL, "store reopened");
    if (s) {
        shm_cdef_auth_t a;
        T_EQ_INT(auth(s, 5, T0 + 130001, &a), SHM_AUTH_OK, "acme's key after a reopen");
        shm_cdef_t *all = NULL;
        unsigned n = 0;
        T_EQ_INT(shm_cdefs(s, &all, &n), 0, "every store client");
        T_EQ_INT(n, 3, "acme, cfg-b, temp");
        T_OK(n == 3 && !strcmp(all[0].name, "acme") && !strcmp(all[2].name, "temp") &&
                 all[2].status == SHM_CDEF_REVOKED,
             "sorted by name, temp revoked");
        shm_snapshot_free(all);
        shm_store_close(s);
    }
    tu_rmdir(parent);
    return t_done();
}
