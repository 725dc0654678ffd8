/* cluster.c - `llmgatectl cluster`: the nodes of cluster mode and what each of them holds of
 * every leased limit, read from the Redis named by the config's cluster section (the layout is
 * server/cluster/lease.h's and cluster.c's; nothing here writes).
 *
 * hiredis' synchronous API, three round trips after AUTH: TIME and SMEMBERS PREFIX:nodes; one
 * pipeline of ZRANGEBYSCORE {PREFIX:E}:D (now +inf (the live grants: score above Redis' TIME,
 * as the lease script counts them) and HGETALL {PREFIX:E}:D:a (their amounts) for each entity
 * and dimension with a limit; one pipeline of HGETALL PREFIX:node:<id> for each node listed or
 * seen in a grant id (node/pid/seq). Every connect and reply waits at most max(timeout_ms,
 * 1 s): this is a person's command, it may wait a little longer than a node does.
 *
 * The one secret: the config is loaded without secrets, so the password is read here from the
 * variable cluster.password_env names and goes into AUTH only. Messages name Redis by its
 * address and the variable by its name; Redis' own error texts never repeat a password.
 */
#include "cli/ctl.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ctl_dim_names[SHM_LD_COUNT] = {"rpm",  "tpm",   "rpd",  "tokd",
                                                 "tokm", "costd", "costm"};

#define CLI_MIN_TIMEOUT_MS 1000
#define RKEY_MAX           320 /* "{" prefix ":k:" name "}:" dim ":a": names are <= 63 bytes */

typedef struct rd_s {
    ctl_t *c;
    ctl_cluster_t *v;
    const cfg_cluster_t *cc;
    redisContext *ctx;
    uint32_t timeout_ms;
} rd_t;

