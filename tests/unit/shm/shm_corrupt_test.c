/* shm_corrupt_test.c - records damaged behind the store's back (raw mdb_put into its
 * databases: a short value, a wrong version or size field, a name field without its NUL, a
 * latency ring whose head is out of range) are refused with SHM_ECORRUPT by every operation
 * that reads them: admission (alone and in a batch), recording, release, notes, views,
 * listings, sync, prune, actions, maintenance. Nothing is read past a record or written
 * under a name read past its field (the databases keep their entry counts), the other keys
 * still work, and the store names the bad record for the log. Run under ASan: a latency
 * ring's head is used as an index into a copy on the stack. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm/shm_int.h"
#include "shm_tutil.h"
#include "t.h"

static const char *const GOOD = "k-good", *const BAD = "k-bad";

/* Put size bytes of data under name in dbi, in a transaction of its own. */
static int raw_put(shm_t *s, MDB_dbi dbi, const void *key, size_t klen, const void *data,
                   size_t size)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v = {size, (void *)data};
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

    rc = rc ? rc : mdb_put(txn, dbi, &k, &v, 0);
    if (rc == 0)
        return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

/* Copy the stored record of name in dbi into out (size bytes exactly); 0 or an LMDB code. */
static int raw_get(shm_t *s, MDB_dbi dbi, const void *key, size_t klen, void *out, size_t size)
{
    MDB_txn *txn;
    MDB_val k = {klen, (void *)key}, v;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);

    rc = rc ? rc : mdb_get(txn, dbi, &k, &v);
    if (rc == 0 && v.mv_size != size)
        rc = MDB_BAD_VALSIZE;
    if (rc == 0)
        memcpy(out, v.mv_data, size);
    mdb_txn_abort(txn);
    return rc;
}

static size_t entries(shm_t *s, MDB_dbi dbi)
{
    MDB_txn *txn;
    MDB_stat st = {0};

    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn) != 0)
        return (size_t)-1;
    mdb_stat(txn, dbi, &st);
    mdb_txn_abort(txn);
    return st.ms_entries;
}

/* A store in a private dir with two keys of provider p-a (GOOD and BAD) and client c-a. */
typedef struct fix_s {
    char parent[64], dir[96];
    shm_t *s;
} fix_t;

static shm_t *fix_open(fix_t *f)
{
    shm_key_spec_t sp[2] = {tu_spec(GOOD, "p-a", 0, 0, 0, 0), tu_spec(BAD, "p-a", 0, 0, 0, 0)};
    shm_client_spec_t cs = {.name = "c-a"};

    tu_mkdir(f->parent, sizeof(f->parent), f->dir, sizeof(f->dir));
    f->s = tu_open(f->dir, T0);
    if (f->s &&
        (shm_keys_sync(f->s, sp, 2, T0, NULL) != 0 || shm_clients_sync(f->s, &cs, 1, T0, NULL)))
        printf("# sync failed\n");
    return f->s;
}

static void fix_close(fix_t *f)
{
    shm_store_close(f->s);
    tu_rmdir(f->parent);
}

static int admit(shm_t *s, const char *a, const char *b, const char *client, shm_resv_t *r)
{
    const char *names[2] = {a, b};
    shm_admit_req_t req = {.names = names, .count = b ? 2 : 1, .client = client};
    int64_t retry;

    return shm_key_admit(s, &req, T0 + 1000, r, &retry);
}

static int outcome(shm_t *s, shm_resv_t *r, int cls, uint32_t total_ms)
{
    shm_outcome_t o;

    shm_outcome_init(&o, cls);
    o.total_ms = total_ms;
    return shm_key_record(s, r, &o, T0 + 2000);
}

typedef struct batch_one_s {
    const char *name;
    int rc;
} batch_one_t;

/* shm_store_corrupt() names a record and says what is wrong: both needles in its text. */
static void named(shm_t *s, const char *rec, const char *why, const char *what)
{
    char buf[256];
    int found = shm_store_corrupt(s, buf, sizeof(buf));

    T_OK(found && strstr(buf, rec) && strstr(buf, why), "%s: the store names it: %s", what, buf);
    char line[320];
    shm_explain(s, SHM_ECORRUPT, line, sizeof(line));
    T_OK(strncmp(line, shm_strerror(SHM_ECORRUPT), strlen(shm_strerror(SHM_ECORRUPT))) == 0 &&
             strstr(line, rec) != NULL,
         "%s: the log line says what and which: %s", what, line);
}

/* An admission of key (for client, may be NULL) meets the corrupt record rec: SHM_ECORRUPT,
 * and the store names rec and why. */
