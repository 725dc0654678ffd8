/* chat_gemini_test.c - OpenAI chat clients on a Gemini provider (xlate/chat_gemini): golden
 * files (golden/chat_gemini/, from the documented payloads of both APIs) for the request, the
 * answer, the stream and the errors, compared as JSON (json_equal) and streams event by
 * event; the same stream output whatever the cut; refusals with their param and message; the
 * provider path; the provider's bytes that are not its format; Gemini's usage reader
 * (api/gemini.c) on answers and streams.
 *
 * GOLDEN_DIR (set by meson) is the folder of the golden files; GOLDEN_UPDATE=1 writes the
 * .out files from what the translations give (to be read over before they are kept). The
 * pair is used as chat_gemini.h exports it (xlate.c's table is not linked).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/xlate/chat_gemini.h"
#include "server/xlate/sse.h"
#include "t.h"

#define LOAD (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static const char *g_dir;
static const xlate_pair_t *g_pair;

static const xlate_opts_t g_opts = {
    .model = "gemini-2.5-flash",
    .client_model = "gemini-flash",
    .default_max_tokens = 0,
    .created = 1700000000,
    .request_id = "req-test-1",
};

/* The bytes of GOLDEN_DIR/rel, NUL-terminated (NULL if it cannot be read). */
static char *slurp(const char *rel, size_t *len)
{
    char path[1024];
    FILE *f;
    char *p = NULL;
    long n;

    snprintf(path, sizeof(path), "%s/%s", g_dir, rel);
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

static json_t *load(const char *rel)
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
static int same_json(const char *got, size_t n, const json_t *want)
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
static void update(const char *rel, const char *data, size_t n, int json)
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

/* ---- requests ----------------------------------------------------------------------- */

typedef struct req_case_s {
    const char *name;
    int stream;
    uint32_t cap;
} req_case_t;

static void test_requests(void)
{
    static const req_case_t cases[] = {
        {"basic", 0, 0},  {"images", 0, 0},       {"tools", 0, 0},
        {"params", 1, 0}, {"params_cap", 1, 100}, {"tool_choice_none", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const req_case_t *c = &cases[i];
        xlate_opts_t o = g_opts;
        xlate_error_t err;
        buf_t out = {0};
        char rel[256];
        size_t n;
        char *in;
        json_t *want;
        int rc;

        o.stream = c->stream;
        o.max_tokens_cap = c->cap;
        snprintf(rel, sizeof(rel), "request/%s.in.json",
                 strcmp(c->name, "params_cap") == 0 ? "params" : c->name);
        in = slurp(rel, &n);
        rc = in ? g_pair->request(in, n, &o, &out, &err) : -100;
        snprintf(rel, sizeof(rel), "request/%s.out.json", c->name);
        if (rc == 0)
            update(rel, out.data, out.len, 1);
        want = load(rel);
        T_EQ_INT(rc, 0, "request %s: translated", c->name);
        if (rc)
            printf("#   refused: %s (param %s)\n", err.message, err.param);
        T_OK(rc == 0 && same_json(out.data, out.len, want), "request %s: as the golden file",
             c->name);
        free(in);
        json_decref(want);
        buf_free(&out);
    }
    { /* no max tokens given: none sent, unless the deployment caps them */
        buf_t out = {0};
        xlate_error_t err;
        xlate_opts_t o = g_opts;
        static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        T_OK(g_pair->request(body, sizeof(body) - 1, &o, &out, &err) == 0 && out.data &&
                 !strstr(out.data, "maxOutputTokens") && !strstr(out.data, "generationConfig"),
             "request: no max tokens, no cap: no generationConfig");
        buf_reset(&out);
        o.max_tokens_cap = 512;
        T_OK(g_pair->request(body, sizeof(body) - 1, &o, &out, &err) == 0 && out.data &&
                 strstr(out.data, "\"maxOutputTokens\":512"),
             "request: no max tokens, a cap of 512: maxOutputTokens 512");
        buf_reset(&out);
        buf_appends(&out, "HEAD");
        T_OK(g_pair->request(body, sizeof(body) - 1, &o, &out, &err) == 0 &&
                 strncmp(out.data, "HEAD{", 5) == 0,
             "request: appended to out");
        buf_free(&out);
    }
}

static void test_paths(void)
{
    xlate_opts_t o = g_opts;
    char p[128];

    T_OK(g_pair->upstream_path_of(&o, p, sizeof(p)) == 0 &&
             strcmp(p, "/models/gemini-2.5-flash:generateContent") == 0,
         "path: /models/{model}:generateContent");
    o.stream = 1;
    T_OK(g_pair->upstream_path_of(&o, p, sizeof(p)) == 0 &&
             strcmp(p, "/models/gemini-2.5-flash:streamGenerateContent?alt=sse") == 0,
         "path: streamed, :streamGenerateContent?alt=sse");
    o.model = "models/tuned x/?#";
    T_OK(g_pair->upstream_path_of(&o, p, sizeof(p)) == 0 &&
             strcmp(p, "/models/tuned%20x%2F%3F%23:streamGenerateContent?alt=sse") == 0,
         "path: a leading models/ taken off, other bytes percent-encoded (%s)", p);
    o.model = "gemini-2.5-flash";
    T_OK(g_pair->upstream_path_of(&o, p, 40) == -1, "path: -1 when it does not fit");
}

static void test_refusals(void)
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
        rc = g_pair->request(body, strlen(body), &g_opts, &out, &err);
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

/* ---- responses and errors ----------------------------------------------------------- */

static void test_responses(void)
{
    static const char *const cases[] = {"text", "function_call", "max_tokens", "safety", "blocked"};
    static const char *const bad[] = {
        "",
        "not json",
        "{\"candidates\":[]",
        "[1,2]",
        "{\"error\":{\"code\":500,\"message\":\"x\"}}",
        "{\"candidates\":{}}",
        "{\"candidates\":[7]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":7}]}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":{}}}]}",
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"args\":{}}}]}}]}",
        "{\"candidates\":[],\"candidates\":[]}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_t out = {0};
        char rel[256];
        size_t n;
        char *in;
        json_t *want;
        int rc;

        snprintf(rel, sizeof(rel), "response/%s.in.json", cases[i]);
        in = slurp(rel, &n);
        rc = in ? g_pair->response(in, n, &g_opts, &out) : -100;
        snprintf(rel, sizeof(rel), "response/%s.out.json", cases[i]);
        if (rc == 0)
            update(rel, out.data, out.len, 1);
        want = load(rel);
        T_EQ_INT(rc, 0, "response %s: translated", cases[i]);
        T_OK(rc == 0 && same_json(out.data, out.len, want), "response %s: as the golden file",
             cases[i]);
        free(in);
        json_decref(want);
        buf_free(&out);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_t out = {0};
        int rc = g_pair->response(bad[i], strlen(bad[i]), &g_opts, &out);
        T_OK(rc == XLATE_EBAD && out.len == 0,
             "response: not a GenerateContentResponse is XLATE_EBAD (%s)", bad[i]);
        buf_free(&out);
    }
}

