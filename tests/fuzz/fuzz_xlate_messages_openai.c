/* fuzz_xlate_messages_openai.c - Anthropic Messages clients on an OpenAI-compatible provider
 * (server/xlate/messages_openai*.c): every translation of the pair over the same bytes.
 *
 * Input: byte 0 holds flags (bit 0: stream_end says complete; bit 1: xlate_opts_t.stream;
 * bits 4-7: the error status, from a table); bytes 1-2 seed the chunking; the rest is the
 * provider's SSE bytes, and also a client's request body, a completion and an error body.
 * Checked (besides ASan, UBSan and leaks):
 *   - stream: the result and the bytes out do not depend on how the input was cut into
 *     feeds; every event is exactly "event: NAME\ndata: JSON\n\n" with the JSON an object
 *     whose "type" is NAME; the events follow Anthropic's grammar (message_start first,
 *     blocks started at the next index, deltas of the block's kind into the open block,
 *     stopped before another starts, message_delta then message_stop last; an error event
 *     ends everything); a complete stream that succeeded ends with message_stop or error;
 *     the result is 0 or XLATE_EBAD; with the fast path off (xfast.h) the result and the
 *     events are the same (the JSON compared as values);
 *   - request: 0 with a JSON object carrying model and messages, or XLATE_EREFUSE with a
 *     non-empty, valid UTF-8 message and nothing written; the count_tokens estimate refuses
 *     exactly what is not a JSON object;
 *   - response: 0 with a JSON message, or XLATE_EBAD with nothing written;
 *   - error: 0 with {"type":"error","error":{...}} and the status unchanged.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "server/xlate/messages_openai.h"
#include "server/xlate/xfast.h"
#include "sse_same.h"
#define XLATE_FUZZ_NAME "fuzz_xlate_messages_openai"
#include "xlate_fuzz.h"

static const xlate_pair_t *const P = &xlate_messages_openai;

static xlate_opts_t opts(int stream)
{
    xlate_opts_t o = {.model = "deepseek-chat",
                      .client_model = "claude-sonnet-4-5",
                      .stream = stream,
                      .created = 1745962718,
                      .request_id = "req_fuzz"};
    return o;
}

enum { BLK_NONE, BLK_TEXT, BLK_TOOL };

/* The format of every event and Anthropic's grammar; returns whether the last event ends
 * the message (message_stop or error). */
static int check_events(const char *s, size_t len)
{
    const char *p = s ? s : "", *end = p + len;
    int started = 0, open = BLK_NONE, delta_sent = 0, ended = 0;
    json_int_t blocks = 0;

    while (p < end) {
        json_t *j, *blk, *d;
        const char *type, *kind;
        json_int_t index;

        check(!ended, "nothing after message_stop or error");
        j = xf_event(&p, end);
        type = json_string_value(json_object_get(j, "type"));
        index = json_integer_value(json_object_get(j, "index"));
        if (strcmp(type, "error") == 0) {
            check(json_is_object(json_object_get(j, "error")), "an error event has its error");
            ended = 1;
        } else if (strcmp(type, "message_start") == 0) {
            check(!started, "one message_start");
            check(json_is_object(json_object_get(j, "message")), "message_start has a message");
            started = 1;
        } else if (strcmp(type, "content_block_start") == 0) {
            check(started && open == BLK_NONE && !delta_sent, "a block starts when none is open");
            check(index == blocks++, "blocks start at the next index");
            blk = json_object_get(j, "content_block");
            kind = json_string_value(json_object_get(blk, "type"));
            check(kind && (strcmp(kind, "text") == 0 || strcmp(kind, "tool_use") == 0),
                  "a text or tool_use block");
            if (strcmp(kind, "text") == 0)
                open = BLK_TEXT;
            else {
                check(json_is_string(json_object_get(blk, "id")) &&
                          json_is_string(json_object_get(blk, "name")) &&
                          json_is_object(json_object_get(blk, "input")),
                      "a tool_use block has id, name and input {}");
                open = BLK_TOOL;
            }
        } else if (strcmp(type, "content_block_delta") == 0) {
            check(open != BLK_NONE && index == blocks - 1, "a delta goes to the open block");
            d = json_object_get(j, "delta");
            kind = json_string_value(json_object_get(d, "type"));
            check(kind != NULL, "a delta has a type");
            if (open == BLK_TEXT)
                check(strcmp(kind, "text_delta") == 0 &&
                          json_string_length(json_object_get(d, "text")) > 0,
                      "a text block gets non-empty text deltas");
            else
                check(strcmp(kind, "input_json_delta") == 0 &&
                          json_string_length(json_object_get(d, "partial_json")) > 0,
                      "a tool_use block gets non-empty input_json deltas");
        } else if (strcmp(type, "content_block_stop") == 0) {
            check(open != BLK_NONE && index == blocks - 1, "the open block stops");
            open = BLK_NONE;
        } else if (strcmp(type, "message_delta") == 0) {
            check(started && open == BLK_NONE && !delta_sent, "one message_delta, blocks closed");
            d = json_object_get(j, "delta");
            check(json_is_string(json_object_get(d, "stop_reason")) &&
                      json_is_object(json_object_get(j, "usage")),
                  "message_delta has a stop_reason and usage");
            delta_sent = 1;
        } else if (strcmp(type, "message_stop") == 0) {
            check(delta_sent, "message_stop after message_delta");
            ended = 1;
        } else {
            check(0, "a known event");
        }
        json_decref(j);
    }
    return ended;
}

