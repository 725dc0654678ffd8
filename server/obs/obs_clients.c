/* obs_clients.c - client metrics from the store (see obs_clients.h). */
#include "server/obs/obs_clients.h"

#include <stdlib.h>
#include <string.h>

#include "server/obs/prom.h"
#include "shm/shm_cdef.h"
#include "shm/shm_usage.h"

typedef struct row_s {
    const shm_client_t *c;
    const shm_cdef_t *def; /* NULL: a configuration client */
    const char *status;
    uint64_t errors, refused; /* today's, from its usage rows */
} row_t;

static int cmp_def(const void *a, const void *b)
{
    return strcmp(((const shm_cdef_t *)a)->name, ((const shm_cdef_t *)b)->name);
}

/* most recently admitted first, then by name */
static int cmp_row(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    if (x->c->last_admit_ms != y->c->last_admit_ms)
        return x->c->last_admit_ms > y->c->last_admit_ms ? -1 : 1;
    return strcmp(x->c->name, y->c->name);
}

static const char *status_of(const shm_client_t *c, const shm_cdef_t *d, int64_t now_ms)
{
    if (d && d->status == SHM_CDEF_REVOKED)
        return "revoked";
    if (d && d->spec.expires_ms && now_ms >= d->spec.expires_ms)
        return "expired";
    if (!d && c->orphaned)
        return "orphaned";
    return "active";
}

static int live(const row_t *r)
{
    return strcmp(r->status, "revoked") != 0 && strcmp(r->status, "orphaned") != 0;
}

static int one(buf_t *out, const char *family, const char *client, const char *lname,
               const char *lvalue, double v)
{
    prom_labels_t l = {.n = 0};
    prom_label(&l, "client", client);
    if (lname)
        prom_label(&l, lname, lvalue);
    return prom_sample(out, family, &l, v);
}

static int render(buf_t *out, const row_t *rows, unsigned n, unsigned omitted)
{
    int rc = prom_family(out, "llmgate_client_info", "gauge",
                         "1 for each client key: where it is defined and its status.");
    for (unsigned i = 0; i < n; i++) {
        prom_labels_t l = {.n = 0};
        prom_label(&l, "client", rows[i].c->name);
        prom_label(&l, "source", rows[i].def ? "store" : "config");
        prom_label(&l, "status", rows[i].status);
        rc |= prom_sample(out, "llmgate_client_info", &l, 1);
    }
    rc |= prom_family(out, "llmgate_client_requests_total", "counter",
                      "Requests of the client admitted (refunded ones not counted).");
    for (unsigned i = 0; i < n; i++)
        if (live(&rows[i]))
            rc |= one(out, "llmgate_client_requests_total", rows[i].c->name, NULL, NULL,
                      (double)rows[i].c->requests);
    rc |= prom_family(out, "llmgate_client_tokens_total", "counter",
                      "Tokens the client's requests used, as the providers reported them.");
    for (unsigned i = 0; i < n; i++) {
        if (!live(&rows[i]))
            continue;
        rc |= one(out, "llmgate_client_tokens_total", rows[i].c->name, "type", "prompt",
                  (double)rows[i].c->prompt_tokens);
        rc |= one(out, "llmgate_client_tokens_total", rows[i].c->name, "type", "completion",
                  (double)rows[i].c->completion_tokens);
    }
    rc |= prom_family(out, "llmgate_client_cost_usd_total", "counter",
                      "Cost of the client's requests at the configured prices, USD.");
    for (unsigned i = 0; i < n; i++)
        if (live(&rows[i]))
            rc |= one(out, "llmgate_client_cost_usd_total", rows[i].c->name, NULL, NULL,
                      rows[i].c->cost_micro_usd / 1e6);
    rc |= prom_family(out, "llmgate_client_errors_today", "gauge",
                      "Requests of the client today (UTC) answered with the provider's error "
                      "(a 4xx passed on).");
    for (unsigned i = 0; i < n; i++)
        if (live(&rows[i]))
            rc |= one(out, "llmgate_client_errors_today", rows[i].c->name, NULL, NULL,
                      (double)rows[i].errors);
    rc |= prom_family(out, "llmgate_client_refused_today", "gauge",
                      "Requests of the client today (UTC) refused with 429 by its own limits.");
    for (unsigned i = 0; i < n; i++)
        if (live(&rows[i]))
            rc |= one(out, "llmgate_client_refused_today", rows[i].c->name, NULL, NULL,
                      (double)rows[i].refused);
    static const char *const budget[6] = {"rpm",          "rpd",          "tokens_day",
                                          "tokens_month", "cost_day_usd", "cost_month_usd"};
    for (int pass = 0; pass < 2; pass++) {
        const char *fam = pass ? "llmgate_client_budget_limit" : "llmgate_client_budget_used";
        rc |= prom_family(out, fam, "gauge",
                          pass ? "The client's budgets (limited ones only)."
                               : "What the client has used of each budget: requests in the "
                                 "rolling minute, today; tokens and USD today and this month "
                                 "(UTC), reservations in flight included.");
        for (unsigned i = 0; i < n; i++) {
            const shm_client_t *c = rows[i].c;
            if (!live(&rows[i]))
                continue;
            double lim[6] = {c->rpm,
                             c->rpd,
                             (double)c->tokens_per_day,
                             (double)c->tokens_per_month,
                             c->cost_per_day_micro_usd / 1e6,
                             c->cost_per_month_micro_usd / 1e6};
            double used[6] = {c->rpm_used,
                              c->rpd_used,
                              (double)c->tokens_day_used,
                              (double)c->tokens_month_used,
                              c->cost_day_used_micro_usd / 1e6,
                              c->cost_month_used_micro_usd / 1e6};
            for (int b = 0; b < 6; b++)
                if (lim[b] > 0)
                    rc |= one(out, fam, c->name, "budget", budget[b], pass ? lim[b] : used[b]);
        }
    }
    rc |= prom_family(out, "llmgate_clients_omitted", "gauge",
                      "Clients left out of the llmgate_client_* families (beyond the most "
                      "recently admitted 1000).");
    rc |= prom_sample(out, "llmgate_clients_omitted", NULL, omitted);
    return rc;
}

