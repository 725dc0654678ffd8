/* messages_openai_answer.c - the answers of an OpenAI-compatible provider to an Anthropic
 * Messages client: the response, the errors and the stream (the design note, with what is
 * translated and dropped, is messages_openai.c's). */
#include "server/xlate/messages_openai.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/common/errors.h"
#include "server/xlate/sse.h"
#include "server/xlate/xfast.h"
#include "server/xlate/xjson.h"

#define MO_TOOLS_MAX 64

/* ---- response -------------------------------------------------------------------------- */

typedef struct oai_usage_s {
    uint64_t prompt, completion, cached;
} oai_usage_t;

static uint64_t count_of(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void read_usage(const json_t *u, oai_usage_t *x)
{
    const json_t *cached =
        json_object_get(json_object_get(u, "prompt_tokens_details"), "cached_tokens");

    x->prompt = count_of(json_object_get(u, "prompt_tokens"));
    x->completion = count_of(json_object_get(u, "completion_tokens"));
    if (!json_is_integer(cached))
        cached = json_object_get(u, "prompt_cache_hit_tokens"); /* DeepSeek */
    x->cached = count_of(cached);
    if (x->cached > x->prompt)
        x->cached = x->prompt;
}

static json_t *usage_json(const oai_usage_t *u)
{
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", (json_int_t)(u->prompt - u->cached),
                     "cache_creation_input_tokens", (json_int_t)0, "cache_read_input_tokens",
                     (json_int_t)u->cached, "output_tokens", (json_int_t)u->completion);
}

enum finish { FINISH_NONE, FINISH_STOP, FINISH_LENGTH, FINISH_TOOLS, FINISH_FILTER };

static int finish_of(const char *fr)
{
    if (!fr)
        return FINISH_NONE;
    if (strcmp(fr, "length") == 0)
        return FINISH_LENGTH;
    if (strcmp(fr, "tool_calls") == 0 || strcmp(fr, "function_call") == 0)
        return FINISH_TOOLS;
    if (strcmp(fr, "content_filter") == 0)
        return FINISH_FILTER;
    return FINISH_STOP; /* stop, and what other providers say for an end (eos, ...) */
}

static const char *stop_reason(int finish, int any_tool)
{
    switch (finish) {
    case FINISH_LENGTH:
        return "max_tokens";
    case FINISH_TOOLS:
        return "tool_use";
    case FINISH_FILTER:
        return "refusal";
    default:
        return any_tool ? "tool_use" : "end_turn";
    }
}

/* A tool call's arguments -> tool_use input (see the design note). */
static json_t *tool_input(const json_t *args)
{
    const char *s = json_string_value(args);
    size_t n = json_string_length(args), k = 0;
    json_t *in;

    if (json_is_object(args))
        return json_incref((json_t *)args);
    while (k < n && (s[k] == ' ' || s[k] == '\n' || s[k] == '\r' || s[k] == '\t'))
        k++;
    if (!s || k == n)
        return json_object();
    in = json_loadb(s, n, XJSON_LOAD, NULL);
    if (json_is_object(in))
        return in;
    json_decref(in);
    return json_pack("{s:O}", "_raw", args);
}

static int text_blocks(const json_t *msg, json_t *content)
{
    const json_t *c = json_object_get(msg, "content"), *part;
    size_t i;

    if (!c || json_is_null(c))
        c = json_object_get(msg, "refusal");
    if (json_is_string(c))
        return json_string_length(c) == 0
                   ? 0
                   : xjson_push(content, json_pack("{s:s,s:O}", "type", "text", "text", c));
    if (c && !json_is_null(c) && !json_is_array(c))
        return XLATE_EBAD;
    json_array_foreach(c, i, part)
    {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t) && json_string_length(t) > 0 &&
            xjson_push(content, json_pack("{s:s,s:O}", "type", "text", "text", t)) != 0)
            return XLATE_ENOMEM;
    }
    return 0;
}

static int tool_blocks(const json_t *calls, const xlate_opts_t *o, json_t *content)
{
    const json_t *tc;
    size_t i;

    if (calls && !json_is_null(calls) && !json_is_array(calls))
        return XLATE_EBAD;
    json_array_foreach(calls, i, tc)
    {
        const json_t *fn = json_object_get(tc, "function"), *id = json_object_get(tc, "id");
        const json_t *name = json_object_get(fn, "name");
        json_t *blk;

        if (!json_is_string(name))
            return XLATE_EBAD;
        blk = json_pack("{s:s,s:o,s:O,s:o}", "type", "tool_use", "id",
                        json_is_string(id) ? json_incref((json_t *)id)
                                           : xjson_made_id("toolu_", o->request_id, (long long)i),
                        "name", name, "input", tool_input(json_object_get(fn, "arguments")));
        if (xjson_push(content, blk) != 0)
            return XLATE_ENOMEM;
    }
    return 0;
}

