/* shm_race_test.c - exactness across threads and processes, and owners that die.
 *
 * Children are forked before they open the store (an LMDB env must not cross a fork) and
 * share a fake wall clock: T0 + (CLOCK_MONOTONIC elapsed since a base taken before the
 * fork) * SCALE, read by the store inside the write transaction (SHM_NOW), so several
 * windows of simulated time pass in a few real seconds and every admission is logged with
 * the time the store counted it at. Checks are made on those logs. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "shm_tutil.h"
#include "t.h"

#define SCALE   100 /* fake ms per real ms */
#define NPROC   2
#define NTHREAD 4
#define NKEYS   10
#define RPM     100
#define RPD     500

static int64_t g_base_ns; /* CLOCK_MONOTONIC at the start; inherited by the children */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return T0 + (mono_ns() - g_base_ns) * SCALE / 1000000;
}

static shm_t *open_fake(const char *dir)
{
    shm_opts_t o = {.dir = dir, .clock = fake_clock};
    shm_t *s = NULL;
    char err[256];
    if (shm_store_open(&o, SHM_NOW, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "child: %s\n", err);
        return NULL;
    }
    return s;
}

static const char *g_names[NKEYS] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8", "k9"};

/* ---- RPM / RPD exactness ---------------------------------------------------------------- */

typedef struct adm_log_s {
    int32_t key;
    int32_t pad;
    int64_t ms;
} adm_log_t;

typedef struct worker_s {
    shm_t *s;
    unsigned seed;
    int64_t end_ms;
    adm_log_t *log;
    unsigned n, cap;
    int errors;
} worker_t;

static int choose_random(void *arg, const shm_candidate_t *c, unsigned n)
{
    (void)c;
    worker_t *w = arg;
    return (int)(rand_r(&w->seed) % n);
}

static void *rate_worker(void *arg)
{
    worker_t *w = arg;
    shm_admit_req_t req = {
        .names = g_names, .count = NKEYS, .choose = choose_random, .choose_arg = w};
    shm_outcome_t o;
    shm_outcome_init(&o, SHM_CL_SUCCESS);
    o.total_ms = 5;
    while (fake_clock(NULL) < w->end_ms) {
        shm_resv_t r;
        int64_t retry, before = fake_clock(NULL);
        int rc = shm_key_admit(w->s, &req, SHM_NOW, &r, &retry);
        if (rc == SHM_NONE) {
            /* limited by time only: a retry time must be given, and in the future */
            if (retry <= before)
                w->errors++;
            sched_yield();
            continue;
        }
        if (rc != 0) {
            w->errors++;
            continue;
        }
        if (w->n < w->cap)
            w->log[w->n++] = (adm_log_t){(int32_t)r.index, 0, r.admitted_ms};
        if (shm_key_record(w->s, &r, &o, SHM_NOW) != 0)
            w->errors++;
    }
    return NULL;
}

