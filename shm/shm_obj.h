/* shm_obj.h - object affinity: which upstream key created a stateful upstream object.
 *
 * Design note
 * -----------
 * Some upstream objects live at the provider and belong to the organisation of the key
 * that created them: an OpenAI Responses API response ("resp_68af..."), later conversations
 * or files. A follow-up that names one (previous_response_id, GET or DELETE
 * /v1/responses/{id}) only works when it is sent with a key of the same organisation. The
 * server records, when a response creates such an object, the object's id and the key that
 * created it; a follow-up looks the id up and is routed to that key, or to a key of the same
 * group (keys of one group share an organisation, so they share objects), or fails clearly.
 * The entry lives in the store, so every worker, every llmgate process sharing the state dir
 * and a restarted server route the follow-up alike; the CLI reads the same table.
 *
 * Named databases (in the one environment of shm.h, opened with the others):
 *   objects            object id -> object record (fixed layout, versioned, ~410 bytes,
 *                      inline): key, group, provider, client, model, created_ms, expires_ms.
 *   objects_by_expiry  big-endian expires_ms (sign bit flipped) || object id -> empty value.
 *                      Exactly one entry per object record, with the record's expires_ms;
 *                      both change in one transaction. Pruning and eviction walk it with a
 *                      cursor from its first entry: soonest expiry first.
 *
 * Schema version: unchanged (SHM_SCHEMA_VERSION stays as it was). The two databases are
 * additions: no existing record changes layout or meaning, and nothing outside them refers
 * to them. A store written before them gains them, empty, the first time a writer of this
 * build opens it (MDB_CREATE, like "clients"); a read-only open of such a store (the CLI
 * before the server ran) sees an empty table. An older build that opens a store holding
 * them never opens them (LMDB's max DBIs bounds the handles a process opens, not the
 * databases a file holds), so it runs as before; it neither prunes nor changes them, so
 * they stay consistent until a build of this one writes again. A change to the object
 * record itself is a new SHM_OBJ_REC_VERSION and a new SHM_SCHEMA_VERSION.
 *
 * Time and expiry. Every entry has an absolute wall-clock expires_ms (the caller's TTL, e.g.
 * OpenAI's 30 days for stored responses). An entry is live while now_ms < expires_ms; at
 * and after expires_ms shm_obj_get() no longer returns it and it is removed by the next put
 * that prunes as far, by shm_obj_prune(), or by eviction. now_ms is wall-clock ms or
 * SHM_NOW (0): writes read opts.clock inside the write transaction, under the writer lock
 * (see "Time" in shm.h); reads read it when they start.
 *
 * Bound. Every put first removes up to SHM_OBJ_PRUNE_BATCH expired entries, soonest expiry
 * first, and then, while the table holds max_entries or more, evicts up to
 * SHM_OBJ_EVICT_BATCH entries with the soonest expiry (the oldest, when every entry has the
 * same TTL): the new entry is never the one evicted, and with the same max_entries on every
 * put the table never holds more than max_entries. After max_entries is lowered, each put
 * takes it down by up to SHM_OBJ_EVICT_BATCH - 1 until it fits. A put therefore stays a
 * short transaction whatever the table holds. An evicted entry is gone as if expired: its
 * follow-ups are routed like requests without affinity (the upstream answers 404 if the key
 * is of another organisation). At ~410 bytes per record plus its index entry, 100,000
 * entries take ~55 MB of map.
 *
 * Secrets. An entry holds names only: the configured key, group, provider and client-key
 * names and the client-facing model. Never a credential, never a request or response body.
 * The object id is stored as given; it is an upstream handle, not a credential, but it lets
 * whoever holds it fetch the object through the gateway: the server must compare the
 * requesting client with the entry's client before it serves a GET or DELETE.
 *
 * Threads and ownership. Every function may be called from any thread of a process that
 * opened the store, at the same time, as all of shm.h; nothing is kept between calls; every
 * pointer argument is only read (or, for out, written) during the call.
 *
 * Corrupt records (see "Corrupt records" in shm.h). An object record is checked before
 * anything of it is read: its length, version and size fields, a NUL inside each of its
 * name fields (key, group, provider, client, model). An index entry is checked as well: its
 * key must be 8 bytes of expiry and a valid object id, its value empty, and the object
 * record it names must exist with that expiry; an object record must have its index entry.
 * A record or index entry that fails is corrupt: it is never read past, reinterpreted,
 * skipped or overwritten. The call that meets it returns SHM_ECORRUPT and writes nothing:
 * shm_obj_get, shm_obj_put and shm_obj_del of that id, and shm_obj_put, shm_obj_prune and
 * shm_obj_count whose walk in expiry order reaches it (pruning and eviction stop there, so
 * puts of other ids fail too once it is among the entries they would remove: object affinity
 * then stops until the operator acts). shm_store_corrupt() names the record, e.g.
 *     object record "resp_1" (database objects): 3 bytes, not 408
 * The remedy is the operator's, as for every corrupt record: remove the state dir.
 *
 * Errors: 0 or a negative SHM_E* code (shm_strerror() names it); all calls may also return
 * SHM_EINTERNAL and SHM_ENOMEM, writes SHM_ERDONLY (store opened read-only) and SHM_EFULL
 * (the map reached opts.map_max; an MDB_MAP_FULL below it grows the map and re-runs the
 * transaction, see "Map size" in shm.h).
 */
#ifndef LLMGATE_SHM_OBJ_H
#define LLMGATE_SHM_OBJ_H

