/* metrics.c - request metrics in per-worker shards, merged and rendered at scrape. See
 * metrics.h for the design. */
#include "server/obs/metrics.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "server/obs/prom.h"

const double metrics_latency_bounds[METRICS_LATENCY_NBOUNDS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120,
};
const double metrics_overhead_bounds[METRICS_OVERHEAD_NBOUNDS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
};
const char *const metrics_reasons[METRICS_NREASONS] = {
    "rate_limited", "server_error", "timeout",         "connect",
    "auth",         "quota",        "model_not_found", "other",
};

/* ---- series ids ------------------------------------------------------------------------ *
 * kind (6 bits) | model (16) | key (24) | provider (12) | extra (6). Index 0 of model, key
 * and provider is "not configured" (the empty label); kinds start at 1, so id 0 is free
 * and marks an empty slot. Kinds are in rendering order. */

enum kind { K_REQ = 1, K_DUR, K_TTFB, K_TOK, K_COST, K_EST };

#define MODEL_MAX    0xffffu
#define KEY_MAX      0xffffffu
#define PROVIDER_MAX 0xfffu

#define HIST_WIDTH (METRICS_LATENCY_NBOUNDS + 2) /* counts (bounds + overflow), sum */

static uint64_t sid(unsigned kind, uint32_t model, uint32_t key, uint32_t prov, unsigned extra)
{
    return (uint64_t)kind << 58 | (uint64_t)model << 42 | (uint64_t)key << 18 |
           (uint64_t)prov << 6 | extra;
}

static unsigned sid_kind(uint64_t id)
{
    return (unsigned)(id >> 58);
}
static uint32_t sid_model(uint64_t id)
{
    return (uint32_t)(id >> 42) & MODEL_MAX;
}
static uint32_t sid_key(uint64_t id)
{
    return (uint32_t)(id >> 18) & KEY_MAX;
}
static uint32_t sid_prov(uint64_t id)
{
    return (uint32_t)(id >> 6) & PROVIDER_MAX;
}
static unsigned sid_extra(uint64_t id)
{
    return (unsigned)(id & 0x3f);
}

static unsigned kind_width(unsigned kind)
{
    return kind == K_DUR || kind == K_TTFB ? HIST_WIDTH : 1;
}

/* ---- a series table: open addressing, id -> offset of its values ---------------------- */

typedef struct tab_s {
    uint64_t *ids; /* 0 = empty */
    uint32_t *offs;
    size_t cap, count; /* cap: a power of two */
    double *vals;
    size_t nvals, capvals;
} tab_t;

static size_t hash_id(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (size_t)id;
}

static int tab_grow(tab_t *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint64_t *ids = calloc(cap, sizeof(*ids));
    uint32_t *offs = calloc(cap, sizeof(*offs));

    if (!ids || !offs) {
        free(ids);
        free(offs);
        return -1;
    }
    for (size_t i = 0; i < t->cap; i++) {
        size_t j;
        if (!t->ids[i])
            continue;
        for (j = hash_id(t->ids[i]) & (cap - 1); ids[j]; j = (j + 1) & (cap - 1))
            ;
        ids[j] = t->ids[i];
        offs[j] = t->offs[i];
    }
    free(t->ids);
    free(t->offs);
    t->ids = ids;
    t->offs = offs;
    t->cap = cap;
    return 0;
}

/* The values of series id (zeroed when new), or NULL if memory ran out. */
static double *tab_get(tab_t *t, uint64_t id)
{
    unsigned width = kind_width(sid_kind(id));
    size_t j;

    if (t->cap) {
        for (j = hash_id(id) & (t->cap - 1); t->ids[j]; j = (j + 1) & (t->cap - 1))
            if (t->ids[j] == id)
                return t->vals + t->offs[j];
    }
    if ((t->count + 1) * 4 > t->cap * 3 && tab_grow(t) != 0)
        return NULL;
    if (t->nvals + width > t->capvals) {
        size_t cap = t->capvals ? t->capvals * 2 : 256;
        double *v;
        while (cap < t->nvals + width)
            cap *= 2;
        v = realloc(t->vals, cap * sizeof(*v));
        if (!v)
            return NULL;
        t->vals = v;
        t->capvals = cap;
    }
    for (j = hash_id(id) & (t->cap - 1); t->ids[j]; j = (j + 1) & (t->cap - 1))
        ;
    t->ids[j] = id;
    t->offs[j] = (uint32_t)t->nvals;
    memset(t->vals + t->nvals, 0, width * sizeof(double));
    t->nvals += width;
    t->count++;
    return t->vals + t->offs[j];
}

