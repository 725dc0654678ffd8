/* chat_in.c - an OpenAI chat completions request read and validated for the chat pairs; see
 * chat_in.h. */
#include "server/xlate/chat_in.h"

#include <string.h>
#include <strings.h>

#include "server/xlate/xjson.h"

#define NOMEM XLATE_ENOMEM

int chat_in_absent(const json_t *v)
{
    return !v || json_is_null(v);
}

int chat_in_load(const char *body, size_t len, xlate_error_t *err, json_t **in)
{
    json_error_t e;

    if (err)
        err->message[0] = err->param[0] = '\0';
    *in = json_loadb(body, len, CHAT_JSON_LOAD | JSON_DECODE_ANY, &e);
    if (!*in)
        return xjson_refuse(err, "", "request body: not valid JSON (line %d, column %d)", e.line,
                            e.column);
    if (!json_is_object(*in)) {
        json_decref(*in);
        *in = NULL;
        return xjson_refuse(err, "", "request body: must be a JSON object");
    }
    return 0;
}

/* A turn of role made of blocks (stolen), merged into the last turn if it has the same role. */
static int add_turn(chat_in_t *c, const char *role, json_t *blocks)
{
    size_t n = json_array_size(c->turns);
    json_t *turn;

    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return 0;
    }
    if (n) {
        turn = json_array_get(c->turns, n - 1);
        if (xjson_streq(json_object_get(turn, "role"), role)) {
            int rc = json_array_extend(json_object_get(turn, c->ops->turn_key), blocks);
            json_decref(blocks);
            return rc == 0 ? 0 : NOMEM;
        }
    }
    if (!(turn = json_object()) || xjson_set(turn, "role", json_string(role)) != 0) {
        json_decref(turn);
        json_decref(blocks);
        return NOMEM;
    }
    if (xjson_set(turn, c->ops->turn_key, blocks) != 0) {
        json_decref(turn);
        return NOMEM;
    }
    return xjson_push(c->turns, turn);
}

/* ---- content ------------------------------------------------------------------------ */

static int text(chat_in_t *c, json_t *blocks, json_t *t)
{
    return json_string_length(t) ? c->ops->text(c, blocks, t) : 0;
}

int chat_in_data_url(chat_in_t *c, const char *p, const json_t *url, json_t **media, json_t **data)
{
    const char *u = json_string_value(url), *comma, *semi;
    size_t n = json_string_length(url), meta;

    *media = *data = NULL;
    comma = memchr(u, ',', n);
    if (!comma || (meta = (size_t)(comma - u) - 5) < 8 ||
        strncasecmp(comma - 7, ";base64", 7) != 0 || (semi = memchr(u + 5, ';', meta)) == u + 5)
        return xjson_refuse(c->err, p,
                            "%s: a data: URL must hold a base64 image with its media type "
                            "(data:image/png;base64,...)",
                            p);
    if (!(*media = json_stringn(u + 5, (size_t)(semi - u) - 5)) ||
        !(*data = json_stringn(comma + 1, n - (size_t)(comma + 1 - u)))) {
        json_decref(*media);
        *media = NULL;
        return NOMEM;
    }
    return 0;
}

