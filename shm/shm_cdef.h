/* shm_cdef.h - client keys kept in the store: created, changed, rotated and revoked live.
 *
 * Design note
 * -----------
 * A relay adds customers and revokes leaked keys while it serves. Such client keys live in
 * the store instead of the configuration: `llmgatectl client add` writes one, and every
 * server sharing the state dir (every worker of every process) accepts it at its next
 * request, because authentication reads the store (shm_cdef_auth) whenever a presented key
 * is not one of the configuration's. Nothing is cached: a revoke that has returned is
 * obeyed by every request authenticated after it.
 *
 * Named databases (in the one environment of shm.h):
 *   client_defs     client name -> definition (shm_drec_t, fixed layout, versioned): status,
 *                   the SHA-256 of its key, and during a rotation's grace the SHA-256 of the
 *                   key it replaced with the grace deadline; the models it may use; its
 *                   expiry; who created it and when.
 *   client_digests  SHA-256 (32 bytes) -> client name. Exactly one entry for each digest a
 *                   definition holds (current, and the one it replaced, until the next
 *                   rotation: valid until its grace deadline, then told "replaced");
 *                   both change in one transaction. A revoked client's digests stay, so its
 *                   key is told "revoked" rather than "unknown".
 *   client_history  client name -> ring of its last SHM_HISTORY_RING events (the layout of
 *                   the keys' history): added, changed, rotated, revoked, with who did it.
 * Its budgets and usage are a record of "clients" (shm.h, "Clients"), flagged as the store's
 * own: shm_clients_sync never orphans or changes it, and a configuration client of the same
 * name is refused (SHM_ECONFLICT), as `client add` is for a name the configuration has.
 * The key itself is never stored, only its SHA-256 (a 256-bit random key cannot be found
 * from it); the lookup by digest is a B-tree search whose time depends on the digest, which
 * tells nothing about any key (finding a key for a digest prefix is a preimage search).
 *
 * Schema: additions, like "leases" (shm_obj.h tells how such additions stay compatible); a
 * read-only open of a store without them sees no store clients.
 *
 * Threads: any; every call is one transaction. Errors as in shm.h, and:
 *   SHM_EEXIST     a client of that name is already in the store (revoked ones too)
 *   SHM_ECONFLICT  the name is a client of the configuration (its budget record is live)
 */
#ifndef LLMGATE_SHM_CDEF_H
#define LLMGATE_SHM_CDEF_H

#include <stdint.h>

#include "shm/shm.h"

#define SHM_CDEF_MODELS_MAX 511 /* the models field: names separated by ',' */
#define SHM_CDEF_MODELS_N   32  /* at most this many names */

enum shm_cdef_status {
    SHM_CDEF_ACTIVE = 1,
    SHM_CDEF_REVOKED = 2,
};

/* What a client may do. Budgets as in shm_client_spec_t (0 = unlimited). */
typedef struct shm_cdef_spec_s {
    uint32_t rpm, rpd;
    uint64_t tokens_per_day, tokens_per_month;
    uint64_t cost_per_day_micro_usd, cost_per_month_micro_usd;
    int64_t expires_ms;                   /* wall clock; 0 = never */
    char models[SHM_CDEF_MODELS_MAX + 1]; /* "a,b": allowed client-facing names; "" = all */
} shm_cdef_spec_t;

/* Fields of a spec that shm_cdef_set changes. */
#define SHM_CDEF_SET_RPM      (1u << 0)
#define SHM_CDEF_SET_RPD      (1u << 1)
#define SHM_CDEF_SET_TOK_DAY  (1u << 2)
#define SHM_CDEF_SET_TOK_MON  (1u << 3)
#define SHM_CDEF_SET_COST_DAY (1u << 4)
#define SHM_CDEF_SET_COST_MON (1u << 5)
#define SHM_CDEF_SET_EXPIRES  (1u << 6)
#define SHM_CDEF_SET_MODELS   (1u << 7)

/* A definition as the CLI shows it. Fingerprints are the first 4 bytes of a key's SHA-256
 * in hex: they tell keys apart and reveal nothing of them. */
typedef struct shm_cdef_s {
    char name[SHM_NAME_MAX + 1];
    int status; /* enum shm_cdef_status */
    shm_cdef_spec_t spec;
    char fingerprint[9];
    char prev_fingerprint[9]; /* "" when no rotation is in grace */
    int64_t prev_until_ms;    /* the replaced key works until then */
    int64_t created_ms, updated_ms, revoked_ms, rotated_ms;
    char created_by[40]; /* actor */
} shm_cdef_t;

/* Create client name with the key whose SHA-256 is digest. Creates its budget record too.
 * actor: who did it, for the history (NULL = "admin"). Returns 0, SHM_EEXIST, SHM_ECONFLICT,
 * SHM_EINVAL (bad name, spec, or a digest some client already has), SHM_ERDONLY, SHM_EFULL. */
int shm_cdef_add(shm_t *s, const char *name, const unsigned char digest[32],
                 const shm_cdef_spec_t *spec, const char *actor, int64_t now_ms);

/* Change the fields of what (SHM_CDEF_SET_*) to spec's. Usage is kept; a budget lowered
 * below what is used admits nothing more until the window, day or month turns. Returns 0,
 * SHM_ENOTFOUND, SHM_EINVAL (a revoked client too), SHM_ERDONLY. */
int shm_cdef_set(shm_t *s, const char *name, const shm_cdef_spec_t *spec, unsigned what,
                 const char *actor, int64_t now_ms);

/* A new key (digest) for name; the current one keeps working for grace_ms (0: not at all)
 * and is then told "replaced"; a key replaced before becomes unknown. Returns 0, SHM_ENOTFOUND,
 * SHM_EINVAL (revoked, or a digest some client has), SHM_ERDONLY. */
