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

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define REFUSED XLATE_EREFUSE
#define NOMEM   XLATE_ENOMEM

typedef struct req_s {
    xlate_error_t *err;
    json_t *turns; /* Anthropic's messages */
    buf_t system;  /* the system text so far */
} req_t;

static int refuse(xlate_error_t *err, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pathf(char *b, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* b = a member's path, as a param names it (xlate_error_t.param: at most 63 bytes). */
static void pathf(char *b, size_t cap, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b, cap, fmt, ap);
    va_end(ap);
}

static int refuse(xlate_error_t *err, const char *param, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return REFUSED;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    snprintf(err->param, sizeof(err->param), "%s", param);
    return REFUSED;
}

/* What a refusal says it got: a short printable ASCII string in quotes, else its kind (the
 * message is ASCII and never cut inside a client's bytes). */
static const char *got(const json_t *v, char *b, size_t cap)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v), i;
        for (i = 0; i < n && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\'; i++)
            ;
        if (i == n && n + 3 <= cap && n <= 32) {
            snprintf(b, cap, "\"%s\"", s);
            return b;
        }
        return "a string";
    }
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return v ? "null" : "nothing";
    }
}

static int absent(const json_t *v) /* or null */
{
    return !v || json_is_null(v);
}

/* o.k = v (v stolen, NULL: no memory); 0 or -1 */
static int put(json_t *o, const char *k, json_t *v)
{
    return json_object_set_new(o, k, v);
}

