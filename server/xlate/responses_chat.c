/* responses_chat.c - OpenAI Responses API clients (Codex CLI, the Vercel AI SDK's default
 * openai('model'), the openai SDK's client.responses.create) served by a chat-completions
 * provider (api: openai-chat: DeepSeek, a relay without /responses), statelessly; see
 * xlate.h. This file: the request and the pair; the answers are in responses_chat_answer.c
 * (response, error, what a response object is made of) and responses_chat_stream.c.
 *
 * Stateless: nothing is stored, at the provider or here. A response's ids are made up from
 * the gateway's request id, and the proxy remembers none of them (no affinity); a request
 * that names a stored response or conversation is refused (below) and tells the client to
 * send the whole conversation, as clients do with store: false (Codex CLI does that already).
 *
 * Request: POST /v1/responses body -> POST /chat/completions body
 *   translated  model (the deployment's, xlate_opts_t.model); instructions -> a first
 *               system message; input as a string -> one user message; input items:
 *               messages (type "message" or no type; roles user, assistant, system and
 *               developer -> system) with a string content or parts input_text /
 *               output_text / refusal (text) and, for user messages, input_image
 *               (image_url: an http(s) or data: URL, detail kept) -> content (one text part
 *               -> a plain string; system and assistant texts joined by "\n");
 *               function_call items -> tool_calls of an assistant message (consecutive ones
 *               grouped, and joined to the assistant message just before them; arguments
 *               as they came, id = call_id); function_call_output -> {"role":"tool",
 *               "tool_call_id", "content"} (a string, or its input_text parts joined by
 *               "\n"); tools of type function ({type,name,description,parameters,strict})
 *               -> {"type":"function","function":{name,description,parameters,strict}};
 *               tool_choice auto / none / required / {"type":"function","name"} -> the
 *               same in chat's shape; parallel_tool_calls; max_output_tokens -> max_tokens
 *               (lowered to xlate_opts_t.max_tokens_cap); temperature; top_p; user;
 *               text.format json_schema -> response_format {"type":"json_schema",
 *               "json_schema":{name,schema,strict,description}}, json_object -> response_
 *               format json_object, text -> nothing; a stream (xlate_opts_t.stream) ->
 *               "stream": true and "stream_options": {"include_usage": true}, always:
 *               billing needs usage.
 *   dropped     reasoning items (a chat provider cannot read another model's reasoning),
 *               store, metadata, reasoning (the option), truncation, include,
 *               service_tier, background false, prompt_cache_key, prompt_cache_retention,
 *               safety_identifier, max_tool_calls (built-in tools only), text.verbosity,
 *               stream_options, top_logprobs 0, items' id and status, tool_choice and
 *               parallel_tool_calls without tools (chat providers refuse them), every
 *               member not named here.
 *   refused     (XLATE_EREFUSE naming the field) a body that is not a JSON object; no input;
 *               previous_response_id and conversation (a stored response or conversation:
 *               the client must send the whole conversation); background: true; prompt (a
 *               stored prompt template); item_reference items (an item of a stored
 *               response); built-in tools and their calls (tools[i].type web_search*,
 *               file_search, computer_use*, code_interpreter, mcp, image_generation,
 *               local_shell, shell, apply_patch, custom, ...; items of those types): the
 *               provider cannot run them, and the answer would change without them;
 *               tool_choice naming a built-in tool or allowed_tools; input_file and
 *               input_audio parts, images by file_id, images outside user messages, images
 *               in a function_call_output; text.format other than text / json_schema /
 *               json_object; top_logprobs > 0 (chat's logprobs are not carried back);
 *               members of the wrong JSON type.
 *
 * The answers (responses_chat_answer.c, responses_chat_stream.c): a response object with
 * id "resp_" + the request id, status completed (incomplete with reason max_output_tokens
 * for finish_reason length, content_filter for content_filter), model = the client's, the
 * output items (a message with one output_text part, function_call items with call_id =
 * the chat tool call's id), usage (input_tokens = prompt_tokens, cached_tokens,
 * output_tokens, reasoning_tokens, total_tokens) and the request's members echoed
 * (instructions, tools, tool_choice, temperature, top_p, parallel_tool_calls, text,
 * max_output_tokens, user, metadata; store false: nothing was stored).
 */
#include "server/xlate/responses_chat.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "server/xlate/chat_up.h"
#include "server/xlate/xjson.h"

#define PARAM_MAX 128 /* room for a path; xlate_error_t.param keeps what fits */
/* What a client can do about a refusal (STYLE: say what to do). */
#define OR_OPENAI "; remove it, or use a model with an api: openai deployment"

