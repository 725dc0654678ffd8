/* route.h - from a client-facing model to the groups of (deployment, key) candidates to try.
 *
 * Failover order for one request, as groups:
 *   1. the model's deployments by priority tier (1 first): one group per tier, holding
 *      the keys of every deployment of that tier; a higher tier is tried only when no key
 *      of the lower tiers is admissible (or each was tried and failed);
 *   2. inside a group, deployments come in a random order weighted by their weight, each
 *      with its provider's keys in configured order; a key appears once per group;
 *   3. when the model's tiers are exhausted, its fallback models in order, breadth-first,
 *      each model visited once (cycles are harmless).
 * Keys this request already tried are left out (route_tried_t), and so are the
 * deployments and keys a filter excludes (route_filter_t): providers that do not speak the
 * client's API, and - for a request that names a stored object - every key but the one
 * that created it and the keys of its group. Which candidate of a group
 * is admitted is decided by the state plane's admission and the strategy (policy.h).
 *
 * Threads: a route_state_t belongs to one worker.
 */
#ifndef LLMGATE_ROUTE_H
#define LLMGATE_ROUTE_H

#include <stdint.h>

#include "config/config.h"

#define ROUTE_MAX_TRIED  64
#define ROUTE_MAX_GROUP  64 /* candidates per group (the store admits from up to 64) */
#define ROUTE_MAX_MODELS 32 /* models visited through fallbacks */

typedef struct route_state_s {
    uint64_t rng; /* xorshift state for the weighted deployment order */
} route_state_t;

typedef struct route_tried_s {
    const cfg_key_t *keys[ROUTE_MAX_TRIED];
    unsigned n;
} route_tried_t;

typedef struct route_cand_s {
    const cfg_model_t *model; /* the model (or fallback) this candidate serves */
    const cfg_deployment_t *dep;
    const cfg_key_t *key;
} route_cand_t;

/* Which candidates a request may use; NULL or a zeroed filter: all. */
typedef struct route_filter_s {
    unsigned apis;        /* bits 1u << cfg_api of the provider formats allowed; 0 = any */
    const char *provider; /* only this provider (by name), or NULL */
    const char *key;      /* only this key ... (NULL = any key) */
    const char *group;    /* ... and the keys of this group (NULL = the key alone) */
} route_filter_t;

int route_filter_provider(const route_filter_t *f, const cfg_provider_t *p);
int route_filter_key(const route_filter_t *f, const cfg_key_t *k);

/* Whether any deployment (fallbacks included) of model has a key the filter allows,
 * whatever its state: 0 means the request cannot be served by this configuration. */
int route_serves(const cfg_model_t *model, const route_filter_t *f);

/* A deployment that answered "model not found" is left out of every group, in every
 * worker, until until_ms (wall clock). Thread-safe. */
void route_mark_unavailable(const cfg_deployment_t *dep, int64_t until_ms);
int route_unavailable(const cfg_deployment_t *dep, int64_t now_ms);

void route_state_init(route_state_t *st, uint64_t seed);
uint64_t route_rand(route_state_t *st);

int route_tried_has(const route_tried_t *t, const cfg_key_t *k);
void route_tried_add(route_tried_t *t, const cfg_key_t *k);

/* Fill out (max entries) with the candidates of group number `group` (0 = first) of the
 * failover order for model, leaving out tried keys. Returns the number of candidates, or 0
 * when there is no such group. Groups left empty by tried keys are skipped, so the caller
 * walks group = 0, 1, 2, ... until 0 comes back. */
unsigned route_group(route_state_t *st, const cfg_model_t *model, const route_tried_t *tried,
                     const route_filter_t *f, unsigned group, route_cand_t *out, unsigned max);

#endif
