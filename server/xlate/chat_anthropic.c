/* chat_anthropic.c - the answers of an Anthropic-native provider to an OpenAI chat completions
 * client: the message and its errors, the pair's table entry and what the module's files
 * share (the request: chat_anthropic_req.c; the stream: chat_anthropic_stream.c; see
 * chat_anthropic.h).
 *
 * Response (a Messages "message" -> chat.completion): id "chatcmpl-" + the message's id,
 *   created o->created, model o->client_model, one choice: content = the text blocks
 *   concatenated (null when there is none), tool_calls = the tool_use blocks ({id,
 *   type:"function", function:{name, arguments: the input as compact JSON}}); finish_reason
 *   from stop_reason (end_turn, stop_sequence, pause_turn -> stop; max_tokens and
 *   model_context_window_exceeded -> length; tool_use -> tool_calls; refusal ->
 *   content_filter; anything else -> stop); usage: prompt_tokens = input + cache writes +
 *   cache reads, completion_tokens = output, total, prompt_tokens_details.cached_tokens =
 *   cache reads. Dropped: thinking and redacted_thinking blocks, server tool blocks (web
 *   search, code execution: their results are in the text), citations, stop_sequence,
 *   container, service_tier. Not JSON, or not a message (type "message", content an array):
 *   XLATE_EBAD.
 *
 * Error ({"type":"error","error":{"type","message"}} -> {"error":{"message","type","param":
 *   null,"code"}}): code = Anthropic's error type; type = the same, except not_found_error
 *   and request_too_large -> invalid_request_error, api_error, overloaded_error and
 *   timeout_error -> server_error. Status kept, except 529 -> 503. A body of another shape
 *   keeps its error.message, type and code when it has them (a relay's OpenAI-shaped error);
 *   else (a proxy's HTML page) its first 512 bytes become the message, the type follows the
 *   status (401, 403, 429, 5xx: authentication_error, permission_error, rate_limit_error,
 *   server_error; else invalid_request_error) and code is null.
 */
#include "server/xlate/chat_anthropic.h"
#include "server/xlate/chat_out.h"
#include "server/xlate/xjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOMEM XLATE_ENOMEM
#define BAD   XLATE_EBAD

/* ---- shared ------------------------------------------------------------------------- */

static int append_cb(const char *p, size_t n, void *ud)
{
    return buf_append(ud, p, n) == 0 ? 0 : -1;
}

/* The fewest significant digits (15 to 17) that read back as v. */
static int digits_of(double v)
{
    char b[40];

    for (int p = 15; p < 17; p++) {
        snprintf(b, sizeof(b), "%.*g", p, v);
        if (strtod(b, NULL) == v)
            return p;
    }
    return 17;
}

static int real_digits(const json_t *j)
{
    int d = 15, e;
    size_t i;
    const char *k;
    json_t *v;

    switch (json_typeof(j)) {
    case JSON_REAL:
        return digits_of(json_real_value(j));
    case JSON_ARRAY:
        json_array_foreach(j, i, v) if ((e = real_digits(v)) > d && (d = e) == 17) break;
        break;
    case JSON_OBJECT:
        json_object_foreach((json_t *)j, k, v) if ((e = real_digits(v)) > d && (d = e) == 17) break;
        break;
    default:
        break;
    }
    return d;
}

int ca_dump(buf_t *out, const json_t *j)
{
    size_t len0 = out->len;
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(real_digits(j));

    if (json_dump_callback(j, append_cb, out, flags) == 0)
        return 0;
    out->len = len0;
    if (out->data)
        out->data[len0] = '\0';
    return -1;
}

json_t *ca_string_lossy(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    buf_t b = {0};
    size_t i = 0, k;
    json_t *j = NULL;

    while (i < n && (k = xjson_utf8_seq(u + i, n - i)) != 0)
        i += k;
    if (i == n)
        return json_stringn(n ? s : "", n);
    if (buf_append(&b, s, i) != 0)
        goto done;
    while (i < n) {
        k = xjson_utf8_seq(u + i, n - i);
        if (k ? buf_append(&b, s + i, k) != 0 : buf_append(&b, "\xef\xbf\xbd", 3) != 0)
            goto done;
        i += k ? k : 1;
    }
    j = json_stringn(b.data, b.len);
done:
    buf_free(&b);
    return j;
}