static void tab_free(tab_t *t)
{
    free(t->ids);
    free(t->offs);
    free(t->vals);
    memset(t, 0, sizeof(*t));
}

/* ---- names -> configuration indices ----------------------------------------------------- */

typedef struct names_s {
    const char **name; /* NULL = empty slot */
    uint32_t *idx;
    size_t cap; /* a power of two, at least twice the entries */
} names_t;

static size_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return (size_t)h;
}

static int names_init(names_t *t, size_t n)
{
    t->cap = 16;
    while (t->cap < n * 2)
        t->cap *= 2;
    t->name = calloc(t->cap, sizeof(*t->name));
    t->idx = calloc(t->cap, sizeof(*t->idx));
    return t->name && t->idx ? 0 : -1;
}

/* The first name wins (config validation makes names unique anyway). */
static void names_add(names_t *t, const char *name, uint32_t idx)
{
    size_t j;

    for (j = hash_str(name) & (t->cap - 1); t->name[j]; j = (j + 1) & (t->cap - 1))
        if (strcmp(t->name[j], name) == 0)
            return;
    t->name[j] = name;
    t->idx[j] = idx;
}

static uint32_t names_find(const names_t *t, const char *name)
{
    if (!name || !t->cap)
        return 0;
    for (size_t j = hash_str(name) & (t->cap - 1); t->name[j]; j = (j + 1) & (t->cap - 1))
        if (strcmp(t->name[j], name) == 0)
            return t->idx[j];
    return 0;
}

static void names_free(names_t *t)
{
    free(t->name);
    free(t->idx);
    memset(t, 0, sizeof(*t));
}

/* ---- label dictionaries ------------------------------------------------------------------ *
 * One per configuration generation. Indices never change across reloads: a new dictionary
 * keeps every name of the old one at its index and appends the new names, so series
 * recorded under an old configuration keep their labels. Names are copies (a reload frees
 * the configuration they came from). */

typedef struct dim_s {
    char **name;    /* index -> name; [0] = "" */
    uint32_t n;     /* names 1..n */
    names_t map;    /* name (and, for models, alias) -> index */
    char **aliases; /* alias copies the map points to */
    unsigned naliases;
} dim_t;

typedef struct dict_s {
    dim_t models, provs, keys;
    uint32_t *key_prov; /* key index -> provider index */
} dict_t;

static void dim_free(dim_t *d)
{
    for (uint32_t i = 1; d->name && i <= d->n; i++)
        free(d->name[i]);
    for (unsigned i = 0; i < d->naliases; i++)
        free(d->aliases[i]);
    free(d->name);
    free(d->aliases);
    names_free(&d->map);
}

static void dict_free(dict_t *d)
{
    if (!d)
        return;
    dim_free(&d->models);
    dim_free(&d->provs);
    dim_free(&d->keys);
    free(d->key_prov);
    free(d);
}

/* Room for old's names plus more, old's names copied at their indices. */
static int dim_init(dim_t *d, const dim_t *old, size_t more, size_t naliases)
{
    size_t cap = (old ? old->n : 0) + more + 1;

    d->name = calloc(cap, sizeof(char *));
    d->aliases = calloc(naliases + 1, sizeof(char *));
    if (!d->name || !d->aliases || names_init(&d->map, cap + naliases) != 0)
        return -1;
    d->name[0] = "";
    for (uint32_t i = 1; old && i <= old->n; i++) {
        if (!(d->name[i] = strdup(old->name[i])))
            return -1;
        d->n = i;
        names_add(&d->map, d->name[i], i);
    }
    return 0;
}

/* The index of name, appended if new (0 past max: the empty label). -1: no memory. */
static int64_t dim_add(dim_t *d, const char *name, uint32_t max)
{
    uint32_t i = names_find(&d->map, name);

    if (i)
        return i;
    if (d->n + 1 >= max)
        return 0;
    if (!(d->name[d->n + 1] = strdup(name)))
        return -1;
    d->n++;
    names_add(&d->map, d->name[d->n], d->n);
    return d->n;
}

