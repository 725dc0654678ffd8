/* xlate_test.c - the table of translations: which (API, operation, provider format) each
 * pair serves, and that every listed pair is complete. */
#include <string.h>

#include "llhttp.h"
#include "server/xlate/xlate.h"
#include "t.h"

static const api_op_t *op_of(const api_adapter_t *a, const char *path)
{
    for (unsigned i = 0; i < a->nops; i++)
        if (strcmp(a->ops[i].path, path) == 0)
            return &a->ops[i];
    return NULL;
}

static int complete(const xlate_pair_t *x)
{
    return x && x->client_path && x->upstream_path && x->upstream && x->request && x->response &&
           x->error && x->stream_size && x->stream_init && x->stream_feed && x->stream_end &&
           x->stream_free;
}

int main(void)
{
    const api_op_t *chat = op_of(&api_chat, "/v1/chat/completions");
    const api_op_t *msgs = op_of(&api_messages, "/v1/messages");
    const api_op_t *count = op_of(&api_messages, "/v1/messages/count_tokens");
    const api_op_t *compl = op_of(&api_completions, "/v1/completions");
    const xlate_pair_t *x;

    const api_op_t *resp = op_of(&api_responses, "/v1/responses");
    const api_op_t *resp_get = op_of(&api_responses, "/v1/responses/{id}");
    const api_op_t *resp_count = op_of(&api_responses, "/v1/responses/input_tokens");

    T_OK(chat && msgs && count && compl &&resp && resp_get && resp_count, "the operations exist");
    x = xlate_find(&api_chat, chat, CFG_API_ANTHROPIC);
    T_OK(complete(x) && x->client == API_CHAT && x->provider == CFG_API_ANTHROPIC &&
             strcmp(x->upstream_path, "/messages") == 0 && x->upstream == &api_messages,
         "chat completions on an Anthropic provider: complete, to /messages, billed by Messages");
    x = xlate_find(&api_messages, msgs, CFG_API_OPENAI);
    T_OK(complete(x) && strcmp(x->upstream_path, "/chat/completions") == 0 &&
             x->upstream == &api_chat,
         "Messages on an OpenAI provider: complete, to /chat/completions, billed by chat");
    x = xlate_find(&api_chat, chat, CFG_API_GEMINI);
    T_OK(complete(x) && x->provider == CFG_API_GEMINI && x->upstream_path_of &&
             x->upstream == &api_gemini,
         "chat completions on a Gemini provider: complete, its path per request, billed by "
         "Gemini's usage reader");
    T_OK(xlate_find(&api_messages, msgs, CFG_API_GEMINI) == NULL &&
             xlate_find_count(&api_messages, count, CFG_API_GEMINI) == NULL &&
             xlate_find(&api_completions, compl, CFG_API_GEMINI) == NULL,
         "Messages, count_tokens and legacy completions are not served by Gemini providers");
    {
        const api_op_t *resp = op_of(&api_responses, "/v1/responses");
        T_OK(resp && xlate_find(&api_responses, resp, CFG_API_GEMINI) == NULL,
             "nor the Responses API");
    }
    T_OK(api_gemini.nops == 0 && api_adapter(API_GEMINI) == &api_gemini && api_gemini.usage,
         "the gemini adapter: registered, no client operations, a usage reader");
    x = xlate_find(&api_messages, msgs, CFG_API_OPENAI);
    T_OK(x && x->upstream_path_of == NULL, "the other pairs keep their fixed path");
    T_OK(xlate_find(&api_chat, chat, CFG_API_OPENAI) == NULL &&
             xlate_find(&api_messages, msgs, CFG_API_ANTHROPIC) == NULL,
         "no translation where the provider speaks the API");
    T_OK(xlate_find(&api_completions, compl, CFG_API_ANTHROPIC) == NULL,
         "legacy completions are not translated");
    T_OK(xlate_find(&api_messages, count, CFG_API_OPENAI) == NULL,
         "count_tokens is no translated request ...");
    x = xlate_find_count(&api_messages, count, CFG_API_OPENAI);
    T_OK(x && x->count_tokens, "... but counted by the gateway for an OpenAI provider");
    T_OK(xlate_find_count(&api_messages, msgs, CFG_API_OPENAI) == NULL &&
             xlate_find_count(&api_messages, count, CFG_API_ANTHROPIC) == NULL,
         "and only there");

    /* api: openai-chat: OpenAI-compatible without /responses */
    T_OK(api_served_by(&api_chat, CFG_API_OPENAI_CHAT) &&
             api_served_by(&api_completions, CFG_API_OPENAI_CHAT) &&
             api_served_by(&api_embeddings, CFG_API_OPENAI_CHAT) &&
             !api_served_by(&api_responses, CFG_API_OPENAI_CHAT) &&
             !api_served_by(&api_messages, CFG_API_OPENAI_CHAT),
         "openai-chat serves chat, completions and embeddings as they are, not Responses");
    x = xlate_find(&api_responses, resp, CFG_API_OPENAI_CHAT);
    T_OK(complete(x) && x->client == API_RESPONSES && xlate_serves(x, CFG_API_OPENAI_CHAT) &&
             strcmp(x->upstream_path, "/chat/completions") == 0 && x->upstream == &api_chat,
         "Responses on an openai-chat provider: complete, to /chat/completions, billed by chat");
    T_OK(xlate_find(&api_responses, resp, CFG_API_OPENAI) == NULL &&
             xlate_find(&api_responses, resp, CFG_API_ANTHROPIC) == NULL,
         "  ... and only there (api: openai serves it natively)");
    T_OK(xlate_find(&api_responses, resp_get, CFG_API_OPENAI_CHAT) == NULL &&
             xlate_find(&api_responses, resp_count, CFG_API_OPENAI_CHAT) == NULL,
         "  ... only POST /v1/responses: stored responses are not translated");
    T_OK(xlate_find(&api_messages, msgs, CFG_API_OPENAI_CHAT) ==
             xlate_find(&api_messages, msgs, CFG_API_OPENAI),
         "Messages on openai-chat: the same pair as on openai (a bitmask, not a copy)");
    T_OK(xlate_find_count(&api_messages, count, CFG_API_OPENAI_CHAT) != NULL,
         "  ... and count_tokens estimated there too");
    T_OK(xlate_find(&api_chat, chat, CFG_API_OPENAI_CHAT) == NULL,
         "no chat translation for openai-chat (it speaks chat)");
    return t_done();
}
