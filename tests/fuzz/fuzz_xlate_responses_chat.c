/* fuzz_xlate_responses_chat.c - Responses API clients on a chat-completions provider
 * (server/xlate/responses_chat*.c): every translation of the pair over the same bytes.
 *
 * Input: byte 0 holds flags (bit 0: stream_end says complete; bit 1: xlate_opts_t.stream;
 * bits 4-7: the error status, from a table); bytes 1-2 seed the chunking; the rest is the
 * provider's SSE bytes, and also a client's request body (which the answers echo), a
 * completion and an error body. Checked (besides ASan, UBSan and leaks):
 *   - stream: the result and the bytes out do not depend on how the input was cut into
 *     feeds; every event is exactly "event: NAME\ndata: JSON\n\n" with the JSON an object
 *     whose "type" is NAME and whose sequence_number counts from 0; the events follow the
 *     Responses grammar (response.created then response.in_progress first; items added at
 *     the next output_index, one open at a time; a message's part added before its text
 *     deltas; deltas and *.done events for the open item, of its kind, the done text equal
 *     to the deltas joined; response.completed / response.incomplete last, or
 *     response.failed followed by an error event last); a stream that ends (complete or
 *     cut) without XLATE_EBAD always ends with one of those; the result is 0 or
 *     XLATE_EBAD; a cut after XLATE_EBAD still ends with response.failed and error;
 *   - request: 0 with a JSON object carrying model and a non-empty messages array, or
 *     XLATE_EREFUSE with a non-empty, valid UTF-8 message and nothing written;
 *   - response: 0 with a JSON response object (object "response", output array, usage), or
 *     XLATE_EBAD with nothing written;
 *   - error: 0 with {"error":{"message","type",...}} and the status kept (502 below 400).
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "server/common/buf.h"
#include "server/xlate/responses_chat.h"
#define XLATE_FUZZ_NAME "fuzz_xlate_responses_chat"
#include "xlate_fuzz.h"

static const xlate_pair_t *const P = &xlate_responses_chat;

static xlate_opts_t opts(int stream, const char *body, size_t len)
{
    xlate_opts_t o = {.model = "deepseek-chat",
                      .client_model = "gpt-4.1",
                      .stream = stream,
                      .created = 1745962718,
                      .request_id = "req_fuzz",
                      .client_body = body,
                      .client_body_len = len};
    return o;
}

enum { OPEN_NONE, OPEN_MESSAGE, OPEN_CALL };

typedef struct grammar_s {
    int phase; /* 0 nothing, 1 created, 2 in progress, 3 failed (error must follow), 4 ended */
    int open, part;
    json_int_t items, seq;
    char item_id[200];
    buf_t text; /* the open item's deltas joined */
} grammar_t;

static const char *str(const json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}

