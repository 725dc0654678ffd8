/* lease.c - the lease manager (lease.h): grants asked for, given back and reconciled. */
#include "server/cluster/lease.h"
#include "server/common/clock.h"

#include "server/common/log.h"
#include "shm/shm_cdef.h"
#include "shm/shm_lease.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* KEYS[1]: the sorted set (grant id -> Redis ms until which it counts), KEYS[2]: the hash
 * (grant id -> amount). ARGV: grant id, limit, want, count_ms, force ("1": grant want whatever
 * is free: admissions already made), then pairs (grant id, used) to settle. Returns
 * {granted, free after}. */
static const char LEASE_SCRIPT[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "for _, m in ipairs(dead) do redis.call('HDEL', KEYS[2], m) end\n"
    "if #dead > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) end\n"
    "for i = 6, #ARGV, 2 do\n"
    "  local g, used = ARGV[i], tonumber(ARGV[i + 1])\n"
    "  if redis.call('ZSCORE', KEYS[1], g) then\n"
    "    if used <= 0 then\n"
    "      redis.call('ZREM', KEYS[1], g)\n"
    "      redis.call('HDEL', KEYS[2], g)\n"
    "    else\n"
    "      redis.call('HSET', KEYS[2], g, used)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local sum = 0\n"
    "for _, v in ipairs(redis.call('HVALS', KEYS[2])) do sum = sum + tonumber(v) end\n"
    "local limit, want = tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local n = want\n"
    "if ARGV[5] ~= '1' then\n"
    "  local free = limit - sum\n"
    "  if free < 0 then free = 0 end\n"
    "  if n > free then n = free end\n"
    "end\n"
    "if n > 0 then\n"
    "  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[1])\n"
    "  redis.call('HSET', KEYS[2], ARGV[1], n)\n"
    "  sum = sum + n\n"
    "end\n"
    "local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')\n"
    "if last[2] then\n"
    "  local ttl = math.floor(tonumber(last[2]) - now + 1000)\n"
    "  redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "  redis.call('PEXPIRE', KEYS[2], ttl)\n"
    "end\n"
    "local free = limit - sum\n"
    "if free < 0 then free = 0 end\n"
    "return {n, free}\n";

#define TICK_IDLE_MS    60000 /* an entity unused this long holds no grant */
#define EMPTY_RETRY_MS  250   /* Redis had nothing free: ask again after this */
#define ROLL_COUNT_MS   62000 /* a rolling-minute grant counts lease_ms + this */
#define PERIOD_SLACK_MS 2000
#define RETURNS_MAX     (SHM_LEASE_SLOTS * 2)
#define P50_RING        64

static const char *const dim_names[SHM_LD_COUNT] = {"rpm",  "tpm",   "rpd",  "tokd",
                                                    "tokm", "costd", "costm"};

enum { PER_ROLL, PER_DAY, PER_MONTH };
static const int dim_period[SHM_LD_COUNT] = {PER_ROLL,  PER_ROLL, PER_DAY,  PER_DAY,
                                             PER_MONTH, PER_DAY,  PER_MONTH};

typedef struct dim_s {
    int pending;           /* a LEASE call is out */
    int64_t retry_after;   /* wall ms: nothing free, do not ask before */
    int64_t last_grant_ms; /* wall ms of the last grant received */
    double rate;           /* units per ms, smoothed */
    uint64_t seen_id[SHM_LEASE_SLOTS], seen_used[SHM_LEASE_SLOTS];
    int64_t last_use_ms;
} dim_t;

typedef struct ent_s {
    int kind;
    char name[SHM_NAME_MAX + 1];
    uint64_t limit[SHM_LD_COUNT];
    dim_t d[SHM_LD_COUNT];
    int live; /* in the current configuration */
} ent_t;

struct lease_mgr_s {
    shm_t *shm;
    const cfg_t *cfg;
    rconn_t *redis;
    ent_t *ents;
    unsigned nents;
    int up, degraded;
    uint64_t epoch;
    uint64_t seq;
    unsigned pending; /* replies awaited */
    int64_t started_ms;
    int64_t last_tick_ms;
    int64_t hold_until; /* wall ms: after a reconcile, admit on the safe share until then */
    unsigned ticks_held;
    lease_stats_t st;
    uint32_t p50[P50_RING];
    unsigned p50_n;
};

/* What one LEASE call is for (the reply's argument). */
typedef struct call_s {
    lease_mgr_t *m;
    int kind;
    char name[SHM_NAME_MAX + 1];
    int dim;
    uint64_t id; /* the grant asked for, 0 for returns only */
    int64_t sent_ms;
    uint64_t sent_us;
    int64_t until_ms; /* where the grant may be used until */
    int force;
} call_t;

static uint64_t mono_us(void)
{
    return uv_hrtime() / 1000;
}

/* The wall ms at which the UTC day / month of now ends. */
static int64_t period_end(int period, int64_t now)
{
    if (period == PER_DAY)
        return (now / 86400000 + 1) * 86400000;
    time_t t = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    tm.tm_mday = 1;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mon += 1;
    return (int64_t)timegm(&tm) * 1000;
}

/* "node/pid/seq" of a local grant id (pid << 40 | seq). */
static size_t grant_name(const lease_mgr_t *m, uint64_t id, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%llu/%llu", m->cfg->cluster.node_id,
                     (unsigned long long)(id >> 40), (unsigned long long)(id & ((1ull << 40) - 1)));
    return n < 0 ? 0 : (size_t)n >= len ? len - 1 : (size_t)n;
}

