/* rows.c - the rows of the keys and providers commands: view/keys.h's rows, filtered by
 * --provider, --model and --status, and sorted by --sort. */
#include "cli/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char ctl_sort_names[] = "name, provider, status, rpm, rpd, tpm, inflight, p50, p95, p99, "
                              "errors, requests, tokens, cost";

static const struct {
    const char *name;
    int sort;
} sort_table[] = {
    {"name", CTL_SORT_NAME},         {"key", CTL_SORT_NAME},
    {"provider", CTL_SORT_PROVIDER}, {"status", CTL_SORT_STATUS},
    {"state", CTL_SORT_STATUS},      {"rpm", CTL_SORT_RPM},
    {"rpd", CTL_SORT_RPD},           {"tpm", CTL_SORT_TPM},
    {"inflight", CTL_SORT_INFLIGHT}, {"in-flight", CTL_SORT_INFLIGHT},
    {"infl", CTL_SORT_INFLIGHT},     {"p50", CTL_SORT_P50},
    {"p95", CTL_SORT_P95},           {"p99", CTL_SORT_P99},
    {"errors", CTL_SORT_ERRORS},     {"err", CTL_SORT_ERRORS},
    {"error_rate", CTL_SORT_ERRORS}, {"requests", CTL_SORT_REQUESTS},
    {"reqs", CTL_SORT_REQUESTS},     {"tokens", CTL_SORT_TOKENS},
    {"cost", CTL_SORT_COST},
};

int ctl_sort_parse(const char *s)
{
    for (size_t i = 0; i < sizeof(sort_table) / sizeof(sort_table[0]); i++)
        if (strcmp(s, sort_table[i].name) == 0)
            return sort_table[i].sort;
    return -1;
}

/* ---- sorting --------------------------------------------------------------------------- */

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? 1 : a > b ? -1 : 0; /* larger first */
}

static int g_sort, g_reverse;

static int row_cmp(const void *pa, const void *pb)
{
    const vw_key_t *a = pa, *b = pb;
    int c = 0;

    switch (g_sort) {
    case CTL_SORT_PROVIDER:
        c = strcmp(a->k.provider, b->k.provider);
        break;
    case CTL_SORT_STATUS:
        c = (a->state > b->state) - (a->state < b->state);
        break;
    case CTL_SORT_RPM:
        c = cmp_u64(a->k.rpm_used, b->k.rpm_used);
        break;
    case CTL_SORT_RPD:
        c = cmp_u64(a->k.rpd_used, b->k.rpd_used);
        break;
    case CTL_SORT_TPM:
        c = cmp_u64(a->k.tpm_used, b->k.tpm_used);
        break;
    case CTL_SORT_INFLIGHT:
        c = cmp_u64(a->k.inflight, b->k.inflight);
        break;
    case CTL_SORT_P50:
        c = cmp_u64(a->total.p50, b->total.p50);
        break;
    case CTL_SORT_P95:
        c = cmp_u64(a->total.p95, b->total.p95);
        break;
    case CTL_SORT_P99:
        c = cmp_u64(a->total.p99, b->total.p99);
        break;
    case CTL_SORT_ERRORS:
        c = a->error_rate < b->error_rate ? 1 : a->error_rate > b->error_rate ? -1 : 0;
        break;
    case CTL_SORT_REQUESTS:
        c = cmp_u64(a->k.requests, b->k.requests);
        break;
    case CTL_SORT_TOKENS:
        c = cmp_u64(a->k.prompt_tokens + a->k.completion_tokens,
                    b->k.prompt_tokens + b->k.completion_tokens);
        break;
    case CTL_SORT_COST:
        c = cmp_u64(a->k.cost_micro_usd, b->k.cost_micro_usd);
        break;
    default:
        break;
    }
    if (c == 0)
        c = strcmp(a->k.name, b->k.name);
    return g_reverse ? -c : c;
}

void ctl_rows_sort(vw_key_t *rows, unsigned n, int sort, int reverse)
{
    g_sort = sort;
    g_reverse = reverse;
    if (n > 1)
        qsort(rows, n, sizeof(*rows), row_cmp);
}

/* ---- loading --------------------------------------------------------------------------- */

static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        if (l == n && memcmp(p, name, n) == 0)
            return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

static int provider_wanted(const ctl_t *c, const char *provider)
{
    if (c->f_provider && !in_list(c->f_provider, provider))
        return 0;
    if (c->f_model) {
        for (unsigned i = 0; i < c->n_model_providers; i++)
            if (strcmp(c->model_providers[i], provider) == 0)
                return 1;
        return 0;
    }
    return 1;
}

int ctl_rows_load(ctl_t *c, vw_key_t **out, unsigned *nout)
{
    vw_key_t *rows = NULL;
    unsigned nk = 0, n = 0;
    const char *what;
    char name[SHM_NAME_MAX + 1];
    int rc;

    *out = NULL;
    *nout = 0;
    c->now_ms = ctl_now_ms();
    if ((rc = vw_keys_load(c->shm, c->now_ms, &rows, &nk, &what, name)) != 0)
        return ctl_store_error(c, rc, what, name[0] ? name : NULL);
    for (unsigned i = 0; i < nk; i++) {
        if (!provider_wanted(c, rows[i].k.provider))
            continue;
        if (c->f_states && !(c->f_states & (1u << rows[i].state)))
            continue;
        rows[n++] = rows[i];
    }
    ctl_rows_sort(rows, n, c->sort, c->reverse);
    *out = rows;
    *nout = n;
    return 0;
}

int ctl_prows_load(ctl_t *c, vw_prov_t **out, unsigned *nout)
{
    vw_key_t *rows = NULL;
    vw_prov_t *pr = NULL;
    unsigned np = 0, nr = 0, n = 0;
    unsigned saved_states = c->f_states;
    int rc;

    *out = NULL;
    *nout = 0;
    c->f_states = 0;
    rc = ctl_rows_load(c, &rows, &nr);
    c->f_states = saved_states;
    if (rc != 0)
        return rc;
    if ((rc = vw_provs_load(c->shm, c->now_ms, rows, nr, &pr, &np)) != 0) {
        free(rows);
        return ctl_store_error(c, rc, "reading the providers", NULL);
    }
    for (unsigned i = 0; i < np; i++)
        if (provider_wanted(c, pr[i].p.name))
            pr[n++] = pr[i];
    free(rows);
    *out = pr;
    *nout = n;
    return 0;
}
