/* shm_int.h - shm/ internals: the shm_t, stored record layouts, shared helpers.
 *
 * Stored records are fixed-layout structs with a version and a size field, explicit
 * widths and no pointers. LMDB hands out values only 2-byte aligned, so a record is never
 * read through a struct pointer into the map: it is memcpy'd into a local struct before use
 * (shm__get_*), or, on the admission path, only the fields it needs are (shm_admit.c).
 * Changing a layout means a new SHM_SCHEMA_VERSION (and a migration), never a silent
 * reinterpretation.
 *
 * Nothing of a record is read before shm__rec_check() has passed it: its length, version and
 * size fields, a NUL inside every name field, a ring's head and count inside the ring. A
 * record that fails is corrupt: it is not read, not skipped and not overwritten; the
 * operation fails with SHM_ECORRUPT and the record is noted for shm_store_corrupt().
 */
#ifndef LLMGATE_SHM_INT_H
#define LLMGATE_SHM_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <sys/types.h>

#include "shm/shm.h"
#include "shm/shm_lease.h"
#include "shm/shm_obj.h"
#include "shm/shm_stats.h"
#include "shm/shm_window.h"

#define SHM_KREC_VERSION 2
#define SHM_LREC_VERSION 1
#define SHM_HREC_VERSION 1
#define SHM_PREC_VERSION 2
#define SHM_OREC_VERSION 1
#define SHM_CREC_VERSION 1
#define SHM_JREC_VERSION 1

#define SHM_KF_ORPHANED 1u
#define SHM_KF_CLUSTER  2u /* admitted from leases (shm_lease.h) */

typedef struct shm_krec_s {
    uint32_t version, size;
    char name[SHM_NAME_MAX + 1];
    char provider[SHM_NAME_MAX + 1];
    char fingerprint[SHM_FP_MAX + 1];
    uint32_t rpm, rpd, tpm, max_inflight, weight;
    int32_t day_offset_s;
    uint32_t flags;
    uint16_t status, reason;
    int64_t status_since_ms, cooldown_until_ms;
    int64_t clock_ms; /* key clock: highest now_ms seen (after re-bases) */
    int64_t day;      /* day index of day_count */
    uint32_t day_count;
    uint32_t consec_fail, consec_succ;
    uint32_t ewma_total_ms, ewma_ttfb_ms;
    int32_t last_error_code;
    int64_t last_error_ms, last_admit_ms, created_ms, updated_ms;
    uint64_t requests;
    uint64_t by_class[SHM_CL_COUNT];
    uint64_t prompt_tokens, completion_tokens, cost_micro_usd;
    uint32_t inflight[SHM_MAX_OWNERS];
    shm_window_t req, tok;
    uint32_t relapses; /* cooldowns from failures since the key was last ACTIVE */
    uint32_t pad2;
} shm_krec_t;

typedef struct shm_lrec_s {
    uint32_t version, size;
    uint32_t head, count; /* next write position; valid samples */
    uint32_t ttfb[SHM_LAT_RING];
    uint32_t total[SHM_LAT_RING];
} shm_lrec_t;

typedef struct shm_hrec_s {
    uint32_t version, size;
    uint32_t head, count;
    shm_event_t ev[SHM_HISTORY_RING];
} shm_hrec_t;

typedef struct shm_prec_s {
    uint32_t version, size;
    char name[SHM_NAME_MAX + 1];
    uint16_t circuit, reason;
    uint32_t consec_fail; /* failures (429/5xx/timeout/connect) since the last success */
    uint32_t reserved0, pad;
    int64_t since_ms, open_until_ms, updated_ms;
    uint64_t failures, reserved1;
    shm_window_t win_req, win_err; /* outcomes and errors, rolling 60 s (circuit breaker) */
} shm_prec_t;

typedef struct shm_orec_s {
    uint32_t version, size;
    int32_t pid;
    uint32_t pad;
    uint64_t start_ticks; /* /proc/PID/stat field 22 */
    uint64_t boot_hash;   /* FNV-1a of /proc/sys/kernel/random/boot_id */
    int64_t registered_ms;
} shm_orec_t;

_Static_assert(sizeof(shm_event_t) == 64, "event layout");
_Static_assert(sizeof(shm_window_t) == 264, "window layout");
_Static_assert(sizeof(shm_krec_t) % 8 == 0, "key record layout");
_Static_assert(sizeof(shm_krec_t) < 1800, "key record must stay inline in a 4 KiB page");
_Static_assert(sizeof(shm_lrec_t) == 16 + 8 * SHM_LAT_RING, "latency layout");
_Static_assert(sizeof(shm_prec_t) == 128 + 2 * 264, "provider layout");
_Static_assert(sizeof(shm_orec_t) == 40, "owner layout");