static uint64_t next_id(lease_mgr_t *m)
{
    m->seq = (m->seq + 1) & ((1ull << 40) - 1);
    if (m->seq == 0)
        m->seq = 1;
    return (uint64_t)getpid() << 40 | m->seq;
}

/* ---- entities from the configuration ------------------------------------------------------ */

static int ent_cmp(const void *a, const void *b)
{
    const ent_t *x = a, *y = b;
    /* the leases database's order: 'c' (clients) before 'k' (keys), then the name */
    if (x->kind != y->kind)
        return x->kind == SHM_LK_CLIENT ? -1 : 1;
    return strcmp(x->name, y->name);
}

static uint64_t usd_micro(double usd)
{
    if (usd <= 0)
        return 0;
    uint64_t v = (uint64_t)(usd * 1e6 + 0.5);
    return v ? v : 1;
}

static ent_t *ent_find(lease_mgr_t *m, int kind, const char *name)
{
    ent_t key;
    key.kind = kind;
    snprintf(key.name, sizeof(key.name), "%s", name);
    return bsearch(&key, m->ents, m->nents, sizeof(ent_t), ent_cmp);
}

int lease_reconfigure(lease_mgr_t *m, const cfg_t *cfg)
{
    unsigned n = cfg->client_keys_count;
    for (unsigned p = 0; p < cfg->providers_count; p++)
        n += cfg->providers[p].keys_count;
    /* the store's clients (shm_cdef.h) too: shared by the cluster (clients.h) */
    shm_cdef_raw_t *defs = NULL;
    unsigned ndefs = 0;
    if (shm_cdef_export(m->shm, &defs, &ndefs) != 0)
        ndefs = 0;
    n += ndefs;
    ent_t *v = calloc(n ? n : 1, sizeof(*v));
    unsigned k = 0;
    if (!v) {
        shm_snapshot_free(defs);
        return -1;
    }
    for (unsigned i = 0; i < ndefs; i++) {
        const shm_cdef_raw_t *d = &defs[i];
        const shm_cdef_spec_t *sp = &d->spec;
        if (d->status != SHM_CDEF_ACTIVE || !d->cluster ||
            !(sp->rpm || sp->rpd || sp->tokens_per_day || sp->tokens_per_month ||
              sp->cost_per_day_micro_usd || sp->cost_per_month_micro_usd))
            continue;
        ent_t *e = &v[k++];
        e->kind = SHM_LK_CLIENT;
        snprintf(e->name, sizeof(e->name), "%s", d->name);
        e->limit[SHM_LD_RPM] = sp->rpm;
        e->limit[SHM_LD_RPD] = sp->rpd;
        e->limit[SHM_LD_TOK_DAY] = sp->tokens_per_day;
        e->limit[SHM_LD_TOK_MONTH] = sp->tokens_per_month;
        e->limit[SHM_LD_COST_DAY] = sp->cost_per_day_micro_usd;
        e->limit[SHM_LD_COST_MONTH] = sp->cost_per_month_micro_usd;
    }
    shm_snapshot_free(defs);
    for (unsigned p = 0; p < cfg->providers_count; p++) {
        for (unsigned i = 0; i < cfg->providers[p].keys_count; i++) {
            const cfg_key_t *key = &cfg->providers[p].keys[i];
            if (!key->rpm && !key->tpm && !key->rpd)
                continue;
            ent_t *e = &v[k++];
            e->kind = SHM_LK_KEY;
            snprintf(e->name, sizeof(e->name), "%s", key->name);
            e->limit[SHM_LD_RPM] = key->rpm;
            e->limit[SHM_LD_TPM] = key->tpm;
            e->limit[SHM_LD_RPD] = key->rpd;
        }
    }
    for (unsigned i = 0; i < cfg->client_keys_count; i++) {
        const cfg_client_t *c = &cfg->client_keys[i];
        ent_t *e = &v[k];
        e->kind = SHM_LK_CLIENT;
        snprintf(e->name, sizeof(e->name), "%s", c->name);
        e->limit[SHM_LD_RPM] = c->rpm;
        e->limit[SHM_LD_RPD] = c->rpd;
        e->limit[SHM_LD_TOK_DAY] = c->tokens_per_day;
        e->limit[SHM_LD_TOK_MONTH] = c->tokens_per_month;
        e->limit[SHM_LD_COST_DAY] = usd_micro(c->cost_per_day_usd);
        e->limit[SHM_LD_COST_MONTH] = usd_micro(c->cost_per_month_usd);
        int any = 0;
        for (int d = 0; d < SHM_LD_COUNT; d++)
            any |= e->limit[d] != 0;
        if (any)
            k++;
        else
            memset(e, 0, sizeof(*e));
    }
    qsort(v, k, sizeof(*v), ent_cmp);
    /* keep what was learnt of the entities that stay */
    for (unsigned i = 0; i < k; i++) {
        ent_t *old = m->ents ? ent_find(m, v[i].kind, v[i].name) : NULL;
        if (old)
            memcpy(v[i].d, old->d, sizeof(v[i].d));
        v[i].live = 1;
    }
    free(m->ents);
    m->ents = v;
    m->nents = k;
    m->cfg = cfg;
    return 0;
}

