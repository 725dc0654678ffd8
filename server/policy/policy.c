/* policy.c - key strategies over admissible candidates; see policy.h. */
#include "server/policy/policy.h"

static int oldest(const shm_candidate_t *c, unsigned n)
{
    unsigned best = 0;

    for (unsigned i = 1; i < n; i++)
        if (c[i].last_admit_ms < c[best].last_admit_ms)
            best = i;
    return (int)best;
}

/* A draw in proportion to w[i] (all > 0). */
static int draw(route_state_t *rng, const double *w, unsigned n)
{
    double total = 0, r;

    for (unsigned i = 0; i < n; i++)
        total += w[i];
    r = (double)(route_rand(rng) >> 11) / (double)(1ULL << 53) * total;
    for (unsigned i = 0; i < n; i++) {
        if (r < w[i])
            return (int)i;
        r -= w[i];
    }
    return (int)n - 1;
}

int policy_choose(void *arg, const shm_candidate_t *c, unsigned n)
{
    policy_ctx_t *ctx = arg;
    double w[SHM_ADMIT_MAX];
    unsigned best = 0;

    if (n == 0)
        return -1;
    switch (ctx->strategy) {
    case CFG_STRATEGY_WEIGHTED:
        for (unsigned i = 0; i < n; i++) {
            const cfg_deployment_t *d = ctx->cands[c[i].index].dep;
            w[i] = (double)(c[i].weight ? c[i].weight : 1) * (d->weight ? d->weight : 1);
        }
        return draw(ctx->rng, w, n);
    case CFG_STRATEGY_LATENCY:
        for (unsigned i = 0; i < n; i++)
            w[i] = 1.0 / ((double)c[i].ewma_total_ms + 1.0);
        return draw(ctx->rng, w, n);
    case CFG_STRATEGY_LEAST_INFLIGHT:
        for (unsigned i = 1; i < n; i++)
            if (c[i].inflight < c[best].inflight ||
                (c[i].inflight == c[best].inflight && c[i].last_admit_ms < c[best].last_admit_ms))
                best = i;
        return (int)best;
    case CFG_STRATEGY_ROUND_ROBIN:
    default:
        return oldest(c, n);
    }
}
