/* chat_anthropic_req.c - an OpenAI chat completions request as an Anthropic Messages request
 * (see chat_anthropic.h).
 *
 * Translated:
 *   model                   the deployment's (o->model), whatever the body says
 *   messages   system, developer -> top-level "system": their text (a string content or its
 *                           text parts), every piece joined by "\n\n", wherever they stand
 *              user         -> a user turn: text parts; image_url parts (a base64 data: URL ->
 *                           an image with a base64 source, an http(s) URL -> a url source)
 *              assistant    -> an assistant turn: its text (refusal parts as text), then its
 *                           tool_calls as tool_use blocks (input = the parsed arguments)
 *              tool         -> a tool_result block (tool_use_id = tool_call_id) in a user turn
 *              Consecutive turns of one role are merged into one (Anthropic alternates roles:
 *              the results of parallel tool calls share one user turn). Empty text is left
 *              out (Anthropic refuses empty text blocks; clients send content "" beside
 *              tool_calls), and so is a message left without content.
 *   tools (function)        -> {name, description, input_schema: parameters or {"type":"object"}}
 *   tool_choice             "auto" -> auto, "none" -> none, "required" -> any,
 *                           {"type":"function","function":{"name"}} -> {"type":"tool","name"}
 *   parallel_tool_calls false -> disable_parallel_tool_use: true on the tool_choice (auto when
 *                           none was given; nothing on none)
 *   max_completion_tokens, else max_tokens -> max_tokens; neither: o->default_max_tokens
 *                           (0: 4096), as Anthropic requires one
 *   stop (string or array)  -> stop_sequences (empty strings left out)
 *   temperature (0..1), top_p -> the same
 *   user                    -> metadata.user_id
 *   o->stream               -> "stream": true (the body's stream is what the proxy read)
 * Dropped (no equivalent, and the answer does not depend on them): frequency_penalty,
 *   presence_penalty, seed, logit_bias, service_tier, store, metadata, stream_options (the
 *   proxy reads include_usage into o), prediction, modalities, reasoning_effort, verbosity,
 *   prompt_cache_key, safety_identifier, user when not a string, response_format
 *   {"type":"text"}, n: 1, logprobs: false, top_logprobs: 0, a message's "name", a tool's
 *   "strict", an image's "detail", tool_choice and parallel_tool_calls when no tools are given
 *   (Anthropic refuses a tool_choice without tools), and any member not named here.
 * Refused (XLATE_EREFUSE: the 400's message and param name the member): a body that is not
 *   a JSON object; messages missing, empty, or without a user or assistant message with
 *   content; n other than 1; logprobs: true; top_logprobs; response_format json_object or
 *   json_schema; audio; functions and function_call (legacy: send tools); web_search_options;
 *   temperature outside 0..1 (Anthropic's range); max tokens that are not positive integers;
 *   tools other than functions; content parts other than text and image_url (input_audio,
 *   file); image URLs that are neither base64 data: URLs nor http(s); tool call arguments
 *   that are not a JSON object ("" is taken as {}), or hold an integer past 64 bits; a role
 *   other than system, developer, user, assistant and tool; members of the wrong type.
 */
#include "server/xlate/chat_anthropic.h"

#include <string.h>
#include <strings.h>

#include "server/xlate/chat_in.h"
#include "server/xlate/xjson.h"

#define NOMEM XLATE_ENOMEM

typedef struct req_s {
    chat_in_t in;
    buf_t system; /* the system text so far */
} req_t;