#include <stddef.h>
#include <stdint.h>

#include "shm/shm.h"

#define SHM_OBJ_ID_MAX      127    /* object ids: 1..127 bytes, no NUL */
#define SHM_OBJ_MODEL_MAX   127    /* model names, bytes without NUL */
#define SHM_OBJ_MAX_DEFAULT 100000 /* max_entries 0 */
#define SHM_OBJ_PRUNE_BATCH 16     /* expired entries a put removes at most */
#define SHM_OBJ_EVICT_BATCH 64     /* live entries a put evicts at most */

/* An entry. Every name field is NUL-terminated inside its array. */
typedef struct shm_obj_s {
    char key[SHM_NAME_MAX + 1];        /* configured name of the key that created it; required */
    char group[SHM_NAME_MAX + 1];      /* that key's group, "" = the key alone; keys of one group
                                        * share objects (one organisation) */
    char provider[SHM_NAME_MAX + 1];   /* the key's provider */
    char client[SHM_NAME_MAX + 1];     /* the client key that asked for it, "" = none */
    char model[SHM_OBJ_MODEL_MAX + 1]; /* the client-facing model it was created for */
    int64_t created_ms;                /* wall clock; 0 on put = the put's now */
    int64_t expires_ms;                /* wall clock; live while now < expires_ms */
} shm_obj_t;

/* Record that object id (id_len bytes, not NUL-terminated) was created by o->key, in one
 * write transaction: an older entry of id is replaced (its index entry goes with it), up to
 * SHM_OBJ_PRUNE_BATCH expired entries are removed, and up to SHM_OBJ_EVICT_BATCH of the
 * soonest to expire while the table holds max_entries or more (see "Bound"); max_entries 0 =
 * SHM_OBJ_MAX_DEFAULT. now_ms: wall clock or SHM_NOW.
 * Returns 0; SHM_EINVAL: s, id or o NULL, id empty, longer than SHM_OBJ_ID_MAX or holding a
 * NUL, o->key empty, a name field of o without its NUL, or o->expires_ms not after now (so
 * nothing is written; with SHM_NOW that now is read under the writer lock); SHM_ECORRUPT:
 * the old record of id, or an entry that pruning or eviction reached, is corrupt (nothing
 * written); SHM_ERDONLY; SHM_EFULL. */
int shm_obj_put(shm_t *s, const char *id, size_t id_len, const shm_obj_t *o, unsigned max_entries,
                int64_t now_ms);

/* One entry of a batch: id (id_len bytes) and what to record of it. */
typedef struct shm_obj_put_s {
    const char *id;
    size_t id_len;
    const shm_obj_t *o;
} shm_obj_put_t;

/* shm_obj_put() of items[0..n) in order, in one write transaction: all are written or none.
 * Any item that shm_obj_put() would refuse as SHM_EINVAL (checked first, or when its
 * expires_ms is not after the transaction's now) fails the whole call, as does any other
 * error; then nothing is written and the caller may put the items one by one to find it.
 * The same id twice: the later wins. n 0: nothing, 0. One transaction for a loop
 * iteration's new objects, as the proxy takes them (attempt.c). */
int shm_obj_put_batch(shm_t *s, const shm_obj_put_t *items, unsigned n, unsigned max_entries,
                      int64_t now_ms);

/* The live entry of id into *out, from one read transaction. Returns 0; SHM_ENOTFOUND: no
 * entry, or one that has expired (at now_ms: wall clock or SHM_NOW), or a read-only open of a
 * store written before the objects databases; SHM_EINVAL (as for put, or out NULL);
 * SHM_ECORRUPT: the record of id is corrupt (*out untouched). */
int shm_obj_get(shm_t *s, const char *id, size_t id_len, shm_obj_t *out, int64_t now_ms);

/* Forget id (the object was deleted upstream, or the key was removed), with its index
 * entry. Returns 0 when an entry was removed (live, or expired and not yet pruned);
 * SHM_ENOTFOUND: no entry; SHM_EINVAL; SHM_ECORRUPT: its record or index entry is corrupt
 * (nothing removed); SHM_ERDONLY. */
int shm_obj_del(shm_t *s, const char *id, size_t id_len);

/* Remove every entry expired at now_ms (wall clock or SHM_NOW, read in each transaction),
 * soonest expiry first, in transactions of at most 1024 removals each so that other writers
 * are not held up; for the server's housekeeping (e.g. once a minute; puts prune as they go,
 * so the table is bounded without it). *removed (may be NULL) counts the entries removed,
 * also when an error stops the walk: the transactions before the one that failed are
 * committed, that one wrote nothing. Returns 0, SHM_EINVAL (s NULL), SHM_ECORRUPT (an entry
 * on the way is corrupt), SHM_ERDONLY, SHM_EFULL. */
int shm_obj_prune(shm_t *s, int64_t now_ms, unsigned *removed);

/* Entries in the table, from one read transaction: *stored counts all records (live and
 * expired not yet pruned; O(1)), *live those not expired at now_ms (wall clock or SHM_NOW;
 * walks the expired ones, which puts and shm_obj_prune keep few). Either may be NULL.
 * Returns 0 (both 0 on a read-only open of a store without the objects databases),
 * SHM_EINVAL (s NULL), SHM_ECORRUPT (a malformed index entry among the expired ones). */
int shm_obj_count(shm_t *s, int64_t now_ms, unsigned *live, unsigned *stored);

#endif
