/* shm_rec.c - record access inside a transaction, the history ring, the key clock and
 * day, the public view of a key record, and display names. */
#include "shm/shm_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int shm__name_ok(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    return n > 0 && n <= SHM_NAME_MAX;
}

static MDB_val name_val(const char *name)
{
    MDB_val k = {strlen(name), (void *)name};
    return k;
}

/* ---- checking a record before it is read ------------------------------------------------- */

#define REC_NAMES 5 /* name fields per record at most */

/* What shm__rec_check knows of a record kind. Every record starts with version and size
 * (uint32_t each); a ring has head and count (uint32_t each) at head_off. */
typedef struct rec_kind_s {
    const char *what, *db;
    size_t size;
    uint32_t version;
    size_t head_off, ring; /* ring 0: not a ring */
    struct {
        const char *field;
        size_t off, len;
    } names[REC_NAMES]; /* field NULL: no more */
} rec_kind_t;

/* a name field of a record struct: its name, offset and size */
#define FIELD(type, f) #f, offsetof(type, f), sizeof(((type *)0)->f)

static const rec_kind_t rec_kinds[SHM_REC_KINDS] = {
    [SHM_REC_KEY] = {.what = "key",
                     .db = "keys",
                     .size = sizeof(shm_krec_t),
                     .version = SHM_KREC_VERSION,
                     .names = {{FIELD(shm_krec_t, name)},
                               {FIELD(shm_krec_t, provider)},
                               {FIELD(shm_krec_t, fingerprint)}}},
    [SHM_REC_LAT] = {.what = "latency",
                     .db = "latency",
                     .size = sizeof(shm_lrec_t),
                     .version = SHM_LREC_VERSION,
                     .head_off = offsetof(shm_lrec_t, head),
                     .ring = SHM_LAT_RING},
    [SHM_REC_HIST] = {.what = "history",
                      .db = "history",
                      .size = sizeof(shm_hrec_t),
                      .version = SHM_HREC_VERSION,
                      .head_off = offsetof(shm_hrec_t, head),
                      .ring = SHM_HISTORY_RING},
    [SHM_REC_PROV] = {.what = "provider",
                      .db = "providers",
                      .size = sizeof(shm_prec_t),
                      .version = SHM_PREC_VERSION,
                      .names = {{FIELD(shm_prec_t, name)}}},
    [SHM_REC_OWNER] = {.what = "owner",
                       .db = "owners",
                       .size = sizeof(shm_orec_t),
                       .version = SHM_OREC_VERSION},
    [SHM_REC_CLIENT] = {.what = "client",
                        .db = "clients",
                        .size = sizeof(shm_crec_t),
                        .version = SHM_CREC_VERSION,
                        .names = {{FIELD(shm_crec_t, name)}}},
    [SHM_REC_OBJ] = {.what = "object",
                     .db = "objects",
                     .size = sizeof(shm_jrec_t),
                     .version = SHM_JREC_VERSION,
                     .names = {{FIELD(shm_jrec_t, key)},
                               {FIELD(shm_jrec_t, group)},
                               {FIELD(shm_jrec_t, provider)},
                               {FIELD(shm_jrec_t, client)},
                               {FIELD(shm_jrec_t, model)}}},
    [SHM_REC_OBJ_IDX] = {.what = "object index", .db = "objects_by_expiry"},
    [SHM_REC_LEASE] = {.what = "lease",
                       .db = "leases",
                       .size = sizeof(shm_lease_t),
                       .version = SHM_LEASE_VERSION,
                       .names = {{FIELD(shm_lease_t, name)}}},
    [SHM_REC_CDEF] = {.what = "client definition",
                      .db = "client_defs",
                      .size = sizeof(shm_drec_t),
                      .version = SHM_DREC_VERSION,
                      .names = {{FIELD(shm_drec_t, name)},
                                {FIELD(shm_drec_t, models)},
                                {FIELD(shm_drec_t, created_by)}}},
    [SHM_REC_USAGE] = {.what = "client usage",
                       .db = "client_usage",
                       .size = sizeof(shm_urec_t),
                       .version = SHM_UREC_VERSION},
    [SHM_REC_STATS] = {.what = "history",
                       .db = "stats",
                       .size = sizeof(shm_srec_t),
                       .version = SHM_SREC_VERSION},
    [SHM_REC_CHIST] = {.what = "client history",
                       .db = "client_history",
                       .size = sizeof(shm_hrec_t),
                       .version = SHM_HREC_VERSION,
                       .head_off = offsetof(shm_hrec_t, head),
                       .ring = SHM_HISTORY_RING},
};
#undef FIELD