static void admit_refused(shm_t *s, const char *key, const char *client, const char *rec,
                          const char *why, const char *what)
{
    shm_resv_t r;

    T_EQ_INT(admit(s, key, NULL, client, &r), SHM_ECORRUPT, "%s: admission refuses it", what);
    named(s, rec, why, what);
}

static int batch_cb(shm_batch_t *b, void *arg)
{
    batch_one_t *t = arg;
    const char *names[1] = {t->name};
    shm_admit_req_t req = {.names = names, .count = 1};
    shm_resv_t r;
    int64_t retry;

    t->rc = shm_batch_admit(b, &req, &r, &retry);
    return 0;
}

/* ---- damaged key records ----------------------------------------------------------------- */

enum damage { D_SHORT, D_EMPTY, D_LONG, D_VERSION, D_SIZE, D_NAME, D_PROVIDER, D_FP, D_COUNT };

/* what shm_store_corrupt() says of each */
static const char *const damage_why[D_COUNT] = {
    "3 bytes, not",       "0 bytes, not", "bytes, not",     "record version 99",
    "size field says 17", "name field",   "provider field", "fingerprint field"};

static const char *const damage_name[D_COUNT] = {"a 3-byte record",
                                                 "an empty record",
                                                 "a record 8 bytes too long",
                                                 "record version 99",
                                                 "a size field of 17",
                                                 "a name field without NUL",
                                                 "a provider field of 64 'x'",
                                                 "a fingerprint field without NUL"};

/* Overwrite BAD's record as d says; 0 or an LMDB code. */
static int damage_key(shm_t *s, int d)
{
    shm_krec_t k;
    char buf[sizeof(shm_krec_t) + 8];
    size_t size = sizeof(k);
    int rc = raw_get(s, s->dbi_keys, BAD, strlen(BAD), &k, sizeof(k));

    if (rc != 0)
        return rc;
    switch (d) {
    case D_SHORT:
        return raw_put(s, s->dbi_keys, BAD, strlen(BAD), "abc", 3);
    case D_EMPTY:
        return raw_put(s, s->dbi_keys, BAD, strlen(BAD), "", 0);
    case D_LONG:
        size += 8;
        break;
    case D_VERSION:
        k.version = 99;
        break;
    case D_SIZE:
        k.size = 17;
        break;
    case D_NAME:
        memset(k.name, 'x', sizeof(k.name));
        break;
    case D_PROVIDER:
        memset(k.provider, 'x', sizeof(k.provider));
        break;
    case D_FP:
        memset(k.fingerprint, 'f', sizeof(k.fingerprint));
        break;
    }
    memset(buf, 0, sizeof(buf));
    memcpy(buf, &k, sizeof(k));
    return raw_put(s, s->dbi_keys, BAD, strlen(BAD), buf, size);
}

