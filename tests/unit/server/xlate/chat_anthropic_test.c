/* chat_anthropic_test.c - OpenAI chat clients on an Anthropic provider (xlate/chat_anthropic):
 * golden files (golden/chat_anthropic/, from the providers' documented payloads) for the
 * request, the answer, the stream and the errors, compared as JSON (json_equal) and streams
 * event by event; the same stream output whatever the cut; refusals with their param and
 * message; the provider's bytes that are not its format.
 *
 * GOLDEN_DIR (set by meson) is the folder of the golden files. The pair is used as
 * chat_anthropic.h exports it (xlate.c's table, which lists every module, is not linked).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_golden.h"
#include "server/xlate/chat_anthropic.h"

static const xlate_opts_t g_opts = {
    .model = "claude-sonnet-4-5-20250929",
    .client_model = "claude-sonnet-4-5",
    .default_max_tokens = 0,
    .created = 1700000000,
    .request_id = "req-test-1",
};

/* ---- requests ----------------------------------------------------------------------- */

typedef struct req_case_s {
    const char *name;
    int stream;
    uint32_t default_max_tokens;
} req_case_t;

static void test_requests(void)
{
    static const req_case_t cases[] = {
        {"basic", 0, 0},         {"conversation", 0, 0},     {"images", 0, 0},
        {"tools", 0, 0},         {"params", 1, 0},           {"tool_choice_named", 0, 2048},
        {"parallel_auto", 0, 0}, {"tool_choice_none", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xlate_opts_t o = g_opts;
        o.stream = cases[i].stream;
        o.default_max_tokens = cases[i].default_max_tokens;
        golden_request(cases[i].name, NULL, &o);
    }
    { /* parallel_auto's default max tokens came from the options: 512 */
        buf_t out = {0};
        xlate_error_t err;
        xlate_opts_t o = g_opts;
        static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        o.default_max_tokens = 512;
        T_OK(g_pair->request(body, sizeof(body) - 1, &o, &out, &err) == 0 && out.data &&
                 strstr(out.data, "\"max_tokens\":512,"),
             "request: the configured default max_tokens");
        buf_free(&out);
    }
    { /* output is appended; reals are written with the fewest digits that read back */
        buf_t out = {0};
        xlate_error_t err;
        static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                                   "\"temperature\":0.1,\"top_p\":0.7}";
        static const char body17[] = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                                     "\"temperature\":0.1,\"top_p\":0.30000000000000004}";
        json_t *j = NULL;
        buf_appends(&out, "HEAD");
        T_OK(g_pair->request(body, sizeof(body) - 1, &g_opts, &out, &err) == 0 &&
                 strncmp(out.data, "HEAD{", 5) == 0 && strstr(out.data, "\"temperature\":0.1,") &&
                 strstr(out.data, "\"top_p\":0.7}"),
             "request: appended to out, reals as short as they came");
        buf_reset(&out);
        /* the digits are chosen per document: one real that needs 17 gives all 17 */
        T_OK(g_pair->request(body17, sizeof(body17) - 1, &g_opts, &out, &err) == 0 &&
                 (j = json_loadb(out.data, out.len, LOAD, NULL)) != NULL &&
                 json_real_value(json_object_get(j, "temperature")) == 0.1 &&
                 json_real_value(json_object_get(j, "top_p")) == 0.30000000000000004,
             "request: reals read back exactly");
        json_decref(j);
        buf_free(&out);
    }
}

/* ---- responses and errors ----------------------------------------------------------- */

static void test_responses(void)
{
    static const char *const cases[] = {"text", "tool_use", "max_tokens", "refusal",
                                        "stop_sequence"};
    static const char *const bad[] = {
        "",
        "not json",
        "{\"type\":\"message\",\"content\":[]",
        "[1,2]",
        "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}",
        "{\"type\":\"message\",\"content\":\"text\"}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":7}]}",
        "{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"name\":\"f\"}]}",
        "{\"type\":\"message\",\"id\":\"a\",\"id\":\"b\",\"content\":[]}",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        golden_response(cases[i], &g_opts);
    golden_bad_responses(bad, sizeof(bad) / sizeof(bad[0]), "a message", &g_opts);
}

