/* obs_clients.h - the client keys' side of /metrics (part of obs.h): what each client has
 * used of its budgets and in all, read from the store at each scrape.
 *
 * Clients are the configuration's and the store's (shm/shm_cdef.h), both in the store's
 * "clients" records, so every process of a state dir reports the same figures; the *_today
 * gauges sum the client's usage rows of the UTC day (shm/shm_usage.h). Families:
 *   llmgate_client_info{client,source,status}           gauge 1 (source config|store;
 *                                                        status active|expired|revoked|orphaned)
 *   llmgate_client_requests_total{client}               counter (admitted requests)
 *   llmgate_client_tokens_total{client,type}            counter (prompt, completion)
 *   llmgate_client_cost_usd_total{client}               counter
 *   llmgate_client_errors_today{client}                 gauge   (the provider's 4xx passed on)
 *   llmgate_client_refused_today{client}                gauge   (429 by its own limits)
 *   llmgate_client_budget_used{client,budget}           gauge   (rpm, rpd, tokens_day,
 *   llmgate_client_budget_limit{client,budget}          gauge    tokens_month, cost_day_usd,
 *                                                                cost_month_usd; limited only)
 *   llmgate_clients_omitted                             gauge
 * Cardinality is bounded: revoked and orphaned clients get only their info series, and at
 * most OBS_CLIENTS_MAX clients are reported, the most recently admitted first; the rest are
 * counted in llmgate_clients_omitted. Label values are client names (the store's names:
 * [A-Za-z0-9._-]), never a key.
 *
 * Any thread.
 */
#ifndef LLMGATE_OBS_CLIENTS_H
#define LLMGATE_OBS_CLIENTS_H

#include "server/common/buf.h"
#include "shm/shm.h"

#define OBS_CLIENTS_MAX 1000

/* The families above into out, as of now_ms. 0, SHM_ENOMEM (out of memory: discard out), or
 * another SHM_E* code when the store could not be read (nothing written then). */
int obs_clients_metrics(shm_t *shm, int64_t now_ms, buf_t *out);

#endif
