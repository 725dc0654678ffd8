/* chat_anthropic_stream.c - an Anthropic-native provider's stream as an OpenAI chat
 * completions stream (see chat_anthropic.h).
 *
 * Messages events -> chat.completion.chunk events, "data: {...}\n\n", closed by
 *   "data: [DONE]\n\n"): message_start -> delta {"role":"assistant","content":""};
 *   text_delta -> delta {"content"}; a tool_use block's start -> delta.tool_calls [{index k
 *   (0, 1, ... per tool_use block), id, type:"function", function:{name, arguments:""}}],
 *   its input_json_delta -> delta.tool_calls [{index k, function:{arguments}}];
 *   message_delta -> an empty delta with the finish_reason; message_stop -> the usage chunk
 *   ({"choices":[], "usage"}, when o->include_usage; the other chunks then carry "usage":
 *   null, as OpenAI's do) and [DONE]; an error event -> data: {"error":{...}} (as above) and
 *   nothing after it. Every chunk: id "chatcmpl-" + the message id (its first 96 bytes),
 *   object, created, model (its first 255 bytes), choices [{index 0, delta, logprobs null,
 *   finish_reason (null but in the message_delta's chunk)}]. Dropped: ping, thinking and
 *   signature deltas, citations, server tool blocks and their input deltas, content_block_stop,
 *   events of unknown types, anything after message_stop or an error. An event whose data is
 *   not a JSON object with a "type", or a known event without its members: XLATE_EBAD (the
 *   chunks of the events before it stay in out). A stream cut (stream_end complete 0) or ended
 *   without message_stop gets nothing more: the proxy tells the client.
 * A text_delta event in exactly Anthropic's shape is read by a scan (xfast.h), its text copied
 * as the provider escaped it, and so are ping, content_block_stop and message_stop when they
 * hold nothing but their type and index; every other event, and any doubt, by jansson.
 */
#include "server/xlate/chat_anthropic.h"

#include <string.h>

#include "server/xlate/xfast.h"
#include "server/xlate/xjson.h"

#define NOMEM XLATE_ENOMEM
#define BAD   XLATE_EBAD

/* The chunks' common members, of the message id (or, without one, the request id). */
static int build_prefix(ca_stream_t *s, const json_t *id)
{
    return chat_stream_prefix(
        &s->h, json_is_string(id)
                   ? ca_chat_id(json_string_value(id), json_string_length(id), CHAT_ID_MAX)
                   : ca_chat_id(s->h.rid, strlen(s->h.rid), CHAT_ID_MAX));
}

/* A chunk (chat_stream_chunk), after the prefix of the request id if none is written yet. */
static int put_chunk_of(ca_stream_t *s, const char *pre, json_t *val, const xfast_span_t *raw,
                        const char *post, const char *finish)
{
    if ((!val && !raw) || (!s->h.started && build_prefix(s, NULL) != 0)) {
        json_decref(val);
        return NOMEM;
    }
    return chat_stream_chunk(&s->h, pre, val, raw, post, finish);
}

static int put_chunk(ca_stream_t *s, json_t *delta, const char *finish)
{
    return put_chunk_of(s, "", delta, NULL, "", finish);
}

/* {"content":text} */
static int put_text(ca_stream_t *s, json_t *text)
{
    return put_chunk_of(s, "{\"content\":", json_incref(text), NULL, "}", NULL);
}

/* ---- the fast path (xfast.h): {"type":"content_block_delta","index":N,
 *      "delta":{"type":"text_delta","text":"..."}} in any order, nothing else ---------- */

typedef struct text_match_s {
    xfast_span_t text;
} text_match_t;

static int text_delta_cb(void *ud, unsigned k, xfast_cur_t *c)
{
    text_match_t *m = ud;
    xfast_span_t type;

    if (k == 1)
        return xfast_string(c, &m->text);
    return xfast_string(c, &type) == 0 && xfast_is(&type, "text_delta") ? 0 : -1;
}

static int text_event_cb(void *ud, unsigned k, xfast_cur_t *c)
{
    static const char *const delta_keys[] = {"type", "text"};
    xfast_span_t type;
    uint64_t index;
    uint32_t seen;

    if (k == 0)
        return xfast_string(c, &type) == 0 && xfast_is(&type, "content_block_delta") ? 0 : -1;
    if (k == 1)
        return xfast_uint(c, &index);
    return xfast_object(c, delta_keys, 2, text_delta_cb, ud, &seen) == 0 && seen == 3 ? 0 : -1;
}

