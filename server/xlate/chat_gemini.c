/* chat_gemini.c - the answers of a Gemini provider to an OpenAI chat completions client: the
 * chat.completion and its errors, the provider path, the pair's table entry and what the
 * module's files share (the request: chat_gemini_req.c; the stream: chat_gemini_stream.c;
 * see chat_gemini.h).
 *
 * Response (a GenerateContentResponse -> chat.completion): id "chatcmpl-" + responseId (else
 *   the request id), created o->created, model o->client_model, one choice of candidates[0]:
 *   content = its text parts joined (null when there is none; parts with "thought": true are
 *   the model's thinking: dropped), tool_calls = its functionCall parts ({id (see
 *   chat_gemini.h), type:"function", function:{name, arguments: args as compact JSON}});
 *   finish_reason from finishReason: STOP (or none) -> stop, or tool_calls when there are
 *   function calls; MAX_TOKENS -> length; SAFETY, RECITATION, BLOCKLIST, PROHIBITED_CONTENT,
 *   SPII, IMAGE_SAFETY -> content_filter; anything else (OTHER, LANGUAGE,
 *   MALFORMED_FUNCTION_CALL, ...) -> stop. No candidates and a promptFeedback.blockReason:
 *   content null, finish_reason content_filter. usage from usageMetadata: prompt_tokens =
 *   promptTokenCount + toolUsePromptTokenCount, completion_tokens = candidatesTokenCount +
 *   thoughtsTokenCount, total_tokens = totalTokenCount (else the sum),
 *   prompt_tokens_details.cached_tokens = cachedContentTokenCount,
 *   completion_tokens_details.reasoning_tokens = thoughtsTokenCount. Dropped: the other
 *   candidates (n > 1 is refused), safetyRatings, citationMetadata, groundingMetadata,
 *   avgLogprobs, modelVersion, thought signatures, executableCode / codeExecutionResult
 *   parts. Not JSON, not an object, or neither candidates (an array) nor promptFeedback:
 *   XLATE_EBAD.
 *
 * Error ({"error":{"code","message","status","details"}} -> {"error":{"message","type",
 *   "param":null,"code"}}): code = Gemini's status (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, ...;
 *   the ErrorInfo reason when details has one); type by status: 400 (and
 *   INVALID_ARGUMENT, FAILED_PRECONDITION) invalid_request_error, 401 authentication_error,
 *   403 permission_error, 404 invalid_request_error, 429 rate_limit_error, 5xx (INTERNAL,
 *   UNAVAILABLE, DEADLINE_EXCEEDED) server_error. The HTTP status is kept; but a 400 whose
 *   ErrorInfo reason is API_KEY_INVALID is about the gateway's key, not the client's request:
 *   it becomes a 502 upstream_auth_failed (the key policy made the key invalid already), as
 *   the proxy answers a 401 / 403 of a provider. A body of another shape: its first 512
 *   bytes become the message, the type follows the status, code null.
 */
#include "server/xlate/chat_gemini.h"
#include "server/xlate/chat_out.h"
#include "server/xlate/xjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOMEM XLATE_ENOMEM
#define BAD   XLATE_EBAD

/* ---- shared ------------------------------------------------------------------------- */

json_t *cg_string_lossy(const char *s, size_t n)
{
    buf_t b = {0};
    json_t *j;

    if (xjson_lossy(&b, n ? s : "", n, n) != 0) {
        buf_free(&b);
        return NULL;
    }
    j = xjson_buf(&b);
    buf_free(&b);
    return j;
}

const char *cg_finish_reason(const json_t *finish, int calls)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"};

    if (xjson_streq(finish, "MAX_TOKENS"))
        return "length";
    for (size_t i = 0; i < sizeof(filtered) / sizeof(filtered[0]); i++)
        if (xjson_streq(finish, filtered[i]))
            return "content_filter";
    return calls ? "tool_calls" : "stop";
}