/* ---- streams ------------------------------------------------------------------------ */

static void test_streams(void)
{
    static const stream_case_t cases[] = {
        {"text", NULL, 0, 0},       {"tools", NULL, 1, 0},      {"error", NULL, 0, 0},
        {"max_tokens", NULL, 1, 0}, {"web_search", NULL, 1, 0},
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
    golden_stream_not_json("data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\n"
                           "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                           "{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n"
                           "data: {not json}\n\n"
                           "data: {\"type\":\"message_stop\"}\n\n",
                           &o);
    {
        static const char *const bad[] = {
            "data: [1]\n\n",
            "data: {\"no\":\"type\"}\n\n",
            "data:\n\n",
            "data: {\"type\":\"content_block_delta\",\"index\":0}\n\n",
            ("data: "
             "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\"}}"
             "\n\n"),
            ("data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
             "\"tool_use\",\"name\":\"f\"}}\n\n"),
            "data: {\"type\":\"message_start\"}\n\n",
            "data: {\"type\":\"message_delta\",\"usage\":{}}\n\n",
            "data: {\"type\":\"ping\",\"type\":\"ping\"}\n\n",
        };
        golden_stream_bad(bad, sizeof(bad) / sizeof(bad[0]), "Anthropic", &o);
    }
    { /* cut before message_stop's blank line: nothing; ended: the pending event counts */
        static const char s[] =
            "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\n"
            "data: {\"type\":\"message_stop\"}";
        size_t first;
        rc = run_stream(&o, s, sizeof(s) - 1, 0, 0, &out);
        first = out.len;
        T_OK(rc == 0 && first > 0 && !strstr(out.data, "[DONE]"),
             "stream: cut (complete 0): nothing more, not even a pending event");
        buf_reset(&out);
        rc = run_stream(&o, s, sizeof(s) - 1, 0, 1, &out);
        T_OK(rc == 0 && out.data && strstr(out.data, "data: [DONE]\n\n"),
             "stream: ended (complete 1): the last event without its blank line counts");
        buf_reset(&out);
        rc = run_stream(&o, s, (size_t)(strstr(s, "data: {\"type\":\"message_stop") - s), 0, 1,
                        &out);
        T_OK(rc == 0 && out.len == first, "stream: ended without message_stop: nothing added");
        buf_reset(&out);
    }
    { /* after message_stop, nothing is read */
        static const char s[] = "data: {\"type\":\"message_stop\"}\n\n"
                                "data: {broken\n\n"
                                "data: {\"type\":\"message_stop\"}\n\n";
        rc = run_stream(&o, s, sizeof(s) - 1, 0, 1, &out);
        T_OK(rc == 0 && out.data && strcmp(out.data, "data: [DONE]\n\n") == 0,
             "stream: nothing after message_stop is read");
        buf_reset(&out);
    }
    { /* content before message_start: chunks with an id of the request id */
        static const char s[] = "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                "{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n";
        rc = run_stream(&o, s, sizeof(s) - 1, 0, 1, &out);
        T_OK(rc == 0 && out.data && strstr(out.data, "\"id\":\"chatcmpl-req-test-1\""),
             "stream: without message_start, the id comes from the request id");
        buf_reset(&out);
    }
    golden_stream_too_big(&o);
    buf_free(&out);
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
    g_pair = &xlate_chat_anthropic;
    T_OK(g_pair->client == API_CHAT && g_pair->provider == CFG_API_ANTHROPIC &&
             strcmp(g_pair->upstream_path, "/messages") == 0 && g_pair->upstream == &api_messages,
         "the pair: chat on anthropic, to /messages, usage read by the Messages adapter");
    T_OK(g_pair->request && g_pair->response && g_pair->error && g_pair->stream_size > 0 &&
             g_pair->stream_init && g_pair->stream_feed && g_pair->stream_end &&
             g_pair->stream_free,
         "the pair has every translation (stream state: %zu bytes)", g_pair->stream_size);
    test_requests();
    golden_refusals(&g_opts);
    test_responses();
    golden_errors();
    test_streams();
    test_stream_edges();
    return t_done();
}