#define SHM_CF_ORPHANED 1u
#define SHM_CF_CLUSTER  2u /* admitted from leases (shm_lease.h) */
#define SHM_CF_STORE    4u /* a store client's (shm_cdef.h): shm_clients_sync leaves it */

/* A client key's budgets and usage (shm_client.c); "clients" database, by name. */
typedef struct shm_crec_s {
    uint32_t version, size;
    char name[SHM_NAME_MAX + 1];
    uint32_t flags;
    uint32_t rpm, rpd;
    uint32_t day_requests;
    uint64_t tok_day_max, tok_month_max, cost_day_max, cost_month_max; /* 0 = unlimited */
    int64_t clock_ms;   /* client clock: highest now seen (after re-bases) */
    int64_t day, month; /* UTC day index; UTC year * 12 + month - 1 */
    uint64_t day_tokens, month_tokens, day_cost, month_cost; /* reserved + recorded */
    uint64_t requests, prompt_tokens, completion_tokens, cost_micro_usd;
    int64_t last_admit_ms, created_ms, updated_ms;
    shm_window_t req;
} shm_crec_t;

_Static_assert(sizeof(shm_crec_t) == 496, "client layout");

#define SHM_DREC_VERSION 1

/* A store client's definition (shm_cdef.c); "client_defs", by name. */
typedef struct shm_drec_s {
    uint32_t version, size;
    char name[SHM_NAME_MAX + 1];
    uint32_t status; /* enum shm_cdef_status */
    uint32_t pad;
    unsigned char digest[32], prev_digest[32]; /* prev: all zero when none */
    int64_t prev_until_ms;
    int64_t expires_ms; /* 0 = never */
    int64_t created_ms, updated_ms, revoked_ms, rotated_ms;
    char models[512];
    char created_by[40];
} shm_drec_t;

_Static_assert(sizeof(shm_drec_t) == 744, "client definition layout");

#define SHM_UREC_VERSION 1

/* A client's usage of one UTC day and model (shm_usage.c); "client_usage". */
typedef struct shm_urec_s {
    uint32_t version, size;
    uint64_t requests, prompt_tokens, completion_tokens, cost_micro_usd;
    uint64_t errors;  /* of requests: served with the provider's error (SHM_CL_OTHER) */
    uint64_t refused; /* not admitted: over one of the client's own limits */
} shm_urec_t;

_Static_assert(sizeof(shm_urec_t) == 56, "usage layout");

#define SHM_SREC_VERSION 1

/* One minute, hour or day of a key's or a model's history (shm_stats.c); "stats". Counts
 * saturate. */
typedef struct shm_srec_s {
    uint32_t version, size;
    uint64_t by_class[SHM_CL_COUNT];
    uint64_t prompt_tokens, completion_tokens, cost_micro_usd;
    uint32_t lat[SHM_STATS_BUCKETS], ttfb[SHM_STATS_BUCKETS];
    uint32_t lat_max_ms, ttfb_max_ms;
    uint64_t lat_sum_ms, ttfb_sum_ms;
} shm_srec_t;

_Static_assert(sizeof(shm_srec_t) == 376, "stats layout");

/* The history rows one record transaction adds to, folded before they are written
 * (shm_stats.c): a series' rows are written once per transaction, not once per outcome. */
#define SHM_SACC_MAX 8
typedef struct shm_sacc_s {
    unsigned n;
    struct {
        int scope;
        char name[SHM_NAME_MAX + 1];
        shm_srec_t d;
    } e[SHM_SACC_MAX];
} shm_sacc_t;

/* Fold outcome o of key (and of model, when not NULL or "") into a; when a is full, its rows
 * are written first. shm__stats_flush writes what a holds (then a is empty). Both use now_ms
 * for the minute, hour and day. 0 or an LMDB code; 0 without the stats database. */
int shm__stats_add(shm_t *s, MDB_txn *txn, shm_sacc_t *a, const char *key, const char *model,
                   const shm_outcome_t *o, int64_t now_ms);
int shm__stats_flush(shm_t *s, MDB_txn *txn, shm_sacc_t *a, int64_t now_ms);