/* The message of a failed command (reply: its error or odd reply; NULL: the connection). */
static int rd_fail(rd_t *r, const char *what, const redisReply *reply)
{
    char b[512];
    const char *env = r->cc->password_env;

    if (reply && reply->type == REDIS_REPLY_ERROR) {
        const char *e = reply->str ? reply->str : "";
        if (!strncmp(e, "NOAUTH", 6) && env)
            return ctl_fail(CTL_EXIT_CLUSTER,
                            "Redis at %s wants a password: set $%s (cluster.password_env) in "
                            "this shell (%s)",
                            r->v->redis, env, vw_printable(e, b, sizeof(b)));
        if (!strncmp(e, "NOAUTH", 6))
            return ctl_fail(CTL_EXIT_CLUSTER,
                            "Redis at %s wants a password, and the cluster section of %s has no "
                            "password_env (%s)",
                            r->v->redis, r->c->config_path, vw_printable(e, b, sizeof(b)));
        if (!strncmp(e, "WRONGPASS", 9) || !strncmp(e, "ERR invalid password", 20))
            return ctl_fail(CTL_EXIT_CLUSTER, "Redis at %s refused the password from $%s%s%s: %s",
                            r->v->redis, env ? env : "?", r->cc->username ? " for user " : "",
                            r->cc->username ? r->cc->username : "", vw_printable(e, b, sizeof(b)));
        return ctl_fail(CTL_EXIT_CLUSTER, "Redis at %s: %s: %s", r->v->redis, what,
                        vw_printable(e, b, sizeof(b)));
    }
    if (reply)
        return ctl_fail(CTL_EXIT_CLUSTER, "Redis at %s: %s: unexpected reply (type %d)",
                        r->v->redis, what, reply->type);
    if (!r->ctx || r->ctx->err == REDIS_ERR_OOM)
        return ctl_fail(CTL_EXIT_STORE, "out of memory");
    if (r->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        return ctl_fail(CTL_EXIT_CLUSTER,
                        "Redis at %s did not answer %s within %u ms (cluster.redis in %s)",
                        r->v->redis, what, r->timeout_ms, r->c->config_path);
    if (r->ctx->err == REDIS_ERR_PROTOCOL)
        return ctl_fail(CTL_EXIT_CLUSTER,
                        "%s (cluster.redis in %s) does not speak Redis: %s: %s (is it the "
                        "address of a Redis server?)",
                        r->v->redis, r->c->config_path, what,
                        vw_printable(r->ctx->errstr, b, sizeof(b)));
    return ctl_fail(CTL_EXIT_CLUSTER, "cannot reach Redis at %s (cluster.redis in %s): %s: %s",
                    r->v->redis, r->c->config_path, what,
                    vw_printable(r->ctx->errstr, b, sizeof(b)));
}

/* One command; *out is its reply (an array when want_array). Returns 0 or the exit code. */
static int rd_cmd(rd_t *r, const char *what, int argc, const char **argv, int want_array,
                  redisReply **out)
{
    redisReply *reply = redisCommandArgv(r->ctx, argc, argv, NULL);
    int rc = 0;
    if (!reply || reply->type == REDIS_REPLY_ERROR ||
        (want_array && reply->type != REDIS_REPLY_ARRAY))
        rc = rd_fail(r, what, reply);
    if (rc != 0) {
        freeReplyObject(reply);
        reply = NULL;
    }
    *out = reply;
    return rc;
}

/* The replies of n commands appended before, each an array, into out[0..n). */
static int rd_pipe(rd_t *r, const char *what, unsigned n, redisReply **out)
{
    for (unsigned i = 0; i < n; i++) {
        void *p = NULL;
        if (redisGetReply(r->ctx, &p) != REDIS_OK)
            return rd_fail(r, what, NULL);
        out[i] = p;
        if (out[i]->type != REDIS_REPLY_ARRAY)
            return rd_fail(r, what, out[i]);
    }
    return 0;
}

static int rd_connect(rd_t *r)
{
    const cfg_cluster_t *cc = r->cc;
    struct timeval tv = {(time_t)(r->timeout_ms / 1000),
                         (suseconds_t)(r->timeout_ms % 1000) * 1000};
    redisReply *reply = NULL;
    int rc;

    r->ctx = cc->unix_path ? redisConnectUnixWithTimeout(cc->unix_path, tv)
                           : redisConnectWithTimeout(cc->host, cc->port, tv);
    if (!r->ctx || r->ctx->err)
        return rd_fail(r, "connect", NULL);
    if (redisSetTimeout(r->ctx, tv) != REDIS_OK)
        return rd_fail(r, "set the timeout", NULL);
    /* Not resolved by the config loader with CFG_LOAD_NO_SECRETS: read here, sent, forgotten. */
    const char *pw = cc->password_env ? getenv(cc->password_env) : NULL;
    if (pw && *pw) {
        const char *av[3] = {"AUTH", cc->username ? cc->username : pw, pw};
        rc = rd_cmd(r, "AUTH", cc->username ? 3 : 2, av, 0, &reply);
        freeReplyObject(reply);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- nodes and entities ----------------------------------------------------------------- */

static int grow(void **p, unsigned n, unsigned *cap, size_t size)
{
    if (n < *cap)
        return 0;
    unsigned c = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, (size_t)c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int node_cmp(const void *a, const void *b)
{
    return strcmp(((const ctl_cnode_t *)a)->id, ((const ctl_cnode_t *)b)->id);
}

/* Index of node id (the first n bytes of s), added when new (before the nodes are sorted). */
static int node_add(ctl_cluster_t *v, unsigned *cap, const char *s, size_t n, int listed)
{
    char id[SHM_NAME_MAX + 1];
    snprintf(id, sizeof(id), "%.*s", (int)(n < SHM_NAME_MAX ? n : SHM_NAME_MAX), s);
    for (unsigned i = 0; i < v->n_nodes; i++) {
        if (strcmp(v->nodes[i].id, id) == 0) {
            v->nodes[i].listed |= listed;
            return 0;
        }
    }
    if (grow((void **)&v->nodes, v->n_nodes, cap, sizeof(*v->nodes)) != 0)
        return -1;
    ctl_cnode_t *nd = &v->nodes[v->n_nodes++];
    memset(nd, 0, sizeof(*nd));
    memcpy(nd->id, id, strlen(id) + 1);
    nd->listed = listed;
    return 0;
}

static int node_find(const ctl_cluster_t *v, const char *s, size_t n)
{
    ctl_cnode_t key;
    snprintf(key.id, sizeof(key.id), "%.*s", (int)(n < SHM_NAME_MAX ? n : SHM_NAME_MAX), s);
    const ctl_cnode_t *p = bsearch(&key, v->nodes, v->n_nodes, sizeof(*p), node_cmp);
    return p ? (int)(p - v->nodes) : -1;
}

/* The node part of a grant id "node/pid/seq". */
static size_t grant_node_len(const redisReply *m)
{
    const char *slash = memchr(m->str, '/', m->len);
    return slash ? (size_t)(slash - m->str) : m->len;
}

/* As server/cluster/lease.c rounds a USD budget to the micro-USD limit it leases. */
static uint64_t usd_micro(double usd)
{
    if (usd <= 0)
        return 0;
    uint64_t u = (uint64_t)(usd * 1e6 + 0.5);
    return u ? u : 1;
}

/* The entities of the config, as the lease manager makes them: keys and client keys with any
 * limit. */
static int ents_from_config(ctl_cluster_t *v, const cfg_t *cfg)
{
    unsigned n = cfg->client_keys_count;
    for (unsigned p = 0; p < cfg->providers_count; p++)
        n += cfg->providers[p].keys_count;
    v->ents = calloc(n ? n : 1, sizeof(*v->ents));
    if (!v->ents)
        return -1;
    for (unsigned p = 0; p < cfg->providers_count; p++) {
        for (unsigned i = 0; i < cfg->providers[p].keys_count; i++) {
            const cfg_key_t *k = &cfg->providers[p].keys[i];
            if (!k->rpm && !k->tpm && !k->rpd)
                continue;
            ctl_cent_t *e = &v->ents[v->n_ents++];
            e->kind = SHM_LK_KEY;
            e->name = k->name;
            e->provider = cfg->providers[p].name;
            e->limit[SHM_LD_RPM] = k->rpm;
            e->limit[SHM_LD_TPM] = k->tpm;
            e->limit[SHM_LD_RPD] = k->rpd;
        }
    }
    for (unsigned i = 0; i < cfg->client_keys_count; i++) {
        const cfg_client_t *cl = &cfg->client_keys[i];
        ctl_cent_t *e = &v->ents[v->n_ents];
        int any = 0;
        e->kind = SHM_LK_CLIENT;
        e->name = cl->name;
        e->limit[SHM_LD_RPM] = cl->rpm;
        e->limit[SHM_LD_RPD] = cl->rpd;
        e->limit[SHM_LD_TOK_DAY] = cl->tokens_per_day;
        e->limit[SHM_LD_TOK_MONTH] = cl->tokens_per_month;
        e->limit[SHM_LD_COST_DAY] = usd_micro(cl->cost_per_day_usd);
        e->limit[SHM_LD_COST_MONTH] = usd_micro(cl->cost_per_month_usd);
        for (int d = 0; d < SHM_LD_COUNT; d++)
            any |= e->limit[d] != 0;
        if (any)
            v->n_ents++;
        else
            memset(e, 0, sizeof(*e));
    }
    return 0;
}

static void dim_key(const ctl_cluster_t *v, const ctl_cent_t *e, int d, int amounts, char *buf)
{
    snprintf(buf, RKEY_MAX, "{%s:%c:%s}:%s%s", v->prefix, e->kind == SHM_LK_KEY ? 'k' : 'c',
             e->name, ctl_dim_names[d], amounts ? ":a" : "");
}

/* Compares the fields of two (field, value) pairs of HGETALL's flat array (or a member with a
 * pair's field: the member is a pair's first pointer). */
static int field_cmp(const void *a, const void *b)
{
    const redisReply *x = *(redisReply *const *)a, *y = *(redisReply *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->str, y->str, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static uint64_t amount_of(redisReply **fields, size_t n, const redisReply *member)
{
    const redisReply *key = member;
    redisReply **p = bsearch(&key, fields, n, 2 * sizeof(*fields), field_cmp);
    if (!p)
        return 0;
    /* the lease script stores Lua numbers: integers, written as such below 1e14 */
    char *end;
    double a = strtod(p[1]->str, &end);
    return end != p[1]->str && a > 0 && a < 1.8e19 ? (uint64_t)(a + 0.5) : 0;
}

/* Sums the live grants of entity e from its replies (z[d], h[d] of its dims with a limit). */
static int ent_sum(ctl_cluster_t *v, ctl_cent_t *e, redisReply *const *z, redisReply *const *h,
                   ctl_cuse_t *tmp, unsigned *cap_uses)
{
    memset(tmp, 0, v->n_nodes * sizeof(*tmp));
    for (int d = 0; d < SHM_LD_COUNT; d++) {
        if (!e->limit[d])
            continue;
        size_t nf = h[d]->elements / 2;
        redisReply **fields = malloc((nf ? nf : 1) * 2 * sizeof(*fields));
        if (!fields)
            return -1;
        /* sorted as (field, value) pairs, so that each value stays after its field */
        if (nf)
            memcpy(fields, h[d]->element, nf * 2 * sizeof(*fields));
        for (size_t i = 0; i < nf * 2; i++) {
            if (fields[i]->type != REDIS_REPLY_STRING) {
                nf = 0; /* not a hash of grant amounts: nothing counts */
                break;
            }
        }
        qsort(fields, nf, 2 * sizeof(*fields), field_cmp);
        for (size_t i = 0; i < z[d]->elements; i++) {
            const redisReply *m = z[d]->element[i];
            if (m->type != REDIS_REPLY_STRING)
                continue;
            int nd = node_find(v, m->str, grant_node_len(m));
            if (nd < 0)
                continue;
            uint64_t a = amount_of(fields, nf, m);
            tmp[nd].units[d] += a;
            tmp[nd].grants[d]++;
            e->units[d] += a;
            e->grants[d]++;
        }
        free(fields);
    }
    e->first_use = v->n_uses;
    for (unsigned i = 0; i < v->n_nodes; i++) {
        unsigned g = 0;
        for (int d = 0; d < SHM_LD_COUNT; d++)
            g += tmp[i].grants[d];
        if (!g)
            continue;
        if (grow((void **)&v->uses, v->n_uses, cap_uses, sizeof(*v->uses)) != 0)
            return -1;
        tmp[i].node = i;
        v->uses[v->n_uses++] = tmp[i];
        e->n_uses++;
    }
    return 0;
}

static void str_field(const redisReply *val, char *dst, size_t len)
{
    snprintf(dst, len, "%.*s", (int)val->len, val->str);
}

static uint64_t u64_field(const redisReply *val)
{
    return strtoull(val->str, NULL, 10);
}

/* The fields of PREFIX:node:<id> (empty: gone). */
static void node_fill(ctl_cnode_t *nd, const redisReply *h)
{
    nd->gone = h->elements == 0;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *val = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
            continue;
        if (!strcmp(k->str, "mode"))
            str_field(val, nd->mode, sizeof(nd->mode));
        else if (!strcmp(k->str, "version"))
            str_field(val, nd->version, sizeof(nd->version));
        else if (!strcmp(k->str, "last_contact_ms"))
            nd->last_contact_ms = strtoll(val->str, NULL, 10);
        else if (!strcmp(k->str, "pid"))
            nd->pid = strtoll(val->str, NULL, 10);
        else if (!strcmp(k->str, "grants"))
            nd->grants = u64_field(val);
        else if (!strcmp(k->str, "units"))
            nd->units = u64_field(val);
        else if (!strcmp(k->str, "refills"))
            nd->refills = u64_field(val);
        else if (!strcmp(k->str, "refill_p50_us"))
            nd->refill_p50_us = u64_field(val);
        else if (!strcmp(k->str, "refill_max_us"))
            nd->refill_max_us = u64_field(val);
    }
}

/* Reads everything into r->v. Returns 0 or the exit code after a message. */
static int rd_read(rd_t *r)
{
    ctl_cluster_t *v = r->v;
    redisReply *reply = NULL, **ez = NULL, **nh = NULL;
    ctl_cuse_t *tmp = NULL;
    unsigned cap_nodes = 0, cap_uses = 0, nq = 0;
    char key[RKEY_MAX], since[32];
    int rc;

    /* Redis' clock decides what is live, as in the lease script */
    const char *tv[1] = {"TIME"};
    if ((rc = rd_cmd(r, "TIME", 1, tv, 1, &reply)) != 0)
        goto out;
    if (reply->elements != 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        rc = rd_fail(r, "TIME", reply);
        goto out;
    }
    v->redis_now_ms = strtoll(reply->element[0]->str, NULL, 10) * 1000 +
                      strtoll(reply->element[1]->str, NULL, 10) / 1000;
    freeReplyObject(reply);
    reply = NULL;

    snprintf(key, sizeof(key), "%s:nodes", v->prefix);
    const char *sv[2] = {"SMEMBERS", key};
    if ((rc = rd_cmd(r, "SMEMBERS nodes", 2, sv, 1, &reply)) != 0)
        goto out;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *m = reply->element[i];
        if (m->type == REDIS_REPLY_STRING && node_add(v, &cap_nodes, m->str, m->len, 1) != 0)
            goto oom;
    }

    /* the grants: two replies per (entity, dimension with a limit), in order */
    ez = calloc((size_t)v->n_ents * SHM_LD_COUNT * 2 + 1, sizeof(*ez));
    if (!ez)
        goto oom;
    snprintf(since, sizeof(since), "(%lld", (long long)v->redis_now_ms);
    for (unsigned i = 0; i < v->n_ents; i++) {
        for (int d = 0; d < SHM_LD_COUNT; d++) {
            if (!v->ents[i].limit[d])
                continue;
            dim_key(v, &v->ents[i], d, 0, key);
            const char *zv[4] = {"ZRANGEBYSCORE", key, since, "+inf"};
            if (redisAppendCommandArgv(r->ctx, 4, zv, NULL) != REDIS_OK)
                goto oom;
            dim_key(v, &v->ents[i], d, 1, key);
            const char *hv[2] = {"HGETALL", key};
            if (redisAppendCommandArgv(r->ctx, 2, hv, NULL) != REDIS_OK)
                goto oom;
            nq += 2;
        }
    }
    if ((rc = rd_pipe(r, "read the grants", nq, ez)) != 0)
        goto out;
    /* a grant of a node that is not listed (its SADD lost) still counts: show its node */
    for (unsigned q = 0; q < nq; q += 2) {
        for (size_t i = 0; i < ez[q]->elements; i++) {
            const redisReply *m = ez[q]->element[i];
            if (m->type == REDIS_REPLY_STRING &&
                node_add(v, &cap_nodes, m->str, grant_node_len(m), 0) != 0)
                goto oom;
        }
    }
    if (v->n_nodes)
        qsort(v->nodes, v->n_nodes, sizeof(*v->nodes), node_cmp);

    nh = calloc(v->n_nodes + 1, sizeof(*nh));
    if (!nh)
        goto oom;
    for (unsigned i = 0; i < v->n_nodes; i++) {
        snprintf(key, sizeof(key), "%s:node:%s", v->prefix, v->nodes[i].id);
        const char *hv[2] = {"HGETALL", key};
        if (redisAppendCommandArgv(r->ctx, 2, hv, NULL) != REDIS_OK)
            goto oom;
    }
    if ((rc = rd_pipe(r, "read the nodes", v->n_nodes, nh)) != 0)
        goto out;
    for (unsigned i = 0; i < v->n_nodes; i++)
        node_fill(&v->nodes[i], nh[i]);

    tmp = calloc(v->n_nodes + 1, sizeof(*tmp));
    if (!tmp)
        goto oom;
    unsigned q = 0;
    for (unsigned i = 0; i < v->n_ents; i++) {
        redisReply *z[SHM_LD_COUNT] = {0}, *h[SHM_LD_COUNT] = {0};
        for (int d = 0; d < SHM_LD_COUNT; d++) {
            if (v->ents[i].limit[d]) {
                z[d] = ez[q++];
                h[d] = ez[q++];
            }
        }
        if (ent_sum(v, &v->ents[i], z, h, tmp, &cap_uses) != 0)
            goto oom;
    }
    rc = 0;
    goto out;
oom:
    rc = ctl_fail(CTL_EXIT_STORE, "out of memory");
out:
    freeReplyObject(reply);
    for (unsigned i = 0; ez && i < nq; i++)
        freeReplyObject(ez[i]);
    free(ez);
    for (unsigned i = 0; nh && i < v->n_nodes; i++)
        freeReplyObject(nh[i]);
    free(nh);
    free(tmp);
    return rc;
}

void ctl_cluster_free(ctl_cluster_t *v)
{
    free(v->nodes);
    free(v->ents);
    free(v->uses);
    memset(v, 0, sizeof(*v));
}

int ctl_cmd_cluster(ctl_t *c)
{
    ctl_cluster_t v;
    vw_buf_t o = {0};
    rd_t r;
    int rc;

    memset(&v, 0, sizeof(v));
    memset(&r, 0, sizeof(r));
    if ((rc = ctl_config_load(c, "cluster", "its cluster section")) != 0)
        goto out;
    const cfg_cluster_t *cc = &c->cfg->cluster;
    if (!cc->enabled) {
        rc = ctl_fail(CTL_EXIT_CLUSTER,
                      "%s has no cluster section: this llmgate runs alone, it keeps no state in "
                      "Redis (cluster mode: see \"cluster:\" in llmgate.yaml(5))",
                      c->config_path);
        goto out;
    }
    if (cc->unix_path)
        snprintf(v.redis, sizeof(v.redis), "unix:%s", cc->unix_path);
    else
        snprintf(v.redis, sizeof(v.redis), strchr(cc->host, ':') ? "[%s]:%u" : "%s:%u", cc->host,
                 (unsigned)cc->port);
    v.prefix = cc->prefix;
    v.expected_nodes = cc->expected_nodes;
    v.now_ms = c->now_ms;
    if (ents_from_config(&v, c->cfg) != 0) {
        rc = ctl_fail(CTL_EXIT_STORE, "out of memory");
        goto out;
    }
    r.c = c;
    r.v = &v;
    r.cc = cc;
    r.timeout_ms = cc->timeout_ms > CLI_MIN_TIMEOUT_MS ? cc->timeout_ms : CLI_MIN_TIMEOUT_MS;
    if ((rc = rd_connect(&r)) != 0 || (rc = rd_read(&r)) != 0)
        goto out;
    if (c->json)
        ctl_json_cluster(c, &v, &o);
    else
        ctl_render_cluster(&v, c->color, &o);
    rc = ctl_write_out(&o) == 0 ? 0 : ctl_fail(CTL_EXIT_STORE, "cannot write the output");
out:
    if (r.ctx)
        redisFree(r.ctx);
    ctl_cluster_free(&v);
    vw_buf_free(&o);
    return rc;
}