static uint32_t rec_u32(const MDB_val *v, size_t off)
{
    uint32_t x;
    memcpy(&x, (const char *)v->mv_data + off, sizeof(x));
    return x;
}

/* The key of a record for a person: an owner's slot, else the name, bounded, with
 * non-printable bytes as '?' (a corrupt store may hold anything). */
static void key_printable(int kind, const MDB_val *key, char *buf, size_t len)
{
    size_t n = key->mv_size < SHM_NAME_MAX ? key->mv_size : SHM_NAME_MAX, o = 0;
    const unsigned char *p = key->mv_data;

    if (kind == SHM_REC_OWNER && key->mv_size == sizeof(uint32_t)) {
        uint32_t slot;
        memcpy(&slot, key->mv_data, sizeof(slot));
        snprintf(buf, len, "slot %u", (unsigned)slot);
        return;
    }
    buf[o++] = '"';
    for (size_t i = 0; i < n && o + 5 < len; i++)
        buf[o++] = p[i] < 0x20 || p[i] >= 0x7f ? '?' : (char)p[i];
    if (n < key->mv_size && o + 5 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

static int rec_corrupt(shm_t *s, int kind, const MDB_val *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rec_corrupt(shm_t *s, int kind, const MDB_val *key, const char *fmt, ...)
{
    const rec_kind_t *rk = &rec_kinds[kind];
    char name[SHM_NAME_MAX + 8], why[96];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    key_printable(kind, key, name, sizeof(name));
    pthread_mutex_lock(&s->corrupt_lock);
    snprintf(s->corrupt, sizeof(s->corrupt), "%s record %s (database %s): %s", rk->what, name,
             rk->db, why);
    pthread_mutex_unlock(&s->corrupt_lock);
    return SHM_ECORRUPT;
}

int shm__corrupt(shm_t *s, int kind, const MDB_val *key, const char *why)
{
    return rec_corrupt(s, kind, key, "%s", why);
}

int shm__rec_check(shm_t *s, int kind, const MDB_val *key, const MDB_val *v)
{
    const rec_kind_t *rk = &rec_kinds[kind];

    /* the length first: nothing is read of a record that is not whole */
    if (v->mv_size != rk->size)
        return rec_corrupt(s, kind, key, "%zu bytes, not %zu", v->mv_size, rk->size);
    if (rec_u32(v, 0) != rk->version)
        return rec_corrupt(s, kind, key, "record version %u, this build reads %u",
                           (unsigned)rec_u32(v, 0), (unsigned)rk->version);
    if (rec_u32(v, sizeof(uint32_t)) != rk->size)
        return rec_corrupt(s, kind, key, "its size field says %u, not %zu",
                           (unsigned)rec_u32(v, sizeof(uint32_t)), rk->size);
    for (unsigned i = 0; i < REC_NAMES && rk->names[i].field; i++)
        if (!memchr((const char *)v->mv_data + rk->names[i].off, '\0', rk->names[i].len))
            return rec_corrupt(s, kind, key, "its %s field (%zu bytes) has no NUL",
                               rk->names[i].field, rk->names[i].len);
    if (rk->ring) {
        uint32_t head = rec_u32(v, rk->head_off), count = rec_u32(v, rk->head_off + 4);
        if (head >= rk->ring || count > rk->ring)
            return rec_corrupt(s, kind, key, "ring head %u, count %u: the ring has %zu",
                               (unsigned)head, (unsigned)count, rk->ring);
    }
    return 0;
}

int shm_store_corrupt(shm_t *s, char *buf, size_t len)
{
    int found;

    if (!s || !buf || len == 0)
        return 0;
    pthread_mutex_lock(&s->corrupt_lock);
    found = s->corrupt[0] != '\0';
    snprintf(buf, len, "%s", s->corrupt);
    pthread_mutex_unlock(&s->corrupt_lock);
    return found;
}

const char *shm_explain(shm_t *s, int rc, char *buf, size_t len)
{
    char rec[256];

    if (!buf || len == 0)
        return "";
    if (rc == SHM_ECORRUPT && shm_store_corrupt(s, rec, sizeof(rec)))
        snprintf(buf, len, "%s: %s", shm_strerror(rc), rec);
    else
        snprintf(buf, len, "%s", shm_strerror(rc));
    return buf;
}

/* ---- record access ------------------------------------------------------------------------ */

static int get_fixed(shm_t *s, MDB_txn *txn, MDB_dbi dbi, int kind, const char *name, void *out)
{
    MDB_val k = name_val(name), v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc != 0)
        return rc;
    if ((rc = shm__rec_check(s, kind, &k, &v)) != 0)
        return rc;
    memcpy(out, v.mv_data, v.mv_size);
    return 0;
}

static int put_fixed(MDB_txn *txn, MDB_dbi dbi, const char *name, const void *data, size_t size)
{
    MDB_val k = name_val(name), v = {size, (void *)data};
    return mdb_put(txn, dbi, &k, &v, 0);
}

int shm__cur_put(MDB_cursor *cur, MDB_dbi dbi, const MDB_val *key, const char *rec_name,
                 const void *data, size_t size)
{
    MDB_val k = name_val(rec_name), v = {size, (void *)data};
    if (k.mv_size == key->mv_size && memcmp(k.mv_data, key->mv_data, k.mv_size) == 0)
        return mdb_cursor_put(cur, &k, &v, MDB_CURRENT);
    return mdb_put(mdb_cursor_txn(cur), dbi, &k, &v, 0); /* a record not under its name */
}

int shm__key_get(shm_t *s, MDB_txn *txn, const char *name, shm_krec_t *out)
{
    return get_fixed(s, txn, s->dbi_keys, SHM_REC_KEY, name, out);
}

int shm__key_put(shm_t *s, MDB_txn *txn, const shm_krec_t *k)
{
    return put_fixed(txn, s->dbi_keys, k->name, k, sizeof(*k));
}

int shm__prov_get(shm_t *s, MDB_txn *txn, const char *name, shm_prec_t *out)
{
    return get_fixed(s, txn, s->dbi_prov, SHM_REC_PROV, name, out);
}

int shm__prov_put(shm_t *s, MDB_txn *txn, const shm_prec_t *p)
{
    return put_fixed(txn, s->dbi_prov, p->name, p, sizeof(*p));
}

void shm__prov_init(shm_prec_t *p, const char *name, int64_t now_ms)
{
    memset(p, 0, sizeof(*p));
    p->version = SHM_PREC_VERSION;
    p->size = sizeof(*p);
    memcpy(p->name, name, strnlen(name, SHM_NAME_MAX));
    p->since_ms = p->updated_ms = now_ms;
}

int shm__lat_get(shm_t *s, MDB_txn *txn, const char *name, shm_lrec_t *out)
{
    return get_fixed(s, txn, s->dbi_lat, SHM_REC_LAT, name, out);
}

int shm__hist_add(shm_t *s, MDB_txn *txn, const char *name, int type, const shm_krec_t *k,
                  int64_t arg, const char *text, int64_t ts_ms)
{
    return shm__hist_add_db(s, txn, s->dbi_hist, SHM_REC_HIST, name, type, k ? k->status : 0,
                            k ? k->reason : 0, arg, text, ts_ms);
}

int shm__hist_get(shm_t *s, MDB_txn *txn, MDB_dbi dbi, int kind, const char *name, shm_event_t *out,
                  unsigned max, unsigned *n)
{
    shm_hrec_t h;
    int rc = get_fixed(s, txn, dbi, kind, name, &h);
    *n = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    unsigned count = h.count < SHM_HISTORY_RING ? h.count : SHM_HISTORY_RING;
    unsigned start = h.count < SHM_HISTORY_RING ? 0 : h.head;
    unsigned skip = count > max ? count - max : 0; /* keep the newest max */
    for (unsigned i = skip; i < count; i++)
        out[(*n)++] = h.ev[(start + i) % SHM_HISTORY_RING];
    return 0;
}

int shm__hist_add_db(shm_t *s, MDB_txn *txn, MDB_dbi dbi, int kind, const char *name, int type,
                     int status, int reason, int64_t arg, const char *text, int64_t ts_ms)
{
    shm_hrec_t h;
    int rc = get_fixed(s, txn, dbi, kind, name, &h);
    if (rc == MDB_NOTFOUND) {
        memset(&h, 0, sizeof(h));
        h.version = SHM_HREC_VERSION;
        h.size = sizeof(h);
    } else if (rc != 0) {
        return rc;
    }
    shm_event_t *e = &h.ev[h.head % SHM_HISTORY_RING];
    memset(e, 0, sizeof(*e));
    e->ts_ms = ts_ms;
    e->arg = arg;
    e->pid = (int32_t)getpid();
    e->type = (uint16_t)type;
    e->status = (uint8_t)status;
    e->reason = (uint8_t)reason;
    if (text)
        memcpy(e->text, text, strnlen(text, sizeof(e->text) - 1));
    h.head = (h.head + 1) % SHM_HISTORY_RING;
    if (h.count < SHM_HISTORY_RING)
        h.count++;
    return put_fixed(txn, dbi, name, &h, sizeof(h));
}

int64_t shm__key_clock(shm_krec_t *k, int64_t now_ms, int64_t *stepped)
{
    *stepped = 0;
    if (now_ms >= k->clock_ms) {
        k->clock_ms = now_ms;
        return now_ms;
    }
    int64_t back = k->clock_ms - now_ms;
    if (back <= SHM_CLOCK_SKEW_MS)
        return k->clock_ms; /* late reader of the clock: count it as the newest second */
    /* Re-base: everything counted moves back with the clock, so nothing is forgotten and
     * no wait grows by the step. Whole seconds keep bucket boundaries aligned. */
    int64_t shift = shm_floordiv(now_ms, 1000) - shm_floordiv(k->clock_ms, 1000);
    shm_window_shift(&k->req, shift);
    shm_window_shift(&k->tok, shift);
    if (k->cooldown_until_ms != 0)
        k->cooldown_until_ms -= back;
    k->clock_ms = now_ms;
    *stepped = back;
    return now_ms;
}

int64_t shm__key_to_now(shm_krec_t *k, int64_t now_ms, int64_t *stepped)
{
    int64_t eff = shm__key_clock(k, now_ms, stepped);
    int64_t sec = shm_floordiv(eff, 1000);
    shm_window_advance(&k->req, sec);
    shm_window_advance(&k->tok, sec);
    shm__key_day(k, eff);
    return eff;
}

int64_t shm__day_index(int64_t eff_ms, int32_t offset_s)
{
    return shm_floordiv(eff_ms - (int64_t)offset_s * 1000, 86400000);
}

void shm__key_day(shm_krec_t *k, int64_t eff_ms)
{
    int64_t day = shm__day_index(eff_ms, k->day_offset_s);
    if (day > k->day)
        k->day_count = 0;
    /* A day that went back (clock re-base) keeps its count: never more than rpd. */
    k->day = day;
}

uint32_t shm__key_inflight(const shm_krec_t *k)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < SHM_MAX_OWNERS; i++)
        n += k->inflight[i];
    return n;
}

