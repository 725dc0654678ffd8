/* policy.h - which admissible key of a group gets the request (the strategy).
 *
 * policy_choose() is the state plane's shm_choose_cb: it runs inside the admission write
 * transaction, so it sees every worker's and every process's latest counts and must be
 * quick. Strategies (policy.strategy in the config):
 *   round_robin     the key admitted longest ago (exact across workers and processes,
 *                   since the last admission time lives in the store);
 *   weighted        at random, in proportion to key weight x deployment weight;
 *   least_inflight  the fewest requests in flight, then the one admitted longest ago;
 *   latency         at random, in proportion to 1 / (recent mean total latency + 1 ms).
 */
#ifndef LLMGATE_POLICY_H
#define LLMGATE_POLICY_H

#include "config/config.h"
#include "server/policy/route.h"
#include "shm/shm.h"

typedef struct policy_ctx_s {
    enum cfg_strategy strategy;
    route_state_t *rng;
    const route_cand_t *cands; /* the group, indexed like the admission's names */
} policy_ctx_t;

int policy_choose(void *arg, const shm_candidate_t *cands, unsigned n);

#endif
