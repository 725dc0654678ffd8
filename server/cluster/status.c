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

struct status_s {
    shm_t *shm;
    const cfg_t *cfg;
    rconn_t *redis;
    seen_t *seen; /* sorted by name */
    unsigned nseen;
    uint64_t published, applied;
};

/* The statuses that are shared (HALF_OPEN is each host's own). */
static int shared(int status)
{
    return status != SHM_ST_HALF_OPEN && status >= 0 && status < SHM_ST_COUNT;
}

static int seen_cmp(const void *a, const void *b)
{
    return strcmp(((const seen_t *)a)->name, ((const seen_t *)b)->name);
}

static seen_t *seen_find(status_t *st, const char *name)
{
    seen_t key;
    snprintf(key.name, sizeof(key.name), "%s", name);
    return st->nseen ? bsearch(&key, st->seen, st->nseen, sizeof(seen_t), seen_cmp) : NULL;
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
    free(st->seen);
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

static void publish(status_t *st, const shm_key_t *k)
{
    const cfg_cluster_t *cc = &st->cfg->cluster;
    char msg[STATUS_MSG_MAX], chan[96], hash[96];
    status_msg_t m = {.status = k->status,
                      .reason = k->reason,
                      .since_ms = k->status_since_ms,
                      .until_ms = k->cooldown_until_ms};
    snprintf(m.key, sizeof(m.key), "%s", k->name);
    snprintf(m.node, sizeof(m.node), "%s", cc->node_id);
    size_t n = status_msg_format(&m, msg);
    if (!n)
        return;
    snprintf(chan, sizeof(chan), "%s:events", cc->prefix);
    snprintf(hash, sizeof(hash), "%s:status", cc->prefix);
    const char *hv[4] = {"HSET", hash, k->name, msg};
    size_t hl[4] = {4, strlen(hash), strlen(k->name), n};
    const char *pv[3] = {"PUBLISH", chan, msg};
    size_t pl[3] = {7, strlen(chan), n};
    if (rconn_cmd(st->redis, on_ignore, NULL, 4, hv, hl) == 0 &&
        rconn_cmd(st->redis, on_ignore, NULL, 3, pv, pl) == 0)
        st->published++;
}

void status_tick(status_t *st)
{
    shm_key_t *keys = NULL;
    unsigned n = 0;
    if (!rconn_up(st->redis))
        return;
    if (shm_snapshot(st->shm, SHM_NOW, &keys, &n) != 0)
        return;
    seen_t *next = calloc(n ? n : 1, sizeof(*next));
    if (!next) {
        shm_snapshot_free(keys);
        return;
    }
    for (unsigned i = 0; i < n; i++) { /* keys come sorted by name */
        const shm_key_t *k = &keys[i];
        seen_t *was = seen_find(st, k->name);
        seen_t *now = &next[i];
        memcpy(now->name, k->name, sizeof(now->name));
        now->status = k->status;
        now->since_ms = k->status_since_ms;
        now->until_ms = k->cooldown_until_ms;
        if (k->orphaned || !shared(k->status)) {
            if (was && !shared(k->status)) /* half-open: remember the last shared one */
                *now = *was;
            continue;
        }
        if (was && was->status == now->status && was->since_ms == now->since_ms &&
            was->until_ms == now->until_ms)
            continue;
        publish(st, k);
    }
    free(st->seen);
    st->seen = next;
    st->nseen = n;
    shm_snapshot_free(keys);
}

void status_on_message(status_t *st, const char *payload, size_t len)
{
    status_msg_t m;
    if (status_msg_parse(payload, len, &m) != 0)
        return;
    if (!strcmp(m.node, st->cfg->cluster.node_id))
        return; /* our own */
    char actor[40];
    snprintf(actor, sizeof(actor), "cluster %.31s", m.node);
    int rc =
        shm_key_adopt(st->shm, m.key, m.status, m.reason, m.since_ms, m.until_ms, actor, SHM_NOW);
    if (rc == 1) {
        st->applied++;
        log_info("cluster: key \"%s\" is %s as node %s says", m.key, shm_status_name(m.status),
                 m.node);
        seen_t *was = seen_find(st, m.key);
        if (was) { /* what we took is not news to send back */
            was->status = m.status;
            was->since_ms = m.since_ms;
            was->until_ms = m.until_ms;
        }
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