typedef struct req_s {
    xlate_error_t *err;
    const xlate_opts_t *o;
    json_t *msgs; /* the chat messages (borrowed: the output document holds them) */
    buf_t text;   /* texts being joined */
} req_t;

static int is(const char *s, const char *lit)
{
    return s && strcmp(s, lit) == 0;
}

static int present(const json_t *v)
{
    return v && !json_is_null(v);
}

static int push_msg(req_t *r, const char *role, json_t *content)
{
    return chat_up_push_msg(r->msgs, role, content);
}

/* Appends one text to r->text, "\n" between texts (has_text: one is there already). */
static int add_text(req_t *r, int *has_text, const json_t *t)
{
    if ((*has_text && buf_append(&r->text, "\n", 1) != 0) ||
        buf_append(&r->text, json_string_value(t), json_string_length(t)) != 0)
        return XLATE_ENOMEM;
    *has_text = 1;
    return 0;
}

/* An input_image part -> a chat image_url part (user messages only). */
static int image_part(req_t *r, const json_t *part, const char *p, json_t **out)
{
    const json_t *url = json_object_get(part, "image_url"), *detail;

    if (json_is_object(url)) /* chat's own shape, as some clients send it */
        url = json_object_get(url, "url");
    if (!json_is_string(url)) {
        if (present(json_object_get(part, "file_id")))
            return xjson_refusef(r->err, p,
                                 "images by file_id live in OpenAI's file store: a "
                                 "chat-completions provider cannot read them; send the image as "
                                 "a URL or a data: URL" OR_OPENAI);
        return xjson_refusef(r->err, p, "an input_image needs its image_url (a URL or data: URL)");
    }
    detail = json_object_get(part, "detail");
    *out = chat_up_image(json_incref((json_t *)url), json_is_string(detail) ? detail : NULL);
    return *out ? 0 : XLATE_ENOMEM;
}

/* A message item -> a chat message. */
static int message_item(req_t *r, size_t i, const json_t *item)
{
    const char *role = json_string_value(json_object_get(item, "role"));
    const json_t *content = json_object_get(item, "content"), *part;
    char p[PARAM_MAX];
    json_t *parts;
    size_t j;
    int rc = 0, has_text = 0, user;

    snprintf(p, sizeof(p), "input[%zu].role", i);
    if (!is(role, "user") && !is(role, "assistant") && !is(role, "system") &&
        !is(role, "developer"))
        return xjson_refusef(r->err, p, "must be user, assistant, system or developer");
    user = is(role, "user");
    if (is(role, "developer"))
        role = "system"; /* chat providers other than OpenAI know no developer role */
    if (json_is_string(content))
        return push_msg(r, role, json_incref((json_t *)content));
    snprintf(p, sizeof(p), "input[%zu].content", i);
    if (!json_is_array(content))
        return xjson_refusef(r->err, p, "must be a string or an array of content parts");
    if (!(parts = json_array()))
        return XLATE_ENOMEM;
    buf_reset(&r->text);
    json_array_foreach(content, j, part)
    {
        const char *type = json_string_value(json_object_get(part, "type"));
        const json_t *t = json_object_get(part, is(type, "refusal") ? "refusal" : "text");
        json_t *cp = NULL;

        snprintf(p, sizeof(p), "input[%zu].content[%zu]", i, j);
        if (is(type, "input_text") || is(type, "output_text") || is(type, "refusal") ||
            is(type, "text")) {
            if (!json_is_string(t))
                rc = xjson_refusef(r->err, p, "a %s part needs its text string", type);
            else if (!user)
                rc = add_text(r, &has_text, t);
            else if (!(cp = json_pack("{s:s,s:O}", "type", "text", "text", t)))
                rc = XLATE_ENOMEM;
        } else if (is(type, "input_image") && user) {
            rc = image_part(r, part, p, &cp);
        } else if (is(type, "input_image")) {
            rc = xjson_refusef(r->err, p,
                               "a chat-completions provider takes images in user messages "
                               "only" OR_OPENAI);
        } else if (is(type, "input_file") || is(type, "input_audio")) {
            rc = xjson_refusef(r->err, p,
                               "%s parts cannot be sent to a chat-completions provider (text "
                               "and images can)" OR_OPENAI,
                               type);
        } else {
            rc = xjson_refusef(r->err, p,
                               "a content part of type %s has no equivalent at a "
                               "chat-completions provider" OR_OPENAI,
                               type ? type : "(none)");
        }
        if (rc == 0 && cp)
            rc = xjson_push(parts, cp);
        if (rc)
            break;
    }
    if (rc == 0 && !user) {
        rc = push_msg(r, role, xjson_buf(&r->text));
    } else if (rc == 0) {
        rc = push_msg(r, "user", chat_up_user_content(parts));
        parts = NULL;
    }
    json_decref(parts);
    return rc;
}