static void test_errors(void)
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

/* ---- streams ------------------------------------------------------------------------ */

/* Feeds in[0..len) in pieces of step bytes (0: whole) and ends it; the first error. */
static int run_stream(const xlate_opts_t *o, const char *in, size_t len, size_t step, int complete,
                      buf_t *out)
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

static int collect_cb(void *ud, const char *event, const char *data, size_t len)
{
    (void)event;
    return json_array_append_new(ud, json_stringn(data, len));
}

/* The data of the events of s (an expected stream: any SSE). */
static json_t *events_of(const char *s, size_t n)
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
static json_t *strict_events(const char *s, size_t n)
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

static int streq_done(const json_t *s)
{
    return json_is_string(s) && strcmp(json_string_value(s), "[DONE]") == 0;
}

/* got and want, event by event: JSON equal, or both [DONE]. */
static int same_events(const char *got, size_t n, const char *want, size_t wn)
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
    int include_usage;
    int rc; /* of the feeds and the end */
} stream_case_t;

static void test_streams(void)
{
    static const stream_case_t cases[] = {
        {"text", 0, 0},  {"text_usage", 1, 0}, {"tools", 1, 0},
        {"error", 1, 0}, {"max_tokens", 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const stream_case_t *c = &cases[i];
        xlate_opts_t o = g_opts;
        buf_t out = {0};
        char rel[256];
        size_t n, wn;
        char *in, *want;
        int rc, bad = 0;

        o.stream = 1;
        o.include_usage = c->include_usage;
        snprintf(rel, sizeof(rel), "stream/%s.in.sse",
                 strcmp(c->name, "text_usage") == 0 ? "text" : c->name);
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
            continue;
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
}

static void test_stream_edges(void)
{
    xlate_opts_t o = g_opts;
    buf_t out = {0};
    int rc;

    o.stream = 1;
    { /* a data line that is not JSON: XLATE_EBAD; the chunks before it stay */
        static const char s[] =
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n"
            "data: {not json}\n\n"
            "data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n";
        rc = run_stream(&o, s, sizeof(s) - 1, 0, 1, &out);
        T_EQ_INT(rc, XLATE_EBAD, "stream: a data line that is not JSON is XLATE_EBAD");
        T_OK(out.data && strstr(out.data, "\"content\":\"a\"") && !strstr(out.data, "[DONE]"),
             "  ... after the chunks of the events before it");
        buf_reset(&out);
    }
    {
        static const char *const bad[] = {
            "data: [1]\n\n",
            "data:\n\n",
            "data: {\"candidates\":{}}\n\n",
            "data: {\"candidates\":[1]}\n\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":{}}}]}\n\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":1}]}}]}\n\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{}}]}}]}\n\n",
            "data: {\"a\":1,\"a\":1}\n\n",
        };
        int all = 1;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            rc = run_stream(&o, bad[i], strlen(bad[i]), 0, 1, &out);
            if (rc != XLATE_EBAD) {
                printf("#   %s: %d\n", bad[i], rc);
                all = 0;
            }
            buf_reset(&out);
        }
        T_OK(all, "stream: events that are not Gemini's are XLATE_EBAD");
    }
    { /* cut (complete 0): no [DONE]; ended without a finishReason: none either */
        static const char s[] =
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},"
            "\"finishReason\":\"STOP\"}]}";
        static const char nofin[] =
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n";
        rc = run_stream(&o, s, sizeof(s) - 1, 0, 0, &out);
        T_OK(rc == 0 && out.len == 0, "stream: cut (complete 0): not even a pending event");
        buf_reset(&out);
        rc = run_stream(&o, s, sizeof(s) - 1, 0, 1, &out);
        T_OK(rc == 0 && out.data && strstr(out.data, "\"finish_reason\":\"stop\"") &&
                 strstr(out.data, "data: [DONE]\n\n"),
             "stream: ended (complete 1): the last event without its blank line counts");
        buf_reset(&out);
        rc = run_stream(&o, nofin, sizeof(nofin) - 1, 0, 1, &out);
        T_OK(rc == 0 && out.data && !strstr(out.data, "[DONE]"),
             "stream: ended without a finishReason: no [DONE] (the client sees the cut)");
        buf_reset(&out);
    }
    { /* a prompt blocked: content_filter */
        static const char s[] = "data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},"
                                "\"usageMetadata\":{\"promptTokenCount\":3}}\n\n";
        rc = run_stream(&o, s, sizeof(s) - 1, 0, 1, &out);
        T_OK(rc == 0 && out.data && strstr(out.data, "\"finish_reason\":\"content_filter\"") &&
                 strstr(out.data, "[DONE]") && strstr(out.data, "chatcmpl-req-test-1"),
             "stream: a blocked prompt ends with content_filter (ids of the request id)");
        buf_reset(&out);
    }
    { /* an event past SSE_EVENT_MAX */
        size_t n = SSE_EVENT_MAX + 64;
        char *big = malloc(n);
        memcpy(big, "data: ", 6);
        memset(big + 6, 'x', n - 6);
        rc = run_stream(&o, big, n, 65536, 1, &out);
        T_EQ_INT(rc, XLATE_EBAD, "stream: an event past SSE_EVENT_MAX is XLATE_EBAD");
        free(big);
        buf_reset(&out);
    }
    buf_free(&out);
}