static json_t *typed(const char *type)
{
    json_t *o = json_object();
    if (o && put(o, "type", json_string(type)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int add_text_block(json_t *blocks, json_t *text)
{
    json_t *b = typed("text");
    if (!b || json_object_set(b, "text", text) != 0) {
        json_decref(b);
        return NOMEM;
    }
    return json_array_append_new(blocks, b) == 0 ? 0 : NOMEM;
}

/* A turn of role made of blocks (stolen), merged into the last turn if it has the same role. */
static int add_turn(req_t *r, const char *role, json_t *blocks)
{
    size_t n = json_array_size(r->turns);
    json_t *turn;

    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return 0;
    }
    if (n) {
        turn = json_array_get(r->turns, n - 1);
        if (ca_streq(json_object_get(turn, "role"), role)) {
            int rc = json_array_extend(json_object_get(turn, "content"), blocks);
            json_decref(blocks);
            return rc == 0 ? 0 : NOMEM;
        }
    }
    turn = json_object();
    if (!turn || put(turn, "role", json_string(role)) != 0) {
        json_decref(turn);
        json_decref(blocks);
        return NOMEM;
    }
    if (put(turn, "content", blocks) != 0) {
        json_decref(turn);
        return NOMEM;
    }
    return json_array_append_new(r->turns, turn) == 0 ? 0 : NOMEM;
}

/* ---- content ------------------------------------------------------------------------ */

/* Where the text pieces of a content go: the system text, or a turn's blocks. */
typedef struct sink_s {
    req_t *r;
    json_t *blocks; /* NULL: the system text */
} sink_t;

static int sink_text(sink_t *k, json_t *text)
{
    buf_t *b = &k->r->system;

    if (json_string_length(text) == 0)
        return 0;
    if (k->blocks)
        return add_text_block(k->blocks, text);
    if (b->len && buf_append(b, "\n\n", 2) != 0)
        return NOMEM;
    return buf_append(b, json_string_value(text), json_string_length(text)) == 0 ? 0 : NOMEM;
}

/* {"type":"image","source":...} of an image_url part at path (messages[i].content[j]). */
static int add_image(req_t *r, const char *path, json_t *part, json_t *blocks)
{
    json_t *iu = json_object_get(part, "image_url"), *url, *src = NULL, *img;
    char p[64];
    const char *u;
    size_t n;

    url = json_is_string(iu) ? iu : json_object_get(iu, "url");
    pathf(p, sizeof(p), "%s.image_url.url", path);
    if (!json_is_string(url))
        return refuse(r->err, p, "%s: must be a string (an http(s) URL or a base64 data: URL)", p);
    u = json_string_value(url);
    n = json_string_length(url);
    if (n >= 5 && strncasecmp(u, "data:", 5) == 0) {
        const char *comma = memchr(u, ',', n), *semi;
        size_t meta;
        if (!comma || (meta = (size_t)(comma - u) - 5) < 8 ||
            strncasecmp(comma - 7, ";base64", 7) != 0 || (semi = memchr(u + 5, ';', meta)) == u + 5)
            return refuse(r->err, p,
                          "%s: a data: URL must hold a base64 image with its media type "
                          "(data:image/png;base64,...)",
                          p);
        src = typed("base64");
        if (!src || put(src, "media_type", json_stringn(u + 5, (size_t)(semi - u) - 5)) != 0 ||
            put(src, "data", json_stringn(comma + 1, n - (size_t)(comma + 1 - u))) != 0)
            goto nomem;
    } else if ((n > 7 && strncasecmp(u, "http://", 7) == 0) ||
               (n > 8 && strncasecmp(u, "https://", 8) == 0)) {
        src = typed("url");
        if (!src || json_object_set(src, "url", url) != 0)
            goto nomem;
    } else {
        return refuse(r->err, p, "%s: must be an http(s) URL or a base64 data: URL", p);
    }
    img = typed("image");
    if (!img || put(img, "source", src) != 0) {
        src = NULL;
        json_decref(img);
        goto nomem;
    }
    return json_array_append_new(blocks, img) == 0 ? 0 : NOMEM;
nomem:
    json_decref(src);
    return NOMEM;
}

/* The text of a content (at path = messages[i]): a string, or an array of text parts (and of
 * refusal parts for an assistant; of image_url parts when images is set, into k->blocks). */
static int content(sink_t *k, const char *path, json_t *c, const char *role, int images)
{
    char p[64], g[40];
    size_t j;
    json_t *part;
    int rc;

    if (absent(c))
        return 0;
    if (json_is_string(c))
        return sink_text(k, c);
    pathf(p, sizeof(p), "%s.content", path);
    if (!json_is_array(c))
        return refuse(k->r->err, p, "%s: must be a string or an array of content parts (got %s)", p,
                      got(c, g, sizeof(g)));
    json_array_foreach(c, j, part)
    {
        json_t *type = json_object_get(part, "type");
        const char *key = NULL;

        if (ca_streq(type, "text"))
            key = "text";
        else if (ca_streq(type, "refusal") && strcmp(role, "assistant") == 0)
            key = "refusal";
        pathf(p, sizeof(p), "%s.content[%zu]", path, j);
        if (images && ca_streq(type, "image_url")) {
            rc = add_image(k->r, p, part, k->blocks);
        } else if (!key) {
            pathf(p, sizeof(p), "%s.content[%zu].type", path, j);
            rc = refuse(k->r->err, p,
                        "%s: parts of type %s cannot be sent in a %s message to this model's "
                        "provider (Anthropic); send %s",
                        p, got(type, g, sizeof(g)), role, images ? "text or image_url" : "text");
        } else if (!json_is_string(json_object_get(part, key))) {
            pathf(p, sizeof(p), "%s.content[%zu].%s", path, j, key);
            rc = refuse(k->r->err, p, "%s: must be a string", p);
        } else {
            rc = sink_text(k, json_object_get(part, key));
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

/* messages[i].tool_calls[j] -> {"type":"tool_use","id","name","input"} */
static int add_tool_use(req_t *r, size_t i, size_t j, json_t *call, json_t *blocks)
{
    json_t *fn = json_object_get(call, "function"), *name = json_object_get(fn, "name");
    json_t *id = json_object_get(call, "id"), *args = json_object_get(fn, "arguments");
    json_t *input = NULL, *b;
    char p[64], g[40];

    pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu]", i, j);
    if (!json_is_object(call))
        return refuse(r->err, p, "%s: must be an object", p);
    if (!absent(json_object_get(call, "type")) &&
        !ca_streq(json_object_get(call, "type"), "function")) {
        pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].type", i, j);
        return refuse(r->err, p,
                      "%s: only function tool calls can be sent to this model's provider "
                      "(Anthropic) (got %s)",
                      p, got(json_object_get(call, "type"), g, sizeof(g)));
    }
    if (!json_is_string(id)) {
        pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].id", i, j);
        return refuse(r->err, p, "%s: must be a string", p);
    }
    if (!json_is_string(name)) {
        pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].function.name", i, j);
        return refuse(r->err, p, "%s: must be a string", p);
    }
    pathf(p, sizeof(p), "messages[%zu].tool_calls[%zu].function.arguments", i, j);
    if (absent(args) ||
        (json_is_string(args) && only_space(json_string_value(args), json_string_length(args)))) {
        input = json_object();
    } else if (!json_is_string(args)) {
        return refuse(r->err, p, "%s: must be a string holding a JSON object (got %s)", p,
                      got(args, g, sizeof(g)));
    } else {
        json_error_t e;
        input = json_loadb(json_string_value(args), json_string_length(args),
                           CA_JSON_LOAD | JSON_DECODE_ANY, &e);
        if (!input && (strstr(e.text, "too big integer") || strstr(e.text, "overflow")))
            return refuse(r->err, p,
                          "%s: holds a number past 64-bit integers or doubles (at byte %d), "
                          "which cannot be carried",
                          p, e.position);
        if (!input)
            return refuse(r->err, p,
                          "%s: not valid JSON (at byte %d); Anthropic's tool_use input must be "
                          "a JSON object",
                          p, e.position);
        if (!json_is_object(input)) {
            json_decref(input);
            return refuse(r->err, p, "%s: must be a JSON object (Anthropic's tool_use input)", p);
        }
    }
    b = typed("tool_use");
    if (!b || json_object_set(b, "id", id) != 0 || json_object_set(b, "name", name) != 0 ||
        put(b, "input", input) != 0) {
        json_decref(b);
        return NOMEM;
    }
    return json_array_append_new(blocks, b) == 0 ? 0 : NOMEM;
}

static int assistant_turn(req_t *r, size_t i, const char *path, json_t *m, json_t *blocks)
{
    sink_t k = {r, blocks};
    json_t *calls = json_object_get(m, "tool_calls"), *call;
    char p[64];
    size_t j;
    int rc;

    if (!absent(json_object_get(m, "function_call"))) {
        pathf(p, sizeof(p), "%s.function_call", path);
        return refuse(r->err, p, "%s: the legacy function_call is not translated; send tool_calls",
                      p);
    }
    if ((rc = content(&k, path, json_object_get(m, "content"), "assistant", 0)) != 0)
        return rc;
    if (absent(calls))
        return 0;
    if (!json_is_array(calls)) {
        pathf(p, sizeof(p), "%s.tool_calls", path);
        return refuse(r->err, p, "%s: must be an array", p);
    }
    json_array_foreach(calls, j,
                       call) if ((rc = add_tool_use(r, i, j, call, blocks)) != 0) return rc;
    return 0;
}

/* A tool message -> {"type":"tool_result","tool_use_id","content"} */
static int tool_turn(req_t *r, const char *path, json_t *m, json_t *blocks)
{
    json_t *id = json_object_get(m, "tool_call_id"), *c = json_object_get(m, "content");
    json_t *b = NULL, *parts = NULL;
    char p[64];
    int rc;

    if (!json_is_string(id)) {
        pathf(p, sizeof(p), "%s.tool_call_id", path);
        return refuse(r->err, p, "%s: must be a string (the id of the tool call answered)", p);
    }
    if (!json_is_string(c)) {
        sink_t k = {r, parts = json_array()};
        if (!parts)
            return NOMEM;
        if ((rc = content(&k, path, c, "tool", 0)) != 0)
            goto fail;
    }
    rc = NOMEM;
    b = typed("tool_result");
    if (!b || json_object_set(b, "tool_use_id", id) != 0)
        goto fail;
    if (json_is_string(c) ? json_string_length(c) && json_object_set(b, "content", c) != 0
                          : json_array_size(parts) && json_object_set(b, "content", parts) != 0)
        goto fail;
    json_decref(parts);
    return json_array_append_new(blocks, b) == 0 ? 0 : NOMEM;
fail:
    json_decref(parts);
    json_decref(b);
    return rc;
}

static int messages(req_t *r, json_t *msgs)
{
    size_t i;
    json_t *m;
    char path[64], p[64], g[40];

    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return refuse(r->err, "messages",
                      "messages: must be a non-empty array of messages (got %s)",
                      json_is_array(msgs) ? "[]" : got(msgs, g, sizeof(g)));
    json_array_foreach(msgs, i, m)
    {
        json_t *role = json_object_get(m, "role"), *blocks;
        const char *turn_role = "user";
        int rc;

        pathf(path, sizeof(path), "messages[%zu]", i);
        if (!json_is_object(m))
            return refuse(r->err, path, "%s: must be an object (got %s)", path,
                          got(m, g, sizeof(g)));
        if (ca_streq(role, "system") || ca_streq(role, "developer")) {
            sink_t k = {r, NULL};
            if ((rc = content(&k, path, json_object_get(m, "content"), json_string_value(role),
                              0)) != 0)
                return rc;
            continue;
        }
        if (!ca_streq(role, "user") && !ca_streq(role, "assistant") && !ca_streq(role, "tool")) {
            pathf(p, sizeof(p), "%s.role", path);
            return refuse(
                r->err, p, "%s: must be system, developer, user, assistant or tool (got %s)%s", p,
                got(role, g, sizeof(g)),
                ca_streq(role, "function") ? "; the legacy function role is not translated" : "");
        }
        if (!(blocks = json_array()))
            return NOMEM;
        if (ca_streq(role, "user")) {
            sink_t k = {r, blocks};
            rc = content(&k, path, json_object_get(m, "content"), "user", 1);
        } else if (ca_streq(role, "assistant")) {
            turn_role = "assistant";
            rc = assistant_turn(r, i, path, m, blocks);
        } else {
            rc = tool_turn(r, path, m, blocks);
        }
        if (rc != 0) {
            json_decref(blocks);
            return rc;
        }
        if ((rc = add_turn(r, turn_role, blocks)) != 0)
            return rc;
    }
    if (json_array_size(r->turns) == 0)
        return refuse(r->err, "messages",
                      "messages: no user or assistant message has content (system and developer "
                      "messages become Anthropic's system prompt; one more message is needed)");
    return 0;
}

/* ---- tools and parameters ----------------------------------------------------------- */

/* tools -> *out (NULL when none) */
static int tools(req_t *r, json_t *in, json_t **out)
{
    json_t *list = json_object_get(in, "tools"), *t;
    char p[64], g[40];
    size_t i;

    *out = NULL;
    if (absent(list) || json_array_size(list) == 0) {
        if (!absent(list) && !json_is_array(list))
            return refuse(r->err, "tools", "tools: must be an array of tools (got %s)",
                          got(list, g, sizeof(g)));
        return 0;
    }
    if (!(*out = json_array()))
        return NOMEM;
    json_array_foreach(list, i, t)
    {
        json_t *fn = json_object_get(t, "function"), *name = json_object_get(fn, "name");
        json_t *desc = json_object_get(fn, "description"),
               *params = json_object_get(fn, "parameters");
        json_t *a;

        if (!ca_streq(json_object_get(t, "type"), "function")) {
            pathf(p, sizeof(p), "tools[%zu].type", i);
            return refuse(r->err, p,
                          "%s: only function tools can be sent to this model's provider "
                          "(Anthropic) (got %s)",
                          p, got(json_object_get(t, "type"), g, sizeof(g)));
        }
        if (!json_is_string(name)) {
            pathf(p, sizeof(p), "tools[%zu].function.name", i);
            return refuse(r->err, p, "%s: must be a string", p);
        }
        if (!absent(desc) && !json_is_string(desc)) {
            pathf(p, sizeof(p), "tools[%zu].function.description", i);
            return refuse(r->err, p, "%s: must be a string", p);
        }
        if (!absent(params) && !json_is_object(params)) {
            pathf(p, sizeof(p), "tools[%zu].function.parameters", i);
            return refuse(r->err, p, "%s: must be a JSON Schema object (got %s)", p,
                          got(params, g, sizeof(g)));
        }
        if (!(a = json_object()) || json_array_append_new(*out, a) != 0 ||
            json_object_set(a, "name", name) != 0 ||
            (json_is_string(desc) && json_object_set(a, "description", desc) != 0) ||
            (json_is_object(params) ? json_object_set(a, "input_schema", params)
                                    : put(a, "input_schema", typed("object"))) != 0)
            return NOMEM;
    }
    return 0;
}

/* tool_choice and parallel_tool_calls -> *out (NULL: none) */
static int tool_choice(req_t *r, json_t *in, json_t **out)
{
    json_t *tc = json_object_get(in, "tool_choice"), *fname = NULL;
    const char *type = NULL;

    *out = NULL;
    if (absent(tc))
        type = json_is_false(json_object_get(in, "parallel_tool_calls")) ? "auto" : NULL;
    else if (ca_streq(tc, "auto") || ca_streq(tc, "none"))
        type = json_string_value(tc);
    else if (ca_streq(tc, "required"))
        type = "any";
    else if (ca_streq(json_object_get(tc, "type"), "function") &&
             json_is_string(fname = json_object_get(json_object_get(tc, "function"), "name")))
        type = "tool";
    else
        return refuse(r->err, "tool_choice",
                      "tool_choice: must be \"auto\", \"none\", \"required\" or "
                      "{\"type\":\"function\",\"function\":{\"name\":...}}");
    if (!type)
        return 0;
    if (!(*out = typed(type)))
        return NOMEM;
    if (strcmp(type, "tool") == 0 && json_object_set(*out, "name", fname) != 0)
        return NOMEM;
    if (strcmp(type, "none") != 0 && json_is_false(json_object_get(in, "parallel_tool_calls")) &&
        put(*out, "disable_parallel_tool_use", json_true()) != 0)
        return NOMEM;
    return 0;
}

/* What no member of Anthropic's request can carry and whose loss would change the answer. */
static int refused_members(req_t *r, json_t *in)
{
    json_t *v;

    v = json_object_get(in, "n");
    if (!absent(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
        return refuse(r->err, "n",
                      "n: this model's provider (Anthropic) gives one choice per request; send "
                      "n: 1 or leave it out");
    if (json_is_true(json_object_get(in, "logprobs")))
        return refuse(r->err, "logprobs",
                      "logprobs: log probabilities are not available from this model's provider "
                      "(Anthropic)");
    v = json_object_get(in, "top_logprobs");
    if (!absent(v) && !(json_is_integer(v) && json_integer_value(v) == 0))
        return refuse(r->err, "top_logprobs",
                      "top_logprobs: log probabilities are not available from this model's "
                      "provider (Anthropic)");
    v = json_object_get(in, "response_format");
    if (!absent(v) && !ca_streq(json_object_get(v, "type"), "text"))
        return refuse(r->err, "response_format",
                      "response_format: structured output (json_object, json_schema) is not "
                      "translated for this model's provider (Anthropic); describe the format in "
                      "the prompt or use a tool");
    if (!absent(json_object_get(in, "audio")))
        return refuse(r->err, "audio",
                      "audio: audio output is not available from this model's provider "
                      "(Anthropic)");
    if (!absent(json_object_get(in, "functions")))
        return refuse(r->err, "functions",
                      "functions: the legacy functions parameter is not translated; send tools");
    if (!absent(json_object_get(in, "function_call")))
        return refuse(r->err, "function_call",
                      "function_call: the legacy function_call parameter is not translated; "
                      "send tool_choice");
    if (!absent(json_object_get(in, "web_search_options")))
        return refuse(r->err, "web_search_options",
                      "web_search_options: web search is not translated for this model's "
                      "provider (Anthropic)");
    return 0;
}

static int max_tokens(req_t *r, json_t *in, const xlate_opts_t *o, json_int_t *mt)
{
    static const char *const names[] = {"max_completion_tokens", "max_tokens"};
    char g[40];

    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_object_get(in, names[i]);
        if (absent(v))
            continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return refuse(r->err, names[i], "%s: must be a positive integer (got %s)", names[i],
                          got(v, g, sizeof(g)));
        *mt = json_integer_value(v);
        if (o->max_tokens_cap && *mt > (json_int_t)o->max_tokens_cap)
            *mt = o->max_tokens_cap; /* the deployment's cap */
        return 0;
    }
    *mt = o->default_max_tokens ? o->default_max_tokens : 4096;
    if (o->max_tokens_cap && *mt > (json_int_t)o->max_tokens_cap)
        *mt = o->max_tokens_cap;
    return 0;
}

/* stop -> *out (NULL: none) */
static int stop_sequences(req_t *r, json_t *in, json_t **out)
{
    json_t *v = json_object_get(in, "stop"), *s;
    char p[32], g[40];
    size_t i;

    *out = NULL;
    if (absent(v))
        return 0;
    if (!json_is_string(v) && !json_is_array(v))
        return refuse(r->err, "stop", "stop: must be a string or an array of strings (got %s)",
                      got(v, g, sizeof(g)));
    if (!(*out = json_array()))
        return NOMEM;
    if (json_is_string(v))
        return json_string_length(v) && json_array_append(*out, v) != 0 ? NOMEM : 0;
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s)) {
            pathf(p, sizeof(p), "stop[%zu]", i);
            return refuse(r->err, p, "%s: must be a string (got %s)", p, got(s, g, sizeof(g)));
        }
        if (json_string_length(s) && json_array_append(*out, s) != 0)
            return NOMEM;
    }
    return 0;
}

