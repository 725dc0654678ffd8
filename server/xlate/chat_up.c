/* chat_up.c - the chat-completions provider's side of the pairs served on it: the upstream
 * request's common members, the answer's usage, finish_reason and tool calls, and the
 * chunk stream read event by event for a pair's hooks (see chat_up.h). */
#include "server/xlate/chat_up.h"

#include <string.h>

#include "server/xlate/xjson.h"

/* ---- the request ----------------------------------------------------------------------- */

int chat_up_parse(const char *body, size_t len, xlate_error_t *err, json_t **in)
{
    json_error_t jerr;

    memset(err, 0, sizeof(*err));
    *in = json_loadb(body, len, XJSON_LOAD, &jerr);
    if (!*in)
        return xjson_refusef(err, "", "request body: not valid JSON (%s, line %d, column %d)",
                             jerr.text, jerr.line, jerr.column);
    if (!json_is_object(*in))
        return xjson_refusef(err, "", "request body: must be a JSON object");
    return 0;
}

int chat_up_open(const json_t *in, const xlate_opts_t *o, xlate_error_t *err, json_t **req,
                 json_t **msgs)
{
    const char *model = o->model ? o->model : json_string_value(json_object_get(in, "model"));

    *req = *msgs = NULL;
    if (!model)
        return xjson_refusef(err, "model", "required");
    if (!(*req = json_object()) || xjson_set(*req, "model", xjson_str(model)) != 0 ||
        xjson_set(*req, "messages", *msgs = json_array()) != 0)
        return XLATE_ENOMEM;
    return 0;
}

int chat_up_push_msg(json_t *msgs, const char *role, json_t *content)
{
    json_t *m = json_object();
    int rc = m ? 0 : XLATE_ENOMEM;

    if (rc == 0)
        rc = xjson_set(m, "role", json_string(role));
    if (rc == 0)
        rc = xjson_set(m, "content", content);
    else
        json_decref(content);
    return rc == 0 ? xjson_push(msgs, m) : (json_decref(m), rc);
}

json_t *chat_up_user_content(json_t *parts)
{
    const json_t *first = json_array_get(parts, 0);
    json_t *t;

    if (json_array_size(parts) != 1 || !xjson_is_type(first, "text"))
        return parts;
    t = json_incref(json_object_get(first, "text"));
    json_decref(parts);
    return t;
}

json_t *chat_up_call(const json_t *id, const json_t *name, json_t *arguments)
{
    return json_pack("{s:O,s:s,s:{s:O,s:o}}", "id", id, "type", "function", "function", "name",
                     name, "arguments", arguments);
}

json_t *chat_up_image(json_t *url, const json_t *detail)
{
    json_t *iu = json_pack("{s:o}", "url", url);

    if (iu && detail && xjson_set(iu, "detail", json_incref((json_t *)detail)) != 0) {
        json_decref(iu);
        return NULL;
    }
    return iu ? json_pack("{s:s,s:o}", "type", "image_url", "image_url", iu) : NULL;
}

int chat_up_params(const json_t *in, const char *max_key, const xlate_opts_t *o, json_t *req,
                   xlate_error_t *err)
{
    static const char *const numbers[] = {"temperature", "top_p"};
    const json_t *v = json_object_get(in, max_key);
    int rc = 0;

    if (v && !json_is_null(v) && !json_is_integer(v))
        return xjson_refusef(err, max_key, "must be an integer");
    if (json_is_integer(v)) {
        json_int_t mt = json_integer_value(v);
        if (o->max_tokens_cap && mt > (json_int_t)o->max_tokens_cap)
            mt = o->max_tokens_cap; /* the deployment's cap (DeepSeek: 8192) */
        if ((rc = xjson_set(req, "max_tokens", json_integer(mt))) != 0)
            return rc;
    }
    for (size_t i = 0; i < 2; i++) {
        v = json_object_get(in, numbers[i]);
        if (v && !json_is_null(v) && !json_is_number(v))
            return xjson_refusef(err, numbers[i], "must be a number");
        if (json_is_number(v) && (rc = xjson_set(req, numbers[i], json_incref((json_t *)v))) != 0)
            return rc;
    }
    return 0;
}

