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
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api/usage.h"
#include "server/xlate/chat_gemini.h"

#define LOAD (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_xlate_chat_gemini: invariant violated: %s\n", what);
        abort();
    }
}

/* the pair itself (xlate.c's table lists every module's pair; this target links one) */
static const xlate_pair_t *pair(void)
{
    return &xlate_chat_gemini;
}

static int streq(const json_t *v, const char *s)
{
    return json_is_string(v) && strcmp(json_string_value(v), s) == 0;
}

/* mode 0: whole; 1: one byte at a time; 2: pseudo-random pieces of seed */
static int run_stream(const xlate_opts_t *o, const char *in, size_t len, int mode, uint32_t seed,
                      int complete, buf_t *out)
{
    static _Alignas(max_align_t) unsigned char st[1 << 16];
    const xlate_pair_t *p = pair();
    int rc = 0;

    check(p->stream_size <= sizeof(st), "stream state fits");
    p->stream_init(st, o);
    for (size_t off = 0, n; rc == 0 && off < len; off += n) {
        seed = seed * 1103515245u + 12345u;
        n = mode == 0 ? len - off : mode == 1 ? 1 : 1 + (seed >> 8) % (seed & 0x100 ? 7 : 300);
        if (n > len - off)
            n = len - off;
        rc = p->stream_feed(st, in + off, n, out);
    }
    if (rc == 0)
        rc = p->stream_end(st, complete, out);
    p->stream_free(st);
    return rc;
}

static void check_events(const buf_t *out)
{
    const char *s = out->data ? out->data : "";
    size_t off = 0, n = out->len;
    int ended = 0;

    while (off < n) {
        const char *e = memmem(s + off, n - off, "\n\n", 2);
        size_t dl;
        json_t *j;

        check(!ended, "nothing after [DONE] or an error");
        check(e && n - off >= 6 && memcmp(s + off, "data: ", 6) == 0,
              "an event is data: ...\\n\\n");
        dl = (size_t)(e - s) - off - 6;
        check(!memchr(s + off + 6, '\n', dl), "one data line per event");
        if (dl == 6 && memcmp(s + off + 6, "[DONE]", 6) == 0) {
            ended = 1;
        } else {
            j = json_loadb(s + off + 6, dl, LOAD, NULL);
            check(json_is_object(j), "an event's data is a JSON object");
            if (json_object_get(j, "error")) {
                check(json_is_string(json_object_get(json_object_get(j, "error"), "message")),
                      "an error event has a message");
                ended = 1;
            } else {
                check(streq(json_object_get(j, "object"), "chat.completion.chunk") &&
                          json_is_array(json_object_get(j, "choices")),
                      "a chunk is a chat.completion.chunk");
            }
            json_decref(j);
        }
        off = (size_t)(e - s) + 2;
    }
}

static void check_stream(const xlate_opts_t *o, const char *in, size_t len, uint32_t seed,
                         int complete)
{
    buf_t whole = {0}, cut = {0};
    int rc = run_stream(o, in, len, 0, seed, complete, &whole);

    check(rc == 0 || rc == XLATE_EBAD || rc == XLATE_ENOMEM, "stream result");
    if (rc != XLATE_ENOMEM)
        check_events(&whole);
    for (int mode = 1; mode <= 2; mode++) {
        int rc2 = run_stream(o, in, len, mode, seed, complete, &cut);
        if (rc2 != XLATE_ENOMEM && rc != XLATE_ENOMEM) {
            check(rc2 == rc, "the stream result does not depend on the cut");
            check(cut.len == whole.len &&
                      (cut.len == 0 || memcmp(cut.data, whole.data, cut.len) == 0),
                  "the stream output does not depend on the cut");
        }
        buf_reset(&cut);
    }
    buf_free(&whole);
    buf_free(&cut);
}

static void check_request(const xlate_opts_t *o, const char *in, size_t len)
{
    buf_t out = {0};
    xlate_error_t err;
    int rc;

    memset(&err, 0x55, sizeof(err));
    rc = pair()->request(in, len, o, &out, &err);
    check(rc == 0 || rc == XLATE_EREFUSE || rc == XLATE_ENOMEM, "request result");
    if (rc == XLATE_EREFUSE) {
        check(memchr(err.message, 0, sizeof(err.message)) && err.message[0] &&
                  memchr(err.param, 0, sizeof(err.param)),
              "a refusal has a message and a param");
        check(out.len == 0, "a refused request writes nothing");
    } else if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, LOAD, NULL), *msgs, *m, *prev = NULL;
        size_t i;
        json_t *mt = json_object_get(json_object_get(j, "generationConfig"), "maxOutputTokens");
        check(json_is_object(j), "a request is a JSON object");
        check(!mt || (json_integer_value(mt) > 0 &&
                      (!o->max_tokens_cap || json_integer_value(mt) <= o->max_tokens_cap)),
              "maxOutputTokens positive, within the cap");
        msgs = json_object_get(j, "contents");
        check(json_array_size(msgs) > 0, "contents are not empty");
        json_array_foreach(msgs, i, m)
        {
            json_t *role = json_object_get(m, "role");
            check(streq(role, "user") || streq(role, "model"), "a turn's role");
            check(!prev || !json_equal(prev, role), "turns alternate");
            check(json_array_size(json_object_get(m, "parts")) > 0, "a turn has parts");
            prev = role;
        }
        json_decref(j);
    }
    buf_free(&out);
}

static void check_response(const xlate_opts_t *o, const char *in, size_t len)
{
    buf_t out = {0};
    int rc = pair()->response(in, len, o, &out);

    check(rc == 0 || rc == XLATE_EBAD || rc == XLATE_ENOMEM, "response result");
    if (rc == XLATE_EBAD)
        check(out.len == 0, "a bad response writes nothing");
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, LOAD, NULL);
        json_t *c = json_array_get(json_object_get(j, "choices"), 0);
        check(streq(json_object_get(j, "object"), "chat.completion"), "a chat.completion");
        check(streq(json_object_get(json_object_get(c, "message"), "role"), "assistant"),
              "an assistant message");
        json_decref(j);
    }
    buf_free(&out);
}

static void check_error(int status, const char *in, size_t len)
{
    buf_t out = {0};
    int st = -1, rc = pair()->error(status, in, len, &out, &st);

    check(rc == 0 || rc == XLATE_ENOMEM, "error result");
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, LOAD, NULL);
        check(json_is_string(json_object_get(json_object_get(j, "error"), "message")),
              "an error body has error.message");
        check(st == status || (st == 502 && status == 400), "the error status");
        json_decref(j);
    }
    buf_free(&out);
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
    static const int statuses[] = {400, 401, 403, 404, 429, 500, 503, 504};
    xlate_opts_t o = {
        .model = "gemini-2.5-flash",
        .client_model = "gpt-4o",
        .created = 1700000000,
        .request_id = "req-fuzz",
    };

    if (size < 3)
        return 0;
    o.include_usage = data[0] & 1;
    o.stream = (data[0] >> 2) & 1;
    o.max_tokens_cap = data[1];
    const char *in = (const char *)data + 3;
    size_t len = size - 3;
    uint32_t seed = (uint32_t)data[1] << 8 | data[2];

    check_stream(&o, in, len, seed, (data[0] >> 1) & 1);
    check_request(&o, in, len);
    check_response(&o, in, len);
    check_error(statuses[(data[0] >> 3) & 7], in, len);
    check_path(&o, in, len);
    check_usage(in, len, seed, o.stream);
    return 0;
}
