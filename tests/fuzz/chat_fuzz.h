/* chat_fuzz.h - what the fuzz targets of the chat pairs (fuzz_xlate_chat_anthropic.c,
 * fuzz_xlate_chat_gemini.c) share: the stream run whole, a byte at a time and in
 * pseudo-random pieces, its events checked (and, with CHAT_FUZZ_FAST defined, compared with
 * the fast path off: sse_same.h); a request's result, refusal or turns; a response's and an
 * error's shape. A target defines CHAT_FUZZ_NAME (its name, for the message of a violated
 * invariant) and CHAT_FUZZ_PAIR (the pair itself: xlate.c's table lists every module's pair,
 * a target links one) before including it. Header-only: each target is one program. */
#ifndef LLMGATE_FUZZ_CHAT_FUZZ_H
#define LLMGATE_FUZZ_CHAT_FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/xlate/xlate.h"
#ifdef CHAT_FUZZ_FAST
#include "server/xlate/xfast.h"
#include "sse_same.h"
#endif

#define LOAD (JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL)

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, CHAT_FUZZ_NAME ": invariant violated: %s\n", what);
        abort();
    }
}

static const xlate_pair_t *pair(void)
{
    return &CHAT_FUZZ_PAIR;
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
#ifdef CHAT_FUZZ_FAST
    xfast_enable(0); /* jansson alone reads every event: the same result, the same events */
    int rc3 = run_stream(o, in, len, 0, seed, complete, &cut);
    xfast_enable(1);
    if (rc3 != XLATE_ENOMEM && rc != XLATE_ENOMEM) {
        check(rc3 == rc, "the fast path does not change the stream's result");
        check(sse_same(whole.data, whole.len, cut.data, cut.len, LOAD),
              "the fast path does not change the stream's events");
    }
#endif
    buf_free(&whole);
    buf_free(&cut);
}

/* The request of in: refused with a message and a param and nothing written, or a JSON
 * object that check_doc accepts whose turns (the array turns_key, each {role, blocks_key})
 * are not empty, alternate between user and assistant_role, and each have blocks. */
static void check_request(const xlate_opts_t *o, const char *in, size_t len,
                          void (*check_doc)(const xlate_opts_t *o, const json_t *j),
                          const char *turns_key, const char *assistant_role, const char *blocks_key)
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
        check(json_is_object(j), "a request is a JSON object");
        check_doc(o, j);
        msgs = json_object_get(j, turns_key);
        check(json_array_size(msgs) > 0, "the turns are not empty");
        json_array_foreach(msgs, i, m)
        {
            json_t *role = json_object_get(m, "role");
            check(streq(role, "user") || streq(role, assistant_role), "a turn's role");
            check(!prev || !json_equal(prev, role), "turns alternate");
            check(json_array_size(json_object_get(m, blocks_key)) > 0, "a turn has blocks");
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

/* status_ok: whether st is the client's status of the provider's status */
static void check_error(int status, const char *in, size_t len, int (*status_ok)(int, int))
{
    buf_t out = {0};
    int st = -1, rc = pair()->error(status, in, len, &out, &st);

    check(rc == 0 || rc == XLATE_ENOMEM, "error result");
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, LOAD, NULL);
        check(json_is_string(json_object_get(json_object_get(j, "error"), "message")),
              "an error body has error.message");
        check(status_ok(status, st), "the error status");
        json_decref(j);
    }
    buf_free(&out);
}

/* What a target checks that its pair differs in. */
typedef struct chat_fuzz_s {
    void (*check_doc)(const xlate_opts_t *o, const json_t *j); /* a request's own members */
    const char *turns_key, *assistant_role, *blocks_key;       /* its turns (check_request) */
    int (*status_ok)(int status, int st);                      /* its error statuses */
    int statuses[8];                                           /* the provider's, to try */
} chat_fuzz_t;

/* The input (size >= 3): byte 0 holds options (bit 0 include_usage, bit 1 the stream ends
 * complete, bit 2 stream, bits 3-5 the provider's error status, of f->statuses); bytes 1-2
 * seed the chunking (o may take byte 1 for its own option before); the rest is the bytes,
 * given to the stream, the request, the response and the error. */
static void check_all(const chat_fuzz_t *f, xlate_opts_t *o, const uint8_t *data, size_t size)
{
    const char *in = (const char *)data + 3;
    size_t len = size - 3;
    uint32_t seed = (uint32_t)data[1] << 8 | data[2];

    o->include_usage = data[0] & 1;
    o->stream = (data[0] >> 2) & 1;
    check_stream(o, in, len, seed, (data[0] >> 1) & 1);
    check_request(o, in, len, f->check_doc, f->turns_key, f->assistant_role, f->blocks_key);
    check_response(o, in, len);
    check_error(f->statuses[(data[0] >> 3) & 7], in, len, f->status_ok);
}

#endif
