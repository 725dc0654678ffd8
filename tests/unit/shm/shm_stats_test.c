/* shm_stats_test.c - history rows (shm_stats.h): an outcome adds to its key's and its model's
 * rows of the minute, the hour and the day; a batch folds; latency goes into histograms whose
 * quantiles land in the right bucket; names that share a prefix stay apart; ranges select;
 * notes (probes) have no model; rows survive a reopen; pruning keeps each resolution's
 * retention; a corrupt row is refused, not read. */
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "shm/shm_stats.h"
#include "shm_tutil.h"
#include "t.h"

static int serve(shm_t *s, const char *key, const char *model, int cls, uint32_t total_ms,
                 uint32_t in, uint32_t out, uint64_t cost, int64_t now)
{
    const char *names[1] = {key};
    shm_admit_req_t req = {.names = names, .count = 1, .model = model};
    shm_resv_t r;
    int64_t retry;
    int rc = shm_key_admit(s, &req, now, &r, &retry);
    if (rc != 0)
        return rc;
    shm_outcome_t o;
    shm_outcome_init(&o, cls);
    o.total_ms = total_ms;
    o.ttfb_ms = total_ms / 4;
    o.prompt_tokens = in;
    o.completion_tokens = out;
    o.cost_micro_usd = cost;
    return shm_key_record(s, &r, &o, now);
}

static const shm_stats_row_t *find(const shm_stats_row_t *rows, unsigned n, const char *name,
                                   int64_t index)
{
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(rows[i].name, name) && rows[i].index == index)
            return &rows[i];
    return NULL;
}

static void pure(void)
{
    T_EQ_INT(shm_stats_bucket(0), 0, "0 ms: the first bucket");
    T_EQ_INT(shm_stats_bucket(5), 0, "5 ms: the first bucket (bounds are inclusive)");
    T_EQ_INT(shm_stats_bucket(6), 1, "6 ms: the second");
    T_EQ_INT(shm_stats_bucket(300000), SHM_STATS_BUCKETS - 2, "300 s: the last bounded one");
    T_EQ_INT(shm_stats_bucket(300001), SHM_STATS_BUCKETS - 1, "past it: the open bucket");
    for (unsigned i = 1; i < SHM_STATS_BUCKETS - 1; i++)
        if (shm_stats_le_ms[i] <= shm_stats_le_ms[i - 1])
            T_OK(0, "bounds increase");
    T_EQ_INT(shm_stats_index(SHM_SR_MINUTE, -1), -1, "index rounds down before the epoch");
    T_EQ_INT(shm_stats_index(SHM_SR_HOUR, 7200000), 2, "hour index");

    uint64_t h[SHM_STATS_BUCKETS] = {0};
    T_EQ_INT(shm_stats_quantile(h, 0, 0.5), 0, "no samples: 0");
    h[shm_stats_bucket(100)] = 90; /* 90 in (75, 100] */
    h[shm_stats_bucket(900)] = 10; /* 10 in (750, 1000] */
    uint32_t p50 = shm_stats_quantile(h, 950, 0.5), p95 = shm_stats_quantile(h, 950, 0.95),
             p99 = shm_stats_quantile(h, 950, 0.99), p100 = shm_stats_quantile(h, 950, 1.0);
    T_OK(p50 > 75 && p50 <= 100, "p50 in its bucket (75, 100]");
    T_OK(p95 > 750 && p95 <= 950, "p95 in (750, 950]: capped at the largest sample");
    T_OK(p99 >= p95 && p100 == 950, "p99 >= p95; p100 is the largest sample");
    memset(h, 0, sizeof(h));
    h[SHM_STATS_BUCKETS - 1] = 3;
    T_EQ_INT(shm_stats_quantile(h, 400000, 0.5), 366667, "the open bucket: up to the largest");

    shm_stats_t a = {0}, b = {0};
    a.by_class[SHM_CL_SUCCESS] = UINT64_MAX - 1;
    b.by_class[SHM_CL_SUCCESS] = 5;
    b.by_class[SHM_CL_429] = 2;
    b.lat_max_ms = 7;
    shm_stats_merge(&a, &b);
    T_OK(a.by_class[SHM_CL_SUCCESS] == UINT64_MAX && a.by_class[SHM_CL_429] == 2 &&
             a.lat_max_ms == 7,
         "merge saturates and keeps the largest sample");
    T_EQ_INT(shm_stats_errors(&b), 2, "errors: the 429s");
    T_EQ_INT(shm_stats_outcomes(&b), 7, "outcomes: every class");
}