int chat_in_content(chat_in_t *c, const char *path, json_t *content, const char *role, int images,
                    json_t *blocks)
{
    char p[64], g[40];
    size_t j;
    json_t *part;
    int rc;

    if (chat_in_absent(content))
        return 0;
    if (json_is_string(content))
        return text(c, blocks, content);
    xjson_pathf(p, sizeof(p), "%s.content", path);
    if (!json_is_array(content))
        return xjson_refuse(c->err, p, "%s: must be a string or an array of content parts (got %s)",
                            p, xjson_got(content, g, sizeof(g)));
    json_array_foreach(content, j, part)
    {
        json_t *type = json_object_get(part, "type");
        const char *key = NULL;

        if (xjson_streq(type, "text"))
            key = "text";
        else if (xjson_streq(type, "refusal") && strcmp(role, "assistant") == 0)
            key = "refusal";
        xjson_pathf(p, sizeof(p), "%s.content[%zu]", path, j);
        if (images && xjson_streq(type, "image_url")) {
            rc = c->ops->image(c, p, part, blocks);
        } else if (!key) {
            xjson_pathf(p, sizeof(p), "%s.content[%zu].type", path, j);
            rc = xjson_refuse(c->err, p,
                              "%s: parts of type %s cannot be sent in a %s message to this model's "
                              "provider (%s); send %s",
                              p, xjson_got(type, g, sizeof(g)), role, c->ops->provider,
                              images ? "text or image_url" : "text");
        } else if (!json_is_string(json_object_get(part, key))) {
            xjson_pathf(p, sizeof(p), "%s.content[%zu].%s", path, j, key);
            rc = xjson_refuse(c->err, p, "%s: must be a string", p);
        } else {
            rc = text(c, blocks, json_object_get(part, key));
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- messages ----------------------------------------------------------------------- */

static int only_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

/* The arguments of messages[i].tool_calls[j] (at param p) -> *input, an object. */
static int arguments(chat_in_t *c, const char *p, json_t *args, json_t **input)
{
    json_error_t e;
    char g[40];

    *input = NULL;
    if (chat_in_absent(args) ||
        (json_is_string(args) && only_space(json_string_value(args), json_string_length(args))))
        return (*input = json_object()) ? 0 : NOMEM;
    if (!json_is_string(args))
        return xjson_refuse(c->err, p, "%s: must be a string holding a JSON object (got %s)", p,
                            xjson_got(args, g, sizeof(g)));
    *input = json_loadb(json_string_value(args), json_string_length(args),
                        CHAT_JSON_LOAD | JSON_DECODE_ANY, &e);
    if (!*input && c->ops->big_numbers &&
        (strstr(e.text, "too big integer") || strstr(e.text, "overflow")))
        return xjson_refuse(c->err, p,
                            "%s: holds a number past 64-bit integers or doubles (at byte %d), "
                            "which cannot be carried",
                            p, e.position);
    if (!*input)
        return xjson_refuse(c->err, p, "%s: not valid JSON (at byte %d); %s must be a JSON object",
                            p, e.position, c->ops->args_dest);
    if (!json_is_object(*input)) {
        json_decref(*input);
        *input = NULL;
        return xjson_refuse(c->err, p, "%s: must be a JSON object (%s)", p, c->ops->args_dest);
    }
    return 0;
}

/* messages[i].tool_calls[j] -> the call callback */
static int tool_call(chat_in_t *c, size_t i, size_t j, json_t *call, json_t *blocks)
{
    json_t *fn = json_object_get(call, "function"), *name = json_object_get(fn, "name");
    json_t *id = json_object_get(call, "id"), *input;
    char p[64], g[40];
    int rc;

    xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu]", i, j);
    if (!json_is_object(call))
        return xjson_refuse(c->err, p, "%s: must be an object", p);
    if (!chat_in_absent(json_object_get(call, "type")) &&
        !xjson_streq(json_object_get(call, "type"), "function")) {
        xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].type", i, j);
        return xjson_refuse(c->err, p,
                            "%s: only function tool calls can be sent to this model's provider "
                            "(%s) (got %s)",
                            p, c->ops->provider,
                            xjson_got(json_object_get(call, "type"), g, sizeof(g)));
    }
    if (!json_is_string(id)) {
        xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].id", i, j);
        return xjson_refuse(c->err, p, "%s: must be a string", p);
    }
    if (!json_is_string(name)) {
        xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].function.name", i, j);
        return xjson_refuse(c->err, p, "%s: must be a string", p);
    }
    xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].function.arguments", i, j);
    if ((rc = arguments(c, p, json_object_get(fn, "arguments"), &input)) != 0)
        return rc;
    return c->ops->call(c, id, name, input, blocks);
}

static int assistant_turn(chat_in_t *c, size_t i, const char *path, json_t *m, json_t *blocks)
{
    json_t *calls = json_object_get(m, "tool_calls"), *call;
    char p[64];
    size_t j;
    int rc;

    if (c->ops->refuse_function_call && !chat_in_absent(json_object_get(m, "function_call"))) {
        xjson_pathf(p, sizeof(p), "%s.function_call", path);
        return xjson_refuse(c->err, p,
                            "%s: the legacy function_call is not translated; send tool_calls", p);
    }
    if ((rc = chat_in_content(c, path, json_object_get(m, "content"), "assistant", 0, blocks)) != 0)
        return rc;
    if (chat_in_absent(calls))
        return 0;
    if (!json_is_array(calls)) {
        xjson_pathf(p, sizeof(p), "%s.tool_calls", path);
        return xjson_refuse(c->err, p, "%s: must be an array", p);
    }
    json_array_foreach(calls, j, call)
    {
        if ((rc = tool_call(c, i, j, call, blocks)) != 0)
            return rc;
    }
    return 0;
}

static int tool_turn(chat_in_t *c, size_t i, const char *path, json_t *m, json_t *blocks)
{
    json_t *id = json_object_get(m, "tool_call_id");
    char p[64];

    if (!json_is_string(id)) {
        xjson_pathf(p, sizeof(p), "%s.tool_call_id", path);
        return xjson_refuse(c->err, p, "%s: must be a string (the id of the tool call answered)",
                            p);
    }
    return c->ops->tool(c, i, path, m, id, blocks);
}

