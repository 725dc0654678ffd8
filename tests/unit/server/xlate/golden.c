/* golden.c - what the translations' golden tests share; see golden.h. */
#include "golden.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/xlate/sse.h"

const char *golden_dir = ".";

char *golden_slurp(const char *name, size_t *len)
{
    char path[1024];
    FILE *f;
    char *p = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
    if (!(f = fopen(path, "rb")))
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (p = malloc((size_t)n + 1)) && fread(p, 1, (size_t)n, f) == (size_t)n) {
        p[n] = '\0';
        *len = (size_t)n;
    } else {
        free(p);
        p = NULL;
    }
    fclose(f);
    return p;
}

/* The file of a case with its suffix replaced: "x.in.json" -> "x.out.json". */
char *golden_sibling(const char *name, const char *in_sfx, const char *out_sfx, size_t *len)
{
    char other[512];
    size_t n = strlen(name) - strlen(in_sfx);

    snprintf(other, sizeof(other), "%.*s%s", (int)n, name, out_sfx);
    return golden_slurp(other, len);
}

int golden_ends_with(const char *s, const char *sfx)
{
    size_t n = strlen(s), k = strlen(sfx);
    return n >= k && strcmp(s + n - k, sfx) == 0;
}

int golden_starts_with(const char *s, const char *pfx)
{
    return strncmp(s, pfx, strlen(pfx)) == 0;
}

/* json_equal of got against the file's document; prints both when they differ. */
int golden_same_json(const char *got, size_t got_len, const char *want, size_t want_len)
{
    json_t *g = json_loadb(got, got_len, JSON_REJECT_DUPLICATES, NULL);
    json_t *w = json_loadb(want, want_len, JSON_REJECT_DUPLICATES, NULL);
    int eq = g && w && json_equal(g, w);

    if (!eq) {
        char *ws = w ? json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        char *gs = g ? json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        printf("#   got  %s\n#   want %s\n", gs ? gs : got,
               ws ? ws : "(the golden file is not JSON)");
        free(ws);
        free(gs);
    }
    json_decref(g);
    json_decref(w);
    return eq;
}

/* ---- streams: events parsed back, and the format every event must have ----------------- */

static int collect_cb(void *ud, const char *event, const char *data, size_t len)
{
    golden_evs_t *e = ud;
    if (e->n == GOLDEN_EVENTS_MAX) {
        e->overflow = 1;
        return 0;
    }
    snprintf(e->v[e->n].name, sizeof(e->v[e->n].name), "%s", event);
    e->v[e->n].data = malloc(len + 1);
    memcpy(e->v[e->n].data, data, len);
    e->v[e->n].data[len] = '\0';
    e->v[e->n++].len = len;
    return 0;
}

void golden_parse_events(const char *s, size_t len, golden_evs_t *e)
{
    sse_reader_t r;

    memset(e, 0, sizeof(*e));
    sse_reader_init(&r);
    sse_feed(&r, s, len, collect_cb, e);
    sse_finish(&r, collect_cb, e);
    sse_reader_free(&r);
}

void golden_free_events(golden_evs_t *e)
{
    for (int i = 0; i < e->n; i++)
        free(e->v[i].data);
}

/* Exactly "event: NAME\ndata: JSON\n\n" per event, the JSON's "type" being NAME. */
int golden_well_formed(const char *s, size_t len, char *why, size_t cap)
{
    const char *p = s, *end = s + len;

    while (p < end) {
        const char *nl, *name, *data;
        size_t nlen;
        json_t *j;
        int ok;

        if ((size_t)(end - p) < 7 || memcmp(p, "event: ", 7) != 0)
            return snprintf(why, cap, "no event line at byte %zu", (size_t)(p - s)), 0;
        name = p + 7;
        if (!(nl = memchr(name, '\n', (size_t)(end - name))))
            return snprintf(why, cap, "an event line without its end"), 0;
        nlen = (size_t)(nl - name);
        data = nl + 1;
        if ((size_t)(end - data) < 6 || memcmp(data, "data: ", 6) != 0)
            return snprintf(why, cap, "no data line after event %.*s", (int)nlen, name), 0;
        data += 6;
        if (!(nl = memchr(data, '\n', (size_t)(end - data))) || nl + 1 >= end || nl[1] != '\n')
            return snprintf(why, cap, "event %.*s: no blank line after its data", (int)nlen, name),
                   0;
        j = json_loadb(data, (size_t)(nl - data), JSON_REJECT_DUPLICATES, NULL);
        ok = json_is_object(j) && json_string_value(json_object_get(j, "type")) &&
             strlen(json_string_value(json_object_get(j, "type"))) == nlen &&
             memcmp(json_string_value(json_object_get(j, "type")), name, nlen) == 0;
        json_decref(j);
        if (!ok)
            return snprintf(why, cap, "event %.*s: its data is not JSON of that type", (int)nlen,
                            name),
                   0;
        p = nl + 2;
    }
    return 1;
}

int golden_same_cuts(golden_run_fn run, const char *in, size_t len, int complete, int rc,
                     const buf_t *whole)
{
    int differ = 0;

    for (long step = 1; step <= 64 + 40 && !differ; step++) {
        long how = step <= 64 ? step : -(step - 64);
        buf_t cut = {0};
        int rc2 = run(in, len, how, complete, &cut);
        differ = rc2 != rc || cut.len != whole->len ||
                 (cut.len && memcmp(cut.data, whole->data, cut.len) != 0);
        if (differ && how > 0)
            printf("#   pieces of %ld bytes differ\n", how);
        else if (differ)
            printf("#   pseudo-random pieces (seed %ld) differ\n", -how);
        buf_free(&cut);
    }
    return !differ;
}

int golden_run_pair(const xlate_pair_t *p, const xlate_opts_t *o, const char *in, size_t len,
                    long step, int complete, buf_t *out)
{
    void *st = malloc(p->stream_size);
    uint32_t seed = (uint32_t)-step;
    size_t off = 0;
    int rc = 0;

    if (!st)
        return XLATE_ENOMEM;
    p->stream_init(st, o);
    while (rc == 0 && off < len) {
        size_t n = len - off;
        if (step > 0 && n > (size_t)step)
            n = (size_t)step;
        if (step < 0) {
            seed = seed * 1103515245u + 12345u;
            size_t r = 1 + (seed >> 16) % 97;
            n = n < r ? n : r;
        }
        rc = p->stream_feed(st, in + off, n, out);
        off += n;
    }
    if (rc == 0)
        rc = p->stream_end(st, complete, out);
    p->stream_free(st);
    free(st);
    return rc;
}
