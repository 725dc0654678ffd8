/* lease.h - the lease manager: keeps this host's grants of every shared limit ahead of need.
 *
 * Design note
 * -----------
 * Every key and client key with a limit is an entity (the configuration's, and the store's
 * active clients whose budget record is flagged SHM_CF_CLUSTER: clients.h; lease_reconfigure
 * reads them from the store); each of its limits a dimension
 * (shm_lease.h). Redis holds, per entity and dimension, the grants of every host (a sorted set
 * of grant ids by the time until which each counts, and a hash of their amounts); one Lua
 * script (LEASE_SCRIPT in lease.c) drops the grants that no longer count, settles the ones a
 * host gives back, and grants at most limit - (the amounts still counted) more. A grant
 * counts until Redis' now + lease_ms + 62 s for a rolling minute (every admission made from it,
 * at most lease_ms after it was asked for, is counted for at least its 60 s), until the end of
 * the UTC day or month (plus 2 s) for a day or month budget. So the amounts every host may
 * admit from never add up to more than the limit in any 60 s, day or month, whatever the hosts
 * do: a host that dies leaves its grants counted until they end (under-admission, never
 * over-admission).
 *
 * lease_tick (every 50 ms on the main loop) reads the leases database once and, per entity:
 *  - gives back what is over: a grant whose lease_ms has passed is settled in Redis at what
 *    was used of it (0: removed) and its slot freed;
 *  - asks for more before it runs out: when the unused units would last less than a quarter
 *    of lease_ms at the recent rate (or an admission found none: starved), a grant of about
 *    1.5 x the rate x lease_ms, at least 1 and at most ceil(limit / (2 x expected_nodes)) (or
 *    the largest cost refused, which may be more), one request per dimension at a time. An
 *    entity idle for 60 s holds no grant; its next request waits for one (one round trip);
 *  - sets the mode of its record: LEASED while Redis is up, DEGRADED (safe_share of every
 *    limit, locally) while it is not;
 *  - reconciles when Redis is back: what was admitted while degraded is added to Redis as
 *    used grants; if Redis lost its state (its epoch changed, or the record's grants belong to
 *    another epoch) the record's grants are dropped and the entity's local usage of the
 *    window, day and month is added instead; then the node admits on the safe share until
 *    every expected node has reconciled too (or lease_ms + 62 s), so that no node is granted
 *    what another admitted before the loss.
 *
 * Nothing here is on a request's path: admission only reads the record (shm_admit.c).
 *
 * Threads: the main loop's.
 */
#ifndef LLMGATE_LEASE_H
#define LLMGATE_LEASE_H

#include "config/config.h"
#include "server/cluster/rconn.h"
#include "shm/shm.h"

#include <stdint.h>

typedef struct lease_mgr_s lease_mgr_t;

typedef struct lease_stats_s {
    uint64_t grants;    /* grants held now */
    uint64_t units;     /* unused units held now, all dimensions */
    uint64_t refills;   /* grants received */
    uint64_t refill_us; /* sum of their round trips */
    uint64_t refill_max_us;
    uint64_t refill_p50_us; /* of the last 64 */
    int holding;            /* admitting on the safe share after a reconcile (see lease.c) */
} lease_stats_t;

/* cfg must stay valid until lease_reconfigure or lease_free. NULL on out of memory. */
lease_mgr_t *lease_new(shm_t *shm, const cfg_t *cfg, rconn_t *redis);

/* A new configuration (after a reload), or a change of the store's clients: entities and
 * limits as cfg and the store say. */
int lease_reconfigure(lease_mgr_t *m, const cfg_t *cfg);

/* Redis is usable (up 1, epoch: a hash of PREFIX:epoch) or not (0). degraded 1: admit on
 * the safe share (Redis has been unreachable for long enough). */
void lease_set_redis(lease_mgr_t *m, int up, uint64_t epoch, int degraded);

/* The periodic work (see above). */
void lease_tick(lease_mgr_t *m);

/* 1 while it admits on the safe share after a reconcile. */
int lease_holding(const lease_mgr_t *m);

/* Give every grant back (shutdown: no admission follows). Returns how many returns were
 * sent; lease_pending() counts the replies still awaited. */
unsigned lease_return_all(lease_mgr_t *m);
unsigned lease_pending(const lease_mgr_t *m);

void lease_stats(const lease_mgr_t *m, lease_stats_t *out);

/* After every pending reply has come (or rconn_close made them fail). */
void lease_free(lease_mgr_t *m);

#endif
