/* chat_golden.h - what the golden tests of the chat pairs (chat_anthropic_test.c,
 * chat_gemini_test.c) share: reading GOLDEN_DIR's files, comparing documents as JSON and
 * streams event by event, and the runners of the cases both pairs' folders hold (requests,
 * answers, streams fed whole and cut every way, refusals.json, errors.json).
 *
 * A test sets g_dir (GOLDEN_DIR, set by meson) and g_pair (the pair itself, not xlate_find:
 * the table lists every module's pair, a test links only one) before it runs them.
 * GOLDEN_UPDATE=1 writes the .out files from what the translations give (to be read over
 * before they are kept). Included by one file of each test program: the helpers are static.
 */
#ifndef LLMGATE_TEST_CHAT_GOLDEN_H
#define LLMGATE_TEST_CHAT_GOLDEN_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "server/xlate/sse.h"
#include "server/xlate/xlate.h"
#include "t.h"

#define LOAD (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

#define GOLDEN_FN static __attribute__((unused))

static const char *g_dir;
static const xlate_pair_t *g_pair;

/* The bytes of GOLDEN_DIR/rel, NUL-terminated (NULL if it cannot be read): golden.h's. */
GOLDEN_FN char *slurp(const char *rel, size_t *len)
{
    golden_dir = g_dir;
    return golden_slurp(rel, len);
}

GOLDEN_FN json_t *load(const char *rel)
{
    size_t n;
    char *s = slurp(rel, &n);
    json_t *j = s ? json_loadb(s, n, LOAD, NULL) : NULL;
    free(s);
    if (!j)
        printf("# cannot read %s/%s as JSON\n", g_dir, rel);
    return j;
}

/* Whether got[0..n) is JSON equal to want; shows both when not. */
GOLDEN_FN int same_json(const char *got, size_t n, const json_t *want)
{
    json_t *g = json_loadb(got, n, LOAD, NULL);
    int eq = g && want && json_equal(g, want);

    if (!eq) {
        char *w = want ? json_dumps(want, JSON_COMPACT) : NULL;
        printf("#   got  %.*s\n#   want %s\n", (int)n, got, w ? w : "(none)");
        free(w);
    }
    json_decref(g);
    return eq;
}

/* GOLDEN_UPDATE=1: GOLDEN_DIR/rel gets data[0..n) (JSON documents indented). */
GOLDEN_FN void update(const char *rel, const char *data, size_t n, int json)
{
    char path[1024];
    FILE *f;

    if (!getenv("GOLDEN_UPDATE") || !data)
        return;
    snprintf(path, sizeof(path), "%s/%s", g_dir, rel);
    if (!(f = fopen(path, "wb")))
        return;
    if (json) {
        json_t *j = json_loadb(data, n, LOAD, NULL);
        char *s = j ? json_dumps(j, JSON_INDENT(1) | JSON_ENSURE_ASCII) : NULL;
        if (s)
            fprintf(f, "%s\n", s);
        free(s);
        json_decref(j);
    } else {
        fwrite(data, 1, n, f);
    }
    fclose(f);
}

/* ---- runners ------------------------------------------------------------------------ */

/* request/<in>.in.json with o -> request/<name>.out.json (in NULL: name). */
GOLDEN_FN void golden_request(const char *name, const char *in_name, const xlate_opts_t *o)
{
    xlate_error_t err;
    buf_t out = {0};
    char rel[256];
    size_t n;
    char *in;
    json_t *want;
    int rc;

    snprintf(rel, sizeof(rel), "request/%s.in.json", in_name ? in_name : name);
    in = slurp(rel, &n);
    rc = in ? g_pair->request(in, n, o, &out, &err) : -100;
    snprintf(rel, sizeof(rel), "request/%s.out.json", name);
    if (rc == 0)
        update(rel, out.data, out.len, 1);
    want = load(rel);
    T_EQ_INT(rc, 0, "request %s: translated", name);
    if (rc)
        printf("#   refused: %s (param %s)\n", err.message, err.param);
    T_OK(rc == 0 && same_json(out.data, out.len, want), "request %s: as the golden file", name);
    free(in);
    json_decref(want);
    buf_free(&out);
}

