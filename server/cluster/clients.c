/* clients.c - store clients shared by every host of a cluster (clients.h). */
#include "server/cluster/clients.h"

#include "server/cluster/clients_msg.h"
#include "server/common/log.h"
#include "shm/shm_cdef.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a tick last saw of a definition (or took from the others). */
typedef struct seen_s {
    char name[SHM_NAME_MAX + 1];
    int status;
    int64_t updated_ms;
    unsigned char digest[32], prev_digest[32];
    int64_t refused_ms; /* the updated_ms of another node's definition refused (logged once) */
} seen_t;

struct clients_s {
    shm_t *shm;
    const cfg_t *cfg;
    rconn_t *redis;
    lease_mgr_t *lease;
    seen_t *seen; /* sorted by name */
    unsigned nseen;
    uint64_t published, applied;
};

static int seen_cmp(const void *a, const void *b)
{
    return strcmp(((const seen_t *)a)->name, ((const seen_t *)b)->name);
}

static seen_t *seen_find(clients_t *c, const char *name)
{
    seen_t key;
    snprintf(key.name, sizeof(key.name), "%s", name);
    return c->nseen ? bsearch(&key, c->seen, c->nseen, sizeof(seen_t), seen_cmp) : NULL;
}

static void seen_set(seen_t *s, const shm_cdef_raw_t *d)
{
    snprintf(s->name, sizeof(s->name), "%s", d->name);
    s->status = d->status;
    s->updated_ms = d->updated_ms;
    memcpy(s->digest, d->digest, 32);
    memcpy(s->prev_digest, d->prev_digest, 32);
}

static int seen_same(const seen_t *s, const shm_cdef_raw_t *d)
{
    return s->status == d->status && s->updated_ms == d->updated_ms &&
           !memcmp(s->digest, d->digest, 32) && !memcmp(s->prev_digest, d->prev_digest, 32);
}

/* A taken definition is not news to send back; one not seen yet is added (kept sorted). */
static void seen_note(clients_t *c, const shm_cdef_raw_t *d)
{
    seen_t *was = seen_find(c, d->name);
    if (was) {
        seen_set(was, d);
        was->refused_ms = 0;
        return;
    }
    seen_t *v = realloc(c->seen, (c->nseen + 1) * sizeof(*v));
    if (!v)
        return; /* sent back once at the next tick: harmless, it is not newer there */
    c->seen = v;
    memset(&v[c->nseen], 0, sizeof(v[0]));
    seen_set(&v[c->nseen++], d);
    qsort(c->seen, c->nseen, sizeof(seen_t), seen_cmp);
}

clients_t *clients_new(shm_t *shm, const cfg_t *cfg, rconn_t *redis, lease_mgr_t *lease)
{
    clients_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->shm = shm;
    c->cfg = cfg;
    c->redis = redis;
    c->lease = lease;
    int rc = shm_cdef_cluster_mark(shm, 1);
    if (rc < 0)
        log_warn("cluster: the store clients' budgets cannot be marked shared: %s",
                 shm_strerror(rc));
    else if (rc > 0 && lease)
        lease_reconfigure(lease, cfg);
    return c;
}

void clients_reconfigure(clients_t *c, const cfg_t *cfg)
{
    c->cfg = cfg; /* the cluster's lease_reconfigure reads the store clients itself */
}

void clients_free(clients_t *c)
{
    if (!c)
        return;
    free(c->seen);
    free(c);
}

void clients_counts(const clients_t *c, uint64_t *published, uint64_t *applied)
{
    *published = c ? c->published : 0;
    *applied = c ? c->applied : 0;
}

static void on_ignore(rconn_t *r, redisReply *reply, void *arg)
{
    (void)r;
    (void)reply;
    (void)arg;
}

/* HSET PREFIX:clients <name> <msg> and PUBLISH PREFIX:events <msg>. */
static void publish(clients_t *c, const shm_cdef_raw_t *d)
{
    const cfg_cluster_t *cc = &c->cfg->cluster;
    clients_msg_t m;
    char msg[CLIENTS_MSG_MAX], chan[96], hash[96];
    m.def = *d;
    snprintf(m.node, sizeof(m.node), "%s", cc->node_id);
    size_t n = clients_msg_format(&m, msg);
    if (!n)
        return;
    snprintf(chan, sizeof(chan), "%s:events", cc->prefix);
    snprintf(hash, sizeof(hash), "%s:clients", cc->prefix);
    const char *hv[4] = {"HSET", hash, d->name, msg};
    size_t hl[4] = {4, strlen(hash), strlen(d->name), n};
    const char *pv[3] = {"PUBLISH", chan, msg};
    size_t pl[3] = {7, strlen(chan), n};
    if (rconn_cmd(c->redis, on_ignore, NULL, 4, hv, hl) == 0 &&
        rconn_cmd(c->redis, on_ignore, NULL, 3, pv, pl) == 0)
        c->published++;
}

