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

#include "chat_golden.h"
#include "server/xlate/chat_gemini.h"

static const xlate_opts_t g_opts = {
    .model = "gemini-2.5-flash",
    .client_model = "gemini-flash",
    .default_max_tokens = 0,
    .created = 1700000000,
    .request_id = "req-test-1",
};

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
        xlate_opts_t o = g_opts;
        o.stream = cases[i].stream;
        o.max_tokens_cap = cases[i].cap;
        golden_request(cases[i].name, strcmp(cases[i].name, "params_cap") == 0 ? "params" : NULL,
                       &o);
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
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        golden_response(cases[i], &g_opts);
    golden_bad_responses(bad, sizeof(bad) / sizeof(bad[0]), "a GenerateContentResponse", &g_opts);
}

/* ---- streams ------------------------------------------------------------------------ */

static void test_streams(void)
{
    static const stream_case_t cases[] = {
        {"text", NULL, 0, 0},  {"text_usage", "text", 1, 0}, {"tools", NULL, 1, 0},
        {"error", NULL, 1, 0}, {"max_tokens", NULL, 1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        golden_stream(&cases[i], &g_opts);
}

static void test_stream_edges(void)
{
    xlate_opts_t o = g_opts;
    buf_t out = {0};
    int rc;

    o.stream = 1;
    /* a data line that is not JSON: XLATE_EBAD; the chunks before it stay */
    golden_stream_not_json(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n"
        "data: {not json}\n\n"
        "data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n",
        &o);
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
        golden_stream_bad(bad, sizeof(bad) / sizeof(bad[0]), "Gemini", &o);
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
    golden_stream_too_big(&o);
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
    golden_refusals(&g_opts);
    test_responses();
    golden_errors();
    test_streams();
    test_stream_edges();
    test_usage();
    return t_done();
}
