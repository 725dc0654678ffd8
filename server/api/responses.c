/* responses.c - the OpenAI Responses API (Codex CLI, the Vercel AI SDK's default).
 *
 * POST /v1/responses creates a response (JSON, or semantic SSE events from response.created
 * to response.completed / response.incomplete / response.failed, no [DONE]); the model is
 * the top-level "model", the output cap "max_output_tokens"; usage is the response's
 * "usage" (input_tokens, output_tokens, their cached / reasoning details), which the
 * terminal event carries. A response is stored upstream, in the organisation of the key
 * that created it, unless the body says "store": false: its id (the first "id" of the body
 * or of the response.created event) is remembered with that key, and every request that
 * names it - previous_response_id, or the {id} of GET/DELETE /v1/responses/{id}, its cancel
 * and its input_items - goes to that key (or its group). input_tokens counts tokens only.
 * Served by api: openai providers; an api: openai-chat one (no /responses) serves POST
 * /v1/responses through translation to chat completions, statelessly
 * (xlate/responses_chat.h). Errors in OpenAI's shape.
 */
#include "server/api/api.h"
#include "llhttp.h"

#include <string.h>

static const api_op_t responses_ops[] = {
    {HTTP_POST, "/v1/responses", "/responses", API_OP_MODEL | API_OP_CREATES},
    {HTTP_POST, "/v1/responses/input_tokens", "/responses/input_tokens",
     API_OP_MODEL | API_OP_FREE},
    {HTTP_GET, "/v1/responses/{id}", "/responses/{id}", API_OP_OBJECT | API_OP_FREE},
    {HTTP_DELETE, "/v1/responses/{id}", "/responses/{id}",
     API_OP_OBJECT | API_OP_DELETES | API_OP_FREE},
    {HTTP_POST, "/v1/responses/{id}/cancel", "/responses/{id}/cancel", API_OP_OBJECT | API_OP_FREE},
    {HTTP_GET, "/v1/responses/{id}/input_items", "/responses/{id}/input_items",
     API_OP_OBJECT | API_OP_FREE},
};

static const scan_spec_t responses_scan = {
    .max_names = {"max_output_tokens", NULL},
    .previous_id = 1,
    .store = 1,
};

/* The first "id": "..." of the body's first bytes: the response's own id in a JSON
 * response (its first member) and in the response.created event (the response's first
 * member, after the event's type and sequence number). */
static int responses_object_id(const char *head, size_t len, char *out, size_t cap)
{
    static const char key[] = "\"id\"";
    const char *p = head, *end = head + len;

    while (p < end && (p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
        const char *v = p + sizeof(key) - 1, *q;
        while (v < end && (*v == ' ' || *v == ':'))
            v++;
        if (v < end && *v == '"') {
            v++;
            q = v;
            while (q < end && api_id_char(*q))
                q++;
            /* an id ends with its quote: anything else (an escape, a byte no path could
             * name, the end of what has arrived) is no id, or not yet */
            if (q == end || *q != '"' || q == v || (size_t)(q - v) >= cap)
                return 0;
            memcpy(out, v, (size_t)(q - v));
            out[q - v] = '\0';
            return 1;
        }
        p = v;
    }
    return 0;
}

const api_adapter_t api_responses = {
    .id = API_RESPONSES,
    .name = "responses",
    .providers = API_PROVIDER(CFG_API_OPENAI),
    .ops = responses_ops,
    .nops = sizeof(responses_ops) / sizeof(responses_ops[0]),
    .scan = &responses_scan,
    .usage = api_openai_usage,
    .object_id = responses_object_id,
    .error_json = api_openai_error,
    .auth_challenge = "WWW-Authenticate: Bearer\r\n",
};
