/* responses_chat_test.c - Responses API clients on a chat-completions provider
 * (server/xlate/responses_chat*.c): golden files of the documented payloads, and the edges.
 *
 * golden/responses_chat/ holds, by name:
 *   req_*.in.json      a Responses body     -> req_*.out.json      the chat body
 *   refuse_*.in.json   a Responses body     -> refuse_*.out.json   {"param", "message" or
 *                                                                   "message_prefix"}
 *   resp_*.in.json     a chat.completion    -> resp_*.out.json     the response object
 *   resp_bad_*.in.json not a completion     -> XLATE_EBAD
 *   err_S_*.in         a status S error body -> err_S_*.out.json   the OpenAI error (status S,
 *                                                                   502 below 400)
 *   stream_*.in.sse    chat chunks          -> stream_*.out.sse    Responses events; stream_end
 *                      complete, except stream_cut_* (cut); stream_bad_* end in XLATE_EBAD
 *                      with the events before it
 * The answers echo the client's request: <case>.client.json when there is one, else a
 * default body. JSON is compared with json_equal, streams event by event (name and data), and
 * every stream is fed whole, in pieces of every size up to 64 and in pseudo-random pieces:
 * the bytes out must be the same. RC_GOLDEN_WRITE=1 writes the .out files that are missing
 * (to be read, checked against the documentation and committed).
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/xlate/responses_chat.h"
#include "server/xlate/sse.h"
#include "golden.h"
#include "t.h"

#ifndef GOLDEN_DIR
#error "GOLDEN_DIR: the folder of the golden files"
#endif

static const xlate_pair_t *P = &xlate_responses_chat;

static const char default_client[] =
    "{\"model\":\"gpt-4.1\",\"input\":\"Hello\",\"instructions\":\"Be brief.\"}";
static char *g_client; /* the case's client body, or NULL: default_client */
static size_t g_client_len;

static xlate_opts_t opts(int stream)
{
    xlate_opts_t o = {.model = "deepseek-chat",
                      .client_model = "gpt-4.1",
                      .stream = stream,
                      .created = 1745962718,
                      .request_id = "req_7f3a",
                      .client_body = g_client ? g_client : default_client,
                      .client_body_len = g_client ? g_client_len : sizeof(default_client) - 1};
    return o;
}

/* RC_GOLDEN_WRITE=1: the missing .out file of a case is written with what was got. */
static void maybe_write(const char *name, const char *in_sfx, const char *out_sfx, const char *got,
                        size_t len)
{
    char path[1024];
    size_t n = strlen(name) - strlen(in_sfx);
    const char *w = getenv("RC_GOLDEN_WRITE");
    FILE *f;

    if (!w || strcmp(w, "1") != 0)
        return;
    snprintf(path, sizeof(path), "%s/%.*s%s", GOLDEN_DIR, (int)n, name, out_sfx);
    if ((f = fopen(path, "rbx")) == NULL && (f = fopen(path, "wbx")) != NULL) {
        fwrite(got, 1, len, f);
        printf("#   wrote %s\n", path);
    }
    if (f)
        fclose(f);
}

/* The case's client body (<case>.client.json), for the answers' echo. */
static void load_client(const char *name, const char *in_sfx)
{
    size_t len = 0;
    free(g_client);
    g_client = golden_sibling(name, in_sfx, ".client.json", &len);
    g_client_len = len;
}

/* Runs a stream fed in pieces: step 0 = whole, step > 0 = pieces of that size, step < 0 =
 * pseudo-random pieces seeded by -step. The rc of the first failing call (or 0). */
static int run_stream(const char *in, size_t len, long step, int complete, buf_t *out)
{
    xlate_opts_t o = opts(1);

    return golden_run_pair(P, &o, in, len, step, complete, out);
}