/* "chatcmpl-" + id[0..n) (n cut to max bytes, never inside a UTF-8 sequence) */
json_t *ca_chat_id(const char *id, size_t n, size_t max)
{
    char b[160];
    buf_t big = {0};
    json_t *j;

    if (n > max) {
        n = max;
        while (n && ((unsigned char)id[n] & 0xc0) == 0x80)
            n--;
    }
    if (9 + n <= sizeof(b)) {
        memcpy(b, "chatcmpl-", 9);
        memcpy(b + 9, id, n);
        return ca_string_lossy(b, 9 + n);
    }
    if (buf_append(&big, "chatcmpl-", 9) != 0 || buf_append(&big, id, n) != 0) {
        buf_free(&big);
        return NULL;
    }
    j = ca_string_lossy(big.data, big.len);
    buf_free(&big);
    return j;
}

const char *ca_finish_reason(const json_t *stop_reason)
{
    if (xjson_streq(stop_reason, "max_tokens") ||
        xjson_streq(stop_reason, "model_context_window_exceeded"))
        return "length";
    if (xjson_streq(stop_reason, "tool_use"))
        return "tool_calls";
    if (xjson_streq(stop_reason, "refusal"))
        return "content_filter";
    return "stop";
}

/* OpenAI's usage object of Anthropic's counts */
json_t *ca_usage_doc(json_int_t in, json_int_t cache_write, json_int_t cache_read, json_int_t out)
{
    json_int_t prompt = in + cache_write + cache_read;

    return chat_out_usage(prompt, out, prompt + out, cache_read, -1);
}

/* ---- errors ------------------------------------------------------------------------- */

/* {"error":{"message","type","param":null,"code"}}: type and code from Anthropic's error type
 * atype (a string, or NULL: from the status, code null). message: a string. */
json_t *ca_error_doc(const json_t *atype, const json_t *message, int status)
{
    const char *type = NULL; /* NULL: atype itself */

    if (!atype)
        type = chat_out_type_of_status(status);
    else if (xjson_streq(atype, "not_found_error") || xjson_streq(atype, "request_too_large"))
        type = "invalid_request_error";
    else if (xjson_streq(atype, "api_error") || xjson_streq(atype, "overloaded_error") ||
             xjson_streq(atype, "timeout_error"))
        type = "server_error";
    return chat_out_error_doc(type ? json_string(type) : json_incref((json_t *)atype),
                              atype ? json_incref((json_t *)atype) : json_null(), message);
}

/* The error document of a provider's error body (any bytes). */
static json_t *error_of_body(const char *body, size_t len, int status)
{
    json_t *in = json_loadb(body, len, CA_JSON_LOAD, NULL), *e = json_object_get(in, "error");
    json_t *msg = json_object_get(e, "message"), *type = json_object_get(e, "type"), *doc;
    char b[CHAT_OUT_RAW_CAP];

    if (json_is_string(msg)) {
        /* Anthropic's shape (or a relay's OpenAI-shaped error: its type is OpenAI's already) */
        int anthropic = xjson_streq(json_object_get(in, "type"), "error");
        json_t *code = json_object_get(e, "code");
        doc = ca_error_doc(json_is_string(type) && anthropic ? type : NULL, msg, status);
        if (doc && !anthropic &&
            ((json_is_string(type) &&
              json_object_set(json_object_get(doc, "error"), "type", type) != 0) ||
             (json_is_string(code) &&
              json_object_set(json_object_get(doc, "error"), "code", code) != 0))) {
            json_decref(doc);
            doc = NULL;
        }
    } else {
        msg = ca_string_lossy(b, chat_out_raw_message(b, status, body, len));
        doc = msg ? ca_error_doc(NULL, msg, status) : NULL;
        json_decref(msg);
    }
    json_decref(in);
    return doc;
}