/* A function_call item -> a tool call of the assistant message before it (or a new one). */
static int function_call_item(req_t *r, size_t i, const json_t *item)
{
    const json_t *id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
    const json_t *args = json_object_get(item, "arguments");
    json_t *last = json_array_get(r->msgs, json_array_size(r->msgs) - 1), *calls, *call;
    char p[PARAM_MAX];

    snprintf(p, sizeof(p), "input[%zu]", i);
    if (!json_is_string(id) || !json_is_string(name))
        return xjson_refusef(r->err, p, "a function_call needs its call_id and name");
    if (present(args) && !json_is_string(args))
        return xjson_refusef(r->err, p, "a function_call's arguments must be a string");
    call = chat_up_call(id, name,
                        json_is_string(args) ? json_incref((json_t *)args) : json_string("{}"));
    if (!call)
        return XLATE_ENOMEM;
    if (!is(json_string_value(json_object_get(last, "role")), "assistant")) {
        if (!(last = json_pack("{s:s,s:n}", "role", "assistant", "content")) ||
            xjson_push(r->msgs, last) != 0) {
            json_decref(call);
            return XLATE_ENOMEM;
        }
    }
    calls = json_object_get(last, "tool_calls");
    if (!calls && xjson_set(last, "tool_calls", calls = json_array()) != 0) {
        json_decref(call);
        return XLATE_ENOMEM;
    }
    return xjson_push(calls, call);
}

static int function_output_item(req_t *r, size_t i, const json_t *item)
{
    const json_t *id = json_object_get(item, "call_id"), *out = json_object_get(item, "output");
    const json_t *part;
    char p[PARAM_MAX];
    int has_text = 0, rc;
    size_t j;
    json_t *m;

    snprintf(p, sizeof(p), "input[%zu]", i);
    if (!json_is_string(id))
        return xjson_refusef(r->err, p, "a function_call_output needs its call_id");
    buf_reset(&r->text);
    if (json_is_string(out)) {
        if (buf_append(&r->text, json_string_value(out), json_string_length(out)) != 0)
            return XLATE_ENOMEM;
    } else if (json_is_array(out)) {
        json_array_foreach(out, j, part)
        {
            const json_t *t = json_object_get(part, "text");
            snprintf(p, sizeof(p), "input[%zu].output[%zu]", i, j);
            if (!(xjson_is_type(part, "input_text") || xjson_is_type(part, "output_text")) ||
                !json_is_string(t))
                return xjson_refusef(r->err, p,
                                     "a chat-completions provider takes text only in a "
                                     "function_call_output" OR_OPENAI);
            if ((rc = add_text(r, &has_text, t)) != 0)
                return rc;
        }
    } else if (present(out)) {
        snprintf(p, sizeof(p), "input[%zu].output", i);
        return xjson_refusef(r->err, p, "must be a string or an array of input_text parts");
    }
    m = json_pack("{s:s,s:O,s:o}", "role", "tool", "tool_call_id", id, "content",
                  xjson_buf(&r->text));
    return m ? xjson_push(r->msgs, m) : XLATE_ENOMEM;
}

static int input_items(req_t *r, const json_t *input)
{
    const json_t *item;
    char p[PARAM_MAX];
    size_t i;
    int rc = 0;

    if (json_is_string(input))
        return push_msg(r, "user", json_incref((json_t *)input));
    if (!json_is_array(input))
        return xjson_refusef(r->err, "input", "must be a string or an array of input items");
    json_array_foreach(input, i, item)
    {
        const char *type = json_string_value(json_object_get(item, "type"));

        snprintf(p, sizeof(p), "input[%zu]", i);
        if (!json_is_object(item))
            return xjson_refusef(r->err, p, "must be an input item (an object)");
        if (!type && json_object_get(item, "role"))
            type = "message";
        snprintf(p, sizeof(p), "input[%zu].type", i);
        if (is(type, "message"))
            rc = message_item(r, i, item);
        else if (is(type, "function_call"))
            rc = function_call_item(r, i, item);
        else if (is(type, "function_call_output"))
            rc = function_output_item(r, i, item);
        else if (is(type, "reasoning"))
            rc = 0; /* another model's reasoning: dropped */
        else if (is(type, "item_reference"))
            rc = xjson_refusef(r->err, p,
                               "an item_reference names an item of a stored response, and "
                               "llmgate stores none on a chat-completions provider; send the "
                               "item itself (the Vercel AI SDK: providerOptions.openai.store = "
                               "false)");
        else
            rc = xjson_refusef(r->err, p,
                               "%s items belong to built-in tools, which a chat-completions "
                               "provider cannot run" OR_OPENAI,
                               type ? type : "(none)");
        if (rc)
            return rc;
    }
    return 0;
}

