/* chat.c - the OpenAI chat completions and (legacy) completions APIs.
 *
 * POST /v1/chat/completions and POST /v1/completions, JSON or SSE (stream: true, closed by
 * "data: [DONE]"). The model is the top-level "model"; the output cap is "max_tokens" or
 * "max_completion_tokens"; usage is the last "usage" object (the final chunk of a stream
 * when stream_options.include_usage asks for it, which stream_include_usage may add).
 * Served by OpenAI-compatible providers (api: openai and api: openai-chat). Errors in OpenAI's
 * shape.
 */
#include "server/api/api.h"
#include "llhttp.h"

static const api_op_t chat_ops[] = {
    {HTTP_POST, "/v1/chat/completions", "/chat/completions", API_OP_MODEL},
};

static const api_op_t completions_ops[] = {
    {HTTP_POST, "/v1/completions", "/completions", API_OP_MODEL},
};

const api_adapter_t api_chat = {
    .id = API_CHAT,
    .name = "chat",
    .providers = API_PROVIDER(CFG_API_OPENAI) | API_PROVIDER(CFG_API_OPENAI_CHAT),
    .ops = chat_ops,
    .nops = 1,
    .scan = &scan_spec_chat,
    .stream_options = 1,
    .usage = api_openai_usage,
    .error_json = api_openai_error,
    .auth_challenge = "WWW-Authenticate: Bearer\r\n",
};

const api_adapter_t api_completions = {
    .id = API_COMPLETIONS,
    .name = "completions",
    .providers = API_PROVIDER(CFG_API_OPENAI) | API_PROVIDER(CFG_API_OPENAI_CHAT),
    .ops = completions_ops,
    .nops = 1,
    .scan = &scan_spec_chat,
    .stream_options = 1,
    .usage = api_openai_usage,
    .error_json = api_openai_error,
    .auth_challenge = "WWW-Authenticate: Bearer\r\n",
};