/* The completion's own model name, when the client's is not known. */
static json_t *model_of(const json_t *in)
{
    const json_t *m = json_object_get(in, "model");
    return json_is_string(m) ? json_incref((json_t *)m) : json_string("");
}

int xlate_mo_response(const char *body, size_t len, const xlate_opts_t *o, buf_t *out)
{
    json_t *in = json_loadb(body, len, XJSON_LOAD, NULL), *res = NULL, *content = NULL;
    const json_t *c0 = json_array_get(json_object_get(in, "choices"), 0);
    const json_t *msg = json_object_get(c0, "message"), *id = json_object_get(in, "id");
    oai_usage_t u = {0, 0, 0};
    int rc;

    if (!json_is_object(in) || !json_is_object(msg)) {
        rc = XLATE_EBAD;
        goto exit;
    }
    if (!(content = json_array())) {
        rc = XLATE_ENOMEM;
        goto exit;
    }
    if ((rc = text_blocks(msg, content)) != 0 ||
        (rc = tool_blocks(json_object_get(msg, "tool_calls"), o, content)) != 0)
        goto exit;
    read_usage(json_object_get(in, "usage"), &u);
    res = json_pack("{s:o,s:s,s:s,s:o,s:O,s:s,s:n,s:o}", "id",
                    json_is_string(id) ? xjson_made_id("msg_", json_string_value(id), -1)
                                       : xjson_made_id("msg_", o->request_id, -1),
                    "type", "message", "role", "assistant", "model",
                    o->client_model ? xjson_str(o->client_model) : model_of(in), "content", content,
                    "stop_reason",
                    stop_reason(finish_of(json_string_value(json_object_get(c0, "finish_reason"))),
                                json_array_size(json_object_get(msg, "tool_calls")) > 0),
                    "stop_sequence", "usage", usage_json(&u));
    rc = res ? xjson_put(out, res) : XLATE_ENOMEM;
exit:
    json_decref(content);
    json_decref(res);
    json_decref(in);
    return rc;
}

/* ---- errors ---------------------------------------------------------------------------- */

int xlate_mo_error(int status, const char *body, size_t len, buf_t *out, int *status_out)
{
    json_t *doc = json_loadb(body, len, XJSON_LOAD, NULL), *res;
    int rc;

    *status_out = status;
    res = json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type",
                    api_anthropic_error_type(status), "message",
                    xjson_error_text(doc, status, body, len));
    rc = res ? xjson_put(out, res) : XLATE_ENOMEM;
    json_decref(res);
    json_decref(doc);
    return rc;
}

/* ---- stream ---------------------------------------------------------------------------- */

enum open_block { OPEN_NONE, OPEN_TEXT, OPEN_TOOL };

typedef struct mo_stream_s {
    sse_reader_t sse;
    char model[256];     /* the client's model name (cut if longer) */
    char request_id[96]; /* for ids the provider did not give */
    int started;         /* message_start sent */
    int ended;           /* message_stop or an error event sent: nothing more */
    int failed;          /* XLATE_EBAD returned: every later call returns it */
    int open;            /* enum open_block */
    int open_tool;       /* the tool slot whose block is open */
    int any_tool;
    uint32_t blocks;                    /* content blocks started: the next one's index */
    unsigned ntools;                    /* tool calls seen */
    long long tool_index[MO_TOOLS_MAX]; /* their tool_calls[].index */
    int finish;                         /* enum finish: the last finish_reason */
    oai_usage_t usage; /* of the include_usage chunk (or the last chunk that had one) */
} mo_stream_t;

_Static_assert(sizeof(mo_stream_t) <= XLATE_MO_STREAM_SIZE, "XLATE_MO_STREAM_SIZE is too small");

typedef struct feed_s {
    mo_stream_t *s;
    buf_t *out;
} feed_t;

/* event: name\ndata: JSON\n\n; steals data (NULL: a failed allocation). */
static int emit(buf_t *out, const char *name, json_t *data)
{
    int rc = data ? 0 : XLATE_ENOMEM;

    if (rc == 0 && (buf_appends(out, "event: ") != 0 || buf_appends(out, name) != 0 ||
                    buf_appends(out, "\ndata: ") != 0))
        rc = XLATE_ENOMEM;
    if (rc == 0)
        rc = xjson_put(out, data);
    if (rc == 0 && buf_append(out, "\n\n", 2) != 0)
        rc = XLATE_ENOMEM;
    json_decref(data);
    return rc;
}