/* ---- usage (api/gemini.c) ----------------------------------------------------------- */

static int usage_of(const char *body, size_t len, size_t step, int stream, usage_t *u)
{
    static usage_tail_t t;

    usage_tail_reset(&t);
    for (size_t off = 0, n; off < len; off += n) {
        n = step && len - off > step ? step : len - off;
        usage_tail_feed(&t, body + off, n);
    }
    return api_gemini.usage(&t, stream, u);
}

static void test_usage(void)
{
    usage_t u;
    size_t n;
    char *s = slurp("response/text.in.json", &n);
    int bad = 0;

    T_OK(s && usage_of(s, n, 0, 0, &u) == 1 && u.input == 12 && u.output == 24 && u.cached == 8 &&
             u.reasoning == 20 && !u.partial,
         "usage: an answer: input 12, output 4 + 20 thoughts, 8 cached");
    free(s);
    s = slurp("stream/text.in.sse", &n);
    for (size_t step = 0; s && step < 50; step++) {
        bad += usage_of(s, n, step, 1, &u) != 1 || u.input != 6 || u.output != 9 ||
               u.reasoning != 5 || u.partial;
    }
    T_OK(s && bad == 0, "usage: a stream: the last chunk's counts, whatever the cuts");
    if (s) {
        const char *last = strstr(s, "\"finishReason\"");
        T_OK(usage_of(s, (size_t)(last - s), 0, 1, &u) == 1 && u.output == 2 && u.partial,
             "usage: a stream cut before its finishReason: the counts so far, partial");
    }
    free(s);
    {
        static const char tool[] = "{\"usageMetadata\":{\"promptTokenCount\":10,"
                                   "\"toolUsePromptTokenCount\":5,\"candidatesTokenCount\":1,"
                                   "\"promptTokensDetails\":[{\"modality\":\"TEXT\","
                                   "\"tokenCount\":10}]},\"x\":{\"usageMetadata\":7}}";
        static const char none[] = "{\"candidates\":[],\"usage\":{\"prompt_tokens\":3}}";
        T_OK(usage_of(tool, sizeof(tool) - 1, 0, 0, &u) == 1 && u.input == 15 && u.output == 1,
             "usage: tool-use prompt tokens are input; a later non-object usageMetadata is "
             "not it");
        T_OK(usage_of(none, sizeof(none) - 1, 0, 0, &u) == 0,
             "usage: no usageMetadata (OpenAI's usage does not count)");
    }
}

int main(void)
{
    g_dir = getenv("GOLDEN_DIR");
    if (!g_dir) {
        printf("Bail out! GOLDEN_DIR is not set\n");
        return 1;
    }
    /* the pair itself, not xlate_find: the table lists every module's pair, this test links
     * only this one */
    g_pair = &xlate_chat_gemini;
    T_OK(g_pair->client == API_CHAT && g_pair->provider == CFG_API_GEMINI &&
             g_pair->upstream_path_of && g_pair->upstream == &api_gemini,
         "the pair: chat on gemini, its path made per request, usage read by the Gemini adapter");
    T_OK(g_pair->request && g_pair->response && g_pair->error && g_pair->stream_size > 0 &&
             g_pair->stream_init && g_pair->stream_feed && g_pair->stream_end &&
             g_pair->stream_free,
         "the pair has every translation (stream state: %zu bytes)", g_pair->stream_size);
    test_paths();
    test_requests();
    test_refusals();
    test_responses();
    test_errors();
    test_streams();
    test_stream_edges();
    test_usage();
    return t_done();
}