static void stream_case(const char *name)
{
    size_t len = 0, wlen = 0;
    char *in = golden_slurp(name, &len), *want;
    int complete = !golden_starts_with(name, "stream_cut_"),
        bad = golden_starts_with(name, "stream_bad_");
    buf_t whole = {0};
    golden_evs_t g, w;
    char why[200] = "";
    int rc, differ = 0, i;

    load_client(name, ".in.sse");
    if (in) {
        buf_t tmp = {0};
        run_stream(in, len, 0, complete, &tmp);
        maybe_write(name, ".in.sse", ".out.sse", tmp.data ? tmp.data : "", tmp.len);
        buf_free(&tmp);
    }
    want = golden_sibling(name, ".in.sse", ".out.sse", &wlen);
    if (!in || !want) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    rc = run_stream(in, len, 0, complete, &whole);
    T_EQ_INT(rc, bad ? XLATE_EBAD : 0, "%s: result", name);
    T_OK(golden_well_formed(whole.data ? whole.data : "", whole.len, why, sizeof(why)),
         "%s: every event is event: NAME, data: JSON of type NAME %s", name, why);
    golden_parse_events(whole.data ? whole.data : "", whole.len, &g);
    golden_parse_events(want, wlen, &w);
    for (i = 0; i < g.n && i < w.n && !differ; i++) {
        json_t *d = json_loadb(g.v[i].data, g.v[i].len, 0, NULL);
        if (json_integer_value(json_object_get(d, "sequence_number")) != i) {
            printf("#   event %d: sequence_number %lld\n", i,
                   (long long)json_integer_value(json_object_get(d, "sequence_number")));
            differ = 1;
        }
        json_decref(d);
        if (strcmp(g.v[i].name, w.v[i].name) != 0 ||
            !golden_same_json(g.v[i].data, g.v[i].len, w.v[i].data, w.v[i].len)) {
            printf("#   event %d: got %s, want %s\n", i, g.v[i].name, w.v[i].name);
            differ = 1;
        }
    }
    T_OK(!differ && g.n == w.n && !g.overflow,
         "%s: the golden events, numbered from 0 (%d, want %d)", name, g.n, w.n);
    golden_free_events(&g);
    golden_free_events(&w);

    T_OK(golden_same_cuts(run_stream, in, len, complete, rc, &whole),
         "%s: the same events however the stream is cut", name);
exit:
    buf_free(&whole);
    free(in);
    free(want);
}

/* ---- documents ------------------------------------------------------------------------ */

static void request_case(const char *name)
{
    size_t len = 0, wlen = 0;
    char *in = golden_slurp(name, &len), *want;
    json_t *body = in ? json_loadb(in, len, 0, NULL) : NULL;
    xlate_opts_t o = opts(json_is_true(json_object_get(body, "stream")));
    xlate_error_t err;
    buf_t out = {0};
    int rc = -99;

    o.max_tokens_cap = 8192;
    if (in) {
        rc = P->request(in, len, &o, &out, &err);
        if (rc == 0)
            maybe_write(name, ".in.json", ".out.json", out.data, out.len);
    }
    want = golden_sibling(name, ".in.json", ".out.json", &wlen);
    if (!in || !want) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    T_EQ_INT(rc, 0, "%s: translated", name);
    if (rc != 0)
        printf("#   %s (param %s)\n", err.message, err.param);
    T_OK(rc == 0 && golden_same_json(out.data, out.len, want, wlen), "%s: the golden chat body",
         name);
exit:
    json_decref(body);
    buf_free(&out);
    free(in);
    free(want);
}