static int plain_event_cb(void *ud, unsigned k, xfast_cur_t *c)
{
    xfast_span_t *type = ud;
    uint64_t index;

    if (k == 1)
        return xfast_uint(c, &index);
    return xfast_string(c, type) == 0 &&
                   (xfast_is(type, "ping") || xfast_is(type, "content_block_stop") ||
                    xfast_is(type, "message_stop"))
               ? 0
               : -1;
}

/* 1 and *type if data is a ping, content_block_stop or message_stop with nothing but its
 * type and index (events whose other members the slow path would not read), else 0. */
static int fast_plain(const char *data, size_t len, xfast_span_t *type)
{
    static const char *const keys[] = {"type", "index"};
    xfast_cur_t c = xfast_cur(data, len);
    uint32_t seen;

    return xfast_enabled() && xfast_object(&c, keys, 2, plain_event_cb, type, &seen) == 0 &&
           xfast_end(&c) == 0 && (seen & 1);
}

/* 1 and *text if data is a text delta and nothing else (the slow path would read the same
 * text from it), else 0. */
static int fast_text(const char *data, size_t len, xfast_span_t *text)
{
    static const char *const keys[] = {"type", "index", "delta"};
    text_match_t m = {{NULL, 0}};
    xfast_cur_t c = xfast_cur(data, len);
    uint32_t seen;

    if (!xfast_enabled() || xfast_object(&c, keys, 3, text_event_cb, &m, &seen) != 0 ||
        xfast_end(&c) != 0 || (seen & 5) != 5)
        return 0;
    *text = m.text;
    return 1;
}

/* {"tool_calls":[{"index":k, "id":id, "type":"function", "function":{"name":name,
 * "arguments":args}}]}; id and name NULL: a continuation, without them. */
static json_t *tool_delta(int k, const json_t *id, const json_t *name, const char *args,
                          size_t args_len)
{
    json_t *d = json_object(), *calls, *c, *f;

    if (!d || xjson_set(d, "tool_calls", calls = json_array()) != 0 ||
        json_array_append_new(calls, c = json_object()) != 0 ||
        xjson_set(c, "index", json_integer(k)) != 0 ||
        (id && (json_object_set(c, "id", (json_t *)id) != 0 ||
                xjson_set(c, "type", json_string("function")) != 0)) ||
        xjson_set(c, "function", f = json_object()) != 0 ||
        (name && json_object_set(f, "name", (json_t *)name) != 0) ||
        xjson_set(f, "arguments", json_stringn(args, args_len)) != 0) {
        json_decref(d);
        return NULL;
    }
    return d;
}

static void read_usage(ca_stream_t *s, const json_t *u)
{
    json_t *v;
    if ((v = json_object_get(u, "input_tokens")) && json_is_integer(v))
        s->in = chat_out_count(u, "input_tokens");
    if ((v = json_object_get(u, "cache_creation_input_tokens")) && json_is_integer(v))
        s->cache_write = chat_out_count(u, "cache_creation_input_tokens");
    if ((v = json_object_get(u, "cache_read_input_tokens")) && json_is_integer(v))
        s->cache_read = chat_out_count(u, "cache_read_input_tokens");
    if ((v = json_object_get(u, "output_tokens")) && json_is_integer(v))
        s->out_tokens = chat_out_count(u, "output_tokens");
}

static int on_message_start(ca_stream_t *s, json_t *ev)
{
    json_t *m = json_object_get(ev, "message");

    if (!json_is_object(m))
        return BAD;
    read_usage(s, json_object_get(m, "usage"));
    if (s->h.started) /* a second message_start, or content came first */
        return 0;
    if (build_prefix(s, json_object_get(m, "id")) != 0)
        return NOMEM;
    return chat_stream_role(&s->h);
}

static int on_block_start(ca_stream_t *s, json_t *ev)
{
    json_t *b = json_object_get(ev, "content_block"), *type = json_object_get(b, "type");
    json_t *index = json_object_get(ev, "index"), *id, *name, *input, *t;
    buf_t args = {0};
    int rc;

    if (!json_is_object(b) || !json_is_string(type))
        return BAD;
    s->tool_block = -1;
    if (xjson_streq(type, "text")) {
        t = json_object_get(b, "text");
        return json_string_length(t) ? put_text(s, t) : 0;
    }
    if (!xjson_streq(type, "tool_use"))
        return 0; /* thinking, server tools */
    id = json_object_get(b, "id");
    name = json_object_get(b, "name");
    input = json_object_get(b, "input");
    if (!json_is_integer(index) || !json_is_string(id) || !json_is_string(name))
        return BAD;
    s->tool_block = json_integer_value(index);
    s->tool_k = s->ntools++;
    /* Anthropic starts with input {} and streams it; an input given whole is sent whole */
    if (json_object_size(input) && ca_dump(&args, input) != 0)
        return NOMEM;
    rc = put_chunk(s, tool_delta(s->tool_k, id, name, args.data ? args.data : "", args.len), NULL);
    buf_free(&args);
    return rc;
}

