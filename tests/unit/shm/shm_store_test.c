/* shm_store_test.c - one process against a real store: files and permissions, schema
 * refusal, key sync, admission rules (window edge, day rollover, clock going backwards,
 * TPM, status, circuit), outcomes, admin actions and history, persistence across reopen,
 * map growth from a tiny map. Every test uses its own state dir and removes it. */
#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "shm_tutil.h"
#include "t.h"

static void test_files_and_perms(void)
{
    char parent[64], dir[96], path[160], err[512];
    struct stat st;
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    T_OK(s != NULL, "open creates the store");
    T_OK(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700, "state dir is 0700 (%o)",
         st.st_mode & 0777);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    T_OK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "data.mdb is 0600 (%o)",
         st.st_mode & 0777);
    snprintf(path, sizeof(path), "%s/lock.mdb", dir);
    T_OK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "lock.mdb is 0600 (%o)",
         st.st_mode & 0777);
    shm_store_info_t info;
    T_EQ_INT(shm_store_info(s, &info), 0, "info");
    T_EQ_INT(info.schema_version, SHM_SCHEMA_VERSION, "schema version stamped");
    T_EQ_INT(info.created_ms, T0, "creation time stamped");
    shm_store_close(s);

    chmod(dir, 0777);
    shm_opts_t o = {.dir = dir};
    T_EQ_INT(shm_store_open(&o, T0, &s, err, sizeof(err)), SHM_EPERM,
             "others-writable dir refused");
    T_OK(strstr(err, "writable by others") && strstr(err, "chmod 700"), "message says why: %s",
         err);
    chmod(dir, 0770);
    T_EQ_INT(shm_store_open(&o, T0, &s, err, sizeof(err)), SHM_EPERM, "group-writable dir refused");
    chmod(dir, 0700);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    chmod(path, 0644);
    s = tu_open(dir, T0);
    T_OK(s && stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
         "a data.mdb found 0644 is tightened to 0600");
    shm_store_close(s);

    char nodir[128];
    snprintf(nodir, sizeof(nodir), "%s/missing", parent);
    shm_opts_t ro = {.dir = nodir, .readonly = 1};
    T_EQ_INT(shm_store_open(&ro, T0, &s, err, sizeof(err)), SHM_ENOTFOUND,
             "read-only open of a missing dir: not found");
    tu_rmdir(parent);
}

static void test_schema_refused(void)
{
    char parent[64], dir[96], err[512];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_store_close(s);
    /* Rewrite the version as a newer build would have. */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 8);
    int rc = mdb_env_open(env, dir, 0, 0600);
    rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
    rc = rc ? rc : mdb_dbi_open(txn, "meta", 0, &dbi);
    uint32_t v = 999;
    MDB_val k = {strlen("schema_version"), "schema_version"}, val = {sizeof(v), &v};
    rc = rc ? rc : mdb_put(txn, dbi, &k, &val, 0);
    rc = rc ? rc : mdb_txn_commit(txn);
    mdb_env_close(env);
    T_EQ_INT(rc, 0, "wrote schema_version 999 with raw LMDB");
    shm_opts_t o = {.dir = dir};
    s = NULL;
    T_EQ_INT(shm_store_open(&o, T0, &s, err, sizeof(err)), SHM_EVERSION, "version 999 refused");
    T_OK(s == NULL, "no handle on refusal");
    T_OK(strstr(err, "999") && strstr(err, "newer") && strstr(err, "refusing"), "clear message: %s",
         err);
    shm_opts_t ro = {.dir = dir, .readonly = 1};
    T_EQ_INT(shm_store_open(&ro, T0, &s, err, sizeof(err)), SHM_EVERSION, "refused read-only too");
    tu_rmdir(parent);

    /* An LMDB store of something else. */
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    mkdir(dir, 0700);
    mdb_env_create(&env);
    rc = mdb_env_open(env, dir, 0, 0600);
    rc = rc ? rc : mdb_txn_begin(env, NULL, 0, &txn);
    rc = rc ? rc : mdb_dbi_open(txn, NULL, 0, &dbi);
    MDB_val k2 = {3, "foo"}, v2 = {3, "bar"};
    rc = rc ? rc : mdb_put(txn, dbi, &k2, &v2, 0);
    rc = rc ? rc : mdb_txn_commit(txn);
    mdb_env_close(env);
    T_EQ_INT(shm_store_open(&o, T0, &s, err, sizeof(err)), SHM_ECORRUPT,
             "a foreign LMDB store is refused: %s", err);
    tu_rmdir(parent);
}