static void refuse_case(const char *name)
{
    size_t len = 0, wlen = 0;
    char *in = golden_slurp(name, &len), *want;
    json_t *w;
    const char *param, *msg, *prefix;
    xlate_opts_t o = opts(0);
    xlate_error_t err;
    buf_t out = {0};
    int rc = -99;

    if (in) {
        rc = P->request(in, len, &o, &out, &err);
        if (rc == XLATE_EREFUSE) {
            json_t *j = json_pack("{s:s,s:s}", "param", err.param, "message", err.message);
            char *d = json_dumps(j, JSON_INDENT(1));
            maybe_write(name, ".in.json", ".out.json", d, strlen(d));
            free(d);
            json_decref(j);
        }
    }
    want = golden_sibling(name, ".in.json", ".out.json", &wlen);
    w = want ? json_loadb(want, wlen, 0, NULL) : NULL;
    param = json_string_value(json_object_get(w, "param"));
    msg = json_string_value(json_object_get(w, "message"));
    prefix = json_string_value(json_object_get(w, "message_prefix"));
    if (!in || !param || (!msg && !prefix)) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    T_EQ_INT(rc, XLATE_EREFUSE, "%s: refused", name);
    T_EQ_INT(out.len, 0, "%s: nothing written", name);
    T_EQ_STR(err.param, param, "%s: the param", name);
    if (msg)
        T_EQ_STR(err.message, msg, "%s: the message", name);
    else
        T_OK(golden_starts_with(err.message, prefix), "%s: the message (%s)", name, err.message);
exit:
    json_decref(w);
    buf_free(&out);
    free(in);
    free(want);
}

static void response_case(const char *name)
{
    size_t len = 0, wlen = 0;
    char *in = golden_slurp(name, &len), *want = NULL;
    int bad = golden_starts_with(name, "resp_bad_");
    xlate_opts_t o;
    buf_t out = {0};
    int rc = -99;

    load_client(name, ".in.json");
    o = opts(0);
    if (in) {
        rc = P->response(in, len, &o, &out);
        if (rc == 0 && !bad)
            maybe_write(name, ".in.json", ".out.json", out.data, out.len);
    }
    if (!bad)
        want = golden_sibling(name, ".in.json", ".out.json", &wlen);
    if (!in || (!bad && !want)) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    T_EQ_INT(rc, bad ? XLATE_EBAD : 0, "%s: result", name);
    if (bad)
        T_EQ_INT(out.len, 0, "%s: nothing written", name);
    else
        T_OK(rc == 0 && golden_same_json(out.data, out.len, want, wlen), "%s: the golden response",
             name);
exit:
    buf_free(&out);
    free(in);
    free(want);
}

static void error_case(const char *name)
{
    size_t len = 0, wlen = 0;
    char *in = golden_slurp(name, &len), *want;
    int status = atoi(name + 4), status_out = 0, rc = -99;
    buf_t out = {0};

    if (in) {
        rc = P->error(status, in, len, &out, &status_out);
        if (rc == 0)
            maybe_write(name, ".in", ".out.json", out.data, out.len);
    }
    want = golden_sibling(name, ".in", ".out.json", &wlen);
    if (!in || !want || status < 100) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    T_EQ_INT(rc, 0, "%s: translated", name);
    T_EQ_INT(status_out, status < 400 ? 502 : status, "%s: the status", name);
    T_OK(rc == 0 && golden_same_json(out.data, out.len, want, wlen), "%s: the golden error", name);
exit:
    buf_free(&out);
    free(in);
    free(want);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int golden(void)
{
    DIR *d = opendir(GOLDEN_DIR);
    char *names[512];
    int n = 0, cases = 0;
    struct dirent *e;

    if (!d)
        return 0;
    while ((e = readdir(d)) && n < 512)
        if (golden_ends_with(e->d_name, ".in.json") || golden_ends_with(e->d_name, ".in.sse") ||
            (golden_starts_with(e->d_name, "err_") && golden_ends_with(e->d_name, ".in")))
            names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]), by_name);
    for (int i = 0; i < n; i++) {
        const char *s = names[i];
        cases++;
        free(g_client);
        g_client = NULL;
        if (golden_starts_with(s, "req_"))
            request_case(s);
        else if (golden_starts_with(s, "refuse_"))
            refuse_case(s);
        else if (golden_starts_with(s, "resp_"))
            response_case(s);
        else if (golden_starts_with(s, "err_"))
            error_case(s);
        else if (golden_starts_with(s, "stream_"))
            stream_case(s);
        else {
            T_OK(0, "%s: a golden file of no known kind", s);
            cases--;
        }
        free(names[i]);
    }
    free(g_client);
    g_client = NULL;
    return cases;
}

