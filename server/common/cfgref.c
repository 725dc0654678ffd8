/* cfgref.c - reference-counted configurations. */
#include "server/common/cfgref.h"

#include <stdlib.h>

cfg_ref_t *cfgref_new(cfg_t *cfg, unsigned generation)
{
    cfg_ref_t *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->cfg = cfg;
    r->generation = generation;
    atomic_init(&r->refs, 1);
    return r;
}

cfg_ref_t *cfgref_get(cfg_ref_t *r)
{
    if (r)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void cfgref_put(cfg_ref_t *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        cfg_free(r->cfg);
        free(r);
    }
}
