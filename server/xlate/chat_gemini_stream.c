/* chat_gemini_stream.c - a Gemini provider's stream (streamGenerateContent?alt=sse) as an
 * OpenAI chat completions stream (see chat_gemini.h).
 *
 * Gemini sends "data: <GenerateContentResponse>" events, each a piece of the answer, and no
 * terminator. -> chat.completion.chunk events, "data: {...}\n\n", closed by
 * "data: [DONE]\n\n": the first event -> delta {"role":"assistant","content":""}; each text
 * part of candidates[0] (not a "thought") -> delta {"content"}; each functionCall part (Gemini
 * sends calls whole) -> delta.tool_calls [{index k (0, 1, ... in the stream), id (see
 * chat_gemini.h), type:"function", function:{name, arguments: the args as compact JSON}}]; the
 * event with a finishReason (or a promptFeedback.blockReason without candidates) -> an empty
 * delta with the finish_reason (as chat_gemini.c maps it; STOP after function calls is
 * tool_calls); the end of the stream after it (stream_end complete 1) -> the usage chunk
 * ({"choices":[], "usage"} of the last usageMetadata, when o->include_usage; the other chunks
 * then carry "usage": null, as OpenAI's do) and [DONE]. An event {"error":{...}} -> data:
 * {"error":{...}} in OpenAI's shape and nothing after it. Every chunk: id "chatcmpl-" +
 * responseId (its first 96 bytes; else the request id), object, created, model (the client's,
 * its first 255 bytes), choices [{index 0, delta, logprobs null, finish_reason}]. Dropped:
 * thought parts, the other candidates, safetyRatings, citation and grounding metadata, parts
 * other than text and functionCall, content after the finishReason (its usageMetadata is
 * still read). An event whose data is not a JSON object, or whose candidates / parts are not
 * arrays, or a functionCall without a name: XLATE_EBAD (the chunks of the events before it
 * stay in out). A stream cut (complete 0), or ended without a finishReason, gets nothing
 * more: the proxy tells the client.
 */
#include "server/xlate/chat_gemini.h"
#include "server/xlate/xjson.h"

#include <string.h>

#define NOMEM XLATE_ENOMEM
#define BAD   XLATE_EBAD

#define STOPPED 1 /* an on_event result: the stream is over, read no further */

/* The chunks' common members, of the responseId (or, without one, the request id). */
static int build_prefix(cg_stream_t *s, const json_t *id)
{
    json_t *p = json_object();
    buf_t b = {0};
    char idb[CG_ID_MAX + 1];
    int rc = NOMEM;

    if (json_is_string(id) && json_string_length(id)) {
        xjson_copy_cut(idb, sizeof(idb), json_string_value(id));
    } else {
        xjson_copy_cut(idb, sizeof(idb), s->rid);
    }
    if (!p || xjson_set(p, "id", xjson_made_id("chatcmpl-", idb, -1)) != 0 ||
        xjson_set(p, "object", json_string("chat.completion.chunk")) != 0 ||
        xjson_set(p, "created", json_integer(s->created)) != 0 ||
        xjson_set(p, "model", xjson_str(s->model)) != 0 || xjson_put(&b, p) != 0)
        goto done;
    if (b.len > sizeof(s->prefix)) /* cannot be: the id and model are bounded */
        goto done;
    memcpy(s->prefix, b.data, b.len - 1); /* without its '}' */
    s->prefix[b.len - 1] = ',';
    s->prefix_len = b.len;
    rc = 0;
done:
    json_decref(p);
    buf_free(&b);
    return rc;
}

/* data: PREFIX"choices":[{"index":0,"delta":DELTA,"logprobs":null,"finish_reason":F}]}
 * (delta is stolen; NULL: no memory). */
static int put_chunk(cg_stream_t *s, json_t *delta, const char *finish)
{
    static const char c1[] = "\"choices\":[{\"index\":0,\"delta\":";
    static const char c2[] = ",\"logprobs\":null,\"finish_reason\":";
    buf_t *out = s->out;
    size_t len0 = out->len;
    int rc = NOMEM;

    if (!delta)
        goto done;
    if (buf_append(out, "data: ", 6) != 0 || buf_append(out, s->prefix, s->prefix_len) != 0 ||
        buf_append(out, c1, sizeof(c1) - 1) != 0 || xjson_put(out, delta) != 0 ||
        buf_append(out, c2, sizeof(c2) - 1) != 0 ||
        (finish ? buf_append(out, "\"", 1) != 0 || buf_appends(out, finish) != 0 ||
                      buf_appends(out, "\"}]") != 0
                : buf_appends(out, "null}]") != 0) ||
        (s->include_usage && buf_appends(out, ",\"usage\":null") != 0) ||
        buf_append(out, "}\n\n", 3) != 0)
        goto done;
    rc = 0;
done:
    json_decref(delta);
    if (rc)
        xjson_buf_cut(out, len0);
    return rc;
}