/* The deltas are most of a stream: written directly, s[0..n) valid UTF-8 (from jansson)
 * escaped; or, raw given, the string as the provider wrote it (the fast path's, xfast.h). */
static int emit_delta(buf_t *out, uint32_t index, int text, const char *s, size_t n,
                      const xfast_span_t *raw)
{
    char head[192];
    int k =
        snprintf(head, sizeof(head),
                 "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                 "\"index\":%u,\"delta\":{\"type\":\"%s\",\"%s\":\"",
                 index, text ? "text_delta" : "input_json_delta", text ? "text" : "partial_json");

    if (buf_append(out, head, (size_t)k) != 0)
        return XLATE_ENOMEM;
    if (raw) {
        if (buf_append(out, raw->s, raw->n) != 0)
            return XLATE_ENOMEM;
    } else {
        if (buf_reserve(out, 6 * n + 1) != 0)
            return XLATE_ENOMEM;
        out->len += json_escape(out->data + out->len, 6 * n + 1, s, n); /* 6 bytes a byte */
    }
    return buf_appends(out, "\"}}\n\n") != 0 ? XLATE_ENOMEM : 0;
}

/* ---- the fast path (xfast.h): a chunk with one choice whose delta is only content ------
 * {"id":"...","object":"chat.completion.chunk","created":N,"model":"...",
 *  "choices":[{"index":0,"delta":{"content":"..."},"logprobs":null,"finish_reason":null}]}
 * members in any order; also system_fingerprint, service_tier, obfuscation, usage: null,
 * and in the delta role, refusal: null, tool_calls: null, reasoning_content: null (what
 * OpenAI, DeepSeek and the relays send with a text delta): the slow path reads nothing
 * else from these. */

static int fast_delta_cb(void *ud, unsigned k, xfast_cur_t *c)
{
    xfast_span_t role;

    switch (k) {
    case 0:
        return xfast_string(c, ud);
    case 1:
        return xfast_string_or_null(c, &role);
    default:
        return xfast_null(c);
    }
}

static int fast_choice_cb(void *ud, unsigned k, xfast_cur_t *c)
{
    static const char *const delta_keys[] = {"content", "role", "refusal", "tool_calls",
                                             "reasoning_content"};
    uint64_t index;
    uint32_t seen;

    switch (k) {
    case 0:
        return xfast_uint(c, &index) == 0 && index == 0 ? 0 : -1;
    case 1:
        return xfast_object(c, delta_keys, 5, fast_delta_cb, ud, &seen) == 0 && (seen & 1) ? 0 : -1;
    default:
        return xfast_null(c);
    }
}

static int fast_chunk_cb(void *ud, unsigned k, xfast_cur_t *c)
{
    static const char *const choice_keys[] = {"index", "delta", "logprobs", "finish_reason"};
    xfast_span_t str;
    uint64_t created;
    uint32_t seen;

    switch (k) {
    case 0: /* id, object, model, obfuscation */
    case 1:
    case 3:
    case 6:
        return xfast_string(c, &str);
    case 2:
        return xfast_uint(c, &created);
    case 4: /* system_fingerprint, service_tier */
    case 5:
        return xfast_string_or_null(c, &str);
    case 7:
        return xfast_null(c);
    default: /* choices: one */
        return xfast_char(c, '[') == 0 &&
                       xfast_object(c, choice_keys, 4, fast_choice_cb, ud, &seen) == 0 &&
                       (seen & 2) && xfast_char(c, ']') == 0
                   ? 0
                   : -1;
    }
}

/* 1 and *text if data is a chunk of text only (see above), else 0. */
static int fast_text(const char *data, size_t len, xfast_span_t *text)
{
    static const char *const keys[] = {
        "id",           "object",      "created", "model",  "system_fingerprint",
        "service_tier", "obfuscation", "usage",   "choices"};
    xfast_cur_t c = xfast_cur(data, len);
    uint32_t seen;

    text->s = NULL;
    return xfast_enabled() && xfast_object(&c, keys, 9, fast_chunk_cb, text, &seen) == 0 &&
           xfast_end(&c) == 0 && (seen & 0x100) && text->s;
}

