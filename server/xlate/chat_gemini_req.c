/* chat_gemini_req.c - an OpenAI chat completions request as a Gemini GenerateContentRequest
 * (see chat_gemini.h).
 *
 * Translated:
 *   model                   the deployment's (o->model), in the path (chat_gemini_path)
 *   messages   system, developer -> systemInstruction {parts:[{text}...]}: their text (a
 *                           string content or its text parts), wherever they stand
 *              user         -> a "user" turn: text parts -> {text}; image_url parts with a
 *                           base64 data: URL -> {inlineData:{mimeType, data}}
 *              assistant    -> a "model" turn: its text (refusal parts as text), then its
 *                           tool_calls as {functionCall:{name, args: the parsed arguments}}
 *              tool         -> {functionResponse:{name, response}} in a "user" turn: name =
 *                           the function of the earlier assistant tool call with that
 *                           tool_call_id; response = the content when it is a JSON object,
 *                           else {"result": the content (parsed JSON, else the text)}
 *              Consecutive turns of one role are merged into one (the results of parallel
 *              calls share one turn, as Gemini wants them). Empty text is left out, and so is
 *              a message left without parts.
 *   tools (function)        -> tools:[{functionDeclarations:[{name, description,
 *                           parametersJsonSchema: parameters}]}] (parametersJsonSchema takes
 *                           JSON Schema as it is: $schema, additionalProperties, ... need no
 *                           stripping, which "parameters", an OpenAPI subset, would)
 *   tool_choice             "auto" -> functionCallingConfig.mode AUTO, "none" -> NONE,
 *                           "required" -> ANY, {"type":"function","function":{"name"}} -> ANY
 *                           with allowedFunctionNames [name]
 *   max_completion_tokens, else max_tokens -> generationConfig.maxOutputTokens (lowered to
 *                           o->max_tokens_cap; neither given: the cap, if any)
 *   stop (string or array)  -> generationConfig.stopSequences (empty strings left out)
 *   temperature, top_p, seed, presence_penalty, frequency_penalty -> temperature, topP, seed,
 *                           presencePenalty, frequencyPenalty
 *   response_format         json_object -> responseMimeType "application/json";
 *                           json_schema -> the same and responseJsonSchema: its schema
 * Dropped (no equivalent, and the answer does not depend on them): parallel_tool_calls
 *   (Gemini has no switch: it may call several functions either way), logit_bias,
 *   service_tier, store, metadata, user, stream_options (the proxy reads include_usage into
 *   o), stream (the path says it), prediction, modalities ["text"], reasoning_effort,
 *   verbosity, prompt_cache_key, safety_identifier, response_format {"type":"text"}, n: 1,
 *   logprobs: false, top_logprobs: 0, a message's "name", a tool's "strict" and a
 *   json_schema's name / strict / description, an image's "detail", tool_choice when no tools
 *   are given, and any member not named here.
 * Refused (XLATE_EREFUSE: the 400's message and param name the member): a body that is not
 *   a JSON object; messages missing, empty, or without a user or assistant message with
 *   content; n other than 1 (only candidate 0 would be translated: one choice per request);
 *   logprobs: true; top_logprobs; audio and modalities with "audio"; functions and
 *   function_call (legacy: send tools); web_search_options; max tokens that are not positive
 *   integers; numbers of the wrong type; tools other than functions; content parts other
 *   than text and image_url (input_audio, file); image URLs that are not base64 data: URLs
 *   (Gemini's fileData takes only files uploaded to its Files API, not a web URL: send the
 *   image as a data: URL); tool call arguments that are not a JSON object ("" is {}); a tool
 *   message whose tool_call_id no earlier assistant tool call has (Gemini needs the function's
 *   name); response_format json_schema without a schema object; a role other than system,
 *   developer, user, assistant and tool; members of the wrong type.
 */
#include "server/xlate/chat_gemini.h"
#include "server/xlate/xjson.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define REFUSED XLATE_EREFUSE
#define NOMEM   XLATE_ENOMEM

typedef struct req_s {
    xlate_error_t *err;
    json_t *msgs;   /* the client's messages */
    json_t *turns;  /* Gemini's contents */
    json_t *system; /* systemInstruction's parts */
} req_t;

static int absent(const json_t *v) /* or null */
{
    return !v || json_is_null(v);
}