/* response/<name>.in.json -> response/<name>.out.json */
GOLDEN_FN void golden_response(const char *name, const xlate_opts_t *o)
{
    buf_t out = {0};
    char rel[256];
    size_t n;
    char *in;
    json_t *want;
    int rc;

    snprintf(rel, sizeof(rel), "response/%s.in.json", name);
    in = slurp(rel, &n);
    rc = in ? g_pair->response(in, n, o, &out) : -100;
    snprintf(rel, sizeof(rel), "response/%s.out.json", name);
    if (rc == 0)
        update(rel, out.data, out.len, 1);
    want = load(rel);
    T_EQ_INT(rc, 0, "response %s: translated", name);
    T_OK(rc == 0 && same_json(out.data, out.len, want), "response %s: as the golden file", name);
    free(in);
    json_decref(want);
    buf_free(&out);
}

/* Each of bad[0..n) is XLATE_EBAD with nothing written ("response: not <what> ..."). */
GOLDEN_FN void golden_bad_responses(const char *const *bad, size_t nbad, const char *what,
                                    const xlate_opts_t *o)
{
    for (size_t i = 0; i < nbad; i++) {
        buf_t out = {0};
        int rc = g_pair->response(bad[i], strlen(bad[i]), o, &out);
        T_OK(rc == XLATE_EBAD && out.len == 0, "response: not %s is XLATE_EBAD (%s)", what, bad[i]);
        buf_free(&out);
    }
}

/* refusals.json: every case refused with its param and message, out left as it was. */
GOLDEN_FN void golden_refusals(const xlate_opts_t *o)
{
    json_t *list = load("refusals.json"), *c;
    size_t i;

    T_OK(json_array_size(list) > 0, "refusals.json has cases");
    json_array_foreach(list, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *raw = json_object_get(c, "raw");
        char *body = raw ? strdup(json_string_value(raw))
                         : json_dumps(json_object_get(c, "body"), JSON_COMPACT | JSON_ENCODE_ANY);
        xlate_error_t err;
        buf_t out = {0};
        int rc;

        buf_appends(&out, "kept");
        memset(&err, 'x', sizeof(err));
        rc = g_pair->request(body, strlen(body), o, &out, &err);
        T_EQ_INT(rc, XLATE_EREFUSE, "refused: %s", name);
        T_EQ_STR(err.param, json_string_value(json_object_get(c, "param")), "  ... param of %s",
                 name);
        T_EQ_STR(err.message, json_string_value(json_object_get(c, "message")),
                 "  ... message of %s", name);
        T_OK(out.len == 4 && strcmp(out.data, "kept") == 0, "  ... out left as it was (%s)", name);
        free(body);
        buf_free(&out);
    }
    json_decref(list);
}

/* errors.json: status and body of each; a long raw body cut to valid UTF-8. */
GOLDEN_FN void golden_errors(void)
{
    json_t *list = load("errors.json"), *c;
    size_t i;

    T_OK(json_array_size(list) > 0, "errors.json has cases");
    json_array_foreach(list, i, c)
    {
        const char *name = json_string_value(json_object_get(c, "name"));
        json_t *body = json_object_get(c, "body");
        buf_t out = {0};
        int status = 0;
        int rc = g_pair->error((int)json_integer_value(json_object_get(c, "status")),
                               json_string_value(body), json_string_length(body), &out, &status);
        T_EQ_INT(rc, 0, "error %s: translated", name);
        T_EQ_INT(status, json_integer_value(json_object_get(c, "status_out")), "  ... status of %s",
                 name);
        T_OK(same_json(out.data, out.len, json_object_get(c, "out")), "  ... body of %s", name);
        buf_free(&out);
    }
    json_decref(list);
    { /* a long body that is not JSON is cut, never inside a UTF-8 sequence */
        char big[2000];
        buf_t out = {0};
        int status;
        json_t *j;
        for (size_t k = 0; k < sizeof(big); k += 2)
            big[k] = (char)0xc3, big[k + 1] = (char)0xa9; /* e acute */
        big[7] = (char)0xff;                              /* and a byte that is not UTF-8 */
        T_EQ_INT(g_pair->error(500, big, sizeof(big), &out, &status), 0, "error: a long raw body");
        j = json_loadb(out.data, out.len, LOAD, NULL);
        const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        T_OK(m && strlen(m) < 600 && strstr(m, "\xef\xbf\xbd") && !strstr(m + 60, "\xef\xbf\xbd") &&
                 strcmp(m + strlen(m) - 5, "\xc3\xa9...") == 0,
             "  ... is cut to valid UTF-8 (U+FFFD for the bad bytes, whole characters, \"...\")");
        json_decref(j);
        buf_free(&out);
    }
}

