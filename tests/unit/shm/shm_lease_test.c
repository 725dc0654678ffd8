/* shm_lease_test.c - admission from leases (cluster mode): a leased key or client is admitted
 * only from its grants, soonest-ending first, never past a grant's end; with no record or no
 * units it is skipped (SHM_SKIP_LEASE, a retry soon, the record stamped starved and the cost
 * wanted); degraded records admit within the safe share of the local usage and count it; a
 * key without the cluster flag is not affected; racing threads never take more than granted. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "shm/shm_lease.h"
#include "shm_tutil.h"
#include "t.h"

typedef struct grant_arg_s {
    int dim;
    uint64_t id, granted;
    int64_t until_ms;
    int mode;
    uint32_t share_ppm;
} grant_arg_t;

static int add_grant_fn(shm_lease_t *l, int exists, int64_t now, void *arg)
{
    grant_arg_t *g = arg;
    (void)exists;
    (void)now;
    l->mode = (uint32_t)g->mode;
    l->share_ppm = g->share_ppm;
    if (!g->id)
        return 1;
    for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++)
        if (!l->g[g->dim][i].id) {
            l->g[g->dim][i] = (shm_grant_t){g->id, g->granted, 0, g->until_ms};
            return 1;
        }
    return SHM_EFULL;
}

static int grant(shm_t *s, int kind, const char *name, int dim, uint64_t id, uint64_t n,
                 int64_t until)
{
    grant_arg_t g = {dim, id, n, until, SHM_LM_LEASED, 0};
    return shm_lease_edit(s, kind, name, T0, add_grant_fn, &g);
}

static int admit(shm_t *s, const char *const *names, unsigned n, uint32_t tokens, int64_t now,
                 uint8_t *skip, int64_t *retry, shm_resv_t *r)
{
    shm_admit_req_t req = {.names = names, .count = n, .tokens = tokens, .skip = skip};
    return shm_key_admit(s, &req, now, r, retry);
}

static void test_keys(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[3] = {tu_spec("a", "p", 20, 0, 1000, 0), tu_spec("b", "p", 20, 0, 0, 0),
                            tu_spec("free", "p", 0, 0, 0, 0)};
    sp[0].cluster = sp[1].cluster = sp[2].cluster = 1;
    T_EQ_INT(shm_keys_sync(s, sp, 3, T0, NULL), 0, "sync with the cluster flag");
    const char *na[1] = {"a"}, *nb[2] = {"a", "b"}, *nf[1] = {"free"};
    uint8_t skip[2];
    int64_t retry = 0;
    shm_resv_t r;

    /* no record yet: skipped, retried soon; a key without limits is never leased */
    T_EQ_INT(admit(s, na, 1, 10, T0, skip, &retry, &r), SHM_NONE, "no lease record: not admitted");
    T_EQ_INT(skip[0], SHM_SKIP_LEASE, "skip reason lease");
    T_EQ_INT(retry, T0 + SHM_LEASE_RETRY_MS, "retried after SHM_LEASE_RETRY_MS");
    T_EQ_INT(admit(s, nf, 1, 10, T0, skip, &retry, &r), 0, "a key without limits: no lease");

    /* a grant of 3 requests (rpm) but no tokens (tpm) yet: still refused, wanted 10 tokens */
    T_EQ_INT(grant(s, SHM_LK_KEY, "a", SHM_LD_RPM, 1, 3, T0 + 5000), 0, "rpm grant");
    T_EQ_INT(admit(s, na, 1, 10, T0 + 1, skip, &retry, &r), SHM_NONE, "no tpm units: refused");
    shm_lease_t l;
    T_EQ_INT(shm_lease_get(s, SHM_LK_KEY, "a", &l), 0, "lease readable");
    T_EQ_INT(l.starved_ms, T0 + 1, "stamped starved");
    T_EQ_INT(l.want[SHM_LD_TPM], 10, "the tokens wanted are noted");
    T_EQ_INT(l.g[SHM_LD_RPM][0].used, 0, "nothing taken from the rpm grant on a refusal");
    T_EQ_INT(grant(s, SHM_LK_KEY, "a", SHM_LD_TPM, 2, 25, T0 + 5000), 0, "tpm grant");

    /* 3 requests of 10 tokens fit rpm 3 but tokens 25: two admitted */
    T_EQ_INT(admit(s, na, 1, 10, T0 + 2, skip, &retry, &r), 0, "admitted 1");
    T_EQ_INT(admit(s, na, 1, 10, T0 + 3, skip, &retry, &r), 0, "admitted 2");
    T_EQ_INT(admit(s, na, 1, 10, T0 + 4, skip, &retry, &r), SHM_NONE, "tokens of the grant spent");
    T_EQ_INT(shm_lease_get(s, SHM_LK_KEY, "a", &l), 0, "lease readable");
    T_EQ_INT(l.g[SHM_LD_RPM][0].used, 2, "two requests taken");
    T_EQ_INT(l.g[SHM_LD_TPM][0].used, 20, "twenty tokens taken");
    T_EQ_INT(shm_lease_avail(&l, SHM_LD_RPM, T0 + 4), 1, "one request left");

    /* the soonest-ending grant first; an ended grant gives nothing */
    T_EQ_INT(grant(s, SHM_LK_KEY, "a", SHM_LD_TPM, 3, 100, T0 + 9000), 0, "a later tpm grant");
    T_EQ_INT(grant(s, SHM_LK_KEY, "a", SHM_LD_RPM, 4, 5, T0 + 9000), 0, "a later rpm grant");
    T_EQ_INT(admit(s, na, 1, 10, T0 + 5, skip, &retry, &r), 0, "admitted across two tpm grants");
    T_EQ_INT(shm_lease_get(s, SHM_LK_KEY, "a", &l), 0, "lease readable");
    T_EQ_INT(l.g[SHM_LD_RPM][0].used, 3, "the sooner rpm grant used up first");
    T_EQ_INT(l.g[SHM_LD_RPM][1].used, 0, "the later one untouched");
    T_EQ_INT(l.g[SHM_LD_TPM][0].used, 25, "the sooner tpm grant used up");
    T_EQ_INT(l.g[SHM_LD_TPM][1].used, 5, "the rest from the later one");
    T_EQ_INT(admit(s, na, 1, 10, T0 + 5000, skip, &retry, &r), 0, "at the first grants' end");
    T_EQ_INT(shm_lease_get(s, SHM_LK_KEY, "a", &l), 0, "lease readable");
    T_EQ_INT(shm_lease_avail(&l, SHM_LD_RPM, T0 + 9000), 0, "nothing after every grant ended");
    T_EQ_INT(admit(s, na, 1, 10, T0 + 9000, skip, &retry, &r), SHM_NONE, "ended grants: refused");

    /* the strategy chooses again when its pick has no lease: b is served */
    T_EQ_INT(grant(s, SHM_LK_KEY, "b", SHM_LD_RPM, 5, 1, T0 + 20000), 0, "b's grant");
    T_EQ_INT(admit(s, nb, 2, 10, T0 + 9001, skip, &retry, &r), 0, "b admitted instead of a");
    T_EQ_STR(r.name, "b", "the reservation is b's");
    T_EQ_INT(skip[0], SHM_SKIP_LEASE, "a skipped for its lease");
    T_EQ_INT(admit(s, nb, 2, 10, T0 + 9002, skip, &retry, &r), SHM_NONE, "both spent");

    /* degraded: the safe share (1/2 of rpm 20 = 10) of the local window, counted */
    grant_arg_t dg = {0, 0, 0, 0, SHM_LM_DEGRADED, 500000};
    T_EQ_INT(shm_lease_edit(s, SHM_LK_KEY, "b", T0, add_grant_fn, &dg), 0, "b degraded");
    int got = 0;
    for (int i = 0; i < 30; i++)
        got += admit(s, nb + 1, 1, 0, T0 + 9100 + i, skip, &retry, &r) == 0;
    T_EQ_INT(got, 9, "degraded: 10 in the window, one of them from the lease before");
    T_EQ_INT(shm_lease_get(s, SHM_LK_KEY, "b", &l), 0, "lease readable");
    T_EQ_INT(l.deg_used[SHM_LD_RPM], 9, "degraded admissions counted for the report");

    /* the flag goes with the config: without cluster, the local limits only */
    sp[0].cluster = sp[1].cluster = 0;
    T_EQ_INT(shm_keys_sync(s, sp, 3, T0 + 9200, NULL), 0, "sync without the cluster");
    T_EQ_INT(admit(s, na, 1, 10, T0 + 9300, skip, &retry, &r), 0, "a admitted without a lease");
    shm_store_close(s);
    tu_rmdir(parent);
}