static json_t *typed(const char *type)
{
    json_t *o = json_object();
    if (o && xjson_set(o, "type", json_string(type)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- the blocks (chat_in_ops_t) ----------------------------------------------------- */

/* a text block, or the system text (joined by "\n\n") */
static int on_text(chat_in_t *c, json_t *blocks, json_t *text)
{
    buf_t *b = &((req_t *)c->ud)->system;
    json_t *t;

    if (blocks) {
        if (!(t = typed("text")) || json_object_set(t, "text", text) != 0) {
            json_decref(t);
            return NOMEM;
        }
        return xjson_push(blocks, t);
    }
    if (b->len && buf_append(b, "\n\n", 2) != 0)
        return NOMEM;
    return buf_append(b, json_string_value(text), json_string_length(text)) == 0 ? 0 : NOMEM;
}

/* {"type":"image","source":...} of an image_url part at path (messages[i].content[j]). */
static int on_image(chat_in_t *c, const char *path, json_t *part, json_t *blocks)
{
    json_t *iu = json_object_get(part, "image_url"), *url, *src = NULL, *img, *media, *data;
    char p[64];
    const char *u;
    size_t n;
    int rc;

    url = json_is_string(iu) ? iu : json_object_get(iu, "url");
    xjson_pathf(p, sizeof(p), "%s.image_url.url", path);
    if (!json_is_string(url))
        return xjson_refuse(c->err, p,
                            "%s: must be a string (an http(s) URL or a base64 data: URL)", p);
    u = json_string_value(url);
    n = json_string_length(url);
    if (n >= 5 && strncasecmp(u, "data:", 5) == 0) {
        if ((rc = chat_in_data_url(c, p, url, &media, &data)) != 0)
            return rc;
        src = typed("base64");
        if (!src || xjson_set(src, "media_type", media) != 0 || xjson_set(src, "data", data) != 0) {
            if (!src)
                json_decref(media), json_decref(data);
            goto nomem;
        }
    } else if ((n > 7 && strncasecmp(u, "http://", 7) == 0) ||
               (n > 8 && strncasecmp(u, "https://", 8) == 0)) {
        src = typed("url");
        if (!src || json_object_set(src, "url", url) != 0)
            goto nomem;
    } else {
        return xjson_refuse(c->err, p, "%s: must be an http(s) URL or a base64 data: URL", p);
    }
    img = typed("image");
    if (!img || xjson_set(img, "source", src) != 0) {
        src = NULL;
        json_decref(img);
        goto nomem;
    }
    return xjson_push(blocks, img);
nomem:
    json_decref(src);
    return NOMEM;
}

/* a tool call -> {"type":"tool_use","id","name","input"} */
static int on_call(chat_in_t *c, json_t *id, json_t *name, json_t *input, json_t *blocks)
{
    json_t *b = typed("tool_use");

    (void)c;
    if (!b) {
        json_decref(input);
        return NOMEM;
    }
    if (json_object_set(b, "id", id) != 0 || json_object_set(b, "name", name) != 0 ||
        xjson_set(b, "input", input) != 0) {
        json_decref(b);
        return NOMEM;
    }
    return xjson_push(blocks, b);
}

/* A tool message -> {"type":"tool_result","tool_use_id","content"} */
static int on_tool(chat_in_t *c, size_t i, const char *path, json_t *m, json_t *id, json_t *blocks)
{
    json_t *cont = json_object_get(m, "content"), *b = NULL, *parts = NULL;
    int rc;

    (void)i;
    if (!json_is_string(cont)) {
        if (!(parts = json_array()))
            return NOMEM;
        if ((rc = chat_in_content(c, path, cont, "tool", 0, parts)) != 0)
            goto fail;
    }
    rc = NOMEM;
    b = typed("tool_result");
    if (!b || json_object_set(b, "tool_use_id", id) != 0)
        goto fail;
    if (json_is_string(cont) ? json_string_length(cont) && json_object_set(b, "content", cont) != 0
                             : json_array_size(parts) && json_object_set(b, "content", parts) != 0)
        goto fail;
    json_decref(parts);
    return xjson_push(blocks, b);
fail:
    json_decref(parts);
    json_decref(b);
    return rc;
}

static const chat_in_ops_t ops = {
    .provider = "Anthropic",
    .system_dest = "Anthropic's system prompt",
    .args_dest = "Anthropic's tool_use input",
    .choice_says = "gives",
    .lacks = "not available from",
    .turn_key = "content",
    .assistant_role = "assistant",
    .refuse_function_call = 1,
    .big_numbers = 1,
    .text = on_text,
    .image = on_image,
    .call = on_call,
    .tool = on_tool,
};

/* ---- tools and parameters ----------------------------------------------------------- */

/* tools (checked by chat_in_tools) -> *out */
static int tools(json_t *list, json_t **out)
{
    size_t i;
    json_t *t;

    if (!(*out = json_array()))
        return NOMEM;
    json_array_foreach(list, i, t)
    {
        json_t *fn = json_object_get(t, "function"), *desc = json_object_get(fn, "description");
        json_t *params = json_object_get(fn, "parameters"), *a;

        if (!(a = json_object()) || xjson_push(*out, a) != 0 ||
            json_object_set(a, "name", json_object_get(fn, "name")) != 0 ||
            (json_is_string(desc) && json_object_set(a, "description", desc) != 0) ||
            (json_is_object(params) ? json_object_set(a, "input_schema", params)
                                    : xjson_set(a, "input_schema", typed("object"))) != 0)
            return NOMEM;
    }
    return 0;
}

/* tool_choice and parallel_tool_calls -> *out (NULL: none) */
static int tool_choice(req_t *r, json_t *in, json_t **out)
{
    json_t *fname;
    const char *type = NULL;
    chat_choice_t choice;
    int rc, serial = json_is_false(json_object_get(in, "parallel_tool_calls"));

    *out = NULL;
    if ((rc = chat_in_tool_choice(&r->in, in, &choice, &fname)) != 0)
        return rc;
    switch (choice) {
    case CHAT_CHOICE_UNSET:
        type = serial ? "auto" : NULL;
        break;
    case CHAT_CHOICE_AUTO:
        type = "auto";
        break;
    case CHAT_CHOICE_NONE:
        type = "none";
        break;
    case CHAT_CHOICE_REQUIRED:
        type = "any";
        break;
    case CHAT_CHOICE_FUNCTION:
        type = "tool";
        break;
    }
    if (!type)
        return 0;
    if (!(*out = typed(type)))
        return NOMEM;
    if (choice == CHAT_CHOICE_FUNCTION && json_object_set(*out, "name", fname) != 0)
        return NOMEM;
    if (choice != CHAT_CHOICE_NONE && serial &&
        xjson_set(*out, "disable_parallel_tool_use", json_true()) != 0)
        return NOMEM;
    return 0;
}

/* What no member of Anthropic's request can carry and whose loss would change the answer. */
static int refused_members(req_t *r, json_t *in)
{
    json_t *v = json_object_get(in, "response_format");
    int rc;

    if ((rc = chat_in_refused_choices(&r->in, in)) != 0)
        return rc;
    if (!chat_in_absent(v) && !xjson_streq(json_object_get(v, "type"), "text"))
        return xjson_refuse(r->in.err, "response_format",
                            "response_format: structured output (json_object, json_schema) is not "
                            "translated for this model's provider (Anthropic); describe the format "
                            "in the prompt or use a tool");
    if ((rc = chat_in_refused_audio(&r->in, in)) != 0)
        return rc;
    return chat_in_refused_legacy(&r->in, in);
}

static int sampling(req_t *r, json_t *in, json_t *doc)
{
    json_t *t, *p;
    int rc;

    if ((rc = chat_in_number(&r->in, in, "temperature", 0, &t)) != 0)
        return rc;
    if (t) {
        if (json_number_value(t) < 0 || json_number_value(t) > 1)
            return xjson_refuse(r->in.err, "temperature",
                                "temperature: must be between 0 and 1 for this model (its "
                                "provider, Anthropic, takes 0 to 1; got %g)",
                                json_number_value(t));
        if (json_object_set(doc, "temperature", t) != 0)
            return NOMEM;
    }
    if ((rc = chat_in_number(&r->in, in, "top_p", 0, &p)) != 0)
        return rc;
    if (p && json_object_set(doc, "top_p", p) != 0)
        return NOMEM;
    return 0;
}

int chat_anthropic_request(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                           xlate_error_t *err)
{
    req_t r = {{&ops, err, NULL, NULL, NULL}, {0}};
    json_t *in, *doc = NULL, *list = NULL, *choice = NULL, *stop = NULL, *user, *given;
    json_int_t mt = 0;
    int rc;

    r.in.ud = &r;
    if ((rc = chat_in_load(body, len, err, &in)) != 0)
        return rc;
    rc = NOMEM;
    if (!(r.in.turns = json_array()))
        goto done;
    if ((rc = refused_members(&r, in)) != 0 ||
        (rc = chat_in_max_tokens(&r.in, in, o, o->default_max_tokens ? o->default_max_tokens : 4096,
                                 &mt)) != 0 ||
        (rc = chat_in_messages(&r.in, json_object_get(in, "messages"))) != 0 ||
        (rc = chat_in_tools(&r.in, in, &given)) != 0 ||
        (given && (rc = tools(given, &list)) != 0) ||
        (list && (rc = tool_choice(&r, in, &choice)) != 0) ||
        (rc = chat_in_stop(&r.in, in, &stop)) != 0)
        goto done;
    rc = NOMEM;
    /* Anthropic's order: model, max_tokens, system, messages, then the options */
    if (!(doc = json_object()) ||
        xjson_set(doc, "model", json_string(o->model ? o->model : "")) != 0 ||
        xjson_set(doc, "max_tokens", json_integer(mt)) != 0 ||
        (r.system.len &&
         xjson_set(doc, "system", json_stringn(r.system.data, r.system.len)) != 0) ||
        json_object_set(doc, "messages", r.in.turns) != 0 ||
        (list && json_object_set(doc, "tools", list) != 0) ||
        (choice && json_object_set(doc, "tool_choice", choice) != 0) ||
        (json_array_size(stop) && json_object_set(doc, "stop_sequences", stop) != 0))
        goto done;
    if ((rc = sampling(&r, in, doc)) != 0)
        goto done;
    rc = NOMEM;
    user = json_object_get(in, "user");
    if (json_is_string(user)) {
        json_t *md = json_object();
        if (xjson_set(doc, "metadata", md) != 0 || json_object_set(md, "user_id", user) != 0)
            goto done;
    }
    if (o->stream && xjson_set(doc, "stream", json_true()) != 0)
        goto done;
    rc = ca_dump(out, doc) == 0 ? 0 : NOMEM;
done:
    json_decref(in);
    json_decref(doc);
    json_decref(r.in.turns);
    json_decref(list);
    json_decref(choice);
    json_decref(stop);
    buf_free(&r.system);
    return rc;
}
