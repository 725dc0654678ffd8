/* mock_admin.c - what the worker threads share: per-key fault scripts, request statistics,
 * the last request, and the /_mock/ admin API that shows and changes them.
 *
 * The request path must stay cheap, so statistics and the last request are kept per
 * worker thread, each behind its own mutex (uncontended except while /_mock/stats or
 * /_mock/last reads it); the readers merge. Scripts live in one list behind one mutex, and
 * an atomic count of scripted keys lets requests skip the lock while none exists.
 */

#include "mock.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAP_MAX       4096       /* distinct keys / paths counted per thread */
#define LAST_BODY_MAX (16 << 20) /* /_mock/last keeps at most this much body */
#define OTHER         "(other)"

#define LIT(s) s, sizeof(s) - 1

typedef struct count_s {
    char *name; /* NULL = free slot */
    size_t len;
    uint32_t hash;
    uint64_t n;
} count_t;

typedef struct countmap_s {
    count_t *slots;
    uint32_t cap, used;
} countmap_t;

typedef struct tstate_s {
    _Alignas(64) uv_mutex_t mu; /* one cache line region per thread */
    uint64_t requests;
    countmap_t by_key, by_path;
    uint64_t last_seq; /* 0 = nothing recorded */
    int last_method;
    size_t last_url_len;
    mock_buf_t last_arena; /* URL, then header names and values */
    mock_hdr_t *last_hdrs;
    int last_nhdrs, last_hdrs_cap;
    mock_buf_t last_body;
    int last_body_cut;
} tstate_t;

typedef struct script_s {
    struct script_s *next;
    mock_fault_t fault;
    long count; /* requests left, 0 = until reset */
    mock_buf_t headers;
} script_t;

typedef struct keyq_s {
    struct keyq_s *next;
    char *key;
    size_t key_len;
    script_t *head, *tail;
} keyq_t;

static tstate_t *g_threads;
static int g_nthreads;
static atomic_uint_fast64_t g_seq;
static atomic_long g_active, g_accepted;
static atomic_llong g_bytes_sent; /* response bytes the kernel took, all connections */
static uv_mutex_t g_script_mu;
static keyq_t *g_keys;         /* under g_script_mu */
static atomic_int g_keys_used; /* number of keys in g_keys */

/* ---- counting maps ----------------------------------------------------------------------- */

