/* clients.h - store clients (shm_cdef.h) shared by every host of a cluster: one added,
 * changed, rotated or revoked on a host with `llmgatectl client ...` is obeyed by the others
 * in ~1 s.
 *
 * Design note
 * -----------
 * clients_tick (every 250 ms, next to status_tick) exports the store's definitions
 * (shm_cdef_export) and publishes each whose updated_ms, status or digests changed since it
 * last saw them (or took them from the others) on PREFIX:events and into the hash
 * PREFIX:clients (field = the client's name), in the text of clients_msg.h: SHA-256 digests
 * of keys, never a key (no server has one). A host that hears one from another node merges it
 * into its own (shm_cdef_adopt: the newer by updated_ms, then a deterministic tie-break,
 * shm_cdef_newer; but the later rotation's keys and a revoke from either side, shm_cdef_merge)
 * and notes what it heard as seen, so it is not sent back (a merge that differs from both is
 * sent at the next tick, and the hosts converge on it); when the command
 * connection comes up it reads the whole hash (a host that joins later, or was away). A
 * definition refused (a configuration client of that name here, a digest another client
 * holds here) is logged once per change and left alone.
 * Budgets: each store client with a limit has its budget record flagged SHM_CF_CLUSTER, so
 * admission takes its requests, tokens and cost from leases of the cluster-wide limit (as
 * for configuration clients, lease.h): at start (clients_new), on adoption, and at each tick
 * for a client this host's CLI added. The lease manager is told of the store clients'
 * limits whenever they change (lease_reconfigure). A client added here admits without a lease
 * until the next tick marks it (<= 250 ms): at most its limit on this host in that time.
 *
 * Threads: the main loop's.
 */
#ifndef LLMGATE_CLIENTS_H
#define LLMGATE_CLIENTS_H

#include "config/config.h"
#include "server/cluster/lease.h"
#include "server/cluster/rconn.h"
#include "shm/shm.h"

#include <stddef.h>
#include <stdint.h>

typedef struct clients_s clients_t;

/* cfg must stay valid until clients_reconfigure / clients_free; lease may be NULL. Marks the
 * store clients' budget records SHM_CF_CLUSTER. NULL on out of memory. */
clients_t *clients_new(shm_t *shm, const cfg_t *cfg, rconn_t *redis, lease_mgr_t *lease);
void clients_reconfigure(clients_t *c, const cfg_t *cfg);

/* Publish the definitions that changed since the last tick (while Redis is up). */
void clients_tick(clients_t *c);

/* 1 if payload is a client definition message (CLIENTS_MSG_PREFIX), which it then handles;
 * 0 otherwise (a key status message, for status_on_message). */
int clients_on_message(clients_t *c, const char *payload, size_t len);

/* The connection is up: catch up from PREFIX:clients. */
void clients_on_up(clients_t *c);

/* Definitions published / taken from other nodes. */
void clients_counts(const clients_t *c, uint64_t *published, uint64_t *applied);

void clients_free(clients_t *c);

#endif
