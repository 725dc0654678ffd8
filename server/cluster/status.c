/* status.c - key status shared by every host (status.h). */
#include "server/cluster/status.h"

#include "server/cluster/status_msg.h"
#include "server/common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen_s {
    char name[SHM_NAME_MAX + 1];
    int status;
    int64_t since_ms, until_ms;
} seen_t;

/* What a tick last saw of keys or of circuits (or took from the others), sorted by name. */
typedef struct seen_set_s {
    seen_t *v;
    unsigned n;
} seen_set_t;

struct status_s {
    shm_t *shm;
    const cfg_t *cfg;
    rconn_t *redis;
    seen_set_t keys, circuits;
    uint64_t published, applied;
};

static int seen_cmp(const void *a, const void *b)
{
    return strcmp(((const seen_t *)a)->name, ((const seen_t *)b)->name);
}

static seen_t *seen_find(seen_set_t *set, const char *name)
{
    seen_t key;
    snprintf(key.name, sizeof(key.name), "%s", name);
    return set->n ? bsearch(&key, set->v, set->n, sizeof(seen_t), seen_cmp) : NULL;
}

/* A taken change is not news to send back. */
static void seen_note(seen_set_t *set, const status_msg_t *m)
{
    seen_t *was = seen_find(set, m->key);
    if (was) {
        was->status = m->status;
        was->since_ms = m->since_ms;
        was->until_ms = m->until_ms;
    }
}

status_t *status_new(shm_t *shm, const cfg_t *cfg, rconn_t *redis)
{
    status_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->shm = shm;
    st->cfg = cfg;
    st->redis = redis;
    return st;
}

void status_reconfigure(status_t *st, const cfg_t *cfg)
{
    st->cfg = cfg;
}

void status_free(status_t *st)
{
    if (!st)
        return;
    free(st->keys.v);
    free(st->circuits.v);
    free(st);
}

void status_counts(const status_t *st, uint64_t *published, uint64_t *applied)
{
    *published = st->published;
    *applied = st->applied;
}

static void on_ignore(rconn_t *r, redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    (void)arg;
}

/* HSET PREFIX:status <field> <msg> and PUBLISH PREFIX:events <msg>. */
static void publish(status_t *st, status_msg_t *m)
{
    const cfg_cluster_t *cc = &st->cfg->cluster;
    char msg[STATUS_MSG_MAX], chan[96], hash[96];
    snprintf(m->node, sizeof(m->node), "%s", cc->node_id);
    size_t n = status_msg_format(m, msg);
    if (!n)
        return;
    /* the hash field: the message up to its first space ("k1", "circuit:openai") */
    size_t flen = (size_t)((const char *)memchr(msg, ' ', n) - msg);
    snprintf(chan, sizeof(chan), "%s:events", cc->prefix);
    snprintf(hash, sizeof(hash), "%s:status", cc->prefix);
    const char *hv[4] = {"HSET", hash, msg, msg};
    size_t hl[4] = {4, strlen(hash), flen, n};
    const char *pv[3] = {"PUBLISH", chan, msg};
    size_t pl[3] = {7, strlen(chan), n};
    if (rconn_cmd(st->redis, on_ignore, NULL, 4, hv, hl) == 0 &&
        rconn_cmd(st->redis, on_ignore, NULL, 3, pv, pl) == 0)
        st->published++;
}

/* One key or circuit of a tick: into *now, published when it changed since *was. A state that
 * is not shared (half-open) keeps the last shared one; the state a record was created with
 * (fresh) is no news: a host that starts never tells the others their keys are active. */
static void tick_one(status_t *st, const seen_t *was, seen_t *now, int shared, int fresh,
                     status_msg_t *m)
{
    if (!shared) {
        if (was)
            *now = *was;
        return;
    }
    if (was && was->status == now->status && was->since_ms == now->since_ms &&
        was->until_ms == now->until_ms)
        return;
    if (!was && fresh)
        return;
    publish(st, m);
}

