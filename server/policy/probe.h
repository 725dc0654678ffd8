/* probe.h - active health probes, from the main thread's loop.
 *
 * Every policy.probe_interval_ms (0 = off) the prober sends GET <base_url>/models with:
 *   - every key that is cooling or depleted (never invalid, disabled or orphaned keys):
 *     a 2xx ends a depletion early (the key is active again); 401/403 marks it invalid;
 *     other answers are recorded as the key's failures;
 *   - one key of every provider whose circuit is open: a 2xx closes the circuit.
 * A probe is recorded in the store like a request of that key (it counts in the key's
 * totals), one probe per key at a time. Probes use their own keep-alive pool.
 */
#ifndef LLMGATE_PROBE_H
#define LLMGATE_PROBE_H

#include <uv.h>

#include "server/common/cfgref.h"
#include "shm/shm.h"

typedef struct prober_s prober_t;

/* current(arg) returns the configuration to probe with (a new reference each call). */
int probe_start(prober_t **out, uv_loop_t *loop, shm_t *shm, cfg_ref_t *(*current)(void *arg),
                void *arg);

/* Stop: in-flight probes are cancelled; handles close on the loop's next turns. */
void probe_stop(prober_t *p);

#endif
