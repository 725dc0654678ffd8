/* messages_openai_answer.c - the answers of an OpenAI-compatible provider to an Anthropic
 * Messages client: the response, the errors and the stream (the design note, with what is
 * translated and dropped, is messages_openai.c's). What is read of the provider's answer
 * and chunks (usage, finish_reason, tool calls, the chunk's checks, the SSE reader) is
 * chat_up.c's; this file writes the Anthropic side, and reads content-only chunks by its
 * own scan (the fast path). */
#include "server/xlate/messages_openai.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/common/errors.h"
#include "server/xlate/chat_up.h"
#include "server/xlate/xfast.h"
#include "server/xlate/xjson.h"

#define MO_TOOLS_MAX 64

/* ---- response -------------------------------------------------------------------------- */

static json_t *usage_json(const chat_up_usage_t *u)
{
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", (json_int_t)(u->prompt - u->cached),
                     "cache_creation_input_tokens", (json_int_t)0, "cache_read_input_tokens",
                     (json_int_t)u->cached, "output_tokens", (json_int_t)u->completion);
}

static const char *stop_reason(int finish, int any_tool)
{
    switch (finish) {
    case CHAT_UP_FINISH_LENGTH:
        return "max_tokens";
    case CHAT_UP_FINISH_TOOLS:
        return "tool_use";
    case CHAT_UP_FINISH_FILTER:
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

typedef struct blocks_s {
    const xlate_opts_t *o;
    json_t *content;
} blocks_t;

static int tool_block_cb(void *ud, size_t i, const json_t *id, const json_t *name,
                         const json_t *args)
{
    blocks_t *b = ud;
    json_t *blk =
        json_pack("{s:s,s:o,s:O,s:o}", "type", "tool_use", "id",
                  json_is_string(id) ? json_incref((json_t *)id)
                                     : xjson_made_id("toolu_", b->o->request_id, (long long)i),
                  "name", name, "input", tool_input(args));

    return xjson_push(b->content, blk) != 0 ? XLATE_ENOMEM : 0;
}

int xlate_mo_response(const char *body, size_t len, const xlate_opts_t *o, buf_t *out)
{
    chat_up_answer_t a;
    const json_t *id;
    json_t *res = NULL, *content = NULL;
    blocks_t blocks = {o, NULL};
    int rc;

    if ((rc = chat_up_answer(body, len, &a)) != 0)
        goto exit;
    if (!(content = blocks.content = json_array())) {
        rc = XLATE_ENOMEM;
        goto exit;
    }
    if ((rc = text_blocks(a.message, content)) != 0 ||
        (rc = chat_up_calls(a.message, tool_block_cb, &blocks)) != 0)
        goto exit;
    id = json_object_get(a.doc, "id");
    res = json_pack(
        "{s:o,s:s,s:s,s:o,s:O,s:s,s:n,s:o}", "id",
        json_is_string(id) ? xjson_made_id("msg_", json_string_value(id), -1)
                           : xjson_made_id("msg_", o->request_id, -1),
        "type", "message", "role", "assistant", "model", xjson_str(chat_up_answer_model(&a, o)),
        "content", content, "stop_reason",
        stop_reason(a.finish, json_array_size(json_object_get(a.message, "tool_calls")) > 0),
        "stop_sequence", "usage", usage_json(&a.usage));
    rc = res ? xjson_put(out, res) : XLATE_ENOMEM;
exit:
    json_decref(content);
    json_decref(res);
    chat_up_answer_free(&a);
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

#define MO_REQUEST_ID_MAX 96 /* of the request id kept, for ids the provider did not give */

typedef struct mo_stream_s {
    chat_up_stream_t up; /* first: the reader, model, request id, flags, finish, usage */
    int open;            /* enum open_block */
    int open_tool;       /* the tool slot whose block is open */
    int any_tool;
    uint32_t blocks;                    /* content blocks started: the next one's index */
    unsigned ntools;                    /* tool calls seen */
    long long tool_index[MO_TOOLS_MAX]; /* their tool_calls[].index */
} mo_stream_t;

_Static_assert(sizeof(mo_stream_t) <= XLATE_MO_STREAM_SIZE, "XLATE_MO_STREAM_SIZE is too small");

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

static int message_start(chat_up_stream_t *up, const json_t *chunk, buf_t *out)
{
    const char *id = json_string_value(json_object_get(chunk, "id"));

    up->started = 1;
    return emit(
        out, "message_start",
        json_pack("{s:s,s:{s:o,s:s,s:s,s:o,s:[],s:n,s:n,s:{s:i,s:i}}}", "type", "message_start",
                  "message", "id", xjson_made_id("msg_", id ? id : up->request_id, -1), "type",
                  "message", "role", "assistant", "model", xjson_str(up->model), "content",
                  "stop_reason", "stop_sequence", "usage", "input_tokens", 0, "output_tokens", 0));
}

static int close_block(chat_up_stream_t *up, buf_t *out)
{
    mo_stream_t *s = (mo_stream_t *)up;

    if (s->open == OPEN_NONE)
        return 0;
    s->open = OPEN_NONE;
    return emit(
        out, "content_block_stop",
        json_pack("{s:s,s:I}", "type", "content_block_stop", "index", (json_int_t)s->blocks - 1));
}

/* Opens the next block (closing the open one); steals block. */
static int open_block(mo_stream_t *s, int kind, json_t *block, buf_t *out)
{
    int rc = close_block(&s->up, out);

    if (rc != 0) {
        json_decref(block);
        return rc;
    }
    s->open = kind;
    return emit(out, "content_block_start",
                json_pack("{s:s,s:I,s:o}", "type", "content_block_start", "index",
                          (json_int_t)s->blocks++, "content_block", block));
}

static int text_delta(chat_up_stream_t *up, const json_t *text, buf_t *out)
{
    mo_stream_t *s = (mo_stream_t *)up;
    int rc = 0;

    if (s->open != OPEN_TEXT)
        rc = open_block(s, OPEN_TEXT, json_pack("{s:s,s:s}", "type", "text", "text", ""), out);
    return rc ? rc
              : emit_delta(out, s->blocks - 1, 1, json_string_value(text), json_string_length(text),
                           NULL);
}

static int tool_delta(chat_up_stream_t *up, long long index, const json_t *id, const json_t *name,
                      const json_t *args, buf_t *out)
{
    mo_stream_t *s = (mo_stream_t *)up;
    unsigned slot = 0;
    int rc = 0;

    while (slot < s->ntools && s->tool_index[slot] != index)
        slot++;
    if (slot == s->ntools) { /* a new call: its block */
        if (s->ntools == MO_TOOLS_MAX)
            return XLATE_EBAD;
        s->tool_index[s->ntools++] = index;
        rc = open_block(
            s, OPEN_TOOL,
            json_pack("{s:s,s:o,s:o,s:{}}", "type", "tool_use", "id",
                      json_is_string(id) ? json_incref((json_t *)id)
                                         : xjson_made_id("toolu_", up->request_id, (long long)slot),
                      "name", json_is_string(name) ? json_incref((json_t *)name) : json_string(""),
                      "input"),
            out);
        s->open_tool = (int)slot;
        s->any_tool = 1;
    }
    if (rc != 0 || json_string_length(args) == 0)
        return rc;
    if (s->open != OPEN_TOOL || s->open_tool != (int)slot)
        return XLATE_EBAD; /* input for a block already closed */
    return emit_delta(out, s->blocks - 1, 0, json_string_value(args), json_string_length(args),
                      NULL);
}

/* [DONE], or the end of a complete stream: what is open closed, the message ended. */
static int finish(chat_up_stream_t *up, buf_t *out)
{
    mo_stream_t *s = (mo_stream_t *)up;
    int rc = up->started ? 0 : message_start(up, NULL, out);

    if (rc == 0)
        rc = close_block(up, out);
    if (rc == 0)
        rc = emit(out, "message_delta",
                  json_pack("{s:s,s:{s:s,s:n},s:o}", "type", "message_delta", "delta",
                            "stop_reason", stop_reason(up->finish, s->any_tool), "stop_sequence",
                            "usage", usage_json(&up->usage)));
    if (rc == 0)
        rc = emit(out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    up->ended = 1;
    return rc;
}

/* An error object in the stream -> Anthropic's error event, the last one. */
static int stream_error(chat_up_stream_t *up, const json_t *doc, buf_t *out)
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
    up->ended = 1;
    return emit(
        out, "error",
        json_pack("{s:s,s:{s:s,s:o}}", "type", "error", "error", "type", type, "message",
                  m ? json_incref((json_t *)m) : json_string("the provider's stream failed")));
}

/* A chunk of text into the open text block by the scan (the fast path), else jansson's. */
static int event_cb(chat_up_stream_t *up, const char *data, size_t len, buf_t *out)
{
    mo_stream_t *s = (mo_stream_t *)up;
    xfast_span_t text;

    if (up->started && s->open == OPEN_TEXT && fast_text(data, len, &text))
        return text.n ? emit_delta(out, s->blocks - 1, 1, NULL, 0, &text) : 0;
    return chat_up_chunk(up, data, len, out);
}

static const chat_up_client_t mo_client = {
    .event = event_cb,
    .start = message_start,
    .text = text_delta,
    .tool = tool_delta,
    .close = close_block,
    .done = finish,
    .error = stream_error,
};

void xlate_mo_stream_init(void *st, const xlate_opts_t *o)
{
    mo_stream_t *s = st;

    memset(s, 0, sizeof(*s));
    chat_up_stream_init(&s->up, &mo_client, o, MO_REQUEST_ID_MAX);
}

int xlate_mo_stream_end(void *st, int complete, buf_t *out)
{
    mo_stream_t *s = st;
    int rc;

    if (s->up.failed)
        return XLATE_EBAD;
    if (!complete || s->up.ended)
        return 0; /* a cut stream: the client sees it cut, as the provider's was */
    rc = chat_up_stream_drain(&s->up, out);
    if (rc == 0 && !s->up.ended) {
        size_t at = out->len;
        if ((rc = finish(&s->up, out)) != 0)
            xjson_buf_cut(out, at);
    }
    return rc;
}

void xlate_mo_stream_free(void *st)
{
    chat_up_stream_free(&((mo_stream_t *)st)->up);
}