int shm_cdef_rotate(shm_t *s, const char *name, const unsigned char digest[32], int64_t grace_ms,
                    const char *actor, int64_t now_ms);

/* Revoke name: its keys are refused from now on (in flight requests finish); its usage stays
 * readable. Returns 0, SHM_ENOTFOUND, SHM_EINVAL (already revoked), SHM_ERDONLY. */
int shm_cdef_revoke(shm_t *s, const char *name, const char *actor, int64_t now_ms);

/* One definition; every definition sorted by name (free *out with shm_snapshot_free; *n may
 * be 0); a client's history, oldest first. 0, SHM_ENOTFOUND, SHM_ENOMEM, SHM_ECORRUPT. */
int shm_cdef_get(shm_t *s, const char *name, shm_cdef_t *out);
int shm_cdefs(shm_t *s, shm_cdef_t **out, unsigned *n);
int shm_cdef_history(shm_t *s, const char *name, shm_event_t *out, unsigned max, unsigned *n);

/* What authentication learns of a presented key's digest. */
enum shm_cdef_auth_result {
    SHM_AUTH_OK = 0,
    SHM_AUTH_UNKNOWN,  /* no client has this key */
    SHM_AUTH_REVOKED,  /* at_ms: when */
    SHM_AUTH_EXPIRED,  /* at_ms: the expiry */
    SHM_AUTH_REPLACED, /* rotated away; at_ms: when its grace ended */
};

typedef struct shm_cdef_auth_s {
    int result; /* enum shm_cdef_auth_result */
    int64_t at_ms;
    char name[SHM_NAME_MAX + 1];          /* set unless UNKNOWN */
    char models[SHM_CDEF_MODELS_MAX + 1]; /* with OK */
} shm_cdef_auth_t;

/* Look digest up at now_ms (SHM_NOW: the store's clock), in one read transaction. Returns 0
 * with out->result set (a store without these databases: UNKNOWN), or SHM_EINVAL,
 * SHM_ECORRUPT, SHM_EREADERS. */
int shm_cdef_auth(shm_t *s, const unsigned char digest[32], int64_t now_ms, shm_cdef_auth_t *out);

/* ---- cluster mode (shm_cdef_sync.c) -------------------------------------------------------
 * Several hosts, each with its own store, share their store clients through Redis
 * (server/cluster/clients.h): a host exports its definitions, digests included (never a key:
 * the store has none), and adopts the others' when they are newer. Newer (shm_cdef_newer): a
 * later updated_ms; at the same updated_ms a revoked one over an active one, then the greater
 * digest, then the greater prev_digest, then the other fields by value (every host decides the
 * same). Adoption merges (shm_cdef_merge): the newer definition, but the keys of the later
 * rotation (rotated_ms) and a revoke from either side, so that neither a rotation nor a revoke
 * is lost to a change made on another host before it was heard (two changes of limits within
 * the second it takes to spread: the later wins). The merge is commutative and idempotent, so
 * the hosts converge. */

/* A definition whole, as nodes send it to each other. */
typedef struct shm_cdef_raw_s {
    char name[SHM_NAME_MAX + 1];
    int status; /* enum shm_cdef_status */
    shm_cdef_spec_t spec;
    unsigned char digest[32], prev_digest[32]; /* prev: all zero when none */
    int64_t prev_until_ms;
    int64_t created_ms, updated_ms, revoked_ms, rotated_ms;
    char created_by[40];
    int cluster; /* its budget record is admitted from leases (SHM_CF_CLUSTER); export only */
} shm_cdef_raw_t;

/* Every definition with its limits, sorted by name (free *out with shm_snapshot_free; *n may
 * be 0). 0, SHM_ENOMEM, SHM_ECORRUPT, SHM_EREADERS. */
int shm_cdef_export(shm_t *s, shm_cdef_raw_t **out, unsigned *n);

/* 1 if models is a models field shm_cdef_add accepts (names of [A-Za-z0-9._:/-] split by ',',
 * at most SHM_CDEF_MODELS_N of them, SHM_CDEF_MODELS_MAX bytes; "" = all), else 0. */
int shm_cdef_models_ok(const char *models);

/* 1 if a is newer than b (the rule above), else 0. */
int shm_cdef_newer(const shm_cdef_raw_t *a, const shm_cdef_raw_t *b);

/* The merge of two definitions of one client (the rule above) into *out. */
void shm_cdef_merge(const shm_cdef_raw_t *mine, const shm_cdef_raw_t *theirs, shm_cdef_raw_t *out);

/* Take def (from node, for the history: "cluster <node>") merged with this store's (whole when
 * unknown here) when that changes anything: the definition, its digest index (a digest it no longer
 * holds is removed), and the limits of its budget record (usage kept), flagged SHM_CF_CLUSTER when
 * cluster is set and it has a limit, orphaned when revoked. Returns 1 (taken), 0 (no news),
 * SHM_EINVAL (a bad definition: a name of other characters than [A-Za-z0-9._-], a zero digest,
 * models shm_cdef_add refuses...; or a digest another client holds here), SHM_ECONFLICT (a
 * configuration client of that name), SHM_ERDONLY, SHM_EFULL. */
int shm_cdef_adopt(shm_t *s, const shm_cdef_raw_t *def, int cluster, const char *node,
                   int64_t now_ms);

/* Set (cluster = 1) or clear SHM_CF_CLUSTER on every store client's budget record: set only
 * on those with a limit. Returns how many records changed, or an error as in shm.h. */
int shm_cdef_cluster_mark(shm_t *s, int cluster);

#endif