int obs_clients_metrics(shm_t *shm, int64_t now_ms, buf_t *out)
{
    shm_client_t *cl = NULL;
    shm_cdef_t *defs = NULL;
    unsigned ncl = 0, ndefs = 0;
    int rc = shm_clients(shm, now_ms, &cl, &ncl);
    if (rc == 0)
        rc = shm_cdefs(shm, &defs, &ndefs);
    if (rc != 0) {
        shm_snapshot_free(cl);
        return rc;
    }
    if (ndefs)
        qsort(defs, ndefs, sizeof(*defs), cmp_def);
    row_t *rows = calloc(ncl ? ncl : 1, sizeof(*rows));
    if (!rows) {
        shm_snapshot_free(cl);
        shm_snapshot_free(defs);
        return SHM_ENOMEM;
    }
    for (unsigned i = 0; i < ncl; i++) {
        shm_cdef_t key;
        memcpy(key.name, cl[i].name, sizeof(key.name));
        rows[i].c = &cl[i];
        rows[i].def = ndefs ? bsearch(&key, defs, ndefs, sizeof(*defs), cmp_def) : NULL;
        rows[i].status = status_of(&cl[i], rows[i].def, now_ms);
    }
    /* today's errors and refusals: the usage rows of today (one seek per client) */
    shm_usage_row_t *u = NULL;
    unsigned nu = 0;
    int64_t today = shm_usage_day(now_ms);
    if (shm_usage(shm, NULL, today, today, &u, &nu) == 0) {
        for (unsigned i = 0, r = 0; i < nu && r < ncl; i++) {
            /* both sorted by client name: walk them together */
            while (r < ncl && strcmp(rows[r].c->name, u[i].client) < 0)
                r++;
            if (r < ncl && strcmp(rows[r].c->name, u[i].client) == 0) {
                rows[r].errors += u[i].errors;
                rows[r].refused += u[i].refused;
            }
        }
        shm_snapshot_free(u);
    }
    qsort(rows, ncl, sizeof(*rows), cmp_row);
    unsigned n = ncl < OBS_CLIENTS_MAX ? ncl : OBS_CLIENTS_MAX;
    rc = render(out, rows, n, ncl - n);
    free(rows);
    shm_snapshot_free(cl);
    shm_snapshot_free(defs);
    return rc ? SHM_ENOMEM : 0;
}
