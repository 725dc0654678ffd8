/* chat_out.c - OpenAI chat completions answers, errors and chunk streams written for the chat
 * pairs; see chat_out.h. */
#include "server/xlate/chat_out.h"

#include <stdio.h>
#include <string.h>

#include "server/xlate/xjson.h"

#define NOMEM XLATE_ENOMEM
#define BAD   XLATE_EBAD

/* ---- answers ------------------------------------------------------------------------ */

json_int_t chat_out_count(const json_t *obj, const char *name)
{
    json_int_t v = json_integer_value(json_object_get(obj, name));
    return v > 0 ? v : 0;
}

json_t *chat_out_usage(json_int_t prompt, json_int_t completion, json_int_t total,
                       json_int_t cached, json_int_t reasoning)
{
    json_t *u = json_object(), *d;

    /* each container is put in its parent as soon as it is made: only the root is freed */
    if (!u || xjson_set(u, "prompt_tokens", json_integer(prompt)) != 0 ||
        xjson_set(u, "completion_tokens", json_integer(completion)) != 0 ||
        xjson_set(u, "total_tokens", json_integer(total)) != 0 ||
        xjson_set(u, "prompt_tokens_details", d = json_object()) != 0 ||
        xjson_set(d, "cached_tokens", json_integer(cached)) != 0 ||
        (reasoning >= 0 && (xjson_set(u, "completion_tokens_details", d = json_object()) != 0 ||
                            xjson_set(d, "reasoning_tokens", json_integer(reasoning)) != 0))) {
        json_decref(u);
        return NULL;
    }
    return u;
}

json_t *chat_out_tool_call(json_t *id, const json_t *name, const char *args, size_t n)
{
    json_t *c = NULL, *f;

    if (!id || !(c = json_object()) || xjson_set(c, "id", id) != 0) {
        if (!c)
            json_decref(id);
        goto fail;
    }
    if (xjson_set(c, "type", json_string("function")) != 0 ||
        xjson_set(c, "function", f = json_object()) != 0 ||
        json_object_set(f, "name", (json_t *)name) != 0 ||
        xjson_set(f, "arguments", json_stringn(args, n)) != 0)
        goto fail;
    return c;
fail:
    json_decref(c);
    return NULL;
}

json_t *chat_out_completion(json_t *id, int64_t created, json_t *model, const buf_t *text,
                            const json_t *calls, const char *finish, json_t *usage)
{
    json_t *doc = NULL, *choices, *choice, *msg;

    if (!id || !model || !usage || !(doc = json_object()))
        goto fail;
    /* each container is put in its parent as soon as it is made: only doc is freed */
    if (json_object_set(doc, "id", id) != 0 ||
        xjson_set(doc, "object", json_string("chat.completion")) != 0 ||
        xjson_set(doc, "created", json_integer(created)) != 0 ||
        json_object_set(doc, "model", model) != 0 ||
        xjson_set(doc, "choices", choices = json_array()) != 0 ||
        xjson_push(choices, choice = json_object()) != 0 ||
        xjson_set(choice, "index", json_integer(0)) != 0 ||
        xjson_set(choice, "message", msg = json_object()) != 0 ||
        xjson_set(msg, "role", json_string("assistant")) != 0 ||
        xjson_set(msg, "content", text ? xjson_buf(text) : json_null()) != 0 ||
        xjson_set(msg, "refusal", json_null()) != 0 ||
        (json_array_size(calls) && json_object_set(msg, "tool_calls", (json_t *)calls) != 0) ||
        xjson_set(choice, "logprobs", json_null()) != 0 ||
        xjson_set(choice, "finish_reason", json_string(finish)) != 0 ||
        json_object_set(doc, "usage", usage) != 0)
        goto fail;
    json_decref(id);
    json_decref(model);
    json_decref(usage);
    return doc;
fail:
    json_decref(doc);
    json_decref(id);
    json_decref(model);
    json_decref(usage);
    return NULL;
}

/* ---- errors ------------------------------------------------------------------------- */

