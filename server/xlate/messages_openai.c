/* messages_openai.c - Anthropic Messages clients (Claude Code, the Anthropic SDK) served by an
 * OpenAI-compatible chat completions provider (DeepSeek, a relay); see xlate.h. This file:
 * the request, the count_tokens estimate (messages_openai.h) and the pair; the answers
 * (response, error, stream) are in messages_openai_answer.c.
 *
 * Request: POST /v1/messages body -> POST /chat/completions body
 *   translated  model (the deployment's, xlate_opts_t.model); system (a string, or text
 *               blocks joined by "\n") -> a first system message; user turns: text, image
 *               (base64 -> a data: URL; url) and plain-text document blocks (source type
 *               "text") -> content parts, one text part -> a plain string; tool_result
 *               blocks -> {"role":"tool"} messages (a string, or its text blocks joined by
 *               "\n"; is_error -> "Error: " before it) placed before the rest of their user
 *               turn; assistant turns: text blocks (joined by "\n") -> content, tool_use ->
 *               tool_calls (arguments: the compact JSON of input); tools -> function tools
 *               (input_schema -> parameters); tool_choice auto / any / tool / none ->
 *               "auto" / "required" / {"type":"function",...} / "none";
 *               disable_parallel_tool_use -> parallel_tool_calls: false; max_tokens;
 *               stop_sequences -> stop; temperature; top_p; metadata.user_id -> user;
 *               output_format json_schema -> response_format json_schema; a stream
 *               (xlate_opts_t.stream, the proxy's scan of the same body) -> "stream": true
 *               and "stream_options": {"include_usage": true}, always: billing needs usage.
 *   dropped     cache_control (system, blocks, tools), citations, thinking and
 *               redacted_thinking blocks, the thinking option, top_k, service_tier,
 *               container, context_management, metadata other than user_id, tool_choice
 *               and disable_parallel_tool_use when there are no tools (OpenAI refuses
 *               them), an assistant turn left empty, every member not named here.
 *   refused     (XLATE_EREFUSE naming the field) a body that is not a JSON object; no
 *               messages; a role other than user / assistant; image sources other than
 *               base64 / url; documents other than plain text (PDF, url, file, content);
 *               images or documents inside a tool_result; any other block type
 *               (server_tool_use, web_search_tool_result, search_result, container_upload,
 *               mcp_tool_use, ...); server tools (tools[i].type other than "custom":
 *               web_search_..., bash_..., text_editor_..., computer_..., code_execution_...);
 *               mcp_servers; output_format other than json_schema; members of the wrong JSON
 *               type.
 *   not carried a final assistant turn (Anthropic's prefill) is sent as a message: most
 *               providers answer after it instead of continuing it.
 *
 * Response: chat.completion -> message
 *   id "msg_" + the completion's id (or the request id); model = xlate_opts_t.client_model;
 *   message.content (a string, or text parts; else message.refusal) -> a text block; its
 *   reasoning_content (DeepSeek) is dropped; tool_calls -> tool_use blocks whose input is
 *   the parsed arguments: "" -> {}, arguments that are not a JSON object -> {"_raw": the
 *   arguments as they came} (the client's tool then fails on it and the model can retry;
 *   refusing the answer would lose tokens already billed); finish_reason stop / length /
 *   tool_calls, function_call / content_filter -> end_turn / max_tokens / tool_use /
 *   refusal (stop with tool calls -> tool_use, as some providers say stop); stop_sequence
 *   is always null (OpenAI does not say which one matched); usage: input_tokens =
 *   prompt_tokens - cached, cache_read_input_tokens = cached (prompt_tokens_details.
 *   cached_tokens, else DeepSeek's prompt_cache_hit_tokens), cache_creation_input_tokens 0,
 *   output_tokens = completion_tokens. Only choices[0] is read (n is never sent).
 *
 * Error: the provider's status unchanged; the Anthropic type of that status; the message of
 * OpenAI's {"error":{"message"}} (or {"error":"..."}, {"message":"..."}), else "the provider
 * answered HTTP S: " and the body's text, cut to 1 KiB, invalid UTF-8 and NUL replaced by
 * U+FFFD (an empty body says so). The provider's error type and code are not carried.
 *
 * Stream: chat.completion.chunk events -> Anthropic events (message_start on the first chunk;
 * text and tool_use blocks opened, fed and closed as deltas come; message_delta with the stop
 * reason and the usage of the include_usage chunk, then message_stop, on [DONE] or on a
 * complete end without it). State: the event being read (sse.h) and a fixed struct: whether
 * the message started or ended, the open block and its kind, the tool calls seen (their
 * index, at most MO_TOOLS_MAX: past that XLATE_EBAD), the last finish_reason, the usage.
 * reasoning_content deltas are dropped, choices other than index 0 ignored, an "error"
 * object becomes an Anthropic error event and ends the stream, a data line that is not a
 * JSON object is XLATE_EBAD, and so are arguments for a tool call whose block was already
 * closed (Anthropic's blocks cannot be reopened; OpenAI streams calls one after the other).
 * A chunk of content only, into the open text block, is read by a scan (xfast.h; the shape
 * is in messages_openai_answer.c), its text copied as the provider escaped it; every other
 * chunk, and any doubt, by jansson.
 */
