/* shm_usage_test.c - clients' usage by UTC day and model (shm_usage.h): a served outcome adds
 * one request with its tokens and cost to (client, day, model); an attempt the upstream did
 * not serve and a refunded release add nothing; a cancelled stream counts; rows of clients
 * whose names share a prefix stay apart; ranges and the client filter select; pruning keeps
 * the recent days; rows survive a reopen; provider errors passed on are counted as errors,
 * refusals by the client's own limits as refused (and take nothing of its budgets). */
#include <stdlib.h>
#include <string.h>

#include "shm/shm_usage.h"
#include "shm_tutil.h"
#include "t.h"

static int serve(shm_t *s, const char *client, const char *model, int cls, uint32_t in,
                 uint32_t out, uint64_t cost, int64_t now)
{
    const char *names[1] = {"k"};
    shm_admit_req_t req = {.names = names, .count = 1, .client = client, .model = model};
    shm_resv_t r;
    int64_t retry;
    int rc = shm_key_admit(s, &req, now, &r, &retry);
    if (rc != 0)
        return rc;
    shm_outcome_t o;
    shm_outcome_init(&o, cls);
    o.prompt_tokens = in;
    o.completion_tokens = out;
    o.cost_micro_usd = cost;
    return shm_key_record(s, &r, &o, now);
}