static int tools(req_t *r, const json_t *in, json_t *req)
{
    const json_t *list = json_object_get(in, "tools"), *t, *tc = json_object_get(in, "tool_choice");
    const json_t *ptc = json_object_get(in, "parallel_tool_calls");
    char p[PARAM_MAX];
    json_t *out, *choice = NULL;
    size_t i;
    int rc = 0;

    if (present(list) && !json_is_array(list))
        return xjson_refusef(r->err, "tools", "must be an array of tools");
    json_array_foreach(list, i, t)
    {
        const char *type = json_string_value(json_object_get(t, "type"));
        snprintf(p, sizeof(p), "tools[%zu].type", i);
        if (!is(type, "function"))
            return xjson_refusef(r->err, p,
                                 "tools of type %s run at OpenAI only (a chat-completions "
                                 "provider has function tools alone): it cannot run them, and "
                                 "the answer would change without them" OR_OPENAI,
                                 type ? type : "(none)");
    }
    if (json_array_size(list) == 0)
        return 0; /* no tools: tool_choice and parallel calls mean nothing (chat refuses) */
    if ((rc = xjson_set(req, "tools", out = json_array())) != 0)
        return rc;
    json_array_foreach(list, i, t)
    {
        const json_t *name = json_object_get(t, "name"), *d = json_object_get(t, "description");
        const json_t *params = json_object_get(t, "parameters"), *st = json_object_get(t, "strict");

        snprintf(p, sizeof(p), "tools[%zu].name", i);
        if (!json_is_string(name))
            return xjson_refusef(r->err, p, "required: a function tool needs its name");
        if ((rc = chat_up_tool(out, name, present(d) ? d : NULL, present(params) ? params : NULL,
                               present(st) ? st : NULL)) != 0)
            return rc;
    }
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (!is(s, "auto") && !is(s, "none") && !is(s, "required"))
            return xjson_refusef(r->err, "tool_choice", "must be auto, none or required (got %s)",
                                 s);
        choice = json_incref((json_t *)tc);
    } else if (present(tc)) {
        const char *type = json_string_value(json_object_get(tc, "type"));
        const json_t *name = json_object_get(tc, "name");
        if (!is(type, "function"))
            return xjson_refusef(r->err, "tool_choice.type",
                                 "only a function can be chosen at a chat-completions "
                                 "provider (got %s)" OR_OPENAI,
                                 type ? type : "(none)");
        if (!json_is_string(name))
            return xjson_refusef(r->err, "tool_choice.name", "required with type function");
        choice = chat_up_choose(name);
    }
    if (choice && (rc = xjson_set(req, "tool_choice", choice)) != 0)
        return rc;
    if (present(ptc) && !json_is_boolean(ptc))
        return xjson_refusef(r->err, "parallel_tool_calls", "must be a boolean");
    if (json_is_boolean(ptc))
        rc = xjson_set(req, "parallel_tool_calls", json_incref((json_t *)ptc));
    return rc;
}