/* {key: v} (v stolen; NULL: no memory) */
static json_t *one(const char *key, json_t *v)
{
    json_t *o = json_object();
    if (!o || !v || json_object_set_new(o, key, v) != 0) {
        json_decref(o);
        if (!o)
            json_decref(v);
        return NULL;
    }
    return o;
}

/* A turn of role made of parts (stolen), merged into the last turn if it has the same role. */
static int add_turn(req_t *r, const char *role, json_t *parts)
{
    size_t n = json_array_size(r->turns);
    json_t *turn;

    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return 0;
    }
    if (n) {
        turn = json_array_get(r->turns, n - 1);
        if (cg_streq(json_object_get(turn, "role"), role)) {
            int rc = json_array_extend(json_object_get(turn, "parts"), parts);
            json_decref(parts);
            return rc == 0 ? 0 : NOMEM;
        }
    }
    if (!(turn = json_object()) || xjson_set(turn, "role", json_string(role)) != 0) {
        json_decref(turn);
        json_decref(parts);
        return NOMEM;
    }
    if (xjson_set(turn, "parts", parts) != 0) {
        json_decref(turn);
        return NOMEM;
    }
    return xjson_push(r->turns, turn);
}

/* ---- content ------------------------------------------------------------------------ */

static int add_text(json_t *parts, json_t *text)
{
    if (json_string_length(text) == 0)
        return 0;
    return xjson_push(parts, one("text", json_incref(text)));
}

/* {inlineData:{mimeType, data}} of an image_url part at path (messages[i].content[j]). */
static int add_image(req_t *r, const char *path, json_t *part, json_t *parts)
{
    json_t *iu = json_object_get(part, "image_url"), *url, *d;
    char p[64];
    const char *u, *comma, *semi;
    size_t n, meta;

    url = json_is_string(iu) ? iu : json_object_get(iu, "url");
    xjson_pathf(p, sizeof(p), "%s.image_url.url", path);
    if (!json_is_string(url))
        return xjson_refuse(r->err, p, "%s: must be a string (a base64 data: URL)", p);
    u = json_string_value(url);
    n = json_string_length(url);
    if (n < 5 || strncasecmp(u, "data:", 5) != 0)
        return xjson_refuse(r->err, p,
                            "%s: this model's provider (Gemini) takes images as data only: send a "
                            "base64 data: URL (data:image/png;base64,...), not a web URL",
                            p);
    comma = memchr(u, ',', n);
    if (!comma || (meta = (size_t)(comma - u) - 5) < 8 ||
        strncasecmp(comma - 7, ";base64", 7) != 0 || (semi = memchr(u + 5, ';', meta)) == u + 5)
        return xjson_refuse(r->err, p,
                            "%s: a data: URL must hold a base64 image with its media type "
                            "(data:image/png;base64,...)",
                            p);
    if (!(d = json_object()) ||
        xjson_set(d, "mimeType", json_stringn(u + 5, (size_t)(semi - u) - 5)) != 0 ||
        xjson_set(d, "data", json_stringn(comma + 1, n - (size_t)(comma + 1 - u))) != 0) {
        json_decref(d);
        return NOMEM;
    }
    return xjson_push(parts, one("inlineData", d));
}

/* The parts of a content (at path = messages[i]): a string, or an array of text parts (and of
 * refusal parts for an assistant; of image_url parts when images is set). */
