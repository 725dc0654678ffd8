/* shm_adopt_test.c - what a host takes of another host's key status and provider circuit
 * (cluster mode, shm_key_adopt / shm_provider_adopt): newer wins, by since and then by until;
 * the state a record was created with is older than anything heard (a host that joins later
 * takes what the others decided); an adopted open circuit stops admission and an adopted
 * closed one starts the breaker afresh; half-open and bad arguments are refused. */
#include <stdlib.h>
#include <string.h>

#include "shm_tutil.h"
#include "t.h"

static void test_key(shm_t *s)
{
    shm_key_t k;
    /* created active at T0: what another host decided before is taken */
    T_EQ_INT(shm_key_adopt(s, "a", SHM_ST_COOLING, SHM_RS_RATE_LIMITED, T0 - 5000, T0 + 30000,
                           "cluster node-b", T0 + 10),
             1, "a key active since its creation takes an older cooldown from another node");
    shm_key_get(s, "a", T0 + 20, &k);
    T_EQ_INT(k.status, SHM_ST_COOLING, "the key is cooling");
    T_EQ_INT(k.cooldown_until_ms, T0 + 30000, "until the other node's deadline");
    T_EQ_INT(shm_key_adopt(s, "a", SHM_ST_ACTIVE, SHM_RS_NONE, T0 - 6000, 0, "x", T0 + 30), 0,
             "an older change is not taken");
    T_EQ_INT(shm_key_adopt(s, "a", SHM_ST_COOLING, SHM_RS_RATE_LIMITED, T0 - 5000, T0 + 20000, "x",
                           T0 + 30),
             0, "the same change with an earlier deadline is not taken");
    T_EQ_INT(shm_key_adopt(s, "a", SHM_ST_COOLING, SHM_RS_RATE_LIMITED, T0 - 5000, T0 + 40000, "x",
                           T0 + 30),
             1, "the same change extended is taken");
    T_EQ_INT(shm_key_adopt(s, "a", SHM_ST_DISABLED, SHM_RS_ADMIN, T0 - 5000, 0, "x", T0 + 30), 0,
             "another change at the same moment: each host keeps its own");
    /* a change of its own here is news */
    T_EQ_INT(shm_key_cooldown(s, "b", 60000, "test", T0 + 100), 0, "b cooled here at T0+100");
    T_EQ_INT(shm_key_adopt(s, "b", SHM_ST_DISABLED, SHM_RS_ADMIN, T0 + 50, 0, "x", T0 + 200), 0,
             "a change older than the host's own is not taken");
    T_EQ_INT(shm_key_adopt(s, "b", SHM_ST_DISABLED, SHM_RS_ADMIN, T0 + 150, 0, "x", T0 + 200), 1,
             "a newer one is");
    shm_key_get(s, "b", T0 + 300, &k);
    T_EQ_INT(k.status, SHM_ST_DISABLED, "b is disabled");
    T_EQ_INT(shm_key_adopt(s, "b", SHM_ST_HALF_OPEN, SHM_RS_NONE, T0 + 400, 0, "x", T0 + 500),
             SHM_EINVAL, "half-open is each host's own: refused");
    T_EQ_INT(shm_key_adopt(s, "nope", SHM_ST_ACTIVE, SHM_RS_NONE, T0, 0, "x", T0), SHM_ENOTFOUND,
             "a key this host does not have");
}

static int record_outcome(shm_t *s, const char *name, int cls, int64_t now)
{
    int64_t retry;
    shm_resv_t r;
    const char *names[1] = {name};
    int rc = tu_admit(s, names, 1, 0, now, &r, &retry);
    if (rc < 0)
        return rc;
    shm_outcome_t o;
    shm_outcome_init(&o, cls);
    o.circuit_min_requests = 2;
    o.circuit_error_ratio = 0.5;
    o.circuit_open_ms = 10000;
    return shm_key_record(s, &r, &o, now);
}

