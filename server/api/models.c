/* models.c - GET /v1/models, answered by the gateway: the configured models and aliases
 * the client key may use, in OpenAI's list shape (proxy.c renders it). */
#include "server/api/api.h"
#include "llhttp.h"

static const api_op_t models_ops[] = {
    {HTTP_GET, "/v1/models", NULL, API_OP_LOCAL},
};

const api_adapter_t api_models = {
    .id = API_MODELS,
    .name = "models",
    .providers = 0,
    .ops = models_ops,
    .nops = 1,
    .error_json = api_openai_error,
    .auth_challenge = "WWW-Authenticate: Bearer\r\n",
};