static const shm_usage_row_t *find(const shm_usage_row_t *rows, unsigned n, const char *client,
                                   int64_t day, const char *model)
{
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(rows[i].client, client) && rows[i].day == day && !strcmp(rows[i].model, model))
            return &rows[i];
    return NULL;
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
    shm_client_spec_t cs[2] = {{.name = "a"}, {.name = "ab"}};
    T_EQ_INT(shm_clients_sync(s, cs, 2, T0, NULL), 0, "clients a and ab");
    const int64_t d0 = T0 / DAY_MS;

    T_EQ_INT(serve(s, "a", "m1", SHM_CL_SUCCESS, 10, 20, 300, T0 + 1000), 0, "a, m1: served");
    T_EQ_INT(serve(s, "a", "m1", SHM_CL_SUCCESS, 1, 2, 3, T0 + 2000), 0, "a, m1 again");
    T_EQ_INT(serve(s, "a", "m2", SHM_CL_OTHER, 5, 0, 0, T0 + 3000), 0, "a, m2: a client error");
    T_EQ_INT(serve(s, "a", "m1", SHM_CL_5XX, 0, 0, 0, T0 + 4000), 0, "a, m1: a 5xx (retried)");
    T_EQ_INT(serve(s, "a", "m1", SHM_CL_CANCELLED, 7, 3, 9, T0 + 5000), 0, "a, m1: left early");
    T_EQ_INT(serve(s, "ab", "m1", SHM_CL_SUCCESS, 100, 100, 1000, T0 + 6000), 0, "ab, m1");
    T_EQ_INT(serve(s, "a", "m1", SHM_CL_SUCCESS, 4, 4, 4, T0 + DAY_MS + 10), 0, "a, m1, next day");
    {
        const char *names[1] = {"k"};
        shm_admit_req_t req = {.names = names, .count = 1, .client = "a", .model = "m1"};
        shm_resv_t r;
        int64_t retry;
        T_EQ_INT(shm_key_admit(s, &req, T0 + 7000, &r, &retry), 0, "an admission released");
        T_EQ_INT(shm_key_release(s, &r, 1, T0 + 7001), 0, "with refund");
    }

    shm_usage_row_t *rows = NULL;
    unsigned n = 0;
    T_EQ_INT(shm_usage(s, NULL, d0, d0 + 1, &rows, &n), 0, "every row of two days");
    T_EQ_INT(n, 4, "a/d0/m1, a/d0/m2, a/d1/m1, ab/d0/m1");
    const shm_usage_row_t *r = find(rows, n, "a", d0, "m1");
    T_OK(r && r->requests == 3 && r->prompt_tokens == 18 && r->completion_tokens == 25 &&
             r->cost_micro_usd == 312,
         "a, m1, day 0: two successes and the cancelled stream; the 5xx and the refund not");
    r = find(rows, n, "a", d0, "m2");
    T_OK(r && r->requests == 1 && r->prompt_tokens == 5, "a, m2: the client error counts");
    T_OK(r && r->errors == 1 && r->refused == 0, "  ... as an error");
    r = find(rows, n, "a", d0, "m1");
    T_OK(r && r->errors == 0, "a, m1: no error (the 5xx was not served)");
    r = find(rows, n, "ab", d0, "m1");
    T_OK(r && r->requests == 1 && r->cost_micro_usd == 1000, "ab's row is its own");
    T_OK(n == 4 && !strcmp(rows[0].client, "a") && rows[0].day == d0 && rows[2].day == d0 + 1 &&
             !strcmp(rows[3].client, "ab"),
         "sorted by client, day, model");
    shm_snapshot_free(rows);

    T_EQ_INT(shm_usage(s, NULL, d0 + 1, d0 + 1, &rows, &n), 0, "every client, day 1 only");
    T_OK(n == 1 && !strcmp(rows[0].client, "a") && rows[0].day == d0 + 1,
         "a's day-1 row; a's and ab's day-0 rows skipped");
    shm_snapshot_free(rows);
    T_EQ_INT(shm_usage(s, NULL, d0, d0, &rows, &n), 0, "every client, day 0 only");
    T_OK(n == 3 && !strcmp(rows[2].client, "ab"), "a's two rows and ab's (a's day 1 skipped)");
    shm_snapshot_free(rows);
    T_EQ_INT(shm_usage(s, "a", d0 + 1, d0 + 1, &rows, &n), 0, "a, day 1 only");
    T_OK(n == 1 && rows[0].requests == 1 && rows[0].prompt_tokens == 4, "one row");
    shm_snapshot_free(rows);
    T_EQ_INT(shm_usage(s, "ab", d0, d0 + 5, &rows, &n), 0, "ab only");
    T_OK(n == 1 && !strcmp(rows[0].client, "ab"), "not a's rows, whose name is its prefix");
    shm_snapshot_free(rows);
    T_EQ_INT(shm_usage(s, "a", d0 + 2, d0 + 9, &rows, &n), 0, "a range without rows");
    T_EQ_INT(n, 0, "no rows");
    shm_snapshot_free(rows);

    unsigned pruned = 0;
    T_EQ_INT(shm_usage_prune(s, d0 + 1, &pruned), 0, "prune the days before day 1");
    T_EQ_INT(pruned, 3, "the three rows of day 0");
    shm_store_close(s);

    s = tu_open(dir, T0 + 2 * DAY_MS);
    T_OK(s != NULL, "reopened");
    if (s) {
        T_EQ_INT(shm_usage(s, NULL, 0, d0 + 10, &rows, &n), 0, "after a reopen");
        T_OK(n == 1 && rows[0].day == d0 + 1 && rows[0].requests == 1, "the kept row");
        shm_snapshot_free(rows);
        T_EQ_INT(shm_usage(s, "", 0, 1, &rows, &n), SHM_EINVAL, "an empty client name");

        /* a refusal by the client's own limits is counted, and not as a request */
        const int64_t t2 = T0 + 2 * DAY_MS + 1000;
        shm_client_spec_t cs3[3] = {{.name = "a"}, {.name = "ab"}, {.name = "c", .rpm = 1}};
        T_EQ_INT(shm_clients_sync(s, cs3, 3, t2, NULL), 0, "client c, rpm 1");
        T_EQ_INT(serve(s, "c", "m1", SHM_CL_SUCCESS, 1, 1, 0, t2), 0, "c: its one request");
        T_EQ_INT(serve(s, "c", "m1", SHM_CL_SUCCESS, 1, 1, 0, t2 + 1), SHM_ECLIENT_BUDGET,
                 "c: the second is over its rpm");
        T_EQ_INT(serve(s, "c", "m1", SHM_CL_SUCCESS, 1, 1, 0, t2 + 2), SHM_ECLIENT_BUDGET,
                 "c: and the third");
        T_EQ_INT(shm_usage(s, "c", 0, d0 + 10, &rows, &n), 0, "c's rows");
        T_OK(n == 1 && rows[0].day == d0 + 2 && rows[0].requests == 1 && rows[0].refused == 2 &&
                 rows[0].errors == 0,
             "one request, two refused");
        shm_snapshot_free(rows);
        shm_client_t cu;
        T_EQ_INT(shm_client_get(s, "c", t2 + 3, &cu), 0, "c's budget record");
        T_OK(cu.requests == 1 && cu.rpm_used == 1, "the refusals took nothing of its budgets");
        shm_store_close(s);
    }
    tu_rmdir(parent);
    return t_done();
}
