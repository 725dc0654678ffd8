/* messages_openai_test.c - Anthropic Messages clients on an OpenAI-compatible provider
 * (server/xlate/messages_openai*.c): golden files of the documented payloads, and the edges.
 *
 * golden/messages_openai/ holds, by name:
 *   req_*.in.json      a Messages body      -> req_*.out.json      the chat body
 *   refuse_*.in.json   a Messages body      -> refuse_*.out.json   {"param", "message" or
 *                                                                   "message_prefix"}
 *   resp_*.in.json     a chat.completion    -> resp_*.out.json     the message
 *   resp_bad_*.in.json not a completion     -> XLATE_EBAD
 *   err_S_*.in         a status S error body -> err_S_*.out.json   the Anthropic error (status S)
 *   stream_*.in.sse    chat chunks          -> stream_*.out.sse    Anthropic events; stream_end
 *                      complete, except stream_cut_* (cut); stream_bad_* end in XLATE_EBAD
 *                      with the events before it
 * JSON is compared with json_equal, streams event by event (name and data), and every stream
 * is fed whole, in pieces of every size up to 64 and in pseudo-random pieces: the bytes out
 * must be the same.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/xlate/messages_openai.h"
#include "server/xlate/sse.h"
#include "golden.h"
#include "t.h"

#ifndef GOLDEN_DIR
#error "GOLDEN_DIR: the folder of the golden files"
#endif

static const xlate_pair_t *P = &xlate_messages_openai;

static xlate_opts_t opts(int stream)
{
    xlate_opts_t o = {.model = "deepseek-chat",
                      .client_model = "claude-sonnet-4-5",
                      .stream = stream,
                      .created = 1745962718,
                      .request_id = "req_7f3a"};
    return o;
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
    char *in = golden_slurp(name, &len), *want = golden_sibling(name, ".in.sse", ".out.sse", &wlen);
    int complete = !golden_starts_with(name, "stream_cut_"),
        bad = golden_starts_with(name, "stream_bad_");
    buf_t whole = {0};
    golden_evs_t g, w;
    char why[200] = "";
    int rc, differ = 0, i;

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
        if (strcmp(g.v[i].name, w.v[i].name) != 0 ||
            !golden_same_json(g.v[i].data, g.v[i].len, w.v[i].data, w.v[i].len)) {
            printf("#   event %d: got %s, want %s\n", i, g.v[i].name, w.v[i].name);
            differ = 1;
        }
    }
    T_OK(!differ && g.n == w.n && !g.overflow, "%s: the golden events (%d, want %d)", name, g.n,
         w.n);
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
    char *in = golden_slurp(name, &len),
         *want = golden_sibling(name, ".in.json", ".out.json", &wlen);
    json_t *body = in ? json_loadb(in, len, 0, NULL) : NULL;
    xlate_opts_t o = opts(json_is_true(json_object_get(body, "stream")));
    xlate_error_t err;
    buf_t out = {0};
    int rc;

    if (!in || !want) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    rc = P->request(in, len, &o, &out, &err);
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
    char *in = golden_slurp(name, &len),
         *want = golden_sibling(name, ".in.json", ".out.json", &wlen);
    json_t *w = want ? json_loadb(want, wlen, 0, NULL) : NULL;
    const char *param = json_string_value(json_object_get(w, "param"));
    const char *msg = json_string_value(json_object_get(w, "message"));
    const char *prefix = json_string_value(json_object_get(w, "message_prefix"));
    xlate_opts_t o = opts(0);
    xlate_error_t err;
    buf_t out = {0};
    int rc;

    if (!in || !param || (!msg && !prefix)) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    rc = P->request(in, len, &o, &out, &err);
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
    xlate_opts_t o = opts(0);
    buf_t out = {0};
    int rc;

    if (!bad)
        want = golden_sibling(name, ".in.json", ".out.json", &wlen);
    if (!in || (!bad && !want)) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    rc = P->response(in, len, &o, &out);
    T_EQ_INT(rc, bad ? XLATE_EBAD : 0, "%s: result", name);
    if (bad)
        T_EQ_INT(out.len, 0, "%s: nothing written", name);
    else
        T_OK(rc == 0 && golden_same_json(out.data, out.len, want, wlen), "%s: the golden message",
             name);
exit:
    buf_free(&out);
    free(in);
    free(want);
}

static void error_case(const char *name)
{
    size_t len = 0, wlen = 0;
    char *in = golden_slurp(name, &len), *want = golden_sibling(name, ".in", ".out.json", &wlen);
    int status = atoi(name + 4), status_out = 0, rc;
    buf_t out = {0};

    if (!in || !want || status < 100) {
        T_OK(0, "%s: its files", name);
        goto exit;
    }
    rc = P->error(status, in, len, &out, &status_out);
    T_EQ_INT(rc, 0, "%s: translated", name);
    T_EQ_INT(status_out, status, "%s: the status is the provider's", name);
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
    return cases;
}

/* ---- edges ---------------------------------------------------------------------------- */