static void test_sync_orphan_prune(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[3] = {tu_spec("a", "p1", 10, 0, 0, 0), tu_spec("b", "p1", 0, 0, 0, 0),
                            tu_spec("c", "p2", 0, 0, 0, 0)};
    shm_sync_stats_t st;
    T_EQ_INT(shm_keys_sync(s, sp, 3, T0, &st), 0, "sync 3 keys");
    T_EQ_INT(st.added, 3, "3 added");
    shm_key_spec_t dup[2] = {sp[0], sp[0]};
    T_EQ_INT(shm_keys_sync(s, dup, 2, T0, NULL), SHM_EINVAL, "duplicate names refused");
    shm_key_spec_t bad = tu_spec("", "p", 0, 0, 0, 0);
    T_EQ_INT(shm_keys_sync(s, &bad, 1, T0, NULL), SHM_EINVAL, "empty name refused");

    sp[0].rpm = 20;
    T_EQ_INT(shm_keys_sync(s, sp, 2, T0 + 1000, &st), 0, "sync without c");
    T_OK(st.added == 0 && st.updated == 1 && st.orphaned == 1, "a updated, c orphaned");
    shm_key_t k;
    T_EQ_INT(shm_key_get(s, "c", T0 + 1000, &k), 0, "orphaned key still readable");
    T_OK(k.orphaned, "marked orphaned");
    T_EQ_INT(tu_admit1(s, "c", T0 + 1000, NULL), SHM_NONE, "orphaned key never admitted");
    T_EQ_INT(shm_key_get(s, "a", T0, &k), 0, "get a");
    T_EQ_INT(k.rpm, 20, "new limit applied");

    T_EQ_INT(shm_keys_sync(s, sp, 3, T0 + 2000, &st), 0, "c back in config");
    T_EQ_INT(st.restored, 1, "restored");
    T_EQ_INT(shm_keys_sync(s, sp, 1, T0 + 3000, &st), 0, "only a");
    T_EQ_INT(st.orphaned, 2, "b, c orphaned");
    unsigned pruned = 0;
    T_EQ_INT(shm_keys_prune(s, &pruned), 0, "prune");
    T_EQ_INT(pruned, 2, "two pruned");
    T_EQ_INT(shm_key_get(s, "b", T0, &k), SHM_ENOTFOUND, "b gone");
    shm_key_t *all;
    unsigned n;
    T_EQ_INT(shm_snapshot(s, T0, &all, &n), 0, "snapshot");
    T_OK(n == 1 && strcmp(all[0].name, "a") == 0, "snapshot holds a only");
    shm_snapshot_free(all);
    shm_provider_t *ps;
    T_EQ_INT(shm_providers(s, &ps, &n), 0, "providers");
    T_EQ_INT(n, 2, "two providers created by sync");
    shm_snapshot_free(ps);
    shm_store_close(s);
    tu_rmdir(parent);
}

/* RPM at the window edge through the store: burst of N at second 59. */
static void test_rpm_edge(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp = tu_spec("k", "p", 5, 0, 0, 0);
    shm_keys_sync(s, &sp, 1, T0, NULL);
    int64_t t = T0 + 59 * 1000 + 500, retry = 0;
    int ok = 0;
    for (int i = 0; i < 5; i++)
        ok += tu_admit1(s, "k", t, NULL) == 0;
    T_EQ_INT(ok, 5, "burst of 5 at second 59");
    T_EQ_INT(tu_admit1(s, "k", t, &retry), SHM_NONE, "6th refused");
    T_EQ_INT(retry, T0 + 120 * 1000, "earliest retry: second 59 is 60 s old at 120 s");
    int none = 1;
    for (int64_t ms = t + 1000; ms < T0 + 120 * 1000; ms += 997)
        if (tu_admit1(s, "k", ms, &retry) != SHM_NONE || retry != T0 + 120 * 1000)
            none = 0;
    T_OK(none, "nothing admitted until the burst slides out");
    T_EQ_INT(tu_admit1(s, "k", T0 + 120 * 1000, NULL), 0, "admitted at 120 s");
    shm_key_t k;
    shm_key_get(s, "k", T0 + 120 * 1000, &k);
    T_EQ_INT(k.rpm_used, 1, "window now holds 1");
    T_EQ_INT(k.requests, 6, "6 admitted in total");
    shm_store_close(s);
    tu_rmdir(parent);
}

