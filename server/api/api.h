/* api.h - the client APIs llmgate serves: one adapter per API, and the table of their paths.
 *
 * Design note
 * -----------
 * The machinery that serves a request - authenticate, resolve the model, admit a key,
 * attempt, retry, fall back, stream with backpressure, record outcome and usage - is the
 * same for every client API (proxy/). What differs is here, one adapter per API:
 *
 *   paths       the (method, path) operations it serves and the provider path each goes
 *               to; a "{id}" segment is a path parameter (a stored object's id);
 *   scan        where the model, stream, output token cap (and, for stateful APIs,
 *               previous_response_id / store) are in a request body (scan.h);
 *   usage       where the token counts are in a JSON body and in a stream (usage.h keeps
 *               the first and last bytes of every response body);
 *   object id   for an API with stored objects: the id a 2xx created, from the first bytes
 *               of its body (JSON or the first event);
 *   errors      the error body its clients' SDKs expect (OpenAI's or Anthropic's shape);
 *   providers   the provider formats (cfg_api) that can serve it as it is; a model with no
 *               such deployment gets a clear 400 naming the model and the API.
 *
 * Adapters (api/<name>.c): chat and completions, embeddings, models (answered by the
 * gateway itself), responses (OpenAI Responses API, stateful), messages (Anthropic), gemini
 * (a provider format only: no operations, its usage reader for translated attempts).
 *
 * Operation flags:
 *   API_OP_MODEL    the body is a JSON object naming the model (routed by the models table)
 *   API_OP_OBJECT   the path names a stored object: routed to the key that created it
 *   API_OP_CREATES  a 2xx creates a stored object (unless the body says "store": false)
 *   API_OP_DELETES  a 2xx deletes the stored object named by the path
 *   API_OP_LOCAL    answered by the gateway (no upstream)
 *   API_OP_FREE     uses no tokens (counting tokens, reading or deleting a stored object):
 *                   nothing is reserved for TPM or billed, whatever usage its body shows
 *
 * Everything here is constant data and pure functions: any thread.
 */
#ifndef LLMGATE_API_H
#define LLMGATE_API_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "server/common/errors.h"
#include "server/api/scan.h"
#include "server/api/usage.h"

typedef enum api_id_e {
    API_CHAT = 0,
    API_COMPLETIONS,
    API_EMBEDDINGS,
    API_MODELS,
    API_RESPONSES,
    API_MESSAGES,
    API_GEMINI, /* a provider format only: no operations (its usage reader, api/gemini.c) */
    API_COUNT
} api_id_t;

#define API_OP_MODEL   0x01u
#define API_OP_OBJECT  0x02u
#define API_OP_CREATES 0x04u
#define API_OP_DELETES 0x08u
#define API_OP_LOCAL   0x10u
#define API_OP_FREE    0x20u

#define API_PROVIDER(api) (1u << (api)) /* a cfg_api in api_adapter_t.providers */

/* Writes an error body for status into buf (at most len - 1 bytes, NUL-terminated); returns
 * its length (the same type as conn.h's http_error_json_fn). */
typedef size_t (*error_json_fn)(char *buf, size_t len, int status, const char *message,
                                const char *code, const char *param);

typedef struct api_op_s {
    int method;           /* llhttp_method_t: HTTP_POST, HTTP_GET, HTTP_DELETE */
    const char *path;     /* client path, e.g. "/v1/responses/{id}/cancel" */
    const char *upstream; /* after the provider's base path, e.g. "/responses/{id}/cancel" */
    unsigned flags;       /* API_OP_* */
} api_op_t;

typedef struct api_adapter_s {
    api_id_t id;
    const char *name;   /* "chat", "completions", "embeddings", "models", "responses", "messages" */
    unsigned providers; /* API_PROVIDER(CFG_API_*) bits that serve it as it is */
    const api_op_t *ops;
    unsigned nops;
    const scan_spec_t *scan; /* for API_OP_MODEL bodies */
    int stream_options;      /* stream_include_usage applies (OpenAI chat and completions) */
    /* Usage of a response from the first and last bytes of its body; 1 if found. */
    int (*usage)(const usage_tail_t *t, int stream, usage_t *u);
    /* The id of the object a 2xx created, from the first bytes of its body (NUL-terminated in
     * out[cap]); 1 if found. NULL for APIs without stored objects. */
    int (*object_id)(const char *head, size_t len, char *out, size_t cap);
    error_json_fn error_json;   /* error bodies in this API's shape */
    const char *auth_challenge; /* "WWW-Authenticate: ...\r\n" for a 401, or NULL */
} api_adapter_t;

/* A matched operation: the adapter, the operation, and the {id} of the path (if any). */
typedef struct api_match_s {
    const api_adapter_t *api;
    const api_op_t *op;
    const char *id; /* points into the path; NULL when the operation has none */
    size_t id_len;
} api_match_t;

/* Find the operation serving method + path (no query string). 0 and *m filled; or
 * API_ENOPATH (no adapter serves the path: 404) or API_EMETHOD (the path is served with
 * other methods: 405; m->api and m->op name one of them). */
#define API_ENOPATH (-1)
#define API_EMETHOD (-2)
int api_find(int method, const char *path, size_t len, api_match_t *m);

/* The adapter of an API, for tests and metrics. */
const api_adapter_t *api_adapter(api_id_t id);

/* Whether provider format api serves adapter a as it is. */
static inline int api_served_by(const api_adapter_t *a, enum cfg_api api)
{
    return (a->providers & API_PROVIDER(api)) != 0;
}

/* 1 if c may be in a stored object's id: [A-Za-z0-9_.-]. Path ids are 1..SCAN_ID_MAX of
 * these; an adapter's object_id gives only such ids, or none. */
int api_id_char(char c);

/* The upstream path of m: op->upstream with {id} replaced (the id as it came: it matched
 * the path's characters). 0, or -1 if it does not fit out[cap]. */
int api_upstream_path(const api_match_t *m, char *out, size_t cap, size_t *len);

/* ---- shared by the adapters (api.c) ------------------------------------------------- */

/* OpenAI's usage object: prompt_tokens / completion_tokens (chat, completions, embeddings)
 * or input_tokens / output_tokens (Responses), with the cached and reasoning details. */
int api_openai_usage(const usage_tail_t *t, int stream, usage_t *u);

/* The error type Anthropic's SDKs map to their error classes, for an HTTP status
 * (rate_limit_error for 429, overloaded_error for 503/529, ...). */
const char *api_anthropic_error_type(int status);

/* OpenAI's error shape ({"error":{"message","type","param","code"}}): error_json. */
size_t api_openai_error(char *buf, size_t len, int status, const char *message, const char *code,
                        const char *param);

extern const api_adapter_t api_chat, api_completions, api_embeddings, api_models, api_responses,
    api_messages, api_gemini;

#endif