/* An object's affinity (shm_obj.c); "objects" database, by object id. */
typedef struct shm_jrec_s {
    uint32_t version, size;
    char key[SHM_NAME_MAX + 1];
    char group[SHM_NAME_MAX + 1];
    char provider[SHM_NAME_MAX + 1];
    char client[SHM_NAME_MAX + 1];
    char model[SHM_OBJ_MODEL_MAX + 1];
    int64_t created_ms, expires_ms;
} shm_jrec_t;

_Static_assert(sizeof(shm_jrec_t) == 408, "object layout");

struct shm_s {
    MDB_env *env;
    /* the last corrupt record met (shm_store_corrupt), "" if none; under corrupt_lock */
    pthread_mutex_t corrupt_lock;
    char corrupt[256];
    MDB_dbi dbi_meta, dbi_keys, dbi_lat, dbi_hist, dbi_prov, dbi_owners;
    MDB_dbi dbi_clients;
    int has_clients; /* 0: a read-only open of a store written before the clients DB */
    /* objects, objects_by_expiry (shm_obj.c); has_objects 0: a read-only open of a store
     * written before them */
    MDB_dbi dbi_objs, dbi_objx;
    int has_objects;
    MDB_dbi dbi_leases; /* shm_lease.c; has_leases 0: a read-only open of a store without it */
    int has_leases;
    MDB_dbi dbi_cdefs, dbi_cdig, dbi_chist; /* shm_cdef.c; has_cdefs as has_leases */
    int has_cdefs;
    MDB_dbi dbi_usage; /* shm_usage.c; has_usage as has_leases */
    int has_usage;
    MDB_dbi dbi_stats; /* shm_stats.c; has_stats as has_leases */
    int has_stats;
    int readonly;
    int durability;
    size_t map_max;
    uint32_t sync_interval_ms;
    char *dir;
    /* held for reading by every transaction, for writing by a map resize */
    pthread_rwlock_t resize_lock;
    /* this process's owner slot, registered by the first admission */
    pthread_mutex_t owner_lock;
    int slot; /* -1 until registered; read without owner_lock only after registration */
    pid_t pid;
    uint64_t start_ticks, boot_hash;
    pthread_mutex_t maint_lock;
    int64_t last_sync_ms;
    int64_t (*clock)(void *arg);
    void *clock_arg;
};

/* now_ms, or the store's clock for SHM_NOW. */
int64_t shm__now(const shm_t *s, int64_t now_ms);

/* A unit of work run in one transaction; returns 0, an SHM_E* code or an LMDB code.
 * It may run more than once (after MDB_MAP_FULL / MDB_MAP_RESIZED), so it must compute
 * everything from its inputs and only write outputs that a re-run overwrites. */
typedef int (*shm_txn_fn)(shm_t *s, MDB_txn *txn, void *arg);

int shm__write(shm_t *s, shm_txn_fn fn, void *arg);

/* The record step of shm_key_record_batch (shm_key.c), for a transaction that records and
 * then admits (shm_key_record_admit). shm__record_check validates the batch first: 0,
 * SHM_EINVAL or SHM_ESTALE. */
typedef struct shm_rec_ctx_s {
    shm_resv_t *const *resv; /* NULL for a note */
    const char *name;        /* for a note */
    const shm_outcome_t *o;
    unsigned n;
    int64_t now_ms;
} shm_rec_ctx_t;
int shm__record_fn(shm_t *s, MDB_txn *txn, void *arg);
int shm__record_check(shm_t *s, shm_resv_t *const *resv, const shm_outcome_t *o, unsigned n);
int shm__read(shm_t *s, shm_txn_fn fn, void *arg);

/* The kinds of stored records, for shm__rec_check. */
enum shm_rec_kind {
    SHM_REC_KEY = 0, /* shm_krec_t in keys */
    SHM_REC_LAT,     /* shm_lrec_t in latency */
    SHM_REC_HIST,    /* shm_hrec_t in history */
    SHM_REC_PROV,    /* shm_prec_t in providers */
    SHM_REC_OWNER,   /* shm_orec_t in owners (keyed by a uint32_t slot) */
    SHM_REC_CLIENT,  /* shm_crec_t in clients */
    SHM_REC_OBJ,     /* shm_jrec_t in objects (keyed by an object id) */
    SHM_REC_OBJ_IDX, /* an entry of objects_by_expiry: no record, shm__corrupt only */
    SHM_REC_LEASE,   /* shm_lease_t in leases */
    SHM_REC_CDEF,    /* shm_drec_t in client_defs */
    SHM_REC_CHIST,   /* shm_hrec_t in client_history */
    SHM_REC_USAGE,   /* shm_urec_t in client_usage */
    SHM_REC_STATS,   /* shm_srec_t in stats */
    SHM_REC_KINDS
};