void shm__key_to_view(const shm_krec_t *k, int64_t now_ms, shm_key_t *o)
{
    memset(o, 0, sizeof(*o));
    memcpy(o->name, k->name, sizeof(o->name));
    memcpy(o->provider, k->provider, sizeof(o->provider));
    memcpy(o->fingerprint, k->fingerprint, sizeof(o->fingerprint));
    o->name[SHM_NAME_MAX] = o->provider[SHM_NAME_MAX] = o->fingerprint[SHM_FP_MAX] = '\0';
    o->rpm = k->rpm;
    o->rpd = k->rpd;
    o->tpm = k->tpm;
    o->max_inflight = k->max_inflight;
    o->weight = k->weight;
    o->day_offset_s = k->day_offset_s;
    o->orphaned = !!(k->flags & SHM_KF_ORPHANED);
    o->status = k->status;
    o->reason = k->reason;
    o->status_since_ms = k->status_since_ms;
    o->cooldown_until_ms = k->cooldown_until_ms;
    /* A reader applies the key clock without writing it back. */
    int64_t eff = now_ms;
    if (eff < k->clock_ms)
        eff = k->clock_ms; /* the windows stay as counted: never shows fewer than counted */
    int64_t sec = shm_floordiv(eff, 1000);
    o->rpm_used = (uint32_t)shm_window_used(&k->req, sec);
    o->tpm_used = shm_window_used(&k->tok, sec);
    o->rpd_used = shm__day_index(eff, k->day_offset_s) > k->day ? 0 : k->day_count;
    o->inflight = shm__key_inflight(k);
    o->consec_failures = k->consec_fail;
    o->consec_successes = k->consec_succ;
    o->ewma_total_ms = k->ewma_total_ms;
    o->ewma_ttfb_ms = k->ewma_ttfb_ms;
    o->last_error_code = k->last_error_code;
    o->last_error_ms = k->last_error_ms;
    o->last_admit_ms = k->last_admit_ms;
    o->created_ms = k->created_ms;
    o->updated_ms = k->updated_ms;
    o->requests = k->requests;
    memcpy(o->by_class, k->by_class, sizeof(o->by_class));
    o->prompt_tokens = k->prompt_tokens;
    o->completion_tokens = k->completion_tokens;
    o->cost_micro_usd = k->cost_micro_usd;
}

