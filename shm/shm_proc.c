/* shm_proc.c - owners of in-flight reservations: process identity and liveness, owner
 * slots, reclaiming the reservations of processes that died.
 *
 * A process is identified by (pid, start time in clock ticks since boot, boot id): a pid
 * reused by another process, or the same pid after a reboot, is a different owner. A
 * zombie counts as dead: it can hold nothing any more. */
#include "shm/shm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int shm__proc_identity(pid_t pid, uint64_t *start_ticks, int *alive)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (alive)
        *alive = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? 0 : -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return n == 0 || errno == ESRCH ? 0 : -1;
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and parentheses: fields resume after the last ')' */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -1;
    p += 2;
    char state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    char *end;
    errno = 0;
    unsigned long long st = strtoull(p, &end, 10);
    if (errno || end == p)
        return -1;
    *start_ticks = st;
    if (alive)
        *alive = state != 'Z' && state != 'X' && state != 'x';
    return 0;
}

uint64_t shm__boot_hash(void)
{
    char buf[64] = {0};
    uint64_t h = 1469598103934665603ull;
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        for (ssize_t i = 0; i < n; i++) {
            h ^= (unsigned char)buf[i];
            h *= 1099511628211ull;
        }
    }
    return h;
}

static int owner_get(shm_t *s, MDB_txn *txn, uint32_t slot, shm_orec_t *o)
{
    MDB_val k = {sizeof(slot), &slot}, v;
    int rc = mdb_get(txn, s->dbi_owners, &k, &v);
    if (rc != 0 || (rc = shm__rec_check(s, SHM_REC_OWNER, &k, &v)) != 0)
        return rc;
    memcpy(o, v.mv_data, sizeof(*o));
    return 0;
}

static int owner_is_us(const shm_t *s, const shm_orec_t *o)
{
    return o->pid == s->pid && o->start_ticks == s->start_ticks && o->boot_hash == s->boot_hash;
}

static int owner_alive(const shm_t *s, const shm_orec_t *o)
{
    uint64_t st = 0;
    int alive = 0;
    if (o->boot_hash != s->boot_hash)
        return 0;
    if (shm__proc_identity(o->pid, &st, &alive) != 0)
        return 1; /* cannot tell: keep it */
    return alive && st == o->start_ticks;
}

