/* shm.h - the state plane: per-key and per-provider state in one LMDB store.
 *
 * Design note
 * -----------
 * One state directory holds one LMDB environment (data.mdb, lock.mdb). Every llmgate
 * process and the admin CLI open it at the same time; LMDB's writer lock serializes write
 * transactions across all threads of all processes, and every admission runs inside one
 * write transaction (alone, or with others in shm_key_batch), so the limits below are exact
 * across processes, not per process.
 *
 * Named databases (record layouts are fixed structs with a version and size field, no
 * pointers; see shm_int.h):
 *   meta       "magic" = "llmgate-state", "schema_version" = uint32, "created_ms" = int64.
 *              A store whose schema_version is not SHM_SCHEMA_VERSION is refused with
 *              SHM_EVERSION and a message naming both versions; it is never reinterpreted.
 *   keys       key name -> key record: config copy (limits, provider, fingerprint), status,
 *              cooldown, request and token windows, day count, in-flight per owner slot,
 *              counters, totals.                                   (~1 KiB, inline)
 *   latency    key name -> ring of the last 256 (ttfb_ms, total_ms).   (one page)
 *   history    key name -> ring of the last 16 events (status changes, admin actions).
 *   providers  provider name -> circuit state and counters.
 *   owners     slot 0..SHM_MAX_OWNERS-1 -> (pid, start time, boot id) of the process that
 *              holds the in-flight reservations counted in that slot of every key record.
 *   objects, objects_by_expiry   object id -> the key that created it, with a TTL, and its
 *              expiry index (object affinity: see shm_obj.h).
 *
 * Time. Every call that needs the time takes now_ms: wall-clock milliseconds since the
 * epoch, or SHM_NOW (0): the store then reads opts.clock (default CLOCK_REALTIME) itself,
 * inside the write transaction once it holds the writer lock. The server should pass
 * SHM_NOW: the time counted is then the time of admission even when the lock was
 * contended, and admissions are counted in commit order. Tests pass explicit values or a
 * fake opts.clock. The clock is not trusted to be monotonic. Each key keeps the highest now_ms it
 * has seen ("key clock"). A now_ms up to SHM_CLOCK_SKEW_MS behind it (threads that read the clock,
 * then waited for the lock) is treated as the key clock: admissions count as slightly newer, which
 * is conservative. A larger step back re-bases the key: its windows and cooldown move back by the
 * step, so nothing already counted is forgotten (never unlimited admissions) and no wait grows by
 * the step (waits stay within one window). Every retry time returned is >= now_ms.
 *
 * Limits (0 = unlimited), all checked and reserved in the admission transaction:
 *   rpm  at most rpm admissions in any 60 s of real time. Windows have one bucket per
 *        second; an admission in second s counts until (s + 61) * 1000 ms, i.e. the window
 *        holds seconds [now-60, now]. Any two admissions less than 60 000 ms apart are
 *        therefore in one window: the bound holds for every real 60 s interval, at the
 *        price of up to one extra second of waiting. A burst of rpm at once is allowed.
 *        Not a fixed minute, not a token bucket.
 *   tpm  the same window over tokens: admission reserves the caller's estimate (clamped to
 *        tpm, so an oversized request still passes once the window is empty); recording
 *        the outcome reconciles the bucket of the admission second to the real usage.
 *   rpd  at most rpd admissions per day; a key's day starts at UTC midnight plus its
 *        day_offset_s (0 = UTC midnight). A day index never goes backwards with the clock.
 *   max_inflight  admitted and not yet recorded/released, summed over all owners.
 *
 * Status: ACTIVE is admissible. COOLING is not, until cooldown_until; then the key is
 * HALF_OPEN: half_open_probes at a time (default one); recovery_successes recorded
 * successes make it ACTIVE, a recorded failure or cooldown makes it COOLING again (see the
 * key-policy fields of shm_outcome_t). DISABLED (admin) and INVALID (auth failure) are not
 * admissible until an admin enable or a recorded outcome with set_status. DEPLETED (out of
 * credit) is not admissible until cooldown_until when one was set with it (the quota's
 * reset), then it is probed like a HALF_OPEN key; without one, until an enable. Orphaned keys (gone
 * from the config) are never admissible. A key whose provider circuit is SHM_CIRCUIT_OPEN with
 * open_until > now_ms is skipped; what happens after open_until is the key policy's business.
 *
 * In-flight ownership. The first admission of a process registers it in an owner slot
 * (pid + start time from /proc/PID/stat + boot id). A key record counts in-flight per slot.
 * shm_maintain() (and slot registration) look at every slot's process; a slot whose
 * process is gone, a zombie, or a different process with the same pid is reclaimed: its
 * in-flight counts are cleared in every key (history event SHM_EV_RECLAIM) and the slot is
 * freed. A kill -9 therefore never leaves a key blocked longer than one maintenance period.
 * All processes that share a state dir must live in one pid namespace.
 *
 * Durability (SHM_DUR_FAST, the default): MDB_WRITEMAP | MDB_NOSYNC, plus mdb_env_sync()
 * from shm_maintain() every sync_interval_ms (default 1000). A committed transaction is in
 * the kernel's page cache at once, so a crashed or killed process loses nothing that was
 * committed and other processes see it at once. An OS crash or power loss can lose the
 * commits since the last sync (about one second) and, because the kernel may write back
 * the map's pages in any order, can leave data.mdb inconsistent: the store holds only
 * counters and cooldowns (no secrets, no config), so the operator removes the state dir
 * and starts afresh. SHM_DUR_SAFE drops MDB_WRITEMAP (ACI kept on a filesystem that keeps
 * write order; loses up to sync_interval_ms); SHM_DUR_SYNC fsyncs every commit. Each is
 * slower per transaction; shm-bench prints the numbers.
 *
 * Map size: opts.map_size initial (default 64 MiB), doubled up to opts.map_max (default
 * 64 GiB) when shm_maintain() finds more than 80% in use, or when a transaction hits
 * MDB_MAP_FULL: the transaction is re-run from its inputs after growing, so its intent is
 * not lost. A map grown by another process is adopted on MDB_MAP_RESIZED. Growing needs no
 * transaction active in this process: every transaction holds a process-wide rwlock for
 * reading, growing takes it for writing.
 *
 * Files: the state dir is created 0700; a state dir that is not a directory, not owned by
 * this user, or writable by group or others is refused (SHM_EPERM). data.mdb and lock.mdb
 * are created 0600 and tightened to 0600 if found wider.
 *
 * Threads and ownership. shm_store_open() returns a shm_t that all threads of the process share;
 * every function below may be called from any thread at the same time, except that
 * shm_store_close() must be the last call. Open the store once per process, and after fork()
 * (an inherited shm_t must not be used by the child). Each call runs whole transactions
 * and returns; nothing stays locked between calls. Admission blocks while another process
 * or thread commits (microseconds). Callbacks (shm_choose_cb) run inside the write
 * transaction: they must be quick and must not call shm_ functions.
 *
 * Cost (shm-bench, 2-core VM, SHM_DUR_FAST, 4 candidates, one thread): with 1,000 keys an
 * admission is ~1.6-2.5 us median and a record ~1.6-2.7 us, each its own commit; with
 * 100,000 keys ~7 us (deeper tree, colder pages). The server batches: a worker's admissions
 * of one loop iteration and its plain successes share one transaction (shm_key_batch), about
 * 0.05 transactions per request under bench/run.sh's load. A request as the server makes it
 * (shm-bench --rr: 20 candidates, round robin, a client key, circuit breaker on) costs ~44k
 * instructions for admit + record with 20 keys, ~50k with 1,000 (callgrind); candidates
 * listed in key order, or in a few such runs, are the cheapest (see shm_admit.c).
 *
 * Limits of this design: at most SHM_MAX_OWNERS processes hold reservations at once (the
 * CLI holds none); an owner whose /proc entry cannot be read (hidepid) is never reclaimed;
 * a store is about 1.4 KiB per key plus one 4 KiB page per key with latency samples.
 *
 * Errors. Functions return 0 or a negative SHM_E* code (shm_strerror() names it); LMDB and
 * errno codes never come out. SHM_NONE is the only expected "failure" of admission.
 *
 * Corrupt records. Every record is checked before anything of it is read: its length, its
 * version and size fields, a NUL inside each name field (key, provider, fingerprint, client),
 * a ring's head and count inside the ring. A record that fails (a torn write, another
 * program's bytes) is corrupt: it is never read past, reinterpreted, skipped or overwritten.
 * Every call that meets it returns SHM_ECORRUPT and writes nothing: the admissions and
 * outcomes that name the key, its provider or the client, the views of it, and the calls that
 * go through every record of a database (shm_snapshot, shm_providers, shm_clients,
 * shm_keys_sync, shm_clients_sync, shm_keys_prune, and the owner reclaim of shm_maintain)
 * while any of their records is corrupt. shm_store_corrupt() says which record it was and what
 * is wrong with it, for the log. Keys that do not meet it are served as before. The remedy
 * is the operator's: remove the state dir (see Durability) and start afresh.
 */