static void test_client(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp = tu_spec("k", "p", 0, 0, 0, 0);
    shm_client_spec_t cs = {.name = "cl", .rpm = 5, .cluster = 1};
    const char *nk[1] = {"k"};
    uint8_t skip[1];
    int64_t retry;
    shm_resv_t r;
    T_EQ_INT(shm_keys_sync(s, &sp, 1, T0, NULL), 0, "key");
    T_EQ_INT(shm_clients_sync(s, &cs, 1, T0, NULL), 0, "client with the cluster flag");
    shm_admit_req_t req = {.names = nk, .count = 1, .client = "cl", .skip = skip};
    T_EQ_INT(shm_key_admit(s, &req, T0 + 1, &r, &retry), SHM_NONE, "client without a lease");
    T_EQ_INT(skip[0], SHM_SKIP_LEASE, "skipped for the client's lease");
    T_EQ_INT(grant(s, SHM_LK_CLIENT, "cl", SHM_LD_RPM, 9, 2, T0 + 5000), 0, "client grant");
    T_EQ_INT(shm_key_admit(s, &req, T0 + 2, &r, &retry), 0, "admitted 1");
    T_EQ_INT(shm_key_admit(s, &req, T0 + 3, &r, &retry), 0, "admitted 2");
    T_EQ_INT(shm_key_admit(s, &req, T0 + 4, &r, &retry), SHM_NONE, "the client's grant spent");
    shm_client_t c;
    T_EQ_INT(shm_client_get(s, "cl", T0 + 5, &c), 0, "client readable");
    T_EQ_INT(c.requests, 2, "two counted on the client");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* Threads race for one grant of 50: exactly 50 admitted. */
typedef struct race_s {
    shm_t *s;
    int got;
} race_t;

static void *race_fn(void *arg)
{
    race_t *rc = arg;
    const char *na[1] = {"a"};
    uint8_t skip[1];
    int64_t retry;
    shm_resv_t r;
    for (int i = 0; i < 40; i++)
        if (admit(rc->s, na, 1, 0, T0 + 10, skip, &retry, &r) == 0)
            rc->got++;
    return NULL;
}

static void test_race(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp = tu_spec("a", "p", 1000, 0, 0, 0);
    sp.cluster = 1;
    shm_keys_sync(s, &sp, 1, T0, NULL);
    T_EQ_INT(grant(s, SHM_LK_KEY, "a", SHM_LD_RPM, 1, 50, T0 + 60000), 0, "grant of 50");
    pthread_t th[8];
    race_t rc[8];
    for (int i = 0; i < 8; i++) {
        rc[i] = (race_t){s, 0};
        pthread_create(&th[i], NULL, race_fn, &rc[i]);
    }
    int total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        total += rc[i].got;
    }
    T_EQ_INT(total, 50, "8 threads x 40 tries take exactly the 50 granted");
    shm_store_close(s);
    tu_rmdir(parent);
}

int main(void)
{
    test_keys();
    test_client();
    test_race();
    return t_done();
}