/* Clear slot in every key, delete the owner record. history: add SHM_EV_RECLAIM events. */
static int clear_slot(shm_t *s, MDB_txn *txn, uint32_t slot, int history, int32_t pid,
                      int64_t now_ms)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, s->dbi_keys, &cur);
    if (rc != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        shm_krec_t rec;
        if ((rc = shm__rec_check(s, SHM_REC_KEY, &k, &v)) != 0)
            break;
        uint32_t n;
        memcpy(&n, (char *)v.mv_data + offsetof(shm_krec_t, inflight) + slot * sizeof(n),
               sizeof(n));
        if (n == 0)
            continue;
        memcpy(&rec, v.mv_data, sizeof(rec));
        rec.inflight[slot] = 0;
        rec.updated_ms = now_ms;
        MDB_val nv = {sizeof(rec), &rec};
        if ((rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT)) != 0)
            break;
        if (history) {
            char text[40];
            snprintf(text, sizeof(text), "dead owner pid %d", (int)pid);
            if ((rc = shm__hist_add(s, txn, rec.name, SHM_EV_RECLAIM, &rec, n, text, now_ms)))
                break;
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return rc;
    MDB_val ok = {sizeof(slot), &slot};
    rc = mdb_del(txn, s->dbi_owners, &ok, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

typedef struct reg_ctx_s {
    int64_t now_ms;
    int slot;
} reg_ctx_t;

static int register_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    reg_ctx_t *c = arg;
    int free_slot = -1, rc;
    c->slot = -1;
    for (uint32_t i = 0; i < SHM_MAX_OWNERS; i++) {
        shm_orec_t o;
        rc = owner_get(s, txn, i, &o);
        if (rc == MDB_NOTFOUND) {
            if (free_slot < 0)
                free_slot = (int)i;
            continue;
        }
        if (rc != 0)
            return rc;
        if (owner_is_us(s, &o)) {
            free_slot = (int)i;
            break;
        }
        if (free_slot < 0 && !owner_alive(s, &o)) {
            if ((rc = clear_slot(s, txn, i, 1, o.pid, c->now_ms)) != 0)
                return rc;
            free_slot = (int)i;
        }
    }
    if (free_slot < 0)
        return SHM_EOWNERS;
    shm_orec_t me = {.version = SHM_OREC_VERSION,
                     .size = sizeof(me),
                     .pid = (int32_t)s->pid,
                     .start_ticks = s->start_ticks,
                     .boot_hash = s->boot_hash,
                     .registered_ms = c->now_ms};
    uint32_t slot = (uint32_t)free_slot;
    MDB_val k = {sizeof(slot), &slot}, v = {sizeof(me), &me};
    if ((rc = mdb_put(txn, s->dbi_owners, &k, &v, 0)) != 0)
        return rc;
    c->slot = free_slot;
    return 0;
}

int shm__owner_ensure(shm_t *s, int64_t now_ms)
{
    int rc = 0;
    pthread_mutex_lock(&s->owner_lock);
    if (__atomic_load_n(&s->slot, __ATOMIC_ACQUIRE) < 0) {
        reg_ctx_t c = {.now_ms = now_ms};
        rc = shm__write(s, register_fn, &c);
        if (rc == 0)
            __atomic_store_n(&s->slot, c.slot, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&s->owner_lock);
    return rc;
}

typedef struct reclaim_ctx_s {
    int64_t now_ms;
    uint32_t mask; /* slots found dead outside the transaction */
    shm_orec_t dead[SHM_MAX_OWNERS];
    int reclaimed;
} reclaim_ctx_t;

static int scan_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    reclaim_ctx_t *c = arg;
    c->mask = 0;
    for (uint32_t i = 0; i < SHM_MAX_OWNERS; i++) {
        int rc = owner_get(s, txn, i, &c->dead[i]);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        c->mask |= 1u << i;
    }
    return 0;
}

static int reclaim_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    reclaim_ctx_t *c = arg;
    c->reclaimed = 0;
    for (uint32_t i = 0; i < SHM_MAX_OWNERS; i++) {
        if (!(c->mask & (1u << i)))
            continue;
        shm_orec_t o;
        int rc = owner_get(s, txn, i, &o);
        if (rc == MDB_NOTFOUND)
            continue;
        if (rc != 0)
            return rc;
        /* re-check: the slot may have changed hands since the scan */
        if (memcmp(&o, &c->dead[i], sizeof(o)) != 0)
            continue;
        if ((rc = clear_slot(s, txn, i, 1, o.pid, c->now_ms)) != 0)
            return rc;
        c->reclaimed++;
    }
    return 0;
}

int shm__owners_reclaim(shm_t *s, int64_t now_ms, int *reclaimed)
{
    reclaim_ctx_t c = {.now_ms = now_ms};
    *reclaimed = 0;
    int rc = shm__read(s, scan_fn, &c);
    if (rc != 0)
        return rc;
    /* Liveness is checked outside any transaction: /proc reads do not hold the lock. */
    uint32_t dead = 0;
    for (uint32_t i = 0; i < SHM_MAX_OWNERS; i++)
        if ((c.mask & (1u << i)) && !owner_is_us(s, &c.dead[i]) && !owner_alive(s, &c.dead[i]))
            dead |= 1u << i;
    if (!dead)
        return 0;
    c.mask = dead;
    rc = shm__write(s, reclaim_fn, &c);
    if (rc == 0)
        *reclaimed = c.reclaimed;
    return rc;
}

typedef struct release_ctx_s {
    uint32_t slot;
    int64_t now_ms;
} release_ctx_t;

static int release_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    release_ctx_t *c = arg;
    shm_orec_t o;
    int rc = owner_get(s, txn, c->slot, &o);
    if (rc == MDB_NOTFOUND || (rc == 0 && !owner_is_us(s, &o)))
        return 0; /* reclaimed meanwhile: nothing of ours left */
    if (rc != 0)
        return rc;
    return clear_slot(s, txn, c->slot, 0, o.pid, c->now_ms);
}

int shm__owner_release(shm_t *s, int64_t now_ms)
{
    pthread_mutex_lock(&s->owner_lock);
    int rc = 0;
    if (s->slot >= 0) {
        release_ctx_t c = {(uint32_t)s->slot, now_ms};
        rc = shm__write(s, release_fn, &c);
        s->slot = -1;
    }
    pthread_mutex_unlock(&s->owner_lock);
    return rc;
}
