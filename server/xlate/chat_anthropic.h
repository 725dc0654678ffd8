/* chat_anthropic.h - OpenAI chat completions clients served by an Anthropic-native provider
 * (api: anthropic): the pair xlate_chat_anthropic (xlate.h), and what its files share. Only
 * xlate.c and the module's own files include it.
 *
 * Design note
 * -----------
 * The request (chat_anthropic_req.c) becomes a Messages body for /messages; the answer and
 * its errors (chat_anthropic.c) become a chat.completion and OpenAI's error shape; the stream
 * (chat_anthropic_stream.c) becomes chat.completion.chunk events, one provider event at a
 * time. Every document is parsed and built with jansson: duplicate members are refused, NUL
 * bytes in strings kept ("\u0000"), member order kept, and reals written back with the fewest
 * digits (15 to 17, per document) that read back as the same doubles. What each part
 * translates, drops and refuses is listed at the top of its file. The chat side, which the
 * Gemini pair reads and writes the same way, is shared: the request is read and validated by
 * chat_in.h (with Anthropic's name in the refusals), the answers, errors and chunks are
 * written by chat_out.h.
 *
 * Memory: a request or an answer is one jansson document for the call; a stream holds the
 * reader's one event (sse.h) and a fixed state (ca_stream_t, which begins with chat_out.h's
 * chat_stream_t): the chunks' common head is written once, at message_start, and every chunk
 * is that head plus its delta.
 */
#ifndef LLMGATE_XLATE_CHAT_ANTHROPIC_H
#define LLMGATE_XLATE_CHAT_ANTHROPIC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "server/common/buf.h"
#include "server/xlate/chat_out.h"
#include "server/xlate/xlate.h"

extern const xlate_pair_t xlate_chat_anthropic;

/* How every document is read: duplicate members refused, "\u0000" in strings allowed. */
#define CA_JSON_LOAD (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

/* ---- the pair's functions (xlate_pair_t) -------------------------------------------- */

int chat_anthropic_request(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                           xlate_error_t *err);

typedef struct ca_stream_s {
    chat_stream_t h;      /* first: the reader, the copies, the chunks' head (chat_out.h) */
    long long tool_block; /* the Anthropic index of the open tool_use block, or -1 */
    int tool_k;           /* its tool call index */
    int ntools;           /* tool_use blocks so far */
    json_int_t in, cache_write, cache_read, out_tokens;
} ca_stream_t;

void chat_anthropic_stream_init(void *st, const xlate_opts_t *o);
/* stream_feed, stream_end, stream_free: chat_out.h's */

/* ---- shared (chat_anthropic.c) ------------------------------------------------------ */

/* Appends j compactly to out, reals with the fewest digits (15 to 17) that read back as the
 * same doubles. 0, or -1 with out as it was (no memory). */
int ca_dump(buf_t *out, const json_t *j);

/* A JSON string of s[0..n); bytes that are not UTF-8 become U+FFFD. NULL: no memory. */
json_t *ca_string_lossy(const char *s, size_t n);

/* "chatcmpl-" + id[0..n), the id cut to max bytes (never inside a UTF-8 sequence). */
json_t *ca_chat_id(const char *id, size_t n, size_t max);

/* OpenAI's finish_reason of Anthropic's stop_reason (a string, or NULL / null). */
const char *ca_finish_reason(const json_t *stop_reason);

/* OpenAI's usage object of Anthropic's counts (prompt = in + cache writes + cache reads). */
json_t *ca_usage_doc(json_int_t in, json_int_t cache_write, json_int_t cache_read, json_int_t out);

/* {"error":{"message","type","param":null,"code"}} of Anthropic's error type atype (a string;
 * NULL: the type from the status, code null) and message (a string). NULL: no memory. */
json_t *ca_error_doc(const json_t *atype, const json_t *message, int status);

#endif
