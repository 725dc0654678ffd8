/* shm.c - the state plane's environment: opening the state dir safely, the schema meta,
 * the transaction wrappers that survive MDB_MAP_FULL and MDB_MAP_RESIZED, housekeeping.
 * Admission and outcomes live in shm_key.c, owners in shm_proc.c, views and admin actions
 * in shm_admin.c, record helpers in shm_rec.c. */
#include "shm/shm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHM_MAGIC        "llmgate-state"
#define SHM_DEFAULT_MAP  ((size_t)64 << 20)
#define SHM_DEFAULT_MAX  ((size_t)64 << 30)
#define SHM_GROW_PERCENT 80
#define SHM_MAX_RETRIES  24

const char *shm_strerror(int rc)
{
    switch (rc) {
    case SHM_OK:
        return "success";
    case SHM_EINVAL:
        return "invalid argument";
    case SHM_ENOMEM:
        return "out of memory";
    case SHM_EIO:
        return "I/O error on the state dir";
    case SHM_EPERM:
        return "state dir or file permissions are unsafe or insufficient";
    case SHM_EVERSION:
        return "store schema version not supported by this build";
    case SHM_ECORRUPT:
        return "store is corrupt or not an llmgate store";
    case SHM_ENOTFOUND:
        return "not found";
    case SHM_NONE:
        return "no admissible key";
    case SHM_EFULL:
        return "store is full (map_max reached or disk full)";
    case SHM_EOWNERS:
        return "too many processes hold reservations";
    case SHM_ERDONLY:
        return "store opened read-only";
    case SHM_ESTALE:
        return "reservation already finished or not from this process";
    case SHM_EREADERS:
        return "LMDB reader table full";
    case SHM_EBUSY:
        return "state dir is locked or busy";
    case SHM_EINTERNAL:
        return "internal store error";
    case SHM_ECLIENT_BUDGET:
        return "the client is over its budget";
    case SHM_EEXIST:
        return "a client of that name exists";
    case SHM_ECONFLICT:
        return "a client is named both by the configuration and by the store";
    }
    return "unknown error";
}

int shm__err(int rc)
{
    if (rc == 0 || (rc < 0 && rc >= SHM_ECONFLICT))
        return rc;
    switch (rc) {
    case MDB_NOTFOUND:
        return SHM_ENOTFOUND;
    case MDB_MAP_FULL:
        return SHM_EFULL;
    case MDB_READERS_FULL:
        return SHM_EREADERS;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_VALSIZE:
        return SHM_ECORRUPT;
    case MDB_VERSION_MISMATCH:
        return SHM_EVERSION;
    case ENOMEM:
        return SHM_ENOMEM;
    case EACCES:
    case EPERM:
    case EROFS:
        return SHM_EPERM;
    case ENOSPC:
        return SHM_EFULL;
    case EAGAIN:
    case EBUSY:
        return SHM_EBUSY;
    case EIO:
    case ENOENT:
    case ENOTDIR:
        return SHM_EIO;
    }
    return SHM_EINTERNAL;
}

