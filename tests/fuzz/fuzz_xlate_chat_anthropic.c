/* fuzz_xlate_chat_anthropic.c - OpenAI chat clients on an Anthropic provider
 * (server/xlate/chat_anthropic*.c): the stream translation of provider bytes cut anywhere, and
 * the request, response and error translations of any bytes.
 *
 * Input: byte 0 holds options (bit 0 include_usage, bit 1 the stream ends complete, bit 2
 * stream, bits 3-5 the provider's error status); bytes 1-2 seed the chunking; the rest is
 * the bytes, given to all four translations. Checked:
 *   - stream: the result and the output do not depend on how the bytes were cut into feeds
 *     (whole, one byte at a time, pseudo-random pieces); the output is events
 *     "data: <JSON object>\n\n" or "data: [DONE]\n\n", nothing after [DONE] or after an
 *     error object, every other object a chat.completion.chunk; the result is 0, XLATE_EBAD
 *     or XLATE_ENOMEM; with the fast path off (xfast.h) the result and the events are the
 *     same (the JSON compared as values);
 *   - request: 0 and a JSON object with the deployment's model, a positive max_tokens and a
 *     non-empty messages array whose turns alternate user / assistant with non-empty
 *     content; or XLATE_EREFUSE with a non-empty message and out untouched;
 *   - response: 0 and a chat.completion object with one assistant choice, or XLATE_EBAD and
 *     out untouched;
 *   - error: 0 and an {"error":{"message":string,...}} object; 529 becomes 503, other
 *     statuses stay.
 */
#define CHAT_FUZZ_NAME "fuzz_xlate_chat_anthropic"
#define CHAT_FUZZ_PAIR xlate_chat_anthropic
#define CHAT_FUZZ_FAST

#include "server/xlate/chat_anthropic.h"
#include "chat_fuzz.h"

static void check_doc(const xlate_opts_t *o, const json_t *j)
{
    check(streq(json_object_get(j, "model"), o->model), "the deployment's model");
    check(json_integer_value(json_object_get(j, "max_tokens")) > 0, "a positive max_tokens");
}

static int status_ok(int status, int st)
{
    return st == (status == 529 ? 503 : status);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const chat_fuzz_t f = {
        check_doc, "messages", "assistant",
        "content", status_ok,  {400, 401, 403, 404, 429, 500, 529, 502},
    };
    xlate_opts_t o = {
        .model = "claude-sonnet-4-5-20250929",
        .client_model = "gpt-4o",
        .created = 1700000000,
        .request_id = "req-fuzz",
    };

    if (size < 3)
        return 0;
    o.default_max_tokens = data[1];
    check_all(&f, &o, data, size);
    return 0;
}
