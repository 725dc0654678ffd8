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

#include <string.h>
#include <strings.h>

#include "server/xlate/chat_in.h"
#include "server/xlate/xjson.h"

#define NOMEM XLATE_ENOMEM

typedef struct req_s {
    chat_in_t in;
    json_t *system; /* systemInstruction's parts */
} req_t;

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

/* ---- the parts (chat_in_ops_t) ------------------------------------------------------ */

/* {text} in blocks, or in systemInstruction's parts */
static int on_text(chat_in_t *c, json_t *parts, json_t *text)
{
    return xjson_push(parts ? parts : ((req_t *)c->ud)->system, one("text", json_incref(text)));
}

/* {inlineData:{mimeType, data}} of an image_url part at path (messages[i].content[j]). */
static int on_image(chat_in_t *c, const char *path, json_t *part, json_t *parts)
{
    json_t *iu = json_object_get(part, "image_url"), *url, *d, *media, *data;
    char p[64];
    int rc;

    url = json_is_string(iu) ? iu : json_object_get(iu, "url");
    xjson_pathf(p, sizeof(p), "%s.image_url.url", path);
    if (!json_is_string(url))
        return xjson_refuse(c->err, p, "%s: must be a string (a base64 data: URL)", p);
    if (json_string_length(url) < 5 || strncasecmp(json_string_value(url), "data:", 5) != 0)
        return xjson_refuse(c->err, p,
                            "%s: this model's provider (Gemini) takes images as data only: send a "
                            "base64 data: URL (data:image/png;base64,...), not a web URL",
                            p);
    if ((rc = chat_in_data_url(c, p, url, &media, &data)) != 0)
        return rc;
    if (!(d = json_object())) {
        json_decref(media);
        json_decref(data);
        return NOMEM;
    }
    if (xjson_set(d, "mimeType", media) != 0 || xjson_set(d, "data", data) != 0) {
        json_decref(d);
        return NOMEM;
    }
    return xjson_push(parts, one("inlineData", d));
}