#include "server/xlate/messages_openai.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/xlate/chat_up.h"
#include "server/xlate/xjson.h"

#define PARAM_MAX 128 /* room for a path; xlate_error_t.param keeps what fits */
/* What a client can do about a refusal (STYLE: say what to do). */
#define OR_ANTHROPIC "; remove it, or use a model with an api: anthropic deployment"

/* ---- request --------------------------------------------------------------------------- */

typedef struct req_s {
    xlate_error_t *err;
    const xlate_opts_t *o;
    json_t *msgs; /* the chat messages (borrowed: the output document holds them) */
    buf_t text;   /* texts being joined */
} req_t;

/* Appends the texts of blocks (each a {"type":"text","text"}) to r->text, joined by "\n"
 * (what r->text held before them, base bytes, is not separated from the first). */
static int join_texts(req_t *r, const json_t *blocks, const char *p, const char *what)
{
    size_t base = r->text.len, k;
    char q[PARAM_MAX];
    const json_t *blk;

    json_array_foreach(blocks, k, blk)
    {
        const json_t *t = json_object_get(blk, "text");
        snprintf(q, sizeof(q), "%s[%zu]", p, k);
        if (!xjson_is_type(blk, "text") || !json_is_string(t))
            return xjson_refusef(r->err, q,
                                 "%s can carry text blocks only at an OpenAI-compatible "
                                 "provider" OR_ANTHROPIC,
                                 what);
        if ((r->text.len > base && buf_append(&r->text, "\n", 1) != 0) ||
            buf_append(&r->text, json_string_value(t), json_string_length(t)) != 0)
            return XLATE_ENOMEM;
    }
    return 0;
}

static int push_msg(req_t *r, const char *role, json_t *content)
{
    return chat_up_push_msg(r->msgs, role, content);
}

static int image_part(req_t *r, const json_t *blk, const char *p, json_t **part)
{
    const json_t *src = json_object_get(blk, "source");
    const char *type = json_string_value(json_object_get(src, "type"));
    json_t *url = NULL;

    if (type && strcmp(type, "base64") == 0) {
        const char *mt = json_string_value(json_object_get(src, "media_type"));
        const json_t *data = json_object_get(src, "data");
        buf_t b = {0};
        if (!mt || !json_is_string(data))
            return xjson_refusef(r->err, p,
                                 "a base64 image needs source.media_type and source.data");
        if (buf_appends(&b, "data:") == 0 && buf_appends(&b, mt) == 0 &&
            buf_appends(&b, ";base64,") == 0 &&
            buf_append(&b, json_string_value(data), json_string_length(data)) == 0)
            url = xjson_buf(&b);
        buf_free(&b);
    } else if (type && strcmp(type, "url") == 0) {
        url = json_incref(json_object_get(src, "url"));
        if (!json_is_string(url)) {
            json_decref(url);
            return xjson_refusef(r->err, p, "an image of source type url needs source.url");
        }
    } else {
        return xjson_refusef(r->err, p,
                             "images of source type %s cannot be sent to an "
                             "OpenAI-compatible provider (base64 and url can)" OR_ANTHROPIC,
                             type ? type : "(none)");
    }
    *part = chat_up_image(url, NULL);
    return *part ? 0 : XLATE_ENOMEM;
}