static int chat_anthropic_error(int status, const char *body, size_t len, buf_t *out,
                                int *status_out)
{
    json_t *doc = error_of_body(body ? body : "", body ? len : 0, status);
    int rc = doc && ca_dump(out, doc) == 0 ? 0 : NOMEM;

    if (status_out)
        *status_out = status == 529 ? 503 : status;
    json_decref(doc);
    return rc;
}

/* ---- response ----------------------------------------------------------------------- */

/* {id, type:"function", function:{name, arguments}} of a tool_use block; NULL: no memory */
static json_t *tool_call(json_t *id, json_t *name, json_t *input)
{
    json_t *c = NULL;
    buf_t args = {0};

    if (input ? ca_dump(&args, input) == 0 : buf_append(&args, "{}", 2) == 0)
        c = chat_out_tool_call(json_incref(id), name, args.data, args.len);
    buf_free(&args);
    return c;
}

static int chat_anthropic_response(const char *body, size_t len, const xlate_opts_t *o, buf_t *out)
{
    json_t *in = json_loadb(body, len, CA_JSON_LOAD, NULL),
           *blocks = json_object_get(in, "content");
    json_t *id = json_object_get(in, "id"), *usage = json_object_get(in, "usage");
    json_t *doc = NULL, *calls = NULL, *b;
    const char *rid = o->request_id ? o->request_id : "llmgate";
    buf_t text = {0};
    int have_text = 0, rc = BAD;
    size_t i;

    if (!json_is_object(in) || !xjson_streq(json_object_get(in, "type"), "message") ||
        !json_is_array(blocks))
        goto done;
    rc = NOMEM;
    if (!(calls = json_array()))
        goto done;
    json_array_foreach(blocks, i, b)
    {
        json_t *type = json_object_get(b, "type");
        if (xjson_streq(type, "text")) {
            json_t *t = json_object_get(b, "text");
            rc = BAD;
            if (!json_is_string(t))
                goto done;
            rc = NOMEM;
            if (buf_append(&text, json_string_value(t), json_string_length(t)) != 0)
                goto done;
            have_text = 1;
        } else if (xjson_streq(type, "tool_use")) {
            json_t *tid = json_object_get(b, "id"), *name = json_object_get(b, "name");
            rc = BAD;
            if (!json_is_string(tid) || !json_is_string(name))
                goto done;
            rc = NOMEM;
            if (xjson_push(calls, tool_call(tid, name, json_object_get(b, "input"))))
                goto done;
        } /* thinking, redacted_thinking, server tool blocks: dropped */
    }
    doc = chat_out_completion(
        json_is_string(id) ? ca_chat_id(json_string_value(id), json_string_length(id), SIZE_MAX)
                           : ca_chat_id(rid, strlen(rid), SIZE_MAX),
        o->created, xjson_str(o->client_model), have_text ? &text : NULL, calls,
        ca_finish_reason(json_object_get(in, "stop_reason")),
        ca_usage_doc(chat_out_count(usage, "input_tokens"),
                     chat_out_count(usage, "cache_creation_input_tokens"),
                     chat_out_count(usage, "cache_read_input_tokens"),
                     chat_out_count(usage, "output_tokens")));
    if (!doc)
        goto done;
    rc = ca_dump(out, doc) == 0 ? 0 : NOMEM;
done:
    json_decref(in);
    json_decref(doc);
    json_decref(calls);
    buf_free(&text);
    return rc;
}

const xlate_pair_t xlate_chat_anthropic = {
    .client = API_CHAT,
    .provider = CFG_API_ANTHROPIC,
    .client_path = "/v1/chat/completions",
    .upstream_path = "/messages",
    .upstream = &api_messages,
    .request = chat_anthropic_request,
    .response = chat_anthropic_response,
    .error = chat_anthropic_error,
    .stream_size = sizeof(ca_stream_t),
    .stream_init = chat_anthropic_stream_init,
    .stream_feed = chat_stream_feed,
    .stream_end = chat_stream_end,
    .stream_free = chat_stream_free,
};