#ifndef LLMGATE_SHM_H
#define LLMGATE_SHM_H

#include <stddef.h>
#include <stdint.h>

struct cfg_s;

#define SHM_SCHEMA_VERSION 2    /* 2: key relapses, provider outcome windows */
#define SHM_NAME_MAX       63   /* key and provider names, bytes without NUL */
#define SHM_FP_MAX         15   /* secret fingerprint, bytes without NUL */
#define SHM_MAX_OWNERS     32   /* processes holding reservations at the same time */
#define SHM_ADMIT_MAX      64   /* candidates per admission */
#define SHM_LAT_RING       256  /* latency samples kept per key */
#define SHM_HISTORY_RING   16   /* events kept per key */
#define SHM_CLOCK_SKEW_MS  5000 /* a step back up to this is clamped, beyond it re-based */
#define SHM_WINDOW_SECONDS 60
#define SHM_NOW            0 /* as now_ms: read opts.clock inside the transaction */

/* Error codes. Every function documents which it returns; all may return SHM_EINTERNAL
 * (an LMDB failure that should not happen, e.g. a corrupt page) and SHM_ENOMEM. */
enum shm_error {
    SHM_OK = 0,
    SHM_EINVAL = -1,    /* bad argument: NULL, empty or too long name, count out of range */
    SHM_ENOMEM = -2,    /* out of memory */
    SHM_EIO = -3,       /* the state dir or its files could not be created/read/synced */
    SHM_EPERM = -4,     /* state dir or file is unsafe: not ours, or group/other-writable */
    SHM_EVERSION = -5,  /* store schema version unknown or newer than SHM_SCHEMA_VERSION */
    SHM_ECORRUPT = -6,  /* not an llmgate store, LMDB corrupt, or a corrupt record (see
                         * "Corrupt records"; shm_store_corrupt() names it) */
    SHM_ENOTFOUND = -7, /* no such key / provider, or (read-only open) no store in dir */
    SHM_NONE = -8,      /* admission: no candidate admissible now (see retry_at_ms) */
    SHM_EFULL = -9,     /* the map reached opts.map_max, or the disk is full */
    SHM_EOWNERS = -10,  /* all SHM_MAX_OWNERS owner slots held by live processes */
    SHM_ERDONLY = -11,  /* a write on a store opened read-only */
    SHM_ESTALE = -12,   /* reservation already recorded/released or not from this process */
    SHM_EREADERS = -13, /* LMDB reader table full (raise opts.max_readers) */
    SHM_EBUSY = -14,    /* the state dir is locked in an incompatible way (e.g. by NFS) */
    SHM_EINTERNAL = -15,
    SHM_ECLIENT_BUDGET = -16, /* admission: the client is over a budget (see retry_at_ms) */
    SHM_EEXIST = -17,         /* shm_cdef.h: a client of that name is in the store already */
    SHM_ECONFLICT = -18,      /* a client named both by the configuration and the store */
};