/* Check v, the record of kind found under key, before anything of it is read (see above).
 * 0, or SHM_ECORRUPT with the record noted for shm_store_corrupt(). */
int shm__rec_check(shm_t *s, int kind, const MDB_val *key, const MDB_val *v);
/* Note an entry of kind under key that is corrupt for a reason of its own (why: what is
 * wrong, for the log) for shm_store_corrupt(). Returns SHM_ECORRUPT. */
int shm__corrupt(shm_t *s, int kind, const MDB_val *key, const char *why);

/* Turns a stored record (already checked and copied) into its view. */
typedef void (*shm_conv_fn)(const void *rec, int64_t now_ms, void *view);

/* Every record of dbi (records of kind) in key order, converted into a malloc'ed array of
 * views of view_size bytes (one read transaction). 0 or an SHM_E* code: SHM_ECORRUPT if any
 * record is corrupt. */
int shm__list(shm_t *s, MDB_dbi dbi, int kind, size_t view_size, shm_conv_fn conv, int64_t now_ms,
              void **out, unsigned *n);
int shm__err(int mdb_rc); /* LMDB / errno / SHM code -> SHM code */

/* Record access inside a transaction: 0, MDB_NOTFOUND, SHM_ECORRUPT (shm__rec_check) or an
 * LMDB code. */
int shm__key_get(shm_t *s, MDB_txn *txn, const char *name, shm_krec_t *out);
int shm__key_put(shm_t *s, MDB_txn *txn, const shm_krec_t *k);
int shm__prov_get(shm_t *s, MDB_txn *txn, const char *name, shm_prec_t *out);
int shm__prov_put(shm_t *s, MDB_txn *txn, const shm_prec_t *p);
int shm__lat_get(shm_t *s, MDB_txn *txn, const char *name, shm_lrec_t *out);
void shm__prov_init(shm_prec_t *p, const char *name, int64_t now_ms);

/* Append an event to a key's history ring. */
int shm__hist_add(shm_t *s, MDB_txn *txn, const char *name, int type, const shm_krec_t *k,
                  int64_t arg, const char *text, int64_t ts_ms);
/* The same into the ring under name in dbi (records of kind SHM_REC_HIST or SHM_REC_CHIST);
 * status and reason as given. */
int shm__hist_add_db(shm_t *s, MDB_txn *txn, MDB_dbi dbi, int kind, const char *name, int type,
                     int status, int reason, int64_t arg, const char *text, int64_t ts_ms);
/* The newest max events of the ring under name in dbi, oldest first, into out; *n = how
 * many (0 when there is no ring). 0, SHM_ECORRUPT or an LMDB code. */
int shm__hist_get(shm_t *s, MDB_txn *txn, MDB_dbi dbi, int kind, const char *name, shm_event_t *out,
                  unsigned max, unsigned *n);

/* Put a record through cur, which a get of key left on it. rec_name is the record's own
 * name, its key in the store (as shm__key_put etc. put it): when it is key, the record is
 * overwritten where the cursor stands (MDB_CURRENT, no second B-tree search); otherwise it is
 * put under rec_name. 0 or an LMDB code. */
int shm__cur_put(MDB_cursor *cur, MDB_dbi dbi, const MDB_val *key, const char *rec_name,
                 const void *data, size_t size);

/* The key clock: returns the effective now for k (see shm.h "Time"), updating k->clock_ms
 * and re-basing k on a large step back (*stepped = step in ms, else 0). */
int64_t shm__key_clock(shm_krec_t *k, int64_t now_ms, int64_t *stepped);
/* Bring a copy of a key record to now: key clock, windows, day. Returns the key clock now. */
int64_t shm__key_to_now(shm_krec_t *k, int64_t now_ms, int64_t *stepped);

static inline int shm__status_blocked(int st)
{
    return st == SHM_ST_DISABLED || st == SHM_ST_INVALID || st == SHM_ST_DEPLETED;
}
/* Roll k's day to the day of eff_ms (count reset on a newer day, kept otherwise). */
void shm__key_day(shm_krec_t *k, int64_t eff_ms);
int64_t shm__day_index(int64_t eff_ms, int32_t offset_s);
uint32_t shm__key_inflight(const shm_krec_t *k);
void shm__key_to_view(const shm_krec_t *k, int64_t now_ms, shm_key_t *out);
int shm__name_ok(const char *name);