static void test_rpd_rollover(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[2] = {tu_spec("utc", "p", 0, 3, 0, 0), tu_spec("pst", "p", 0, 3, 0, 0)};
    sp[1].day_offset_s = 8 * 3600; /* day starts 08:00 UTC */
    shm_keys_sync(s, sp, 2, T0, NULL);
    int64_t t = T0 + DAY_MS - 10000, retry;
    for (int i = 0; i < 3; i++)
        tu_admit1(s, "utc", t + i, NULL);
    T_EQ_INT(tu_admit1(s, "utc", t + 5, &retry), SHM_NONE, "4th of the day refused");
    T_EQ_INT(retry, T0 + DAY_MS, "retry at UTC midnight");
    T_EQ_INT(tu_admit1(s, "utc", T0 + DAY_MS, NULL), 0, "admitted after midnight");
    shm_key_t k;
    shm_key_get(s, "utc", T0 + DAY_MS, &k);
    T_EQ_INT(k.rpd_used, 1, "new day count 1");

    t = T0 + 7 * 3600 * 1000LL;
    for (int i = 0; i < 3; i++)
        tu_admit1(s, "pst", t + i * 61000, NULL);
    T_EQ_INT(tu_admit1(s, "pst", t + 200000, &retry), SHM_NONE, "offset day full");
    T_EQ_INT(retry, T0 + 8 * 3600 * 1000LL, "retry at 08:00 UTC");
    T_EQ_INT(tu_admit1(s, "pst", T0 + 8 * 3600 * 1000LL, NULL), 0, "new offset day");

    /* a health probe (shm_key_note with count_request) counts against the limits */
    {
        shm_outcome_t o;
        int64_t now = T0 + 3 * DAY_MS;
        shm_outcome_init(&o, SHM_CL_SUCCESS);
        o.count_request = 1;
        T_EQ_INT(shm_key_note(s, "utc", &o, now), 0, "probe noted");
        T_EQ_INT(shm_key_note(s, "utc", &o, now + 1), 0, "probe noted");
        shm_key_get(s, "utc", now + 2, &k);
        T_OK(k.rpd_used == 2 && k.rpm_used == 2, "probes counted: rpd %u, rpm %u", k.rpd_used,
             k.rpm_used);
        T_EQ_INT(tu_admit1(s, "utc", now + 3, NULL), 0, "one admission left of rpd 3");
        T_EQ_INT(tu_admit1(s, "utc", now + 4, NULL), SHM_NONE, "then the day is full");
        o.count_request = 0;
        shm_key_note(s, "pst", &o, now);
        shm_key_get(s, "pst", now + 1, &k);
        T_EQ_INT(k.rpd_used, 0, "a plain note is not a request");
    }
    shm_store_close(s);
    tu_rmdir(parent);
}

static void test_clock_backwards(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp = tu_spec("k", "p", 10, 25, 0, 0);
    shm_keys_sync(s, &sp, 1, T0, NULL);
    int64_t t = T0 + 3600 * 1000, retry = 0;
    for (int i = 0; i < 10; i++)
        tu_admit1(s, "k", t, NULL);
    /* small step back: clamped to the key clock */
    T_EQ_INT(tu_admit1(s, "k", t - 2000, &retry), SHM_NONE, "2 s back: still full");
    T_OK(retry > t - 2000, "retry after now (%lld ms ahead)", (long long)(retry - (t - 2000)));
    T_OK(retry - (t - 2000) <= 61000 + SHM_CLOCK_SKEW_MS, "wait within one window + skew");
    /* large step back: re-based, still full, wait within one window */
    int64_t back = t - 3 * 3600 * 1000LL;
    T_EQ_INT(tu_admit1(s, "k", back, &retry), SHM_NONE, "3 h back: not unlimited");
    T_OK(retry > back && retry - back <= 61000, "wait positive and within a window (%lld ms)",
         (long long)(retry - back));
    int admitted = 0;
    for (int64_t ms = back; ms < back + 60000; ms += 500)
        admitted += tu_admit1(s, "k", ms, NULL) == 0;
    T_EQ_INT(admitted, 0, "nothing admitted in the 60 s after the step back");
    admitted = 0;
    for (int64_t ms = back + 60000; ms < back + 200000; ms += 100)
        admitted += tu_admit1(s, "k", ms, NULL) == 0;
    /* at most 10 per window; the day limit (25) still counts the 10 before the step */
    T_EQ_INT(admitted, 15, "day count kept across the step: 15 more reach rpd 25");
    shm_key_t k;
    shm_key_get(s, "k", back + 200000, &k);
    T_EQ_INT(k.rpd_used, 25, "rpd used 25");
    T_EQ_INT(tu_admit1(s, "k", back + 3600000, &retry), SHM_NONE, "rpd refuses an hour later");
    T_OK(retry > back + 3600000, "rpd retry positive");
    shm_event_t ev[SHM_HISTORY_RING];
    unsigned n = 0;
    shm_key_history(s, "k", ev, SHM_HISTORY_RING, &n);
    int clock_ev = 0;
    for (unsigned i = 0; i < n; i++)
        clock_ev += ev[i].type == SHM_EV_CLOCK;
    T_OK(clock_ev >= 1, "step back recorded in history");
    shm_store_close(s);
    tu_rmdir(parent);
}

static int pick_least_inflight(void *arg, const shm_candidate_t *c, unsigned n)
{
    (void)arg;
    unsigned best = 0;
    for (unsigned i = 1; i < n; i++)
        if (c[i].inflight < c[best].inflight)
            best = i;
    return (int)best;
}