static void one_event(grammar_t *g, const char *type, const json_t *j)
{
    const json_t *item = json_object_get(j, "item");
    json_int_t oi = json_integer_value(json_object_get(j, "output_index"));
    int is_item_event = strncmp(type, "response.output_", 16) == 0 ||
                        strncmp(type, "response.content_part", 21) == 0 ||
                        strncmp(type, "response.function_call", 22) == 0;

    check(json_integer_value(json_object_get(j, "sequence_number")) == g->seq++ &&
              json_is_integer(json_object_get(j, "sequence_number")),
          "sequence numbers count from 0");
    check(g->phase != 4, "nothing after the last event");
    if (strcmp(type, "response.created") == 0) {
        check(g->phase == 0, "response.created first");
        check(strcmp(str(json_object_get(j, "response"), "status"), "in_progress") == 0,
              "created in_progress");
        g->phase = 1;
        return;
    }
    if (strcmp(type, "response.in_progress") == 0) {
        check(g->phase == 1, "response.in_progress second");
        g->phase = 2;
        return;
    }
    if (strcmp(type, "error") == 0) {
        check(g->phase == 3, "an error event follows response.failed");
        check(json_is_string(json_object_get(j, "message")), "an error has its message");
        g->phase = 4;
        return;
    }
    check(g->phase == 2, "items and terminal events after response.in_progress");
    if (strcmp(type, "response.completed") == 0 || strcmp(type, "response.incomplete") == 0 ||
        strcmp(type, "response.failed") == 0) {
        const json_t *r = json_object_get(j, "response");
        check(json_is_array(json_object_get(r, "output")) &&
                  (json_int_t)json_array_size(json_object_get(r, "output")) == g->items,
              "the final response has every item");
        check(strcmp(type, "response.failed") == 0 || g->open == OPEN_NONE,
              "items are done before the end");
        check(strcmp(type, "response.failed") != 0 || json_is_object(json_object_get(r, "error")),
              "a failed response has its error");
        g->phase = strcmp(type, "response.failed") == 0 ? 3 : 4;
        return;
    }
    check(is_item_event, "a known event");
    if (strcmp(type, "response.output_item.added") == 0) {
        const char *kind = str(item, "type");
        check(g->open == OPEN_NONE, "one item open at a time");
        check(oi == g->items++, "items added at the next output_index");
        check(kind && (strcmp(kind, "message") == 0 || strcmp(kind, "function_call") == 0),
              "a message or a function_call");
        check(str(item, "id") && strlen(str(item, "id")) < sizeof(g->item_id), "an item id");
        snprintf(g->item_id, sizeof(g->item_id), "%s", str(item, "id"));
        if (strcmp(kind, "function_call") == 0)
            check(str(item, "call_id") && str(item, "name"), "a call has call_id and name");
        g->open = strcmp(kind, "message") == 0 ? OPEN_MESSAGE : OPEN_CALL;
        g->part = 0;
        buf_reset(&g->text);
        return;
    }
    check(g->open != OPEN_NONE && oi == g->items - 1, "an item event for the open item");
    if (strcmp(type, "response.output_item.done") == 0) {
        check(strcmp(str(item, "id"), g->item_id) == 0, "the open item is done");
        check(g->open == OPEN_CALL || g->part == 2, "a message's part is done first");
        g->open = OPEN_NONE;
        return;
    }
    check(strcmp(str(j, "item_id"), g->item_id) == 0, "item_id names the open item");
    if (strcmp(type, "response.content_part.added") == 0) {
        check(g->open == OPEN_MESSAGE && g->part == 0, "one part per message");
        g->part = 1;
    } else if (strcmp(type, "response.output_text.delta") == 0 ||
               strcmp(type, "response.function_call_arguments.delta") == 0) {
        const json_t *d = json_object_get(j, "delta");
        check(type[9] == 'o' ? g->open == OPEN_MESSAGE && g->part == 1 : g->open == OPEN_CALL,
              "deltas of the item's kind");
        check(json_string_length(d) > 0, "non-empty deltas");
        buf_append(&g->text, json_string_value(d), json_string_length(d));
    } else if (strcmp(type, "response.output_text.done") == 0 ||
               strcmp(type, "response.function_call_arguments.done") == 0) {
        const json_t *t = json_object_get(j, type[9] == 'o' ? "text" : "arguments");
        check(type[9] == 'o' ? g->open == OPEN_MESSAGE && g->part == 1 : g->open == OPEN_CALL,
              "done of the item's kind");
        check(
            json_string_length(t) == g->text.len &&
                (g->text.len == 0 || memcmp(json_string_value(t), g->text.data, g->text.len) == 0),
            "the done text is the deltas joined");
    } else if (strcmp(type, "response.content_part.done") == 0) {
        check(g->open == OPEN_MESSAGE && g->part == 1, "the part is done once");
        g->part = 2;
    } else {
        check(0, "a known item event");
    }
}

/* The format and grammar of the events; returns whether the stream ended. */
static int check_events(const char *s, size_t len)
{
    const char *p = s ? s : "", *end = p + len;
    grammar_t g;

    memset(&g, 0, sizeof(g));
    while (p < end) {
        json_t *j = xf_event(&p, end);

        one_event(&g, str(j, "type"), j);
        json_decref(j);
    }
    buf_free(&g.text);
    return g.phase == 4;
}

static void check_stream(const char *in, size_t len, uint32_t seed, int complete)
{
    xlate_opts_t o = opts(1, in, len);
    buf_t whole = {0};

    xf_stream_cuts(P, &o, in, len, seed, complete, 1, &whole);
    check(check_events(whole.data, whole.len), "a stream always ends with its last events");
    buf_free(&whole);
}

static void check_request(const char *in, size_t len, int stream)
{
    xlate_opts_t o = opts(stream, NULL, 0);

    xf_check_request(P, &o, in, len, 1);
}

static int is_response(const json_t *j)
{
    return json_is_object(j) && strcmp(str(j, "object"), "response") == 0 &&
           json_is_array(json_object_get(j, "output")) &&
           json_is_object(json_object_get(j, "usage")) && str(j, "status");
}

static void check_response(const char *in, size_t len)
{
    xlate_opts_t o = opts(0, in, len);

    xf_check_response(P, &o, in, len, is_response, "a translated response is a response object");
}

static void check_error(const char *in, size_t len, int status)
{
    xf_check_error(P, in, len, status, status < 400 ? 502 : status,
                   "an error is translated, its status kept", "an error body in OpenAI's shape");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int statuses[] = {400, 401, 402, 403, 404, 408, 413, 422,
                                   429, 500, 502, 503, 504, 529, 302, 200};
    xf_input_t in;

    if (xf_input(data, size, &in) != 0)
        return 0;
    check_stream(in.body, in.len, in.seed, in.complete);
    check_request(in.body, in.len, in.stream);
    check_response(in.body, in.len);
    check_error(in.body, in.len, statuses[in.status]);
    return 0;
}
