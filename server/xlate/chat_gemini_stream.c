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

/* The chunks' common members, of the responseId (or, without one, the request id). */
static int build_prefix(cg_stream_t *s, const json_t *id)
{
    char idb[CHAT_ID_MAX + 1];

    if (json_is_string(id) && json_string_length(id)) {
        xjson_copy_cut(idb, sizeof(idb), json_string_value(id));
    } else {
        xjson_copy_cut(idb, sizeof(idb), s->h.rid);
    }
    return chat_stream_prefix(&s->h, xjson_made_id("chatcmpl-", idb, -1));
}

/* a chunk of delta (stolen) */
static int put_chunk(cg_stream_t *s, json_t *delta, const char *finish)
{
    return chat_stream_chunk(&s->h, "", delta, NULL, "", finish);
}

static void read_usage(cg_stream_t *s, const json_t *u)
{
    if (!json_is_object(u))
        return;
    s->prompt = chat_out_count(u, "promptTokenCount");
    s->tool_prompt = chat_out_count(u, "toolUsePromptTokenCount");
    s->cached = chat_out_count(u, "cachedContentTokenCount");
    s->cand = chat_out_count(u, "candidatesTokenCount");
    s->thoughts = chat_out_count(u, "thoughtsTokenCount");
    s->total = chat_out_count(u, "totalTokenCount");
}

static int start(cg_stream_t *s, const json_t *id)
{
    if (s->h.started)
        return 0;
    if (build_prefix(s, id) != 0)
        return NOMEM;
    return chat_stream_role(&s->h);
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
            json_t *call = cg_tool_call(fc, s->h.rid, s->ncalls, &bad);
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

    s->h.done = 1;
    if (!json_is_string(msg))
        msg = own = json_string("the provider's stream ended with an error");
    rc = chat_stream_event(
        &s->h,
        cg_error_doc("server_error",
                     json_is_string(st) && !memchr(json_string_value(st), 0, json_string_length(st))
                         ? json_string_value(st)
                         : NULL,
                     msg));
    json_decref(own);
    return rc ? rc : CHAT_STOPPED;
}

static int on_event(void *ud, const char *event, const char *data, size_t len)
{
    cg_stream_t *s = ud;
    json_t *ev, *cands, *cand, *parts, *fb;
    int rc = 0;

    (void)event;
    if (s->h.done)
        return CHAT_STOPPED;
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

/* The usage chunk (include_usage) and [DONE], after the finish_reason's chunk. */
static int put_end(chat_stream_t *h)
{
    cg_stream_t *s = (cg_stream_t *)h;
    size_t len0 = h->out->len;

    if (!s->finished)
        return 0;
    if ((h->include_usage &&
         chat_stream_usage_chunk(h, cg_usage_doc(s->prompt, s->tool_prompt, s->cached, s->cand,
                                                 s->thoughts, s->total)) != 0) ||
        chat_stream_done(h) != 0) {
        h->done = 1;
        xjson_buf_cut(h->out, len0);
        return NOMEM;
    }
    return 0;
}

void chat_gemini_stream_init(void *st, const xlate_opts_t *o)
{
    cg_stream_t *s = st;

    chat_stream_init(&s->h, sizeof(*s), o,
                     o->request_id && *o->request_id ? o->request_id : "llmgate", on_event,
                     put_end);
}