static int dim_alias(dim_t *d, const char *alias, uint32_t idx)
{
    if (!idx || names_find(&d->map, alias))
        return 0; /* a canonical name (or an earlier alias) wins */
    if (!(d->aliases[d->naliases] = strdup(alias)))
        return -1;
    names_add(&d->map, d->aliases[d->naliases++], idx);
    return 0;
}

static dict_t *dict_build(const dict_t *old, const cfg_t *cfg)
{
    dict_t *d = calloc(1, sizeof(*d));
    size_t nkeys = 0, naliases = 0;

    for (unsigned i = 0; i < cfg->providers_count; i++)
        nkeys += cfg->providers[i].keys_count;
    for (unsigned i = 0; i < cfg->models_count; i++)
        naliases += cfg->models[i].aliases_count;
    if (!d || dim_init(&d->models, old ? &old->models : NULL, cfg->models_count, naliases) ||
        dim_init(&d->provs, old ? &old->provs : NULL, cfg->providers_count, 0) ||
        dim_init(&d->keys, old ? &old->keys : NULL, nkeys, 0))
        goto fail;
    d->key_prov = calloc(d->keys.n + nkeys + 1, sizeof(uint32_t));
    if (!d->key_prov)
        goto fail;
    if (old)
        memcpy(d->key_prov, old->key_prov, (old->keys.n + 1) * sizeof(uint32_t));
    for (unsigned i = 0; i < cfg->models_count; i++)
        if (dim_add(&d->models, cfg->models[i].name, MODEL_MAX) < 0)
            goto fail;
    for (unsigned i = 0; i < cfg->models_count; i++) {
        const cfg_model_t *md = &cfg->models[i];
        uint32_t idx = names_find(&d->models.map, md->name);
        for (unsigned a = 0; a < md->aliases_count; a++)
            if (dim_alias(&d->models, md->aliases[a], idx) != 0)
                goto fail;
    }
    for (unsigned p = 0; p < cfg->providers_count; p++) {
        const cfg_provider_t *pr = &cfg->providers[p];
        int64_t pi = dim_add(&d->provs, pr->name, PROVIDER_MAX);
        if (pi < 0)
            goto fail;
        for (unsigned k = 0; k < pr->keys_count; k++) {
            int64_t ki = dim_add(&d->keys, pr->keys[k].name, KEY_MAX);
            if (ki < 0)
                goto fail;
            d->key_prov[ki] = (uint32_t)pi; /* a key that moved: its new provider */
        }
    }
    d->key_prov[0] = 0;
    return d;
fail:
    dict_free(d);
    return NULL;
}

/* ---- shards ------------------------------------------------------------------------------ */

typedef struct shard_s {
    uv_mutex_t lock;
    tab_t tab;
    double retries[METRICS_NREASONS], rotations[METRICS_NREASONS];
    double overhead[METRICS_OVERHEAD_NBOUNDS + 2]; /* counts (bounds + overflow), sum */
    double bytes_in, bytes_out;
    atomic_llong inflight;
} shard_t;

struct metrics_s {
    /* Workers read the dictionary inside their shard's lock; a reload publishes a new one,
     * then takes and releases every shard lock (after that no worker can still hold the
     * old one) and frees the old one. Scrapes and reloads exclude each other by
     * render_lock. */
    _Atomic(dict_t *) dict;
    uv_mutex_t render_lock;
    shard_t **shards; /* each its own allocation: no false sharing between workers */
    unsigned nshards;
};

int metrics_create(const cfg_t *cfg, unsigned nshards, metrics_t **out)
{
    metrics_t *m = calloc(1, sizeof(*m));
    dict_t *d = NULL;

    *out = NULL;
    if (!m || nshards == 0 || !(d = dict_build(NULL, cfg))) {
        free(m);
        return -1;
    }
    atomic_init(&m->dict, d);
    uv_mutex_init(&m->render_lock);
    m->shards = calloc(nshards, sizeof(*m->shards));
    if (!m->shards)
        goto fail;
    for (unsigned i = 0; i < nshards; i++) {
        m->shards[i] = calloc(1, sizeof(shard_t));
        if (!m->shards[i] || uv_mutex_init(&m->shards[i]->lock) != 0) {
            free(m->shards[i]);
            m->shards[i] = NULL;
            goto fail;
        }
        m->nshards++;
    }
    *out = m;
    return 0;
fail:
    metrics_destroy(m);
    return -1;
}