/* ---- edges ---------------------------------------------------------------------------- */

static void pair(void)
{
    T_OK(P->client == API_RESPONSES && P->provider == CFG_API_OPENAI_CHAT && !P->providers,
         "the pair: responses on openai-chat");
    T_EQ_STR(P->client_path, "/v1/responses", "the pair: the client's path");
    T_EQ_STR(P->upstream_path, "/chat/completions", "the pair: its upstream path");
    T_OK(P->upstream == &api_chat, "the pair: usage read by the chat adapter");
    T_OK(P->request && P->response && P->error && P->stream_init && P->stream_feed &&
             P->stream_end && P->stream_free && P->stream_size > sizeof(sse_reader_t) &&
             !P->count_tokens,
         "the pair: every function");
}

/* n tool calls in one stream, each one chunk. */
static int tools_stream(int n, buf_t *out)
{
    buf_t in = {0};
    int rc;

    for (int i = 0; i < n; i++)
        buf_printf(&in,
                   "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{"
                   "\"index\":%d,\"id\":\"call_%d\",\"type\":\"function\",\"function\":{\"name\":"
                   "\"f\",\"arguments\":\"{}\"}}]}}]}\n\n",
                   i, i);
    buf_appends(&in, "data: [DONE]\n\n");
    rc = run_stream(in.data, in.len, 0, 1, out);
    buf_free(&in);
    return rc;
}

static const char *last_name(const golden_evs_t *e, int back)
{
    return e->n > back ? e->v[e->n - 1 - back].name : "";
}

