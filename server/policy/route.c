/* route.c - failover groups: model tiers, weighted deployment order, fallbacks. */
#include "server/policy/route.h"

#include <pthread.h>
#include <string.h>
#include <stdatomic.h>
#include <time.h>

/* Few deployments are ever marked: a small table, a lock only when it is not empty. */
#define UNAVAIL_MAX 64
static struct {
    const cfg_deployment_t *dep;
    int64_t until_ms;
} unavail[UNAVAIL_MAX];
static atomic_int unavail_n;
static pthread_mutex_t unavail_lock = PTHREAD_MUTEX_INITIALIZER;

void route_mark_unavailable(const cfg_deployment_t *dep, int64_t until_ms)
{
    int n, i;

    pthread_mutex_lock(&unavail_lock);
    n = atomic_load(&unavail_n);
    for (i = 0; i < n && unavail[i].dep != dep; i++)
        ;
    if (i == n && n < UNAVAIL_MAX)
        atomic_store(&unavail_n, ++n);
    if (i < n) {
        unavail[i].dep = dep;
        unavail[i].until_ms = until_ms;
    }
    pthread_mutex_unlock(&unavail_lock);
}

int route_unavailable(const cfg_deployment_t *dep, int64_t now_ms)
{
    int hit = 0;

    if (atomic_load(&unavail_n) == 0)
        return 0;
    pthread_mutex_lock(&unavail_lock);
    for (int i = 0; i < atomic_load(&unavail_n); i++)
        if (unavail[i].dep == dep && unavail[i].until_ms > now_ms)
            hit = 1;
    pthread_mutex_unlock(&unavail_lock);
    return hit;
}

static int64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void route_state_init(route_state_t *st, uint64_t seed)
{
    st->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

uint64_t route_rand(route_state_t *st)
{
    uint64_t x = st->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st->rng = x;
    return x;
}

int route_tried_has(const route_tried_t *t, const cfg_key_t *k)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->keys[i] == k)
            return 1;
    return 0;
}

void route_tried_add(route_tried_t *t, const cfg_key_t *k)
{
    if (t->n < ROUTE_MAX_TRIED && !route_tried_has(t, k))
        t->keys[t->n++] = k;
}

static int cands_have(const route_cand_t *c, unsigned n, const cfg_key_t *k)
{
    for (unsigned i = 0; i < n; i++)
        if (c[i].key == k)
            return 1;
    return 0;
}

/* The candidates of one tier of one model, deployments in weighted random order. */
static unsigned tier_cands(route_state_t *st, const cfg_model_t *m, uint32_t tier,
                           const route_tried_t *tried, const route_filter_t *f, route_cand_t *out,
                           unsigned max)
{
    const cfg_deployment_t *deps[64];
    const cfg_provider_t *added[64]; /* providers whose keys are in out already */
    uint64_t weights[64];
    unsigned nd = 0, n = 0, nadded = 0;

    int64_t now = atomic_load(&unavail_n) ? now_wall_ms() : 0;

    for (unsigned i = 0; i < m->deployments_count && nd < 64; i++) {
        if (m->deployments[i].priority == tier && !route_unavailable(&m->deployments[i], now) &&
            route_filter_provider(f, m->deployments[i].provider_ref)) {
            deps[nd] = &m->deployments[i];
            weights[nd++] = m->deployments[i].weight ? m->deployments[i].weight : 1;
        }
    }
    /* Weighted order without replacement: draw one deployment at a time. */
    while (nd > 0) {
        uint64_t total = 0, r;
        unsigned pick = 0;

        for (unsigned i = 0; i < nd; i++)
            total += weights[i];
        r = route_rand(st) % total;
        while (r >= weights[pick]) {
            r -= weights[pick];
            pick++;
        }
        /* Two deployments of one provider share its keys: only then can a key be in out
         * already (a provider's keys are distinct, and the check is quadratic). */
        const cfg_provider_t *prov = deps[pick]->provider_ref;
        int again = 0;
        for (unsigned a = 0; a < nadded; a++)
            again |= added[a] == prov;
        if (!again)
            added[nadded++] = prov;
        for (unsigned k = 0; k < prov->keys_count && n < max; k++) {
            const cfg_key_t *key = &prov->keys[k];
            if ((tried->n && route_tried_has(tried, key)) || (again && cands_have(out, n, key)) ||
                !route_filter_key(f, key))
                continue;
            out[n].model = m;
            out[n].dep = deps[pick];
            out[n].key = key;
            n++;
        }
        deps[pick] = deps[nd - 1];
        weights[pick] = weights[nd - 1];
        nd--;
    }
    return n;
}

unsigned route_group(route_state_t *st, const cfg_model_t *model, const route_tried_t *tried,
                     const route_filter_t *f, unsigned group, route_cand_t *out, unsigned max)
{
    const cfg_model_t *visit[ROUTE_MAX_MODELS];
    unsigned nvisit = 0, head = 0, seen_groups = 0;

    visit[nvisit++] = model;
    while (head < nvisit) {
        const cfg_model_t *m = visit[head++];
        uint32_t tier = 0;

        for (;;) {
            uint32_t next = UINT32_MAX;
            unsigned n;

            for (unsigned i = 0; i < m->deployments_count; i++)
                if (m->deployments[i].priority > tier && m->deployments[i].priority < next)
                    next = m->deployments[i].priority;
            if (next == UINT32_MAX)
                break;
            tier = next;
            n = tier_cands(st, m, tier, tried, f, out, max);
            if (n == 0)
                continue;
            if (seen_groups++ == group)
                return n;
        }
        for (unsigned i = 0; i < m->fallbacks_count && nvisit < ROUTE_MAX_MODELS; i++) {
            const cfg_model_t *f = m->fallback_refs[i];
            int seen = 0;
            for (unsigned j = 0; j < nvisit; j++)
                seen |= visit[j] == f;
            if (!seen)
                visit[nvisit++] = f;
        }
    }
    return 0;
}

int route_filter_provider(const route_filter_t *f, const cfg_provider_t *p)
{
    if (!f)
        return 1;
    if (f->apis && !(f->apis & (1u << p->api)))
        return 0;
    return !f->provider || strcmp(f->provider, p->name) == 0;
}

int route_filter_key(const route_filter_t *f, const cfg_key_t *k)
{
    if (!f || !f->key)
        return 1;
    if (strcmp(f->key, k->name) == 0)
        return 1;
    return f->group && k->group && strcmp(f->group, k->group) == 0;
}

int route_serves(const cfg_model_t *model, const route_filter_t *f)
{
    const cfg_model_t *visit[ROUTE_MAX_MODELS];
    unsigned nvisit = 0, head = 0;

    visit[nvisit++] = model;
    while (head < nvisit) {
        const cfg_model_t *m = visit[head++];
        for (unsigned i = 0; i < m->deployments_count; i++) {
            const cfg_provider_t *p = m->deployments[i].provider_ref;
            if (!route_filter_provider(f, p))
                continue;
            for (unsigned k = 0; k < p->keys_count; k++)
                if (route_filter_key(f, &p->keys[k]))
                    return 1;
        }
        for (unsigned i = 0; i < m->fallbacks_count && nvisit < ROUTE_MAX_MODELS; i++) {
            const cfg_model_t *fb = m->fallback_refs[i];
            int seen = 0;
            for (unsigned j = 0; j < nvisit; j++)
                seen |= visit[j] == fb;
            if (!seen)
                visit[nvisit++] = fb;
        }
    }
    return 0;
}
