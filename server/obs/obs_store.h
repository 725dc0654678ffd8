/* obs_store.h - the shared store's side of /metrics and /health/full (part of obs.h).
 *
 * Each call reads one snapshot of every key and provider (shm_snapshot, shm_providers) and
 * answers from it; nothing is kept between calls. Key states are the ones llmgatectl shows
 * (a COOLING key whose cooldown has passed is half_open). The readiness rules are in obs.h.
 * Any thread; cfg must stay valid during the call (hold a reference).
 */
#ifndef LLMGATE_OBS_STORE_H
#define LLMGATE_OBS_STORE_H

#include "config/config.h"
#include "server/common/buf.h"
#include "shm/shm.h"

/* The readiness JSON of cfg's models into out; returns 200 or 503. */
int obs_store_readiness(const cfg_t *cfg, shm_t *shm, buf_t *out);

/* llmgate_store_up, then (if the store could be read) llmgate_key_*, llmgate_provider_*
 * llmgate_model_* and the client families (obs_clients.h) into out. 0, or -1 if memory ran
 * out. */
int obs_store_metrics(const cfg_t *cfg, shm_t *shm, buf_t *out);

#endif