/* A tool_result block -> a {"role":"tool"} message, appended at once. */
static int tool_message(req_t *r, const json_t *blk, const char *p)
{
    const json_t *id = json_object_get(blk, "tool_use_id"), *c = json_object_get(blk, "content");
    char q[PARAM_MAX + 16];
    json_t *m;
    int rc;

    buf_reset(&r->text);
    if (!json_is_string(id))
        return xjson_refusef(r->err, p, "a tool_result needs its tool_use_id");
    if (json_is_true(json_object_get(blk, "is_error")) && buf_appends(&r->text, "Error: ") != 0)
        return XLATE_ENOMEM;
    snprintf(q, sizeof(q), "%s.content", p);
    if (json_is_string(c)) {
        if (buf_append(&r->text, json_string_value(c), json_string_length(c)) != 0)
            return XLATE_ENOMEM;
    } else if (json_is_array(c)) {
        if ((rc = join_texts(r, c, q, "a tool_result")) != 0)
            return rc;
    } else if (c && !json_is_null(c)) {
        return xjson_refusef(r->err, q, "must be a string or an array of text blocks");
    }
    m = json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id", id, "content",
                  xjson_buf(&r->text));
    return m ? xjson_push(r->msgs, m) : XLATE_ENOMEM;
}

/* A plain-text document -> a text part; any other document is refused. */
static int document_part(req_t *r, const json_t *blk, const char *p, json_t **part)
{
    const json_t *src = json_object_get(blk, "source"), *data = json_object_get(src, "data");

    if (!xjson_is_type(src, "text") || !json_is_string(data))
        return xjson_refusef(
            r->err, p,
            "documents other than plain text (source type text) cannot "
            "be sent to an OpenAI-compatible provider; send the text, or use a model "
            "with an api: anthropic deployment");
    *part = json_pack("{s:s,s:O}", "type", "text", "text", data);
    return *part ? 0 : XLATE_ENOMEM;
}

static int user_turn(req_t *r, size_t i, const json_t *content)
{
    char p[PARAM_MAX];
    json_t *parts;
    const json_t *blk;
    size_t j;
    int rc = 0;

    if (json_is_string(content))
        return push_msg(r, "user", json_incref((json_t *)content));
    if (!(parts = json_array()))
        return XLATE_ENOMEM;
    json_array_foreach(content, j, blk)
    {
        const char *type = json_string_value(json_object_get(blk, "type"));
        json_t *part = NULL;

        snprintf(p, sizeof(p), "messages[%zu].content[%zu]", i, j);
        if (!type) {
            rc = xjson_refusef(r->err, p, "must be a content block (an object with a \"type\")");
        } else if (strcmp(type, "text") == 0) {
            const json_t *t = json_object_get(blk, "text");
            if (!json_is_string(t))
                rc = xjson_refusef(r->err, p, "a text block needs its \"text\" string");
            else if (!(part = json_pack("{s:s,s:O}", "type", "text", "text", t)))
                rc = XLATE_ENOMEM;
        } else if (strcmp(type, "image") == 0) {
            rc = image_part(r, blk, p, &part);
        } else if (strcmp(type, "document") == 0) {
            rc = document_part(r, blk, p, &part);
        } else if (strcmp(type, "tool_result") == 0) {
            rc = tool_message(r, blk, p); /* before the rest of the turn, as OpenAI wants */
        } else if (strcmp(type, "thinking") != 0 && strcmp(type, "redacted_thinking") != 0) {
            rc = xjson_refusef(r->err, p,
                               "a %s block has no equivalent at an OpenAI-compatible "
                               "provider" OR_ANTHROPIC,
                               type);
        }
        if (rc == 0 && part)
            rc = xjson_push(parts, part);
        if (rc)
            break;
    }
    if (rc == 0 && json_array_size(parts) > 0) {
        rc = push_msg(r, "user", chat_up_user_content(parts));
        parts = NULL;
    }
    json_decref(parts);
    return rc;
}

static int tool_call(req_t *r, const json_t *blk, const char *p, json_t *calls)
{
    const json_t *id = json_object_get(blk, "id"), *name = json_object_get(blk, "name");
    const json_t *input = json_object_get(blk, "input");
    char *args;
    json_t *call;

    if (!json_is_string(id) || !json_is_string(name))
        return xjson_refusef(r->err, p, "a tool_use block needs its id and name");
    args = input ? json_dumps(input, XJSON_DUMP | JSON_ENCODE_ANY) : NULL;
    if (input && !args)
        return XLATE_ENOMEM;
    call = chat_up_call(id, name, json_string(args ? args : "{}"));
    free(args);
    return call ? xjson_push(calls, call) : XLATE_ENOMEM;
}

