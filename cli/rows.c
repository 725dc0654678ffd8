/* rows.c - the data behind every view: one row per key (snapshot + latency ring + provider
 * circuit, with the derived state, percentiles and error rate), one row per provider (its
 * circuit and the totals of its keys), filters and sorting.
 *
 * The effective state differs from the stored status in one way: a COOLING key whose
 * cooldown has passed is admissible as a half-open probe, so it is shown as half_open (the
 * store changes it at the next admission).
 */
#include "cli/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

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

const char *ctl_state_name(int state)
{
    return state == CTL_STATE_ORPHANED ? "orphaned" : shm_status_name(state);
}

int ctl_state_parse(const char *s, size_t n)
{
    for (int st = 0; st <= CTL_STATE_ORPHANED; st++) {
        const char *name = ctl_state_name(st);
        if (strlen(name) == n && memcmp(name, s, n) == 0)
            return st;
    }
    if (n == 9 && memcmp(s, "half-open", 9) == 0)
        return SHM_ST_HALF_OPEN;
    return -1;
}

/* ---- one key --------------------------------------------------------------------------- */

static int64_t next_day_ms(int64_t now_ms, int32_t day_offset_s)
{
    int64_t off = (int64_t)day_offset_s * 1000, t = now_ms - off;
    int64_t day = t >= 0 ? t / DAY_MS : -((-t + DAY_MS - 1) / DAY_MS);
    return (day + 1) * DAY_MS + off;
}

static void derive(ctl_row_t *r, const shm_latency_t *lat, int64_t now_ms, int64_t circuit_until)
{
    const shm_key_t *k = &r->k;
    char t[32];

    r->cooldown_left_ms = k->cooldown_until_ms > now_ms ? k->cooldown_until_ms - now_ms : 0;
    r->day_reset_ms = next_day_ms(now_ms, k->day_offset_s);
    r->limited = 0;
    if (k->rpm && k->rpm_used >= k->rpm)
        r->limited |= CTL_LIM_RPM;
    if (k->rpd && k->rpd_used >= k->rpd)
        r->limited |= CTL_LIM_RPD;
    if (k->tpm && k->tpm_used >= k->tpm)
        r->limited |= CTL_LIM_TPM;
    if (k->max_inflight && k->inflight >= k->max_inflight)
        r->limited |= CTL_LIM_INFLIGHT;
    if (circuit_until > now_ms)
        r->limited |= CTL_LIM_CIRCUIT;

    r->state = k->orphaned ? CTL_STATE_ORPHANED : k->status;
    if (r->state == SHM_ST_COOLING && r->cooldown_left_ms == 0)
        r->state = SHM_ST_HALF_OPEN;
    switch (r->state) {
    case CTL_STATE_ORPHANED:
        snprintf(r->status_text, sizeof(r->status_text), "orphaned");
        r->status_color = CTL_C_DIM;
        break;
    case SHM_ST_ACTIVE:
        r->status_color = CTL_C_GREEN;
        if (r->limited & CTL_LIM_RPD) {
            snprintf(r->status_text, sizeof(r->status_text), "depleted until %s",
                     ctl_fmt_time(r->day_reset_ms, CTL_T_HM, t, sizeof(t)));
            r->status_color = CTL_C_YELLOW;
        } else if (r->limited & CTL_LIM_CIRCUIT) {
            snprintf(r->status_text, sizeof(r->status_text), "circuit open %s",
                     ctl_fmt_dur(circuit_until - now_ms, t, sizeof(t)));
            r->status_color = CTL_C_YELLOW;
        } else {
            snprintf(r->status_text, sizeof(r->status_text), "active");
        }
        break;
    case SHM_ST_COOLING:
        snprintf(r->status_text, sizeof(r->status_text), "cooling %s",
                 ctl_fmt_dur(r->cooldown_left_ms, t, sizeof(t)));
        r->status_color = CTL_C_YELLOW;
        break;
    case SHM_ST_HALF_OPEN:
        snprintf(r->status_text, sizeof(r->status_text), "half-open");
        r->status_color = CTL_C_YELLOW;
        break;
    case SHM_ST_DEPLETED:
        if (r->cooldown_left_ms)
            snprintf(r->status_text, sizeof(r->status_text), "depleted until %s",
                     ctl_fmt_time(k->cooldown_until_ms, CTL_T_HM, t, sizeof(t)));
        else
            snprintf(r->status_text, sizeof(r->status_text), "depleted");
        r->status_color = CTL_C_RED;
        break;
    default: /* disabled, invalid */
        snprintf(r->status_text, sizeof(r->status_text), "%s", shm_status_name(r->state));
        r->status_color = CTL_C_RED;
        break;
    }

    r->outcomes = r->errors = 0;
    for (int cl = 0; cl < SHM_CL_COUNT; cl++)
        r->outcomes += k->by_class[cl];
    r->errors = k->by_class[SHM_CL_429] + k->by_class[SHM_CL_5XX] + k->by_class[SHM_CL_TIMEOUT] +
                k->by_class[SHM_CL_CONNECT] + k->by_class[SHM_CL_AUTH];
    r->error_rate = r->outcomes ? (double)r->errors / (double)r->outcomes : 0.0;

    r->samples = lat ? lat->count : 0;
    memset(&r->total, 0, sizeof(r->total));
    memset(&r->ttfb, 0, sizeof(r->ttfb));
    if (r->samples) {
        shm_percentiles(lat->total_ms, lat->count, &r->total);
        shm_percentiles(lat->ttfb_ms, lat->count, &r->ttfb);
    }
}