json_t *cg_usage_doc(json_int_t prompt, json_int_t tool_prompt, json_int_t cached, json_int_t cand,
                     json_int_t thoughts, json_int_t total)
{
    json_int_t in = prompt + tool_prompt, out = cand + thoughts;

    return chat_out_usage(in, out, total > 0 ? total : in + out, cached, thoughts);
}

static json_t *usage_of(const json_t *um)
{
    return cg_usage_doc(
        chat_out_count(um, "promptTokenCount"), chat_out_count(um, "toolUsePromptTokenCount"),
        chat_out_count(um, "cachedContentTokenCount"), chat_out_count(um, "candidatesTokenCount"),
        chat_out_count(um, "thoughtsTokenCount"), chat_out_count(um, "totalTokenCount"));
}

json_t *cg_tool_call(const json_t *fc, const char *rid, int k, int *bad)
{
    json_t *name = json_object_get(fc, "name"), *args = json_object_get(fc, "args");
    json_t *id = json_object_get(fc, "id"), *c = NULL;
    buf_t a = {0};

    *bad = 0;
    if (!json_is_string(name)) {
        *bad = 1;
        return NULL;
    }
    if (json_is_object(args) ? xjson_put(&a, args) == 0 : buf_append(&a, "{}", 2) == 0)
        c = chat_out_tool_call(json_is_string(id) && json_string_length(id)
                                   ? json_incref(id)
                                   : xjson_made_id("call_", rid, k),
                               name, a.data, a.len);
    buf_free(&a);
    return c;
}

/* ---- the path ----------------------------------------------------------------------- */