int main(void)
{
    pure();
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    shm_t *s = tu_open(dir, T0);
    T_OK(s != NULL, "store opened");
    if (!s)
        return t_done();
    shm_key_spec_t ks[3] = {tu_spec("k", "p", 0, 0, 0, 0), tu_spec("k1", "p", 0, 0, 0, 0),
                            tu_spec("q", "p", 0, 0, 0, 0)};
    T_EQ_INT(shm_keys_sync(s, ks, 3, T0, NULL), 0, "keys k, k1, q");
    const int64_t m0 = T0 / 60000, h0 = T0 / 3600000, d0 = T0 / DAY_MS;

    T_EQ_INT(serve(s, "k", "m", SHM_CL_SUCCESS, 100, 10, 20, 300, T0 + 1000), 0, "k, m: 100 ms");
    T_EQ_INT(serve(s, "k", "m", SHM_CL_SUCCESS, 900, 1, 2, 3, T0 + 2000), 0, "k, m: 900 ms");
    T_EQ_INT(serve(s, "k", "m", SHM_CL_429, 0, 0, 0, 0, T0 + 3000), 0, "k, m: a 429");
    T_EQ_INT(serve(s, "k1", "m", SHM_CL_5XX, 0, 0, 0, 0, T0 + 4000), 0, "k1, m: a 5xx");
    T_EQ_INT(serve(s, "k1", "mm", SHM_CL_SUCCESS, 50, 5, 5, 5, T0 + 61000), 0,
             "k1, mm: next minute");
    {
        /* a batch of three successes of k and m: folded, the same sums */
        const char *names[1] = {"k"};
        shm_admit_req_t req = {.names = names, .count = 1, .model = "m"};
        shm_resv_t r[3];
        shm_resv_t *rp[3] = {&r[0], &r[1], &r[2]};
        shm_outcome_t o[3];
        int64_t retry;
        for (int i = 0; i < 3; i++) {
            T_EQ_INT(shm_key_admit(s, &req, T0 + 5000, &r[i], &retry), 0, "batch admission");
            shm_outcome_init(&o[i], SHM_CL_SUCCESS);
            o[i].total_ms = 200;
            o[i].ttfb_ms = 20;
            o[i].completion_tokens = 1;
        }
        T_EQ_INT(shm_key_record_batch(s, rp, o, 3, T0 + 6000), 0, "recorded in one batch");
    }
    {
        /* a probe: the key's rows, no model's */
        shm_outcome_t o;
        shm_outcome_init(&o, SHM_CL_SUCCESS);
        o.total_ms = 10;
        o.count_request = 1;
        T_EQ_INT(shm_key_note(s, "q", &o, T0 + 7000), 0, "a probe of q");
    }

    shm_stats_row_t *rows = NULL;
    unsigned n = 0;
    T_EQ_INT(shm_stats(s, SHM_SR_MINUTE, SHM_SS_MODEL, NULL, m0, m0 + 1, &rows, &n), 0,
             "models, two minutes");
    T_EQ_INT(n, 2, "m at minute 0, mm at minute 1");
    const shm_stats_row_t *r = find(rows, n, "m", m0);
    T_OK(r && r->v.by_class[SHM_CL_SUCCESS] == 5 && r->v.by_class[SHM_CL_429] == 1 &&
             r->v.by_class[SHM_CL_5XX] == 1,
         "m: five successes, a 429 and k1's 5xx");
    T_OK(r && r->v.prompt_tokens == 11 && r->v.completion_tokens == 25 &&
             r->v.cost_micro_usd == 303,
         "m: tokens and cost");
    T_OK(r && shm_stats_samples(&r->v) == 5 && r->v.lat_max_ms == 900 && r->v.lat_sum_ms == 1600,
         "m: five latency samples, the largest 900 ms");
    T_OK(r && r->v.lat[shm_stats_bucket(200)] == 3 && r->v.ttfb[shm_stats_bucket(20)] == 3,
         "the batch's three in the 200 ms bucket, their ttfb in the 20 ms one");
    T_OK(find(rows, n, "mm", m0 + 1) != NULL, "mm in its own minute");
    T_OK(n == 2 && !strcmp(rows[0].name, "m") && !strcmp(rows[1].name, "mm"), "sorted by name");
    shm_snapshot_free(rows);

    T_EQ_INT(shm_stats(s, SHM_SR_MINUTE, SHM_SS_KEY, "k", m0, m0 + 10, &rows, &n), 0, "k alone");
    T_OK(n == 1 && rows[0].v.by_class[SHM_CL_SUCCESS] == 5 && rows[0].v.by_class[SHM_CL_429] == 1,
         "k: not k1's rows, whose name it prefixes");
    shm_snapshot_free(rows);
    T_EQ_INT(shm_stats(s, SHM_SR_MINUTE, SHM_SS_KEY, NULL, m0 + 1, m0 + 1, &rows, &n), 0,
             "every key, minute 1");
    T_OK(n == 1 && !strcmp(rows[0].name, "k1") && rows[0].index == m0 + 1, "k1's minute 1 only");
    shm_snapshot_free(rows);
    T_EQ_INT(shm_stats(s, SHM_SR_MINUTE, SHM_SS_KEY, "q", m0, m0, &rows, &n), 0, "q");
    T_OK(n == 1 && rows[0].v.by_class[SHM_CL_SUCCESS] == 1, "the probe is in q's row");
    shm_snapshot_free(rows);

    T_EQ_INT(shm_stats(s, SHM_SR_HOUR, SHM_SS_MODEL, NULL, h0, h0, &rows, &n), 0, "models, hour");
    T_OK(n == 2 && shm_stats_outcomes(&rows[0].v) == 7 && shm_stats_outcomes(&rows[1].v) == 1,
         "the hour rows hold both minutes");
    shm_snapshot_free(rows);
    T_EQ_INT(shm_stats(s, SHM_SR_DAY, SHM_SS_KEY, NULL, d0, d0, &rows, &n), 0, "keys, day");
    T_EQ_INT(n, 3, "k, k1 and q have a day row");
    shm_snapshot_free(rows);

    char(*names)[SHM_NAME_MAX + 1] = NULL;
    T_EQ_INT(shm_stats_names(s, SHM_SR_MINUTE, SHM_SS_KEY, m0 + 1, &names, &n), 0, "key names");
    T_OK(n == 1 && !strcmp(names[0], "k1"), "only k1 has a row from minute 1 on");
    free(names);
    T_EQ_INT(shm_stats(s, SHM_SR_MINUTE, SHM_SS_KEY, "", m0, m0, &rows, &n), SHM_EINVAL,
             "an empty name");
    T_EQ_INT(shm_stats(s, 7, SHM_SS_KEY, NULL, m0, m0, &rows, &n), SHM_EINVAL, "a bad resolution");
    shm_store_close(s);

    /* reopen 47 h later: minutes of T0 are still kept; 49 h: they go, the hours stay */
    s = tu_open(dir, T0 + 47 * 3600000LL);
    T_OK(s != NULL, "reopened");
    if (s) {
        unsigned pruned = 9;
        T_EQ_INT(shm_stats_prune(s, T0 + 47 * 3600000LL, &pruned), 0, "prune at 47 h");
        T_EQ_INT(pruned, 0, "nothing past its retention");
        T_EQ_INT(shm_stats_prune(s, T0 + 49 * 3600000LL, &pruned), 0, "prune at 49 h");
        T_EQ_INT(pruned, 6, "the six minute rows (k, k1 x2, q, m, mm)");
        T_EQ_INT(shm_stats(s, SHM_SR_MINUTE, SHM_SS_KEY, NULL, 0, UINT32_MAX, &rows, &n), 0,
                 "minutes after the prune");
        T_EQ_INT(n, 0, "none");
        shm_snapshot_free(rows);
        T_EQ_INT(shm_stats(s, SHM_SR_HOUR, SHM_SS_KEY, NULL, 0, UINT32_MAX, &rows, &n), 0,
                 "hours after the prune");
        T_EQ_INT(n, 3, "kept");
        shm_snapshot_free(rows);
        T_EQ_INT(shm_stats_prune(s, T0 + 91 * DAY_MS, &pruned), 0, "prune at 91 days");
        T_EQ_INT(pruned, 5, "the hour rows (3 keys, 2 models)");
        shm_store_close(s);
    }

    /* a corrupt row: refused, never read */
    {
        MDB_env *env;
        MDB_txn *txn;
        MDB_dbi dbi;
        mdb_env_create(&env);
        mdb_env_set_maxdbs(env, 24);
        T_EQ_INT(mdb_env_open(env, dir, 0, 0600), 0, "raw open");
        T_EQ_INT(mdb_txn_begin(env, NULL, 0, &txn), 0, "raw txn");
        T_EQ_INT(mdb_dbi_open(txn, "stats", 0, &dbi), 0, "the stats database");
        unsigned char kb[2 + 1 + 1 + 4] = {'d', 'k', 'k', 0, 0, 0, 0, 0};
        uint32_t d = (uint32_t)d0;
        kb[4] = (unsigned char)(d >> 24);
        kb[5] = (unsigned char)(d >> 16);
        kb[6] = (unsigned char)(d >> 8);
        kb[7] = (unsigned char)d;
        MDB_val k = {sizeof(kb), kb}, v = {3, "bad"};
        T_EQ_INT(mdb_put(txn, dbi, &k, &v, 0), 0, "k's day row replaced by 3 bytes");
        T_EQ_INT(mdb_txn_commit(txn), 0, "committed");
        mdb_env_close(env);
        s = tu_open(dir, T0 + DAY_MS / 2);
        T_OK(s != NULL, "reopened");
        if (s) {
            T_EQ_INT(shm_stats(s, SHM_SR_DAY, SHM_SS_KEY, NULL, d0, d0, &rows, &n), SHM_ECORRUPT,
                     "the query meets it");
            char why[256];
            T_OK(shm_store_corrupt(s, why, sizeof(why)) && strstr(why, "stats"), "named");
            T_EQ_INT(serve(s, "k", "m", SHM_CL_SUCCESS, 10, 1, 1, 1, T0 + DAY_MS / 2), SHM_ECORRUPT,
                     "a record that would add to it writes nothing");
            shm_store_close(s);
        }
    }
    tu_rmdir(parent);
    return t_done();
}
