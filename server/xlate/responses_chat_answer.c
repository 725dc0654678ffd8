/* responses_chat_answer.c - a chat-completions provider's answers to a Responses API client:
 * the response object (what the stream's events carry too), the JSON answer and the errors.
 * The design note, with what is translated, dropped and refused, is responses_chat.c's.
 *
 * Errors: the body is OpenAI's {"error":{"message","type","param","code"}}, the Responses
 * API's error shape too: an OpenAI-shaped body keeps its message, type, param and code;
 * another body ({"error":"..."}, {"message":"..."}, text, HTML, nothing) gets the message of
 * those variants, else "the provider answered HTTP S: " and the body's text (xjson_error_text:
 * cut to 1 KiB, invalid UTF-8 and NUL replaced by U+FFFD), and the type of the status. The status
 * is the provider's (the SDKs map 400, 404, 408, 409, 422, 429, >= 500 - 529 included - to their
 * error classes and retries), but for a status below 400 that reaches here (an upstream
 * 1xx or 3xx): 502, which an OpenAI client reads as the provider's failure.
 */
#include "server/xlate/responses_chat.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/common/errors.h"
#include "server/xlate/xjson.h"

json_t *xlate_rc_usage_json(const chat_up_usage_t *x)
{
    return json_pack("{s:I,s:{s:I},s:I,s:{s:I},s:I}", "input_tokens", (json_int_t)x->prompt,
                     "input_tokens_details", "cached_tokens", (json_int_t)x->cached,
                     "output_tokens", (json_int_t)x->completion, "output_tokens_details",
                     "reasoning_tokens", (json_int_t)x->reasoning, "total_tokens",
                     (json_int_t)(x->prompt + x->completion));
}

/* member of in when it has the JSON type test accepts, else dflt (stolen). */
static int echo_one(json_t *e, const json_t *in, const char *key, int (*test)(const json_t *),
                    json_t *dflt)
{
    const json_t *v = json_object_get(in, key);

    if (v && test(v)) {
        json_decref(dflt);
        return xjson_set(e, key, json_incref((json_t *)v));
    }
    return xjson_set(e, key, dflt);
}

static int t_str(const json_t *v)
{
    return json_is_string(v);
}
static int t_int(const json_t *v)
{
    return json_is_integer(v);
}
static int t_num(const json_t *v)
{
    return json_is_number(v);
}
static int t_bool(const json_t *v)
{
    return json_is_boolean(v);
}
static int t_obj(const json_t *v)
{
    return json_is_object(v);
}
static int t_arr(const json_t *v)
{
    return json_is_array(v);
}
static int t_choice(const json_t *v)
{
    return json_is_string(v) || json_is_object(v);
}