int chat_up_tool(json_t *tools, const json_t *name, const json_t *description,
                 const json_t *parameters, const json_t *strict)
{
    static const char *const keys[] = {"description", "parameters", "strict"};
    const json_t *const vals[] = {description, parameters, strict};
    json_t *fn = json_pack("{s:O}", "name", name);
    int rc = fn ? 0 : XLATE_ENOMEM;

    for (size_t k = 0; rc == 0 && k < 3; k++)
        if (vals[k])
            rc = xjson_set(fn, keys[k], json_incref((json_t *)vals[k]));
    if (rc == 0)
        return xjson_push(tools, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    json_decref(fn);
    return rc;
}

json_t *chat_up_choose(const json_t *name)
{
    return json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name", name);
}

int chat_up_close(json_t *req, const xlate_opts_t *o, buf_t *out)
{
    int rc;

    if (o->stream &&
        ((rc = xjson_set(req, "stream", json_true())) != 0 ||
         (rc = xjson_set(req, "stream_options", json_pack("{s:b}", "include_usage", 1))) != 0))
        return rc;
    return xjson_put(out, req);
}

/* ---- the answer ------------------------------------------------------------------------ */

static uint64_t count_of(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

void chat_up_read_usage(const json_t *u, chat_up_usage_t *x)
{
    const json_t *cached =
        json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");

    if (!json_is_object(u))
        return;
    x->seen = 1;
    x->prompt = count_of(json_object_get(u, "prompt_tokens"));
    x->completion = count_of(json_object_get(u, "completion_tokens"));
    if (!json_is_integer(cached))
        cached = json_object_get(u, "prompt_cache_hit_tokens"); /* DeepSeek */
    x->cached = count_of(cached);
    if (x->cached > x->prompt)
        x->cached = x->prompt;
    x->reasoning = count_of(
        json_object_get(json_object_get(u, "completion_tokens_details"), "reasoning_tokens"));
}

int chat_up_finish_of(const char *fr)
{
    if (!fr)
        return CHAT_UP_FINISH_NONE;
    if (strcmp(fr, "length") == 0)
        return CHAT_UP_FINISH_LENGTH;
    if (strcmp(fr, "tool_calls") == 0 || strcmp(fr, "function_call") == 0)
        return CHAT_UP_FINISH_TOOLS;
    if (strcmp(fr, "content_filter") == 0)
        return CHAT_UP_FINISH_FILTER;
    return CHAT_UP_FINISH_STOP;
}

int chat_up_answer(const char *body, size_t len, chat_up_answer_t *a)
{
    const json_t *c0;

    memset(a, 0, sizeof(*a));
    a->doc = json_loadb(body, len, XJSON_LOAD, NULL);
    c0 = json_array_get(json_object_get(a->doc, "choices"), 0);
    a->message = json_object_get(c0, "message");
    if (!json_is_object(a->doc) || !json_is_object(a->message))
        return XLATE_EBAD;
    a->finish = chat_up_finish_of(json_string_value(json_object_get(c0, "finish_reason")));
    chat_up_read_usage(json_object_get(a->doc, "usage"), &a->usage);
    return 0;
}

void chat_up_answer_free(chat_up_answer_t *a)
{
    json_decref(a->doc);
    a->doc = NULL;
}

const char *chat_up_answer_model(const chat_up_answer_t *a, const xlate_opts_t *o)
{
    const char *m = json_string_value(json_object_get(a->doc, "model"));

    return o->client_model ? o->client_model : m ? m : "";
}

int chat_up_calls(const json_t *message, chat_up_call_cb cb, void *ud)
{
    const json_t *calls = json_object_get(message, "tool_calls"), *tc;
    size_t i;
    int rc;

    if (calls && !json_is_null(calls) && !json_is_array(calls))
        return XLATE_EBAD;
    json_array_foreach(calls, i, tc)
    {
        const json_t *fn = json_object_get(tc, "function"), *name = json_object_get(fn, "name");

        if (!json_is_string(name))
            return XLATE_EBAD;
        if ((rc = cb(ud, i, json_object_get(tc, "id"), name, json_object_get(fn, "arguments"))))
            return rc;
    }
    return 0;
}

/* ---- the stream ------------------------------------------------------------------------ */

typedef struct feed_s {
    chat_up_stream_t *s;
    buf_t *out;
} feed_t;

void chat_up_stream_init(chat_up_stream_t *s, const chat_up_client_t *client, const xlate_opts_t *o,
                         size_t request_id_max)
{
    memset(s, 0, sizeof(*s));
    sse_reader_init(&s->sse);
    s->client = client;
    xjson_copy_cut(s->model, sizeof(s->model), o->client_model ? o->client_model : o->model);
    xjson_copy_cut(s->request_id,
                   request_id_max < sizeof(s->request_id) ? request_id_max : sizeof(s->request_id),
                   o->request_id);
}

static int tool_delta(chat_up_stream_t *s, size_t k, const json_t *tc, buf_t *out)
{
    const json_t *fn = json_object_get(tc, "function"), *ix = json_object_get(tc, "index");
    const json_t *args = json_object_get(fn, "arguments");
    long long index = json_is_integer(ix) ? json_integer_value(ix) : (long long)k;

    if (!json_is_object(tc) || (args && !json_is_null(args) && !json_is_string(args)))
        return XLATE_EBAD;
    return s->client->tool(s, index, json_object_get(tc, "id"), json_object_get(fn, "name"), args,
                           out);
}

static int delta(chat_up_stream_t *s, const json_t *d, buf_t *out)
{
    const json_t *text = json_object_get(d, "content"), *calls = json_object_get(d, "tool_calls");
    const json_t *tc;
    size_t k;
    int rc = 0;

    if ((text && !json_is_null(text) && !json_is_string(text)) ||
        (calls && !json_is_null(calls) && !json_is_array(calls)))
        return XLATE_EBAD;
    if (json_string_length(text) > 0) /* the role chunk's "" opens nothing */
        rc = s->client->text(s, text, out);
    json_array_foreach(calls, k, tc)
    {
        if (rc == 0 && !s->ended)
            rc = tool_delta(s, k, tc, out);
    }
    return rc;
}

int chat_up_chunk(chat_up_stream_t *s, const char *data, size_t len, buf_t *out)
{
    json_t *doc;
    const json_t *choices, *c, *e;
    size_t i, a = 0, b = len;
    int rc = 0;

    while (a < b && (data[a] == ' ' || data[a] == '\t'))
        a++;
    while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t' || data[b - 1] == '\r'))
        b--;
    if (b - a == 6 && memcmp(data + a, "[DONE]", 6) == 0)
        return s->client->done(s, out);
    doc = json_loadb(data, len, XJSON_LOAD, NULL);
    choices = json_object_get(doc, "choices");
    e = json_object_get(doc, "error");
    if (!json_is_object(doc) || (choices && !json_is_null(choices) && !json_is_array(choices))) {
        rc = XLATE_EBAD;
        goto exit;
    }
    if (e && !json_is_null(e)) {
        rc = s->client->error(s, doc, out);
        goto exit;
    }
    if (!s->started && (rc = s->client->start(s, doc, out)) != 0)
        goto exit;
    json_array_foreach(choices, i, c)
    {
        const json_t *ix = json_object_get(c, "index"), *d = json_object_get(c, "delta");
        const char *fr = json_string_value(json_object_get(c, "finish_reason"));

        if (!json_is_object(c) || (d && !json_is_null(d) && !json_is_object(d))) {
            rc = XLATE_EBAD;
            break;
        }
        if (json_is_integer(ix) && json_integer_value(ix) != 0)
            continue; /* n is never sent: only the first choice is the answer */
        if (d && (rc = delta(s, d, out)) != 0)
            break;
        if (s->ended)
            break;
        if (fr) {
            s->finish = chat_up_finish_of(fr);
            if ((rc = s->client->close(s, out)) != 0)
                break;
        }
    }
    chat_up_read_usage(json_object_get(doc, "usage"), &s->usage);
exit:
    json_decref(doc);
    return rc;
}

/* One event of the provider; what it gives out is all or nothing. */
static int on_event_cb(void *ud, const char *event, const char *data, size_t len)
{
    feed_t *f = ud;
    size_t at = f->out->len;
    int rc;

    (void)event; /* chat streams name no events */
    if (f->s->ended)
        return 0;
    rc = f->s->client->event ? f->s->client->event(f->s, data, len, f->out)
                             : chat_up_chunk(f->s, data, len, f->out);
    if (rc != 0)
        xjson_buf_cut(f->out, at);
    return rc;
}

/* sse.h's own -1 (an event past SSE_EVENT_MAX, or no memory: it does not say which) is
 * taken for the provider's fault. */
static int stream_rc(chat_up_stream_t *s, int rc)
{
    if (rc == -1)
        rc = XLATE_EBAD;
    if (rc == XLATE_EBAD)
        s->failed = 1;
    return rc;
}

int chat_up_stream_feed(void *st, const char *data, size_t len, buf_t *out)
{
    chat_up_stream_t *s = st;
    feed_t f = {s, out};

    if (s->failed)
        return XLATE_EBAD;
    return stream_rc(s, sse_feed(&s->sse, data, len, on_event_cb, &f));
}

int chat_up_stream_drain(chat_up_stream_t *s, buf_t *out)
{
    feed_t f = {s, out};

    return stream_rc(s, sse_finish(&s->sse, on_event_cb, &f));
}

void chat_up_stream_free(chat_up_stream_t *s)
{
    sse_reader_free(&s->sse);
}