static void tick_keys(status_t *st)
{
    shm_key_t *keys = NULL;
    unsigned n = 0;
    if (shm_snapshot(st->shm, SHM_NOW, &keys, &n) != 0)
        return;
    seen_t *next = calloc(n ? n : 1, sizeof(*next));
    if (!next) {
        shm_snapshot_free(keys);
        return;
    }
    for (unsigned i = 0; i < n; i++) { /* keys come sorted by name */
        const shm_key_t *k = &keys[i];
        seen_t *now = &next[i];
        memcpy(now->name, k->name, sizeof(now->name));
        now->status = k->status;
        now->since_ms = k->status_since_ms;
        now->until_ms = k->cooldown_until_ms;
        status_msg_t m = {.kind = STATUS_MSG_KEY,
                          .status = k->status,
                          .reason = k->reason,
                          .since_ms = k->status_since_ms,
                          .until_ms = k->cooldown_until_ms};
        snprintf(m.key, sizeof(m.key), "%s", k->name);
        int shared = !k->orphaned && k->status != SHM_ST_HALF_OPEN;
        int fresh = k->status == SHM_ST_ACTIVE && k->status_since_ms == k->created_ms;
        tick_one(st, seen_find(&st->keys, k->name), now, shared, fresh, &m);
    }
    free(st->keys.v);
    st->keys.v = next;
    st->keys.n = n;
    shm_snapshot_free(keys);
}

static void tick_circuits(status_t *st)
{
    shm_provider_t *provs = NULL;
    unsigned n = 0;
    if (shm_providers(st->shm, &provs, &n) != 0)
        return;
    seen_t *next = calloc(n ? n : 1, sizeof(*next));
    if (!next) {
        shm_snapshot_free(provs);
        return;
    }
    for (unsigned i = 0; i < n; i++) { /* sorted by name */
        const shm_provider_t *p = &provs[i];
        seen_t *now = &next[i];
        memcpy(now->name, p->name, sizeof(now->name));
        now->status = p->circuit; /* an OPEN circuit whose time is up reads HALF_OPEN */
        now->since_ms = p->since_ms;
        now->until_ms = p->open_until_ms;
        status_msg_t m = {.kind = STATUS_MSG_CIRCUIT,
                          .status = p->circuit,
                          .reason = p->reason,
                          .since_ms = p->since_ms,
                          .until_ms = p->open_until_ms};
        snprintf(m.key, sizeof(m.key), "%s", p->name);
        int shared = p->circuit == SHM_CIRCUIT_CLOSED || p->circuit == SHM_CIRCUIT_OPEN;
        int fresh = p->circuit == SHM_CIRCUIT_CLOSED && p->reason == SHM_RS_NONE;
        tick_one(st, seen_find(&st->circuits, p->name), now, shared, fresh, &m);
    }
    free(st->circuits.v);
    st->circuits.v = next;
    st->circuits.n = n;
    shm_snapshot_free(provs);
}

void status_tick(status_t *st)
{
    if (!rconn_up(st->redis))
        return;
    tick_keys(st);
    tick_circuits(st);
}

static int provider_configured(const cfg_t *cfg, const char *name)
{
    for (unsigned i = 0; i < cfg->providers_count; i++)
        if (!strcmp(cfg->providers[i].name, name))
            return 1;
    return 0;
}

void status_on_message(status_t *st, const char *payload, size_t len)
{
    status_msg_t m;
    if (status_msg_parse(payload, len, &m) != 0)
        return;
    if (!strcmp(m.node, st->cfg->cluster.node_id))
        return; /* our own */
    int rc;
    if (m.kind == STATUS_MSG_CIRCUIT) {
        if (!provider_configured(st->cfg, m.key))
            return; /* not one of ours */
        rc =
            shm_provider_adopt(st->shm, m.key, m.status, m.reason, m.since_ms, m.until_ms, SHM_NOW);
    } else {
        char actor[40];
        snprintf(actor, sizeof(actor), "cluster %.31s", m.node);
        rc = shm_key_adopt(st->shm, m.key, m.status, m.reason, m.since_ms, m.until_ms, actor,
                           SHM_NOW);
    }
    if (rc != 1)
        return;
    st->applied++;
    if (m.kind == STATUS_MSG_CIRCUIT) {
        log_info("cluster: provider \"%s\"'s circuit is %s as node %s says", m.key,
                 shm_circuit_name(m.status), m.node);
        seen_note(&st->circuits, &m);
    } else {
        log_info("cluster: key \"%s\" is %s as node %s says", m.key, shm_status_name(m.status),
                 m.node);
        seen_note(&st->keys, &m);
    }
}

static void on_catchup(rconn_t *r, redisReply *reply, void *arg)
{
    status_t *st = arg;
    (void)r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 1; i < reply->elements; i += 2)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            status_on_message(st, reply->element[i]->str, reply->element[i]->len);
}

void status_on_up(status_t *st)
{
    char hash[96];
    snprintf(hash, sizeof(hash), "%s:status", st->cfg->cluster.prefix);
    const char *argv[2] = {"HGETALL", hash};
    size_t lens[2] = {7, strlen(hash)};
    rconn_cmd(st->redis, on_catchup, st, 2, argv, lens);
}