/* Owners (shm_proc.c). */
int shm__proc_identity(pid_t pid, uint64_t *start_ticks, int *alive);
uint64_t shm__boot_hash(void);
int shm__owner_ensure(shm_t *s, int64_t now_ms);
int shm__owners_reclaim(shm_t *s, int64_t now_ms, int *reclaimed);
int shm__owner_release(shm_t *s, int64_t now_ms);

/* Client budgets (shm_client.c), inside the admission and record/release transactions.
 * cur: a cursor on s->dbi_clients of the transaction, owned by the caller.
 * _admit: c = the client's record brought to now, cur left on it; 0 if req fits,
 * SHM_ECLIENT_BUDGET with *retry_at, MDB_NOTFOUND (unknown or orphaned), SHM_ECORRUPT, or an
 * LMDB code.
 * _reserve: counts req on c, puts it through cur (untouched since _admit), fills r's client
 * part (after r's key part). _finish: o = the outcome, or NULL for a release with refund
 * 0/1; a client gone meanwhile is 0. */
int shm__client_admit(shm_t *s, MDB_cursor *cur, const shm_admit_req_t *req, int64_t now_ms,
                      shm_crec_t *c, int64_t *retry_at);
int shm__client_reserve(shm_t *s, MDB_cursor *cur, shm_crec_t *c, const shm_admit_req_t *req,
                        shm_resv_t *r);
/* The budgets of client c (brought to now by shm__client_admit) for shm_admit_req_t.budget;
 * now_ms is the admission's wall clock. */
void shm__client_budget(const shm_crec_t *c, int64_t now_ms, shm_budget_t *out);
/* A client's budget record (shm_cdef.c): get (0, MDB_NOTFOUND, SHM_ECORRUPT, LMDB code), put,
 * and a fresh one as of now_ms (no limits, no usage). */
int shm__crec_get(shm_t *s, MDB_txn *txn, const char *name, shm_crec_t *out);
int shm__crec_put(shm_t *s, MDB_txn *txn, const shm_crec_t *c);
void shm__crec_init(shm_crec_t *r, const char *name, int64_t now_ms);

/* The store client a key digest belongs to (shm_cdef.c): 0 with name filled, MDB_NOTFOUND,
 * SHM_ECORRUPT, or an LMDB code. */
int shm__cdig_owner(shm_t *s, MDB_txn *txn, const unsigned char d[32], char name[SHM_NAME_MAX + 1]);
/* Add a served outcome of reservation r to its client's usage row of UTC day day
 * (shm_usage.c). 0 or an LMDB code; 0 without the usage database. */
int shm__usage_add(shm_t *s, MDB_txn *txn, const shm_resv_t *r, const shm_outcome_t *o,
                   int64_t day);

/* Count a request of client for model refused by the client's own limits (SHM_ECLIENT_BUDGET)
 * in its usage row of day now_ms (shm_usage.c). 0 or an LMDB code; 0 without the database. */
int shm__usage_refused(shm_t *s, MDB_txn *txn, const char *client, const char *model,
                       int64_t now_ms);
/* What the client's lease must allow for req (shm_lease.h), c brought to now. */
void shm__client_lease_ask(const shm_crec_t *c, const shm_admit_req_t *req, shm_lease_ask_t *a);
int shm__client_finish(shm_t *s, MDB_cursor *cur, const shm_resv_t *r, const shm_outcome_t *o,
                       int refund, int64_t now_ms);

/* Leases (shm_lease.c) inside the admission transaction: may the entity (kind, name[0..len))
 * be admitted for ask (see shm_lease.h)? take 1: and take the cost from its grants (or count
 * it in deg_used). Returns 0, SHM_NONE with *retry_at (the record was stamped starved: the
 * transaction must be committed), SHM_ECORRUPT, or an LMDB code. No record: SHM_NONE. */
int shm__lease_admit(shm_t *s, MDB_txn *txn, int kind, const char *name, size_t len,
                     const shm_lease_ask_t *ask, int take, int64_t now_ms, int64_t *retry_at);

/* UTC calendar (shm_client.c): months since year 0 (year * 12 + month - 1) of wall-clock ms,
 * and the wall-clock ms at which month m starts. Integer arithmetic, equal to gmtime_r() and
 * timegm() (which they replace on the hot path) over any date within a million years. */
int64_t shm__month_index(int64_t ms);
int64_t shm__month_start_ms(int64_t m);

#endif