static int on_block_delta(ca_stream_t *s, json_t *ev)
{
    json_t *d = json_object_get(ev, "delta"), *type = json_object_get(d, "type"), *v;
    json_t *index = json_object_get(ev, "index");

    if (!json_is_object(d) || !json_is_string(type))
        return BAD;
    if (xjson_streq(type, "text_delta")) {
        if (!json_is_string(v = json_object_get(d, "text")))
            return BAD;
        return json_string_length(v) ? put_text(s, v) : 0;
    }
    if (xjson_streq(type, "input_json_delta")) {
        if (!json_is_string(v = json_object_get(d, "partial_json")))
            return BAD;
        if (!json_string_length(v) || s->tool_block < 0 || !json_is_integer(index) ||
            json_integer_value(index) != s->tool_block)
            return 0; /* a server tool's input, or nothing */
        return put_chunk(
            s, tool_delta(s->tool_k, NULL, NULL, json_string_value(v), json_string_length(v)),
            NULL);
    }
    return 0; /* thinking, signature, citations */
}

static int on_message_delta(ca_stream_t *s, json_t *ev)
{
    json_t *d = json_object_get(ev, "delta");

    if (!json_is_object(d))
        return BAD;
    read_usage(s, json_object_get(ev, "usage"));
    return put_chunk(s, json_object(), ca_finish_reason(json_object_get(d, "stop_reason")));
}

static int on_message_stop(ca_stream_t *s)
{
    s->h.done = 1;
    if (s->h.include_usage &&
        ((!s->h.started && build_prefix(s, NULL) != 0) ||
         chat_stream_usage_chunk(
             &s->h, ca_usage_doc(s->in, s->cache_write, s->cache_read, s->out_tokens)) != 0))
        return NOMEM;
    return chat_stream_done(&s->h) == 0 ? CHAT_STOPPED : NOMEM;
}

static int on_error(ca_stream_t *s, json_t *ev)
{
    json_t *e = json_object_get(ev, "error"), *type = json_object_get(e, "type");
    json_t *msg = json_object_get(e, "message"), *dflt = NULL;
    int rc;

    s->h.done = 1;
    if (!json_is_string(msg))
        msg = dflt = json_string("the provider's stream ended with an error");
    rc = chat_stream_event(&s->h, ca_error_doc(json_is_string(type) ? type : NULL, msg, 500));
    json_decref(dflt);
    return rc ? rc : CHAT_STOPPED;
}

static int on_event(void *ud, const char *event, const char *data, size_t len)
{
    ca_stream_t *s = ud;
    json_t *ev, *type;
    xfast_span_t text;
    int rc = 0;

    (void)event; /* the data's "type" says the same, and relays may leave the name out */
    if (s->h.done)
        return CHAT_STOPPED;
    if (s->h.started && fast_text(data, len, &text))
        return text.n ? put_chunk_of(s, "{\"content\":", NULL, &text, "}", NULL) : 0;
    if (fast_plain(data, len, &text)) { /* text: the type */
        if (xfast_is(&text, "message_stop"))
            return on_message_stop(s);
        if (xfast_is(&text, "content_block_stop"))
            s->tool_block = -1;
        return 0; /* and ping */
    }
    ev = json_loadb(data, len, CA_JSON_LOAD, NULL);
    type = json_object_get(ev, "type");
    if (!json_is_object(ev) || !json_is_string(type))
        rc = BAD;
    else if (xjson_streq(type, "content_block_delta"))
        rc = on_block_delta(s, ev);
    else if (xjson_streq(type, "content_block_start"))
        rc = on_block_start(s, ev);
    else if (xjson_streq(type, "content_block_stop"))
        s->tool_block = -1;
    else if (xjson_streq(type, "message_start"))
        rc = on_message_start(s, ev);
    else if (xjson_streq(type, "message_delta"))
        rc = on_message_delta(s, ev);
    else if (xjson_streq(type, "message_stop"))
        rc = on_message_stop(s);
    else if (xjson_streq(type, "error"))
        rc = on_error(s, ev);
    json_decref(ev); /* ping and unknown types: nothing */
    return rc;
}

void chat_anthropic_stream_init(void *st, const xlate_opts_t *o)
{
    ca_stream_t *s = st;

    chat_stream_init(&s->h, sizeof(*s), o, o->request_id ? o->request_id : "llmgate", on_event,
                     NULL);
    s->tool_block = -1;
}
