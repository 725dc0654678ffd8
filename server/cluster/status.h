/* status.h - key status and provider circuits shared by every host: a change on one reaches
 * the others in ~1 s.
 *
 * Design note
 * -----------
 * What moves a key between ACTIVE, COOLING (with its deadline), DISABLED, INVALID and
 * DEPLETED - an upstream's answer, the key policy, an llmgatectl action on this host's state
 * dir - and what opens or closes a provider's circuit (the breaker, a probe) is written to the
 * local store by whoever did it. status_tick (every 250 ms) compares the keys and providers of
 * the store with what it last saw or took from the others and publishes each change on
 * PREFIX:events and into the hash PREFIX:status (for hosts that join later or were away; the
 * field is the message's first word):
 *     <key> <status> <reason> <since_ms> <until_ms> <node>
 *     circuit:<provider> <closed|open> <reason> <since_ms> <until_ms> <node>
 * A host that hears a change from another node takes it when it is newer than its own
 * (shm_key_adopt, shm_provider_adopt: a later since_ms, or the same change with a later
 * until_ms) and notes it as seen, so it is never sent back. The state a record was created
 * with (a key active since its creation, a circuit closed for no reason) is nobody's news: not
 * published, and older than anything heard, so a host that joins later takes what the others
 * decided before. HALF_OPEN is each host's own: a host probes a key whose cooldown ended, or
 * lets a request through a circuit whose time is up, by itself, and what that finds (ACTIVE
 * or COOLING again; the circuit closed or open again) is shared. A circuit of a provider this
 * host's config does not have is ignored. Hosts' wall clocks are compared: keep them in step
 * (NTP).
 *
 * Threads: the main loop's.
 */
#ifndef LLMGATE_STATUS_H
#define LLMGATE_STATUS_H

#include "config/config.h"
#include "server/cluster/rconn.h"
#include "shm/shm.h"

#include <stddef.h>
#include <stdint.h>

typedef struct status_s status_t;

/* cfg must stay valid until status_reconfigure / status_free. NULL on out of memory. */
status_t *status_new(shm_t *shm, const cfg_t *cfg, rconn_t *redis);
void status_reconfigure(status_t *st, const cfg_t *cfg);

/* Publish what changed in the store since the last tick (while Redis is up). */
void status_tick(status_t *st);

/* A message from PREFIX:events; and, when the connection comes up, a catch-up from
 * PREFIX:status. */
void status_on_message(status_t *st, const char *payload, size_t len);
void status_on_up(status_t *st);

/* Changes published / taken from other nodes. */
void status_counts(const status_t *st, uint64_t *published, uint64_t *applied);

void status_free(status_t *st);

#endif