static uint32_t hash_bytes(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

static count_t *map_slot(countmap_t *m, const char *p, size_t n, uint32_t h)
{
    uint32_t i = h & (m->cap - 1);
    for (;;) {
        count_t *s = &m->slots[i];
        if (s->name == NULL || (s->hash == h && s->len == n && memcmp(s->name, p, n) == 0))
            return s;
        i = (i + 1) & (m->cap - 1);
    }
}

static void map_add(countmap_t *m, const char *p, size_t n, uint64_t k)
{
    if (m->cap == 0) {
        m->cap = 64;
        m->slots = calloc(m->cap, sizeof *m->slots);
        if (m->slots == NULL)
            mock_xrealloc(NULL, SIZE_MAX); /* reports and aborts */
    }
    uint32_t h = hash_bytes(p, n);
    count_t *s = map_slot(m, p, n, h);
    if (s->name) {
        s->n += k;
        return;
    }
    if (m->used >= MAP_MAX && !(n == sizeof OTHER - 1 && memcmp(p, OTHER, n) == 0)) {
        map_add(m, LIT(OTHER), k);
        return;
    }
    if ((m->used + 1) * 2 > m->cap) {
        countmap_t big = {calloc((size_t)m->cap * 2, sizeof(count_t)), m->cap * 2, m->used};
        if (big.slots == NULL)
            mock_xrealloc(NULL, SIZE_MAX);
        for (uint32_t i = 0; i < m->cap; i++)
            if (m->slots[i].name)
                *map_slot(&big, m->slots[i].name, m->slots[i].len, m->slots[i].hash) = m->slots[i];
        free(m->slots);
        *m = big;
        s = map_slot(m, p, n, h);
    }
    s->name = mock_xrealloc(NULL, n + 1);
    memcpy(s->name, p, n);
    s->name[n] = '\0';
    s->len = n;
    s->hash = h;
    s->n = k;
    m->used++;
}

static void map_clear(countmap_t *m)
{
    for (uint32_t i = 0; i < m->cap; i++)
        free(m->slots[i].name);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static void map_json(mock_buf_t *b, const countmap_t *m)
{
    int first = 1;
    mock_buf_append(b, LIT("{"));
    for (uint32_t i = 0; i < m->cap; i++) {
        const count_t *s = &m->slots[i];
        if (s->name == NULL)
            continue;
        mock_buf_append(b, first ? "\"" : ",\"", first ? 1 : 2);
        mock_buf_json_escape(b, s->name, s->len);
        mock_buf_printf(b, "\":%llu", (unsigned long long)s->n);
        first = 0;
    }
    mock_buf_append(b, LIT("}"));
}

/* ---- lifetime ------------------------------------------------------------------------- */

int mock_admin_init(int nthreads)
{
    g_threads = aligned_alloc(64, sizeof(tstate_t) * (size_t)nthreads);
    if (g_threads == NULL)
        return -1;
    memset(g_threads, 0, sizeof(tstate_t) * (size_t)nthreads);
    for (int i = 0; i < nthreads; i++)
        if (uv_mutex_init(&g_threads[i].mu) != 0)
            return -1;
    g_nthreads = nthreads;
    return uv_mutex_init(&g_script_mu) == 0 ? 0 : -1;
}

static void scripts_clear(void)
{
    while (g_keys) {
        keyq_t *k = g_keys;
        g_keys = k->next;
        while (k->head) {
            script_t *s = k->head;
            k->head = s->next;
            mock_buf_free(&s->headers);
            free(s);
        }
        free(k->key);
        free(k);
    }
    atomic_store(&g_keys_used, 0);
}

static void thread_clear(tstate_t *t)
{
    t->requests = 0;
    map_clear(&t->by_key);
    map_clear(&t->by_path);
    t->last_seq = 0;
}

void mock_admin_free(void)
{
    scripts_clear();
    for (int i = 0; i < g_nthreads; i++) {
        tstate_t *t = &g_threads[i];
        thread_clear(t);
        mock_buf_free(&t->last_arena);
        mock_buf_free(&t->last_body);
        free(t->last_hdrs);
        uv_mutex_destroy(&t->mu);
    }
    free(g_threads);
    g_threads = NULL;
    uv_mutex_destroy(&g_script_mu);
}

void mock_admin_conn_opened(void)
{
    atomic_fetch_add_explicit(&g_active, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_accepted, 1, memory_order_relaxed);
}

void mock_admin_bytes_sent(size_t n)
{
    atomic_fetch_add_explicit(&g_bytes_sent, (long long)n, memory_order_relaxed);
}

void mock_admin_conn_closed(void)
{
    atomic_fetch_sub_explicit(&g_active, 1, memory_order_relaxed);
}

/* ---- the request path ------------------------------------------------------------------ */

void mock_admin_record(int wid, const mock_req_t *r)
{
    tstate_t *t = &g_threads[wid];
    uint64_t seq = atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed) + 1;
    uv_mutex_lock(&t->mu);
    t->requests++;
    if (r->key)
        map_add(&t->by_key, r->key, r->key_len, 1);
    map_add(&t->by_path, r->path, r->path_len, 1);
    t->last_seq = seq;
    t->last_method = r->method;
    t->last_url_len = r->url_len;
    t->last_arena.len = 0;
    mock_buf_append(&t->last_arena, r->hbase, r->hbase_len);
    if (r->nhdrs > t->last_hdrs_cap) {
        t->last_hdrs_cap = r->nhdrs;
        t->last_hdrs = mock_xrealloc(t->last_hdrs, (size_t)r->nhdrs * sizeof *t->last_hdrs);
    }
    if (r->nhdrs > 0)
        memcpy(t->last_hdrs, r->hdrs, (size_t)r->nhdrs * sizeof *r->hdrs);
    t->last_nhdrs = r->nhdrs;
    t->last_body_cut = r->body_len > LAST_BODY_MAX;
    t->last_body.len = 0;
    mock_buf_append(&t->last_body, r->body, t->last_body_cut ? LAST_BODY_MAX : r->body_len);
    uv_mutex_unlock(&t->mu);
}

/* Is "name:" the start of a line of xh? */
static int has_header(const mock_buf_t *xh, const char *name, size_t n)
{
    const char *p = xh->p, *end = xh->p + xh->len;
    while (p && p < end) {
        if ((size_t)(end - p) > n && p[n] == ':' && strncasecmp(p, name, n) == 0)
            return 1;
        p = memchr(p, '\n', (size_t)(end - p));
        if (p)
            p++;
    }
    return 0;
}

int mock_admin_script_take(const char *key, size_t key_len, mock_fault_t *f, mock_buf_t *xheaders)
{
    if (atomic_load_explicit(&g_keys_used, memory_order_acquire) == 0)
        return 0;
    uv_mutex_lock(&g_script_mu);
    keyq_t **pk = &g_keys;
    while (*pk && !((*pk)->key_len == key_len && memcmp((*pk)->key, key, key_len) == 0))
        pk = &(*pk)->next;
    keyq_t *k = *pk;
    if (k == NULL) {
        uv_mutex_unlock(&g_script_mu);
        return 0;
    }
    script_t *s = k->head;
    mock_fault_overlay(f, &s->fault);
    /* The request's own x-mock-ratelimit-* headers win over the script's. */
    const char *p = s->headers.p, *end = s->headers.p + s->headers.len;
    while (p && p < end) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (colon == NULL || eol == NULL)
            break;
        if (!has_header(xheaders, p, (size_t)(colon - p)))
            mock_buf_append(xheaders, p, (size_t)(eol + 1 - p));
        p = eol + 1;
    }
    if (s->count > 0 && --s->count == 0) {
        k->head = s->next;
        mock_buf_free(&s->headers);
        free(s);
        if (k->head == NULL) {
            *pk = k->next;
            free(k->key);
            free(k);
            atomic_fetch_sub_explicit(&g_keys_used, 1, memory_order_release);
        }
    }
    uv_mutex_unlock(&g_script_mu);
    return 1;
}