lease_mgr_t *lease_new(shm_t *shm, const cfg_t *cfg, rconn_t *redis)
{
    lease_mgr_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->shm = shm;
    m->redis = redis;
    m->started_ms = clock_wall_ms();
    m->seq = (uint64_t)m->started_ms & 0xffffff; /* ids of one pid differ across restarts */
    if (lease_reconfigure(m, cfg) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

void lease_free(lease_mgr_t *m)
{
    if (!m)
        return;
    free(m->ents);
    free(m);
}

void lease_set_redis(lease_mgr_t *m, int up, uint64_t epoch, int degraded)
{
    m->up = up;
    if (up)
        m->epoch = epoch;
    m->degraded = degraded;
    if (!up)
        for (unsigned i = 0; i < m->nents; i++)
            for (int d = 0; d < SHM_LD_COUNT; d++)
                m->ents[i].d[d].pending = 0; /* their replies fail with the connection */
}

/* ---- talking to Redis ----------------------------------------------------------------------- */

static void on_lease_reply(rconn_t *r, redisReply *reply, void *arg);

typedef struct ret_s {
    uint64_t id, used;
} ret_t;

/* One LEASE call for (e, d): ask for want (0: returns only; force: admissions already made),
 * settle rets. 0 sent, -1 not. */
static int lease_call(lease_mgr_t *m, const ent_t *e, int d, uint64_t want, int force,
                      const ret_t *rets, unsigned nret, int64_t now)
{
    char zkey[200], hkey[204], gid[96], lim[24], wnt[24], cnt[24];
    char rg[RETURNS_MAX][96], ru[RETURNS_MAX][24];
    const char *argv[8 + 2 * RETURNS_MAX];
    size_t lens[8 + 2 * RETURNS_MAX];
    int argc = 0;
    call_t *c = calloc(1, sizeof(*c));

    if (!c)
        return -1;
    if (nret > RETURNS_MAX)
        nret = RETURNS_MAX;
    c->m = m;
    c->kind = e->kind;
    memcpy(c->name, e->name, sizeof(c->name));
    c->dim = d;
    c->force = force;
    c->id = want && !force ? next_id(m) : 0;
    c->sent_ms = now;
    c->sent_us = mono_us();
    int64_t count_ms;
    if (dim_period[d] == PER_ROLL) {
        count_ms = (int64_t)m->cfg->cluster.lease_ms + ROLL_COUNT_MS;
        c->until_ms = now + m->cfg->cluster.lease_ms;
    } else {
        int64_t end = period_end(dim_period[d], now);
        count_ms = end - now + PERIOD_SLACK_MS;
        c->until_ms = now + m->cfg->cluster.lease_ms < end ? now + m->cfg->cluster.lease_ms : end;
    }
    snprintf(zkey, sizeof(zkey), "{%s:%c:%s}:%s", m->cfg->cluster.prefix,
             e->kind == SHM_LK_KEY ? 'k' : 'c', e->name, dim_names[d]);
    snprintf(hkey, sizeof(hkey), "%s:a", zkey);
    size_t gl = grant_name(m, c->id ? c->id : next_id(m), gid, sizeof(gid));
    snprintf(lim, sizeof(lim), "%llu", (unsigned long long)e->limit[d]);
    snprintf(wnt, sizeof(wnt), "%llu", (unsigned long long)want);
    snprintf(cnt, sizeof(cnt), "%lld", (long long)count_ms);
    argv[argc] = "EVAL", lens[argc++] = 4;
    argv[argc] = LEASE_SCRIPT, lens[argc++] = sizeof(LEASE_SCRIPT) - 1;
    argv[argc] = "2", lens[argc++] = 1;
    argv[argc] = zkey, lens[argc++] = strlen(zkey);
    argv[argc] = hkey, lens[argc++] = strlen(hkey);
    argv[argc] = gid, lens[argc++] = gl;
    argv[argc] = lim, lens[argc++] = strlen(lim);
    argv[argc] = wnt, lens[argc++] = strlen(wnt);
    /* the script's ARGV[4], [5] */
    const char *a4 = cnt, *a5 = force ? "1" : "0";
    argv[argc] = a4, lens[argc++] = strlen(a4);
    argv[argc] = a5, lens[argc++] = 1;
    for (unsigned i = 0; i < nret; i++) {
        size_t n = grant_name(m, rets[i].id, rg[i], sizeof(rg[i]));
        snprintf(ru[i], sizeof(ru[i]), "%llu", (unsigned long long)rets[i].used);
        argv[argc] = rg[i], lens[argc++] = n;
        argv[argc] = ru[i], lens[argc++] = strlen(ru[i]);
    }
    if (rconn_cmd(m->redis, on_lease_reply, c, argc, argv, lens) != 0) {
        free(c);
        return -1;
    }
    m->pending++;
    return 0;
}

/* Put a received grant into a free slot of the record. */
typedef struct put_ctx_s {
    int dim;
    shm_grant_t g;
    uint64_t epoch;
    int placed;
} put_ctx_t;

static int put_grant_fn(shm_lease_t *l, int exists, int64_t now, void *arg)
{
    put_ctx_t *p = arg;
    (void)now;
    p->placed = 0;
    if (!exists || l->epoch != p->epoch)
        return 0; /* the record is made (or reconciled) by the tick first */
    for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++) {
        if (l->g[p->dim][i].id == 0) {
            l->g[p->dim][i] = p->g;
            p->placed = 1;
            return 1;
        }
    }
    return 0;
}

static void p50_add(lease_mgr_t *m, uint32_t us)
{
    m->p50[m->p50_n++ % P50_RING] = us;
    unsigned n = m->p50_n < P50_RING ? m->p50_n : P50_RING;
    uint32_t tmp[P50_RING];
    memcpy(tmp, m->p50, n * sizeof(tmp[0]));
    /* insertion sort of at most 64 */
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && tmp[j - 1] > tmp[j]; j--) {
            uint32_t t = tmp[j];
            tmp[j] = tmp[j - 1];
            tmp[j - 1] = t;
        }
    m->st.refill_p50_us = tmp[n / 2];
}