void ctl_row_derive(ctl_row_t *r, const shm_latency_t *lat, int64_t now_ms,
                    int64_t circuit_open_until_ms)
{
    derive(r, lat, now_ms, circuit_open_until_ms);
}

/* ---- sorting --------------------------------------------------------------------------- */

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? 1 : a > b ? -1 : 0; /* larger first */
}

static int g_sort, g_reverse;

static int row_cmp(const void *pa, const void *pb)
{
    const ctl_row_t *a = pa, *b = pb;
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

void ctl_rows_sort(ctl_row_t *rows, unsigned n, int sort, int reverse)
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

static const shm_provider_t *find_provider(const shm_provider_t *ps, unsigned n, const char *name)
{
    for (unsigned i = 0; i < n; i++)
        if (strcmp(ps[i].name, name) == 0)
            return &ps[i];
    return NULL;
}

static int64_t circuit_until(const shm_provider_t *p)
{
    return p && p->circuit == SHM_CIRCUIT_OPEN ? p->open_until_ms : 0;
}

int ctl_rows_load(ctl_t *c, ctl_row_t **out, unsigned *nout)
{
    shm_key_t *keys = NULL;
    shm_provider_t *provs = NULL;
    ctl_row_t *rows = NULL;
    shm_latency_t *lat = NULL;
    unsigned nk = 0, np = 0, n = 0;
    int rc;

    *out = NULL;
    *nout = 0;
    c->now_ms = ctl_now_ms();
    if ((rc = shm_snapshot(c->shm, c->now_ms, &keys, &nk)) != 0) {
        rc = ctl_store_error(c, rc, "reading the keys", NULL);
        goto exit;
    }
    if ((rc = shm_providers(c->shm, &provs, &np)) != 0) {
        rc = ctl_store_error(c, rc, "reading the providers", NULL);
        goto exit;
    }
    rows = calloc(nk ? nk : 1, sizeof(*rows));
    lat = malloc(sizeof(*lat));
    if (!rows || !lat) {
        rc = ctl_fail(CTL_EXIT_STORE, "out of memory");
        goto exit;
    }
    for (unsigned i = 0; i < nk; i++) {
        ctl_row_t *r = &rows[n];
        if (!provider_wanted(c, keys[i].provider))
            continue;
        r->k = keys[i];
        rc = shm_key_latency(c->shm, r->k.name, lat);
        if (rc == SHM_ENOTFOUND) {
            lat->count = 0; /* pruned since the snapshot */
        } else if (rc != 0) {
            rc = ctl_store_error(c, rc, "reading the latencies of", r->k.name);
            goto exit;
        }
        derive(r, lat, c->now_ms, circuit_until(find_provider(provs, np, r->k.provider)));
        if (c->f_states && !(c->f_states & (1u << r->state)))
            continue;
        n++;
    }
    ctl_rows_sort(rows, n, c->sort, c->reverse);
    *out = rows;
    *nout = n;
    rows = NULL;
    rc = 0;
exit:
    free(rows);
    free(lat);
    shm_snapshot_free(keys);
    shm_snapshot_free(provs);
    return rc;
}

int ctl_prows_load(ctl_t *c, ctl_prow_t **out, unsigned *nout)
{
    shm_provider_t *provs = NULL;
    ctl_row_t *rows = NULL;
    ctl_prow_t *pr = NULL;
    unsigned np = 0, nr = 0, n = 0;
    unsigned saved_states = c->f_states;
    int rc;
    char t[32];

    *out = NULL;
    *nout = 0;
    c->f_states = 0;
    rc = ctl_rows_load(c, &rows, &nr);
    c->f_states = saved_states;
    if (rc != 0)
        goto exit;
    if ((rc = shm_providers(c->shm, &provs, &np)) != 0) {
        rc = ctl_store_error(c, rc, "reading the providers", NULL);
        goto exit;
    }
    pr = calloc(np ? np : 1, sizeof(*pr));
    if (!pr) {
        rc = ctl_fail(CTL_EXIT_STORE, "out of memory");
        goto exit;
    }
    for (unsigned i = 0; i < np; i++) {
        ctl_prow_t *p = &pr[n];
        if (!provider_wanted(c, provs[i].name))
            continue;
        p->p = provs[i];
        for (unsigned j = 0; j < nr; j++) {
            const ctl_row_t *r = &rows[j];
            if (r->state == CTL_STATE_ORPHANED || strcmp(r->k.provider, p->p.name) != 0)
                continue;
            p->keys++;
            if ((r->state == SHM_ST_ACTIVE || r->state == SHM_ST_HALF_OPEN) &&
                !(r->limited & (CTL_LIM_RPD | CTL_LIM_CIRCUIT)))
                p->available++;
            p->requests += r->k.requests;
            p->outcomes += r->outcomes;
            p->errors += r->errors;
        }
        p->error_rate = p->outcomes ? (double)p->errors / (double)p->outcomes : 0.0;
        p->open_left_ms = p->p.circuit == SHM_CIRCUIT_OPEN && p->p.open_until_ms > c->now_ms
                              ? p->p.open_until_ms - c->now_ms
                              : 0;
        if (p->p.circuit == SHM_CIRCUIT_CLOSED) {
            snprintf(p->circuit_text, sizeof(p->circuit_text), "closed");
            p->circuit_color = CTL_C_GREEN;
        } else if (p->p.circuit == SHM_CIRCUIT_OPEN && p->open_left_ms) {
            snprintf(p->circuit_text, sizeof(p->circuit_text), "open %s",
                     ctl_fmt_dur(p->open_left_ms, t, sizeof(t)));
            p->circuit_color = CTL_C_RED;
        } else if (p->p.circuit == SHM_CIRCUIT_OPEN) {
            snprintf(p->circuit_text, sizeof(p->circuit_text), "open (expired)");
            p->circuit_color = CTL_C_YELLOW;
        } else {
            snprintf(p->circuit_text, sizeof(p->circuit_text), "half-open");
            p->circuit_color = CTL_C_YELLOW;
        }
        n++;
    }
    *out = pr;
    *nout = n;
    pr = NULL;
exit:
    free(pr);
    free(rows);
    shm_snapshot_free(provs);
    return rc;
}
