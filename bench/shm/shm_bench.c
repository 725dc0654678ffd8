/* shm_bench.c - cost of admission and recording in the state plane.
 *
 * For 10, 1,000 and 100,000 keys and 1 and 2 threads: each operation admits one key out of
 * 4 candidates (least in-flight strategy, limits set so that none refuses) and records a
 * success with latency and tokens, each its own committed transaction with SHM_NOW.
 * Prints median and p99 ns per admit and per record, admit+record pairs per second, and
 * the store size on disk. Then: batched recording, and the slower durability modes.
 *
 * --rr mirrors one request of the server (bench/run.sh's llmgate.yaml) instead: 20
 * candidates per admission (two providers' keys, the providers in random order as
 * route_group gives them), the round-robin strategy of server/policy/policy.c (oldest
 * last_admit_ms), a client key without budgets, and a success recorded with the default
 * key policy and circuit breaker knobs. Rows: the server's 20 keys, then 1,000 and
 * 100,000 keys with 20 neighbouring candidates.
 *
 *   shm-bench [--rr [--keys N]] [ops-per-thread]        (default 200000)
 *
 * --keys N: only the one-thread --rr row of N keys (e.g. under valgrind --tool=callgrind
 * --toggle-collect=worker, to count instructions per admit+record pair).
 *
 * --rr also prints "server" rows: as the server batches a loop iteration's requests, one
 * transaction (shm_key_batch) records the previous batch's successes and admits B requests
 * (each its own 20 candidates in random provider order). The admit columns are then the
 * transaction's time divided by B, per request (its admission and its recording); rec is
 * empty. --batch B: only the one-thread server row with B requests per transaction.
 */
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shm/shm.h"

#define CANDS    4  /* candidates per admission, unless a row says otherwise */
#define RR_CANDS 20 /* --rr: candidates per admission */
#define RR_GROUP 10 /* --rr: keys per provider in the server-like store */

#define MAX_BATCH 64

static unsigned g_cands = CANDS;
static int g_rr; /* --rr: server-like admissions (see the top of the file) */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *ftw)
{
    (void)sb;
    (void)f;
    (void)ftw;
    return remove(p);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int least_inflight(void *arg, const shm_candidate_t *c, unsigned n)
{
    (void)arg;
    unsigned best = 0;
    for (unsigned i = 1; i < n; i++)
        if (c[i].inflight < c[best].inflight)
            best = i;
    return (int)best;
}

/* server/policy/policy.c, CFG_STRATEGY_ROUND_ROBIN: the oldest last_admit_ms */
static int round_robin(void *arg, const shm_candidate_t *c, unsigned n)
{
    (void)arg;
    unsigned best = 0;
    for (unsigned i = 1; i < n; i++)
        if (c[i].last_admit_ms < c[best].last_admit_ms)
            best = i;
    return (int)best;
}

typedef struct run_s {
    shm_t *s;
    char **names;
    unsigned nkeys, ops, batch, seed;
    int server;                     /* batch: requests per shm_key_batch, as the server does */
    uint32_t *admit_ns, *record_ns; /* per op */
    unsigned n;
    int errors;
} run_t;

/* The candidates of one request. */
static void pick_cands(run_t *r, const char **cands)
{
    unsigned base = (unsigned)rand_r(&r->seed) % r->nkeys;
    if (g_rr && r->nkeys == RR_CANDS) {
        /* route_group: each deployment's provider keys in config order, the deployments in
         * weighted random order */
        base = (base & 1) * RR_GROUP;
        for (unsigned c = 0; c < g_cands; c++)
            cands[c] = r->names[(base + c) % r->nkeys];
    } else {
        for (unsigned c = 0; c < g_cands; c++)
            cands[c] = r->names[(base + c) % r->nkeys];
    }
}

static void outcomes_init(shm_outcome_t *o, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        shm_outcome_init(&o[i], SHM_CL_SUCCESS);
        o[i].ttfb_ms = 120;
        o[i].total_ms = 900;
        o[i].prompt_tokens = 300;
        o[i].completion_tokens = 150;
        o[i].cost_micro_usd = 42;
        if (g_rr) { /* the defaults of config/schema.c, as server/policy/keypolicy.c passes them */
            o[i].fail_threshold = 3;
            o[i].fail_cooldown_ms = 10000;
            o[i].cooldown_max_ms = 300000;
            o[i].recovery_successes = 2;
            o[i].circuit_min_requests = 20;
            o[i].circuit_error_ratio = 0.5;
            o[i].circuit_open_ms = 30000;
        }
    }
}

