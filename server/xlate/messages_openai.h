/* messages_openai.h - Anthropic Messages clients served by an OpenAI-compatible chat
 * completions provider: the pair (see xlate.h and the design note of messages_openai.c) and
 * the local token estimate of POST /v1/messages/count_tokens.
 *
 * OpenAI-compatible providers have no endpoint that counts a request's tokens, so a
 * count_tokens request routed to one is answered by the gateway with
 * {"input_tokens": N}, N from xlate_messages_count_estimate. It is an ESTIMATE, not the
 * provider's tokenizer: the characters (Unicode code points) of every text of the request -
 * the system prompt, the messages' text, thinking, tool_use names and inputs (compact JSON),
 * tool results, plain-text documents, and the tool definitions as compact JSON - divided by 4
 * and rounded up, plus XLATE_ESTIMATE_IMAGE_TOKENS per image or non-text document (their
 * size is not known without decoding them). English prose and code come out within about
 * 20% of real tokenizers; dense scripts (CJK) are under-counted.
 * Pure, any thread.
 */
#ifndef LLMGATE_XLATE_MESSAGES_OPENAI_H
#define LLMGATE_XLATE_MESSAGES_OPENAI_H

#include <stddef.h>
#include <stdint.h>

#include "server/xlate/xlate.h"

/* About what one large image costs at Anthropic ((1092 x 1092 px) / 750). */
#define XLATE_ESTIMATE_IMAGE_TOKENS 1600u

extern const xlate_pair_t xlate_messages_openai;

/* The estimated input tokens of a Messages (or count_tokens) body: 0 and *tokens set
 * (capped at UINT32_MAX); XLATE_EREFUSE when the body is not a JSON object (*tokens 0);
 * XLATE_ENOMEM. */
int xlate_messages_count_estimate(const char *body, size_t len, uint32_t *tokens);

/* ---- between the module's two files (other modules reach them through the pair) ------ */

/* The stream state's bytes (checked against the struct in messages_openai_answer.c). */
#define XLATE_MO_STREAM_SIZE 1280

int xlate_mo_response(const char *body, size_t len, const xlate_opts_t *o, buf_t *out);
int xlate_mo_error(int status, const char *body, size_t len, buf_t *out, int *status_out);
/* the stream is fed by chat_up_stream_feed (chat_up.h) */
void xlate_mo_stream_init(void *st, const xlate_opts_t *o);
int xlate_mo_stream_end(void *st, int complete, buf_t *out);
void xlate_mo_stream_free(void *st);

#endif