static void on_lease_reply(rconn_t *r, redisReply *reply, void *arg)
{
    call_t *c = arg;
    lease_mgr_t *m = c->m;
    ent_t *e = ent_find(m, c->kind, c->name);
    (void)r;
    m->pending--;
    if (e && c->id)
        e->d[c->dim].pending = 0;
    if (!reply) {
        free(c);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        log_warn("cluster: Redis refused a lease for %s \"%s\": %.200s",
                 c->kind == SHM_LK_KEY ? "key" : "client", c->name, reply->str);
        free(c);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        free(c);
        return;
    }
    long long n = reply->element[0]->integer;
    uint64_t us = mono_us() - c->sent_us;
    if (c->id && n <= 0 && e)
        e->d[c->dim].retry_after = clock_wall_ms() + EMPTY_RETRY_MS;
    if (c->id && n > 0) {
        m->st.refills++;
        m->st.refill_us += us;
        if (us > m->st.refill_max_us)
            m->st.refill_max_us = us;
        p50_add(m, (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us));
        put_ctx_t p = {c->dim,
                       {.id = c->id, .granted = (uint64_t)n, .used = 0, .until_ms = c->until_ms},
                       m->epoch,
                       0};
        int rc = shm_lease_edit(m->shm, c->kind, c->name, SHM_NOW, put_grant_fn, &p);
        if (rc != 0 || !p.placed) {
            /* no room (or the store failed): give it back at once */
            ret_t back = {c->id, 0};
            if (e)
                lease_call(m, e, c->dim, 0, 0, &back, 1, clock_wall_ms());
        } else if (e) {
            e->d[c->dim].last_grant_ms = clock_wall_ms();
        }
    }
    free(c);
}