static void test_admission_rules(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[3] = {tu_spec("a", "p", 0, 0, 1000, 2), tu_spec("b", "p", 0, 0, 0, 0),
                            tu_spec("z", "q", 0, 0, 0, 0)};
    shm_keys_sync(s, sp, 3, T0, NULL);
    const char *ab[2] = {"a", "b"};
    shm_resv_t r1, r2, r3;
    int64_t t = T0 + 10000, retry;
    uint8_t skip[2];
    shm_admit_req_t req = {.names = ab, .count = 2, .tokens = 600, .skip = skip};
    T_EQ_INT(shm_key_admit(s, &req, t, &r1, NULL), 0, "admit");
    T_EQ_STR(r1.name, "a", "first admissible chosen by default");
    T_EQ_INT(shm_key_admit(s, &req, t, &r2, NULL), 0, "admit again");
    T_EQ_STR(r2.name, "b", "a's TPM full (600 + 600 > 1000): b");
    T_EQ_INT(skip[0], SHM_SKIP_TPM, "skip reason TPM");
    shm_outcome_t o;
    shm_outcome_init(&o, SHM_CL_SUCCESS);
    o.prompt_tokens = 100;
    o.completion_tokens = 50;
    o.ttfb_ms = 20;
    o.total_ms = 80;
    o.cost_micro_usd = 1234;
    T_EQ_INT(shm_key_record(s, &r1, &o, t + 500), 0, "record success on a");
    T_EQ_INT(shm_key_record(s, &r1, &o, t + 500), SHM_ESTALE, "second record refused");
    shm_key_t k;
    shm_key_get(s, "a", t + 500, &k);
    T_EQ_INT(k.tpm_used, 150, "TPM reconciled from 600 to 150");
    T_OK(k.inflight == 0 && k.by_class[SHM_CL_SUCCESS] == 1 && k.cost_micro_usd == 1234 &&
             k.prompt_tokens == 100 && k.ewma_total_ms == 80,
         "counters updated");
    req.choose = pick_least_inflight;
    T_EQ_INT(shm_key_admit(s, &req, t + 600, &r1, NULL), 0, "admit with strategy");
    T_EQ_STR(r1.name, "a", "least in-flight: a (b holds one)");
    req.tokens = 0;
    T_EQ_INT(shm_key_admit(s, &req, t + 600, &r3, NULL), 0, "admit");
    T_EQ_STR(r3.name, "a", "a and b tie at 1: first");
    const char *a1[1] = {"a"};
    req.names = a1;
    req.count = 1;
    req.choose = NULL;
    T_EQ_INT(shm_key_admit(s, &req, t + 600, &r2, &retry), SHM_NONE, "max_inflight 2 reached");
    T_EQ_INT(skip[0], SHM_SKIP_INFLIGHT, "skip reason in-flight");
    T_EQ_INT(retry, 0, "in-flight bound: no time-based retry");
    T_EQ_INT(shm_key_release(s, &r3, 1, t + 700), 0, "release with refund");
    T_EQ_INT(shm_key_admit(s, &req, t + 700, &r3, NULL), 0, "slot free again");

    /* cooldown through an outcome, then half-open probe, then success */
    shm_outcome_init(&o, SHM_CL_429);
    o.code = 429;
    o.cooldown_until_ms = t + 30000;
    o.reason = SHM_RS_RATE_LIMITED;
    T_EQ_INT(shm_key_record(s, &r1, &o, t + 1000), 0, "record 429 with cooldown");
    shm_key_get(s, "a", t + 1000, &k);
    T_OK(k.status == SHM_ST_COOLING && k.cooldown_until_ms == t + 30000 &&
             k.last_error_code == 429 && k.consec_failures == 1,
         "a cooling until +30 s");
    shm_key_release(s, &r3, 0, t + 1000);
    T_EQ_INT(shm_key_admit(s, &req, t + 2000, &r1, &retry), SHM_NONE, "cooling: refused");
    T_EQ_INT(retry, t + 30000, "retry at cooldown end");
    T_EQ_INT(skip[0], SHM_SKIP_COOLING, "skip reason cooling");
    T_EQ_INT(shm_key_admit(s, &req, t + 30000, &r1, NULL), 0, "probe admitted after cooldown");
    shm_key_get(s, "a", t + 30000, &k);
    T_EQ_INT(k.status, SHM_ST_HALF_OPEN, "half open");
    T_EQ_INT(shm_key_admit(s, &req, t + 30000, &r3, NULL), SHM_NONE, "one probe at a time");
    T_EQ_INT(skip[0], SHM_SKIP_PROBE, "skip reason probe");
    shm_outcome_init(&o, SHM_CL_SUCCESS);
    shm_key_record(s, &r1, &o, t + 31000);
    shm_key_get(s, "a", t + 31000, &k);
    T_EQ_INT(k.status, SHM_ST_ACTIVE, "success closes half open");

    /* auth failure marks invalid; circuit open skips provider */
    T_EQ_INT(shm_key_admit(s, &req, t + 32000, &r1, NULL), 0, "admit");
    shm_outcome_init(&o, SHM_CL_AUTH);
    o.code = 401;
    o.set_status = SHM_ST_INVALID;
    o.reason = SHM_RS_AUTH;
    shm_key_record(s, &r1, &o, t + 32000);
    T_EQ_INT(shm_key_admit(s, &req, t + 33000, &r1, &retry), SHM_NONE, "invalid: refused");
    T_OK(skip[0] == SHM_SKIP_STATUS && retry == 0, "status skip, no retry time");
    T_EQ_INT(shm_key_enable(s, "a", "test", t + 34000), 0, "enable clears invalid");
    T_EQ_INT(shm_key_admit(s, &req, t + 34000, &r1, NULL), 0, "admitted after enable");
    shm_key_release(s, &r1, 0, t + 34000);
    T_EQ_INT(
        shm_provider_set_circuit(s, "p", SHM_CIRCUIT_OPEN, t + 50000, SHM_RS_POLICY, t + 34000), 0,
        "open circuit of p");
    const char *az[2] = {"a", "z"};
    req.names = az;
    req.count = 2;
    T_EQ_INT(shm_key_admit(s, &req, t + 35000, &r1, NULL), 0, "admit across providers");
    T_OK(strcmp(r1.name, "z") == 0 && skip[0] == SHM_SKIP_CIRCUIT, "p's key skipped: z");
    shm_key_release(s, &r1, 0, t + 35000);
    shm_provider_t pv;
    T_EQ_INT(shm_provider_get(s, "p", &pv), 0, "provider get");
    T_OK(pv.circuit == SHM_CIRCUIT_OPEN && pv.open_until_ms == t + 50000, "circuit stored");
    req.count = 1;
    T_EQ_INT(shm_key_admit(s, &req, t + 36000, &r1, &retry), SHM_NONE, "only p: none");
    T_EQ_INT(retry, t + 50000, "retry when the circuit may close");
    const char *unk[1] = {"nope"};
    req.names = unk;
    T_EQ_INT(shm_key_admit(s, &req, t, &r1, &retry), SHM_NONE, "unknown key: none");
    T_EQ_INT(skip[0], SHM_SKIP_UNKNOWN, "skip reason unknown");
    shm_store_close(s);
    tu_rmdir(parent);
}