/* Feeds in[0..len) in pieces of step bytes (0: whole) and ends it; the first error. */
GOLDEN_FN int run_stream(const xlate_opts_t *o, const char *in, size_t len, size_t step,
                         int complete, buf_t *out)
{
    void *st = malloc(g_pair->stream_size);
    int rc = 0;

    g_pair->stream_init(st, o);
    for (size_t off = 0, n; rc == 0 && off < len; off += n) {
        n = step && len - off > step ? step : len - off;
        rc = g_pair->stream_feed(st, in + off, n, out);
    }
    if (rc == 0)
        rc = g_pair->stream_end(st, complete, out);
    g_pair->stream_free(st);
    free(st);
    return rc;
}

GOLDEN_FN int collect_cb(void *ud, const char *event, const char *data, size_t len)
{
    (void)event;
    return json_array_append_new(ud, json_stringn(data, len));
}

/* The data of the events of s (an expected stream: any SSE). */
GOLDEN_FN json_t *events_of(const char *s, size_t n)
{
    sse_reader_t r;
    json_t *list = json_array();

    sse_reader_init(&r);
    if (sse_feed(&r, s, n, collect_cb, list) != 0 || sse_finish(&r, collect_cb, list) != 0) {
        json_decref(list);
        list = NULL;
    }
    sse_reader_free(&r);
    return list;
}

/* The data of the events of an output, which must be "data: X\n\n" events exactly. */
GOLDEN_FN json_t *strict_events(const char *s, size_t n)
{
    json_t *list = json_array();
    size_t off = 0;

    while (off < n) {
        const char *e = memmem(s + off, n - off, "\n\n", 2);
        if (!e || strncmp(s + off, "data: ", 6) != 0 ||
            memchr(s + off, '\n', (size_t)(e - s - off)))
            break;
        json_array_append_new(list, json_stringn(s + off + 6, (size_t)(e - s - off) - 6));
        off = (size_t)(e - s) + 2;
    }
    if (off != n) {
        printf("#   not an event at byte %zu: %.60s\n", off, s + off);
        json_decref(list);
        return NULL;
    }
    return list;
}

GOLDEN_FN int streq_done(const json_t *s)
{
    return json_is_string(s) && strcmp(json_string_value(s), "[DONE]") == 0;
}

/* got and want, event by event: JSON equal, or both [DONE]. */
GOLDEN_FN int same_events(const char *got, size_t n, const char *want, size_t wn)
{
    json_t *g = strict_events(got, n), *w = events_of(want, wn);
    int eq = g && w && json_array_size(g) == json_array_size(w);

    if (g && w && !eq)
        printf("#   %zu events, want %zu\n", json_array_size(g), json_array_size(w));
    for (size_t i = 0; eq && i < json_array_size(g); i++) {
        json_t *ge = json_array_get(g, i), *we = json_array_get(w, i), *wj;
        if (streq_done(ge) || streq_done(we)) {
            eq = streq_done(ge) && streq_done(we);
            if (!eq)
                printf("#   event %zu: got %s, want %s\n", i, json_string_value(ge),
                       json_string_value(we));
            continue;
        }
        wj = json_loadb(json_string_value(we), json_string_length(we), LOAD, NULL);
        if (!wj)
            printf("#   event %zu of the golden file is not JSON\n", i);
        eq = wj && same_json(json_string_value(ge), json_string_length(ge), wj);
        if (!eq)
            printf("#   (event %zu)\n", i);
        json_decref(wj);
    }
    json_decref(g);
    json_decref(w);
    return eq;
}