/* ---- the tick ------------------------------------------------------------------------------- */

/* What the tick does to one record, in its edit (re-runnable: outputs reset at the start). */
typedef struct tick_ctx_s {
    lease_mgr_t *m;
    int create;
    int mode;
    uint32_t share_ppm;
    int reconcile; /* the record's grants belong to another Redis state: drop them */
    int take_deg;  /* take deg_used out for reporting */
    int reset_want;
    /* out */
    ret_t ret[SHM_LD_COUNT][SHM_LEASE_SLOTS];
    unsigned nret[SHM_LD_COUNT];
    uint64_t deg[SHM_LD_COUNT];
    uint64_t want[SHM_LD_COUNT];
    shm_lease_t after;
} tick_ctx_t;

static int tick_fn(shm_lease_t *l, int exists, int64_t now, void *arg)
{
    tick_ctx_t *t = arg;
    int put = !exists;
    memset(t->nret, 0, sizeof(t->nret));
    memset(t->deg, 0, sizeof(t->deg));
    memset(t->want, 0, sizeof(t->want));
    if (!exists) {
        l->epoch = t->m->up ? t->m->epoch : 0;
        l->mode = (uint32_t)t->mode;
        l->share_ppm = t->share_ppm;
    }
    if (l->mode != (uint32_t)t->mode || l->share_ppm != t->share_ppm) {
        if (t->mode == SHM_LM_DEGRADED) {
            /* the safe share replaces the grants: one held through the outage and used after
             * it would come on top of the share. They end now (given back, at what was used,
             * once Redis is back). */
            for (int d = 0; d < SHM_LD_COUNT; d++)
                for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++)
                    if (l->g[d][i].id && l->g[d][i].until_ms > now)
                        l->g[d][i].until_ms = now;
        }
        l->mode = (uint32_t)t->mode;
        l->share_ppm = t->share_ppm;
        put = 1;
    }
    for (int d = 0; d < SHM_LD_COUNT; d++) {
        for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++) {
            shm_grant_t *g = &l->g[d][i];
            if (!g->id)
                continue;
            if (t->reconcile) { /* Redis does not know it (any more): forget it */
                memset(g, 0, sizeof(*g));
                put = 1;
            } else if (g->until_ms <= now && t->m->up) {
                t->ret[d][t->nret[d]++] = (ret_t){g->id, g->used};
                memset(g, 0, sizeof(*g));
                put = 1;
            }
        }
        if (t->take_deg && l->deg_used[d]) {
            t->deg[d] = l->deg_used[d];
            l->deg_used[d] = 0;
            put = 1;
        }
        if (t->reconcile) {
            l->deg_used[d] = 0;
            put = 1;
        }
        t->want[d] = l->want[d];
        if (t->reset_want && l->want[d]) {
            l->want[d] = 0;
            put = 1;
        }
    }
    if (t->reconcile) {
        l->epoch = t->m->epoch;
        put = 1;
    }
    if (put)
        l->updated_ms = now;
    t->after = *l;
    return put;
}

/* The entity's local usage of dimension d (the reconcile after Redis lost its state). */
static void local_usage(lease_mgr_t *m, const ent_t *e, uint64_t out[SHM_LD_COUNT])
{
    memset(out, 0, sizeof(uint64_t) * SHM_LD_COUNT);
    if (e->kind == SHM_LK_KEY) {
        shm_key_t k;
        if (shm_key_get(m->shm, e->name, SHM_NOW, &k) != 0)
            return;
        out[SHM_LD_RPM] = k.rpm_used;
        out[SHM_LD_TPM] = k.tpm_used;
        out[SHM_LD_RPD] = k.rpd_used;
    } else {
        shm_client_t c;
        if (shm_client_get(m->shm, e->name, SHM_NOW, &c) != 0)
            return;
        out[SHM_LD_RPM] = c.rpm_used;
        out[SHM_LD_RPD] = c.rpd_used;
        out[SHM_LD_TOK_DAY] = c.tokens_day_used;
        out[SHM_LD_TOK_MONTH] = c.tokens_month_used;
        out[SHM_LD_COST_DAY] = c.cost_day_used_micro_usd;
        out[SHM_LD_COST_MONTH] = c.cost_month_used_micro_usd;
    }
}