int metrics_reload(metrics_t *m, const cfg_t *cfg)
{
    dict_t *old, *d;

    uv_mutex_lock(&m->render_lock);
    old = atomic_load(&m->dict);
    d = dict_build(old, cfg);
    if (!d) {
        uv_mutex_unlock(&m->render_lock);
        return -1;
    }
    atomic_store(&m->dict, d);
    for (unsigned i = 0; i < m->nshards; i++) { /* grace period */
        uv_mutex_lock(&m->shards[i]->lock);
        uv_mutex_unlock(&m->shards[i]->lock);
    }
    uv_mutex_unlock(&m->render_lock);
    dict_free(old);
    return 0;
}

void metrics_destroy(metrics_t *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->nshards; i++) {
        uv_mutex_destroy(&m->shards[i]->lock);
        tab_free(&m->shards[i]->tab);
        free(m->shards[i]);
    }
    free(m->shards);
    dict_free(atomic_load(&m->dict));
    uv_mutex_destroy(&m->render_lock);
    free(m);
}

static shard_t *shard_of(metrics_t *m, unsigned i)
{
    return m->shards[i < m->nshards ? i : m->nshards - 1];
}

unsigned metrics_reason_index(const char *reason)
{
    for (unsigned i = 0; reason && i + 1 < METRICS_NREASONS; i++)
        if (strcmp(reason, metrics_reasons[i]) == 0)
            return i;
    return METRICS_NREASONS - 1;
}

const char *metrics_model_name(metrics_t *m, const char *name)
{
    dict_t *d = atomic_load(&m->dict);
    uint32_t i = names_find(&d->models.map, name);

    return i ? d->models.name[i] : NULL;
}

/* ---- recording --------------------------------------------------------------------------- */

static void hist_add(double *h, const double *bounds, unsigned nbounds, double v)
{
    if (!h)
        return;
    h[prom_bucket_index(bounds, nbounds, v)] += 1;
    h[nbounds + 1] += v;
}

static double nonneg(double v)
{
    return v > 0 ? v : 0; /* also NaN -> 0 */
}

void metrics_request(metrics_t *m, unsigned shard, const obs_record_t *r)
{
    shard_t *s = shard_of(m, shard);
    unsigned cls = r->status >= 100 && r->status <= 599 ? (unsigned)r->status / 100 : 0;
    uint32_t model, served, key, prov;
    const dict_t *d;
    double *v;

    uv_mutex_lock(&s->lock);
    d = atomic_load_explicit(&m->dict, memory_order_acquire);
    model = names_find(&d->models.map, r->model);
    served = r->served_model ? names_find(&d->models.map, r->served_model) : 0;
    key = names_find(&d->keys.map, r->key);
    prov = names_find(&d->provs.map, r->provider);
    if (!served)
        served = model;
    if (!prov && key)
        prov = d->key_prov[key];
    if ((v = tab_get(&s->tab, sid(K_REQ, model, key, prov, cls))) != NULL)
        v[0] += 1;
    hist_add(tab_get(&s->tab, sid(K_DUR, model, 0, prov, 0)), metrics_latency_bounds,
             METRICS_LATENCY_NBOUNDS, nonneg(r->duration_s));
    if (r->ttfb_s >= 0)
        hist_add(tab_get(&s->tab, sid(K_TTFB, model, 0, prov, 0)), metrics_latency_bounds,
                 METRICS_LATENCY_NBOUNDS, r->ttfb_s);
    hist_add(s->overhead, metrics_overhead_bounds, METRICS_OVERHEAD_NBOUNDS,
             nonneg(nonneg(r->duration_s) - nonneg(r->upstream_s)));
    if (r->prompt_tokens && (v = tab_get(&s->tab, sid(K_TOK, served, 0, 0, 0))) != NULL)
        v[0] += r->prompt_tokens;
    if (r->completion_tokens && (v = tab_get(&s->tab, sid(K_TOK, served, 0, 0, 1))) != NULL)
        v[0] += r->completion_tokens;
    if (r->cost_usd > 0 && (v = tab_get(&s->tab, sid(K_COST, served, 0, 0, 0))) != NULL)
        v[0] += r->cost_usd;
    if (r->tokens_estimated && (v = tab_get(&s->tab, sid(K_EST, served, 0, 0, 0))) != NULL)
        v[0] += 1;
    s->bytes_in += (double)r->bytes_in;
    s->bytes_out += (double)r->bytes_out;
    uv_mutex_unlock(&s->lock);
}