int chat_in_messages(chat_in_t *c, json_t *msgs)
{
    size_t i;
    json_t *m;
    char path[64], p[64], g[40];

    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return xjson_refuse(c->err, "messages",
                            "messages: must be a non-empty array of messages (got %s)",
                            json_is_array(msgs) ? "[]" : xjson_got(msgs, g, sizeof(g)));
    c->msgs = msgs;
    json_array_foreach(msgs, i, m)
    {
        json_t *role = json_object_get(m, "role"), *blocks;
        const char *turn_role = "user";
        int rc;

        xjson_pathf(path, sizeof(path), "messages[%zu]", i);
        if (!json_is_object(m))
            return xjson_refuse(c->err, path, "%s: must be an object (got %s)", path,
                                xjson_got(m, g, sizeof(g)));
        if (xjson_streq(role, "system") || xjson_streq(role, "developer")) {
            if ((rc = chat_in_content(c, path, json_object_get(m, "content"),
                                      json_string_value(role), 0, NULL)) != 0)
                return rc;
            continue;
        }
        if (!xjson_streq(role, "user") && !xjson_streq(role, "assistant") &&
            !xjson_streq(role, "tool")) {
            xjson_pathf(p, sizeof(p), "%s.role", path);
            return xjson_refuse(
                c->err, p, "%s: must be system, developer, user, assistant or tool (got %s)%s", p,
                xjson_got(role, g, sizeof(g)),
                xjson_streq(role, "function") ? "; the legacy function role is not translated"
                                              : "");
        }
        if (!(blocks = json_array()))
            return NOMEM;
        if (xjson_streq(role, "user")) {
            rc = chat_in_content(c, path, json_object_get(m, "content"), "user", 1, blocks);
        } else if (xjson_streq(role, "assistant")) {
            turn_role = c->ops->assistant_role;
            rc = assistant_turn(c, i, path, m, blocks);
        } else {
            rc = tool_turn(c, i, path, m, blocks);
        }
        if (rc != 0) {
            json_decref(blocks);
            return rc;
        }
        if ((rc = add_turn(c, turn_role, blocks)) != 0)
            return rc;
    }
    if (json_array_size(c->turns) == 0)
        return xjson_refuse(c->err, "messages",
                            "messages: no user or assistant message has content (system and "
                            "developer messages become %s; one more message is needed)",
                            c->ops->system_dest);
    return 0;
}

/* ---- tools and parameters ----------------------------------------------------------- */

int chat_in_tools(chat_in_t *c, json_t *in, json_t **out)
{
    json_t *list = json_object_get(in, "tools"), *t;
    char p[64], g[40];
    size_t i;

    *out = NULL;
    if (chat_in_absent(list) || json_array_size(list) == 0) {
        if (!chat_in_absent(list) && !json_is_array(list))
            return xjson_refuse(c->err, "tools", "tools: must be an array of tools (got %s)",
                                xjson_got(list, g, sizeof(g)));
        return 0;
    }
    json_array_foreach(list, i, t)
    {
        json_t *fn = json_object_get(t, "function"), *name = json_object_get(fn, "name");
        json_t *desc = json_object_get(fn, "description"),
               *params = json_object_get(fn, "parameters");

        if (!xjson_streq(json_object_get(t, "type"), "function")) {
            xjson_pathf(p, sizeof(p), "tools[%zu].type", i);
            return xjson_refuse(c->err, p,
                                "%s: only function tools can be sent to this model's provider "
                                "(%s) (got %s)",
                                p, c->ops->provider,
                                xjson_got(json_object_get(t, "type"), g, sizeof(g)));
        }
        if (!json_is_string(name)) {
            xjson_pathf(p, sizeof(p), "tools[%zu].function.name", i);
            return xjson_refuse(c->err, p, "%s: must be a string", p);
        }
        if (!chat_in_absent(desc) && !json_is_string(desc)) {
            xjson_pathf(p, sizeof(p), "tools[%zu].function.description", i);
            return xjson_refuse(c->err, p, "%s: must be a string", p);
        }
        if (!chat_in_absent(params) && !json_is_object(params)) {
            xjson_pathf(p, sizeof(p), "tools[%zu].function.parameters", i);
            return xjson_refuse(c->err, p, "%s: must be a JSON Schema object (got %s)", p,
                                xjson_got(params, g, sizeof(g)));
        }
    }
    *out = list;
    return 0;
}