static void test_circuit(shm_t *s)
{
    shm_provider_t p;
    int64_t retry;
    T_EQ_INT(shm_provider_get(s, "p", &p), 0, "the provider has a record");
    T_EQ_INT(p.circuit, SHM_CIRCUIT_CLOSED, "closed as created");
    /* another node opened the circuit before this host's record was made */
    T_EQ_INT(
        shm_provider_adopt(s, "p", SHM_CIRCUIT_OPEN, SHM_RS_POLICY, T0 - 100, T0 + 5000, T0 + 10),
        1, "a circuit closed as created takes an older open from another node");
    shm_provider_get(s, "p", &p);
    T_EQ_INT(p.circuit, SHM_CIRCUIT_OPEN, "open");
    T_EQ_INT(p.open_until_ms, T0 + 5000, "until the other node's time");
    T_EQ_STR(shm_reason_name(p.reason), "policy", "with its reason");
    T_OK(tu_admit1(s, "c", T0 + 20, &retry) < 0, "an open circuit admits nothing of its keys");
    T_EQ_INT(
        shm_provider_adopt(s, "p", SHM_CIRCUIT_OPEN, SHM_RS_POLICY, T0 - 100, T0 + 4000, T0 + 30),
        0, "the same open with an earlier end is not taken");
    T_EQ_INT(shm_provider_adopt(s, "p", SHM_CIRCUIT_CLOSED, SHM_RS_NONE, T0 - 200, 0, T0 + 30), 0,
             "an older close is not taken");
    T_EQ_INT(shm_provider_adopt(s, "p", SHM_CIRCUIT_CLOSED, SHM_RS_PROBE, T0 + 40, 0, T0 + 50), 1,
             "a newer close is taken");
    T_EQ_INT(tu_admit1(s, "c", T0 + 60, &retry), 0, "and the keys are admitted again");
    shm_provider_get(s, "p", &p);
    T_EQ_INT(p.window_requests, 0, "a taken close starts the breaker's window afresh");

    /* the breaker of this host: its open is news with its own since and reason */
    T_EQ_INT(record_outcome(s, "d", SHM_CL_5XX, T0 + 1000), 0, "a 5xx");
    T_EQ_INT(record_outcome(s, "d", SHM_CL_5XX, T0 + 1001), 0, "a second 5xx");
    shm_provider_get(s, "q", &p);
    T_EQ_INT(p.circuit, SHM_CIRCUIT_OPEN, "the breaker opened q's circuit here");
    T_EQ_INT(p.since_ms, T0 + 1001, "since the failure that opened it");
    T_EQ_STR(shm_reason_name(p.reason), "policy", "the breaker's reason is policy");
    T_EQ_INT(shm_provider_adopt(s, "q", SHM_CIRCUIT_CLOSED, SHM_RS_PROBE, T0 + 900, 0, T0 + 1100),
             0, "a close from before this host's open is not taken");
    /* a provider this store has never seen takes what it is told */
    T_EQ_INT(
        shm_provider_adopt(s, "new", SHM_CIRCUIT_OPEN, SHM_RS_POLICY, T0, T0 + 9000, T0 + 1200), 1,
        "a provider without a record takes an open");
    T_EQ_INT(shm_provider_get(s, "new", &p), 0, "and has a record");
    T_EQ_INT(p.circuit, SHM_CIRCUIT_OPEN, "open");
    T_EQ_INT(
        shm_provider_adopt(s, "p", SHM_CIRCUIT_HALF_OPEN, SHM_RS_NONE, T0 + 2000, 0, T0 + 2000),
        SHM_EINVAL, "a half-open circuit is each host's own: refused");
    T_EQ_INT(shm_provider_adopt(s, "p", SHM_CIRCUIT_OPEN, SHM_RS_COUNT, T0 + 2000, 0, T0 + 2000),
             SHM_EINVAL, "a reason out of range is refused");
    T_EQ_INT(shm_provider_adopt(s, "", SHM_CIRCUIT_OPEN, SHM_RS_NONE, T0 + 2000, 0, T0 + 2000),
             SHM_EINVAL, "an empty name is refused");
}

int main(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    T_OK(s != NULL, "store opened");
    if (!s)
        return t_done();
    shm_key_spec_t sp[4] = {tu_spec("a", "p", 0, 0, 0, 0), tu_spec("b", "p", 0, 0, 0, 0),
                            tu_spec("c", "p", 0, 0, 0, 0), tu_spec("d", "q", 0, 0, 0, 0)};
    T_EQ_INT(shm_keys_sync(s, sp, 4, T0, NULL), 0, "keys synced");
    test_key(s);
    test_circuit(s);
    shm_store_close(s);
    tu_rmdir(parent);
    return t_done();
}
