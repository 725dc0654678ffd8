/* chat_gemini.h - OpenAI chat completions clients served by a provider that speaks Google's
 * Gemini API natively (api: gemini): the pair xlate_chat_gemini (xlate.h), and what its
 * files share. Only xlate.c, the module's own files and its tests include it.
 *
 * Design note
 * -----------
 * The request (chat_gemini_req.c) becomes a GenerateContentRequest; its path names the
 * model and the method (chat_gemini_path: /models/{model}:generateContent, or
 * :streamGenerateContent?alt=sse for a stream), so the pair has upstream_path_of. The answer
 * and its errors (chat_gemini.c) become a chat.completion and OpenAI's error shape; the
 * stream (chat_gemini_stream.c) becomes chat.completion.chunk events, one Gemini chunk (a
 * whole GenerateContentResponse per "data:" line, no [DONE]) at a time. Usage is billed from
 * the provider's bytes by api_gemini (api/gemini.c: usageMetadata). Every document is read
 * and built with jansson (duplicate members refused); what each part translates, drops and
 * refuses is listed at the top of its file. The chat side is shared with the Anthropic pair:
 * the request is read and validated by chat_in.h (with Gemini's name in the refusals), the
 * answers, errors and chunks are written by chat_out.h.
 *
 * Ids: Gemini gives function calls no ids (or, on newer models, its own "id": kept then);
 * the tool call ids made up are "call_" + the request id + "_" + the call's index in the
 * answer, so the same answer always has the same ids. A later request's tool messages name
 * their function through the assistant message that holds the id (Gemini wants the name in
 * functionResponse, OpenAI sends only the id).
 *
 * Memory: a request or an answer is one jansson document for the call; a stream holds the
 * reader's one event (sse.h) and a fixed state (cg_stream_t, which begins with chat_out.h's
 * chat_stream_t).
 */
#ifndef LLMGATE_XLATE_CHAT_GEMINI_H
#define LLMGATE_XLATE_CHAT_GEMINI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "server/common/buf.h"
#include "server/xlate/chat_out.h"
#include "server/xlate/xlate.h"

extern const xlate_pair_t xlate_chat_gemini;

/* How every document is read: duplicate members refused, "\u0000" in strings allowed. */
#define CG_JSON_LOAD (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* ---- the pair's functions (xlate_pair_t) -------------------------------------------- */

int chat_gemini_request(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                        xlate_error_t *err);

/* "/models/" + o->model (a leading "models/" taken off, bytes outside [A-Za-z0-9._~-]
 * percent-encoded) + ":generateContent", or ":streamGenerateContent?alt=sse" when o->stream.
 * 0, or -1 if it does not fit out[cap]. */
int chat_gemini_path(const xlate_opts_t *o, char *out, size_t cap);

typedef struct cg_stream_s {
    chat_stream_t h; /* first: the reader, the copies, the chunks' head (chat_out.h) */
    int finished;    /* the finish_reason chunk is written: the end brings usage and [DONE] */
    int ncalls;      /* function calls so far (their indexes) */
    json_int_t prompt, cached, cand, thoughts; /* the last usageMetadata's counts */
    json_int_t tool_prompt, total;
} cg_stream_t;

void chat_gemini_stream_init(void *st, const xlate_opts_t *o);
/* stream_feed, stream_end, stream_free: chat_out.h's */

/* ---- shared (chat_gemini.c) --------------------------------------------------------- */

/* OpenAI's finish_reason of a candidate's finishReason (a string, or NULL); calls: the
 * candidate made function calls (then STOP, or none, is tool_calls). */
const char *cg_finish_reason(const json_t *finish, int calls);

/* OpenAI's usage object of Gemini's counts: prompt = prompt + tool-use prompt, completion =
 * candidates + thoughts, total (Gemini's when given, else the sum), cached and reasoning
 * details. NULL: no memory. */
json_t *cg_usage_doc(json_int_t prompt, json_int_t tool_prompt, json_int_t cached, json_int_t cand,
                     json_int_t thoughts, json_int_t total);

/* The tool call of a functionCall part fc ({name, args, id?}), the k-th of the answer (its id
 * fc's own, else "call_" + rid + "_" + k); NULL: no memory; *bad set when fc has no string
 * name. */
json_t *cg_tool_call(const json_t *fc, const char *rid, int k, int *bad);

/* A JSON string of s[0..n); bytes that are not UTF-8 become U+FFFD. NULL: no memory. */
json_t *cg_string_lossy(const char *s, size_t n);

/* {"error":{"message","type","param":null,"code"}} of an OpenAI type and code (NULL: null).
 * NULL: no memory. */
json_t *cg_error_doc(const char *type, const char *code, const json_t *message);

#endif