void metrics_retry(metrics_t *m, unsigned shard, int rotation, const char *reason)
{
    shard_t *s = shard_of(m, shard);
    unsigned i = metrics_reason_index(reason);

    uv_mutex_lock(&s->lock);
    if (rotation)
        s->rotations[i] += 1;
    else
        s->retries[i] += 1;
    uv_mutex_unlock(&s->lock);
}

void metrics_inflight(metrics_t *m, unsigned shard, int delta)
{
    atomic_fetch_add_explicit(&shard_of(m, shard)->inflight, delta, memory_order_relaxed);
}

/* ---- rendering --------------------------------------------------------------------------- */

/* What a scrape merges the shards into. */
typedef struct agg_s {
    tab_t tab;
    double retries[METRICS_NREASONS], rotations[METRICS_NREASONS];
    double overhead[METRICS_OVERHEAD_NBOUNDS + 2];
    double bytes_in, bytes_out;
    long long inflight;
} agg_t;

static int merge_shard(agg_t *a, shard_t *s)
{
    int rc = 0;

    uv_mutex_lock(&s->lock);
    for (size_t j = 0; j < s->tab.cap; j++) {
        uint64_t id = s->tab.ids[j];
        const double *src;
        double *dst;
        if (!id)
            continue;
        dst = tab_get(&a->tab, id);
        if (!dst) {
            rc = -1;
            break;
        }
        src = s->tab.vals + s->tab.offs[j];
        for (unsigned w = 0; w < kind_width(sid_kind(id)); w++)
            dst[w] += src[w];
    }
    for (unsigned i = 0; i < METRICS_NREASONS; i++) {
        a->retries[i] += s->retries[i];
        a->rotations[i] += s->rotations[i];
    }
    for (unsigned i = 0; i < METRICS_OVERHEAD_NBOUNDS + 2; i++)
        a->overhead[i] += s->overhead[i];
    a->bytes_in += s->bytes_in;
    a->bytes_out += s->bytes_out;
    uv_mutex_unlock(&s->lock);
    a->inflight += atomic_load_explicit(&s->inflight, memory_order_relaxed);
    return rc;
}

