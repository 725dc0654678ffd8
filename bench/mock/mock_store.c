/* mock_store.c - the stored responses of the mock's Responses API.
 *
 * OpenAI keeps every response created with "store": true (the default) so that it can be
 * retrieved, deleted, cancelled, listed for its input items and named as the
 * previous_response_id of a later request; and it shows a response only to the
 * organisation that created it. The mock does the same per upstream key, which is what a
 * gateway spreading one conversation over several keys has to get right.
 *
 * One table for all worker threads behind one mutex: a ring of MOCK_STORE_MAX slots filled
 * in creation order (so the slot after the newest holds the oldest, which goes first when
 * the table or its byte budget is full) and a chained hash over the ids. Each slot owns one
 * allocation holding the key, the strings of the response and its input items. Visitors
 * run under the lock, so they render what they need into their thread's own buffers and
 * return; nothing they are given outlives the call.
 */

#include "mock.h"

#include <stdlib.h>
#include <string.h>

#define NBUCKETS (MOCK_STORE_MAX * 2) /* power of two */

typedef struct slot_s {
    char *blob; /* NULL = free: key, model, prev, instr, items */
    size_t blob_len;
    size_t key_len;
    uint32_t hash;
    int next; /* bucket chain, -1 = end */
    mock_stored_t e;
} slot_t;

static uv_mutex_t g_mu;
static slot_t *g_slots; /* MOCK_STORE_MAX, under g_mu */
static int *g_buckets;  /* NBUCKETS, -1 = empty */
static int g_head;      /* the next slot to fill: the oldest when full */
static size_t g_bytes;  /* blob bytes held */

static uint32_t hash_id(const char *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

int mock_store_init(void)
{
    g_slots = calloc(MOCK_STORE_MAX, sizeof *g_slots);
    g_buckets = malloc(NBUCKETS * sizeof *g_buckets);
    if (g_slots == NULL || g_buckets == NULL)
        return -1;
    for (int i = 0; i < NBUCKETS; i++)
        g_buckets[i] = -1;
    return uv_mutex_init(&g_mu) == 0 ? 0 : -1;
}

/* Unlink slot i from its bucket and free it. Under g_mu. */
static void slot_drop(int i)
{
    slot_t *s = &g_slots[i];
    int *pp = &g_buckets[s->hash & (NBUCKETS - 1)];
    while (*pp != i)
        pp = &g_slots[*pp].next;
    *pp = s->next;
    g_bytes -= s->blob_len;
    free(s->blob);
    s->blob = NULL;
}

void mock_store_clear(void)
{
    uv_mutex_lock(&g_mu);
    for (int i = 0; i < MOCK_STORE_MAX; i++)
        if (g_slots[i].blob)
            slot_drop(i);
    g_head = 0;
    uv_mutex_unlock(&g_mu);
}

void mock_store_free(void)
{
    if (g_slots == NULL)
        return;
    mock_store_clear();
    free(g_slots);
    free(g_buckets);
    g_slots = NULL;
    g_buckets = NULL;
    uv_mutex_destroy(&g_mu);
}

/* Copy n bytes to *w, return where they now are (NULL stays NULL). */
static const char *put(char **w, const char *p, size_t n)
{
    if (p == NULL)
        return NULL;
    char *at = *w;
    memcpy(at, p, n);
    *w += n;
    return at;
}

void mock_store_put(const char *key, size_t key_len, const mock_rdesc_t *d, const char *items,
                    size_t items_len, int nitems)
{
    size_t prev_len = d->prev ? d->prev_len : 0, instr_len = d->instr ? d->instr_len : 0;
    size_t len = key_len + d->model_len + prev_len + instr_len + items_len;
    char *blob = mock_xrealloc(NULL, len), *w = blob;
    mock_stored_t e = {.d = *d, .items_len = items_len, .nitems = nitems};
    put(&w, key, key_len);
    e.d.model = put(&w, d->model, d->model_len);
    e.d.prev = put(&w, d->prev, prev_len);
    e.d.instr = put(&w, d->instr, instr_len);
    e.items = put(&w, items ? items : "", items_len);
    size_t id_len = strlen(d->id);
    uint32_t h = hash_id(d->id, id_len);

    uv_mutex_lock(&g_mu);
    /* Make room: the slot to fill, then the oldest others while over the byte budget. */
    if (g_slots[g_head].blob)
        slot_drop(g_head);
    for (int k = 1; k < MOCK_STORE_MAX && g_bytes + len > (size_t)MOCK_STORE_BYTES; k++) {
        int i = (g_head + k) % MOCK_STORE_MAX;
        if (g_slots[i].blob)
            slot_drop(i);
    }
    slot_t *s = &g_slots[g_head];
    s->blob = blob;
    s->blob_len = len;
    s->key_len = key_len;
    s->hash = h;
    s->e = e;
    s->next = g_buckets[h & (NBUCKETS - 1)];
    g_buckets[h & (NBUCKETS - 1)] = g_head;
    g_bytes += len;
    g_head = (g_head + 1) % MOCK_STORE_MAX;
    uv_mutex_unlock(&g_mu);
}

int mock_store_visit(const char *key, size_t key_len, const char *id, size_t id_len,
                     mock_store_fn fn, void *arg)
{
    uint32_t h = hash_id(id, id_len);
    int r = -1;
    uv_mutex_lock(&g_mu);
    for (int i = g_buckets[h & (NBUCKETS - 1)]; i >= 0; i = g_slots[i].next) {
        slot_t *s = &g_slots[i];
        if (s->hash != h || strlen(s->e.d.id) != id_len || memcmp(s->e.d.id, id, id_len) != 0)
            continue;
        /* Another key's response does not exist for this one. */
        if (s->key_len != key_len || memcmp(s->blob, key, key_len) != 0)
            break;
        r = fn ? fn(&s->e, arg) : MOCK_STORE_KEEP;
        if (r == MOCK_STORE_DROP)
            slot_drop(i);
        break;
    }
    uv_mutex_unlock(&g_mu);
    return r;
}
