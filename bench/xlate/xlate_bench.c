/* xlate_bench.c - what a translated request costs in the translators alone: the request
 * rewritten, and the provider's stream translated event by event, for both pairs, with the
 * fast path (server/xlate/xfast.h) on and off. Prints ns per request and per event; asserts
 * nothing. The streams are the ones bench/run.sh's mock sends (a role or start event, N text
 * deltas of 13 bytes, the finish, the usage, the end), plus the text events alone.
 *
 *   xlate-bench [deltas-per-stream] [streams]      (default 100 and 2000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/xlate/chat_anthropic.h"
#include "server/xlate/messages_openai.h"
#include "server/xlate/xfast.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const xlate_opts_t opts = {.model = "upstream-model",
                                  .client_model = "client-model",
                                  .stream = 1,
                                  .include_usage = 1,
                                  .created = 1745962718,
                                  .request_id = "req_bench"};

static void stream(const char *name, const xlate_pair_t *p, const char *head, const char *delta,
                   const char *tail, int deltas, int streams)
{
    static _Alignas(max_align_t) unsigned char st[16384];
    buf_t in = {0}, out = {0};
    double ns[2];

    if (p->stream_size > sizeof(st)) {
        fprintf(stderr, "xlate-bench: %s: stream state too large\n", name);
        exit(1);
    }
    buf_appends(&in, head);
    for (int i = 0; i < deltas; i++)
        buf_appends(&in, delta);
    buf_appends(&in, tail);
    for (int fast = 0; fast <= 1; fast++) {
        double t0;
        xfast_enable(fast);
        t0 = now();
        for (int r = 0; r < streams; r++) {
            buf_reset(&out);
            p->stream_init(st, &opts);
            if (p->stream_feed(st, in.data, in.len, &out) != 0 || p->stream_end(st, 1, &out) != 0) {
                fprintf(stderr, "xlate-bench: %s: the stream failed\n", name);
                exit(1);
            }
            p->stream_free(st);
        }
        ns[fast] = (now() - t0) / streams / (deltas + 4) * 1e9;
    }
    xfast_enable(1);
    printf("%-22s stream  %7.0f ns/event (jansson only)  %7.0f ns/event (fast path)  %.2f x\n",
           name, ns[0], ns[1], ns[0] / ns[1]);
    buf_free(&in);
    buf_free(&out);
}

static void request(const char *name, const xlate_pair_t *p, const char *body, int n)
{
    buf_t out = {0};
    xlate_error_t err;
    double t0 = now();

    for (int i = 0; i < n; i++) {
        buf_reset(&out);
        if (p->request(body, strlen(body), &opts, &out, &err) != 0) {
            fprintf(stderr, "xlate-bench: %s: the request was refused: %s\n", name, err.message);
            exit(1);
        }
    }
    printf("%-22s request %7.0f ns (%zu bytes in, %zu out)\n", name, (now() - t0) / n * 1e9,
           strlen(body), out.len);
    buf_free(&out);
}

int main(int argc, char **argv)
{
    int deltas = argc > 1 ? atoi(argv[1]) : 100, streams = argc > 2 ? atoi(argv[2]) : 2000;

    if (deltas < 1 || streams < 1) {
        fprintf(stderr, "usage: xlate-bench [deltas-per-stream] [streams]\n");
        return 2;
    }
    request("chat on anthropic", &xlate_chat_anthropic,
            "{\"model\":\"claude-bench-x\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
            "\"content\":\"hi\"}],\"stream\":true,\"stream_options\":{\"include_usage\":true}}",
            streams * 10);
    stream("chat on anthropic", &xlate_chat_anthropic,
           "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
           "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],"
           "\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
           "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
           "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
           "event: ping\ndata: {\"type\": \"ping\"}\n\n",
           "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
           "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hello world, \"}}\n\n",
           "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
           "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
           "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":100}}\n\n"
           "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
           deltas, streams);
    request("messages on openai", &xlate_messages_openai,
            "{\"model\":\"gpt-bench-x\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
            "\"content\":\"hi\"}],\"stream\":true}",
            streams * 10);
    stream("messages on openai", &xlate_messages_openai,
           "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
           "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
           "\"content\":\"\"},\"finish_reason\":null}]}\n\n",
           "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
           "\"model\":\"m\",\"system_fingerprint\":\"fp_1\",\"choices\":[{\"index\":0,\"delta\":"
           "{\"content\":\"Hello world, \"},\"logprobs\":null,\"finish_reason\":null}]}\n\n",
           "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
           "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"
           "\n\ndata: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
           "\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":"
           "100,\"total_tokens\":105}}\n\ndata: [DONE]\n\n",
           deltas, streams);
    return 0;
}
