/* xlate_fuzz.h - for the translation pairs' fuzz targets (fuzz_xlate_*): the checks they all
 * make, over a pair (xlate.h) and the same input bytes: the stream fed whole and cut
 * anywhere (the same result and bytes), each event's "event: NAME\ndata: JSON\n\n" frame,
 * a request translated or refused, a response translated or XLATE_EBAD, an error body
 * translated. What a client API's events must follow stays in each target.
 * Header-only: each target is one program; it defines XLATE_FUZZ_NAME (its name, for the
 * message of a violated invariant) before including this. */
#ifndef LLMGATE_FUZZ_XLATE_FUZZ_H
#define LLMGATE_FUZZ_XLATE_FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/buf.h"
#include "server/xlate/xlate.h"

/* What every target's input is: byte 0 holds flags (bit 0: stream_end says complete; bit 1:
 * xlate_opts_t.stream; bits 4-7: the error status, an index in the target's table of 16),
 * bytes 1-2 seed the chunking, the rest is the bytes every translation reads. */
typedef struct xf_input_s {
    const char *body;
    size_t len;
    uint32_t seed;
    int complete, stream;
    unsigned status; /* 0 to 15 */
} xf_input_t;

/* 0 and *in, or -1 if the input is too short. */
static int xf_input(const uint8_t *data, size_t size, xf_input_t *in)
{
    if (size < 3)
        return -1;
    in->body = (const char *)data + 3;
    in->len = size - 3;
    in->seed = (uint32_t)data[1] << 8 | data[2];
    in->complete = data[0] & 1;
    in->stream = (data[0] >> 1) & 1;
    in->status = data[0] >> 4;
    return 0;
}

#define XF_STATE_MAX 8192 /* the largest stream_size of a pair fuzzed */

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, XLATE_FUZZ_NAME ": invariant violated: %s\n", what);
        abort();
    }
}

/* seed 0: one feed; else pseudo-random pieces, small (1-8 bytes) or larger (up to 300).
 * cut_after_bad: after XLATE_EBAD the stream is ended as cut, as the proxy does (which must
 * succeed). */
static int xf_run_stream(const xlate_pair_t *P, const xlate_opts_t *o, const char *in, size_t len,
                         uint32_t seed, int complete, int cut_after_bad, buf_t *out)
{
    static _Alignas(max_align_t) unsigned char st[XF_STATE_MAX];
    size_t off = 0;
    int rc = 0;

    check(P->stream_size <= sizeof(st), "stream_size");
    P->stream_init(st, o);
    while (rc == 0 && off < len) {
        size_t n = len - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            size_t r = 1 + (seed >> 16) % (seed & 0x80 ? 8 : 300);
            n = n < r ? n : r;
        }
        rc = P->stream_feed(st, in + off, n, out);
        off += n;
    }
    if (rc == 0)
        rc = P->stream_end(st, complete, out);
    if (rc == XLATE_EBAD && cut_after_bad) /* the proxy cuts the stream then */
        check(P->stream_end(st, 0, out) == 0, "a cut after XLATE_EBAD is told");
    P->stream_free(st);
    return rc;
}

/* The stream whole (into *whole) and cut by seed: 0 or XLATE_EBAD, the same result and
 * bytes either way. Returns the result. */
static int xf_stream_cuts(const xlate_pair_t *P, const xlate_opts_t *o, const char *in, size_t len,
                          uint32_t seed, int complete, int cut_after_bad, buf_t *whole)
{
    buf_t cut = {0};
    int r1 = xf_run_stream(P, o, in, len, 0, complete, cut_after_bad, whole);
    int r2 = xf_run_stream(P, o, in, len, seed | 1, complete, cut_after_bad, &cut);

    check(r1 == 0 || r1 == XLATE_EBAD, "stream result");
    check(r1 == r2, "the stream's result does not depend on the cut");
    check(whole->len == cut.len &&
              (whole->len == 0 || memcmp(whole->data, cut.data, whole->len) == 0),
          "the stream's bytes do not depend on the cut");
    buf_free(&cut);
    return r1;
}

/* The event at *p (before end): "event: NAME\ndata: JSON\n\n" with the JSON an object whose
 * "type" is NAME; returns the object (the caller's to json_decref), *p past the event. */