static void rate_child(const char *dir, const char *logpath, int64_t end_ms)
{
    shm_t *s = open_fake(dir);
    if (!s)
        _exit(3);
    worker_t w[NTHREAD];
    pthread_t th[NTHREAD];
    for (int i = 0; i < NTHREAD; i++) {
        w[i] = (worker_t){
            .s = s, .seed = (unsigned)(getpid() * 31 + i), .end_ms = end_ms, .cap = NKEYS * RPD};
        w[i].log = calloc(w[i].cap, sizeof(adm_log_t));
        pthread_create(&th[i], NULL, rate_worker, &w[i]);
    }
    int errors = 0;
    FILE *f = fopen(logpath, "wb");
    for (int i = 0; i < NTHREAD; i++) {
        pthread_join(th[i], NULL);
        errors += w[i].errors;
        fwrite(w[i].log, sizeof(adm_log_t), w[i].n, f);
        free(w[i].log);
    }
    fclose(f);
    shm_store_close(s);
    _exit(errors ? 4 : 0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_rate_exact(void)
{
    char parent[64], dir[96], logs[NPROC][160];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    g_base_ns = mono_ns();
    shm_t *s = open_fake(dir);
    shm_key_spec_t sp[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        sp[i] = tu_spec(g_names[i], "p", RPM, RPD, 0, 0);
    T_EQ_INT(shm_keys_sync(s, sp, NKEYS, SHM_NOW, NULL), 0, "10 keys, rpm 100, rpd 500");
    shm_store_close(s);
    /* 5.5 windows of fake time: rpm alone would allow ~600 per key, so rpd binds too */
    int64_t end_ms = T0 + 330 * 1000;
    pid_t kids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        snprintf(logs[p], sizeof(logs[p]), "%s/log%d", parent, p);
        if ((kids[p] = fork()) == 0)
            rate_child(dir, logs[p], end_ms);
    }
    int ok_exit = 1;
    for (int p = 0; p < NPROC; p++) {
        int st;
        waitpid(kids[p], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            ok_exit = 0;
    }
    T_OK(ok_exit, "%d processes x %d threads ran without errors", NPROC, NTHREAD);

    static int64_t times[NKEYS][NPROC * NKEYS * RPD];
    unsigned cnt[NKEYS] = {0};
    for (int p = 0; p < NPROC; p++) {
        FILE *f = fopen(logs[p], "rb");
        adm_log_t e;
        while (f && fread(&e, sizeof(e), 1, f) == 1)
            if (e.key >= 0 && e.key < NKEYS && cnt[e.key] < NPROC * NKEYS * RPD)
                times[e.key][cnt[e.key]++] = e.ms;
        if (f)
            fclose(f);
    }
    int all_rpd = 1, never_over = 1, reached = 1;
    unsigned worst = 0;
    int64_t first_full = 0;
    for (int k = 0; k < NKEYS; k++) {
        qsort(times[k], cnt[k], sizeof(int64_t), cmp_i64);
        if (cnt[k] != RPD)
            all_rpd = 0;
        /* the most admissions in any 60 000 ms interval [t, t + 60000) */
        unsigned best = 0;
        for (unsigned i = 0, j = 0; i < cnt[k]; i++) {
            while (j < cnt[k] && times[k][j] < times[k][i] + 60000)
                j++;
            if (j - i > best)
                best = j - i;
        }
        if (best > RPM)
            never_over = 0;
        if (best != RPM)
            reached = 0;
        worst = best > worst ? best : worst;
        if (cnt[k] && times[k][cnt[k] - 1] > first_full)
            first_full = times[k][cnt[k] - 1];
    }
    T_OK(never_over, "no key ever had more than %d admissions in any 60 s (max %u)", RPM, worst);
    T_OK(reached, "every key reached exactly %d in some 60 s window", RPM);
    T_OK(all_rpd, "every key admitted exactly rpd = %d over %lld s of load", RPD,
         (long long)((end_ms - T0) / 1000));
    T_OK(first_full - T0 > 4 * 60000, "the load spanned more than 4 windows (%lld s)",
         (long long)((first_full - T0) / 1000));
    s = open_fake(dir);
    int store_ok = 1;
    for (int k = 0; k < NKEYS; k++) {
        shm_key_t v;
        if (shm_key_get(s, g_names[k], SHM_NOW, &v) != 0 || v.rpd_used != RPD ||
            v.requests != RPD || v.inflight != 0 || v.by_class[SHM_CL_SUCCESS] != RPD)
            store_ok = 0;
    }
    T_OK(store_ok, "the store agrees: 500 admitted and recorded per key, nothing in flight");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- max_inflight exactness ------------------------------------------------------------- */

typedef struct shared_s {
    int cur, max, admitted, errors;
} shared_t;

static shared_t *g_sh;

#define INFLIGHT_MAX  3
#define PER_THREAD_OK 150

static void *inflight_worker(void *arg)
{
    shm_t *s = arg;
    const char *names[1] = {"m"};
    shm_admit_req_t req = {.names = names, .count = 1};
    shm_outcome_t o;
    shm_outcome_init(&o, SHM_CL_SUCCESS);
    for (int done = 0; done < PER_THREAD_OK;) {
        shm_resv_t r;
        int rc = shm_key_admit(s, &req, SHM_NOW, &r, NULL);
        if (rc == SHM_NONE) {
            sched_yield();
            continue;
        }
        if (rc != 0) {
            __atomic_add_fetch(&g_sh->errors, 1, __ATOMIC_SEQ_CST);
            return NULL;
        }
        int c = __atomic_add_fetch(&g_sh->cur, 1, __ATOMIC_SEQ_CST);
        int m = __atomic_load_n(&g_sh->max, __ATOMIC_SEQ_CST);
        while (c > m && !__atomic_compare_exchange_n(&g_sh->max, &m, c, 0, __ATOMIC_SEQ_CST,
                                                     __ATOMIC_SEQ_CST))
            ;
        struct timespec hold = {0, 200000};
        nanosleep(&hold, NULL);
        __atomic_sub_fetch(&g_sh->cur, 1, __ATOMIC_SEQ_CST);
        __atomic_add_fetch(&g_sh->admitted, 1, __ATOMIC_SEQ_CST);
        if (shm_key_record(s, &r, &o, SHM_NOW) != 0)
            __atomic_add_fetch(&g_sh->errors, 1, __ATOMIC_SEQ_CST);
        done++;
    }
    return NULL;
}

/* A reader thread beside the writers: views are consistent snapshots (never more in flight
 * than the limit) and run under the sanitizers next to admissions. */
static int g_stop_reader;

static void *reader_thread(void *arg)
{
    shm_t *s = arg;
    while (!__atomic_load_n(&g_stop_reader, __ATOMIC_ACQUIRE)) {
        shm_key_t k, *all;
        unsigned n;
        if (shm_key_get(s, "m", SHM_NOW, &k) != 0 || k.inflight > INFLIGHT_MAX)
            __atomic_add_fetch(&g_sh->errors, 1, __ATOMIC_SEQ_CST);
        if (shm_snapshot(s, SHM_NOW, &all, &n) == 0)
            shm_snapshot_free(all);
        sched_yield();
    }
    return NULL;
}

static void test_inflight_exact(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    g_base_ns = mono_ns();
    g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(g_sh, 0, sizeof(*g_sh));
    shm_t *s = open_fake(dir);
    shm_key_spec_t sp = tu_spec("m", "p", 0, 0, 0, INFLIGHT_MAX);
    shm_keys_sync(s, &sp, 1, SHM_NOW, NULL);
    shm_store_close(s);
    pid_t kids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        if ((kids[p] = fork()) == 0) {
            shm_t *cs = open_fake(dir);
            if (!cs)
                _exit(3);
            pthread_t th[NTHREAD], rd;
            pthread_create(&rd, NULL, reader_thread, cs);
            for (int i = 0; i < NTHREAD; i++)
                pthread_create(&th[i], NULL, inflight_worker, cs);
            for (int i = 0; i < NTHREAD; i++)
                pthread_join(th[i], NULL);
            __atomic_store_n(&g_stop_reader, 1, __ATOMIC_RELEASE);
            pthread_join(rd, NULL);
            shm_store_close(cs);
            _exit(0);
        }
    }
    for (int p = 0; p < NPROC; p++)
        waitpid(kids[p], NULL, 0);
    T_EQ_INT(g_sh->errors, 0, "no errors");
    T_EQ_INT(g_sh->admitted, NPROC * NTHREAD * PER_THREAD_OK, "all requests eventually ran");
    T_OK(g_sh->max <= INFLIGHT_MAX, "never more than %d in flight (max %d)", INFLIGHT_MAX,
         g_sh->max);
    T_EQ_INT(g_sh->max, INFLIGHT_MAX, "exactly %d in flight at the peak", INFLIGHT_MAX);
    s = open_fake(dir);
    shm_key_t k;
    shm_key_get(s, "m", SHM_NOW, &k);
    T_EQ_INT(k.inflight, 0, "nothing left in flight");
    shm_store_close(s);
    munmap(g_sh, sizeof(*g_sh));
    tu_rmdir(parent);
}

/* ---- owners that die ---------------------------------------------------------------------- */

static int wait_reclaimed(shm_t *s, int64_t deadline_ms, int *reclaimed)
{
    shm_maint_t m;
    *reclaimed = 0;
    while (fake_clock(NULL) < deadline_ms) {
        if (shm_maintain(s, SHM_NOW, &m) != 0)
            return -1;
        *reclaimed += m.owners_reclaimed;
        if (*reclaimed)
            return 0;
        struct timespec d = {0, 2000000};
        nanosleep(&d, NULL);
    }
    return -1;
}

static void test_kill_holding(void)
{
    char parent[64], dir[96];
    int fds[2];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    g_base_ns = mono_ns();
    shm_t *s = open_fake(dir);
    shm_key_spec_t sp = tu_spec("k", "p", 0, 0, 0, 5);
    shm_keys_sync(s, &sp, 1, SHM_NOW, NULL);
    shm_store_close(s);
    if (pipe(fds) != 0)
        abort();
    pid_t kid = fork();
    if (kid == 0) {
        shm_t *cs = open_fake(dir);
        const char *n[1] = {"k"};
        shm_resv_t r;
        int ok = 0;
        for (int i = 0; i < 5; i++)
            ok += cs && tu_admit(cs, n, 1, 0, SHM_NOW, &r, NULL) == 0;
        char c = (char)ok;
        if (write(fds[1], &c, 1) != 1)
            _exit(5);
        for (;;)
            pause();
    }
    char c = 0;
    T_OK(read(fds[0], &c, 1) == 1 && c == 5, "child holds 5 reservations");
    s = open_fake(dir);
    shm_key_t k;
    shm_key_get(s, "k", SHM_NOW, &k);
    T_EQ_INT(k.inflight, 5, "5 in flight");
    shm_maint_t m;
    shm_maintain(s, SHM_NOW, &m);
    T_EQ_INT(m.owners_reclaimed, 0, "a live owner is not reclaimed");
    T_EQ_INT(tu_admit1(s, "k", SHM_NOW, NULL), SHM_NONE, "max_inflight 5 blocks");
    kill(kid, SIGKILL);
    /* not reaped yet: a zombie holds nothing and must be reclaimed too */
    int reclaimed = 0;
    T_EQ_INT(wait_reclaimed(s, fake_clock(NULL) + 5000 * SCALE, &reclaimed), 0,
             "dead (zombie) owner reclaimed by shm_maintain");
    waitpid(kid, NULL, 0);
    shm_key_get(s, "k", SHM_NOW, &k);
    T_EQ_INT(k.inflight, 0, "stale in-flight cleared");
    T_EQ_INT(tu_admit1(s, "k", SHM_NOW, NULL), 0, "key admits again");
    shm_event_t ev[SHM_HISTORY_RING];
    unsigned n = 0;
    shm_key_history(s, "k", ev, SHM_HISTORY_RING, &n);
    T_OK(n >= 1 && ev[n - 1].type == SHM_EV_RECLAIM && ev[n - 1].arg == 5, "history: reclaim of 5");
    shm_store_info_t info;
    shm_store_info(s, &info);
    T_EQ_INT(info.owners, 1, "only this process owns a slot now");
    shm_store_close(s);
    close(fds[0]);
    close(fds[1]);
    tu_rmdir(parent);
}

static void *load_worker(void *arg)
{
    shm_t *s = arg;
    shm_admit_req_t req = {.names = g_names, .count = NKEYS};
    shm_outcome_t o;
    shm_outcome_init(&o, SHM_CL_SUCCESS);
    for (;;) {
        shm_resv_t r;
        if (shm_key_admit(s, &req, SHM_NOW, &r, NULL) != 0)
            continue;
        __atomic_add_fetch(&g_sh->admitted, 1, __ATOMIC_SEQ_CST);
        /* keep some in flight: record every other one */
        if ((r.admit_sec + r.index) % 2)
            shm_key_record(s, &r, &o, SHM_NOW);
    }
    return NULL;
}

static void test_kill_mid_load(void)
{
    char parent[64], dir[96];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    g_base_ns = mono_ns();
    g_sh = mmap(NULL, sizeof(*g_sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memset(g_sh, 0, sizeof(*g_sh));
    shm_t *s = open_fake(dir);
    shm_key_spec_t sp[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        sp[i] = tu_spec(g_names[i], "p", 0, 1000000, 0, 0);
    shm_keys_sync(s, sp, NKEYS, SHM_NOW, NULL);
    shm_store_close(s);
    pid_t kid = fork();
    if (kid == 0) {
        shm_t *cs = open_fake(dir);
        if (!cs)
            _exit(3);
        pthread_t th[NTHREAD];
        for (int i = 0; i < NTHREAD; i++)
            pthread_create(&th[i], NULL, load_worker, cs);
        for (;;)
            pause();
    }
    /* let it load until a few thousand admissions are committed, then kill -9 */
    int64_t deadline = mono_ns() + 20 * 1000000000LL;
    while (__atomic_load_n(&g_sh->admitted, __ATOMIC_SEQ_CST) < 2000 && mono_ns() < deadline) {
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    int logged = __atomic_load_n(&g_sh->admitted, __ATOMIC_SEQ_CST);
    T_OK(logged >= 2000, "child admitted %d before kill -9", logged);
    s = open_fake(dir);
    T_OK(s != NULL, "store opens after kill -9 mid-load");
    int reclaimed = 0;
    T_EQ_INT(wait_reclaimed(s, fake_clock(NULL) + 5000 * SCALE, &reclaimed), 0,
             "dead owner reclaimed");
    uint64_t requests = 0, day = 0, inflight = 0;
    for (int i = 0; i < NKEYS; i++) {
        shm_key_t k;
        shm_key_get(s, g_names[i], SHM_NOW, &k);
        requests += k.requests;
        day += k.rpd_used;
        inflight += k.inflight;
    }
    T_OK(requests >= (uint64_t)logged && requests <= (uint64_t)logged + NTHREAD,
         "every committed admission survived (store %llu, child saw %d)",
         (unsigned long long)requests, logged);
    T_EQ_INT(day, requests, "day counts survived");
    T_EQ_INT(inflight, 0, "no in-flight left from the dead process");
    T_EQ_INT(tu_admit1(s, "k0", SHM_NOW, NULL), 0, "writer lock not stuck: admission works");
    shm_store_close(s);
    munmap(g_sh, sizeof(*g_sh));
    tu_rmdir(parent);
}

/* Another process grows the map beyond this one's: MDB_MAP_RESIZED is adopted. */
static void test_resized_elsewhere(void)
{
    char parent[64], dir[96];
    int go[2], done[2];
    tu_mkdir(parent, sizeof(parent), dir, sizeof(dir));
    g_base_ns = mono_ns();
    shm_opts_t small = {.dir = dir, .map_size = 256 * 1024, .clock = fake_clock};
    char err[256];
    shm_t *s = NULL;
    shm_store_open(&small, SHM_NOW, &s, err, sizeof(err));
    shm_key_spec_t sp0 = tu_spec("key00000", "p", 0, 0, 0, 0);
    shm_keys_sync(s, &sp0, 1, SHM_NOW, NULL);
    shm_store_close(s);
    if (pipe(go) != 0 || pipe(done) != 0)
        abort();
    pid_t kid = fork();
    if (kid == 0) {
        shm_t *cs = NULL;
        char c;
        int rc = shm_store_open(&small, SHM_NOW, &cs, err, sizeof(err));
        if (write(done[1], "o", 1) != 1 || read(go[0], &c, 1) != 1)
            _exit(5);
        shm_key_t k;
        int code = 0;
        if (rc != 0 || shm_key_get(cs, "key01999", SHM_NOW, &k) != 0)
            code |= 1; /* read past the old map */
        if (tu_admit1(cs, "key01999", SHM_NOW, NULL) != 0)
            code |= 2; /* write after adopting */
        shm_store_close(cs);
        _exit(code);
    }
    char c;
    T_OK(read(done[0], &c, 1) == 1, "child opened with a 256 KiB map");
    shm_opts_t big = {.dir = dir, .map_size = 256 * 1024, .clock = fake_clock};
    shm_store_open(&big, SHM_NOW, &s, err, sizeof(err));
    enum { N = 2000 };
    static shm_key_spec_t sp[N];
    static char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "key%05d", i);
        sp[i] = tu_spec(names[i], "p", 0, 0, 0, 0);
    }
    T_EQ_INT(shm_keys_sync(s, sp, N, SHM_NOW, NULL), 0, "this process grows the map");
    shm_store_info_t info;
    shm_store_info(s, &info);
    T_OK(info.map_used > 256 * 1024, "data now beyond the child's map (%zu bytes)", info.map_used);
    if (write(go[1], "g", 1) != 1)
        abort();
    int st = 0;
    waitpid(kid, &st, 0);
    T_OK(WIFEXITED(st) && (WEXITSTATUS(st) & 1) == 0, "the other process reads after resize");
    T_OK(WIFEXITED(st) && (WEXITSTATUS(st) & 2) == 0, "the other process writes after resize");
    shm_store_close(s);
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(done[i]);
    }
    tu_rmdir(parent);
}

int main(void)
{
    test_rate_exact();
    test_inflight_exact();
    test_kill_holding();
    test_kill_mid_load();
    test_resized_elsewhere();
    return t_done();
}