static int message_start(feed_t *f, const json_t *chunk)
{
    mo_stream_t *s = f->s;
    const char *id = json_string_value(json_object_get(chunk, "id"));

    s->started = 1;
    return emit(
        f->out, "message_start",
        json_pack("{s:s,s:{s:o,s:s,s:s,s:o,s:[],s:n,s:n,s:{s:i,s:i}}}", "type", "message_start",
                  "message", "id", xjson_made_id("msg_", id ? id : s->request_id, -1), "type",
                  "message", "role", "assistant", "model", xjson_str(s->model), "content",
                  "stop_reason", "stop_sequence", "usage", "input_tokens", 0, "output_tokens", 0));
}

static int close_block(feed_t *f)
{
    mo_stream_t *s = f->s;

    if (s->open == OPEN_NONE)
        return 0;
    s->open = OPEN_NONE;
    return emit(
        f->out, "content_block_stop",
        json_pack("{s:s,s:I}", "type", "content_block_stop", "index", (json_int_t)s->blocks - 1));
}

/* Opens the next block (closing the open one); steals block. */
static int open_block(feed_t *f, int kind, json_t *block)
{
    mo_stream_t *s = f->s;
    int rc = close_block(f);

    if (rc != 0) {
        json_decref(block);
        return rc;
    }
    s->open = kind;
    return emit(f->out, "content_block_start",
                json_pack("{s:s,s:I,s:o}", "type", "content_block_start", "index",
                          (json_int_t)s->blocks++, "content_block", block));
}

static int text_delta(feed_t *f, const json_t *text)
{
    int rc = 0;

    if (json_string_length(text) == 0)
        return 0; /* the role chunk's "" opens nothing */
    if (f->s->open != OPEN_TEXT)
        rc = open_block(f, OPEN_TEXT, json_pack("{s:s,s:s}", "type", "text", "text", ""));
    return rc ? rc
              : emit_delta(f->out, f->s->blocks - 1, 1, json_string_value(text),
                           json_string_length(text), NULL);
}

static int tool_delta(feed_t *f, size_t k, const json_t *tc)
{
    mo_stream_t *s = f->s;
    const json_t *fn = json_object_get(tc, "function"), *ix = json_object_get(tc, "index");
    const json_t *id = json_object_get(tc, "id"), *name = json_object_get(fn, "name");
    const json_t *args = json_object_get(fn, "arguments");
    long long index = json_is_integer(ix) ? json_integer_value(ix) : (long long)k;
    unsigned slot = 0;
    int rc = 0;

    if (!json_is_object(tc) || (args && !json_is_null(args) && !json_is_string(args)))
        return XLATE_EBAD;
    while (slot < s->ntools && s->tool_index[slot] != index)
        slot++;
    if (slot == s->ntools) { /* a new call: its block */
        if (s->ntools == MO_TOOLS_MAX)
            return XLATE_EBAD;
        s->tool_index[s->ntools++] = index;
        rc = open_block(
            f, OPEN_TOOL,
            json_pack("{s:s,s:o,s:o,s:{}}", "type", "tool_use", "id",
                      json_is_string(id) ? json_incref((json_t *)id)
                                         : xjson_made_id("toolu_", s->request_id, (long long)slot),
                      "name", json_is_string(name) ? json_incref((json_t *)name) : json_string(""),
                      "input"));
        s->open_tool = (int)slot;
        s->any_tool = 1;
    }
    if (rc != 0 || json_string_length(args) == 0)
        return rc;
    if (s->open != OPEN_TOOL || s->open_tool != (int)slot)
        return XLATE_EBAD; /* input for a block already closed */
    return emit_delta(f->out, s->blocks - 1, 0, json_string_value(args), json_string_length(args),
                      NULL);
}

static int delta(feed_t *f, const json_t *d)
{
    const json_t *text = json_object_get(d, "content"), *calls = json_object_get(d, "tool_calls");
    const json_t *tc;
    size_t k;
    int rc = 0;

    if ((text && !json_is_null(text) && !json_is_string(text)) ||
        (calls && !json_is_null(calls) && !json_is_array(calls)))
        return XLATE_EBAD;
    if (json_is_string(text))
        rc = text_delta(f, text);
    json_array_foreach(calls, k, tc)
    {
        if (rc == 0)
            rc = tool_delta(f, k, tc);
    }
    return rc;
}