static void test_actions_history_latency(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp = tu_spec("k", "p", 3, 10, 0, 0);
    shm_keys_sync(s, &sp, 1, T0, NULL);
    int64_t t = T0 + 5000, retry;
    for (int i = 0; i < 3; i++)
        tu_admit1(s, "k", t, NULL);
    T_EQ_INT(tu_admit1(s, "k", t, NULL), SHM_NONE, "rpm full");
    T_EQ_INT(shm_key_reset(s, "k", SHM_RESET_RPM, "ctl", t), 0, "reset rpm");
    T_EQ_INT(tu_admit1(s, "k", t, NULL), 0, "admitted after reset");
    T_EQ_INT(shm_key_cooldown(s, "k", 60000, "ctl", t), 0, "admin cooldown 60 s");
    T_EQ_INT(tu_admit1(s, "k", t + 1000, &retry), SHM_NONE, "cooling");
    T_EQ_INT(retry, t + 60000, "until the admin's time");
    T_EQ_INT(shm_key_disable(s, "k", "ctl", t + 1000), 0, "disable");
    T_EQ_INT(tu_admit1(s, "k", t + 120000, &retry), SHM_NONE, "disabled");
    T_EQ_INT(shm_key_enable(s, "k", "ctl", t + 2000), 0, "enable");
    T_EQ_INT(shm_key_reset(s, "k", SHM_RESET_ALL, "ctl", t + 2000), 0, "reset all");
    shm_key_t k;
    shm_key_get(s, "k", t + 2000, &k);
    T_OK(k.rpm_used == 0 && k.rpd_used == 0 && k.requests == 0 && k.status == SHM_ST_ACTIVE,
         "all reset, active");
    T_EQ_INT(shm_key_disable(s, "missing", NULL, t), SHM_ENOTFOUND, "unknown key: not found");
    T_EQ_INT(shm_key_reset(s, "k", 0, NULL, t), SHM_EINVAL, "empty reset mask refused");
    shm_event_t ev[SHM_HISTORY_RING];
    unsigned n = 0;
    T_EQ_INT(shm_key_history(s, "k", ev, SHM_HISTORY_RING, &n), 0, "history");
    int want[] = {SHM_EV_RESET, SHM_EV_COOLDOWN, SHM_EV_DISABLE, SHM_EV_ENABLE, SHM_EV_RESET};
    int match = n == 5;
    for (unsigned i = 0; match && i < 5; i++)
        match = ev[i].type == want[i] && strcmp(ev[i].text, "ctl") == 0;
    T_OK(match, "history: reset, cooldown, disable, enable, reset by ctl (n=%u)", n);
    T_EQ_INT(ev[1].arg, t + 60000, "cooldown event carries its end");
    T_EQ_INT(shm_key_history(s, "k", ev, 2, &n), 0, "history, newest 2");
    T_OK(n == 2 && ev[0].type == SHM_EV_ENABLE, "newest two, oldest first");
    for (int i = 0; i < 40; i++)
        shm_key_disable(s, "k", "loop", t + 3000 + i);
    shm_key_history(s, "k", ev, SHM_HISTORY_RING, &n);
    T_EQ_INT(n, SHM_HISTORY_RING, "ring keeps the last %d", SHM_HISTORY_RING);
    T_EQ_INT(ev[SHM_HISTORY_RING - 1].ts_ms, t + 3039, "newest last");
    shm_key_enable(s, "k", NULL, t + 5000);

    /* latency ring: 300 samples, ring keeps 256 */
    shm_outcome_t o;
    shm_outcome_init(&o, SHM_CL_SUCCESS);
    shm_key_spec_t sp2 = tu_spec("k", "p", 0, 0, 0, 0);
    shm_keys_sync(s, &sp2, 1, t, NULL);
    for (uint32_t i = 1; i <= 300; i++) {
        shm_resv_t r;
        const char *nm[1] = {"k"};
        tu_admit(s, nm, 1, 0, t + 6000, &r, NULL);
        o.ttfb_ms = i;
        o.total_ms = 1000 + i;
        shm_key_record(s, &r, &o, t + 6000);
    }
    shm_latency_t lat;
    T_EQ_INT(shm_key_latency(s, "k", &lat), 0, "latency ring");
    T_EQ_INT(lat.count, SHM_LAT_RING, "256 samples kept");
    T_OK(lat.ttfb_ms[0] == 45 && lat.ttfb_ms[255] == 300, "oldest 45, newest 300");
    shm_pct_t p;
    shm_percentiles(lat.total_ms, lat.count, &p);
    T_OK(p.p50 == 1172 && p.p99 == 1298, "p50 %u p99 %u", p.p50, p.p99);
    shm_store_close(s);
    tu_rmdir(parent);
}