const char *shm_status_name(int st)
{
    static const char *const n[] = {"active",   "cooling", "half_open",
                                    "disabled", "invalid", "depleted"};
    return st >= 0 && st < SHM_ST_COUNT ? n[st] : "unknown";
}

const char *shm_reason_name(int r)
{
    static const char *const n[] = {"none", "rate_limited", "server_error", "timeout", "connect",
                                    "auth", "quota",        "admin",        "probe",   "policy"};
    return r >= 0 && r < SHM_RS_COUNT ? n[r] : "unknown";
}

const char *shm_class_name(int c)
{
    static const char *const n[] = {"success", "429",  "5xx",   "timeout",
                                    "connect", "auth", "other", "cancelled"};
    return c >= 0 && c < SHM_CL_COUNT ? n[c] : "unknown";
}

const char *shm_event_name(int t)
{
    static const char *const n[] = {
        "?",      "created", "config",  "orphaned",   "restored", "status",  "cooldown", "disable",
        "enable", "reset",   "reclaim", "clock_back", "added",    "changed", "rotated",  "revoked"};
    return t > 0 && t <= SHM_EV_CLIENT_REVOKE ? n[t] : "unknown";
}

const char *shm_circuit_name(int c)
{
    static const char *const n[] = {"closed", "open", "half_open"};
    return c >= 0 && c <= SHM_CIRCUIT_HALF_OPEN ? n[c] : "unknown";
}