const char *chat_out_type_of_status(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 429:
        return "rate_limit_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

json_t *chat_out_error_doc(json_t *type, json_t *code, const json_t *message)
{
    json_t *doc = json_object(), *e = json_object();

    if (!doc || !e || !type || !code || json_object_set(e, "message", (json_t *)message) != 0 ||
        json_object_set(e, "type", type) != 0 || xjson_set(e, "param", json_null()) != 0 ||
        json_object_set(e, "code", code) != 0 || json_object_set(doc, "error", e) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    json_decref(e);
    json_decref(type);
    json_decref(code);
    return doc;
}

size_t chat_out_raw_message(char *b, int status, const char *body, size_t len)
{
    size_t n = len, o;

    if (n > CHAT_OUT_RAW_MAX) {
        n = CHAT_OUT_RAW_MAX;
        while (n && ((unsigned char)body[n] & 0xc0) == 0x80)
            n--;
    }
    o = (size_t)snprintf(b, CHAT_OUT_RAW_CAP, "the provider answered HTTP %d%s", status,
                         n ? ": " : " with an empty body");
    if (n)
        memcpy(b + o, body, n);
    if (n < len)
        memcpy(b + o + n, "...", 3), n += 3;
    return o + n;
}

/* ---- streams ------------------------------------------------------------------------ */

void chat_stream_init(chat_stream_t *s, size_t size, const xlate_opts_t *o, const char *rid,
                      sse_event_cb on_event, int (*tail)(chat_stream_t *s))
{
    memset(s, 0, size);
    s->on_event = on_event;
    s->tail = tail;
    sse_reader_init(&s->rd);
    s->include_usage = o->include_usage;
    s->created = o->created;
    xjson_copy_cut(s->model, sizeof(s->model), o->client_model);
    xjson_copy_cut(s->rid, sizeof(s->rid), rid);
}

int chat_stream_prefix(chat_stream_t *s, json_t *id)
{
    json_t *p = json_object();
    buf_t b = {0};
    int rc = NOMEM;

    if (!p || xjson_set(p, "id", id) != 0 ||
        xjson_set(p, "object", json_string("chat.completion.chunk")) != 0 ||
        xjson_set(p, "created", json_integer(s->created)) != 0 ||
        xjson_set(p, "model", xjson_str(s->model)) != 0 || xjson_put(&b, p) != 0) {
        if (!p)
            json_decref(id);
        goto done;
    }
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

static int dump_cb(const char *p, size_t n, void *ud)
{
    return buf_append(ud, p, n) != 0 ? -1 : 0;
}

/* xjson_put of any value (a delta may be a bare string) */
static int put_any(buf_t *out, const json_t *j)
{
    return json_dump_callback(j, dump_cb, out, XJSON_DUMP | JSON_ENCODE_ANY) == 0 ? 0 : NOMEM;
}

int chat_stream_chunk(chat_stream_t *s, const char *pre, json_t *val, const xfast_span_t *raw,
                      const char *post, const char *finish)
{
    static const char c1[] = "\"choices\":[{\"index\":0,\"delta\":";
    static const char c2[] = ",\"logprobs\":null,\"finish_reason\":";
    buf_t *out = s->out;
    size_t len0 = out->len;
    int rc = NOMEM;

    if (!val && !raw)
        goto done;
    if (buf_append(out, "data: ", 6) != 0 || buf_append(out, s->prefix, s->prefix_len) != 0 ||
        buf_append(out, c1, sizeof(c1) - 1) != 0 || buf_appends(out, pre) != 0 ||
        (raw ? buf_append(out, "\"", 1) != 0 || buf_append(out, raw->s, raw->n) != 0 ||
                   buf_append(out, "\"", 1) != 0
             : put_any(out, val) != 0) ||
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
    if (rc)
        xjson_buf_cut(out, len0);
    return rc;
}

int chat_stream_role(chat_stream_t *s)
{
    json_t *d = json_object();

    if (d && (xjson_set(d, "role", json_string("assistant")) != 0 ||
              xjson_set(d, "content", json_string("")) != 0)) {
        json_decref(d);
        d = NULL;
    }
    return chat_stream_chunk(s, "", d, NULL, "", NULL); /* NULL: no memory */
}

int chat_stream_usage_chunk(chat_stream_t *s, json_t *usage)
{
    buf_t *out = s->out;
    size_t len0 = out->len;
    int rc = 0;

    if (!usage || buf_append(out, "data: ", 6) != 0 ||
        buf_append(out, s->prefix, s->prefix_len) != 0 ||
        buf_appends(out, "\"choices\":[],\"usage\":") != 0 || xjson_put(out, usage) != 0 ||
        buf_append(out, "}\n\n", 3) != 0) {
        xjson_buf_cut(out, len0);
        rc = NOMEM;
    }
    json_decref(usage);
    return rc;
}

int chat_stream_done(chat_stream_t *s)
{
    s->done = 1;
    return buf_appends(s->out, "data: [DONE]\n\n") == 0 ? 0 : NOMEM;
}

int chat_stream_event(chat_stream_t *s, json_t *doc)
{
    buf_t *out = s->out;
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

/* An sse_feed / sse_finish result as the pair's. */
static int result(chat_stream_t *s, int rc)
{
    if (rc == CHAT_STOPPED)
        rc = 0;
    else if (rc == -1) /* an event past SSE_EVENT_MAX (or no memory in the reader) */
        rc = BAD;
    if (rc)
        s->result = rc;
    s->out = NULL;
    return rc;
}

int chat_stream_feed(void *st, const char *data, size_t len, buf_t *out)
{
    chat_stream_t *s = st;

    if (s->result || s->done)
        return s->result;
    s->out = out;
    return result(s, sse_feed(&s->rd, data, len, s->on_event, s));
}

int chat_stream_end(void *st, int complete, buf_t *out)
{
    chat_stream_t *s = st;
    int rc;

    if (s->result || s->done || !complete)
        return s->result;
    s->out = out;
    rc = sse_finish(&s->rd, s->on_event, s);
    if (rc == 0 && s->tail && !s->done)
        rc = s->tail(s);
    return result(s, rc);
}

void chat_stream_free(void *st)
{
    chat_stream_t *s = st;
    sse_reader_free(&s->rd);
}