static void pair(void)
{
    T_OK(P->client == API_MESSAGES && P->provider == CFG_API_OPENAI,
         "the pair: messages on openai");
    T_EQ_STR(P->upstream_path, "/chat/completions", "the pair: its upstream path");
    T_OK(P->upstream == &api_chat, "the pair: usage read by the chat adapter");
    T_OK(P->request && P->response && P->error && P->stream_init && P->stream_feed &&
             P->stream_end && P->stream_free && P->stream_size > sizeof(sse_reader_t),
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

static void stream_edges(void)
{
    buf_t out = {0};
    golden_evs_t e;
    int rc;

    rc = tools_stream(64, &out);
    golden_parse_events(out.data, out.len, &e);
    T_OK(rc == 0 && e.n == 1 + 64 * 3 + 2, "64 tool calls in a stream: translated (%d events)",
         e.n);
    T_OK(e.n > 2 && strstr(e.v[e.n - 2].data, "\"tool_use\""), "  ... stop_reason tool_use");
    golden_free_events(&e);
    buf_reset(&out);
    rc = tools_stream(65, &out);
    T_EQ_INT(rc, XLATE_EBAD, "a 65th tool call: XLATE_EBAD (the state is bounded)");
    buf_free(&out);

    {
        void *st = malloc(P->stream_size);
        xlate_opts_t o = opts(1);
        static const char bad[] = "data: not json\n\n";
        P->stream_init(st, &o);
        rc = P->stream_feed(st, bad, sizeof(bad) - 1, &out);
        T_EQ_INT(rc, XLATE_EBAD, "a data line that is not JSON: XLATE_EBAD");
        rc = P->stream_feed(st, "data: [DONE]\n\n", 14, &out);
        T_EQ_INT(rc, XLATE_EBAD, "  ... and every call after it");
        T_EQ_INT(P->stream_end(st, 1, &out), XLATE_EBAD, "  ... stream_end too");
        T_EQ_INT(out.len, 0, "  ... nothing written");
        P->stream_free(st);
        free(st);
    }
    {
        void *st = malloc(P->stream_size);
        xlate_opts_t o = opts(1);
        char big[400];
        memset(big, 'm', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        o.client_model = big;
        P->stream_init(st, &o);
        buf_reset(&out);
        rc = P->stream_end(st, 1, &out);
        T_OK(rc == 0 && strstr(out.data, "\"model\":\"mmmm"),
             "a complete stream with nothing in it: an empty message, a long model name cut");
        P->stream_free(st);
        free(st);
    }
    buf_free(&out);
}

static void request_edges(void)
{
    static const char body[] = "{\"model\":\"claude-x\",\"max_tokens\":5,\"stream\":true,"
                               "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    xlate_opts_t o = opts(0);
    xlate_error_t err;
    buf_t out = {0};
    json_t *j;
    int rc;

    o.model = NULL;
    rc = P->request(body, sizeof(body) - 1, &o, &out, &err);
    j = json_loadb(out.data, out.len, 0, NULL);
    T_OK(rc == 0 && strcmp(json_string_value(json_object_get(j, "model")), "claude-x") == 0,
         "no deployment model: the client's is sent");
    T_OK(json_object_get(j, "stream") == NULL,
         "stream follows xlate_opts_t.stream (the proxy's scan), not a second reading");
    json_decref(j);
    o.model = "deepseek-chat";

    /* a refusal that quotes a long block type of multi-byte characters stays valid UTF-8 */
    buf_t b = {0};
    buf_appends(&b, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"");
    for (int i = 0; i < 200; i++)
        buf_appends(&b, "\xc3\xa9");
    buf_appends(&b, "\"}]}]}");
    buf_reset(&out);
    rc = P->request(b.data, b.len, &o, &out, &err);
    j = json_string(err.message);
    T_OK(rc == XLATE_EREFUSE && j && strlen(err.message) < sizeof(err.message),
         "a cut refusal message is valid UTF-8");
    T_EQ_STR(err.param, "messages[0].content[0]", "  ... and names the block");
    json_decref(j);
    buf_free(&b);

    /* a long error body that is not JSON: cut, valid JSON */
    buf_reset(&out);
    char raw[5000];
    int st = 0;
    memset(raw, '\x80', sizeof(raw));
    rc = P->error(502, raw, sizeof(raw), &out, &st);
    j = json_loadb(out.data, out.len, 0, NULL);
    T_OK(rc == 0 && st == 502 && j &&
             json_string_length(json_object_get(json_object_get(j, "error"), "message")) < 4000,
         "a long error body of invalid bytes: a cut message in valid JSON");
    T_EQ_STR(json_string_value(json_object_get(json_object_get(j, "error"), "type")), "api_error",
             "  ... 502 is an api_error");
    json_decref(j);
    buf_free(&out);
}

static void estimate(void)
{
    /* system 10 + messages 5 + 4 + 3 ("hé…": code points) + tool_use name 4 + input {"a":1}
     * 7 + tool_result 6; tools [{"name":"Read"}] 17 */
    static const char body[] =
        "{\"model\":\"m\",\"system\":[{\"type\":\"text\",\"text\":\"0123456789\"}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"abcd\"},"
        "{\"type\":\"thinking\",\"thinking\":\"h\xc3\xa9\xe2\x80\xa6\"},"
        "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"Read\",\"input\":{\"a\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\","
        "\"content\":[{\"type\":\"text\",\"text\":\"result\"}]}]}],"
        "\"tools\":[{\"name\":\"Read\"}]}";
    static const char image[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
        "{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}},"
        "{\"type\":\"text\",\"text\":\"abc\"}]}]}";
    uint32_t t = 99;

    T_EQ_INT(xlate_messages_count_estimate(body, sizeof(body) - 1, &t), 0, "estimate: counted");
    T_EQ_INT(t, (10 + 5 + 4 + 3 + 4 + 7 + 6 + 17 + 3) / 4, "estimate: characters / 4, rounded up");
    T_EQ_INT(xlate_messages_count_estimate(image, sizeof(image) - 1, &t), 0, "estimate: an image");
    T_EQ_INT(t, XLATE_ESTIMATE_IMAGE_TOKENS + 1, "  ... a flat %u tokens, not its base64",
             XLATE_ESTIMATE_IMAGE_TOKENS);
    T_EQ_INT(xlate_messages_count_estimate("[1]", 3, &t), XLATE_EREFUSE, "estimate: not an object");
    T_EQ_INT(t, 0, "  ... 0 tokens");
    T_EQ_INT(xlate_messages_count_estimate("{}", 2, &t), 0, "estimate: an empty request");
    T_EQ_INT(t, 0, "  ... 0 tokens");
}

int main(void)
{
    int cases;

    golden_dir = GOLDEN_DIR;

    pair();
    cases = golden();
    T_OK(cases >= 40, "golden cases found in %s (%d)", GOLDEN_DIR, cases);
    stream_edges();
    request_edges();
    estimate();
    return t_done();
}
