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

#define NOMEM XLATE_ENOMEM
#define BAD   XLATE_EBAD

/* o.k = v (v stolen; NULL: no memory); 0 or -1 */
static int put(json_t *o, const char *k, json_t *v)
{
    return json_object_set_new(o, k, v);
}

#define STOPPED 1 /* an on_event result: the stream is over, read no further */

/* The chunks' common members, of the message id (or, without one, the request id). */
static int build_prefix(ca_stream_t *s, const json_t *id)
{
    json_t *p = json_object();
    buf_t b = {0};
    int rc = NOMEM;

    if (!p ||
        put(p, "id",
            json_is_string(id)
                ? ca_chat_id(json_string_value(id), json_string_length(id), CA_ID_MAX)
                : ca_chat_id(s->rid, strlen(s->rid), CA_ID_MAX)) != 0 ||
        put(p, "object", json_string("chat.completion.chunk")) != 0 ||
        put(p, "created", json_integer(s->created)) != 0 ||
        put(p, "model", ca_string_lossy(s->model, strlen(s->model))) != 0 || ca_dump(&b, p) != 0)
        goto done;
    if (b.len > sizeof(s->prefix)) /* cannot be: the id and model are bounded */
        goto done;
    memcpy(s->prefix, b.data, b.len - 1); /* without its '}' */
    s->prefix[b.len - 1] = ',';
    s->prefix_len = b.len;
    s->started = 1;
    rc = 0;
done:
    json_decref(p);
    buf_free(&b);
    return rc;
}

/* data: PREFIX"choices":[{"index":0,"delta":PRE VAL POST,"logprobs":null,"finish_reason":F}]}
 * VAL: val dumped (stolen; NULL: no memory), or, when raw is given, the string raw is the
 * inside of (the fast path's text, as the provider wrote it). */