int chat_in_tool_choice(chat_in_t *c, json_t *in, chat_choice_t *choice, json_t **fname)
{
    json_t *tc = json_object_get(in, "tool_choice");

    *fname = NULL;
    if (chat_in_absent(tc))
        *choice = CHAT_CHOICE_UNSET;
    else if (xjson_streq(tc, "auto"))
        *choice = CHAT_CHOICE_AUTO;
    else if (xjson_streq(tc, "none"))
        *choice = CHAT_CHOICE_NONE;
    else if (xjson_streq(tc, "required"))
        *choice = CHAT_CHOICE_REQUIRED;
    else if (xjson_streq(json_object_get(tc, "type"), "function") &&
             json_is_string(*fname = json_object_get(json_object_get(tc, "function"), "name")))
        *choice = CHAT_CHOICE_FUNCTION;
    else
        return xjson_refuse(c->err, "tool_choice",
                            "tool_choice: must be \"auto\", \"none\", \"required\" or "
                            "{\"type\":\"function\",\"function\":{\"name\":...}}");
    return 0;
}

int chat_in_refused_choices(chat_in_t *c, json_t *in)
{
    json_t *v = json_object_get(in, "n");

    if (!chat_in_absent(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
        return xjson_refuse(c->err, "n",
                            "n: this model's provider (%s) %s one choice per request; send n: 1 "
                            "or leave it out",
                            c->ops->provider, c->ops->choice_says);
    if (json_is_true(json_object_get(in, "logprobs")))
        return xjson_refuse(c->err, "logprobs",
                            "logprobs: log probabilities are %s this model's provider (%s)",
                            c->ops->lacks, c->ops->provider);
    v = json_object_get(in, "top_logprobs");
    if (!chat_in_absent(v) && !(json_is_integer(v) && json_integer_value(v) == 0))
        return xjson_refuse(c->err, "top_logprobs",
                            "top_logprobs: log probabilities are %s this model's provider (%s)",
                            c->ops->lacks, c->ops->provider);
    return 0;
}

int chat_in_refused_audio(chat_in_t *c, json_t *in)
{
    if (!chat_in_absent(json_object_get(in, "audio")))
        return xjson_refuse(c->err, "audio", "audio: audio output is %s this model's provider (%s)",
                            c->ops->lacks, c->ops->provider);
    return 0;
}

int chat_in_refused_legacy(chat_in_t *c, json_t *in)
{
    if (!chat_in_absent(json_object_get(in, "functions")))
        return xjson_refuse(
            c->err, "functions",
            "functions: the legacy functions parameter is not translated; send tools");
    if (!chat_in_absent(json_object_get(in, "function_call")))
        return xjson_refuse(c->err, "function_call",
                            "function_call: the legacy function_call parameter is not translated; "
                            "send tool_choice");
    if (!chat_in_absent(json_object_get(in, "web_search_options")))
        return xjson_refuse(c->err, "web_search_options",
                            "web_search_options: web search is not translated for this model's "
                            "provider (%s)",
                            c->ops->provider);
    return 0;
}

int chat_in_max_tokens(chat_in_t *c, json_t *in, const xlate_opts_t *o, json_int_t dflt,
                       json_int_t *mt)
{
    static const char *const names[] = {"max_completion_tokens", "max_tokens"};
    char g[40];

    *mt = dflt;
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(in, names[i]);
        if (chat_in_absent(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return xjson_refuse(c->err, names[i], "%s: must be a positive integer (got %s)",
                                names[i], xjson_got(v, g, sizeof(g)));
        *mt = json_integer_value(v);
        break;
    }
    if (o->max_tokens_cap && (*mt == 0 || *mt > (json_int_t)o->max_tokens_cap))
        *mt = o->max_tokens_cap; /* the deployment's cap */
    return 0;
}

int chat_in_stop(chat_in_t *c, json_t *in, json_t **out)
{
    json_t *v = json_object_get(in, "stop"), *s;
    char p[32], g[40];
    size_t i;

    *out = NULL;
    if (chat_in_absent(v))
        return 0;
    if (!json_is_string(v) && !json_is_array(v))
        return xjson_refuse(c->err, "stop",
                            "stop: must be a string or an array of strings (got %s)",
                            xjson_got(v, g, sizeof(g)));
    if (!(*out = json_array()))
        return NOMEM;
    if (json_is_string(v))
        return json_string_length(v) && json_array_append(*out, v) != 0 ? NOMEM : 0;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s)) {
            xjson_pathf(p, sizeof(p), "stop[%zu]", i);
            return xjson_refuse(c->err, p, "%s: must be a string (got %s)", p,
                                xjson_got(s, g, sizeof(g)));
        }
        if (json_string_length(s) && json_array_append(*out, s) != 0)
            return NOMEM;
    }
    return 0;
}

int chat_in_number(chat_in_t *c, json_t *in, const char *name, int integer, json_t **v)
{
    char g[40];

    *v = json_object_get(in, name);
    if (chat_in_absent(*v)) {
        *v = NULL;
        return 0;
    }
    if (integer ? !json_is_integer(*v) : !json_is_number(*v))
        return xjson_refuse(c->err, name, "%s: must be %s (got %s)", name,
                            integer ? "an integer" : "a number", xjson_got(*v, g, sizeof(g)));
    return 0;
}