/* A static English description of rc ("unknown error" for unknown codes). */
const char *shm_strerror(int rc);

/* ---- Opening --------------------------------------------------------------------------- */

enum shm_durability {
    SHM_DUR_FAST = 0, /* MDB_WRITEMAP|MDB_NOSYNC + periodic sync (see design note) */
    SHM_DUR_SAFE,     /* MDB_NOSYNC + periodic sync */
    SHM_DUR_SYNC,     /* every commit synced to disk */
};

typedef struct shm_opts_s {
    const char *dir;           /* state dir; required */
    size_t map_size;           /* initial map size in bytes; 0 = 64 MiB */
    size_t map_max;            /* growth cap in bytes; 0 = 64 GiB */
    unsigned max_readers;      /* concurrent read transactions, all processes; 0 = 126 */
    int readonly;              /* 1: views only; every write returns SHM_ERDONLY */
    int durability;            /* enum shm_durability */
    uint32_t sync_interval_ms; /* shm_maintain() syncs at most this often; 0 = 1000 */
    /* Wall clock in ms for SHM_NOW; NULL = CLOCK_REALTIME. Called from any thread, inside
     * write transactions: must be fast and must not call shm_ functions. */
    int64_t (*clock)(void *arg);
    void *clock_arg;
} shm_opts_t;

typedef struct shm_s shm_t;

/* Open (creating if needed, unless readonly) the store in opts->dir. now_ms stamps a new
 * store's created_ms. Runs mdb_reader_check. On failure writes a message for a person into
 * err ("shm: /var/lib/llmgate: ...: what to do") and returns SHM_EINVAL, SHM_EIO, SHM_EPERM,
 * SHM_EVERSION, SHM_ECORRUPT, SHM_ENOTFOUND (readonly and no store), SHM_EBUSY. */
int shm_store_open(const shm_opts_t *opts, int64_t now_ms, shm_t **out, char *err, size_t errlen);

/* Release this process's owner slot (its reservations are dropped), sync, close. NULL ok. */
void shm_store_close(shm_t *s);

typedef struct shm_maint_s {
    int readers_cleared; /* stale reader slots freed by mdb_reader_check */
    int owners_reclaimed;
    int synced; /* 1 if this call synced the env */
    int grown;  /* 1 if this call grew the map */
} shm_maint_t;

/* Housekeeping; call about once a second from one thread per process: reader check,
 * env sync (if sync_interval_ms passed), reclaim dead owners, grow the map past 80% use.
 * out may be NULL. Returns 0, SHM_EIO (sync failed), SHM_EFULL (cannot grow). On a read-only
 * store only the reader check runs. */
int shm_maintain(shm_t *s, int64_t now_ms, shm_maint_t *out);

/* Force an env sync now. Returns 0 or SHM_EIO. */
int shm_sync(shm_t *s);

typedef struct shm_store_info_s {
    uint32_t schema_version;
    int64_t created_ms;
    size_t map_size;   /* this process's map */
    size_t map_used;   /* bytes up to the last used page */
    size_t file_bytes; /* data.mdb as allocated on disk (sparse with SHM_DUR_FAST) */
    size_t page_size;
    unsigned readers_used, readers_max;
    unsigned keys, providers, owners;
    int durability;
} shm_store_info_t;

/* Returns 0 or SHM_EIO. */
int shm_store_info(shm_t *s, shm_store_info_t *out);

/* The last corrupt record a call on s met (one that returned SHM_ECORRUPT because of it), for
 * a log line or a message: which record, its key, its database and what is wrong, e.g.
 *     key record "oai-1" (database keys): 3 bytes, not 1032
 * Names only (records hold no secret); bytes that are not printable ASCII as '?'. Writes it
 * into buf (truncated to len, NUL-terminated) and returns 1, or writes "" and returns 0 when
 * no corrupt record was met. Any thread; the last one met by any thread of the process. */
int shm_store_corrupt(shm_t *s, char *buf, size_t len);

/* shm_strerror(rc) for a log line, and for SHM_ECORRUPT also the record shm_store_corrupt()
 * names ("corrupt record: key record "oai-1" (database keys): 3 bytes, not 1032"). Writes
 * into buf (truncated to len, NUL-terminated) and returns buf. Any thread. */
const char *shm_explain(shm_t *s, int rc, char *buf, size_t len);

/* ---- Keys: configuration --------------------------------------------------------------- */

typedef struct shm_key_spec_s {
    const char *name;        /* unique, 1..SHM_NAME_MAX bytes */
    const char *fingerprint; /* short fingerprint of the secret, never the secret; may be "" */
    const char *provider;    /* 1..SHM_NAME_MAX bytes */
    uint32_t rpm, rpd, tpm, max_inflight; /* 0 = unlimited */
    uint32_t weight;
    int32_t day_offset_s; /* the key's day starts at UTC midnight + this; |x| < 86400 */
    int cluster;          /* 1: its limits are shared by several hosts, admitted from leases
                           * (shm_lease.h); ignored for a key without rpm, rpd or tpm */
} shm_key_spec_t;

typedef struct shm_sync_stats_s {
    unsigned added, updated, orphaned, restored;
} shm_sync_stats_t;