static int content(req_t *r, const char *path, json_t *c, const char *role, int images,
                   json_t *parts)
{
    char p[64], g[40];
    size_t j;
    json_t *part;
    int rc;

    if (absent(c))
        return 0;
    if (json_is_string(c))
        return add_text(parts, c);
    xjson_pathf(p, sizeof(p), "%s.content", path);
    if (!json_is_array(c))
        return xjson_refuse(r->err, p, "%s: must be a string or an array of content parts (got %s)",
                            p, xjson_got(c, g, sizeof(g)));
    json_array_foreach(c, j, part)
    {
        json_t *type = json_object_get(part, "type");
        const char *key = NULL;

        if (cg_streq(type, "text"))
            key = "text";
        else if (cg_streq(type, "refusal") && strcmp(role, "assistant") == 0)
            key = "refusal";
        xjson_pathf(p, sizeof(p), "%s.content[%zu]", path, j);
        if (images && cg_streq(type, "image_url")) {
            rc = add_image(r, p, part, parts);
        } else if (!key) {
            xjson_pathf(p, sizeof(p), "%s.content[%zu].type", path, j);
            rc = xjson_refuse(r->err, p,
                              "%s: parts of type %s cannot be sent in a %s message to this model's "
                              "provider (Gemini); send %s",
                              p, xjson_got(type, g, sizeof(g)), role,
                              images ? "text or image_url" : "text");
        } else if (!json_is_string(json_object_get(part, key))) {
            xjson_pathf(p, sizeof(p), "%s.content[%zu].%s", path, j, key);
            rc = xjson_refuse(r->err, p, "%s: must be a string", p);
        } else {
            rc = add_text(parts, json_object_get(part, key));
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

/* messages[i].tool_calls[j] -> {functionCall:{name, args}} */
static int add_call(req_t *r, size_t i, size_t j, json_t *call, json_t *parts)
{
    json_t *fn = json_object_get(call, "function"), *name = json_object_get(fn, "name");
    json_t *args = json_object_get(fn, "arguments"), *input = NULL, *fc = NULL;
    char p[64], g[40];

    xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu]", i, j);
    if (!json_is_object(call))
        return xjson_refuse(r->err, p, "%s: must be an object", p);
    if (!absent(json_object_get(call, "type")) &&
        !cg_streq(json_object_get(call, "type"), "function")) {
        xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].type", i, j);
        return xjson_refuse(r->err, p,
                            "%s: only function tool calls can be sent to this model's provider "
                            "(Gemini) (got %s)",
                            p, xjson_got(json_object_get(call, "type"), g, sizeof(g)));
    }
    if (!json_is_string(json_object_get(call, "id"))) {
        xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].id", i, j);
        return xjson_refuse(r->err, p, "%s: must be a string", p);
    }
    if (!json_is_string(name)) {
        xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].function.name", i, j);
        return xjson_refuse(r->err, p, "%s: must be a string", p);
    }
    xjson_pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].function.arguments", i, j);
    if (absent(args) ||
        (json_is_string(args) && only_space(json_string_value(args), json_string_length(args)))) {
        input = json_object();
    } else if (!json_is_string(args)) {
        return xjson_refuse(r->err, p, "%s: must be a string holding a JSON object (got %s)", p,
                            xjson_got(args, g, sizeof(g)));
    } else {
        json_error_t e;
        input = json_loadb(json_string_value(args), json_string_length(args),
                           CG_JSON_LOAD | JSON_DECODE_ANY, &e);
        if (!input)
            return xjson_refuse(
                r->err, p,
                "%s: not valid JSON (at byte %d); Gemini's functionCall args must be "
                "a JSON object",
                p, e.position);
        if (!json_is_object(input)) {
            json_decref(input);
            return xjson_refuse(r->err, p, "%s: must be a JSON object (Gemini's functionCall args)",
                                p);
        }
    }
    if (!input)
        return NOMEM;
    if (!(fc = json_object())) {
        json_decref(input);
        return NOMEM;
    }
    if (json_object_set(fc, "name", name) != 0 || xjson_set(fc, "args", input) != 0) {
        json_decref(fc);
        return NOMEM;
    }
    return xjson_push(parts, one("functionCall", fc));
}

static int assistant_turn(req_t *r, size_t i, const char *path, json_t *m, json_t *parts)
{
    json_t *calls = json_object_get(m, "tool_calls"), *call;
    char p[64];
    size_t j;
    int rc;

    if ((rc = content(r, path, json_object_get(m, "content"), "assistant", 0, parts)) != 0)
        return rc;
    if (absent(calls))
        return 0;
    if (!json_is_array(calls)) {
        xjson_pathf(p, sizeof(p), "%s.tool_calls", path);
        return xjson_refuse(r->err, p, "%s: must be an array", p);
    }
    json_array_foreach(calls, j, call) if ((rc = add_call(r, i, j, call, parts)) != 0) return rc;
    return 0;
}