typedef struct sbatch_s {
    run_t *r;
    const char **names; /* batch × g_cands */
    shm_resv_t *out;
    unsigned n, admitted;
} sbatch_t;

static int sbatch_fn(shm_batch_t *b, void *arg)
{
    sbatch_t *sb = arg;
    shm_admit_req_t req = {.count = g_cands,
                           .tokens = 500,
                           .choose = round_robin,
                           .client = "bench-client",
                           .cost_micro_usd = 100};
    sb->admitted = 0;
    for (unsigned i = 0; i < sb->n; i++) {
        req.names = &sb->names[i * g_cands];
        int rc = shm_batch_admit(b, &req, &sb->out[sb->admitted], NULL);
        if (rc == 0)
            sb->admitted++;
        else if (rc != SHM_NONE)
            return rc;
    }
    return 0;
}

/* The server's way: per transaction, the held successes and a batch of admissions. */
static void *server_worker(void *arg)
{
    run_t *r = arg;
    static __thread const char *names[MAX_BATCH * RR_CANDS];
    shm_outcome_t o[MAX_BATCH];
    shm_resv_t held[MAX_BATCH], fresh[MAX_BATCH], *rp[MAX_BATCH];
    unsigned nheld = 0;
    outcomes_init(o, MAX_BATCH);
    for (unsigned done = 0; done < r->ops;) {
        unsigned n = r->ops - done < r->batch ? r->ops - done : r->batch;
        for (unsigned i = 0; i < n; i++)
            pick_cands(r, &names[i * g_cands]);
        for (unsigned i = 0; i < nheld; i++)
            rp[i] = &held[i];
        sbatch_t sb = {.r = r, .names = names, .out = fresh, .n = n};
        int64_t t0 = now_ns();
        int rc = shm_key_batch(r->s, rp, o, nheld, SHM_NOW, sbatch_fn, &sb);
        uint32_t per = (uint32_t)((now_ns() - t0) / n);
        if (rc != 0 || sb.admitted != n)
            r->errors++;
        nheld = rc == 0 ? sb.admitted : 0;
        memcpy(held, fresh, nheld * sizeof(*held));
        for (unsigned i = 0; i < n; i++) {
            r->admit_ns[r->n] = per;
            r->record_ns[r->n++] = 0;
        }
        done += n;
    }
    if (nheld) {
        for (unsigned i = 0; i < nheld; i++)
            rp[i] = &held[i];
        shm_key_record_batch(r->s, rp, o, nheld, SHM_NOW);
    }
    return NULL;
}

static void *worker(void *arg)
{
    run_t *r = arg;
    const char *cands[RR_CANDS];
    shm_admit_req_t req = {
        .names = cands, .count = g_cands, .tokens = 500, .choose = least_inflight};
    if (g_rr) {
        req.choose = round_robin;
        req.client = "bench-client";
        req.cost_micro_usd = 100;
    }
    shm_outcome_t o[MAX_BATCH];
    shm_resv_t rv[MAX_BATCH], *rp[MAX_BATCH];
    outcomes_init(o, MAX_BATCH);
    for (unsigned i = 0; i < MAX_BATCH; i++)
        rp[i] = &rv[i];
    unsigned pending = 0;
    for (unsigned i = 0; i < r->ops; i++) {
        pick_cands(r, cands);
        int64_t t0 = now_ns();
        int rc = shm_key_admit(r->s, &req, SHM_NOW, &rv[pending], NULL);
        int64_t t1 = now_ns();
        if (rc != 0) {
            r->errors++;
            continue;
        }
        pending++;
        uint32_t rec = 0;
        if (pending == r->batch) {
            rc = shm_key_record_batch(r->s, rp, o, pending, SHM_NOW);
            rec = (uint32_t)((now_ns() - t1) / pending);
            if (rc != 0)
                r->errors++;
            pending = 0;
        }
        r->admit_ns[r->n] = (uint32_t)(t1 - t0);
        r->record_ns[r->n] = rec;
        r->n++;
    }
    if (pending)
        shm_key_record_batch(r->s, rp, o, pending, SHM_NOW);
    return NULL;
}

typedef struct result_s {
    uint32_t admit_p50, admit_p99, rec_p50, rec_p99;
    double pairs_per_s;
    size_t disk, used;
    int errors;
} result_t;

static uint32_t pct(uint32_t *v, unsigned n, unsigned p)
{
    if (n == 0)
        return 0;
    unsigned r = (unsigned)(((uint64_t)p * n + 99) / 100);
    return v[r ? r - 1 : 0];
}

