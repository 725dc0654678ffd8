/* xlate.c - the table of translations; see xlate.h. */
#include "server/xlate/xlate.h"

#include <stddef.h>
#include <string.h>

extern const xlate_pair_t xlate_messages_openai, xlate_chat_anthropic, xlate_chat_gemini;
extern const xlate_pair_t xlate_responses_chat;

/* Each module defines its pair (NULL-free table: a pair not built yet is not listed). */
static const xlate_pair_t *const pairs[] = {
    &xlate_messages_openai,
    &xlate_chat_anthropic,
    &xlate_chat_gemini,
    &xlate_responses_chat,
};

const xlate_pair_t *xlate_find(const api_adapter_t *a, const api_op_t *op, enum cfg_api p)
{
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const xlate_pair_t *x = pairs[i];
        if (x && x->client == a->id && xlate_serves(x, p) && x->client_path &&
            strcmp(x->client_path, op->path) == 0 && x->request)
            return x;
    }
    return NULL;
}

const xlate_pair_t *xlate_find_count(const api_adapter_t *a, const api_op_t *op, enum cfg_api p)
{
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        const xlate_pair_t *x = pairs[i];
        if (x && x->client == a->id && xlate_serves(x, p) && x->count_path &&
            strcmp(x->count_path, op->path) == 0 && x->count_tokens)
            return x;
    }
    return NULL;
}