/* Make the store's key set match specs in one transaction: new keys are created ACTIVE,
 * existing keys get the new limits/provider/fingerprint (a changed fingerprint means a new
 * secret: INVALID/DEPLETED go back to ACTIVE), keys not in specs are marked orphaned (state
 * kept, readable, never admitted, until shm_keys_prune), orphaned keys in specs are restored.
 * Providers named by specs are created. Each change is a history event. stats may be NULL.
 * Returns 0, SHM_EINVAL (bad or duplicate name), SHM_ERDONLY, SHM_EFULL. */
int shm_keys_sync(shm_t *s, const shm_key_spec_t *specs, unsigned n, int64_t now_ms,
                  shm_sync_stats_t *stats);

/* shm_keys_sync() over every key of every provider of a loaded configuration. */
int shm_keys_sync_cfg(shm_t *s, const struct cfg_s *cfg, int64_t now_ms, shm_sync_stats_t *stats);

/* ---- Keys: admission and outcomes ------------------------------------------------------ */

enum shm_status {
    SHM_ST_ACTIVE = 0,
    SHM_ST_COOLING,
    SHM_ST_HALF_OPEN,
    SHM_ST_DISABLED,
    SHM_ST_INVALID,
    SHM_ST_DEPLETED,
    SHM_ST_COUNT
};

enum shm_reason {
    SHM_RS_NONE = 0,
    SHM_RS_RATE_LIMITED, /* upstream 429 */
    SHM_RS_SERVER_ERROR, /* upstream 5xx */
    SHM_RS_TIMEOUT,
    SHM_RS_CONNECT,
    SHM_RS_AUTH,  /* 401/403 */
    SHM_RS_QUOTA, /* 402 / insufficient_quota */
    SHM_RS_ADMIN,
    SHM_RS_PROBE,  /* health probe */
    SHM_RS_POLICY, /* key policy decided (e.g. too many consecutive failures) */
    SHM_RS_COUNT
};

/* Why a candidate was not admitted (first reason found, in this order). */
enum shm_skip {
    SHM_SKIP_NONE = 0, /* admissible (it may still not have been the one chosen) */
    SHM_SKIP_UNKNOWN,  /* no such key in the store */
    SHM_SKIP_ORPHANED,
    SHM_SKIP_STATUS, /* disabled, invalid or depleted */
    SHM_SKIP_COOLING,
    SHM_SKIP_PROBE,   /* half-open with its probe in flight */
    SHM_SKIP_CIRCUIT, /* provider circuit open */
    SHM_SKIP_RPM,
    SHM_SKIP_TPM,
    SHM_SKIP_RPD,
    SHM_SKIP_INFLIGHT,
    SHM_SKIP_CLIENT, /* not judged: the request's client is over its budget */
    SHM_SKIP_LEASE,  /* cluster mode: no lease at hand for it (or its client), or over the
                      * safe share while degraded (shm_lease.h) */
};

/* What the strategy sees of one admissible candidate. */
typedef struct shm_candidate_s {
    unsigned index; /* position in shm_admit_req_t.names */
    int status;     /* SHM_ST_ACTIVE or SHM_ST_HALF_OPEN */
    uint32_t weight;
    uint32_t inflight, max_inflight;
    uint32_t rpm_used, rpm; /* used in the current window (before this admission) */
    uint32_t rpd_used, rpd;
    uint64_t tpm_used;
    uint32_t tpm;
    uint32_t ewma_total_ms; /* 0 until the first recorded success */
    uint32_t consec_failures;
    int64_t last_admit_ms; /* key clock; 0 = never: oldest first gives round robin */
} shm_candidate_t;

/* Return the position in cands (0..n-1) of the key to admit, or -1 to admit none (then
 * shm_key_admit returns SHM_NONE with retry_at_ms 0). Runs inside the write transaction. */
typedef int (*shm_choose_cb)(void *arg, const shm_candidate_t *cands, unsigned n);

typedef struct shm_admit_req_s {
    const char *const *names;  /* candidate key names, in preference order */
    unsigned count;            /* 1..SHM_ADMIT_MAX */
    uint32_t tokens;           /* TPM estimate to reserve (prompt + max completion) */
    uint32_t half_open_probes; /* a HALF_OPEN key admits while fewer are in flight; 0 = 1 */
    shm_choose_cb choose;      /* NULL = the first admissible */
    void *choose_arg;
    uint8_t *skip; /* optional out, count entries: enum shm_skip for each candidate */
    /* Optional: the client key the request came with (NULL = no client budget). Its
     * budgets are checked first and reserved with the key, in the same transaction (see
     * "Clients" below); tokens is also the client's token reservation. */
    const char *client;
    uint64_t cost_micro_usd; /* cost estimate reserved against the client's cost budgets */
    const char *model;       /* the client-facing model, for the client's usage rows
                                (shm_usage.h) and the model's history (shm_stats.h);
                                NULL = "" (truncated to SHM_NAME_MAX) */
    /* Optional out, with client: its budgets as the admission left them (after this
     * request's reservation when admitted; as they stood when refused or when no key was
     * admissible). Unset when the client was not found or on a store error. */
    struct shm_budget_s *budget;
} shm_admit_req_t;

/* A client's request and token budgets for the x-ratelimit-* headers: of each kind, the
 * one with the least left (requests: rpm or rpd; tokens: tokens_per_day or _month; a tie
 * goes to the shorter period). limit 0: no budget of that kind. reset_ms is wall-clock ms
 * at which that budget is whole again: the rolling window empty (its newest count leaves),
 * the next UTC day, the next month. */
typedef struct shm_budget_s {
    uint64_t req_limit, req_remaining;
    int64_t req_reset_ms;
    uint64_t tok_limit, tok_remaining;
    int64_t tok_reset_ms;
} shm_budget_t;

