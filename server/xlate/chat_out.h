/* chat_out.h - writing OpenAI chat completions answers for the pairs that serve chat clients
 * with another provider format (chat_anthropic, chat_gemini): the chat.completion, its tool
 * calls and usage, OpenAI's error document, and the chat.completion.chunk stream.
 *
 * Design note
 * -----------
 * What a chat client reads does not depend on the provider: the members, their order and
 * the bytes of the stream's framing are written here once. A pair reads its provider's
 * answer and hands over the values (ids, text, counts, the finish_reason it mapped); what it
 * makes of the provider's own strings (how ids are cut, how invalid UTF-8 is mended) stays
 * the pair's, as each pair's file documents.
 *
 * A stream's state begins with a chat_stream_t (the pair's state embeds it first): the SSE
 * reader, the client's model and the request id copied at init, and the chunks' common head
 * ({"id":..,"object":"chat.completion.chunk","created":N,"model":.., written once), so a
 * chunk is "data: " + the head + its choices. The chunk writers append to s->out (set by
 * chat_stream_feed / chat_stream_end during the call) whole or not at all.
 *
 * Ownership: a json_t argument marked "stolen" is the callee's (NULL there means the caller
 * ran out of memory: the callee fails); the others are borrowed. Errors: NULL (no memory)
 * for constructors; 0 or XLATE_ENOMEM for writers. Pure, any thread; a stream belongs to one
 * thread.
 */
#ifndef LLMGATE_XLATE_CHAT_OUT_H
#define LLMGATE_XLATE_CHAT_OUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "server/common/buf.h"
#include "server/xlate/sse.h"
#include "server/xlate/xfast.h"
#include "server/xlate/xlate.h"

/* ---- answers ------------------------------------------------------------------------ */

/* obj.name as a count: 0 when absent, not an integer, or negative. */
json_int_t chat_out_count(const json_t *obj, const char *name);

/* {prompt_tokens, completion_tokens, total_tokens, prompt_tokens_details:{cached_tokens}
 * [, completion_tokens_details:{reasoning_tokens}: only when reasoning >= 0]}. */
json_t *chat_out_usage(json_int_t prompt, json_int_t completion, json_int_t total,
                       json_int_t cached, json_int_t reasoning);

/* {id (stolen), type:"function", function:{name, arguments: args[0..n)}}. */
json_t *chat_out_tool_call(json_t *id, const json_t *name, const char *args, size_t n);

/* {id, object:"chat.completion", created, model, choices:[{index:0, message:{role:
 * "assistant", content: text (NULL: null), refusal:null[, tool_calls: calls when it holds
 * any]}, logprobs:null, finish_reason}], usage}; id, model and usage stolen. */
json_t *chat_out_completion(json_t *id, int64_t created, json_t *model, const buf_t *text,
                            const json_t *calls, const char *finish, json_t *usage);

/* ---- errors ------------------------------------------------------------------------- */

/* OpenAI's error type of an HTTP status: 401 authentication_error, 403 permission_error,
 * 429 rate_limit_error, 5xx server_error, else invalid_request_error. */
const char *chat_out_type_of_status(int status);

/* {"error":{"message","type","param":null,"code"}}: type and code stolen (code json_null()
 * for null). */
json_t *chat_out_error_doc(json_t *type, json_t *code, const json_t *message);

#define CHAT_OUT_RAW_MAX 512 /* bytes of a body that is not an error document, in its message */
#define CHAT_OUT_RAW_CAP (CHAT_OUT_RAW_MAX + 80)

/* The message of an error body that is not a document (a proxy's HTML page): "the provider
 * answered HTTP <status>: " + its first CHAT_OUT_RAW_MAX bytes (cut before a UTF-8
 * sequence; "..." when cut), or " with an empty body", into b[CHAT_OUT_RAW_CAP]; returns its
 * length. The bytes are the body's: the caller makes them a valid string. */
size_t chat_out_raw_message(char *b, int status, const char *body, size_t len);

/* ---- streams ------------------------------------------------------------------------ */

#define CHAT_ID_MAX     96  /* bytes of the provider's message id in a chunk's id */
#define CHAT_MODEL_MAX  255 /* bytes of the client's model name (the scan's bound) */
#define CHAT_RID_MAX    64  /* bytes of the request id */
#define CHAT_PREFIX_MAX (128 + 6 * CHAT_ID_MAX + 6 * CHAT_MODEL_MAX) /* members + both escaped */

#define CHAT_STOPPED 1 /* an event callback's result: the stream is over, read no further */

typedef struct chat_stream_s chat_stream_t;

struct chat_stream_s {
    sse_reader_t rd;
    sse_event_cb on_event;         /* the pair's reader of one event (ud: the state) */
    int (*tail)(chat_stream_t *s); /* after the last event of a complete stream that is not
                                      done (NULL: nothing) */
    buf_t *out;                    /* during a feed or the end */
    int result;                    /* the error that ended the stream, or 0 */
    int done;                      /* nothing more is read */
    int started;                   /* the prefix is written */
    int include_usage;
    int64_t created;
    char model[CHAT_MODEL_MAX + 1]; /* the client's, cut before a UTF-8 sequence */
    char rid[CHAT_RID_MAX + 1];     /* the request id, cut likewise */
    size_t prefix_len;
    char prefix[CHAT_PREFIX_MAX]; /* {"id":..,"object":"chat.completion.chunk","created":N,
                                     "model":.., */
};

/* Clears the size bytes of the pair's state that s begins, copies o's include_usage, created
 * and client_model, and rid (NULL: ""), and keeps on_event and tail (see chat_stream_t). */
void chat_stream_init(chat_stream_t *s, size_t size, const xlate_opts_t *o, const char *rid,
                      sse_event_cb on_event, int (*tail)(chat_stream_t *s));

/* The chunks' head of id (stolen: "chatcmpl-..."); started set. */
int chat_stream_prefix(chat_stream_t *s, json_t *id);

/* data: PREFIX"choices":[{"index":0,"delta":PRE VAL POST,"logprobs":null,"finish_reason":F}]
 * [,"usage":null]}: VAL val dumped (stolen), or, when raw is given, the string raw is the
 * inside of (the fast path's text, as the provider wrote it). The prefix must be written. */
int chat_stream_chunk(chat_stream_t *s, const char *pre, json_t *val, const xfast_span_t *raw,
                      const char *post, const char *finish);

/* The first chunk: delta {"role":"assistant","content":""}. */
int chat_stream_role(chat_stream_t *s);

/* data: PREFIX"choices":[],"usage":USAGE} (usage stolen) */
int chat_stream_usage_chunk(chat_stream_t *s, json_t *usage);

/* data: [DONE]; done set. */
int chat_stream_done(chat_stream_t *s);

/* data: DOC (doc stolen) */
int chat_stream_event(chat_stream_t *s, json_t *doc);

/* The pair's stream_feed, stream_end and stream_free (xlate_pair_t; st: a chat_stream_t
 * that chat_stream_init made): the provider's bytes to s->on_event (a CHAT_STOPPED from it
 * ends the stream well), then s->tail. An event past SSE_EVENT_MAX is XLATE_EBAD; the first
 * error is kept and returned again. */
int chat_stream_feed(void *st, const char *data, size_t len, buf_t *out);
int chat_stream_end(void *st, int complete, buf_t *out);
void chat_stream_free(void *st);

#endif