typedef struct stream_case_s {
    const char *name;
    const char *in; /* the input's name, NULL: name */
    int include_usage;
    int rc; /* of the feeds and the end */
} stream_case_t;

/* stream/<in>.in.sse -> stream/<name>.out.sse, fed whole, then cut at every step. */
GOLDEN_FN void golden_stream(const stream_case_t *c, const xlate_opts_t *base)
{
    xlate_opts_t o = *base;
    buf_t out = {0};
    char rel[256];
    size_t n, wn;
    char *in, *want;
    int rc, bad = 0;

    o.stream = 1;
    o.include_usage = c->include_usage;
    snprintf(rel, sizeof(rel), "stream/%s.in.sse", c->in ? c->in : c->name);
    in = slurp(rel, &n);
    if (in && getenv("GOLDEN_UPDATE")) {
        buf_t u = {0};
        run_stream(&o, in, n, 0, 1, &u);
        snprintf(rel, sizeof(rel), "stream/%s.out.sse", c->name);
        update(rel, u.data, u.len, 0);
        buf_free(&u);
    }
    snprintf(rel, sizeof(rel), "stream/%s.out.sse", c->name);
    want = slurp(rel, &wn);
    if (!in || !want) {
        T_OK(0, "stream %s: golden files", c->name);
        free(in);
        free(want);
        return;
    }
    rc = run_stream(&o, in, n, 0, 1, &out);
    T_EQ_INT(rc, c->rc, "stream %s: fed whole", c->name);
    T_OK(same_events(out.data ? out.data : "", out.len, want, wn),
         "stream %s: as the golden file, event by event", c->name);
    for (size_t step = 1; step <= n; step += step < 64 ? 1 : 37) {
        buf_t cut = {0};
        int crc = run_stream(&o, in, n, step, 1, &cut);
        bad += crc != rc || cut.len != out.len || memcmp(cut.data, out.data, out.len) != 0;
        buf_free(&cut);
    }
    T_EQ_INT(bad, 0, "stream %s: the same bytes out whatever the cut", c->name);
    free(in);
    free(want);
    buf_free(&out);
}

/* A stream s whose data line after a good event is not JSON: XLATE_EBAD, after the chunk of
 * the good event, whose content is "a". */
GOLDEN_FN void golden_stream_not_json(const char *s, const xlate_opts_t *o)
{
    buf_t out = {0};
    int rc = run_stream(o, s, strlen(s), 0, 1, &out);

    T_EQ_INT(rc, XLATE_EBAD, "stream: a data line that is not JSON is XLATE_EBAD");
    T_OK(out.data && strstr(out.data, "\"content\":\"a\"") && !strstr(out.data, "[DONE]"),
         "  ... after the chunks of the events before it");
    buf_free(&out);
}

/* Each stream of bad[0..n) is XLATE_EBAD: events that are not the provider's. */
GOLDEN_FN void golden_stream_bad(const char *const *bad, size_t nbad, const char *provider,
                                 const xlate_opts_t *o)
{
    buf_t out = {0};
    int all = 1;

    for (size_t i = 0; i < nbad; i++) {
        int rc = run_stream(o, bad[i], strlen(bad[i]), 0, 1, &out);
        if (rc != XLATE_EBAD) {
            printf("#   %s: %d\n", bad[i], rc);
            all = 0;
        }
        buf_reset(&out);
    }
    T_OK(all, "stream: events that are not %s's are XLATE_EBAD", provider);
    buf_free(&out);
}

/* The stream edges both pairs share: an event past SSE_EVENT_MAX is XLATE_EBAD. */
GOLDEN_FN void golden_stream_too_big(const xlate_opts_t *o)
{
    buf_t out = {0};
    size_t n = SSE_EVENT_MAX + 64;
    char *big = malloc(n);
    int rc;

    memcpy(big, "data: ", 6);
    memset(big + 6, 'x', n - 6);
    rc = run_stream(o, big, n, 65536, 1, &out);
    T_EQ_INT(rc, XLATE_EBAD, "stream: an event past SSE_EVENT_MAX is XLATE_EBAD");
    free(big);
    buf_free(&out);
}

#endif