static int assistant_turn(req_t *r, size_t i, const json_t *content)
{
    char p[PARAM_MAX];
    json_t *calls, *m = NULL;
    const json_t *blk;
    int rc = 0, has_text = 0;
    size_t j;

    if (json_is_string(content))
        return push_msg(r, "assistant", json_incref((json_t *)content));
    if (!(calls = json_array()))
        return XLATE_ENOMEM;
    buf_reset(&r->text);
    json_array_foreach(content, j, blk)
    {
        const char *type = json_string_value(json_object_get(blk, "type"));
        const json_t *t = json_object_get(blk, "text");

        snprintf(p, sizeof(p), "messages[%zu].content[%zu]", i, j);
        if (!type) {
            rc = xjson_refusef(r->err, p, "must be a content block (an object with a \"type\")");
        } else if (strcmp(type, "text") == 0) {
            if (!json_is_string(t))
                rc = xjson_refusef(r->err, p, "a text block needs its \"text\" string");
            else if ((has_text && buf_append(&r->text, "\n", 1) != 0) ||
                     buf_append(&r->text, json_string_value(t), json_string_length(t)) != 0)
                rc = XLATE_ENOMEM;
            has_text = 1;
        } else if (strcmp(type, "tool_use") == 0) {
            rc = tool_call(r, blk, p, calls);
        } else if (strcmp(type, "thinking") != 0 && strcmp(type, "redacted_thinking") != 0) {
            rc = xjson_refusef(r->err, p,
                               "a %s block has no equivalent at an OpenAI-compatible "
                               "provider" OR_ANTHROPIC,
                               type);
        }
        if (rc)
            break;
    }
    if (rc == 0 && (has_text || json_array_size(calls) > 0)) { /* else nothing is left */
        if (!(m = json_object()))
            rc = XLATE_ENOMEM;
        if (rc == 0)
            rc = xjson_set(m, "role", json_string("assistant"));
        if (rc == 0)
            rc = xjson_set(m, "content", has_text ? xjson_buf(&r->text) : json_null());
        if (rc == 0 && json_array_size(calls) > 0)
            rc = xjson_set(m, "tool_calls", json_incref(calls));
        if (rc == 0)
            rc = xjson_push(r->msgs, m);
        else
            json_decref(m);
    }
    json_decref(calls);
    return rc;
}

static int system_msg(req_t *r, const json_t *sys)
{
    int rc;

    if (!sys || json_is_null(sys))
        return 0;
    if (json_is_string(sys))
        return json_string_length(sys) ? push_msg(r, "system", json_incref((json_t *)sys)) : 0;
    if (!json_is_array(sys))
        return xjson_refusef(r->err, "system", "must be a string or an array of text blocks");
    buf_reset(&r->text);
    if ((rc = join_texts(r, sys, "system", "the system prompt")) != 0)
        return rc;
    return r->text.len ? push_msg(r, "system", xjson_buf(&r->text)) : 0;
}

static int messages(req_t *r, const json_t *msgs)
{
    char p[PARAM_MAX];
    const json_t *m;
    size_t i;
    int rc = 0;

    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return xjson_refusef(r->err, "messages", "required: a non-empty array of messages");
    json_array_foreach(msgs, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *content = json_object_get(m, "content");

        snprintf(p, sizeof(p), "messages[%zu].role", i);
        if (!role || (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0))
            return xjson_refusef(r->err, p, "must be \"user\" or \"assistant\"");
        snprintf(p, sizeof(p), "messages[%zu].content", i);
        if (!json_is_string(content) && !json_is_array(content))
            return xjson_refusef(r->err, p, "must be a string or an array of content blocks");
        rc = role[0] == 'u' ? user_turn(r, i, content) : assistant_turn(r, i, content);
        if (rc)
            return rc;
    }
    return 0;
}