/* ---- the admin API ---------------------------------------------------------------------- */

static void admin_script(mock_conn_t *c, mock_req_t *r, mock_buf_t *out)
{
    mock_script_spec_t spec;
    char err[200];
    memset(&spec, 0, sizeof spec);
    if (mock_json_parse_script(r->body, r->body_len, &spec, err, sizeof err) != 0) {
        mock_buf_free(&spec.key);
        mock_buf_free(&spec.headers);
        mock_api_error(c, 400, "invalid_request_error", NULL, err, MOCK_DONE_KEEP);
        return;
    }
    script_t *s = mock_xrealloc(NULL, sizeof *s);
    s->next = NULL;
    s->fault = spec.fault;
    s->count = spec.count;
    s->headers = spec.headers; /* handed over */
    mock_buf_append(out, LIT("{\"ok\":true,\"key\":\""));
    mock_buf_json_escape(out, spec.key.p, spec.key.len);
    int queued = 0;
    uv_mutex_lock(&g_script_mu);
    keyq_t *k = g_keys;
    while (k && !(k->key_len == spec.key.len && memcmp(k->key, spec.key.p, k->key_len) == 0))
        k = k->next;
    if (k == NULL) {
        k = mock_xrealloc(NULL, sizeof *k);
        k->key = spec.key.p; /* handed over */
        k->key_len = spec.key.len;
        spec.key.p = NULL;
        k->head = k->tail = NULL;
        k->next = g_keys;
        g_keys = k;
        atomic_fetch_add_explicit(&g_keys_used, 1, memory_order_release);
    }
    if (k->head)
        k->tail->next = s;
    else
        k->head = s;
    k->tail = s;
    for (script_t *q = k->head; q; q = q->next)
        queued++;
    uv_mutex_unlock(&g_script_mu);
    mock_buf_printf(out, "\",\"queued\":%d}", queued);
    mock_buf_free(&spec.key);
    mock_api_reply(c, 200, out->p, out->len);
}

static void admin_reset(mock_conn_t *c, mock_buf_t *out)
{
    uv_mutex_lock(&g_script_mu);
    scripts_clear();
    uv_mutex_unlock(&g_script_mu);
    for (int i = 0; i < g_nthreads; i++) {
        uv_mutex_lock(&g_threads[i].mu);
        thread_clear(&g_threads[i]);
        uv_mutex_unlock(&g_threads[i].mu);
    }
    atomic_store(&g_accepted, 0);
    atomic_store(&g_bytes_sent, 0);
    mock_store_clear();
    mock_buf_append(out, LIT("{\"ok\":true}"));
    mock_api_reply(c, 200, out->p, out->len);
}