static int64_t realtime_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t shm__now(const shm_t *s, int64_t now_ms)
{
    return now_ms != SHM_NOW ? now_ms : s->clock(s->clock_arg);
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- Transactions ------------------------------------------------------------------------ */

static int shm_adopt_mapsize(shm_t *s)
{
    pthread_rwlock_wrlock(&s->resize_lock);
    int rc = mdb_env_set_mapsize(s->env, 0);
    pthread_rwlock_unlock(&s->resize_lock);
    return rc;
}

/* Double the map (capped at map_max) unless another thread already grew it past seen. */
static int shm_grow(shm_t *s, size_t seen)
{
    MDB_envinfo ei;
    int rc = 0;
    pthread_rwlock_wrlock(&s->resize_lock);
    mdb_env_info(s->env, &ei);
    if (ei.me_mapsize > seen)
        goto out;
    if (ei.me_mapsize >= s->map_max) {
        rc = SHM_EFULL;
        goto out;
    }
    size_t next = ei.me_mapsize * 2;
    if (next > s->map_max)
        next = s->map_max;
    rc = mdb_env_set_mapsize(s->env, next);
out:
    pthread_rwlock_unlock(&s->resize_lock);
    return rc;
}

static size_t shm_mapsize(shm_t *s)
{
    MDB_envinfo ei;
    mdb_env_info(s->env, &ei);
    return ei.me_mapsize;
}

int shm__write(shm_t *s, shm_txn_fn fn, void *arg)
{
    if (s->readonly)
        return SHM_ERDONLY;
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn = NULL;
        pthread_rwlock_rdlock(&s->resize_lock);
        size_t seen = shm_mapsize(s);
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
        if (rc == 0) {
            rc = fn(s, txn, arg);
            if (rc == 0)
                rc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&s->resize_lock);
        if (attempt >= SHM_MAX_RETRIES)
            return shm__err(rc);
        if (rc == MDB_MAP_RESIZED) {
            rc = shm_adopt_mapsize(s);
            if (rc != 0)
                return shm__err(rc);
            continue;
        }
        if (rc == MDB_MAP_FULL) {
            /* Not mdb_env_set_mapsize(env, 0) here: the meta only learns a larger size at
             * the next commit, so adopting it could undo our own growth. Doubling ours is
             * right whether or not another process grew the file meanwhile. */
            rc = shm_grow(s, seen);
            if (rc != 0)
                return shm__err(rc);
            continue;
        }
        return shm__err(rc);
    }
}

int shm__read(shm_t *s, shm_txn_fn fn, void *arg)
{
    for (int attempt = 0;; attempt++) {
        MDB_txn *txn = NULL;
        pthread_rwlock_rdlock(&s->resize_lock);
        int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
        if (rc == 0) {
            rc = fn(s, txn, arg);
            mdb_txn_abort(txn);
        }
        pthread_rwlock_unlock(&s->resize_lock);
        if (rc == MDB_MAP_RESIZED && attempt < SHM_MAX_RETRIES) {
            rc = shm_adopt_mapsize(s);
            if (rc != 0)
                return shm__err(rc);
            continue;
        }
        return shm__err(rc);
    }
}

/* ---- Opening ----------------------------------------------------------------------------- */

static int check_dir(const char *dir, int create, char *err, size_t errlen)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (errno != ENOENT) {
            seterr(err, errlen, "shm: %s: cannot stat state dir: %s", dir, strerror(errno));
            return errno == EACCES ? SHM_EPERM : SHM_EIO;
        }
        if (!create) {
            seterr(err, errlen, "shm: %s: no state dir (start llmgate once to create it)", dir);
            return SHM_ENOTFOUND;
        }
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            seterr(err, errlen, "shm: %s: cannot create state dir: %s", dir, strerror(errno));
            return errno == EACCES ? SHM_EPERM : SHM_EIO;
        }
        if (stat(dir, &st) != 0) {
            seterr(err, errlen, "shm: %s: cannot stat state dir: %s", dir, strerror(errno));
            return SHM_EIO;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        seterr(err, errlen, "shm: %s: state dir is not a directory", dir);
        return SHM_EPERM;
    }
    if (st.st_uid != geteuid()) {
        seterr(err, errlen,
               "shm: %s: state dir is owned by uid %u, not by this user (uid %u): "
               "use a directory of your own",
               dir, (unsigned)st.st_uid, (unsigned)geteuid());
        return SHM_EPERM;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        seterr(err, errlen,
               "shm: %s: state dir is writable by %s (mode %04o): refusing; "
               "run `chmod 700 %s`",
               dir, (st.st_mode & S_IWOTH) ? "others" : "its group", (unsigned)(st.st_mode & 07777),
               dir);
        return SHM_EPERM;
    }
    return 0;
}