static int tools(req_t *r, const json_t *in, json_t *req)
{
    const json_t *list = json_object_get(in, "tools"), *t, *tc = json_object_get(in, "tool_choice");
    char p[PARAM_MAX];
    json_t *out, *choice = NULL;
    size_t i;
    int rc = 0;

    if (list && !json_is_null(list) && !json_is_array(list))
        return xjson_refusef(r->err, "tools", "must be an array of tools");
    if (json_array_size(list) == 0)
        return 0; /* no tools: tool_choice and parallel calls mean nothing (OpenAI refuses) */
    if ((rc = xjson_set(req, "tools", out = json_array())) != 0)
        return rc;
    json_array_foreach(list, i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        const json_t *name = json_object_get(t, "name"), *desc = json_object_get(t, "description");
        const json_t *schema = json_object_get(t, "input_schema");

        snprintf(p, sizeof(p), "tools[%zu]", i);
        if (type && strcmp(type, "custom") != 0)
            return xjson_refusef(r->err, p,
                                 "the server tool %s runs at Anthropic only: an "
                                 "OpenAI-compatible provider cannot serve it" OR_ANTHROPIC,
                                 type);
        if (!json_is_string(name))
            return xjson_refusef(r->err, p, "a tool needs its name");
        if ((rc = chat_up_tool(out, name, json_is_string(desc) ? desc : NULL,
                               json_is_object(schema) ? schema : NULL, NULL)) != 0)
            return rc;
    }
    if (!tc || json_is_null(tc))
        return 0;
    const char *type = json_string_value(json_object_get(tc, "type"));
    const json_t *name = json_object_get(tc, "name");
    if (!type)
        return xjson_refusef(r->err, "tool_choice", "must be an object with a \"type\"");
    if (strcmp(type, "auto") == 0 || strcmp(type, "none") == 0)
        choice = json_string(type);
    else if (strcmp(type, "any") == 0)
        choice = json_string("required");
    else if (strcmp(type, "tool") == 0 && json_is_string(name))
        choice = chat_up_choose(name);
    else if (strcmp(type, "tool") == 0)
        return xjson_refusef(r->err, "tool_choice.name", "required with type tool");
    else
        return xjson_refusef(r->err, "tool_choice.type", "must be auto, any, tool or none (got %s)",
                             type);
    if ((rc = xjson_set(req, "tool_choice", choice)) != 0)
        return rc;
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
        rc = xjson_set(req, "parallel_tool_calls", json_false());
    return rc;
}

/* Members with a direct equivalent: max_tokens, temperature, top_p, stop_sequences,
 * metadata.user_id, output_format; refused: mcp_servers. */
static int params(req_t *r, const json_t *in, json_t *req)
{
    const json_t *v, *s;
    int rc;
    size_t i;

    if ((rc = chat_up_params(in, "max_tokens", r->o, req, r->err)) != 0)
        return rc;
    v = json_object_get(in, "stop_sequences");
    if (v && !json_is_null(v) && !json_is_array(v))
        return xjson_refusef(r->err, "stop_sequences", "must be an array of strings");
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s)) {
            char p[PARAM_MAX];
            snprintf(p, sizeof(p), "stop_sequences[%zu]", i);
            return xjson_refusef(r->err, p, "must be a string");
        }
    }
    if (json_array_size(v) && (rc = xjson_set(req, "stop", json_incref((json_t *)v))) != 0)
        return rc;
    v = json_object_get(json_object_get(in, "metadata"), "user_id");
    if (json_is_string(v) && (rc = xjson_set(req, "user", json_incref((json_t *)v))) != 0)
        return rc;
    v = json_object_get(in, "output_format");
    if (v && !json_is_null(v)) {
        const json_t *schema = json_object_get(v, "schema");
        if (!xjson_is_type(v, "json_schema") || !json_is_object(schema))
            return xjson_refusef(r->err, "output_format",
                                 "only {\"type\":\"json_schema\",\"schema\"} "
                                 "can be sent to an OpenAI-compatible provider");
        rc = xjson_set(req, "response_format",
                       json_pack("{s:s,s:{s:s,s:O,s:b}}", "type", "json_schema", "json_schema",
                                 "name", "output", "schema", schema, "strict", 1));
        if (rc)
            return rc;
    }
    v = json_object_get(in, "mcp_servers");
    if (v && !json_is_null(v) && !(json_is_array(v) && json_array_size(v) == 0))
        return xjson_refusef(r->err, "mcp_servers",
                             "MCP connectors run at Anthropic only: an "
                             "OpenAI-compatible provider cannot call them; remove them, or use a "
                             "model with an api: anthropic deployment");
    return 0;
}