/* data: DOC\n\n (doc stolen) */
static int put_event(buf_t *out, json_t *doc)
{
    size_t len0 = out->len;
    int rc = doc && buf_append(out, "data: ", 6) == 0 && xjson_put(out, doc) == 0 &&
                     buf_append(out, "\n\n", 2) == 0
                 ? 0
                 : NOMEM;
    if (rc)
        xjson_buf_cut(out, len0);
    json_decref(doc);
    return rc;
}

static void read_usage(cg_stream_t *s, const json_t *u)
{
    if (!json_is_object(u))
        return;
    s->prompt = cg_count(u, "promptTokenCount");
    s->tool_prompt = cg_count(u, "toolUsePromptTokenCount");
    s->cached = cg_count(u, "cachedContentTokenCount");
    s->cand = cg_count(u, "candidatesTokenCount");
    s->thoughts = cg_count(u, "thoughtsTokenCount");
    s->total = cg_count(u, "totalTokenCount");
}

static int start(cg_stream_t *s, const json_t *id)
{
    json_t *d;

    if (s->started)
        return 0;
    if (build_prefix(s, id) != 0)
        return NOMEM;
    s->started = 1;
    d = json_object();
    if (d && (xjson_set(d, "role", json_string("assistant")) != 0 ||
              xjson_set(d, "content", json_string("")) != 0)) {
        json_decref(d);
        d = NULL;
    }
    return put_chunk(s, d, NULL); /* NULL: no memory */
}

/* {"tool_calls":[CALL with "index":k first]} */
static json_t *call_delta(json_t *call, int k)
{
    json_t *d = json_object(), *list, *c = json_object();
    const char *key;
    json_t *v;

    if (!d || !c || xjson_set(c, "index", json_integer(k)) != 0)
        goto fail;
    json_object_foreach(call, key, v) if (json_object_set(c, key, v) != 0) goto fail;
    if (xjson_set(d, "tool_calls", list = json_array()) != 0 || xjson_push(list, c) != 0) {
        c = NULL;
        goto fail;
    }
    return d;
fail:
    json_decref(c);
    json_decref(d);
    return NULL;
}

static int on_parts(cg_stream_t *s, const json_t *parts)
{
    size_t i;
    json_t *p;
    int rc, bad;

    json_array_foreach(parts, i, p)
    {
        json_t *t = json_object_get(p, "text"), *fc = json_object_get(p, "functionCall");
        if (json_is_true(json_object_get(p, "thought")))
            continue;
        if (t) {
            if (!json_is_string(t))
                return BAD;
            if (json_string_length(t)) {
                json_t *d = json_object();
                if (d && json_object_set(d, "content", t) != 0) {
                    json_decref(d);
                    d = NULL;
                }
                if ((rc = put_chunk(s, d, NULL)) != 0)
                    return rc;
            }
        } else if (fc) {
            json_t *call = cg_tool_call(fc, s->rid, s->ncalls, &bad);
            if (!call)
                return bad ? BAD : NOMEM;
            rc = put_chunk(s, call_delta(call, s->ncalls), NULL);
            json_decref(call);
            if (rc)
                return rc;
            s->ncalls++;
        }
    }
    return 0;
}

static int on_error(cg_stream_t *s, const json_t *e)
{
    json_t *msg = json_object_get(e, "message"), *own = NULL, *st = json_object_get(e, "status");
    int rc;

    s->done = 1;
    if (!json_is_string(msg))
        msg = own = json_string("the provider's stream ended with an error");
    rc = put_event(s->out, cg_error_doc("server_error",
                                        json_is_string(st) && !memchr(json_string_value(st), 0,
                                                                      json_string_length(st))
                                            ? json_string_value(st)
                                            : NULL,
                                        msg));
    json_decref(own);
    return rc ? rc : STOPPED;
}