static void admin_stats(mock_conn_t *c, mock_buf_t *out)
{
    countmap_t keys = {0}, paths = {0};
    uint64_t requests = 0;
    for (int i = 0; i < g_nthreads; i++) {
        tstate_t *t = &g_threads[i];
        uv_mutex_lock(&t->mu);
        requests += t->requests;
        for (uint32_t j = 0; j < t->by_key.cap; j++)
            if (t->by_key.slots[j].name)
                map_add(&keys, t->by_key.slots[j].name, t->by_key.slots[j].len,
                        t->by_key.slots[j].n);
        for (uint32_t j = 0; j < t->by_path.cap; j++)
            if (t->by_path.slots[j].name)
                map_add(&paths, t->by_path.slots[j].name, t->by_path.slots[j].len,
                        t->by_path.slots[j].n);
        uv_mutex_unlock(&t->mu);
    }
    mock_buf_printf(out, "{\"requests\":%llu,\"by_key\":", (unsigned long long)requests);
    map_json(out, &keys);
    mock_buf_append(out, LIT(",\"by_path\":"));
    map_json(out, &paths);
    mock_buf_printf(out,
                    ",\"active_connections\":%ld,\"connections_accepted\":%ld,\"bytes_sent\":%lld}",
                    (long)atomic_load(&g_active), (long)atomic_load(&g_accepted),
                    (long long)atomic_load(&g_bytes_sent));
    map_clear(&keys);
    map_clear(&paths);
    mock_api_reply(c, 200, out->p, out->len);
}

static void admin_last(mock_conn_t *c, mock_buf_t *out)
{
    int best = -1;
    uint64_t best_seq = 0;
    for (int i = 0; i < g_nthreads; i++) {
        uv_mutex_lock(&g_threads[i].mu);
        if (g_threads[i].last_seq > best_seq) {
            best_seq = g_threads[i].last_seq;
            best = i;
        }
        uv_mutex_unlock(&g_threads[i].mu);
    }
    if (best < 0) {
        mock_api_error(c, 404, "invalid_request_error", "no_request",
                       "no request recorded yet (since start or the last /_mock/reset)",
                       MOCK_DONE_KEEP);
        return;
    }
    tstate_t *t = &g_threads[best];
    uv_mutex_lock(&t->mu);
    const char *a = t->last_arena.p ? t->last_arena.p : "";
    mock_buf_printf(out, "{\"method\":\"%s\",\"path\":\"",
                    llhttp_method_name((llhttp_method_t)t->last_method));
    mock_buf_json_escape(out, a, t->last_url_len);
    mock_buf_append(out, LIT("\",\"headers\":["));
    for (int i = 0; i < t->last_nhdrs; i++) {
        const mock_hdr_t *h = &t->last_hdrs[i];
        mock_buf_append(out, i ? ",[\"" : "[\"", i ? 3 : 2);
        mock_buf_json_escape(out, a + h->name_off, h->name_len);
        mock_buf_append(out, LIT("\",\""));
        mock_buf_json_escape(out, a + h->val_off, h->val_len);
        mock_buf_append(out, LIT("\"]"));
    }
    mock_buf_append(out, LIT("],\"body\":\""));
    mock_buf_json_escape(out, t->last_body.p ? t->last_body.p : "", t->last_body.len);
    mock_buf_printf(out, "\",\"body_truncated\":%s}", t->last_body_cut ? "true" : "false");
    uv_mutex_unlock(&t->mu);
    mock_api_reply(c, 200, out->p, out->len);
}

void mock_admin_handle(mock_conn_t *c, mock_req_t *r)
{
    const char *p = r->path + 7;
    size_t n = r->path_len - 7;
    mock_buf_t *out = &c->w->scratch2; /* mock_api_error uses scratch */
    int want = HTTP_GET;
    void (*fn)(mock_conn_t *, mock_buf_t *) = NULL;
    out->len = 0;
    if (n == 6 && memcmp(p, "script", 6) == 0)
        want = HTTP_POST;
    else if (n == 5 && memcmp(p, "reset", 5) == 0) {
        want = HTTP_POST;
        fn = admin_reset;
    } else if (n == 5 && memcmp(p, "stats", 5) == 0)
        fn = admin_stats;
    else if (n == 4 && memcmp(p, "last", 4) == 0)
        fn = admin_last;
    else {
        mock_api_error(c, 404, "invalid_request_error", "unknown_url",
                       "unknown admin endpoint (use /_mock/script, /_mock/reset, /_mock/stats "
                       "or /_mock/last)",
                       MOCK_DONE_KEEP);
        return;
    }
    if (r->method != want) {
        mock_api_error(c, 405, "invalid_request_error", "method_not_allowed",
                       want == HTTP_POST ? "use POST" : "use GET", MOCK_DONE_KEEP);
        return;
    }
    if (fn)
        fn(c, out);
    else
        admin_script(c, r, out);
}