/* data.mdb and lock.mdb: ours and 0600 (tightened if a umask or an old build left more). */
static int check_files(const char *dir, char *err, size_t errlen)
{
    static const char *const names[] = {"data.mdb", "lock.mdb"};
    for (unsigned i = 0; i < 2; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0)
            continue;
        if (st.st_uid != geteuid()) {
            seterr(err, errlen, "shm: %s: owned by uid %u, not by this user", path,
                   (unsigned)st.st_uid);
            return SHM_EPERM;
        }
        if ((st.st_mode & 077) && chmod(path, 0600) != 0) {
            seterr(err, errlen, "shm: %s: cannot restrict to mode 0600: %s", path, strerror(errno));
            return SHM_EPERM;
        }
    }
    return 0;
}

typedef struct open_ctx_s {
    int64_t now_ms;
    int created;
    uint32_t found_version;
    char *err;
    size_t errlen;
} open_ctx_t;

static int meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, void *out, size_t size)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc != 0)
        return rc;
    if (v.mv_size != size)
        return SHM_ECORRUPT;
    memcpy(out, v.mv_data, size);
    return 0;
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *data, size_t size)
{
    MDB_val k = {strlen(key), (void *)key}, v = {size, (void *)data};
    return mdb_put(txn, dbi, &k, &v, 0);
}

/* Check the meta; on a fresh env (write mode) create it. Never modifies a store whose
 * version is not ours: the check comes first and the transaction is aborted on failure. */