/* Learn the rate of dimension d from how the used counts of its grants moved. */
static void learn_rate(dim_t *dm, const shm_grant_t *g, int64_t now, int64_t dt)
{
    uint64_t used = 0;
    for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++) {
        uint64_t prev = 0;
        for (unsigned j = 0; j < SHM_LEASE_SLOTS; j++)
            if (g[i].id && dm->seen_id[j] == g[i].id)
                prev = dm->seen_used[j];
        if (g[i].id && g[i].used > prev)
            used += g[i].used - prev;
    }
    for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++) {
        dm->seen_id[i] = g[i].id;
        dm->seen_used[i] = g[i].used;
    }
    if (used)
        dm->last_use_ms = now;
    if (dt > 0) {
        double inst = (double)used / (double)dt, a = dt >= 1000 ? 1.0 : (double)dt / 1000.0;
        dm->rate = dm->rate * (1 - a) + inst * a;
    }
}

/* 1 while the node waits for every expected node to have reconciled with a Redis that lost
 * its state (or for lease_ms + 62 s): it admits on the safe share meanwhile. */
static int holding(const lease_mgr_t *m, int64_t now)
{
    return m->hold_until > now;
}

static void hold_begin(lease_mgr_t *m, int64_t now);

/* Returns 1 when the record was reconciled (its grants belonged to another Redis state). */
static int ent_tick(lease_mgr_t *m, ent_t *e, const shm_lease_t *rec, int64_t now, int64_t dt)
{
    const cfg_cluster_t *cc = &m->cfg->cluster;
    tick_ctx_t t;
    memset(&t, 0, sizeof(t));
    t.m = m;
    t.create = rec == NULL;
    if (rec && m->up && rec->epoch != m->epoch)
        hold_begin(m, now); /* before anything is asked of the new Redis */
    t.mode = m->degraded || holding(m, now) ? SHM_LM_DEGRADED : SHM_LM_LEASED;
    t.share_ppm = (uint32_t)(cc->safe_share * 1e6);
    int need_edit = rec == NULL;
    if (rec) {
        if (rec->mode != (uint32_t)t.mode || rec->share_ppm != t.share_ppm)
            need_edit = 1;
        if (m->up) {
            t.reconcile = rec->epoch != m->epoch;
            for (int d = 0; d < SHM_LD_COUNT; d++) {
                t.take_deg |= rec->deg_used[d] != 0;
                t.reset_want |= rec->want[d] != 0;
                for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++)
                    if (rec->g[d][i].id && rec->g[d][i].until_ms <= now)
                        need_edit = 1;
            }
            need_edit |= t.reconcile || t.take_deg || t.reset_want;
        }
    }
    shm_lease_t cur;
    if (need_edit) {
        int rc = shm_lease_edit(m->shm, e->kind, e->name, SHM_NOW, tick_fn, &t);
        if (rc != 0) {
            char why[160];
            log_error("cluster: the lease of %s \"%s\" cannot be written: %s",
                      e->kind == SHM_LK_KEY ? "key" : "client", e->name,
                      shm_explain(m->shm, rc, why, sizeof(why)));
            return 0;
        }
        cur = t.after;
    } else {
        cur = *rec;
    }
    uint64_t usage[SHM_LD_COUNT];
    if (t.reconcile && m->up)
        local_usage(m, e, usage);
    for (int d = 0; d < SHM_LD_COUNT; d++) {
        dim_t *dm = &e->d[d];
        if (!e->limit[d]) {
            if (t.nret[d]) /* a limit removed by a reload: settle what it held */
                lease_call(m, e, d, 0, 0, t.ret[d], t.nret[d], now);
            continue;
        }
        learn_rate(dm, cur.g[d], now, dt);
        if (!m->up)
            continue;
        /* admissions Redis does not know of yet: added as used grants */
        uint64_t made = t.reconcile ? usage[d] : t.deg[d];
        if (made)
            lease_call(m, e, d, made, 1, NULL, 0, now);
        if (m->degraded || holding(m, now)) {
            if (t.nret[d])
                lease_call(m, e, d, 0, 0, t.ret[d], t.nret[d], now);
            continue;
        }
        /* what the grants held can still give before they end, at the recent rate */
        uint64_t avail = 0;
        for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++) {
            const shm_grant_t *g = &cur.g[d][i];
            if (!g->id || g->until_ms <= now || g->used >= g->granted)
                continue;
            uint64_t rem = g->granted - g->used;
            double can = ceil(dm->rate * (double)(g->until_ms - now));
            uint64_t c = can < 1 ? 1 : can >= (double)rem ? rem : (uint64_t)can;
            avail += c < rem ? c : rem;
        }
        unsigned free_slots = 0;
        for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++)
            free_slots += cur.g[d][i].id == 0;
        uint64_t cap = (e->limit[d] + 2ull * cc->expected_nodes - 1) / (2ull * cc->expected_nodes);
        cap = cap ? cap : 1;
        double per_lease = dm->rate * cc->lease_ms * 1.5;
        uint64_t target = (uint64_t)ceil(per_lease);
        target = target < 1 ? 1 : target > cap ? cap : target;
        int starved =
            cur.starved_ms && cur.starved_ms >= dm->last_grant_ms && now - cur.starved_ms < 2000;
        if (starved) /* demand beyond what the rate says: as much as one grant may be */
            target = cap;
        if (t.want[d] > target)
            target = t.want[d];
        uint64_t low = (uint64_t)ceil(dm->rate * (cc->lease_ms / 4.0 + 100));
        low = low < 1 ? 1 : low;
        int active =
            starved || now - dm->last_use_ms < TICK_IDLE_MS || now - m->started_ms < TICK_IDLE_MS;
        int ask = active && !dm->pending && free_slots > 0 && now >= dm->retry_after &&
                  (avail < low || starved || t.want[d] > avail) && avail < target;
        if (ask) {
            if (lease_call(m, e, d, target - avail, 0, t.ret[d], t.nret[d], now) == 0)
                dm->pending = 1;
        } else if (t.nret[d]) {
            lease_call(m, e, d, 0, 0, t.ret[d], t.nret[d], now);
        }
    }
    return t.reconcile && m->up;
}