static int bench(unsigned nkeys, unsigned nthreads, unsigned ops, unsigned batch, int durability,
                 int server, result_t *res)
{
    char dir[] = "/tmp/shm-bench-XXXXXX", state[64], err[512];
    if (!mkdtemp(dir))
        return -1;
    snprintf(state, sizeof(state), "%s/state", dir);
    shm_opts_t so = {.dir = state, .durability = durability};
    shm_t *s = NULL;
    if (shm_store_open(&so, SHM_NOW, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    char **names = calloc(nkeys, sizeof(*names));
    char(*provs)[16] = calloc(nkeys, 16);
    shm_key_spec_t *sp = calloc(nkeys, sizeof(*sp));
    for (unsigned i = 0; i < nkeys; i++) {
        names[i] = malloc(24);
        if (g_rr && nkeys == RR_CANDS) { /* bench/run.sh's llmgate.yaml */
            snprintf(names[i], 24, "bench-%c-%02u", 'a' + i / RR_GROUP, i % RR_GROUP + 1);
            snprintf(provs[i], 16, "bench-%c", 'a' + i / RR_GROUP);
            sp[i] = (shm_key_spec_t){.name = names[i],
                                     .fingerprint = "a1b2c3d4e5f6",
                                     .provider = provs[i],
                                     .rpm = 10000000,
                                     .weight = 1};
            continue;
        }
        snprintf(names[i], 24, "openai-key-%06u", i);
        /* keys grouped by provider, 50 each, as a deployment's candidates usually are */
        snprintf(provs[i], 16, "provider-%03u", (i / 50) % 1000);
        sp[i] = (shm_key_spec_t){.name = names[i],
                                 .fingerprint = "a1b2c3d4e5f6",
                                 .provider = provs[i],
                                 .rpm = 100000000,
                                 .rpd = 0,
                                 .tpm = 4000000000u,
                                 .max_inflight = 1000,
                                 .weight = 1};
    }
    int rc = shm_keys_sync(s, sp, nkeys, SHM_NOW, NULL);
    if (rc == 0 && g_rr) {
        shm_client_spec_t cs = {.name = "bench-client"}; /* budgets off */
        rc = shm_clients_sync(s, &cs, 1, SHM_NOW, NULL);
    }
    free(sp);
    free(provs);
    if (rc != 0) {
        fprintf(stderr, "sync: %s\n", shm_strerror(rc));
        return -1;
    }
    run_t *runs = calloc(nthreads, sizeof(*runs));
    pthread_t th[8];
    int64_t t0 = now_ns();
    for (unsigned t = 0; t < nthreads; t++) {
        runs[t] = (run_t){.s = s,
                          .names = names,
                          .nkeys = nkeys,
                          .ops = ops,
                          .batch = batch,
                          .seed = 7 + t,
                          .server = server};
        runs[t].admit_ns = calloc(ops, sizeof(uint32_t));
        runs[t].record_ns = calloc(ops, sizeof(uint32_t));
        pthread_create(&th[t], NULL, server ? server_worker : worker, &runs[t]);
    }
    for (unsigned t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    double secs = (double)(now_ns() - t0) / 1e9;
    /* merge, dropping each thread's first 1% as warm-up */
    unsigned total = 0;
    uint32_t *a = calloc((size_t)ops * nthreads, sizeof(uint32_t));
    uint32_t *b = calloc((size_t)ops * nthreads, sizeof(uint32_t));
    unsigned nb = 0;
    memset(res, 0, sizeof(*res));
    for (unsigned t = 0; t < nthreads; t++) {
        for (unsigned i = runs[t].n / 100; i < runs[t].n; i++) {
            a[total++] = runs[t].admit_ns[i];
            if (runs[t].record_ns[i])
                b[nb++] = runs[t].record_ns[i];
        }
        res->errors += runs[t].errors;
        free(runs[t].admit_ns);
        free(runs[t].record_ns);
    }
    qsort(a, total, sizeof(*a), cmp_u32);
    qsort(b, nb, sizeof(*b), cmp_u32);
    res->admit_p50 = pct(a, total, 50);
    res->admit_p99 = pct(a, total, 99);
    res->rec_p50 = pct(b, nb, 50);
    res->rec_p99 = pct(b, nb, 99);
    res->pairs_per_s = (double)ops * nthreads / secs;
    shm_store_info_t info;
    shm_sync(s);
    shm_store_info(s, &info);
    res->disk = info.file_bytes;
    res->used = info.map_used;
    shm_store_close(s);
    for (unsigned i = 0; i < nkeys; i++)
        free(names[i]);
    free(names);
    free(runs);
    free(a);
    free(b);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void row_x(const char *label, unsigned nkeys, unsigned nthreads, unsigned ops,
                  unsigned batch, int durability, int server)
{
    result_t r;
    if (bench(nkeys, nthreads, ops, batch, durability, server, &r) != 0) {
        printf("%-10s %8u %3u  failed\n", label, nkeys, nthreads);
        return;
    }
    printf("%-10s %8u %3u %5u %6u %8u %8u %8u %8u %10.0f %9.1f %9.1f%s\n", label, nkeys, nthreads,
           g_cands, batch, r.admit_p50, r.admit_p99, r.rec_p50, r.rec_p99, r.pairs_per_s,
           (double)r.disk / (1 << 20), (double)r.used / (1 << 20), r.errors ? "  ERRORS" : "");
    fflush(stdout);
}

static void row(const char *label, unsigned nkeys, unsigned nthreads, unsigned ops, unsigned batch,
                int durability)
{
    row_x(label, nkeys, nthreads, ops, batch, durability, 0);
}

int main(int argc, char **argv)
{
    unsigned ops = 200000, only_keys = 0, only_batch = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rr") == 0)
            g_rr = 1;
        else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            only_keys = (unsigned)atoi(argv[++i]);
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            only_batch = (unsigned)atoi(argv[++i]);
        else
            ops = (unsigned)atoi(argv[i]);
    }
    if (g_rr) {
        g_cands = RR_CANDS;
        printf("shm-bench --rr: %u admit+record pairs per thread, %d candidates per "
               "admission, round robin, a client key, circuit breaker on\n",
               ops, RR_CANDS);
        printf("%-10s %8s %3s %5s %6s %8s %8s %8s %8s %10s %9s %9s\n", "mode", "keys", "thr",
               "cands", "batch", "adm p50", "adm p99", "rec p50", "rec p99", "pairs/s", "disk MiB",
               "used MiB");
        if (only_batch > MAX_BATCH)
            only_batch = MAX_BATCH;
        if (only_batch) {
            row_x("server", RR_CANDS, 1, ops, only_batch, SHM_DUR_FAST, 1);
            return 0;
        }
        if (only_keys) {
            row("rr", only_keys < RR_CANDS ? RR_CANDS : only_keys, 1, ops, 1, SHM_DUR_FAST);
            return 0;
        }
        row("rr", RR_CANDS, 1, ops, 1, SHM_DUR_FAST);
        row("rr", RR_CANDS, 2, ops, 1, SHM_DUR_FAST);
        row("rr", 1000, 1, ops, 1, SHM_DUR_FAST);
        row("rr", 100000, 1, ops, 1, SHM_DUR_FAST);
        static const unsigned sbat[] = {1, 4, 16, 32};
        for (unsigned i = 0; i < 4; i++)
            row_x("server", RR_CANDS, 1, ops, sbat[i], SHM_DUR_FAST, 1);
        row_x("server", RR_CANDS, 2, ops, 16, SHM_DUR_FAST, 1);
        return 0;
    }
    printf("shm-bench: %u admit+record pairs per thread, %d candidates per admission\n", ops,
           CANDS);
    printf("ns per operation; record ns is per outcome (a batch's commit divided by its size)\n");
    printf("%-10s %8s %3s %5s %6s %8s %8s %8s %8s %10s %9s %9s\n", "mode", "keys", "thr", "cands",
           "batch", "adm p50", "adm p99", "rec p50", "rec p99", "pairs/s", "disk MiB", "used MiB");
    static const unsigned keys[] = {10, 1000, 100000};
    for (unsigned k = 0; k < 3; k++)
        for (unsigned t = 1; t <= 2; t++)
            row("fast", keys[k], t, ops, 1, SHM_DUR_FAST);
    g_cands = 1;
    row("fast", 1000, 1, ops, 1, SHM_DUR_FAST);
    row("fast", 1000, 2, ops, 1, SHM_DUR_FAST);
    g_cands = CANDS;
    row("fast", 1000, 1, ops, 16, SHM_DUR_FAST);
    row("fast", 1000, 2, ops, 16, SHM_DUR_FAST);
    row("safe", 1000, 1, ops, 1, SHM_DUR_SAFE);
    row("sync", 1000, 1, ops / 200 > 200 ? ops / 200 : 200, 1, SHM_DUR_SYNC);
    return 0;
}
