/* xlate.c - the table of translations; see xlate.h. */
#include "server/xlate/xlate.h"

#include <stddef.h>

/* Each module defines its pair (NULL-free table: a pair not built yet is not listed). */
static const xlate_pair_t *const pairs[] = {
    NULL,
};

const xlate_pair_t *xlate_find(api_id_t a, enum cfg_api p)
{
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if (pairs[i] && pairs[i]->client == a && pairs[i]->provider == p)
            return pairs[i];
    return NULL;
}
