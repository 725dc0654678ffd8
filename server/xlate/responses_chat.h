/* responses_chat.h - OpenAI Responses API clients (Codex CLI, the Vercel AI SDK's default
 * provider, client.responses.create) served by a chat-completions provider (api:
 * openai-chat: DeepSeek, a relay), statelessly: the pair xlate_responses_chat (xlate.h; what
 * is translated, dropped and refused is in the design note of responses_chat.c) and what
 * its three files share. Pure, any thread, but a stream (one thread).
 */
#ifndef LLMGATE_XLATE_RESPONSES_CHAT_H
#define LLMGATE_XLATE_RESPONSES_CHAT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "server/xlate/chat_up.h"
#include "server/xlate/xlate.h"

extern const xlate_pair_t xlate_responses_chat;

/* ---- between the module's files (other modules reach them through the pair) ---------- */

/* The stream state's bytes (checked against the struct in responses_chat_stream.c). */
#define XLATE_RC_STREAM_SIZE 6144
/* Output items of one answer (text messages and function calls), at most: past it, an
 * answer is XLATE_EBAD (a stream's state is bounded). */
#define XLATE_RC_ITEMS_MAX 64
/* The text and arguments a stream keeps to repeat them in its *.done events and in
 * response.completed (the protocol repeats them whole), at most: past it the stream fails
 * (response.failed and error events). 4 MiB is about a million tokens of output, beyond
 * any model's output cap. */
#define XLATE_RC_KEEP_MAX (4u << 20)

/* Responses' usage object of x (a chat completion's, chat_up.h). NULL: no memory. */
json_t *xlate_rc_usage_json(const chat_up_usage_t *x);

/* The members of the client's request a response object echoes (instructions, tools,
 * tool_choice, temperature, ...), as an object; NULL: no memory. A body that is not a JSON
 * object gives the defaults. */
json_t *xlate_rc_echo(const char *body, size_t len);

/* A response object: id, object, created_at, status, the echo's members, model, output (an
 * empty array), usage (null), error and incomplete_details (null). NULL: no memory. */
json_t *xlate_rc_object(const char *id, int64_t created, const char *model, const char *status,
                        const json_t *echo);

/* prefix + the request id (characters a path id may not hold become '_') + "_" + n when
 * n >= 0, into out[cap] (cut to fit). */
void xlate_rc_made_id(char *out, size_t cap, const char *prefix, const char *request_id,
                      long long n);

/* A finish_reason (enum chat_up_finish) that makes a response incomplete -> its
 * incomplete_details.reason (length -> max_output_tokens, content_filter); NULL for the
 * others. */
const char *xlate_rc_incomplete_reason(int finish);

int xlate_rc_response(const char *body, size_t len, const xlate_opts_t *o, buf_t *out);
int xlate_rc_error(int status, const char *body, size_t len, buf_t *out, int *status_out);
void xlate_rc_stream_init(void *st, const xlate_opts_t *o);
int xlate_rc_stream_feed(void *st, const char *data, size_t len, buf_t *out);
int xlate_rc_stream_end(void *st, int complete, buf_t *out);
void xlate_rc_stream_free(void *st);

#endif
