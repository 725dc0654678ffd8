/* shm_client_test.c - client budgets inside the admission transaction: RPM, RPD, token and
 * cost budgets per UTC day and month, reconciliation and refunds at record/release, the
 * client set, views, and exactness with 50 threads and with 2 processes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "shm_tutil.h"
#include "t.h"

static int64_t g_now; /* the injected clock for SHM_NOW */

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return __atomic_load_n(&g_now, __ATOMIC_SEQ_CST);
}

static shm_t *open_fake(const char *dir)
{
    shm_opts_t o = {.dir = dir, .clock = fake_clock};
    shm_t *s = NULL;
    char err[256];
    if (shm_store_open(&o, SHM_NOW, &s, err, sizeof(err)) != 0) {
        printf("# open: %s\n", err);
        return NULL;
    }
    return s;
}

static int64_t utc_ms(int y, int mon, int d, int h, int mi)
{
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
    return (int64_t)timegm(&tm) * 1000;
}

static const char *const g_key[1] = {"k"};

/* Admit through key "k" for client (tokens, cost estimates). */
static int admit(shm_t *s, const char *client, uint32_t tokens, uint64_t cost, shm_resv_t *r,
                 int64_t *retry)
{
    uint8_t skip[1] = {0xff};
    shm_admit_req_t req = {.names = g_key,
                           .count = 1,
                           .tokens = tokens,
                           .skip = skip,
                           .client = client,
                           .cost_micro_usd = cost};
    int rc = shm_key_admit(s, &req, SHM_NOW, r, retry);
    if (rc == SHM_ECLIENT_BUDGET && skip[0] != SHM_SKIP_CLIENT)
        printf("# skip[0] = %u, want SHM_SKIP_CLIENT\n", skip[0]);
    return rc;
}

static shm_client_spec_t spec(const char *name)
{
    shm_client_spec_t c = {.name = name};
    return c;
}

static shm_t *fresh(char *parent, size_t plen, char *dir, size_t dlen, int64_t now,
                    const shm_client_spec_t *cs, unsigned n)
{
    tu_mkdir(parent, plen, dir, dlen);
    g_now = now;
    shm_t *s = open_fake(dir);
    shm_key_spec_t k = tu_spec("k", "p", 0, 0, 0, 0);
    if (!s || shm_keys_sync(s, &k, 1, SHM_NOW, NULL) != 0 ||
        shm_clients_sync(s, cs, n, SHM_NOW, NULL) != 0) {
        printf("# setup failed\n");
        exit(2);
    }
    return s;
}

/* ---- sync and views ---------------------------------------------------------------------- */