static void test_key_damage(int d)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    const char *what = damage_name[d];
    shm_resv_t r, held;
    shm_key_t view, *snap = NULL;
    shm_outcome_t o;
    unsigned n = 0;

    T_OK(s != NULL, "%s: store open", what);
    if (!s)
        return;
    char buf[64] = "x";
    T_OK(shm_store_corrupt(s, buf, sizeof(buf)) == 0 && buf[0] == '\0',
         "%s: a sound store names no corrupt record", what);
    T_EQ_STR(shm_explain(s, SHM_ECORRUPT, buf, sizeof(buf)), shm_strerror(SHM_ECORRUPT),
             "%s: ... and its log line is the error alone", what);
    /* a reservation taken before the damage: its outcome meets the damaged record */
    T_EQ_INT(admit(s, BAD, NULL, NULL, &held), 0, "%s: admitted before the damage", what);
    T_EQ_INT(damage_key(s, d), 0, "%s: written with raw LMDB", what);
    size_t nkeys = entries(s, s->dbi_keys), nprov = entries(s, s->dbi_prov);

    admit_refused(s, BAD, NULL, "key record \"k-bad\" (database keys)", damage_why[d], what);
    T_EQ_INT(admit(s, GOOD, BAD, NULL, &r), SHM_ECORRUPT,
             "%s: also among other candidates (never silently skipped)", what);
    T_EQ_INT(shm_key_get(s, GOOD, T0 + 1000, &view), 0, "%s: the good key reads", what);
    T_EQ_INT(view.inflight, 0, "%s: ... and nothing was reserved on it", what);
    T_EQ_INT(admit(s, GOOD, NULL, NULL, &r), 0, "%s: the good key alone is admitted", what);
    T_EQ_INT(shm_key_release(s, &r, 1, T0 + 1000), 0, "%s: ... and released", what);
    batch_one_t bo = {.name = BAD, .rc = 1};
    T_EQ_INT(shm_key_batch(s, NULL, NULL, 0, T0 + 1000, batch_cb, &bo), SHM_ECORRUPT,
             "%s: a batch admitting it fails", what);
    T_EQ_INT(bo.rc, SHM_ECORRUPT, "%s: ... its admission said so", what);

    T_EQ_INT(outcome(s, &held, SHM_CL_5XX, 0), SHM_ECORRUPT, "%s: recording refuses it", what);
    T_EQ_INT(held.live, 1, "%s: ... the reservation is still live", what);
    T_EQ_INT(shm_key_release(s, &held, 0, T0 + 2000), SHM_ECORRUPT, "%s: release refuses it", what);
    shm_outcome_init(&o, SHM_CL_SUCCESS);
    o.count_request = 1;
    T_EQ_INT(shm_key_note(s, BAD, &o, T0 + 2000), SHM_ECORRUPT, "%s: a note refuses it", what);

    T_EQ_INT(shm_key_get(s, BAD, T0 + 2000, &view), SHM_ECORRUPT, "%s: get refuses it", what);
    T_EQ_INT(shm_snapshot(s, T0 + 2000, &snap, &n), SHM_ECORRUPT,
             "%s: the snapshot (llmgatectl keys) refuses the store", what);
    shm_snapshot_free(snap);
    shm_latency_t lat;
    shm_event_t ev[SHM_HISTORY_RING];
    T_EQ_INT(shm_key_latency(s, BAD, &lat), SHM_ECORRUPT, "%s: latency refuses it", what);
    T_EQ_INT(shm_key_history(s, BAD, ev, SHM_HISTORY_RING, &n), SHM_ECORRUPT,
             "%s: history refuses it", what);
    T_EQ_INT(shm_key_disable(s, BAD, "test", T0 + 2000), SHM_ECORRUPT,
             "%s: an admin action refuses it", what);
    shm_key_spec_t sp[1] = {tu_spec(GOOD, "p-a", 0, 0, 0, 0)};
    T_EQ_INT(shm_keys_sync(s, sp, 1, T0 + 2000, NULL), SHM_ECORRUPT,
             "%s: sync (its orphan pass reads every record) refuses it", what);
    unsigned pruned = 7;
    T_EQ_INT(shm_keys_prune(s, &pruned), SHM_ECORRUPT, "%s: prune refuses it", what);
    T_OK(entries(s, s->dbi_keys) == nkeys && entries(s, s->dbi_prov) == nprov,
         "%s: no record was written under a name read past its field", what);
    fix_close(&f);
}

/* ---- other record kinds ------------------------------------------------------------------- */

static void test_provider_damage(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_resv_t held;
    shm_provider_t *pv = NULL, p;
    unsigned n = 0;

    T_EQ_INT(admit(s, GOOD, NULL, NULL, &held), 0, "provider: admitted before the damage");
    T_EQ_INT(raw_put(s, s->dbi_prov, "p-a", 3, "12345", 5), 0, "provider: a 5-byte record");
    admit_refused(s, GOOD, NULL, "provider record \"p-a\"", "5 bytes", "provider");
    T_EQ_INT(outcome(s, &held, SHM_CL_5XX, 0), SHM_ECORRUPT, "provider: recording refuses it");
    T_EQ_INT(shm_provider_get(s, "p-a", &p), SHM_ECORRUPT, "provider: get refuses it");
    T_EQ_INT(shm_providers(s, &pv, &n), SHM_ECORRUPT, "provider: the list refuses it");
    shm_snapshot_free(pv);

    shm_prec_t pr;
    shm__prov_init(&pr, "p-a", T0);
    memset(pr.name, 'x', sizeof(pr.name));
    T_EQ_INT(raw_put(s, s->dbi_prov, "p-a", 3, &pr, sizeof(pr)), 0,
             "provider: a name field without NUL");
    admit_refused(s, GOOD, NULL, "provider record \"p-a\"", "name field", "provider name");
    T_EQ_INT(shm_providers(s, &pv, &n), SHM_ECORRUPT, "  ... the list refuses it");
    shm_snapshot_free(pv);
    fix_close(&f);
}