/* a tool call -> {functionCall:{name, args}} */
static int on_call(chat_in_t *c, json_t *id, json_t *name, json_t *input, json_t *parts)
{
    json_t *fc;

    (void)c;
    (void)id;
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

/* The function name of the tool call id among the assistant messages before messages[i]. */
static json_t *call_name(const chat_in_t *c, size_t i, const json_t *id)
{
    while (i-- > 0) {
        json_t *m = json_array_get(c->msgs, i), *call;
        size_t j;
        if (!xjson_streq(json_object_get(m, "role"), "assistant"))
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
static int on_tool(chat_in_t *c, size_t i, const char *path, json_t *m, json_t *id, json_t *parts)
{
    json_t *cont = json_object_get(m, "content"), *name, *resp = NULL, *fr, *tp = NULL;
    buf_t text = {0};
    char p[64];
    size_t j;
    int rc;

    xjson_pathf(p, sizeof(p), "%s.tool_call_id", path);
    if (!json_is_string(name = call_name(c, i, id)))
        return xjson_refuse(c->err, p,
                            "%s: no earlier assistant message has a tool call with this id; this "
                            "model's provider (Gemini) needs the function's name",
                            p);
    if (!json_is_string(cont)) {
        if (!(tp = json_array()))
            return NOMEM;
        if ((rc = chat_in_content(c, path, cont, "tool", 0, tp)) != 0) {
            json_decref(tp);
            return rc;
        }
        json_array_foreach(tp, j, cont)
        {
            json_t *t = json_object_get(cont, "text");
            if (buf_append(&text, json_string_value(t), json_string_length(t)) != 0) {
                json_decref(tp);
                buf_free(&text);
                return NOMEM;
            }
        }
        json_decref(tp);
    } else if (buf_append(&text, json_string_value(cont), json_string_length(cont)) != 0) {
        return NOMEM;
    }
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

static const chat_in_ops_t ops = {
    .provider = "Gemini",
    .system_dest = "Gemini's systemInstruction",
    .args_dest = "Gemini's functionCall args",
    .choice_says = "is asked for",
    .lacks = "not translated for",
    .turn_key = "parts",
    .assistant_role = "model",
    .refuse_function_call = 0,
    .big_numbers = 0,
    .text = on_text,
    .image = on_image,
    .call = on_call,
    .tool = on_tool,
};

/* ---- tools and parameters ----------------------------------------------------------- */

/* tools (checked by chat_in_tools) -> *out ([{functionDeclarations:[...]}]) */
static int tools(json_t *list, json_t **out)
{
    json_t *t, *decls;
    size_t i;

    if (!(*out = json_array()) || !(decls = json_array()) ||
        xjson_push(*out, one("functionDeclarations", decls)) != 0)
        return NOMEM;
    json_array_foreach(list, i, t)
    {
        json_t *fn = json_object_get(t, "function"), *desc = json_object_get(fn, "description");
        json_t *params = json_object_get(fn, "parameters"), *a;

        if (!(a = json_object()) || xjson_push(decls, a) != 0 ||
            json_object_set(a, "name", json_object_get(fn, "name")) != 0 ||
            (json_is_string(desc) && json_object_set(a, "description", desc) != 0) ||
            (json_is_object(params) && json_object_set(a, "parametersJsonSchema", params) != 0))
            return NOMEM;
    }
    return 0;
}

/* tool_choice -> *out (toolConfig; NULL: none) */
static int tool_config(req_t *r, json_t *in, json_t **out)
{
    static const char *const modes[] = {
        [CHAT_CHOICE_AUTO] = "AUTO",
        [CHAT_CHOICE_NONE] = "NONE",
        [CHAT_CHOICE_REQUIRED] = "ANY",
        [CHAT_CHOICE_FUNCTION] = "ANY",
    };
    json_t *fname, *fcc, *names;
    chat_choice_t choice;
    int rc;

    *out = NULL;
    if ((rc = chat_in_tool_choice(&r->in, in, &choice, &fname)) != 0 || choice == CHAT_CHOICE_UNSET)
        return rc;
    if (!(fcc = json_object()) || !(*out = one("functionCallingConfig", fcc)) ||
        xjson_set(fcc, "mode", json_string(modes[choice])) != 0)
        return NOMEM;
    if (choice == CHAT_CHOICE_FUNCTION &&
        (xjson_set(fcc, "allowedFunctionNames", names = json_array()) != 0 ||
         json_array_append(names, fname) != 0))
        return NOMEM;
    return 0;
}

/* What no member of Gemini's request can carry and whose loss would change the answer. */
static int refused_members(req_t *r, json_t *in)
{
    json_t *v;
    size_t i;
    int rc;

    if ((rc = chat_in_refused_choices(&r->in, in)) != 0 ||
        (rc = chat_in_refused_audio(&r->in, in)) != 0)
        return rc;
    json_array_foreach(json_object_get(in, "modalities"), i, v)
    {
        if (xjson_streq(v, "audio"))
            return xjson_refuse(r->in.err, "modalities",
                                "modalities: audio output is not translated for this model's "
                                "provider (Gemini)");
    }
    return chat_in_refused_legacy(&r->in, in);
}

/* stop -> cfg.stopSequences */
static int stop_sequences(req_t *r, json_t *in, json_t *cfg)
{
    json_t *list;
    int rc = chat_in_stop(&r->in, in, &list);

    if (rc || !json_array_size(list)) {
        json_decref(list);
        return rc;
    }
    return xjson_set(cfg, "stopSequences", list);
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
    json_t *v;
    int rc;

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if ((rc = chat_in_number(&r->in, in, map[i].from, map[i].integer, &v)) != 0)
            return rc;
        if (v && json_object_set(cfg, map[i].to, v) != 0)
            return NOMEM;
    }
    return 0;
}

/* response_format -> responseMimeType (+ responseJsonSchema) */
static int response_format(req_t *r, json_t *in, json_t *cfg)
{
    json_t *v = json_object_get(in, "response_format"), *type = json_object_get(v, "type");
    json_t *schema;

    if (chat_in_absent(v) || xjson_streq(type, "text"))
        return 0;
    if (xjson_streq(type, "json_object"))
        return xjson_set(cfg, "responseMimeType", json_string("application/json"));
    if (!xjson_streq(type, "json_schema"))
        return xjson_refuse(
            r->in.err, "response_format",
            "response_format: must be {\"type\":\"text\"}, {\"type\":\"json_object\"} "
            "or {\"type\":\"json_schema\",\"json_schema\":{...}}");
    schema = json_object_get(json_object_get(v, "json_schema"), "schema");
    if (!json_is_object(schema))
        return xjson_refuse(r->in.err, "response_format.json_schema.schema",
                            "response_format.json_schema.schema: must be a JSON Schema object");
    if (xjson_set(cfg, "responseMimeType", json_string("application/json")) != 0 ||
        json_object_set(cfg, "responseJsonSchema", schema) != 0)
        return NOMEM;
    return 0;
}

int chat_gemini_request(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                        xlate_error_t *err)
{
    req_t r = {{&ops, err, NULL, NULL, NULL}, NULL};
    json_t *in, *doc = NULL, *given, *list = NULL, *tcfg = NULL, *cfg = NULL;
    json_int_t mt = 0;
    int rc;

    r.in.ud = &r;
    if ((rc = chat_in_load(body, len, err, &in)) != 0)
        return rc;
    rc = NOMEM;
    if (!(r.in.turns = json_array()) || !(r.system = json_array()) || !(cfg = json_object()))
        goto done;
    if ((rc = refused_members(&r, in)) != 0 ||
        (rc = chat_in_max_tokens(&r.in, in, o, 0, &mt)) != 0 ||
        (rc = chat_in_messages(&r.in, json_object_get(in, "messages"))) != 0 ||
        (rc = chat_in_tools(&r.in, in, &given)) != 0 ||
        (given && (rc = tools(given, &list)) != 0) ||
        (list && (rc = tool_config(&r, in, &tcfg)) != 0) ||
        (rc = stop_sequences(&r, in, cfg)) != 0 || (rc = numbers(&r, in, cfg)) != 0 ||
        (rc = response_format(&r, in, cfg)) != 0)
        goto done;
    rc = NOMEM;
    if (mt && xjson_set(cfg, "maxOutputTokens", json_integer(mt)) != 0)
        goto done;
    /* the documented order: contents, tools, toolConfig, systemInstruction,
     * generationConfig */
    if (!(doc = json_object()) || json_object_set(doc, "contents", r.in.turns) != 0 ||
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
    json_decref(r.in.turns);
    json_decref(r.system);
    json_decref(list);
    json_decref(tcfg);
    json_decref(cfg);
    return rc;
}
