/* chat_up.h - the chat-completions provider's side of the pairs that serve other APIs on
 * it (xlate/messages_openai*: Anthropic Messages clients; xlate/responses_chat*: Responses
 * API clients): what both write of the upstream /chat/completions request and read of its
 * chat.completion answer and chat.completion.chunk stream. Each pair keeps its client's
 * side (its messages, its events, its refusals' words); this module knows nothing of it.
 *
 * Design note
 * -----------
 * Request: a pair parses the client's body (chat_up_parse), opens the upstream document
 * with its model and an empty messages array (chat_up_open), fills the messages with
 * chat_up_push_msg / chat_up_call / chat_up_image, sets the members in the order the
 * provider's golden requests show (chat_up_params: max_tokens, temperature, top_p; then
 * the pair's own; chat_up_tool for each function tool, chat_up_choose for a named tool),
 * and ends with chat_up_close: "stream": true and "stream_options": {"include_usage":
 * true} for a stream (always: billing needs usage), the compact JSON appended. No
 * max_tokens is made up when the client sent none: chat providers do not require it.
 *
 * Answer: usage (prompt, completion, cached - prompt_tokens_details.cached_tokens, else
 * DeepSeek's prompt_cache_hit_tokens, never more than prompt - and reasoning tokens), the
 * finish_reason's kind (enum chat_up_finish), the tool calls of choices[0].message.
 *
 * Stream: chat_up_stream_t is the first member of a pair's stream state; it holds the SSE
 * reader, what init copies of the options (the client's model name, the request id), the
 * flags every such stream has, the last finish_reason and the usage. The module reads
 * each event: the [DONE] check, the chunk parsed by jansson and checked (a data line that
 * is not a JSON object, choices not an array, a choice or delta not an object, content
 * not a string, tool_calls not an array, a tool call not an object or its arguments not a
 * string: XLATE_EBAD), an "error" object, choices other than index 0 ignored, the usage of
 * the include_usage chunk (or the last chunk with one) kept; and it calls the pair's
 * chat_up_client_t for what the client sees. What an event gives out is all or nothing:
 * on an error the output goes back to where the event began. sse.h's own -1 (an event
 * past SSE_EVENT_MAX, or no memory) is taken for the provider's fault: XLATE_EBAD, and
 * every later feed returns it.
 *
 * Errors: 0, XLATE_EREFUSE (request: err says why), XLATE_EBAD, XLATE_ENOMEM (xlate.h).
 * Ownership as in xlate.h: output appended to the caller's buf_t; json_t arguments are
 * borrowed unless "steals" is said. Threads: a stream belongs to one thread; the rest is
 * pure.
 */
#ifndef LLMGATE_XLATE_CHAT_UP_H
#define LLMGATE_XLATE_CHAT_UP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "server/common/buf.h"
#include "server/xlate/sse.h"
#include "server/xlate/xlate.h"

/* ---- the request ----------------------------------------------------------------------- */

/* err zeroed; *in = body parsed, a JSON object (the caller's to json_decref), or a refusal
 * ("request body: not valid JSON (...)", "request body: must be a JSON object"). */
int chat_up_parse(const char *body, size_t len, xlate_error_t *err, json_t **in);

/* *req = {"model": o->model (else the client's "model"), "messages": []} (the caller's to
 * json_decref, also after an error), *msgs = its messages (borrowed). XLATE_EREFUSE ("model"
 * required), XLATE_ENOMEM. */
int chat_up_open(const json_t *in, const xlate_opts_t *o, xlate_error_t *err, json_t **req,
                 json_t **msgs);

/* Appends {"role": role, "content": content} to msgs; steals content. */
int chat_up_push_msg(json_t *msgs, const char *role, json_t *content);

/* A user message's content parts (steals parts): one text part alone becomes its text, a
 * plain string; else the array as it is. */
json_t *chat_up_user_content(json_t *parts);

/* A tool call of an assistant message: {"id","type":"function","function":{"name",
 * "arguments"}}; steals arguments (a JSON string). NULL: no memory. */
json_t *chat_up_call(const json_t *id, const json_t *name, json_t *arguments);

/* An image content part {"type":"image_url","image_url":{"url"[,"detail"]}}; steals url (a
 * JSON string); detail NULL: none. NULL: no memory. */
json_t *chat_up_image(json_t *url, const json_t *detail);

/* The client's max_key (an integer, or absent / null) -> max_tokens, lowered to
 * o->max_tokens_cap; then temperature and top_p (numbers) as they came. Refusals name the
 * member: "must be an integer", "must be a number". */
int chat_up_params(const json_t *in, const char *max_key, const xlate_opts_t *o, json_t *req,
                   xlate_error_t *err);

/* Appends {"type":"function","function":{"name", then each of description, parameters,
 * strict that is not NULL}} to tools. */
int chat_up_tool(json_t *tools, const json_t *name, const json_t *description,
                 const json_t *parameters, const json_t *strict);

/* tool_choice naming one function: {"type":"function","function":{"name"}}. NULL: no
 * memory. */
json_t *chat_up_choose(const json_t *name);

/* The end of a request: the stream members when o->stream, then req appended to out as
 * compact JSON. */
int chat_up_close(json_t *req, const xlate_opts_t *o, buf_t *out);

/* ---- the answer ------------------------------------------------------------------------ */

typedef struct chat_up_usage_s {
    uint64_t prompt, completion, cached, reasoning;
    int seen; /* a usage object was read */
} chat_up_usage_t;