static int open_dbs_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    open_ctx_t *c = arg;
    unsigned cflag = s->readonly ? 0 : MDB_CREATE;
    int rc = mdb_dbi_open(txn, "meta", 0, &s->dbi_meta);
    int fresh = 0;
    if (rc == MDB_NOTFOUND) {
        /* No meta: a new store, unless the env holds something else. */
        MDB_dbi main;
        MDB_stat st;
        if ((rc = mdb_dbi_open(txn, NULL, 0, &main)) != 0)
            return rc;
        if ((rc = mdb_stat(txn, main, &st)) != 0)
            return rc;
        if (st.ms_entries != 0) {
            seterr(c->err, c->errlen,
                   "shm: %s: data.mdb is an LMDB store without llmgate meta: not an llmgate "
                   "store; point state_dir at an empty directory",
                   s->dir);
            return SHM_ECORRUPT;
        }
        if (s->readonly) {
            seterr(c->err, c->errlen, "shm: %s: no llmgate store here yet", s->dir);
            return SHM_ENOTFOUND;
        }
        if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->dbi_meta)) != 0)
            return rc;
        fresh = 1;
    } else if (rc != 0) {
        return rc;
    }
    if (fresh) {
        uint32_t v = SHM_SCHEMA_VERSION;
        if ((rc = meta_put(txn, s->dbi_meta, "magic", SHM_MAGIC, sizeof(SHM_MAGIC) - 1)) ||
            (rc = meta_put(txn, s->dbi_meta, "schema_version", &v, sizeof(v))) ||
            (rc = meta_put(txn, s->dbi_meta, "created_ms", &c->now_ms, sizeof(c->now_ms))))
            return rc;
        c->created = 1;
    } else {
        char magic[sizeof(SHM_MAGIC) - 1];
        uint32_t v = 0;
        rc = meta_get(txn, s->dbi_meta, "magic", magic, sizeof(magic));
        if (rc != 0 || memcmp(magic, SHM_MAGIC, sizeof(magic)) != 0) {
            seterr(c->err, c->errlen,
                   "shm: %s: meta has no llmgate magic: not an llmgate store; point "
                   "state_dir at an empty directory",
                   s->dir);
            return SHM_ECORRUPT;
        }
        rc = meta_get(txn, s->dbi_meta, "schema_version", &v, sizeof(v));
        if (rc != 0) {
            seterr(c->err, c->errlen, "shm: %s: meta has no schema_version: store is damaged",
                   s->dir);
            return SHM_ECORRUPT;
        }
        c->found_version = v;
        if (v != SHM_SCHEMA_VERSION) {
            seterr(c->err, c->errlen,
                   "shm: %s: store schema version %u is %s than this llmgate's (%u); refusing "
                   "to reinterpret it: run the llmgate that wrote it, or point state_dir at a "
                   "new directory",
                   s->dir, (unsigned)v, v > SHM_SCHEMA_VERSION ? "newer" : "older or unknown",
                   (unsigned)SHM_SCHEMA_VERSION);
            return SHM_EVERSION;
        }
    }
    if ((rc = mdb_dbi_open(txn, "keys", cflag, &s->dbi_keys)) ||
        (rc = mdb_dbi_open(txn, "latency", cflag, &s->dbi_lat)) ||
        (rc = mdb_dbi_open(txn, "history", cflag, &s->dbi_hist)) ||
        (rc = mdb_dbi_open(txn, "providers", cflag, &s->dbi_prov)) ||
        (rc = mdb_dbi_open(txn, "owners", cflag, &s->dbi_owners))) {
        if (rc == MDB_NOTFOUND)
            seterr(c->err, c->errlen, "shm: %s: store is missing a database: damaged", s->dir);
        return rc == MDB_NOTFOUND ? SHM_ECORRUPT : rc;
    }
    /* Added after the others: a read-only open of a store without it sees no clients. */
    rc = mdb_dbi_open(txn, "clients", cflag, &s->dbi_clients);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    s->has_clients = rc == 0;
    /* Object affinity (shm_obj.h), added later still, the same way; both or none. */
    rc = mdb_dbi_open(txn, "objects", cflag, &s->dbi_objs);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "objects_by_expiry", cflag, &s->dbi_objx);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    s->has_objects = rc == 0;
    /* Leases (shm_lease.h), the same way. */
    rc = mdb_dbi_open(txn, "leases", cflag, &s->dbi_leases);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    s->has_leases = rc == 0;
    /* Store clients (shm_cdef.h), the same way; all three or none. */
    rc = mdb_dbi_open(txn, "client_defs", cflag, &s->dbi_cdefs);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "client_digests", cflag, &s->dbi_cdig);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "client_history", cflag, &s->dbi_chist);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    s->has_cdefs = rc == 0;
    /* Client usage (shm_usage.h), the same way. */
    rc = mdb_dbi_open(txn, "client_usage", cflag, &s->dbi_usage);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    s->has_usage = rc == 0;
    /* History (shm_stats.h), the same way. */
    rc = mdb_dbi_open(txn, "stats", cflag, &s->dbi_stats);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    s->has_stats = rc == 0;
    return 0;
}

static int open_dbs(shm_t *s, open_ctx_t *c)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0)
        return rc;
    rc = open_dbs_fn(s, txn, c);
    if (rc == 0)
        rc = mdb_txn_commit(txn); /* also for read-only: keeps the dbi handles */
    else
        mdb_txn_abort(txn);
    return rc;
}