void clients_tick(clients_t *c)
{
    shm_cdef_raw_t *defs = NULL;
    unsigned n = 0, unmarked = 0;
    if (shm_cdef_export(c->shm, &defs, &n) != 0)
        return;
    for (unsigned i = 0; i < n; i++) {
        const shm_cdef_raw_t *d = &defs[i];
        const shm_cdef_spec_t *sp = &d->spec;
        int limited = sp->rpm || sp->rpd || sp->tokens_per_day || sp->tokens_per_month ||
                      sp->cost_per_day_micro_usd || sp->cost_per_month_micro_usd;
        unmarked += d->status == SHM_CDEF_ACTIVE && limited && !d->cluster;
    }
    /* a client this host's CLI added or changed: its budget is the cluster's */
    if (unmarked) {
        if (shm_cdef_cluster_mark(c->shm, 1) > 0 && c->lease)
            lease_reconfigure(c->lease, c->cfg);
    }
    if (!rconn_up(c->redis)) {
        shm_snapshot_free(defs);
        return; /* published once it is up: the seen set is left as it was */
    }
    seen_t *next = calloc(n ? n : 1, sizeof(*next));
    if (!next) {
        shm_snapshot_free(defs);
        return;
    }
    int changed = 0;
    for (unsigned i = 0; i < n; i++) { /* sorted by name */
        const shm_cdef_raw_t *d = &defs[i];
        seen_t *was = seen_find(c, d->name);
        seen_set(&next[i], d);
        if (was && seen_same(was, d)) {
            next[i].refused_ms = was->refused_ms;
            continue;
        }
        changed = 1;
        publish(c, d);
    }
    free(c->seen);
    c->seen = next;
    c->nseen = n;
    shm_snapshot_free(defs);
    if (changed && !unmarked && c->lease)
        lease_reconfigure(c->lease, c->cfg); /* a `client set` here changes the leased limits */
}

int clients_on_message(clients_t *c, const char *payload, size_t len)
{
    const size_t plen = sizeof(CLIENTS_MSG_PREFIX) - 1;
    clients_msg_t m;
    if (len < plen || memcmp(payload, CLIENTS_MSG_PREFIX, plen))
        return 0;
    if (clients_msg_parse(payload, len, &m) != 0) {
        log_debug("cluster: a client definition message that does not parse (ignored)");
        return 1;
    }
    if (!strcmp(m.node, c->cfg->cluster.node_id))
        return 1; /* our own */
    int rc = shm_cdef_adopt(c->shm, &m.def, 1, m.node, SHM_NOW);
    if (rc == 0)
        return 1; /* not newer than ours */
    if (rc < 0) {
        seen_t *was = seen_find(c, m.def.name);
        if (!was || was->refused_ms != m.def.updated_ms) {
            log_warn("cluster: client \"%s\" from node %s not taken: %s (a configuration "
                     "client of that name, or a key digest another client holds here)",
                     m.def.name, m.node, shm_strerror(rc));
            if (was)
                was->refused_ms = m.def.updated_ms;
        }
        return 1;
    }
    c->applied++;
    log_info("cluster: client \"%s\" is %s as node %s says", m.def.name,
             m.def.status == SHM_CDEF_REVOKED ? "revoked" : "defined", m.node);
    seen_note(c, &m.def);
    if (c->lease)
        lease_reconfigure(c->lease, c->cfg);
    return 1;
}

static void on_catchup(rconn_t *r, redisReply *reply, void *arg)
{
    clients_t *c = arg;
    (void)r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 1; i < reply->elements; i += 2)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            clients_on_message(c, reply->element[i]->str, reply->element[i]->len);
}

void clients_on_up(clients_t *c)
{
    char hash[96];
    snprintf(hash, sizeof(hash), "%s:clients", c->cfg->cluster.prefix);
    const char *argv[2] = {"HGETALL", hash};
    size_t lens[2] = {7, strlen(hash)};
    rconn_cmd(c->redis, on_catchup, c, 2, argv, lens);
}