/* A reservation: owned by the caller (plain struct, any thread may finish it), finished by
 * exactly one shm_key_record()/shm_key_release(); then live is 0. */
typedef struct shm_resv_s {
    char name[SHM_NAME_MAX + 1];
    unsigned index;      /* the chosen candidate's position in names */
    int live;            /* 1 until recorded or released */
    uint32_t slot;       /* owner slot of this process */
    uint32_t tokens;     /* TPM tokens reserved */
    int64_t admit_sec;   /* key-clock second the reservation was counted in */
    int64_t admitted_ms; /* the now used by the admission (SHM_NOW resolved) */
    /* the client part: client[0] == '\0' when the admission named no client */
    char client[SHM_NAME_MAX + 1];
    uint64_t client_tokens, client_cost; /* reserved against the client's budgets */
    int64_t client_sec;                  /* client-clock second of its RPM count */
    int64_t client_day, client_month;    /* UTC day and month the reservation counted in */
    char model[SHM_NAME_MAX + 1];        /* shm_admit_req_t.model (usage rows, history) */
} shm_resv_t;

/* One write transaction: with req->client, first the client's budgets: over one, nothing
 * is reserved and SHM_ECLIENT_BUDGET is returned with *retry_at_ms the time the budget frees
 * (the window, the next UTC day or month; skip[] all SHM_SKIP_CLIENT); a client not in the
 * store (or orphaned) gives SHM_ENOTFOUND. Then skip the candidates that are not admissible
 * now (status, cooldown, provider circuit, RPM, TPM, RPD, max_inflight), let choose pick
 * among the rest, reserve (RPM +1, TPM +tokens, RPD +1, in-flight +1 for this process; and
 * the client's share) and commit. Returns 0 and fills *resv, or SHM_NONE and sets *retry_at_ms (may
 * be NULL) to the earliest time at which some candidate becomes admissible by time alone (>=
 * now_ms+1), or 0 if none will by time alone (disabled, unknown, in-flight bound: retry on events).
 * Other errors: SHM_EINVAL, SHM_ERDONLY, SHM_EOWNERS, SHM_EFULL, and SHM_ECORRUPT: the record
 * of a candidate, of a candidate's provider or of the client is corrupt (see "Corrupt
 * records"): nothing is reserved, on no candidate, and shm_store_corrupt() names the record.
 * A corrupt record is never taken for a missing one (SHM_SKIP_UNKNOWN, SHM_ENOTFOUND). */
int shm_key_admit(shm_t *s, const shm_admit_req_t *req, int64_t now_ms, shm_resv_t *resv,
                  int64_t *retry_at_ms);

/* Outcome classes. */
enum shm_class {
    SHM_CL_SUCCESS = 0,
    SHM_CL_429,
    SHM_CL_5XX,
    SHM_CL_TIMEOUT,
    SHM_CL_CONNECT,
    SHM_CL_AUTH,
    SHM_CL_OTHER,     /* another 4xx: the request's fault, not the key's */
    SHM_CL_CANCELLED, /* the client went away; counted, not an error of the key */
    SHM_CL_COUNT
};

enum shm_circuit { SHM_CIRCUIT_CLOSED = 0, SHM_CIRCUIT_OPEN, SHM_CIRCUIT_HALF_OPEN };

typedef struct shm_outcome_s {
    int cls;          /* enum shm_class */
    int code;         /* last error code to show (HTTP status or 0) */
    uint32_t ttfb_ms; /* latencies (monotonic clock); total_ms 0 = no sample */
    uint32_t total_ms;
    uint32_t prompt_tokens, completion_tokens; /* real usage; TPM is reconciled to it */
    uint64_t cost_micro_usd;
    int64_t cooldown_until_ms; /* > now_ms: status COOLING until then (wall clock) */
    int set_status;            /* -1 = leave, else enum shm_status to set */
    int reason;                /* enum shm_reason for the status change */
    int circuit;               /* -1 = leave, else enum shm_circuit for the provider */
    int64_t circuit_until_ms;  /* open until (wall clock) with SHM_CIRCUIT_OPEN */

    /* Key policy, applied inside the record transaction (all 0 = none of it):
     *  - fail_threshold: after this many failures in a row (5xx, timeout, connect) an ACTIVE
     *    key cools down for fail_cooldown_ms;
     *  - a failure of a HALF_OPEN key (a probe) is a relapse: it cools down again for
     *    fail_cooldown_ms doubled per relapse since it was last ACTIVE, capped at
     *    cooldown_max_ms (or for cooldown_until_ms if that is later);
     *  - recovery_successes: successes in a row that make a HALF_OPEN key ACTIVE (0 = 1);
     *    becoming ACTIVE forgets the relapses. */
    uint32_t fail_threshold;
    uint32_t recovery_successes;
    int64_t fail_cooldown_ms;
    int64_t cooldown_max_ms;

    /* Provider circuit breaker (0 = off), over a rolling 60 s window of outcomes:
     * CLOSED -> OPEN for circuit_open_ms when at least circuit_min_requests outcomes and an
     * error share (429, 5xx, timeout, connect) of at least circuit_error_ratio; after that
     * admission lets the provider's keys through again (HALF_OPEN); the first recorded
     * success closes it, the first failure opens it again. */
    uint32_t circuit_min_requests;
    double circuit_error_ratio;
    int64_t circuit_open_ms;

    /* shm_key_note only: the outcome is a request of its own (a health probe) and counts
     * against the key's limits: +1 in the RPM window, the day count and requests. */
    int count_request;
} shm_outcome_t;

/* Initialise an outcome: all zero, set_status = circuit = -1. */
void shm_outcome_init(shm_outcome_t *o, int cls);