static int put_chunk_of(ca_stream_t *s, const char *pre, json_t *val, const xfast_span_t *raw,
                        const char *post, const char *finish)
{
    static const char c1[] = "\"choices\":[{\"index\":0,\"delta\":";
    static const char c2[] = ",\"logprobs\":null,\"finish_reason\":";
    buf_t *out = s->out;
    size_t len0 = out->len;
    int rc = NOMEM;

    if ((!val && !raw) || (!s->started && build_prefix(s, NULL) != 0))
        goto done;
    if (buf_append(out, "data: ", 6) != 0 || buf_append(out, s->prefix, s->prefix_len) != 0 ||
        buf_append(out, c1, sizeof(c1) - 1) != 0 || buf_appends(out, pre) != 0 ||
        (raw ? buf_append(out, "\"", 1) != 0 || buf_append(out, raw->s, raw->n) != 0 ||
                   buf_append(out, "\"", 1) != 0
             : ca_dump(out, val) != 0) ||
        buf_appends(out, post) != 0 || buf_append(out, c2, sizeof(c2) - 1) != 0 ||
        (finish ? buf_append(out, "\"", 1) != 0 || buf_appends(out, finish) != 0 ||
                      buf_appends(out, "\"}]") != 0
                : buf_appends(out, "null}]") != 0) ||
        (s->include_usage && buf_appends(out, ",\"usage\":null") != 0) ||
        buf_append(out, "}\n\n", 3) != 0)
        goto done;
    rc = 0;
done:
    json_decref(val);
    if (rc) {
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
    }
    return rc;
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

/* data: DOC\n\n */
static int put_event(buf_t *out, json_t *doc)
{
    size_t len0 = out->len;
    int rc = doc && buf_append(out, "data: ", 6) == 0 && ca_dump(out, doc) == 0 &&
                     buf_append(out, "\n\n", 2) == 0
                 ? 0
                 : NOMEM;
    if (rc) {
        out->len = len0;
        if (out->data)
            out->data[len0] = '\0';
    }
    json_decref(doc);
    return rc;
}

/* {"tool_calls":[{"index":k, "id":id, "type":"function", "function":{"name":name,
 * "arguments":args}}]}; id and name NULL: a continuation, without them. */
static json_t *tool_delta(int k, const json_t *id, const json_t *name, const char *args,
                          size_t args_len)
{
    json_t *d = json_object(), *calls, *c, *f;

    if (!d || put(d, "tool_calls", calls = json_array()) != 0 ||
        json_array_append_new(calls, c = json_object()) != 0 ||
        put(c, "index", json_integer(k)) != 0 ||
        (id && (json_object_set(c, "id", (json_t *)id) != 0 ||
                put(c, "type", json_string("function")) != 0)) ||
        put(c, "function", f = json_object()) != 0 ||
        (name && json_object_set(f, "name", (json_t *)name) != 0) ||
        put(f, "arguments", json_stringn(args, args_len)) != 0) {
        json_decref(d);
        return NULL;
    }
    return d;
}

static void read_usage(ca_stream_t *s, const json_t *u)
{
    json_t *v;
    if ((v = json_object_get(u, "input_tokens")) && json_is_integer(v))
        s->in = ca_count(u, "input_tokens");
    if ((v = json_object_get(u, "cache_creation_input_tokens")) && json_is_integer(v))
        s->cache_write = ca_count(u, "cache_creation_input_tokens");
    if ((v = json_object_get(u, "cache_read_input_tokens")) && json_is_integer(v))
        s->cache_read = ca_count(u, "cache_read_input_tokens");
    if ((v = json_object_get(u, "output_tokens")) && json_is_integer(v))
        s->out_tokens = ca_count(u, "output_tokens");
}

static int on_message_start(ca_stream_t *s, json_t *ev)
{
    json_t *m = json_object_get(ev, "message"), *d;

    if (!json_is_object(m))
        return BAD;
    read_usage(s, json_object_get(m, "usage"));
    if (s->started) /* a second message_start, or content came first */
        return 0;
    if (build_prefix(s, json_object_get(m, "id")) != 0)
        return NOMEM;
    d = json_object();
    if (d && (put(d, "role", json_string("assistant")) != 0 ||
              put(d, "content", json_string("")) != 0)) {
        json_decref(d);
        d = NULL;
    }
    return put_chunk(s, d, NULL); /* NULL: no memory */
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
    if (ca_streq(type, "text")) {
        t = json_object_get(b, "text");
        return json_string_length(t) ? put_text(s, t) : 0;
    }
    if (!ca_streq(type, "tool_use"))
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
    if (ca_streq(type, "text_delta")) {
        if (!json_is_string(v = json_object_get(d, "text")))
            return BAD;
        return json_string_length(v) ? put_text(s, v) : 0;
    }
    if (ca_streq(type, "input_json_delta")) {
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
    buf_t *out = s->out;
    size_t len0 = out->len;
    json_t *u;

    s->done = 1;
    if (s->include_usage) {
        if (!s->started && build_prefix(s, NULL) != 0)
            return NOMEM;
        u = ca_usage_doc(s->in, s->cache_write, s->cache_read, s->out_tokens);
        if (!u || buf_append(out, "data: ", 6) != 0 ||
            buf_append(out, s->prefix, s->prefix_len) != 0 ||
            buf_appends(out, "\"choices\":[],\"usage\":") != 0 || ca_dump(out, u) != 0 ||
            buf_append(out, "}\n\n", 3) != 0) {
            json_decref(u);
            out->len = len0;
            if (out->data)
                out->data[len0] = '\0';
            return NOMEM;
        }
        json_decref(u);
    }
    return buf_appends(out, "data: [DONE]\n\n") == 0 ? STOPPED : NOMEM;
}

static int on_error(ca_stream_t *s, json_t *ev)
{
    json_t *e = json_object_get(ev, "error"), *type = json_object_get(e, "type");
    json_t *msg = json_object_get(e, "message"), *dflt = NULL;
    int rc;

    s->done = 1;
    if (!json_is_string(msg))
        msg = dflt = json_string("the provider's stream ended with an error");
    rc = put_event(s->out, ca_error_doc(json_is_string(type) ? type : NULL, msg, 500));
    json_decref(dflt);
    return rc ? rc : STOPPED;
}

static int on_event(void *ud, const char *event, const char *data, size_t len)
{
    ca_stream_t *s = ud;
    json_t *ev, *type;
    xfast_span_t text;
    int rc = 0;

    (void)event; /* the data's "type" says the same, and relays may leave the name out */
    if (s->done)
        return STOPPED;
    if (s->started && fast_text(data, len, &text))
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
    else if (ca_streq(type, "content_block_delta"))
        rc = on_block_delta(s, ev);
    else if (ca_streq(type, "content_block_start"))
        rc = on_block_start(s, ev);
    else if (ca_streq(type, "content_block_stop"))
        s->tool_block = -1;
    else if (ca_streq(type, "message_start"))
        rc = on_message_start(s, ev);
    else if (ca_streq(type, "message_delta"))
        rc = on_message_delta(s, ev);
    else if (ca_streq(type, "message_stop"))
        rc = on_message_stop(s);
    else if (ca_streq(type, "error"))
        rc = on_error(s, ev);
    json_decref(ev); /* ping and unknown types: nothing */
    return rc;
}

void chat_anthropic_stream_init(void *st, const xlate_opts_t *o)
{
    ca_stream_t *s = st;
    const char *m = o->client_model ? o->client_model : "";
    const char *rid = o->request_id ? o->request_id : "llmgate";
    size_t n = strlen(m), r = strlen(rid);

    memset(s, 0, sizeof(*s));
    sse_reader_init(&s->rd);
    s->include_usage = o->include_usage;
    s->created = o->created;
    s->tool_block = -1;
    if (n > CA_MODEL_MAX)
        for (n = CA_MODEL_MAX; n && ((unsigned char)m[n] & 0xc0) == 0x80; n--)
            ;
    memcpy(s->model, m, n);
    if (r > CA_RID_MAX)
        for (r = CA_RID_MAX; r && ((unsigned char)rid[r] & 0xc0) == 0x80; r--)
            ;
    memcpy(s->rid, rid, r);
}

/* An sse_feed / sse_finish result as the pair's. */
static int result(ca_stream_t *s, int rc)
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

int chat_anthropic_stream_feed(void *st, const char *data, size_t len, buf_t *out)
{
    ca_stream_t *s = st;

    if (s->result || s->done)
        return s->result;
    s->out = out;
    return result(s, sse_feed(&s->rd, data, len, on_event, s));
}

int chat_anthropic_stream_end(void *st, int complete, buf_t *out)
{
    ca_stream_t *s = st;

    if (s->result || s->done || !complete)
        return s->result;
    s->out = out;
    return result(s, sse_finish(&s->rd, on_event, s));
}

void chat_anthropic_stream_free(void *st)
{
    ca_stream_t *s = st;
    sse_reader_free(&s->rd);
}