static void test_persistence_reopen(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[2] = {tu_spec("a", "p", 5, 7, 0, 0), tu_spec("b", "p", 0, 0, 0, 0)};
    shm_keys_sync(s, sp, 2, T0, NULL);
    int64_t t = T0 + 1000;
    for (int i = 0; i < 5; i++)
        tu_admit1(s, "a", t, NULL);
    shm_key_cooldown(s, "b", 120000, "ctl", t);
    shm_store_close(s);
    s = tu_open(dir, t + 10000);
    T_OK(s != NULL, "reopen");
    shm_key_t k;
    shm_key_get(s, "a", t + 10000, &k);
    T_OK(k.rpm_used == 5 && k.rpd_used == 5 && k.requests == 5, "admissions survive");
    T_EQ_INT(tu_admit1(s, "a", t + 10000, NULL), SHM_NONE, "window still full after reopen");
    shm_key_get(s, "b", t + 10000, &k);
    T_OK(k.status == SHM_ST_COOLING && k.cooldown_until_ms == t + 120000, "cooldown survives");
    T_EQ_INT(tu_admit1(s, "a", t + 61000, NULL), 0, "next window");
    T_EQ_INT(tu_admit1(s, "a", t + 61000, NULL), 0, "7th of the day");
    T_EQ_INT(tu_admit1(s, "a", t + 122000, NULL), SHM_NONE, "day count survived: rpd 7");
    shm_store_close(s);
    shm_opts_t ro = {.dir = dir, .readonly = 1};
    char err[256];
    T_EQ_INT(shm_store_open(&ro, t, &s, err, sizeof(err)), 0, "read-only open");
    shm_key_get(s, "a", t + 122000, &k);
    T_EQ_INT(k.rpd_used, 7, "read-only view");
    T_EQ_INT(tu_admit1(s, "a", t, NULL), SHM_ERDONLY, "read-only refuses admission");
    T_EQ_INT(shm_key_disable(s, "a", NULL, t), SHM_ERDONLY, "read-only refuses actions");
    T_EQ_INT(shm_maintain(s, t, NULL), 0, "maintain on read-only");
    shm_store_close(s);
    tu_rmdir(parent);
}

static void test_map_growth(void)
{
    char parent[64], dir[96], err[256];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_opts_t o = {.dir = dir, .map_size = 256 * 1024, .map_max = 1 << 30};
    shm_t *s = NULL;
    T_EQ_INT(shm_store_open(&o, T0, &s, err, sizeof(err)), 0, "open with a 256 KiB map");
    enum { N = 3000 };
    static shm_key_spec_t sp[N];
    static char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "key%05d", i);
        sp[i] = tu_spec(names[i], "p", 10, 0, 0, 0);
    }
    shm_store_info_t before, after;
    shm_store_info(s, &before);
    T_EQ_INT(shm_keys_sync(s, sp, N, T0, NULL), 0, "3000 keys (3 MiB) into 256 KiB: grown");
    shm_store_info(s, &after);
    T_OK(after.map_size > before.map_size, "map grew %zu -> %zu", before.map_size, after.map_size);
    shm_key_t k;
    T_EQ_INT(shm_key_get(s, "key02999", T0, &k), 0, "last key stored");
    /* Admissions keep working and the store remains consistent past more growth. */
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += tu_admit1(s, names[i], T0 + 1000, NULL) == 0;
    T_EQ_INT(ok, N, "an admission on every key");
    shm_maint_t m;
    T_EQ_INT(shm_maintain(s, T0 + 2000, &m), 0, "maintain");
    shm_store_close(s);
    /* a second opener with a smaller configured map adopts the larger one */
    T_EQ_INT(shm_store_open(&o, T0, &s, err, sizeof(err)), 0, "reopen with the small map option");
    T_EQ_INT(shm_key_get(s, "key01500", T0 + 1000, &k), 0, "data readable");
    T_EQ_INT(k.rpm_used, 1, "admission persisted");
    shm_store_close(s);
    /* a hard cap is an error, not a crash */
    tu_rmdir(parent);
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_opts_t capped = {.dir = dir, .map_size = 256 * 1024, .map_max = 512 * 1024};
    T_EQ_INT(shm_store_open(&capped, T0, &s, err, sizeof(err)), 0, "open capped");
    T_EQ_INT(shm_keys_sync(s, sp, N, T0, NULL), SHM_EFULL, "beyond map_max: SHM_EFULL");
    T_EQ_INT(shm_keys_sync(s, sp, 10, T0, NULL), 0, "the store still works after it");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* shm_key_record_admit: held-back outcomes and the next admission in one transaction. */