/* [DONE], or the end of a complete stream: what is open closed, the message ended. */
static int finish(feed_t *f)
{
    mo_stream_t *s = f->s;
    int rc = s->started ? 0 : message_start(f, NULL);

    if (rc == 0)
        rc = close_block(f);
    if (rc == 0)
        rc = emit(f->out, "message_delta",
                  json_pack("{s:s,s:{s:s,s:n},s:o}", "type", "message_delta", "delta",
                            "stop_reason", stop_reason(s->finish, s->any_tool), "stop_sequence",
                            "usage", usage_json(&s->usage)));
    if (rc == 0)
        rc = emit(f->out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    s->ended = 1;
    return rc;
}

/* An error object in the stream -> Anthropic's error event, the last one. */
static int stream_error(feed_t *f, const json_t *doc)
{
    const json_t *e = json_object_get(doc, "error"), *m = xjson_error_message(doc);
    const char *t = json_string_value(json_object_get(e, "type"));
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *type = "api_error";
    char both[160];

    snprintf(both, sizeof(both), "%s %s", t ? t : "", code ? code : "");
    if (strstr(both, "rate_limit") || strstr(both, "quota"))
        type = "rate_limit_error";
    else if (strstr(both, "overloaded") || strstr(both, "unavailable"))
        type = "overloaded_error";
    else if (strstr(both, "invalid_request"))
        type = "invalid_request_error";
    f->s->ended = 1;
    return emit(
        f->out, "error",
        json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type", type, "message",
                  m ? json_incref((json_t *)m) : json_string("the provider's stream failed")));
}

static int chunk(feed_t *f, const char *data, size_t len)
{
    mo_stream_t *s = f->s;
    json_t *doc;
    const json_t *choices, *c, *e;
    xfast_span_t text;
    size_t i, a = 0, b = len;
    int rc = 0;

    while (a < b && (data[a] == ' ' || data[a] == '\t'))
        a++;
    while (b > a && (data[b - 1] == ' ' || data[b - 1] == '\t' || data[b - 1] == '\r'))
        b--;
    if (b - a == 6 && memcmp(data + a, "[DONE]", 6) == 0)
        return finish(f);
    if (s->started && s->open == OPEN_TEXT && fast_text(data, len, &text))
        return text.n ? emit_delta(f->out, s->blocks - 1, 1, NULL, 0, &text) : 0;
    doc = json_loadb(data, len, XJSON_LOAD, NULL);
    choices = json_object_get(doc, "choices");
    e = json_object_get(doc, "error");
    if (!json_is_object(doc) || (choices && !json_is_null(choices) && !json_is_array(choices))) {
        rc = XLATE_EBAD;
        goto exit;
    }
    if (e && !json_is_null(e)) {
        rc = stream_error(f, doc);
        goto exit;
    }
    if (!s->started && (rc = message_start(f, doc)) != 0)
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
        if (d && (rc = delta(f, d)) != 0)
            break;
        if (fr) {
            s->finish = finish_of(fr);
            if ((rc = close_block(f)) != 0)
                break;
        }
    }
    if (json_is_object(json_object_get(doc, "usage")))
        read_usage(json_object_get(doc, "usage"), &s->usage);
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
    rc = chunk(f, data, len);
    if (rc != 0)
        xjson_buf_cut(f->out, at);
    return rc;
}

/* sse.h's own -1 (an event past SSE_EVENT_MAX, or no memory: it does not say which) is
 * taken for the provider's fault. */
static int stream_rc(mo_stream_t *s, int rc)
{
    if (rc == -1)
        rc = XLATE_EBAD;
    if (rc == XLATE_EBAD)
        s->failed = 1;
    return rc;
}

void xlate_mo_stream_init(void *st, const xlate_opts_t *o)
{
    mo_stream_t *s = st;

    memset(s, 0, sizeof(*s));
    sse_reader_init(&s->sse);
    xjson_copy_cut(s->model, sizeof(s->model), o->client_model ? o->client_model : o->model);
    xjson_copy_cut(s->request_id, sizeof(s->request_id), o->request_id);
}

int xlate_mo_stream_feed(void *st, const char *data, size_t len, buf_t *out)
{
    mo_stream_t *s = st;
    feed_t f = {s, out};

    if (s->failed)
        return XLATE_EBAD;
    return stream_rc(s, sse_feed(&s->sse, data, len, on_event_cb, &f));
}

int xlate_mo_stream_end(void *st, int complete, buf_t *out)
{
    mo_stream_t *s = st;
    feed_t f = {s, out};
    int rc;

    if (s->failed)
        return XLATE_EBAD;
    if (!complete || s->ended)
        return 0; /* a cut stream: the client sees it cut, as the provider's was */
    rc = stream_rc(s, sse_finish(&s->sse, on_event_cb, &f));
    if (rc == 0 && !s->ended) {
        size_t at = out->len;
        if ((rc = finish(&f)) != 0)
            xjson_buf_cut(out, at);
    }
    return rc;
}

void xlate_mo_stream_free(void *st)
{
    sse_reader_free(&((mo_stream_t *)st)->sse);
}