/* ---- after Redis lost its state ------------------------------------------------------------ *
 * Every node adds its local usage to the new Redis (the reconcile), but a node that asked for a
 * grant before the others had done so could be granted what they already admitted. So a node
 * that reconciled holds: it admits on the safe share until every expected node has reconciled
 * (PREFIX:reconciled:EPOCH holds their ids, added after their reports) or lease_ms + 62 s have
 * passed (then nothing admitted before the loss is in any window; a node that never came back
 * is the only thing a day or month budget may not know of). */

static void on_ignore(rconn_t *r, redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    (void)arg;
}

static void reconciled_key(const lease_mgr_t *m, char *buf, size_t len)
{
    snprintf(buf, len, "%s:reconciled:%016llx", m->cfg->cluster.prefix,
             (unsigned long long)m->epoch);
}

static void hold_begin(lease_mgr_t *m, int64_t now)
{
    if (!holding(m, now)) {
        m->hold_until = now + (int64_t)m->cfg->cluster.lease_ms + ROLL_COUNT_MS;
        log_warn("cluster: reconciling with a Redis that lost its state; admitting on the safe "
                 "share until every node has (at most %u ms)",
                 m->cfg->cluster.lease_ms + ROLL_COUNT_MS);
    }
}

/* This node's reports are sent: say so (after them on the same connection). */
static void hold_announce(lease_mgr_t *m)
{
    char key[128];
    reconciled_key(m, key, sizeof(key));
    const char *sv[3] = {"SADD", key, m->cfg->cluster.node_id};
    size_t sl[3] = {4, strlen(key), strlen(m->cfg->cluster.node_id)};
    const char *ev[3] = {"EXPIRE", key, "172800"};
    size_t el[3] = {6, strlen(key), 6};
    rconn_cmd(m->redis, on_ignore, NULL, 3, sv, sl); /* after this node's reports */
    rconn_cmd(m->redis, on_ignore, NULL, 3, ev, el);
    m->ticks_held = 1;
}

static void on_scard(rconn_t *r, redisReply *reply, void *arg)
{
    lease_mgr_t *m = arg;
    (void)r;
    m->pending--;
    if (reply && reply->type == REDIS_REPLY_INTEGER && m->hold_until &&
        reply->integer >= (long long)m->cfg->cluster.expected_nodes) {
        m->hold_until = 0;
        log_info("cluster: every expected node has reconciled; leasing again");
    }
}