static int sampling(req_t *r, json_t *in, json_t *doc)
{
    json_t *t = json_object_get(in, "temperature"), *p = json_object_get(in, "top_p");
    char g[40];

    if (!absent(t)) {
        if (!json_is_number(t))
            return refuse(r->err, "temperature", "temperature: must be a number (got %s)",
                          got(t, g, sizeof(g)));
        if (json_number_value(t) < 0 || json_number_value(t) > 1)
            return refuse(r->err, "temperature",
                          "temperature: must be between 0 and 1 for this model (its provider, "
                          "Anthropic, takes 0 to 1; got %g)",
                          json_number_value(t));
        if (json_object_set(doc, "temperature", t) != 0)
            return NOMEM;
    }
    if (!absent(p)) {
        if (!json_is_number(p))
            return refuse(r->err, "top_p", "top_p: must be a number (got %s)",
                          got(p, g, sizeof(g)));
        if (json_object_set(doc, "top_p", p) != 0)
            return NOMEM;
    }
    return 0;
}

int chat_anthropic_request(const char *body, size_t len, const xlate_opts_t *o, buf_t *out,
                           xlate_error_t *err)
{
    req_t r = {err, NULL, {0}};
    json_t *in, *doc = NULL, *list = NULL, *choice = NULL, *stop = NULL, *user;
    json_error_t e;
    json_int_t mt = 0;
    int rc;

    if (err)
        err->message[0] = err->param[0] = '\0';
    in = json_loadb(body, len, CA_JSON_LOAD | JSON_DECODE_ANY, &e);
    if (!in)
        return refuse(err, "", "request body: not valid JSON (line %d, column %d)", e.line,
                      e.column);
    if (!json_is_object(in)) {
        json_decref(in);
        return refuse(err, "", "request body: must be a JSON object");
    }
    rc = NOMEM;
    if (!(r.turns = json_array()))
        goto done;
    if ((rc = refused_members(&r, in)) != 0 || (rc = max_tokens(&r, in, o, &mt)) != 0 ||
        (rc = messages(&r, json_object_get(in, "messages"))) != 0 ||
        (rc = tools(&r, in, &list)) != 0 || (list && (rc = tool_choice(&r, in, &choice)) != 0) ||
        (rc = stop_sequences(&r, in, &stop)) != 0)
        goto done;
    rc = NOMEM;
    /* Anthropic's order: model, max_tokens, system, messages, then the options */
    if (!(doc = json_object()) || put(doc, "model", json_string(o->model ? o->model : "")) != 0 ||
        put(doc, "max_tokens", json_integer(mt)) != 0 ||
        (r.system.len && put(doc, "system", json_stringn(r.system.data, r.system.len)) != 0) ||
        json_object_set(doc, "messages", r.turns) != 0 ||
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
        if (put(doc, "metadata", md) != 0 || json_object_set(md, "user_id", user) != 0)
            goto done;
    }
    if (o->stream && put(doc, "stream", json_true()) != 0)
        goto done;
    rc = ca_dump(out, doc) == 0 ? 0 : NOMEM;
done:
    json_decref(in);
    json_decref(doc);
    json_decref(r.turns);
    json_decref(list);
    json_decref(choice);
    json_decref(stop);
    buf_free(&r.system);
    return rc;
}