static int unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int chat_gemini_path(const xlate_opts_t *o, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *m = o->model ? o->model : "";
    const char *method = o->stream ? ":streamGenerateContent?alt=sse" : ":generateContent";
    size_t n = 0, ml = strlen(method);

    if (strncmp(m, "models/", 7) == 0)
        m += 7; /* written as Gemini names models */
    if (cap < 8 + ml + 1)
        return -1;
    memcpy(out, "/models/", 8);
    n = 8;
    for (const unsigned char *p = (const unsigned char *)m; *p; p++) {
        if (n + 3 + ml + 1 > cap)
            return -1;
        if (unreserved(*p)) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    memcpy(out + n, method, ml + 1);
    return 0;
}

/* ---- errors ------------------------------------------------------------------------- */

json_t *cg_error_doc(const char *type, const char *code, const json_t *message)
{
    return chat_out_error_doc(json_string(type), code ? xjson_str(code) : json_null(), message);
}

/* The reason of the first google.rpc.ErrorInfo in details, or NULL. */
static const char *error_reason(const json_t *details)
{
    size_t i;
    json_t *d;

    json_array_foreach(details, i, d)
    {
        const char *t = json_string_value(json_object_get(d, "@type"));
        json_t *reason = json_object_get(d, "reason");
        if (t && strstr(t, "google.rpc.ErrorInfo") && json_is_string(reason) &&
            !memchr(json_string_value(reason), 0, json_string_length(reason)))
            return json_string_value(reason);
    }
    return NULL;
}

static int chat_gemini_error(int status, const char *body, size_t len, buf_t *out, int *status_out)
{
    json_t *in, *e, *msg, *doc = NULL, *own = NULL;
    const char *code = NULL, *reason;
    int st = status, rc = NOMEM;

    if (!body) {
        body = "";
        len = 0;
    }
    in = json_loadb(body, len, CG_JSON_LOAD, NULL);
    e = json_object_get(in, "error");
    msg = json_object_get(e, "message");
    if (json_is_string(msg)) {
        json_t *gs = json_object_get(e, "status");
        reason = error_reason(json_object_get(e, "details"));
        if (json_is_string(gs) && !memchr(json_string_value(gs), 0, json_string_length(gs)))
            code = json_string_value(gs);
        if (reason)
            code = reason;
        if (reason && strcmp(reason, "API_KEY_INVALID") == 0) {
            st = 502;
            msg = own = xjson_str("the model's provider (Gemini) refused the gateway's API key "
                                  "(API_KEY_INVALID); an operator must check the key");
            doc = msg ? cg_error_doc("upstream_error", "upstream_auth_failed", msg) : NULL;
        } else {
            doc = cg_error_doc(chat_out_type_of_status(status), code, msg);
        }
    } else {
        char b[CHAT_OUT_RAW_CAP];
        own = cg_string_lossy(b, chat_out_raw_message(b, status, body, len));
        doc = own ? cg_error_doc(chat_out_type_of_status(status), NULL, own) : NULL;
    }
    if (doc && xjson_put(out, doc) == 0)
        rc = 0;
    if (status_out)
        *status_out = st;
    json_decref(own);
    json_decref(doc);
    json_decref(in);
    return rc;
}

/* ---- response ----------------------------------------------------------------------- */

static int chat_gemini_response(const char *body, size_t len, const xlate_opts_t *o, buf_t *out)
{
    json_t *in = json_loadb(body, len, CG_JSON_LOAD, NULL);
    json_t *cands = json_object_get(in, "candidates"), *fb = json_object_get(in, "promptFeedback");
    json_t *cand = json_array_get(cands, 0), *parts, *p, *rid = json_object_get(in, "responseId");
    json_t *doc = NULL, *calls = NULL;
    const char *reqid = o->request_id ? o->request_id : "llmgate", *finish;
    buf_t text = {0};
    int have_text = 0, rc = BAD, bad;
    size_t i;

    if (!json_is_object(in) || (!json_is_array(cands) && !json_is_object(fb)) ||
        (cands && !json_is_array(cands)) || (cand && !json_is_object(cand)))
        goto done;
    parts = json_object_get(json_object_get(cand, "content"), "parts");
    if (parts && !json_is_array(parts))
        goto done;
    rc = NOMEM;
    if (!(calls = json_array()))
        goto done;
    json_array_foreach(parts, i, p)
    {
        json_t *t = json_object_get(p, "text"), *fc = json_object_get(p, "functionCall");
        if (json_is_true(json_object_get(p, "thought")))
            continue; /* the model's thinking */
        if (t) {
            rc = BAD;
            if (!json_is_string(t))
                goto done;
            rc = NOMEM;
            if (buf_append(&text, json_string_value(t), json_string_length(t)) != 0)
                goto done;
            have_text = 1;
        } else if (fc) {
            json_t *c = cg_tool_call(fc, reqid, (int)json_array_size(calls), &bad);
            rc = bad ? BAD : NOMEM;
            if (!c || xjson_push(calls, c) != 0)
                goto done;
        } /* inlineData, executableCode, codeExecutionResult: dropped */
    }
    finish =
        !cand && json_is_string(json_object_get(fb, "blockReason"))
            ? "content_filter"
            : cg_finish_reason(json_object_get(cand, "finishReason"), json_array_size(calls) > 0);
    rc = NOMEM;
    doc = chat_out_completion(json_is_string(rid) && json_string_length(rid)
                                  ? xjson_made_id("chatcmpl-", json_string_value(rid), -1)
                                  : xjson_made_id("chatcmpl-", reqid, -1),
                              o->created, xjson_str(o->client_model), have_text ? &text : NULL,
                              calls, finish, usage_of(json_object_get(in, "usageMetadata")));
    if (!doc)
        goto done;
    rc = xjson_put(out, doc) == 0 ? 0 : NOMEM;
done:
    json_decref(in);
    json_decref(doc);
    json_decref(calls);
    buf_free(&text);
    return rc;
}

const xlate_pair_t xlate_chat_gemini = {
    .client = API_CHAT,
    .provider = CFG_API_GEMINI,
    .client_path = "/v1/chat/completions",
    .upstream_path = "/models/{model}:generateContent", /* described: upstream_path_of */
    .upstream = &api_gemini,
    .request = chat_gemini_request,
    .response = chat_gemini_response,
    .error = chat_gemini_error,
    .stream_size = sizeof(cg_stream_t),
    .stream_init = chat_gemini_stream_init,
    .stream_feed = chat_stream_feed,
    .stream_end = chat_stream_end,
    .stream_free = chat_stream_free,
    .upstream_path_of = chat_gemini_path,
};