/* Record the outcome of an admitted request and finish its reservation, in one committed
 * transaction: in-flight -1, TPM reconciled to prompt+completion tokens, counters, totals,
 * latency ring (successes with total_ms > 0), the history rows (shm_stats.h), last error,
 * consecutive failures/successes, cooldown/status change (history event), provider counters
 * and circuit. A HALF_OPEN key
 * becomes ACTIVE on success unless set_status says otherwise. Returns 0, SHM_EINVAL,
 * SHM_ESTALE (not live), SHM_ERDONLY, SHM_EFULL. If the key was pruned meanwhile: 0. */
int shm_key_record(shm_t *s, shm_resv_t *resv, const shm_outcome_t *o, int64_t now_ms);

/* Record n outcomes in one transaction (a worker batching plain successes). All or none
 * are recorded; on return every reservation with live 1 on entry has live 0 if rc == 0. */
int shm_key_record_batch(shm_t *s, shm_resv_t *const *resv, const shm_outcome_t *o, unsigned n,
                         int64_t now_ms);

/* Record n outcomes (as shm_key_record_batch) and then admit req (as shm_key_admit), in ONE
 * write transaction, so that the admission sees the outcomes: for a caller that holds plain
 * outcomes back for a moment (the server keeps a worker's successes until its next admission
 * or the end of the loop iteration). *recorded is 1 when the outcomes were committed (their
 * reservations have live 0), whatever the admission gave; 0 when nothing was written (the
 * caller then records them on their own: an argument error or a failed transaction). Returns
 * what shm_key_admit returns (SHM_ESTALE / SHM_EINVAL also for a bad outcome batch). n 0:
 * shm_key_admit. */
int shm_key_record_admit(shm_t *s, shm_resv_t *const *rresv, const shm_outcome_t *o, unsigned n,
                         const shm_admit_req_t *req, int64_t now_ms, shm_resv_t *resv,
                         int64_t *retry_at_ms, int *recorded);

/* A batch: n outcomes (as shm_key_record_batch, n may be 0) and then any number of
 * admissions, all in ONE write transaction, for a caller that gathers the admissions of a
 * moment (the server: those of one loop iteration). now_ms (SHM_NOW: read once, under the
 * writer lock) is the now of the outcomes and of every admission of the batch. From its
 * second admission on, a batch judges the records it has judged already from what it kept
 * of them, not from the map; the results are those of the same admissions one by one. fn runs
 * inside the transaction and admits with shm_batch_admit; it may run more than once (the
 * transaction is re-run from its inputs when the map must grow), so it must (re)write its results
 * on every run: those of the last run are the ones committed. fn returns 0, or a code to give the
 * transaction up. shm_key_batch returns 0 when everything was committed (the outcomes' reservations
 * have live 0), else a code, and then nothing was written: not the outcomes, not one
 * admission. */
typedef struct shm_batch_s shm_batch_t;
typedef int (*shm_batch_fn)(shm_batch_t *b, void *arg);
int shm_key_batch(shm_t *s, shm_resv_t *const *rresv, const shm_outcome_t *o, unsigned n,
                  int64_t now_ms, shm_batch_fn fn, void *arg);
/* One admission inside a batch: as shm_key_admit (0, SHM_NONE with *retry_at_ms,
 * SHM_ECLIENT_BUDGET, SHM_ENOTFOUND, SHM_EINVAL). Any other code means the transaction
 * cannot go on: fn should return it (shm_key_batch fails with it whatever fn returns). */
int shm_batch_admit(shm_batch_t *b, const shm_admit_req_t *req, shm_resv_t *resv,
                    int64_t *retry_at_ms);

/* Finish a reservation without an outcome. refund 1: the request never reached upstream,
 * so its RPM, RPD and TPM reservation is given back too (if still in the window/day).
 * Returns 0, SHM_EINVAL, SHM_ESTALE, SHM_ERDONLY. */
int shm_key_release(shm_t *s, shm_resv_t *resv, int refund, int64_t now_ms);

/* Record an outcome for a key without a reservation (health probes). Returns 0,
 * SHM_ENOTFOUND, SHM_EINVAL, SHM_ERDONLY. */
int shm_key_note(shm_t *s, const char *name, const shm_outcome_t *o, int64_t now_ms);

/* ---- Reading (CLI, metrics) ------------------------------------------------------------ */

typedef struct shm_key_s {
    char name[SHM_NAME_MAX + 1];
    char provider[SHM_NAME_MAX + 1];
    char fingerprint[SHM_FP_MAX + 1];
    uint32_t rpm, rpd, tpm, max_inflight, weight;
    int32_t day_offset_s;
    int orphaned;
    int status, reason; /* enum shm_status, enum shm_reason */
    int64_t status_since_ms, cooldown_until_ms;
    uint32_t rpm_used, rpd_used; /* at the now_ms of the read */
    uint64_t tpm_used;
    uint32_t inflight;
    uint32_t consec_failures, consec_successes;
    uint32_t ewma_total_ms, ewma_ttfb_ms;
    int32_t last_error_code;
    int64_t last_error_ms, last_admit_ms, created_ms, updated_ms;
    uint64_t requests;               /* admitted */
    uint64_t by_class[SHM_CL_COUNT]; /* outcomes recorded per enum shm_class */
    uint64_t prompt_tokens, completion_tokens, cost_micro_usd;
} shm_key_t;

/* One key as of now_ms. Returns 0 or SHM_ENOTFOUND, SHM_EINVAL. */
int shm_key_get(shm_t *s, const char *name, int64_t now_ms, shm_key_t *out);

/* All keys, sorted by name, from one read transaction. *out is malloc'ed (free with
 * shm_snapshot_free); *n may be 0. Returns 0 or SHM_ENOMEM. */