int shm_store_open(const shm_opts_t *opts, int64_t now_ms, shm_t **out, char *err, size_t errlen)
{
    shm_t *s = NULL;
    int rc;
    open_ctx_t c = {.now_ms = now_ms, .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (!opts || !out || !opts->dir || !opts->dir[0] || opts->durability < SHM_DUR_FAST ||
        opts->durability > SHM_DUR_SYNC) {
        seterr(err, errlen, "shm: invalid options (state dir and durability required)");
        return SHM_EINVAL;
    }
    *out = NULL;
    if ((rc = check_dir(opts->dir, !opts->readonly, err, errlen)) != 0)
        return rc;
    if ((rc = check_files(opts->dir, err, errlen)) != 0)
        return rc;
    s = calloc(1, sizeof(*s));
    if (!s || !(s->dir = strdup(opts->dir))) {
        free(s);
        return SHM_ENOMEM;
    }
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    /* A resize must not starve behind a stream of transactions. */
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&s->resize_lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&s->owner_lock, NULL);
    pthread_mutex_init(&s->maint_lock, NULL);
    pthread_mutex_init(&s->corrupt_lock, NULL);
    s->readonly = opts->readonly;
    s->durability = opts->durability;
    s->map_max = opts->map_max ? opts->map_max : SHM_DEFAULT_MAX;
    s->sync_interval_ms = opts->sync_interval_ms ? opts->sync_interval_ms : 1000;
    s->slot = -1;
    s->pid = getpid();
    s->clock = opts->clock ? opts->clock : realtime_ms;
    s->clock_arg = opts->clock_arg;
    now_ms = shm__now(s, now_ms);
    c.now_ms = now_ms;
    s->last_sync_ms = now_ms;
    size_t map = opts->map_size ? opts->map_size : SHM_DEFAULT_MAP;
    if (map > s->map_max)
        s->map_max = map;

    if ((rc = mdb_env_create(&s->env)) != 0)
        goto fail_mdb;
    mdb_env_set_maxdbs(s->env, 24); /* 15 named databases; builds before objects set 8 */
    mdb_env_set_maxreaders(s->env, opts->max_readers ? opts->max_readers : 126);
    mdb_env_set_mapsize(s->env, map);
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (s->readonly)
        flags |= MDB_RDONLY;
    else if (s->durability == SHM_DUR_FAST)
        flags |= MDB_WRITEMAP | MDB_NOSYNC;
    else if (s->durability == SHM_DUR_SAFE)
        flags |= MDB_NOSYNC;
    rc = mdb_env_open(s->env, s->dir, flags, 0600);
    if (rc != 0) {
        if (rc == ENOENT && s->readonly) {
            seterr(err, errlen, "shm: %s: no llmgate store here yet", s->dir);
            rc = SHM_ENOTFOUND;
            goto fail;
        }
        seterr(err, errlen, "shm: %s: cannot open the LMDB store: %s", s->dir, mdb_strerror(rc));
        goto fail_mdb;
    }
    if ((rc = check_files(s->dir, err, errlen)) != 0)
        goto fail;
    /* Adopt a larger map another process left in the meta; never shrink below ours. */
    if (!s->readonly) {
        mdb_env_set_mapsize(s->env, 0);
        if (shm_mapsize(s) < map)
            mdb_env_set_mapsize(s->env, map);
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    if ((rc = open_dbs(s, &c)) != 0) {
        if (err && errlen && !err[0])
            seterr(err, errlen, "shm: %s: cannot read the store: %s", s->dir,
                   rc < 0 && rc >= SHM_EINTERNAL ? shm_strerror(rc) : mdb_strerror(rc));
        goto fail_mdb;
    }
    if (shm__proc_identity(s->pid, &s->start_ticks, NULL) != 0) {
        seterr(err, errlen, "shm: cannot read /proc/self/stat: /proc must be mounted");
        rc = SHM_EIO;
        goto fail;
    }
    s->boot_hash = shm__boot_hash();
    *out = s;
    return 0;

fail_mdb:
    rc = shm__err(rc);
fail:
    if (s->env)
        mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->resize_lock);
    pthread_mutex_destroy(&s->owner_lock);
    pthread_mutex_destroy(&s->maint_lock);
    pthread_mutex_destroy(&s->corrupt_lock);
    free(s->dir);
    free(s);
    return rc;
}

void shm_store_close(shm_t *s)
{
    if (!s)
        return;
    if (!s->readonly) {
        if (s->slot >= 0)
            shm__owner_release(s, shm__now(s, SHM_NOW));
        mdb_env_sync(s->env, 1);
    }
    mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->resize_lock);
    pthread_mutex_destroy(&s->owner_lock);
    pthread_mutex_destroy(&s->maint_lock);
    pthread_mutex_destroy(&s->corrupt_lock);
    free(s->dir);
    free(s);
}

