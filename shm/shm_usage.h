/* shm_usage.h - what each client used, by UTC day and model: the store's billing record.
 *
 * Design note
 * -----------
 * Every recorded outcome that a client's request was served with (success, a client error,
 * a stream the client left: the classes that keep the client's reservation spent, see
 * "Clients" in shm.h) adds to one row of the "client_usage" database, in the same
 * transaction that settles the client's budgets: requests, prompt and completion tokens and
 * cost, under (client, UTC day of the recording, client-facing model). A retried attempt
 * that the upstream did not serve adds nothing, so a request is one row count however many
 * attempts it took, as in the access log. Of those, the ones answered with the provider's
 * error (SHM_CL_OTHER: a 4xx passed on) are also counted as errors. A request refused by the
 * client's own limits (SHM_ECLIENT_BUDGET, the gateway's 429) is counted as refused by the
 * admission that refused it (which then commits that count). Requests that failed in the
 * gateway (every attempt failed, no capacity) are not in the store: see the access log and
 * the metrics. No per-request rows: a row per client, model and day, whatever the traffic.
 *
 * Key: client name, a NUL, the UTC day index (days since the epoch) as a big-endian uint32,
 * then the model name (at most SHM_NAME_MAX bytes, "" when the admission named none). So a
 * client's rows are one range, in day order. Value: shm_urec_t (fixed layout, versioned).
 *
 * Retention: rows older than the caller's bound are removed by shm_usage_prune (the server
 * keeps SHM_USAGE_KEEP_DAYS, once a day from its maintenance).
 *
 * Schema: an addition like "leases" (see shm_obj.h); a read-only open of a store without it
 * sees no usage. Threads: any; one transaction per call.
 */
#ifndef LLMGATE_SHM_USAGE_H
#define LLMGATE_SHM_USAGE_H

#include <stdint.h>

#include "shm/shm.h"

#define SHM_USAGE_KEEP_DAYS 400 /* a year and a month: last year's same month stays */

/* The UTC day index of wall-clock ms, as the rows are keyed. */
static inline int64_t shm_usage_day(int64_t ms)
{
    return ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
}

typedef struct shm_usage_row_s {
    char client[SHM_NAME_MAX + 1];
    char model[SHM_NAME_MAX + 1];
    int64_t day; /* UTC day index: wall-clock ms / 86400000 */
    uint64_t requests, prompt_tokens, completion_tokens, cost_micro_usd;
    uint64_t errors;  /* of requests: answered with the provider's error (a 4xx passed on) */
    uint64_t refused; /* not among requests: refused (429) by the client's own limits */
} shm_usage_row_t;

/* The rows of client (NULL: every client) with from_day <= day <= to_day, sorted by client,
 * day, model, in one read transaction; free *out with shm_snapshot_free (*n may be 0).
 * 0, SHM_EINVAL, SHM_ENOMEM, SHM_ECORRUPT. */
int shm_usage(shm_t *s, const char *client, int64_t from_day, int64_t to_day, shm_usage_row_t **out,
              unsigned *n);

/* Remove the rows of days before before_day. *pruned (may be NULL) = how many.
 * 0, SHM_ERDONLY, SHM_EFULL. */
int shm_usage_prune(shm_t *s, int64_t before_day, unsigned *pruned);

#endif