/* The function name of the tool call id among the assistant messages before messages[i]. */
static json_t *call_name(const req_t *r, size_t i, const json_t *id)
{
    while (i-- > 0) {
        json_t *m = json_array_get(r->msgs, i), *call;
        size_t j;
        if (!cg_streq(json_object_get(m, "role"), "assistant"))
            continue;
        json_array_foreach(json_object_get(m, "tool_calls"), j, call)
        {
            if (json_equal(json_object_get(call, "id"), (json_t *)id))
                return json_object_get(json_object_get(call, "function"), "name");
        }
    }
    return NULL;
}

/* A tool message -> {functionResponse:{name, response}} */
static int tool_turn(req_t *r, size_t i, const char *path, json_t *m, json_t *parts)
{
    json_t *id = json_object_get(m, "tool_call_id"), *c = json_object_get(m, "content");
    json_t *name, *resp = NULL, *fr, *tp = NULL;
    buf_t text = {0};
    char p[64];
    size_t j;
    int rc;

    xjson_pathf(p, sizeof(p), "%s.tool_call_id", path);
    if (!json_is_string(id))
        return xjson_refuse(r->err, p, "%s: must be a string (the id of the tool call answered)",
                            p);
    if (!json_is_string(name = call_name(r, i, id)))
        return xjson_refuse(r->err, p,
                            "%s: no earlier assistant message has a tool call with this id; this "
                            "model's provider (Gemini) needs the function's name",
                            p);
    if (!json_is_string(c)) {
        if (!(tp = json_array()))
            return NOMEM;
        if ((rc = content(r, path, c, "tool", 0, tp)) != 0) {
            json_decref(tp);
            return rc;
        }
        json_array_foreach(tp, j, c)
        {
            json_t *t = json_object_get(c, "text");
            if (buf_append(&text, json_string_value(t), json_string_length(t)) != 0) {
                json_decref(tp);
                buf_free(&text);
                return NOMEM;
            }
        }
        json_decref(tp);
    } else if (buf_append(&text, json_string_value(c), json_string_length(c)) != 0) {
        return NOMEM;
    }
    rc = NOMEM;
    /* the result as JSON when it is JSON: an object as it is, anything else as "result" */
    resp = text.len ? json_loadb(text.data, text.len, CG_JSON_LOAD | JSON_DECODE_ANY, NULL) : NULL;
    if (!json_is_object(resp)) {
        json_t *v = resp ? resp : xjson_buf(&text);
        resp = one("result", v);
    }
    buf_free(&text);
    if (!resp || !(fr = json_object())) {
        json_decref(resp);
        return NOMEM;
    }
    if (json_object_set(fr, "name", name) != 0 || xjson_set(fr, "response", resp) != 0) {
        json_decref(fr);
        return NOMEM;
    }
    return xjson_push(parts, one("functionResponse", fr));
}

static int messages(req_t *r, json_t *msgs)
{
    size_t i;
    json_t *m;
    char path[64], p[64], g[40];

    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return xjson_refuse(r->err, "messages",
                            "messages: must be a non-empty array of messages (got %s)",
                            json_is_array(msgs) ? "[]" : xjson_got(msgs, g, sizeof(g)));
    r->msgs = msgs;
    json_array_foreach(msgs, i, m)
    {
        json_t *role = json_object_get(m, "role"), *parts;
        const char *turn_role = "user";
        int rc;

        xjson_pathf(path, sizeof(path), "messages[%zu]", i);
        if (!json_is_object(m))
            return xjson_refuse(r->err, path, "%s: must be an object (got %s)", path,
                                xjson_got(m, g, sizeof(g)));
        if (cg_streq(role, "system") || cg_streq(role, "developer")) {
            if ((rc = content(r, path, json_object_get(m, "content"), json_string_value(role), 0,
                              r->system)) != 0)
                return rc;
            continue;
        }
        if (!cg_streq(role, "user") && !cg_streq(role, "assistant") && !cg_streq(role, "tool")) {
            xjson_pathf(p, sizeof(p), "%s.role", path);
            return xjson_refuse(
                r->err, p, "%s: must be system, developer, user, assistant or tool (got %s)%s", p,
                xjson_got(role, g, sizeof(g)),
                cg_streq(role, "function") ? "; the legacy function role is not translated" : "");
        }
        if (!(parts = json_array()))
            return NOMEM;
        if (cg_streq(role, "user")) {
            rc = content(r, path, json_object_get(m, "content"), "user", 1, parts);
        } else if (cg_streq(role, "assistant")) {
            turn_role = "model";
            rc = assistant_turn(r, i, path, m, parts);
        } else {
            rc = tool_turn(r, i, path, m, parts);
        }
        if (rc != 0) {
            json_decref(parts);
            return rc;
        }
        if ((rc = add_turn(r, turn_role, parts)) != 0)
            return rc;
    }
    if (json_array_size(r->turns) == 0)
        return xjson_refuse(
            r->err, "messages",
            "messages: no user or assistant message has content (system and developer "
            "messages become Gemini's systemInstruction; one more message is needed)");
    return 0;
}