int shm_sync(shm_t *s)
{
    if (s->readonly)
        return 0;
    pthread_rwlock_rdlock(&s->resize_lock);
    int rc = mdb_env_sync(s->env, 1);
    pthread_rwlock_unlock(&s->resize_lock);
    return rc == 0 ? 0 : SHM_EIO;
}

int shm_maintain(shm_t *s, int64_t now_ms, shm_maint_t *out)
{
    shm_maint_t m = {0};
    int rc = 0, dead = 0;
    now_ms = shm__now(s, now_ms);
    pthread_mutex_lock(&s->maint_lock);
    if (mdb_reader_check(s->env, &dead) == 0)
        m.readers_cleared = dead;
    if (s->readonly)
        goto out;
    /* A clock that went back also syncs, so a step back never stops syncing. */
    if (now_ms - s->last_sync_ms >= (int64_t)s->sync_interval_ms || now_ms < s->last_sync_ms) {
        if ((rc = shm_sync(s)) != 0)
            goto out;
        s->last_sync_ms = now_ms;
        m.synced = 1;
    }
    if ((rc = shm__owners_reclaim(s, now_ms, &m.owners_reclaimed)) != 0)
        goto out;
    MDB_envinfo ei;
    MDB_stat st;
    pthread_rwlock_rdlock(&s->resize_lock);
    mdb_env_info(s->env, &ei);
    mdb_env_stat(s->env, &st);
    pthread_rwlock_unlock(&s->resize_lock);
    size_t used = (ei.me_last_pgno + 1) * (size_t)st.ms_psize;
    if (used > ei.me_mapsize / 100 * SHM_GROW_PERCENT) {
        rc = shm_grow(s, ei.me_mapsize);
        rc = shm__err(rc);
        if (rc == 0)
            m.grown = 1;
    }
out:
    pthread_mutex_unlock(&s->maint_lock);
    if (out)
        *out = m;
    return rc;
}

typedef struct info_ctx_s {
    shm_store_info_t *out;
} info_ctx_t;

static int info_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    shm_store_info_t *o = ((info_ctx_t *)arg)->out;
    MDB_stat st;
    int rc;
    if ((rc = meta_get(txn, s->dbi_meta, "schema_version", &o->schema_version,
                       sizeof(o->schema_version))) != 0 ||
        (rc = meta_get(txn, s->dbi_meta, "created_ms", &o->created_ms, sizeof(o->created_ms))))
        return rc;
    if ((rc = mdb_stat(txn, s->dbi_keys, &st)) != 0)
        return rc;
    o->keys = (unsigned)st.ms_entries;
    if ((rc = mdb_stat(txn, s->dbi_prov, &st)) != 0)
        return rc;
    o->providers = (unsigned)st.ms_entries;
    if ((rc = mdb_stat(txn, s->dbi_owners, &st)) != 0)
        return rc;
    o->owners = (unsigned)st.ms_entries;
    return 0;
}

int shm_store_info(shm_t *s, shm_store_info_t *out)
{
    MDB_envinfo ei;
    MDB_stat st;
    struct stat fst;
    char path[4096];
    memset(out, 0, sizeof(*out));
    info_ctx_t c = {out};
    int rc = shm__read(s, info_fn, &c);
    if (rc != 0)
        return rc;
    pthread_rwlock_rdlock(&s->resize_lock);
    mdb_env_info(s->env, &ei);
    mdb_env_stat(s->env, &st);
    pthread_rwlock_unlock(&s->resize_lock);
    out->map_size = ei.me_mapsize;
    out->page_size = st.ms_psize;
    out->map_used = (ei.me_last_pgno + 1) * (size_t)st.ms_psize;
    out->readers_used = ei.me_numreaders;
    out->readers_max = ei.me_maxreaders;
    out->durability = s->durability;
    snprintf(path, sizeof(path), "%s/data.mdb", s->dir);
    if (stat(path, &fst) != 0)
        return SHM_EIO;
    out->file_bytes = (size_t)fst.st_blocks * 512;
    return 0;
}