static int text_format(req_t *r, const json_t *text, json_t *req)
{
    const json_t *f = json_object_get(text, "format");
    const char *type = json_string_value(json_object_get(f, "type"));
    json_t *js;
    int rc = 0;

    if (present(text) && !json_is_object(text))
        return xjson_refusef(r->err, "text", "must be an object");
    if (!present(f) || is(type, "text"))
        return 0;
    if (is(type, "json_object"))
        return xjson_set(req, "response_format", json_pack("{s:s}", "type", "json_object"));
    if (!is(type, "json_schema"))
        return xjson_refusef(r->err, "text.format.type",
                             "must be text, json_schema or json_object (got %s)",
                             type ? type : "(none)");
    if (!json_is_object(json_object_get(f, "schema")))
        return xjson_refusef(r->err, "text.format.schema", "required: the JSON schema");
    if (!(js = json_object()))
        return XLATE_ENOMEM;
    rc = xjson_set(js, "name",
                   json_is_string(json_object_get(f, "name"))
                       ? json_incref(json_object_get(f, "name"))
                       : json_string("output"));
    for (size_t k = 0; rc == 0 && k < 3; k++) {
        static const char *const keep[] = {"schema", "strict", "description"};
        const json_t *v = json_object_get(f, keep[k]);
        if (present(v))
            rc = xjson_set(js, keep[k], json_incref((json_t *)v));
    }
    if (rc == 0)
        return xjson_set(req, "response_format",
                         json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
    json_decref(js);
    return rc;
}

/* What names stored state, or cannot be done without it: refused. */
static int stateful(req_t *r, const json_t *in)
{
    const json_t *v;

    if (present(json_object_get(in, "previous_response_id")))
        return xjson_refusef(r->err, "previous_response_id",
                             "llmgate cannot continue a stored response on a "
                             "chat-completions provider (api: openai-chat): nothing is stored "
                             "there; send the whole conversation in input instead (as with "
                             "store: false)");
    if (present(json_object_get(in, "conversation")))
        return xjson_refusef(r->err, "conversation",
                             "llmgate cannot continue a stored conversation on a "
                             "chat-completions provider (api: openai-chat); send the whole "
                             "conversation in input instead (as with store: false)");
    if (json_is_true(json_object_get(in, "background")))
        return xjson_refusef(r->err, "background",
                             "a background response must be stored to be retrieved, and a "
                             "chat-completions provider (api: openai-chat) stores nothing; "
                             "send it without background, or use a model with an api: openai "
                             "deployment");
    if (present(json_object_get(in, "prompt")))
        return xjson_refusef(r->err, "prompt",
                             "stored prompt templates live at OpenAI only; send the "
                             "instructions and input themselves" OR_OPENAI);
    v = json_object_get(in, "top_logprobs");
    if (present(v) && !(json_is_integer(v) && json_integer_value(v) == 0))
        return xjson_refusef(r->err, "top_logprobs",
                             "log probabilities are not carried back from a chat-completions "
                             "provider" OR_OPENAI);
    return 0;
}

/* max_output_tokens, temperature, top_p, user. */
static int params(req_t *r, const json_t *in, json_t *req)
{
    const json_t *v;
    int rc;

    if ((rc = chat_up_params(in, "max_output_tokens", r->o, req, r->err)) != 0)
        return rc;
    v = json_object_get(in, "user");
    if (json_is_string(v) && (rc = xjson_set(req, "user", json_incref((json_t *)v))) != 0)
        return rc;
    return text_format(r, json_object_get(in, "text"), req);
}

static int responses_request(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                             xlate_error_t *err)
{
    json_t *in, *req = NULL;
    req_t r = {err, o, NULL, {0}};
    const json_t *ins;
    int rc;

    if ((rc = chat_up_parse(body, len, err, &in)) != 0 || (rc = stateful(&r, in)) != 0 ||
        (rc = chat_up_open(in, o, err, &req, &r.msgs)) != 0)
        goto exit;
    ins = json_object_get(in, "instructions");
    if (present(ins) && !json_is_string(ins)) {
        rc = xjson_refusef(err, "instructions", "must be a string");
        goto exit;
    }
    if (json_string_length(ins) && (rc = push_msg(&r, "system", json_incref((json_t *)ins))) != 0)
        goto exit;
    if (!present(json_object_get(in, "input"))) {
        rc = xjson_refusef(err, "input", "required: a string or an array of input items");
        goto exit;
    }
    if ((rc = input_items(&r, json_object_get(in, "input"))) != 0)
        goto exit;
    if (json_array_size(r.msgs) == 0) {
        rc = xjson_refusef(err, "input", "has no message a chat-completions provider can read");
        goto exit;
    }
    if ((rc = params(&r, in, req)) != 0 || (rc = tools(&r, in, req)) != 0)
        goto exit;
    rc = chat_up_close(req, o, out);
exit:
    buf_free(&r.text);
    json_decref(req);
    json_decref(in);
    return rc;
}

const xlate_pair_t xlate_responses_chat = {
    .client = API_RESPONSES,
    .provider = CFG_API_OPENAI_CHAT,
    .client_path = "/v1/responses",
    .upstream_path = "/chat/completions",
    .upstream = &api_chat,
    .request = responses_request,
    .response = xlate_rc_response,
    .error = xlate_rc_error,
    .stream_size = XLATE_RC_STREAM_SIZE,
    .stream_init = xlate_rc_stream_init,
    .stream_feed = xlate_rc_stream_feed,
    .stream_end = xlate_rc_stream_end,
    .stream_free = xlate_rc_stream_free,
};