/* ---- tools and parameters ----------------------------------------------------------- */

/* tools -> *out ([{functionDeclarations:[...]}], NULL when none) */
static int tools(req_t *r, json_t *in, json_t **out)
{
    json_t *list = json_object_get(in, "tools"), *t, *decls;
    char p[64], g[40];
    size_t i;

    *out = NULL;
    if (absent(list) || json_array_size(list) == 0) {
        if (!absent(list) && !json_is_array(list))
            return xjson_refuse(r->err, "tools", "tools: must be an array of tools (got %s)",
                                xjson_got(list, g, sizeof(g)));
        return 0;
    }
    if (!(*out = json_array()) || !(decls = json_array()) ||
        xjson_push(*out, one("functionDeclarations", decls)) != 0)
        return NOMEM;
    json_array_foreach(list, i, t)
    {
        json_t *fn = json_object_get(t, "function"), *name = json_object_get(fn, "name");
        json_t *desc = json_object_get(fn, "description"),
               *params = json_object_get(fn, "parameters");
        json_t *a;

        if (!cg_streq(json_object_get(t, "type"), "function")) {
            xjson_pathf(p, sizeof(p), "tools[%zu].type", i);
            return xjson_refuse(r->err, p,
                                "%s: only function tools can be sent to this model's provider "
                                "(Gemini) (got %s)",
                                p, xjson_got(json_object_get(t, "type"), g, sizeof(g)));
        }
        if (!json_is_string(name)) {
            xjson_pathf(p, sizeof(p), "tools[%zu].function.name", i);
            return xjson_refuse(r->err, p, "%s: must be a string", p);
        }
        if (!absent(desc) && !json_is_string(desc)) {
            xjson_pathf(p, sizeof(p), "tools[%zu].function.description", i);
            return xjson_refuse(r->err, p, "%s: must be a string", p);
        }
        if (!absent(params) && !json_is_object(params)) {
            xjson_pathf(p, sizeof(p), "tools[%zu].function.parameters", i);
            return xjson_refuse(r->err, p, "%s: must be a JSON Schema object (got %s)", p,
                                xjson_got(params, g, sizeof(g)));
        }
        if (!(a = json_object()) || xjson_push(decls, a) != 0 ||
            json_object_set(a, "name", name) != 0 ||
            (json_is_string(desc) && json_object_set(a, "description", desc) != 0) ||
            (json_is_object(params) && json_object_set(a, "parametersJsonSchema", params) != 0))
            return NOMEM;
    }
    return 0;
}

/* tool_choice -> *out (toolConfig; NULL: none) */
static int tool_config(req_t *r, json_t *in, json_t **out)
{
    json_t *tc = json_object_get(in, "tool_choice"), *fname = NULL, *fcc, *names;
    const char *mode;

    *out = NULL;
    if (absent(tc))
        return 0;
    if (cg_streq(tc, "auto"))
        mode = "AUTO";
    else if (cg_streq(tc, "none"))
        mode = "NONE";
    else if (cg_streq(tc, "required"))
        mode = "ANY";
    else if (cg_streq(json_object_get(tc, "type"), "function") &&
             json_is_string(fname = json_object_get(json_object_get(tc, "function"), "name")))
        mode = "ANY";
    else
        return xjson_refuse(r->err, "tool_choice",
                            "tool_choice: must be \"auto\", \"none\", \"required\" or "
                            "{\"type\":\"function\",\"function\":{\"name\":...}}");
    if (!(fcc = json_object()) || !(*out = one("functionCallingConfig", fcc)) ||
        xjson_set(fcc, "mode", json_string(mode)) != 0)
        return NOMEM;
    if (fname && (xjson_set(fcc, "allowedFunctionNames", names = json_array()) != 0 ||
                  json_array_append(names, fname) != 0))
        return NOMEM;
    return 0;
}