static void test_sync_views(void)
{
    char parent[64], dir[96];
    shm_client_spec_t cs[2] = {spec("app-b"), spec("app-a")};
    cs[0].rpm = 10;
    cs[0].tokens_per_month = 5000;
    cs[1].cost_per_day_micro_usd = 1500000;
    shm_t *s = fresh(parent, sizeof(parent), dir, sizeof(dir), T0 + 1000, cs, 2);
    shm_client_t v, *all = NULL;
    shm_sync_stats_t st;
    unsigned n = 0;

    T_EQ_INT(shm_client_get(s, "app-b", SHM_NOW, &v), 0, "a synced client can be read");
    T_OK(v.rpm == 10 && v.rpd == 0 && v.tokens_per_month == 5000 && v.tokens_per_day == 0 &&
             !v.orphaned && v.requests == 0 && v.rpm_used == 0,
         "  ... with its limits and no usage");
    T_EQ_INT(v.day_reset_ms, T0 + DAY_MS, "  ... the day budget resets at the next UTC midnight");
    T_EQ_INT(v.month_reset_ms, utc_ms(2024, 11, 1, 0, 0),
             "  ... the month budget on the 1st of next month (T0 is 2024-10-04)");
    T_EQ_INT(shm_client_get(s, "nobody", SHM_NOW, &v), SHM_ENOTFOUND, "unknown client: not found");
    T_EQ_INT(shm_clients(s, SHM_NOW, &all, &n), 0, "shm_clients lists the clients");
    T_OK(n == 2 && strcmp(all[0].name, "app-a") == 0 && strcmp(all[1].name, "app-b") == 0 &&
             all[0].cost_per_day_micro_usd == 1500000,
         "  ... sorted by name, with their limits");
    shm_snapshot_free(all);

    shm_resv_t r;
    T_EQ_INT(admit(s, "app-b", 10, 0, &r, NULL), 0, "admit with a client");
    T_OK(strcmp(r.client, "app-b") == 0 && r.client_tokens == 10,
         "  ... the reservation remembers the client");

    cs[0].rpm = 20;
    T_EQ_INT(shm_clients_sync(s, cs, 1, SHM_NOW, &st), 0, "resync with one client");
    T_OK(st.updated == 1 && st.orphaned == 1 && st.added == 0, "  ... one updated, one orphaned");
    T_OK(shm_client_get(s, "app-b", SHM_NOW, &v) == 0 && v.rpm == 20 && v.rpm_used == 1 &&
             v.requests == 1,
         "  ... new limit, usage kept");
    T_OK(shm_client_get(s, "app-a", SHM_NOW, &v) == 0 && v.orphaned, "  ... the other orphaned");
    T_EQ_INT(admit(s, "app-a", 0, 0, &r, NULL), SHM_ENOTFOUND,
             "an orphaned client is not admitted");
    T_EQ_INT(admit(s, "ghost", 0, 0, &r, NULL), SHM_ENOTFOUND, "an unknown client is not admitted");
    T_EQ_INT(admit(s, "", 0, 0, &r, NULL), SHM_EINVAL, "an empty client name is invalid");
    T_EQ_INT(shm_clients_sync(s, cs, 2, SHM_NOW, &st), 0, "resync with both");
    T_OK(st.restored == 1, "  ... the orphan restored");
    shm_client_spec_t dup[2] = {spec("x"), spec("x")};
    T_EQ_INT(shm_clients_sync(s, dup, 2, SHM_NOW, NULL), SHM_EINVAL, "duplicate names refused");

    /* a read-only store (llmgatectl) sees the same */
    shm_opts_t ro = {.dir = dir, .readonly = 1, .clock = fake_clock};
    shm_t *r2 = NULL;
    char err[256];
    T_EQ_INT(shm_store_open(&ro, SHM_NOW, &r2, err, sizeof(err)), 0, "read-only open");
    T_OK(r2 && shm_client_get(r2, "app-b", SHM_NOW, &v) == 0 && v.rpm_used == 1,
         "  ... reads the client's usage");
    shm_store_close(r2);
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- RPM and RPD ---------------------------------------------------------------------------- */

static void test_rpm_rpd(void)
{
    char parent[64], dir[96];
    shm_client_spec_t cs[2] = {spec("rpm"), spec("rpd")};
    cs[0].rpm = 10;
    cs[1].rpd = 3;
    shm_t *s = fresh(parent, sizeof(parent), dir, sizeof(dir), T0 + 10500, cs, 2);
    shm_resv_t r;
    shm_key_t k;
    int64_t retry = 0;
    int ok = 1;

    for (int i = 0; i < 10; i++)
        ok &= admit(s, "rpm", 0, 0, &r, NULL) == 0;
    T_OK(ok, "rpm 10: ten admitted at once");
    shm_key_get(s, "k", SHM_NOW, &k);
    uint64_t key_requests = k.requests;
    T_EQ_INT(admit(s, "rpm", 0, 0, &r, &retry), SHM_ECLIENT_BUDGET, "the 11th: SHM_ECLIENT_BUDGET");
    T_EQ_INT(retry, T0 + 71000, "  ... retry when second 10 leaves the window (s + 61 s)");
    shm_key_get(s, "k", SHM_NOW, &k);
    T_OK(k.requests == key_requests && k.rpm_used == key_requests,
         "  ... and the key's reservation was not taken");
    g_now = T0 + 70999;
    T_EQ_INT(admit(s, "rpm", 0, 0, &r, NULL), SHM_ECLIENT_BUDGET, "still refused 1 ms before");
    g_now = T0 + 71000;
    T_EQ_INT(admit(s, "rpm", 0, 0, &r, NULL), 0, "admitted again at the retry time");
    T_EQ_INT(admit(s, NULL, 0, 0, &r, NULL), 0, "a request without a client is not limited");

    g_now = T0 + DAY_MS - 1000;
    for (int i = 0; i < 3; i++)
        ok &= admit(s, "rpd", 0, 0, &r, NULL) == 0;
    T_OK(ok, "rpd 3: three admitted");
    T_EQ_INT(admit(s, "rpd", 0, 0, &r, &retry), SHM_ECLIENT_BUDGET, "the 4th of the day refused");
    T_EQ_INT(retry, T0 + DAY_MS, "  ... retry at the next UTC midnight");
    g_now = T0 + DAY_MS;
    T_EQ_INT(admit(s, "rpd", 0, 0, &r, NULL), 0, "admitted on the new day");

    /* a wall clock that steps back far forgets nothing */
    g_now = T0 + DAY_MS + 5000;
    shm_client_t v;
    shm_client_get(s, "rpd", SHM_NOW, &v);
    uint32_t used = v.rpd_used;
    g_now = T0 + 3600000;
    T_EQ_INT(admit(s, "rpd", 0, 0, &r, NULL), 0, "clock an 20 h back: still the same budget");
    T_OK(shm_client_get(s, "rpd", SHM_NOW, &v) == 0 && v.rpd_used == used + 1,
         "  ... the day's count kept (%u)", v.rpd_used);
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- the budgets left (x-ratelimit-* headers) -------------------------------------------- */

static int admit_b(shm_t *s, const char *client, uint32_t tokens, shm_budget_t *b, shm_resv_t *r)
{
    shm_admit_req_t req = {
        .names = g_key, .count = 1, .tokens = tokens, .client = client, .budget = b};
    memset(b, 0xee, sizeof(*b));
    return shm_key_admit(s, &req, SHM_NOW, r, NULL);
}

static void test_budget(void)
{
    char parent[64], dir[96];
    shm_client_spec_t cs[3] = {spec("b"), spec("d"), spec("none")};
    cs[0].rpm = 5;
    cs[0].rpd = 100;
    cs[0].tokens_per_day = 1000;
    cs[0].tokens_per_month = 5000;
    cs[1].rpm = 50;
    cs[1].rpd = 2;
    cs[1].tokens_per_month = 300;
    shm_t *s = fresh(parent, sizeof(parent), dir, sizeof(dir), T0 + 10500, cs, 3);
    shm_budget_t b;
    shm_resv_t r;

    T_EQ_INT(admit_b(s, "b", 100, &b, &r), 0, "budget: admitted");
    T_OK(b.req_limit == 5 && b.req_remaining == 4,
         "requests: rpm 5 is the tighter, 4 left (%llu/%llu)", (unsigned long long)b.req_remaining,
         (unsigned long long)b.req_limit);
    T_EQ_INT(b.req_reset_ms, T0 + 71000, "  ... whole again when second 10 leaves the window");
    T_OK(b.tok_limit == 1000 && b.tok_remaining == 900, "tokens: the day's 1000, 900 left");
    T_EQ_INT(b.tok_reset_ms, T0 + DAY_MS, "  ... whole again at the next UTC midnight");
    for (int i = 0; i < 4; i++)
        admit_b(s, "b", 1, &b, &r);
    T_OK(b.req_remaining == 0 && b.req_limit == 5, "five admitted: 0 requests left");
    T_EQ_INT(admit_b(s, "b", 1, &b, &r), SHM_ECLIENT_BUDGET, "the sixth refused ...");
    T_OK(b.req_limit == 5 && b.req_remaining == 0 && b.tok_remaining == 896,
         "  ... and the budgets are given as they stand (%llu tokens left)",
         (unsigned long long)b.tok_remaining);
    g_now = T0 + 30500;
    T_EQ_INT(admit_b(s, "b", 1, &b, &r), SHM_ECLIENT_BUDGET, "20 s later: still refused");
    T_EQ_INT(b.req_reset_ms, T0 + 71000, "  ... reset in wall-clock ms, still at second 10 + 61");

    g_now = T0 + 10500;
    T_EQ_INT(admit_b(s, "d", 100, &b, &r), 0, "client d admitted");
    T_OK(b.req_limit == 2 && b.req_remaining == 1 && b.req_reset_ms == T0 + DAY_MS,
         "requests: rpd 2 has less left than rpm 50 (%llu of %llu)",
         (unsigned long long)b.req_remaining, (unsigned long long)b.req_limit);
    T_OK(b.tok_limit == 300 && b.tok_remaining == 200 &&
             b.tok_reset_ms == utc_ms(2024, 11, 1, 0, 0),
         "tokens: the month's 300, 200 left, whole again on the 1st (%lld)",
         (long long)b.tok_reset_ms);

    T_EQ_INT(admit_b(s, "none", 100, &b, &r), 0, "a client without budgets");
    T_OK(b.req_limit == 0 && b.tok_limit == 0, "  ... has no limits to give");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- tokens and cost --------------------------------------------------------------------- */

static shm_outcome_t outcome(int cls, uint32_t prompt, uint32_t completion, uint64_t cost)
{
    shm_outcome_t o;
    shm_outcome_init(&o, cls);
    o.total_ms = cls == SHM_CL_SUCCESS ? 100 : 0;
    o.prompt_tokens = prompt;
    o.completion_tokens = completion;
    o.cost_micro_usd = cost;
    return o;
}

static void test_tokens_cost(void)
{
    char parent[64], dir[96];
    shm_client_spec_t cs[3] = {spec("tok"), spec("cost"), spec("both")};
    cs[0].tokens_per_day = 1000;
    cs[1].cost_per_day_micro_usd = 1000;
    cs[2].tokens_per_day = 100;
    cs[2].tokens_per_month = 50;
    shm_t *s = fresh(parent, sizeof(parent), dir, sizeof(dir), T0 + 3600000, cs, 3);
    shm_resv_t r[4];
    shm_client_t v;
    int64_t retry;

    T_EQ_INT(admit(s, "tok", 400, 0, &r[0], NULL), 0, "tokens 1000/day: 400 reserved");
    T_EQ_INT(admit(s, "tok", 400, 0, &r[1], NULL), 0, "  ... 800 reserved");
    T_EQ_INT(admit(s, "tok", 400, 0, &r[2], &retry), SHM_ECLIENT_BUDGET,
             "  ... a third 400 would pass the budget: refused");
    T_EQ_INT(retry, T0 + DAY_MS, "  ... until the next UTC midnight");
    shm_outcome_t o = outcome(SHM_CL_SUCCESS, 60, 40, 0);
    T_EQ_INT(shm_key_record(s, &r[0], &o, SHM_NOW), 0, "record the first: 100 tokens used");
    T_OK(shm_client_get(s, "tok", SHM_NOW, &v) == 0 && v.tokens_day_used == 500 &&
             v.tokens_month_used == 500 && v.prompt_tokens == 60 && v.completion_tokens == 40,
         "  ... reconciled: 500 used (%llu)", (unsigned long long)v.tokens_day_used);
    T_EQ_INT(admit(s, "tok", 400, 0, &r[2], NULL), 0, "  ... so 400 more fit");
    o = outcome(SHM_CL_SUCCESS, 300, 400, 0);
    T_EQ_INT(shm_key_record(s, &r[1], &o, SHM_NOW), 0, "record 700 for a 400 estimate");
    T_OK(shm_client_get(s, "tok", SHM_NOW, &v) == 0 && v.tokens_day_used == 1200,
         "  ... the day may end past its budget by the underestimate (100 + 700 + 400)");
    T_EQ_INT(admit(s, "tok", 0, 0, &r[3], NULL), SHM_ECLIENT_BUDGET,
             "  ... then even a request without an estimate is refused");
    o = outcome(SHM_CL_5XX, 0, 0, 0);
    T_EQ_INT(shm_key_record(s, &r[2], &o, SHM_NOW), 0, "a 5xx outcome is recorded");
    T_OK(shm_client_get(s, "tok", SHM_NOW, &v) == 0 && v.tokens_day_used == 800 && v.requests == 2,
         "  ... and gives the client's reservation back (800 used, 2 requests)");
    g_now = T0 + DAY_MS;
    T_EQ_INT(admit(s, "tok", 5000, 0, &r[0], NULL), 0,
             "new day: an estimate above the budget passes an unspent budget");
    T_EQ_INT(r[0].client_tokens, 1000, "  ... reserving the budget, not the estimate");
    T_EQ_INT(shm_key_release(s, &r[0], 1, SHM_NOW), 0, "release with refund");
    T_OK(shm_client_get(s, "tok", SHM_NOW, &v) == 0 && v.tokens_day_used == 0 && v.rpd_used == 0 &&
             v.rpm_used == 0,
         "  ... gives everything back");
    T_EQ_INT(admit(s, "tok", 300, 0, &r[0], NULL), 0, "admit 300");
    T_EQ_INT(shm_key_release(s, &r[0], 0, SHM_NOW), 0, "release without refund");
    T_OK(shm_client_get(s, "tok", SHM_NOW, &v) == 0 && v.tokens_day_used == 300,
         "  ... keeps the estimate as spent");

    /* cost */
    for (int i = 0; i < 3; i++)
        T_EQ_INT(admit(s, "cost", 0, 300, &r[i], NULL), 0, "cost 1000 micro-USD/day: +300 (%d)",
                 i + 1);
    T_EQ_INT(admit(s, "cost", 0, 300, &r[3], &retry), SHM_ECLIENT_BUDGET,
             "  ... a fourth 300 refused");
    o = outcome(SHM_CL_SUCCESS, 10, 10, 50);
    shm_key_record(s, &r[0], &o, SHM_NOW);
    T_OK(shm_client_get(s, "cost", SHM_NOW, &v) == 0 && v.cost_day_used_micro_usd == 650 &&
             v.cost_micro_usd == 50,
         "  ... recording a cost of 50 reconciles to 650");
    T_EQ_INT(admit(s, "cost", 0, 300, &r[0], NULL), 0, "  ... then 300 more fit");
    o = outcome(SHM_CL_CANCELLED, 0, 0, 0);
    shm_key_record(s, &r[1], &o, SHM_NOW);
    T_OK(shm_client_get(s, "cost", SHM_NOW, &v) == 0 && v.cost_day_used_micro_usd == 950,
         "  ... a cancelled request without usage keeps its estimate");
    T_EQ_INT(admit(s, "cost", 0, 0, &r[1], NULL), 0,
             "  ... without an estimate: admitted while the budget is not spent");
    T_EQ_INT(admit(s, "cost", 0, 60, &r[3], NULL), SHM_ECLIENT_BUDGET, "  ... 950 + 60 refused");

    /* the smaller of day and month binds */
    T_EQ_INT(admit(s, "both", 40, 0, &r[0], NULL), 0, "tokens 100/day, 50/month: 40 admitted");
    T_EQ_INT(admit(s, "both", 40, 0, &r[1], &retry), SHM_ECLIENT_BUDGET,
             "  ... 40 more refused by the month");
    T_EQ_INT(retry, utc_ms(2024, 11, 1, 0, 0), "  ... until the next month, not the next day");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- UTC month rollover ----------------------------------------------------------------- */

static void test_month(void)
{
    char parent[64], dir[96];
    shm_client_spec_t cs[1] = {spec("m")};
    cs[0].tokens_per_month = 1000;
    cs[0].cost_per_month_micro_usd = 5000;
    int64_t jan31 = utc_ms(2024, 1, 31, 23, 59);
    shm_t *s = fresh(parent, sizeof(parent), dir, sizeof(dir), jan31, cs, 1);
    shm_resv_t r, r2;
    shm_client_t v;
    int64_t retry;

    T_EQ_INT(admit(s, "m", 1000, 10, &r, NULL), 0, "Jan 31 23:59: the month's 1000 tokens");
    T_EQ_INT(admit(s, "m", 1, 0, &r2, &retry), SHM_ECLIENT_BUDGET, "  ... then refused");
    T_EQ_INT(retry, utc_ms(2024, 2, 1, 0, 0), "  ... until Feb 1 00:00 UTC");
    g_now = utc_ms(2024, 2, 1, 0, 0) - 1;
    T_EQ_INT(admit(s, "m", 1, 0, &r2, NULL), SHM_ECLIENT_BUDGET, "  ... still 1 ms before");
    g_now = utc_ms(2024, 2, 1, 0, 0);
    T_EQ_INT(admit(s, "m", 900, 10, &r2, NULL), 0, "Feb 1: a fresh month");
    /* January's request finishes in February: its reservation left with January */
    shm_outcome_t o = outcome(SHM_CL_SUCCESS, 100, 20, 7);
    T_EQ_INT(shm_key_record(s, &r, &o, SHM_NOW), 0, "January's request recorded in February");
    T_OK(shm_client_get(s, "m", SHM_NOW, &v) == 0 && v.tokens_month_used == 1020 &&
             v.cost_month_used_micro_usd == 17,
         "  ... its real usage counts in February (900 + 120 = %llu)",
         (unsigned long long)v.tokens_month_used);
    T_EQ_INT(v.month_reset_ms, utc_ms(2024, 3, 1, 0, 0), "  ... the budget resets on Mar 1");
    g_now = utc_ms(2024, 2, 29, 12, 0);
    T_EQ_INT(admit(s, "m", 1, 0, &r2, &retry), SHM_ECLIENT_BUDGET, "Feb 29 (leap): spent");
    T_EQ_INT(retry, utc_ms(2024, 3, 1, 0, 0), "  ... until Mar 1");
    g_now = utc_ms(2024, 12, 31, 23, 0);
    T_EQ_INT(admit(s, "m", 1000, 0, &r2, NULL), 0, "Dec 31");
    T_EQ_INT(admit(s, "m", 1, 0, &r2, &retry), SHM_ECLIENT_BUDGET, "  ... spent");
    T_EQ_INT(retry, utc_ms(2025, 1, 1, 0, 0), "  ... until Jan 1 of the next year");
    T_EQ_INT(shm_client_reset(s, "m", SHM_RESET_TPM, SHM_NOW), 0, "admin reset of the budgets");
    T_EQ_INT(admit(s, "m", 1, 0, &r2, NULL), 0, "  ... admits again");
    T_EQ_INT(shm_client_reset(s, "zz", SHM_RESET_TPM, SHM_NOW), SHM_ENOTFOUND,
             "reset of an unknown client");
    shm_store_close(s);
    tu_rmdir(parent);
}

/* ---- exactness: 50 threads, 2 processes ---------------------------------------------- */

#define NTHREADS 50

typedef struct race_s {
    shm_t *s;
    const char *client;
    pthread_barrier_t *bar; /* start together; hold reservations until all have tried */
    int admitted, errors;
} race_t;

static void *racer(void *arg)
{
    race_t *w = arg;
    shm_resv_t r;
    shm_outcome_t o = outcome(SHM_CL_SUCCESS, 1, 1, 0);
    pthread_barrier_wait(w->bar);
    int rc = admit(w->s, w->client, 10, 0, &r, NULL);
    pthread_barrier_wait(w->bar);
    if (rc == 0) {
        w->admitted = 1;
        if (shm_key_record(w->s, &r, &o, SHM_NOW) != 0)
            w->errors++;
    } else if (rc != SHM_ECLIENT_BUDGET) {
        w->errors++;
    }
    return NULL;
}

/* n threads of this process race once each; returns how many were admitted (-1 on error). */
static int race(shm_t *s, const char *client, int n)
{
    pthread_t th[NTHREADS];
    race_t w[NTHREADS];
    pthread_barrier_t bar;
    int admitted = 0, errors = 0;
    pthread_barrier_init(&bar, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        w[i] = (race_t){.s = s, .client = client, .bar = &bar};
        pthread_create(&th[i], NULL, racer, &w[i]);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        admitted += w[i].admitted;
        errors += w[i].errors;
    }
    pthread_barrier_destroy(&bar);
    return errors ? -1 : admitted;
}

static void test_race(void)
{
    char parent[64], dir[96];
    shm_client_spec_t cs[4] = {spec("rpm10"), spec("rpd10"), spec("tok100"), spec("p-rpm10")};
    cs[0].rpm = 10;
    cs[1].rpd = 10;
    cs[2].tokens_per_day = 100; /* 10 tokens each: 10 fit */
    cs[3].rpm = 10;
    shm_t *s = fresh(parent, sizeof(parent), dir, sizeof(dir), T0 + 5000, cs, 4);
    shm_client_t v;

    T_EQ_INT(race(s, "rpm10", NTHREADS), 10, "50 threads against client rpm 10: exactly 10");
    T_EQ_INT(race(s, "rpd10", NTHREADS), 10, "50 threads against client rpd 10: exactly 10");
    T_EQ_INT(race(s, "tok100", NTHREADS), 10,
             "50 threads against 100 tokens/day at 10 each: exactly 10");
    T_OK(shm_client_get(s, "rpm10", SHM_NOW, &v) == 0 && v.rpm_used == 10 && v.requests == 10,
         "  ... the store agrees");
    shm_store_close(s);

    /* two processes x 25 threads, each opening the store itself after the fork */
    pid_t kids[2];
    for (int p = 0; p < 2; p++) {
        if ((kids[p] = fork()) == 0) {
            shm_t *cs2 = open_fake(dir);
            int n = cs2 ? race(cs2, "p-rpm10", NTHREADS / 2) : -1;
            shm_store_close(cs2);
            _exit(n < 0 ? 255 : n);
        }
    }
    int total = 0, ok = 1;
    for (int p = 0; p < 2; p++) {
        int st;
        waitpid(kids[p], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) == 255)
            ok = 0;
        else
            total += WEXITSTATUS(st);
    }
    T_OK(ok && total == 10, "2 processes x 25 threads against client rpm 10: exactly 10 (%d)",
         total);
    s = open_fake(dir);
    T_OK(s && shm_client_get(s, "p-rpm10", SHM_NOW, &v) == 0 && v.rpm_used == 10,
         "  ... the store agrees");
    shm_store_close(s);
    tu_rmdir(parent);
}

int main(void)
{
    test_sync_views();
    test_rpm_rpd();
    test_budget();
    test_tokens_cost();
    test_month();
    test_race();
    return t_done();
}