static void test_record_admit(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[2] = {tu_spec("a", "p", 0, 0, 0, 1), tu_spec("b", "p", 0, 0, 0, 1)};
    shm_keys_sync(s, sp, 2, T0, NULL);
    const char *ab[2] = {"a", "b"};
    shm_admit_req_t req = {.names = ab, .count = 2};
    int64_t t = T0 + 5000, retry = 0;
    shm_resv_t ra, rb, rc3, rd;
    shm_outcome_t o[2];
    int recorded = -1;
    shm_key_t k;

    T_EQ_INT(shm_key_admit(s, &req, t, &ra, NULL), 0, "a admitted");
    T_EQ_INT(shm_key_admit(s, &req, t, &rb, NULL), 0, "b admitted");
    T_EQ_INT(shm_key_admit(s, &req, t, &rc3, &retry), SHM_NONE, "both at max_inflight 1: nothing");
    /* a's success held back, then recorded with the next admission: it must see a free */
    shm_outcome_init(&o[0], SHM_CL_SUCCESS);
    o[0].total_ms = 40;
    o[0].prompt_tokens = 7;
    shm_resv_t *one[1] = {&ra};
    T_EQ_INT(shm_key_record_admit(s, one, o, 1, &req, t + 10, &rc3, &retry, &recorded), 0,
             "record a + admit in one transaction");
    T_EQ_INT(recorded, 1, "  ... the outcome was committed");
    T_EQ_INT(ra.live, 0, "  ... its reservation is finished");
    T_EQ_STR(rc3.name, "a", "  ... and the admission saw a free again");
    shm_key_get(s, "a", t + 10, &k);
    T_OK(k.inflight == 1 && k.by_class[SHM_CL_SUCCESS] == 1 && k.prompt_tokens == 7 &&
             k.requests == 2,
         "a: one success recorded, one request in flight, two requests");
    T_EQ_INT(shm_key_record_admit(s, one, o, 1, &req, t + 10, &rd, &retry, &recorded), SHM_ESTALE,
             "the same outcome again: SHM_ESTALE");
    T_EQ_INT(recorded, 0, "  ... nothing written");
    /* nothing admissible: the outcomes are still committed */
    shm_outcome_init(&o[1], SHM_CL_SUCCESS);
    shm_resv_t *two[2] = {&rb, &rc3};
    const char *b1[1] = {"b"};
    shm_admit_req_t rq_b = {.names = b1, .count = 1};
    T_EQ_INT(shm_key_admit(s, &rq_b, t + 20, &rd, NULL), SHM_NONE, "b alone: full");
    /* admit only b while b's own outcome is in the batch: sees it free */
    T_EQ_INT(shm_key_record_admit(s, two, o, 2, &rq_b, t + 20, &rd, &retry, &recorded), 0,
             "two outcomes + admission of b");
    T_OK(recorded == 1 && rb.live == 0 && rc3.live == 0, "  ... both committed");
    T_EQ_STR(rd.name, "b", "  ... b admitted");
    shm_resv_t *rd1[1] = {&rd};
    shm_resv_t re;
    shm_key_t kb;
    {
        /* b is full again (rd): an admission of b alone finds nothing, and the batched outcome
         * of a different reservation still commits */
        shm_resv_t ra2;
        const char *a1[1] = {"a"};
        shm_admit_req_t rq_a = {.names = a1, .count = 1};
        T_EQ_INT(shm_key_admit(s, &rq_a, t + 30, &ra2, NULL), 0, "a admitted again");
        shm_resv_t *ra2p[1] = {&ra2};
        T_EQ_INT(shm_key_record_admit(s, ra2p, o, 1, &rq_b, t + 30, &re, &retry, &recorded),
                 SHM_NONE, "b full: SHM_NONE");
        T_EQ_INT(recorded, 1, "  ... but a's outcome was committed");
        T_EQ_INT(ra2.live, 0, "  ... and its reservation finished");
        shm_key_get(s, "a", t + 30, &k);
        T_OK(k.inflight == 0 && k.by_class[SHM_CL_SUCCESS] == 3,
             "a: nothing in flight, 3 successes");
    }
    T_EQ_INT(shm_key_record_admit(s, rd1, o, 0, &rq_b, t + 40, &re, &retry, &recorded), SHM_NONE,
             "n 0: a plain admission (b still full)");
    T_EQ_INT(shm_key_record(s, &rd, o, t + 40), 0, "b's reservation recorded alone");
    shm_key_get(s, "b", t + 40, &kb);
    T_OK(kb.inflight == 0 && kb.by_class[SHM_CL_SUCCESS] == 2, "b: 2 successes, none in flight");
    T_EQ_INT(shm_key_record_admit(s, rd1, o, 1, &rq_b, t + 40, &re, &retry, NULL), SHM_EINVAL,
             "recorded is required");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* shm_key_batch: outcomes and several admissions in one transaction. */
typedef struct batch_t_s {
    const char **names;
    unsigned count;
    unsigned runs;
    int rc[3];
    shm_resv_t resv[3];
    int fail; /* give the transaction up after the admissions */
} batch_t;

static int batch_cb(shm_batch_t *b, void *arg)
{
    batch_t *t = arg;
    t->runs++;
    for (unsigned i = 0; i < 3; i++) {
        shm_admit_req_t req = {.names = t->names, .count = t->count};
        int64_t retry;
        t->rc[i] = shm_batch_admit(b, &req, &t->resv[i], &retry);
    }
    return t->fail ? SHM_EINVAL : 0;
}

static void test_batch(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    shm_key_spec_t sp[2] = {tu_spec("a", "p", 0, 0, 0, 1), tu_spec("b", "p", 0, 0, 0, 1)};
    shm_keys_sync(s, sp, 2, T0, NULL);
    const char *ab[2] = {"a", "b"};
    int64_t t = T0 + 5000;
    shm_resv_t ra;
    shm_key_t k;
    shm_outcome_t o;

    T_EQ_INT(tu_admit(s, ab, 2, 0, t, &ra, NULL), 0, "a admitted alone");
    shm_outcome_init(&o, SHM_CL_SUCCESS);
    shm_resv_t *one[1] = {&ra};
    batch_t bt = {.names = ab, .count = 2};
    T_EQ_INT(shm_key_batch(s, one, &o, 1, t + 1, batch_cb, &bt), 0,
             "a batch: a's outcome and three admissions");
    T_EQ_INT(bt.runs, 1, "  ... fn ran once");
    T_EQ_INT(ra.live, 0, "  ... the outcome was recorded");
    T_OK(bt.rc[0] == 0 && bt.rc[1] == 0 && bt.rc[2] == SHM_NONE,
         "  ... two admitted, the third sees both keys full (max_inflight 1)");
    T_OK(strcmp(bt.resv[0].name, bt.resv[1].name) != 0, "  ... on two different keys");
    shm_key_get(s, "a", t + 1, &k);
    T_OK(k.inflight == 1 && k.requests == 2 && k.by_class[SHM_CL_SUCCESS] == 1,
         "a: the success and a new request in flight");
    /* a batch given up writes nothing */
    shm_resv_t *two[2] = {&bt.resv[0], &bt.resv[1]};
    shm_outcome_t oo[2] = {o, o};
    batch_t bf = {.names = ab, .count = 2, .fail = 1};
    T_EQ_INT(shm_key_batch(s, two, oo, 2, t + 2, batch_cb, &bf), SHM_EINVAL,
             "fn gives up: the code comes back");
    T_OK(bt.resv[0].live == 1 && bt.resv[1].live == 1, "  ... the outcomes are still to record");
    T_OK(bf.rc[0] == 0 && bf.rc[1] == 0, "  ... (inside, both admissions had succeeded)");
    shm_key_get(s, "a", t + 2, &k);
    T_OK(k.inflight == 1 && k.requests == 2 && k.by_class[SHM_CL_SUCCESS] == 1,
         "  ... and nothing of it is in the store");
    T_EQ_INT(shm_key_record_batch(s, two, oo, 2, t + 3), 0, "the outcomes recorded afterwards");
    batch_t bz = {.names = ab, .count = 2};
    T_EQ_INT(shm_key_batch(s, NULL, NULL, 0, t + 4, batch_cb, &bz), 0, "a batch without outcomes");
    T_OK(bz.rc[0] == 0 && bz.rc[1] == 0 && bz.rc[2] == SHM_NONE, "  ... admits as before");
    const char *bad[1] = {""};
    batch_t bb = {.names = bad, .count = 1};
    T_EQ_INT(shm_key_batch(s, NULL, NULL, 0, t + 5, batch_cb, &bb), 0,
             "an invalid admission does not give the batch up");
    T_EQ_INT(bb.rc[0], SHM_EINVAL, "  ... it answers SHM_EINVAL");
    T_EQ_INT(shm_key_batch(s, NULL, NULL, 0, t + 5, NULL, NULL), SHM_EINVAL, "no fn: SHM_EINVAL");
    shm_store_close(s);
    tu_rmdir(parent);
}

int main(void)
{
    test_files_and_perms();
    test_schema_refused();
    test_sync_orphan_prune();
    test_rpm_edge();
    test_rpd_rollover();
    test_clock_backwards();
    test_admission_rules();
    test_record_admit();
    test_batch();
    test_actions_history_latency();
    test_persistence_reopen();
    test_map_growth();
    return t_done();
}