/* ---- listing a database ------------------------------------------------------------------ */

typedef struct list_ctx_s {
    MDB_dbi dbi;
    int kind;
    size_t view_size;
    shm_conv_fn conv;
    int64_t now_ms;
    char *out;
    unsigned n;
} list_ctx_t;

static int list_fn(shm_t *s, MDB_txn *txn, void *arg)
{
    list_ctx_t *c = arg;
    MDB_stat st;
    MDB_cursor *cur;
    MDB_val kv, vv;
    uint64_t rec[512]; /* aligned for any record struct */
    int rc;

    free(c->out); /* a re-run after MDB_MAP_RESIZED starts afresh */
    c->out = NULL;
    c->n = 0;
    if (rec_kinds[c->kind].size > sizeof(rec))
        return SHM_EINVAL;
    if ((rc = mdb_stat(txn, c->dbi, &st)) != 0)
        return rc;
    if (!(c->out = calloc(st.ms_entries ? st.ms_entries : 1, c->view_size)))
        return SHM_ENOMEM;
    if ((rc = mdb_cursor_open(txn, c->dbi, &cur)) != 0)
        return rc;
    for (rc = mdb_cursor_get(cur, &kv, &vv, MDB_FIRST); rc == 0 && c->n < st.ms_entries;
         rc = mdb_cursor_get(cur, &kv, &vv, MDB_NEXT)) {
        if ((rc = shm__rec_check(s, c->kind, &kv, &vv)) != 0)
            break;
        memcpy(rec, vv.mv_data, vv.mv_size); /* records are never read in place */
        c->conv(rec, c->now_ms, c->out + (size_t)c->n++ * c->view_size);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

int shm__list(shm_t *s, MDB_dbi dbi, int kind, size_t view_size, shm_conv_fn conv, int64_t now_ms,
              void **out, unsigned *n)
{
    list_ctx_t c = {dbi, kind, view_size, conv, now_ms, NULL, 0};
    int rc = shm__read(s, list_fn, &c);

    if (rc != 0) {
        free(c.out);
        return rc;
    }
    *out = c.out;
    *n = c.n;
    return 0;
}