int shm_snapshot(shm_t *s, int64_t now_ms, shm_key_t **out, unsigned *n);
void shm_snapshot_free(void *p);

typedef struct shm_latency_s {
    unsigned count; /* valid samples, <= SHM_LAT_RING, newest last */
    uint32_t ttfb_ms[SHM_LAT_RING];
    uint32_t total_ms[SHM_LAT_RING];
} shm_latency_t;

typedef struct shm_pct_s {
    uint32_t p50, p95, p99; /* nearest-rank; 0 with no samples */
} shm_pct_t;

/* A key's latency ring (count 0 if none recorded). Returns 0, SHM_ENOTFOUND, SHM_EINVAL. */
int shm_key_latency(shm_t *s, const char *name, shm_latency_t *out);

/* Percentiles of n samples (any order; not modified). Pure, no store. */
void shm_percentiles(const uint32_t *samples, unsigned n, shm_pct_t *out);

enum shm_event_type {
    SHM_EV_CREATED = 1,
    SHM_EV_CONFIG, /* limits, provider or fingerprint changed by shm_keys_sync */
    SHM_EV_ORPHANED,
    SHM_EV_RESTORED, /* back in the config */
    SHM_EV_STATUS,   /* status change by an outcome or admission; arg = cooldown until */
    SHM_EV_COOLDOWN, /* admin; arg = until */
    SHM_EV_DISABLE,  /* admin */
    SHM_EV_ENABLE,   /* admin */
    SHM_EV_RESET,    /* admin; arg = SHM_RESET_* mask */
    SHM_EV_RECLAIM,  /* in-flight of a dead owner cleared; arg = count */
    SHM_EV_CLOCK,    /* wall clock stepped back; arg = step ms */
    /* a store client's (shm_cdef.h); text = actor */
    SHM_EV_CLIENT_ADD,
    SHM_EV_CLIENT_SET,    /* arg = the SHM_CDEF_SET_* mask */
    SHM_EV_CLIENT_ROTATE, /* arg = until when the replaced key works */
    SHM_EV_CLIENT_REVOKE,
};

typedef struct shm_event_s { /* 64 bytes, stored as is */
    int64_t ts_ms;
    int64_t arg;
    int32_t pid;    /* the process that caused it */
    uint16_t type;  /* enum shm_event_type */
    uint8_t status; /* status after the event */
    uint8_t reason; /* enum shm_reason */
    char text[40];  /* actor or detail, NUL terminated */
} shm_event_t;

/* Up to max events of a key, oldest first; *n set to the count. Returns 0, SHM_ENOTFOUND. */
int shm_key_history(shm_t *s, const char *name, shm_event_t *out, unsigned max, unsigned *n);

typedef struct shm_provider_s {
    char name[SHM_NAME_MAX + 1];
    int circuit; /* enum shm_circuit */
    int reason;
    int64_t since_ms, open_until_ms;
    uint32_t consec_failures; /* 429/5xx/timeout/connect outcomes since the last success */
    uint64_t failures;        /* all such outcomes */
    int64_t updated_ms;
    /* The circuit breaker's rolling 60 s (counted only when the policy turns it on). An OPEN
     * circuit whose open_until_ms has passed is half-open: readers show it so. */
    uint64_t window_requests, window_errors;
} shm_provider_t;

/* Returns 0, SHM_ENOTFOUND, SHM_EINVAL. */
int shm_provider_get(shm_t *s, const char *name, shm_provider_t *out);

/* All providers sorted by name; free *out with shm_snapshot_free. Returns 0, SHM_ENOMEM. */
int shm_providers(shm_t *s, shm_provider_t **out, unsigned *n);

/* Set a provider's circuit (created if missing). Returns 0, SHM_EINVAL, SHM_ERDONLY. */
int shm_provider_set_circuit(shm_t *s, const char *name, int circuit, int64_t open_until_ms,
                             int reason, int64_t now_ms);

/* Cluster mode (server/cluster/): take a circuit another host set for this provider -
 * SHM_CIRCUIT_CLOSED or _OPEN (HALF_OPEN is each host's own: an OPEN circuit whose time is up),
 * reason, since_ms (the other host's since_ms) and until_ms (its open_until_ms) - when it is
 * newer than the provider's own: since_ms later, or the same since_ms and circuit with a later
 * until_ms. A provider without a record here takes it (created). CLOSED starts the breaker's
 * window afresh, as a half-open success does. Returns 1 (taken), 0 (its own is as new or
 * newer), SHM_EINVAL, SHM_ERDONLY. */
int shm_provider_adopt(shm_t *s, const char *name, int circuit, int reason, int64_t since_ms,
                       int64_t until_ms, int64_t now_ms);

/* ---- Clients: the gateway's own API keys' budgets ----------------------------------------- *
 *
 * The "clients" database holds one record per configured client key (by name; never a
 * secret): limits and usage, checked and reserved inside shm_key_admit() when the request
 * names its client (shm_admit_req_t.client), so that they are exact across threads and
 * processes like a key's (50 racing requests against a budget of 10 admit 10).
 *   rpm               admissions in any 60 s (a rolling window, as for keys)
 *   rpd               admissions per UTC day
 *   tokens_per_day/_month, cost_per_day/_month (micro-USD)   per UTC day / calendar month:
 *       admission reserves the request's estimate (tokens, cost_micro_usd; clamped to the
 *       smallest budget of its kind, so one oversized request passes an unspent budget) and
 *       needs used + estimate <= budget; recording reconciles the reservation to the real
 *       usage and cost of the outcome (which may overshoot by that request's underestimate;
 *       then nothing is admitted until the day or month turns).
 * Recording an outcome of class 429, 5xx, timeout, connect or auth (the upstream did not
 * serve it), or releasing with refund, gives the client's whole reservation back (RPM, RPD,
 * tokens, cost): a retry is admitted afresh and a request that failed costs the client
 * nothing. A cancelled request without usage keeps its estimate. Release without refund
 * keeps the estimate as spent. A client gone from the store meanwhile is not counted.
 * 0 = unlimited everywhere. The client's clock, day and month follow the rules of "Time". */