static json_t *xf_event(const char **p, const char *end)
{
    const char *name, *nl, *data, *type;
    size_t nlen;
    json_t *j;

    check((size_t)(end - *p) >= 7 && memcmp(*p, "event: ", 7) == 0, "an event line");
    name = *p + 7;
    nl = memchr(name, '\n', (size_t)(end - name));
    check(nl != NULL, "the event line ends");
    nlen = (size_t)(nl - name);
    data = nl + 1;
    check((size_t)(end - data) >= 6 && memcmp(data, "data: ", 6) == 0, "a data line follows");
    data += 6;
    nl = memchr(data, '\n', (size_t)(end - data));
    check(nl != NULL && nl + 1 < end && nl[1] == '\n', "a blank line ends the event");
    j = json_loadb(data, (size_t)(nl - data), JSON_REJECT_DUPLICATES, NULL);
    check(json_is_object(j), "the data is a JSON object");
    type = json_string_value(json_object_get(j, "type"));
    check(type && strlen(type) == nlen && memcmp(type, name, nlen) == 0,
          "the data's type is the event's name");
    *p = nl + 2;
    return j;
}

/* 0 with a JSON object carrying model and messages (non-empty if nonempty; a stream asks
 * for usage when o->stream), or XLATE_EREFUSE with a non-empty, valid UTF-8 message and
 * nothing written. */
static void xf_check_request(const xlate_pair_t *P, const xlate_opts_t *o, const char *in,
                             size_t len, int nonempty)
{
    xlate_error_t err;
    buf_t out = {0};
    json_t *j;
    int rc = P->request(in, len, o, &out, &err);

    check(rc == 0 || rc == XLATE_EREFUSE, "request result");
    if (rc == 0) {
        const json_t *msgs;
        j = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
        msgs = json_object_get(j, "messages");
        check(json_is_object(j) && json_is_string(json_object_get(j, "model")) &&
                  json_is_array(msgs) && (!nonempty || json_array_size(msgs) > 0),
              "a translated request is a JSON object with model and messages");
        check(!o->stream || json_is_true(json_object_get(json_object_get(j, "stream_options"),
                                                         "include_usage")),
              "a stream asks for usage");
        json_decref(j);
    } else {
        check(out.len == 0, "a refusal writes nothing");
        check(memchr(err.message, '\0', sizeof(err.message)) && err.message[0],
              "a refusal has a message");
        check(memchr(err.param, '\0', sizeof(err.param)) != NULL, "the param is terminated");
        j = json_string(err.message);
        check(j != NULL, "the refusal message is valid UTF-8");
        json_decref(j);
    }
    buf_free(&out);
}

/* 0 with a JSON document that shape accepts (what: the invariant), or XLATE_EBAD with
 * nothing written. */
static void xf_check_response(const xlate_pair_t *P, const xlate_opts_t *o, const char *in,
                              size_t len, int (*shape)(const json_t *), const char *what)
{
    buf_t out = {0};
    int rc = P->response(in, len, o, &out);

    check(rc == 0 || rc == XLATE_EBAD, "response result");
    if (rc == 0) {
        json_t *j = json_loadb(out.data, out.len, JSON_REJECT_DUPLICATES, NULL);
        check(shape(j), what);
        json_decref(j);
    } else {
        check(out.len == 0, "XLATE_EBAD writes nothing");
    }
    buf_free(&out);
}

/* 0, the client's status want, and {"error":{"type","message",...}} (and the members the
 * client's shape adds). */
static void xf_check_error(const xlate_pair_t *P, const char *in, size_t len, int status, int want,
                           const char *what_status, const char *what_shape)
{
    buf_t out = {0};
    int st = 0, rc = P->error(status, in, len, &out, &st);
    json_t *j = json_loadb(out.data ? out.data : "", out.len, JSON_REJECT_DUPLICATES, NULL);
    json_t *e = json_object_get(j, "error");

    check(rc == 0 && st == want, what_status);
    check(json_is_object(j) && json_is_string(json_object_get(e, "type")) &&
              json_is_string(json_object_get(e, "message")),
          what_shape);
    json_decref(j);
    buf_free(&out);
}

#endif