static int messages_request(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                            xlate_error_t *err)
{
    json_t *in, *req = NULL;
    req_t r = {err, o, NULL, {0}};
    int rc;

    if ((rc = chat_up_parse(body, len, err, &in)) != 0 ||
        (rc = chat_up_open(in, o, err, &req, &r.msgs)) != 0)
        goto exit;
    if ((rc = system_msg(&r, json_object_get(in, "system"))) != 0 ||
        (rc = messages(&r, json_object_get(in, "messages"))) != 0 ||
        (rc = params(&r, in, req)) != 0 || (rc = tools(&r, in, req)) != 0)
        goto exit;
    rc = chat_up_close(req, o, out);
exit:
    buf_free(&r.text);
    json_decref(req);
    json_decref(in);
    return rc;
}

/* ---- count_tokens estimate ------------------------------------------------------------ */

typedef struct est_s {
    uint64_t chars, tokens;
    int nomem;
} est_t;

static void est_chars(est_t *e, const char *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++)
        e->chars += ((unsigned char)p[i] & 0xc0) != 0x80; /* code points: their lead bytes */
}

static void est_text(est_t *e, const json_t *s)
{
    est_chars(e, json_string_value(s), json_string_length(s));
}

static void est_json(est_t *e, const json_t *j)
{
    char *s = j ? json_dumps(j, XJSON_DUMP | JSON_ENCODE_ANY) : NULL;

    e->nomem |= j && !s;
    est_chars(e, s, s ? strlen(s) : 0);
    free(s);
}

static void est_blocks(est_t *e, const json_t *content, int depth)
{
    const json_t *blk;
    size_t i;

    if (json_is_string(content))
        est_text(e, content);
    json_array_foreach(content, i, blk)
    {
        const char *type = json_string_value(json_object_get(blk, "type"));
        const json_t *src = json_object_get(blk, "source");

        if (!type)
            continue;
        if (strcmp(type, "text") == 0)
            est_text(e, json_object_get(blk, "text"));
        else if (strcmp(type, "thinking") == 0)
            est_text(e, json_object_get(blk, "thinking"));
        else if (strcmp(type, "tool_use") == 0)
            est_text(e, json_object_get(blk, "name")), est_json(e, json_object_get(blk, "input"));
        else if (strcmp(type, "tool_result") == 0 && depth == 0)
            est_blocks(e, json_object_get(blk, "content"), 1);
        else if (strcmp(type, "document") == 0 && xjson_is_type(src, "text"))
            est_text(e, json_object_get(src, "data"));
        else if (strcmp(type, "image") == 0 || strcmp(type, "document") == 0)
            e->tokens += XLATE_ESTIMATE_IMAGE_TOKENS;
    }
}

int xlate_messages_count_estimate(const char *body, size_t len, uint32_t *tokens)
{
    json_t *in = json_loadb(body, len, XJSON_LOAD, NULL);
    const json_t *m, *tl = NULL;
    est_t e = {0, 0, 0};
    size_t i;

    *tokens = 0;
    if (!json_is_object(in)) {
        json_decref(in);
        return XLATE_EREFUSE;
    }
    est_blocks(&e, json_object_get(in, "system"), 0);
    json_array_foreach(json_object_get(in, "messages"), i, m)
    {
        est_blocks(&e, json_object_get(m, "content"), 0);
    }
    if (json_array_size(tl = json_object_get(in, "tools")) > 0)
        est_json(&e, tl);
    json_decref(in);
    e.tokens += (e.chars + 3) / 4;
    *tokens = e.tokens > UINT32_MAX ? UINT32_MAX : (uint32_t)e.tokens;
    return e.nomem ? XLATE_ENOMEM : 0;
}

const xlate_pair_t xlate_messages_openai = {
    .client = API_MESSAGES,
    .provider = CFG_API_OPENAI,
    .providers = API_PROVIDER(CFG_API_OPENAI) | API_PROVIDER(CFG_API_OPENAI_CHAT),
    .client_path = "/v1/messages",
    .upstream_path = "/chat/completions",
    .upstream = &api_chat,
    .request = messages_request,
    .response = xlate_mo_response,
    .error = xlate_mo_error,
    .stream_size = XLATE_MO_STREAM_SIZE,
    .stream_init = xlate_mo_stream_init,
    .stream_feed = chat_up_stream_feed,
    .stream_end = xlate_mo_stream_end,
    .stream_free = xlate_mo_stream_free,
    .count_path = "/v1/messages/count_tokens",
    .count_tokens = xlate_messages_count_estimate,
};
