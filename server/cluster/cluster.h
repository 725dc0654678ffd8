/* cluster.h - several hosts, one set of limits: the cluster mode's face to the rest of the server.
 *
 * Design note
 * -----------
 * With a cluster: section every limit of every key and client key is shared by the hosts that
 * name the same Redis (see README "Several hosts"). The local store stays the truth admission
 * reads (shm_lease.h); this module keeps it supplied, on the main thread's loop:
 *   - two Redis connections (rconn.h): one for commands, one subscribed to PREFIX:events;
 *   - the lease manager (lease.h), ticking every 50 ms;
 *   - key status shared both ways (status.h), every 250 ms;
 *   - the store's client keys shared both ways (clients.h), every 250 ms;
 *   - a heartbeat every second: PREFIX:nodes gets the node id, PREFIX:node:<id> its mode, pid,
 *     grants held, unused units, refills and their round trip (EXPIRE 30 s): what
 *     `llmgatectl cluster` shows;
 *   - PREFIX:epoch, a random id set by the first node: a different one later means Redis lost
 *     its state, and every node reconciles (lease.h).
 * Mode: "connecting" until the first connection is up or has failed, then "leased" while the
 * command connection is up and "degraded" while it is not (each host admits floor(limit x
 * safe_share) of every limit on its own, and says so in /health/full and the metrics).
 * Redis is never waited for on a request's path.
 *
 * Threads: cluster_start, cluster_reload, cluster_stop on the main loop's thread;
 * cluster_get from any thread.
 */
#ifndef LLMGATE_CLUSTER_H
#define LLMGATE_CLUSTER_H

#include "config/config.h"
#include "shm/shm.h"

#include <stdint.h>
#include <uv.h>

enum cluster_mode {
    CLUSTER_OFF = 0, /* no cluster: section */
    CLUSTER_CONNECTING,
    CLUSTER_LEASED,
    CLUSTER_DEGRADED,
};

typedef struct cluster_info_s {
    int mode; /* enum cluster_mode */
    int redis_up;
    char node[64];
    int64_t last_contact_ms; /* wall ms of the last reply from Redis, 0 = never */
    int64_t degraded_since_ms;
    uint64_t grants, units;      /* held now */
    uint64_t roundtrips;         /* commands sent to Redis */
    uint64_t refills, refill_us; /* grants received, sum of their round trips */
    uint64_t refill_p50_us, refill_max_us;
    uint64_t published, applied; /* key status and store client changes sent / taken from
                                    other nodes */
} cluster_info_t;

/* Start when cfg has a cluster section (else 0 and nothing). cfg must stay valid until the
 * next cluster_reload or cluster_stop. 0, or -1 (out of memory). */
int cluster_start(uv_loop_t *loop, shm_t *shm, const cfg_t *cfg);

/* A reloaded configuration. The Redis address, node id and prefix are those of the start (a
 * change of them needs a restart: logged); limits, lease_ms, shares follow cfg. */
void cluster_reload(const cfg_t *cfg);

/* Give every grant back (waiting for Redis up to timeout_ms), close the connections, then
 * call done(arg) on the loop. Without a cluster, done runs at once. */
void cluster_stop(void (*done)(void *arg), void *arg);

/* "off", "connecting", "leased", "degraded". */
const char *cluster_mode_name(int mode);

/* A copy of the current figures; mode CLUSTER_OFF without a cluster. Any thread. */
void cluster_get(cluster_info_t *out);

#endif