static void hold_check(lease_mgr_t *m)
{
    char key[128];
    reconciled_key(m, key, sizeof(key));
    const char *av[2] = {"SCARD", key};
    size_t al[2] = {5, strlen(key)};
    if (rconn_cmd(m->redis, on_scard, m, 2, av, al) == 0)
        m->pending++;
}

void lease_tick(lease_mgr_t *m)
{
    shm_lease_t *recs = NULL;
    unsigned n = 0, j = 0;
    int64_t now = clock_wall_ms();
    int64_t dt = m->last_tick_ms ? now - m->last_tick_ms : 0;
    m->last_tick_ms = now;
    int rc = shm_leases(m->shm, &recs, &n);
    if (rc != 0) {
        char why[160];
        log_error("cluster: the leases cannot be read: %s",
                  shm_explain(m->shm, rc, why, sizeof(why)));
        return;
    }
    uint64_t grants = 0, units = 0;
    int reconciled = 0;
    for (unsigned i = 0; i < m->nents; i++) {
        ent_t *e = &m->ents[i];
        const shm_lease_t *rec = NULL;
        /* merge: both in the database's order */
        while (j < n) {
            ent_t probe;
            probe.kind = (int)recs[j].kind;
            memcpy(probe.name, recs[j].name, sizeof(probe.name));
            int cmp = ent_cmp(&probe, e);
            if (cmp < 0) {
                j++; /* a record of an entity no longer leased: left to expire unused */
                continue;
            }
            if (cmp == 0)
                rec = &recs[j++];
            break;
        }
        reconciled |= ent_tick(m, e, rec, now, dt);
        if (rec)
            for (int d = 0; d < SHM_LD_COUNT; d++)
                for (unsigned s = 0; s < SHM_LEASE_SLOTS; s++)
                    if (rec->g[d][s].id && rec->g[d][s].until_ms > now) {
                        grants++;
                        units += rec->g[d][s].granted > rec->g[d][s].used
                                     ? rec->g[d][s].granted - rec->g[d][s].used
                                     : 0;
                    }
    }
    if (reconciled && m->up)
        hold_announce(m);
    else if (holding(m, now) && m->up && m->ticks_held++ % 5 == 0)
        hold_check(m);
    m->st.grants = grants;
    m->st.units = units;
    shm_snapshot_free(recs);
}

/* ---- shutdown ----------------------------------------------------------------------------- */

typedef struct all_ctx_s {
    ret_t ret[SHM_LD_COUNT][SHM_LEASE_SLOTS];
    unsigned nret[SHM_LD_COUNT];
} all_ctx_t;

static int return_fn(shm_lease_t *l, int exists, int64_t now, void *arg)
{
    all_ctx_t *a = arg;
    (void)now;
    memset(a->nret, 0, sizeof(a->nret));
    if (!exists)
        return 0;
    for (int d = 0; d < SHM_LD_COUNT; d++)
        for (unsigned i = 0; i < SHM_LEASE_SLOTS; i++)
            if (l->g[d][i].id) {
                a->ret[d][a->nret[d]++] = (ret_t){l->g[d][i].id, l->g[d][i].used};
                memset(&l->g[d][i], 0, sizeof(l->g[d][i]));
            }
    return 1;
}

unsigned lease_return_all(lease_mgr_t *m)
{
    unsigned sent = 0;
    int64_t now = clock_wall_ms();
    if (!m->up)
        return 0;
    for (unsigned i = 0; i < m->nents; i++) {
        ent_t *e = &m->ents[i];
        all_ctx_t a;
        memset(&a, 0, sizeof(a));
        if (shm_lease_edit(m->shm, e->kind, e->name, SHM_NOW, return_fn, &a) != 0)
            continue;
        for (int d = 0; d < SHM_LD_COUNT; d++)
            if (a.nret[d] && lease_call(m, e, d, 0, 0, a.ret[d], a.nret[d], now) == 0)
                sent++;
    }
    return sent;
}

unsigned lease_pending(const lease_mgr_t *m)
{
    return m->pending;
}

void lease_stats(const lease_mgr_t *m, lease_stats_t *out)
{
    *out = m->st;
    out->holding = holding(m, clock_wall_ms());
}

int lease_holding(const lease_mgr_t *m)
{
    return holding(m, clock_wall_ms());
}