typedef struct shm_client_spec_s {
    const char *name; /* unique, 1..SHM_NAME_MAX bytes */
    uint32_t rpm, rpd;
    uint64_t tokens_per_day, tokens_per_month;
    uint64_t cost_per_day_micro_usd, cost_per_month_micro_usd;
    int cluster; /* 1: admitted from leases (shm_lease.h); ignored without a limit */
} shm_client_spec_t;

/* Make the store's client set match specs in one transaction: new clients are created,
 * existing ones get the new limits (usage kept), clients not in specs are orphaned (kept,
 * readable, never admitted) and restored when they come back. Store clients (shm_cdef.h)
 * are left alone. stats may be NULL. Returns 0, SHM_EINVAL (bad or duplicate name),
 * SHM_ECONFLICT (a spec names a store client; nothing changed), SHM_ERDONLY, SHM_EFULL. */
int shm_clients_sync(shm_t *s, const shm_client_spec_t *specs, unsigned n, int64_t now_ms,
                     shm_sync_stats_t *stats);

/* shm_clients_sync() over cfg->client_keys (USD budgets to micro-USD). */
int shm_clients_sync_cfg(shm_t *s, const struct cfg_s *cfg, int64_t now_ms,
                         shm_sync_stats_t *stats);

typedef struct shm_client_s {
    char name[SHM_NAME_MAX + 1];
    int orphaned;
    uint32_t rpm, rpd; /* limits, 0 = unlimited */
    uint64_t tokens_per_day, tokens_per_month;
    uint64_t cost_per_day_micro_usd, cost_per_month_micro_usd;
    uint32_t rpm_used, rpd_used; /* at the now_ms of the read */
    /* reservations of requests in flight plus the recorded usage of the day / month */
    uint64_t tokens_day_used, tokens_month_used;
    uint64_t cost_day_used_micro_usd, cost_month_used_micro_usd;
    int64_t day_reset_ms, month_reset_ms; /* when the day / month budgets start afresh */
    uint64_t requests;                    /* admitted (refunded ones not counted) */
    uint64_t prompt_tokens, completion_tokens, cost_micro_usd; /* recorded totals */
    int64_t last_admit_ms, created_ms, updated_ms;
} shm_client_t;

/* One client as of now_ms. Returns 0, SHM_ENOTFOUND, SHM_EINVAL. */
int shm_client_get(shm_t *s, const char *name, int64_t now_ms, shm_client_t *out);

/* All clients sorted by name, one read transaction; free *out with shm_snapshot_free; *n may
 * be 0. Returns 0, SHM_ENOMEM. */
int shm_clients(shm_t *s, int64_t now_ms, shm_client_t **out, unsigned *n);

/* Admin: start a client's budgets afresh. what: SHM_RESET_RPM (window), SHM_RESET_RPD (the
 * day's requests), SHM_RESET_TPM (tokens and cost of the day and the month),
 * SHM_RESET_COUNTERS (totals). Returns 0, SHM_ENOTFOUND, SHM_EINVAL, SHM_ERDONLY. */
int shm_client_reset(shm_t *s, const char *name, unsigned what, int64_t now_ms);

/* ---- Admin actions (llmgatectl); each is one transaction and a history event ----------- *
 * actor: who did it, for the history ("llmgatectl uid 1000"); NULL = "admin".
 * All return 0, SHM_ENOTFOUND, SHM_EINVAL, SHM_ERDONLY; the running servers obey at once
 * because admission reads the same record. */

/* COOLING until now_ms + duration_ms (duration_ms > 0). */
int shm_key_cooldown(shm_t *s, const char *name, int64_t duration_ms, const char *actor,
                     int64_t now_ms);
int shm_key_disable(shm_t *s, const char *name, const char *actor, int64_t now_ms);
/* ACTIVE again from any status (clears cooling, invalid, depleted, half-open). */
int shm_key_enable(shm_t *s, const char *name, const char *actor, int64_t now_ms);

/* Cluster mode (server/cluster/): take a status another host set for this key - status
 * (not HALF_OPEN, which each host decides for itself), reason, since_ms (the other host's
 * status_since_ms) and until_ms (its cooldown_until_ms) - when it is newer than the key's:
 * since_ms later, or the same since_ms and status with a later until_ms. A history event names
 * actor ("cluster node-b"). Returns 1 (taken), 0 (the key's own is as new or newer),
 * SHM_ENOTFOUND, SHM_EINVAL, SHM_ERDONLY. */
int shm_key_adopt(shm_t *s, const char *name, int status, int reason, int64_t since_ms,
                  int64_t until_ms, const char *actor, int64_t now_ms);

#define SHM_RESET_RPM      1u
#define SHM_RESET_RPD      2u
#define SHM_RESET_TPM      4u
#define SHM_RESET_COUNTERS 8u /* totals, consecutive counts, last error, latency ring */
#define SHM_RESET_ALL      15u
int shm_key_reset(shm_t *s, const char *name, unsigned what, const char *actor, int64_t now_ms);

/* Delete every orphaned key (record, latency, history). *pruned may be NULL. */
int shm_keys_prune(shm_t *s, unsigned *pruned);

/* Names for display. */
const char *shm_status_name(int status);
const char *shm_reason_name(int reason);
const char *shm_class_name(int cls);
const char *shm_event_name(int type);
const char *shm_circuit_name(int circuit);

#endif
