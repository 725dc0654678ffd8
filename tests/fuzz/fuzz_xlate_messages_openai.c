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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/xlate/messages_openai.h"
#include "server/xlate/xfast.h"
#include "sse_same.h"

static const xlate_pair_t *const P = &xlate_messages_openai;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_xlate_messages_openai: invariant violated: %s\n", what);
        abort();
    }
}

static xlate_opts_t opts(int stream)
{
    xlate_opts_t o = {.model = "deepseek-chat",
                      .client_model = "claude-sonnet-4-5",
                      .stream = stream,
                      .created = 1745962718,
                      .request_id = "req_fuzz"};
    return o;
}

/* seed 0: one feed; else pseudo-random pieces, small (1-8 bytes) or larger (up to 300). */
static int run_stream(const char *in, size_t len, uint32_t seed, int complete, buf_t *out)
{
    static _Alignas(max_align_t) unsigned char st[XLATE_MO_STREAM_SIZE];
    xlate_opts_t o = opts(1);
    size_t off = 0;
    int rc = 0;

    check(P->stream_size <= sizeof(st), "stream_size");
    P->stream_init(st, &o);
    while (rc == 0 && off < len) {
        size_t n = len - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t r = 1 + (seed >> 16) % (seed & 0x80 ? 8 : 300);
            n = n < r ? n : r;
        }
        rc = P->stream_feed(st, in + off, n, out);
        off += n;
    }
    if (rc == 0)
        rc = P->stream_end(st, complete, out);
    P->stream_free(st);
    return rc;
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
        const char *name, *nl, *data;
        size_t nlen;
        json_t *j, *blk, *d;
        const char *type, *kind;
        json_int_t index;

        check(!ended, "nothing after message_stop or error");
        check((size_t)(end - p) >= 7 && memcmp(p, "event: ", 7) == 0, "an event line");
        name = p + 7;
        nl = memchr(name, '\n', (size_t)(end - name));
        check(nl != NULL, "the event line ends");
        nlen = (size_t)(nl - name);
        data = nl + 1;
        check((size_t)(end - data) >= 6 && memcmp(data, "data: ", 6) == 0, "a data line follows");
        data += 6;
        nl = memchr(data, '\n', (size_t)(end - data));
        check(nl != NULL && nl + 1 < end && nl[1] == '\n', "a blank line ends the event");
        j = json_loadb(data, (size_t)(nl - data), JSON_REJECT_DUPLICATES, NULL);
        check(json_is_object(j), "the data is a JSON object");
        type = json_string_value(json_object_get(j, "type"));
        check(type && strlen(type) == nlen && memcmp(type, name, nlen) == 0,
              "the data's type is the event's name");
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
        p = nl + 2;
    }
    return ended;
}

static void check_stream(const char *in, size_t len, uint32_t seed, int complete)
{
    buf_t whole = {0}, cut = {0};
    int r1 = run_stream(in, len, 0, complete, &whole);
    int r2 = run_stream(in, len, seed | 1, complete, &cut);

    check(r1 == 0 || r1 == XLATE_EBAD, "stream result");
    check(r1 == r2, "the stream's result does not depend on the cut");
    check(whole.len == cut.len && (whole.len == 0 || memcmp(whole.data, cut.data, whole.len) == 0),
          "the stream's bytes do not depend on the cut");
    xfast_enable(0); /* jansson alone reads every event: the same result, the same events */
    buf_reset(&cut);
    int r3 = run_stream(in, len, 0, complete, &cut);
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
    xlate_error_t err;
    buf_t out = {0};
    json_t *j;
    uint32_t tokens;
    int rc = P->request(in, len, &o, &out, &err);

    check(rc == 0 || rc == XLATE_EREFUSE, "request result");
    if (rc == 0) {
        j = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
        check(json_is_object(j) && json_is_string(json_object_get(j, "model")) &&
                  json_is_array(json_object_get(j, "messages")),
              "a translated request is a JSON object with model and messages");
        check(!stream || json_is_true(json_object_get(json_object_get(j, "stream_options"),
                                                      "include_usage")),
              "a stream asks for usage");
        json_decref(j);
    } else {
        check(out.len == 0, "a refusal writes nothing");
        check(memchr(err.message, '\0', sizeof(err.message)) && err.message[0],
              "a refusal has a message");
        check(memchr(err.param, '\0', sizeof(err.param)) != NULL, "the param is terminated");
        j = json_string(err.message);
        check(j != NULL, "the refusal message is valid UTF-8");
        json_decref(j);
    }
    j = json_loadb(in, len, JSON_REJECT_DUPLICATES, NULL);
    rc = xlate_messages_count_estimate(in, len, &tokens);
    check(rc == (json_is_object(j) ? 0 : XLATE_EREFUSE), "the estimate refuses non-objects only");
    json_decref(j);
    buf_free(&out);
}

static void check_response(const char *in, size_t len)
{
    xlate_opts_t o = opts(0);
    buf_t out = {0};
    int rc = P->response(in, len, &o, &out);

    check(rc == 0 || rc == XLATE_EBAD, "response result");
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
        check(json_is_object(j) && json_is_array(json_object_get(j, "content")) &&
                  json_is_string(json_object_get(j, "stop_reason")),
              "a translated response is a message");
        json_decref(j);
    } else {
        check(out.len == 0, "XLATE_EBAD writes nothing");
    }
    buf_free(&out);
}

static void check_error(const char *in, size_t len, int status)
{
    buf_t out = {0};
    int st = 0, rc = P->error(status, in, len, &out, &st);
    json_t *j = json_loadb(out.data ? out.data : "", out.len, JSON_REJECT_DUPLICATES, NULL);
    json_t *e = json_object_get(j, "error");

    check(rc == 0 && st == status, "an error is translated, its status unchanged");
    check(json_is_object(j) && json_is_string(json_object_get(e, "type")) &&
              json_is_string(json_object_get(e, "message")),
          "an error body in Anthropic's shape");
    json_decref(j);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {400, 401, 402, 403, 404, 408, 413, 422,
                                   429, 500, 502, 503, 504, 529, 418, 200};
    if (size < 3)
        return 0;
    const char *body = (const char *)data + 3;
    size_t len = size - 3;
    uint32_t seed = (uint32_t)data[1] << 8 | data[2];

    check_stream(body, len, seed, data[0] & 1);
    check_request(body, len, (data[0] >> 1) & 1);
    check_response(body, len);
    check_error(body, len, statuses[data[0] >> 4]);
    return 0;
}