/* What no member of Gemini's request can carry and whose loss would change the answer. */
static int refused_members(req_t *r, json_t *in)
{
    json_t *v;
    size_t i;

    v = json_object_get(in, "n");
    if (!absent(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
        return xjson_refuse(
            r->err, "n",
            "n: this model's provider (Gemini) is asked for one choice per request; "
            "send n: 1 or leave it out");
    if (json_is_true(json_object_get(in, "logprobs")))
        return xjson_refuse(
            r->err, "logprobs",
            "logprobs: log probabilities are not translated for this model's provider "
            "(Gemini)");
    v = json_object_get(in, "top_logprobs");
    if (!absent(v) && !(json_is_integer(v) && json_integer_value(v) == 0))
        return xjson_refuse(r->err, "top_logprobs",
                            "top_logprobs: log probabilities are not translated for this model's "
                            "provider (Gemini)");
    if (!absent(json_object_get(in, "audio")))
        return xjson_refuse(
            r->err, "audio",
            "audio: audio output is not translated for this model's provider (Gemini)");
    json_array_foreach(
        json_object_get(in, "modalities"), i,
        v) if (cg_streq(v,
                        "audi"
                        "o")) return xjson_refuse(r->err, "modalities",
                                                  "modalities: audio output is not translated for "
                                                  "this model's provider (Gemini)");
    if (!absent(json_object_get(in, "functions")))
        return xjson_refuse(
            r->err, "functions",
            "functions: the legacy functions parameter is not translated; send tools");
    if (!absent(json_object_get(in, "function_call")))
        return xjson_refuse(r->err, "function_call",
                            "function_call: the legacy function_call parameter is not translated; "
                            "send tool_choice");
    if (!absent(json_object_get(in, "web_search_options")))
        return xjson_refuse(r->err, "web_search_options",
                            "web_search_options: web search is not translated for this model's "
                            "provider (Gemini)");
    return 0;
}

static int max_tokens(req_t *r, json_t *in, const xlate_opts_t *o, json_int_t *mt)
{
    static const char *const names[] = {"max_completion_tokens", "max_tokens"};
    char g[40];

    *mt = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(in, names[i]);
        if (absent(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return xjson_refuse(r->err, names[i], "%s: must be a positive integer (got %s)",
                                names[i], xjson_got(v, g, sizeof(g)));
        *mt = json_integer_value(v);
        break;
    }
    if (o->max_tokens_cap && (*mt == 0 || *mt > (json_int_t)o->max_tokens_cap))
        *mt = o->max_tokens_cap; /* the deployment's cap */
    return 0;
}

/* stop -> cfg.stopSequences */
static int stop_sequences(req_t *r, json_t *in, json_t *cfg)
{
    json_t *v = json_object_get(in, "stop"), *s, *list;
    char p[32], g[40];
    size_t i;

    if (absent(v))
        return 0;
    if (!json_is_string(v) && !json_is_array(v))
        return xjson_refuse(r->err, "stop",
                            "stop: must be a string or an array of strings (got %s)",
                            xjson_got(v, g, sizeof(g)));
    if (!(list = json_array()))
        return NOMEM;
    if (json_is_string(v)) {
        if (json_string_length(v) && json_array_append(list, v) != 0)
            goto nomem;
    } else {
        json_array_foreach(v, i, s)
        {
            if (!json_is_string(s)) {
                json_decref(list);
                xjson_pathf(p, sizeof(p), "stop[%zu]", i);
                return xjson_refuse(r->err, p, "%s: must be a string (got %s)", p,
                                    xjson_got(s, g, sizeof(g)));
            }
            if (json_string_length(s) && json_array_append(list, s) != 0)
                goto nomem;
        }
    }
    if (!json_array_size(list)) {
        json_decref(list);
        return 0;
    }
    return xjson_set(cfg, "stopSequences", list);
nomem:
    json_decref(list);
    return NOMEM;
}

/* The numbers: OpenAI's name, Gemini's, and whether an integer is needed. */
static int numbers(req_t *r, json_t *in, json_t *cfg)
{
    static const struct {
        const char *from, *to;
        int integer;
    } map[] = {
        {"temperature", "temperature", 0},
        {"top_p", "topP", 0},
        {"seed", "seed", 1},
        {"presence_penalty", "presencePenalty", 0},
        {"frequency_penalty", "frequencyPenalty", 0},
    };
    char g[40];

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        json_t *v = json_object_get(in, map[i].from);
        if (absent(v))
            continue;
        if (map[i].integer ? !json_is_integer(v) : !json_is_number(v))
            return xjson_refuse(r->err, map[i].from, "%s: must be %s (got %s)", map[i].from,
                                map[i].integer ? "an integer" : "a number",
                                xjson_got(v, g, sizeof(g)));
        if (json_object_set(cfg, map[i].to, v) != 0)
            return NOMEM;
    }
    return 0;
}

/* response_format -> responseMimeType (+ responseJsonSchema) */
static int response_format(req_t *r, json_t *in, json_t *cfg)
{
    json_t *v = json_object_get(in, "response_format"), *type = json_object_get(v, "type");
    json_t *schema;

    if (absent(v) || cg_streq(type, "text"))
        return 0;
    if (cg_streq(type, "json_object"))
        return xjson_set(cfg, "responseMimeType", json_string("application/json"));
    if (!cg_streq(type, "json_schema"))
        return xjson_refuse(
            r->err, "response_format",
            "response_format: must be {\"type\":\"text\"}, {\"type\":\"json_object\"} "
            "or {\"type\":\"json_schema\",\"json_schema\":{...}}");
    schema = json_object_get(json_object_get(v, "json_schema"), "schema");
    if (!json_is_object(schema))
        return xjson_refuse(r->err, "response_format.json_schema.schema",
                            "response_format.json_schema.schema: must be a JSON Schema object");
    if (xjson_set(cfg, "responseMimeType", json_string("application/json")) != 0 ||
        json_object_set(cfg, "responseJsonSchema", schema) != 0)
        return NOMEM;
    return 0;
}

int chat_gemini_request(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                        xlate_error_t *err)
{
    req_t r = {err, NULL, NULL, NULL};
    json_t *in, *doc = NULL, *list = NULL, *tcfg = NULL, *cfg = NULL;
    json_error_t e;
    json_int_t mt = 0;
    int rc;

    if (err)
        err->message[0] = err->param[0] = '\0';
    in = json_loadb(body, len, CG_JSON_LOAD | JSON_DECODE_ANY, &e);
    if (!in)
        return xjson_refuse(err, "", "request body: not valid JSON (line %d, column %d)", e.line,
                            e.column);
    if (!json_is_object(in)) {
        json_decref(in);
        return xjson_refuse(err, "", "request body: must be a JSON object");
    }
    rc = NOMEM;
    if (!(r.turns = json_array()) || !(r.system = json_array()) || !(cfg = json_object()))
        goto done;
    if ((rc = refused_members(&r, in)) != 0 || (rc = max_tokens(&r, in, o, &mt)) != 0 ||
        (rc = messages(&r, json_object_get(in, "messages"))) != 0 ||
        (rc = tools(&r, in, &list)) != 0 || (list && (rc = tool_config(&r, in, &tcfg)) != 0) ||
        (rc = stop_sequences(&r, in, cfg)) != 0 || (rc = numbers(&r, in, cfg)) != 0 ||
        (rc = response_format(&r, in, cfg)) != 0)
        goto done;
    rc = NOMEM;
    if (mt && xjson_set(cfg, "maxOutputTokens", json_integer(mt)) != 0)
        goto done;
    /* the documented order: contents, tools, toolConfig, systemInstruction,
     * generationConfig */
    if (!(doc = json_object()) || json_object_set(doc, "contents", r.turns) != 0 ||
        (list && json_object_set(doc, "tools", list) != 0) ||
        (tcfg && json_object_set(doc, "toolConfig", tcfg) != 0) ||
        (json_array_size(r.system) &&
         xjson_set(doc, "systemInstruction", one("parts", json_incref(r.system))) != 0) ||
        (json_object_size(cfg) && json_object_set(doc, "generationConfig", cfg) != 0))
        goto done;
    rc = xjson_put(out, doc) == 0 ? 0 : NOMEM;
done:
    json_decref(in);
    json_decref(doc);
    json_decref(r.turns);
    json_decref(r.system);
    json_decref(list);
    json_decref(tcfg);
    json_decref(cfg);
    return rc;
}
