/* embeddings.c - the OpenAI embeddings API.
 *
 * POST /v1/embeddings, JSON only. The model is the top-level "model"; there is no output
 * cap (the reservation is the input's estimate); usage is {"prompt_tokens","total_tokens"}.
 * Served by OpenAI-compatible providers (api: openai and api: openai-chat). Errors in OpenAI's
 * shape.
 */
#include "server/api/api.h"
#include "llhttp.h"

static const api_op_t embeddings_ops[] = {
    {HTTP_POST, "/v1/embeddings", "/embeddings", API_OP_MODEL},
};

const api_adapter_t api_embeddings = {
    .id = API_EMBEDDINGS,
    .name = "embeddings",
    .providers = API_PROVIDER(CFG_API_OPENAI) | API_PROVIDER(CFG_API_OPENAI_CHAT),
    .ops = embeddings_ops,
    .nops = 1,
    .scan = &scan_spec_chat,
    .usage = api_openai_usage,
    .error_json = api_openai_error,
    .auth_challenge = "WWW-Authenticate: Bearer\r\n",
};