/* Reads a chat "usage" object into x (negative or missing counts: 0); u not an object:
 * x as it was. */
void chat_up_read_usage(const json_t *u, chat_up_usage_t *x);

enum chat_up_finish {
    CHAT_UP_FINISH_NONE,   /* no finish_reason (yet) */
    CHAT_UP_FINISH_STOP,   /* stop, and what other providers say for an end (eos, ...) */
    CHAT_UP_FINISH_LENGTH, /* length */
    CHAT_UP_FINISH_TOOLS,  /* tool_calls, function_call */
    CHAT_UP_FINISH_FILTER  /* content_filter */
};

/* The kind of a finish_reason (NULL: CHAT_UP_FINISH_NONE). */
int chat_up_finish_of(const char *finish_reason);

/* A chat.completion answer, read. */
typedef struct chat_up_answer_s {
    json_t *doc;           /* the completion (chat_up_answer_free) */
    const json_t *message; /* choices[0].message: an object */
    int finish;            /* enum chat_up_finish of choices[0].finish_reason */
    chat_up_usage_t usage;
} chat_up_answer_t;

/* 0, or XLATE_EBAD when the body is not a JSON object with choices[0].message an object;
 * a->doc is set either way (NULL if unparsed): chat_up_answer_free. */
int chat_up_answer(const char *body, size_t len, chat_up_answer_t *a);
void chat_up_answer_free(chat_up_answer_t *a);

/* The model name an answer carries: the client's (o->client_model), else the answer's
 * own, else "". Borrowed. */
const char *chat_up_answer_model(const chat_up_answer_t *a, const xlate_opts_t *o);

/* For each of message.tool_calls (absent or null: none), cb with its position, its id (may
 * be NULL or not a string), its function's name (a string) and arguments (anything, or
 * NULL); stops at cb's non-zero result, which it returns. XLATE_EBAD: tool_calls not an
 * array, or a call without its name. */
typedef int (*chat_up_call_cb)(void *ud, size_t i, const json_t *id, const json_t *name,
                               const json_t *arguments);
int chat_up_calls(const json_t *message, chat_up_call_cb cb, void *ud);

/* ---- the stream ------------------------------------------------------------------------ */

struct chat_up_stream_s;

/* What a pair does with the stream's chunks, for its client (each hook writes to out and
 * returns 0 or XLATE_E*). */
typedef struct chat_up_client_s {
    /* One event's data: the pair's own reading first, if any (a fast path), then
     * chat_up_chunk. NULL: chat_up_chunk alone. */
    int (*event)(struct chat_up_stream_s *s, const char *data, size_t len, buf_t *out);
    /* The first chunk that is not [DONE] nor an error (its id may name the message). */
    int (*start)(struct chat_up_stream_s *s, const json_t *chunk, buf_t *out);
    /* A non-empty content delta (a JSON string). */
    int (*text)(struct chat_up_stream_s *s, const json_t *text, buf_t *out);
    /* A tool-call delta: its index (tool_calls[].index, else its position), id, function
     * name (each may be NULL or not a string) and arguments (NULL, null or a string). */
    int (*tool)(struct chat_up_stream_s *s, long long index, const json_t *id, const json_t *name,
                const json_t *arguments, buf_t *out);
    /* A finish_reason came (s->finish has its kind): close what is open. */
    int (*close)(struct chat_up_stream_s *s, buf_t *out);
    /* [DONE]. */
    int (*done)(struct chat_up_stream_s *s, buf_t *out);
    /* A chunk with an "error" object (doc: the chunk). */
    int (*error)(struct chat_up_stream_s *s, const json_t *doc, buf_t *out);
} chat_up_client_t;

#define CHAT_UP_REQUEST_ID_MAX 136 /* x-request-id: at most 128 */

typedef struct chat_up_stream_s {
    sse_reader_t sse;
    const chat_up_client_t *client;
    char model[256];                         /* the client's model name (cut if longer) */
    char request_id[CHAT_UP_REQUEST_ID_MAX]; /* for ids the provider did not give */
    int started;                             /* the client's first events sent (the hooks set it) */
    int ended;  /* a last event sent: later events are ignored (the hooks set it) */
    int failed; /* XLATE_EBAD returned: every later feed returns it */
    int finish; /* enum chat_up_finish: the last finish_reason */
    chat_up_usage_t usage;
} chat_up_stream_t;

/* s zeroed, the reader ready, client kept; the model name (o->client_model, else o->model)
 * and the request id copied, the latter cut to request_id_max (<= CHAT_UP_REQUEST_ID_MAX)
 * bytes with its NUL. */
void chat_up_stream_init(chat_up_stream_t *s, const chat_up_client_t *client, const xlate_opts_t *o,
                         size_t request_id_max);

/* One chunk's data (what an event hook calls after its own reading). */
int chat_up_chunk(chat_up_stream_t *s, const char *data, size_t len, buf_t *out);

/* xlate_pair_t.stream_feed, for a state whose first member is a chat_up_stream_t. */
int chat_up_stream_feed(void *st, const char *data, size_t len, buf_t *out);

/* The provider's stream ended complete: an event it left without its blank line is read
 * (the caller checks s->failed first). */
int chat_up_stream_drain(chat_up_stream_t *s, buf_t *out);

void chat_up_stream_free(chat_up_stream_t *s);

#endif
