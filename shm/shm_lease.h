/* shm_lease.h - leases: the slices of a cluster-wide budget this host may admit from.
 *
 * Design note
 * -----------
 * With the cluster mode (server/cluster/cluster.h) several hosts share every limit of a key
 * or client key. Redis holds the global budget; each host takes slices of it ("grants") and
 * keeps them here, in the "leases" database, one record per leased entity (a key or a client
 * marked cluster by shm_keys_sync / shm_clients_sync: SHM_KF_CLUSTER / SHM_CF_CLUSTER). The
 * admission transaction (shm_admit.c) then admits such an entity only when, besides its own
 * limits, its lease allows it:
 *
 *   SHM_LM_LEASED    for every dimension with a limit, the grants whose until_ms is still
 *                    ahead hold at least the request's cost unused; admission takes it from
 *                    them (soonest until_ms first) and counts it as used;
 *   SHM_LM_DEGRADED  (Redis unreachable) for every dimension with a limit, the entity's own
 *                    local usage (its window, day or month, as the key or client record
 *                    counts it) plus the cost stays within floor(limit * share_ppm / 1e6);
 *                    the cost is added to deg_used, which the lease manager reports to
 *                    Redis when it is back.
 *
 * Otherwise the candidate is skipped with SHM_SKIP_LEASE, starved_ms is stamped (the lease
 * manager refills starved entities first) and the retry time is SHM_LEASE_RETRY_MS ahead
 * (leased) or one second (degraded). An entity marked cluster without a lease record is never
 * admitted: nothing is admitted before the lease manager has made the record.
 *
 * A grant is used for what admission reserved: a refunded request (released with refund, or
 * an upstream failure that refunds the client) does not give its units back to the grant, and
 * tokens above a request's estimate are not taken from it (the local window still reconciles
 * them); both only under-admit.
 *
 * Everything else - when to ask for grants, how big, reporting and expiring them, the mode -
 * is the lease manager's: it edits records with shm_lease_edit and shm_lease_each. Records
 * are fixed layouts (shm_lease_t is stored as is, with a version and size checked before use).
 *
 * Threads: as every shm_ call (any thread); the callbacks run inside a write transaction: they
 * must be quick, must not call shm_ functions, and may run more than once (the transaction is
 * re-run from its inputs when the map grows), so they must recompute their outputs each run.
 */
#ifndef LLMGATE_SHM_LEASE_H
#define LLMGATE_SHM_LEASE_H

#include "shm/shm.h"

#include <stdint.h>

#define SHM_LEASE_SLOTS    4  /* grants held at once per dimension */
#define SHM_LEASE_RETRY_MS 50 /* a request refused for want of a grant tries again after this */
#define SHM_LEASE_VERSION  1

/* What is leased. Keys use RPM, TPM, RPD; clients RPM, RPD and the day / month budgets. */
enum shm_lease_dim {
    SHM_LD_RPM = 0,    /* requests in any 60 s */
    SHM_LD_TPM,        /* tokens in any 60 s (the admission's estimate) */
    SHM_LD_RPD,        /* requests per day */
    SHM_LD_TOK_DAY,    /* client tokens per UTC day */
    SHM_LD_TOK_MONTH,  /* client tokens per UTC month */
    SHM_LD_COST_DAY,   /* client micro-USD per UTC day */
    SHM_LD_COST_MONTH, /* client micro-USD per UTC month */
    SHM_LD_COUNT
};

enum shm_lease_kind {
    SHM_LK_KEY = 1,    /* an upstream key */
    SHM_LK_CLIENT = 2, /* a client key */
};

enum shm_lease_mode {
    SHM_LM_LEASED = 0,   /* admit from grants */
    SHM_LM_DEGRADED = 1, /* admit within the safe share of the limits */
};

typedef struct shm_grant_s {
    uint64_t id;      /* the lease manager's; 0 = a free slot */
    uint64_t granted; /* units */
    uint64_t used;    /* units admitted from it */
    int64_t until_ms; /* wall clock: usable while now < until_ms */
} shm_grant_t;

/* A lease record, stored as is (64-bit aligned fields, no pointers). */
typedef struct shm_lease_s {
    uint32_t version, size; /* SHM_LEASE_VERSION, sizeof(shm_lease_t) */
    uint32_t kind;          /* enum shm_lease_kind */
    uint32_t mode;          /* enum shm_lease_mode */
    uint32_t share_ppm;     /* degraded: parts per million of every limit */
    uint32_t pad;
    char name[SHM_NAME_MAX + 1];
    int64_t starved_ms; /* last admission refused for want of a grant (0: never) */
    int64_t updated_ms;
    uint64_t epoch; /* the lease manager's: which state of Redis the grants belong to */
    uint64_t deg_used[SHM_LD_COUNT]; /* admitted while degraded, not yet reported */
    uint64_t want[SHM_LD_COUNT];     /* the largest cost refused for want of a grant since the
                                      * lease manager last reset it */
    shm_grant_t g[SHM_LD_COUNT][SHM_LEASE_SLOTS];
} shm_lease_t;

/* Units left of dimension d at now_ms: the sum of granted - used over grants still usable. */
uint64_t shm_lease_avail(const shm_lease_t *l, int d, int64_t now_ms);

/* A copy of the lease of (kind, name). Returns 0, SHM_ENOTFOUND, SHM_EINVAL, SHM_ECORRUPT. */
int shm_lease_get(shm_t *s, int kind, const char *name, shm_lease_t *out);

/* Every lease record in one read transaction, by kind then name; free *out with
 * shm_snapshot_free; *n may be 0. Returns 0, SHM_ENOMEM, SHM_ECORRUPT. */
int shm_leases(shm_t *s, shm_lease_t **out, unsigned *n);

/* Edit the lease of (kind, name) in one write transaction. fn gets the record (a zeroed one
 * with kind and name set when there is none: *exists 0) and returns 1 to put it, 0 to leave the
 * store as it was, -1 to delete the record, or an SHM_E* code to give up (returned). Returns 0,
 * SHM_EINVAL, SHM_ERDONLY, SHM_EFULL, SHM_ECORRUPT, or fn's code. */
typedef int (*shm_lease_edit_fn)(shm_lease_t *l, int exists, int64_t now_ms, void *arg);
int shm_lease_edit(shm_t *s, int kind, const char *name, int64_t now_ms, shm_lease_edit_fn fn,
                   void *arg);

/* Every lease record in one write transaction: fn(NULL, ...) first (a (re)start: reset what the
 * callback collects), then fn on each record, in key order, returning 1 (put), 0 (as it was)
 * or a code to give up (-1, delete, is refused: SHM_EINVAL). Returns 0 or a code (then
 * nothing was written). */
int shm_lease_each(shm_t *s, int64_t now_ms, shm_lease_edit_fn fn, void *arg);

/* ---- inside the admission transaction (shm_admit.c, shm_client.c) ----------------------- */

/* What admission asks of one entity: for each dimension its limit (0 = not leased), the
 * entity's local usage (degraded mode) and the cost of this request. */
typedef struct shm_lease_ask_s {
    uint64_t limit[SHM_LD_COUNT];
    uint64_t used[SHM_LD_COUNT];
    uint64_t cost[SHM_LD_COUNT];
} shm_lease_ask_t;

#endif
