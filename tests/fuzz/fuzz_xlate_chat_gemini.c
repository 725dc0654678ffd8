/* fuzz_xlate_chat_gemini.c - OpenAI chat clients on a Gemini provider
 * (server/xlate/chat_gemini*.c): the stream translation of provider bytes cut anywhere, the
 * request, response and error translations of any bytes, and Gemini's usage reader
 * (server/api/gemini.c) over the same bytes.
 *
 * Input: byte 0 holds options (bit 0 include_usage, bit 1 the stream ends complete, bit 2
 * stream, bits 3-5 the provider's error status); byte 1 the deployment's max tokens cap;
 * bytes 1-2 seed the chunking; the rest is the bytes, given to all of them. Checked:
 *   - stream: the result and the output do not depend on how the bytes were cut into feeds
 *     (whole, one byte at a time, pseudo-random pieces); the output is events
 *     "data: <JSON object>\n\n" or "data: [DONE]\n\n", nothing after [DONE] or after an
 *     error object, every other object a chat.completion.chunk; the result is 0, XLATE_EBAD
 *     or XLATE_ENOMEM;
 *   - request: 0 and a JSON object with a non-empty contents array whose turns alternate
 *     user / model with non-empty parts, maxOutputTokens (when there) positive and within
 *     the cap; or XLATE_EREFUSE with a non-empty message and out untouched;
 *   - the path: /models/...:generateContent or :streamGenerateContent?alt=sse;
 *   - response: 0 and a chat.completion object with one assistant choice, or XLATE_EBAD and
 *     out untouched;
 *   - error: 0 and an {"error":{"message":string,...}} object; the status stays, but 502 for
 *     API_KEY_INVALID;
 *   - usage: the same counts whatever the cut, output >= reasoning.
 */
#define CHAT_FUZZ_NAME "fuzz_xlate_chat_gemini"
#define CHAT_FUZZ_PAIR xlate_chat_gemini

#include "server/api/usage.h"
#include "server/xlate/chat_gemini.h"
#include "chat_fuzz.h"

static void check_doc(const xlate_opts_t *o, const json_t *j)
{
    json_t *mt = json_object_get(json_object_get(j, "generationConfig"), "maxOutputTokens");

    check(!mt || (json_integer_value(mt) > 0 &&
                  (!o->max_tokens_cap || json_integer_value(mt) <= o->max_tokens_cap)),
          "maxOutputTokens positive, within the cap");
}

static int status_ok(int status, int st)
{
    return st == status || (st == 502 && status == 400);
}

static void check_path(const xlate_opts_t *o, const char *in, size_t len)
{
    char model[64], path[256];
    size_t n = len < sizeof(model) - 1 ? len : sizeof(model) - 1;
    xlate_opts_t p = *o;

    memcpy(model, in, n);
    model[n] = '\0';
    p.model = model;
    check(chat_gemini_path(&p, path, sizeof(path)) == 0, "a path of 63 bytes fits");
    check(strncmp(path, "/models/", 8) == 0 && !strchr(path + 8, '/') &&
              (o->stream ? strstr(path, ":streamGenerateContent?alt=sse") != NULL
                         : strchr(path, '?') == NULL),
          "the path is /models/<one segment>:method");
}

static void check_usage(const char *in, size_t len, uint32_t seed, int stream)
{
    static usage_tail_t whole, cut;
    usage_t a, b;
    int fa, fb;

    usage_tail_reset(&whole);
    usage_tail_reset(&cut);
    usage_tail_feed(&whole, in, len);
    for (size_t off = 0, n; off < len; off += n) {
        seed = seed * 1103515245u + 12345u;
        n = 1 + (seed >> 8) % (seed & 0x100 ? 64 : USAGE_TAIL + 100);
        if (n > len - off)
            n = len - off;
        usage_tail_feed(&cut, in + off, n);
    }
    fa = api_gemini.usage(&whole, stream, &a);
    fb = api_gemini.usage(&cut, stream, &b);
    check(fa == fb && (!fa || memcmp(&a, &b, sizeof(a)) == 0), "usage does not depend on the cut");
    check(!fa || a.output >= a.reasoning, "output includes the reasoning");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const chat_fuzz_t f = {
        check_doc, "contents", "model",
        "parts",   status_ok,  {400, 401, 403, 404, 429, 500, 503, 504},
    };
    xlate_opts_t o = {
        .model = "gemini-2.5-flash",
        .client_model = "gpt-4o",
        .created = 1700000000,
        .request_id = "req-fuzz",
    };

    if (size < 3)
        return 0;
    o.max_tokens_cap = data[1];
    check_all(&f, &o, data, size);
    check_path(&o, (const char *)data + 3, size - 3);
    check_usage((const char *)data + 3, size - 3, (uint32_t)data[1] << 8 | data[2], o.stream);
    return 0;
}