json_t *xlate_rc_echo(const char *body, size_t len)
{
    json_t *in = body ? json_loadb(body, len, XJSON_LOAD, NULL) : NULL;
    json_t *e = json_object();
    int rc = e ? 0 : XLATE_ENOMEM;

    if (rc == 0)
        rc = echo_one(e, in, "instructions", t_str, json_null());
    if (rc == 0)
        rc = echo_one(e, in, "max_output_tokens", t_int, json_null());
    if (rc == 0)
        rc = echo_one(e, in, "parallel_tool_calls", t_bool, json_true());
    if (rc == 0)
        rc = xjson_set(e, "previous_response_id", json_null());
    if (rc == 0)
        rc = xjson_set(e, "reasoning", json_pack("{s:n,s:n}", "effort", "summary"));
    if (rc == 0)
        rc = xjson_set(e, "store", json_false()); /* nothing was stored */
    if (rc == 0)
        rc = echo_one(e, in, "temperature", t_num, json_real(1.0));
    if (rc == 0)
        rc = echo_one(e, in, "text", t_obj, json_pack("{s:{s:s}}", "format", "type", "text"));
    if (rc == 0)
        rc = echo_one(e, in, "tool_choice", t_choice, json_string("auto"));
    if (rc == 0)
        rc = echo_one(e, in, "tools", t_arr, json_array());
    if (rc == 0)
        rc = echo_one(e, in, "top_p", t_num, json_real(1.0));
    if (rc == 0)
        rc = xjson_set(e, "truncation", json_string("disabled"));
    if (rc == 0)
        rc = echo_one(e, in, "user", t_str, json_null());
    if (rc == 0)
        rc = echo_one(e, in, "metadata", t_obj, json_object());
    json_decref(in);
    if (rc != 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

json_t *xlate_rc_object(const char *id, int64_t created, const char *model, const char *status,
                        const json_t *echo)
{
    json_t *r = json_pack("{s:o,s:s,s:I,s:s,s:b,s:n,s:n,s:n}", "id", xjson_str(id), "object",
                          "response", "created_at", (json_int_t)created, "status", status,
                          "background", 0, "completed_at", "error", "incomplete_details");

    if (r && json_object_update(r, (json_t *)echo) != 0) {
        json_decref(r);
        return NULL;
    }
    if (r &&
        (xjson_set(r, "model", xjson_str(model)) != 0 ||
         xjson_set(r, "output", json_array()) != 0 || xjson_set(r, "usage", json_null()) != 0)) {
        json_decref(r);
        return NULL;
    }
    return r;
}

void xlate_rc_made_id(char *out, size_t cap, const char *prefix, const char *request_id,
                      long long n)
{
    size_t k;

    if (n >= 0)
        snprintf(out, cap, "%s%s_%lld", prefix, request_id && *request_id ? request_id : "llmgate",
                 n);
    else
        snprintf(out, cap, "%s%s", prefix, request_id && *request_id ? request_id : "llmgate");
    for (k = strlen(prefix); out[k]; k++)
        if (!api_id_char(out[k]))
            out[k] = '_'; /* an id a client may put in a path */
}

/* ---- response -------------------------------------------------------------------------- */

const char *xlate_rc_incomplete_reason(int finish)
{
    if (finish == CHAT_UP_FINISH_LENGTH)
        return "max_output_tokens";
    if (finish == CHAT_UP_FINISH_FILTER)
        return "content_filter";
    return NULL;
}

/* Arguments a provider gave as an object: their compact JSON, as a string. */
static json_t *dump_str(const json_t *j)
{
    char *s = json_dumps(j, XJSON_DUMP);
    json_t *v = s ? json_string(s) : NULL;

    free(s);
    return v;
}

/* The message's text: a string, or its text parts joined; else its refusal (*refusal 1). */
static int message_text(const json_t *msg, buf_t *b, int *refusal)
{
    const json_t *c = json_object_get(msg, "content"), *part;
    size_t i;

    *refusal = 0;
    if ((!c || json_is_null(c)) && json_is_string(json_object_get(msg, "refusal"))) {
        c = json_object_get(msg, "refusal");
        *refusal = 1;
    }
    if (json_is_string(c))
        return buf_append(b, json_string_value(c), json_string_length(c)) != 0 ? XLATE_ENOMEM : 0;
    if (c && !json_is_null(c) && !json_is_array(c))
        return XLATE_EBAD;
    json_array_foreach(c, i, part)
    {
        const json_t *t = json_object_get(part, "text");
        if (json_is_string(t) && buf_append(b, json_string_value(t), json_string_length(t)) != 0)
            return XLATE_ENOMEM;
    }
    return 0;
}

typedef struct calls_s {
    const xlate_opts_t *o;
    json_t *output;
} calls_t;

static int call_item_cb(void *ud, size_t i, const json_t *cid, const json_t *name,
                        const json_t *args)
{
    calls_t *c = ud;
    char id[192], call_id[192];
    json_t *a;

    if (json_is_string(args))
        a = json_incref((json_t *)args);
    else if (json_is_object(args))
        a = dump_str(args);
    else
        a = json_string("");
    xlate_rc_made_id(id, sizeof(id), "fc_", c->o->request_id, (long long)i);
    xlate_rc_made_id(call_id, sizeof(call_id), "call_", c->o->request_id, (long long)i);
    return xjson_push(
        c->output,
        json_pack("{s:s,s:s,s:o,s:O,s:o,s:s}", "type", "function_call", "id", id, "call_id",
                  json_is_string(cid) ? json_incref((json_t *)cid) : json_string(call_id), "name",
                  name, "arguments", a, "status", "completed"));
}

static int output_items(const json_t *msg, const xlate_opts_t *o, int incomplete, json_t *output)
{
    calls_t calls = {o, output};
    char id[192];
    buf_t b = {0};
    int refusal, rc = message_text(msg, &b, &refusal);

    if (rc == 0 && b.len) {
        xlate_rc_made_id(id, sizeof(id), "msg_", o->request_id, -1);
        json_t *part = refusal ? json_pack("{s:s,s:o}", "type", "refusal", "refusal", xjson_buf(&b))
                               : json_pack("{s:s,s:o,s:[]}", "type", "output_text", "text",
                                           xjson_buf(&b), "annotations");
        rc = xjson_push(output, json_pack("{s:s,s:s,s:s,s:s,s:[o]}", "id", id, "type", "message",
                                          "status", incomplete ? "incomplete" : "completed", "role",
                                          "assistant", "content", part));
    }
    buf_free(&b);
    return rc ? rc : chat_up_calls(msg, call_item_cb, &calls);
}

int xlate_rc_response(const char *body, size_t len, const xlate_opts_t *o, buf_t *out)
{
    chat_up_answer_t a;
    json_t *echo = NULL, *res = NULL;
    const char *reason;
    char id[192];
    int rc;

    if ((rc = chat_up_answer(body, len, &a)) != 0)
        goto exit;
    reason = xlate_rc_incomplete_reason(a.finish);
    xlate_rc_made_id(id, sizeof(id), "resp_", o->request_id, -1);
    if (!(echo = xlate_rc_echo(o->client_body, o->client_body_len)) ||
        !(res = xlate_rc_object(id, o->created, chat_up_answer_model(&a, o),
                                reason ? "incomplete" : "completed", echo))) {
        rc = XLATE_ENOMEM;
        goto exit;
    }
    if ((rc = output_items(a.message, o, reason != NULL, json_object_get(res, "output"))) != 0)
        goto exit;
    rc = xjson_set(res, "usage", xlate_rc_usage_json(&a.usage));
    if (rc == 0 && reason)
        rc = xjson_set(res, "incomplete_details", json_pack("{s:s}", "reason", reason));
    if (rc == 0 && !reason)
        rc = xjson_set(res, "completed_at", json_integer(o->created));
    if (rc == 0)
        rc = xjson_put(out, res);
exit:
    json_decref(echo);
    json_decref(res);
    chat_up_answer_free(&a);
    return rc;
}

/* ---- errors ---------------------------------------------------------------------------- */

int xlate_rc_error(int status, const char *body, size_t len, buf_t *out, int *status_out)
{
    json_t *doc = json_loadb(body, len, XJSON_LOAD, NULL), *res;
    const json_t *e = json_object_get(doc, "error"), *type = json_object_get(e, "type");
    const json_t *param = json_object_get(e, "param"), *code = json_object_get(e, "code");
    int rc;

    *status_out = status < 400 ? 502 : status;
    res = json_pack("{s:{s:o,s:o,s:o,s:o}}", "error", "message",
                    xjson_error_text(doc, status, body, len), "type",
                    json_is_string(type) ? json_incref((json_t *)type)
                                         : json_string(error_type_for(*status_out)),
                    "param", json_is_string(param) ? json_incref((json_t *)param) : json_null(),
                    "code", json_is_string(code) ? json_incref((json_t *)code) : json_null());
    rc = res ? xjson_put(out, res) : XLATE_ENOMEM;
    json_decref(res);
    json_decref(doc);
    return rc;
}