static void stream_edges(void)
{
    buf_t out = {0};
    golden_evs_t e;
    int rc;

    rc = tools_stream(XLATE_RC_ITEMS_MAX, &out);
    golden_parse_events(out.data, out.len, &e);
    T_OK(rc == 0 && e.n == 2 + XLATE_RC_ITEMS_MAX * 4 + 1,
         "%d tool calls in a stream: translated (%d events)", XLATE_RC_ITEMS_MAX, e.n);
    T_EQ_STR(last_name(&e, 0), "response.completed", "  ... then response.completed");
    golden_free_events(&e);
    buf_reset(&out);
    rc = tools_stream(XLATE_RC_ITEMS_MAX + 1, &out);
    T_EQ_INT(rc, XLATE_EBAD, "one more: XLATE_EBAD (the state is bounded)");
    buf_reset(&out);

    {
        void *st = malloc(P->stream_size);
        xlate_opts_t o = opts(1);
        static const char bad[] = "data: not json\n\n";
        P->stream_init(st, &o);
        rc = P->stream_feed(st, bad, sizeof(bad) - 1, &out);
        T_EQ_INT(rc, XLATE_EBAD, "a data line that is not JSON: XLATE_EBAD");
        rc = P->stream_feed(st, "data: [DONE]\n\n", 14, &out);
        T_EQ_INT(rc, XLATE_EBAD, "  ... and every feed after it");
        T_EQ_INT(out.len, 0, "  ... nothing written");
        T_EQ_INT(P->stream_end(st, 1, &out), XLATE_EBAD, "  ... a complete end too");
        T_EQ_INT(P->stream_end(st, 0, &out), 0, "  ... but the cut the proxy makes then ...");
        golden_parse_events(out.data, out.len, &e);
        T_OK(e.n == 4 && strcmp(last_name(&e, 1), "response.failed") == 0 &&
                 strcmp(last_name(&e, 0), "error") == 0,
             "  ... tells the client: created, in_progress, response.failed, error (%d)", e.n);
        golden_free_events(&e);
        P->stream_free(st);
        free(st);
    }
    {
        /* text past XLATE_RC_KEEP_MAX: the stream fails, cleanly, and ignores the rest */
        void *st = malloc(P->stream_size);
        xlate_opts_t o = opts(1);
        buf_t in = {0}, big = {0};
        for (size_t i = 0; i < 1024; i++)
            buf_appends(&big, "abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01");
        buf_appends(&in, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
        buf_append(&in, big.data, big.len);
        buf_appends(&in, "\"}}]}\n\n");
        P->stream_init(st, &o);
        buf_reset(&out);
        rc = 0;
        for (int i = 0; rc == 0 && i < 70; i++)
            rc = P->stream_feed(st, in.data, in.len, &out);
        T_EQ_INT(rc, 0, "4 MiB of text and more: no error ...");
        rc = P->stream_end(st, 1, &out);
        T_OK(rc == 0 && out.len > 0 && strstr(out.data, "\"type\":\"error\"") &&
                 strstr(out.data, "4 MiB") && !strstr(out.data, "response.completed"),
             "  ... but response.failed and an error event that says why");
        P->stream_free(st);
        free(st);
        buf_free(&in);
        buf_free(&big);
    }
    {
        void *st = malloc(P->stream_size);
        xlate_opts_t o = opts(1);
        char longm[400];
        memset(longm, 'm', sizeof(longm) - 1);
        longm[sizeof(longm) - 1] = '\0';
        o.client_model = longm;
        P->stream_init(st, &o);
        buf_reset(&out);
        rc = P->stream_end(st, 1, &out);
        T_OK(rc == 0 && strstr(out.data, "\"model\":\"mmmm") && strstr(out.data, "response.failed"),
             "a complete stream with nothing in it: a failure (no [DONE], no finish_reason), a "
             "long model name cut");
        P->stream_free(st);
        free(st);
    }
    buf_free(&out);
}

static void request_edges(void)
{
    static const char body[] = "{\"model\":\"gpt-x\",\"input\":\"hi\",\"stream\":true}";
    xlate_opts_t o = opts(0);
    xlate_error_t err;
    buf_t out = {0};
    json_t *j;
    int rc;

    o.model = NULL;
    rc = P->request(body, sizeof(body) - 1, &o, &out, &err);
    j = json_loadb(out.data, out.len, 0, NULL);
    T_OK(rc == 0 && strcmp(json_string_value(json_object_get(j, "model")), "gpt-x") == 0,
         "no deployment model: the client's is sent");
    T_OK(json_object_get(j, "stream") == NULL,
         "stream follows xlate_opts_t.stream (the proxy's scan), not a second reading");
    json_decref(j);

    /* ids made of a request id with characters no path id may hold */
    char id[64];
    xlate_rc_made_id(id, sizeof(id), "resp_", "a/b c\"d", -1);
    T_EQ_STR(id, "resp_a_b_c_d", "made-up ids keep only id characters");
    xlate_rc_made_id(id, sizeof(id), "fc_", "", 3);
    T_EQ_STR(id, "fc_llmgate_3", "  ... and have one without a request id");

    /* a long error body that is not JSON: cut, valid JSON */
    buf_reset(&out);
    char raw[5000];
    int st = 0;
    memset(raw, '\x80', sizeof(raw));
    rc = P->error(529, raw, sizeof(raw), &out, &st);
    j = json_loadb(out.data, out.len, 0, NULL);
    T_OK(rc == 0 && st == 529 && j &&
             json_string_length(json_object_get(json_object_get(j, "error"), "message")) < 4000,
         "a long error body of invalid bytes: a cut message in valid JSON, 529 kept");
    json_decref(j);
    buf_free(&out);
}

int main(void)
{
    int cases;

    golden_dir = GOLDEN_DIR;

    pair();
    cases = golden();
    T_OK(cases >= 30, "golden cases found in %s (%d)", GOLDEN_DIR, cases);
    stream_edges();
    request_edges();
    return t_done();
}