static int on_event(void *ud, const char *event, const char *data, size_t len)
{
    cg_stream_t *s = ud;
    json_t *ev, *cands, *cand, *parts, *fb;
    int rc = 0;

    (void)event;
    if (s->done)
        return STOPPED;
    ev = json_loadb(data, len, CG_JSON_LOAD, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return BAD;
    }
    if (json_object_get(ev, "error")) {
        rc = on_error(s, json_object_get(ev, "error"));
        json_decref(ev);
        return rc;
    }
    cands = json_object_get(ev, "candidates");
    cand = json_array_get(cands, 0);
    parts = json_object_get(json_object_get(cand, "content"), "parts");
    fb = json_object_get(ev, "promptFeedback");
    if ((cands && !json_is_array(cands)) || (cand && !json_is_object(cand)) ||
        (parts && !json_is_array(parts))) {
        json_decref(ev);
        return BAD;
    }
    read_usage(s, json_object_get(ev, "usageMetadata"));
    if (s->finished) { /* only a late usageMetadata counts */
        json_decref(ev);
        return 0;
    }
    if ((rc = start(s, json_object_get(ev, "responseId"))) == 0 && (rc = on_parts(s, parts)) == 0) {
        json_t *fr = json_object_get(cand, "finishReason");
        if (json_is_string(fr)) {
            s->finished = 1;
            rc = put_chunk(s, json_object(), cg_finish_reason(fr, s->ncalls > 0));
        } else if (!cand && json_is_string(json_object_get(fb, "blockReason"))) {
            s->finished = 1;
            rc = put_chunk(s, json_object(), "content_filter");
        }
    }
    json_decref(ev);
    return rc;
}

/* The usage chunk (include_usage) and [DONE]. */
static int put_end(cg_stream_t *s)
{
    buf_t *out = s->out;
    size_t len0 = out->len;
    json_t *u;

    s->done = 1;
    if (s->include_usage) {
        u = cg_usage_doc(s->prompt, s->tool_prompt, s->cached, s->cand, s->thoughts, s->total);
        if (!u || buf_append(out, "data: ", 6) != 0 ||
            buf_append(out, s->prefix, s->prefix_len) != 0 ||
            buf_appends(out, "\"choices\":[],\"usage\":") != 0 || xjson_put(out, u) != 0 ||
            buf_append(out, "}\n\n", 3) != 0) {
            json_decref(u);
            xjson_buf_cut(out, len0);
            return NOMEM;
        }
        json_decref(u);
    }
    if (buf_appends(out, "data: [DONE]\n\n") != 0) {
        xjson_buf_cut(out, len0);
        return NOMEM;
    }
    return 0;
}

void chat_gemini_stream_init(void *st, const xlate_opts_t *o)
{
    cg_stream_t *s = st;

    memset(s, 0, sizeof(*s));
    sse_reader_init(&s->rd);
    s->include_usage = o->include_usage;
    s->created = o->created;
    xjson_copy_cut(s->model, sizeof(s->model), o->client_model);
    xjson_copy_cut(s->rid, sizeof(s->rid),
                   o->request_id && *o->request_id ? o->request_id : "llmgate");
}

/* An sse_feed / sse_finish result as the pair's. */
static int result(cg_stream_t *s, int rc)
{
    if (rc == STOPPED)
        rc = 0;
    else if (rc == -1) /* an event past SSE_EVENT_MAX (or no memory in the reader) */
        rc = BAD;
    if (rc)
        s->result = rc;
    s->out = NULL;
    return rc;
}

int chat_gemini_stream_feed(void *st, const char *data, size_t len, buf_t *out)
{
    cg_stream_t *s = st;

    if (s->result || s->done)
        return s->result;
    s->out = out;
    return result(s, sse_feed(&s->rd, data, len, on_event, s));
}

int chat_gemini_stream_end(void *st, int complete, buf_t *out)
{
    cg_stream_t *s = st;
    int rc;

    if (s->result || s->done || !complete)
        return s->result;
    s->out = out;
    rc = sse_finish(&s->rd, on_event, s);
    if (rc == 0 && s->finished && !s->done)
        rc = put_end(s);
    return result(s, rc);
}

void chat_gemini_stream_free(void *st)
{
    cg_stream_t *s = st;
    sse_reader_free(&s->rd);
}