static int cmp_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static const char *class_name(unsigned cls)
{
    static const char *const n[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    return cls < 6 ? n[cls] : "other";
}

typedef struct family_s {
    unsigned kind;
    const char *name, *type, *help;
} family_t;

static const family_t families[] = {
    {K_REQ, "llmgate_requests_total", "counter",
     "Client requests answered, by requested model, provider and key of the last attempt, "
     "and status class of the response."},
    {K_DUR, "llmgate_request_duration_seconds", "histogram",
     "Time from the first byte of a request to the last byte of its response."},
    {K_TTFB, "llmgate_time_to_first_byte_seconds", "histogram",
     "Time from the first byte of a request to the first byte of its response."},
    {K_TOK, "llmgate_tokens_total", "counter",
     "Tokens used, by serving model and type (prompt, completion)."},
    {K_COST, "llmgate_cost_usd_total", "counter",
     "Cost in US dollars at the configured prices, by serving model."},
    {K_EST, "llmgate_estimated_usage_requests_total", "counter",
     "Requests whose token counts were estimated because the provider sent no usage."},
};

static const char *label(const dim_t *dim, uint32_t i)
{
    return i <= dim->n ? dim->name[i] : "";
}

static int render_kind(const dict_t *d, const agg_t *a, const uint64_t *ids, size_t n,
                       const family_t *f, buf_t *out)
{
    int rc = prom_family(out, f->name, f->type, f->help);

    for (size_t i = 0; i < n; i++) {
        uint64_t id = ids[i];
        const double *v;
        prom_labels_t l = {0};
        size_t j;

        if (sid_kind(id) != f->kind)
            continue;
        for (j = hash_id(id) & (a->tab.cap - 1); a->tab.ids[j] != id;
             j = (j + 1) & (a->tab.cap - 1))
            ;
        v = a->tab.vals + a->tab.offs[j];
        prom_label(&l, "model", label(&d->models, sid_model(id)));
        switch (f->kind) {
        case K_REQ:
            prom_label(&l, "provider", label(&d->provs, sid_prov(id)));
            prom_label(&l, "key", label(&d->keys, sid_key(id)));
            prom_label(&l, "status_class", class_name(sid_extra(id)));
            rc |= prom_sample(out, f->name, &l, v[0]);
            break;
        case K_DUR:
        case K_TTFB:
            prom_label(&l, "provider", label(&d->provs, sid_prov(id)));
            rc |= prom_histogram(out, f->name, &l, metrics_latency_bounds, METRICS_LATENCY_NBOUNDS,
                                 v, v[METRICS_LATENCY_NBOUNDS + 1]);
            break;
        case K_TOK:
            prom_label(&l, "type", sid_extra(id) ? "completion" : "prompt");
            rc |= prom_sample(out, f->name, &l, v[0]);
            break;
        default:
            rc |= prom_sample(out, f->name, &l, v[0]);
            break;
        }
    }
    return rc;
}

static int render_reasons(buf_t *out, const char *name, const char *help, const double *v)
{
    int rc = prom_family(out, name, "counter", help);

    for (unsigned i = 0; i < METRICS_NREASONS; i++) {
        prom_labels_t l = {0};
        prom_label(&l, "reason", metrics_reasons[i]);
        rc |= prom_sample(out, name, &l, v[i]);
    }
    return rc;
}

int metrics_render(metrics_t *m, buf_t *out)
{
    const dict_t *d;
    agg_t a;
    uint64_t *ids = NULL;
    size_t n = 0;
    int rc = 0;

    memset(&a, 0, sizeof(a));
    uv_mutex_lock(&m->render_lock);
    d = atomic_load(&m->dict);
    for (unsigned i = 0; i < m->nshards; i++)
        rc |= merge_shard(&a, m->shards[i]);
    if (a.tab.count) {
        ids = malloc(a.tab.count * sizeof(*ids));
        if (!ids) {
            rc = -1;
            goto out;
        }
        for (size_t j = 0; j < a.tab.cap; j++)
            if (a.tab.ids[j])
                ids[n++] = a.tab.ids[j];
        qsort(ids, n, sizeof(*ids), cmp_id);
    }
    for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
        rc |= render_kind(d, &a, ids, n, &families[f], out);
        if (families[f].kind == K_TTFB) {
            rc |= prom_family(out, "llmgate_gateway_overhead_seconds", "histogram",
                              "Time spent in llmgate itself per request: duration minus the "
                              "time spent waiting on upstreams.");
            rc |= prom_histogram(out, "llmgate_gateway_overhead_seconds", NULL,
                                 metrics_overhead_bounds, METRICS_OVERHEAD_NBOUNDS, a.overhead,
                                 a.overhead[METRICS_OVERHEAD_NBOUNDS + 1]);
        }
    }
    rc |=
        render_reasons(out, "llmgate_retries_total",
                       "Attempts retried on the same route after a backoff, by reason.", a.retries);
    rc |= render_reasons(out, "llmgate_rotations_total",
                         "Attempts moved to another key after a failure, by reason.", a.rotations);
    rc |= prom_family(out, "llmgate_received_bytes_total", "counter",
                      "Request bytes received from clients (head and body).");
    rc |= prom_sample(out, "llmgate_received_bytes_total", NULL, a.bytes_in);
    rc |=
        prom_family(out, "llmgate_sent_bytes_total", "counter", "Response bytes sent to clients.");
    rc |= prom_sample(out, "llmgate_sent_bytes_total", NULL, a.bytes_out);
    rc |= prom_family(out, "llmgate_inflight_requests", "gauge",
                      "Client requests being served by this process.");
    rc |= prom_sample(out, "llmgate_inflight_requests", NULL, (double)a.inflight);
out:
    uv_mutex_unlock(&m->render_lock);
    free(ids);
    tab_free(&a.tab);
    return rc;
}