static void check_stream(const char *in, size_t len, uint32_t seed, int complete)
{
    xlate_opts_t o = opts(1);
    buf_t whole = {0}, cut = {0};
    int r1 = xf_stream_cuts(P, &o, in, len, seed, complete, 0, &whole);

    xfast_enable(0); /* jansson alone reads every event: the same result, the same events */
    int r3 = xf_run_stream(P, &o, in, len, 0, complete, 0, &cut);
    xfast_enable(1);
    check(r3 == r1, "the fast path does not change the stream's result");
    check(sse_same(whole.data, whole.len, cut.data, cut.len, JSON_REJECT_DUPLICATES),
          "the fast path does not change the stream's events");
    int ended = check_events(whole.data, whole.len);
    if (r1 == 0 && complete)
        check(ended, "a complete stream ends with message_stop or error");
    buf_free(&whole);
    buf_free(&cut);
}

static void check_request(const char *in, size_t len, int stream)
{
    xlate_opts_t o = opts(stream);
    json_t *j = json_loadb(in, len, JSON_REJECT_DUPLICATES, NULL);
    uint32_t tokens;

    xf_check_request(P, &o, in, len, 0);
    check(xlate_messages_count_estimate(in, len, &tokens) ==
              (json_is_object(j) ? 0 : XLATE_EREFUSE),
          "the estimate refuses non-objects only");
    json_decref(j);
}

static int is_message(const json_t *j)
{
    return json_is_object(j) && json_is_array(json_object_get(j, "content")) &&
           json_is_string(json_object_get(j, "stop_reason"));
}

static void check_response(const char *in, size_t len)
{
    xlate_opts_t o = opts(0);

    xf_check_response(P, &o, in, len, is_message, "a translated response is a message");
}

static void check_error(const char *in, size_t len, int status)
{
    xf_check_error(P, in, len, status, status, "an error is translated, its status unchanged",
                   "an error body in Anthropic's shape");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {400, 401, 402, 403, 404, 408, 413, 422,
                                   429, 500, 502, 503, 504, 529, 418, 200};
    xf_input_t in;

    if (xf_input(data, size, &in) != 0)
        return 0;
    check_stream(in.body, in.len, in.seed, in.complete);
    check_request(in.body, in.len, in.stream);
    check_response(in.body, in.len);
    check_error(in.body, in.len, statuses[in.status]);
    return 0;
}