static void test_client_damage(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_resv_t held;
    shm_client_t *cl = NULL;
    shm_crec_t c;
    unsigned n = 0;

    T_EQ_INT(admit(s, GOOD, NULL, "c-a", &held), 0, "client: admitted before the damage");
    T_EQ_INT(raw_get(s, s->dbi_clients, "c-a", 3, &c, sizeof(c)), 0, "client: record read");
    memset(c.name, 'x', sizeof(c.name));
    T_EQ_INT(raw_put(s, s->dbi_clients, "c-a", 3, &c, sizeof(c)), 0,
             "client: a name field without NUL");
    size_t nclients = entries(s, s->dbi_clients);
    admit_refused(s, GOOD, "c-a", "client record \"c-a\"", "name field", "client");
    T_EQ_INT(outcome(s, &held, SHM_CL_SUCCESS, 0), SHM_ECORRUPT, "client: recording refuses it");
    T_EQ_INT(shm_clients(s, T0 + 2000, &cl, &n), SHM_ECORRUPT, "client: the list refuses it");
    shm_snapshot_free(cl);
    T_EQ_INT(entries(s, s->dbi_clients), nclients, "client: no record put under another name");
    T_EQ_INT(raw_put(s, s->dbi_clients, "c-a", 3, "z", 1), 0, "client: a 1-byte record");
    admit_refused(s, GOOD, "c-a", "client record \"c-a\"", "1 bytes, not",
                  "client 1 byte (not an unknown client)");
    shm_client_spec_t cs = {.name = "c-a"};
    T_EQ_INT(shm_clients_sync(s, &cs, 1, T0 + 2000, NULL), SHM_ECORRUPT,
             "  ... sync refuses it (does not overwrite it)");
    fix_close(&f);
}

static void test_history_owner_damage(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_hrec_t h;
    shm_event_t ev[SHM_HISTORY_RING];
    unsigned n = 0;

    T_EQ_INT(shm_key_disable(s, GOOD, "test", T0 + 500), 0, "history: an event added");
    T_EQ_INT(raw_get(s, s->dbi_hist, GOOD, strlen(GOOD), &h, sizeof(h)), 0, "history: read");
    h.version = 7;
    T_EQ_INT(raw_put(s, s->dbi_hist, GOOD, strlen(GOOD), &h, sizeof(h)), 0,
             "history: record version 7");
    T_EQ_INT(shm_key_history(s, GOOD, ev, SHM_HISTORY_RING, &n), SHM_ECORRUPT,
             "history: reading refuses it");
    named(s, "history record \"k-good\"", "record version 7", "history");
    T_EQ_INT(shm_key_disable(s, GOOD, "test", T0 + 1000), SHM_ECORRUPT,
             "history: an action refuses to add to it (does not overwrite it)");

    uint32_t slot = SHM_MAX_OWNERS - 1;
    T_EQ_INT(raw_put(s, s->dbi_owners, &slot, sizeof(slot), "own", 3), 0,
             "owner: a 3-byte record in the last slot");
    T_EQ_INT(shm_maintain(s, T0 + 1000, NULL), SHM_ECORRUPT, "owner: maintenance refuses it");
    named(s, "owner record slot 31 (database owners)", "3 bytes", "owner");
    fix_close(&f);
}

/* A latency ring whose head is past the ring: recording a sample must not index by it. In a
 * child process of its own (with its own store): before the fix ASan aborts it. */
static int latency_child(void)
{
    fix_t f;
    shm_t *s = fix_open(&f);
    shm_resv_t r;
    shm_lrec_t l;
    shm_latency_t lat;
    int rc;

    T_EQ_INT(admit(s, GOOD, NULL, NULL, &r), 0, "latency: admitted");
    T_EQ_INT(outcome(s, &r, SHM_CL_SUCCESS, 100), 0, "latency: a sample recorded");
    T_EQ_INT(raw_get(s, s->dbi_lat, GOOD, strlen(GOOD), &l, sizeof(l)), 0, "latency: read");
    l.head = 2 * SHM_LAT_RING;
    T_EQ_INT(raw_put(s, s->dbi_lat, GOOD, strlen(GOOD), &l, sizeof(l)), 0,
             "latency: head 512 written");
    T_EQ_INT(admit(s, GOOD, NULL, NULL, &r), 0, "latency: admitted again");
    rc = outcome(s, &r, SHM_CL_SUCCESS, 100);
    T_EQ_INT(rc, SHM_ECORRUPT, "latency: recording a sample refuses it");
    named(s, "latency record \"k-good\"", "ring head 512", "latency");
    T_EQ_INT(shm_key_latency(s, GOOD, &lat), SHM_ECORRUPT, "latency: reading refuses it");
    fix_close(&f);
    return t_failed ? 1 : 0;
}

static void test_latency_damage(void)
{
    fflush(stdout);
    pid_t pid = fork();
    int st = 0;

    if (pid == 0) {
        dup2(2, 1); /* the child's test points go to the log, not into the TAP stream */
        _exit(latency_child());
    }
    T_OK(pid > 0 && waitpid(pid, &st, 0) == pid, "latency: child ran");
    T_OK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
         "latency: a ring head out of range is refused, never indexed (child exit %d, "
         "signal %d; its log is on stderr)",
         WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int main(void)
{
    for (int d = 0; d < D_COUNT; d++)
        test_key_damage(d);
    test_provider_damage();
    test_client_damage();
    test_history_owner_damage();
    test_latency_damage();
    return t_done();
}
